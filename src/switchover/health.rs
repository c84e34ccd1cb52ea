//! The background health poll: every `[telemetry] poll_interval` (0 turns it off), while
//! no switchover or `check` runs (they wait for a round under way), it runs the guardrails (exactly what `check` runs, read-only),
//! reads the standby's replication and whether it has applied everything the active
//! side wrote, and checks the active side is reachable and writable. It publishes the
//! verdicts as metrics and the proxy's readiness.
//!
//! Readiness ([`readiness`], a pure function) also follows the switchover's phases at
//! once: a rollback running or a repair pending makes the proxy not ready without
//! waiting for the next poll.

use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;

use crate::config::Config;
use crate::control::Control;
use crate::switchover::guardrails;
use crate::switchover::outcome::unix_now;
use crate::switchover::phase::Phase;
use crate::switchover::Switchover;
use crate::telemetry::{self, names};

/// How soon a round skipped for a switchover or `check` is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// Bound on each connection the poll opens.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// What readiness is decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The active side's last check: `None` before the first, else ok or why not.
    pub active: Option<Result<(), String>>,
    pub phase: Phase,
    /// A rollback the servers have not confirmed yet.
    pub repair: Option<String>,
}

/// Ready when the active side was found reachable and writable, no switchover is
/// rolling back and no repair is pending; else the one-line reason. (The config is
/// loaded: a proxy runs only with one.)
pub fn readiness(inputs: &Inputs) -> Result<(), String> {
    if let Some(what) = &inputs.repair {
        return Err(format!("a rollback is not confirmed yet: {what}"));
    }
    if inputs.phase == Phase::RollingBack {
        return Err("a switchover is rolling back".into());
    }
    match &inputs.active {
        None => Err("the active side has not been checked yet".into()),
        Some(result) => result.clone(),
    }
}

/// Starts the poll; it ends when the switchover state is dropped (the proxy stopped).
pub fn spawn(shared: &Arc<Switchover>) {
    let weak = Arc::downgrade(shared);
    let mut phases = shared.switch.subscribe();
    tokio::spawn(async move {
        let mut active = None;
        // The first round, each tick and each return to idle (the active side may
        // have changed) check again.
        let mut recheck = true;
        loop {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let interval = shared.topology.config.load().telemetry.poll_interval.0;
            if recheck {
                // Skipped while a switchover or `check` probes the servers.
                if let Some(_alone) = shared.switch.try_poll() {
                    active = Some(if interval.is_zero() {
                        check_active(&shared).await
                    } else {
                        poll(&shared).await
                    });
                    recheck = false;
                }
            }
            publish_readiness(&shared, &active);
            drop(shared);
            // A round skipped for a switchover or `check` is tried again soon: the
            // switchover ends (and readiness follows the new side) only once it has
            // let go of the servers, after publishing `idle`.
            let wait = if recheck {
                Some(RETRY)
            } else {
                Some(interval).filter(|i| !i.is_zero())
            };
            let tick = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tick => recheck = true,
                changed = phases.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    recheck |= phases.borrow_and_update().now == Phase::Idle;
                }
            }
        }
    });
}

fn publish_readiness(shared: &Switchover, active: &Option<Result<(), String>>) {
    let ready = readiness(&Inputs {
        active: active.clone(),
        phase: shared.switch.phase(),
        repair: shared.switch.repair_pending(),
    });
    gauge!(names::READY).set(if ready.is_ok() { 1.0 } else { 0.0 });
    telemetry::set_readiness(ready);
}

/// One full round: guardrails, the standby's replication, the active side. Returns
/// the active side's verdict.
async fn poll(shared: &Switchover) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    let active = poll_round(shared).await;
    tracing::debug!(
        "health poll: {:.1} ms, active side {}",
        started.elapsed().as_secs_f64() * 1000.0,
        match &active {
            Ok(()) => "ready".to_string(),
            Err(why) => why.clone(),
        }
    );
    active
}

async fn poll_round(shared: &Switchover) -> Result<(), String> {
    let config = shared.topology.config.load_full();
    let from = shared.topology.target.load().address.clone();
    let standby = shared
        .topology
        .address_of(shared.topology.target.load().side.other());
    if let Some(to) = &standby {
        for check in guardrails::run(shared, &config, &from, to).await {
            gauge!(names::GUARDRAIL_OK, "guardrail" => check.name).set(if check.ok {
                1.0
            } else {
                0.0
            });
        }
        standby_health(&config, &from, to).await;
    }
    gauge!(names::HEALTH_POLL_TIMESTAMP).set(unix_now());
    check_active(shared).await
}

/// The active side answers and is writable (`read_only` off).
async fn check_active(shared: &Switchover) -> Result<(), String> {
    let config = shared.topology.config.load_full();
    let target = shared.topology.target.load_full();
    let side = target.side.name();
    let Some(control) = config.control.clone() else {
        // Without a control account, only whether it answers can be known.
        return tokio::time::timeout(
            POLL_TIMEOUT,
            tokio::net::TcpStream::connect(&target.address),
        )
        .await
        .map_err(|_| {
            format!(
                "the active side {side} ({}) does not answer",
                target.address
            )
        })?
        .map(drop)
        .map_err(|e| {
            format!(
                "the active side {side} ({}) is unreachable: {e}",
                target.address
            )
        });
    };
    let mut conn = Control::connect_with(&config, &control, &target.address, POLL_TIMEOUT)
        .await
        .map_err(|e| format!("the active side {side} is unreachable: {e}"))?;
    let read_only = conn.read_only().await;
    conn.disconnect().await;
    match read_only {
        Ok(false) => Ok(()),
        Ok(true) => Err(format!(
            "the active side {side} ({}) is read-only",
            target.address
        )),
        Err(e) => Err(format!("the active side {side}: {e}")),
    }
}

/// The standby's replication threads, lag, and whether it has applied the active
/// side's position (a zero-length wait: proof, not the lag estimate).
async fn standby_health(config: &Config, from: &str, to: &str) {
    let Some(control) = config.control.clone() else {
        return;
    };
    let mut io = 0.0;
    let mut sql = 0.0;
    let mut lag = f64::NAN;
    let mut caught_up = 0.0;
    if let Ok(mut standby) = Control::connect_with(config, &control, to, POLL_TIMEOUT).await {
        if let Ok(Some(status)) = standby.replica_status().await {
            io = f64::from(u8::from(status.io_running));
            sql = f64::from(u8::from(status.sql_running));
            lag = status.seconds_behind.map_or(f64::NAN, |s| s as f64);
        }
        if let Ok(mut primary) = Control::connect_with(config, &control, from, POLL_TIMEOUT).await {
            if let Ok(position) = primary.gtid_position().await {
                if let Ok(true) = standby.wait_for_gtids(&position, Duration::ZERO).await {
                    caught_up = 1.0;
                }
            }
            primary.disconnect().await;
        }
        standby.disconnect().await;
    }
    gauge!(names::STANDBY_IO_RUNNING).set(io);
    gauge!(names::STANDBY_SQL_RUNNING).set(sql);
    gauge!(names::STANDBY_LAG).set(lag);
    gauge!(names::STANDBY_GTID_CAUGHT_UP).set(caught_up);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(active: Option<Result<(), String>>, phase: Phase, repair: Option<&str>) -> Inputs {
        Inputs {
            active,
            phase,
            repair: repair.map(String::from),
        }
    }

    #[test]
    fn ready_only_when_the_active_side_is_fine_and_nothing_is_rolling_back() {
        assert_eq!(readiness(&inputs(Some(Ok(())), Phase::Idle, None)), Ok(()));
        // A switchover under way is not a reason to be unready; its rollback is.
        assert_eq!(
            readiness(&inputs(Some(Ok(())), Phase::Fencing, None)),
            Ok(())
        );
        let e = readiness(&inputs(Some(Ok(())), Phase::RollingBack, None)).unwrap_err();
        assert!(e.contains("rolling back"), "{e}");
        let e = readiness(&inputs(
            Some(Ok(())),
            Phase::Idle,
            Some("blue still read-only"),
        ))
        .unwrap_err();
        assert!(e.contains("blue still read-only"), "{e}");
        let e = readiness(&inputs(None, Phase::Idle, None)).unwrap_err();
        assert!(e.contains("not been checked"), "{e}");
        let e = readiness(&inputs(
            Some(Err("blue is read-only".into())),
            Phase::Idle,
            None,
        ))
        .unwrap_err();
        assert_eq!(e, "blue is read-only");
    }
}
