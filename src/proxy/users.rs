//! Application accounts: name → what is known of the password (the password itself,
//! or a `mysql_native_password` hash). From the config's `[[users]]`, and optionally from the active backend's `mysql.user` through the
//! control account, reloaded on demand at most once per refresh interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mysql_async::prelude::Queryable;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{Config, ControlConfig};
use crate::protocol::auth::parse_native_hash;
pub use crate::protocol::credential::Credential;

pub struct UserStore {
    configured: ArcSwap<HashMap<String, Credential>>,
    loaded: ArcSwap<HashMap<String, Credential>>,
    loader: ArcSwap<Option<Loader>>,
    last_load: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Loader {
    control: ControlConfig,
    interval: Duration,
}

impl UserStore {
    pub fn new(config: &Config) -> Self {
        let store = UserStore {
            configured: ArcSwap::from_pointee(HashMap::new()),
            loaded: ArcSwap::from_pointee(HashMap::new()),
            loader: ArcSwap::from_pointee(None),
            last_load: Mutex::new(None),
        };
        store.apply(config);
        store
    }

    /// Takes the users of a (validated) config.
    pub fn apply(&self, config: &Config) {
        self.configured
            .store(Arc::new(config.credentials().unwrap_or_default()));
        let loader = match (&config.control, config.auth.load_from_backend) {
            (Some(control), true) => Some(Loader {
                control: control.clone(),
                interval: config.auth.refresh_interval.0,
            }),
            _ => None,
        };
        self.loader.store(Arc::new(loader));
    }

    /// Looks a user up; `None` when unknown. Configured users win over loaded ones.
    pub fn get(&self, user: &str) -> Option<Credential> {
        if let Some(c) = self.configured.load().get(user) {
            return Some(c.clone());
        }
        self.loaded.load().get(user).cloned()
    }

    /// Every account name the proxy knows, configured or loaded, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .configured
            .load()
            .keys()
            .chain(self.loaded.load().keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether a reload from the backend could change the answer for `user`.
    pub fn can_load(&self, user: &str) -> bool {
        self.loader.load().is_some() && !self.configured.load().contains_key(user)
    }

    /// Reloads from the backend at `address` unless that was done less than the
    /// refresh interval ago. Returns whether a load happened.
    pub async fn refresh(&self, address: &str) -> bool {
        let Some(loader) = self.loader.load_full().as_ref().clone() else {
            return false;
        };
        let mut last = self.last_load.lock().await;
        if last.is_some_and(|t| t.elapsed() < loader.interval) {
            return false;
        }
        *last = Some(Instant::now());
        match load_users(address, &loader.control).await {
            Ok(users) => {
                tracing::info!(count = users.len(), "loaded accounts from {address}");
                self.loaded.store(Arc::new(users));
                true
            }
            Err(e) => {
                tracing::warn!("cannot load accounts from {address}: {e}");
                false
            }
        }
    }
}

/// Reads `mysql_native_password` accounts from `mysql.user`. An account defined for
/// several hosts with different passwords keeps the first hash read; the database
/// still checks the host when the proxy logs in as that user.
pub async fn load_users(
    address: &str,
    control: &ControlConfig,
) -> Result<HashMap<String, Credential>, mysql_async::Error> {
    let mut conn = control_connection(address, control).await?;
    let rows: Vec<(String, Option<String>, Option<String>)> = conn
        .query("SELECT User, Password, plugin FROM mysql.user WHERE User <> '' ORDER BY Host = '%' DESC")
        .await?;
    conn.disconnect().await.ok();
    let mut out = HashMap::new();
    for (user, password, plugin) in rows {
        let plugin = plugin.unwrap_or_default();
        if !(plugin.is_empty() || plugin == "mysql_native_password") {
            continue;
        }
        let hash = match password.as_deref() {
            None | Some("") => Credential::Empty,
            Some(h) => match parse_native_hash(h) {
                Ok(h) => Credential::NativeHash(h),
                Err(_) => continue,
            },
        };
        out.entry(user).or_insert(hash);
    }
    Ok(out)
}

/// A control-plane connection (plain TCP, no socket) to `address`.
pub async fn control_connection(
    address: &str,
    control: &ControlConfig,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "3306"));
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port.parse().unwrap_or(3306))
        .user(Some(control.user.clone()))
        .pass(Some(control.password().to_owned()))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}
