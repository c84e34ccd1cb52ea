//! Local MariaDB blue/green pair.
