//! The switchover journal: which side is active and how far a switchover got, written
//! atomically (temp file, fsync, rename, fsync of the folder) at every phase, so a
//! proxy restarted mid-way knows where to route and what to repair.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

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
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
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
}
