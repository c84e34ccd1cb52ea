//! Moving a session to the new target after a switchover: open (or take the
//! pre-opened) connection, replay the session's state on it — schema, session
//! variables, user variables, prepared statements — and swap it in.
//!
//! Runs inside the session task, at a transaction boundary, before the held command
//! is sent, so the client sees only a short wait. A pinned session cannot move: it
//! gets a clear error and is closed.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::control::Flavor;
use crate::protocol::buf::Reader;
use crate::protocol::codec::write_packet;
use crate::protocol::constants::*;
use crate::protocol::packets::ErrPacket;
use crate::protocol::ProtocolError;
use crate::proxy::conn::ServerConn;
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::response::Expect;
use crate::proxy::session::{connect_error_reply, Session};
use crate::proxy::user_variables::{self, quote_ident};

/// The first column of the first row (`None` for none, or NULL).
fn first_value(rows: &[Vec<Option<Bytes>>]) -> Option<&[u8]> {
    rows.first()?.first()?.as_deref()
}

/// The answer of `SELECT LAST_INSERT_ID()`, when there is one to carry (not 0).
fn last_insert_id(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?)
        .ok()?
        .parse()
        .ok()
        .filter(|&id| id != 0)
}

/// `SET ROLE` back to what `CURRENT_ROLE()` answered. MariaDB names one role (NULL:
/// none). MySQL answers `NONE` or a list of quoted accounts (`` `r`@`%` ``), which is
/// already what `SET ROLE` takes — written to MySQL's documentation, not tested against
/// a MySQL server.
fn set_role(flavor: Flavor, current: Option<&[u8]>) -> String {
    match (flavor, current) {
        (_, None) => "SET ROLE NONE".into(),
        (Flavor::MariaDb, Some(role)) => {
            format!("SET ROLE {}", quote_ident(&String::from_utf8_lossy(role)))
        }
        (Flavor::MySql, Some(roles)) => format!("SET ROLE {}", String::from_utf8_lossy(roles)),
    }
}

/// Session variables that are not replayed: read-only, or set by the proxy itself.
const NOT_REPLAYED: &[&str] = &[
    "last_gtid",
    // MySQL's id of the statement just run (read-only), which it reports as changed
    // after every statement once all variables are tracked.
    "statement_id",
    "session_track_system_variables",
    "session_track_schema",
    "session_track_state_change",
    "session_track_transaction_info",
];

impl Session {
    /// Moves the session to the current target (see the module doc).
    pub(crate) async fn migrate(&mut self) -> Result<(), SessionError> {
        self.migrate_to_target(true).await
    }

    /// Moves an idle session as soon as the target changes, so the old server keeps
    /// no application connections: passes the gate like a command would (a second
    /// switchover waits for it), and on failure stays where it is — the move is
    /// tried again, with an error to the client if need be, at its next command.
    /// Pinned sessions are left for their next command, which tells them why.
    pub(crate) async fn move_idle(&mut self) -> Result<(), SessionError> {
        if !self.at_boundary || !self.client.buf.is_empty() || self.state.pin_reason().is_some() {
            return Ok(());
        }
        // A few at a time; a session whose client speaks meanwhile moves with its
        // command instead.
        let shared = self.shared.clone();
        let _permit = tokio::select! {
            permit = shared.idle_moves.acquire() => permit,
            _ = self.client.readable() => return Ok(()),
        };
        let gate = self.shared.gate.clone();
        gate.enter().await;
        let result = if self.server.epoch() != self.shared.topology.target.load().epoch {
            self.migrate_to_target(false).await
        } else {
            Ok(())
        };
        gate.leave();
        result
    }

    /// `pending`: a client command waits for the move, so failures are answered with
    /// an ERR to it; otherwise they are only logged.
    async fn migrate_to_target(&mut self, pending: bool) -> Result<(), SessionError> {
        let target = self.shared.topology.target.load_full();
        if let Some(reason) = self.state.pin_reason() {
            self.client.reply(1, &reply::pinned(reason)).await;
            return Err(SessionError::Pinned(reason));
        }
        // 1. What only the old server knows of the session: read it while it is there.
        let carried = self.read_carried().await;
        // 2. A connection to the new target, pre-opened by the switchover if it could.
        let conn = match self.published.info().take_preopened(target.epoch) {
            Some(conn) => conn,
            None => {
                let timeout = self.shared.topology.config.load().proxy.connect_timeout.0;
                match self
                    .shared
                    .connect_session(target.side, &target.address, &self.login, timeout)
                    .await
                {
                    Ok(conn) => conn,
                    Err(e) if !pending => {
                        tracing::warn!(
                            session = self.id,
                            "cannot move to {}: {e}; will retry at the next command",
                            target.address
                        );
                        return Ok(());
                    }
                    Err(e) => {
                        self.client
                            .reply(1, &connect_error_reply(&target.address, &e))
                            .await;
                        return Err(e.into());
                    }
                }
            }
        };
        // 3. Swap it in; the old connection is closed politely in the background.
        let thread_id = conn.thread_id;
        let mut old = self
            .server
            .replace(ServerConn::from_upstream(conn, target.epoch));
        tokio::spawn(async move {
            let mut quit = BytesMut::new();
            write_packet(&mut quit, 0, &[COM_QUIT]);
            let _ = old.write(&quit).await;
            old.shutdown().await;
        });
        let info = self.published.info();
        info.backend_thread
            .store(thread_id, std::sync::atomic::Ordering::Relaxed);
        *crate::proxy::registry::lock(&info.backend_address) = target.address.clone();
        // 4. Replay the state.
        self.replay(carried).await?;
        tracing::debug!(session = self.id, to = %target.address, backend_thread = thread_id, "session moved");
        Ok(())
    }

    /// Sends every state-restoring command at once (pipelined), then reads each answer
    /// without passing it to the client. A statement the new server refuses (e.g. a
    /// variable it no longer has) is logged and skipped: the session carries on.
    async fn replay(&mut self, carried: Vec<String>) -> Result<(), SessionError> {
        // The new connection has seen no parameter types: each statement's first
        // execution there gets the remembered ones (Session::give_types).
        self.state.on_new_backend();
        let mut batch = BytesMut::new();
        let mut answers: Vec<(Expect, Option<u32>, String)> = Vec::new();
        if let Some(schema) = &self.state.schema {
            let payload = [&[COM_INIT_DB][..], schema.as_bytes()].concat();
            write_packet(&mut batch, 0, &payload);
            answers.push((Expect::Single, None, format!("USE {schema}")));
        }
        let mut statements = Vec::new();
        for (name, value) in &self.state.variables {
            if NOT_REPLAYED.contains(&name.as_str()) {
                continue;
            }
            statements.push(format!(
                "SET SESSION {} = {}",
                quote_ident(name),
                sysvar_literal(name, value)
            ));
        }
        statements.extend(carried);
        for sql in statements {
            write_packet(&mut batch, 0, &[&[COM_QUERY][..], sql.as_bytes()].concat());
            answers.push((Expect::ResultSets, None, sql));
        }
        // After the variables: the text is read in the session's character set.
        for (name, sql) in &self.state.sql_prepared {
            write_packet(&mut batch, 0, &[&[COM_QUERY][..], sql].concat());
            answers.push((Expect::ResultSets, None, format!("PREPARE {name}")));
        }
        let mut prepared: Vec<(u32, Bytes)> = self
            .state
            .statements
            .iter()
            .map(|(id, p)| (*id, p.sql.clone()))
            .collect();
        prepared.sort_by_key(|(id, _)| *id);
        for (client_id, sql) in &prepared {
            write_packet(&mut batch, 0, &[&[COM_STMT_PREPARE][..], sql].concat());
            answers.push((Expect::Prepare, Some(*client_id), "PREPARE".into()));
        }
        if answers.is_empty() {
            self.ids.start_mapping();
            return Ok(());
        }
        self.server
            .write(&batch)
            .await
            .map_err(SessionError::backend_io)?;
        let mut ids = HashMap::new();
        for (expect, client_id, what) in answers {
            let outcome = self.swallow(expect).await?;
            if outcome.error {
                tracing::warn!(session = self.id, "replay on the new server failed: {what}");
            }
            if let (Some(client_id), Some((backend_id, _, _))) = (client_id, outcome.prepared) {
                ids.insert(client_id, backend_id);
            }
        }
        let highest = prepared.iter().map(|(id, _)| *id).max().unwrap_or(0);
        self.ids.moved(ids, highest);
        Ok(())
    }

    /// Statements that restore what lives only on the current (old) server: the
    /// role `SET ROLE` chose, user variables, what `LAST_INSERT_ID()` answers (an
    /// application may ask for it in the statement after its INSERT, and the move may
    /// come in between). Each is read only if the session's statements may have set
    /// it; what cannot be read is logged and left behind.
    async fn read_carried(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.state.role {
            match self.query_rows("SELECT CURRENT_ROLE()").await {
                Ok(rows) => out.push(set_role(
                    Flavor::from_version(&String::from_utf8_lossy(
                        &self.shared.server_info.load().version,
                    )),
                    first_value(&rows),
                )),
                Err(e) => tracing::warn!(session = self.id, "cannot read CURRENT_ROLE(): {e}"),
            }
        }
        if self.state.user_variables {
            match self.read_user_variables().await {
                Ok(vars) => out.extend(
                    vars.iter()
                        .map(|(name, literal)| format!("SET @{} = {literal}", quote_ident(name))),
                ),
                Err(e) => tracing::warn!(session = self.id, "cannot read user variables: {e}"),
            }
        }
        // Session tracking (MariaDB and MySQL alike) reports `SET NAMES x COLLATE y` as
        // a change of the three character sets, not of `collation_connection`, and
        // setting `character_set_connection` resets the collation to the character
        // set's default: read the collation itself and set it after the variables.
        if self
            .state
            .variables
            .contains_key("character_set_connection")
        {
            match self.query_rows("SELECT @@collation_connection").await {
                Ok(rows) => out.extend(first_value(&rows).map(|collation| {
                    format!(
                        "SET SESSION collation_connection = {}",
                        sysvar_literal("collation_connection", &String::from_utf8_lossy(collation))
                    )
                })),
                Err(e) => {
                    tracing::warn!(session = self.id, "cannot read @@collation_connection: {e}")
                }
            }
        }
        if self.state.insert_id {
            match self.query_rows("SELECT LAST_INSERT_ID()").await {
                Ok(rows) => out.extend(
                    last_insert_id(first_value(&rows))
                        .map(|id| format!("SET SESSION last_insert_id = {id}")),
                ),
                Err(e) => tracing::warn!(session = self.id, "cannot read LAST_INSERT_ID(): {e}"),
            }
        }
        out
    }

    /// The session's user variables as `(name, SQL literal)`, read on the current
    /// backend (strings by `HEX()`, exact; see [`user_variables`]).
    ///
    /// The flavor comes from the last backend greeting the proxy saw: blue and green
    /// are the same flavor (GTID replication does not cross between the two), so it is
    /// this session's backend's too.
    async fn read_user_variables(&mut self) -> Result<Vec<(String, String)>, SessionError> {
        let version = self.shared.server_info.load().version.clone();
        match Flavor::from_version(&String::from_utf8_lossy(&version)) {
            Flavor::MariaDb => self.read_user_variables_mariadb().await,
            Flavor::MySql => self.read_user_variables_mysql().await,
        }
    }

    async fn read_user_variables_mysql(&mut self) -> Result<Vec<(String, String)>, SessionError> {
        let names: Vec<String> = self
            .query_rows(user_variables::MYSQL_NAMES)
            .await?
            .into_iter()
            .filter_map(|row| row.into_iter().next().flatten())
            .map(|name| String::from_utf8_lossy(&name).into_owned())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let (types, rows) = self
            .query_typed(&user_variables::mysql_select(&names))
            .await?;
        let row = rows.into_iter().next().unwrap_or_default();
        Ok(user_variables::mysql_literals(names, &types, &row))
    }

    async fn read_user_variables_mariadb(&mut self) -> Result<Vec<(String, String)>, SessionError> {
        let rows = self.query_rows(user_variables::MARIADB).await?;
        let mut out = Vec::new();
        let mut strings = Vec::new();
        for row in rows {
            let [Some(name), Some(kind), charset, value] =
                <[Option<Bytes>; 4]>::try_from(row).map_err(|_| malformed("user variable row"))?
            else {
                continue;
            };
            let name = String::from_utf8_lossy(&name).into_owned();
            let literal = match (kind.as_ref(), value) {
                (_, None) => "NULL".to_string(),
                (b"INT" | b"DECIMAL", Some(v)) => String::from_utf8_lossy(&v).into_owned(),
                (b"DOUBLE", Some(v)) => format!("{}e0", String::from_utf8_lossy(&v)),
                (_, Some(_)) => {
                    strings.push((name, charset));
                    continue;
                }
            };
            out.push((name, literal));
        }
        if !strings.is_empty() {
            let select = strings
                .iter()
                .map(|(name, _)| format!("HEX(@{})", quote_ident(name)))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = self.query_rows(&format!("SELECT {select}")).await?;
            let values = rows.into_iter().next().unwrap_or_default();
            for ((name, charset), hex) in strings.into_iter().zip(values) {
                out.push((name, user_variables::string_literal(charset, hex)));
            }
        }
        Ok(out)
    }

    /// Runs a text query on the backend and returns its rows (NULL = `None`), without
    /// passing anything to the client. For small control queries only.
    async fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<Bytes>>>, SessionError> {
        Ok(self.query_typed(sql).await?.1)
    }

    /// [`Self::query_rows`], with each column's type byte.
    async fn query_typed(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<u8>, Vec<Vec<Option<Bytes>>>), SessionError> {
        let deprecate_eof = self.server.caps() & CLIENT_DEPRECATE_EOF != 0;
        let (stream, buf) = self.server.parts();
        let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
        io.buf = std::mem::take(buf);
        let result = async {
            io.write(&[&[COM_QUERY][..], sql.as_bytes()].concat())
                .await
                .map_err(SessionError::backend_io)?;
            let first = io.read().await.map_err(SessionError::Backend)?;
            match first.payload.first() {
                Some(0xFF) => {
                    let err = ErrPacket::parse(&first.payload).map_err(SessionError::Backend)?;
                    // The error itself says why (a missing privilege, a missing table):
                    // the caller only logs that the read failed.
                    tracing::warn!(
                        code = err.code,
                        "{sql}: {}",
                        String::from_utf8_lossy(&err.message)
                    );
                    return Err(SessionError::Backend(ProtocolError::Malformed {
                        what: if err.code == 0 {
                            "query refused"
                        } else {
                            "query failed"
                        },
                    }));
                }
                Some(0x00) => return Ok((Vec::new(), Vec::new())),
                _ => {}
            }
            let columns = Reader::new(&first.payload)
                .lenenc_int()
                .map_err(SessionError::Backend)?;
            let mut types = Vec::new();
            for _ in 0..columns {
                let definition = io.read().await.map_err(SessionError::Backend)?;
                types.push(
                    user_variables::column_type(&definition.payload)
                        .map_err(SessionError::Backend)?,
                );
            }
            if !deprecate_eof {
                io.read().await.map_err(SessionError::Backend)?;
            }
            let mut rows = Vec::new();
            loop {
                let p = io.read().await.map_err(SessionError::Backend)?;
                match p.payload.first() {
                    Some(0xFE) if p.payload.len() < MAX_CHUNK => return Ok((types, rows)),
                    Some(0xFF) => return Err(malformed("error in the middle of a result")),
                    _ => {}
                }
                let mut r = Reader::new(&p.payload);
                let mut row = Vec::new();
                for _ in 0..columns {
                    if r.peek() == Some(0xFB) {
                        r.u8().map_err(SessionError::Backend)?;
                        row.push(None);
                    } else {
                        let v = r.lenenc_bytes().map_err(SessionError::Backend)?;
                        row.push(Some(Bytes::copy_from_slice(v)));
                    }
                }
                rows.push(row);
            }
        }
        .await;
        *buf = io.into_parts().1;
        result
    }
}

fn malformed(what: &'static str) -> SessionError {
    SessionError::Backend(ProtocolError::Malformed { what })
}

/// A session variable's tracked value as an SQL literal: numbers bare, everything
/// else quoted (MariaDB accepts quoted values for string, enum and boolean variables).
fn sysvar_literal(name: &str, value: &str) -> String {
    let numeric = !value.is_empty()
        && value.parse::<f64>().is_ok()
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    if numeric {
        value.to_string()
    } else if value == "NULL" && name.starts_with("character_set_") {
        "NULL".to_string()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(sysvar_literal("wait_timeout", "28800"), "28800");
        assert_eq!(
            sysvar_literal("sql_mode", "ANSI_QUOTES,STRICT_ALL_TABLES"),
            "'ANSI_QUOTES,STRICT_ALL_TABLES'"
        );
        assert_eq!(sysvar_literal("sql_mode", ""), "''");
        assert_eq!(sysvar_literal("x", "it's"), "'it''s'");
        assert_eq!(sysvar_literal("autocommit", "OFF"), "'OFF'");
        assert_eq!(sysvar_literal("character_set_results", "NULL"), "NULL");
        assert_eq!(sysvar_literal("long_query_time", "1.500000"), "1.500000");
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn last_insert_id_answers() {
        let rows = |v: Option<&'static [u8]>| vec![vec![v.map(Bytes::from_static)]];
        assert_eq!(last_insert_id(first_value(&rows(Some(b"42")))), Some(42));
        assert_eq!(last_insert_id(first_value(&rows(Some(b"0")))), None);
        assert_eq!(last_insert_id(first_value(&rows(None))), None);
        assert_eq!(last_insert_id(first_value(&rows(Some(b"x")))), None);
        assert_eq!(last_insert_id(first_value(&[])), None);
    }

    #[test]
    fn roles_set_back() {
        assert_eq!(set_role(Flavor::MariaDb, None), "SET ROLE NONE");
        assert_eq!(set_role(Flavor::MariaDb, Some(b"a`b")), "SET ROLE `a``b`");
        assert_eq!(set_role(Flavor::MySql, Some(b"NONE")), "SET ROLE NONE");
        assert_eq!(
            set_role(Flavor::MySql, Some(b"`r`@`%`")),
            "SET ROLE `r`@`%`"
        );
    }
}
