//! Schema differences between blue and green, classified by whether row-based replication from one to the other keeps working.
//!
//! This file reads a server's user schemas from `information_schema` into a
//! [`Schema`] value: one query per kind (tables, columns, indexes) per server, never
//! one per table. [`super::schema_diff`] compares two such values.

use std::collections::BTreeMap;

use mysql_async::Row;
use serde::Serialize;

use crate::config::Config;
use crate::control::{Control, ControlError, Flavor};

use super::schema_diff::{classify, Conversions, Difference, Verdict};

/// The server's own schemas: never compared.
const SYSTEM_SCHEMAS: &str = "('mysql', 'sys', 'information_schema', 'performance_schema')";

/// `(schema, table)`.
pub type TableKey = (String, String);

/// A server's user tables and views, by `(schema, table)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub tables: BTreeMap<TableKey, Table>,
}

/// One table or view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Views are only checked for presence: replication writes nothing into them.
    pub view: bool,
    /// In ordinal order: row-based replication matches columns by position.
    pub columns: Vec<Column>,
    /// By index name; the primary key is `PRIMARY`.
    pub indexes: BTreeMap<String, Index>,
}

/// One column as `information_schema.COLUMNS` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The full type (`varchar(32)`, `int(10) unsigned`, `enum('a','b')`).
    pub column_type: String,
    pub nullable: bool,
    /// As the server spells it (MariaDB quotes literals, MySQL does not).
    pub default: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    pub generated: bool,
    pub comment: String,
}

/// One index: its columns in order (`(expression)` for a functional key part).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    pub unique: bool,
    pub columns: Vec<String>,
}

/// The name of the primary key in `information_schema.STATISTICS`.
pub const PRIMARY: &str = "PRIMARY";

/// What `switchyard diff` found: every difference blue → green.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub differences: Vec<Difference>,
}

impl Report {
    /// The differences that break replication or the application on green.
    pub fn incompatible(&self) -> impl Iterator<Item = &Difference> {
        self.differences
            .iter()
            .filter(|d| d.verdict == Verdict::Incompatible)
    }

    pub fn is_compatible(&self) -> bool {
        self.incompatible().next().is_none()
    }
}

/// Why the schemas could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("no [green] server is configured")]
    NoGreen,
    #[error("no [control] account is configured")]
    NoControl,
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// How long each catalog read may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `switchyard diff`: blue's and green's schemas read and compared, as `config`'s
/// `[control]` account.
pub async fn diff_config(config: &Config) -> Result<Report, SchemaError> {
    let green = config.green.as_ref().ok_or(SchemaError::NoGreen)?;
    let control = config.control.as_ref().ok_or(SchemaError::NoControl)?;
    let mut blue =
        Control::connect_with(config, control, &config.blue.address, READ_TIMEOUT).await?;
    let mut green = Control::connect_with(config, control, &green.address, READ_TIMEOUT).await?;
    let report = diff(&mut blue, &mut green).await;
    blue.disconnect().await;
    green.disconnect().await;
    report
}

/// Reads both sides and classifies every difference `from` → `to` (`to` is what
/// row-based replication from `from` writes into).
pub async fn diff(from: &mut Control, to: &mut Control) -> Result<Report, SchemaError> {
    let blue = read(from).await?;
    let green = read(to).await?;
    let conversions = conversions(to).await?;
    Ok(Report {
        differences: classify(&blue, &green, &conversions),
    })
}

/// The replica's type-conversion setting, which a widened column needs.
async fn conversions(server: &mut Control) -> Result<Conversions, SchemaError> {
    let variable = match server.flavor() {
        Flavor::MariaDb => "slave_type_conversions",
        Flavor::MySql => "replica_type_conversions",
    };
    let rows = server
        .query_rows(
            "read the type conversions",
            &format!("SELECT @@GLOBAL.{variable}"),
        )
        .await?;
    let value = rows.first().and_then(|r| text(r, 0)).unwrap_or_default();
    Ok(Conversions {
        variable,
        non_lossy: value
            .split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("ALL_NON_LOSSY")),
        value,
    })
}

const TABLES: &str = "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES";
const COLUMNS: &str = "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, \
     COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, \
     COLUMN_COMMENT FROM information_schema.COLUMNS";
const INDEXES: &str = "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, \
     COLUMN_NAME FROM information_schema.STATISTICS";

/// One server's user schemas: three catalog queries.
pub async fn read(server: &mut Control) -> Result<Schema, SchemaError> {
    let filter = format!(" WHERE TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS}");
    let mut schema = Schema::default();
    for row in server
        .query_rows("read the tables", &format!("{TABLES}{filter}"))
        .await?
    {
        let (Some(db), Some(name)) = (text(&row, 0), text(&row, 1)) else {
            continue;
        };
        let view = text(&row, 2).is_some_and(|t| t == "VIEW");
        schema.tables.entry((db, name)).or_default().view = view;
    }
    let mut columns: Vec<(u64, TableKey, Column)> = Vec::new();
    for row in server
        .query_rows("read the columns", &format!("{COLUMNS}{filter}"))
        .await?
    {
        let (Some(db), Some(table), Some(name)) = (text(&row, 0), text(&row, 1), text(&row, 2))
        else {
            continue;
        };
        let column = Column {
            name,
            column_type: text(&row, 4).unwrap_or_default(),
            nullable: text(&row, 5).is_some_and(|n| n == "YES"),
            default: text(&row, 6),
            charset: text(&row, 7),
            collation: text(&row, 8),
            // Both flavors say `VIRTUAL GENERATED` / `STORED GENERATED` (MariaDB 10.2+
            // also `PERSISTENT GENERATED`).
            generated: text(&row, 9).is_some_and(|e| e.to_ascii_uppercase().contains("GENERATED")),
            comment: text(&row, 10).unwrap_or_default(),
        };
        columns.push((uint(&row, 3).unwrap_or(0), (db, table), column));
    }
    columns.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    for (_, key, column) in columns {
        // Views have columns too; they stay listed but are never compared.
        schema.tables.entry(key).or_default().columns.push(column);
    }
    // (table, index, position in the index, unique, column)
    let mut parts: Vec<(TableKey, String, u64, bool, String)> = Vec::new();
    for row in server
        .query_rows("read the indexes", &format!("{INDEXES}{filter}"))
        .await?
    {
        let (Some(db), Some(table), Some(index)) = (text(&row, 0), text(&row, 1), text(&row, 2))
        else {
            continue;
        };
        let unique = uint(&row, 3) == Some(0);
        let column = text(&row, 5).unwrap_or_else(|| "(expression)".to_owned());
        parts.push((
            (db, table),
            index,
            uint(&row, 4).unwrap_or(0),
            unique,
            column,
        ));
    }
    parts.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    for (key, name, _, unique, column) in parts {
        let index = schema
            .tables
            .entry(key)
            .or_default()
            .indexes
            .entry(name)
            .or_default();
        index.unique = unique;
        index.columns.push(column);
    }
    Ok(schema)
}

/// Column `index` as text (`None` for NULL, a missing column or bytes that are not
/// UTF-8). Catalog reads come over the text protocol, so every value is bytes.
fn text(row: &Row, index: usize) -> Option<String> {
    row.get_opt::<Option<String>, _>(index)?.ok().flatten()
}

/// Column `index` as an unsigned integer (`None` for NULL, missing or not a number).
fn uint(row: &Row, index: usize) -> Option<u64> {
    row.get_opt::<Option<u64>, _>(index)?.ok().flatten()
}
