//! `switchyard::control::Control` against a real MariaDB pair and a real MySQL pair:
//! fence, GTID positions and waits, replication status, the way back (twice; on
//! MariaDB under gtid_strict_mode), errant transactions, sessions, long transactions,
//! DDL, privileges, and a fence that has to give up. Each test runs once per flavor.

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use switchyard::control::{errant, Control, ControlError, GtidSet, MySqlGtidSet};
use switchyard::testbed::{
    Flavor, APP_PASSWORD, APP_USER, CONTROL_PASSWORD, CONTROL_USER, REPL_PASSWORD, REPL_USER,
};

for_each_flavor_async!(
    fence_positions_and_replica_status,
    switchover_and_back_twice,
    errant_write_on_the_fenced_side,
    sessions_transactions_ddl_and_privileges,
    fence_gives_up_behind_lock_tables_write,
);

const T: Duration = Duration::from_secs(10);

async fn control(address: &str) -> Control {
    Control::connect(address, CONTROL_USER, CONTROL_PASSWORD, T)
        .await
        .unwrap_or_else(|e| panic!("control connection to {address}: {e}"))
}

async fn app(address: &str) -> mysql_async::Conn {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().expect("port"))
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("test"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.expect("app connection")
}

fn sql(server: &switchyard::testbed::Server, statement: &str) -> String {
    server
        .sql(statement)
        .unwrap_or_else(|e| panic!("{statement} on {}: {e}", server.name))
        .trim()
        .to_owned()
}

fn set(text: &str) -> GtidSet {
    GtidSet::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Blue's `server_uuid` (MySQL).
fn uuid(server: &switchyard::testbed::Server) -> String {
    sql(server, "SELECT @@server_uuid")
}

/// The GTIDs of `replica` that `primary` lacks, each as text.
async fn errant_gtids(primary: &mut Control, replica: &mut Control) -> Vec<String> {
    let primary_history = primary.gtid_history().await.unwrap();
    let replica_history = replica.gtid_history().await.unwrap();
    primary
        .flavor()
        .errant(&primary_history, &replica_history)
        .unwrap()
}

async fn fence_positions_and_replica_status(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let mut blue = control(&pair.blue.addr()).await;
    let mut green = control(&pair.green.addr()).await;

    assert_eq!(blue.server_id().await.unwrap(), 1);
    assert_eq!(green.server_id().await.unwrap(), 2);
    assert_eq!(blue.flavor().name(), flavor.name());
    assert_eq!(
        blue.version().await.unwrap().contains("MariaDB"),
        flavor == Flavor::MariaDb
    );

    // read_only flips, and reads back; MySQL's fence is super_read_only.
    assert!(!blue.read_only().await.unwrap());
    assert!(green.read_only().await.unwrap());
    blue.set_read_only(true, T).await.unwrap();
    assert!(blue.read_only().await.unwrap());
    if flavor == Flavor::MySql {
        assert_eq!(sql(&pair.blue, "SELECT @@super_read_only"), "1");
    }
    blue.set_read_only(false, T).await.unwrap();
    assert!(!blue.read_only().await.unwrap());
    if flavor == Flavor::MySql {
        assert_eq!(
            sql(&pair.blue, "SELECT @@super_read_only, @@read_only"),
            "0\t0"
        );
    }

    // Positions, and the wait for one as proof.
    sql(
        &pair.blue,
        "CREATE TABLE test.f (id INT PRIMARY KEY); INSERT INTO test.f VALUES (1), (2);",
    );
    let pos = blue.gtid_position().await.unwrap();
    assert!(!pos.is_empty());
    assert_eq!(
        blue.flavor().canonical_gtids(&pos).unwrap(),
        pos,
        "one source, printed back as read"
    );
    assert!(green.wait_for_gtids(&pos, T).await.unwrap());
    assert_eq!(
        errant_gtids(&mut blue, &mut green).await,
        Vec::<String>::new()
    );
    let future = match flavor {
        Flavor::MariaDb => {
            let parsed = set(&pos);
            assert!(set(&blue.gtid_current_pos().await.unwrap()).contains(&parsed));
            assert!(set(&green.gtid_slave_pos().await.unwrap()).contains(&parsed));
            assert!(errant(&parsed, &set(&green.gtid_binlog_pos().await.unwrap())).is_empty());
            let last = parsed.last_in_domain(0).expect("domain 0");
            format!("0-{}-{}", last.server, last.seq + 1000)
        }
        Flavor::MySql => {
            let executed = MySqlGtidSet::parse(&green.gtid_current().await.unwrap()).unwrap();
            assert!(executed.contains(&MySqlGtidSet::parse(&pos).unwrap()));
            format!("{}:1-1000000", uuid(&pair.blue))
        }
    };
    assert!(!green
        .wait_for_gtids(&future, Duration::from_millis(200))
        .await
        .unwrap());
    assert!(matches!(
        green.wait_for_gtids("0-1-x'); DROP TABLE t; --", T).await,
        Err(ControlError::Unexpected { .. })
    ));

    // Replica status: green replicates from blue, blue from nobody.
    assert_eq!(blue.replica_status().await.unwrap(), None);
    assert!(matches!(
        blue.wait_replicating(T).await,
        Err(ControlError::Unexpected { .. })
    ));
    let status = green
        .replica_status()
        .await
        .unwrap()
        .expect("green is a replica");
    assert!(status.is_running(), "{status:?}");
    assert_eq!(status.error(), None);
    assert_eq!(status.master_port, pair.blue.port);
    assert!(status.replicates_from(&pair.blue.addr()));
    let using_gtid = match flavor {
        Flavor::MariaDb => "Slave_Pos",
        Flavor::MySql => "Auto_Position",
    };
    assert_eq!(status.using_gtid, using_gtid);
    assert_eq!(status.gtid_io_pos, pos);
    green.wait_replicating(T).await.unwrap();

    // Stopping for good forgets the source (MariaDB keeps gtid_slave_pos).
    green.stop_replication().await.unwrap();
    assert_eq!(green.replica_status().await.unwrap(), None);
    if flavor == Flavor::MariaDb {
        assert_eq!(green.gtid_slave_pos().await.unwrap(), pos);
    }
    // Harmless when there is nothing to stop.
    green.stop_replication().await.unwrap();
    blue.stop_replication().await.unwrap();
}

/// One switchover from `old` to `new` (both `Control`s), as DESIGN §3 runs it; the
/// fence position.
async fn switch(old: &mut Control, new: &mut Control) -> String {
    // Fencing: read_only on, then the position, twice: it must be stable.
    old.set_read_only(true, T).await.unwrap();
    let pos = old.gtid_position().await.unwrap();
    assert_eq!(
        old.gtid_position().await.unwrap(),
        pos,
        "fence position moved"
    );
    // CatchingUp: proof, then no errant GTIDs on the new side.
    assert!(new.wait_for_gtids(&pos, T).await.unwrap());
    assert_eq!(errant_gtids(old, new).await, Vec::<String>::new());
    // Promoting.
    new.stop_replication().await.unwrap();
    new.set_read_only(false, T).await.unwrap();
    // The way back.
    old.replicate_from(new.address(), REPL_USER, REPL_PASSWORD, false)
        .await
        .unwrap();
    old.wait_replicating(T).await.unwrap();
    // Nothing the control plane did wrote a binlog event on the fenced side.
    assert_eq!(old.gtid_position().await.unwrap(), pos);
    assert_eq!(new.replica_status().await.unwrap(), None);
    assert!(
        old.read_only().await.unwrap(),
        "the way back keeps the fence"
    );
    pos
}

fn count(server: &switchyard::testbed::Server) -> u64 {
    sql(server, "SELECT COUNT(*) FROM test.w")
        .parse()
        .expect("a count")
}

/// Blue → green → blue; on MariaDB under gtid_strict_mode, with the stale
/// `gtid_slave_pos` the way back has to correct.
async fn switchover_and_back_twice(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let settings = match flavor {
        Flavor::MariaDb => "SELECT @@gtid_strict_mode, @@log_slave_updates",
        Flavor::MySql => "SELECT @@gtid_mode = 'ON', @@log_replica_updates",
    };
    for server in [&pair.blue, &pair.green] {
        assert_eq!(sql(server, settings), "1\t1");
    }
    let mariadb = flavor == Flavor::MariaDb;
    let mut blue = control(&pair.blue.addr()).await;
    let mut green = control(&pair.green.addr()).await;
    sql(
        &pair.blue,
        "CREATE TABLE test.w (id INT AUTO_INCREMENT PRIMARY KEY, side VARCHAR(8)); \
         INSERT INTO test.w (side) VALUES ('blue'), ('blue'), ('blue');",
    );
    pair.wait_green_caught_up(T).unwrap();

    // 1. Blue → green; blue replicates from green.
    switch(&mut blue, &mut green).await;
    sql(
        &pair.green,
        "INSERT INTO test.w (side) VALUES ('green'), ('green');",
    );
    let green_pos = green.gtid_position().await.unwrap();
    assert!(blue.wait_for_gtids(&green_pos, T).await.unwrap());
    let status = blue
        .replica_status()
        .await
        .unwrap()
        .expect("blue replicates");
    assert!(status.is_running(), "{status:?}");
    assert_eq!(status.error(), None);
    assert_eq!(status.master_port, pair.green.port);
    assert_eq!(count(&pair.blue), 5);
    if mariadb {
        // Blue's slave position is green's, though blue's last own GTID was 0-1-n.
        assert_eq!(blue.gtid_slave_pos().await.unwrap(), green_pos);
        // Green's gtid_slave_pos is stale (blue's old fence position); the way
        // back must start it from its own binlog position.
        assert_ne!(green.gtid_slave_pos().await.unwrap(), green_pos);
    }

    // 2. Green → blue again.
    switch(&mut green, &mut blue).await;
    if mariadb {
        assert_eq!(green.gtid_slave_pos().await.unwrap(), green_pos);
    }
    sql(&pair.blue, "INSERT INTO test.w (side) VALUES ('blue2');");
    let blue_pos = blue.gtid_position().await.unwrap();
    assert!(green.wait_for_gtids(&blue_pos, T).await.unwrap());
    let status = green
        .replica_status()
        .await
        .unwrap()
        .expect("green replicates");
    assert!(status.is_running(), "{status:?}");
    assert_eq!(status.error(), None);
    assert_eq!(status.master_port, pair.blue.port);
    assert_eq!(count(&pair.green), 6);
    assert_eq!(count(&pair.blue), 6);
    assert_eq!(
        errant_gtids(&mut blue, &mut green).await,
        Vec::<String>::new()
    );
    let blue_history = blue.gtid_history().await.unwrap();
    let green_history = green.gtid_history().await.unwrap();
    assert_eq!(blue_history, green_history, "both logged the same history");
    // GTIDs written by both servers.
    match flavor {
        Flavor::MariaDb => {
            let state = set(&blue_history);
            assert_eq!(state.domains().count(), 1);
            assert_eq!(state.iter().count(), 2, "{state}");
        }
        Flavor::MySql => {
            let groups = MySqlGtidSet::parse(&blue_history).unwrap().groups();
            assert_eq!(groups.len(), 2, "{groups:?}");
        }
    }
}

/// A write on the fenced former primary is errant. MariaDB's fence lets the control
/// account (READ_ONLY ADMIN) write, and strict mode then breaks the way back; MySQL's
/// `super_read_only` binds every account, so the write needs the fence lifted, and
/// auto-positioning carries on regardless: only the errant check sees it.
async fn errant_write_on_the_fenced_side(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let mut blue = control(&pair.blue.addr()).await;
    let mut green = control(&pair.green.addr()).await;
    sql(
        &pair.blue,
        "CREATE TABLE test.e (id INT AUTO_INCREMENT PRIMARY KEY);",
    );
    pair.wait_green_caught_up(T).unwrap();
    switch(&mut blue, &mut green).await;
    if flavor == Flavor::MySql {
        let err = blue
            .query_drop("INSERT INTO test.e VALUES ()")
            .await
            .unwrap_err();
        assert_eq!(err.server_code(), Some(1290), "{err}");
        sql(
            &pair.blue,
            "SET GLOBAL super_read_only = OFF; INSERT INTO test.e VALUES (1000); \
             SET GLOBAL super_read_only = ON;",
        );
        // A row green's writes will not collide with: replication carries on.
        let found = errant_gtids(&mut green, &mut blue).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&uuid(&pair.blue)), "{found:?}");
        sql(&pair.green, "INSERT INTO test.e VALUES ();");
        let green_pos = green.gtid_position().await.unwrap();
        assert!(blue.wait_for_gtids(&green_pos, T).await.unwrap());
        blue.wait_replicating(T).await.unwrap();
        assert_eq!(errant_gtids(&mut green, &mut blue).await, found);
        return;
    }

    // The control account holds READ_ONLY ADMIN: read_only does not stop it.
    blue.query_drop("INSERT INTO test.e VALUES ()")
        .await
        .unwrap();
    let blue_pos = set(&blue.gtid_binlog_pos().await.unwrap());
    let green_pos = set(&green.gtid_binlog_pos().await.unwrap());
    let found = errant(&green_pos, &blue_pos);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].server, 1);

    // The next write on green arrives with the same sequence number: strict mode
    // stops blue's SQL thread.
    sql(&pair.green, "INSERT INTO test.e VALUES ();");
    let mut stopped = None;
    for _ in 0..100 {
        let status = blue.replica_status().await.unwrap().expect("a replica");
        if !status.sql_running {
            stopped = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = stopped.expect("blue's SQL thread stops");
    assert!(
        status
            .last_sql_error
            .contains("out-of-order sequence number"),
        "{status:?}"
    );
    let err = blue.wait_replicating(T).await.unwrap_err();
    assert!(err.to_string().contains("out-of-order"), "{err}");
    // Same sequence number, two servers: still errant by position.
    let green_pos = set(&green.gtid_binlog_pos().await.unwrap());
    assert_eq!(errant(&green_pos, &blue_pos).len(), 1);
}

async fn sessions_transactions_ddl_and_privileges(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let mut blue = control(&pair.blue.addr()).await;
    sql(
        &pair.blue,
        "CREATE TABLE test.s (id INT PRIMARY KEY, v INT); INSERT INTO test.s VALUES (1, 1);",
    );
    match flavor {
        Flavor::MariaDb => mariadb_read_only_admins(&pair.blue, &mut blue).await,
        // super_read_only binds every account.
        Flavor::MySql => assert_eq!(
            blue.users_with_read_only_admin().await.unwrap(),
            Vec::<String>::new()
        ),
    }
    sessions_transactions_ddl(&pair.blue, &mut blue).await;
}

/// Who can write through MariaDB's `read_only`: directly, through roles, not SUPER.
async fn mariadb_read_only_admins(server: &switchyard::testbed::Server, blue: &mut Control) {
    sql(
        server,
        "CREATE USER 'su'@'%' IDENTIFIED BY 'x'; GRANT SUPER ON *.* TO 'su'@'%';\n\
         CREATE USER 'roa'@'%' IDENTIFIED BY 'x'; GRANT READ_ONLY ADMIN ON *.* TO 'roa'@'%';\n\
         CREATE ROLE ro_writer; GRANT READ_ONLY ADMIN ON *.* TO ro_writer;\n\
         CREATE ROLE ro_outer; GRANT ro_writer TO ro_outer;\n\
         CREATE USER 'viarole'@'%' IDENTIFIED BY 'x'; GRANT ro_outer TO 'viarole'@'%';",
    );

    let admins = blue.users_with_read_only_admin().await.unwrap();
    for expected in ["'switchyard'@'%'", "'roa'@'%'", "'viarole'@'%'"] {
        assert!(
            admins.iter().any(|a| a == expected),
            "{expected} not in {admins:?}"
        );
    }
    assert!(
        !admins.iter().any(|a| a.starts_with("'app'@")),
        "{admins:?}"
    );
    assert!(
        !admins.iter().any(|a| a.starts_with("'repl'@")),
        "{admins:?}"
    );
    // SUPER stopped bypassing read_only in 10.11 (checked on 10.11.19).
    let super_bypasses = switchyard::testbed::version_number(&blue.version().await.unwrap())
        .is_some_and(|v| v < (10, 11));
    assert_eq!(
        admins.iter().any(|a| a == "'su'@'%'"),
        super_bypasses,
        "{admins:?}"
    );
}

/// The process list, an open transaction, DDL behind it, and killing.
async fn sessions_transactions_ddl(server: &switchyard::testbed::Server, blue: &mut Control) {
    // An application connection shows up, not ours.
    let mut conn = app(&server.addr()).await;
    let app_id = u64::from(conn.id());
    // The server marks a thread "Sleep" just after it has sent the last answer, so
    // the listing may briefly still say "Query": look again for a little while.
    let mine = blue.connection_id().expect("connected");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let list = blue.connections().await.unwrap();
        assert!(list.iter().all(|c| c.id != mine), "{list:?}");
        assert!(list.iter().all(|c| c.user != "system user"), "{list:?}");
        let entry = list
            .iter()
            .find(|c| c.id == app_id)
            .expect("app connection listed");
        assert_eq!(entry.user, APP_USER);
        assert_eq!(entry.db.as_deref(), Some("test"));
        if entry.command == "Sleep" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "app connection never idle: {entry:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An open transaction, older than a second.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("SELECT * FROM s WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    // Until the server counts it older than a second (bounded by T).
    let deadline = std::time::Instant::now() + T;
    let long = loop {
        let long = blue
            .long_transactions(Duration::from_secs(1))
            .await
            .unwrap();
        if long.iter().any(|t| t.thread_id == app_id) || std::time::Instant::now() > deadline {
            break long;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let trx = long
        .iter()
        .find(|t| t.thread_id == app_id)
        .unwrap_or_else(|| panic!("app transaction not in {long:?}"));
    assert!(trx.started_secs_ago >= 1, "{trx:?}");
    assert_eq!(trx.state, "RUNNING");
    assert!(blue
        .long_transactions(Duration::from_secs(3600))
        .await
        .unwrap()
        .is_empty());

    // DDL waiting behind that transaction's metadata lock.
    let mut ddl_conn = app(&server.addr()).await;
    let ddl_id = u64::from(ddl_conn.id());
    let alter = tokio::spawn(async move {
        let done = ddl_conn.query_drop("ALTER TABLE s ADD COLUMN c INT").await;
        (ddl_conn, done)
    });
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = blue.running_ddl().await.unwrap();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].id, ddl_id);
    assert!(seen[0]
        .info
        .as_deref()
        .unwrap_or("")
        .starts_with("ALTER TABLE"));

    // Killing the transaction's connection lets the ALTER through.
    blue.kill_connection(app_id).await.unwrap();
    let (_ddl_conn, done) = tokio::time::timeout(T, alter)
        .await
        .expect("ALTER ends")
        .unwrap();
    done.expect("ALTER succeeds once the transaction is gone");
    assert!(blue
        .connections()
        .await
        .unwrap()
        .iter()
        .all(|c| c.id != app_id));
    // The server clears a thread's statement text just after answering it: look again
    // for a little while.
    let deadline = std::time::Instant::now() + T;
    loop {
        let ddl = blue.running_ddl().await.unwrap();
        if ddl.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DDL still listed: {ddl:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killing a connection that is gone is not an error; killing our own is refused.
    blue.kill_connection(app_id).await.unwrap();
    assert!(blue.kill_connection(mine).await.is_err());
}

async fn fence_gives_up_behind_lock_tables_write(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let mut blue = control(&pair.blue.addr()).await;
    sql(
        &pair.blue,
        "CREATE TABLE test.l (id INT PRIMARY KEY); CREATE TABLE test.other (id INT PRIMARY KEY);",
    );
    let mut holder = app(&pair.blue.addr()).await;
    holder.query_drop("LOCK TABLES l WRITE").await.unwrap();

    let err = blue
        .set_read_only(true, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Timeout { .. }), "{err}");
    // Interrupted on the server: not set, not pending, and writers are not blocked.
    assert!(!blue.read_only().await.unwrap());
    let pending = blue.connections().await.unwrap();
    assert!(
        pending
            .iter()
            .all(|c| !c.info.as_deref().unwrap_or("").contains("read_only")),
        "{pending:?}"
    );
    let mut writer = app(&pair.blue.addr()).await;
    tokio::time::timeout(T, writer.query_drop("INSERT INTO other VALUES (1)"))
        .await
        .expect("writes flow again")
        .unwrap();

    // The same control connection carries on; once the lock is gone the fence works.
    holder.query_drop("UNLOCK TABLES").await.unwrap();
    blue.set_read_only(true, T).await.unwrap();
    assert!(blue.read_only().await.unwrap());
    blue.set_read_only(false, T).await.unwrap();
}
