//! The proxy: listener, client sessions, the relay and per-session state.
//!
//! [`Shared`] is what every session can see: the current config, the accounts, what the
//! backend's greeting said, and the session registry. [`run`] binds the listener and
//! serves until the shutdown future resolves.

pub mod backend;
pub mod client;
pub mod errors;
pub mod io;
mod listener;
pub mod registry;
pub mod relay;
pub mod response;
pub mod scan;
pub mod session;
pub mod state;
pub mod users;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::config::Config;
use backend::ServerInfo;
use registry::Registry;
use users::UserStore;

pub struct Shared {
    pub config: ArcSwap<Config>,
    pub users: UserStore,
    /// What the last backend greeting said; the proxy's own greeting copies it.
    pub server_info: ArcSwap<ServerInfo>,
    pub sessions: Registry,
    next_id: AtomicU32,
}

impl Shared {
    pub fn new(config: Config) -> Self {
        Shared {
            users: UserStore::new(&config),
            config: ArcSwap::from_pointee(config),
            server_info: ArcSwap::from_pointee(ServerInfo::fallback()),
            sessions: Registry::default(),
            next_id: AtomicU32::new(1),
        }
    }

    /// The backend sessions are routed to.
    pub fn active_address(&self) -> String {
        self.config.load().blue.address.clone()
    }

    /// A fresh proxy connection id (never 0).
    pub fn next_session_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
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

/// Binds `[proxy] listen` and serves clients until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let listener = TcpListener::bind(&config.proxy.listen).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    let shared = Arc::new(Shared::new(config));
    shared.warm_up().await;
    listener::serve(listener, shared, shutdown).await;
    Ok(())
}
