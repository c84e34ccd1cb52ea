//! The switchover journal: which side is active and how far a switchover got, written
//! atomically (temp file, fsync, rename, fsync of the folder) at every phase, so a
//! proxy restarted mid-way knows where to route and what to repair.
//!
//! [`Writer`] is what the running proxy awaits: the write and its fsyncs run on
//! tokio's blocking pool, not on a runtime worker (the switchover writes it inside the
//! pause, while held sessions wait for a worker), and it returns once the file is
//! durable.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use tokio::task::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::switchover::phase::Phase;
use crate::topology::Side;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The side sessions are routed to.
    pub active: Side,
    /// The phase the last switchover reached.
    pub phase: Phase,
    /// The side being switched from was (or may have been) set read-only by the fence,
    /// and is not yet confirmed writable again.
    pub fenced: bool,
    /// The old side's server id of the connection that sent the fence: a fence sent
    /// to a frozen server runs when it wakes, so the repair kills this connection
    /// before it makes the server writable again.
    #[serde(default)]
    pub fence_conn: Option<u64>,
    /// Promotion began: the new side's replication was stopped and `read_only=OFF` may
    /// have been sent to it (by connection `promote_conn`).
    #[serde(default)]
    pub promoting: bool,
    #[serde(default)]
    pub promote_conn: Option<u64>,
    /// The GTID position read after the fence, if any.
    pub fence_gtid: Option<String>,
    /// Unix time of the write, in milliseconds.
    pub updated_ms: u64,
}

impl Journal {
    pub fn new(active: Side) -> Journal {
        Journal {
            active,
            phase: Phase::Idle,
            fenced: false,
            fence_conn: None,
            promoting: false,
            promote_conn: None,
            fence_gtid: None,
            updated_ms: 0,
        }
    }
}

/// Reads the journal; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> std::io::Result<Option<Journal>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the journal atomically and durably.
pub fn store(path: &Path, journal: &Journal) -> std::io::Result<()> {
    let mut journal = journal.clone();
    journal.updated_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let bytes = serde_json::to_vec_pretty(&journal).map_err(std::io::Error::other)?;
    write_atomically(path, &bytes)
}

/// Replaces the file at `path` with `bytes` atomically and durably: a temp file next
/// to it (extension `tmp`), fsynced, renamed over it, and the folder fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes journals one after another, in order, each on tokio's blocking pool. A write
/// whose caller stopped waiting (a deadline cut it off) still completes before the next
/// one starts, so an older phase never lands over a newer one.
#[derive(Default)]
pub struct Writer {
    pending: Option<JoinHandle<std::io::Result<()>>>,
}

impl Writer {
    /// [`store`], returning once the journal is durable.
    pub async fn write(&mut self, path: &Path, journal: &Journal) -> std::io::Result<()> {
        if let Some(earlier) = self.pending.as_mut() {
            if let Ok(Err(e)) = earlier.await {
                tracing::error!("cannot write the state file {}: {e}", path.display());
            }
            self.pending = None;
        }
        let (owned_path, journal) = (path.to_path_buf(), journal.clone());
        let task = self.pending.insert(tokio::task::spawn_blocking(move || {
            store(&owned_path, &journal)
        }));
        let result = task.await;
        self.pending = None;
        result.map_err(std::io::Error::other)?
    }

    /// [`Writer::write`], logging a failure: the proxy goes on routing; only a restart
    /// would know less.
    pub async fn write_or_log(&mut self, path: &Path, journal: &Journal) {
        if let Err(e) = self.write(path, journal).await {
            tracing::error!("cannot write the state file {}: {e}", path.display());
        }
    }
}

/// One durable write of `journal`, off the runtime's workers, logging a failure.
pub async fn write_or_log(path: &Path, journal: &Journal) {
    Writer::default().write_or_log(path, journal).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), None);
        let mut j = Journal::new(Side::Green);
        j.phase = Phase::CatchingUp;
        j.fenced = true;
        j.fence_gtid = Some("0-1-42".into());
        store(&path, &j).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.active, Side::Green);
        assert_eq!(back.phase, Phase::CatchingUp);
        assert_eq!(back.fence_gtid.as_deref(), Some("0-1-42"));
        std::fs::write(&path, b"{garbage").unwrap();
        assert!(load(&path).is_err());
    }

    #[tokio::test]
    async fn the_writer_is_durable_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut writer = Writer::default();
        let mut j = Journal::new(Side::Blue);
        for phase in [Phase::Precheck, Phase::Draining, Phase::Fencing] {
            j.phase = phase;
            writer.write(&path, &j).await.unwrap();
            assert_eq!(load(&path).unwrap().unwrap().phase, phase);
        }
        let missing = dir.path().join("no-such-dir").join("state.json");
        assert!(writer.write(&missing, &j).await.is_err());
    }
}
