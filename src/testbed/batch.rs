//! Parsing the `mariadb` client's batch output (`-B`): tab-separated columns, one row
//! a line, with `\t`, `\n`, `\\` and `\0` escaped inside values.

use std::collections::BTreeMap;

/// One result row, by column name.
pub type Row = BTreeMap<String, String>;

/// Rows of a batch-mode result printed with its header line (`-B` without `-N`).
pub fn parse_rows(output: &str) -> Vec<Row> {
    let mut lines = output.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<String> = header.split('\t').map(unescape).collect();
    lines
        .map(|line| {
            columns
                .iter()
                .cloned()
                .zip(line.split('\t').map(unescape))
                .collect()
        })
        .collect()
}

/// Undo the client's batch-mode escaping of one value.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_rows() {
        let rows = parse_rows("a\tb\n1\tx\\ty\n2\tline\\nbreak\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["a"], "1");
        assert_eq!(rows[0]["b"], "x\ty");
        assert_eq!(rows[1]["b"], "line\nbreak");
    }

    #[test]
    fn empty_output_has_no_rows() {
        assert!(parse_rows("").is_empty());
    }

    #[test]
    fn unescapes_backslashes() {
        assert_eq!(unescape(r"C:\\dir"), r"C:\dir");
        assert_eq!(unescape(r"trailing\"), r"trailing\");
    }
}
