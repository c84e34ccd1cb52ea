//! What can go wrong talking to a backend's control plane. Every variant names the
//! server, so an orchestrator error says *which side* failed.

/// An error from one [`Control`](super::Control) call.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The control connection could not be opened.
    #[error("cannot connect to {address} for control: {source}")]
    Connect {
        address: String,
        #[source]
        source: mysql_async::Error,
    },
    /// The server (or the connection to it) failed a statement.
    #[error("{what} on {address} failed: {source}")]
    Sql {
        address: String,
        what: &'static str,
        #[source]
        source: mysql_async::Error,
    },
    /// The step did not finish in time. A statement that overran was interrupted on
    /// the server (`KILL QUERY`), so it is no longer running.
    #[error("{what} on {address} timed out")]
    Timeout { address: String, what: &'static str },
    /// The server answered something this module cannot use (or a replication
    /// thread reports an error).
    #[error("{address}: {what}")]
    Unexpected { address: String, what: String },
}

impl ControlError {
    /// The server the error is about.
    pub fn address(&self) -> &str {
        match self {
            ControlError::Connect { address, .. }
            | ControlError::Sql { address, .. }
            | ControlError::Timeout { address, .. }
            | ControlError::Unexpected { address, .. } => address,
        }
    }

    /// The server's error code, when the server refused a statement.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            ControlError::Sql {
                source: mysql_async::Error::Server(e),
                ..
            } => Some(e.code),
            _ => None,
        }
    }
}
