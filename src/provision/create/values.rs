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
//! FLOAT columns are read as `col * 1e0`: a FLOAT shown as text has six significant
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
    /// BINARY, VARBINARY, BLOBs and spatial types: hex.
    Bytes,
    /// BIT: hex in an `INSERT`, a number in a `LOAD DATA` file.
    Bit,
    /// Text in the named character set (CHAR, VARCHAR, TEXTs, ENUM, SET, MariaDB JSON).
    Text(String),
    /// Anything else (temporal types, MySQL JSON): a utf8mb4 string.
    Other,
}

/// Types read as bytes besides blue's binary string types: the spatial types.
const MORE_BYTES_TYPES: [&str; 8] = [
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
        } else if data_type == "bit" {
            Kind::Bit
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
            // Times one, not plus zero: -0 + 0 is +0.
            Kind::Float => format!("{} * 1e0", ident(name)),
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
            // A bare -0 is the integer 0: a double's sign needs the exponent.
            Kind::Number | Kind::Float if value == b"-0" => out.push_str("-0e0"),
            Kind::Number | Kind::Float if is_number(value) => {
                // Checked to be ASCII digits and signs just above.
                out.push_str(&String::from_utf8_lossy(value));
            }
            Kind::Number | Kind::Float | Kind::Bytes | Kind::Bit => write_hex("", value, out),
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

/// Builds the contents of a `LOAD DATA LOCAL INFILE` file (tab-separated, backslash
/// escapes, `\N` for NULL, read `CHARACTER SET binary` so no byte is converted) and
/// the statement that loads it. Values the file cannot carry as they are go through a
/// user variable: BIT as a number, and temporal and JSON values as utf8mb4 text
/// (MySQL builds no JSON from a binary string).
#[derive(Debug)]
pub struct LoadFile {
    statement: String,
    kinds: Vec<Kind>,
    limit: usize,
    data: Vec<u8>,
    rows: u64,
}

impl LoadFile {
    /// A file for `table` (`` `db`.`t` ``) and `columns`, handed out at about `limit`
    /// bytes.
    pub fn new(table: &str, columns: &[(String, Kind)], limit: usize) -> LoadFile {
        let mut targets = Vec::new();
        let mut sets = Vec::new();
        for (i, (name, kind)) in columns.iter().enumerate() {
            match kind {
                Kind::Bit => {
                    targets.push(format!("@v{i}"));
                    sets.push(format!("{} = CAST(@v{i} AS UNSIGNED)", ident(name)));
                }
                Kind::Other => {
                    targets.push(format!("@v{i}"));
                    sets.push(format!("{} = CONVERT(@v{i} USING utf8mb4)", ident(name)));
                }
                _ => targets.push(ident(name)),
            }
        }
        let mut statement = format!(
            "LOAD DATA LOCAL INFILE 'rows' INTO TABLE {table} CHARACTER SET binary \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
            targets.join(", ")
        );
        if !sets.is_empty() {
            statement.push_str(" SET ");
            statement.push_str(&sets.join(", "));
        }
        LoadFile {
            statement,
            kinds: columns.iter().map(|(_, k)| k.clone()).collect(),
            limit,
            data: Vec::new(),
            rows: 0,
        }
    }

    /// The `LOAD DATA` statement.
    pub fn statement(&self) -> &str {
        &self.statement
    }

    /// Add one row; returns the file so far (with its row count) once it has reached
    /// the limit.
    pub fn push<'a>(
        &mut self,
        row: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Option<(Vec<u8>, u64)> {
        for (i, (kind, value)) in self.kinds.iter().zip(row).enumerate() {
            if i > 0 {
                self.data.push(b'\t');
            }
            match value {
                None => self.data.extend_from_slice(b"\\N"),
                Some(v) if *kind == Kind::Bit => {
                    let n = v.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
                    self.data.extend_from_slice(n.to_string().as_bytes());
                }
                Some(v) => escape_field(v, &mut self.data),
            }
        }
        self.data.push(b'\n');
        self.rows += 1;
        (self.data.len() >= self.limit)
            .then(|| self.finish())
            .flatten()
    }

    /// The file so far, with its row count, if it has any row.
    pub fn finish(&mut self) -> Option<(Vec<u8>, u64)> {
        if self.rows == 0 {
            return None;
        }
        let rows = std::mem::take(&mut self.rows);
        Some((std::mem::take(&mut self.data), rows))
    }
}

/// A field with the bytes `LOAD DATA` would read as separators or escapes escaped.
fn escape_field(value: &[u8], out: &mut Vec<u8>) {
    out.reserve(value.len());
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
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
        assert_eq!(Kind::of("bit", None), Kind::Bit);
        assert_eq!(Kind::of("point", None), Kind::Bytes);
        assert_eq!(
            Kind::of("varchar", Some("latin1")),
            Kind::Text("latin1".into())
        );
        assert_eq!(Kind::of("json", None), Kind::Other);
        assert_eq!(Kind::of("datetime", None), Kind::Other);
        assert_eq!(Kind::Float.select("f"), "`f` * 1e0");
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
        assert_eq!(lit(Kind::Float, Some(b"-0")), "-0e0");
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
    fn load_files_escape_what_load_data_reads() {
        let cols = vec![
            ("id".to_owned(), Kind::Number),
            ("b".to_owned(), Kind::Bytes),
            ("flags".to_owned(), Kind::Bit),
            ("at".to_owned(), Kind::Other),
        ];
        let mut file = LoadFile::new("`db`.`t`", &cols, 1 << 20);
        assert_eq!(
            file.statement(),
            "LOAD DATA LOCAL INFILE 'rows' INTO TABLE `db`.`t` CHARACTER SET binary \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
             (`id`, `b`, @v2, @v3) SET `flags` = CAST(@v2 AS UNSIGNED), \
             `at` = CONVERT(@v3 USING utf8mb4)"
        );
        assert_eq!(
            file.push([
                Some(&b"1"[..]),
                Some(&b"a\tb\nc\\d\0\xff"[..]),
                Some(&b"\x03\xff"[..]),
                None
            ]),
            None
        );
        assert_eq!(
            file.finish(),
            Some((b"1\ta\\tb\\nc\\\\d\\0\xff\t1023\t\\N\n".to_vec(), 1))
        );
        assert_eq!(file.finish(), None);
        let mut small = LoadFile::new("`db`.`t`", &cols, 4);
        assert!(small
            .push([Some(&b"12345"[..]), None, None, None])
            .is_some());
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
