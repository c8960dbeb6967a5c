//! Scratch network namespaces for the tests that need a kernel: created by the test,
//! deleted on drop (also when the test fails).

use std::path::PathBuf;
use std::process::Command;

/// A namespace `<prefix>-<tag>-<pid>`.
pub struct Ns(pub String);

impl Ns {
    pub fn new(prefix: &str, tag: &str) -> Ns {
        let ns = Ns(format!("{prefix}-{tag}-{}", std::process::id()));
        run(&["ip", "netns", "add", &ns.0]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    /// Runs a shell command inside; whether it succeeded, and its output.
    pub fn exec(&self, cmd: &str) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", cmd])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs a command and asserts that it succeeded.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
