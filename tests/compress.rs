//! The compressed protocol on the client leg, with real clients against real servers:
//! the `mariadb` and MySQL 9.7 `mysql` command-line clients asked to compress (zlib,
//! and zstd with MySQL's client against a MySQL backend) print exactly what they print
//! connected directly to the server, for queries, a 20 MiB result and LOAD DATA LOCAL
//! INFILE; and compressed sessions (the `mysql_async` client) keep working across
//! switchovers. mysql-connector-python's `compress=True` runs in tests/pymysql.rs.

mod support;

use std::fmt::Write as _;
use std::process::Output;

use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

use support::{cli, Proxy};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the client of `flavor` with `args` directly against blue, then through the
/// proxy; both must succeed and print the same bytes. Returns what it printed.
fn same_ok(
    pair: &Pair,
    proxy: &Proxy,
    flavor: Flavor,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    let run = |addr: &str| -> Output {
        cli(
            flavor,
            addr,
            APP_USER,
            APP_PASSWORD,
            Some("test"),
            args,
            stdin,
        )
    };
    let direct = run(&pair.blue.addr());
    assert!(
        direct.status.success(),
        "directly: {}",
        text(&direct.stderr)
    );
    let proxied = run(&proxy.addr);
    assert!(
        proxied.status.success(),
        "through the proxy: {}\nproxy log:\n{}",
        text(&proxied.stderr),
        proxy.log()
    );
    assert_eq!(
        text(&proxied.stderr),
        text(&direct.stderr),
        "stderr differs (left: proxy, right: direct)"
    );
    // Not assert_eq!: a 20 MiB diff helps nobody.
    assert!(
        proxied.stdout == direct.stdout,
        "stdout differs: {} bytes through the proxy, {} directly; first lines:\n{}\n---\n{}",
        proxied.stdout.len(),
        direct.stdout.len(),
        head(&proxied.stdout),
        head(&direct.stdout)
    );
    text(&direct.stdout)
}

fn head(bytes: &[u8]) -> String {
    text(&bytes[..bytes.len().min(400)])
}

/// The client's own `status` says its connection to the proxy is compressed (the
/// server's status cannot tell: the backend leg never is).
fn assert_compressed(proxy: &Proxy, flavor: Flavor, flag: &str) {
    // MySQL's client runs its own commands in batch mode only when told to.
    let args: &[&str] = match flavor {
        Flavor::MariaDb => &[flag],
        Flavor::MySql => &[flag, "--commands"],
    };
    let out = cli(
        flavor,
        &proxy.addr,
        APP_USER,
        APP_PASSWORD,
        Some("test"),
        args,
        Some("status\n"),
    );
    let status = text(&out.stdout);
    assert!(
        out.status.success() && status.contains("Protocol:\t\tCompressed"),
        "{flag}: the client does not say it compresses:\n{status}{}",
        text(&out.stderr)
    );
}

/// The client option that asks for zlib compression.
fn compress_flag(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "--compress",
        Flavor::MySql => "--compression-algorithms=zlib",
    }
}

/// Queries of every kind, then about 21 MiB of rows (20,000 rows of 1 KiB of text,
/// 8 bytes of which change per row, so it compresses) and one 2 MiB value.
const QUERIES: &str = "SELECT 1, 'two', NULL, 4.5, _utf8mb4'ünïcödé 🐘';\n\
    SELECT @@version_comment IS NOT NULL, CONNECTION_ID() > 0;\n\
    CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, v VARCHAR(20));\n\
    INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, REPEAT('z', 20));\n\
    SELECT * FROM t ORDER BY id;\n\
    SHOW WARNINGS;\n\
    SELECT 1/0;\n\
    SET @@session.RECURSION_LIMIT = 100000;\n\
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000)\n\
      SELECT n, CONCAT(LPAD(n, 8, '0'), REPEAT('row text ', 113)) FROM s;\n\
    SELECT LENGTH(REPEAT(SHA2('x', 256), 32768)), SHA2(REPEAT(SHA2('x', 256), 32768), 256);\n\
    SELECT REPEAT(SHA2('y', 256), 32768);\n";

/// [`QUERIES`] in the dialect of `flavor`: the recursion limit (1,000 by default on
/// both) has another name on each.
fn queries(flavor: Flavor) -> String {
    let limit = match flavor {
        Flavor::MariaDb => "max_recursive_iterations",
        Flavor::MySql => "cte_max_recursion_depth",
    };
    QUERIES.replace("RECURSION_LIMIT", limit)
}

fn compressed_queries_and_a_20_mib_result(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let queries = queries(flavor);
    let args = [compress_flag(flavor), "-N", "--max-allowed-packet=64M"];
    let out = same_ok(&pair, &proxy, flavor, &args, Some(&queries));
    assert!(
        out.len() > 20 << 20,
        "only {} bytes printed, {} lines; the end:\n{}",
        out.len(),
        out.lines().count(),
        out.lines()
            .rev()
            .skip(3)
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.contains("00020000row text"), "the last row is missing");
    assert_compressed(&proxy, flavor, compress_flag(flavor));
}

fn load_data_local_infile_compressed(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    // About 5 MB: many compressed packets of file data, some incompressible.
    let mut data = String::new();
    for i in 0..60_000u64 {
        let _ = writeln!(
            data,
            "{i},{},note {i} {}",
            i % 7,
            i.wrapping_mul(2_654_435_761) % 1_000_003
        );
    }
    std::fs::write(&csv, &data).unwrap();
    let script = format!(
        "DROP TABLE IF EXISTS ld;\n\
         CREATE TABLE ld (id INT PRIMARY KEY, grp INT, note VARCHAR(100));\n\
         LOAD DATA LOCAL INFILE '{}' INTO TABLE ld FIELDS TERMINATED BY ',';\n\
         SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, grp, note))) FROM ld;\n",
        csv.display()
    );
    let out = same_ok(
        &pair,
        &proxy,
        flavor,
        &[compress_flag(flavor), "--local-infile=1", "-N"],
        Some(&script),
    );
    assert!(out.starts_with("60000\t"), "{out}");
    let on_blue = pair
        .blue
        .sql("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, grp, note))) FROM test.ld")
        .unwrap();
    assert_eq!(on_blue.trim_end(), out.trim_end());
}

for_each_flavor!(
    compressed_queries_and_a_20_mib_result,
    load_data_local_infile_compressed
);

/// MySQL's own client with zstd (at a level of its choosing) against a MySQL backend:
/// the proxy offers zstd only there, and answers in it.
#[test]
fn mysql_client_with_zstd() {
    let pair = support::pair_of(Flavor::MySql);
    let proxy = Proxy::start(&pair, "");
    for level in ["3", "11"] {
        let level = format!("--zstd-compression-level={level}");
        let args = [
            "--compression-algorithms=zstd",
            &level,
            "-N",
            "--max-allowed-packet=64M",
        ];
        let out = same_ok(
            &pair,
            &proxy,
            Flavor::MySql,
            &args,
            Some(&queries(Flavor::MySql)),
        );
        assert!(out.len() > 20 << 20, "only {} bytes printed", out.len());
    }
    assert_compressed(&proxy, Flavor::MySql, "--compression-algorithms=zstd");
}

/// `[proxy] compression = false`: no compression is offered, and a client that asks
/// anyway is told so, not hung.
#[test]
fn compression_off_is_not_offered() {
    let pair = support::pair_of(Flavor::MariaDb);
    let proxy = Proxy::builder(&pair)
        .proxy_key("compression", "false")
        .start();
    // The mariadb client only compresses when offered: it carries on uncompressed.
    let run = |args: &[&str], stdin| {
        let out = cli(
            Flavor::MariaDb,
            &proxy.addr,
            APP_USER,
            APP_PASSWORD,
            Some("test"),
            args,
            stdin,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(
        run(&["--compress", "-N", "-e", "SELECT 6 * 7"], None),
        "42\n"
    );
    let status = run(&["--compress"], Some("status\n"));
    assert!(
        status.contains("Connection:") && !status.contains("Compressed"),
        "{status}"
    );
}

/// Compressed sessions (mysql_async with zlib) through two switchovers under load:
/// the checks of every switchover test, and the sessions stay compressed.
#[tokio::test(flavor = "multi_thread")]
async fn switchovers_under_compressed_sessions() {
    let pair = support::pair_of(Flavor::MariaDb);
    let proxy = Proxy::start(&pair, "");
    support::load::there_and_back_with(
        &pair,
        &proxy,
        "compressed sessions",
        Some(mysql_async::Compression::fast()),
    )
    .await;
}

/// A compressed session (mysql_async, zlib) that goes idle long enough to give its
/// buffers back, is moved by a switchover while idle, and changes user: each time the
/// next command is answered, on the right server, with the state the command implies.
#[tokio::test(flavor = "multi_thread")]
async fn idle_release_idle_move_and_change_user_stay_compressed() {
    use mysql_async::prelude::Queryable;
    let pair = support::pair_of(Flavor::MariaDb);
    let proxy = Proxy::start(&pair, "");
    let mut conn =
        support::load::app_conn_with(&proxy.addr, Some(mysql_async::Compression::fast())).await;
    let big = "SELECT REPEAT('compressible ', 20000)";
    conn.query_drop("SET @kept = 7").await.unwrap();
    // Idle past the release of buffers (1 s), then a big answer.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let text: String = conn.query_first(big).await.unwrap().unwrap();
    assert_eq!(text.len(), 13 * 20000);
    // Moved to green while idle.
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover: {out}\nproxy log:\n{}", proxy.log());
    let (server, kept): (u32, Option<i64>) = conn
        .query_first("SELECT @@server_id, @kept")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((server, kept), (pair.green.server_id, Some(7)));
    // COM_CHANGE_USER: the same account, another default schema; session state goes.
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(APP_USER.into()))
        .with_pass(Some(APP_PASSWORD.into()))
        .with_db_name(Some("sbtest".into()));
    conn.change_user(opts)
        .await
        .unwrap_or_else(|e| panic!("change user: {e}\nproxy log:\n{}", proxy.log()));
    let (db, kept): (String, Option<i64>) = conn
        .query_first("SELECT DATABASE(), @kept")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((db.as_str(), kept), ("sbtest", None));
    let text: String = conn.query_first(big).await.unwrap().unwrap();
    assert_eq!(text.len(), 13 * 20000);
    conn.disconnect().await.unwrap();
}
