//! Why a switchover step failed ([`StepError`], which rolls the switchover back) and
//! why a rollback is not confirmed yet ([`RepairError`], retried until it is). Their
//! texts are what operators read in `switchover`'s answer and in `status`.

use std::time::Duration;

use crate::control::ControlError;
use crate::switchover::guardrails::CompareError;
use crate::switchover::phase::Phase;

/// A step of the switchover that failed; any of them before the point of no return
/// rolls the switchover back.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A control connection could not be opened or reopened, or a statement that is
    /// not a step of its own failed (the process list, the GTID position).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Open transactions did not end within the drain timeout.
    #[error(
        "sessions still inside a transaction after the drain timeout ({timeout:?}): {}",
        open_sessions(.open)
    )]
    DrainTimeout { timeout: Duration, open: Vec<u32> },
    /// Sessions still pinned at the drain timeout, with `on_pinned = "abort"`.
    #[error("sessions still pinned after the drain timeout: {}", .0.join(", "))]
    Pinned(Vec<String>),
    #[error("fence failed: {0}")]
    Fence(ControlError),
    /// The old primary's GTID position still moved after the fence.
    #[error("the fenced primary is still writing (position moves: {0}): an account that ignores read_only?")]
    PositionMoving(String),
    /// The new side did not apply the fence position in time.
    #[error("{address} did not reach {position} within {wait:?}")]
    CatchUpTimeout {
        address: String,
        position: String,
        wait: Duration,
    },
    /// Waiting for the new side to apply the fence position failed.
    #[error(transparent)]
    CatchUp(ControlError),
    /// The histories could not be compared.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// The new side has GTIDs the old primary lacks.
    #[error("the new side has transactions the old primary lacks: {}", .0.join(","))]
    Errant(Vec<String>),
    #[error("stop replication: {0}")]
    StopReplication(ControlError),
    #[error("read_only=OFF on the new side: {0}")]
    Promote(ControlError),
    /// The steps ran out of their share of `max_pause` (or of the switchover's
    /// timeout).
    #[error("out of time in phase {} (max_pause {max_pause:?}, timeout {timeout:?})", .phase.name())]
    OutOfTime {
        phase: Phase,
        max_pause: Duration,
        timeout: Duration,
    },
}

fn open_sessions(open: &[u32]) -> String {
    if open.is_empty() {
        "busy".to_string()
    } else {
        open.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What keeps a rollback from being confirmed by the servers.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("no [control] account is configured")]
    NoControl,
    /// Connecting, reading the process list or replication status, or a kill failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("read_only={} on {address}: {source}", on_off(*.read_only))]
    SetReadOnly {
        address: String,
        read_only: bool,
        source: ControlError,
    },
    /// The server answered, but `read_only` reads back the other way.
    #[error("{address} is not read_only={} yet", on_off(*.read_only))]
    NotYet { address: String, read_only: bool },
    #[error("the servers did not answer in time")]
    NoAnswer,
    /// The gate's deadline passed before the rollback began: it goes on in the
    /// background.
    #[error("max_pause had passed")]
    MaxPausePassed,
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts operators (and the README) know stay as they were.
    #[test]
    fn texts_are_the_operators_texts() {
        let drain = StepError::DrainTimeout {
            timeout: Duration::from_secs(2),
            open: vec![7, 9],
        };
        assert_eq!(
            drain.to_string(),
            "sessions still inside a transaction after the drain timeout (2s): 7, 9"
        );
        let busy = StepError::DrainTimeout {
            timeout: Duration::from_millis(500),
            open: vec![],
        };
        assert!(busy.to_string().ends_with("(500ms): busy"), "{busy}");
        assert_eq!(
            StepError::Pinned(vec!["3 (temporary table)".into()]).to_string(),
            "sessions still pinned after the drain timeout: 3 (temporary table)"
        );
        assert_eq!(
            StepError::Errant(vec!["0-2-5".into(), "0-2-6".into()]).to_string(),
            "the new side has transactions the old primary lacks: 0-2-5,0-2-6"
        );
        let late = StepError::OutOfTime {
            phase: Phase::CatchingUp,
            max_pause: Duration::from_secs(2),
            timeout: Duration::from_secs(30),
        };
        assert_eq!(
            late.to_string(),
            "out of time in phase catching_up (max_pause 2s, timeout 30s)"
        );
        let not_yet = RepairError::NotYet {
            address: "h:1".into(),
            read_only: false,
        };
        assert_eq!(not_yet.to_string(), "h:1 is not read_only=OFF yet");
        assert_eq!(
            RepairError::MaxPausePassed.to_string(),
            "max_pause had passed"
        );
    }
}
