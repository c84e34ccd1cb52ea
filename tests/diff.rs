//! `switchyard diff` and the `schema_compatible` guardrail against a real pair, on
//! MariaDB and MySQL: identical schemas are compatible; on green (outside the binlog)
//! a column added at the end, an index and a widened VARCHAR stay compatible once
//! green converts types non-lossily, and replication really writes into them; a
//! dropped column and a narrowed type make `diff` exit 1 naming table and column,
//! `ctl check` fail on `schema_compatible` naming them, and `ctl switchover` refuse.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::load::sql;
use support::Proxy;
use switchyard::testbed::{Flavor, Pair};

const CATCH_UP: Duration = Duration::from_secs(30);

/// `statement` on green outside its binlog, past its read-only fence: green's GTID
/// history stays the primary's, so only the schema differs.
fn on_green_unlogged(pair: &Pair, statement: &str) {
    let fence = match pair.flavor() {
        Flavor::MariaDb => "",
        Flavor::MySql => "SET GLOBAL super_read_only = OFF;",
    };
    let refence = match pair.flavor() {
        Flavor::MariaDb => "",
        Flavor::MySql => "SET GLOBAL super_read_only = ON;",
    };
    sql(
        &pair.green,
        &format!("{fence} SET SESSION sql_log_bin = 0; {statement}; {refence}"),
    );
}

/// `switchyard diff --config FILE [ARGS]`: exit status and stdout.
fn diff(proxy: &Proxy, args: &[&str]) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("diff")
        .arg("--config")
        .arg(&proxy.config_path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run switchyard diff");
    let out = String::from_utf8_lossy(&stdout).into_owned();
    eprintln!(
        "switchyard diff {args:?}:\n{out}{}",
        String::from_utf8_lossy(&stderr)
    );
    (status.code().unwrap_or(-1), out)
}

fn blue_to_green(pair: &Pair) {
    pair.wait_green_caught_up(CATCH_UP)
        .unwrap_or_else(|e| panic!("green did not catch up: {e}"));
}

fn a_schema_change_on_green_is_classified(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let conversions = match flavor {
        Flavor::MariaDb => "slave_type_conversions",
        Flavor::MySql => "replica_type_conversions",
    };
    sql(
        &pair.blue,
        "CREATE DATABASE shop; \
         CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, qty INT) ENGINE=InnoDB; \
         CREATE VIEW shop.names AS SELECT name FROM shop.items; \
         INSERT INTO shop.items VALUES (1, 'one', 1)",
    );
    blue_to_green(&pair);
    let proxy = Proxy::start(&pair, "");

    // 1. Identical.
    let (code, out) = diff(&proxy, &[]);
    assert_eq!((code, out.trim()), (0, "compatible"));

    // 2. Compatible changes; the widened column needs the conversion setting.
    on_green_unlogged(
        &pair,
        "ALTER TABLE shop.items ADD COLUMN note VARCHAR(10) NULL, ADD INDEX by_qty (qty), \
         MODIFY name VARCHAR(64) NOT NULL",
    );
    sql(&pair.green, &format!("SET GLOBAL {conversions} = ''"));
    let (code, out) = diff(&proxy, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("shop.items.name") && out.contains("ALL_NON_LOSSY"),
        "{out}"
    );
    sql(
        &pair.green,
        &format!("SET GLOBAL {conversions} = 'ALL_NON_LOSSY'"),
    );
    let (code, out) = diff(&proxy, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("compatible\n") && !out.contains("INCOMPATIBLE"),
        "{out}"
    );
    for change in [
        "shop.items.note: added at the end",
        "index by_qty added",
        "shop.items.name: type",
    ] {
        assert!(out.contains(change), "no {change:?} in:\n{out}");
    }
    let (code, out) = diff(&proxy, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("JSON verdict line");
    assert_eq!(last["compatible"], true, "{out}");
    // Row-based replication really writes into the changed table.
    sql(&pair.blue, "INSERT INTO shop.items VALUES (2, 'two', 2)");
    blue_to_green(&pair);
    assert_eq!(
        sql(
            &pair.green,
            "SELECT name, qty, note IS NULL FROM shop.items WHERE id = 2"
        ),
        "two\t2\t1"
    );
    let (ok, out) = proxy.ctl(&["check"]);
    assert!(ok && out.contains("schema_compatible"), "check:\n{out}");

    // 3. Incompatible: a dropped column and a narrowed type.
    on_green_unlogged(
        &pair,
        "ALTER TABLE shop.items DROP COLUMN qty, MODIFY name VARCHAR(8) NOT NULL",
    );
    let (code, out) = diff(&proxy, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INCOMPATIBLE: shop.items.qty"), "{out}");
    assert!(out.contains("INCOMPATIBLE: shop.items.name"), "{out}");
    assert!(
        out.trim_end().ends_with("NOT compatible: 2 difference(s)"),
        "{out}"
    );
    let (ok, out) = proxy.ctl(&["check"]);
    eprintln!("ctl check:\n{out}");
    assert!(!ok, "check passed an incompatible green:\n{out}");
    let line = out
        .lines()
        .find(|l| l.contains("schema_compatible"))
        .unwrap_or_else(|| panic!("no schema_compatible in:\n{out}"));
    assert!(
        line.contains("shop.items.name") && line.contains("2 incompatible"),
        "{line}"
    );
    let (ok, out) = proxy.ctl(&["switchover"]);
    eprintln!("ctl switchover:\n{out}");
    assert!(
        !ok && out.contains("schema_compatible"),
        "switchover:\n{out}"
    );
    assert_eq!(
        sql(&pair.blue, "SELECT @@read_only"),
        "0",
        "blue stays the primary"
    );
}

for_each_flavor!(a_schema_change_on_green_is_classified);

/// Unreachable servers: exit 2 with a message naming the server.
#[test]
fn unreachable_servers_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchyard.toml");
    let port = switchyard::testbed::free_port();
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[blue]\naddress = \"127.0.0.1:{port}\"\n\n\
             [green]\naddress = \"127.0.0.1:{port}\"\n\n[control]\nuser = \"c\"\npassword = \"p\"\n"
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["diff", "--config"])
        .arg(&config)
        .output()
        .expect("run switchyard diff");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}
