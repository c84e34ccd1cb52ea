//! Server replies the proxy inspects or synthesises: OK (with session-state
//! tracking), ERR, EOF, the `COM_STMT_PREPARE` answer header — and the one client
//! request the proxy rewrites, `COM_STMT_EXECUTE` (and its bulk form).

mod eof;
mod err;
mod execute;
mod ok;
mod prepare;
mod session;

pub use eof::{is_eof, is_ok_eof, EofPacket};
pub use err::{err_payload, is_progress_report, ErrPacket};
pub use execute::{
    carried_types, insert_types, max_head_len, types_at, types_len, Execute, TypesAt,
    BULK_SEND_TYPES,
};
pub use ok::{ok_payload, OkPacket};
pub use prepare::PrepareOk;
pub use session::{session_changes, SessionChange, SessionChanges};
