//! Helpers for the tests of `switchyard create`: the config it reads, running it and
//! `verify`, a fingerprint of green that shows nothing was written, and a row-by-row
//! comparison of every user table read with the binary protocol (so a float keeps
//! its bits and a blob its bytes).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use switchyard::testbed::{Flavor, Pair, Server, CONTROL_PASSWORD, CONTROL_USER};

use super::load::{app_opts, sql};

/// Bound for green to replicate and to catch up with blue (a hang guard).
pub const CATCH_UP: Duration = Duration::from_secs(60);

/// Schemas that belong to the server.
pub const SYSTEM_SCHEMAS: &str = "'mysql', 'sys', 'information_schema', 'performance_schema'";

/// Blue and green of `flavor` as `support::pair_options` makes them, both writable
/// and green not replicating: what `create` starts from.
pub fn unreplicated_pair(flavor: Flavor) -> Pair {
    Pair::start_unreplicated(super::pair_options(flavor))
        .unwrap_or_else(|e| panic!("cannot start the unreplicated {} pair: {e}", flavor.name()))
}

/// Write the config `create`, `verify` and `diff` read into `dir`: blue, green, the
/// control account and `[replication]` as `repl_user`/`repl_password`.
pub fn write_config(pair: &Pair, dir: &Path, repl_user: &str, repl_password: &str) -> PathBuf {
    let path = dir.join(format!("switchyard-{repl_user}.toml"));
    std::fs::write(
        &path,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[blue]\naddress = \"{}\"\n\n[green]\naddress = \"{}\"\n\n\
             [control]\nuser = \"{CONTROL_USER}\"\npassword = \"{CONTROL_PASSWORD}\"\n\n\
             [replication]\nuser = \"{repl_user}\"\npassword = \"{repl_password}\"\n",
            pair.blue.addr(),
            pair.green.addr()
        ),
    )
    .expect("write the config");
    // Readable by its owner only, as the config check wants files with passwords.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod 600 the config");
    path
}

/// `switchyard SUBCOMMAND --config CONFIG ARGS…`, not yet run.
pub fn switchyard(subcommand: &str, config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg(subcommand)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// `switchyard SUBCOMMAND --config CONFIG ARGS…`, run to its end.
pub fn run(subcommand: &str, config: &Path, args: &[&str]) -> Output {
    switchyard(subcommand, config, args)
        .output()
        .unwrap_or_else(|e| panic!("run switchyard {subcommand}: {e}"))
}

/// [`run`] from async code, without blocking the runtime.
pub async fn run_async(subcommand: &str, config: &Path, args: &[&str]) -> Output {
    tokio::process::Command::from(switchyard(subcommand, config, args))
        .output()
        .await
        .unwrap_or_else(|e| panic!("run switchyard {subcommand}: {e}"))
}

/// Exit status, stdout and stderr of a finished command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `out` exited with `code`; its stdout and stderr.
pub fn assert_exit(out: &Output, code: i32, what: &str) -> (String, String) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", show(out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `create` succeeded: exit 0 and its summary line. Returns that line.
pub fn assert_created(out: &Output) -> String {
    let (stdout, _) = assert_exit(out, 0, "create");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("created green at blue's GTID position "))
        .unwrap_or_else(|| panic!("no summary line: {}", show(out)));
    eprintln!("create: {line}");
    line.to_owned()
}

/// Green replicates from blue (both threads run, no error) and has applied all blue
/// has; on MySQL its GTID history is then exactly blue's (a set of its own would be
/// errant after a switchover). Blue must be idle.
pub fn assert_replicating(pair: &Pair, after: &str) {
    pair.wait_replicating(CATCH_UP)
        .unwrap_or_else(|e| panic!("green is not replicating after {after}: {e}"));
    pair.wait_green_caught_up(CATCH_UP)
        .unwrap_or_else(|e| panic!("green did not catch up after {after}: {e}"));
    if pair.flavor() == Flavor::MySql {
        let executed =
            |server: &Server| sql(server, "SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')");
        assert_eq!(
            executed(&pair.green),
            executed(&pair.blue),
            "green's gtid_executed after {after} (what blue lacks is errant)"
        );
    }
}

/// Green is not a running replica: no replica status, or neither thread running.
pub fn assert_not_replicating(pair: &Pair, after: &str) {
    let status = pair.slave_status().expect("green's replica status");
    let running = |name: &str| {
        status
            .get(&pair.flavor().status_column(name))
            .is_some_and(|v| v == "Yes")
    };
    assert!(
        !running("Slave_IO_Running") && !running("Slave_SQL_Running"),
        "green replicates after {after}: {status:?}"
    );
}

/// Green's read-only fence is up: `read_only` on MariaDB, `super_read_only` on MySQL.
pub fn assert_read_only(pair: &Pair) {
    let variable = match pair.flavor() {
        Flavor::MariaDb => "read_only",
        Flavor::MySql => "super_read_only",
    };
    assert_eq!(
        sql(&pair.green, &format!("SELECT @@GLOBAL.{variable}")),
        "1",
        "green's {variable}"
    );
}

/// What a `create` that must not touch green could change there: its schemas,
/// tables and views, accounts, GTID state, replica status and fence.
pub fn green_state(pair: &Pair) -> String {
    let gtids = match pair.flavor() {
        Flavor::MariaDb => "@@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_slave_pos",
        Flavor::MySql => "@@GLOBAL.gtid_executed, @@GLOBAL.super_read_only",
    };
    let state = sql(
        &pair.green,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1;
             SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
               WHERE TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS}) ORDER BY 1, 2;
             SELECT User, Host FROM mysql.user ORDER BY 1, 2;
             SELECT {gtids}, @@GLOBAL.read_only;"
        ),
    );
    let replica = format!("{:?}", pair.slave_status().expect("green's replica status"));
    format!("{state}\nreplica status: {replica}")
}

/// `statement` on green outside its binary log, past MySQL's `super_read_only` when
/// it is up: a change only green has.
pub fn on_green_unlogged(pair: &Pair, statement: &str) {
    let (lower, raise) = match pair.flavor() {
        Flavor::MariaDb => ("", ""),
        Flavor::MySql => (
            "SET @fence = @@GLOBAL.super_read_only; SET GLOBAL super_read_only = OFF;",
            "SET GLOBAL super_read_only = @fence;",
        ),
    };
    sql(
        &pair.green,
        &format!("{lower} SET SESSION sql_log_bin = 0; {statement}; {raise}"),
    );
}

/// A connection to `addr` as the control account, over TCP.
pub async fn control_conn(addr: &str) -> Conn {
    let opts = app_opts(addr)
        .user(Some(CONTROL_USER))
        .pass(Some(CONTROL_PASSWORD))
        .db_name(None::<String>);
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as {CONTROL_USER}: {e}"))
}

/// Every base table of blue's user schemas as `` `schema`.`table` `` with the
/// `ORDER BY` that reads it in a fixed order: its primary key, else every column.
pub fn user_tables(server: &Server) -> Vec<(String, String)> {
    let listing = sql(
        server,
        &format!(
            "SELECT CONCAT('`', t.TABLE_SCHEMA, '`.`', t.TABLE_NAME, '`'),
                    IFNULL((SELECT GROUP_CONCAT(CONCAT('`', s.COLUMN_NAME, '`') ORDER BY s.SEQ_IN_INDEX)
                              FROM information_schema.STATISTICS s
                             WHERE s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME
                               AND s.INDEX_NAME = 'PRIMARY'),
                           (SELECT GROUP_CONCAT(c.ORDINAL_POSITION ORDER BY c.ORDINAL_POSITION)
                              FROM information_schema.COLUMNS c
                             WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME))
               FROM information_schema.TABLES t
              WHERE t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS})
              ORDER BY 1"
        ),
    );
    listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, o)| (t.to_owned(), o.to_owned()))
        .collect()
}

/// Blue and green hold the same rows in every user table of blue, value for value
/// through the binary protocol (floats compared bit for bit, so -0 and the last
/// digit count). Returns how many rows were compared.
pub async fn assert_same_rows(pair: &Pair) -> usize {
    let mut blue = control_conn(&pair.blue.addr()).await;
    let mut green = control_conn(&pair.green.addr()).await;
    let mut compared = 0;
    let mut differences = Vec::new();
    for (table, order) in user_tables(&pair.blue) {
        let select = format!("SELECT * FROM {table} ORDER BY {order}");
        let b: Vec<mysql_async::Row> = blue
            .exec(select.as_str(), ())
            .await
            .unwrap_or_else(|e| panic!("{select} on blue: {e}"));
        let g: Vec<mysql_async::Row> = green
            .exec(select.as_str(), ())
            .await
            .unwrap_or_else(|e| panic!("{select} on green: {e}"));
        if b.len() != g.len() {
            differences.push(format!(
                "{table}: {} rows on blue, {} on green",
                b.len(),
                g.len()
            ));
            continue;
        }
        for (row_b, row_g) in b.into_iter().zip(g) {
            let names: Vec<String> = row_b
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            let (vb, vg) = (row_b.unwrap(), row_g.unwrap());
            let key = vb.first().map(short).unwrap_or_default();
            for ((name, x), y) in names.iter().zip(&vb).zip(&vg) {
                if !same(x, y) {
                    differences.push(format!(
                        "{table}.{name} in the row starting {key}: blue {} green {}",
                        short(x),
                        short(y)
                    ));
                }
            }
            compared += 1;
        }
    }
    let _ = blue.disconnect().await;
    let _ = green.disconnect().await;
    assert!(
        differences.is_empty(),
        "{} values differ between blue and green:\n{}",
        differences.len(),
        differences
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    compared
}

/// Equal values; floats by their bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A value for a message: bytes in hex, cut after 64 of them.
fn short(v: &Value) -> String {
    match v {
        Value::Bytes(b) => {
            let head: String = b.iter().take(64).map(|x| format!("{x:02x}")).collect();
            format!(
                "0x{head}{} ({} bytes)",
                if b.len() > 64 { "…" } else { "" },
                b.len()
            )
        }
        other => format!("{other:?}"),
    }
}
