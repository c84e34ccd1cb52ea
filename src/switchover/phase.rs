//! The switchover's phases (DESIGN §3): their order, which ones hold traffic at the
//! closed gate, where the point of no return lies, and what a restarted proxy does with
//! a journal left in each. The orchestrator and recovery ask here; nothing else
//! restates it.
//!
//! ```text
//! Idle → Precheck → Draining → Fencing → CatchingUp → Promoting ─(point of no return)→ Retargeting → Done → Idle
//!                       └──── any failure or timeout under the gate ──→ RollingBack → Idle (still on the old side)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
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

/// What a restarted proxy does with a journal left in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRestart {
    /// Nothing was cut short.
    Nothing,
    /// Cut short before the point of no return (or while rolling back): finish the
    /// rollback — whatever the journal says was fenced or promoted is undone.
    RollBack,
    /// Cut short after it: the new side is the primary; finish what follows the pause.
    RollForward,
}

/// One row of the table below.
struct Row {
    phase: Phase,
    name: &'static str,
    /// The gate is closed: applications wait.
    pauses_traffic: bool,
    on_restart: OnRestart,
}

const fn row(phase: Phase, name: &'static str, pauses: bool, on_restart: OnRestart) -> Row {
    Row {
        phase,
        name,
        pauses_traffic: pauses,
        on_restart,
    }
}

/// Every phase, in the order of a successful switchover, then the rollback. The rollback
/// holds traffic too: the gate opens only once the old primary is confirmed writable
/// again (or `max_pause` has passed).
const TABLE: [Row; 9] = [
    row(Phase::Idle, "idle", false, OnRestart::Nothing),
    row(Phase::Precheck, "precheck", false, OnRestart::RollBack),
    row(Phase::Draining, "draining", true, OnRestart::RollBack),
    row(Phase::Fencing, "fencing", true, OnRestart::RollBack),
    row(Phase::CatchingUp, "catching_up", true, OnRestart::RollBack),
    row(Phase::Promoting, "promoting", true, OnRestart::RollBack),
    row(
        Phase::Retargeting,
        "retargeting",
        true,
        OnRestart::RollForward,
    ),
    row(Phase::Done, "done", false, OnRestart::RollForward),
    row(
        Phase::RollingBack,
        "rolling_back",
        true,
        OnRestart::RollBack,
    ),
];

/// Every phase, in the table's order.
pub const ALL_PHASES: [Phase; 9] = [
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

/// The first phase past the point of no return: entering it, the new side is the
/// primary (promotion made it writable; going back would lose writes).
const POINT_OF_NO_RETURN: Phase = Phase::Retargeting;

impl Phase {
    fn row(self) -> &'static Row {
        // The table lists the variants in declaration order.
        &TABLE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The phase that follows on success (`Done` and `RollingBack` end in `Idle`).
    pub fn next(self) -> Phase {
        match self {
            Phase::Done | Phase::RollingBack => Phase::Idle,
            // The successful path is the table's order up to `Done`.
            _ => TABLE[self as usize + 1].phase,
        }
    }

    /// Whether this phase is after the point of no return: failures roll forward, and
    /// the journal names the new side as the active one.
    pub fn past_point_of_no_return(self) -> bool {
        // The rollback comes after `Done` in the table but is not on the way forward.
        self != Phase::RollingBack && self as usize >= POINT_OF_NO_RETURN as usize
    }

    /// What a failure in this phase leads to: nothing to undo in the precheck; under
    /// the gate, a rollback; past the point of no return, the switchover goes on.
    pub fn on_failure(self) -> Phase {
        match self {
            Phase::Idle | Phase::Precheck => Phase::Idle,
            _ if self.past_point_of_no_return() => self.next(),
            _ => Phase::RollingBack,
        }
    }

    /// Whether a switchover in this phase may move to `to`.
    pub fn leads_to(self, to: Phase) -> bool {
        to == self.next() || to == self.on_failure()
    }

    /// Whether the gate is closed (applications wait) in this phase.
    pub fn pauses_traffic(self) -> bool {
        self.row().pauses_traffic
    }

    /// What a restarted proxy does with a journal left in this phase.
    pub fn on_restart(self) -> OnRestart {
        self.row().on_restart
    }
}

/// The phase now, and every phase the current (or last) switchover entered, in order:
/// what `status` shows and what observers subscribe to. A subscriber that wakes late
/// still sees each phase in `trail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phases {
    pub now: Phase,
    pub trail: Vec<Phase>,
}

impl Phases {
    /// Moves to `phase`; a new switchover (its precheck) starts a new trail.
    pub fn enter(&mut self, phase: Phase) {
        if phase == Phase::Precheck {
            self.trail.clear();
        }
        self.now = phase;
        self.trail.push(phase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    /// Every phase, from the table (whose order the first test checks).
    fn all() -> impl Iterator<Item = Phase> {
        TABLE.iter().map(|r| r.phase)
    }

    #[test]
    fn the_table_is_in_declaration_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.phase as usize, i, "{:?}", row.phase);
            assert_eq!(ALL_PHASES[i], row.phase);
            assert_eq!(row.phase.row().phase, row.phase);
        }
        assert_eq!(CatchingUp.name(), "catching_up");
        assert_eq!(RollingBack.name(), "rolling_back");
    }

    #[test]
    fn success_path_in_order_back_to_idle() {
        let mut p = Idle;
        let mut seen = vec![p];
        loop {
            p = p.next();
            seen.push(p);
            if p == Idle {
                break;
            }
        }
        let names: Vec<&str> = seen.iter().map(|p| p.name()).collect();
        assert_eq!(
            names.join(" → "),
            "idle → precheck → draining → fencing → catching_up → promoting → retargeting → done → idle"
        );
        assert_eq!(RollingBack.next(), Idle);
    }

    #[test]
    fn traffic_waits_from_draining_to_retargeting_and_while_rolling_back() {
        let pausing: Vec<Phase> = all().filter(|p| p.pauses_traffic()).collect();
        assert_eq!(
            pausing,
            [
                Draining,
                Fencing,
                CatchingUp,
                Promoting,
                Retargeting,
                RollingBack
            ]
        );
    }

    #[test]
    fn point_of_no_return_is_between_promoting_and_retargeting() {
        let past: Vec<Phase> = all().filter(|p| p.past_point_of_no_return()).collect();
        assert_eq!(past, [Retargeting, Done]);
        for p in [Draining, Fencing, CatchingUp, Promoting] {
            assert_eq!(p.on_failure(), RollingBack, "{p:?}");
            assert!(p.leads_to(RollingBack) && p.leads_to(p.next()), "{p:?}");
        }
        assert_eq!(Precheck.on_failure(), Idle);
        assert_eq!(Retargeting.on_failure(), Done);
        assert!(!Retargeting.leads_to(RollingBack));
        assert!(!Done.leads_to(RollingBack));
        assert!(!Precheck.leads_to(Fencing));
    }

    #[test]
    fn a_restart_rolls_back_before_the_point_of_no_return_and_forward_after() {
        for p in all() {
            let expected = match p {
                Idle => OnRestart::Nothing,
                Retargeting | Done => OnRestart::RollForward,
                _ => OnRestart::RollBack,
            };
            assert_eq!(p.on_restart(), expected, "{p:?}");
            // A journal rolls back exactly where a failure under the gate does.
            if p.pauses_traffic() && p != RollingBack {
                assert_eq!(
                    p.on_restart() == OnRestart::RollBack,
                    p.on_failure() == RollingBack,
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn the_trail_starts_again_at_each_precheck() {
        let mut phases = Phases::default();
        for p in [Precheck, Draining, RollingBack, Idle] {
            phases.enter(p);
        }
        assert_eq!(phases.trail, [Precheck, Draining, RollingBack, Idle]);
        phases.enter(Precheck);
        assert_eq!(phases.now, Precheck);
        assert_eq!(phases.trail, [Precheck]);
    }
}
