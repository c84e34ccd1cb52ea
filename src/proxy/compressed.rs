//! [`Compressed`]: the compressed protocol over any byte stream, as the client leg
//! speaks it once the connection phase is over. Reads give the inflated plain stream.
//! What is written — MySQL packets — goes out in compressed packets that end where a
//! MySQL packet ends, as a server's do: a MySQL packet then starts in one compressed
//! packet and ends in it or the next, which some clients rely on (mysql-connector-
//! python reads at most one more compressed packet to finish a MySQL packet). So the
//! start of a packet not yet whole waits for the rest, and only one bigger than a
//! compressed packet can hold (16 MiB) is sent in parts. `poll_flush` sends every
//! whole packet written.
//!
//! Sequence ids of compressed packets follow what servers do: the client starts each
//! command at 0, and every packet the proxy writes continues from the last one it
//! read (a LOCAL INFILE transfer or an authentication exchange goes on counting).
//!
//! Invariant: at most one compressed packet waits to be written, at most 16 MiB of
//! content waits to be compressed, and content is only inflated once the previous
//! packet's content has been read, so each buffer stays within one packet (16 MiB).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use crate::protocol::codec::{chunk_header, HEADER_LEN};
use crate::protocol::compress::{has_packet, Algorithm, Codec, MAX_LEN};

/// Room made for one read from the stream.
const READ_ROOM: usize = 16 * 1024;

/// A stream that speaks the compressed protocol.
pub struct Compressed<S> {
    inner: S,
    codec: Codec,
    /// Compressed bytes read and not yet inflated.
    raw: BytesMut,
    /// Inflated bytes not yet read.
    plain: BytesMut,
    /// Content written and not yet compressed: whole MySQL packets, then the start
    /// of one not yet whole.
    pending: BytesMut,
    /// Length of what is whole at the front of `pending`: the rest of a packet sent
    /// in parts, then whole MySQL packets.
    whole: usize,
    /// Bytes still to come of a packet whose start was sent (one bigger than a
    /// compressed packet holds).
    tail: usize,
    /// The compressed packet written and not yet sent.
    out: BytesMut,
    /// Sequence id of the next compressed packet written.
    seq: u8,
}

impl<S> Compressed<S> {
    /// Compressed framing over `inner`, which already gave `read` (bytes read past
    /// the connection phase).
    pub fn new(inner: S, algorithm: Algorithm, read: BytesMut) -> Self {
        Compressed {
            inner,
            codec: Codec::new(algorithm),
            raw: read,
            plain: BytesMut::new(),
            pending: BytesMut::new(),
            whole: 0,
            tail: 0,
            out: BytesMut::new(),
            seq: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn algorithm(&self) -> Algorithm {
        self.codec.algorithm()
    }

    /// Whether a read would return at once without touching the stream: content is
    /// inflated and waiting, or a whole compressed packet is.
    pub fn buffered(&self) -> bool {
        !self.plain.is_empty() || has_packet(&self.raw)
    }

    /// Whether any buffer or (de)compressor state holds memory worth giving back.
    pub fn holds_buffers(&self) -> bool {
        self.raw.capacity() + self.plain.capacity() + self.pending.capacity() + self.out.capacity()
            > 0
    }

    /// Gives back the empty buffers and the (de)compressor states of an idle
    /// connection; they are made again when the next command comes.
    pub fn release_buffers(&mut self) {
        let bufs = [
            &mut self.raw,
            &mut self.plain,
            &mut self.pending,
            &mut self.out,
        ];
        let idle = bufs.iter().all(|b| b.is_empty());
        for buf in bufs {
            if buf.is_empty() {
                *buf = BytesMut::new();
            }
        }
        if idle {
            self.codec.release();
        }
    }

    /// Moves `whole` past what is now whole at the front of `pending` (the rest of a
    /// packet sent in parts, then whole MySQL packets), as far as one compressed
    /// packet holds.
    fn count_whole(&mut self) {
        if self.whole == 0 && self.tail > 0 {
            if self.pending.len() < self.tail {
                return;
            }
            self.whole = std::mem::take(&mut self.tail);
        }
        while let Some((len, _)) = self.pending.get(self.whole..).and_then(chunk_header) {
            let end = self.whole + HEADER_LEN + len;
            if end > self.pending.len() || end > MAX_LEN {
                break;
            }
            self.whole = end;
        }
    }

    /// Compresses what is whole at the front of `pending` into one compressed packet;
    /// with `all`, or when the start of a packet too big to wait whole fills the room,
    /// that goes too. Whether a packet was made.
    fn compress_pending(&mut self, all: bool) -> io::Result<bool> {
        self.count_whole();
        let take = if self.whole > 0 {
            self.whole
        } else if all || self.pending.len() >= MAX_LEN {
            self.pending.len().min(MAX_LEN)
        } else {
            0
        };
        if take == 0 {
            return Ok(false);
        }
        if self.whole == 0 {
            // Part of a packet goes ahead of its end: note how much of it is to come.
            let packet = match (self.tail, chunk_header(&self.pending)) {
                (0, Some((len, _))) => HEADER_LEN + len,
                (0, None) => take,
                (tail, _) => tail,
            };
            self.tail = packet.saturating_sub(take);
        }
        self.whole = 0;
        self.codec
            .encode(self.seq, &self.pending[..take], &mut self.out)?;
        self.pending.advance(take);
        self.seq = self.seq.wrapping_add(1);
        Ok(true)
    }
}

impl<S: AsyncWrite + Unpin> Compressed<S> {
    /// Sends the waiting compressed packet.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Compressed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.plain.is_empty() {
                let n = buf.remaining().min(this.plain.len());
                buf.put_slice(&this.plain[..n]);
                this.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            match this.codec.decode(&mut this.raw, &mut this.plain) {
                Ok(Some(seq)) => {
                    this.seq = seq.wrapping_add(1);
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
            }
            this.raw.reserve(READ_ROOM);
            if ready!(poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.raw))? == 0 {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a compressed packet",
                )));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Compressed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            ready!(this.poll_send(cx))?;
            if this.pending.len() < MAX_LEN {
                break;
            }
            this.compress_pending(true)?;
        }
        let n = data.len().min(MAX_LEN - this.pending.len());
        this.pending.extend_from_slice(&data[..n]);
        // Sent at once when the stream takes it; otherwise by the next write or flush.
        if this.compress_pending(false)? {
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Sends every whole packet written; the start of one not yet whole waits for the
    /// rest (the client can do nothing with it meanwhile).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_send(cx))?;
            if !this.compress_pending(false)? {
                break;
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_send(cx))?;
            if !this.compress_pending(true)? {
                break;
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compress::{Header, HEADER_LEN};
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    const ZSTD: Algorithm = Algorithm::Zstd { level: 3 };

    /// A compressed proxy end and the raw client end of one pipe.
    fn pipe(algorithm: Algorithm) -> (Compressed<DuplexStream>, DuplexStream) {
        let (a, b) = duplex(1 << 20);
        (Compressed::new(a, algorithm, BytesMut::new()), b)
    }

    /// A MySQL packet of `len` payload bytes (a pattern that compresses).
    fn mysql_packet(seq: u8, len: usize) -> Vec<u8> {
        let mut p = (len as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend((0..len).map(|i| (i % 251) as u8));
        p
    }

    fn packet(algorithm: Algorithm, seq: u8, data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        Codec::new(algorithm).encode(seq, data, &mut out).unwrap();
        out
    }

    /// Reads compressed packets from `raw` until `len` bytes of content came;
    /// returns the content and the sequence ids seen.
    async fn read_content(
        raw: &mut DuplexStream,
        algorithm: Algorithm,
        len: usize,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut wire = BytesMut::new();
        let mut content = BytesMut::new();
        let mut seqs = Vec::new();
        let mut codec = Codec::new(algorithm);
        while content.len() < len {
            match codec.decode(&mut wire, &mut content).unwrap() {
                Some(seq) => seqs.push(seq),
                None => {
                    assert!(raw.read_buf(&mut wire).await.unwrap() > 0, "closed early");
                }
            }
        }
        (content.to_vec(), seqs)
    }

    #[tokio::test]
    async fn answers_continue_from_the_clients_sequence_id() {
        for algorithm in [Algorithm::Zlib, ZSTD] {
            let (mut proxy, mut client) = pipe(algorithm);
            // A command in one packet, compressed seq 0.
            client
                .write_all(&packet(algorithm, 0, b"\x06\x00\x00\x00\x03SEL 1"))
                .await
                .unwrap();
            let mut cmd = [0u8; 10];
            proxy.read_exact(&mut cmd).await.unwrap();
            assert_eq!(&cmd, b"\x06\x00\x00\x00\x03SEL 1");
            let (first, second) = (mysql_packet(1, 1000), mysql_packet(2, 2000));
            proxy.write_all(&first).await.unwrap();
            proxy.write_all(&second).await.unwrap();
            proxy.flush().await.unwrap();
            let (got, seqs) = read_content(&mut client, algorithm, 3008).await;
            assert_eq!((got, seqs), ([first, second].concat(), vec![1, 2]));
            // The next command restarts at 0; a transfer the client continues (as
            // after a LOCAL INFILE request) is answered after its last id.
            client
                .write_all(&packet(algorithm, 0, b"\x01\x00\x00\x00\x0e"))
                .await
                .unwrap();
            client
                .write_all(&packet(algorithm, 7, &[b'f'; 200]))
                .await
                .unwrap();
            let mut rest = vec![0u8; 205];
            proxy.read_exact(&mut rest).await.unwrap();
            proxy
                .write_all(b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00")
                .await
                .unwrap();
            proxy.flush().await.unwrap();
            let (_, seqs) = read_content(&mut client, algorithm, 11).await;
            assert_eq!(seqs, [8]);
        }
    }

    #[tokio::test]
    async fn content_split_across_packets_reads_as_one_stream() {
        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        let mut wire = BytesMut::new();
        let mut codec = Codec::new(Algorithm::Zlib);
        for (i, part) in data.chunks(3001).enumerate() {
            codec.encode(i as u8, part, &mut wire).unwrap();
        }
        // Written byte by byte, so every packet arrives in pieces.
        for b in wire.iter() {
            client.write_all(&[*b]).await.unwrap();
        }
        let mut got = vec![0u8; data.len()];
        proxy.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
        assert!(!proxy.buffered());
    }

    #[tokio::test]
    async fn a_packet_over_16_mib_is_sent_in_parts() {
        let (mut proxy, mut client) = pipe(ZSTD);
        // A full 0xFFFFFF chunk and the empty one that ends the packet.
        let data = [mysql_packet(0, MAX_LEN), mysql_packet(1, 0)].concat();
        let len = data.len();
        let reader = tokio::spawn(async move {
            let got = read_content(&mut client, ZSTD, len).await;
            (got, client)
        });
        for part in data.chunks(1 << 20) {
            proxy.write_all(part).await.unwrap();
            proxy.flush().await.unwrap();
        }
        let ((got, seqs), _client) = reader.await.unwrap();
        assert_eq!(seqs, [0, 1]);
        assert!(got == data);
    }

    #[tokio::test]
    async fn compressed_packets_end_where_mysql_packets_end() {
        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        // Two small packets and the start of a 2 MiB row, then the row in 64 KiB
        // writes, each flushed, as the relay passes a big result on.
        let row = mysql_packet(3, 2 << 20);
        let small = [mysql_packet(1, 10), mysql_packet(2, 20)].concat();
        proxy
            .write_all(&[&small[..], &row[..100]].concat())
            .await
            .unwrap();
        proxy.flush().await.unwrap();
        for part in row[100..].chunks(64 << 10) {
            proxy.write_all(part).await.unwrap();
            proxy.flush().await.unwrap();
        }
        let eof = mysql_packet(4, 7);
        proxy.write_all(&eof).await.unwrap();
        proxy.flush().await.unwrap();
        let total = small.len() + row.len() + eof.len();
        let (got, seqs) = read_content(&mut client, Algorithm::Zlib, total).await;
        assert_eq!(seqs, [0, 1, 2], "the small packets, the row, the end");
        assert!(got == [small, row, eof].concat());
    }

    #[tokio::test]
    async fn buffered_counts_inflated_and_whole_packets() {
        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        assert!(!proxy.buffered());
        let mut two = packet(Algorithm::Zlib, 0, &[1; 100]);
        two.extend_from_slice(&packet(Algorithm::Zlib, 1, &[2; 100]));
        client.write_all(&two).await.unwrap();
        let mut first = [0u8; 60];
        proxy.read_exact(&mut first).await.unwrap();
        // 40 bytes inflated and waiting, then a whole packet not yet inflated.
        assert!(proxy.buffered());
        let mut rest = [0u8; 140];
        proxy.read_exact(&mut rest).await.unwrap();
        assert!(!proxy.buffered());
        // Half a header is not a packet.
        client.write_all(&[5, 0, 0]).await.unwrap();
        let mut none = [0u8; 1];
        let timed =
            tokio::time::timeout(std::time::Duration::from_millis(50), proxy.read(&mut none)).await;
        assert!(timed.is_err());
        assert!(!proxy.buffered());
    }

    #[tokio::test]
    async fn release_frees_idle_buffers_and_keeps_working() {
        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        client
            .write_all(&packet(Algorithm::Zlib, 0, &[3; 500]))
            .await
            .unwrap();
        let mut got = [0u8; 500];
        proxy.read_exact(&mut got).await.unwrap();
        proxy.write_all(&mysql_packet(1, 496)).await.unwrap();
        proxy.flush().await.unwrap();
        assert!(proxy.holds_buffers());
        proxy.release_buffers();
        assert!(!proxy.holds_buffers());
        client
            .write_all(&packet(Algorithm::Zlib, 0, &[5; 500]))
            .await
            .unwrap();
        proxy.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [5; 500]);
        proxy.write_all(&mysql_packet(1, 496)).await.unwrap();
        proxy.flush().await.unwrap();
        let (content, seqs) = read_content(&mut client, Algorithm::Zlib, 1000).await;
        assert_eq!(seqs, [1, 1]);
        assert_eq!(&content[500..], &mysql_packet(1, 496)[..]);
    }

    #[tokio::test]
    async fn corrupt_or_cut_packets_are_errors() {
        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        let mut bad = packet(Algorithm::Zlib, 0, &[1; 500]);
        let h = Header::parse(&bad).unwrap();
        bad[HEADER_LEN + h.body_len / 2] ^= 0xFF;
        client.write_all(&bad).await.unwrap();
        let mut buf = [0u8; 500];
        let err = proxy.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let (mut proxy, mut client) = pipe(Algorithm::Zlib);
        let cut = packet(Algorithm::Zlib, 0, &[1; 500]);
        client.write_all(&cut[..cut.len() - 1]).await.unwrap();
        drop(client);
        let err = proxy.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
