//! Column types compared the way row-based replication converts them: a type change
//! is the same, wider (converted with `ALL_NON_LOSSY`), or anything else (narrower or
//! of another kind, which loses data or stops the applier). Pure; nothing panics on
//! an odd type text.

/// How a column's type changed from blue to green.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChange {
    Same,
    /// Every value of the old type fits the new one.
    Wider,
    /// Narrower, or another kind of type: values are cut or refused.
    Lossy,
}

/// A type text split into its name, its numbers and its attributes.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    name: String,
    args: Vec<u64>,
    /// `unsigned`, `zerofill` and the like, lowercase.
    rest: String,
    /// The argument list as written, for types whose arguments are not numbers
    /// (`enum('a','b')`).
    raw_args: &'a str,
}

fn parse(text: &str) -> Parsed<'_> {
    let text = text.trim();
    let (name, args, rest) = match text.find('(') {
        Some(open) => {
            let close = text.rfind(')').filter(|c| *c > open).unwrap_or(text.len());
            let args = text.get(open + 1..close).unwrap_or("");
            let rest = text.get(close + 1..).unwrap_or("");
            (text.get(..open).unwrap_or(text), args, rest)
        }
        None => match text.split_once(' ') {
            Some((name, rest)) => (name, "", rest),
            None => (text, "", ""),
        },
    };
    Parsed {
        name: name.trim().to_ascii_lowercase(),
        args: args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect(),
        rest: rest.trim().to_ascii_lowercase(),
        raw_args: args,
    }
}

/// Bytes of an integer type (`None` for other types).
fn integer_width(name: &str) -> Option<u8> {
    Some(match name {
        "tinyint" => 1,
        "smallint" => 2,
        "mediumint" => 3,
        "int" | "integer" => 4,
        "bigint" => 8,
        _ => return None,
    })
}

/// Rank of a `text`/`blob` type within its family (`None` for other types).
fn lob_rank(name: &str) -> Option<(&'static str, u8)> {
    Some(match name {
        "tinytext" => ("text", 1),
        "text" => ("text", 2),
        "mediumtext" => ("text", 3),
        "longtext" => ("text", 4),
        "tinyblob" => ("blob", 1),
        "blob" => ("blob", 2),
        "mediumblob" => ("blob", 3),
        "longblob" => ("blob", 4),
        _ => return None,
    })
}

/// The family of a sized string type: characters or bytes.
fn string_family(name: &str) -> Option<&'static str> {
    match name {
        "char" | "varchar" => Some("char"),
        "binary" | "varbinary" => Some("binary"),
        _ => None,
    }
}

fn first(args: &[u64]) -> u64 {
    args.first().copied().unwrap_or(1)
}

/// How `green` relates to `blue` for values row-based replication copies.
pub fn compare(blue: &str, green: &str) -> TypeChange {
    let (b, g) = (parse(blue), parse(green));
    if let (Some(bw), Some(gw)) = (integer_width(&b.name), integer_width(&g.name)) {
        // The display width (`int(11)`) means nothing to the values; signedness does.
        return if b.rest == g.rest {
            grows(bw.into(), gw.into())
        } else {
            TypeChange::Lossy
        };
    }
    if b == g {
        return TypeChange::Same;
    }
    if b.rest != g.rest {
        return TypeChange::Lossy;
    }
    let wider_if = |ok: bool| {
        if ok {
            TypeChange::Wider
        } else {
            TypeChange::Lossy
        }
    };
    if let (Some(bf), Some(gf)) = (string_family(&b.name), string_family(&g.name)) {
        let (bn, gn) = (first(&b.args), first(&g.args));
        return if b.name == g.name {
            grows(bn, gn)
        } else {
            // A fixed-length value keeps its length in a variable-length column; the
            // other way round, trailing spaces are stripped.
            wider_if(bf == gf && !b.name.starts_with("var") && gn >= bn)
        };
    }
    if let (Some((bf, br)), Some((gf, gr))) = (lob_rank(&b.name), lob_rank(&g.name)) {
        return if bf == gf {
            grows(br.into(), gr.into())
        } else {
            TypeChange::Lossy
        };
    }
    match (b.name.as_str(), g.name.as_str()) {
        ("decimal" | "numeric", "decimal" | "numeric") => {
            // Defaults: DECIMAL = DECIMAL(10,0).
            let digits = |p: &Parsed| {
                let precision = p.args.first().copied().unwrap_or(10);
                let scale = p.args.get(1).copied().unwrap_or(0);
                (precision.saturating_sub(scale), scale)
            };
            let ((bi, bs), (gi, gs)) = (digits(&b), digits(&g));
            if (bi, bs) == (gi, gs) {
                TypeChange::Same
            } else {
                wider_if(gi >= bi && gs >= bs)
            }
        }
        ("float", "double") => TypeChange::Wider,
        ("bit", "bit") => grows(first(&b.args), first(&g.args)),
        ("enum" | "set", _) if g.name == b.name => {
            // New members at the end keep every old member's number.
            wider_if(
                !b.raw_args.is_empty()
                    && g.raw_args
                        .strip_prefix(b.raw_args)
                        .is_some_and(|more| more.starts_with(',')),
            )
        }
        _ => TypeChange::Lossy,
    }
}

/// A size from `blue` to `green`: larger is wider, smaller loses data.
fn grows(blue: u64, green: u64) -> TypeChange {
    match green.cmp(&blue) {
        std::cmp::Ordering::Greater => TypeChange::Wider,
        std::cmp::Ordering::Equal => TypeChange::Same,
        std::cmp::Ordering::Less => TypeChange::Lossy,
    }
}

#[cfg(test)]
mod tests {
    use super::TypeChange::{Lossy, Same, Wider};
    use super::*;

    #[test]
    fn integers_by_width_and_sign() {
        assert_eq!(compare("int(11)", "int"), Same);
        assert_eq!(compare("int(11)", "bigint(20)"), Wider);
        assert_eq!(compare("bigint", "int"), Lossy);
        assert_eq!(compare("int unsigned", "bigint unsigned"), Wider);
        assert_eq!(compare("int(10) unsigned", "bigint(20)"), Lossy);
    }

    #[test]
    fn strings_widen_within_their_family() {
        assert_eq!(compare("varchar(32)", "varchar(64)"), Wider);
        assert_eq!(compare("varchar(64)", "varchar(32)"), Lossy);
        assert_eq!(compare("char(10)", "varchar(10)"), Wider);
        assert_eq!(compare("varchar(10)", "varbinary(10)"), Lossy);
        assert_eq!(compare("text", "longtext"), Wider);
        assert_eq!(compare("mediumblob", "blob"), Lossy);
        assert_eq!(compare("text", "blob"), Lossy);
    }

    #[test]
    fn decimals_keep_integer_and_fraction_digits() {
        assert_eq!(compare("decimal(10,2)", "decimal(12,2)"), Wider);
        assert_eq!(compare("decimal(10,2)", "decimal(11,3)"), Wider);
        assert_eq!(compare("decimal(10,2)", "decimal(10,3)"), Lossy);
        assert_eq!(compare("decimal(10,2)", "decimal(9,2)"), Lossy);
    }

    #[test]
    fn other_kinds() {
        assert_eq!(compare("float", "double"), Wider);
        assert_eq!(compare("double", "float"), Lossy);
        assert_eq!(compare("enum('a','b')", "enum('a','b','c')"), Wider);
        assert_eq!(compare("enum('a','b')", "enum('b','a')"), Lossy);
        assert_eq!(compare("int", "varchar(11)"), Lossy);
        assert_eq!(compare("datetime(6)", "datetime(6)"), Same);
        assert_eq!(compare("int", "("), Lossy);
        assert_eq!(compare("decimal(", "decimal(,)"), Same);
    }

    proptest::proptest! {
        /// Wider is never symmetric, and a type is the same as itself.
        #[test]
        fn wider_is_one_way(a in "[a-z]{1,9}(\\([0-9,]{0,5}\\))?( unsigned)?",
                            b in "[a-z]{1,9}(\\([0-9,]{0,5}\\))?( unsigned)?") {
            proptest::prop_assert_eq!(compare(&a, &a), Same);
            if compare(&a, &b) == Wider {
                proptest::prop_assert_eq!(compare(&b, &a), Lossy);
            }
        }

        /// VARCHAR(n) → VARCHAR(m) is wider exactly when m > n.
        #[test]
        fn varchar_lengths(n in 1u64..70000, m in 1u64..70000) {
            let expected = match m.cmp(&n) {
                std::cmp::Ordering::Equal => Same,
                std::cmp::Ordering::Greater => Wider,
                std::cmp::Ordering::Less => Lossy,
            };
            proptest::prop_assert_eq!(compare(&format!("varchar({n})"), &format!("varchar({m})")), expected);
        }
    }
}
