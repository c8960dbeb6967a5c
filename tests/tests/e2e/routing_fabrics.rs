//! Routing mode on the bigger fabrics: ECMP into the host kernel and surviving the loss
//! of one leaf on `dual-homed` (leaf1 FRR, leaf2 BIRD), and cross-rack traffic on
//! `leaf-spine` (two spines, FRR and BIRD).
//!
//! The lab's hosts have no route of their own (`cluster::deploy` checks it), and each
//! test asserts which route the host kernel actually uses for the other container: netplugin's
//! (protocol 200) with the next hops BGP gave it, and no other route covering the address.
//! Traffic flowing then proves netplugin's path, not a leftover of the lab.

use std::time::Duration;

use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, deploy, ip_route, node_exec, wait_for, wait_netplugin_path,
};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn dual_homed_ecmp_and_losing_a_leaf() {
    if !require_root("dual_homed_ecmp_and_losing_a_leaf") {
        return;
    }
    let lab = deploy("dual-homed", "ecmp");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    // host1 starts with leaf1 only; leaf2 is added later without touching leaf1's session.
    // Each host takes the leaves' default route (--accept-default) and declares its
    // address on the link to leaf2 (--local-address): a neighbor must be on one of the
    // host's subnets.
    nm.ok("netctl bgp create host1 --router-ip=10.2.1.1/31 --as=65201 --neighbor-as=65101 --neighbor=10.2.1.0 --accept-default --local-address=10.2.2.1/31");
    nm.ok("netctl bgp create host2 --router-ip=10.2.1.3/31 --as=65202 --neighbor-as=65101 --neighbor=10.2.1.2 --peer=10.2.2.2:65102 --accept-default --local-address=10.2.2.3/31");
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let inspect = |h: &str| -> serde_json::Value {
        serde_json::from_str(&nm.ok(&format!("netctl bgp inspect {h}"))).unwrap()
    };
    wait_for(
        "host1 established with leaf1",
        LONG,
        || (inspect("host1")["Oper"]["neighborStatus"] == "established").then_some(()),
        || p1.log_tail(),
    );
    let transitions = |v: &serde_json::Value, addr: &str| {
        v["Oper"]["neighbors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["address"] == addr)
            .map(|n| (n["flaps"].as_u64(), n["state"].clone()))
    };
    nm.ok("netctl bgp create host1 --router-ip=10.2.1.1/31 --as=65201 --neighbor-as=65101 --neighbor=10.2.1.0 --peer=10.2.2.0:65102 --accept-default --local-address=10.2.2.1/31");
    wait_for(
        "host1 established with both leaves",
        LONG,
        || {
            let v = inspect("host1");
            (transitions(&v, "10.2.2.0").is_some_and(|(_, s)| s == "established")).then_some(())
        },
        || nm.ok("netctl bgp inspect host1"),
    );
    let v = inspect("host1");
    assert_eq!(
        transitions(&v, "10.2.1.0"),
        Some((Some(0), serde_json::json!("established"))),
        "leaf1's session was reset by adding leaf2: {v}"
    );
    let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());
    let c1 = ContainerNs::new(&format!("{}-c1", lab.namespace("host1").unwrap()));
    let c2 = ContainerNs::new(&format!("{}-c2", lab.namespace("host2").unwrap()));
    let ip1 = p1.add(&c1, "c1", "contiv-net");
    let ip2 = p2.add(&c2, "c2", "contiv-net");

    // Both leaves offer a default route: one ECMP route with both next hops, from us.
    let ecmp = wait_for(
        "an ECMP default route over both leaves in host1's kernel",
        LONG,
        || {
            let r = ip_route(&lab, "host1", "default proto 200");
            (r.contains("nexthop via 10.2.1.0") && r.contains("nexthop via 10.2.2.0")).then_some(r)
        },
        || format!("{}\n{}", ip_route(&lab, "host1", ""), p1.log_tail()),
    );
    assert!(
        ecmp.contains("dev eth1") && ecmp.contains("dev eth2"),
        "{ecmp}"
    );
    // Each host reaches the other's container by netplugin's route, ECMP over both leaves
    // (leaf1's next hop first, leaf2's second), and by nothing else.
    wait_netplugin_path(&lab, "host1", &ip2, &["10.2.1.0", "10.2.2.0"]);
    wait_netplugin_path(&lab, "host2", &ip1, &["10.2.1.2", "10.2.2.2"]);
    wait_for(
        "c1 pings c2",
        LONG,
        || c1.pings(&ip2).then_some(()),
        || ip_route(&lab, "host1", ""),
    );
    assert!(c2.pings(&ip1), "c2 reaches c1 over both leaves");

    // leaf1 goes silent (its links down): the hosts' sessions with it end (hold time) and
    // netplugin takes its next hops out of the kernel; traffic goes through leaf2 alone.
    // The kernel keeps a next hop over a link that is down (it only marks it `linkdown`),
    // so only netplugin's update moves the flow off leaf1.
    for l in ["eth1", "eth2", "eth3"] {
        let o = node_exec(&lab, "leaf1", &format!("ip link set {l} down"));
        assert!(o.status.success());
    }
    wait_for(
        "host1's default route down to leaf2 alone",
        LONG,
        || {
            let r = ip_route(&lab, "host1", "default proto 200");
            (r.contains("via 10.2.2.0") && !r.contains("10.2.1.0")).then_some(())
        },
        || ip_route(&lab, "host1", ""),
    );
    wait_netplugin_path(&lab, "host1", &ip2, &["10.2.2.0"]);
    wait_netplugin_path(&lab, "host2", &ip1, &["10.2.2.2"]);
    wait_for(
        "c1 reaches c2 through leaf2",
        LONG,
        || c1.pings(&ip2).then_some(()),
        || {
            format!(
                "{}\n{}",
                ip_route(&lab, "host1", ""),
                ip_route(&lab, "host2", "")
            )
        },
    );
    assert!(c2.pings(&ip1), "c2 reaches c1 through leaf2");
}

#[test]
fn leaf_spine_cross_rack() {
    if !require_root("leaf_spine_cross_rack") {
        return;
    }
    let lab = deploy("leaf-spine", "xrack");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65201 --neighbor-as=65101 --neighbor=10.1.1.0");
    nm.ok("netctl bgp create host3 --router-ip=10.1.2.1/31 --as=65203 --neighbor-as=65102 --neighbor=10.1.2.0");
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let p3 = Netplugin::start(&lab, "host3", &nm, tmp.path());
    let c1 = ContainerNs::new(&format!("{}-c1", lab.namespace("host1").unwrap()));
    let c3 = ContainerNs::new(&format!("{}-c3", lab.namespace("host3").unwrap()));
    let ip1 = p1.add(&c1, "c1", "contiv-net");
    let ip3 = p3.add(&c3, "c3", "contiv-net");
    wait_for(
        "c1 (rack 1) pings c3 (rack 2) across the spines",
        LONG,
        || c1.pings(&ip3).then_some(()),
        || {
            format!(
                "{}\n{}\n{}",
                ip_route(&lab, "host1", ""),
                ip_route(&lab, "leaf1", ""),
                p1.log_tail()
            )
        },
    );
    assert!(c3.pings(&ip1));
    // By netplugin's routes, learned from each host's only leaf.
    wait_netplugin_path(&lab, "host1", &ip3, &["10.1.1.0"]);
    wait_netplugin_path(&lab, "host3", &ip1, &["10.1.2.0"]);
    // leaf1 reaches rack 2's container over both spines (ECMP in the fabric), once
    // both spines' paths have arrived.
    wait_for(
        "leaf1's route to c3 over both spines",
        LONG,
        || {
            let r = ip_route(&lab, "leaf1", &ip3);
            (r.contains("10.0.1.0") && r.contains("10.0.2.0")).then_some(())
        },
        || ip_route(&lab, "leaf1", &ip3),
    );
    drop(p3);
    drop(p1);
}
