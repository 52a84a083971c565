//! Sharding a run across machines: [`Shard`] `I/N` takes a deterministic, stable share of the
//! selected databases, so N cron hosts or the N pods of a Kubernetes Indexed Job back up every
//! database exactly once between them.
//!
//! A database belongs to the shard its `ACCOUNT/NAME` hashes to (FNV-1a, 64 bits, fixed
//! forever): the share does not depend on the order of the configuration, and adding or
//! removing a database moves no other database to another shard. An engine built for a shard
//! ([`EngineBuilder::shard`](crate::EngineBuilder::shard)) also uses 1/N of each token's
//! request budget, so N shards together stay inside Cloudflare's limit.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// One share of N: `index` from 1 to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (from 1) of `count`; `None` unless `1 <= index <= count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index >= 1 && index <= count).then_some(Self { index, count })
    }

    /// The shard's number, from 1.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the database `name` of the account named `account` is in this shard.
    pub fn contains(self, account: &str, name: &str) -> bool {
        let hash = fnv1a(account.as_bytes(), name.as_bytes());
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// `requests` divided among the shards (at least 1).
    pub fn share_of(self, requests: u32) -> u32 {
        (requests / self.count).max(1)
    }
}

/// FNV-1a over `account`, `/`, `name`: stable across versions and platforms.
fn fnv1a(account: &[u8], name: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in account.iter().chain(b"/").chain(name) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `I/N` (1-based): `2/3` is the second of three shards.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)))
            .and_then(|(i, n)| Self::new(i, n));
        parsed.ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{s:?} is not a shard: write I/N with 1 <= I <= N, e.g. 2/3 for the second of three (a Kubernetes Indexed Job's index plus one)"
                ),
            )
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        let parse = |s: &str| s.parse::<Shard>().ok().map(|s| (s.index(), s.count()));
        assert_eq!(parse("1/1"), Some((1, 1)));
        assert_eq!(parse("2/3"), Some((2, 3)));
        for bad in ["0/3", "4/3", "1/0", "a/b", "3", "", "1/2/3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(
            Shard::new(2, 3).map(|s| s.to_string()).as_deref(),
            Some("2/3")
        );
    }

    #[test]
    fn every_database_is_in_exactly_one_shard_and_the_shares_are_even() {
        let count = 3;
        let shards: Vec<Shard> = (1..=count).filter_map(|i| Shard::new(i, count)).collect();
        let mut sizes = vec![0usize; shards.len()];
        for n in 0..3000 {
            let name = format!("tenant-{n:05}");
            let owners: Vec<usize> = shards
                .iter()
                .enumerate()
                .filter(|(_, s)| s.contains("ucca", &name))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(owners.len(), 1, "{name}");
            sizes[owners[0]] += 1;
        }
        assert!(
            sizes.iter().all(|&n| (900..=1100).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn the_share_is_fixed_forever() {
        // Changing the hash would move databases between shards of running deployments.
        assert_eq!(fnv1a(b"", b""), 0xaf63_a24c_8601_89fe);
        assert_eq!(fnv1a(b"ucca", b"ops-db"), 0xddc1_1dfa_07aa_f5e7);
        let shard = Shard::new(1, 1).unwrap_or_else(|| panic!("1/1"));
        assert!(shard.contains("any", "thing"));
        assert_eq!(Shard::new(2, 3).map(|s| s.share_of(900)), Some(300));
        assert_eq!(Shard::new(1, 5000).map(|s| s.share_of(900)), Some(1));
    }
}
