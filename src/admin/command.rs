//! The admin command language: one line of whitespace-separated words, parsed into a
//! [`Request`]. Pure functions only; the socket lives in `server.rs`.
//!
//! Invariants: `--json` is accepted anywhere on the line and by every command; each
//! other flag belongs to one command, may be given once, and is written either
//! `--flag VALUE` or `--flag=VALUE`. Every error names the offending word.

use std::fmt;
use std::time::Duration;

use crate::config::parse_duration;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The proxy's state: active backend, switchover phase, session counts.
    Status,
    /// One line per client session.
    Sessions,
    /// Probe both backends and report whether a switchover could start now.
    Check,
    /// Move traffic to the standby: pause, drain, catch up, flip, resume.
    Switchover {
        /// Bound on the whole switchover (None: the config's value).
        timeout: Option<Duration>,
        /// Bound on waiting for open transactions to finish (None: the config's value).
        drain_timeout: Option<Duration>,
    },
    /// Hold new statements at a statement boundary until `resume` or the timeout.
    Pause {
        /// Resume by itself after this long (None: the config's value).
        timeout: Option<Duration>,
    },
    /// Release a `pause`.
    Resume,
    /// Re-read the config file and apply what can change at runtime.
    Reload,
    /// The past switchovers, oldest first.
    History,
    /// List the commands. Answered by the admin server itself.
    Help,
}

impl Command {
    /// The command word, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Sessions => "sessions",
            Command::Check => "check",
            Command::Switchover { .. } => "switchover",
            Command::Pause { .. } => "pause",
            Command::Resume => "resume",
            Command::Reload => "reload",
            Command::History => "history",
            Command::Help => "help",
        }
    }

    /// Whether the command changes what the proxy does (logged at `info`, the others
    /// at `debug` so that monitoring polls stay quiet).
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Command::Switchover { .. } | Command::Pause { .. } | Command::Resume | Command::Reload
        )
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    /// Answer with one JSON object per line instead of text.
    pub json: bool,
}

impl fmt::Display for Request {
    /// The canonical form of the line, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.command.name())?;
        match &self.command {
            Command::Switchover {
                timeout,
                drain_timeout,
            } => {
                if let Some(d) = timeout {
                    write!(f, " --timeout {}ms", d.as_millis())?;
                }
                if let Some(d) = drain_timeout {
                    write!(f, " --drain-timeout {}ms", d.as_millis())?;
                }
            }
            Command::Pause { timeout: Some(d) } => write!(f, " --timeout {}ms", d.as_millis())?,
            _ => {}
        }
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

/// Every command with a one-line description, as `help` prints it.
pub const HELP: &str = "\
status                                           active backend, switchover phase, session counts
sessions                                         one line per client session
check                                            probe both backends; can a switchover start now?
switchover [--timeout D] [--drain-timeout D]     move traffic to the standby (pause, drain, catch up, flip, resume)
pause [--timeout D]                              hold new statements at a statement boundary
resume                                           release a pause
reload                                           re-read the config file
history                                          past switchovers: time, direction, result, pause, phases, fence GTID, reason
                                                 (kept next to state_file; in memory only without one)
help                                             this list
Add --json to any command for one JSON object per line. D is a duration: 500ms, 30s, 2m.";

const COMMAND_NAMES: &str =
    "status, sessions, check, switchover, pause, resume, reload, history, help";

/// Parses one command line (without its `\n`).
pub fn parse(line: &str) -> Result<Request, String> {
    let mut json = false;
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        if word == "--json" {
            json = true;
        } else {
            words.push(word);
        }
    }
    let Some((&name, rest)) = words.split_first() else {
        return Err(format!("empty command; valid commands: {COMMAND_NAMES}"));
    };
    let mut flags = Flags::new(name, rest)?;
    let command = match name {
        "status" => Command::Status,
        "sessions" => Command::Sessions,
        "check" => Command::Check,
        "switchover" => Command::Switchover {
            timeout: flags.duration("--timeout")?,
            drain_timeout: flags.duration("--drain-timeout")?,
        },
        "pause" => Command::Pause {
            timeout: flags.duration("--timeout")?,
        },
        "resume" => Command::Resume,
        "reload" => Command::Reload,
        "history" => Command::History,
        "help" => Command::Help,
        other => {
            return Err(format!(
                "unknown command `{other}`; valid commands: {COMMAND_NAMES}"
            ))
        }
    };
    flags.finish()?;
    Ok(Request { command, json })
}

/// The `--flag VALUE` pairs after a command word, consumed by name.
struct Flags<'a> {
    command: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Flags<'a> {
    /// Splits `rest` into flag/value pairs; a bare word or a flag without a value is an
    /// error.
    fn new(command: &'a str, rest: &[&'a str]) -> Result<Self, String> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let mut words = rest.iter();
        while let Some(&word) = words.next() {
            if !word.starts_with("--") {
                return Err(format!("`{command}` takes no argument `{word}`"));
            }
            let (flag, value) = match word.split_once('=') {
                Some((flag, value)) => (flag, value),
                None => match words.next() {
                    Some(&value) if !value.starts_with("--") => (word, value),
                    _ => return Err(format!("`{word}` needs a value, e.g. `{word} 30s`")),
                },
            };
            if pairs.iter().any(|(seen, _)| *seen == flag) {
                return Err(format!("`{flag}` given twice"));
            }
            pairs.push((flag, value));
        }
        Ok(Flags { command, pairs })
    }

    /// Takes `flag`'s value as a duration, if it was given.
    fn duration(&mut self, flag: &str) -> Result<Option<Duration>, String> {
        let Some(i) = self.pairs.iter().position(|(f, _)| *f == flag) else {
            return Ok(None);
        };
        let (_, value) = self.pairs.remove(i);
        parse_duration(value)
            .map(Some)
            .map_err(|e| format!("`{flag}`: {e}"))
    }

    /// Fails on any flag the command did not take.
    fn finish(self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((flag, _)) => Err(format!(
                "unknown flag `{flag}` for `{}`; see `help`",
                self.command
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Request {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &str) -> String {
        parse(line).expect_err(line)
    }

    #[test]
    fn simple_commands() {
        for (line, command) in [
            ("status", Command::Status),
            ("sessions", Command::Sessions),
            ("check", Command::Check),
            ("resume", Command::Resume),
            ("reload", Command::Reload),
            ("history", Command::History),
            ("help", Command::Help),
            ("  status \t", Command::Status),
        ] {
            assert_eq!(
                ok(line),
                Request {
                    command,
                    json: false
                }
            );
        }
    }

    #[test]
    fn json_anywhere() {
        assert!(ok("--json status").json);
        assert!(ok("status --json").json);
        assert!(ok("switchover --json --timeout 30s").json);
        assert!(ok("status --json --json").json);
        assert!(!ok("status").json);
    }

    #[test]
    fn switchover_durations() {
        assert_eq!(
            ok("switchover").command,
            Command::Switchover {
                timeout: None,
                drain_timeout: None
            }
        );
        assert_eq!(
            ok("switchover --timeout 30s --drain-timeout=500ms").command,
            Command::Switchover {
                timeout: Some(Duration::from_secs(30)),
                drain_timeout: Some(Duration::from_millis(500)),
            }
        );
        assert_eq!(
            ok("switchover --drain-timeout 2m").command,
            Command::Switchover {
                timeout: None,
                drain_timeout: Some(Duration::from_secs(120)),
            }
        );
    }

    #[test]
    fn pause_timeout() {
        assert_eq!(ok("pause").command, Command::Pause { timeout: None });
        assert_eq!(
            ok("pause --timeout=10s").command,
            Command::Pause {
                timeout: Some(Duration::from_secs(10))
            }
        );
    }

    #[test]
    fn errors_name_the_word() {
        let e = err("stauts");
        assert!(e.contains("`stauts`") && e.contains("switchover"), "{e}");
        let e = err("");
        assert!(e.contains("empty") && e.contains("status"), "{e}");
        assert!(err("   --json ").contains("empty"));
        assert!(err("status --verbose 1").contains("`--verbose`"));
        assert!(err("resume --timeout 1s").contains("`--timeout`"));
        assert!(err("status now").contains("`now`"));
        assert!(err("pause --timeout").contains("needs a value"));
        // `--json` is taken out first, so it never serves as a value.
        assert!(err("pause --timeout --json").contains("needs a value"));
        assert!(err("switchover --timeout --drain-timeout 1s").contains("`--timeout` needs"));
        let e = err("pause --timeout 10");
        assert!(e.contains("`--timeout`") && e.contains("unit"), "{e}");
        assert!(err("pause --timeout 1s --timeout 2s").contains("twice"));
    }

    #[test]
    fn display_is_canonical_and_reparses() {
        for line in [
            "status",
            "switchover --timeout 30s --drain-timeout 500ms --json",
            "pause --timeout 2m",
        ] {
            let request = ok(line);
            assert_eq!(ok(&request.to_string()), request);
        }
    }

    #[test]
    fn help_lists_every_command() {
        for name in COMMAND_NAMES.split(", ") {
            assert!(
                HELP.lines().any(|l| l.starts_with(name)),
                "{name} missing from HELP"
            );
            assert_eq!(ok(name).command.name(), name);
        }
    }
}
