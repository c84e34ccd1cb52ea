//! The prerequisites of `create`, checked on both sides before anything is written,
//! each failure saying what to change where.

use crate::config::{Config, ControlConfig};
use crate::control::{Control, ControlError, Flavor};

use super::super::position::text;

/// Privileges the control account needs on blue: read everything, and `RELOAD` for the
/// brief global read lock that lines the copy's snapshots up.
const BLUE_PRIVILEGES: [&str; 5] = ["SELECT", "RELOAD", "SHOW VIEW", "TRIGGER", "EVENT"];
/// Privileges the control account needs on green (plus `WITH GRANT OPTION`, to give
/// the copied accounts their grants).
const GREEN_PRIVILEGES: [&str; 12] = [
    "SELECT",
    "INSERT",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "CREATE USER",
    "CREATE VIEW",
    "CREATE ROUTINE",
    "TRIGGER",
    "EVENT",
    "SUPER",
];

/// One server's settings that matter here.
#[derive(Debug, Default)]
struct Settings {
    log_bin: bool,
    binlog_format: String,
    server_id: String,
    /// MySQL only.
    gtid_mode: String,
    enforce_gtid_consistency: String,
    server_uuid: String,
    log_replica_updates: bool,
    /// MariaDB `@@gtid_binlog_pos`, MySQL `@@gtid_executed`.
    own_gtids: String,
}

async fn settings(server: &mut Control) -> Result<Settings, ControlError> {
    let sql = match server.flavor() {
        Flavor::MariaDb => {
            "SELECT @@log_bin, @@binlog_format, @@server_id, '', '', '', @@log_slave_updates, \
                    @@gtid_binlog_pos"
        }
        Flavor::MySql => {
            "SELECT @@log_bin, @@binlog_format, @@server_id, @@gtid_mode, \
                    @@enforce_gtid_consistency, @@server_uuid, @@log_replica_updates, \
                    REPLACE(@@gtid_executed, '\\n', '')"
        }
    };
    let rows = server.query_rows("read settings", sql).await?;
    let Some(row) = rows.first() else {
        return Ok(Settings::default());
    };
    let t = |i| text(row, i).unwrap_or_default();
    let on = |v: String| v == "1" || v.eq_ignore_ascii_case("ON");
    Ok(Settings {
        log_bin: on(t(0)),
        binlog_format: t(1).to_ascii_uppercase(),
        server_id: t(2),
        gtid_mode: t(3).to_ascii_uppercase(),
        enforce_gtid_consistency: t(4).to_ascii_uppercase(),
        server_uuid: t(5),
        log_replica_updates: on(t(6)),
        own_gtids: t(7),
    })
}

/// The global privileges (`ON *.*`) of the current account, upper case, and whether
/// it may grant them.
async fn global_privileges(server: &mut Control) -> Result<(Vec<String>, bool), ControlError> {
    let rows = server.query_rows("SHOW GRANTS", "SHOW GRANTS").await?;
    let mut privileges = Vec::new();
    let mut grant_option = false;
    for line in rows.iter().filter_map(|r| text(r, 0)) {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((list, tail)) = rest.split_once(" ON *.* TO ") else {
            continue;
        };
        grant_option |= tail.contains("WITH GRANT OPTION");
        privileges.extend(
            list.split(',')
                .map(|p| p.trim().replace('_', " ").to_ascii_uppercase()),
        );
    }
    Ok((privileges, grant_option))
}

fn missing<'a>(have: &[String], wanted: &[&'a str]) -> Vec<&'a str> {
    if have.iter().any(|p| p == "ALL PRIVILEGES" || p == "ALL") {
        return Vec::new();
    }
    wanted
        .iter()
        .filter(|w| !have.iter().any(|h| h == *w))
        .copied()
        .collect()
}

/// Every missing prerequisite, each with what to do; empty when `create` can go on.
/// `green_reset`: green's binary log and GTID state will be reset anyway (`--force`,
/// or green carries the mark of an unfinished run), so what it holds does not count.
pub async fn check(
    config: &Config,
    control: &ControlConfig,
    blue: &mut Control,
    green: &mut Control,
    green_reset: bool,
) -> Result<Vec<String>, ControlError> {
    let mut problems = Vec::new();
    if blue.flavor() != green.flavor() {
        problems.push(format!(
            "blue is {} and green is {}: create copies between servers of one flavor",
            blue.flavor().name(),
            green.flavor().name()
        ));
        return Ok(problems);
    }
    let flavor = blue.flavor();
    let b = settings(blue).await?;
    let g = settings(green).await?;
    for (side, s, address) in [("blue", &b, blue.address()), ("green", &g, green.address())] {
        if !s.log_bin {
            problems.push(format!(
                "{side} ({address}): the binary log is off; start the server with --log-bin \
                 (green needs it too, to be replicated from after a switchover)"
            ));
        }
        if s.binlog_format != "ROW" {
            problems.push(format!(
                "{side} ({address}): binlog_format is {}; run SET GLOBAL binlog_format = 'ROW' \
                 and put binlog_format = ROW in its config file",
                s.binlog_format
            ));
        }
        if flavor == Flavor::MySql {
            if s.gtid_mode != "ON" {
                problems.push(format!(
                    "{side} ({address}): gtid_mode is {}; step it up to ON \
                     (SET GLOBAL enforce_gtid_consistency = ON, then gtid_mode = OFF_PERMISSIVE, \
                     ON_PERMISSIVE, ON) and set gtid_mode = ON in its config file",
                    s.gtid_mode
                ));
            }
            if s.enforce_gtid_consistency != "ON" {
                problems.push(format!(
                    "{side} ({address}): enforce_gtid_consistency is {}; \
                     run SET GLOBAL enforce_gtid_consistency = ON",
                    s.enforce_gtid_consistency
                ));
            }
        }
        if s.server_id == "0" {
            problems.push(format!(
                "{side} ({address}): server_id is 0; give it a unique --server-id"
            ));
        }
    }
    if b.server_id == g.server_id {
        problems.push(format!(
            "blue and green both have server_id {}; run SET GLOBAL server_id = <another number> \
             on green and put it in its config file",
            g.server_id
        ));
    }
    if flavor == Flavor::MySql && !b.server_uuid.is_empty() && b.server_uuid == g.server_uuid {
        problems.push(format!(
            "blue and green have the same server_uuid {}: green's data dir is a copy; \
             stop green, delete auto.cnf from its data dir and start it again",
            g.server_uuid
        ));
    }
    if !g.log_replica_updates {
        let name = match flavor {
            Flavor::MariaDb => "log_slave_updates",
            Flavor::MySql => "log_replica_updates",
        };
        problems.push(format!(
            "green ({}): {name} is off, so what it replicates from blue would not be in its \
             binary log for blue to replicate back after a switchover; start it with --{}",
            green.address(),
            name.replace('_', "-")
        ));
    }
    if !green_reset && !g.own_gtids.trim().is_empty() {
        let (what, fix) = match flavor {
            Flavor::MariaDb => ("gtid_binlog_pos", "RESET MASTER"),
            Flavor::MySql => ("gtid_executed", "RESET BINARY LOGS AND GTIDS"),
        };
        problems.push(format!(
            "green ({}) has transactions of its own in its binary log ({what} = {}); \
             they would be errant after a switchover. On a green that holds nothing yet, run {fix} \
             (--force does that too)",
            green.address(),
            g.own_gtids.trim()
        ));
    }
    let (have, _) = global_privileges(blue).await?;
    let lacking = missing(&have, &BLUE_PRIVILEGES);
    if !lacking.is_empty() {
        problems.push(format!(
            "blue ({}): the control account {:?} lacks {}; run GRANT {} ON *.* TO it on blue",
            blue.address(),
            control.user,
            lacking.join(", "),
            lacking.join(", ")
        ));
    }
    let (have, grant_option) = global_privileges(green).await?;
    let lacking = missing(&have, &GREEN_PRIVILEGES);
    if !lacking.is_empty() || !grant_option {
        problems.push(format!(
            "green ({}): the control account {:?} needs ALL PRIVILEGES ON *.* WITH GRANT OPTION \
             there (it creates every object, accounts with their grants, objects of other \
             definers, and replication){}",
            green.address(),
            control.user,
            if lacking.is_empty() {
                " — it lacks the grant option".to_owned()
            } else {
                format!(" — it lacks {}", lacking.join(", "))
            }
        ));
    }
    problems.extend(replication_account(config, control, blue.address()).await);
    Ok(problems)
}

/// The replication account (`[replication]`, else `[control]`) must log in to blue and
/// hold `REPLICATION SLAVE`.
async fn replication_account(
    config: &Config,
    control: &ControlConfig,
    blue: &str,
) -> Option<String> {
    let repl = config.replication.as_ref().unwrap_or(control);
    let section = if config.replication.is_some() {
        "[replication]"
    } else {
        "[control] (there is no [replication])"
    };
    let mut conn =
        match Control::connect_with(config, repl, blue, std::time::Duration::from_secs(10)).await {
            Ok(conn) => conn,
            Err(e) => {
                return Some(format!(
                    "the replication account {:?} of {section} cannot log in to blue: {e}",
                    repl.user
                ))
            }
        };
    let found = global_privileges(&mut conn).await;
    conn.disconnect().await;
    match found {
        Ok((have, _)) if missing(&have, &["REPLICATION SLAVE"]).is_empty() => None,
        Ok(_) => Some(format!(
            "the replication account {:?} of {section} lacks REPLICATION SLAVE on blue; \
             run GRANT REPLICATION SLAVE ON *.* TO it on blue (and on green, for the way back)",
            repl.user
        )),
        Err(e) => Some(format!(
            "cannot read the grants of the replication account {:?}: {e}",
            repl.user
        )),
    }
}

/// Free space on green against blue's data, when green's data dir is on this machine;
/// `None` (with why) when it cannot tell.
pub async fn free_space(
    blue: &mut Control,
    green: &mut Control,
) -> Result<Result<(), String>, ControlError> {
    let host = green
        .address()
        .rsplit_once(':')
        .map_or(green.address(), |(h, _)| h);
    if !matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]") {
        return Ok(Ok(()));
    }
    let rows = green.query_rows("datadir", "SELECT @@datadir").await?;
    let Some(datadir) = rows.first().and_then(|r| text(r, 0)) else {
        return Ok(Ok(()));
    };
    let Some(free) = free_bytes(&datadir) else {
        return Ok(Ok(()));
    };
    let rows = blue
        .query_rows(
            "data size",
            "SELECT IFNULL(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')",
        )
        .await?;
    let size: u64 = rows
        .first()
        .and_then(|r| text(r, 0))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Ok(if free < size {
        Err(format!(
            "green's data dir {datadir} has {} MiB free; blue's data takes {} MiB",
            free >> 20,
            size >> 20
        ))
    } else {
        Ok(())
    })
}

/// Bytes available in the file system holding `path` (`df`), if it can be read.
fn free_bytes(path: &str) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-Pk", path])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_privileges_cover_everything() {
        assert!(missing(&["ALL PRIVILEGES".into()], &BLUE_PRIVILEGES).is_empty());
        let some = vec!["SELECT".to_owned(), "SHOW VIEW".to_owned()];
        assert_eq!(
            missing(&some, &BLUE_PRIVILEGES),
            ["RELOAD", "TRIGGER", "EVENT"]
        );
    }
}
