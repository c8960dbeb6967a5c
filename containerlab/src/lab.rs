//! The driver: executes a [`Plan`] on this machine and undoes it.
//!
//! Deploy order: refuse if anything of the lab exists already; write the state file
//! listing every namespace; create namespaces; create all veth pairs in one `ip -batch`;
//! bring links up and set sysctls; start daemons (recording each pid as soon as it
//! exists) and wait until each is ready; run the nodes' `exec` commands. Any failure rolls
//! the whole lab back before the error is returned.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::daemon::{DaemonProcess, Ready};
use crate::error::{Error, Result};
use crate::plan::{NodePlan, Plan};
use crate::proc::{self, ProcId};
use crate::sessions::{self, Session};
use crate::state::{DaemonRecord, LabState, Phase};
use crate::topology::Topology;

/// How long a daemon may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long daemons get to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A topology bound to a lab root: the handle for every verb.
#[derive(Debug, Clone)]
pub struct Lab {
    topology: Topology,
    plan: Plan,
}

/// Options of [`Lab::deploy`].
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Destroy an existing deployment of the same lab first.
    pub reconfigure: bool,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub lab: String,
    pub nodes: usize,
    pub links: usize,
    pub daemons: usize,
    pub elapsed: Duration,
}

/// What a destroy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestroyReport {
    pub namespaces_removed: usize,
    pub processes_stopped: usize,
    pub elapsed: Duration,
}

/// One node as `inspect` shows it (containerlab's field names where they exist).
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub lab_name: String,
    /// The namespace (containerlab: container) name.
    pub name: String,
    pub node: String,
    pub kind: String,
    pub image: String,
    pub daemon: String,
    /// `running`, `degraded` (a daemon is gone) or `absent`.
    pub state: String,
    pub ipv4_address: Vec<String>,
    pub ipv6_address: Vec<String>,
    pub pids: Vec<i32>,
}

impl Lab {
    /// Reads a topology file and plans it under `lab_root`.
    pub fn load(file: impl AsRef<Path>, lab_root: &Path) -> Result<Lab> {
        Lab::new(Topology::from_file(file)?, lab_root)
    }

    /// Plans a parsed topology under `lab_root`.
    pub fn new(topology: Topology, lab_root: &Path) -> Result<Lab> {
        let plan = Plan::new(&topology, lab_root)?;
        Ok(Lab { topology, plan })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn name(&self) -> &str {
        &self.topology.name
    }

    /// The namespace of a node.
    pub fn namespace(&self, node: &str) -> Result<String> {
        Ok(self.node_plan(node)?.namespace.clone())
    }

    fn node_plan(&self, node: &str) -> Result<&NodePlan> {
        self.plan.node(node).ok_or_else(|| Error::UnknownNode {
            lab: self.topology.name.clone(),
            node: node.to_string(),
            known: self
                .plan
                .nodes
                .iter()
                .map(|n| n.node.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    fn load_state(&self) -> Result<Option<LabState>> {
        LabState::load(&self.plan.state_file())
    }

    /// Deploys the lab; on failure nothing of it is left behind.
    pub fn deploy(&self, opts: &DeployOptions) -> Result<DeployReport> {
        let start = Instant::now();
        if opts.reconfigure {
            self.destroy()?;
        }
        self.preflight()?;
        self.prepare_files()?;
        let mut state = LabState {
            lab: self.topology.name.clone(),
            topology: self.topology.file.clone(),
            phase: Phase::Deploying,
            namespaces: self.plan.namespaces(),
            daemons: Vec::new(),
        };
        state.save(&self.plan.state_file())?;
        match self.bring_up(&mut state) {
            Ok(()) => {
                state.phase = Phase::Deployed;
                state.save(&self.plan.state_file())?;
                Ok(DeployReport {
                    lab: self.topology.name.clone(),
                    nodes: self.plan.nodes.len(),
                    links: self.plan.links.len(),
                    daemons: state.daemons.len(),
                    elapsed: start.elapsed(),
                })
            }
            Err(e) => {
                // Roll back; the deploy error is the one worth reporting.
                let _ = self.destroy();
                Err(e)
            }
        }
    }

    /// Deploys and returns a guard that destroys the lab when dropped (for tests).
    pub fn deploy_guarded(self, opts: &DeployOptions) -> Result<LabGuard> {
        self.deploy(opts)?;
        Ok(LabGuard(self))
    }

    /// Refuses to deploy over an existing lab or without the daemons installed.
    fn preflight(&self) -> Result<()> {
        let lab = self.topology.name.clone();
        if let Some(state) = self.load_state()? {
            let detail = match state.phase {
                Phase::Deployed => "its state file exists".to_string(),
                Phase::Deploying => "an earlier deploy did not finish".to_string(),
            };
            return Err(Error::AlreadyDeployed { lab, detail });
        }
        for ns in self.plan.namespaces() {
            if proc::netns_exists(&ns) {
                return Err(Error::AlreadyDeployed {
                    lab,
                    detail: format!("namespace {ns} exists"),
                });
            }
        }
        for node in &self.plan.nodes {
            for d in &node.daemons {
                if !Path::new(&d.argv[0]).exists() {
                    return Err(Error::DaemonFailed {
                        node: node.node.clone(),
                        daemon: d.name.clone(),
                        reason: format!(
                            "{} is not installed; scripts/install-deps.sh installs it",
                            d.argv[0]
                        ),
                        log: d.log.clone(),
                        tail: String::new(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates the lab directory, instance directories, wrapper scripts and FIFOs.
    fn prepare_files(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for node in &self.plan.nodes {
            for dir in std::iter::once(&node.dir)
                .chain(&node.dirs)
                .chain(std::iter::once(&node.dir.join("bin")))
            {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            for w in &node.wrappers {
                std::fs::write(&w.path, &w.script).map_err(|e| Error::io(&w.path, e))?;
                std::fs::set_permissions(&w.path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| Error::io(&w.path, e))?;
            }
            for f in &node.fifos {
                nix::unistd::mkfifo(f, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| Error::io(f, e.into()))?;
            }
        }
        Ok(())
    }

    fn bring_up(&self, state: &mut LabState) -> Result<()> {
        let plan = &self.plan;
        for ns in plan.namespaces() {
            proc::ip(&format!("creating namespace {ns}"), &["netns", "add", &ns])?;
        }
        if !plan.links.is_empty() {
            proc::ip_batch("creating links", None, &plan.link_batch())?;
        }
        for node in &plan.nodes {
            let ns = &node.namespace;
            proc::ip_batch(
                &format!("node '{}'", node.node),
                Some(ns),
                &plan.up_batch(ns),
            )?;
            if !node.sysctls.is_empty() {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "sysctl", "-qw"]);
                for (k, v) in &node.sysctls {
                    cmd.arg(format!("{k}={v}"));
                }
                proc::run(&format!("node '{}' sysctls", node.node), &mut cmd, None)?;
            }
        }
        // Daemons: start each node's in order, gating on those that must be up first.
        let mut pending: Vec<(&NodePlan, &DaemonProcess, ProcId, Instant)> = Vec::new();
        for node in &plan.nodes {
            for d in &node.daemons {
                let id = proc::spawn_in_ns(&node.namespace, &d.argv, &d.env, &d.cwd, &d.log)?;
                state.daemons.push(DaemonRecord {
                    node: node.node.clone(),
                    name: d.name.clone(),
                    id: id.clone(),
                });
                state.save(&plan.state_file())?;
                let mut started = (node, d, id, Instant::now());
                if d.gate {
                    wait_ready(
                        std::slice::from_mut(&mut started),
                        state,
                        &plan.state_file(),
                    )?;
                } else {
                    pending.push(started);
                }
            }
        }
        wait_ready(&mut pending, state, &plan.state_file())?;
        for node in &plan.nodes {
            for cmd in &node.exec {
                self.run_exec(node, cmd)?;
            }
        }
        Ok(())
    }

    /// Runs one of a node's `exec` commands; output goes to `<node dir>/exec.log` (not a
    /// pipe, so a command that leaves a background process behind cannot hang us).
    fn run_exec(&self, node: &NodePlan, cmd: &str) -> Result<()> {
        let log = node.dir.join("exec.log");
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let status = self
            .command(&node.node, cmd)?
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| Error::io(&log, e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Command {
                context: format!("node '{}' exec", node.node),
                command: cmd.to_string(),
                stderr: format!("{status}; {}", proc::tail(&log, 5)),
            })
        }
    }

    /// A command that runs `cmd` with `sh -c` inside a node's namespace, with the node's
    /// environment (its `env` and a PATH on which `vtysh`/`birdc` reach its daemon).
    pub fn command(&self, node: &str, cmd: &str) -> Result<Command> {
        let n = self.node_plan(node)?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &n.namespace, "sh", "-c", cmd])
            .envs(&n.env)
            .current_dir(&n.dir);
        Ok(c)
    }

    /// Runs `cmd` in a node and returns its output (exit status included).
    pub fn exec(&self, node: &str, cmd: &str) -> Result<std::process::Output> {
        if !proc::netns_exists(&self.namespace(node)?) {
            return Err(Error::NotDeployed {
                lab: self.topology.name.clone(),
            });
        }
        let mut c = self.command(node, cmd)?;
        c.stdin(Stdio::null());
        c.output().map_err(|e| Error::Command {
            context: format!("node '{node}'"),
            command: cmd.to_string(),
            stderr: e.to_string(),
        })
    }

    /// Like [`Lab::exec`] but fails unless the command succeeds; returns stdout.
    pub fn exec_ok(&self, node: &str, cmd: &str) -> Result<String> {
        let out = self.exec(node, cmd)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Command {
                context: format!("node '{node}'"),
                command: cmd.to_string(),
                stderr: format!(
                    "{}; {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            })
        }
    }

    /// Tears the lab down: stops every recorded process and everything else running in
    /// the lab's namespaces, deletes the namespaces (and with them the veths) and the lab
    /// directory. Idempotent; works from the state file after a crashed deploy.
    pub fn destroy(&self) -> Result<DestroyReport> {
        let start = Instant::now();
        let state = self.load_state()?;
        let mut namespaces: BTreeSet<String> = self.plan.namespaces().into_iter().collect();
        let mut daemons = Vec::new();
        if let Some(s) = &state {
            namespaces.extend(s.namespaces.iter().cloned());
            daemons = s.daemons.clone();
        }
        let mut report = teardown(&namespaces, &daemons, &self.plan.lab_dir)?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// The status of every node.
    pub fn inspect(&self) -> Result<Vec<NodeStatus>> {
        let state = self.load_state()?;
        let mut out = Vec::new();
        for (node, np) in self.topology.nodes.iter().zip(&self.plan.nodes) {
            let exists = proc::netns_exists(&np.namespace);
            let recorded: Vec<&DaemonRecord> = state
                .iter()
                .flat_map(|s| s.daemons.iter())
                .filter(|d| d.node == node.name)
                .collect();
            let pids: Vec<i32> = recorded
                .iter()
                .filter(|d| d.id.alive())
                .map(|d| d.id.pid)
                .collect();
            let status = if !exists {
                "absent"
            } else if pids.len() < np.daemons.len() {
                "degraded"
            } else {
                "running"
            };
            let (v4, v6) = if exists {
                addresses(&np.namespace)
            } else {
                (Vec::new(), Vec::new())
            };
            out.push(NodeStatus {
                lab_name: self.topology.name.clone(),
                name: np.namespace.clone(),
                node: node.name.clone(),
                kind: node.kind.clone(),
                image: node.image.clone(),
                daemon: node.daemon.to_string(),
                state: status.to_string(),
                ipv4_address: v4,
                ipv6_address: v6,
                pids,
            });
        }
        Ok(out)
    }

    /// The BGP sessions of every router node, as the daemons report them.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let mut out = Vec::new();
        for node in &self.plan.nodes {
            out.extend(sessions::query(node)?);
        }
        Ok(out)
    }

    /// Waits until every router node reports at least one session and all sessions are
    /// Established; returns them.
    pub fn wait_established(&self, timeout: Duration) -> Result<Vec<Session>> {
        let start = Instant::now();
        let routers: Vec<&str> = self
            .plan
            .nodes
            .iter()
            .filter(|n| n.daemon.is_router())
            .map(|n| n.node.as_str())
            .collect();
        let mut last;
        loop {
            match self.sessions() {
                Ok(s) => {
                    let silent: Vec<&str> = routers
                        .iter()
                        .copied()
                        .filter(|r| !s.iter().any(|x| x.node == *r))
                        .collect();
                    let down: Vec<String> = s
                        .iter()
                        .filter(|x| !x.established)
                        .map(|x| format!("{} -> {} is {}", x.node, x.peer, x.state))
                        .collect();
                    if silent.is_empty() && down.is_empty() {
                        return Ok(s);
                    }
                    last = if silent.is_empty() {
                        down.join(", ")
                    } else {
                        format!("no sessions on {}; {}", silent.join(", "), down.join(", "))
                    };
                }
                Err(e) => last = e.to_string(),
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("BGP sessions of lab '{}' ({last})", self.topology.name),
                    seconds: timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Destroys a lab known only by name, from its state file.
pub fn destroy_by_name(lab_root: &Path, name: &str) -> Result<DestroyReport> {
    // The name becomes a path under the lab root: only names a topology could have
    // (no separators, no `..`), so nothing outside the root is read or removed.
    crate::topology::check_name("lab name", name).map_err(Error::BadName)?;
    let start = Instant::now();
    let lab_dir = lab_root.join(name);
    let state = LabState::load(&lab_dir.join("state.json"))?.ok_or_else(|| Error::NotDeployed {
        lab: name.to_string(),
    })?;
    let namespaces: BTreeSet<String> = state.namespaces.iter().cloned().collect();
    let mut report = teardown(&namespaces, &state.daemons, &lab_dir)?;
    report.elapsed = start.elapsed();
    Ok(report)
}

fn teardown(
    namespaces: &BTreeSet<String>,
    daemons: &[DaemonRecord],
    lab_dir: &Path,
) -> Result<DestroyReport> {
    let mut report = DestroyReport::default();
    let recorded: Vec<ProcId> = daemons.iter().map(|d| d.id.clone()).collect();
    report.processes_stopped += recorded.iter().filter(|p| p.alive()).count();
    proc::stop_all(&recorded, STOP_GRACE);
    // Whatever else runs in the lab's namespaces was started by the lab too (exec commands).
    let stray: Vec<ProcId> = namespaces
        .iter()
        .filter(|ns| proc::netns_exists(ns))
        .flat_map(|ns| proc::netns_pids(ns))
        .filter_map(ProcId::of)
        .collect();
    report.processes_stopped += stray.len();
    proc::stop_all(&stray, STOP_GRACE);
    let mut first_error = None;
    for ns in namespaces {
        if proc::netns_exists(ns) {
            match proc::ip(&format!("deleting namespace {ns}"), &["netns", "del", ns]) {
                Ok(_) => report.namespaces_removed += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    // FRR leaves a crash-log directory per daemon pid when it does not exit cleanly.
    for d in daemons {
        let dir = PathBuf::from(format!("/var/tmp/frr/{}.{}", d.name, d.id.pid));
        if dir.is_dir() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    match std::fs::remove_dir_all(lab_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(lab_dir, e)),
    }
    Ok(report)
}

/// Polls started daemons until all are ready; a daemon that exits or stays unready past
/// [`READY_TIMEOUT`] fails the deploy with the tail of its log.
fn wait_ready(
    started: &mut [(&NodePlan, &DaemonProcess, ProcId, Instant)],
    state: &mut LabState,
    state_file: &std::path::Path,
) -> Result<()> {
    let mut ready = vec![false; started.len()];
    let mut restarted = vec![false; started.len()];
    loop {
        for (i, (node, d, id, since)) in started.iter_mut().enumerate() {
            if ready[i] {
                continue;
            }
            let fail = |reason: String| Error::DaemonFailed {
                node: node.node.clone(),
                daemon: d.name.clone(),
                reason,
                log: d.log.clone(),
                tail: proc::tail(&d.log, 15),
            };
            if !id.alive() {
                // A daemon that dies before writing a single log line (seen with FRR's
                // bfdd on a loaded machine) gets one more start; a second death, or one
                // that logged why, is the deploy's error.
                if !restarted[i] && proc::tail(&d.log, 1).trim().is_empty() {
                    restarted[i] = true;
                    let new = proc::spawn_in_ns(&node.namespace, &d.argv, &d.env, &d.cwd, &d.log)?;
                    if let Some(r) = state
                        .daemons
                        .iter_mut()
                        .find(|r| r.node == node.node && r.name == d.name)
                    {
                        r.id = new.clone();
                    }
                    state.save(state_file)?;
                    *id = new;
                    *since = Instant::now();
                    continue;
                }
                return Err(fail("it exited".into()));
            }
            ready[i] = match &d.ready {
                Ready::Socket(p) => p.exists(),
                Ready::Alive(t) => since.elapsed() >= *t,
                Ready::Command(argv) => Command::new("ip")
                    .args(["netns", "exec", &node.namespace])
                    .args(argv)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false),
            };
            if !ready[i] && since.elapsed() > READY_TIMEOUT {
                return Err(fail(format!(
                    "not ready after {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Global addresses of every interface but `lo` in a namespace.
fn addresses(ns: &str) -> (Vec<String>, Vec<String>) {
    let Ok(out) = proc::ip("inspect", &["-n", ns, "-j", "addr", "show"]) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
        return (Vec::new(), Vec::new());
    };
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for link in v.as_array().into_iter().flatten() {
        let ifname = link["ifname"].as_str().unwrap_or("?");
        if ifname == "lo" {
            continue;
        }
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if a["scope"].as_str() == Some("link") {
                continue;
            }
            let s = format!(
                "{}/{} ({ifname})",
                a["local"].as_str().unwrap_or("?"),
                a["prefixlen"].as_u64().unwrap_or(0)
            );
            match a["family"].as_str() {
                Some("inet") => v4.push(s),
                Some("inet6") => v6.push(s),
                _ => {}
            }
        }
    }
    (v4, v6)
}

/// A deployed lab that is destroyed when dropped, also when a test panics.
#[derive(Debug)]
pub struct LabGuard(Lab);

impl std::ops::Deref for LabGuard {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("contiv-lab: destroying lab '{}' failed: {e}", self.0.name());
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn destroy_by_name_refuses_paths() {
        let root = std::env::temp_dir().join(format!("clab-names-{}", std::process::id()));
        for bad in ["../etc", "a/b", "/abs", "..", ".hidden", ""] {
            match destroy_by_name(&root, bad) {
                Err(Error::BadName(m)) => assert!(m.contains("lab name"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(matches!(
            destroy_by_name(&root, "fine-name"),
            Err(Error::NotDeployed { .. })
        ));
    }
}
