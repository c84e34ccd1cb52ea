//! Bounds-checked reading and writing of protocol primitives: fixed-width
//! little-endian integers, length-encoded integers and strings, NUL-terminated
//! strings.
//!
//! [`Reader`] never panics and never allocates: every read checks the remaining
//! length first and returns a borrowed slice of the input.

use bytes::{BufMut, BytesMut};

use super::ProtocolError;

/// A forward-only cursor over a payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Offset of the cursor from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ProtocolError::Truncated { what: "field" })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(ProtocolError::Truncated { what: "field" })?;
        self.pos = end;
        Ok(out)
    }

    /// Skips exactly `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ProtocolError> {
        self.take(n).map(|_| ())
    }

    /// Consumes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let bytes = self
            .take(N)
            .map_err(|_| ProtocolError::Truncated { what })?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        let [b] = self.array("u8")?;
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array("u16")?))
    }

    pub fn u24(&mut self) -> Result<u32, ProtocolError> {
        let [a, b, c] = self.array("u24")?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array("u32")?))
    }

    pub fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array("u64")?))
    }

    /// A length-encoded integer. `0xFB` (NULL in rows) and `0xFF` (ERR marker)
    /// are not integers and yield `Malformed`.
    pub fn lenenc_int(&mut self) -> Result<u64, ProtocolError> {
        match self.u8().map_err(|_| ProtocolError::Truncated {
            what: "length-encoded integer",
        })? {
            v @ 0..=0xFA => Ok(u64::from(v)),
            0xFC => self.u16().map(u64::from),
            0xFD => self.u24().map(u64::from),
            0xFE => self.u64(),
            _ => Err(ProtocolError::Malformed {
                what: "length-encoded integer prefix",
            }),
        }
    }

    /// A length-encoded string; the length is checked against what remains.
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.lenenc_int()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or(ProtocolError::Truncated {
                what: "length-encoded string",
            })?;
        self.take(len)
    }

    /// Bytes up to the next NUL; the NUL is consumed but not returned.
    pub fn null_terminated(&mut self) -> Result<&'a [u8], ProtocolError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(ProtocolError::Truncated {
                what: "NUL-terminated string",
            })?;
        let out = self.take(len)?;
        self.skip(1)?;
        Ok(out)
    }

    /// Like [`Reader::null_terminated`], but a missing NUL takes the rest of the
    /// input: servers accept some trailing strings without their terminator.
    pub fn null_terminated_or_rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == 0) {
            Some(len) => {
                self.pos += len + 1;
                rest.get(..len).unwrap_or_default()
            }
            None => self.rest(),
        }
    }
}

/// Number of bytes [`put_lenenc_int`] writes for `v`.
pub fn lenenc_int_len(v: u64) -> usize {
    match v {
        0..=0xFA => 1,
        0xFB..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

/// Writes `v` as a length-encoded integer.
pub fn put_lenenc_int(dst: &mut BytesMut, v: u64) {
    match v {
        0..=0xFA => dst.put_u8(v as u8),
        0xFB..=0xFFFF => {
            dst.put_u8(0xFC);
            dst.put_u16_le(v as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            dst.put_u8(0xFD);
            dst.put_uint_le(v, 3);
        }
        _ => {
            dst.put_u8(0xFE);
            dst.put_u64_le(v);
        }
    }
}

/// Writes `b` prefixed by its length as a length-encoded integer.
pub fn put_lenenc_bytes(dst: &mut BytesMut, b: &[u8]) {
    put_lenenc_int(dst, b.len() as u64);
    dst.put_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_width_little_endian() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 0x0302);
        assert_eq!(r.u24().unwrap(), 0x060504);
        assert_eq!(r.position(), 6);
        assert_eq!(r.remaining(), 5);
        assert!(matches!(r.u64(), Err(ProtocolError::Truncated { .. })));
        assert_eq!(r.u32().unwrap(), 0x0A090807);
        assert_eq!(r.peek(), Some(11));
        assert_eq!(r.rest(), &[11]);
        assert!(r.is_empty());
        assert_eq!(r.peek(), None);
        assert!(r.u8().is_err());
    }

    #[test]
    fn lenenc_int_forms() {
        let cases: &[(&[u8], u64)] = &[
            (&[0xFA], 250),
            (&[0xFC, 0xFB, 0x00], 251),
            (&[0xFD, 0x01, 0x02, 0x03], 0x030201),
            (&[0xFE, 1, 0, 0, 0, 0, 0, 0, 0x80], 0x8000_0000_0000_0001),
        ];
        for (bytes, v) in cases {
            assert_eq!(Reader::new(bytes).lenenc_int().unwrap(), *v);
            let mut out = BytesMut::new();
            put_lenenc_int(&mut out, *v);
            assert_eq!(&out[..], *bytes);
        }
        assert!(matches!(
            Reader::new(&[0xFB]).lenenc_int(),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            Reader::new(&[0xFF]).lenenc_int(),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            Reader::new(&[0xFE, 1, 2]).lenenc_int(),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(Reader::new(&[]).lenenc_int().is_err());
    }

    #[test]
    fn lenenc_bytes_checks_length_before_slicing() {
        // Announces 2^64-1 bytes: must fail cleanly, not allocate or panic.
        let huge = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            Reader::new(&huge).lenenc_bytes(),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(Reader::new(&[3, b'a', b'b']).lenenc_bytes().is_err());
        let mut r = Reader::new(&[2, b'a', b'b', b'c']);
        assert_eq!(r.lenenc_bytes().unwrap(), b"ab");
        assert_eq!(r.rest(), b"c");
    }

    #[test]
    fn null_terminated_strings() {
        let mut r = Reader::new(b"abc\0\0x");
        assert_eq!(r.null_terminated().unwrap(), b"abc");
        assert_eq!(r.null_terminated().unwrap(), b"");
        assert!(r.null_terminated().is_err());
        assert_eq!(r.rest(), b"x");
        let mut r = Reader::new(b"ab\0cd");
        assert_eq!(r.null_terminated_or_rest(), b"ab");
        assert_eq!(r.null_terminated_or_rest(), b"cd");
        assert!(r.is_empty());
        assert_eq!(r.null_terminated_or_rest(), b"");
    }

    #[test]
    fn take_and_skip_bounds() {
        let mut r = Reader::new(b"abcd");
        assert!(r.take(5).is_err());
        assert!(r.skip(usize::MAX).is_err());
        r.skip(1).unwrap();
        assert_eq!(r.take(3).unwrap(), b"bcd");
        assert_eq!(r.take(0).unwrap(), b"");
    }

    proptest! {
        #[test]
        fn lenenc_int_round_trip(v in any::<u64>()) {
            let mut out = BytesMut::new();
            put_lenenc_int(&mut out, v);
            prop_assert_eq!(out.len(), lenenc_int_len(v));
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.lenenc_int().unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn lenenc_bytes_round_trip(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = BytesMut::new();
            put_lenenc_bytes(&mut out, &b);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.lenenc_bytes().unwrap(), &b[..]);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&data);
            while !r.is_empty() {
                let _ = r.lenenc_bytes();
                let _ = r.null_terminated();
                let _ = r.u24();
                if r.u8().is_err() { break; }
            }
        }
    }
}
