//! A light lexical scan of COM_QUERY text for statements whose effects cannot be
//! carried to another server (temporary tables, LOCK TABLES, named locks, XA) and for
//! user-variable assignments. It looks at leading keywords and, for short statements,
//! searches for the few function names that matter; it never parses SQL.

/// What a statement may do to session state the proxy cannot carry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    pub creates_temp_table: bool,
    pub locks_tables: bool,
    pub unlocks_tables: bool,
    pub get_lock: bool,
    pub release_lock: bool,
    pub release_all_locks: bool,
    pub xa_start: bool,
    pub xa_end: bool,
    pub user_variable: bool,
}

/// Longest statement searched for function names; longer ones are bulk data.
const SEARCH_LIMIT: usize = 16 * 1024;

/// Scans one statement (or several, for multi-statements: the function-name search
/// covers all of them, the leading keyword only the first).
pub fn scan(sql: &[u8]) -> Effects {
    let mut e = Effects::default();
    let mut words = Words::new(sql);
    let first = words.next_word();
    let second = words.next_word();
    match first.as_deref() {
        Some(b"CREATE") => {
            e.creates_temp_table = matches!(second.as_deref(), Some(b"TEMPORARY"))
                || (matches!(second.as_deref(), Some(b"OR"))
                    && contains_word_ci(sql, b"TEMPORARY"));
        }
        Some(b"LOCK") => e.locks_tables = matches!(second.as_deref(), Some(b"TABLES" | b"TABLE")),
        Some(b"UNLOCK") => e.unlocks_tables = true,
        Some(b"XA") => match second.as_deref() {
            Some(b"START" | b"BEGIN") => e.xa_start = true,
            Some(b"COMMIT" | b"ROLLBACK") => e.xa_end = true,
            _ => {}
        },
        _ => {}
    }
    if sql.len() <= SEARCH_LIMIT {
        e.get_lock = contains_word_ci(sql, b"GET_LOCK");
        e.release_lock = contains_word_ci(sql, b"RELEASE_LOCK");
        e.release_all_locks = contains_word_ci(sql, b"RELEASE_ALL_LOCKS");
        e.user_variable = sql.contains(&b'@') && has_user_variable(sql);
    }
    e
}

/// True when `@name` (not `@@name`) appears.
fn has_user_variable(sql: &[u8]) -> bool {
    sql.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'@'
            && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'`' || w[1] == b'\'')
            && (i == 0 || sql[i - 1] != b'@')
    })
}

/// Case-insensitive search for `word` not preceded or followed by an identifier byte.
fn contains_word_ci(hay: &[u8], word: &[u8]) -> bool {
    if hay.len() < word.len() {
        return false;
    }
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..=hay.len() - word.len()).any(|i| {
        hay[i..i + word.len()].eq_ignore_ascii_case(word)
            && (i == 0 || !ident(hay[i - 1]))
            && hay.get(i + word.len()).is_none_or(|&b| !ident(b))
    })
}

/// Upper-cased words at the start of a statement, skipping whitespace and comments
/// (`-- …`, `# …`, `/* … */`; MariaDB's executable `/*! … */` comments are read as
/// code).
struct Words<'a> {
    sql: &'a [u8],
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a [u8]) -> Self {
        Words { sql, pos: 0 }
    }

    fn skip_blank(&mut self) {
        loop {
            let rest = &self.sql[self.pos.min(self.sql.len())..];
            match rest {
                [b, ..] if b.is_ascii_whitespace() || *b == b'(' => self.pos += 1,
                [b'/', b'*', b'!', ..] => {
                    self.pos += 3;
                    while self.sql.get(self.pos).is_some_and(u8::is_ascii_digit) {
                        self.pos += 1;
                    }
                }
                [b'/', b'*', ..] => match find(&rest[2..], b"*/") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => self.pos = self.sql.len(),
                },
                [b'-', b'-', c, ..] if c.is_ascii_whitespace() => self.skip_line(),
                [b'#', ..] => self.skip_line(),
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.sql.len() && self.sql[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn next_word(&mut self) -> Option<Vec<u8>> {
        self.skip_blank();
        let start = self.pos;
        while self
            .sql
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.sql[start..self.pos].to_ascii_uppercase())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert!(scan(b"create temporary table t (a int)").creates_temp_table);
        assert!(scan(b"  /* hi */ CREATE TEMPORARY TABLE t (a int)").creates_temp_table);
        assert!(!scan(b"CREATE TABLE t (a int)").creates_temp_table);
        assert!(scan(b"LOCK TABLES t WRITE").locks_tables);
        assert!(scan(b"unlock tables").unlocks_tables);
        assert!(scan(b"XA START 'x'").xa_start);
        assert!(scan(b"xa commit 'x'").xa_end);
        assert!(scan(b"SELECT GET_LOCK('a', 1)").get_lock);
        assert!(!scan(b"SELECT MY_GET_LOCK('a', 1)").get_lock);
        assert!(scan(b"select release_all_locks()").release_all_locks);
        assert!(scan(b"-- c\nselect get_lock('a',1)").get_lock);
    }

    #[test]
    fn user_variables() {
        assert!(scan(b"SET @x = 1").user_variable);
        assert!(scan(b"select 1 into @x").user_variable);
        assert!(!scan(b"select @@version").user_variable);
        assert!(!scan(b"select 1").user_variable);
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            &b""[..],
            b"/*",
            b"--",
            b"#",
            b"/*!",
            b"(((",
            b"@",
            b"\xff\xfe",
        ] {
            scan(s);
        }
    }
}
