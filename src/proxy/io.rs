//! Packet-at-a-time I/O for the connection phase (handshake, authentication, control
//! queries), where speed does not matter and whole logical packets are wanted. The
//! command phase uses the relay instead, which walks raw bytes.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Decoder;

use crate::protocol::codec::{write_packet, Packet, PacketCodec};
use crate::protocol::ProtocolError;

/// Largest packet accepted during the connection phase.
pub const HANDSHAKE_MAX_PACKET: usize = 64 * 1024;

/// A stream with a read buffer and a packet codec that tracks sequence ids.
pub struct PacketStream<S> {
    pub stream: S,
    pub buf: BytesMut,
    pub codec: PacketCodec,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    pub fn new(stream: S, max_packet: usize) -> Self {
        PacketStream {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            codec: PacketCodec::new(max_packet),
        }
    }

    /// Reads one logical packet; the sequence id must be the expected one.
    pub async fn read(&mut self) -> Result<Packet, ProtocolError> {
        loop {
            if let Some(p) = self.codec.decode(&mut self.buf)? {
                return Ok(p);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Writes one logical packet with the next sequence id.
    pub async fn write(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(payload.len() + 8);
        let next = write_packet(&mut out, self.codec.seq(), payload);
        self.codec.set_seq(next);
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    /// Starts a new command: sequence ids restart at 0.
    pub fn reset_seq(&mut self) {
        self.codec.reset_seq();
    }

    /// Gives back the stream and whatever was read past the last packet.
    pub fn into_parts(self) -> (S, BytesMut) {
        (self.stream, self.buf)
    }
}
