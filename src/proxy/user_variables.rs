//! A session's user variables written back as SQL literals on the new server: the
//! queries that list them per flavor, and how a read value becomes a literal.
//!
//! MariaDB lists each variable with its type and character set
//! (`information_schema.USER_VARIABLES`). MySQL's `performance_schema` gives only the
//! names (and untyped bytes), and only to accounts granted SELECT on
//! `performance_schema.user_variables_by_thread`; the type then comes from the column
//! type of `SELECT @name` and the character set from `CHARSET(@name)`.

use bytes::Bytes;

use crate::protocol::buf::Reader;
use crate::protocol::ProtocolError;

/// The session's user variables on MariaDB, typed and with their character set.
pub const MARIADB: &str =
    "SELECT VARIABLE_NAME, VARIABLE_TYPE, CHARACTER_SET_NAME, VARIABLE_VALUE \
     FROM information_schema.USER_VARIABLES";

/// The names of the session's user variables on MySQL.
pub const MYSQL_NAMES: &str = "SELECT VARIABLE_NAME \
     FROM performance_schema.user_variables_by_thread \
     WHERE THREAD_ID = PS_CURRENT_THREAD_ID()";

/// The column type byte of a text-protocol column definition (catalog, schema, table,
/// original table, name, original name, the fixed-length block's length, character
/// set, column length, then the type).
pub fn column_type(definition: &[u8]) -> Result<u8, ProtocolError> {
    let mut r = Reader::new(definition);
    for _ in 0..6 {
        r.lenenc_bytes()?;
    }
    r.lenenc_int()?;
    r.u16()?;
    r.u32()?;
    r.u8()
}

/// `SELECT @a, CHARSET(@a), HEX(@a), @b, …` for `names`: what
/// [`mysql_literals`] reads.
pub fn mysql_select(names: &[String]) -> String {
    let columns: Vec<String> = names
        .iter()
        .map(|name| {
            let v = quote_ident(name);
            format!("@{v}, CHARSET(@{v}), HEX(@{v})")
        })
        .collect();
    format!("SELECT {}", columns.join(", "))
}

/// `(name, literal)` for each of `names` from the answer to [`mysql_select`]: its
/// column `types` and its one `row`. Numbers keep their type (an integer stays an
/// integer, a double a double); anything else is a string in its character set,
/// carried exactly by its hex bytes.
pub fn mysql_literals(
    names: Vec<String>,
    types: &[u8],
    row: &[Option<Bytes>],
) -> Vec<(String, String)> {
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let at = |k: usize| row.get(3 * i + k).cloned().flatten();
            let kind = types.get(3 * i).copied();
            let literal = match (at(0), kind.and_then(number_kind)) {
                (None, _) => "NULL".to_owned(),
                (Some(v), Some(number)) if is_number_text(&v) => {
                    let text = String::from_utf8_lossy(&v);
                    match number {
                        Number::Exact => text.into_owned(),
                        Number::Double => format!("{text}e0"),
                    }
                }
                (Some(_), _) => string_literal(at(1), at(2)),
            };
            (name, literal)
        })
        .collect()
}

/// `_charset X'…'` from a character set name and the value's `HEX()`.
pub fn string_literal(charset: Option<Bytes>, hex: Option<Bytes>) -> String {
    let Some(hex) = hex else {
        return "NULL".into();
    };
    let charset: String = charset
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or("binary".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let hex: String = String::from_utf8_lossy(&hex)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    format!("_{charset} X'{hex}'")
}

enum Number {
    /// Integers and decimals: their text is their literal.
    Exact,
    /// Floating point: `e0` makes the literal a double again.
    Double,
}

/// Which kind of number a column type holds (none for strings and the rest).
fn number_kind(column_type: u8) -> Option<Number> {
    match column_type {
        // DECIMAL, TINY, SHORT, LONG, LONGLONG, INT24, NEWDECIMAL.
        0x00..=0x03 | 0x08 | 0x09 | 0xF6 => Some(Number::Exact),
        // FLOAT, DOUBLE.
        0x04 | 0x05 => Some(Number::Double),
        _ => None,
    }
}

/// Text that can be pasted into SQL as a number: nothing but digits, sign, point and
/// exponent (a value that is anything else is carried as a string instead).
fn is_number_text(text: &[u8]) -> bool {
    !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// `name` as a backquoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(column_type: u8) -> Vec<u8> {
        let mut d = Vec::new();
        for s in ["def", "", "", "", "@x", ""] {
            d.push(s.len() as u8);
            d.extend_from_slice(s.as_bytes());
        }
        d.push(0x0c);
        d.extend_from_slice(&63u16.to_le_bytes());
        d.extend_from_slice(&21u32.to_le_bytes());
        d.push(column_type);
        d.extend_from_slice(&[0x80, 0, 0, 0, 0]);
        d
    }

    #[test]
    fn reads_the_column_type() {
        assert_eq!(column_type(&definition(0x08)).ok(), Some(0x08));
        assert!(column_type(&definition(0x08)[..10]).is_err());
        assert!(column_type(&[]).is_err());
    }

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn numbers_keep_their_type_and_strings_their_bytes() {
        let names = ["i", "d", "f", "s", "n", "odd"].map(String::from).to_vec();
        let types = [
            0x08, 0xFD, 0xFD, 0xF6, 0xFD, 0xFD, 0x05, 0xFD, 0xFD, 0xFD, 0xFD, 0xFD, 0x06, 0xFD,
            0xFD, 0x08, 0xFD, 0xFD,
        ];
        let row = [
            b("42"),
            b("binary"),
            b("2A"),
            b("1.50"),
            b("binary"),
            b("312E3530"),
            b("1.5"),
            b("binary"),
            b("3F"),
            b("héllo"),
            b("latin1"),
            b("68E96C6C6F"),
            None,
            b("binary"),
            None,
            b("1; DROP"),
            b("utf8mb4"),
            b("31"),
        ];
        let got = mysql_literals(names, &types, &row);
        let literals: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            literals,
            [
                "42",
                "1.50",
                "1.5e0",
                "_latin1 X'68E96C6C6F'",
                "NULL",
                "_utf8mb4 X'31'"
            ]
        );
    }

    #[test]
    fn a_short_row_gives_null() {
        let got = mysql_literals(vec!["x".into()], &[], &[]);
        assert_eq!(got, [("x".to_owned(), "NULL".to_owned())]);
    }

    #[test]
    fn the_select_quotes_names() {
        assert_eq!(
            mysql_select(&["a`b".into()]),
            "SELECT @`a``b`, CHARSET(@`a``b`), HEX(@`a``b`)"
        );
    }
}
