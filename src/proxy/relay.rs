//! The hot path: forwarding a command to the backend and its answer to the client by
//! walking packet headers, without decoding rows.
//!
//! Bytes are read into one buffer per direction and written on in the largest ranges
//! available — normally one `write` per `read`. Only packets the response state machine
//! needs whole (OK/ERR/EOF, column counts, prepare answers) are waited for entirely;
//! rows and definitions stream through, so a 1 GiB row never needs 1 GiB of memory.
//! Invariant: when a relay function returns Ok, both buffers start at a packet boundary.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::protocol::buf::Reader;
use crate::protocol::codec::{chunk_header, write_packet};
use crate::protocol::constants::*;
use crate::protocol::packets::OkPacket;
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::response::{Event, Expect, Response};
use crate::proxy::session::Session;

/// What the end of an answer said.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// The answer (or its last result) was an ERR.
    pub error: bool,
    /// A prepare answer: statement id, params, columns.
    pub prepared: Option<(u32, u16, u16)>,
}

/// Buffers grown past this for one big packet are given back afterwards.
const KEEP_CAPACITY: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;

impl Session {
    /// Follows the backend's answer to the end, forwarding it to the client.
    pub(crate) async fn relay_response(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        let mut rs = Response::new(expect, self.backend_caps, self.mariadb_caps);
        let mut outcome = Outcome::default();
        // Payload bytes of the current chunk still to pass uninspected.
        let mut skip = 0usize;
        // The chunk being passed is 0xFFFFFF long: the next one continues it.
        let mut continued = false;
        loop {
            let mut pos = 0usize;
            // Start of bytes not yet copied into `out` (used only once a packet was
            // rewritten in this batch).
            let mut copied_to = 0usize;
            let mut local_infile = false;
            loop {
                if skip > 0 {
                    let n = skip.min(self.bbuf.len() - pos);
                    pos += n;
                    skip -= n;
                    if skip > 0 {
                        break;
                    }
                    continue;
                }
                if rs.is_done() && !continued {
                    break;
                }
                let Some((len, _seq)) = chunk_header(&self.bbuf[pos..]) else {
                    break;
                };
                if continued {
                    continued = len == MAX_CHUNK;
                    pos += 4;
                    skip = len;
                    continue;
                }
                let first = if len == 0 {
                    None
                } else {
                    match self.bbuf.get(pos + 4) {
                        Some(b) => Some(*b),
                        None => break,
                    }
                };
                if !rs.needs_whole(first, len) {
                    continued = len == MAX_CHUNK;
                    pos += 4;
                    skip = len;
                    rs.on_streamed()?;
                    continue;
                }
                let end = pos + 4 + len;
                if self.bbuf.len() < end {
                    self.bbuf.reserve(end - self.bbuf.len());
                    break;
                }
                let event = rs.on_packet(&self.bbuf[pos + 4..end])?;
                match event {
                    Event::Ok { status } => {
                        let rewrite = self.on_backend_ok(status, pos, end);
                        if rewrite {
                            self.out.extend_from_slice(&self.bbuf[copied_to..pos]);
                            let seq = self.bbuf[pos + 3];
                            strip_session_track(&self.bbuf[pos + 4..end], seq, &mut self.out);
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
                        let client_id = self.client_statement_id(id);
                        if client_id != id {
                            self.bbuf[pos + 5..pos + 9].copy_from_slice(&client_id.to_le_bytes());
                        }
                        let id = client_id;
                        outcome.prepared = Some((id, params, columns));
                    }
                    Event::LocalInfile => local_infile = true,
                    Event::More | Event::Progress => {}
                }
                pos = end;
                if local_infile {
                    break;
                }
            }
            self.flush_backend_bytes(pos, copied_to).await?;
            if local_infile {
                self.pump_local_infile().await?;
                rs.after_local_infile();
                continue;
            }
            if rs.is_done() && skip == 0 && !continued {
                self.shrink_buffers();
                return Ok(outcome);
            }
            self.read_backend().await?;
        }
    }

    /// The id the client sees for a statement the backend prepared as `backend_id`:
    /// the same until the session first moves; afterwards a fresh proxy id, written
    /// over the backend's in the prepare answer.
    fn client_statement_id(&mut self, backend_id: u32) -> u32 {
        if !self.map_statements || !self.forward {
            return backend_id;
        }
        let client_id = self.next_statement_id;
        self.next_statement_id = self.next_statement_id.wrapping_add(1).max(1);
        self.statement_ids.insert(client_id, backend_id);
        client_id
    }

    /// Updates session state from an OK packet at `bbuf[pos..end]`; returns whether it
    /// must be rewritten for a client that did not ask for session tracking.
    fn on_backend_ok(&mut self, status: u16, pos: usize, end: usize) -> bool {
        let payload = &self.bbuf[pos + 4..end];
        if status & SERVER_SESSION_STATE_CHANGED != 0 {
            if let Ok(ok) = OkPacket::parse(payload, self.backend_caps) {
                if self.state.on_ok(&ok) {
                    self.dirty = true;
                    tracing::debug!(session = self.id, state = ?self.state, "session state changed");
                }
            }
        } else {
            self.state.on_eof(status);
        }
        self.strip_tracking
    }

    /// Writes `bbuf[..pos]` to the client (with any rewritten packets gathered in
    /// `out`), then drops it from the buffer.
    async fn flush_backend_bytes(
        &mut self,
        pos: usize,
        copied_to: usize,
    ) -> Result<(), SessionError> {
        if !self.forward {
            // Replaying state on a new backend: the client must not see the answers.
            self.out.clear();
        } else if copied_to > 0 || !self.out.is_empty() {
            self.out.extend_from_slice(&self.bbuf[copied_to..pos]);
            self.client
                .write_all(&self.out)
                .await
                .map_err(SessionError::client_io)?;
            self.out.clear();
        } else if pos > 0 {
            self.client
                .write_all(&self.bbuf[..pos])
                .await
                .map_err(SessionError::client_io)?;
        }
        self.bbuf.advance(pos);
        Ok(())
    }

    pub(crate) async fn read_backend(&mut self) -> Result<(), SessionError> {
        self.bbuf.reserve(READ_CHUNK);
        match self.backend.read_buf(&mut self.bbuf).await {
            Ok(0) => Err(SessionError::backend_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(SessionError::backend_io(e)),
        }
    }

    /// Reads more client bytes of an incomplete packet; `Ok(false)` when the client
    /// closed the connection. Bounded by `net_read_timeout` from the packet's first
    /// read on: this is only called while a packet is incomplete, so the timer costs
    /// nothing to packets that arrive whole or to idle sessions.
    pub(crate) async fn read_client(&mut self) -> Result<bool, SessionError> {
        let deadline = self.packet_deadline();
        self.cbuf.reserve(16 * 1024);
        let read = self.client.read_buf(&mut self.cbuf);
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => Err(SessionError::client_io(e)),
            Err(_) => Err(self.read_timed_out()),
        }
    }

    /// When the packet being read must be whole (set on first use for each packet).
    pub(crate) fn packet_deadline(&mut self) -> Instant {
        let timeout = self.net_read_timeout;
        *self
            .packet_deadline
            .get_or_insert_with(|| Instant::now() + timeout)
    }

    /// The packet being read is whole: the next one gets a fresh deadline.
    pub(crate) fn packet_done(&mut self) {
        self.packet_deadline = None;
        self.client_seq = 0;
    }

    pub(crate) fn read_timed_out(&self) -> SessionError {
        SessionError::ReadTimeout(self.net_read_timeout)
    }

    /// Streams one logical packet of more than one chunk from the client to the
    /// backend, checking sequence ids and the size bound chunk by chunk. `cbuf` starts
    /// at the packet's first header.
    pub(crate) async fn forward_big_client_packet(&mut self) -> Result<(), SessionError> {
        let mut total = 0usize;
        let mut expected_seq = None;
        loop {
            let (len, seq) = self.client_chunk_header().await?;
            if expected_seq.is_some_and(|s| s != seq) {
                self.reply_to_client(1, &reply::out_of_order()).await;
                return Err(SessionError::Client(
                    crate::protocol::ProtocolError::OutOfOrder {
                        expected: expected_seq.unwrap_or(0),
                        got: seq,
                    },
                ));
            }
            expected_seq = Some(seq.wrapping_add(1));
            total += len;
            if total > self.max_packet {
                self.reply_to_client(
                    seq.wrapping_add(1),
                    &reply::packet_too_large(self.max_packet),
                )
                .await;
                return Err(SessionError::Client(
                    crate::protocol::ProtocolError::TooLarge {
                        size: total,
                        max: self.max_packet,
                    },
                ));
            }
            self.stream_client_chunk(len).await?;
            if len < MAX_CHUNK {
                return Ok(());
            }
        }
    }

    /// Passes one chunk (header at the start of `cbuf`, `len` payload bytes) from the
    /// client to the backend as its bytes arrive.
    async fn stream_client_chunk(&mut self, len: usize) -> Result<(), SessionError> {
        let mut left = 4 + len;
        loop {
            let n = left.min(self.cbuf.len());
            if n > 0 {
                self.backend
                    .write_all(&self.cbuf[..n])
                    .await
                    .map_err(SessionError::backend_io)?;
                self.cbuf.advance(n);
                left -= n;
            }
            if left == 0 {
                self.packet_done();
                return Ok(());
            }
            if !self.read_client().await? {
                return Err(SessionError::client_io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        }
    }

    /// Reads until the next chunk header from the client is buffered; the client
    /// closing in the middle of a packet is an error.
    async fn client_chunk_header(&mut self) -> Result<(usize, u8), SessionError> {
        loop {
            if let Some(header) = chunk_header(&self.cbuf) {
                self.client_seq = header.1;
                return Ok(header);
            }
            if !self.read_client().await? {
                return Err(SessionError::client_io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        }
    }

    /// After a LOCAL INFILE request: passes the client's file packets to the backend
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

    /// Sends the client one packet of the proxy's own (an ERR, an OK).
    pub(crate) async fn reply_to_client(&mut self, seq: u8, payload: &[u8]) {
        self.out.clear();
        write_packet(&mut self.out, seq, payload);
        let _ = self.client.write_all(&self.out).await;
        self.out.clear();
    }

    fn shrink_buffers(&mut self) {
        for buf in [&mut self.bbuf, &mut self.cbuf, &mut self.out] {
            if buf.capacity() > KEEP_CAPACITY && buf.is_empty() {
                *buf = BytesMut::with_capacity(READ_CHUNK);
            }
        }
    }
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
