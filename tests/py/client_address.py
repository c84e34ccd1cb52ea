"""One PyMySQL session through the proxy from a chosen source address, driven line by
line from stdin by tests/proxy_protocol.rs.

Run as `python3 client_address.py PROXY_PORT BIND_ADDRESS` with the account in
SWITCHYARD_USER / SWITCHYARD_PASSWORD. It logs in from BIND_ADDRESS and prints one
JSON line: `{"connected": true}`, or `{"error": CODE, "message": ...}` for a refused
login (and exits 0), with `"seconds"` the login took. Then it answers each `check` line on stdin with one JSON line:
what the server the session is on says of it (its account, its host in the process
list, the server's id). Anything unexpected exits non-zero.
"""

import json
import os
import sys
import time

import pymysql


def main():
    port, bind = int(sys.argv[1]), sys.argv[2]
    started = time.monotonic()
    try:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=os.environ["SWITCHYARD_USER"],
            password=os.environ["SWITCHYARD_PASSWORD"],
            bind_address=bind,
            autocommit=True,
            connect_timeout=10,
            read_timeout=60,
        )
    except pymysql.MySQLError as e:
        took = time.monotonic() - started
        print(json.dumps({"error": e.args[0], "message": e.args[1], "seconds": took}), flush=True)
        return
    took = time.monotonic() - started
    print(json.dumps({"connected": True, "seconds": took}), flush=True)
    for line in sys.stdin:
        if line.strip() != "check":
            sys.exit(f"unknown command {line!r}")
        with conn.cursor() as cur:
            cur.execute(
                "select current_user(), host, @@server_id "
                "from information_schema.processlist where id = connection_id()"
            )
            user, host, server_id = cur.fetchone()
        print(json.dumps({"user": user, "host": host, "server_id": server_id}), flush=True)
    conn.close()


main()
