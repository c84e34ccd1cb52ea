//! What the proxy knows of an account's password ([`Credential`]), and what it holds
//! after a client proved itself ([`Secret`]): the credential it logs in to backends
//! with. A password verifies and answers every plugin; a `mysql_native_password` hash
//! only native answers, and yields SHA1(pw), which only a native backend accepts.

use std::fmt;
use std::sync::Arc;

use super::auth::{native_hash_from_sha1, native_verify, sha1_password};
use super::caching_sha2;
use super::constants::{CACHING_SHA2, NATIVE_PASSWORD};

/// An authentication method the proxy checks or answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Native,
    CachingSha2,
}

impl Plugin {
    pub fn name(self) -> &'static str {
        match self {
            Plugin::Native => NATIVE_PASSWORD,
            Plugin::CachingSha2 => CACHING_SHA2,
        }
    }
}

/// An account's stored credential.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The account has no password.
    Empty,
    /// The password itself.
    Password(Arc<[u8]>),
    /// Only the `mysql_native_password` hash SHA1(SHA1(pw)).
    NativeHash([u8; 20]),
}

/// What a verified client lets the proxy log in to backends with.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// No password.
    Empty,
    /// The password (answers native and caching_sha2 servers).
    Password(Arc<[u8]>),
    /// SHA1(password), recovered from a native answer (answers native servers only).
    Sha1([u8; 20]),
}

impl Credential {
    /// From a password: the empty one means no password.
    pub fn from_password(pw: &[u8]) -> Self {
        if pw.is_empty() {
            Credential::Empty
        } else {
            Credential::Password(pw.into())
        }
    }

    /// Checks a `mysql_native_password` answer to `scramble`.
    pub fn verify_native(&self, token: &[u8], scramble: &[u8]) -> Option<Secret> {
        match self {
            Credential::Empty => token.is_empty().then_some(Secret::Empty),
            Credential::Password(pw) => {
                let stored = native_hash_from_sha1(&sha1_password(pw));
                native_verify(token, scramble, &stored).map(|_| Secret::Password(pw.clone()))
            }
            Credential::NativeHash(stored) => {
                native_verify(token, scramble, stored).map(Secret::Sha1)
            }
        }
    }

    /// Checks a `caching_sha2_password` fast-path answer to `scramble`; a native hash
    /// cannot check one.
    pub fn verify_sha2(&self, answer: &[u8], scramble: &[u8]) -> Option<Secret> {
        match self {
            Credential::Empty => caching_sha2::is_empty_answer(answer).then_some(Secret::Empty),
            Credential::Password(pw) => {
                caching_sha2::verify(answer, scramble, pw).then(|| Secret::Password(pw.clone()))
            }
            Credential::NativeHash(_) => None,
        }
    }

    /// Checks a password the client sent as it is (caching_sha2's full authentication,
    /// inside TLS). Against a native hash this recovers the password itself, which
    /// answers every plugin.
    pub fn verify_clear(&self, pw: &[u8]) -> Option<Secret> {
        match self {
            Credential::Empty => pw.is_empty().then_some(Secret::Empty),
            Credential::Password(stored) => {
                caching_sha2::same_bytes(stored, pw).then(|| Secret::Password(stored.clone()))
            }
            Credential::NativeHash(stored) => {
                let hash = native_hash_from_sha1(&sha1_password(pw));
                caching_sha2::same_bytes(&hash, stored).then(|| Secret::Password(pw.into()))
            }
        }
    }

    /// Checks an answer to `scramble` made with `plugin`.
    pub fn verify(&self, plugin: Plugin, answer: &[u8], scramble: &[u8]) -> Option<Secret> {
        match plugin {
            Plugin::Native => self.verify_native(answer, scramble),
            Plugin::CachingSha2 => self.verify_sha2(answer, scramble),
        }
    }

    /// Whether a `caching_sha2_password` answer can be checked.
    pub fn knows_password(&self) -> bool {
        !matches!(self, Credential::NativeHash(_))
    }
}

impl Secret {
    /// SHA1(pw) for a native answer; `None` for no password.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        match self {
            Secret::Empty => None,
            Secret::Password(pw) => Some(sha1_password(pw)),
            Secret::Sha1(s) => Some(*s),
        }
    }

    /// The password for a caching_sha2 answer: `Some(b"")` for no password, `None`
    /// when only SHA1(pw) is known.
    pub fn password(&self) -> Option<&[u8]> {
        match self {
            Secret::Empty => Some(b""),
            Secret::Password(pw) => Some(pw),
            Secret::Sha1(_) => None,
        }
    }
}

// Secrets stay out of logs and panics.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Empty => "Credential::Empty",
            Credential::Password(_) => "Credential::Password(..)",
            Credential::NativeHash(_) => "Credential::NativeHash(..)",
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Empty => "Secret::Empty",
            Secret::Password(_) => "Secret::Password(..)",
            Secret::Sha1(_) => "Secret::Sha1(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::native_token;

    const SCRAMBLE: [u8; 20] = [7; 20];

    #[test]
    fn a_password_verifies_both_plugins_and_is_kept() {
        let c = Credential::from_password(b"pw");
        let native = native_token(&sha1_password(b"pw"), &SCRAMBLE);
        assert_eq!(
            c.verify_native(&native, &SCRAMBLE),
            Some(Secret::Password(b"pw"[..].into()))
        );
        let sha2 = caching_sha2::token(b"pw", &SCRAMBLE);
        assert_eq!(
            c.verify_sha2(&sha2, &SCRAMBLE),
            Some(Secret::Password(b"pw"[..].into()))
        );
        assert_eq!(c.verify_sha2(&native, &SCRAMBLE), None);
        assert_eq!(c.verify_native(&sha2, &SCRAMBLE), None);
        assert!(c.knows_password());
    }

    #[test]
    fn a_hash_verifies_only_native_and_yields_sha1() {
        let sha1 = sha1_password(b"pw");
        let c = Credential::NativeHash(native_hash_from_sha1(&sha1));
        let native = native_token(&sha1, &SCRAMBLE);
        let secret = c.verify_native(&native, &SCRAMBLE).unwrap();
        assert_eq!(secret, Secret::Sha1(sha1));
        assert_eq!(secret.password(), None);
        assert_eq!(secret.sha1(), Some(sha1));
        assert_eq!(
            c.verify_sha2(&caching_sha2::token(b"pw", &SCRAMBLE), &SCRAMBLE),
            None
        );
        assert!(!c.knows_password());
    }

    #[test]
    fn no_password() {
        let c = Credential::from_password(b"");
        assert_eq!(c, Credential::Empty);
        assert_eq!(c.verify_native(&[], &SCRAMBLE), Some(Secret::Empty));
        assert_eq!(c.verify_sha2(&[0], &SCRAMBLE), Some(Secret::Empty));
        assert_eq!(c.verify_native(&[1; 20], &SCRAMBLE), None);
        assert_eq!(Secret::Empty.password(), Some(&b""[..]));
        assert_eq!(Secret::Empty.sha1(), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!(
            "{:?} {:?}",
            Credential::from_password(b"hunter2"),
            Secret::Password(b"hunter2"[..].into())
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_clear_password_is_checked_against_any_credential() {
        let hash = Credential::NativeHash(native_hash_from_sha1(&sha1_password(b"pw")));
        assert_eq!(
            hash.verify_clear(b"pw"),
            Some(Secret::Password(b"pw"[..].into()))
        );
        assert_eq!(hash.verify_clear(b"pW"), None);
        let pw = Credential::from_password(b"pw");
        assert!(pw.verify_clear(b"pw").is_some());
        assert!(pw.verify_clear(b"pw2").is_none());
        assert_eq!(Credential::Empty.verify_clear(b""), Some(Secret::Empty));
        assert_eq!(Credential::Empty.verify_clear(b"x"), None);
    }
}
