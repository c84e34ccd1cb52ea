//! `KILL` through the proxy. Clients name sessions by the proxy id they saw at login;
//! the server knows them by its own thread id, and after a switchover the target may
//! still be on the other server. A KILL naming a proxy session is rewritten to that
//! session's thread id and sent to the server it is on; any other number goes to the
//! session's own server unchanged (see [`crate::proxy::PROXY_ID_BASE`]).

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::protocol::constants::*;
use crate::protocol::ProtocolError;
use crate::proxy::errors::SessionError;
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::registry::lock;
use crate::proxy::scan::kill_target;
use crate::proxy::session::{connect_error_reply, statement_id, Session};
use crate::proxy::upstream::ConnectError;

impl Session {
    /// `KILL n` by protocol command: `n` is a proxy session id; the server knows the
    /// session by its own thread id. Returns the target's server when it is not this
    /// session's (one of them has not moved since a switchover).
    pub(crate) fn translate_kill(&self, packet: &mut BytesMut) -> Option<String> {
        let id = statement_id(packet)?;
        let (thread, address) = self.shared.sessions.backend_of(id)?;
        packet[5..9].copy_from_slice(&thread.to_le_bytes());
        self.elsewhere(address)
    }

    /// `KILL [QUERY] n` as SQL: the same translation, rewriting the statement text.
    pub(crate) fn translate_kill_statement(
        &self,
        packet: &[u8],
    ) -> Option<(BytesMut, Option<String>)> {
        let sql = packet.get(5..)?;
        let (start, end, id) = kill_target(sql)?;
        let (thread, address) = self.shared.sessions.backend_of(id)?;
        let text = [&sql[..start], thread.to_string().as_bytes(), &sql[end..]].concat();
        let mut out = BytesMut::with_capacity(text.len() + 5);
        crate::protocol::codec::write_packet(&mut out, 0, &[&[COM_QUERY][..], &text].concat());
        Some((out, self.elsewhere(address)))
    }

    fn elsewhere(&self, address: String) -> Option<String> {
        (*lock(&self.published.info().backend_address) != address).then_some(address)
    }

    /// Sends a translated KILL to the server the target session is on, over a
    /// connection of its own as this session's user (so the server checks the same
    /// privileges), and passes the server's answer to the client.
    pub(crate) async fn kill_elsewhere(
        &mut self,
        address: &str,
        packet: &[u8],
    ) -> Result<bool, SessionError> {
        let timeout = self.shared.topology.config.load().proxy.connect_timeout.0;
        let answer = async {
            let conn = self
                .shared
                .connect_upstream(address, &self.login, timeout)
                .await?;
            let mut io = PacketStream::new(conn.stream, HANDSHAKE_MAX_PACKET);
            io.stream
                .write_all(packet)
                .await
                .map_err(ProtocolError::Io)?;
            io.stream.flush().await.map_err(ProtocolError::Io)?;
            io.codec.set_seq(1);
            let reply = io.read().await?;
            Ok::<_, ConnectError>(reply.payload)
        }
        .await;
        match answer {
            Ok(payload) => self.client.reply(1, &payload).await,
            Err(e) => {
                self.client
                    .reply(1, &connect_error_reply(address, &e))
                    .await
            }
        }
        Ok(true)
    }
}
