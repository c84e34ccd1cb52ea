//! Traces of switchovers: a [`TraceRecord`] (a root span and its children, each with
//! real start and end times and attributes) is logged through `tracing`, and, when an
//! OTLP endpoint is set, exported by OTLP/HTTP (protobuf) after the switchover ended.
//!
//! The export runs on tokio's blocking pool with the exporter's simple processor and
//! [`PlainHttp`], a small HTTP/1.1 client over a std `TcpStream` (`http://` only): it
//! never runs on a session thread, nor while the gate is closed, and the spans are
//! flushed before the task ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:.3}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One span: what happened between `start` and `end`.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(String, Value)>,
    /// The span failed: its status is an error with this message.
    pub error: Option<String>,
}

impl SpanRecord {
    /// `key=value key=value …`, for the log line.
    fn fields(&self) -> String {
        self.attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One trace: the root span and its children, in order.
#[derive(Debug, Clone)]
pub struct TraceRecord {
    pub root: SpanRecord,
    pub children: Vec<SpanRecord>,
}

/// Where traces go: `endpoint` is the OTLP/HTTP base URL (`/v1/traces` is added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub endpoint: Option<String>,
    pub service_name: String,
}

/// Logs `trace` (one line per span) and, with an endpoint, exports it off the
/// runtime's workers. The returned task ends once the spans are flushed.
pub fn emit(export: Export, trace: TraceRecord) -> tokio::task::JoinHandle<()> {
    for span in std::iter::once(&trace.root).chain(&trace.children) {
        let ms = span
            .end
            .duration_since(span.start)
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0;
        let start = span
            .start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        tracing::info!(
            target: "switchyard::trace",
            span = %span.name,
            start_unix_ms = start,
            duration_ms = ms,
            error = span.error.as_deref().unwrap_or(""),
            "{}",
            span.fields()
        );
    }
    tokio::task::spawn_blocking(move || {
        let Some(endpoint) = export.endpoint.clone() else {
            return;
        };
        if let Err(e) = export_blocking(&endpoint, &export.service_name, &trace) {
            tracing::warn!("exporting the switchover trace to {endpoint}: {e}");
        }
    })
}

/// The exporter, built once per endpoint and service name.
static PROVIDER: Mutex<Option<(String, String, SdkTracerProvider)>> = Mutex::new(None);

fn provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, String> {
    let mut slot = PROVIDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((e, s, p)) = slot.as_ref() {
        if e == endpoint && s == service {
            return Ok(p.clone());
        }
    }
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(PlainHttp {
            timeout: EXPORT_TIMEOUT,
        })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    *slot = Some((endpoint.into(), service.into(), provider.clone()));
    Ok(provider)
}

/// Bound on one export (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

fn export_blocking(endpoint: &str, service: &str, trace: &TraceRecord) -> Result<(), String> {
    let provider = provider(endpoint, service)?;
    let tracer = provider.tracer("switchyard");
    let mut root = start(&tracer, &trace.root, &Context::new());
    let parent = Context::new().with_remote_span_context(root.span_context().clone());
    for child in &trace.children {
        let mut span = start(&tracer, child, &parent);
        finish(&mut span, child);
    }
    finish(&mut root, &trace.root);
    provider.force_flush().map_err(|e| e.to_string())
}

fn start(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    record: &SpanRecord,
    parent: &Context,
) -> opentelemetry_sdk::trace::Span {
    tracer
        .span_builder(record.name.clone())
        .with_kind(SpanKind::Internal)
        .with_start_time(record.start)
        .with_attributes(record.attributes.iter().map(|(k, v)| key_value(k, v)))
        .start_with_context(tracer, parent)
}

fn finish(span: &mut opentelemetry_sdk::trace::Span, record: &SpanRecord) {
    match &record.error {
        Some(why) => span.set_status(Status::error(why.clone())),
        None => span.set_status(Status::Ok),
    }
    span.end_with_timestamp(record.end);
}

fn key_value(key: &str, value: &Value) -> KeyValue {
    let key = key.to_string();
    match value {
        Value::Str(s) => KeyValue::new(key, s.clone()),
        Value::Int(i) => KeyValue::new(key, *i),
        Value::Float(x) => KeyValue::new(key, *x),
        Value::Bool(b) => KeyValue::new(key, *b),
    }
}

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("only http:// endpoints are supported, not {0}")]
    Scheme(String),
    #[error("the URL {0} has no host")]
    NoHost(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("the collector's answer is not HTTP: {0:?}")]
    BadAnswer(String),
}

/// A small HTTP/1.1 client: one connection per request, `Connection: close`.
#[derive(Debug, Clone)]
pub struct PlainHttp {
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl HttpClient for PlainHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // Blocking I/O: the exporter runs it on the blocking pool (see `emit`). The
        // exporter's processor drops its errors silently, so they are logged here.
        let uri = request.uri().to_string();
        match post(&request, self.timeout) {
            Ok(answer) => {
                if !answer.status().is_success() {
                    tracing::warn!(
                        "OTLP export to {uri}: the collector answered {}",
                        answer.status()
                    );
                }
                Ok(answer)
            }
            Err(e) => {
                tracing::warn!("OTLP export to {uri}: {e}");
                Err(HttpError::from(e))
            }
        }
    }
}

/// Largest answer read from a collector.
const MAX_ANSWER: u64 = 1 << 20;

/// Sends `request` and reads the whole answer.
pub fn post(request: &Request<Bytes>, timeout: Duration) -> Result<Response<Bytes>, PostError> {
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(PostError::Scheme(uri.to_string()));
    }
    let host = uri
        .host()
        .ok_or_else(|| PostError::NoHost(uri.to_string()))?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let address = format!("{host}:{port}");
    let io = |e| PostError::Io(address.clone(), e);
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        request.method(),
        request.body().len()
    );
    for (name, value) in request.headers() {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .map_err(io)?
        .next()
        .ok_or_else(|| PostError::NoHost(uri.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(request.body()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    parse_answer(&answer)
}

/// The status and body of an HTTP/1.1 answer read to its end.
fn parse_answer(answer: &[u8]) -> Result<Response<Bytes>, PostError> {
    let bad = || PostError::BadAnswer(String::from_utf8_lossy(answer).chars().take(80).collect());
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(answer.get(..end).ok_or_else(bad)?).map_err(|_| bad())?;
    let status_line = head.lines().next().ok_or_else(bad)?;
    let mut words = status_line.split_whitespace();
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad());
    }
    let code: u16 = words.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
    let body = answer.get(end + 4..).unwrap_or_default();
    Response::builder()
        .status(code)
        .body(Bytes::copy_from_slice(body))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_garbage_refused() {
        let r = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.body().as_ref(), b"ok");
        let r = parse_answer(b"HTTP/1.0 503 Busy\r\n\r\n").unwrap();
        assert_eq!(r.status(), 503);
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK",
            b"SMTP 220\r\n\r\n",
            b"HTTP/1.1 x\r\n\r\n",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_http() {
        let request = Request::post("https://127.0.0.1:4318/v1/traces")
            .body(Bytes::new())
            .unwrap();
        let e = post(&request, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, PostError::Scheme(_)), "{e}");
    }

    #[test]
    fn posts_to_a_real_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"hello") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let request = Request::post(format!("http://127.0.0.1:{port}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(Bytes::from_static(b"hello"))
            .unwrap();
        let answer = post(&request, Duration::from_secs(5)).unwrap();
        assert_eq!(answer.status(), 200);
        let sent = server.join().unwrap();
        assert!(sent.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("content-length: 5") || sent.contains("Content-Length: 5"));
        assert!(sent.contains("content-type: application/x-protobuf"));
    }
}
