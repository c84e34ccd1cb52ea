//! [`Compressed`]: the compressed protocol over any byte stream, as the client leg
//! speaks it once the connection phase is over. Reads give the inflated plain stream;
//! each write becomes one compressed packet (at most 16 MiB of content; bigger writes
//! are taken in parts), sent by `poll_flush` if the stream did not take it at once.
//!
//! Sequence ids of compressed packets follow what servers do: the client starts each
//! command at 0, and every packet the proxy writes continues from the last one it
//! read (a LOCAL INFILE transfer or an authentication exchange goes on counting).
//!
//! Invariant: at most one compressed packet waits to be written, and content is only
//! inflated once the previous packet's content has been read, so each buffer stays
//! within one packet (16 MiB).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

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
        self.raw.capacity() + self.plain.capacity() + self.out.capacity() > 0
    }

    /// Gives back the empty buffers and the (de)compressor states of an idle
    /// connection; they are made again when the next command comes.
    pub fn release_buffers(&mut self) {
        for buf in [&mut self.raw, &mut self.plain, &mut self.out] {
            if buf.is_empty() {
                *buf = BytesMut::new();
            }
        }
        if self.raw.is_empty() && self.plain.is_empty() && self.out.is_empty() {
            self.codec.release();
        }
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
        ready!(this.poll_send(cx))?;
        let Some(part) = data
            .get(..data.len().min(MAX_LEN))
            .filter(|p| !p.is_empty())
        else {
            return Poll::Ready(Ok(0));
        };
        this.codec.encode(this.seq, part, &mut this.out)?;
        this.seq = this.seq.wrapping_add(1);
        // Sent at once when the stream takes it; otherwise by the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(part.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
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
            let answer = vec![b'r'; 3000];
            proxy.write_all(&answer[..1000]).await.unwrap();
            proxy.write_all(&answer[1000..]).await.unwrap();
            proxy.flush().await.unwrap();
            let (got, seqs) = read_content(&mut client, algorithm, 3000).await;
            assert_eq!((got, seqs), (answer, vec![1, 2]));
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
    async fn big_writes_are_split_under_16_mib() {
        let (mut proxy, mut client) = pipe(ZSTD);
        let data = vec![b'z'; MAX_LEN + 100];
        let reader = tokio::spawn(async move {
            let got = read_content(&mut client, ZSTD, MAX_LEN + 100).await;
            (got, client)
        });
        proxy.write_all(&data).await.unwrap();
        proxy.flush().await.unwrap();
        let ((got, seqs), _client) = reader.await.unwrap();
        assert_eq!(seqs, [0, 1]);
        assert!(got == data);
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
        proxy.write_all(&[4; 500]).await.unwrap();
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
        proxy.write_all(&[6; 500]).await.unwrap();
        proxy.flush().await.unwrap();
        let (content, seqs) = read_content(&mut client, Algorithm::Zlib, 1000).await;
        assert_eq!(seqs, [1, 1]);
        assert_eq!(&content[500..], &[6; 500]);
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
