"""mysql-connector-python (pure Python; connector_compress_cext.py runs it with the C
extension) with compress=True through the proxy: the
proxy offers compression, so the client compresses, and everything it reads is what
it reads from the server directly (also compressed): small and 2 MiB values, 100
rows of 1 KiB, a 20 MiB BLOB sent and read back, LOAD DATA LOCAL INFILE."""

import os
import signal
import tempfile

from common import check, connector, fail, ports


def connect(port, use_pure):
    return connector(
        port,
        connection_timeout=20,
        compress=True,
        allow_local_infile=True,
        use_pure=use_pure,
    )


def session(port, path, use_pure):
    conn = connect(port, use_pure)
    cur = conn.cursor()
    out = []
    for sql in [
        "SELECT 6 * 7, 'two', NULL, 4.5",
        "SELECT REPEAT(SHA2('x', 256), 32768)",
        "SELECT LPAD(n, 6, '0'), REPEAT('row text ', 113) FROM "
        "(SELECT a.n * 100 + b.n AS n FROM "
        " (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"
        "  UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,"
        " (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"
        "  UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b) t"
        " ORDER BY n",
    ]:
        cur.execute(sql)
        out.append(cur.fetchall())
    cur.execute("DROP TABLE IF EXISTS cblob")
    cur.execute("CREATE TABLE cblob (id INT PRIMARY KEY, b LONGBLOB)")
    blob = bytes(range(256)) * (20 * 4096)
    cur.execute("INSERT INTO cblob VALUES (1, %s)", (blob,))
    cur.execute("SELECT b FROM cblob WHERE id = 1")
    got = cur.fetchall()[0][0]
    check(bytes(got) == blob, f"20 MiB BLOB through port {port} came back different")
    cur.execute("DROP TABLE IF EXISTS cload")
    cur.execute("CREATE TABLE cload (id INT PRIMARY KEY, note VARCHAR(60))")
    cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE cload FIELDS TERMINATED BY ','")
    cur.execute("SELECT COUNT(*), SUM(CRC32(note)) FROM cload")
    out.append(cur.fetchall())
    conn.commit()
    conn.close()
    return out


def main(use_pure):
    proxy, direct_port = ports()
    # A hang guard, not a timing assertion.
    signal.signal(signal.SIGALRM, lambda *_: fail("hang: no answer within 120 s"))
    signal.alarm(120)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.csv")
        with open(path, "w") as f:
            for i in range(30000):
                f.write(f"{i},note {i} {i * 2654435761 % 1000003}\n")
        # Through the proxy first: on MySQL its login fills the server's cache, which
        # this client, with TLS off, needs to log in directly.
        proxied = session(proxy, path, use_pure)
        direct = session(direct_port, path, use_pure)
    check(proxied == direct, "what the compressed client read differs from direct")
    check(str(direct[0][0][:3]) == "(42, 'two', None)", f"{direct[0]}")
    check(len(direct[2]) == 100, f"{len(direct[2])} rows")
    check(direct[3][0][0] == 30000, f"{direct[3]}")
    print("ok")


if __name__ == "__main__":
    main(use_pure=True)
