//! What stops `create`.

use crate::control::ControlError;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The config lacks what `create` needs.
    #[error("config: {0}")]
    Config(String),
    /// A prerequisite is missing on one side; each entry says what to change where.
    #[error("{} prerequisite(s) missing:\n{}", .0.len(), bullets(.0))]
    Prerequisites(Vec<String>),
    /// Green already holds user data (and `--force` was not given), or is already a
    /// replica.
    #[error("green is not empty: {0}")]
    NotEmpty(String),
    /// A control-plane statement failed (the error names the server).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Blue answered something `create` cannot use.
    #[error("blue: {0}")]
    Blue(String),
    /// Green refused part of the copy or the replication set-up.
    #[error("green: {0}")]
    Green(String),
    /// A signal stopped the run; green is left marked incomplete.
    #[error("interrupted; green is marked incomplete and the next `create` starts it again")]
    Interrupted,
}

fn bullets(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}
