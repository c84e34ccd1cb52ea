//! The application-visible pause of a switchover, as N client sessions see it. For each
//! size a fresh MariaDB pair starts with the proxy in front (its own process); N
//! sessions log in through it, each with a user variable, a session variable and a
//! prepared statement; an open-loop load runs (readers: point selects, writers:
//! INSERTs with unique ids, each on a fixed schedule, latency measured from the
//! scheduled time); and the proxy switches over and back again and again through its
//! admin socket. Per switchover: the longest gap between completions and the slowest
//! statement inside its window (and outside every window for comparison), the slowest
//! statement while connections were pre-opened, client errors by code, and the
//! proxy's phase durations; at the end, the acknowledged writes against both servers
//! (lost, duplicated) and a sample of sessions' state. The largest size is the one the
//! proxy's open-file limit allows, from the descriptors per session measured at the
//! size before it. Writes `target/bench/pause.md` and an SVG per size.
//!
//!     cargo bench --bench pause
//!
//! Knobs (environment): `SIZES` (sessions per run, default `10,100,1000,max`; `max`
//! is the largest that fits), `SWITCHOVERS` (per size, default 10), `RATE` (statements
//! per second over all sessions, default 2000), `SECS_BETWEEN` (load between
//! switchovers, default 3), `THREAD_POOL_FROM` (sizes from which the servers run
//! `pool-of-threads`, default 1000).
#[path = "pause/analysis.rs"]
mod analysis;
mod common;
#[path = "pause/load.rs"]
mod load;
#[path = "pause/report.rs"]
mod report;
#[path = "pause/switch.rs"]
mod switch;
#[path = "pause/writes.rs"]
mod writes;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bed;
use switchyard::testbed::{Flavor, Pair};

/// Sessions the largest size never exceeds.
const CEILING: usize = 10_000;
/// Sessions whose state is checked at the end (spread over all of them).
const STATE_SAMPLE: usize = 100;

pub struct Knobs {
    pub sizes: Vec<Option<usize>>,
    pub switchovers: usize,
    pub rate: f64,
    pub secs_between: f64,
    pub thread_pool_from: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| common::fail(format!("{name}={v} is not a number"))),
        _ => default,
    }
}

impl Knobs {
    fn from_env() -> Knobs {
        let sizes = std::env::var("SIZES")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "10,100,1000,max".into());
        let sizes = sizes
            .split(',')
            .map(|s| match s.trim() {
                "max" => None,
                n => Some(
                    n.parse()
                        .unwrap_or_else(|_| common::fail(format!("SIZES: `{n}` is not a number"))),
                ),
            })
            .collect();
        Knobs {
            sizes,
            switchovers: env_or("SWITCHOVERS", 10),
            rate: env_or("RATE", 2000.0),
            secs_between: env_or("SECS_BETWEEN", 3.0),
            thread_pool_from: env_or("THREAD_POOL_FROM", 1000),
        }
    }
}

/// The proxy's descriptors: at start, and per session at the peak of a switchover.
#[derive(Clone, Copy)]
pub struct FdModel {
    pub base: usize,
    pub per_session: f64,
    pub limit: u64,
    pub measured_at: usize,
}

impl FdModel {
    /// The most sessions whose peak fits the limit, with 5% to spare, in hundreds.
    fn largest(&self) -> usize {
        let room = (self.limit as f64 * 0.95 - self.base as f64).max(0.0);
        let n = (room / self.per_session) as usize;
        (n / 100 * 100).min(CEILING)
    }
}

/// What one size's run measured.
pub struct SizeRun {
    pub sessions: usize,
    pub thread_pool: bool,
    pub switches: Vec<switch::Switch>,
    pub seen: Vec<analysis::Seen>,
    pub outside: analysis::Outside,
    pub statements: usize,
    pub errors: Vec<(u16, usize)>,
    pub state_mismatches: u64,
    pub state_checked: usize,
    pub state_failures: Vec<String>,
    pub primary: (String, writes::Audit),
    pub replica: (String, Result<writes::Audit, String>),
    pub fds: FdModel,
    pub peak_fds: usize,
    /// Samples around the representative switchover, and its index.
    pub shown: (usize, Vec<load::Sample>),
    pub setup_secs: f64,
}

fn main() {
    let knobs = Knobs::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| common::fail(e));
    let mut runs: Vec<SizeRun> = Vec::new();
    let mut limited: Option<FdModel> = None;
    for size in &knobs.sizes {
        let n = match size {
            Some(n) => *n,
            None => match runs.last() {
                Some(prev) => {
                    limited = Some(prev.fds);
                    prev.fds.largest()
                }
                None => common::fail("SIZES: `max` needs a measured size before it"),
            },
        };
        eprintln!("pause: {n} sessions…");
        let run = run_size(&runtime, n, &knobs).unwrap_or_else(|e| common::fail(e));
        eprintln!(
            "pause: {n} sessions: {} switchovers, longest gap {:.1} ms",
            run.switches.len(),
            run.seen.iter().map(|s| s.gap_ms).fold(0.0, f64::max)
        );
        runs.push(run);
    }
    let path = report::write(&knobs, &runs, limited).unwrap_or_else(|e| common::fail(e));
    println!("{}", path.display());
}

fn start_bed(n: usize, knobs: &Knobs) -> Result<(Pair, bed::Process), String> {
    let max_connections = format!("--max-connections={}", n + 200);
    let mut args = vec![max_connections.as_str()];
    if n >= knobs.thread_pool_from {
        args.push("--thread-handling=pool-of-threads");
    }
    let pair = bed::pair(Flavor::MariaDb, &args)?;
    let port = switchyard::testbed::free_port();
    let config = bed::proxy_config(
        &pair,
        "proxy",
        port,
        &format!("max_client_connections = {}", n + 100),
        "",
    );
    let proxy = bed::proxy(&pair, "proxy", port, &config)?;
    Ok((pair, proxy))
}

fn run_size(runtime: &tokio::runtime::Runtime, n: usize, knobs: &Knobs) -> Result<SizeRun, String> {
    let (pair, proxy) = start_bed(n, knobs)?;
    let base = switch::open_fds(proxy.pid());
    let limit = switch::fd_limit(proxy.pid()).ok_or("no open-file limit for the proxy")?;
    let socket = bed::admin_socket(&pair, "proxy");
    let (blue, green) = (pair.blue.addr(), pair.green.addr());
    let pids = [
        proxy.pid(),
        pair.blue.pid().unwrap_or(0),
        pair.green.pid().unwrap_or(0),
    ];
    let result = runtime.block_on(async {
        let setup = Instant::now();
        load::create_tables(proxy.port).await?;
        let sessions = load::open(proxy.port, n).await?;
        let setup_secs = setup.elapsed().as_secs_f64();
        measure(sessions, knobs, &socket, pids, (&blue, &green), setup_secs).await
    });
    if result.is_err() {
        eprintln!("proxy log:\n{}", proxy.log());
    }
    let mut run = result?;
    let peak = run
        .switches
        .iter()
        .map(|s| s.peak_fds)
        .max()
        .unwrap_or(base);
    run.peak_fds = peak;
    run.fds = FdModel {
        base,
        per_session: (peak.saturating_sub(base)) as f64 / n.max(1) as f64,
        limit,
        measured_at: n,
    };
    run.thread_pool = n >= knobs.thread_pool_from;
    Ok(run)
}

/// Runs the load and the switchovers on `sessions`, then the checks.
async fn measure(
    sessions: Vec<load::Session>,
    knobs: &Knobs,
    socket: &std::path::Path,
    pids: [u32; 3],
    (blue, green): (&str, &str),
    setup_secs: f64,
) -> Result<SizeRun, String> {
    let n = sessions.len();
    let origin = Instant::now();
    let period = Duration::from_secs_f64(n as f64 / knobs.rate);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(n);
    for (i, s) in sessions.into_iter().enumerate() {
        let first = Duration::from_secs_f64(0.2) + period.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(load::run(
            s,
            origin,
            first,
            period,
            stop.clone(),
        )));
    }
    let between = Duration::from_secs_f64(knobs.secs_between);
    let load_from = 1.0;
    let mut switches = Vec::new();
    for _ in 0..knobs.switchovers {
        tokio::time::sleep(between).await;
        let s = switch::run(socket, origin, pids).await?;
        if !s.ok {
            eprintln!("pause: switchover failed: {}", s.message);
        }
        switches.push(s);
    }
    tokio::time::sleep(between).await;
    stop.store(true, Ordering::Relaxed);
    let load_to = origin.elapsed().as_secs_f64();
    let mut sessions = Vec::with_capacity(n);
    let mut samples = Vec::new();
    let mut acked = Vec::new();
    let mut state_mismatches = 0;
    for t in tasks {
        let (s, log) = t.await.map_err(|e| e.to_string())?;
        samples.extend(log.samples);
        acked.extend(log.acked);
        state_mismatches += log.state_mismatches;
        sessions.push(s);
    }

    // Every session's state, on a sample spread over all of them.
    let step = (n / STATE_SAMPLE).max(1);
    let mut state_failures = Vec::new();
    let mut state_checked = 0;
    for s in sessions.iter_mut().step_by(step) {
        state_checked += 1;
        if let Some(why) = load::check_state(s, &mut acked).await {
            state_failures.push(why);
        }
    }
    let disconnects: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(s.conn.disconnect()))
        .collect();
    for d in disconnects {
        let _ = d.await;
    }

    // The acknowledged writes, on the final primary and on the other side once it
    // has caught up.
    let acked: HashSet<u64> = acked.into_iter().collect();
    let primary_side = switches
        .iter()
        .rev()
        .find(|s| s.ok)
        .map(|s| s.primary.clone())
        .unwrap_or_else(|| "blue".into());
    let (primary_addr, replica_addr, replica_side) = if primary_side == "green" {
        (green, blue, "blue")
    } else {
        (blue, green, "green")
    };
    let primary = writes::audit(primary_addr, &acked).await?;
    let replica = match writes::caught_up(replica_addr, primary.rows, Duration::from_secs(60)).await
    {
        Ok(()) => writes::audit(replica_addr, &acked).await,
        Err(e) => Err(e),
    };

    let done = analysis::completions(&samples);
    let seen: Vec<analysis::Seen> = switches
        .iter()
        .map(|s| analysis::seen(&samples, &done, s))
        .collect();
    let outside = analysis::outside(&samples, &done, &switches, load_from, load_to);
    let mut errors: Vec<(u16, usize)> = Vec::new();
    for s in samples.iter().filter(|s| s.error != 0) {
        match errors.iter_mut().find(|(c, _)| *c == s.error) {
            Some((_, k)) => *k += 1,
            None => errors.push((s.error, 1)),
        }
    }
    let shown = representative(&seen);
    let around: Vec<load::Sample> = switches
        .get(shown)
        .map(|w| {
            samples
                .iter()
                .filter(|s| s.done >= plot_from(w) && s.due <= w.end + 0.5)
                .copied()
                .collect()
        })
        .unwrap_or_default();
    Ok(SizeRun {
        sessions: n,
        thread_pool: false,
        statements: samples.len(),
        switches,
        seen,
        outside,
        errors,
        state_mismatches,
        state_checked,
        state_failures,
        primary: (primary_side, primary),
        replica: (replica_side.to_owned(), replica),
        fds: FdModel {
            base: 0,
            per_session: 0.0,
            limit: 0,
            measured_at: n,
        },
        peak_fds: 0,
        shown: (shown, around),
        setup_secs,
    })
}

/// Where the plot of switchover `w` begins: a second before the gate closed (the
/// pre-open before it can last seconds), or half a second before the command.
pub fn plot_from(w: &switch::Switch) -> f64 {
    let closed = w.marks.iter().find(|m| m.name == "draining").map(|m| m.at);
    (w.start - 0.5).max(closed.unwrap_or(w.start) - 1.0)
}

/// The switchover whose gap is the median one.
fn representative(seen: &[analysis::Seen]) -> usize {
    let mut order: Vec<usize> = (0..seen.len()).collect();
    order.sort_by(|&a, &b| seen[a].gap_ms.total_cmp(&seen[b].gap_ms));
    order.get(order.len() / 2).copied().unwrap_or(0)
}
