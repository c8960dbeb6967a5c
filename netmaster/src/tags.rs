//! Sets of small integers (VLAN ids, VNIs) as sorted, merged ranges: compact and
//! deterministic to store, with "lowest free" found in O(1) amortised when allocations
//! are dense from the bottom.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Range {
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Range {
        Range { first, last }
    }
    fn lo(&self) -> u32 {
        u32::from(self.first)
    }
    fn hi(&self) -> u32 {
        u32::from(self.last)
    }
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.first <= a && a <= self.last
    }
    pub fn len(&self) -> u64 {
        u64::from(self.hi() - self.lo()) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Sorted, disjoint, non-adjacent ranges of addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet(Vec<(u32, u32)>);

impl RangeSet {
    pub fn contains(&self, a: u32) -> bool {
        let i = self.0.partition_point(|r| r.1 < a);
        self.0.get(i).is_some_and(|r| r.0 <= a)
    }
    pub fn count(&self) -> u64 {
        self.0.iter().map(|r| u64::from(r.1 - r.0) + 1).sum()
    }
    /// Adds `a` (which must be absent), merging with neighbours.
    pub fn insert(&mut self, a: u32) {
        let i = self.0.partition_point(|r| r.1 < a);
        let joins_prev = i > 0 && self.0[i - 1].1.checked_add(1) == Some(a);
        let joins_next = i < self.0.len() && a.checked_add(1) == Some(self.0[i].0);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = a,
            (false, true) => self.0[i].0 = a,
            (false, false) => self.0.insert(i, (a, a)),
        }
    }
    /// Removes `a` (which must be present), splitting its range.
    pub fn remove(&mut self, a: u32) {
        let i = self.0.partition_point(|r| r.1 < a);
        let (lo, hi) = self.0[i];
        match (lo == a, hi == a) {
            (true, true) => {
                self.0.remove(i);
            }
            (true, false) => self.0[i].0 = a + 1,
            (false, true) => self.0[i].1 = a - 1,
            (false, false) => {
                self.0[i].1 = a - 1;
                self.0.insert(i + 1, (a + 1, hi));
            }
        }
    }
    /// The lowest address in `[lo, hi]` not in the set and not rejected by `skip`.
    pub fn first_free(&self, lo: u32, hi: u32, skip: impl Fn(u32) -> Option<u32>) -> Option<u32> {
        let mut a = lo;
        let mut i = self.0.partition_point(|r| r.1 < a);
        loop {
            if a > hi {
                return None;
            }
            if let Some(r) = self.0.get(i)
                && r.0 <= a
            {
                a = r.1.checked_add(1)?;
                i += 1;
                continue;
            }
            // `skip` returns the last address of a forbidden run starting at `a`.
            if let Some(end) = skip(a) {
                a = end.checked_add(1)?;
                i = self.0.partition_point(|r| r.1 < a);
                continue;
            }
            return Some(a);
        }
    }
    pub fn ranges(&self) -> impl Iterator<Item = Range> + '_ {
        self.0.iter().map(|&(a, b)| Range::new(a.into(), b.into()))
    }
}
