//! ADD-PATH (RFC 7911) send against FRR and BIRD 2, on the `addpath-send` fabric.
//!
//! Our speaker runs in node `rs` (AS 65100) as a route server / transit speaker
//! (`export_learned`). Two GoBGP upstreams, u1 (AS 65011) and u2 (AS 65012), both
//! announce 198.51.100.0/24 to it with equal-length AS paths. It offers ADD-PATH send
//! (and receive: "both") to a receiver, r1 running FRR or r2 running BIRD 2, which
//! offers to receive, so:
//!
//! - ADD-PATH is negotiated with us sending, on both sides (the receiver's session
//!   details and our `neighbors()` capabilities);
//! - the receiver holds two paths for the prefix from `rs`. Over eBGP we set our own
//!   address as next hop, so both carry the same next hop and differ in AS_PATH:
//!   [65100 65011] and [65100 65012];
//! - u1 withdrawing makes us withdraw that one path identifier: the receiver keeps
//!   exactly u2's path; u1 announcing again brings the two back; then u2 withdraws and
//!   u1's path is the one left; then nothing is left;
//! - all of it over one session (no flap on either side).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::speaker::{DEADLINE, in_node, runtime, wait_router};
use contiv_tests::{fabric_lab, require_root};

const PREFIX: &str = "198.51.100.0/24";
/// Our speaker's AS (node `rs`).
const AS: u32 = 65100;
/// The upstreams: node, address (our neighbor), AS.
const U1: (&str, &str, u32) = ("u1", "10.0.11.1", 65011);
const U2: (&str, &str, u32) = ("u2", "10.0.12.1", 65012);
/// The AS paths the receiver must see for u1's and u2's announcements.
const VIA_U1: &str = "65100 65011";
const VIA_U2: &str = "65100 65012";

/// One path as a receiver shows it: AS_PATH (ASes separated by one space) and next hop.
type Path = (String, String);

/// Reads the path identifiers of the prefix's paths, by AS path, out of `show` output.
type PathIds = fn(&str) -> Vec<(String, u64)>;

/// A receiver and how the test reads it.
struct Receiver {
    /// The lab node.
    node: &'static str,
    /// Its address on the link to rs (our neighbor) and its AS.
    addr: &'static str,
    asn: u32,
    /// Our address on that link: the next hop of every path it gets from us.
    our_addr: &'static str,
    /// A command showing the receiver's paths for the prefix, and how to read them out
    /// of its output (sorted).
    show: &'static str,
    paths: fn(&str) -> Vec<Path>,
    /// A command showing the receiver's session with rs, and whether its output shows
    /// it Established with ADD-PATH negotiated for IPv4 unicast, rs sending and the
    /// receiver receiving.
    session: &'static str,
    add_path_negotiated: fn(&str) -> bool,
    /// From the session output: what changes when the session goes down and comes up
    /// again (a flap).
    up_since: fn(&str) -> Option<String>,
    /// The path identifier the receiver got each path under, by AS path, if it shows
    /// them (from the `show` output).
    path_ids: Option<PathIds>,
}

const FRR: Receiver = Receiver {
    node: "r1",
    addr: "10.0.1.1",
    asn: 65201,
    our_addr: "10.0.1.0",
    show: "vtysh -c 'show bgp ipv4 unicast 198.51.100.0/24 json'",
    paths: frr_paths,
    session: "vtysh -c 'show bgp neighbors 10.0.1.0 json'",
    add_path_negotiated: |o| {
        let v: serde_json::Value = serde_json::from_str(o).unwrap_or_default();
        let n = &v["10.0.1.0"];
        let ap = &n["neighborCapabilities"]["addPath"]["ipv4Unicast"];
        // We offered send (FRR "received TX"), FRR offered receive and so did we
        // ("RX advertised and received"); FRR itself does not send several paths.
        n["bgpState"] == "Established"
            && ap["txReceived"] == true
            && ap["rxAdvertisedAndReceived"] == true
    },
    // The connection counters (the "up since" epoch FRR shows is worked out from the
    // uptime at each call and can move by a second without a flap).
    up_since: |o| {
        let v: serde_json::Value = serde_json::from_str(o).ok()?;
        let n = &v["10.0.1.0"];
        Some(format!(
            "{} connection(s) established, {} dropped",
            n["connectionsEstablished"], n["connectionsDropped"]
        ))
    },
    path_ids: Some(|o| {
        let v: serde_json::Value = serde_json::from_str(o).unwrap_or_default();
        let mut ids: Vec<(String, u64)> = v["paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let as_path = p["aspath"]["string"].as_str().unwrap_or("");
                        (as_path.to_string(), p["addpathRxId"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }),
};

const BIRD: Receiver = Receiver {
    node: "r2",
    addr: "10.0.2.1",
    asn: 65202,
    our_addr: "10.0.2.0",
    show: "birdc show route for 198.51.100.0/24 all",
    paths: bird_paths,
    session: "birdc show protocols all route_server",
    // BIRD offers receive for IPv4; we offer both directions for IPv4 and IPv6.
    add_path_negotiated: |o| {
        let compact: String = o.split_whitespace().collect::<Vec<_>>().join(" ");
        compact.contains("Established")
            && compact.contains("ADD-PATH RX: ipv4 TX: ")
            && compact.contains("ADD-PATH RX: ipv4 ipv6 TX: ipv4 ipv6")
    },
    // The protocol line's "Since" (milliseconds): a flap would move it.
    up_since: |o| {
        o.lines()
            .find(|l| l.starts_with("route_server "))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    },
    // `show route ... all` does not show path identifiers.
    path_ids: None,
};

/// FRR's JSON for one prefix: `paths[]` with `aspath.string` and `nexthops[].ip`.
fn frr_paths(out: &str) -> Vec<Path> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
    let mut paths: Vec<Path> = v["paths"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let hop = p["nexthops"][0]["ip"].as_str().unwrap_or("").to_string();
                    let as_path = p["aspath"]["string"].as_str().unwrap_or("").to_string();
                    (as_path, hop)
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// BIRD's `show route ... all`: one block per route, its first line naming the
/// protocol (`unicast [route_server ...]`), then attribute lines such as
/// `BGP.as_path: 65100 65011` and `BGP.next_hop: 10.0.2.0`.
fn bird_paths(out: &str) -> Vec<Path> {
    let mut paths: Vec<Path> = Vec::new();
    let mut cur: Option<Path> = None;
    for line in out.lines() {
        if line.contains("unicast [") {
            paths.extend(cur.take());
            cur = Some((String::new(), String::new()));
        } else if let Some(c) = cur.as_mut() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("BGP.as_path:") {
                c.0 = v.split_whitespace().collect::<Vec<_>>().join(" ");
            } else if let Some(v) = l.strip_prefix("BGP.next_hop:") {
                c.1 = v.trim().to_string();
            }
        }
    }
    paths.extend(cur);
    paths.sort();
    paths
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn deploy(tag: &str) -> LabGuard {
    fabric_lab("addpath-send", tag)
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

/// Waits until the receiver shows exactly these AS paths for the prefix, each with our
/// address as next hop.
async fn wait_paths(lab: &containerlab::Lab, r: &Receiver, as_paths: &[&str], what: &str) {
    let mut want: Vec<Path> = as_paths
        .iter()
        .map(|p| (p.to_string(), r.our_addr.to_string()))
        .collect();
    want.sort();
    let start = Instant::now();
    loop {
        let out = lab.exec_ok(r.node, r.show).unwrap_or_default();
        let got = (r.paths)(&out);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {} has paths {got:?} for {PREFIX}, want {want:?}; its output:\n{out}",
            r.node
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The path identifiers the receiver shows for the prefix's paths, by AS path (sorted),
/// if it shows them.
fn path_ids(lab: &containerlab::Lab, r: &Receiver) -> Option<Vec<(String, u64)>> {
    let f = r.path_ids?;
    Some(f(&lab.exec_ok(r.node, r.show).unwrap_or_default()))
}

async fn wait_established(s: &Speaker, peers: &[IpAddr]) {
    let start = Instant::now();
    loop {
        let st = s.neighbors();
        if peers.iter().all(|p| {
            st.iter()
                .any(|n| n.address == *p && n.state == "Established")
        }) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "sessions with {peers:?} not all Established: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scenario of the module comment against one receiver.
fn sends_two_paths_for_one_prefix(r: &Receiver, tag: &str) {
    let lab = deploy(tag);
    // Both upstreams announce before our speaker starts, so the receiver's first
    // UPDATEs (the initial fill of its session) already carry both paths.
    announce(&lab, U1.0);
    announce(&lab, U2.0);
    let receiver = ip(r.addr);
    in_node(&lab, "rs", || {
        runtime().block_on(async {
            let s = Speaker::start(SpeakerConfig {
                asn: AS,
                router_id: Ipv4Addr::new(10, 255, 0, 100),
                listen: None,
                max_paths: 4,
                export_learned: true,
                communities: vec![],
                large_communities: vec![],
                graceful_restart: None,
                publish_routes: true,
            })
            .await
            .unwrap();
            for (_, addr, asn) in [U1, U2] {
                s.add_neighbor(PeerConfig::new(ip(addr), asn)).unwrap();
            }
            s.add_neighbor(PeerConfig {
                add_path_send: true,
                ..PeerConfig::new(receiver, r.asn)
            })
            .unwrap();
            wait_established(&s, &[ip(U1.1), ip(U2.1), receiver]).await;

            // The receiver agrees: ADD-PATH, us sending and it receiving.
            wait_router(&lab, r.node, r.session, r.add_path_negotiated).await;
            // And so do we.
            let caps = s
                .neighbors()
                .into_iter()
                .find(|n| n.address == receiver)
                .map(|n| n.capabilities)
                .unwrap_or_default();
            assert!(
                caps.iter().any(|c| c == "add-path send ipv4-unicast"),
                "{caps:?}"
            );
            // Not so with the upstreams: GoBGP offers no ADD-PATH unless configured to.
            for n in s.neighbors() {
                if n.address != receiver {
                    assert!(
                        !n.capabilities.iter().any(|c| c.starts_with("add-path")),
                        "{n:?}"
                    );
                }
            }
            let session = lab.exec_ok(r.node, r.session).unwrap_or_default();
            let since = (r.up_since)(&session);
            assert!(since.is_some(), "{}: {session}", r.node);

            // Two paths for one prefix from rs, one per upstream: same next hop (ours),
            // the AS paths apart.
            wait_paths(&lab, r, &[VIA_U1, VIA_U2], "both paths sent").await;
            // Each under its own identifier (where the receiver shows them).
            let ids = path_ids(&lab, r);
            if let Some(ids) = &ids {
                assert!(
                    ids.len() == 2 && ids[0].1 != ids[1].1 && ids.iter().all(|(_, i)| *i != 0),
                    "{}: path ids {ids:?}",
                    r.node
                );
            }

            // u1 withdraws: we withdraw u1's path id only; u2's path stays, under the
            // identifier it had.
            withdraw(&lab, U1.0);
            wait_paths(&lab, r, &[VIA_U2], "u1 withdrew: only u2's path left").await;
            if let Some(ids) = &ids {
                let u2 = ids.iter().find(|(p, _)| p == VIA_U2).cloned();
                let now = path_ids(&lab, r).unwrap();
                assert_eq!(
                    now,
                    Vec::from_iter(u2),
                    "{}: u2's path id changed (before: {ids:?})",
                    r.node
                );
            }

            // u1 back: two paths again.
            announce(&lab, U1.0);
            wait_paths(&lab, r, &[VIA_U1, VIA_U2], "u1 announced again").await;

            // Now u2 withdraws: u1's path is the one left.
            withdraw(&lab, U2.0);
            wait_paths(&lab, r, &[VIA_U1], "u2 withdrew: only u1's path left").await;

            // And the last one: nothing left.
            withdraw(&lab, U1.0);
            wait_paths(&lab, r, &[], "both withdrew").await;

            // All of it over one session, on both sides.
            let st = s.neighbors();
            let n = st.iter().find(|n| n.address == receiver).unwrap();
            assert_eq!((n.state.as_str(), n.flaps), ("Established", 0), "{st:?}");
            let out = lab.exec_ok(r.node, r.session).unwrap_or_default();
            assert!((r.add_path_negotiated)(&out), "{}: {out}", r.node);
            assert_eq!((r.up_since)(&out), since, "{}: the session flapped", r.node);
            s.shutdown().await;
        })
    });
}

#[test]
fn rs_sends_two_paths_for_one_prefix_to_frr_with_add_path() {
    if !require_root("rs_sends_two_paths_for_one_prefix_to_frr_with_add_path") {
        return;
    }
    sends_two_paths_for_one_prefix(&FRR, "frr");
}

#[test]
fn rs_sends_two_paths_for_one_prefix_to_bird_with_add_path() {
    if !require_root("rs_sends_two_paths_for_one_prefix_to_bird_with_add_path") {
        return;
    }
    sends_two_paths_for_one_prefix(&BIRD, "bird");
}
