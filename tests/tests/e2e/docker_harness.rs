//! The Docker harness: two private dockerd instances in two network namespaces at once,
//! each with busybox imported and able to run a container, each seeing only its own
//! plugin directory, and nothing of either left once they are dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use contiv_tests::docker::{Dockerd, PLUGINS_DIR, mounts_under, pid_alive};
use contiv_tests::require_root;

/// A network namespace made for the test (`ip netns add`), deleted on drop.
struct Netns(String);

impl Netns {
    fn add(name: String) -> Netns {
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        let ns = Netns(name);
        let st = Command::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .status()
            .expect("ip link set lo up");
        assert!(st.success(), "lo up in {}", ns.0);
        ns
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Removes a scratch path (directory or file) also when the test fails before a
/// Dockerd owns it.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A do-nothing Docker network driver (legacy plugin protocol) on a unix socket: enough
/// for `docker network create/rm -d <name>` with the default IPAM. Serves until the
/// test process ends; logs the calls it got.
fn serve_driver(sock: &Path) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(sock).expect("bind driver socket");
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = calls.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                // One request after another on the same connection.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = match path.as_str() {
                        "/Plugin.Activate" => r#"{"Implements":["NetworkDriver"]}"#,
                        "/NetworkDriver.GetCapabilities" => r#"{"Scope":"local"}"#,
                        _ => "{}",
                    };
                    log.lock().unwrap().push(path);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    calls
}

/// `docker network create -d <driver>` then `rm` works, and the driver saw both.
fn network_via_driver(d: &Dockerd, driver: &str, calls: &std::sync::Mutex<Vec<String>>) {
    d.docker_ok([
        "network",
        "create",
        "-d",
        driver,
        "--subnet",
        "20.9.9.0/24",
        "cdknet",
    ])
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail(20)));
    let ls = d
        .docker_ok(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .unwrap();
    assert!(ls.contains(&format!("cdknet {driver}")), "{ls}");
    d.docker_ok(["network", "rm", "cdknet"]).unwrap();
    let calls = calls.lock().unwrap();
    for want in [
        "/Plugin.Activate",
        "/NetworkDriver.CreateNetwork",
        "/NetworkDriver.DeleteNetwork",
    ] {
        assert!(
            calls.iter().any(|c| c == want),
            "{driver}: no {want} in {calls:?}"
        );
    }
}

fn start_and_import(ns: &Netns, root: &Path) -> Dockerd {
    let t0 = Instant::now();
    let d = Dockerd::start(&ns.path(), root).unwrap_or_else(|e| panic!("{}: {e}", ns.0));
    let started = t0.elapsed();
    let t1 = Instant::now();
    d.import_busybox()
        .unwrap_or_else(|e| panic!("{}: import: {e}", ns.0));
    println!(
        "{}: dockerd answered after {:.2}s, busybox import took {:.2}s",
        ns.0,
        started.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    d
}

#[test]
fn two_private_dockerds_run_containers_and_leave_nothing() {
    if !require_root("two_private_dockerds_run_containers_and_leave_nothing") {
        return;
    }
    let pid = std::process::id();
    let ns_a = Netns::add(format!("cdk-{pid}-a"));
    let ns_b = Netns::add(format!("cdk-{pid}-b"));
    let root_a = Scratch(std::env::temp_dir().join(format!("cdk-{pid}-a")));
    let root_b = Scratch(std::env::temp_dir().join(format!("cdk-{pid}-b")));

    // Both start at the same time.
    let t0 = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let ta = s.spawn(|| start_and_import(&ns_a, &root_a.0));
        let tb = s.spawn(|| start_and_import(&ns_b, &root_b.0));
        (ta.join(), tb.join())
    });
    // If one failed, the other is dropped (and cleaned up) before the panic goes on.
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
    };
    println!(
        "both dockerds started and imported busybox in {:.2}s",
        t0.elapsed().as_secs_f64()
    );
    assert_ne!(a.pid(), b.pid());

    for d in [&a, &b] {
        let out = d
            .docker_ok(["run", "--rm", "--net=none", "busybox", "true"])
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", d.netns().display(), d.log_tail(20)));
        assert_eq!(out, "");
        // The container itself ran in a namespace of its own with only `lo`.
        let links = d
            .docker_ok(["run", "--rm", "--net=none", "busybox", "ip", "-o", "link"])
            .unwrap();
        assert_eq!(links.lines().count(), 1, "links: {links}");
    }

    // A container that ignores SIGTERM is still running when the harness stops: drop
    // must clean it up too.
    a.docker_ok(["run", "-d", "--net=none", "busybox", "sleep", "600"])
        .unwrap();

    // Plugin directories are private to each daemon.
    let marker = format!("contiv-harness-{pid}");
    std::fs::write(a.plugins_dir().join(&marker), "A's\n").unwrap();
    assert!(!b.plugins_dir().join(&marker).exists());
    assert!(!Path::new(PLUGINS_DIR).join(&marker).exists());
    let seen = |d: &Dockerd, path: &str| {
        let st = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", d.pid()))
            .args(["--", "test", "-e", path])
            .status()
            .expect("nsenter");
        st.success()
    };
    let inside = format!("{PLUGINS_DIR}/{marker}");
    assert!(seen(&a, &inside), "A does not see its own plugin file");
    assert!(!seen(&b, &inside), "B sees A's plugin file");

    // A finds a driver by its socket in A's plugin directory; B finds one through a
    // spec file in B's /etc/docker/plugins, whose socket lives anywhere.
    let drv_a = format!("cdkdrv{pid}a");
    let calls_a = serve_driver(&a.plugins_dir().join(format!("{drv_a}.sock")));
    network_via_driver(&a, &drv_a, &calls_a);
    let drv_b = format!("cdkdrv{pid}b");
    let sock_b = b.root().join("drv-b.sock");
    let calls_b = serve_driver(&sock_b);
    std::fs::write(
        b.plugin_specs_dir().join(format!("{drv_b}.spec")),
        format!("unix://{}\n", sock_b.display()),
    )
    .unwrap();
    assert!(
        !Path::new("/etc/docker/plugins")
            .join(format!("{drv_b}.spec"))
            .exists()
    );
    network_via_driver(&b, &drv_b, &calls_b);
    // And each daemon runs in its own network namespace.
    for (d, ns) in [(&a, &ns_a), (&b, &ns_b)] {
        let want = std::fs::metadata(ns.path()).unwrap();
        let got = std::fs::metadata(format!("/proc/{}/ns/net", d.pid())).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(got.ino(), want.ino(), "{} runs elsewhere", ns.0);
    }

    let pids: Vec<i32> = a.processes().into_iter().chain(b.processes()).collect();
    let containerds: Vec<i32> = [a.containerd_pid(), b.containerd_pid()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(containerds.len(), 2, "each dockerd runs its own containerd");
    assert!(
        pids.len() >= 6,
        "dockerd, containerd x2, plus A's shim and sleep: {pids:?}"
    );
    let roots = [a.root().to_path_buf(), b.root().to_path_buf()];

    let t_stop = Instant::now();
    drop(a);
    drop(b);
    println!("both stopped in {:.2}s", t_stop.elapsed().as_secs_f64());

    for p in &pids {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        assert!(!pid_alive(*p), "pid {p} ({}) survived", comm.trim());
    }
    for r in &roots {
        assert!(
            mounts_under(r).is_empty(),
            "mounts left: {:?}",
            mounts_under(r)
        );
        assert!(!r.exists(), "{} survived", r.display());
    }
}

#[test]
fn start_failure_reports_the_log_and_cleans_up() {
    if !require_root("start_failure_reports_the_log_and_cleans_up") {
        return;
    }
    let pid = std::process::id();
    let ns = Netns::add(format!("cdk-{pid}-f"));
    let root = Scratch(std::env::temp_dir().join(format!("cdk-{pid}-f")));
    // A non-empty root is refused before anything starts.
    std::fs::create_dir_all(root.0.join("keep")).unwrap();
    let e = Dockerd::start(&ns.path(), &root.0).unwrap_err();
    assert!(e.0.contains("not empty"), "{e}");
    assert!(root.0.join("keep").exists(), "a refused root was touched");
    std::fs::remove_dir_all(&root.0).unwrap();

    // A "namespace" that is a plain file: nsenter fails, the error carries its log.
    let bogus = Scratch(std::env::temp_dir().join(format!("cdk-{pid}-notns")));
    std::fs::write(&bogus.0, "").unwrap();
    let e = Dockerd::start(&bogus.0, &root.0).unwrap_err();
    assert!(e.0.contains("exited during start"), "{e}");
    assert!(e.0.contains("nsenter"), "no log tail in: {e}");
    assert!(!root.0.exists(), "root survived a failed start");
    drop(ns);
}

#[test]
fn a_failing_test_with_a_crashed_daemon_leaves_nothing() {
    if !require_root("a_failing_test_with_a_crashed_daemon_leaves_nothing") {
        return;
    }
    let pid = std::process::id();
    let ns = Netns::add(format!("cdk-{pid}-c"));
    let root = Scratch(std::env::temp_dir().join(format!("cdk-{pid}-c")));
    let d = start_and_import(&ns, &root.0);
    d.docker_ok(["run", "-d", "--net=none", "busybox", "sleep", "600"])
        .unwrap();
    let pids = d.processes();
    let dockerd = d.pid();
    let containerd = d.containerd_pid().expect("containerd runs");
    assert!(pids.contains(&containerd));
    assert!(
        pids.len() >= 4,
        "dockerd, containerd, shim, sleep: {pids:?}"
    );
    let r = d.root().to_path_buf();

    // dockerd dies without stopping anything, then the test panics while owning it.
    let st = Command::new("kill")
        .args(["-KILL", &dockerd.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _owned = d;
        panic!("a test failing midway");
    }));
    assert!(outcome.is_err());

    for p in &pids {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        assert!(!pid_alive(*p), "pid {p} ({}) survived", comm.trim());
    }
    assert!(mounts_under(&r).is_empty(), "{:?}", mounts_under(&r));
    assert!(!r.exists(), "{} survived", r.display());
}
