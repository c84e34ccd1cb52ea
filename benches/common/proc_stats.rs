//! A process's own accounting from `/proc`: CPU time (user + system, every thread),
//! context switches (voluntary + involuntary, summed over its threads) and resident
//! memory. Read before and after a run; the difference is what the run cost.

use std::fs;

/// Clock ticks per second of `/proc/PID/stat`'s utime/stime (USER_HZ: 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcStats {
    /// User + system CPU seconds of every thread, including reaped ones.
    pub cpu_secs: f64,
    /// Voluntary + involuntary context switches summed over the live threads.
    pub ctx_switches: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// CPU seconds (user + system, all threads) `pid` has used: only `/proc/PID/stat`, cheap
/// enough to read many times a second.
pub fn cpu_secs(pid: u32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("process {pid}: {e}"))?;
    // Fields after the command name (which may hold spaces) in its parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("process {pid}: unreadable stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are stat's fields 14 and 15, i.e. 11 and 12 after ")".
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((tick(11) + tick(12)) as f64 / TICKS_PER_SEC)
}

impl ProcStats {
    /// The process's figures now; an error if it is gone.
    pub fn read(pid: u32) -> Result<ProcStats, String> {
        let cpu_secs = cpu_secs(pid)?;
        let mut ctx_switches = 0;
        if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                if let Ok(status) = fs::read_to_string(task.path().join("status")) {
                    ctx_switches += status_field(&status, "voluntary_ctxt_switches")
                        + status_field(&status, "nonvoluntary_ctxt_switches");
                }
            }
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("process {pid}: {e}"))?;
        Ok(ProcStats {
            cpu_secs,
            ctx_switches,
            rss_kib: status_field(&status, "VmRSS"),
        })
    }

    /// What happened between `before` and `self` (RSS is `self`'s).
    pub fn since(&self, before: &ProcStats) -> ProcStats {
        ProcStats {
            cpu_secs: self.cpu_secs - before.cpu_secs,
            ctx_switches: self.ctx_switches.saturating_sub(before.ctx_switches),
            rss_kib: self.rss_kib,
        }
    }
}

/// The descriptors a process has open now.
pub fn open_fds(pid: u32) -> Result<usize, String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .map_err(|e| format!("process {pid}: {e}"))
}

/// A process's open-file limit, `(soft, hard)`, from `/proc/PID/limits` (`u64::MAX`
/// for unlimited).
pub fn fd_limit(pid: &str) -> Result<(u64, u64), String> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits"))
        .map_err(|e| format!("process {pid}: {e}"))?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .ok_or_else(|| format!("process {pid}: no open-file limit"))?;
    let mut values = line.split_whitespace().map(|v| match v {
        "unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    });
    match (values.next().flatten(), values.next().flatten()) {
        (Some(soft), Some(hard)) => Ok((soft, hard)),
        _ => Err(format!("process {pid}: unreadable open-file limit")),
    }
}

/// The number of a `Name:  value [kB]` line of a `/proc/…/status` file, 0 if absent.
fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
