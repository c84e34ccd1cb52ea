//! Records the answers the benchmark replays (`HOT_PATH_CAPTURE=1`): a real MariaDB
//! from the testbed, logged in to through the proxy's own backend login (so session
//! tracking is on as in production) with a C client's capabilities, a sysbench table
//! of 1,000 rows, and the raw bytes of each answer as they came off the socket.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use switchyard::protocol::codec::write_packet;
use switchyard::protocol::constants::*;
use switchyard::protocol::credential::Secret;
use switchyard::proxy::response::Expect;
use switchyard::proxy::state::SessionState;
use switchyard::proxy::upstream::{self, Login, Upstream, RELAYED_MARIADB_CAPS};
use switchyard::testbed::{Flavor, APP_PASSWORD, APP_USER};

use super::data::{self, Answer, Values};
use super::walk::walk;
use crate::common::bed;

/// What MariaDB Connector/C (sysbench, the `mariadb` client) asks for: EOF packets
/// after column definitions, no `CLIENT_DEPRECATE_EOF`.
const C_CLIENT_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_LOCAL_FILES
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_SESSION_TRACK;

/// Starts a server, records the answers, writes the capture file, returns the server
/// version.
pub fn capture() -> Result<String, String> {
    let pair = bed::pair(Flavor::MariaDb, &[])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut answers = runtime.block_on(record(&pair.blue.addr()))?;
    let version = pair.blue.build().version().map_err(|e| e.to_string())?;
    // The server's version travels with its answers, for the report.
    answers.push(Answer {
        name: "version".into(),
        caps: 0,
        mariadb_caps: 0,
        wire: version.clone().into_bytes(),
    });
    data::write(&answers)?;
    Ok(version)
}

async fn record(address: &str) -> Result<Vec<Answer>, String> {
    let login = Login {
        user: APP_USER.into(),
        secret: Secret::Password(APP_PASSWORD.as_bytes().into()),
        database: Some("sbtest".into()),
        caps: C_CLIENT_CAPS,
        mariadb_caps: RELAYED_MARIADB_CAPS,
        charset: 45,
        max_packet: 16 << 20,
        attrs: None,
        client_addrs: None,
    };
    let timeout = std::time::Duration::from_secs(10);
    let mut up = upstream::connect(address, None, &login, timeout, false)
        .await
        .map_err(|e| e.to_string())?;
    let mut answers = Vec::new();
    query(&mut up, "DROP TABLE IF EXISTS sbtest1").await?;
    query(&mut up, data::CREATE_TABLE).await?;
    let mut values = Values::new();
    for first in (1..=1000).step_by(100) {
        query(
            &mut up,
            &data::insert(&mut values, first, |_, rows| rows == 100),
        )
        .await?;
    }
    for (name, sql) in [
        ("text_1_row", "SELECT c FROM sbtest1 WHERE id=471"),
        (
            "text_1000_rows",
            "SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 1000",
        ),
        ("ok_set_names", "SET NAMES utf8mb4"),
    ] {
        let wire = query(&mut up, sql).await?;
        answers.push(answer(&up, name, wire));
    }
    let prepared = exchange(
        &mut up,
        COM_STMT_PREPARE,
        b"SELECT id, k, c, pad FROM sbtest1 WHERE id BETWEEN ? AND ?",
        Expect::Prepare,
    )
    .await?;
    let id = prepared.get(5..9).ok_or("short prepare answer")?;
    // Statement id, no cursor, 1 iteration, null bitmap, types bound: two LONGs 1, 100.
    let mut execute = id.to_vec();
    execute.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, MYSQL_TYPE_LONG, 0, MYSQL_TYPE_LONG, 0]);
    execute.extend_from_slice(&1i32.to_le_bytes());
    execute.extend_from_slice(&100i32.to_le_bytes());
    let rows = exchange(&mut up, COM_STMT_EXECUTE, &execute, Expect::ResultSets).await?;
    answers.push(answer(&up, "binary_100_rows", rows));
    Ok(answers)
}

const MYSQL_TYPE_LONG: u8 = 3;

fn answer(up: &Upstream, name: &str, wire: Vec<u8>) -> Answer {
    Answer {
        name: name.to_owned(),
        caps: up.caps,
        mariadb_caps: up.mariadb_caps,
        wire,
    }
}

async fn query(up: &mut Upstream, sql: &str) -> Result<Vec<u8>, String> {
    exchange(up, COM_QUERY, sql.as_bytes(), Expect::ResultSets).await
}

/// Sends one command and reads its whole answer; an ERR answer is an error.
async fn exchange(
    up: &mut Upstream,
    command: u8,
    body: &[u8],
    expect: Expect,
) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    write_packet(&mut out, 0, &[&[command][..], body].concat());
    up.stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut state = SessionState::new(None, 45);
    loop {
        if let Some(end) = walk(&up.buf, expect, up.caps, up.mariadb_caps, &mut state)? {
            let wire = up.buf.split_to(end).to_vec();
            if wire.get(4) == Some(&0xFF) {
                return Err(format!(
                    "the server refused: {}",
                    String::from_utf8_lossy(&wire)
                ));
            }
            return Ok(wire);
        }
        if up
            .stream
            .read_buf(&mut up.buf)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("the server closed the connection".into());
        }
    }
}
