//! One client session: the connection phase on both sides, then the command loop —
//! read a command, look at its first bytes, forward it, relay the answer — until the
//! client quits or either side goes away.
//!
//! Invariant: between commands both read buffers start at a packet boundary and the
//! backend connection is idle, so the session could be moved to another backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::protocol::codec::chunk_header;
use crate::protocol::constants::*;
use crate::protocol::packets::{insert_types, max_head_len, ok_payload};
use crate::protocol::ProtocolError;
use crate::proxy::client::{self, Authenticated};
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::registry::{lock, SessionInfo};
use crate::proxy::response::Expect;
use crate::proxy::scan::{scan, Effects};
use crate::proxy::state::{Prepared, SessionState};
use crate::proxy::upstream::{self, ConnectError, Login, Upstream};
use crate::proxy::Proxy;

/// How long a session waits for its next command before it frees its buffers.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

pub struct Session {
    pub(crate) id: u32,
    pub(crate) shared: Arc<Proxy>,
    pub(crate) info: Arc<SessionInfo>,
    pub(crate) client: TcpStream,
    pub(crate) cbuf: BytesMut,
    pub(crate) backend: TcpStream,
    pub(crate) bbuf: BytesMut,
    /// Scratch for packets the proxy writes or rewrites.
    pub(crate) out: BytesMut,
    pub(crate) backend_caps: u32,
    pub(crate) mariadb_caps: u32,
    /// The client did not ask for CLIENT_SESSION_TRACK: OK packets are rewritten.
    pub(crate) strip_tracking: bool,
    pub(crate) max_packet: usize,
    /// `[proxy] net_read_timeout`: bound on reading one packet once it has begun.
    pub(crate) net_read_timeout: Duration,
    /// When the packet being read must be complete; set by the first read that finds
    /// a packet incomplete, cleared when it is whole. `None` between packets, so an
    /// idle session and a packet that arrives whole arm no timer.
    pub(crate) packet_deadline: Option<Instant>,
    /// Sequence id of the client packet being read (the ERR for a timeout follows it).
    pub(crate) client_seq: u8,
    pub(crate) state: SessionState,
    pub(crate) login: Login,
    /// The scramble of the proxy's greeting, used to check COM_CHANGE_USER.
    pub(crate) client_scramble: [u8; 20],
    /// The scramble of the backend's greeting, used to answer it.
    pub(crate) backend_scramble: Vec<u8>,
    /// The target epoch the backend connection belongs to.
    pub(crate) epoch: u64,
    /// At a transaction boundary: not counted as busy by the gate.
    pub(crate) at_boundary: bool,
    /// The published summary may be stale.
    pub(crate) dirty: bool,
    /// The transaction flag and pin reason last published.
    pub(crate) published_in_tx: bool,
    pub(crate) published_pin: Option<&'static str>,
    /// Client statement id → backend statement id, once the session has moved to
    /// another server (before that the ids are the same and the map is empty).
    pub(crate) statement_ids: HashMap<u32, u32>,
    /// Next statement id handed to the client once ids are mapped.
    pub(crate) next_statement_id: u32,
    /// Statement ids are mapped (the session moved at least once).
    pub(crate) map_statements: bool,
    /// Answers go to the client (false while the proxy replays state on its own).
    pub(crate) forward: bool,
    /// Wakes an idle session when the target changes, so it moves at once.
    pub(crate) retargets: tokio::sync::watch::Receiver<u64>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.at_boundary {
            self.shared.gate.leave();
        }
        self.shared.sessions.remove(self.id);
    }
}

/// Runs a client connection from greeting to close. Never panics on peer input; logs
/// how the session ended.
pub async fn run(shared: Arc<Proxy>, stream: TcpStream, peer: SocketAddr, id: u32) {
    stream.set_nodelay(true).ok();
    let result = match establish(shared.clone(), stream, peer, id).await {
        Ok(mut session) => {
            let result = session.command_loop().await;
            if matches!(result, Err(SessionError::ReadTimeout(_))) {
                // What a server logs as "Got timeout reading communication packets".
                let seq = session.client_seq.wrapping_add(1);
                session.reply_to_client(seq, &reply::read_timeout()).await;
                let _ = session.client.shutdown().await;
            }
            result
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::debug!(session = id, %peer, "session closed"),
        Err(SessionError::AccessDenied) => {}
        Err(e) => tracing::info!(session = id, %peer, "session ended: {e}"),
    }
}

/// Connection phase: authenticate the client, log in to the backend, answer OK.
async fn establish(
    shared: Arc<Proxy>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u32,
) -> Result<Session, SessionError> {
    let config = shared.topology.config.load_full();
    let mut io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
    let timeout = config.proxy.handshake_timeout.0;
    let Authenticated { login, scramble } =
        match tokio::time::timeout(timeout, client::handshake(&mut io, id, &shared, peer)).await {
            Ok(r) => r?,
            Err(_) => return Err(SessionError::HandshakeTimeout),
        };
    let target = shared.topology.target.load_full();
    let address = target.address.clone();
    if let Some(why) = shared.topology.refusal.load().as_ref() {
        io.write(&reply::refused(why)).await.ok();
        return Err(SessionError::Refused(why.clone()));
    }
    let conn = match upstream::connect(&address, &login, config.proxy.connect_timeout.0).await {
        Ok(c) => c,
        Err(e) => {
            let payload = connect_error_reply(&address, &e);
            io.write(&payload).await.ok();
            return Err(e.into());
        }
    };
    shared.server_info.store(Arc::new(conn.server.clone()));
    let Upstream {
        stream: backend,
        buf: bbuf,
        thread_id,
        caps,
        mariadb_caps,
        scramble: backend_scramble,
        ..
    } = conn;
    io.write(&ok_payload(SERVER_STATUS_AUTOCOMMIT, login.caps))
        .await
        .map_err(SessionError::client_io)?;
    let (client, cbuf) = io.into_parts();
    let info = shared
        .sessions
        .insert(id, login.clone(), peer, thread_id, address.clone());
    let schema = login
        .database
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    tracing::debug!(session = id, %peer, user = info.user(), backend_thread = thread_id, "session open");
    let epoch = target.epoch;
    let mut retargets = shared.topology.retargets.subscribe();
    retargets.mark_unchanged();
    Ok(Session {
        id,
        state: SessionState::new(schema, login.charset),
        strip_tracking: login.caps & CLIENT_SESSION_TRACK == 0,
        max_packet: config.proxy.max_packet_size.0 as usize,
        net_read_timeout: config.proxy.net_read_timeout.0,
        packet_deadline: None,
        client_seq: 0,
        shared,
        info,
        client,
        cbuf,
        backend,
        bbuf,
        out: BytesMut::with_capacity(1024),
        backend_caps: caps,
        mariadb_caps,
        login,
        client_scramble: scramble,
        backend_scramble,
        epoch,
        at_boundary: true,
        dirty: false,
        published_in_tx: false,
        published_pin: None,
        statement_ids: HashMap::new(),
        next_statement_id: 1,
        map_statements: false,
        forward: true,
        retargets,
    })
}

/// The ERR a client gets when its backend login failed.
pub(crate) fn connect_error_reply(address: &str, e: &ConnectError) -> Bytes {
    match e {
        ConnectError::Refused(err) => {
            let mut out = BytesMut::new();
            err.encode(&mut out);
            out.freeze()
        }
        ConnectError::UnsupportedAuth(plugin) => reply::unsupported_auth(plugin),
        other => reply::backend_unavailable(address, &other.to_string()),
    }
}

impl Session {
    async fn command_loop(&mut self) -> Result<(), SessionError> {
        loop {
            if !self.wait_for_command().await? {
                return Ok(());
            }
            let Some((len, seq)) = chunk_header(&self.cbuf) else {
                continue;
            };
            if seq != 0 {
                self.reply_to_client(seq.wrapping_add(1), &reply::out_of_order())
                    .await;
                return Err(SessionError::Client(ProtocolError::OutOfOrder {
                    expected: 0,
                    got: seq,
                }));
            }
            if len > self.max_packet {
                self.reply_to_client(1, &reply::packet_too_large(self.max_packet))
                    .await;
                return Err(SessionError::Client(ProtocolError::TooLarge {
                    size: len,
                    max: self.max_packet,
                }));
            }
            if len == 0 {
                self.reply_to_client(1, &reply::malformed("empty command packet"))
                    .await;
                return Err(SessionError::Client(ProtocolError::Malformed {
                    what: "empty command",
                }));
            }
            if len == MAX_CHUNK {
                self.enter_gate().await?;
                let more = self.big_command().await?;
                self.after_command();
                if !more {
                    return Ok(());
                }
                continue;
            }
            while self.cbuf.len() < 4 + len {
                self.cbuf.reserve(4 + len - self.cbuf.len());
                if !self.read_client().await? {
                    return Ok(());
                }
            }
            self.packet_done();
            let packet = self.cbuf.split_to(4 + len);
            if packet[4] != COM_QUIT {
                self.enter_gate().await?;
            }
            let more = self.command(packet).await?;
            self.after_command();
            if !more {
                return Ok(());
            }
        }
    }

    /// Before a command: at a transaction boundary, pass the gate (waiting while it is
    /// closed) and, if the target changed meanwhile, move to the new target first.
    async fn enter_gate(&mut self) -> Result<(), SessionError> {
        if !self.at_boundary {
            return Ok(());
        }
        let gate = self.shared.gate.clone();
        let closed = gate.is_closed();
        if closed {
            self.publish_held(true);
        }
        let held = gate.enter().await;
        self.at_boundary = false;
        if closed {
            self.publish_held(false);
            tracing::debug!(session = self.id, ?held, "released from the gate");
        }
        if self.epoch != self.shared.topology.target.load().epoch {
            self.migrate().await?;
        }
        Ok(())
    }

    /// After a command: back at a boundary unless a transaction is open; publish the
    /// summary if it changed.
    fn after_command(&mut self) {
        let in_tx = self.state.in_transaction();
        // Long data sent for a statement lives only on this server until the statement
        // is executed or reset, so the session stays between boundaries until then, as
        // inside a transaction. Simpler and safer than replaying it on the new server:
        // that would mean keeping every chunk (up to max_packet_size each) until the
        // execution, while clients send the execution right after the data.
        if !self.at_boundary && !in_tx && !self.state.holds_long_data() {
            self.shared.gate.leave();
            self.at_boundary = true;
        }
        // Compared with a local copy: no lock unless something changed.
        if self.dirty
            || in_tx != self.published_in_tx
            || self.state.pin_reason() != self.published_pin
        {
            self.publish();
        }
    }

    /// Publishes schema, transaction and pin state for the admin and the switchover.
    pub(crate) fn publish(&mut self) {
        let mut summary = lock(&self.info.summary);
        summary.schema = self.state.schema.clone();
        summary.in_transaction = self.state.in_transaction();
        self.published_in_tx = summary.in_transaction;
        summary.pin = self.state.pin_reason();
        self.published_pin = summary.pin;
        self.dirty = false;
    }

    fn publish_held(&self, held: bool) {
        lock(&self.info.summary).held = held;
    }

    /// Waits until a command header is buffered. While idle, watches the backend: if
    /// it closes or speaks unasked (a kill, a shutdown), what it said is passed on and
    /// the session ends. `Ok(false)` when the client closed.
    ///
    /// A session idle for [`IDLE_RELEASE`] gives its buffers back: an idle session
    /// costs no buffer memory, a busy one allocates nothing per command.
    async fn wait_for_command(&mut self) -> Result<bool, SessionError> {
        while self.cbuf.len() < 4 {
            // Only armed while there is something to give back.
            let holding = self.cbuf.is_empty() && self.holds_buffers();
            // Only armed once a packet has begun: idle time is not bounded.
            let partial = !self.cbuf.is_empty();
            let deadline = if partial {
                self.packet_deadline()
            } else {
                Instant::now()
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline), if partial => {
                    return Err(self.read_timed_out());
                }
                changed = self.retargets.changed() => {
                    if changed.is_ok() {
                        self.move_idle().await?;
                    }
                }
                // Cancel-safe: when another branch wins, nothing was read.
                more = Self::read_into(&mut self.client, &mut self.cbuf) => {
                    if !more.map_err(SessionError::client_io)? {
                        return Ok(false);
                    }
                }
                () = tokio::time::sleep(IDLE_RELEASE), if holding => {
                    self.release_buffers();
                }
                ready = self.backend.readable() => {
                    ready.map_err(SessionError::backend_io)?;
                    self.bbuf.reserve(4096);
                    match self.backend.try_read_buf(&mut self.bbuf) {
                        Ok(0) => {
                            // The server closed (a kill, a shutdown): close the client
                            // too, as the server would have.
                            return Err(SessionError::backend_io(std::io::ErrorKind::UnexpectedEof.into()));
                        }
                        Ok(_) => {
                            // An unsolicited ERR (e.g. the connection was killed): pass it on.
                            let bytes = self.bbuf.split();
                            let _ = self.client.write_all(&bytes).await;
                            return Err(SessionError::Backend(ProtocolError::Malformed { what: "unsolicited packet from the database" }));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(SessionError::backend_io(e)),
                    }
                }
            }
        }
        Ok(true)
    }

    /// Whether any buffer holds memory worth giving back while idle.
    fn holds_buffers(&self) -> bool {
        self.cbuf.capacity() + self.bbuf.capacity() + self.out.capacity() > 0
    }

    /// Frees the (empty) buffers of an idle session; they are allocated again when the
    /// next command comes.
    fn release_buffers(&mut self) {
        for buf in [&mut self.cbuf, &mut self.bbuf, &mut self.out] {
            if buf.is_empty() {
                *buf = BytesMut::new();
            }
        }
    }

    /// Reads what the client sent into `buf`; `Ok(false)` when it closed. Room is
    /// made only once bytes are ready, so a waiting session holds no buffer.
    /// Cancel-safe: nothing is read unless the future completes.
    pub(crate) async fn read_into(
        stream: &mut TcpStream,
        buf: &mut BytesMut,
    ) -> std::io::Result<bool> {
        loop {
            stream.readable().await?;
            buf.reserve(16 * 1024);
            match stream.try_read_buf(buf) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A command of one chunk, whole in `packet` (header included). `Ok(false)` ends
    /// the session normally.
    async fn command(&mut self, mut packet: BytesMut) -> Result<bool, SessionError> {
        let cmd = packet[4];
        // Statement state is kept by the client's ids: take it before it is mapped.
        let executed = (cmd == COM_STMT_EXECUTE)
            .then(|| statement_id(&packet))
            .flatten();
        let expect = match cmd {
            COM_QUIT => {
                let _ = self.backend.write_all(&packet).await;
                return Ok(false);
            }
            COM_CHANGE_USER => return self.change_user(packet.freeze()).await,
            COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID | COM_REGISTER_SLAVE | COM_TABLE_DUMP
            | COM_CONNECT_OUT => {
                self.reply_to_client(1, &reply::unsupported_command("replication commands"))
                    .await;
                return Ok(true);
            }
            COM_QUERY => {
                let effects = scan(&packet[5..]);
                if effects.kill {
                    if let Some((translated, elsewhere)) = self.translate_kill_statement(&packet) {
                        if let Some(address) = elsewhere {
                            return self.kill_elsewhere(&address, &translated).await;
                        }
                        packet = translated;
                    }
                }
                self.send_to_backend(&packet).await?;
                let outcome = self.relay_response(Expect::ResultSets).await?;
                if !outcome.error {
                    self.apply_effects(&effects, &packet[5..]);
                } else if effects.several {
                    self.apply_effects(&effects.acquisitions(), &packet[5..]);
                } else if effects.sql_prepare {
                    self.state.on_failed_prepare(&packet[5..]);
                    self.dirty = true;
                }
                return Ok(true);
            }
            COM_STMT_PREPARE => {
                self.send_to_backend(&packet).await?;
                let outcome = self.relay_response(Expect::Prepare).await?;
                if let Some((id, params, columns)) = outcome.prepared {
                    // A copy: a slice of the read buffer would keep the whole buffer alive.
                    let sql = Bytes::copy_from_slice(&packet[5..]);
                    let effects = scan(&sql);
                    self.state
                        .on_prepared(id, Prepared::new(sql, params, columns, effects));
                }
                return Ok(true);
            }
            COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA => {
                if let Some(id) = statement_id(&packet) {
                    if cmd == COM_STMT_CLOSE {
                        self.state.close_statement(id);
                    } else {
                        self.state.on_long_data(id);
                    }
                }
                self.map_statement_id(&mut packet);
                if cmd == COM_STMT_CLOSE {
                    if let Some(id) = statement_id(&packet) {
                        self.statement_ids.retain(|_, b| *b != id);
                    }
                }
                self.send_to_backend(&packet).await?;
                return Ok(true);
            }
            COM_PROCESS_KILL => {
                if let Some(address) = self.translate_kill(&mut packet) {
                    return self.kill_elsewhere(&address, &packet).await;
                }
                Expect::Single
            }
            COM_STMT_EXECUTE | COM_STMT_BULK_EXECUTE => {
                if let Some(id) = statement_id(&packet) {
                    self.state.long_data_consumed(id);
                    self.give_types(id, &mut packet);
                }
                self.map_statement_id(&mut packet);
                Expect::ResultSets
            }
            COM_STMT_FETCH => {
                self.map_statement_id(&mut packet);
                Expect::Fetch
            }
            COM_STMT_RESET => {
                if let Some(id) = statement_id(&packet) {
                    self.state.long_data_consumed(id);
                }
                self.map_statement_id(&mut packet);
                Expect::Single
            }
            COM_FIELD_LIST => Expect::FieldList,
            COM_STATISTICS => Expect::Raw,
            COM_INIT_DB | COM_PING | COM_SET_OPTION | COM_RESET_CONNECTION | COM_REFRESH
            | COM_DEBUG | COM_CREATE_DB | COM_DROP_DB | COM_SHUTDOWN => Expect::Single,
            _ => Expect::ResultSets,
        };
        self.send_to_backend(&packet).await?;
        let outcome = self.relay_response(expect).await?;
        if let Some(id) = executed.filter(|_| !outcome.error) {
            self.apply_statement_effects(id);
        }
        if cmd == COM_RESET_CONNECTION && !outcome.error {
            self.state.reset(None);
            self.statement_ids.clear();
            self.dirty = true;
            self.restore_tracking().await?;
        }
        Ok(true)
    }

    /// A command bigger than one chunk (a huge query or long data): streamed to the
    /// backend, then its answer relayed.
    async fn big_command(&mut self) -> Result<bool, SessionError> {
        while self.cbuf.len() < 5 {
            if !self.read_client().await? {
                return Ok(false);
            }
        }
        let cmd = self.cbuf[4];
        let expect = match cmd {
            COM_STMT_SEND_LONG_DATA => None,
            COM_QUERY | COM_STMT_EXECUTE | COM_STMT_BULK_EXECUTE => Some(Expect::ResultSets),
            COM_STMT_PREPARE => Some(Expect::Prepare),
            _ => {
                self.reply_to_client(1, &reply::packet_too_large(MAX_CHUNK))
                    .await;
                return Err(SessionError::Client(ProtocolError::Malformed {
                    what: "oversized command",
                }));
            }
        };
        if cmd != COM_QUERY && cmd != COM_STMT_PREPARE {
            while self.cbuf.len() < 9 {
                if !self.read_client().await? {
                    return Ok(false);
                }
            }
            if !self.big_statement_state(cmd).await? {
                return Ok(false);
            }
        }
        if cmd != COM_QUERY && cmd != COM_STMT_PREPARE && self.map_statements {
            let mut head = [0u8; 9];
            head.copy_from_slice(&self.cbuf[..9]);
            self.map_statement_id(&mut head);
            self.cbuf[..9].copy_from_slice(&head);
        }
        self.forward_big_client_packet().await?;
        if let Some(expect) = expect {
            let outcome = self.relay_response(expect).await?;
            if let Some((id, _, _)) = outcome.prepared {
                // Streamed through, not kept: the statement pins the session.
                self.state.pins.oversized_statements.insert(id);
                self.dirty = true;
            }
        }
        Ok(true)
    }

    /// Statement state for a command over one chunk whose first 9 bytes are
    /// buffered: long data noted or consumed, the types an execution carries
    /// remembered. `Ok(false)` when the client closed.
    ///
    /// Such an execution is streamed as it comes, never rewritten: if it carries no
    /// types while the backend connection lacks them (its first execution after a
    /// move), it goes as sent and the server's ERR 1210 reaches the client; the
    /// statement's next execution under 16 MiB gets the types.
    async fn big_statement_state(&mut self, cmd: u8) -> Result<bool, SessionError> {
        let Some(id) = statement_id(&self.cbuf) else {
            return Ok(true);
        };
        if cmd == COM_STMT_SEND_LONG_DATA {
            self.state.on_long_data(id);
            return Ok(true);
        }
        self.state.long_data_consumed(id);
        let Some(params) = self.state.statement(id).map(|p| p.params) else {
            return Ok(true);
        };
        // The head up to the end of the type block, wherever the layout puts it; all
        // of it is in the first chunk.
        let head = (4 + max_head_len(params)).min(4 + MAX_CHUNK);
        while self.cbuf.len() < head {
            if !self.read_client().await? {
                return Ok(false);
            }
        }
        if self
            .state
            .execute_types(id, self.cbuf.get(4..head).unwrap_or_default())
            .is_some()
        {
            tracing::warn!(
                session = self.id,
                statement = id,
                "execution over 16 MiB sent without parameter types the server lacks"
            );
        }
        Ok(true)
    }

    async fn send_to_backend(&mut self, packet: &[u8]) -> Result<(), SessionError> {
        if let Err(e) = self.backend.write_all(packet).await {
            self.reply_to_client(1, &reply::backend_lost(&e.to_string()))
                .await;
            return Err(SessionError::backend_io(e));
        }
        Ok(())
    }

    /// Prepared statement `id` (the client's id) ran: what its text does (a
    /// `GET_LOCK`, a temporary table…), scanned when it was prepared, takes effect.
    fn apply_statement_effects(&mut self, id: u32) {
        let Some(p) = self.state.statements.get(&id) else {
            return;
        };
        if p.effects != Effects::default() {
            let (effects, sql) = (p.effects, p.sql.clone());
            self.apply_effects(&effects, &sql);
        }
    }

    fn apply_effects(&mut self, effects: &Effects, sql: &[u8]) {
        if *effects != Effects::default() {
            self.state.on_statement(effects, sql);
            self.dirty = true;
            tracing::debug!(session = self.id, state = ?self.state, "session state changed");
        }
    }

    /// Before an execution of statement `id` (the client's) in `packet` (one chunk,
    /// header included): remembers the types it carries, or, when it carries none and
    /// this backend connection never got them (the statement was prepared again after
    /// a move), inserts the remembered ones — else the server answers ERR 1210. Only a
    /// rewritten execution allocates.
    fn give_types(&mut self, id: u32, packet: &mut BytesMut) {
        let Some(types) = self
            .state
            .execute_types(id, packet.get(4..).unwrap_or_default())
        else {
            return;
        };
        let Ok(params) = u16::try_from(types.len() / 2) else {
            return;
        };
        let payload = packet.get(4..).unwrap_or_default();
        // Stays one chunk: a second one would shift the sequence ids of the answer,
        // which is relayed as it is. Such an execution goes as the client sent it.
        if payload.len() + types.len() >= MAX_CHUNK {
            tracing::warn!(
                session = self.id,
                statement = id,
                "execution too large to add its parameter types"
            );
            return;
        }
        let mut rewritten = BytesMut::with_capacity(4 + payload.len() + types.len());
        rewritten.put_uint_le((payload.len() + types.len()) as u64, 3);
        rewritten.put_u8(0);
        if insert_types(payload, params, &types, &mut rewritten).is_some() {
            *packet = rewritten;
            self.state.types_sent(id);
        }
    }

    /// Once the session has moved, the client's statement ids are not the backend's:
    /// rewrite the id after the command byte (MariaDB's -1, "the statement just
    /// prepared", stays as it is).
    pub(crate) fn map_statement_id(&self, packet: &mut [u8]) {
        if !self.map_statements {
            return;
        }
        let Some(id) = statement_id(packet) else {
            return;
        };
        if let Some(backend) = self.statement_ids.get(&id) {
            packet[5..9].copy_from_slice(&backend.to_le_bytes());
        }
    }

    /// Turns session tracking back on after the server reset the session.
    pub(crate) async fn restore_tracking(&mut self) -> Result<(), SessionError> {
        let mut packet = BytesMut::with_capacity(upstream::TRACKING_SQL.len() + 5);
        crate::protocol::codec::write_packet(
            &mut packet,
            0,
            &[&[COM_QUERY][..], upstream::TRACKING_SQL].concat(),
        );
        self.backend
            .write_all(&packet)
            .await
            .map_err(SessionError::backend_io)?;
        // Consume the answer without passing it to the client.
        loop {
            if let Some((len, _)) = chunk_header(&self.bbuf) {
                if self.bbuf.len() >= 4 + len {
                    self.bbuf.advance(4 + len);
                    return Ok(());
                }
            }
            self.read_backend().await?;
        }
    }
}

/// The statement id (or thread id) right after the command byte.
pub(crate) fn statement_id(packet: &[u8]) -> Option<u32> {
    let b = packet.get(5..9)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
