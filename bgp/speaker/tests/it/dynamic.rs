//! Dynamic neighbors (`Speaker::add_range`) on loopback, in the machine's own namespace
//! (127.0.0.0/8 is on `lo` without configuration; no root needed).
//!
//! - A speaker with a range accepts two speakers connecting from addresses inside it,
//!   routes go both ways, and `neighbors()` shows them as dynamic.
//! - A dynamic peer that stops disappears from `neighbors()` and its routes are
//!   withdrawn; when it comes back it is created again.
//! - A configured neighbor wins over the range for its address.
//! - A connection from outside every range is refused; a peer announcing an AS the
//!   range does not allow gets OPEN Message Error / Bad Peer AS; the range's limit is
//!   enforced; removing the range removes its dynamic neighbors.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::types::Family;
use bgp::wire::{self, Message, Open};
use bgp_speaker::driver::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use common::{MUST, Wire, peer, wait_routes};
use ipnet::IpNet;
use tokio::net::{TcpSocket, TcpStream};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn cfg(asn: u32, id: u8, listen: Option<SocketAddr>) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn,
        router_id: Ipv4Addr::new(10, 255, 1, id),
        listen,
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

/// The range's template: any of `asns`, hold time 9 s.
fn template(asns: &[u32]) -> PeerConfig {
    let mut p = PeerConfig::new(ip("0.0.0.0"), 1);
    p.remote_as = None;
    p.allowed_as = asns.to_vec();
    p
}

async fn wait_neighbors(
    s: &Speaker,
    what: &str,
    f: impl Fn(&[PeerStatus]) -> bool,
) -> Vec<PeerStatus> {
    tokio::time::timeout(MUST, async {
        loop {
            let n = s.neighbors();
            if f(&n) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {what}: {:?}", s.neighbors()))
}

fn established(n: &[PeerStatus], addr: IpAddr) -> bool {
    n.iter()
        .any(|p| p.address == addr && p.state == "Established")
}

/// A TCP connection to `to` from `from`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    tokio::time::timeout(MUST, sock.connect(to))
        .await
        .expect("connected in time")
        .unwrap()
}

async fn wire_from(from: IpAddr, to: SocketAddr) -> Wire {
    Wire::new(connect_from(from, to).await)
}

fn open(asn: u32, id: Ipv4Addr) -> Open {
    Open::new(
        asn,
        9,
        id,
        wire::ctx::basic_capabilities(asn, &[Family::IPV4_UNICAST]),
    )
}

#[tokio::test]
async fn a_range_accepts_peers_and_forgets_those_that_stop() {
    let (a_ip, b_ip, c_ip) = (ip("127.0.41.1"), ip("127.0.41.2"), ip("127.0.41.3"));
    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(a_ip, 0))))
        .await
        .unwrap();
    let port = a.listen_addr().unwrap().port();
    a.add_range(net("127.0.41.0/24"), template(&[65002, 65003]), 10)
        .unwrap();
    assert_eq!(a.ranges(), vec![(net("127.0.41.0/24"), 10)]);
    let (pa, pb, pc) = (
        net("20.41.1.0/24"),
        net("20.41.2.0/24"),
        net("20.41.3.0/24"),
    );
    a.originate(vec![pa]).unwrap();

    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    b.originate(vec![pb]).unwrap();
    b.add_neighbor(peer(a_ip, port, 65001, b_ip)).unwrap();
    let c = Speaker::start(cfg(65003, 3, None)).await.unwrap();
    c.originate(vec![pc]).unwrap();
    c.add_neighbor(peer(a_ip, port, 65001, c_ip)).unwrap();

    let r = wait_routes(&a, "both peers' routes", |r| {
        r.contains_key(&pb) && r.contains_key(&pc)
    })
    .await;
    assert_eq!((r[&pb].clone(), r[&pc].clone()), (vec![b_ip], vec![c_ip]));
    wait_routes(&b, "A's route at B", |r| r.get(&pa) == Some(&vec![a_ip])).await;
    wait_routes(&c, "A's route at C", |r| r.get(&pa) == Some(&vec![a_ip])).await;
    let n = wait_neighbors(&a, "both Established", |n| {
        established(n, b_ip) && established(n, c_ip)
    })
    .await;
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(n.iter().all(|p| p.dynamic), "{n:?}");
    assert!(b.neighbors().iter().all(|p| !p.dynamic));

    // C stops: its dynamic neighbor goes with its routes; B's stay.
    c.shutdown().await;
    wait_routes(&a, "C's route withdrawn", |r| !r.contains_key(&pc)).await;
    let n = wait_neighbors(&a, "C gone", |n| n.iter().all(|p| p.address != c_ip)).await;
    assert!(established(&n, b_ip), "{n:?}");
    assert!(a.routes().borrow().contains_key(&pb));

    // C comes back: created again.
    let c = Speaker::start(cfg(65003, 3, None)).await.unwrap();
    c.originate(vec![pc]).unwrap();
    c.add_neighbor(peer(a_ip, port, 65001, c_ip)).unwrap();
    wait_routes(&a, "C's route again", |r| r.contains_key(&pc)).await;
    wait_neighbors(&a, "C Established again", |n| established(n, c_ip)).await;

    // A configured neighbor wins over the range for its address.
    let mut pb_conf = PeerConfig::new(b_ip, 65002);
    pb_conf.passive = true;
    a.add_neighbor(pb_conf).unwrap();
    let n = wait_neighbors(&a, "B configured and Established", |n| {
        n.iter()
            .any(|p| p.address == b_ip && !p.dynamic && p.state == "Established")
    })
    .await;
    assert_eq!(n.len(), 2, "{n:?}");
    wait_routes(&a, "B's route through the configured neighbor", |r| {
        r.contains_key(&pb)
    })
    .await;

    // Removing the range removes C (dynamic), not B (configured).
    assert!(a.remove_range(net("127.0.41.0/24")));
    wait_routes(&a, "C's route withdrawn with the range", |r| {
        !r.contains_key(&pc) && r.contains_key(&pb)
    })
    .await;
    let n = a.neighbors();
    assert_eq!(
        n.iter().map(|p| p.address).collect::<Vec<_>>(),
        vec![b_ip],
        "{n:?}"
    );
    assert!(a.ranges().is_empty());
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn outsiders_wrong_ases_and_connections_beyond_the_limit_are_refused() {
    let a_ip = ip("127.0.42.1");
    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(a_ip, 0))))
        .await
        .unwrap();
    let to = a.listen_addr().unwrap();
    // The narrower range wins: 127.0.42.0/28 allows 65005 only, and one neighbor.
    a.add_range(net("127.0.42.0/24"), template(&[65002, 65003]), 10)
        .unwrap();
    a.add_range(net("127.0.42.0/28"), template(&[65005]), 1)
        .unwrap();

    // Outside every range: accepted by TCP, then closed without a word.
    let mut w = wire_from(ip("127.0.43.9"), to).await;
    assert!(w.recv().await.is_none(), "an outsider got a message");
    assert!(a.neighbors().is_empty(), "{:?}", a.neighbors());

    // In the /24 but not the /28, with an AS the /24 does not allow (65005 is the
    // /28's): Bad Peer AS.
    let mut w = wire_from(ip("127.0.42.20"), to).await;
    let Some(Message::Open(o)) = w.recv().await else {
        panic!("no OPEN from the speaker")
    };
    assert_eq!(o.asn(), 65001);
    w.send(Message::Open(open(65005, Ipv4Addr::new(10, 9, 0, 20))))
        .await;
    match w.recv().await {
        Some(Message::Notification(n)) => {
            assert_eq!(n.code.codes(), (2, 2), "not Bad Peer AS: {n:?}")
        }
        m => panic!("expected OPEN Message Error / Bad Peer AS, got {m:?}"),
    }
    assert!(w.recv().await.is_none());
    let n = a.neighbors();
    assert!(
        n.iter().all(|p| p.state != "Established"),
        "a refused peer is Established: {n:?}"
    );

    // In the /28: 65005 is fine there; it fills the /28's limit of one.
    let mut first = wire_from(ip("127.0.42.5"), to).await;
    assert!(matches!(first.recv().await, Some(Message::Open(_))));
    first
        .send(Message::Open(open(65005, Ipv4Addr::new(10, 9, 0, 5))))
        .await;
    first.send(Message::Keepalive).await;
    assert!(matches!(first.recv().await, Some(Message::Keepalive)));
    wait_neighbors(&a, "the first dynamic neighbor Established", |n| {
        established(n, ip("127.0.42.5"))
    })
    .await;
    // A second one in the /28 is over the limit: closed without an OPEN.
    let mut second = wire_from(ip("127.0.42.6"), to).await;
    assert!(second.recv().await.is_none(), "the limit was not enforced");
    assert!(a.neighbors().iter().all(|p| p.address != ip("127.0.42.6")));

    // The first goes (its connection closes): its place is free again.
    drop(first);
    wait_neighbors(&a, "the first dynamic neighbor gone", |n| {
        n.iter().all(|p| p.address != ip("127.0.42.5"))
    })
    .await;
    let mut second = wire_from(ip("127.0.42.6"), to).await;
    assert!(
        matches!(second.recv().await, Some(Message::Open(_))),
        "a free place was refused"
    );
    a.shutdown().await;
}

/// The range's MD5 password is the listener's key for the whole prefix: a peer signing
/// with it comes up; an unsigned handshake from the range never completes. Removing the
/// range removes the key.
#[tokio::test]
async fn a_range_password_covers_the_prefix() {
    use bgp_speaker::transport::{Md5Password, TransportOpts, connect};
    let (a_ip, b_ip) = (ip("127.0.44.1"), ip("127.0.44.2"));
    let a = Speaker::start(cfg(65001, 1, Some(SocketAddr::new(a_ip, 0))))
        .await
        .unwrap();
    let to = a.listen_addr().unwrap();
    let key = Md5Password::new("range-key").unwrap();
    a.add_range(
        net("127.0.44.0/24"),
        template(&[65002]).with_md5_password(key.clone()),
        10,
    )
    .unwrap();
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    let pb = net("20.44.2.0/24");
    b.originate(vec![pb]).unwrap();
    b.add_neighbor(peer(a_ip, to.port(), 65001, b_ip).with_md5_password(key))
        .unwrap();
    wait_routes(&a, "B's route over the signed session", |r| {
        r.contains_key(&pb)
    })
    .await;

    // Unsigned from the range: the kernel drops the handshake.
    let unsigned = TransportOpts {
        local_addr: Some(ip("127.0.44.3")),
        connect_timeout: Duration::from_secs(2),
        ..TransportOpts::default()
    };
    assert!(
        connect(to, &unsigned).await.is_err(),
        "an unsigned handshake completed"
    );

    // Without the range the key is gone: an unsigned handshake completes (and the
    // connection, from no range, is closed).
    assert!(a.remove_range(net("127.0.44.0/24")));
    wait_routes(&a, "B's route gone with the range", |r| r.is_empty()).await;
    let unsigned = TransportOpts {
        connect_timeout: MUST,
        ..unsigned
    };
    let mut w = Wire::new(
        connect(to, &unsigned)
            .await
            .expect("unsigned after removal"),
    );
    assert!(w.recv().await.is_none());
    a.shutdown().await;
    b.shutdown().await;
}

/// The daemon, killed (and reaped) on drop.
struct Bgpd(std::process::Child);

impl Drop for Bgpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `contiv-bgpd` runs a `range` from its file, and a reload that changes the range's
/// allowed ASes resets the dynamic session: the peer, no longer allowed, is refused.
#[tokio::test]
async fn contiv_bgpd_runs_a_range_and_reloads_it() {
    let (d_ip, b_ip) = (ip("127.0.45.1"), ip("127.0.45.2"));
    // A free port for the daemon's listener.
    let port = std::net::TcpListener::bind(SocketAddr::new(d_ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bgpd.toml");
    let toml = |asns: &str| {
        format!(
            "originate = [\"20.45.1.0/24\"]\n\
             [global]\nasn = 65001\nrouter_id = \"10.255.45.1\"\n\
             listen = {{ addresses = [\"{d_ip}\"], port = {port} }}\n\
             ebgp_requires_policy = false\n\
             [[neighbors]]\nrange = \"127.0.45.0/24\"\nallowed_asns = [{asns}]\n\
             hold_time = 9\ndescription = \"leaves\"\n"
        )
    };
    std::fs::write(&file, toml("65002, 65009")).unwrap();
    let log = std::fs::File::create(dir.path().join("bgpd.log")).unwrap();
    let d = Bgpd(
        std::process::Command::new(env!("CARGO_BIN_EXE_contiv-bgpd"))
            .arg("-c")
            .arg(&file)
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let b = Speaker::start(cfg(65002, 2, None)).await.unwrap();
    b.add_neighbor(peer(d_ip, port, 65001, b_ip)).unwrap();
    let p = net("20.45.1.0/24");
    wait_routes(&b, "the daemon's route over the dynamic session", |r| {
        r.get(&p) == Some(&vec![d_ip])
    })
    .await;

    // 65002 no longer allowed: the reload resets the session, the route goes, and the
    // next OPEN is refused with Bad Peer AS.
    std::fs::write(&file, toml("65009")).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &d.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_routes(&b, "the route withdrawn after the reload", |r| {
        !r.contains_key(&p)
    })
    .await;
    wait_neighbors(&b, "Bad Peer AS from the daemon", |n| {
        n.iter().any(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("code: 2, subcode: 2"))
        })
    })
    .await;
    let text = std::fs::read_to_string(dir.path().join("bgpd.log")).unwrap();
    assert!(
        text.contains("127.0.45.2:") && text.contains("dynamic neighbor of range 127.0.45.0/24"),
        "{text}"
    );
    assert!(
        text.contains("range 127.0.45.0/24: peer_asn changed; resetting its dynamic neighbors"),
        "{text}"
    );
    b.shutdown().await;
}
