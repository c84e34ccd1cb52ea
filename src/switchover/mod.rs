//! The switchover: the phases of the state machine (`phase`: their order, which hold
//! traffic, the point of no return), the orchestrator that runs them, the guardrails,
//! why a step or a rollback failed (`error`), the journal, and the repair and recovery
//! that finish or undo an interrupted one; `failpoint` is a test hook.
//!
//! It sits above the proxy: it holds the gate and moves sessions through the small
//! interface [`Proxy`] offers (pre-opened connections, the capability check, the
//! session registry), and moves the routing state in [`Topology`].

pub mod error;
pub mod failpoint;
pub mod guardrails;
pub mod journal;
pub mod orchestrator;
pub mod phase;
pub mod recovery;
pub mod repair;

use std::sync::Arc;

use crate::proxy::Proxy;
use crate::topology::Topology;
use orchestrator::SwitchState;

/// What the switchover works on: the routing state, the proxy, and its own state
/// (the running lock, the published phase, the last report, a pending repair).
pub struct Switchover {
    pub topology: Arc<Topology>,
    pub proxy: Arc<Proxy>,
    pub switch: SwitchState,
}

impl Switchover {
    pub fn new(proxy: Arc<Proxy>) -> Self {
        Switchover {
            topology: proxy.topology.clone(),
            proxy,
            switch: SwitchState::default(),
        }
    }
}
