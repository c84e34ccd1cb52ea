//! Finishing a rollback: the old primary writable again and the standby not promoted —
//! confirmed by the servers, not assumed from what was sent.
//!
//! A statement that timed out may still run later: a fence sent to a frozen primary
//! lands when it wakes, after the rollback's `read_only=OFF`, and would leave both
//! sides read-only. So the repair first kills the connection that sent the fence (and
//! waits until it has left the process list: from then on nothing can set the fence),
//! then turns the fence off and reads `read_only` back. Promotion is undone the same
//! way, and before the old side is made writable: never two writable sides.
//!
//! The orchestrator runs a repair while the gate is still closed (until `max_pause`);
//! if the servers do not answer by then, [`spawn`] keeps at it in the background — and
//! a restarted proxy does the same from the journal — until both servers confirm.
//! Until then `status` says so and a new switchover is refused.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, ControlConfig};
use crate::control::Control;
use crate::proxy::registry::lock;
use crate::switchover::error::RepairError;
use crate::switchover::journal::{self, Journal};
use crate::switchover::phase::OnRestart;
use crate::switchover::Switchover;
use crate::topology::Side;

/// Pause between attempts while a server does not answer: a genuine retry interval
/// against a server that cannot tell us when it is back.
const RETRY: Duration = Duration::from_millis(200);
/// Bound of one attempt's connects and statements.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// What a cut-short switchover may have changed, and so what to undo.
#[derive(Debug, Clone)]
pub struct Repair {
    /// The side that stays (or becomes again) the primary.
    pub active: Side,
    pub old: String,
    /// The fence was sent to `old`, by this connection if known.
    pub fenced: bool,
    pub fence_conn: Option<u64>,
    pub new: String,
    /// Promotion began on `new` (replication stopped; `read_only=OFF` possibly sent, by
    /// this connection if known).
    pub promoting: bool,
    pub promote_conn: Option<u64>,
}

impl Repair {
    /// The repair a journal asks for, if any.
    pub fn from_journal(shared: &Switchover, j: &Journal) -> Option<Repair> {
        if j.phase.on_restart() != OnRestart::RollBack || !(j.fenced || j.promoting) {
            return None;
        }
        Some(Repair {
            active: j.active,
            old: shared.topology.address_of(j.active)?,
            fenced: j.fenced,
            fence_conn: j.fence_conn,
            new: shared.topology.address_of(j.active.other())?,
            promoting: j.promoting,
            promote_conn: j.promote_conn,
        })
    }

    /// One attempt at the whole repair; `Err` says what is not confirmed yet.
    pub async fn attempt(&self, config: &Config) -> Result<(), RepairError> {
        let control = config.control.clone().ok_or(RepairError::NoControl)?;
        // 1. The standby is not (and will not become) writable.
        if self.promoting {
            let mut new = settle(config, &self.new, &control, self.promote_conn, true).await?;
            let replica = new.replica_status().await?;
            let follows = match replica {
                Some(r) if r.is_running() => Ok(()),
                Some(_) => new.start_replication().await,
                None => {
                    let repl = config.replication.clone().unwrap_or(control.clone());
                    let tls = config.tls_to(&self.old);
                    new.replicate_from(&self.old, &repl.user, repl.password(), tls)
                        .await
                }
            };
            // A standby that does not replicate is for `check` to report; it does not
            // stop the old primary from taking writes again.
            if let Err(e) = follows {
                tracing::warn!("the standby {} does not replicate again: {e}", self.new);
            }
        }
        // 2. The old primary writable again, once the fence cannot land any more.
        if self.fenced {
            settle(config, &self.old, &control, self.fence_conn, false).await?;
        }
        Ok(())
    }

    /// Attempts until one succeeds or `deadline` passes (then the last reason).
    pub async fn until(&self, config: &Config, deadline: Instant) -> Result<(), RepairError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reason = match tokio::time::timeout(left, self.attempt(config)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(reason)) => reason,
                Err(_) => RepairError::NoAnswer,
            };
            if Instant::now() + RETRY >= deadline {
                return Err(reason);
            }
            tracing::debug!("rollback not confirmed yet: {reason}");
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Sets `read_only` on `address` to `read_only` and reads it back, after killing
/// `sender` (the connection that sent the opposite, which may still land). Returns the
/// connection for more.
async fn settle(
    config: &Config,
    address: &str,
    control: &ControlConfig,
    sender: Option<u64>,
    read_only: bool,
) -> Result<Control, RepairError> {
    let mut c = Control::connect_with(config, control, address, ATTEMPT_TIMEOUT).await?;
    if let Some(id) = sender {
        kill_ours(&mut c, id, &control.user).await?;
    }
    c.set_read_only(read_only, ATTEMPT_TIMEOUT)
        .await
        .map_err(|source| RepairError::SetReadOnly {
            address: address.to_string(),
            read_only,
            source,
        })?;
    if c.read_only().await? != read_only {
        return Err(RepairError::NotYet {
            address: address.to_string(),
            read_only,
        });
    }
    Ok(c)
}

/// Kills connection `id` if it is still there and still the control account's: after a
/// server restart the id may name someone else's connection, which is left alone (the
/// restart ended ours, and with it anything it had queued).
async fn kill_ours(c: &mut Control, id: u64, user: &str) -> Result<(), RepairError> {
    let connections = c.connections().await?;
    if connections
        .iter()
        .any(|conn| conn.id == id && conn.user == user)
    {
        c.kill_connection(id).await?;
    }
    Ok(())
}

/// Keeps repairing in the background until the servers confirm, then records the
/// rollback as finished (journal and `status`). At most one runs at a time. `status`
/// shows the latest reason as text.
pub fn spawn(shared: Arc<Switchover>, repair: Repair, reason: RepairError) {
    let reason = reason.to_string();
    {
        let mut pending = lock(&shared.switch.repair);
        if pending.is_some() {
            return;
        }
        *pending = Some(reason.clone());
    }
    tracing::error!("the rollback is not finished ({reason}); retrying until the servers confirm");
    tokio::spawn(async move {
        let mut last = reason;
        loop {
            let config = shared.topology.config.load_full();
            match repair.attempt(&config).await {
                Ok(()) => break,
                Err(reason) => {
                    let reason = reason.to_string();
                    if reason != last {
                        tracing::warn!("rollback still not confirmed: {reason}");
                        *lock(&shared.switch.repair) = Some(reason.clone());
                        last = reason;
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
        finished(&shared, repair.active).await;
        *lock(&shared.switch.repair) = None;
        tracing::info!(
            "rollback finished: {} is writable again and {} is not promoted",
            repair.old,
            repair.new
        );
    });
}

/// Records in the journal that `active` is the confirmed primary and nothing is left
/// to undo.
pub async fn finished(shared: &Switchover, active: Side) {
    let config = shared.topology.config.load_full();
    if let Some(path) = &config.proxy.state_file {
        journal::write_or_log(path, &Journal::new(active)).await;
    }
}
