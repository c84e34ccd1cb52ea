//! sysbench (the `mysql` driver, i.e. libmariadb) through the proxy, and the same run
//! against blue directly for comparison. A run passes when sysbench exits 0 and its
//! own counters show no error; the figures are printed, never asserted on.

mod support;

use std::process::{Command, Output};

use switchyard::testbed::{Pair, APP_PASSWORD, APP_USER};

use support::Proxy;

/// What sysbench reported for one run.
struct Report {
    transactions: u64,
    tps: f64,
    /// Errors sysbench ignored and retried (deadlocks, lock wait timeouts: 1213,
    /// 1020, 1205), which a busy database gives directly too.
    ignored_errors: u64,
    reconnects: u64,
}

/// Run `sysbench <args> <command>` against `addr` as `app` in database `sbtest`.
fn sysbench(addr: &str, args: &[&str], command: &str) -> Output {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let mut cmd = Command::new("sysbench");
    cmd.args([
        "--db-driver=mysql".to_owned(),
        format!("--mysql-host={host}"),
        format!("--mysql-port={port}"),
        format!("--mysql-user={APP_USER}"),
        format!("--mysql-password={APP_PASSWORD}"),
        "--mysql-db=sbtest".to_owned(),
        "--mysql-ssl=off".to_owned(),
    ])
    .args(args)
    .arg(command);
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run sysbench (is it installed? scripts/install-deps.sh): {e}")
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run `command`, which must succeed; returns its stdout.
fn sysbench_ok(addr: &str, args: &[&str], command: &str, proxy: &Proxy) -> String {
    let out = sysbench(addr, args, command);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "sysbench {command} {args:?} on {addr} failed ({}):\n{stdout}\n{}\nproxy log:\n{}",
        out.status,
        text(&out.stderr),
        proxy.log()
    );
    for printed in [&stdout, &text(&out.stderr)] {
        assert!(
            !printed.contains("FATAL"),
            "sysbench {command} on {addr}:\n{printed}"
        );
    }
    stdout
}

/// The first number after `label` on the line that starts (after spaces) with it.
fn counter(stdout: &str, label: &str) -> Option<(u64, Option<f64>)> {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start()[label.len()..].trim();
    let mut parts = rest.split_whitespace();
    let count = parts.next()?.parse().ok()?;
    let rate = parts
        .next()
        .and_then(|p| p.trim_start_matches('(').parse().ok());
    Some((count, rate))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} transactions ({:.2} per sec.), {} ignored errors, {} reconnects",
            self.transactions, self.tps, self.ignored_errors, self.reconnects
        )
    }
}

fn report(stdout: &str) -> Report {
    let get = |label: &str| {
        counter(stdout, label)
            .unwrap_or_else(|| panic!("no {label:?} line in sysbench's report:\n{stdout}"))
    };
    let (transactions, tps) = get("transactions:");
    // 1.0.20 prints `ignored errors:` and `reconnects:`; an error it does not ignore
    // ends the run with FATAL and a non-zero exit, which sysbench_ok catches. Should a
    // version print a plain `errors:` counter, it must be zero.
    if let Some((errors, _)) = counter(stdout, "errors:") {
        assert_eq!(errors, 0, "sysbench counted errors:\n{stdout}");
    }
    Report {
        transactions,
        tps: tps.unwrap_or_else(|| panic!("no rate on the transactions line:\n{stdout}")),
        ignored_errors: get("ignored errors:").0,
        reconnects: get("reconnects:").0,
    }
}

/// prepare, run, cleanup with `args` on `addr`; the tables are checked on blue after
/// the run (sysbench's writes keep every table at `--table-size` rows).
fn bench(pair: &Pair, proxy: &Proxy, addr: &str, workload: &str, args: &[&str]) -> Report {
    let mut all = vec![workload];
    all.extend_from_slice(args);
    sysbench_ok(addr, &all, "prepare", proxy);
    let stdout = sysbench_ok(addr, &all, "run", proxy);
    let report = report(&stdout);
    assert!(report.transactions > 0, "no transaction done:\n{stdout}");
    assert_eq!(report.reconnects, 0, "sysbench reconnected:\n{stdout}");
    for table in ["sbtest1", "sbtest2"] {
        let count = pair
            .blue
            .sql(&format!("SELECT COUNT(*) FROM sbtest.{table}"))
            .unwrap();
        assert_eq!(
            count.trim(),
            "1000",
            "{table} after {workload} {args:?} on {addr}"
        );
    }
    sysbench_ok(addr, &all, "cleanup", proxy);
    report
}

const READ_WRITE: &[&str] = &["--tables=2", "--table-size=1000", "--threads=2", "--time=5"];

/// The same read/write run directly and through the proxy; returns (direct, proxy).
fn read_write(ps_mode: &str) -> (Report, Report) {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let mut args = READ_WRITE.to_vec();
    args.push(ps_mode);
    let direct = bench(&pair, &proxy, &pair.blue.addr(), "oltp_read_write", &args);
    let proxied = bench(&pair, &proxy, &proxy.addr, "oltp_read_write", &args);
    eprintln!(
        "oltp_read_write {ps_mode}: direct {direct}\noltp_read_write {ps_mode}: proxy  {proxied}"
    );
    (direct, proxied)
}

#[test]
fn oltp_read_write_with_prepared_statements() {
    read_write("--db-ps-mode=auto");
}

#[test]
fn oltp_read_write_with_text_queries() {
    read_write("--db-ps-mode=disable");
}

#[test]
fn oltp_point_select_single_thread() {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let args = ["--tables=2", "--table-size=1000", "--threads=1", "--time=3"];
    let direct = bench(&pair, &proxy, &pair.blue.addr(), "oltp_point_select", &args);
    let proxied = bench(&pair, &proxy, &proxy.addr, "oltp_point_select", &args);
    assert_eq!(
        proxied.ignored_errors, 0,
        "a read-only single thread cannot deadlock"
    );
    eprintln!("oltp_point_select: direct {direct}\noltp_point_select: proxy  {proxied}");
}
