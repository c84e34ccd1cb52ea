//! The switchover: the pause gate, the phases of the state machine, the orchestrator,
//! the guardrails and the journal.

pub mod gate;
pub mod journal;
pub mod phase;
