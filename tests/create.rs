//! `switchyard create` against real servers, on MariaDB and MySQL: a blue with every
//! kind of table, column and object copied to an empty green under a writing load,
//! then green replicating, `verify` equal and `diff` compatible; a green holding data
//! refused (and overwritten with `--force`); missing prerequisites listed with green
//! left untouched; an interrupted run marked on green and finished by the next one;
//! and the upgrade path, a 10.11 blue copied to an 11.8 green.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::create::{
    assert_created, assert_exit, assert_not_replicating, assert_read_only, assert_replicating,
    assert_same_rows, control_conn, green_state, on_green_unlogged, run, run_async, show,
    switchyard, unreplicated_pair, user_tables, write_config, SYSTEM_SCHEMAS,
};
use support::load::sql;
use support::Proxy;
use switchyard::testbed::{
    Build, Flavor, Pair, PairOptions, Server, APP_PASSWORD, APP_USER, REPL_PASSWORD, REPL_USER,
};

/// Rows of `app.orders`, the table copied in many chunks.
const ORDERS: u64 = 25_000;
/// The planted difference's row, which the load never deletes.
const PLANTED_ID: u64 = 12_345;
/// Rows of `app.bulk`, enough for a copy with one thread to take a few seconds.
const BULK_ROWS: u64 = 200_000;

/// Accounts only blue has before `create`, as SHOW GRANTS names them.
const ACCOUNTS: [&str; 3] = ["'reporter'@'%'", "'clerk'@'127.0.0.1'", "'reader'@'10.0.%'"];
const REPORTER_PASSWORD: &str = "Rep0rt-secret";

/// The big blue: schemas `app`, `shop` and `legacy` with every column type, key
/// shape, object kind and account kind `create` must carry over. `{AREA}` (the
/// spatial column with its SRID), `{RECURSION}`, `{DEFAULT_ROLE}` and `{SCHEDULER}`
/// differ per flavor.
const BIG_FIXTURE: &str = r#"
{SCHEDULER}
{RECURSION}
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE legacy CHARACTER SET latin1 COLLATE latin1_swedish_ci;

CREATE USER 'reporter'@'%' IDENTIFIED BY 'Rep0rt-secret';
GRANT SELECT, EXECUTE ON app.* TO 'reporter'@'%';
GRANT SELECT, EXECUTE ON shop.* TO 'reporter'@'%';
CREATE USER 'clerk'@'127.0.0.1' IDENTIFIED BY 'Cl3rk-secret';
CREATE USER 'reader'@'10.0.%' IDENTIFIED BY 'R3ad-secret' WITH MAX_QUERIES_PER_HOUR 100;
GRANT SELECT ON legacy.* TO 'reader'@'10.0.%';
CREATE ROLE auditor;

CREATE TABLE app.customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(100) NOT NULL,
  name VARCHAR(60) NOT NULL,
  UNIQUE KEY email (email),
  KEY name (name)
);
INSERT INTO app.customers (email, name)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200)
  SELECT CONCAT('c', n, '@example.com'), CONCAT('Customer ', n) FROM seq;

CREATE TABLE app.orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  note VARCHAR(100) NULL,
  created DATETIME(6) NOT NULL,
  KEY created (created),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES app.customers (id)
);
INSERT INTO app.orders (customer_id, amount, note, created)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {ORDERS})
  SELECT n % 200 + 1, (n * 7919 % 100000) / 100,
         IF(n % 3 = 0, NULL, CONCAT('order ', n, ' ', REPEAT('x', n % 40))),
         TIMESTAMP('2024-01-01 00:00:00') + INTERVAL n SECOND
  FROM seq;

CREATE TABLE app.order_lines (
  order_id INT NOT NULL,
  line_no SMALLINT NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL,
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES app.orders (id) ON DELETE CASCADE
);
INSERT INTO app.order_lines
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 6000)
  SELECT (n + 1) DIV 2, 2 - n % 2, CONCAT('SKU-', n % 97), n % 5 + 1 FROM seq;

CREATE TABLE app.audit (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  order_id INT NOT NULL,
  what VARCHAR(10) NOT NULL,
  at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
INSERT INTO app.audit (order_id, what) SELECT id, 'seed' FROM app.orders WHERE id <= 100;

SET SESSION sql_mode = '';
CREATE TABLE shop.types (
  id INT AUTO_INCREMENT PRIMARY KEY,
  doc JSON NULL,
  img LONGBLOB NULL,
  money DECIMAL(65,30) NULL,
  b1 BIT(1) NULL,
  b64 BIT(64) NULL,
  qty INT NOT NULL DEFAULT 0,
  price DECIMAL(10,2) NOT NULL DEFAULT 0,
  total_v DECIMAL(20,2) AS (qty * price) VIRTUAL,
  total_s DECIMAL(20,2) AS (qty * price) STORED,
  f FLOAT NULL,
  d DOUBLE NULL,
  ts TIMESTAMP(6) NULL DEFAULT NULL,
  dt DATETIME(6) NULL,
  day DATE NOT NULL DEFAULT '0000-00-00',
  e ENUM('small', 'medium', 'large') NULL,
  s SET('red', 'green', 'blue') NULL,
  bin BINARY(4) NULL,
  vb VARBINARY(16) NULL,
  KEY by_total_v (total_v),
  UNIQUE KEY by_vb (vb)
);
INSERT INTO shop.types (doc, img, money, b1, b64, qty, price, f, d, ts, dt, day, e, s, bin, vb) VALUES
  ('{"a": [1, 2.5, "q\\"uote"], "u": "\\ud83d\\ude00", "nested": {"k": null}}',
   X'00275C0D0A1A00FF', 12345678901234567890123456789012345.123456789012345678901234567890,
   b'1', 0xFFFFFFFFFFFFFFFF, 3, 9.99, 3.40282e38, 1.7976931348623157e308,
   '2024-02-29 23:59:59.999999', '9999-12-31 23:59:59.999999', '0000-00-00',
   'large', 'red,blue', X'00275C00', X'5C27005C2722'),
  ('null', X'', -0.000000000000000000000000000001, b'0', 0, 0, 0, 1e-30, -2.2250738585072014e-308,
   NULL, '0000-00-00 00:00:00', '2024-00-15', '', '', X'00000000', X''),
  ('[]', NULL, 0, NULL, X'8000000000000001', 1, 0.01, 1.17549e-38, 4.9e-324,
   '1999-12-31 23:59:59.000001', NULL, '2024-02-00', NULL, 'red,green,blue', 'a\\b', X'FF'),
  ('{"big": 18446744073709551615, "float": 1.5e300, "s": "tab\\tnl\\n"}', X'5C',
   99999999999999999999999999999999999.999999999999999999999999999999, b'1', 1,
   2147483647, 99999999.99, 0.1, 0.30000000000000004, NULL, '2024-01-01 00:00:00',
   '2024-01-01', 'small', 'green', NULL, NULL);
INSERT INTO shop.types (doc, img, qty, price)
  VALUES ('{"big": true}', REPEAT(CONCAT(UNHEX(SHA2('blob', 256)), X'00275C'), 150000), 1, 1);

CREATE TABLE shop.places (
  id INT PRIMARY KEY,
  pt POINT NULL,
  {AREA},
  SPATIAL INDEX area (area)
);
INSERT INTO shop.places VALUES
  (1, ST_GeomFromText('POINT(1.5 -2.25)'),
      ST_GeomFromText('POLYGON((0 0, 0 10, 10 10, 10 0, 0 0))', 4326)),
  (2, NULL,
      ST_GeomFromText('POLYGON((0 0, 0 20, 20 20, 20 0, 0 0), (5 5, 5 10, 10 10, 10 5, 5 5))', 4326));

CREATE TABLE shop.kv (
  k VARCHAR(64) NOT NULL PRIMARY KEY,
  v INT NOT NULL,
  updated TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
);
INSERT INTO shop.kv (k, v)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 500)
  SELECT CONCAT('key-', LPAD(n, 4, '0')), n FROM seq;

CREATE TABLE shop.tickets (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(20) NOT NULL)
  AUTO_INCREMENT = 100;
INSERT INTO shop.tickets (title) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
DELETE FROM shop.tickets WHERE id > 102;

CREATE TABLE legacy.texts (
  code VARCHAR(20) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  l1 VARCHAR(40) NULL,
  sj VARCHAR(40) CHARACTER SET cp932 NULL,
  gb VARCHAR(40) CHARACTER SET gbk NULL,
  u4 VARCHAR(40) CHARACTER SET utf8mb4 NULL,
  body TEXT CHARACTER SET utf8mb4 NULL,
  FULLTEXT KEY ft_body (body)
) DEFAULT CHARSET = latin1;
INSERT INTO legacy.texts VALUES
  ('cafe', CONVERT(X'636166C3A920E282AC' USING utf8mb4), CONVERT(X'E8A1A8E382BDE883BD' USING utf8mb4),
   CONVERT(X'E4B8ADE69687' USING utf8mb4), CONVERT(X'F09F9880F09D849E' USING utf8mb4),
   'the quick brown fox'),
  ('o''brien\\', 'it''s a \\ backslash', _cp932 X'835C955C', _gbk X'955C',
   CONVERT(X'F09F8DA3' USING utf8mb4), 'jumps over the lazy dog'),
  ('tab\tnl\n', NULL, NULL, NULL, NULL, NULL);

CREATE TABLE legacy.nokey (a INT NULL, b VARCHAR(10) NULL, KEY a (a));
INSERT INTO legacy.nokey VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, 'y'), (3, 'z');

CREATE PROCEDURE legacy.p_loose() NO SQL SELECT DATE('2024-00-15');
SET SESSION sql_mode = DEFAULT;

GRANT SELECT, INSERT ON shop.types TO 'clerk'@'127.0.0.1';
GRANT SELECT (code, l1), UPDATE (l1) ON legacy.texts TO 'clerk'@'127.0.0.1';
GRANT SELECT ON app.audit TO auditor;
GRANT auditor TO 'clerk'@'127.0.0.1';
{DEFAULT_ROLE}

CREATE SQL SECURITY DEFINER VIEW app.v_customer_totals AS
  SELECT c.id, c.name, COUNT(o.id) AS orders, SUM(o.amount) AS total
  FROM app.customers c JOIN app.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE VIEW app.v_big_customers AS SELECT id, name FROM app.v_customer_totals WHERE total > 1000;
CREATE DEFINER = 'reporter'@'%' SQL SECURITY INVOKER VIEW shop.v_texts AS SELECT code, u4 FROM legacy.texts;

CREATE DEFINER = 'reporter'@'%' FUNCTION shop.f_total(q INT, p DECIMAL(10,2))
  RETURNS DECIMAL(20,2) DETERMINISTIC RETURN q * p;
DELIMITER //
CREATE DEFINER = 'reporter'@'%' PROCEDURE app.p_orders_of(IN cid INT, OUT n INT)
  READS SQL DATA
BEGIN
  SELECT COUNT(*) INTO n FROM app.orders WHERE customer_id = cid;
  SELECT n AS orders;
END//
DELIMITER ;

CREATE TRIGGER app.orders_ai AFTER INSERT ON app.orders FOR EACH ROW
  INSERT INTO app.audit (order_id, what) VALUES (NEW.id, 'insert');
CREATE TRIGGER app.orders_bu BEFORE UPDATE ON app.orders FOR EACH ROW
  SET NEW.note = IFNULL(NEW.note, 'updated');

CREATE EVENT shop.ev_purge ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ENABLE
  DO DELETE FROM shop.kv WHERE v < 0;
CREATE EVENT app.ev_later ON SCHEDULE AT '2030-06-01 00:00:00' ON COMPLETION PRESERVE DISABLE
  DO UPDATE app.customers SET name = name WHERE id = 1;
"#;

fn big_fixture(flavor: Flavor) -> String {
    let (scheduler, area, default_role) = match flavor {
        // MariaDB starts with the scheduler off; production blues run it.
        Flavor::MariaDb => (
            "SET GLOBAL event_scheduler = ON;",
            "area POLYGON REF_SYSTEM_ID = 4326 NOT NULL",
            "SET DEFAULT ROLE auditor FOR 'clerk'@'127.0.0.1';",
        ),
        Flavor::MySql => (
            "",
            "area POLYGON NOT NULL SRID 4326",
            "SET DEFAULT ROLE auditor TO 'clerk'@'127.0.0.1';",
        ),
    };
    BIG_FIXTURE
        .replace("{SCHEDULER}", scheduler)
        .replace("{RECURSION}", recursion(flavor))
        .replace("{AREA}", area)
        .replace("{DEFAULT_ROLE}", default_role)
        .replace("{ORDERS}", &ORDERS.to_string())
}

/// Lets a recursive CTE count up to a million.
fn recursion(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SET SESSION max_recursive_iterations = 1000000;",
        Flavor::MySql => "SET SESSION cte_max_recursion_depth = 1000000;",
    }
}

/// A small blue for the refusals, the interruption and the upgrade path.
const SMALL_FIXTURE: &str = "
CREATE DATABASE shop;
CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(30) NOT NULL, price DECIMAL(8,2) NULL);
INSERT INTO app.items
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 300)
  SELECT n, CONCAT('item ', n), n / 4 FROM seq;
CREATE TABLE shop.kv (k VARCHAR(20) PRIMARY KEY, v INT NULL);
INSERT INTO shop.kv
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 50)
  SELECT CONCAT('k', n), IF(n % 5 = 0, NULL, n) FROM seq;
CREATE VIEW shop.v_kv AS SELECT k FROM shop.kv WHERE v > 10;
CREATE USER 'reporter'@'%' IDENTIFIED BY 'Rep0rt-secret';
GRANT SELECT ON shop.* TO 'reporter'@'%';
";

/// What the objects of the user schemas are on `server`, one line each, events
/// without their status (green's are disabled on purpose).
fn objects(server: &Server) -> String {
    sql(
        server,
        &format!(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME
               FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({SYSTEM_SCHEMAS}) ORDER BY 1;
             SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION, DEFINER, SECURITY_TYPE
               FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS}) ORDER BY 1, 2;
             SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DEFINER, SECURITY_TYPE,
                    SQL_MODE, ROUTINE_DEFINITION
               FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({SYSTEM_SCHEMAS})
              ORDER BY 1, 2;
             SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING,
                    EVENT_MANIPULATION, DEFINER, SQL_MODE, ACTION_STATEMENT
               FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({SYSTEM_SCHEMAS})
              ORDER BY 1, 2;
             SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE,
                    INTERVAL_FIELD, STARTS, ON_COMPLETION, SQL_MODE, EVENT_DEFINITION
               FROM information_schema.EVENTS ORDER BY 1, 2;"
        ),
    )
}

/// Each user table's `SHOW CREATE TABLE` on blue and on green, a column's
/// `CHARACTER SET cs COLLATE c` read as `COLLATE c` (the collation names the set; MySQL
/// prints the set once a column's collation was given explicitly, as replayed DDL
/// gives it). The `AUTO_INCREMENT` counter is compared only for `shop.tickets`, whose
/// top rows were deleted (green must not hand their ids out again); elsewhere the
/// counters may differ legitimately: blue's multi-row inserts reserve values ahead,
/// green's follow the rows replication sent it.
fn assert_same_ddl(pair: &Pair) {
    for (table, _) in user_tables(&pair.blue) {
        let show = |server: &Server| {
            let ddl = collations_only(&sql(server, &format!("SHOW CREATE TABLE {table}")));
            if table == "`shop`.`tickets`" {
                ddl
            } else {
                without_counter(&ddl)
            }
        };
        assert_eq!(show(&pair.blue), show(&pair.green), "DDL of {table}");
    }
}

/// `ddl` with each `CHARACTER SET cs COLLATE` shortened to `COLLATE`.
fn collations_only(ddl: &str) -> String {
    const SET: &str = " CHARACTER SET ";
    let mut out = String::new();
    let mut rest = ddl;
    while let Some(at) = rest.find(SET) {
        let after = &rest[at + SET.len()..];
        let name = after.split(' ').next().unwrap_or_default();
        out += &rest[..at];
        if after[name.len()..].starts_with(" COLLATE ") {
            rest = &after[name.len()..];
        } else {
            out += SET;
            rest = after;
        }
    }
    out + rest
}

/// `ddl` without its ` AUTO_INCREMENT=N` table option.
fn without_counter(ddl: &str) -> String {
    const OPTION: &str = " AUTO_INCREMENT=";
    match ddl.find(OPTION) {
        Some(at) => {
            let rest = &ddl[at + OPTION.len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            format!("{}{}", &ddl[..at], &rest[digits..])
        }
        None => ddl.to_owned(),
    }
}

/// The accounts and what each is granted, as `server` shows them: grant lines in
/// order and the columns of a column grant in order (MariaDB lists them as they lie
/// in its hash table).
fn accounts(server: &Server, flavor: Flavor) -> String {
    let role = match flavor {
        Flavor::MariaDb => "auditor",
        Flavor::MySql => "'auditor'@'%'",
    };
    let grants = |account: &str| {
        let mut lines: Vec<String> = sql(server, &format!("SHOW GRANTS FOR {account}"))
            .lines()
            .map(sorted_columns)
            .collect();
        lines.sort();
        lines.join("\n")
    };
    let mut out = sql(server, "SELECT User, Host FROM mysql.user ORDER BY 1, 2");
    for account in ACCOUNTS {
        out += &format!(
            "\n{}\n{}",
            sql(server, &format!("SHOW CREATE USER {account}")),
            grants(account)
        );
    }
    out + "\n" + &grants(role)
}

/// `line` with the items of each parenthesised list sorted.
fn sorted_columns(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let mut items: Vec<&str> = rest[open + 1..open + close].split(", ").collect();
        items.sort_unstable();
        out += &rest[..=open];
        out += &items.join(", ");
        out.push(')');
        rest = &rest[open + close + 1..];
    }
    out + rest
}

/// Inserts, updates and deletes on blue in `app.orders` (with its trigger and
/// cascade), `shop.kv` and the keyless `legacy.nokey` until `stop`; counts its
/// transactions.
async fn load(addr: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut conn = control_conn(&addr).await;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let statement = format!(
            "START TRANSACTION;
             INSERT INTO app.orders (customer_id, amount, note, created)
               VALUES ({customer}, {n}.25, 'load {n}', NOW(6));
             UPDATE app.orders SET amount = amount + 1, note = NULL WHERE id = {update};
             DELETE FROM app.orders WHERE id = {n};
             INSERT INTO shop.kv (k, v) VALUES ('load-{n}', {n}) ON DUPLICATE KEY UPDATE v = v + 1;
             UPDATE shop.kv SET v = v + 1 WHERE k = 'key-{kv:04}';
             DELETE FROM shop.kv WHERE k = 'load-{old}';
             UPDATE legacy.nokey SET b = 'load-{nokey}' WHERE a = 3;
             COMMIT",
            customer = n % 200 + 1,
            update = 3000 + (n * 7) % (ORDERS - 3000),
            kv = n % 500 + 1,
            old = n.saturating_sub(5),
            nokey = n % 10,
        );
        conn.query_drop(statement)
            .await
            .unwrap_or_else(|e| panic!("load transaction {n} on blue: {e}"));
        done.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = conn.disconnect().await;
}

/// Logging in to green as `user` with `password` through the flavor's command-line
/// client; what `SELECT CURRENT_USER(), CURRENT_ROLE()` printed, or the error.
fn login(pair: &Pair, user: &str, password: &str) -> Result<String, String> {
    let out = support::cli(
        pair.flavor(),
        &pair.green.addr(),
        user,
        password,
        None,
        &["-N", "-B", "-e", "SELECT CURRENT_USER(), CURRENT_ROLE()"],
        None,
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn copies_everything_under_load(flavor: Flavor) {
    let pair = unreplicated_pair(flavor);
    let started = Instant::now();
    sql(&pair.blue, &big_fixture(flavor));
    // An account both have, with different passwords: green's stays.
    sql(&pair.blue, "CREATE USER 'ops'@'%' IDENTIFIED BY 'ops-blue'");
    on_green_unlogged(&pair, "CREATE USER 'ops'@'%' IDENTIFIED BY 'ops-green'");
    let ops_on_green = sql(&pair.green, "SHOW CREATE USER 'ops'@'%'");
    // Both ways of loading rows: MariaDB's green takes LOAD DATA LOCAL files (the
    // testbed's servers allow it), MySQL's is refused them as MySQL's default is, and
    // gets multi-row INSERTs.
    let loader = match flavor {
        Flavor::MariaDb => "by LOAD DATA LOCAL",
        Flavor::MySql => {
            sql(&pair.green, "SET GLOBAL local_infile = OFF");
            "by multi-row INSERTs"
        }
    };
    eprintln!("fixture on blue in {:?}", started.elapsed());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);

    // 1. Create while a load writes on blue, and a little after.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(load(pair.blue.addr(), stop.clone(), done.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = done.load(Ordering::Relaxed);
    let started = Instant::now();
    let out = run_async(
        "create",
        &config,
        &[
            "--threads",
            "3",
            "--chunk-rows",
            "1000",
            "--progress",
            "plain",
            "--timeout",
            "5m",
            "--lock-wait-timeout",
            "10s",
        ],
    )
    .await;
    let took = started.elapsed();
    let during = done.load(Ordering::Relaxed) - before;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(loader),
        "create did not load {loader}: {}",
        show(&out)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the load task");
    let summary = assert_created(&out);
    // Four accounts: ops is green's own, the template's are on both.
    assert!(
        summary
            .contains("3 views, 3 routines, 2 triggers, 2 events (disabled on green), 4 accounts"),
        "{summary}"
    );
    eprintln!(
        "create took {took:?} with {during} load transactions during it, {} in all",
        done.load(Ordering::Relaxed)
    );
    assert!(during > 10, "only {during} load transactions during create");

    // 2. Green replicates, has caught up, is fenced, and holds what blue holds.
    assert_replicating(&pair, "create");
    assert_read_only(&pair);
    let rows = assert_same_rows(&pair).await;
    eprintln!("{rows} rows equal on blue and green");
    assert_same_ddl(&pair);
    assert_eq!(
        objects(&pair.blue),
        objects(&pair.green),
        "views, routines, triggers, events"
    );
    // Disabled on the replica side, so they run only once green is promoted; none runs
    // on green now.
    let statuses = sql(
        &pair.green,
        "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME, ' ', STATUS) FROM information_schema.EVENTS ORDER BY 1",
    );
    assert_eq!(statuses.lines().count(), 2, "{statuses}");
    assert!(
        !statuses.contains(" ENABLED"),
        "an event enabled on green: {statuses}"
    );
    assert!(
        statuses.contains("shop.ev_purge SLAVESIDE_DISABLED")
            || statuses.contains("shop.ev_purge REPLICA_SIDE_DISABLED"),
        "blue's enabled event is not disabled on the replica side: {statuses}"
    );
    assert_eq!(
        accounts(&pair.blue, flavor),
        accounts(&pair.green, flavor),
        "accounts and grants"
    );
    assert_eq!(
        sql(&pair.green, "SHOW CREATE USER 'ops'@'%'"),
        ops_on_green,
        "green's own ops account"
    );
    let reporter = login(&pair, "reporter", REPORTER_PASSWORD)
        .unwrap_or_else(|e| panic!("reporter cannot log in to green: {e}"));
    assert!(reporter.starts_with("reporter@"), "{reporter}");
    let clerk = login(&pair, "clerk", "Cl3rk-secret")
        .unwrap_or_else(|e| panic!("clerk cannot log in to green: {e}"));
    assert!(
        clerk.contains("auditor"),
        "clerk's default role on green: {clerk}"
    );
    login(&pair, "ops", "ops-green").unwrap_or_else(|e| panic!("green's ops account: {e}"));
    assert!(
        login(&pair, "ops", "ops-blue").is_err(),
        "ops took blue's password"
    );
    assert_eq!(
        sql(&pair.green, "SELECT shop.f_total(3, 2.50)"),
        "7.50",
        "a copied function on green"
    );

    // 3. verify finds them equal.
    let out = run_async("verify", &config, &["--chunk-rows", "1000"]).await;
    let (stdout, _) = assert_exit(&out, 0, "verify after create");
    eprintln!("verify:\n{stdout}");

    // 4. A difference planted on green is found, with its key range.
    on_green_unlogged(
        &pair,
        &format!("UPDATE app.orders SET note = 'planted' WHERE id = {PLANTED_ID}"),
    );
    let out = run_async("verify", &config, &["--chunk-rows", "1000"]).await;
    let (stdout, _) = assert_exit(&out, 1, "verify with a planted difference");
    let range = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("app.orders: chunk [id "))
        .filter_map(|r| r.split_once(']').map(|(r, _)| r.to_owned()))
        .next()
        .unwrap_or_else(|| panic!("no differing chunk of app.orders: {}", show(&out)));
    let (low, high) = range
        .split_once(" .. ")
        .and_then(|(l, h)| Some((l.parse::<u64>().ok()?, h.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("a range that is not `A .. B`: {range:?}"));
    assert!(
        (low..=high).contains(&PLANTED_ID),
        "{PLANTED_ID} is not in [{range}]"
    );

    // 5. A compatible change on green, then an incompatible one.
    let proxy = Proxy::start(&pair, "");
    on_green_unlogged(
        &pair,
        "ALTER TABLE shop.kv ADD COLUMN extra INT NOT NULL DEFAULT 7",
    );
    let out = run_async("diff", &config, &[]).await;
    let (stdout, _) = assert_exit(&out, 0, "diff after a column added at the end");
    assert!(stdout.trim_end().ends_with("compatible"), "{stdout}");
    on_green_unlogged(&pair, "ALTER TABLE shop.kv DROP COLUMN v");
    let out = run_async("diff", &config, &[]).await;
    let (stdout, _) = assert_exit(&out, 1, "diff after a dropped column");
    assert!(stdout.contains("INCOMPATIBLE: shop.kv.v"), "{stdout}");
    let (ok, check) = proxy.ctl_async(&["check"]).await;
    assert_schema_refused(ok, &check, "shop.kv.v");
    pair.wait_replicating(Duration::from_secs(10))
        .expect("green still replicates");
}

/// Green holds a stale copy of `app.items` and a database of its own, `crm`,
/// restored from a backup (so not in its binary log).
fn refuses_a_green_with_data_then_forces(flavor: Flavor) {
    refuses_then_forces(flavor, false);
}

/// As [`refuses_a_green_with_data_then_forces`], the data written on green by an
/// ordinary client, so green's binary log holds transactions of its own.
fn refuses_a_green_with_its_own_transactions_then_forces(flavor: Flavor) {
    refuses_then_forces(flavor, true);
}

fn refuses_then_forces(flavor: Flavor, logged: bool) {
    let pair = unreplicated_pair(flavor);
    sql(&pair.blue, SMALL_FIXTURE);
    let stale = "CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(30));
         INSERT INTO app.items VALUES (1, 'stale'), (2, 'stale');
         CREATE DATABASE crm;
         CREATE TABLE crm.leads (id INT PRIMARY KEY);
         INSERT INTO crm.leads VALUES (7)";
    if logged {
        sql(&pair.green, stale);
    } else {
        on_green_unlogged(&pair, stale);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);
    let before = green_state(&pair);

    let out = run("create", &config, &[]);
    let (_, stderr) = assert_exit(&out, 1, "create into a green with data");
    assert!(stderr.contains("app.items"), "{}", show(&out));
    assert_eq!(
        green_state(&pair),
        before,
        "green changed by a refused create"
    );
    assert_not_replicating(&pair, "a refused create");

    let out = run("create", &config, &["--force"]);
    assert_created(&out);
    assert_replicating(&pair, "create --force");
    assert_read_only(&pair);
    assert_eq!(
        sql(
            &pair.green,
            "SELECT COUNT(*), SUM(name = 'stale') FROM app.items"
        ),
        "300\t0"
    );
    assert_eq!(
        sql(&pair.green, "SELECT id FROM crm.leads"),
        "7",
        "green's own database"
    );
    let out = run("verify", &config, &[]);
    assert_exit(&out, 0, "verify after create --force");
    sql(&pair.blue, "INSERT INTO app.items VALUES (301, 'after', 1)");
    assert_replicating(&pair, "a write on blue");
    assert_eq!(
        sql(&pair.green, "SELECT name FROM app.items WHERE id = 301"),
        "after"
    );
}

fn missing_prerequisites_leave_green_alone(flavor: Flavor) {
    let pair = unreplicated_pair(flavor);
    sql(&pair.blue, SMALL_FIXTURE);
    let dir = tempfile::tempdir().expect("temp dir");
    // The application account has no REPLICATION SLAVE.
    let wrong = write_config(&pair, dir.path(), APP_USER, APP_PASSWORD);
    sql(&pair.blue, "SET GLOBAL binlog_format = 'STATEMENT'");
    let before = green_state(&pair);

    let out = run("create", &wrong, &[]);
    let (_, stderr) = assert_exit(&out, 1, "create with missing prerequisites");
    // Each problem named with the statement that fixes it.
    assert!(
        stderr.contains("binlog_format") && stderr.contains("SET GLOBAL binlog_format"),
        "{}",
        show(&out)
    );
    assert!(
        (stderr.contains("\"app\"") || stderr.contains("'app'"))
            && stderr.contains("REPLICATION SLAVE")
            && stderr.contains("GRANT REPLICATION SLAVE"),
        "the [replication] account is not named: {}",
        show(&out)
    );
    assert_eq!(
        green_state(&pair),
        before,
        "green changed by a refused create"
    );
    assert_not_replicating(&pair, "a refused create");

    // Fixed, the same blue and green make a pair.
    sql(&pair.blue, "SET GLOBAL binlog_format = 'ROW'");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);
    assert_created(&run("create", &config, &[]));
    assert_replicating(&pair, "create once fixed");
}

fn interrupted_create_is_finished_by_the_next(flavor: Flavor) {
    let pair = unreplicated_pair(flavor);
    sql(
        &pair.blue,
        &format!(
            "{recursion}
             CREATE TABLE app.bulk (id INT PRIMARY KEY, pad CHAR(200) NOT NULL, n BIGINT NOT NULL);
             INSERT INTO app.bulk
               WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {BULK_ROWS})
               SELECT n, REPEAT(CHAR(65 + n % 26), 200), n * n FROM seq;
             {SMALL_FIXTURE}",
            recursion = recursion(flavor)
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);

    // 1. Interrupted once progress shows rows copied and green has some.
    let mut child = switchyard(
        "create",
        &config,
        &[
            "--threads",
            "1",
            "--chunk-rows",
            "500",
            "--progress",
            "plain",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn switchyard create");
    let (lines, stderr_lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("piped stderr");
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        while let Ok(line) = stderr_lines.try_recv() {
            seen.push(line);
        }
        let copied = seen.iter().any(|l| rows_copied(l) > 0)
            && sql(
                &pair.green,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'bulk'",
            ) == "1"
            && sql(&pair.green, "SELECT COUNT(*) > 0 FROM app.bulk") == "1";
        if copied {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "create ended ({status}) before it could be interrupted; stderr so far:\n{}",
                seen.join("\n")
            );
        }
        assert!(
            Instant::now() < deadline,
            "no plain progress line with rows copied within 60 s; stderr so far:\n{}",
            seen.join("\n")
        );
        thread::sleep(Duration::from_millis(50));
    }
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    reader.join().expect("stderr reader");
    seen.extend(stderr_lines.try_iter());
    eprintln!("interrupted create's stderr:\n{}", seen.join("\n"));
    assert_eq!(status, Some(2), "exit status of an interrupted create");
    assert_eq!(
        sql(
            &pair.green,
            "SHOW DATABASES LIKE 'switchyard_create_incomplete'"
        ),
        "switchyard_create_incomplete",
        "green is not marked incomplete"
    );
    assert_not_replicating(&pair, "an interrupted create");
    // A proxy's guardrail refuses to switch to the unfinished copy.
    let proxy = Proxy::start(&pair, "");
    let (ok, check) = proxy.ctl(&["check"]);
    assert_schema_refused(ok, &check, "switchyard_create_incomplete");
    drop(proxy);

    // 2. The next run starts again without --force and finishes; with stderr not a
    //    terminal, `auto` progress is plain lines.
    let out = run(
        "create",
        &config,
        &["--threads", "1", "--chunk-rows", "5000"],
    );
    assert_created(&out);
    let (_, stderr) = assert_exit(&out, 0, "the second create");
    assert!(
        stderr.lines().any(|l| rows_copied(l) > 0),
        "no plain progress line from --progress auto: {}",
        show(&out)
    );
    assert_replicating(&pair, "create after an interrupted one");
    assert_exit(
        &run("verify", &config, &[]),
        0,
        "verify after the second create",
    );
    assert_eq!(
        sql(
            &pair.green,
            "SHOW DATABASES LIKE 'switchyard_create_incomplete'"
        ),
        "",
        "the marker is left on green"
    );
}

/// A view selecting from a `SQL SECURITY DEFINER` view whose definer is an account
/// only blue has (until `create` copies it).
fn a_view_on_a_view_whose_definer_only_blue_has(flavor: Flavor) {
    let pair = unreplicated_pair(flavor);
    sql(
        &pair.blue,
        &format!(
            "{SMALL_FIXTURE}
             CREATE DEFINER = 'reporter'@'%' SQL SECURITY DEFINER VIEW shop.v_reported AS
               SELECT k, v FROM shop.kv;
             CREATE VIEW shop.v_over_reported AS SELECT k FROM shop.v_reported WHERE v > 5;"
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);
    assert_created(&run("create", &config, &[]));
    assert_replicating(&pair, "create");
    assert_eq!(objects(&pair.blue), objects(&pair.green), "views");
    assert_eq!(
        sql(&pair.green, "SELECT COUNT(*) FROM shop.v_over_reported"),
        sql(&pair.blue, "SELECT COUNT(*) FROM shop.v_over_reported")
    );
}

/// MySQL stores a FLOAT or DOUBLE -0 with its sign (MariaDB stores +0); green must
/// get the same bits. `ATAN2(x, -1)` is -π for -0 and π for +0.
#[test]
fn negative_zero_keeps_its_sign_on_mysql() {
    let pair = unreplicated_pair(Flavor::MySql);
    sql(
        &pair.blue,
        &format!(
            "{SMALL_FIXTURE}
             CREATE TABLE shop.zeros (id INT PRIMARY KEY, f FLOAT NULL, d DOUBLE NULL);
             INSERT INTO shop.zeros VALUES (1, -0e0, -0e0), (2, 0e0, 0e0);"
        ),
    );
    let signs = "SELECT id, ATAN2(f, -1) < 0, ATAN2(d, -1) < 0 FROM shop.zeros ORDER BY id";
    assert_eq!(sql(&pair.blue, signs), "1\t1\t1\n2\t0\t0", "blue's zeros");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);
    assert_created(&run("create", &config, &[]));
    assert_eq!(
        sql(&pair.green, signs),
        sql(&pair.blue, signs),
        "signs of zero on green"
    );
    assert_exit(&run("verify", &config, &[]), 0, "verify");
}

/// `ctl check` failed, its `schema_compatible` line naming `what`.
fn assert_schema_refused(ok: bool, check: &str, what: &str) {
    assert!(!ok, "check passed:\n{check}");
    assert!(
        check
            .lines()
            .any(|l| l.contains("schema_compatible") && l.contains(what)),
        "no schema_compatible failure naming {what}:\n{check}"
    );
}

/// The rows a plain progress line (`copy: 3/12 tables done, 120000 of ~500000 rows
/// …`) says are copied; 0 for any other line.
fn rows_copied(line: &str) -> u64 {
    line.strip_prefix("copy: ")
        .and_then(|l| l.split_once(" tables done, "))
        .and_then(|(_, l)| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The exit code of `child`, killed if it runs past `bound`.
fn wait_bounded(child: &mut std::process::Child, bound: Duration) -> Option<i32> {
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("create did not end within {bound:?} of SIGINT");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

for_each_flavor_async!(copies_everything_under_load);
for_each_flavor!(
    refuses_a_green_with_data_then_forces,
    refuses_a_green_with_its_own_transactions_then_forces,
    missing_prerequisites_leave_green_alone,
    a_view_on_a_view_whose_definer_only_blue_has,
    interrupted_create_is_finished_by_the_next
);

/// The upgrade path: a MariaDB 10.11 blue copied to an 11.8 green.
#[test]
fn creates_an_11_8_green_from_a_10_11_blue() {
    let blue = Build::system().unwrap_or_else(|e| panic!("MariaDB for blue: {e}"));
    let green = support::upgrade_build();
    let pair = Pair::start_unreplicated(PairOptions {
        blue,
        green,
        dir: None,
        server_args: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("cannot start the 10.11/11.8 pair: {e}"));
    sql(&pair.blue, SMALL_FIXTURE);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(&pair, dir.path(), REPL_USER, REPL_PASSWORD);
    assert_created(&run("create", &config, &[]));
    assert_replicating(&pair, "create");
    assert_read_only(&pair);
    assert_exit(&run("verify", &config, &[]), 0, "verify");
    sql(&pair.blue, "INSERT INTO app.items VALUES (301, 'after', 1)");
    assert_replicating(&pair, "a write on blue");
    assert_eq!(
        sql(&pair.green, "SELECT name FROM app.items WHERE id = 301"),
        "after"
    );
}
