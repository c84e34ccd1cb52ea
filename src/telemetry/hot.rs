//! Hot-path counters: commands by kind, the command latency histogram and client
//! bytes, kept in one block per thread and folded at scrape time.
//!
//! Each thread that records gets a [`Block`] of its own, registered once in a global
//! list and never freed (threads are few; a counter must not lose what an ended
//! thread counted). Only the owning thread writes a block, with a plain `load` +
//! `store` (no read-modify-write, no lock, no shared cache line); the scrape only
//! reads. A block is aligned to its own cache lines so two threads never share one.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use super::names::{COMMAND_DURATION, LATENCY_BUCKETS};

/// The command kinds of `switchyard_commands_total`, in label order.
pub const COMMAND_KINDS: [&str; 4] = ["query", "prepare", "execute", "other"];

/// Index of a kind in [`COMMAND_KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Query = 0,
    Prepare = 1,
    Execute = 2,
    Other = 3,
}

/// Latency buckets plus the +Inf one.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

#[repr(align(128))]
#[derive(Default)]
struct Block {
    commands: [AtomicU64; 4],
    received: AtomicU64,
    sent: AtomicU64,
    /// Per bucket, not cumulative: a sample counts in the first bucket that holds it.
    latency: [AtomicU64; BUCKETS],
    latency_nanos: AtomicU64,
}

static BLOCKS: Mutex<Vec<&'static Block>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: &'static Block = {
        let block: &'static Block = Box::leak(Box::default());
        blocks().push(block);
        block
    };
}

fn blocks() -> std::sync::MutexGuard<'static, Vec<&'static Block>> {
    BLOCKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds `n` to a counter only this thread writes.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The bucket a command that took `elapsed` counts in.
fn bucket_of(elapsed: Duration) -> usize {
    let secs = elapsed.as_secs_f64();
    LATENCY_BUCKETS.partition_point(|&le| le < secs)
}

/// One command of `kind` was answered after `elapsed`.
pub fn command(kind: CommandKind, elapsed: Duration) {
    LOCAL.with(|b| {
        bump(&b.commands[kind as usize], 1);
        bump(&b.latency[bucket_of(elapsed)], 1);
        bump(&b.latency_nanos, elapsed.as_nanos() as u64);
    });
}

/// `n` bytes were read from a client.
pub fn received(n: usize) {
    LOCAL.with(|b| bump(&b.received, n as u64));
}

/// `n` bytes were written to a client.
pub fn sent(n: usize) {
    LOCAL.with(|b| bump(&b.sent, n as u64));
}

/// The sum of every thread's block.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub commands: [u64; 4],
    pub received: u64,
    pub sent: u64,
    pub latency: [u64; BUCKETS],
    pub latency_nanos: u64,
}

impl Totals {
    fn add(&mut self, b: &Block) {
        for (sum, c) in self.commands.iter_mut().zip(&b.commands) {
            *sum += c.load(Relaxed);
        }
        for (sum, c) in self.latency.iter_mut().zip(&b.latency) {
            *sum += c.load(Relaxed);
        }
        self.received += b.received.load(Relaxed);
        self.sent += b.sent.load(Relaxed);
        self.latency_nanos += b.latency_nanos.load(Relaxed);
    }
}

/// Folds every thread's block.
pub fn fold() -> Totals {
    let mut totals = Totals::default();
    for block in blocks().iter() {
        totals.add(block);
    }
    totals
}

/// Appends the command latency histogram in the text exposition format (the
/// exporter's own histograms take a shared record per sample).
pub fn render_latency(totals: &Totals, help: &str, out: &mut String) {
    let name = COMMAND_DURATION;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (le, count) in LATENCY_BUCKETS.iter().zip(&totals.latency) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let count: u64 = totals.latency.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let sum = totals.latency_nanos as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        assert_eq!(bucket_of(Duration::from_micros(50)), 0);
        assert_eq!(bucket_of(Duration::from_micros(100)), 0);
        assert_eq!(bucket_of(Duration::from_micros(101)), 1);
        assert_eq!(bucket_of(Duration::from_millis(3)), 5);
        assert_eq!(bucket_of(Duration::from_secs(10)), BUCKETS - 2);
        assert_eq!(bucket_of(Duration::from_secs(11)), BUCKETS - 1);
    }

    #[test]
    fn threads_fold_into_one_total() {
        let before = fold();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| {
                    command(CommandKind::Execute, Duration::from_millis(3));
                    command(CommandKind::Execute, Duration::from_secs(20));
                    received(100);
                    sent(7);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let after = fold();
        // Other tests of this process may record too: at least what these did.
        assert!(after.commands[CommandKind::Execute as usize] >= before.commands[2] + 6);
        assert!(after.received >= before.received + 300);
        assert!(after.sent >= before.sent + 21);
        assert!(after.latency[5] >= before.latency[5] + 3);
        assert!(after.latency[BUCKETS - 1] >= before.latency[BUCKETS - 1] + 3);
        assert!(after.latency_nanos >= before.latency_nanos + 3 * 20_003_000_000);
    }

    #[test]
    fn the_histogram_renders_cumulative_buckets() {
        let mut totals = Totals::default();
        totals.latency[0] = 2;
        totals.latency[5] = 1;
        totals.latency[BUCKETS - 1] = 1;
        totals.latency_nanos = 1_500_000_000;
        let mut out = String::new();
        render_latency(&totals, "Time.", &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("# HELP {COMMAND_DURATION} Time."));
        assert_eq!(lines[1], format!("# TYPE {COMMAND_DURATION} histogram"));
        assert_eq!(
            lines[2],
            format!("{COMMAND_DURATION}_bucket{{le=\"0.0001\"}} 2")
        );
        assert_eq!(
            lines[7],
            format!("{COMMAND_DURATION}_bucket{{le=\"0.005\"}} 3")
        );
        assert_eq!(
            lines[17],
            format!("{COMMAND_DURATION}_bucket{{le=\"10\"}} 3")
        );
        assert_eq!(
            lines[18],
            format!("{COMMAND_DURATION}_bucket{{le=\"+Inf\"}} 4")
        );
        assert_eq!(lines[19], format!("{COMMAND_DURATION}_sum 1.5"));
        assert_eq!(lines[20], format!("{COMMAND_DURATION}_count 4"));
    }
}
