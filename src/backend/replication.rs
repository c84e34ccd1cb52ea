//! Fence, GTID positions and replication (MariaDB): `read_only`, `@@gtid_*_pos`,
//! `MASTER_GTID_WAIT`, `SHOW SLAVE STATUS`, and the way back — making a former
//! primary replicate from its successor.

use std::time::Duration;

use mysql_async::Row;
use tokio::time::{sleep, Instant};

use super::gtid::GtidSet;
use super::sql;
use super::{Control, ControlError};

/// How often [`Control::wait_replicating`] looks at `SHOW SLAVE STATUS`.
const POLL: Duration = Duration::from_millis(50);

/// The default replication connection's `SHOW SLAVE STATUS`, the fields the
/// switchover looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Slave_IO_Running` is `Yes` (not `No`, `Connecting` or `Preparing`).
    pub io_running: bool,
    /// `Slave_IO_State`, e.g. "Waiting for master to send event".
    pub io_state: String,
    /// `Slave_SQL_Running` is `Yes`.
    pub sql_running: bool,
    pub last_io_error: String,
    pub last_sql_error: String,
    pub master_host: String,
    pub master_port: u16,
    /// `Using_Gtid`: `No`, `Slave_Pos` or `Current_Pos`.
    pub using_gtid: String,
    /// `Gtid_IO_Pos`: the last GTID the IO thread received, per domain.
    pub gtid_io_pos: String,
    /// `Seconds_Behind_Master` (NULL while a thread is stopped). An estimate for
    /// display; never proof of being caught up (that is `MASTER_GTID_WAIT`).
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

/// A `SHOW SLAVE STATUS` row, with the raw `Slave_IO_Running` text (`Yes`, `No`,
/// `Connecting`, `Preparing`).
struct RawStatus {
    status: ReplicaStatus,
    io_running: String,
}

fn parse_status(row: &Row) -> Result<RawStatus, String> {
    let text = |name: &str| sql::column(row, name).and_then(|i| sql::text(row, i));
    let required =
        |name: &str| text(name).ok_or_else(|| format!("SHOW SLAVE STATUS has no {name}"));
    let io_running = required("Slave_IO_Running")?;
    let port = required("Master_Port")?;
    let status = ReplicaStatus {
        io_running: io_running == "Yes",
        io_state: text("Slave_IO_State").unwrap_or_default(),
        sql_running: required("Slave_SQL_Running")? == "Yes",
        last_io_error: text("Last_IO_Error").unwrap_or_default(),
        last_sql_error: text("Last_SQL_Error").unwrap_or_default(),
        master_host: text("Master_Host").unwrap_or_default(),
        master_port: port
            .parse()
            .map_err(|_| format!("Master_Port {port:?} is not a port"))?,
        using_gtid: text("Using_Gtid").unwrap_or_default(),
        gtid_io_pos: text("Gtid_IO_Pos").unwrap_or_default(),
        seconds_behind: sql::column(row, "Seconds_Behind_Master").and_then(|i| sql::uint(row, i)),
    };
    Ok(RawStatus { status, io_running })
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

    /// `VERSION()`, e.g. `10.11.19-MariaDB-log`.
    pub async fn version(&mut self) -> Result<String, ControlError> {
        let v = self.scalar("read version", "SELECT VERSION()").await?;
        v.ok_or_else(|| self.unexpected("VERSION() is NULL"))
    }

    /// `@@read_only`.
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

    /// `SET GLOBAL read_only = ON|OFF`, bounded by `timeout`. Turning it on waits for
    /// running writes and for `LOCK TABLES … WRITE` holders, and while it waits it
    /// blocks every new write on the server; so past `timeout` it is killed (the
    /// server then stays as it was) and `Timeout` is returned.
    pub async fn set_read_only(&mut self, on: bool, timeout: Duration) -> Result<(), ControlError> {
        let sql = if on {
            "SET GLOBAL read_only = ON"
        } else {
            "SET GLOBAL read_only = OFF"
        };
        self.run("SET GLOBAL read_only", sql, timeout)
            .await
            .map(drop)
    }

    /// `@@gtid_binlog_pos`: the last GTID this server wrote to its binary log, per
    /// domain (its own writes, and replicated ones with `log_slave_updates`).
    pub async fn gtid_binlog_pos(&mut self) -> Result<String, ControlError> {
        self.gtid_var("read gtid_binlog_pos", "SELECT @@GLOBAL.gtid_binlog_pos")
            .await
    }

    /// `@@gtid_binlog_state`: the last GTID per (domain, server id) in the binary log.
    pub async fn gtid_binlog_state(&mut self) -> Result<String, ControlError> {
        self.gtid_var(
            "read gtid_binlog_state",
            "SELECT @@GLOBAL.gtid_binlog_state",
        )
        .await
    }

    /// `@@gtid_current_pos`.
    pub async fn gtid_current_pos(&mut self) -> Result<String, ControlError> {
        self.gtid_var("read gtid_current_pos", "SELECT @@GLOBAL.gtid_current_pos")
            .await
    }

    /// `@@gtid_slave_pos`: the last GTID the replication SQL thread applied, per domain.
    /// Kept after `RESET SLAVE ALL`, so on a former replica it can be stale.
    pub async fn gtid_slave_pos(&mut self) -> Result<String, ControlError> {
        self.gtid_var("read gtid_slave_pos", "SELECT @@GLOBAL.gtid_slave_pos")
            .await
    }

    async fn gtid_var(&mut self, what: &'static str, sql: &str) -> Result<String, ControlError> {
        Ok(self.scalar(what, sql).await?.unwrap_or_default())
    }

    /// `SHOW SLAVE STATUS` for the default connection; `None` when this server is no
    /// replica.
    pub async fn replica_status(&mut self) -> Result<Option<ReplicaStatus>, ControlError> {
        Ok(self.raw_status().await?.map(|raw| raw.status))
    }

    async fn raw_status(&mut self) -> Result<Option<RawStatus>, ControlError> {
        let timeout = self.timeout;
        let rows = self
            .run("SHOW SLAVE STATUS", "SHOW SLAVE STATUS", timeout)
            .await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => parse_status(row).map(Some).map_err(|e| self.unexpected(e)),
        }
    }

    /// `SELECT MASTER_GTID_WAIT(pos, timeout)`: `true` once this server has applied
    /// `pos` (proof), `false` if `timeout` passed first. The server-side wait is
    /// `timeout`; the call as a whole gets the connection's timeout on top.
    pub async fn master_gtid_wait(
        &mut self,
        pos: &str,
        timeout: Duration,
    ) -> Result<bool, ControlError> {
        // Parsed and printed again, so only digits, '-' and ',' reach the SQL text.
        let pos = GtidSet::parse(pos)
            .map_err(|e| self.unexpected(format!("MASTER_GTID_WAIT position: {e}")))?;
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{pos}', {:.6})",
            timeout.as_secs_f64()
        );
        let bound = timeout + self.timeout;
        let row = self.first_row("MASTER_GTID_WAIT", &sql, bound).await?;
        match sql::int(&row, 0) {
            Some(0) => Ok(true),
            Some(-1) => Ok(false),
            other => Err(self.unexpected(format!("MASTER_GTID_WAIT returned {other:?}"))),
        }
    }

    /// Stop replicating for good: `STOP SLAVE; RESET SLAVE ALL` (the connection
    /// settings are forgotten; `gtid_slave_pos` is kept). Harmless on a non-replica.
    pub async fn stop_replication(&mut self) -> Result<(), ControlError> {
        let timeout = self.timeout;
        self.run("STOP SLAVE", "STOP SLAVE", timeout).await?;
        self.run("RESET SLAVE ALL", "RESET SLAVE ALL", timeout)
            .await?;
        Ok(())
    }

    /// `START SLAVE` with the stored settings.
    pub async fn start_replication(&mut self) -> Result<(), ControlError> {
        let timeout = self.timeout;
        self.run("START SLAVE", "START SLAVE", timeout)
            .await
            .map(drop)
    }

    /// The way back: make this server (a fenced former primary, or any server that
    /// already has everything it has written) replicate from `primary` (`host:port`)
    /// with GTIDs. `read_only` is left as it is.
    ///
    /// 1. `STOP SLAVE; RESET SLAVE ALL` — forget any earlier source.
    /// 2. `SET GLOBAL gtid_slave_pos` to where this server really is: per domain the
    ///    furthest of `@@gtid_binlog_pos` and `@@gtid_slave_pos`. The binlog position
    ///    holds this server's own writes (and, with `log_slave_updates`, what it
    ///    replicated); the slave position can be stale from an earlier stint as a
    ///    replica, or ahead when it replicated without `log_slave_updates`.
    /// 3. `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos, MASTER_SSL=0` (11.4+ replicas
    ///    default to TLS), retrying the connection every second.
    /// 4. `START SLAVE`.
    pub async fn replicate_from(
        &mut self,
        primary: &str,
        user: &str,
        password: &str,
    ) -> Result<(), ControlError> {
        let (host, port) = sql::split_address(primary).ok_or_else(|| {
            self.unexpected(format!("primary address {primary:?} is not host:port"))
        })?;
        self.stop_replication().await?;
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
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}, MASTER_USER={}, \
             MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos, MASTER_SSL=0, \
             MASTER_CONNECT_RETRY=1",
            sql::quote(&host),
            sql::quote(user),
            sql::quote(password),
        );
        self.run("CHANGE MASTER TO", &change, timeout).await?;
        tracing::info!(server = %self.address, %primary, gtid_slave_pos = %pos, "replicating from the new primary");
        self.start_replication().await
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
                return Err(self.unexpected("not a replica (SHOW SLAVE STATUS is empty)"));
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
