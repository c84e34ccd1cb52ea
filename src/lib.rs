//! switchyard — a MySQL/MariaDB wire-protocol proxy for blue/green switchovers.
//!
//! The crate is a library plus the `switchyard` binary (`src/main.rs`). Its modules are
//! layers: each names only modules below it (`tests/layers.rs` checks this), bottom up:
//! - [`telemetry`]: metrics, readiness and switchover traces; every layer records into
//!   it, it names none of them.
//! - [`protocol`]: packet codec, handshake and authentication, OK/ERR/EOF views — no I/O
//!   policy.
//! - [`config`]: the TOML configuration, its defaults and validation.
//! - [`control`]: the control plane — SQL to a server as the control account
//!   (read_only, GTID positions, replication, the process list).
//! - [`topology`]: the two sides, where sessions are routed, the config in force.
//! - [`proxy`]: listener, client sessions, the relay, the gate, per-session state; a
//!   small interface for the switchover ([`proxy::Proxy`]).
//! - [`provision`]: making and checking green from blue — schema diff, data verify —
//!   through the control plane, never the proxy.
//! - [`switchover`]: phases, orchestrator, guardrails, journal, repair and recovery.
//! - [`admin`]: the admin socket's command language, server, client and the handler
//!   that runs commands against a live proxy.
//! - [`server`]: startup wiring — builds the layers, recovers, serves, shuts down.
//! - [`demo`]: `switchyard demo`, a local pair with the proxy in front.
//! - [`testbed`]: starts real MariaDB servers for the demo and the tests (stands alone).
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod control;
pub mod demo;
pub mod protocol;
pub mod provision;
pub mod proxy;
pub mod server;
pub mod switchover;
pub mod telemetry;
pub mod testbed;
pub mod topology;
