//! Authentication-failure throttling with real clients: failed COM_CHANGE_USER
//! (mysql_async) and failed logins (PyMySQL, which can choose its source address) from 127.0.0.1 are counted
//! together; past `auth_failure_delay_after` the ERR comes late, at
//! `max_auth_failures` the address is blocked and even the right password gets ERR
//! 1129, while a client from 127.0.0.2 still logs in. `status` shows the counts and
//! the log one warning.

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::ChangeUserOpts;
use support::load::app_conn;
use support::{login_from, Proxy};
use switchyard::testbed::{APP_PASSWORD, APP_USER};

const DELAY: Duration = Duration::from_millis(400);

/// A PyMySQL login through the proxy from `bind`: what it printed, and how long the
/// login took (measured by the script, without its start-up).
fn login(proxy: &Proxy, bind: &str, password: &str) -> (serde_json::Value, Duration) {
    let answer = login_from(proxy, bind, APP_USER, password);
    let took = answer["seconds"].as_f64().unwrap_or_default();
    (answer, Duration::from_secs_f64(took))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_delayed_then_the_address_is_blocked_and_others_still_log_in() {
    let pair = support::pair();
    let proxy = Proxy::builder(&pair)
        .proxy_key("auth_failure_delay_after", "2")
        .proxy_key("auth_failure_delay", "\"400ms\"")
        .proxy_key("max_auth_failures", "5")
        .proxy_key("auth_block_time", "\"10m\"")
        .start();

    let mut survivor = app_conn(&proxy.addr).await;
    survivor.query_drop("select 1").await.unwrap();
    // Logged in before any failure (a success resets the address's count).
    let mut guessers = vec![app_conn(&proxy.addr).await, app_conn(&proxy.addr).await];
    // Failures 1 and 2: COM_CHANGE_USER with a wrong password, answered at once.
    for conn in &mut guessers {
        let err = conn
            .change_user(
                ChangeUserOpts::new()
                    .with_user(Some(APP_USER.into()))
                    .with_pass(Some("wrong".into())),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Access denied"), "{err}");
    }
    // Failures 3 to 5: wrong logins, each answered one delay later than the last.
    for (n, steps) in [(3, 1), (4, 2), (5, 3)] {
        let (answer, took) = login(&proxy, "127.0.0.1", "wrong");
        assert_eq!(answer["error"], 1045, "failure {n}: {answer}");
        eprintln!("failure {n}: ERR 1045 after {took:?}");
        assert!(
            took >= DELAY * steps,
            "failure {n} answered after {took:?}, expected at least {:?}",
            DELAY * steps
        );
    }
    // Blocked: the right password from that address is refused before any greeting.
    let (answer, _) = login(&proxy, "127.0.0.1", APP_PASSWORD);
    assert_eq!(answer["error"], 1129, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Host '127.0.0.1' is blocked because of many authentication failures"),
        "{answer}"
    );
    // Another address is not blocked.
    let (answer, _) = login(&proxy, "127.0.0.2", APP_PASSWORD);
    assert_eq!(answer["connected"], true, "{answer}");

    let (ok, status) = proxy.ctl_async(&["status"]).await;
    assert!(ok, "{status}");
    assert!(
        status.contains(
            "authentication failures: 5 (3 answered late), 1 address(es) blocked now, \
             1 block(s), 1 connection(s) refused as blocked"
        ),
        "{status}"
    );
    let (ok, json) = proxy.ctl_async(&["--json", "status"]).await;
    assert!(ok, "{json}");
    assert!(json.contains("\"auth_failures\":{"), "{json}");
    let log = proxy.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("blocked for"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("127.0.0.1"), "{}", warnings[0]);

    // A session that logged in before the block cannot go on with COM_CHANGE_USER.
    let err = survivor
        .change_user(
            ChangeUserOpts::new()
                .with_user(Some(APP_USER.into()))
                .with_pass(Some(APP_PASSWORD.into())),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1129"), "{err}");
}
