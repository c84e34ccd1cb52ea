//! The `switchyard ctl` side of the admin socket: send one command line, copy the
//! reply to the terminal as it streams, and report whether it ended in `OK`.
//!
//! Invariant: the result is read from the *last* line only, so a progress line that
//! happens to start with `OK` never decides the exit status.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Longest reply line accepted (a `sessions --json` line can be long).
const MAX_REPLY_LINE: u64 = 64 << 20;

/// Why `ctl` could not get an answer. Each says whose side the problem is on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket is missing, refuses, or is not ours to open.
    #[error("cannot reach the admin socket (is the proxy running? socket {path}: {source})")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The command line itself is unusable (it would not be one line).
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    /// The connection broke while sending or reading.
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The proxy closed the connection without an `OK`/`ERR` line.
    #[error("the proxy closed the connection without a result (last line: {last:?})")]
    NoResult { last: String },
    /// Writing to our own output failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

/// Sends `args` (plus `--json` if `json`) as one line and copies every reply line to
/// `out` as it arrives. Returns whether the reply ended in `OK`.
pub async fn run(
    socket: &Path,
    args: &[String],
    json: bool,
    out: &mut impl Write,
) -> Result<bool, ClientError> {
    let mut line = args.join(" ");
    if line.contains(['\n', '\r']) {
        return Err(ClientError::InvalidCommand(
            "arguments must not contain line breaks".into(),
        ));
    }
    if json {
        line.push_str(" --json");
    }
    line.push('\n');

    let io_err = |source| ClientError::Io {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.to_owned(),
            source,
        })?;
    stream.write_all(line.as_bytes()).await.map_err(io_err)?;

    let mut reader = BufReader::new(stream);
    let mut last = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(io_err)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf).map_err(ClientError::Output)?;
        out.flush().map_err(ClientError::Output)?;
        if !buf.iter().all(u8::is_ascii_whitespace) {
            std::mem::swap(&mut last, &mut buf);
        }
    }
    let last = String::from_utf8_lossy(&last).trim_end().to_owned();
    match outcome(&last, json) {
        Some(ok) => Ok(ok),
        None => Err(ClientError::NoResult { last }),
    }
}

/// `Some(true)` for an OK line, `Some(false)` for an ERR line, `None` for neither.
fn outcome(line: &str, json: bool) -> Option<bool> {
    // `--json` may also have been written after the command: trust the line's shape.
    if json || line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        match value.get("type")?.as_str()? {
            "ok" => Some(true),
            "err" => Some(false),
            _ => None,
        }
    } else {
        let word = line.split(' ').next()?;
        match word {
            "OK" => Some(true),
            "ERR" => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(outcome("OK", false), Some(true));
        assert_eq!(outcome("OK switched", false), Some(true));
        assert_eq!(outcome("ERR boom", false), Some(false));
        assert_eq!(outcome("OKAY", false), None);
        assert_eq!(outcome("draining", false), None);
        assert_eq!(outcome(r#"{"type":"ok","message":""}"#, true), Some(true));
        assert_eq!(
            outcome(r#"{"message":"x","type":"err"}"#, true),
            Some(false)
        );
        assert_eq!(outcome(r#"{"type":"progress"}"#, true), None);
        assert_eq!(outcome("OK", true), None);
        assert_eq!(outcome(r#"{"type":"ok","message":""}"#, false), Some(true));
    }
}
