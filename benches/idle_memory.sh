#!/usr/bin/env bash
# Memory of idle sessions: opens waves of client sessions through `switchyard demo`,
# each running one query with a 200 KB result (so every buffer has grown) and then
# staying idle, and prints how much the proxy's resident memory grew per session.
#
#   benches/idle_memory.sh [SESSIONS_PER_WAVE] [WAVES]      (default: 200 sessions, 3 waves)
#
# The first wave also pays for one-time costs (thread arenas, the registry); the
# later waves show the steady cost of one more idle session.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

per_wave=${1:-200}
waves=${2:-3}

source benches/demo.sh

python3 - "$demo_pid" "$proxy_port" "$per_wave" "$waves" <<'PY'
import sys, time
import pymysql

pid, port, per_wave, waves = map(int, sys.argv[1:])

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

sessions = []
print(f"{per_wave} sessions per wave, each idle after one 200 KB result")
for wave in range(1, waves + 1):
    before = rss_kib()
    for _ in range(per_wave):
        c = pymysql.connect(host="127.0.0.1", port=port, user="app",
                            password="app-secret", database="app")
        with c.cursor() as cur:
            cur.execute("SELECT REPEAT('x', 200000)")
            cur.fetchall()
        sessions.append(c)
    time.sleep(2.5)  # past the idle release (1 s)
    after = rss_kib()
    print(f"wave {wave}: rss {before} -> {after} KiB, {(after - before) / per_wave:.1f} KiB per idle session")
PY
