#!/usr/bin/env bash
# How fast `switchyard create` makes green from blue, next to the usual tools: on one
# blue filled with sysbench tables, each tool copies the `sbtest` database into a fresh,
# empty green of its own:
#   1. mariadb-dump --single-transaction | mariadb   (one connection each way)
#   2. mydumper --threads N, then myloader --threads N (consistent snapshot, to a dir)
#   3. switchyard create --threads N                   (also starts replication from the
#                                                       snapshot and waits for it)
# After each, every sbtest table on green is compared with blue (COUNT(*) and
# CHECKSUM TABLE). Writes target/bench/create.md and prints it.
#
#   benches/create.sh [SIZE_GB] [THREADS]     (default: 2 GB of data + indexes, 4 threads)
#   ROUNDS=2 benches/create.sh …              (each tool twice, the order rotated per
#                                              round: on a busy machine one run is noise)
#   INSERTS=1 benches/create.sh …             (also create into a green started with
#                                              --local-infile=0, where it loads with
#                                              multi-row INSERTs, not LOAD DATA LOCAL)
#
# Sizes are decimal: 1 GB = 10^9 bytes, 1 MB = 10^6 bytes, as information_schema
# reports them (data_length + index_length after ANALYZE TABLE).
# Needs mariadbd, mariadb-install-db, the mariadb client tools and sysbench
# (scripts/install-deps.sh), and mydumper/myloader (Debian package `mydumper`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

size_gb=${1:-2}
threads=${2:-4}
rounds=${ROUNDS:-1}
tables=8
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
[[ $size_gb =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "SIZE_GB: a number, e.g. 2 or 0.1" >&2; exit 2; }
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "THREADS: a positive integer" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS: a positive integer" >&2; exit 2; }

# Programs: on PATH or in the sbin dirs; a missing one stops the run with its package.
program() {
    command -v "$1" 2>/dev/null && return
    for dir in /usr/sbin /sbin /usr/local/sbin; do
        [[ -x $dir/$1 ]] && { echo "$dir/$1"; return; }
    done
    return 1
}
missing=()
declare -A prog
for pair in mariadbd:mariadb-server mariadb-install-db:mariadb-server mariadb:mariadb-client \
    mariadb-admin:mariadb-client mariadb-dump:mariadb-client sysbench:sysbench \
    mydumper:mydumper myloader:mydumper python3:python3; do
    name=${pair%%:*}
    prog[$name]=$(program "$name") || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
    read -r -a missing <<<"$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    echo "benches/create.sh: missing programs; install them with:" >&2
    echo "    apt-get install ${missing[*]}" >&2
    echo "(mydumper is only for this benchmark; the rest comes with scripts/install-deps.sh)" >&2
    exit 1
fi

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
out_dir=target/bench
mkdir -p "$out_dir"

work=$(mktemp -d)
cleanup() {
    for pidfile in "$work"/*.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    for pidfile in "$work"/*.pid; do
        [[ -f $pidfile ]] && while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
    done
    rm -rf "$work"
}
trap cleanup EXIT
log() { echo "create-bench: $*" >&2; }
fail() { log "$*"; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_us() { echo "${EPOCHREALTIME/./}"; }
# Seconds from START_US to END_US (default: now), two decimals.
secs() {
    local d=$(( ${2:-$(now_us)} - $1 ))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

control_user=switchyard control_password=bench-secret
repl_user=repl repl_password=repl-secret
# Every server gets these; blue and green differ only in their server id. The testbed's
# options (src/testbed/server.rs), with a buffer pool that holds the whole data set.
server_opts=(
    --skip-name-resolve --max-connections=1000 --max-allowed-packet=64M
    --innodb-buffer-pool-size=2G --innodb-log-file-size=512M
    --innodb-flush-log-at-trx-commit=2
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
)
binlog_opts=(
    --log-bin=mysql-bin --relay-log=relay-bin --log-slave-updates --binlog-format=ROW
    --gtid-strict-mode=ON --sync-binlog=0
)

# start_server NAME DATADIR SERVER_ID [OPTION...]: sets port[NAME]; the pid goes to
# $work/NAME.pid, the socket is $work/NAME.sock.
declare -A port
start_server() {
    local name=$1 datadir=$2 id=$3 attempt pid
    shift 3
    mkdir -p "$work/tmp-$name"
    for attempt in 1 2 3; do
        port[$name]=$(free_port)
        "${prog[mariadbd]}" --no-defaults --user=root --datadir="$datadir" \
            --socket="$work/$name.sock" --port="${port[$name]}" --bind-address=127.0.0.1 \
            --pid-file="$datadir/server.pid" --tmpdir="$work/tmp-$name" \
            --log-error="$work/$name.err" --server-id="$id" "${server_opts[@]}" "$@" \
            >>"$work/$name.stderr" 2>&1 &
        pid=$!
        echo "$pid" >"$work/$name.pid"
        for _ in $(seq 240); do
            kill -0 "$pid" 2>/dev/null || break
            "${prog[mariadb-admin]}" --no-defaults --user=root --socket="$work/$name.sock" \
                --connect-timeout=2 ping >/dev/null 2>&1 && return 0
            sleep 0.5
        done
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        rm -f "$work/$name.pid"
        grep -q 'Address already in use' "$work/$name.err" 2>/dev/null || break
    done
    tail -20 "$work/$name.err" >&2
    fail "server $name did not start (log: $work/$name.err)"
}
stop_server() {
    local name=$1 pid
    pid=$(cat "$work/$name.pid")
    "${prog[mariadb-admin]}" --no-defaults --user=root --socket="$work/$name.sock" shutdown \
        >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    rm -f "$work/$name.pid"
}
# sql NAME [mariadb OPTION...]: runs stdin as root on server NAME, tab-separated output.
sql() {
    local name=$1
    shift
    "${prog[mariadb]}" --no-defaults --user=root --socket="$work/$name.sock" -N -B "$@"
}
# TCP options of the control account, for the tools.
client_opts() { echo "--host=127.0.0.1 --port=${port[$1]} --user=$control_user --password=$control_password"; }

# --- one pristine data dir, copied for blue and for every green --------------------
log "initialising a data dir in $work"
"${prog[mariadb-install-db]}" --no-defaults --user=root --datadir="$work/template" \
    --auth-root-authentication-method=socket --skip-test-db --force >"$work/install-db.log" 2>&1 ||
    { cat "$work/install-db.log" >&2; fail "mariadb-install-db failed"; }
start_server template "$work/template" 9
sql template <<SQL
DELETE FROM mysql.global_priv WHERE User = '';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE USER '$control_user'@'%' IDENTIFIED BY '$control_password';
GRANT ALL PRIVILEGES ON *.* TO '$control_user'@'%' WITH GRANT OPTION;
CREATE USER '$control_user'@'localhost' IDENTIFIED BY '$control_password';
GRANT ALL PRIVILEGES ON *.* TO '$control_user'@'localhost' WITH GRANT OPTION;
CREATE USER '$repl_user'@'%' IDENTIFIED BY '$repl_password';
GRANT REPLICATION SLAVE ON *.* TO '$repl_user'@'%';
SQL
stop_server template

# --- blue, filled with sysbench tables up to SIZE_GB ------------------------------
cp -a "$work/template" "$work/blue-data"
start_server blue "$work/blue-data" 1 "${binlog_opts[@]}"
target_bytes=$(awk -v g="$size_gb" 'BEGIN { printf "%.0f", g * 1e9 }')
# About 240 bytes of data + index per sysbench row; topped up below when short.
table_rows=$(( target_bytes / 240 / tables + 1 ))
log "blue: sysbench oltp_read_write prepare, $tables tables x $table_rows rows"
echo "CREATE DATABASE sbtest" | sql blue
read -r -a sb_opts <<<"--db-driver=mysql --mysql-ssl=off $(client_opts blue | sed 's/--/--mysql-/g') --mysql-db=sbtest --tables=$tables"
sysbench oltp_read_write "${sb_opts[@]}" --table-size="$table_rows" --threads=$((tables < 4 ? tables : 4)) \
    prepare >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log" >&2; fail "sysbench prepare failed"; }
analyze() {
    local t list=()
    for t in $(seq "$tables"); do list+=("sbtest.sbtest$t"); done
    echo "ANALYZE TABLE $(IFS=,; echo "${list[*]}")" | sql blue >/dev/null
}
blue_bytes() {
    echo "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'sbtest'" |
        sql blue
}
analyze
bytes=$(blue_bytes)
while ((bytes < target_bytes)); do
    # Short of the target: copy existing rows (new ids) into every table.
    rows=$(echo "SELECT COUNT(*) FROM sbtest.sbtest1" | sql blue)
    more=$(( (target_bytes - bytes) * rows / bytes * 105 / 100 + 1000 ))
    log "blue: $bytes bytes, short of $target_bytes; adding $more rows to each table"
    for t in $(seq "$tables"); do
        echo "INSERT INTO sbtest.sbtest$t (k, c, pad) SELECT k, c, pad FROM sbtest.sbtest$t LIMIT $more" |
            sql blue
    done
    analyze
    bytes=$(blue_bytes)
done
blue_data=$(echo "SELECT SUM(data_length), SUM(index_length) FROM information_schema.tables WHERE table_schema = 'sbtest'" | sql blue)
total_rows=0
for t in $(seq "$tables"); do
    total_rows=$(( total_rows + $(echo "SELECT COUNT(*) FROM sbtest.sbtest$t" | sql blue) ))
done
# COUNT(*) and CHECKSUM TABLE of every sbtest table, one line each.
fingerprint() {
    local t
    for t in $(seq "$tables"); do
        echo "SELECT 'sbtest$t', COUNT(*) FROM sbtest.sbtest$t; CHECKSUM TABLE sbtest.sbtest$t;"
    done | sql "$1" | paste - -
}
fingerprint blue >"$work/blue.fingerprint"
log "blue: $total_rows rows, $bytes bytes (data, index: $blue_data)"
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')

# --- the runs -----------------------------------------------------------------
# check TOOL: green's tables against blue's, and what green wrote to its own binary log
# (the copy should not be there: a replica of green would apply it twice).
check() {
    local binlog
    binlog=$(echo 'SELECT @@gtid_binlog_pos' | sql green)
    binlog="green's binlog: ${binlog:-no GTIDs}"
    fingerprint green >"$work/$1.fingerprint" || true
    if diff "$work/blue.fingerprint" "$work/$1.fingerprint" >"$work/$1.diff"; then
        echo "ok: $tables tables, rows + checksum match; $binlog"
    else
        log "$1 copied wrong:"
        head -20 "$work/$1.diff" >&2
        echo "WRONG: $(grep -c '^>' "$work/$1.diff" || true) of $tables tables differ; $binlog"
    fi
}
# stamp START_US: prefixes each line with the seconds since START_US.
stamp() {
    local line
    while IFS= read -r line; do
        printf '%8s %s\n' "$(secs "$1")" "$line"
    done
}
# Each tool: a function that copies blue's sbtest into green and sets part[$key] (the
# run's key) when it can tell the parts of its time apart; a failure is reported, not
# fatal.
mariadb_dump() {
    "${prog[mariadb-dump]}" --no-defaults "${blue_client[@]}" --single-transaction --databases sbtest \
        2>"$work/mariadb-dump.err" |
        "${prog[mariadb]}" --no-defaults "${green_client[@]}" --init-command='SET sql_log_bin=0' \
            2>"$work/mariadb.err" ||
        { cat "$work/mariadb-dump.err" "$work/mariadb.err" >&2; return 1; }
}
mydumper_myloader() {
    local middle
    # Consistent snapshot: a brief FLUSH TABLES WITH READ LOCK, then one snapshot
    # transaction per thread; big tables are split into chunks of --rows.
    "${prog[mydumper]}" "${blue_client[@]}" --database=sbtest --threads="$threads" \
        --trx-consistency-only --rows=100000 --outputdir="$work/mydumper" >"$work/mydumper.log" 2>&1 ||
        { cat "$work/mydumper.log" >&2; return 1; }
    middle=$(now_us)
    dump_size=$(du -sb "$work/mydumper" | cut -f1)
    "${prog[myloader]}" "${green_client[@]}" --directory="$work/mydumper" --threads="$threads" \
        >"$work/myloader.log" 2>&1 || { cat "$work/myloader.log" >&2; return 1; }
    part[$key]="dump $(secs "$start" "$middle") s + load $(secs "$middle") s"
    rm -rf "$work/mydumper"
}
create() {
    local snapshot copied method
    cat >"$work/create.toml" <<TOML
[proxy]
listen = "127.0.0.1:$(free_port)"

[blue]
address = "127.0.0.1:${port[blue]}"

[green]
address = "127.0.0.1:${port[green]}"

[control]
user = "$control_user"
password = "$control_password"

[replication]
user = "$repl_user"
password = "$repl_password"
TOML
    chmod 600 "$work/create.toml"
    "$bin" create --config "$work/create.toml" --threads "$threads" --progress plain 2>&1 |
        stamp "$start" >"$work/create.log" || { cut -c10- "$work/create.log" >&2; return 1; }
    # Its plain progress: checks, then "snapshot at blue's GTID position …", then
    # "copy: …" lines, the last once every table has its rows and indexes, then
    # replication; the parts are the times between those lines.
    snapshot=$(grep -m1 "snapshot at blue's GTID position" "$work/create.log" | awk '{ print $1 }' || true)
    method=$(grep -m1 -o 'copying with .*' "$work/create.log" || true)
    copied=$(grep -E '^ *[0-9.]+ copy: ' "$work/create.log" | tail -1 | awk '{ print $1 }' || true)
    if [[ -n $snapshot && -n $copied ]]; then
        part[$key]=$(awk -v s="$snapshot" -v c="$copied" -v w="$(secs "$start")" 'BEGIN {
            printf "checks + schema + snapshot %.2f s + copy with indexes %.2f s + replication + catch-up %.2f s", s, c - s, w - c }')
    fi
    part[$key]+=${method:+; $method}
    summary=$(grep 'created green' "$work/create.log" | cut -c10- || true)
    cp "$work/create.log" "$out_dir/$key.log"
}
declare -A wall part checked cpu order
# CPU seconds (user + system) of this script's finished child processes, as `times`
# wrote them to FILE (`times` must run in this shell, not in a $(…) subshell).
children_cpu() {
    tail -1 "$1" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); n += p[1] * 60 + p[2] }; printf "%.2f", n }'
}
# CPU seconds of server NAME so far.
clk_tck=$(getconf CLK_TCK)
server_cpu() {
    awk -v hz="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$(cat "$work/$1.pid")/stat"
}
failed=0
dump_size=? summary=
cores=$(nproc)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
runs=0
read -r -a blue_client <<<"$(client_opts blue)"
# run KEY FUNCTION [OPTION...]: times FUNCTION on a fresh green from the pristine data
# dir (the same options for every tool, plus OPTIONs), then checks green against blue.
run() {
    local key=$1 function=$2
    shift 2
    runs=$((runs + 1))
    order[$key]=$runs
    log "run $runs: $key"
    cp -a "$work/template" "$work/green-data"
    start_server green "$work/green-data" 2 "${binlog_opts[@]}" "$@"
    read -r -a green_client <<<"$(client_opts green)"
    start=$(now_us)
    times >"$work/times"
    cpu_before=("$(children_cpu "$work/times")" "$(server_cpu blue)" "$(server_cpu green)")
    if "$function" 2>"$work/$key.failure"; then
        wall[$key]=$(secs "$start")
        times >"$work/times"
        cpu[$key]=$(awk -v t0="${cpu_before[0]}" -v b0="${cpu_before[1]}" -v g0="${cpu_before[2]}" \
            -v t="$(children_cpu "$work/times")" -v b="$(server_cpu blue)" -v g="$(server_cpu green)" \
            'BEGIN { printf "%.1f + %.1f + %.1f = %.1f", t - t0, b - b0, g - g0, t - t0 + b - b0 + g - g0 }')
        checked[$key]=$(check "$key")
        [[ ${checked[$key]} == ok* ]] || failed=1
    else
        wall[$key]=failed
        checked[$key]="FAILED: $(grep -v '^ *$' "$work/$key.failure" | tail -1 | cut -c1-200)"
        log "$key failed:"
        tail -20 "$work/$key.failure" >&2
        failed=1
    fi
    stop_server green
    rm -rf "$work/green-data" "$work/mydumper"
}
# NAME:FUNCTION[:GREEN OPTION]
tools=(mariadb-dump:mariadb_dump mydumper:mydumper_myloader create:create)
[[ -n ${INSERTS:-} ]] && tools+=(create-inserts:create:--local-infile=0)
for round in $(seq "$rounds"); do
    for i in "${!tools[@]}"; do
        IFS=: read -r name function option <<<"${tools[(i + round - 1) % ${#tools[@]}]}"
        run "$name.$round" "$function" ${option:+"$option"}
    done
done

# --- the report -----------------------------------------------------------------
rate() { [[ $2 == failed ]] && { echo -; return; }; awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
mbps() { [[ $1 == failed ]] && { echo -; return; }; awk -v m="$mb" -v s="$1" 'BEGIN { printf "%.1f", m / s }'; }
row() { # NAME KEY THREADS
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "${order[$2]}" "$3" "${wall[$2]}" "$(rate "$total_rows" "${wall[$2]}")" \
        "$(mbps "${wall[$2]}")" "${cpu[$2]:--}" "${part[$2]:-}" "${checked[$2]}"
}
report="$out_dir/create.md"
{
    echo "# switchyard create vs mariadb-dump and mydumper"
    echo
    echo "- machine: $cores cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r); load average at the start: $loadavg_start, before the runs (after loading blue): $loadavg, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- server: $(echo 'SELECT VERSION()' | sql blue), one blue and a fresh green per tool, all on loopback; options: ${server_opts[*]} ${binlog_opts[*]} (blue --server-id=1, green --server-id=2)"
    echo "- tools: $("${prog[mariadb-dump]}" --version), $("${prog[mydumper]}" --version 2>&1 | head -1), $("${prog[myloader]}" --version 2>&1 | head -1), $("$bin" --version), $(sysbench --version)"
    echo "- data: sysbench oltp_read_write, $tables tables, $total_rows rows, $bytes bytes data + indexes ($mb MB; data, index: ${blue_data/$'\t'/, }); mydumper's dump: $dump_size bytes"
    echo "- runs: $rounds round(s) of the three tools, the order rotated per round (column run)"
    echo "- threads: $threads for mydumper, myloader and create; mariadb-dump and mariadb use one connection"
    echo "- rows/s and MB/s: blue's rows and data + index size over the wall time; CPU s: user + system of the tools' processes and of each server during the run (on a shared machine steadier than the wall time)"
    echo "- checks: COUNT(*) and CHECKSUM TABLE of every table on green against blue; green's @@gtid_binlog_pos"
    echo
    echo "| tool | run | threads | wall s | rows/s | MB/s | CPU s: tools + blue + green | parts | green vs blue |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for round in $(seq "$rounds"); do
        row "mariadb-dump --single-transaction \| mariadb" "mariadb-dump.$round" 1
        row "mydumper --trx-consistency-only --rows 100000 + myloader" "mydumper.$round" "$threads"
        row "switchyard create (copy + replication from the snapshot + catch-up)" "create.$round" "$threads"
        [[ -n ${INSERTS:-} ]] &&
            row "switchyard create, green --local-infile=0" "create-inserts.$round" "$threads"
    done
    echo
    echo "switchyard create said (last run): ${summary:-(no summary line)}"
} >"$report"
cat "$report"
exit "$failed"
