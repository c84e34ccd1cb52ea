# Sourced by the benchmarks: builds the release binary and starts `switchyard demo` (a
# local blue/green MariaDB pair with the proxy in front) without its switchover.
# Afterwards: $bin (the binary), $work (a temp dir), $proxy_port, $blue (host:port of
# blue) and $socket (the admin socket). On exit the demo is stopped, every pid listed
# in $work/*.pid is killed and $work is removed.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
work=$(mktemp -d)
cleanup() {
    [[ -n ${demo_pid:-} ]] && kill -INT "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    for pidfile in "$work"/*.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

proxy_port=$(free_port)
"$bin" demo --no-switchover --port "$proxy_port" >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
for _ in $(seq 120); do
    grep -q '^connect with' "$work/demo.out" 2>/dev/null && break
    sleep 0.5
done
grep -q '^connect with' "$work/demo.out" || { cat "$work/demo.err"; echo "demo did not start" >&2; exit 1; }
blue=$(sed -n 's/^blue *: \([0-9.:]*\).*/\1/p' "$work/demo.out")
socket=$(sed -n 's/.*ctl --socket \([^ ]*\) status.*/\1/p' "$work/demo.out")

# sysbench's options for the demo's app account and its sbtest tables; `sysbench_prepare
# WORKLOAD` creates and fills the tables on blue.
sb=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password=app-secret
    --mysql-db=sbtest --tables=4 --table-size=10000)
sysbench_prepare() {
    sysbench "$1" "${sb[@]}" --mysql-ssl=off --mysql-port="${blue##*:}" --threads=4 prepare >"$work/prepare.log" 2>&1 ||
        { cat "$work/prepare.log"; exit 1; }
}
