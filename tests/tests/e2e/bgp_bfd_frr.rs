//! BFD (RFC 5880/5881) between our speaker and FRR's bfdd, coupled to BGP (RFC 5882), on
//! the quickstart fabric: the speaker runs as a library inside host1's namespace with
//! `PeerConfig::bfd`; tor1 gets a static neighbor for host1 with `neighbor … bfd` at run
//! time through vtysh. Hold time 90 s on both sides, so only BFD can end the session
//! quickly.
//!
//! - BGP Established and BFD Up on both sides (our `PeerStatus::bfd`, FRR's
//!   `show bfd peers json`).
//! - Then the link fails silently: nftables in tor1's namespace drops BFD (UDP 3784) and
//!   BGP (TCP 179) to and from host1. Our BGP session goes down by BFD: its
//!   `last_error` names BFD and the detection timeout — with the hold timer at 90 s and
//!   no TCP error, nothing else could have ended it — and FRR's BFD sees the peer down.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_speaker::bfd::BfdConfig;
use bgp_speaker::driver::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use containerlab::lab::DeployOptions;
use contiv_tests::cluster::frr_bfd_status;
use contiv_tests::speaker::{in_node, runtime, wait_router};
use contiv_tests::{fabric_lab, require_root};

const DEADLINE: Duration = Duration::from_secs(60);
const HOST1: &str = "10.1.1.1";

fn speaker_cfg() -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn: 65201,
        router_id: Ipv4Addr::new(10, 1, 1, 1),
        listen: None,
        max_paths: 16,
        export_learned: false,
        communities: vec![],
        large_communities: vec![],
        graceful_restart: None,
    }
}

async fn wait_status(
    s: &Speaker,
    addr: IpAddr,
    what: &str,
    f: impl Fn(&PeerStatus) -> bool,
) -> PeerStatus {
    let start = Instant::now();
    loop {
        if let Some(n) = s
            .neighbors()
            .into_iter()
            .find(|n| n.address == addr && f(n))
        {
            return n;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{addr} never {what}: {:?}",
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn bfd_with_frr_ends_bgp_on_silent_link_failure() {
    if !require_root("bfd_with_frr_ends_bgp_on_silent_link_failure") {
        return;
    }
    let lab = fabric_lab("quickstart", "bfd")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    lab.wait_established(DEADLINE).unwrap();
    // A static neighbor for host1 (it wins over the range) with BFD and long timers.
    lab.exec_ok(
        "tor1",
        &format!(
            "vtysh -c 'conf t' -c 'router bgp 65001' -c 'neighbor {HOST1} remote-as 65201' \
             -c 'neighbor {HOST1} timers 30 90' -c 'neighbor {HOST1} bfd'"
        ),
    )
    .unwrap();
    let tor1: IpAddr = "10.1.1.0".parse().unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg()).await.unwrap();
            let mut p = PeerConfig::new(tor1, 65001);
            p.hold_time = 90;
            p.keepalive = 30;
            p.connect_retry = Duration::from_secs(1);
            p.bfd = Some(BfdConfig::default());
            s.add_neighbor(p).unwrap();

            let n = wait_status(&s, tor1, "Established with BFD up", |n| {
                n.state == "Established" && n.bfd.as_deref() == Some("up")
            })
            .await;
            let flaps = n.flaps;
            wait_router(&lab, "tor1", "vtysh -c 'show bfd peers json'", |o| {
                frr_bfd_status(o, HOST1) == "up"
            })
            .await;
            wait_router(&lab, "tor1", &format!("vtysh -c 'show bgp neighbors {HOST1} json'"), |o| {
                o.contains("\"bgpState\":\"Established\"")
            })
            .await;

            // The link fails silently (inside tor1's namespace only).
            lab.exec_ok(
                "tor1",
                &format!(
                    "nft add table inet bfdtest && \
                     nft add chain inet bfdtest in '{{ type filter hook input priority -10 ; }}' && \
                     nft add chain inet bfdtest out '{{ type filter hook output priority -10 ; }}' && \
                     nft add rule inet bfdtest in ip saddr {HOST1} udp dport 3784 drop && \
                     nft add rule inet bfdtest in ip saddr {HOST1} tcp dport 179 drop && \
                     nft add rule inet bfdtest in ip saddr {HOST1} tcp sport 179 drop && \
                     nft add rule inet bfdtest out ip daddr {HOST1} udp dport 3784 drop && \
                     nft add rule inet bfdtest out ip daddr {HOST1} tcp dport 179 drop && \
                     nft add rule inet bfdtest out ip daddr {HOST1} tcp sport 179 drop"
                ),
            )
            .unwrap();

            let n = wait_status(&s, tor1, "down by BFD", |n| n.flaps > flaps).await;
            let err = n.last_error.clone().unwrap_or_default();
            eprintln!("host1's session to tor1 went down: {err}");
            assert!(
                err.contains("BFD down") && err.contains("control detection time expired"),
                "{n:?}"
            );
            wait_router(&lab, "tor1", "vtysh -c 'show bfd peers json'", |o| {
                frr_bfd_status(o, HOST1) == "down"
            })
            .await;

            // The link heals: BGP and BFD come back.
            lab.exec_ok("tor1", "nft delete table inet bfdtest").unwrap();
            wait_status(&s, tor1, "Established with BFD up again", |n| {
                n.state == "Established" && n.bfd.as_deref() == Some("up")
            })
            .await;
            s.shutdown().await;
        })
    });
}
