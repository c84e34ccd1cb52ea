//! The scale benchmark's report: memory per idle session, where sessions stopped
//! fitting, the active clients' latency beside idle sessions, and the connection
//! set-up rate; with a plot of RSS against sessions.

use std::path::PathBuf;

use crate::client::Setups;
use crate::common::report::Report;
use crate::common::stats::percentile;
use crate::common::svg::{Plot, Series, Style};
use crate::waves::Run;

pub struct Settings {
    pub sizes: Vec<usize>,
    pub secs: f64,
    pub connectors: usize,
    pub active: usize,
    pub haproxy_maxconn: usize,
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// KiB per session above the proxy's RSS before any session.
fn per_session(kib: u64, baseline: u64, sessions: usize) -> String {
    if sessions == 0 {
        return "–".into();
    }
    format!("{:.1}", (kib as f64 - baseline as f64) / sessions as f64)
}

fn memory(report: &mut Report, runs: &[(String, Run)]) {
    report.section("Memory per idle session");
    report.paragraph(
        "Each session ran one query with a ~200 KB result, then idled. RSS of the proxy process \
         right after the wave, and 3 s later (the proxy gives an idle session's buffers back \
         after ~1 s); per session = (idle RSS − RSS with no session) / sessions; added by the \
         wave = the growth of idle RSS over the previous wave / the sessions it added. Memory \
         the allocator got back is reused by the next sessions rather than returned to the \
         system, so the first waves carry the buffers of the sessions that were busy at once.",
    );
    let mut rows = Vec::new();
    for (name, run) in runs {
        rows.push(vec![
            name.clone(),
            "0".into(),
            mib(run.baseline_kib),
            mib(run.baseline_kib),
            "–".into(),
            "–".into(),
        ]);
        let (mut kib, mut sessions) = (run.baseline_kib, 0);
        for w in &run.waves {
            rows.push(vec![
                name.clone(),
                w.sessions.to_string(),
                mib(w.rss_busy_kib),
                mib(w.rss_idle_kib),
                per_session(w.rss_idle_kib, run.baseline_kib, w.sessions),
                per_session(w.rss_idle_kib, kib, w.sessions.saturating_sub(sessions)),
            ]);
            (kib, sessions) = (w.rss_idle_kib, w.sessions);
        }
    }
    report.table(
        &[
            "proxy",
            "idle sessions",
            "RSS after the wave, MiB",
            "RSS idle, MiB",
            "idle KiB per session",
            "KiB per session added by the wave",
        ],
        &rows,
    );
    let series = runs
        .iter()
        .map(|(name, run)| Series {
            name: name.clone(),
            points: std::iter::once((0.0, run.baseline_kib as f64 / 1024.0))
                .chain(
                    run.waves
                        .iter()
                        .map(|w| (w.sessions as f64, w.rss_idle_kib as f64 / 1024.0)),
                )
                .collect(),
            style: Style::Line,
        })
        .collect();
    let plot = Plot {
        title: "Proxy RSS with idle sessions (after a ~200 KB result each)".into(),
        x_label: "idle sessions".into(),
        y_label: "RSS, MiB".into(),
        series,
        spans: Vec::new(),
        log_y: false,
    };
    report.plot("rss", "RSS against idle sessions", plot.render());
}

fn limits(report: &mut Report, runs: &[(String, Run)], settings: &Settings) {
    report.section("How many sessions fit");
    let goal = settings.sizes.last().copied().unwrap_or(0);
    let mut lines = String::new();
    for (name, run) in runs {
        let line = match &run.limit {
            None => format!("- {name}: all {goal} sessions fit.\n"),
            Some(l) => format!(
                "- {name}: {} sessions open when the next was refused ({}); the proxy then had \
                 {} descriptors open, its limit is {}. Measured with {} held (a few closed again).\n",
                l.opened,
                l.error.replace(['|', '`'], "'"),
                l.fds,
                l.fd_limit,
                run.waves.last().map(|w| w.sessions).unwrap_or(0),
            ),
        };
        lines.push_str(&line);
    }
    lines.push_str(&format!(
        "\nHAProxy ran with `maxconn {}` (it wants 2 × maxconn + 17 descriptors).",
        settings.haproxy_maxconn
    ));
    report.paragraph(&lines);
}

fn latency(report: &mut Report, runs: &[(String, Run)], settings: &Settings) {
    report.section("Active clients beside idle sessions");
    report.paragraph(&format!(
        "{} clients run primary-key selects back to back for {} s, with no idle session and \
         after each wave; latency per query in µs, ratios against no idle session.",
        settings.active, settings.secs
    ));
    let mut rows = Vec::new();
    for (name, run) in runs {
        let p50_0 = percentile(&run.unloaded.micros, 50.0);
        let p99_0 = percentile(&run.unloaded.micros, 99.0);
        let waves = std::iter::once((0, &run.unloaded))
            .chain(run.waves.iter().map(|w| (w.sessions, &w.latency)));
        for (sessions, l) in waves {
            let p50 = percentile(&l.micros, 50.0);
            let p99 = percentile(&l.micros, 99.0);
            rows.push(vec![
                name.clone(),
                sessions.to_string(),
                format!("{:.0}", l.queries_per_sec),
                format!("{p50:.0}"),
                format!("{p99:.0}"),
                format!("{:.2}", p50 / p50_0),
                format!("{:.2}", p99 / p99_0),
                l.errors.to_string(),
            ]);
        }
    }
    report.table(
        &[
            "proxy",
            "idle sessions",
            "selects/s",
            "p50 µs",
            "p99 µs",
            "p50 ×",
            "p99 ×",
            "errors",
        ],
        &rows,
    );
}

fn setup_rate(report: &mut Report, setups: &[(String, Setups)], settings: &Settings) {
    report.section("Connection set-up");
    report.paragraph(&format!(
        "{} connectors each connect, log in, run `SELECT 1` and quit, over and over for {} s per \
         target, in 3 rounds of rotated order (after 1 s of warm-up each); \
         connect time is TCP connect + handshake + authentication, in ms.",
        settings.connectors, settings.secs
    ));
    let direct = setups.first().map(|(_, s)| s.per_sec()).unwrap_or(f64::NAN);
    let rows: Vec<Vec<String>> = setups
        .iter()
        .map(|(name, s)| {
            vec![
                name.clone(),
                format!("{:.0}", s.per_sec()),
                format!("{:.2}", s.per_sec() / direct),
                format!("{:.2}", percentile(&s.connect_ms, 50.0)),
                format!("{:.2}", percentile(&s.connect_ms, 99.0)),
                s.errors.to_string(),
                s.first_error
                    .clone()
                    .unwrap_or_default()
                    .replace(['|', '`'], "'"),
            ]
        })
        .collect();
    report.table(
        &[
            "to",
            "connections/s",
            "× direct",
            "connect p50 ms",
            "connect p99 ms",
            "errors",
            "first error",
        ],
        &rows,
    );
}

/// Writes `scale.md` and its plot; returns the markdown file's path.
pub fn write(
    machine: &[(String, String)],
    settings: &Settings,
    runs: &[(String, Run)],
    setups: &[(String, Setups)],
) -> Result<PathBuf, String> {
    let mut report = Report::new(
        "scale",
        "Sessions on one box: memory, latency beside idle sessions, connection set-up",
        "cargo bench --bench scale",
        machine,
    );
    report.paragraph(&format!(
        "Waves: {:?} sessions; {} s per latency and set-up measurement; {} connectors. \
         MariaDB with the thread pool; the proxy and HAProxy each in front of blue, one after \
         the other.",
        settings.sizes, settings.secs, settings.connectors
    ));
    memory(&mut report, runs);
    limits(&mut report, runs, settings);
    latency(&mut report, runs, settings);
    setup_rate(&mut report, setups, settings);
    report.write()
}
