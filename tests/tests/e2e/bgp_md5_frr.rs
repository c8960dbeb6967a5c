//! TCP MD5 (RFC 2385) between our speaker and FRR on the quickstart fabric: the speaker
//! runs as a library inside host1's namespace, tor1 gets a password at run time
//! through vtysh.
//!
//! - Same password, speaker connecting out (tor1's dynamic-neighbor range): Established,
//!   routes both ways.
//! - Wrong password, then none: never Established on either side; then the right one
//!   comes up, so the lab itself was fine.
//! - FRR connecting to our passive speaker: the password sits on our listener; replacing
//!   the neighbor keeps it there (the session comes back).
//!
//! Plus two of our speakers on loopback (no root needed): same password up, wrong
//! password never.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use bgp_speaker::transport::Md5Password;
use containerlab::lab::DeployOptions;
use contiv_tests::speaker::{in_node, runtime, wait_router, wait_routes};
use contiv_tests::{fabric_lab, require_root};
use ipnet::IpNet;

const DEADLINE: Duration = Duration::from_secs(60);
/// How long a session that must not come up is watched: several connection attempts
/// (connect retry 1 s, and FRR retries too).
const NEVER: Duration = Duration::from_secs(8);
const PASSWORD: &str = "contiv-md5-s3cret";

fn pw(s: &str) -> Md5Password {
    Md5Password::new(s).unwrap()
}

fn speaker_cfg(listen: Option<SocketAddr>) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn: 65201,
        router_id: Ipv4Addr::new(10, 1, 1, 1),
        listen,
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

/// tor1 as the host's peer, with a short connect retry so that a test watching a
/// session that must not come up sees several attempts.
fn tor1(password: Option<&str>) -> PeerConfig {
    let mut p = PeerConfig::new("10.1.1.0".parse().unwrap(), 65001);
    // GTSM, as the lab's ToRs expect from hosts.
    p.transport.ttl = bgp_speaker::transport::TtlMode::Gtsm { hops: 0 };
    p.connect_retry = Duration::from_secs(1);
    p.transport.connect_timeout = Duration::from_secs(3);
    match password {
        Some(s) => p.with_md5_password(pw(s)),
        None => p,
    }
}

fn state_of(s: &Speaker, addr: IpAddr) -> String {
    s.neighbors()
        .into_iter()
        .find(|n| n.address == addr)
        .map(|n| n.state)
        .unwrap_or_default()
}

async fn wait_state(s: &Speaker, addr: IpAddr, state: &str) {
    let start = Instant::now();
    while state_of(s, addr) != state {
        assert!(
            start.elapsed() < DEADLINE,
            "{addr} never {state}: {:?}",
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Watches the session for [`NEVER`]: its TCP connection must never complete (so our
/// FSM never gets past Connect / Active: no OPEN is ever sent), and FRR (`router`'s
/// view of `peer`, when given) must never see it Established.
async fn assert_never_established(
    s: &Speaker,
    addr: IpAddr,
    router: Option<(&containerlab::Lab, &str, &str)>,
) {
    let start = Instant::now();
    while start.elapsed() < NEVER {
        let state = state_of(s, addr);
        assert!(
            ["Idle", "Connect", "Active"].contains(&state.as_str()),
            "the connection completed: {:?}",
            s.neighbors()
        );
        if let Some((lab, node, peer)) = router {
            assert_ne!(
                frr_state(lab, node, peer),
                "Established",
                "{node} -> {peer}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// FRR's state of a neighbor (`bgpState`), empty when FRR has no such neighbor (a
/// dynamic neighbor exists only once its TCP connection is up).
fn frr_state(lab: &containerlab::Lab, node: &str, peer: &str) -> String {
    let out = lab
        .exec_ok(node, &format!("vtysh -c 'show bgp neighbors {peer} json'"))
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v.get(peer)?.get("bgpState")?.as_str().map(String::from))
        .unwrap_or_default()
}

/// Polls `f` until it holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn vtysh_config(lab: &containerlab::Lab, node: &str, asn: u32, lines: &[&str]) {
    let mut cmd = format!("vtysh -c 'conf t' -c 'router bgp {asn}'");
    for l in lines {
        cmd.push_str(&format!(" -c '{l}'"));
    }
    lab.exec_ok(node, &cmd).unwrap();
}

fn quickstart(tag: &str) -> containerlab::lab::LabGuard {
    let lab = fabric_lab("quickstart", tag)
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    lab.wait_established(DEADLINE).unwrap();
    lab
}

#[test]
fn same_md5_password_as_frr_establishes_and_exchanges_routes() {
    if !require_root("same_md5_password_as_frr_establishes_and_exchanges_routes") {
        return;
    }
    let lab = quickstart("md5ok");
    // The password of tor1's peer group covers its dynamic-neighbor range.
    vtysh_config(
        &lab,
        "tor1",
        65001,
        &[&format!("neighbor HOSTS password {PASSWORD}")],
    );
    let tor1_addr: IpAddr = "10.1.1.0".parse().unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg(None)).await.unwrap();
            s.add_neighbor(tor1(Some(PASSWORD))).unwrap();
            wait_state(&s, tor1_addr, "Established").await;
            eventually("tor1 sees host1 Established", || {
                frr_state(&lab, "tor1", "10.1.1.1") == "Established"
            })
            .await;
            let r = wait_routes(&s, "default and tor2's loopback", |r| {
                r.contains_key(&"0.0.0.0/0".parse().unwrap())
                    && r.contains_key(&"10.255.0.2/32".parse().unwrap())
            })
            .await;
            assert_eq!(r[&"0.0.0.0/0".parse::<IpNet>().unwrap()], vec![tor1_addr]);
            s.originate(vec!["20.1.1.7/32".parse().unwrap()]).unwrap();
            wait_router(
                &lab,
                "tor2",
                "vtysh -c 'show ip route 20.1.1.7/32 json'",
                |o| o.contains("\"protocol\":\"bgp\""),
            )
            .await;
            s.shutdown().await;
        })
    });
}

#[test]
fn wrong_or_missing_md5_password_never_establishes_with_frr() {
    if !require_root("wrong_or_missing_md5_password_never_establishes_with_frr") {
        return;
    }
    let lab = quickstart("md5bad");
    vtysh_config(
        &lab,
        "tor1",
        65001,
        &[&format!("neighbor HOSTS password {PASSWORD}")],
    );
    let tor1_addr: IpAddr = "10.1.1.0".parse().unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg(None)).await.unwrap();
            // A wrong password: the handshake's segments are dropped by tor1's kernel.
            s.add_neighbor(tor1(Some("not-the-password"))).unwrap();
            assert_never_established(&s, tor1_addr, Some((&lab, "tor1", "10.1.1.1"))).await;
            // No password at all: no better.
            s.add_neighbor(tor1(None)).unwrap();
            assert_never_established(&s, tor1_addr, Some((&lab, "tor1", "10.1.1.1"))).await;
            // The right one: up, so the two failures above were the password's.
            s.add_neighbor(tor1(Some(PASSWORD))).unwrap();
            wait_state(&s, tor1_addr, "Established").await;
            wait_routes(&s, "default route", |r| {
                r.contains_key(&"0.0.0.0/0".parse().unwrap())
            })
            .await;
            s.shutdown().await;
        })
    });
}

#[test]
fn frr_connecting_to_our_listener_with_md5() {
    if !require_root("frr_connecting_to_our_listener_with_md5") {
        return;
    }
    let lab = quickstart("md5listen");
    // A static neighbor for host1 (it wins over the range), which FRR connects to.
    vtysh_config(
        &lab,
        "tor1",
        65001,
        &[
            "neighbor 10.1.1.1 remote-as 65201",
            "neighbor 10.1.1.1 timers 3 9",
            "neighbor 10.1.1.1 timers connect 1",
            // GTSM, as the host side (`tor1`) expects.
            "neighbor 10.1.1.1 ttl-security hops 1",
            &format!("neighbor 10.1.1.1 password {PASSWORD}"),
        ],
    );
    let tor1_addr: IpAddr = "10.1.1.0".parse().unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg(Some("0.0.0.0:179".parse().unwrap())))
                .await
                .unwrap();
            let mut p = tor1(Some(PASSWORD));
            p.passive = true;
            s.add_neighbor(p.clone()).unwrap();
            wait_state(&s, tor1_addr, "Established").await;
            wait_routes(&s, "tor2's loopback", |r| {
                r.contains_key(&"10.255.0.2/32".parse().unwrap())
            })
            .await;
            s.originate(vec!["20.1.1.8/32".parse().unwrap()]).unwrap();
            wait_router(
                &lab,
                "tor1",
                "vtysh -c 'show bgp ipv4 unicast 20.1.1.8/32 json'",
                |o| o.contains("65201"),
            )
            .await;
            // Replacing the neighbor resets the session; the listener must still hold
            // the key, or FRR's signed SYNs are dropped and it never comes back.
            let flaps_before = frr_established_count(&lab, "tor1", "10.1.1.1");
            s.add_neighbor(p.clone()).unwrap();
            wait_state(&s, tor1_addr, "Established").await;
            eventually("tor1 sees a new session with host1", || {
                frr_established_count(&lab, "tor1", "10.1.1.1") > flaps_before
                    && frr_state(&lab, "tor1", "10.1.1.1") == "Established"
            })
            .await;
            // The listener without the key (neighbor without password): FRR's signed
            // SYNs are dropped.
            let mut plain = p.clone();
            plain.transport.md5_password = None;
            s.add_neighbor(plain).unwrap();
            eventually("tor1 sees the old session closed", || {
                frr_state(&lab, "tor1", "10.1.1.1") != "Established"
            })
            .await;
            assert_never_established(&s, tor1_addr, Some((&lab, "tor1", "10.1.1.1"))).await;
            s.shutdown().await;
        })
    });
}

/// FRR's count of sessions that reached Established with a neighbor.
fn frr_established_count(lab: &containerlab::Lab, node: &str, peer: &str) -> u64 {
    let out = lab
        .exec_ok(node, &format!("vtysh -c 'show bgp neighbors {peer} json'"))
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v.get(peer)?.get("connectionsEstablished")?.as_u64())
        .unwrap_or(0)
}

fn loopback_pair_cfg(asn: u32) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn,
        router_id: Ipv4Addr::new(10, 255, 0, (asn % 250) as u8),
        listen: None,
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

#[test]
fn two_speakers_on_loopback_with_md5() {
    runtime().block_on(async {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mut ca = loopback_pair_cfg(65001);
        ca.listen = Some("127.0.0.1:0".parse().unwrap());
        let a = Speaker::start(ca).await.unwrap();
        let port = a.listen_addr().unwrap().port();
        let mut pa = PeerConfig::new(lo, 65002).with_md5_password(pw(PASSWORD));
        pa.passive = true;
        a.add_neighbor(pa.clone()).unwrap();

        // The wrong password first: never up.
        let b = Speaker::start(loopback_pair_cfg(65002)).await.unwrap();
        let mut pb = PeerConfig::new(lo, 65001).with_md5_password(pw("wrong"));
        pb.port = port;
        pb.connect_retry = Duration::from_secs(1);
        pb.transport.connect_timeout = Duration::from_secs(2);
        b.add_neighbor(pb.clone()).unwrap();
        assert_never_established(&b, lo, None).await;
        assert_ne!(state_of(&a, lo), "Established");

        // The right one: up, and routes flow.
        b.add_neighbor(pb.clone().with_md5_password(pw(PASSWORD)))
            .unwrap();
        wait_state(&b, lo, "Established").await;
        wait_state(&a, lo, "Established").await;
        b.originate(vec!["20.7.7.7/32".parse().unwrap()]).unwrap();
        wait_routes(&a, "b's prefix", |r| {
            r.contains_key(&"20.7.7.7/32".parse().unwrap())
        })
        .await;

        // Replacing the listening side's neighbor keeps its key: b comes back.
        a.add_neighbor(pa).unwrap();
        wait_state(&a, lo, "Established").await;
        wait_state(&b, lo, "Established").await;
        a.shutdown().await;
        b.shutdown().await;
    });
}
