#!/usr/bin/env bash
# What the compressed protocol costs the relay: sysbench (default oltp_point_select)
# and a big result read with the `mariadb` client, each with compression on and off,
# through switchyard and directly against the same MariaDB server, interleaved in one
# invocation so the ratios are comparable even on a noisy machine. On loopback
# compression only costs (CPU on both ends, nothing saved on the wire); it pays on slow
# links.
#
#   benches/compress.sh [SECONDS_PER_RUN] [THREADS...]   (default: 10 s, threads 1 8)
#   BIG_ROUNDS=5 benches/compress.sh …                   (reads of the big result per run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-10}
workload=${WORKLOAD:-oltp_point_select}
rounds=${BIG_ROUNDS:-5}
shift || true
threads=("${@:-1 8}")
read -r -a threads <<<"${threads[*]}"

source benches/demo.sh
blue_port=${blue##*:}
targets=(direct:$blue_port switchyard:$proxy_port)

sysbench_prepare "$workload"

declare -A tps
echo "$workload, ${secs}s per run ($(nproc) cores, $(sysbench --version))"
for t in "${threads[@]}"; do
    for compression in off on; do
        for target in "${targets[@]}"; do
            name=${target%%:*}
            port=${target##*:}
            out=$(sysbench "$workload" "${sb[@]}" --mysql-ssl=off --mysql-port="$port" --threads="$t" \
                --mysql-compression="$compression" --time="$secs" run)
            tps[$name:$compression:$t]=$(sed -n 's/.*transactions: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' <<<"$out")
            lat=$(sed -n 's/.*95th percentile: *\([0-9.]*\)/\1/p' <<<"$out")
            printf '%-11s compression=%-3s threads=%-3s tps=%-10s p95_ms=%s\n' \
                "$name" "$compression" "$t" "${tps[$name:$compression:$t]}" "$lat"
        done
    done
done

# About 20 MiB of text rows (1 KiB each, 8 bytes changing per row: it compresses).
big="SET max_recursive_iterations = 100000;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000)
SELECT n, CONCAT(LPAD(n, 8, '0'), REPEAT('row text ', 113)) FROM s;"
declare -A big_secs
for compression in off on; do
    flag=()
    [[ $compression == on ]] && flag=(--compress)
    for target in "${targets[@]}"; do
        name=${target%%:*}
        port=${target##*:}
        start=$(date +%s.%N)
        for _ in $(seq "$rounds"); do
            mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uapp -papp-secret \
                --skip-ssl "${flag[@]}" -N test -e "$big" >/dev/null
        done
        end=$(date +%s.%N)
        big_secs[$name:$compression]=$(python3 -c "print(f'{($end - $start) / $rounds:.3f}')")
        printf '%-11s compression=%-3s 20 MiB result: %s s per read\n' \
            "$name" "$compression" "${big_secs[$name:$compression]}"
    done
done

echo
for t in "${threads[@]}"; do
    python3 - "$t" "${tps[direct:off:$t]}" "${tps[switchyard:off:$t]}" \
        "${tps[direct:on:$t]}" "${tps[switchyard:on:$t]}" <<'PY'
import sys
t, d_off, s_off, d_on, s_on = sys.argv[1], *map(float, sys.argv[2:])
print(f"threads={t}: switchyard on/off={s_on/s_off:.2f}  direct on/off={d_on/d_off:.2f}  "
      f"switchyard/direct off={s_off/d_off:.2f} on={s_on/d_on:.2f}")
PY
done
python3 - "${big_secs[direct:off]}" "${big_secs[switchyard:off]}" \
    "${big_secs[direct:on]}" "${big_secs[switchyard:on]}" <<'PY'
import sys
d_off, s_off, d_on, s_on = map(float, sys.argv[1:])
print(f"20 MiB result, time per read: switchyard on/off={s_on/s_off:.2f}  "
      f"direct on/off={d_on/d_off:.2f}  switchyard/direct off={s_off/d_off:.2f} on={s_on/d_on:.2f}")
PY
