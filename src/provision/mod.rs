//! Making and checking green from blue, through the control plane only (never the
//! proxy): `schema` reads both sides' schemas and says which differences row-based
//! replication can live with; `verify` compares the data chunk by chunk at one GTID
//! position on both sides.

mod column_type;
pub mod schema;
pub mod schema_diff;
pub mod verify;
