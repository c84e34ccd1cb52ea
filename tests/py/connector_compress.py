"""mysql-connector-python (pure Python) with compress=True switches to compressed
framing whenever it asked for CLIENT_COMPRESS, whether or not the server offered it.
The proxy offers no compression: such a login must fail at once with an error that
says so (not hang), while the same client without compression works through the
proxy, and with compression works directly against the server (which offers it)."""

import signal
import time

import mysql.connector

from common import check, connector, fail, ports

PROXY, DIRECT = ports()
# A hang guard, not a timing assertion.
signal.signal(signal.SIGALRM, lambda *_: fail("hang: no answer within 30 s"))
signal.alarm(30)


def connect(port, **kwargs):
    return connector(port, connection_timeout=20, **kwargs)


def select_one(conn):
    cur = conn.cursor()
    cur.execute("SELECT 6 * 7")
    rows = cur.fetchall()
    conn.close()
    return rows


# 1. Through the proxy without compression: fine. (First: on MySQL the proxy's own
# login takes the full path and so fills the server's cache, which this client, with
# TLS off, needs to log in directly.)
check(select_one(connect(PROXY)) == [(42,)], "uncompressed query through the proxy")

# 2. Directly, compression works: the server offers it.
check(select_one(connect(DIRECT, compress=True)) == [(42,)], "direct compressed query")

# 3. Through the proxy: refused with ERR 1043 naming compression.
started = time.monotonic()
try:
    connect(PROXY, compress=True).close()
    fail("a compressed login through the proxy succeeded")
except mysql.connector.Error as e:
    print(f"compress=True through the proxy: {e} ({time.monotonic() - started:.2f}s)")
    check(e.errno == 1043, f"errno {e.errno}, expected 1043: {e}")
    check("CLIENT_COMPRESS" in str(e), f"the error does not name compression: {e}")

print("ok")
