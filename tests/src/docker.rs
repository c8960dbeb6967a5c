//! A private Docker engine inside a lab network namespace, for end-to-end tests.
//!
//! [`Dockerd::start`] runs one Debian `dockerd` (20.10) whose network namespace is a given
//! one (`/run/netns/<name>`), with everything else of its own under a private root
//! directory:
//!
//! ```text
//! <root>/data/          --data-root (images, containers, the managed containerd's root)
//! <root>/exec/          --exec-root (managed containerd socket and pid file, sandbox netns)
//! <root>/plugins/       what this daemon sees as /run/docker/plugins
//! <root>/etc-docker/    what this daemon sees as /etc/docker (key.json, plugins/*.spec)
//! <root>/docker.sock    -H unix://...
//! <root>/docker.pid     --pidfile
//! <root>/daemon.json    --config-file ({}; the machine's daemon.json is never read)
//! <root>/dockerd.log    stdout and stderr of dockerd (and of its containerd)
//! ```
//!
//! Docker looks for legacy plugins only in the hard-coded `/run/docker/plugins`, which
//! every dockerd on a machine shares. So the daemon runs in a mount namespace of its own
//! (`unshare --mount --propagation slave`), where `<root>/plugins` is bind-mounted over
//! `/run/docker/plugins` before `dockerd` is exec'd: a plugin serving
//! `<root>/plugins/<name>.sock` is seen by this daemon only. The same mount namespace
//! holds every mount the daemon and its containerd make (overlay layers, sandbox netns),
//! so none of them shows up in the machine's own mount table.
//!
//! The daemon runs with `--bridge=none --iptables=false --ip6tables=false --ip-masq=false`
//! (a second daemon with a bridge would delete the first one's `docker0`; see
//! `docs/runtimes.md`), lets dockerd manage its own containerd under
//! the exec root, and `--shutdown-timeout 1`.
//!
//! Dropping a [`Dockerd`] removes its containers, stops dockerd with SIGTERM (and
//! SIGKILL if it does not exit), then kills whatever is left of it: any process in its
//! mount namespace (containerd, shims) and their descendants (container processes).
//! Finally it lazily unmounts anything still mounted under the root (in the machine's
//! namespace) and removes the root. This runs on panics too, so a failing test leaves
//! nothing behind.
//!
//! Side effects outside the root, all of which a plain dockerd has too: the directories
//! `/run/docker/plugins` and `/etc/docker` are created when missing (they are the
//! mount points of the private binds), `/opt/containerd` (made by the managed
//! containerd), shim sockets under `/run/containerd/s/`, and container cgroups under
//! `docker/` (removed with the containers; the empty `docker` parents stay).
//!
//! When the kernel has AppArmor on but `apparmor_parser` is missing (docker.io installed
//! without its Recommends), dockerd could not load its `docker-default` profile and
//! every container would fail to start; the daemon's mount namespace then gets a file
//! saying `N` over `/sys/module/apparmor/parameters/enabled`, so it runs unconfined.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use containerlab::proc::ProcId;
use nix::sys::signal::Signal;

/// The Docker CLI that matches Debian's 20.10 daemon (a newer CLI may sit earlier in PATH
/// and fails on some flags against API 1.41).
pub const DOCKER_CLI: &str = "/usr/bin/docker";

/// The directory where every dockerd looks for legacy plugin sockets.
pub const PLUGINS_DIR: &str = "/run/docker/plugins";

/// How long the daemon may take to answer after being spawned (generous: the machines
/// have 2 busy cores).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a single docker CLI call may take before it is killed.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a docker CLI call made while cleaning up may take.
const CLEANUP_CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// How long dockerd gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Longest path a unix socket address can hold (`sun_path` is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// The busybox applets linked into the imported image's `/bin` when `busybox --list`
/// does not answer (it does for Debian's busybox-static).
const FALLBACK_APPLETS: &[&str] = &[
    "sh",
    "ash",
    "true",
    "false",
    "sleep",
    "cat",
    "echo",
    "ls",
    "ip",
    "ping",
    "ping6",
    "ifconfig",
    "route",
    "nc",
    "wget",
    "httpd",
    "nslookup",
    "hostname",
    "ps",
    "grep",
    "awk",
    "sed",
    "mkdir",
    "rm",
    "env",
    "id",
    "udhcpc",
    "arp",
    "netstat",
    "traceroute",
    "touch",
    "test",
    "kill",
];

/// What went wrong starting or driving a [`Dockerd`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Result of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// One running dockerd in a network namespace, with a private root, plugin directory and
/// mount namespace. Stopped and cleaned up on drop.
#[derive(Debug)]
pub struct Dockerd {
    root: PathBuf,
    netns: PathBuf,
    /// The spawned process; after the exec chain (nsenter, unshare, sh) it is dockerd.
    child: Option<Child>,
    dockerd: Option<ProcId>,
    /// Inode of dockerd's mount namespace (differs from ours; checked at start).
    mnt_ns: Option<u64>,
    /// That namespace, held open: while we hold it its inode number cannot be given to
    /// another namespace (every `ip netns exec` makes one), so the teardown never takes
    /// a stranger's process for one of the engine's.
    mnt_hold: Option<std::fs::File>,
    cleaned: bool,
}

impl Dockerd {
    /// Starts a dockerd in network namespace `netns` (a file such as
    /// `/run/netns/clab-quickstart-host1`) with all its state under `root`, which must be
    /// missing or an empty directory and is removed again on drop. Returns once the
    /// daemon answers `docker version`; on failure the error carries the log tail and
    /// everything started so far is cleaned up.
    pub fn start(netns: &Path, root: &Path) -> Result<Dockerd> {
        Self::start_with_config(netns, root, "{}")
    }

    /// [`Dockerd::start`] with the given `daemon.json` (e.g. `{"dns": ["10.1.1.1"]}`).
    pub fn start_with_config(netns: &Path, root: &Path, daemon_json: &str) -> Result<Dockerd> {
        if !netns.exists() {
            return err(format!(
                "network namespace {} does not exist",
                netns.display()
            ));
        }
        let netns_ino = std::fs::metadata(netns)
            .map_err(|e| Error(format!("{}: {e}", netns.display())))?
            .ino();
        let dockerd_bin = find_in_path("dockerd").ok_or_else(|| {
            Error("dockerd not found in PATH (run scripts/install-deps.sh)".into())
        })?;
        if !Path::new(DOCKER_CLI).exists() {
            return err(format!(
                "{DOCKER_CLI} not found (run scripts/install-deps.sh)"
            ));
        }
        let root = prepare_root(root)?;
        // Sockets under the root must fit in sun_path (the managed containerd's ttrpc
        // socket is the longest).
        let longest = root.join("exec/containerd/containerd.sock.ttrpc");
        if longest.as_os_str().len() > SUN_PATH_MAX {
            let _ = std::fs::remove_dir_all(&root);
            return err(format!(
                "root {} is too long: {} exceeds the {SUN_PATH_MAX}-byte unix socket limit",
                root.display(),
                longest.display()
            ));
        }
        let child = match spawn_dockerd(netns, &root, &dockerd_bin, daemon_json) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                return Err(e);
            }
        };
        let mut d = Dockerd {
            root,
            netns: netns.to_path_buf(),
            dockerd: ProcId::of(child.id() as i32),
            child: Some(child),
            mnt_ns: None,
            mnt_hold: None,
            cleaned: false,
        };
        // On error `d` is dropped here, which stops whatever did start.
        d.wait_ready(netns_ino)?;
        Ok(d)
    }

    /// Waits until the daemon answers, then records and checks its namespaces.
    fn wait_ready(&mut self, netns_ino: u64) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let sock = self.socket();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return err(format!(
                    "dockerd in {} exited during start ({status}); log tail:\n{}",
                    self.netns.display(),
                    self.log_tail(30)
                ));
            }
            if sock.exists() {
                let out = self.docker(["version", "--format", "{{.Server.Version}}"]);
                if out.status.success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                return err(format!(
                    "dockerd in {} did not answer `docker version` within {}s; log tail:\n{}",
                    self.netns.display(),
                    START_TIMEOUT.as_secs(),
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = self.pid();
        let mnt = ns_inode(pid, "mnt");
        let own_mnt = ns_inode(std::process::id() as i32, "mnt");
        match (mnt, own_mnt) {
            (Some(m), Some(o)) if m != o => {
                self.mnt_ns = Some(m);
                self.mnt_hold = hold_ns(pid, "mnt", m);
            }
            _ => {
                return err(format!(
                    "dockerd (pid {pid}) is not in a mount namespace of its own ({mnt:?} vs ours {own_mnt:?})"
                ));
            }
        }
        if ns_inode(pid, "net") != Some(netns_ino) {
            return err(format!(
                "dockerd (pid {pid}) is not in network namespace {}",
                self.netns.display()
            ));
        }
        let pidfile = std::fs::read_to_string(self.root.join("docker.pid")).unwrap_or_default();
        if pidfile.trim().parse::<i32>().ok() != Some(pid) {
            return err(format!(
                "pid file says '{}', but the spawned dockerd is {pid}",
                pidfile.trim()
            ));
        }
        Ok(())
    }

    /// The private root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The network namespace file the daemon runs in.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// What this daemon sees as `/run/docker/plugins`: a plugin for this daemon only
    /// listens on `plugins_dir()/<name>.sock`. (Docker reads only sockets here; spec
    /// files go to [`Dockerd::plugin_specs_dir`].)
    pub fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// What this daemon sees as `/etc/docker/plugins`, where Docker reads
    /// `<name>.spec` files (a plugin address, e.g. `unix:///path/to.sock`, per file).
    /// Created on first call.
    pub fn plugin_specs_dir(&self) -> PathBuf {
        let d = self.root.join("etc-docker/plugins");
        let _ = std::fs::create_dir_all(&d);
        d
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> PathBuf {
        self.root.join("docker.sock")
    }

    /// `unix://` address of the API socket (for `DOCKER_HOST` or `-H`).
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("dockerd.log")
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        containerlab::proc::tail(&self.log_path(), n)
    }

    /// Pid of dockerd.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Pid of the containerd that dockerd manages, once it runs.
    pub fn containerd_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.root.join("exec/containerd/containerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every process of this engine right now: dockerd, the processes in its mount
    /// namespace (containerd, shims) and all their descendants (containers).
    pub fn processes(&self) -> Vec<i32> {
        let mut pids = vec![self.pid()];
        if let Some(p) = self.containerd_pid() {
            pids.push(p);
        }
        if let Some(mnt) = self.mnt_ns {
            let (members, below) = engine_processes(mnt);
            pids.extend(members);
            pids.extend(below);
        }
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|&p| p > 0);
        pids
    }

    /// Runs the docker CLI against this daemon (killed after two minutes).
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.docker_within(args, CLI_TIMEOUT)
    }

    /// Runs the docker CLI against this daemon, killing it after `timeout`.
    pub fn docker_within<I, S>(&self, args: I, timeout: Duration) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.arg("-H").arg(self.host()).args(args);
        run_with_timeout(cmd, None, timeout).unwrap_or_else(|e| panic!("running {DOCKER_CLI}: {e}"))
    }

    /// Runs the docker CLI and returns its stdout, or an error with its stderr when it fails.
    pub fn docker_ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let out = self.docker(&args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            err(format!(
                "docker {} failed ({}): {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Imports a busybox-static root filesystem as image `busybox:latest` (no registry):
    /// `/bin/busybox` with every applet linked in `/bin`, `/etc/passwd` and `/etc/group`
    /// for root, and `CMD ["/bin/sh"]`.
    pub fn import_busybox(&self) -> Result<()> {
        self.import_busybox_as("busybox:latest")
    }

    /// Like [`Dockerd::import_busybox`], under another image name.
    pub fn import_busybox_as(&self, image: &str) -> Result<()> {
        let busybox = static_busybox()?;
        let rootfs = self.root.join("busybox-rootfs");
        if !rootfs.exists() {
            build_busybox_rootfs(&busybox, &rootfs)?;
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["--numeric-owner", "-c", "."])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error(format!("spawning tar: {e}")))?;
        let tar_out = tar.stdout.take().expect("piped stdout");
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.arg("-H")
            .arg(self.host())
            .args(["import", "-c", r#"CMD ["/bin/sh"]"#, "-", image]);
        let out = run_with_timeout(cmd, Some(Stdio::from(tar_out)), CLI_TIMEOUT);
        let tar_status = tar.wait();
        let out = out.map_err(|e| Error(format!("running docker import: {e}")))?;
        if !out.status.success() {
            return err(format!(
                "docker import {image} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        match tar_status {
            Ok(s) if s.success() => Ok(()),
            other => err(format!("tar of {} failed: {other:?}", rootfs.display())),
        }
    }

    /// Stops the daemon and removes everything it left (what drop does).
    pub fn stop(mut self) {
        self.cleanup();
    }

    fn cleanup(&mut self) {
        if self.cleaned {
            return;
        }
        self.cleaned = true;
        if self.mnt_ns.is_none() {
            // Start failed before the namespaces were checked: adopt dockerd's mount
            // namespace only if it is a private one (never our own).
            let own = ns_inode(std::process::id() as i32, "mnt");
            let theirs = ns_inode(self.pid(), "mnt");
            if theirs.is_some() && theirs != own && self.dockerd.as_ref().is_some_and(ProcId::alive)
            {
                self.mnt_hold = theirs.and_then(|m| hold_ns(self.pid(), "mnt", m));
                // Only a namespace we hold is safe to match processes against.
                self.mnt_ns = theirs.filter(|_| self.mnt_hold.is_some());
            }
        }
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        // Containers first: their PID 1 may ignore SIGTERM, which would hold up the
        // daemon's own shutdown.
        if running && self.mnt_ns.is_some() {
            let ids = self.docker_within(["ps", "-aq"], CLEANUP_CLI_TIMEOUT);
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm".to_string(), "-f".to_string()];
                args.extend(ids);
                let _ = self.docker_within(&args, CLEANUP_CLI_TIMEOUT);
            }
        }
        // Whatever belongs to the engine now, in case dockerd dies without stopping it.
        let mut leftovers: Vec<ProcId> = self
            .processes()
            .into_iter()
            .filter(|&p| p != self.pid())
            .filter_map(ProcId::of)
            .collect();
        if let Some(child) = self.child.as_mut() {
            if let Some(d) = &self.dockerd {
                d.signal(Signal::SIGTERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        eprintln!(
                            "dockerd {} did not stop within {}s; killing it",
                            child.id(),
                            STOP_GRACE.as_secs()
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // Anything left of the engine is killed: container processes (below it, in
        // namespaces of their own; their PID 1 may ignore SIGTERM) right away, the
        // engine's own processes (containerd, shims) after a SIGTERM grace.
        let (members, containers) = self.mnt_ns.map(engine_processes).unwrap_or_default();
        let containers: Vec<ProcId> = containers.into_iter().filter_map(ProcId::of).collect();
        for c in &containers {
            c.signal(Signal::SIGKILL);
        }
        for pid in members {
            if let Some(p) = ProcId::of(pid)
                && !leftovers.contains(&p)
            {
                leftovers.push(p);
            }
        }
        leftovers.extend(containers);
        containerlab::proc::stop_all(&leftovers, Duration::from_secs(5));
        // Mounts in the machine's own namespace (normally none: the daemon mounts in its own).
        for m in mounts_under(&self.root) {
            if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("unmounting {}: {e}", m.display());
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("removing {}: {e}", self.root.display());
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Run by `sh -c` inside the new mount namespace: `$1` over `$2`, `$3` over `$4`, `$5`
/// over `$6` when `$5` is not empty, then exec the rest (dockerd), so the spawned pid
/// ends up being dockerd's.
const BIND_AND_EXEC: &str = r#"set -e
mount --bind "$1" "$2"
mount --bind "$3" "$4"
if [ -n "$5" ]; then mount --bind "$5" "$6"; fi
shift 6
exec "$@""#;

/// Where dockerd and runc read whether AppArmor is on.
const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// AppArmor is enabled in the kernel but its profiles cannot be loaded.
fn apparmor_unusable() -> bool {
    let on = std::fs::read_to_string(APPARMOR_ENABLED).is_ok_and(|s| s.starts_with('Y'));
    on && !["/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"]
        .iter()
        .any(|p| Path::new(p).exists())
}

/// Mount points at or below `dir` in the machine's (our) mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    out.dedup();
    out
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `pid` is alive (a zombie counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    ProcId::of(pid).is_some_and(|p| p.alive())
}

/// Inode of `/proc/<pid>/ns/<kind>` (from the `kind:[inode]` link text).
/// Opens a process's namespace of `kind` if it still is the one numbered `inode`: the
/// open file keeps the namespace, and so its number, from being reused.
pub fn hold_ns(pid: i32, kind: &str, inode: u64) -> Option<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let f = std::fs::File::open(format!("/proc/{pid}/ns/{kind}")).ok()?;
    (f.metadata().ok()?.ino() == inode).then_some(f)
}

fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Processes in mount namespace `mnt`, and their descendants outside it (containers).
fn engine_processes(mnt: u64) -> (Vec<i32>, Vec<i32>) {
    let mut parent = Vec::new();
    let mut members = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (members, Vec::new());
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(pp) = ppid(pid) {
            parent.push((pid, pp));
        }
        if ns_inode(pid, "mnt") == Some(mnt) {
            members.push(pid);
        }
    }
    // Descendants: repeat until no new child turns up.
    let mut below: Vec<i32> = Vec::new();
    loop {
        let before = below.len();
        for &(pid, pp) in &parent {
            if (members.contains(&pp) || below.contains(&pp))
                && !members.contains(&pid)
                && !below.contains(&pid)
            {
                below.push(pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    (members, below)
}

/// Parent pid from `/proc/<pid>/stat` (field 4).
fn ppid(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Lays out `root` and spawns dockerd in `netns` and a mount namespace of its own.
fn spawn_dockerd(
    netns: &Path,
    root: &Path,
    dockerd_bin: &Path,
    daemon_json: &str,
) -> Result<Child> {
    for dir in ["data", "exec", "plugins", "etc-docker"] {
        mkdir(&root.join(dir))?;
    }
    std::fs::write(root.join("daemon.json"), format!("{daemon_json}\n"))
        .map_err(|e| Error(format!("{}/daemon.json: {e}", root.display())))?;
    // The mount points of the private binds (a plain dockerd creates both anyway).
    mkdir(Path::new(PLUGINS_DIR))?;
    mkdir(Path::new("/etc/docker"))?;
    // AppArmor on but no apparmor_parser (Debian installs docker.io without its
    // Recommends): dockerd cannot load docker-default, and runc then fails every
    // container. The daemon's mount namespace sees AppArmor as off instead.
    let apparmor_off = if apparmor_unusable() {
        let f = root.join("apparmor-enabled");
        std::fs::write(&f, "N\n").map_err(|e| Error(format!("{}: {e}", f.display())))?;
        f.into_os_string()
    } else {
        Default::default()
    };

    let log = std::fs::File::create(root.join("dockerd.log"))
        .map_err(|e| Error(format!("{}/dockerd.log: {e}", root.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error(format!("dockerd.log: {e}")))?;
    let p = |name: &str| root.join(name).into_os_string();
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .args(["--", "unshare", "--mount", "--propagation", "slave", "--"])
        .args(["sh", "-c", BIND_AND_EXEC, "contiv-dockerd"])
        .arg(p("plugins"))
        .arg(PLUGINS_DIR)
        .arg(p("etc-docker"))
        .arg("/etc/docker")
        .arg(apparmor_off)
        .arg(APPARMOR_ENABLED)
        .arg(dockerd_bin)
        .arg("--data-root")
        .arg(p("data"))
        .arg("--exec-root")
        .arg(p("exec"))
        .arg("--pidfile")
        .arg(p("docker.pid"))
        .arg("--config-file")
        .arg(p("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}", root.join("docker.sock").display()))
        .args([
            "--storage-driver=overlay2",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--shutdown-timeout=1",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    cmd.spawn()
        .map_err(|e| Error(format!("spawning nsenter/unshare/dockerd: {e}")))
}

/// Makes `root` an absolute, empty, existing directory.
fn prepare_root(root: &Path) -> Result<PathBuf> {
    if root.exists() {
        let mut entries =
            std::fs::read_dir(root).map_err(|e| Error(format!("{}: {e}", root.display())))?;
        if entries.next().is_some() {
            return err(format!(
                "root {} is not empty (it is removed on drop, so it must be private)",
                root.display()
            ));
        }
    } else {
        mkdir(root)?;
    }
    std::fs::canonicalize(root).map_err(|e| Error(format!("{}: {e}", root.display())))
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error(format!("creating {}: {e}", dir.display())))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The busybox binary to put in images; it must be statically linked (busybox-static),
/// since the image has no libc.
fn static_busybox() -> Result<PathBuf> {
    for cand in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(cand);
        if let Ok(bytes) = std::fs::read(p) {
            return match elf_has_interpreter(&bytes) {
                Some(false) => Ok(p.to_path_buf()),
                Some(true) => err(format!(
                    "{cand} is dynamically linked; install busybox-static (scripts/install-deps.sh)"
                )),
                None => err(format!("{cand} is not a 64-bit ELF executable")),
            };
        }
    }
    err("busybox not found; install busybox-static (scripts/install-deps.sh)")
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header (is
/// dynamically linked); `None` when it is not such a file.
fn elf_has_interpreter(b: &[u8]) -> Option<bool> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(32)?).ok()?;
    let phentsize = usize::from(u16_at(54)?);
    let phnum = usize::from(u16_at(56)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

fn build_busybox_rootfs(busybox: &Path, rootfs: &Path) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error(format!("busybox rootfs: {what}: {e}"));
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "var/www"] {
        mkdir(&rootfs.join(d))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("tmp", e))?;
    std::fs::copy(busybox, rootfs.join("bin/busybox")).map_err(|e| io("copy busybox", e))?;
    let listed = Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut applets: Vec<&str> = listed.split_whitespace().collect();
    if applets.is_empty() {
        applets = FALLBACK_APPLETS.to_vec();
    }
    for a in applets {
        if a == "busybox" || a.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).map_err(|e| io(a, e))?;
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| io("etc/passwd", e))?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").map_err(|e| io("etc/group", e))?;
    Ok(())
}

/// Runs `cmd` with output captured, killing it after `timeout` (its output then ends
/// with what it wrote so far and its status reports the signal).
fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<Stdio>,
    timeout: Duration,
) -> std::io::Result<Output> {
    cmd.stdin(stdin.unwrap_or_else(Stdio::null))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    // The command holds the parent's copy of a piped stdin: close it now, so a writer
    // feeding a child that exits early gets EPIPE instead of blocking.
    drop(cmd);
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = reader(child.stdout.take().map(|r| Box::new(r) as _));
    let err_t = reader(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/x\134y"), r"/x\y");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn elf_interpreter_is_detected() {
        // Our own test binary is dynamically linked on Debian (glibc).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(elf_has_interpreter(&me), Some(true));
        assert_eq!(elf_has_interpreter(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn ns_inode_of_self() {
        let pid = std::process::id() as i32;
        assert!(ns_inode(pid, "mnt").is_some());
        assert!(ns_inode(pid, "net").is_some());
        assert_eq!(ns_inode(-5, "net"), None);
    }

    #[test]
    fn run_with_timeout_kills_and_captures() {
        let mut sh = Command::new("sh");
        sh.args(["-c", "echo hi; echo oops >&2"]);
        let out = run_with_timeout(sh, None, Duration::from_secs(60)).unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr, b"oops\n");
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let out = run_with_timeout(sleep, None, Duration::from_millis(50)).unwrap();
        assert!(!out.status.success());
    }

    #[test]
    fn start_rejects_a_missing_namespace() {
        let e = Dockerd::start(
            Path::new("/run/netns/contiv-no-such-namespace"),
            Path::new("/tmp/contiv-never-created"),
        )
        .unwrap_err();
        assert!(e.0.contains("does not exist"), "{e}");
        assert!(!Path::new("/tmp/contiv-never-created").exists());
    }
}
