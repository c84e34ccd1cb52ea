//! A test hook: stop a switchover at a named phase, so fault tests can freeze or kill a
//! server, or kill the proxy, at exactly that point instead of guessing with sleeps.
//!
//! `SWITCHYARD_FAILPOINT=<phase>:stop` makes the switchover wait forever once it has
//! entered `<phase>` and written it to the journal (the test then kills the proxy);
//! `SWITCHYARD_FAILPOINT=<phase>:wait:<file>` waits there until `<file>` exists, then
//! goes on. Read once, at the first switchover; unset, it costs one comparison per
//! phase.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::switchover::phase::Phase;

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Stop,
    WaitFor(PathBuf),
}

/// The variable's value, parsed: the phase and what to do there.
fn parse(value: &str) -> Option<(String, Action)> {
    let (phase, rest) = value.split_once(':')?;
    let action = match rest.split_once(':') {
        None if rest == "stop" => Action::Stop,
        Some(("wait", file)) if !file.is_empty() => Action::WaitFor(PathBuf::from(file)),
        _ => return None,
    };
    Some((phase.to_string(), action))
}

fn configured() -> Option<&'static (String, Action)> {
    static POINT: OnceLock<Option<(String, Action)>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let value = std::env::var("SWITCHYARD_FAILPOINT").ok()?;
            let point = parse(&value);
            if point.is_none() {
                tracing::error!(
                    "SWITCHYARD_FAILPOINT={value} is not <phase>:stop or <phase>:wait:<file>"
                );
            }
            point
        })
        .as_ref()
}

/// Called as the switchover enters `phase`.
pub async fn reached(phase: Phase) {
    let Some((name, action)) = configured() else {
        return;
    };
    if name != phase.name() {
        return;
    }
    tracing::warn!("failpoint: stopped at {name}");
    match action {
        Action::Stop => std::future::pending::<()>().await,
        Action::WaitFor(file) => {
            // A poll, not a notification: the file is made by another process (the
            // test), and a test hook does not need a file watcher.
            while !file.exists() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tracing::warn!("failpoint: going on from {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_others() {
        assert_eq!(
            parse("fencing:stop"),
            Some(("fencing".into(), Action::Stop))
        );
        assert_eq!(
            parse("catching_up:wait:/x/go"),
            Some(("catching_up".into(), Action::WaitFor("/x/go".into())))
        );
        for bad in ["fencing", "fencing:", "fencing:wait:", "fencing:halt"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
