use std::net::Ipv4Addr;

use super::*;
use crate::rib::PeerInfo;
use crate::types::{Community, Origin};
use crate::wire::{Update, frame_len};

const ASN: u32 = 65000;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A RIB with its local peer, an interner and the export engine.
struct World {
    rib: Rib,
    interner: AttrInterner,
    export: Export,
    local: PeerId,
}

impl World {
    fn new(export_learned: bool) -> World {
        let mut rib = Rib::new(4);
        rib.keep_empty(true);
        rib.report_path_changes(true);
        let local = rib.add_peer(PeerInfo::local(Ipv4Addr::new(10, 0, 0, 100)));
        World {
            rib,
            interner: AttrInterner::new(),
            export: Export::new(ASN, export_learned, local),
            local,
        }
    }

    fn peer(&mut self, addr: &str, ebgp: bool) -> PeerId {
        self.rib.add_peer(PeerInfo {
            addr: Some(ip(addr)),
            router_id: match ip(addr) {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::new(9, 9, 9, 9),
            },
            ebgp,
        })
    }

    /// Announces (`Some`) or withdraws (`None`) a path of `peer`; the changes go to
    /// every session in `outs`.
    fn route(
        &mut self,
        peer: PeerId,
        prefix: &str,
        attrs: Option<PathAttrs>,
        outs: &mut [&mut PeerOut],
    ) {
        let n = Nlri::new(net(prefix));
        let changes = match attrs {
            Some(a) => {
                let a = self.interner.intern(a);
                self.rib.update(peer, &[(n, a)], &[])
            }
            None => self.rib.update(peer, &[], &[n]),
        };
        for c in &changes {
            self.export.changed(c, outs.iter_mut().map(|o| &mut **o));
        }
    }

    fn originate(&mut self, prefix: &str, outs: &mut [&mut PeerOut]) {
        let a = PathAttrs {
            origin: Origin::Igp,
            ..Default::default()
        };
        self.route(self.local, prefix, Some(a), outs);
    }

    /// Fills `out`, acknowledges everything and returns the UPDATEs decoded.
    fn fill(&mut self, out: &mut PeerOut) -> Vec<Update> {
        let filled = self.export.fill(&self.rib, &mut self.interner, out);
        assert!(filled.problems.is_empty(), "{:?}", filled.problems);
        decode(out, &filled)
    }
}

/// The UPDATEs of `filled`, decoded as the peer does, and acknowledged.
fn decode(out: &mut PeerOut, filled: &Filled) -> Vec<Update> {
    // The peer decodes with the mirror image of what we encode with.
    let ctx = SessionCtx {
        add_path_rx: out.params.ctx.add_path_tx.clone(),
        add_path_tx: out.params.ctx.add_path_rx.clone(),
        ..out.params.ctx.clone()
    };
    let mut us = Vec::new();
    for b in &filled.batches {
        let mut rest = &b.bytes[..];
        let mut n = 0;
        while let Some(len) = frame_len(rest, ctx.max_len).unwrap() {
            match Message::decode(&rest[..len], &ctx).unwrap() {
                Message::Update(u) => us.push(u),
                m => panic!("unexpected {m:?}"),
            }
            rest = &rest[len..];
            n += 1;
        }
        assert_eq!(n, b.updates);
        out.written(b.bytes.len());
    }
    assert_eq!(out.in_flight(), 0);
    us
}

fn session(addr: &str, ebgp: bool) -> PeerOut {
    PeerOut::new(PeerParams {
        addr: ip(addr),
        local: ip("10.0.0.100"),
        ebgp,
        ctx: SessionCtx::four_octet(),
        next_hop_v6: None,
        policy: Policy::accept_all(),
    })
}

fn announced(us: &[Update]) -> Vec<Nlri> {
    us.iter()
        .flat_map(|u| u.announced.iter().flat_map(|(_, n)| n.iter().copied()))
        .collect()
}

fn withdrawn(us: &[Update]) -> Vec<Nlri> {
    us.iter()
        .flat_map(|u| u.withdrawn.iter().flat_map(|(_, n)| n.iter().copied()))
        .collect()
}

fn learned(path: &[u32], hop: &str) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::from_sequence(path.iter().copied()),
        next_hop: Some(NextHop::from(ip(hop))),
        ..Default::default()
    }
}

#[test]
fn bits_find_the_next_set_bit_across_words() {
    let mut b = Bits::default();
    assert_eq!(b.next_from(0), None);
    assert!(b.set(3));
    assert!(!b.set(3));
    assert!(b.set(130));
    assert_eq!(b.next_from(0), Some(3));
    assert_eq!(b.next_from(4), Some(130));
    assert_eq!(b.next_from(131), None);
    assert!(b.clear(3));
    assert!(!b.clear(3));
    assert!(!b.clear(10_000));
    assert_eq!(b.next_from(0), Some(130));
}

/// What the test-only `AdjRibOut` showed, for the engine: changes made before a fill
/// coalesce (a prefix announced and withdrawn again costs nothing, one changed twice
/// one announcement with the last attributes), withdrawals go only to a peer that
/// holds the prefix, a route that does not encode for the peer is withdrawn from it,
/// and a new session starts from nothing.
#[test]
fn changes_coalesce_until_the_peer_is_filled() {
    let mut w = World::new(true);
    let mut s = session("10.0.0.1", true);
    let (p1, p2) = ("10.1.0.0/16", "10.2.0.0/16");
    w.originate(p1, &mut [&mut s]);
    w.originate(p2, &mut [&mut s]);
    w.route(w.local, p2, None, &mut [&mut s]);
    let us = w.fill(&mut s);
    assert_eq!(announced(&us), [Nlri::new(net(p1))]);
    assert!(withdrawn(&us).is_empty());
    assert_eq!(
        us.last().unwrap().is_end_of_rib(),
        Some(Family::IPV4_UNICAST)
    );
    assert_eq!(s.advertised(), 1);
    // Nothing changed: nothing to send.
    assert!(w.fill(&mut s).is_empty());
    // Withdrawn from a peer that never had it: nothing to send.
    w.route(w.local, p2, None, &mut [&mut s]);
    assert!(w.fill(&mut s).is_empty());
    // Learned from another peer, twice, before the fill: one announcement, the last.
    let other = w.peer("10.0.0.2", true);
    let p3 = "10.3.0.0/16";
    w.route(
        other,
        p3,
        Some(learned(&[65002], "10.0.0.2")),
        &mut [&mut s],
    );
    w.route(
        other,
        p3,
        Some(learned(&[65003], "10.0.0.2")),
        &mut [&mut s],
    );
    let us = w.fill(&mut s);
    assert_eq!(us.len(), 1);
    assert_eq!(
        us[0].attrs.as_ref().unwrap().as_path,
        AsPath::from_sequence([ASN, 65003])
    );
    assert_eq!(s.advertised(), 2);
    // Attributes this peer cannot take (too long an AS path for its message size): the
    // route is withdrawn from it.
    let long: Vec<u32> = (1..2000).collect();
    w.route(other, p3, Some(learned(&long, "10.0.0.2")), &mut [&mut s]);
    let filled = w.export.fill(&w.rib, &mut w.interner, &mut s);
    assert!(matches!(
        filled.problems[..],
        [ExportProblem::Unencodable { count: 1, .. }]
    ));
    let us = decode(&mut s, &filled);
    assert_eq!(withdrawn(&us), [Nlri::new(net(p3))]);
    assert!(announced(&us).is_empty());
    assert_eq!(s.advertised(), 1);
    assert_eq!(
        w.export
            .adj_rib_out(&w.rib, &mut w.interner, &s)
            .into_iter()
            .map(|(p, a)| (p, a.and_then(|a| a.next_hop)))
            .collect::<Vec<_>>(),
        [(net(p1), Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 100))))]
    );
    // A new session starts from the whole table (the route too large again).
    let mut again = session("10.0.0.1", true);
    again.mark_all(&w.rib);
    let filled = w.export.fill(&w.rib, &mut w.interner, &mut again);
    assert_eq!(filled.problems.len(), 1);
    assert_eq!(
        announced(&decode(&mut again, &filled)),
        [Nlri::new(net(p1))]
    );
}

#[test]
fn learned_routes_follow_split_horizon_ibgp_and_well_known_communities() {
    let mut w = World::new(true);
    let (e1, e2, i1, i2) = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4");
    let mut outs = [
        session(e1, true),
        session(e2, true),
        session(i1, false),
        session(i2, false),
    ];
    let from_e1 = w.peer(e1, true);
    let from_i1 = w.peer(i1, false);
    let mut no_export = learned(&[65001], e1);
    no_export.communities = vec![Community::NO_EXPORT];
    let mut no_advertise = learned(&[65001], e1);
    no_advertise.communities = vec![Community::NO_ADVERTISE];
    {
        let mut refs: Vec<&mut PeerOut> = outs.iter_mut().collect();
        w.route(
            from_e1,
            "20.0.0.0/24",
            Some(learned(&[65001], e1)),
            &mut refs,
        );
        w.route(from_e1, "20.0.1.0/24", Some(no_export), &mut refs);
        w.route(from_e1, "20.0.2.0/24", Some(no_advertise), &mut refs);
        w.route(
            from_i1,
            "20.0.3.0/24",
            Some(learned(&[65009], i1)),
            &mut refs,
        );
    }
    let got: Vec<Vec<IpNet>> = outs
        .iter_mut()
        .map(|s| {
            let mut v: Vec<IpNet> = announced(&w.fill(s)).iter().map(|n| n.prefix).collect();
            v.sort();
            v
        })
        .collect();
    // e1: not its own routes back; the iBGP route (to eBGP), as we are its way out.
    assert_eq!(got[0], [net("20.0.3.0/24")]);
    // e2: not NO_EXPORT nor NO_ADVERTISE.
    assert_eq!(got[1], [net("20.0.0.0/24"), net("20.0.3.0/24")]);
    // i1: NO_EXPORT stays inside the AS; not its own route back.
    assert_eq!(got[2], [net("20.0.0.0/24"), net("20.0.1.0/24")]);
    // i2: not an iBGP route to another iBGP peer.
    assert_eq!(got[3], [net("20.0.0.0/24"), net("20.0.1.0/24")]);
    // Without export_learned only what we originate goes out.
    let mut w = World::new(false);
    let mut s = session(e2, true);
    let from_e1 = w.peer(e1, true);
    w.route(
        from_e1,
        "20.0.0.0/24",
        Some(learned(&[65001], e1)),
        &mut [&mut s],
    );
    w.originate("10.9.0.0/24", &mut [&mut s]);
    assert_eq!(announced(&w.fill(&mut s)), [Nlri::new(net("10.9.0.0/24"))]);
}

#[test]
fn add_path_send_gives_each_path_an_identifier_and_withdraws_it_alone() {
    let mut w = World::new(true);
    let mut s = session("10.0.0.9", true);
    s.params.ctx.add_path_tx = vec![Family::IPV4_UNICAST];
    let (a, b) = (w.peer("10.0.0.1", true), w.peer("10.0.0.2", true));
    let p = "20.0.0.0/24";
    w.route(a, p, Some(learned(&[65001], "10.0.0.1")), &mut [&mut s]);
    w.route(
        b,
        p,
        Some(learned(&[65002, 65003], "10.0.0.2")),
        &mut [&mut s],
    );
    let us = w.fill(&mut s);
    let ids: Vec<Option<u32>> = announced(&us).iter().map(|n| n.path_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter().all(|i| i.is_some()) && ids[0] != ids[1],
        "{ids:?}"
    );
    assert_eq!(s.advertised(), 1, "one prefix");
    // The second path goes: only its identifier is withdrawn.
    w.route(b, p, None, &mut [&mut s]);
    let us = w.fill(&mut s);
    assert!(
        announced(&us).is_empty(),
        "the first path is not sent again"
    );
    let gone = withdrawn(&us);
    assert_eq!(gone.len(), 1);
    assert!(ids.contains(&gone[0].path_id));
    assert_eq!(s.advertised(), 1);
    // The last one goes: the prefix is withdrawn, then released.
    w.route(a, p, None, &mut [&mut s]);
    assert_eq!(withdrawn(&w.fill(&mut s)).len(), 1);
    assert_eq!(s.advertised(), 0);
    w.export.release(&mut w.rib, std::iter::once(&s));
    assert_eq!(w.rib.id_of(&net(p)), None);
}

#[test]
fn a_peer_is_filled_within_its_budget_and_an_emptied_prefix_waits_for_it() {
    let mut w = World::new(false);
    let mut s = session("10.0.0.1", true);
    let n = 100_000u32;
    for i in 0..n {
        let p = IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x6400_0000 + i), 32).unwrap());
        w.originate(&p.to_string(), &mut [&mut s]);
    }
    let filled = w.export.fill(&w.rib, &mut w.interner, &mut s);
    let bytes: usize = filled.batches.iter().map(|b| b.bytes.len()).sum();
    assert!(bytes >= IN_FLIGHT && s.in_flight() == bytes);
    assert!(s.pending() > 0, "the rest waits");
    // Nothing more until the writer wrote some.
    assert!(
        w.export
            .fill(&w.rib, &mut w.interner, &mut s)
            .batches
            .is_empty()
    );
    let mut got = announced(&decode(&mut s, &filled)).len();
    while s.pending() > 0 {
        let filled = w.export.fill(&w.rib, &mut w.interner, &mut s);
        got += announced(&decode(&mut s, &filled)).len();
    }
    assert_eq!(got, n as usize);
    // A prefix withdrawn while the peer still holds it keeps its id until the
    // withdrawal went out.
    w.route(w.local, "100.0.0.0/32", None, &mut [&mut s]);
    w.export.release(&mut w.rib, std::iter::once(&s));
    assert!(w.rib.id_of(&net("100.0.0.0/32")).is_some());
    let us = w.fill(&mut s);
    assert_eq!(withdrawn(&us), [Nlri::new(net("100.0.0.0/32"))]);
    w.export.release(&mut w.rib, std::iter::once(&s));
    assert_eq!(w.rib.id_of(&net("100.0.0.0/32")), None);
}
