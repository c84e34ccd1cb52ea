//! What the proxy layer records into telemetry: connections accepted and refused,
//! session backend connections by side, held commands, and the scrape hook that
//! counts sessions by state from the registry. Per connection or per held command,
//! never per packet: the per-command counters are `telemetry::hot`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};

use crate::protocol::constants::{
    COM_QUERY, COM_STMT_BULK_EXECUTE, COM_STMT_EXECUTE, COM_STMT_PREPARE,
};
use crate::proxy::errors::SessionError;
use crate::proxy::state::Pins;
use crate::proxy::Proxy;
use crate::telemetry::hot::CommandKind;
use crate::telemetry::names;
use crate::topology::Side;

/// The kind a command byte counts as.
pub fn command_kind(cmd: u8) -> CommandKind {
    match cmd {
        COM_QUERY => CommandKind::Query,
        COM_STMT_PREPARE => CommandKind::Prepare,
        COM_STMT_EXECUTE | COM_STMT_BULK_EXECUTE => CommandKind::Execute,
        _ => CommandKind::Other,
    }
}

pub fn accepted() {
    counter!(names::CLIENT_CONNECTIONS_ACCEPTED).increment(1);
}

/// A client connection refused, by a reason of `telemetry::recorder::REFUSAL_REASONS`.
pub fn refused(reason: &'static str) {
    counter!(names::CLIENT_CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Why a connection phase that ended in `e` refused the client.
pub fn refusal_reason(e: &SessionError) -> &'static str {
    match e {
        SessionError::HostBlocked => "host_blocked",
        SessionError::AccessDenied => "access_denied",
        SessionError::NeedsPassword(_) => "needs_password",
        SessionError::InsecureTransport => "tls_required",
        SessionError::Refused(_) => "refused_side",
        SessionError::Connect(_) => "backend",
        SessionError::Client(_)
        | SessionError::Backend(_)
        | SessionError::BackendResponse(_)
        | SessionError::Pinned(_)
        | SessionError::ReadTimeout(_)
        | SessionError::HandshakeTimeout => "handshake",
    }
}

pub fn auth_failed() {
    counter!(names::AUTH_FAILURES).increment(1);
}

/// A session's backend connection to `side` was opened (or failed) after `started`.
pub fn backend_connect(side: Side, started: Instant, ok: bool) {
    let side = side.name();
    if ok {
        histogram!(names::BACKEND_CONNECT_DURATION, "side" => side).record(started.elapsed());
    } else {
        counter!(names::BACKEND_CONNECT_ERRORS, "side" => side).increment(1);
    }
}

/// A command waited `held` at the closed gate.
pub fn held(held: Duration) {
    counter!(names::HELD_COMMANDS).increment(1);
    histogram!(names::HOLD_DURATION).record(held);
}

/// Sessions by state, as `switchyard_client_connections{state}` counts them: a held
/// session counts as held, else a pinned one as pinned, else by its transaction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub idle: u64,
    pub in_transaction: u64,
    pub held: u64,
    pub pinned: u64,
    pub pins: BTreeMap<&'static str, u64>,
}

impl Census {
    pub fn count(&mut self, summary: &crate::proxy::registry::Summary) {
        if let Some(pin) = summary.pin {
            *self.pins.entry(pin_label(pin)).or_default() += 1;
        }
        if summary.held {
            self.held += 1;
        } else if summary.pin.is_some() {
            self.pinned += 1;
        } else if summary.in_transaction {
            self.in_transaction += 1;
        } else {
            self.idle += 1;
        }
    }
}

/// The label value of a pin reason (`Pins::REASONS`): snake case, as Prometheus
/// labels usually are, where the reason itself is written for people.
pub fn pin_label(reason: &str) -> &'static str {
    match reason {
        "XA transaction" => "xa_transaction",
        "LOCK TABLES" => "lock_tables",
        "LOCK INSTANCE FOR BACKUP" => "lock_instance_for_backup",
        "GET_LOCK" => "get_lock",
        "temporary table" => "temporary_table",
        "open cursor" => "open_cursor",
        "HANDLER" => "handler",
        "prepared statement over 16 MiB" => "prepared_statement_over_16mib",
        "PREPARE … FROM @variable" => "prepare_from_variable",
        "PREPARE" => "prepare",
        _ => "other",
    }
}

/// Sets the session gauges before each scrape while `proxy` lives.
pub fn register_scrape_hook(proxy: &Arc<Proxy>) {
    let proxy: Weak<Proxy> = Arc::downgrade(proxy);
    // Every reason has a series from the start; one seen that is not listed keeps
    // its series, back at 0 when it clears.
    let seen: Mutex<BTreeSet<&'static str>> =
        Mutex::new(Pins::REASONS.iter().map(|r| pin_label(r)).collect());
    crate::telemetry::on_scrape(move || {
        let Some(proxy) = proxy.upgrade() else {
            return false;
        };
        let mut census = Census::default();
        for session in proxy.sessions.all() {
            census.count(&session.summary());
        }
        for (state, n) in [
            ("idle", census.idle),
            ("in_transaction", census.in_transaction),
            ("held", census.held),
            ("pinned", census.pinned),
        ] {
            gauge!(names::CLIENT_CONNECTIONS, "state" => state).set(n as f64);
        }
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(census.pins.keys());
        for &reason in seen.iter() {
            let n = census.pins.get(reason).copied().unwrap_or_default();
            gauge!(names::PINNED_SESSIONS, "reason" => reason).set(n as f64);
        }
        let max = proxy.topology.config.load().proxy.max_client_connections;
        gauge!(names::CLIENT_CONNECTIONS_MAX).set(max as f64);
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::registry::Summary;

    #[test]
    fn sessions_count_once_held_first_then_pinned() {
        let mut census = Census::default();
        let held_and_pinned = Summary {
            held: true,
            pin: Some("GET_LOCK"),
            ..Summary::default()
        };
        census.count(&held_and_pinned);
        census.count(&Summary {
            pin: Some("GET_LOCK"),
            in_transaction: true,
            ..Summary::default()
        });
        census.count(&Summary {
            in_transaction: true,
            ..Summary::default()
        });
        census.count(&Summary::default());
        assert_eq!(
            census,
            Census {
                idle: 1,
                in_transaction: 1,
                held: 1,
                pinned: 1,
                pins: BTreeMap::from([("get_lock", 2)]),
            }
        );
    }

    #[test]
    fn every_pin_reason_has_its_own_label() {
        let labels: BTreeSet<&str> = Pins::REASONS.iter().map(|r| pin_label(r)).collect();
        assert_eq!(labels.len(), Pins::REASONS.len());
        assert!(!labels.contains("other"));
    }

    #[test]
    fn command_bytes_map_to_kinds() {
        assert_eq!(command_kind(COM_QUERY), CommandKind::Query);
        assert_eq!(command_kind(COM_STMT_PREPARE), CommandKind::Prepare);
        assert_eq!(command_kind(COM_STMT_EXECUTE), CommandKind::Execute);
        assert_eq!(command_kind(0x0e), CommandKind::Other);
    }
}
