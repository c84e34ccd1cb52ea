//! The process's metrics recorder: the `metrics` facade's Prometheus exporter, used
//! for rendering only (the proxy serves `/metrics` itself). Installed once per
//! process; until then every `metrics` call is a no-op.
//!
//! At installation every catalogue metric is described once and every series whose
//! labels are known in advance is created at 0, so dashboards and alerts find their
//! series before anything happened. A scrape runs the scrape hooks, folds the
//! per-thread hot counters ([`super::hot`]) into the exporter's counters, and appends
//! the command latency histogram, which the hot path keeps itself.

use std::sync::OnceLock;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::hot::{self, COMMAND_KINDS};
use super::names::{self, Kind, Metric, LATENCY_BUCKETS};

/// Label values known in advance, by metric: their series exist from the start.
/// Metrics set only by others (switchover phases, guardrails) create their own.
pub const KNOWN_LABELS: &[(&str, &[&str])] = &[
    (names::COMMANDS, &COMMAND_KINDS),
    (
        names::CLIENT_CONNECTIONS,
        &["idle", "in_transaction", "held", "pinned"],
    ),
    (names::CLIENT_CONNECTIONS_REFUSED, &REFUSAL_REASONS),
    (names::BACKEND_CONNECT_DURATION, &SIDES),
    (names::BACKEND_CONNECT_ERRORS, &SIDES),
    (names::SWITCHOVERS, &["ok", "refused", "rolled_back"]),
    (names::ACTIVE_SIDE, &SIDES),
];

pub const SIDES: [&str; 2] = ["blue", "green"];

/// Why the proxy refuses a client connection (`switchyard_client_connections_refused_total`).
pub const REFUSAL_REASONS: [&str; 8] = [
    "max_connections",
    "host_blocked",
    "access_denied",
    "needs_password",
    "tls_required",
    "handshake",
    "backend",
    "refused_side",
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process; later calls return the first handle).
/// `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe_all();
                    build_info();
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!("metrics recorder not installed: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// The label values of `metric` known in advance, if any.
fn known_values(metric: &Metric) -> Option<&'static [&'static str]> {
    KNOWN_LABELS
        .iter()
        .find(|(name, _)| *name == metric.name)
        .map(|(_, values)| *values)
}

/// Describes each metric and creates its known series at 0.
fn describe_all() {
    for m in names::ALL {
        // The hot path's histogram is rendered by `hot`, HELP included.
        if m.name == names::COMMAND_DURATION {
            continue;
        }
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
        let series: Vec<Vec<(&str, &str)>> = match (m.labels, known_values(m)) {
            ([], _) => vec![Vec::new()],
            ([label], Some(values)) => values.iter().map(|v| vec![(*label, *v)]).collect(),
            _ => Vec::new(),
        };
        for labels in series {
            let labels: Vec<metrics::Label> = labels
                .into_iter()
                .map(|(k, v)| metrics::Label::new(k, v))
                .collect();
            match m.kind {
                Kind::Counter => counter!(m.name, labels).absolute(0),
                // A lag of 0 would claim a healthy standby: unknown until polled.
                Kind::Gauge if m.name == names::STANDBY_LAG => gauge!(m.name, labels).set(f64::NAN),
                Kind::Gauge => gauge!(m.name, labels).set(0.0),
                Kind::Histogram => drop(histogram!(m.name, labels)),
            }
        }
    }
}

fn build_info() {
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The exposition of every metric, after running the scrape hooks; `None` when no
/// recorder could be installed.
pub fn render() -> Option<String> {
    let handle = install()?;
    super::run_scrape_hooks();
    let totals = hot::fold();
    for (kind, n) in COMMAND_KINDS.iter().zip(totals.commands) {
        counter!(names::COMMANDS, "kind" => *kind).absolute(n);
    }
    counter!(names::CLIENT_RECEIVED_BYTES).absolute(totals.received);
    counter!(names::CLIENT_SENT_BYTES).absolute(totals.sent);
    let mut out = handle.render();
    let help = names::find(names::COMMAND_DURATION)
        .map(|m| m.help)
        .unwrap_or_default();
    hot::render_latency(&totals, help, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_labels_name_catalogue_metrics_with_one_label() {
        for (name, values) in KNOWN_LABELS {
            let metric = names::find(name).unwrap();
            assert_eq!(metric.labels.len(), 1, "{name}");
            assert!(!values.is_empty());
        }
    }

    #[test]
    fn a_scrape_shows_every_unlabelled_and_known_series_described_once() {
        hot::command(
            hot::CommandKind::Prepare,
            std::time::Duration::from_millis(2),
        );
        let text = render().expect("recorder installed");
        for m in names::ALL {
            let help = format!("# HELP {} ", m.name);
            // Labelled metrics set only by others appear with their first series.
            let expected = if m.labels.is_empty() || known_values(m).is_some() {
                1..=1
            } else {
                0..=1
            };
            let n = text.matches(&help).count();
            assert!(expected.contains(&n), "{} {n} times in\n{text}", m.name);
        }
        for line in [
            "switchyard_client_connections_accepted_total 0",
            "switchyard_auth_failures_total 0",
            "switchyard_client_connections{state=\"held\"} 0",
            "switchyard_client_connections_refused_total{reason=\"max_connections\"} 0",
            "switchyard_backend_connect_errors_total{side=\"green\"} 0",
            "switchyard_hold_duration_seconds_bucket{le=\"0.0001\"} 0",
            "switchyard_backend_connect_duration_seconds_count{side=\"blue\"} 0",
            "switchyard_build_info{version=\"",
            "switchyard_commands_total{kind=\"query\"} ",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("quantile"), "{text}");
        let prepared = text
            .lines()
            .find_map(|l| l.strip_prefix("switchyard_commands_total{kind=\"prepare\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_default();
        assert!(prepared >= 1, "{text}");
    }
}
