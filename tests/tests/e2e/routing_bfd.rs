//! BFD between a netplugin host and its ToR, asked for through the `Bgp` object, on the
//! `quickstart` fabric (real FRR ToRs with bfdd): `netctl bgp create host1 … --bfd`, and
//! tor1's host peer group told to run BFD at test time through vtysh (the shared topology
//! files stay as they are).
//!
//! - The session comes up without BFD; then `--bfd` is added to the object and the
//!   running netplugin re-adds the neighbor with BFD.
//! - The session comes up with BFD up on both sides: host1's report (`netctl bgp
//!   inspect host1`, neighbor field `bfd`) and FRR's `show bfd peers json`.
//! - Then the link fails silently: nftables in tor1's namespace drops BFD (UDP 3784) and
//!   BGP (TCP 179) to and from host1. host1's session goes down, and its `lastError`
//!   names BFD: the cause is checked, not how long it took.
//! - The link heals: BGP and BFD come back.

use std::time::Duration;

use contiv_tests::cluster::{self, Netmaster, Netplugin, deploy, node_exec, wait_for};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);
const HOST1: &str = "10.1.1.1";

/// host1's neighbor tor1 (10.1.1.0) as host1's report gives it through netctl.
fn tor1_neighbor(nm: &Netmaster) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&nm.ok("netctl bgp inspect host1")).ok()?;
    v["Oper"]["neighbors"]
        .as_array()?
        .iter()
        .find(|n| n["address"] == "10.1.1.0")
        .cloned()
}

/// tor1's BFD state of a peer, empty when unknown.
fn frr_bfd_status(lab: &containerlab::Lab, peer: &str) -> String {
    let o = node_exec(lab, "tor1", "vtysh -c 'show bfd peers json'");
    cluster::frr_bfd_status(&String::from_utf8_lossy(&o.stdout), peer)
}

fn tor1_ok(lab: &containerlab::Lab, cmd: &str) {
    let o = node_exec(lab, "tor1", cmd);
    assert!(
        o.status.success(),
        "tor1: {cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn netplugin_bfd_with_the_tor_ends_bgp_on_silent_link_failure() {
    if !require_root("netplugin_bfd_with_the_tor_ends_bgp_on_silent_link_failure") {
        return;
    }
    let lab = deploy("quickstart", "npbfd");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();

    // tor1 runs BFD with host1: a configured neighbor in the hosts' peer group (it wins
    // over the listen range). BFD on the range's peer group alone was unreliable in FRR
    // 8.4: under load bgpd now and then registered no BFD session for the dynamic
    // neighbor (`show bfd peers` stayed empty).
    tor1_ok(
        &lab,
        &format!(
            "vtysh -c 'conf t' -c 'router bgp 65001' -c 'neighbor {HOST1} peer-group HOSTS' \
             -c 'neighbor {HOST1} bfd'"
        ),
    );

    nm.ok("netctl global set --fwd-mode routing");
    // First without BFD: the session comes up, no BFD in the report.
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    wait_for(
        "host1's session with tor1 established without BFD",
        LONG,
        || tor1_neighbor(&nm).filter(|n| n["state"] == "established" && n["bfd"].is_null()),
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );

    // Then BFD is turned on in the object: the running netplugin re-adds the neighbor
    // with BFD.
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0 --bfd");
    let config: serde_json::Value =
        serde_json::from_str(&nm.ok("netctl bgp inspect host1")).unwrap();
    assert_eq!(config["Config"]["bfd"], true, "{config}");

    // Up on both sides.
    let up = wait_for(
        "host1's session with tor1 established with BFD up (netctl bgp inspect)",
        LONG,
        || tor1_neighbor(&nm).filter(|n| n["state"] == "established" && n["bfd"] == "up"),
        || {
            format!(
                "{}\n{}\ntor1: {}\n{}",
                nm.ok("netctl bgp inspect host1"),
                p1.log_tail(),
                String::from_utf8_lossy(
                    &node_exec(
                        &lab,
                        "tor1",
                        "vtysh -c 'show bfd peers json' -c 'show bgp neighbors 10.1.1.1 json'"
                    )
                    .stdout
                ),
                String::from_utf8_lossy(&node_exec(&lab, "host1", "ss -uapn").stdout)
            )
        },
    );
    wait_for(
        "tor1's BFD session with host1 up (show bfd peers json)",
        LONG,
        || (frr_bfd_status(&lab, HOST1) == "up").then_some(()),
        || {
            String::from_utf8_lossy(
                &node_exec(&lab, "tor1", "vtysh -c 'show bfd peers json'").stdout,
            )
            .into_owned()
        },
    );
    let flaps = up["flaps"].as_u64().unwrap_or(0);

    // The link fails silently (inside tor1's namespace only).
    tor1_ok(
        &lab,
        &format!(
            "nft add table inet npbfd && \
             nft add chain inet npbfd in '{{ type filter hook input priority -10 ; }}' && \
             nft add chain inet npbfd out '{{ type filter hook output priority -10 ; }}' && \
             nft add rule inet npbfd in ip saddr {HOST1} udp dport 3784 drop && \
             nft add rule inet npbfd in ip saddr {HOST1} tcp dport 179 drop && \
             nft add rule inet npbfd in ip saddr {HOST1} tcp sport 179 drop && \
             nft add rule inet npbfd out ip daddr {HOST1} udp dport 3784 drop && \
             nft add rule inet npbfd out ip daddr {HOST1} tcp dport 179 drop && \
             nft add rule inet npbfd out ip daddr {HOST1} tcp sport 179 drop"
        ),
    );

    // host1's session goes down, and BFD is why (a hold timer expiry or a TCP error
    // would name itself instead).
    let down = wait_for(
        "host1's session with tor1 down",
        LONG,
        || tor1_neighbor(&nm).filter(|n| n["flaps"].as_u64().unwrap_or(0) > flaps),
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );
    eprintln!("host1's session with tor1 went down: {}", down["lastError"]);
    let err = down["lastError"].as_str().unwrap_or_default();
    assert!(
        err.contains("BFD down") && err.contains("control detection time expired"),
        "{down}"
    );
    assert_ne!(down["bfd"], "up", "{down}");
    wait_for(
        "tor1's BFD session with host1 no longer up",
        LONG,
        || (frr_bfd_status(&lab, HOST1) != "up").then_some(()),
        || {
            String::from_utf8_lossy(
                &node_exec(&lab, "tor1", "vtysh -c 'show bfd peers json'").stdout,
            )
            .into_owned()
        },
    );

    // The link heals: both come back.
    tor1_ok(&lab, "nft delete table inet npbfd");
    wait_for(
        "host1's session with tor1 established with BFD up again",
        LONG,
        || tor1_neighbor(&nm).filter(|n| n["state"] == "established" && n["bfd"] == "up"),
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );
    wait_for(
        "tor1's BFD session with host1 up again",
        LONG,
        || (frr_bfd_status(&lab, HOST1) == "up").then_some(()),
        || {
            String::from_utf8_lossy(
                &node_exec(&lab, "tor1", "vtysh -c 'show bfd peers json'").stdout,
            )
            .into_owned()
        },
    );
}
