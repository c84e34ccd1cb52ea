//! `COM_STMT_EXECUTE` and MariaDB's `COM_STMT_BULK_EXECUTE` requests: where their
//! parameter types sit, read without copying, and the one rewrite the proxy makes —
//! putting remembered types back into a request that carries none.
//!
//! Layouts (payloads, command byte first; MariaDB, no `CLIENT_QUERY_ATTRIBUTES`, which
//! the proxy never relays):
//! - EXECUTE: `0x17`, statement id (u32), flags (u8), iteration count (u32); then, only
//!   when the statement has parameters: null bitmap (`(n + 7) / 8` bytes),
//!   `new_params_bound_flag` (u8), the types (2 bytes each) only when that flag is 1,
//!   then the values.
//! - BULK_EXECUTE: `0xFA`, statement id (u32), flags (u16); the types (2 bytes each)
//!   only when flags has [`BULK_SEND_TYPES`], then the rows.
//!
//! Both kinds of type block have the same shape (type byte, unsigned flag 0x80), and
//! the server keeps the last one it got for the statement, whichever command sent it.

use bytes::{BufMut, BytesMut};

use crate::protocol::buf::Reader;
use crate::protocol::constants::{COM_STMT_BULK_EXECUTE, COM_STMT_EXECUTE};
use crate::protocol::ProtocolError;

/// `COM_STMT_BULK_EXECUTE` flag: the parameter types follow the flags.
pub const BULK_SEND_TYPES: u16 = 0x80;

/// Where the type block of an execute request is, or would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypesAt {
    /// Offset of the byte (EXECUTE: the bound flag) or u16 (BULK: the flags) that says
    /// whether types are present.
    pub marker: usize,
    /// Offset where the type block starts (or would be inserted).
    pub start: usize,
    /// Whether the request carries types.
    pub present: bool,
}

/// A parsed `COM_STMT_EXECUTE` payload (the values are left unread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute<'a> {
    pub statement_id: u32,
    pub flags: u8,
    pub iterations: u32,
    pub null_bitmap: &'a [u8],
    /// `new_params_bound_flag`; `None` for a statement without parameters.
    pub bound: Option<u8>,
    /// 2 bytes per parameter when `bound == Some(1)`, else empty.
    pub types: &'a [u8],
    /// Offset of the first value in the payload.
    pub values_at: usize,
}

impl<'a> Execute<'a> {
    /// Parses `payload` (command byte first) for a statement of `params` parameters.
    pub fn parse(payload: &'a [u8], params: u16) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != COM_STMT_EXECUTE {
            return Err(ProtocolError::Malformed {
                what: "not a COM_STMT_EXECUTE",
            });
        }
        let statement_id = r.u32()?;
        let flags = r.u8()?;
        let iterations = r.u32()?;
        let (mut null_bitmap, mut bound, mut types) = (&[][..], None, &[][..]);
        if params > 0 {
            null_bitmap = r.take(null_bitmap_len(params))?;
            let flag = r.u8()?;
            bound = Some(flag);
            if flag == 1 {
                types = r.take(types_len(params))?;
            }
        }
        Ok(Execute {
            statement_id,
            flags,
            iterations,
            null_bitmap,
            bound,
            types,
            values_at: r.position(),
        })
    }

    /// Writes the payload back, with `values` after the head.
    pub fn encode(&self, values: &[u8], dst: &mut BytesMut) {
        dst.put_u8(COM_STMT_EXECUTE);
        dst.put_u32_le(self.statement_id);
        dst.put_u8(self.flags);
        dst.put_u32_le(self.iterations);
        if let Some(bound) = self.bound {
            dst.put_slice(self.null_bitmap);
            dst.put_u8(bound);
            dst.put_slice(self.types);
        }
        dst.put_slice(values);
    }
}

fn null_bitmap_len(params: u16) -> usize {
    usize::from(params).div_ceil(8)
}

/// Bytes of the type block of a statement of `params` parameters.
pub fn types_len(params: u16) -> usize {
    usize::from(params) * 2
}

/// The most bytes a request's head takes, up to the end of its type block.
pub fn max_head_len(params: u16) -> usize {
    11 + null_bitmap_len(params) + types_len(params)
}

/// Where the types of an EXECUTE or BULK_EXECUTE `payload` are, for a statement of
/// `params` parameters: only the fixed head and the marker are looked at, so this is
/// cheap enough for every execution. `None` when there is no type block to speak of
/// (no parameters, another command, or a payload too short to say).
pub fn types_at(payload: &[u8], params: u16) -> Option<TypesAt> {
    if params == 0 {
        return None;
    }
    let (marker, start, present) = match *payload.first()? {
        COM_STMT_EXECUTE => {
            let marker = 10 + null_bitmap_len(params);
            (marker, marker + 1, *payload.get(marker)? == 1)
        }
        COM_STMT_BULK_EXECUTE => {
            let flags = u16::from_le_bytes([*payload.get(5)?, *payload.get(6)?]);
            (5, 7, flags & BULK_SEND_TYPES != 0)
        }
        _ => return None,
    };
    Some(TypesAt {
        marker,
        start,
        present,
    })
}

/// The type block a request carries, if it carries one whole.
pub fn carried_types(payload: &[u8], params: u16) -> Option<&[u8]> {
    let at = types_at(payload, params)?;
    if !at.present {
        return None;
    }
    payload.get(at.start..at.start.checked_add(types_len(params))?)
}

/// Writes `payload` (which carries no types) to `dst` with `types` inserted and the
/// marker set: the bound flag to 1 (EXECUTE) or [`BULK_SEND_TYPES`] added to the flags
/// (BULK). `None`, writing nothing, when the payload has no place for them or `types`
/// is not the statement's size.
pub fn insert_types(payload: &[u8], params: u16, types: &[u8], dst: &mut BytesMut) -> Option<()> {
    let at = types_at(payload, params)?;
    if at.present || types.len() != types_len(params) {
        return None;
    }
    let head = payload.get(..at.marker)?;
    let tail = payload.get(at.start..)?;
    dst.reserve(payload.len() + types.len());
    dst.put_slice(head);
    if payload.first() == Some(&COM_STMT_EXECUTE) {
        dst.put_u8(1);
    } else {
        let flags = u16::from_le_bytes([*payload.get(5)?, *payload.get(6)?]);
        dst.put_u16_le(flags | BULK_SEND_TYPES);
    }
    dst.put_slice(types);
    dst.put_slice(tail);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `SELECT ?, ?, ?` executed with (INT 7, NULL, VARCHAR "ab"), types sent.
    const WITH_TYPES: &[u8] = &[
        0x17, 3, 0, 0, 0, 0, 1, 0, 0, 0,     // id 3, no cursor, 1 iteration
        0b010, // null bitmap: the second is NULL
        1,     // bound
        3, 0, 6, 0, 0xFD, 0, // LONG, NULL, VAR_STRING
        7, 0, 0, 0, 2, b'a', b'b',
    ];

    /// The same, as libmariadb sends it the second time: no types.
    const WITHOUT_TYPES: &[u8] = &[
        0x17, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0b010, 0, 7, 0, 0, 0, 2, b'a', b'b',
    ];

    #[test]
    fn parses_both_forms() {
        let e = Execute::parse(WITH_TYPES, 3).unwrap();
        assert_eq!(e.statement_id, 3);
        assert_eq!(e.iterations, 1);
        assert_eq!(e.null_bitmap, &[0b010]);
        assert_eq!(e.bound, Some(1));
        assert_eq!(e.types, &[3, 0, 6, 0, 0xFD, 0]);
        assert_eq!(e.values_at, 18);
        let e = Execute::parse(WITHOUT_TYPES, 3).unwrap();
        assert_eq!(e.bound, Some(0));
        assert!(e.types.is_empty());
        assert_eq!(e.values_at, 12);
        let none = Execute::parse(&WITHOUT_TYPES[..10], 0).unwrap();
        assert_eq!((none.bound, none.values_at), (None, 10));
    }

    #[test]
    fn short_or_foreign_payloads_are_refused() {
        for len in 0..WITH_TYPES.len() - 7 {
            assert!(Execute::parse(&WITH_TYPES[..len], 3).is_err(), "{len}");
        }
        assert!(Execute::parse(&[0x16, 3, 0, 0, 0, 0, 1, 0, 0, 0], 0).is_err());
        assert_eq!(types_at(&WITH_TYPES[..10], 3), None);
        assert_eq!(types_at(&[0x03, 1, 2], 3), None);
        assert_eq!(types_at(WITH_TYPES, 0), None);
        assert_eq!(carried_types(&WITH_TYPES[..14], 3), None);
    }

    #[test]
    fn types_go_back_where_they_were() {
        assert_eq!(carried_types(WITH_TYPES, 3), Some(&WITH_TYPES[12..18]));
        assert_eq!(carried_types(WITHOUT_TYPES, 3), None);
        let mut out = BytesMut::new();
        insert_types(WITHOUT_TYPES, 3, &WITH_TYPES[12..18], &mut out).unwrap();
        assert_eq!(&out[..], WITH_TYPES);
        // Never twice, never the wrong size.
        let mut out = BytesMut::new();
        assert_eq!(
            insert_types(WITH_TYPES, 3, &WITH_TYPES[12..18], &mut out),
            None
        );
        assert_eq!(insert_types(WITHOUT_TYPES, 3, &[3, 0], &mut out), None);
        assert!(out.is_empty());
    }

    #[test]
    fn bulk_types_follow_the_flags() {
        // id 9, flags 0x40 (unit results), 2 rows of (INT) with indicators.
        let without = [0xFA, 9, 0, 0, 0, 0x40, 0, 0, 1, 0, 0, 0, 1];
        let with = [0xFA, 9, 0, 0, 0, 0xC0, 0, 3, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(carried_types(&without, 1), None);
        assert_eq!(carried_types(&with, 1), Some(&[3u8, 0][..]));
        let mut out = BytesMut::new();
        insert_types(&without, 1, &[3, 0], &mut out).unwrap();
        assert_eq!(&out[..], &with[..]);
    }

    fn execute() -> impl Strategy<Value = (u16, Vec<u8>, bool, Vec<u8>, Vec<u8>)> {
        (0u16..40).prop_flat_map(|params| {
            (
                Just(params),
                proptest::collection::vec(any::<u8>(), null_bitmap_len(params)),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), types_len(params)),
                proptest::collection::vec(any::<u8>(), 0..64),
            )
        })
    }

    proptest! {
        #[test]
        fn round_trip((params, bitmap, bound, types, values) in execute(), id in any::<u32>(), flags in any::<u8>()) {
            let e = Execute {
                statement_id: id,
                flags,
                iterations: 1,
                null_bitmap: &bitmap,
                bound: (params > 0).then_some(u8::from(bound)),
                types: if bound && params > 0 { &types } else { &[] },
                values_at: 0,
            };
            let mut out = BytesMut::new();
            e.encode(&values, &mut out);
            let back = Execute::parse(&out, params).unwrap();
            prop_assert_eq!(&out[back.values_at..], &values[..]);
            prop_assert_eq!(back, Execute { values_at: out.len() - values.len(), ..e.clone() });
            // Without its types, then with them inserted again: the same bytes.
            if bound && params > 0 {
                let mut bare = BytesMut::new();
                Execute { bound: Some(0), types: &[], ..e.clone() }.encode(&values, &mut bare);
                prop_assert_eq!(carried_types(&bare, params), None);
                let mut again = BytesMut::new();
                insert_types(&bare, params, &types, &mut again).unwrap();
                prop_assert_eq!(&again[..], &out[..]);
            }
        }

        #[test]
        fn never_panics(payload in proptest::collection::vec(any::<u8>(), 0..64), params in any::<u16>(), types in proptest::collection::vec(any::<u8>(), 0..8)) {
            let _ = Execute::parse(&payload, params);
            let _ = types_at(&payload, params);
            let _ = carried_types(&payload, params);
            let _ = insert_types(&payload, params, &types, &mut BytesMut::new());
        }
    }
}
