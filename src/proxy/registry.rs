//! The live sessions, by proxy-assigned id: who they are and which backend thread
//! serves them (for `KILL n` translation and, later, the admin `sessions` command).
//! Touched at session open and close only, never per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct SessionInfo {
    pub id: u32,
    pub user: String,
    pub peer: SocketAddr,
    pub backend_thread: AtomicU32,
    pub started: Instant,
}

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<SessionInfo>>>,
}

impl Registry {
    pub fn insert(
        &self,
        id: u32,
        user: String,
        peer: SocketAddr,
        backend_thread: u32,
    ) -> Arc<SessionInfo> {
        let info = Arc::new(SessionInfo {
            id,
            user,
            peer,
            backend_thread: AtomicU32::new(backend_thread),
            started: Instant::now(),
        });
        self.lock().insert(id, info.clone());
        info
    }

    pub fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }

    pub fn backend_thread(&self, id: u32) -> Option<u32> {
        self.lock()
            .get(&id)
            .map(|s| s.backend_thread.load(Ordering::Relaxed))
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<SessionInfo>>> {
        // A panic elsewhere while holding the lock must not take the registry down.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
