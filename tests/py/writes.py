"""executemany, transactions with autocommit off, and LOAD DATA LOCAL INFILE through
the proxy; every result is checked against a direct connection to blue."""

import os
import random
import tempfile
import zlib

import pymysql

from common import check, connect, equal, fail, in_transaction, ok, ports, query, same

PROXY, DIRECT = ports()
proxy = connect(PROXY, autocommit=True)
direct = connect(DIRECT, autocommit=True)

# 1. executemany: PyMySQL turns INSERT … VALUES into multi-row INSERTs (split to fit
# max_allowed_packet); other statements run one by one.
query(proxy, "drop table if exists many")
query(proxy, "create table many (id int primary key, name varchar(50), score double)")
rows = [(i, f"name-{i}-ü", i / 7) for i in range(5000)]
with proxy.cursor() as cur:
    count = cur.executemany("insert into many (id, name, score) values (%s, %s, %s)", rows)
    equal("executemany insert rowcount", count, len(rows))
    count = cur.executemany("update many set score = score + %s where id = %s", [(1, i) for i in range(0, 5000, 10)])
    equal("executemany update rowcount", count, 500)
summary = "select count(*), sum(crc32(concat_ws('|', id, name, score))) from many"
same("after executemany", query(proxy, summary), query(direct, summary))
equal("rows", query(direct, "select count(*) from many")[1], ((5000,),))
ok("executemany")

# 2. autocommit off: commit makes rows visible to others, rollback drops them.
tx = connect(PROXY, autocommit=False)
query(proxy, "drop table if exists txn")
query(proxy, "create table txn (id int primary key, v varchar(10)) engine=innodb")
with tx.cursor() as cur:
    cur.execute("insert into txn values (1, 'kept')")
    equal("own uncommitted row", query(tx, "select count(*) from txn")[1], ((1,),))
    equal("others see nothing yet", query(direct, "select count(*) from txn")[1], ((0,),))
    tx.commit()
    equal("committed", query(direct, "select v from txn")[1], (("kept",),))
    cur.executemany("insert into txn values (%s, %s)", [(2, "gone"), (3, "gone")])
    equal("in transaction", in_transaction(tx), 1)
    tx.rollback()
    equal("rolled back", query(direct, "select id from txn order by id")[1], ((1,),))
    equal("own view after rollback", query(tx, "select id from txn order by id")[1], ((1,),))
    tx.begin()
    cur.execute("update txn set v = 'changed' where id = 1")
    tx.rollback()
    tx.autocommit(True)
    cur.execute("insert into txn values (4, 'auto')")
equal("final", query(direct, "select id, v from txn order by id")[1], ((1, "kept"), (4, "auto")))
tx.close()
ok("autocommit off, commit and rollback")

# 3. LOAD DATA LOCAL INFILE with local_infile=True, then the same file directly.
rng = random.Random(7)
lines = []
for i in range(20000):
    note = "\\N" if i % 9 == 0 else "".join(rng.choice("abcxyzäö🙂 ,") for _ in range(rng.randrange(0, 40)))
    lines.append(f"{i}\t{rng.randrange(-10**9, 10**9)}\t{note}\n")
with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv", delete=False) as f:
    f.write("".join(lines))
    path = f.name
try:
    loaded = {}
    for name, port in (("proxy", PROXY), ("direct", DIRECT)):
        conn = connect(port, local_infile=True, autocommit=True)
        table = f"ld_{name}"
        query(conn, f"drop table if exists {table}")
        query(conn, f"create table {table} (id int primary key, n bigint, note varchar(200)) character set utf8mb4")
        with conn.cursor() as cur:
            count = cur.execute(
                f"load data local infile %s into table {table} character set utf8mb4", (path,)
            )
        equal(f"rows loaded ({name})", count, len(lines))
        loaded[name] = query(
            direct,
            f"select count(*), sum(crc32(concat_ws('|', id, n, ifnull(note, 'NULL')))), sum(n) from {table}",
        )[1]
        conn.close()
    same("loaded table", loaded["proxy"], loaded["direct"])
    expected = sum(zlib.crc32("|".join(l.rstrip("\n").split("\t")).replace("\\N", "NULL").encode()) for l in lines)
    equal("checksum of what was loaded", int(loaded["proxy"][0][1]), expected)
    # Without local_infile the client refuses the server's file request: same error.
    errors = {}
    for name, port in (("proxy", PROXY), ("direct", DIRECT)):
        conn = connect(port)
        try:
            query(conn, "load data local infile %s into table ld_direct", (path,))
            fail(f"LOAD DATA LOCAL without local_infile succeeded ({name})")
        except pymysql.MySQLError as e:
            errors[name] = (type(e).__name__, e.args)
        equal(f"after refused load ({name})", query(conn, "select 'usable'")[1], (("usable",),))
        conn.close()
    same("LOAD DATA LOCAL without local_infile", errors["proxy"], errors["direct"])
finally:
    os.unlink(path)
ok("LOAD DATA LOCAL INFILE")

proxy.close()
direct.close()
