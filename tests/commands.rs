//! The less common commands, which none of the client libraries tested elsewhere send:
//! COM_PING, COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS, COM_SET_OPTION, cursors
//! (COM_STMT_EXECUTE with a read-only cursor, COM_STMT_FETCH, COM_STMT_RESET),
//! COM_STMT_SEND_LONG_DATA, MariaDB's COM_STMT_BULK_EXECUTE and progress reports. The
//! simple commands and SEND_LONG_DATA run against MySQL 9.7 too.
//!
//! Each script runs twice on fresh connections with the same capability flags — once
//! straight to blue, once through the proxy — with CLIENT_DEPRECATE_EOF off and on.
//! The raw client (see `support::raw`) walks every answer itself, and the test asserts
//! that the answer through the proxy is byte for byte the server's (the client asks for
//! no session tracking, so the proxy must hand on OK packets exactly as the server
//! would have sent them), then that `SELECT 1` still works on that connection — the
//! proxy found the end of every answer.

mod support;

use switchyard::protocol::constants::*;
use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

use support::raw::{assert_same_answers, hex, Answer, Raw, Reply, BASE_CAPS};
use support::Proxy;

for_each_flavor!(
    simple_commands_answer_as_the_server_does,
    send_long_data_answers_as_the_server_does,
);

/// The capability flags of one run.
fn caps(deprecate_eof: bool) -> u32 {
    if deprecate_eof {
        BASE_CAPS | CLIENT_DEPRECATE_EOF
    } else {
        BASE_CAPS
    }
}

/// Runs `script` directly against blue and through the proxy, with DEPRECATE_EOF off
/// and on, and compares the answers.
fn same_through_proxy(pair: &Pair, proxy: &Proxy, mariadb_caps: u32, script: fn(&mut Raw)) {
    // A login through the proxy first: on MySQL it fills the server's cache, which the
    // raw client's caching_sha2_password fast path needs directly.
    Raw::connect(&proxy.addr, APP_USER, APP_PASSWORD, BASE_CAPS, 0);
    for deprecate_eof in [false, true] {
        let run = |addr: &str| {
            let mut conn = Raw::connect(
                addr,
                APP_USER,
                APP_PASSWORD,
                caps(deprecate_eof),
                mariadb_caps,
            );
            script(&mut conn);
            conn.assert_in_step();
            conn.log
        };
        let direct = run(&pair.blue.addr());
        let proxied = run(&proxy.addr);
        assert_same_answers(&direct, &proxied);
    }
}

fn u32le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A command packet: the command byte, then `parts` in order.
fn cmd(code: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![code];
    for part in parts {
        p.extend_from_slice(part);
    }
    p
}

/// The rows of a one-result answer (packets between the column part and the end).
fn row_count(conn: &Raw, answer: &Answer, columns: usize) -> usize {
    let eofs = if conn.deprecate_eof() { 1 } else { 2 };
    answer.packets.len() - 1 - columns - eofs
}

// ---------------------------------------------------------------------------------
// PING, INIT_DB, FIELD_LIST, STATISTICS, SET_OPTION
// ---------------------------------------------------------------------------------

fn simple_commands(c: &mut Raw) {
    let ping = c.command("ping", &[COM_PING], Reply::One);
    assert_eq!(ping.last()[0], 0x00, "PING: {}", hex(&ping.wire));

    let init = c.command("init_db test", &cmd(COM_INIT_DB, &[b"test"]), Reply::One);
    assert_eq!(init.last()[0], 0x00, "INIT_DB test: {}", hex(&init.wire));
    let missing = c.command(
        "init_db missing",
        &cmd(COM_INIT_DB, &[b"no_such_db"]),
        Reply::One,
    );
    // 1044 (access denied) for a user without global privileges, else 1049.
    assert!(
        matches!(missing.err_code(), Some(1044 | 1049)),
        "INIT_DB no_such_db: {}",
        hex(&missing.wire)
    );

    c.query_ok(
        "CREATE TABLE test.cmd_fields \
         (id INT PRIMARY KEY, name VARCHAR(20) DEFAULT 'x', created DATETIME)",
    );
    let fields = c.command(
        "field_list",
        &cmd(COM_FIELD_LIST, &[b"cmd_fields\0"]),
        Reply::FieldList,
    );
    assert_eq!(
        fields.packets.len(),
        4,
        "3 definitions and the end: {}",
        hex(&fields.wire)
    );
    let no_table = c.command(
        "field_list missing",
        &cmd(COM_FIELD_LIST, &[b"no_such_table\0"]),
        Reply::FieldList,
    );
    assert_eq!(no_table.err_code(), Some(1146), "{}", hex(&no_table.wire));
    // Dropped again (not CREATE OR REPLACE, which MySQL lacks) so that every run
    // starts without it and the answers match.
    c.query_ok("DROP TABLE test.cmd_fields");

    let stats = c.command("statistics", &[COM_STATISTICS], Reply::One);
    assert_eq!(stats.packets.len(), 1);
    assert_eq!(stats.packets[0].seq, 1);
    assert!(
        stats.packets[0].payload.starts_with(b"Uptime"),
        "STATISTICS: {}",
        String::from_utf8_lossy(&stats.packets[0].payload)
    );
    c.log.last_mut().expect("logged").varies = true;

    // MYSQL_OPTION_MULTI_STATEMENTS_OFF = 1, _ON = 0.
    let off = c.command(
        "set_option off",
        &cmd(COM_SET_OPTION, &[&1u16.to_le_bytes()]),
        Reply::One,
    );
    assert_ne!(off.last()[0], 0xFF, "SET_OPTION off: {}", hex(&off.wire));
    let refused = c.query("SELECT 1; SELECT 2");
    assert_eq!(refused.err_code(), Some(1064), "{}", hex(&refused.wire));
    let on = c.command(
        "set_option on",
        &cmd(COM_SET_OPTION, &[&0u16.to_le_bytes()]),
        Reply::One,
    );
    assert_ne!(on.last()[0], 0xFF, "SET_OPTION on: {}", hex(&on.wire));
    let both = c.query("SELECT 1; SELECT 2");
    let rows: Vec<&[u8]> = both
        .packets
        .iter()
        .map(|p| &p.payload[..])
        .filter(|p| *p == [1, b'1'] || *p == [1, b'2'])
        .collect();
    assert_eq!(
        rows,
        [&[1, b'1'][..], &[1, b'2'][..]],
        "{}",
        hex(&both.wire)
    );

    let half = c.query("SELECT 1; SELECT * FROM test.no_such_table");
    assert_eq!(half.err_code(), Some(1146), "{}", hex(&half.wire));

    c.command("ping again", &[COM_PING], Reply::One);
}

fn simple_commands_answer_as_the_server_does(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    same_through_proxy(&pair, &proxy, 0, simple_commands);
}

// ---------------------------------------------------------------------------------
// Cursors: EXECUTE with a read-only cursor, FETCH, RESET
// ---------------------------------------------------------------------------------

const CURSOR_TYPE_READ_ONLY: u8 = 1;

fn execute_no_params(id: u32, flags: u8) -> Vec<u8> {
    cmd(COM_STMT_EXECUTE, &[&u32le(id), &[flags], &u32le(1)])
}

fn cursor(c: &mut Raw) {
    let dep = c.deprecate_eof();
    let id = c.prepare(
        "WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 25) \
         SELECT seq, repeat('x', seq) FROM s",
    );

    let opened = c.command(
        "execute with cursor",
        &execute_no_params(id, CURSOR_TYPE_READ_ONLY),
        Reply::Cursor,
    );
    let status = opened.final_status(dep);
    assert_ne!(
        status & SERVER_STATUS_CURSOR_EXISTS,
        0,
        "{}",
        hex(&opened.wire)
    );

    for (i, expected) in [10, 10, 5].into_iter().enumerate() {
        let fetch = cmd(COM_STMT_FETCH, &[&u32le(id), &u32le(10)]);
        let batch = c.command(&format!("fetch {i}"), &fetch, Reply::Rows);
        assert_eq!(
            batch.packets.len() - 1,
            expected,
            "fetch {i}: {}",
            hex(&batch.wire)
        );
        let last_row_sent = batch.final_status(dep) & SERVER_STATUS_LAST_ROW_SENT != 0;
        assert_eq!(last_row_sent, i == 2, "fetch {i}: {}", hex(&batch.wire));
    }

    let reset = c.command("reset", &cmd(COM_STMT_RESET, &[&u32le(id)]), Reply::One);
    assert_eq!(reset.last()[0], 0x00, "STMT_RESET: {}", hex(&reset.wire));
    let fetch = cmd(COM_STMT_FETCH, &[&u32le(id), &u32le(10)]);
    let closed = c.command("fetch after reset", &fetch, Reply::Rows);
    // ER_STMT_HAS_NO_OPEN_CURSOR; its message names the server's statement id.
    c.log.last_mut().expect("logged").varies = true;
    assert!(
        closed.err_code() == Some(1421),
        "no cursor after a reset: {}",
        hex(&closed.wire)
    );

    let all = c.command(
        "execute without cursor",
        &execute_no_params(id, 0),
        Reply::Results,
    );
    assert_eq!(row_count(c, &all, 2), 25, "{}", hex(&all.wire));
    c.command("close", &cmd(COM_STMT_CLOSE, &[&u32le(id)]), Reply::Nothing);

    // Rows bigger than the proxy's read chunk, fetched through a cursor.
    let id = c.prepare(
        "WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 3) \
         SELECT seq, repeat('y', 70000) FROM s",
    );
    c.command(
        "execute big with cursor",
        &execute_no_params(id, CURSOR_TYPE_READ_ONLY),
        Reply::Cursor,
    );
    for (i, expected) in [2, 1].into_iter().enumerate() {
        let fetch = cmd(COM_STMT_FETCH, &[&u32le(id), &u32le(2)]);
        let batch = c.command(&format!("fetch big {i}"), &fetch, Reply::Rows);
        assert_eq!(
            batch.packets.len() - 1,
            expected,
            "fetch big {i}: {}",
            hex(&batch.wire)
        );
    }
    c.command(
        "close big",
        &cmd(COM_STMT_CLOSE, &[&u32le(id)]),
        Reply::Nothing,
    );

    // Statements that do not exist (any more): ERR, and the session goes on.
    let unknown = [
        (
            "fetch",
            cmd(COM_STMT_FETCH, &[&u32le(id), &u32le(1)]),
            Reply::Rows,
        ),
        ("reset", cmd(COM_STMT_RESET, &[&u32le(id)]), Reply::One),
    ];
    for (what, payload, reply) in unknown {
        let unknown = c.command(&format!("{what} closed statement"), &payload, reply);
        // ER_UNKNOWN_STMT_HANDLER; its message names the server's statement id.
        c.log.last_mut().expect("logged").varies = true;
        assert_eq!(
            unknown.err_code(),
            Some(1243),
            "{what}: {}",
            hex(&unknown.wire)
        );
    }
}

/// MariaDB only: MySQL 9.7 itself answers the EXECUTE without a cursor that follows
/// a reset cursor with a result the raw client cannot walk (an OK after the column
/// definitions), directly as through the proxy.
#[test]
fn cursor_fetch_and_reset_answer_as_the_server_does() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    same_through_proxy(&pair, &proxy, 0, cursor);
}

// ---------------------------------------------------------------------------------
// SEND_LONG_DATA
// ---------------------------------------------------------------------------------

const LONG_DATA_LEN: usize = 100 * 1024;
const MYSQL_TYPE_BLOB: u8 = 0xFC;

fn long_data(c: &mut Raw) {
    let data: Vec<u8> = (0..LONG_DATA_LEN).map(|i| b'a' + (i % 26) as u8).collect();
    let id = c.prepare("SELECT ?");
    let pieces = [&data[..40_000], &data[40_000..80_000], &data[80_000..]];
    for (i, piece) in pieces.iter().enumerate() {
        let payload = cmd(
            COM_STMT_SEND_LONG_DATA,
            &[&u32le(id), &0u16.to_le_bytes(), piece],
        );
        c.command(&format!("send_long_data {i}"), &payload, Reply::Nothing);
    }
    // Null bitmap, new-params-bound, the parameter's type; its value came as long data.
    let execute = cmd(
        COM_STMT_EXECUTE,
        &[&u32le(id), &[0], &u32le(1), &[0x00, 1, MYSQL_TYPE_BLOB, 0]],
    );
    let answer = c.command("execute with long data", &execute, Reply::Results);
    assert_eq!(row_count(c, &answer, 1), 1, "{}", hex(&answer.wire));
    let row = &answer.packets[answer.packets.len() - 2].payload;
    assert!(
        row.ends_with(&data),
        "the row does not carry the long data: {}",
        hex(row)
    );
    c.command("close", &cmd(COM_STMT_CLOSE, &[&u32le(id)]), Reply::Nothing);
}

fn send_long_data_answers_as_the_server_does(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    same_through_proxy(&pair, &proxy, 0, long_data);
}

// ---------------------------------------------------------------------------------
// BULK_EXECUTE
// ---------------------------------------------------------------------------------

const BULK_ROWS: u32 = 100;
const SEND_TYPES_TO_SERVER: u16 = 128;
const MYSQL_TYPE_LONG: u8 = 3;
const MYSQL_TYPE_VAR_STRING: u8 = 253;
const INDICATOR_NONE: u8 = 0;

/// COM_STMT_BULK_EXECUTE inserting `BULK_ROWS` rows of (int, varchar).
fn bulk_insert(id: u32) -> Vec<u8> {
    let mut p = cmd(
        COM_STMT_BULK_EXECUTE,
        &[
            &u32le(id),
            &SEND_TYPES_TO_SERVER.to_le_bytes(),
            &[MYSQL_TYPE_LONG, 0, MYSQL_TYPE_VAR_STRING, 0],
        ],
    );
    for i in 1..=BULK_ROWS {
        p.push(INDICATOR_NONE);
        p.extend_from_slice(&i.to_le_bytes());
        let note = format!("note {i}");
        p.push(INDICATOR_NONE);
        p.push(note.len() as u8);
        p.extend_from_slice(note.as_bytes());
    }
    p
}

fn bulk(c: &mut Raw) {
    c.query_ok("CREATE OR REPLACE TABLE test.cmd_bulk (id INT PRIMARY KEY, note VARCHAR(40))");
    let id = c.prepare("INSERT INTO test.cmd_bulk VALUES (?, ?)");
    let answer = c.command("bulk_execute", &bulk_insert(id), Reply::Results);
    let ok = answer.last();
    assert_eq!(ok[0], 0x00, "BULK_EXECUTE: {}", String::from_utf8_lossy(ok));
    assert_eq!(ok[1], BULK_ROWS as u8, "affected rows: {}", hex(ok));
    let count = c.query_ok("SELECT COUNT(*), SUM(id) FROM test.cmd_bulk");
    let row = &count.packets[count.packets.len() - 2].payload;
    assert_eq!(row, b"\x03100\x045050", "{}", hex(&count.wire));
    let again = c.command("bulk_execute duplicate", &bulk_insert(id), Reply::Results);
    assert_eq!(again.err_code(), Some(1062), "{}", hex(&again.wire));
    c.command("close", &cmd(COM_STMT_CLOSE, &[&u32le(id)]), Reply::Nothing);
}

#[test]
fn bulk_execute_answers_as_the_server_does() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    same_through_proxy(&pair, &proxy, MARIADB_CLIENT_STMT_BULK_OPERATIONS, bulk);
}

// ---------------------------------------------------------------------------------
// Progress reports
// ---------------------------------------------------------------------------------

/// Rows for ALTER TABLE and LOAD DATA. The server sends its first progress report at
/// the first progress step, so a fraction of a second of work is enough.
const PROGRESS_ROWS: u32 = 20_000;

/// ALTER TABLE … ALGORITHM=COPY and LOAD DATA LOCAL INFILE with progress reports on;
/// their answers (logged as `varies`: the reports' numbers and count depend on timing).
fn progress(c: &mut Raw) -> Vec<Answer> {
    c.query_ok("SET SESSION progress_report_time = 1");
    c.query_ok("CREATE OR REPLACE TABLE test.cmd_progress (id INT PRIMARY KEY, note VARCHAR(40))");
    c.query_ok(&format!(
        "INSERT INTO test.cmd_progress SELECT seq, concat('row ', seq) FROM seq_1_to_{PROGRESS_ROWS}"
    ));
    let alter = c.query("ALTER TABLE test.cmd_progress ADD COLUMN extra INT, ALGORITHM=COPY");
    c.log.last_mut().expect("logged").varies = true;

    c.query_ok("CREATE OR REPLACE TABLE test.cmd_load (id INT PRIMARY KEY, note VARCHAR(40))");
    let csv: String = (1..=PROGRESS_ROWS)
        .map(|i| format!("{i},row {i}\n"))
        .collect();
    c.local_file = Some(csv.into_bytes());
    let load = c.query(
        "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE test.cmd_load FIELDS TERMINATED BY ','",
    );
    c.log.last_mut().expect("logged").varies = true;
    let count = c.query_ok("SELECT COUNT(*) FROM test.cmd_load");
    let row = &count.packets[count.packets.len() - 2].payload;
    assert_eq!(
        row,
        format!("\x05{PROGRESS_ROWS}").as_bytes(),
        "{}",
        hex(&count.wire)
    );
    vec![alter, load]
}

/// The payloads of an answer without its progress reports.
fn without_progress(answer: &Answer) -> Vec<Vec<u8>> {
    answer
        .packets
        .iter()
        .filter(|p| !p.payload.starts_with(&[0xFF, 0xFF, 0xFF]))
        .map(|p| p.payload.clone())
        .collect()
}

#[test]
fn progress_reports_reach_the_client() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    for deprecate_eof in [false, true] {
        let caps = caps(deprecate_eof) | CLIENT_LOCAL_FILES;
        let run = |addr: &str| {
            let mut conn =
                Raw::connect(addr, APP_USER, APP_PASSWORD, caps, MARIADB_CLIENT_PROGRESS);
            let answers = progress(&mut conn);
            conn.assert_in_step();
            (conn.log, answers)
        };
        let (direct_log, direct) = run(&pair.blue.addr());
        let (proxied_log, proxied) = run(&proxy.addr);
        assert_same_answers(&direct_log, &proxied_log);
        for (what, d, p) in [
            ("ALTER TABLE", &direct[0], &proxied[0]),
            ("LOAD DATA", &direct[1], &proxied[1]),
        ] {
            assert_eq!(
                d.err_code(),
                None,
                "{what}: {}",
                String::from_utf8_lossy(d.last())
            );
            assert_eq!(
                without_progress(d),
                without_progress(p),
                "{what} (deprecate_eof {deprecate_eof}), progress reports aside:\ndirect {}\nproxy  {}",
                hex(&d.wire),
                hex(&p.wire)
            );
            // Without a report from the server the test would compare nothing.
            assert!(
                d.progress_reports() > 0,
                "{what}: the server sent no progress report (is the global \
                 progress_report_time 0?): {}",
                hex(&d.wire)
            );
            assert!(
                p.progress_reports() > 0,
                "{what}: no progress report through the proxy: {}",
                hex(&p.wire)
            );
            eprintln!(
                "{what}: {} progress reports direct, {} through the proxy",
                d.progress_reports(),
                p.progress_reports()
            );
        }
    }
}
