//! The mark of an unfinished `create` on green: a database that exists from the first
//! write to green until replication runs, listing every database and account the run
//! created. A `create` that finds it removes what it lists and starts again; `SHOW
//! DATABASES` on green shows at a glance that green is not a finished copy.
//!
//! Every statement here runs on a green session with `sql_log_bin = 0`: nothing of it
//! reaches green's binary log.

use crate::control::{Control, ControlError};

use super::super::chunks::ident;
use super::super::position::text;

/// The marker database on green.
pub const MARKER_SCHEMA: &str = "switchyard_create_incomplete";

/// What a run created, for the next run to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Database,
    Account,
    Role,
}

impl Created {
    fn name(self) -> &'static str {
        match self {
            Created::Database => "database",
            Created::Account => "account",
            Created::Role => "role",
        }
    }
}

/// Whether green carries the marker.
pub async fn present(green: &mut Control) -> Result<bool, ControlError> {
    let rows = green
        .query_rows(
            "look for the marker",
            &format!(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{MARKER_SCHEMA}'"
            ),
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Put the marker on green, saying where the copy comes from.
pub async fn begin(green: &mut Control, blue: &str) -> Result<(), ControlError> {
    let m = ident(MARKER_SCHEMA);
    green
        .query_drop(&format!("CREATE DATABASE IF NOT EXISTS {m}"))
        .await?;
    green
        .query_drop(&format!(
            "CREATE TABLE IF NOT EXISTS {m}.created \
             (kind VARCHAR(16) NOT NULL, name VARCHAR(700) NOT NULL, PRIMARY KEY (kind, name)) \
             COMMENT 'a switchyard create into this server did not finish'"
        ))
        .await?;
    green
        .query_drop(&format!(
            "CREATE TABLE IF NOT EXISTS {m}.about (started TIMESTAMP NOT NULL, blue VARCHAR(300) NOT NULL)"
        ))
        .await?;
    green
        .query_drop(&format!(
            "INSERT INTO {m}.about VALUES (NOW(), '{}')",
            blue.replace(['\'', '\\'], "")
        ))
        .await
}

/// Note that this run created `name` (a backquoted database, or an account as SQL).
pub async fn record(green: &mut Control, kind: Created, name: &str) -> Result<(), ControlError> {
    let name = name.replace('\\', "\\\\").replace('\'', "\\'");
    green
        .query_drop(&format!(
            "INSERT IGNORE INTO {}.created VALUES ('{}', '{name}')",
            ident(MARKER_SCHEMA),
            kind.name()
        ))
        .await
}

/// Remove what an unfinished run created, then the marker. Returns what was removed.
pub async fn clean_up(green: &mut Control) -> Result<Vec<String>, ControlError> {
    let rows = green
        .query_rows(
            "read the marker",
            &format!(
                "SELECT kind, name FROM {}.created ORDER BY kind",
                ident(MARKER_SCHEMA)
            ),
        )
        .await
        .unwrap_or_default();
    let mut removed = Vec::new();
    for row in &rows {
        let (Some(kind), Some(name)) = (text(row, 0), text(row, 1)) else {
            continue;
        };
        let sql = match kind.as_str() {
            "database" => format!("DROP DATABASE IF EXISTS {name}"),
            "account" => format!("DROP USER IF EXISTS {name}"),
            "role" => format!("DROP ROLE IF EXISTS {name}"),
            _ => continue,
        };
        green.query_drop(&sql).await?;
        removed.push(format!("{kind} {name}"));
    }
    finish(green).await?;
    Ok(removed)
}

/// Take the marker away: green is a finished copy.
pub async fn finish(green: &mut Control) -> Result<(), ControlError> {
    green
        .query_drop(&format!("DROP DATABASE IF EXISTS {}", ident(MARKER_SCHEMA)))
        .await
}
