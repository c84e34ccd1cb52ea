"""A 20 MiB blob written and read back through the proxy: the query and the row are
each bigger than one 16 MiB packet."""

import hashlib
import os

from common import connect, equal, ok, ports, query, same

PROXY, DIRECT = ports()
BIG = 64 * 1024 * 1024
proxy = connect(PROXY, autocommit=True, max_allowed_packet=BIG)
direct = connect(DIRECT, autocommit=True, max_allowed_packet=BIG)

blob = os.urandom(20 * 1024 * 1024)
digest = hashlib.sha256(blob).hexdigest()

query(proxy, "drop table if exists blobs")
query(proxy, "create table blobs (id int primary key, b longblob)")
query(proxy, "insert into blobs values (1, %s)", (blob,))
# Exactly the packet boundary sizes too: 16 MiB - 1 of payload, and 16 MiB.
for i, size in ((2, 0xFFFFFF - 40), (3, 0xFFFFFF), (4, 0)):
    query(proxy, "insert into blobs values (%s, %s)", (i, os.urandom(size)))

rows = query(proxy, "select b from blobs where id = 1")[1]
equal("length read back", len(rows[0][0]), len(blob))
equal("sha256 read back", hashlib.sha256(rows[0][0]).hexdigest(), digest)
summary = "select id, length(b), sha2(b, 256) from blobs order by id"
got = query(proxy, summary)
same("blob summary", got, query(direct, summary))
equal("sha256 on the server", got[1][0][2], digest)
for i in (2, 3, 4):
    p = query(proxy, "select b from blobs where id = %s", (i,))[1][0][0]
    d = query(direct, "select b from blobs where id = %s", (i,))[1][0][0]
    same(f"blob {i}", hashlib.sha256(p).hexdigest(), hashlib.sha256(d).hexdigest())
# The session is still in step after the big packets.
equal("after", query(proxy, "select 'small'")[1], (("small",),))
ok("20 MiB blob round trip")
