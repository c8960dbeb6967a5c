//! The host's import policy and session protections against a hostile ToR, on the
//! `quickstart` fabric (real FRR ToRs):
//!
//! - tor1 announces a default route, prefixes equal to, covering and inside host1's
//!   management network, a prefix covering host1's own link, and prefixes outside the
//!   intent: none reaches host1's kernel, host1's own routes stay, and each rejected
//!   prefix is reported with its reason (`netctl bgp inspect`); a container route of the
//!   other rack is installed meanwhile. With `--accept-default` the default is installed.
//! - tor1 announces more prefixes than `--max-prefix`: the session closes (Cease /
//!   maximum prefixes) and none of them, though inside the intent, is in the kernel.
//! - GTSM: a BGP speaker two hops away (behind tor1, answering for tor1's address with
//!   TTL 255, one less on arrival) never establishes with host1; the same speaker does
//!   with `--no-ttl-security`, so GTSM is what keeps it out.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgp_speaker::driver::{PeerConfig, Speaker, SpeakerConfig};
use bgp_speaker::transport::TtlMode;
use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, deploy, ip_route, node_exec, wait_for, wait_netplugin_path,
};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

/// The prefixes tor1 announces that host1 must refuse, and the reason it reports.
const ATTACKS: &[(&str, &str)] = &[
    ("0.0.0.0/0", "default route not accepted"),
    (
        "192.168.77.0/24",
        "overlaps the host's own prefix 192.168.77.0/24",
    ),
    (
        "192.168.0.0/16",
        "overlaps the host's own prefix 192.168.77.0/24",
    ),
    (
        "192.168.77.1/32",
        "overlaps the host's own prefix 192.168.77.0/24",
    ),
    ("10.1.0.0/16", "overlaps the host's own prefix 10.1.1.0/31"),
    ("99.99.0.0/16", "outside the fabric's intent"),
    ("20.0.0.0/8", "outside the fabric's intent"),
];

fn inspect(nm: &Netmaster, host: &str) -> serde_json::Value {
    serde_json::from_str(&nm.ok(&format!("netctl bgp inspect {host}"))).unwrap()
}

/// The rejected prefixes host1 reports → their reason.
fn rejected(nm: &Netmaster) -> std::collections::BTreeMap<String, String> {
    inspect(nm, "host1")["Oper"]["rejectedRoutes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["prefix"].as_str().unwrap_or_default().to_string(),
                r["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn vtysh(lab: &containerlab::Lab, node: &str, lines: &[&str]) {
    let mut cmd = "vtysh -c 'conf t'".to_string();
    for l in lines {
        cmd.push_str(&format!(" -c '{l}'"));
    }
    let o = node_exec(lab, node, &cmd);
    assert!(o.status.success(), "{cmd}: {o:?}");
}

/// host1's routes of netplugin (protocol 200), as `ip route` prints them.
fn netplugin_routes(lab: &containerlab::Lab) -> String {
    ip_route(lab, "host1", "proto 200")
}

fn has_route(routes: &str, prefix: &str) -> bool {
    let p = match prefix {
        "0.0.0.0/0" => "default",
        p => p.strip_suffix("/32").unwrap_or(p),
    };
    routes
        .lines()
        .any(|l| l.split_whitespace().next() == Some(p))
}

#[test]
fn a_hostile_tors_routes_never_reach_the_hosts_kernel() {
    if !require_root("a_hostile_tors_routes_never_reach_the_hosts_kernel") {
        return;
    }
    let lab = deploy("quickstart", "imppol");
    let tmp = tempfile::tempdir().unwrap();
    // host1's management network, on an interface of its own.
    for cmd in [
        "ip link add mgmt0 type veth peer name mgmt1",
        "ip addr add 192.168.77.1/24 dev mgmt0",
        "ip link set mgmt1 up",
        "ip link set mgmt0 up",
    ] {
        let o = node_exec(&lab, "host1", cmd);
        assert!(o.status.success(), "{cmd}: {o:?}");
    }
    let own_before = ip_route(&lab, "host1", "proto kernel");
    assert!(
        own_before.contains("192.168.77.0/24 dev mgmt0"),
        "{own_before}"
    );
    assert!(own_before.contains("10.1.1.0/31 dev eth1"), "{own_before}");
    // tor1 turns hostile: static routes redistributed to everyone (on top of its
    // default-originate and connected routes).
    let mut lines: Vec<String> = ATTACKS
        .iter()
        .filter(|(p, _)| *p != "0.0.0.0/0")
        .map(|(p, _)| format!("ip route {p} Null0"))
        .collect();
    lines.extend(
        [
            "router bgp 65001",
            "address-family ipv4 unicast",
            "redistribute static",
        ]
        .map(String::from),
    );
    vtysh(
        &lab,
        "tor1",
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    // max-prefix 20: above what tor1 sends at first (about 14 routes), below what it
    // sends in the last part.
    let host1 = "netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0 --max-prefix=20";
    nm.ok(host1);
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());
    let c2 = ContainerNs::new(&format!("{}-c2", lab.namespace("host2").unwrap()));
    let ip2 = p2.add(&c2, "c2", "contiv-net");

    // Every attack arrived (host1 reports it rejected, with its reason), and the other
    // rack's container is reached by netplugin's route meanwhile.
    let seen = wait_for(
        "host1 reports every hostile prefix rejected",
        LONG,
        || {
            let r = rejected(&nm);
            ATTACKS
                .iter()
                .all(|(p, why)| r.get(*p).is_some_and(|w| w.contains(why)))
                .then_some(r)
        },
        || format!("{:#}\n{}", inspect(&nm, "host1"), p1.log_tail()),
    );
    wait_netplugin_path(&lab, "host1", &ip2, &["10.1.1.0"]);
    let routes = netplugin_routes(&lab);
    for (p, _) in ATTACKS {
        assert!(!has_route(&routes, p), "{p} installed:\n{routes}");
    }
    // The fabric's own routes the intent does not name (ToR loopbacks and links) are
    // refused too; the host's own routes are as they were.
    for p in ["10.255.0.1/32", "10.255.0.2/32", "10.0.0.0/31"] {
        assert!(seen.contains_key(p), "{p}: {seen:#?}");
    }
    assert_eq!(ip_route(&lab, "host1", "proto kernel"), own_before);
    let get = |dst: &str| {
        String::from_utf8_lossy(&node_exec(&lab, "host1", &format!("ip route get {dst}")).stdout)
            .into_owned()
    };
    let mgmt = get("192.168.77.5");
    assert!(mgmt.contains("dev mgmt0"), "{mgmt}");
    let link = get("10.1.1.0");
    assert!(link.contains("dev eth1") && !link.contains("via"), "{link}");

    // Asked for, the default is installed (without a session reset); nothing else
    // hostile is.
    let flaps = |v: &serde_json::Value| v["Oper"]["neighbors"][0]["flaps"].as_u64();
    let before = flaps(&inspect(&nm, "host1"));
    nm.ok(&format!("{host1} --accept-default"));
    let routes = wait_for(
        "host1's default via tor1 (accept-default)",
        LONG,
        || {
            let r = netplugin_routes(&lab);
            r.lines()
                .any(|l| l.starts_with("default via 10.1.1.0"))
                .then_some(r)
        },
        || format!("{}\n{}", ip_route(&lab, "host1", ""), p1.log_tail()),
    );
    for (p, _) in &ATTACKS[1..] {
        assert!(!has_route(&routes, p), "{p} installed:\n{routes}");
    }
    wait_for(
        "host1's report no longer lists the default as rejected",
        LONG,
        || (!rejected(&nm).contains_key("0.0.0.0/0")).then_some(()),
        || format!("{:#?}", rejected(&nm)),
    );
    assert_eq!(
        flaps(&inspect(&nm, "host1")),
        before,
        "the session was reset"
    );

    // More prefixes than max-prefix, all inside the network's subnet (the import policy
    // would take them): the session closes and none is installed.
    let many: Vec<String> = (100..130)
        .map(|i| format!("ip route 20.1.1.{i}/32 Null0"))
        .collect();
    vtysh(
        &lab,
        "tor1",
        &many.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let in_kernel = |routes: &str| -> Vec<String> {
        (100..130)
            .map(|i| format!("20.1.1.{i}/32"))
            .filter(|p| has_route(routes, p))
            .collect()
    };
    wait_for(
        "host1's session with tor1 closed for max-prefix",
        LONG,
        || {
            // Meanwhile, never one of the routes over the limit in the kernel.
            let routes = netplugin_routes(&lab);
            assert_eq!(in_kernel(&routes), Vec::<String>::new(), "{routes}");
            let v = inspect(&nm, "host1");
            let n = &v["Oper"]["neighbors"][0];
            (n["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("max-prefix exceeded"))
                && n["state"] != "established")
                .then_some(())
        },
        || {
            format!(
                "{:#}\n{}\ntor1:\n{}",
                inspect(&nm, "host1"),
                p1.log_tail(),
                String::from_utf8_lossy(
                    &node_exec(
                        &lab,
                        "tor1",
                        "vtysh -c 'show bgp summary' -c 'show bgp neighbors 10.1.1.1'"
                    )
                    .stdout
                )
            )
        },
    );
    let routes = netplugin_routes(&lab);
    assert_eq!(in_kernel(&routes), Vec::<String>::new(), "{routes}");
    // tor1's routes went with the session (its default among them).
    assert!(!has_route(&routes, "0.0.0.0/0"), "{routes}");
    drop(p2);
    drop(p1);
}

/// Runs `f` on a thread inside network namespace `path`.
fn in_ns<T: Send>(path: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(move || {
            let fd = std::fs::File::open(path).expect("namespace file");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("the namespace thread")
    })
}

/// TCP segments received in a namespace (`InSegs` of `/proc/net/snmp`).
fn tcp_in_segments(ns: &ContainerNs) -> u64 {
    let o = ns.exec(&["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InSegs")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn sh(args: &[&str]) {
    let o = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {o:?}");
}

#[test]
fn gtsm_keeps_a_speaker_two_hops_away_out() {
    if !require_root("gtsm_keeps_a_speaker_two_hops_away_out") {
        return;
    }
    let lab = deploy("quickstart", "gtsm");
    let tmp = tempfile::tempdir().unwrap();
    let tor1_ns = lab.namespace("tor1").unwrap().to_string();
    // A namespace behind tor1 takes tor1's address on host1's link: tor1 no longer has
    // it, routes it to the far namespace and answers host1's ARP for it (proxy ARP). So
    // host1's sessions to 10.1.1.0 reach a speaker two hops away, through tor1.
    let far = ContainerNs::new(&format!("{tor1_ns}-far"));
    sh(&[
        "ip", "link", "add", "far0", "netns", &tor1_ns, "type", "veth", "peer", "name", "eth0",
        "netns", &far.name,
    ]);
    for cmd in [
        "ip addr del 10.1.1.0/31 dev eth1",
        "ip addr add 10.1.1.2/32 dev eth1",
        "ip route add 10.1.1.1/32 dev eth1",
        "ip link set far0 up",
        "ip route add 10.1.1.0/32 dev far0",
        "sysctl -w net.ipv4.conf.eth1.proxy_arp=1",
        "sysctl -w net.ipv4.conf.far0.proxy_arp=1",
        "sysctl -w net.ipv4.ip_forward=1",
    ] {
        let o = node_exec(&lab, "tor1", cmd);
        assert!(o.status.success(), "{cmd}: {o:?}");
    }
    for cmd in [
        "ip link set lo up",
        "ip link set eth0 up",
        "ip addr add 10.1.1.0/32 dev eth0",
        "ip route add 10.1.1.1/32 dev eth0",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let o = far.exec(&args);
        assert!(o.status.success(), "{cmd}: {o:?}");
    }
    // The far speaker: AS 65001 like tor1, sessions with TTL 255 (the most an attacker
    // can send): its packets reach host1 with 254 at most.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (state_tx, state_rx) = std::sync::mpsc::channel::<String>();
    let far_path = far.path();
    std::thread::scope(|s| {
        s.spawn(move || {
            in_ns(&far_path, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let sp = Speaker::start(SpeakerConfig {
                        publish_routes: false,
                        asn: 65001,
                        router_id: "10.255.0.99".parse().unwrap(),
                        listen: Some(SocketAddr::new("10.1.1.0".parse().unwrap(), 179)),
                        max_paths: 1,
                        export_learned: false,
                        communities: Vec::new(),
                        large_communities: Vec::new(),
                        graceful_restart: None,
                    })
                    .await
                    .unwrap();
                    let mut p = PeerConfig::new("10.1.1.1".parse::<IpAddr>().unwrap(), 65101);
                    p.passive = true;
                    p.transport.ttl = TtlMode::Fixed(255);
                    sp.add_neighbor(p).unwrap();
                    loop {
                        let st = sp
                            .neighbors()
                            .first()
                            .map(|n| n.state.clone())
                            .unwrap_or_default();
                        let _ = state_tx.send(st);
                        if stop_rx.try_recv().is_ok() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    sp.shutdown().await;
                })
            })
        });

        // Stops the far speaker however this ends (a failed assertion too), so that the
        // scope's join does not wait for ever.
        struct Stop(std::sync::mpsc::Sender<()>);
        impl Drop for Stop {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let _stop = Stop(stop_tx);
        let nm = Netmaster::start();
        nm.ok("netctl global set --fwd-mode routing");
        let host1 = "netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0";
        nm.ok(host1);
        let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
        // host1 reaches the far speaker (its TCP attempts get there: the far side sees
        // connections), but with GTSM its answers, one hop short of 255, are dropped.
        // Long enough for several connect attempts (connect retry 2 s).
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut far_states = std::collections::BTreeSet::new();
        while std::time::Instant::now() < deadline {
            while let Ok(s) = state_rx.try_recv() {
                far_states.insert(s);
            }
            let v = inspect(&nm, "host1");
            assert_ne!(
                v["Oper"]["neighborStatus"], "established",
                "host1 established with a speaker two hops away: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(
            !far_states.contains("Established"),
            "the far speaker saw Established: {far_states:?}"
        );
        // host1's connection attempts did reach the far speaker through tor1.
        assert!(
            tcp_in_segments(&far) > 0,
            "no TCP segment reached the far namespace"
        );
        let seen = node_exec(&lab, "tor1", "ip -s link show far0");
        // Without GTSM the same speaker establishes: what kept it out was the TTL.
        nm.ok(&format!("{host1} --no-ttl-security"));
        wait_for(
            "host1 established with the far speaker once GTSM is off",
            LONG,
            || (inspect(&nm, "host1")["Oper"]["neighborStatus"] == "established").then_some(()),
            || {
                format!(
                    "{:#}\n{}\n{}",
                    inspect(&nm, "host1"),
                    String::from_utf8_lossy(&seen.stdout),
                    p1.log_tail()
                )
            },
        );
        drop(p1);
    });
    drop(far);
}
