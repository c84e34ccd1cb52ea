//! Per-session state the switchover will need: transaction status, schema, character
//! set, tracked session variables, prepared statements, user-variable flag and the
//! reasons a session cannot be moved (pins).
//!
//! Fed from OK/EOF packets (status flags and session-tracking data) and from the light
//! statement scan; it never talks to a server itself.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::protocol::constants::*;
use crate::protocol::packets::{session_changes, OkPacket, SessionChange};
use crate::proxy::scan::Effects;

/// A statement prepared on the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub sql: Bytes,
    pub params: u16,
    pub columns: u16,
}

/// Things that tie a session to the server it is on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pins {
    pub temp_tables: bool,
    pub locked_tables: bool,
    pub named_locks: u32,
    pub xa: bool,
    pub cursor: bool,
}

impl Pins {
    /// The first reason the session is pinned, if any.
    pub fn reason(&self) -> Option<&'static str> {
        if self.xa {
            Some("XA transaction")
        } else if self.locked_tables {
            Some("LOCK TABLES")
        } else if self.named_locks > 0 {
            Some("GET_LOCK")
        } else if self.temp_tables {
            Some("temporary table")
        } else if self.cursor {
            Some("open cursor")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SessionState {
    /// Server status flags from the last OK/EOF.
    pub status: u16,
    /// Default schema (database), if any.
    pub schema: Option<String>,
    /// Character set number the client logged in with.
    pub charset: u8,
    /// Session variables reported by session tracking, by name.
    pub variables: BTreeMap<String, String>,
    /// The session may hold user variables (`@x`).
    pub user_variables: bool,
    /// Prepared statements by backend statement id.
    pub statements: HashMap<u32, Prepared>,
    pub pins: Pins,
}

impl SessionState {
    pub fn new(schema: Option<String>, charset: u8) -> Self {
        SessionState {
            schema,
            charset,
            status: SERVER_STATUS_AUTOCOMMIT,
            ..Default::default()
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.status & SERVER_STATUS_IN_TRANS != 0
    }

    /// Applies the status flags of an EOF packet.
    pub fn on_eof(&mut self, status: u16) {
        self.set_status(status);
    }

    fn set_status(&mut self, status: u16) {
        self.status = status;
        self.pins.cursor =
            status & SERVER_STATUS_CURSOR_EXISTS != 0 && status & SERVER_STATUS_LAST_ROW_SENT == 0;
    }

    /// Applies an OK packet (parsed with the backend's capabilities, which always
    /// include session tracking). Returns whether tracked state changed.
    pub fn on_ok(&mut self, ok: &OkPacket) -> bool {
        self.set_status(ok.status);
        let Some(block) = &ok.session_state else {
            return false;
        };
        for change in session_changes(block) {
            let Ok(change) = change else { break };
            match change {
                SessionChange::SystemVariable { name, value } => {
                    self.variables.insert(
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
                SessionChange::Schema(name) => {
                    self.schema =
                        (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
                }
                _ => {}
            }
        }
        true
    }

    /// Applies what the statement scan found, once the statement succeeded.
    pub fn on_statement(&mut self, e: &Effects) {
        let p = &mut self.pins;
        p.temp_tables |= e.creates_temp_table;
        if e.locks_tables {
            p.locked_tables = true;
        }
        if e.unlocks_tables {
            p.locked_tables = false;
        }
        if e.xa_start {
            p.xa = true;
        }
        if e.xa_end {
            p.xa = false;
        }
        if e.release_all_locks {
            p.named_locks = 0;
        } else if e.release_lock {
            p.named_locks = p.named_locks.saturating_sub(1);
        }
        if e.get_lock {
            p.named_locks += 1;
        }
        self.user_variables |= e.user_variable;
    }

    /// COM_RESET_CONNECTION or COM_CHANGE_USER succeeded: the server forgot it all.
    pub fn reset(&mut self, schema: Option<String>) {
        let charset = self.charset;
        *self = SessionState::new(schema, charset);
    }

    pub fn pin_reason(&self) -> Option<&'static str> {
        self.pins.reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::scan::scan;

    #[test]
    fn pins_follow_statements() {
        let mut s = SessionState::new(None, 45);
        assert_eq!(s.pin_reason(), None);
        s.on_statement(&scan(b"SELECT GET_LOCK('a', 1)"));
        assert_eq!(s.pin_reason(), Some("GET_LOCK"));
        s.on_statement(&scan(b"SELECT RELEASE_LOCK('a')"));
        assert_eq!(s.pin_reason(), None);
        s.on_statement(&scan(b"LOCK TABLES t WRITE"));
        assert_eq!(s.pin_reason(), Some("LOCK TABLES"));
        s.on_statement(&scan(b"UNLOCK TABLES"));
        s.on_statement(&scan(b"CREATE TEMPORARY TABLE t (a int)"));
        assert_eq!(s.pin_reason(), Some("temporary table"));
        s.reset(None);
        assert_eq!(s.pin_reason(), None);
    }

    #[test]
    fn cursor_pin_from_status() {
        let mut s = SessionState::new(None, 45);
        s.on_eof(SERVER_STATUS_CURSOR_EXISTS);
        assert_eq!(s.pin_reason(), Some("open cursor"));
        s.on_eof(SERVER_STATUS_CURSOR_EXISTS | SERVER_STATUS_LAST_ROW_SENT);
        assert_eq!(s.pin_reason(), None);
    }
}
