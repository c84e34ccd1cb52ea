"""Query attributes (CLIENT_QUERY_ATTRIBUTES) with mysql-connector-python (pure
Python): MySQL only, with its query_attributes component installed. Directly the
server sees the attribute; the proxy does not offer the capability (it would change
COM_QUERY's layout), so through it the client sends none and the statement runs."""

from common import connector, equal, ok, ports

PROXY, DIRECT = ports()
SQL = "SELECT mysql_query_attribute_string('who'), 6 * 7"


def attribute_seen(port):
    conn = connector(port)
    cur = conn.cursor()
    cur.add_attribute("who", "me")
    cur.execute(SQL)
    rows = cur.fetchall()
    cur.clear_attributes()
    cur.execute("SELECT 'in step'")
    equal("after the attribute", cur.fetchall(), [("in step",)])
    conn.close()
    return rows


# Through the proxy first: its login takes the full path and fills the server's cache,
# which this client, with TLS off, needs to log in directly.
equal("through the proxy", attribute_seen(PROXY), [(None, 42)])
equal("directly", attribute_seen(DIRECT), [("me", 42)])
ok("query attributes")
