//! The SQL text of data verification, as pure functions: a table's shape, key values as
//! literals, key-range predicates over a (possibly composite) primary key, and the
//! per-chunk checksum statement. The same text runs on blue and on green.
//!
//! A chunk is the key range `(lower, upper]`; `None` bounds are open ends, so the
//! chunks of a table cover the whole key space, rows green has and blue lacks included.

use std::fmt::Write;

/// One column as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `DATA_TYPE`, lower case (`int`, `varchar`, `blob`, `json`, `bit`, …).
    pub data_type: String,
}

/// A base table to verify: every column in order, and its primary key's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// Empty when the table has no primary key (it cannot be chunked).
    pub key: Vec<Column>,
}

/// A primary-key value read from blue: one text per key column (the text protocol's
/// bytes), kept as bytes so binary keys survive.
pub type Key = Vec<Vec<u8>>;

/// Types whose values are bytes without a character set: compared byte-wise, written
/// as hex literals.
pub(in crate::provision) const BINARY_TYPES: [&str; 7] = [
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "geometry",
];

/// Types whose values are text in some character set: normalised to utf8mb4 so columns
/// of different collations can be concatenated.
const TEXT_TYPES: [&str; 9] = [
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "enum",
    "set",
    "json",
];

/// Types whose key values are written as bare numbers.
pub(in crate::provision) const NUMERIC_TYPES: [&str; 9] = [
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "bigint",
    "decimal",
    "float",
    "double",
    "year",
];

impl Column {
    fn is_binary(&self) -> bool {
        BINARY_TYPES.contains(&self.data_type.as_str())
    }

    fn is_text(&self) -> bool {
        TEXT_TYPES.contains(&self.data_type.as_str())
    }

    /// The column's value as it enters the row hash. Lengths are added to strings so
    /// that separators inside values cannot make two different rows hash alike.
    fn hash_term(&self) -> String {
        let c = ident(&self.name);
        if self.is_text() {
            format!("OCTET_LENGTH({c}), CONVERT({c} USING utf8mb4)")
        } else if self.is_binary() {
            format!("OCTET_LENGTH({c}), {c}")
        } else if self.data_type == "bit" {
            format!("CAST({c} AS UNSIGNED)")
        } else {
            c
        }
    }
}

impl Table {
    /// `` `schema`.`name` ``.
    pub fn sql_name(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// `schema.name`, for people.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The key columns as a query reads them back to write literals of them: text in
    /// utf8mb4 (the literals' character set) whatever the session's result set.
    pub(in crate::provision) fn key_select(&self) -> String {
        self.key
            .iter()
            .map(|c| {
                if c.is_text() {
                    format!("CONVERT({} USING utf8mb4)", ident(&c.name))
                } else {
                    ident(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(in crate::provision) fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key of the `offset`-th row (0-based) after `lower`, in key order: the
    /// first key of a chunk (offset 0) or its last (offset rows − 1).
    pub fn key_at_sql(&self, lower: Option<&Key>, offset: u64) -> String {
        let keys = self.key_list();
        format!(
            "SELECT {keys} FROM {} FORCE INDEX (PRIMARY) WHERE {} ORDER BY {keys} LIMIT 1 OFFSET {offset}",
            self.sql_name(),
            self.range(lower, None),
        )
    }

    /// Row count and a 128-bit order-independent checksum of the rows in
    /// `(lower, upper]`: the XOR of each row's SHA-256, its first two 64-bit words
    /// (MySQL 9 has no MD5). Every
    /// column enters the hash, with a NULL marker per column (NULL ≠ '').
    pub fn checksum_sql(&self, lower: Option<&Key>, upper: Option<&Key>) -> String {
        let terms: Vec<String> = self.columns.iter().map(Column::hash_term).collect();
        let nulls: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("ISNULL({})", ident(&c.name)))
            .collect();
        let row = format!(
            "SHA2(CONCAT_WS('#', {}, CONCAT({})), 256)",
            terms.join(", "),
            nulls.join(", ")
        );
        let half = |from: u32| {
            format!(
                "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, {from}, 16), 16, 10) AS UNSIGNED)), 0)"
            )
        };
        format!(
            "SELECT COUNT(*), {}, {} FROM (SELECT {row} AS h FROM {} FORCE INDEX (PRIMARY) WHERE {}) AS chunk",
            half(1),
            half(17),
            self.sql_name(),
            self.range(lower, upper),
        )
    }

    /// The predicate of `(lower, upper]` over the key columns.
    pub fn range(&self, lower: Option<&Key>, upper: Option<&Key>) -> String {
        let mut parts = Vec::new();
        if let Some(lower) = lower {
            parts.push(self.compare(lower, ">", false));
        }
        if let Some(upper) = upper {
            parts.push(self.compare(upper, "<", true));
        }
        if parts.is_empty() {
            "TRUE".to_owned()
        } else {
            parts.join(" AND ")
        }
    }

    /// Key `op` `value` in tuple order, written out (`a > x OR (a = x AND b > y)`) so
    /// every server's range optimizer uses the primary key; `or_equal` adds the tuple
    /// itself.
    fn compare(&self, value: &Key, op: &str, or_equal: bool) -> String {
        let mut alternatives = Vec::new();
        for (depth, column) in self.key.iter().enumerate() {
            let mut terms: Vec<String> = self
                .key
                .iter()
                .zip(value)
                .take(depth)
                .map(|(c, v)| format!("{} = {}", ident(&c.name), literal(c, v)))
                .collect();
            let v = value.get(depth).map(Vec::as_slice).unwrap_or_default();
            terms.push(format!(
                "{} {op} {}",
                ident(&column.name),
                literal(column, v)
            ));
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        if or_equal {
            let all: Vec<String> = self
                .key
                .iter()
                .zip(value)
                .map(|(c, v)| format!("{} = {}", ident(&c.name), literal(c, v)))
                .collect();
            alternatives.push(format!("({})", all.join(" AND ")));
        }
        format!("({})", alternatives.join(" OR "))
    }

    /// A key as people read it: `10001` or `(3, 'x')`.
    pub fn show_key(&self, key: &Key) -> String {
        let parts: Vec<String> = self
            .key
            .iter()
            .zip(key)
            .map(|(c, v)| show_value(c, v))
            .collect();
        match parts.as_slice() {
            [one] => one.clone(),
            _ => format!("({})", parts.join(", ")),
        }
    }

    /// The key columns' names for people: `id` or `(a, b)`.
    pub fn show_key_columns(&self) -> String {
        let names: Vec<&str> = self.key.iter().map(|c| c.name.as_str()).collect();
        match names.as_slice() {
            [one] => (*one).to_owned(),
            _ => format!("({})", names.join(", ")),
        }
    }
}

/// `name` as a backquoted identifier.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `value` of `column` as an SQL literal. Numbers are written as they are (a string
/// would be compared as a double, losing big integers); binary values as hex; any
/// other value as a hex-written utf8mb4 string, which the server converts to the
/// column's type and compares in the column's collation — the order the key walk
/// followed — with nothing in it to escape.
fn literal(column: &Column, value: &[u8]) -> String {
    let numeric = !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if column.is_binary() || column.data_type == "bit" {
        format!("X'{}'", hex::encode(value))
    } else if numeric && NUMERIC_TYPES.contains(&column.data_type.as_str()) {
        String::from_utf8_lossy(value).into_owned()
    } else {
        format!("_utf8mb4 X'{}'", hex::encode(value))
    }
}

fn show_value(column: &Column, value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !column.is_binary() => {
            if column.is_text() {
                format!("'{text}'")
            } else {
                text.to_owned()
            }
        }
        _ => {
            let mut out = String::from("0x");
            for byte in value {
                let _ = write!(out, "{byte:02x}");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
        }
    }

    fn table(key: &[(&str, &str)]) -> Table {
        let key: Vec<Column> = key.iter().map(|(n, t)| col(n, t)).collect();
        let mut columns = key.clone();
        columns.push(col("doc", "json"));
        columns.push(col("flags", "bit"));
        Table {
            schema: "db".into(),
            name: "t`x".into(),
            columns,
            key,
        }
    }

    #[test]
    fn open_ranges() {
        let t = table(&[("id", "int")]);
        assert_eq!(t.range(None, None), "TRUE");
        let k: Key = vec![b"10".to_vec()];
        assert_eq!(t.range(Some(&k), None), "((`id` > 10))");
        assert_eq!(t.range(None, Some(&k)), "((`id` < 10) OR (`id` = 10))");
    }

    #[test]
    fn composite_ranges_in_tuple_order() {
        let t = table(&[("a", "int"), ("b", "varbinary")]);
        let lo: Key = vec![b"1".to_vec(), b"\xff'".to_vec()];
        let hi: Key = vec![b"2".to_vec(), b"x".to_vec()];
        assert_eq!(
            t.range(Some(&lo), Some(&hi)),
            "((`a` > 1) OR (`a` = 1 AND `b` > X'ff27')) AND \
             ((`a` < 2) OR (`a` = 2 AND `b` < X'78') OR (`a` = 2 AND `b` = X'78'))"
        );
        assert_eq!(t.show_key(&lo), "(1, 0xff27)");
        assert_eq!(t.show_key_columns(), "(a, b)");
    }

    #[test]
    fn literals_need_no_escaping() {
        let c = col("s", "varchar");
        assert_eq!(literal(&c, b"it's"), "_utf8mb4 X'69742773'");
        assert_eq!(
            literal(&col("d", "date"), b"2024-01-02"),
            "_utf8mb4 X'323032342d30312d3032'"
        );
        assert_eq!(
            literal(&col("n", "bigint"), b"-9223372036854775808"),
            "-9223372036854775808"
        );
        // Not a number after all: never inlined.
        assert_eq!(
            literal(&col("n", "int"), b"1 OR 1"),
            "_utf8mb4 X'31204f522031'"
        );
        assert_eq!(show_value(&c, b"it's"), "'it's'");
    }

    #[test]
    fn checksum_covers_every_column_with_null_markers() {
        let t = table(&[("id", "int")]);
        let sql = t.checksum_sql(None, None);
        assert!(sql.contains("FROM `db`.`t``x` FORCE INDEX (PRIMARY) WHERE TRUE"));
        assert!(sql.contains("CONVERT(`doc` USING utf8mb4)"));
        assert!(sql.contains("CAST(`flags` AS UNSIGNED)"));
        assert!(sql.contains("CONCAT(ISNULL(`id`), ISNULL(`doc`), ISNULL(`flags`))"));
    }

    #[test]
    fn key_walk_statement() {
        let t = table(&[("id", "int")]);
        assert_eq!(
            t.key_at_sql(None, 9999),
            "SELECT `id` FROM `db`.`t``x` FORCE INDEX (PRIMARY) WHERE TRUE ORDER BY `id` LIMIT 1 OFFSET 9999"
        );
    }
}
