//! Where a password in the config comes from — the key itself, a file or an
//! environment variable — shared by `[[users]]`, `[control]` and `[replication]`, and
//! the warning for a config file that holds a password in clear and that other
//! accounts can read.

use std::path::Path;

use super::{invalid, Config, ConfigError};

/// The password keys of one table, as written: at most one is given.
#[derive(Debug, Clone, Copy)]
pub struct PasswordKeys<'a> {
    pub password: Option<&'a str>,
    pub password_file: Option<&'a str>,
    pub password_env: Option<&'a str>,
}

impl PasswordKeys<'_> {
    /// How many of the three keys are given.
    pub fn given(&self) -> usize {
        [
            self.password.is_some(),
            self.password_file.is_some(),
            self.password_env.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count()
    }

    /// The password from whichever key is given (`None` when none is); `key` names
    /// the table in errors. The file is read now: one trailing newline (`\n` or
    /// `\r\n`) is not part of the password.
    pub fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ConfigError> {
        if let Some(pw) = self.password {
            return Ok(Some(pw.as_bytes().to_vec()));
        }
        if let Some(path) = self.password_file {
            let text = std::fs::read(path).map_err(|e| {
                invalid(
                    format!("{key}.password_file"),
                    format!("cannot read {path}: {e}"),
                )
            })?;
            let text = text.strip_suffix(b"\n").unwrap_or(&text);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            return Ok(Some(text.to_vec()));
        }
        if let Some(var) = self.password_env {
            let value = std::env::var_os(var).ok_or_else(|| {
                invalid(format!("{key}.password_env"), format!("`{var}` is not set"))
            })?;
            return Ok(Some(value.as_encoded_bytes().to_vec()));
        }
        Ok(None)
    }

    /// The password as text, for the control plane's SQL client: exactly one key must
    /// be given.
    pub fn read_text(&self, key: &str) -> Result<String, ConfigError> {
        match self.given() {
            0 => {
                return Err(invalid(
                    key,
                    "needs a password, password_file or password_env",
                ))
            }
            1 => {}
            _ => {
                return Err(invalid(
                    key,
                    "give only one of password, password_file and password_env",
                ))
            }
        }
        let bytes = self.read(key)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| invalid(key, "the password is not UTF-8"))
    }
}

/// The warning for a config file at `path` that holds a password in clear (`config`
/// has a `password` key anywhere) and that the group or others may read. `None` when
/// the file is private, holds no plaintext password, or its mode cannot be read.
pub fn plaintext_warning(path: &Path, config: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o077 == 0 || !holds_plaintext(config) {
        return None;
    }
    Some(format!(
        "config file {} holds a password in clear and is readable by its group or others \
         (mode {:o}); run `chmod 600 {}`, or move the passwords to password_file / \
         password_env",
        path.display(),
        mode & 0o777,
        path.display()
    ))
}

/// Whether any table carries a `password` key (not a file, a variable or a hash).
fn holds_plaintext(config: &Config) -> bool {
    config.users.iter().any(|u| u.password.is_some())
        || config.control.iter().any(|c| c.password.is_some())
        || config.replication.iter().any(|c| c.password.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const PLAIN: &str = r#"
[proxy]
listen = "127.0.0.1:6033"
[blue]
address = "127.0.0.1:3307"
[control]
user = "ctl"
password = "ctl-pw"
"#;

    fn written(text: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchyard.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_readable_file_with_a_password_in_clear_is_named_with_the_fix() {
        let (_dir, path) = written(PLAIN, 0o644);
        let config = Config::load(&path).unwrap();
        let warning = plaintext_warning(&path, &config).unwrap();
        assert!(warning.contains(&path.display().to_string()), "{warning}");
        assert!(warning.contains("chmod 600"), "{warning}");
        assert!(warning.contains("644"), "{warning}");
        let (_dir, path) = written(PLAIN, 0o640);
        assert!(plaintext_warning(&path, &Config::load(&path).unwrap()).is_some());
    }

    #[test]
    fn a_private_file_or_one_without_passwords_in_clear_says_nothing() {
        let (_dir, path) = written(PLAIN, 0o600);
        assert_eq!(
            plaintext_warning(&path, &Config::load(&path).unwrap()),
            None
        );
        std::env::set_var("SWITCHYARD_TEST_CONTROL_PW", "x");
        let text = PLAIN.replace(
            "password = \"ctl-pw\"",
            "password_env = \"SWITCHYARD_TEST_CONTROL_PW\"",
        );
        let (_dir, path) = written(&text, 0o644);
        assert_eq!(
            plaintext_warning(&path, &Config::load(&path).unwrap()),
            None
        );
    }

    #[test]
    fn exactly_one_source_and_the_file_loses_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\r\n").unwrap();
        let path = file.display().to_string();
        let keys = PasswordKeys {
            password: None,
            password_file: Some(&path),
            password_env: None,
        };
        assert_eq!(keys.read_text("control").unwrap(), "from-file");
        let none = PasswordKeys {
            password_file: None,
            ..keys
        };
        let err = none.read_text("control").unwrap_err().to_string();
        assert!(err.contains("`control`: needs a password"), "{err}");
        let two = PasswordKeys {
            password: Some("x"),
            ..keys
        };
        let err = two.read_text("replication").unwrap_err().to_string();
        assert!(err.contains("only one of"), "{err}");
    }
}
