//! End-to-end tests of contiv-rs on the fabrics in `topologies/`.
//!
//! The tests live in `tests/tests/`; this library holds what they share: where the
//! topologies are and how a test decides whether it may create namespaces.

use std::path::PathBuf;

/// The repository's `topologies/` directory.
pub fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

/// The topology file of a named fabric (`topologies/<name>/<name>.clab.yml`).
pub fn topology(name: &str) -> PathBuf {
    topologies_dir().join(name).join(format!("{name}.clab.yml"))
}

/// Privileged tests need root (namespaces, veths, routing daemons). As root they run;
/// otherwise they say so and pass, unless `CONTIV_REQUIRE_ROOT_TESTS=1` (set by
/// `make test`), which turns a missing privilege into a failure.
pub fn require_root(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root {
        return true;
    }
    if std::env::var("CONTIV_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("{test}: needs root, and CONTIV_REQUIRE_ROOT_TESTS=1");
    }
    eprintln!("{test}: skipped, needs root");
    false
}
