//! Data verification: blue and green compared table by table in checksummed key-range chunks taken at the same GTID position on both.
