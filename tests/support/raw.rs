//! A raw, blocking MySQL client for tests that compare answers byte for byte.
//!
//! It logs in with exactly the capability flags it is given (no TLS, no compression),
//! sends one command at a time and reads the whole answer with its own small walker,
//! chosen by the caller — who knows what it sent — so it does not lean on the proxy's
//! response state machine. Every command and the wire bytes of its answer are kept in
//! [`Raw::log`], so two connections given the same commands (one to the server, one
//! through the proxy) can be compared with [`assert_same_answers`].
//!
//! Like the rest of the harness it panics with a readable message: a read that times
//! out names the command and shows what had arrived so far.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use switchyard::protocol::auth::{native_token, sha1_password};
use switchyard::protocol::buf::Reader;
use switchyard::protocol::caching_sha2;
use switchyard::protocol::codec::{chunk_header, write_packet};
use switchyard::protocol::constants::*;
use switchyard::protocol::handshake::{AuthSwitchRequest, HandshakeResponse, ServerHandshake};

/// Longest wait for the next bytes of an answer before calling it a hang.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client library typically asks for, minus TLS, compression, session tracking,
/// connect attributes and `CLIENT_MYSQL` (so the MariaDB extended capabilities count).
pub const BASE_CAPS: u32 = CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;

/// The shape of the answer a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// No answer at all (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE).
    Nothing,
    /// Exactly one packet: OK, ERR, EOF, or COM_STATISTICS' string.
    One,
    /// Column definitions up to EOF (or OK with DEPRECATE_EOF), or ERR.
    FieldList,
    /// OK, ERR or result sets, following MORE_RESULTS_EXISTS.
    Results,
    /// Like `Results`, but a column EOF flagged CURSOR_EXISTS ends the answer
    /// (COM_STMT_EXECUTE with a cursor).
    Cursor,
    /// Rows up to EOF (or OK with DEPRECATE_EOF), or ERR (COM_STMT_FETCH).
    Rows,
    /// The prepare answer with its parameter and column definitions, or ERR.
    Prepare,
}

/// One logical packet.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u8,
    pub payload: Vec<u8>,
}

/// A whole answer: its packets and the exact bytes they came in.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub packets: Vec<Packet>,
    pub wire: Vec<u8>,
}

impl Answer {
    /// The last packet's payload (empty for no answer).
    pub fn last(&self) -> &[u8] {
        self.packets.last().map_or(&[][..], |p| &p.payload)
    }

    /// The ERR code when the answer ended in an ERR.
    pub fn err_code(&self) -> Option<u16> {
        let p = self.last();
        (p.first() == Some(&0xFF)).then(|| u16::from_le_bytes([p[1], p[2]]))
    }

    /// MariaDB progress reports (ERR 0xFFFF) in the answer.
    pub fn progress_reports(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| p.payload.starts_with(&[0xFF, 0xFF, 0xFF]))
            .count()
    }

    /// The status flags of the packet that ended the answer (OK or EOF).
    pub fn final_status(&self, deprecate_eof: bool) -> u16 {
        let p = self.last();
        match p.first() {
            Some(0x00) => ok_status(p),
            Some(0xFE) if deprecate_eof && p.len() >= 7 => ok_status(p),
            Some(0xFE) => eof_status(p),
            _ => panic!("the answer does not end in OK or EOF: {}", hex(p)),
        }
    }
}

/// One command and what came back, statement ids replaced by ordinals.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub label: String,
    pub sent: Vec<u8>,
    pub answer: Vec<u8>,
    /// Content that legitimately differs between servers and runs (COM_STATISTICS).
    pub varies: bool,
}

pub struct Raw {
    stream: TcpStream,
    pub addr: String,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub log: Vec<Exchange>,
    /// Statement ids in the order they were prepared. The log shows ordinals (1, 2, …)
    /// in their place: MariaDB's numbering depends on the connection's history (a
    /// connection that follows others on the same server may start above 1).
    statements: Vec<u32>,
    /// What to send when the server asks for a LOCAL INFILE (needs CLIENT_LOCAL_FILES).
    pub local_file: Option<Vec<u8>>,
}

/// The answer to `scramble` for `plugin`: mysql_native_password's token or
/// caching_sha2_password's fast-path scramble (the server must have the account cached).
fn auth_token(plugin: &str, password: &str, scramble: &[u8]) -> Vec<u8> {
    match plugin {
        NATIVE_PASSWORD => native_token(&sha1_password(password.as_bytes()), scramble).to_vec(),
        CACHING_SHA2 => caching_sha2::token(password.as_bytes(), scramble).to_vec(),
        other => panic!("the raw client speaks no {other}"),
    }
}

impl Raw {
    /// Connects to `addr` and logs in as `user` into `test` with mysql_native_password
    /// (caching_sha2_password's fast path when the server names it), asking for exactly
    /// `caps` and `mariadb_caps`.
    pub fn connect(addr: &str, user: &str, password: &str, caps: u32, mariadb_caps: u32) -> Raw {
        let mut raw = Raw::open(addr, caps, mariadb_caps);
        raw.login(user, password);
        raw
    }

    /// Like [`Raw::connect`], but returns the last answer to the login (OK, ERR or
    /// whatever else ended it) and every byte received, instead of asserting success.
    pub fn login_answer(
        addr: &str,
        user: &str,
        password: &str,
        caps: u32,
        mariadb_caps: u32,
    ) -> (Packet, Vec<u8>) {
        let mut raw = Raw::open(addr, caps, mariadb_caps);
        let mut wire = Vec::new();
        let reply = raw.login_reply(user, password, &mut wire);
        (reply, wire)
    }

    fn open(addr: &str, caps: u32, mariadb_caps: u32) -> Raw {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            addr: addr.to_owned(),
            caps,
            mariadb_caps,
            log: Vec::new(),
            statements: Vec::new(),
            local_file: None,
        }
    }

    pub fn deprecate_eof(&self) -> bool {
        self.caps & CLIENT_DEPRECATE_EOF != 0
    }

    fn login(&mut self, user: &str, password: &str) {
        let reply = self.login_reply(user, password, &mut Vec::new());
        assert_eq!(
            reply.payload.first(),
            Some(&0x00),
            "{}: login as {user} failed (caching_sha2_password's full path, 01 04, needs \
             the account cached on the server: log in through the proxy first): {}",
            self.addr,
            String::from_utf8_lossy(&reply.payload)
        );
    }

    /// Greeting, response, auth switch and fast-auth answer: the login's last packet.
    fn login_reply(&mut self, user: &str, password: &str, wire: &mut Vec<u8>) -> Packet {
        let greeting = self.read_packet(wire, "the greeting");
        let hs = ServerHandshake::parse(&greeting.payload)
            .unwrap_or_else(|e| panic!("{}: bad greeting {e}: {}", self.addr, hex(wire)));
        // caching_sha2_password when the greeting names it (MySQL), else native.
        let plugin = if &hs.auth_plugin[..] == CACHING_SHA2.as_bytes() {
            CACHING_SHA2
        } else {
            NATIVE_PASSWORD
        };
        let response = HandshakeResponse {
            capabilities: self.caps,
            max_packet: 1 << 24,
            charset: UTF8MB4_GENERAL_CI,
            mariadb_caps: self.mariadb_caps,
            user: user.as_bytes().to_vec().into(),
            auth_response: auth_token(plugin, password, &hs.scramble).into(),
            database: Some("test".into()),
            auth_plugin: Some(plugin.into()),
            connect_attrs: None,
            zstd_level: None,
        };
        let mut payload = BytesMut::new();
        response.encode(&mut payload);
        self.write(1, &payload);
        let mut reply = self.read_packet(wire, "the login answer");
        if reply.payload.first() == Some(&0xFE) {
            let switch = AuthSwitchRequest::parse(&reply.payload)
                .unwrap_or_else(|e| panic!("bad auth switch {e}: {}", hex(&reply.payload)));
            let plugin = std::str::from_utf8(&switch.plugin).unwrap_or("?");
            let token = auth_token(plugin, password, &switch.data);
            self.write(reply.seq.wrapping_add(1), &token);
            reply = self.read_packet(wire, "the login answer");
        }
        if reply.payload == caching_sha2::FAST_AUTH_OK_PAYLOAD {
            reply = self.read_packet(wire, "the login answer");
        }
        reply
    }

    fn write(&mut self, seq: u8, payload: &[u8]) {
        let mut out = BytesMut::new();
        write_packet(&mut out, seq, payload);
        self.stream
            .write_all(&out)
            .unwrap_or_else(|e| panic!("{}: write: {e}", self.addr));
    }

    /// Reads one logical packet, appending its chunks' bytes to `wire`.
    fn read_packet(&mut self, wire: &mut Vec<u8>, what: &str) -> Packet {
        let mut payload = Vec::new();
        let mut first_seq = None;
        loop {
            let mut head = [0u8; 4];
            self.read_exact(&mut head, wire, what);
            wire.extend_from_slice(&head);
            let (len, seq) = chunk_header(&head).expect("4 header bytes");
            first_seq.get_or_insert(seq);
            let start = payload.len();
            payload.resize(start + len, 0);
            self.read_exact(&mut payload[start..], wire, what);
            wire.extend_from_slice(&payload[start..]);
            if len < MAX_CHUNK {
                return Packet {
                    seq: first_seq.unwrap_or(seq),
                    payload,
                };
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8], wire: &[u8], what: &str) {
        if let Err(e) = self.stream.read_exact(buf) {
            panic!(
                "{}: no complete answer to {what} ({e}); received so far ({} bytes): {}",
                self.addr,
                wire.len(),
                hex(wire)
            );
        }
    }

    /// Sends `payload` as a new command and reads its answer, walked as `reply`.
    /// The exchange is logged under `label`.
    pub fn command(&mut self, label: &str, payload: &[u8], reply: Reply) -> Answer {
        self.write(0, payload);
        let mut walk = Walk {
            raw: self,
            answer: Answer::default(),
            label,
        };
        walk.run(reply);
        let answer = walk.answer;
        let mut sent = payload.to_vec();
        let mut wire = answer.wire.clone();
        match (payload[0], answer.packets.first()) {
            (COM_STMT_PREPARE, Some(p)) if p.payload.first() == Some(&0x00) => {
                let id =
                    u32::from_le_bytes([p.payload[1], p.payload[2], p.payload[3], p.payload[4]]);
                self.statements.push(id);
                wire[5..9].copy_from_slice(&(self.statements.len() as u32).to_le_bytes());
            }
            (
                COM_STMT_EXECUTE
                | COM_STMT_SEND_LONG_DATA
                | COM_STMT_CLOSE
                | COM_STMT_RESET
                | COM_STMT_FETCH
                | COM_STMT_BULK_EXECUTE,
                _,
            ) if sent.len() >= 5 => {
                let id = u32::from_le_bytes([sent[1], sent[2], sent[3], sent[4]]);
                if let Some(i) = self.statements.iter().position(|s| *s == id) {
                    sent[1..5].copy_from_slice(&(i as u32 + 1).to_le_bytes());
                }
            }
            _ => {}
        }
        self.log.push(Exchange {
            label: label.to_owned(),
            sent,
            answer: wire,
            varies: false,
        });
        answer
    }

    /// COM_QUERY.
    pub fn query(&mut self, sql: &str) -> Answer {
        let payload = [&[COM_QUERY][..], sql.as_bytes()].concat();
        self.command(&format!("query {sql:?}"), &payload, Reply::Results)
    }

    /// COM_QUERY that must not fail.
    pub fn query_ok(&mut self, sql: &str) -> Answer {
        let answer = self.query(sql);
        assert_eq!(
            answer.err_code(),
            None,
            "{}: {sql}: {}",
            self.addr,
            String::from_utf8_lossy(answer.last())
        );
        answer
    }

    /// COM_STMT_PREPARE; the statement id.
    pub fn prepare(&mut self, sql: &str) -> u32 {
        let payload = [&[COM_STMT_PREPARE][..], sql.as_bytes()].concat();
        let answer = self.command(&format!("prepare {sql:?}"), &payload, Reply::Prepare);
        let p = &answer.packets[0].payload;
        assert_eq!(p[0], 0x00, "prepare {sql}: {}", String::from_utf8_lossy(p));
        u32::from_le_bytes([p[1], p[2], p[3], p[4]])
    }

    /// `SELECT 1` answers one row with `1`: the connection is in step with the server.
    pub fn assert_in_step(&mut self) {
        let answer = self.query("SELECT 1");
        let row = &answer.packets[answer.packets.len() - 2].payload;
        assert_eq!(
            row,
            &[1, b'1'],
            "{}: SELECT 1 answered {}",
            self.addr,
            hex(&answer.wire)
        );
    }
}

/// The walk through one answer.
struct Walk<'a> {
    raw: &'a mut Raw,
    answer: Answer,
    label: &'a str,
}

impl Walk<'_> {
    fn next(&mut self) -> Vec<u8> {
        let what = format!(
            "{} (after {} packets)",
            self.label,
            self.answer.packets.len()
        );
        let packet = self.raw.read_packet(&mut self.answer.wire, &what);
        let payload = packet.payload.clone();
        self.answer.packets.push(packet);
        payload
    }

    /// An ERR that is a progress report (only with MARIADB_CLIENT_PROGRESS).
    fn is_progress(&self, p: &[u8]) -> bool {
        self.raw.mariadb_caps & MARIADB_CLIENT_PROGRESS != 0 && p.starts_with(&[0xFF, 0xFF, 0xFF])
    }

    /// EOF, or OK-as-EOF under DEPRECATE_EOF; a row may also start with 0xFE.
    fn terminator_status(&self, p: &[u8]) -> Option<u16> {
        if p.first() != Some(&0xFE) || p.len() >= MAX_CHUNK {
            return None;
        }
        if self.raw.deprecate_eof() {
            Some(if p.len() >= 7 {
                ok_status(p)
            } else {
                eof_status(p)
            })
        } else {
            (p.len() < 9).then(|| eof_status(p))
        }
    }

    /// Answers a LOCAL INFILE request with [`Raw::local_file`] in one packet, then the
    /// empty packet that ends the file; the server's verdict follows.
    fn send_local_file(&mut self) {
        let seq = self
            .answer
            .packets
            .last()
            .map_or(0, |p| p.seq)
            .wrapping_add(1);
        let Some(file) = self.raw.local_file.clone() else {
            panic!(
                "{}: LOCAL INFILE request without a file to send",
                self.label
            );
        };
        self.raw.write(seq, &file);
        self.raw.write(seq.wrapping_add(1), &[]);
    }

    fn definitions(&mut self, n: u64) {
        for _ in 0..n {
            self.next();
        }
        if n > 0 && !self.raw.deprecate_eof() {
            let eof = self.next();
            assert!(
                eof.first() == Some(&0xFE) && eof.len() < 9,
                "{}: not an EOF after definitions: {}",
                self.label,
                hex(&eof)
            );
        }
    }

    /// Rows (or field-list definitions) up to the terminator: its status, or `None`
    /// after an ERR.
    fn rows(&mut self) -> Option<u16> {
        loop {
            let p = self.next();
            if p.first() == Some(&0xFF) {
                if self.is_progress(&p) {
                    continue;
                }
                return None;
            }
            if let Some(status) = self.terminator_status(&p) {
                return Some(status);
            }
        }
    }

    fn run(&mut self, reply: Reply) {
        match reply {
            Reply::Nothing => {}
            Reply::One => {
                self.next();
            }
            Reply::FieldList | Reply::Rows => {
                self.rows();
            }
            Reply::Prepare => {
                let p = self.next();
                if p.first() == Some(&0x00) {
                    let columns = u16::from_le_bytes([p[5], p[6]]);
                    let params = u16::from_le_bytes([p[7], p[8]]);
                    self.definitions(params.into());
                    self.definitions(columns.into());
                }
            }
            Reply::Results | Reply::Cursor => self.results(reply == Reply::Cursor),
        }
    }

    fn results(&mut self, cursor: bool) {
        loop {
            let p = self.next();
            let status = match p.first() {
                Some(0x00) => ok_status(&p),
                Some(0xFF) if self.is_progress(&p) => continue,
                Some(0xFF) => return,
                Some(0xFB) => {
                    self.send_local_file();
                    continue;
                }
                _ => {
                    let count = Reader::new(&p).lenenc_int().expect("column count");
                    for _ in 0..count {
                        self.next();
                    }
                    if !self.raw.deprecate_eof() {
                        let eof = self.next();
                        let status = eof_status(&eof);
                        if cursor && status & SERVER_STATUS_CURSOR_EXISTS != 0 {
                            return;
                        }
                    }
                    match self.rows() {
                        Some(status) => status,
                        None => return,
                    }
                }
            };
            if status & SERVER_MORE_RESULTS_EXISTS == 0 {
                return;
            }
        }
    }
}

/// Status flags of an OK packet.
pub fn ok_status(p: &[u8]) -> u16 {
    let mut r = Reader::new(p);
    r.u8().expect("OK header");
    r.lenenc_int().expect("affected rows");
    r.lenenc_int().expect("insert id");
    r.u16().expect("OK status")
}

/// Status flags of an EOF packet.
pub fn eof_status(p: &[u8]) -> u16 {
    assert!(p.len() >= 5, "short EOF {}", hex(p));
    u16::from_le_bytes([p[3], p[4]])
}

/// Hex of at most 160 bytes, with the total length.
pub fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(160).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 160 { " …" } else { "" };
    format!("[{} bytes] {}{more}", bytes.len(), shown.join(" "))
}

/// Hex around the first difference of two byte strings.
fn hex_from(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(16);
    format!(
        "from offset {start}: {}",
        hex(&bytes[start.min(bytes.len())..])
    )
}

/// The same commands got the same answers on `direct` and `proxied` (logs of two
/// connections given the same commands), except for exchanges marked `varies`.
pub fn assert_same_answers(direct: &[Exchange], proxied: &[Exchange]) {
    for (i, (d, p)) in direct.iter().zip(proxied).enumerate() {
        assert_eq!(
            d.sent, p.sent,
            "step {i}: the two runs sent different commands"
        );
        if d.varies || d.answer == p.answer {
            continue;
        }
        let at = d
            .answer
            .iter()
            .zip(&p.answer)
            .position(|(a, b)| a != b)
            .unwrap_or(d.answer.len().min(p.answer.len()));
        panic!(
            "step {i} ({}): the answer through the proxy differs from the server's at byte {at}\n\
             sent:   {}\n\
             direct: {}\n\
             proxy:  {}\n\
             direct {}\n\
             proxy  {}",
            d.label,
            hex(&d.sent),
            hex(&d.answer),
            hex(&p.answer),
            hex_from(&d.answer, at),
            hex_from(&p.answer, at),
        );
    }
    assert_eq!(
        direct.len(),
        proxied.len(),
        "the two runs logged different numbers of commands"
    );
}
