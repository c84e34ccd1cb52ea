//! MySQL wire protocol (owned by the protocol work in progress).
