//! The switchover workload and its checker (DESIGN §6): writers and readers through
//! the proxy while `ctl switchover` runs, then proof that no client saw an error,
//! every acknowledged write is on the new primary exactly once (and nothing else is),
//! and the old primary took no write after the fence and now follows the new one.
//! The checks speak each flavor's dialect (MariaDB's domain GTIDs and `read_only`,
//! MySQL's GTID sets and `super_read_only`).
//!
//! Writers insert ids `w * 1_000_000 + i` into `test.load`, where `id` is *not* a key:
//! a write applied twice would show up as a duplicate instead of failing. An id counts
//! as acknowledged when its autocommit INSERT, or the COMMIT of its transaction, was
//! answered OK. Writers 0 and 1 send text queries, 2 and 3 server-side prepared
//! statements prepared once before the first switchover, so statement-id mapping is
//! exercised across both switchovers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts, Statement};
use serde_json::Value;
use switchyard::testbed::{Flavor, Pair, Server, APP_PASSWORD, APP_USER};
use tokio::task::JoinHandle;

use super::Proxy;

/// How long load runs before and after each switchover.
pub const LOAD_AROUND_SWITCHOVER: Duration = Duration::from_secs(2);
/// Bound for the old primary to follow the new one (a hang guard, not a timing check).
const FOLLOW_GUARD: Duration = Duration::from_secs(30);

const WRITERS: u64 = 4;
const READERS: usize = 2;
/// Statements slower than this are kept, with when they started, for the report.
const SLOW: Duration = Duration::from_millis(20);

/// A connection to `addr` as the application user, default schema `test`.
pub async fn app_conn(addr: &str) -> Conn {
    app_conn_with(addr, Link::default()).await
}

/// How a test's clients reach the proxy: over TLS, compressing, or neither.
#[derive(Clone, Default)]
pub struct Link {
    pub ssl: Option<SslOpts>,
    pub compression: Option<mysql_async::Compression>,
}

impl From<Option<SslOpts>> for Link {
    fn from(ssl: Option<SslOpts>) -> Self {
        Link {
            ssl,
            compression: None,
        }
    }
}

impl From<Option<mysql_async::Compression>> for Link {
    fn from(compression: Option<mysql_async::Compression>) -> Self {
        Link {
            ssl: None,
            compression,
        }
    }
}

/// [`app_conn`] over `link` (TLS, compression).
pub async fn app_conn_with(addr: &str, link: impl Into<Link>) -> Conn {
    let link = link.into();
    let opts = app_opts(addr)
        .ssl_opts(link.ssl)
        .compression(link.compression);
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as {APP_USER}: {e}"))
}

/// The application user's options for `addr`, default schema `test`, over TCP.
pub fn app_opts(addr: &str) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("numeric port"))
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("test"))
        .prefer_socket(false)
}

/// `SELECT @@server_id` through `conn`.
pub async fn server_id(conn: &mut Conn) -> u32 {
    conn.query_first::<u32, _>("SELECT @@server_id")
        .await
        .unwrap_or_else(|e| panic!("SELECT @@server_id: {e}"))
        .expect("one row")
}

/// `sql` as root on `server`, trimmed; panics with the statement on failure.
pub fn sql(server: &Server, statement: &str) -> String {
    server
        .sql(statement)
        .unwrap_or_else(|e| panic!("{statement} on {}: {e}", server.name))
        .trim()
        .to_owned()
}

/// What the clients saw, added up over every run of the workload.
#[derive(Debug, Default)]
pub struct Tally {
    /// Ids whose INSERT (autocommit) or COMMIT was answered OK.
    pub acked: Vec<u64>,
    /// Every error any client saw, with what it was doing.
    pub errors: Vec<String>,
    /// The slowest single statement: its latency and what it was.
    pub longest: Duration,
    pub longest_what: String,
    pub statements: u64,
    /// Statements slower than [`SLOW`]: when each started, how long it took, what.
    pub slow: Vec<(Instant, Duration, String)>,
}

impl Tally {
    fn statement(&mut self, what: impl Fn() -> String, start: Instant, took: Duration) {
        self.statements += 1;
        if took > self.longest {
            self.longest = took;
            self.longest_what = what();
        }
        if took > SLOW {
            self.slow.push((start, took, what()));
        }
    }

    /// Among statements slower than [`SLOW`] (zero when there are none): the slowest
    /// that overlapped `[from, to]`, and the slowest that did not.
    pub fn longest_around(&self, from: Instant, to: Instant) -> (Duration, Duration) {
        let (mut inside, mut outside) = (Duration::ZERO, Duration::ZERO);
        for (start, took, _) in &self.slow {
            let slot = if *start <= to && *start + *took >= from {
                &mut inside
            } else {
                &mut outside
            };
            *slot = (*slot).max(*took);
        }
        (inside, outside)
    }

    fn merge(&mut self, other: Tally) {
        self.acked.extend(other.acked);
        self.errors.extend(other.errors);
        self.slow.extend(other.slow);
        self.statements += other.statements;
        if other.longest > self.longest {
            self.longest = other.longest;
            self.longest_what = other.longest_what;
        }
    }
}

struct Writer {
    w: u64,
    conn: Conn,
    /// Set for the prepared-statement writers.
    insert: Option<Statement>,
    next: u64,
}

struct Reader {
    r: usize,
    conn: Conn,
    point: Option<Statement>,
}

/// The clients between runs: their connections stay open from one run to the next,
/// so the same sessions live through every switchover.
pub struct Workload {
    writers: Vec<Writer>,
    readers: Vec<Reader>,
    /// Totals of the runs so far.
    pub tally: Tally,
}

/// The workload while it runs.
pub struct Running {
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<(Writer, Tally)>>,
    readers: Vec<JoinHandle<(Reader, Tally)>>,
    tally: Tally,
}

impl Workload {
    /// Creates `test.load` through the proxy and opens every client's connection.
    pub async fn connect(addr: &str) -> Workload {
        Workload::connect_with(addr, Link::default()).await
    }

    /// [`Workload::connect`] with every connection over `link` (TLS, compression).
    pub async fn connect_with(addr: &str, link: impl Into<Link>) -> Workload {
        let link = link.into();
        let mut setup = app_conn_with(addr, link.clone()).await;
        setup
            .query_drop(
                "CREATE TABLE test.load (seq BIGINT AUTO_INCREMENT PRIMARY KEY, \
                 id BIGINT NOT NULL, w INT NOT NULL, KEY (id))",
            )
            .await
            .expect("create test.load");
        setup.disconnect().await.expect("disconnect");
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let mut conn = app_conn_with(addr, link.clone()).await;
            let insert = if w >= 2 {
                Some(
                    conn.prep("INSERT INTO test.load (id, w) VALUES (?, ?)")
                        .await
                        .expect("prepare the insert"),
                )
            } else {
                None
            };
            writers.push(Writer {
                w,
                conn,
                insert,
                next: 0,
            });
        }
        let mut readers = Vec::new();
        for r in 0..READERS {
            let mut conn = app_conn_with(addr, link.clone()).await;
            let point = if r == 1 {
                Some(
                    conn.prep("SELECT id, w FROM test.load WHERE id = ?")
                        .await
                        .expect("prepare the point select"),
                )
            } else {
                None
            };
            readers.push(Reader { r, conn, point });
        }
        Workload {
            writers,
            readers,
            tally: Tally::default(),
        }
    }

    /// Starts every client.
    pub fn start(self) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = self
            .writers
            .into_iter()
            .map(|w| tokio::spawn(write_loop(w, stop.clone())))
            .collect();
        let readers = self
            .readers
            .into_iter()
            .map(|r| tokio::spawn(read_loop(r, stop.clone())))
            .collect();
        Running {
            stop,
            writers,
            readers,
            tally: self.tally,
        }
    }

    /// Each writer's and reader's connection id, as the proxy's greeting gave it.
    pub fn connection_ids(&self) -> Vec<u32> {
        let writers = self.writers.iter().map(|w| w.conn.id());
        writers
            .chain(self.readers.iter().map(|r| r.conn.id()))
            .collect()
    }

    /// `@@server_id` as seen through each writer's and reader's own session.
    pub async fn server_ids(&mut self) -> Vec<u32> {
        let mut ids = Vec::new();
        for w in &mut self.writers {
            ids.push(server_id(&mut w.conn).await);
        }
        for r in &mut self.readers {
            ids.push(server_id(&mut r.conn).await);
        }
        ids
    }
}

impl Running {
    /// Stops every client after its current statement or transaction.
    pub async fn stop(mut self) -> Workload {
        self.stop.store(true, Ordering::SeqCst);
        let mut writers = Vec::new();
        for task in self.writers {
            let (writer, tally) = task.await.expect("a writer task panicked");
            self.tally.merge(tally);
            writers.push(writer);
        }
        let mut readers = Vec::new();
        for task in self.readers {
            let (reader, tally) = task.await.expect("a reader task panicked");
            self.tally.merge(tally);
            readers.push(reader);
        }
        Workload {
            writers,
            readers,
            tally: self.tally,
        }
    }
}

/// Runs `f` (one statement), timing it into `tally`; the error, described, on failure.
async fn timed<T>(
    tally: &mut Tally,
    what: impl Fn() -> String,
    f: impl std::future::Future<Output = mysql_async::Result<T>>,
) -> Result<T, String> {
    let start = Instant::now();
    let result = f.await;
    tally.statement(&what, start, start.elapsed());
    result.map_err(|e| format!("{}: {e}", what()))
}

/// Autocommit inserts and small transactions (BEGIN; 2 inserts; COMMIT), alternately,
/// until told to stop or until the first error (recorded; the session may be gone).
async fn write_loop(mut wr: Writer, stop: Arc<AtomicBool>) -> (Writer, Tally) {
    let mut tally = Tally::default();
    let base = wr.w * 1_000_000;
    while !stop.load(Ordering::SeqCst) {
        let id = base + wr.next;
        wr.next += 1;
        match insert(&mut wr, &mut tally, id).await {
            Ok(()) => tally.acked.push(id),
            Err(e) => {
                tally.errors.push(e);
                break;
            }
        }
        let (a, b) = (base + wr.next, base + wr.next + 1);
        wr.next += 2;
        let tx = async {
            let w = wr.w;
            timed(
                &mut tally,
                || format!("writer {w} BEGIN"),
                wr.conn.query_drop("BEGIN"),
            )
            .await?;
            insert(&mut wr, &mut tally, a).await?;
            insert(&mut wr, &mut tally, b).await?;
            timed(
                &mut tally,
                || format!("writer {w} COMMIT of ids {a}, {b}"),
                wr.conn.query_drop("COMMIT"),
            )
            .await
        };
        match tx.await {
            Ok(()) => tally.acked.extend([a, b]),
            Err(e) => {
                tally.errors.push(e);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (wr, tally)
}

async fn insert(wr: &mut Writer, tally: &mut Tally, id: u64) -> Result<(), String> {
    let w = wr.w;
    let what = || format!("writer {w} INSERT id {id}");
    match &wr.insert {
        Some(stmt) => timed(tally, what, wr.conn.exec_drop(stmt, (id, w))).await,
        None => {
            let sql = format!("INSERT INTO test.load (id, w) VALUES ({id}, {w})");
            timed(tally, what, wr.conn.query_drop(sql)).await
        }
    }
}

/// `SELECT COUNT(*)` (text) or point selects (prepared), until told to stop.
async fn read_loop(mut rd: Reader, stop: Arc<AtomicBool>) -> (Reader, Tally) {
    let mut tally = Tally::default();
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let r = rd.r;
        let result = match &rd.point {
            Some(stmt) => {
                let id = (i % WRITERS) * 1_000_000 + i / WRITERS;
                timed(
                    &mut tally,
                    || format!("reader {r} point select {id}"),
                    rd.conn.exec_first::<(u64, u32), _, _>(stmt, (id,)),
                )
                .await
                .map(drop)
            }
            None => timed(
                &mut tally,
                || format!("reader {r} COUNT(*)"),
                rd.conn
                    .query_first::<u64, _>("SELECT COUNT(*) FROM test.load"),
            )
            .await
            .map(drop),
        };
        if let Err(e) = result {
            tally.errors.push(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (rd, tally)
}

/// What a successful `ctl --json switchover` reported.
#[derive(Debug)]
pub struct SwitchReport {
    pub fence_gtid: String,
    pub pause_ms: f64,
    pub max_hold_ms: f64,
    pub total_ms: f64,
    pub held_commands: u64,
    pub phases: Vec<(String, f64)>,
}

/// Parses the last line of `ctl --json switchover`.
pub fn parse_report(output: &str) -> SwitchReport {
    let last = output.lines().last().unwrap_or_default();
    let line: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last ctl line is not JSON ({e}): {output}"));
    assert_eq!(line["type"], "ok", "switchover did not end in OK: {output}");
    let report = &line["report"];
    let number = |key: &str| {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("report.{key} is not a number: {report}"))
    };
    let phases = report["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("report.phases is not a list: {report}"))
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap_or("?").to_owned(),
                p[1].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    SwitchReport {
        fence_gtid: report["fence_gtid"]
            .as_str()
            .unwrap_or_else(|| panic!("no fence_gtid in {report}"))
            .to_owned(),
        pause_ms: number("pause_ms"),
        max_hold_ms: number("max_hold_ms"),
        total_ms: number("total_ms"),
        held_commands: number("held_commands") as u64,
        phases,
    }
}

/// `domain-server-seq,…` → (domain, server) → seq.
pub fn parse_gtids(text: &str) -> BTreeMap<(u32, u32), u64> {
    text.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            let parts: Vec<u64> = g
                .split('-')
                .map(|n| {
                    n.parse()
                        .unwrap_or_else(|_| panic!("bad GTID {g:?} in {text:?}"))
                })
                .collect();
            let [d, s, n] = parts[..] else {
                panic!("bad GTID {g:?} in {text:?}");
            };
            ((d as u32, s as u32), n)
        })
        .collect()
}

/// The two servers of one switchover: `new` is promoted, `old` fenced.
pub struct Direction<'a> {
    pub old: &'a Server,
    pub new: &'a Server,
}

/// Blue → green when `to_green`, else green → blue.
pub fn direction(pair: &Pair, to_green: bool) -> Direction<'_> {
    if to_green {
        Direction {
            old: &pair.blue,
            new: &pair.green,
        }
    } else {
        Direction {
            old: &pair.green,
            new: &pair.blue,
        }
    }
}

/// One round: load for a while, `ctl switchover` under it, load a while more, stop,
/// then check everything DESIGN §6 asks of a switchover. Returns the workload, whose
/// sessions carry on into the next round.
pub async fn switchover_round(
    proxy: &Proxy,
    dir: Direction<'_>,
    mut workload: Workload,
    label: &str,
) -> Workload {
    // Figures are per round: forget the slow statements of the rounds before.
    workload.tally.slow.clear();
    workload.tally.longest = Duration::ZERO;
    let running = workload.start();
    tokio::time::sleep(LOAD_AROUND_SWITCHOVER).await;
    let ctl_start = Instant::now();
    let (ok, out) = proxy.ctl_async(&["--json", "switchover"]).await;
    let ctl_end = Instant::now();
    tokio::time::sleep(LOAD_AROUND_SWITCHOVER).await;
    let mut workload = running.stop().await;
    assert!(
        ok,
        "{label}: ctl switchover failed:\n{out}\nproxy log:\n{}",
        proxy.log()
    );
    let report = parse_report(&out);
    let tally = &workload.tally;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (inside, outside) = tally.longest_around(ctl_start, ctl_end);
    eprintln!(
        "{label}: gate closed {:.1} ms (ctl), longest hold at the gate {:.1} ms (ctl, {} held \
         commands); slowest statement seen by a client {:.1} ms ({}); over 20 ms: {:.1} ms \
         overlapping the `ctl switchover` call, {:.1} ms outside it; switchover total {:.1} ms; \
         phases: {}; {} statements, {} acknowledged ids so far",
        report.pause_ms,
        report.max_hold_ms,
        report.held_commands,
        ms(tally.longest),
        tally.longest_what,
        ms(inside),
        ms(outside),
        report.total_ms,
        report
            .phases
            .iter()
            .map(|(p, ms)| format!("{p} {ms:.1} ms"))
            .collect::<Vec<_>>()
            .join(", "),
        tally.statements,
        tally.acked.len(),
    );

    // 1. Zero client errors of any kind.
    assert!(
        tally.errors.is_empty(),
        "{label}: clients saw {} error(s):\n{}\nproxy log:\n{}",
        tally.errors.len(),
        tally.errors.join("\n"),
        proxy.log()
    );

    // 2. Every acknowledged id is on the new primary exactly once, and nothing else.
    assert_eq!(
        sql(dir.new, "SELECT @@read_only"),
        "0",
        "{label}: new primary writable"
    );
    let on_new = ids_on(dir.new);
    check_rows(label, dir.new, &on_new, &tally.acked);

    // 3. Every pre-existing session now talks to the new primary.
    let ids = workload.server_ids().await;
    assert!(
        ids.iter().all(|&id| id == dir.new.server_id),
        "{label}: sessions' @@server_id after the switchover: {ids:?}, expected all {}",
        dir.new.server_id
    );
    let (ok, status) = proxy.ctl_async(&["status"]).await;
    let active = if dir.new.server_id == 1 {
        "blue"
    } else {
        "green"
    };
    assert!(
        ok && status.contains(&format!("OK {active} is active")),
        "{label}: ctl status:\n{status}"
    );

    // 4. The old primary took no write after the fence.
    assert_nothing_after_fence(label, dir.old, &report.fence_gtid);

    // 5. The old primary is read-only and replicates from the new one, and has
    //    caught up with it: the way back is open with nothing lost.
    let fence_variable = match dir.old.build().flavor() {
        Flavor::MariaDb => "read_only",
        Flavor::MySql => "super_read_only",
    };
    assert_eq!(
        sql(dir.old, &format!("SELECT @@{fence_variable}")),
        "1",
        "{label}: old primary fenced"
    );
    wait_following(label, dir.old, dir.new);
    wait_applied(label, dir.new, dir.old);
    let on_old = ids_on(dir.old);
    assert_eq!(
        on_old, on_new,
        "{label}: {} and {} hold different rows",
        dir.old.name, dir.new.name
    );
    workload
}

/// A fresh [`Workload`] through `proxy`, one [`switchover_round`] to green and one
/// back to blue, each checked; the figures printed under `label`.
pub async fn there_and_back(pair: &Pair, proxy: &Proxy, label: &str) {
    there_and_back_with(pair, proxy, label, Link::default()).await;
}

/// [`there_and_back`] with every client over `link` (TLS, compression); the same
/// client connections (the proxy's connection ids) before the first round and after
/// the last.
pub async fn there_and_back_with(pair: &Pair, proxy: &Proxy, label: &str, link: impl Into<Link>) {
    let workload = Workload::connect_with(&proxy.addr, link).await;
    let before = workload.connection_ids();
    let workload = switchover_round(proxy, direction(pair, true), workload, "blue → green").await;
    let workload = switchover_round(proxy, direction(pair, false), workload, "green → blue").await;
    assert_eq!(
        workload.connection_ids(),
        before,
        "{label}: the clients' connections to the proxy changed"
    );
    eprintln!(
        "{label}: {} statements, {} acknowledged rows, 0 errors",
        workload.tally.statements,
        workload.tally.acked.len()
    );
}

/// Every id the workload had acknowledged is on `server` exactly once, and nothing
/// else is.
pub fn check_acked(label: &str, server: &Server, tally: &Tally) {
    check_rows(label, server, &ids_on(server), &tally.acked);
}

/// Every `id` in `test.load` on `server`, sorted (duplicates kept).
fn ids_on(server: &Server) -> Vec<u64> {
    let mut ids: Vec<u64> = sql(server, "SELECT id FROM test.load")
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("bad id {l:?}")))
        .collect();
    ids.sort_unstable();
    ids
}

/// `rows` (sorted) must be exactly `acked`, each once.
fn check_rows(label: &str, server: &Server, rows: &[u64], acked: &[u64]) {
    let mut acked = acked.to_vec();
    acked.sort_unstable();
    let dup_acked: Vec<_> = acked
        .windows(2)
        .filter(|p| p[0] == p[1])
        .map(|p| p[0])
        .collect();
    assert!(
        dup_acked.is_empty(),
        "{label}: the workload acked ids twice: {dup_acked:?}"
    );
    let duplicates: Vec<_> = rows
        .windows(2)
        .filter(|p| p[0] == p[1])
        .map(|p| p[0])
        .collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| rows.binary_search(id).is_err())
        .collect();
    let extra: Vec<_> = rows
        .iter()
        .filter(|id| acked.binary_search(id).is_err())
        .collect();
    assert!(
        duplicates.is_empty() && missing.is_empty() && extra.is_empty(),
        "{label}: on {}: {} rows, {} acked; duplicated {duplicates:?}; missing (acked, not there) \
         {missing:?}; extra (there, never acked) {extra:?}",
        server.name,
        rows.len(),
        acked.len()
    );
}

/// Waits until `replica` replicates from `primary` with both threads running.
pub fn wait_following(label: &str, replica: &Server, primary: &Server) {
    let flavor = replica.build().flavor();
    let show = match flavor {
        Flavor::MariaDb => "SHOW SLAVE STATUS",
        Flavor::MySql => "SHOW REPLICA STATUS",
    };
    let deadline = Instant::now() + FOLLOW_GUARD;
    loop {
        let rows = replica
            .sql_rows(show)
            .unwrap_or_else(|e| panic!("{show} on {}: {e}", replica.name));
        let status = rows.into_iter().next().unwrap_or_default();
        let field = |name: &str| {
            status
                .get(&flavor.status_column(name))
                .cloned()
                .unwrap_or_default()
        };
        if field("Master_Port") == primary.port.to_string()
            && field("Slave_IO_Running") == "Yes"
            && field("Slave_SQL_Running") == "Yes"
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {} does not replicate from {} (port {}): {status:?}",
            replica.name,
            primary.name,
            primary.port
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `replica` has applied everything `primary` has written.
pub fn wait_applied(label: &str, primary: &Server, replica: &Server) {
    let guard = FOLLOW_GUARD.as_secs();
    let (pos, wait) = match primary.build().flavor() {
        Flavor::MariaDb => {
            let pos = sql(primary, "SELECT @@gtid_binlog_pos");
            let wait = format!("SELECT MASTER_GTID_WAIT('{pos}', {guard})");
            (pos, wait)
        }
        Flavor::MySql => {
            let pos = mysql_gtid_executed(primary);
            let wait = format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{pos}', {guard})");
            (pos, wait)
        }
    };
    assert_eq!(
        sql(replica, &wait),
        "0",
        "{label}: {} did not reach {pos}",
        replica.name
    );
}

/// MySQL's `@@GLOBAL.gtid_executed` on one line (it puts a newline after each comma).
pub fn mysql_gtid_executed(server: &Server) -> String {
    sql(server, "SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')")
}

/// `old` wrote nothing of its own after `fence` (the report's fence GTID position).
fn assert_nothing_after_fence(label: &str, old: &Server, fence: &str) {
    match old.build().flavor() {
        Flavor::MariaDb => assert_mariadb_nothing_after_fence(label, old, fence),
        Flavor::MySql => {
            // What `old` executed beyond the fence may only have come from elsewhere
            // (the new primary, replicated back), never from `old`'s own server UUID.
            let uuid = sql(old, "SELECT @@server_uuid");
            let after = sql(
                old,
                &format!("SELECT GTID_SUBTRACT(@@GLOBAL.gtid_executed, '{fence}')"),
            );
            assert!(
                !after.contains(&uuid),
                "{label}: {} wrote after the fence at {fence}: {after}",
                old.name
            );
        }
    }
}

/// MariaDB: none of `old`'s own GTIDs is past the fence position.
fn assert_mariadb_nothing_after_fence(label: &str, old: &Server, fence_gtid: &str) {
    let fence = parse_gtids(fence_gtid);
    let state_text = sql(old, "SELECT @@gtid_binlog_state");
    for ((domain, server), seq) in parse_gtids(&state_text) {
        if server != old.server_id {
            continue;
        }
        let fenced_at = fence
            .iter()
            .find(|((d, _), _)| *d == domain)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{label}: fence gtid {fence_gtid} lacks domain {domain}"));
        assert!(
            seq <= fenced_at,
            "{label}: {} wrote {domain}-{server}-{seq} after the fence at {fence_gtid} \
             (binlog state {state_text})",
            old.name,
        );
    }
}
