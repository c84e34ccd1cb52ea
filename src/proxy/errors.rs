//! Errors of the proxy layer, by whose fault they are (client, backend, internal), and
//! the MySQL ERR packets the proxy itself sends, each from a named constructor with the
//! right code and SQLSTATE.

use bytes::Bytes;

use crate::protocol::constants::*;
use crate::protocol::packets::err_payload;
use crate::protocol::ProtocolError;

/// Why a session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client broke the protocol or went away.
    #[error("client: {0}")]
    Client(#[source] ProtocolError),
    /// The backend broke the protocol or went away.
    #[error("backend: {0}")]
    Backend(#[source] ProtocolError),
    /// The backend answered something the response walker cannot follow.
    #[error("backend: {0}")]
    BackendResponse(#[from] crate::proxy::response::ResponseError),
    /// Connecting or logging in to the backend failed.
    #[error("backend connect: {0}")]
    Connect(#[from] crate::proxy::upstream::ConnectError),
    /// The client's credentials were refused (already answered with ERR 1045).
    #[error("client: access denied")]
    AccessDenied,
    /// The client can only use caching_sha2_password and the config holds only the
    /// account's native hash (already answered with ERR 1251).
    #[error("client: account `{0}` needs its password in the config for caching_sha2_password")]
    NeedsPassword(String),
    /// `[tls] require_secure_transport` and a client that did not ask for TLS
    /// (already answered with ERR 3159).
    #[error("client: login without TLS refused (require_secure_transport)")]
    InsecureTransport,
    /// The proxy refuses clients until the active side is the one writable primary.
    #[error("refused: {0}")]
    Refused(String),
    /// The session held state that cannot move to another server.
    #[error("closed by the switchover: the session is pinned ({0})")]
    Pinned(&'static str),
    /// The client began a packet and did not finish it within `net_read_timeout`.
    #[error("client: no complete packet within net_read_timeout ({0:?})")]
    ReadTimeout(std::time::Duration),
    /// The client took too long to log in.
    #[error("client: handshake timed out")]
    HandshakeTimeout,
    /// The client's address is blocked after many authentication failures (already
    /// answered with ERR 1129).
    #[error("client: address blocked after many authentication failures")]
    HostBlocked,
}

impl SessionError {
    pub fn client_io(e: std::io::Error) -> Self {
        SessionError::Client(ProtocolError::Io(e))
    }
    pub fn backend_io(e: std::io::Error) -> Self {
        SessionError::Backend(ProtocolError::Io(e))
    }
}

/// ERR payloads the proxy sends on its own behalf.
pub mod reply {
    use super::*;

    pub fn too_many_connections() -> Bytes {
        err_payload(ER_CON_COUNT_ERROR, "08004", "Too many connections")
    }

    pub fn access_denied(user: &[u8], host: &str, using_password: bool) -> Bytes {
        let msg = format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            String::from_utf8_lossy(user),
            host,
            if using_password { "YES" } else { "NO" }
        );
        err_payload(ER_ACCESS_DENIED_ERROR, "28000", &msg)
    }

    /// ER_HOST_IS_BLOCKED, worded as the server's with the proxy's reason and remedy.
    pub fn host_blocked(host: &str, left: std::time::Duration) -> Bytes {
        let msg = format!(
            "Host '{host}' is blocked because of many authentication failures; \
             try again in {} s",
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        );
        err_payload(ER_HOST_IS_BLOCKED, "HY000", &msg)
    }

    pub fn packet_too_large(max: usize) -> Bytes {
        let msg = format!("Got a packet bigger than 'max_allowed_packet' bytes (switchyard max_packet_size is {max})");
        err_payload(ER_NET_PACKET_TOO_LARGE, "08S01", &msg)
    }

    pub fn handshake(msg: &str) -> Bytes {
        err_payload(
            ER_HANDSHAKE_ERROR,
            "08S01",
            &format!("Bad handshake: {msg}"),
        )
    }

    /// The client asked for framing the proxy did not offer (see
    /// [`crate::protocol::handshake::unoffered_framing`]).
    pub fn unoffered(what: &[&str]) -> Bytes {
        handshake(&format!(
            "the client asked for {}, which switchyard did not offer; connect without it",
            what.join(" and ")
        ))
    }

    pub fn out_of_order() -> Bytes {
        err_payload(
            ER_NET_PACKETS_OUT_OF_ORDER,
            "08S01",
            "Got packets out of order",
        )
    }

    /// A packet begun and not finished in time: what a server reports when its
    /// `net_read_timeout` expires.
    pub fn read_timeout() -> Bytes {
        err_payload(
            ER_NET_READ_INTERRUPTED,
            "08S01",
            "Got timeout reading communication packets",
        )
    }

    pub fn malformed(msg: &str) -> Bytes {
        err_payload(
            ER_NET_READ_ERROR,
            "08S01",
            &format!("Got an error reading communication packets: {msg}"),
        )
    }

    /// The backend could not be reached. A server-range code (clients take 2000–2999
    /// for their own errors: the `mariadb` CLI shows a 2003 from the server as
    /// "Received malformed packet"), the generic one since no server code means "my
    /// upstream is down" (ProxySQL likewise sends a generic code), with SQLSTATE 08S01
    /// so drivers that sort errors by class (JDBC, .NET) treat it as a connection
    /// failure and may retry, as with a server that is down.
    pub fn backend_unavailable(address: &str, why: &str) -> Bytes {
        let msg = format!("switchyard: cannot reach the database at {address}: {why}");
        err_payload(ER_UNKNOWN_ERROR, "08S01", &msg)
    }

    /// The backend went away in the middle of a command.
    pub fn backend_lost(why: &str) -> Bytes {
        let msg = format!("switchyard: lost the database connection: {why}");
        err_payload(2013, "HY000", &msg)
    }

    pub fn unsupported_command(name: &str) -> Bytes {
        let msg = format!(
            "switchyard does not relay {name}: connect to the database directly for replication"
        );
        err_payload(ER_NOT_SUPPORTED_YET, "42000", &msg)
    }

    /// Routing is unsafe right now (see the switchover's recovery).
    pub fn refused(why: &str) -> Bytes {
        err_payload(
            ER_OPTION_PREVENTS_STATEMENT,
            "HY000",
            &format!("switchyard is not routing: {why}"),
        )
    }

    /// A pinned session cannot follow a switchover.
    pub fn pinned(reason: &str) -> Bytes {
        let msg = format!("switchyard: this session was closed by a switchover because it held state that cannot be moved ({reason}); reconnect");
        err_payload(ER_CONNECTION_KILLED, "70100", &msg)
    }

    /// The database asked for a plugin the proxy cannot answer with what it holds.
    pub fn unsupported_auth(plugin: &str) -> Bytes {
        let msg = if plugin == CACHING_SHA2 {
            "switchyard: the database asked for caching_sha2_password, which needs the \
             account's password: give it as `password`, `password_file` or `password_env` \
             in its [[users]] entry (a password_hash serves mysql_native_password only)"
                .to_owned()
        } else {
            format!("switchyard: the database asked for authentication plugin '{plugin}'; switchyard speaks mysql_native_password and caching_sha2_password")
        };
        err_payload(ER_NOT_SUPPORTED_AUTH_MODE, "08004", &msg)
    }

    /// A client that can only use caching_sha2_password, for an account whose
    /// password the proxy does not know.
    /// `[tls] require_secure_transport` and a client that did not upgrade: what a
    /// server started with `require_secure_transport=ON` answers.
    pub fn insecure_transport() -> Bytes {
        err_payload(
            ER_SECURE_TRANSPORT_REQUIRED,
            "08004",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }

    /// `tls`: the proxy offers TLS, inside which the client would be asked for the
    /// password itself.
    pub fn needs_password(user: &str, tls: bool) -> Bytes {
        let msg = format!(
            "switchyard: this client needs caching_sha2_password, and switchyard knows only \
             the mysql_native_password hash of '{user}': give the account's password as \
             `password`, `password_file` or `password_env` in its [[users]] entry{}",
            if tls { ", or connect with TLS" } else { "" }
        );
        err_payload(ER_NOT_SUPPORTED_AUTH_MODE, "08004", &msg)
    }
}
