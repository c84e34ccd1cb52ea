//! The first packet of the `COM_STMT_PREPARE` answer.

use bytes::{BufMut, BytesMut};

use crate::protocol::buf::Reader;
use crate::protocol::ProtocolError;

/// `0x00`, statement id, column count, parameter count, filler, warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub num_columns: u16,
    pub num_params: u16,
    pub warnings: u16,
}

impl PrepareOk {
    /// Parses the header packet. The filler and warnings may be missing (old
    /// servers); warnings is then 0.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0x00 {
            return Err(ProtocolError::Malformed {
                what: "prepare OK header must be 0x00",
            });
        }
        let statement_id = r.u32()?;
        let num_columns = r.u16()?;
        let num_params = r.u16()?;
        let warnings = if r.remaining() >= 3 {
            r.skip(1)?;
            r.u16()?
        } else {
            0
        };
        Ok(PrepareOk {
            statement_id,
            num_columns,
            num_params,
            warnings,
        })
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(0x00);
        dst.put_u32_le(self.statement_id);
        dst.put_u16_le(self.num_columns);
        dst.put_u16_le(self.num_params);
        dst.put_u8(0x00);
        dst.put_u16_le(self.warnings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_prepare_answer() {
        // PREPARE "SELECT ?, ?" -> id 1, 2 columns, 2 params, no warnings.
        let p = [0x00, 1, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0];
        let ok = PrepareOk::parse(&p).unwrap();
        assert_eq!(
            ok,
            PrepareOk {
                statement_id: 1,
                num_columns: 2,
                num_params: 2,
                warnings: 0
            }
        );
        assert_eq!(PrepareOk::parse(&p[..9]).unwrap(), ok);
        assert!(PrepareOk::parse(&p[..8]).is_err());
        assert!(PrepareOk::parse(&[0xFF, 1, 0, 0, 0, 2, 0, 2, 0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(id in any::<u32>(), cols in any::<u16>(), params in any::<u16>(), warnings in any::<u16>()) {
            let ok = PrepareOk { statement_id: id, num_columns: cols, num_params: params, warnings };
            let mut out = BytesMut::new();
            ok.encode(&mut out);
            prop_assert_eq!(PrepareOk::parse(&out).unwrap(), ok);
        }
    }
}
