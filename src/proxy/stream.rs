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
    /// Resolves when a read would find bytes (or the end), reading nothing.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.readable().await,
            ClientStream::Tls(s) => {
                let (tcp, tls) = s.get_ref();
                if tls.wants_read() {
                    tcp.readable().await
                } else {
                    Ok(())
                }
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }
}

impl ServerStream {
    /// Resolves when a read would find bytes (or the end), reading nothing.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ServerStream::Tcp(s) => s.readable().await,
            ServerStream::Tls(s) => {
                let (tcp, tls) = s.get_ref();
                if tls.wants_read() {
                    tcp.readable().await
                } else {
                    Ok(())
                }
            }
        }
    }

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
            Err(e) => Err(e),
        }
    }
}

/// Forwards the four stream methods to whichever variant is there.
macro_rules! either_stream {
    ($ty:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    $ty::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
