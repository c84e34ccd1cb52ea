//! The live sessions, by proxy-assigned id: who they are, which backend thread serves
//! them (for `KILL n` translation), and a published summary of their state for the
//! admin commands and the switchover (in transaction, schema, pin reason). Touched at
//! session open and close, and when a session's summary changes — never per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::proxy::state::SessionState;
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
    /// The client's connection to the proxy is TLS.
    pub tls: bool,
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

/// What a session last published of its state, so that it locks its summary only
/// when something changed — never per command.
pub struct Published {
    info: Arc<SessionInfo>,
    /// The schema (or anything not compared below) may have changed.
    stale: bool,
    in_transaction: bool,
    pin: Option<&'static str>,
}

impl Published {
    pub fn new(info: Arc<SessionInfo>) -> Self {
        Published {
            info,
            stale: false,
            in_transaction: false,
            pin: None,
        }
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The session's state changed in a way [`Published::update`] cannot see by
    /// comparing (the schema, variables).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Publishes schema, transaction and pin state if they may differ from what was
    /// published last. Returns whether it published.
    pub fn update(&mut self, state: &SessionState) -> bool {
        // Compared with a local copy: no lock unless something changed.
        let changed = self.stale
            || state.in_transaction() != self.in_transaction
            || state.pin_reason() != self.pin;
        if changed {
            self.publish(state);
        }
        changed
    }

    /// Publishes schema, transaction and pin state for the admin and the switchover.
    pub fn publish(&mut self, state: &SessionState) {
        let mut summary = lock(&self.info.summary);
        summary.schema = state.schema.clone();
        summary.in_transaction = state.in_transaction();
        summary.pin = state.pin_reason();
        self.in_transaction = summary.in_transaction;
        self.pin = summary.pin;
        self.stale = false;
    }

    /// The session waits at the closed gate (or no longer does).
    pub fn held(&self, held: bool) {
        lock(&self.info.summary).held = held;
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
        tls: bool,
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
            tls,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::SERVER_STATUS_IN_TRANS;

    fn info(registry: &Registry) -> Arc<SessionInfo> {
        let login = Login {
            user: bytes::Bytes::from_static(b"app"),
            secret: crate::protocol::credential::Secret::Empty,
            database: Some(bytes::Bytes::from_static(b"shop")),
            caps: 0,
            mariadb_caps: 0,
            charset: 45,
            max_packet: 0,
            attrs: None,
            client_addrs: None,
        };
        let peer = "127.0.0.1:5000".parse().unwrap();
        registry.insert(
            crate::proxy::PROXY_ID_BASE,
            login,
            peer,
            false,
            12,
            "db:3306".into(),
        )
    }

    #[test]
    fn publishes_only_what_changed() {
        let registry = Registry::default();
        let info = info(&registry);
        let mut published = Published::new(info.clone());
        let mut state = SessionState::new(Some("shop".into()), 45);
        assert!(!published.update(&state), "nothing changed");
        state.on_eof(SERVER_STATUS_IN_TRANS);
        assert!(published.update(&state));
        assert!(info.summary().in_transaction);
        assert!(!published.update(&state), "published already");
        // The schema is not compared: a change to it is marked.
        state.schema = Some("other".into());
        assert!(!published.update(&state));
        published.mark_stale();
        assert!(published.update(&state));
        assert_eq!(info.summary().schema.as_deref(), Some("other"));
        state.pins.locked_tables = true;
        assert!(published.update(&state));
        assert_eq!(info.summary().pin, state.pin_reason());
    }

    #[test]
    fn held_is_published_at_once() {
        let registry = Registry::default();
        let published = Published::new(info(&registry));
        published.held(true);
        assert!(published.info().summary().held);
        assert_eq!(
            registry.backend_of(crate::proxy::PROXY_ID_BASE),
            Some((12, "db:3306".into()))
        );
        published.held(false);
        assert!(!published.info().summary().held);
    }
}
