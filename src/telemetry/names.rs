//! Every metric the proxy exports: name, type, labels and help, said once. Names follow
//! Prometheus' conventions (`switchyard_<what>_<unit>`, counters end in `_total`).
//! Labels are bounded: never a user name, SQL text or client address.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, with their values listed in the help text.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($konst:ident = $name:literal, $kind:ident, [$($label:literal),*], $help:literal;)*) => {
        $(pub const $konst: &str = $name;)*
        /// The whole catalogue, in the order the README lists it.
        pub const ALL: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, labels: &[$($label),*], help: $help },)*
        ];
    };
}

catalogue! {
    // Client sessions.
    CLIENT_CONNECTIONS = "switchyard_client_connections", Gauge, ["state"],
        "Client sessions now, by state: idle, in_transaction, held (waiting at the closed gate), pinned.";
    CLIENT_CONNECTIONS_MAX = "switchyard_client_connections_max", Gauge, [],
        "The configured max_client_connections.";
    CLIENT_CONNECTIONS_ACCEPTED = "switchyard_client_connections_accepted_total", Counter, [],
        "Client connections accepted by the listener.";
    CLIENT_CONNECTIONS_REFUSED = "switchyard_client_connections_refused_total", Counter, ["reason"],
        "Client connections refused, by reason: max_connections, host_blocked, access_denied, needs_password (caching_sha2_password without the password in the config), tls_required, handshake, backend, refused_side (the active side is not the writable primary).";
    AUTH_FAILURES = "switchyard_auth_failures_total", Counter, [],
        "Failed logins and COM_CHANGE_USER attempts.";
    PINNED_SESSIONS = "switchyard_pinned_sessions", Gauge, ["reason"],
        "Sessions whose state cannot move to another server, by reason: xa_transaction, lock_tables, lock_instance_for_backup, get_lock, temporary_table, open_cursor, handler, prepared_statement_over_16mib, prepare_from_variable, prepare.";
    // Traffic (counted per session thread, folded at scrape time).
    COMMANDS = "switchyard_commands_total", Counter, ["kind"],
        "Commands relayed, by kind: query, prepare, execute, other.";
    COMMAND_DURATION = "switchyard_command_duration_seconds", Histogram, [],
        "Time from a command's arrival to the last byte of its answer sent to the client.";
    CLIENT_RECEIVED_BYTES = "switchyard_client_received_bytes_total", Counter, [],
        "Bytes read from clients.";
    CLIENT_SENT_BYTES = "switchyard_client_sent_bytes_total", Counter, [],
        "Bytes written to clients.";
    // Backend connections of sessions.
    BACKEND_CONNECT_DURATION = "switchyard_backend_connect_duration_seconds", Histogram, ["side"],
        "Time to open and log in to a session's backend connection, by side: blue, green.";
    BACKEND_CONNECT_ERRORS = "switchyard_backend_connect_errors_total", Counter, ["side"],
        "Session backend connections that could not be opened or logged in, by side.";
    // The gate.
    HELD_COMMANDS = "switchyard_held_commands_total", Counter, [],
        "Commands that waited at the closed gate.";
    HOLD_DURATION = "switchyard_hold_duration_seconds", Histogram, [],
        "How long a held command waited at the gate.";
    // Switchovers.
    SWITCHOVERS = "switchyard_switchovers_total", Counter, ["result"],
        "Switchovers, by result: ok, refused (by the guardrails), rolled_back.";
    SWITCHOVER_PHASE = "switchyard_switchover_phase", Gauge, ["phase"],
        "1 for the phase the switchover is in now (idle when none runs), 0 for the others.";
    SWITCHOVER_PHASE_DURATION = "switchyard_switchover_phase_duration_seconds", Histogram, ["phase"],
        "Time each switchover phase took.";
    SWITCHOVER_LAST_PAUSE = "switchyard_switchover_last_pause_seconds", Gauge, [],
        "The application-visible pause (gate closed) of the last switchover.";
    SWITCHOVER_LAST_TIMESTAMP = "switchyard_switchover_last_timestamp_seconds", Gauge, [],
        "Unix time the last switchover ended.";
    ACTIVE_SIDE = "switchyard_active_side", Gauge, ["side"],
        "1 for the side sessions are routed to (blue or green), 0 for the other.";
    // Health, polled in the background.
    READY = "switchyard_ready", Gauge, [],
        "1 when /readyz answers 200: config loaded, active side reachable and writable, no rollback running.";
    STANDBY_IO_RUNNING = "switchyard_standby_replication_io_running", Gauge, [],
        "1 when the standby's replication IO thread runs.";
    STANDBY_SQL_RUNNING = "switchyard_standby_replication_sql_running", Gauge, [],
        "1 when the standby's replication SQL thread runs.";
    STANDBY_LAG = "switchyard_standby_replication_lag_seconds", Gauge, [],
        "The standby's replication lag as the server reports it (NaN when unknown).";
    STANDBY_GTID_CAUGHT_UP = "switchyard_standby_gtid_caught_up", Gauge, [],
        "1 when the standby has applied every transaction the active side has written.";
    GUARDRAIL_OK = "switchyard_guardrail_ok", Gauge, ["guardrail"],
        "Last verdict of each guardrail in the background poll: 1 pass, 0 fail.";
    HEALTH_POLL_TIMESTAMP = "switchyard_health_poll_timestamp_seconds", Gauge, [],
        "Unix time of the last background health poll.";
    BUILD_INFO = "switchyard_build_info", Gauge, ["version"],
        "Always 1; the version label says which build runs.";
}

/// Upper bounds of the latency histograms, in seconds: 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The metric of the catalogue named `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_are_unique() {
        for (i, m) in ALL.iter().enumerate() {
            assert!(m.name.starts_with("switchyard_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            assert!(
                ALL[..i].iter().all(|o| o.name != m.name),
                "{} twice",
                m.name
            );
            assert!(!m
                .labels
                .iter()
                .any(|l| ["user", "address", "sql"].contains(l)));
        }
        assert!(find(COMMANDS).is_some());
    }
}

#[cfg(test)]
mod readme {
    /// The README's metrics reference lists every metric of the catalogue, with its type.
    #[test]
    fn the_readme_lists_every_metric() {
        let readme = include_str!("../../README.md");
        for m in super::ALL {
            let kind = format!("{:?}", m.kind).to_lowercase();
            let row = format!("| `{}` | {kind} |", m.name);
            assert!(readme.contains(&row), "README has no row `{row}`");
        }
    }
}
