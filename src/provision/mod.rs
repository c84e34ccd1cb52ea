//! Making and checking green from blue, through the control plane only (never the
//! proxy): `schema` reads both sides' schemas and says which differences row-based
//! replication can live with; `verify` compares the data chunk by chunk at one GTID
//! position on both sides (`chunks` the SQL text, `position` the snapshot and green's
//! stop, `tables` what to verify, `report` the output); `create` makes green from blue.

mod chunks;
mod column_type;
pub mod create;
mod position;
mod report;
pub mod schema;
pub mod schema_diff;
mod tables;
pub mod verify;
mod verify_error;
