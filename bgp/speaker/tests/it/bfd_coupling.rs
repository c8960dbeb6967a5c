//! BFD coupling on loopback (RFC 5882): two of our speakers, 127.0.0.1 and 127.0.0.2,
//! each with its own BFD task on a shared test port. With BFD Up on both, one BFD task
//! dies silently; the other side's BFD detects it and its BGP session goes down at once —
//! the cause says BFD (the hold time is 90 s and the TCP connection is fine, so nothing
//! else could end it). The session then comes back, and a BFD session that never comes
//! Up does not hold BGP back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use bgp_speaker::bfd::{Bfd, BfdConfig, BfdOptions};
use bgp_speaker::driver::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Bounds waits so that a failure cannot hang; nothing asserts on elapsed time.
const PATIENCE: Duration = Duration::from_secs(30);

fn cfg(asn: u32, id: u8, listen: Option<SocketAddr>) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: false,
        asn,
        router_id: Ipv4Addr::new(10, 255, 0, id),
        listen,
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

fn fast() -> BfdConfig {
    BfdConfig {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(50),
        detect_mult: 3,
    }
}

async fn wait_status(
    s: &Speaker,
    addr: IpAddr,
    what: &str,
    f: impl Fn(&PeerStatus) -> bool,
) -> PeerStatus {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(n) = s
                .neighbors()
                .into_iter()
                .find(|n| n.address == addr && f(n))
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr} never {what}: {:?}", s.neighbors()))
}

#[tokio::test]
async fn bfd_down_ends_the_bgp_session() {
    let port = UdpSocket::bind((A, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bfd_a = Bfd::start(BfdOptions {
        port,
        bind_v4: Some(A),
        bind_v6: None,
    })
    .unwrap();
    let bfd_b = Bfd::start(BfdOptions {
        port,
        bind_v4: Some(B),
        bind_v6: None,
    })
    .unwrap();

    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(A.into(), 0))))
        .await
        .unwrap();
    let bgp_port = a.listen_addr().unwrap().port();
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    a.use_bfd(bfd_a.clone());
    b.use_bfd(bfd_b.clone());

    let mut pa = PeerConfig::new(B.into(), 65002);
    pa.passive = true;
    pa.hold_time = 90;
    pa.keepalive = 30;
    pa.bfd = Some(fast());
    a.add_neighbor(pa).unwrap();
    let mut pb = PeerConfig::new(A.into(), 65001);
    pb.port = bgp_port;
    pb.hold_time = 90;
    pb.keepalive = 30;
    pb.transport.local_addr = Some(B.into());
    pb.bfd = Some(fast());
    b.add_neighbor(pb).unwrap();

    let up = |n: &PeerStatus| n.state == "Established" && n.bfd.as_deref() == Some("up");
    wait_status(&a, B.into(), "Established with BFD up", up).await;
    wait_status(&b, A.into(), "Established with BFD up", up).await;
    let flaps = a.neighbors()[0].flaps;

    // B's BFD dies without a word; A detects it and ends its BGP session.
    bfd_b.abort();
    let n = wait_status(&a, B.into(), "down by BFD", |n| n.flaps > flaps).await;
    let err = n.last_error.unwrap_or_default();
    assert!(
        err.contains("BFD down") && err.contains("control detection time expired"),
        "{err}"
    );
    assert_ne!(n.state, "Established");

    // BGP comes back (TCP is fine); A's new BFD session never comes Up since B's BFD is
    // gone, and that does not hold BGP back (RFC 5882 §4.3).
    let n = wait_status(&a, B.into(), "Established again", |n| {
        n.state == "Established"
    })
    .await;
    assert_ne!(n.bfd.as_deref(), Some("up"));
    let s = bfd_a.status(B.into(), A.into()).expect("a new BFD session");
    assert!(!s.was_up);
}

#[tokio::test]
async fn peer_admin_down_is_not_a_failure() {
    let port = UdpSocket::bind((A, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bfd_a = Bfd::start(BfdOptions {
        port,
        bind_v4: Some(A),
        bind_v6: None,
    })
    .unwrap();
    let bfd_b = Bfd::start(BfdOptions {
        port,
        bind_v4: Some(B),
        bind_v6: None,
    })
    .unwrap();
    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(A.into(), 0))))
        .await
        .unwrap();
    let bgp_port = a.listen_addr().unwrap().port();
    a.use_bfd(bfd_a.clone());

    let mut pa = PeerConfig::new(B.into(), 65002);
    pa.passive = true;
    pa.hold_time = 90;
    pa.bfd = Some(fast());
    a.add_neighbor(pa).unwrap();
    // B: a speaker without BFD coupling, and a BFD session run by hand.
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let mut pb = PeerConfig::new(A.into(), 65001);
    pb.port = bgp_port;
    pb.hold_time = 90;
    pb.transport.local_addr = Some(B.into());
    b.add_neighbor(pb).unwrap();
    bfd_b.add(A.into(), B.into(), fast()).unwrap();
    wait_status(&a, B.into(), "BFD up", |n| n.bfd.as_deref() == Some("up")).await;
    let flaps = a.neighbors()[0].flaps;

    // B turns BFD off (AdminDown): A's BFD goes Down, BGP stays.
    bfd_b.remove(A.into(), B.into());
    wait_status(&a, B.into(), "BFD down", |n| {
        n.bfd.as_deref() == Some("down")
    })
    .await;
    let st = bfd_a.status(B.into(), A.into()).unwrap();
    assert_eq!(st.remote_state, bgp_speaker::bfd::BfdState::AdminDown);
    // B turns it on again; A's same BFD session (kept with the BGP session) comes Up,
    // and the BGP session never flapped.
    bfd_b.add(A.into(), B.into(), fast()).unwrap();
    let n = wait_status(&a, B.into(), "BFD up again", |n| {
        n.bfd.as_deref() == Some("up")
    })
    .await;
    assert_eq!(n.state, "Established");
    assert_eq!(n.flaps, flaps);
    assert_eq!(
        bfd_a.status(B.into(), A.into()).unwrap().local_discr,
        st.local_discr
    );
}
