//! OpenTelemetry export of switchovers: the real proxy binary sends its traces by
//! OTLP/HTTP to a receiver this test runs (a TCP listener answering 200 and recording
//! every `POST /v1/traces` body), and the bodies are decoded with the OTLP protobuf
//! types.
//!
//! Two switchovers against a real MariaDB pair: one rolled back (green's replication is
//! stopped and blue writes while the switchover is held at `fencing` by the failpoint,
//! so the catch-up cannot finish), then one that succeeds. Each is one trace: a root
//! span `switchover` and one span per phase, in order, with its real times and
//! attributes; the rolled-back one carries the reason and an error status on the
//! failing phase.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::load::sql;
use support::{pair, Proxy};

/// Bound on anything the test waits for (a hang guard, not a timing assertion).
const GUARD: Duration = Duration::from_secs(60);

/// What the receiver got: each request's path and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP receiver on a free loopback port.
async fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                if let Some(request) = read_request(conn).await {
                    store.lock().unwrap().push(request);
                }
            });
        }
    });
    (addr, received)
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body), answers 200, and
/// returns its path and body.
async fn read_request(mut conn: TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next()?.to_owned();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .ok()?;
    let mut words = request_line.split_whitespace();
    assert_eq!(words.next(), Some("POST"), "{request_line}");
    Some((words.next()?.to_owned(), body))
}

/// Every span received so far, with the service name of its resource.
fn spans(received: &Received) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for (path, body) in received.lock().unwrap().iter() {
        assert_eq!(path, "/v1/traces");
        let request = ExportTraceServiceRequest::decode(body.as_slice())
            .unwrap_or_else(|e| panic!("an OTLP body that does not decode: {e}"));
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                out.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }
    out
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// A span's attributes by key.
fn attributes(span: &Span) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn str_attr(span: &Span, key: &str) -> String {
    match attributes(span).get(key) {
        Some(Value::StringValue(s)) => s.clone(),
        other => panic!("{}: attribute {key} is {other:?}", span.name),
    }
}

fn status(span: &Span) -> StatusCode {
    let code = span.status.as_ref().map_or(0, |s| s.code);
    StatusCode::try_from(code).unwrap_or(StatusCode::Unset)
}

/// The root span of each trace received, in the order the switchovers started.
fn roots(all: &[(String, Span)]) -> Vec<Span> {
    let mut roots: Vec<Span> = all
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name == "switchover")
        .cloned()
        .collect();
    roots.sort_by_key(|s| s.start_time_unix_nano);
    roots
}

/// The spans of `root`'s trace other than the root, in order of start.
fn children(all: &[(String, Span)], root: &Span) -> Vec<Span> {
    let mut spans: Vec<Span> = all
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.trace_id == root.trace_id && s.span_id != root.span_id)
        .cloned()
        .collect();
    spans.sort_by_key(|s| s.start_time_unix_nano);
    for s in &spans {
        assert_eq!(
            s.parent_span_id, root.span_id,
            "{} is not the root's child",
            s.name
        );
        assert!(
            s.start_time_unix_nano >= root.start_time_unix_nano
                && s.end_time_unix_nano <= root.end_time_unix_nano
                && s.start_time_unix_nano <= s.end_time_unix_nano,
            "{} lies outside the switchover",
            s.name
        );
    }
    for pair in spans.windows(2) {
        assert!(
            pair[0].end_time_unix_nano <= pair[1].start_time_unix_nano,
            "{} and {} overlap",
            pair[0].name,
            pair[1].name
        );
    }
    spans
}

fn names(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Waits until `count` switchover traces have arrived.
async fn wait_for_traces(received: &Received, count: usize, proxy: &Proxy) -> Vec<(String, Span)> {
    let deadline = Instant::now() + GUARD;
    loop {
        let all = spans(received);
        if roots(&all).len() >= count {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{count} traces never arrived ({} spans so far); proxy log:\n{}",
            all.len(),
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `ctl status` until the switchover is in `phase`.
async fn wait_phase(proxy: &Proxy, phase: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        let (_, out) = proxy.ctl_async(&["status"]).await;
        if out.contains(&format!("phase: {phase}")) {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {phase}:\n{out}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn go(file: &Path) {
    std::fs::write(file, b"").expect("create the failpoint file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_switchover_is_one_trace_with_a_span_per_phase() {
    let (collector, received) = receiver().await;
    let pair = pair();
    sql(
        &pair.blue,
        "CREATE TABLE IF NOT EXISTS test.otlp (id INT PRIMARY KEY)",
    );
    pair.wait_green_caught_up(GUARD).expect("green caught up");
    let dir = tempfile::tempdir().expect("temp dir");
    let go_file = dir.path().join("go");
    let proxy = Proxy::builder(&pair)
        .toml(&format!(
            "[switchover]\ncatchup_timeout = \"1s\"\nmax_pause = \"8s\"\n\
             [telemetry]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"switchyard-otlp-test\"\n"
        ))
        .env(
            "SWITCHYARD_FAILPOINT",
            &format!("fencing:wait:{}", go_file.display()),
        )
        .start();

    // 1. Rolled back: at the fence, green stops replicating and blue takes one more
    //    write, so green cannot reach the fence position within catchup_timeout.
    let ctl = tokio::process::Command::from(proxy.ctl_command(&["--json", "switchover"])).output();
    let running = tokio::spawn(ctl);
    wait_phase(&proxy, "fencing").await;
    sql(&pair.green, "STOP SLAVE");
    sql(&pair.blue, "INSERT INTO test.otlp VALUES (1)");
    go(&go_file);
    let output = running.await.expect("ctl task").expect("ctl ran");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the switchover should roll back:\n{out}"
    );
    assert!(out.contains("rolled back in phase catching_up"), "{out}");
    sql(&pair.green, "START SLAVE");
    pair.wait_green_caught_up(GUARD)
        .expect("green caught up again");

    // 2. Succeeds (the failpoint file exists: no wait).
    let (ok, out) = proxy.ctl_async(&["--json", "switchover"]).await;
    assert!(ok, "switchover failed:\n{out}\n{}", proxy.log());
    let report = support::load::parse_report(&out);

    let all = wait_for_traces(&received, 2, &proxy).await;
    assert!(all
        .iter()
        .all(|(service, _)| service == "switchyard-otlp-test"));
    let roots = roots(&all);
    assert_eq!(roots.len(), 2, "one trace per switchover");
    assert_ne!(roots[0].trace_id, roots[1].trace_id);

    // The rolled-back one.
    let (root, spans) = (&roots[0], children(&all, &roots[0]));
    assert_eq!(
        names(&spans),
        "precheck → draining → fencing → catching_up → rolling_back"
    );
    assert_eq!(str_attr(root, "switchover.result"), "rolled_back");
    assert_eq!(str_attr(root, "switchover.direction"), "blue → green");
    assert_eq!(status(root), StatusCode::Error);
    let failing = &spans[3];
    assert_eq!(status(failing), StatusCode::Error, "catching_up");
    let reason = str_attr(failing, "switchover.rollback_reason");
    assert!(reason.contains("did not reach"), "{reason}");
    assert_eq!(str_attr(root, "switchover.rollback_reason"), reason);
    for s in &spans[..3] {
        assert_ne!(status(s), StatusCode::Error, "{}", s.name);
    }
    assert!(attributes(&spans[4]).contains_key("switchover.held_commands"));

    // The successful one.
    let (root, spans) = (&roots[1], children(&all, &roots[1]));
    assert_eq!(
        names(&spans),
        "precheck → draining → fencing → catching_up → promoting → retargeting → done"
    );
    assert_eq!(str_attr(root, "switchover.result"), "ok");
    assert_eq!(status(root), StatusCode::Ok);
    let precheck = attributes(&spans[0]);
    for guardrail in ["reachable", "standby_replicating", "no_errant_gtids"] {
        assert_eq!(
            precheck.get(&format!("guardrail.{guardrail}")),
            Some(&Value::BoolValue(true)),
            "{guardrail}: {precheck:?}"
        );
    }
    assert!(precheck.contains_key("switchover.preopened"));
    assert_eq!(str_attr(&spans[2], "gtid.fence"), report.fence_gtid);
    assert_eq!(
        str_attr(&spans[3], "gtid.standby_reached"),
        report.fence_gtid
    );
    let retargeting = attributes(&spans[5]);
    for key in [
        "switchover.sessions_moved",
        "switchover.held_commands",
        "switchover.max_hold_ms",
    ] {
        assert!(retargeting.contains_key(key), "{key}: {retargeting:?}");
    }
    // The phases' spans are the report's phases, durations and all.
    for ((name, ms), span) in report.phases.iter().zip(&spans) {
        assert_eq!(name, &span.name);
        let span_ms = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6;
        assert!((span_ms - ms).abs() < 0.01, "{name}: {span_ms} vs {ms}");
    }
    let total = (root.end_time_unix_nano - root.start_time_unix_nano) as f64 / 1e6;
    assert!(
        (total - report.total_ms).abs() < 0.01,
        "{total} vs {}",
        report.total_ms
    );
}
