//! MariaDB GTID positions and states, as pure values.
//!
//! A MariaDB GTID is `domain-server-seq`. The server shows two shapes of list:
//! - a *position* (`@@gtid_binlog_pos`, `@@gtid_slave_pos`, `@@gtid_current_pos`,
//!   the argument of `MASTER_GTID_WAIT`): at most one GTID per domain, the last one;
//! - a *state* (`@@gtid_binlog_state`): one GTID per (domain, server id), the last
//!   that server logged in that domain.
//!
//! [`GtidSet`] holds either shape: at most one entry per (domain, server id), kept
//! sorted. Comparisons go per domain, by sequence number: with `gtid_strict_mode`
//! sequence numbers only grow inside a domain, whichever server wrote them, so the
//! highest one in a domain is how far that domain has got.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// One MariaDB GTID, `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// Why a GTID list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidParseError {
    #[error("{text:?} is not a MariaDB GTID (expected domain-server-seq)")]
    BadGtid { text: String },
    #[error("GTID list names domain {domain} server {server} twice")]
    Duplicate { domain: u32, server: u32 },
}

impl FromStr for Gtid {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Gtid, GtidParseError> {
        let bad = || GtidParseError::BadGtid { text: s.to_owned() };
        let mut parts = s.trim().split('-');
        let mut next = || parts.next().filter(|p| is_decimal(p)).ok_or_else(bad);
        let domain = next()?.parse().map_err(|_| bad())?;
        let server = next()?.parse().map_err(|_| bad())?;
        let seq = next()?.parse().map_err(|_| bad())?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Gtid {
            domain,
            server,
            seq,
        })
    }
}

/// Only ASCII digits: `u32::from_str` would also take a leading `+`.
fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A MariaDB GTID position or state; the empty string is the empty set.
///
/// Invariant: at most one entry per (domain, server id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    /// (domain, server) → seq.
    entries: BTreeMap<(u32, u32), u64>,
}

impl GtidSet {
    /// The empty set (what a server that never logged a transaction shows).
    pub fn new() -> GtidSet {
        GtidSet::default()
    }

    /// Parse `0-1-10,1-2-5` (whitespace around entries is allowed, as MariaDB's own
    /// output can contain a newline after a comma). A (domain, server) pair may appear
    /// only once.
    pub fn parse(text: &str) -> Result<GtidSet, GtidParseError> {
        let mut set = GtidSet::new();
        if text.trim().is_empty() {
            return Ok(set);
        }
        for part in text.split(',') {
            let gtid: Gtid = part.parse()?;
            if set
                .entries
                .insert((gtid.domain, gtid.server), gtid.seq)
                .is_some()
            {
                return Err(GtidParseError::Duplicate {
                    domain: gtid.domain,
                    server: gtid.server,
                });
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, ordered by domain then server id.
    pub fn iter(&self) -> impl Iterator<Item = Gtid> + '_ {
        self.entries.iter().map(|(&(domain, server), &seq)| Gtid {
            domain,
            server,
            seq,
        })
    }

    /// Add `gtid`, replacing the entry for its (domain, server) if there is one.
    pub fn insert(&mut self, gtid: Gtid) {
        self.entries.insert((gtid.domain, gtid.server), gtid.seq);
    }

    /// The last GTID of `domain`: its entry with the highest sequence number.
    pub fn last_in_domain(&self, domain: u32) -> Option<Gtid> {
        self.entries
            .range((domain, 0)..=(domain, u32::MAX))
            .map(|(&(domain, server), &seq)| Gtid {
                domain,
                server,
                seq,
            })
            .max_by_key(|g| g.seq)
    }

    /// The domains present, ascending.
    pub fn domains(&self) -> impl Iterator<Item = u32> + '_ {
        let mut last = None;
        self.entries.keys().filter_map(move |&(domain, _)| {
            if last == Some(domain) {
                None
            } else {
                last = Some(domain);
                Some(domain)
            }
        })
    }

    /// The position this set stands for: the last GTID of every domain. A state
    /// (`@@gtid_binlog_state`) becomes what `@@gtid_binlog_pos` would show.
    pub fn position(&self) -> GtidSet {
        let mut out = GtidSet::new();
        for domain in self.domains() {
            if let Some(g) = self.last_in_domain(domain) {
                out.insert(g);
            }
        }
        out
    }

    /// Whether everything `other` reached is reached here too: for every domain of
    /// `other`, this set has the domain with a sequence number at least as high.
    pub fn contains(&self, other: &GtidSet) -> bool {
        other.domains().all(|domain| {
            match (self.last_in_domain(domain), other.last_in_domain(domain)) {
                (Some(mine), Some(theirs)) => mine.seq >= theirs.seq,
                (None, Some(_)) => false,
                (_, None) => true,
            }
        })
    }

    /// The furthest of two positions, per domain: the GTID with the higher sequence
    /// number (this set's on a tie). Used to compute where a former primary has really
    /// got to from its `gtid_binlog_pos` and its (possibly stale) `gtid_slave_pos`.
    pub fn furthest(&self, other: &GtidSet) -> GtidSet {
        let mut out = GtidSet::new();
        let mine = self.position();
        let theirs = other.position();
        for domain in mine.domains().chain(theirs.domains()) {
            let best = match (mine.last_in_domain(domain), theirs.last_in_domain(domain)) {
                (Some(a), Some(b)) if b.seq > a.seq => b,
                (Some(a), _) => a,
                (None, Some(b)) => b,
                (None, None) => continue,
            };
            out.insert(best);
        }
        out
    }
}

/// The GTIDs of `replica_pos` that `primary_pos` does not have: entries whose domain
/// the primary lacks, whose sequence number is beyond the primary's last in that
/// domain, or that sit at the primary's last sequence number but were written by
/// another server (two different transactions with one number: strict mode refuses
/// the primary's when it arrives). Either shape (position or state) may be passed.
///
/// Limit: a position cannot reveal a local write on a *lagging* replica whose sequence
/// number the primary has since passed; compare states with [`errant_by_state`] for
/// that (`gtid_strict_mode` also turns it into a replication error).
pub fn errant(primary_pos: &GtidSet, replica_pos: &GtidSet) -> Vec<Gtid> {
    replica_pos
        .iter()
        .filter(|g| match primary_pos.last_in_domain(g.domain) {
            Some(p) => g.seq > p.seq || (g.seq == p.seq && g.server != p.server),
            None => true,
        })
        .collect()
}

/// Like [`errant`], for two `@@gtid_binlog_state`s: also an entry of a server the
/// primary has never logged in that domain, or one further than the primary's entry
/// for that server (with `gtid_strict_mode`, each server's GTIDs in a domain only grow,
/// so the primary's entry is the last of that server's it has).
///
/// Meant for a replica that was built from the primary (its binlog state is then made
/// of the primary's GTIDs plus its own); a replica seeded from elsewhere can carry
/// history the primary never logged, reported here too.
pub fn errant_by_state(primary_state: &GtidSet, replica_state: &GtidSet) -> Vec<Gtid> {
    let by_position = errant(primary_state, replica_state);
    replica_state
        .iter()
        .filter(|g| {
            by_position.contains(g)
                || primary_state
                    .entries
                    .get(&(g.domain, g.server))
                    .is_none_or(|&seq| g.seq > seq)
        })
        .collect()
}

impl fmt::Display for GtidSet {
    /// MariaDB's own text form, entries ordered by domain then server id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

impl FromStr for GtidSet {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<GtidSet, GtidParseError> {
        GtidSet::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(s: &str) -> GtidSet {
        GtidSet::parse(s).unwrap()
    }

    fn g(domain: u32, server: u32, seq: u64) -> Gtid {
        Gtid {
            domain,
            server,
            seq,
        }
    }

    #[test]
    fn empty_string_is_empty_set() {
        assert!(set("").is_empty());
        assert!(set("  \n").is_empty());
        assert_eq!(set("").to_string(), "");
    }

    #[test]
    fn parses_mariadb_forms() {
        let s = set("0-1-10,1-2-5");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![g(0, 1, 10), g(1, 2, 5)]);
        // MariaDB prints long lists with a newline after the comma.
        assert_eq!(set("1-2-5,\n0-1-10"), s);
        assert_eq!(s.to_string(), "0-1-10,1-2-5");
        assert_eq!(
            set("0-4294967295-18446744073709551615").to_string(),
            "0-4294967295-18446744073709551615"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "0-1",
            "0-1-2-3",
            "a-1-2",
            "0-1-",
            "-1-2",
            "0-1-+2",
            "0-1-2,",
            ",0-1-2",
            "0-1-2;DROP",
            "0 -1-2",
            "0-99999999999-1",
        ] {
            assert!(GtidSet::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            GtidSet::parse("0-1-2,0-1-3"),
            Err(GtidParseError::Duplicate {
                domain: 0,
                server: 1
            })
        );
    }

    #[test]
    fn state_has_several_servers_per_domain() {
        // @@gtid_binlog_state after blue (1) wrote, green (2) took over, blue came back.
        let state = set("0-1-30,0-2-20,1-2-7");
        assert_eq!(state.last_in_domain(0), Some(g(0, 1, 30)));
        assert_eq!(state.position(), set("0-1-30,1-2-7"));
        assert_eq!(state.domains().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn contains_is_per_domain_by_seq() {
        assert!(set("0-1-10").contains(&set("0-1-10")));
        assert!(set("0-1-10").contains(&set("0-1-9")));
        assert!(!set("0-1-9").contains(&set("0-1-10")));
        // The server id does not matter, only how far the domain got.
        assert!(set("0-2-11").contains(&set("0-1-10")));
        assert!(!set("0-1-10").contains(&set("0-1-5,1-1-1")));
        assert!(set("0-1-10,1-1-1").contains(&set("0-1-5")));
        assert!(set("0-1-1").contains(&set("")));
        assert!(!set("").contains(&set("0-1-1")));
    }

    #[test]
    fn errant_finds_replica_only_gtids() {
        // Lagging replica: nothing errant.
        assert!(errant(&set("0-1-10"), &set("0-1-8")).is_empty());
        assert!(errant(&set("0-1-10"), &set("0-1-10")).is_empty());
        // A write on the replica itself, beyond the primary.
        assert_eq!(errant(&set("0-1-10"), &set("0-2-11")), vec![g(0, 2, 11)]);
        // A domain the primary never saw.
        assert_eq!(
            errant(&set("0-1-10"), &set("0-1-10,5-2-1")),
            vec![g(5, 2, 1)]
        );
        // From a state: only the entries beyond the primary's domain position.
        assert_eq!(
            errant(&set("0-1-30"), &set("0-1-30,0-2-31")),
            vec![g(0, 2, 31)]
        );
        assert!(errant(&set(""), &set("")).is_empty());
        // Same sequence number, another server: two different transactions.
        assert_eq!(errant(&set("0-2-28"), &set("0-1-28")), vec![g(0, 1, 28)]);
    }

    #[test]
    fn errant_by_state_sees_a_passed_local_write() {
        // Green (2) wrote 0-2-11 locally while lagging; blue has since reached 15.
        let blue = set("0-1-15");
        let green = set("0-1-10,0-2-11");
        assert!(errant(&blue.position(), &green.position()).is_empty());
        assert_eq!(errant_by_state(&blue, &green), vec![g(0, 2, 11)]);
        // After a switchover and back, both know both servers: nothing errant.
        let blue = set("0-1-40,0-2-30");
        assert!(errant_by_state(&blue, &set("0-1-38,0-2-30")).is_empty());
        assert_eq!(
            errant_by_state(&blue, &set("0-1-40,0-2-31")),
            vec![g(0, 2, 31)]
        );
    }

    #[test]
    fn furthest_takes_the_higher_seq_per_domain() {
        // A former replica (slave_pos 0-2-50) that never wrote as primary: its own
        // binlog position is older and must not win.
        assert_eq!(set("0-1-10").furthest(&set("0-2-50")), set("0-2-50"));
        // With log_slave_updates the binlog position is ahead or equal.
        assert_eq!(set("0-1-60").furthest(&set("0-2-50")), set("0-1-60"));
        assert_eq!(set("0-1-60").furthest(&set("")), set("0-1-60"));
        assert_eq!(set("0-1-6").furthest(&set("1-2-3")), set("0-1-6,1-2-3"));
        // A tie keeps this set's GTID.
        assert_eq!(set("0-1-6").furthest(&set("0-2-6")), set("0-1-6"));
    }

    fn arb_set() -> impl Strategy<Value = GtidSet> {
        proptest::collection::btree_map((0u32..4, 0u32..4), any::<u64>(), 0..8)
            .prop_map(|entries| GtidSet { entries })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(s in arb_set()) {
            prop_assert_eq!(GtidSet::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn contains_is_reflexive_and_errant_free(s in arb_set()) {
            prop_assert!(s.contains(&s));
            prop_assert!(errant(&s, &s).is_empty());
        }

        #[test]
        fn no_errant_means_primary_contains_replica(p in arb_set(), r in arb_set()) {
            if errant(&p, &r).is_empty() {
                prop_assert!(p.contains(&r));
            }
            if errant_by_state(&p, &r).is_empty() {
                prop_assert!(errant(&p, &r).is_empty());
            }
        }

        #[test]
        fn nothing_errant_in_a_prefix(p in arb_set()) {
            // Under gtid_strict_mode no two GTIDs of a domain share a sequence number.
            for d in p.domains() {
                let seqs: Vec<u64> = p.iter().filter(|g| g.domain == d).map(|g| g.seq).collect();
                let mut unique = seqs.clone();
                unique.sort_unstable();
                unique.dedup();
                prop_assume!(unique.len() == seqs.len());
            }
            // A replica that applied only the primary's GTIDs, perhaps fewer of them.
            let mut r = GtidSet::new();
            for g in p.iter() {
                r.insert(Gtid { seq: g.seq / 2, ..g });
            }
            prop_assert!(errant_by_state(&p, &r).is_empty());
        }

        #[test]
        fn furthest_contains_both(a in arb_set(), b in arb_set()) {
            let f = a.furthest(&b);
            prop_assert!(f.contains(&a));
            prop_assert!(f.contains(&b));
            prop_assert_eq!(f.position(), f.clone());
        }

        #[test]
        fn parse_never_panics(text in "[0-9,\\- a-z]{0,40}") {
            let _ = GtidSet::parse(&text);
        }
    }
}
