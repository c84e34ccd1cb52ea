//! One client session: the connection phase on both sides, then the command loop —
//! read a command, look at its first bytes, forward it, relay the answer — until the
//! client quits or either side goes away.
//!
//! `Session::command` is one command from read to answer: the statement-id mapping
//! and parameter types applied, the packet sent, the answer relayed ([`Relay`]), and
//! what the command did noted in the session state and published.
//!
//! Invariant: between commands both read buffers start at a packet boundary and the
//! server connection is idle, so the session could be moved to another server.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::protocol::codec::chunk_header;
use crate::protocol::constants::*;
use crate::protocol::packets::{insert_types, max_head_len, ok_payload};
use crate::protocol::proxy_header::ProxyAddrs;
use crate::protocol::ProtocolError;
use crate::proxy::client::{self, Authenticated};
use crate::proxy::conn::{ClientConn, ServerConn};
use crate::proxy::errors::{reply, SessionError};
use crate::proxy::io::{PacketStream, HANDSHAKE_MAX_PACKET};
use crate::proxy::leg::ClientLeg;
use crate::proxy::metrics;
use crate::proxy::registry::Published;
use crate::proxy::relay::{Outcome, Relay};
use crate::proxy::response::Expect;
use crate::proxy::scan::{may_kill, scan, Effects};
use crate::proxy::state::{Prepared, SessionState};
use crate::proxy::statement_ids::StatementIds;
use crate::proxy::stream::ServerStream;
use crate::proxy::upstream::{self, ConnectError, Login};
use crate::proxy::woken::Woken;
use crate::proxy::Proxy;
use crate::telemetry;

/// How long a session waits for its next command before it frees its buffers.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// Resolves when the target changes, giving back the receiver to watch on. Kept from
/// one wait to the next: a `changed()` built per wait would register with the channel
/// and unregister again (a lock each, on a channel every session shares) per command;
/// and polled only when the channel woke it ([`Woken`]), since even a kept one takes
/// that lock at each poll.
type Retarget = Woken<(bool, watch::Receiver<u64>)>;

async fn next_retarget(mut retargets: watch::Receiver<u64>) -> (bool, watch::Receiver<u64>) {
    let changed = retargets.changed().await.is_ok();
    (changed, retargets)
}

pub struct Session {
    pub(super) id: u32,
    pub(super) shared: Arc<Proxy>,
    pub(super) client: ClientConn<ClientLeg>,
    pub(super) server: ServerConn<ServerStream>,
    pub(super) state: SessionState,
    pub(super) ids: StatementIds,
    /// What the admin and the switchover see of the session.
    pub(super) published: Published,
    pub(super) login: Login,
    /// The scramble of the proxy's greeting, used to check COM_CHANGE_USER.
    pub(super) client_scramble: [u8; 20],
    /// At a transaction boundary: not counted as busy by the gate.
    pub(super) at_boundary: bool,
    /// Wakes an idle session when the target changes, so it moves at once.
    retarget: Retarget,
    /// The one timer of the wait between commands, reset rather than built anew for
    /// each command (see [`Session::wait_for_command`]).
    timer: Pin<Box<Sleep>>,
    /// What `timer` is armed for.
    timer_use: TimerUse,
    /// A command ran since the idle-release deadline was set.
    active: bool,
}

/// What the session's timer is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerUse {
    Nothing,
    /// The packet that has begun must be whole by then (`net_read_timeout`).
    Packet,
    /// Buffers are given back if no command came since it was set.
    Release,
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
                let seq = session.client.next_seq();
                session.client.reply(seq, &reply::read_timeout()).await;
                session.client.shutdown().await;
            }
            result
        }
        Err(e) => {
            metrics::refused(metrics::refusal_reason(&e));
            Err(e)
        }
    };
    match result {
        Ok(()) => tracing::debug!(session = id, %peer, "session closed"),
        Err(SessionError::AccessDenied | SessionError::HostBlocked) => {}
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
    let local = stream.local_addr().ok();
    let io = PacketStream::new(stream, HANDSHAKE_MAX_PACKET);
    let timeout = config.proxy.handshake_timeout.0;
    let (
        mut io,
        Authenticated {
            mut login,
            scramble,
            compression,
        },
    ) = match tokio::time::timeout(timeout, client::handshake(io, id, &shared, peer)).await {
        Ok(r) => r?,
        Err(_) => return Err(SessionError::HandshakeTimeout),
    };
    login.client_addrs = local.map(|destination| ProxyAddrs {
        source: peer,
        destination,
    });
    let target = shared.topology.target.load_full();
    let address = target.address.clone();
    if let Some(why) = shared.topology.refusal.load().as_ref() {
        io.write(&reply::refused(why)).await.ok();
        return Err(SessionError::Refused(why.clone()));
    }
    let conn = match shared
        .connect_session(
            target.side,
            &address,
            &login,
            config.proxy.connect_timeout.0,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let payload = connect_error_reply(&address, &e);
            io.write(&payload).await.ok();
            return Err(e.into());
        }
    };
    shared.server_info.store(Arc::new(conn.server.clone()));
    let server = ServerConn::from_upstream(conn, target.epoch);
    io.write(&ok_payload(SERVER_STATUS_AUTOCOMMIT, login.caps))
        .await
        .map_err(SessionError::client_io)?;
    // Compression, if chosen, starts after the final OK, as on a server.
    let (client, cbuf) = io.into_parts();
    let tls = client.is_tls();
    let (client, cbuf) = ClientLeg::new(client, compression, cbuf);
    let client = ClientConn::new(
        client,
        cbuf,
        login.caps & CLIENT_SESSION_TRACK == 0,
        config.proxy.max_packet_size.0 as usize,
        config.proxy.net_read_timeout.0,
    );
    let thread_id = server.thread_id();
    let info = shared
        .sessions
        .insert(id, login.clone(), peer, tls, thread_id, address.clone());
    let schema = login
        .database
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    tracing::debug!(session = id, %peer, user = info.user(), backend_thread = thread_id, "session open");
    let mut retargets = shared.topology.retargets.subscribe();
    retargets.mark_unchanged();
    Ok(Session {
        id,
        state: SessionState::new(schema, login.charset),
        shared,
        published: Published::new(info),
        client,
        server,
        ids: StatementIds::default(),
        login,
        client_scramble: scramble,
        at_boundary: true,
        retarget: Woken::new(next_retarget(retargets)),
        timer: Box::pin(tokio::time::sleep(IDLE_RELEASE)),
        timer_use: TimerUse::Nothing,
        active: false,
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
    /// The parts of the session one command's traffic touches.
    fn relay(&mut self) -> Relay<'_, ClientLeg, ServerStream> {
        Relay {
            client: &mut self.client,
            server: &mut self.server,
            state: &mut self.state,
            ids: &mut self.ids,
        }
    }

    /// Relays the server's answer to the client.
    async fn answer(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        let outcome = self.relay().answer(expect).await?;
        self.noted(&outcome);
        Ok(outcome)
    }

    /// Reads the server's answer to a command of the proxy's own; the client sees
    /// none of it.
    pub(super) async fn swallow(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        let outcome = self.relay().swallow(expect).await?;
        self.noted(&outcome);
        Ok(outcome)
    }

    fn noted(&mut self, outcome: &Outcome) {
        if outcome.state_changed {
            self.published.mark_stale();
            tracing::debug!(session = self.id, state = ?self.state, "session state changed");
        }
    }

    async fn command_loop(&mut self) -> Result<(), SessionError> {
        loop {
            if !self.wait_for_command().await? {
                return Ok(());
            }
            let Some((len, seq)) = chunk_header(&self.client.buf) else {
                continue;
            };
            // The command's latency runs from here to its answer's last byte, the
            // wait at a closed gate included: what the application sees.
            let arrived = std::time::Instant::now();
            let max = self.client.max_packet();
            if seq != 0 {
                self.client
                    .reply(seq.wrapping_add(1), &reply::out_of_order())
                    .await;
                return Err(SessionError::Client(ProtocolError::OutOfOrder {
                    expected: 0,
                    got: seq,
                }));
            }
            if len > max {
                self.client.reply(1, &reply::packet_too_large(max)).await;
                return Err(SessionError::Client(ProtocolError::TooLarge {
                    size: len,
                    max,
                }));
            }
            if len == 0 {
                self.client
                    .reply(1, &reply::malformed("empty command packet"))
                    .await;
                return Err(SessionError::Client(ProtocolError::Malformed {
                    what: "empty command",
                }));
            }
            if len == MAX_CHUNK {
                self.enter_gate().await?;
                let cmd = self.client.buf.get(4).copied().unwrap_or_default();
                let more = self.big_command().await?;
                self.after_command();
                telemetry::hot::command(metrics::command_kind(cmd), arrived.elapsed());
                if !more {
                    return Ok(());
                }
                continue;
            }
            while self.client.buf.len() < 4 + len {
                if !self.client.read_more().await? {
                    return Ok(());
                }
            }
            self.client.packet_done();
            let packet = self.client.buf.split_to(4 + len);
            let cmd = packet[4];
            if cmd != COM_QUIT {
                self.enter_gate().await?;
            }
            let more = self.command(packet).await?;
            self.after_command();
            telemetry::hot::command(metrics::command_kind(cmd), arrived.elapsed());
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
        let closed = self.shared.gate.is_closed();
        if closed {
            self.published.held(true);
        }
        let held = self.shared.gate.enter().await;
        self.at_boundary = false;
        if !held.is_zero() {
            metrics::held(held);
        }
        if closed {
            self.published.held(false);
            tracing::debug!(session = self.id, ?held, "released from the gate");
        }
        if self.server.epoch() != self.shared.topology.target.load().epoch {
            self.migrate().await?;
        }
        Ok(())
    }

    /// After a command: back at a boundary unless a transaction is open; publish the
    /// summary if it changed.
    fn after_command(&mut self) {
        // Long data sent for a statement lives only on this server until the statement
        // is executed or reset, so the session stays between boundaries until then, as
        // inside a transaction. Simpler and safer than replaying it on the new server:
        // that would mean keeping every chunk (up to max_packet_size each) until the
        // execution, while clients send the execution right after the data.
        if !self.at_boundary && !self.state.in_transaction() && !self.state.holds_long_data() {
            self.shared.gate.leave();
            self.at_boundary = true;
        }
        self.published.update(&self.state);
        self.active = true;
    }

    /// Waits until a command header is buffered. While idle, watches the backend: if
    /// it closes or speaks unasked (a kill, a shutdown), what it said is passed on and
    /// the session ends. `Ok(false)` when the client closed.
    ///
    /// One timer serves two ends, which never overlap: while a packet has begun it
    /// bounds the packet (`net_read_timeout`); while the session waits with nothing
    /// buffered it gives the buffers back once a whole [`IDLE_RELEASE`] passed without
    /// a command, so an idle session costs no buffer memory and a busy one allocates
    /// nothing per command. It is reset, never built anew, and not per command: the
    /// release deadline is set once, and when it passes after commands ran it is set
    /// again — a busy session touches the clock and the timer once a second, and an
    /// idle one gives its buffers back one to two seconds after its last command.
    async fn wait_for_command(&mut self) -> Result<bool, SessionError> {
        while self.client.buf.len() < 4 {
            // Only armed once a packet has begun: idle time is not bounded.
            let partial = !self.client.buf.is_empty();
            // Only armed while there is something to give back.
            let holding = !partial && self.holds_buffers();
            if partial {
                let deadline = self.client.packet_deadline();
                self.timer.as_mut().reset(deadline);
                self.timer_use = TimerUse::Packet;
            } else if holding && self.timer_use != TimerUse::Release {
                self.arm_release();
            }
            tokio::select! {
                () = self.timer.as_mut(), if partial || holding => {
                    if partial {
                        return Err(self.client.read_timed_out());
                    }
                    if self.active {
                        self.arm_release();
                    } else {
                        self.release_buffers();
                        self.timer_use = TimerUse::Nothing;
                    }
                }
                (changed, retargets) = &mut self.retarget => {
                    if changed {
                        self.retarget.set(next_retarget(retargets));
                        self.move_idle().await?;
                    } else {
                        // The proxy is shutting down: no more retargets to wait for.
                        self.retarget.set(async move {
                            std::future::pending::<()>().await;
                            (false, retargets)
                        });
                    }
                }
                // Cancel-safe: when another branch wins, nothing was read.
                more = self.client.read_idle() => {
                    if !more.map_err(SessionError::client_io)? {
                        return Ok(false);
                    }
                }
                ready = self.server.readable() => {
                    ready.map_err(SessionError::backend_io)?;
                    self.unasked_server_bytes().await?;
                }
            }
        }
        Ok(true)
    }

    /// The server is readable while no command runs: it closed (a kill, a shutdown)
    /// or sent an unsolicited ERR. Either ends the session; an ERR is passed on.
    async fn unasked_server_bytes(&mut self) -> Result<(), SessionError> {
        match self.server.try_read().map_err(SessionError::backend_io)? {
            None => Ok(()),
            // The server closed: close the client too, as the server would have.
            Some(0) => Err(SessionError::backend_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
            Some(_) => {
                let bytes = self.server.buf.split();
                let _ = self.client.write(&bytes).await;
                Err(SessionError::Backend(ProtocolError::Malformed {
                    what: "unsolicited packet from the database",
                }))
            }
        }
    }

    /// Sets the idle-release deadline a whole [`IDLE_RELEASE`] from now.
    fn arm_release(&mut self) {
        self.timer.as_mut().reset(Instant::now() + IDLE_RELEASE);
        self.timer_use = TimerUse::Release;
        self.active = false;
    }

    /// Whether any buffer holds memory worth giving back while idle.
    fn holds_buffers(&self) -> bool {
        self.client.holds_buffers()
            || self.client.stream_holds_buffers()
            || self.server.holds_buffers()
    }

    /// Frees the (empty) buffers of an idle session; they are allocated again when the
    /// next command comes.
    fn release_buffers(&mut self) {
        self.client.release_buffers();
        self.client.release_stream_buffers();
        self.server.release_buffers();
    }

    /// A command of one chunk, whole in `packet` (header included): sent, its answer
    /// relayed, what it did to the session noted. `Ok(false)` ends the session
    /// normally.
    async fn command(&mut self, mut packet: BytesMut) -> Result<bool, SessionError> {
        let cmd = packet[4];
        // Statement state is kept by the client's ids: take it before it is mapped.
        let executed = (cmd == COM_STMT_EXECUTE)
            .then(|| statement_id(&packet))
            .flatten();
        let expect = match cmd {
            COM_QUIT => {
                let _ = self.server.write(&packet).await;
                return Ok(false);
            }
            COM_CHANGE_USER => return self.change_user(packet.freeze()).await,
            COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID | COM_REGISTER_SLAVE | COM_TABLE_DUMP
            | COM_CONNECT_OUT => {
                self.client
                    .reply(1, &reply::unsupported_command("replication commands"))
                    .await;
                return Ok(true);
            }
            COM_QUERY => return self.query(packet).await,
            COM_STMT_PREPARE => {
                self.send(&packet).await?;
                let outcome = self.answer(Expect::Prepare).await?;
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
                if cmd == COM_STMT_CLOSE {
                    self.ids.close(&mut packet);
                } else {
                    self.ids.to_server(&mut packet);
                }
                self.send(&packet).await?;
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
                self.ids.to_server(&mut packet);
                Expect::ResultSets
            }
            COM_STMT_FETCH => {
                self.ids.to_server(&mut packet);
                Expect::Fetch
            }
            COM_STMT_RESET => {
                if let Some(id) = statement_id(&packet) {
                    self.state.long_data_consumed(id);
                }
                self.ids.to_server(&mut packet);
                Expect::Single
            }
            COM_FIELD_LIST => Expect::FieldList,
            COM_STATISTICS => Expect::Raw,
            COM_INIT_DB | COM_PING | COM_SET_OPTION | COM_RESET_CONNECTION | COM_REFRESH
            | COM_DEBUG | COM_CREATE_DB | COM_DROP_DB | COM_SHUTDOWN => Expect::Single,
            _ => Expect::ResultSets,
        };
        self.send(&packet).await?;
        let outcome = self.answer(expect).await?;
        if let Some(id) = executed.filter(|_| !outcome.error) {
            self.apply_statement_effects(id);
        }
        if cmd == COM_RESET_CONNECTION && !outcome.error {
            self.state.reset(None);
            self.ids.clear();
            self.published.mark_stale();
            self.restore_tracking().await?;
        }
        Ok(true)
    }

    /// COM_QUERY: a KILL naming a proxy session is translated first; the statement
    /// goes to the server, and the scan of its text runs while the server works. What
    /// the scan found takes effect once the answer says whether the statement ran —
    /// before the next command in any case.
    async fn query(&mut self, mut packet: BytesMut) -> Result<bool, SessionError> {
        let mut effects = None;
        if may_kill(&packet[5..]) {
            let scanned = scan(&packet[5..]);
            if scanned.kill {
                if let Some((translated, elsewhere)) = self.translate_kill_statement(&packet) {
                    if let Some(address) = elsewhere {
                        return self.kill_elsewhere(&address, &translated).await;
                    }
                    packet = translated;
                }
            }
            effects = Some(scanned);
        }
        self.send(&packet).await?;
        let effects = effects.unwrap_or_else(|| scan(&packet[5..]));
        let outcome = self.answer(Expect::ResultSets).await?;
        if !outcome.error {
            self.apply_effects(&effects, &packet[5..]);
        } else if effects.several {
            self.apply_effects(&effects.acquisitions(), &packet[5..]);
        } else if effects.sql_prepare {
            self.state.on_failed_prepare(&packet[5..]);
            self.published.mark_stale();
        }
        Ok(true)
    }

    /// A command bigger than one chunk (a huge query or long data): streamed to the
    /// backend, then its answer relayed.
    async fn big_command(&mut self) -> Result<bool, SessionError> {
        while self.client.buf.len() < 5 {
            if !self.client.read_more().await? {
                return Ok(false);
            }
        }
        let cmd = self.client.buf[4];
        let expect = match cmd {
            COM_STMT_SEND_LONG_DATA => None,
            COM_QUERY | COM_STMT_EXECUTE | COM_STMT_BULK_EXECUTE => Some(Expect::ResultSets),
            COM_STMT_PREPARE => Some(Expect::Prepare),
            _ => {
                self.client
                    .reply(1, &reply::packet_too_large(MAX_CHUNK))
                    .await;
                return Err(SessionError::Client(ProtocolError::Malformed {
                    what: "oversized command",
                }));
            }
        };
        if cmd != COM_QUERY && cmd != COM_STMT_PREPARE {
            while self.client.buf.len() < 9 {
                if !self.client.read_more().await? {
                    return Ok(false);
                }
            }
            if !self.big_statement_state(cmd).await? {
                return Ok(false);
            }
            if self.ids.is_mapping() {
                let mut head = [0u8; 9];
                head.copy_from_slice(&self.client.buf[..9]);
                self.ids.to_server(&mut head);
                self.client.buf[..9].copy_from_slice(&head);
            }
        }
        self.relay().forward_big_client_packet().await?;
        if let Some(expect) = expect {
            let outcome = self.answer(expect).await?;
            if let Some((id, _, _)) = outcome.prepared {
                // Streamed through, not kept: the statement pins the session.
                self.state.pins.oversized_statements.insert(id);
                self.published.mark_stale();
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
        let Some(id) = statement_id(&self.client.buf) else {
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
        while self.client.buf.len() < head {
            if !self.client.read_more().await? {
                return Ok(false);
            }
        }
        if self
            .state
            .execute_types(id, self.client.buf.get(4..head).unwrap_or_default())
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

    /// Sends a command to the server; if that fails, the client is told why.
    async fn send(&mut self, packet: &[u8]) -> Result<(), SessionError> {
        if let Err(e) = self.server.write(packet).await {
            self.client
                .reply(1, &reply::backend_lost(&e.to_string()))
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
            self.published.mark_stale();
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

    /// Turns session tracking back on after the server reset the session.
    pub(super) async fn restore_tracking(&mut self) -> Result<(), SessionError> {
        let mut packet = BytesMut::with_capacity(upstream::TRACKING_SQL.len() + 5);
        crate::protocol::codec::write_packet(
            &mut packet,
            0,
            &[&[COM_QUERY][..], upstream::TRACKING_SQL].concat(),
        );
        self.server
            .write(&packet)
            .await
            .map_err(SessionError::backend_io)?;
        // Consume the answer without passing it to the client.
        loop {
            if let Some((len, _)) = chunk_header(&self.server.buf) {
                if self.server.buf.len() >= 4 + len {
                    self.server.buf.advance(4 + len);
                    return Ok(());
                }
            }
            self.server.read_more().await?;
        }
    }
}

/// The statement id (or thread id) right after the command byte.
pub(crate) fn statement_id(packet: &[u8]) -> Option<u32> {
    let b = packet.get(5..9)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
