//! The metrics endpoint of a proxy in front of a real MariaDB pair: real clients
//! (`mysql_async` and the `mariadb` CLI) run queries, prepare and execute, wait at a
//! paused gate and fail a login, then the proxy switches over to green; `/metrics`
//! must show each of those, `/livez` answers, `/readyz` follows the primary's `read_only`, bad HTTP requests are
//! refused without harm, and the exposition also parses with Python's
//! `prometheus_client`.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::load::sql;
use support::{mariadb_cli, python, Proxy};
use switchyard::testbed::{free_port, APP_PASSWORD, APP_USER};

/// How long a state the test waits for may take to show (a guard, not a timing).
const GUARD: Duration = Duration::from_secs(20);
const MAX_CONNECTIONS: u32 = 77;

/// One HTTP/1.1 request to `addr`, answered with status, headers (lower-cased
/// names) and body.
fn http(addr: &str, request: &[u8]) -> (u16, HashMap<String, String>, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("read the answer to {request:?}: {e}"));
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {answer:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn get(addr: &str, path: &str) -> (u16, HashMap<String, String>, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

/// A scrape: every sample by `name{labels}` as rendered.
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn take(addr: &str) -> Scrape {
        let (status, headers, text) = get(addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(series, value)| {
                let value = value
                    .parse()
                    .unwrap_or_else(|_| panic!("value of {series}: {value}"));
                (series.to_owned(), value)
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of `series`; the series must be there.
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.text))
    }
}

/// Waits until a scrape shows `series` at `value`.
fn wait_for(addr: &str, series: &str, value: f64) -> Scrape {
    let deadline = Instant::now() + GUARD;
    loop {
        let scrape = Scrape::take(addr);
        if scrape.samples.get(series) == Some(&value) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {value}:\n{}",
            scrape.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn app(addr: &str) -> Conn {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().unwrap())
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("test"))
        .prefer_socket(false);
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_real_clients_did() {
    let pair = support::pair();
    let metrics = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::builder(&pair)
        .proxy_key("metrics_listen", &format!("\"{metrics}\""))
        .proxy_key("max_client_connections", &MAX_CONNECTIONS.to_string())
        .start();
    let before = Scrape::take(&metrics);
    assert_eq!(
        before.get("switchyard_client_connections_max"),
        f64::from(MAX_CONNECTIONS)
    );
    for series in [
        "switchyard_client_connections{state=\"held\"}",
        "switchyard_client_connections_refused_total{reason=\"access_denied\"}",
        "switchyard_held_commands_total",
        "switchyard_hold_duration_seconds_count",
        "switchyard_pinned_sessions{reason=\"get_lock\"}",
    ] {
        assert_eq!(before.get(series), 0.0, "{series}");
    }
    assert_eq!(
        before.get(&format!(
            "switchyard_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    // 1. mysql_async: three queries, one prepare, two executions, a pinned session.
    let mut conn = app(&proxy.addr).await;
    for _ in 0..3 {
        let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
    let stmt = conn.prep("SELECT ? + 1").await.unwrap();
    for i in 0..2i64 {
        let got: Option<i64> = conn.exec_first(&stmt, (i,)).await.unwrap();
        assert_eq!(got, Some(i + 1));
    }
    let mut pinned = app(&proxy.addr).await;
    pinned
        .query_drop("SELECT GET_LOCK('metrics', 10)")
        .await
        .unwrap();
    let during = wait_for(
        &metrics,
        "switchyard_pinned_sessions{reason=\"get_lock\"}",
        1.0,
    );
    assert_eq!(
        during.get("switchyard_client_connections{state=\"pinned\"}"),
        1.0
    );
    assert!(during.get("switchyard_client_connections{state=\"idle\"}") >= 1.0);

    // 2. The mariadb CLI: a good session, then a refused login.
    let out = mariadb_cli(
        &proxy.addr,
        APP_USER,
        APP_PASSWORD,
        Some("test"),
        &["-N", "-e", "SELECT 40 + 2"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let out = mariadb_cli(
        &proxy.addr,
        APP_USER,
        "wrong",
        None,
        &["-e", "SELECT 1"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Access denied"),
        "{out:?}"
    );

    // 3. A command held at the paused gate.
    let (ok, out) = proxy.ctl_async(&["pause"]).await;
    assert!(ok, "pause: {out}");
    let held = tokio::spawn(async move {
        let n: Option<i64> = conn.query_first("SELECT 7").await.unwrap();
        (conn, n)
    });
    let paused = tokio::task::spawn_blocking({
        let metrics = metrics.clone();
        move || {
            wait_for(
                &metrics,
                "switchyard_client_connections{state=\"held\"}",
                1.0,
            )
        }
    })
    .await
    .unwrap();
    assert!(!held.is_finished(), "the query passed a paused gate");
    let (ok, out) = proxy.ctl_async(&["resume"]).await;
    assert!(ok, "resume: {out}");
    let (conn, n) = tokio::time::timeout(GUARD, held).await.unwrap().unwrap();
    assert_eq!(n, Some(7));
    let after = Scrape::take(&metrics);
    drop((conn, pinned));

    // 4. Each counter moved by at least what was done (the CLI sends queries of its own).
    let moved = |series: &str| after.get(series) - before.get(series);
    let at_least = [
        (
            "switchyard_commands_total{kind=\"query\"}",
            3.0 + 1.0 + 1.0 + 1.0,
        ),
        ("switchyard_commands_total{kind=\"prepare\"}", 1.0),
        ("switchyard_commands_total{kind=\"execute\"}", 2.0),
        ("switchyard_client_connections_accepted_total", 4.0),
        (
            "switchyard_backend_connect_duration_seconds_count{side=\"blue\"}",
            3.0,
        ),
        ("switchyard_client_received_bytes_total", 100.0),
        ("switchyard_client_sent_bytes_total", 100.0),
        ("switchyard_command_duration_seconds_count", 8.0),
    ];
    for (series, n) in at_least {
        assert!(moved(series) >= n, "{series} moved {}", moved(series));
    }
    let exactly = [
        ("switchyard_auth_failures_total", 1.0),
        (
            "switchyard_client_connections_refused_total{reason=\"access_denied\"}",
            1.0,
        ),
        ("switchyard_held_commands_total", 1.0),
        ("switchyard_hold_duration_seconds_count", 1.0),
        (
            "switchyard_backend_connect_errors_total{side=\"blue\"}",
            0.0,
        ),
    ];
    for (series, n) in exactly {
        assert_eq!(moved(series), n, "{series}");
    }
    assert_eq!(
        paused.get("switchyard_client_connections{state=\"held\"}"),
        1.0
    );
    // The histogram and the counters come from one fold: every command is in both.
    let commands: f64 = ["query", "prepare", "execute", "other"]
        .iter()
        .map(|k| after.get(&format!("switchyard_commands_total{{kind=\"{k}\"}}")))
        .sum();
    assert_eq!(
        after.get("switchyard_command_duration_seconds_count"),
        commands
    );
    assert_eq!(
        after.get("switchyard_command_duration_seconds_bucket{le=\"+Inf\"}"),
        commands
    );
    assert!(after.get("switchyard_command_duration_seconds_sum") > 0.0);

    // 5. A second parser reads the same exposition.
    parses_with_prometheus_client(&after.text);

    // 6. After a switchover, sessions connect to green, and say so by side.
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover: {out}\n{}", proxy.log());
    let mut conn = app(&proxy.addr).await;
    let id: Option<i64> = conn.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(2));
    let switched = Scrape::take(&metrics);
    let green = "switchyard_backend_connect_duration_seconds_count{side=\"green\"}";
    assert!(switched.get(green) >= 1.0, "{}", switched.text);
    assert_eq!(
        switched.get("switchyard_backend_connect_errors_total{side=\"green\"}"),
        0.0
    );
}

/// `prometheus_client.parser.text_string_to_metric_families` reads `text` whole and
/// finds the histogram and the counters.
fn parses_with_prometheus_client(text: &str) {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
duration = families["switchyard_command_duration_seconds"]
assert duration.type == "histogram", duration.type
assert any(s.name.endswith("_bucket") for s in duration.samples)
commands = families["switchyard_commands"]
assert commands.type == "counter", commands.type
assert {s.labels["kind"] for s in commands.samples if s.name.endswith("_total")} == {"query", "prepare", "execute", "other"}
print(len(families))
"#;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client (Debian's python3-prometheus-client, scripts/install-deps.sh) \
         refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families >= 20, "{families} families");
}

/// `/readyz` polled until it answers `want` (bounded by `GUARD`): status and body.
fn readyz_until(metrics: &str, want: u16) -> (u16, String) {
    let deadline = Instant::now() + GUARD;
    loop {
        let (status, _, body) = get(metrics, "/readyz");
        if status == want {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_endpoints_answer_and_bad_requests_are_refused() {
    let pair = support::pair();
    let metrics = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::builder(&pair)
        .proxy_key("metrics_listen", &format!("\"{metrics}\""))
        .toml("[telemetry]\npoll_interval = \"200ms\"")
        .start();
    // A client that connects and sends nothing holds no one else up.
    let _silent = TcpStream::connect(&metrics).unwrap();
    let (status, _, body) = get(&metrics, "/livez");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // The health poll finds blue writable: ready, and `status` says the same.
    let (status, body) = readyz_until(&metrics, 200);
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert!(proxy.ctl(&["status"]).1.contains("ready: yes"));
    // A read-only primary makes the proxy not ready, with the reason on one line.
    sql(&pair.blue, "SET GLOBAL read_only = ON");
    let (_, body) = readyz_until(&metrics, 503);
    let reason = format!("the active side blue ({}) is read-only\n", pair.blue.addr());
    assert_eq!(body, reason);
    let (_, status) = proxy.ctl(&["status"]);
    assert!(
        status.contains(&format!("ready: no ({})", reason.trim())),
        "{status}"
    );
    sql(&pair.blue, "SET GLOBAL read_only = OFF");
    readyz_until(&metrics, 200);
    let (status, headers, _) = http(
        &metrics,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert_eq!(headers.get("allow").map(String::as_str), Some("GET"));
    assert_eq!(get(&metrics, "/admin/pause").0, 404);
    assert_eq!(http(&metrics, b"garbage\r\n\r\n").0, 400);
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(http(&metrics, huge.as_bytes()).0, 431);
    // Sessions carry on.
    let out = mariadb_cli(
        &proxy.addr,
        APP_USER,
        APP_PASSWORD,
        None,
        &["-N", "-e", "SELECT 1"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(get(&metrics, "/livez").0, 200);
}
