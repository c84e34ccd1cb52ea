//! The switchover history `ctl history` lists: one entry per finished switchover (ok,
//! refused or rolled back), newest last, at most [`LIMIT`] entries.
//!
//! Kept next to the state file (`<state_file>` with the extension `history.json`),
//! rewritten whole at each switchover atomically (temp file, fsync, rename, fsync of
//! the folder) on tokio's blocking pool, so it survives restarts and a crash mid-write
//! leaves the previous version. Without a state file it lives in memory only.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proxy::registry::lock;
use crate::switchover::journal::write_atomically;
use crate::switchover::orchestrator::{Report, SwitchResult};

/// Entries kept; older ones are dropped as new ones come.
pub const LIMIT: usize = 200;

/// One past switchover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When it started, Unix time in ms.
    pub started_unix_ms: u64,
    pub from: String,
    pub to: String,
    pub result: SwitchResult,
    /// Application-visible pause, ms.
    pub pause_ms: f64,
    pub total_ms: f64,
    /// Each phase and its duration in ms, in order, the last one included.
    pub phases: Vec<(String, f64)>,
    pub fence_gtid: Option<String>,
    /// Why it rolled back or was refused.
    pub reason: Option<String>,
}

impl Entry {
    pub fn from_report(report: &Report) -> Entry {
        Entry {
            started_unix_ms: report.started_unix_ms,
            from: report.from.name().into(),
            to: report.to.name().into(),
            result: report.result,
            pause_ms: report.pause_ms,
            total_ms: report.total_ms,
            phases: phase_durations(report)
                .into_iter()
                .map(|(p, ms)| (p.name().to_string(), ms))
                .collect(),
            fence_gtid: report.fence_gtid.clone(),
            reason: report.error.clone(),
        }
    }
}

/// Every phase of `report` with its duration in ms, its last phase (which lasted until
/// the end) included.
pub fn phase_durations(report: &Report) -> Vec<(crate::switchover::phase::Phase, f64)> {
    let mut out = report.phases.clone();
    let listed: f64 = out.iter().map(|(_, ms)| ms).sum();
    out.push((report.final_phase, (report.total_ms - listed).max(0.0)));
    out
}

/// The history: in memory, and on disk when a path is set.
pub struct History {
    path: Option<PathBuf>,
    entries: std::sync::Mutex<VecDeque<Entry>>,
    /// Serialises the writes, so an older list never lands over a newer one.
    writing: tokio::sync::Mutex<()>,
}

impl History {
    /// The history kept next to `state_file` (loaded now), or in memory only. A file
    /// that cannot be read is logged and started afresh.
    pub fn open(state_file: Option<&Path>) -> History {
        let path = state_file.map(|p| p.with_extension("history.json"));
        let entries = match path.as_deref().map(load) {
            Some(Ok(entries)) => entries,
            Some(Err(e)) => {
                tracing::error!("switchover history unreadable, starting a new one: {e}");
                VecDeque::new()
            }
            None => VecDeque::new(),
        };
        History {
            path,
            entries: std::sync::Mutex::new(entries),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the history is kept, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        lock(&self.entries).iter().cloned().collect()
    }

    /// Adds `entry` and, with a path, returns once the file holding it is durable.
    pub async fn push(&self, entry: Entry) {
        let _writing = self.writing.lock().await;
        let snapshot = {
            let mut entries = lock(&self.entries);
            push_bounded(&mut entries, entry);
            entries.clone()
        };
        let Some(path) = self.path.clone() else {
            return;
        };
        let shown = path.display().to_string();
        match tokio::task::spawn_blocking(move || store(&path, &snapshot)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot write the switchover history {shown}: {e}"),
            Err(e) => tracing::error!("cannot write the switchover history {shown}: {e}"),
        }
    }
}

/// Unix time in ms as ISO 8601 UTC, `2026-11-30T14:01:02.345Z`.
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        unix_ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn push_bounded(entries: &mut VecDeque<Entry>, entry: Entry) {
    entries.push_back(entry);
    while entries.len() > LIMIT {
        entries.pop_front();
    }
}

fn load(path: &Path) -> std::io::Result<VecDeque<Entry>> {
    match fs::read(path) {
        Ok(bytes) => {
            let mut entries: VecDeque<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            while entries.len() > LIMIT {
                entries.pop_front();
            }
            Ok(entries)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(VecDeque::new()),
        Err(e) => Err(e),
    }
}

fn store(path: &Path, entries: &VecDeque<Entry>) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            started_unix_ms: n,
            from: "blue".into(),
            to: "green".into(),
            result: SwitchResult::Ok,
            pause_ms: 1.0,
            total_ms: 2.0,
            phases: vec![("precheck".into(), 1.0), ("done".into(), 1.0)],
            fence_gtid: Some("0-1-5".into()),
            reason: None,
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_796_051_662_345), "2026-11-30T15:14:22.345Z");
    }

    #[tokio::test]
    async fn bounded_and_kept_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let history = History::open(Some(&state));
        assert_eq!(
            history.path(),
            Some(dir.path().join("state.history.json").as_path())
        );
        for n in 0..(LIMIT as u64 + 5) {
            history.push(entry(n)).await;
        }
        let again = History::open(Some(&state));
        let entries = again.entries();
        assert_eq!(entries.len(), LIMIT);
        assert_eq!(entries[0].started_unix_ms, 5);
        assert_eq!(entries[LIMIT - 1], entry(LIMIT as u64 + 4));
    }

    #[tokio::test]
    async fn memory_only_without_a_state_file_and_garbage_starts_afresh() {
        let history = History::open(None);
        history.push(entry(1)).await;
        assert_eq!(history.entries().len(), 1);
        assert!(history.path().is_none());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        fs::write(dir.path().join("s.history.json"), b"[{").unwrap();
        assert!(History::open(Some(&state)).entries().is_empty());
    }
}
