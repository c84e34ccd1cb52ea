//! caching_sha2_password on both legs of the proxy, with real clients and servers.
//!
//! Client leg (MariaDB and MySQL pairs): MySQL 9.7's own `mysql` client, which has no
//! mysql_native_password, logs in on the fast path; mysql-connector-python asks for
//! caching_sha2_password and changes user; a wrong password gets the server's 1045
//! text; an account with only a native hash gets an error naming the fix (and, with a
//! MySQL backend, the proxy names it at start).
//! Backend leg (MySQL 9.7): the fast path once the server has cached the account, the
//! full path (RSA-OAEP with the server's key, over plaintext) after `FLUSH PRIVILEGES`
//! and after a restart; mysql_async and PyMySQL, greeted with caching_sha2_password as
//! the server would, log in and run statements; COM_CHANGE_USER follows the same rules.

mod support;

use std::process::{Command, Output};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::testbed::{Flavor, APP_PASSWORD, APP_USER};

use support::Proxy;

for_each_flavor!(
    mysql_9_client_logs_in_on_the_fast_path,
    mysql_9_client_loads_data_local_and_a_20_mib_value,
    connector_python_asks_for_caching_sha2_and_changes_user,
    a_hash_only_account_names_the_fix_to_a_mysql_9_client,
    an_account_without_password_logs_in,
);

for_each_flavor_async!(a_wrong_password_gets_the_servers_1045_text,);

const OTHER_USER: &str = "other";
const OTHER_PASSWORD: &str = "other-secret";
const FULL_AUTH_LOG: &str = "caching_sha2_password full authentication";

fn user_entry(name: &str, key: &str, value: &str) -> String {
    format!("[[users]]\nname = \"{name}\"\n{key} = \"{value}\"\n")
}

/// `other` on blue (replicated to green), with the server's default plugin.
fn create_other(pair: &switchyard::testbed::Pair) {
    pair.blue
        .sql(&format!(
            "CREATE USER {OTHER_USER}@'%' IDENTIFIED BY '{OTHER_PASSWORD}'; \
             GRANT ALL ON test.* TO {OTHER_USER}@'%'"
        ))
        .unwrap();
}

/// `[[users]]` for `app` with its password, and for `name` with `key = value`.
fn app_and(name: &str, key: &str, value: &str) -> String {
    format!(
        "{}{}",
        user_entry(APP_USER, "password", APP_PASSWORD),
        user_entry(name, key, value)
    )
}

/// SHA1(SHA1(other's password)) as `mysql.user` shows it: a native hash only.
fn other_hash() -> String {
    use switchyard::protocol::auth::{format_native_hash, native_hash_from_sha1, sha1_password};
    format_native_hash(&native_hash_from_sha1(&sha1_password(
        OTHER_PASSWORD.as_bytes(),
    )))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The MySQL 9.7 `mysql` client through the proxy; stdout when it succeeds.
fn mysql_cli_ok(proxy: &Proxy, user: &str, password: &str, sql: &str) -> String {
    let out = mysql_cli_through(proxy, user, password, &["-N", "-B", "-e", sql], None);
    String::from_utf8_lossy(&out).into_owned()
}

/// The MySQL 9.7 `mysql` client through the proxy with `args` (and `stdin`); its
/// stdout, failing the test unless it succeeds.
fn mysql_cli_through(
    proxy: &Proxy,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Vec<u8> {
    let out = support::cli(
        Flavor::MySql,
        &proxy.addr,
        user,
        password,
        Some("test"),
        args,
        stdin,
    );
    assert!(
        out.status.success(),
        "mysql 9.7 through the proxy: {}\nproxy log:\n{}",
        text(&out),
        proxy.log()
    );
    out.stdout
}

fn mysql_9_client_logs_in_on_the_fast_path(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let who = mysql_cli_ok(
        &proxy,
        APP_USER,
        APP_PASSWORD,
        "CREATE TABLE t (x INT); INSERT INTO t VALUES (7); SELECT CURRENT_USER(), x FROM t",
    );
    assert_eq!(who, "app@%\t7\n");
    assert_eq!(pair.blue.sql("SELECT x FROM test.t").unwrap(), "7\n");
}

/// The MySQL 9.7 client through the proxy: `LOAD DATA LOCAL INFILE` (the proxy relays
/// the file request and the file), then a 20 MiB value in one statement fed on stdin,
/// read back whole.
fn mysql_9_client_loads_data_local_and_a_20_mib_value(flavor: Flavor) {
    const ROWS: usize = 10_000;
    const BIG: usize = 20 << 20;
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.tsv");
    let data: String = (0..ROWS).map(|i| format!("{i}\trow-{i}-ü\n")).collect();
    std::fs::write(&file, &data).unwrap();

    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["-N", "-B", "--local-infile=1", "--max-allowed-packet=64M"];
        all.extend_from_slice(args);
        mysql_cli_through(&proxy, APP_USER, APP_PASSWORD, &all, stdin)
    };
    let load = format!(
        "CREATE TABLE rows_in (id INT PRIMARY KEY, v VARCHAR(40)) CHARACTER SET utf8mb4; \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE rows_in CHARACTER SET utf8mb4; \
         SELECT COUNT(*), SUM(CRC32(v)) FROM rows_in",
        file.display()
    );
    let through = String::from_utf8(cli(&["-e", &load], None)).unwrap();
    let direct = pair
        .blue
        .sql("SELECT COUNT(*), SUM(CRC32(v)) FROM test.rows_in")
        .unwrap();
    assert!(through.starts_with(&format!("{ROWS}\t")), "{through}");
    assert_eq!(through, direct, "the rows as blue has them");

    let value = "0123456789abcdef".repeat(BIG / 16);
    let insert = format!(
        "CREATE TABLE big (id INT PRIMARY KEY, v LONGTEXT); \
         INSERT INTO big VALUES (1, '{value}');\n"
    );
    cli(&[], Some(&insert));
    let back = cli(&["-e", "SELECT v FROM big WHERE id = 1"], None);
    assert_eq!(back.len(), BIG + 1, "the 20 MiB value and a newline");
    assert!(
        back[..BIG] == *value.as_bytes(),
        "the value read back differs"
    );
}

/// A wrong password: the proxy's 1045 is the one blue gives directly.
async fn a_wrong_password_gets_the_servers_1045_text(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");

    let out = support::cli(
        Flavor::MySql,
        &proxy.addr,
        APP_USER,
        "wrong",
        Some("test"),
        &["-e", "SELECT 1"],
        None,
    );
    assert!(!out.status.success(), "{}", text(&out));
    let direct = match Conn::new(opts(&pair.blue.addr(), APP_USER, "wrong")).await {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!("blue accepted a wrong password or failed otherwise: {other:?}"),
    };
    assert_eq!(direct.code, 1045);
    let expected = format!("ERROR 1045 ({}): {}\n", direct.state, direct.message);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with(&expected),
        "through the proxy: {stderr}\ndirectly: {expected}"
    );
}

fn opts(addr: &str, user: &str, pass: &str) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("numeric port"))
        .user(Some(user.to_owned()))
        .pass(Some(pass.to_owned()))
        .db_name(Some("test"))
        .prefer_socket(false)
}

/// Runs a Python script with `PORT`, `USER`, `PASSWORD`, `OTHER`, `OTHER_PASSWORD` in
/// its environment; fails with its output and the proxy's log unless it exits 0.
fn python(proxy: &Proxy, script: &str) {
    let port = proxy.addr.rsplit_once(':').expect("HOST:PORT").1;
    let out = Command::new(support::python())
        .arg("-c")
        .arg(script)
        .env("PORT", port)
        .env("USER", APP_USER)
        .env("PASSWORD", APP_PASSWORD)
        .env("OTHER", OTHER_USER)
        .env("OTHER_PASSWORD", OTHER_PASSWORD)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}\nproxy log:\n{}",
        text(&out),
        proxy.log()
    );
}

const CONNECTOR_CHANGE_USER: &str = r#"
import os, mysql.connector
c = mysql.connector.connect(host="127.0.0.1", port=int(os.environ["PORT"]),
    user=os.environ["USER"], password=os.environ["PASSWORD"], database="test",
    auth_plugin="caching_sha2_password", ssl_disabled=True, use_pure=True)
cur = c.cursor()
cur.execute("SELECT CURRENT_USER()")
assert cur.fetchall() == [("app@%",)], "login"
ps = c.cursor(prepared=True)
ps.execute("SELECT ? + 1", (41,))
assert ps.fetchall() == [(42,)], "prepared"
c.cmd_change_user(username=os.environ["OTHER"], password=os.environ["OTHER_PASSWORD"],
    database="test")
cur = c.cursor()
cur.execute("SELECT CURRENT_USER()")
assert cur.fetchall() == [("other@%",)], "after change_user"
try:
    c.cmd_change_user(username=os.environ["USER"], password="wrong", database="test")
    raise SystemExit("change_user with a wrong password succeeded")
except mysql.connector.Error as e:
    assert e.errno == 1045, e
"#;

fn connector_python_asks_for_caching_sha2_and_changes_user(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    create_other(&pair);
    let proxy = Proxy::builder(&pair)
        .users(&app_and(OTHER_USER, "password", OTHER_PASSWORD))
        .start();
    python(&proxy, CONNECTOR_CHANGE_USER);
}

fn a_hash_only_account_names_the_fix_to_a_mysql_9_client(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let users = app_and(OTHER_USER, "password_hash", &other_hash());
    create_other(&pair);
    let proxy = Proxy::builder(&pair).users(&users).start();
    let out = support::cli(
        Flavor::MySql,
        &proxy.addr,
        OTHER_USER,
        OTHER_PASSWORD,
        Some("test"),
        &["-e", "SELECT 1"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains("ERROR 1251") && stderr.contains("password_file"),
        "{stderr}"
    );
    // At start, a MySQL backend makes the proxy name the account and the fix once;
    // MariaDB, which takes the hash, does not.
    let log = proxy.log();
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("`other` has only a password_hash"))
        .collect();
    match flavor {
        Flavor::MySql => {
            assert_eq!(named.len(), 1, "one startup error naming `other`:\n{log}");
            assert!(
                named[0].contains("`password`, `password_file` or `password_env`"),
                "{}",
                named[0]
            );
        }
        Flavor::MariaDb => assert!(named.is_empty(), "{log}"),
    }
}

/// The full path when the server has not cached the account, the fast path once it
/// has; both again after FLUSH PRIVILEGES and after a restart of the server.
#[test]
fn a_mysql_backend_takes_the_full_path_then_the_fast_path() {
    let mut pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    let full_paths = |proxy: &Proxy| proxy.log().matches(FULL_AUTH_LOG).count();

    let before = full_paths(&proxy);
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 1"),
        "1\n"
    );
    let first = full_paths(&proxy);
    assert!(first > before, "the first login took the full path");
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 2"),
        "2\n"
    );
    assert_eq!(
        full_paths(&proxy),
        first,
        "the second login took the fast path"
    );

    pair.blue.sql("FLUSH PRIVILEGES").unwrap();
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 3"),
        "3\n"
    );
    let flushed = full_paths(&proxy);
    assert_eq!(flushed, first + 1, "full path again after FLUSH PRIVILEGES");

    pair.blue.stop();
    pair.blue.start().unwrap();
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 4"),
        "4\n"
    );
    assert_eq!(full_paths(&proxy), flushed + 1, "full path after a restart");
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 5"),
        "5\n"
    );
    assert_eq!(full_paths(&proxy), flushed + 1, "then the fast path");
}

/// mysql_async and PyMySQL take the plugin the greeting names: the proxy names the
/// backend's caching_sha2_password, and they log in and run statements with it.
#[tokio::test(flavor = "multi_thread")]
async fn clients_greeted_with_caching_sha2_log_in() {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");

    let mut conn = Conn::new(opts(&proxy.addr, APP_USER, APP_PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("mysql_async through the proxy: {e}\n{}", proxy.log()));
    let me: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("app@%"));
    let sum: Option<i64> = conn.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(sum, Some(42));
    conn.disconnect().await.unwrap();

    python(
        &proxy,
        r#"
import os, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(os.environ["PORT"]),
    user=os.environ["USER"], password=os.environ["PASSWORD"], database="test")
assert c._auth_plugin_name == "caching_sha2_password", c._auth_plugin_name
with c.cursor() as cur:
    cur.execute("SELECT CURRENT_USER(), %s + 1", (41,))
    assert cur.fetchall() == (("app@%", 42),)
"#,
    );
}

/// A password from the environment serves MySQL; a hash alone cannot log in to it,
/// and the client is told what to give instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_mysql_backend_needs_the_password() {
    let pair = support::pair_of(Flavor::MySql);
    create_other(&pair);
    let hash = other_hash();
    let users = format!(
        "{}{}",
        user_entry(APP_USER, "password_env", "APP_PASSWORD_FOR_TEST"),
        user_entry(OTHER_USER, "password_hash", &hash),
    );
    let proxy = Proxy::builder(&pair)
        .users(&users)
        .env("APP_PASSWORD_FOR_TEST", APP_PASSWORD)
        .start();
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT 1"),
        "1\n"
    );

    // mysql_async can do native: it is checked against the hash, then the backend
    // asks for caching_sha2_password, which needs the password.
    match Conn::new(opts(&proxy.addr, OTHER_USER, OTHER_PASSWORD)).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1251, "{e}");
            assert!(e.message.contains("password_env"), "{e}");
        }
        other => panic!("a hash-only account logged in to MySQL: {other:?}"),
    }
}

/// After a switchover to a green that has never seen the account, an open session
/// logs in to it on the full path and carries on; new clients follow.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_log_in_to_a_fresh_mysql_green_after_a_switchover() {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    let full_paths = |proxy: &Proxy| proxy.log().matches(FULL_AUTH_LOG).count();

    let mut conn = Conn::new(opts(&proxy.addr, APP_USER, APP_PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("mysql_async through the proxy: {e}\n{}", proxy.log()));
    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(pair.blue.port));
    let before = full_paths(&proxy);

    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover: {out}\nproxy log:\n{}", proxy.log());

    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(pair.green.port), "the session moved to green");
    let sum: Option<i64> = conn.exec_first("SELECT ? + 1", (1,)).await.unwrap();
    assert_eq!(sum, Some(2));
    assert!(
        full_paths(&proxy) > before,
        "green had not cached the account: the full path"
    );
    conn.disconnect().await.unwrap();
    assert_eq!(
        mysql_cli_ok(&proxy, APP_USER, APP_PASSWORD, "SELECT @@port"),
        format!("{}\n", pair.green.port)
    );
}

/// An empty password: the client's empty answer, the OK alone (no `0x01 0x03`, as a
/// server does), and an empty answer to the backend.
fn an_account_without_password_logs_in(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    pair.blue
        .sql("CREATE USER nopw@'%' IDENTIFIED BY ''; GRANT ALL ON test.* TO nopw@'%'")
        .unwrap();
    let proxy = Proxy::builder(&pair)
        .users(&app_and("nopw", "password", ""))
        .start();
    assert_eq!(
        mysql_cli_ok(&proxy, "nopw", "", "SELECT CURRENT_USER()"),
        "nopw@%\n"
    );
    let out = support::cli(
        Flavor::MySql,
        &proxy.addr,
        "nopw",
        "something",
        Some("test"),
        &["-e", "SELECT 1"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"),
        "{}",
        text(&out)
    );
}
