#!/usr/bin/env bash
# Install what switchyard's tests need, and nothing when it is all there already:
#   MariaDB server + client (the tests start their own servers from these binaries),
#   sysbench, haproxy, python3 with PyMySQL and mysql-connector-python, a C compiler with
#   libmariadb-dev and PHP with mysqli (C-library prepared-statement clients), util-linux
#   `script` (a terminal for the log colour test), openssl (the TLS benchmark's
#   certificates), Prometheus with promtool (tests/prometheus.rs scrapes the proxy with
#   it and checks deploy/prometheus/), gpg and the Debian archive keyring
#   (scripts/fetch-server.sh unpacks MariaDB 11.8 and MySQL 9.7 with them), cargo-nextest,
#   and the toolchain's rustfmt and clippy (scripts/test.sh checks the code with both).
# Debian/Ubuntu; run as root or as a user with sudo. Safe to run again.
#
# The Debian mariadb service is never left running (it would listen on 3306, and the
# tests use only servers they start themselves): services are kept from starting
# during the install, and a running or enabled mariadb service is stopped and disabled.
set -euo pipefail

log() { echo "install-deps: $*" >&2; }

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { log "not root and no sudo"; exit 1; }
    sudo=(sudo)
fi

# A program is present when it is on PATH or in the sbin dirs (not on a user's PATH).
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]
}

missing=()
want() { # PACKAGE PROGRAM...
    local package=$1 program
    shift
    for program in "$@"; do
        if ! have "$program"; then
            missing+=("$package")
            return
        fi
    done
}
want mariadb-server mariadbd mariadb-install-db
want mariadb-client mariadb
want sysbench sysbench
want haproxy haproxy
want gcc cc
want libmariadb-dev mariadb_config
want php-cli php
want bsdutils script
# benches/e2e.sh TLS=1 makes its certificates with it.
want openssl openssl
# tests/prometheus.rs: a real Prometheus scraping the proxy, promtool for the rules.
want prometheus prometheus promtool
# scripts/fetch-server.sh (MariaDB 11.8, MySQL 9.7) checks the Debian archive's keys.
want gpg gpg
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
# mysqli has no program of its own: ask PHP whether it has the module.
if ! have php || ! php -m 2>/dev/null | grep -qx mysqli; then
    missing+=(php-mysql)
fi
if ! have python3; then
    missing+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
# tests/metrics.rs reads the exposition with a second parser, prometheus_client's.
dpkg-query -W -f='${Status}' python3-prometheus-client 2>/dev/null | grep -q 'ok installed' ||
    missing+=(python3-prometheus-client)

stop_mariadb_service() {
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        for unit in mariadb.service mysql.service; do
            if systemctl is-active --quiet "$unit" 2>/dev/null; then
                log "stopping $unit (it listens on 3306)"
                "${sudo[@]}" systemctl stop "$unit" || true
            fi
            if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
                "${sudo[@]}" systemctl disable --quiet "$unit" || true
            fi
        done
    elif [[ -x /etc/init.d/mariadb && -s /run/mysqld/mysqld.pid ]]; then
        log "stopping the mariadb service (it listens on 3306)"
        "${sudo[@]}" /etc/init.d/mariadb stop || true
    fi
}

if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # Keep apt from starting services (the mariadb one would take port 3306): a
    # policy-rc.d that denies every start, ours only for the install.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        added_policy=true
        trap '"${sudo[@]}" rm -f "$policy"' EXIT
    fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
    if $added_policy; then
        "${sudo[@]}" rm -f "$policy"
        trap - EXIT
    fi
fi
stop_mariadb_service

# Python clients the tests drive: module to import, then the package that has it.
python_wants=()
python3 -c 'import pymysql' 2>/dev/null || python_wants+=(PyMySQL)
python3 -c 'import mysql.connector' 2>/dev/null || python_wants+=(mysql-connector-python)
# Debian's python3-prometheus-client (above) serves the system python3; another
# python3 first on PATH (pyenv) gets it from pip.
python3 -c 'import prometheus_client' 2>/dev/null || python_wants+=(prometheus-client)
if ((${#python_wants[@]})); then
    log "installing ${python_wants[*]}"
    pip=(python3 -m pip install --quiet --disable-pip-version-check "${python_wants[@]}")
    # Debian's own python3 refuses plain installs (PEP 668); others (pyenv) accept them.
    err=$(mktemp)
    if ! PIP_ROOT_USER_ACTION=ignore "${pip[@]}" 2>"$err"; then
        if grep -q externally-managed "$err"; then
            PIP_ROOT_USER_ACTION=ignore "${pip[@]}" --break-system-packages
        else
            cat "$err" >&2
            rm -f "$err"
            exit 1
        fi
    fi
    rm -f "$err"
    python3 -c 'import pymysql, mysql.connector, prometheus_client'
fi

# rustfmt and clippy come with the toolchain: rustup adds them; a toolchain installed
# some other way must bring its own.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
        log "adding the rustfmt and clippy components"
        rustup component add clippy rustfmt
    else
        log "cargo fmt or cargo clippy is missing and there is no rustup to add them;" \
            "install the rustfmt and clippy components of your Rust toolchain"
        exit 1
    fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

log "ok: $(mariadbd --version 2>/dev/null || /usr/sbin/mariadbd --version)"
