"""`KILL QUERY n` where n is what the victim's `SELECT CONNECTION_ID()` returned (the
id applications log, and the one SHOW PROCESSLIST shows): directly, it interrupts the
victim's query. Through the proxy it must do the same, and above all must not hit
another session whose proxy-assigned (handshake) id happens to be n."""

import sys

from common import connect, ok, ports, query, same
from kill import kill_query

PROXY, DIRECT = ports()


def connection_id(conn):
    return query(conn, "select connection_id()")[1][0][0]


# 1. Plain case: nobody else has that id.
same(
    "KILL QUERY <CONNECTION_ID()>",
    kill_query(PROXY, "KILL QUERY", connection_id),
    kill_query(DIRECT, "KILL QUERY", connection_id),
)

# 2. Open sessions until one's CONNECTION_ID() equals another one's handshake id
# (when the two kinds of id never collide, as when they are the same, there is no
# such pair and nothing more to check).
by_handshake_id = {}
by_connection_id = {}
victim = bystander = None
for _ in range(60):
    conn = connect(PROXY, autocommit=True)
    tid, cid = conn.thread_id(), connection_id(conn)
    by_handshake_id[tid] = conn
    by_connection_id[cid] = conn
    if by_handshake_id.get(cid) not in (None, conn):
        victim, bystander = conn, by_handshake_id[cid]
    elif by_connection_id.get(tid) not in (None, conn):
        victim, bystander = by_connection_id[tid], conn
    if victim:
        break
if victim is None:
    ok("KILL QUERY by CONNECTION_ID() (no id collision in 60 sessions)")
    sys.exit(0)
print(
    f"victim: handshake id {victim.thread_id()}, CONNECTION_ID() {connection_id(victim)}; "
    f"bystander: handshake id {bystander.thread_id()}, CONNECTION_ID() {connection_id(bystander)}"
)
outcome = kill_query(PROXY, "KILL QUERY", connection_id, victim=victim, seconds=5)
same("KILL QUERY <victim's CONNECTION_ID()> while another session has that handshake id",
     outcome, kill_query(DIRECT, "KILL QUERY", connection_id, seconds=5))
ok("KILL QUERY by CONNECTION_ID()")
