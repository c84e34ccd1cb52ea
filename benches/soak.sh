#!/usr/bin/env bash
# Soak: switchovers back and forth at a fixed interval under mixed load, for a long
# time. Starts `switchyard demo` (a local blue/green pair with the proxy in front), then
# runs at once:
#   - sysbench oltp_read_write with server-side prepared statements (--db-ps-mode=auto:
#     libmariadb, parameter types sent only on a statement's first execution);
#   - sysbench oltp_read_write with text queries;
#   - a checker: writers inserting ids through the proxy (autocommit and small
#     transactions), each id counted only when acknowledged;
#   - IDLE idle sessions, each holding a user variable, a session variable and a
#     SQL-level prepared statement;
# and every INTERVAL seconds a `ctl --json switchover`. Every 10 s (and at each
# switchover) it samples the proxy's RSS and open file descriptors. At the end it
# prints each switchover's pause, the sysbench totals (errors, reconnects), the
# checker's verdict (every acknowledged id on the final primary exactly once) and
# whether every idle session kept its state. Exit status 0 only if all of that holds.
#
#   DURATION=3600 INTERVAL=30 IDLE=100 THREADS=4 benches/soak.sh     (the defaults)
#   DURATION=36 INTERVAL=6 IDLE=1000 THREADS=8 benches/soak.sh       (1,000 idle, 6 switchovers)
#
# Not part of the test command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${DURATION:-3600}
interval=${INTERVAL:-30}
idle=${IDLE:-100}
threads=${THREADS:-4}

source benches/demo.sh
# Room for the idle sessions: the proxy opens one file descriptor per client and one
# per backend connection (two per session while a switchover pre-opens).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

sb=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password=app-secret
    --mysql-db=app --mysql-ssl=off --tables=4 --table-size=10000)
blue_port=${blue##*:}
sysbench oltp_read_write "${sb[@]}" --mysql-port="$blue_port" --threads=4 prepare \
    >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; exit 1; }

python3 - "$bin" "$socket" "$proxy_port" "$demo_pid" "$duration" "$interval" "$idle" \
    "$threads" "$work" "${sb[@]}" <<'PY'
import json, os, re, subprocess, sys, threading, time
import pymysql

bin_, socket, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
duration, interval, idle_n, threads = (int(a) for a in sys.argv[5:9])
work, sb = sys.argv[9], sys.argv[10:]

def connect(**kw):
    return pymysql.connect(host="127.0.0.1", port=port, user="app",
                           password="app-secret", database="app", autocommit=True, **kw)

def ctl(*args):
    out = subprocess.run([bin_, "ctl", "--socket", socket, *args],
                         capture_output=True, text=True)
    return out.returncode == 0, out.stdout.strip().splitlines()

def sample():
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds

setup = connect()
setup.cursor().execute("CREATE TABLE IF NOT EXISTS soak_check "
                       "(seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, KEY (id))")

# 1. Idle sessions with state.
idle = []
for i in range(idle_n):
    c = connect()
    cur = c.cursor()
    cur.execute("SET @who = %s", (i,))
    cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
    cur.execute("PREPARE mine FROM 'SELECT ?'")
    idle.append(c)

# 2. sysbench, prepared and text, for the whole run (plus a margin).
runtime = duration + 5
sysbenches = {}
for mode, n in (("auto", threads), ("disable", max(1, threads // 2))):
    log = open(f"{work}/sysbench-{mode}.log", "w")
    sysbenches[mode] = (subprocess.Popen(
        ["sysbench", "oltp_read_write", *sb, f"--mysql-port={port}", f"--threads={n}",
         f"--time={runtime}", f"--db-ps-mode={mode}", "--report-interval=10", "run"],
        stdout=log, stderr=subprocess.STDOUT), log)

# 3. The checker.
stop = threading.Event()
acked, errors = [], []
lock = threading.Lock()

def writer(w):
    conn = connect()
    cur = conn.cursor()
    i = 0
    while not stop.is_set():
        ids = [w * 10**9 + i + k for k in range(1 if i % 2 == 0 else 2)]
        i += len(ids)
        try:
            if len(ids) == 1:
                cur.execute("INSERT INTO soak_check (id) VALUES (%s)", (ids[0],))
            else:
                cur.execute("BEGIN")
                for x in ids:
                    cur.execute("INSERT INTO soak_check (id) VALUES (%s)", (x,))
                cur.execute("COMMIT")
            with lock:
                acked.extend(ids)
        except Exception as e:
            with lock:
                errors.append(f"writer {w}: {e}")
            return
        time.sleep(0.002)

writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
for t in writers:
    t.start()

# 4. Switchovers every `interval` s; samples every 10 s.
start = time.monotonic()
samples, switches = [], []
next_switch, next_sample = start + interval, start
end = start + duration
# A switchover at every multiple of `interval` up to `duration` included.
while time.monotonic() < end or next_switch <= end:
    now = time.monotonic()
    if now >= next_sample:
        samples.append((now - start, *sample()))
        next_sample += 10
    if now >= next_switch:
        ok, lines = ctl("--json", "switchover")
        last = json.loads(lines[-1]) if lines else {}
        rep = last.get("report", {})
        switches.append((now - start, ok, rep.get("pause_ms"), rep.get("to"),
                         last.get("message", "")[:160]))
        samples.append((time.monotonic() - start, *sample()))
        next_switch += interval
    time.sleep(0.05)
stop.set()
for t in writers:
    t.join()

# 5. Verdicts.
failed = False
print(f"{duration} s, a switchover every {interval} s, {idle_n} idle sessions, "
      f"sysbench {threads} threads prepared + {max(1, threads // 2)} text, 4 checker writers")
print("\nswitchovers (t s, ok, pause ms, to):")
pauses = []
for t, ok, pause, to, msg in switches:
    print(f"  {t:7.1f}  {'ok' if ok else 'FAILED'}  {pause if pause is None else round(pause, 1)}  {to}"
          + ("" if ok else f"  {msg}"))
    failed |= not ok
    if ok and pause is not None:
        pauses.append(pause)
if pauses:
    pauses.sort()
    print(f"  pause ms: min {pauses[0]:.1f}, median {pauses[len(pauses) // 2]:.1f}, "
          f"max {pauses[-1]:.1f} over {len(pauses)} switchovers")
print("\nproxy RSS and open fds (t s, RSS KiB, fds):")
step = max(1, len(samples) // 12)
for t, rss, fds in samples[::step] + samples[-1:]:
    print(f"  {t:7.1f}  {rss:8d}  {fds:6d}")

for mode, (proc, log) in sysbenches.items():
    proc.wait()
    log.close()
    text = open(f"{work}/sysbench-{mode}.log").read()
    errs = re.search(r"ignored errors:\s+(\d+)", text)
    reconn = re.search(r"reconnects:\s+(\d+)", text)
    tps = re.search(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec", text)
    fatal = "FATAL" in text
    print(f"\nsysbench --db-ps-mode={mode}: exit {proc.returncode}, "
          f"transactions {tps.group(1) if tps else '?'} ({tps.group(2) if tps else '?'}/s), "
          f"ignored errors (deadlocks) {errs.group(1) if errs else '?'}, reconnects {reconn.group(1) if reconn else '?'}"
          + (", FATAL" if fatal else ""))
    # sysbench retries its own deadlocks and lock-wait timeouts (1213, 1205, 1020 by
    # default: conflicts between its threads) and counts them as ignored; any other
    # error is FATAL.
    if fatal or proc.returncode != 0:
        failed = True
        print("\n".join(l for l in text.splitlines() if "FATAL" in l or "error" in l.lower())[:2000])

check = connect()
cur = check.cursor()
cur.execute("SELECT id FROM soak_check")
rows = sorted(r[0] for r in cur.fetchall())
acked.sort()
dups = len(rows) - len(set(rows))
missing = len(set(acked) - set(rows))
extra = len(set(rows) - set(acked))
print(f"\nchecker: {len(acked)} acknowledged ids, {len(rows)} rows; duplicated {dups}, "
      f"missing {missing}, never acknowledged {extra} (a write cut by an error may land "
      f"unacknowledged); client errors {len(errors)}")
for e in errors[:5]:
    print("  " + e)
failed |= bool(dups or missing or errors)

lost = 0
for i, c in enumerate(idle):
    cur = c.cursor()
    cur.execute("SET @p = 7")
    cur.execute("EXECUTE mine USING @p")
    ok = cur.fetchone() == (7,)
    cur.execute("SELECT @who, @@SESSION.sql_mode")
    who, mode = cur.fetchone()
    if not ok or int(who) != i or mode != "ANSI_QUOTES":
        lost += 1
print(f"idle sessions: {idle_n - lost} of {idle_n} kept their state")
failed |= lost > 0
print("\nverdict:", "FAILED" if failed else "ok")
sys.exit(1 if failed else 0)
PY
