//! A light lexical scan of COM_QUERY text for statements whose effects cannot be
//! carried to another server (temporary tables, LOCK TABLES, named locks, XA) and for
//! user-variable assignments. It looks at leading keywords and, for short statements,
//! searches for the few function names that matter; it never parses SQL.

/// What a statement may do to session state the proxy cannot carry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    pub creates_temp_table: bool,
    /// `DROP [TEMPORARY] TABLE …`: may drop a temporary table.
    pub drops_table: bool,
    /// `LOCK TABLES …`: holds table locks until `UNLOCK TABLES`.
    pub locks_tables: bool,
    /// `UNLOCK TABLES`.
    pub unlocks_tables: bool,
    /// MySQL's `LOCK INSTANCE FOR BACKUP`: holds the backup lock until
    /// `UNLOCK INSTANCE` (not `UNLOCK TABLES`).
    pub locks_instance: bool,
    /// `UNLOCK INSTANCE`.
    pub unlocks_instance: bool,
    pub get_lock: bool,
    pub release_lock: bool,
    pub release_all_locks: bool,
    pub xa_start: bool,
    pub xa_end: bool,
    pub user_variable: bool,
    /// The statement starts with KILL.
    pub kill: bool,
    /// May set what `LAST_INSERT_ID()` answers: an INSERT, REPLACE or LOAD, or
    /// `LAST_INSERT_ID(expr)`.
    pub insert_id: bool,
    /// `HANDLER …`: a table handler may have been opened or closed.
    pub handler: bool,
    /// `SET ROLE …`: the session's current role changed.
    pub role: bool,
    /// `PREPARE name FROM …` (a prepared statement of SQL's own, not the protocol's).
    pub sql_prepare: bool,
    /// `DEALLOCATE PREPARE name` / `DROP PREPARE name`.
    pub sql_deallocate: bool,
    /// The text holds more than one statement (a multi-statement).
    pub several: bool,
}

impl Effects {
    /// Only what takes hold of the server (a temporary table, a lock, an XA
    /// transaction, a user variable), for a multi-statement that failed part-way:
    /// the statements before the failing one did run.
    pub fn acquisitions(&self) -> Effects {
        Effects {
            creates_temp_table: self.creates_temp_table,
            sql_prepare: self.sql_prepare,
            insert_id: self.insert_id,
            role: self.role,
            handler: self.handler,
            locks_tables: self.locks_tables,
            locks_instance: self.locks_instance,
            get_lock: self.get_lock,
            xa_start: self.xa_start,
            user_variable: self.user_variable,
            several: self.several,
            ..Effects::default()
        }
    }
}

/// Longest statement searched for function names; longer ones are bulk data.
const SEARCH_LIMIT: usize = 16 * 1024;

/// Scans one statement, or each statement of a multi-statement (the function-name
/// search covers the whole text).
pub fn scan(sql: &[u8]) -> Effects {
    let mut e = Effects::default();
    // Splitting only when a ';' is there keeps the common case one pass shorter.
    if sql.contains(&b';') {
        let mut count = 0;
        for statement in statements(sql) {
            count += 1;
            leading_keywords(statement, &mut e);
        }
        e.several = count > 1;
        e.kill &= !e.several;
    } else {
        leading_keywords(sql, &mut e);
    }
    if sql.len() <= SEARCH_LIMIT {
        search_names(sql, &mut e);
    }
    e
}

/// One pass over `sql` for the function names that matter (as whole words, in any
/// case) and for user variables. A name matches where [`contains_word_ci`] would:
/// the names are made of identifier bytes only, so a match is exactly a maximal run of
/// identifier bytes equal to the name.
fn search_names(sql: &[u8], e: &mut Effects) {
    let ident = is_ident;
    let mut i = 0;
    while i < sql.len() {
        let b = sql[i];
        if b == b'@' {
            // `@name`, not `@@name` (a system variable).
            let next = sql.get(i + 1).copied();
            e.user_variable |= (i == 0 || sql[i - 1] != b'@')
                && next.is_some_and(|n| ident(n) || n == b'`' || n == b'\'');
            i += 1;
            continue;
        }
        if !ident(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < sql.len() && ident(sql[i]) {
            i += 1;
        }
        let word = &sql[start..i];
        // Only the lengths of the names are worth comparing.
        match word.len() {
            8 => e.get_lock |= word.eq_ignore_ascii_case(b"GET_LOCK"),
            12 => e.release_lock |= word.eq_ignore_ascii_case(b"RELEASE_LOCK"),
            14 => e.insert_id |= word.eq_ignore_ascii_case(b"LAST_INSERT_ID"),
            17 => e.release_all_locks |= word.eq_ignore_ascii_case(b"RELEASE_ALL_LOCKS"),
            _ => {}
        }
    }
}

/// Whether [`scan`] may find a KILL in `sql` — the one thing that must be known
/// before the statement is sent (it is rewritten). False for almost every statement,
/// which can then be scanned while the server works.
pub fn may_kill(sql: &[u8]) -> bool {
    // With a ';', a KILL may begin any piece: scan it all.
    sql.contains(&b';') || Words::new(sql).next_word().as_ref().map(Word::as_deref) == Some(b"KILL")
}

/// What the first two words of one statement say, added to `e`.
fn leading_keywords(sql: &[u8], e: &mut Effects) {
    let mut words = Words::new(sql);
    let first = words.next_word();
    let second = words.next_word();
    let second = second.as_ref().map(Word::as_deref);
    match first.as_ref().map(Word::as_deref) {
        Some(b"CREATE") => {
            e.creates_temp_table |= matches!(second, Some(b"TEMPORARY"))
                || (matches!(second, Some(b"OR")) && contains_word_ci(sql, b"TEMPORARY"));
        }
        Some(b"DROP") => {
            e.drops_table |= matches!(second, Some(b"TEMPORARY" | b"TABLE" | b"TABLES"));
            e.sql_deallocate |= matches!(second, Some(b"PREPARE"));
        }
        Some(b"DEALLOCATE") => e.sql_deallocate |= matches!(second, Some(b"PREPARE")),
        Some(b"PREPARE") => e.sql_prepare = true,
        Some(b"INSERT" | b"REPLACE" | b"LOAD") => e.insert_id = true,
        Some(b"SET") => e.role |= matches!(second, Some(b"ROLE")),
        Some(b"HANDLER") => e.handler = true,
        Some(b"LOCK") => match second {
            Some(b"TABLES" | b"TABLE") => e.locks_tables = true,
            Some(b"INSTANCE") => e.locks_instance = true,
            _ => {}
        },
        Some(b"UNLOCK") => match second {
            Some(b"INSTANCE") => e.unlocks_instance = true,
            _ => e.unlocks_tables = true,
        },
        Some(b"XA") => match second {
            Some(b"START" | b"BEGIN") => e.xa_start = true,
            Some(b"COMMIT" | b"ROLLBACK") => e.xa_end = true,
            _ => {}
        },
        Some(b"KILL") => e.kill = true,
        _ => {}
    }
}

/// The statements of a multi-statement text: split at each `;` that is not inside a
/// quoted string, a quoted identifier or a comment. Blank pieces are left out. (A
/// `;` inside a compound statement's body splits it too; the pieces are then
/// scanned as statements of their own, which can only pin more, never less.)
fn statements(sql: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while start < sql.len() {
            let end = loop {
                match sql.get(i) {
                    None => break sql.len(),
                    Some(b';') => break i,
                    Some(&q @ (b'\'' | b'"' | b'`')) => i = skip_quoted(sql, i, q),
                    Some(b'#') => i = skip_to(sql, i, b"\n"),
                    Some(b'-')
                        if sql.get(i + 1) == Some(&b'-')
                            && sql.get(i + 2).is_none_or(u8::is_ascii_whitespace) =>
                    {
                        i = skip_to(sql, i, b"\n")
                    }
                    Some(b'/') if sql.get(i + 1) == Some(&b'*') => {
                        i = skip_to(sql, i + 2, b"*/") + 2;
                    }
                    Some(_) => i += 1,
                }
            };
            let piece = &sql[start..end.min(sql.len())];
            i = end + 1;
            start = i;
            if !piece.iter().all(u8::is_ascii_whitespace) {
                return Some(piece);
            }
        }
        None
    })
}

/// The index just past the quoted text that starts at `open` (a doubled quote
/// stays inside; so does a backslash-escaped one, except in identifiers).
fn skip_quoted(sql: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < sql.len() {
        match sql[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => {
                if sql.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    sql.len()
}

/// The index of the next `needle` at or after `from` (the end if there is none).
fn skip_to(sql: &[u8], from: usize, needle: &[u8]) -> usize {
    let from = from.min(sql.len());
    find(&sql[from..], needle).map_or(sql.len(), |at| from + at)
}

/// A single `PREPARE name FROM …` or `DEALLOCATE|DROP PREPARE name`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlPrepare {
    /// `name` is lower-cased (the server compares these names case-insensitively).
    /// `from_literal`: the text is a string literal, so the statement can be sent again
    /// as it is; otherwise it comes from a user variable, whose value may change.
    Prepare {
        name: String,
        from_literal: bool,
    },
    Deallocate {
        name: String,
    },
}

/// Reads a `PREPARE` or `DEALLOCATE PREPARE` statement; `None` for anything else or
/// anything it cannot read.
pub fn sql_prepare(sql: &[u8]) -> Option<SqlPrepare> {
    let mut words = Words::new(sql);
    let first = words.next_word()?;
    let deallocate = match first.as_deref() {
        b"PREPARE" => false,
        b"DEALLOCATE" | b"DROP" => {
            if words.next_word()?.as_deref() != b"PREPARE" {
                return None;
            }
            true
        }
        _ => return None,
    };
    words.skip_blank();
    let name = words.identifier()?.to_lowercase();
    if deallocate {
        return Some(SqlPrepare::Deallocate { name });
    }
    if words.next_word()?.as_deref() != b"FROM" {
        return None;
    }
    words.skip_blank();
    let from_literal = match words.sql.get(words.pos)? {
        b'\'' | b'"' => true,
        b'@' => false,
        _ => return None,
    };
    Some(SqlPrepare::Prepare { name, from_literal })
}

/// A single `HANDLER t OPEN [AS h]` or `HANDLER h CLOSE`: the handler's name
/// (lower-cased; the alias if there is one, else the table's name without its schema)
/// and whether it opens. `None` for other `HANDLER` statements (`READ`) and for
/// anything it cannot read.
pub fn handler(sql: &[u8]) -> Option<(String, bool)> {
    let mut words = Words::new(sql);
    if words.next_word()?.as_deref() != b"HANDLER" {
        return None;
    }
    words.skip_blank();
    let mut name = words.identifier()?;
    if words.sql.get(words.pos) == Some(&b'.') {
        words.pos += 1;
        name = words.identifier()?;
    }
    let opens = match words.next_word()?.as_deref() {
        b"OPEN" => true,
        b"CLOSE" => false,
        _ => return None,
    };
    if opens {
        let save = words.pos;
        match words.next_word().as_ref().map(Word::as_deref) {
            Some(b"AS") => {
                words.skip_blank();
                name = words.identifier()?;
            }
            _ => {
                // `HANDLER t OPEN h`: the alias without AS.
                words.pos = save;
                words.skip_blank();
                if let Some(alias) = words.identifier() {
                    name = alias;
                }
            }
        }
    }
    Some((name.to_lowercase(), opens))
}

/// The tables a single `CREATE [OR REPLACE] TEMPORARY TABLE [IF NOT EXISTS] t …` or
/// `DROP [TEMPORARY] TABLE[S] [IF EXISTS] t1, t2 …` names, as `(schema, table)` with
/// quotes removed; `None` for any other statement or one it cannot read.
pub fn table_names(sql: &[u8]) -> Option<Vec<(Option<String>, String)>> {
    let mut words = Words::new(sql);
    let first = words.next_word()?;
    let several = match first.as_deref() {
        b"CREATE" => false,
        b"DROP" => true,
        _ => return None,
    };
    // Keywords up to the first name.
    loop {
        let save = words.pos;
        let word = words.next_word();
        match word.as_ref().map(Word::as_deref) {
            Some(
                b"OR" | b"REPLACE" | b"TEMPORARY" | b"TABLE" | b"TABLES" | b"IF" | b"NOT"
                | b"EXISTS",
            ) => {}
            _ => {
                words.pos = save;
                break;
            }
        }
    }
    let mut names = Vec::new();
    loop {
        words.skip_blank();
        let first = words.identifier()?;
        let name = if words.sql.get(words.pos) == Some(&b'.') {
            words.pos += 1;
            (Some(first), words.identifier()?)
        } else {
            (None, first)
        };
        names.push(name);
        words.skip_blank();
        if !(several && words.sql.get(words.pos) == Some(&b',')) {
            return Some(names);
        }
        words.pos += 1;
    }
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

/// True when `@name` (not `@@name`) appears. The reference [`search_names`] is
/// checked against.
#[cfg(test)]
fn has_user_variable(sql: &[u8]) -> bool {
    sql.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'@'
            && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'`' || w[1] == b'\'')
            && (i == 0 || sql[i - 1] != b'@')
    })
}

/// Case-insensitive search for `word` (made of identifier bytes) not preceded or
/// followed by an identifier byte: one of the maximal runs of identifier bytes is it.
/// One pass, whatever the length of `word`.
fn contains_word_ci(hay: &[u8], word: &[u8]) -> bool {
    hay.split(|&b| !is_ident(b))
        .any(|run| run.eq_ignore_ascii_case(word))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
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

    /// A bare or back-quoted identifier at the current position, unquoted.
    fn identifier(&mut self) -> Option<String> {
        let rest = &self.sql[self.pos.min(self.sql.len())..];
        if rest.first() == Some(&b'`') {
            let end = skip_quoted(rest, 0, b'`');
            if end < 2 || rest[end - 1] != b'`' {
                return None;
            }
            self.pos += end;
            let inner = String::from_utf8_lossy(&rest[1..end - 1]);
            return Some(inner.replace("``", "`"));
        }
        let len = rest
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80)
            .count();
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(String::from_utf8_lossy(&rest[..len]).into_owned())
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

    /// The search as it was (O(n·m)), the reference the one-pass searches are checked
    /// against.
    fn contains_word_ci_reference(hay: &[u8], word: &[u8]) -> bool {
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

    #[test]
    fn one_pass_search_finds_what_the_reference_found() {
        let names: [&[u8]; 4] = [
            b"GET_LOCK",
            b"RELEASE_LOCK",
            b"RELEASE_ALL_LOCKS",
            b"LAST_INSERT_ID",
        ];
        let cases: [&[u8]; 12] = [
            b"SELECT GET_LOCK('a', 1)",
            b"select get_lock('a',1), release_lock('a')",
            b"SELECT MY_GET_LOCK(1), GET_LOCKS(2), GET_LOCK_",
            b"SELECT RELEASE_ALL_LOCKS()",
            b"SELECT last_insert_id(), @a, @@b, @`c`, @'d'",
            b"SELECT 1@x, @@@y, x@",
            b"@",
            b"get_lock",
            b"SELECT \xff\xfeGET_LOCK\x80",
            b"SELECT 'GET_LOCK' FROM t",
            b"",
            b"CREATE OR REPLACE TEMPORARY TABLE t (a int)",
        ];
        for sql in cases {
            let mut e = Effects::default();
            search_names(sql, &mut e);
            let found = [e.get_lock, e.release_lock, e.release_all_locks, e.insert_id];
            for (name, found) in names.iter().zip(found) {
                assert_eq!(
                    found,
                    contains_word_ci_reference(sql, name),
                    "{name:?} in {sql:?}"
                );
                assert_eq!(
                    contains_word_ci(sql, name),
                    contains_word_ci_reference(sql, name)
                );
            }
            assert_eq!(e.user_variable, has_user_variable(sql), "{sql:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn one_pass_search_agrees_with_the_reference(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "GET_LOCK", "get_lock", "RELEASE_LOCK", "RELEASE_ALL_LOCKS",
                    "last_insert_id", "@", "@@", "`", "'", "_", "x", "1", " ", "(", ",", "\u{e9}",
                ]),
                0..12,
            )
        ) {
            let sql = parts.concat();
            let sql = sql.as_bytes();
            let mut e = Effects::default();
            search_names(sql, &mut e);
            proptest::prop_assert_eq!(e.get_lock, contains_word_ci_reference(sql, b"GET_LOCK"));
            proptest::prop_assert_eq!(e.release_lock, contains_word_ci_reference(sql, b"RELEASE_LOCK"));
            proptest::prop_assert_eq!(
                e.release_all_locks,
                contains_word_ci_reference(sql, b"RELEASE_ALL_LOCKS")
            );
            proptest::prop_assert_eq!(e.insert_id, contains_word_ci_reference(sql, b"LAST_INSERT_ID"));
            proptest::prop_assert_eq!(e.user_variable, has_user_variable(sql));
        }
    }

    #[test]
    fn keywords() {
        assert!(scan(b"create temporary table t (a int)").creates_temp_table);
        assert!(scan(b"  /* hi */ CREATE TEMPORARY TABLE t (a int)").creates_temp_table);
        assert!(!scan(b"CREATE TABLE t (a int)").creates_temp_table);
        assert!(scan(b"LOCK TABLES t WRITE").locks_tables);
        assert!(scan(b"unlock tables").unlocks_tables);
        assert!(scan(b"LOCK INSTANCE FOR BACKUP").locks_instance);
        assert!(!scan(b"LOCK INSTANCE FOR BACKUP").locks_tables);
        assert!(scan(b"/* x */ lock instance for backup").locks_instance);
        assert!(scan(b"UNLOCK INSTANCE").unlocks_instance);
        assert!(!scan(b"UNLOCK INSTANCE").unlocks_tables);
        assert!(!scan(b"unlock tables").unlocks_instance);
        assert!(!scan(b"LOCKS INSTANCE").locks_instance);
        assert!(scan(b"XA START 'x'").xa_start);
        assert!(scan(b"xa commit 'x'").xa_end);
        assert!(scan(b"SELECT GET_LOCK('a', 1)").get_lock);
        assert!(!scan(b"SELECT MY_GET_LOCK('a', 1)").get_lock);
        assert!(scan(b"select release_all_locks()").release_all_locks);
        assert!(scan(b"-- c\nselect get_lock('a',1)").get_lock);
    }

    #[test]
    fn every_statement_of_a_multi_statement_is_scanned() {
        let e = scan(b"SELECT 1; CREATE TEMPORARY TABLE t (a int)");
        assert!(e.creates_temp_table && e.several);
        let e = scan(b"SELECT ';', \"a;b\", `c;d` /* ; */ -- ;\n; LOCK TABLES t READ");
        assert!(e.locks_tables && e.several);
        // A ';' only inside quotes, comments or escapes splits nothing.
        for one in [
            &b"SELECT 'it''s; fine', 'a\\';b'"[..],
            b"SELECT 1 /* ; */",
            b"SELECT 1; ",
            b"SELECT `x;y` FROM t # ;",
        ] {
            assert!(!scan(one).several, "{}", String::from_utf8_lossy(one));
        }
        assert!(scan(b"SELECT 1--1;\nLOCK TABLES t WRITE").locks_tables);
        assert!(!scan(b"KILL 5; SELECT 1").kill);
        assert!(scan(b"KILL 5;").kill);
    }

    #[test]
    fn table_names_of_create_and_drop() {
        let n = |s: &str, t: &str| (Some(s.to_owned()), t.to_owned());
        let bare = |t: &str| (None, t.to_owned());
        assert_eq!(
            table_names(b"CREATE TEMPORARY TABLE t (a int)"),
            Some(vec![bare("t")])
        );
        assert_eq!(
            table_names(
                b"create or replace temporary table if not exists db.`we``ird` as select 1"
            ),
            Some(vec![n("db", "we`ird")])
        );
        assert_eq!(
            table_names(b"DROP TEMPORARY TABLE IF EXISTS a, `b`.c ,d"),
            Some(vec![bare("a"), n("b", "c"), bare("d")])
        );
        assert_eq!(table_names(b"DROP TABLE"), None);
        assert_eq!(table_names(b"SELECT 1"), None);
        assert_eq!(table_names(b"CREATE TEMPORARY TABLE `open"), None);
    }

    #[test]
    fn statements_that_may_set_the_insert_id() {
        for sql in [
            &b"INSERT INTO t VALUES (1)"[..],
            b"replace into t values (1)",
            b"LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
            b"SELECT LAST_INSERT_ID(42)",
            b"SELECT 1; INSERT INTO t VALUES (2)",
        ] {
            assert!(scan(sql).insert_id, "{}", String::from_utf8_lossy(sql));
        }
        assert!(!scan(b"SELECT * FROM inserts").insert_id);
        assert!(!scan(b"UPDATE t SET a = 1").insert_id);
    }

    #[test]
    fn handlers() {
        assert!(scan(b"HANDLER t OPEN").handler);
        assert_eq!(handler(b"HANDLER t OPEN"), Some(("t".into(), true)));
        assert_eq!(handler(b"handler db.T open as H"), Some(("h".into(), true)));
        assert_eq!(handler(b"HANDLER t OPEN h2"), Some(("h2".into(), true)));
        assert_eq!(handler(b"HANDLER h CLOSE"), Some(("h".into(), false)));
        assert_eq!(handler(b"HANDLER h READ FIRST"), None);
        assert_eq!(handler(b"HANDLER"), None);
    }

    #[test]
    fn set_role() {
        assert!(scan(b"SET ROLE admin").role);
        assert!(scan(b"set role none").role);
        assert!(!scan(b"SET DEFAULT ROLE admin").role);
        assert!(!scan(b"SET @role = 1").role);
    }

    #[test]
    fn sql_prepare_statements() {
        let prepare = |name: &str, from_literal| {
            Some(SqlPrepare::Prepare {
                name: name.into(),
                from_literal,
            })
        };
        assert!(scan(b"PREPARE s FROM 'SELECT 1'").sql_prepare);
        assert!(scan(b"deallocate prepare s").sql_deallocate);
        assert!(scan(b"DROP PREPARE s").sql_deallocate);
        assert!(!scan(b"DROP TABLE s").sql_deallocate);
        assert_eq!(
            sql_prepare(b"PREPARE S1 FROM 'SELECT ?'"),
            prepare("s1", true)
        );
        assert_eq!(
            sql_prepare(b"prepare `My s` from \"x\""),
            prepare("my s", true)
        );
        assert_eq!(sql_prepare(b"PREPARE s FROM @q"), prepare("s", false));
        assert_eq!(
            sql_prepare(b"DEALLOCATE PREPARE Stmt"),
            Some(SqlPrepare::Deallocate {
                name: "stmt".into()
            })
        );
        assert_eq!(sql_prepare(b"PREPARE s FROM CONCAT('a')"), None);
        assert_eq!(sql_prepare(b"PREPARE s"), None);
        assert_eq!(sql_prepare(b"DROP TABLE s"), None);
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
            b";;;",
            b"'",
            b"'\\",
            b"`;",
            b"/*;",
            b"--;",
            b"DROP TABLE `",
            b"DROP TABLE a.",
            b"CREATE TEMPORARY TABLE a,",
            b"PREPARE",
            b"PREPARE s FROM",
            b"DEALLOCATE PREPARE `",
            b"HANDLER `",
            b"HANDLER a. OPEN",
            b"HANDLER a OPEN AS",
        ] {
            scan(s);
            table_names(s);
            sql_prepare(s);
            handler(s);
        }
    }
}
