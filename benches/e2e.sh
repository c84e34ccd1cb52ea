#!/usr/bin/env bash
# End-to-end relay benchmark: sysbench through switchyard vs a direct connection vs
# HAProxy (mode tcp), all against the same MariaDB server in one invocation, so the
# ratios are comparable even on a noisy machine.
#
#   benches/e2e.sh [SECONDS_PER_RUN] [THREADS...]      (default: 10 s, threads 1 8)
#   WORKLOAD=oltp_read_only benches/e2e.sh …           (any sysbench OLTP workload;
#                                                        default oltp_point_select)
#   BASELINE_BIN=path/to/switchyard benches/e2e.sh …   (also runs that build of the proxy,
#                                                        e.g. one from before a change,
#                                                        as a fourth target: "baseline")
#
# It starts `switchyard demo` (a local blue/green pair with the proxy in front) and an
# HAProxy in front of blue, prepares sysbench tables, then runs oltp_point_select for
# each target and thread count, interleaved, and prints transactions per second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-10}
workload=${WORKLOAD:-oltp_point_select}
shift || true
threads=("${@:-1 8}")
read -r -a threads <<<"${threads[*]}"

source benches/demo.sh
blue_port=${blue##*:}

haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mysql
  bind 127.0.0.1:$haproxy_port
  server blue 127.0.0.1:$blue_port
CFG
haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"

targets=(direct:$blue_port switchyard:$proxy_port haproxy:$haproxy_port)
if [[ -n ${BASELINE_BIN:-} ]]; then
    # The demo's config with a port, admin socket and state file of its own, in front
    # of the same blue.
    config=$(sed -n 's/^proxy *:.*config: *\(.*\)$/\1/p' "$work/demo.out")
    baseline_port=$(free_port)
    sed -e "s|^listen = .*|listen = \"127.0.0.1:$baseline_port\"|" \
        -e "s|^admin_socket = .*|admin_socket = \"$work/baseline.sock\"|" \
        -e "s|^state_file = .*|state_file = \"$work/baseline-state.json\"|" \
        "$config" >"$work/baseline.toml"
    "$BASELINE_BIN" proxy --config "$work/baseline.toml" 2>"$work/baseline.err" &
    echo $! >"$work/baseline.pid"
    listening() {
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
            "$baseline_port" 2>/dev/null
    }
    for _ in $(seq 60); do
        listening && break
        sleep 0.5
    done
    listening || { cat "$work/baseline.err"; echo "baseline proxy did not start" >&2; exit 1; }
    targets+=(baseline:$baseline_port)
fi

sysbench_prepare "$workload"

declare -A tps
echo "$workload, ${secs}s per run ($(nproc) cores, $(sysbench --version))"
for t in "${threads[@]}"; do
    for target in "${targets[@]}"; do
        name=${target%%:*}
        port=${target##*:}
        out=$(sysbench "$workload" "${sb[@]}" --mysql-port="$port" --threads="$t" --time="$secs" run)
        tps[$name:$t]=$(sed -n 's/.*transactions: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' <<<"$out")
        lat=$(sed -n 's/.*95th percentile: *\([0-9.]*\)/\1/p' <<<"$out")
        printf '%-11s threads=%-3s tps=%-10s p95_ms=%s\n' "$name" "$t" "${tps[$name:$t]}" "$lat"
    done
done
echo
for t in "${threads[@]}"; do
    python3 - "$t" "${tps[direct:$t]}" "${tps[switchyard:$t]}" "${tps[haproxy:$t]}" "${tps[baseline:$t]:-}" <<'PY'
import sys
t, d, s, h = sys.argv[1], *map(float, sys.argv[2:5])
line = f"threads={t}: switchyard/direct={s/d:.2f}  haproxy/direct={h/d:.2f}  switchyard/haproxy={s/h:.2f}"
if sys.argv[5]:
    b = float(sys.argv[5])
    line += f"  baseline/haproxy={b/h:.2f}  switchyard/baseline={s/b:.2f}"
print(line)
PY
done
