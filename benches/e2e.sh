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
#   METRICS=1 benches/e2e.sh …                         (also a proxy of this build with
#                                                        metrics_listen set and scraped
#                                                        every second, as target
#                                                        "switchyard-metrics")
#   TLS=1 benches/e2e.sh …                             (also a second proxy with [tls]
#                                                        and require_secure_transport, as
#                                                        target "switchyard-tls": sysbench
#                                                        on TLS to it, plaintext to blue)
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
# Another proxy (program $2) named $1, on a free port, in front of the same blue: the
# demo's config with a port, admin socket and state file of its own, plus the TOML in
# $3 and the [proxy] keys in $4. Its port is added to the targets.
extra_proxy() {
    local name=$1 program=$2 toml=$3 proxy_keys=${4:-} config port
    config=$(sed -n 's/^proxy *:.*config: *\(.*\)$/\1/p' "$work/demo.out")
    port=$(free_port)
    sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
        -e "s|^admin_socket = .*|admin_socket = \"$work/$name.sock\"|" \
        -e "s|^state_file = .*|state_file = \"$work/$name-state.json\"|" \
        ${proxy_keys:+-e "/^\[proxy\]/a $proxy_keys"} \
        "$config" >"$work/$name.toml"
    printf '\n%s\n' "$toml" >>"$work/$name.toml"
    "$program" proxy --config "$work/$name.toml" 2>"$work/$name.err" &
    echo $! >"$work/$name.pid"
    listening() {
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
            "$port" 2>/dev/null
    }
    for _ in $(seq 60); do
        listening && break
        sleep 0.5
    done
    listening || { cat "$work/$name.err"; echo "$name proxy did not start" >&2; exit 1; }
    targets+=("$name:$port")
}

if [[ -n ${BASELINE_BIN:-} ]]; then
    extra_proxy baseline "$BASELINE_BIN" ""
fi
if [[ -n ${METRICS:-} ]]; then
    metrics_port=$(free_port)
    extra_proxy switchyard-metrics "$bin" "" "metrics_listen = \"127.0.0.1:$metrics_port\""
    # What a Prometheus with a 1 s scrape interval costs.
    while sleep 1; do
        curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null || echo "scrape failed" >&2
    done &
    echo $! >"$work/scrape.pid"
fi
if [[ -n ${TLS:-} ]]; then
    # sysbench 1.0 takes no file names: --mysql-ssl=on reads cacert.pem,
    # client-cert.pem and client-key.pem from its working directory.
    tls=$work/tls
    mkdir "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=e2e-ca -keyout "$tls/ca.key" -out "$tls/cacert.pem" 2>/dev/null
    for leaf in proxy client; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$leaf" \
            -keyout "$tls/$leaf-key.pem" -out "$tls/$leaf.csr" 2>/dev/null
        openssl x509 -req -in "$tls/$leaf.csr" -CA "$tls/cacert.pem" -CAkey "$tls/ca.key" \
            -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost') \
            -out "$tls/$leaf-cert.pem" 2>/dev/null
    done
    extra_proxy switchyard-tls "$bin" "[tls]
cert = \"$tls/proxy-cert.pem\"
key = \"$tls/proxy-key.pem\"
require_secure_transport = true"
fi

sysbench_prepare "$workload"

declare -A tps
echo "$workload, ${secs}s per run ($(nproc) cores, $(sysbench --version))"
for t in "${threads[@]}"; do
    for target in "${targets[@]}"; do
        name=${target%%:*}
        port=${target##*:}
        ssl=(--mysql-ssl=off)
        dir=.
        if [[ $name == *-tls ]]; then
            # The proxy requires TLS: a run that fell back to plaintext would fail.
            ssl=(--mysql-ssl=on)
            dir=$tls
        fi
        out=$(cd "$dir" && sysbench "$workload" "${sb[@]}" "${ssl[@]}" --mysql-port="$port" \
            --threads="$t" --time="$secs" run)
        tps[$name:$t]=$(sed -n 's/.*transactions: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' <<<"$out")
        lat=$(sed -n 's/.*95th percentile: *\([0-9.]*\)/\1/p' <<<"$out")
        printf '%-15s threads=%-3s tps=%-10s p95_ms=%s\n' "$name" "$t" "${tps[$name:$t]}" "$lat"
    done
done
echo
for t in "${threads[@]}"; do
    python3 - "$t" "${tps[direct:$t]}" "${tps[switchyard:$t]}" "${tps[haproxy:$t]}" "${tps[baseline:$t]:-}" \
        "${tps[switchyard-tls:$t]:-}" "${tps[switchyard-metrics:$t]:-}" <<'PY'
import sys
t, d, s, h = sys.argv[1], *map(float, sys.argv[2:5])
line = f"threads={t}: switchyard/direct={s/d:.2f}  haproxy/direct={h/d:.2f}  switchyard/haproxy={s/h:.2f}"
if sys.argv[5]:
    b = float(sys.argv[5])
    line += f"  baseline/haproxy={b/h:.2f}  switchyard/baseline={s/b:.2f}"
if sys.argv[6]:
    tls = float(sys.argv[6])
    line += f"  switchyard-tls/switchyard={tls/s:.2f}  switchyard-tls/haproxy={tls/h:.2f}"
if sys.argv[7]:
    m = float(sys.argv[7])
    line += f"  switchyard-metrics/switchyard={m/s:.2f}"
    if sys.argv[5]:
        line += f"  switchyard-metrics/baseline={m/b:.3f}"
print(line)
PY
done
