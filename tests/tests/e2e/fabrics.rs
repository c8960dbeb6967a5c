//! The fabrics in `topologies/` deploy, converge (every router session Established, as
//! the daemons themselves report), forward traffic across racks, and leave nothing
//! behind when destroyed - also when a test fails midway.

use std::time::Duration;

use containerlab::lab::DeployOptions;
use contiv_tests::{
    add_static_host_defaults, assert_gone, fabric_lab, lab_pids, require_root, root_link_count,
};

const CONVERGE: Duration = Duration::from_secs(60);

/// Pings `to` from node `from` until a reply comes back: sessions are Established a
/// moment before their routes reach every FIB.
fn ping(lab: &containerlab::Lab, from: &str, to: &str) {
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        // ping exits 0 once any reply came back.
        match lab.exec_ok(from, &format!("ping -c 1 -W 1 {to}")) {
            Ok(_) => return,
            Err(e) if std::time::Instant::now() > deadline => panic!("{from} -> {to}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn deploy_converge_ping(fabric: &str, tag: &str, pings: &[(&str, &str)], sessions: usize) {
    let links_before = root_link_count();
    let lab = fabric_lab(fabric, tag)
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    let s = lab.wait_established(CONVERGE).unwrap();
    assert_eq!(s.len(), sessions, "sessions: {s:#?}");
    // No agent runs here: hosts get the static default an operator would give them.
    add_static_host_defaults(&lab);
    for (from, to) in pings {
        ping(&lab, from, to);
    }
    let pids = lab_pids(&lab);
    assert!(!pids.is_empty());
    let plain = (*lab).clone();
    drop(lab);
    assert_gone(&plain, &pids);
    assert_eq!(
        root_link_count(),
        links_before,
        "the machine's own links changed"
    );
}

#[test]
fn quickstart_converges_and_forwards() {
    if !require_root("quickstart_converges_and_forwards") {
        return;
    }
    // host1 -> host2 crosses both ToRs; the ToR loopbacks are learned over BGP.
    deploy_converge_ping(
        "quickstart",
        "fab",
        &[
            ("host1", "10.1.2.1"),
            ("host2", "10.1.1.1"),
            ("host1", "10.255.0.2"),
        ],
        2,
    );
}

#[test]
fn dual_homed_converges_and_forwards() {
    if !require_root("dual_homed_converges_and_forwards") {
        return;
    }
    // Both hosts reach each other through either leaf, and both leaf loopbacks.
    deploy_converge_ping(
        "dual-homed",
        "fab",
        &[
            ("host1", "10.2.1.3"),
            ("host1", "10.2.2.3"),
            ("host2", "10.255.0.11"),
            ("host2", "10.255.0.12"),
        ],
        2,
    );
}

#[test]
fn leaf_spine_converges_and_forwards_across_racks() {
    if !require_root("leaf_spine_converges_and_forwards_across_racks") {
        return;
    }
    deploy_converge_ping(
        "leaf-spine",
        "fab",
        &[
            ("host1", "10.1.2.1"),
            ("host2", "10.1.2.3"),
            ("host4", "10.1.1.1"),
            ("host3", "10.255.0.1"),
            ("host3", "10.255.0.2"),
        ],
        12,
    );
}

#[test]
fn leaf_spine_ecmp_over_both_spines() {
    if !require_root("leaf_spine_ecmp_over_both_spines") {
        return;
    }
    let lab = fabric_lab("leaf-spine", "ecmp")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    lab.wait_established(CONVERGE).unwrap();
    // leaf1 reaches rack 2 through spine1 (FRR) and spine2 (BIRD) at once.
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        let route = lab.exec_ok("leaf1", "ip route show 10.1.2.0/31").unwrap();
        if route.contains("nexthop via 10.0.1.0") && route.contains("nexthop via 10.0.2.0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ECMP route on leaf1: {route}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn leaf_spine_deploys_repeatedly() {
    if !require_root("leaf_spine_deploys_repeatedly") {
        return;
    }
    let lab = fabric_lab("leaf-spine", "again");
    for round in 0..3 {
        lab.deploy(&DeployOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let guard_pids = lab_pids(&lab);
        let result = lab.wait_established(CONVERGE);
        lab.destroy().unwrap();
        result.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_gone(&lab, &guard_pids);
    }
}

#[test]
fn two_labs_run_at_once() {
    if !require_root("two_labs_run_at_once") {
        return;
    }
    let a = fabric_lab("quickstart", "twin-a")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    let b = fabric_lab("quickstart", "twin-b")
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    // Same addresses, same interface names, separate namespaces and daemons.
    a.wait_established(CONVERGE).unwrap();
    b.wait_established(CONVERGE).unwrap();
    add_static_host_defaults(&a);
    add_static_host_defaults(&b);
    ping(&a, "host1", "10.1.2.1");
    ping(&b, "host1", "10.1.2.1");
    let (pa, pb) = (lab_pids(&a), lab_pids(&b));
    let plain_a = (*a).clone();
    drop(a);
    assert_gone(&plain_a, &pa);
    // Destroying one lab left the other whole.
    assert!(b.inspect().unwrap().iter().all(|n| n.state == "running"));
    ping(&b, "host2", "10.1.1.1");
    assert_eq!(lab_pids(&b), pb);
}

#[test]
fn a_failing_test_still_cleans_up() {
    if !require_root("a_failing_test_still_cleans_up") {
        return;
    }
    let lab = fabric_lab("quickstart", "panic");
    let plain = lab.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _guard = lab.deploy_guarded(&DeployOptions::default()).unwrap();
        panic!("a test failing midway");
    }));
    assert!(result.is_err());
    for ns in plain.plan().namespaces() {
        assert!(
            !std::path::Path::new("/run/netns").join(&ns).exists(),
            "{ns} left behind"
        );
    }
    assert!(!plain.plan().lab_dir.exists());
}
