//! What stops a verification before it can say equal or different.

use crate::control::ControlError;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The config lacks what verification needs.
    #[error("config: {0}")]
    Config(String),
    /// A control-plane statement failed (the error names the server).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Blue answered something verification cannot use.
    #[error("blue: {0}")]
    Blue(String),
    /// Green is not in a state verification can use.
    #[error("green: {0}")]
    Green(String),
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
    /// A signal stopped the run (green's replication was restarted first).
    #[error("interrupted")]
    Interrupted,
}
