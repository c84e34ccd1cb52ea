//! The client side of the connection phase: the proxy plays the server. Sends a
//! greeting with a fresh scramble, reads the client's answer and verifies it: a
//! `caching_sha2_password` client on the fast path when the proxy knows the account's
//! password (never the full path: a client is never asked for its password), anyone
//! else as `mysql_native_password` (switching other plugins to it). The [`Secret`] it
//! yields — the password, or SHA1(password) from a native answer against a stored
//! hash — is what the proxy logs in to backends with.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::auth::new_scramble;
use crate::protocol::caching_sha2::{self, FAST_AUTH_OK_PAYLOAD};
use crate::protocol::compress::{Algorithm, DEFAULT_ZSTD_LEVEL};
use crate::protocol::constants::*;
use crate::protocol::credential::{Plugin, Secret};
use crate::protocol::handshake::{
    connect_attr, unoffered_framing, AuthSwitchRequest, HandshakeResponse, ServerHandshake,
};
use crate::protocol::ProtocolError;
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::PacketStream;
use crate::proxy::stream::ClientStream;
use crate::proxy::upstream::{Login, ServerInfo, RELAYED_CAPS, RELAYED_MARIADB_CAPS};
use crate::proxy::users::Credential;

use crate::proxy::Proxy;

/// A client that proved who it is.
pub struct Authenticated {
    pub login: Login,
    /// The scramble sent in the greeting (COM_CHANGE_USER answers are made with it).
    pub scramble: [u8; 20],
    /// The compressed protocol the client chose, which starts after the final OK.
    pub compression: Option<Algorithm>,
}

/// Capabilities the proxy offers clients, given what the backend offers and whether
/// `[proxy] compression` is on. Compression is the proxy's own (the backend leg never
/// compresses): zlib always, zstd where a MySQL backend offers it, so that only MySQL
/// clients, which know the bit, see it.
pub fn offered_caps(server: &ServerInfo, compression: bool) -> u32 {
    let mut caps = (server.capabilities & RELAYED_CAPS)
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if compression {
        caps |= CLIENT_COMPRESS;
        if server.capabilities & CLIENT_MYSQL != 0 {
            caps |= server.capabilities & CLIENT_ZSTD_COMPRESSION_ALGORITHM;
        }
    }
    caps
}

/// The compression a client chose with `caps` (what it asked for among what was
/// offered): zlib when it set `CLIENT_COMPRESS`, as a server prefers it, else zstd at
/// the level it sent (1 to 22; MySQL's default 3 when it sent none).
pub fn negotiated(caps: u32, zstd_level: Option<u8>) -> Option<Algorithm> {
    if caps & CLIENT_COMPRESS != 0 {
        Some(Algorithm::Zlib)
    } else if caps & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 {
        let level = zstd_level.map_or(DEFAULT_ZSTD_LEVEL, |l| i32::from(l).clamp(1, 22));
        Some(Algorithm::Zstd { level })
    } else {
        None
    }
}

/// The plugin the greeting names: the backend's own when it is caching_sha2 (MySQL),
/// so that clients answer it at once, else mysql_native_password. Either way the
/// answer is checked by the plugin the client names (see [`route`]).
pub fn greeting_plugin(server: &ServerInfo) -> Plugin {
    if server.auth_plugin.as_ref() == CACHING_SHA2.as_bytes() {
        Plugin::CachingSha2
    } else {
        Plugin::Native
    }
}

/// Runs the connection phase up to (not including) the final OK, which is sent once
/// the backend has accepted the login too. Returns the client's stream, upgraded to
/// TLS when the client asked for it.
pub async fn handshake(
    io: PacketStream<TcpStream>,
    id: u32,
    shared: &Proxy,
    peer: SocketAddr,
) -> Result<(PacketStream<ClientStream>, Authenticated), SessionError> {
    let mut io = io;
    if let Some(left) = shared.throttle.refuse(peer.ip()) {
        // In place of the greeting, as a server refuses a blocked host.
        io.write(&reply::host_blocked(&peer.ip().to_string(), left))
            .await
            .ok();
        return Err(SessionError::HostBlocked);
    }
    let server = shared.server_info.load_full();
    let tls = shared.tls.load_full();
    let scramble = new_scramble();
    let compression = shared.topology.config.load().proxy.compression;
    let mut caps = offered_caps(&server, compression);
    if tls.acceptor.is_some() {
        caps |= CLIENT_SSL;
    }
    let greeting = ServerHandshake {
        protocol_version: 10,
        server_version: server.version.clone(),
        connection_id: id,
        scramble: scramble.to_vec(),
        capabilities: caps,
        charset: server.charset,
        status: SERVER_STATUS_AUTOCOMMIT,
        mariadb_caps: server.mariadb_caps & RELAYED_MARIADB_CAPS,
        auth_plugin: Bytes::from_static(greeting_plugin(&server).name().as_bytes()),
    };
    let mut payload = BytesMut::new();
    greeting.encode(&mut payload);
    io.write(&payload).await.map_err(SessionError::client_io)?;

    let packet = match io.read().await {
        Ok(p) => p,
        Err(e) => return Err(fail(&mut io, e).await),
    };
    let secure = HandshakeResponse::is_ssl_request(&packet.payload);
    let mut conn = if secure {
        let Some(acceptor) = &tls.acceptor else {
            // What a MariaDB server without TLS (have_ssl=DISABLED) answers too: 1043.
            io.write(&reply::handshake(
                "TLS was not offered; connect without TLS (e.g. --skip-ssl, ssl-mode=DISABLED)",
            ))
            .await
            .ok();
            return Err(SessionError::Client(ProtocolError::Malformed {
                what: "unexpected SSL request",
            }));
        };
        start_tls(io, acceptor).await?
    } else {
        PacketStream {
            stream: ClientStream::Tcp(io.stream),
            buf: io.buf,
            codec: io.codec,
        }
    };
    let io = &mut conn;
    let packet = if secure {
        match io.read().await {
            Ok(p) => p,
            Err(e) => return Err(fail(io, e).await),
        }
    } else {
        packet
    };
    let response = match HandshakeResponse::parse(&packet.payload) {
        Ok(r) => r,
        Err(e) => return Err(fail(io, e).await),
    };
    let unoffered = unoffered_framing(response.capabilities, caps);
    if !unoffered.is_empty() {
        // Refused before anything else is read: the client may already be framing
        // its next packets differently.
        io.write(&reply::unoffered(&unoffered)).await.ok();
        return Err(SessionError::Client(ProtocolError::Malformed {
            what: "a framing capability the proxy did not offer",
        }));
    }
    let client_caps = response.capabilities & caps & !CLIENT_SSL;
    let user = String::from_utf8_lossy(&response.user).into_owned();
    let account = account(shared, &user).await;
    let route = route(
        response.auth_plugin.as_deref(),
        &response.auth_response,
        account.as_ref(),
        response.connect_attrs.as_deref(),
        secure,
    );
    let mut token = response.auth_response.clone();
    let mut clear = false;
    let plugin = match route {
        Route::NeedsPassword => {
            tracing::info!(session = id, user, %peer, "account needs its password for caching_sha2_password");
            io.write(&reply::needs_password(&user, tls.acceptor.is_some()))
                .await
                .ok();
            return Err(SessionError::NeedsPassword(user));
        }
        Route::FullAuth { switch } => {
            if switch {
                ask_to_switch(io, Plugin::CachingSha2, &scramble).await?;
            }
            io.write(&[caching_sha2::MORE_DATA, caching_sha2::PERFORM_FULL_AUTH])
                .await
                .map_err(SessionError::client_io)?;
            token = match io.read().await {
                Ok(p) => p.payload,
                Err(e) => return Err(fail(io, e).await),
            };
            clear = true;
            Plugin::CachingSha2
        }
        Route::Check { plugin, switch } => {
            if switch {
                token = ask_to_switch(io, plugin, &scramble).await?;
            }
            plugin
        }
    };
    let verified = if clear {
        let pw = token.strip_suffix(&[0]).unwrap_or(&token);
        looked_up(shared, &user, |c| c?.verify_clear(pw)).await
    } else {
        verify(shared, &user, plugin, &token, &scramble).await
    };
    let secret = match verified {
        Some(secret) => secret,
        None => {
            tracing::info!(session = id, user, %peer, "access denied");
            let config = shared.topology.config.load_full();
            shared.throttle.failed(peer.ip(), &config.proxy).await;
            io.write(&reply::access_denied(
                &response.user,
                &peer.ip().to_string(),
                !caching_sha2::is_empty_answer(&token),
            ))
            .await
            .ok();
            return Err(SessionError::AccessDenied);
        }
    };
    shared.throttle.succeeded(peer.ip());
    if !clear && sends_fast_auth_ok(plugin, &secret) {
        // The fast path's verdict; the OK follows once the backend accepted the login.
        io.write(&FAST_AUTH_OK_PAYLOAD)
            .await
            .map_err(SessionError::client_io)?;
    }
    if tls.require_secure_transport && !secure {
        // Refused after the password check, as the servers do: MySQL with 3159 (after
        // its fast-auth OK), MariaDB as a failed login (1045), so a client cannot tell
        // the proxy from the server by the answer.
        tracing::info!(session = id, user, %peer, "plaintext login refused (require_secure_transport)");
        let refusal = if server.capabilities & CLIENT_MYSQL == 0 {
            reply::access_denied(
                &response.user,
                &peer.ip().to_string(),
                !caching_sha2::is_empty_answer(&token),
            )
        } else {
            reply::insecure_transport()
        };
        io.write(&refusal).await.ok();
        return Err(SessionError::InsecureTransport);
    }
    let authenticated = Authenticated {
        login: Login {
            user: response.user,
            secret,
            database: response.database.filter(|d| !d.is_empty()),
            caps: client_caps,
            mariadb_caps: if client_caps & CLIENT_MYSQL == 0 {
                response.mariadb_caps
            } else {
                0
            },
            charset: response.charset,
            max_packet: response.max_packet,
            attrs: response.connect_attrs,
            // Filled in by the session, which knows both ends of the socket.
            client_addrs: None,
        },
        scramble,
        compression: negotiated(client_caps, response.zstd_level),
    };
    Ok((conn, authenticated))
}

/// Asks the client for an answer to the same scramble with `plugin`, one the proxy
/// can check, and returns it.
async fn ask_to_switch(
    io: &mut PacketStream<ClientStream>,
    plugin: Plugin,
    scramble: &[u8],
) -> Result<Bytes, SessionError> {
    let switch = AuthSwitchRequest {
        plugin: Bytes::from_static(plugin.name().as_bytes()),
        data: Bytes::copy_from_slice(scramble),
    };
    let mut payload = BytesMut::new();
    switch.encode(&mut payload);
    io.write(&payload).await.map_err(SessionError::client_io)?;
    match io.read().await {
        Ok(p) => Ok(p.payload),
        Err(e) => Err(fail(io, e).await),
    }
}

/// Upgrades the connection to TLS after the client's SSLRequest. The client may have
/// sent its ClientHello right behind the request, in the same read: those bytes go to
/// TLS first. Sequence ids go on where the request left them.
async fn start_tls(
    io: PacketStream<TcpStream>,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> Result<PacketStream<ClientStream>, SessionError> {
    let PacketStream {
        stream,
        mut buf,
        codec,
    } = io;
    let mut early: Option<std::io::Error> = None;
    // The alert rustls queues when those bytes are refused (a ClientHello below
    // `min_version`, say): sent before hanging up, so the client learns why.
    let mut alert = Vec::new();
    let mut accept = acceptor.accept_with(stream, |tls| {
        let mut rest = &buf[..];
        while !rest.is_empty() && early.is_none() {
            match tls.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        early = Some(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                        while tls.wants_write() && tls.write_tls(&mut alert).is_ok_and(|n| n > 0) {}
                    }
                }
                Err(e) => early = Some(e),
            }
        }
    });
    if let Some(e) = early {
        if let Some(stream) = accept.get_mut().filter(|_| !alert.is_empty()) {
            stream.write_all(&alert).await.ok();
        }
        return Err(SessionError::client_io(e));
    }
    let stream = accept.await.map_err(SessionError::client_io)?;
    buf.clear();
    Ok(PacketStream {
        stream: ClientStream::Tls(Box::new(stream)),
        buf,
        codec,
    })
}

/// Sends the client the ERR that matches a protocol failure, and returns the error.
async fn fail<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut PacketStream<S>,
    e: ProtocolError,
) -> SessionError {
    let payload = match &e {
        ProtocolError::OutOfOrder { .. } => Some(reply::out_of_order()),
        ProtocolError::TooLarge { max, .. } => Some(reply::packet_too_large(*max)),
        ProtocolError::Io(_) => None,
        other => Some(reply::handshake(&other.to_string())),
    };
    if let Some(p) = payload {
        io.write(&p).await.ok();
    }
    SessionError::Client(e)
}

/// Whether a client that passed with `plugin` is told `0x01 0x03` before the OK: on
/// caching_sha2's fast path, but not for an empty password, which servers accept with
/// the OK alone.
pub fn sends_fast_auth_ok(plugin: Plugin, secret: &Secret) -> bool {
    plugin == Plugin::CachingSha2 && *secret != Secret::Empty
}

/// How the proxy checks a client's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// With `plugin`, after asking the client to switch to it when `switch`.
    Check { plugin: Plugin, switch: bool },
    /// The client cannot use mysql_native_password and the proxy knows only the
    /// account's native hash.
    NeedsPassword,
    /// caching_sha2's full authentication: the client is asked for its password,
    /// which it sends as it is — only ever inside TLS. First switched to
    /// caching_sha2 when `switch` (its answer was not made for it).
    FullAuth { switch: bool },
}

/// Chooses how to check a client that answered `answer` with `plugin` (as named in its
/// HandshakeResponse or COM_CHANGE_USER), for `account` (`None`: unknown user).
///
/// caching_sha2_password clients take its fast path whenever the proxy can check it
/// (an unknown user too, so a MySQL 9 client gets the 1045 it expects); with only a
/// native hash they are switched to native, unless they cannot do it.
///
/// Over TLS (`secure`) a caching_sha2 client of a hash-only account is asked for its
/// password instead (full authentication), as a server asks when its cache is cold.
pub fn route(
    plugin: Option<&[u8]>,
    answer: &[u8],
    account: Option<&Credential>,
    attrs: Option<&[u8]>,
    secure: bool,
) -> Route {
    let plugin = plugin.unwrap_or_default();
    if plugin.is_empty() || plugin == NATIVE_PASSWORD.as_bytes() {
        return Route::Check {
            plugin: Plugin::Native,
            switch: false,
        };
    }
    if plugin == CACHING_SHA2.as_bytes() {
        if account.is_none_or(Credential::knows_password) {
            // A client answers with a token when it took the greeting's scramble;
            // one that did not (the greeting named another plugin) sends nothing
            // and waits to be asked again.
            return Route::Check {
                plugin: Plugin::CachingSha2,
                switch: answer.len() != 32,
            };
        }
        if secure {
            return Route::FullAuth {
                switch: answer.len() != 32,
            };
        }
        if attrs.is_some_and(lacks_native) {
            return Route::NeedsPassword;
        }
    }
    Route::Check {
        plugin: Plugin::Native,
        switch: true,
    }
}

/// Whether the client's attributes name a client library without
/// mysql_native_password: MySQL's own from version 9 on.
fn lacks_native(attrs: &[u8]) -> bool {
    let name = connect_attr(attrs, b"_client_name");
    let major = connect_attr(attrs, b"_client_version")
        .and_then(|v| v.split(|b| *b == b'.').next())
        .and_then(|m| std::str::from_utf8(m).ok())
        .and_then(|m| m.parse::<u32>().ok());
    name == Some(b"libmysql") && major.is_some_and(|m| m >= 9)
}

/// The account of `user`, reloading accounts from the backend once when unknown.
pub async fn account(shared: &Proxy, user: &str) -> Option<Credential> {
    looked_up(shared, user, |c| c).await
}

/// Checks an answer made with `plugin` for `user`; reloads accounts from the backend
/// once when the user is unknown or the answer does not match (the password may have
/// changed). Returns what to log in to backends with.
pub async fn verify(
    shared: &Proxy,
    user: &str,
    plugin: Plugin,
    token: &[u8],
    scramble: &[u8],
) -> Option<Secret> {
    let scramble = &scramble[..20.min(scramble.len())];
    looked_up(shared, user, |c| c?.verify(plugin, token, scramble)).await
}

/// `f` of `user`'s account; when it gives nothing, once more after reloading the
/// accounts from the backend (if they come from there).
async fn looked_up<T>(
    shared: &Proxy,
    user: &str,
    f: impl Fn(Option<Credential>) -> Option<T>,
) -> Option<T> {
    if let Some(found) = f(shared.users.get(user)) {
        return Some(found);
    }
    if shared.users.can_load(user)
        && shared
            .users
            .refresh(&shared.topology.active_address())
            .await
    {
        return f(shared.users.get(user));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::buf::put_lenenc_bytes;

    fn attrs(name: &[u8], version: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        for (k, v) in [(&b"_client_name"[..], name), (b"_client_version", version)] {
            put_lenenc_bytes(&mut out, k);
            put_lenenc_bytes(&mut out, v);
        }
        out
    }

    const SHA2: Option<&[u8]> = Some(CACHING_SHA2.as_bytes());

    fn server(capabilities: u32) -> ServerInfo {
        ServerInfo {
            capabilities,
            ..ServerInfo::fallback()
        }
    }

    #[test]
    fn compression_is_offered_when_configured_and_zstd_only_with_mysql() {
        let mariadb = server(RELAYED_CAPS & !CLIENT_MYSQL);
        let mysql = server(RELAYED_CAPS | CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM);
        let zstd = CLIENT_ZSTD_COMPRESSION_ALGORITHM;
        assert_eq!(
            offered_caps(&mariadb, true) & (CLIENT_COMPRESS | zstd),
            CLIENT_COMPRESS
        );
        assert_eq!(
            offered_caps(&mysql, true) & (CLIENT_COMPRESS | zstd),
            CLIENT_COMPRESS | zstd
        );
        assert_eq!(offered_caps(&mysql, false) & (CLIENT_COMPRESS | zstd), 0);
        // A MySQL server built without zstd does not offer it; neither does the proxy.
        let no_zstd = server(RELAYED_CAPS);
        assert_eq!(offered_caps(&no_zstd, true) & zstd, 0);
    }

    #[test]
    fn the_clients_choice_of_compression() {
        let zstd = CLIENT_ZSTD_COMPRESSION_ALGORITHM;
        assert_eq!(negotiated(CLIENT_PROTOCOL_41, None), None);
        assert_eq!(negotiated(CLIENT_COMPRESS, None), Some(Algorithm::Zlib));
        assert_eq!(
            negotiated(CLIENT_COMPRESS | zstd, Some(7)),
            Some(Algorithm::Zlib)
        );
        assert_eq!(
            negotiated(zstd, Some(7)),
            Some(Algorithm::Zstd { level: 7 })
        );
        assert_eq!(negotiated(zstd, None), Some(Algorithm::Zstd { level: 3 }));
        assert_eq!(
            negotiated(zstd, Some(0)),
            Some(Algorithm::Zstd { level: 1 })
        );
        assert_eq!(
            negotiated(zstd, Some(200)),
            Some(Algorithm::Zstd { level: 22 })
        );
    }

    #[test]
    fn native_clients_keep_the_native_path() {
        let hash = Credential::NativeHash([1; 20]);
        for plugin in [None, Some(&b""[..]), Some(NATIVE_PASSWORD.as_bytes())] {
            assert_eq!(
                route(plugin, &[0; 20], Some(&hash), None, false),
                Route::Check {
                    plugin: Plugin::Native,
                    switch: false
                }
            );
        }
        assert_eq!(
            route(Some(b"client_ed25519"), &[0; 64], Some(&hash), None, false),
            Route::Check {
                plugin: Plugin::Native,
                switch: true
            }
        );
    }

    #[test]
    fn sha2_clients_take_the_fast_path_when_the_password_is_known() {
        let pw = Credential::from_password(b"pw");
        let fast = Route::Check {
            plugin: Plugin::CachingSha2,
            switch: false,
        };
        let ask = Route::Check {
            plugin: Plugin::CachingSha2,
            switch: true,
        };
        assert_eq!(route(SHA2, &[0; 32], Some(&pw), None, false), fast);
        assert_eq!(route(SHA2, &[], Some(&pw), None, false), ask);
        assert_eq!(
            route(SHA2, &[0], Some(&Credential::Empty), None, false),
            ask
        );
        assert_eq!(route(SHA2, &[0; 32], None, None, false), fast);
    }

    #[test]
    fn a_hash_only_account_switches_or_names_the_fix() {
        let hash = Credential::NativeHash([1; 20]);
        let native = Route::Check {
            plugin: Plugin::Native,
            switch: true,
        };
        assert_eq!(route(SHA2, &[0; 32], Some(&hash), None, false), native);
        let mysql8 = attrs(b"libmysql", b"8.4.3");
        assert_eq!(
            route(SHA2, &[0; 32], Some(&hash), Some(&mysql8), false),
            native
        );
        let mysql9 = attrs(b"libmysql", b"9.7.4");
        assert_eq!(
            route(SHA2, &[0; 32], Some(&hash), Some(&mysql9), false),
            Route::NeedsPassword
        );
        let other = attrs(b"mysql-connector-python", b"9.1.0");
        assert_eq!(
            route(SHA2, &[0; 32], Some(&hash), Some(&other), false),
            native
        );
        // Inside TLS every caching_sha2 client is asked for the password instead.
        for attrs in [None, Some(&mysql9[..]), Some(&other[..])] {
            assert_eq!(
                route(SHA2, &[0; 32], Some(&hash), attrs, true),
                Route::FullAuth { switch: false }
            );
        }
        assert_eq!(
            route(SHA2, &[0; 20], Some(&hash), None, true),
            Route::FullAuth { switch: true }
        );
        let pw = Credential::from_password(b"pw");
        assert!(matches!(
            route(SHA2, &[0; 32], Some(&pw), None, true),
            Route::Check { .. }
        ));
    }
}
