//! The switchover: the phases of the state machine (`phase`: their order, which hold
//! traffic, the point of no return), the orchestrator that runs them, the guardrails,
//! why a step or a rollback failed (`error`), the journal, and the repair and recovery
//! that finish or undo an interrupted one; what a finished one leaves behind (`outcome`:
//! metrics, `history`, trace); the background `health` poll; `failpoint` is a test hook.
//!
//! It sits above the proxy: it holds the gate and moves sessions through the small
//! interface [`Proxy`] offers (pre-opened connections, the capability check, the
//! session registry), and moves the routing state in [`Topology`].

pub mod error;
pub mod failpoint;
pub mod guardrails;
pub mod health;
pub mod history;
pub mod journal;
pub mod orchestrator;
pub mod outcome;
pub mod phase;
pub mod recovery;
pub mod repair;

use std::sync::Arc;

use crate::proxy::Proxy;
use crate::topology::Topology;
use history::History;
use orchestrator::SwitchState;

/// What the switchover works on: the routing state, the proxy, and its own state
/// (the running lock, the published phase, the last report, a pending repair).
pub struct Switchover {
    pub topology: Arc<Topology>,
    pub proxy: Arc<Proxy>,
    pub switch: SwitchState,
    /// Past switchovers, for `history`.
    pub history: History,
}

impl Switchover {
    pub fn new(proxy: Arc<Proxy>) -> Self {
        let history = History::open(proxy.topology.config.load().proxy.state_file.as_deref());
        outcome::register(&proxy.topology);
        Switchover {
            topology: proxy.topology.clone(),
            proxy,
            switch: SwitchState::default(),
            history,
        }
    }
}
