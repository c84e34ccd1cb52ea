//! Connection-phase messages: the server greeting, the client's reply (and its
//! SSLRequest prefix), auth-method switches, and `COM_CHANGE_USER`, which reruns
//! authentication inside a session, and the connection attributes a client sends.
//!
//! Each message is a plain struct with `parse` (borrowing nothing: fields are
//! copied into `Bytes`, a connection-phase cost only) and `encode` (payload only,
//! no packet header).

mod attrs;
mod auth_switch;
mod change_user;
mod response;
mod server;

pub use attrs::connect_attr;
pub use auth_switch::AuthSwitchRequest;
pub use change_user::ChangeUser;
pub use response::{is_ssl_request, unoffered_framing, HandshakeResponse};
pub use server::ServerHandshake;

use bytes::{BufMut, BytesMut};

/// Writes `s` followed by a NUL.
fn put_cstr(dst: &mut BytesMut, s: &[u8]) {
    dst.put_slice(s);
    dst.put_u8(0);
}
