//! The guardrails: every check the precheck runs before anything is touched. `check`
//! runs exactly these and changes nothing. Each has a name, a verdict and a reason.
//!
//! The same checks run against MariaDB and MySQL; the SQL behind them follows the
//! server's flavor. A check that only means something on MariaDB passes on MySQL with
//! a reason saying it does not apply (the MySQL side is written to MySQL's
//! documentation and not tested against a MySQL server).

use std::time::Duration;

use serde::Serialize;

use crate::config::{BypassWriters, Config, ControlConfig};
use crate::control::{ClientConn, Control, ControlError, Flavor};
use crate::provision::create::MARKER_SCHEMA;
use crate::provision::schema;
use crate::switchover::Switchover;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub reason: String,
}

fn pass(name: &'static str, reason: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        reason: reason.into(),
    }
}

fn fail(name: &'static str, reason: impl Into<String>) -> Check {
    Check {
        name,
        ok: false,
        reason: reason.into(),
    }
}

/// Bound on each control connection the checks open.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every guardrail for a switchover from `from` (the active primary) to `to`.
pub async fn run(shared: &Switchover, config: &Config, from: &str, to: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(control) = config.control.clone() else {
        checks.push(fail(
            "control_account",
            "no [control] account is configured",
        ));
        return checks;
    };
    let primary = Control::connect_with(config, &control, from, CHECK_TIMEOUT).await;
    let standby = Control::connect_with(config, &control, to, CHECK_TIMEOUT).await;
    let (mut primary, mut standby) = match (primary, standby) {
        (Ok(p), Ok(s)) => {
            checks.push(pass("reachable", format!("{from} and {to} answer")));
            (p, s)
        }
        (p, s) => {
            for (side, r) in [(from, p.err()), (to, s.err())] {
                if let Some(e) = r {
                    checks.push(fail("reachable", format!("{side}: {e}")));
                }
            }
            return checks;
        }
    };
    checks.push(primary_writable(&mut primary).await);
    checks.push(standby_read_only(&mut standby).await);
    checks.extend(replication(&mut standby, from, config.switchover.max_lag.0).await);
    checks.push(errant_gtids(&mut primary, &mut standby).await);
    checks.push(long_transactions(&mut primary, config.switchover.drain_timeout.0).await);
    checks.push(running_ddl(&mut primary).await);
    checks.push(schema_compatible(&mut primary, &mut standby).await);
    checks.push(bypass_writers(shared, &mut primary, config.switchover.bypass_writers).await);
    checks.push(direct_sessions(shared, config, &mut primary).await);
    checks.push(capabilities(shared, to).await);
    checks.push(pinned_sessions(shared, config));
    checks.push(reverse_account(config, &control));
    // Closed before returning: a background health round must leave nothing on the
    // primary that a switchover's guardrails would take for a writer.
    primary.disconnect().await;
    standby.disconnect().await;
    checks
}

async fn primary_writable(primary: &mut Control) -> Check {
    match primary.read_only().await {
        Ok(false) => pass("primary_writable", "the active side has read_only=OFF"),
        Ok(true) => fail(
            "primary_writable",
            "the active side is read-only: it is not the primary",
        ),
        Err(e) => fail("primary_writable", e.to_string()),
    }
}

async fn standby_read_only(standby: &mut Control) -> Check {
    match standby.read_only().await {
        Ok(true) => pass("standby_read_only", "the standby has read_only=ON"),
        Ok(false) => fail(
            "standby_read_only",
            "the standby is writable: writes may have gone to it (set read_only=ON)",
        ),
        Err(e) => fail("standby_read_only", e.to_string()),
    }
}

/// The standby replicates from the primary, both threads run, no error, lag small.
async fn replication(standby: &mut Control, from: &str, max_lag: Duration) -> Vec<Check> {
    let status = match standby.replica_status().await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return vec![fail(
                "standby_replicating",
                format!(
                    "the standby is not a replica (no {})",
                    standby.flavor().dialect().replica_status
                ),
            )]
        }
        Err(e) => return vec![fail("standby_replicating", e.to_string())],
    };
    let mut out = Vec::new();
    if status.io_running && status.sql_running {
        out.push(pass("standby_replicating", "IO and SQL threads running"));
    } else {
        let error = [&status.last_io_error, &status.last_sql_error]
            .into_iter()
            .filter(|e| !e.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        out.push(fail(
            "standby_replicating",
            format!(
                "IO thread {}, SQL thread {}{}",
                yes_no(status.io_running),
                yes_no(status.sql_running),
                if error.is_empty() {
                    String::new()
                } else {
                    format!(": {error}")
                }
            ),
        ));
    }
    let (host, port) = from.rsplit_once(':').unwrap_or((from, ""));
    let same_host =
        status.master_host == host || (is_loopback(&status.master_host) && is_loopback(host));
    if same_host && port.parse::<u16>().ok() == Some(status.master_port) {
        out.push(pass(
            "standby_source",
            format!(
                "replicates from {}:{}",
                status.master_host, status.master_port
            ),
        ));
    } else {
        out.push(fail(
            "standby_source",
            format!(
                "replicates from {}:{}, not from the primary {from}",
                status.master_host, status.master_port
            ),
        ));
    }
    match status.seconds_behind {
        Some(lag) if Duration::from_secs(lag) <= max_lag => out.push(pass(
            "replication_lag",
            format!("{lag}s behind (max {}s)", max_lag.as_secs()),
        )),
        Some(lag) => out.push(fail(
            "replication_lag",
            format!("{lag}s behind, more than max_lag {}s", max_lag.as_secs()),
        )),
        None => out.push(fail(
            "replication_lag",
            "lag unknown (replication not running)",
        )),
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "running"
    } else {
        "stopped"
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// Transactions on the standby that the primary never had would be lost or break
/// replication the other way.
async fn errant_gtids(primary: &mut Control, standby: &mut Control) -> Check {
    match errant_transactions(primary, standby).await {
        Ok(extra) if extra.is_empty() => pass(
            "no_errant_gtids",
            "the standby has nothing the primary lacks",
        ),
        Ok(extra) => fail(
            "no_errant_gtids",
            format!(
                "the standby has transactions the primary lacks: {}",
                extra.join(",")
            ),
        ),
        Err(e) => fail("no_errant_gtids", e.to_string()),
    }
}

/// GTIDs in the standby's history that the primary's lacks. MariaDB: binlog states
/// compared per server, which also catches a local write on a lagging replica; MySQL:
/// `gtid_executed` sets subtracted (untested against a MySQL server). The standby is
/// read first: under load it keeps applying what the primary writes, so a history read
/// after the primary's could look ahead of it without anything being errant.
pub async fn errant_transactions(
    primary: &mut Control,
    standby: &mut Control,
) -> Result<Vec<String>, CompareError> {
    let flavor = primary.flavor();
    if standby.flavor() != flavor {
        return Err(CompareError::Flavors {
            primary: flavor.name(),
            standby: standby.flavor().name(),
        });
    }
    let s = standby.gtid_history().await?;
    let p = primary.gtid_history().await?;
    flavor.errant(&p, &s).map_err(CompareError::Gtids)
}

/// Why two sides' GTID histories could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("the primary is {primary} and the standby {standby}: their GTIDs cannot be compared")]
    Flavors {
        primary: &'static str,
        standby: &'static str,
    },
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A history the flavor cannot parse.
    #[error("{0}")]
    Gtids(String),
}

async fn long_transactions(primary: &mut Control, older_than: Duration) -> Check {
    match primary.long_transactions(older_than).await {
        Ok(list) if list.is_empty() => pass(
            "no_long_transactions",
            format!("none older than {}s", older_than.as_secs()),
        ),
        Ok(list) => {
            let ids = list
                .iter()
                .map(|t| format!("thread {} ({}s)", t.thread_id, t.started_secs_ago))
                .collect::<Vec<_>>();
            fail(
                "no_long_transactions",
                format!("open longer than the drain timeout: {}", ids.join(", ")),
            )
        }
        Err(e) => fail("no_long_transactions", e.to_string()),
    }
}

async fn running_ddl(primary: &mut Control) -> Check {
    match primary.running_ddl().await {
        Ok(list) if list.is_empty() => pass("no_running_ddl", "no DDL running on the primary"),
        Ok(list) => {
            let what = list
                .iter()
                .map(|c| format!("thread {}: {}", c.id, c.info.clone().unwrap_or_default()))
                .collect::<Vec<_>>();
            fail("no_running_ddl", what.join("; "))
        }
        Err(e) => fail("no_running_ddl", e.to_string()),
    }
}

/// The standby's schema takes what row-based replication from the primary writes,
/// and serves the application after the switchover (`switchyard diff` in full).
async fn schema_compatible(primary: &mut Control, standby: &mut Control) -> Check {
    let report = match schema::diff(primary, standby).await {
        Ok(report) => report,
        Err(e) => return fail("schema_compatible", e.to_string()),
    };
    if report.differences.iter().any(|d| d.schema == MARKER_SCHEMA) {
        return fail(
            "schema_compatible",
            format!(
                "the standby is an unfinished copy (it holds the database {MARKER_SCHEMA} \
                 that `switchyard create` leaves until it is done): run create again"
            ),
        );
    }
    let mut incompatible = report.incompatible();
    match incompatible.next() {
        None if report.differences.is_empty() => {
            pass("schema_compatible", "the standby's schema is the primary's")
        }
        None => pass(
            "schema_compatible",
            format!(
                "{} schema difference(s), all compatible with replication from the primary",
                report.differences.len()
            ),
        ),
        Some(first) => fail(
            "schema_compatible",
            format!(
                "{} incompatible difference(s), the first: {first} (switchyard diff lists them)",
                1 + incompatible.count()
            ),
        ),
    }
}

/// Connections to the primary outside the proxy whose accounts ignore `read_only`.
pub async fn bypassing_writers(
    shared: &Switchover,
    primary: &mut Control,
) -> Result<Vec<(u64, String)>, ControlError> {
    let admins = primary.users_with_read_only_admin().await?;
    let ours: Vec<u64> = shared
        .proxy
        .sessions
        .backend_threads()
        .into_iter()
        .map(u64::from)
        .collect();
    let conns = primary.connections().await?;
    Ok(conns
        .into_iter()
        .filter(|c| !ours.contains(&c.id) && c.command != "Binlog Dump")
        .filter(|c| admins.iter().any(|a| account_user(a) == c.user))
        .map(|c| (c.id, format!("{}@{}", c.user, c.host)))
        .collect())
}

/// `'user'@'host'` → `user`.
fn account_user(account: &str) -> &str {
    let user = account.rsplit_once('@').map_or(account, |(u, _)| u);
    user.trim_matches(|c| c == '\'' || c == '`')
}

async fn bypass_writers(
    shared: &Switchover,
    primary: &mut Control,
    policy: BypassWriters,
) -> Check {
    if primary.flavor() == Flavor::MySql {
        // Written to MySQL's documentation, not tested against a MySQL server.
        return pass(
            "no_bypass_writers",
            "does not apply on MySQL: the fence is super_read_only, which no account can write past",
        );
    }
    match (bypassing_writers(shared, primary).await, policy) {
        (Err(e), _) => fail("no_bypass_writers", e.to_string()),
        (Ok(list), _) if list.is_empty() => pass("no_bypass_writers", "no connection outside the proxy can write past read_only"),
        (Ok(list), BypassWriters::Refuse) => fail(
            "no_bypass_writers",
            format!(
                "connections outside the proxy can write past read_only: {} (close them, or set switchover.bypass_writers = \"kill\")",
                describe(&list)
            ),
        ),
        (Ok(list), BypassWriters::Kill) => pass("no_bypass_writers", format!("will be killed at the fence: {}", describe(&list))),
        (Ok(list), BypassWriters::Ignore) => pass("no_bypass_writers", format!("ignored by policy: {}", describe(&list))),
    }
}

fn describe(list: &[(u64, String)]) -> String {
    list.iter()
        .map(|(id, who)| format!("{id} ({who})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long apart the two looks at the process list are: a session logging in through
/// the proxy is on the server a moment before the proxy lists it. A genuine interval,
/// not a stand-in for a notification: the question is whether a connection on the
/// server *stays* unknown to the proxy, and neither side announces that.
const SETTLE: Duration = Duration::from_millis(200);

/// Connections to the primary from application accounts (`[[users]]` and accounts
/// loaded from the backend; not the control or replication account) that are not the
/// proxy's own sessions: clients that went around the proxy, e.g. mysql_async with
/// `prefer_socket` reconnecting over the server's Unix socket. The switchover can
/// neither hold nor move them, and the fence meets their writes with ERR 1290. Only
/// connections seen in two looks `SETTLE` apart are listed.
pub async fn direct_connections(
    shared: &Switchover,
    config: &Config,
    primary: &mut Control,
) -> Result<Vec<ClientConn>, ControlError> {
    let mut accounts = shared.proxy.users.names();
    let internal = [config.control.as_ref(), config.replication.as_ref()];
    accounts.retain(|a| !internal.iter().flatten().any(|c| c.user == *a));
    let mut seen = Vec::new();
    for look in 0..2 {
        if look > 0 {
            tokio::time::sleep(SETTLE).await;
        }
        let ours = shared.proxy.sessions.backend_threads_on(primary.address());
        let now: Vec<ClientConn> = primary
            .connections()
            .await?
            .into_iter()
            .filter(|c| accounts.contains(&c.user))
            .filter(|c| u32::try_from(c.id).is_ok_and(|id| !ours.contains(&id)))
            .collect();
        if look > 0 {
            seen.retain(|c: &ClientConn| now.iter().any(|n| n.id == c.id));
        } else {
            seen = now;
        }
        if seen.is_empty() {
            break;
        }
    }
    Ok(seen)
}

async fn direct_sessions(shared: &Switchover, config: &Config, primary: &mut Control) -> Check {
    match direct_connections(shared, config, primary).await {
        Err(e) => fail("no_direct_sessions", e.to_string()),
        Ok(list) if list.is_empty() => pass(
            "no_direct_sessions",
            "every application connection on the primary comes through the proxy",
        ),
        Ok(list) => {
            let who = list
                .iter()
                .map(|c| format!("{} ({}@{})", c.id, c.user, c.host))
                .collect::<Vec<_>>();
            fail(
                "no_direct_sessions",
                format!(
                    "application connections on the primary that do not come through the proxy \
                     (the switchover cannot hold or move them; their writes would fail once it \
                     is fenced): {}. Point those clients at the proxy (mysql_async: \
                     prefer_socket=false)",
                    who.join(", ")
                ),
            )
        }
    }
}

/// The standby must offer every capability a live session negotiated.
async fn capabilities(shared: &Switchover, to: &str) -> Check {
    let (version, missing) = match shared.proxy.missing_capabilities(to, CHECK_TIMEOUT).await {
        Ok(found) => found,
        Err(e) => return fail("capabilities", e.to_string()),
    };
    if missing == 0 {
        pass(
            "capabilities",
            format!("{} offers every capability in use", version),
        )
    } else {
        fail(
            "capabilities",
            format!("the standby lacks capability bits {missing:#x} that sessions use"),
        )
    }
}

fn pinned_sessions(shared: &Switchover, config: &Config) -> Check {
    let pinned = shared.proxy.sessions.pinned();
    if pinned.is_empty() {
        pass("pinned_sessions", "no session is pinned")
    } else {
        pass(
            "pinned_sessions",
            format!(
                "pinned now: {}; the switchover waits up to {}s for them, then {}",
                pinned.join(", "),
                config.switchover.drain_timeout.0.as_secs(),
                match config.switchover.on_pinned {
                    crate::config::OnPinned::Abort => "aborts",
                    crate::config::OnPinned::Close => "closes them",
                }
            ),
        )
    }
}

fn reverse_account(config: &Config, control: &ControlConfig) -> Check {
    if !config.switchover.reverse_replication {
        return pass(
            "reverse_replication",
            "off: the old primary will not follow the new one",
        );
    }
    let user = config.replication.as_ref().unwrap_or(control).user.clone();
    pass(
        "reverse_replication",
        format!("the old primary will replicate from the new one as {user}"),
    )
}
