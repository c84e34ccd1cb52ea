//! Connection attributes (the HandshakeResponse's `key, value` block, both
//! length-encoded), read without copying: what a client says it is.

use crate::protocol::buf::Reader;

/// The value of attribute `key` (e.g. `_client_name`), if the block holds it. A
/// malformed block yields what was read before the damage.
pub fn connect_attr<'a>(attrs: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut r = Reader::new(attrs);
    while !r.is_empty() {
        let k = r.lenenc_bytes().ok()?;
        let v = r.lenenc_bytes().ok()?;
        if k == key {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::buf::put_lenenc_bytes;
    use bytes::BytesMut;

    fn block(pairs: &[(&[u8], &[u8])]) -> BytesMut {
        let mut out = BytesMut::new();
        for (k, v) in pairs {
            put_lenenc_bytes(&mut out, k);
            put_lenenc_bytes(&mut out, v);
        }
        out
    }

    #[test]
    fn finds_values() {
        let b = block(&[
            (b"_client_name", b"libmysql"),
            (b"_client_version", b"9.7.4"),
        ]);
        assert_eq!(connect_attr(&b, b"_client_name"), Some(&b"libmysql"[..]));
        assert_eq!(connect_attr(&b, b"_client_version"), Some(&b"9.7.4"[..]));
        assert_eq!(connect_attr(&b, b"_pid"), None);
        assert_eq!(connect_attr(&[], b"_pid"), None);
    }

    #[test]
    fn damage_stops_the_search() {
        let mut b = block(&[(b"a", b"1")]);
        b.extend_from_slice(&[5, b'x']);
        assert_eq!(connect_attr(&b, b"a"), Some(&b"1"[..]));
        assert_eq!(connect_attr(&b, b"x"), None);
        assert_eq!(connect_attr(&[0xFC], b"a"), None);
    }
}
