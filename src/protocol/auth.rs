//! `mysql_native_password` arithmetic: the stored hash, the client token, and the
//! proxy-side check that recovers SHA1(password) from a token.
//!
//! stored = SHA1(SHA1(pw)); token = SHA1(pw) XOR SHA1(scramble ‖ stored).
//! Knowing `stored`, a proxy computes X = token XOR SHA1(scramble ‖ stored) and
//! accepts iff SHA1(X) = stored; X = SHA1(pw) then lets it log in to backends.

use rand::Rng;
use sha1::{Digest, Sha1};

use super::ProtocolError;

/// SHA1(password).
pub fn sha1_password(pw: &[u8]) -> [u8; 20] {
    Sha1::digest(pw).into()
}

/// The stored hash SHA1(SHA1(pw)), from SHA1(pw).
pub fn native_hash_from_sha1(sha1_pw: &[u8; 20]) -> [u8; 20] {
    Sha1::digest(sha1_pw).into()
}

fn scrambled_mask(scramble: &[u8], stored: &[u8; 20]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stored);
    h.finalize().into()
}

fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// The token a client sends for `scramble`, given SHA1(pw).
pub fn native_token(sha1_pw: &[u8; 20], scramble: &[u8]) -> [u8; 20] {
    let stored = native_hash_from_sha1(sha1_pw);
    xor(sha1_pw, &scrambled_mask(scramble, &stored))
}

/// Checks `token` against the `stored` hash; on success returns SHA1(pw).
///
/// Returns `None` when the token is not 20 bytes or does not match. The empty
/// password (empty token) is the caller's case to handle.
pub fn native_verify(token: &[u8], scramble: &[u8], stored: &[u8; 20]) -> Option<[u8; 20]> {
    let token: &[u8; 20] = token.try_into().ok()?;
    let candidate = xor(token, &scrambled_mask(scramble, stored));
    (native_hash_from_sha1(&candidate) == *stored).then_some(candidate)
}

/// Parses `*` followed by 40 hex digits (either case), as in `mysql.user`.
pub fn parse_native_hash(s: &str) -> Result<[u8; 20], ProtocolError> {
    let hex_part = s.strip_prefix('*').ok_or(ProtocolError::Malformed {
        what: "native password hash must start with '*'",
    })?;
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| ProtocolError::Malformed {
        what: "native password hash must be '*' and 40 hex digits",
    })?;
    Ok(out)
}

/// Formats a stored hash as `*` + 40 uppercase hex digits.
pub fn format_native_hash(h: &[u8; 20]) -> String {
    format!("*{}", hex::encode_upper(h))
}

/// A fresh 20-byte scramble of printable-range bytes (1..=127, never NUL or
/// `$`), as servers generate: clients and plugins treat it as a C string.
pub fn new_scramble() -> [u8; 20] {
    let mut rng = rand::thread_rng();
    let mut out = [0u8; 20];
    for b in &mut out {
        *b = loop {
            let c: u8 = rng.gen_range(1..=127);
            if c != b'$' {
                break c;
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_hash_of_password() {
        // MySQL's documented PASSWORD('password'); also SHA1(SHA1("password")).
        let stored = native_hash_from_sha1(&sha1_password(b"password"));
        assert_eq!(
            format_native_hash(&stored),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        assert_eq!(
            parse_native_hash("*2470c0c06dee42fd1618bb99005adca2ec9d1e19").unwrap(),
            stored
        );
    }

    #[test]
    fn bad_hash_strings() {
        for s in [
            "",
            "2470C0C06DEE42FD1526AA9ED6B4F9C2EC1D0497",
            "*2470C0C06DEE42FD1526AA9ED6B4F9C2EC1D049",
            "*2470C0C06DEE42FD1526AA9ED6B4F9C2EC1D04977",
            "*2470C0C06DEE42FD1526AA9ED6B4F9C2EC1D049Z",
            "*é470C0C06DEE42FD1526AA9ED6B4F9C2EC1D049",
        ] {
            assert!(parse_native_hash(s).is_err(), "{s}");
        }
    }

    #[test]
    fn verify_rejects_wrong_password_and_length() {
        let scramble = new_scramble();
        let stored = native_hash_from_sha1(&sha1_password(b"right"));
        let wrong = native_token(&sha1_password(b"wrong"), &scramble);
        assert_eq!(native_verify(&wrong, &scramble, &stored), None);
        assert_eq!(native_verify(&[], &scramble, &stored), None);
        assert_eq!(native_verify(&[0; 21], &scramble, &stored), None);
    }

    #[test]
    fn scramble_bytes_are_safe() {
        for _ in 0..100 {
            assert!(new_scramble()
                .iter()
                .all(|&b| (1..=127).contains(&b) && b != b'$'));
        }
    }

    proptest! {
        #[test]
        fn verify_round_trip(pw in proptest::collection::vec(any::<u8>(), 1..40), scramble in any::<[u8; 20]>()) {
            let sha = sha1_password(&pw);
            let stored = native_hash_from_sha1(&sha);
            let token = native_token(&sha, &scramble);
            prop_assert_eq!(native_verify(&token, &scramble, &stored), Some(sha));
        }

        #[test]
        fn hash_format_round_trip(h in any::<[u8; 20]>()) {
            prop_assert_eq!(parse_native_hash(&format_native_hash(&h)).unwrap(), h);
            prop_assert_eq!(parse_native_hash(&format_native_hash(&h).to_lowercase()).unwrap(), h);
        }
    }
}
