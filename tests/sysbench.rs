//! sysbench (the `mysql` driver, i.e. libmariadb) through the proxy, and the same run
//! against blue directly for comparison; through switchovers on MariaDB and MySQL 9.7.
//! A run passes when sysbench exits 0 and its own counters show no error; the figures
//! are printed, never asserted on.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

use support::tls::{tls_pair_of, TestCa};
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

/// `sysbench <args> <command>` against `addr` as `app` in database `sbtest`, not yet run.
fn sysbench_command(addr: &str, args: &[&str], command: &str) -> Command {
    sysbench_command_tls(addr, args, command, None)
}

/// [`sysbench_command`], on TLS when `tls` is given: the folder holding `cacert.pem`,
/// `client-cert.pem` and `client-key.pem`, which sysbench 1.0 reads from its working
/// directory (it takes no file names).
fn sysbench_command_tls(addr: &str, args: &[&str], command: &str, tls: Option<&Path>) -> Command {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let mut cmd = Command::new("sysbench");
    if let Some(dir) = tls {
        cmd.current_dir(dir);
    }
    cmd.args([
        "--db-driver=mysql".to_owned(),
        format!("--mysql-host={host}"),
        format!("--mysql-port={port}"),
        format!("--mysql-user={APP_USER}"),
        format!("--mysql-password={APP_PASSWORD}"),
        "--mysql-db=sbtest".to_owned(),
        format!("--mysql-ssl={}", if tls.is_some() { "on" } else { "off" }),
    ])
    .args(args)
    .arg(command);
    cmd
}

fn cannot_run(e: std::io::Error) -> ! {
    panic!("cannot run sysbench (is it installed? scripts/install-deps.sh): {e}")
}

/// Run `sysbench <args> <command>` against `addr`.
fn sysbench(addr: &str, args: &[&str], command: &str) -> Output {
    sysbench_command(addr, args, command)
        .output()
        .unwrap_or_else(|e| cannot_run(e))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run `command`, which must succeed; returns its stdout.
fn sysbench_ok(addr: &str, args: &[&str], command: &str, proxy: &Proxy) -> String {
    succeeded(sysbench(addr, args, command), addr, args, command, proxy)
}

/// The stdout of a finished sysbench, which must have exited 0 without a FATAL.
fn succeeded(out: Output, addr: &str, args: &[&str], command: &str, proxy: &Proxy) -> String {
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

/// Threads and tables of the run through switchovers: more tables than the plain
/// runs, so eight threads seldom deadlock on each other.
const THROUGH_SWITCHOVERS: &[&str] = &[
    "oltp_read_write",
    "--tables=4",
    "--table-size=10000",
    "--threads=8",
    "--db-ps-mode=auto",
    // Debug level: sysbench names each error it ignores.
    "--verbosity=5",
];

for_each_flavor!(oltp_read_write_with_prepared_statements_through_switchovers);

/// libmariadb sends a prepared statement's parameter types only with its first
/// execution: after each move the proxy must give the new server the ones it kept, or
/// sysbench dies on ERR 1210. Four switchovers (back on blue at the end) while eight
/// threads run; no error, except the deadlocks sysbench retries (the database's own).
/// On MariaDB and on MySQL.
fn oltp_read_write_with_prepared_statements_through_switchovers(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    through_switchovers(flavor, &pair, &proxy, None);
}

for_each_flavor!(oltp_read_write_over_tls_through_switchovers);

/// The same with every leg on TLS: sysbench (libmariadb) on TLS to a proxy that
/// requires it, the proxy on verified TLS to servers that require it.
fn oltp_read_write_over_tls_through_switchovers(flavor: Flavor) {
    let ca = TestCa::new("sysbench test CA");
    let pair = tls_pair_of(flavor, ca.server_tls(&ca.server("server"), true));
    let proxy = Proxy::builder(&pair)
        .client_tls(&ca.server("proxy"), "require_secure_transport = true")
        .backend_tls(&ca.ca)
        .start();
    let client = ca.client("sysbench", "sysbench");
    let dir = tempfile::tempdir().expect("a folder for sysbench's TLS files");
    for (from, to) in [
        (&ca.ca, "cacert.pem"),
        (&client.cert, "client-cert.pem"),
        (&client.key, "client-key.pem"),
    ] {
        std::fs::copy(from, dir.path().join(to)).expect("copy a TLS file for sysbench");
    }
    through_switchovers(flavor, &pair, &proxy, Some(dir.path()));
}

/// Four switchovers (back on blue at the end) while eight sysbench threads run with
/// prepared statements; sysbench on TLS from `tls` when given.
fn through_switchovers(flavor: Flavor, pair: &Pair, proxy: &Proxy, tls: Option<&Path>) {
    let addr = proxy.addr.clone();
    let setup = |command: &str| {
        let out = sysbench_command_tls(&addr, THROUGH_SWITCHOVERS, command, tls)
            .output()
            .unwrap_or_else(|e| cannot_run(e));
        succeeded(out, &addr, THROUGH_SWITCHOVERS, command, proxy);
    };
    setup("prepare");
    let mut args = THROUGH_SWITCHOVERS.to_vec();
    // Outlasts the switchovers: sysbench must be running through all of them.
    args.push("--time=30");
    let run = sysbench_command_tls(&addr, &args, "run", tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| cannot_run(e));
    let figures = support::switchovers(proxy, 4, Duration::from_secs(2));
    let stdout = succeeded(
        run.wait_with_output().expect("wait for sysbench"),
        &addr,
        &args,
        "run",
        proxy,
    );
    let report = report(&stdout);
    eprintln!(
        "{}{}: oltp_read_write --threads=8 --db-ps-mode=auto, 4 switchovers: {report}\n{figures:#?}",
        flavor.name(),
        if tls.is_some() { " over TLS" } else { "" }
    );
    assert!(report.transactions > 0, "no transaction done:\n{stdout}");
    assert_eq!(report.reconnects, 0, "sysbench reconnected:\n{stdout}");
    // sysbench retries a deadlock, and eight threads on these tables meet one now and
    // then against a server directly too; every other error counts.
    let ignored: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("Ignoring error"))
        .collect();
    assert_eq!(ignored.len() as u64, report.ignored_errors, "{stdout}");
    assert!(
        ignored.iter().all(|l| l.contains("Ignoring error 1213 ")),
        "sysbench saw errors other than deadlocks:\n{}",
        ignored.join("\n")
    );
    for table in ["sbtest1", "sbtest2", "sbtest3", "sbtest4"] {
        let count = pair
            .blue
            .sql(&format!("SELECT COUNT(*) FROM sbtest.{table}"))
            .unwrap();
        assert_eq!(count.trim(), "10000", "{table} on blue after the run");
    }
    setup("cleanup");
}
