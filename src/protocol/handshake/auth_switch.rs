//! AuthSwitchRequest (`0xFE` + plugin name + plugin data): the server asks the
//! client to authenticate again with another method.

use bytes::{BufMut, Bytes, BytesMut};

use super::put_cstr;
use crate::protocol::buf::Reader;
use crate::protocol::ProtocolError;

const AUTH_SWITCH: u8 = 0xFE;

/// An AuthSwitchRequest. `data` excludes the trailing NUL that servers append
/// to the scramble for `mysql_native_password` and `caching_sha2_password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin: Bytes,
    pub data: Bytes,
}

impl AuthSwitchRequest {
    /// Writes `0xFE`, the plugin name and NUL, then `data` and a NUL.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(AUTH_SWITCH);
        put_cstr(dst, &self.plugin);
        put_cstr(dst, &self.data);
    }

    /// Parses the payload; one trailing NUL of the plugin data is stripped
    /// (only the scramble-based plugins are expected here).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != AUTH_SWITCH {
            return Err(ProtocolError::Malformed {
                what: "auth switch request must start with 0xFE",
            });
        }
        let plugin = Bytes::copy_from_slice(r.null_terminated()?);
        let rest = r.rest();
        let data = rest.strip_suffix(&[0]).unwrap_or(rest);
        Ok(AuthSwitchRequest {
            plugin,
            data: Bytes::copy_from_slice(data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::NATIVE_PASSWORD;
    use proptest::prelude::*;

    #[test]
    fn native_switch_layout() {
        let mut expected = vec![0xFE];
        expected.extend_from_slice(b"mysql_native_password\0");
        expected.extend_from_slice(b"01234567890123456789\0");
        let req = AuthSwitchRequest::parse(&expected).unwrap();
        assert_eq!(&req.plugin[..], NATIVE_PASSWORD.as_bytes());
        assert_eq!(&req.data[..], b"01234567890123456789");
        let mut out = BytesMut::new();
        req.encode(&mut out);
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn rejects_other_headers_and_truncation() {
        assert!(AuthSwitchRequest::parse(&[0x00, b'a', 0]).is_err());
        assert!(AuthSwitchRequest::parse(&[0xFE, b'a']).is_err());
        assert!(AuthSwitchRequest::parse(&[]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(
            plugin in proptest::collection::vec(1u8..=255, 0..30),
            data in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let req = AuthSwitchRequest { plugin: plugin.into(), data: data.into() };
            let mut out = BytesMut::new();
            req.encode(&mut out);
            prop_assert_eq!(AuthSwitchRequest::parse(&out).unwrap(), req);
        }
    }
}
