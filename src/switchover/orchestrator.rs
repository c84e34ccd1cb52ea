//! The switchover state machine (DESIGN §3), run by `switchyard ctl switchover`: [`run`]
//! and its [`Report`], the [`SwitchoverError`] it ends with, and the [`SwitchState`]
//! that `status` reads (the running lock, the phase published on a watch channel, the
//! last report, a pending repair).
//!
//! Order matters; the steps are numbered in [`run`]. Which phases close the gate and
//! where the point of no return lies is [`phase`](super::phase)'s to say: `Run::enter`
//! asks it as each phase begins. Before the new side is made writable (the *point of no
//! return*), any failure, timeout or error rolls back: the old primary is made writable
//! again — confirmed by the server — and only then does the gate open, so no held
//! session meets a read-only server. After it, failures roll forward.
//!
//! Bounds: the gate is closed by a guard with its own deadline, `max_pause`, that lets
//! go whatever a server or a control statement does; the steps under it stop early
//! enough to leave the rollback a reserve of that budget. A rollback the servers do not
//! confirm by the deadline goes on in the background ([`repair`]).
//!
//! One owner of the gate at a time: a switchover is refused while the gate is paused by
//! hand, and `pause` is refused while a switchover runs.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{BypassWriters, Config, OnPinned};
use crate::control::Control;
use crate::proxy::gate::Closed;
use crate::proxy::registry::lock;
use crate::switchover::error::{RepairError, StepError};
use crate::switchover::failpoint;
use crate::switchover::guardrails::{self, bypassing_writers, Check};
use crate::switchover::journal::{self, Journal};
use crate::switchover::outcome;
use crate::switchover::phase::{Phase, Phases};
use crate::switchover::repair::{self, Repair};
use crate::switchover::Switchover;
use crate::topology::{Side, Target};

/// What `switchover` may override from the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub timeout: Option<Duration>,
    pub drain_timeout: Option<Duration>,
}

/// How a switchover ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchResult {
    Ok,
    /// The guardrails said no; nothing was touched.
    Refused,
    /// It failed before the point of no return and the old side stayed the primary.
    RolledBack,
}

impl SwitchResult {
    pub const ALL: [SwitchResult; 3] = [
        SwitchResult::Ok,
        SwitchResult::Refused,
        SwitchResult::RolledBack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SwitchResult::Ok => "ok",
            SwitchResult::Refused => "refused",
            SwitchResult::RolledBack => "rolled_back",
        }
    }
}

/// The result of a switchover, kept for `status`; the one record its metrics, history
/// entry and trace are made from (`outcome`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: Side,
    pub to: Side,
    pub ok: bool,
    pub result: SwitchResult,
    /// Wall-clock start (the precheck began), Unix time in ms.
    pub started_unix_ms: u64,
    /// The precheck's guardrail verdicts.
    pub checks: Vec<Check>,
    /// Why it rolled back, if it did.
    pub error: Option<String>,
    /// Each phase reached and how long it took, in ms, in order and back to back from
    /// the start; the last phase entered (`final_phase`) is not listed and lasts until
    /// `total_ms`.
    pub phases: Vec<(Phase, f64)>,
    /// The last phase entered: done, rolling_back, or the one a refusal stopped in.
    pub final_phase: Phase,
    pub fence_gtid: Option<String>,
    /// The position the standby was proven to have applied (the wait for the fence
    /// GTID returned).
    pub standby_reached_gtid: Option<String>,
    /// Time the gate was closed (applications waited), ms.
    pub pause_ms: f64,
    /// Longest time one command waited at the gate, ms.
    pub max_hold_ms: f64,
    pub held_commands: u64,
    pub sessions: usize,
    pub preopened: usize,
    /// Time spent pre-opening them (part of the precheck, traffic flowing), ms.
    pub preopen_ms: f64,
    pub total_ms: f64,
    /// Time spent after the pause resetting the new primary's replication and making
    /// the old primary its replica, ms.
    pub reverse_replication_ms: f64,
    /// The old primary could not be made a replica of the new one.
    pub reverse_replication_error: Option<String>,
}

impl Report {
    /// `precheck 12.8ms, draining 6.1ms, …`
    pub fn phases_summary(&self) -> String {
        self.phases
            .iter()
            .map(|(p, ms)| format!("{} {ms:.1}ms", p.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    #[error("a switchover is already running")]
    Busy,
    #[error("the gate is paused by hand: `resume` first, then switch over")]
    PausedByHand,
    #[error("the last rollback is not finished ({0}): it is retried until the servers confirm; switch over after that")]
    RepairPending(String),
    #[error("refused by the guardrails")]
    Refused(Vec<Check>),
    #[error("no standby: [green] is not configured")]
    NoStandby,
    #[error("no [control] account is configured")]
    NoControl,
    #[error("rolled back in phase {}: {reason}{}", .phase.name(), unfinished_note(.unfinished))]
    RolledBack {
        phase: Phase,
        reason: StepError,
        report: Box<Report>,
        /// The servers had not confirmed the rollback when the gate opened: why.
        unfinished: Option<String>,
    },
}

fn unfinished_note(unfinished: &Option<String>) -> String {
    unfinished
        .as_ref()
        .map(|why| {
            format!("; the rollback is not confirmed yet ({why}) and is retried in the background")
        })
        .unwrap_or_default()
}

/// The switchover's live state, shown by `status`.
pub struct SwitchState {
    running: tokio::sync::Mutex<()>,
    /// The phase now and the phases the current (or last) switchover entered.
    phase: watch::Sender<Phases>,
    pub last: std::sync::Mutex<Option<Report>>,
    /// A rollback the servers have not confirmed yet: what is still wrong.
    pub repair: std::sync::Mutex<Option<String>>,
    /// Who probes the servers: switchovers and `check` share it, a background health
    /// round takes it alone. The control account may write past `read_only`, so the
    /// poll's own connections to the primary would look like writers bypassing the
    /// proxy to a guardrail running at the same time.
    probes: tokio::sync::RwLock<()>,
}

impl Default for SwitchState {
    fn default() -> Self {
        SwitchState {
            running: tokio::sync::Mutex::new(()),
            phase: watch::Sender::new(Phases::default()),
            last: std::sync::Mutex::new(None),
            repair: std::sync::Mutex::new(None),
            probes: tokio::sync::RwLock::new(()),
        }
    }
}

impl SwitchState {
    pub fn phase(&self) -> Phase {
        self.phase.borrow().now
    }

    /// Each phase as the switchover enters it. A receiver that is slow to look still
    /// finds every phase of the current switchover in [`Phases::trail`].
    pub fn subscribe(&self) -> watch::Receiver<Phases> {
        self.phase.subscribe()
    }

    fn publish(&self, phase: Phase) {
        outcome::phase_gauge(phase);
        self.phase.send_modify(|phases| phases.enter(phase));
    }

    /// Waits until no switchover is running.
    pub async fn wait_idle(&self) {
        drop(self.running.lock().await);
    }

    /// Runs `f` unless a switchover is running (then `None`): `pause` takes the gate
    /// only while no switchover owns it.
    pub fn unless_running<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        let _running = self.running.try_lock().ok()?;
        Some(f())
    }

    /// For a switchover or `check`: waits for a background health round to end, and
    /// keeps the next one from starting until the guard is dropped.
    pub async fn probing(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.probes.read().await
    }

    /// For a background health round: `None` while a switchover or `check` runs.
    pub fn try_poll(&self) -> Option<tokio::sync::RwLockWriteGuard<'_, ()>> {
        self.probes.try_write().ok()
    }

    /// What is still wrong after a rollback, while it is being repaired.
    pub fn repair_pending(&self) -> Option<String> {
        lock(&self.repair).clone()
    }
}

/// Share of `max_pause` kept back for the rollback: the steps under the closed gate
/// stop this much before the gate's own deadline.
fn rollback_reserve(max_pause: Duration) -> Duration {
    (max_pause / 10).min(Duration::from_secs(2))
}

/// Progress lines go here as the switchover runs.
pub type Progress<'a> = &'a (dyn Fn(Phase, String) + Send + Sync);

struct Run<'a> {
    shared: &'a Arc<Switchover>,
    config: Arc<Config>,
    progress: Progress<'a>,
    report: Report,
    phase: Phase,
    phase_start: Instant,
    deadline: Instant,
    /// The side being switched to: the journal's active side from the point of no
    /// return on.
    to: Side,
    journal: Journal,
    writer: journal::Writer,
    /// The gate, closed while the phase pauses traffic.
    closed: Option<Closed>,
    /// When the gate closed (the pause began).
    pause_start: Instant,
}

impl Run<'_> {
    /// Moves to `phase`: its start is timed and published, the gate is closed or opened
    /// as the phase asks, the journal is durable, and a test's failpoint may stop it
    /// there.
    async fn enter(&mut self, phase: Phase, message: String) {
        debug_assert!(
            self.phase.leads_to(phase),
            "{:?} → {phase:?} is not a transition",
            self.phase
        );
        if phase.past_point_of_no_return() {
            self.journal.active = self.to;
        }
        self.mark(phase, message);
        self.hold_traffic(phase);
        self.write_journal().await;
        failpoint::reached(phase).await;
    }

    fn mark(&mut self, phase: Phase, message: String) {
        let now = Instant::now();
        if self.phase != Phase::Idle {
            let ms = (now - self.phase_start).as_secs_f64() * 1000.0;
            self.report.phases.push((self.phase, ms));
        }
        self.report.final_phase = phase;
        self.phase = phase;
        self.phase_start = now;
        self.shared.switch.publish(phase);
        tracing::info!(phase = phase.name(), "switchover: {message}");
        (self.progress)(phase, message);
    }

    /// Closes the gate (bounded by `max_pause`) if `phase` pauses traffic and it is
    /// open, opens it if `phase` does not and it is closed.
    fn hold_traffic(&mut self, phase: Phase) {
        let gate = &self.shared.proxy.gate;
        match (phase.pauses_traffic(), self.closed.is_some()) {
            (true, false) => {
                gate.reset_holds();
                self.pause_start = Instant::now();
                self.closed = Some(gate.close_for(self.config.switchover.max_pause.0));
            }
            (false, true) => {
                self.closed = None;
                self.report.pause_ms = self.pause_start.elapsed().as_secs_f64() * 1000.0;
            }
            _ => {}
        }
    }

    /// Whether the gate is still closed by this switchover (false once `max_pause`
    /// let it go).
    fn holds_gate(&self) -> bool {
        self.closed.as_ref().is_some_and(Closed::holds)
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The journal, durable before the phase goes on; written off the runtime's
    /// workers, which the held sessions are waiting for.
    async fn write_journal(&mut self) {
        self.journal.phase = self.phase;
        if let Some(path) = &self.config.proxy.state_file {
            self.writer.write_or_log(path, &self.journal).await;
        }
    }
}

/// Runs one switchover from the active side to the other.
pub async fn run(
    shared: &Arc<Switchover>,
    opts: Options,
    progress: Progress<'_>,
) -> Result<Report, SwitchoverError> {
    let Ok(_running) = shared.switch.running.try_lock() else {
        return Err(SwitchoverError::Busy);
    };
    if shared.proxy.gate.manually_paused() {
        return Err(SwitchoverError::PausedByHand);
    }
    if let Some(what) = shared.switch.repair_pending() {
        return Err(SwitchoverError::RepairPending(what));
    }
    let _probing = shared.switch.probing().await;
    let config = shared.topology.config.load_full();
    let from = shared.topology.target.load_full();
    let to_side = from.side.other();
    let to_address = shared
        .topology
        .address_of(to_side)
        .ok_or(SwitchoverError::NoStandby)?;
    let control = config.control.clone().ok_or(SwitchoverError::NoControl)?;
    let start = Instant::now();
    let timeout = opts.timeout.unwrap_or(config.switchover.timeout.0);
    let mut run = Run {
        shared,
        config: config.clone(),
        progress,
        report: Report {
            from: from.side,
            to: to_side,
            ok: false,
            result: SwitchResult::RolledBack,
            started_unix_ms: unix_ms(),
            checks: Vec::new(),
            error: None,
            phases: Vec::new(),
            final_phase: Phase::Idle,
            fence_gtid: None,
            standby_reached_gtid: None,
            pause_ms: 0.0,
            max_hold_ms: 0.0,
            held_commands: 0,
            sessions: shared.proxy.sessions.len(),
            preopened: 0,
            preopen_ms: 0.0,
            total_ms: 0.0,
            reverse_replication_ms: 0.0,
            reverse_replication_error: None,
        },
        phase: Phase::Idle,
        phase_start: start,
        deadline: start + timeout,
        to: to_side,
        journal: Journal::new(from.side),
        writer: journal::Writer::default(),
        closed: None,
        pause_start: start,
    };
    let result = switch(&mut run, &from, to_side, &to_address, &control, &opts).await;
    shared.switch.publish(Phase::Idle);
    run.report.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(()) => {
            run.report.ok = true;
            run.report.result = SwitchResult::Ok;
            *lock(&shared.switch.last) = Some(run.report.clone());
            outcome::record(shared, &run.report).await;
            Ok(run.report)
        }
        Err(mut e) => {
            match &mut e {
                SwitchoverError::RolledBack { report, .. } => {
                    report.total_ms = run.report.total_ms;
                    *lock(&shared.switch.last) = Some((**report).clone());
                    outcome::record(shared, report).await;
                }
                SwitchoverError::Refused(checks) => {
                    run.report.result = SwitchResult::Refused;
                    run.report.checks = checks.clone();
                    run.report.error = Some(refusal_reason(checks));
                    outcome::record(shared, &run.report).await;
                }
                _ => {}
            }
            Err(e)
        }
    }
}

/// `refused: standby_replicating (IO thread stopped…); replication_lag (…)`
fn refusal_reason(checks: &[Check]) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({})", c.name, c.reason))
        .collect();
    format!("refused: {}", failed.join("; "))
}

/// Now as Unix time in ms (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn switch(
    run: &mut Run<'_>,
    from: &Target,
    to_side: Side,
    to_address: &str,
    control: &crate::config::ControlConfig,
    opts: &Options,
) -> Result<(), SwitchoverError> {
    let sw = run.config.switchover.clone();
    let shared = run.shared.clone();
    let connect_timeout = run.config.proxy.connect_timeout.0;

    // 1. Precheck: nothing is touched yet.
    run.enter(
        Phase::Precheck,
        format!(
            "{} → {}: running the guardrails",
            from.side.name(),
            to_side.name()
        ),
    )
    .await;
    let checks = guardrails::run(&shared, &run.config, &from.address, to_address).await;
    run.report.checks = checks.clone();
    if checks.iter().any(|c| !c.ok) {
        return Err(SwitchoverError::Refused(checks));
    }
    let mut old = Control::connect_with(&run.config, control, &from.address, connect_timeout)
        .await
        .map_err(|e| rolled_back(run, e.into()))?;
    let mut new = Control::connect_with(&run.config, control, to_address, connect_timeout)
        .await
        .map_err(|e| rolled_back(run, e.into()))?;

    // While traffic still flows: a connection to the new side for every session, so
    // that the pause does not include logins. A session that has none by the retarget
    // (it arrived later, or the login failed) connects when it moves.
    let new_epoch = from.epoch + 1;
    (run.progress)(
        Phase::Precheck,
        format!(
            "pre-opening connections to {to_address} for {} sessions",
            shared.proxy.sessions.all().len()
        ),
    );
    // Paced, so it takes a while with many sessions; it stops starting logins in time
    // to leave the steps their whole pause budget before the switchover's deadline.
    let pre_open_started = Instant::now();
    let pre_open_until = run
        .deadline
        .checked_sub(sw.max_pause.0)
        .unwrap_or(pre_open_started);
    run.report.preopened = shared
        .proxy
        .pre_open(to_address, new_epoch, connect_timeout, pre_open_until)
        .await;
    run.report.preopen_ms = pre_open_started.elapsed().as_secs_f64() * 1000.0;

    // 2.–5. With the gate closed (entering Draining closes it): drain, fence, catch up,
    //       promote. Any failure there rolls back, and the rollback opens the gate. The
    //       steps' deadline is taken just before the gate closes, so they stop at least
    //       the rollback's reserve before the gate's own.
    let steps_deadline = (Instant::now()
        + sw.max_pause
            .0
            .saturating_sub(rollback_reserve(sw.max_pause.0)))
    .min(run.deadline);
    let steps = Steps { from, to_address };
    let outcome =
        tokio::time::timeout_at(steps_deadline, steps.run(run, &mut old, &mut new, opts)).await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(_) => {
            // A statement was cut off mid-way: neither connection can be trusted.
            old.forget_connection();
            new.forget_connection();
            Some(StepError::OutOfTime {
                phase: run.phase,
                max_pause: sw.max_pause.0,
                timeout: opts.timeout.unwrap_or(sw.timeout.0),
            })
        }
    };
    if let Some(reason) = failure {
        return Err(rollback(run, to_address, reason).await);
    }

    // 6. Retargeting, the first phase past the point of no return (the journal names
    //    the new side from here): one atomic swap; every session moves at its
    //    boundary.
    run.enter(
        Phase::Retargeting,
        format!("routing every session to {to_address}"),
    )
    .await;
    shared.topology.retarget(Target {
        side: to_side,
        address: to_address.to_string(),
        epoch: new_epoch,
    });
    // Done does not pause traffic: the gate opens as it begins.
    run.hold_traffic(Phase::Done);
    run.journal.fenced = false;
    run.journal.fence_conn = None;
    run.journal.promoting = false;
    run.journal.promote_conn = None;
    run.enter(
        Phase::Done,
        format!(
            "{} is the primary; gate open after {:.1} ms",
            to_side.name(),
            run.report.pause_ms
        ),
    )
    .await;

    // 7. Outside the pause: the new primary forgets its old source, and (the way
    //    back) the fenced old primary follows the new one.
    let after = Instant::now();
    if let Err(e) = new.reset_replica_all().await {
        tracing::warn!("forgetting the new primary's source: {e}");
    }
    if sw.reverse_replication {
        let repl = run
            .config
            .replication
            .clone()
            .unwrap_or_else(|| control.clone());
        match old
            .replicate_from(
                to_address,
                &repl.user,
                repl.password(),
                run.config.source_tls(to_address).as_ref(),
            )
            .await
        {
            Ok(()) => (run.progress)(
                Phase::Done,
                format!("{} now replicates from {}", from.address, to_address),
            ),
            Err(e) => {
                tracing::error!("the old primary cannot replicate from the new one: {e}");
                run.report.reverse_replication_error = Some(e.to_string());
            }
        }
    }
    run.report.reverse_replication_ms = after.elapsed().as_secs_f64() * 1000.0;
    // Nothing is left for a restarted proxy to finish.
    repair::finished(run.shared, to_side).await;
    record_holds(run).await;
    Ok(())
}

/// Steps 2 to 5, run while the gate is closed.
struct Steps<'a> {
    from: &'a Target,
    to_address: &'a str,
}

impl Steps<'_> {
    async fn run(
        &self,
        run: &mut Run<'_>,
        old: &mut Control,
        new: &mut Control,
        opts: &Options,
    ) -> Result<(), StepError> {
        let sw = run.config.switchover.clone();
        let shared = run.shared.clone();
        let to_address = self.to_address;

        // 2. Draining: open transactions run to their end.
        let drain_timeout = opts.drain_timeout.unwrap_or(sw.drain_timeout.0);
        run.enter(
            Phase::Draining,
            format!("holding new commands; waiting up to {drain_timeout:?} for open transactions"),
        )
        .await;
        drain(&shared, drain_timeout.min(run.remaining()), sw.on_pinned).await?;

        // 3. Fencing: the old primary stops taking writes; its position must be stable.
        //    Journaled first, with the connection that sends it: from here a rollback
        //    must undo it, even if the statement lands late.
        old.ensure_connected().await?;
        run.journal.fenced = true;
        run.journal.fence_conn = old.connection_id();
        run.enter(
            Phase::Fencing,
            format!(
                "SET GLOBAL {}=ON on {}",
                old.flavor().dialect().fence_variable,
                self.from.address
            ),
        )
        .await;
        old.set_read_only(true, sw.fence_timeout.0.min(run.remaining()))
            .await
            .map_err(StepError::Fence)?;
        if sw.bypass_writers == BypassWriters::Kill {
            let list = bypassing_writers(&shared, old).await?;
            for (id, who) in list {
                tracing::warn!("killing connection {id} ({who}) that bypasses the proxy");
                let _ = old.kill_connection(id).await;
            }
        }
        let position = stable_position(old).await?;
        run.report.fence_gtid = Some(position.clone());
        run.journal.fence_gtid = Some(position.clone());

        // 4. CatchingUp: proof, not an estimate — the new side has applied `position`.
        let wait = sw
            .catchup_timeout
            .0
            .min(run.remaining())
            .min(sw.max_pause.0.saturating_sub(run.pause_start.elapsed()));
        run.enter(
            Phase::CatchingUp,
            format!(
                "{}('{position}') on {to_address}",
                new.flavor().dialect().wait_function
            ),
        )
        .await;
        match new.wait_for_gtids(&position, wait).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(StepError::CatchUpTimeout {
                    address: to_address.to_string(),
                    position,
                    wait,
                })
            }
            Err(e) => return Err(StepError::CatchUp(e)),
        }
        run.report.standby_reached_gtid = Some(position.clone());
        check_errant(old, new).await?;

        // 5. Promoting: the new side stops replicating and becomes writable. Only the
        //    threads stop inside the pause; forgetting the source waits until the gate
        //    is open.
        new.ensure_connected().await?;
        run.journal.promoting = true;
        run.journal.promote_conn = new.connection_id();
        run.enter(Phase::Promoting, format!("promoting {to_address}"))
            .await;
        new.stop_replica_threads()
            .await
            .map_err(StepError::StopReplication)?;
        new.set_read_only(false, sw.fence_timeout.0.min(run.remaining()))
            .await
            .map_err(StepError::Promote)?;
        Ok(())
    }
}

/// Once the gate is open: copies its hold statistics into the report after every held
/// session has passed (bounded, so a session the runtime is slow to wake cannot delay
/// the reply).
async fn record_holds(run: &mut Run<'_>) {
    let holds = run
        .shared
        .proxy
        .gate
        .holds_after_release(Duration::from_secs(1))
        .await;
    run.report.max_hold_ms = holds.longest.as_secs_f64() * 1000.0;
    run.report.held_commands = holds.commands;
}

/// A failure in the precheck, before anything was touched: nothing to undo.
fn rolled_back(run: &mut Run<'_>, reason: StepError) -> SwitchoverError {
    run.report.error = Some(reason.to_string());
    SwitchoverError::RolledBack {
        phase: run.phase,
        reason,
        report: Box::new(run.report.clone()),
        unfinished: None,
    }
}

/// Undoes what was done before the point of no return — the new side not promoted,
/// the old primary writable again, both confirmed by the servers — and only then lets
/// the gate open. If the servers do not confirm before the gate's deadline, the gate
/// opens anyway and the repair goes on in the background.
async fn rollback(run: &mut Run<'_>, to_address: &str, reason: StepError) -> SwitchoverError {
    let failed_in = run.phase;
    debug_assert_eq!(failed_in.on_failure(), Phase::RollingBack);
    run.report.error = Some(reason.to_string());
    run.enter(Phase::RollingBack, format!("rolling back: {reason}"))
        .await;
    run.shared.proxy.forget_pre_opened();
    let plan = Repair {
        active: run.journal.active,
        old: run.shared.topology.target.load().address.clone(),
        fenced: run.journal.fenced,
        fence_conn: run.journal.fence_conn,
        new: to_address.to_string(),
        promoting: run.journal.promoting,
        promote_conn: run.journal.promote_conn,
    };
    // The gate's deadline bounds the confirmed rollback; at least one attempt is made.
    let deadline = run.pause_start + run.config.switchover.max_pause.0;
    let confirmed = if run.holds_gate() {
        plan.until(&run.config, deadline).await
    } else {
        Err(RepairError::MaxPausePassed)
    };
    // The rollback ends in Idle, which does not pause traffic: the gate opens.
    run.hold_traffic(Phase::Idle);
    let unfinished = match confirmed {
        Ok(()) => {
            run.journal = Journal::new(plan.active);
            repair::finished(run.shared, plan.active).await;
            None
        }
        Err(why) => {
            let text = why.to_string();
            repair::spawn(run.shared.clone(), plan, why);
            Some(text)
        }
    };
    record_holds(run).await;
    run.phase = failed_in;
    SwitchoverError::RolledBack {
        phase: failed_in,
        reason,
        report: Box::new(run.report.clone()),
        unfinished,
    }
}

/// Waits until no session is inside a transaction or a command, and (with the abort
/// policy) none is pinned.
///
/// The drain itself is a notification: the gate wakes it when the last busy session
/// leaves. The pinned sessions are polled every [`PINNED_POLL`]: once drained, every
/// session is at a boundary and held by the gate, so a pin can only go away with its
/// session closing, and the session registry does not announce that.
async fn drain(
    shared: &Switchover,
    timeout: Duration,
    on_pinned: OnPinned,
) -> Result<(), StepError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !shared.proxy.gate.wait_drained(left).await {
            let open: Vec<u32> = shared
                .proxy
                .sessions
                .all()
                .iter()
                .filter(|s| s.summary().in_transaction)
                .map(|s| s.id)
                .collect();
            return Err(StepError::DrainTimeout { timeout, open });
        }
        let pinned = shared.proxy.sessions.pinned();
        if pinned.is_empty() || on_pinned == OnPinned::Close {
            if !pinned.is_empty() {
                tracing::warn!(
                    "closing pinned sessions at the retarget: {}",
                    pinned.join(", ")
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StepError::Pinned(pinned));
        }
        tokio::time::sleep(PINNED_POLL.min(left)).await;
    }
}

/// How often a drain waiting for pinned sessions to close looks again.
const PINNED_POLL: Duration = Duration::from_millis(10);

/// Reads the fenced primary's GTID position (MariaDB `@@gtid_binlog_pos`, MySQL
/// `@@gtid_executed`) until two reads agree.
///
/// The pause between reads is a genuine retry interval against the server, not a
/// stand-in for a notification: a write already past the fence when it landed is still
/// being committed, and only another read shows whether the position has settled.
async fn stable_position(old: &mut Control) -> Result<String, StepError> {
    let mut last = old.gtid_position().await?;
    for _ in 0..10 {
        let now = old.gtid_position().await?;
        if now == last {
            return Ok(now);
        }
        last = now;
        tokio::time::sleep(POSITION_RETRY).await;
    }
    Err(StepError::PositionMoving(last))
}

/// Between two reads of the fenced primary's position.
const POSITION_RETRY: Duration = Duration::from_millis(20);

async fn check_errant(old: &mut Control, new: &mut Control) -> Result<(), StepError> {
    let extra = guardrails::errant_transactions(old, new).await?;
    if extra.is_empty() {
        Ok(())
    } else {
        Err(StepError::Errant(extra))
    }
}
