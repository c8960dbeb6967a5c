//! Our BGP speaker against GoBGP: interoperability over eBGP, IPv4 unicast both ways.
//!
//! GoBGP (`gobgpd` with a TOML config, passive) runs in a lab namespace of its own; our
//! speaker runs in a host namespace next to it and connects out. The session comes up;
//! the /32 we originate shows in `gobgp global rib` with our AS, next hop and
//! communities; a prefix GoBGP announces is learned by us; withdrawals travel both ways.
//!
//! The lab is a throwaway topology written to a temporary directory: a `gobgp` node and
//! a plain host node (`h1`; containerlab reserves `host`) joined by one veth.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::require_root;
use contiv_tests::speaker::{in_node, runtime, wait_routes};
use ipnet::IpNet;

const DEADLINE: Duration = Duration::from_secs(60);

const HOST_ADDR: &str = "10.0.2.0";
const GOBGP_ADDR: &str = "10.0.2.1";
const HOST_AS: u32 = 65201;
const GOBGP_AS: u32 = 65002;

fn gobgp_lab(dir: &Path) -> LabGuard {
    let name = format!("gobgp-{}", std::process::id());
    let yml = format!(
        "name: {name}
topology:
  nodes:
    gobgp:
      kind: linux
      image: jauderho/gobgp:v3.10.0
      binds:
        - gobgpd.toml:/etc/gobgp/gobgpd.toml
      exec:
        - ip addr add {GOBGP_ADDR}/31 dev eth1
    h1:
      kind: linux
      exec:
        - ip addr add {HOST_ADDR}/31 dev eth1
  links:
    - endpoints: [\"gobgp:eth1\", \"h1:eth1\"]
"
    );
    // Passive: GoBGP waits for us (its address only exists once the lab's exec runs).
    let conf = format!(
        "[global.config]
  as = {GOBGP_AS}
  router-id = \"{GOBGP_ADDR}\"

[[neighbors]]
  [neighbors.config]
    neighbor-address = \"{HOST_ADDR}\"
    peer-as = {HOST_AS}
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"ipv4-unicast\"
"
    );
    std::fs::write(dir.join("gobgpd.toml"), conf).unwrap();
    let file = dir.join(format!("{name}.clab.yml"));
    std::fs::write(&file, &yml).unwrap();
    let topo = containerlab::Topology::parse(&yml, &file).expect("topology parses");
    containerlab::Lab::new(topo, &containerlab::plan::default_lab_root())
        .expect("lab plans")
        .deploy_guarded(&DeployOptions::default())
        .unwrap()
}

async fn wait_established(s: &Speaker) {
    let start = Instant::now();
    while !s.neighbors().iter().any(|p| p.state == "Established") {
        assert!(
            start.elapsed() < DEADLINE,
            "session not Established: {:?}",
            s.neighbors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a command in the GoBGP node until its output satisfies `f`.
async fn wait_gobgp(lab: &containerlab::Lab, cmd: &str, f: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let out = lab.exec_ok("gobgp", cmd).unwrap_or_default();
        if f(&out) {
            return out;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "`{cmd}` never satisfied; last output:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn gobgp_session_ipv4_unicast_both_ways_with_withdrawals() {
    if !require_root("gobgp_session_ipv4_unicast_both_ways_with_withdrawals") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = gobgp_lab(dir.path());
    let gobgp_ip: IpAddr = GOBGP_ADDR.parse().unwrap();
    in_node(&lab, "h1", || {
        runtime().block_on(async {
            let s = Speaker::start(SpeakerConfig {
                publish_routes: true,
                asn: HOST_AS,
                router_id: HOST_ADDR.parse::<Ipv4Addr>().unwrap(),
                listen: None,
                max_paths: 16,
                export_learned: false,
                communities: vec!["65000:42".parse().unwrap()],
                large_communities: vec!["65000:1:2".parse().unwrap()],
                graceful_restart: None,
            })
            .await
            .unwrap();
            s.add_neighbor(PeerConfig::new(gobgp_ip, GOBGP_AS)).unwrap();
            wait_established(&s).await;
            let n = wait_gobgp(&lab, &format!("gobgp neighbor {HOST_ADDR}"), |o| {
                o.contains("BGP state = ESTABLISHED")
            })
            .await;
            assert!(n.contains(&format!("remote AS {HOST_AS}")), "{n}");

            // Our /32 reaches GoBGP with our AS, our address as next hop and both our
            // communities.
            s.originate(vec![net("20.1.1.2/32")]).unwrap();
            let rib = wait_gobgp(&lab, "gobgp global rib -a ipv4", |o| {
                o.contains("20.1.1.2/32")
            })
            .await;
            let line = rib
                .lines()
                .find(|l| l.contains("20.1.1.2/32"))
                .unwrap()
                .to_string();
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(
                fields.contains(&HOST_ADDR) && fields.contains(&"65201"),
                "next hop and AS path: {line}"
            );
            assert!(line.contains("65000:42"), "community: {line}");
            assert!(line.contains("65000:1:2"), "large community: {line}");
            // The same, as GoBGP's JSON has it (65000:42 as one 32-bit number).
            let json = lab
                .exec_ok("gobgp", "gobgp global rib -a ipv4 20.1.1.2/32 -j")
                .unwrap();
            for want in [
                format!("\"communities\":[{}]", (65000u64 << 16) | 42),
                format!("\"asns\":[{HOST_AS}]"),
                format!("\"nexthop\":\"{HOST_ADDR}\""),
            ] {
                assert!(json.contains(&want), "{want} in {json}");
            }

            // GoBGP announces a prefix with a community of its own; we learn it, next
            // hop GoBGP.
            lab.exec_ok(
                "gobgp",
                "gobgp global rib add 10.2.0.0/24 community 65002:7 -a ipv4",
            )
            .unwrap();
            let r = wait_routes(&s, "10.2.0.0/24 from GoBGP", |r| {
                r.contains_key(&net("10.2.0.0/24"))
            })
            .await;
            assert_eq!(r[&net("10.2.0.0/24")], vec![gobgp_ip]);
            assert_eq!(
                s.adj_rib_in(gobgp_ip).await.unwrap(),
                vec![(net("10.2.0.0/24"), Some(gobgp_ip))]
            );
            let st = s.neighbors();
            assert_eq!(
                (st[0].prefixes_received, st[0].prefixes_advertised),
                (1, 1),
                "{st:?}"
            );
            // Our export guardrail: the learned route is not sent back.
            let adj_in = lab
                .exec_ok(
                    "gobgp",
                    &format!("gobgp neighbor {HOST_ADDR} adj-in -a ipv4"),
                )
                .unwrap();
            assert!(
                adj_in.contains("20.1.1.2/32") && !adj_in.contains("10.2.0.0/24"),
                "{adj_in}"
            );

            // Withdrawals, ours first: gone from GoBGP's RIB.
            s.withdraw(vec![net("20.1.1.2/32")]).unwrap();
            wait_gobgp(&lab, "gobgp global rib -a ipv4", |o| {
                !o.contains("20.1.1.2/32") && o.contains("10.2.0.0/24")
            })
            .await;
            // Then GoBGP's: gone from our routes.
            lab.exec_ok("gobgp", "gobgp global rib del 10.2.0.0/24 -a ipv4")
                .unwrap();
            wait_routes(&s, "10.2.0.0/24 withdrawn by GoBGP", |r| {
                !r.contains_key(&net("10.2.0.0/24"))
            })
            .await;
            assert!(s.adj_rib_in(gobgp_ip).await.unwrap().is_empty());

            // The session survived it all.
            let st = s.neighbors();
            assert_eq!(
                (st[0].state.as_str(), st[0].flaps),
                ("Established", 0),
                "{st:?}"
            );
            s.shutdown().await;
        })
    });
}
