//! The `mariadb` command-line client through the proxy: most tests run the same
//! input against blue directly and through the proxy (as the `app` user, over TCP,
//! without TLS) and assert that the client printed exactly the same thing. The last
//! ones are about what a person at a terminal sees when things go wrong: the database
//! down at login, `switchyard ctl` with its output closed or with slow admin clients
//! around, and colour codes in the log only at a terminal.

mod support;

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use switchyard::testbed::{Pair, APP_PASSWORD, APP_USER};

use support::{mariadb_cli, Proxy};

/// A pair with the proxy in front of it.
struct Setup {
    pair: Pair,
    proxy: Proxy,
}

impl Setup {
    fn start() -> Setup {
        let pair = support::pair();
        let proxy = Proxy::start(&pair, "");
        Setup { pair, proxy }
    }

    fn direct(&self) -> String {
        self.pair.blue.addr()
    }

    /// Run the client as `app` on `addr`, in utf8mb4 unless `args` say otherwise (a
    /// later `--default-character-set` wins).
    fn run(&self, addr: &str, db: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        let mut all = vec!["--default-character-set=utf8mb4"];
        all.extend_from_slice(args);
        mariadb_cli(addr, APP_USER, APP_PASSWORD, db, &all, stdin)
    }

    /// Run the same client invocation directly, then through the proxy, and assert
    /// that exit status, stdout and stderr are identical. Inputs that change data must
    /// reset it themselves (`DROP TABLE IF EXISTS …` first), as they run twice.
    fn same(&self, db: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        let direct = self.run(&self.direct(), db, args, stdin);
        let proxied = self.run(&self.proxy.addr, db, args, stdin);
        assert_same(
            &direct,
            &proxied,
            &format!("args {args:?}, stdin {stdin:?}"),
            &self.proxy,
        );
        proxied
    }

    /// [`Setup::same`], and the client must have succeeded; returns its stdout.
    fn same_ok(&self, db: Option<&str>, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.same(db, args, stdin);
        assert!(
            out.status.success(),
            "the client failed the same way directly and through the proxy: {}\nproxy log:\n{}",
            text(&out.stderr),
            self.proxy.log()
        );
        text(&out.stdout)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_same(direct: &Output, proxied: &Output, what: &str, proxy: &Proxy) {
    let context = || format!("{what}\nproxy log:\n{}", proxy.log());
    assert_eq!(
        text(&proxied.stderr),
        text(&direct.stderr),
        "stderr differs (left: proxy, right: direct); {}",
        context()
    );
    // Compared as text first for a readable diff, then as bytes.
    assert_eq!(
        text(&proxied.stdout),
        text(&direct.stdout),
        "stdout differs (left: proxy, right: direct); {}",
        context()
    );
    assert!(
        proxied.stdout == direct.stdout,
        "stdout bytes differ; {}",
        context()
    );
    assert_eq!(
        proxied.status.code(),
        direct.status.code(),
        "exit status differs; {}",
        context()
    );
}

/// Several column types in one row, NULL and non-ASCII text among them.
const MIXED_ROW: &str =
    "SELECT 1 AS i, -9223372036854775808 AS big, 18446744073709551615 AS ubig, \
     -2.5 AS dec1, CAST(12345678901234.5678 AS DECIMAL(20,4)) AS dec2, 1e300 AS dbl, \
     CAST(0.1 AS FLOAT) AS flt, 'héllo wörld ✓ 日本語' AS utf8, '' AS empty, NULL AS nothing, \
     DATE '2024-02-29' AS d, TIMESTAMP '2024-02-29 23:59:58.123456' AS ts, TIME '-838:59:59' AS t, \
     0x00ff10 AS bin, b'101' AS bits, 'a\\tb\\nc' AS esc";

#[test]
fn text_query_of_many_types_matches_direct() {
    let s = Setup::start();
    let batch = s.same_ok(Some("test"), &["-e", MIXED_ROW], None);
    assert!(batch.contains("héllo wörld ✓ 日本語"), "{batch}");
    assert!(batch.contains("NULL"), "{batch}");
    // Boxed table output, and the column metadata the client prints for each field
    // (type, collation, length, decimals, flags): a column definition changed in
    // transit shows up here.
    s.same_ok(Some("test"), &["--table", "-e", MIXED_ROW], None);
    s.same_ok(Some("test"), &["--column-type-info", "-e", MIXED_ROW], None);
    // Binary bytes printed raw and hex-escaped.
    s.same_ok(
        Some("test"),
        &["--raw", "-N", "-e", "SELECT 0x00ff80c3, UNHEX('DEADBEEF')"],
        None,
    );
    // Compression asked for: the proxy and blue both accept it (the proxy for the
    // client's leg only); the client prints the same.
    s.same_ok(Some("test"), &["--compress", "-e", MIXED_ROW], None);
    // SET NAMES in the middle of a session changes what the server sends after it.
    s.same_ok(
        Some("test"),
        &["-N", "-e", "SELECT 'ü✓'; SET NAMES latin1; SELECT 'ü', @@character_set_results; SET NAMES utf8mb4; SELECT 'ü✓'"],
        None,
    );
    // The client's own default character set (utf8mb3 here) and latin1, which the
    // server converts results to.
    for charset in [
        "--default-character-set=utf8mb3",
        "--default-character-set=latin1",
    ] {
        s.same_ok(Some("test"), &[charset, "-e", MIXED_ROW], None);
        s.same_ok(
            Some("test"),
            &[charset, "-N", "-e", "SHOW VARIABLES LIKE 'character_set_%'"],
            None,
        );
    }
}

#[test]
fn big_results_match_direct() {
    let s = Setup::start();
    let out = s.same_ok(
        Some("test"),
        &["-N", "-e", "SELECT seq FROM seq_1_to_20000"],
        None,
    );
    let expected: String = (1..=20000).fold(String::new(), |mut acc, n| {
        let _ = writeln!(acc, "{n}");
        acc
    });
    assert!(
        out == expected,
        "SELECT seq FROM seq_1_to_20000 did not give 1..=20000"
    );
    // --quick: rows read one at a time (mysql_use_result) as the relay streams them.
    let quick = s.same_ok(
        Some("test"),
        &["--quick", "-N", "-e", "SELECT seq FROM seq_1_to_20000"],
        None,
    );
    assert!(
        quick == expected,
        "--quick: SELECT seq FROM seq_1_to_20000 did not give 1..=20000"
    );

    // About 5 MB in rows of 1 KB, and a few rows bigger than one 16 MiB packet.
    let out = s.same_ok(
        Some("test"),
        &[
            "-N",
            "-e",
            "SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM seq_1_to_5000",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 5000);
    let out = s.same_ok(
        Some("test"),
        &[
            "-N",
            "--max-allowed-packet=64M",
            "-e",
            "SELECT seq, LENGTH(REPEAT('z', 17000000)), MD5(REPEAT(seq, 6000000)) FROM seq_1_to_3",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    let out = s.same(
        None,
        &[
            "-N",
            "--max-allowed-packet=64M",
            "-e",
            "SELECT REPEAT('y', 17000000)",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 17_000_001);
}

#[test]
fn multi_statements_match_direct() {
    let s = Setup::start();
    let script = "select 1; select 2 as two, 'x' as x; \
                  drop table if exists multi; \
                  create table multi (id int primary key, name varchar(40), price decimal(10,2), at date); \
                  insert into multi values (1, 'one', 1.50, '2020-01-01'), (2, 'zwei ü', NULL, NULL), (3, '三 🚀', 3.33, '1999-12-31'); \
                  update multi set price = price * 2 where id = 3; \
                  select * from multi order by id; \
                  select count(*), sum(price) from multi; \
                  select 1/0; show warnings; \
                  prepare s from 'select ? + 1, ?'; set @a = 41; execute s using @a, 'ü'; deallocate prepare s; \
                  delete from multi where id = 1; select row_count(); \
                  select * from multi order by id desc";
    let out = s.same_ok(Some("test"), &["-e", script], None);
    assert!(out.contains("三 🚀\t6.66"), "{out}");
    // The rows written through the proxy are on blue, byte for byte.
    assert_eq!(
        s.pair
            .blue
            .sql("SET NAMES utf8mb4; SELECT id, name, price, at FROM test.multi ORDER BY id")
            .unwrap(),
        "2\tzwei ü\tNULL\tNULL\n3\t三 🚀\t6.66\t1999-12-31\n"
    );
    // The same script fed on stdin, one statement a line, with a comment and a
    // statement spread over two lines.
    let stdin = format!(
        "-- leading comment\n{};\nselect\n  'end';\n",
        script.replace("; ", ";\n")
    );
    s.same_ok(Some("test"), &[], Some(&stdin));
    // The client splits on `;` itself; with another delimiter the whole script goes
    // to the server as one COM_QUERY, which answers with one result after another
    // (SERVER_MORE_RESULTS_EXISTS), an error ending the chain.
    let stdin = format!("DELIMITER //\n{script}//\nselect 'next'; select 'last'//\n");
    let out = s.same_ok(Some("test"), &["-N"], Some(&stdin));
    assert!(
        out.ends_with("3\t三 🚀\t6.66\t1999-12-31\n2\tzwei ü\tNULL\tNULL\nnext\nlast\n"),
        "{out}"
    );
    let stdin = "DELIMITER //\nselect 1; select * from nope; select 3//\nselect 'after'//\n";
    let out = s.same(Some("test"), &["-N", "--force"], Some(stdin));
    assert_eq!(text(&out.stdout), "1\nafter\n");
}

#[test]
fn vertical_output_via_stdin_matches_direct() {
    let s = Setup::start();
    let stdin = "SELECT 1 AS a, 'two' AS b, NULL AS c\\G\n\
                 SELECT seq, seq * seq AS square FROM seq_1_to_3\\G\n\
                 SHOW VARIABLES LIKE 'character_set_client'\\G\n";
    let out = s.same_ok(Some("test"), &[], Some(stdin));
    assert!(
        out.starts_with("*************************** 1. row ***************************\na: 1\nb: two\nc: NULL\n"),
        "{out}"
    );
    assert!(
        out.ends_with("Variable_name: character_set_client\n        Value: utf8mb4\n"),
        "{out}"
    );
    assert!(out.contains("square: 9\n"), "{out}");
}

#[test]
fn load_data_local_infile_matches_direct() {
    let s = Setup::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    // 60,000 rows, about 3.5 MB: many packets of file data, quoting, NULLs (\N),
    // commas inside quotes and multi-byte text.
    let mut data = String::new();
    for i in 0..60_000u32 {
        let note = match i % 5 {
            0 => "\\N".to_owned(),
            1 => format!("\"with, comma {i}\""),
            2 => format!("ünïcödé 🐘 {i}"),
            3 => String::new(),
            _ => format!("plain {}", i.wrapping_mul(2_654_435_761)),
        };
        let _ = writeln!(data, "{i},{},{note},{}.{:02}", i % 7, i / 100, i % 100);
    }
    std::fs::write(&csv, &data).unwrap();
    let csv = csv.display().to_string();
    let script = format!(
        "DROP TABLE IF EXISTS ld;\n\
         CREATE TABLE ld (id INT PRIMARY KEY, grp INT, note VARCHAR(100), amount DECIMAL(12,2));\n\
         LOAD DATA LOCAL INFILE '{csv}' INTO TABLE ld CHARACTER SET utf8mb4 \
           FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n';\n\
         SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, grp, IFNULL(note, 'NULL'), amount))), SUM(amount) FROM ld;\n\
         SELECT grp, COUNT(*), COUNT(note) FROM ld GROUP BY grp ORDER BY grp;\n\
         CHECKSUM TABLE ld;\n"
    );
    let out = s.same_ok(Some("test"), &["--local-infile=1", "-N"], Some(&script));
    let first = out.lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("60000\t"), "{out}");
    // What blue holds after the load through the proxy (the second run) is what the
    // client was told, and CHECKSUM TABLE agrees.
    let on_blue = s
        .pair
        .blue
        .sql("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, grp, IFNULL(note, 'NULL'), amount))), SUM(amount) FROM test.ld")
        .unwrap();
    assert_eq!(on_blue.trim_end(), first);
    let checksum = s.pair.blue.sql("CHECKSUM TABLE test.ld").unwrap();
    assert!(
        out.ends_with(&checksum),
        "client said:\n{out}\nblue says: {checksum}"
    );
    assert_eq!(
        s.pair
            .blue
            .sql("SET NAMES utf8mb4; SELECT note FROM test.ld WHERE id IN (0, 1, 2, 3) ORDER BY id")
            .unwrap(),
        "NULL\nwith, comma 1\nünïcödé 🐘 2\n\n"
    );
}

#[test]
fn load_data_local_infile_of_missing_file_matches_direct() {
    let s = Setup::start();
    let script = "DROP TABLE IF EXISTS ld; CREATE TABLE ld (a INT);\n\
                  LOAD DATA LOCAL INFILE '/nonexistent/switchyard.csv' INTO TABLE ld;\n";
    let out = s.same(Some("test"), &["--local-infile=1"], Some(script));
    assert!(!out.status.success());
    // The session is still usable afterwards: the client goes on with --force.
    let script = format!("{script}SELECT 'still here', COUNT(*) FROM ld;\n");
    let out = s.same(
        Some("test"),
        &["--local-infile=1", "--force", "-N"],
        Some(&script),
    );
    assert!(
        text(&out.stdout).contains("still here\t0"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn error_statements_give_the_same_error_as_direct() {
    let s = Setup::start();
    let out = s.same(Some("test"), &["-e", "select * from nope"], None);
    // The client echoes the failed statement, then the ERROR line.
    assert!(
        text(&out.stderr)
            .ends_with("\nERROR 1146 (42S02) at line 1: Table 'test.nope' doesn't exist\n"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
    // A syntax error, an error from the middle of a multi-statement line, and an
    // error in a stream with --force so later statements still run on that session.
    s.same(Some("test"), &["-e", "selec 1"], None);
    s.same(
        Some("test"),
        &["-e", "select 1; select * from nope; select 3"],
        None,
    );
    let out = s.same(
        Some("test"),
        &["--force", "-N"],
        Some("select 1;\nselect * from nope;\nselect 1/0, @@warning_count;\nselect 'after';\nselect nope();\nselect 'end';\n"),
    );
    assert_eq!(text(&out.stdout), "1\nNULL\t1\nafter\nend\n");
    // Permission errors come from the database itself (it checks app's grants).
    let out = s.same(None, &["-e", "select * from mysql.user"], None);
    assert!(
        text(&out.stderr).contains("\nERROR 1142 (42000) at line 1: SELECT command denied"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wrong_password_and_unknown_user_are_refused_with_1045() {
    let s = Setup::start();
    let expected =
        "ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)\n";
    for addr in [s.direct(), s.proxy.addr.clone()] {
        let out = mariadb_cli(
            &addr,
            APP_USER,
            "not-the-password",
            None,
            &["-e", "select 1"],
            None,
        );
        assert_eq!(text(&out.stderr), expected, "on {addr}");
        assert_eq!(out.status.code(), Some(1), "on {addr}");
        assert!(out.stdout.is_empty(), "on {addr}");
    }
    // An unknown user and an empty password get the same answer as from the database.
    for (user, password) in [("nobody", "whatever"), ("nobody", ""), (APP_USER, "")] {
        let direct = mariadb_cli(&s.direct(), user, password, None, &["-e", "select 1"], None);
        let proxied = mariadb_cli(
            &s.proxy.addr,
            user,
            password,
            None,
            &["-e", "select 1"],
            None,
        );
        assert!(
            text(&direct.stderr).starts_with("ERROR 1045 (28000): Access denied for user"),
            "{}",
            text(&direct.stderr)
        );
        assert_same(
            &direct,
            &proxied,
            &format!("user {user:?}, password {password:?}"),
            &s.proxy,
        );
    }
    // A correct login still works after those failures.
    assert_eq!(
        s.same_ok(None, &["-N", "-e", "select current_user()"], None),
        "app@%\n"
    );
}

#[test]
fn use_changes_the_default_database() {
    let s = Setup::start();
    s.pair
        .blue
        .sql("CREATE TABLE app.where_am_i (x VARCHAR(10)); INSERT INTO app.where_am_i VALUES ('app');")
        .unwrap();
    let out = s.same_ok(
        Some("test"),
        &["-N", "-e", "select database(); use app; select database(); select x from where_am_i; use sbtest; select database()"],
        None,
    );
    assert_eq!(out, "test\napp\napp\nsbtest\n");
    // Without a database at login, `USE` (COM_INIT_DB), and a database at login.
    let out = s.same_ok(
        None,
        &["-N"],
        Some("select database();\nuse app\nselect database();\n"),
    );
    assert_eq!(out, "NULL\napp\n");
    // The client's `connect DB` command: a new login on the same address.
    let out = s.same_ok(
        Some("test"),
        &["-N"],
        Some("select database();\nconnect sbtest\nselect database();\n"),
    );
    assert_eq!(out, "test\nsbtest\n");
    assert_eq!(
        s.same_ok(Some("sbtest"), &["-N", "-e", "select database()"], None),
        "sbtest\n"
    );
    // A database app may not use: the same error as direct, at login and on USE.
    s.same(Some("mysql"), &["-e", "select 1"], None);
    s.same(Some("test"), &["-e", "use mysql"], None);
    s.same(Some("test"), &["-e", "use no_such_db"], None);
}

#[test]
fn stored_procedure_with_two_result_sets_matches_direct() {
    let s = Setup::start();
    let script = "DROP PROCEDURE IF EXISTS p;\n\
                  DROP PROCEDURE IF EXISTS q;\n\
                  DELIMITER //\n\
                  CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\n\
                  CALL p()//\n\
                  CREATE PROCEDURE q(IN n INT, OUT total BIGINT)\n\
                  BEGIN\n\
                    SELECT n AS n, 'first' AS which;\n\
                    SELECT seq, REPEAT('r', seq) FROM seq_1_to_5 WHERE seq <= n;\n\
                    SELECT SUM(seq) INTO total FROM seq_1_to_100 WHERE seq <= n;\n\
                  END//\n\
                  DELIMITER ;\n\
                  CALL q(3, @total);\n\
                  SELECT @total;\n\
                  CALL p(); CALL q(0, @t); SELECT 'after calls', @t;\n";
    let out = s.same_ok(Some("test"), &[], Some(script));
    assert!(out.starts_with("1\n1\n2\n2\n"), "{out}");
    assert!(out.contains("@total\n6\n"), "{out}");
    // CALL with -e (one connection, one CALL, then a statement after it).
    let out = s.same_ok(Some("test"), &["-N", "-e", "CALL p(); SELECT 'next'"], None);
    assert_eq!(out, "1\n2\nnext\n");
}

#[test]
fn rolled_back_transaction_leaves_nothing() {
    let s = Setup::start();
    let script = "DROP TABLE IF EXISTS tx;\n\
                  CREATE TABLE tx (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB;\n\
                  BEGIN;\n\
                  INSERT INTO tx VALUES (1, 'a'), (2, 'b');\n\
                  SELECT COUNT(*) AS in_tx FROM tx;\n\
                  ROLLBACK;\n\
                  SELECT COUNT(*) AS after_rollback FROM tx;\n\
                  START TRANSACTION;\n\
                  INSERT INTO tx VALUES (3, 'c');\n\
                  SAVEPOINT sp;\n\
                  INSERT INTO tx VALUES (4, 'd');\n\
                  ROLLBACK TO SAVEPOINT sp;\n\
                  COMMIT;\n\
                  SET autocommit = 0;\n\
                  INSERT INTO tx VALUES (5, 'e');\n\
                  ROLLBACK;\n\
                  SELECT id, v FROM tx ORDER BY id;\n";
    let out = s.same_ok(Some("test"), &["-N"], Some(script));
    assert_eq!(out, "2\n0\n3\tc\n");
    assert_eq!(
        s.pair
            .blue
            .sql("SELECT id, v FROM test.tx ORDER BY id")
            .unwrap(),
        "3\tc\n"
    );
    // A session that ends inside a transaction: the database rolls it back.
    s.same_ok(
        Some("test"),
        &[
            "-e",
            "BEGIN; INSERT INTO tx VALUES (6, 'f'); SELECT @@in_transaction",
        ],
        None,
    );
    assert_eq!(
        s.pair
            .blue
            .sql("SELECT COUNT(*) FROM test.tx WHERE id = 6")
            .unwrap(),
        "0\n"
    );
}

/// Blue down when a client logs in: the `mariadb` CLI prints the proxy's reason, under
/// a server error code (a client-range code such as 2003 from a server makes it print
/// "Received malformed packet" instead).
#[test]
fn database_down_at_login_prints_the_reason() {
    let mut s = Setup::start();
    s.pair.blue.stop();
    let out = s.run(&s.proxy.addr, None, &["-e", "select 1"], None);
    let stderr = text(&out.stderr);
    let expected = format!(
        "ERROR 1105 (08S01): switchyard: cannot reach the database at {}: ",
        s.direct()
    );
    assert!(
        stderr.starts_with(&expected),
        "expected {expected:?}…, the client printed {stderr:?}\nproxy log:\n{}",
        s.proxy.log()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    s.pair.blue.start().expect("restart blue");
}

/// `switchyard ctl status | head -1`: a reader that goes away ends ctl quietly with
/// the status a shell shows for SIGPIPE, no message, no backtrace. The pipe's read end
/// is closed before ctl writes, so every write fails (no race with `head`).
#[test]
fn ctl_with_its_output_closed_ends_quietly() {
    let s = Setup::start();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = s
        .proxy
        .ctl_command(&["status"])
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run switchyard ctl");
    assert_eq!(text(&out.stderr), "", "ctl wrote to stderr");
    assert_eq!(out.status.code(), Some(141), "{:?}", out.status);
}

/// Forty admin connections that each sent half a command line and stopped do not
/// delay `ctl status`: it answers while they are all still open.
#[test]
fn half_sent_admin_commands_do_not_delay_ctl_status() {
    let s = Setup::start();
    let stalled: Vec<UnixStream> = (0..40)
        .map(|_| {
            let mut c = UnixStream::connect(&s.proxy.admin_socket).expect("admin socket");
            c.write_all(b"stat").expect("half a line");
            c
        })
        .collect();
    let started = Instant::now();
    let mut ctl = s
        .proxy
        .ctl_command(&["status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchyard ctl");
    // A guard against a hang, not a timing measurement: a stalled client holds its
    // connection for seconds, and before they were served apart this took over 10 s.
    while ctl.try_wait().expect("ctl status").is_none() {
        if started.elapsed() > Duration::from_secs(3) {
            let _ = ctl.kill();
            panic!("ctl status did not answer within 3 s behind 40 stalled admin clients");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = ctl.wait_with_output().expect("ctl output");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("active: blue"),
        "ctl status: {stdout}{}",
        text(&out.stderr)
    );
    // They were still open while ctl got its answer: nothing was read as EOF or reset.
    for (i, mut c) in stalled.into_iter().enumerate() {
        c.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("stalled admin client {i} was answered or closed: {other:?}"),
        }
    }
}

/// How long the proxy may take to log its start and stop on the admin socket error.
const LOG_GUARD: Duration = Duration::from_secs(10);

/// What `switchyard proxy` writes to stderr from its start to its exit, with stderr a
/// pipe, or a terminal when `terminal` (a pseudo-terminal from util-linux `script`,
/// which copies it to its stdout). `no_color` is the proxy's `NO_COLOR`, if any. The
/// config's admin socket is in a folder that does not exist: the proxy logs
/// "listening on" at info level, then fails to bind the socket and exits.
fn proxy_stderr(terminal: bool, no_color: Option<&str>) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchyard.toml");
    let socket = dir.path().join("missing").join("admin.sock");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_socket = \"{}\"\n\n\
             [blue]\naddress = \"127.0.0.1:1\"\n\n[green]\naddress = \"127.0.0.1:2\"\n\n\
             [[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n",
            socket.display()
        ),
    )
    .expect("write the config");
    let binary = env!("CARGO_BIN_EXE_switchyard");
    let mut cmd = if terminal {
        let mut script = Command::new("script");
        script.args(["--quiet", "--return", "--command"]);
        script.arg(format!("'{binary}' proxy --config '{}'", config.display()));
        script.arg("/dev/null");
        script
    } else {
        let mut proxy = Command::new(binary);
        proxy.arg("proxy").arg("--config").arg(&config);
        proxy
    };
    cmd.env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "0")
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (`script` comes with util-linux; run scripts/install-deps.sh)")
        });
    let started = Instant::now();
    while child.try_wait().expect("wait for the proxy").is_none() {
        if started.elapsed() > LOG_GUARD {
            let _ = child.kill();
            panic!("{cmd:?} still runs after {LOG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the proxy's output");
    let logged = if terminal { out.stdout } else { out.stderr };
    assert!(
        text(&logged).contains("listening on 127.0.0.1:"),
        "{cmd:?} did not log its start: {:?}",
        text(&logged)
    );
    logged
}

/// Colour codes in the log are for a person at a terminal: none when stderr is a pipe
/// (a file, journald), none at a terminal when `NO_COLOR` is set.
#[test]
fn the_log_has_colour_codes_only_at_a_terminal() {
    const ESC: u8 = 0x1b;
    let piped = proxy_stderr(false, None);
    assert!(
        !piped.contains(&ESC),
        "colour codes in a piped log: {:?}",
        text(&piped)
    );
    let terminal = proxy_stderr(true, None);
    assert!(
        terminal.contains(&ESC),
        "no colour at a terminal: {:?}",
        text(&terminal)
    );
    let no_color = proxy_stderr(true, Some("1"));
    assert!(
        !no_color.contains(&ESC),
        "colour codes at a terminal with NO_COLOR=1: {:?}",
        text(&no_color)
    );
}
