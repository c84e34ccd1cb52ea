"""mysql-connector-python (pure Python) through the proxy: text and prepared
statements, LOAD DATA LOCAL INFILE, a 20 MiB value in one prepared parameter, and a
wrong password; results are checked against a direct connection to blue."""

import hashlib
import os
import tempfile

import mysql.connector

from common import check, connector, equal, ok, ports, same

PROXY, DIRECT = ports()
BIG = 64 * 1024 * 1024


def run(conn, sql, args=None, prepared=False):
    cur = conn.cursor(prepared=prepared)
    cur.execute(sql, args)
    rows = cur.fetchall() if cur.with_rows else []
    cur.close()
    return rows


# Through the proxy first: on MySQL its login takes the full path and fills the
# server's cache, which this client, with TLS off, needs to log in directly.
proxy = connector(PROXY, allow_local_infile=True, autocommit=True)
direct = connector(DIRECT, autocommit=True)

# 1. Text and prepared statements.
sql = "SELECT %s, %s + 1, CONCAT('ü', %s), NULL"
args = ("x", 41, "€")
same("text", run(proxy, sql, args), run(direct, sql, args))
sql = "SELECT ?, ? + 1, CONCAT('ü', ?), NULL"
same("prepared", run(proxy, sql, args, True), run(direct, sql, args, True))
equal("prepared values", run(proxy, sql, args, True), [("x", 42, "ü€", None)])
ok("text and prepared statements")

# 2. LOAD DATA LOCAL INFILE.
run(proxy, "DROP TABLE IF EXISTS loaded")
run(proxy, "CREATE TABLE loaded (id INT PRIMARY KEY, v VARCHAR(40)) CHARACTER SET utf8mb4")
with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as f:
    for i in range(5000):
        f.write(f"{i}\tv-{i}-ü\n")
    path = f.name
try:
    run(proxy, f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE loaded CHARACTER SET utf8mb4")
finally:
    os.unlink(path)
summary = "SELECT COUNT(*), SUM(CRC32(v)) FROM loaded"
got = run(proxy, summary)
same("loaded rows", got, run(direct, summary))
equal("loaded count", got[0][0], 5000)
ok("LOAD DATA LOCAL")

# 3. A 20 MiB value as one prepared parameter, read back both ways, the same through
# the proxy as directly.
value = os.urandom(20 * 1024 * 1024)
digest = hashlib.sha256(value).hexdigest()


def big_value(conn, id):
    run(conn, "INSERT INTO big VALUES (?, ?)", (id, value), prepared=True)
    binary = run(conn, "SELECT b FROM big WHERE id = ?", (id,), prepared=True)[0][0]
    text = run(conn, f"SELECT b FROM big WHERE id = {id}")[0][0]
    server = run(conn, f"SELECT LENGTH(b), SHA2(b, 256) FROM big WHERE id = {id}")
    return (len(binary), hashlib.sha256(bytes(binary)).hexdigest(), len(text),
            hashlib.sha256(bytes(text)).hexdigest(), server)


run(proxy, "DROP TABLE IF EXISTS big")
run(proxy, "CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)")
got = big_value(proxy, 1)
same("20 MiB value", got, big_value(direct, 2))
# The binary-protocol read is left to the comparison above: this client keeps only
# the first 16 MiB packet of a longer binary row, directly as through the proxy.
equal("20 MiB value", got[2:], (len(value), digest, [(len(value), digest)]))
equal("in step", run(proxy, "SELECT 'small'"), [("small",)])
ok("20 MiB value")
proxy.close()
direct.close()

# 4. A wrong password: MySQL's 1045, with the server's text.
try:
    mysql.connector.connect(host="127.0.0.1", port=PROXY, user=os.environ["SWITCHYARD_USER"],
                            password="wrong", database="test", use_pure=True, ssl_disabled=True)
    check(False, "a wrong password logged in")
except mysql.connector.Error as e:
    equal("errno", e.errno, 1045)
    equal("sqlstate", e.sqlstate, "28000")
    check(e.msg.startswith(f"Access denied for user '{os.environ['SWITCHYARD_USER']}'@'"), e.msg)
    check(e.msg.endswith("(using password: YES)"), e.msg)
ok("wrong password")
