"""PyMySQL through the proxy over TLS capped at version 1.2 (the CA in
SWITCHYARD_TLS_CA): prints `version=TLSv1.2` when the proxy accepts it, or
`refused: ERROR` when the TLS handshake fails; any other failure exits non-zero."""

import ssl

import pymysql

from common import TLS_CA, check, connect, ports, tls_context

PROXY, _ = ports()
check(TLS_CA, "SWITCHYARD_TLS_CA is not set")
context = tls_context(TLS_CA)
context.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    conn = connect(PROXY, ssl=context)
except pymysql.err.OperationalError as e:
    cause = e.__cause__ or e.__context__
    check(isinstance(cause, ssl.SSLError) or "SSL" in str(e), f"not a TLS failure: {e!r}")
    print(f"refused: {e}")
else:
    print(f"version={conn._sock.version()}")
