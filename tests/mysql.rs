//! The proxy in front of a real MySQL 9.7 pair, end to end: with no client traffic,
//! `check` passes, `switchover` goes to green and back, each time leaving the old
//! primary `super_read_only` and replicating from the new one; `check` refuses, naming
//! the guardrail, when green's SQL thread is stopped or green has an errant
//! transaction. Under the switchover workload of `support::load`, there and back, no
//! client sees an error and every acknowledged write is on the new primary once.

mod support;

use std::time::Duration;

use support::load::{mysql_gtid_executed, there_and_back, wait_applied};
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
