//! The live sessions, by proxy-assigned id: who they are, which backend thread serves
//! them (for `KILL n` translation), and a published summary of their state for the
//! admin commands and the switchover (in transaction, schema, pin reason). Touched at
//! session open and close, and when a session's summary changes — never per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::proxy::upstream::{Login, Upstream};

/// What a session publishes about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub schema: Option<String>,
    pub in_transaction: bool,
    pub pin: Option<&'static str>,
    /// Waiting at the closed gate.
    pub held: bool,
}

pub struct SessionInfo {
    pub id: u32,
    pub peer: SocketAddr,
    pub started: Instant,
    pub backend_thread: AtomicU32,
    /// The server the backend connection is on (changes when the session moves).
    pub backend_address: Mutex<String>,
    /// Who the session is logged in as, for opening its connection to another side.
    pub login: Mutex<Login>,
    pub summary: Mutex<Summary>,
    /// A connection to the next target opened ahead of the retarget, with the target
    /// epoch it belongs to.
    pub preopened: Mutex<Option<(u64, Upstream)>>,
}

impl SessionInfo {
    pub fn user(&self) -> String {
        String::from_utf8_lossy(&lock(&self.login).user).into_owned()
    }

    pub fn summary(&self) -> Summary {
        lock(&self.summary).clone()
    }

    /// Takes the pre-opened connection if it was opened for `epoch`.
    pub fn take_preopened(&self, epoch: u64) -> Option<Upstream> {
        match lock(&self.preopened).take() {
            Some((e, conn)) if e == epoch => Some(conn),
            _ => None,
        }
    }
}

/// Locks a mutex even if a panic elsewhere poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<SessionInfo>>>,
}

impl Registry {
    pub fn insert(
        &self,
        id: u32,
        login: Login,
        peer: SocketAddr,
        backend_thread: u32,
        backend_address: String,
    ) -> Arc<SessionInfo> {
        let schema = login
            .database
            .as_ref()
            .map(|d| String::from_utf8_lossy(d).into_owned());
        let info = Arc::new(SessionInfo {
            id,
            peer,
            started: Instant::now(),
            backend_thread: AtomicU32::new(backend_thread),
            backend_address: Mutex::new(backend_address),
            login: Mutex::new(login),
            summary: Mutex::new(Summary {
                schema,
                ..Summary::default()
            }),
            preopened: Mutex::new(None),
        });
        lock(&self.sessions).insert(id, info.clone());
        info
    }

    pub fn remove(&self, id: u32) {
        lock(&self.sessions).remove(&id);
    }

    /// Where the session with proxy id `id` runs: its backend thread and that
    /// server's address. `None` for numbers outside the proxy's range (those are the
    /// server's own thread ids) and for unknown ids.
    pub fn backend_of(&self, id: u32) -> Option<(u32, String)> {
        if !crate::proxy::is_proxy_id(id) {
            return None;
        }
        let info = lock(&self.sessions).get(&id)?.clone();
        let thread = info.backend_thread.load(Ordering::Relaxed);
        let address = lock(&info.backend_address).clone();
        Some((thread, address))
    }

    /// All sessions, ordered by id.
    pub fn all(&self) -> Vec<Arc<SessionInfo>> {
        let mut all: Vec<_> = lock(&self.sessions).values().cloned().collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Pinned sessions, as `id (reason)`.
    pub fn pinned(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter_map(|s| s.summary().pin.map(|p| format!("{} ({p})", s.id)))
            .collect()
    }

    /// Backend thread ids of every session (to tell proxy connections from others).
    pub fn backend_threads(&self) -> Vec<u32> {
        lock(&self.sessions)
            .values()
            .map(|s| s.backend_thread.load(Ordering::Relaxed))
            .collect()
    }

    /// Backend thread ids of the sessions whose connection is on `address` (thread
    /// ids are per server: the same number on another server is someone else).
    pub fn backend_threads_on(&self, address: &str) -> Vec<u32> {
        lock(&self.sessions)
            .values()
            .filter(|s| *lock(&s.backend_address) == address)
            .map(|s| s.backend_thread.load(Ordering::Relaxed))
            .collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
