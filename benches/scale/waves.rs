//! Idle sessions in waves through one proxy: the proxy's resident memory at each
//! wave (right after the wave, and once its sessions have idled past the buffer
//! release), the active clients' point-select latency while they idle, and, when a
//! wave does not fit, what stopped it.

use std::time::Duration;

use mysql_async::Conn;

use crate::client::{self, Latency};
use crate::common::proc_stats::{self, ProcStats};

/// Longer than the proxy's idle release (1 s) with room for the last sessions of a
/// wave to reach it.
const IDLE_WAIT: Duration = Duration::from_secs(3);
/// Sessions closed again once a wave hit the limit, so the proxy has descriptors to
/// spare while it is measured (its accept queue drains, health checks connect).
const MARGIN: usize = 16;

/// One wave, measured.
pub struct Wave {
    /// Sessions held while measured.
    pub sessions: usize,
    /// Resident KiB at the end of the wave and after [`IDLE_WAIT`] idle.
    pub rss_busy_kib: u64,
    pub rss_idle_kib: u64,
    pub latency: Latency,
}

/// Where the sessions stopped fitting.
pub struct Limit {
    /// Sessions open when the first one was refused.
    pub opened: usize,
    pub error: String,
    /// The proxy's open descriptors then, and its open-file limit (soft).
    pub fds: usize,
    pub fd_limit: u64,
}

pub struct Run {
    pub baseline_kib: u64,
    /// Latency with no idle sessions.
    pub unloaded: Latency,
    pub waves: Vec<Wave>,
    pub limit: Option<Limit>,
}

/// Through the proxy `pid` on `port`: `active` clients log in first, then sessions
/// open in waves up to each of `sizes`, until one does not fit.
pub async fn run(
    pid: u32,
    port: u16,
    sizes: &[usize],
    active: usize,
    secs: f64,
) -> Result<Run, String> {
    let mut clients = Vec::new();
    for _ in 0..active {
        clients.push(
            Conn::new(client::opts(port))
                .await
                .map_err(|e| format!("active client: {e}"))?,
        );
    }
    // Warm-up: the server's thread pool and caches, the proxy's first allocations.
    client::point_selects(&mut clients, secs.min(2.0)).await;
    let unloaded = client::point_selects(&mut clients, secs).await;
    let baseline_kib = ProcStats::read(pid)?.rss_kib;
    let mut held = Vec::new();
    let mut run = Run {
        baseline_kib,
        unloaded,
        waves: Vec::new(),
        limit: None,
    };
    for &size in sizes {
        if let Some(error) = client::open_up_to(port, &mut held, size).await {
            run.limit = Some(Limit {
                opened: held.len(),
                error,
                fds: proc_stats::open_fds(pid)?,
                fd_limit: proc_stats::fd_limit(&pid.to_string())?.0,
            });
            let keep = held.len().saturating_sub(MARGIN);
            client::close_all(held.split_off(keep)).await;
        }
        let rss_busy_kib = ProcStats::read(pid)?.rss_kib;
        tokio::time::sleep(IDLE_WAIT).await;
        let rss_idle_kib = ProcStats::read(pid)?.rss_kib;
        let latency = client::point_selects(&mut clients, secs).await;
        eprintln!(
            "  {} sessions: RSS {} MiB after the wave, {} MiB idle; {:.0} point selects/s",
            held.len(),
            rss_busy_kib / 1024,
            rss_idle_kib / 1024,
            latency.queries_per_sec
        );
        run.waves.push(Wave {
            sessions: held.len(),
            rss_busy_kib,
            rss_idle_kib,
            latency,
        });
        if run.limit.is_some() {
            break;
        }
    }
    client::close_all(held).await;
    client::close_all(clients).await;
    Ok(run)
}
