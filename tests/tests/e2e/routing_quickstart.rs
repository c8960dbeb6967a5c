//! Contiv's routing mode end to end on the `quickstart` fabric (real FRR ToRs): netmaster,
//! a netplugin per host, netctl commands as the quick start gives them, containers
//! attached through the real CNI plugin binary, their /32s on the ToRs, learned routes in
//! the hosts' kernels, pings across the fabric; then deletion, a netplugin restart with a
//! foreign route beside ours, and bad CNI input.

use std::time::Duration;

use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, cni_ip, deploy, frr_routes, ip_route, node_exec, wait_for,
};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn quickstart_routing_mode_end_to_end() {
    if !require_root("quickstart_routing_mode_end_to_end") {
        return;
    }
    let lab = deploy("quickstart", "routing");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();

    // The quick start, verbatim, plus each host's Bgp object.
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");

    let mut p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());

    // Sessions come up; netctl shows them as netplugin reports them.
    wait_for(
        "host1's session with tor1 established (netctl bgp inspect)",
        LONG,
        || {
            let o = nm.ok("netctl bgp inspect host1");
            o.contains("\"neighborStatus\": \"established\"")
                .then_some(())
        },
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );

    let web = ContainerNs::new(&format!("{}-web", lab.namespace("host1").unwrap()));
    let db = ContainerNs::new(&format!("{}-db", lab.namespace("host2").unwrap()));
    let web_ip = cni_ip(&p1.cni_with_args(
        "ADD",
        "web",
        &web.path(),
        "eth0",
        &p1.netconf("contiv-net", None),
        "IgnoreUnknown=1;K8S_POD_NAME=web",
    ));
    let db_ip = cni_ip(&p2.cni_with_args(
        "ADD",
        "db",
        &db.path(),
        "eth0",
        &p2.netconf("contiv-net", None),
        "IgnoreUnknown=1;K8S_POD_NAME=db",
    ));
    assert_ne!(web_ip, db_ip);
    let r: serde_json::Value = serde_json::from_slice(
        &p1.cni(
            "ADD",
            "web",
            &web.path(),
            "eth0",
            &p1.netconf("contiv-net", None),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(r["dns"]["nameservers"][0], "10.1.1.1", "{r}");

    // Each container's /32 reaches the other rack's ToR, and the other host's kernel.
    for (tor, ip) in [("tor2", &web_ip), ("tor1", &db_ip), ("tor1", &web_ip)] {
        let p = format!("{ip}/32");
        wait_for(
            &format!("{p} on {tor}"),
            LONG,
            || frr_routes(&lab, tor).contains_key(&p).then_some(()),
            || format!("{:?}", frr_routes(&lab, tor)),
        );
    }
    wait_for(
        "db's /32 in host1's kernel, installed by netplugin (proto 200)",
        LONG,
        || {
            ip_route(&lab, "host1", "")
                .contains(&format!("{db_ip} via 10.1.1.0 dev eth1 proto 200"))
                .then_some(())
        },
        || ip_route(&lab, "host1", ""),
    );
    assert!(
        ip_route(&lab, "host1", "").contains(&format!("{web_ip} dev cv")),
        "web's device /32: {}",
        ip_route(&lab, "host1", "")
    );
    // ping across the fabric, both ways.
    wait_for(
        "web pings db",
        LONG,
        || web.pings(&db_ip).then_some(()),
        || ip_route(&lab, "host1", ""),
    );
    assert!(db.pings(&web_ip), "db pings web");

    // Service discovery: web finds db by name at its host's netplugin (the router
    // address the CNI result named as nameserver).
    let looked_up = wait_for(
        "web resolves db through host1's netplugin",
        LONG,
        || {
            let o = web.exec(&["busybox", "nslookup", "db", "10.1.1.1"]);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.contains(&db_ip).then_some(out)
        },
        || {
            format!(
                "{}\n{}\n{}",
                String::from_utf8_lossy(
                    &web.exec(&["busybox", "nslookup", "db", "10.1.1.1"]).stdout
                ),
                nm.ok("netctl endpoint inspect db-eth0"),
                p1.log_tail()
            )
        },
    );
    assert!(!looked_up.contains(&web_ip), "{looked_up}");
    let o = web.exec(&["busybox", "nslookup", "nosuch.contiv-net", "10.1.1.1"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("20.1.1."),
        "an unknown name resolves: {o:?}"
    );

    // netctl sees the fabric: numRoutes, endpoint homing.
    let inspect = nm.ok("netctl bgp inspect host1");
    assert!(inspect.contains("numRoutes"), "{inspect}");
    let eps = nm.ok("netctl endpoint inspect web-eth0");
    assert!(eps.contains("host1") && eps.contains(&web_ip), "{eps}");

    // Restart host1's netplugin with a foreign route in its table: endpoints and routes
    // stay, the foreign route survives, nothing is duplicated.
    let o = node_exec(
        &lab,
        "host1",
        "ip route add 192.0.2.0/24 via 10.1.1.0 proto static",
    );
    assert!(o.status.success());
    p1.kill();
    // A crashed agent leaves the kernel as it was.
    let routes = ip_route(&lab, "host1", "");
    assert!(
        routes.contains(&format!("{db_ip} via 10.1.1.0 dev eth1 proto 200")),
        "{routes}"
    );
    assert!(routes.contains(&format!("{web_ip} dev cv")), "{routes}");
    // Without graceful restart the ToRs drop the host's routes with its session...
    let web_p = format!("{web_ip}/32");
    wait_for(
        "web's /32 withdrawn from tor2 while host1's netplugin is down",
        LONG,
        || (!frr_routes(&lab, "tor2").contains_key(&web_p)).then_some(()),
        || format!("{:?}", frr_routes(&lab, "tor2")),
    );
    // ...and relearn them when it is back, from the saved endpoints.
    p1.spawn();
    wait_for(
        "web's /32 back on tor2 after the restart",
        LONG,
        || frr_routes(&lab, "tor2").contains_key(&web_p).then_some(()),
        || p1.log_tail(),
    );
    wait_for(
        "web pings db after the restart",
        LONG,
        || web.pings(&db_ip).then_some(()),
        || ip_route(&lab, "host1", ""),
    );
    let routes = ip_route(&lab, "host1", "");
    assert!(
        routes.contains("192.0.2.0/24 via 10.1.1.0 dev eth1 proto static"),
        "{routes}"
    );
    assert_eq!(
        routes.matches(&format!("{web_ip} dev cv")).count(),
        1,
        "{routes}"
    );
    // The same ADD again is answered from the saved endpoint.
    let again = cni_ip(&p1.cni(
        "ADD",
        "web",
        &web.path(),
        "eth0",
        &p1.netconf("contiv-net", None),
    ));
    assert_eq!(again, web_ip);

    // Bad input: an unknown network is refused with nothing created.
    let before = ip_route(&lab, "host1", "");
    let links_before = String::from_utf8_lossy(&node_exec(&lab, "host1", "ip -o link").stdout)
        .lines()
        .count();
    let extra = ContainerNs::new(&format!("{}-x", lab.namespace("host1").unwrap()));
    let o = p1.cni(
        "ADD",
        "x",
        &extra.path(),
        "eth0",
        &p1.netconf("no-such-net", None),
    );
    assert!(!o.status.success());
    let err: serde_json::Value = serde_json::from_slice(&o.stdout).expect("CNI error JSON");
    assert!(
        err["msg"].as_str().unwrap_or("").contains("no-such-net")
            || err["details"]
                .as_str()
                .unwrap_or("")
                .contains("no-such-net"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&node_exec(&lab, "host1", "ip -o link").stdout)
            .lines()
            .count(),
        links_before
    );
    assert_eq!(ip_route(&lab, "host1", ""), before);
    // A missing field (no CNI_NETNS on ADD) is refused by the plugin itself.
    let o = p1.cni("ADD", "y", "", "eth0", &p1.netconf("contiv-net", None));
    assert!(!o.status.success(), "ADD without a netns must fail");

    // A network with no free address left: the ADD fails cleanly, holding nothing.
    nm.ok("netctl net create tiny --subnet=30.1.1.0/30 --gateway=30.1.1.1");
    let t1 = ContainerNs::new(&format!("{}-t1", lab.namespace("host1").unwrap()));
    let t2 = ContainerNs::new(&format!("{}-t2", lab.namespace("host1").unwrap()));
    cni_ip(&p1.cni("ADD", "t1", &t1.path(), "eth0", &p1.netconf("tiny", None)));
    let links = String::from_utf8_lossy(&node_exec(&lab, "host1", "ip -o link").stdout)
        .lines()
        .count();
    let before = ip_route(&lab, "host1", "");
    let o = p1.cni("ADD", "t2", &t2.path(), "eth0", &p1.netconf("tiny", None));
    assert!(!o.status.success(), "an ADD into a full network succeeded");
    let err = String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("no free address"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&node_exec(&lab, "host1", "ip -o link").stdout)
            .lines()
            .count(),
        links
    );
    assert_eq!(ip_route(&lab, "host1", ""), before);
    assert!(
        !String::from_utf8_lossy(&t2.exec(&["ip", "-o", "link"]).stdout).contains("eth0"),
        "the container got an interface"
    );
    assert!(!nm.ok("netctl endpoint list").contains("t2-eth0"));
    assert!(
        p1.cni("DEL", "t1", &t1.path(), "eth0", &p1.netconf("tiny", None))
            .status
            .success()
    );

    // Deleting db withdraws its /32 from every ToR and from host1's kernel.
    let o = p2.cni(
        "DEL",
        "db",
        &db.path(),
        "eth0",
        &p2.netconf("contiv-net", None),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let p = format!("{db_ip}/32");
    for tor in ["tor1", "tor2"] {
        wait_for(
            &format!("{p} gone from {tor}"),
            LONG,
            || (!frr_routes(&lab, tor).contains_key(&p)).then_some(()),
            || format!("{:?}", frr_routes(&lab, tor)),
        );
    }
    wait_for(
        "db's /32 gone from host1's kernel",
        LONG,
        || (!ip_route(&lab, "host1", "").contains(&format!("{db_ip} "))).then_some(()),
        || ip_route(&lab, "host1", ""),
    );
    // DEL again, and DEL with an empty netns (containerd), are fine.
    assert!(
        p2.cni("DEL", "db", "", "eth0", &p2.netconf("contiv-net", None))
            .status
            .success()
    );

    // host2's netplugin goes away for good: its session closes, the ToRs drop its /32s,
    // and collecting the host removes its endpoints from netmaster.
    let db2 = ContainerNs::new(&format!("{}-db2", lab.namespace("host2").unwrap()));
    let db2_ip = cni_ip(&p2.cni(
        "ADD",
        "db2",
        &db2.path(),
        "eth0",
        &p2.netconf("contiv-net", None),
    ));
    let db2_p = format!("{db2_ip}/32");
    wait_for(
        "db2's /32 on tor1",
        LONG,
        || frr_routes(&lab, "tor1").contains_key(&db2_p).then_some(()),
        || p2.log_tail(),
    );
    let mut p2 = p2;
    p2.stop();
    for tor in ["tor1", "tor2"] {
        wait_for(
            &format!("db2's /32 gone from {tor} once host2's netplugin stopped"),
            LONG,
            || (!frr_routes(&lab, tor).contains_key(&db2_p)).then_some(()),
            || format!("{:?}", frr_routes(&lab, tor)),
        );
    }
    assert!(nm.ok("netctl endpoint list").contains("db2-eth0"));
    nm.ok("netctl endpoint collect host2");
    assert!(!nm.ok("netctl endpoint list").contains("db2-eth0"));
    drop(p2);

    // netmaster goes away: host1's netplugin, restarted meanwhile, works from its saved
    // intent and endpoints and announces web's /32 again.
    drop(nm);
    p1.kill();
    wait_for(
        "web's /32 withdrawn from tor2 with host1's netplugin down",
        LONG,
        || (!frr_routes(&lab, "tor2").contains_key(&web_p)).then_some(()),
        || format!("{:?}", frr_routes(&lab, "tor2")),
    );
    p1.spawn();
    wait_for(
        "web's /32 back on tor2 without netmaster",
        LONG,
        || frr_routes(&lab, "tor2").contains_key(&web_p).then_some(()),
        || p1.log_tail(),
    );
    drop(p1);
}
