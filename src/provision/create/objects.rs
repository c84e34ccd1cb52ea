//! Blue's definitions made again on green: databases, tables (their secondary indexes
//! held back for after the data), routines, views, accounts with their grants,
//! triggers and events — each as blue's own `SHOW CREATE …` prints it, run with the
//! `sql_mode`, character set and time zone it was created with.

use mysql_async::Row;

use crate::control::{Control, Flavor};

use super::super::chunks::ident;
use super::super::position::text;
use super::catalog::{read_accounts, Account, Catalog, Object};
use super::ddl::{client_charset, disable_event, split_indexes};
use super::error::CreateError;
use super::marker::{self, Created};
use super::GREEN_SESSION;

/// How many passes accounts get: one may name another as its default role.
const MAX_PASSES: usize = 16;

/// The column called `name` of `row`, as text.
fn column(row: &Row, name: &str) -> Option<String> {
    let i = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
    text(row, i)
}

/// The one row of a `SHOW CREATE …` on blue.
async fn show_create(blue: &mut Control, sql: &str) -> Result<Row, CreateError> {
    blue.query_rows("SHOW CREATE", sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CreateError::Blue(format!("{sql}: no row")))
}

/// Run `sql` on green; a failure names the object.
async fn on_green(green: &mut Control, what: &str, sql: &str) -> Result<(), CreateError> {
    green
        .query_drop(sql)
        .await
        .map_err(|e| CreateError::Green(format!("{what}: {e}")))
}

/// The context a stored object was created in on blue.
struct Context {
    sql_mode: String,
    charset: String,
    collation: String,
    time_zone: Option<String>,
}

impl Context {
    fn of(row: &Row, text_column: &str) -> Option<(Context, String)> {
        let body = column(row, text_column)?;
        let original = column(row, "character_set_client").unwrap_or_else(|| "utf8mb4".into());
        let charset = client_charset(&original, &body).to_owned();
        let collation = if charset == original {
            column(row, "collation_connection").unwrap_or_else(|| "utf8mb4_general_ci".into())
        } else {
            "utf8mb4_general_ci".into()
        };
        Some((
            Context {
                sql_mode: column(row, "sql_mode").unwrap_or_default(),
                charset,
                collation,
                time_zone: column(row, "time_zone"),
            },
            body,
        ))
    }
}

/// Create `body` in `schema` on green within `context`, then restore the session.
async fn create_in(
    green: &mut Control,
    schema: &str,
    context: &Context,
    what: &str,
    body: &str,
) -> Result<(), CreateError> {
    on_green(green, what, &format!("USE {}", ident(schema))).await?;
    let mut set = format!(
        "SET SESSION sql_mode = '{}', character_set_client = '{}', collation_connection = '{}'",
        context.sql_mode.replace(['\'', '\\'], ""),
        context.charset.replace(['\'', '\\'], ""),
        context.collation.replace(['\'', '\\'], ""),
    );
    if let Some(tz) = &context.time_zone {
        set.push_str(&format!(", time_zone = '{}'", tz.replace(['\'', '\\'], "")));
    }
    on_green(green, what, &set).await?;
    let created = on_green(green, what, body).await;
    for setup in GREEN_SESSION {
        on_green(green, "restore the session", setup).await?;
    }
    created
}

/// Databases, each recorded in the marker first. Returns how many.
pub async fn databases(green: &mut Control, catalog: &Catalog) -> Result<usize, CreateError> {
    for db in &catalog.databases {
        let name = ident(&db.name);
        marker::record(green, Created::Database, &name).await?;
        let defaults = format!(
            "CHARACTER SET {} COLLATE {}",
            ident(&db.charset),
            ident(&db.collation)
        );
        on_green(
            green,
            &format!("database {}", db.name),
            &format!("CREATE DATABASE IF NOT EXISTS {name} {defaults}"),
        )
        .await?;
        on_green(
            green,
            &format!("database {}", db.name),
            &format!("ALTER DATABASE {name} {defaults}"),
        )
        .await?;
    }
    Ok(catalog.databases.len())
}

/// Every table, without the secondary indexes that can come later; returns, per table
/// in catalog order, the `ALTER TABLE` that adds them.
pub async fn tables(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
) -> Result<Vec<Option<String>>, CreateError> {
    let mut later = Vec::with_capacity(catalog.tables.len());
    for t in &catalog.tables {
        let name = t.table.sql_name();
        let row = show_create(blue, &format!("SHOW CREATE TABLE {name}")).await?;
        let create = text(&row, 1)
            .ok_or_else(|| CreateError::Blue(format!("SHOW CREATE TABLE {name}: no text")))?;
        let split = split_indexes(&name, &create);
        on_green(green, &name, &format!("USE {}", ident(&t.table.schema))).await?;
        match green.query_drop(&split.create).await {
            Ok(()) => later.push(split.add_indexes),
            // Held-back indexes a column needed after all (an AUTO_INCREMENT column
            // must lead some key): create the table whole.
            Err(e) if split.add_indexes.is_some() && e.server_code() == Some(1075) => {
                on_green(green, &name, &create).await?;
                later.push(None);
            }
            Err(e) => return Err(CreateError::Green(format!("table {name}: {e}"))),
        }
    }
    Ok(later)
}

/// Stored procedures and functions.
pub async fn routines(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
) -> Result<usize, CreateError> {
    for r in &catalog.routines {
        let kind = if r.kind.eq_ignore_ascii_case("FUNCTION") {
            "FUNCTION"
        } else {
            "PROCEDURE"
        };
        let name = format!("{}.{}", ident(&r.schema), ident(&r.name));
        let row = show_create(blue, &format!("SHOW CREATE {kind} {name}")).await?;
        let column_name = if kind == "FUNCTION" {
            "Create Function"
        } else {
            "Create Procedure"
        };
        let (context, body) = Context::of(&row, column_name).ok_or_else(|| {
            CreateError::Blue(format!(
                "SHOW CREATE {kind} {name} shows no text: the control account needs \
                 global SELECT (or SHOW_ROUTINE) on blue"
            ))
        })?;
        create_in(green, &r.schema, &context, &format!("{kind} {name}"), &body).await?;
    }
    Ok(catalog.routines.len())
}

/// Views, and the grants of the accounts [`accounts`] made (`SHOW GRANTS` on blue),
/// in passes until all are made: a view may select from another view, whose definer
/// may need a grant on yet another view first. A pass that makes nothing ends it with
/// the last error. Returns how many views.
pub async fn views_and_grants(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
    made: &[Account],
) -> Result<usize, CreateError> {
    let mut views: Vec<(Object, Context, String)> = Vec::new();
    for v in &catalog.views {
        let name = format!("{}.{}", ident(&v.schema), ident(&v.name));
        let row = show_create(blue, &format!("SHOW CREATE VIEW {name}")).await?;
        let (context, body) = Context::of(&row, "Create View")
            .ok_or_else(|| CreateError::Blue(format!("SHOW CREATE VIEW {name}: no text")))?;
        views.push((v.clone(), context, body));
    }
    let mut grants: Vec<(String, String)> = Vec::new();
    for account in made {
        let rows = blue
            .query_rows("SHOW GRANTS", &format!("SHOW GRANTS FOR {}", account.sql()))
            .await?;
        grants.extend(
            rows.iter()
                .filter_map(|r| text(r, 0))
                .map(|g| (format!("grants of {}", account.sql()), g)),
        );
    }
    loop {
        let before = views.len() + grants.len();
        if before == 0 {
            return Ok(catalog.views.len());
        }
        let mut last_error = None;
        let mut left = Vec::new();
        for (what, grant) in grants {
            if let Err(e) = on_green(green, &what, &grant).await {
                last_error = Some(e);
                left.push((what, grant));
            }
        }
        grants = left;
        let mut left = Vec::new();
        for (v, context, body) in views {
            let what = format!("view {}.{}", v.schema, v.name);
            if let Err(e) = create_in(green, &v.schema, &context, &what, &body).await {
                last_error = Some(e);
                left.push((v, context, body));
            }
        }
        views = left;
        if views.len() + grants.len() == before {
            return Err(last_error.unwrap_or_else(|| {
                CreateError::Green("views and grants made no progress".into())
            }));
        }
    }
}

/// Triggers, in each table's firing order.
pub async fn triggers(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
) -> Result<usize, CreateError> {
    for t in &catalog.triggers {
        let name = format!("{}.{}", ident(&t.schema), ident(&t.name));
        let row = show_create(blue, &format!("SHOW CREATE TRIGGER {name}")).await?;
        let (context, body) = Context::of(&row, "SQL Original Statement")
            .ok_or_else(|| CreateError::Blue(format!("SHOW CREATE TRIGGER {name}: no text")))?;
        create_in(
            green,
            &t.schema,
            &context,
            &format!("trigger {name}"),
            &body,
        )
        .await?;
    }
    Ok(catalog.triggers.len())
}

/// Events, created disabled on the replica so that they run on blue only.
pub async fn events(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
) -> Result<usize, CreateError> {
    let disabled = match green.flavor() {
        Flavor::MariaDb => "DISABLE ON SLAVE",
        Flavor::MySql => "DISABLE ON REPLICA",
    };
    for e in &catalog.events {
        let name = format!("{}.{}", ident(&e.schema), ident(&e.name));
        let row = show_create(blue, &format!("SHOW CREATE EVENT {name}")).await?;
        let (context, body) = Context::of(&row, "Create Event")
            .ok_or_else(|| CreateError::Blue(format!("SHOW CREATE EVENT {name}: no text")))?;
        let body = disable_event(&body, disabled).ok_or_else(|| {
            CreateError::Blue(format!(
                "SHOW CREATE EVENT {name}: no ENABLE/DISABLE in {body:?}"
            ))
        })?;
        create_in(green, &e.schema, &context, &format!("event {name}"), &body).await?;
    }
    Ok(catalog.events.len())
}

/// Accounts blue has and green lacks, created as blue shows them (password hashes
/// included), before the objects that name them as definers; accounts green already
/// has are left as they are. Returns the accounts made, for [`views_and_grants`].
pub async fn accounts(
    blue: &mut Control,
    green: &mut Control,
    catalog: &Catalog,
) -> Result<Vec<Account>, CreateError> {
    let existing = read_accounts(green).await?;
    let wanted: Vec<Account> = catalog
        .accounts
        .iter()
        .filter(|a| {
            !existing
                .iter()
                .any(|e| e.user == a.user && (a.role || e.host == a.host))
        })
        .cloned()
        .collect();
    let mut creates = Vec::new();
    for account in &wanted {
        // MariaDB's PUBLIC stands for every account: it is granted to, never created.
        if account.role && account.user.eq_ignore_ascii_case("PUBLIC") {
            continue;
        }
        let sql = if account.role {
            format!("CREATE ROLE {}", account.sql())
        } else {
            let row = show_create(blue, &format!("SHOW CREATE USER {}", account.sql())).await?;
            text(&row, 0).ok_or_else(|| {
                CreateError::Blue(format!("SHOW CREATE USER {}: no text", account.sql()))
            })?
        };
        let kind = if account.role {
            Created::Role
        } else {
            Created::Account
        };
        marker::record(green, kind, &account.sql()).await?;
        creates.push((account.sql(), sql));
    }
    // A default role must exist before the account naming it: retry until none is left.
    for _ in 0..MAX_PASSES {
        let mut failed = Vec::new();
        let mut last_error = None;
        let before = creates.len();
        for (who, sql) in creates {
            if let Err(e) = on_green(green, &format!("account {who}"), &sql).await {
                last_error = Some(e);
                failed.push((who, sql));
            }
        }
        if failed.is_empty() {
            break;
        }
        if failed.len() == before {
            return Err(last_error.unwrap_or_else(|| CreateError::Green("accounts".into())));
        }
        creates = failed;
    }
    Ok(wanted)
}
