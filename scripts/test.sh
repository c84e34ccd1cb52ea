#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run): installs what the
# tests need, then runs every test (unit and integration) with cargo-nextest.
#
# Each integration test starts its own MariaDB pair, so a 2-core machine runs three
# at a time; override with NEXTEST_TEST_THREADS. Extra arguments go to nextest
# (e.g. `scripts/test.sh --test testbed`).
# For a cross-version run (green = MariaDB 11.8):
#   scripts/fetch-mariadb.sh && SWITCHYARD_GREEN_BUILD=target/mariadb-11.8 scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
exec cargo nextest run --no-fail-fast --test-threads "${NEXTEST_TEST_THREADS:-3}" "$@"
