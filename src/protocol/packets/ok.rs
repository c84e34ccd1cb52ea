//! The OK packet, with or without `CLIENT_SESSION_TRACK`.
//!
//! MariaDB (10.11 included) omits the info string entirely when it is empty and
//! no session state changed, even under `CLIENT_SESSION_TRACK`; it also writes
//! the info as a length-encoded string *without* session tracking (as MySQL's
//! server does, whatever the docs say), so parsing accepts both forms there.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::buf::{lenenc_int_len, put_lenenc_bytes, put_lenenc_int, Reader};
use crate::protocol::constants::{CLIENT_SESSION_TRACK, SERVER_SESSION_STATE_CHANGED};
use crate::protocol::ProtocolError;

/// An OK packet (header 0x00, or 0xFE when it ends a result set under
/// `CLIENT_DEPRECATE_EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkPacket {
    pub header: u8,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Bytes,
    /// The session-state block content (entries, see
    /// [`session_changes`](super::session_changes)), without its lenenc length.
    pub session_state: Option<Bytes>,
}

impl OkPacket {
    pub fn parse(payload: &[u8], caps: u32) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != 0x00 && header != 0xFE {
            return Err(ProtocolError::Malformed {
                what: "OK packet header must be 0x00 or 0xFE",
            });
        }
        let affected_rows = r.lenenc_int()?;
        let last_insert_id = r.lenenc_int()?;
        let status = r.u16()?;
        let warnings = r.u16()?;
        let (info, session_state) = if caps & CLIENT_SESSION_TRACK != 0 {
            let info = if r.is_empty() {
                &[][..]
            } else {
                r.lenenc_bytes()?
            };
            let state = if status & SERVER_SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                Some(Bytes::copy_from_slice(r.lenenc_bytes()?))
            } else {
                None
            };
            (info, state)
        } else {
            (untracked_info(r.rest()), None)
        };
        Ok(OkPacket {
            header,
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info: Bytes::copy_from_slice(info),
            session_state,
        })
    }

    /// Writes the payload. Info is written as a lenenc string, and omitted when
    /// empty and no session state follows. With `CLIENT_SESSION_TRACK` the
    /// session-state block is written iff `status` has
    /// `SERVER_SESSION_STATE_CHANGED` (an absent block becomes empty); without
    /// it the block is dropped and that status bit cleared.
    pub fn encode(&self, dst: &mut BytesMut, caps: u32) {
        let tracked = caps & CLIENT_SESSION_TRACK != 0;
        let status = if tracked {
            self.status
        } else {
            self.status & !SERVER_SESSION_STATE_CHANGED
        };
        let state_changed = status & SERVER_SESSION_STATE_CHANGED != 0;
        dst.put_u8(self.header);
        put_lenenc_int(dst, self.affected_rows);
        put_lenenc_int(dst, self.last_insert_id);
        dst.put_u16_le(status);
        dst.put_u16_le(self.warnings);
        if !self.info.is_empty() || state_changed {
            put_lenenc_bytes(dst, &self.info);
        }
        if state_changed {
            put_lenenc_bytes(dst, self.session_state.as_deref().unwrap_or_default());
        }
    }
}

/// Without session tracking, servers send the info as a lenenc string while the
/// documentation says "rest of packet": accept the lenenc form when its length
/// matches exactly, else take the bytes as they are.
fn untracked_info(rest: &[u8]) -> &[u8] {
    let mut r = Reader::new(rest);
    match r.lenenc_int() {
        Ok(len)
            if usize::try_from(len).is_ok_and(|l| l == r.remaining())
                && lenenc_int_len(len) + r.remaining() == rest.len() =>
        {
            r.rest()
        }
        _ => rest,
    }
}

/// A plain OK payload (no rows, no info) carrying `status`.
pub fn ok_payload(status: u16, caps: u32) -> Bytes {
    let mut dst = BytesMut::with_capacity(8);
    OkPacket {
        header: 0,
        affected_rows: 0,
        last_insert_id: 0,
        status,
        warnings: 0,
        info: Bytes::new(),
        session_state: None,
    }
    .encode(&mut dst, caps);
    dst.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::*;
    use proptest::prelude::*;

    #[test]
    fn plain_ok() {
        let p = [0x00, 0x01, 0x05, 0x02, 0x00, 0x00, 0x00];
        for caps in [0, CLIENT_SESSION_TRACK] {
            let ok = OkPacket::parse(&p, caps).unwrap();
            assert_eq!((ok.affected_rows, ok.last_insert_id), (1, 5));
            assert_eq!(ok.status, SERVER_STATUS_AUTOCOMMIT);
            assert!(ok.info.is_empty() && ok.session_state.is_none());
            let mut out = BytesMut::new();
            ok.encode(&mut out, caps);
            assert_eq!(&out[..], &p[..]);
        }
        assert_eq!(&ok_payload(2, CLIENT_SESSION_TRACK)[..], &p_with(0, 0)[..]);
    }

    fn p_with(affected: u8, id: u8) -> [u8; 7] {
        [0x00, affected, id, 0x02, 0x00, 0x00, 0x00]
    }

    #[test]
    fn info_without_session_track() {
        // Server code writes lenenc info ("Rows matched: 1  Changed: 1  Warnings: 0").
        let msg = b"Rows matched: 1  Changed: 1  Warnings: 0";
        let mut p = vec![0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, msg.len() as u8];
        p.extend_from_slice(msg);
        let ok = OkPacket::parse(&p, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(&ok.info[..], msg);
        // A bare rest-of-packet string is accepted too.
        let mut bare = vec![0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
        bare.extend_from_slice(b"Records: 3");
        assert_eq!(&OkPacket::parse(&bare, 0).unwrap().info[..], b"Records: 3");
    }

    #[test]
    fn session_tracked_schema_change() {
        // `USE shop` on MariaDB 10.11 with session tracking: schema entry.
        let state = [0x01, 0x05, 0x04, b's', b'h', b'o', b'p'];
        let mut p = vec![
            0x00,
            0x00,
            0x00,
            0x02,
            0x40,
            0x00,
            0x00,
            0x00,
            state.len() as u8,
        ];
        p.extend_from_slice(&state);
        let ok = OkPacket::parse(&p, CLIENT_SESSION_TRACK).unwrap();
        assert_eq!(
            ok.status,
            SERVER_STATUS_AUTOCOMMIT | SERVER_SESSION_STATE_CHANGED
        );
        assert!(ok.info.is_empty());
        assert_eq!(ok.session_state.as_deref(), Some(&state[..]));
        let mut out = BytesMut::new();
        ok.encode(&mut out, CLIENT_SESSION_TRACK);
        assert_eq!(&out[..], &p[..]);
        // Re-encoded for a client without session tracking.
        let mut out = BytesMut::new();
        ok.encode(&mut out, 0);
        assert_eq!(&out[..], &[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn eof_style_header_and_errors() {
        let p = [0xFE, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00];
        assert_eq!(OkPacket::parse(&p, 0).unwrap().header, 0xFE);
        assert!(OkPacket::parse(&[0xFF, 0, 0, 0, 0, 0, 0], 0).is_err());
        assert!(OkPacket::parse(&[0x00, 0, 0, 2, 0, 0], 0).is_err());
        assert!(
            OkPacket::parse(&[0x00, 0, 0, 0, 0x40, 0, 0, 0, 9, 1], CLIENT_SESSION_TRACK).is_err()
        );
    }

    prop_compose! {
        fn ok_strategy()(
            fe in any::<bool>(),
            affected_rows in any::<u64>(),
            last_insert_id in any::<u64>(),
            status in any::<u16>(),
            warnings in any::<u16>(),
            info in proptest::collection::vec(any::<u8>(), 0..300),
            state in proptest::collection::vec(any::<u8>(), 0..300),
        ) -> OkPacket {
            OkPacket {
                header: if fe { 0xFE } else { 0x00 },
                affected_rows,
                last_insert_id,
                status,
                warnings,
                info: info.into(),
                session_state: (status & SERVER_SESSION_STATE_CHANGED != 0).then(|| state.into()),
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip_tracked(ok in ok_strategy()) {
            let mut out = BytesMut::new();
            ok.encode(&mut out, CLIENT_SESSION_TRACK);
            prop_assert_eq!(OkPacket::parse(&out, CLIENT_SESSION_TRACK).unwrap(), ok);
        }

        #[test]
        fn round_trip_untracked(ok in ok_strategy()) {
            let mut out = BytesMut::new();
            ok.encode(&mut out, 0);
            let expected = OkPacket {
                status: ok.status & !SERVER_SESSION_STATE_CHANGED,
                session_state: None,
                ..ok
            };
            prop_assert_eq!(OkPacket::parse(&out, 0).unwrap(), expected);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), caps in any::<u32>()) {
            let _ = OkPacket::parse(&data, caps);
        }
    }
}
