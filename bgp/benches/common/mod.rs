//! Deterministic synthetic routing data shared by the bgp benchmarks.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::types::{AsPath, Community, NextHop, Nlri, Origin, PathAttrs};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A small linear congruential generator: reproducible, no dependency.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
    pub fn below(&mut self, bound: u64) -> u64 {
        (self.next_u64() >> 33) % bound
    }
}

/// `n` distinct IPv4 prefixes with a DFZ-like length mix (about 60 % /24, the rest
/// /16 to /23).
pub fn v4_prefixes(n: usize, seed: u64) -> Vec<IpNet> {
    let mut rng = Lcg(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = match rng.below(10) {
            0..=5 => 24,
            6 => 23,
            7 => 22,
            8 => 20 + rng.below(2) as u8,
            _ => 16 + rng.below(4) as u8,
        };
        let addr = Ipv4Addr::from((rng.next_u64() >> 16) as u32 | 0x0100_0000);
        let p = IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc());
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// `n` distinct IPv6 prefixes, mostly /48 under 2000::/3, some /32 to /44.
pub fn v6_prefixes(n: usize, seed: u64) -> Vec<IpNet> {
    let mut rng = Lcg(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = match rng.below(10) {
            0..=6 => 48,
            7 => 44,
            8 => 40,
            _ => 32,
        };
        let hi = (rng.next_u64() & 0x1FFF_FFFF_FFFF_FFFF) | 0x2000_0000_0000_0000;
        let addr = Ipv6Addr::from((u128::from(hi)) << 64);
        let p = IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc());
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// A plausible attribute set: 2 to 5 ASes after `first_as`, some MED, 0 to 3
/// communities, the given next hop.
pub fn attr_set(rng: &mut Lcg, first_as: u32, next_hop: NextHop) -> PathAttrs {
    let extra = 1 + rng.below(4) as usize;
    let mut asns = vec![first_as];
    asns.extend((0..extra).map(|_| 1000 + rng.below(400_000) as u32));
    let mut a = PathAttrs {
        origin: if rng.below(10) == 0 {
            Origin::Incomplete
        } else {
            Origin::Igp
        },
        as_path: AsPath::from_sequence(asns),
        next_hop: Some(next_hop),
        med: (rng.below(3) == 0).then(|| rng.below(1000) as u32),
        communities: (0..rng.below(4))
            .map(|_| Community::new(first_as as u16, rng.below(1000) as u16))
            .collect(),
        ..Default::default()
    };
    a.normalize();
    a
}

/// Assign `prefixes` round-robin-randomly to `sets` attribute sets; returns, per set,
/// its prefixes.
pub fn spread(prefixes: &[IpNet], sets: usize, seed: u64) -> Vec<Vec<Nlri>> {
    let mut rng = Lcg(seed);
    let mut out = vec![Vec::new(); sets];
    for p in prefixes {
        out[rng.below(sets as u64) as usize].push(Nlri::new(*p));
    }
    out
}
