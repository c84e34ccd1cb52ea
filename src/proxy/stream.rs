//! The byte streams of a session's two legs: plain TCP, or TLS over TCP (rustls).
//! Both read and write like any tokio stream; what the session needs beyond that —
//! waiting for bytes without reading them, reading without waiting — is answered by
//! looking at TLS's own buffer before the socket.
//!
//! Writes through a TLS stream may stay in its buffer until `flush`, so every writer
//! of these streams flushes after a logical write (a no-op on plain TCP).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A client's connection to the proxy.
pub enum ClientStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A session's connection to a server.
pub enum ServerStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }
}

impl ServerStream {
    /// Reads what is there without waiting: `Ok(None)` when nothing was (TLS records
    /// that carry no data count as nothing), `Ok(Some(0))` at the end.
    pub fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        let result = match self {
            ServerStream::Tcp(s) => s.try_read_buf(buf),
            ServerStream::Tls(s) => match s.read_buf(buf).now_or_never() {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        match result {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // Closed without close_notify: closed (see `poll_read`).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }
}

/// Forwards the stream methods to whichever variant is there, and adds `readable`.
macro_rules! either_stream {
    ($ty:ident) => {
        impl $ty {
            /// Resolves when a read would find bytes (or the end), reading nothing:
            /// data TLS already decrypted counts, records still on the socket do.
            pub async fn readable(&self) -> io::Result<()> {
                std::future::poll_fn(|cx| self.poll_readable(cx)).await
            }

            /// [`Self::readable`] as a poll. It waits in the socket's one reader
            /// slot, which the session's reads use too (one task reads and waits),
            /// instead of `TcpStream::readable`'s list of waiters: that list costs a
            /// lock to join and another to leave on every wait, and the wait for the
            /// next command that the server branch never wins ends by leaving it.
            pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self {
                    $ty::Tcp(s) => s.poll_read_ready(cx),
                    $ty::Tls(s) => {
                        let (tcp, tls) = s.get_ref();
                        if tls.wants_read() {
                            tcp.poll_read_ready(cx)
                        } else {
                            Poll::Ready(Ok(()))
                        }
                    }
                }
            }
        }

        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    // A peer that closes without TLS's close_notify has closed all the
                    // same: the protocol's own framing tells a cut packet from a close.
                    $ty::Tls(s) => match Pin::new(s.as_mut()).poll_read(cx, buf) {
                        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            Poll::Ready(Ok(()))
                        }
                        other => other,
                    },
                }
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    $ty::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    $ty::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $ty::Tcp(s) => s.is_write_vectored(),
                    $ty::Tls(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_flush(cx),
                    $ty::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    $ty::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
                }
            }
        }
    };
}

either_stream!(ClientStream);
either_stream!(ServerStream);
