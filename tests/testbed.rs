//! Tests of the test harness itself: the MariaDB and MySQL pairs that every
//! integration test stands on (no proxy here). Most run once per flavor.

mod support;

use std::time::Duration;

use switchyard::testbed::{
    version_number, Build, Flavor, Pair, PairOptions, APP_PASSWORD, APP_USER, CONTROL_PASSWORD,
    CONTROL_USER,
};

const CATCH_UP: Duration = Duration::from_secs(30);

for_each_flavor!(
    blue_writes_reach_read_only_green,
    users_log_in_over_tcp_and_app_cannot_write_on_green,
    restarted_servers_keep_port_and_replication,
    sql_errors_carry_the_server_message,
);

fn blue_writes_reach_read_only_green(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    assert_eq!(pair.flavor(), flavor);

    let status = pair.slave_status().expect("replica status");
    let field = |name: &str| status[&flavor.status_column(name)].clone();
    assert_eq!(field("Slave_IO_Running"), "Yes", "{status:?}");
    assert_eq!(field("Slave_SQL_Running"), "Yes", "{status:?}");
    assert_eq!(field("Master_Port"), pair.blue.port.to_string());
    assert_eq!(pair.green.sql("SELECT @@read_only").unwrap().trim(), "1");
    if flavor == Flavor::MySql {
        assert_eq!(status["Auto_Position"], "1", "{status:?}");
        assert_eq!(
            pair.green.sql("SELECT @@super_read_only").unwrap().trim(),
            "1"
        );
        assert_eq!(pair.green.sql("SELECT @@gtid_mode").unwrap().trim(), "ON");
        assert_ne!(
            pair.blue.sql("SELECT @@server_uuid").unwrap(),
            pair.green.sql("SELECT @@server_uuid").unwrap(),
            "copies of one template must not share a server_uuid"
        );
    }
    assert_eq!(pair.blue.sql("SELECT @@read_only").unwrap().trim(), "0");
    assert_eq!(pair.blue.sql("SELECT @@server_id").unwrap().trim(), "1");
    assert_eq!(pair.green.sql("SELECT @@server_id").unwrap().trim(), "2");

    pair.blue
        .sql(
            "CREATE TABLE test.t (id INT PRIMARY KEY, note VARCHAR(20));\n\
             INSERT INTO test.t VALUES (1, 'from blue'), (2, 'ünïcode');",
        )
        .unwrap();
    pair.wait_green_caught_up(CATCH_UP).unwrap();
    assert_eq!(
        pair.green
            .sql("SELECT id, note FROM test.t ORDER BY id")
            .unwrap(),
        "1\tfrom blue\n2\tünïcode\n"
    );
}

fn users_log_in_over_tcp_and_app_cannot_write_on_green(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let cli = |addr: &str, user, password, db, args: &[&str], stdin| {
        support::cli(flavor, addr, user, password, db, args, stdin)
    };

    let out = cli(
        &pair.blue.addr(),
        APP_USER,
        APP_PASSWORD,
        Some("app"),
        &[
            "-N",
            "-e",
            "CREATE TABLE t (x INT); INSERT INTO t VALUES (7); SELECT current_user(), x FROM t",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app@%\t7\n");

    let out = cli(
        &pair.green.addr(),
        CONTROL_USER,
        CONTROL_PASSWORD,
        None,
        &["-N"],
        Some("SELECT current_user();"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "switchyard@%\n");

    pair.wait_green_caught_up(CATCH_UP).unwrap();
    let out = cli(
        &pair.green.addr(),
        APP_USER,
        APP_PASSWORD,
        Some("app"),
        &["-e", "INSERT INTO t VALUES (8)"],
        None,
    );
    assert!(!out.status.success(), "app wrote on read-only green");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1290"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(
        &pair.blue.addr(),
        APP_USER,
        "wrong",
        None,
        &["-e", "select 1"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1045"));
}

fn restarted_servers_keep_port_and_replication(flavor: Flavor) {
    let mut pair = support::pair_of(flavor);
    let (blue_port, green_port) = (pair.blue.port, pair.green.port);

    pair.green.kill(); // as a crash: the restart runs recovery over a stale socket
    pair.green.stop(); // no-op on a dead server
    pair.blue
        .sql("CREATE TABLE test.r (x INT); INSERT INTO test.r VALUES (1);")
        .unwrap();
    pair.green.start().unwrap();
    pair.wait_replicating(CATCH_UP).unwrap();
    pair.wait_green_caught_up(CATCH_UP).unwrap();
    assert_eq!(pair.green.sql("SELECT x FROM test.r").unwrap(), "1\n");

    pair.blue.stop();
    pair.blue.stop(); // idempotent
    pair.blue.start().unwrap();
    pair.blue.sql("INSERT INTO test.r VALUES (2)").unwrap();
    pair.wait_replicating(CATCH_UP).unwrap();
    pair.wait_green_caught_up(CATCH_UP).unwrap();
    assert_eq!(
        pair.green.sql("SELECT count(*) FROM test.r").unwrap(),
        "2\n"
    );
    assert_eq!((pair.blue.port, pair.green.port), (blue_port, green_port));
}

fn sql_errors_carry_the_server_message(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let err = pair
        .blue
        .sql("SELECT * FROM test.no_such_table")
        .unwrap_err();
    assert!(err.to_string().contains("1146"), "{err}");
}

/// Blue = system MariaDB (10.11), green = MariaDB 11.8, the build scripts/test.sh
/// provides (see [`support::upgrade_build`]); without it the test fails.
#[test]
fn cross_version_pair_replicates() {
    let green = support::upgrade_build();
    let blue = Build::system().expect("system MariaDB");
    let pair = Pair::start(PairOptions {
        blue: blue.clone(),
        green: green.clone(),
        dir: None,
        server_args: Vec::new(),
    })
    .expect("pair");
    assert_ne!(
        version_number(&blue.version().unwrap()),
        version_number(&green.version().unwrap()),
        "blue and green run the same MariaDB version: not a cross-version pair"
    );
    // SELECT version() adds suffixes ("... from Debian-log") to what `Build` reports.
    let green_version = pair.green.sql("SELECT version()").unwrap();
    assert!(
        green_version.starts_with(&green.version().unwrap()),
        "{green_version}"
    );
    let blue_version = pair.blue.sql("SELECT version()").unwrap();
    assert!(
        blue_version.starts_with(&blue.version().unwrap()),
        "{blue_version}"
    );
    pair.blue
        .sql("CREATE TABLE test.x (id INT PRIMARY KEY); INSERT INTO test.x VALUES (42);")
        .unwrap();
    pair.wait_green_caught_up(CATCH_UP).unwrap();
    assert_eq!(pair.green.sql("SELECT id FROM test.x").unwrap(), "42\n");
    let out = support::mariadb_cli(
        &pair.green.addr(),
        APP_USER,
        APP_PASSWORD,
        None,
        &["-N", "-e", "select 1"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
