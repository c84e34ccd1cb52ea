#!/usr/bin/env bash
# MariaDB 11.8 for the cross-version tests: scripts/fetch-mariadb.sh [DIR]
# (default target/mariadb-11.8). See fetch-server.sh.
exec bash "$(dirname "${BASH_SOURCE[0]}")/fetch-server.sh" mariadb-11.8 "$@"
