//! [`ClientLeg`]: a logged-in client's stream, as it came (TCP or TLS) or speaking
//! the compressed protocol. The plain variant forwards every call to the stream
//! untouched, so sessions without compression pay one branch and no copy.
//! Bytes read and written are counted here, once per call, as the client's protocol
//! sees them (uncompressed, inside TLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::protocol::compress::Algorithm;
use crate::proxy::compressed::Compressed;
use crate::proxy::stream::ClientStream;
use crate::telemetry::hot;

/// The client's stream after the connection phase.
pub enum ClientLeg {
    Plain(ClientStream),
    Compressed(Box<Compressed<ClientStream>>),
}

impl ClientLeg {
    /// The leg for `stream`, compressed with `compression` from here on; `read` (bytes
    /// read past the final OK) is given back for the session's buffer, or kept by the
    /// compressed stream, whose framing it is in.
    pub fn new(
        stream: ClientStream,
        compression: Option<Algorithm>,
        read: BytesMut,
    ) -> (ClientLeg, BytesMut) {
        match compression {
            None => (ClientLeg::Plain(stream), read),
            Some(algorithm) => (
                ClientLeg::Compressed(Box::new(Compressed::new(stream, algorithm, read))),
                BytesMut::new(),
            ),
        }
    }

    pub fn compression(&self) -> Option<Algorithm> {
        match self {
            ClientLeg::Plain(_) => None,
            ClientLeg::Compressed(c) => Some(c.algorithm()),
        }
    }

    /// Resolves when a read would find bytes (or the end), reading nothing: content
    /// already inflated, or a whole compressed packet already read, counts.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| match self {
            ClientLeg::Plain(s) => s.poll_readable(cx),
            ClientLeg::Compressed(c) if c.buffered() => Poll::Ready(Ok(())),
            ClientLeg::Compressed(c) => c.get_ref().poll_readable(cx),
        })
        .await
    }

    /// Whether the compressed stream holds buffers or (de)compressor state.
    pub fn holds_buffers(&self) -> bool {
        matches!(self, ClientLeg::Compressed(c) if c.holds_buffers())
    }

    /// Gives back what an idle compressed stream holds.
    pub fn release_buffers(&mut self) {
        if let ClientLeg::Compressed(c) = self {
            c.release_buffers();
        }
    }
}

/// Counts the bytes a write call took (per call, not per packet).
fn counted(poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
    if let Poll::Ready(Ok(n)) = poll {
        hot::sent(n);
    }
    poll
}

/// `$body` with `$s` bound to whichever stream the leg holds (both are
/// `AsyncRead + AsyncWrite + Unpin`, a boxed one too).
macro_rules! each {
    ($leg:expr, $s:ident => $body:expr) => {
        match $leg {
            ClientLeg::Plain($s) => $body,
            ClientLeg::Compressed($s) => $body,
        }
    };
}

impl AsyncRead for ClientLeg {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = poll {
            hot::received(buf.filled().len().saturating_sub(before));
        }
        poll
    }
}

impl AsyncWrite for ClientLeg {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        counted(each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf)))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        counted(each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs)))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}
