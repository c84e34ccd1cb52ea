//! Fence, GTID positions and replication: `read_only`, the GTID variables, the wait
//! for a position, the replica status, and the way back — making a former primary
//! replicate from its successor. The SQL text comes from the server's
//! [`Dialect`](super::Dialect): MariaDB's, and MySQL's (`super_read_only`,
//! `@@gtid_executed`, `WAIT_FOR_EXECUTED_GTID_SET`, `SHOW REPLICA STATUS`,
//! `CHANGE REPLICATION SOURCE TO`), both run by the integration tests (MySQL 9.7).

use std::time::Duration;

use mysql_async::Row;
use tokio::time::{sleep, Instant};

use super::flavor::{Flavor, Statement};
use super::gtid::GtidSet;
use super::sql;
use super::{Control, ControlError};

/// How often [`Control::wait_replicating`] looks at the replica status.
const POLL: Duration = Duration::from_millis(50);

/// The smallest wait sent to a wait function for which 0 means "forever".
const SHORTEST_WAIT: Duration = Duration::from_millis(1);

/// The default replication connection's status (`SHOW SLAVE STATUS` on MariaDB,
/// `SHOW REPLICA STATUS` on MySQL), the fields the switchover looks at. Field docs name
/// MariaDB's column first, then MySQL's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Slave_IO_Running` / `Replica_IO_Running` is `Yes` (not `No`, `Connecting` or
    /// `Preparing`).
    pub io_running: bool,
    /// `Slave_IO_State` / `Replica_IO_State`, e.g. "Waiting for master to send event".
    pub io_state: String,
    /// `Slave_SQL_Running` / `Replica_SQL_Running` is `Yes`.
    pub sql_running: bool,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `Master_Host` / `Source_Host`.
    pub master_host: String,
    /// `Master_Port` / `Source_Port`.
    pub master_port: u16,
    /// `Using_Gtid`: `No`, `Slave_Pos` or `Current_Pos`; on MySQL `Auto_Position` when
    /// its `Auto_Position` column is 1, else `No`.
    pub using_gtid: String,
    /// `Gtid_IO_Pos` (the last GTID the IO thread received, per domain) /
    /// `Retrieved_Gtid_Set` (every GTID the receiver thread received).
    pub gtid_io_pos: String,
    /// `Seconds_Behind_Master` / `Seconds_Behind_Source` (NULL while a thread is
    /// stopped). An estimate for display; never proof of being caught up (that is the
    /// wait for the fence position).
    pub seconds_behind: Option<u64>,
}

impl ReplicaStatus {
    /// Both threads run.
    pub fn is_running(&self) -> bool {
        self.io_running && self.sql_running
    }

    /// The replication error, if a thread reports one (SQL thread first).
    pub fn error(&self) -> Option<&str> {
        [&self.last_sql_error, &self.last_io_error]
            .into_iter()
            .find(|e| !e.is_empty())
            .map(String::as_str)
    }

    /// Whether this replicates from `address` (`host:port`). Compares as written:
    /// `127.0.0.1` and `localhost` are different hosts here.
    pub fn replicates_from(&self, address: &str) -> bool {
        sql::split_address(address)
            .is_some_and(|(host, port)| host == self.master_host && port == self.master_port)
    }
}

/// A replica status row, with the raw IO-thread text (`Yes`, `No`, `Connecting`,
/// `Preparing`).
struct RawStatus {
    status: ReplicaStatus,
    io_running: String,
}

/// A replica status column: MariaDB's name, then MySQL's (8.0.22+).
type Column = [&'static str; 2];

const IO_RUNNING: Column = ["Slave_IO_Running", "Replica_IO_Running"];
const SQL_RUNNING: Column = ["Slave_SQL_Running", "Replica_SQL_Running"];
const IO_STATE: Column = ["Slave_IO_State", "Replica_IO_State"];
const HOST: Column = ["Master_Host", "Source_Host"];
const PORT: Column = ["Master_Port", "Source_Port"];
const BEHIND: Column = ["Seconds_Behind_Master", "Seconds_Behind_Source"];
const GTID_IO_POS: Column = ["Gtid_IO_Pos", "Retrieved_Gtid_Set"];
const LAST_IO_ERROR: Column = ["Last_IO_Error", "Last_IO_Error"];
const LAST_SQL_ERROR: Column = ["Last_SQL_Error", "Last_SQL_Error"];

/// Reads one replica status row through `column` (a column's text by name; `None`
/// when absent or NULL). Takes MariaDB's and MySQL's column names alike.
fn parse_status(column: impl Fn(&str) -> Option<String>) -> Result<RawStatus, String> {
    let text = |names: Column| names.iter().find_map(|name| column(name));
    let required = |names: Column| {
        text(names).ok_or_else(|| format!("the replica status has no {}", names.join(" or ")))
    };
    let io_running = required(IO_RUNNING)?;
    let port = required(PORT)?;
    // MariaDB names its GTID mode; MySQL says whether auto-positioning is on.
    let using_gtid = match (column("Using_Gtid"), column("Auto_Position").as_deref()) {
        (Some(mode), _) => mode,
        (None, Some("1")) => "Auto_Position".to_owned(),
        (None, Some(_)) => "No".to_owned(),
        (None, None) => String::new(),
    };
    let status = ReplicaStatus {
        io_running: io_running == "Yes",
        io_state: text(IO_STATE).unwrap_or_default(),
        sql_running: required(SQL_RUNNING)? == "Yes",
        last_io_error: text(LAST_IO_ERROR).unwrap_or_default(),
        last_sql_error: text(LAST_SQL_ERROR).unwrap_or_default(),
        master_host: text(HOST).unwrap_or_default(),
        master_port: port
            .parse()
            .map_err(|_| format!("the replica's source port {port:?} is not a port"))?,
        using_gtid,
        gtid_io_pos: text(GTID_IO_POS)
            .map(|t| sql::one_line(&t))
            .unwrap_or_default(),
        seconds_behind: text(BEHIND).and_then(|s| s.trim().parse().ok()),
    };
    Ok(RawStatus { status, io_running })
}

/// The default replication connection's row, given each row's `Channel_Name`: MySQL
/// lists one row per channel and names the default one `""`; MariaDB's one row has no
/// such column (`None`). A MySQL server with only named channels has no default one
/// (from MySQL's documentation: the tests run the default channel only).
fn default_channel<R>(rows: &[R], channel: impl Fn(&R) -> Option<String>) -> Option<&R> {
    rows.iter()
        .find(|row| channel(row).is_none_or(|name| name.is_empty()))
}

/// A row's `Channel_Name`, if it has that column.
fn channel_name(row: &Row) -> Option<String> {
    sql::column(row, "Channel_Name").and_then(|i| sql::text(row, i))
}

/// The statement that points a server at `host:port` as its source, with GTIDs,
/// with TLS only when `tls` (the source is reached over TLS by the proxy too; 11.4+
/// MariaDB replicas default to TLS, so it is always said), retrying the connection
/// every second.
///
/// MariaDB: `MASTER_USE_GTID=slave_pos` (the caller sets `gtid_slave_pos` first).
/// MySQL: `SOURCE_AUTO_POSITION=1`, which
/// starts from the replica's own `gtid_executed`; `GET_SOURCE_PUBLIC_KEY=1` lets a
/// `caching_sha2_password` replication account log in without TLS.
fn change_source_sql(
    flavor: Flavor,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    tls: bool,
) -> String {
    let (host, user, password) = (sql::quote(host), sql::quote(user), sql::quote(password));
    let ssl = u8::from(tls);
    match flavor {
        Flavor::MariaDb => format!(
            "CHANGE MASTER TO MASTER_HOST={host}, MASTER_PORT={port}, MASTER_USER={user}, \
             MASTER_PASSWORD={password}, MASTER_USE_GTID=slave_pos, MASTER_SSL={ssl}, \
             MASTER_CONNECT_RETRY=1"
        ),
        Flavor::MySql => format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST={host}, SOURCE_PORT={port}, \
             SOURCE_USER={user}, SOURCE_PASSWORD={password}, SOURCE_AUTO_POSITION=1, \
             SOURCE_SSL={ssl}, SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1"
        ),
    }
}

impl Control {
    /// `@@server_id`.
    pub async fn server_id(&mut self) -> Result<u32, ControlError> {
        let id = self
            .scalar("read server_id", "SELECT @@GLOBAL.server_id")
            .await?;
        id.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.unexpected(format!("server_id is {id:?}")))
    }

    /// `VERSION()`, e.g. `10.11.19-MariaDB-log` or `8.4.3`.
    pub async fn version(&mut self) -> Result<String, ControlError> {
        let v = self.scalar("read version", "SELECT VERSION()").await?;
        v.ok_or_else(|| self.unexpected("VERSION() is NULL"))
    }

    /// `@@read_only` (on MySQL, `super_read_only=ON` implies it).
    pub async fn read_only(&mut self) -> Result<bool, ControlError> {
        let v = self
            .scalar("read read_only", "SELECT @@GLOBAL.read_only")
            .await?;
        // A boolean (0/1) on 10.x and 11.x; read any spelling of "off" as off.
        match v.as_deref().map(str::trim) {
            Some("0") | Some("OFF") => Ok(false),
            Some(_) => Ok(true),
            None => Err(self.unexpected("read_only is NULL")),
        }
    }

    /// The fence, on or off, bounded by `timeout` as a whole. MariaDB:
    /// `SET GLOBAL read_only = ON|OFF`. MySQL: `super_read_only = ON`, which
    /// also stops `SUPER`/`CONNECTION_ADMIN` holders; off sets `super_read_only` and then
    /// `read_only` to OFF.
    ///
    /// Turning it on waits for running writes and for `LOCK TABLES … WRITE` holders,
    /// and while it waits it blocks every new write on the server; so past `timeout` it
    /// is killed (the server then stays as it was) and `Timeout` is returned.
    pub async fn set_read_only(&mut self, on: bool, timeout: Duration) -> Result<(), ControlError> {
        let dialect = self.dialect();
        let statements = if on {
            dialect.fence_on
        } else {
            dialect.fence_off
        };
        let start = Instant::now();
        for statement in statements {
            let left = timeout.saturating_sub(start.elapsed());
            self.run(statement.what, statement.sql, left).await?;
        }
        Ok(())
    }

    /// The fence position: where this server's GTIDs have got to. MariaDB:
    /// `@@gtid_binlog_pos`; MySQL: `@@gtid_executed`, refused unless
    /// `gtid_mode` is ON.
    pub async fn gtid_position(&mut self) -> Result<String, ControlError> {
        self.gtids(self.dialect().gtid_position).await
    }

    /// Everything this server has logged, to compare with another server for errant
    /// GTIDs ([`Flavor::errant`]). MariaDB: `@@gtid_binlog_state`; MySQL:
    /// `@@gtid_executed`.
    pub async fn gtid_history(&mut self) -> Result<String, ControlError> {
        self.gtids(self.dialect().gtid_history).await
    }

    /// What this server has applied, for display. MariaDB: `@@gtid_current_pos`; MySQL
    /// `@@gtid_executed`.
    pub async fn gtid_current(&mut self) -> Result<String, ControlError> {
        self.gtids(self.dialect().gtid_current).await
    }

    /// `@@gtid_binlog_pos` (MariaDB only): the last GTID this server wrote to its
    /// binary log, per domain (its own writes, and replicated ones with
    /// `log_slave_updates`).
    pub async fn gtid_binlog_pos(&mut self) -> Result<String, ControlError> {
        self.gtids(Flavor::MariaDb.dialect().gtid_position).await
    }

    /// `@@gtid_binlog_state` (MariaDB only): the last GTID per (domain, server id) in
    /// the binary log.
    pub async fn gtid_binlog_state(&mut self) -> Result<String, ControlError> {
        self.gtids(Flavor::MariaDb.dialect().gtid_history).await
    }

    /// `@@gtid_current_pos` (MariaDB only).
    pub async fn gtid_current_pos(&mut self) -> Result<String, ControlError> {
        self.gtids(Flavor::MariaDb.dialect().gtid_current).await
    }

    /// `@@gtid_slave_pos` (MariaDB only): the last GTID the replication SQL thread
    /// applied, per domain. Kept after `RESET SLAVE ALL`, so on a former replica it can
    /// be stale.
    pub async fn gtid_slave_pos(&mut self) -> Result<String, ControlError> {
        self.gtids(Statement {
            what: "read gtid_slave_pos",
            sql: "SELECT @@GLOBAL.gtid_slave_pos",
        })
        .await
    }

    /// A GTID variable's text (NULL reads as empty). When the statement also reads a
    /// `gtid_mode` column (MySQL), it must be ON:
    /// otherwise transactions can go without a GTID, and no GTID set proves what a
    /// server has.
    async fn gtids(&mut self, read: Statement) -> Result<String, ControlError> {
        let timeout = self.timeout;
        let row = self.first_row(read.what, read.sql, timeout).await?;
        if let Some(i) = sql::column(&row, "gtid_mode") {
            let mode = sql::text(&row, i);
            if !mode
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("ON"))
            {
                let mode = mode.as_deref().unwrap_or("NULL");
                return Err(self.unexpected(format!(
                    "gtid_mode is {mode}, not ON: GTIDs cannot prove what this server has"
                )));
            }
        }
        Ok(sql::one_line(&sql::text(&row, 0).unwrap_or_default()))
    }

    /// The default replication connection's status; `None` when this server is no
    /// replica.
    pub async fn replica_status(&mut self) -> Result<Option<ReplicaStatus>, ControlError> {
        Ok(self.raw_status().await?.map(|raw| raw.status))
    }

    async fn raw_status(&mut self) -> Result<Option<RawStatus>, ControlError> {
        let timeout = self.timeout;
        let statement = self.dialect().replica_status;
        let rows = self.run(statement, statement, timeout).await?;
        let Some(row) = default_channel(&rows, channel_name) else {
            return Ok(None);
        };
        let column = |name: &str| sql::column(row, name).and_then(|i| sql::text(row, i));
        parse_status(column)
            .map(Some)
            .map_err(|e| self.unexpected(e))
    }

    /// Wait until this server has applied `pos` (a GTID position or set of its
    /// flavor): `true` once it has (proof), `false` if `timeout` passed first. The
    /// server-side wait is `timeout`; the call as a whole gets the connection's timeout
    /// on top.
    ///
    /// MariaDB: `SELECT MASTER_GTID_WAIT(pos, t)` → 0 or -1. MySQL:
    /// `SELECT WAIT_FOR_EXECUTED_GTID_SET(set, t)` → 0 or 1; by MySQL's documentation a
    /// timeout of 0 waits forever there, so at least 1 ms is sent.
    pub async fn wait_for_gtids(
        &mut self,
        pos: &str,
        timeout: Duration,
    ) -> Result<bool, ControlError> {
        let dialect = self.dialect();
        let function = dialect.wait_function;
        // Parsed and printed again, so only GTID characters reach the SQL text.
        let pos = self
            .flavor()
            .canonical_gtids(pos)
            .map_err(|e| self.unexpected(format!("{function} position: {e}")))?;
        let wait = if dialect.wait_zero_is_forever {
            timeout.max(SHORTEST_WAIT)
        } else {
            timeout
        };
        let sql = format!("SELECT {function}('{pos}', {:.6})", wait.as_secs_f64());
        let bound = wait.saturating_add(self.timeout);
        let row = self.first_row(function, &sql, bound).await?;
        match sql::int(&row, 0) {
            Some(0) => Ok(true),
            Some(n) if n == dialect.wait_timed_out => Ok(false),
            other => Err(self.unexpected(format!("{function} returned {other:?}"))),
        }
    }

    /// [`Control::wait_for_gtids`], by MariaDB's name for it.
    pub async fn master_gtid_wait(
        &mut self,
        pos: &str,
        timeout: Duration,
    ) -> Result<bool, ControlError> {
        self.wait_for_gtids(pos, timeout).await
    }

    /// Stop the replication threads, keeping the connection settings (`STOP SLAVE`;
    /// MySQL: `STOP REPLICA`). Harmless on a non-replica.
    pub async fn stop_replica_threads(&mut self) -> Result<(), ControlError> {
        let timeout = self.timeout;
        let statement = self.dialect().stop_replica;
        self.run(statement, statement, timeout).await.map(drop)
    }

    /// Forget the connection settings (`RESET SLAVE ALL`; MySQL: `RESET REPLICA ALL`).
    /// The threads must be stopped.
    pub async fn reset_replica_all(&mut self) -> Result<(), ControlError> {
        let timeout = self.timeout;
        let statement = self.dialect().reset_replica_all;
        self.run(statement, statement, timeout).await.map(drop)
    }

    /// Stop replicating for good: stop the threads, forget the settings (MariaDB keeps
    /// `gtid_slave_pos`). Harmless on a non-replica.
    pub async fn stop_replication(&mut self) -> Result<(), ControlError> {
        self.stop_replica_threads().await?;
        self.reset_replica_all().await
    }

    /// Start replicating with the stored settings (`START SLAVE`; MySQL:
    /// `START REPLICA`).
    pub async fn start_replication(&mut self) -> Result<(), ControlError> {
        let timeout = self.timeout;
        let statement = self.dialect().start_replica;
        self.run(statement, statement, timeout).await.map(drop)
    }

    /// The way back: make this server (a fenced former primary, or any server that
    /// already has everything it has written) replicate from `primary` (`host:port`)
    /// with GTIDs. `read_only` is left as it is.
    ///
    /// 1. Stop replication and forget any earlier source.
    /// 2. MariaDB only: `SET GLOBAL gtid_slave_pos` to where this server really is
    ///    ([`Control::align_gtid_slave_pos`]). MySQL's auto-positioning starts from
    ///    `@@gtid_executed`, which already holds everything this server has.
    /// 3. Point it at `primary` ([`change_source_sql`]).
    /// 4. Start replication.
    pub async fn replicate_from(
        &mut self,
        primary: &str,
        user: &str,
        password: &str,
        tls: bool,
    ) -> Result<(), ControlError> {
        let (host, port) = sql::split_address(primary).ok_or_else(|| {
            self.unexpected(format!("primary address {primary:?} is not host:port"))
        })?;
        self.stop_replication().await?;
        let start = match self.flavor() {
            Flavor::MariaDb => self.align_gtid_slave_pos().await?,
            Flavor::MySql => "gtid_executed (auto-position)".to_owned(),
        };
        let timeout = self.timeout;
        let change = change_source_sql(self.flavor(), &host, port, user, password, tls);
        self.run(self.dialect().change_source, &change, timeout)
            .await?;
        tracing::info!(server = %self.address, %primary, from = %start, "replicating from the new primary");
        self.start_replication().await
    }

    /// MariaDB: `SET GLOBAL gtid_slave_pos` to, per domain, the furthest of
    /// `@@gtid_binlog_pos` and `@@gtid_slave_pos`, and return it. The binlog position
    /// holds this server's own writes (and, with `log_slave_updates`, what it
    /// replicated); the slave position can be stale from an earlier stint as a replica,
    /// or ahead when it replicated without `log_slave_updates`.
    async fn align_gtid_slave_pos(&mut self) -> Result<String, ControlError> {
        let binlog = self.gtid_binlog_pos().await?;
        let slave = self.gtid_slave_pos().await?;
        let pos = self
            .parse_gtid("gtid_binlog_pos", &binlog)?
            .furthest(&self.parse_gtid("gtid_slave_pos", &slave)?);
        let timeout = self.timeout;
        self.run(
            "SET GLOBAL gtid_slave_pos",
            &format!("SET GLOBAL gtid_slave_pos = '{pos}'"),
            timeout,
        )
        .await?;
        Ok(pos.to_string())
    }

    fn parse_gtid(&self, name: &str, text: &str) -> Result<GtidSet, ControlError> {
        GtidSet::parse(text).map_err(|e| self.unexpected(format!("{name}: {e}")))
    }

    /// Wait until both replication threads run. Fails at once when a thread stopped
    /// with an error (an SQL-thread error such as gtid_strict_mode's "out-of-order
    /// sequence number", or a fatal IO error such as 1236), or when this server is no
    /// replica. Past `timeout`, an IO thread still failing to connect reports its
    /// error; otherwise `Timeout`.
    pub async fn wait_replicating(&mut self, timeout: Duration) -> Result<(), ControlError> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(raw) = self.raw_status().await? else {
                let statement = self.dialect().replica_status;
                return Err(self.unexpected(format!("not a replica ({statement} is empty)")));
            };
            let s = &raw.status;
            if s.is_running() {
                return Ok(());
            }
            if !s.sql_running && !s.last_sql_error.is_empty() {
                return Err(self.unexpected(format!(
                    "replication SQL thread stopped: {}",
                    s.last_sql_error
                )));
            }
            if raw.io_running == "No" && !s.last_io_error.is_empty() {
                return Err(self.unexpected(format!(
                    "replication IO thread stopped: {}",
                    s.last_io_error
                )));
            }
            if Instant::now() >= deadline {
                if !s.last_io_error.is_empty() {
                    return Err(self.unexpected(format!(
                        "replication IO thread not connected: {}",
                        s.last_io_error
                    )));
                }
                return Err(self.timed_out("waiting for both replication threads"));
            }
            sleep(POLL.min(deadline - Instant::now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A replica status row as name → text (absent columns and NULLs missing).
    fn parse(columns: &[(&str, &str)]) -> Result<RawStatus, String> {
        let map: HashMap<String, String> = columns
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        parse_status(|name: &str| map.get(&name.to_ascii_lowercase()).cloned())
    }

    #[test]
    fn parses_mariadb_slave_status() {
        let raw = parse(&[
            ("Slave_IO_State", "Waiting for master to send event"),
            ("Master_Host", "127.0.0.1"),
            ("Master_Port", "3307"),
            ("Slave_IO_Running", "Yes"),
            ("Slave_SQL_Running", "Yes"),
            ("Last_IO_Error", ""),
            ("Last_SQL_Error", ""),
            ("Seconds_Behind_Master", "0"),
            ("Using_Gtid", "Slave_Pos"),
            ("Gtid_IO_Pos", "0-1-42"),
        ])
        .unwrap();
        assert_eq!(raw.io_running, "Yes");
        assert_eq!(
            raw.status,
            ReplicaStatus {
                io_running: true,
                io_state: "Waiting for master to send event".into(),
                sql_running: true,
                last_io_error: String::new(),
                last_sql_error: String::new(),
                master_host: "127.0.0.1".into(),
                master_port: 3307,
                using_gtid: "Slave_Pos".into(),
                gtid_io_pos: "0-1-42".into(),
                seconds_behind: Some(0),
            }
        );
        assert!(raw.status.replicates_from("127.0.0.1:3307"));
    }

    #[test]
    fn parses_mysql_replica_status() {
        let set = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42";
        let raw = parse(&[
            ("Replica_IO_State", "Connecting to source"),
            ("Source_Host", "db-blue"),
            ("Source_Port", "3306"),
            ("Replica_IO_Running", "Connecting"),
            ("Replica_SQL_Running", "Yes"),
            ("Last_IO_Error", "error connecting to source"),
            ("Last_SQL_Error", ""),
            ("Retrieved_Gtid_Set", set),
            ("Auto_Position", "1"),
            ("Channel_Name", ""),
        ])
        .unwrap();
        assert_eq!(raw.io_running, "Connecting");
        let s = raw.status;
        assert!(!s.io_running && s.sql_running && !s.is_running());
        assert_eq!(s.io_state, "Connecting to source");
        assert_eq!((s.master_host.as_str(), s.master_port), ("db-blue", 3306));
        assert_eq!(s.using_gtid, "Auto_Position");
        assert_eq!(s.gtid_io_pos, set);
        assert_eq!(s.seconds_behind, None);
        assert_eq!(s.error(), Some("error connecting to source"));
        let no_auto = parse(&[
            ("Replica_IO_Running", "No"),
            ("Replica_SQL_Running", "No"),
            ("Source_Port", "3306"),
            ("Auto_Position", "0"),
            ("Seconds_Behind_Source", "12"),
        ])
        .unwrap();
        assert_eq!(no_auto.status.using_gtid, "No");
        assert_eq!(no_auto.status.seconds_behind, Some(12));
    }

    #[test]
    fn refuses_rows_without_the_threads_or_port() {
        assert!(parse(&[("Master_Port", "3306"), ("Slave_SQL_Running", "Yes")]).is_err());
        assert!(parse(&[
            ("Replica_IO_Running", "Yes"),
            ("Replica_SQL_Running", "Yes")
        ])
        .is_err());
        assert!(parse(&[
            ("Slave_IO_Running", "Yes"),
            ("Slave_SQL_Running", "Yes"),
            ("Master_Port", "99999"),
        ])
        .is_err());
    }

    #[test]
    fn picks_the_default_channel() {
        let name = |c: &Option<&str>| c.map(str::to_owned);
        // MariaDB: one row, no Channel_Name column.
        assert_eq!(default_channel(&[None], name), Some(&None));
        // MySQL: the default channel is "", wherever it is listed.
        let rows = [Some("group_replication_applier"), Some("")];
        assert_eq!(default_channel(&rows, name), Some(&Some("")));
        assert_eq!(default_channel(&[Some("other")], name), None);
        assert_eq!(default_channel::<Option<&str>>(&[], name), None);
    }

    #[test]
    fn change_source_statements() {
        assert_eq!(
            change_source_sql(Flavor::MariaDb, "10.0.0.2", 3307, "repl", "it's", false),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='it''s', MASTER_USE_GTID=slave_pos, MASTER_SSL=0, \
             MASTER_CONNECT_RETRY=1"
        );
        assert_eq!(
            change_source_sql(Flavor::MySql, "db-green", 3306, "repl", r"a\b", true),
            r"CHANGE REPLICATION SOURCE TO SOURCE_HOST='db-green', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='a\\b', SOURCE_AUTO_POSITION=1, SOURCE_SSL=1, SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1"
        );
    }
}
