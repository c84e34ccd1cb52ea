//! The server greeting (Handshake v10), including MariaDB's extended capabilities.

use bytes::{BufMut, Bytes, BytesMut};

use super::put_cstr;
use crate::protocol::buf::Reader;
use crate::protocol::constants::{CLIENT_MYSQL, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION};
use crate::protocol::ProtocolError;

const PROTOCOL_V10: u8 = 10;
const SCRAMBLE_PART1: usize = 8;
/// Scramble part 2 is at least 13 bytes on the wire (12 + NUL for 20-byte scrambles).
const SCRAMBLE_PART2_MIN: usize = 13;

/// Handshake v10, the first packet a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    pub protocol_version: u8,
    pub server_version: Bytes,
    pub connection_id: u32,
    /// Part 1 (8 bytes) and part 2 (usually 12) joined, without the trailing NUL.
    pub scramble: Vec<u8>,
    pub capabilities: u32,
    pub charset: u8,
    pub status: u16,
    /// MariaDB extended capabilities; meaningful only when `capabilities` lacks
    /// `CLIENT_MYSQL` (a MariaDB server), otherwise 0.
    pub mariadb_caps: u32,
    /// Empty when the server does not announce `CLIENT_PLUGIN_AUTH`.
    pub auth_plugin: Bytes,
}

impl ServerHandshake {
    /// Parses a Handshake v10 payload. An ERR packet (first byte 0xFF) is the
    /// caller's to detect first; here it is `Malformed`.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let protocol_version = r.u8()?;
        if protocol_version != PROTOCOL_V10 {
            return Err(ProtocolError::Malformed {
                what: "handshake protocol version is not 10",
            });
        }
        let server_version = Bytes::copy_from_slice(r.null_terminated()?);
        let connection_id = r.u32()?;
        let mut scramble = r.take(SCRAMBLE_PART1)?.to_vec();
        r.skip(1)?;
        let caps_low = u32::from(r.u16()?);
        let charset = r.u8()?;
        let status = r.u16()?;
        let capabilities = caps_low | (u32::from(r.u16()?) << 16);
        let scramble_len = usize::from(r.u8()?);
        r.skip(6)?;
        let extended = r.u32()?;
        let mariadb_caps = if capabilities & CLIENT_MYSQL == 0 {
            extended
        } else {
            0
        };
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let part2_len = scramble_len
                .saturating_sub(SCRAMBLE_PART1)
                .max(SCRAMBLE_PART2_MIN);
            let part2 = r.take(part2_len)?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
        }
        let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            // Some servers omit the final NUL.
            Bytes::copy_from_slice(r.null_terminated_or_rest())
        } else {
            Bytes::new()
        };
        Ok(ServerHandshake {
            protocol_version,
            server_version,
            connection_id,
            scramble,
            capabilities,
            charset,
            status,
            mariadb_caps,
            auth_plugin,
        })
    }

    /// Writes the payload. `mariadb_caps` goes into the last 4 reserved bytes
    /// iff `capabilities` lacks `CLIENT_MYSQL`. Part 2 of the scramble is written
    /// only with `CLIENT_SECURE_CONNECTION`, the plugin name only with
    /// `CLIENT_PLUGIN_AUTH`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let (part1, part2) = self
            .scramble
            .split_at(self.scramble.len().min(SCRAMBLE_PART1));
        dst.put_u8(self.protocol_version);
        put_cstr(dst, &self.server_version);
        dst.put_u32_le(self.connection_id);
        dst.put_slice(part1);
        dst.put_bytes(0, SCRAMBLE_PART1 - part1.len());
        dst.put_u8(0);
        dst.put_u16_le(self.capabilities as u16);
        dst.put_u8(self.charset);
        dst.put_u16_le(self.status);
        dst.put_u16_le((self.capabilities >> 16) as u16);
        let scramble_len = if self.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            u8::try_from(self.scramble.len() + 1).unwrap_or(u8::MAX)
        } else {
            0
        };
        dst.put_u8(scramble_len);
        dst.put_bytes(0, 6);
        if self.capabilities & CLIENT_MYSQL == 0 {
            dst.put_u32_le(self.mariadb_caps);
        } else {
            dst.put_u32_le(0);
        }
        if self.capabilities & CLIENT_SECURE_CONNECTION != 0 {
            put_cstr(dst, part2);
            // Pad so the reader's max(13, len - 8) rule finds the whole field.
            let wire_len =
                (usize::from(scramble_len).saturating_sub(SCRAMBLE_PART1)).max(SCRAMBLE_PART2_MIN);
            dst.put_bytes(0, wire_len.saturating_sub(part2.len() + 1));
        }
        if self.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            put_cstr(dst, &self.auth_plugin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::*;
    use proptest::prelude::*;

    /// A MariaDB 10.11 greeting, built field by field from the protocol docs.
    fn mariadb_greeting() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&0xF7FEu16.to_le_bytes()); // caps low: bit 0 clear
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&0x81BFu16.to_le_bytes()); // caps high
        p.push(21);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&0x1Du32.to_le_bytes()); // MariaDB extended caps
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn parses_mariadb_greeting() {
        let hs = ServerHandshake::parse(&mariadb_greeting()).unwrap();
        assert_eq!(&hs.server_version[..], b"5.5.5-10.11.6-MariaDB");
        assert_eq!(hs.connection_id, 42);
        assert_eq!(hs.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(hs.capabilities, 0x81BF_F7FE);
        assert_eq!(hs.capabilities & CLIENT_MYSQL, 0);
        assert_ne!(hs.capabilities & CLIENT_PLUGIN_AUTH, 0);
        assert_eq!(hs.charset, 45);
        assert_eq!(hs.status, SERVER_STATUS_AUTOCOMMIT);
        assert_eq!(hs.mariadb_caps, 0x1D);
        assert_eq!(&hs.auth_plugin[..], NATIVE_PASSWORD.as_bytes());
        let mut out = BytesMut::new();
        hs.encode(&mut out);
        assert_eq!(&out[..], &mariadb_greeting()[..]);
    }

    #[test]
    fn mysql_server_ignores_reserved_bytes() {
        let mut p = mariadb_greeting();
        let caps_low = p.iter().position(|&b| b == 0xFE).unwrap();
        p[caps_low] = 0xFF; // set CLIENT_MYSQL
        let hs = ServerHandshake::parse(&p).unwrap();
        assert_eq!(hs.mariadb_caps, 0);
    }

    #[test]
    fn rejects_err_and_truncation() {
        assert!(matches!(
            ServerHandshake::parse(&[0xFF, 0x10, 0x04]),
            Err(ProtocolError::Malformed { .. })
        ));
        let p = mariadb_greeting();
        for cut in 0..p.len() - 25 {
            assert!(ServerHandshake::parse(&p[..cut]).is_err(), "cut {cut}");
        }
    }

    fn handshake_strategy() -> impl Strategy<Value = ServerHandshake> {
        (
            proptest::collection::vec(1u8..=255, 0..40),
            any::<u32>(),
            any::<[u8; 20]>(),
            any::<u32>(),
            any::<(u8, u16, u32)>(),
            proptest::collection::vec(1u8..=255, 0..30),
        )
            .prop_map(
                |(version, id, scramble, caps, (charset, status, mcaps), plugin)| {
                    let caps = caps | CLIENT_SECURE_CONNECTION;
                    ServerHandshake {
                        protocol_version: 10,
                        server_version: version.into(),
                        connection_id: id,
                        scramble: scramble.to_vec(),
                        capabilities: caps,
                        charset,
                        status,
                        mariadb_caps: if caps & CLIENT_MYSQL == 0 { mcaps } else { 0 },
                        auth_plugin: if caps & CLIENT_PLUGIN_AUTH != 0 {
                            plugin.into()
                        } else {
                            Bytes::new()
                        },
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(hs in handshake_strategy()) {
            let mut out = BytesMut::new();
            hs.encode(&mut out);
            prop_assert_eq!(ServerHandshake::parse(&out).unwrap(), hs);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = ServerHandshake::parse(&data);
        }
    }
}
