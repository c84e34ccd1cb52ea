//! Authentication-failure throttling per client address, the proxy's answer to
//! password guessing: after `[proxy] auth_failure_delay_after` failed logins (or
//! COM_CHANGE_USER) from one address, each further failure's ERR is delayed, one
//! `auth_failure_delay` more each time up to a bound; after `max_auth_failures` the
//! address is blocked for `auth_block_time` (new connections get ERR 1129, as a server
//! past `max_connect_errors` gives). A successful login resets the address's count.
//!
//! [`Table`] is the pure logic, with the clock passed in; [`Throttle`] wraps it in a
//! lock and counts what happened for `status`. Memory is bounded: at most
//! [`MAX_ADDRESSES`] addresses are remembered; past that the stalest one is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ProxyConfig;

/// Addresses remembered at most (a few hundred kilobytes).
pub const MAX_ADDRESSES: usize = 10_000;

/// A delayed ERR waits at most this many `auth_failure_delay`s.
const MAX_DELAY_STEPS: u32 = 10;

/// The bounds, from `[proxy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub delay_after: u32,
    pub delay: Duration,
    /// The longest delay: ten `delay`s, and at most half the handshake timeout so
    /// that the client still gets its ERR before the login is cut off.
    pub max_delay: Duration,
    /// 0: never block.
    pub max_failures: u32,
    pub block_time: Duration,
}

impl Limits {
    pub fn of(proxy: &ProxyConfig) -> Limits {
        Limits {
            delay_after: proxy.auth_failure_delay_after,
            delay: proxy.auth_failure_delay.0,
            max_delay: (proxy.auth_failure_delay.0 * MAX_DELAY_STEPS)
                .min(proxy.handshake_timeout.0 / 2),
            max_failures: proxy.max_auth_failures,
            block_time: proxy.auth_block_time.0,
        }
    }
}

/// What to do with one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures from the address so far, this one included.
    pub count: u32,
    /// How long to wait before answering the ERR.
    pub delay: Duration,
    /// This failure blocked the address.
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Failures per address.
#[derive(Debug)]
pub struct Table {
    entries: HashMap<IpAddr, Entry>,
    cap: usize,
}

/// IPv4 clients of a dual-stack listener show up as IPv4-mapped IPv6: one address.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Table {
    pub fn new(cap: usize) -> Table {
        Table {
            entries: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// How long `ip` stays blocked, if it is. A block that has run out is forgotten
    /// with the address's count.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let ip = key(ip);
        let until = self.entries.get(&ip)?.blocked_until?;
        if until > now {
            return Some(until - now);
        }
        self.entries.remove(&ip);
        None
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant, limits: &Limits) -> Failure {
        let ip = key(ip);
        // A block served in full starts the count again.
        self.blocked(ip, now);
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.cap {
            self.forget_stalest();
        }
        let entry = self.entries.entry(ip).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        let count = entry.failures;
        // Only the failure that crosses the limit blocks (and is logged); a limit
        // lowered by a reload blocks at the next failure.
        let blocked = limits.max_failures > 0
            && count >= limits.max_failures
            && entry.blocked_until.is_none();
        if blocked {
            entry.blocked_until = Some(now + limits.block_time);
        }
        let steps = count.saturating_sub(limits.delay_after);
        let delay = limits
            .delay
            .saturating_mul(steps.min(MAX_DELAY_STEPS))
            .min(limits.max_delay);
        Failure {
            count,
            delay,
            blocked,
        }
    }

    /// A successful login from `ip`: its count starts again.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.entries.remove(&key(ip));
    }

    /// Addresses blocked at `now`.
    pub fn blocked_count(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| e.blocked_until.is_some_and(|u| u > now))
            .count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes room: an unblocked address with the oldest last failure, else the block
    /// that ends first.
    fn forget_stalest(&mut self) {
        let stalest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.blocked_until.is_some(), e.blocked_until, e.last))
            .map(|(ip, _)| *ip);
        if let Some(ip) = stalest {
            self.entries.remove(&ip);
        }
    }
}

/// What `status` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThrottleStats {
    /// Failed logins and COM_CHANGE_USER since the start.
    pub failures: u64,
    /// Of those, answered late.
    pub delayed: u64,
    /// Times an address was blocked.
    pub blocks: u64,
    /// Connections refused with ERR 1129.
    pub refused: u64,
    /// Addresses blocked now.
    pub blocked_now: usize,
    /// Addresses with failures remembered now.
    pub tracked: usize,
}

/// The proxy's table and its counters.
pub struct Throttle {
    table: Mutex<Table>,
    failures: AtomicU64,
    delayed: AtomicU64,
    blocks: AtomicU64,
    refused: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            table: Mutex::new(Table::new(MAX_ADDRESSES)),
            failures: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl Throttle {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `ip` stays blocked, if it is; counts the refusal.
    pub fn refuse(&self, ip: IpAddr) -> Option<Duration> {
        let left = self.table().blocked(ip, Instant::now());
        if left.is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        left
    }

    /// Records a failure from `ip`, logs a block, and waits out the delay before
    /// the caller answers the ERR.
    pub async fn failed(&self, ip: IpAddr, proxy: &ProxyConfig) {
        let limits = Limits::of(proxy);
        let failure = self.table().failed(ip, Instant::now(), &limits);
        self.failures.fetch_add(1, Ordering::Relaxed);
        crate::proxy::metrics::auth_failed();
        if failure.blocked {
            self.blocks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client = %ip,
                "client address blocked for {:?} after {} authentication failures",
                limits.block_time,
                failure.count
            );
        }
        if !failure.delay.is_zero() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(failure.delay).await;
        }
    }

    /// A successful login from `ip`.
    pub fn succeeded(&self, ip: IpAddr) {
        self.table().succeeded(ip);
    }

    pub fn stats(&self) -> ThrottleStats {
        let table = self.table();
        ThrottleStats {
            failures: self.failures.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            blocked_now: table.blocked_count(Instant::now()),
            tracked: table.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn limits() -> Limits {
        Limits {
            delay_after: 3,
            delay: SEC,
            max_delay: SEC * 4,
            max_failures: 8,
            block_time: SEC * 300,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_failures_are_answered_at_once_then_later_and_later_up_to_the_bound() {
        let mut t = Table::new(100);
        let now = Instant::now();
        let delays: Vec<u64> = (0..7)
            .map(|_| t.failed(ip("10.0.0.1"), now, &limits()).delay.as_secs())
            .collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(t.blocked(ip("10.0.0.1"), now), None);
        // Another address has its own count.
        assert_eq!(
            t.failed(ip("10.0.0.2"), now, &limits()).delay,
            Duration::ZERO
        );
    }

    #[test]
    fn max_failures_blocks_for_the_block_time_then_the_count_starts_again() {
        let mut t = Table::new(100);
        let start = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..7 {
            assert!(!t.failed(a, start, &limits()).blocked);
        }
        let eighth = t.failed(a, start, &limits());
        assert!(eighth.blocked);
        assert_eq!(eighth.count, 8);
        // Already blocked: a later failure (COM_CHANGE_USER) does not block again.
        assert!(!t.failed(a, start, &limits()).blocked);
        assert_eq!(t.blocked(a, start + SEC), Some(SEC * 299));
        assert_eq!(t.blocked_count(start + SEC), 1);
        assert_eq!(t.blocked(ip("10.0.0.2"), start), None);
        let after = start + SEC * 300;
        assert_eq!(t.blocked(a, after), None);
        assert_eq!(t.failed(a, after, &limits()).count, 1);
    }

    #[test]
    fn a_success_resets_the_count_and_mapped_ipv4_is_the_same_address() {
        let mut t = Table::new(100);
        let now = Instant::now();
        for _ in 0..5 {
            t.failed(ip("10.0.0.1"), now, &limits());
        }
        t.succeeded(ip("::ffff:10.0.0.1"));
        assert!(t.is_empty());
        t.failed(ip("::ffff:10.0.0.1"), now, &limits());
        assert_eq!(t.failed(ip("10.0.0.1"), now, &limits()).count, 2);
    }

    #[test]
    fn zero_max_failures_never_blocks() {
        let mut t = Table::new(100);
        let no_block = Limits {
            max_failures: 0,
            ..limits()
        };
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(!t.failed(ip("10.0.0.1"), now, &no_block).blocked);
        }
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_stalest_unblocked_address_first() {
        let mut t = Table::new(3);
        let start = Instant::now();
        for _ in 0..8 {
            t.failed(ip("10.0.0.9"), start, &limits());
        }
        t.failed(ip("10.0.0.1"), start + SEC, &limits());
        t.failed(ip("10.0.0.2"), start + SEC * 2, &limits());
        t.failed(ip("10.0.0.3"), start + SEC * 3, &limits());
        assert_eq!(t.len(), 3);
        // The blocked one stays; the oldest unblocked one went.
        assert!(t.blocked(ip("10.0.0.9"), start + SEC * 3).is_some());
        assert_eq!(t.failed(ip("10.0.0.2"), start, &limits()).count, 2);
        assert_eq!(t.failed(ip("10.0.0.1"), start, &limits()).count, 1);
        for i in 0..10_000u32 {
            t.failed(IpAddr::from(i.to_be_bytes()), start, &limits());
        }
        assert_eq!(t.len(), 3);
    }

    /// The live wrapper on tokio's paused clock: the delay is really waited, the
    /// block runs out with the clock, and everything is counted.
    #[tokio::test(start_paused = true)]
    async fn the_wrapper_waits_blocks_and_counts_on_the_paused_clock() {
        let text = r#"
[proxy]
listen = "127.0.0.1:6033"
auth_failure_delay_after = 1
max_auth_failures = 3
auth_block_time = "1m"
[blue]
address = "127.0.0.1:3307"
"#;
        let config = crate::config::Config::parse(text).unwrap();
        let throttle = Throttle::default();
        let a = ip("10.0.0.1");
        let start = Instant::now();
        throttle.failed(a, &config.proxy).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        throttle.failed(a, &config.proxy).await;
        assert_eq!(start.elapsed(), SEC);
        assert_eq!(throttle.refuse(a), None);
        throttle.failed(a, &config.proxy).await;
        assert_eq!(start.elapsed(), SEC * 3);
        // Blocked from the third failure on, before its ERR was delayed.
        assert_eq!(throttle.refuse(a), Some(SEC * 58));
        let stats = throttle.stats();
        assert_eq!(
            stats,
            ThrottleStats {
                failures: 3,
                delayed: 2,
                blocks: 1,
                refused: 1,
                blocked_now: 1,
                tracked: 1,
            }
        );
        tokio::time::advance(SEC * 58).await;
        assert_eq!(throttle.refuse(a), None);
        assert_eq!(throttle.stats().blocked_now, 0);
    }
}
