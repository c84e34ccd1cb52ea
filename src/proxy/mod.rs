//! The proxy: listener, client sessions, the relay, the gate and per-session state.
//!
//! [`Proxy`] is what every session can see: the routing state ([`Topology`]), the gate,
//! the accounts, what the backend's greeting said, and the session registry. Its
//! second `impl` block is the interface the switchover uses (pre-opened connections,
//! the capability check); the switchover never reaches into a session's modules.
//!
//! A session (`session`) is a few small parts: its two connections (`conn`: the
//! client's and the server's, generic over the stream), its state (`state`), its
//! statement-id mapping (`statement_ids`) and what it publishes to the registry
//! (`registry::Published`). The relay (`relay`) borrows them to pass one command's
//! answer. `upstream` opens and logs in a session's connection to a server (the
//! control plane's SQL connections are `crate::control`).

mod change_user;
pub mod client;
mod client_address;
pub mod compressed;
pub mod conn;
pub mod errors;
pub mod gate;
pub mod id_map;
pub mod io;
mod kill;
pub mod leg;
pub mod listener;
pub mod metrics;
mod migrate;
pub mod registry;
pub mod relay;
pub mod response;
pub mod scan;
pub mod session;
pub mod state;
pub mod statement_ids;
pub mod stream;
pub mod throttle;
pub mod tls;
pub mod upstream;
pub mod user_variables;
pub mod users;
mod woken;
pub mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::protocol::constants::CLIENT_MYSQL;
use crate::protocol::credential::Credential;
use crate::topology::{Side, Topology};
use gate::Gate;
use registry::{lock, Registry};
use tls::{TlsError, TlsSetup};
use upstream::ServerInfo;
use users::UserStore;

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

/// Logins a switchover's pre-open runs at once. Each one costs the new server a
/// thread and a login, and the proxy a handshake, on CPUs that the sessions running
/// meanwhile need: four at once, back to back, made their statements wait tens of ms
/// at 1,000 sessions (`cargo bench --bench pause`).
const PRE_OPEN_AT_ONCE: usize = 2;

/// Longest rest after one pre-open login (a login that timed out is not followed by
/// as long a rest).
const PRE_OPEN_MAX_REST: Duration = Duration::from_millis(50);

/// How many idle sessions move to a new target at once.
const IDLE_MOVES: usize = 4;

/// The proxy's own state, shared by its sessions and offered to the switchover.
pub struct Proxy {
    /// Where sessions go and the config in force.
    pub topology: Arc<Topology>,
    pub gate: Arc<Gate>,
    pub users: UserStore,
    /// What the last backend greeting said; the proxy's own greeting copies it.
    pub server_info: ArcSwap<ServerInfo>,
    pub sessions: Registry,
    /// Idle sessions moving after a retarget, a few at a time, so that their logins
    /// and replays do not crowd out sessions that are running statements.
    pub idle_moves: tokio::sync::Semaphore,
    /// Failed logins per client address: delays, blocks, counts.
    pub throttle: throttle::Throttle,
    /// TLS on both legs, as the config in force says.
    pub tls: ArcSwap<TlsSetup>,
    next_id: AtomicU32,
}

impl Proxy {
    /// Fails when a certificate or key the config names cannot be used.
    pub fn new(topology: Arc<Topology>) -> Result<Self, TlsError> {
        let tls = TlsSetup::load(&topology.config.load())?;
        Ok(Proxy {
            tls: ArcSwap::from_pointee(tls),
            gate: Gate::new(),
            users: UserStore::new(&topology.config.load()),
            topology,
            server_info: ArcSwap::from_pointee(ServerInfo::fallback()),
            sessions: Registry::default(),
            idle_moves: tokio::sync::Semaphore::new(IDLE_MOVES),
            throttle: throttle::Throttle::default(),
            next_id: AtomicU32::new(PROXY_ID_BASE),
        })
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
        let config = self.topology.config.load_full();
        let address = self.topology.active_address();
        let timeout = config.proxy.connect_timeout.0;
        match upstream::probe_greeting(&address, timeout).await {
            Ok(info) => {
                tracing::info!(
                    "backend {address} is {}",
                    String::from_utf8_lossy(&info.version)
                );
                if let Some(message) =
                    hash_only_on_mysql(&info, &config.credentials().unwrap_or_default())
                {
                    tracing::error!("{message}");
                }
                self.server_info.store(Arc::new(info));
            }
            Err(e) => tracing::warn!("backend {address} not reachable yet: {e}"),
        }
        if config.auth.load_from_backend {
            self.users.refresh(&address).await;
        }
    }
}

/// The startup error for `[[users]]` accounts that hold only a `password_hash` when
/// the backend greeting `info` is MySQL's: MySQL logs them in with
/// caching_sha2_password, which needs the password itself, so their logins will be
/// refused (ERR 1251). `None` on MariaDB or when every account has its password.
fn hash_only_on_mysql(
    info: &ServerInfo,
    credentials: &HashMap<String, Credential>,
) -> Option<String> {
    if info.capabilities & CLIENT_MYSQL == 0 {
        return None;
    }
    let mut names: Vec<&str> = credentials
        .iter()
        .filter(|(_, c)| matches!(c, Credential::NativeHash(_)))
        .map(|(name, _)| name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort_unstable();
    Some(format!(
        "the backend is MySQL ({}), which logs accounts in with caching_sha2_password: \
         [[users]] {} only a password_hash, so their logins will be refused; give each \
         `password`, `password_file` or `password_env` instead",
        String::from_utf8_lossy(&info.version),
        match names.as_slice() {
            [one] => format!("`{one}` has"),
            many => format!(
                "{} have",
                many.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    ))
}

impl Proxy {
    /// Opens and logs in a session's connection to `address`, over TLS and behind a
    /// PROXY protocol header when the config says so for that server.
    pub async fn connect_upstream(
        &self,
        address: &str,
        login: &upstream::Login,
        timeout: Duration,
    ) -> Result<upstream::Upstream, upstream::ConnectError> {
        let tls = self.tls.load().backend(address);
        let proxy_protocol = self.topology.config.load().sends_proxy_header(address);
        upstream::connect(address, tls.as_deref(), login, timeout, proxy_protocol).await
    }

    /// [`Proxy::connect_upstream`] for a session's own connection to `side`, timed
    /// and counted.
    pub async fn connect_session(
        &self,
        side: Side,
        address: &str,
        login: &upstream::Login,
        timeout: Duration,
    ) -> Result<upstream::Upstream, upstream::ConnectError> {
        let started = std::time::Instant::now();
        let result = self.connect_upstream(address, login, timeout).await;
        metrics::backend_connect(side, started, result.is_ok());
        result
    }

    /// The side `address` is in the config in force (green when it is not blue's).
    fn side_of(&self, address: &str) -> Side {
        match self.topology.address_of(Side::Blue) {
            Some(blue) if blue == address => Side::Blue,
            _ => Side::Green,
        }
    }
}

/// What the switchover asks of the proxy, so that it never reaches into sessions.
impl Proxy {
    /// Opens a connection to `address` for every session, as each session's own
    /// account; a session takes it at its move instead of connecting inside the pause.
    /// Paced ([`PRE_OPEN_AT_ONCE`] logins at once, each followed by a rest as long as
    /// it took), and none is started after `until`: a session without one connects
    /// at its move. Returns how many were opened.
    pub async fn pre_open(
        &self,
        address: &str,
        epoch: u64,
        timeout: Duration,
        until: tokio::time::Instant,
    ) -> usize {
        let limit = Arc::new(Semaphore::new(PRE_OPEN_AT_ONCE));
        let tls = self.tls.load().backend(address);
        let proxy_protocol = self.topology.config.load().sends_proxy_header(address);
        let side = self.side_of(address);
        let mut tasks = Vec::new();
        for session in self.sessions.all() {
            let limit = limit.clone();
            let address = address.to_string();
            let tls = tls.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.ok()?;
                if tokio::time::Instant::now() >= until {
                    return None;
                }
                let login = lock(&session.login).clone();
                let started = tokio::time::Instant::now();
                let conn =
                    upstream::connect(&address, tls.as_deref(), &login, timeout, proxy_protocol)
                        .await;
                metrics::backend_connect(side, started.into_std(), conn.is_ok());
                let opened = match conn {
                    Ok(conn) => {
                        *lock(&session.preopened) = Some((epoch, conn));
                        Some(())
                    }
                    Err(e) => {
                        tracing::debug!(
                            session = session.id,
                            "pre-open failed (will connect at the move): {e}"
                        );
                        None
                    }
                };
                // The rest, with the permit still held: at most about half the time
                // is spent logging in, whatever the servers' speed.
                tokio::time::sleep(started.elapsed().min(PRE_OPEN_MAX_REST)).await;
                opened
            }));
        }
        let mut opened = 0;
        for t in tasks {
            if let Ok(Some(())) = t.await {
                opened += 1;
            }
        }
        opened
    }

    /// Closes the connections [`Proxy::pre_open`] opened and no session took.
    pub fn forget_pre_opened(&self) {
        for s in self.sessions.all() {
            lock(&s.preopened).take();
        }
    }

    /// Greets `address` and returns its version and the capability bits live sessions
    /// negotiated that it does not offer (bit 0, MySQL-vs-MariaDB, ignored).
    pub async fn missing_capabilities(
        &self,
        address: &str,
        timeout: Duration,
    ) -> Result<(String, u32), upstream::ConnectError> {
        let info = upstream::probe_greeting(address, timeout).await?;
        let mut missing = 0u32;
        for s in self.sessions.all() {
            missing |= lock(&s.login).caps & upstream::RELAYED_CAPS & !info.capabilities;
        }
        missing &= !1;
        Ok((String::from_utf8_lossy(&info.version).into_owned(), missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn server(version: &'static [u8], mysql: bool) -> ServerInfo {
        let mut info = ServerInfo::fallback();
        info.version = Bytes::from_static(version);
        info.capabilities = if mysql {
            info.capabilities | CLIENT_MYSQL
        } else {
            info.capabilities & !CLIENT_MYSQL
        };
        info
    }

    fn accounts() -> HashMap<String, Credential> {
        HashMap::from([
            ("app".to_string(), Credential::from_password(b"pw")),
            ("zed".to_string(), Credential::NativeHash([1; 20])),
            ("old".to_string(), Credential::NativeHash([2; 20])),
            ("nopw".to_string(), Credential::Empty),
        ])
    }

    #[test]
    fn hash_only_accounts_are_named_when_the_backend_is_mysql() {
        let message = hash_only_on_mysql(&server(b"9.7.4", true), &accounts()).unwrap();
        assert!(message.contains("MySQL (9.7.4)"), "{message}");
        assert!(
            message.contains("`old`, `zed` have only a password_hash"),
            "{message}"
        );
        assert!(
            !message.contains("`app`") && !message.contains("`nopw`"),
            "{message}"
        );
        assert!(
            message.contains("`password_file` or `password_env`"),
            "{message}"
        );
        let one = HashMap::from([("zed".to_string(), Credential::NativeHash([1; 20]))]);
        let message = hash_only_on_mysql(&server(b"9.7.4", true), &one).unwrap();
        assert!(message.contains("`zed` has only"), "{message}");
    }

    #[test]
    fn mariadb_or_passwords_only_say_nothing() {
        let mariadb = server(b"5.5.5-10.11.6-MariaDB", false);
        assert_eq!(hash_only_on_mysql(&mariadb, &accounts()), None);
        let passwords = HashMap::from([("app".to_string(), Credential::from_password(b"pw"))]);
        assert_eq!(
            hash_only_on_mysql(&server(b"9.7.4", true), &passwords),
            None
        );
    }
}
