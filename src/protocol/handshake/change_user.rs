//! `COM_CHANGE_USER`: re-authentication inside an open session.

use bytes::{BufMut, Bytes, BytesMut};

use super::put_cstr;
use crate::protocol::buf::{put_lenenc_bytes, Reader};
use crate::protocol::constants::{
    CLIENT_CONNECT_ATTRS, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION, COM_CHANGE_USER,
    UTF8MB4_GENERAL_CI,
};
use crate::protocol::ProtocolError;

/// The fields of `COM_CHANGE_USER`; the optional tail (charset, plugin,
/// attributes) is present only when the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub user: Bytes,
    pub auth_response: Bytes,
    pub database: Bytes,
    pub charset: Option<u16>,
    pub auth_plugin: Option<Bytes>,
    /// The raw attribute block, without its lenenc length prefix.
    pub connect_attrs: Option<Bytes>,
}

impl ChangeUser {
    /// Parses the payload after the command byte, interpreted with the
    /// capabilities the client announced at connect time.
    pub fn parse(payload: &[u8], client_caps: u32) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let user = Bytes::copy_from_slice(r.null_terminated()?);
        let auth_response = if client_caps & CLIENT_SECURE_CONNECTION != 0 {
            let len = usize::from(r.u8()?);
            r.take(len)?
        } else {
            r.null_terminated()?
        };
        let auth_response = Bytes::copy_from_slice(auth_response);
        let database = Bytes::copy_from_slice(r.null_terminated_or_rest());
        let charset = if r.is_empty() { None } else { Some(r.u16()?) };
        let auth_plugin = (client_caps & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty())
            .then(|| Bytes::copy_from_slice(r.null_terminated_or_rest()));
        let connect_attrs = if client_caps & CLIENT_CONNECT_ATTRS != 0 && !r.is_empty() {
            Some(Bytes::copy_from_slice(r.lenenc_bytes()?))
        } else {
            None
        };
        Ok(ChangeUser {
            user,
            auth_response,
            database,
            charset,
            auth_plugin,
            connect_attrs,
        })
    }

    /// Writes `COM_CHANGE_USER` (0x11) and the fields. The auth response has a
    /// 1-byte length (truncated to 255 bytes) with `CLIENT_SECURE_CONNECTION`,
    /// else is NUL-terminated. A later field forces the earlier optional ones
    /// out: the charset defaults to utf8mb4_general_ci and the plugin to empty.
    pub fn encode(&self, dst: &mut BytesMut, client_caps: u32) {
        let plugin = self
            .auth_plugin
            .as_deref()
            .filter(|_| client_caps & CLIENT_PLUGIN_AUTH != 0);
        let attrs = self
            .connect_attrs
            .as_deref()
            .filter(|_| client_caps & CLIENT_CONNECT_ATTRS != 0);
        dst.put_u8(COM_CHANGE_USER);
        put_cstr(dst, &self.user);
        if client_caps & CLIENT_SECURE_CONNECTION != 0 {
            let auth = self.auth_response.get(..255).unwrap_or(&self.auth_response);
            dst.put_u8(auth.len() as u8);
            dst.put_slice(auth);
        } else {
            put_cstr(dst, &self.auth_response);
        }
        put_cstr(dst, &self.database);
        if self.charset.is_none() && plugin.is_none() && attrs.is_none() {
            return;
        }
        dst.put_u16_le(self.charset.unwrap_or(u16::from(UTF8MB4_GENERAL_CI)));
        if client_caps & CLIENT_PLUGIN_AUTH != 0 && (plugin.is_some() || attrs.is_some()) {
            put_cstr(dst, plugin.unwrap_or_default());
        }
        if let Some(attrs) = attrs {
            put_lenenc_bytes(dst, attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::*;
    use proptest::prelude::*;

    const CAPS: u32 =
        CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS;

    #[test]
    fn parses_full_change_user() {
        let mut p = b"bob\0".to_vec();
        p.push(20);
        p.extend_from_slice(&[9; 20]);
        p.extend_from_slice(b"db1\0");
        p.extend_from_slice(&45u16.to_le_bytes());
        p.extend_from_slice(b"mysql_native_password\0");
        p.extend_from_slice(&[3, 1, b'k', 0]);
        let cu = ChangeUser::parse(&p, CAPS).unwrap();
        assert_eq!(&cu.user[..], b"bob");
        assert_eq!(&cu.auth_response[..], &[9; 20]);
        assert_eq!(&cu.database[..], b"db1");
        assert_eq!(cu.charset, Some(45));
        assert_eq!(cu.auth_plugin.as_deref(), Some(NATIVE_PASSWORD.as_bytes()));
        assert_eq!(cu.connect_attrs.as_deref(), Some(&[1, b'k', 0][..]));
        let mut out = BytesMut::new();
        cu.encode(&mut out, CAPS);
        assert_eq!(out[0], COM_CHANGE_USER);
        assert_eq!(&out[1..], &p[..]);
    }

    #[test]
    fn minimal_and_truncated() {
        let cu = ChangeUser::parse(b"u\0\0", CAPS).unwrap();
        assert_eq!(
            (&cu.user[..], cu.auth_response.len(), cu.charset),
            (&b"u"[..], 0, None)
        );
        assert!(ChangeUser::parse(b"u\0\x05ab", CAPS).is_err());
        assert!(ChangeUser::parse(b"u\0\0db\0\x2d", CAPS).is_err());
        let cu = ChangeUser::parse(b"u\0pw\0db\0", 0).unwrap();
        assert_eq!(&cu.auth_response[..], b"pw");
    }

    fn cstr() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(1u8..=255, 0..20).prop_map(Bytes::from)
    }

    prop_compose! {
        fn change_user_strategy()(
            caps in any::<u32>(),
            user in cstr(),
            auth in proptest::collection::vec(any::<u8>(), 0..=255),
            cstr_auth in cstr(),
            database in cstr(),
            tail in 0usize..4,
            charset in any::<u16>(),
            plugin in cstr(),
            attrs in proptest::collection::vec(any::<u8>(), 0..40),
        ) -> (ChangeUser, u32) {
            let secure = caps & CLIENT_SECURE_CONNECTION != 0;
            // Canonical form: the optional tail is a prefix of (charset, plugin, attrs),
            // each present only when its capability allows it.
            let has_plugin = tail >= 2 && caps & CLIENT_PLUGIN_AUTH != 0;
            let has_attrs = tail >= 3 && caps & CLIENT_CONNECT_ATTRS != 0;
            let plugin_forced = has_attrs && caps & CLIENT_PLUGIN_AUTH != 0;
            let cu = ChangeUser {
                user,
                auth_response: if secure { auth.into() } else { cstr_auth },
                database,
                charset: (tail >= 1 || has_plugin || has_attrs).then_some(charset),
                auth_plugin: (has_plugin || plugin_forced).then_some(plugin),
                connect_attrs: has_attrs.then(|| attrs.into()),
            };
            (cu, caps)
        }
    }

    proptest! {
        #[test]
        fn round_trip((cu, caps) in change_user_strategy()) {
            let mut out = BytesMut::new();
            cu.encode(&mut out, caps);
            prop_assert_eq!(out[0], COM_CHANGE_USER);
            prop_assert_eq!(ChangeUser::parse(&out[1..], caps).unwrap(), cu);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), caps in any::<u32>()) {
            let _ = ChangeUser::parse(&data, caps);
        }
    }
}
