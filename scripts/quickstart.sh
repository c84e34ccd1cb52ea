#!/usr/bin/env bash
# Quick start: installs what is missing (MariaDB server and client, sysbench, PyMySQL),
# builds switchyard, then runs `switchyard demo`: a local blue/green MariaDB pair with
# the proxy in front. Extra arguments go to `switchyard demo` (e.g. --exit, --port 6033).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
cargo build --release --quiet
exec "${CARGO_TARGET_DIR:-target}/release/switchyard" demo "$@"
