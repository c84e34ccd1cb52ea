//! Operating a running proxy: `reload` and SIGHUP re-read the config (a bad one is
//! refused and the old one kept), a proxy restarted in the middle of a switchover
//! rolls it back from its state file, and SIGTERM lets open transactions finish.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::load::{app_conn, server_id, sql};
use support::Proxy;

const GUARD: Duration = Duration::from_secs(30);

fn can_log_in(addr: &str, user: &str, password: &str) -> bool {
    let out = support::mariadb_cli(addr, user, password, None, &["-e", "SELECT 1"], None);
    out.status.success()
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_and_sighup_reread_the_config() {
    let pair = support::pair();
    pair.blue
        .sql("CREATE USER later@'%' IDENTIFIED BY 'later-pw'; GRANT ALL ON test.* TO later@'%'")
        .expect("create user");
    let proxy = Proxy::start(&pair, "");
    assert!(
        !can_log_in(&proxy.addr, "later", "later-pw"),
        "not configured yet"
    );
    let original = std::fs::read_to_string(&proxy.config_path).unwrap();

    // A bad config is refused, and the old one stays in force.
    std::fs::write(&proxy.config_path, format!("{original}\n[proxy.bogus]\n")).unwrap();
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(!ok, "a bad config was accepted:\n{out}");
    assert!(out.contains("old config stays in force"), "{out}");
    let mut session = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut session).await, 1);

    // A changed listen address needs a restart.
    let moved = original.replace(&proxy.addr, "127.0.0.1:1");
    std::fs::write(&proxy.config_path, &moved).unwrap();
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(!ok && out.contains("proxy.listen"), "{out}");

    // A new user through `reload`.
    let with_user = format!("{original}\n[[users]]\nname = \"later\"\npassword = \"later-pw\"\n");
    std::fs::write(&proxy.config_path, &with_user).unwrap();
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(ok, "reload:\n{out}");
    assert!(can_log_in(&proxy.addr, "later", "later-pw"));

    // And away again through SIGHUP.
    std::fs::write(&proxy.config_path, &original).unwrap();
    let pid = proxy.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + GUARD;
    while can_log_in(&proxy.addr, "later", "later-pw") {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server_id(&mut session).await,
        1,
        "sessions carry on across reloads"
    );
}

/// The proxy died with blue fenced (read_only=ON) in the middle of a switchover: at
/// restart it reads its state file, makes blue writable again and routes there.
#[tokio::test(flavor = "multi_thread")]
async fn restart_mid_switchover_rolls_back() {
    let pair = support::pair();
    let mut proxy = Proxy::start(&pair, "");
    proxy.stop();
    pair.blue.sql("SET GLOBAL read_only = ON").unwrap();
    std::fs::write(
        &proxy.state_file,
        r#"{"active":"blue","phase":"catching_up","fenced":true,"fence_gtid":"0-1-1","updated_ms":0}"#,
    )
    .unwrap();
    proxy.restart();
    assert_eq!(
        sql(&pair.blue, "SELECT @@read_only"),
        "0",
        "blue writable again"
    );
    assert_eq!(
        sql(&pair.green, "SELECT @@read_only"),
        "1",
        "green still read-only"
    );
    let mut session = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut session).await, 1);
    let (ok, out) = proxy.ctl_async(&["status"]).await;
    assert!(
        ok && out.contains("blue is active") && out.contains("phase: idle"),
        "{out}"
    );
    let journal = std::fs::read_to_string(&proxy.state_file).unwrap();
    assert!(journal.contains("\"idle\""), "{journal}");
    // And a switchover works afterwards.
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "{out}");
    assert_eq!(server_id(&mut session).await, 2);
}

/// Both sides writable at startup (a split brain, or someone promoted green by hand):
/// the proxy refuses clients with ERR 1290 rather than guess, and routes again once
/// one side is read-only.
#[tokio::test(flavor = "multi_thread")]
async fn refuses_to_route_while_both_sides_are_writable() {
    let pair = support::pair();
    pair.green.sql("SET GLOBAL read_only = OFF").unwrap();
    let proxy = Proxy::start(&pair, "");
    let out = support::mariadb_cli(
        &proxy.addr,
        switchyard::testbed::APP_USER,
        switchyard::testbed::APP_PASSWORD,
        None,
        &["-e", "SELECT 1"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a client got through with both sides writable"
    );
    assert!(
        stderr.contains("ERROR 1290") && stderr.contains("both blue and green are writable"),
        "{stderr}"
    );
    pair.green.sql("SET GLOBAL read_only = ON").unwrap();
    let deadline = Instant::now() + GUARD;
    loop {
        let out = support::mariadb_cli(
            &proxy.addr,
            switchyard::testbed::APP_USER,
            switchyard::testbed::APP_PASSWORD,
            None,
            &["-N", "-e", "SELECT @@server_id"],
            None,
        );
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after green became read-only"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM: the proxy stops accepting clients, lets an open transaction finish (its
/// COMMIT is answered), then closes the idle sessions and exits — well before
/// `shutdown_timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_open_transactions_finish() {
    let pair = support::pair();
    sql(&pair.blue, "CREATE TABLE test.shut (id INT PRIMARY KEY)");
    let mut proxy = Proxy::start(&pair, "");
    let mut writer = app_conn(&proxy.addr).await;
    let mut idle = app_conn(&proxy.addr).await;
    writer.query_drop("BEGIN").await.unwrap();
    writer
        .query_drop("INSERT INTO test.shut VALUES (1)")
        .await
        .unwrap();

    let pid = proxy.pid().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    // The listener closes at once; the transaction's session carries on.
    let deadline = Instant::now() + GUARD;
    while std::net::TcpStream::connect(&proxy.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer
        .query_drop("INSERT INTO test.shut VALUES (2)")
        .await
        .expect("a statement inside the open transaction");
    writer.query_drop("COMMIT").await.expect("COMMIT answered");
    assert_eq!(sql(&pair.blue, "SELECT COUNT(*) FROM test.shut"), "2");

    let deadline = Instant::now() + GUARD;
    while proxy.is_running() {
        assert!(Instant::now() < deadline, "the proxy did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "idle sessions are closed"
    );
    let log = proxy.log();
    assert!(
        log.contains("waiting up to 10s for 1 open transaction"),
        "{log}"
    );
}
