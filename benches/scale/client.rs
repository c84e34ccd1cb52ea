//! The clients of the scale benchmark: mysql_async connections straight over TCP to a
//! port (never the server's Unix socket), which open in bulk, hold, run point selects
//! in a closed loop, or connect and quit as fast as they can.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use rand::Rng;
use switchyard::testbed::{APP_PASSWORD, APP_USER};

/// A query whose one row is ~200 KB: it grows a session's buffers before it idles.
const BIG_QUERY: &str = "SELECT REPEAT('x', 204800)";
/// Rows of the point-select table.
pub const POINT_ROWS: usize = 1000;
/// A session that is not logged in by then counts as refused (a proxy out of
/// descriptors leaves it in its accept queue); long enough that a loaded machine's
/// slow login is not taken for the limit.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Sessions opened at once while a wave fills.
const OPENERS: usize = 64;

/// The app account on `127.0.0.1:port`, over TCP, with no set-up queries of the
/// client's own (mysql_async would otherwise read settings and switch to the
/// server's socket).
pub fn opts(port: u16) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("app"))
        .prefer_socket(false)
        .max_allowed_packet(Some(64 << 20))
        .wait_timeout(Some(28_800))
        .into()
}

/// Creates the point-select table through `port` (the server itself).
pub async fn create_point_table(port: u16) -> Result<(), String> {
    let mut conn = Conn::new(opts(port)).await.map_err(|e| e.to_string())?;
    conn.query_drop("CREATE TABLE IF NOT EXISTS scale_point (id INT PRIMARY KEY, v VARCHAR(32))")
        .await
        .map_err(|e| e.to_string())?;
    let values: Vec<String> = (1..=POINT_ROWS)
        .map(|i| format!("({i}, 'row {i}')"))
        .collect();
    conn.query_drop(format!(
        "REPLACE INTO scale_point VALUES {}",
        values.join(",")
    ))
    .await
    .map_err(|e| e.to_string())?;
    conn.disconnect().await.map_err(|e| e.to_string())
}

async fn open_one(port: u16) -> Result<Conn, String> {
    let mut conn = Conn::new(opts(port)).await.map_err(|e| e.to_string())?;
    conn.query_drop(BIG_QUERY)
        .await
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Opens sessions on `port` (each runs [`BIG_QUERY`]) until `held` has `target` of
/// them or one fails; then opens no more. Returns the first failure.
pub async fn open_up_to(port: u16, held: &mut Vec<Conn>, target: usize) -> Option<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut results = stream::iter(held.len()..target)
        .map(|_| {
            let stop = stop.clone();
            async move {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                let opened = match tokio::time::timeout(OPEN_TIMEOUT, open_one(port)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("not logged in within {OPEN_TIMEOUT:?}")),
                };
                if opened.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                Some(opened)
            }
        })
        .buffer_unordered(OPENERS);
    let mut failure = None;
    while let Some(result) = results.next().await {
        match result {
            Some(Ok(conn)) => held.push(conn),
            Some(Err(e)) => {
                failure.get_or_insert(e);
            }
            None => {}
        }
    }
    failure
}

/// Closes `conns` (COM_QUIT each), many at once.
pub async fn close_all(conns: Vec<Conn>) {
    stream::iter(conns)
        .for_each_concurrent(256, |c| async move {
            let _ = c.disconnect().await;
        })
        .await;
}

/// What the active clients saw.
pub struct Latency {
    /// Per query, microseconds.
    pub micros: Vec<f64>,
    pub queries_per_sec: f64,
    pub errors: usize,
}

/// Each of `conns` runs primary-key selects back to back for `secs`.
pub async fn point_selects(conns: &mut [Conn], secs: f64) -> Latency {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let runs = conns.iter_mut().map(|conn| async move {
        let (mut micros, mut errors) = (Vec::new(), 0);
        while Instant::now() < deadline {
            let id = rand::thread_rng().gen_range(1..=POINT_ROWS);
            let start = Instant::now();
            let row: Result<Option<String>, _> = conn
                .query_first(format!("SELECT v FROM scale_point WHERE id = {id}"))
                .await;
            match row {
                Ok(Some(_)) => micros.push(start.elapsed().as_secs_f64() * 1e6),
                _ => errors += 1,
            }
        }
        (micros, errors)
    });
    let mut all = Latency {
        micros: Vec::new(),
        queries_per_sec: 0.0,
        errors: 0,
    };
    for (micros, errors) in futures_util::future::join_all(runs).await {
        all.micros.extend(micros);
        all.errors += errors;
    }
    all.queries_per_sec = all.micros.len() as f64 / secs;
    all
}

/// What connecting clients saw.
#[derive(Default)]
pub struct Setups {
    /// Connect + log in, per connection, milliseconds.
    pub connect_ms: Vec<f64>,
    /// Seconds measured.
    pub secs: f64,
    pub errors: usize,
    pub first_error: Option<String>,
}

impl Setups {
    pub fn per_sec(&self) -> f64 {
        self.connect_ms.len() as f64 / self.secs
    }

    /// Adds another measurement of the same target.
    pub fn merge(&mut self, other: Setups) {
        self.connect_ms.extend(other.connect_ms);
        self.secs += other.secs;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// `connectors` clients each connect, log in, run `SELECT 1` and quit, over and over
/// for `secs` (after as long again, at most 1 s, unmeasured when `warm_up`).
pub async fn setups(port: u16, connectors: usize, secs: f64, warm_up: bool) -> Setups {
    if warm_up {
        // The server's thread pool grows to the connectors.
        let _ = connect_loop(port, connectors, secs.min(1.0)).await;
    }
    connect_loop(port, connectors, secs).await
}

async fn connect_loop(port: u16, connectors: usize, secs: f64) -> Setups {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let runs = (0..connectors).map(|_| async move {
        let mut one = Setups::default();
        while Instant::now() < deadline {
            match setup_once(port).await {
                Ok(ms) => one.connect_ms.push(ms),
                Err(e) => {
                    one.errors += 1;
                    one.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        one
    });
    let mut all = Setups::default();
    for one in futures_util::future::join_all(runs).await {
        all.merge(one);
    }
    all.secs = start.elapsed().as_secs_f64();
    all
}

/// One connection's life; returns how long connecting and logging in took.
async fn setup_once(port: u16) -> Result<f64, String> {
    let start = Instant::now();
    let mut conn = Conn::new(opts(port)).await.map_err(|e| e.to_string())?;
    let connected = start.elapsed().as_secs_f64() * 1e3;
    conn.query_drop("SELECT 1")
        .await
        .map_err(|e| e.to_string())?;
    conn.disconnect().await.map_err(|e| e.to_string())?;
    Ok(connected)
}
