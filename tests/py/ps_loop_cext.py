"""mysql-connector-python's C extension (libmysqlclient inside) with server-side
prepared statements: prepared once, executed in a loop. Each round inserts (INT,
VARCHAR, DOUBLE, NULL, BLOB) and reads the row back with a second prepared statement,
comparing every value. Runs until STOP_FILE exists (or MAX_SECONDS pass), printing
every error to stderr as it happens, then one line:
  rounds=R executions=E errors=N mismatches=M inserted=I

usage: python3 ps_loop_cext.py HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS

The wheel's C extension links against the OpenSSL it ships in mysql/vendor; where the
system's is older, the script starts itself again with that folder on the loader path.
"""
import os
import sys
import time

import mysql
import mysql.connector

if not mysql.connector.HAVE_CEXT:
    vendor = os.path.join(os.path.dirname(mysql.__path__[0] + "/"), "vendor")
    if os.path.isdir(vendor) and os.environ.get("LD_LIBRARY_PATH") != vendor:
        env = dict(os.environ, LD_LIBRARY_PATH=vendor)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    sys.exit("mysql-connector-python has no usable C extension here")

if len(sys.argv) != 8:
    sys.exit(__doc__)
host, port, user, password, db, stop_file, max_seconds = sys.argv[1:]
deadline = time.monotonic() + int(max_seconds)

conn = mysql.connector.connect(host=host, port=int(port), user=user, password=password,
                               database=db, use_pure=False, autocommit=True,
                               ssl_disabled=True)
assert type(conn).__name__ == "CMySQLConnection", type(conn)
conn.cursor().execute("CREATE TABLE ps_cext (id INT PRIMARY KEY, name VARCHAR(64), "
                      "score DOUBLE, note VARCHAR(16), data BLOB)")
ins = conn.cursor(prepared=True)
sel = conn.cursor(prepared=True)
INSERT = "INSERT INTO ps_cext VALUES (?, ?, ?, ?, ?)"
SELECT = "SELECT name, score, note, data FROM ps_cext WHERE id = ?"

rounds = executions = errors = mismatches = inserted = 0
while not os.path.exists(stop_file) and time.monotonic() < deadline:
    rounds += 1
    row = (f"name-{rounds}", rounds + 0.25, None, b"blob\x01\x02\x00-" + str(rounds).encode())
    executions += 1
    try:
        ins.execute(INSERT, (rounds, *row))
    except mysql.connector.Error as e:
        errors += 1
        print(f"insert {rounds}: {e}", file=sys.stderr)
        continue
    inserted += 1
    executions += 1
    try:
        sel.execute(SELECT, (rounds,))
        got = sel.fetchall()
    except mysql.connector.Error as e:
        errors += 1
        print(f"select {rounds}: {e}", file=sys.stderr)
        continue
    got = [tuple(bytes(v) if isinstance(v, (bytearray, bytes)) else v for v in r) for r in got]
    if got != [row]:
        mismatches += 1
        print(f"row {rounds} read back wrong: {got!r} != {[row]!r}", file=sys.stderr)

print(f"rounds={rounds} executions={executions} errors={errors} "
      f"mismatches={mismatches} inserted={inserted}")
