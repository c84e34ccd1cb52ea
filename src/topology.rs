//! Topology: the two sides, where sessions are routed now, and the config in force —
//! the routing state every layer above reads (proxy, switchover, admin).
//!
//! It is written in two places only: the switchover's retarget (and recovery at start)
//! moves [`Topology::target`], and `reload` swaps [`Topology::config`]. Everything else
//! loads snapshots (`ArcSwap`), so readers never wait.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::Config;

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Blue,
    Green,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Blue => Side::Green,
            Side::Green => Side::Blue,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Blue => "blue",
            Side::Green => "green",
        }
    }
}

/// Where sessions are routed. Swapped atomically at the retarget; a session whose
/// backend belongs to an older epoch moves at its next transaction boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub side: Side,
    pub address: String,
    pub epoch: u64,
}

/// The routing state shared by every layer.
pub struct Topology {
    pub config: ArcSwap<Config>,
    /// The file the config came from (for `reload`).
    pub config_path: Option<PathBuf>,
    pub target: ArcSwap<Target>,
    /// Announces each new target epoch to idle sessions.
    pub retargets: watch::Sender<u64>,
    /// Why clients are refused right now (the active side is not the one writable
    /// primary), if they are.
    pub refusal: ArcSwap<Option<String>>,
}

impl Topology {
    /// Blue is active until recovery says otherwise.
    pub fn new(config: Config, config_path: Option<PathBuf>) -> Self {
        let target = Target {
            side: Side::Blue,
            address: config.blue.address.clone(),
            epoch: 0,
        };
        Topology {
            config: ArcSwap::from_pointee(config),
            config_path,
            target: ArcSwap::from_pointee(target),
            retargets: watch::Sender::new(0),
            refusal: ArcSwap::from_pointee(None),
        }
    }

    /// The backend sessions are routed to.
    pub fn active_address(&self) -> String {
        self.target.load().address.clone()
    }

    /// Routes new commands to `target` from now on and wakes idle sessions to move.
    pub fn retarget(&self, target: Target) {
        let epoch = target.epoch;
        self.target.store(Arc::new(target));
        self.retargets.send_replace(epoch);
    }

    /// The address of a side in the current config.
    pub fn address_of(&self, side: Side) -> Option<String> {
        let config = self.config.load();
        match side {
            Side::Blue => Some(config.blue.address.clone()),
            Side::Green => config.green.as_ref().map(|g| g.address.clone()),
        }
    }
}
