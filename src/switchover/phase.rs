//! The switchover's phases (DESIGN §3) and the transitions between them, as plain
//! functions the tests call directly.
//!
//! ```text
//! Idle → Precheck → Draining → Fencing → CatchingUp → Promoting ─(point of no return)→ Retargeting → Done
//!            └──── any failure or timeout before Promoting ──→ RollingBack → Idle (still on the old side)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Precheck,
    Draining,
    Fencing,
    CatchingUp,
    Promoting,
    Retargeting,
    Done,
    RollingBack,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Precheck => "precheck",
            Phase::Draining => "draining",
            Phase::Fencing => "fencing",
            Phase::CatchingUp => "catching_up",
            Phase::Promoting => "promoting",
            Phase::Retargeting => "retargeting",
            Phase::Done => "done",
            Phase::RollingBack => "rolling_back",
        }
    }

    /// The phase that follows on success.
    pub fn next(self) -> Phase {
        match self {
            Phase::Idle => Phase::Precheck,
            Phase::Precheck => Phase::Draining,
            Phase::Draining => Phase::Fencing,
            Phase::Fencing => Phase::CatchingUp,
            Phase::CatchingUp => Phase::Promoting,
            Phase::Promoting => Phase::Retargeting,
            Phase::Retargeting => Phase::Done,
            Phase::Done | Phase::RollingBack => Phase::Idle,
        }
    }

    /// What a failure in this phase leads to: before the new side is writable the
    /// switchover rolls back; from promotion on it rolls forward.
    pub fn on_failure(self) -> Phase {
        if self.past_point_of_no_return() {
            self.next()
        } else {
            Phase::RollingBack
        }
    }

    /// Promotion makes the new side writable: from then on, going back would lose
    /// writes, so failures roll forward.
    pub fn past_point_of_no_return(self) -> bool {
        matches!(self, Phase::Retargeting | Phase::Done)
    }

    /// A journal left in this phase means a switchover cut short before its point of
    /// no return (or while rolling back): a restarted proxy finishes the rollback.
    pub fn needs_rollback(self) -> bool {
        matches!(
            self,
            Phase::Precheck
                | Phase::Draining
                | Phase::Fencing
                | Phase::CatchingUp
                | Phase::Promoting
                | Phase::RollingBack
        )
    }

    /// Whether the gate is closed (applications wait) in this phase.
    pub fn pauses_traffic(self) -> bool {
        matches!(
            self,
            Phase::Draining
                | Phase::Fencing
                | Phase::CatchingUp
                | Phase::Promoting
                | Phase::Retargeting
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_path_reaches_done() {
        let mut p = Phase::Idle;
        let mut seen = vec![p];
        while p != Phase::Done {
            p = p.next();
            seen.push(p);
        }
        assert_eq!(seen.len(), 8);
        assert_eq!(Phase::Done.next(), Phase::Idle);
    }

    #[test]
    fn failures_roll_back_before_promotion_and_forward_after() {
        for p in [
            Phase::Precheck,
            Phase::Draining,
            Phase::Fencing,
            Phase::CatchingUp,
            Phase::Promoting,
        ] {
            assert_eq!(p.on_failure(), Phase::RollingBack, "{p:?}");
        }
        assert_eq!(Phase::Retargeting.on_failure(), Phase::Done);
        assert_eq!(Phase::RollingBack.next(), Phase::Idle);
    }

    #[test]
    fn a_journal_needs_a_rollback_exactly_where_a_failure_rolls_back() {
        let all = [
            Phase::Idle,
            Phase::Precheck,
            Phase::Draining,
            Phase::Fencing,
            Phase::CatchingUp,
            Phase::Promoting,
            Phase::Retargeting,
            Phase::Done,
            Phase::RollingBack,
        ];
        for p in all {
            let rolls_back = p == Phase::RollingBack
                || (p != Phase::Idle && p.on_failure() == Phase::RollingBack);
            assert_eq!(p.needs_rollback(), rolls_back, "{p:?}");
        }
    }
}
