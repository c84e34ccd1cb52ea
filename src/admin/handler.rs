//! The proxy's side of the admin socket: each admin command, run against the live
//! proxy. `status`, `sessions`, `check` and `history` change nothing; `switchover`, `pause`,
//! `resume` and `reload` do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::admin::command::{Command, Request};
use crate::admin::reply::Line;
use crate::admin::server::Handler;
use crate::config::{Config, ControlConfig};
use crate::control::{Control, Flavor, ReplicaStatus};
use crate::proxy::registry::lock;
use crate::proxy::throttle::ThrottleStats;
use crate::proxy::tls::TlsSetup;
use crate::switchover::orchestrator::{self, Options, SwitchoverError};
use crate::switchover::Switchover;
use crate::switchover::{guardrails, history};
use crate::topology::Side;

/// The admin handler of a running proxy.
pub struct Admin {
    pub shared: Arc<Switchover>,
}

impl Handler for Admin {
    fn handle(
        &self,
        request: Request,
        out: mpsc::Sender<Line>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let last = match request.command {
                Command::Status => status(&shared, &out).await,
                Command::Sessions => sessions(&shared, &out).await,
                Command::Check => check(&shared, &out).await,
                Command::Switchover {
                    timeout,
                    drain_timeout,
                } => {
                    switchover(
                        &shared,
                        Options {
                            timeout,
                            drain_timeout,
                        },
                        &out,
                    )
                    .await
                }
                Command::Pause { timeout } => pause(&shared, timeout).await,
                Command::Resume => {
                    if shared.proxy.gate.resume() {
                        Line::ok("resumed")
                    } else {
                        Line::err("not paused")
                    }
                }
                Command::Reload => reload(&shared, &out).await,
                Command::History => history(&shared, &out).await,
                // Answered by the admin server itself; kept for completeness.
                Command::Help => Line::ok("see `help`"),
            };
            let _ = out.send(last).await;
        })
    }
}

async fn status(shared: &Switchover, out: &mpsc::Sender<Line>) -> Line {
    let target = shared.topology.target.load_full();
    let phase = shared.switch.phase();
    let (mut idle, mut in_tx, mut held, mut pinned) = (0, 0, 0, 0);
    for s in shared.proxy.sessions.all() {
        let sum = s.summary();
        if sum.held {
            held += 1;
        } else if sum.in_transaction {
            in_tx += 1;
        } else {
            idle += 1;
        }
        if sum.pin.is_some() {
            pinned += 1;
        }
    }
    let _ = out
        .send(
            Line::progress(format!("active: {} ({}), epoch {}", target.side.name(), target.address, target.epoch))
                .with_data(json!({"active": target.side.name(), "address": target.address, "epoch": target.epoch})),
        )
        .await;
    let _ = out
        .send(
            Line::progress(format!(
                "phase: {}{}",
                phase.name(),
                if shared.proxy.gate.manually_paused() {
                    " (paused by hand)"
                } else {
                    ""
                }
            ))
            .with_data(json!({"phase": phase.name(), "paused": shared.proxy.gate.is_closed()})),
        )
        .await;
    let ready = crate::telemetry::readiness();
    let _ = out
        .send(
            Line::progress(match &ready {
                Ok(()) => "ready: yes".to_string(),
                Err(why) => format!("ready: no ({why})"),
            })
            .with_data(json!({"ready": ready.is_ok(), "not_ready": ready.err()})),
        )
        .await;
    let _ = out
        .send(
            Line::progress(format!("sessions: {idle} idle, {in_tx} in transaction, {held} held, {pinned} pinned"))
                .with_data(json!({"sessions": {"idle": idle, "in_transaction": in_tx, "held": held, "pinned": pinned}})),
        )
        .await;
    let _ = out
        .send(throttle_line(&shared.proxy.throttle.stats()))
        .await;
    let standby = target.side.other();
    let config = shared.topology.config.load_full();
    if let (Some(address), Some(control)) =
        (shared.topology.address_of(standby), config.control.clone())
    {
        let line = standby_line(&config, standby, &address, &control).await;
        let _ = out.send(line).await;
    }
    if let Some(what) = shared.switch.repair_pending() {
        let _ = out
            .send(
                Line::progress(format!(
                    "rollback not confirmed yet: {what}; retrying until the servers confirm"
                ))
                .with_data(json!({"rollback_pending": what})),
            )
            .await;
    }
    let last = lock(&shared.switch.last).clone();
    if let Some(report) = last {
        let phases = report.phases_summary();
        let _ = out
            .send(
                Line::progress(format!(
                    "last switchover: {} → {} {} in {:.1} ms (pause {:.1} ms, longest hold {:.1} ms): {phases}",
                    report.from.name(),
                    report.to.name(),
                    if report.ok { "done" } else { "rolled back" },
                    report.total_ms,
                    report.pause_ms,
                    report.max_hold_ms
                ))
                .with_data(json!({"last_switchover": report})),
            )
            .await;
    }
    Line::ok(format!("{} is active", target.side.name()))
}

/// Authentication failures and blocked client addresses, for `status`.
fn throttle_line(s: &ThrottleStats) -> Line {
    Line::progress(format!(
        "authentication failures: {} ({} answered late), {} address(es) blocked now, \
         {} block(s), {} connection(s) refused as blocked",
        s.failures, s.delayed, s.blocked_now, s.blocks, s.refused
    ))
    .with_data(json!({"auth_failures": s}))
}

/// The standby's replication and GTIDs, for `status`.
async fn standby_line(
    config: &Config,
    standby: Side,
    address: &str,
    control: &ControlConfig,
) -> Line {
    let name = standby.name();
    let timeout = Duration::from_secs(3);
    let mut c = match Control::connect_with(config, control, address, timeout).await {
        Ok(c) => c,
        Err(e) => return Line::progress(format!("standby {name} ({address}): unreachable: {e}")),
    };
    match (c.replica_status().await, c.gtid_current().await) {
        (Ok(Some(r)), Ok(pos)) => Line::progress(format!(
            "standby {name} ({address}): IO {}, SQL {}, lag {}, gtid {pos}{}",
            if r.io_running { "running" } else { "stopped" },
            if r.sql_running { "running" } else { "stopped" },
            r.seconds_behind
                .map_or("unknown".into(), |s| format!("{s}s")),
            [r.last_io_error.as_str(), r.last_sql_error.as_str()]
                .iter()
                .filter(|e| !e.is_empty())
                .map(|e| format!(", error: {e}"))
                .collect::<String>()
        ))
        .with_data(standby_data(name, address, c.flavor(), &r, pos)),
        (Ok(None), _) => Line::progress(format!("standby {name} ({address}): not replicating")),
        (Err(e), _) | (_, Err(e)) => Line::progress(format!("standby {name}: {e}")),
    }
}

/// The standby's line in `status` as JSON. The GTIDs are keyed by the variable they
/// were read from: `gtid_current_pos` on MariaDB, `gtid_executed` on MySQL.
fn standby_data(
    side: &str,
    address: &str,
    flavor: Flavor,
    r: &ReplicaStatus,
    gtids: String,
) -> serde_json::Value {
    let mut standby = json!({
        "side": side, "address": address, "io_running": r.io_running,
        "sql_running": r.sql_running, "seconds_behind": r.seconds_behind,
        "last_io_error": r.last_io_error, "last_sql_error": r.last_sql_error,
    });
    standby[flavor.dialect().gtid_current_name] = json!(gtids);
    json!({ "standby": standby })
}

async fn sessions(shared: &Switchover, out: &mpsc::Sender<Line>) -> Line {
    let all = shared.proxy.sessions.all();
    for s in &all {
        let sum = s.summary();
        let state = if sum.held {
            "held"
        } else if sum.in_transaction {
            "in_transaction"
        } else {
            "idle"
        };
        let age = s.started.elapsed().as_secs();
        let line = Line::progress(format!(
            "{} user={} client={}{} schema={} state={} pin={} age={}s",
            s.id,
            s.user(),
            s.peer,
            if s.tls { " tls" } else { "" },
            sum.schema.as_deref().unwrap_or("-"),
            state,
            sum.pin.unwrap_or("-"),
            age
        ))
        .with_data(json!({
            "id": s.id, "user": s.user(), "client": s.peer.to_string(), "tls": s.tls,
            "schema": sum.schema,
            "state": state, "pin": sum.pin, "age_s": age,
        }));
        let _ = out.send(line).await;
    }
    Line::ok(format!("{} sessions", all.len()))
}

async fn check(shared: &Switchover, out: &mpsc::Sender<Line>) -> Line {
    let config = shared.topology.config.load_full();
    let from = shared.topology.target.load_full();
    let Some(to) = shared.topology.address_of(from.side.other()) else {
        return Line::err("no standby: [green] is not configured");
    };
    let checks = {
        let _probing = shared.switch.probing().await;
        guardrails::run(shared, &config, &from.address, &to).await
    };
    send_checks(out, &checks).await;
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    if failed.is_empty() {
        Line::ok(format!(
            "ready: {} → {} would be allowed",
            from.side.name(),
            from.side.other().name()
        ))
    } else {
        Line::err(format!(
            "switchover would be refused: {}",
            failed.join(", ")
        ))
    }
}

async fn send_checks(out: &mpsc::Sender<Line>, checks: &[guardrails::Check]) {
    for c in checks {
        let line = Line::progress(format!(
            "{} {}: {}",
            if c.ok { "pass" } else { "FAIL" },
            c.name,
            c.reason
        ))
        .with_data(json!({"check": c.name, "ok": c.ok, "reason": c.reason}));
        let _ = out.send(line).await;
    }
}

async fn switchover(shared: &Arc<Switchover>, opts: Options, out: &mpsc::Sender<Line>) -> Line {
    let tx = out.clone();
    let progress = move |phase: crate::switchover::phase::Phase, message: String| {
        let _ = tx.try_send(
            Line::progress(format!("{}: {message}", phase.name()))
                .with_data(json!({"phase": phase.name()})),
        );
    };
    match orchestrator::run(shared, opts, &progress).await {
        Ok(report) => {
            let phases = report.phases_summary();
            Line::ok(format!(
                "switched {} → {} in {:.1} ms; pause {:.1} ms, longest hold {:.1} ms, {} held commands, {} sessions ({} pre-opened in {:.1} ms); fence gtid {}; {phases}{}",
                report.from.name(),
                report.to.name(),
                report.total_ms,
                report.pause_ms,
                report.max_hold_ms,
                report.held_commands,
                report.sessions,
                report.preopened,
                report.preopen_ms,
                // A primary that never wrote has an empty GTID set.
                report
                    .fence_gtid
                    .as_deref()
                    .filter(|g| !g.is_empty())
                    .unwrap_or("(empty)"),
                report
                    .reverse_replication_error
                    .as_ref()
                    .map(|e| format!("; WARNING: reverse replication failed: {e}"))
                    .unwrap_or_default()
            ))
            .with_data(json!({ "report": report }))
        }
        Err(SwitchoverError::Refused(checks)) => {
            send_checks(out, &checks).await;
            let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
            Line::err(format!(
                "refused by the guardrails: {}; nothing was changed",
                failed.join(", ")
            ))
        }
        Err(e @ SwitchoverError::RolledBack { .. }) => {
            let line = Line::err(format!("{e}; traffic continues on the old primary"));
            match &e {
                SwitchoverError::RolledBack { report, .. } => {
                    line.with_data(json!({ "report": report }))
                }
                _ => line,
            }
        }
        Err(e) => Line::err(e.to_string()),
    }
}

/// One line per past switchover, oldest first; the final line says where they are kept.
async fn history(shared: &Switchover, out: &mpsc::Sender<Line>) -> Line {
    let entries = shared.history.entries();
    for entry in &entries {
        let line = Line::progress(history_line(entry)).with_data(json!({ "entry": entry }));
        let _ = out.send(line).await;
    }
    let kept = match shared.history.path() {
        Some(path) => format!("kept in {}", path.display()),
        None => "kept in memory only: no [proxy] state_file".into(),
    };
    Line::ok(format!("{} switchover(s); {kept}", entries.len()))
        .with_data(json!({"count": entries.len()}))
}

/// `2026-11-30T14:01:02.345Z blue → green ok pause 12.1ms total 80.0ms fence 0-1-9; precheck 12.8ms, …`
fn history_line(entry: &history::Entry) -> String {
    let phases = entry
        .phases
        .iter()
        .map(|(p, ms)| format!("{p} {ms:.1}ms"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} {} → {} {} pause {:.1}ms total {:.1}ms fence {}; {phases}{}",
        history::utc(entry.started_unix_ms),
        entry.from,
        entry.to,
        entry.result.name(),
        entry.pause_ms,
        entry.total_ms,
        entry.fence_gtid.as_deref().unwrap_or("-"),
        entry
            .reason
            .as_ref()
            .map(|r| format!("; {r}"))
            .unwrap_or_default()
    )
}

/// pgbouncer's PAUSE: hold new commands at transaction boundaries and wait until no
/// transaction is open; stays paused until `resume`. If the drain does not finish
/// within the timeout, the pause is released and the command fails.
///
/// Refused while a switchover runs: the switchover owns the gate until it is done (a
/// pause taken then would outlive it and keep clients waiting for a `resume` nobody
/// knows is needed).
async fn pause(shared: &Switchover, timeout: Option<Duration>) -> Line {
    match shared.switch.unless_running(|| shared.proxy.gate.pause()) {
        None => {
            return Line::err(
                "a switchover is running and holds the gate; pause after it has finished",
            )
        }
        Some(false) => return Line::err("already paused"),
        Some(true) => {}
    }
    let timeout = timeout.unwrap_or(shared.topology.config.load().switchover.drain_timeout.0);
    if shared.proxy.gate.wait_drained(timeout).await {
        Line::ok(format!(
            "paused; {} commands held",
            shared.proxy.gate.held()
        ))
    } else {
        shared.proxy.gate.resume();
        Line::err(format!(
            "transactions still open after {timeout:?}; not paused"
        ))
    }
}

async fn reload(shared: &Switchover, out: &mpsc::Sender<Line>) -> Line {
    match reload_config(shared) {
        Ok(msg) => {
            let users = shared.topology.config.load().users.len();
            let _ = out
                .send(Line::progress(format!("{users} configured users")))
                .await;
            Line::ok(msg)
        }
        Err(msg) => Line::err(msg),
    }
}

/// Re-reads the config file (admin `reload` and SIGHUP). A config that does not parse,
/// or that changes what only a restart can change, is refused and the old one kept.
pub fn reload_config(shared: &Switchover) -> Result<String, String> {
    let Some(path) = shared.topology.config_path.clone() else {
        return Err("the proxy was not started from a config file".into());
    };
    let new = Config::load(&path).map_err(|e| format!("{e}; the old config stays in force"))?;
    let old = shared.topology.config.load_full();
    if let Some(key) = needs_restart(&old, &new) {
        return Err(format!(
            "`{key}` changed: that needs a restart; the old config stays in force"
        ));
    }
    // Certificates are read before anything changes: a bad one keeps the old config.
    let tls = TlsSetup::load(&new).map_err(|e| format!("{e}; the old config stays in force"))?;
    shared.proxy.users.apply(&new);
    shared.proxy.tls.store(Arc::new(tls));
    shared.topology.config.store(Arc::new(new));
    Ok(format!("reloaded {}", path.display()))
}

/// The first key whose change a running proxy cannot apply.
fn needs_restart(old: &Config, new: &Config) -> Option<&'static str> {
    if old.proxy.listen != new.proxy.listen {
        return Some("proxy.listen");
    }
    if old.proxy.admin_socket != new.proxy.admin_socket {
        return Some("proxy.admin_socket");
    }
    if old.proxy.state_file != new.proxy.state_file {
        return Some("proxy.state_file");
    }
    // The listener sizes its connection limit once, when it starts (a listener limit
    // needs a restart in HAProxy and ProxySQL too).
    if old.proxy.max_client_connections != new.proxy.max_client_connections {
        return Some("proxy.max_client_connections");
    }
    if old.proxy.threads != new.proxy.threads {
        return Some("proxy.threads");
    }
    if old.blue.address != new.blue.address {
        return Some("blue.address");
    }
    if old.green.as_ref().map(|g| &g.address) != new.green.as_ref().map(|g| &g.address) {
        return Some("green.address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_limit_needs_a_restart_and_users_do_not() {
        let base = "[proxy]\nlisten = \"127.0.0.1:3307\"\nmax_client_connections = 100\n\
                    [blue]\naddress = \"127.0.0.1:3306\"\n";
        let old = Config::parse(base).unwrap();
        let limit = Config::parse(&base.replace("= 100", "= 200")).unwrap();
        assert_eq!(
            needs_restart(&old, &limit),
            Some("proxy.max_client_connections")
        );
        let users = format!("{base}[[users]]\nname = \"app\"\npassword = \"x\"\n");
        assert_eq!(needs_restart(&old, &Config::parse(&users).unwrap()), None);
    }

    #[test]
    fn standby_gtids_keyed_by_their_variable() {
        let r = ReplicaStatus {
            io_running: true,
            io_state: String::new(),
            sql_running: true,
            last_io_error: String::new(),
            last_sql_error: String::new(),
            master_host: "127.0.0.1".into(),
            master_port: 3306,
            using_gtid: "Slave_Pos".into(),
            gtid_io_pos: String::new(),
            seconds_behind: Some(0),
        };
        let maria = standby_data("green", "h:1", Flavor::MariaDb, &r, "0-1-5".into());
        assert_eq!(maria["standby"]["gtid_current_pos"], "0-1-5");
        assert_eq!(maria["standby"]["io_running"], true);
        let mysql = standby_data("green", "h:1", Flavor::MySql, &r, "u:1-5".into());
        assert_eq!(mysql["standby"]["gtid_executed"], "u:1-5");
        assert!(mysql["standby"].get("gtid_current_pos").is_none());
    }
}
