//! Entries of the session-state block of an OK packet (`CLIENT_SESSION_TRACK`).
//!
//! The block is a sequence of `type (u8), data (lenenc)`. MariaDB may send
//! several `SystemVariable` entries in one block (one per changed variable).

use bytes::{BufMut, BytesMut};

use crate::protocol::buf::{lenenc_int_len, put_lenenc_bytes, put_lenenc_int, Reader};
use crate::protocol::ProtocolError;

const SYSTEM_VARIABLES: u8 = 0;
const SCHEMA: u8 = 1;
const STATE_CHANGE: u8 = 2;
const GTIDS: u8 = 3;
const TRANSACTION_CHARACTERISTICS: u8 = 4;
const TRANSACTION_STATE: u8 = 5;

/// One session-state entry, borrowing from the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange<'a> {
    SystemVariable {
        name: &'a [u8],
        value: &'a [u8],
    },
    Schema(&'a [u8]),
    /// `true` when the server reported "1" (some session state changed).
    StateChange(bool),
    /// The GTID string; the one-byte encoding specification is skipped.
    Gtids(&'a [u8]),
    TransactionCharacteristics(&'a [u8]),
    TransactionState(&'a [u8]),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterator over the entries of a session-state block; stops after an error.
#[derive(Debug, Clone)]
pub struct SessionChanges<'a> {
    reader: Reader<'a>,
    failed: bool,
}

/// Iterates over `block` (the content of the session-state field, without its
/// own length prefix).
pub fn session_changes(block: &[u8]) -> SessionChanges<'_> {
    SessionChanges {
        reader: Reader::new(block),
        failed: false,
    }
}

impl<'a> Iterator for SessionChanges<'a> {
    type Item = Result<SessionChange<'a>, ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let entry = self.next_entry();
        self.failed = entry.is_err();
        Some(entry)
    }
}

impl<'a> SessionChanges<'a> {
    fn next_entry(&mut self) -> Result<SessionChange<'a>, ProtocolError> {
        let kind = self.reader.u8()?;
        let data = self.reader.lenenc_bytes()?;
        let mut r = Reader::new(data);
        Ok(match kind {
            SYSTEM_VARIABLES => SessionChange::SystemVariable {
                name: r.lenenc_bytes()?,
                value: r.lenenc_bytes()?,
            },
            SCHEMA => SessionChange::Schema(r.lenenc_bytes()?),
            STATE_CHANGE => SessionChange::StateChange(r.lenenc_bytes()? == b"1"),
            GTIDS => {
                r.skip(1)?;
                SessionChange::Gtids(r.lenenc_bytes()?)
            }
            TRANSACTION_CHARACTERISTICS => {
                SessionChange::TransactionCharacteristics(r.lenenc_bytes()?)
            }
            TRANSACTION_STATE => SessionChange::TransactionState(r.lenenc_bytes()?),
            kind => SessionChange::Unknown { kind, data },
        })
    }
}

impl SessionChange<'_> {
    /// Appends this entry (type byte and lenenc data) to a session-state block.
    /// `Gtids` is written with encoding specification 0.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut data = BytesMut::new();
        let kind = match *self {
            SessionChange::SystemVariable { name, value } => {
                put_lenenc_bytes(&mut data, name);
                put_lenenc_bytes(&mut data, value);
                SYSTEM_VARIABLES
            }
            SessionChange::Schema(name) => {
                put_lenenc_bytes(&mut data, name);
                SCHEMA
            }
            SessionChange::StateChange(changed) => {
                put_lenenc_bytes(&mut data, if changed { b"1" } else { b"0" });
                STATE_CHANGE
            }
            SessionChange::Gtids(gtids) => {
                data.put_u8(0);
                put_lenenc_bytes(&mut data, gtids);
                GTIDS
            }
            SessionChange::TransactionCharacteristics(s) => {
                put_lenenc_bytes(&mut data, s);
                TRANSACTION_CHARACTERISTICS
            }
            SessionChange::TransactionState(s) => {
                put_lenenc_bytes(&mut data, s);
                TRANSACTION_STATE
            }
            SessionChange::Unknown { kind, data: raw } => {
                data.put_slice(raw);
                kind
            }
        };
        dst.reserve(1 + lenenc_int_len(data.len() as u64) + data.len());
        dst.put_u8(kind);
        put_lenenc_int(dst, data.len() as u64);
        dst.put_slice(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mariadb_block_with_several_variables() {
        // SET NAMES latin1 plus USE shop, as MariaDB 10.11 reports them.
        let mut block = Vec::new();
        for (name, value) in [
            (&b"character_set_client"[..], &b"latin1"[..]),
            (b"character_set_connection", b"latin1"),
        ] {
            block.push(0);
            block.push((2 + name.len() + value.len()) as u8);
            block.push(name.len() as u8);
            block.extend_from_slice(name);
            block.push(value.len() as u8);
            block.extend_from_slice(value);
        }
        block.extend_from_slice(&[1, 5, 4, b's', b'h', b'o', b'p']);
        block.extend_from_slice(&[2, 2, 1, b'1']);
        block.extend_from_slice(&[5, 9, 8, b'T', b'_', b'_', b'_', b'W', b'_', b'_', b'_']);
        block.extend_from_slice(&[3, 4, 0, 2, b'0', b'-']);
        block.extend_from_slice(&[9, 2, 0xAB, 0xCD]);
        let got: Vec<_> = session_changes(&block).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                SessionChange::SystemVariable {
                    name: b"character_set_client",
                    value: b"latin1"
                },
                SessionChange::SystemVariable {
                    name: b"character_set_connection",
                    value: b"latin1"
                },
                SessionChange::Schema(b"shop"),
                SessionChange::StateChange(true),
                SessionChange::TransactionState(b"T___W___"),
                SessionChange::Gtids(b"0-"),
                SessionChange::Unknown {
                    kind: 9,
                    data: &[0xAB, 0xCD]
                },
            ]
        );
        let mut out = BytesMut::new();
        for c in &got {
            c.encode(&mut out);
        }
        assert_eq!(&out[..], &block[..]);
    }

    #[test]
    fn stops_after_error() {
        let block = [1, 9, 4, b'a'];
        let mut it = session_changes(&block);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // Inner data shorter than its own fields.
        let block = [0, 2, 5, b'a'];
        assert!(session_changes(&block).next().unwrap().is_err());
        assert!(session_changes(&[]).next().is_none());
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..300)
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec((0u8..12, bytes(), bytes(), any::<bool>()), 0..6)) {
            let changes: Vec<SessionChange<'_>> = entries
                .iter()
                .map(|(kind, a, b, flag)| match kind {
                    0 => SessionChange::SystemVariable { name: a, value: b },
                    1 => SessionChange::Schema(a),
                    2 => SessionChange::StateChange(*flag),
                    3 => SessionChange::Gtids(a),
                    4 => SessionChange::TransactionCharacteristics(a),
                    5 => SessionChange::TransactionState(a),
                    k => SessionChange::Unknown { kind: *k, data: a },
                })
                .collect();
            let mut block = BytesMut::new();
            for c in &changes {
                c.encode(&mut block);
            }
            let got: Vec<_> = session_changes(&block).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(got, changes);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            for _ in session_changes(&data) {}
        }
    }
}
