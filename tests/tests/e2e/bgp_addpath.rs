//! ADD-PATH (RFC 7911) receive against FRR and BIRD 2, on the `addpath` fabric.
//!
//! Two GoBGP upstreams (u1, u2) announce 198.51.100.0/24 to a middle router; the middle
//! router (r1 FRR, or r2 BIRD 2) sends both paths to our speaker in h1 over iBGP with
//! ADD-PATH tx, next hops unchanged (the upstreams' addresses). Our speaker offers
//! ADD-PATH receive (the `PeerConfig::new` default), so:
//!
//! - the session comes up and the Adj-RIB-In holds two paths for the prefix, one per
//!   upstream, each with its own next hop;
//! - both are equally good, so `routes()` has both next hops (ECMP, `max_paths` 4);
//! - an upstream withdrawing its announcement makes the router withdraw that one path
//!   (by its path identifier): the other path stays, with its next hop; announcing it
//!   again brings the two back; then the other upstream withdraws, and the first path
//!   is the one left;
//! - the session never flapped.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::speaker::{DEADLINE, in_node, runtime, wait_router, wait_routes};
use contiv_tests::{fabric_lab, require_root};
use ipnet::IpNet;

const PREFIX: &str = "198.51.100.0/24";
const AS: u32 = 65000;

/// A middle router and how the test sees it.
struct Router {
    /// The lab node.
    node: &'static str,
    /// Its address on the link to h1 (our neighbor).
    addr: &'static str,
    /// u1's and u2's addresses on their links to it: the next hops we must learn.
    u1_hop: &'static str,
    u2_hop: &'static str,
    /// A command showing the router's paths for the prefix, and whether its output
    /// shows both upstreams' paths.
    show: &'static str,
    has_both: fn(&str) -> bool,
    /// A command showing the router's session with h1, and whether its output shows
    /// ADD-PATH negotiated for IPv4 unicast, the router sending.
    session: &'static str,
    add_path_negotiated: fn(&str) -> bool,
}

const FRR: Router = Router {
    node: "r1",
    addr: "10.0.1.0",
    u1_hop: "10.0.11.1",
    u2_hop: "10.0.12.1",
    show: "vtysh -c 'show bgp ipv4 unicast 198.51.100.0/24 json'",
    has_both: |o| o.contains("\"10.0.11.1\"") && o.contains("\"10.0.12.1\""),
    session: "vtysh -c 'show bgp neighbors 10.0.1.1 json'",
    add_path_negotiated: |o| {
        let v: serde_json::Value = serde_json::from_str(o).unwrap_or_default();
        let n = &v["10.0.1.1"];
        let ap = &n["neighborCapabilities"]["addPath"]["ipv4Unicast"];
        n["bgpState"] == "Established"
            && ap["txAdvertised"] == true
            && ap["rxAdvertisedAndReceived"] == true
            && n["addressFamilyInfo"]["ipv4Unicast"]["addpathTxAllPaths"] == true
    },
};

const BIRD: Router = Router {
    node: "r2",
    addr: "10.0.2.0",
    u1_hop: "10.0.21.1",
    u2_hop: "10.0.22.1",
    show: "birdc show route for 198.51.100.0/24 all",
    has_both: |o| o.contains("via 10.0.21.1") && o.contains("via 10.0.22.1"),
    session: "birdc show protocols all h1",
    // Ours is offered receive for IPv4 (and IPv6); BIRD offers to send IPv4.
    add_path_negotiated: |o| {
        let compact: String = o.split_whitespace().collect::<Vec<_>>().join(" ");
        compact.contains("Established")
            && compact.contains("Local capabilities")
            && compact.contains("ADD-PATH RX: TX: ipv4")
            && compact.contains("ADD-PATH RX: ipv4 ipv6 TX:")
    },
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn deploy(tag: &str) -> LabGuard {
    fabric_lab("addpath", tag)
        .deploy_guarded(&DeployOptions::default())
        .unwrap()
}

fn announce(lab: &containerlab::Lab, upstream: &str) {
    lab.exec_ok(upstream, &format!("gobgp global rib add {PREFIX} -a ipv4"))
        .unwrap();
}

fn withdraw(lab: &containerlab::Lab, upstream: &str) {
    lab.exec_ok(upstream, &format!("gobgp global rib del {PREFIX} -a ipv4"))
        .unwrap();
}

/// The next hops of the prefix's paths in our Adj-RIB-In from `peer`, sorted.
async fn adj_in_hops(s: &Speaker, peer: IpAddr) -> Vec<Option<IpAddr>> {
    let mut v: Vec<Option<IpAddr>> = s
        .adj_rib_in(peer)
        .await
        .unwrap()
        .into_iter()
        .filter(|(p, _)| *p == net(PREFIX))
        .map(|(_, nh)| nh)
        .collect();
    v.sort();
    v
}

/// Waits until the prefix's paths in the Adj-RIB-In from `peer` have exactly these next
/// hops (one path each).
async fn wait_adj_in(s: &Speaker, peer: IpAddr, want: &[&str], what: &str) {
    let mut want: Vec<Option<IpAddr>> = want.iter().map(|h| Some(ip(h))).collect();
    want.sort();
    let start = Instant::now();
    loop {
        let got = adj_in_hops(s, peer).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: Adj-RIB-In from {peer} has paths via {got:?} for {PREFIX}, want {want:?} \
             (whole Adj-RIB-In {:?}; neighbors {:?})",
            s.adj_rib_in(peer).await,
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `routes()` has exactly these ECMP next hops for the prefix.
async fn wait_hops(s: &Speaker, want: &[&str], what: &str) {
    let mut want: Vec<IpAddr> = want.iter().map(|h| ip(h)).collect();
    want.sort();
    wait_routes(s, what, |r| {
        r.get(&net(PREFIX)).map(|h| {
            let mut h = h.clone();
            h.sort();
            h
        }) == Some(want.clone())
    })
    .await;
}

async fn wait_established(s: &Speaker, peer: IpAddr) {
    let start = Instant::now();
    while !s
        .neighbors()
        .iter()
        .any(|n| n.address == peer && n.state == "Established")
    {
        assert!(
            start.elapsed() < DEADLINE,
            "session with {peer} not Established: {:?}",
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scenario of the module comment against one middle router.
fn two_paths_from_one_peer(r: &Router, tag: &str) {
    let lab = deploy(tag);
    // Both upstreams announce; the router has both paths before our speaker starts (so
    // its first UPDATEs to us already carry both).
    announce(&lab, "u1");
    announce(&lab, "u2");
    let peer = ip(r.addr);
    in_node(&lab, "h1", || {
        runtime().block_on(async {
            wait_router(&lab, r.node, r.show, r.has_both).await;
            let s = Speaker::start(SpeakerConfig {
                asn: AS,
                router_id: Ipv4Addr::new(10, 255, 0, 100),
                listen: None,
                max_paths: 4,
                export_learned: false,
                communities: vec![],
                large_communities: vec![],
                graceful_restart: None,
                publish_routes: true,
            })
            .await
            .unwrap();
            let p = PeerConfig::new(peer, AS);
            assert!(p.add_path_receive, "ADD-PATH receive is on by default");
            s.add_neighbor(p).unwrap();
            wait_established(&s, peer).await;
            // The router agrees: ADD-PATH, it sending and us receiving.
            wait_router(&lab, r.node, r.session, r.add_path_negotiated).await;
            // And so do we.
            let caps = s
                .neighbors()
                .into_iter()
                .find(|n| n.address == peer)
                .map(|n| n.capabilities)
                .unwrap_or_default();
            assert!(
                caps.iter().any(|c| c == "add-path receive ipv4-unicast"),
                "{caps:?}"
            );

            // Two paths for one prefix from one peer, each with its upstream's next hop;
            // both in the ECMP group.
            wait_adj_in(&s, peer, &[r.u1_hop, r.u2_hop], "both paths received").await;
            wait_hops(&s, &[r.u1_hop, r.u2_hop], "both next hops in routes()").await;

            // u1 withdraws: the router withdraws u1's path id only; u2's path stays.
            withdraw(&lab, "u1");
            wait_adj_in(&s, peer, &[r.u2_hop], "u1 withdrew: only u2's path left").await;
            wait_hops(&s, &[r.u2_hop], "u1 withdrew: only u2's next hop left").await;

            // u1 back: two paths again.
            announce(&lab, "u1");
            wait_adj_in(&s, peer, &[r.u1_hop, r.u2_hop], "u1 announced again").await;
            wait_hops(
                &s,
                &[r.u1_hop, r.u2_hop],
                "u1 announced again: both next hops",
            )
            .await;

            // Now u2 withdraws: u1's path is the one left.
            withdraw(&lab, "u2");
            wait_adj_in(&s, peer, &[r.u1_hop], "u2 withdrew: only u1's path left").await;
            wait_hops(&s, &[r.u1_hop], "u2 withdrew: only u1's next hop left").await;

            // And the last one: nothing left.
            withdraw(&lab, "u1");
            wait_adj_in(&s, peer, &[], "both withdrew").await;
            wait_routes(&s, "both withdrew: no route", |r| {
                !r.contains_key(&net(PREFIX))
            })
            .await;

            // All of it over one session.
            let st = s.neighbors();
            let n = st.iter().find(|n| n.address == peer).unwrap();
            assert_eq!((n.state.as_str(), n.flaps), ("Established", 0), "{st:?}");
            s.shutdown().await;
        })
    });
}

#[test]
fn frr_sends_two_paths_for_one_prefix_with_add_path() {
    if !require_root("frr_sends_two_paths_for_one_prefix_with_add_path") {
        return;
    }
    two_paths_from_one_peer(&FRR, "frr");
}

#[test]
fn bird_sends_two_paths_for_one_prefix_with_add_path() {
    if !require_root("bird_sends_two_paths_for_one_prefix_with_add_path") {
        return;
    }
    two_paths_from_one_peer(&BIRD, "bird");
}
