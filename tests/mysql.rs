//! The proxy in front of a real MySQL 9.7 pair, end to end: with no client traffic,
//! `check` passes, `switchover` goes to green and back, each time leaving the old
//! primary `super_read_only` and replicating from the new one; `check` refuses, naming
//! the guardrail, when green's SQL thread is stopped or green has an errant
//! transaction. Under the switchover workload of `support::load`, there and back, no
//! client sees an error and every acknowledged write is on the new primary once.

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use support::load::{app_conn, mysql_gtid_executed, server_id, there_and_back, wait_applied};
use support::Proxy;
use switchyard::control::MySqlGtidSet;
use switchyard::testbed::{Flavor, Pair, Server};

const CATCH_UP: Duration = Duration::from_secs(30);

fn sql(server: &Server, statement: &str) -> String {
    server
        .sql(statement)
        .unwrap_or_else(|e| panic!("{statement} on {}: {e}", server.name))
        .trim()
        .to_owned()
}

/// `ctl ARGS`, which must succeed; its output.
fn ctl_ok(proxy: &Proxy, args: &[&str]) -> String {
    let (ok, out) = proxy.ctl(args);
    assert!(
        ok,
        "`ctl {}` failed:\n{out}\nproxy log:\n{}",
        args.join(" "),
        proxy.log()
    );
    out
}

/// `ctl check` and `ctl switchover`, which must both refuse naming `guardrail`;
/// blue must still be the writable primary afterwards.
fn assert_refused(pair: &Pair, proxy: &Proxy, guardrail: &str) -> String {
    let (ok, out) = proxy.ctl(&["check"]);
    assert!(!ok, "check passed:\n{out}");
    assert!(out.contains(&format!("FAIL {guardrail}")), "check:\n{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ERR") && last.contains(guardrail),
        "check:\n{out}"
    );
    let (ok, switched) = proxy.ctl(&["switchover"]);
    assert!(!ok, "switchover ran:\n{switched}");
    assert!(switched.contains(guardrail), "switchover:\n{switched}");
    assert_eq!(
        sql(&pair.blue, "SELECT @@super_read_only, @@read_only"),
        "0\t0"
    );
    assert_eq!(sql(&pair.green, "SELECT @@super_read_only"), "1");
    out
}

/// `server` is fenced with `super_read_only` and replicates from `source` with
/// auto-positioning, both threads running.
fn assert_fenced_replica_of(server: &Server, source: &Server) {
    assert_eq!(sql(server, "SELECT @@super_read_only, @@read_only"), "1\t1");
    let rows = server
        .sql_rows("SHOW REPLICA STATUS")
        .unwrap_or_else(|e| panic!("SHOW REPLICA STATUS on {}: {e}", server.name));
    let status = rows
        .first()
        .unwrap_or_else(|| panic!("{} is no replica", server.name));
    assert_eq!(status["Source_Port"], source.port.to_string(), "{status:?}");
    assert_eq!(status["Replica_IO_Running"], "Yes", "{status:?}");
    assert_eq!(status["Replica_SQL_Running"], "Yes", "{status:?}");
    assert_eq!(status["Auto_Position"], "1", "{status:?}");
}

/// `ctl switchover` from `old` to `new`; then `new` must be writable, `old` fenced and
/// replicating from it, and `write` on `new` must reach `old`. The report's last line.
fn switch(proxy: &Proxy, old: &Server, new: &Server, write: &str) -> String {
    let out = ctl_ok(proxy, &["switchover"]);
    assert_eq!(sql(new, "SELECT @@super_read_only, @@read_only"), "0\t0");
    assert_fenced_replica_of(old, new);
    sql(new, write);
    wait_applied("switch", new, old);
    out.lines().last().unwrap_or_default().to_owned()
}

/// A MySQL pair and the proxy in front of it, whose `check` passes.
fn checked_proxy() -> (Pair, Proxy) {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    ctl_ok(&proxy, &["check"]);
    (pair, proxy)
}

#[test]
fn switchover_to_green_and_back() {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    sql(
        &pair.blue,
        "CREATE TABLE test.m (id INT PRIMARY KEY, side VARCHAR(8)); \
         INSERT INTO test.m VALUES (1, 'blue');",
    );
    pair.wait_green_caught_up(CATCH_UP).unwrap();

    let check = ctl_ok(&proxy, &["check"]);
    assert!(check.contains("pass no_errant_gtids"), "{check}");
    let report = switch(
        &proxy,
        &pair.blue,
        &pair.green,
        "INSERT INTO test.m VALUES (2, 'green')",
    );
    eprintln!("to green: {report}");
    assert_eq!(sql(&pair.blue, "SELECT COUNT(*) FROM test.m"), "2");

    ctl_ok(&proxy, &["check"]);
    // Two sources now: MySQL prints the set over two lines; the report has it on one.
    let fence = MySqlGtidSet::parse(&mysql_gtid_executed(&pair.green))
        .expect("a GTID set")
        .to_string();
    assert!(fence.contains(','), "{fence}");
    let report = switch(
        &proxy,
        &pair.green,
        &pair.blue,
        "INSERT INTO test.m VALUES (3, 'blue')",
    );
    eprintln!("back to blue: {report}");
    assert!(report.contains(&format!("fence gtid {fence};")), "{report}");
    assert_eq!(
        sql(
            &pair.green,
            "SELECT GROUP_CONCAT(side ORDER BY id) FROM test.m"
        ),
        "blue,green,blue"
    );
    // Both servers wrote, and both hold the same history.
    assert_eq!(
        mysql_gtid_executed(&pair.blue),
        mysql_gtid_executed(&pair.green)
    );
    ctl_ok(&proxy, &["check"]);
    let status = ctl_ok(&proxy, &["status"]);
    let standby = status
        .lines()
        .find(|l| l.starts_with(&format!("standby green ({})", pair.green.addr())))
        .unwrap_or_else(|| panic!("no standby line:\n{status}"));
    assert!(standby.contains("IO running, SQL running"), "{standby}");
    // The whole set, on the line.
    assert!(
        standby.ends_with(&format!("gtid {}", mysql_gtid_executed(&pair.green))),
        "{standby}"
    );
}

#[test]
fn check_refuses_while_greens_sql_thread_is_stopped() {
    let (pair, proxy) = checked_proxy();
    sql(&pair.green, "STOP REPLICA SQL_THREAD");
    assert_refused(&pair, &proxy, "standby_replicating");
    sql(&pair.green, "START REPLICA SQL_THREAD");
    pair.wait_replicating(CATCH_UP).unwrap();
    ctl_ok(&proxy, &["check"]);
}

#[test]
fn check_refuses_an_errant_transaction_on_green() {
    let (pair, proxy) = checked_proxy();
    // super_read_only binds root too: the errant write needs the fence lifted.
    sql(
        &pair.green,
        "SET GLOBAL super_read_only = OFF; CREATE TABLE test.errant (x INT); \
         SET GLOBAL super_read_only = ON;",
    );
    let out = assert_refused(&pair, &proxy, "no_errant_gtids");
    let green_uuid = sql(&pair.green, "SELECT @@server_uuid");
    assert!(out.contains(&green_uuid), "check does not name it:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchover_under_load_and_back() {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    there_and_back(&pair, &proxy, "MySQL switchover under load").await;
}

/// `(character_set_client, character_set_connection, character_set_results,
/// collation_connection)` of `conn`'s session.
async fn charsets(conn: &mut mysql_async::Conn) -> (String, String, String, String) {
    conn.query_first(
        "SELECT @@character_set_client, @@character_set_connection, \
         @@character_set_results, @@collation_connection",
    )
    .await
    .unwrap_or_else(|e| panic!("read the session's character sets: {e}"))
    .expect("one row")
}

/// A parameter change: green with another server character set, collation and
/// buffer pool. Across the switchover a session keeps the character set and
/// collation it chose, and one that chose none keeps the one it logged in with;
/// only a new session gets green's server default.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_keep_their_charset_when_green_has_other_defaults() {
    let pair = support::pair_of(Flavor::MySql);
    // Set at run time, as a dynamic parameter group change is applied: the testbed
    // starts servers with --no-defaults, which keeps MySQL from loading persisted
    // settings at a restart. New connections to green get these defaults.
    sql(
        &pair.green,
        "SET GLOBAL character_set_server = 'latin1'; \
         SET GLOBAL collation_server = 'latin1_german1_ci'; \
         SET GLOBAL innodb_buffer_pool_size = 64 * 1024 * 1024;",
    );
    assert_eq!(
        sql(
            &pair.green,
            "SELECT @@global.character_set_server, @@global.collation_server, \
             @@super_read_only"
        ),
        "latin1\tlatin1_german1_ci\t1"
    );
    let blue_server = sql(&pair.blue, "SELECT @@global.character_set_server");
    let proxy = Proxy::start(&pair, "");
    ctl_ok(&proxy, &["check"]);

    let mut chosen = app_conn(&proxy.addr).await;
    chosen
        .query_drop("SET NAMES cp1251 COLLATE cp1251_bin")
        .await
        .unwrap_or_else(|e| panic!("SET NAMES: {e}"));
    let mut default = app_conn(&proxy.addr).await;
    let chosen_before = charsets(&mut chosen).await;
    let default_before = charsets(&mut default).await;
    assert_eq!(chosen_before.3, "cp1251_bin");
    assert_eq!(
        character_set_server(&mut default).await,
        blue_server,
        "before: blue's default"
    );

    let report = switch(
        &proxy,
        &pair.blue,
        &pair.green,
        "CREATE TABLE test.after (x INT)",
    );
    eprintln!("parameter change: {report}");
    assert_eq!(server_id(&mut chosen).await, pair.green.server_id);
    assert_eq!(server_id(&mut default).await, pair.green.server_id);
    assert_eq!(
        charsets(&mut chosen).await,
        chosen_before,
        "the session's own SET NAMES after the move"
    );
    assert_eq!(
        charsets(&mut default).await,
        default_before,
        "a session that chose nothing keeps what it logged in with"
    );
    // Text comes back in the session's character set on green.
    let word: Option<Vec<u8>> = chosen
        .query_first("SELECT _utf8mb4 'привет'")
        .await
        .unwrap_or_else(|e| panic!("cp1251 text on green: {e}"));
    assert_eq!(
        word,
        Some(vec![0xEF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2]),
        "cp1251 bytes"
    );
    // The server's default is green's now, for moved sessions and new ones alike:
    // that is the parameter change.
    assert_eq!(character_set_server(&mut default).await, "latin1");
    let mut fresh = app_conn(&proxy.addr).await;
    assert_eq!(character_set_server(&mut fresh).await, "latin1");
}

async fn character_set_server(conn: &mut mysql_async::Conn) -> String {
    conn.query_first("SELECT @@character_set_server")
        .await
        .unwrap_or_else(|e| panic!("SELECT @@character_set_server: {e}"))
        .expect("one row")
}
