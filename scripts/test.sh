#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run): installs what the
# tests need, checks the code is formatted and clippy-clean (warnings are errors),
# then runs every test (unit and integration) with cargo-nextest.
#
# Each integration test starts its own MariaDB or MySQL pair, so a 2-core machine runs three
# at a time; override with NEXTEST_TEST_THREADS. Extra arguments go to nextest
# (e.g. `scripts/test.sh --test testbed`).
# For a cross-version run (green = MariaDB 11.8):
#   scripts/fetch-server.sh mariadb-11.8 && SWITCHYARD_GREEN_BUILD=target/mariadb-11.8 scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

# Clean code first: a formatting diff or a clippy warning fails the command before
# any test runs (install-deps.sh made sure rustfmt and clippy are there).
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

# Servers newer than Debian 12's, unpacked into target/ by scripts/fetch-server.sh:
# MariaDB 11.8 (tests/upgrade.rs runs green on it) and MySQL 9.7 (the MySQL pair of
# tests/testbed.rs, tests/control.rs, tests/mysql.rs). fetch-server.sh downloads and
# unpacks every time it runs, so it runs only when the folder has no server yet. If it
# fails, the other tests still run and the tests that need the build fail saying what
# is missing. A SWITCHYARD_UPGRADE_BUILD or SWITCHYARD_MYSQL_BUILD given by the caller
# is used as is.
fetch() { # SERVER PROGRAM: target/SERVER, fetched unless it has PROGRAM
    local dir=$PWD/target/$1
    if [[ ! -x "$dir/$2" ]]; then
        bash scripts/fetch-server.sh "$1" "$dir" >&2 \
            || echo "test.sh: fetching $1 failed; the tests that need it will fail" >&2
    fi
    echo "$dir"
}
if [[ -z "${SWITCHYARD_UPGRADE_BUILD:-}" ]]; then
    SWITCHYARD_UPGRADE_BUILD=$(fetch mariadb-11.8 usr/sbin/mariadbd)
    export SWITCHYARD_UPGRADE_BUILD
fi
if [[ -z "${SWITCHYARD_MYSQL_BUILD:-}" ]]; then
    SWITCHYARD_MYSQL_BUILD=$(fetch mysql-9.7 usr/sbin/mysqld)
    export SWITCHYARD_MYSQL_BUILD
fi

exec cargo nextest run --no-fail-fast --test-threads "${NEXTEST_TEST_THREADS:-3}" "$@"
