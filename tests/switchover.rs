//! `switchyard ctl switchover` end to end: a real MariaDB pair, the real proxy binary,
//! real clients. Under load (and back), with every kind of session state, along each
//! rollback path (standby not replicating, drain timeout, standby lost mid-way, pinned
//! sessions), across a proxy restart, and the manual `pause`/`resume` gate. Session
//! state is checked on MySQL 9.7 as well.
//!
//! Figures (pause, longest hold, phase durations, the slowest statement a client saw)
//! are printed, never asserted: run with `--no-capture` to see them.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use support::load::{app_conn, server_id, sql, there_and_back, wait_following};
use support::Proxy;
use switchyard::testbed::{Flavor, Pair};

/// Bound on anything the tests wait for (a hang guard, not a timing assertion).
const GUARD: Duration = Duration::from_secs(30);

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Polls `ctl status` until its output contains `needle`; returns that output.
async fn wait_status(proxy: &Proxy, needle: &str) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        let (_, out) = proxy.ctl_async(&["status"]).await;
        if out.contains(needle) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "`ctl status` never showed {needle:?}; last:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sessions opened before a switchover attempt, and the table they write to.
async fn sessions(proxy: &Proxy, n: usize) -> Vec<Conn> {
    let mut setup = app_conn(&proxy.addr).await;
    setup
        .query_drop(
            "CREATE TABLE IF NOT EXISTS test.probe \
             (seq INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(64))",
        )
        .await
        .expect("create test.probe");
    setup.disconnect().await.expect("disconnect");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(app_conn(&proxy.addr).await);
    }
    out
}

/// After a rollback: blue writable and active, green read-only and replicating from
/// blue, and every session (old and new) reads and writes on blue.
async fn assert_still_on_blue(label: &str, pair: &Pair, proxy: &Proxy, sessions: &mut [Conn]) {
    assert_eq!(
        sql(&pair.blue, "SELECT @@read_only"),
        "0",
        "{label}: blue writable"
    );
    assert_eq!(
        sql(&pair.green, "SELECT @@read_only"),
        "1",
        "{label}: green read-only"
    );
    wait_following(label, &pair.green, &pair.blue);
    let (ok, status) = proxy.ctl_async(&["status"]).await;
    assert!(
        ok && status.contains("OK blue is active"),
        "{label}: ctl status:\n{status}"
    );
    let mut fresh = app_conn(&proxy.addr).await;
    for (i, conn) in sessions.iter_mut().chain([&mut fresh]).enumerate() {
        assert_eq!(server_id(conn).await, 1, "{label}: session {i} on blue");
        conn.exec_drop(
            "INSERT INTO test.probe (who) VALUES (?)",
            (format!("{label} {i}"),),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: session {i} cannot write: {e}"));
    }
}

// ---------------------------------------------------------------------------------
// Under load, there and back
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchover_under_load() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    there_and_back(&pair, &proxy, "switchover_under_load").await;
}

// ---------------------------------------------------------------------------------
// Session state
// ---------------------------------------------------------------------------------

/// What the session test compares before and after: schema, character set and
/// collation, session variables, user variables, and last the server. MySQL calls the
/// isolation level `transaction_isolation` (`tx_isolation` is gone since 8.0),
/// MariaDB 10.11 only `tx_isolation`.
fn state_query(flavor: Flavor) -> String {
    let isolation = match flavor {
        Flavor::MariaDb => "tx_isolation",
        Flavor::MySql => "transaction_isolation",
    };
    format!(
        "SELECT DATABASE(), @@character_set_client, @@character_set_results, \
         @@collation_connection, @@sql_mode, @@{isolation}, @@time_zone, @@wait_timeout, \
         @x, @s, CHARSET(@s), CHAR_LENGTH(@s), @@server_id"
    )
}

for_each_flavor_async!(session_state_survives);

async fn session_state_survives(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let state = state_query(flavor);
    let proxy = Proxy::start(&pair, "");
    let mut conn = app_conn(&proxy.addr).await;
    // Logged in with schema `test`; `app` is chosen later, so only the tracked change
    // can carry it.
    conn.query_drop("USE app").await.unwrap();
    conn.query_drop("CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO kv VALUES (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    // LAST_INSERT_ID() is the session's too: read in the statement after an INSERT,
    // it must not turn into 0 because a switchover came in between.
    conn.query_drop("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO ai VALUES (NULL), (NULL)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO ai VALUES (NULL)")
        .await
        .unwrap();
    // A role chosen with SET ROLE: without it the account cannot read `vault`.
    sql(
        &pair.blue,
        "CREATE DATABASE vault; CREATE TABLE vault.t (x INT); INSERT INTO vault.t VALUES (7);\n\
         CREATE ROLE vault_reader; GRANT SELECT ON vault.* TO vault_reader;\n\
         GRANT vault_reader TO 'app'@'%';",
    );
    if flavor == Flavor::MySql {
        // MySQL lists a session's user variables only in performance_schema, which an
        // account reads only with this grant; without it they are left behind.
        sql(
            &pair.blue,
            "GRANT SELECT ON performance_schema.user_variables_by_thread TO 'app'@'%'",
        );
    }
    conn.query_drop("SET ROLE vault_reader").await.unwrap();
    conn.query_drop("SET NAMES latin1 COLLATE latin1_bin")
        .await
        .unwrap();
    conn.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    conn.query_drop("SET time_zone = '+03:00', wait_timeout = 1234")
        .await
        .unwrap();
    conn.query_drop("SET @x = 42, @s = 'héllo'").await.unwrap();
    // Double-quoted identifiers: the statement only prepares under ANSI_QUOTES, so its
    // re-preparation on green proves the order (schema, variables, statements).
    let old = conn
        .prep(r#"SELECT "v", ? + @x FROM "kv" WHERE "k" = ?"#)
        .await
        .unwrap();
    let first: Option<(String, i64)> = conn.exec_first(&old, (1, 1)).await.unwrap();
    assert_eq!(first, Some(("one".into(), 43)));
    // SQL's own PREPARE: carried by name; a deallocated one stays gone.
    conn.query_drop(r#"PREPARE ByName FROM 'SELECT "v" FROM "kv" WHERE "k" = ?'"#)
        .await
        .unwrap();
    conn.query_drop("PREPARE gone FROM 'SELECT 1'")
        .await
        .unwrap();
    conn.query_drop("DEALLOCATE PREPARE gone").await.unwrap();
    let before: Vec<Value> = conn
        .query_first::<Row, _>(&state)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}\nproxy log:\n{}", proxy.log());
    eprintln!(
        "session_state_survives: {}",
        out.lines().last().unwrap_or("")
    );

    // The old statement, with new parameters, on green.
    let again: Option<(String, i64)> = conn.exec_first(&old, (5, 2)).await.unwrap();
    assert_eq!(again, Some(("two".into(), 47)));
    let vault: Option<i64> = conn.query_first("SELECT x FROM vault.t").await.unwrap();
    assert_eq!(vault, Some(7), "the role chosen by SET ROLE after the move");
    let insert_id: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(insert_id, Some(3), "LAST_INSERT_ID() after the move");
    conn.query_drop("SET @k = 2").await.unwrap();
    let by_name: Option<String> = conn.query_first("EXECUTE byname USING @k").await.unwrap();
    assert_eq!(by_name.as_deref(), Some("two"));
    let err = conn
        .query_drop("EXECUTE gone")
        .await
        .expect_err("a deallocated statement is not prepared again");
    assert_eq!(server_code(&err), Some(1243), "{err}");
    let after: Vec<Value> = conn
        .query_first::<Row, _>(&state)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let n = before.len() - 1;
    assert_eq!(
        after[..n],
        before[..n],
        "schema, charset, collation, sql_mode, @x, @s"
    );
    let id = |v: &Value| mysql_async::from_value::<u32>(v.clone());
    assert_eq!(id(&before[n]), 1, "before: blue");
    assert_eq!(id(&after[n]), 2, "after: green");
    eprintln!("session_state_survives: state before {before:?}, after {after:?}");

    // A statement prepared on green gets an id of its own; both work side by side.
    let new = conn
        .prep(r#"SELECT ? * 2, DATABASE(), "k" FROM "kv" WHERE "k" = 1"#)
        .await
        .unwrap();
    assert_ne!(new.id(), old.id(), "statement ids collide");
    let doubled: Option<(i64, String, i64)> = conn.exec_first(&new, (21,)).await.unwrap();
    assert_eq!(doubled, Some((42, "app".into(), 1)));
    let still: Option<(String, i64)> = conn.exec_first(&old, (0, 1)).await.unwrap();
    assert_eq!(still, Some(("one".into(), 42)));
    // Closing the old one leaves the new one alone.
    conn.close(old).await.unwrap();
    let doubled: Option<(i64, String, i64)> = conn.exec_first(&new, (4,)).await.unwrap();
    assert_eq!(doubled, Some((8, "app".into(), 1)));
    assert_eq!(server_id(&mut conn).await, 2);

    // And back to blue: the same state again, the green-prepared statement re-mapped.
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover back:\n{out}\nproxy log:\n{}", proxy.log());
    let doubled: Option<(i64, String, i64)> = conn.exec_first(&new, (5,)).await.unwrap();
    assert_eq!(doubled, Some((10, "app".into(), 1)));
    let back: Vec<Value> = conn
        .query_first::<Row, _>(&state)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(back[..n], before[..n], "state after going back to blue");
    assert_eq!(id(&back[n]), 1, "back on blue");
    conn.disconnect().await.unwrap();
}

// ---------------------------------------------------------------------------------
// Rollback paths
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn refused_when_standby_not_replicating() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut conns = sessions(&proxy, 2).await;
    sql(&pair.green, "STOP SLAVE");

    let (ok, out) = proxy.ctl_async(&["check"]).await;
    assert!(!ok, "check passed with replication stopped:\n{out}");
    let last = out.lines().last().unwrap_or("");
    assert!(
        last.starts_with("ERR") && last.contains("standby_replicating"),
        "check:\n{out}"
    );
    assert!(out.contains("FAIL standby_replicating"), "check:\n{out}");

    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(!ok, "switchover ran with replication stopped:\n{out}");
    let last = out.lines().last().unwrap_or("");
    assert!(
        last.starts_with("ERR") && last.contains("standby_replicating"),
        "switchover:\n{out}"
    );
    eprintln!("refused_when_standby_not_replicating: {last}");

    // Nothing was touched: green is still stopped as we left it.
    let status = pair.slave_status().unwrap();
    assert_eq!(
        status.get("Slave_SQL_Running").map(String::as_str),
        Some("No"),
        "{status:?}"
    );
    sql(&pair.green, "START SLAVE");
    assert_still_on_blue("standby not replicating", &pair, &proxy, &mut conns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolled_back_when_drain_times_out() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut conns = sessions(&proxy, 4).await;
    let mut tx = conns.pop().unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("INSERT INTO test.probe (who) VALUES ('open transaction')")
        .await
        .unwrap();

    let switch =
        tokio::process::Command::from(proxy.ctl_command(&["switchover", "--drain-timeout", "2s"]))
            .output();
    let switch = tokio::spawn(switch);
    wait_status(&proxy, "phase: draining").await;
    // Commands from the other sessions arrive while the gate is closed: held.
    let held: Vec<_> = conns
        .drain(..)
        .enumerate()
        .map(|(i, mut conn)| {
            tokio::spawn(async move {
                let start = Instant::now();
                let id = conn.query_first::<u32, _>("SELECT @@server_id").await;
                let insert = conn
                    .exec_drop(
                        "INSERT INTO test.probe (who) VALUES (?)",
                        (format!("held {i}"),),
                    )
                    .await;
                (conn, id, insert, start.elapsed())
            })
        })
        .collect();
    let status = wait_status(&proxy, "3 held").await;
    eprintln!("rolled_back_when_drain_times_out: during the drain:\n{status}");

    let out = switch.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "switchover succeeded:\n{stdout}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("ERR") && last.contains("drain"),
        "switchover:\n{stdout}"
    );
    eprintln!("rolled_back_when_drain_times_out: {last}");

    for (i, task) in held.into_iter().enumerate() {
        let (conn, id, insert, waited) = task.await.unwrap();
        assert_eq!(
            id.unwrap_or_else(|e| panic!("held session {i}: {e}")),
            Some(1)
        );
        insert.unwrap_or_else(|e| panic!("held session {i}: {e}"));
        eprintln!(
            "rolled_back_when_drain_times_out: held session {i} waited {:.1} ms",
            waited.as_secs_f64() * 1000.0
        );
        conns.push(conn);
    }
    // The transaction that outlived the drain carries on and commits on blue.
    tx.query_drop("INSERT INTO test.probe (who) VALUES ('after the rollback')")
        .await
        .unwrap();
    tx.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        sql(
            &pair.blue,
            "SELECT COUNT(*) FROM test.probe WHERE who IN ('open transaction', 'after the rollback')"
        ),
        "2"
    );
    conns.push(tx);
    assert_still_on_blue("drain timeout", &pair, &proxy, &mut conns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolled_back_when_standby_dies_mid_switchover() {
    let mut pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut conns = sessions(&proxy, 3).await;
    let mut tx = conns.pop().unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("INSERT INTO test.probe (who) VALUES ('spans the drain')")
        .await
        .unwrap();

    let switch = tokio::spawn(
        tokio::process::Command::from(proxy.ctl_command(&["switchover", "--drain-timeout", "20s"]))
            .output(),
    );
    wait_status(&proxy, "phase: draining").await;
    // Green goes away while the switchover waits for the open transaction…
    tokio::task::block_in_place(|| pair.green.stop());
    // …which then commits, so the drain ends and the fence and catch-up meet a dead
    // green.
    tx.query_drop("COMMIT").await.unwrap();

    let out = switch.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "switchover succeeded:\n{stdout}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("ERR") && last.contains("rolled back"),
        "switchover:\n{stdout}\nproxy log:\n{}",
        proxy.log()
    );
    eprintln!("rolled_back_when_standby_dies_mid_switchover:\n{stdout}");

    assert_eq!(sql(&pair.blue, "SELECT @@read_only"), "0", "blue writable");
    conns.push(tx);
    for (i, conn) in conns.iter_mut().enumerate() {
        assert_eq!(server_id(conn).await, 1, "session {i} on blue");
        conn.exec_drop(
            "INSERT INTO test.probe (who) VALUES (?)",
            (format!("green down {i}"),),
        )
        .await
        .unwrap_or_else(|e| panic!("session {i} cannot write: {e}"));
    }

    // Green comes back (writable, as a restarted server does: the operator fences it),
    // replicates again, has every row, and the next switchover would be allowed.
    tokio::task::block_in_place(|| {
        pair.green.start().expect("restart green");
        sql(&pair.green, "SET GLOBAL read_only = ON");
        pair.wait_replicating(GUARD)
            .expect("green replicates again");
        pair.wait_green_caught_up(GUARD).expect("green catches up");
    });
    assert_eq!(
        sql(
            &pair.green,
            "SELECT COUNT(*) FROM test.probe WHERE who = 'spans the drain'"
        ),
        "1"
    );
    assert_still_on_blue("standby died", &pair, &proxy, &mut conns).await;
    let (ok, out) = proxy.ctl_async(&["check"]).await;
    assert!(ok, "check after green is back:\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_session_aborts_by_default_and_is_closed_on_request() {
    let pair = support::pair();

    // 1. Default policy (abort): the switchover rolls back after the drain timeout.
    {
        let proxy = Proxy::start(&pair, "");
        let mut conns = sessions(&proxy, 2).await;
        let pinned = &mut conns[0];
        pinned
            .query_drop("CREATE TEMPORARY TABLE scratch (x INT)")
            .await
            .unwrap();
        pinned
            .query_drop("INSERT INTO scratch VALUES (7)")
            .await
            .unwrap();
        let (ok, out) = proxy.ctl_async(&["check"]).await;
        assert!(
            ok && out.contains("pinned now:"),
            "check lists the pin:\n{out}"
        );
        let (ok, out) = proxy
            .ctl_async(&["switchover", "--drain-timeout", "1s"])
            .await;
        let last = out.lines().last().unwrap_or("");
        assert!(
            !ok && last.starts_with("ERR") && last.contains("pinned"),
            "switchover with a pinned session:\n{out}"
        );
        eprintln!("pinned, abort: {last}");
        // The pinned session still has its temporary table, on blue.
        let x: Option<i64> = conns[0].query_first("SELECT x FROM scratch").await.unwrap();
        assert_eq!(x, Some(7));
        assert_still_on_blue("pinned, abort", &pair, &proxy, &mut conns).await;
    }

    // 2. on_pinned = "close": the switchover goes ahead; the pinned session gets a clear
    //    error, the others move.
    let proxy = Proxy::start(&pair, "[switchover]\non_pinned = \"close\"\n");
    let mut conns = sessions(&proxy, 3).await;
    conns[0]
        .query_drop("CREATE TEMPORARY TABLE scratch (x INT)")
        .await
        .unwrap();
    conns[1].query_drop("SET @kept = 'yes'").await.unwrap();
    let (ok, out) = proxy
        .ctl_async(&["switchover", "--drain-timeout", "1s"])
        .await;
    assert!(
        ok,
        "switchover with on_pinned=close:\n{out}\nproxy log:\n{}",
        proxy.log()
    );
    eprintln!("pinned, close: {}", out.lines().last().unwrap_or(""));
    let err = conns[0]
        .query_drop("SELECT * FROM scratch")
        .await
        .expect_err("the pinned session must be closed");
    assert_eq!(server_code(&err), Some(1927), "pinned session error: {err}");
    eprintln!("pinned, close: the pinned session got: {err}");
    let kept: Option<String> = conns[1].query_first("SELECT @kept").await.unwrap();
    assert_eq!(kept.as_deref(), Some("yes"));
    for (i, conn) in conns[1..].iter_mut().enumerate() {
        assert_eq!(server_id(conn).await, 2, "session {} moved to green", i + 1);
    }
}

/// Polls `ctl check` until its `pinned_sessions` line contains `needle`.
async fn wait_pins(proxy: &Proxy, needle: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        let (_, out) = proxy.ctl_async(&["check"]).await;
        let line = out
            .lines()
            .find(|l| l.contains("pinned_sessions"))
            .unwrap_or_default();
        if line.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`ctl check` never said {needle:?} of pins; last:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pin ends with the statement that ends it — a temporary table when it is dropped,
/// a statement prepared from over 16 MiB of text when it is closed, a named lock taken
/// by a server-side prepared statement when it is released, a `PREPARE … FROM @var`
/// when it is deallocated, a table handler when it is closed — and a multi-statement
/// is scanned statement by statement. Once nothing is pinned, the switchover takes
/// every session along.
#[tokio::test(flavor = "multi_thread")]
async fn pins_end_with_the_statements_that_end_them() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut conns = sessions(&proxy, 3).await;
    wait_pins(&proxy, "no session is pinned").await;

    conns[0]
        .query_drop("CREATE TEMPORARY TABLE scratch (x INT)")
        .await
        .unwrap();
    wait_pins(&proxy, "temporary table").await;
    conns[0]
        .query_drop("DROP TEMPORARY TABLE scratch")
        .await
        .unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    conns[0]
        .query_drop("HANDLER probe OPEN AS p")
        .await
        .unwrap();
    wait_pins(&proxy, "HANDLER").await;
    conns[0].query_drop("HANDLER p CLOSE").await.unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    // A statement text over 16 MiB is streamed through, not kept: pinned until closed.
    let big = format!("SELECT ? /* {} */", "x".repeat(17 << 20));
    let statement = conns[0].prep(big).await.unwrap();
    let got: Option<i64> = conns[0].exec_first(&statement, (5,)).await.unwrap();
    assert_eq!(got, Some(5));
    wait_pins(&proxy, "over 16 MiB").await;
    conns[0].close(statement).await.unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    let got: Option<i64> = conns[1]
        .exec_first("SELECT GET_LOCK(?, 0)", ("switchyard-test",))
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    wait_pins(&proxy, "GET_LOCK").await;
    conns[1]
        .exec_drop("SELECT RELEASE_LOCK(?)", ("switchyard-test",))
        .await
        .unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    conns[1].query_drop("SET @q = 'SELECT 1'").await.unwrap();
    conns[1]
        .query_drop("PREPARE from_var FROM @q")
        .await
        .unwrap();
    wait_pins(&proxy, "FROM @variable").await;
    conns[1]
        .query_drop("DEALLOCATE PREPARE from_var")
        .await
        .unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    conns[2]
        .query_drop("SELECT 1; CREATE TEMPORARY TABLE later (x INT)")
        .await
        .unwrap();
    wait_pins(&proxy, "temporary table").await;
    conns[2].reset().await.unwrap();
    wait_pins(&proxy, "no session is pinned").await;

    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}\nproxy log:\n{}", proxy.log());
    for (i, conn) in conns.iter_mut().enumerate() {
        assert_eq!(server_id(conn).await, 2, "session {i} moved to green");
    }
}

// ---------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn restart_after_switchover_routes_to_green() {
    let pair = support::pair();
    let mut proxy = Proxy::start(&pair, "");
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}\nproxy log:\n{}", proxy.log());

    // 1. The state file says green: a restarted proxy routes there.
    tokio::task::block_in_place(|| proxy.restart());
    let mut conn = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut conn).await, 2, "after a restart");
    let (ok, status) = proxy.ctl_async(&["status"]).await;
    assert!(ok && status.contains("OK green is active"), "{status}");
    drop(conn);

    // 2. A state file that says blue, while blue is the read-only replica and green
    //    the writable primary: the proxy follows the servers.
    tokio::task::block_in_place(|| proxy.stop());
    std::fs::write(
        &proxy.state_file,
        r#"{"active":"blue","phase":"idle","fenced":false,"fence_gtid":null,"updated_ms":0}"#,
    )
    .expect("write the state file");
    tokio::task::block_in_place(|| proxy.restart());
    let mut conn = app_conn(&proxy.addr).await;
    assert_eq!(
        server_id(&mut conn).await,
        2,
        "the proxy follows the servers"
    );
    conn.query_drop("CREATE TABLE test.after_restart (x INT)")
        .await
        .expect("writes go to the primary");
    let (ok, status) = proxy.ctl_async(&["status"]).await;
    assert!(ok && status.contains("OK green is active"), "{status}");
    assert!(
        proxy
            .log()
            .contains("blue is read-only and green is writable"),
        "proxy log:\n{}",
        proxy.log()
    );
}

// ---------------------------------------------------------------------------------
// pause / resume
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut waiting = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut waiting).await, 1);

    let (ok, out) = proxy.ctl_async(&["pause"]).await;
    assert!(ok && out.contains("OK paused"), "pause:\n{out}");
    let query = tokio::spawn(async move {
        let start = Instant::now();
        let id = server_id(&mut waiting).await;
        (waiting, id, start.elapsed())
    });
    wait_status(&proxy, "1 held").await;
    assert!(!query.is_finished(), "the query passed a paused gate");
    let (ok, out) = proxy.ctl_async(&["pause"]).await;
    assert!(
        !ok && out.contains("ERR already paused"),
        "second pause:\n{out}"
    );
    let (ok, out) = proxy.ctl_async(&["resume"]).await;
    assert!(ok && out.contains("OK resumed"), "resume:\n{out}");
    let (mut waiting, id, waited) = tokio::time::timeout(GUARD, query)
        .await
        .expect("the held query never completed")
        .unwrap();
    assert_eq!(id, 1);
    eprintln!(
        "pause_resume: the held query waited {:.1} ms",
        waited.as_secs_f64() * 1000.0
    );
    let (ok, out) = proxy.ctl_async(&["resume"]).await;
    assert!(
        !ok && out.contains("ERR not paused"),
        "second resume:\n{out}"
    );

    // Concurrent pause/resume from several threads, with a client querying meanwhile:
    // every call ends in OK or ERR, and afterwards one resume opens the gate.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(server_id(&mut waiting).await, 1);
                n += 1;
            }
            (waiting, n)
        })
    };
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let pause = proxy.ctl_command(&["pause"]);
            let resume = proxy.ctl_command(&["resume"]);
            let (pause_args, resume_args) = (args_of(&pause), args_of(&resume));
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for i in 0..6 {
                    let args = if (t + i) % 2 == 0 {
                        &pause_args
                    } else {
                        &resume_args
                    };
                    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
                        .args(args)
                        .output()
                        .expect("run ctl");
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    let last = stdout.lines().last().unwrap_or("").to_owned();
                    assert!(
                        (out.status.success() && last.starts_with("OK"))
                            || (!out.status.success() && last.starts_with("ERR")),
                        "ctl {args:?}: {stdout} {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    results.push(last);
                }
                results
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(tokio::task::block_in_place(|| {
            t.join().expect("a ctl thread panicked")
        }));
    }
    let (ok, out) = proxy.ctl_async(&["resume"]).await;
    assert!(ok || out.contains("ERR not paused"), "final resume:\n{out}");
    let status = wait_status(&proxy, "phase: idle\n").await;
    assert!(!status.contains("paused by hand"), "{status}");
    let mut fresh = app_conn(&proxy.addr).await;
    let id = tokio::time::timeout(GUARD, server_id(&mut fresh))
        .await
        .expect("a query after the final resume hangs: the gate is stuck");
    assert_eq!(id, 1);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, n) = tokio::time::timeout(GUARD, client)
        .await
        .expect("the querying client is stuck at the gate")
        .unwrap();
    let oks = all.iter().filter(|l| l.starts_with("OK")).count();
    eprintln!(
        "pause_resume: {} concurrent ctl calls ({oks} OK), {n} queries by the client meanwhile",
        all.len()
    );
}

/// The arguments of a prepared `ctl` command, to run it again from another thread.
fn args_of(cmd: &std::process::Command) -> Vec<std::ffi::OsString> {
    cmd.get_args().map(|a| a.to_os_string()).collect()
}

// ---------------------------------------------------------------------------------
// ctl
// ---------------------------------------------------------------------------------

/// The admin `help` says "Add --json to any command"; the server honours `--json`
/// anywhere on the line, so `ctl status --json` gets JSON lines back — and `ctl` must
/// then still read its result from the last JSON line, not look for a text `OK`.
#[tokio::test(flavor = "multi_thread")]
async fn ctl_json_after_the_command_reports_the_result() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let (ok, before) = proxy.ctl_async(&["--json", "status"]).await;
    assert!(ok, "ctl --json status:\n{before}");
    let (ok, after) = proxy.ctl_async(&["status", "--json"]).await;
    assert!(
        ok,
        "`ctl status --json` exits non-zero although the proxy answered \
         {{\"type\":\"ok\"}}:\n{after}"
    );
}

/// `KILL n` names proxy session n; the proxy rewrites it to n's backend thread id and
/// sends it on the *killer's* backend. After a switchover the two can be on different
/// servers: a session that has moved (green) killing one that has not yet (idle, still
/// on blue) sends blue's thread id to green — "Unknown thread id", the target lives
/// on, or, when that id is an unrelated session's on green, that session is killed.
#[tokio::test(flavor = "multi_thread")]
async fn kill_reaches_a_session_not_yet_moved() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut conns = Vec::new();
    for _ in 0..16 {
        conns.push(app_conn(&proxy.addr).await);
    }
    let mut blue_thread = Vec::new();
    for c in conns.iter_mut() {
        blue_thread.push(
            c.query_first::<u32, _>("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}");
    // Session 0 (the killer) moves; then the others, one at a time, until one's green
    // thread id is the blue thread id of a session that has not moved.
    let mut moved = vec![false; conns.len()];
    let mut green_thread = vec![None; conns.len()];
    let mut collision = None;
    for i in 0..conns.len() {
        green_thread[i] = conns[i]
            .query_first::<u32, _>("SELECT CONNECTION_ID()")
            .await
            .unwrap();
        moved[i] = true;
        collision = (1..conns.len())
            .find(|&t| !moved[t] && i != 0 && green_thread[i] == Some(blue_thread[t]))
            .map(|t| (t, i));
        if collision.is_some() || i + 1 == conns.len() - 1 {
            break;
        }
    }
    let last = conns.len() - 1;
    let (target, victim) = collision.map_or((last, None), |(t, v)| (t, Some(v)));
    assert!(!moved[target]);
    let target_id = conns[target].id();
    eprintln!(
        "kill: target session {target_id} (blue thread {}), killer on green thread {:?}, \
         moved session sharing that id on green: {victim:?}",
        blue_thread[target], green_thread[0]
    );
    let killed = conns[0].query_drop(format!("KILL {target_id}")).await;
    let after = conns[target].query_drop("SELECT 1").await;
    let mut others = Vec::new();
    for i in (0..conns.len()).filter(|&i| i != target) {
        others.push((i, conns[i].query_drop("SELECT 1").await));
    }
    let mut problems = Vec::new();
    if let Err(e) = killed {
        problems.push(format!("KILL {target_id} answered: {e}"));
    }
    if after.is_ok() {
        problems.push(format!("session {target_id} survived KILL {target_id}"));
    }
    for (i, r) in others {
        if let Err(e) = r {
            problems.push(format!("session {} was hit instead: {e}", conns[i].id()));
        }
    }
    assert!(
        problems.is_empty(),
        "after a switchover:\n{}",
        problems.join("\n")
    );
}

/// Idle sessions do not wait for their next command: they move as soon as the target
/// changes, so the old primary keeps no application connection.
#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_leave_the_old_primary() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut idle = sessions(&proxy, 5).await;
    let app_on = |server: &switchyard::testbed::Server| {
        sql(
            server,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app'",
        )
    };
    assert_eq!(app_on(&pair.blue), "5");
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}");
    let deadline = Instant::now() + GUARD;
    while app_on(&pair.blue) != "0" {
        assert!(
            Instant::now() < deadline,
            "app sessions stay on blue: {}",
            app_on(&pair.blue)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app_on(&pair.green), "5");
    for c in idle.iter_mut() {
        assert_eq!(server_id(c).await, 2);
    }
}

/// A connection to the primary outside the proxy, by an account that ignores
/// `read_only`, could write past the fence: refused by default, killed at the fence
/// with `bypass_writers = "kill"`.
#[tokio::test(flavor = "multi_thread")]
async fn bypass_writers_are_refused_or_killed() {
    use switchyard::testbed::{CONTROL_PASSWORD, CONTROL_USER};
    let pair = support::pair();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(pair.blue.port)
        .user(Some(CONTROL_USER))
        .pass(Some(CONTROL_PASSWORD))
        .prefer_socket(false);
    let mut outsider = Conn::new(opts)
        .await
        .expect("direct admin connection to blue");
    let outsider_id = outsider.id();

    let mut refusing = Proxy::start(&pair, "");
    let (ok, out) = refusing.ctl_async(&["check"]).await;
    assert!(!ok, "check passed with an admin connected to blue:\n{out}");
    assert!(
        out.contains("FAIL no_bypass_writers") && out.contains(&outsider_id.to_string()),
        "{out}"
    );
    let (ok, out) = refusing.ctl_async(&["switchover"]).await;
    assert!(!ok && out.contains("no_bypass_writers"), "{out}");
    assert_eq!(sql(&pair.blue, "SELECT @@read_only"), "0");
    refusing.stop();

    let killing = Proxy::start(&pair, "[switchover]\nbypass_writers = \"kill\"\n");
    let (ok, out) = killing.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover with bypass_writers = kill:\n{out}");
    let after = outsider.query_drop("SELECT 1").await;
    assert!(
        after.is_err(),
        "the outside admin connection survived the fence"
    );
    let listed = sql(
        &pair.blue,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {outsider_id}"),
    );
    assert_eq!(listed, "0");
}

/// mysql_async's default `prefer_socket` reads `@@socket` after logging in through the
/// proxy and, the host being local, reconnects over the primary's Unix socket: that
/// session goes around the proxy, which can neither hold nor move it. `check` names it
/// and `switchover` refuses; with `prefer_socket=false` the client stays behind the
/// proxy and the check passes.
#[tokio::test(flavor = "multi_thread")]
async fn clients_that_go_around_the_proxy_are_named_and_refused() {
    use switchyard::testbed::{APP_PASSWORD, APP_USER};
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let (host, port) = proxy.addr.rsplit_once(':').expect("HOST:PORT");
    let opts = |prefer_socket: bool| {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.to_owned())
            .tcp_port(port.parse().expect("port"))
            .user(Some(APP_USER))
            .pass(Some(APP_PASSWORD))
            .db_name(Some("test"))
            .prefer_socket(prefer_socket)
    };

    let mut around = Conn::new(opts(true))
        .await
        .expect("prefer_socket=true login");
    let (id, seen_from): (u64, String) = around
        .query_first(
            "SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen_from, "localhost",
        "mysql_async did not switch to the server's socket: the test proves nothing"
    );
    let (ok, out) = proxy.ctl_async(&["check"]).await;
    assert!(!ok, "check passed with a session around the proxy:\n{out}");
    assert!(
        out.contains("FAIL no_direct_sessions") && out.contains(&format!("{id} (app@localhost)")),
        "{out}"
    );
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(!ok && out.contains("no_direct_sessions"), "{out}");
    assert_eq!(sql(&pair.blue, "SELECT @@read_only"), "0");
    around.disconnect().await.unwrap();

    let mut behind = Conn::new(opts(false))
        .await
        .expect("prefer_socket=false login");
    let (ok, out) = proxy.ctl_async(&["check"]).await;
    assert!(
        ok && out.contains("pass no_direct_sessions"),
        "check with every client behind the proxy:\n{out}"
    );
    let n: Option<i64> = behind.query_first("SELECT 1").await.unwrap();
    assert_eq!(n, Some(1));
    behind.disconnect().await.unwrap();
}
