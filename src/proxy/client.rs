//! The client side of the connection phase: the proxy plays the server. Sends a
//! greeting with a fresh scramble, reads the client's answer, switches other plugins to
//! `mysql_native_password`, and verifies the answer against the stored hash — which
//! yields SHA1(password), the credential used to log in to any backend.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::protocol::auth::{native_verify, new_scramble};
use crate::protocol::constants::*;
use crate::protocol::handshake::{
    unoffered_framing, AuthSwitchRequest, HandshakeResponse, ServerHandshake,
};
use crate::protocol::ProtocolError;
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::PacketStream;
use crate::proxy::upstream::{Login, ServerInfo, RELAYED_CAPS, RELAYED_MARIADB_CAPS};
use crate::proxy::users::Credential;
use crate::proxy::Proxy;

/// A client that proved who it is.
pub struct Authenticated {
    pub login: Login,
    /// The scramble sent in the greeting (COM_CHANGE_USER answers are made with it).
    pub scramble: [u8; 20],
}

/// Capabilities the proxy offers clients, given what the backend offers.
pub fn offered_caps(server: &ServerInfo) -> u32 {
    (server.capabilities & RELAYED_CAPS)
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
}

/// Runs the connection phase up to (not including) the final OK, which is sent once
/// the backend has accepted the login too.
pub async fn handshake(
    io: &mut PacketStream,
    id: u32,
    shared: &Proxy,
    peer: SocketAddr,
) -> Result<Authenticated, SessionError> {
    let server = shared.server_info.load_full();
    let scramble = new_scramble();
    let caps = offered_caps(&server);
    let greeting = ServerHandshake {
        protocol_version: 10,
        server_version: server.version.clone(),
        connection_id: id,
        scramble: scramble.to_vec(),
        capabilities: caps,
        charset: server.charset,
        status: SERVER_STATUS_AUTOCOMMIT,
        mariadb_caps: server.mariadb_caps & RELAYED_MARIADB_CAPS,
        auth_plugin: Bytes::from_static(NATIVE_PASSWORD.as_bytes()),
    };
    let mut payload = BytesMut::new();
    greeting.encode(&mut payload);
    io.write(&payload).await.map_err(SessionError::client_io)?;

    let packet = match io.read().await {
        Ok(p) => p,
        Err(e) => return Err(fail(io, e).await),
    };
    if HandshakeResponse::is_ssl_request(&packet.payload) {
        // What a MariaDB server without TLS (have_ssl=DISABLED) answers too: 1043.
        io.write(&reply::handshake(
            "TLS was not offered; connect without TLS (e.g. --skip-ssl, ssl-mode=DISABLED)",
        ))
        .await
        .ok();
        return Err(SessionError::Client(ProtocolError::Malformed {
            what: "unexpected SSL request",
        }));
    }
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
    let client_caps = response.capabilities & caps;
    let mut token = response.auth_response.clone();
    let plugin_ok = response
        .auth_plugin
        .as_ref()
        .is_none_or(|p| p.is_empty() || p.as_ref() == NATIVE_PASSWORD.as_bytes());
    if !plugin_ok {
        // e.g. caching_sha2_password: ask for a native answer to the same scramble.
        let switch = AuthSwitchRequest {
            plugin: Bytes::from_static(NATIVE_PASSWORD.as_bytes()),
            data: Bytes::copy_from_slice(&scramble),
        };
        let mut payload = BytesMut::new();
        switch.encode(&mut payload);
        io.write(&payload).await.map_err(SessionError::client_io)?;
        token = match io.read().await {
            Ok(p) => p.payload,
            Err(e) => return Err(fail(io, e).await),
        };
    }
    let user = String::from_utf8_lossy(&response.user).into_owned();
    let sha1 = match verify(shared, &user, &token, &scramble).await {
        Some(sha1) => sha1,
        None => {
            tracing::info!(session = id, user, %peer, "access denied");
            io.write(&reply::access_denied(
                &response.user,
                &peer.ip().to_string(),
                !token.is_empty(),
            ))
            .await
            .ok();
            return Err(SessionError::AccessDenied);
        }
    };
    Ok(Authenticated {
        login: Login {
            user: response.user,
            sha1,
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
        },
        scramble,
    })
}

/// Sends the client the ERR that matches a protocol failure, and returns the error.
async fn fail(io: &mut PacketStream, e: ProtocolError) -> SessionError {
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

/// Checks a native token for `user`; reloads accounts from the backend once when the
/// user is unknown or the token does not match (the password may have changed).
/// Returns `Some(SHA1(password))` (`Some(None)` for an empty password) when valid.
pub async fn verify(
    shared: &Proxy,
    user: &str,
    token: &[u8],
    scramble: &[u8],
) -> Option<Credential> {
    if let Some(found) = check(shared.users.get(user), token, scramble) {
        return Some(found);
    }
    if shared.users.can_load(user)
        && shared
            .users
            .refresh(&shared.topology.active_address())
            .await
    {
        return check(shared.users.get(user), token, scramble);
    }
    None
}

fn check(stored: Option<Credential>, token: &[u8], scramble: &[u8]) -> Option<Credential> {
    match stored? {
        None if token.is_empty() => Some(None),
        None => None,
        Some(hash) => native_verify(token, &scramble[..20.min(scramble.len())], &hash).map(Some),
    }
}
