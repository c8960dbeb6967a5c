//! Contiv's CNI plugin driven by real container runtimes on the `quickstart` fabric (real
//! FRR ToRs), in routing mode: podman 4.3 with its CNI backend, and containerd's
//! `ctr run --cni`. Each test puts a runtime container on lab host1 through a conflist
//! naming our `contiv-cni` binary, and a plain CNI container (a namespace of our own) on
//! host2; it checks the runtime container's address, its /32 on the other rack's ToR,
//! pings across the fabric both ways, and that removing the container withdraws the /32.
//! Then it tears the runtime down and checks that nothing of it is left: processes,
//! mounts, the container's namespace, cgroups, libcni cache entries, directories.
//!
//! Both runtimes run rootful with everything private to the test (see
//! `docs/runtimes.md`):
//!
//! - podman: `--root`, `--runroot`, `--tmpdir`, `--cni-config-dir`, `--network-backend cni`,
//!   runc's state under the test directory (`--runtime-flag root=`), a containers.conf of
//!   its own (`CONTAINERS_CONF`; it holds the ulimits this machine needs and the CNI
//!   plugin directory, our target directory) and a private cgroup parent. Podman makes
//!   the container's namespace itself in the machine's mount namespace
//!   (`/run/netns/netns-<uuid>`); netplugin opens it from there and keeps the host side
//!   of the veth in the lab host's namespace.
//! - containerd: a private daemon (own root, state, socket) in a mount namespace of its
//!   own, where a tmpfs covers `/run` (shim sockets, runc state, ctr's fifos) and `/opt`
//!   (`/opt/cni/bin/contiv-cni`, a link to our binary), and the test's conflist directory
//!   is bound over `/etc/cni/net.d`: `ctr --cni` has no flags for those paths. `ctr` runs in
//!   that mount namespace too (`nsenter`). The image is an OCI archive of a busybox-static
//!   root file system built here and imported with `ctr images import` (no registry).
//!   The container runs under a foreground `ctr run --rm --cni`, which sends DEL (with an
//!   empty `CNI_NETNS`) once the task is killed.
//!
//! The two tests run one after the other (each deploys its own fabric).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, bin, frr_routes, node_exec, wait_for,
};
use contiv_tests::docker::{mounts_under, pid_alive};
use contiv_tests::{assert_gone, fabric_lab, lab_pids, require_root};

const LONG: Duration = Duration::from_secs(60);
/// Upper bound for one runtime command (they take well under a second here).
const CMD_TIMEOUT: Duration = Duration::from_secs(120);
const NET: &str = "contiv-net";
const SUBNET: &str = "20.1.1.0/24";
const IMAGE_PODMAN: &str = "localhost/localbusybox:1";
const IMAGE_CTR: &str = "docker.io/library/localbusybox:1";

/// The tests share the machine's CNI cache directory and are heavy: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the test may run: root, and the runtime's commands installed. Missing
/// commands fail the test when `CONTIV_REQUIRE_ROOT_TESTS=1`.
fn runnable(test: &str, commands: &[&str]) -> bool {
    if !require_root(test) {
        return false;
    }
    let missing: Vec<&str> = commands
        .iter()
        .copied()
        .filter(|c| find_in_path(c).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: {missing:?} not installed (scripts/install-deps.sh)");
    if std::env::var("CONTIV_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("{msg}: skipped");
    false
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------
// Small process helpers.

/// Runs `cmd` with its output captured; kills it (by pid) after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            kill_pid(pid);
            let out = rx.recv().ok().and_then(Result::ok);
            panic!(
                "{what}: no answer in {timeout:?}; output so far: {:?}",
                out.map(|o| text(&o))
            );
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn term_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// Waits up to `within` for `pid` to be gone (or a zombie).
fn wait_gone(pid: i32, within: Duration) -> bool {
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Waits for our own child, SIGKILLing it after `within`.
fn reap(child: &mut Child, within: Duration) {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Inode of `/proc/<pid>/ns/<kind>`.
fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn ppid(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Live processes in mount namespace `mnt`, plus all their descendants (containers run
/// in mount namespaces of their own below the shims).
fn processes_of_mnt_ns(mnt: u64) -> Vec<i32> {
    let mut all = Vec::new();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(pp) = ppid(pid) {
            all.push((pid, pp));
        }
        if ns_inode(pid, "mnt") == Some(mnt) {
            found.push(pid);
        }
    }
    loop {
        let before = found.len();
        for &(pid, pp) in &all {
            if found.contains(&pp) && !found.contains(&pid) {
                found.push(pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.retain(|&p| pid_alive(p));
    found
}

/// Lazily unmounts everything at or below `dir` in our mount namespace.
fn unmount_under(dir: &Path) {
    for m in mounts_under(dir) {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The cgroup directories `/sys/fs/cgroup/<controller>/<rel>` that exist.
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes the cgroup tree `rel` (children first) in every hierarchy; cgroups that
/// still hold processes stay (rmdir fails), a few retries give exiting ones time.
fn remove_cgroups(rel: &str) {
    for _ in 0..50 {
        let mut left = false;
        for top in cgroup_dirs(rel) {
            let mut dirs = vec![top.clone()];
            let mut i = 0;
            while i < dirs.len() {
                let subs: Vec<PathBuf> = std::fs::read_dir(&dirs[i])
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect();
                dirs.extend(subs);
                i += 1;
            }
            for d in dirs.iter().rev() {
                if std::fs::remove_dir(d).is_err() {
                    left = true;
                }
            }
        }
        if !left {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Machine directories a runtime creates the first time it runs, removed again when the
/// test created them: caches (libcni's results, containers/image's blob cache) with
/// whatever is in them, state roots (podman's cleanup runs runc on `/run/runc`) only
/// while empty.
struct MachineDirs {
    created: Vec<(PathBuf, bool)>,
}

impl MachineDirs {
    /// `caches` are removed with their contents, `roots` only when empty.
    fn note(caches: &[&str], roots: &[&str]) -> MachineDirs {
        let tagged = caches
            .iter()
            .map(|p| (PathBuf::from(p), true))
            .chain(roots.iter().map(|p| (PathBuf::from(p), false)));
        MachineDirs {
            created: tagged.filter(|(p, _)| !p.exists()).collect(),
        }
    }

    /// Returns the directories that could not be removed.
    fn cleanup(&mut self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for (p, with_contents) in self.created.drain(..) {
            let _ = if with_contents {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_dir(&p)
            };
            if p.exists() {
                left.push(p);
            }
        }
        left
    }
}

impl Drop for MachineDirs {
    fn drop(&mut self) {
        let left = self.cleanup();
        if !left.is_empty() {
            eprintln!("left on the machine: {left:?}");
        }
    }
}

/// libcni's cache files (`/var/lib/cni/results/<net>-<container id>-<ifname>`) that name
/// `container_id`.
fn cni_cache_entries(container_id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/var/lib/cni/results")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(container_id))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The image: a busybox-static root file system, as a plain tar (podman import) and as an
// OCI image archive (ctr images import).

fn static_busybox() -> PathBuf {
    for cand in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(cand);
        if p.is_file() {
            let o = run(Command::new("ldd").arg(p), CMD_TIMEOUT);
            let says = text(&o);
            assert!(
                says.contains("not a dynamic executable") || says.contains("statically linked"),
                "{cand} must be statically linked (busybox-static): {says}"
            );
            return p.to_path_buf();
        }
    }
    panic!("busybox not found; install busybox-static (scripts/install-deps.sh)");
}

/// Writes `<dir>/rootfs.tar`: busybox and its applet links, /etc/passwd and /etc/group.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
    }
    let busybox = static_busybox();
    std::fs::copy(&busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    let listed = stdout(&run(Command::new(&busybox).arg("--list"), CMD_TIMEOUT));
    for a in listed.split_whitespace() {
        if a != "busybox" && !a.contains('/') {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("applet");
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    let tar = dir.join("rootfs.tar");
    let mut c = Command::new("tar");
    c.arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".");
    let o = run(&mut c, CMD_TIMEOUT);
    assert!(o.status.success(), "tar: {}", text(&o));
    std::fs::remove_dir_all(&rootfs).expect("remove rootfs");
    tar
}

fn sha256_file(p: &Path) -> String {
    let mut c = Command::new("sha256sum");
    c.arg(p);
    let o = run(&mut c, CMD_TIMEOUT);
    assert!(o.status.success(), "sha256sum: {}", text(&o));
    stdout(&o)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// Stores `bytes` as a blob of the OCI layout at `layout`; returns (digest, size).
fn oci_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let d = sha256_file(&tmp);
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&d)).unwrap();
    (format!("sha256:{d}"), bytes.len())
}

/// Writes `<dir>/image.tar`: an OCI image archive named `name` with the one layer
/// `layer_tar` (uncompressed) and `CMD ["/bin/sh"]`.
fn oci_archive(dir: &Path, layer_tar: &Path, name: &str) -> PathBuf {
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer = std::fs::read(layer_tar).expect("layer");
    let (layer_digest, layer_size) = oci_blob(&layout, &layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = oci_blob(&layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = oci_blob(&layout, manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let mut c = Command::new("tar");
    c.arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"]);
    let o = run(&mut c, CMD_TIMEOUT);
    assert!(o.status.success(), "tar: {}", text(&o));
    std::fs::remove_dir_all(&layout).unwrap();
    archive
}

/// A conflist (runtime network `name`) naming our plugin, for Contiv network `network`
/// at netplugin `p`.
fn conflist(p: &Netplugin, name: &str, network: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "contiv-cni",
            "tenant": "default",
            "network": network,
            "netplugin_socket": p.cni_socket,
        }],
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------
// The fabric: quickstart lab, netmaster, a netplugin per host, contiv-net in routing mode.

struct Fabric {
    // Fields drop in this order: agents, netmaster, lab, state directory.
    p1: Netplugin,
    p2: Netplugin,
    nm: Netmaster,
    lab: LabGuard,
    _tmp: tempfile::TempDir,
}

impl Fabric {
    fn up(tag: &str) -> Fabric {
        let lab = fabric_lab("quickstart", tag)
            .deploy_guarded(&DeployOptions::default())
            .expect("deploy");
        let tmp = tempfile::tempdir().unwrap();
        let nm = Netmaster::start();
        nm.ok("netctl global set --fwd-mode routing");
        nm.ok(&format!(
            "netctl net create {NET} --subnet={SUBNET} --gateway=20.1.1.254 --pkt-tag=1001"
        ));
        nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
        nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");
        let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
        let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());
        for (host, p) in [("host1", &p1), ("host2", &p2)] {
            wait_for(
                &format!("{host}'s session with its ToR established"),
                LONG,
                || {
                    nm.ok(&format!("netctl bgp inspect {host}"))
                        .contains("\"neighborStatus\": \"established\"")
                        .then_some(())
                },
                || p.log_tail(),
            );
        }
        Fabric {
            p1,
            p2,
            nm,
            lab,
            _tmp: tmp,
        }
    }

    /// A plain CNI container on host2 (our own namespace, the plugin called directly).
    fn db(&self, name: &str) -> (ContainerNs, String) {
        let ns = ContainerNs::new(&format!("{}-{name}", self.lab.namespace("host2").unwrap()));
        let o = self.p2.cni_with_args(
            "ADD",
            name,
            &ns.path(),
            "eth0",
            &self.p2.netconf(NET, None),
            &format!("IgnoreUnknown=1;K8S_POD_NAME={name}"),
        );
        assert!(o.status.success(), "CNI ADD on host2: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("CNI result");
        let ip = v["ips"][0]["address"]
            .as_str()
            .expect("an address")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        (ns, ip)
    }

    fn del_db(&self, ns: &ContainerNs, name: &str) {
        let o = self
            .p2
            .cni("DEL", name, &ns.path(), "eth0", &self.p2.netconf(NET, None));
        assert!(o.status.success(), "CNI DEL on host2: {}", text(&o));
    }

    fn wait_route(&self, tor: &str, ip: &str, present: bool) {
        let p = format!("{ip}/32");
        let what = if present {
            format!("{p} on {tor}")
        } else {
            format!("{p} withdrawn from {tor}")
        };
        wait_for(
            &what,
            LONG,
            || (frr_routes(&self.lab, tor).contains_key(&p) == present).then_some(()),
            || format!("{:?}\n{}", frr_routes(&self.lab, tor), self.p1.log_tail()),
        );
    }

    fn links(&self, host: &str) -> BTreeSet<String> {
        let o = node_exec(&self.lab, host, "ip -o link show");
        stdout(&o)
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .collect()
    }

    /// Stops everything and checks that the lab left nothing behind.
    fn down(self) {
        let pids = lab_pids(&self.lab);
        let plain = (*self.lab).clone();
        drop(self);
        assert_gone(&plain, &pids);
    }
}

/// The checks both runtimes share, on a runtime container of host1 already running.
struct Attached<'a> {
    f: &'a Fabric,
    ip: String,
    endpoint: String,
}

impl Attached<'_> {
    /// `addr_show` is the container's `ip -4 addr show dev eth0`; `ping` runs a ping
    /// inside the runtime container.
    fn check(
        &self,
        addr_show: &str,
        db: &ContainerNs,
        db_ip: &str,
        ping: &dyn Fn(&str) -> bool,
        links_before: &BTreeSet<String>,
    ) {
        let f = self.f;
        let ip: Ipv4Addr = self.ip.parse().expect("an IPv4 address");
        let subnet: ipnet::Ipv4Net = SUBNET.parse().unwrap();
        assert!(subnet.contains(&ip), "{ip} is not in {SUBNET}");
        assert!(
            addr_show.contains(&format!("inet {ip}/24")),
            "eth0 in the container: {addr_show}"
        );
        // netmaster knows the endpoint, on host1.
        let eps =
            f.nm.ok(&format!("netctl endpoint inspect {}", self.endpoint));
        assert!(eps.contains("host1") && eps.contains(&self.ip), "{eps}");
        // The host side of the veth is in host1's namespace, not in the machine's.
        let new: Vec<String> = f.links("host1").difference(links_before).cloned().collect();
        assert_eq!(new.len(), 1, "new links on host1: {new:?}");
        let o = run(
            Command::new("ip").args(["link", "show", "dev", &new[0]]),
            CMD_TIMEOUT,
        );
        assert!(
            !o.status.success(),
            "{} is in the machine's namespace",
            new[0]
        );
        // Its /32 reaches the other rack's ToR (and its own).
        f.wait_route("tor2", &self.ip, true);
        f.wait_route("tor1", &self.ip, true);
        // Ping across the fabric, both ways.
        wait_for(
            "the runtime container pings the CNI container on host2",
            LONG,
            || ping(db_ip).then_some(()),
            || f.p1.log_tail(),
        );
        let o = db.exec(&["ping", "-c", "1", "-W", "2", &self.ip]);
        assert!(o.status.success(), "host2's container pings: {}", text(&o));
    }

    /// After the runtime removed the container: the /32 is withdrawn everywhere, the
    /// endpoint is gone from netmaster, host1's links are as before.
    fn check_removed(&self, links_before: &BTreeSet<String>) {
        let f = self.f;
        f.wait_route("tor2", &self.ip, false);
        f.wait_route("tor1", &self.ip, false);
        let o =
            f.nm.netctl(&format!("netctl endpoint inspect {}", self.endpoint));
        assert!(
            !o.status.success() || !stdout(&o).contains(&self.ip),
            "endpoint still known: {}",
            text(&o)
        );
        wait_for(
            "host1's links as before the container",
            LONG,
            || (f.links("host1") == *links_before).then_some(()),
            || format!("{:?}", f.links("host1")),
        );
    }
}

// ---------------------------------------------------------------------------------------
// podman

/// A rootful podman whose every directory is below a private root.
struct Podman {
    dir: PathBuf,
    cgroup_parent: String,
    containers: Vec<String>,
    done: bool,
    _root: tempfile::TempDir,
}

impl Podman {
    fn new(tag: &str, conflist: &str) -> Podman {
        let root = tempfile::Builder::new()
            .prefix("contiv-podman-")
            .tempdir()
            .unwrap();
        let dir = root.path().to_path_buf();
        let cni_dir = bin("contiv-cni").parent().unwrap().to_path_buf();
        for d in ["net.d", "root", "run", "tmp", "runc"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("net.d/10-contiv.conflist"), conflist).unwrap();
        let d = dir.display();
        // No CAP_SYS_RESOURCE here: runc cannot raise the limits podman asks for by default.
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{cni}"]
network_config_dir = "{d}/net.d"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime = "runc"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
"#,
                cni = cni_dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{d}/run\"\ngraphroot = \"{d}/root\"\n"
            ),
        )
        .unwrap();
        Podman {
            cgroup_parent: format!("/contiv-rt-{tag}-{}", std::process::id()),
            dir,
            containers: Vec::new(),
            done: false,
            _root: root,
        }
    }

    fn cmd(&self) -> Command {
        let d = &self.dir;
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--cni-config-dir")
            .arg(d.join("net.d"))
            .args([
                "--network-backend",
                "cni",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "overlay",
            ])
            .arg(format!("--runtime-flag=root={}", d.join("runc").display()));
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run(&mut c, CMD_TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.podman(args);
        assert!(o.status.success(), "podman {args:?}: {}", text(&o));
        stdout(&o)
    }

    fn import(&self) {
        let tar = rootfs_tar(&self.dir);
        self.ok(&[
            "import",
            "--quiet",
            "--change",
            r#"CMD ["/bin/sh"]"#,
            tar.to_str().unwrap(),
            IMAGE_PODMAN,
        ]);
    }

    /// `podman run -d` on a network; returns podman's output (the container id).
    fn run_on(&mut self, name: &str, net: &str) -> Output {
        self.containers.push(name.to_string());
        let cg = self.cgroup_parent.clone();
        self.podman(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--cgroup-parent",
            &cg,
            IMAGE_PODMAN,
            "sleep",
            "600",
        ])
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
    }

    /// Removes containers and images, stops podman's processes and removes its state;
    /// returns what could not be removed.
    fn shutdown(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut left = Vec::new();
        for name in std::mem::take(&mut self.containers) {
            let _ = self.podman(&["rm", "-f", "-t", "0", &name]);
        }
        let _ = self.podman(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.podman(&["system", "reset", "-f"]);
        remove_cgroups(&self.cgroup_parent);
        for c in cgroup_dirs(&self.cgroup_parent) {
            left.push(format!("cgroup {}", c.display()));
        }
        let mounts = mounts_under(&self.dir);
        for m in &mounts {
            left.push(format!("mount {}", m.display()));
        }
        unmount_under(&self.dir);
        left
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let left = self.shutdown();
        if !left.is_empty() {
            eprintln!("podman teardown left (cleaned what it could): {left:?}");
        }
    }
}

#[test]
fn podman_cni_backend_attaches_containers_to_the_fabric() {
    let test = "podman_cni_backend_attaches_containers_to_the_fabric";
    if !runnable(test, &["podman", "conmon", "runc", "tar", "sha256sum"]) {
        return;
    }
    let _serial = serial();
    let mut machine = MachineDirs::note(&["/var/lib/cni", "/var/lib/containers"], &["/run/runc"]);
    let f = Fabric::up("podman");
    let (db, db_ip) = f.db("db");
    f.wait_route("tor1", &db_ip, true);

    let mut pm = Podman::new("podman", &conflist(&f.p1, NET, NET));
    pm.import();
    // Podman lists our conflist as a network.
    let nets = pm.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.contains(&format!("{NET} contiv-cni")), "{nets}");

    let links_before = f.links("host1");
    let name = format!("web-{}", std::process::id());
    let o = pm.run_on(&name, NET);
    assert!(
        o.status.success(),
        "podman run: {}\nnetplugin:\n{}",
        text(&o),
        f.p1.log_tail()
    );
    let id = stdout(&o);
    let ip = pm.inspect(
        &name,
        &format!("{{{{(index .NetworkSettings.Networks \"{NET}\").IPAddress}}}}"),
    );
    let sandbox = pm.inspect(&name, "{{.NetworkSettings.SandboxKey}}");
    let pid: i32 = pm.inspect(&name, "{{.State.Pid}}").parse().expect("pid");
    let conmon: i32 = pm
        .inspect(&name, "{{.State.ConmonPid}}")
        .parse()
        .expect("conmon pid");
    assert!(
        sandbox.starts_with("/run/netns/") && Path::new(&sandbox).exists(),
        "podman's namespace: {sandbox}"
    );
    assert!(!cni_cache_entries(&id).is_empty(), "libcni cached the ADD");
    eprintln!("podman container {name} ({id}): {ip}, namespace {sandbox}; host2's db: {db_ip}");
    let addr_show = pm.ok(&["exec", &name, "ip", "-4", "addr", "show", "dev", "eth0"]);
    let a = Attached {
        f: &f,
        ip,
        endpoint: format!("{id}-eth0"),
    };
    let ping = |to: &str| {
        pm.podman(&["exec", &name, "ping", "-c", "1", "-W", "1", to])
            .status
            .success()
    };
    a.check(&addr_show, &db, &db_ip, &ping, &links_before);

    // podman rm: DEL withdraws the /32; podman's namespace, processes and cache go.
    pm.ok(&["rm", "-f", "-t", "0", &name]);
    a.check_removed(&links_before);
    assert!(
        !Path::new(&sandbox).exists(),
        "{sandbox} survived podman rm"
    );
    assert!(
        wait_gone(pid, LONG),
        "container process {pid} survived podman rm"
    );
    assert!(
        wait_gone(conmon, LONG),
        "conmon {conmon} survived podman rm"
    );
    assert!(
        cni_cache_entries(&id).is_empty(),
        "libcni cache: {:?}",
        cni_cache_entries(&id)
    );

    // A network unknown to netmaster: podman run fails with the plugin's message, and
    // nothing is plumbed on host1.
    std::fs::write(
        pm.dir.join("net.d/20-bad.conflist"),
        conflist(&f.p1, "contiv-bad", "no-such-net"),
    )
    .unwrap();
    let bad = format!("bad-{}", std::process::id());
    let o = pm.run_on(&bad, "contiv-bad");
    assert!(
        !o.status.success(),
        "podman run on no-such-net: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("no-such-net") && text(&o).contains("contiv-cni"),
        "{}",
        text(&o)
    );
    eprintln!("podman run on an unknown network: {}", text(&o).trim());
    assert_eq!(f.links("host1"), links_before);
    pm.ok(&["rm", "-f", "-t", "0", &bad]);

    // A second container on the network.
    let name2 = format!("web2-{}", std::process::id());
    let o = pm.run_on(&name2, NET);
    assert!(o.status.success(), "podman run again: {}", text(&o));
    let id2 = stdout(&o);
    let ip2 = pm.inspect(
        &name2,
        &format!("{{{{(index .NetworkSettings.Networks \"{NET}\").IPAddress}}}}"),
    );
    f.wait_route("tor2", &ip2, true);
    pm.ok(&["rm", "-f", "-t", "0", &name2]);
    f.wait_route("tor2", &ip2, false);
    assert!(cni_cache_entries(&id2).is_empty());

    // Teardown leaves nothing.
    let dir = pm.dir.clone();
    let left = pm.shutdown();
    assert!(left.is_empty(), "podman left: {left:?}");
    drop(pm);
    assert!(!dir.exists(), "{} survived", dir.display());
    f.del_db(&db, "db");
    f.wait_route("tor1", &db_ip, false);
    drop(db);
    f.down();
    let left = machine.cleanup();
    assert!(left.is_empty(), "left on the machine: {left:?}");
}

// ---------------------------------------------------------------------------------------
// containerd

/// A private containerd in a mount namespace of its own (see the module doc).
struct Containerd {
    dir: PathBuf,
    namespace: String,
    child: Option<Child>,
    pid: i32,
    mnt: u64,
    /// containerd's mount namespace held open, so its number is not reused by another
    /// namespace (every `ip netns exec` makes one) while the teardown matches on it.
    _mnt_hold: Option<std::fs::File>,
    /// Foreground `ctr run --rm --cni` processes, by container id.
    runs: Vec<(String, Child)>,
    /// `/etc/cni/net.d` did not exist and was made as a mount point.
    made_netd: bool,
    done: bool,
    _root: tempfile::TempDir,
}

impl Containerd {
    fn start(tag: &str, conflist: &str) -> Containerd {
        let root = tempfile::Builder::new()
            .prefix("contiv-containerd-")
            .tempdir()
            .unwrap();
        let dir = root.path().to_path_buf();
        for d in ["net.d", "root", "state"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("net.d/10-contiv.conflist"), conflist).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n"
            ),
        )
        .unwrap();
        let made_netd = !Path::new("/etc/cni/net.d").exists();
        if made_netd {
            std::fs::create_dir_all("/etc/cni/net.d").expect("mkdir /etc/cni/net.d");
        }
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let script = "set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /opt
mkdir -p /opt/cni/bin
ln -s \"$1\" /opt/cni/bin/contiv-cni
mount --bind \"$2\" /etc/cni/net.d
exec containerd --config \"$3\"";
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(bin("contiv-cni"))
            .arg(dir.join("net.d"))
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare containerd");
        let pid = child.id() as i32;
        let mut c = Containerd {
            namespace: format!("contiv-rt-{tag}-{}", std::process::id()),
            dir,
            child: Some(child),
            pid,
            mnt: 0,
            _mnt_hold: None,
            runs: Vec::new(),
            made_netd,
            done: false,
            _root: root,
        };
        let start = Instant::now();
        loop {
            if let Some(ch) = c.child.as_mut()
                && let Ok(Some(st)) = ch.try_wait()
            {
                panic!("containerd exited ({st}): {}", c.log_tail());
            }
            if c.dir.join("containerd.sock").exists() && c.ctr(&["version"]).status.success() {
                break;
            }
            assert!(
                start.elapsed() < LONG,
                "containerd not ready: {}",
                c.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c.mnt = ns_inode(pid, "mnt").expect("containerd's mount namespace");
        c._mnt_hold = Some(
            contiv_tests::docker::hold_ns(pid, "mnt", c.mnt)
                .expect("containerd's mount namespace, held open"),
        );
        assert_ne!(
            Some(c.mnt),
            ns_inode(std::process::id() as i32, "mnt"),
            "containerd must run in a mount namespace of its own"
        );
        c
    }

    fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `ctr` in containerd's mount namespace, on its socket and our namespace.
    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "--", "ctr", "-a"])
            .arg(self.dir.join("containerd.sock"))
            .args(["-n", &self.namespace])
            .args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        run(&mut self.ctr_cmd(args), CMD_TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(o.status.success(), "ctr {args:?}: {}", text(&o));
        stdout(&o)
    }

    fn import(&self) {
        let tar = rootfs_tar(&self.dir);
        let archive = oci_archive(&self.dir, &tar, IMAGE_CTR);
        self.ok(&["images", "import", archive.to_str().unwrap()]);
        let images = self.ok(&["images", "ls", "-q"]);
        assert!(images.contains(IMAGE_CTR), "{images}");
    }

    fn task_status(&self, id: &str) -> Option<String> {
        let o = self.ctr(&["tasks", "ls"]);
        stdout(&o)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&id))
            .and_then(|f| f.get(2).map(|s| s.to_string()))
    }

    /// Starts `ctr run --rm --cni <image> <id> sleep 600` in the foreground (as a child
    /// of ours) and waits until the task runs (CNI ADD is done before the task starts).
    /// On failure returns ctr's output.
    fn run_on_net(&mut self, id: &str) -> Result<i32, String> {
        let log = self.dir.join(format!("ctr-{id}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = self
            .ctr_cmd(&["run", "--rm", "--cni", IMAGE_CTR, id, "sleep", "600"])
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("ctr run");
        self.runs.push((id.to_string(), child));
        let start = Instant::now();
        loop {
            let (_, ch) = self.runs.last_mut().unwrap();
            if let Ok(Some(st)) = ch.try_wait() {
                return Err(format!(
                    "ctr run exited ({st}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            if self.task_status(id).as_deref() == Some("RUNNING") {
                let pid = self
                    .ok(&["tasks", "ls"])
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .find(|f| f.first() == Some(&id))
                    .and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
                    .expect("task pid");
                return Ok(pid);
            }
            if start.elapsed() > LONG {
                return Err(format!(
                    "task {id} not running after {LONG:?}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec(&self, id: &str, exec_id: &str, args: &[&str]) -> Output {
        let mut a = vec!["tasks", "exec", "--exec-id", exec_id, id];
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// Kills the task; the foreground `ctr run --rm` then sends CNI DEL, removes the
    /// container and exits. Returns ctr's output.
    fn remove(&mut self, id: &str) -> String {
        let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        let Some(i) = self.runs.iter().position(|(n, _)| n == id) else {
            return String::new();
        };
        let (_, mut ch) = self.runs.remove(i);
        reap(&mut ch, LONG);
        std::fs::read_to_string(self.dir.join(format!("ctr-{id}.log"))).unwrap_or_default()
    }

    /// Removes containers, stops containerd and kills whatever is left of it; returns
    /// what could not be removed.
    fn shutdown(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut left = Vec::new();
        let ids: Vec<String> = self.runs.iter().map(|(n, _)| n.clone()).collect();
        for id in ids {
            self.remove(&id);
        }
        for line in stdout(&self.ctr(&["containers", "ls", "-q"])).lines() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", line]);
            let _ = self.ctr(&["tasks", "rm", "-f", line]);
            let _ = self.ctr(&["containers", "rm", line]);
        }
        if let Some(mut ch) = self.child.take() {
            term_pid(self.pid);
            reap(&mut ch, Duration::from_secs(10));
        }
        // Shims (they outlive containerd) and their containers, if a container could not
        // be removed: whatever still runs in containerd's mount namespace, and below.
        if self.mnt != 0 {
            let rest = processes_of_mnt_ns(self.mnt);
            for &pid in &rest {
                kill_pid(pid);
            }
            for pid in rest {
                if !wait_gone(pid, Duration::from_secs(10)) {
                    left.push(format!("process {pid}"));
                }
            }
        }
        remove_cgroups(&self.namespace);
        for c in cgroup_dirs(&self.namespace) {
            left.push(format!("cgroup {}", c.display()));
        }
        if self.made_netd {
            let _ = std::fs::remove_dir("/etc/cni/net.d");
            let _ = std::fs::remove_dir("/etc/cni");
        }
        // All of containerd's mounts lived in its mount namespace.
        for m in mounts_under(&self.dir) {
            left.push(format!("mount {}", m.display()));
        }
        unmount_under(&self.dir);
        left
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let left = self.shutdown();
        if !left.is_empty() {
            eprintln!("containerd teardown left (cleaned what it could): {left:?}");
        }
    }
}

#[test]
fn containerd_ctr_cni_attaches_containers_to_the_fabric() {
    let test = "containerd_ctr_cni_attaches_containers_to_the_fabric";
    if !runnable(
        test,
        &[
            "containerd",
            "ctr",
            "runc",
            "unshare",
            "nsenter",
            "tar",
            "sha256sum",
        ],
    ) {
        return;
    }
    let _serial = serial();
    let mut machine = MachineDirs::note(&["/var/lib/cni"], &[]);
    let f = Fabric::up("ctr");
    let (db, db_ip) = f.db("db");
    f.wait_route("tor1", &db_ip, true);

    let mut ctd = Containerd::start("ctr", &conflist(&f.p1, NET, NET));
    ctd.import();
    let ctd_pid = ctd.pid;
    let machine_mnt = ns_inode(std::process::id() as i32, "mnt");

    let links_before = f.links("host1");
    let id = format!("web-{}", std::process::id());
    let task_pid = match ctd.run_on_net(&id) {
        Ok(p) => p,
        Err(e) => panic!("{e}\nnetplugin:\n{}", f.p1.log_tail()),
    };
    let full_id = format!("{}-{id}", ctd.namespace);
    let addr_show = {
        let o = ctd.exec(&id, "addr", &["ip", "-4", "addr", "show", "dev", "eth0"]);
        assert!(o.status.success(), "{}", text(&o));
        stdout(&o)
    };
    let ip = addr_show
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("an IPv4 address on eth0")
        .to_string();
    assert!(
        !cni_cache_entries(&full_id).is_empty(),
        "libcni cached the ADD"
    );
    eprintln!("ctr container {full_id} (task {task_pid}): {ip}; host2's db: {db_ip}");
    let a = Attached {
        f: &f,
        ip,
        endpoint: format!("{full_id}-eth0"),
    };
    let n = std::sync::atomic::AtomicUsize::new(0);
    let ping = |to: &str| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ctd.exec(
            &id,
            &format!("ping{k}"),
            &["ping", "-c", "1", "-W", "1", to],
        )
        .status
        .success()
    };
    a.check(&addr_show, &db, &db_ip, &ping, &links_before);

    // Kill the task: ctr sends DEL (empty CNI_NETNS) and removes the container.
    let out = ctd.remove(&id);
    assert!(
        !out.contains("level=error"),
        "ctr run --rm complained: {out}"
    );
    a.check_removed(&links_before);
    assert!(wait_gone(task_pid, LONG), "task {task_pid} survived");
    assert!(
        !ctd.ok(&["containers", "ls", "-q"]).contains(&id),
        "container {id} still listed"
    );
    assert!(
        cni_cache_entries(&full_id).is_empty(),
        "libcni cache: {:?}",
        cni_cache_entries(&full_id)
    );

    // Teardown leaves nothing: no process of containerd's, no mount, no cgroup, no dir.
    let dir = ctd.dir.clone();
    let mnt = ctd.mnt;
    // Held through the checks below, so the number cannot name another namespace.
    let _mnt_hold = ctd._mnt_hold.take();
    let left = ctd.shutdown();
    assert!(left.is_empty(), "containerd left: {left:?}");
    drop(ctd);
    assert!(!pid_alive(ctd_pid), "containerd {ctd_pid} survived");
    // Processes of that namespace may still be on their way out (a shim exiting after
    // containerd): each must go, none may stay.
    for pid in processes_of_mnt_ns(mnt) {
        assert!(
            wait_gone(pid, LONG),
            "process {pid} of containerd's mount namespace survived"
        );
    }
    assert!(processes_of_mnt_ns(mnt).is_empty());
    assert_eq!(ns_inode(std::process::id() as i32, "mnt"), machine_mnt);
    assert!(!dir.exists(), "{} survived", dir.display());
    assert!(
        mounts_under(Path::new("/opt")).is_empty()
            && mounts_under(Path::new("/etc/cni")).is_empty(),
        "a private mount leaked into the machine's namespace"
    );
    f.del_db(&db, "db");
    f.wait_route("tor1", &db_ip, false);
    drop(db);
    f.down();
    let left = machine.cleanup();
    assert!(left.is_empty(), "left on the machine: {left:?}");
}
