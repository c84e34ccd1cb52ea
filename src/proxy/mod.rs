//! The proxy: listener, client sessions, the relay and per-session state.
//!
//! [`Shared`] is what every session can see: the current config, the accounts, what the
//! backend's greeting said, and the session registry. [`run`] binds the listener and
//! serves until the shutdown future resolves.

pub mod backend;
mod change_user;
pub mod client;
pub mod errors;
pub mod io;
mod kill;
mod listener;
mod migrate;
pub mod registry;
pub mod relay;
pub mod response;
pub mod scan;
pub mod session;
pub mod state;
pub mod users;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::switchover::gate::Gate;
use backend::ServerInfo;
use registry::Registry;
use users::UserStore;

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Blue,
    Green,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Blue => Side::Green,
            Side::Green => Side::Blue,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Blue => "blue",
            Side::Green => "green",
        }
    }
}

/// Where sessions are routed. Swapped atomically at the retarget; a session whose
/// backend belongs to an older epoch moves at its next transaction boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub side: Side,
    pub address: String,
    pub epoch: u64,
}

/// Proxy session ids (the connection id clients see at login) start here, far above
/// the thread ids servers hand out, so `KILL n` can tell the two apart: a proxy id is
/// translated to its session's backend thread, any other number (e.g. one read from
/// `CONNECTION_ID()`) is passed to the server as it is. Kept below 2^31 for clients
/// that read the id as a signed 32-bit number.
pub const PROXY_ID_BASE: u32 = 1_000_000_000;

/// Whether `id` is in the proxy's id range.
pub fn is_proxy_id(id: u32) -> bool {
    (PROXY_ID_BASE..(1 << 31)).contains(&id)
}

/// How many idle sessions move to a new target at once.
const IDLE_MOVES: usize = 4;

pub struct Shared {
    pub config: ArcSwap<Config>,
    /// The file the config came from (for `reload`).
    pub config_path: Option<std::path::PathBuf>,
    pub target: ArcSwap<Target>,
    /// Announces each new target epoch to idle sessions.
    pub retargets: tokio::sync::watch::Sender<u64>,
    pub gate: Arc<Gate>,
    pub users: UserStore,
    /// What the last backend greeting said; the proxy's own greeting copies it.
    pub server_info: ArcSwap<ServerInfo>,
    pub sessions: Registry,
    /// Why clients are refused right now (the active side is not the one writable
    /// primary), if they are.
    pub refusal: ArcSwap<Option<String>>,
    /// The switchover's phase and last result.
    pub switch: crate::switchover::orchestrator::SwitchState,
    /// Longest time one command waited at the gate since the last reset, in µs.
    pub max_hold_micros: AtomicU64,
    /// Commands that waited at the gate since the last reset.
    pub held_commands: AtomicU64,
    /// Idle sessions moving after a retarget, a few at a time, so that their logins
    /// and replays do not crowd out sessions that are running statements.
    pub idle_moves: tokio::sync::Semaphore,
    next_id: AtomicU32,
}

impl Shared {
    pub fn new(config: Config) -> Self {
        let target = Target {
            side: Side::Blue,
            address: config.blue.address.clone(),
            epoch: 0,
        };
        Shared {
            config_path: None,
            target: ArcSwap::from_pointee(target),
            retargets: tokio::sync::watch::Sender::new(0),
            gate: Gate::new(),
            users: UserStore::new(&config),
            config: ArcSwap::from_pointee(config),
            server_info: ArcSwap::from_pointee(ServerInfo::fallback()),
            sessions: Registry::default(),
            switch: Default::default(),
            refusal: ArcSwap::from_pointee(None),
            max_hold_micros: AtomicU64::new(0),
            held_commands: AtomicU64::new(0),
            idle_moves: tokio::sync::Semaphore::new(IDLE_MOVES),
            next_id: AtomicU32::new(PROXY_ID_BASE),
        }
    }

    /// The backend sessions are routed to.
    pub fn active_address(&self) -> String {
        self.target.load().address.clone()
    }

    /// Routes new commands to `target` from now on and wakes idle sessions to move.
    pub fn retarget(&self, target: Target) {
        let epoch = target.epoch;
        self.target.store(Arc::new(target));
        self.retargets.send_replace(epoch);
    }

    /// The address of a side in the current config.
    pub fn address_of(&self, side: Side) -> Option<String> {
        let config = self.config.load();
        match side {
            Side::Blue => Some(config.blue.address.clone()),
            Side::Green => config.green.as_ref().map(|g| g.address.clone()),
        }
    }

    /// Records how long a command waited at the gate.
    pub fn record_hold(&self, held: std::time::Duration) {
        self.held_commands.fetch_add(1, Ordering::Relaxed);
        self.max_hold_micros
            .fetch_max(held.as_micros() as u64, Ordering::Relaxed);
    }

    /// A fresh proxy connection id (never 0).
    pub fn next_session_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if is_proxy_id(id) {
                return id;
            }
            // Wrapped: start again at the base.
            let _ = self.next_id.compare_exchange(
                id.wrapping_add(1),
                PROXY_ID_BASE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Learns the backend's greeting (version, capabilities) before the first client
    /// arrives, and loads accounts when configured to.
    pub async fn warm_up(&self) {
        let config = self.config.load_full();
        let address = self.active_address();
        let timeout = config.proxy.connect_timeout.0;
        match backend::probe_greeting(&address, timeout).await {
            Ok(info) => {
                tracing::info!(
                    "backend {address} is {}",
                    String::from_utf8_lossy(&info.version)
                );
                self.server_info.store(Arc::new(info));
            }
            Err(e) => tracing::warn!("backend {address} not reachable yet: {e}"),
        }
        if config.auth.load_from_backend {
            self.users.refresh(&address).await;
        }
    }
}

/// SIGHUP re-reads the config, like the admin `reload`.
fn spawn_reload_on_sighup(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match crate::switchover::commands::reload_config(&shared) {
                Ok(msg) => tracing::info!("SIGHUP: {msg}"),
                Err(msg) => tracing::error!("SIGHUP: {msg}"),
            }
        }
    });
}

/// After the shutdown signal (the listener is closed): a running switchover finishes,
/// then the gate closes so that no new transaction starts, and open transactions get
/// what is left of `[proxy] shutdown_timeout` to end. Sessions are closed when this
/// returns (the runtime drops their tasks).
async fn drain_for_shutdown(shared: &Shared) {
    let timeout = shared.config.load().proxy.shutdown_timeout.0;
    let deadline = tokio::time::Instant::now() + timeout;
    if tokio::time::timeout(timeout, shared.switch.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutting down during a switchover; the next start finishes it or rolls it back"
        );
        return;
    }
    let _closed = shared.gate.close();
    let busy = shared.gate.busy();
    if busy > 0 {
        tracing::info!("waiting up to {timeout:?} for {busy} open transaction(s) to end");
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !shared.gate.wait_drained(left).await {
        tracing::warn!(
            "closing {} session(s) still inside a transaction",
            shared.gate.busy()
        );
    }
}

/// Binds `[proxy] listen` (and the admin socket, if configured), recovers the active
/// side from the state file and the servers, and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(&config.proxy.listen).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    let admin = match &config.proxy.admin_socket {
        Some(path) => Some(crate::admin::server::AdminListener::bind(path).await?),
        None => None,
    };
    let mut shared = Shared::new(config);
    shared.config_path = config_path;
    let shared = Arc::new(shared);
    crate::switchover::recovery::recover(&shared).await;
    shared.warm_up().await;
    let stop = tokio_util::sync::CancellationToken::new();
    if let Some(admin) = admin {
        let handler = Arc::new(crate::switchover::commands::Admin {
            shared: shared.clone(),
        });
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = admin.serve(handler, stop.cancelled_owned()).await {
                tracing::error!("admin socket: {e}");
            }
        });
    }
    spawn_reload_on_sighup(shared.clone());
    listener::serve(listener, shared.clone(), shutdown).await;
    drain_for_shutdown(&shared).await;
    stop.cancel();
    // Let the admin task remove its socket file.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(())
}
