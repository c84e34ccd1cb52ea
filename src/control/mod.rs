//! Control-plane SQL to one server (blue or green), as the control account: fence, GTID positions,
//! replication, sessions, privileges — what the switchover orchestrator asks of a
//! server. Two dialects: MariaDB's (`SHOW SLAVE STATUS`, `MASTER_GTID_WAIT`) and
//! MySQL's (`SHOW REPLICA STATUS`, `WAIT_FOR_EXECUTED_GTID_SET`), told apart once per
//! connection by the server's version; both run against real servers in the tests
//! (MySQL 9.7).
//!
//! Invariants:
//! - every call is bounded: by the timeout it is given, else the [`Control`]'s own;
//! - a statement that overruns its bound is interrupted on the server with
//!   `KILL QUERY` from a second connection, so nothing we started keeps running (or
//!   keeps blocking writers, as a pending `SET GLOBAL read_only=ON` does);
//! - a connection in an unknown state is dropped; the next call opens a new one;
//! - nothing here writes a binlog event: every statement is `SET GLOBAL`, a replication
//!   command, `KILL` or a read, so a fenced server's GTID position stays put.
//!
//! - [`flavor`]: MariaDB or MySQL, and the SQL text that differs between them.
//! - [`gtid`]: MariaDB GTID positions and states as values (parse, compare, errant GTIDs).
//! - [`gtid_mysql`]: MySQL GTID sets as values (parse, subset, subtract).

mod error;
pub mod flavor;
pub mod gtid;
pub mod gtid_mysql;
mod privileges;
mod replication;
mod sessions;
mod sql;

use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};

use crate::config::{BackendConfig, Config, ControlConfig};

pub use error::ControlError;
pub use flavor::{Dialect, Flavor};
pub use gtid::{errant, errant_by_state, Gtid, GtidParseError, GtidSet};
pub use gtid_mysql::{MySqlGtidParseError, MySqlGtidSet};
pub use replication::ReplicaStatus;
pub use sessions::{ClientConn, LongTrx};

/// How long a `KILL QUERY` (its own connection included) may take, and how long the
/// killed statement then has to answer before its connection is given up.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Run on every control connection. Our string literals escape backslashes, which
/// `NO_BACKSLASH_ESCAPES` would make literal; nothing else in `sql_mode` matters to
/// the statements sent here.
const SESSION_SETUP: &str =
    "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";

/// One control connection to one server (`host:port`), as the control account.
pub struct Control {
    address: String,
    opts: Opts,
    /// `None` after the connection was lost or left mid-statement.
    conn: Option<Conn>,
    /// The server's id for `conn` (`CONNECTION_ID()`), for `KILL QUERY`.
    conn_id: u64,
    /// The dialect `conn`'s server speaks, read from its `VERSION()` at connect.
    flavor: Flavor,
    /// Bound for connecting and for calls that take no timeout of their own.
    timeout: Duration,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("address", &self.address)
            .field("connected", &self.conn.is_some())
            .field("conn_id", &self.conn_id)
            .field("flavor", &self.flavor)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Control {
    /// Connect to `address` (`host:port`, plain TCP). `timeout` bounds the connect and
    /// becomes the bound of every call that takes none of its own.
    pub async fn connect(
        address: &str,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Control, ControlError> {
        Control::connect_over(address, None, user, password, timeout).await
    }

    /// [`Control::connect`], over TLS as `tls` (the server's `[blue]`/`[green]` entry)
    /// says when given.
    async fn connect_over(
        address: &str,
        tls: Option<&BackendConfig>,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Control, ControlError> {
        let opts = OptsBuilder::from_opts(opts(address, user, password)?)
            .ssl_opts(tls.and_then(ssl_opts))
            .into();
        let mut control = Control {
            address: address.to_owned(),
            opts,
            conn: None,
            conn_id: 0,
            flavor: Flavor::MariaDb,
            timeout,
        };
        control.reconnect().await?;
        Ok(control)
    }

    /// [`Control::connect`] as `control`, over TLS when `config` says so for the
    /// server at `address`.
    pub async fn connect_with(
        config: &Config,
        control: &ControlConfig,
        address: &str,
        timeout: Duration,
    ) -> Result<Control, ControlError> {
        let tls = config.backend(address);
        Control::connect_over(address, tls, &control.user, control.password(), timeout).await
    }

    /// The server's `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The server's dialect, as its version said at the last connect.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The SQL text of [`Control::flavor`].
    fn dialect(&self) -> &'static Dialect {
        self.flavor.dialect()
    }

    /// The bound of calls that take no timeout of their own.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The server's id of our connection (`CONNECTION_ID()`); `None` while
    /// disconnected (the next call reconnects).
    pub fn connection_id(&self) -> Option<u64> {
        self.conn.as_ref().map(|_| self.conn_id)
    }

    /// Run any one statement, discarding its result (the escape hatch). Bounded by the
    /// connection's timeout.
    pub async fn query_drop(&mut self, sql: &str) -> Result<(), ControlError> {
        let timeout = self.timeout;
        self.run("query", sql, timeout).await.map(drop)
    }

    /// Run one read-only statement and return its rows, bounded by the connection's
    /// timeout (the escape hatch for callers that read catalogs, such as
    /// `information_schema`).
    pub async fn query_rows(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<Vec<Row>, ControlError> {
        let timeout = self.timeout;
        self.run(what, sql, timeout).await
    }

    /// Run `LOAD DATA LOCAL INFILE …` (`sql`) with `data` as the file's contents, bounded
    /// by the connection's timeout. The server must allow `local_infile`.
    pub async fn load_local(&mut self, sql: &str, data: bytes::Bytes) -> Result<(), ControlError> {
        use futures_util::StreamExt;
        if self.conn.is_none() {
            self.reconnect().await?;
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.set_infile_handler(async move {
                Ok(futures_util::stream::once(async move { Ok(data) }).boxed())
            });
        }
        let timeout = self.timeout;
        self.run("LOAD DATA LOCAL", sql, timeout).await.map(drop)
    }

    /// Connects now if the last call left no connection, so that
    /// [`Control::connection_id`] names the connection the next statement goes on.
    pub async fn ensure_connected(&mut self) -> Result<(), ControlError> {
        if self.conn.is_none() {
            self.reconnect().await?;
        }
        Ok(())
    }

    /// Drops the connection without a word: a call on it was cut off mid-way, so what
    /// it would read next cannot be trusted. The next call reconnects.
    pub fn forget_connection(&mut self) {
        self.conn = None;
    }

    /// Close the connection politely.
    pub async fn disconnect(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.timeout, conn.disconnect()).await;
        }
    }

    /// Open a fresh connection in place of the current one.
    async fn reconnect(&mut self) -> Result<(), ControlError> {
        self.conn = None;
        let (conn, id, flavor) = open(&self.address, &self.opts, self.timeout).await?;
        self.conn = Some(conn);
        self.conn_id = id;
        self.flavor = flavor;
        Ok(())
    }

    /// Run one statement, bounded by `timeout`; its rows (none for a command).
    ///
    /// On timeout the statement is killed on the server; if it then still finishes
    /// successfully (the kill came too late), its result is returned: it took effect.
    async fn run(
        &mut self,
        what: &'static str,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<Row>, ControlError> {
        if self.conn.is_none() {
            self.reconnect().await?;
        }
        let killer = Killer {
            address: &self.address,
            opts: &self.opts,
            id: self.conn_id,
        };
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.unexpected("no control connection"));
        };
        tracing::trace!(server = %self.address, what, sql, "control statement");
        match race(conn.query::<Row, _>(sql), timeout, &killer).await {
            Outcome::Done(Ok(rows)) => Ok(rows),
            Outcome::Done(Err(source)) => {
                if !matches!(source, mysql_async::Error::Server(_)) {
                    // Lost or confused: start over on the next call.
                    self.conn = None;
                }
                Err(ControlError::Sql {
                    address: self.address.clone(),
                    what,
                    source,
                })
            }
            Outcome::Interrupted => Err(self.timed_out(what)),
            Outcome::Abandoned => {
                self.conn = None;
                Err(self.timed_out(what))
            }
        }
    }

    /// The first row of `sql`'s answer; `Unexpected` when there is none.
    async fn first_row(
        &mut self,
        what: &'static str,
        sql: &str,
        timeout: Duration,
    ) -> Result<Row, ControlError> {
        self.run(what, sql, timeout)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| self.unexpected(format!("{what}: no row returned")))
    }

    /// A one-value query's value as text (`None` for SQL NULL).
    async fn scalar(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<Option<String>, ControlError> {
        let timeout = self.timeout;
        let row = self.first_row(what, sql, timeout).await?;
        Ok(sql::text(&row, 0))
    }

    fn unexpected(&self, what: impl Into<String>) -> ControlError {
        ControlError::Unexpected {
            address: self.address.clone(),
            what: what.into(),
        }
    }

    fn timed_out(&self, what: &'static str) -> ControlError {
        ControlError::Timeout {
            address: self.address.clone(),
            what,
        }
    }
}

/// Connection options for `host:port` (a bare host means port 3306).
fn opts(address: &str, user: &str, password: &str) -> Result<Opts, ControlError> {
    let (host, port) = sql::split_address(address).ok_or_else(|| ControlError::Unexpected {
        address: address.to_owned(),
        what: "the address is not host:port".to_owned(),
    })?;
    Ok(OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .into())
}

/// The TLS options of a server's entry, or `None` when it is reached in the clear.
fn ssl_opts(backend: &BackendConfig) -> Option<mysql_async::SslOpts> {
    if !backend.tls {
        return None;
    }
    let path = |p: &std::path::Path| p.to_path_buf().into();
    let mut ssl = mysql_async::SslOpts::default()
        .with_disable_built_in_roots(true)
        .with_danger_accept_invalid_certs(!backend.tls_verify_server_cert)
        .with_danger_skip_domain_validation(!backend.tls_verify_server_cert)
        .with_danger_tls_hostname_override(backend.tls_server_name.clone());
    if let Some(ca) = &backend.tls_ca {
        ssl = ssl.with_root_certs(vec![path(ca)]);
    }
    if let (Some(cert), Some(key)) = (&backend.tls_cert, &backend.tls_key) {
        ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
            path(cert),
            path(key),
        )));
    }
    Some(ssl)
}

/// A new connection, its `CONNECTION_ID()` and its server's flavor (from
/// `VERSION()`), bounded by `timeout`.
async fn open(
    address: &str,
    opts: &Opts,
    timeout: Duration,
) -> Result<(Conn, u64, Flavor), ControlError> {
    let connect = async {
        let mut conn = Conn::new(opts.clone()).await?;
        conn.query_drop(SESSION_SETUP).await?;
        let rows: Vec<Row> = conn.query("SELECT CONNECTION_ID(), VERSION()").await?;
        Ok::<_, mysql_async::Error>((conn, rows))
    };
    let (conn, rows) = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(done)) => done,
        Ok(Err(source)) => {
            return Err(ControlError::Connect {
                address: address.to_owned(),
                source,
            })
        }
        Err(_) => {
            return Err(ControlError::Timeout {
                address: address.to_owned(),
                what: "connect",
            })
        }
    };
    let row = rows.first();
    let id = row
        .and_then(|row| sql::uint(row, 0))
        .ok_or_else(|| ControlError::Unexpected {
            address: address.to_owned(),
            what: "CONNECTION_ID() returned no number".to_owned(),
        })?;
    let version = row.and_then(|row| sql::text(row, 1)).unwrap_or_default();
    Ok((conn, id, Flavor::from_version(&version)))
}

/// How a bounded statement ended.
enum Outcome<T> {
    /// It answered (in time, or just as it was killed).
    Done(Result<T, mysql_async::Error>),
    /// It overran, was killed, and its connection is usable again.
    Interrupted,
    /// It overran and did not answer even after the kill: the connection is lost.
    Abandoned,
}

/// Enough to interrupt a statement from a second connection.
struct Killer<'a> {
    address: &'a str,
    opts: &'a Opts,
    id: u64,
}

impl Killer<'_> {
    /// `KILL QUERY id` from a fresh connection; failures are logged (the caller reports
    /// the timeout either way).
    async fn kill_query(&self) {
        let kill = async {
            let (mut conn, _, _) = open(self.address, self.opts, KILL_GRACE).await?;
            let killed = conn.query_drop(format!("KILL QUERY {}", self.id)).await;
            let _ = conn.disconnect().await;
            killed.map_err(|source| ControlError::Sql {
                address: self.address.to_owned(),
                what: "KILL QUERY",
                source,
            })
        };
        match tokio::time::timeout(KILL_GRACE, kill).await {
            Ok(Ok(())) => {
                tracing::debug!(
                    server = self.address,
                    id = self.id,
                    "interrupted an overrunning control statement"
                )
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot interrupt an overrunning control statement")
            }
            Err(_) => tracing::warn!(
                server = self.address,
                "KILL QUERY for an overrunning control statement timed out"
            ),
        }
    }
}

/// Await `statement` for at most `timeout`; past that, kill it on the server and give
/// it [`KILL_GRACE`] to answer.
async fn race<T>(
    statement: impl Future<Output = Result<T, mysql_async::Error>>,
    timeout: Duration,
    killer: &Killer<'_>,
) -> Outcome<T> {
    tokio::pin!(statement);
    if let Ok(answer) = tokio::time::timeout(timeout, &mut statement).await {
        return Outcome::Done(answer);
    }
    killer.kill_query().await;
    match tokio::time::timeout(KILL_GRACE, &mut statement).await {
        Ok(Ok(value)) => Outcome::Done(Ok(value)),
        // Typically 1317 "Query execution was interrupted": the connection is fine.
        Ok(Err(mysql_async::Error::Server(_))) => Outcome::Interrupted,
        Ok(Err(_)) | Err(_) => Outcome::Abandoned,
    }
}
