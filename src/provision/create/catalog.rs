//! What blue holds that green needs: user databases, base tables (with the columns to
//! copy and how), views, routines, triggers, events and accounts — one
//! `information_schema` query per kind, never one per object.

use std::collections::HashMap;

use crate::control::{Control, ControlError, Flavor};

use super::super::chunks::Table;
use super::super::position::text;
use super::super::tables;
use super::marker::MARKER_SCHEMA;
use super::values::Kind;

/// Schemas that belong to the server (and our own marker): never copied.
const SKIPPED: &str = "'mysql', 'sys', 'information_schema', 'performance_schema'";

/// How views, routines, triggers and events are listed: `{filter}` leaves out the
/// server's schemas. Triggers come in each table's firing order, so creating them in
/// turn keeps the order.
const OBJECT_LISTS: [(&str, &str, &str); 4] = [
    (
        "list views",
        "TABLE_SCHEMA",
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE {filter} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME",
    ),
    (
        "list routines",
        "ROUTINE_SCHEMA",
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
         WHERE ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') AND {filter} \
         ORDER BY ROUTINE_SCHEMA, ROUTINE_NAME",
    ),
    (
        "list triggers",
        "TRIGGER_SCHEMA",
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE {filter} \
         ORDER BY EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, \
                  ACTION_ORDER",
    ),
    (
        "list events",
        "EVENT_SCHEMA",
        "SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE {filter} \
         ORDER BY EVENT_SCHEMA, EVENT_NAME",
    ),
];

/// A database and its defaults.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub charset: String,
    pub collation: String,
}

/// A base table to copy.
#[derive(Debug, Clone)]
pub struct CopyTable {
    /// Every column, and the primary key's.
    pub table: Table,
    /// The columns that take values (generated ones are computed by green), in order,
    /// with how their values are read and written.
    pub copied: Vec<(String, Kind)>,
    /// The server's estimates, for planning and progress.
    pub rows: u64,
    pub bytes: u64,
    /// Not InnoDB (or another engine a consistent snapshot covers).
    pub engine: String,
    /// It has an AUTO_INCREMENT column.
    pub auto_increment: bool,
}

impl CopyTable {
    /// A single-column integer primary key: chunks are value ranges.
    pub fn integer_key(&self) -> bool {
        matches!(self.table.key.as_slice(), [k] if matches!(
            k.data_type.as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
        ))
    }
}

/// A stored object: `(schema, name)`, with the routine's type for routines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub schema: String,
    pub name: String,
    /// `PROCEDURE` or `FUNCTION` for routines; empty otherwise.
    pub kind: String,
}

/// An account (`user`@`host`), or a MariaDB role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub user: String,
    pub host: String,
    pub role: bool,
}

impl Account {
    /// `'user'@'host'` as SQL (a role: its quoted name).
    pub fn sql(&self) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
        if self.role {
            q(&self.user)
        } else {
            format!("{}@{}", q(&self.user), q(&self.host))
        }
    }
}

/// Everything `create` copies.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub databases: Vec<Database>,
    pub tables: Vec<CopyTable>,
    pub views: Vec<Object>,
    pub routines: Vec<Object>,
    pub triggers: Vec<Object>,
    pub events: Vec<Object>,
    pub accounts: Vec<Account>,
}

impl Catalog {
    /// Estimated rows and bytes of all tables.
    pub fn totals(&self) -> (u64, u64) {
        self.tables
            .iter()
            .fold((0, 0), |(r, b), t| (r + t.rows, b + t.bytes))
    }
}

/// Read blue's catalog.
pub async fn read(blue: &mut Control) -> Result<Catalog, ControlError> {
    if blue.flavor() == Flavor::MySql {
        // Otherwise TABLE_ROWS is a day-old cache: 0 for a table loaded just now.
        blue.query_drop("SET SESSION information_schema_stats_expiry = 0")
            .await?;
    }
    let not_skipped = |column: &str| format!("{column} NOT IN ({SKIPPED}, '{MARKER_SCHEMA}')");
    let databases = blue
        .query_rows(
            "list databases",
            &format!(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
                 FROM information_schema.SCHEMATA WHERE {} ORDER BY SCHEMA_NAME",
                not_skipped("SCHEMA_NAME")
            ),
        )
        .await?
        .iter()
        .filter_map(|r| {
            Some(Database {
                name: text(r, 0)?,
                charset: text(r, 1)?,
                collation: text(r, 2)?,
            })
        })
        .collect();
    let sizes: HashMap<(String, String), (u64, u64, String)> = blue
        .query_rows(
            "table sizes",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0), \
                        IFNULL(DATA_LENGTH, 0), IFNULL(ENGINE, '') \
                 FROM information_schema.TABLES \
                 WHERE TABLE_TYPE = 'BASE TABLE' AND {}",
                not_skipped("TABLE_SCHEMA")
            ),
        )
        .await?
        .iter()
        .filter_map(|r| {
            let n = |i| text(r, i).and_then(|t| t.parse().ok()).unwrap_or(0);
            Some(((text(r, 0)?, text(r, 1)?), (n(2), n(3), text(r, 4)?)))
        })
        .collect();
    // (schema, table, column) → (charset, generated, auto_increment)
    #[allow(clippy::type_complexity)]
    let extra: HashMap<(String, String, String), (Option<String>, bool, bool)> = blue
        .query_rows(
            "column charsets",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME, UPPER(EXTRA) \
                 FROM information_schema.COLUMNS WHERE {}",
                not_skipped("TABLE_SCHEMA")
            ),
        )
        .await?
        .iter()
        .filter_map(|r| {
            let extra = text(r, 4).unwrap_or_default();
            let generated = [
                "VIRTUAL GENERATED",
                "STORED GENERATED",
                "PERSISTENT GENERATED",
            ]
            .iter()
            .any(|g| extra.contains(g));
            let auto_increment = extra.contains("AUTO_INCREMENT");
            Some((
                (text(r, 0)?, text(r, 1)?, text(r, 2)?),
                (text(r, 3), generated, auto_increment),
            ))
        })
        .collect();
    let mut copy_tables = Vec::new();
    for table in tables::list(blue, &[]).await? {
        if table.schema == MARKER_SCHEMA {
            continue;
        }
        let (rows, bytes, engine) = sizes
            .get(&(table.schema.clone(), table.name.clone()))
            .cloned()
            .unwrap_or_default();
        let mut auto_increment = false;
        let copied = table
            .columns
            .iter()
            .filter_map(|c| {
                let key = (table.schema.clone(), table.name.clone(), c.name.clone());
                let (charset, generated, auto) = extra.get(&key).cloned().unwrap_or_default();
                auto_increment |= auto;
                (!generated).then(|| (c.name.clone(), Kind::of(&c.data_type, charset.as_deref())))
            })
            .collect();
        copy_tables.push(CopyTable {
            table,
            copied,
            rows,
            bytes,
            engine,
            auto_increment,
        });
    }
    let mut lists = Vec::new();
    for (what, schema_column, sql) in OBJECT_LISTS {
        let sql = sql.replace("{filter}", &not_skipped(schema_column));
        let rows = blue.query_rows(what, &sql).await?;
        lists.push(
            rows.iter()
                .filter_map(|r| {
                    Some(Object {
                        schema: text(r, 0)?,
                        name: text(r, 1)?,
                        kind: text(r, 2).unwrap_or_default(),
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    let [views, routines, triggers, events] =
        <[Vec<Object>; 4]>::try_from(lists).map_err(|_| ControlError::Unexpected {
            address: blue.address().to_owned(),
            what: "object lists".into(),
        })?;
    let accounts = read_accounts(blue).await?;
    Ok(Catalog {
        databases,
        tables: copy_tables,
        views,
        routines,
        triggers,
        events,
        accounts,
    })
}

/// Every account (and MariaDB role) in `mysql.user`.
pub async fn read_accounts(server: &mut Control) -> Result<Vec<Account>, ControlError> {
    let sql = match server.flavor() {
        Flavor::MariaDb => "SELECT User, Host, is_role FROM mysql.user ORDER BY User, Host",
        Flavor::MySql => "SELECT User, Host, 'N' FROM mysql.user ORDER BY User, Host",
    };
    Ok(server
        .query_rows("list accounts", sql)
        .await?
        .iter()
        .filter_map(|r| {
            Some(Account {
                user: text(r, 0)?,
                host: text(r, 1).unwrap_or_default(),
                role: text(r, 2).is_some_and(|r| r.eq_ignore_ascii_case("Y")),
            })
        })
        .collect())
}
