"""Shared by the PyMySQL scripts that tests/pymysql.rs runs.

Every script is run as `python3 SCRIPT PROXY_PORT DIRECT_PORT`, with the app user's
name and password in SWITCHYARD_USER / SWITCHYARD_PASSWORD and the server's kind in
SWITCHYARD_FLAVOR (`MariaDB` or `MySQL`; MariaDB when unset). With SWITCHYARD_TLS_CA
set, every PyMySQL connection is TLS, verified with that CA file (chain and name),
and checked to be TLS once open. It exits 0 when all its
checks pass; on the first mismatch it prints what it expected and what it got, and
exits 1 (an exception exits non-zero too, with its traceback).
"""

import os
import ssl
import sys

import pymysql
from pymysql.constants import SERVER_STATUS

HOST = "127.0.0.1"
MYSQL = os.environ.get("SWITCHYARD_FLAVOR", "MariaDB") == "MySQL"
TLS_CA = os.environ.get("SWITCHYARD_TLS_CA")


def tls_context(ca):
    """Verify the server with `ca`: chain and name (127.0.0.1), TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def ports():
    """(proxy port, direct port) from argv."""
    if len(sys.argv) != 3:
        fail(f"usage: {sys.argv[0]} PROXY_PORT DIRECT_PORT")
    return int(sys.argv[1]), int(sys.argv[2])


def connect(port, **kwargs):
    """A PyMySQL connection to 127.0.0.1:port as the app user, database `test` unless
    told otherwise, utf8mb4."""
    options = dict(
        host=HOST,
        port=port,
        user=os.environ["SWITCHYARD_USER"],
        password=os.environ["SWITCHYARD_PASSWORD"],
        database="test",
        charset="utf8mb4",
        connect_timeout=10,
        read_timeout=60,
        write_timeout=60,
    )
    if TLS_CA:
        options["ssl"] = tls_context(TLS_CA)
    options.update(kwargs)
    conn = pymysql.connect(**options)
    if TLS_CA:
        check(isinstance(conn._sock, ssl.SSLSocket), f"port {port}: the connection is not TLS")
    return conn


def connector(port, **kwargs):
    """A mysql-connector-python (pure Python unless told `use_pure=False`, TLS off)
    connection to 127.0.0.1:port as the app user, database `test`."""
    import mysql.connector

    options = dict(
        host=HOST,
        port=port,
        user=os.environ["SWITCHYARD_USER"],
        password=os.environ["SWITCHYARD_PASSWORD"],
        database="test",
        use_pure=True,
        ssl_disabled=True,
    )
    options.update(kwargs)
    return mysql.connector.connect(**options)


def require_cext():
    """Makes sure mysql-connector-python's C extension loads: the wheel's extension
    links against the OpenSSL it ships in mysql/vendor, so where the system's is older
    the script starts itself again with that folder on the loader path."""
    import mysql
    import mysql.connector

    if mysql.connector.HAVE_CEXT:
        return
    vendor = os.path.join(os.path.dirname(mysql.__path__[0] + "/"), "vendor")
    if os.path.isdir(vendor) and os.environ.get("LD_LIBRARY_PATH") != vendor:
        env = dict(os.environ, LD_LIBRARY_PATH=vendor)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    fail("mysql-connector-python has no usable C extension here")


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def same(what, proxied, direct):
    """The value seen through the proxy must equal the one seen directly."""
    if proxied != direct:
        fail(f"{what}: through the proxy {proxied!r}, directly {direct!r}")


def equal(what, got, expected):
    if got != expected:
        fail(f"{what}: got {got!r}, expected {expected!r}")


def query(conn, sql, args=None):
    """(description, rows) of one statement."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.description, cur.fetchall()


def error_of(conn, sql, args=None):
    """The (code, message) of the MySQL error `sql` raises; fails if it raises none."""
    try:
        query(conn, sql, args)
    except pymysql.MySQLError as e:
        return e.args
    fail(f"{sql!r} did not fail")


def ok(name):
    print(f"ok: {name}")


def sequence_tables(conn, sizes):
    """MariaDB's sequence tables `seq_1_to_N` (column `seq`, BIGINT UNSIGNED) for each N
    of `sizes`: built in on MariaDB; on MySQL made here, as views of one table of
    numbers, so the same SQL runs on both."""
    if not MYSQL:
        return
    top = max(sizes)
    query(conn, f"set session cte_max_recursion_depth = {top}")
    query(conn, f"drop table if exists seq_1_to_{top}")
    query(conn, f"create table seq_1_to_{top} (seq bigint unsigned primary key)")
    query(
        conn,
        f"insert into seq_1_to_{top} with recursive s (n) as "
        f"(select 1 union all select n + 1 from s where n < {top}) select n from s",
    )
    for n in sizes:
        if n != top:
            query(
                conn,
                f"create or replace view seq_1_to_{n} as "
                f"select seq from seq_1_to_{top} where seq <= {n}",
            )


def in_transaction(conn):
    """1 when `conn` is inside a transaction, else 0. MySQL has no @@in_transaction:
    there it is the SERVER_STATUS_IN_TRANS flag of the server's OK packet."""
    if MYSQL:
        query(conn, "do 0")
        return int(bool(conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS))
    return query(conn, "select @@in_transaction")[1][0][0]
