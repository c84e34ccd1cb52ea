#!/usr/bin/env python3
"""Seed corpora from real traffic.

Starts a throw-away mariadbd (temp dir, free port), puts a recording TCP relay in
front of it, runs real clients through the relay (the mariadb CLI, PyMySQL, sysbench),
then cuts the recorded streams into packets and writes a few seed files per fuzz
target into fuzz/corpus/<target>/seed-*. Run from anywhere: python3 fuzz/seed.py
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

CORPUS = Path(__file__).resolve().parent / "corpus"
USER, PASSWORD = "app", "app-pw"

CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_CONNECT_ATTRS = 0x100000
CLIENT_SESSION_TRACK = 1 << 23
CLIENT_DEPRECATE_EOF = 1 << 24

COM_INIT_DB, COM_QUERY, COM_FIELD_LIST, COM_STATISTICS = 0x02, 0x03, 0x04, 0x09
COM_PING, COM_CHANGE_USER, COM_STMT_PREPARE, COM_STMT_EXECUTE = 0x0E, 0x11, 0x16, 0x17
COM_STMT_FETCH, COM_SET_OPTION, COM_RESET_CONNECTION = 0x1C, 0x1B, 0x1F
# Order of the fuzz target's `Kind` enum.
EXPECT = {"ResultSets": 0, "Prepare": 1, "FieldList": 2, "Fetch": 3, "Single": 4, "Raw": 5}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp):
    data, sock = tmp / "data", tmp / "mysqld.sock"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--socket={sock}",
         f"--log-error={tmp / 'error.log'}", f"--pid-file={tmp / 'pid'}",
         "--local-infile=1", "--innodb-buffer-pool-size=16M", "--skip-log-bin"])
    for _ in range(300):
        if sock.exists():
            break
        time.sleep(0.1)
    else:
        raise SystemExit("mariadbd did not start: " + (tmp / "error.log").read_text())
    setup = (f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
             f"GRANT ALL ON *.* TO '{USER}'@'%'; CREATE DATABASE shop;"
             "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20));"
             "INSERT INTO shop.t VALUES (1,'a'),(2,'b'),(3,NULL);")
    for _ in range(100):
        if subprocess.run(["mariadb", f"--socket={sock}", "-uroot", "-e", setup],
                          stderr=subprocess.DEVNULL).returncode == 0:
            return server, port
        time.sleep(0.2)
    raise SystemExit("could not create the seed account")


class Relay:
    """A TCP relay that records, per connection, every chunk read in either direction."""

    def __init__(self, backend_port):
        self.backend = backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.backend))
            log, lock = [], threading.Lock()
            self.connections.append(log)
            for src, dst, way in ((client, server, "c2s"), (server, client, "s2c")):
                threading.Thread(target=self.pipe, args=(src, dst, way, log, lock),
                                 daemon=True).start()

    @staticmethod
    def pipe(src, dst, way, log, lock):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with lock:
                log.append((way, data))
            dst.sendall(data)


def run_clients(port, tmp):
    cli = ["mariadb", "-h127.0.0.1", f"-P{port}", f"-u{USER}", f"-p{PASSWORD}", "--skip-ssl"]
    statements = [
        "SELECT 1, 'x', NULL, 2.5",
        "USE shop; SELECT * FROM t ORDER BY id; SELECT COUNT(*) FROM t WHERE v IS NULL",
        "CREATE TEMPORARY TABLE shop.tmp (a INT); INSERT INTO shop.tmp VALUES (1); DROP TEMPORARY TABLE shop.tmp",
        "SET @x := 5; SELECT @x, GET_LOCK('seed', 1), RELEASE_LOCK('seed')",
        "LOCK TABLES shop.t READ; UNLOCK TABLES",
        "XA START 'seed'; SELECT 1; XA END 'seed'; XA ROLLBACK 'seed'",
        "PREPARE s FROM 'SELECT ?'; SET @a=1; EXECUTE s USING @a; DEALLOCATE PREPARE s",
        "HANDLER shop.t OPEN AS h; HANDLER h READ FIRST; HANDLER h CLOSE",
        "SET SESSION sql_mode='ANSI_QUOTES', autocommit=0; START TRANSACTION; UPDATE shop.t SET v='c' WHERE id=2; ROLLBACK",
        "SELECT * FROM no_such_table",
        "SHOW VARIABLES LIKE 'version%'",
        "CREATE PROCEDURE shop.p() BEGIN SELECT 1; SELECT 2, 3; END; CALL shop.p(); DROP PROCEDURE shop.p",
        "KILL QUERY 999999",
    ]
    for sql in statements:
        subprocess.run(cli + ["-e", sql], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A client asking for another plugin gets an AuthSwitchRequest.
    subprocess.run(cli + ["--default-auth=caching_sha2_password", "-e", "SELECT 2"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    infile = tmp / "rows.txt"
    infile.write_text("10\tx\n11\ty\n")
    conn = pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                           database="shop", local_infile=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        cur.execute("SELECT id, v FROM t WHERE id > %s", (1,))
        cur.fetchall()
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(20, "p"), (21, "q")])
        cur.execute(f"LOAD DATA LOCAL INFILE '{infile}' INTO TABLE t")
        cur.execute("SELECT 1; SELECT 2; SET @y = 'z'")
        while cur.nextset():
            pass
    conn.ping()
    conn.select_db("mysql")
    conn.commit()
    change_user(conn)
    conn.close()
    with pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                         cursorclass=pymysql.cursors.SSCursor) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM shop.t")
            cur.fetchall()

    sb = ["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
          f"--mysql-user={USER}", f"--mysql-password={PASSWORD}", "--mysql-db=shop",
          "--tables=1", "--table-size=20", "--mysql-ssl=off"]
    for step in (["oltp_read_write", "prepare"],
                 ["oltp_read_write", "--events=3", "--threads=1", "run"],
                 ["oltp_read_write", "cleanup"]):
        subprocess.run(sb + step, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def change_user(conn):
    """COM_CHANGE_USER over the PyMySQL connection, with PyMySQL's own scramble."""
    from pymysql import _auth

    token = _auth.scramble_native_password(PASSWORD.encode(), conn.salt)
    attrs = b"\x04_pid\x041234"
    payload = (bytes([COM_CHANGE_USER]) + USER.encode() + b"\0" + bytes([len(token)]) + token
               + b"shop\0" + struct.pack("<H", 45) + b"mysql_native_password\0"
               + bytes([len(attrs)]) + attrs)
    conn._execute_command(COM_CHANGE_USER, payload[1:])
    conn._read_packet()


def packets(log):
    """(direction, sequence id, payload) in the order the packets completed."""
    bufs = {"c2s": b"", "s2c": b""}
    out = []
    for way, data in log:
        bufs[way] += data
        while len(bufs[way]) >= 4:
            length = int.from_bytes(bufs[way][:3], "little")
            if len(bufs[way]) < 4 + length:
                break
            out.append((way, bufs[way][3], bufs[way][4:4 + length]))
            bufs[way] = bufs[way][4 + length:]
    return out


def enum_tag(index, count):
    """The u32 that `arbitrary`'s derived enums map to variant `index`."""
    return -(-(index << 32) // count)


def expect_of(command):
    return {COM_QUERY: "ResultSets", COM_STMT_EXECUTE: "ResultSets",
            COM_STMT_PREPARE: "Prepare", COM_FIELD_LIST: "FieldList",
            COM_STMT_FETCH: "Fetch", COM_STATISTICS: "Raw"}.get(command, "Single")


def arb_bytes(b):
    """`Vec<u8>` as `arbitrary` reads it: a continue flag before each element."""
    return b"".join(bytes([1, x]) for x in b) + b"\0"


class Seeds:
    def __init__(self):
        self.files = {}

    def add(self, target, name, data, limit):
        """Keeps at most `limit` distinct seeds of this name for this target."""
        names = self.files.setdefault(target, {})
        taken = sum(1 for n in names if n.rsplit("-", 1)[0] == f"seed-{name}")
        if taken < limit and data not in names.values():
            names[f"seed-{name}-{taken:02}"] = data

    def write(self):
        for target, names in self.files.items():
            d = CORPUS / target
            d.mkdir(parents=True, exist_ok=True)
            for old in d.glob("seed-*"):
                old.unlink()
            for name, data in names.items():
                (d / name).write_bytes(data)
            print(f"{target}: {len(names)} seeds, {sum(map(len, names.values()))} bytes")


def boundary_seeds(seeds, before, after):
    """codec_boundary: a captured command and answer around each boundary size."""
    for size in range(6):
        body = bytes([0]) + struct.pack("<I", enum_tag(size, 6)) + b"\x5a"
        body += arb_bytes(before[:200]) + arb_bytes(after[:200])
        body += b"".join(b"\x01" + struct.pack("<I", c) for c in (4, 0xFFFFFF + 3)) + b"\0"
        seeds.add("codec_boundary", f"size{size}", body, 1)


def split(connections, seeds):
    for log in connections:
        stream = {"c2s": b"", "s2c": b""}
        for way, data in log:
            stream[way] += data
        pk = packets(log)
        if not pk:
            continue
        # codec: start seq 0, no size limit, three cuts, no payloads, then the raw wire.
        for way in ("s2c", "c2s"):
            header = bytes([0]) + struct.pack("<I", 0xFFFFFFFF)
            header += b"".join(b"\x01" + struct.pack("<I", c) for c in (3, 5, 77)) + b"\0"
            header += b"\0"
            seeds.add("codec", way, header + stream[way][:4096], 6)
        greeting = next((p for w, s, p in pk if w == "s2c"), b"")
        response = next((p for w, s, p in pk if w == "c2s"), b"")
        seeds.add("handshake", "greeting", greeting, 3)
        seeds.add("handshake", "response", response, 8)
        if len(response) >= 32:
            caps = int.from_bytes(response[:4], "little") | CLIENT_SSL
            seeds.add("handshake", "ssl-request", struct.pack("<I", caps) + response[4:32], 2)
        caps = int.from_bytes(response[:4], "little") if len(response) >= 4 else 0
        server_caps = 0
        if greeting:
            v_end = greeting.find(b"\0", 1)
            fixed = greeting[v_end + 1:]
            if len(fixed) >= 31:
                server_caps = (int.from_bytes(fixed[13:15], "little")
                               | int.from_bytes(fixed[18:20], "little") << 16)
                mariadb_caps = int.from_bytes(fixed[27:31], "little")
        caps &= server_caps or 0xFFFFFFFF
        in_handshake = True
        command, answer = None, []
        params_of = {}  # statement id -> parameter count, from prepare answers
        for way, seq, payload in pk[2:] + [("c2s", 0, b"")]:
            if in_handshake and way == "s2c" and payload[:1] == b"\xfe":
                seeds.add("handshake", "auth-switch", payload, 3)
            if way == "s2c":
                if payload[:1] in (b"\x00",) and in_handshake:
                    in_handshake = False
                answer.append(payload)
                head = payload[:1]
                if command and command[:1] == bytes([COM_STMT_PREPARE]) and len(answer) == 1:
                    seeds.add("packets", "prepare-ok", payload, 4)
                    if payload[:1] == b"\x00" and len(payload) >= 9:
                        params_of[payload[1:5]] = payload[7:9]
                elif head == b"\xfe" and len(payload) < 9:
                    seeds.add("packets", "eof", payload, 4)
                elif head in (b"\x00", b"\xfe"):
                    seeds.add("packets", "ok", struct.pack("<I", caps) + payload, 12)
                elif head == b"\xff":
                    seeds.add("packets", "err", payload, 4)
                continue
            if way == "c2s" and seq == 0:
                if command and answer:
                    kind = EXPECT[expect_of(command[0])]
                    body = struct.pack("<III", enum_tag(kind, len(EXPECT)), caps,
                                       mariadb_caps if greeting else 0)
                    body += b"".join(b"\x01" + arb_bytes(p[:300]) + b"\0" for p in answer[:40])
                    seeds.add("response", f"cmd{command[0]:02x}", body + b"\0", 6)
                    if command[:1] == bytes([COM_QUERY]):
                        boundary_seeds(seeds, command, answer[0])
                command, answer = payload, []
                if payload[:1] == bytes([COM_QUERY]):
                    seeds.add("scan", "query", payload[1:], 40)
                if payload[:1] in (b"\x17", b"\xfa") and payload[1:5] in params_of:
                    kind = "execute" if payload[:1] == b"\x17" else "bulk"
                    seeds.add("execute", kind, params_of[payload[1:5]] + payload[:512], 12)

                if payload[:1] == bytes([COM_CHANGE_USER]):
                    seeds.add("change_user", "change-user", struct.pack("<I", caps) + payload[1:], 4)
                    in_handshake = True
        # Also the connection's own handshake response, read as COM_CHANGE_USER fields.
        if len(response) > 32:
            seeds.add("change_user", "response-tail", struct.pack("<I", caps) + response[32:], 3)


def main():
    for tool in ("mariadbd", "mariadb-install-db", "mariadb", "sysbench"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found on PATH (scripts/install-deps.sh installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="seed-"))
    server = None
    try:
        server, port = start_server(tmp)
        relay = Relay(port)
        run_clients(relay.port, tmp)
        time.sleep(0.5)
        seeds = Seeds()
        split(relay.connections, seeds)
        seeds.write()
    finally:
        if server:
            server.terminate()
            server.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
