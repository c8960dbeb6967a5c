//! Helpers for tests that create namespaces (here and in the end-to-end test crate).

/// Privileged tests need root (namespaces, veths, routing daemons). As root they run;
/// otherwise they say so and pass, unless `CONTIV_REQUIRE_ROOT_TESTS=1` (set by
/// `make test`), which turns a missing privilege into a failure.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CONTIV_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("{test}: needs root, and CONTIV_REQUIRE_ROOT_TESTS=1");
    }
    eprintln!("{test}: skipped, needs root");
    false
}
