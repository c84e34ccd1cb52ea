//! COM_CHANGE_USER: the client is authenticated again at the proxy, by the same rules
//! as at login (against the greeting's scramble, or after an AuthSwitchRequest; a
//! caching_sha2 client on the fast path), then the backend session changes user with
//! the proven secret, and session tracking is restored.

use bytes::{Bytes, BytesMut};

use crate::protocol::caching_sha2::{is_empty_answer, FAST_AUTH_OK_PAYLOAD};
use crate::protocol::codec::chunk_header;
use crate::protocol::constants::*;
use crate::protocol::credential::Plugin;
use crate::protocol::handshake::{AuthSwitchRequest, ChangeUser};
use crate::protocol::packets::ok_payload;
use crate::proxy::client::{self, Route};
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::registry::lock;
use crate::proxy::session::{connect_error_reply, Session};
use crate::proxy::upstream::{self, BackendAuth};

impl Session {
    /// COM_CHANGE_USER: the client is authenticated again at the proxy (against the
    /// greeting's scramble, or after an AuthSwitchRequest), then the backend session
    /// changes user with the recovered credential.
    pub(crate) async fn change_user(&mut self, packet: Bytes) -> Result<bool, SessionError> {
        let mut seq = 1u8;
        let request = match ChangeUser::parse(&packet[5..], self.login.caps) {
            Ok(r) => r,
            Err(e) => {
                self.client
                    .reply(seq, &reply::malformed(&e.to_string()))
                    .await;
                return Err(SessionError::Client(e));
            }
        };
        let peer = self.published.info().peer.ip();
        if let Some(left) = self.shared.throttle.refuse(peer) {
            let reply = reply::host_blocked(&peer.to_string(), left);
            self.client.reply(seq, &reply).await;
            return Err(SessionError::HostBlocked);
        }
        let user = String::from_utf8_lossy(&request.user).into_owned();
        let account = client::account(&self.shared, &user).await;
        let attrs = request.connect_attrs.as_ref().or(self.login.attrs.as_ref());
        let route = client::route(
            request.auth_plugin.as_deref(),
            &request.auth_response,
            account.as_ref(),
            attrs.map(|a| &a[..]),
            // Not offered here: a full authentication inside COM_CHANGE_USER is one
            // more exchange the command's answer would have to follow.
            false,
        );
        let mut token = request.auth_response.clone();
        let plugin = match route {
            Route::NeedsPassword | Route::FullAuth { .. } => {
                self.client
                    .reply(seq, &reply::needs_password(&user, false))
                    .await;
                return Err(SessionError::NeedsPassword(user));
            }
            Route::Check { plugin, switch } => {
                if switch {
                    match self.switch_client(seq, plugin).await? {
                        Some(answer) => token = answer,
                        None => return Ok(false),
                    }
                    seq += 2;
                }
                plugin
            }
        };
        let Some(secret) =
            client::verify(&self.shared, &user, plugin, &token, &self.client_scramble).await
        else {
            let config = self.shared.topology.config.load_full();
            self.shared.throttle.failed(peer, &config.proxy).await;
            let host = peer.to_string();
            self.client
                .reply(
                    seq,
                    &reply::access_denied(&request.user, &host, !is_empty_answer(&token)),
                )
                .await;
            return Err(SessionError::AccessDenied);
        };
        self.shared.throttle.succeeded(peer);
        if client::sends_fast_auth_ok(plugin, &secret) {
            self.client.reply(seq, &FAST_AUTH_OK_PAYLOAD).await;
            seq += 1;
        }
        // The backend side: COM_CHANGE_USER with a token for the backend's scramble.
        let database = (!request.database.is_empty()).then(|| request.database.clone());
        // Native first: the proxy does not keep the backend's default plugin, and a
        // server whose account needs caching_sha2_password switches to it.
        let (auth, first_answer) =
            BackendAuth::start(&secret, Plugin::Native, self.server.scramble());
        let mut auth = auth.over_tls(self.server.is_tls());
        let backend_request = ChangeUser {
            user: request.user.clone(),
            auth_response: first_answer,
            database: request.database.clone(),
            charset: request.charset,
            auth_plugin: Some(Bytes::from_static(NATIVE_PASSWORD.as_bytes())),
            connect_attrs: request.connect_attrs.clone(),
        };
        let mut payload = BytesMut::new();
        backend_request.encode(&mut payload, self.server.caps());
        let (stream, buf) = self.server.parts();
        let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
        io.buf = std::mem::take(buf);
        let verdict = match io.write(&payload).await {
            Ok(()) => Ok(upstream::finish_auth(&mut io, &mut auth).await),
            Err(e) => Err(SessionError::backend_io(e)),
        };
        *buf = io.into_parts().1;
        let verdict = verdict?;
        match verdict {
            Ok(_) => {
                self.login.user = request.user.clone();
                self.login.secret = secret.clone();
                self.login.database = database.clone();
                if let Some(cs) = request.charset {
                    self.login.charset = cs as u8;
                    self.state.charset = cs as u8;
                }
                self.state
                    .reset(database.map(|d| String::from_utf8_lossy(&d).into_owned()));
                self.ids.clear();
                *lock(&self.published.info().login) = self.login.clone();
                // A connection pre-opened for a switchover logged in as the old user.
                lock(&self.published.info().preopened).take();
                self.published.mark_stale();
                self.restore_tracking().await?;
                self.client
                    .reply(seq, &ok_payload(SERVER_STATUS_AUTOCOMMIT, self.login.caps))
                    .await;
                Ok(true)
            }
            Err(e) => {
                drop(auth);
                let address = self.shared.topology.active_address();
                self.client
                    .reply(seq, &connect_error_reply(&address, &e))
                    .await;
                Err(e.into())
            }
        }
    }

    /// Asks the client to answer the change again with `plugin` and a fresh scramble
    /// (kept for later changes); `None` when the client went away.
    async fn switch_client(
        &mut self,
        seq: u8,
        plugin: Plugin,
    ) -> Result<Option<Bytes>, SessionError> {
        let scramble = crate::protocol::auth::new_scramble();
        self.client_scramble = scramble;
        let mut payload = BytesMut::new();
        AuthSwitchRequest {
            plugin: Bytes::from_static(plugin.name().as_bytes()),
            data: Bytes::copy_from_slice(&scramble),
        }
        .encode(&mut payload);
        self.client.reply(seq, &payload).await;
        // The client answers at once; one that does not is bounded as a packet
        // begun and not finished would be.
        let deadline = tokio::time::Instant::now() + self.client.net_read_timeout();
        loop {
            let buf = &mut self.client.buf;
            if let Some((len, _)) = chunk_header(buf) {
                if len < HANDSHAKE_MAX_PACKET && buf.len() >= 4 + len {
                    let p = buf.split_to(4 + len);
                    return Ok(Some(Bytes::copy_from_slice(&p[4..])));
                }
            }
            if !self.client.read_until(deadline).await? {
                return Ok(None);
            }
        }
    }
}
