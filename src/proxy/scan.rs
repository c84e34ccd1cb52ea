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
    /// The statement starts with KILL.
    pub kill: bool,
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
    let second = second.as_ref().map(Word::as_deref);
    e.kill = matches!(first.as_ref().map(Word::as_deref), Some(b"KILL"));
    match first.as_ref().map(Word::as_deref) {
        Some(b"CREATE") => {
            e.creates_temp_table = matches!(second, Some(b"TEMPORARY"))
                || (matches!(second, Some(b"OR")) && contains_word_ci(sql, b"TEMPORARY"));
        }
        Some(b"LOCK") => e.locks_tables = matches!(second, Some(b"TABLES" | b"TABLE")),
        Some(b"UNLOCK") => e.unlocks_tables = true,
        Some(b"XA") => match second {
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

/// For `KILL [HARD|SOFT] [CONNECTION | QUERY [ID]] n`: the byte range of `n` and its
/// value, so the proxy can put the backend's thread id in place of its own session id.
pub fn kill_target(sql: &[u8]) -> Option<(usize, usize, u32)> {
    let mut words = Words::new(sql);
    if words.next_word().as_ref().map(Word::as_deref) != Some(&b"KILL"[..]) {
        return None;
    }
    loop {
        words.skip_blank();
        let start = words.pos;
        let word = words.next_word()?;
        let text = &sql[start..words.pos];
        if text.iter().all(u8::is_ascii_digit) {
            let rest = &sql[words.pos..];
            let only_blank_after = rest.iter().all(|b| b.is_ascii_whitespace() || *b == b';');
            let n = std::str::from_utf8(text).ok()?.parse().ok()?;
            return only_blank_after.then_some((start, words.pos, n));
        }
        if !matches!(
            word.as_deref(),
            b"HARD" | b"SOFT" | b"CONNECTION" | b"QUERY" | b"ID"
        ) {
            return None;
        }
    }
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

    /// The next word, upper-cased into a fixed buffer (no allocation); words longer
    /// than the buffer are cut, which is fine for keyword comparison.
    fn next_word(&mut self) -> Option<Word> {
        self.skip_blank();
        let start = self.pos;
        while self
            .sql
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| Word::new(&self.sql[start..self.pos]))
    }
}

/// A short upper-cased word.
#[derive(Clone, Copy)]
struct Word {
    bytes: [u8; 16],
    len: usize,
}

impl Word {
    fn new(src: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        let len = src.len().min(16);
        for (d, s) in bytes.iter_mut().zip(src) {
            *d = s.to_ascii_uppercase();
        }
        // A longer word must not compare equal to a keyword that is its prefix.
        let len = if src.len() > 16 { 16 + 1 } else { len };
        Word { bytes, len }
    }
}

impl Word {
    fn as_deref(&self) -> &[u8] {
        if self.len > 16 {
            &[]
        } else {
            &self.bytes[..self.len]
        }
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
    fn kill_statements() {
        assert_eq!(kill_target(b"KILL 12"), Some((5, 7, 12)));
        assert_eq!(kill_target(b"kill query 7;"), Some((11, 12, 7)));
        assert_eq!(kill_target(b"KILL HARD CONNECTION 3"), Some((21, 22, 3)));
        assert_eq!(kill_target(b"KILL QUERY ID 9"), Some((14, 15, 9)));
        assert_eq!(kill_target(b"KILL USER app"), None);
        assert_eq!(kill_target(b"KILL 1 + 1"), None);
        assert_eq!(kill_target(b"SELECT 1"), None);
        assert_eq!(kill_target(b"KILL 99999999999"), None);
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
