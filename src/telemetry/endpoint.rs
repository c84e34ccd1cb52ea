//! The HTTP endpoint on `[proxy] metrics_listen`, read-only:
//!
//! - `GET /metrics` — every metric in the Prometheus text format
//!   (`text/plain; version=0.0.4`);
//! - `GET /livez` — 200 `ok` while the process serves;
//! - `GET /readyz` — 200 `ready`, or 503 with the one-line reason the proxy is not
//!   ready ([`super::readiness`]);
//! - any other path 404, any other method 405.
//!
//! One request per connection (`Connection: close`). The request head is bounded
//! ([`MAX_HEAD`]) and must arrive within [`HEAD_TIMEOUT`]; at most [`MAX_CONNECTIONS`]
//! requests are served at once, the others wait. A bad request costs its own task
//! only: it never touches a session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The longest request head read.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// What a request head asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without a query string.
    pub path: &'a str,
}

/// Why a request head is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed request line")]
    Malformed,
}

/// Where the head in `buf` ends (after its blank line), if it is whole.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
}

/// Parses the request line of a whole head.
pub fn parse_head(head: &[u8]) -> Result<Request<'_>, HeadError> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(HeadError::Malformed)?;
    let line = std::str::from_utf8(head.get(..line_end).ok_or(HeadError::Malformed)?)
        .map_err(|_| HeadError::Malformed)?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Request { method, path })
}

/// An answer: status line, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

fn text(status: &'static str, body: impl Into<String>) -> Response {
    Response {
        status,
        content_type: TEXT,
        body: body.into(),
    }
}

/// The answer to `request`; `metrics` renders the exposition when it is asked for.
pub fn route(request: &Request<'_>, metrics: impl FnOnce() -> Option<String>) -> Response {
    if request.method != "GET" {
        return text("405 Method Not Allowed", "only GET\n");
    }
    match request.path {
        "/metrics" => match metrics() {
            Some(body) => Response {
                status: "200 OK",
                content_type: EXPOSITION,
                body,
            },
            None => text("500 Internal Server Error", "no metrics recorder\n"),
        },
        "/livez" => text("200 OK", "ok\n"),
        "/readyz" => match super::readiness() {
            Ok(()) => text("200 OK", "ready\n"),
            Err(why) => text("503 Service Unavailable", format!("{why}\n")),
        },
        _ => text("404 Not Found", "not found\n"),
    }
}

/// Binds `address` and serves the endpoint in the background; returns the bound
/// address. Installs the metrics recorder first.
pub async fn start(address: Option<&str>) -> std::io::Result<Option<SocketAddr>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    if super::recorder::install().is_none() {
        return Err(std::io::Error::other(
            "the metrics recorder could not be installed",
        ));
    }
    tracing::info!("metrics on http://{bound}/metrics");
    tokio::spawn(serve(listener));
    Ok(Some(bound))
}

async fn serve(listener: TcpListener) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    answer(stream).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head (bounded, timed out) and answers it.
async fn answer(mut stream: TcpStream) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(ReadError::Head(e))) => {
            let status = match e {
                HeadError::TooLarge => "431 Request Header Fields Too Large",
                HeadError::Malformed => "400 Bad Request",
            };
            write(&mut stream, &text(status, format!("{e}\n"))).await;
            drain(&mut stream).await;
            return;
        }
        Ok(Err(ReadError::Io)) | Err(_) => return,
    };
    let response = match parse_head(&head) {
        Ok(request) => route(&request, super::recorder::render),
        Err(e) => text("400 Bad Request", format!("{e}\n")),
    };
    write(&mut stream, &response).await;
}

enum ReadError {
    Head(HeadError),
    Io,
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() >= MAX_HEAD {
            return Err(ReadError::Head(HeadError::TooLarge));
        }
        let n = stream.read(&mut chunk).await.map_err(|_| ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// After refusing a head that was not read whole: reads (a bounded amount, for a
/// bounded time) what the client still sends, so that closing with unread bytes does
/// not reset the connection before the client has read the answer.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        for _ in 0..16 {
            if !matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {
                return;
            }
        }
    })
    .await;
}

async fn write(stream: &mut TcpStream, response: &Response) {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        if response.status.starts_with("405") {
            "Allow: GET\r\n"
        } else {
            ""
        },
    );
    if stream.write_all(head.as_bytes()).await.is_ok()
        && stream.write_all(response.body.as_bytes()).await.is_ok()
    {
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
    }

    #[test]
    fn request_lines_parse_or_are_refused() {
        assert_eq!(
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(Request {
                method: "GET",
                path: "/metrics"
            })
        );
        assert_eq!(
            parse_head(b"POST /readyz HTTP/1.0\n\n").map(|r| r.method),
            Ok("POST")
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n\r\n",
            b"no newline",
        ] {
            assert_eq!(parse_head(bad), Err(HeadError::Malformed), "{bad:?}");
        }
    }

    fn get(path: &str) -> Request<'_> {
        Request {
            method: "GET",
            path,
        }
    }

    #[test]
    fn routes_answer_by_path_and_method() {
        let none = || -> Option<String> { panic!("not rendered") };
        assert_eq!(route(&get("/livez"), none), text("200 OK", "ok\n"));
        assert_eq!(route(&get("/nope"), none).status, "404 Not Found");
        let post = Request {
            method: "POST",
            path: "/metrics",
        };
        assert_eq!(route(&post, none).status, "405 Method Not Allowed");
        let metrics = route(&get("/metrics"), || Some("m 1\n".into()));
        assert_eq!(metrics.status, "200 OK");
        assert_eq!(metrics.content_type, EXPOSITION);
        assert_eq!(metrics.body, "m 1\n");
        let ready = route(&get("/readyz"), none);
        match super::super::readiness() {
            Ok(()) => assert_eq!(ready, text("200 OK", "ready\n")),
            Err(why) => assert_eq!(ready, text("503 Service Unavailable", format!("{why}\n"))),
        }
    }
}
