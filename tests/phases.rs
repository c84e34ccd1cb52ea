//! The published phase: a subscriber to the switchover's phase channel sees every phase
//! of a real switchover (blue → green, a session moving with it) and of one rolled back
//! (held at `fencing` by the failpoint until the steps run out of `max_pause`), each
//! ending in `idle`.
//!
//! The proxy runs in this process (`support::in_process`), so the test holds the
//! switchover itself and subscribes to it. The
//! failpoint is read once per process: `fencing:wait:<file>` lets the switchover through
//! while `<file>` exists and holds it at `fencing` while it does not.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use switchyard::switchover::orchestrator::{self, Options, Report, SwitchoverError};
use switchyard::switchover::phase::{Phase, Phases};
use switchyard::switchover::Switchover;
use switchyard::testbed::free_port;
use tokio::sync::watch;

use support::in_process::{config_toml, start_proxy};
use support::load::{app_conn, server_id};
use support::pair;

use Phase::*;

/// Longest a subscriber waits for the switchover's last phase.
const GUARD: Duration = Duration::from_secs(60);

/// Records each phase the subscriber wakes to, until the switchover is back in `idle`;
/// returns those and the last published value (with the whole trail).
fn watch_phases(mut rx: watch::Receiver<Phases>) -> tokio::task::JoinHandle<(Vec<Phase>, Phases)> {
    tokio::spawn(async move {
        let mut woke_to = Vec::new();
        loop {
            tokio::time::timeout(GUARD, rx.changed())
                .await
                .expect("the switchover never came back to idle")
                .expect("the switchover's phase channel closed");
            let now = rx.borrow_and_update().clone();
            woke_to.push(now.now);
            if now.now == Idle {
                return (woke_to, now);
            }
        }
    })
}

/// One switchover, watched by a subscriber from before it starts: its result, the
/// phases the subscriber woke to and the last published value.
async fn run_watched(
    shared: &Arc<Switchover>,
) -> (Result<Report, SwitchoverError>, Vec<Phase>, Phases) {
    let watcher = watch_phases(shared.switch.subscribe());
    let result = orchestrator::run(shared, Options::default(), &|_, _| {}).await;
    let (woke_to, last) = watcher.await.expect("the watcher");
    assert_eq!(shared.switch.phase(), Idle, "status after the switchover");
    (result, woke_to, last)
}

/// The last published trail is `expected` (phase names joined by ` → `), and the
/// phases the subscriber woke to are that trail or a part of it in the same order (one
/// wake-up may cover several quick changes), ending in `idle`.
fn assert_seen(label: &str, woke_to: &[Phase], last: &Phases, expected: &str) {
    assert_eq!(last.now, Idle, "{label}");
    assert_eq!(names(&last.trail), expected, "{label}: the trail");
    let mut rest = last.trail.iter();
    for p in woke_to {
        assert!(
            rest.any(|t| t == p),
            "{label}: woke to {woke_to:?}, not in the order of {:?}",
            last.trail
        );
    }
    assert_eq!(woke_to.last(), Some(&Idle), "{label}: {woke_to:?}");
}

fn names(phases: &[Phase]) -> String {
    phases
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" → ")
}

#[test]
fn subscribers_see_every_phase_of_a_switchover_and_of_a_rollback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    // Before any thread of the runtime exists: the variable is read at the first phase.
    std::env::set_var(
        "SWITCHYARD_FAILPOINT",
        format!("fencing:wait:{}", go.display()),
    );
    let pair = pair();
    let listen = format!("127.0.0.1:{}", free_port());
    let toml = config_toml(
        &pair,
        &listen,
        &dir.path().join("state.json"),
        "[switchover]\nmax_pause = \"3s\"\n",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let shared = start_proxy(&toml, &listen).await;
        assert_eq!(shared.switch.phase(), Idle);
        let mut session = app_conn(&listen).await;
        assert_eq!(server_id(&mut session).await, pair.blue.server_id);

        // 1. Blue → green, the failpoint's file in place.
        std::fs::write(&go, b"").expect("create the failpoint file");
        let (done, woke_to, last) = run_watched(&shared).await;
        let report = done.unwrap_or_else(|e| panic!("the switchover: {e}"));
        eprintln!(
            "switchover: woke to {woke_to:?}; pause {:.1} ms",
            report.pause_ms
        );
        assert_seen(
            "switchover",
            &woke_to,
            &last,
            "precheck → draining → fencing → catching_up → promoting → retargeting → done → idle",
        );
        // The session moved with it.
        assert_eq!(server_id(&mut session).await, pair.green.server_id);

        // 2. Green → blue, held at `fencing` until the steps are out of time: rolled
        //    back, still on green.
        std::fs::remove_file(&go).expect("remove the failpoint file");
        let (failed, woke_to, last) = run_watched(&shared).await;
        eprintln!("rollback: woke to {woke_to:?}");
        match &failed {
            Err(SwitchoverError::RolledBack {
                phase, unfinished, ..
            }) => {
                assert_eq!(*phase, Fencing, "{failed:?}");
                assert_eq!(*unfinished, None, "the rollback is confirmed");
            }
            other => panic!("expected a rollback at fencing, got {other:?}"),
        }
        let message = failed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("rolled back in phase fencing: out of time in phase fencing"),
            "{message}"
        );
        assert_seen(
            "rollback",
            &woke_to,
            &last,
            "precheck → draining → fencing → rolling_back → idle",
        );
        // Traffic goes on, writable, on green.
        assert_eq!(server_id(&mut session).await, pair.green.server_id);
        session
            .query_drop("CREATE TABLE IF NOT EXISTS test.phases (id INT PRIMARY KEY)")
            .await
            .unwrap_or_else(|e| panic!("a write after the rollback: {e}"));
        session
            .query_drop("DROP TABLE test.phases")
            .await
            .unwrap_or_else(|e| panic!("a write after the rollback: {e}"));
    });
}
