//! Micro-benchmarks of what the proxy runs per command, without a database: the packet
//! codec, the relay's walk of an answer with the response state machine, the statement
//! scan of a COM_QUERY, and the rewriting and reading of OK packets. The answers are
//! real MariaDB bytes captured once (`benches/data/`); criterion measures, and its
//! estimates are gathered into `target/bench/hot_path.md`.
//!
//!     cargo bench --bench hot_path
//!
//! Knobs (environment):
//! - `HOT_PATH_SECONDS`: measurement time per benchmark (default 3; warm-up a third).
//! - `HOT_PATH_SAMPLES`: criterion samples per benchmark (default 50, at least 10).
//! - `HOT_PATH_CAPTURE=1`: record the answers again from a testbed MariaDB first
//!   (rewrites the capture file; needs the MariaDB server the testbed uses).
//!
//! Criterion's own arguments pass through: `cargo bench --bench hot_path -- scan` runs
//! the benchmarks whose name holds `scan` (the report then lists the others as not run).
mod common;

#[path = "hot_path/capture.rs"]
mod capture;
#[path = "hot_path/data.rs"]
mod data;
#[path = "hot_path/estimates.rs"]
mod estimates;
#[path = "hot_path/walk.rs"]
mod walk;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};
use tokio_util::codec::Decoder;

use common::{machine, report::Report};
use data::Answer;
use switchyard::protocol::codec::{write_packet, PacketCodec};
use switchyard::protocol::constants::SERVER_SESSION_STATE_CHANGED;
use switchyard::protocol::packets::OkPacket;
use switchyard::proxy::relay::strip_session_track;
use switchyard::proxy::response::{ok_status, Expect};
use switchyard::proxy::scan::{may_kill, scan};
use switchyard::proxy::state::SessionState;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// One benchmark as the report lists it.
struct Case {
    group: &'static str,
    name: String,
    input: String,
    /// Bytes handled per iteration, for a throughput.
    bytes: u64,
    /// Packets handled per iteration, for a time per packet (0: not a packet count).
    packets: u64,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| common::fail(format!("{name}={v}: not a whole number"))),
        Err(_) => default,
    }
}

fn main() {
    if std::env::var_os("HOT_PATH_CAPTURE").is_some_and(|v| v == "1") {
        let version = capture::capture().unwrap_or_else(|e| common::fail(e));
        println!(
            "captured from MariaDB {version}: {}",
            data::capture_path().display()
        );
    }
    let answers = data::read().unwrap_or_else(|e| common::fail(e));
    let started = SystemTime::now();
    let seconds = env_number("HOT_PATH_SECONDS", 3).max(1);
    let criterion_dir = common::report::dir().with_file_name("criterion");
    // The folder is given, not left to criterion's guess, so the report knows where
    // the estimates are.
    let mut c = Criterion::default()
        .output_directory(&criterion_dir)
        .sample_size(env_number("HOT_PATH_SAMPLES", 50).max(10) as usize)
        .measurement_time(Duration::from_secs(seconds))
        .warm_up_time(Duration::from_millis(seconds * 1000 / 3))
        .nresamples(20_000)
        .configure_from_args();
    let mut cases = Vec::new();
    codec(&mut c.benchmark_group("codec"), &answers, &mut cases);
    response(&mut c.benchmark_group("response"), &answers, &mut cases);
    statements(&mut c.benchmark_group("scan"), &mut cases);
    ok_packets(&mut c.benchmark_group("ok"), &answers, &mut cases);
    c.final_summary();
    write_report(&criterion_dir, started, &answers, &cases);
}

/// The answers that are result sets, with their logical packets (sequence ids from 1).
fn packets(answer: &Answer) -> Vec<bytes::Bytes> {
    let mut codec = PacketCodec::new(usize::MAX);
    codec.set_seq(1);
    let mut src = BytesMut::from(&answer.wire[..]);
    let mut out = Vec::new();
    while let Ok(Some(p)) = codec.decode(&mut src) {
        out.push(p.payload);
    }
    if !src.is_empty() {
        common::fail(format!("{}: bytes left after the packets", answer.name));
    }
    out
}

fn results(answers: &[Answer]) -> impl Iterator<Item = &Answer> {
    answers.iter().filter(|a| a.name != "version")
}

/// Decoding a whole answer into logical packets, and encoding them back.
fn codec(g: &mut Group, answers: &[Answer], cases: &mut Vec<Case>) {
    for answer in results(answers) {
        let payloads = packets(answer);
        let mut check = BytesMut::new();
        payloads
            .iter()
            .fold(1u8, |seq, p| write_packet(&mut check, seq, p));
        if check[..] != answer.wire[..] {
            common::fail(format!(
                "{}: re-encoding differs from the capture",
                answer.name
            ));
        }
        let bytes = answer.wire.len() as u64;
        g.throughput(Throughput::Bytes(bytes));
        let name = format!("decode_{}", answer.name);
        g.bench_function(&name, |b| {
            let mut codec = PacketCodec::new(usize::MAX);
            b.iter_batched(
                || BytesMut::from(&answer.wire[..]),
                |mut src| {
                    codec.set_seq(1);
                    while let Ok(Some(p)) = codec.decode(&mut src) {
                        black_box(p);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        cases.push(case("codec", name, answer, payloads.len()));
        let name = format!("encode_{}", answer.name);
        g.bench_function(&name, |b| {
            let mut out = BytesMut::with_capacity(answer.wire.len());
            b.iter(|| {
                out.clear();
                let seq = payloads
                    .iter()
                    .fold(1u8, |seq, p| write_packet(&mut out, seq, p));
                black_box((&out, seq));
            })
        });
        cases.push(case("codec", name, answer, payloads.len()));
    }
}

fn case(group: &'static str, name: String, answer: &Answer, packets: usize) -> Case {
    Case {
        group,
        name,
        input: format!(
            "{} ({} B)",
            answer.name.replace('_', " "),
            answer.wire.len()
        ),
        bytes: answer.wire.len() as u64,
        packets: packets as u64,
    }
}

/// The relay's walk of each answer to its end.
fn response(g: &mut Group, answers: &[Answer], cases: &mut Vec<Case>) {
    for answer in results(answers) {
        let mut state = SessionState::new(Some("sbtest".into()), 45);
        let walked = walk::walk(
            &answer.wire,
            Expect::ResultSets,
            answer.caps,
            answer.mariadb_caps,
            &mut state,
        );
        if walked != Ok(Some(answer.wire.len())) {
            common::fail(format!("{}: the walk ended at {walked:?}", answer.name));
        }
        g.throughput(Throughput::Bytes(answer.wire.len() as u64));
        let name = format!("walk_{}", answer.name);
        g.bench_function(&name, |b| {
            b.iter(|| {
                walk::walk(
                    black_box(&answer.wire),
                    Expect::ResultSets,
                    answer.caps,
                    answer.mariadb_caps,
                    &mut state,
                )
            })
        });
        cases.push(case("response", name, answer, packets(answer).len()));
    }
}

/// What a COM_QUERY's text is read for: whether it may be a KILL, then the scan.
fn statements(g: &mut Group, cases: &mut Vec<Case>) {
    for (name, sql) in data::statements() {
        let sql = sql.into_bytes();
        g.throughput(Throughput::Bytes(sql.len() as u64));
        let name = format!("scan_{name}");
        g.bench_function(&name, |b| {
            b.iter(|| (may_kill(black_box(&sql)), scan(black_box(&sql))))
        });
        cases.push(Case {
            group: "scan",
            name,
            input: format!("{} B of SQL", sql.len()),
            bytes: sql.len() as u64,
            packets: 0,
        });
    }
}

/// An OK packet carrying session-state changes (`SET NAMES`): stripped of them for a
/// client without session tracking, and read into the session state.
fn ok_packets(g: &mut Group, answers: &[Answer], cases: &mut Vec<Case>) {
    let Some(answer) = answers.iter().find(|a| a.name == "ok_set_names") else {
        common::fail("the capture holds no ok_set_names answer");
    };
    let payload = packets(answer).pop().unwrap_or_default();
    let tracked = ok_status(&payload).is_ok_and(|s| s & SERVER_SESSION_STATE_CHANGED != 0);
    if !tracked {
        common::fail("ok_set_names: the OK carries no session-state change");
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("strip_session_track", |b| {
        let mut out = BytesMut::with_capacity(64);
        b.iter(|| {
            out.clear();
            strip_session_track(black_box(&payload), 1, &mut out);
        })
    });
    g.bench_function("parse_and_apply_tracking", |b| {
        let mut state = SessionState::new(Some("sbtest".into()), 45);
        b.iter(|| match OkPacket::parse(black_box(&payload), answer.caps) {
            Ok(ok) => state.on_ok(&ok),
            Err(_) => false,
        })
    });
    for name in ["strip_session_track", "parse_and_apply_tracking"] {
        cases.push(Case {
            group: "ok",
            name: name.to_owned(),
            input: format!("OK of SET NAMES ({} B payload)", payload.len()),
            bytes: payload.len() as u64,
            packets: 1,
        });
    }
}

fn write_report(
    criterion_dir: &std::path::Path,
    started: SystemTime,
    answers: &[Answer],
    cases: &[Case],
) {
    let version = answers
        .iter()
        .find(|a| a.name == "version")
        .map(|a| String::from_utf8_lossy(&a.wire).into_owned())
        .unwrap_or_else(|| "unknown".into());
    let machine = machine::describe(&[("answers captured from", format!("MariaDB {version}"))]);
    let mut report = Report::new(
        "hot_path",
        "Hot-path micro-benchmarks",
        "cargo bench --bench hot_path",
        &machine,
    );
    report.section("Results");
    report.paragraph(
        "What the proxy runs per command, measured by criterion without a database, on \
         answers captured from a real MariaDB (C-client capabilities: EOF packets, session \
         tracking on). `codec`: the packet codec of the connection phase, decoding a whole \
         answer into logical packets and writing them back. `response`: the relay's walk of \
         an answer to its end — chunk headers, the response state machine, OK/EOF status \
         into the session state — on one buffer holding the whole answer. `scan`: what a \
         COM_QUERY's text is read for (`may_kill` then `scan`). `ok`: an OK with session-state \
         changes stripped for a client without session tracking, and parsed into the \
         session state. Time is criterion's estimate per iteration (95 % interval).",
    );
    let mut rows = Vec::new();
    for case in cases {
        let row = match estimates::read(criterion_dir, case.group, &case.name, started) {
            Ok(e) => vec![
                format!("{}/{}", case.group, case.name),
                case.input.clone(),
                format!(
                    "{} ({}–{})",
                    estimates::time(e.ns),
                    estimates::time(e.low),
                    estimates::time(e.high)
                ),
                format!("{:.0}", case.bytes as f64 / e.ns * 1e3),
                if case.packets > 0 {
                    estimates::time(e.ns / case.packets as f64)
                } else {
                    String::new()
                },
            ],
            Err(_) => vec![
                format!("{}/{}", case.group, case.name),
                case.input.clone(),
                "not run".into(),
                String::new(),
                String::new(),
            ],
        };
        rows.push(row);
    }
    report.table(
        &[
            "benchmark",
            "input",
            "time per iteration",
            "MB/s",
            "per packet",
        ],
        &rows,
    );
    let path = report.write().unwrap_or_else(|e| common::fail(e));
    println!("{}\nreport: {}", report.text(), path.display());
}
