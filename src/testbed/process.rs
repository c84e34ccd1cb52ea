//! Running helper programs (the `mariadb` client, `mariadb-install-db`, ...) and
//! reading the end of log files for error messages.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;

use super::TestbedError;

/// Run `cmd` to completion with no stdin; its stdout on success.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<String, TestbedError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(TestbedError::io(format!("cannot run {what}")))?;
    check(out, what)
}

/// Run `cmd` with `input` on its stdin; its stdout on success.
pub(crate) fn run_with_stdin(
    mut cmd: Command,
    input: &str,
    what: &str,
) -> Result<String, TestbedError> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(TestbedError::io(format!("cannot run {what}")))?;
    let stdin = child.stdin.take();
    let input = input.to_owned();
    // A writer thread, so a large input cannot deadlock against unread output.
    let writer = thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A write error means the program exited early; its status tells why.
            let _ = stdin.write_all(input.as_bytes());
        }
    });
    let out = child
        .wait_with_output()
        .map_err(TestbedError::io(format!("cannot run {what}")))?;
    let _ = writer.join();
    check(out, what)
}

fn check(out: Output, what: &str) -> Result<String, TestbedError> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !stdout.trim().is_empty() {
        stderr.push_str("\n[stdout]\n");
        stderr.push_str(&tail_lines(&stdout, 20));
    }
    Err(TestbedError::CommandFailed {
        command: what.to_owned(),
        status: out.status.to_string(),
        stderr,
    })
}

/// The last `lines` lines of the file at `path` (empty if it cannot be read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    fs::read(path)
        .map(|bytes| tail_lines(&String::from_utf8_lossy(&bytes), lines))
        .unwrap_or_default()
}

fn tail_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
        assert_eq!(tail_lines("", 5), "");
    }

    #[test]
    fn failure_carries_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo oops >&2; exit 3"]);
        let err = run(&mut cmd, "sh").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("oops") && text.contains("exit status: 3"),
            "{text}"
        );
    }
}
