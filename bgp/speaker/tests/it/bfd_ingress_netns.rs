//! The BFD ingress check against a real forgery, with no firewall in the way. Needs root
//! (skips with a message otherwise); namespaces are created with unique names and
//! deleted by a guard; nothing is added to the machine's own namespace.
//!
//! ```text
//!  peer p (10.98.1.2) ──link A── (10.98.1.1) s (10.98.2.1) ──link B── x (forges 10.98.1.2)
//! ```
//!
//! `s` runs a BFD session with `p` over link A. The attacker `x`, one hop away on link B,
//! sends Control packets with the peer's source address, TTL 255 and the session's real
//! discriminators (a Down and an AdminDown naming `s`'s session): they reach `s`'s BFD
//! socket (reverse path filtering is off in `s`, so only the BFD driver stands in the
//! way) and the session stays Up, every one counted as arriving on the wrong interface.
//! The same bytes sent from `p`'s link take the session down: the packets are good, the
//! interface is what refuses them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use bgp::bfd::{BfdState, ControlPacket, Diag};
use bgp_speaker::bfd::{Bfd, BfdConfig, BfdOptions};

use super::gtsm_netns::{Netns, in_netns, ip};

const MUST: Duration = Duration::from_secs(20);
const S: Ipv4Addr = Ipv4Addr::new(10, 98, 1, 1);
const P: Ipv4Addr = Ipv4Addr::new(10, 98, 1, 2);
/// Forged packets sent per attack.
const FORGED: u64 = 20;

fn sysctl(ns: &str, setting: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-qw", setting])
        .output()
        .expect("running sysctl");
    assert!(
        out.status.success(),
        "{setting}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn topology() -> Netns {
    let tag = std::process::id();
    let mut ns = Netns { names: Vec::new() };
    for role in ["s", "p", "x"] {
        let name = format!("cbfd-ingress-{role}-{tag}");
        ip(&["netns", "add", &name]);
        ns.names.push(name);
    }
    let (s, p, x) = (
        ns.name(0).to_string(),
        ns.name(1).to_string(),
        ns.name(2).to_string(),
    );
    ip(&[
        "-n", &s, "link", "add", "sa", "type", "veth", "peer", "name", "pa", "netns", &p,
    ]);
    ip(&[
        "-n", &s, "link", "add", "sb", "type", "veth", "peer", "name", "xb", "netns", &x,
    ]);
    ip(&["-n", &s, "addr", "add", "10.98.1.1/24", "dev", "sa"]);
    ip(&["-n", &s, "addr", "add", "10.98.2.1/24", "dev", "sb"]);
    ip(&["-n", &p, "addr", "add", "10.98.1.2/24", "dev", "pa"]);
    // The attacker takes the peer's address and reaches s's link-A address over link B.
    ip(&["-n", &x, "addr", "add", "10.98.1.2/32", "dev", "xb"]);
    for (n, dev) in [(&s, "sa"), (&s, "sb"), (&p, "pa"), (&x, "xb")] {
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    for n in [&s, &p, &x] {
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &x, "route", "add", "10.98.1.1/32", "dev", "xb"]);
    // No reverse path filter in s: the forged source would otherwise be dropped by the
    // kernel, and this test is about the BFD driver's own check.
    for dev in ["all", "default", "sa", "sb"] {
        sysctl(&s, &format!("net.ipv4.conf.{dev}.rp_filter=0"));
    }
    ns
}

fn fast() -> BfdConfig {
    BfdConfig {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(50),
        detect_mult: 3,
    }
}

/// A Down or AdminDown packet from the peer's session to s's, as `p` would send it.
fn forged(state: BfdState, peer_discr: u32, s_discr: u32) -> Vec<u8> {
    ControlPacket {
        diag: Diag::NeighborSignaledDown,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: peer_discr,
        your_discr: s_discr,
        desired_min_tx_us: 50_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
        auth: None,
    }
    .encode()
}

/// Sends `packets` from the peer's address (TTL 255) to s's BFD port, from inside
/// namespace `ns`.
fn send_from(ns: &str, packets: Vec<Vec<u8>>) -> std::thread::JoinHandle<()> {
    in_netns(ns, async move || {
        let sock =
            UdpSocket::bind(SocketAddr::new(IpAddr::V4(P), 0)).expect("binding the peer address");
        sock.set_ttl(255).unwrap();
        for b in packets {
            sock.send_to(&b, (S, bgp::bfd::CONTROL_PORT))
                .expect("sending");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

async fn joined(h: std::thread::JoinHandle<()>) {
    while !h.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.join().expect("sender thread");
}

#[test]
fn forged_bfd_from_another_interface_does_not_take_the_session_down() {
    if !containerlab::testing::require_root(
        "forged_bfd_from_another_interface_does_not_take_the_session_down",
    ) {
        return;
    }
    let ns = topology();
    let (s_ns, p_ns, x_ns) = (
        ns.name(0).to_string(),
        ns.name(1).to_string(),
        ns.name(2).to_string(),
    );
    // The peer's BFD, until told to stop.
    let (stop_p, stopped) = tokio::sync::oneshot::channel::<()>();
    let peer = in_netns(&p_ns, async move || {
        let bfd = Bfd::start(BfdOptions::default()).unwrap();
        bfd.add(S.into(), P.into(), fast()).unwrap();
        let _ = stopped.await;
    });
    let run = in_netns(&s_ns, async move || {
        let bfd = Bfd::start(BfdOptions::default()).unwrap();
        let key = (IpAddr::V4(P), IpAddr::V4(S));
        bfd.add(key.0, key.1, fast()).unwrap();
        let mut w = bfd.watch();
        let up = tokio::time::timeout(
            MUST,
            w.wait_for(|m| m.get(&key).is_some_and(|s| s.state == BfdState::Up)),
        )
        .await
        .expect("the session with the peer never came Up")
        .unwrap()[&key]
            .clone();
        let (s_discr, p_discr) = (up.local_discr, up.remote_discr);
        let mut events = bfd.subscribe();

        // The attack over link B: Down and AdminDown with the real discriminators.
        let packets: Vec<Vec<u8>> = (0..FORGED)
            .map(|i| {
                let state = if i % 2 == 0 {
                    BfdState::Down
                } else {
                    BfdState::AdminDown
                };
                forged(state, p_discr, s_discr)
            })
            .collect();
        joined(send_from(&x_ns, packets.clone())).await;
        // Every forged packet reached the driver and was refused for its interface.
        let after = tokio::time::timeout(
            MUST,
            w.wait_for(|m| m.get(&key).is_some_and(|s| s.wrong_interface >= FORGED)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the forged packets did not all reach the BFD driver: {:?}",
                bfd.status(key.0, key.1)
            )
        })
        .unwrap()[&key]
            .clone();
        assert_eq!(after.wrong_interface, FORGED);
        assert_eq!(after.state, BfdState::Up);
        assert!(
            events.try_recv().is_err(),
            "the session changed state during the attack"
        );

        // Control: the same bytes over link A take it down.
        joined(send_from(&p_ns, packets)).await;
        let e = tokio::time::timeout(MUST, async {
            loop {
                let e = events.recv().await.unwrap();
                if e.to == BfdState::Down {
                    return e;
                }
            }
        })
        .await
        .expect("the same packets from the peer's link did not take the session down");
        assert_eq!(e.from, BfdState::Up);
        assert_eq!(e.diag, Diag::NeighborSignaledDown);
        assert_eq!(bfd.status(key.0, key.1).unwrap().wrong_interface, FORGED);
    });
    let result = run.join();
    let _ = stop_p.send(());
    peer.join().expect("peer thread");
    result.expect("the scenario in s");
}
