//! Two of our speakers on loopback: the session comes up, originated prefixes arrive
//! with the right next hop and AS path, withdrawals and neighbor removal take routes
//! away, and learned routes are never passed on (the host guardrail).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bgp_speaker::driver::{PeerConfig, Routes, Speaker, SpeakerConfig};
use ipnet::IpNet;

fn cfg(asn: u32, id: u8, listen: Option<SocketAddr>) -> SpeakerConfig {
    SpeakerConfig {
        asn,
        router_id: Ipv4Addr::new(10, 255, 0, id),
        listen,
        max_paths: 16,
        communities: vec!["65000:100".parse().unwrap()],
        large_communities: vec![],
        graceful_restart: None,
    }
}

async fn wait_routes(s: &Speaker, f: impl Fn(&Routes) -> bool) -> Arc<Routes> {
    let mut rx = s.routes();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = rx.borrow_and_update().clone();
            if f(&r) {
                return r;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("routes within 30 s")
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
    let r = wait_routes(&a, |r| r.contains_key(&p1) && r.contains_key(&p2)).await;
    assert_eq!(r[&p1], vec![lo]);
    // A learned them but never passes them back (nor anywhere).
    a.originate(vec!["30.0.0.1/32".parse().unwrap()]).unwrap();
    let rb = wait_routes(&b, |r| r.contains_key(&"30.0.0.1/32".parse().unwrap())).await;
    assert!(
        !rb.contains_key(&p1),
        "a learned route was exported: {rb:?}"
    );
    let st = a.neighbors();
    assert_eq!(st[0].prefixes_received, 2, "{st:?}");
    assert!(st[0].updates_in >= 1);

    b.withdraw(vec![p1]).unwrap();
    let r = wait_routes(&a, |r| !r.contains_key(&p1)).await;
    assert!(r.contains_key(&p2));
    // Removing the neighbor takes its routes away.
    a.remove_neighbor(lo);
    wait_routes(&a, |r| r.is_empty()).await;
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
