//! switchyard — a MySQL/MariaDB wire-protocol proxy for blue/green switchovers.
//!
//! The crate is a library plus the `switchyard` binary (`src/main.rs`). Modules:
//! - [`protocol`]: packet codec, handshake and authentication, OK/ERR/EOF views.
//! - [`config`]: the TOML configuration, its defaults and validation.
//! - [`proxy`]: listener, client sessions, the relay and per-session state.
//! - [`testbed`]: starts a local MariaDB blue/green pair (demo and tests).
//! - [`demo`]: `switchyard demo`, the pair with the proxy in front.
#![forbid(unsafe_code)]

pub mod admin;
pub mod backend;
pub mod config;
pub mod demo;
pub mod protocol;
pub mod proxy;
pub mod switchover;
pub mod testbed;
