"""KILL through the proxy: a client learns its connection id from the handshake
(`thread_id()`), and `KILL QUERY id`, `KILL id` and COM_PROCESS_KILL with that id
act on that client's session, as they do directly."""

import threading
import time

import pymysql

from common import connect, fail, ok, ports, query, same

PROXY, DIRECT = ports()


def wait_for_sleep(observer, marker):
    """Block until a statement containing `marker` is sleeping (seen in the process
    list of app's own threads in the state `User sleep`: a kill that lands earlier,
    while the statement is still being opened, ends it with ERR 1317 instead of
    SLEEP's 1, and the proxy's and the direct run would differ by timing alone)."""
    for _ in range(1000):
        rows = query(observer, "select count(*) from information_schema.processlist where info like %s and info not like '%%processlist%%' and state = 'User sleep'", (f"%{marker}%",))[1]
        if rows[0][0]:
            return
        time.sleep(0.01)
    fail(f"the statement {marker!r} never showed up in the process list")


def kill_query(port, how, id_of=lambda conn: conn.thread_id(), victim=None, seconds=20):
    """Run SLEEP(seconds) on `victim` (a new connection unless given), kill it from
    another connection with `how` and the id `id_of(victim)`; returns what the
    sleeping connection saw and whether it is still usable."""
    victim = victim or connect(port, autocommit=True)
    killer = connect(port, autocommit=True)
    marker = f"sleep_marker_{how.replace(' ', '_')}"
    outcome = {}

    def sleep():
        try:
            outcome["rows"] = query(victim, f"select sleep({seconds}) as {marker}")[1]
        except pymysql.MySQLError as e:
            outcome["error"] = e.args[0]

    tid = id_of(victim)
    t = threading.Thread(target=sleep)
    t.start()
    wait_for_sleep(killer, marker)
    try:
        if how == "COM_PROCESS_KILL":
            killer.kill(tid)
        else:
            query(killer, f"{how} {tid}")
    except pymysql.MySQLError as e:
        outcome["kill error"] = e.args
        # Not left sleeping: end the query by the id the handshake gave.
        killer.kill(victim.thread_id())
    t.join()
    try:
        outcome["after"] = query(victim, "select 'alive'")[1]
    except pymysql.MySQLError as e:
        outcome["after"] = ("error", e.args[0])
    killer.close()
    return outcome


if __name__ == "__main__":
    for how in ["KILL QUERY", "KILL", "COM_PROCESS_KILL"]:
        same(how, kill_query(PROXY, how), kill_query(DIRECT, how))
    ok("kill by the handshake's connection id")
