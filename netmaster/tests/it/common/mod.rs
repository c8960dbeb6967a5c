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
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// Starts a single-member cluster and waits until it answers.
    pub fn start() -> Etcd {
        Etcd::cluster(1).pop().unwrap()
    }

    /// Starts an `n`-member cluster on loopback and waits until every member answers.
    pub fn cluster(n: usize) -> Vec<Etcd> {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let token = format!("t{}-{}", std::process::id(), ports[0].0);
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let members: Vec<Etcd> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let dir = tempfile::tempdir().unwrap();
                let endpoint = format!("127.0.0.1:{client}");
                let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
                let child = Command::new("etcd")
                    .arg(format!("--name=m{i}"))
                    .arg("--data-dir")
                    .arg(dir.path().join("data"))
                    .arg(format!("--listen-client-urls=http://{endpoint}"))
                    .arg(format!("--advertise-client-urls=http://{endpoint}"))
                    .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                    .arg(format!(
                        "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                    ))
                    .arg(format!("--initial-cluster={initial}"))
                    .arg(format!("--initial-cluster-token={token}"))
                    .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("etcd is installed (scripts/install-deps.sh)");
                Etcd {
                    child: Some(child),
                    _dir: dir,
                    endpoint,
                }
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for m in &members {
            while !m.healthy() {
                assert!(
                    Instant::now() < deadline,
                    "etcd {} did not become healthy",
                    m.endpoint
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        members
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
