//! The `contiv-bgpd` binary as a process inside a lab host's namespace, with a TOML file,
//! against two FRR routers:
//!
//! ```text
//!   r1 (FRR, AS 65001) 10.9.1.0 ---- 10.9.1.1 h1 10.9.2.1 ---- 10.9.2.0 r2 (FRR, AS 65002)
//!                                    contiv-bgpd (AS 65201)
//! ```
//!
//! Both sessions use TCP MD5 (r1's password from a file). The routers learn the prefixes
//! the file originates; after the file changes (one prefix replaced, r2's hold time
//! changed) a SIGHUP applies just that: both routers see the new prefix and not the
//! old one, r2's session is reset, r1's is not. SIGUSR1 writes a status dump to the
//! log, SIGTERM ends the process cleanly with a Cease to both routers.
//!
//! Also, without root: `--check` on a valid and on an invalid file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use containerlab::lab::DeployOptions;
use contiv_tests::cluster::bin;
use contiv_tests::require_root;

const DEADLINE: Duration = Duration::from_secs(60);

const TOPOLOGY: &str = "name: NAME
topology:
  nodes:
    r1: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [r1.conf:/etc/frr/frr.conf] }
    r2: { kind: linux, image: quay.io/frrouting/frr:8.4.1, binds: [r2.conf:/etc/frr/frr.conf] }
    h1:
      kind: linux
      exec:
        - ip addr add 10.9.1.1/31 dev eth1
        - ip addr add 10.9.2.1/31 dev eth2
  links:
    - endpoints: [\"r1:eth1\", \"h1:eth1\"]
    - endpoints: [\"r2:eth1\", \"h1:eth2\"]
";

fn frr_conf(n: u8, password: &str) -> String {
    format!(
        "frr defaults datacenter
hostname r{n}
log stdout informational
!
interface lo
 ip address 10.255.9.{n}/32
exit
!
interface eth1
 ip address 10.9.{n}.0/31
exit
!
router bgp 6500{n}
 bgp router-id 10.255.9.{n}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.9.{n}.1 remote-as 65201
 neighbor 10.9.{n}.1 timers 3 9
 neighbor 10.9.{n}.1 timers connect 1
 neighbor 10.9.{n}.1 password {password}
 !
 address-family ipv4 unicast
  redistribute connected
 exit-address-family
exit
!
"
    )
}

/// The daemon's file: `prefixes` originated, r2 with `r2_hold` seconds.
fn bgpd_toml(prefixes: &[&str], r2_hold: u16) -> String {
    let prefixes: Vec<String> = prefixes.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "originate = [{}]

[global]
asn = 65201
router_id = \"10.9.1.1\"
listen = {{ addresses = [] }}

[[neighbors]]
address = \"10.9.1.0\"
peer_asn = 65001
description = \"r1\"
hold_time = 9
connect_retry = 1
md5_password_file = \"r1.key\"
import_policy = \"all\"
export_policy = \"to-r1\"

[[neighbors]]
address = \"10.9.2.0\"
peer_asn = 65002
description = \"r2\"
hold_time = {r2_hold}
connect_retry = 1
md5_password = \"r2-secret\"
import_policy = \"all\"
export_policy = \"all\"

# RFC 8212 is the default: every eBGP neighbor needs its policies.
[policies.all]
default = \"accept\"

# r1 never gets 20.9.0.2/32, and gets the rest tagged 65201:1.
[policies.to-r1]
default = \"reject\"
[[policies.to-r1.terms]]
match = {{ prefix = [\"20.9.0.2/32\"] }}
then = \"reject\"
[[policies.to-r1.terms]]
actions = {{ add_community = [\"65201:1\"] }}
then = \"accept\"
",
        prefixes.join(", ")
    )
}

/// The daemon process; killed (and reaped) on drop if it still runs.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit; `None` if it is still running at the deadline.
    fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn eventually(what: &str, daemon: &Daemon, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < DEADLINE,
            "never: {what}\ncontiv-bgpd log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One neighbor as FRR shows it (`show bgp neighbors PEER json`), `Null` if unknown.
fn frr_neighbor(lab: &containerlab::Lab, node: &str, peer: &str) -> serde_json::Value {
    lab.exec_ok(node, &format!("vtysh -c 'show bgp neighbors {peer} json'"))
        .ok()
        .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
        .and_then(|v| v.get(peer).cloned())
        .unwrap_or(serde_json::Value::Null)
}

fn established(lab: &containerlab::Lab, node: &str, peer: &str) -> bool {
    frr_neighbor(lab, node, peer)["bgpState"] == "Established"
}

fn sessions_established(lab: &containerlab::Lab, node: &str, peer: &str) -> u64 {
    frr_neighbor(lab, node, peer)["connectionsEstablished"]
        .as_u64()
        .unwrap_or(0)
}

/// Whether a router has a BGP route for the prefix learned from the host.
fn has_route(lab: &containerlab::Lab, node: &str, prefix: &str) -> bool {
    lab.exec_ok(
        node,
        &format!("vtysh -c 'show bgp ipv4 unicast {prefix} json'"),
    )
    .is_ok_and(|o| o.contains("65201") && o.contains(prefix))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn contiv_bgpd_in_a_lab_host_reloads_only_what_changed() {
    if !require_root("contiv_bgpd_in_a_lab_host_reloads_only_what_changed") {
        return;
    }
    let exe = bin("contiv-bgpd");
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write(dir, "r1.conf", &frr_conf(1, "r1-secret"));
    write(dir, "r2.conf", &frr_conf(2, "r2-secret"));
    write(
        dir,
        "lab.clab.yml",
        &TOPOLOGY.replace("NAME", &format!("bgpd-{}", std::process::id())),
    );
    let lab = containerlab::Lab::load(
        dir.join("lab.clab.yml"),
        &containerlab::plan::default_lab_root(),
    )
    .unwrap()
    .deploy_guarded(&DeployOptions::default())
    .unwrap();

    // The daemon's own directory (the lab's is for the lab).
    let etc = tempfile::tempdir().unwrap();
    write(etc.path(), "r1.key", "r1-secret\n");
    let toml = etc.path().join("bgpd.toml");
    std::fs::write(&toml, bgpd_toml(&["20.9.0.1/32", "20.9.0.2/32"], 9)).unwrap();
    let log = etc.path().join("bgpd.log");
    let mut cmd = lab
        .command(
            "h1",
            &format!("exec {} -c {}", exe.display(), toml.display()),
        )
        .unwrap();
    cmd.env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut daemon = Daemon {
        child: cmd.spawn().unwrap(),
        log,
    };

    eventually("both routers Established with h1", &daemon, || {
        established(&lab, "r1", "10.9.1.1") && established(&lab, "r2", "10.9.2.1")
    });
    eventually(
        "r2 learns both prefixes, r1 what its export policy lets through",
        &daemon,
        || {
            has_route(&lab, "r2", "20.9.0.1/32")
                && has_route(&lab, "r2", "20.9.0.2/32")
                && has_route(&lab, "r1", "20.9.0.1/32")
        },
    );
    assert!(
        !has_route(&lab, "r1", "20.9.0.2/32"),
        "r1's export policy rejects it"
    );
    let tagged = lab
        .exec("r1", "vtysh -c 'show bgp ipv4 unicast 20.9.0.1/32 json'")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tagged.stdout).contains("65201:1"),
        "the export policy's community: {}",
        String::from_utf8_lossy(&tagged.stdout)
    );
    assert_eq!(sessions_established(&lab, "r1", "10.9.1.1"), 1);
    assert_eq!(sessions_established(&lab, "r2", "10.9.2.1"), 1);
    eventually("the session changes are logged", &daemon, || {
        let l = daemon.log();
        l.contains("neighbor 10.9.1.0 (r1): ") && l.contains("-> Established")
    });

    // One prefix replaced, r2's hold time changed.
    std::fs::write(&toml, bgpd_toml(&["20.9.0.1/32", "20.9.0.3/32"], 12)).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("r2's session is reset and back", &daemon, || {
        sessions_established(&lab, "r2", "10.9.2.1") >= 2 && established(&lab, "r2", "10.9.2.1")
    });
    eventually(
        "the new prefix replaces the old one on both",
        &daemon,
        || {
            ["r1", "r2"].iter().all(|r| {
                has_route(&lab, r, "20.9.0.3/32")
                    && has_route(&lab, r, "20.9.0.1/32")
                    && !has_route(&lab, r, "20.9.0.2/32")
            })
        },
    );
    let r1 = frr_neighbor(&lab, "r1", "10.9.1.1");
    assert_eq!(r1["bgpState"], "Established", "{r1}");
    assert_eq!(
        r1["connectionsEstablished"], 1,
        "r1's session was not touched: {r1}"
    );
    assert_eq!(
        r1["connectionsDropped"], 0,
        "r1's session was not touched: {r1}"
    );

    // A file that does not load changes nothing.
    std::fs::write(&toml, "this is not [toml").unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("the bad file is logged", &daemon, || {
        daemon.log().contains("keeping the running configuration")
    });
    assert!(established(&lab, "r1", "10.9.1.1") && established(&lab, "r2", "10.9.2.1"));
    assert!(has_route(&lab, "r1", "20.9.0.3/32"));

    daemon.signal(nix::sys::signal::Signal::SIGUSR1);
    eventually("the status dump", &daemon, || {
        let l = daemon.log();
        l.contains("status: neighbor 10.9.1.0 (r1) AS 65001 Established")
            && l.contains("status: originating 20.9.0.1/32, 20.9.0.3/32")
    });

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = daemon.wait_exit().expect("contiv-bgpd exits on SIGTERM");
    assert!(status.success(), "{status}\n{}", daemon.log());
    // Both routers were told: a Cease, not a hold timer expiry.
    for (r, peer) in [("r1", "10.9.1.1"), ("r2", "10.9.2.1")] {
        let n = frr_neighbor(&lab, r, peer);
        assert_ne!(n["bgpState"], "Established", "{n}");
        let why = format!(
            "{} {}",
            n["lastResetDueTo"].as_str().unwrap_or_default(),
            n["lastNotificationReason"].as_str().unwrap_or_default()
        );
        assert!(why.contains("Cease"), "{r}: {n}");
    }
}

#[test]
fn contiv_bgpd_check_reports_problems() {
    let exe = bin("contiv-bgpd");
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bgp/speaker/examples/contiv-bgpd.toml");
    let out = Command::new(&exe)
        .arg("-c")
        .arg(&example)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("valid: AS 65201"), "{stdout}");

    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(
        &bad,
        "originate = [\"20.1.1.1/24\"]\n[global]\nasn = 65201\nrouter_id = \"10.0.0.1\"\n\
         [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 65001\nhold_time = 2\n",
    )
    .unwrap();
    let out = Command::new(&exe)
        .arg("-c")
        .arg(&bad)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout
            .contains("error: neighbor 10.0.0.2: hold_time: 2 is neither 0 nor at least 3 seconds"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: originate: originate: 20.1.1.1/24 has host bits set"),
        "{stdout}"
    );
    // Running with it fails the same way, before anything starts.
    let out = Command::new(&exe).arg("-c").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
