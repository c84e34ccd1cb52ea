//! The data: several connections to blue that all read one consistent snapshot, each
//! paired with a connection to green that loads what it reads.
//!
//! The snapshot: while one connection holds `FLUSH TABLES WITH READ LOCK` (commits
//! wait; it is held for as long as N `START TRANSACTION WITH CONSISTENT SNAPSHOT`
//! take, milliseconds), every worker opens its transaction and the lock's connection
//! reads blue's GTID position; nothing can commit in between, so every worker sees
//! exactly the transactions up to that position.
//!
//! The work: a queue of chunks, biggest tables first. A single-column integer primary
//! key is cut into value ranges up front, so one big table is loaded by all workers at
//! once; another primary key is walked in key order by one worker; a table without a
//! primary key is read whole. The worker that finishes a table's last chunk adds the
//! indexes that were held back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::{Row, Value};
use tokio::task::JoinSet;

use crate::config::{Config, ControlConfig};
use crate::control::{Control, ControlError};

use super::super::chunks::{ident, Key};
use super::catalog::CopyTable;
use super::error::CreateError;
use super::progress::Progress;
use super::values::{Inserts, LoadFile, RowTooBig};
use super::GREEN_SESSION;

/// The session of each reading connection on blue: a snapshot is only consistent in
/// REPEATABLE READ; values come as stored (no conversion to the connection's
/// character set) and TIMESTAMPs in UTC.
const BLUE_SESSION: [&str; 2] = [
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SET SESSION time_zone = '+00:00', character_set_results = NULL",
];
/// Soft size of one `INSERT`; a single bigger row gets a statement of its own (up to
/// green's `max_allowed_packet`).
const STATEMENT_BYTES: usize = 1 << 20;
/// Size at which a `LOAD DATA LOCAL` file is handed over.
const FILE_BYTES: usize = 8 << 20;
/// Server error of a lock wait that ran out.
const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// Server error of a deadlock: the statement was rolled back whole.
const DEADLOCK: u16 = 1213;
/// How often one statement or file is sent again after a deadlock or a lock wait
/// timeout.
const INSERT_TRIES: u32 = 10;

/// A piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    /// Rows whose integer key is in `(lower, upper]` (open ends: no bound).
    Range {
        table: usize,
        lower: Option<i128>,
        upper: Option<i128>,
    },
    /// The whole table in key order, `chunk_rows` at a time.
    Walk { table: usize },
    /// The whole table in one statement (no primary key, or empty).
    Whole { table: usize },
}

impl Job {
    fn table(&self) -> usize {
        match self {
            Job::Range { table, .. } | Job::Walk { table } | Job::Whole { table } => *table,
        }
    }
}

/// The connections to blue inside one snapshot, and its position.
pub struct Snapshot {
    pub readers: Vec<Control>,
    pub position: String,
    /// How long blue's commits waited.
    pub lock_held: Duration,
}

/// Open `n` connections to blue in one consistent snapshot (see the module doc).
pub async fn snapshot(
    config: &Config,
    control: &ControlConfig,
    lock: &mut Control,
    n: usize,
    lock_wait: Duration,
) -> Result<Snapshot, CreateError> {
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Control::connect_with(config, control, lock.address(), lock.timeout()).await?;
        for setup in BLUE_SESSION {
            c.query_drop(setup).await?;
        }
        readers.push(c);
    }
    lock.query_drop(&format!(
        "SET SESSION lock_wait_timeout = {}",
        lock_wait.as_secs().max(1)
    ))
    .await?;
    let started = Instant::now();
    match lock.query_drop("FLUSH TABLES WITH READ LOCK").await {
        Ok(()) => {}
        Err(e) if e.server_code() == Some(LOCK_WAIT_TIMEOUT) => {
            return Err(CreateError::Blue(format!(
                "the global read lock that lines the snapshots up waited {lock_wait:?} for \
                 running statements (see SHOW PROCESSLIST on blue); try again when they are \
                 done, or with a longer --lock-wait-timeout"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let opened: Result<String, ControlError> = async {
        for reader in &mut readers {
            reader
                .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await?;
        }
        lock.gtid_position().await
    }
    .await;
    let unlocked = lock.query_drop("UNLOCK TABLES").await;
    let lock_held = started.elapsed();
    let position = opened?;
    unlocked?;
    Ok(Snapshot {
        readers,
        position,
        lock_held,
    })
}

/// The chunks of every table, biggest tables first; and per table how many.
async fn plan(
    blue: &mut Control,
    tables: &[CopyTable],
    chunk_rows: u64,
) -> Result<(VecDeque<Job>, Vec<usize>), CreateError> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tables[i].bytes));
    let mut per_table: Vec<VecDeque<Job>> = Vec::new();
    let mut counts = vec![0; tables.len()];
    for table in order {
        let t = &tables[table];
        let mut jobs = VecDeque::new();
        if t.table.key.is_empty() {
            jobs.push_back(Job::Whole { table });
        } else if t.integer_key() {
            let key = ident(&t.table.key[0].name);
            let rows = blue
                .query_rows(
                    "key range",
                    &format!("SELECT MIN({key}), MAX({key}) FROM {}", t.table.sql_name()),
                )
                .await?;
            let bound = |i| {
                rows.first()
                    .and_then(|r| super::super::position::text(r, i))
                    .and_then(|v| v.parse::<i128>().ok())
            };
            match (bound(0), bound(1)) {
                (Some(min), Some(max)) => {
                    for (lower, upper) in ranges(min, max, t.rows, chunk_rows) {
                        jobs.push_back(Job::Range {
                            table,
                            lower,
                            upper,
                        });
                    }
                }
                _ => jobs.push_back(Job::Whole { table }),
            }
        } else {
            jobs.push_back(Job::Walk { table });
        }
        counts[table] = jobs.len();
        per_table.push(jobs);
    }
    // Round robin over the tables, biggest first: workers load different tables at
    // once where they can (no two fight over one table's locks and pages).
    let mut jobs = VecDeque::new();
    while per_table.iter().any(|q| !q.is_empty()) {
        for queue in &mut per_table {
            if let Some(job) = queue.pop_front() {
                jobs.push_back(job);
            }
        }
    }
    Ok((jobs, counts))
}

/// `(lower, upper]` ranges covering every integer (the first and last open), about
/// `chunk_rows` of the estimated `rows` each, over keys `min..=max`.
fn ranges(min: i128, max: i128, rows: u64, chunk_rows: u64) -> Vec<(Option<i128>, Option<i128>)> {
    let span = (max - min + 1).max(1);
    let pieces = i128::from(rows.div_ceil(chunk_rows.max(1)).max(1)).min(span);
    let width = (span + pieces - 1) / pieces;
    let mut out = Vec::new();
    let mut lower = None;
    for i in 1..pieces {
        let upper = min - 1 + width * i;
        if upper >= max {
            break;
        }
        out.push((lower, Some(upper)));
        lower = Some(upper);
    }
    out.push((lower, None));
    out
}

/// How rows go into green.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// `LOAD DATA LOCAL INFILE` with the rows as the file: no SQL parsing per value
    /// (green's `local_infile` is on).
    LoadData,
    /// `LoadData`, one worker at a time (see [`load`]); the others `Insert`.
    LoadDataAlone,
    /// Multi-row `INSERT`s.
    Insert,
}

/// What goes to green in one call.
enum Payload<'a> {
    Statement(&'a str),
    File(&'a str, bytes::Bytes),
}

/// What the workers share.
struct Shared {
    /// Per table.
    loaders: Vec<Loader>,
    /// Per table: a worker is loading it by `LoadDataAlone`.
    loading: Vec<AtomicBool>,
    tables: Arc<Vec<CopyTable>>,
    indexes: Vec<Option<String>>,
    queue: Mutex<VecDeque<Job>>,
    remaining: Vec<AtomicUsize>,
    progress: Arc<Progress>,
    chunk_rows: u64,
    /// Green's `max_allowed_packet`, less room for the protocol.
    hard_limit: usize,
    failed: AtomicBool,
}

/// Copy every table over the snapshot's readers, each with a fresh connection to
/// green; the held-back indexes are added as tables complete.
#[allow(clippy::too_many_arguments)]
pub async fn copy(
    config: &Config,
    control: &ControlConfig,
    green_address: &str,
    snapshot: Snapshot,
    tables: Arc<Vec<CopyTable>>,
    indexes: Vec<Option<String>>,
    chunk_rows: u64,
    max_allowed_packet: usize,
    loader: Loader,
    autoinc_lock_mode: u8,
    progress: Arc<Progress>,
) -> Result<(), CreateError> {
    let mut readers = snapshot.readers;
    let Some(first) = readers.first_mut() else {
        return Ok(());
    };
    let (jobs, counts) = plan(first, &tables, chunk_rows).await?;
    let shared = Arc::new(Shared {
        loaders: tables
            .iter()
            .map(|t| {
                // A bulk insert into a table with an AUTO_INCREMENT column holds the
                // table's AUTO-INC lock to its end unless the lock mode is 2
                // (interleaved): loads of one table by several workers would queue.
                if loader == Loader::LoadData && t.auto_increment && autoinc_lock_mode != 2 {
                    Loader::LoadDataAlone
                } else {
                    loader
                }
            })
            .collect(),
        loading: tables.iter().map(|_| AtomicBool::new(false)).collect(),
        remaining: counts.into_iter().map(AtomicUsize::new).collect(),
        tables,
        indexes,
        queue: Mutex::new(jobs),
        progress,
        chunk_rows,
        hard_limit: max_allowed_packet.saturating_sub(4096).max(4096),
        failed: AtomicBool::new(false),
    });
    let mut workers = JoinSet::new();
    for blue in readers {
        let mut green =
            Control::connect_with(config, control, green_address, blue.timeout()).await?;
        for setup in GREEN_SESSION {
            green.query_drop(setup).await?;
        }
        // No gap locks between workers loading neighbouring key ranges.
        green
            .query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await?;
        workers.spawn(worker(Arc::clone(&shared), blue, green));
    }
    let mut first_error = None;
    while let Some(done) = workers.join_next().await {
        let result =
            done.unwrap_or_else(|e| Err(CreateError::Green(format!("a copy worker: {e}"))));
        if let Err(e) = result {
            shared.failed.store(true, Ordering::Relaxed);
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn worker(
    shared: Arc<Shared>,
    mut blue: Control,
    mut green: Control,
) -> Result<(), CreateError> {
    loop {
        if shared.failed.load(Ordering::Relaxed) {
            break;
        }
        let job = shared.queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some(job) = job else {
            break;
        };
        let table = job.table();
        run_job(&shared, &mut blue, &mut green, &job).await?;
        if shared.remaining[table].fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(alter) = &shared.indexes[table] {
                shared.progress.indexing(table);
                green.query_drop(alter).await.map_err(|e| {
                    CreateError::Green(format!(
                        "indexes of {}: {e}",
                        shared.tables[table].table.display_name()
                    ))
                })?;
            }
            shared.progress.done(table);
        }
    }
    let _ = blue.query_drop("ROLLBACK").await;
    blue.disconnect().await;
    green.disconnect().await;
    Ok(())
}

async fn run_job(
    shared: &Shared,
    blue: &mut Control,
    green: &mut Control,
    job: &Job,
) -> Result<(), CreateError> {
    let index = job.table();
    let t = &shared.tables[index];
    let selects: Vec<String> = t.copied.iter().map(|(n, k)| k.select(n)).collect();
    let selects = selects.join(", ");
    let from = t.table.sql_name();
    match job {
        Job::Range { lower, upper, .. } => {
            let key = ident(&t.table.key[0].name);
            let mut terms = Vec::new();
            if let Some(lower) = lower {
                terms.push(format!("{key} > {lower}"));
            }
            if let Some(upper) = upper {
                terms.push(format!("{key} <= {upper}"));
            }
            let filter = if terms.is_empty() {
                "TRUE".to_owned()
            } else {
                terms.join(" AND ")
            };
            let sql = format!("SELECT {selects} FROM {from} FORCE INDEX (PRIMARY) WHERE {filter}");
            let rows = blue.query_rows("read a chunk", &sql).await?;
            load(shared, green, index, &rows).await
        }
        Job::Whole { .. } => {
            let rows = blue
                .query_rows("read a table", &format!("SELECT {selects} FROM {from}"))
                .await?;
            load(shared, green, index, &rows).await
        }
        Job::Walk { .. } => {
            let mut last: Option<Key> = None;
            loop {
                let sql = format!(
                    "SELECT {selects}, {} FROM {from} FORCE INDEX (PRIMARY) WHERE {} \
                     ORDER BY {} LIMIT {}",
                    t.table.key_select(),
                    t.table.range(last.as_ref(), None),
                    t.table.key_list(),
                    shared.chunk_rows
                );
                let rows = blue.query_rows("read a chunk", &sql).await?;
                load(shared, green, index, &rows).await?;
                if (rows.len() as u64) < shared.chunk_rows {
                    return Ok(());
                }
                let Some(row) = rows.last() else {
                    return Ok(());
                };
                let key: Option<Key> = (t.copied.len()..t.copied.len() + t.table.key.len())
                    .map(|i| match row.as_ref(i) {
                        Some(Value::Bytes(b)) => Some(b.clone()),
                        _ => None,
                    })
                    .collect();
                last = Some(key.ok_or_else(|| {
                    CreateError::Blue(format!(
                        "{}: a primary key value read as NULL",
                        t.table.display_name()
                    ))
                })?);
            }
        }
    }
}

/// Write `rows` (their first `copied.len()` values) into table `index` on green.
async fn load(
    shared: &Shared,
    green: &mut Control,
    index: usize,
    rows: &[Row],
) -> Result<(), CreateError> {
    // A table whose loads by LOAD DATA would queue on its AUTO-INC lock takes one at a
    // time: a worker that finds it taken sends INSERTs instead of waiting.
    let solo = &shared.loading[index];
    let loader = match shared.loaders[index] {
        Loader::LoadDataAlone => {
            if solo
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                Loader::LoadDataAlone
            } else {
                Loader::Insert
            }
        }
        other => other,
    };
    let loaded = load_as(shared, green, index, rows, loader).await;
    if loader == Loader::LoadDataAlone {
        solo.store(false, Ordering::Release);
    }
    loaded
}

async fn load_as(
    shared: &Shared,
    green: &mut Control,
    index: usize,
    rows: &[Row],
    loader: Loader,
) -> Result<(), CreateError> {
    let t = &shared.tables[index];
    let name = t.table.sql_name();
    let mut bytes = 0u64;
    match loader {
        Loader::LoadData | Loader::LoadDataAlone => {
            let mut file = LoadFile::new(&name, &t.copied, FILE_BYTES);
            for row in rows {
                if let Some((data, n)) = file.push(values(t, row, &mut bytes)?) {
                    let payload = Payload::File(file.statement(), data.into());
                    send(shared, green, index, payload, n, std::mem::take(&mut bytes)).await?;
                }
            }
            if let Some((data, n)) = file.finish() {
                let payload = Payload::File(file.statement(), data.into());
                send(shared, green, index, payload, n, bytes).await?;
            }
        }
        Loader::Insert => {
            let mut inserts = Inserts::new(
                &name,
                &t.copied,
                STATEMENT_BYTES.min(shared.hard_limit),
                shared.hard_limit,
            );
            let too_big = |e: RowTooBig| {
                CreateError::Green(format!(
                    "a row of {} needs a statement of {} bytes, more than green's \
                     max_allowed_packet allows: raise it on green (SET GLOBAL \
                     max_allowed_packet = …) and run create again",
                    t.table.display_name(),
                    e.bytes
                ))
            };
            for row in rows {
                if let Some((sql, n)) =
                    inserts.push(values(t, row, &mut bytes)?).map_err(too_big)?
                {
                    let payload = Payload::Statement(&sql);
                    send(shared, green, index, payload, n, std::mem::take(&mut bytes)).await?;
                }
            }
            if let Some((sql, n)) = inserts.finish() {
                send(shared, green, index, Payload::Statement(&sql), n, bytes).await?;
            }
        }
    }
    Ok(())
}

/// The copied values of one row as read from blue (text protocol: bytes or NULL),
/// their length added to `bytes`.
fn values<'r>(
    t: &CopyTable,
    row: &'r Row,
    bytes: &mut u64,
) -> Result<Vec<Option<&'r [u8]>>, CreateError> {
    let mut values = Vec::with_capacity(t.copied.len());
    for i in 0..t.copied.len() {
        values.push(match row.as_ref(i) {
            Some(Value::Bytes(b)) => {
                *bytes += b.len() as u64;
                Some(b.as_slice())
            }
            Some(Value::NULL) | None => None,
            Some(other) => {
                return Err(CreateError::Blue(format!(
                    "{}: a value came as {other:?}, not as text",
                    t.table.display_name()
                )))
            }
        });
    }
    Ok(values)
}

/// Send one statement or file to green, again after a deadlock or a lock wait timeout
/// (both roll back the whole statement, so sending it again loads each row once). What
/// the server warned about is counted and its first warning kept, per table.
async fn send(
    shared: &Shared,
    green: &mut Control,
    index: usize,
    payload: Payload<'_>,
    rows: u64,
    bytes: u64,
) -> Result<(), CreateError> {
    let table = shared.tables[index].table.display_name();
    let mut tries = 1;
    loop {
        let sent = match &payload {
            Payload::Statement(sql) => green.query_drop(sql).await,
            Payload::File(sql, data) => green.load_local(sql, data.clone()).await,
        };
        match sent {
            Ok(()) => break,
            Err(e)
                if tries < INSERT_TRIES
                    && matches!(e.server_code(), Some(DEADLOCK | LOCK_WAIT_TIMEOUT)) =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tries))).await;
            }
            Err(e) => return Err(CreateError::Green(format!("loading {table}: {e}"))),
        }
    }
    let first = green
        .query_rows("SHOW WARNINGS", "SHOW WARNINGS LIMIT 1")
        .await?;
    if let Some(w) = first.first() {
        let count = green
            .query_rows("SHOW COUNT(*) WARNINGS", "SHOW COUNT(*) WARNINGS")
            .await?
            .first()
            .and_then(|r| super::super::position::text(r, 0))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let t = |i| super::super::position::text(w, i).unwrap_or_default();
        shared
            .progress
            .warned(index, count, &format!("{} {}: {}", t(0), t(1), t(2)));
    }
    shared.progress.add(index, rows, bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_key_once() {
        assert_eq!(ranges(1, 10, 10, 100), vec![(None, None)]);
        assert_eq!(ranges(1, 10, 10, 5), vec![(None, Some(5)), (Some(5), None)]);
        assert_eq!(
            ranges(1, 100, 100, 30),
            vec![
                (None, Some(25)),
                (Some(25), Some(50)),
                (Some(50), Some(75)),
                (Some(75), None)
            ]
        );
        // More chunks wanted than keys: one key each at most.
        assert_eq!(ranges(7, 8, 1000, 1).len(), 2);
        // Unsigned BIGINT ends.
        let top = i128::from(u64::MAX);
        let r = ranges(0, top, 4, 1);
        assert_eq!(r.len(), 4);
        assert_eq!(r.last(), Some(&(Some(top / 4 * 3 + 2), None)));
    }
}
