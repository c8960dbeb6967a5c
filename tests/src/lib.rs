//! End-to-end tests of contiv-rs on the fabrics in `topologies/`.
//!
//! The tests live in `tests/tests/e2e/` (one test binary); this library holds what they
//! share: where the topologies are and how a test decides whether it may create namespaces.

use std::path::PathBuf;

pub mod cluster;
pub mod docker;
pub mod probe;
pub mod speaker;

/// The repository's `topologies/` directory.
pub fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

/// The topology file of a named fabric (`topologies/<name>/<name>.clab.yml`).
pub fn topology(name: &str) -> PathBuf {
    topologies_dir().join(name).join(format!("{name}.clab.yml"))
}

pub use containerlab::testing::require_root;

/// A fabric from `topologies/` under a lab name of its own (`<fabric>-<tag>-<pid>`), so
/// tests running at the same time never share namespaces. Bound files still resolve
/// relative to the original topology file.
pub fn fabric_lab(fabric: &str, tag: &str) -> containerlab::Lab {
    let file = topology(fabric);
    let text = std::fs::read_to_string(&file).expect("topology file");
    let name = format!("{fabric}-{tag}-{}", std::process::id());
    let renamed = text.replacen(
        &format!("\nname: {fabric}\n"),
        &format!("\nname: {name}\n"),
        1,
    );
    assert_ne!(
        renamed,
        text,
        "{}: no `name: {fabric}` line",
        file.display()
    );
    let topo = containerlab::Topology::parse(&renamed, &file).expect("topology parses");
    containerlab::Lab::new(topo, &containerlab::plan::default_lab_root()).expect("lab plans")
}

/// The label that marks a topology node as a Contiv host (where netplugin runs).
pub const HOST_ROLE: (&str, &str) = ("contiv.io/role", "host");

/// The nodes of a lab labelled as Contiv hosts ([`HOST_ROLE`]).
pub fn host_nodes(lab: &containerlab::Lab) -> Vec<String> {
    lab.topology()
        .nodes
        .iter()
        .filter(|n| n.labels.get(HOST_ROLE.0).map(String::as_str) == Some(HOST_ROLE.1))
        .map(|n| n.name.clone())
        .collect()
}

/// The routes of a lab node that the kernel did not make itself (anything but
/// `proto kernel`), IPv4 and IPv6, every table, one `ip route` line each.
pub fn non_kernel_routes(lab: &containerlab::Lab, node: &str) -> Vec<String> {
    ["-4", "-6"]
        .iter()
        .flat_map(|family| {
            let out = lab
                .exec_ok(node, &format!("ip {family} route show table all"))
                .unwrap_or_else(|e| panic!("{node}: ip route: {e}"));
            out.lines()
                .filter(|l| !l.contains("proto kernel") && !l.trim().is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Gives every host of a lab (without an agent) a static default route over all its
/// /31 links, ECMP when it has several: what an operator would do to ping across a
/// fabric with no netplugin running. The topologies give hosts no route of their own, so
/// that nothing the lab installs competes with the routes netplugin learns; lab-only
/// tests call this instead.
pub fn add_static_host_defaults(lab: &containerlab::Lab) {
    for host in host_nodes(lab) {
        let out = lab
            .exec_ok(&host, "ip -j -4 addr show")
            .unwrap_or_else(|e| panic!("{host}: ip addr: {e}"));
        let links: serde_json::Value = serde_json::from_str(&out).expect("ip -j addr is JSON");
        let mut hops = Vec::new();
        for link in links.as_array().into_iter().flatten() {
            let dev = link["ifname"].as_str().unwrap_or_default();
            for a in link["addr_info"].as_array().into_iter().flatten() {
                let (Some(local), Some(31)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
                    continue;
                };
                let local: std::net::Ipv4Addr = local.parse().expect("an IPv4 address");
                let peer = std::net::Ipv4Addr::from(u32::from(local) ^ 1);
                hops.push(format!("nexthop via {peer} dev {dev}"));
            }
        }
        assert!(!hops.is_empty(), "{host}: no /31 link to route through");
        lab.exec_ok(&host, &format!("ip route add default {}", hops.join(" ")))
            .unwrap_or_else(|e| panic!("{host}: static default: {e}"));
    }
}

/// Number of network interfaces in the machine's own namespace (a lab must not change it).
pub fn root_link_count() -> usize {
    std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

/// Pids of every process a deployed lab runs (read before destroying it).
pub fn lab_pids(lab: &containerlab::Lab) -> Vec<i32> {
    lab.inspect()
        .expect("inspect")
        .into_iter()
        .flat_map(|n| n.pids)
        .collect()
}

/// Asserts that nothing of a destroyed lab is left: no namespace, no process, no state.
pub fn assert_gone(lab: &containerlab::Lab, pids: &[i32]) {
    for ns in lab.plan().namespaces() {
        assert!(
            !std::path::Path::new("/run/netns").join(&ns).exists(),
            "namespace {ns} survived destroy"
        );
    }
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let zombie_or_gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        assert!(
            zombie_or_gone,
            "process {pid} ({}) survived destroy",
            comm.trim()
        );
    }
    assert!(
        !lab.plan().lab_dir.exists(),
        "lab directory survived destroy"
    );
}
