//! The ERR packet, and MariaDB's progress report that shares its header.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::buf::Reader;
use crate::protocol::ProtocolError;

const ERR_HEADER: u8 = 0xFF;
const STATE_MARKER: u8 = b'#';
/// MariaDB's progress report travels as an ERR with this code.
const PROGRESS_REPORT_CODE: u16 = 0xFFFF;
/// The generic SQLSTATE, used when none is given (or a given one is malformed).
const GENERAL_SQL_STATE: [u8; 5] = *b"HY000";

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    /// `HY000` when the packet carried no `#` marker (errors sent before the
    /// handshake completes).
    pub sql_state: [u8; 5],
    pub message: Bytes,
}

impl ErrPacket {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != ERR_HEADER {
            return Err(ProtocolError::Malformed {
                what: "ERR packet header must be 0xFF",
            });
        }
        let code = r.u16()?;
        let sql_state = if r.peek() == Some(STATE_MARKER) {
            r.skip(1)?;
            let mut state = [0u8; 5];
            state.copy_from_slice(r.take(5)?);
            state
        } else {
            GENERAL_SQL_STATE
        };
        Ok(ErrPacket {
            code,
            sql_state,
            message: Bytes::copy_from_slice(r.rest()),
        })
    }

    /// Writes the payload, always with the `#` SQLSTATE marker.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(9 + self.message.len());
        dst.put_u8(ERR_HEADER);
        dst.put_u16_le(self.code);
        dst.put_u8(STATE_MARKER);
        dst.put_slice(&self.sql_state);
        dst.put_slice(&self.message);
    }
}

/// An ERR payload. `sql_state` must be 5 ASCII characters; anything else is
/// replaced by `HY000` rather than producing a malformed packet.
pub fn err_payload(code: u16, sql_state: &str, message: &str) -> Bytes {
    let sql_state = <[u8; 5]>::try_from(sql_state.as_bytes())
        .ok()
        .filter(|s| s.is_ascii())
        .unwrap_or(GENERAL_SQL_STATE);
    let mut dst = BytesMut::new();
    ErrPacket {
        code,
        sql_state,
        message: Bytes::copy_from_slice(message.as_bytes()),
    }
    .encode(&mut dst);
    dst.freeze()
}

/// True for a MariaDB progress report (`0xFF`, code `0xFFFF`): sent mid-statement
/// to clients with `MARIADB_CLIENT_PROGRESS`, it does not end the response.
pub fn is_progress_report(payload: &[u8]) -> bool {
    let mut r = Reader::new(payload);
    r.u8().is_ok_and(|h| h == ERR_HEADER) && r.u16().is_ok_and(|c| c == PROGRESS_REPORT_CODE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::ER_ACCESS_DENIED_ERROR;
    use proptest::prelude::*;

    #[test]
    fn access_denied_layout() {
        let msg = "Access denied for user 'app'@'localhost' (using password: YES)";
        let p = err_payload(ER_ACCESS_DENIED_ERROR, "28000", msg);
        assert_eq!(
            &p[..9],
            &[0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0']
        );
        let e = ErrPacket::parse(&p).unwrap();
        assert_eq!(e.code, 1045);
        assert_eq!(&e.sql_state, b"28000");
        assert_eq!(&e.message[..], msg.as_bytes());
        assert!(!is_progress_report(&p));
    }

    #[test]
    fn without_marker_and_bad_inputs() {
        // "Too many connections" before the handshake: no SQLSTATE marker.
        let p = [&[0xFF, 0x10, 0x04][..], b"Too many connections"].concat();
        let e = ErrPacket::parse(&p).unwrap();
        assert_eq!((e.code, &e.sql_state), (1040, b"HY000"));
        assert_eq!(&e.message[..], b"Too many connections");
        assert!(ErrPacket::parse(&[0xFF, 0x10]).is_err());
        assert!(ErrPacket::parse(&[0xFF, 0x10, 0x04, b'#', b'2']).is_err());
        assert!(ErrPacket::parse(&[0x00, 0x10, 0x04]).is_err());
        assert_eq!(&err_payload(1, "toolong", "")[4..9], b"HY000");
        assert!(is_progress_report(&[0xFF, 0xFF, 0xFF, 1, 1]));
    }

    proptest! {
        #[test]
        fn round_trip(code in any::<u16>(), state in any::<[u8; 5]>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let e = ErrPacket { code, sql_state: state, message: msg.into() };
            let mut out = BytesMut::new();
            e.encode(&mut out);
            prop_assert_eq!(ErrPacket::parse(&out).unwrap(), e);
        }

        #[test]
        fn err_payload_round_trip(code in any::<u16>(), state in "[0-9A-Z]{5}", msg in ".{0,50}") {
            let e = ErrPacket::parse(&err_payload(code, &state, &msg)).unwrap();
            prop_assert_eq!(e.code, code);
            prop_assert_eq!(&e.sql_state[..], state.as_bytes());
            prop_assert_eq!(&e.message[..], msg.as_bytes());
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = ErrPacket::parse(&data);
        }
    }
}
