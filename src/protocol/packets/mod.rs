//! Server replies the proxy inspects or synthesises: OK (with session-state
//! tracking), ERR, EOF, and the `COM_STMT_PREPARE` answer header.

mod eof;
mod err;
mod ok;
mod prepare;
mod session;

pub use eof::{is_eof, is_ok_eof, EofPacket};
pub use err::{err_payload, is_progress_report, ErrPacket};
pub use ok::{ok_payload, OkPacket};
pub use prepare::PrepareOk;
pub use session::{session_changes, SessionChange, SessionChanges};
