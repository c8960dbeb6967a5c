//! Running our BGP speaker inside a lab node in tests: a thread in the node's network
//! namespace with a runtime of its own, and waiting on what the speaker learns.

use std::sync::Arc;
use std::time::Duration;

use bgp_speaker::driver::{Routes, Speaker};

/// How long a test waits for the speaker.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `f` on a thread inside the node's network namespace (sockets it opens live
/// there) and returns what it returns.
pub fn in_node<T: Send>(lab: &containerlab::Lab, node: &str, f: impl FnOnce() -> T + Send) -> T {
    let ns = format!("/run/netns/{}", lab.namespace(node).expect("node"));
    std::thread::scope(|s| {
        s.spawn(move || {
            let fd = std::fs::File::open(&ns).expect("namespace file");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("the node thread")
    })
}

/// A current-thread runtime for the node thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits until the speaker's learned routes satisfy `f` (panics with them after
/// [`DEADLINE`]).
pub async fn wait_routes(s: &Speaker, what: &str, f: impl Fn(&Routes) -> bool) -> Arc<Routes> {
    let mut rx = s.routes();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let r = rx.borrow_and_update().clone();
            if f(&r) {
                return r;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{what}: routes now {:?}; neighbors {:?}",
            **s.routes().borrow(),
            s.neighbors()
        )
    })
}

/// Polls a router command (`lab.exec_ok`) until its output satisfies `f`; returns it.
pub async fn wait_router(
    lab: &containerlab::Lab,
    node: &str,
    cmd: &str,
    f: impl Fn(&str) -> bool,
) -> String {
    let start = std::time::Instant::now();
    loop {
        let out = lab.exec_ok(node, cmd).unwrap_or_default();
        if f(&out) {
            return out;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{node}: `{cmd}` never satisfied; last output:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
