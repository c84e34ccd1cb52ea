"""connector_compress.py with mysql-connector-python's C extension (libmysqlclient
inside) instead of its pure-Python protocol."""

from common import require_cext

require_cext()

from connector_compress import main  # noqa: E402

main(use_pure=False)
