//! MySQL GTID sets, as pure values.
//!
//! A MySQL GTID is `uuid:n` (the source server's UUID and a transaction number), or
//! `uuid:tag:n` with a tag (8.3 and later). `@@gtid_executed` is a *set* of them, not a
//! position: `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18:batch:1-3,2174b383-…:1-3`
//! — per UUID, its untagged intervals, then each tag followed by its intervals.
//!
//! [`MySqlGtidSet`] keeps, per (uuid, tag), the transaction numbers as sorted inclusive
//! intervals. Unlike MariaDB positions, two sets compare exactly: a set contains another
//! when it holds every transaction of it, whichever server wrote it.
//!
//! Written to MySQL's documentation of the GTID set text format; the integration tests
//! read and wait for MySQL 9.7's sets with it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The highest transaction number MySQL hands out (`2^63 - 1`).
pub const MAX_TRANSACTION: u64 = i64::MAX as u64;

/// Tags are at most this long (MySQL's limit).
const MAX_TAG_LEN: usize = 32;

/// Why a MySQL GTID set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a MySQL GTID set: {why}")]
pub struct MySqlGtidParseError {
    /// The part of the input that was refused.
    pub text: String,
    pub why: &'static str,
}

fn refuse(text: &str, why: &'static str) -> MySqlGtidParseError {
    MySqlGtidParseError {
        text: text.to_owned(),
        why,
    }
}

/// A transaction source: a server UUID (lower case, dashed) and a tag (lower case;
/// empty for untagged GTIDs). Ordered by UUID, untagged first, as MySQL prints them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    uuid: String,
    tag: String,
}

impl Source {
    /// Checks and normalises `uuid` and `tag` (`""` for none).
    pub fn new(uuid: &str, tag: &str) -> Result<Source, MySqlGtidParseError> {
        Ok(Source {
            uuid: parse_uuid(uuid)?,
            tag: if tag.is_empty() {
                String::new()
            } else {
                parse_tag(tag)?
            },
        })
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The tag, `""` for untagged GTIDs.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// A set of MySQL GTIDs; the empty string is the empty set.
///
/// Invariant: every source maps to a non-empty list of inclusive intervals
/// `(first, last)` with `1 <= first <= last <= MAX_TRANSACTION`, sorted, neither
/// overlapping nor touching (`1-3:4-5` is kept as `1-5`). So equal sets are equal
/// values, and [`fmt::Display`] prints one canonical text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MySqlGtidSet {
    sources: BTreeMap<Source, Vec<(u64, u64)>>,
}

impl MySqlGtidSet {
    pub fn new() -> MySqlGtidSet {
        MySqlGtidSet::default()
    }

    /// Parse MySQL's text form. Accepts what the server prints (`,\n` between UUIDs,
    /// upper- or lower-case hex, tags in any case), a UUID named in several groups,
    /// and overlapping intervals; refuses anything else, so that a parsed and printed
    /// set holds only hex digits, digits, `-`, `:`, `,` and tag characters.
    pub fn parse(text: &str) -> Result<MySqlGtidSet, MySqlGtidParseError> {
        let mut set = MySqlGtidSet::new();
        if text.trim().is_empty() {
            return Ok(set);
        }
        for group in text.split(',') {
            set.parse_group(group)?;
        }
        // Sorted and merged once at the end: a set can hold many intervals.
        for list in set.sources.values_mut() {
            normalize(list);
        }
        Ok(set)
    }

    /// One `uuid[:intervals][:tag:intervals]…` group; its intervals are appended
    /// unsorted ([`MySqlGtidSet::parse`] restores the invariant).
    fn parse_group(&mut self, group: &str) -> Result<(), MySqlGtidParseError> {
        let mut parts = group.split(':').map(str::trim);
        let uuid = parse_uuid(parts.next().unwrap_or_default())?;
        let mut source = Source {
            uuid,
            tag: String::new(),
        };
        // A group needs at least one interval, and so does every tag it names.
        let mut any_interval = false;
        let mut tag_open = false;
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                let interval = parse_interval(part)?;
                self.sources
                    .entry(source.clone())
                    .or_default()
                    .push(interval);
                any_interval = true;
                tag_open = false;
            } else {
                if tag_open {
                    return Err(refuse(group, "a tag has no transaction numbers"));
                }
                source.tag = parse_tag(part)?;
                tag_open = true;
            }
        }
        if tag_open || !any_interval {
            return Err(refuse(group, "a UUID or tag has no transaction numbers"));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Add the transactions `first..=last` of `source`. Numbers outside
    /// `1..=MAX_TRANSACTION` are left out; an inverted range adds nothing.
    pub fn insert(&mut self, source: &Source, first: u64, last: u64) {
        let (first, last) = (first.max(1), last.min(MAX_TRANSACTION));
        if first > last {
            return;
        }
        let intervals = self.sources.entry(source.clone()).or_default();
        intervals.push((first, last));
        normalize(intervals);
    }

    /// Every (source, first, last) interval, in canonical order.
    pub fn intervals(&self) -> impl Iterator<Item = (&Source, u64, u64)> + '_ {
        self.sources
            .iter()
            .flat_map(|(s, list)| list.iter().map(move |&(a, b)| (s, a, b)))
    }

    /// Whether every transaction of `other` is in this set (`GTID_SUBSET(other, self)`).
    pub fn contains(&self, other: &MySqlGtidSet) -> bool {
        other.subtract(self).is_empty()
    }

    /// The transactions of this set that `other` lacks (`GTID_SUBTRACT(self, other)`).
    pub fn subtract(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        let mut out = MySqlGtidSet::new();
        for (source, mine) in &self.sources {
            let left = match other.sources.get(source) {
                Some(theirs) => subtract_intervals(mine, theirs),
                None => mine.clone(),
            };
            if !left.is_empty() {
                out.sources.insert(source.clone(), left);
            }
        }
        out
    }

    /// Every transaction of either set.
    pub fn union(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        let mut out = self.clone();
        for (source, first, last) in other.intervals() {
            out.insert(source, first, last);
        }
        out
    }

    /// The canonical text of each UUID's part (`uuid:1-5:tag:1-3`), in order: what
    /// [`fmt::Display`] joins with commas, handy for listing errant transactions.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut current: Option<&str> = None;
        for (source, list) in &self.sources {
            if current != Some(source.uuid.as_str()) {
                current = Some(&source.uuid);
                out.push(source.uuid.clone());
            }
            let Some(text) = out.last_mut() else {
                continue;
            };
            if !source.tag.is_empty() {
                text.push(':');
                text.push_str(&source.tag);
            }
            for &(first, last) in list {
                if first == last {
                    text.push_str(&format!(":{first}"));
                } else {
                    text.push_str(&format!(":{first}-{last}"));
                }
            }
        }
        out
    }
}

/// Sorts `list` and merges overlapping or touching intervals.
fn normalize(list: &mut Vec<(u64, u64)>) {
    list.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
    for &(first, last) in list.iter() {
        match merged.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    *list = merged;
}

/// `mine` minus `theirs`, both canonical (sorted, disjoint); the result is canonical.
/// One pass over both lists.
fn subtract_intervals(mine: &[(u64, u64)], theirs: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    // `theirs[skip..]` are the cuts that can still reach the current interval of `mine`.
    let mut skip = 0;
    for &(first, last) in mine {
        while theirs
            .get(skip)
            .is_some_and(|&(_, cut_last)| cut_last < first)
        {
            skip += 1;
        }
        let mut start = first;
        for &(cut_first, cut_last) in theirs.iter().skip(skip) {
            if cut_first > last {
                break;
            }
            if cut_first > start {
                out.push((start, cut_first - 1));
            }
            start = cut_last.saturating_add(1);
            if start > last {
                break;
            }
        }
        if start <= last {
            out.push((start, last));
        }
    }
    out
}

/// `8-4-4-4-12` hex digits, returned in lower case.
fn parse_uuid(text: &str) -> Result<String, MySqlGtidParseError> {
    let text = text.trim();
    let dashes = [8, 13, 18, 23];
    let well_formed = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| {
            if dashes.contains(&i) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    if well_formed {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(refuse(text, "not a server UUID"))
    }
}

/// A tag: a letter or `_`, then letters, digits or `_`, at most 32 in all. Tags are
/// case-insensitive; returned in lower case, as MySQL prints them.
fn parse_tag(text: &str) -> Result<String, MySqlGtidParseError> {
    let mut bytes = text.bytes();
    let starts_well = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let rest_well = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if starts_well && rest_well && text.len() <= MAX_TAG_LEN {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(refuse(text, "not a GTID tag"))
    }
}

/// `n` or `first-last`, decimal, `1 <= first <= last <= MAX_TRANSACTION`.
fn parse_interval(text: &str) -> Result<(u64, u64), MySqlGtidParseError> {
    let number = |s: &str| {
        Some(s)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| (1..=MAX_TRANSACTION).contains(n))
            .ok_or_else(|| refuse(text, "not a transaction number (1 to 2^63-1)"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if first > last {
        return Err(refuse(text, "an interval ends before it starts"));
    }
    Ok((first, last))
}

impl fmt::Display for MySqlGtidSet {
    /// MySQL's text form, canonical: UUIDs in order, untagged intervals first, then
    /// tags in order; groups separated by `,` (MySQL itself prints `,\n`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.groups().join(","))
    }
}

impl FromStr for MySqlGtidSet {
    type Err = MySqlGtidParseError;

    fn from_str(s: &str) -> Result<MySqlGtidSet, MySqlGtidParseError> {
        MySqlGtidSet::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "2174b383-5441-11e8-b90a-c80aa9429562";

    fn set(s: &str) -> MySqlGtidSet {
        MySqlGtidSet::parse(s).unwrap()
    }

    #[test]
    fn empty_string_is_empty_set() {
        assert!(set("").is_empty());
        assert!(set(" \n").is_empty());
        assert_eq!(set("").to_string(), "");
    }

    #[test]
    fn parses_and_prints_canonically() {
        // MySQL's own output: upper case accepted, `,\n` between UUIDs.
        let s = set(&format!("{}:1-5:11-18,\n{B}:1-3", A.to_uppercase()));
        assert_eq!(s.to_string(), format!("{B}:1-3,{A}:1-5:11-18"));
        // Overlapping, touching and repeated intervals merge; single numbers print bare.
        assert_eq!(
            set(&format!("{A}:3-4:1-2:7:6")).to_string(),
            format!("{A}:1-4:6-7")
        );
        assert_eq!(
            set(&format!("{A}:1-3,{A}:2-9")).to_string(),
            format!("{A}:1-9")
        );
        assert_eq!(set(&format!("{A}:5-5")).to_string(), format!("{A}:5"));
        assert_eq!(
            set(&format!("{A}:9223372036854775807")).to_string(),
            format!("{A}:9223372036854775807")
        );
    }

    #[test]
    fn keeps_tags() {
        // Untagged intervals first, then tags in order, lower case.
        let s = set(&format!("{A}:Domain_2:8-52,{A}:domain_1:1-3:15-21,{A}:1-4"));
        assert_eq!(
            s.to_string(),
            format!("{A}:1-4:domain_1:1-3:15-21:domain_2:8-52")
        );
        assert_eq!(set(&s.to_string()), s);
        // A tag-only UUID.
        assert_eq!(set(&format!("{A}:_t:1")).to_string(), format!("{A}:_t:1"));
        let tagged = Source::new(A, "Domain_1").unwrap();
        assert_eq!(tagged.tag(), "domain_1");
        assert!(s
            .intervals()
            .any(|(src, a, b)| src == &tagged && (a, b) == (1, 3)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            A.to_string(),
            format!("{A}:"),
            format!("{A}:0"),
            format!("{A}:0-3"),
            format!("{A}:5-3"),
            format!("{A}:1-"),
            format!("{A}:-1"),
            format!("{A}:+1"),
            format!("{A}:1-2-3"),
            format!("{A}:9223372036854775808"),
            format!("{A}:tag"),
            format!("{A}:tag:other:1"),
            format!("{A}:1:9tag:1"),
            format!("{A}:1:ta-g:1"),
            format!("{A}:1:{}:1", "t".repeat(33)),
            format!("{A}:1,"),
            format!(",{A}:1"),
            format!("{A}:1,,{B}:1"),
            format!("{A}:1');DROP TABLE t;--"),
            "3e11fa47-71ca-11e1-9e33-c80aa942956:1".to_string(),
            "3e11fa47x71ca-11e1-9e33-c80aa9429562:1".to_string(),
            "g e11fa47-71ca-11e1-9e33-c80aa942956:1".to_string(),
            "0-1-10".to_string(),
        ] {
            assert!(MySqlGtidSet::parse(&bad).is_err(), "{bad:?} parsed");
        }
        assert!(MySqlGtidSet::parse(&format!("{A}:1:{}:1", "t".repeat(32))).is_ok());
    }

    #[test]
    fn contains_and_subtract() {
        let primary = set(&format!("{A}:1-100"));
        assert!(primary.contains(&set(&format!("{A}:1-40"))));
        assert!(primary.contains(&set("")));
        assert!(!primary.contains(&set(&format!("{A}:1-101"))));
        assert!(!primary.contains(&set(&format!("{B}:1"))));
        // A local write on the standby (its own UUID): errant.
        let standby = set(&format!("{A}:1-90,{B}:1"));
        assert_eq!(standby.subtract(&primary).to_string(), format!("{B}:1"));
        // A lagging standby: nothing errant.
        assert!(set(&format!("{A}:1-90")).subtract(&primary).is_empty());
        // A hole punched in the middle; tags are separate sources.
        assert_eq!(
            set(&format!("{A}:1-10:t:1-2")).subtract(&set(&format!("{A}:4-6:t:2"))),
            set(&format!("{A}:1-3:7-10:t:1"))
        );
        assert_eq!(
            set(&format!("{A}:1-10")).subtract(&set(&format!("{A}:1:3:10"))),
            set(&format!("{A}:2:4-9"))
        );
        assert_eq!(
            set(&format!("{A}:1-3,{B}:1-2")).groups(),
            vec![format!("{B}:1-2"), format!("{A}:1-3")]
        );
    }

    /// Brute-force model: every transaction as a (uuid, tag, number) triple.
    fn elements(s: &MySqlGtidSet) -> BTreeSet<(String, String, u64)> {
        s.intervals()
            .flat_map(|(src, a, b)| (a..=b).map(move |n| (src.uuid.clone(), src.tag.clone(), n)))
            .collect()
    }

    fn arb_set() -> impl Strategy<Value = MySqlGtidSet> {
        let source = (0usize..2, 0usize..3);
        proptest::collection::vec((source, 1u64..40, 0u64..6), 0..8).prop_map(|items| {
            let mut s = MySqlGtidSet::new();
            for ((u, t), first, len) in items {
                let src = Source::new([A, B][u], ["", "a", "b_1"][t]).unwrap();
                s.insert(&src, first, first + len);
            }
            s
        })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(s in arb_set()) {
            let text = s.to_string();
            let back = MySqlGtidSet::parse(&text).unwrap();
            prop_assert_eq!(back.to_string(), text);
            prop_assert_eq!(back, s);
        }

        #[test]
        fn operations_match_the_model(a in arb_set(), b in arb_set()) {
            let (ea, eb) = (elements(&a), elements(&b));
            prop_assert_eq!(elements(&a.subtract(&b)), &ea - &eb);
            prop_assert_eq!(elements(&a.union(&b)), &ea | &eb);
            prop_assert_eq!(a.contains(&b), eb.is_subset(&ea));
        }

        #[test]
        fn subset_laws(a in arb_set(), b in arb_set()) {
            prop_assert!(a.contains(&a));
            prop_assert!(a.subtract(&a).is_empty());
            prop_assert!(a.contains(&a.subtract(&b)));
            prop_assert!(a.union(&b).contains(&a) && a.union(&b).contains(&b));
            prop_assert!(a.subtract(&b).union(&b).contains(&a));
            prop_assert_eq!(a.contains(&b) && b.contains(&a), a == b);
        }

        #[test]
        fn parse_never_panics(text in "[0-9a-fA-F:,\\- _tgx\n]{0,80}") {
            let _ = MySqlGtidSet::parse(&text);
        }
    }
}
