//! The backend side of a session: the proxy plays the client. Opens a TCP connection,
//! logs in as the application's user with the [`Secret`] its client proved — the
//! password when the config holds it, else SHA1(password) recovered from a native
//! answer — and turns on the session tracking the proxy needs.
//!
//! Plugins: `mysql_native_password` (SHA1(pw) is enough) and `caching_sha2_password`
//! (the password is needed: fast path, or the full path over plaintext with the
//! server's RSA key). [`BackendAuth`] is the login's state machine, free of I/O.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use crate::protocol::auth::native_token;
use crate::protocol::caching_sha2::{self, MoreData, REQUEST_PUBLIC_KEY};
use crate::protocol::constants::*;
use crate::protocol::credential::{Plugin, Secret};
use crate::protocol::handshake::{AuthSwitchRequest, HandshakeResponse, ServerHandshake};
use crate::protocol::packets::ErrPacket;
use crate::protocol::proxy_header::{self, ProxyAddrs};
use crate::protocol::ProtocolError;
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::stream::ServerStream;
use crate::proxy::tls::BackendTls;

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
    /// The server asked for a plugin the proxy cannot answer with what it holds: one
    /// it does not speak, or caching_sha2_password for an account whose password the
    /// proxy does not know.
    #[error("server asked for authentication plugin {0}")]
    UnsupportedAuth(String),
    /// TLS to the server could not be set up: it offers none, or the handshake or
    /// the certificate check failed.
    #[error("TLS to {address}: {reason}")]
    Tls { address: String, reason: String },
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// `proxy_protocol = true` for a MySQL server, which has no PROXY protocol.
    #[error("{address} is MySQL, which does not read PROXY protocol headers: set proxy_protocol = false for it")]
    ProxyProtocolOnMysql { address: String },
}

/// What the proxy learns of a server from its greeting; the client-facing greeting
/// copies it.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: Bytes,
    pub capabilities: u32,
    pub mariadb_caps: u32,
    pub charset: u8,
    /// The server's default authentication plugin.
    pub auth_plugin: Bytes,
}

impl ServerInfo {
    /// Used until a backend has been reached once.
    pub fn fallback() -> Self {
        ServerInfo {
            version: Bytes::from_static(b"5.5.5-10.11.0-MariaDB-switchyard"),
            capabilities: RELAYED_CAPS & !CLIENT_MYSQL,
            mariadb_caps: RELAYED_MARIADB_CAPS,
            charset: UTF8MB4_GENERAL_CI,
            auth_plugin: Bytes::from_static(NATIVE_PASSWORD.as_bytes()),
        }
    }
}

impl ServerInfo {
    pub fn from_greeting(hs: &ServerHandshake) -> Self {
        ServerInfo {
            version: hs.server_version.clone(),
            capabilities: hs.capabilities,
            mariadb_caps: hs.mariadb_caps,
            charset: hs.charset,
            auth_plugin: hs.auth_plugin.clone(),
        }
    }
}

/// Who to log in as, and how the session was negotiated on the client side.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: Bytes,
    /// What to log in with.
    pub secret: Secret,
    pub database: Option<Bytes>,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub charset: u8,
    pub max_packet: u32,
    pub attrs: Option<Bytes>,
    /// The client's address and the one it connected to, for a PROXY protocol header.
    pub client_addrs: Option<ProxyAddrs>,
}

/// A logged-in backend connection, ready for commands.
pub struct Upstream {
    pub stream: ServerStream,
    /// Bytes read past the login (normally empty).
    pub buf: BytesMut,
    pub thread_id: u32,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub scramble: Vec<u8>,
    pub server: ServerInfo,
}

/// The native answer for `scramble`: the token, or nothing for no password.
pub fn auth_token(secret: &Secret, scramble: &[u8]) -> Bytes {
    match secret.sha1() {
        Some(s) => Bytes::copy_from_slice(&native_token(&s, scramble)),
        None => Bytes::new(),
    }
}

/// The plugin to answer a server whose default is `server_plugin` with: its own when
/// the proxy can, else native (a server whose account needs another plugin switches,
/// and [`BackendAuth`] follows).
pub fn plugin_for_server(server_plugin: &[u8], secret: &Secret) -> Plugin {
    if server_plugin == CACHING_SHA2.as_bytes() && secret.password().is_some() {
        Plugin::CachingSha2
    } else {
        Plugin::Native
    }
}

/// One login's authentication, from the proxy's first answer to the server's verdict.
#[derive(Debug)]
pub struct BackendAuth<'a> {
    secret: &'a Secret,
    plugin: Plugin,
    scramble: Vec<u8>,
    switched: bool,
    /// `0x02` sent: the next AuthMoreData is the server's public key.
    awaiting_key: bool,
    /// The connection is encrypted: a full authentication sends the password as it is.
    secure: bool,
}

/// What to do with the server's packet.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Send this, then read again.
    Send(Bytes),
    /// Read again (fast-auth success: the OK follows).
    Read,
    /// Logged in; the OK payload.
    Done(Bytes),
}

impl<'a> BackendAuth<'a> {
    /// Starts with `plugin`'s answer to `scramble`, returned for the caller to send.
    pub fn start(secret: &'a Secret, plugin: Plugin, scramble: &[u8]) -> (Self, Bytes) {
        let auth = BackendAuth {
            secret,
            plugin,
            scramble: scramble.to_vec(),
            switched: false,
            awaiting_key: false,
            secure: false,
        };
        let answer = auth.answer();
        (auth, answer)
    }

    /// Marks the connection as TLS-protected (or not).
    pub fn over_tls(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    fn answer(&self) -> Bytes {
        match (self.plugin, self.secret.password()) {
            (Plugin::CachingSha2, Some([])) => Bytes::new(),
            (Plugin::CachingSha2, Some(pw)) => {
                Bytes::copy_from_slice(&caching_sha2::token(pw, &self.scramble))
            }
            (Plugin::CachingSha2, None) | (Plugin::Native, _) => {
                auth_token(self.secret, &self.scramble)
            }
        }
    }

    /// The next step after the server sent `payload`.
    pub fn step(&mut self, payload: Bytes) -> Result<AuthStep, ConnectError> {
        match payload.first() {
            Some(0x00) => Ok(AuthStep::Done(payload)),
            Some(0xFF) => Err(ConnectError::Refused(ErrPacket::parse(&payload)?)),
            Some(0xFE) if !self.switched => {
                let switch = AuthSwitchRequest::parse(&payload)?;
                self.plugin = match switch.plugin.as_ref() {
                    p if p == NATIVE_PASSWORD.as_bytes() => Plugin::Native,
                    p if p == CACHING_SHA2.as_bytes() && self.secret.password().is_some() => {
                        Plugin::CachingSha2
                    }
                    other => {
                        return Err(ConnectError::UnsupportedAuth(
                            String::from_utf8_lossy(other).into_owned(),
                        ))
                    }
                };
                self.scramble = switch.data[..switch.data.len().min(20)].to_vec();
                self.switched = true;
                Ok(AuthStep::Send(self.answer()))
            }
            Some(&caching_sha2::MORE_DATA) if self.plugin == Plugin::CachingSha2 => {
                self.more_data(&payload)
            }
            _ => Err(ConnectError::Protocol(ProtocolError::Malformed {
                what: "unexpected authentication answer",
            })),
        }
    }

    fn more_data(&mut self, payload: &[u8]) -> Result<AuthStep, ConnectError> {
        let pw = self.secret.password().unwrap_or_default();
        match MoreData::parse(payload) {
            Some(MoreData::FastAuthOk) if !self.awaiting_key => Ok(AuthStep::Read),
            // Over TLS the password goes as it is, NUL-terminated, as clients send it.
            Some(MoreData::PerformFullAuth) if self.secure => {
                let mut clear = BytesMut::with_capacity(pw.len() + 1);
                clear.extend_from_slice(pw);
                clear.extend_from_slice(&[0]);
                Ok(AuthStep::Send(clear.freeze()))
            }
            // Plaintext to the backend: the password goes only RSA-encrypted.
            Some(MoreData::PerformFullAuth) if !self.awaiting_key => {
                // Once per account after each server start: worth seeing in the log.
                tracing::info!("caching_sha2_password full authentication: asking the server for its RSA public key");
                self.awaiting_key = true;
                Ok(AuthStep::Send(Bytes::from_static(&[REQUEST_PUBLIC_KEY])))
            }
            Some(MoreData::Data(pem)) if self.awaiting_key => {
                self.awaiting_key = false;
                let sealed = caching_sha2::encrypt_password(pw, &self.scramble, pem)?;
                Ok(AuthStep::Send(sealed.into()))
            }
            _ => Err(ConnectError::Protocol(ProtocolError::Malformed {
                what: "unexpected caching_sha2_password data",
            })),
        }
    }
}

/// Connects and logs in, over TLS when `tls` is given, bounded by `timeout` as a
/// whole; first sends a PROXY protocol header naming the client when
/// `proxy_protocol`.
pub async fn connect(
    address: &str,
    tls: Option<&BackendTls>,
    login: &Login,
    timeout: Duration,
    proxy_protocol: bool,
) -> Result<Upstream, ConnectError> {
    match tokio::time::timeout(timeout, connect_inner(address, tls, login, proxy_protocol)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            address: address.to_string(),
        }),
    }
}

async fn connect_inner(
    address: &str,
    tls: Option<&BackendTls>,
    login: &Login,
    proxy_protocol: bool,
) -> Result<Upstream, ConnectError> {
    // The PROXY header goes first, in one write, before the server's greeting is read.
    let header = proxy_protocol.then(|| match &login.client_addrs {
        Some(addrs) => proxy_header::encode(addrs),
        None => proxy_header::encode_local(),
    });
    let (io, hs) = greet(address, header.as_deref()).await?;
    if proxy_protocol && hs.capabilities & CLIENT_MYSQL != 0 {
        // MySQL would take the header for a malformed login and wait for the rest.
        return Err(ConnectError::ProxyProtocolOnMysql {
            address: address.to_string(),
        });
    }
    let server = ServerInfo::from_greeting(&hs);
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
    let plugin = plugin_for_server(&hs.auth_plugin, &login.secret);
    let (auth, first_answer) = BackendAuth::start(&login.secret, plugin, &hs.scramble);
    let mut auth = auth.over_tls(tls.is_some());
    let mut response = HandshakeResponse {
        capabilities: caps,
        max_packet: login.max_packet,
        charset: login.charset,
        mariadb_caps,
        user: login.user.clone(),
        auth_response: first_answer,
        database: login.database.clone(),
        auth_plugin: Some(Bytes::from_static(plugin.name().as_bytes())),
        connect_attrs: if caps & CLIENT_CONNECT_ATTRS != 0 {
            login.attrs.clone()
        } else {
            None
        },
        // The backend leg is never compressed.
        zstd_level: None,
    };
    let mut io = match tls {
        Some(tls) => {
            response.capabilities |= CLIENT_SSL;
            start_tls(io, address, tls, &response, hs.capabilities).await?
        }
        None => PacketStream {
            stream: ServerStream::Tcp(io.stream),
            buf: io.buf,
            codec: io.codec,
        },
    };
    let mut payload = BytesMut::new();
    response.encode(&mut payload);
    io.write(&payload).await.map_err(ProtocolError::Io)?;
    finish_auth(&mut io, &mut auth).await?;

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

/// Sends the SSLRequest (the fixed part of `response`, which has `CLIENT_SSL`) and
/// runs the TLS handshake; the login goes on inside TLS with the next sequence id.
async fn start_tls(
    mut io: PacketStream<TcpStream>,
    address: &str,
    tls: &BackendTls,
    response: &HandshakeResponse,
    server_caps: u32,
) -> Result<PacketStream<ServerStream>, ConnectError> {
    let failed = |reason: String| ConnectError::Tls {
        address: address.to_owned(),
        reason,
    };
    if server_caps & CLIENT_SSL == 0 {
        return Err(failed(
            "the server does not offer TLS (start it with ssl_cert and ssl_key)".into(),
        ));
    }
    let mut request = BytesMut::new();
    response.encode_ssl_request(&mut request);
    io.write(&request).await.map_err(ProtocolError::Io)?;
    let PacketStream { stream, buf, codec } = io;
    if !buf.is_empty() {
        return Err(failed(
            "the server sent bytes before the TLS handshake".into(),
        ));
    }
    let stream = tls
        .connector
        .connect(tls.server_name.clone(), stream)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(PacketStream {
        stream: ServerStream::Tls(Box::new(stream)),
        buf,
        codec,
    })
}

/// Reads the server's verdict on a login or COM_CHANGE_USER, answering what `auth`
/// says to (plugin switches, caching_sha2's full path). Returns the final OK payload.
pub async fn finish_auth<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: &mut PacketStream<S>,
    auth: &mut BackendAuth<'_>,
) -> Result<Bytes, ConnectError> {
    loop {
        let answer = io.read().await?;
        match auth.step(answer.payload)? {
            AuthStep::Done(ok) => return Ok(ok),
            AuthStep::Read => {}
            AuthStep::Send(reply) => io.write(&reply).await.map_err(ProtocolError::Io)?,
        }
    }
}

/// Connects to `address`, sends `header` first when given, and reads the greeting
/// (an ERR in its place is the server refusing the connection).
async fn greet(
    address: &str,
    header: Option<&[u8]>,
) -> Result<(PacketStream<TcpStream>, ServerHandshake), ConnectError> {
    let mut stream =
        TcpStream::connect(address)
            .await
            .map_err(|source| ConnectError::Unreachable {
                address: address.to_string(),
                source,
            })?;
    stream.set_nodelay(true).ok();
    if let Some(header) = header {
        tokio::io::AsyncWriteExt::write_all(&mut stream, header)
            .await
            .map_err(ProtocolError::Io)?;
    }
    let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
    let greeting = io.read().await?;
    if greeting.payload.first() == Some(&0xFF) {
        return Err(ConnectError::Refused(ErrPacket::parse(&greeting.payload)?));
    }
    let hs = ServerHandshake::parse(&greeting.payload)?;
    Ok((io, hs))
}

/// Reads a server's greeting without logging in (used when no control account is
/// configured, to learn what to tell clients).
pub async fn probe_greeting(address: &str, timeout: Duration) -> Result<ServerInfo, ConnectError> {
    let fut = async {
        let (_, hs) = greet(address, None).await?;
        Ok(ServerInfo::from_greeting(&hs))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout {
                address: address.to_string(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::sha1_password;

    const SCRAMBLE: [u8; 20] = [3; 20];
    const PUBLIC_KEY: &[u8] = b"-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCtf0Pky19lMEpoYjUnyatIaF9x
Mpjo6ndQ45lJxKBzbn4czfj0nnRY0s9c+hVLyht7S0AGNtqar2AZWoh5CXh9ctJu
NaIBAcUlPnX4UnipSUM6yMZk3Oip8FsMdsiAZPdoVZDxTyH/58txqvNanL/4isJv
x2TzHBCPQdz2zbGjyQIDAQAB
-----END PUBLIC KEY-----
";

    fn password() -> Secret {
        Secret::Password(b"pw"[..].into())
    }

    fn ok() -> Bytes {
        Bytes::from_static(&[0, 0, 0, 2, 0, 0, 0])
    }

    fn switch(plugin: &str, data: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        AuthSwitchRequest {
            plugin: Bytes::copy_from_slice(plugin.as_bytes()),
            data: Bytes::copy_from_slice(data),
        }
        .encode(&mut out);
        out.freeze()
    }

    #[test]
    fn the_server_default_is_answered_when_the_password_is_known() {
        let sha2 = CACHING_SHA2.as_bytes();
        assert_eq!(plugin_for_server(sha2, &password()), Plugin::CachingSha2);
        assert_eq!(plugin_for_server(sha2, &Secret::Empty), Plugin::CachingSha2);
        assert_eq!(
            plugin_for_server(sha2, &Secret::Sha1([1; 20])),
            Plugin::Native
        );
        let native = NATIVE_PASSWORD.as_bytes();
        assert_eq!(plugin_for_server(native, &password()), Plugin::Native);
    }

    #[test]
    fn native_login() {
        let secret = password();
        let (mut auth, answer) = BackendAuth::start(&secret, Plugin::Native, &SCRAMBLE);
        assert_eq!(&answer[..], native_token(&sha1_password(b"pw"), &SCRAMBLE));
        assert_eq!(auth.step(ok()).unwrap(), AuthStep::Done(ok()));
    }

    #[test]
    fn sha2_fast_path() {
        let secret = password();
        let (mut auth, answer) = BackendAuth::start(&secret, Plugin::CachingSha2, &SCRAMBLE);
        assert_eq!(&answer[..], caching_sha2::token(b"pw", &SCRAMBLE));
        assert_eq!(
            auth.step(Bytes::from_static(&[1, 3])).unwrap(),
            AuthStep::Read
        );
        assert_eq!(auth.step(ok()).unwrap(), AuthStep::Done(ok()));
    }

    #[test]
    fn sha2_full_path_asks_for_the_key_and_encrypts() {
        let secret = password();
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::CachingSha2, &SCRAMBLE);
        assert_eq!(
            auth.step(Bytes::from_static(&[1, 4])).unwrap(),
            AuthStep::Send(Bytes::from_static(&[REQUEST_PUBLIC_KEY]))
        );
        let mut key = vec![1];
        key.extend_from_slice(PUBLIC_KEY);
        match auth.step(key.into()).unwrap() {
            AuthStep::Send(sealed) => assert_eq!(sealed.len(), 128),
            other => panic!("{other:?}"),
        }
        assert_eq!(auth.step(ok()).unwrap(), AuthStep::Done(ok()));
    }

    #[test]
    fn switches_are_followed_once() {
        let secret = password();
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::Native, &SCRAMBLE);
        let step = auth.step(switch(CACHING_SHA2, &[5; 20])).unwrap();
        assert_eq!(
            step,
            AuthStep::Send(Bytes::copy_from_slice(&caching_sha2::token(
                b"pw", &[5; 20]
            )))
        );
        assert_eq!(
            auth.step(Bytes::from_static(&[1, 3])).unwrap(),
            AuthStep::Read
        );
        assert!(auth.step(switch(NATIVE_PASSWORD, &[6; 20])).is_err());
    }

    #[test]
    fn a_hash_cannot_answer_caching_sha2() {
        let secret = Secret::Sha1(sha1_password(b"pw"));
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::Native, &SCRAMBLE);
        match auth.step(switch(CACHING_SHA2, &[5; 20])) {
            Err(ConnectError::UnsupportedAuth(p)) => assert_eq!(p, CACHING_SHA2),
            other => panic!("{other:?}"),
        }
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::Native, &SCRAMBLE);
        assert!(matches!(
            auth.step(switch("client_ed25519", &[5; 32])),
            Err(ConnectError::UnsupportedAuth(_))
        ));
    }

    #[test]
    fn out_of_place_packets_are_errors() {
        let secret = password();
        // Native: no AuthMoreData expected.
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::Native, &SCRAMBLE);
        assert!(auth.step(Bytes::from_static(&[1, 3])).is_err());
        // A key nobody asked for; a state byte while waiting for the key.
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::CachingSha2, &SCRAMBLE);
        assert!(auth.step(Bytes::from_static(b"\x01-----BEGIN")).is_err());
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::CachingSha2, &SCRAMBLE);
        auth.step(Bytes::from_static(&[1, 4])).unwrap();
        assert!(auth.step(Bytes::from_static(&[1, 3])).is_err());
        assert!(auth.step(Bytes::new()).is_err());
        let (mut auth, _) = BackendAuth::start(&secret, Plugin::CachingSha2, &SCRAMBLE);
        auth.step(Bytes::from_static(&[1, 4])).unwrap();
        assert!(auth.step(Bytes::from_static(b"\x01not a key")).is_err());
    }
}
