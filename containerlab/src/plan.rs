//! The deployment plan: the concrete namespaces, veth pairs, files and processes a
//! topology becomes. Pure: computing a plan touches nothing, so it is tested without root
//! and the driver in [`crate::lab`] only executes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::daemon::{self, DaemonKind, DaemonProcess, Wrapper};
use crate::error::{Error, Result};
use crate::topology::Topology;

/// Where labs keep their state unless told otherwise.
pub const DEFAULT_LAB_ROOT: &str = "/run/contiv-lab";

/// The environment variable that overrides [`DEFAULT_LAB_ROOT`].
pub const LAB_ROOT_ENV: &str = "CONTIV_LAB_ROOT";

/// The lab root: `$CONTIV_LAB_ROOT`, else [`DEFAULT_LAB_ROOT`].
pub fn default_lab_root() -> PathBuf {
    std::env::var_os(LAB_ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LAB_ROOT))
}

/// Everything a deploy creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lab: String,
    /// `<lab root>/<lab>`: the state file and one directory per node.
    pub lab_dir: PathBuf,
    pub nodes: Vec<NodePlan>,
    pub links: Vec<LinkPlan>,
}

/// One node: its namespace and what runs in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub node: String,
    pub namespace: String,
    pub daemon: DaemonKind,
    /// The instance directory (`<lab dir>/<node>`).
    pub dir: PathBuf,
    /// sysctls set in the namespace before anything starts.
    pub sysctls: Vec<(String, String)>,
    pub dirs: Vec<PathBuf>,
    pub wrappers: Vec<Wrapper>,
    pub fifos: Vec<PathBuf>,
    /// Daemons in start order.
    pub daemons: Vec<DaemonProcess>,
    /// The node's `exec` commands, run with `sh -c` after links and daemons are up.
    pub exec: Vec<String>,
    /// Environment of exec commands: the node's `env` plus a PATH that starts with
    /// the node's wrapper directory.
    pub env: BTreeMap<String, String>,
}

/// One veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    pub a_ns: String,
    pub a_if: String,
    pub a_mac: Option<String>,
    pub b_ns: String,
    pub b_if: String,
    pub b_mac: Option<String>,
    pub mtu: Option<u32>,
}

/// The PATH every command in a node starts from.
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Plan {
    /// Plans the deployment of `topo` under `lab_root`.
    pub fn new(topo: &Topology, lab_root: &Path) -> Result<Plan> {
        let lab_dir = lab_root.join(&topo.name);
        let mut nodes = Vec::with_capacity(topo.nodes.len());
        for node in &topo.nodes {
            let dir = lab_dir.join(&node.name);
            let namespace = topo.namespace(&node.name);
            let setup =
                daemon::setup(node, &dir, &namespace).map_err(|message| Error::Invalid {
                    file: topo.file.clone(),
                    message,
                })?;
            let mut sysctls = Vec::new();
            if node.daemon.is_router() {
                sysctls.push(("net.ipv4.ip_forward".to_string(), "1".to_string()));
                sysctls.push(("net.ipv6.conf.all.forwarding".to_string(), "1".to_string()));
            }
            for (k, v) in &node.sysctls {
                sysctls.retain(|(key, _)| key != k);
                sysctls.push((k.clone(), v.clone()));
            }
            let mut env = node.env.clone();
            let user_path = env.remove("PATH");
            env.insert(
                "PATH".into(),
                format!(
                    "{}:{}",
                    dir.join("bin").display(),
                    user_path.as_deref().unwrap_or(BASE_PATH)
                ),
            );
            nodes.push(NodePlan {
                node: node.name.clone(),
                namespace,
                daemon: node.daemon,
                dir,
                sysctls,
                dirs: setup.dirs,
                wrappers: setup.wrappers,
                fifos: setup.fifos,
                daemons: setup.processes,
                exec: node.exec.clone(),
                env,
            });
        }
        let links = topo
            .links
            .iter()
            .map(|l| LinkPlan {
                a_ns: topo.namespace(&l.a.node),
                a_if: l.a.interface.clone(),
                a_mac: l.a.mac.clone(),
                b_ns: topo.namespace(&l.b.node),
                b_if: l.b.interface.clone(),
                b_mac: l.b.mac.clone(),
                mtu: l.mtu,
            })
            .collect();
        Ok(Plan {
            lab: topo.name.clone(),
            lab_dir,
            nodes,
            links,
        })
    }

    /// The state file of the lab.
    pub fn state_file(&self) -> PathBuf {
        self.lab_dir.join("state.json")
    }

    /// All namespaces of the lab.
    pub fn namespaces(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.namespace.clone()).collect()
    }

    /// The plan of one node.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.node == name)
    }

    /// `ip -batch` lines (run in the machine's namespace) that create every veth pair
    /// directly inside the lab's namespaces: the kernel creates each end in its target
    /// namespace, so nothing ever appears in the machine's own namespace.
    pub fn link_batch(&self) -> String {
        let mut out = String::new();
        for l in &self.links {
            let addr = |mac: &Option<String>| {
                mac.as_ref()
                    .map(|m| format!(" address {m}"))
                    .unwrap_or_default()
            };
            let mtu = l.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
            out.push_str(&format!(
                "link add name {}{}{} netns {} type veth peer name {}{}{} netns {}\n",
                l.a_if,
                addr(&l.a_mac),
                mtu,
                l.a_ns,
                l.b_if,
                addr(&l.b_mac),
                mtu,
                l.b_ns
            ));
        }
        out
    }

    /// `ip -batch` lines run inside `namespace`: `lo` and every link interface up.
    pub fn up_batch(&self, namespace: &str) -> String {
        let mut out = String::from("link set lo up\n");
        for l in &self.links {
            if l.a_ns == namespace {
                out.push_str(&format!("link set {} up\n", l.a_if));
            }
            if l.b_ns == namespace {
                out.push_str(&format!("link set {} up\n", l.b_if));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Ready;

    fn topo(dir: &Path) -> Topology {
        std::fs::write(dir.join("frr.conf"), "hostname r1\n").unwrap();
        std::fs::write(dir.join("bird.conf"), "router id 1.1.1.1;\n").unwrap();
        std::fs::write(dir.join("daemons"), "bgpd=yes\nbfdd=no\nstaticd=yes\n").unwrap();
        let yaml = r#"
name: p1
topology:
  nodes:
    r1:
      kind: linux
      image: quay.io/frrouting/frr:8.4.1
      binds: [frr.conf:/etc/frr/frr.conf, daemons:/etc/frr/daemons]
    r2:
      kind: linux
      image: pierky/bird:2.0.12
      binds: [bird.conf:/etc/bird/bird.conf]
      sysctls: { net.ipv4.ip_forward: 0 }
    h1:
      kind: linux
      image: alpine
      env: { FOO: bar }
      exec: ["ip addr add 10.0.0.1/31 dev eth1"]
  links:
    - endpoints: ["r1:eth1", "h1:eth1"]
    - endpoints: ["r1:eth2", "r2:eth1"]
      mtu: 9000
"#;
        Topology::parse(yaml, &dir.join("p1.clab.yml")).unwrap()
    }

    #[test]
    fn plan_names_and_batches() {
        let d = tempfile::tempdir().unwrap();
        let t = topo(d.path());
        let plan = Plan::new(&t, Path::new("/run/lab-root")).unwrap();
        assert_eq!(plan.lab_dir, Path::new("/run/lab-root/p1"));
        assert_eq!(
            plan.namespaces(),
            vec!["clab-p1-r1", "clab-p1-r2", "clab-p1-h1"]
        );
        assert_eq!(
            plan.link_batch(),
            "link add name eth1 netns clab-p1-r1 type veth peer name eth1 netns clab-p1-h1\n\
             link add name eth2 mtu 9000 netns clab-p1-r1 type veth peer name eth1 mtu 9000 netns clab-p1-r2\n"
        );
        assert_eq!(
            plan.up_batch("clab-p1-r1"),
            "link set lo up\nlink set eth1 up\nlink set eth2 up\n"
        );
        assert_eq!(
            plan.up_batch("clab-p1-h1"),
            "link set lo up\nlink set eth1 up\n"
        );
    }

    #[test]
    fn plan_daemons() {
        let d = tempfile::tempdir().unwrap();
        let t = topo(d.path());
        let plan = Plan::new(&t, Path::new("/run/lab-root")).unwrap();
        let r1 = plan.node("r1").unwrap();
        let names: Vec<_> = r1.daemons.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["zebra", "bgpd", "staticd"]);
        assert!(r1.daemons[0].gate, "zebra gates the other FRR daemons");
        assert_eq!(
            r1.daemons[1].ready,
            Ready::Socket(PathBuf::from("/run/lab-root/p1/r1/run/bgpd.vty"))
        );
        assert!(
            r1.daemons[1]
                .argv
                .windows(2)
                .any(|w| w[0] == "-z" && w[1] == "/run/lab-root/p1/r1/run/zserv.api")
        );
        assert_eq!(
            r1.sysctls,
            vec![
                ("net.ipv4.ip_forward".to_string(), "1".to_string()),
                ("net.ipv6.conf.all.forwarding".to_string(), "1".to_string())
            ]
        );
        // The node's own sysctls win over the router defaults.
        let r2 = plan.node("r2").unwrap();
        assert!(
            r2.sysctls
                .contains(&("net.ipv4.ip_forward".into(), "0".into()))
        );
        assert_eq!(r2.daemons[0].argv[0], "/usr/sbin/bird");
        assert_eq!(
            r2.wrappers[0].path,
            Path::new("/run/lab-root/p1/r2/bin/birdc")
        );
        let h1 = plan.node("h1").unwrap();
        assert!(h1.daemons.is_empty() && h1.sysctls.is_empty());
        assert_eq!(h1.env["FOO"], "bar");
        assert!(h1.env["PATH"].starts_with("/run/lab-root/p1/h1/bin:"));
    }
}
