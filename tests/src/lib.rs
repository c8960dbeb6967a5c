//! End-to-end tests of contiv-rs on the fabrics in `topologies/`.
//!
//! The tests live in `tests/tests/`; this library holds what they share: where the
//! topologies are and how a test decides whether it may create namespaces.

use std::path::PathBuf;

pub mod cluster;
pub mod docker;
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
