//! The client's HandshakeResponse41 and its 32-byte SSLRequest prefix, and the
//! framing capabilities a client must not ask for unless the server offered them.

use bytes::{BufMut, Bytes, BytesMut};

use super::put_cstr;
use crate::protocol::buf::{put_lenenc_bytes, Reader};
use crate::protocol::constants::{
    CLIENT_COMPRESS, CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_MYSQL,
    CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM,
};
use crate::protocol::ProtocolError;

/// The level MySQL clients send when told none.
const DEFAULT_ZSTD_LEVEL: u8 = 3;

/// Length of the fixed part: caps, max packet, charset, 19 filler + 4 MariaDB caps.
const FIXED_LEN: usize = 32;
const FILLER_LEN: usize = 19;

/// HandshakeResponse41, the client's answer to the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    /// From the last 4 filler bytes when `capabilities` lacks `CLIENT_MYSQL`, else 0.
    pub mariadb_caps: u32,
    pub user: Bytes,
    pub auth_response: Bytes,
    /// Only with `CLIENT_CONNECT_WITH_DB`.
    pub database: Option<Bytes>,
    /// Only with `CLIENT_PLUGIN_AUTH`.
    pub auth_plugin: Option<Bytes>,
    /// The raw attribute block, without its lenenc length prefix. Only with
    /// `CLIENT_CONNECT_ATTRS`.
    pub connect_attrs: Option<Bytes>,
    /// The zstd level the client asks for; only with `CLIENT_ZSTD_COMPRESSION_ALGORITHM`
    /// (MySQL), in the byte after the attributes.
    pub zstd_level: Option<u8>,
}

/// True for an SSLRequest: exactly the 32-byte fixed part, with `CLIENT_SSL`.
/// Also available as [`HandshakeResponse::is_ssl_request`].
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == FIXED_LEN
        && Reader::new(payload)
            .u32()
            .is_ok_and(|caps| caps & CLIENT_SSL != 0)
}

impl HandshakeResponse {
    /// True for an SSLRequest: exactly the 32-byte fixed part, with `CLIENT_SSL`.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        is_ssl_request(payload)
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32()?;
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::Malformed {
                what: "pre-4.1 handshake response",
            });
        }
        let max_packet = r.u32()?;
        let charset = r.u8()?;
        r.skip(FILLER_LEN)?;
        let extended = r.u32()?;
        let mariadb_caps = if capabilities & CLIENT_MYSQL == 0 {
            extended
        } else {
            0
        };
        let user = Bytes::copy_from_slice(r.null_terminated()?);
        let auth_response = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?
        } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let len = usize::from(r.u8()?);
            r.take(len)?
        } else {
            r.null_terminated()?
        };
        let auth_response = Bytes::copy_from_slice(auth_response);
        // Trailing optional fields may be missing even when flagged: tolerate it.
        let database = optional_cstr(&mut r, capabilities & CLIENT_CONNECT_WITH_DB != 0);
        let auth_plugin = optional_cstr(&mut r, capabilities & CLIENT_PLUGIN_AUTH != 0);
        let connect_attrs = if capabilities & CLIENT_CONNECT_ATTRS != 0 && !r.is_empty() {
            Some(Bytes::copy_from_slice(r.lenenc_bytes()?))
        } else {
            None
        };
        let zstd_level = if capabilities & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 {
            r.u8().ok()
        } else {
            None
        };
        Ok(HandshakeResponse {
            capabilities,
            max_packet,
            charset,
            mariadb_caps,
            user,
            auth_response,
            database,
            auth_plugin,
            connect_attrs,
            zstd_level,
        })
    }

    /// Writes the payload. Optional fields are written iff their capability is
    /// set (a `None` then becomes an empty value) and skipped otherwise. The auth
    /// response is lenenc with `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`, else
    /// 1-byte length with `CLIENT_SECURE_CONNECTION` (truncated to 255 bytes),
    /// else NUL-terminated.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.encode_fixed(dst);
        put_cstr(dst, &self.user);
        if self.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(dst, &self.auth_response);
        } else if self.capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let auth = self.auth_response.get(..255).unwrap_or(&self.auth_response);
            dst.put_u8(auth.len() as u8);
            dst.put_slice(auth);
        } else {
            put_cstr(dst, &self.auth_response);
        }
        if self.capabilities & CLIENT_CONNECT_WITH_DB != 0 {
            put_cstr(dst, self.database.as_deref().unwrap_or_default());
        }
        if self.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            put_cstr(dst, self.auth_plugin.as_deref().unwrap_or_default());
        }
        if self.capabilities & CLIENT_CONNECT_ATTRS != 0 {
            put_lenenc_bytes(dst, self.connect_attrs.as_deref().unwrap_or_default());
        }
        if self.capabilities & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 {
            dst.put_u8(self.zstd_level.unwrap_or(DEFAULT_ZSTD_LEVEL));
        }
    }

    /// Writes the SSLRequest that precedes this response on a TLS connection:
    /// the 32-byte fixed part (the caller makes sure `CLIENT_SSL` is set).
    pub fn encode_ssl_request(&self, dst: &mut BytesMut) {
        self.encode_fixed(dst);
    }

    fn encode_fixed(&self, dst: &mut BytesMut) {
        dst.put_u32_le(self.capabilities);
        dst.put_u32_le(self.max_packet);
        dst.put_u8(self.charset);
        dst.put_bytes(0, FILLER_LEN);
        if self.capabilities & CLIENT_MYSQL == 0 {
            dst.put_u32_le(self.mariadb_caps);
        } else {
            dst.put_u32_le(0);
        }
    }
}

/// Capabilities that change how every later byte is framed. A client that asks for
/// one the server did not offer, and then uses it (some compress whenever they asked,
/// without looking at the greeting), cannot be served by ignoring the bit: both sides
/// would wait on bytes the other reads differently.
const FRAMING_CAPS: [(u32, &str); 3] = [
    (CLIENT_COMPRESS, "compression (CLIENT_COMPRESS)"),
    (
        CLIENT_ZSTD_COMPRESSION_ALGORITHM,
        "zstd compression (CLIENT_ZSTD_COMPRESSION_ALGORITHM)",
    ),
    (CLIENT_SSL, "TLS (CLIENT_SSL)"),
];

/// What `requested` asks for among the framing capabilities that `offered` lacks, by
/// name; empty when the client can be served.
pub fn unoffered_framing(requested: u32, offered: u32) -> Vec<&'static str> {
    FRAMING_CAPS
        .iter()
        .filter(|(bit, _)| requested & bit != 0 && offered & bit == 0)
        .map(|(_, name)| *name)
        .collect()
}

/// A NUL-terminated trailing field that is `None` when not flagged or absent.
fn optional_cstr(r: &mut Reader<'_>, flagged: bool) -> Option<Bytes> {
    (flagged && !r.is_empty()).then(|| Bytes::copy_from_slice(r.null_terminated_or_rest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::*;
    use proptest::prelude::*;

    #[test]
    fn framing_capabilities_not_offered_are_named() {
        let offered = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
        assert!(unoffered_framing(offered, offered).is_empty());
        assert_eq!(
            unoffered_framing(offered | CLIENT_COMPRESS, offered),
            ["compression (CLIENT_COMPRESS)"]
        );
        assert_eq!(
            unoffered_framing(CLIENT_SSL | CLIENT_ZSTD_COMPRESSION_ALGORITHM, offered).len(),
            2
        );
        // Offered: the client may use it.
        assert!(unoffered_framing(CLIENT_COMPRESS, CLIENT_COMPRESS).is_empty());
        // Other bits the proxy did not offer are only dropped, as a server does.
        assert!(unoffered_framing(CLIENT_QUERY_ATTRIBUTES, offered).is_empty());
    }

    const MARIADB_CLIENT_CAPS: u32 = CLIENT_LONG_FLAG
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH
        | CLIENT_CONNECT_ATTRS
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CLIENT_SESSION_TRACK;

    fn captured_shape() -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&MARIADB_CLIENT_CAPS.to_le_bytes());
        p.extend_from_slice(&16_777_216u32.to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 19]);
        p.extend_from_slice(
            &(MARIADB_CLIENT_PROGRESS | MARIADB_CLIENT_STMT_BULK_OPERATIONS).to_le_bytes(),
        );
        p.extend_from_slice(b"app\0");
        p.push(20);
        p.extend_from_slice(&[7; 20]);
        p.extend_from_slice(b"shop\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p.extend_from_slice(&[10, 3, b'_', b'o', b's', 5, b'L', b'i', b'n', b'u', b'x']);
        p
    }

    #[test]
    fn parses_mariadb_client_response() {
        let p = captured_shape();
        assert!(!is_ssl_request(&p));
        let r = HandshakeResponse::parse(&p).unwrap();
        assert_eq!(r.capabilities, MARIADB_CLIENT_CAPS);
        assert_eq!(r.max_packet, 16_777_216);
        assert_eq!(r.charset, 45);
        assert_eq!(r.mariadb_caps, 5);
        assert_eq!(&r.user[..], b"app");
        assert_eq!(&r.auth_response[..], &[7; 20]);
        assert_eq!(r.database.as_deref(), Some(&b"shop"[..]));
        assert_eq!(r.auth_plugin.as_deref(), Some(NATIVE_PASSWORD.as_bytes()));
        assert_eq!(r.connect_attrs.as_ref().map(|a| a.len()), Some(10));
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(&out[..], &p[..]);
        let mut ssl = BytesMut::new();
        HandshakeResponse {
            capabilities: r.capabilities | CLIENT_SSL,
            ..r
        }
        .encode_ssl_request(&mut ssl);
        assert!(is_ssl_request(&ssl));
    }

    #[test]
    fn tolerates_missing_trailing_fields() {
        let p = captured_shape();
        let no_attrs = &p[..p.len() - 11];
        let r = HandshakeResponse::parse(no_attrs).unwrap();
        assert_eq!(r.connect_attrs, None);
        assert!(r.auth_plugin.is_some());
        let no_db = &p[..p.len() - 11 - 22 - 5];
        let r = HandshakeResponse::parse(no_db).unwrap();
        assert_eq!((r.database, r.auth_plugin), (None, None));
    }

    #[test]
    fn rejects_pre_41_and_truncation() {
        let mut p = captured_shape();
        p[1] &= !((CLIENT_PROTOCOL_41 >> 8) as u8);
        assert!(matches!(
            HandshakeResponse::parse(&p),
            Err(ProtocolError::Malformed {
                what: "pre-4.1 handshake response"
            })
        ));
        let p = captured_shape();
        assert!(HandshakeResponse::parse(&p[..40]).is_err());
        assert!(HandshakeResponse::parse(&p[..FIXED_LEN]).is_err());
    }

    #[test]
    fn ssl_request_detection() {
        let mut p = vec![0u8; 32];
        p[1] = (CLIENT_SSL >> 8) as u8;
        assert!(is_ssl_request(&p));
        assert!(!is_ssl_request(&p[..31]));
        p[1] = 0;
        assert!(!is_ssl_request(&p));
    }

    fn bytes_strategy(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn cstr_strategy() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(1u8..=255, 0..30).prop_map(Bytes::from)
    }

    prop_compose! {
        fn response_strategy()(
            caps in any::<u32>(),
            max_packet in any::<u32>(),
            charset in any::<u8>(),
            mcaps in any::<u32>(),
            user in cstr_strategy(),
            auth in bytes_strategy(300),
            cstr_auth in cstr_strategy(),
            database in cstr_strategy(),
            plugin in cstr_strategy(),
            attrs in bytes_strategy(300),
            level in any::<u8>(),
        ) -> HandshakeResponse {
            let caps = caps | CLIENT_PROTOCOL_41;
            let auth_response = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
                auth
            } else if caps & CLIENT_SECURE_CONNECTION != 0 {
                auth.slice(..auth.len().min(255))
            } else {
                cstr_auth
            };
            HandshakeResponse {
                capabilities: caps,
                max_packet,
                charset,
                mariadb_caps: if caps & CLIENT_MYSQL == 0 { mcaps } else { 0 },
                user,
                auth_response,
                database: (caps & CLIENT_CONNECT_WITH_DB != 0).then_some(database),
                auth_plugin: (caps & CLIENT_PLUGIN_AUTH != 0).then_some(plugin),
                connect_attrs: (caps & CLIENT_CONNECT_ATTRS != 0).then_some(attrs),
                zstd_level: (caps & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0).then_some(level),
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip(resp in response_strategy()) {
            let mut out = BytesMut::new();
            resp.encode(&mut out);
            prop_assert!(!is_ssl_request(&out));
            prop_assert_eq!(HandshakeResponse::parse(&out).unwrap(), resp);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = HandshakeResponse::parse(&data);
        }
    }
}
