//! The response state machine: which packets of a server's answer to one command are
//! still to come, decided from packet headers and first bytes only.
//!
//! The relay asks [`Response::needs_whole`] for each logical packet's first byte and
//! length: rows and column definitions stream through uninspected; only packets that
//! can end a result (OK, ERR, EOF) or change the shape of what follows (column count,
//! LOCAL INFILE request, prepare answer) are looked at whole with [`Response::on_packet`].
//! Invariant: `Done` is reached exactly at the packet that ends the server's answer.

use crate::protocol::buf::Reader;
use crate::protocol::constants::*;

/// What kind of answer a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR, LOCAL INFILE request or (several) result sets: COM_QUERY,
    /// COM_STMT_EXECUTE, COM_STMT_BULK_EXECUTE and unknown commands.
    ResultSets,
    /// COM_STMT_PREPARE: prepare-OK, parameter and column definitions; or ERR.
    Prepare,
    /// COM_FIELD_LIST: column definitions up to EOF; or ERR.
    FieldList,
    /// COM_STMT_FETCH: binary rows up to EOF; or ERR.
    Fetch,
    /// Exactly one packet, OK / ERR / EOF (PING, INIT_DB, SET_OPTION, …).
    Single,
    /// Exactly one packet of any content (COM_STATISTICS' plain string).
    Raw,
}

/// Where in the answer the relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    First,
    Columns { left: u64 },
    ColumnsEof,
    Rows,
    PrepareParams { left: u16, cols: u16 },
    PrepareParamsEof { cols: u16 },
    PrepareColumns { left: u16 },
    PrepareColumnsEof,
    FieldList,
    Done,
}

/// What a whole packet meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing the session needs to know; more packets follow.
    More,
    /// An OK packet (final or between results) with these status flags: the session
    /// parses it for state when the flags say session state changed.
    Ok { status: u16 },
    /// An EOF packet with these status flags.
    Eof { status: u16 },
    /// An ERR packet: it always ends the answer (an ERR never says more results
    /// follow), whether it came first or in the middle of a result set.
    Err,
    /// MariaDB progress report (ERR 0xFFFF): not an end.
    Progress,
    /// LOCAL INFILE request: the client now sends file packets.
    LocalInfile,
    /// The prepare answer with the statement id and counts.
    Prepared { id: u32, params: u16, columns: u16 },
}

/// Packet error during walking: the server sent something the protocol forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed server response: {0}")]
pub struct ResponseError(pub &'static str);

#[derive(Debug, Clone)]
pub struct Response {
    expect: Expect,
    pub phase: Phase,
    deprecate_eof: bool,
    progress: bool,
}

impl Response {
    /// `caps` are the capabilities of the backend connection; `mariadb_caps` its
    /// MariaDB extended capabilities.
    pub fn new(expect: Expect, caps: u32, mariadb_caps: u32) -> Response {
        let phase = match expect {
            Expect::Fetch => Phase::Rows,
            Expect::FieldList => Phase::FieldList,
            _ => Phase::First,
        };
        Response {
            expect,
            phase,
            deprecate_eof: caps & CLIENT_DEPRECATE_EOF != 0,
            progress: mariadb_caps & MARIADB_CLIENT_PROGRESS != 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// After LOCAL INFILE data has been sent, the server answers OK or ERR (and may go
    /// on with more results).
    pub fn after_local_infile(&mut self) {
        self.phase = Phase::First;
    }

    fn is_terminator(&self, first: u8, len: usize) -> bool {
        first == 0xFE && len < MAX_CHUNK && (self.deprecate_eof || len < 9)
    }

    /// Whether the logical packet starting with `first` (its first payload byte, `None`
    /// for an empty payload) and whose first chunk is `len` bytes must be inspected
    /// whole. When false, the caller streams it and calls [`Response::on_streamed`].
    pub fn needs_whole(&self, first: Option<u8>, len: usize) -> bool {
        let Some(first) = first else { return true };
        if len >= MAX_CHUNK {
            // Only rows (and long data) span chunks; nothing inspected ever does.
            return false;
        }
        match self.phase {
            Phase::Columns { .. } | Phase::PrepareParams { .. } | Phase::PrepareColumns { .. } => {
                false
            }
            Phase::Rows | Phase::FieldList => first == 0xFF || self.is_terminator(first, len),
            Phase::First if self.expect == Expect::Raw => false,
            _ => true,
        }
    }

    /// A packet that was streamed (a row or a definition) has passed.
    pub fn on_streamed(&mut self) -> Result<(), ResponseError> {
        self.phase = match self.phase {
            Phase::Columns { left } => self.after_columns(left.saturating_sub(1)),
            Phase::PrepareParams { left, cols } => self.after_params(left.saturating_sub(1), cols),
            Phase::PrepareColumns { left } => self.after_prepare_columns(left.saturating_sub(1)),
            Phase::Rows | Phase::FieldList => self.phase,
            Phase::First if self.expect == Expect::Raw => Phase::Done,
            Phase::First => {
                // A huge first packet can only be a (bogus) column count.
                return Err(ResponseError("oversized first packet"));
            }
            _ => return Err(ResponseError("unexpected packet")),
        };
        Ok(())
    }

    fn after_columns(&self, left: u64) -> Phase {
        match (left, self.deprecate_eof) {
            (0, true) => Phase::Rows,
            (0, false) => Phase::ColumnsEof,
            (left, _) => Phase::Columns { left },
        }
    }

    fn after_params(&self, left: u16, cols: u16) -> Phase {
        match (left, self.deprecate_eof) {
            (0, true) => self.after_prepare_columns_start(cols),
            (0, false) => Phase::PrepareParamsEof { cols },
            (left, _) => Phase::PrepareParams { left, cols },
        }
    }

    fn after_prepare_columns_start(&self, cols: u16) -> Phase {
        if cols == 0 {
            Phase::Done
        } else {
            Phase::PrepareColumns { left: cols }
        }
    }

    fn after_prepare_columns(&self, left: u16) -> Phase {
        match (left, self.deprecate_eof) {
            (0, true) => Phase::Done,
            (0, false) => Phase::PrepareColumnsEof,
            (left, _) => Phase::PrepareColumns { left },
        }
    }

    fn end_of_result(status: u16) -> Phase {
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            Phase::First
        } else {
            Phase::Done
        }
    }

    /// An ERR packet: a progress report when the client asked for them, else the end.
    fn on_err(&mut self, payload: &[u8]) -> Event {
        let mut r = Reader::new(payload);
        let _ = r.u8();
        if self.progress && r.u16().ok() == Some(0xFFFF) {
            return Event::Progress;
        }
        self.phase = Phase::Done;
        Event::Err
    }

    /// A whole logical packet (payload without header).
    pub fn on_packet(&mut self, payload: &[u8]) -> Result<Event, ResponseError> {
        let Some(&first) = payload.first() else {
            return Err(ResponseError("empty packet"));
        };
        if first == 0xFF && self.phase != Phase::Done && self.expect != Expect::Raw {
            return Ok(self.on_err(payload));
        }
        match self.phase {
            Phase::First => self.on_first(first, payload),
            Phase::ColumnsEof => {
                let status = eof_status(payload)?;
                // A cursor was opened: rows come later through COM_STMT_FETCH.
                self.phase = if status & SERVER_STATUS_CURSOR_EXISTS != 0 {
                    Phase::Done
                } else {
                    Phase::Rows
                };
                Ok(Event::Eof { status })
            }
            Phase::Rows | Phase::FieldList => {
                if !self.is_terminator(first, payload.len()) {
                    return Ok(Event::More);
                }
                let fetch = self.expect == Expect::Fetch || self.phase == Phase::FieldList;
                if self.deprecate_eof && payload.len() >= 7 {
                    let status = ok_status(payload)?;
                    self.phase = if fetch {
                        Phase::Done
                    } else {
                        Self::end_of_result(status)
                    };
                    Ok(Event::Ok { status })
                } else {
                    let status = eof_status(payload)?;
                    self.phase = if fetch {
                        Phase::Done
                    } else {
                        Self::end_of_result(status)
                    };
                    Ok(Event::Eof { status })
                }
            }
            Phase::PrepareParamsEof { cols } => {
                eof_status(payload)?;
                self.phase = self.after_prepare_columns_start(cols);
                Ok(Event::More)
            }
            Phase::PrepareColumnsEof => {
                eof_status(payload)?;
                self.phase = Phase::Done;
                Ok(Event::More)
            }
            Phase::Columns { .. } | Phase::PrepareParams { .. } | Phase::PrepareColumns { .. } => {
                self.on_streamed()?;
                Ok(Event::More)
            }
            Phase::Done => Err(ResponseError("packet after the end of the response")),
        }
    }

    fn on_first(&mut self, first: u8, payload: &[u8]) -> Result<Event, ResponseError> {
        match (self.expect, first) {
            (Expect::Raw, _) => {
                self.phase = Phase::Done;
                Ok(Event::More)
            }
            (Expect::Prepare, 0x00) => {
                let mut r = Reader::new(payload);
                let parsed = (|| {
                    r.u8()?;
                    let id = r.u32()?;
                    let columns = r.u16()?;
                    let params = r.u16()?;
                    Ok::<_, crate::protocol::ProtocolError>((id, columns, params))
                })();
                let (id, columns, params) =
                    parsed.map_err(|_| ResponseError("short prepare answer"))?;
                self.phase = if params > 0 {
                    Phase::PrepareParams {
                        left: params,
                        cols: columns,
                    }
                } else {
                    self.after_prepare_columns_start(columns)
                };
                Ok(Event::Prepared {
                    id,
                    params,
                    columns,
                })
            }
            (Expect::Prepare, _) => Err(ResponseError("unexpected prepare answer")),
            (_, 0x00) => {
                let status = ok_status(payload)?;
                self.phase = if self.expect == Expect::Single {
                    Phase::Done
                } else {
                    Self::end_of_result(status)
                };
                Ok(Event::Ok { status })
            }
            // MySQL answers COM_SET_OPTION with an EOF, which under CLIENT_DEPRECATE_EOF
            // is an OK packet with the 0xFE header, session-state changes and all.
            (Expect::Single, 0xFE) if self.deprecate_eof => {
                let status = ok_status(payload)?;
                self.phase = Phase::Done;
                Ok(Event::Ok { status })
            }
            (_, 0xFE) if payload.len() < 9 => {
                let status = eof_status(payload)?;
                self.phase = Phase::Done;
                Ok(Event::Eof { status })
            }
            (Expect::Single, _) => Err(ResponseError("unexpected answer to a simple command")),
            (_, 0xFB) => Ok(Event::LocalInfile),
            (_, _) => {
                let count = Reader::new(payload)
                    .lenenc_int()
                    .map_err(|_| ResponseError("bad column count"))?;
                if count == 0 {
                    return Err(ResponseError("zero column count"));
                }
                self.phase = Phase::Columns { left: count };
                Ok(Event::More)
            }
        }
    }
}

/// Status flags of an EOF packet (`0xFE`, warnings u16, status u16).
pub fn eof_status(payload: &[u8]) -> Result<u16, ResponseError> {
    let mut r = Reader::new(payload);
    (|| {
        r.u8()?;
        r.u16()?;
        r.u16()
    })()
    .map_err(|_| ResponseError("short EOF packet"))
}

/// Status flags of an OK packet.
pub fn ok_status(payload: &[u8]) -> Result<u16, ResponseError> {
    let mut r = Reader::new(payload);
    (|| {
        r.u8()?;
        r.lenenc_int()?;
        r.lenenc_int()?;
        r.u16()
    })()
    .map_err(|_| ResponseError("short OK packet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: u32 = CLIENT_DEPRECATE_EOF;

    fn eof(status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![0xFE, 0, 0, s[0], s[1]]
    }
    fn ok(header: u8, status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![header, 0, 0, s[0], s[1], 0, 0]
    }

    /// Feeds packets, streaming those the machine does not need whole.
    fn feed(r: &mut Response, packets: &[Vec<u8>]) -> Vec<Event> {
        let mut events = vec![];
        for p in packets {
            assert!(!r.is_done(), "packet after done");
            if r.needs_whole(p.first().copied(), p.len()) {
                events.push(r.on_packet(p).unwrap());
            } else {
                r.on_streamed().unwrap();
            }
        }
        events
    }

    #[test]
    fn ok_only() {
        let mut r = Response::new(Expect::ResultSets, 0, 0);
        assert_eq!(feed(&mut r, &[ok(0, 2)]), vec![Event::Ok { status: 2 }]);
        assert!(r.is_done());
    }

    #[test]
    fn text_result_with_eof() {
        let mut r = Response::new(Expect::ResultSets, 0, 0);
        let rows = vec![
            vec![2],
            vec![3, b'd', b'e', b'f'],
            vec![3, b'd', b'e', b'f'],
            eof(2),
            vec![1, b'1'],
            vec![0xFB],
            eof(2),
        ];
        feed(&mut r, &rows);
        assert!(r.is_done());
    }

    #[test]
    fn multi_results_deprecate_eof() {
        let mut r = Response::new(Expect::ResultSets, DEP, 0);
        let p = vec![
            vec![1],
            vec![3, b'd', b'e', b'f'],
            vec![1, b'1'],
            ok(0xFE, SERVER_MORE_RESULTS_EXISTS | 2),
            ok(0x00, SERVER_MORE_RESULTS_EXISTS),
            vec![1],
            vec![3, b'd', b'e', b'f'],
            ok(0xFE, 2),
        ];
        feed(&mut r, &p);
        assert!(r.is_done());
    }

    #[test]
    fn error_mid_rows_ends() {
        let mut r = Response::new(Expect::ResultSets, DEP, 0);
        feed(&mut r, &[vec![1], vec![3, b'd', b'e', b'f'], vec![1, b'1']]);
        assert!(!r.is_done());
        feed(&mut r, &[vec![0xFF, 0x10, 0x04, b'#']]);
        assert!(r.is_done());
    }

    #[test]
    fn progress_is_not_the_end() {
        let mut r = Response::new(Expect::ResultSets, 0, MARIADB_CLIENT_PROGRESS);
        let e = feed(&mut r, &[vec![0xFF, 0xFF, 0xFF, 1, 2, 3]]);
        assert_eq!(e, vec![Event::Progress]);
        assert!(!r.is_done());
        feed(&mut r, &[ok(0, 2)]);
        assert!(r.is_done());
    }

    #[test]
    fn prepare_with_and_without_eof() {
        for caps in [0, DEP] {
            let mut r = Response::new(Expect::Prepare, caps, 0);
            let mut p = vec![vec![0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]];
            p.push(vec![3, b'd', b'e', b'f']);
            p.push(vec![3, b'd', b'e', b'f']);
            if caps == 0 {
                p.push(eof(2));
            }
            p.push(vec![3, b'd', b'e', b'f']);
            if caps == 0 {
                p.push(eof(2));
            }
            let e = feed(&mut r, &p);
            assert_eq!(
                e[0],
                Event::Prepared {
                    id: 7,
                    params: 2,
                    columns: 1
                }
            );
            assert!(r.is_done(), "caps {caps}");
        }
        let mut r = Response::new(Expect::Prepare, 0, 0);
        feed(&mut r, &[vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
        assert!(r.is_done());
    }

    #[test]
    fn cursor_open_ends_after_column_eof() {
        let mut r = Response::new(Expect::ResultSets, 0, 0);
        feed(
            &mut r,
            &[
                vec![1],
                vec![3, b'd', b'e', b'f'],
                eof(SERVER_STATUS_CURSOR_EXISTS),
            ],
        );
        assert!(r.is_done());
        let mut f = Response::new(Expect::Fetch, 0, 0);
        feed(&mut f, &[vec![0, 0, 1], eof(SERVER_STATUS_LAST_ROW_SENT)]);
        assert!(f.is_done());
    }

    #[test]
    fn local_infile_then_ok() {
        let mut r = Response::new(Expect::ResultSets, 0, 0);
        let e = feed(&mut r, &[vec![0xFB, b'f']]);
        assert_eq!(e, vec![Event::LocalInfile]);
        r.after_local_infile();
        feed(&mut r, &[ok(0, 2)]);
        assert!(r.is_done());
    }

    #[test]
    fn big_row_starting_with_fe_is_a_row() {
        let r = Response {
            expect: Expect::ResultSets,
            phase: Phase::Rows,
            deprecate_eof: true,
            progress: false,
        };
        assert!(!r.needs_whole(Some(0xFE), MAX_CHUNK));
        assert!(r.needs_whole(Some(0xFE), 7));
    }

    #[test]
    fn field_list_and_single() {
        let mut r = Response::new(Expect::FieldList, 0, 0);
        feed(&mut r, &[vec![3, b'd', b'e', b'f'], eof(2)]);
        assert!(r.is_done());
        let mut r = Response::new(Expect::Single, 0, 0);
        feed(&mut r, &[eof(2)]);
        assert!(r.is_done());
        // An OK with the EOF header carrying session-state changes (12 bytes).
        let mut r = Response::new(Expect::Single, DEP, 0);
        let mut tracked = ok(0xFE, SERVER_SESSION_STATE_CHANGED | 2);
        tracked.extend_from_slice(&[0, 4, 0, 2, b'x', 0]);
        let events = feed(&mut r, &[tracked]);
        assert!(r.is_done());
        assert!(
            matches!(events[..], [Event::Ok { status }] if status & 2 != 0),
            "{events:?}"
        );
        let mut r = Response::new(Expect::Raw, 0, 0);
        feed(&mut r, &[b"Uptime: 5".to_vec()]);
        assert!(r.is_done());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = Response::new(Expect::ResultSets, 0, 0);
        assert!(r.on_packet(&[]).is_err());
        assert!(r.on_packet(&[0x00]).is_err());
        let mut r = Response::new(Expect::Prepare, 0, 0);
        assert!(r.on_packet(&[0x00, 1]).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a server sends, the walker answers with events or errors and
            /// never panics; once done, it stays done.
            #[test]
            fn never_panics(
                expect in prop::sample::select(vec![
                    Expect::ResultSets, Expect::Prepare, Expect::FieldList,
                    Expect::Fetch, Expect::Single, Expect::Raw,
                ]),
                caps in prop::sample::select(vec![0u32, CLIENT_DEPRECATE_EOF]),
                progress in any::<bool>(),
                packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..20),
            ) {
                let mut r = Response::new(expect, caps, if progress { MARIADB_CLIENT_PROGRESS } else { 0 });
                for p in &packets {
                    if r.is_done() {
                        break;
                    }
                    let step = if r.needs_whole(p.first().copied(), p.len()) {
                        r.on_packet(p).map(|_| ())
                    } else {
                        r.on_streamed()
                    };
                    if step.is_err() {
                        break;
                    }
                }
            }
        }
    }
}
