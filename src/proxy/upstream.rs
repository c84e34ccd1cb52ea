//! The backend side of a session: the proxy plays the client. Opens a TCP connection,
//! logs in as the application's user with the credential recovered from the client's
//! own answer (SHA1(password), never the password itself), and turns on the session
//! tracking the proxy needs.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use crate::protocol::auth::native_token;
use crate::protocol::constants::*;
use crate::protocol::handshake::{AuthSwitchRequest, HandshakeResponse, ServerHandshake};
use crate::protocol::packets::ErrPacket;
use crate::protocol::ProtocolError;
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};

/// Capabilities the proxy can relay. Left out: SSL and compression (the proxy speaks
/// plaintext to the backend for now), query attributes (they change COM_QUERY's
/// layout) and the deprecated or MySQL-internal bits.
pub const RELAYED_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_NO_SCHEMA
    | CLIENT_ODBC
    | CLIENT_LOCAL_FILES
    | CLIENT_IGNORE_SPACE
    | CLIENT_PROTOCOL_41
    | CLIENT_INTERACTIVE
    | CLIENT_IGNORE_SIGPIPE
    | CLIENT_TRANSACTIONS
    | CLIENT_RESERVED
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
    | CLIENT_SESSION_TRACK
    | CLIENT_DEPRECATE_EOF;

/// MariaDB extended capabilities the proxy can relay (not metadata caching, whose
/// result sets the relay would have to follow differently, nor COM_MULTI).
pub const RELAYED_MARIADB_CAPS: u32 = MARIADB_CLIENT_PROGRESS
    | MARIADB_CLIENT_STMT_BULK_OPERATIONS
    | MARIADB_CLIENT_EXTENDED_METADATA;

/// Session tracking the proxy turns on for every backend connection.
pub const TRACKING_SQL: &[u8] = b"SET SESSION session_track_system_variables='*', \
session_track_schema=ON, session_track_state_change=ON";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {address}: {source}")]
    Unreachable {
        address: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to {address}")]
    Timeout { address: String },
    /// The server said no; its ERR payload is forwarded to the client as is.
    #[error("refused: {}", String::from_utf8_lossy(&.0.message))]
    Refused(ErrPacket),
    #[error("server asked for authentication plugin {0}")]
    UnsupportedAuth(String),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// What the proxy learns of a server from its greeting; the client-facing greeting
/// copies it.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: Bytes,
    pub capabilities: u32,
    pub mariadb_caps: u32,
    pub charset: u8,
}

impl ServerInfo {
    /// Used until a backend has been reached once.
    pub fn fallback() -> Self {
        ServerInfo {
            version: Bytes::from_static(b"5.5.5-10.11.0-MariaDB-switchyard"),
            capabilities: RELAYED_CAPS & !CLIENT_MYSQL,
            mariadb_caps: RELAYED_MARIADB_CAPS,
            charset: UTF8MB4_GENERAL_CI,
        }
    }
}

/// Who to log in as, and how the session was negotiated on the client side.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: Bytes,
    /// SHA1(password), or `None` for an account without a password.
    pub sha1: Option<[u8; 20]>,
    pub database: Option<Bytes>,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub charset: u8,
    pub max_packet: u32,
    pub attrs: Option<Bytes>,
}

/// A logged-in backend connection, ready for commands.
pub struct Upstream {
    pub stream: TcpStream,
    /// Bytes read past the login (normally empty).
    pub buf: BytesMut,
    pub thread_id: u32,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub scramble: Vec<u8>,
    pub server: ServerInfo,
}

/// The auth answer for `scramble`: the native token, or nothing for no password.
pub fn auth_token(sha1: &Option<[u8; 20]>, scramble: &[u8]) -> Bytes {
    match sha1 {
        Some(s) => Bytes::copy_from_slice(&native_token(s, scramble)),
        None => Bytes::new(),
    }
}

/// Connects and logs in, bounded by `timeout` as a whole.
pub async fn connect(
    address: &str,
    login: &Login,
    timeout: Duration,
) -> Result<Upstream, ConnectError> {
    match tokio::time::timeout(timeout, connect_inner(address, login)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            address: address.to_string(),
        }),
    }
}

async fn connect_inner(address: &str, login: &Login) -> Result<Upstream, ConnectError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|source| ConnectError::Unreachable {
            address: address.to_string(),
            source,
        })?;
    stream.set_nodelay(true).ok();
    let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
    let greeting = io.read().await?;
    if greeting.payload.first() == Some(&0xFF) {
        return Err(ConnectError::Refused(ErrPacket::parse(&greeting.payload)?));
    }
    let hs = ServerHandshake::parse(&greeting.payload)?;
    let server = ServerInfo {
        version: hs.server_version.clone(),
        capabilities: hs.capabilities,
        mariadb_caps: hs.mariadb_caps,
        charset: hs.charset,
    };
    let caps = (login.caps & hs.capabilities & RELAYED_CAPS)
        | (hs.capabilities
            & (CLIENT_SESSION_TRACK
                | CLIENT_PLUGIN_AUTH
                | CLIENT_SECURE_CONNECTION
                | CLIENT_PROTOCOL_41));
    let caps = if login.database.is_some() {
        caps | CLIENT_CONNECT_WITH_DB
    } else {
        caps & !CLIENT_CONNECT_WITH_DB
    };
    let mariadb_caps = if caps & CLIENT_MYSQL == 0 {
        login.mariadb_caps & hs.mariadb_caps & RELAYED_MARIADB_CAPS
    } else {
        0
    };
    let response = HandshakeResponse {
        capabilities: caps,
        max_packet: login.max_packet,
        charset: login.charset,
        mariadb_caps,
        user: login.user.clone(),
        auth_response: auth_token(&login.sha1, &hs.scramble),
        database: login.database.clone(),
        auth_plugin: Some(Bytes::from_static(NATIVE_PASSWORD.as_bytes())),
        connect_attrs: if caps & CLIENT_CONNECT_ATTRS != 0 {
            login.attrs.clone()
        } else {
            None
        },
    };
    let mut payload = BytesMut::new();
    response.encode(&mut payload);
    io.write(&payload).await.map_err(ProtocolError::Io)?;
    finish_auth(&mut io, &login.sha1).await?;

    // Session tracking: the proxy learns schema and variables from OK packets.
    io.reset_seq();
    let mut query = BytesMut::with_capacity(TRACKING_SQL.len() + 1);
    query.extend_from_slice(&[COM_QUERY]);
    query.extend_from_slice(TRACKING_SQL);
    io.write(&query).await.map_err(ProtocolError::Io)?;
    let answer = io.read().await?;
    if answer.payload.first() == Some(&0xFF) {
        let err = ErrPacket::parse(&answer.payload)?;
        tracing::warn!(
            "backend refused session tracking ({}); session state will not be tracked",
            String::from_utf8_lossy(&err.message)
        );
    }
    let (stream, buf) = io.into_parts();
    Ok(Upstream {
        stream,
        buf,
        thread_id: hs.connection_id,
        caps,
        mariadb_caps,
        scramble: hs.scramble,
        server,
    })
}

/// Reads the server's verdict on a login or COM_CHANGE_USER, answering an
/// AuthSwitchRequest to `mysql_native_password`. Returns the final OK payload.
pub async fn finish_auth<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: &mut PacketStream<S>,
    sha1: &Option<[u8; 20]>,
) -> Result<Bytes, ConnectError> {
    let mut switched = false;
    loop {
        let answer = io.read().await?;
        match answer.payload.first() {
            Some(0x00) => return Ok(answer.payload),
            Some(0xFF) => return Err(ConnectError::Refused(ErrPacket::parse(&answer.payload)?)),
            Some(0xFE) if !switched => {
                let switch = AuthSwitchRequest::parse(&answer.payload)?;
                if switch.plugin.as_ref() != NATIVE_PASSWORD.as_bytes() {
                    return Err(ConnectError::UnsupportedAuth(
                        String::from_utf8_lossy(&switch.plugin).into_owned(),
                    ));
                }
                let scramble = &switch.data[..switch.data.len().min(20)];
                io.write(&auth_token(sha1, scramble))
                    .await
                    .map_err(ProtocolError::Io)?;
                switched = true;
            }
            Some(0x01) => {
                return Err(ConnectError::UnsupportedAuth(
                    "caching_sha2_password (full authentication)".into(),
                ))
            }
            _ => {
                return Err(ConnectError::Protocol(ProtocolError::Malformed {
                    what: "unexpected authentication answer",
                }))
            }
        }
    }
}

/// Reads a server's greeting without logging in (used when no control account is
/// configured, to learn what to tell clients).
pub async fn probe_greeting(address: &str, timeout: Duration) -> Result<ServerInfo, ConnectError> {
    let fut = async {
        let stream =
            TcpStream::connect(address)
                .await
                .map_err(|source| ConnectError::Unreachable {
                    address: address.to_string(),
                    source,
                })?;
        let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
        let greeting = io.read().await?;
        if greeting.payload.first() == Some(&0xFF) {
            return Err(ConnectError::Refused(ErrPacket::parse(&greeting.payload)?));
        }
        let hs = ServerHandshake::parse(&greeting.payload)?;
        Ok(ServerInfo {
            version: hs.server_version,
            capabilities: hs.capabilities,
            mariadb_caps: hs.mariadb_caps,
            charset: hs.charset,
        })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout {
                address: address.to_string(),
            })
        })
}
