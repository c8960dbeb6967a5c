//! Hitless agent restarts: with `--graceful-restart` on the host's Bgp object, a netplugin
//! that dies keeps its containers reachable — the FRR ToR holds the host's routes as stale
//! (RFC 4724 helper), the host's kernel keeps its routes — and the restarted agent takes
//! over without the data path ever going away.

use std::time::Duration;

use contiv_tests::cluster::{ContainerNs, Netmaster, Netplugin, deploy, node_exec, wait_for};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

/// tor's view of a prefix: (present, stale).
fn tor_path(lab: &containerlab::Lab, tor: &str, prefix: &str) -> (bool, bool) {
    let o = node_exec(
        lab,
        tor,
        &format!("vtysh -c 'show bgp ipv4 unicast {prefix} json'"),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let paths = v["paths"].as_array().cloned().unwrap_or_default();
    (
        !paths.is_empty(),
        paths.iter().any(|p| p["stale"].as_bool().unwrap_or(false)),
    )
}

#[test]
fn a_restarting_agent_keeps_the_data_path() {
    if !require_root("a_restarting_agent_keeps_the_data_path") {
        return;
    }
    let lab = deploy("quickstart", "gr");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0 --graceful-restart=120");
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0 --graceful-restart=120");
    let mut p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());
    let web = ContainerNs::new(&format!("{}-web", lab.namespace("host1").unwrap()));
    let db = ContainerNs::new(&format!("{}-db", lab.namespace("host2").unwrap()));
    let web_ip = p1.add(&web, "web", "contiv-net");
    let db_ip = p2.add(&db, "db", "contiv-net");
    let web_p = format!("{web_ip}/32");
    wait_for(
        "web pings db",
        LONG,
        || web.pings(&db_ip).then_some(()),
        || p1.log_tail(),
    );

    // host1's agent dies.
    p1.kill();
    wait_for(
        "tor1 keeps web's /32 as stale",
        LONG,
        || (tor_path(&lab, "tor1", &web_p) == (true, true)).then_some(()),
        || {
            String::from_utf8_lossy(
                &node_exec(
                    &lab,
                    "tor1",
                    &format!("vtysh -c 'show bgp ipv4 unicast {web_p}'"),
                )
                .stdout,
            )
            .into_owned()
        },
    );
    // Traffic flows meanwhile, both ways.
    assert!(
        db.pings(&web_ip),
        "db reaches web while host1's agent is down"
    );
    assert!(
        web.pings(&db_ip),
        "web reaches db while host1's agent is down"
    );

    // The agent is back: it says it restarted, re-announces, and its End-of-RIB clears
    // the stale mark; the host's route to db never left the kernel.
    p1.spawn();
    let db_route = format!("{db_ip} via 10.1.1.0 dev eth1 proto 200");
    assert!(
        String::from_utf8_lossy(&node_exec(&lab, "host1", "ip route").stdout).contains(&db_route),
        "host1 lost its route to db on restart"
    );
    wait_for(
        "web's /32 fresh again on tor1",
        LONG,
        || (tor_path(&lab, "tor1", &web_p) == (true, false)).then_some(()),
        || p1.log_tail(),
    );
    wait_for(
        "host1 converged (End-of-RIB from tor1)",
        LONG,
        || {
            let v: serde_json::Value =
                serde_json::from_str(&nm.ok("netctl bgp inspect host1")).unwrap();
            (v["Oper"]["neighborStatus"] == "established").then_some(())
        },
        || nm.ok("netctl bgp inspect host1"),
    );
    assert!(
        String::from_utf8_lossy(&node_exec(&lab, "host1", "ip route").stdout).contains(&db_route)
    );
    assert!(web.pings(&db_ip));
    // What the session negotiated is visible cluster-wide: graceful restart among it.
    let v: serde_json::Value = serde_json::from_str(&nm.ok("netctl bgp inspect host1")).unwrap();
    let caps = v["Oper"]["neighbors"][0]["capabilities"].to_string();
    assert!(
        caps.contains("graceful-restart") && caps.contains("4-octet-as"),
        "{caps}"
    );

    // An orderly stop (SIGTERM, an upgrade) is a restart too: no Cease, routes held.
    p1.stop();
    wait_for(
        "tor1 keeps web's /32 as stale after SIGTERM",
        LONG,
        || (tor_path(&lab, "tor1", &web_p) == (true, true)).then_some(()),
        || p1.log_tail(),
    );
    assert!(db.pings(&web_ip));
    p1.spawn();
    wait_for(
        "web's /32 fresh again after the upgrade",
        LONG,
        || (tor_path(&lab, "tor1", &web_p) == (true, false)).then_some(()),
        || p1.log_tail(),
    );
    drop(p2);
    drop(p1);
}
