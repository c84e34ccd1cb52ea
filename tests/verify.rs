//! `switchyard verify` against a real pair: equal while a writer keeps changing blue
//! (proof that both sides are read at one GTID position), a difference planted on
//! green found with its key range, green replicating after every run — after a
//! difference, an error and an interruption too.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::testbed::{Flavor, Pair, CONTROL_PASSWORD, CONTROL_USER};

/// Rows of the main table; ids 1..=ROWS.
const ROWS: u64 = 3000;
/// Chunk size used by the tests: several chunks and rounds per table.
const CHUNK: &str = "500";

/// Tables of every kind the checksum must cover, filled on blue.
fn schema_sql(flavor: Flavor) -> String {
    let recursion = match flavor {
        Flavor::MariaDb => "SET SESSION max_recursive_iterations = 100000;",
        Flavor::MySql => "SET SESSION cte_max_recursion_depth = 100000;",
    };
    format!(
        "{recursion} USE app;
         CREATE TABLE app.items (
           id INT PRIMARY KEY, name VARCHAR(50) NULL, data BLOB NULL, doc JSON NULL,
           price DECIMAL(12,4) NULL, flags BIT(8) NULL, note TEXT NULL);
         INSERT INTO app.items
           WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {ROWS})
           SELECT n, CONCAT('name-', n), IF(n % 7 = 0, NULL, UNHEX(SHA2(n, 256))),
                  JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', n % 3)), n / 3, n % 256,
                  CASE n % 3 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE 'x#y' END
           FROM seq;
         CREATE TABLE app.pairs (a INT, b VARCHAR(20), v INT NULL, PRIMARY KEY (a, b));
         INSERT INTO app.pairs
           WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 1200)
           SELECT n % 40, CONCAT('k', n), IF(n % 4 = 0, NULL, n) FROM seq;
         CREATE TABLE app.words (
           w VARCHAR(30) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci PRIMARY KEY,
           l VARCHAR(30) CHARACTER SET latin1 NULL, at TIMESTAMP(6) NULL, d DATE NULL,
           f DOUBLE NULL, e ENUM('x', 'y') NULL, big BIGINT UNSIGNED NULL);
         INSERT INTO app.words
           WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 900)
           SELECT CONCAT(ELT(n % 4 + 1, 'a', 'B', 'ä', 'Z'), LPAD(n, 4, '0'), IF(n % 2 = 0, ' \\\'x', '')),
                  IF(n % 5 = 0, NULL, CONCAT('caf', CHAR(233 USING latin1))),
                  TIMESTAMP('2024-03-01 10:00:00.123456') + INTERVAL n MINUTE,
                  DATE('2020-02-29') + INTERVAL n DAY, n / 7, ELT(n % 2 + 1, 'x', 'y'),
                  18446744073709551615 - n
           FROM seq;
         CREATE TABLE app.bigkeys (k BIGINT UNSIGNED PRIMARY KEY, v INT);
         INSERT INTO app.bigkeys
           WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 1200)
           SELECT 18446744073709551615 - n * 3, n FROM seq;
         CREATE TABLE test.nokey (x INT);
         INSERT INTO test.nokey VALUES (1), (2);"
    )
}

fn setup(flavor: Flavor) -> (Pair, tempfile::TempDir, PathBuf) {
    let pair = support::pair_of(flavor);
    pair.blue
        .sql(&schema_sql(flavor))
        .unwrap_or_else(|e| panic!("create the tables on blue: {e}"));
    pair.wait_green_caught_up(Duration::from_secs(60))
        .expect("green catches up");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[blue]\naddress = \"{}\"\n\n[green]\naddress = \"{}\"\n\n\
             [control]\nuser = \"{CONTROL_USER}\"\npassword = \"{CONTROL_PASSWORD}\"\n",
            pair.blue.addr(),
            pair.green.addr()
        ),
    )
    .expect("write the config");
    (pair, dir, config)
}

/// `switchyard verify --config CONFIG ARGS…`, not yet run.
fn verify_command(config: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("verify").arg("--config").arg(config).args(args);
    cmd
}

/// `switchyard verify --config CONFIG ARGS…`, run to its end.
async fn verify(config: &Path, args: &[&str]) -> Output {
    verify_command(config, args)
        .output()
        .await
        .expect("run switchyard verify")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `out` exited with `code` and printed each of `lines`; its stdout.
fn assert_says(out: &Output, code: i32, lines: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", show(out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in lines {
        assert!(text.contains(line), "no {line:?} in\n{}", show(out));
    }
    text
}

/// Green's replication threads both run (`Slave_SQL_Running: Yes` and the IO thread).
fn assert_green_replicating(pair: &Pair, after: &str) {
    pair.wait_replicating(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("green is not replicating after {after}: {e}"));
    let status = pair.slave_status().expect("green's replica status");
    let sql_running = pair.flavor().status_column("Slave_SQL_Running");
    assert_eq!(
        status.get(&sql_running).map(String::as_str),
        Some("Yes"),
        "after {after}: {status:?}"
    );
}

async fn connect(addr: &str) -> Conn {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().expect("port"))
        .user(Some(CONTROL_USER))
        .pass(Some(CONTROL_PASSWORD))
        .prefer_socket(false);
    Conn::new(opts).await.expect("connect to blue")
}

/// Inserts and updates on blue until `stop`; counts its transactions.
async fn writer(addr: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut conn = connect(&addr).await;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = (n * 37) % ROWS + 1;
        let sql = format!(
            "START TRANSACTION;
             INSERT INTO app.items (id, name, doc, price, flags) VALUES ({new}, 'w', JSON_OBJECT('w', {n}), {n}.5, 1);
             UPDATE app.items SET name = CONCAT('u', {n}), price = price + 1, data = NULL WHERE id = {id};
             UPDATE app.pairs SET v = {n} WHERE a = {a};
             UPDATE app.words SET f = f + 1, at = NOW(6) WHERE w LIKE 'b%' LIMIT 3;
             UPDATE app.bigkeys SET v = v + 1 WHERE k > 18446744073709551615 - {n} * 3;
             COMMIT",
            new = ROWS + n,
            a = n % 40,
        );
        conn.query_drop(sql).await.expect("writer transaction");
        done.fetch_add(1, Ordering::Relaxed);
    }
    let _ = conn.disconnect().await;
}

async fn equal_under_writes_then_difference_found(flavor: Flavor) {
    let (pair, _dir, config) = setup(flavor);

    // 1. Equal while a writer keeps changing blue.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(writer(pair.blue.addr(), stop.clone(), done.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = done.load(Ordering::Relaxed);
    let out = verify(&config, &["--chunk-rows", CHUNK]).await;
    let during = done.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("writer");
    assert!(
        during > 20,
        "the writer wrote only {during} transactions during verify"
    );
    let text = assert_says(
        &out,
        0,
        &[
            "app.items: ok",
            "app.pairs: ok",
            "app.words: ok",
            "app.bigkeys: ok",
            "test.nokey: not verified: no primary key",
            "EQUAL: 4 tables ok, 0 differ, 1 not verified",
        ],
    );
    eprintln!("verify under {during} writes:\n{text}");
    assert_green_replicating(&pair, "an equal verify");
    pair.wait_green_caught_up(Duration::from_secs(60))
        .expect("green catches up");

    // 2. Differences planted on green, outside replication: a row changed, a row
    //    deleted, a table dropped.
    let (unfence, fence) = match flavor {
        Flavor::MariaDb => ("", ""),
        Flavor::MySql => (
            "SET GLOBAL super_read_only = OFF;",
            "SET GLOBAL super_read_only = ON;",
        ),
    };
    pair.green
        .sql(&format!(
            "{unfence} SET SESSION sql_log_bin = 0;
             UPDATE app.items SET note = 'planted' WHERE id = 1234;
             DELETE FROM app.items WHERE id = 2345;
             DROP TABLE app.bigkeys; {fence}"
        ))
        .expect("plant a difference on green");
    let out = verify(&config, &["--chunk-rows", CHUNK]).await;
    let text = assert_says(
        &out,
        1,
        &[
            "app.items: chunk [id 1001 .. 1500]: blue 500 rows",
            "app.items: chunk [id 2001 .. 2500]: blue 500 rows",
            "green 499 rows",
            "app.items: DIFFERS in 2 of",
            "app.pairs: ok",
            "app.bigkeys: DIFFERS: green cannot read it (ERROR 1146",
            "DIFFERENT: 2 tables ok, 2 differ",
        ],
    );
    eprintln!("verify with a planted difference:\n{text}");
    assert_green_replicating(&pair, "a verify that found a difference");

    // 3. The same as JSON lines, for one table.
    let out = verify(
        &config,
        &["--chunk-rows", CHUNK, "--json", "--tables", "app.items"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let ranges: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "chunk_differs")
        .filter_map(|e| e["range"].as_str())
        .collect();
    assert_eq!(
        ranges,
        ["[id 1001 .. 1500]", "[id 2001 .. 2500]"],
        "{}",
        show(&out)
    );
    let summary = events.last().expect("a summary line");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["equal"], false);
    assert_eq!(summary["tables_ok"], 0);

    // 4. Errors exit 2: a table blue lacks, before any round …
    let out = verify(&config, &["--tables", "app.nosuch"]).await;
    assert_error(&out, "app.nosuch");
    assert_green_replicating(&pair, "an error before any round");

    // … and a checksum on green that overruns its bound mid-round (green's table is
    // locked), with green's applier stopped at that moment.
    let mut locker = connect(&pair.green.addr()).await;
    // MySQL's super_read_only refuses the write lock; read_only stays on.
    locker
        .query_drop(format!("{unfence} LOCK TABLES app.items WRITE"))
        .await
        .expect("lock the table on green");
    let out = verify(&config, &["--tables", "app.items", "--timeout", "2s"]).await;
    assert_error(&out, "timed out");
    assert_green_replicating(&pair, "an error mid-round");
    locker
        .query_drop(format!("UNLOCK TABLES; {fence}"))
        .await
        .expect("unlock");
    let _ = locker.disconnect().await;
}

/// `out` exited 2 and its error message says `says`.
fn assert_error(out: &Output, says: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(says), "no {says:?} in\n{}", show(out));
}

async fn interrupted_verify_restarts_green(flavor: Flavor) {
    let (pair, _dir, config) = setup(flavor);
    // One-row chunks keep it busy long enough to be interrupted mid-round.
    let child = verify_command(&config, &["--chunk-rows", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn switchyard verify");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("verify still runs");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("verify ends after SIGTERM")
        .expect("verify's output");
    assert_error(&out, "interrupted");
    assert_green_replicating(&pair, "an interrupted verify");
}

for_each_flavor_async!(
    equal_under_writes_then_difference_found,
    interrupted_verify_restarts_green
);
