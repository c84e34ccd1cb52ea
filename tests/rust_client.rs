//! The in-process Rust client (`mysql_async`) through the proxy: server-side prepared
//! statements, multi-statements and stored procedures, many concurrent sessions,
//! packets over 16 MiB, COM_RESET_CONNECTION, COM_CHANGE_USER, `KILL` by proxy id and
//! the session-state tracking seen in the proxy's debug log.
//!
//! Where a result can be compared, the same client code runs once through the proxy
//! and once directly against blue, and the two answers must be identical. Every test
//! runs against a MariaDB pair and a MySQL 9.7 pair.

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, OptsBuilder, Params, Row, Value};
use sha2::{Digest, Sha256};
use switchyard::testbed::{Flavor, APP_PASSWORD, APP_USER};

for_each_flavor_async!(
    prepared_statements_give_the_same_results_as_direct,
    multi_statements_and_procedures_relay_every_result,
    sixty_four_concurrent_sessions_write_exactly_their_rows,
    parameters_and_rows_bigger_than_one_chunk_round_trip,
    reset_connection_clears_the_session_and_it_keeps_working,
    change_user_switches_to_another_account,
    kill_query_by_proxy_id_interrupts_the_right_session,
    connection_id_and_proxy_id_never_collide,
    kill_by_backend_thread_id_kills_that_session,
    session_state_changes_show_in_the_debug_log,
    ok_packet_fields_are_the_databases,
);

/// How long a statement that should be interrupted may run before the test calls it a
/// hang (a guard, not a timing assertion).
const HANG_GUARD: Duration = Duration::from_secs(20);

fn opts(addr: &str, user: &str, pass: Option<&str>, db: Option<&str>) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("numeric port"))
        .user(Some(user.to_owned()))
        .pass(pass.map(str::to_owned))
        .db_name(db.map(str::to_owned))
        .prefer_socket(false)
}

async fn connect(addr: &str, user: &str, pass: &str) -> Conn {
    Conn::new(opts(addr, user, Some(pass), Some("test")))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as {user}: {e}"))
}

async fn app(addr: &str) -> Conn {
    connect(addr, APP_USER, APP_PASSWORD).await
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn values(rows: Vec<Row>) -> Vec<Vec<Value>> {
    rows.into_iter().map(Row::unwrap).collect()
}

// ---------------------------------------------------------------------------------
// Prepared statements
// ---------------------------------------------------------------------------------

const TYPES_TABLE: &str = "CREATE TABLE test.types (\
    id INT PRIMARY KEY, \
    tiny TINYINT, small SMALLINT UNSIGNED, big BIGINT, ubig BIGINT UNSIGNED, \
    dbl DOUBLE, flt FLOAT, dec_c DECIMAL(30,10), \
    txt VARCHAR(200) CHARACTER SET utf8mb4, bin VARBINARY(300), blb MEDIUMBLOB, \
    d DATE, dt DATETIME(6), tm TIME(6), nul INT NULL, bitc BIT(12), en ENUM('a','b','c'))";

/// Parameters for row `i` of `test.types`, covering signed/unsigned extremes, floats,
/// decimals as strings, utf8mb4 text, arbitrary bytes (including a 70 KB blob now and
/// then), dates and times with microseconds, negative times and NULL.
fn type_params(i: i64) -> Vec<Value> {
    let big = match i % 3 {
        0 => i64::MIN + i,
        1 => i64::MAX - i,
        _ => -i * 1_000_003,
    };
    let ubig = if i % 2 == 0 {
        u64::MAX - i as u64
    } else {
        i as u64
    };
    let bytes: Vec<u8> = (0..=255u8)
        .cycle()
        .skip(i as usize)
        .take(200 + i as usize % 50)
        .collect();
    let blob: Vec<u8> = if i % 17 == 0 {
        (0..70_000u32)
            .map(|k| (k.wrapping_mul(31) ^ i as u32) as u8)
            .collect()
    } else {
        vec![0u8; i as usize % 5]
    };
    vec![
        Value::from(i),
        Value::from((i % 256 - 128) as i8),
        Value::from((i * 257 % 65536) as u16),
        Value::from(big),
        Value::from(ubig),
        Value::from(i as f64 * 1.000_001 - 0.5),
        Value::from(i as f32 / 3.0),
        Value::from(format!("{}.{:010}", i * 12_345_678 - 500_000_000, i * 7)),
        Value::from(format!("ünïcödé € 𝄞 \\ ' \" row {i}")),
        Value::from(bytes),
        Value::from(blob),
        Value::Date(
            2000 + (i % 100) as u16,
            1 + (i % 12) as u8,
            1 + (i % 28) as u8,
            0,
            0,
            0,
            0,
        ),
        Value::Date(
            1970 + (i % 60) as u16,
            12,
            31,
            (i % 24) as u8,
            59,
            58,
            (i * 1013 % 1_000_000) as u32,
        ),
        Value::Time(
            i % 2 == 1,
            (i % 30) as u32,
            (i % 24) as u8,
            1,
            2,
            (i * 7 % 1_000_000) as u32,
        ),
        if i % 4 == 0 {
            Value::NULL
        } else {
            Value::from(i * 10)
        },
        // A number, not bytes: MySQL converts a byte-string parameter for a BIT
        // column from the connection's character set, and 0x80… is not utf8mb4.
        Value::from((i % 16) << 8 | (i % 256)),
        Value::from(["a", "b", "c"][i as usize % 3]),
    ]
}

/// Everything the prepared-statement workload observes, in order, so the proxy's run
/// and the direct run can be compared as a whole.
#[derive(Debug, PartialEq)]
struct PreparedTranscript {
    binary_rows: Vec<Vec<Value>>,
    text_rows: Vec<Vec<Value>>,
    lookups: Vec<Vec<Vec<Value>>>,
    streamed: Vec<(i64, String)>,
    affected: Vec<u64>,
    param_count: u16,
    column_count: usize,
    stale_statement_error: Option<u16>,
    after_close: Vec<i64>,
}

async fn prepared_workload(conn: &mut Conn, table: &str) -> PreparedTranscript {
    conn.query_drop(format!("DROP TABLE IF EXISTS test.{table}"))
        .await
        .unwrap();
    conn.query_drop(TYPES_TABLE.replace("test.types", &format!("test.{table}")))
        .await
        .unwrap();

    // One insert statement, reused: 150 single executions, then a batch of 150.
    let insert = conn
        .prep(format!(
            "INSERT INTO test.{table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .await
        .unwrap();
    let param_count = insert.num_params();
    for i in 0..150 {
        conn.exec_drop(&insert, Params::Positional(type_params(i)))
            .await
            .unwrap_or_else(|e| panic!("insert row {i}: {e}"));
    }
    conn.exec_batch(
        &insert,
        (150..300).map(|i| Params::Positional(type_params(i))),
    )
    .await
    .unwrap();

    // Binary-protocol read of everything, and the same through the text protocol.
    let select_all = conn
        .prep(format!("SELECT * FROM test.{table} ORDER BY id"))
        .await
        .unwrap();
    let column_count = select_all.columns().len();
    let binary_rows = values(conn.exec(&select_all, ()).await.unwrap());
    let text_rows = values(
        conn.query(format!("SELECT * FROM test.{table} ORDER BY id"))
            .await
            .unwrap(),
    );

    // A lookup statement executed many times with different parameters.
    let lookup = conn
        .prep(format!(
            "SELECT * FROM test.{table} WHERE id = ? OR id = ? ORDER BY id"
        ))
        .await
        .unwrap();
    let mut lookups = Vec::new();
    for i in 0..300 {
        let rows: Vec<Row> = conn.exec(&lookup, (i, 299 - i)).await.unwrap();
        lookups.push(values(rows));
    }

    // Streaming with exec_iter.
    let mut streamed = Vec::new();
    let mut result = conn
        .exec_iter(
            format!("SELECT id, txt FROM test.{table} WHERE id >= ? ORDER BY id"),
            (100,),
        )
        .await
        .unwrap();
    while let Some(row) = result.next().await.unwrap() {
        streamed.push(mysql_async::from_row::<(i64, String)>(row));
    }
    drop(result);

    // Statements that answer OK, with affected-row counts.
    let update = conn
        .prep(format!("UPDATE test.{table} SET nul = ? WHERE id % ? = 0"))
        .await
        .unwrap();
    let mut affected = Vec::new();
    for k in 2..12 {
        conn.exec_drop(&update, (k * 1000, k)).await.unwrap();
        affected.push(conn.affected_rows());
    }

    // Close, then use the closed statement: the server must refuse it (1243) and the
    // session must carry on.
    conn.close(lookup.clone()).await.unwrap();
    let stale = conn.exec::<Row, _, _>(&lookup, (1, 2)).await;
    let stale_statement_error = stale.err().as_ref().and_then(server_code);
    let after_close: Vec<i64> = conn
        .exec(
            format!("SELECT id FROM test.{table} WHERE id < ? ORDER BY id"),
            (5,),
        )
        .await
        .unwrap();
    conn.close(insert).await.unwrap();
    conn.close(select_all).await.unwrap();
    conn.close(update).await.unwrap();

    PreparedTranscript {
        binary_rows,
        text_rows,
        lookups,
        streamed,
        affected,
        param_count,
        column_count,
        stale_statement_error,
        after_close,
    }
}

async fn prepared_statements_give_the_same_results_as_direct(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");

    let mut through = app(&proxy.addr).await;
    let via_proxy = prepared_workload(&mut through, "types_proxy").await;
    let mut direct = app(&pair.blue.addr()).await;
    let via_direct = prepared_workload(&mut direct, "types_direct").await;

    assert_eq!(via_proxy.param_count, 17);
    assert_eq!(via_proxy.binary_rows.len(), 300);
    assert_eq!(via_proxy.stale_statement_error, Some(1243));
    assert_eq!(via_proxy.after_close, vec![0, 1, 2, 3, 4]);
    // Compare piece by piece first so a failure names the part that differs.
    assert_eq!(
        via_proxy.binary_rows, via_direct.binary_rows,
        "binary rows differ"
    );
    assert_eq!(
        via_proxy.text_rows, via_direct.text_rows,
        "text rows differ"
    );
    assert_eq!(via_proxy.lookups, via_direct.lookups, "lookups differ");
    assert_eq!(via_proxy, via_direct);

    // What was written through the proxy is what a direct reader sees.
    let stored_via_proxy = values(
        direct
            .query("SELECT * FROM test.types_proxy ORDER BY id")
            .await
            .unwrap(),
    );
    let stored_direct = values(
        direct
            .query("SELECT * FROM test.types_direct ORDER BY id")
            .await
            .unwrap(),
    );
    assert_eq!(stored_via_proxy, stored_direct);

    through.disconnect().await.unwrap();
    direct.disconnect().await.unwrap();
}

// ---------------------------------------------------------------------------------
// Multi-statements and stored procedures
// ---------------------------------------------------------------------------------

/// One result of a multi-result answer: column names, rows, affected rows.
type ResultSet = (Vec<String>, Vec<Vec<Value>>, u64);

async fn all_results(conn: &mut Conn, sql: &str) -> Result<Vec<ResultSet>, mysql_async::Error> {
    let mut result = conn.query_iter(sql).await?;
    let mut sets = Vec::new();
    loop {
        let columns = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let affected = result.affected_rows();
        let rows: Vec<Row> = result.collect().await?;
        sets.push((columns, values(rows), affected));
        if result.is_empty() {
            return Ok(sets);
        }
    }
}

async fn multi_result_workload(conn: &mut Conn) -> Vec<Result<Vec<ResultSet>, Option<u16>>> {
    let scripts = [
        "DROP TABLE IF EXISTS test.m; CREATE TABLE test.m (x INT PRIMARY KEY, s TEXT); \
         SELECT 1 AS one, 'two' AS two; \
         INSERT INTO test.m VALUES (1,'a'),(2,'b'),(3,'c'); \
         SELECT COUNT(*) AS n FROM test.m; \
         UPDATE test.m SET x = x + 10 WHERE x > 1; \
         SELECT x, s FROM test.m ORDER BY x",
        // An error in the middle ends the answer there.
        "SELECT 1; SELECT * FROM test.no_such_table; SELECT 3",
        "SELECT 'still' AS fine",
        "SELECT 'after error' AS fine",
        "DROP PROCEDURE IF EXISTS test.p; \
         CREATE PROCEDURE test.p(n INT) BEGIN SELECT n AS first; SELECT x FROM test.m ORDER BY x; \
         WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 1000) \
         SELECT seq FROM s WHERE seq <= n; END; \
         CALL test.p(7); SELECT 'after call' AS tail",
        "CALL test.p(900)",
        "WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 50) \
         SELECT REPEAT('z', 70000) AS wide, seq FROM s; SELECT NULL AS nothing, '' AS blank",
    ];
    let mut out = Vec::new();
    for sql in scripts {
        out.push(all_results(conn, sql).await.map_err(|e| server_code(&e)));
    }
    // A stored procedure through a prepared CALL (binary multi-results).
    let rows: Vec<Row> = conn.exec("CALL test.p(?)", (3,)).await.unwrap();
    out.push(Ok(vec![(Vec::new(), values(rows), 0)]));
    out
}

async fn multi_statements_and_procedures_relay_every_result(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");

    let mut through = app(&proxy.addr).await;
    let via_proxy = multi_result_workload(&mut through).await;
    // Run the same scripts directly on blue (they recreate their own objects).
    let mut direct = app(&pair.blue.addr()).await;
    let via_direct = multi_result_workload(&mut direct).await;

    let first = via_proxy[0].as_ref().expect("first script succeeds");
    assert_eq!(
        first.last().map(|s| s.1.len()),
        Some(3),
        "last result of the first script: {first:?}"
    );
    // mysql_async reports an error in the middle of a multi-result answer on the next
    // call; either way the 1146 must come through, and the session carries on.
    assert!(
        via_proxy[1..3].contains(&Err(Some(1146))),
        "no 1146 from the failing multi-statement: {:?}",
        &via_proxy[1..4]
    );
    assert_eq!(
        via_proxy[3],
        Ok(vec![(
            vec!["fine".to_owned()],
            vec![vec![Value::from("after error")]],
            0
        )])
    );
    for (i, (p, d)) in via_proxy.iter().zip(&via_direct).enumerate() {
        assert_eq!(p, d, "script {i}: proxy and direct answers differ");
    }
    assert_eq!(via_proxy.len(), via_direct.len());
    let n: Option<i64> = through.query_first("SELECT 42").await.unwrap();
    assert_eq!(n, Some(42));
}

// ---------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------

const SESSIONS: i64 = 64;
const INSERTS_PER_SESSION: i64 = 100;

async fn one_session(addr: String, session: i64) -> Result<(), String> {
    let mut conn = Conn::new(opts(&addr, APP_USER, Some(APP_PASSWORD), Some("test")))
        .await
        .map_err(|e| format!("session {session}: connect: {e}"))?;
    let insert = conn
        .prep("INSERT INTO test.conc (id, session, seq, note) VALUES (?, ?, ?, ?)")
        .await
        .map_err(|e| format!("session {session}: prepare: {e}"))?;
    let select = conn
        .prep("SELECT note FROM test.conc WHERE id = ?")
        .await
        .map_err(|e| format!("session {session}: prepare: {e}"))?;
    for seq in 0..INSERTS_PER_SESSION {
        let id = session * 1000 + seq;
        let note = format!("s{session}-n{seq}");
        conn.exec_drop(&insert, (id, session, seq, &note))
            .await
            .map_err(|e| format!("session {session}: insert {seq}: {e}"))?;
        let back: Option<String> = conn
            .exec_first(&select, (id,))
            .await
            .map_err(|e| format!("session {session}: select {seq}: {e}"))?;
        if back.as_deref() != Some(note.as_str()) {
            return Err(format!("session {session}: row {id} read back as {back:?}"));
        }
    }
    let mine: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM test.conc WHERE session = ?",
            (session,),
        )
        .await
        .map_err(|e| format!("session {session}: count: {e}"))?;
    if mine != Some(INSERTS_PER_SESSION) {
        return Err(format!("session {session}: sees {mine:?} of its rows"));
    }
    conn.disconnect()
        .await
        .map_err(|e| format!("session {session}: disconnect: {e}"))
}

async fn sixty_four_concurrent_sessions_write_exactly_their_rows(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    pair.blue
        .sql(
            "CREATE TABLE test.conc (id INT PRIMARY KEY, session INT NOT NULL, \
             seq INT NOT NULL, note VARCHAR(40) NOT NULL)",
        )
        .unwrap();

    let tasks: Vec<_> = (0..SESSIONS)
        .map(|s| tokio::spawn(one_session(proxy.addr.clone(), s)))
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(e) = task.await.expect("session task panicked") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "failed sessions: {failures:#?}");

    let total = SESSIONS * INSERTS_PER_SESSION;
    let expected_sum: i64 = (0..SESSIONS)
        .flat_map(|s| (0..INSERTS_PER_SESSION).map(move |q| s * 1000 + q))
        .sum();
    let summary = pair
        .blue
        .sql(
            "SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), \
             SUM(id <> session * 1000 + seq), SUM(note <> CONCAT('s', session, '-n', seq)), \
             COUNT(DISTINCT session), MIN(seq), MAX(seq) FROM test.conc",
        )
        .unwrap();
    assert_eq!(
        summary.trim(),
        format!(
            "{total}\t{total}\t{expected_sum}\t0\t0\t{SESSIONS}\t0\t{}",
            INSERTS_PER_SESSION - 1
        )
    );
    let uneven = pair
        .blue
        .sql("SELECT session FROM test.conc GROUP BY session HAVING COUNT(*) <> 100")
        .unwrap();
    assert_eq!(uneven, "", "sessions with a wrong number of rows");
}

// ---------------------------------------------------------------------------------
// Packets over 16 MiB
// ---------------------------------------------------------------------------------

const MAX_CHUNK: usize = 0xFF_FFFF;

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// SHA-256 rather than SHA-1: MySQL 9.7 answers `SHA1()` with 1305 (no such function).
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn parameters_and_rows_bigger_than_one_chunk_round_trip(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    let mut conn = app(&proxy.addr).await;
    let max: Option<u64> = conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .unwrap();
    assert!(
        max.unwrap_or(0) >= 32 << 20,
        "the test needs max_allowed_packet >= 32MiB on blue, it is {max:?}"
    );
    conn.query_drop("CREATE TABLE test.big (id INT PRIMARY KEY, data LONGBLOB)")
        .await
        .unwrap();

    // 1. A 17 MiB parameter: COM_STMT_EXECUTE spans two chunks; so does the row.
    let data = pattern(17 << 20, 0);
    conn.exec_drop("INSERT INTO test.big VALUES (?, ?)", (1, &data))
        .await
        .unwrap();
    let back: Option<Vec<u8>> = conn
        .exec_first("SELECT data FROM test.big WHERE id = ?", (1,))
        .await
        .unwrap();
    let back = back.expect("row 1 exists");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "17 MiB value read back (binary) differs");
    let text: Option<Vec<u8>> = conn
        .query_first("SELECT data FROM test.big WHERE id = 1")
        .await
        .unwrap();
    assert!(
        text.as_ref() == Some(&data),
        "17 MiB value read back (text) differs"
    );
    let server_sha256: Option<String> = conn
        .query_first("SELECT LOWER(SHA2(data, 256)) FROM test.big WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        server_sha256,
        Some(sha256_hex(&data)),
        "blue stored other bytes"
    );

    // 2. A text row whose payload is exactly one full chunk: the server ends it with
    //    an empty chunk. (Payload = 4-byte length prefix + value.)
    let exact = pattern(MAX_CHUNK - 4, 0x5a);
    conn.exec_drop("INSERT INTO test.big VALUES (?, ?)", (2, &exact))
        .await
        .unwrap();
    let text: Option<Vec<u8>> = conn
        .query_first("SELECT data FROM test.big WHERE id = 2")
        .await
        .unwrap();
    assert!(
        text.as_ref() == Some(&exact),
        "row of exactly 0xFFFFFF bytes differs"
    );

    // 3. A COM_QUERY whose payload is exactly one full chunk (1 command byte + SQL):
    //    the client ends it with an empty chunk.
    let prefix = "INSERT INTO test.big VALUES (3, '";
    let suffix = "')";
    let filler = MAX_CHUNK - 1 - prefix.len() - suffix.len();
    let sql = format!("{prefix}{}{suffix}", "q".repeat(filler));
    assert_eq!(sql.len() + 1, MAX_CHUNK);
    conn.query_drop(&sql).await.unwrap();
    let len: Option<u64> = conn
        .query_first("SELECT LENGTH(data) FROM test.big WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(len, Some(filler as u64));

    // The session is still in step after all of it.
    let ids: Vec<i64> = conn
        .query("SELECT id FROM test.big ORDER BY id")
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2, 3]);
    let direct_sha256 = pair
        .blue
        .sql("SELECT LOWER(SHA2(data, 256)) FROM test.big WHERE id = 2")
        .unwrap();
    assert_eq!(direct_sha256.trim(), sha256_hex(&exact));
    conn.disconnect().await.unwrap();
}

// ---------------------------------------------------------------------------------
// COM_RESET_CONNECTION and COM_CHANGE_USER
// ---------------------------------------------------------------------------------

async fn reset_connection_clears_the_session_and_it_keeps_working(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    let mut conn = app(&proxy.addr).await;

    for round in 0..3 {
        conn.query_drop(
            "SET @x = 5, SESSION sql_mode = 'ANSI_QUOTES', SESSION time_zone = '+03:00'",
        )
        .await
        .unwrap();
        conn.query_drop("CREATE TEMPORARY TABLE test.tmp (a INT)")
            .await
            .unwrap();
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop("INSERT INTO test.tmp VALUES (1)")
            .await
            .unwrap();
        let stmt = conn.prep("SELECT ? + 1").await.unwrap();
        let two: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
        assert_eq!(two, Some(2));

        assert!(
            conn.reset().await.unwrap(),
            "COM_RESET_CONNECTION supported"
        );

        let (x, mode_reset, tz): (Option<i64>, i64, String) = conn
            .query_first("SELECT @x, @@session.sql_mode = @@global.sql_mode, @@session.time_zone")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (x, mode_reset, tz.as_str()),
            (None, 1, "SYSTEM"),
            "round {round}"
        );
        // Refused (1568) inside a transaction, on both servers (MySQL has no
        // @@in_transaction).
        let outside = conn.query_drop("SET TRANSACTION READ WRITE").await;
        assert!(
            outside.is_ok(),
            "round {round}: the transaction was rolled back: {outside:?}"
        );
        let gone = conn.query_drop("SELECT * FROM test.tmp").await.unwrap_err();
        assert_eq!(
            server_code(&gone),
            Some(1146),
            "round {round}: temp table dropped"
        );
        // The statement prepared before the reset is gone on the server...
        let stale = conn.exec_drop(&stmt, (1,)).await.unwrap_err();
        assert_eq!(server_code(&stale), Some(1243), "round {round}");
        // ...and new ones work.
        let three: Option<i64> = conn.exec_first("SELECT ? + 2", (1,)).await.unwrap();
        assert_eq!(three, Some(3));
    }
    // The schema chosen at login survives a reset.
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("test"));
    conn.disconnect().await.unwrap();
}

async fn change_user_switches_to_another_account(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    pair.blue
        .sql(
            "CREATE USER other@'%' IDENTIFIED BY 'other-pw'; \
             GRANT ALL ON sbtest.* TO other@'%';",
        )
        .unwrap();
    let proxy = support::Proxy::start(
        &pair,
        "[[users]]\nname = \"other\"\npassword = \"other-pw\"\n",
    );
    let mut conn = app(&proxy.addr).await;
    conn.query_drop("SET @x = 'mine'").await.unwrap();
    let me: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("app@%"));

    conn.change_user(
        ChangeUserOpts::new()
            .with_user(Some("other".into()))
            .with_pass(Some("other-pw".into()))
            .with_db_name(Some("sbtest".into())),
    )
    .await
    .unwrap();
    let (user, x, db): (String, Option<String>, Option<String>) = conn
        .query_first("SELECT CURRENT_USER(), @x, DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, "other@%");
    assert_eq!(x, None, "user variables are reset by COM_CHANGE_USER");
    assert_eq!(db.as_deref(), Some("sbtest"));
    // The database enforces the new account's grants.
    let denied = conn
        .query_drop("SELECT * FROM test.nothing")
        .await
        .unwrap_err();
    assert_eq!(server_code(&denied), Some(1142), "{denied}");
    // Prepared statements work for the new user.
    let n: Option<i64> = conn.exec_first("SELECT ? * 2", (21,)).await.unwrap();
    assert_eq!(n, Some(42));

    // And back to app.
    conn.change_user(
        ChangeUserOpts::new()
            .with_user(Some(APP_USER.into()))
            .with_pass(Some(APP_PASSWORD.into()))
            .with_db_name(Some("test".into())),
    )
    .await
    .unwrap();
    let me: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("app@%"));
    conn.disconnect().await.unwrap();

    // A wrong password in COM_CHANGE_USER is refused like a wrong login.
    let mut conn = app(&proxy.addr).await;
    let err = conn
        .change_user(
            ChangeUserOpts::new()
                .with_user(Some("other".into()))
                .with_pass(Some("wrong".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(1045), "{err}");
    // Other sessions are not affected.
    let mut fresh = app(&proxy.addr).await;
    let one: Option<i64> = fresh.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

// ---------------------------------------------------------------------------------
// KILL by proxy connection id
// ---------------------------------------------------------------------------------

/// Waits until blue shows `thread` running a statement that starts with `prefix`.
async fn wait_until_running(direct: &mut Conn, thread: u32, prefix: &str) {
    for _ in 0..200 {
        let n: Option<i64> = direct
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE ?",
                (thread, format!("{prefix}%")),
            )
            .await
            .unwrap();
        if n == Some(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("blue never showed thread {thread} running {prefix}…");
}

async fn kill_query_by_proxy_id_interrupts_the_right_session(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    let mut direct = app(&pair.blue.addr()).await;

    let mut victim = app(&proxy.addr).await;
    let mut bystander = app(&proxy.addr).await;
    let mut killer = app(&proxy.addr).await;
    // Make sure the proxy's id and blue's thread id differ, or the test proves nothing.
    let mut backend_thread: u32 = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let mut spares = Vec::new();
    while backend_thread == victim.id() {
        spares.push(app(&pair.blue.addr()).await);
        victim = app(&proxy.addr).await;
        backend_thread = victim
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
    }
    let proxy_id = victim.id();

    // KILL QUERY: the statement stops, the session survives. MariaDB fails it with
    // 1317; MySQL ends a lone interrupted SLEEP() without error, answering 1.
    let sleeping = tokio::spawn(async move {
        let r = victim.query_first::<i64, _>("SELECT SLEEP(30)").await;
        (r, victim)
    });
    wait_until_running(&mut direct, backend_thread, "SELECT SLEEP").await;
    killer
        .query_drop(format!("KILL QUERY {proxy_id}"))
        .await
        .unwrap_or_else(|e| panic!("KILL QUERY {proxy_id} through the proxy: {e}"));
    let (result, mut victim) = tokio::time::timeout(HANG_GUARD, sleeping)
        .await
        .expect("KILL QUERY by proxy id did not interrupt SELECT SLEEP(30)")
        .unwrap();
    match flavor {
        Flavor::MariaDb => {
            let err = result.expect_err("the killed statement must fail");
            assert_eq!(server_code(&err), Some(1317), "{err}");
        }
        Flavor::MySql => assert_eq!(result.unwrap(), Some(1), "SLEEP() was interrupted"),
    }
    let still: Option<i64> = victim.query_first("SELECT 7").await.unwrap();
    assert_eq!(still, Some(7), "the victim session survives KILL QUERY");
    let bystander_ok: Option<i64> = bystander.query_first("SELECT 8").await.unwrap();
    assert_eq!(bystander_ok, Some(8));

    // KILL (connection): the victim's backend thread goes away, the killer does not.
    killer.query_drop(format!("KILL {proxy_id}")).await.unwrap();
    let after = tokio::time::timeout(HANG_GUARD, victim.query_drop("SELECT 1"))
        .await
        .expect("a killed session must answer, not hang");
    assert!(after.is_err(), "a killed session cannot run statements");
    let mut present: Option<i64> = None;
    for _ in 0..200 {
        present = direct
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                (backend_thread,),
            )
            .await
            .unwrap();
        if present == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(present, Some(0), "blue still has the killed thread");
    let killer_ok: Option<i64> = killer.query_first("SELECT 9").await.unwrap();
    assert_eq!(killer_ok, Some(9));
    let bystander_ok: Option<i64> = bystander.query_first("SELECT 10").await.unwrap();
    assert_eq!(bystander_ok, Some(10));
    drop(spares);
}

/// `CONNECTION_ID()` through the proxy is the backend's thread id (as ProxySQL and
/// MaxScale do); the greeting's id is the proxy's, counted from 1,000,000,000 so the two
/// ranges never meet and `KILL` knows which one it was given.
async fn connection_id_and_proxy_id_never_collide(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    let mut conn = app(&proxy.addr).await;
    let from_sql: u32 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert!(
        conn.id() >= 1_000_000_000,
        "proxy id {} is in the server's range",
        conn.id()
    );
    assert!(from_sql < 1_000_000_000, "backend thread id {from_sql}");
}

/// `KILL n` with a number from `CONNECTION_ID()` (the backend thread id) reaches the
/// server unchanged and kills that thread, as a direct `KILL n` would.
async fn kill_by_backend_thread_id_kills_that_session(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");
    let mut direct = app(&pair.blue.addr()).await;
    let mut victim = app(&proxy.addr).await;
    let mut killer = app(&proxy.addr).await;
    let thread: u32 = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let sleeper = tokio::spawn(async move {
        let r = victim.query_first::<i64, _>("SELECT SLEEP(30)").await;
        (victim, r)
    });
    wait_until_running(&mut direct, thread, "SELECT SLEEP").await;
    killer
        .query_drop(format!("KILL QUERY {thread}"))
        .await
        .unwrap();
    let (mut victim, r) = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .expect("KILL QUERY by backend thread id did not interrupt the sleep")
        .unwrap();
    // MariaDB answers an interrupted SLEEP() with 1 (or error 1317).
    match r {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert_eq!(server_code(&e), Some(1317), "{e}"),
    }
    let still: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(still, Some(1));
    let err = killer
        .query_drop("KILL 999999")
        .await
        .expect_err("no such thread");
    assert_eq!(server_code(&err), Some(1094), "{err}");
}

// ---------------------------------------------------------------------------------
// Session-state tracking
// ---------------------------------------------------------------------------------

async fn session_state_changes_show_in_the_debug_log(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    // The harness passes RUST_LOG on to the proxy when it is set. Each test runs in
    // its own process under nextest, so this does not leak into other tests.
    std::env::set_var("RUST_LOG", "switchyard=debug");
    let proxy = support::Proxy::start(&pair, "");
    let mut conn = app(&proxy.addr).await;

    conn.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION'")
        .await
        .unwrap();
    conn.query_drop("SET SESSION time_zone = '+04:30'")
        .await
        .unwrap();
    conn.query_drop("USE sbtest").await.unwrap();
    conn.query_drop("SET @tracked = 1").await.unwrap();
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("sbtest"));

    let wanted = [
        "session state changed",
        "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION",
        "+04:30",
        "sbtest",
    ];
    let mut log = String::new();
    for _ in 0..100 {
        log = proxy.log();
        if wanted.iter().all(|w| log.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for w in wanted {
        assert!(log.contains(w), "the proxy's debug log lacks {w:?}:\n{log}");
    }
    conn.disconnect().await.unwrap();
}

// ---------------------------------------------------------------------------------
// OK packets (the proxy strips session tracking for clients that did not ask for it)
// ---------------------------------------------------------------------------------

/// What a client learns from each OK: affected rows, insert id, warnings, info.
type OkFields = (u64, Option<u64>, u16, String);

async fn ok_fields_workload(conn: &mut Conn) -> Vec<(String, Result<OkFields, Option<u16>>)> {
    // Both runs share blue: start from the same state.
    conn.query_drop("DROP TABLE IF EXISTS test.okt")
        .await
        .unwrap();
    let statements = [
        "DROP TABLE IF EXISTS test.never_there",
        "CREATE TABLE test.okt (id INT AUTO_INCREMENT PRIMARY KEY, v INT UNIQUE)",
        "INSERT INTO test.okt (v) VALUES (1), (2), (3)",
        "INSERT IGNORE INTO test.okt (v) VALUES (3), (4)",
        "UPDATE test.okt SET v = v + 10 WHERE v > 1",
        "SET @u = 5",
        "SET SESSION sql_mode = 'TRADITIONAL'",
        "USE sbtest",
        "USE test",
        "INSERT INTO okt (v) VALUES (100) ON DUPLICATE KEY UPDATE v = v",
        "INSERT INTO okt (v) VALUES (100) ON DUPLICATE KEY UPDATE v = 101",
        "SET SESSION sql_mode = DEFAULT",
        "SELECT 1/0",
        "BEGIN",
        "INSERT INTO okt (v) VALUES (200)",
        "COMMIT",
        "ALTER TABLE okt ADD COLUMN w INT",
        "DELETE FROM okt WHERE v > 100",
        "CREATE TEMPORARY TABLE tmp_ok (a INT)",
        "INSERT INTO tmp_ok VALUES (1), (2)",
        "DROP TEMPORARY TABLE tmp_ok",
        "SET SESSION time_zone = '+01:00', @v = 'x'",
    ];
    let mut out = Vec::new();
    for sql in statements {
        let r = conn.query_drop(sql).await;
        let fields = r
            .map(|()| {
                (
                    conn.affected_rows(),
                    conn.last_insert_id(),
                    conn.get_warnings(),
                    conn.info().into_owned(),
                )
            })
            .map_err(|e| server_code(&e));
        out.push((sql.to_owned(), fields));
    }
    let stmt = conn
        .prep("INSERT INTO okt (v) VALUES (?), (?)")
        .await
        .unwrap();
    conn.exec_drop(&stmt, (300, 301)).await.unwrap();
    out.push((
        "prepared insert".to_owned(),
        Ok((
            conn.affected_rows(),
            conn.last_insert_id(),
            conn.get_warnings(),
            conn.info().into_owned(),
        )),
    ));
    out
}

async fn ok_packet_fields_are_the_databases(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = support::Proxy::start(&pair, "");

    let mut through = app(&proxy.addr).await;
    let via_proxy = ok_fields_workload(&mut through).await;
    let mut direct = app(&pair.blue.addr()).await;
    let via_direct = ok_fields_workload(&mut direct).await;

    // The workload is meaningful: info strings and warnings do occur.
    assert!(via_direct
        .iter()
        .any(|(_, r)| matches!(r, Ok((_, _, _, info)) if info.starts_with("Records: 2"))));
    assert!(via_direct
        .iter()
        .any(|(_, r)| matches!(r, Ok((_, _, w, _)) if *w > 0)));
    for ((sql, p), (_, d)) in via_proxy.iter().zip(&via_direct) {
        assert_eq!(p, d, "{sql}: proxy and direct OK fields differ");
    }
    assert_eq!(via_proxy.len(), via_direct.len());
}

// ---------------------------------------------------------------------------------
// What MySQL adds to session state
// ---------------------------------------------------------------------------------

/// Whether `ctl check` lists a pinned session.
async fn pinned_now(proxy: &support::Proxy) -> bool {
    let (ok, out) = proxy.ctl_async(&["check"]).await;
    assert!(
        out.contains("pinned_sessions"),
        "check ({ok}) without pinned_sessions:\n{out}"
    );
    out.contains("pinned now:")
}

/// `LOCK INSTANCE FOR BACKUP` holds a lock on the server until `UNLOCK INSTANCE` (not
/// `UNLOCK TABLES`): the session is pinned while it holds it.
#[tokio::test(flavor = "multi_thread")]
async fn lock_instance_for_backup_pins_the_session_until_unlock_instance() {
    let pair = support::pair_of(Flavor::MySql);
    pair.blue
        .sql(&format!("GRANT BACKUP_ADMIN ON *.* TO '{APP_USER}'@'%'"))
        .unwrap();
    let proxy = support::Proxy::start(&pair, "");
    let mut conn = app(&proxy.addr).await;
    assert!(!pinned_now(&proxy).await, "pinned before the lock");

    conn.query_drop("LOCK INSTANCE FOR BACKUP").await.unwrap();
    // The server holds the backup lock for this session: other sessions may not
    // create tables.
    let backup_locks = || -> Option<i64> {
        pair.blue
            .sql(
                "SELECT COUNT(*) FROM performance_schema.metadata_locks \
                 WHERE OBJECT_TYPE = 'BACKUP LOCK'",
            )
            .unwrap()
            .trim()
            .parse()
            .ok()
    };
    assert_eq!(backup_locks(), Some(1), "the server holds the backup lock");
    assert!(pinned_now(&proxy).await, "LOCK INSTANCE FOR BACKUP pins");
    conn.query_drop("UNLOCK TABLES").await.unwrap();
    assert_eq!(
        backup_locks(),
        Some(1),
        "UNLOCK TABLES leaves the backup lock held"
    );
    assert!(pinned_now(&proxy).await, "UNLOCK TABLES does not unpin it");

    conn.query_drop("UNLOCK INSTANCE").await.unwrap();
    assert!(!pinned_now(&proxy).await, "UNLOCK INSTANCE unpins");
    let still: Option<i64> = conn.query_first("SELECT 7").await.unwrap();
    assert_eq!(still, Some(7));
}
