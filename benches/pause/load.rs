//! The open-loop load: N client sessions through the proxy, each carrying state (a user
//! variable, a session variable, a prepared statement). Readers run a point select and
//! writers an INSERT with a unique id, each on a fixed schedule; a statement's latency
//! is measured from its *scheduled* time, so a stall delays every statement queued
//! behind it and none is hidden (coordinated omission). Writers keep every id whose
//! INSERT was acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Statement};

/// Every `WRITER_EVERY`th session writes; the others read.
const WRITER_EVERY: usize = 4;
/// Rows the point selects pick from.
pub const ROWS: u32 = 1000;
/// Sessions logging in at once while the load is set up.
const LOGINS_AT_ONCE: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

/// One statement: when it was due, when its answer came (seconds since the run's
/// origin) and the error code it got (0 for none; 2000 for a client-side error such
/// as a lost connection, as the C client numbers those).
#[derive(Clone, Copy)]
pub struct Sample {
    pub kind: Kind,
    pub due: f64,
    pub done: f64,
    pub error: u16,
}

impl Sample {
    pub fn latency(&self) -> f64 {
        self.done - self.due
    }
}

/// What one session saw.
pub struct SessionLog {
    pub samples: Vec<Sample>,
    /// Ids whose INSERT was acknowledged.
    pub acked: Vec<u64>,
    /// The user variable read back with each select did not match (state lost).
    pub state_mismatches: u64,
}

/// A logged-in session with its state set.
pub struct Session {
    pub index: usize,
    pub conn: Conn,
    pub stmt: Statement,
    pub kind: Kind,
}

pub fn opts(port: u16) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(switchyard::testbed::APP_USER))
        .pass(Some(switchyard::testbed::APP_PASSWORD))
        .db_name(Some("app"))
        .prefer_socket(false)
        .into()
}

/// The tables the load uses, (re)created empty.
pub async fn create_tables(port: u16) -> Result<(), String> {
    let mut c = Conn::new(opts(port)).await.map_err(|e| e.to_string())?;
    let rows: Vec<String> = (0..ROWS).map(|i| format!("({i},{})", i * 7)).collect();
    for sql in [
        "DROP TABLE IF EXISTS pause_rows, pause_writes".to_string(),
        "CREATE TABLE pause_rows (id INT PRIMARY KEY, v INT NOT NULL)".to_string(),
        format!("INSERT INTO pause_rows VALUES {}", rows.join(",")),
        // No unique key on `id`: a write applied twice must show as two rows.
        "CREATE TABLE pause_writes (pk BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, session INT NOT NULL, KEY (id))".to_string(),
    ] {
        c.query_drop(sql).await.map_err(|e| e.to_string())?;
    }
    c.disconnect().await.map_err(|e| e.to_string())
}

/// The session variable each session sets: a value of its own, checked at the end.
pub fn wait_timeout_of(index: usize) -> u64 {
    10_000 + index as u64
}

/// Logs `n` sessions in through the proxy on `port` and sets their state.
pub async fn open(port: u16, n: usize) -> Result<Vec<Session>, String> {
    let limit = Arc::new(tokio::sync::Semaphore::new(LOGINS_AT_ONCE));
    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.map_err(|e| e.to_string())?;
            open_one(port, index)
                .await
                .map_err(|e| format!("session {index}: {e}"))
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    for t in tasks {
        sessions.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(sessions)
}

async fn open_one(port: u16, index: usize) -> Result<Session, mysql_async::Error> {
    let mut conn = Conn::new(opts(port)).await?;
    conn.query_drop(format!(
        "SET @sy_session = {index}, SESSION wait_timeout = {}",
        wait_timeout_of(index)
    ))
    .await?;
    let kind = if index % WRITER_EVERY == WRITER_EVERY - 1 {
        Kind::Write
    } else {
        Kind::Read
    };
    let sql = match kind {
        Kind::Read => "SELECT v, @sy_session FROM pause_rows WHERE id = ?",
        Kind::Write => "INSERT INTO pause_writes (id, session) VALUES (?, ?)",
    };
    let stmt = conn.prep(sql).await?;
    Ok(Session {
        index,
        conn,
        stmt,
        kind,
    })
}

/// The MySQL error code of `e`, or 2000 (CR_UNKNOWN_ERROR) for a client-side one.
pub fn code(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        _ => 2000,
    }
}

/// Runs `session` on its schedule (every `period`, first at `first` after `origin`)
/// until `stop`; returns the session for the checks and what it saw.
pub async fn run(
    mut s: Session,
    origin: Instant,
    first: Duration,
    period: Duration,
    stop: Arc<AtomicBool>,
) -> (Session, SessionLog) {
    let mut log = SessionLog {
        samples: Vec::new(),
        acked: Vec::new(),
        state_mismatches: 0,
    };
    let mut due = origin + first;
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(due.into()).await;
        let result = match s.kind {
            Kind::Read => {
                let id = (s.index as u64 * 7919 + seq) % u64::from(ROWS);
                match s
                    .conn
                    .exec_first::<(i64, Option<i64>), _, _>(&s.stmt, (id,))
                    .await
                {
                    Ok(Some((_, Some(v)))) if v == s.index as i64 => Ok(()),
                    Ok(_) => {
                        log.state_mismatches += 1;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Kind::Write => {
                let id = ((s.index as u64) << 32) | seq;
                let r = s.conn.exec_drop(&s.stmt, (id, s.index as u64)).await;
                if r.is_ok() {
                    log.acked.push(id);
                }
                r
            }
        };
        let done = Instant::now();
        log.samples.push(Sample {
            kind: s.kind,
            due: due.duration_since(origin).as_secs_f64(),
            done: done.duration_since(origin).as_secs_f64(),
            error: result.as_ref().err().map(code).unwrap_or(0),
        });
        seq += 1;
        due += period;
    }
    (s, log)
}

/// Whether a session still has its state: its user variable, its session variable and
/// its prepared statement (executed once more; a writer's INSERT id goes to `acked`).
/// `None` when it does, else what differs.
pub async fn check_state(s: &mut Session, acked: &mut Vec<u64>) -> Option<String> {
    let got: Result<Option<(Option<i64>, u64)>, _> = s
        .conn
        .query_first("SELECT @sy_session, @@SESSION.wait_timeout")
        .await;
    let want = (Some(s.index as i64), wait_timeout_of(s.index));
    match got {
        Ok(Some(v)) if v == want => {}
        other => return Some(format!("session {}: state {other:?}", s.index)),
    }
    let stmt_ok = match s.kind {
        Kind::Read => s
            .conn
            .exec_first::<(i64, Option<i64>), _, _>(&s.stmt, (1u64,))
            .await
            .map(|r| r.is_some()),
        // An id no writer uses (sequence numbers never reach 2^32 - 1).
        Kind::Write => {
            let id = ((s.index as u64) << 32) | 0xFFFF_FFFF;
            let r = s.conn.exec_drop(&s.stmt, (id, s.index as u64)).await;
            if r.is_ok() {
                acked.push(id);
            }
            r.map(|()| true)
        }
    };
    match stmt_ok {
        Ok(true) => None,
        other => Some(format!("session {}: prepared statement {other:?}", s.index)),
    }
}
