//! `target/bench/pause.md`: per size, the distribution over switchovers of the pause
//! and of the slowest statement inside vs outside, errors, lost and duplicated writes,
//! phase durations, the descriptor limit, and a plot around one switchover.

use std::path::PathBuf;

use super::common::report::Report;
use super::common::svg::{Plot, Series, Span, Style};
use super::common::{machine, stats};
use super::load::Kind;
use super::{FdModel, Knobs, SizeRun};

/// `median / p90 / max` of `values`, in ms.
fn dist(values: &[f64]) -> String {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} / {:.1}",
        stats::median(&values),
        stats::percentile(&values, 90.0),
        stats::min_max(&values).1
    )
}

fn codes(errors: &[(u16, usize)]) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    errors
        .iter()
        .map(|(c, n)| format!("{n} × {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const PHASES: [&str; 6] = [
    "precheck",
    "draining",
    "fencing",
    "catching_up",
    "promoting",
    "retargeting",
];

/// The pre-open time of a switchover: the proxy's own figure, else the client's view.
fn pre_open_ms(s: &super::switch::Switch) -> f64 {
    s.preopen_ms.unwrap_or_else(|| {
        let at = |n: &str| s.marks.iter().find(|m| m.name == n).map(|m| m.at);
        match (at("pre_open"), at("draining")) {
            (Some(a), Some(b)) => (b - a) * 1000.0,
            _ => f64::NAN,
        }
    })
}

/// CPU used by the proxy, blue and green during the pre-open, in % of one core.
fn pre_open_cpu(s: &super::switch::Switch) -> String {
    let at = |n: &str| s.marks.iter().find(|m| m.name == n);
    match (at("pre_open"), at("draining")) {
        (Some(a), Some(b)) if b.at > a.at => {
            let pct = |i: usize| (b.cpu[i] - a.cpu[i]) / (b.at - a.at) * 100.0;
            format!("{:.0} / {:.0} / {:.0}", pct(0), pct(1), pct(2))
        }
        _ => "–".into(),
    }
}

fn summary(report: &mut Report, runs: &[SizeRun]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let ok = r.switches.iter().filter(|s| s.ok).count();
            let gap: Vec<f64> = r.seen.iter().map(|s| s.gap_ms).collect();
            let max: Vec<f64> = r.seen.iter().map(|s| s.max_ms).collect();
            let pause: Vec<f64> = r.switches.iter().map(|s| s.pause_ms).collect();
            let replica = match &r.replica.1 {
                Ok(a) => format!("{}/{}", a.lost, a.duplicated),
                Err(e) => format!("not checked: {e}"),
            };
            vec![
                format!(
                    "{}{}",
                    r.sessions,
                    if r.thread_pool { " (pool)" } else { "" }
                ),
                format!("{ok}/{}", r.switches.len()),
                dist(&gap),
                dist(&max),
                format!("{:.1} / {:.1}", r.outside.gap_ms, r.outside.max_ms),
                dist(&pause),
                codes(&r.errors),
                format!("{}/{}", r.primary.1.lost, r.primary.1.duplicated),
                replica,
                format!(
                    "{}/{} ok{}",
                    r.state_checked - r.state_failures.len(),
                    r.state_checked,
                    if r.state_mismatches > 0 {
                        format!(", {} reads saw another @var", r.state_mismatches)
                    } else {
                        String::new()
                    }
                ),
            ]
        })
        .collect();
    report.table(
        &[
            "sessions",
            "switchovers ok",
            "pause: longest gap, ms (median / p90 / max)",
            "slowest statement inside, ms (median / p90 / max)",
            "outside: longest gap / slowest, ms",
            "gate closed (proxy), ms",
            "client errors",
            "lost/dup on primary",
            "lost/dup on other side",
            "session state",
        ],
        &rows,
    );
}

fn pre_open_table(report: &mut Report, runs: &[SizeRun]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let of = |f: fn(&super::analysis::Seen) -> f64| -> Vec<f64> {
                r.seen.iter().map(f).collect()
            };
            let took: Vec<f64> = r.switches.iter().map(pre_open_ms).collect();
            vec![
                r.sessions.to_string(),
                dist(&took),
                r.seen.first().map_or("–".into(), |s| {
                    format!("{:.1} / {:.1}", s.pre_open_p99_ms, s.pre_open_max_ms)
                }),
                dist(&of(|s| s.pre_open_p99_ms)),
                dist(&of(|s| s.before_p99_ms)),
                dist(&of(|s| s.pre_open_max_ms)),
                dist(&of(|s| s.before_max_ms)),
                dist(&of(|s| s.guardrails_max_ms)),
            ]
        })
        .collect();
    report.table(
        &[
            "sessions",
            "pre-open took, ms",
            "1st switchover: p99 / max during pre-open, ms",
            "p99 during pre-open, ms",
            "p99 control, ms",
            "max during pre-open, ms",
            "max control, ms",
            "max during the guardrails, ms",
        ],
        &rows,
    );
}

fn phases_table(report: &mut Report, runs: &[SizeRun]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![r.sessions.to_string()];
            for phase in PHASES {
                let ms: Vec<f64> = r
                    .switches
                    .iter()
                    .filter(|s| s.ok)
                    .filter_map(|s| s.phases.iter().find(|(p, _)| p == phase).map(|p| p.1))
                    .collect();
                row.push(if ms.is_empty() {
                    "–".into()
                } else {
                    stats::spread(&ms, 1)
                });
            }
            row
        })
        .collect();
    let mut header = vec!["sessions"];
    header.extend(PHASES);
    report.table(&header, &rows);
}

fn details(report: &mut Report, r: &SizeRun) {
    let rows: Vec<Vec<String>> = r
        .switches
        .iter()
        .zip(&r.seen)
        .enumerate()
        .map(|(i, (s, seen))| {
            vec![
                (i + 1).to_string(),
                if s.ok {
                    s.primary.clone()
                } else {
                    format!("FAILED: {}", s.message)
                },
                format!("{:.1}", seen.gap_ms),
                format!("{:.1} / {:.1}", seen.max_read_ms, seen.max_write_ms),
                format!("{:.1}", seen.after_open_max_ms),
                format!("{:.1} / {:.1}", seen.pre_open_p99_ms, seen.before_p99_ms),
                format!("{:.1}", pre_open_ms(s)),
                pre_open_cpu(s),
                format!("{:.1}", s.pause_ms),
                codes(&seen.errors),
                s.peak_fds.to_string(),
            ]
        })
        .collect();
    report.table(
        &[
            "#",
            "now primary",
            "longest gap, ms",
            "slowest read / write, ms",
            "slowest due after the gate opened, ms",
            "p99 during pre-open / control, ms",
            "pre-open took, ms",
            "CPU during pre-open, % of a core: proxy / blue / green",
            "gate closed, ms",
            "errors",
            "proxy fds (peak)",
        ],
        &rows,
    );
}

fn plot(r: &SizeRun) -> Option<String> {
    let (i, samples) = &r.shown;
    let s = r.switches.get(*i)?;
    let from = super::plot_from(s);
    let points = |kind: Kind| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|x| x.kind == kind)
            .map(|x| ((x.due - from) * 1000.0, x.latency() * 1000.0))
            .collect()
    };
    let mut spans = Vec::new();
    for (k, m) in s.marks.iter().enumerate() {
        let to = s.marks.get(k + 1).map_or(s.end, |n| n.at);
        if to < from {
            continue;
        }
        spans.push(Span {
            from: (m.at.max(from) - from) * 1000.0,
            to: (to - from) * 1000.0,
            label: m.name.replace('_', " "),
        });
    }
    Some(
        Plot {
            title: format!(
                "{} sessions: statement latency around switchover #{} (gap {:.1} ms)",
                r.sessions,
                i + 1,
                r.seen.get(*i).map_or(0.0, |x| x.gap_ms)
            ),
            x_label: "scheduled time, ms from a second before the gate closed".into(),
            y_label: "latency from scheduled time, ms (log)".into(),
            series: vec![
                Series {
                    name: "readers (point select)".into(),
                    points: points(Kind::Read),
                    style: Style::Dots,
                },
                Series {
                    name: "writers (INSERT)".into(),
                    points: points(Kind::Write),
                    style: Style::Dots,
                },
            ],
            spans,
            log_y: true,
        }
        .render(),
    )
}

fn limits(report: &mut Report, runs: &[SizeRun], limited: Option<FdModel>) {
    let mut text = String::from(
        "The proxy holds a client descriptor and a backend descriptor per session, and during a \
         switchover also the pre-opened connection to the other side. Peak descriptors of the \
         proxy process, sampled every 5 ms during each switchover:\n\n",
    );
    for r in runs {
        text.push_str(&format!(
            "- {} sessions: {} at rest before login, peak {} ({:.2} per session); open-file limit {}\n",
            r.sessions, r.fds.base, r.peak_fds, r.fds.per_session, r.fds.limit
        ));
    }
    if let Some(m) = limited {
        let need = m.base as f64 + m.per_session * 10_000.0;
        text.push_str(&format!(
            "\nThe largest size was derived from the {}-session run: {:.2} descriptors per \
             session at the peak + {} at rest against the limit of {} (5% kept spare) gives {}. \
             10,000 sessions would need about {:.0} descriptors in the proxy — more than the \
             limit: the proxy's open-file limit is what bounds the size on this machine.\n",
            m.measured_at,
            m.per_session,
            m.base,
            m.limit,
            m.largest(),
            need
        ));
    }
    report.paragraph(&text);
}

pub fn write(knobs: &Knobs, runs: &[SizeRun], limited: Option<FdModel>) -> Result<PathBuf, String> {
    let server = super::common::bed::build(switchyard::testbed::Flavor::MariaDb)
        .ok()
        .and_then(|b| b.version().ok())
        .unwrap_or_default();
    let mut report = Report::new(
        "pause",
        "Switchover pause under open-loop load",
        "cargo bench --bench pause",
        &machine::describe(&[("server", server)]),
    );
    report.paragraph(&format!(
        "Per size, a fresh MariaDB pair with the proxy in front as its own process. N sessions \
         log in through the proxy and each sets a user variable, a session variable \
         (`wait_timeout`, a value of its own) and prepares a statement; every 4th session writes \
         (INSERT of a unique id), the others read (a point select that also returns the user \
         variable). The load is open-loop: {:.0} statements/s over all sessions, each on a \
         fixed schedule, latency measured from the scheduled time, so a held statement delays \
         the ones due after it and they all count. {} switchovers per size, back and forth, \
         {:.0} s of load between them. *Longest gap* is the longest time between two \
         completions (of any session) overlapping the switchover's window (command sent → \
         answer); *slowest statement* is the highest latency of a statement overlapping it. \
         Outside: the same away from every window (±0.25 s). Lost/dup: acknowledged ids \
         missing from / present twice in the table on the final primary and on the other \
         side once it caught up. `(pool)`: the servers ran `thread_handling=pool-of-threads`.",
        knobs.rate, knobs.switchovers, knobs.secs_between
    ));
    report.section("Summary");
    summary(&mut report, runs);
    report.section("Pre-opening connections to the new side");
    report.paragraph(
        "Before the gate closes, the proxy opens a connection to the new side for every session \
         (so the pause does not include logins). What clients felt meanwhile: latency of the statements *answered* during the pre-open, against those answered in a span as long just before the switchover command (the control). Over the switchovers, median / p90 / max:",
    );
    pre_open_table(&mut report, runs);
    report.section("Phase durations (proxy's report), ms: median (min–max)");
    phases_table(&mut report, runs);
    report.section("Descriptors: what bounds the size");
    limits(&mut report, runs, limited);
    for r in runs {
        report.section(&format!("{} sessions", r.sessions));
        report.paragraph(&format!(
            "{} statements; sessions logged in and set up in {:.1} s. Writes on the final \
             primary ({}): {}; on {}: {}.{}",
            r.statements,
            r.setup_secs,
            r.primary.0,
            r.primary.1.text(),
            r.replica.0,
            match &r.replica.1 {
                Ok(a) => a.text(),
                Err(e) => e.clone(),
            },
            if r.state_failures.is_empty() {
                String::new()
            } else {
                format!(" State lost: {}", r.state_failures.join("; "))
            }
        ));
        details(&mut report, r);
        if let Some(svg) = plot(r) {
            report.plot(
                &r.sessions.to_string(),
                &format!("latency around a switchover, {} sessions", r.sessions),
                svg,
            );
        }
    }
    report.write()
}
