//! MySQL/MariaDB wire protocol: packet framing, the connection-phase messages,
//! `mysql_native_password` arithmetic, and views of OK/ERR/EOF replies.
//!
//! Everything here is pure (no I/O besides the tokio-util codec traits) and never
//! panics on peer bytes: every read is bounds-checked and reports a [`ProtocolError`].

pub mod auth;
pub mod buf;
pub mod codec;
pub mod constants;
mod error;
pub mod handshake;
pub mod packets;

pub use error::ProtocolError;
