//! Connection collisions (RFC 4271 §6.8) on loopback, in the machine's own namespace
//! (127.0.0.0/8 is on `lo` without configuration; no root needed).
//!
//! - Two of our speakers, both active towards each other and started together, end every
//!   round with one Established session each way and routes exchanged, without a flap.
//! - A scripted peer makes the collision happen deterministically: our speaker keeps the
//!   connection opened by the speaker with the higher BGP Identifier, closes the other
//!   with Cease / Connection Collision Resolution (6/7) and no KEEPALIVE before it,
//!   refuses a third connection, sends its UPDATEs on the survivor, and restarts the
//!   session on its own when the survivor goes.
//! - A scripted peer doing graceful restart comes back on a new connection (either way)
//!   while its old session still looks up: the old one ends as a restart, routes kept.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::types::Family;
use bgp::wire::{self, Message, Open, SessionCtx};
use bgp_speaker::driver::{PeerStatus, Speaker, SpeakerConfig};
use common::{MUST, Wire, peer, wait_routes};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpSocket};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(asn: u32, id: Ipv4Addr, listen: SocketAddr) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn,
        router_id: id,
        listen: Some(listen),
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

async fn wait_status(s: &Speaker, what: &str, f: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
    tokio::time::timeout(MUST, async {
        loop {
            if let [n] = s.neighbors().as_slice()
                && f(n)
            {
                return n.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {what}: {:?}", s.neighbors()))
}

/// Both speakers active towards each other, neighbors added at the same moment, 20 times.
#[tokio::test]
async fn two_active_speakers_started_together_keep_one_session() {
    let (a_ip, b_ip) = (ip("127.0.0.21"), ip("127.0.0.22"));
    let pa: IpNet = "20.21.0.0/24".parse().unwrap();
    let pb: IpNet = "20.22.0.0/24".parse().unwrap();
    for round in 0..20 {
        let a = Speaker::start(cfg(
            65001,
            Ipv4Addr::new(10, 255, 0, 1),
            SocketAddr::new(a_ip, 0),
        ))
        .await
        .unwrap();
        let b = Speaker::start(cfg(
            65002,
            Ipv4Addr::new(10, 255, 0, 2),
            SocketAddr::new(b_ip, 0),
        ))
        .await
        .unwrap();
        a.originate(vec![pa]).unwrap();
        b.originate(vec![pb]).unwrap();
        let na = peer(b_ip, b.listen_addr().unwrap().port(), 65002, a_ip);
        let nb = peer(a_ip, a.listen_addr().unwrap().port(), 65001, b_ip);
        // Alternate who starts first; both connect at once either way.
        if round % 2 == 0 {
            a.add_neighbor(na).unwrap();
            b.add_neighbor(nb).unwrap();
        } else {
            b.add_neighbor(nb).unwrap();
            a.add_neighbor(na).unwrap();
        }
        let ra = wait_routes(&a, "the routes", |r| r.contains_key(&pb)).await;
        let rb = wait_routes(&b, "the routes", |r| r.contains_key(&pa)).await;
        assert_eq!(ra[&pb], vec![b_ip], "round {round}");
        assert_eq!(rb[&pa], vec![a_ip], "round {round}");
        for (name, s) in [("a", &a), ("b", &b)] {
            let st = wait_status(s, "Established", |n| n.state == "Established").await;
            // A collision never costs a session that was up: the loser is closed before
            // it reaches Established on either side.
            assert_eq!(st.flaps, 0, "round {round}, {name}: {st:?}");
            assert_eq!(st.prefixes_received, 1, "round {round}, {name}: {st:?}");
        }
        a.shutdown().await;
        b.shutdown().await;
    }
}

impl Wire {
    /// Expects Cease / Connection Collision Resolution, then the end of the connection.
    async fn expect_collision_cease(&mut self) {
        match self.recv().await {
            Some(Message::Notification(n)) => assert_eq!(n.code.codes(), (6, 7), "{n:?}"),
            m => panic!("expected Cease/7, got {m:?}"),
        }
        assert!(self.recv().await.is_none(), "still open after Cease/7");
    }
}

const FAKE_AS: u32 = 65002;

fn fake_open(id: Ipv4Addr) -> Open {
    let caps = wire::ctx::basic_capabilities(FAKE_AS, &[Family::IPV4_UNICAST]);
    Open::new(FAKE_AS, 9, id, caps)
}

/// Our speaker (BGP Identifier 10.255.0.5) connects to a scripted peer, which then
/// opens a connection of its own and sends its first OPEN on `first`. The peer's
/// identifier is higher than ours when `peer_higher`, so its connection must survive.
async fn scripted_collision(case: u8, peer_higher: bool, first_on_peers_connection: bool) {
    let s_ip = ip(&format!("127.0.0.{}", 30 + 2 * case));
    let f_ip = ip(&format!("127.0.0.{}", 31 + 2 * case));
    let fake_id = if peer_higher {
        Ipv4Addr::new(10, 255, 0, 9)
    } else {
        Ipv4Addr::new(10, 255, 0, 1)
    };
    let fake = TcpListener::bind(SocketAddr::new(f_ip, 0)).await.unwrap();
    let s = Speaker::start(cfg(
        65001,
        Ipv4Addr::new(10, 255, 0, 5),
        SocketAddr::new(s_ip, 0),
    ))
    .await
    .unwrap();
    let prefix: IpNet = "20.30.0.0/24".parse().unwrap();
    s.originate(vec![prefix]).unwrap();
    s.add_neighbor(peer(f_ip, fake.local_addr().unwrap().port(), FAKE_AS, s_ip))
        .unwrap();

    // Our speaker's connection: it sends its OPEN (its FSM is in OpenSent).
    let (ours, _) = tokio::time::timeout(MUST, fake.accept())
        .await
        .unwrap()
        .unwrap();
    let mut ours = Wire::new(ours);
    let s_open = ours.recv_open().await;
    // The peer's connection: a second FSM answers it with an OPEN.
    let connect_from_peer = || async {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(f_ip, 0)).unwrap();
        sock.connect(s.listen_addr().unwrap()).await.unwrap()
    };
    let mut theirs = Wire::new(connect_from_peer().await);
    theirs.recv_open().await;
    // A third connection is refused while both exist.
    let mut third = Wire::new(connect_from_peer().await);
    assert!(
        third.recv().await.is_none(),
        "a third connection was served"
    );

    let (mut survivor, mut loser) = if peer_higher {
        (theirs, ours)
    } else {
        (ours, theirs)
    };
    let first_is_survivor = first_on_peers_connection == peer_higher;
    if first_is_survivor {
        // The survivor accepts our OPEN (KEEPALIVE) and the other gets Cease/7.
        survivor.send(Message::Open(fake_open(fake_id))).await;
        loser.expect_collision_cease().await;
    } else {
        // The loser is closed at once, with no KEEPALIVE before the Cease.
        loser.send(Message::Open(fake_open(fake_id))).await;
        loser.expect_collision_cease().await;
        survivor.send(Message::Open(fake_open(fake_id))).await;
    }
    assert!(matches!(survivor.recv().await, Some(Message::Keepalive)));
    survivor.ctx = SessionCtx::negotiate(&fake_open(fake_id), &s_open);
    survivor.send(Message::Keepalive).await;
    let st = wait_status(&s, "Established", |n| n.state == "Established").await;
    assert_eq!(st.flaps, 0, "{st:?}");
    // The table's UPDATEs go out on the survivor.
    loop {
        match survivor.recv().await {
            Some(Message::Update(u))
                if u.announced
                    .iter()
                    .any(|(_, n)| n.iter().any(|n| n.prefix == prefix)) =>
            {
                break;
            }
            Some(_) => {}
            None => panic!("the survivor closed: {:?}", s.neighbors()),
        }
    }

    // The survivor goes: the session comes back on its own (a new connection of ours).
    drop(survivor);
    let (again, _) = tokio::time::timeout(MUST, fake.accept())
        .await
        .expect("our speaker reconnects after losing the survivor")
        .unwrap();
    Wire::new(again).recv_open().await;
    s.shutdown().await;
}

#[tokio::test]
async fn peer_higher_open_first_on_its_connection() {
    scripted_collision(0, true, true).await;
}

#[tokio::test]
async fn peer_higher_open_first_on_ours() {
    scripted_collision(1, true, false).await;
}

#[tokio::test]
async fn peer_lower_open_first_on_its_connection() {
    scripted_collision(2, false, true).await;
}

#[tokio::test]
async fn peer_lower_open_first_on_ours() {
    scripted_collision(3, false, false).await;
}

/// A max-prefix reset on a session that came up through a collision (on the lower
/// identifier's side that is the peer's connection, promoted) closes it, and the session
/// comes back after the pause, and again.
#[tokio::test]
async fn max_prefix_reset_after_a_collision_restarts() {
    let (a_ip, b_ip) = (ip("127.0.0.41"), ip("127.0.0.42"));
    let a = Speaker::start(cfg(
        65001,
        Ipv4Addr::new(10, 255, 0, 1),
        SocketAddr::new(a_ip, 0),
    ))
    .await
    .unwrap();
    let b = Speaker::start(cfg(
        65002,
        Ipv4Addr::new(10, 255, 0, 2),
        SocketAddr::new(b_ip, 0),
    ))
    .await
    .unwrap();
    b.originate(vec![
        "20.42.0.0/24".parse().unwrap(),
        "20.42.1.0/24".parse().unwrap(),
    ])
    .unwrap();
    let mut na = peer(b_ip, b.listen_addr().unwrap().port(), 65002, a_ip);
    na.policy.max_prefix = Some(bgp::policy::MaxPrefix {
        limit: 1,
        warning_only: false,
        restart_after: Some(Duration::from_millis(500)),
    });
    let nb = peer(a_ip, a.listen_addr().unwrap().port(), 65001, b_ip);
    a.add_neighbor(na).unwrap();
    b.add_neighbor(nb).unwrap();
    // Up, reset, up again after the pause, reset again: on both sides. (last_error is
    // not checked: a later collision on the way back up may overwrite it.)
    wait_status(&a, "reset twice", |n| n.flaps >= 2).await;
    wait_status(&b, "reset twice", |n| n.flaps >= 2).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// A peer doing graceful restart comes back on a new connection while our session with
/// it still looks up (its old connection never closed): RFC 4724 §4.2 — the old session
/// ends as a restart, the peer's routes are kept as stale, the new session goes on, and
/// its End-of-RIB purges what it did not announce again.
#[tokio::test]
async fn a_peer_that_restarted_unnoticed_takes_over_with_its_routes_kept() {
    // The old session on our connection, then on the peer's (the new one is the
    // peer's either way).
    restarted_unnoticed(false).await;
    restarted_unnoticed(true).await;
}

async fn restarted_unnoticed(old_inbound: bool) {
    use bgp::types::{AsPath, NextHop, Nlri, PathAttrs};
    use bgp::wire::{Capability, GracefulRestart, Update};
    use bgp_speaker::driver::GracefulRestartConfig;

    let (s_ip, f_ip) = if old_inbound {
        (ip("127.0.0.52"), ip("127.0.0.53"))
    } else {
        (ip("127.0.0.50"), ip("127.0.0.51"))
    };
    let fake_id = Ipv4Addr::new(10, 255, 0, 9);
    let fake = TcpListener::bind(SocketAddr::new(f_ip, 0)).await.unwrap();
    let mut c = cfg(
        65001,
        Ipv4Addr::new(10, 255, 0, 5),
        SocketAddr::new(s_ip, 0),
    );
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: false,
        stale_time: Duration::from_secs(300),
    });
    let s = Speaker::start(c).await.unwrap();
    let mut n = peer(f_ip, fake.local_addr().unwrap().port(), FAKE_AS, s_ip);
    n.passive = old_inbound;
    s.add_neighbor(n).unwrap();
    let connect = || async {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(f_ip, 0)).unwrap();
        sock.connect(s.listen_addr().unwrap()).await.unwrap()
    };
    let gr_open = |restarting: bool| {
        let mut o = fake_open(fake_id);
        o.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_state: restarting,
                notification: true,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, true)],
            }));
        o
    };
    let (kept, dropped): (IpNet, IpNet) = (
        "20.40.0.0/24".parse().unwrap(),
        "20.41.0.0/24".parse().unwrap(),
    );
    let announce = |p: IpNet| {
        Message::Update(Update::announce(
            Family::IPV4_UNICAST,
            vec![Nlri::new(p)],
            PathAttrs {
                as_path: AsPath::from_sequence([FAKE_AS]),
                next_hop: Some(NextHop::from(f_ip)),
                ..Default::default()
            },
        ))
    };

    // The first session, with both routes.
    let mut first = if old_inbound {
        let mut w = Wire::new(connect().await);
        w.send(Message::Open(gr_open(false))).await;
        w
    } else {
        let (c, _) = tokio::time::timeout(MUST, fake.accept())
            .await
            .unwrap()
            .unwrap();
        Wire::new(c)
    };
    let s_open = first.recv_open().await;
    if !old_inbound {
        first.send(Message::Open(gr_open(false))).await;
    }
    assert!(matches!(first.recv().await, Some(Message::Keepalive)));
    first.ctx = SessionCtx::negotiate(&gr_open(false), &s_open);
    first.send(Message::Keepalive).await;
    first.send(announce(kept)).await;
    first.send(announce(dropped)).await;
    wait_routes(&s, "the routes", |r| {
        r.contains_key(&kept) && r.contains_key(&dropped)
    })
    .await;

    // The peer restarts; its old connection stays open (as after a reboot whose reset
    // never reached us). It connects again, R bit set.
    let mut second = Wire::new(connect().await);
    let s_open = second.recv_open().await;
    second.send(Message::Open(gr_open(true))).await;
    assert!(matches!(second.recv().await, Some(Message::Keepalive)));
    second.ctx = SessionCtx::negotiate(&gr_open(true), &s_open);
    second.send(Message::Keepalive).await;
    // The old connection is closed, without a Cease.
    loop {
        match first.recv().await {
            None => break,
            Some(Message::Notification(n)) => panic!("the old session got {n:?}"),
            Some(_) => {}
        }
    }
    let st = wait_status(&s, "Established again", |n| {
        n.state == "Established" && n.flaps == 1
    })
    .await;
    assert!(st.stale_routes > 0, "{st:?}");
    // Routes kept through it; End-of-RIB after one of them purges the other.
    let r = s.routes().borrow().clone();
    assert!(r.contains_key(&kept) && r.contains_key(&dropped), "{r:?}");
    second.send(announce(kept)).await;
    second
        .send(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)))
        .await;
    wait_routes(&s, "the routes", |r| {
        r.contains_key(&kept) && !r.contains_key(&dropped)
    })
    .await;
    s.shutdown().await;
}
