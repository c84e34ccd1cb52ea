//! Small pure helpers for building control statements and reading their rows.
//! Nothing here panics on what a server sends.

use mysql_async::{Row, Value};

/// `value` as a single-quoted SQL string literal. Valid while the session's
/// `sql_mode` lacks `NO_BACKSLASH_ESCAPES` (every control connection removes it).
pub(super) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `name` as a backquoted identifier (user, host or role names in `SHOW GRANTS`).
pub(super) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `host:port` → (host, port); a bare host means port 3306. IPv6 hosts may be
/// bracketed (`[::1]:3306`).
pub(super) fn split_address(address: &str) -> Option<(String, u16)> {
    let address = address.trim();
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host, port.parse().ok()?)
        }
        _ => (address, 3306),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port))
}

/// The text of column `index` (`None` for NULL or a missing column). Bytes that are
/// not UTF-8 are replaced, never refused: statement texts can hold anything.
pub(super) fn text(row: &Row, index: usize) -> Option<String> {
    match row.as_ref(index)? {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Column `index` as an unsigned integer (`None` for NULL, missing or not a number).
pub(super) fn uint(row: &Row, index: usize) -> Option<u64> {
    match row.as_ref(index)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::UInt(n) => Some(*n),
        Value::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Column `index` as a signed integer (`None` for NULL, missing or not a number).
pub(super) fn int(row: &Row, index: usize) -> Option<i64> {
    match row.as_ref(index)? {
        Value::Int(n) => Some(*n),
        Value::UInt(n) => i64::try_from(*n).ok(),
        Value::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// The position of the column called `name` (as the server spells it).
pub(super) fn column(row: &Row, name: &str) -> Option<usize> {
    row.columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))
}

/// `@@version` → (major, minor), e.g. `10.11.19-MariaDB-log` → (10, 11).
pub(super) fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Statement kinds that take metadata locks for their whole run.
const DDL: [&str; 6] = ["ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE", "OPTIMIZE"];

/// Whether a statement text starts (after blanks and comments) with a DDL keyword.
/// Executable comments (`/*! … */`, `/*M! … */`) count as code.
pub(super) fn is_ddl(statement: &str) -> bool {
    let word = first_word(statement);
    DDL.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// The first keyword of a statement, skipping blanks and comments.
fn first_word(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/*") {
            // Executable comment: its body is code; skip the marker and version.
            if let Some(code) = rest.strip_prefix("M!").or_else(|| rest.strip_prefix('!')) {
                s = code.trim_start_matches(|c: char| c.is_ascii_digit());
                continue;
            }
            match rest.find("*/") {
                Some(end) => s = &rest[end + 2..],
                None => return "",
            }
        } else if s.starts_with("-- ") || s.starts_with('#') {
            match s.find('\n') {
                Some(end) => s = &s[end + 1..],
                None => return "",
            }
        } else {
            let end = s
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(s.len());
            return &s[..end];
        }
    }
}

/// A GTID variable's text on one line: MySQL prints `@@gtid_executed` with a newline
/// after each comma (one source a line), which GTID texts never need.
pub(super) fn one_line(gtids: &str) -> String {
    gtids.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_text_on_one_line() {
        assert_eq!(
            one_line(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1,\n2174b383-5441-11e8-b90a-c80aa9429562:1-2"
            ),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1,2174b383-5441-11e8-b90a-c80aa9429562:1-2"
        );
        assert_eq!(one_line("0-1-5"), "0-1-5");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(quote("repl"), "'repl'");
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn splits_addresses() {
        assert_eq!(
            split_address("127.0.0.1:3307"),
            Some(("127.0.0.1".into(), 3307))
        );
        assert_eq!(
            split_address("db.example"),
            Some(("db.example".into(), 3306))
        );
        assert_eq!(split_address("[::1]:3310"), Some(("::1".into(), 3310)));
        assert_eq!(split_address("::1"), Some(("::1".into(), 3306)));
        assert_eq!(split_address("host:notaport"), None);
        assert_eq!(split_address(":3306"), None);
    }

    #[test]
    fn reads_versions() {
        assert_eq!(
            major_minor("10.11.19-MariaDB-0+deb12u1-log"),
            Some((10, 11))
        );
        assert_eq!(major_minor("11.8.2-MariaDB"), Some((11, 8)));
        assert_eq!(major_minor("garbage"), None);
    }

    #[test]
    fn recognises_ddl() {
        for ddl in [
            "ALTER TABLE t ADD c INT",
            "  create index i on t(c)",
            "/* app */ DROP TABLE t",
            "-- x\nRENAME TABLE a TO b",
            "# x\ntruncate t",
            "/*!40000 ALTER TABLE t DISABLE KEYS */",
            "/*M!100100 OPTIMIZE TABLE t */",
        ] {
            assert!(is_ddl(ddl), "{ddl:?}");
        }
        for not in [
            "SELECT 1",
            "INSERT INTO alter_log VALUES (1)",
            "/* ALTER */ SELECT 1",
            "",
            "/* unterminated",
            "ALTERED",
        ] {
            assert!(!is_ddl(not), "{not:?}");
        }
    }
}
