//! The two ends of a session: the client's connection and the upstream (server)
//! connection, each a byte stream with its read buffer and what the relay needs to know
//! about it. Generic over the stream, so the relay runs over TCP, TLS or an in-memory
//! pipe alike.
//!
//! Invariant: between commands both read buffers start at a packet boundary.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::protocol::codec::write_packet;
use crate::proxy::errors::SessionError;
use crate::proxy::leg::ClientLeg;
use crate::proxy::stream::ServerStream;
use crate::proxy::upstream::Upstream;

/// Room made for one read from the client.
const CLIENT_READ: usize = 16 * 1024;
/// Room made for one read from the server.
const SERVER_READ: usize = 64 * 1024;
/// Buffers grown past this for one big packet are given back afterwards.
const KEEP_CAPACITY: usize = 256 * 1024;

/// The client's side of a session.
pub struct ClientConn<C> {
    stream: C,
    /// Bytes read from the client and not yet handled.
    pub buf: BytesMut,
    /// Scratch for packets the proxy writes to the client or rewrites.
    out: BytesMut,
    /// The client did not ask for CLIENT_SESSION_TRACK: OK packets are rewritten.
    strip_tracking: bool,
    /// `[proxy] max_packet_size`.
    max_packet: usize,
    /// `[proxy] net_read_timeout`: bound on reading one packet once it has begun.
    net_read_timeout: std::time::Duration,
    /// When the packet being read must be complete; set by the first read that finds
    /// a packet incomplete, cleared when it is whole. `None` between packets, so an
    /// idle session and a packet that arrives whole arm no timer.
    packet_deadline: Option<Instant>,
    /// Sequence id of the client packet being read (the ERR for a timeout follows it).
    seq: u8,
}

impl<C: AsyncRead + AsyncWrite + Unpin> ClientConn<C> {
    pub fn new(
        stream: C,
        buf: BytesMut,
        strip_tracking: bool,
        max_packet: usize,
        net_read_timeout: std::time::Duration,
    ) -> Self {
        ClientConn {
            stream,
            buf,
            out: BytesMut::new(),
            strip_tracking,
            max_packet,
            net_read_timeout,
            packet_deadline: None,
            seq: 0,
        }
    }

    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// OK packets must lose their session-tracking block before they reach the client.
    pub fn strips_tracking(&self) -> bool {
        self.strip_tracking
    }

    /// Reads more bytes of an incomplete packet; `Ok(false)` when the client closed.
    /// Bounded by `net_read_timeout` from the packet's first read on: this is only
    /// called while a packet is incomplete, so the timer costs nothing to packets that
    /// arrive whole or to idle sessions.
    pub async fn read_more(&mut self) -> Result<bool, SessionError> {
        let deadline = self.packet_deadline();
        self.read_until(deadline).await
    }

    /// Reads what the client sends next, giving up at `deadline`; `Ok(false)` when the
    /// client closed.
    pub async fn read_until(&mut self, deadline: Instant) -> Result<bool, SessionError> {
        self.buf.reserve(CLIENT_READ);
        let read = self.stream.read_buf(&mut self.buf);
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(n)) => Ok(n > 0),
            Ok(Err(e)) => Err(SessionError::client_io(e)),
            Err(_) => Err(self.read_timed_out()),
        }
    }

    /// When the packet being read must be whole (set on first use for each packet).
    pub fn packet_deadline(&mut self) -> Instant {
        let timeout = self.net_read_timeout;
        *self
            .packet_deadline
            .get_or_insert_with(|| Instant::now() + timeout)
    }

    /// The packet being read is whole: the next one gets a fresh deadline.
    pub fn packet_done(&mut self) {
        self.packet_deadline = None;
        self.seq = 0;
    }

    /// A chunk header with sequence id `seq` was read.
    pub fn saw_seq(&mut self, seq: u8) {
        self.seq = seq;
    }

    /// The sequence id for an ERR that follows the packet being read.
    pub fn next_seq(&self) -> u8 {
        self.seq.wrapping_add(1)
    }

    pub fn read_timed_out(&self) -> SessionError {
        SessionError::ReadTimeout(self.net_read_timeout)
    }

    /// How long the client may take to finish a packet it began.
    pub fn net_read_timeout(&self) -> std::time::Duration {
        self.net_read_timeout
    }

    /// Writes bytes (a server's answer) to the client.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(SessionError::client_io)?;
        self.stream.flush().await.map_err(SessionError::client_io)
    }

    /// Sends the client one packet of the proxy's own (an ERR, an OK). A client that
    /// is gone is noticed at the next read.
    pub async fn reply(&mut self, seq: u8, payload: &[u8]) {
        self.out.clear();
        write_packet(&mut self.out, seq, payload);
        if self.stream.write_all(&self.out).await.is_ok() {
            let _ = self.stream.flush().await;
        }
        self.out.clear();
    }

    /// The scratch buffer for packets the relay rewrites on their way to the client.
    pub fn scratch(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Writes the scratch buffer to the client and empties it.
    pub async fn flush_scratch(&mut self) -> Result<(), SessionError> {
        let mut result = self.stream.write_all(&self.out).await;
        if result.is_ok() {
            result = self.stream.flush().await;
        }
        self.out.clear();
        result.map_err(SessionError::client_io)
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Whether any buffer holds memory worth giving back while idle.
    pub fn holds_buffers(&self) -> bool {
        self.buf.capacity() + self.out.capacity() > 0
    }

    /// Frees the empty buffers (an idle session); they are allocated again when the
    /// next command comes.
    pub fn release_buffers(&mut self) {
        release(&mut self.buf);
        release(&mut self.out);
    }

    /// Gives back buffers one big packet grew.
    pub fn shrink_buffers(&mut self) {
        shrink(&mut self.buf, CLIENT_READ);
        shrink(&mut self.out, CLIENT_READ);
    }
}

impl ClientConn<ClientLeg> {
    /// Waits for the client to send something and reads it; `Ok(false)` when it
    /// closed. Room is made only once bytes are ready, so a waiting session holds no
    /// buffer. Cancel-safe: nothing is read unless the future completes.
    ///
    /// The read itself is `read_buf`, not `try_read_buf`: a short read then clears the
    /// socket's readiness, so the wait for the next command does not begin with a
    /// `recvfrom` that can only answer EAGAIN.
    pub async fn read_idle(&mut self) -> std::io::Result<bool> {
        self.stream.readable().await?;
        self.buf.reserve(CLIENT_READ);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Resolves when the client has sent something (nothing is read).
    pub async fn readable(&self) -> std::io::Result<()> {
        self.stream.readable().await
    }

    /// Whether the stream (a compressed one) holds memory worth giving back.
    pub fn stream_holds_buffers(&self) -> bool {
        self.stream.holds_buffers()
    }

    /// Gives back what an idle compressed stream holds.
    pub fn release_stream_buffers(&mut self) {
        self.stream.release_buffers();
    }
}

/// A session's connection to a server, and what that server agreed to at login.
pub struct ServerConn<S> {
    stream: S,
    /// Bytes read from the server and not yet passed on.
    pub buf: BytesMut,
    caps: u32,
    mariadb_caps: u32,
    /// The scramble of the server's greeting, used to answer it (COM_CHANGE_USER).
    scramble: Vec<u8>,
    /// The server's id for this connection.
    thread_id: u32,
    /// The target epoch the connection belongs to.
    epoch: u64,
}

impl ServerConn<ServerStream> {
    /// The logged-in connection `conn`, for the target of `epoch`.
    pub fn from_upstream(conn: Upstream, epoch: u64) -> Self {
        let Upstream {
            stream,
            buf,
            thread_id,
            caps,
            mariadb_caps,
            scramble,
            ..
        } = conn;
        ServerConn::new(stream, buf, caps, mariadb_caps, scramble, thread_id, epoch)
    }

    /// Resolves when the server has sent something (nothing is read).
    pub async fn readable(&self) -> std::io::Result<()> {
        self.stream.readable().await
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, ServerStream::Tls(_))
    }

    /// Reads what the server sent without waiting: `Ok(None)` when nothing was there,
    /// `Ok(Some(0))` when it closed.
    pub fn try_read(&mut self) -> std::io::Result<Option<usize>> {
        self.buf.reserve(4096);
        self.stream.try_read_buf(&mut self.buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerConn<S> {
    pub fn new(
        stream: S,
        buf: BytesMut,
        caps: u32,
        mariadb_caps: u32,
        scramble: Vec<u8>,
        thread_id: u32,
        epoch: u64,
    ) -> Self {
        ServerConn {
            stream,
            buf,
            caps,
            mariadb_caps,
            scramble,
            thread_id,
            epoch,
        }
    }

    /// Capabilities negotiated with the server.
    pub fn caps(&self) -> u32 {
        self.caps
    }

    pub fn mariadb_caps(&self) -> u32 {
        self.mariadb_caps
    }

    pub fn scramble(&self) -> &[u8] {
        &self.scramble
    }

    pub fn thread_id(&self) -> u32 {
        self.thread_id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Puts `next` in this connection's place and returns the old one.
    pub fn replace(&mut self, next: ServerConn<S>) -> ServerConn<S> {
        std::mem::replace(self, next)
    }

    /// Writes bytes (a command) to the server.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads more of the server's answer; the server closing is an error.
    pub async fn read_more(&mut self) -> Result<(), SessionError> {
        self.buf.reserve(SERVER_READ);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(SessionError::backend_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(SessionError::backend_io(e)),
        }
    }

    /// The stream and the read buffer, for packet-at-a-time exchanges (control
    /// queries, COM_CHANGE_USER) that take the buffer and give it back.
    pub fn parts(&mut self) -> (&mut S, &mut BytesMut) {
        (&mut self.stream, &mut self.buf)
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    pub fn holds_buffers(&self) -> bool {
        self.buf.capacity() > 0
    }

    pub fn release_buffers(&mut self) {
        release(&mut self.buf);
    }

    pub fn shrink_buffers(&mut self) {
        shrink(&mut self.buf, SERVER_READ);
    }
}

fn release(buf: &mut BytesMut) {
    if buf.is_empty() {
        *buf = BytesMut::new();
    }
}

fn shrink(buf: &mut BytesMut, keep: usize) {
    if buf.capacity() > KEEP_CAPACITY && buf.is_empty() {
        *buf = BytesMut::with_capacity(keep);
    }
}
