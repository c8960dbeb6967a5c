//! Our BGP speaker against real routers in lab namespaces: it runs inside a host's
//! namespace, peers with FRR (quickstart) and with FRR and BIRD at once (dual-homed),
//! and its routes travel across the fabric: advertised, learned with ECMP, withdrawn.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use containerlab::lab::DeployOptions;
use contiv_tests::speaker::{in_node, runtime, wait_router, wait_routes};
use contiv_tests::{fabric_lab, require_root};
use ipnet::IpNet;

const DEADLINE: Duration = Duration::from_secs(60);

/// A ToR as the host's peer, with GTSM as the lab's ToRs expect from hosts.
fn tor(addr: &str, asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(addr.parse().unwrap(), asn);
    p.transport.ttl = bgp_speaker::transport::TtlMode::Gtsm { hops: 0 };
    p
}

async fn wait_established(s: &Speaker, n: usize) {
    let start = Instant::now();
    while s
        .neighbors()
        .iter()
        .filter(|p| p.state == "Established")
        .count()
        < n
    {
        assert!(
            start.elapsed() < DEADLINE,
            "sessions not Established: {:?}",
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn speaker_cfg(asn: u32, id: Ipv4Addr) -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn,
        router_id: id,
        listen: None,
        max_paths: 16,
        export_learned: false,
        communities: vec!["65000:42".parse().unwrap()],
        large_communities: vec!["65000:1:2".parse().unwrap()],
        graceful_restart: None,
    }
}

#[test]
fn host_speaker_with_frr_tors_advertises_learns_and_withdraws() {
    if !require_root("host_speaker_with_frr_tors_advertises_learns_and_withdraws") {
        return;
    }
    let lab = fabric_lab("quickstart", "bgp")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    lab.wait_established(DEADLINE).unwrap();
    let container: IpNet = "20.1.1.2/32".parse().unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg(65201, "10.1.1.1".parse().unwrap()))
                .await
                .unwrap();
            s.add_neighbor(tor("10.1.1.0", 65001)).unwrap();
            wait_established(&s, 1).await;
            // FRR sends a default route and the fabric's connected routes.
            let r = wait_routes(&s, "default and tor2's loopback", |r| {
                r.contains_key(&"0.0.0.0/0".parse().unwrap())
                    && r.contains_key(&"10.255.0.2/32".parse().unwrap())
            })
            .await;
            assert_eq!(
                r[&"0.0.0.0/0".parse::<IpNet>().unwrap()],
                vec!["10.1.1.0".parse::<IpAddr>().unwrap()]
            );

            // Our /32 reaches the other rack's ToR, with our AS, next hop and communities.
            s.originate(vec![container]).unwrap();
            let tor2 = wait_router(
                &lab,
                "tor2",
                "vtysh -c 'show ip route 20.1.1.2/32 json'",
                |o| o.contains("20.1.1.2/32"),
            )
            .await;
            assert!(tor2.contains("\"protocol\":\"bgp\""), "{tor2}");
            let tor1 = wait_router(
                &lab,
                "tor1",
                "vtysh -c 'show bgp ipv4 unicast 20.1.1.2/32 json'",
                |o| o.contains("65201"),
            )
            .await;
            assert!(tor1.contains("10.1.1.1"), "next hop is the host: {tor1}");
            assert!(tor1.contains("65000:42"), "community preserved: {tor1}");
            assert!(
                tor1.contains("65000:1:2"),
                "large community preserved: {tor1}"
            );

            // A default route is refused by the ToR's guardrail; nothing breaks.
            s.originate(vec!["0.0.0.0/0".parse().unwrap()]).unwrap();
            // Withdrawn: gone from both ToRs.
            s.withdraw(vec![container, "0.0.0.0/0".parse().unwrap()])
                .unwrap();
            wait_router(
                &lab,
                "tor2",
                "vtysh -c 'show ip route 20.1.1.2/32 json'",
                |o| !o.contains("20.1.1.2/32"),
            )
            .await;
            let summary = lab
                .exec_ok("tor1", "vtysh -c 'show bgp ipv4 unicast summary json'")
                .unwrap();
            assert!(summary.contains("10.1.1.1"), "{summary}");
            s.shutdown().await;
        })
    });
}

#[test]
fn dual_homed_host_learns_ecmp_from_frr_and_bird() {
    if !require_root("dual_homed_host_learns_ecmp_from_frr_and_bird") {
        return;
    }
    let lab = fabric_lab("dual-homed", "bgp")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    lab.wait_established(DEADLINE).unwrap();
    in_node(&lab, "host1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg(65201, "10.2.1.1".parse().unwrap()))
                .await
                .unwrap();
            s.add_neighbor(tor("10.2.1.0", 65101)).unwrap();
            s.add_neighbor(tor("10.2.2.0", 65102)).unwrap();
            wait_established(&s, 2).await;
            let r = wait_routes(&s, "default from both leaves", |r| {
                r.get(&"0.0.0.0/0".parse().unwrap())
                    .is_some_and(|h| h.len() == 2)
            })
            .await;
            let hops = &r[&"0.0.0.0/0".parse::<IpNet>().unwrap()];
            assert_eq!(
                hops,
                &vec![
                    "10.2.1.0".parse::<IpAddr>().unwrap(),
                    "10.2.2.0".parse().unwrap()
                ]
            );
            // Our /32 reaches BIRD too.
            s.originate(vec!["20.9.9.9/32".parse().unwrap()]).unwrap();
            wait_router(&lab, "leaf2", "birdc show route 20.9.9.9/32", |o| {
                o.contains("20.9.9.9/32")
            })
            .await;
            // One leaf goes away: the group shrinks to the other.
            s.remove_neighbor("10.2.2.0".parse().unwrap());
            wait_routes(&s, "default from leaf1 only", |r| {
                r.get(&"0.0.0.0/0".parse().unwrap())
                    .is_some_and(|h| h.len() == 1)
            })
            .await;
            s.shutdown().await;
        })
    });
}
