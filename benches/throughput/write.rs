//! The report: the headline (text point selects, switchyard against HAProxy), how it
//! was measured, one table per flavor, the TLS proxy against the plaintext one, and
//! two plots (QPS ratio to HAProxy, CPU per query).

use crate::common::report::Report;
use crate::common::stats::{median, spread};
use crate::common::svg::Bars;
use crate::run::{Cell, FlavorResult, Sample, Target};
use crate::sysbench::Mode;
use crate::Knobs;

/// `f` of each rotation's pair of samples (`a` against `b` of the same rotation).
fn paired(a: &[Sample], b: &[Sample], f: impl Fn(&Sample, &Sample) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| f(a, b)).collect()
}

fn qps_ratio(a: &Sample, b: &Sample) -> f64 {
    a.outcome.qps / b.outcome.qps
}

/// Latency `target` adds per statement at percentile `p`, µs: the difference of the
/// transaction percentiles to direct's in the same rotation, over the statements of a
/// transaction.
fn added_us(target: &[Sample], direct: &[Sample], p: f64) -> f64 {
    median(&paired(target, direct, |t, d| {
        (t.outcome.percentile(p) - d.outcome.percentile(p)) * 1000.0
            / t.outcome.statements_per_transaction()
    }))
}

fn medians(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = samples.iter().filter_map(f).collect();
    (!values.is_empty()).then(|| median(&values))
}

fn or_dash(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The cell's row for `target`.
fn row(result: &FlavorResult, cell: &Cell, target: Target) -> Vec<String> {
    let s = result.samples(cell, target);
    let direct = result.samples(cell, Target::Direct);
    let haproxy = result.samples(cell, Target::Haproxy);
    let qps: Vec<f64> = s.iter().map(|s| s.outcome.qps).collect();
    let latency = [50.0, 95.0, 99.0]
        .map(|p| {
            let v: Vec<f64> = s.iter().map(|s| s.outcome.percentile(p)).collect();
            format!("{:.2}", median(&v))
        })
        .join(" / ");
    let added = if target == Target::Direct {
        "–".to_owned()
    } else {
        [50.0, 95.0, 99.0]
            .map(|p| format!("{:.0}", added_us(s, direct, p)))
            .join(" / ")
    };
    let errors: u64 = s.iter().map(|s| s.outcome.errors).sum();
    vec![
        cell.workload.trim_start_matches("oltp_").to_owned(),
        cell.mode.name().to_owned(),
        cell.threads.to_string(),
        target.name().to_owned(),
        spread(&qps, 0),
        spread(&paired(s, direct, qps_ratio), 2),
        spread(&paired(s, haproxy, qps_ratio), 2),
        latency,
        added,
        or_dash(medians(s, Sample::cpu_us_per_query), 1),
        or_dash(medians(s, Sample::switches_per_query), 2),
        errors.to_string(),
    ]
}

const TABLE: [&str; 12] = [
    "workload",
    "mode",
    "threads",
    "target",
    "QPS",
    "÷ direct",
    "÷ HAProxy",
    "latency p50 / p95 / p99 ms (transaction)",
    "added per statement p50 / p95 / p99 µs",
    "proxy CPU µs/query",
    "proxy context switches/query",
    "errors",
];

/// The headline: text point selects, switchyard against HAProxy, per flavor and
/// thread count.
fn headline(report: &mut Report, flavors: &[FlavorResult]) {
    let mut rows = Vec::new();
    for result in flavors {
        for cell in result
            .cells
            .iter()
            .filter(|c| c.workload == "oltp_point_select" && c.mode == Mode::Text)
        {
            let sy = result.samples(cell, Target::Switchyard);
            let ha = result.samples(cell, Target::Haproxy);
            let direct = result.samples(cell, Target::Direct);
            rows.push(vec![
                result.flavor.name().to_owned(),
                cell.threads.to_string(),
                spread(&paired(sy, ha, qps_ratio), 2),
                spread(&paired(sy, direct, qps_ratio), 2),
                spread(&paired(ha, direct, qps_ratio), 2),
                format!("{:.0}", added_us(sy, direct, 50.0)),
                format!("{:.0}", added_us(ha, direct, 50.0)),
                or_dash(medians(sy, Sample::cpu_us_per_query), 1),
                or_dash(medians(ha, Sample::cpu_us_per_query), 1),
            ]);
        }
    }
    report.section("Headline: oltp_point_select, text protocol");
    report.table(
        &[
            "server",
            "threads",
            "switchyard ÷ HAProxy QPS",
            "switchyard ÷ direct",
            "HAProxy ÷ direct",
            "switchyard added p50 µs",
            "HAProxy added p50 µs",
            "switchyard CPU µs/query",
            "HAProxy CPU µs/query",
        ],
        &rows,
    );
}

/// The headline table as plain text for the terminal.
pub fn headline_text(report: &Report) -> String {
    report
        .text()
        .split("## ")
        .find(|s| s.starts_with("Headline"))
        .map(|s| format!("## {}", s.trim_end()))
        .unwrap_or_default()
}

fn method(report: &mut Report, knobs: &Knobs) {
    report.section("How it was measured");
    report.paragraph(&format!(
        "One real blue/green pair per server flavor (the testbed's settings); sysbench \
         1.0 `prepare` loads {tables} tables × {rows} rows on blue. Targets: **direct** \
         (sysbench to blue), **HAProxy** (mode tcp, its default threads, in front of \
         blue), **switchyard** (this build, release, plaintext, its own process), and \
         **switchyard-tls** (a second switchyard with `[tls]` and \
         `require_secure_transport`, sysbench on TLS with a self-signed certificate; \
         measured on text point_select and read_only only). Each run is `sysbench \
         WORKLOAD --threads=T --time={secs} --histogram=on --db-ps-mode=disable|auto`; \
         text = `disable` (COM_QUERY), prepared = `auto` (server-side prepared \
         statements). {rotations} rotation(s): every target once per rotation, the \
         order reversed on each rotation, so slow drift of a shared machine falls on \
         all targets alike.",
        tables = crate::sysbench::TABLES,
        rows = crate::sysbench::TABLE_SIZE,
        secs = knobs.secs,
        rotations = knobs.rotations,
    ));
    report.paragraph(
        "**QPS** is sysbench's `queries … per sec` (BEGIN/COMMIT count as queries); \
         ratios are taken within a rotation (target ÷ direct or ÷ HAProxy of the same \
         rotation), shown as median (min–max) over rotations. **Latency** percentiles \
         are per transaction, read from sysbench's full latency histogram. **Added per \
         statement** = (target's percentile − direct's percentile in the same rotation) \
         ÷ statements per transaction (the run's queries ÷ transactions: 1 for \
         point_select, 16 for read_only, 20 for read_write), median over rotations: what the hop adds to \
         one round trip. **Proxy CPU µs/query** and **context switches/query** come \
         from the proxy process's own accounting (`/proc/PID/stat` utime+stime of all \
         threads, voluntary+involuntary switches summed over threads) read before and \
         after each run, divided by the run's queries; HAProxy's the same way. CPU is \
         counted in 10 ms ticks.",
    );
    report.paragraph(
        "MySQL 9.7: the app account uses `caching_sha2_password`. Debian's sysbench \
         (libmariadb3 of MariaDB 10.11) logs in over plaintext even with the server's \
         cache empty: its plugin fetches the server's RSA key for the full authentication (a run \
         without any warm-up passes on every target). A sysbench built on \
         libmysqlclient does not ask for the key and would be refused, so the bench \
         first logs in once over TLS with the build's `mysql --ssl-mode=REQUIRED`, \
         which fills the cache: every plaintext login after it (direct, HAProxy, the \
         proxy's backend leg) takes the fast path with either client library.",
    );
}

fn flavor_tables(report: &mut Report, result: &FlavorResult) {
    report.section(&format!("{} ({})", result.flavor.name(), result.version));
    let mut rows = Vec::new();
    for cell in &result.cells {
        for target in cell.targets() {
            rows.push(row(result, cell, target));
        }
    }
    report.table(&TABLE, &rows);
    let mut tls_rows = Vec::new();
    for cell in result
        .cells
        .iter()
        .filter(|c| c.targets().contains(&Target::SwitchyardTls))
    {
        let tls = result.samples(cell, Target::SwitchyardTls);
        let plain = result.samples(cell, Target::Switchyard);
        let ha = result.samples(cell, Target::Haproxy);
        tls_rows.push(vec![
            cell.label(),
            spread(&paired(tls, plain, qps_ratio), 2),
            spread(&paired(tls, ha, qps_ratio), 2),
            or_dash(medians(tls, Sample::cpu_us_per_query), 1),
            or_dash(medians(plain, Sample::cpu_us_per_query), 1),
        ]);
    }
    if !tls_rows.is_empty() {
        report.paragraph(&format!(
            "TLS client leg on {}: switchyard-tls against the plaintext switchyard.",
            result.flavor.name()
        ));
        report.table(
            &[
                "cell",
                "TLS ÷ plaintext QPS",
                "TLS ÷ HAProxy QPS",
                "TLS proxy CPU µs/query",
                "plaintext proxy CPU µs/query",
            ],
            &tls_rows,
        );
    }
}

fn plots(report: &mut Report, flavors: &[FlavorResult]) {
    let Some(first) = flavors.first() else { return };
    let groups: Vec<String> = first.cells.iter().map(Cell::label).collect();
    let ratio = flavors
        .iter()
        .map(|r| {
            let values = r
                .cells
                .iter()
                .map(|c| {
                    median(&paired(
                        r.samples(c, Target::Switchyard),
                        r.samples(c, Target::Haproxy),
                        qps_ratio,
                    ))
                })
                .collect();
            (r.flavor.name().to_owned(), values)
        })
        .collect();
    report.plot(
        "ratio",
        "switchyard ÷ HAProxy QPS per cell",
        Bars {
            title: "switchyard ÷ HAProxy queries per second (median over rotations)".into(),
            y_label: "QPS ratio".into(),
            groups: groups.clone(),
            series: ratio,
            reference: Some(1.0),
        }
        .render(),
    );
    let mut cpu = Vec::new();
    for r in flavors {
        for target in [Target::Switchyard, Target::Haproxy] {
            let values = r
                .cells
                .iter()
                .map(|c| {
                    medians(r.samples(c, target), Sample::cpu_us_per_query).unwrap_or(f64::NAN)
                })
                .collect();
            cpu.push((format!("{} ({})", target.name(), r.flavor.name()), values));
        }
    }
    report.plot(
        "cpu",
        "proxy CPU µs per query, switchyard and HAProxy",
        Bars {
            title: "proxy CPU µs per query (median over rotations)".into(),
            y_label: "CPU µs / query".into(),
            groups,
            series: cpu,
            reference: None,
        }
        .render(),
    );
}

/// The whole report.
pub fn report(knobs: &Knobs, machine: &[(String, String)], flavors: &[FlavorResult]) -> Report {
    let mut report = Report::new(
        "throughput",
        "Throughput and latency: direct, HAProxy, switchyard",
        &knobs.command(),
        machine,
    );
    headline(&mut report, flavors);
    method(&mut report, knobs);
    plots(&mut report, flavors);
    for result in flavors {
        flavor_tables(&mut report, result);
    }
    report
}
