//! Per-session state the switchover will need: transaction status, schema, character
//! set, tracked session variables, prepared statements, user-variable flag and the
//! reasons a session cannot be moved (pins).
//!
//! Prepared statements also keep the parameter types their last typed execution
//! carried: C-library clients send types only once per statement, so a statement
//! prepared again on another server gets them from here (see [`SessionState::execute_types`]).
//!
//! Fed from OK/EOF packets (status flags and session-tracking data) and from the light
//! statement scan; it never talks to a server itself.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::protocol::constants::*;
use crate::protocol::packets::{carried_types, session_changes, types_at, OkPacket, SessionChange};
use crate::proxy::id_map::IdMap;
use crate::proxy::scan::{handler, sql_prepare, table_names, Effects, SqlPrepare};

/// A statement prepared on the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub sql: Bytes,
    pub params: u16,
    pub columns: u16,
    /// What running it does to pins and user variables (scanned once, at prepare).
    pub effects: Effects,
    /// The type block (2 bytes a parameter) of the last execution that carried one.
    pub types: Option<Bytes>,
    /// The current backend connection has been given types for this statement.
    /// Cleared when the statement is prepared again on a new connection.
    pub types_sent: bool,
}

impl Prepared {
    /// A statement just prepared: no types seen yet.
    pub fn new(sql: Bytes, params: u16, columns: u16, effects: Effects) -> Self {
        Prepared {
            sql,
            params,
            columns,
            effects,
            types: None,
            types_sent: false,
        }
    }
}

/// Things that tie a session to the server it is on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pins {
    /// Temporary tables by (schema, name), the schema being the default one at
    /// creation when the statement named none.
    pub temp_tables: BTreeSet<(String, String)>,
    /// Something taken hold of by a statement the scan could not read whole (a
    /// temporary table or a `PREPARE` inside a multi-statement, say): pinned, for
    /// this reason, until the session is reset.
    pub until_reset: Option<&'static str>,
    /// Open table handlers (`HANDLER t OPEN`), by lower-cased name.
    pub handlers: BTreeSet<String>,
    /// SQL-level prepared statements (lower-cased names) prepared `FROM @variable`:
    /// the variable may have changed since, so they cannot be prepared again.
    pub prepared_from_variable: BTreeSet<String>,
    pub locked_tables: bool,
    /// MySQL's backup lock (`LOCK INSTANCE FOR BACKUP`), held until `UNLOCK INSTANCE`.
    pub backup_lock: bool,
    pub named_locks: u32,
    pub xa: bool,
    pub cursor: bool,
    /// Prepared statements (client ids) whose text came in more than one packet
    /// chunk (over 16 MiB): relayed, not kept, so they cannot be prepared again
    /// elsewhere.
    pub oversized_statements: BTreeSet<u32>,
}

impl Pins {
    /// Every reason [`Pins::reason`] can give.
    pub const REASONS: [&'static str; 10] = [
        "XA transaction",
        "LOCK TABLES",
        "LOCK INSTANCE FOR BACKUP",
        "GET_LOCK",
        "temporary table",
        "open cursor",
        "HANDLER",
        "prepared statement over 16 MiB",
        "PREPARE … FROM @variable",
        // Only ever set in `until_reset`.
        "PREPARE",
    ];

    /// The first reason the session is pinned, if any.
    pub fn reason(&self) -> Option<&'static str> {
        if let Some(reason) = self.until_reset {
            Some(reason)
        } else if self.xa {
            Some("XA transaction")
        } else if self.locked_tables {
            Some("LOCK TABLES")
        } else if self.backup_lock {
            Some("LOCK INSTANCE FOR BACKUP")
        } else if self.named_locks > 0 {
            Some("GET_LOCK")
        } else if !self.temp_tables.is_empty() {
            Some("temporary table")
        } else if self.cursor {
            Some("open cursor")
        } else if !self.handlers.is_empty() {
            Some("HANDLER")
        } else if !self.oversized_statements.is_empty() {
            Some("prepared statement over 16 MiB")
        } else if !self.prepared_from_variable.is_empty() {
            Some("PREPARE … FROM @variable")
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
    /// `LAST_INSERT_ID()` may answer something other than 0.
    pub insert_id: bool,
    /// `SET ROLE` ran: the current role may not be the account's default one.
    pub role: bool,
    /// Prepared statements by the client's statement id.
    pub statements: IdMap<Prepared>,
    /// The client id of the statement prepared last: what MariaDB's id -1 ("the
    /// statement just prepared") names.
    pub last_prepared: Option<u32>,
    /// Statements (client ids) that were sent long data not yet consumed by an
    /// execution: that data lives only on the current server.
    pub long_data: BTreeSet<u32>,
    /// SQL-level prepared statements (`PREPARE name FROM '…'`) by lower-cased name:
    /// the `PREPARE` statement itself, sent again as it is after a move.
    pub sql_prepared: BTreeMap<String, Bytes>,
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

    /// Applies what the statement scan found in `sql`, once the statement succeeded.
    pub fn on_statement(&mut self, e: &Effects, sql: &[u8]) {
        let p = &mut self.pins;
        let qualify = |(schema, table): (Option<String>, String)| {
            (
                schema.or_else(|| self.schema.clone()).unwrap_or_default(),
                table,
            )
        };
        if e.creates_temp_table {
            match table_names(sql).filter(|_| !e.several) {
                Some(names) => p.temp_tables.extend(names.into_iter().map(qualify)),
                None => p.until_reset = Some("temporary table"),
            }
        }
        if e.sql_prepare || e.sql_deallocate {
            let read = sql_prepare(sql).filter(|_| !e.several);
            if let Some(SqlPrepare::Prepare { name, .. } | SqlPrepare::Deallocate { name }) = &read
            {
                self.sql_prepared.remove(name);
                p.prepared_from_variable.remove(name);
            }
            match read {
                Some(SqlPrepare::Prepare {
                    name,
                    from_literal: true,
                }) => {
                    self.sql_prepared.insert(name, Bytes::copy_from_slice(sql));
                }
                Some(SqlPrepare::Prepare { name, .. }) => {
                    p.prepared_from_variable.insert(name);
                }
                Some(SqlPrepare::Deallocate { .. }) => {}
                // A PREPARE it could not read: kept on this server for good.
                None if e.sql_prepare => p.until_reset = Some("PREPARE"),
                None => {}
            }
        }
        if e.drops_table && !e.several && !p.temp_tables.is_empty() {
            for name in table_names(sql).unwrap_or_default() {
                p.temp_tables.remove(&qualify(name));
            }
        }
        if e.handler {
            match handler(sql).filter(|_| !e.several) {
                Some((name, true)) => {
                    p.handlers.insert(name);
                }
                Some((name, false)) => {
                    p.handlers.remove(&name);
                }
                // `HANDLER … READ`, or one it could not read inside a multi-statement.
                None if e.several => p.until_reset = Some("HANDLER"),
                None => {}
            }
        }
        if e.locks_tables {
            p.locked_tables = true;
        }
        if e.unlocks_tables {
            p.locked_tables = false;
        }
        if e.locks_instance {
            p.backup_lock = true;
        }
        if e.unlocks_instance {
            p.backup_lock = false;
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
        self.insert_id |= e.insert_id;
        self.role |= e.role;
    }

    /// A single `PREPARE name …` failed: the server has dropped any statement of that
    /// name (it deallocates the old one before preparing the new).
    pub fn on_failed_prepare(&mut self, sql: &[u8]) {
        if let Some(SqlPrepare::Prepare { name, .. }) = sql_prepare(sql) {
            self.sql_prepared.remove(&name);
            self.pins.prepared_from_variable.remove(&name);
        }
    }

    /// COM_STMT_CLOSE: the statement is gone (the server sends no answer).
    pub fn close_statement(&mut self, id: u32) {
        let id = self.resolve(id);
        self.statements.remove(&id);
        self.pins.oversized_statements.remove(&id);
        self.long_data.remove(&id);
    }

    /// A statement was prepared under the client id `id`.
    pub fn on_prepared(&mut self, id: u32, p: Prepared) {
        self.statements.insert(id, p);
        self.last_prepared = Some(id);
    }

    /// The statement the client calls `id`.
    pub fn statement(&self, id: u32) -> Option<&Prepared> {
        self.statements.get(&self.resolve(id))
    }

    /// MariaDB's id -1 stands for the statement prepared last.
    fn resolve(&self, id: u32) -> u32 {
        match (id, self.last_prepared) {
            (u32::MAX, Some(last)) => last,
            _ => id,
        }
    }

    /// An EXECUTE or BULK_EXECUTE `payload` (command byte first) of statement `id`
    /// (the client's) is about to go to the backend. Remembers the types it carries
    /// (copied only when they changed); when it carries none and the backend
    /// connection never got them, returns the remembered ones to insert — the caller
    /// then calls [`SessionState::types_sent`]. Looks only at the fixed head.
    pub fn execute_types(&mut self, id: u32, payload: &[u8]) -> Option<Bytes> {
        let id = self.resolve(id);
        let p = self.statements.get_mut(&id)?;
        let at = types_at(payload, p.params)?;
        if at.present {
            if let Some(carried) = carried_types(payload, p.params) {
                if p.types.as_deref() != Some(carried) {
                    p.types = Some(Bytes::copy_from_slice(carried));
                }
                p.types_sent = true;
            }
            return None;
        }
        if p.types_sent {
            return None;
        }
        p.types.clone()
    }

    /// The backend connection was given statement `id`'s types.
    pub fn types_sent(&mut self, id: u32) {
        let id = self.resolve(id);
        if let Some(p) = self.statements.get_mut(&id) {
            p.types_sent = true;
        }
    }

    /// Every statement was prepared again on a new backend connection, which has
    /// seen none of their types.
    pub fn on_new_backend(&mut self) {
        for p in self.statements.values_mut() {
            p.types_sent = false;
        }
    }

    /// COM_STMT_SEND_LONG_DATA for statement `id`.
    pub fn on_long_data(&mut self, id: u32) {
        let id = self.resolve(id);
        self.long_data.insert(id);
    }

    /// Statement `id` was executed or reset: the server dropped its long data.
    pub fn long_data_consumed(&mut self, id: u32) {
        if !self.long_data.is_empty() {
            let id = self.resolve(id);
            self.long_data.remove(&id);
        }
    }

    /// Long data waits on this server for its execution: the session must not move.
    pub fn holds_long_data(&self) -> bool {
        !self.long_data.is_empty()
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
    fn every_pin_reason_is_listed() {
        let each: Vec<Pins> = vec![
            Pins {
                xa: true,
                ..Pins::default()
            },
            Pins {
                locked_tables: true,
                ..Pins::default()
            },
            Pins {
                backup_lock: true,
                ..Pins::default()
            },
            Pins {
                named_locks: 1,
                ..Pins::default()
            },
            Pins {
                temp_tables: [(String::new(), "t".into())].into(),
                ..Pins::default()
            },
            Pins {
                cursor: true,
                ..Pins::default()
            },
            Pins {
                handlers: ["t".into()].into(),
                ..Pins::default()
            },
            Pins {
                oversized_statements: [1].into(),
                ..Pins::default()
            },
            Pins {
                prepared_from_variable: ["s".into()].into(),
                ..Pins::default()
            },
        ];
        for pins in each {
            let reason = pins.reason().unwrap();
            assert!(Pins::REASONS.contains(&reason), "{reason}");
        }
        for sql in [
            &b"CREATE TEMPORARY TABLE t (a INT); SELECT 1"[..],
            b"PREPARE s FROM 'SELECT 1'; SELECT 1",
            b"HANDLER t OPEN; SELECT 1",
        ] {
            let mut s = SessionState::new(None, 45);
            s.on_statement(&scan(sql), sql);
            let reason = s.pin_reason();
            assert!(
                reason.is_some_and(|r| Pins::REASONS.contains(&r)),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn pins_follow_statements() {
        let mut s = SessionState::new(None, 45);
        assert_eq!(s.pin_reason(), None);
        s.on_statement(
            &scan(b"SELECT GET_LOCK('a', 1)"),
            b"SELECT GET_LOCK('a', 1)",
        );
        assert_eq!(s.pin_reason(), Some("GET_LOCK"));
        s.on_statement(
            &scan(b"SELECT RELEASE_LOCK('a')"),
            b"SELECT RELEASE_LOCK('a')",
        );
        assert_eq!(s.pin_reason(), None);
        s.on_statement(&scan(b"LOCK TABLES t WRITE"), b"LOCK TABLES t WRITE");
        assert_eq!(s.pin_reason(), Some("LOCK TABLES"));
        s.on_statement(&scan(b"UNLOCK TABLES"), b"UNLOCK TABLES");
        assert_eq!(s.pin_reason(), None);
        s.on_statement(
            &scan(b"LOCK INSTANCE FOR BACKUP"),
            b"LOCK INSTANCE FOR BACKUP",
        );
        assert_eq!(s.pin_reason(), Some("LOCK INSTANCE FOR BACKUP"));
        s.on_statement(&scan(b"UNLOCK TABLES"), b"UNLOCK TABLES");
        assert_eq!(s.pin_reason(), Some("LOCK INSTANCE FOR BACKUP"));
        s.on_statement(&scan(b"UNLOCK INSTANCE"), b"UNLOCK INSTANCE");
        assert_eq!(s.pin_reason(), None);
        s.on_statement(
            &scan(b"CREATE TEMPORARY TABLE t (a int)"),
            b"CREATE TEMPORARY TABLE t (a int)",
        );
        assert_eq!(s.pin_reason(), Some("temporary table"));
        s.reset(None);
        assert_eq!(s.pin_reason(), None);
    }

    fn run(s: &mut SessionState, sql: &[u8]) {
        s.on_statement(&scan(sql), sql);
    }

    #[test]
    fn temporary_tables_pin_until_dropped() {
        let mut s = SessionState::new(Some("app".into()), 45);
        run(&mut s, b"CREATE TEMPORARY TABLE t (a int)");
        run(
            &mut s,
            b"create temporary table if not exists `other`.`u``v` like x",
        );
        assert_eq!(s.pin_reason(), Some("temporary table"));
        run(&mut s, b"DROP TEMPORARY TABLE IF EXISTS app.t");
        assert_eq!(s.pin_reason(), Some("temporary table"));
        // Another schema's `t` is not ours.
        s.schema = Some("elsewhere".into());
        run(&mut s, b"DROP TABLE `other`.`u``v`, t");
        assert_eq!(s.pin_reason(), None, "{:?}", s.pins);
    }

    #[test]
    fn unqualified_names_take_the_schema_of_the_moment() {
        let mut s = SessionState::new(Some("a".into()), 45);
        run(&mut s, b"CREATE TEMPORARY TABLE t (x int)");
        s.schema = Some("b".into());
        run(&mut s, b"DROP TABLE t");
        assert_eq!(s.pin_reason(), Some("temporary table"));
        s.schema = Some("a".into());
        run(&mut s, b"DROP TABLE t");
        assert_eq!(s.pin_reason(), None);
    }

    #[test]
    fn multi_statements_pin_conservatively() {
        let mut s = SessionState::new(None, 45);
        run(&mut s, b"SELECT 1; CREATE TEMPORARY TABLE t (a int)");
        assert_eq!(s.pin_reason(), Some("temporary table"));
        // A name read inside a multi-statement is not trusted: still pinned.
        run(&mut s, b"DROP TEMPORARY TABLE t; SELECT 1");
        assert_eq!(s.pin_reason(), Some("temporary table"));
        s.reset(None);
        run(&mut s, b"SELECT 1; LOCK TABLES t WRITE");
        assert_eq!(s.pin_reason(), Some("LOCK TABLES"));
        // A failed multi-statement keeps what it took, drops nothing it released.
        let failed =
            scan(b"UNLOCK TABLES; SELECT GET_LOCK('x', 1); SELECT nonsense").acquisitions();
        s.on_statement(&failed, b"");
        assert_eq!(s.pin_reason(), Some("LOCK TABLES"));
        assert_eq!(s.pins.named_locks, 1);
    }

    #[test]
    fn sql_prepared_statements_are_kept_by_name() {
        let mut s = SessionState::new(None, 45);
        run(&mut s, b"PREPARE One FROM 'SELECT 1'");
        run(&mut s, b"PREPARE two FROM 'SELECT 2'");
        run(&mut s, b"PREPARE v FROM @q");
        assert_eq!(s.pin_reason(), Some("PREPARE … FROM @variable"));
        assert_eq!(s.sql_prepared.keys().collect::<Vec<_>>(), ["one", "two"]);
        // Prepared again from a literal: no longer pinned, kept instead.
        run(&mut s, b"PREPARE V FROM 'SELECT 3'");
        assert_eq!(s.pin_reason(), None);
        run(&mut s, b"DEALLOCATE PREPARE one");
        s.on_failed_prepare(b"PREPARE two FROM 'SELEC nonsense'");
        assert_eq!(
            s.sql_prepared.values().collect::<Vec<_>>(),
            [&Bytes::from_static(b"PREPARE V FROM 'SELECT 3'")]
        );
        // Inside a multi-statement the name is not read: pinned until reset.
        run(&mut s, b"SELECT 1; PREPARE w FROM 'SELECT 4'");
        assert_eq!(s.pin_reason(), Some("PREPARE"));
        s.reset(None);
        assert_eq!(s.pin_reason(), None);
        assert!(s.sql_prepared.is_empty());
    }

    #[test]
    fn handlers_pin_until_closed() {
        let mut s = SessionState::new(None, 45);
        run(&mut s, b"HANDLER t OPEN AS h");
        run(&mut s, b"HANDLER h READ FIRST");
        assert_eq!(s.pin_reason(), Some("HANDLER"));
        run(&mut s, b"HANDLER H CLOSE");
        assert_eq!(s.pin_reason(), None);
    }

    #[test]
    fn oversized_statements_pin_until_closed() {
        let mut s = SessionState::new(None, 45);
        s.pins.oversized_statements.insert(3);
        assert_eq!(s.pin_reason(), Some("prepared statement over 16 MiB"));
        s.close_statement(4);
        assert!(s.pin_reason().is_some());
        s.close_statement(3);
        assert_eq!(s.pin_reason(), None);
    }

    fn execute(id: u8, types: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![0x17, id, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        match types {
            Some(t) => {
                p.push(1);
                p.extend_from_slice(t);
            }
            None => p.push(0),
        }
        p.extend_from_slice(&[7, 0, 0, 0]);
        p
    }

    fn with_statement(params: u16) -> SessionState {
        let mut s = SessionState::new(None, 45);
        let sql = Bytes::from_static(b"SELECT ?");
        s.on_prepared(3, Prepared::new(sql, params, 1, Effects::default()));
        s
    }

    #[test]
    fn types_are_remembered_and_given_once_per_connection() {
        let mut s = with_statement(1);
        // First execution on blue carries types: nothing to insert.
        assert_eq!(s.execute_types(3, &execute(3, Some(&[3, 0]))), None);
        assert_eq!(s.execute_types(3, &execute(3, None)), None);
        // Moved: the first untyped execution gets them, once.
        s.on_new_backend();
        assert_eq!(
            s.execute_types(3, &execute(3, None)).as_deref(),
            Some(&[3u8, 0][..])
        );
        s.types_sent(3);
        assert_eq!(s.execute_types(3, &execute(3, None)), None);
        // Rebound to another type: the new one is what a later move gives.
        let before = s.statements[&3].types.clone().unwrap();
        assert_eq!(s.execute_types(3, &execute(3, Some(&[3, 0]))), None);
        assert_eq!(
            s.statements[&3].types.as_ref().unwrap().as_ptr(),
            before.as_ptr(),
            "identical types are not copied again"
        );
        assert_eq!(s.execute_types(3, &execute(3, Some(&[8, 0x80]))), None);
        s.on_new_backend();
        assert_eq!(
            s.execute_types(u32::MAX, &execute(0xFF, None)).as_deref(),
            Some(&[8u8, 0x80][..]),
            "id -1 is the statement prepared last"
        );
    }

    #[test]
    fn nothing_to_give_without_types_or_parameters() {
        let mut s = with_statement(1);
        s.on_new_backend();
        assert_eq!(s.execute_types(3, &execute(3, None)), None);
        assert_eq!(s.execute_types(4, &execute(4, None)), None);
        let mut s = with_statement(0);
        s.on_new_backend();
        assert_eq!(s.execute_types(3, &execute(3, None)[..10]), None);
    }

    #[test]
    fn long_data_holds_until_executed_reset_or_closed() {
        let mut s = with_statement(1);
        assert!(!s.holds_long_data());
        s.on_long_data(3);
        assert!(s.holds_long_data());
        s.long_data_consumed(4);
        assert!(s.holds_long_data());
        s.long_data_consumed(u32::MAX);
        assert!(!s.holds_long_data());
        s.on_long_data(3);
        s.close_statement(3);
        assert!(!s.holds_long_data());
        s.on_long_data(3);
        s.reset(None);
        assert!(!s.holds_long_data());
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
