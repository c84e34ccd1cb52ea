#!/usr/bin/env bash
# The application-visible pause of a switchover as the number of sessions grows: starts
# `switchyard demo` (a local blue/green pair with the proxy in front), opens N idle
# sessions, each with a user variable, a session variable and a SQL-level prepared
# statement to carry, runs 4 writers inserting through the proxy, then switches over
# and back. Prints the proxy's report of each switchover and what the writers saw:
# rows written, errors, and the slowest single INSERT.
#
#   benches/switchover.sh [IDLE_SESSIONS...]      (default: 0 100 500)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

counts=("${@:-0 100 500}")
read -r -a counts <<<"${counts[*]}"

source benches/demo.sh

python3 - "$bin" "$socket" "$proxy_port" "${counts[@]}" <<'PY'
import subprocess, sys, threading, time
import pymysql

bin_, socket, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = [int(c) for c in sys.argv[4:]]

def connect():
    return pymysql.connect(host="127.0.0.1", port=port, user="app",
                           password="app-secret", database="app", autocommit=True)

setup = connect()
setup.cursor().execute("CREATE TABLE IF NOT EXISTS bench_switch "
                       "(id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT)")

def ctl(*args):
    out = subprocess.run([bin_, "ctl", "--socket", socket, *args],
                         capture_output=True, text=True)
    return out.returncode == 0, out.stdout.strip().splitlines()

idle = []
for n in counts:
    while len(idle) < n:
        c = connect()
        cur = c.cursor()
        cur.execute("SET @who = %s", (len(idle),))
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
        cur.execute("PREPARE mine FROM 'SELECT ?'")
        idle.append(c)
    for direction in ("there", "back"):
        stop = threading.Event()
        stats = {"rows": 0, "errors": [], "slowest": 0.0}
        lock = threading.Lock()

        def writer(w):
            conn = connect()
            cur = conn.cursor()
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    cur.execute("INSERT INTO bench_switch (writer) VALUES (%s)", (w,))
                except Exception as e:  # counted, never expected
                    with lock:
                        stats["errors"].append(str(e))
                    continue
                took = time.perf_counter() - start
                with lock:
                    stats["rows"] += 1
                    stats["slowest"] = max(stats["slowest"], took)
            conn.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1)
        ok, lines = ctl("switchover")
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        print(f"{n} idle sessions, switchover {direction}: {lines[-1] if lines else '(no answer)'}")
        print(f"    writers: {stats['rows']} rows, {len(stats['errors'])} errors, "
              f"slowest INSERT {stats['slowest'] * 1000:.1f} ms")
        if not ok or stats["errors"]:
            print("\n".join(lines + stats["errors"][:5]))
            sys.exit(1)
    # Every idle session still has its state, wherever it is now.
    for i, c in enumerate(idle):
        cur = c.cursor()
        cur.execute("SET @p = 7")
        cur.execute('EXECUTE mine USING @p')
        assert cur.fetchone() == (7,), i
        cur.execute("SELECT @who, @@SESSION.sql_mode")
        who, mode = cur.fetchone()
        assert int(who) == i and mode == "ANSI_QUOTES", (i, who, mode)
PY
