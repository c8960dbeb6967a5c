//! IPAM: a pure address allocator per network.
//!
//! A [`Pool`] covers one IPv4 subnet (or the `start-end` range inside it that Contiv's
//! `a.b.c.d-e.f.g.h/len` form gives). The network and broadcast addresses and the
//! gateway are never handed out. Endpoint-group pools are sub-ranges carved out of the
//! network: addresses inside a group's pool go only to that group's endpoints, and plain
//! network endpoints never get them.
//!
//! The state is the set of allocated addresses as sorted, merged ranges: it serializes
//! small (a /16 with 60k addresses in use in a handful of ranges is a few bytes) and
//! deterministically, and "first free address" is found in O(1) amortised in the usual
//! case where allocations are dense from the bottom (the first gap is right after the
//! first range), O(ranges) otherwise.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// IPAM errors; each says which network and address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("network {network} has no free address{}", pool.as_ref().map(|p| format!(" in pool {p}")).unwrap_or_default())]
    Exhausted {
        network: String,
        pool: Option<String>,
    },
    #[error("{addr} is not in network {network}'s range {range}")]
    OutOfRange {
        network: String,
        addr: Ipv4Addr,
        range: String,
    },
    #[error("{addr} is reserved in network {network} ({why})")]
    Reserved {
        network: String,
        addr: Ipv4Addr,
        why: &'static str,
    },
    #[error("{addr} is already allocated in network {network}")]
    InUse { network: String, addr: Ipv4Addr },
    #[error("{addr} is not allocated in network {network}")]
    NotAllocated { network: String, addr: Ipv4Addr },
    #[error("pool {pool} of network {network}: {why}")]
    BadPool {
        network: String,
        pool: String,
        why: String,
    },
    #[error("stored IPAM state of network {network} is invalid: {why}")]
    Corrupt { network: String, why: String },
}

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
    fn overlaps(&self, o: &Range) -> bool {
        self.first <= o.last && o.first <= self.last
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
    fn valid(&self) -> bool {
        self.0.iter().all(|r| r.0 <= r.1)
            && self.0.windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0)
    }
}

/// A group's sub-pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubPool {
    pub group: String,
    pub range: Range,
}

/// The allocator of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// State format version.
    pub version: u32,
    /// The network's key (for messages).
    pub network: String,
    /// The subnet.
    pub subnet: ipnet::Ipv4Net,
    /// The allocatable range (the subnet's hosts, or the configured range).
    pub range: Range,
    pub gateway: Option<Ipv4Addr>,
    /// Endpoint-group pools, sorted by range.
    #[serde(default)]
    pub groups: Vec<SubPool>,
    /// Allocated addresses.
    #[serde(default)]
    pub used: RangeSet,
}

/// Which addresses a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// A plain network endpoint or VIP: anywhere outside group pools.
    Network,
    /// A member of this group: inside its pool if it has one, else as `Network`.
    Group(&'a str),
}

impl Pool {
    /// A pool for `subnet` (with an optional `start-end` range inside it).
    pub fn new(
        network: &str,
        subnet: ipnet::Ipv4Net,
        range: Option<(Ipv4Addr, Ipv4Addr)>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Pool, IpamError> {
        let subnet = subnet.trunc();
        let hosts = if subnet.prefix_len() >= 31 {
            Range::new(subnet.network(), subnet.broadcast())
        } else {
            Range::new(
                Ipv4Addr::from(u32::from(subnet.network()) + 1),
                Ipv4Addr::from(u32::from(subnet.broadcast()) - 1),
            )
        };
        let range = match range {
            None => hosts,
            Some((a, b)) => {
                let r = Range::new(a.max(hosts.first), b.min(hosts.last));
                if a > b || !subnet.contains(&a) || !subnet.contains(&b) || r.first > r.last {
                    return Err(IpamError::BadPool {
                        network: network.into(),
                        pool: format!("{a}-{b}"),
                        why: format!("must lie inside {subnet}"),
                    });
                }
                r
            }
        };
        Ok(Pool {
            version: 1,
            network: network.into(),
            subnet,
            range,
            gateway,
            groups: Vec::new(),
            used: RangeSet::default(),
        })
    }

    /// Restores a pool from stored state, checking it.
    pub fn from_state(v: serde_json::Value) -> Result<Pool, IpamError> {
        let p: Pool = serde_json::from_value(v).map_err(|e| IpamError::Corrupt {
            network: "?".into(),
            why: e.to_string(),
        })?;
        let bad = |why: &str| {
            Err(IpamError::Corrupt {
                network: p.network.clone(),
                why: why.into(),
            })
        };
        if p.version != 1 {
            return bad("unknown state version");
        }
        if !p.used.valid() {
            return bad("allocated ranges are not sorted and disjoint");
        }
        if !p.subnet.contains(&p.range.first) || !p.subnet.contains(&p.range.last) {
            return bad("range outside the subnet");
        }
        Ok(p)
    }

    fn reserved(&self, a: Ipv4Addr) -> Option<&'static str> {
        if Some(a) == self.gateway {
            Some("the gateway")
        } else if self.subnet.prefix_len() < 31 && a == self.subnet.network() {
            Some("the network address")
        } else if self.subnet.prefix_len() < 31 && a == self.subnet.broadcast() {
            Some("the broadcast address")
        } else {
            None
        }
    }

    fn group_pool(&self, g: &str) -> Option<Range> {
        self.groups.iter().find(|p| p.group == g).map(|p| p.range)
    }

    /// Carves a pool out for a group.
    pub fn add_group_pool(&mut self, group: &str, range: Range) -> Result<(), IpamError> {
        let bad = |why: String| IpamError::BadPool {
            network: self.network.clone(),
            pool: range.to_string(),
            why,
        };
        if !(self.range.contains(range.first) && self.range.contains(range.last))
            || range.first > range.last
        {
            return Err(bad(format!("must lie inside {}", self.range)));
        }
        if let Some(o) = self
            .groups
            .iter()
            .find(|p| p.range.overlaps(&range) && p.group != group)
        {
            return Err(bad(format!(
                "overlaps group {}'s pool {}",
                o.group, o.range
            )));
        }
        // Addresses already handed to plain endpoints may not end up inside a pool.
        if self.used.ranges().any(|u| u.overlaps(&range)) {
            return Err(bad("addresses in it are already allocated".into()));
        }
        self.groups.retain(|p| p.group != group);
        self.groups.push(SubPool {
            group: group.into(),
            range,
        });
        self.groups.sort_by_key(|p| p.range);
        Ok(())
    }

    /// Removes a group's pool (its addresses must have been released).
    pub fn remove_group_pool(&mut self, group: &str) {
        self.groups.retain(|p| p.group != group);
    }

    /// Allocates the lowest free address the scope allows.
    pub fn allocate(&mut self, scope: Scope<'_>) -> Result<Ipv4Addr, IpamError> {
        let (lo, hi, pool) = match scope {
            Scope::Group(g) => match self.group_pool(g) {
                Some(r) => (r.lo(), r.hi(), Some(r)),
                None => (self.range.lo(), self.range.hi(), None),
            },
            Scope::Network => (self.range.lo(), self.range.hi(), None),
        };
        let gw = self.gateway.map(u32::from);
        let in_pool = pool.is_some();
        let groups = &self.groups;
        let found = self.used.first_free(lo, hi, |a| {
            if Some(a) == gw {
                return Some(a);
            }
            if !in_pool {
                // Skip over group pools.
                return groups
                    .iter()
                    .find(|p| p.range.contains(a.into()))
                    .map(|p| p.range.hi());
            }
            None
        });
        match found {
            Some(a) => {
                self.used.insert(a);
                Ok(a.into())
            }
            None => Err(IpamError::Exhausted {
                network: self.network.clone(),
                pool: pool.map(|p| p.to_string()),
            }),
        }
    }

    /// Allocates a given address.
    pub fn allocate_addr(&mut self, a: Ipv4Addr, scope: Scope<'_>) -> Result<(), IpamError> {
        if let Some(why) = self.reserved(a) {
            return Err(IpamError::Reserved {
                network: self.network.clone(),
                addr: a,
                why,
            });
        }
        let allowed = match scope {
            Scope::Group(g) => self.group_pool(g).unwrap_or(self.range),
            Scope::Network => self.range,
        };
        if !allowed.contains(a) {
            return Err(IpamError::OutOfRange {
                network: self.network.clone(),
                addr: a,
                range: allowed.to_string(),
            });
        }
        let in_own_pool = matches!(scope, Scope::Group(g) if self.group_pool(g).is_some());
        if !in_own_pool && let Some(p) = self.groups.iter().find(|p| p.range.contains(a)) {
            return Err(IpamError::OutOfRange {
                network: self.network.clone(),
                addr: a,
                range: format!(
                    "{} outside group {}'s pool {}",
                    self.range, p.group, p.range
                ),
            });
        }
        if self.used.contains(a.into()) {
            return Err(IpamError::InUse {
                network: self.network.clone(),
                addr: a,
            });
        }
        self.used.insert(a.into());
        Ok(())
    }

    /// Releases an address.
    pub fn release(&mut self, a: Ipv4Addr) -> Result<(), IpamError> {
        if !self.used.contains(a.into()) {
            return Err(IpamError::NotAllocated {
                network: self.network.clone(),
                addr: a,
            });
        }
        self.used.remove(a.into());
        Ok(())
    }

    pub fn is_allocated(&self, a: Ipv4Addr) -> bool {
        self.used.contains(a.into())
    }

    /// Addresses that can be handed out at all (range minus the gateway).
    pub fn capacity(&self) -> u64 {
        self.range.len() - u64::from(self.gateway.is_some_and(|g| self.range.contains(g)))
    }

    pub fn used_count(&self) -> u64 {
        self.used.count()
    }

    /// Allocated share of the capacity, 0..1.
    pub fn utilisation(&self) -> f64 {
        let c = self.capacity();
        if c == 0 {
            1.0
        } else {
            self.used_count() as f64 / c as f64
        }
    }

    /// Contiv's `allocatedIPAddresses`: "10.1.1.1-10.1.1.5, 10.1.1.9".
    pub fn allocated_string(&self) -> String {
        self.used
            .ranges()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Contiv's `availableIPAddresses`.
    pub fn available_string(&self) -> String {
        let mut out = Vec::new();
        let mut a = self.range.lo();
        let gw = self.gateway.map(u32::from);
        let mut push = |lo: u32, hi: u32| {
            let mut s = lo;
            while s <= hi {
                let e = match gw {
                    Some(g) if g >= s && g <= hi => {
                        if g > s {
                            out.push(Range::new(s.into(), (g - 1).into()).to_string());
                        }
                        s = g + 1;
                        continue;
                    }
                    _ => hi,
                };
                out.push(Range::new(s.into(), e.into()).to_string());
                break;
            }
        };
        for r in self.used.ranges() {
            if r.lo() > a {
                push(a, r.lo() - 1);
            }
            a = r.hi().saturating_add(1);
        }
        if a <= self.range.hi() {
            push(a, self.range.hi());
        }
        out.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn pool() -> Pool {
        Pool::new(
            "default:net",
            "20.1.1.0/24".parse().unwrap(),
            None,
            Some(ip("20.1.1.254")),
        )
        .unwrap()
    }

    #[test]
    fn first_free_skips_reserved_and_reuses_released() {
        let mut p = Pool::new(
            "n",
            "10.0.0.0/29".parse().unwrap(),
            None,
            Some(ip("10.0.0.2")),
        )
        .unwrap();
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.0.0.1"));
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.0.0.3"));
        assert_eq!(p.capacity(), 5);
        p.release(ip("10.0.0.1")).unwrap();
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.0.0.1"));
        for _ in 0..3 {
            p.allocate(Scope::Network).unwrap();
        }
        assert!(matches!(
            p.allocate(Scope::Network),
            Err(IpamError::Exhausted { .. })
        ));
        assert_eq!(p.allocated_string(), "10.0.0.1, 10.0.0.3-10.0.0.6");
    }

    #[test]
    fn preferred_addresses_and_errors() {
        let mut p = pool();
        p.allocate_addr(ip("20.1.1.10"), Scope::Network).unwrap();
        assert!(matches!(
            p.allocate_addr(ip("20.1.1.10"), Scope::Network),
            Err(IpamError::InUse { .. })
        ));
        assert!(matches!(
            p.allocate_addr(ip("20.1.1.254"), Scope::Network),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            p.allocate_addr(ip("20.1.1.255"), Scope::Network),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            p.allocate_addr(ip("20.1.2.1"), Scope::Network),
            Err(IpamError::OutOfRange { .. })
        ));
        assert!(matches!(
            p.release(ip("20.1.1.11")),
            Err(IpamError::NotAllocated { .. })
        ));
        assert_eq!(
            p.available_string(),
            "20.1.1.1-20.1.1.9, 20.1.1.11-20.1.1.253"
        );
    }

    #[test]
    fn ranges_and_group_pools() {
        let mut p = Pool::new(
            "n",
            "10.1.1.0/24".parse().unwrap(),
            Some((ip("10.1.1.50"), ip("10.1.1.100"))),
            Some(ip("10.1.1.1")),
        )
        .unwrap();
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.1.1.50"));
        p.add_group_pool("web", Range::new(ip("10.1.1.51"), ip("10.1.1.60")))
            .unwrap();
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.1.1.61"));
        assert_eq!(p.allocate(Scope::Group("web")).unwrap(), ip("10.1.1.51"));
        assert_eq!(p.allocate(Scope::Group("db")).unwrap(), ip("10.1.1.62"));
        assert!(
            p.add_group_pool("db", Range::new(ip("10.1.1.55"), ip("10.1.1.70")))
                .is_err()
        );
        assert!(
            p.add_group_pool("db", Range::new(ip("10.1.1.90"), ip("10.1.1.120")))
                .is_err()
        );
        assert!(matches!(
            p.allocate_addr(ip("10.1.1.52"), Scope::Network),
            Err(IpamError::OutOfRange { .. })
        ));
        p.allocate_addr(ip("10.1.1.52"), Scope::Group("web"))
            .unwrap();
    }

    #[test]
    fn state_round_trip_and_corruption() {
        let mut p = pool();
        p.allocate(Scope::Network).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(Pool::from_state(v.clone()).unwrap(), p);
        let mut bad = v;
        bad["used"] = serde_json::json!([[5, 9], [3, 4]]);
        assert!(matches!(
            Pool::from_state(bad),
            Err(IpamError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_slash16_with_60k_in_use_stays_cheap() {
        let mut p = Pool::new(
            "n",
            "10.2.0.0/16".parse().unwrap(),
            None,
            Some(ip("10.2.0.1")),
        )
        .unwrap();
        for _ in 0..60_000 {
            p.allocate(Scope::Network).unwrap();
        }
        assert_eq!(p.used_count(), 60_000);
        let state = serde_json::to_vec(&p).unwrap();
        assert!(state.len() < 512, "state is {} bytes", state.len());
        p.release(ip("10.2.100.100")).unwrap();
        assert_eq!(p.allocate(Scope::Network).unwrap(), ip("10.2.100.100"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(bool),
        Prefer(u8, bool),
        Release(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<bool>().prop_map(Op::Alloc),
            (any::<u8>(), any::<bool>()).prop_map(|(a, g)| Op::Prefer(a, g)),
            any::<u8>().prop_map(Op::Release),
        ]
    }

    proptest! {
        /// The allocator agrees with a naive model on a /24 with a group pool.
        #[test]
        fn matches_a_naive_model(ops in proptest::collection::vec(op(), 1..300)) {
            let base = u32::from(ip("10.9.9.0"));
            let mut p = Pool::new("n", "10.9.9.0/24".parse().unwrap(), None, Some(ip("10.9.9.1"))).unwrap();
            let grp = Range::new(ip("10.9.9.100"), ip("10.9.9.120"));
            p.add_group_pool("g", grp).unwrap();
            let mut used: BTreeSet<u32> = BTreeSet::new();
            let allowed = |a: u32, group: bool| {
                let in_grp = grp.contains(a.into());
                a > base + 1 && a < base + 255 && in_grp == group
            };
            for o in ops {
                match o {
                    Op::Alloc(group) => {
                        let want = (base..base + 256).find(|a| allowed(*a, group) && !used.contains(a));
                        let got = p.allocate(if group { Scope::Group("g") } else { Scope::Network }).ok().map(u32::from);
                        prop_assert_eq!(got, want);
                        if let Some(a) = want { used.insert(a); }
                    }
                    Op::Prefer(x, group) => {
                        let a = base + u32::from(x);
                        let ok = allowed(a, group) && !used.contains(&a);
                        let got = p.allocate_addr(a.into(), if group { Scope::Group("g") } else { Scope::Network });
                        prop_assert_eq!(got.is_ok(), ok);
                        if ok { used.insert(a); }
                    }
                    Op::Release(x) => {
                        let a = base + u32::from(x);
                        prop_assert_eq!(p.release(a.into()).is_ok(), used.remove(&a));
                    }
                }
                prop_assert_eq!(p.used_count(), used.len() as u64);
            }
        }
    }
}
