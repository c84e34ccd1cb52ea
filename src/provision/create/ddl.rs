//! Rewrites of blue's DDL text for green. Pure functions.

/// A `SHOW CREATE TABLE` text split in two: the table without its plain and unique
/// secondary indexes, and the `ALTER TABLE … ADD …` that adds them after the data
/// (InnoDB builds an index from sorted data faster than it maintains one row by row).
#[derive(Debug, PartialEq, Eq)]
pub struct SplitTable {
    pub create: String,
    /// `None` when nothing was held back.
    pub add_indexes: Option<String>,
}

/// Split `create` (the text `SHOW CREATE TABLE` gave for `table`, `` `db`.`t` ``).
/// Nothing is held back from a table with foreign keys (they need their indexes), a
/// table without a primary key (InnoDB would cluster it on a unique key), or when the
/// text is not laid out as servers print it (one definition per line).
pub fn split_indexes(table: &str, create: &str) -> SplitTable {
    let whole = || SplitTable {
        create: create.to_owned(),
        add_indexes: None,
    };
    let lines: Vec<&str> = create.lines().collect();
    let (Some(first), Some(close)) = (
        lines.first(),
        lines.iter().rposition(|l| l.starts_with(')')),
    ) else {
        return whole();
    };
    if !first.trim_end().ends_with('(') || close < 2 {
        return whole();
    }
    let body = &lines[1..close];
    let has = |prefix: &str| body.iter().any(|l| l.trim_start().starts_with(prefix));
    let foreign_keys = body.iter().any(|l| l.contains(" FOREIGN KEY "));
    if !has("PRIMARY KEY") || foreign_keys {
        return whole();
    }
    let deferred = |l: &&str| l.starts_with("  KEY ") || l.starts_with("  UNIQUE KEY ");
    let (later, kept): (Vec<&str>, Vec<&str>) = body.iter().copied().partition(deferred);
    if later.is_empty() || kept.is_empty() {
        return whole();
    }
    let mut out = String::from(*first);
    out.push('\n');
    let kept_len = kept.len();
    for (i, line) in kept.iter().enumerate() {
        let line = line.trim_end().trim_end_matches(',');
        out.push_str(line);
        out.push_str(if i + 1 < kept_len { ",\n" } else { "\n" });
    }
    for line in &lines[close..] {
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    let adds: Vec<String> = later
        .iter()
        .map(|l| format!("ADD {}", l.trim().trim_end_matches(',')))
        .collect();
    SplitTable {
        create: out,
        add_indexes: Some(format!("ALTER TABLE {table} {}", adds.join(", "))),
    }
}

/// `SHOW CREATE EVENT`'s text with its status (`ENABLE`, `DISABLE`, `DISABLE ON
/// SLAVE`) replaced by `disabled` (`DISABLE ON SLAVE` on MariaDB, `DISABLE ON
/// REPLICA` on MySQL), so the event exists on green but runs only where it was
/// written. `None` when the text has no status where servers print it.
pub fn disable_event(create: &str, disabled: &str) -> Option<String> {
    let upper = create.to_ascii_uppercase();
    let completion = upper.find(" ON COMPLETION ")?;
    let after = completion + " ON COMPLETION ".len();
    let rest = &upper[after..];
    let status_at = after
        + if rest.starts_with("NOT PRESERVE ") {
            "NOT PRESERVE ".len()
        } else if rest.starts_with("PRESERVE ") {
            "PRESERVE ".len()
        } else {
            return None;
        };
    let status = &upper[status_at..];
    let len = [
        "DISABLE ON SLAVE",
        "DISABLE ON REPLICA",
        "DISABLE",
        "ENABLE",
    ]
    .iter()
    .find(|s| {
        status.starts_with(*s)
            && status[s.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
    })?
    .len();
    Some(format!(
        "{}{disabled}{}",
        &create[..status_at],
        &create[status_at + len..]
    ))
}

/// The `character_set_client` to create a stored object (view, routine, trigger,
/// event) with, given the one it was created with on blue and its text as read in
/// utf8mb4: the same one when the text reads the same in it (a UTF-8 set, or plain
/// ASCII text), else utf8mb4 (the text is then stored in utf8mb4, with the same
/// meaning).
pub fn client_charset<'a>(original: &'a str, text: &str) -> &'a str {
    let utf8 = matches!(original, "utf8mb4" | "utf8mb3" | "utf8");
    if utf8 || (text.is_ascii() && !matches!(original, "ucs2" | "utf16" | "utf16le" | "utf32")) {
        original
    } else {
        "utf8mb4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SBTEST: &str = "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  `c` char(120) NOT NULL DEFAULT '',\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`),\n  UNIQUE KEY `u` (`c`,`k`)\n) ENGINE=InnoDB AUTO_INCREMENT=10001 DEFAULT CHARSET=latin1";

    #[test]
    fn secondary_indexes_come_after_the_data() {
        let split = split_indexes("`db`.`sbtest1`", SBTEST);
        assert_eq!(
            split.create,
            "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  `c` char(120) NOT NULL DEFAULT '',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=10001 DEFAULT CHARSET=latin1"
        );
        assert_eq!(
            split.add_indexes.as_deref(),
            Some("ALTER TABLE `db`.`sbtest1` ADD KEY `k_1` (`k`), ADD UNIQUE KEY `u` (`c`,`k`)")
        );
    }

    #[test]
    fn kept_whole_when_unsafe_to_split() {
        let fk = "CREATE TABLE `c` (\n  `id` int NOT NULL,\n  `p` int DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `p` (`p`),\n  CONSTRAINT `c_ibfk_1` FOREIGN KEY (`p`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB";
        assert_eq!(split_indexes("`db`.`c`", fk).add_indexes, None);
        let no_pk =
            "CREATE TABLE `n` (\n  `a` int NOT NULL,\n  UNIQUE KEY `a` (`a`)\n) ENGINE=InnoDB";
        assert_eq!(split_indexes("`db`.`n`", no_pk).add_indexes, None);
        let only_pk =
            "CREATE TABLE `o` (\n  `a` int NOT NULL,\n  PRIMARY KEY (`a`)\n) ENGINE=InnoDB";
        assert_eq!(split_indexes("`db`.`o`", only_pk).create, only_pk);
        assert_eq!(split_indexes("`db`.`x`", "garbage").create, "garbage");
    }

    #[test]
    fn events_are_disabled_on_the_replica() {
        let e = "CREATE DEFINER=`root`@`localhost` EVENT `tick` ON SCHEDULE EVERY 1 MINUTE STARTS '2024-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO insert into t values (1)";
        assert_eq!(
            disable_event(e, "DISABLE ON SLAVE").as_deref(),
            Some("CREATE DEFINER=`root`@`localhost` EVENT `tick` ON SCHEDULE EVERY 1 MINUTE STARTS '2024-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE ON SLAVE DO insert into t values (1)")
        );
        let p = "CREATE EVENT `e` ON SCHEDULE AT '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE ON SLAVE COMMENT 'x' DO select 1";
        assert_eq!(
            disable_event(p, "DISABLE ON REPLICA").as_deref(),
            Some("CREATE EVENT `e` ON SCHEDULE AT '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE ON REPLICA COMMENT 'x' DO select 1")
        );
        assert_eq!(disable_event("CREATE EVENT e DO select 1", "DISABLE"), None);
    }

    #[test]
    fn stored_objects_keep_their_client_charset_when_they_can() {
        assert_eq!(client_charset("latin1", "select 1"), "latin1");
        assert_eq!(client_charset("latin1", "select 'é'"), "utf8mb4");
        assert_eq!(client_charset("utf8mb3", "select 'é'"), "utf8mb3");
        assert_eq!(client_charset("utf16", "select 1"), "utf8mb4");
    }
}
