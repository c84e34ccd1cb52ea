"""8 connections through the proxy at once, each on its own thread doing 200 inserts,
each followed by selects that check what it just wrote."""

import threading
import traceback

from common import connect, equal, fail, ok, ports, query

PROXY, DIRECT = ports()
THREADS = 8
INSERTS = 200

setup = connect(DIRECT, autocommit=True)
query(setup, "drop table if exists conc")
query(setup, "create table conc (id int auto_increment primary key, worker int, n int, v varchar(40), key (worker))")

errors = []


def work(worker):
    try:
        conn = connect(PROXY, autocommit=True)
        with conn.cursor() as cur:
            for n in range(INSERTS):
                value = f"w{worker}-n{n}-🧵"
                cur.execute("insert into conc (worker, n, v) values (%s, %s, %s)", (worker, n, value))
                last = cur.lastrowid
                cur.execute("select worker, n, v from conc where id = %s", (last,))
                row = cur.fetchone()
                if row != (worker, n, value):
                    raise AssertionError(f"worker {worker}: row {last} is {row!r}")
                cur.execute("select count(*), last_insert_id() from conc where worker = %s", (worker,))
                count, last_id = cur.fetchone()
                if (count, last_id) != (n + 1, last):
                    raise AssertionError(f"worker {worker}: count {count}, last_insert_id {last_id} after insert {n} (id {last})")
        conn.close()
    except Exception:
        errors.append(f"worker {worker}:\n{traceback.format_exc()}")


threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    fail("\n".join(errors))

rows = query(setup, "select worker, count(*), count(distinct n), min(n), max(n) from conc group by worker order by worker")[1]
equal("rows per worker on blue", rows, tuple((w, INSERTS, INSERTS, 0, INSERTS - 1) for w in range(THREADS)))
ok(f"{THREADS} concurrent connections x {INSERTS} inserts")
