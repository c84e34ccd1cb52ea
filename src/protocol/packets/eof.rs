//! The EOF packet and the two ways to recognise a result-set terminator.
//!
//! A row may also start with 0xFE (an 8-byte lenenc prefix), so the payload
//! length is what tells a terminator from a row.

use bytes::{BufMut, BytesMut};

use crate::protocol::buf::Reader;
use crate::protocol::constants::MAX_CHUNK;
use crate::protocol::ProtocolError;

const EOF_HEADER: u8 = 0xFE;
/// An EOF payload is shorter than this; a 0xFE row is at least this long.
const EOF_MAX_EXCLUSIVE: usize = 9;

/// An EOF packet (protocol 4.1): warnings and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

/// True for a classic EOF: header 0xFE and fewer than 9 bytes.
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < EOF_MAX_EXCLUSIVE
}

/// True for the OK (header 0xFE) that ends a result set under
/// `CLIENT_DEPRECATE_EOF`: header 0xFE and shorter than a full chunk.
pub fn is_ok_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < MAX_CHUNK
}

impl EofPacket {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        if !is_eof(payload) {
            return Err(ProtocolError::Malformed {
                what: "EOF packet must be 0xFE and shorter than 9 bytes",
            });
        }
        let mut r = Reader::new(payload);
        r.skip(1)?;
        Ok(EofPacket {
            warnings: r.u16()?,
            status: r.u16()?,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(EOF_HEADER);
        dst.put_u16_le(self.warnings);
        dst.put_u16_le(self.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recognises_terminators() {
        let eof = [0xFE, 0x00, 0x00, 0x22, 0x00];
        assert!(is_eof(&eof) && is_ok_eof(&eof));
        assert_eq!(
            EofPacket::parse(&eof).unwrap(),
            EofPacket {
                warnings: 0,
                status: 0x22
            }
        );
        // A row whose first column has an 8-byte length prefix.
        let row = [0xFE, 1, 0, 0, 0, 0, 0, 0, 0, b'x'];
        assert!(!is_eof(&row) && is_ok_eof(&row));
        assert!(EofPacket::parse(&row).is_err());
        assert!(!is_eof(&[]) && !is_ok_eof(&[0x00]));
        assert!(EofPacket::parse(&[0xFE, 0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(warnings in any::<u16>(), status in any::<u16>()) {
            let e = EofPacket { warnings, status };
            let mut out = BytesMut::new();
            e.encode(&mut out);
            prop_assert!(is_eof(&out));
            prop_assert_eq!(EofPacket::parse(&out).unwrap(), e);
        }
    }
}
