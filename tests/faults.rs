//! Fault injection: the switchover keeps its promises when things go wrong. Each test
//! runs a real MariaDB pair and the real proxy binary, breaks something at a named
//! phase — a server frozen (SIGSTOP) or killed, the proxy killed, admin commands
//! racing — and asserts the promises:
//!
//! - no client error where one is avoidable, and no acknowledged write lost or
//!   duplicated (the load checker of `support::load`);
//! - never two writable sides: `@@read_only` of both servers is polled every few ms
//!   for the whole test;
//! - a known end state, reached without an operator: one writable primary that the
//!   proxy routes to, the other side read-only and replicating from it;
//! - the next switchover succeeds.
//!
//! Phases are reached with the proxy's failpoint (`SWITCHYARD_FAILPOINT=<phase>:stop`
//! or `<phase>:wait:<file>`), never with sleeps.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::load::{
    app_conn, check_acked, direction, server_id, sql, switchover_round, wait_following, Workload,
};
use support::tls::{ssl_opts, tls_pair_of, TestCa};
use support::{pair, Proxy};
use switchyard::testbed::{Flavor, Pair, Server};
use tokio::task::JoinHandle;

/// Bound on anything the tests wait for (a hang guard, not a timing assertion).
const GUARD: Duration = Duration::from_secs(40);

/// Short fence and pause budgets, so that faults resolve in seconds.
const FAULT_TOML: &str = "[switchover]\nfence_timeout = \"1s\"\nmax_pause = \"8s\"\n";

// ───────────────────────── never two writable sides ─────────────────────────

/// One reading of `@@read_only`: side 0 = blue, 1 = green; `None` when the server did
/// not answer in time.
#[derive(Debug, Clone, Copy)]
struct Reading {
    side: usize,
    writable: Option<bool>,
}

/// Polls `@@read_only` on both servers, alternately, every few ms.
struct Watcher {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Reading>>,
}

const READ_BOUND: Duration = Duration::from_millis(300);

/// The watcher's account: no privileges at all (reading `@@read_only` needs none), so
/// it is neither a writer the guardrails would refuse nor one of the proxy's users.
const WATCHER: &str = "watcher";

async fn watcher_conn(addr: &str) -> Option<Conn> {
    let (host, port) = addr.rsplit_once(':')?;
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().ok()?)
        .user(Some(WATCHER))
        .pass(Some(WATCHER))
        .prefer_socket(false);
    tokio::time::timeout(READ_BOUND, Conn::new(opts))
        .await
        .ok()?
        .ok()
}

fn watch(pair: &Pair) -> Watcher {
    sql(
        &pair.blue,
        &format!("CREATE USER '{WATCHER}'@'%' IDENTIFIED BY '{WATCHER}'"),
    );
    pair.wait_green_caught_up(GUARD)
        .expect("green has the watcher's account");
    let addrs = [pair.blue.addr(), pair.green.addr()];
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut conns: [Option<Conn>; 2] = [None, None];
        let mut readings = Vec::new();
        while !flag.load(Ordering::SeqCst) {
            for side in 0..2 {
                if conns[side].is_none() {
                    conns[side] = watcher_conn(&addrs[side]).await;
                }
                let writable = match conns[side].as_mut() {
                    Some(conn) => {
                        let read = conn.query_first::<i64, _>("SELECT @@GLOBAL.read_only");
                        match tokio::time::timeout(READ_BOUND, read).await {
                            Ok(Ok(Some(ro))) => Some(ro == 0),
                            _ => None,
                        }
                    }
                    None => None,
                };
                if writable.is_none() {
                    conns[side] = None;
                }
                readings.push(Reading { side, writable });
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        readings
    });
    Watcher { stop, task }
}

impl Watcher {
    /// Stops watching; panics if a side read writable between two readings of the
    /// other side that were writable too (both writable at that moment).
    async fn assert_never_both_writable(self, label: &str) {
        self.stop.store(true, Ordering::SeqCst);
        let readings = self.task.await.expect("the watcher panicked");
        assert!(readings.len() > 10, "{label}: too few read_only readings");
        for (i, r) in readings.iter().enumerate() {
            if r.writable != Some(true) {
                continue;
            }
            let other = |x: &&Reading| x.side != r.side;
            let before = readings[..i].iter().rev().find(other);
            let after = readings[i + 1..].iter().find(other);
            let writable = |x: Option<&Reading>| x.is_some_and(|x| x.writable == Some(true));
            assert!(
                !(writable(before) && writable(after)),
                "{label}: blue and green were both writable (reading {i} of {})",
                readings.len()
            );
        }
    }
}

// ───────────────────────────── helpers ─────────────────────────────

/// `ctl ARGS…` in the background.
fn ctl_spawn(proxy: &Proxy, args: &[&str]) -> JoinHandle<(bool, String)> {
    let cmd = proxy.ctl_command(args);
    tokio::spawn(async move {
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .expect("run switchyard ctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
}

/// Waits until the proxy's log contains `needle`.
async fn wait_log(proxy: &Proxy, needle: &str) {
    let deadline = Instant::now() + GUARD;
    while !proxy.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the proxy never logged {needle:?}; its log:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A failpoint that waits at `phase` until the returned file exists.
fn wait_point(dir: &Path, phase: &str) -> (String, PathBuf) {
    let go = dir.join(format!("go-{phase}"));
    (format!("{phase}:wait:{}", go.display()), go)
}

fn go(file: &Path) {
    std::fs::write(file, b"").expect("create the failpoint file");
}

/// Polls `ctl status` until `check` holds for its output; returns that output.
async fn wait_status(proxy: &Proxy, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        let (_, out) = proxy.ctl_async(&["status"]).await;
        if check(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "`ctl status` never showed {what}; last:\n{out}\nproxy log:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The known end state: `primary` writable and routed to, `standby` read-only and
/// replicating from it, no rollback pending, and a new session writes to `primary`.
async fn assert_settled(label: &str, proxy: &Proxy, primary: &Server, standby: &Server) {
    let active = primary.name;
    wait_status(proxy, "a settled proxy", |out| {
        out.contains(&format!("OK {active} is active"))
            && !out.contains("rollback not confirmed")
            && out.contains("phase: idle")
    })
    .await;
    assert_eq!(
        sql(primary, "SELECT @@read_only"),
        "0",
        "{label}: {active} writable"
    );
    assert_eq!(
        sql(standby, "SELECT @@read_only"),
        "1",
        "{label}: {} read-only",
        standby.name
    );
    wait_following(label, standby, primary);
    let mut conn = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut conn).await, primary.server_id, "{label}");
    conn.query_drop("INSERT INTO test.load (id, w) VALUES (999999999, 99)")
        .await
        .unwrap_or_else(|e| panic!("{label}: a write through the proxy: {e}"));
    conn.query_drop("DELETE FROM test.load WHERE id = 999999999")
        .await
        .unwrap_or_else(|e| panic!("{label}: a delete through the proxy: {e}"));
    conn.disconnect().await.ok();
}

/// Sets up a pair and a proxy (with `failpoint`, if any), the workload's table and
/// sessions, and the read_only watcher.
async fn setup(
    extra_toml: &str,
    failpoint: Option<&str>,
) -> (Pair, Proxy, Workload, Watcher, tempfile::TempDir) {
    let pair = pair();
    let proxy = with_failpoint(Proxy::builder(&pair).toml(extra_toml), failpoint).start();
    let workload = Workload::connect(&proxy.addr).await;
    let watcher = watch(&pair);
    let dir = tempfile::tempdir().expect("temp dir");
    (pair, proxy, workload, watcher, dir)
}

fn with_failpoint<'a>(
    builder: support::ProxyBuilder<'a>,
    failpoint: Option<&str>,
) -> support::ProxyBuilder<'a> {
    match failpoint {
        Some(point) => builder.env("SWITCHYARD_FAILPOINT", point),
        None => builder,
    }
}

/// [`setup`] with TLS on both legs: the workload's clients on verified TLS to the
/// proxy, the proxy on verified TLS to the servers (which also take the watcher's
/// plaintext connections).
async fn setup_tls(
    extra_toml: &str,
    failpoint: Option<&str>,
) -> (Pair, Proxy, Workload, Watcher, TestCa) {
    let ca = TestCa::new("faults test CA");
    let pair = tls_pair_of(Flavor::MariaDb, ca.server_tls(&ca.server("server"), false));
    let builder = Proxy::builder(&pair)
        .toml(extra_toml)
        .client_tls(&ca.server("proxy"), "")
        .backend_tls(&ca.ca);
    let proxy = with_failpoint(builder, failpoint).start();
    let workload = Workload::connect_with(&proxy.addr, Some(ssl_opts(&ca.ca))).await;
    let watcher = watch(&pair);
    (pair, proxy, workload, watcher, ca)
}

fn assert_no_errors(label: &str, workload: &Workload, proxy: &Proxy) {
    assert!(
        workload.tally.errors.is_empty(),
        "{label}: clients saw {} error(s):\n{}\nproxy log:\n{}",
        workload.tally.errors.len(),
        workload.tally.errors.join("\n"),
        proxy.log()
    );
}

/// The end of a fault under load: clients saw no error, every acknowledged write is on
/// the primary (green when `on_green`, else blue) once, it is the settled primary, the
/// next switchover (with all its checks) succeeds, and the two sides were never both
/// writable.
async fn ends_cleanly(
    label: &str,
    pair: &Pair,
    proxy: &Proxy,
    running: support::load::Running,
    watcher: Watcher,
    on_green: bool,
) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let workload = running.stop().await;
    assert_no_errors(label, &workload, proxy);
    let now = direction(pair, on_green);
    check_acked(label, now.new, &workload.tally);
    assert_settled(label, proxy, now.new, now.old).await;
    let workload = switchover_round(proxy, direction(pair, !on_green), workload, "next").await;
    drop(workload);
    watcher.assert_never_both_writable(label).await;
}

// ───────────────────────────── scenarios ─────────────────────────────

/// Blue freezes just as the fence is sent; the fence times out and lands when blue
/// wakes. The rollback kills the fence's connection, makes blue writable again and
/// only then opens the gate: no client error, no operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_frozen_at_the_fence_is_rolled_back_without_an_operator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "fencing");
    let (pair, proxy, workload, watcher, _d) = setup(FROZEN_FENCE, Some(&point)).await;
    frozen_fence(
        &pair,
        &proxy,
        workload,
        watcher,
        &go_file,
        "fence on a frozen blue",
    )
    .await;
}

/// The same with every leg on TLS: the rollback's KILL and `read_only` go over TLS
/// control connections, and the clients keep their TLS sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_frozen_at_the_fence_over_tls_is_rolled_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "fencing");
    let (pair, proxy, workload, watcher, _ca) = setup_tls(FROZEN_FENCE, Some(&point)).await;
    let label = "fence on a frozen blue, over TLS";
    frozen_fence(&pair, &proxy, workload, watcher, &go_file, label).await;
}

const FROZEN_FENCE: &str = "[switchover]\nfence_timeout = \"1s\"\nmax_pause = \"12s\"\n";

async fn frozen_fence(
    pair: &Pair,
    proxy: &Proxy,
    workload: Workload,
    watcher: Watcher,
    go_file: &Path,
    label: &str,
) {
    let running = workload.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let switch = ctl_spawn(proxy, &["switchover"]);
    wait_log(proxy, "failpoint: stopped at fencing").await;
    pair.blue.freeze();
    go(go_file);
    // Blue stays frozen past the fence timeout (1s) and the grace its KILL QUERY gets
    // (2s to connect, 2s for the statement to answer), well inside max_pause (12s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    pair.blue.thaw();
    let (ok, out) = switch.await.expect("ctl task");
    assert!(!ok && out.contains("rolled back in phase fencing"), "{out}");
    assert!(
        !out.contains("not confirmed"),
        "confirmed before the gate opened: {out}"
    );
    ends_cleanly(label, pair, proxy, running, watcher, false).await;
}

/// Blue stays frozen past `max_pause`: the gate opens at `max_pause` all the same, the
/// rollback goes on in the background, and as soon as blue answers it is writable
/// again — the late fence undone — and the next switchover can run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_frozen_past_max_pause_is_repaired_when_it_wakes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "fencing");
    let toml = "[switchover]\nfence_timeout = \"1s\"\nmax_pause = \"3s\"\n";
    let (pair, proxy, workload, watcher, _d) = setup(toml, Some(&point)).await;
    let switch = ctl_spawn(&proxy, &["--json", "switchover"]);
    wait_log(&proxy, "failpoint: stopped at fencing").await;
    pair.blue.freeze();
    let released = Instant::now();
    go(&go_file);
    let (ok, out) = switch.await.expect("ctl task");
    let took = released.elapsed();
    assert!(!ok && out.contains("rolled back in phase fencing"), "{out}");
    assert!(out.contains("not confirmed"), "{out}");
    assert!(
        took < Duration::from_secs(6),
        "the switchover answered {took:?} after the gate closed; max_pause is 3s"
    );
    let pause_ms = last_pause_ms(&out);
    assert!(
        (2000.0..4000.0).contains(&pause_ms),
        "the report's pause is {pause_ms} ms; the gate was closed about 3 s:\n{out}"
    );
    let status = wait_status(&proxy, "the pending rollback", |o| {
        o.contains("rollback not confirmed")
    })
    .await;
    let (ok, refused) = proxy.ctl_async(&["switchover"]).await;
    assert!(
        !ok && refused.contains("the last rollback is not finished"),
        "{refused}\n{status}"
    );
    pair.blue.thaw();
    assert_settled(
        "blue frozen past max_pause",
        &proxy,
        &pair.blue,
        &pair.green,
    )
    .await;
    let log = proxy.log();
    assert!(log.contains("rollback finished"), "{log}");
    let workload = switchover_round(&proxy, direction(&pair, true), workload, "next").await;
    drop(workload);
    watcher
        .assert_never_both_writable("blue frozen past max_pause")
        .await;
}

/// The `pause_ms` of the last JSON line (a rolled-back switchover's report).
fn last_pause_ms(out: &str) -> f64 {
    let last = out.lines().last().unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    line["report"]["pause_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no report.pause_ms: {out}"))
}

/// Green freezes during the catch-up: applications are released by `max_pause`
/// whatever the frozen server does, blue is writable before they are (no error), and
/// the report's figures are those of the rolled-back switchover.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn green_frozen_in_the_catch_up_releases_clients_by_max_pause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "catching_up");
    let toml = "[switchover]\nmax_pause = \"3s\"\ncatchup_timeout = \"30s\"\n";
    let (pair, proxy, workload, watcher, _d) = setup(toml, Some(&point)).await;
    let running = workload.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let switch = ctl_spawn(&proxy, &["--json", "switchover"]);
    wait_log(&proxy, "failpoint: stopped at catching_up").await;
    pair.green.freeze();
    go(&go_file);
    let (ok, out) = switch.await.expect("ctl task");
    assert!(
        !ok && out.contains("rolled back in phase catching_up"),
        "{out}"
    );
    let pause_ms = last_pause_ms(&out);
    assert!(
        (1000.0..4000.0).contains(&pause_ms),
        "the report's pause is {pause_ms} ms; max_pause is 3 s:\n{out}"
    );
    pair.green.thaw();
    ends_cleanly(
        "green frozen in the catch-up",
        &pair,
        &proxy,
        running,
        watcher,
        false,
    )
    .await;
}

/// Green cannot catch up (its SQL thread stops after the precheck, and blue has a
/// write it lacks): the catch-up times out under write load, and the rollback is
/// invisible to clients — blue is writable again before the gate opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_timeout_under_write_load_gives_no_client_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "draining");
    let toml = "[switchover]\ncatchup_timeout = \"500ms\"\n";
    let (pair, proxy, workload, watcher, _d) = setup(toml, Some(&point)).await;
    sql(&pair.blue, "CREATE TABLE test.side (n INT)");
    let mut workload = workload;
    for round in 0..3 {
        let label = format!("catch-up timeout, round {round}");
        let _ = std::fs::remove_file(&go_file);
        let running = workload.start();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let switch = ctl_spawn(&proxy, &["switchover"]);
        wait_log_count(&proxy, "failpoint: stopped at draining", round + 1).await;
        sql(&pair.green, "STOP SLAVE SQL_THREAD");
        sql(&pair.blue, "INSERT INTO test.side VALUES (1)");
        go(&go_file);
        let (ok, out) = switch.await.expect("ctl task");
        assert!(
            !ok && out.contains("rolled back in phase catching_up"),
            "{label}: {out}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        workload = running.stop().await;
        assert_no_errors(&label, &workload, &proxy);
        sql(&pair.green, "START SLAVE SQL_THREAD");
        assert_settled(&label, &proxy, &pair.blue, &pair.green).await;
    }
    check_acked("catch-up timeout", &pair.blue, &workload.tally);
    watcher
        .assert_never_both_writable("catch-up timeout under load")
        .await;
}

/// Waits until the proxy's log holds `needle` at least `n` times.
async fn wait_log_count(proxy: &Proxy, needle: &str, n: usize) {
    let deadline = Instant::now() + GUARD;
    while proxy.log().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "the proxy logged {needle:?} fewer than {n} times; its log:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `pause` during a switchover and `switchover` during a pause are refused with a
/// clear error; racing them leaves the gate exactly as the last accepted command
/// asked: open after `resume`, open after a switchover.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_switchover_never_leave_the_gate_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "draining");
    let (pair, proxy, workload, watcher, _d) = setup(FAULT_TOML, Some(&point)).await;
    let running = workload.start();
    // 1. A pause while a switchover holds the gate is refused.
    let switch = ctl_spawn(&proxy, &["switchover"]);
    wait_log(&proxy, "failpoint: stopped at draining").await;
    let (ok, out) = proxy.ctl_async(&["pause"]).await;
    assert!(!ok && out.contains("a switchover is running"), "{out}");
    go(&go_file);
    let (ok, out) = switch.await.expect("ctl task");
    assert!(ok, "{out}\n{}", proxy.log());
    // 2. A switchover while paused by hand is refused; resume opens the gate.
    let (ok, out) = proxy.ctl_async(&["pause"]).await;
    assert!(ok, "{out}");
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(!ok && out.contains("paused by hand"), "{out}");
    let (ok, out) = proxy.ctl_async(&["resume"]).await;
    assert!(ok, "{out}");
    let workload = running.stop().await;
    assert_no_errors("pause and switchover", &workload, &proxy);
    assert_settled("pause and switchover", &proxy, &pair.green, &pair.blue).await;
    // 3. Racing: many pauses, resumes and switchovers at once (the failpoint's file
    //    exists now: it no longer stops anything).
    let running = workload.start();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let args: &[&str] = match i % 3 {
            0 => &["switchover"],
            1 => &["pause", "--timeout", "2s"],
            _ => &["resume"],
        };
        tasks.push(ctl_spawn(&proxy, args));
    }
    let mut switched = 0;
    for t in tasks {
        let (ok, out) = t.await.expect("ctl task");
        if ok && out.contains("switched") {
            switched += 1;
        }
        assert!(
            ok || out.contains("ERR"),
            "every refusal is a clear ERR: {out}"
        );
    }
    // The operator's last word: resume (it may say there was nothing to resume).
    let _ = proxy.ctl_async(&["resume"]).await;
    let status = wait_status(&proxy, "an open gate", |o| !o.contains("paused")).await;
    assert!(status.contains("phase: idle"), "{status}");
    let on_green = switched % 2 == 0;
    ends_cleanly(
        "racing admin commands",
        &pair,
        &proxy,
        running,
        watcher,
        on_green,
    )
    .await;
}

/// The proxy is killed at each phase and started again: it finishes what the journal
/// says — rolls back before the point of no return, forward after it — and ends with
/// one writable primary that it routes to, the other side following it, ready for
/// the next switchover.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_killed_at_each_phase_restarts_into_a_known_state() {
    let (pair, mut proxy, workload, watcher, _d) = setup(FAULT_TOML, None).await;
    drop(workload);
    let mut on_green = false;
    for phase in [
        "precheck",
        "draining",
        "fencing",
        "catching_up",
        "promoting",
        "retargeting",
        "done",
    ] {
        let label = format!("proxy killed at {phase}");
        let point = format!("{phase}:stop");
        proxy.kill();
        proxy.start_again(&[("SWITCHYARD_FAILPOINT", &point)]);
        let session = app_conn(&proxy.addr).await;
        let switch = ctl_spawn(&proxy, &["switchover"]);
        wait_log_count(&proxy, &format!("failpoint: stopped at {phase}"), 1).await;
        proxy.kill();
        let _ = switch.await;
        drop(session.disconnect().await);
        proxy.start_again(&[]);
        if matches!(phase, "retargeting" | "done") {
            on_green = !on_green;
        }
        let dir = direction(&pair, on_green);
        // `direction(…, to_green)` names the new side first: here it is the primary.
        assert_settled(&label, &proxy, dir.new, dir.old).await;
        // The next switchover, from wherever it ended, succeeds.
        let (ok, out) = proxy.ctl_async(&["switchover"]).await;
        assert!(ok, "{label}: the next switchover: {out}\n{}", proxy.log());
        on_green = !on_green;
        let dir = direction(&pair, on_green);
        assert_settled(&label, &proxy, dir.new, dir.old).await;
    }
    watcher
        .assert_never_both_writable("proxy killed at each phase")
        .await;
}

/// After a switchover to green, green dies: no new connection ever reaches blue
/// (fenced, and a replica of green), and blue stays read-only. Green back, the proxy
/// serves again and the next switchover succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn green_killed_after_promotion_sends_nobody_to_blue() {
    let (mut pair, proxy, workload, watcher, _d) = setup(FAULT_TOML, None).await;
    let workload = switchover_round(&proxy, direction(&pair, true), workload, "to green").await;
    drop(workload);
    pair.green.kill();
    for _ in 0..5 {
        match tokio::time::timeout(Duration::from_secs(10), try_conn(&proxy.addr)).await {
            Ok(Ok(id)) => panic!("a new session reached server {id} while green is down"),
            Ok(Err(_)) => {}
            Err(_) => panic!("a login with green down did not end"),
        }
        assert_eq!(sql(&pair.blue, "SELECT @@read_only"), "1", "blue fenced");
    }
    pair.green.start().expect("restart green");
    assert_settled("green back", &proxy, &pair.green, &pair.blue).await;
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "back to blue: {out}\n{}", proxy.log());
    assert_settled("back on blue", &proxy, &pair.blue, &pair.green).await;
    watcher.assert_never_both_writable("green killed").await;
}

/// A new session through the proxy; the server id it reached.
async fn try_conn(addr: &str) -> Result<u32, mysql_async::Error> {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("port"))
        .user(Some(switchyard::testbed::APP_USER))
        .pass(Some(switchyard::testbed::APP_PASSWORD))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await?;
    let id = conn.query_first::<u32, _>("SELECT @@server_id").await?;
    Ok(id.unwrap_or(0))
}

/// Blue dies while the switchover drains: the fence cannot be sent, the switchover
/// rolls back with a clear error, and once blue is back (crash recovery) everything
/// acknowledged is there and the next switchover succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_killed_during_the_drain_rolls_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (point, go_file) = wait_point(dir.path(), "draining");
    let (mut pair, proxy, workload, watcher, _d) = setup(FAULT_TOML, Some(&point)).await;
    let running = workload.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let switch = ctl_spawn(&proxy, &["switchover"]);
    wait_log(&proxy, "failpoint: stopped at draining").await;
    pair.blue.kill();
    go(&go_file);
    let (ok, out) = switch.await.expect("ctl task");
    assert!(!ok && out.contains("rolled back"), "{out}");
    let workload = running.stop().await;
    // Clients of a server that died see errors; what they were told was written
    // must survive the crash.
    pair.blue.start().expect("restart blue");
    check_acked("blue killed in the drain", &pair.blue, &workload.tally);
    assert_settled("blue killed in the drain", &proxy, &pair.blue, &pair.green).await;
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "the next switchover: {out}\n{}", proxy.log());
    assert_settled("after blue's crash", &proxy, &pair.green, &pair.blue).await;
    watcher.assert_never_both_writable("blue killed").await;
}

/// Blue frozen before the switchover: the precheck cannot reach it and refuses within
/// its bounds, touching nothing; thawed, the switchover succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_frozen_at_the_precheck_is_refused() {
    let (pair, proxy, workload, watcher, _d) = setup(FAULT_TOML, None).await;
    pair.blue.freeze();
    let (ok, out) = tokio::time::timeout(GUARD, proxy.ctl_async(&["switchover"]))
        .await
        .expect("the refused switchover answered");
    pair.blue.thaw();
    assert!(
        !ok && out.contains("refused by the guardrails") && out.contains("reachable"),
        "{out}"
    );
    assert_settled(
        "blue frozen at the precheck",
        &proxy,
        &pair.blue,
        &pair.green,
    )
    .await;
    let workload = switchover_round(&proxy, direction(&pair, true), workload, "next").await;
    drop(workload);
    watcher.assert_never_both_writable("blue frozen").await;
}
