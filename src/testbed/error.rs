//! The testbed's error type: every way starting or driving a local MariaDB or MySQL can
//! fail.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why the testbed could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A MariaDB program is not installed where we looked.
    #[error("{program} not found (looked in {searched}); run scripts/install-deps.sh")]
    BinaryNotFound {
        program: &'static str,
        searched: String,
    },

    /// A folder given to `Build::from_dir` is not an unpacked MariaDB or MySQL.
    #[error("{} is not a server build folder: {reason} (make one with scripts/fetch-server.sh)", dir.display())]
    BadBuildDir { dir: PathBuf, reason: String },

    /// A pair was asked for with a MariaDB and a MySQL side.
    #[error("blue is {blue} and green is {green}: a pair's servers must be of one flavor")]
    MixedFlavors {
        blue: &'static str,
        green: &'static str,
    },

    /// A program ran and exited unsuccessfully.
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    /// A program printed something we could not make sense of.
    #[error("unexpected output from {command}: {output:?}")]
    UnexpectedOutput { command: String, output: String },

    /// A server process died while starting.
    #[error("{server} exited while starting ({status}); end of {}:\n{tail}", log.display())]
    ServerExited {
        server: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// Something did not happen in time.
    #[error("{what} did not happen within {waited:?}; end of {}:\n{tail}", log.display())]
    Timeout {
        what: String,
        waited: Duration,
        log: PathBuf,
        tail: String,
    },

    /// The replica reported a replication error.
    #[error("replication on {server} failed: {detail}")]
    Replication {
        server: &'static str,
        detail: String,
    },

    /// A file-system or process-spawning error.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl TestbedError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> TestbedError {
        let context = context.into();
        move |source| TestbedError::Io { context, source }
    }
}
