//! The hot path: forwarding a command to the backend and its answer to the client by
//! walking packet headers, without decoding rows.
//!
//! Bytes are read into one buffer per direction and written on in the largest ranges
//! available — normally one `write` per `read`. Only packets the response state machine
//! needs whole (OK/ERR/EOF, column counts, prepare answers) are waited for entirely;
//! rows and definitions stream through, so a 1 GiB row never needs 1 GiB of memory.
//! Invariant: when a relay function returns Ok, both buffers start at a packet boundary.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::buf::Reader;
use crate::protocol::codec::{chunk_header, write_packet};
use crate::protocol::constants::*;
use crate::protocol::packets::OkPacket;
use crate::protocol::ProtocolError;
use crate::proxy::conn::{ClientConn, ServerConn};
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::response::{Event, Expect, Response};
use crate::proxy::state::SessionState;
use crate::proxy::statement_ids::StatementIds;

/// What the end of an answer said.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// The answer (or its last result) was an ERR.
    pub error: bool,
    /// A prepare answer: statement id (the client's), params, columns.
    pub prepared: Option<(u32, u16, u16)>,
    /// Session-tracking data in an OK changed the session's state.
    pub state_changed: bool,
}

/// The parts of a session one command's traffic touches: both connections, the
/// session state that OK/EOF packets update, and the statement-id mapping that prepare
/// answers extend.
pub struct Relay<'a, C, S> {
    pub client: &'a mut ClientConn<C>,
    pub server: &'a mut ServerConn<S>,
    pub state: &'a mut SessionState,
    pub ids: &'a mut StatementIds,
}

/// Where the walk of a batch of buffered server bytes stopped.
#[derive(Default)]
struct Walk {
    /// Payload bytes of the current chunk still to pass uninspected.
    skip: usize,
    /// The chunk being passed is 0xFFFFFF long: the next one continues it.
    continued: bool,
}

impl<C, S> Relay<'_, C, S>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Follows the server's answer to the end, forwarding it to the client.
    pub async fn answer(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        self.follow(expect, true).await
    }

    /// Follows the server's answer to a command the proxy sent on its own (state
    /// replayed on a new server): the client sees none of it, and statement ids are
    /// the server's.
    pub async fn swallow(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        self.follow(expect, false).await
    }

    async fn follow(&mut self, expect: Expect, forward: bool) -> Result<Outcome, SessionError> {
        let mut rs = Response::new(expect, self.server.caps(), self.server.mariadb_caps());
        let mut outcome = Outcome::default();
        let mut walk = Walk::default();
        loop {
            let (pos, copied_to, local_infile) =
                self.walk_buffered(&mut rs, &mut walk, &mut outcome, forward)?;
            self.flush_server_bytes(pos, copied_to, forward).await?;
            if local_infile {
                self.pump_local_infile().await?;
                rs.after_local_infile();
                continue;
            }
            if rs.is_done() && walk.skip == 0 && !walk.continued {
                self.client.shrink_buffers();
                self.server.shrink_buffers();
                return Ok(outcome);
            }
            self.server.read_more().await?;
        }
    }

    /// Walks the packets buffered from the server, up to the first one that is not
    /// whole yet and must be. Returns how far it got, how much of that is already
    /// copied into the client's scratch buffer (once a packet was rewritten), and
    /// whether it stopped at a LOCAL INFILE request.
    fn walk_buffered(
        &mut self,
        rs: &mut Response,
        walk: &mut Walk,
        outcome: &mut Outcome,
        forward: bool,
    ) -> Result<(usize, usize, bool), SessionError> {
        let mut pos = 0usize;
        let mut copied_to = 0usize;
        let buf_len = self.server.buf.len();
        loop {
            if walk.skip > 0 {
                let n = walk.skip.min(buf_len - pos);
                pos += n;
                walk.skip -= n;
                if walk.skip > 0 {
                    return Ok((pos, copied_to, false));
                }
                continue;
            }
            if rs.is_done() && !walk.continued {
                return Ok((pos, copied_to, false));
            }
            let Some((len, _seq)) = chunk_header(&self.server.buf[pos..]) else {
                return Ok((pos, copied_to, false));
            };
            if walk.continued {
                walk.continued = len == MAX_CHUNK;
                pos += 4;
                walk.skip = len;
                continue;
            }
            let first = if len == 0 {
                None
            } else {
                match self.server.buf.get(pos + 4) {
                    Some(b) => Some(*b),
                    None => return Ok((pos, copied_to, false)),
                }
            };
            if !rs.needs_whole(first, len) {
                walk.continued = len == MAX_CHUNK;
                pos += 4;
                walk.skip = len;
                rs.on_streamed()?;
                continue;
            }
            let end = pos + 4 + len;
            if buf_len < end {
                self.server.buf.reserve(end - buf_len);
                return Ok((pos, copied_to, false));
            }
            match rs.on_packet(&self.server.buf[pos + 4..end])? {
                Event::Ok { status } => {
                    outcome.state_changed |= self.on_ok(status, pos, end);
                    if forward && self.client.strips_tracking() {
                        let buf = &self.server.buf;
                        let out = self.client.scratch();
                        out.extend_from_slice(&buf[copied_to..pos]);
                        strip_session_track(&buf[pos + 4..end], buf[pos + 3], out);
                        copied_to = end;
                    }
                    outcome.error = false;
                }
                Event::Eof { status } => {
                    self.state.on_eof(status);
                    outcome.error = false;
                }
                Event::Err => outcome.error = true,
                Event::Prepared {
                    id,
                    params,
                    columns,
                } => {
                    let client_id = if forward {
                        self.ids.on_prepared(id)
                    } else {
                        id
                    };
                    if client_id != id {
                        self.server.buf[pos + 5..pos + 9].copy_from_slice(&client_id.to_le_bytes());
                    }
                    outcome.prepared = Some((client_id, params, columns));
                }
                Event::LocalInfile => return Ok((end, copied_to, true)),
                Event::More | Event::Progress => {}
            }
            pos = end;
        }
    }

    /// Updates session state from an OK packet at `buf[pos..end]`; returns whether
    /// tracked state changed.
    fn on_ok(&mut self, status: u16, pos: usize, end: usize) -> bool {
        if status & SERVER_SESSION_STATE_CHANGED == 0 {
            self.state.on_eof(status);
            return false;
        }
        let payload = &self.server.buf[pos + 4..end];
        match OkPacket::parse(payload, self.server.caps()) {
            Ok(ok) => self.state.on_ok(&ok),
            Err(_) => false,
        }
    }

    /// Writes `buf[..pos]` of the server's bytes to the client (with any rewritten
    /// packets gathered in the client's scratch buffer), then drops it from the buffer.
    async fn flush_server_bytes(
        &mut self,
        pos: usize,
        copied_to: usize,
        forward: bool,
    ) -> Result<(), SessionError> {
        if !forward {
            // Replaying state on a new server: the client must not see the answers.
        } else if copied_to > 0 || !self.client.scratch().is_empty() {
            let rest = &self.server.buf[copied_to..pos];
            self.client.scratch().extend_from_slice(rest);
            self.client.flush_scratch().await?;
        } else if pos > 0 {
            self.client.write(&self.server.buf[..pos]).await?;
        }
        self.server.buf.advance(pos);
        Ok(())
    }

    /// Streams one logical packet of more than one chunk from the client to the
    /// server, checking sequence ids and the size bound chunk by chunk. The client's
    /// buffer starts at the packet's first header.
    pub async fn forward_big_client_packet(&mut self) -> Result<(), SessionError> {
        let max = self.client.max_packet();
        let mut total = 0usize;
        let mut expected_seq = None;
        loop {
            let (len, seq) = self.client_chunk_header().await?;
            if let Some(expected) = expected_seq.filter(|&s| s != seq) {
                self.client.reply(1, &reply::out_of_order()).await;
                return Err(SessionError::Client(ProtocolError::OutOfOrder {
                    expected,
                    got: seq,
                }));
            }
            expected_seq = Some(seq.wrapping_add(1));
            total += len;
            if total > max {
                self.client
                    .reply(seq.wrapping_add(1), &reply::packet_too_large(max))
                    .await;
                return Err(SessionError::Client(ProtocolError::TooLarge {
                    size: total,
                    max,
                }));
            }
            self.stream_client_chunk(len).await?;
            if len < MAX_CHUNK {
                return Ok(());
            }
        }
    }

    /// Passes one chunk (header at the start of the client's buffer, `len` payload
    /// bytes) from the client to the server as its bytes arrive.
    async fn stream_client_chunk(&mut self, len: usize) -> Result<(), SessionError> {
        let mut left = 4 + len;
        loop {
            let n = left.min(self.client.buf.len());
            if n > 0 {
                self.server
                    .write(&self.client.buf[..n])
                    .await
                    .map_err(SessionError::backend_io)?;
                self.client.buf.advance(n);
                left -= n;
            }
            if left == 0 {
                self.client.packet_done();
                return Ok(());
            }
            if !self.client.read_more().await? {
                return Err(client_closed());
            }
        }
    }

    /// Reads until the next chunk header from the client is buffered; the client
    /// closing in the middle of a packet is an error.
    async fn client_chunk_header(&mut self) -> Result<(usize, u8), SessionError> {
        loop {
            if let Some(header) = chunk_header(&self.client.buf) {
                self.client.saw_seq(header.1);
                return Ok(header);
            }
            if !self.client.read_more().await? {
                return Err(client_closed());
            }
        }
    }

    /// After a LOCAL INFILE request: passes the client's file packets to the server
    /// up to and including the empty packet that ends them.
    async fn pump_local_infile(&mut self) -> Result<(), SessionError> {
        let mut continued = false;
        loop {
            let (len, _) = self.client_chunk_header().await?;
            let last = len == 0 && !continued;
            continued = len == MAX_CHUNK;
            self.stream_client_chunk(len).await?;
            if last {
                return Ok(());
            }
        }
    }
}

fn client_closed() -> SessionError {
    SessionError::client_io(std::io::ErrorKind::UnexpectedEof.into())
}

/// Writes the packet `payload` (an OK with session tracking) as the OK a client without
/// `CLIENT_SESSION_TRACK` expects: the same fields, the info string as the rest of the
/// length-encoded (left out when empty), no session-state block and no SESSION_STATE_CHANGED flag.
pub fn strip_session_track(payload: &[u8], seq: u8, out: &mut BytesMut) {
    let mut r = Reader::new(payload);
    let parsed = (|| {
        r.u8()?;
        r.lenenc_int()?;
        r.lenenc_int()?;
        let status_at = r.position();
        r.u16()?;
        r.u16()?;
        let fixed_end = r.position();
        // Servers send the info string length-encoded with or without session
        // tracking; without it, an empty info is left out.
        let info_end = if r.is_empty() || r.lenenc_bytes()?.is_empty() {
            fixed_end
        } else {
            r.position()
        };
        Ok::<_, crate::protocol::ProtocolError>((
            status_at,
            fixed_end,
            &payload[fixed_end..info_end],
        ))
    })();
    let Ok((status_at, fixed_end, info)) = parsed else {
        // Not an OK we understand: pass it on unchanged.
        write_packet(out, seq, payload);
        return;
    };
    let len = fixed_end + info.len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
    out.extend_from_slice(&[seq]);
    let start = out.len();
    out.extend_from_slice(&payload[..fixed_end]);
    out.extend_from_slice(info);
    let status = u16::from_le_bytes([payload[status_at], payload[status_at + 1]])
        & !SERVER_SESSION_STATE_CHANGED;
    out[start + status_at..start + status_at + 2].copy_from_slice(&status.to_le_bytes());
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod relay_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tracking_and_keeps_info() {
        // OK: affected 1, insert id 0, status 0x4002, warnings 0, info "hi", state block.
        let payload = [0x00, 1, 0, 0x02, 0x40, 0, 0, 2, b'h', b'i', 3, 1, 1, b'x'];
        let mut out = BytesMut::new();
        strip_session_track(&payload, 5, &mut out);
        assert_eq!(
            &out[..],
            &[10, 0, 0, 5, 0x00, 1, 0, 0x02, 0x00, 0, 0, 2, b'h', b'i']
        );
        // No info at all.
        let payload = [0x00, 0, 0, 0x02, 0x00, 0, 0];
        let mut out = BytesMut::new();
        strip_session_track(&payload, 1, &mut out);
        assert_eq!(&out[4..], &payload[..]);
        // Garbage passes unchanged.
        let mut out = BytesMut::new();
        strip_session_track(&[0x00, 0xFC], 1, &mut out);
        assert_eq!(&out[4..], &[0x00, 0xFC]);
    }
}
