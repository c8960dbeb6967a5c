//! The runner's failure paths, as root: every failed deploy is rolled back, a lab is
//! never deployed twice, a killed deploy is cleaned by the next destroy, and ExaBGP nodes
//! run next to FRR.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containerlab::lab::DeployOptions;
use containerlab::testing::require_root;
use containerlab::{Error, Lab, Topology};

/// A lab from `yaml` (its `name:` made unique) in a temporary directory with `files`.
fn lab(dir: &Path, yaml: &str, files: &[(&str, &str)]) -> Lab {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let yaml = yaml.replace("NAME", &format!("t{}", std::process::id()));
    let file = dir.join("lab.clab.yml");
    std::fs::write(&file, &yaml).unwrap();
    Lab::load(&file, &containerlab::plan::default_lab_root()).unwrap()
}

/// Destroys the lab when the test ends, however it ends.
struct Cleanup(Lab);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

fn assert_clean(lab: &Lab) {
    for ns in lab.plan().namespaces() {
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "namespace {ns} left behind"
        );
    }
    assert!(!lab.plan().lab_dir.exists(), "lab directory left behind");
}

const FRR_CONF: &str = "frr defaults datacenter\nhostname r1\n!\ninterface eth1\n ip address 10.9.0.0/31\nexit\n!\nrouter bgp 65001\n bgp router-id 10.9.0.0\n no bgp ebgp-requires-policy\n neighbor 10.9.0.1 remote-as 65002\n neighbor 10.9.0.1 timers 3 9\n neighbor 10.9.0.1 timers connect 1\nexit\n";

#[test]
fn a_daemon_that_dies_rolls_the_deploy_back() {
    if !require_root("a_daemon_that_dies_rolls_the_deploy_back") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lab = lab(
        d.path(),
        "name: NAME-bird\ntopology:\n  nodes:\n    r1: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [frr.conf:/etc/frr/frr.conf] }\n    r2: { kind: linux, image: pierky/bird, binds: [bird.conf:/etc/bird/bird.conf] }\n  links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n",
        &[
            ("frr.conf", FRR_CONF),
            (
                "bird.conf",
                "router id 1.2.3.4;\nthis is not bird syntax;\n",
            ),
        ],
    );
    let _cleanup = Cleanup(lab.clone());
    let err = lab.deploy(&DeployOptions::default()).unwrap_err();
    match &err {
        Error::DaemonFailed { node, tail, .. } => {
            assert_eq!(node, "r2");
            assert!(
                tail.contains("syntax error") || tail.contains("error"),
                "log tail: {tail}"
            );
        }
        other => panic!("expected DaemonFailed, got {other}"),
    }
    assert!(err.to_string().contains("node 'r2'"), "{err}");
    assert_clean(&lab);
}

#[test]
fn a_failing_exec_command_rolls_the_deploy_back() {
    if !require_root("a_failing_exec_command_rolls_the_deploy_back") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lab = lab(
        d.path(),
        "name: NAME-exec\ntopology:\n  nodes:\n    a: { kind: linux, exec: [\"ip addr add 10.9.9.1/24 dev eth1\", \"ip addr add not-an-address dev eth1\"] }\n    b: { kind: linux }\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        &[],
    );
    let _cleanup = Cleanup(lab.clone());
    let err = lab
        .deploy(&DeployOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node 'a' exec") && err.contains("not-an-address"),
        "{err}"
    );
    assert_clean(&lab);
}

#[test]
fn a_deployed_lab_is_not_deployed_again() {
    if !require_root("a_deployed_lab_is_not_deployed_again") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lab = lab(
        d.path(),
        "name: NAME-twice\ntopology:\n  nodes:\n    a: { kind: linux }\n    b: { kind: linux }\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        &[],
    );
    let _cleanup = Cleanup(lab.clone());
    let guard = lab
        .clone()
        .deploy_guarded(&DeployOptions::default())
        .unwrap();
    let err = lab.deploy(&DeployOptions::default()).unwrap_err();
    assert!(matches!(err, Error::AlreadyDeployed { .. }), "{err}");
    // The refused deploy touched nothing: the first one still runs.
    guard.exec_ok("a", "ip link show eth1").unwrap();
    // --reconfigure replaces it.
    lab.deploy(&DeployOptions { reconfigure: true }).unwrap();
    guard.exec_ok("b", "ip link show eth1").unwrap();
    drop(guard);
    assert_clean(&lab);
    // Destroy is idempotent.
    lab.destroy().unwrap();
}

#[test]
fn a_killed_deploy_is_cleaned_by_the_next_destroy() {
    if !require_root("a_killed_deploy_is_cleaned_by_the_next_destroy") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // r1's daemons start, then h1's exec hangs: the deploy is killed right there.
    let lab = lab(
        d.path(),
        "name: NAME-killed\ntopology:\n  nodes:\n    r1: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [frr.conf:/etc/frr/frr.conf] }\n    h1: { kind: linux, exec: [\"sleep 600\"] }\n  links:\n    - endpoints: [\"r1:eth1\", \"h1:eth1\"]\n",
        &[("frr.conf", FRR_CONF)],
    );
    let _cleanup = Cleanup(lab.clone());
    let bin = env!("CARGO_BIN_EXE_contiv-lab");
    let file = d.path().join("lab.clab.yml");
    let mut child = Command::new(bin)
        .arg("deploy")
        .arg("-t")
        .arg(&file)
        .spawn()
        .unwrap();
    let state = lab.plan().state_file();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait until the deploy is stuck in h1's exec (the sleep runs inside h1's namespace).
    let h1 = lab.namespace("h1").unwrap();
    loop {
        // Only the exec's `sleep` counts: `ip -n` also enters the namespace for a moment
        // while links are set up, before any daemon is recorded.
        let stuck = Command::new("ip")
            .args(["netns", "pids", &h1])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|pid| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim() == "sleep")
                    })
            })
            .unwrap_or(false);
        if stuck {
            break;
        }
        assert!(Instant::now() < deadline, "deploy never reached h1's exec");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let recorded = containerlab::state::LabState::load(&state)
        .unwrap()
        .expect("state file");
    assert!(!recorded.daemons.is_empty());
    let out = Command::new(bin)
        .arg("destroy")
        .arg("-t")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in &recorded.daemons {
        assert!(!d.id.alive(), "{} ({}) survived", d.name, d.id.pid);
    }
    assert_clean(&lab);
}

#[test]
fn destroy_by_name_needs_only_the_state() {
    if !require_root("destroy_by_name_needs_only_the_state") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lab = lab(
        d.path(),
        "name: NAME-byname\ntopology:\n  nodes:\n    a: { kind: linux }\n",
        &[],
    );
    let _cleanup = Cleanup(lab.clone());
    lab.deploy(&DeployOptions::default()).unwrap();
    std::fs::remove_file(d.path().join("lab.clab.yml")).unwrap();
    let r = containerlab::lab::destroy_by_name(&containerlab::plan::default_lab_root(), lab.name())
        .unwrap();
    assert_eq!(r.namespaces_removed, 1);
    assert_clean(&lab);
}

#[test]
fn exabgp_peers_with_frr() {
    if !require_root("exabgp_peers_with_frr") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let exa = "neighbor 10.9.0.0 {\n  router-id 10.9.0.1;\n  local-address 10.9.0.1;\n  local-as 65002;\n  peer-as 65001;\n  hold-time 9;\n  family { ipv4 unicast; }\n  static { route 10.77.0.0/24 next-hop self; }\n}\n";
    let lab = lab(
        d.path(),
        "name: NAME-exa\ntopology:\n  nodes:\n    r1: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [frr.conf:/etc/frr/frr.conf] }\n    x1:\n      kind: linux\n      image: mikenowak/exabgp\n      binds: [exabgp.conf:/etc/exabgp/exabgp.conf]\n      exec: [\"ip addr add 10.9.0.1/31 dev eth1\"]\n  links:\n    - endpoints: [\"r1:eth1\", \"x1:eth1\"]\n",
        &[("frr.conf", FRR_CONF), ("exabgp.conf", exa)],
    );
    let _cleanup = Cleanup(lab.clone());
    let guard = lab.deploy_guarded(&DeployOptions::default()).unwrap();
    let sessions = guard.wait_established(Duration::from_secs(60)).unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rib = guard
            .exec_ok("r1", "vtysh -c 'show ip bgp 10.77.0.0/24'")
            .unwrap_or_default();
        if rib.contains("65002") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ExaBGP's route never reached FRR: {rib}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_name_that_does_not_exist_is_named_in_the_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("l.clab.yml"),
        "name: x\ntopology:\n  nodes:\n    a: { kind: linux }\n",
    )
    .unwrap();
    let t = Topology::from_file(d.path().join("l.clab.yml")).unwrap();
    let lab = Lab::new(t, d.path()).unwrap();
    let e = lab.exec("zz", "true").unwrap_err().to_string();
    assert!(e.contains("no node 'zz'") && e.contains("nodes: a"), "{e}");
}
