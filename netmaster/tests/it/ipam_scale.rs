//! A /16 with 60k addresses in use (and a /64 with as many): allocation keeps working, the
//! counts stay right and the state stays a few KB.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netmaster::ipam::{IpamError, Pool, Scope};

const NET: Scope<'static> = Scope::Network;

/// A small deterministic pseudo-random sequence (no clock, no OS randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn v4(off: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 20, 0, 0)) + off))
}

#[test]
fn a_slash_16_with_60k_in_use() {
    let mut p = Pool::new("big", "10.20.0.0/16".parse().unwrap(), Some(v4(1))).unwrap();
    p.add_epg_pool("web", "10.20.255.0-10.20.255.99".parse().unwrap())
        .unwrap();
    for i in 0..60_000u32 {
        // .0 is the network address and .1 the gateway.
        assert_eq!(p.allocate(NET).unwrap(), v4(i + 2));
    }
    let c = p.counts(NET).unwrap();
    assert_eq!((c.total, c.used), (65_536 - 3 - 100, 60_000));
    // Contiguous allocations serialize to one range.
    let compact = p.to_bytes();
    assert!(compact.len() < 300, "{} bytes", compact.len());

    // Fragment it: release about a third of the addresses at pseudo-random places.
    let mut rng = Lcg(7);
    let mut released = std::collections::BTreeSet::new();
    while released.len() < 20_000 {
        let off = 2 + rng.next(60_000) as u32;
        if released.insert(off) {
            p.release(NET, v4(off)).unwrap();
        }
    }
    assert_eq!(p.counts(NET).unwrap().used, 40_000);
    let bytes = p.to_bytes();
    assert!(
        bytes.len() <= 12 * 1024,
        "fragmented /16 state is {} bytes",
        bytes.len()
    );
    let restored = Pool::from_bytes(&bytes).unwrap();
    assert_eq!(restored.to_bytes(), bytes);
    assert_eq!(restored.counts_all(), p.counts_all());

    // Lowest first: the released addresses come back in order.
    let mut p = restored;
    for &off in released.iter().take(10_000) {
        assert_eq!(p.allocate(NET).unwrap(), v4(off));
    }
    assert_eq!(p.counts(NET).unwrap().used, 50_000);
    for &off in released.iter().skip(10_000) {
        assert_eq!(p.allocate(NET).unwrap(), v4(off));
    }
    assert_eq!(p.allocate(NET).unwrap(), v4(60_002));
    p.release(NET, v4(60_002)).unwrap();

    // Churn at 60k in use: release one, the next allocation returns it.
    for _ in 0..20_000 {
        let off = 2 + rng.next(60_000) as u32;
        if p.is_allocated(v4(off)) {
            p.release(NET, v4(off)).unwrap();
            assert_eq!(p.allocate(NET).unwrap(), v4(off));
        }
    }

    // Fill the rest; the group pool and the broadcast address are never handed out.
    let free = p.counts(NET).unwrap().free;
    for _ in 0..free {
        let a = p.allocate(NET).unwrap();
        assert_eq!(p.epg_of(a), None);
        assert_ne!(a, v4(65_535));
    }
    assert_eq!(
        p.allocate(NET).unwrap_err(),
        IpamError::Exhausted {
            network: "big".into(),
            group: None
        }
    );
    assert_eq!(p.allocate(Scope::Epg("web")).unwrap(), v4(0xff00));
    assert_eq!(p.available_addresses(NET).unwrap(), "");
    let full = p.to_bytes();
    assert!(full.len() < 300, "{} bytes", full.len());
}

#[test]
fn a_slash_64_with_60k_in_use() {
    let base = u128::from("2001:db8:5::".parse::<Ipv6Addr>().unwrap());
    let a = |off: u128| IpAddr::V6(Ipv6Addr::from(base + off));
    let mut p = Pool::new("big6", "2001:db8:5::/64".parse().unwrap(), Some(a(1))).unwrap();
    for i in 0..60_000u128 {
        assert_eq!(p.allocate(NET).unwrap(), a(i + 2));
    }
    let mut rng = Lcg(11);
    for _ in 0..5_000 {
        let off = 2 + u128::from(rng.next(60_000));
        if p.is_allocated(a(off)) {
            p.release(NET, a(off)).unwrap();
        }
    }
    let used = p.counts(NET).unwrap().used;
    assert!(used < 60_000);
    let bytes = p.to_bytes();
    // Sparse and fragmented: still a bitmap of at most 60k bits.
    assert!(bytes.len() <= 11 * 1024, "{} bytes", bytes.len());
    let mut q = Pool::from_bytes(&bytes).unwrap();
    assert_eq!(q.counts(NET).unwrap().used, used);
    for _ in 0..(60_000 - used) {
        let got = q.allocate(NET).unwrap();
        assert!(got < a(60_002));
    }
    assert_eq!(q.allocate(NET).unwrap(), a(60_002));
}
