//! Clients and backends that misbehave: garbage and malformed handshakes, oversized
//! packets, clients that vanish mid-result, a backend that goes away, the connection
//! cap, silent clients and replication commands. In every case the proxy answers with
//! an ERR or closes that one connection, and everyone else carries on.
//!
//! The misbehaving clients speak raw bytes over a blocking `TcpStream` (see [`raw`]);
//! the well-behaved ones are `mysql_async`.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::testbed::{APP_PASSWORD, APP_USER};

use raw::{err_code, Raw};

/// Longest the tests wait for an answer or a close before calling it a hang (a guard,
/// not a timing assertion).
const HANG_GUARD: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------
// Helpers: mysql_async clients, background load
// ---------------------------------------------------------------------------------

fn opts(addr: &str) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("numeric port"))
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("test"))
        .prefer_socket(false)
}

async fn app(addr: &str) -> Conn {
    Conn::new(opts(addr))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as app: {e}"))
}

/// A new session through `addr` runs a query.
async fn fresh_session_works(addr: &str) {
    let mut conn = app(addr).await;
    let n: Option<i64> = conn.query_first("SELECT 6 * 7").await.unwrap();
    assert_eq!(n, Some(42));
    conn.disconnect().await.unwrap();
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// A well-behaved session that keeps querying in a tokio task while a test abuses the
/// proxy from the test's own thread.
struct Background {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<u64, String>>,
}

impl Background {
    async fn start(addr: &str) -> Background {
        let mut conn = app(addr).await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let done_count = Arc::new(AtomicU64::new(0));
        let counter = done_count.clone();
        let task = tokio::spawn(async move {
            let mut done = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let got: Option<(i64, String)> = conn
                    .exec_first("SELECT ?, REPEAT('b', ?)", (done as i64, 100))
                    .await
                    .map_err(|e| format!("background query {done}: {e}"))?;
                if got != Some((done as i64, "b".repeat(100))) {
                    return Err(format!("background query {done} answered {got:?}"));
                }
                done += 1;
                counter.store(done, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            conn.disconnect().await.map_err(|e| e.to_string())?;
            Ok(done)
        });
        Background {
            stop,
            done: done_count,
            task,
        }
    }

    /// Waits for one more query to be answered (the session carries on after whatever
    /// the test did), stops the load, and panics if any of its queries failed.
    async fn finish(self) {
        let before = self.done.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.done.load(Ordering::Relaxed) == before
            && !self.task.is_finished()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let done = self
            .task
            .await
            .expect("background task")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            done > before,
            "the background session answered nothing after {before} queries"
        );
    }
}

// ---------------------------------------------------------------------------------
// The connection phase
// ---------------------------------------------------------------------------------

/// What a misbehaving client saw after its last bytes.
#[derive(Debug)]
struct Outcome {
    /// Payloads received after the greeting.
    answers: Vec<Vec<u8>>,
    /// The proxy closed the connection (rather than the guard expiring).
    closed: bool,
}

/// Connects, optionally reads the greeting, sends `bytes`, half-closes, and collects
/// everything the proxy says until it closes.
fn send_and_collect(
    addr: &str,
    bytes: &[u8],
    read_greeting_first: bool,
    half_close: bool,
) -> Outcome {
    let mut raw = Raw::connect(addr).expect("connect to the proxy");
    if read_greeting_first {
        let (_, greeting) = raw.read_packet().expect("greeting");
        assert_eq!(greeting.first(), Some(&0x0a), "greeting");
    }
    let _ = raw.stream.write_all(bytes);
    if half_close {
        let _ = raw.stream.shutdown(Shutdown::Write);
    }
    let (mut answers, closed) = raw.read_until_closed();
    if !read_greeting_first && answers.first().and_then(|p| p.first()) == Some(&0x0a) {
        answers.remove(0);
    }
    Outcome { answers, closed }
}

/// The proxy said nothing but an ERR (or nothing) and closed.
fn assert_refused(what: &str, outcome: &Outcome) {
    assert!(
        outcome.closed,
        "{what}: the proxy neither closed nor answered: {outcome:?}"
    );
    assert!(
        outcome.answers.len() <= 1,
        "{what}: more than one answer: {outcome:?}"
    );
    if let Some(p) = outcome.answers.first() {
        assert_eq!(
            p.first(),
            Some(&0xFF),
            "{what}: answer is not an ERR: {outcome:?}"
        );
    }
}

fn pseudo_random(len: usize, mut seed: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_response_is_refused() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");
    let background = Background::start(&proxy.addr).await;

    let http = b"GET / HTTP/1.1\r\nHost: db\r\n\r\n".to_vec();
    let mut huge_header = vec![0xFF, 0xFF, 0xFF, 1];
    huge_header.extend(pseudo_random(100, 7));
    let mut bad_payload = vec![60, 0, 0, 1];
    bad_payload.extend([0xAB; 60]);
    let mut pre_41 = vec![32, 0, 0, 1];
    pre_41.extend([0x05, 0x00, 0, 0]);
    pre_41.extend([0; 28]);
    let mut ssl_request = vec![32, 0, 0, 1];
    ssl_request.extend((raw::BASE_CAPS | raw::CLIENT_SSL).to_le_bytes());
    ssl_request.extend([0, 0, 0, 1, 33]);
    ssl_request.extend([0; 23]);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("HTTP request before the greeting", http.clone(), false),
        ("HTTP request instead of the response", http, true),
        ("random bytes", pseudo_random(300, 42), true),
        (
            "random bytes before the greeting",
            pseudo_random(5000, 9),
            false,
        ),
        ("header announcing 16 MiB", huge_header, true),
        ("valid header, garbage payload", bad_payload, true),
        ("empty packet", vec![0, 0, 0, 1], true),
        ("pre-4.1 handshake response", pre_41, true),
        ("SSL request (TLS is not offered)", ssl_request, true),
        ("zeros", vec![0; 1000], true),
    ];
    let mut codes = Vec::new();
    for (what, bytes, after_greeting) in &cases {
        let outcome = send_and_collect(&proxy.addr, bytes, *after_greeting, true);
        assert_refused(what, &outcome);
        codes.push((*what, outcome.answers.first().and_then(|p| err_code(p))));
    }
    // Where the proxy did answer, it said something a client understands.
    for (what, code) in &codes {
        if let Some(code) = code {
            assert!(
                [1043, 1153, 1156, 1158].contains(code),
                "{what}: unexpected error code {code}"
            );
        }
    }

    background.finish().await;
    fresh_session_works(&proxy.addr).await;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

#[test]
fn handshake_response_with_a_wrong_sequence_id_gets_1156() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");

    for seq in [0u8, 2, 3, 200] {
        let mut raw = Raw::connect(&proxy.addr).unwrap();
        let greeting = raw.greeting().unwrap();
        assert_eq!(greeting.plugin, "mysql_native_password");
        assert_ne!(greeting.connection_id, 0);
        let response = raw::handshake_response(
            APP_USER,
            &raw::native_token(APP_PASSWORD, &greeting.scramble),
            Some("test"),
            "mysql_native_password",
        );
        raw.write_packet(seq, &response).unwrap();
        let (answers, closed) = raw.read_until_closed();
        assert!(closed, "seq {seq}: connection left open: {answers:?}");
        assert_eq!(answers.len(), 1, "seq {seq}: {answers:?}");
        assert_eq!(err_code(&answers[0]), Some(1156), "seq {seq}: {answers:?}");
    }

    // The same response with the right sequence id logs in.
    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
    assert_eq!(
        raw.query("SELECT 1").unwrap(),
        vec![vec![Some("1".to_owned())]]
    );
    assert!(proxy.is_running());
}

#[test]
fn truncated_handshake_response_gets_1043_or_a_close() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");
    let full =
        raw::handshake_response(APP_USER, &[0x11; 20], Some("test"), "mysql_native_password");

    // Complete packets whose payload stops early: at the filler, in the user name
    // (no NUL), in the auth data.
    for cut in [4, 20, 33, 34, 38, 42] {
        let mut raw = Raw::connect(&proxy.addr).unwrap();
        raw.greeting().unwrap();
        raw.write_packet(1, &full[..cut]).unwrap();
        let (answers, closed) = raw.read_until_closed();
        assert!(closed, "cut at {cut}: connection left open: {answers:?}");
        assert!(answers.len() <= 1, "cut at {cut}: {answers:?}");
        if let Some(p) = answers.first() {
            assert_eq!(err_code(p), Some(1043), "cut at {cut}: {answers:?}");
        }
    }

    // A header promising more than is sent, then the client hangs up.
    let mut short = Vec::new();
    short.extend_from_slice(&(full.len() as u32).to_le_bytes()[..3]);
    short.push(1);
    short.extend_from_slice(&full[..full.len() / 2]);
    let outcome = send_and_collect(&proxy.addr, &short, true, true);
    assert_refused("half a packet", &outcome);

    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
    assert_eq!(
        raw.query("SELECT 2").unwrap(),
        vec![vec![Some("2".to_owned())]]
    );
    assert!(proxy.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_closed_after_the_handshake_timeout() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("handshake_timeout", "\"1s\"")
        .start();
    let background = Background::start(&proxy.addr).await;

    // Connects and says nothing, having read the greeting or not.
    for read_greeting in [true, false] {
        let mut raw = Raw::connect(&proxy.addr).unwrap();
        if read_greeting {
            raw.greeting().unwrap();
        }
        let (answers, closed) = raw.read_until_closed();
        assert!(
            closed,
            "silent client (greeting read: {read_greeting}) not closed"
        );
        assert!(
            answers
                .iter()
                .all(|p| matches!(p.first(), Some(0x0a | 0xFF))),
            "{answers:?}"
        );
    }
    // Sends half a handshake response and stalls.
    let mut raw = Raw::connect(&proxy.addr).unwrap();
    raw.greeting().unwrap();
    let response = raw::handshake_response(APP_USER, &[1; 20], None, "mysql_native_password");
    let mut partial = Vec::new();
    partial.extend_from_slice(&(response.len() as u32).to_le_bytes()[..3]);
    partial.push(1);
    partial.extend_from_slice(&response[..10]);
    raw.stream.write_all(&partial).unwrap();
    let (answers, closed) = raw.read_until_closed();
    assert!(closed, "stalled client not closed: {answers:?}");

    // The timeout is for logging in only: a logged-in session may stay idle longer.
    let mut idle = app(&proxy.addr).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let n: Option<i64> = idle.query_first("SELECT 5").await.unwrap();
    assert_eq!(n, Some(5));

    background.finish().await;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

/// A logged-in client that begins a packet and stalls gets ERR 1159 once
/// `net_read_timeout` has passed and is closed (a server closes it too, logging
/// "Got timeout reading communication packets"); a session idle *between* commands
/// for longer is left alone, and other sessions carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_begun_and_not_finished_gets_1159_after_net_read_timeout() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("net_read_timeout", "\"1s\"")
        .start();
    let background = Background::start(&proxy.addr).await;
    let mut idle = app(&proxy.addr).await;

    let stalls: [(&str, &[u8]); 3] = [
        ("16 MiB announced, 4 bytes sent", b"\xff\xff\xff\x00\x03SEL"),
        ("a small command half sent", b"\x10\x00\x00\x00\x03SEL"),
        ("half a packet header", b"\x10\x00"),
    ];
    for (what, bytes) in stalls {
        let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD)
            .unwrap_or_else(|e| panic!("login: {e:?}"));
        raw.stream.write_all(bytes).unwrap();
        let (answers, closed) = raw.read_until_closed();
        assert!(closed, "{what}: the session was not closed: {answers:?}");
        let [answer] = &answers[..] else {
            panic!("{what}: expected one ERR, got {answers:?}");
        };
        assert_eq!(err_code(answer), Some(1159), "{what}: {answer:?}");
        let text = String::from_utf8_lossy(answer);
        assert!(
            text.contains("#08S01") && text.contains("Got timeout reading communication packets"),
            "{what}: {text}"
        );
    }

    // COM_CHANGE_USER asking for another plugin: the proxy switches it to
    // mysql_native_password and waits for the answer — bounded the same way.
    let mut raw =
        raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap_or_else(|e| panic!("login: {e:?}"));
    let mut change_user = vec![0x11];
    change_user.extend(APP_USER.as_bytes());
    change_user.extend([0, 0]); // user's NUL, an empty auth response
    change_user.extend(b"test\0");
    change_user.extend([33, 0]);
    change_user.extend(b"caching_sha2_password\0");
    raw.write_packet(0, &change_user).unwrap();
    let (answers, closed) = raw.read_until_closed();
    assert!(
        closed,
        "change user: the session was not closed: {answers:?}"
    );
    let [switch, answer] = &answers[..] else {
        panic!("change user: expected an auth switch and an ERR, got {answers:?}");
    };
    assert_eq!(switch.first(), Some(&0xfe), "{switch:?}");
    assert_eq!(err_code(answer), Some(1159), "change user: {answer:?}");

    // Idle between commands for longer than the timeout: not a packet begun.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n: Option<i64> = idle.query_first("SELECT 5").await.unwrap();
    assert_eq!(n, Some(5));

    background.finish().await;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
    assert!(
        proxy.log().contains("net_read_timeout"),
        "the timeout is not logged:\n{}",
        proxy.log()
    );
}

/// A client that asks for compression or TLS the greeting did not offer (some compress
/// whenever they asked, without looking) gets ERR 1043 naming what it asked for, and
/// is closed at once — not left hanging on bytes framed differently: zlib with
/// `compression = false`, zstd in front of MariaDB, TLS without `[tls]`. An SSLRequest
/// to the proxy (which has no TLS) gets what a MariaDB server without TLS answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_capabilities_not_offered_are_refused_not_hung() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("compression", "false")
        .start();
    let background = Background::start(&proxy.addr).await;

    for (bit, name) in [
        (1u32 << 5, "CLIENT_COMPRESS"),
        (1 << 26, "CLIENT_ZSTD_COMPRESSION_ALGORITHM"),
        (raw::CLIENT_SSL, "CLIENT_SSL"),
    ] {
        let mut client = Raw::connect(&proxy.addr).unwrap();
        let greeting = client.greeting().unwrap();
        let token = raw::native_token(APP_PASSWORD, &greeting.scramble);
        let mut response =
            raw::handshake_response(APP_USER, &token, Some("test"), "mysql_native_password");
        let caps = u32::from_le_bytes([response[0], response[1], response[2], response[3]]);
        response[..4].copy_from_slice(&(caps | bit).to_le_bytes());
        client.write_packet(1, &response).unwrap();
        let (answers, closed) = client.read_until_closed();
        assert!(closed, "{name}: not closed: {answers:?}");
        let [answer] = &answers[..] else {
            panic!("{name}: expected one ERR, got {answers:?}");
        };
        let text = String::from_utf8_lossy(answer);
        assert_eq!(err_code(answer), Some(1043), "{name}: {text}");
        assert!(
            text.contains(name),
            "{name}: the ERR does not say what: {text}"
        );
    }

    // An SSLRequest: the same code, SQLSTATE and sequence id as the server's own.
    assert_eq!(
        pair.blue.sql("SELECT @@have_ssl").unwrap().trim(),
        "DISABLED"
    );
    let mut ssl_request = (raw::BASE_CAPS | raw::CLIENT_SSL).to_le_bytes().to_vec();
    ssl_request.extend([0, 0, 0, 1, 33]);
    ssl_request.extend([0; 23]);
    let mut answers = Vec::new();
    for addr in [pair.blue.addr(), proxy.addr.clone()] {
        let mut client = Raw::connect(&addr).unwrap();
        client.greeting().unwrap();
        client.write_packet(1, &ssl_request).unwrap();
        let (seq, answer) = client.read_packet().unwrap();
        let (rest, closed) = client.read_until_closed();
        assert!(closed && rest.is_empty(), "{addr}: {rest:?}");
        answers.push((seq, err_code(&answer), answer.get(3..9).map(<[u8]>::to_vec)));
    }
    assert_eq!(
        answers[1], answers[0],
        "proxy vs server (seq, code, #SQLSTATE)"
    );
    assert_eq!(answers[0].1, Some(1043));

    background.finish().await;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

#[test]
fn the_connection_above_max_client_connections_gets_1040() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("max_client_connections", "3")
        .start();

    // The readiness probe's session may still hold a slot for a moment: retry until
    // three sessions are in.
    let mut held = Vec::new();
    let mut last = String::new();
    let deadline = Instant::now() + HANG_GUARD;
    while held.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "could not open 3 sessions (last refusal: {last}):\n{}",
            proxy.log()
        );
        match raw::login(&proxy.addr, APP_USER, APP_PASSWORD) {
            Ok(raw) => held.push(raw),
            Err(e) => {
                last = e.detail;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    // The fourth is refused before any greeting.
    for _ in 0..2 {
        let mut fourth = Raw::connect(&proxy.addr).unwrap();
        let (seq, first) = fourth.read_packet().expect("an answer, not a hang");
        assert_eq!(
            err_code(&first),
            Some(1040),
            "fourth connection got {first:?}"
        );
        assert_eq!(seq, 0);
        let (rest, closed) = fourth.read_until_closed();
        assert!(closed && rest.is_empty(), "{rest:?}");
    }
    // The three still work.
    for (i, raw) in held.iter_mut().enumerate() {
        assert_eq!(
            raw.query(&format!("SELECT {i}")).unwrap(),
            vec![vec![Some(i.to_string())]]
        );
    }
    // One leaves (COM_QUIT); a new one gets in.
    let mut leaving = held.pop().unwrap();
    leaving.write_packet(0, &[0x01]).unwrap();
    drop(leaving);
    let mut admitted = None;
    while admitted.is_none() {
        assert!(
            Instant::now() < deadline + HANG_GUARD,
            "no slot freed (last refusal: {last}):\n{}",
            proxy.log()
        );
        match raw::login(&proxy.addr, APP_USER, APP_PASSWORD) {
            Ok(raw) => admitted = Some(raw),
            Err(e) => {
                last = e.detail;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let mut admitted = admitted.unwrap();
    assert_eq!(
        admitted.query("SELECT 'in'").unwrap(),
        vec![vec![Some("in".to_owned())]]
    );
    assert!(proxy.is_running());
}

// ---------------------------------------------------------------------------------
// The command phase
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_above_max_packet_size_gets_1153_and_a_close() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("max_packet_size", "\"1MiB\"")
        .start();
    let background = Background::start(&proxy.addr).await;

    // Headers announcing 2 MiB (one chunk) and 16 MiB (a chunk that continues); only
    // a few bytes of the payload follow, and the client keeps the socket open.
    for announced in [2usize << 20, 0xFF_FFFF, (1 << 20) + 1] {
        let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(announced as u32).to_le_bytes()[..3]);
        bytes.push(0);
        bytes.push(0x03);
        bytes.extend_from_slice(b"SELECT '");
        bytes.extend([b'a'; 1000]);
        raw.stream.write_all(&bytes).unwrap();
        let (answers, closed) = raw.read_until_closed();
        assert!(
            closed,
            "announced {announced}: connection left open: {answers:?}"
        );
        assert_eq!(answers.len(), 1, "announced {announced}: {answers:?}");
        assert_eq!(
            err_code(&answers[0]),
            Some(1153),
            "announced {announced}: {answers:?}"
        );
    }

    // Just under the limit is fine.
    let mut conn = app(&proxy.addr).await;
    let literal = "y".repeat((1 << 20) - 100);
    let len: Option<u64> = conn
        .query_first(format!("SELECT LENGTH('{literal}')"))
        .await
        .unwrap();
    assert_eq!(len, Some(literal.len() as u64));
    conn.disconnect().await.unwrap();

    background.finish().await;
    fresh_session_works(&proxy.addr).await;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

#[test]
fn the_size_limit_counts_every_chunk_of_a_split_packet() {
    let pair = support::pair();
    let mut proxy = support::Proxy::builder(&pair)
        .proxy_key("max_packet_size", "\"20MiB\"")
        .start();

    // 17 MiB in two chunks: under the limit, relayed whole.
    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
    let literal = "z".repeat(17 << 20);
    let rows = raw
        .query(&format!("SELECT LENGTH('{literal}'), 'tail'"))
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some(literal.len().to_string()),
            Some("tail".to_owned())
        ]]
    );

    // 40 MiB in three chunks: the second chunk's header takes the total past 20 MiB.
    // The client sends the first chunk whole and only the start of the second.
    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
    let mut first_chunk = vec![0xFF, 0xFF, 0xFF, 0, 0x03];
    first_chunk.extend_from_slice(b"SELECT '");
    first_chunk.resize(4 + 0xFF_FFFF, b'w');
    raw.stream.write_all(&first_chunk).unwrap();
    raw.stream
        .write_all(&[0xFF, 0xFF, 0xFF, 1, b'w', b'w'])
        .unwrap();
    let (answers, closed) = raw.read_until_closed();
    assert!(closed, "connection left open: {answers:?}");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(err_code(&answers[0]), Some(1153), "{answers:?}");

    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
    assert_eq!(
        raw.query("SELECT 'ok'").unwrap(),
        vec![vec![Some("ok".to_owned())]]
    );
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_result_set_does_not_disturb_others() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");
    let background = Background::start(&proxy.addr).await;

    for round in 0..3 {
        let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();
        let mut query = vec![0x03];
        query.extend_from_slice(b"SELECT seq, repeat('x',1000) FROM seq_1_to_100000");
        raw.write_packet(0, &query).unwrap();
        for i in 0..(50 + round * 200) {
            let (_, p) = raw
                .read_packet()
                .unwrap_or_else(|e| panic!("round {round}, packet {i}: {e}"));
            assert_ne!(p.first(), Some(&0xFF), "round {round}: {p:?}");
        }
        drop(raw); // unread data in the socket: the kernel resets the connection
    }

    // The backend threads serving those clients stop too.
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let running = pair
            .blue
            .sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT seq, repeat%'")
            .unwrap();
        if running.trim() == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "blue still runs {} abandoned queries",
            running.trim()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    background.finish().await;
    fresh_session_works(&proxy.addr).await;
    // A full big result still comes through whole.
    let mut conn = app(&proxy.addr).await;
    let rows: Vec<(u64, String)> = conn
        .query("SELECT seq, repeat('x',1000) FROM seq_1_to_100000")
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows.last().map(|r| r.0), Some(100_000));
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
}

#[tokio::test]
async fn a_vanished_backend_gives_errors_not_hangs_and_recovery_follows() {
    let mut pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");
    let mut idle = app(&proxy.addr).await;
    let n: Option<i64> = idle.query_first("SELECT 1").await.unwrap();
    assert_eq!(n, Some(1));

    pair.blue.stop();

    let next = tokio::time::timeout(HANG_GUARD, idle.query_drop("SELECT 2"))
        .await
        .expect("a query on a session whose backend vanished must not hang");
    assert!(next.is_err(), "a query succeeded with blue stopped");

    let refused = tokio::time::timeout(HANG_GUARD, Conn::new(opts(&proxy.addr)))
        .await
        .expect("a new connection must not hang while blue is down");
    let err = refused.expect_err("a new session cannot work with blue down");
    assert_eq!(server_code(&err), Some(1105), "{err}");
    // The same, byte by byte: the ERR comes after the client's login.
    let raw_err = raw::login(&proxy.addr, APP_USER, APP_PASSWORD)
        .err()
        .expect("refused");
    assert_eq!(raw_err.code, Some(1105), "{raw_err:?}");
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());

    pair.blue.start().expect("restart blue");
    fresh_session_works(&proxy.addr).await;
    let mut conn = app(&proxy.addr).await;
    conn.query_drop("CREATE TABLE test.after (x INT)")
        .await
        .unwrap();
    conn.exec_drop("INSERT INTO test.after VALUES (?)", (1,))
        .await
        .unwrap();
    let x: Option<i64> = conn.query_first("SELECT x FROM test.after").await.unwrap();
    assert_eq!(x, Some(1));
    assert!(proxy.is_running());
}

#[test]
fn replication_commands_get_1235_and_the_session_continues() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");
    let mut raw = raw::login(&proxy.addr, APP_USER, APP_PASSWORD).unwrap();

    // COM_BINLOG_DUMP: position 4, no flags, server id 99, no file name.
    let mut dump = vec![0x12, 4, 0, 0, 0, 0, 0];
    dump.extend(99u32.to_le_bytes());
    // COM_REGISTER_SLAVE: server id, empty host/user/password, port, rank, master id.
    let mut register = vec![0x15];
    register.extend(99u32.to_le_bytes());
    register.extend([0, 0, 0]);
    register.extend(3306u16.to_le_bytes());
    register.extend([0; 8]);
    // COM_BINLOG_DUMP_GTID: flags, server id, empty file name, position 4, no data.
    let mut dump_gtid = vec![0x1E, 0, 0];
    dump_gtid.extend(99u32.to_le_bytes());
    dump_gtid.extend(0u32.to_le_bytes());
    dump_gtid.extend(4u64.to_le_bytes());
    dump_gtid.extend(0u32.to_le_bytes());

    for (what, packet) in [
        ("BINLOG_DUMP", dump),
        ("REGISTER_SLAVE", register),
        ("BINLOG_DUMP_GTID", dump_gtid),
    ] {
        raw.write_packet(0, &packet).unwrap();
        let (seq, answer) = raw.read_packet().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(err_code(&answer), Some(1235), "{what}: {answer:?}");
        assert_eq!(seq, 1, "{what}");
        assert_eq!(
            raw.query(&format!("SELECT '{what} refused'")).unwrap(),
            vec![vec![Some(format!("{what} refused"))]]
        );
    }
    let hosts = pair.blue.sql("SHOW SLAVE HOSTS").unwrap();
    assert!(
        !hosts.lines().any(|l| l.split('\t').next() == Some("99")),
        "a replica registered through the proxy: {hosts}"
    );
    assert!(proxy.is_running());
}

// ---------------------------------------------------------------------------------
// A raw protocol client
// ---------------------------------------------------------------------------------

/// Just enough of the client side of the protocol to misbehave on purpose: framing,
/// the greeting, HandshakeResponse41 with `mysql_native_password`, and text queries
/// (without CLIENT_DEPRECATE_EOF).
mod raw {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use sha1::{Digest, Sha1};

    pub const CLIENT_LONG_PASSWORD: u32 = 1;
    pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
    pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
    pub const CLIENT_SSL: u32 = 1 << 11;
    pub const CLIENT_TRANSACTIONS: u32 = 1 << 13;
    pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
    pub const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
    pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
    pub const BASE_CAPS: u32 = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH;

    /// How long one read may block before the test calls it a hang.
    const READ_GUARD: Duration = Duration::from_secs(20);

    pub struct Raw {
        pub stream: TcpStream,
    }

    #[derive(Debug)]
    pub struct Greeting {
        pub connection_id: u32,
        pub scramble: Vec<u8>,
        pub plugin: String,
    }

    /// An ERR the proxy sent, or the reason no answer came.
    #[derive(Debug)]
    pub struct Refusal {
        pub code: Option<u16>,
        pub detail: String,
    }

    impl Raw {
        pub fn connect(addr: &str) -> io::Result<Raw> {
            let stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(READ_GUARD))?;
            stream.set_write_timeout(Some(READ_GUARD))?;
            stream.set_nodelay(true)?;
            Ok(Raw { stream })
        }

        /// One logical packet (chunks joined); returns the first chunk's sequence id.
        pub fn read_packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
            let mut payload = Vec::new();
            let mut first_seq = None;
            loop {
                let mut head = [0u8; 4];
                self.stream.read_exact(&mut head)?;
                let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
                first_seq.get_or_insert(head[3]);
                let start = payload.len();
                payload.resize(start + len, 0);
                self.stream.read_exact(&mut payload[start..])?;
                if len < 0xFF_FFFF {
                    return Ok((first_seq.unwrap_or(0), payload));
                }
            }
        }

        /// Writes one logical packet, split into 0xFFFFFF-byte chunks (and an empty
        /// last chunk when the length is a multiple of that) as the protocol wants.
        pub fn write_packet(&mut self, mut seq: u8, payload: &[u8]) -> io::Result<()> {
            let mut out = Vec::with_capacity(payload.len() + 8);
            let mut rest = payload;
            loop {
                let (chunk, tail) = rest.split_at(rest.len().min(0xFF_FFFF));
                out.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
                out.push(seq);
                out.extend_from_slice(chunk);
                seq = seq.wrapping_add(1);
                if chunk.len() < 0xFF_FFFF {
                    return self.stream.write_all(&out);
                }
                rest = tail;
            }
        }

        /// Every packet until the peer closes; `false` if the guard expired first.
        pub fn read_until_closed(&mut self) -> (Vec<Vec<u8>>, bool) {
            let mut packets = Vec::new();
            loop {
                match self.read_packet() {
                    Ok((_, p)) => packets.push(p),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        return (packets, false)
                    }
                    // EOF, reset, or a close in the middle of a packet.
                    Err(_) => return (packets, true),
                }
            }
        }

        pub fn greeting(&mut self) -> io::Result<Greeting> {
            let (_, p) = self.read_packet()?;
            parse_greeting(&p).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("not a greeting: {p:?}"))
            })
        }

        /// A COM_QUERY whose answer is rows of text (or an OK): the rows, NULL as None.
        pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Refusal> {
            let mut packet = vec![0x03];
            packet.extend_from_slice(sql.as_bytes());
            self.write_packet(0, &packet).map_err(refusal_io)?;
            let (_, first) = self.read_packet().map_err(refusal_io)?;
            match first.first() {
                Some(0xFF) => return Err(refusal(&first)),
                Some(0x00) => return Ok(Vec::new()),
                _ => {}
            }
            let columns = usize::from(first[0]);
            for _ in 0..columns {
                self.read_packet().map_err(refusal_io)?;
            }
            let (_, eof) = self.read_packet().map_err(refusal_io)?;
            assert_eq!(eof.first(), Some(&0xFE), "EOF after column definitions");
            let mut rows = Vec::new();
            loop {
                let (_, p) = self.read_packet().map_err(refusal_io)?;
                match p.first() {
                    Some(0xFE) if p.len() < 9 => return Ok(rows),
                    Some(0xFF) => return Err(refusal(&p)),
                    _ => rows.push(parse_text_row(&p, columns)),
                }
            }
        }
    }

    fn refusal(p: &[u8]) -> Refusal {
        Refusal {
            code: err_code(p),
            detail: String::from_utf8_lossy(p.get(3..).unwrap_or_default()).into_owned(),
        }
    }

    fn refusal_io(e: io::Error) -> Refusal {
        Refusal {
            code: None,
            detail: e.to_string(),
        }
    }

    /// The error code of an ERR payload.
    pub fn err_code(p: &[u8]) -> Option<u16> {
        match p {
            [0xFF, a, b, ..] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    fn parse_text_row(p: &[u8], columns: usize) -> Vec<Option<String>> {
        let mut pos = 0;
        let mut row = Vec::new();
        for _ in 0..columns {
            if p[pos] == 0xFB {
                row.push(None);
                pos += 1;
                continue;
            }
            let (len, skip) = match p[pos] {
                0xFC => (usize::from(u16::from_le_bytes([p[pos + 1], p[pos + 2]])), 3),
                0xFD => (
                    u32::from_le_bytes([p[pos + 1], p[pos + 2], p[pos + 3], 0]) as usize,
                    4,
                ),
                n => (usize::from(n), 1),
            };
            pos += skip;
            row.push(Some(
                String::from_utf8_lossy(&p[pos..pos + len]).into_owned(),
            ));
            pos += len;
        }
        row
    }

    /// Handshake v10 → (connection id, 20-byte scramble, plugin name).
    pub fn parse_greeting(p: &[u8]) -> Option<Greeting> {
        if p.first() != Some(&0x0a) {
            return None;
        }
        let version_end = 1 + p[1..].iter().position(|b| *b == 0)?;
        let mut pos = version_end + 1;
        let connection_id = u32::from_le_bytes(p.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        let mut scramble = p.get(pos..pos + 8)?.to_vec();
        pos += 8 + 1 + 2 + 1 + 2 + 2; // filler, caps low, charset, status, caps high
        let auth_len = usize::from(*p.get(pos)?);
        pos += 1 + 10;
        let part2 = auth_len.saturating_sub(8).max(13);
        scramble.extend_from_slice(p.get(pos..pos + part2 - 1)?);
        pos += part2;
        let rest = p.get(pos..)?;
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        Some(Greeting {
            connection_id,
            scramble,
            plugin: String::from_utf8_lossy(&rest[..end]).into_owned(),
        })
    }

    /// SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw))); empty for an empty password.
    pub fn native_token(password: &str, scramble: &[u8]) -> Vec<u8> {
        if password.is_empty() {
            return Vec::new();
        }
        let stage1 = Sha1::digest(password.as_bytes());
        let stage2 = Sha1::digest(stage1);
        let mut h = Sha1::new();
        h.update(&scramble[..20]);
        h.update(stage2);
        let mix = h.finalize();
        stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
    }

    /// A HandshakeResponse41 payload (1-byte auth length, no attributes).
    pub fn handshake_response(user: &str, token: &[u8], db: Option<&str>, plugin: &str) -> Vec<u8> {
        let caps = BASE_CAPS
            | if db.is_some() {
                CLIENT_CONNECT_WITH_DB
            } else {
                0
            };
        let mut p = Vec::new();
        p.extend(caps.to_le_bytes());
        p.extend((16u32 << 20).to_le_bytes());
        p.push(33); // utf8_general_ci
        p.extend([0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(token.len() as u8);
        p.extend_from_slice(token);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }

    /// Logs in with `mysql_native_password` to database `test`; the ERR on refusal.
    pub fn login(addr: &str, user: &str, password: &str) -> Result<Raw, Refusal> {
        let mut raw = Raw::connect(addr).map_err(refusal_io)?;
        let (_, first) = raw.read_packet().map_err(refusal_io)?;
        let greeting = parse_greeting(&first).ok_or_else(|| refusal(&first))?;
        let token = native_token(password, &greeting.scramble);
        let response = handshake_response(user, &token, Some("test"), "mysql_native_password");
        raw.write_packet(1, &response).map_err(refusal_io)?;
        let (seq, answer) = raw.read_packet().map_err(refusal_io)?;
        match answer.first() {
            Some(0x00) if seq == 2 => Ok(raw),
            Some(0xFF) => Err(refusal(&answer)),
            _ => Err(Refusal {
                code: None,
                detail: format!("unexpected login answer (seq {seq}): {answer:?}"),
            }),
        }
    }
}
