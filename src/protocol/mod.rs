//! MySQL/MariaDB wire protocol: packet framing, the connection-phase messages,
//! `mysql_native_password` and `caching_sha2_password` arithmetic, what the proxy
//! knows of a password, views of OK/ERR/EOF replies, and the PROXY protocol header
//! sent ahead of a relayed connection.
//!
//! Everything here is pure (no I/O besides the tokio-util codec traits) and never
//! panics on peer bytes: every read is bounds-checked and reports a [`ProtocolError`].

pub mod auth;
pub mod buf;
pub mod caching_sha2;
pub mod codec;
pub mod compress;
pub mod constants;
pub mod credential;
mod error;
pub mod handshake;
pub mod packets;
pub mod proxy_header;

pub use error::ProtocolError;
