"""Parameterised queries, types, unicode, select_db, ping, errors and multi-statement
results: what PyMySQL sees through the proxy equals what it sees directly."""

import datetime
import decimal

import pymysql
from pymysql.constants import CLIENT

from common import check, connect, equal, error_of, fail, ok, ports, query, same, sequence_tables

PROXY, DIRECT = ports()
proxy = connect(PROXY, autocommit=True)
direct = connect(DIRECT, autocommit=True)
sequence_tables(direct, [5, 1000, 100000, 200000])


def both(sql, args=None):
    """Run on both connections; the descriptions and rows must be equal."""
    p = query(proxy, sql, args)
    d = query(direct, sql, args)
    same(f"{sql!r} {args!r}", p, d)
    return p[1]


# 1. Parameters of every Python type PyMySQL escapes.
equal("select %s, %s", both("select %s, %s", (1, "x")), ((1, "x"),))
params = (
    -42,
    2**63 - 1,
    3.25,
    decimal.Decimal("-12345.6789"),
    "it's \"quoted\" \\ back\nslash",
    "",
    None,
    True,
    datetime.date(2024, 2, 29),
    datetime.datetime(2001, 2, 3, 4, 5, 6, 789000),
    datetime.timedelta(hours=-5, minutes=30),
    b"\x00\x01\xfe\xff'\\",
)
rows = both("select " + ", ".join(["%s"] * len(params)), params)
equal("parameters", rows[0][4:8], (params[4], "", None, 1))
named = both("select %(a)s + %(b)s as sum, %(a)s as a", {"a": 40, "b": 2})
equal("named parameters", named, ((42, 40),))
both("select seq, seq * %s from seq_1_to_1000 where seq %% %s = 0", (3, 7))
ok("parameterised queries")

# 2. A DECIMAL / DATE / NULL (and friends) row, written once, read both ways.
query(proxy, "drop table if exists typed")
query(
    proxy,
    """create table typed (
        id int primary key, dec1 decimal(15,4), dec2 decimal(30,10), d date,
        dt datetime(6), ts timestamp(3) null, t time, y year, f float, g double,
        bits bit(10), e enum('a','b'), s set('x','y','z'), j json, nothing varchar(5),
        vb varbinary(10), tx text, bl blob, u bigint unsigned)""",
)
query(
    proxy,
    "insert into typed values (1, %s, %s, %s, %s, %s, %s, %s, %s, %s, b'1010101010', 'b', 'x,z', %s, NULL, %s, %s, %s, %s)",
    (
        decimal.Decimal("12345678901.2345"),
        decimal.Decimal("-0.0000000001"),
        datetime.date(1970, 1, 1),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime.datetime(2038, 1, 19, 3, 14, 7),
        "-838:59:59",
        2155,
        1.5,
        -2.2250738585072014e-308,
        '{"k": [1, null, "v"]}',
        b"\x00\xff",
        "text ✓",
        b"\x00blob\xff",
        2**64 - 1,
    ),
)
query(proxy, "insert into typed (id) values (2)")
proxy.commit()
rows = both("select * from typed order by id")
equal("decimal", rows[0][1], decimal.Decimal("12345678901.2345"))
equal("date", rows[0][3], datetime.date(1970, 1, 1))
equal("null", rows[0][14], None)
equal("all null but id", set(rows[1][1:]), {None})
ok("typed row")

# 3. Unicode, emoji included, round trip through the proxy and read directly.
query(proxy, "drop table if exists uni")
query(proxy, "create table uni (id int primary key, s varchar(100)) character set utf8mb4")
texts = ["🐘🚀👩‍👩‍👧", "日本語テキスト", "Ünïcödé ñ ß", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "mixed ascii and 🙂"]
with proxy.cursor() as cur:
    for i, s in enumerate(texts):
        cur.execute("insert into uni values (%s, %s)", (i, s))
proxy.commit()
rows = both("select id, s, length(s), char_length(s) from uni order by id")
equal("emoji round trip", [r[1] for r in rows], texts)
equal("stored bytes", [r[2] for r in rows], [len(s.encode("utf-8")) for s in texts])
equal("emoji literal", both("select '🦀' as crab, %s as p", ("🦀",)), (("🦀", "🦀"),))
ok("unicode")

# 4. select_db and ping.
for conn in (proxy, direct):
    conn.select_db("app")
both("select database()")
equal("select_db", query(proxy, "select database()")[1], (("app",),))
query(proxy, "create table if not exists in_app (x int)")
proxy.select_db("sbtest")
direct.select_db("sbtest")
equal("select_db again", both("select database()"), (("sbtest",),))
proxy.ping(reconnect=False)
direct.ping(reconnect=False)
equal("after ping", both("select 1 + 1"), ((2,),))
proxy.select_db("test")
direct.select_db("test")
ok("select_db and ping")

# 5. Errors carry the same code and message, and the session goes on.
for sql in ["select * from nope", "selec 1", "select * from mysql.user", "insert into uni values (0, 'dup')"]:
    same(f"error of {sql!r}", error_of(proxy, sql), error_of(direct, sql))
# COM_INIT_DB to a database app has no rights on (1044 from the database).
init_db_errors = []
for conn in (proxy, direct):
    try:
        conn.select_db("no_such_db")
        fail("select_db('no_such_db') did not fail")
    except pymysql.MySQLError as e:
        init_db_errors.append(e.args)
same("error of select_db('no_such_db')", *init_db_errors)
check(init_db_errors[0][0] == 1044, f"select_db('no_such_db'): {init_db_errors[0]}")
equal("after errors", both("select database(), 'still fine'"), (("test", "still fine"),))
ok("errors")

# 6. Multi-statements in one query: every result set, in order, equal to direct.
def results(conn, sql):
    out = []
    with conn.cursor() as cur:
        cur.execute(sql)
        while True:
            out.append((cur.description, cur.fetchall(), cur.rowcount))
            if not cur.nextset():
                break
    return out

multi_proxy = connect(PROXY, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
multi_direct = connect(DIRECT, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
sql = "select 1; select 'two', null; update uni set s = s where id < 0; select seq from seq_1_to_5"
got = results(multi_proxy, sql)
same("multi-statement results", got, results(multi_direct, sql))
equal("number of results", len(got), 4)
for conn in (multi_proxy, multi_direct):
    with conn.cursor() as cur:
        cur.execute("drop procedure if exists two_sets")
        cur.execute("create procedure two_sets(n int) begin select n; select n * 2, 'x'; end")
sql = "call two_sets(21)"
same("procedure results", results(multi_proxy, sql), results(multi_direct, sql))
ok("multi-statements")

# 7. An unbuffered cursor: read a few rows of a big result, then close it (PyMySQL
# reads and drops the rest); the session is still in step afterwards.
for conn in (proxy, direct):
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute("select seq, repeat('s', 200) from seq_1_to_200000")
        equal("first unbuffered rows", [r[0] for r in cur.fetchmany(3)], [1, 2, 3])
equal("after an unbuffered cursor", both("select 'in step'"), (("in step",),))
with proxy.cursor(pymysql.cursors.SSCursor) as cur:
    cur.execute("select seq from seq_1_to_100000")
    equal("all unbuffered rows", sum(r[0] for r in cur), 100000 * 100001 // 2)
ok("unbuffered cursor")

for conn in (proxy, direct, multi_proxy, multi_direct):
    conn.close()
