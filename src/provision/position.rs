//! One GTID position on both sides: a read-only consistent snapshot on blue together
//! with its exact GTID position, and green's applier stopped at exactly that position.
//!
//! Order matters: green's applier stops *before* blue's snapshot is taken, so green
//! can only be at or behind the snapshot; it then applies up to the snapshot and stops
//! there. Green is checked to be exactly there anyway; if it is past (a replica with
//! its own writes, a server that ran the `UNTIL` loosely), the round is retried.
//!
//! Invariant: whoever calls [`pause_green`] calls [`resume_green`] afterwards on every
//! path, so green is never left stopped by us.

use std::time::{Duration, Instant};

use mysql_async::{Row, Value};

use crate::control::{Control, ControlError, Flavor, GtidSet, MySqlGtidSet};

use super::verify_error::VerifyError;

/// How often the MySQL snapshot is retried when a commit landed between the two reads
/// of `@@gtid_executed`.
const MYSQL_SNAPSHOT_TRIES: u32 = 200;
/// How often green's applier state is polled while it stops at the position.
const POLL: Duration = Duration::from_millis(20);

/// Stop the applier on green (MariaDB: both threads; MySQL: the SQL thread only).
pub async fn pause_green(green: &mut Control) -> Result<(), ControlError> {
    let sql = match green.flavor() {
        Flavor::MariaDb => "STOP SLAVE",
        Flavor::MySql => "STOP REPLICA SQL_THREAD",
    };
    green.query_drop(sql).await
}

/// Start green's replication normally again, clearing any `UNTIL` condition (a
/// running `UNTIL` applier must be stopped first, or it would stop again later).
pub async fn resume_green(green: &mut Control) -> Result<(), ControlError> {
    let (stop, start) = match green.flavor() {
        Flavor::MariaDb => ("STOP SLAVE", "START SLAVE"),
        Flavor::MySql => ("STOP REPLICA SQL_THREAD", "START REPLICA"),
    };
    green.query_drop(stop).await?;
    green.query_drop(start).await
}

/// Open a read-only consistent snapshot on blue and return its exact GTID position.
/// The transaction stays open on `blue`'s connection until [`end_snapshot`].
pub async fn snapshot(blue: &mut Control) -> Result<String, VerifyError> {
    const START: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
    match blue.flavor() {
        // The binlog coordinates MariaDB reports for a consistent snapshot are the
        // ones it was taken at; BINLOG_GTID_POS turns them into a GTID position.
        Flavor::MariaDb => {
            blue.query_drop(START).await?;
            let rows = blue
                .query_rows(
                    "read binlog_snapshot_file/position",
                    "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'",
                )
                .await?;
            let file = status_value(&rows, "binlog_snapshot_file");
            let position = status_value(&rows, "binlog_snapshot_position");
            let (Some(file), Some(position)) = (file, position) else {
                return Err(VerifyError::Blue(
                    "no binlog_snapshot_file/position: is the binary log on?".into(),
                ));
            };
            let position: u64 = position
                .parse()
                .map_err(|_| VerifyError::Blue(format!("binlog_snapshot_position {position:?}")))?;
            let sql = format!(
                "SELECT BINLOG_GTID_POS('{}', {position})",
                file.replace(['\'', '\\'], "")
            );
            let rows = blue.query_rows("BINLOG_GTID_POS", &sql).await?;
            let pos = first_text(&rows).ok_or_else(|| {
                VerifyError::Blue(format!("BINLOG_GTID_POS({file}, {position}) is NULL"))
            })?;
            Ok(pos)
        }
        // MySQL says nothing about a snapshot's position; a snapshot taken while
        // `@@gtid_executed` did not move is exactly at that set.
        Flavor::MySql => {
            for _ in 0..MYSQL_SNAPSHOT_TRIES {
                let before = blue.gtid_position().await?;
                blue.query_drop(START).await?;
                let after = blue.gtid_position().await?;
                if before == after {
                    return Ok(after);
                }
                blue.query_drop("ROLLBACK").await?;
            }
            Err(VerifyError::Blue(format!(
                "@@gtid_executed moved during each of {MYSQL_SNAPSHOT_TRIES} snapshots"
            )))
        }
    }
}

/// End blue's snapshot transaction.
pub async fn end_snapshot(blue: &mut Control) -> Result<(), ControlError> {
    blue.query_drop("ROLLBACK").await
}

/// How green ended up relative to the position.
#[derive(Debug, PartialEq, Eq)]
pub enum Reached {
    /// Green's applier stopped exactly at the position.
    Exactly,
    /// Green had applied more than the position before it was paused.
    Past(String),
}

/// With green's applier paused at or before `pos`, let it apply up to `pos` and stop
/// there; within `timeout`.
pub async fn run_green_until(
    green: &mut Control,
    pos: &str,
    timeout: Duration,
) -> Result<Reached, VerifyError> {
    let flavor = green.flavor();
    let pos = flavor
        .canonical_gtids(pos)
        .map_err(|e| VerifyError::Blue(format!("snapshot position: {e}")))?;
    if let Reached::Past(extra) = compare(flavor, &pos, &applied(green).await?)? {
        return Ok(Reached::Past(extra));
    }
    let until = match flavor {
        Flavor::MariaDb => format!("START SLAVE UNTIL master_gtid_pos = '{pos}'"),
        Flavor::MySql => format!("START REPLICA SQL_THREAD UNTIL SQL_AFTER_GTIDS = '{pos}'"),
    };
    green.query_drop(&until).await?;
    if !green.wait_for_gtids(&pos, timeout).await? {
        return Err(VerifyError::Green(format!(
            "green did not reach blue's snapshot position {pos} within {timeout:?}"
        )));
    }
    wait_applier_stopped(green, timeout).await?;
    compare(flavor, &pos, &applied(green).await?)
}

/// What green's applier has applied: MariaDB `@@gtid_slave_pos`, MySQL
/// `@@gtid_executed`.
async fn applied(green: &mut Control) -> Result<String, ControlError> {
    match green.flavor() {
        Flavor::MariaDb => green.gtid_slave_pos().await,
        Flavor::MySql => green.gtid_position().await,
    }
}

/// Whether `applied` went past `pos` (same flavor, canonical texts).
fn compare(flavor: Flavor, pos: &str, applied: &str) -> Result<Reached, VerifyError> {
    let unreadable = |e: String| VerifyError::Green(format!("green's GTID position: {e}"));
    match flavor {
        Flavor::MariaDb => {
            let pos = GtidSet::parse(pos).map_err(|e| unreadable(e.to_string()))?;
            let applied = GtidSet::parse(applied).map_err(|e| unreadable(e.to_string()))?;
            let past: Vec<String> = pos
                .iter()
                .filter_map(|g| applied.last_in_domain(g.domain).filter(|a| a.seq > g.seq))
                .map(|g| g.to_string())
                .collect();
            Ok(if past.is_empty() {
                Reached::Exactly
            } else {
                Reached::Past(past.join(","))
            })
        }
        Flavor::MySql => {
            let pos = MySqlGtidSet::parse(pos).map_err(|e| unreadable(e.to_string()))?;
            let applied = MySqlGtidSet::parse(applied).map_err(|e| unreadable(e.to_string()))?;
            let extra = applied.subtract(&pos);
            Ok(if extra.is_empty() {
                Reached::Exactly
            } else {
                Reached::Past(extra.to_string())
            })
        }
    }
}

/// Poll until green's SQL thread has stopped at its `UNTIL` position.
async fn wait_applier_stopped(green: &mut Control, timeout: Duration) -> Result<(), VerifyError> {
    let deadline = Instant::now() + timeout;
    loop {
        match green.replica_status().await? {
            None => return Err(VerifyError::Green("green is no replica".into())),
            Some(status) if !status.sql_running => return Ok(()),
            Some(_) if Instant::now() >= deadline => {
                return Err(VerifyError::Green(format!(
                    "green's applier did not stop at the position within {timeout:?}"
                )))
            }
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The `Value` column of the `SHOW STATUS` row named `name`.
fn status_value(rows: &[Row], name: &str) -> Option<String> {
    rows.iter()
        .find(|row| text(row, 0).is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|row| text(row, 1))
        .filter(|v| !v.is_empty())
}

fn first_text(rows: &[Row]) -> Option<String> {
    rows.first().and_then(|row| text(row, 0))
}

/// Column `index` as text (`None` for NULL or a missing column).
pub fn text(row: &Row, index: usize) -> Option<String> {
    match row.as_ref(index)? {
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_past_per_domain() {
        let f = Flavor::MariaDb;
        assert_eq!(compare(f, "0-1-10", "0-1-10").unwrap(), Reached::Exactly);
        assert_eq!(compare(f, "0-1-10", "0-1-7").unwrap(), Reached::Exactly);
        assert_eq!(
            compare(f, "0-1-10,1-1-3", "0-1-10,1-1-4").unwrap(),
            Reached::Past("1-1-4".into())
        );
    }

    #[test]
    fn mysql_past_is_anything_beyond_the_set() {
        let f = Flavor::MySql;
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        assert_eq!(
            compare(f, &format!("{u}:1-10"), &format!("{u}:1-10")).unwrap(),
            Reached::Exactly
        );
        assert!(matches!(
            compare(f, &format!("{u}:1-10"), &format!("{u}:1-11")).unwrap(),
            Reached::Past(_)
        ));
    }
}
