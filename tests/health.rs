//! The switchover's metrics and the background health poll, read from a Prometheus
//! recorder installed in this process (the proxy runs in it: `support::in_process`)
//! against a real MariaDB pair.
//!
//! From startup every result, phase and side is a series; the poll fills the guardrail
//! verdicts, the standby's replication and readiness; a real switchover moves the
//! counters, the phase durations and the active side; a standby whose replication
//! stops and an active side made read-only show in the gauges and in readiness.

mod support;

use std::time::{Duration, Instant};

use switchyard::switchover::health;
use switchyard::switchover::orchestrator::{self, Options};
use switchyard::telemetry::{self, names};
use switchyard::testbed::free_port;

use support::in_process::{config_toml, start_proxy};
use support::load::sql;
use support::pair;

/// Bound on anything the test waits for (a hang guard, not a timing assertion).
const GUARD: Duration = Duration::from_secs(30);

/// What a scrape shows now.
fn scrape() -> String {
    telemetry::recorder::render().expect("the proxy's recorder is installed")
}

/// The value of `series` (name and labels as rendered) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn series(name: &str, label: &str, value: &str) -> String {
    format!("{name}{{{label}=\"{value}\"}}")
}

/// Waits until `series` has `want` in a scrape; returns that scrape.
async fn wait_value(series: &str, want: f64) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        let text = scrape();
        if value(&text, series) == Some(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never became {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_switchovers_and_the_health_poll() {
    // Before the proxy starts, so the series it creates at startup are kept.
    telemetry::recorder::install().expect("the proxy's recorder is installed");
    let pair = pair();
    sql(
        &pair.blue,
        "CREATE TABLE IF NOT EXISTS test.health (id INT)",
    );
    pair.wait_green_caught_up(GUARD).expect("green caught up");
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let toml = config_toml(
        &pair,
        &listen,
        &dir.path().join("state.json"),
        "[telemetry]\npoll_interval = \"200ms\"\n",
    );
    let shared = start_proxy(&toml, &listen).await;
    health::spawn(&shared);

    // 1. From startup: every series at its starting value, then the first poll.
    let text = wait_value(names::READY, 1.0).await;
    assert_eq!(telemetry::readiness(), Ok(()));
    for result in ["ok", "refused", "rolled_back"] {
        assert_eq!(
            value(&text, &series(names::SWITCHOVERS, "result", result)),
            Some(0.0),
            "{result}:\n{text}"
        );
    }
    for phase in ["idle", "precheck", "catching_up", "done", "rolling_back"] {
        let want = if phase == "idle" { 1.0 } else { 0.0 };
        let got = value(&text, &series(names::SWITCHOVER_PHASE, "phase", phase));
        assert_eq!(got, Some(want), "{phase}:\n{text}");
    }
    assert_eq!(
        value(&text, &series(names::ACTIVE_SIDE, "side", "blue")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &series(names::ACTIVE_SIDE, "side", "green")),
        Some(0.0)
    );
    let guardrails: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(names::GUARDRAIL_OK))
        .collect();
    assert!(guardrails.len() >= 10, "{text}");
    assert!(guardrails.iter().all(|l| l.ends_with(" 1")), "{text}");
    for gauge in [
        names::STANDBY_IO_RUNNING,
        names::STANDBY_SQL_RUNNING,
        names::STANDBY_GTID_CAUGHT_UP,
    ] {
        assert_eq!(value(&text, gauge), Some(1.0), "{gauge}:\n{text}");
    }
    assert_eq!(value(&text, names::STANDBY_LAG), Some(0.0));
    assert!(value(&text, names::HEALTH_POLL_TIMESTAMP).is_some_and(|t| t > 1.7e9));

    // 2. A real switchover moves the counters, the durations and the active side.
    let report = orchestrator::run(&shared, Options::default(), &|_, _| {})
        .await
        .unwrap_or_else(|e| panic!("the switchover: {e}"));
    let text = scrape();
    assert_eq!(
        value(&text, &series(names::SWITCHOVERS, "result", "ok")),
        Some(1.0)
    );
    for phase in ["precheck", "fencing", "catching_up", "retargeting", "done"] {
        let count = format!(
            "{}_count{{phase=\"{phase}\"}}",
            names::SWITCHOVER_PHASE_DURATION
        );
        assert_eq!(value(&text, &count), Some(1.0), "{count}:\n{text}");
    }
    assert_eq!(
        value(&text, names::SWITCHOVER_LAST_PAUSE),
        Some(report.pause_ms / 1000.0)
    );
    assert_eq!(
        value(&text, &series(names::ACTIVE_SIDE, "side", "green")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &series(names::SWITCHOVER_PHASE, "phase", "idle")),
        Some(1.0)
    );
    assert_eq!(shared.history.entries().len(), 1);

    // 3. The standby (blue now) stops replicating: the poll sees it; still ready.
    sql(&pair.blue, "STOP SLAVE");
    let standby_replicating = series(names::GUARDRAIL_OK, "guardrail", "standby_replicating");
    // Waited for by the IO thread, which only STOP SLAVE stops: on a loaded machine an
    // earlier round may already fail `standby_replicating` on a slow answer or lag.
    let text = wait_value(names::STANDBY_IO_RUNNING, 0.0).await;
    assert_eq!(value(&text, &standby_replicating), Some(0.0), "{text}");
    assert_eq!(value(&text, names::READY), Some(1.0), "{text}");
    sql(&pair.blue, "START SLAVE");
    wait_value(&standby_replicating, 1.0).await;

    // 4. The active side made read-only by hand: not ready, and why.
    sql(&pair.green, "SET GLOBAL read_only = ON");
    wait_value(names::READY, 0.0).await;
    let why = telemetry::readiness().unwrap_err();
    assert!(why.contains("green") && why.contains("read-only"), "{why}");
    sql(&pair.green, "SET GLOBAL read_only = OFF");
    wait_value(names::READY, 1.0).await;
}

/// The poll's own control connections to the primary are never taken for writers
/// bypassing the proxy: with a poll running almost all the time, every `check` and
/// every switchover passes the `no_bypass_writers` guardrail (they wait for a round
/// under way, and a round waits for them).
#[test]
fn a_busy_poll_never_trips_the_guardrails() {
    let pair = pair();
    let proxy = support::Proxy::start(&pair, "[telemetry]\npoll_interval = \"10ms\"\n");
    for round in 0..4 {
        for _ in 0..3 {
            let (ok, out) = proxy.ctl(&["check"]);
            assert!(ok, "check in round {round}:\n{out}");
        }
        let (ok, out) = proxy.ctl(&["switchover"]);
        assert!(ok, "switchover in round {round}:\n{out}\n{}", proxy.log());
    }
}
