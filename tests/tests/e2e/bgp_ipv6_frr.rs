//! IPv6 with FRR: our speaker on an IPv6 session exchanges IPv6 unicast both ways and
//! sends IPv4 routes with an IPv6 next hop (RFC 8950 extended next hop); on an IPv4
//! session it sends IPv6 routes with a configured IPv6 next hop.
//!
//!   r1 (FRR, AS 65001)  eth1  10.9.1.0/31  fd00:9:1::/127  eth1  h1 (ours, AS 65201)

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use containerlab::lab::DeployOptions;
use contiv_tests::require_root;
use ipnet::IpNet;

const DEADLINE: Duration = Duration::from_secs(60);

const TOPOLOGY: &str = "name: NAME
topology:
  nodes:
    r1: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [r1.conf:/etc/frr/frr.conf] }
    h1:
      kind: linux
      exec:
        - ip addr add 10.9.1.1/31 dev eth1
        - ip -6 addr add fd00:9:1::1/127 dev eth1 nodad
        - ip -6 addr add fd00:9:2::1/128 dev lo
  links:
    - endpoints: [\"r1:eth1\", \"h1:eth1\"]
";

const FRR: &str = "frr defaults datacenter
hostname r1
log stdout informational
!
interface eth1
 ip address 10.9.1.0/31
 ipv6 address fd00:9:1::/127
exit
!
ipv6 route 2001:db8:1::/48 Null0
ip route 10.77.0.0/24 Null0
!
router bgp 65001
 bgp router-id 10.255.9.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.9.1.1 remote-as 65201
 neighbor 10.9.1.1 timers 3 9
 neighbor 10.9.1.1 timers connect 1
 neighbor fd00:9:1::1 remote-as 65201
 neighbor fd00:9:1::1 timers 3 9
 neighbor fd00:9:1::1 timers connect 1
 neighbor fd00:9:1::1 capability extended-nexthop
 !
 address-family ipv4 unicast
  network 10.77.0.0/24
  neighbor fd00:9:1::1 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:1::/48
  neighbor 10.9.1.1 activate
  neighbor fd00:9:1::1 activate
 exit-address-family
exit
!
";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn frr(lab: &containerlab::Lab, cmd: &str) -> serde_json::Value {
    let o = lab.exec("r1", &format!("vtysh -c '{cmd}'")).unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// The next hops FRR has for a prefix in its BGP table.
fn frr_nexthops(lab: &containerlab::Lab, family: &str, prefix: &str) -> Vec<String> {
    let v = frr(lab, &format!("show bgp {family} unicast {prefix} json"));
    v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["nexthops"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n["ip"].as_str().map(String::from))
        .collect()
}

fn wait(what: &str, f: impl Fn() -> bool, describe: impl Fn() -> String) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "{what}: {}", describe());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ipv6_unicast_and_extended_next_hop_with_frr() {
    if !require_root("ipv6_unicast_and_extended_next_hop_with_frr") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "r1.conf", FRR);
    write(
        d.path(),
        "lab.clab.yml",
        &TOPOLOGY.replace("NAME", &format!("v6-{}", std::process::id())),
    );
    let lab = containerlab::Lab::load(
        d.path().join("lab.clab.yml"),
        &containerlab::plan::default_lab_root(),
    )
    .unwrap()
    .deploy_guarded(&DeployOptions::default())
    .unwrap();

    let v6_peer: IpAddr = "fd00:9:1::".parse().unwrap();
    let v4_peer: IpAddr = "10.9.1.0".parse().unwrap();
    let ours_v4: IpNet = "20.9.0.1/32".parse().unwrap();
    let ours_v6: IpNet = "2001:db8:2::1/128".parse().unwrap();
    // Our speaker runs in h1 on a thread of its own until the end of the test.
    let ns = format!("/run/netns/{}", lab.namespace("h1").unwrap());
    let (learned_tx, learned_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let speaker = std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let s = Speaker::start(SpeakerConfig {
                publish_routes: true,
                asn: 65201,
                router_id: Ipv4Addr::new(10, 255, 9, 201),
                listen: None,
                max_paths: 4,
                export_learned: false,
                communities: vec![],
                large_communities: vec![],
                graceful_restart: None,
            })
            .await
            .unwrap();
            s.add_neighbor(PeerConfig::new(v6_peer, 65001)).unwrap();
            let mut p4 = PeerConfig::new(v4_peer, 65001);
            p4.next_hop_v6 = Some("fd00:9:2::1".parse().unwrap());
            s.add_neighbor(p4).unwrap();
            s.originate(vec![ours_v4, ours_v6]).unwrap();
            // We learn FRR's IPv6 and IPv4 prefixes, the IPv6 one from the IPv6 peer.
            let mut rx = s.routes();
            let v6_theirs: IpNet = "2001:db8:1::/48".parse().unwrap();
            let v4_theirs: IpNet = "10.77.0.0/24".parse().unwrap();
            let learned = tokio::time::timeout(DEADLINE, async {
                loop {
                    {
                        let r = rx.borrow_and_update();
                        if r.get(&v6_theirs).is_some_and(|h| h.contains(&v6_peer))
                            && r.contains_key(&v4_theirs)
                        {
                            break;
                        }
                    }
                    rx.changed().await.unwrap();
                }
            })
            .await
            .map_err(|_| format!("routes {:?}; {:?}", s.routes().borrow(), s.neighbors()));
            learned_tx.send(learned).unwrap();
            let _ = stop_rx.await;
            s.shutdown().await;
        });
    });
    let learned = learned_rx.recv().unwrap();
    assert!(learned.is_ok(), "{learned:?}");

    // FRR learns our IPv6 prefix over both sessions (with our session address, and with
    // the configured next hop over IPv4) and our IPv4 prefix over the IPv6 session with
    // an IPv6 next hop (RFC 8950).
    wait(
        "FRR has our IPv6 prefix",
        || {
            let nh = frr_nexthops(&lab, "ipv6", "2001:db8:2::1/128");
            nh.iter().any(|n| n == "fd00:9:1::1") && nh.iter().any(|n| n == "fd00:9:2::1")
        },
        || format!("{:?}", frr(&lab, "show bgp ipv6 unicast json")),
    );
    wait(
        "FRR has our IPv4 prefix with an IPv6 next hop",
        || {
            frr_nexthops(&lab, "ipv4", "20.9.0.1/32")
                .iter()
                .any(|n| n == "fd00:9:1::1")
        },
        || format!("{:?}", frr(&lab, "show bgp ipv4 unicast 20.9.0.1/32 json")),
    );
    let _ = stop_tx.send(());
    speaker.join().unwrap();
}
