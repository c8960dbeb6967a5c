//! Two of our speakers on loopback: the session comes up, originated prefixes arrive
//! with the right next hop and AS path, withdrawals and neighbor removal take routes
//! away, and learned routes are never passed on (the host guardrail).

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use common::wait_routes;
use ipnet::IpNet;

fn cfg(asn: u32, id: u8, listen: Option<SocketAddr>) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn,
        router_id: Ipv4Addr::new(10, 255, 0, id),
        listen,
        max_paths: 16,
        export_learned: false,
        communities: vec!["65000:100".parse().unwrap()],
        large_communities: vec![],
        graceful_restart: None,
    }
}

async fn wait_state(s: &Speaker, addr: IpAddr, state: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if s.neighbors()
                .iter()
                .any(|n| n.address == addr && n.state == state)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr} never {state}: {:?}", s.neighbors()))
}

#[tokio::test]
async fn two_speakers_exchange_and_withdraw() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let a = Speaker::start(cfg(65001, 1, Some("127.0.0.1:0".parse().unwrap())))
        .await
        .unwrap();
    let port = a.listen_addr().unwrap().port();
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let mut pa = PeerConfig::new(lo, 65002);
    pa.passive = true;
    a.add_neighbor(pa).unwrap();
    let mut pb = PeerConfig::new(lo, 65001);
    pb.port = port;
    b.add_neighbor(pb).unwrap();
    wait_state(&a, lo, "Established").await;
    wait_state(&b, lo, "Established").await;

    let p1: IpNet = "20.1.1.2/32".parse().unwrap();
    let p2: IpNet = "20.1.1.3/32".parse().unwrap();
    b.originate(vec![p1, p2]).unwrap();
    let r = wait_routes(&a, "the routes", |r| {
        r.contains_key(&p1) && r.contains_key(&p2)
    })
    .await;
    assert_eq!(r[&p1], vec![lo]);
    // A learned them but never passes them back (nor anywhere).
    a.originate(vec!["30.0.0.1/32".parse().unwrap()]).unwrap();
    let rb = wait_routes(&b, "the routes", |r| {
        r.contains_key(&"30.0.0.1/32".parse().unwrap())
    })
    .await;
    assert!(
        !rb.contains_key(&p1),
        "a learned route was exported: {rb:?}"
    );
    let st = a.neighbors();
    assert_eq!(st[0].prefixes_received, 2, "{st:?}");
    assert!(st[0].updates_in >= 1);

    b.withdraw(vec![p1]).unwrap();
    let r = wait_routes(&a, "the routes", |r| !r.contains_key(&p1)).await;
    assert!(r.contains_key(&p2));
    // Removing the neighbor takes its routes away.
    a.remove_neighbor(lo);
    wait_routes(&a, "the routes", |r| r.is_empty()).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_peer_with_the_wrong_as_is_refused() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let a = Speaker::start(cfg(65001, 1, Some("127.0.0.1:0".parse().unwrap())))
        .await
        .unwrap();
    let port = a.listen_addr().unwrap().port();
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let mut pa = PeerConfig::new(lo, 65999);
    pa.passive = true;
    a.add_neighbor(pa).unwrap();
    let mut pb = PeerConfig::new(lo, 65001);
    pb.port = port;
    b.add_neighbor(pb).unwrap();
    // B hears "Bad Peer AS" and keeps retrying; neither side reaches Established.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = b.neighbors()[0].last_error.clone().unwrap_or_default();
            if e.contains("NotificationReceived") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no NOTIFICATION seen: {:?}", b.neighbors()));
    assert_ne!(a.neighbors()[0].state, "Established");
    a.shutdown().await;
    b.shutdown().await;
}

fn gr(restarting: bool) -> Option<bgp_speaker::driver::GracefulRestartConfig> {
    Some(bgp_speaker::driver::GracefulRestartConfig {
        restart_time: 120,
        restarting,
        stale_time: Duration::from_secs(60),
    })
}

/// B (the "host") restarts while A (the "ToR") keeps its routes as stale; when B is back,
/// what it re-announces before End-of-RIB stays and what it no longer has goes.
#[tokio::test]
async fn graceful_restart_keeps_routes_through_a_restart() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let mut ca = cfg(65001, 1, Some("127.0.0.1:0".parse().unwrap()));
    ca.graceful_restart = gr(false);
    let a = Speaker::start(ca).await.unwrap();
    let port = a.listen_addr().unwrap().port();
    let mut pa = PeerConfig::new(lo, 65002);
    pa.passive = true;
    a.add_neighbor(pa).unwrap();
    let start_b = |restarting: bool| async move {
        let mut cb = cfg(65002, 2, None);
        cb.graceful_restart = gr(restarting);
        let b = Speaker::start(cb).await.unwrap();
        let mut pb = PeerConfig::new(lo, 65001);
        pb.port = port;
        b.add_neighbor(pb).unwrap();
        b
    };
    let keep: IpNet = "20.1.1.2/32".parse().unwrap();
    let gone: IpNet = "20.1.1.3/32".parse().unwrap();
    let b = start_b(false).await;
    b.originate(vec![keep, gone]).unwrap();
    wait_routes(&a, "the routes", |r| {
        r.contains_key(&keep) && r.contains_key(&gone)
    })
    .await;

    // B goes away without a NOTIFICATION, as a crash or a restart would.
    b.shutdown_for_restart().await;
    wait_state(&a, lo, "Active").await;
    let stale = a.neighbors()[0].stale_routes;
    assert_eq!(stale, 2, "{:?}", a.neighbors());
    let r = a.routes().borrow().clone();
    assert!(r.contains_key(&keep) && r.contains_key(&gone), "{r:?}");

    // B is back (R bit set) with only one of the two: after its End-of-RIB the other is
    // purged, the re-announced one was never withdrawn.
    let b2 = start_b(true).await;
    b2.originate(vec![keep]).unwrap();
    wait_state(&a, lo, "Established").await;
    let r = wait_routes(&a, "the routes", |r| !r.contains_key(&gone)).await;
    assert!(r.contains_key(&keep), "{r:?}");
    tokio::time::timeout(Duration::from_secs(30), async {
        while !a.neighbors()[0].eor_received || a.neighbors()[0].stale_routes != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{:?}", a.neighbors()));
    b2.shutdown().await;
    a.shutdown().await;
}

/// Without graceful restart a lost session takes the routes with it at once.
#[tokio::test]
async fn without_graceful_restart_routes_go_with_the_session() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let a = Speaker::start(cfg(65001, 1, Some("127.0.0.1:0".parse().unwrap())))
        .await
        .unwrap();
    let port = a.listen_addr().unwrap().port();
    let mut pa = PeerConfig::new(lo, 65002);
    pa.passive = true;
    a.add_neighbor(pa).unwrap();
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let mut pb = PeerConfig::new(lo, 65001);
    pb.port = port;
    b.add_neighbor(pb).unwrap();
    let p: IpNet = "20.1.1.2/32".parse().unwrap();
    b.originate(vec![p]).unwrap();
    wait_routes(&a, "the routes", |r| r.contains_key(&p)).await;
    b.shutdown_for_restart().await;
    wait_routes(&a, "the routes", |r| !r.contains_key(&p)).await;
    assert_eq!(a.neighbors()[0].stale_routes, 0);
    a.shutdown().await;
}

/// A transit speaker (`export_learned`) passes B's route on to C with its own AS
/// prepended and itself as next hop, never back to B; B's withdrawal follows.
#[tokio::test]
async fn a_transit_speaker_passes_routes_on() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let lo2: IpAddr = "127.0.0.2".parse().unwrap();
    let mut ca = cfg(65001, 1, Some("0.0.0.0:0".parse().unwrap()));
    ca.export_learned = true;
    let a = Speaker::start(ca).await.unwrap();
    let port = a.listen_addr().unwrap().port();
    // B connects from 127.0.0.1, C from 127.0.0.2 (two loopback addresses).
    for (addr, asn) in [(lo, 65002), (lo2, 65003)] {
        let mut p = PeerConfig::new(addr, asn);
        p.passive = true;
        a.add_neighbor(p).unwrap();
    }
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let mut pb = PeerConfig::new(lo, 65001);
    pb.port = port;
    b.add_neighbor(pb).unwrap();
    let c = Speaker::start(cfg(65003, 3, None)).await.unwrap();
    let mut pc = PeerConfig::new(lo, 65001);
    pc.port = port;
    pc.transport.local_addr = Some(lo2);
    c.add_neighbor(pc).unwrap();
    wait_state(&a, lo, "Established").await;
    wait_state(&a, lo2, "Established").await;

    let p: IpNet = "20.2.0.0/24".parse().unwrap();
    b.originate(vec![p]).unwrap();
    let r = wait_routes(&c, "the routes", |r| r.contains_key(&p)).await;
    assert_eq!(r[&p], vec![lo], "C reaches it through A");
    // Never back to B (split horizon): B's only route for p would be its own.
    assert!(!b.routes().borrow().contains_key(&p));
    b.withdraw(vec![p]).unwrap();
    wait_routes(&c, "the routes", |r| !r.contains_key(&p)).await;
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

/// Replacing a neighbor starts its status afresh: the old session's end is not counted
/// against the new one.
#[tokio::test]
async fn a_replaced_neighbor_starts_with_a_clean_status() {
    let (a_ip, b_ip): (IpAddr, IpAddr) =
        ("127.0.0.61".parse().unwrap(), "127.0.0.62".parse().unwrap());
    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(a_ip, 0))))
        .await
        .unwrap();
    let b = Speaker::start(cfg(65002, 2, Some(SocketAddr::new(b_ip, 0))))
        .await
        .unwrap();
    let mut pa = PeerConfig::new(b_ip, 65002);
    pa.passive = true;
    a.add_neighbor(pa.clone()).unwrap();
    let mut pb = PeerConfig::new(a_ip, 65001);
    pb.port = a.listen_addr().unwrap().port();
    pb.transport.local_addr = Some(b_ip);
    b.add_neighbor(pb).unwrap();
    wait_state(&a, b_ip, "Established").await;
    // Replaced (say, a new description): the old session ends, a new one comes up.
    pa.description = "replaced".into();
    a.add_neighbor(pa).unwrap();
    wait_state(&a, b_ip, "Established").await;
    // Give the old task time to finish its stop, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = a
        .neighbors()
        .into_iter()
        .find(|n| n.address == b_ip)
        .unwrap();
    assert_eq!(n.flaps, 0, "{n:?}");
    assert_eq!(n.state, "Established", "{n:?}");
}
