//! Maps keyed by prepared-statement ids, hashed with one multiplication instead of
//! SipHash: an execution looks its statement up more than once, and SipHash of a
//! `u32` costs more than the rest of the lookup.
//!
//! Flooding resistance is not needed: the keys are ids a server (or the proxy) handed
//! out, never ones a client chose; a client's id only looks up.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from statement id to `V`.
pub type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing: multiplying by an odd constant is a bijection on the low bits
/// (sequential ids land in distinct buckets) and spreads them into the high bits the
/// table's control bytes use.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_low_and_high_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=64u32).map(|id| build.hash_one(id)).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        assert_eq!(low.len(), 64);
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(high.len() > 32, "{}", high.len());
        let mut map = IdMap::default();
        map.insert(7, "seven");
        map.insert(u32::MAX, "last");
        assert_eq!(map.get(&7), Some(&"seven"));
        assert_eq!(map.get(&u32::MAX), Some(&"last"));
        assert_eq!(map.get(&8), None);
    }
}
