//! `caching_sha2_password` arithmetic and state bytes: the fast-path token, its check
//! given the password, and the full-path message for a plaintext connection.
//!
//! Fast path: token = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ scramble); the
//! server (or a proxy holding the password) answers `0x01 0x03` and then OK.
//! Full path (the server answers `0x01 0x04`): over plaintext the client asks for the
//! server's RSA key with `0x02` and sends (pw ‖ NUL) XOR scramble (repeated),
//! encrypted with RSA-OAEP (SHA-1 and MGF1-SHA-1, as MySQL uses). An empty password is
//! an empty answer, or the single NUL byte MySQL's client library sends.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::ProtocolError;

/// The header of AuthMoreData packets (`0x01` + data).
pub const MORE_DATA: u8 = 0x01;
/// Client → server: "send me your RSA public key".
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
/// Server → client after `0x01`: the fast-path answer was right; OK follows.
pub const FAST_AUTH_OK: u8 = 0x03;
/// Server → client after `0x01`: the server has no cached hash; send the password.
pub const PERFORM_FULL_AUTH: u8 = 0x04;

/// The AuthMoreData payload that tells a client its fast-path answer was accepted.
pub const FAST_AUTH_OK_PAYLOAD: [u8; 2] = [MORE_DATA, FAST_AUTH_OK];

/// What a server said with an AuthMoreData packet during caching_sha2 authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoreData<'a> {
    FastAuthOk,
    PerformFullAuth,
    /// Anything else: after a `0x02` request, the PEM public key.
    Data(&'a [u8]),
}

impl<'a> MoreData<'a> {
    /// Reads an AuthMoreData payload (`0x01` + data); `None` when it is not one.
    pub fn parse(payload: &'a [u8]) -> Option<Self> {
        match payload {
            [MORE_DATA, FAST_AUTH_OK] => Some(MoreData::FastAuthOk),
            [MORE_DATA, PERFORM_FULL_AUTH] => Some(MoreData::PerformFullAuth),
            [MORE_DATA, rest @ ..] => Some(MoreData::Data(rest)),
            _ => None,
        }
    }
}

/// The fast-path token a client sends for `scramble`.
pub fn token(pw: &[u8], scramble: &[u8]) -> [u8; 32] {
    let stage1: [u8; 32] = Sha256::digest(pw).into();
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(scramble);
    let mask: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 32];
    for ((o, a), b) in out.iter_mut().zip(stage1).zip(mask) {
        *o = a ^ b;
    }
    out
}

/// Whether `answer` is what a client sends for the empty password.
pub fn is_empty_answer(answer: &[u8]) -> bool {
    matches!(answer, [] | [0])
}

/// Checks a client's fast-path answer against the password.
pub fn verify(answer: &[u8], scramble: &[u8], pw: &[u8]) -> bool {
    if pw.is_empty() {
        return is_empty_answer(answer);
    }
    same_bytes(answer, &token(pw, scramble))
}

/// Equal bytes, compared without an early exit, so timing does not tell how much
/// matched.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// (pw ‖ NUL) XOR scramble, the scramble repeated as often as needed: what is
/// encrypted for the full path.
pub fn obfuscate(pw: &[u8], scramble: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pw.len() + 1);
    out.extend_from_slice(pw);
    out.push(0);
    if !scramble.is_empty() {
        for (o, s) in out.iter_mut().zip(scramble.iter().cycle()) {
            *o ^= s;
        }
    }
    out
}

/// The full-path answer over plaintext: the obfuscated password encrypted with the
/// server's public key (`pem`, as the server sent it after `0x02`), RSA-OAEP/SHA-1.
pub fn encrypt_password(pw: &[u8], scramble: &[u8], pem: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let bad_key = ProtocolError::Malformed {
        what: "the server's RSA public key is not a PEM RSA key",
    };
    let text = std::str::from_utf8(pem).map_err(|_| ProtocolError::Malformed {
        what: "the server's RSA public key is not text",
    })?;
    let text = text.trim_end_matches('\0').trim();
    let key = RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
        .map_err(|_| bad_key)?;
    key.encrypt(
        &mut rand::thread_rng(),
        Oaep::new::<sha1::Sha1>(),
        &obfuscate(pw, scramble),
    )
    .map_err(|_| ProtocolError::Malformed {
        what: "the password is too long for the server's RSA key",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::RsaPrivateKey;

    const SCRAMBLE: [u8; 20] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];

    const TEST_PRIVATE_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQCtf0Pky19lMEpoYjUnyatIaF9xMpjo6ndQ45lJxKBzbn4czfj0
nnRY0s9c+hVLyht7S0AGNtqar2AZWoh5CXh9ctJuNaIBAcUlPnX4UnipSUM6yMZk
3Oip8FsMdsiAZPdoVZDxTyH/58txqvNanL/4isJvx2TzHBCPQdz2zbGjyQIDAQAB
AoGBAJ9p1T9PYoq+UVASFJdHZNs2E6QWAovYi+NGDR3LzkXh23yqALr7MRpAMQpU
OucVgCTMYrqTAk+pHpqNJeJYwly1DLnNgCQE172hvhrP7y+S9z/a1aWfzdqMAOFG
AyQ8ab/tyvpOYPW+xtkEvYu0/qLJOwRe2LYE5tZY92DI9IRlAkEA5wSEhVMDQqqx
HGr598PwORD+jpFPK2LAH5UPf42+kmwhXVE5iFu+SL2WjIb8TCzD8GXCkt2lNoSr
oIWTppQWswJBAMBCWiJnqvCegEBY5n7z1MbboyEoGFgmgjU5r5R3THeqDQW2j/Ln
7RByQERuhIXm2b61B1Mbk789GVRCE59aeZMCQD/Uo7ki4re86grsE/09ilZ6N5u0
0qcuNd+EFDAuPgW/Esjx9G+UydLXb42MjpGNnOYDd+uUil2x8qn7vnw8VrkCQGlo
97o9VH+wp2igVV/tmA+fhIU9UnuiQWmlQxsHfaluVs13Ft17Q4Ls4UejwI0Z0PC6
mFV8nTkQ6r5DrDaGiHkCQQDa3YMKMDuw73lWSIPxkhUTNFhIqFa4rITSkncsbb74
nYctgFBBBMfMZWe0kZ/mJYVhRsImEK9UV9Z3lDkL6rkZ
-----END RSA PRIVATE KEY-----
";

    const TEST_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCtf0Pky19lMEpoYjUnyatIaF9x
Mpjo6ndQ45lJxKBzbn4czfj0nnRY0s9c+hVLyht7S0AGNtqar2AZWoh5CXh9ctJu
NaIBAcUlPnX4UnipSUM6yMZk3Oip8FsMdsiAZPdoVZDxTyH/58txqvNanL/4isJv
x2TzHBCPQdz2zbGjyQIDAQAB
-----END PUBLIC KEY-----
";

    #[test]
    fn fast_token_matches_an_independent_computation() {
        assert_eq!(
            hex::encode(token(b"apppw", &SCRAMBLE)),
            "04c582badddcb5b1424a585cfc2b0c3cdeec6d229562f8b197ab80ece68ad552"
        );
    }

    #[test]
    fn verify_accepts_only_the_password() {
        let t = token(b"apppw", &SCRAMBLE);
        assert!(verify(&t, &SCRAMBLE, b"apppw"));
        assert!(!verify(&t, &SCRAMBLE, b"apppw2"));
        assert!(!verify(&t[..31], &SCRAMBLE, b"apppw"));
        assert!(!verify(&[], &SCRAMBLE, b"apppw"));
        assert!(!verify(&[0], &SCRAMBLE, b"apppw"));
        let other = token(b"apppw", &[9; 20]);
        assert!(!verify(&other, &SCRAMBLE, b"apppw"));
    }

    #[test]
    fn empty_password_answers() {
        assert!(verify(&[], &SCRAMBLE, b""));
        assert!(verify(&[0], &SCRAMBLE, b""));
        assert!(!verify(&token(b"", &SCRAMBLE), &SCRAMBLE, b""));
        assert!(!verify(&[1], &SCRAMBLE, b""));
    }

    #[test]
    fn obfuscation_matches_an_independent_computation() {
        assert_eq!(hex::encode(obfuscate(b"apppw", &SCRAMBLE)), "607273747206");
        assert_eq!(
            hex::encode(obfuscate(
                b"a much longer password than twenty bytes",
                &SCRAMBLE
            )),
            "60226e71666e276466646c697f2e7f716261647b736623706d6769287d7d6e6279772f726866766701"
        );
    }

    #[test]
    fn state_bytes() {
        assert_eq!(MoreData::parse(&[1, 3]), Some(MoreData::FastAuthOk));
        assert_eq!(MoreData::parse(&[1, 4]), Some(MoreData::PerformFullAuth));
        assert_eq!(
            MoreData::parse(b"\x01-----BEGIN"),
            Some(MoreData::Data(b"-----BEGIN"))
        );
        assert_eq!(MoreData::parse(&[0, 3]), None);
        assert_eq!(MoreData::parse(&[]), None);
        assert_eq!(FAST_AUTH_OK_PAYLOAD, [1, 3]);
    }

    #[test]
    fn encrypted_password_decrypts_with_the_private_key() {
        let private = RsaPrivateKey::from_pkcs1_pem(TEST_PRIVATE_KEY).unwrap();
        let mut pem = TEST_PUBLIC_KEY.as_bytes().to_vec();
        pem.push(0); // servers may send the key NUL-terminated
        let sealed = encrypt_password(b"apppw", &SCRAMBLE, &pem).unwrap();
        assert_eq!(sealed.len(), 128);
        let opened = private.decrypt(Oaep::new::<sha1::Sha1>(), &sealed).unwrap();
        assert_eq!(opened, obfuscate(b"apppw", &SCRAMBLE));
    }

    #[test]
    fn bad_keys_and_long_passwords_are_errors() {
        assert!(encrypt_password(b"pw", &SCRAMBLE, b"not a key").is_err());
        assert!(encrypt_password(b"pw", &SCRAMBLE, &[0xFF, 0xFE]).is_err());
        // 1024-bit key, OAEP/SHA-1: at most 128 - 42 = 86 bytes of message.
        let long = vec![b'x'; 100];
        assert!(encrypt_password(&long, &SCRAMBLE, TEST_PUBLIC_KEY.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn obfuscation_is_its_own_inverse(
            pw in proptest::collection::vec(any::<u8>(), 0..80),
            scramble in proptest::collection::vec(any::<u8>(), 1..30),
        ) {
            let once = obfuscate(&pw, &scramble);
            let mut twice = once.clone();
            for (o, s) in twice.iter_mut().zip(scramble.iter().cycle()) {
                *o ^= s;
            }
            prop_assert_eq!(&twice[..pw.len()], &pw[..]);
            prop_assert_eq!(twice.last(), Some(&0));
        }

        #[test]
        fn verify_round_trip(pw in proptest::collection::vec(any::<u8>(), 1..40), scramble in any::<[u8; 20]>()) {
            prop_assert!(verify(&token(&pw, &scramble), &scramble, &pw));
        }
    }
}
