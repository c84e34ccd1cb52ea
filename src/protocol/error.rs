//! The protocol layer's error type: what went wrong while reading peer bytes.

/// An error decoding or framing MySQL protocol data.
///
/// Every variant but `Io` means the *peer* sent something we cannot accept.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The payload ended before a field was complete.
    #[error("truncated packet: {what} is incomplete")]
    Truncated { what: &'static str },
    /// A field held a value that the protocol does not allow.
    #[error("malformed packet: {what}")]
    Malformed { what: &'static str },
    /// A logical packet is larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// A chunk carried an unexpected sequence id.
    #[error("packets out of order: expected sequence id {expected}, got {got}")]
    OutOfOrder { expected: u8, got: u8 },
    /// The underlying transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
