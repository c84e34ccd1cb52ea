"""PyMySQL over TLS (verified with SWITCHYARD_TLS_CA) through the proxy and directly:
the TLS session to each, queries, a prepared-style parameterised query, and the
certificate each presents. Prints one line per connection:
`peer PORT version=… cipher=… serial=HEX sha256=HEX`, which tests read back."""

import hashlib

from common import TLS_CA, check, connect, ok, ports, query, same

PROXY, DIRECT = ports()
check(TLS_CA, "SWITCHYARD_TLS_CA is not set")

results = {}
for name, port in (("proxy", PROXY), ("direct", DIRECT)):
    conn = connect(port, autocommit=True)
    sock = conn._sock
    cert = sock.getpeercert()
    der = sock.getpeercert(binary_form=True)
    print(
        f"peer {port} version={sock.version()} cipher={sock.cipher()[0]} "
        f"serial={cert['serialNumber']} sha256={hashlib.sha256(der).hexdigest()}"
    )
    check(sock.version() in ("TLSv1.2", "TLSv1.3"), f"{name}: {sock.version()}")
    query(conn, "drop table if exists tls_" + name)
    query(conn, f"create table tls_{name} (id int primary key, v varchar(64))")
    query(conn, f"insert into tls_{name} values (%s, %s), (%s, %s)", (1, "één", 2, "two"))
    results[name] = (
        query(conn, f"select id, v from tls_{name} order by id")[1],
        query(conn, "select %s, %s + 1", ("x" * 1000, 41))[1],
        query(conn, "select @@version_comment is not null")[1],
    )
    conn.close()
same("answers over TLS", results["proxy"], results["direct"])
ok("PyMySQL over verified TLS")
