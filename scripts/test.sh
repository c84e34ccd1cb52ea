#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run): installs what the
# tests need, checks the code is formatted and clippy-clean (warnings are errors),
# then runs every test (unit and integration) with cargo-nextest.
#
# Each integration test starts its own MariaDB pair, so a 2-core machine runs three
# at a time; override with NEXTEST_TEST_THREADS. Extra arguments go to nextest
# (e.g. `scripts/test.sh --test testbed`).
# For a cross-version run (green = MariaDB 11.8):
#   scripts/fetch-mariadb.sh && SWITCHYARD_GREEN_BUILD=target/mariadb-11.8 scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

# Clean code first: a formatting diff or a clippy warning fails the command before
# any test runs (install-deps.sh made sure rustfmt and clippy are there).
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

# tests/upgrade.rs runs green on MariaDB 11.8, unpacked into target/mariadb-11.8.
# fetch-mariadb.sh downloads and unpacks every time it runs, so it runs only when the
# folder has no server yet. If it fails, the other tests still run and the upgrade
# test fails saying what is missing. A SWITCHYARD_UPGRADE_BUILD given by the caller
# is used as is.
if [[ -z "${SWITCHYARD_UPGRADE_BUILD:-}" ]]; then
    upgrade_build=$PWD/target/mariadb-11.8
    if [[ ! -x "$upgrade_build/usr/sbin/mariadbd" ]]; then
        bash scripts/fetch-mariadb.sh "$upgrade_build" \
            || echo "test.sh: fetching MariaDB 11.8 failed; tests/upgrade.rs will fail" >&2
    fi
    export SWITCHYARD_UPGRADE_BUILD=$upgrade_build
fi

exec cargo nextest run --no-fail-fast --test-threads "${NEXTEST_TEST_THREADS:-3}" "$@"
