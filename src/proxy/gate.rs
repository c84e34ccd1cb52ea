//! The pause gate: holds sessions at transaction boundaries.
//!
//! A session *enters* the gate when it starts a command at a transaction boundary and
//! *leaves* when it is back at a boundary (the answer is complete and no transaction is
//! open). Commands inside a transaction never touch the gate, so a transaction always
//! runs to its COMMIT or ROLLBACK. While the gate is closed, entering waits — the
//! command is held, not failed — and [`Gate::wait_drained`] tells the closer when no
//! session is between boundaries any more.
//!
//! Invariants: the gate is closed while at least one [`Closed`] guard holds it, so every
//! error path reopens it by dropping the guard. A guard made by [`Gate::close_for`] also
//! lets go on its own at its deadline (`max_pause`): whatever a server or a control
//! statement does, applications are released in time. `busy` counts sessions between
//! boundaries; enter increments it *before* checking `closers` and close increments
//! `closers` *before* reading `busy` (both SeqCst), so a session can never slip
//! past a closing gate unseen.
//!
//! Every statement at a boundary writes `busy` and reads `closers`; each counter sits
//! on a cache line of its own (`Line`) so that sessions on other cores writing one
//! do not evict the other. That moves the counters in memory and changes nothing of
//! the argument above: SeqCst operations form one total order over all locations,
//! whichever cache lines they are on.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A value alone on its cache line (64 bytes on x86-64 and most ARM cores).
#[derive(Default)]
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Default)]
pub struct Gate {
    closers: Line<AtomicUsize>,
    busy: Line<AtomicUsize>,
    held: Line<AtomicUsize>,
    /// Commands that waited at the gate since [`Gate::reset_holds`].
    held_commands: AtomicU64,
    /// The longest of those waits, in µs.
    longest_hold_micros: AtomicU64,
    opened: Notify,
    drained: Notify,
    /// Wakes [`Gate::holds_after_release`] when the last held session has passed.
    passed: Notify,
    /// The guard of a manual `pause`, kept until `resume`.
    manual: Mutex<Option<Closed>>,
}

/// What the gate held since [`Gate::reset_holds`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldStats {
    pub commands: u64,
    pub longest: Duration,
}

/// Keeps the gate closed while it lives (and, for [`Gate::close_for`], until its
/// deadline).
pub struct Closed {
    hold: Arc<Hold>,
}

/// One closer's hold on the gate, released exactly once: by the guard's drop or by the
/// deadline, whichever comes first.
struct Hold {
    gate: Arc<Gate>,
    released: AtomicBool,
}

impl Hold {
    /// Lets go of the gate; false when already let go.
    fn release(&self) -> bool {
        if self.released.swap(true, SeqCst) {
            return false;
        }
        if self.gate.closers.fetch_sub(1, SeqCst) == 1 {
            self.gate.opened.notify_waiters();
        }
        true
    }
}

impl Closed {
    /// Whether this guard still holds the gate (false once its deadline passed).
    pub fn holds(&self) -> bool {
        !self.hold.released.load(SeqCst)
    }
}

impl Drop for Closed {
    fn drop(&mut self) {
        self.hold.release();
    }
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    pub fn is_closed(&self) -> bool {
        self.closers.load(SeqCst) > 0
    }

    /// Sessions between transaction boundaries right now.
    pub fn busy(&self) -> usize {
        self.busy.load(SeqCst)
    }

    /// Sessions waiting at the closed gate right now.
    pub fn held(&self) -> usize {
        self.held.load(SeqCst)
    }

    /// Closes the gate until the returned guard is dropped.
    pub fn close(self: &Arc<Self>) -> Closed {
        self.closers.fetch_add(1, SeqCst);
        Closed {
            hold: Arc::new(Hold {
                gate: self.clone(),
                released: AtomicBool::new(false),
            }),
        }
    }

    /// Closes the gate until the returned guard is dropped or `max` has passed,
    /// whichever comes first. Call inside a tokio runtime.
    pub fn close_for(self: &Arc<Self>, max: Duration) -> Closed {
        let closed = self.close();
        let hold = Arc::downgrade(&closed.hold);
        tokio::spawn(async move {
            tokio::time::sleep(max).await;
            if hold.upgrade().is_some_and(|h| h.release()) {
                tracing::warn!("the pause reached max_pause ({max:?}): the gate opens");
            }
        });
        closed
    }

    /// Called by a session at a transaction boundary before it runs a command: returns
    /// at once when the gate is open; waits while it is closed. Returns how long the
    /// session was held.
    pub async fn enter(&self) -> Duration {
        self.busy.fetch_add(1, SeqCst);
        if !self.is_closed() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        self.held.fetch_add(1, SeqCst);
        loop {
            self.leave();
            self.wait_open().await;
            self.busy.fetch_add(1, SeqCst);
            if !self.is_closed() {
                break;
            }
        }
        let held = start.elapsed();
        self.held_commands.fetch_add(1, Relaxed);
        self.longest_hold_micros
            .fetch_max(held.as_micros() as u64, Relaxed);
        if self.held.fetch_sub(1, SeqCst) == 1 {
            self.passed.notify_waiters();
        }
        held
    }

    /// Starts counting held commands afresh (at the start of a pause).
    pub fn reset_holds(&self) {
        self.held_commands.store(0, Relaxed);
        self.longest_hold_micros.store(0, Relaxed);
    }

    /// After the gate opened: waits (at most `within`) until every session it held has
    /// passed and counted its wait, then returns the count and the longest wait since
    /// [`Gate::reset_holds`].
    pub async fn holds_after_release(&self, within: Duration) -> HoldStats {
        let _ = tokio::time::timeout(within, async {
            loop {
                let passed = self.passed.notified();
                tokio::pin!(passed);
                passed.as_mut().enable();
                if self.held.load(SeqCst) == 0 || self.is_closed() {
                    return;
                }
                passed.await;
            }
        })
        .await;
        HoldStats {
            commands: self.held_commands.load(Relaxed),
            longest: Duration::from_micros(self.longest_hold_micros.load(Relaxed)),
        }
    }

    /// Called by a session back at a transaction boundary.
    pub fn leave(&self) {
        if self.busy.fetch_sub(1, SeqCst) == 1 && self.is_closed() {
            self.drained.notify_one();
        }
    }

    async fn wait_open(&self) {
        loop {
            let notified = self.opened.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Waits until no session is between boundaries, up to `timeout`. Returns whether
    /// that happened. Call with the gate closed.
    pub async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.busy() == 0 {
                return true;
            }
            // Poll as well as wait: a session can leave between the check and the wait.
            let tick = Instant::now() + Duration::from_millis(5);
            if tokio::time::timeout_at(deadline.min(tick), self.drained.notified())
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return self.busy() == 0;
            }
        }
    }

    /// `pause`: closes the gate until [`Gate::resume`]. False when already paused.
    pub fn pause(self: &Arc<Self>) -> bool {
        let mut manual = self.manual.lock().unwrap_or_else(|p| p.into_inner());
        if manual.is_some() {
            return false;
        }
        *manual = Some(self.close());
        true
    }

    /// `resume`: drops the manual pause. False when not paused by hand.
    pub fn resume(&self) -> bool {
        let guard = self.manual.lock().unwrap_or_else(|p| p.into_inner()).take();
        guard.is_some()
    }

    pub fn manually_paused(&self) -> bool {
        self.manual
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_are_counted_once_every_held_session_has_passed() {
        let gate = Gate::new();
        gate.reset_holds();
        let closed = gate.close();
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let gate = gate.clone();
            sessions.push(tokio::spawn(async move { gate.enter().await }));
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(gate.held(), 3);
        drop(closed);
        // No sleep: the statistics wait for the held sessions themselves.
        let holds = gate.holds_after_release(Duration::from_secs(1)).await;
        assert_eq!(holds.commands, 3);
        assert!(holds.longest >= Duration::from_millis(40), "{holds:?}");
        for s in sessions {
            assert!(s.await.unwrap() >= Duration::from_millis(40));
        }
        gate.reset_holds();
        assert_eq!(
            gate.holds_after_release(Duration::ZERO).await,
            HoldStats::default()
        );
    }

    #[test]
    fn counters_have_cache_lines_of_their_own() {
        let gate = Gate::default();
        let at = |c: &AtomicUsize| c as *const AtomicUsize as usize;
        let (closers, busy, held) = (at(&gate.closers), at(&gate.busy), at(&gate.held));
        for (a, b) in [(closers, busy), (busy, held), (closers, held)] {
            assert!(a.abs_diff(b) >= 64);
        }
        assert_eq!(busy % 64, 0);
    }

    #[tokio::test]
    async fn open_gate_does_not_wait() {
        let gate = Gate::new();
        assert_eq!(gate.enter().await, Duration::ZERO);
        assert_eq!(gate.busy(), 1);
        gate.leave();
        assert_eq!(gate.busy(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_gate_holds_until_guard_drops() {
        let gate = Gate::new();
        let closed = gate.close();
        let g = gate.clone();
        let task = tokio::spawn(async move {
            let held = g.enter().await;
            g.leave();
            held
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.held(), 1);
        assert_eq!(gate.busy(), 0);
        drop(closed);
        let held = task.await.unwrap();
        assert!(held >= Duration::from_millis(50));
        assert_eq!(gate.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_busy_sessions() {
        let gate = Gate::new();
        gate.enter().await; // a session inside a transaction
        let _closed = gate.close();
        assert!(!gate.wait_drained(Duration::from_millis(20)).await);
        let g = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            g.leave();
        });
        assert!(gate.wait_drained(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_close_opens_at_its_deadline() {
        let gate = Gate::new();
        let closed = gate.close_for(Duration::from_millis(100));
        let g = gate.clone();
        let task = tokio::spawn(async move {
            let held = g.enter().await;
            g.leave();
            held
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(gate.is_closed() && closed.holds());
        let held = task.await.unwrap();
        assert!(held >= Duration::from_millis(100) && held < Duration::from_millis(150));
        assert!(!gate.is_closed() && !closed.holds());
        // Dropping the guard after its deadline does not open the gate a second time.
        let other = gate.close();
        drop(closed);
        assert!(gate.is_closed());
        drop(other);
        assert!(!gate.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_close_dropped_early_opens_at_once() {
        let gate = Gate::new();
        let closed = gate.close_for(Duration::from_secs(5));
        drop(closed);
        assert!(!gate.is_closed());
        let later = gate.close();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(
            gate.is_closed(),
            "the old deadline must not open a later close"
        );
        drop(later);
    }

    #[tokio::test]
    async fn pause_and_resume_never_stick() {
        let gate = Gate::new();
        assert!(gate.pause());
        assert!(!gate.pause());
        let sw = gate.close();
        assert!(gate.resume());
        assert!(!gate.resume());
        assert!(gate.is_closed());
        drop(sw);
        assert!(!gate.is_closed());
    }
}
