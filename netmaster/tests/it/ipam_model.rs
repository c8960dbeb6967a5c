//! Property test: the pool against a naive model (BTreeSets and linear scans) over random
//! sequences of allocate / allocate-preferred / release / EPG pool add and remove / state
//! round trips, on small IPv4 and IPv6 subnets and sub-ranges. Results, errors (including
//! their fields), counts, `is_allocated` and the oper strings must all agree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netmaster::ipam::{AddrRange, Counts, IpamError, Pool, ReservedKind, Scope, SubnetSpec};
use proptest::prelude::*;

const GROUPS: [&str; 3] = ["a", "b", "c"];

fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn addr(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

fn fmt_set(v6: bool, set: &BTreeSet<u128>) -> String {
    let mut runs: Vec<(u128, u128)> = Vec::new();
    for &n in set {
        match runs.last_mut() {
            Some(r) if r.1 + 1 == n => r.1 = n,
            _ => runs.push((n, n)),
        }
    }
    runs.iter()
        .map(|&(s, e)| {
            if s == e {
                addr(v6, s).to_string()
            } else {
                format!("{}-{}", addr(v6, s), addr(v6, e))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Epg {
    lo: u128,
    hi: u128,
    range: AddrRange,
    used: BTreeSet<u128>,
}

struct Model {
    v6: bool,
    subnet: IpNet,
    lo: u128,
    hi: u128,
    reserved: BTreeMap<u128, ReservedKind>,
    net: BTreeSet<u128>,
    epgs: BTreeMap<String, Epg>,
}

fn net() -> String {
    "n".to_string()
}

impl Model {
    fn new(spec: SubnetSpec, gateway: Option<IpAddr>) -> Result<Model, IpamError> {
        let subnet = spec.subnet();
        let v6 = matches!(subnet, IpNet::V6(_));
        let mut reserved = BTreeMap::new();
        if !v6 && subnet.prefix_len() <= 30 {
            reserved.insert(num(subnet.network()), ReservedKind::NetworkAddress);
            reserved.insert(num(subnet.broadcast()), ReservedKind::BroadcastAddress);
        }
        if v6 && subnet.prefix_len() <= 126 {
            reserved.insert(num(subnet.network()), ReservedKind::SubnetRouterAnycast);
        }
        if let Some(gw) = gateway {
            if !subnet.contains(&gw) {
                return Err(IpamError::GatewayNotInSubnet {
                    network: net(),
                    subnet: subnet.to_string(),
                    gateway: gw,
                });
            }
            if let Some(&kind) = reserved.get(&num(gw)) {
                return Err(IpamError::GatewayReserved {
                    network: net(),
                    subnet: subnet.to_string(),
                    gateway: gw,
                    kind,
                });
            }
            reserved.insert(num(gw), ReservedKind::Gateway);
        }
        Ok(Model {
            v6,
            subnet,
            lo: num(spec.range().start()),
            hi: num(spec.range().end()),
            reserved,
            net: BTreeSet::new(),
            epgs: BTreeMap::new(),
        })
    }

    fn range(&self) -> String {
        format!("{}-{}", addr(self.v6, self.lo), addr(self.v6, self.hi))
    }

    fn epg_of(&self, n: u128) -> Option<(&String, &Epg)> {
        self.epgs.iter().find(|(_, e)| (e.lo..=e.hi).contains(&n))
    }

    fn net_free(&self, n: u128) -> bool {
        !self.reserved.contains_key(&n) && self.epg_of(n).is_none() && !self.net.contains(&n)
    }

    fn group(scope: Scope<'_>) -> Option<String> {
        match scope {
            Scope::Network => None,
            Scope::Epg(g) => Some(g.to_string()),
        }
    }

    fn unknown(&self, g: &str) -> Result<(), IpamError> {
        if self.epgs.contains_key(g) {
            Ok(())
        } else {
            Err(IpamError::UnknownEpg {
                network: net(),
                group: g.to_string(),
            })
        }
    }

    fn allocate(&mut self, scope: Scope<'_>) -> Result<IpAddr, IpamError> {
        let found = match scope {
            Scope::Network => (self.lo..=self.hi).find(|&n| self.net_free(n)),
            Scope::Epg(g) => {
                self.unknown(g)?;
                let e = &self.epgs[g];
                (e.lo..=e.hi).find(|n| !e.used.contains(n))
            }
        };
        let Some(n) = found else {
            return Err(IpamError::Exhausted {
                network: net(),
                group: Self::group(scope),
            });
        };
        match scope {
            Scope::Network => self.net.insert(n),
            Scope::Epg(g) => self.epgs.get_mut(g).unwrap().used.insert(n),
        };
        Ok(addr(self.v6, n))
    }

    /// The checks shared by allocate-preferred and release; returns the number of `a`.
    fn check(&self, scope: Scope<'_>, a: IpAddr) -> Result<u128, IpamError> {
        if let Scope::Epg(g) = scope {
            self.unknown(g)?;
        }
        if a.is_ipv6() != self.v6 || !self.subnet.contains(&a) {
            return Err(IpamError::NotInSubnet {
                network: net(),
                subnet: self.subnet.to_string(),
                addr: a,
            });
        }
        let n = num(a);
        match scope {
            Scope::Network => {
                if !(self.lo..=self.hi).contains(&n) {
                    return Err(IpamError::NotInRange {
                        network: net(),
                        range: self.range(),
                        addr: a,
                    });
                }
                if let Some(&kind) = self.reserved.get(&n) {
                    return Err(IpamError::Reserved {
                        network: net(),
                        addr: a,
                        kind,
                    });
                }
                if let Some((g, e)) = self.epg_of(n) {
                    return Err(IpamError::InEpgPool {
                        network: net(),
                        group: g.clone(),
                        pool: e.range.to_string(),
                        addr: a,
                    });
                }
            }
            Scope::Epg(g) => {
                let e = &self.epgs[g];
                if !(e.lo..=e.hi).contains(&n) {
                    return Err(IpamError::NotInEpgPool {
                        network: net(),
                        group: g.to_string(),
                        pool: e.range.to_string(),
                        addr: a,
                    });
                }
            }
        }
        Ok(n)
    }

    fn set_of(&mut self, scope: Scope<'_>) -> &mut BTreeSet<u128> {
        match scope {
            Scope::Network => &mut self.net,
            Scope::Epg(g) => &mut self.epgs.get_mut(g).unwrap().used,
        }
    }

    fn allocate_preferred(&mut self, scope: Scope<'_>, a: IpAddr) -> Result<(), IpamError> {
        let n = self.check(scope, a)?;
        if self.set_of(scope).insert(n) {
            Ok(())
        } else {
            Err(IpamError::AlreadyAllocated {
                network: net(),
                group: Self::group(scope),
                addr: a,
            })
        }
    }

    fn release(&mut self, scope: Scope<'_>, a: IpAddr) -> Result<(), IpamError> {
        let n = self.check(scope, a)?;
        if self.set_of(scope).remove(&n) {
            Ok(())
        } else {
            Err(IpamError::NotAllocated {
                network: net(),
                group: Self::group(scope),
                addr: a,
            })
        }
    }

    fn add_epg(&mut self, g: &str, range: AddrRange) -> Result<(), IpamError> {
        if let Some(e) = self.epgs.get(g) {
            return Err(IpamError::EpgPoolExists {
                network: net(),
                group: g.to_string(),
                pool: e.range.to_string(),
            });
        }
        let (a, b) = (num(range.start()), num(range.end()));
        if range.is_ipv6() != self.v6 || a < self.lo || b > self.hi {
            return Err(IpamError::EpgPoolOutside {
                network: net(),
                group: g.to_string(),
                pool: range.to_string(),
                range: self.range(),
            });
        }
        if let Some((other, e)) = self
            .epgs
            .iter()
            .filter(|(_, e)| e.lo <= b && a <= e.hi)
            .min_by_key(|(_, e)| e.lo)
        {
            return Err(IpamError::EpgPoolOverlap {
                group: g.to_string(),
                pool: range.to_string(),
                other: other.clone(),
                other_pool: e.range.to_string(),
            });
        }
        for n in a..=b {
            if let Some(&kind) = self.reserved.get(&n) {
                return Err(IpamError::EpgPoolReserved {
                    network: net(),
                    group: g.to_string(),
                    pool: range.to_string(),
                    addr: addr(self.v6, n),
                    kind,
                });
            }
            if self.net.contains(&n) {
                return Err(IpamError::EpgPoolAllocated {
                    network: net(),
                    group: g.to_string(),
                    pool: range.to_string(),
                    addr: addr(self.v6, n),
                });
            }
        }
        self.epgs.insert(
            g.to_string(),
            Epg {
                lo: a,
                hi: b,
                range,
                used: BTreeSet::new(),
            },
        );
        Ok(())
    }

    fn remove_epg(&mut self, g: &str) -> Result<AddrRange, IpamError> {
        self.unknown(g)?;
        let e = &self.epgs[g];
        if !e.used.is_empty() {
            return Err(IpamError::EpgPoolInUse {
                network: net(),
                group: g.to_string(),
                pool: e.range.to_string(),
                count: e.used.len() as u128,
            });
        }
        Ok(self.epgs.remove(g).unwrap().range)
    }

    fn counts(&self, scope: Scope<'_>) -> Result<Counts, IpamError> {
        let (total, used) = match scope {
            Scope::Network => (
                (self.lo..=self.hi)
                    .filter(|&n| !self.reserved.contains_key(&n) && self.epg_of(n).is_none())
                    .count() as u128,
                self.net.len() as u128,
            ),
            Scope::Epg(g) => {
                self.unknown(g)?;
                let e = &self.epgs[g];
                (e.hi - e.lo + 1, e.used.len() as u128)
            }
        };
        Ok(Counts {
            total,
            used,
            free: total - used,
        })
    }

    fn available(&self, scope: Scope<'_>) -> Result<String, IpamError> {
        let set: BTreeSet<u128> = match scope {
            Scope::Network => (self.lo..=self.hi).filter(|&n| self.net_free(n)).collect(),
            Scope::Epg(g) => {
                self.unknown(g)?;
                let e = &self.epgs[g];
                (e.lo..=e.hi).filter(|n| !e.used.contains(n)).collect()
            }
        };
        Ok(fmt_set(self.v6, &set))
    }

    fn allocated(&self, scope: Scope<'_>) -> Result<String, IpamError> {
        match scope {
            Scope::Network => Ok(fmt_set(self.v6, &self.net)),
            Scope::Epg(g) => {
                self.unknown(g)?;
                Ok(fmt_set(self.v6, &self.epgs[g].used))
            }
        }
    }

    fn all(&self) -> BTreeSet<u128> {
        let mut all = self.net.clone();
        for e in self.epgs.values() {
            all.extend(&e.used);
        }
        all
    }
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(usize),
    Preferred(usize, u128, bool),
    Release(usize, u128, bool),
    AddEpg(usize, u128, u128),
    RemoveEpg(usize),
    RoundTrip,
}

fn scope(i: usize) -> Scope<'static> {
    if i == 0 {
        Scope::Network
    } else {
        Scope::Epg(GROUPS[i - 1])
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4).prop_map(Op::Allocate),
        3 => (0usize..4, 0u128..72, proptest::bool::weighted(0.05))
            .prop_map(|(s, o, x)| Op::Preferred(s, o, x)),
        3 => (0usize..4, 0u128..72, proptest::bool::weighted(0.05))
            .prop_map(|(s, o, x)| Op::Release(s, o, x)),
        1 => (0usize..3, 0u128..70, 0u128..12).prop_map(|(g, o, n)| Op::AddEpg(g, o, n)),
        1 => (0usize..3).prop_map(Op::RemoveEpg),
        1 => Just(Op::RoundTrip),
    ]
}

/// A subnet spec: family, prefix length, optional sub-range (offsets), optional gateway
/// offset.
fn setup() -> impl Strategy<Value = (bool, u8, Option<(u128, u128)>, Option<u128>)> {
    (
        any::<bool>(),
        0u8..=6,
        proptest::option::weighted(0.4, (0u128..64, 0u128..64)),
        proptest::option::weighted(0.6, 0u128..64),
    )
        .prop_map(|(v6, host_bits, range, gw)| {
            let size = 1u128 << host_bits;
            let range = range.map(|(a, b)| (a.min(b) % size, a.max(b) % size));
            let range = range.map(|(a, b)| (a.min(b), a.max(b)));
            let plen = if v6 { 128 - host_bits } else { 32 - host_bits };
            (v6, plen, range, gw.map(|g| g % (size + 1)))
        })
}

fn run(
    v6: bool,
    plen: u8,
    range: Option<(u128, u128)>,
    gw: Option<u128>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let base: u128 = if v6 {
        num("2001:db8::100".parse().unwrap())
    } else {
        num("10.0.0.0".parse().unwrap())
    };
    let subnet = IpNet::new(addr(v6, base), plen).unwrap();
    let range = range.map(|(a, b)| AddrRange::new(addr(v6, base + a), addr(v6, base + b)).unwrap());
    let spec = SubnetSpec::new(subnet, range).unwrap();
    let gateway = gw.map(|g| addr(v6, base + g));
    let other = if v6 { "10.0.0.1" } else { "2001:db8::101" };
    let other: IpAddr = other.parse().unwrap();

    let model = Model::new(spec, gateway);
    let pool = Pool::new("n", spec, gateway);
    let (mut model, mut pool) = match (model, pool) {
        (Ok(m), Ok(p)) => (m, p),
        (Err(a), Err(b)) => {
            prop_assert_eq!(a, b);
            return Ok(());
        }
        (m, p) => {
            return Err(TestCaseError::fail(format!(
                "construction differs: model {:?} pool {:?}",
                m.err(),
                p.err()
            )));
        }
    };

    for op in ops {
        match op {
            Op::Allocate(s) => {
                prop_assert_eq!(pool.allocate(scope(s)), model.allocate(scope(s)));
            }
            Op::Preferred(s, o, x) => {
                let a = if x { other } else { addr(v6, base + o) };
                prop_assert_eq!(
                    pool.allocate_preferred(scope(s), a),
                    model.allocate_preferred(scope(s), a)
                );
            }
            Op::Release(s, o, x) => {
                let a = if x { other } else { addr(v6, base + o) };
                prop_assert_eq!(pool.release(scope(s), a), model.release(scope(s), a));
            }
            Op::AddEpg(g, o, n) => {
                let r = AddrRange::new(addr(v6, base + o), addr(v6, base + o + n)).unwrap();
                prop_assert_eq!(pool.add_epg_pool(GROUPS[g], r), model.add_epg(GROUPS[g], r));
            }
            Op::RemoveEpg(g) => {
                prop_assert_eq!(pool.remove_epg_pool(GROUPS[g]), model.remove_epg(GROUPS[g]));
            }
            Op::RoundTrip => {
                let bytes = pool.to_bytes();
                let restored = Pool::from_bytes(&bytes);
                prop_assert!(restored.is_ok(), "{:?}", restored.err());
                let restored = restored.unwrap();
                prop_assert_eq!(restored.to_bytes(), bytes);
                pool = restored;
            }
        }
        for s in 0..4 {
            prop_assert_eq!(pool.counts(scope(s)), model.counts(scope(s)));
            prop_assert_eq!(
                pool.allocated_addresses(scope(s)),
                model.allocated(scope(s))
            );
            prop_assert_eq!(
                pool.available_addresses(scope(s)),
                model.available(scope(s))
            );
        }
        let all = model.all();
        prop_assert_eq!(pool.allocated_addresses_all(), fmt_set(v6, &all));
        prop_assert_eq!(pool.counts_all().used, all.len() as u128);
        for o in 0..72u128 {
            let n = base + o;
            prop_assert_eq!(pool.is_allocated(addr(v6, n)), all.contains(&n));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pool_matches_model(
        (v6, plen, range, gw) in setup(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(v6, plen, range, gw, ops)?;
    }
}

fn allocations() -> impl Strategy<Value = netmaster::ipam::Allocations> {
    use base64::Engine as _;
    use netmaster::ipam::Allocations;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Allocations::Bitmap(base64::engine::general_purpose::STANDARD.encode(b))),
        "[0-9a-f:., -]{0,40}".prop_map(Allocations::Ranges),
        proptest::collection::vec((0u32..300, 0u32..8), 0..6).prop_map(|v| {
            Allocations::Ranges(
                v.iter()
                    .map(|&(a, n)| {
                        let s = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + a);
                        let e = Ipv4Addr::from(u32::from(s) + n);
                        format!("{s}-{e}")
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }),
    ]
}

proptest! {
    /// Arbitrary (mostly corrupt) states never panic; the ones accepted round-trip exactly.
    #[test]
    fn from_state_never_panics(
        version in prop_oneof![Just(1u32), any::<u32>()],
        subnet in prop_oneof![
            Just("10.0.0.0/24".to_string()),
            Just("10.0.0.10-10.0.0.200/23".to_string()),
            Just("2001:db8::/120".to_string()),
            "[0-9./-]{0,20}",
        ],
        gateway in proptest::option::of(prop_oneof![
            Just("10.0.0.1".parse::<IpAddr>().unwrap()),
            Just("10.0.0.0".parse::<IpAddr>().unwrap()),
            Just("2001:db8::1".parse::<IpAddr>().unwrap()),
        ]),
        allocated in allocations(),
        epgs in proptest::collection::vec(
            (0usize..3, 0u32..300, 0u32..20, allocations()),
            0..3,
        ),
    ) {
        let state = netmaster::ipam::PoolState {
            version,
            network: "n".into(),
            subnet,
            gateway,
            allocated,
            epgs: epgs
                .into_iter()
                .map(|(g, a, n, alloc)| {
                    let s = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + a);
                    let e = Ipv4Addr::from(u32::from(s) + n);
                    netmaster::ipam::EpgState {
                        group: GROUPS[g].to_string(),
                        pool: format!("{s}-{e}"),
                        allocated: alloc,
                    }
                })
                .collect(),
        };
        if let Ok(pool) = Pool::from_state(&state) {
            let again = Pool::from_state(&pool.to_state());
            prop_assert!(again.is_ok(), "{:?}", again.err());
            let again = again.unwrap();
            prop_assert_eq!(again.to_state(), pool.to_state());
            prop_assert_eq!(again.allocated_addresses_all(), pool.allocated_addresses_all());
        }
        let json = serde_json::to_vec(&state).unwrap();
        let _ = Pool::from_bytes(&json);
    }
}
