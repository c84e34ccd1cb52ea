//! Row values as SQL literals, byte for byte, and the multi-row `INSERT` statements
//! that carry them to green. Pure functions.
//!
//! Blue's rows are read with `character_set_results = NULL`, so every value arrives as
//! the bytes stored in its column, in the column's own character set. Each is written
//! back in a form the server turns into exactly those bytes again:
//! - numbers as they are (a quoted number would pass through a double); FLOAT too;
//! - binary strings, BIT and spatial values as hex literals;
//! - text as a literal with the column's character set introducer: escaped when the
//!   bytes read the same in the connection's utf8mb4 (UTF-8 text in a UTF-8 column, or
//!   plain ASCII in an ASCII-compatible one), hex otherwise (latin1 `é`, Shift-JIS,
//!   UTF-16, …), so nothing is ever converted;
//! - everything else (dates, times, MySQL's JSON) as an escaped utf8mb4 string.
//!
//! FLOAT columns are read as `col + 0e0`: a FLOAT shown as text has six significant
//! digits on MariaDB, which does not always bring back the same float; widened to a
//! double it is shown with all the digits it needs.

use std::fmt::Write;

use super::super::chunks::{ident, BINARY_TYPES, NUMERIC_TYPES};

/// How a column's values are read and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Integers, DECIMAL, DOUBLE, YEAR: written bare.
    Number,
    /// FLOAT: read widened to a double, written bare.
    Float,
    /// BINARY, VARBINARY, BLOBs, BIT and spatial types: hex.
    Bytes,
    /// Text in the named character set (CHAR, VARCHAR, TEXTs, ENUM, SET, MariaDB JSON).
    Text(String),
    /// Anything else (temporal types, MySQL JSON): a utf8mb4 string.
    Other,
}

/// Types read as bytes besides blue's binary string types: BIT and the spatial types.
const MORE_BYTES_TYPES: [&str; 9] = [
    "bit",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
];

/// Character sets in which ASCII bytes do not mean ASCII characters.
const NOT_ASCII_COMPATIBLE: [&str; 5] = ["ucs2", "utf16", "utf16le", "utf32", "filename"];

impl Kind {
    /// The kind of a column with `DATA_TYPE` `data_type` (lower case) and
    /// `CHARACTER_SET_NAME` `charset`.
    pub fn of(data_type: &str, charset: Option<&str>) -> Kind {
        if data_type == "float" {
            Kind::Float
        } else if NUMERIC_TYPES.contains(&data_type) {
            Kind::Number
        } else if BINARY_TYPES.contains(&data_type) || MORE_BYTES_TYPES.contains(&data_type) {
            Kind::Bytes
        } else if let Some(charset) = charset.filter(|c| !c.is_empty() && *c != "binary") {
            Kind::Text(charset.to_owned())
        } else if charset == Some("binary") {
            Kind::Bytes
        } else {
            Kind::Other
        }
    }

    /// The expression that reads column `name` on blue.
    pub fn select(&self, name: &str) -> String {
        match self {
            Kind::Float => format!("{} + 0e0", ident(name)),
            _ => ident(name),
        }
    }

    /// Append `value` (NULL when `None`) as a literal of this kind to `out`.
    pub fn write_literal(&self, value: Option<&[u8]>, out: &mut String) {
        let Some(value) = value else {
            out.push_str("NULL");
            return;
        };
        match self {
            Kind::Number | Kind::Float if is_number(value) => {
                // Checked to be ASCII digits and signs just above.
                out.push_str(&String::from_utf8_lossy(value));
            }
            Kind::Number | Kind::Float | Kind::Bytes => write_hex("", value, out),
            Kind::Text(charset) => {
                let introducer = format!("_{charset}");
                let utf8 = matches!(charset.as_str(), "utf8mb4" | "utf8mb3" | "utf8");
                let ascii_ok = !NOT_ASCII_COMPATIBLE.contains(&charset.as_str());
                match std::str::from_utf8(value) {
                    Ok(text) if utf8 || (ascii_ok && text.is_ascii()) => {
                        out.push_str(&introducer);
                        write_escaped(text, out);
                    }
                    _ => write_hex(&introducer, value, out),
                }
            }
            Kind::Other => match std::str::from_utf8(value) {
                Ok(text) => write_escaped(text, out),
                Err(_) => write_hex("_binary", value, out),
            },
        }
    }
}

/// Digits, signs, a point and an exponent only: safe to write bare.
fn is_number(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn write_hex(introducer: &str, value: &[u8], out: &mut String) {
    out.push_str(introducer);
    if !introducer.is_empty() {
        out.push(' ');
    }
    out.push_str("X'");
    for byte in value {
        let _ = write!(out, "{byte:02x}");
    }
    out.push('\'');
}

/// `'text'` with backslash escapes (the loading session's `sql_mode` has no
/// `NO_BACKSLASH_ESCAPES`).
fn write_escaped(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Builds `INSERT INTO t (cols) VALUES (…), (…)` statements of about `limit` bytes
/// each; a row bigger than that gets a statement of its own, up to `hard_limit`.
#[derive(Debug)]
pub struct Inserts {
    head: String,
    kinds: Vec<Kind>,
    limit: usize,
    hard_limit: usize,
    current: String,
    rows_in_current: u64,
}

/// One row is bigger than a statement green accepts.
#[derive(Debug, PartialEq, Eq)]
pub struct RowTooBig {
    pub bytes: usize,
}

impl Inserts {
    /// Statements into `table` (`` `db`.`t` ``) for `columns` (names and kinds, in
    /// the order each row's values come).
    pub fn new(
        table: &str,
        columns: &[(String, Kind)],
        limit: usize,
        hard_limit: usize,
    ) -> Inserts {
        let names: Vec<String> = columns.iter().map(|(n, _)| ident(n)).collect();
        Inserts {
            head: format!("INSERT INTO {table} ({}) VALUES ", names.join(", ")),
            kinds: columns.iter().map(|(_, k)| k.clone()).collect(),
            limit,
            hard_limit,
            current: String::new(),
            rows_in_current: 0,
        }
    }

    /// Add one row; returns a finished statement when this row did not fit in the one
    /// being built. A row that alone exceeds the limit is an error.
    pub fn push<'a>(
        &mut self,
        row: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Result<Option<(String, u64)>, RowTooBig> {
        let mut tuple = String::from("(");
        for (i, (kind, value)) in self.kinds.iter().zip(row).enumerate() {
            if i > 0 {
                tuple.push_str(", ");
            }
            kind.write_literal(value, &mut tuple);
        }
        tuple.push(')');
        if self.head.len() + tuple.len() > self.hard_limit {
            return Err(RowTooBig {
                bytes: self.head.len() + tuple.len(),
            });
        }
        let mut done = None;
        if self.rows_in_current > 0 && self.current.len() + tuple.len() + 2 > self.limit {
            done = self.finish();
        }
        if self.rows_in_current == 0 {
            self.current.push_str(&self.head);
        } else {
            self.current.push_str(", ");
        }
        self.current.push_str(&tuple);
        self.rows_in_current += 1;
        Ok(done)
    }

    /// The statement being built, with its row count, if it has any row.
    pub fn finish(&mut self) -> Option<(String, u64)> {
        if self.rows_in_current == 0 {
            return None;
        }
        let rows = std::mem::take(&mut self.rows_in_current);
        Some((std::mem::take(&mut self.current), rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(kind: Kind, value: Option<&[u8]>) -> String {
        let mut out = String::new();
        kind.write_literal(value, &mut out);
        out
    }

    #[test]
    fn kinds_by_type_and_charset() {
        assert_eq!(Kind::of("bigint", None), Kind::Number);
        assert_eq!(Kind::of("float", None), Kind::Float);
        assert_eq!(Kind::of("bit", None), Kind::Bytes);
        assert_eq!(Kind::of("point", None), Kind::Bytes);
        assert_eq!(
            Kind::of("varchar", Some("latin1")),
            Kind::Text("latin1".into())
        );
        assert_eq!(Kind::of("json", None), Kind::Other);
        assert_eq!(Kind::of("datetime", None), Kind::Other);
        assert_eq!(Kind::Float.select("f"), "`f` + 0e0");
    }

    #[test]
    fn literals_keep_every_byte() {
        assert_eq!(lit(Kind::Number, None), "NULL");
        assert_eq!(
            lit(Kind::Number, Some(b"-12.500")),
            "-12.500",
            "decimals bare"
        );
        assert_eq!(lit(Kind::Number, Some(b"1 OR 1")), "X'31204f522031'");
        assert_eq!(lit(Kind::Bytes, Some(b"\0'\\")), "X'00275c'");
        assert_eq!(lit(Kind::Bytes, Some(b"")), "X''");
        let utf8 = Kind::Text("utf8mb4".into());
        assert_eq!(
            lit(utf8.clone(), Some("it's \\ 😀\n".as_bytes())),
            "_utf8mb4'it\\'s \\\\ 😀\\n'"
        );
        assert_eq!(lit(utf8, Some(b"\xff")), "_utf8mb4 X'ff'");
        let latin1 = Kind::Text("latin1".into());
        assert_eq!(lit(latin1.clone(), Some(b"plain")), "_latin1'plain'");
        assert_eq!(lit(latin1, Some(b"caf\xe9")), "_latin1 X'636166e9'");
        // Shift-JIS whose second byte is a backslash: never escaped, always hex.
        assert_eq!(
            lit(Kind::Text("sjis".into()), Some(b"\x83\x5c")),
            "_sjis X'835c'"
        );
        assert_eq!(
            lit(Kind::Text("ucs2".into()), Some(b"\0a")),
            "_ucs2 X'0061'"
        );
        assert_eq!(lit(Kind::Other, Some(b"0000-00-00")), "'0000-00-00'");
    }

    #[test]
    fn statements_split_at_the_limit() {
        let cols = vec![
            ("id".to_owned(), Kind::Number),
            ("s".to_owned(), Kind::Text("utf8mb4".into())),
        ];
        let mut ins = Inserts::new("`db`.`t`", &cols, 80, 120);
        assert_eq!(ins.push([Some(&b"1"[..]), Some(&b"a"[..])]).unwrap(), None);
        assert_eq!(ins.push([Some(&b"2"[..]), None]).unwrap(), None);
        let (done, rows) = ins
            .push([Some(&b"3"[..]), Some(&b"ccccccccccc"[..])])
            .unwrap()
            .expect("the third row starts a new statement");
        assert_eq!(rows, 2);
        assert_eq!(
            done,
            "INSERT INTO `db`.`t` (`id`, `s`) VALUES (1, _utf8mb4'a'), (2, NULL)"
        );
        let (last, rows) = ins.finish().expect("one row left");
        assert_eq!(rows, 1);
        assert!(last.ends_with("VALUES (3, _utf8mb4'ccccccccccc')"));
        assert_eq!(ins.finish(), None);
        // Bigger than a statement should be, not than one may be: alone.
        let mid = [b'y'; 50];
        assert_eq!(ins.push([Some(&b"5"[..]), Some(&mid[..])]).unwrap(), None);
        assert_eq!(ins.finish().map(|(_, n)| n), Some(1));
        let big = [b'x'; 100];
        assert_eq!(
            ins.push([Some(&b"4"[..]), Some(&big[..])]),
            Err(RowTooBig { bytes: 155 })
        );
    }
}
