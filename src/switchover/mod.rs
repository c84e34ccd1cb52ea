//! The switchover: the pause gate, the phases of the state machine, the orchestrator,
//! the guardrails and the journal.

pub mod commands;
pub mod failpoint;
pub mod gate;
pub mod guardrails;
pub mod journal;
pub mod orchestrator;
pub mod phase;
pub mod recovery;
pub mod repair;
