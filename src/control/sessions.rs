//! Who is on a server: client connections, long transactions, running DDL, and
//! killing a connection.

use std::time::Duration;

use mysql_async::Row;
use tokio::time::{sleep, Instant};

use super::sql;
use super::{Control, ControlError};

/// A client connection, from `information_schema.PROCESSLIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConn {
    pub id: u64,
    pub user: String,
    /// `host:port` of the client, as the server saw it.
    pub host: String,
    pub db: Option<String>,
    /// `Sleep`, `Query`, `Killed`, …
    pub command: String,
    /// Seconds in the current command.
    pub time: u64,
    pub state: String,
    /// The running statement, if any.
    pub info: Option<String>,
}

/// An open InnoDB transaction, from `information_schema.INNODB_TRX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongTrx {
    /// The connection holding it (0 for a transaction with no connection, such as a
    /// recovered prepared XA transaction).
    pub thread_id: u64,
    /// Whole seconds since it started (the server keeps one-second resolution).
    pub started_secs_ago: u64,
    /// `RUNNING`, `LOCK WAIT`, `ROLLING BACK`, `COMMITTING`.
    pub state: String,
    /// The statement it is running now, if any.
    pub query: Option<String>,
}

/// How often [`Control::kill_connection`] looks whether its victim is gone.
const KILL_POLL: Duration = Duration::from_millis(20);

/// Client connections only: not our own, not the server's background threads
/// (`system user`: InnoDB, event scheduler, replica IO/SQL/worker threads), not the
/// binlog dump threads serving replicas (`Binlog Dump GTID` is how MySQL shows an
/// auto-positioning replica's, as MySQL 9.7 shows it; MariaDB never shows that
/// command).
const CONNECTIONS: &str = "SELECT ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO \
     FROM information_schema.PROCESSLIST \
     WHERE ID <> CONNECTION_ID() AND USER <> 'system user' \
     AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', \
     'Slave_IO', 'Slave_SQL', 'Slave_worker') \
     ORDER BY ID";

fn client_conn(row: &Row) -> Option<ClientConn> {
    Some(ClientConn {
        id: sql::uint(row, 0)?,
        user: sql::text(row, 1).unwrap_or_default(),
        host: sql::text(row, 2).unwrap_or_default(),
        db: sql::text(row, 3),
        command: sql::text(row, 4).unwrap_or_default(),
        // TIME can read negative briefly (clock adjustments); clamp.
        time: sql::int(row, 5).map_or(0, |t| t.max(0).unsigned_abs()),
        state: sql::text(row, 6).unwrap_or_default(),
        info: sql::text(row, 7),
    })
}

impl Control {
    /// Client connections on the server, by id: everything in the process list but
    /// system threads, replication threads (both ends) and this control connection.
    pub async fn connections(&mut self) -> Result<Vec<ClientConn>, ControlError> {
        let timeout = self.timeout;
        let rows = self
            .run("read the process list", CONNECTIONS, timeout)
            .await?;
        rows.iter()
            .map(|row| {
                client_conn(row).ok_or_else(|| self.unexpected("a process list row has no ID"))
            })
            .collect()
    }

    /// `KILL CONNECTION id`, then wait (bounded by the connection's timeout) until the
    /// connection has left the process list: `KILL` only flags it, and a killed
    /// connection can still be rolling back — or finishing a commit — for a while.
    /// A connection that is already gone counts as killed.
    pub async fn kill_connection(&mut self, id: u64) -> Result<(), ControlError> {
        if self.connection_id() == Some(id) {
            return Err(self.unexpected(format!("refusing to kill our own connection {id}")));
        }
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        match self
            .run("KILL CONNECTION", &format!("KILL CONNECTION {id}"), timeout)
            .await
        {
            // 1094 ER_NO_SUCH_THREAD.
            Err(e) if e.server_code() == Some(1094) => return Ok(()),
            other => other.map(drop)?,
        }
        let present =
            format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}");
        loop {
            let row = self
                .first_row("look for a killed connection", &present, timeout)
                .await?;
            if sql::uint(&row, 0) == Some(0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out("waiting for a killed connection to end"));
            }
            sleep(KILL_POLL).await;
        }
    }

    /// InnoDB transactions open for at least `older_than` (rounded up to whole
    /// seconds, the resolution of `trx_started`), oldest first.
    pub async fn long_transactions(
        &mut self,
        older_than: Duration,
    ) -> Result<Vec<LongTrx>, ControlError> {
        let secs = older_than.as_secs() + u64::from(older_than.subsec_nanos() > 0);
        let sql = format!(
            "SELECT trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age, \
             trx_state, trx_query FROM information_schema.INNODB_TRX \
             WHERE trx_started <= NOW() - INTERVAL {secs} SECOND ORDER BY trx_started"
        );
        let timeout = self.timeout;
        let rows = self.run("read INNODB_TRX", &sql, timeout).await?;
        Ok(rows
            .iter()
            .map(|row| LongTrx {
                thread_id: sql::uint(row, 0).unwrap_or(0),
                started_secs_ago: sql::int(row, 1).map_or(0, |t| t.max(0).unsigned_abs()),
                state: sql::text(row, 2).unwrap_or_default(),
                query: sql::text(row, 3),
            })
            .collect())
    }

    /// Client connections running DDL now (statement text starting with ALTER,
    /// CREATE, DROP, RENAME, TRUNCATE or OPTIMIZE, comments skipped).
    pub async fn running_ddl(&mut self) -> Result<Vec<ClientConn>, ControlError> {
        Ok(self
            .connections()
            .await?
            .into_iter()
            .filter(|c| c.info.as_deref().is_some_and(sql::is_ddl))
            .collect())
    }
}
