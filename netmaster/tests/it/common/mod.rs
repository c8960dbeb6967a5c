//! A real etcd for integration tests: members started on free loopback ports in
//! temporary data directories, killed (by their pid) and removed when dropped; and
//! ([`nm`]) a netmaster on the embedded store with a small JSON client.

#![allow(dead_code)]

pub mod nm;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One etcd member.
pub struct Etcd {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:port`, or `https://127.0.0.1:port` for a TLS member.
    pub endpoint: String,
    /// etcdctl's flags to reach the member (certificates, user).
    ctl: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a single member serves its clients.
#[derive(Default)]
pub struct Serve {
    /// `https` or `http` (default).
    pub scheme: &'static str,
    /// Extra etcd flags (certificates, `--client-cert-auth`, ...).
    pub args: Vec<String>,
    /// etcdctl flags for the health check (`--cacert`, `--cert`, `--key`).
    pub ctl: Vec<String>,
}

impl Etcd {
    /// Starts a single-member cluster and waits until it answers.
    pub fn start() -> Etcd {
        Etcd::cluster(1).pop().unwrap()
    }

    /// Starts a single member serving its clients as `serve` says.
    pub fn start_serving(serve: Serve) -> Etcd {
        Etcd::launch(1, serve).pop().unwrap()
    }

    /// Starts an `n`-member cluster on loopback and waits until every member answers.
    pub fn cluster(n: usize) -> Vec<Etcd> {
        Etcd::launch(n, Serve::default())
    }

    fn launch(n: usize, serve: Serve) -> Vec<Etcd> {
        let scheme = if serve.scheme.is_empty() {
            "http"
        } else {
            serve.scheme
        };
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let token = format!("t{}-{}", std::process::id(), ports[0].0);
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Etcd> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let dir = tempfile::tempdir().unwrap();
                let hostport = format!("127.0.0.1:{client}");
                let url = format!("{scheme}://{hostport}");
                let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
                let child = Command::new("etcd")
                    .arg(format!("--name=m{i}"))
                    .arg("--data-dir")
                    .arg(dir.path().join("data"))
                    .arg(format!("--listen-client-urls={url}"))
                    .arg(format!("--advertise-client-urls={url}"))
                    .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                    .arg(format!(
                        "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                    ))
                    .arg(format!("--initial-cluster={initial}"))
                    .arg(format!("--initial-cluster-token={token}"))
                    .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                    .args(&serve.args)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("etcd is installed (scripts/install-deps.sh)");
                Etcd {
                    child: Some(child),
                    _dir: dir,
                    endpoint: if scheme == "http" { hostport } else { url },
                    ctl: serve.ctl.clone(),
                }
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for m in &mut members {
            while !m.healthy() {
                if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!(
                        "etcd {} exited ({status}); its log:\n{}",
                        m.endpoint,
                        std::fs::read_to_string(m._dir.path().join("etcd.log")).unwrap_or_default()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd {} did not become healthy; its log:\n{}",
                    m.endpoint,
                    std::fs::read_to_string(m._dir.path().join("etcd.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        members
    }

    /// Runs etcdctl against this member (with its certificates) and returns its output,
    /// panicking when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--dial-timeout=2s"])
            .args(&self.ctl)
            .args(args)
            .output()
            .expect("etcdctl is installed");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the member answers a health check.
    pub fn healthy(&self) -> bool {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.endpoint,
                "--dial-timeout=1s",
                "endpoint",
                "health",
            ])
            .args(&self.ctl)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Kills the member (SIGKILL: a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Client endpoints of a cluster.
pub fn endpoints(members: &[Etcd]) -> Vec<String> {
    members.iter().map(|m| m.endpoint.clone()).collect()
}
