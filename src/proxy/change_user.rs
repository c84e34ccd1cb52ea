//! COM_CHANGE_USER: the client is authenticated again at the proxy (against the
//! greeting's scramble, or after an AuthSwitchRequest), then the backend session
//! changes user with the recovered credential, and session tracking is restored.

use bytes::{Bytes, BytesMut};

use crate::protocol::codec::chunk_header;
use crate::protocol::constants::*;
use crate::protocol::handshake::{AuthSwitchRequest, ChangeUser};
use crate::protocol::packets::ok_payload;
use crate::proxy::client;
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::registry::lock;
use crate::proxy::session::{connect_error_reply, Session};
use crate::proxy::upstream;

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
        let mut token = request.auth_response.clone();
        let native = request
            .auth_plugin
            .as_ref()
            .is_none_or(|p| p.is_empty() || p.as_ref() == NATIVE_PASSWORD.as_bytes());
        if !native {
            let scramble = crate::protocol::auth::new_scramble();
            self.client_scramble = scramble;
            let mut payload = BytesMut::new();
            AuthSwitchRequest {
                plugin: Bytes::from_static(NATIVE_PASSWORD.as_bytes()),
                data: Bytes::copy_from_slice(&scramble),
            }
            .encode(&mut payload);
            self.client.reply(seq, &payload).await;
            // The client answers at once; one that does not is bounded as a packet
            // begun and not finished would be.
            let deadline = tokio::time::Instant::now() + self.client.net_read_timeout();
            let answer = loop {
                let buf = &mut self.client.buf;
                if let Some((len, _)) = chunk_header(buf) {
                    if len < HANDSHAKE_MAX_PACKET && buf.len() >= 4 + len {
                        let p = buf.split_to(4 + len);
                        break Bytes::copy_from_slice(&p[4..]);
                    }
                }
                if !self.client.read_until(deadline).await? {
                    return Ok(false);
                }
            };
            token = answer;
            seq += 2;
        }
        let user = String::from_utf8_lossy(&request.user).into_owned();
        let Some(sha1) = client::verify(&self.shared, &user, &token, &self.client_scramble).await
        else {
            let peer = self.published.info().peer.ip().to_string();
            self.client
                .reply(
                    seq,
                    &reply::access_denied(&request.user, &peer, !token.is_empty()),
                )
                .await;
            return Err(SessionError::AccessDenied);
        };
        // The backend side: COM_CHANGE_USER with a token for the backend's scramble.
        let database = (!request.database.is_empty()).then(|| request.database.clone());
        let backend_request = ChangeUser {
            user: request.user.clone(),
            auth_response: upstream::auth_token(&sha1, self.server.scramble()),
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
            Ok(()) => Ok(upstream::finish_auth(&mut io, &sha1).await),
            Err(e) => Err(SessionError::backend_io(e)),
        };
        *buf = io.into_parts().1;
        let verdict = verdict?;
        match verdict {
            Ok(_) => {
                self.login.user = request.user.clone();
                self.login.sha1 = sha1;
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
                let address = self.shared.topology.active_address();
                self.client
                    .reply(seq, &connect_error_reply(&address, &e))
                    .await;
                Err(e.into())
            }
        }
    }
}
