//! Startup: where to route, from the journal and from the servers themselves.
//!
//! 1. The journal names the active side and how far the last switchover got. One cut
//!    short before its point of no return (or while rolling back) is rolled back by
//!    [`Repair`]: the standby not promoted, the old primary writable again once the
//!    fence's connection is gone — retried in the background until the servers
//!    confirm. One past it is rolled forward.
//! 2. Then `read_only` is read on both sides: sessions go only to the side that is the
//!    one writable primary. If the journal's side is read-only and the other side is
//!    the writable one, the proxy follows the servers; if both or neither are writable
//!    it refuses clients (ERR 1290-style message) and re-checks every few seconds.

use std::sync::Arc;
use std::time::Duration;

use crate::control::Control;
use crate::switchover::Switchover;
use crate::topology::{Side, Target};
use tokio::time::Instant;

use crate::switchover::journal::{self, Journal};
use crate::switchover::phase::OnRestart;
use crate::switchover::repair::{self, Repair};

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Applies the journal, then decides where to route. Never fails: problems are logged
/// and, when routing would be unsafe, clients are refused until it is safe.
pub async fn recover(shared: &Arc<Switchover>) {
    let config = shared.topology.config.load_full();
    let journal = match config.proxy.state_file.as_deref().map(journal::load) {
        Some(Ok(Some(j))) => Some(j),
        Some(Ok(None)) | None => None,
        Some(Err(e)) => {
            tracing::error!("cannot read the state file: {e}; assuming blue is active");
            None
        }
    };
    let mut active = journal.as_ref().map_or(Side::Blue, |j| j.active);
    if let Some(j) = &journal {
        match j.phase.on_restart() {
            OnRestart::Nothing => {}
            OnRestart::RollBack => repair(shared, j).await,
            OnRestart::RollForward => {
                active = j.active;
                roll_forward(shared, j).await;
            }
        }
    }
    set_active(shared, active).await;
    decide(shared).await;
    if shared.topology.refusal.load().is_some() {
        let shared = shared.clone();
        tokio::spawn(async move {
            while shared.topology.refusal.load().is_some() {
                // A retry against the servers: they do not announce a change of
                // `read_only`, so they are asked again.
                tokio::time::sleep(Duration::from_secs(2)).await;
                decide(&shared).await;
            }
        });
    }
}

async fn set_active(shared: &Switchover, side: Side) {
    if let Some(address) = shared.topology.address_of(side) {
        let epoch = shared.topology.target.load().epoch + 1;
        shared.topology.retarget(Target {
            side,
            address,
            epoch,
        });
    }
    // A rollback still being repaired keeps its journal until the servers confirm.
    if shared.switch.repair_pending().is_some() {
        return;
    }
    let config = shared.topology.config.load_full();
    if let Some(path) = &config.proxy.state_file {
        journal::write_or_log(path, &Journal::new(side)).await;
    }
}

/// Finishes the rollback of a switchover cut short before its point of no return:
/// one attempt now, then in the background until the servers confirm.
async fn repair(shared: &Arc<Switchover>, j: &Journal) {
    let Some(plan) = Repair::from_journal(shared, j) else {
        return;
    };
    tracing::warn!(
        phase = j.phase.name(),
        "the last switchover was cut short before its point of no return; rolling it back"
    );
    let config = shared.topology.config.load_full();
    match plan.until(&config, Instant::now() + CHECK_TIMEOUT).await {
        Ok(()) => {
            tracing::info!("rolled back: {} is writable again", plan.old);
            repair::finished(shared, plan.active).await;
        }
        Err(why) => repair::spawn(shared.clone(), plan, why),
    }
}

/// Finishes a switchover cut short after its point of no return: what it does once
/// the gate is open (the new primary forgets its source; the old one, still fenced,
/// replicates from it — the way back). Each step is skipped when already done.
async fn roll_forward(shared: &Switchover, j: &Journal) {
    let config = shared.topology.config.load_full();
    let (Some(control), Some(new), Some(old)) = (
        config.control.clone(),
        shared.topology.address_of(j.active),
        shared.topology.address_of(j.active.other()),
    ) else {
        return;
    };
    tracing::warn!(
        phase = j.phase.name(),
        "the last switchover was cut short after its point of no return; finishing it"
    );
    match Control::connect_with(&config, &control, &new, CHECK_TIMEOUT).await {
        Ok(mut c) => {
            if let Ok(Some(_)) = c.replica_status().await {
                if let Err(e) = c.reset_replica_all().await {
                    tracing::warn!("forgetting the new primary's source: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("cannot reach the new primary {new}: {e}"),
    }
    if config.switchover.reverse_replication {
        let repl = config.replication.clone().unwrap_or(control.clone());
        let follow = async {
            let mut c = Control::connect_with(&config, &control, &old, CHECK_TIMEOUT).await?;
            c.set_read_only(true, CHECK_TIMEOUT).await?;
            match c.replica_status().await? {
                Some(r) if r.replicates_from(&new) && r.is_running() => Ok(()),
                _ => {
                    c.replicate_from(&new, &repl.user, repl.password(), config.tls_to(&new))
                        .await
                }
            }
        };
        if let Err(e) = follow.await {
            tracing::error!("the old primary {old} cannot replicate from {new}: {e}");
        }
    }
    repair::finished(shared, j.active).await;
}

/// Reads `read_only` on both sides and routes to the one writable primary.
async fn decide(shared: &Switchover) {
    let config = shared.topology.config.load_full();
    let Some(control) = config.control.clone() else {
        shared.topology.refusal.store(Arc::new(None));
        return;
    };
    let active = shared.topology.target.load().side;
    let writable = |side: Side| {
        let control = control.clone();
        let config = config.clone();
        let address = shared.topology.address_of(side);
        async move {
            let address = address?;
            let mut c = Control::connect_with(&config, &control, &address, CHECK_TIMEOUT)
                .await
                .ok()?;
            c.read_only().await.ok().map(|ro| !ro)
        }
    };
    let this = writable(active).await;
    let other = if shared.topology.address_of(active.other()).is_some() {
        writable(active.other()).await
    } else {
        Some(false)
    };
    let refusal = match (this, other) {
        (Some(true), Some(false)) | (Some(true), None) => None,
        (Some(false), Some(true)) => {
            tracing::warn!(
                "{} is read-only and {} is writable: routing to {}",
                active.name(),
                active.other().name(),
                active.other().name()
            );
            set_active(shared, active.other()).await;
            None
        }
        (Some(true), Some(true)) => Some(
            "both blue and green are writable: refusing to route until one is read-only"
                .to_string(),
        ),
        (Some(false), _) => Some(format!(
            "{} (the active side) is read-only: it is not the primary",
            active.name()
        )),
        (None, _) => None, // unreachable now: sessions get the connect error of their own
    };
    if let Some(r) = &refusal {
        tracing::error!("{r}");
    } else if shared.topology.refusal.load().is_some() {
        tracing::info!(
            "routing again to {}",
            shared.topology.target.load().side.name()
        );
    }
    shared.topology.refusal.store(Arc::new(refusal));
}
