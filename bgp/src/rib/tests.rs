use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::BytesMut;
use ipnet::IpNet;
use proptest::prelude::*;

use super::select::{compare, compare_multipath};
use super::*;
use crate::types::{Afi, AsPath, Family, NextHop, Nlri, Origin, PathAttrs};
use crate::wire::{Message, SessionCtx, Update, pack_updates};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nlri(s: &str) -> Nlri {
    Nlri::new(net(s))
}

fn attrs(asns: &[u32], nh: &str) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::from_sequence(asns.iter().copied()),
        next_hop: Some(NextHop::from(nh.parse::<IpAddr>().unwrap())),
        ..Default::default()
    }
}

fn ebgp(addr: &str, rid: u8) -> PeerInfo {
    PeerInfo {
        addr: Some(addr.parse().unwrap()),
        router_id: Ipv4Addr::new(rid, rid, rid, rid),
        ebgp: true,
    }
}

fn hops(paths: &[Path]) -> Vec<String> {
    next_hops(paths).iter().map(|a| a.to_string()).collect()
}

#[test]
fn interner_shares_and_collects() {
    let mut i = AttrInterner::new();
    let a = i.intern(attrs(&[65001], "10.0.0.1"));
    let mut b_attrs = attrs(&[65001], "10.0.0.1");
    b_attrs.communities = vec![];
    let b = i.intern(b_attrs);
    assert!(Arc::ptr_eq(&a, &b));
    let c = i.intern(attrs(&[65002], "10.0.0.1"));
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(i.len(), 2);
    drop(c);
    assert_eq!(i.gc(), 1);
    assert_eq!(i.len(), 1);
    drop((a, b));
    assert_eq!(i.gc(), 1);
    assert!(i.is_empty());
    let x = Arc::new(attrs(&[1], "10.0.0.2"));
    let y = i.intern_arc(Arc::clone(&x));
    assert!(Arc::ptr_eq(&x, &y));
    assert!(Arc::ptr_eq(&i.intern(attrs(&[1], "10.0.0.2")), &x));
}

#[test]
fn two_tors_give_ecmp_and_withdrawals_shrink_it() {
    let mut i = AttrInterner::new();
    let mut rib = Rib::new(16);
    let t1 = rib.add_peer(ebgp("10.1.1.0", 1));
    let t2 = rib.add_peer(ebgp("10.2.1.0", 2));
    let p = nlri("192.0.2.0/24");
    let a1 = i.intern(attrs(&[65001], "10.1.1.0"));
    let a2 = i.intern(attrs(&[65002], "10.2.1.0"));
    let c = rib.update(t1, &[(p, a1.clone())], &[]);
    assert_eq!(c.len(), 1);
    assert_eq!(hops(&c[0].paths), ["10.1.1.0"]);
    let c = rib.update(t2, &[(p, a2.clone())], &[]);
    assert_eq!(c.len(), 1);
    assert_eq!(hops(&c[0].paths), ["10.1.1.0", "10.2.1.0"]);
    assert_eq!(c[0].best().unwrap().peer, t1, "lower router id first");
    // Re-announcing the same attributes changes nothing.
    assert!(rib.update(t2, &[(p, a2.clone())], &[]).is_empty());
    // A longer path from t2 leaves the group.
    let longer = i.intern(attrs(&[65002, 65000], "10.2.1.0"));
    let c = rib.update(t2, &[(p, longer)], &[]);
    assert_eq!(hops(&c[0].paths), ["10.1.1.0"]);
    assert_eq!(rib.paths(&p.prefix).len(), 2);
    // Changing the non-best path again is not a Loc-RIB change.
    let longer2 = i.intern(attrs(&[65002, 65000, 65000], "10.2.1.0"));
    assert!(rib.update(t2, &[(p, longer2)], &[]).is_empty());
    // Withdrawing the best promotes the other.
    let c = rib.update(t1, &[], &[p]);
    assert_eq!(hops(&c[0].paths), ["10.2.1.0"]);
    let c = rib.update(t2, &[], &[p]);
    assert!(c[0].is_withdrawal());
    assert!(rib.is_empty());
    assert_eq!(rib.route_count(), 0);
    // Withdrawing something unknown is silent.
    assert!(rib.update(t2, &[], &[p]).is_empty());
}

#[test]
fn max_paths_and_local_routes() {
    let mut i = AttrInterner::new();
    let mut rib = Rib::new(2);
    let peers: Vec<PeerId> = (1..=3)
        .map(|n| rib.add_peer(ebgp(&format!("10.0.0.{n}"), n)))
        .collect();
    let p = nlri("198.51.100.0/24");
    for (n, peer) in peers.iter().enumerate() {
        let a = i.intern(attrs(&[65000 + n as u32], &format!("10.0.0.{}", n + 1)));
        rib.update(*peer, &[(p, a)], &[]);
    }
    assert_eq!(hops(rib.get(&p.prefix).unwrap()), ["10.0.0.1", "10.0.0.2"]);
    let local = rib.add_peer(PeerInfo::local(Ipv4Addr::new(9, 9, 9, 9)));
    let c = rib.update(local, &[(p, i.intern(attrs(&[], "10.9.9.9")))], &[]);
    assert_eq!(c[0].paths.len(), 1);
    assert_eq!(c[0].best().unwrap().peer, local);
    let c = rib.remove_peer(local);
    assert_eq!(c[0].paths.len(), 2);
    // The freed id is reused.
    assert_eq!(rib.add_peer(ebgp("10.0.0.9", 9)), local);
}

#[test]
fn add_path_ids_are_separate_paths() {
    let mut i = AttrInterner::new();
    let mut rib = Rib::new(4);
    let peer = rib.add_peer(PeerInfo {
        ebgp: false,
        ..ebgp("10.0.0.1", 1)
    });
    let prefix = net("2001:db8::/32");
    let n1 = Nlri {
        prefix,
        path_id: Some(1),
    };
    let n2 = Nlri {
        prefix,
        path_id: Some(2),
    };
    let a = i.intern(attrs(&[65001], "2001:db8::1"));
    let b = i.intern(attrs(&[65002], "2001:db8::2"));
    rib.update(peer, &[(n1, a), (n2, b)], &[]);
    assert_eq!(rib.get(&prefix).unwrap().len(), 2);
    assert_eq!(rib.peer_route_count(peer), 2);
    let mut adj: Vec<Nlri> = rib.adj_rib_in(peer).map(|(n, _)| n).collect();
    adj.sort();
    assert_eq!(adj, [n1, n2]);
    let c = rib.update(peer, &[], &[n1]);
    assert_eq!(hops(&c[0].paths), ["2001:db8::2"]);
}

#[test]
fn set_peer_info_resorts() {
    let mut i = AttrInterner::new();
    let mut rib = Rib::new(1);
    let a = rib.add_peer(ebgp("10.0.0.1", 1));
    let b = rib.add_peer(ebgp("10.0.0.2", 2));
    let p = nlri("10.9.0.0/16");
    rib.update(a, &[(p, i.intern(attrs(&[1], "10.0.0.1")))], &[]);
    rib.update(b, &[(p, i.intern(attrs(&[2], "10.0.0.2")))], &[]);
    assert_eq!(rib.get(&p.prefix).unwrap()[0].peer, a);
    let c = rib.set_peer_info(a, ebgp("10.0.0.1", 3));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].best().unwrap().peer, b);
}

#[test]
fn graceful_restart_marks_and_purges_per_family() {
    let mut i = AttrInterner::new();
    let mut rib = Rib::new(4);
    let peer = rib.add_peer(ebgp("10.0.0.1", 1));
    let a4 = i.intern(attrs(&[65001], "10.0.0.1"));
    let a6 = i.intern(attrs(&[65001], "2001:db8::1"));
    let (p1, p2, p6) = (
        nlri("10.1.0.0/16"),
        nlri("10.2.0.0/16"),
        nlri("2001:db8:1::/48"),
    );
    rib.update(peer, &[(p1, a4.clone()), (p2, a4.clone()), (p6, a6)], &[]);
    assert_eq!(rib.mark_stale(peer), 3);
    assert!(rib.get(&p1.prefix).unwrap()[0].stale);
    // The restarted peer re-announces p1 only, then End-of-RIB for IPv4.
    assert!(rib.update(peer, &[(p1, a4)], &[]).is_empty());
    assert!(!rib.get(&p1.prefix).unwrap()[0].stale);
    let c = rib.purge_stale(peer, Family::IPV4_UNICAST);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].prefix, p2.prefix);
    assert!(c[0].is_withdrawal());
    assert!(rib.get(&p6.prefix).is_some());
    let c = rib.purge_stale(peer, Family::IPV6_UNICAST);
    assert_eq!(c[0].prefix, p6.prefix);
    assert_eq!(rib.route_count(), 1);
    assert_eq!(rib.peer_down(peer).len(), 1);
    assert!(rib.is_empty());
}

#[test]
fn end_of_rib_per_family() {
    let mut ctx = SessionCtx::four_octet();
    ctx.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let e = end_of_rib(&ctx);
    assert_eq!(e[0].is_end_of_rib(), Some(Family::IPV4_UNICAST));
    assert_eq!(e[1].is_end_of_rib(), Some(Family::IPV6_UNICAST));
}

/// Encode every update; all must fit. Returns the frames.
fn encode_all(ups: &[Update], ctx: &SessionCtx) -> Vec<BytesMut> {
    ups.iter()
        .map(|u| Message::Update(u.clone()).to_bytes(ctx).expect("fits"))
        .collect()
}

#[test]
fn pack_matches_wire_packer_counts() {
    let ctx = SessionCtx::four_octet();
    let a = Arc::new(attrs(&[65001, 65002, 65003], "10.0.0.1"));
    let prefixes: Vec<Nlri> = (0..3000u32)
        .map(|k| {
            Nlri::new(IpNet::V4(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0A00_0000 + (k << 8)), 24).unwrap(),
            ))
        })
        .collect();
    let ann: Vec<OutChange> = prefixes
        .iter()
        .map(|n| OutChange::Announce(*n, a.clone()))
        .collect();
    let ups = pack(&ann, &ctx).unwrap();
    let mut buf = BytesMut::new();
    let expected = pack_updates(&ctx, &[], Some(&a), &prefixes, &mut buf).unwrap();
    assert_eq!(ups.len(), expected);
    let frames = encode_all(&ups, &ctx);
    assert_eq!(frames.concat(), buf.to_vec());
    let wd: Vec<OutChange> = prefixes.iter().map(|n| OutChange::Withdraw(*n)).collect();
    let ups = pack(&wd, &ctx).unwrap();
    let mut buf = BytesMut::new();
    let expected = pack_updates(&ctx, &prefixes, None, &[], &mut buf).unwrap();
    assert_eq!(ups.len(), expected);
    assert_eq!(encode_all(&ups, &ctx).concat(), buf.to_vec());
}

#[test]
fn pack_reports_attributes_too_large() {
    let mut ctx = SessionCtx::four_octet();
    ctx.max_len = 60;
    let a = Arc::new(attrs(&(1..40).collect::<Vec<u32>>(), "10.0.0.1"));
    let e = pack(&[OutChange::Announce(nlri("10.0.0.0/8"), a)], &ctx);
    assert!(matches!(
        e,
        Err(crate::wire::EncodeError::AttributesTooLarge { .. })
    ));
}

// ---- property tests -------------------------------------------------------------

const PREFIXES: [&str; 6] = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.0.2.0/24",
    "0.0.0.0/0",
    "2001:db8::/32",
    "2001:db8:1::/48",
];

#[derive(Debug, Clone)]
enum Op {
    Update {
        peer: usize,
        announce: Vec<(usize, Option<u32>, usize)>,
        withdraw: Vec<(usize, Option<u32>)>,
    },
    PeerDown(usize),
    MarkStale(usize),
    PurgeStale(usize, bool),
    SetRouterId(usize, u8),
}

const PEERS: usize = 4;
const ATTRS: usize = 6;

fn path_id() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![3 => Just(None), 1 => (1u32..3).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0..PEERS,
            prop::collection::vec((0..PREFIXES.len(), path_id(), 0..ATTRS), 0..4),
            prop::collection::vec((0..PREFIXES.len(), path_id()), 0..3),
        )
            .prop_map(|(peer, announce, withdraw)| Op::Update {
                peer,
                announce,
                withdraw
            }),
        1 => (0..PEERS).prop_map(Op::PeerDown),
        1 => (0..PEERS).prop_map(Op::MarkStale),
        1 => (0..PEERS, any::<bool>()).prop_map(|(p, v6)| Op::PurgeStale(p, v6)),
        1 => (0..PEERS, 1u8..4).prop_map(|(p, r)| Op::SetRouterId(p, r)),
    ]
}

fn path_attrs() -> impl Strategy<Value = PathAttrs> {
    (
        prop_oneof![Just(None), Just(Some(100)), Just(Some(200))],
        0usize..3,
        0u8..3,
        prop_oneof![Just(None), Just(Some(0)), Just(Some(5))],
        0u8..3,
    )
        .prop_map(|(local_pref, len, origin, med, nh)| PathAttrs {
            local_pref,
            as_path: AsPath::from_sequence((0..len).map(|k| 65000 + k as u32)),
            origin: Origin::from_code(origin).unwrap(),
            med,
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, nh))),
            ..Default::default()
        })
}

fn peer_info() -> impl Strategy<Value = (u8, bool, bool)> {
    // (router id, ebgp, local origin)
    (1u8..4, any::<bool>(), prop::bool::weighted(0.15))
}

type Key = (PeerId, Option<u32>, PathAttrs);
/// (peer index, NLRI) -> (attributes, stale).
type Model = BTreeMap<(usize, Nlri), (Arc<PathAttrs>, bool)>;

fn keys(paths: &[Path]) -> Vec<Key> {
    paths
        .iter()
        .map(|p| (p.peer, p.path_id, PathAttrs::clone(&p.attrs)))
        .collect()
}

/// The Loc-RIB computed from scratch from the model.
fn from_scratch(
    model: &Model,
    infos: &[PeerInfo],
    ids: &[PeerId],
    max_paths: usize,
) -> BTreeMap<IpNet, Vec<Key>> {
    type Cand = (usize, Option<u32>, Arc<PathAttrs>);
    let mut per_prefix: BTreeMap<IpNet, Vec<Cand>> = BTreeMap::new();
    for ((peer, n), (a, _)) in model {
        per_prefix
            .entry(n.prefix)
            .or_default()
            .push((*peer, n.path_id, a.clone()));
    }
    fn k<'a>(
        ids: &[PeerId],
        infos: &'a [PeerInfo],
        c: &'a Cand,
    ) -> (PeerId, &'a PeerInfo, Option<u32>, &'a PathAttrs) {
        (ids[c.0], &infos[c.0], c.1, &*c.2)
    }
    per_prefix
        .into_iter()
        .map(|(prefix, cands)| {
            let best = cands
                .iter()
                .max_by(|a, b| compare(k(ids, infos, a), k(ids, infos, b)))
                .unwrap();
            let mut group: Vec<_> = cands
                .iter()
                .filter(|c| {
                    compare_multipath((&infos[c.0], &c.2), (&infos[best.0], &best.2))
                        == Ordering::Equal
                })
                .collect();
            group.sort_by(|a, b| compare(k(ids, infos, b), k(ids, infos, a)));
            group.truncate(max_paths);
            assert_eq!(group[0].0, best.0);
            let keys = group
                .into_iter()
                .map(|c| (ids[c.0], c.1, PathAttrs::clone(&c.2)))
                .collect();
            (prefix, keys)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_equals_from_scratch(
        max_paths in 1usize..4,
        pool in prop::collection::vec(path_attrs(), ATTRS),
        pinfo in prop::collection::vec(peer_info(), PEERS),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut interner = AttrInterner::new();
        let pool: Vec<Arc<PathAttrs>> = pool.into_iter().map(|a| interner.intern(a)).collect();
        let mut rib = Rib::new(max_paths);
        let mut infos: Vec<PeerInfo> = pinfo
            .iter()
            .enumerate()
            .map(|(i, (rid, ebgp, local))| PeerInfo {
                addr: (!local).then(|| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i as u8))),
                router_id: Ipv4Addr::new(*rid, 0, 0, 0),
                ebgp: *ebgp,
            })
            .collect();
        let ids: Vec<PeerId> = infos.iter().map(|i| rib.add_peer(*i)).collect();
        let mut model = Model::new();
        let mut mirror: BTreeMap<IpNet, Vec<Key>> = BTreeMap::new();
        let n = |i: usize, id: Option<u32>| Nlri { prefix: net(PREFIXES[i]), path_id: id };

        for op in ops {
            let before = from_scratch(&model, &infos, &ids, max_paths);
            let changes = match op {
                Op::Update { peer, announce, withdraw } => {
                    let wd: Vec<Nlri> = withdraw.iter().map(|(p, id)| n(*p, *id)).collect();
                    let ann: Vec<(Nlri, Arc<PathAttrs>)> =
                        announce.iter().map(|(p, id, a)| (n(*p, *id), pool[*a].clone())).collect();
                    for w in &wd {
                        model.remove(&(peer, *w));
                    }
                    for (x, a) in &ann {
                        model.insert((peer, *x), (a.clone(), false));
                    }
                    rib.update(ids[peer], &ann, &wd)
                }
                Op::PeerDown(peer) => {
                    model.retain(|(p, _), _| *p != peer);
                    rib.peer_down(ids[peer])
                }
                Op::MarkStale(peer) => {
                    let mut count = 0;
                    for ((p, _), (_, stale)) in model.iter_mut() {
                        if *p == peer {
                            *stale = true;
                            count += 1;
                        }
                    }
                    prop_assert_eq!(rib.mark_stale(ids[peer]), count);
                    Vec::new()
                }
                Op::PurgeStale(peer, v6) => {
                    let fam = if v6 { Family::IPV6_UNICAST } else { Family::IPV4_UNICAST };
                    model.retain(|(p, x), (_, stale)| {
                        !(*p == peer && *stale && Family::of(&x.prefix) == fam)
                    });
                    rib.purge_stale(ids[peer], fam)
                }
                Op::SetRouterId(peer, rid) => {
                    infos[peer].router_id = Ipv4Addr::new(rid, 0, 0, 0);
                    rib.set_peer_info(ids[peer], infos[peer])
                }
            };
            let after = from_scratch(&model, &infos, &ids, max_paths);

            // The RIB's Loc-RIB equals the recomputation.
            let got: BTreeMap<IpNet, Vec<Key>> =
                rib.iter().map(|(p, g)| (*p, keys(g))).collect();
            prop_assert_eq!(&got, &after);
            // Changes name each prefix whose group changed, once, and nothing else.
            let changed: BTreeSet<IpNet> = changes.iter().map(|c| c.prefix).collect();
            prop_assert_eq!(changed.len(), changes.len());
            let all: BTreeSet<IpNet> = before.keys().chain(after.keys()).copied().collect();
            let expected: BTreeSet<IpNet> =
                all.into_iter().filter(|p| before.get(p) != after.get(p)).collect();
            prop_assert_eq!(&changed, &expected);
            // Applying the changes to a mirror gives the Loc-RIB.
            for c in &changes {
                if c.paths.is_empty() {
                    mirror.remove(&c.prefix);
                } else {
                    mirror.insert(c.prefix, keys(&c.paths));
                }
            }
            prop_assert_eq!(&mirror, &after);
            // Counts and Adj-RIB-In views.
            prop_assert_eq!(rib.route_count(), model.len());
            for (i, id) in ids.iter().enumerate() {
                let mut adj: Vec<(Nlri, PathAttrs, bool)> = rib
                    .adj_rib_in(*id)
                    .map(|(x, p)| (x, PathAttrs::clone(&p.attrs), p.stale))
                    .collect();
                adj.sort();
                let want: Vec<(Nlri, PathAttrs, bool)> = model
                    .iter()
                    .filter(|((p, _), _)| *p == i)
                    .map(|((_, x), (a, s))| (*x, PathAttrs::clone(a), *s))
                    .collect();
                prop_assert_eq!(rib.peer_route_count(*id), want.len());
                prop_assert_eq!(adj, want);
            }
        }
        drop((pool, rib, model));
        interner.gc();
        prop_assert!(interner.is_empty());
    }
}

#[derive(Debug, Clone)]
struct PackCase {
    ctx: SessionCtx,
    changes: Vec<OutChange>,
}

fn pack_case() -> impl Strategy<Value = PackCase> {
    let prefix = prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet::V4(
            ipnet::Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()
        )),
        (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet::V6(
            ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()
        )),
    ];
    (
        60usize..600,
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_map(prefix, (path_id(), 0usize..4), 0..300),
    )
        .prop_map(|(max_len, add_path, four, items)| {
            let mut ctx = if four {
                SessionCtx::four_octet()
            } else {
                SessionCtx::default()
            };
            ctx.max_len = max_len;
            ctx.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
            ctx.ext_next_hop = vec![(Family::IPV4_UNICAST, Afi::Ipv6)];
            if add_path {
                ctx.add_path_tx = ctx.families.clone();
            }
            // Attribute sets: 0 = withdrawal, 1 = IPv4 next hop (IPv6 prefixes use
            // set 3 instead), 2 = IPv6 next hop with link-local, 3 = IPv6 next hop.
            let v4 = Arc::new(attrs(&[65001, 65002], "192.0.2.1"));
            let v6ll = Arc::new(PathAttrs {
                next_hop: Some(NextHop::V6 {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                }),
                communities: (1..40).map(crate::types::Community).collect(),
                ..attrs(&[65003], "2001:db8::1")
            });
            let v6 = Arc::new(attrs(&[65004, 65005, 65006], "2001:db8::2"));
            let changes = items
                .into_iter()
                .map(|(prefix, (id, set))| {
                    let n = Nlri {
                        prefix,
                        // With ADD-PATH a missing id goes out as 0.
                        path_id: add_path.then_some(id.unwrap_or(0)),
                    };
                    match set {
                        0 => OutChange::Withdraw(n),
                        1 if prefix.addr().is_ipv4() => OutChange::Announce(n, v4.clone()),
                        2 => OutChange::Announce(n, v6ll.clone()),
                        _ => OutChange::Announce(n, v6.clone()),
                    }
                })
                .collect();
            PackCase { ctx, changes }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every message fits, decodes back to exactly the input, and the greedy fill is
    /// tight: the first prefix of a message would not have fitted in the one before
    /// when both carry the same kind of content.
    #[test]
    fn pack_fits_round_trips_and_is_tight(case in pack_case()) {
        let PackCase { ctx, changes } = case;
        let ups = match pack(&changes, &ctx) {
            Ok(u) => u,
            Err(crate::wire::EncodeError::AttributesTooLarge { len, max }) => {
                prop_assert!(len > max);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let rx = ctx.mirrored();
        let mut ann: HashMap<Nlri, PathAttrs> = HashMap::new();
        let mut wd: BTreeSet<Nlri> = BTreeSet::new();
        for u in &ups {
            let frame = Message::Update(u.clone()).to_bytes(&ctx);
            prop_assert!(frame.is_ok(), "{:?}", frame);
            let frame = frame.unwrap();
            prop_assert!(frame.len() <= ctx.max_len);
            let Message::Update(d) = Message::decode(&frame, &rx).unwrap() else {
                return Err(TestCaseError::fail("not an update"));
            };
            for (_, list) in &d.withdrawn {
                wd.extend(list.iter().copied());
            }
            for (_, list) in &d.announced {
                for x in list {
                    ann.insert(*x, d.attrs.clone().unwrap());
                }
            }
        }
        let mut want_ann = HashMap::new();
        let mut want_wd = BTreeSet::new();
        for c in &changes {
            match c {
                OutChange::Announce(n, a) => {
                    want_ann.insert(*n, PathAttrs::clone(a));
                }
                OutChange::Withdraw(n) => {
                    want_wd.insert(*n);
                }
            }
        }
        prop_assert_eq!(wd, want_wd);
        prop_assert_eq!(ann, want_ann);
        for pair in ups.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let same_kind = a.attrs == b.attrs
                && a.withdrawn.first().map(|x| x.0) == b.withdrawn.first().map(|x| x.0)
                && a.announced.first().map(|x| x.0) == b.announced.first().map(|x| x.0);
            if !same_kind {
                continue;
            }
            let mut bigger = a.clone();
            if let (Some(x), Some(y)) = (bigger.withdrawn.first_mut(), b.withdrawn.first()) {
                x.1.push(y.1[0]);
            }
            if let (Some(x), Some(y)) = (bigger.announced.first_mut(), b.announced.first()) {
                x.1.push(y.1[0]);
            }
            prop_assert!(Message::Update(bigger).to_bytes(&ctx).is_err(), "not tight");
        }
    }
}

#[test]
fn a_peer_turning_external_is_compared_with_the_group_it_had_before() {
    let mut rib = Rib::new(4);
    let mut ia = ebgp("10.0.0.1", 9);
    ia.ebgp = false;
    let a = rib.add_peer(ia);
    let b = rib.add_peer(ebgp("10.0.0.2", 2));
    let p = nlri("203.0.113.0/24");
    rib.update(a, &[(p, Arc::new(attrs(&[], "10.0.0.1")))], &[]);
    rib.update(b, &[(p, Arc::new(attrs(&[], "10.0.0.2")))], &[]);
    assert_eq!(rib.get(&p.prefix).unwrap().len(), 1, "eBGP beats iBGP");
    let changes = rib.set_peer_info(a, PeerInfo { ebgp: true, ..ia });
    assert_eq!(rib.get(&p.prefix).unwrap().len(), 2);
    assert_eq!(changes.len(), 1, "the group grew to both");
}

#[test]
fn path_changes_outside_the_group_are_reported_when_asked() {
    let mut rib = Rib::new(4);
    rib.report_path_changes(true);
    let a = rib.add_peer(ebgp("10.0.0.1", 1));
    let b = rib.add_peer(ebgp("10.0.0.2", 2));
    let p = nlri("203.0.113.0/24");
    let c = rib.update(a, &[(p, Arc::new(attrs(&[1], "10.0.0.1")))], &[]);
    assert!(c.len() == 1 && c[0].group_changed);
    // A longer path: not in the group, reported as a path change only.
    let c = rib.update(b, &[(p, Arc::new(attrs(&[2, 3], "10.0.0.2")))], &[]);
    assert_eq!(c.len(), 1);
    assert!(!c[0].group_changed);
    let c = rib.update(b, &[], &[p]);
    assert!(c.len() == 1 && !c[0].group_changed);
    // Without asking, nothing.
    rib.report_path_changes(false);
    let c = rib.update(b, &[(p, Arc::new(attrs(&[2, 3], "10.0.0.2")))], &[]);
    assert!(c.is_empty());
}
