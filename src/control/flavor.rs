//! Which dialect a server speaks — MariaDB or MySQL — and, in one place, the SQL text
//! that differs between the two. The control plane's logic is the same for both; only
//! what is sent (and how GTIDs are read) changes.
//!
//! The integration tests run both: MariaDB 10.11 and 11.8, MySQL 9.7. The MySQL dialect
//! is written for MySQL 8.0.23 and later; 8.0 and 8.4 are untested.

use super::gtid::{errant_by_state, GtidSet};
use super::gtid_mysql::MySqlGtidSet;

/// A server's dialect, read from its version string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// One statement and the short name errors give it.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    pub what: &'static str,
    pub sql: &'static str,
}

/// The SQL text that differs between the flavors.
#[derive(Debug)]
pub struct Dialect {
    /// The default replication connection's status: one row per channel on MySQL,
    /// one row on MariaDB; no row on a server that is no replica.
    pub replica_status: &'static str,
    /// Stops the replication threads, keeping the connection settings.
    pub stop_replica: &'static str,
    /// Forgets the connection settings (threads must be stopped).
    pub reset_replica_all: &'static str,
    pub start_replica: &'static str,
    /// How errors name the statement that points a server at its source.
    pub change_source: &'static str,
    /// The variable the fence turns on.
    pub fence_variable: &'static str,
    /// Run in order to fence (stop writes); the first may wait on locks.
    pub fence_on: &'static [Statement],
    /// Run in order to lift the fence.
    pub fence_off: &'static [Statement],
    /// Where the server's GTIDs have got to, read at the fence (twice, to prove it
    /// stable) and waited for on the other side. A `gtid_mode` column, when the
    /// statement has one, must read `ON`.
    pub gtid_position: Statement,
    /// Everything the server has logged, to compare two servers for errant GTIDs.
    pub gtid_history: Statement,
    /// What `status` shows for the standby, and the variable's name.
    pub gtid_current: Statement,
    pub gtid_current_name: &'static str,
    /// The function that waits until a position is applied: answers 0 when it is.
    pub wait_function: &'static str,
    /// The wait function's answer when its timeout passed first.
    pub wait_timed_out: i64,
    /// Whether a timeout of 0 means "wait forever" (so the smallest sent is 1 ms).
    pub wait_zero_is_forever: bool,
}

/// MariaDB 10.x / 11.x, as checked on 10.11 and 11.8.
const MARIADB: Dialect = Dialect {
    replica_status: "SHOW SLAVE STATUS",
    stop_replica: "STOP SLAVE",
    reset_replica_all: "RESET SLAVE ALL",
    start_replica: "START SLAVE",
    change_source: "CHANGE MASTER TO",
    fence_variable: "read_only",
    fence_on: &[Statement {
        what: "SET GLOBAL read_only",
        sql: "SET GLOBAL read_only = ON",
    }],
    fence_off: &[Statement {
        what: "SET GLOBAL read_only",
        sql: "SET GLOBAL read_only = OFF",
    }],
    gtid_position: Statement {
        what: "read gtid_binlog_pos",
        sql: "SELECT @@GLOBAL.gtid_binlog_pos",
    },
    gtid_history: Statement {
        what: "read gtid_binlog_state",
        sql: "SELECT @@GLOBAL.gtid_binlog_state",
    },
    gtid_current: Statement {
        what: "read gtid_current_pos",
        sql: "SELECT @@GLOBAL.gtid_current_pos",
    },
    gtid_current_name: "gtid_current_pos",
    wait_function: "MASTER_GTID_WAIT",
    wait_timed_out: -1,
    wait_zero_is_forever: false,
};

/// MySQL's `@@gtid_executed` is position, history and current set at once: a set holds
/// every transaction applied, replicated or local, binary log or not. Without
/// `gtid_mode=ON` some transactions carry no GTID, so the set proves nothing and is
/// refused.
const MYSQL_GTID_EXECUTED: Statement = Statement {
    what: "read gtid_executed",
    sql: "SELECT @@GLOBAL.gtid_executed, @@GLOBAL.gtid_mode AS gtid_mode",
};

/// MySQL 8.0.23+, 8.4, 9.x — checked on 9.7.
///
/// The fence is `super_read_only`: it implies `read_only` and, unlike MariaDB's
/// `read_only`, also stops accounts holding `SUPER` or `CONNECTION_ADMIN`, so no
/// account can write through it (only replication appliers can). Lifting it takes both
/// variables back to OFF.
const MYSQL: Dialect = Dialect {
    replica_status: "SHOW REPLICA STATUS",
    stop_replica: "STOP REPLICA",
    reset_replica_all: "RESET REPLICA ALL",
    start_replica: "START REPLICA",
    change_source: "CHANGE REPLICATION SOURCE TO",
    fence_variable: "super_read_only",
    fence_on: &[Statement {
        what: "SET GLOBAL super_read_only",
        sql: "SET GLOBAL super_read_only = ON",
    }],
    fence_off: &[
        Statement {
            what: "SET GLOBAL super_read_only",
            sql: "SET GLOBAL super_read_only = OFF",
        },
        Statement {
            what: "SET GLOBAL read_only",
            sql: "SET GLOBAL read_only = OFF",
        },
    ],
    gtid_position: MYSQL_GTID_EXECUTED,
    gtid_history: MYSQL_GTID_EXECUTED,
    gtid_current: MYSQL_GTID_EXECUTED,
    gtid_current_name: "gtid_executed",
    // Answers 0 once applied, 1 on timeout; a timeout of 0 waits without end.
    wait_function: "WAIT_FOR_EXECUTED_GTID_SET",
    wait_timed_out: 1,
    wait_zero_is_forever: true,
};

impl Flavor {
    /// `VERSION()` or the greeting's version: MariaDB says so in it
    /// (`10.11.19-MariaDB-log`, `5.5.5-10.11.19-MariaDB`); anything else is MySQL.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::MariaDb => "MariaDB",
            Flavor::MySql => "MySQL",
        }
    }

    pub fn dialect(self) -> &'static Dialect {
        match self {
            Flavor::MariaDb => &MARIADB,
            Flavor::MySql => &MYSQL,
        }
    }

    /// `text` (a GTID position or set of this flavor) checked and printed again in its
    /// canonical form, so only digits, hex, `-`, `:`, `,` and tag characters can reach
    /// the SQL text it is put into.
    pub fn canonical_gtids(self, text: &str) -> Result<String, String> {
        match self {
            Flavor::MariaDb => GtidSet::parse(text)
                .map(|s| s.to_string())
                .map_err(|e| e.to_string()),
            Flavor::MySql => MySqlGtidSet::parse(text)
                .map(|s| s.to_string())
                .map_err(|e| e.to_string()),
        }
    }

    /// The GTIDs of `replica_history` that `primary_history` lacks (both as
    /// [`Dialect::gtid_history`] reads them), one text per entry; empty when the
    /// replica has nothing of its own.
    ///
    /// MariaDB compares binlog states per domain and server
    /// ([`errant_by_state`]); MySQL subtracts the sets (`GTID_SUBTRACT`), exact
    /// whatever wrote them.
    pub fn errant(
        self,
        primary_history: &str,
        replica_history: &str,
    ) -> Result<Vec<String>, String> {
        let unreadable =
            || format!("cannot parse GTID states {primary_history:?} / {replica_history:?}");
        match self {
            Flavor::MariaDb => {
                let p = GtidSet::parse(primary_history).map_err(|_| unreadable())?;
                let r = GtidSet::parse(replica_history).map_err(|_| unreadable())?;
                Ok(errant_by_state(&p, &r)
                    .iter()
                    .map(|g| g.to_string())
                    .collect())
            }
            Flavor::MySql => {
                let p = MySqlGtidSet::parse(primary_history).map_err(|_| unreadable())?;
                let r = MySqlGtidSet::parse(replica_history).map_err(|_| unreadable())?;
                Ok(r.subtract(&p).groups())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "2174b383-5441-11e8-b90a-c80aa9429562";

    #[test]
    fn flavor_from_version() {
        for v in [
            "10.11.19-MariaDB-log",
            "5.5.5-10.11.19-MariaDB-0+deb12u1",
            "11.8.2-MariaDB",
            "5.5.5-10.11.0-MariaDB-switchyard",
        ] {
            assert_eq!(Flavor::from_version(v), Flavor::MariaDb, "{v}");
        }
        for v in ["8.0.36", "8.4.3-log", "8.0.39-0ubuntu0.22.04.1", ""] {
            assert_eq!(Flavor::from_version(v), Flavor::MySql, "{v}");
        }
    }

    #[test]
    fn mariadb_dialect_is_unchanged() {
        let d = Flavor::MariaDb.dialect();
        assert_eq!(d.replica_status, "SHOW SLAVE STATUS");
        assert_eq!(d.fence_on.len(), 1);
        assert_eq!(d.fence_on[0].sql, "SET GLOBAL read_only = ON");
        assert_eq!(d.fence_off[0].sql, "SET GLOBAL read_only = OFF");
        assert_eq!(d.gtid_position.sql, "SELECT @@GLOBAL.gtid_binlog_pos");
        assert_eq!(d.wait_function, "MASTER_GTID_WAIT");
    }

    #[test]
    fn mysql_fence_lifts_both_variables() {
        let d = Flavor::MySql.dialect();
        assert_eq!(d.fence_on[0].sql, "SET GLOBAL super_read_only = ON");
        let off: Vec<&str> = d.fence_off.iter().map(|s| s.sql).collect();
        assert_eq!(
            off,
            [
                "SET GLOBAL super_read_only = OFF",
                "SET GLOBAL read_only = OFF"
            ]
        );
        assert!(d.gtid_position.sql.contains("gtid_mode"));
    }

    #[test]
    fn canonical_gtids_per_flavor() {
        assert_eq!(
            Flavor::MariaDb.canonical_gtids("1-2-5,\n0-1-10").unwrap(),
            "0-1-10,1-2-5"
        );
        assert!(Flavor::MariaDb.canonical_gtids(&format!("{A}:1")).is_err());
        assert_eq!(
            Flavor::MySql
                .canonical_gtids(&format!("{}:1-3:2-5", A.to_uppercase()))
                .unwrap(),
            format!("{A}:1-5")
        );
        assert!(Flavor::MySql.canonical_gtids("0-1-10").is_err());
        assert!(Flavor::MySql.canonical_gtids("x'); KILL 1; --").is_err());
    }

    #[test]
    fn errant_per_flavor() {
        assert_eq!(
            Flavor::MariaDb.errant("0-1-15", "0-1-10,0-2-11").unwrap(),
            vec!["0-2-11"]
        );
        assert!(Flavor::MariaDb
            .errant("0-1-15", "0-1-10")
            .unwrap()
            .is_empty());
        let primary = format!("{A}:1-100");
        assert!(Flavor::MySql
            .errant(&primary, &format!("{A}:1-90"))
            .unwrap()
            .is_empty());
        assert_eq!(
            Flavor::MySql
                .errant(&primary, &format!("{A}:1-101,{B}:1-2"))
                .unwrap(),
            vec![format!("{B}:1-2"), format!("{A}:101")]
        );
        assert!(Flavor::MySql.errant("0-1-1", "").is_err());
    }
}
