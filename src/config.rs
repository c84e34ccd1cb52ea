//! The TOML configuration: its structure, its defaults (in one place, the `default_*`
//! functions) and its validation.
//!
//! Invariants: unknown keys are rejected (`deny_unknown_fields` everywhere); a
//! [`Config`] returned by [`Config::load`] or [`Config::parse`] has been validated, so
//! the rest of the proxy never re-checks it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::auth;
use crate::protocol::credential::Credential;

mod secrets;
pub use secrets::plaintext_warning;
use secrets::PasswordKeys;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid TOML for switchyard: {0}")]
    Parse(String),
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where applications connect and how client sessions are bounded.
    pub proxy: ProxyConfig,
    /// Today's production database: every session is routed here.
    pub blue: BackendConfig,
    /// The staging copy that a switchover promotes.
    pub green: Option<BackendConfig>,
    /// The account used for control-plane SQL on blue and green (loading users,
    /// probing the server's handshake).
    pub control: Option<ControlConfig>,
    /// How application accounts are found.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Application accounts allowed through the proxy.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// How switchovers run.
    #[serde(default)]
    pub switchover: SwitchoverConfig,
    /// The account the old primary replicates with after a switchover (the way back);
    /// falls back to `[control]`.
    pub replication: Option<ControlConfig>,
    /// TLS on the client leg: the proxy's certificate and what it requires.
    pub tls: Option<TlsConfig>,
    /// Traces and the background health poll.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[telemetry]`: OpenTelemetry export and the background health poll behind the
/// replication and guardrail metrics and `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP endpoint traces of switchovers are sent to, e.g.
    /// `"http://127.0.0.1:4318"` (`/v1/traces` is added); off when absent.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// How often the guardrails, the standby's replication and the active side's
    /// health are checked in the background, e.g. `"10s"`; `"0s"` turns the poll off.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: default_service_name(),
            poll_interval: default_poll_interval(),
        }
    }
}

/// The OTLP exporter speaks plain HTTP only: a TLS endpoint is refused here rather
/// than failing at the first switchover.
fn check_otlp_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let key = "telemetry.otlp_endpoint";
    if endpoint.starts_with("https://") {
        return Err(invalid(
            key,
            "https:// is not supported: the exporter speaks plain http:// only (run a local collector and point this at it)",
        ));
    }
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return Err(invalid(
            key,
            "must start with http://, e.g. \"http://127.0.0.1:4318\"",
        ));
    };
    if rest.split('/').next().is_none_or(str::is_empty) {
        return Err(invalid(key, "has no host, e.g. \"http://127.0.0.1:4318\""));
    }
    Ok(())
}

fn default_service_name() -> String {
    "switchyard".into()
}
fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// `[proxy] log_format`: how log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The `[proxy] log_format` of the file at `path`, read before logging starts so
    /// that the full load's own warnings and errors are already in that format. Any
    /// problem reading it means `Text`: the full load then reports it.
    pub fn peek(path: &Path) -> LogFormat {
        #[derive(Deserialize)]
        struct File {
            proxy: Option<Proxy>,
        }
        #[derive(Deserialize)]
        struct Proxy {
            #[serde(default)]
            log_format: LogFormat,
        }
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| toml::from_str::<File>(&text).ok())
            .and_then(|f| f.proxy)
            .map_or(LogFormat::Text, |p| p.log_format)
    }
}

/// `[tls]`: the proxy as a TLS server to its clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The proxy's certificate chain (PEM), leaf first.
    pub cert: std::path::PathBuf,
    /// Its private key (PEM); refused when others can read it.
    pub key: std::path::PathBuf,
    /// The oldest TLS version accepted: `"1.2"` or `"1.3"`.
    #[serde(default = "default_tls_min_version")]
    pub min_version: String,
    /// Refuse logins that did not upgrade to TLS, as a server started with
    /// `require_secure_transport=ON` does.
    #[serde(default)]
    pub require_secure_transport: bool,
}

/// `[switchover]`: bounds and policies of a switchover.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverConfig {
    /// The whole switchover, precheck to done; past it, it rolls back.
    #[serde(default = "default_switchover_timeout")]
    pub timeout: HumanDuration,
    /// How long to wait for open transactions to finish (and pins to clear) while new
    /// commands are held.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
    /// Bound on `SET GLOBAL read_only=ON` on the old primary (it can wait on locks).
    #[serde(default = "default_fence_timeout")]
    pub fence_timeout: HumanDuration,
    /// Bound on `MASTER_GTID_WAIT` on the new primary.
    #[serde(default = "default_catchup_timeout")]
    pub catchup_timeout: HumanDuration,
    /// Largest replication lag (`Seconds_Behind_Master`, an estimate used only to
    /// decide whether to start) that the precheck accepts.
    #[serde(default = "default_max_lag")]
    pub max_lag: HumanDuration,
    /// Longest time applications may be held (gate closed) before the switchover gives
    /// up and rolls back, if it has not reached promotion.
    #[serde(default = "default_max_pause")]
    pub max_pause: HumanDuration,
    /// Pinned sessions (temporary tables, LOCK TABLES, GET_LOCK, XA, open cursors)
    /// still pinned at the drain timeout: `"abort"` the switchover, or `"close"` only
    /// those sessions with a clear error.
    #[serde(default)]
    pub on_pinned: OnPinned,
    /// Make the old primary a replica of the new one, so the next switchover can go
    /// back with nothing lost.
    #[serde(default = "default_true")]
    pub reverse_replication: bool,
    /// Connections to the old primary that bypass the proxy with privileges that
    /// ignore `read_only`: `"refuse"` the switchover, `"kill"` them at the fence, or
    /// `"ignore"` them.
    #[serde(default)]
    pub bypass_writers: BypassWriters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnPinned {
    #[default]
    Abort,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BypassWriters {
    #[default]
    Refuse,
    Kill,
    Ignore,
}

impl Default for SwitchoverConfig {
    fn default() -> Self {
        SwitchoverConfig {
            timeout: default_switchover_timeout(),
            drain_timeout: default_drain_timeout(),
            fence_timeout: default_fence_timeout(),
            catchup_timeout: default_catchup_timeout(),
            max_lag: default_max_lag(),
            max_pause: default_max_pause(),
            on_pinned: OnPinned::default(),
            reverse_replication: true,
            bypass_writers: BypassWriters::default(),
        }
    }
}

fn default_switchover_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_drain_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_fence_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_catchup_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_max_lag() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_max_pause() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}
fn default_true() -> bool {
    true
}

/// `[proxy]`: the client-facing side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address applications connect to, e.g. `"127.0.0.1:6033"`.
    pub listen: String,
    /// Client sessions allowed at once; the next one gets ER_CON_COUNT_ERROR (1040).
    #[serde(default = "default_max_client_connections")]
    pub max_client_connections: usize,
    /// Threads that run client sessions (each a single-threaded runtime owning its
    /// sessions, like HAProxy's `nbthread`); 0, the default, means one per core.
    #[serde(default)]
    pub threads: usize,
    /// Largest logical packet accepted from a client, e.g. `"64MiB"`; a bigger one gets
    /// ER_NET_PACKET_TOO_LARGE (1153) and the session is closed, as a server does.
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: ByteSize,
    /// Time a client has to finish logging in, e.g. `"10s"`.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: HumanDuration,
    /// Time a logged-in client has from the first byte of a packet to its last, e.g.
    /// `"30s"` (a server's `net_read_timeout`). Past it the session gets
    /// ER_NET_READ_INTERRUPTED (1159) and is closed. Idle time between commands is
    /// not bounded; the connection phase is bounded by `handshake_timeout`.
    #[serde(default = "default_net_read_timeout")]
    pub net_read_timeout: HumanDuration,
    /// Offer clients the compressed protocol (zlib, and zstd to MySQL clients when
    /// the backend is MySQL and offers it). The backend connection stays uncompressed.
    #[serde(default = "default_true")]
    pub compression: bool,
    /// Time allowed to open and log in to a backend connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// On SIGINT/SIGTERM the proxy stops accepting clients and gives a running
    /// switchover and open transactions this long to finish (new transactions wait);
    /// then it closes every session and exits.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// Unix socket for the admin commands (`switchyard ctl`); created mode 0600.
    pub admin_socket: Option<std::path::PathBuf>,
    /// File recording the active side and the switchover phase (atomic writes), so a
    /// restarted proxy routes to the right side.
    pub state_file: Option<std::path::PathBuf>,
    /// Failed logins (or COM_CHANGE_USER) from one client address answered at once;
    /// each further failure's ERR is delayed.
    #[serde(default = "default_auth_failure_delay_after")]
    pub auth_failure_delay_after: u32,
    /// The delay of the first delayed failure; each next one waits one more of it, up
    /// to ten of it (and never more than half of `handshake_timeout`).
    #[serde(default = "default_auth_failure_delay")]
    pub auth_failure_delay: HumanDuration,
    /// Failed logins from one client address after which it is blocked (like a
    /// server's `max_connect_errors`): its new connections get ERR 1129. 0: never.
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures: u32,
    /// How long a blocked address stays blocked, e.g. `"5m"`.
    #[serde(default = "default_auth_block_time")]
    pub auth_block_time: HumanDuration,
    /// HTTP address serving `/metrics` (Prometheus), `/livez` and `/readyz`, e.g.
    /// `"127.0.0.1:9187"`; off when absent. Nothing there changes state.
    pub metrics_listen: Option<String>,
    /// `"text"` (the default) or `"json"` (one object per line).
    #[serde(default)]
    pub log_format: LogFormat,
}

/// `[blue]` / `[green]`: one database server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `host:port` of the server.
    pub address: String,
    /// Start every session connection to this server with a PROXY protocol v2 header
    /// naming the client's address (MariaDB's `proxy_protocol_networks`).
    #[serde(default)]
    pub proxy_protocol: bool,
    /// TLS to this server, for session and control connections.
    #[serde(default)]
    pub tls: bool,
    /// The CA bundle (PEM) the server's certificate must chain to.
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry; the host of `address` when absent.
    pub tls_server_name: Option<String>,
    /// Check the server's certificate and name (on unless turned off).
    #[serde(default = "default_true")]
    pub tls_verify_server_cert: bool,
    /// A client certificate chain (PEM) to present, with `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    pub tls_key: Option<std::path::PathBuf>,
}

impl BackendConfig {
    /// The host part of `address`, without IPv6 brackets.
    pub fn host(&self) -> &str {
        let host = self
            .address
            .rsplit_once(':')
            .map_or(&*self.address, |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    fn check_tls(&self, side: &str) -> Result<(), ConfigError> {
        // The other tls_* keys may be written down before TLS is turned on.
        if !self.tls {
            return Ok(());
        }
        if self.tls_verify_server_cert && self.tls_ca.is_none() {
            return Err(invalid(
                format!("{side}.tls_ca"),
                "needed to verify the server's certificate (or set tls_verify_server_cert = false)",
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid(
                format!("{side}.tls_cert"),
                "tls_cert and tls_key go together",
            ));
        }
        Ok(())
    }
}

/// `[control]`: the control-plane account (and `[replication]`, the replication
/// account). Give exactly one of `password`, `password_file` and `password_env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// User name of the account.
    pub user: String,
    /// Its password in clear.
    pub password: Option<String>,
    /// A file holding its password (one trailing newline is ignored), read when the
    /// config is loaded.
    pub password_file: Option<String>,
    /// An environment variable of the proxy holding its password.
    pub password_env: Option<String>,
    /// `[replication]` only: the CA bundle a replica checks its source's certificate
    /// against when the source is reached over TLS — a path on the database servers.
    pub tls_ca: Option<String>,
    /// `[replication]` only: a client certificate and key for the replica (paths on
    /// the database servers).
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// The password from whichever key gave it, filled in when the config is loaded.
    #[serde(skip)]
    resolved: String,
}

/// How a replica reaches a source that is on TLS (paths on the replica's host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTls {
    /// Verify the source's certificate against this CA.
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl ControlConfig {
    /// An account with its password given in clear.
    pub fn new(user: &str, password: &str) -> Self {
        ControlConfig {
            user: user.to_owned(),
            password: Some(password.to_owned()),
            password_file: None,
            password_env: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            resolved: password.to_owned(),
        }
    }

    /// The account's password, whichever key gave it.
    pub fn password(&self) -> &str {
        &self.resolved
    }

    fn keys(&self) -> PasswordKeys<'_> {
        PasswordKeys {
            password: self.password.as_deref(),
            password_file: self.password_file.as_deref(),
            password_env: self.password_env.as_deref(),
        }
    }
}

/// `[auth]`: where application credentials come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Also load accounts and their `mysql_native_password` hashes from the active
    /// backend's `mysql.user` through the control account, so that no application
    /// password has to live in this file. Reloaded when an unknown user connects or a
    /// password does not match, at most once per `refresh_interval`.
    #[serde(default)]
    pub load_from_backend: bool,
    /// Minimum time between two loads from the backend.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: HumanDuration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            load_from_backend: false,
            refresh_interval: default_refresh_interval(),
        }
    }
}

/// `[[users]]`: one application account. Give exactly one of `password`,
/// `password_file`, `password_env` and `password_hash`. Clients that log in with
/// `caching_sha2_password` (MySQL 8 and 9 clients) and MySQL backends need the
/// password itself; a `password_hash` serves `mysql_native_password` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The account's user name (as the database knows it).
    pub name: String,
    /// Its password in clear.
    pub password: Option<String>,
    /// A file holding its password (one trailing newline is ignored), read when the
    /// config is loaded.
    pub password_file: Option<String>,
    /// An environment variable of the proxy holding its password.
    pub password_env: Option<String>,
    /// Its `mysql_native_password` hash, `*` followed by 40 hex digits, as shown by
    /// `SELECT Password FROM mysql.user`.
    pub password_hash: Option<String>,
}

impl UserConfig {
    /// The account's credential from whichever source is given; `key` names the entry.
    fn credential(&self, key: &str) -> Result<Credential, ConfigError> {
        let keys = PasswordKeys {
            password: self.password.as_deref(),
            password_file: self.password_file.as_deref(),
            password_env: self.password_env.as_deref(),
        };
        match keys.given() + usize::from(self.password_hash.is_some()) {
            0 => {
                return Err(invalid(
                    key,
                    "needs a password, password_file, password_env or password_hash",
                ))
            }
            1 => {}
            _ => {
                return Err(invalid(
                    key,
                    "give only one of password, password_file, password_env and password_hash",
                ))
            }
        }
        if let Some(pw) = keys.read(key)? {
            return Ok(Credential::from_password(&pw));
        }
        match self.password_hash.as_deref().unwrap_or_default() {
            "" => Ok(Credential::Empty),
            h => auth::parse_native_hash(h)
                .map(Credential::NativeHash)
                .map_err(|_| {
                    invalid(
                        format!("{key}.password_hash"),
                        "must be `*` followed by 40 hex digits (a mysql_native_password hash)",
                    )
                }),
        }
    }
}

impl ProxyConfig {
    /// The session threads to start: `threads`, or one per core when it is 0.
    pub fn session_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

fn default_max_client_connections() -> usize {
    4096
}
fn default_max_packet_size() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_handshake_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_net_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_auth_failure_delay_after() -> u32 {
    3
}
fn default_auth_failure_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_max_auth_failures() -> u32 {
    100
}
fn default_auth_block_time() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_tls_min_version() -> String {
    "1.2".to_owned()
}
fn default_refresh_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

impl Config {
    /// Reads, parses and validates a config file; warns when the file holds a
    /// password in clear and others may read it (at start and at each reload).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config = Config::parse(&text)?;
        if let Some(warning) = plaintext_warning(path, &config) {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }

    /// Parses and validates config text; reads the `[control]` and `[replication]`
    /// passwords from their files or variables.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for (key, account) in [
            ("control", config.control.as_mut()),
            ("replication", config.replication.as_mut()),
        ] {
            if let Some(account) = account {
                account.resolved = account.keys().read_text(key)?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether session connections to the server at `address` start with a PROXY
    /// protocol header.
    pub fn sends_proxy_header(&self, address: &str) -> bool {
        self.backend(address).is_some_and(|b| b.proxy_protocol)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.proxy
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("proxy.listen", format!("not an ip:port address: {e}")))?;
        if self.proxy.max_client_connections == 0 {
            return Err(invalid(
                "proxy.max_client_connections",
                "must be at least 1",
            ));
        }
        let size = self.proxy.max_packet_size.0;
        if !(1024..=(1 << 30)).contains(&size) {
            return Err(invalid(
                "proxy.max_packet_size",
                "must be between 1KiB and 1GiB",
            ));
        }
        check_address("blue.address", &self.blue.address)?;
        self.blue.check_tls("blue")?;
        if let Some(green) = &self.green {
            check_address("green.address", &green.address)?;
            green.check_tls("green")?;
        }
        if let Some(tls) = &self.tls {
            if !matches!(tls.min_version.as_str(), "1.2" | "1.3") {
                return Err(invalid("tls.min_version", "must be \"1.2\" or \"1.3\""));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            check_otlp_endpoint(endpoint)?;
        }
        if self.auth.load_from_backend && self.control.is_none() {
            return Err(invalid(
                "auth.load_from_backend",
                "needs a [control] account to read mysql.user",
            ));
        }
        self.credentials()?;
        if let Some(control) = &self.control {
            if control.tls_ca.is_some() || control.tls_cert.is_some() || control.tls_key.is_some() {
                return Err(invalid(
                    "control.tls_ca",
                    "tls_ca, tls_cert and tls_key belong in [replication] (the proxy's own TLS to a server is in [blue]/[green])",
                ));
            }
        }
        if let Some(repl) = &self.replication {
            if repl.tls_cert.is_some() != repl.tls_key.is_some() {
                return Err(invalid(
                    "replication.tls_cert",
                    "tls_cert and tls_key go together",
                ));
            }
        }
        let sw = &self.switchover;
        for (key, d) in [
            ("proxy.handshake_timeout", self.proxy.handshake_timeout),
            ("proxy.net_read_timeout", self.proxy.net_read_timeout),
            ("proxy.connect_timeout", self.proxy.connect_timeout),
            ("proxy.auth_block_time", self.proxy.auth_block_time),
            ("switchover.timeout", sw.timeout),
            ("switchover.drain_timeout", sw.drain_timeout),
            ("switchover.fence_timeout", sw.fence_timeout),
            ("switchover.catchup_timeout", sw.catchup_timeout),
            ("switchover.max_pause", sw.max_pause),
        ] {
            if d.0.is_zero() {
                return Err(invalid(key, "must be more than zero"));
            }
        }
        Ok(())
    }

    /// The `[blue]` or `[green]` entry of the server at `address`, if either is.
    pub fn backend(&self, address: &str) -> Option<&BackendConfig> {
        std::iter::once(&self.blue)
            .chain(self.green.as_ref())
            .find(|b| b.address == address)
    }

    /// Whether the server at `address` is reached over TLS.
    pub fn tls_to(&self, address: &str) -> bool {
        self.backend(address).is_some_and(|b| b.tls)
    }

    /// How a replica of the server at `address` reaches it: over TLS (checked
    /// against `[replication] tls_ca` when given) when the proxy reaches it so.
    pub fn source_tls(&self, address: &str) -> Option<SourceTls> {
        if !self.tls_to(address) {
            return None;
        }
        let repl = self.replication.as_ref();
        Some(SourceTls {
            ca: repl.and_then(|r| r.tls_ca.clone()),
            cert: repl.and_then(|r| r.tls_cert.clone()),
            key: repl.and_then(|r| r.tls_key.clone()),
        })
    }

    /// The `[[users]]` table: user name → what is known of its password.
    pub fn credentials(&self) -> Result<HashMap<String, Credential>, ConfigError> {
        let mut out = HashMap::new();
        for (i, user) in self.users.iter().enumerate() {
            let key = format!("users[{i}]");
            if user.name.is_empty() {
                return Err(invalid(format!("{key}.name"), "must not be empty"));
            }
            let credential = user.credential(&key)?;
            if out.insert(user.name.clone(), credential).is_some() {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("user `{}` is listed twice", user.name),
                ));
            }
        }
        Ok(out)
    }
}

fn check_address(key: &str, address: &str) -> Result<(), ConfigError> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(invalid(key, format!("`{address}` is not host:port"))),
    }
}

/// A byte size written as `"64MiB"`, `"512KiB"`, `"1GiB"`, `"16MB"` or a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(n) if n >= 0 => Ok(ByteSize(n as u64)),
            toml::Value::String(s) => parse_size(&s).map(ByteSize),
            other => Err(format!("expected a size like \"64MiB\", got {other}")),
        }
    }
}

/// Parses `"64MiB"`-style sizes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like \"64MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "unknown size unit `{u}` in `{s}` (use B, KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A duration written as `"10s"`, `"250ms"`, `"2m"`, `"1h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s).map(HumanDuration)
    }
}

/// Parses `"10s"`-style durations.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like \"10s\""))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "" => return Err(format!("`{s}` needs a unit (ms, s, m, h)")),
        u => {
            return Err(format!(
                "unknown duration unit `{u}` in `{s}` (use ms, s, m, h)"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[proxy]
listen = "127.0.0.1:6033"
[blue]
address = "127.0.0.1:3307"
[[users]]
name = "app"
password = "secret"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.proxy.max_client_connections, 4096);
        assert_eq!(c.proxy.threads, 0);
        assert!(c.proxy.session_threads() >= 1);
        assert_eq!(c.proxy.max_packet_size, ByteSize(64 << 20));
        assert_eq!(c.proxy.handshake_timeout.0, Duration::from_secs(10));
        assert_eq!(c.proxy.net_read_timeout.0, Duration::from_secs(30));
        assert!(c.proxy.compression);
        assert!(c.green.is_none());
        assert_eq!(
            c.credentials().unwrap()["app"],
            Credential::from_password(b"secret")
        );
    }

    #[test]
    fn otlp_endpoint_is_plain_http_only() {
        let with = |endpoint: &str| {
            Config::parse(&format!(
                "{MINIMAL}[telemetry]\notlp_endpoint = \"{endpoint}\"\n"
            ))
        };
        assert!(with("http://127.0.0.1:4318").is_ok());
        let err = with("https://collector:4318").unwrap_err().to_string();
        assert!(
            err.contains("telemetry.otlp_endpoint") && err.contains("https"),
            "{err}"
        );
        assert!(with("collector:4318").is_err());
        assert!(with("http://").is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[blue]", "[blue]\nadress = \"x\"");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::parse(&MINIMAL.replace("127.0.0.1:6033", "nowhere"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("proxy.listen"), "{err}");
        let text = MINIMAL.replace("password = \"secret\"", "password_hash = \"*12\"");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("users[0].password_hash"), "{err}");
        let text = MINIMAL.replace("[blue]", "[proxy.x]\n[blue]");
        assert!(Config::parse(&text).is_err());
        let text = MINIMAL.replace("[blue]", "net_read_timeout = \"0s\"\n[blue]");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("proxy.net_read_timeout"), "{err}");
    }

    /// The README's configuration example and the deploy example are real configs.
    #[test]
    fn documented_configs_parse() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").expect("README has a toml block") + 8;
        let end = start + readme[start..].find("```").expect("closed block");
        let example = readme[start..end].replace('…', "x");
        Config::parse(&example).unwrap_or_else(|e| panic!("README config example: {e}"));
        Config::parse(include_str!("../deploy/switchyard.toml")).unwrap();
    }

    #[test]
    fn password_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let text = MINIMAL.replace(
            "password = \"secret\"",
            &format!("password_file = \"{}\"", file.display()),
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            c.credentials().unwrap()["app"],
            Credential::from_password(b"from-file")
        );

        std::env::set_var("SWITCHYARD_TEST_APP_PASSWORD", "from-env");
        let text = MINIMAL.replace(
            "password = \"secret\"",
            "password_env = \"SWITCHYARD_TEST_APP_PASSWORD\"",
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            c.credentials().unwrap()["app"],
            Credential::from_password(b"from-env")
        );

        let text = MINIMAL.replace(
            "password = \"secret\"",
            "password_env = \"SWITCHYARD_TEST_UNSET_VARIABLE\"",
        );
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("users[0].password_env"), "{err}");
        let text = MINIMAL.replace(
            "password = \"secret\"",
            "password_file = \"/nonexistent/pw\"",
        );
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("users[0].password_file"), "{err}");
        let text = MINIMAL.replace(
            "password = \"secret\"",
            "password = \"a\"\npassword_env = \"HOME\"",
        );
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("only one of"), "{err}");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn tls_keys_are_checked() {
        let with = |extra: &str| Config::parse(&format!("{MINIMAL}{extra}"));
        let tls = with("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
        let tls = tls.tls.unwrap();
        assert_eq!(tls.min_version, "1.2");
        assert!(!tls.require_secure_transport);
        let err = with("[tls]\ncert = \"c\"\nkey = \"k\"\nmin_version = \"1.1\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.min_version"), "{err}");
        // A backend on TLS needs a CA unless verification is turned off.
        let blue = MINIMAL.replace(
            "address = \"127.0.0.1:3307\"",
            "address = \"db1:3307\"\ntls = true",
        );
        let err = Config::parse(&blue).unwrap_err();
        assert!(err.to_string().contains("blue.tls_ca"), "{err}");
        let unverified = blue.replace("tls = true", "tls = true\ntls_verify_server_cert = false");
        let config = Config::parse(&unverified).unwrap();
        assert_eq!(config.blue.host(), "db1");
        assert!(config.tls_to("db1:3307"));
        assert!(!config.tls_to("db2:3307"));
        let staged = MINIMAL.replace(
            "address = \"127.0.0.1:3307\"",
            "address = \"db1:3307\"\ntls_ca = \"ca.pem\"",
        );
        assert!(!Config::parse(&staged).unwrap().tls_to("db1:3307"));
    }
}
