//! The table task's tests: import and export through its commands, as the sessions
//! drive it.

use bgp::types::AsPath;

use super::*;

fn peer(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))
}

fn attrs(path: &[u32], next_hop: IpAddr, local_pref: Option<u32>) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::from_sequence(path.iter().copied()),
        next_hop: Some(NextHop::from(next_hop)),
        local_pref,
        ..Default::default()
    }
}

/// Waits until the table has handled everything sent before (two queries in a
/// row: the second runs in a later batch, after the first's routes are published).
async fn settle(table: &mpsc::UnboundedSender<TableCmd>) {
    for _ in 0..2 {
        let (tx, rx) = oneshot::channel();
        table.send(TableCmd::Originated { reply: tx }).unwrap();
        rx.await.unwrap();
    }
}

#[tokio::test]
async fn local_pref_counts_from_internal_peers_only() {
    let sp = SpeakerConfig {
        asn: 65201,
        router_id: Ipv4Addr::new(10, 0, 0, 100),
        listen: None,
        max_paths: 4,
        export_learned: false,
        publish_routes: true,
        communities: Vec::new(),
        large_communities: Vec::new(),
        graceful_restart: None,
    };
    let (table, rx) = mpsc::unbounded_channel();
    let (routes_tx, routes) = watch::channel(Arc::new(Routes::new()));
    let task = tokio::spawn(table_task(
        sp,
        rx,
        routes_tx,
        Arc::new(Mutex::new(BTreeMap::new())),
    ));
    let (out, _out_rx) = mpsc::unbounded_channel();
    for (i, ebgp) in [(1, true), (2, true), (3, false)] {
        table
            .send(TableCmd::PeerUp {
                addr: peer(i),
                conn: 1,
                out: out.clone(),
                ctx: SessionCtx::default(),
                local: peer(100),
                ebgp,
                router_id: Ipv4Addr::new(1, 1, 1, i),
                peer_gr: None,
                next_hop_v6: None,
                policy: Box::default(),
                ebgp_requires_policy: false,
            })
            .unwrap();
    }
    let prefix: IpNet = "20.0.0.0/24".parse().unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let permit = || permits.clone().try_acquire_owned().unwrap();
    let announce = |i: u8, a: PathAttrs| TableCmd::Update {
        addr: peer(i),
        update: Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(prefix)], a),
        _permit: permit(),
    };
    // Two external peers: the longer path carries LOCAL_PREF 200, which an external
    // peer must not be able to set; the shorter path wins.
    table
        .send(announce(1, attrs(&[65001], peer(1), None)))
        .unwrap();
    table
        .send(announce(2, attrs(&[65002, 65003], peer(2), Some(200))))
        .unwrap();
    settle(&table).await;
    assert_eq!(routes.borrow()[&prefix], vec![peer(1)]);
    // An internal peer's LOCAL_PREF is honored, even with a longer path.
    table
        .send(announce(
            3,
            attrs(&[65004, 65005, 65006], peer(3), Some(300)),
        ))
        .unwrap();
    settle(&table).await;
    assert_eq!(routes.borrow()[&prefix], vec![peer(3)]);
    // A path through our own AS (a ToR echoing our route back) is a loop: it replaces
    // the peer's earlier path and is never selected.
    let other: IpNet = "20.1.1.1/32".parse().unwrap();
    let announce_other = |a: PathAttrs| TableCmd::Update {
        addr: peer(1),
        update: Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(other)], a),
        _permit: permit(),
    };
    table
        .send(announce_other(attrs(&[65001], peer(1), None)))
        .unwrap();
    settle(&table).await;
    assert!(routes.borrow().contains_key(&other));
    table
        .send(announce_other(attrs(&[65001, 65201], peer(1), None)))
        .unwrap();
    settle(&table).await;
    assert!(
        !routes.borrow().contains_key(&other),
        "{:?}",
        routes.borrow()
    );
    task.abort();
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn sp(export_learned: bool) -> SpeakerConfig {
    SpeakerConfig {
        asn: 65000,
        router_id: Ipv4Addr::new(10, 0, 0, 100),
        listen: None,
        max_paths: 4,
        export_learned,
        publish_routes: true,
        communities: Vec::new(),
        large_communities: Vec::new(),
        graceful_restart: None,
    }
}

/// A peer's end of a session: what the table sent it, decoded.
struct Peer {
    addr: IpAddr,
    rx: mpsc::UnboundedReceiver<SessionOut>,
    ctx: SessionCtx,
    /// Bytes received and not acknowledged yet.
    unacked: usize,
}

impl Peer {
    fn up(t: &mut Table, i: u8, asn_ebgp: bool, ctx: SessionCtx) -> Peer {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        let (out, rx) = mpsc::unbounded_channel();
        t.handle(TableCmd::PeerUp {
            addr,
            conn: 7,
            out,
            ctx: ctx.clone(),
            local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            ebgp: asn_ebgp,
            router_id: Ipv4Addr::new(1, 1, 1, i),
            peer_gr: None,
            next_hop_v6: None,
            policy: Box::default(),
            ebgp_requires_policy: false,
        });
        // The peer decodes with the mirror image of what the table encodes with.
        let ctx = SessionCtx {
            add_path_rx: ctx.add_path_tx.clone(),
            add_path_tx: ctx.add_path_rx.clone(),
            ..ctx
        };
        Peer {
            addr,
            rx,
            ctx,
            unacked: 0,
        }
    }

    /// Every UPDATE queued for the peer so far.
    fn take(&mut self) -> Vec<Update> {
        let mut out = Vec::new();
        while let Ok(SessionOut::Updates { bytes, .. }) = self.rx.try_recv() {
            self.unacked += bytes.len();
            let mut rest = &bytes[..];
            while let Some(len) = wire::frame_len(rest, self.ctx.max_len).unwrap() {
                match Message::decode(&rest[..len], &self.ctx).unwrap() {
                    Message::Update(u) => out.push(u),
                    m => panic!("unexpected {m:?}"),
                }
                rest = &rest[len..];
            }
        }
        out
    }

    /// The writer wrote everything: the table may send more.
    fn ack(&mut self, t: &mut Table) {
        t.handle(TableCmd::Written {
            addr: self.addr,
            conn: 7,
            bytes: std::mem::take(&mut self.unacked),
        });
        t.fill_all();
        t.release_emptied();
    }

    fn send(&self, t: &mut Table, update: Update) {
        let permit = Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap();
        t.handle(TableCmd::Update {
            addr: self.addr,
            update,
            _permit: permit,
        });
        t.fill_all();
        t.release_emptied();
    }
}

fn table(export_learned: bool) -> Table {
    Table::new(sp(export_learned), Arc::new(Mutex::new(BTreeMap::new())))
}

fn announced(us: &[Update]) -> Vec<IpNet> {
    us.iter()
        .flat_map(|u| {
            u.announced
                .iter()
                .flat_map(|(_, n)| n.iter().map(|n| n.prefix))
        })
        .collect()
}

fn withdrawn(us: &[Update]) -> Vec<IpNet> {
    us.iter()
        .flat_map(|u| {
            u.withdrawn
                .iter()
                .flat_map(|(_, n)| n.iter().map(|n| n.prefix))
        })
        .collect()
}

#[test]
fn originated_prefixes_go_out_packed_then_end_of_rib_then_withdrawals() {
    let mut t = table(false);
    t.handle(TableCmd::Originate(vec![
        net("10.1.0.1/32"),
        net("10.1.0.2/32"),
    ]));
    let mut p = Peer::up(&mut t, 1, true, SessionCtx::default());
    t.fill_all();
    let us = p.take();
    assert_eq!(us.len(), 2, "{us:?}");
    assert_eq!(announced(&us), vec![net("10.1.0.1/32"), net("10.1.0.2/32")]);
    let a = us[0].attrs.as_ref().unwrap();
    assert_eq!(a.as_path, AsPath::from_sequence([65000]));
    assert_eq!(a.next_hop, Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 100))));
    assert_eq!(us[1].is_end_of_rib(), Some(Family::IPV4_UNICAST));
    p.ack(&mut t);
    t.handle(TableCmd::Withdraw(vec![net("10.1.0.1/32")]));
    t.fill_all();
    t.release_emptied();
    let us = p.take();
    assert_eq!(withdrawn(&us), vec![net("10.1.0.1/32")]);
    assert!(announced(&us).is_empty());
    // Withdrawn everywhere: the prefix's id is free again.
    assert_eq!(t.rib.id_of(&net("10.1.0.1/32")), None);
    assert_eq!(t.sessions[&p.addr].export.advertised(), 1);
    let (tx, mut rx) = oneshot::channel();
    t.handle(TableCmd::AdjOut {
        addr: p.addr,
        reply: tx,
    });
    assert_eq!(
        rx.try_recv().unwrap(),
        vec![(
            net("10.1.0.2/32"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)))
        )]
    );
}

#[test]
fn a_slow_peer_gets_at_most_the_in_flight_budget_and_then_the_rest() {
    let mut t = table(false);
    let mut p = Peer::up(&mut t, 1, true, SessionCtx::default());
    let prefixes: Vec<IpNet> = (0..100_000u32)
        .map(|i| IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x6400_0000 + i), 32).unwrap()))
        .collect();
    t.handle(TableCmd::Originate(prefixes.clone()));
    t.fill_all();
    let mut got: Vec<IpNet> = Vec::new();
    let mut rounds = 0;
    let mut eor = false;
    loop {
        let us = p.take();
        if us.is_empty() {
            break;
        }
        assert!(
            p.unacked < bgp::rib::IN_FLIGHT + 64 * 1024,
            "{} bytes unacknowledged",
            p.unacked
        );
        eor |= us.iter().any(|u| u.is_end_of_rib().is_some());
        got.extend(announced(&us));
        rounds += 1;
        p.ack(&mut t);
    }
    assert!(rounds > 1, "everything went out at once");
    assert!(eor);
    got.sort();
    assert_eq!(got, prefixes, "each prefix exactly once");
}

#[test]
fn transit_withdrawal_and_reannouncement_reach_a_slow_peer_in_order() {
    let mut t = table(true);
    let mut a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let mut b = Peer::up(&mut t, 2, true, SessionCtx::default());
    t.fill_all();
    b.take();
    b.ack(&mut t);
    let p = net("20.0.0.0/24");
    let attrs = PathAttrs {
        as_path: AsPath::from_sequence([65001]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ..Default::default()
    };
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
    );
    let us = b.take();
    assert_eq!(announced(&us), vec![p]);
    let got = us[0].attrs.as_ref().unwrap();
    assert_eq!(got.as_path, AsPath::from_sequence([65000, 65001]));
    assert_eq!(
        got.next_hop,
        Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 100)))
    );
    // Not sent back to where it came from.
    assert!(!announced(&a.take()).contains(&p));
    // Withdrawn and announced again: the peer ends up with the route.
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
    );
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
    );
    let us = b.take();
    let mut present = true;
    for u in &us {
        if withdrawn(std::slice::from_ref(u)).contains(&p) {
            present = false;
        }
        if announced(std::slice::from_ref(u)).contains(&p) {
            present = true;
        }
    }
    assert!(present, "{us:?}");
}

#[test]
fn add_path_paths_of_one_peer_are_kept_apart() {
    let mut t = table(false);
    let a = Peer::up(&mut t, 1, false, SessionCtx::default());
    let p = net("198.51.100.0/24");
    let via = |last: u8| PathAttrs {
        as_path: AsPath::from_sequence([65010]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 9, 0, last))),
        local_pref: Some(100),
        ..Default::default()
    };
    let with_id = |id: u32| Nlri {
        prefix: p,
        path_id: Some(id),
    };
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![with_id(1)], via(1)),
    );
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![with_id(2)], via(2)),
    );
    let hops = |t: &Table| t.routes.get(&p).cloned().unwrap_or_default();
    assert_eq!(
        hops(&t),
        vec![
            IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2))
        ]
    );
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![with_id(1)]),
    );
    assert_eq!(hops(&t), vec![IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2))]);
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![with_id(2)]),
    );
    assert!(hops(&t).is_empty());
}

#[test]
fn a_prefix_we_originate_still_publishes_the_route_learned_for_it() {
    let mut t = table(false);
    let a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let p = net("10.1.1.0/24");
    t.handle(TableCmd::Originate(vec![p]));
    let attrs = PathAttrs {
        as_path: AsPath::from_sequence([65001, 65002]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ..Default::default()
    };
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
    );
    let via_a = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))];
    assert_eq!(t.routes.get(&p), Some(&via_a));
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
    );
    assert_eq!(t.routes.get(&p), None);
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
    );
    // No longer originated: the learned route stays.
    t.handle(TableCmd::Withdraw(vec![p]));
    assert_eq!(t.routes.get(&p), Some(&via_a));
}

#[test]
fn add_path_send_gives_every_path_its_own_identifier() {
    let mut t = table(true);
    let mut a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let b = Peer::up(&mut t, 2, true, SessionCtx::default());
    let tx = SessionCtx {
        add_path_tx: vec![Family::IPV4_UNICAST],
        ..SessionCtx::default()
    };
    let mut c = Peer::up(&mut t, 3, true, tx);
    t.fill_all();
    c.take();
    c.ack(&mut t);
    let p = net("203.0.113.0/24");
    let via = |peer: u8, asn: u32| PathAttrs {
        as_path: AsPath::from_sequence([asn]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, peer))),
        ..Default::default()
    };
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, 65001)),
    );
    b.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(2, 65002)),
    );
    let ids = |us: &[Update]| -> Vec<Option<u32>> {
        let mut v: Vec<Option<u32>> = us
            .iter()
            .flat_map(|u| {
                u.announced
                    .iter()
                    .flat_map(|(_, n)| n.iter().map(|n| n.path_id))
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    // Both paths, under two identifiers.
    let us = c.take();
    c.ack(&mut t);
    let got = ids(&us);
    assert_eq!(got.len(), 2, "{us:?}");
    assert!(got.iter().all(|i| i.is_some()));
    // Without ADD-PATH, a gets the best path only: its own, so nothing.
    assert!(!announced(&a.take()).contains(&p));
    // a withdraws: c loses exactly a's path identifier.
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
    );
    let us = c.take();
    let gone: Vec<Option<u32>> = us
        .iter()
        .flat_map(|u| {
            u.withdrawn
                .iter()
                .flat_map(|(_, n)| n.iter().map(|n| n.path_id))
        })
        .collect();
    assert_eq!(gone.len(), 1, "{us:?}");
    assert!(got.contains(&gone[0]));
    // b's path did not change: it is not sent again.
    assert!(announced(&us).is_empty(), "{us:?}");
    // A route refresh sends it again, under the same identifier.
    c.ack(&mut t);
    t.handle(TableCmd::Refresh {
        addr: c.addr,
        family: Family::IPV4_UNICAST,
    });
    t.fill_all();
    let us = c.take();
    let again = ids(&us);
    assert_eq!(again.len(), 1, "{us:?}");
    assert!(got.contains(&again[0]) && again[0] != gone[0]);
    assert_eq!(t.sessions[&c.addr].export.sent_paths(), 1);
}

fn down(t: &mut Table, addr: IpAddr, graceful: bool) {
    let conn = t.sessions.get(&addr).map(|s| s.conn);
    t.handle(TableCmd::PeerDown {
        addr,
        conn,
        graceful,
    });
    t.fill_all();
    t.release_emptied();
}

fn via(peer: u8, path: &[u32]) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::from_sequence(path.iter().copied()),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, peer))),
        ..Default::default()
    }
}

#[test]
fn the_route_published_under_our_own_prefix_goes_with_its_peer() {
    let mut t = table(false);
    let a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let p = net("10.1.1.0/24");
    t.handle(TableCmd::Originate(vec![p]));
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, &[65001])),
    );
    assert!(t.routes.contains_key(&p));
    down(&mut t, a.addr, false);
    assert_eq!(t.rib.paths(&p).len(), 1, "only our own path is left");
    assert_eq!(t.routes.get(&p), None);
}

#[test]
fn add_path_send_follows_paths_outside_the_group() {
    let mut t = table(true);
    let a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let b = Peer::up(&mut t, 2, true, SessionCtx::default());
    let tx = SessionCtx {
        add_path_tx: vec![Family::IPV4_UNICAST],
        ..SessionCtx::default()
    };
    let mut c = Peer::up(&mut t, 3, true, tx);
    t.fill_all();
    c.take();
    c.ack(&mut t);
    let p = net("203.0.113.0/24");
    b.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(2, &[65002])),
    );
    assert_eq!(announced(&c.take()), vec![p]);
    c.ack(&mut t);
    // A longer path: a backup, outside the group — still a path C is sent.
    a.send(
        &mut t,
        Update::announce(
            Family::IPV4_UNICAST,
            vec![Nlri::new(p)],
            via(1, &[65001, 65009]),
        ),
    );
    let us = c.take();
    assert_eq!(announced(&us), vec![p], "{us:?}");
    c.ack(&mut t);
    // And its withdrawal.
    a.send(
        &mut t,
        Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
    );
    let us = c.take();
    assert_eq!(withdrawn(&us), vec![p], "{us:?}");
    assert!(announced(&us).is_empty(), "{us:?}");
}

#[test]
fn a_route_too_large_for_a_peer_is_withdrawn_from_it() {
    let mut t = table(true);
    let big = SessionCtx {
        extended_messages: true,
        max_len: 65535,
        ..SessionCtx::default()
    };
    let a = Peer::up(&mut t, 1, true, big);
    let mut c = Peer::up(&mut t, 3, true, SessionCtx::default());
    t.fill_all();
    c.take();
    c.ack(&mut t);
    let p = net("203.0.113.0/24");
    let mut attrs = via(1, &[65001]);
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
    );
    assert_eq!(announced(&c.take()), vec![p]);
    c.ack(&mut t);
    attrs.communities = (0..3000u32).map(Community).collect();
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
    );
    let us = c.take();
    assert_eq!(withdrawn(&us), vec![p], "{us:?}");
    assert_eq!(t.sessions[&c.addr].export.advertised(), 0);
}

#[test]
fn a_family_the_peer_did_not_negotiate_is_not_sent() {
    let mut t = table(false);
    let v6_only = SessionCtx {
        families: vec![Family::IPV6_UNICAST],
        ..SessionCtx::default()
    };
    let mut c = Peer::up(&mut t, 3, true, v6_only);
    t.fill_all();
    c.take();
    c.ack(&mut t);
    t.handle(TableCmd::Originate(vec![net("10.9.0.0/24")]));
    t.fill_all();
    assert!(announced(&c.take()).is_empty());
}

#[test]
fn well_known_communities_and_route_reflection_attributes_are_honoured() {
    let mut t = table(true);
    let a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let mut ebgp = Peer::up(&mut t, 3, true, SessionCtx::default());
    let mut ibgp = Peer::up(&mut t, 4, false, SessionCtx::default());
    t.fill_all();
    for x in [&mut ebgp, &mut ibgp] {
        x.take();
        x.ack(&mut t);
    }
    let with = |c: Community, n: &str| {
        let mut a = via(1, &[65001]);
        a.communities = vec![c];
        (net(n), a)
    };
    for (p, attrs) in [
        with(Community::NO_EXPORT, "203.0.113.0/24"),
        with(Community::NO_ADVERTISE, "203.0.113.1/32"),
    ] {
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
        );
    }
    let mut rr = via(1, &[65001]);
    rr.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
    rr.cluster_list = vec![Ipv4Addr::new(8, 8, 8, 8)];
    rr.unknown = vec![
        bgp::types::RawAttr {
            flags: 0x80,
            type_code: 250,
            value: vec![1],
        },
        bgp::types::RawAttr {
            flags: 0xC0,
            type_code: 251,
            value: vec![2],
        },
    ];
    let q = net("198.51.100.0/24");
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(q)], rr),
    );
    let to_ebgp = ebgp.take();
    assert_eq!(announced(&to_ebgp), vec![q], "no-export, no-advertise stay");
    let got = to_ebgp[0].attrs.as_ref().unwrap();
    assert_eq!((got.originator_id, got.cluster_list.len()), (None, 0));
    assert_eq!(got.unknown.len(), 1, "only the transitive one goes on");
    assert_eq!(got.unknown[0].type_code, 251);
    assert_ne!(got.unknown[0].flags & 0x20, 0, "with the Partial bit");
    let mut to_ibgp = announced(&ibgp.take());
    to_ibgp.sort();
    assert_eq!(
        to_ibgp,
        vec![q, net("203.0.113.0/24")],
        "no-export goes inside the AS"
    );
}

#[test]
fn news_of_an_older_connection_leaves_the_session_alone() {
    let mut t = table(false);
    let a = Peer::up(&mut t, 1, true, SessionCtx::default());
    let p = net("20.0.0.0/24");
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, &[65001])),
    );
    // A PeerDown from another connection (a replaced neighbor's late stop).
    t.handle(TableCmd::PeerDown {
        addr: a.addr,
        conn: Some(1234),
        graceful: false,
    });
    t.handle(TableCmd::PeerDown {
        addr: a.addr,
        conn: None,
        graceful: false,
    });
    assert!(t.sessions.contains_key(&a.addr));
    assert!(t.routes.contains_key(&p));
    down(&mut t, a.addr, false);
    assert!(!t.routes.contains_key(&p));
}

#[test]
fn a_restarted_peer_keeps_stale_routes_only_where_it_kept_forwarding() {
    let mut spc = sp(false);
    spc.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: false,
        stale_time: Duration::from_secs(300),
    });
    let mut t = Table::new(spc, Arc::new(Mutex::new(BTreeMap::new())));
    let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let gr = |f4: bool| GracefulRestart {
        restart_state: false,
        notification: true,
        restart_time: 120,
        families: vec![(Family::IPV4_UNICAST, f4), (Family::IPV6_UNICAST, true)],
    };
    let up = |t: &mut Table, rid: u8, g: GracefulRestart| {
        let (out, rx) = mpsc::unbounded_channel();
        t.handle(TableCmd::PeerUp {
            addr,
            conn: u64::from(rid),
            out,
            ctx: SessionCtx::default(),
            local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            ebgp: true,
            router_id: Ipv4Addr::new(1, 1, 1, rid),
            peer_gr: Some(g),
            next_hop_v6: None,
            policy: Box::default(),
            ebgp_requires_policy: false,
        });
        rx
    };
    let _rx = up(&mut t, 1, gr(true));
    let a = Peer {
        addr,
        rx: mpsc::unbounded_channel().1,
        ctx: SessionCtx::default(),
        unacked: 0,
    };
    let (p1, p2) = (net("10.1.0.0/24"), net("10.2.0.0/24"));
    a.send(
        &mut t,
        Update::announce(
            Family::IPV4_UNICAST,
            vec![Nlri::new(p1), Nlri::new(p2)],
            via(1, &[65001]),
        ),
    );
    down(&mut t, addr, true);
    assert!(t.routes.contains_key(&p1) && t.routes.contains_key(&p2));
    // Back with a new router id, IPv4 forwarding kept: stale until End-of-RIB.
    let _rx2 = up(&mut t, 9, gr(true));
    a.send(
        &mut t,
        Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p1)], via(1, &[65001])),
    );
    a.send(&mut t, Update::end_of_rib(Family::IPV4_UNICAST));
    assert!(t.routes.contains_key(&p1) && !t.routes.contains_key(&p2));
    assert!(t.stale.is_empty());
    assert_eq!(
        t.rib.peer_info(t.peer_ids[&addr]).router_id,
        Ipv4Addr::new(1, 1, 1, 9)
    );
    // Down again, and back without IPv4 forwarding kept: its IPv4 routes go at once.
    down(&mut t, addr, true);
    assert!(t.routes.contains_key(&p1));
    let _rx3 = up(&mut t, 10, gr(false));
    assert!(!t.routes.contains_key(&p1));
}

#[tokio::test]
async fn routes_over_the_max_prefix_limit_are_never_published() {
    let (table, rx) = mpsc::unbounded_channel();
    let (routes_tx, mut routes) = watch::channel(Arc::new(Routes::new()));
    let task = tokio::spawn(table_task(
        sp(false),
        rx,
        routes_tx,
        Arc::new(Mutex::new(BTreeMap::new())),
    ));
    let (out, mut out_rx) = mpsc::unbounded_channel();
    let policy = bgp::policy::NeighborPolicy {
        max_prefix: Some(bgp::policy::MaxPrefix {
            limit: 2,
            warning_only: false,
            restart_after: Some(Duration::from_secs(60)),
        }),
        ..Default::default()
    };
    table
        .send(TableCmd::PeerUp {
            addr: peer(1),
            conn: 1,
            out,
            ctx: SessionCtx::default(),
            local: peer(100),
            ebgp: true,
            router_id: Ipv4Addr::new(1, 1, 1, 1),
            peer_gr: None,
            next_hop_v6: None,
            policy: Box::new(policy),
            ebgp_requires_policy: false,
        })
        .unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let announce = |prefixes: &[&str]| TableCmd::Update {
        addr: peer(1),
        update: Update::announce(
            Family::IPV4_UNICAST,
            prefixes.iter().map(|p| Nlri::new(net(p))).collect(),
            attrs(&[65001], peer(1), None),
        ),
        _permit: permits.clone().try_acquire_owned().unwrap(),
    };
    table
        .send(announce(&["20.1.1.1/32", "20.1.1.2/32"]))
        .unwrap();
    settle(&table).await;
    assert_eq!(routes.borrow_and_update().len(), 2);
    // Three more in one UPDATE: over the limit. The session is told to close with
    // Cease / Maximum Number of Prefixes Reached, and the peer's routes are gone at once.
    table
        .send(announce(&["20.1.1.3/32", "20.1.1.4/32", "20.1.1.5/32"]))
        .unwrap();
    settle(&table).await;
    assert!(routes.borrow().is_empty(), "{:?}", routes.borrow());
    let mut reset = None;
    while let Ok(m) = out_rx.try_recv() {
        if let SessionOut::Reset { cease_subcode, .. } = m {
            reset = Some(cease_subcode);
        }
    }
    assert_eq!(reset, Some(wire::CeaseError::MaxPrefixesReached.code()));
    task.abort();
}
