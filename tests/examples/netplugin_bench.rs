//! `scripts/bench.sh`: netplugin on the `quickstart` fabric (real FRR ToRs), beside BIRD
//! and FRR doing the same jobs on the same fabric.
//!
//! ```sh
//! cargo build --release -p netplugin -p netctl
//! cargo build --release -p contiv-tests --example netplugin_bench
//! target/release/examples/netplugin_bench [ENDPOINTS] [SEQ_ADDS] [PAR_ADDS] [PREFIXES]
//! #                                        defaults: 1000 200 200 100000
//! target/release/examples/netplugin_bench --only idle     # the idle row alone (~3 min)
//! # env: NP_BENCH_ONLY=idle, NP_BENCH_IDLE_ROUTES (10000), NP_BENCH_IDLE_SECS (60),
//! #      NP_BENCH_FULL (2000: endpoints on the host for the second ADD figure, 0 skips)
//! ```
//!
//! 0. Idle: netplugin on host1 with 4 BGP sessions (to one BIRD in a namespace of our own,
//!    one veth per session) learning the same 10k /32s over each (4 next hops per route),
//!    no endpoints, nothing changing: CPU ticks (`/proc/<pid>/stat`) over a fixed window,
//!    RSS, reconcile passes and requests to netmaster; then BIRD 2 doing the same job on
//!    host1 (4 sessions, `protocol kernel` export with `merge paths on`). Exits with
//!    status 2 (after printing every row) if netplugin's idle CPU is above 0.5 % of a
//!    core, its RSS above 20 MiB, or it sends netmaster more than 1 request/s.
//! 1. Endpoint created → its /32 in the kernel FIB of tor2 (the other rack's ToR), one
//!    endpoint at a time: netplugin (CNI ADD through the real `contiv-cni` binary on
//!    host1), then a Calico-style baseline on the same host (netplugin stopped): BIRD 2
//!    learning kernel device routes (`protocol kernel { learn; }`) and exporting them to
//!    tor1, while a veth and a `/32 dev` route are made by hand with `ip`. tor2's FIB is
//!    watched with `ip monitor route` inside its namespace.
//! 2. CNI ADD latency: sequential adds, then adds all issued at once; after part 1, the
//!    host is filled up to 2000 endpoints and the sequential adds are timed again.
//! 3. tor1 originates PREFIXES /32s (`network` statements, loaded before the host's
//!    speaker starts); from host1's session coming up (tor1's `%ADJCHANGE ... Up` log
//!    line) until host1's kernel holds all of them (`ip monitor route` in host1): netplugin,
//!    then FRR (bgpd + zebra) and BIRD 2 (`protocol kernel` export) in its place.
//!
//! Nothing here asserts a time, except the idle row's goals (status 2). Everything (lab, daemons, namespaces) is torn down at the
//! end, also on a panic or on SIGINT/SIGTERM/SIGHUP.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::cluster::{ContainerNs, Netmaster, Netplugin, node_exec};

/// Set by the signal thread; every wait loop checks it and panics, so that unwinding
/// tears everything down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Endpoints per container namespace (distinct `CNI_IFNAME`s in one namespace).
const PER_NS: usize = 50;
/// How long one endpoint's /32 may take to reach tor2 before it counts as lost.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(20);
/// CNI ADDs in flight while a host is filled with endpoints (untimed).
const FILL_AT_ONCE: usize = 8;
/// How long the bulk prefix load may take per daemon.
const BULK_TIMEOUT: Duration = Duration::from_secs(600);

const HOST1_ADDR: &str = "10.1.1.1";
const TOR1_ADDR: &str = "10.1.1.0";
const HOST1_AS: u32 = 65101;
const TOR1_AS: u32 = 65001;

fn interrupted() {
    if INTERRUPTED.load(Ordering::Relaxed) {
        panic!("interrupted: tearing down");
    }
}

/// Turns SIGINT/SIGTERM/SIGHUP into [`INTERRUPTED`] (a handler on a thread of its own;
/// nothing is blocked, so child processes get the default dispositions back on exec).
fn catch_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        rt.block_on(async move {
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            let _ = tx.send(());
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            eprintln!("netplugin_bench: {name}, stopping and cleaning up");
            INTERRUPTED.store(true, Ordering::Relaxed);
            // Keep the handlers installed (a second signal must not kill us mid-cleanup).
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("signal handlers installed");
}

// ---------------------------------------------------------------------------------------
// Watching a namespace's FIB.

#[derive(Default)]
struct MonState {
    /// Routes of the main table now present, with the time their first add was read.
    present: HashMap<String, Instant>,
    /// Routes whose prefix starts with this string are counted.
    counting: String,
    counted: usize,
    target: usize,
    reached: Option<Instant>,
}

/// `ip monitor route` in a namespace; every line is timestamped as it is read.
struct RouteMonitor {
    child: Child,
    state: Arc<(Mutex<MonState>, Condvar)>,
    overrun: Arc<AtomicBool>,
}

/// `20.1.0.5` → `20.1.0.5/32`; `10.0.0.0/31` stays. None for lines that are not a main
/// table unicast route.
fn route_key(line: &str) -> Option<(bool, String)> {
    let (deleted, rest) = match line.strip_prefix("Deleted ") {
        Some(r) => (true, r),
        None => (false, line),
    };
    if rest.contains(" table ") {
        return None;
    }
    let first = rest.split_whitespace().next()?;
    if !first.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let key = if first.contains('/') {
        first.to_string()
    } else if first.contains(':') {
        format!("{first}/128")
    } else {
        format!("{first}/32")
    };
    Some((deleted, key))
}

impl RouteMonitor {
    fn start(ns: &str) -> RouteMonitor {
        let mut child = Command::new("ip")
            .args(["-n", ns, "-rcvbuf", "67108864", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip monitor route");
        let state = Arc::new((Mutex::new(MonState::default()), Condvar::new()));
        let overrun = Arc::new(AtomicBool::new(false));
        let out = child.stdout.take().expect("stdout");
        let st = state.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, out);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let now = Instant::now();
                let Some((deleted, key)) = route_key(line.trim_end()) else {
                    continue;
                };
                let (m, cv) = &*st;
                let mut guard = m.lock().expect("monitor state");
                let s = &mut *guard;
                let counted = key.starts_with(s.counting.as_str()) && !s.counting.is_empty();
                if deleted {
                    if s.present.remove(&key).is_some() && counted {
                        s.counted -= 1;
                    }
                } else if let std::collections::hash_map::Entry::Vacant(e) = s.present.entry(key) {
                    e.insert(now);
                    if counted {
                        s.counted += 1;
                        if s.counted == s.target && s.reached.is_none() {
                            s.reached = Some(now);
                        }
                    }
                }
                cv.notify_all();
            }
        });
        let err = child.stderr.take().expect("stderr");
        let flag = overrun.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("ip monitor: {l}");
                flag.store(true, Ordering::Relaxed);
            }
        });
        // `ip monitor` has subscribed once it runs; give it a moment to get there.
        std::thread::sleep(Duration::from_millis(200));
        RouteMonitor {
            child,
            state,
            overrun,
        }
    }

    /// When `key` (e.g. `20.1.0.5/32`) was first seen, waiting up to `within`.
    fn wait_route(&self, key: &str, within: Duration) -> Option<Instant> {
        let (m, cv) = &*self.state;
        let deadline = Instant::now() + within;
        let mut s = m.lock().expect("monitor state");
        loop {
            if let Some(t) = s.present.get(key) {
                return Some(*t);
            }
            interrupted();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wait = (deadline - now).min(Duration::from_millis(200));
            s = cv.wait_timeout(s, wait).expect("monitor state").0;
        }
    }

    /// Starts counting present routes whose prefix starts with `start`; [`Self::wait_count`]
    /// then waits until `target` of them are present.
    fn count(&self, start: &str, target: usize) {
        let mut s = self.state.0.lock().expect("monitor state");
        s.counting = start.to_string();
        s.counted = s.present.keys().filter(|k| k.starts_with(start)).count();
        s.target = target;
        s.reached = (s.counted >= target).then(Instant::now);
    }

    /// When the count reached its target, or None after `within` (with the count).
    fn wait_count(&self, within: Duration) -> Result<Instant, usize> {
        let (m, cv) = &*self.state;
        let deadline = Instant::now() + within;
        let mut s = m.lock().expect("monitor state");
        loop {
            if let Some(t) = s.reached {
                return Ok(t);
            }
            interrupted();
            let now = Instant::now();
            if now >= deadline {
                return Err(s.counted);
            }
            let wait = (deadline - now).min(Duration::from_millis(200));
            s = cv.wait_timeout(s, wait).expect("monitor state").0;
        }
    }

    /// Replaces what the monitor believes about routes starting with `start` by the
    /// kernel's table (after `ip monitor` lost messages), and clears the overrun flag.
    fn resync(&self, ns: &str, root: &str, start: &str) {
        let listed = kernel_routes(ns, root);
        self.overrun.store(false, Ordering::Relaxed);
        let now = Instant::now();
        let mut s = self.state.0.lock().expect("monitor state");
        s.present.retain(|k, _| !k.starts_with(start));
        for k in listed {
            s.present.insert(k, now);
        }
        let (c, t) = (s.counting.clone(), s.target);
        drop(s);
        self.count(&c, t);
    }

    fn counted(&self) -> usize {
        self.state.0.lock().expect("monitor state").counted
    }

    /// Whether `ip monitor` reported lost messages (then counts may be short).
    fn overrun(&self) -> bool {
        self.overrun.load(Ordering::Relaxed)
    }
}

/// The main-table routes under `root` in a namespace's kernel, as monitor keys.
fn kernel_routes(ns: &str, root: &str) -> Vec<String> {
    let o = Command::new("ip")
        .args(["-n", ns, "route", "show", "root", root])
        .output()
        .expect("ip route show");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(route_key)
        .map(|(_, k)| k)
        .collect()
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Watching a log file for a line.

/// Polls a log file (from its current end) for the first line containing all `needles`.
struct LogWatch {
    found: Arc<Mutex<Option<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl LogWatch {
    fn start(path: &Path, needles: &[&str]) -> LogWatch {
        let mut f = std::fs::File::open(path).expect("log file");
        let mut pos = f.seek(SeekFrom::End(0)).expect("seek");
        let needles: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
        let found = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (fo, st) = (found.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut pending = String::new();
            while !st.load(Ordering::Relaxed) {
                let mut buf = Vec::new();
                if f.seek(SeekFrom::Start(pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
                    pos += buf.len() as u64;
                }
                if buf.is_empty() {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                let now = Instant::now();
                pending.push_str(&String::from_utf8_lossy(&buf));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    if needles.iter().all(|n| line.contains(n.as_str())) {
                        *fo.lock().expect("log watch") = Some((now, line.trim().to_string()));
                        return;
                    }
                }
            }
        });
        LogWatch { found, stop }
    }

    fn wait(&self, within: Duration) -> Option<Instant> {
        let start = Instant::now();
        loop {
            if let Some((t, _)) = &*self.found.lock().expect("log watch") {
                return Some(*t);
            }
            interrupted();
            if start.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for LogWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------
// Reference daemons we start ourselves inside a lab node's namespace.

/// A process started with `ip netns exec` (which execs, so the pid is the daemon's);
/// SIGTERM and waited for on drop, SIGKILL after the grace period.
struct Daemon {
    name: String,
    child: Option<Child>,
    grace: Duration,
}

impl Daemon {
    fn spawn(name: &str, ns: &str, argv: &[String], log: &Path) -> Daemon {
        let out = std::fs::File::create(log).expect("daemon log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Daemon {
            name: name.to_string(),
            child: Some(child),
            grace: Duration::from_secs(60),
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pid = c.id();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            if start.elapsed() > self.grace {
                eprintln!("{} (pid {pid}) ignored SIGTERM; killing it", self.name);
                let _ = c.kill();
                let _ = c.wait();
                // FRR leaves a crash-log directory when it does not exit cleanly.
                let dir = PathBuf::from(format!("/var/tmp/frr/{}.{pid}", self.name));
                if dir.is_dir() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn birdc_ready(ctl: &Path) -> bool {
    Command::new("birdc")
        .arg("-s")
        .arg(ctl)
        .args(["show", "status"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// BIRD 2 in `ns` with `conf`; returns once it answers on its control socket.
fn start_bird(ns: &str, dir: &Path, conf: &str) -> Daemon {
    std::fs::create_dir_all(dir).expect("bird dir");
    let cfg = dir.join("bird.conf");
    std::fs::write(&cfg, conf).expect("bird.conf");
    let ctl = dir.join("bird.ctl");
    let s = |p: &Path| p.display().to_string();
    let mut d = Daemon::spawn(
        "bird",
        ns,
        &[
            "/usr/sbin/bird".into(),
            "-f".into(),
            "-c".into(),
            s(&cfg),
            "-s".into(),
            s(&ctl),
            "-P".into(),
            s(&dir.join("bird.pid")),
        ],
        &dir.join("bird.out"),
    );
    let start = Instant::now();
    while !birdc_ready(&ctl) {
        assert!(
            d.alive(),
            "bird exited: {}",
            std::fs::read_to_string(dir.join("bird.out")).unwrap_or_default()
        );
        assert!(start.elapsed() < Duration::from_secs(20), "bird not ready");
        interrupted();
        std::thread::sleep(Duration::from_millis(10));
    }
    d
}

/// FRR zebra + bgpd in `ns` with the integrated config `conf`; zebra first (bgpd needs
/// its socket), each ready once its vty socket exists.
fn start_frr(ns: &str, dir: &Path, conf: &str) -> Vec<Daemon> {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("frr dir");
    let cfg = dir.join("frr.conf");
    std::fs::write(&cfg, conf).expect("frr.conf");
    let s = |p: &Path| p.display().to_string();
    let mut out = Vec::new();
    for name in ["zebra", "bgpd"] {
        let mut argv = vec![
            format!("/usr/lib/frr/{name}"),
            "-f".into(),
            s(&cfg),
            "-i".into(),
            s(&run.join(format!("{name}.pid"))),
            "-z".into(),
            s(&run.join("zserv.api")),
            "--vty_socket".into(),
            s(&run),
            "-A".into(),
            "127.0.0.1".into(),
            "-P".into(),
            "0".into(),
            "-u".into(),
            "root".into(),
            "-g".into(),
            "frrvty".into(),
            "--log".into(),
            "stdout".into(),
        ];
        if name == "zebra" {
            // As Debian's /etc/frr/daemons starts it: a large netlink receive buffer.
            argv.extend(["-s".into(), "90000000".into()]);
        }
        let mut d = Daemon::spawn(name, ns, &argv, &dir.join(format!("{name}.log")));
        let vty = run.join(format!("{name}.vty"));
        let start = Instant::now();
        while !vty.exists() {
            assert!(
                d.alive(),
                "{name} exited: {}",
                std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} not ready"
            );
            interrupted();
            std::thread::sleep(Duration::from_millis(10));
        }
        out.push(d);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Figures.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, Default)]
struct Lat {
    samples: Vec<Duration>,
    lost: usize,
}

impl Lat {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.samples.clone();
        v.sort();
        v
    }
    fn p(&self, p: f64) -> Duration {
        percentile(&self.sorted(), p)
    }
    fn describe(&self) -> String {
        let s = self.sorted();
        let mean = if s.is_empty() {
            Duration::ZERO
        } else {
            s.iter().sum::<Duration>() / s.len() as u32
        };
        format!(
            "n={} p50 {} p90 {} p99 {} max {} mean {}{}",
            s.len(),
            ms(percentile(&s, 50.0)),
            ms(percentile(&s, 90.0)),
            ms(percentile(&s, 99.0)),
            ms(s.last().copied().unwrap_or_default()),
            ms(mean),
            if self.lost > 0 {
                format!(" ({} lost/failed)", self.lost)
            } else {
                String::new()
            }
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "–".into();
    }
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

/// From the start of an endpoint's creation: its maker returned (the CNI ADD; the three
/// `ip` commands), its /32 in host1's FIB, in tor1's FIB (and, beside it, in tor2's).
#[derive(Debug, Clone, Default)]
struct Legs {
    done: Lat,
    host1: Lat,
    tor1: Lat,
}

impl Legs {
    fn describe(&self, tor2: &Lat) -> String {
        let f = |l: &Lat| format!("{} / {}", ms(l.p(50.0)), ms(l.p(99.0)));
        format!(
            "p50 / p99 from the start: made {}, host1 FIB {}, tor1 FIB {}, tor2 FIB {}{}",
            f(&self.done),
            f(&self.host1),
            f(&self.tor1),
            f(tor2),
            if self.host1.lost + self.tor1.lost > 0 {
                format!(
                    " ({} host1 / {} tor1 not seen)",
                    self.host1.lost, self.tor1.lost
                )
            } else {
                String::new()
            }
        )
    }
}

/// One daemon's bulk load: times from launch and from the session coming up.
#[derive(Debug, Clone, Default)]
struct Bulk {
    /// Launch → tor1 logs the session Up.
    up: Option<Duration>,
    /// Session Up → the last prefix in host1's kernel.
    load: Option<Duration>,
    /// Launch → the last prefix in host1's kernel.
    total: Option<Duration>,
    /// Prefixes present when it gave up (if it did).
    short: Option<usize>,
    /// `ip monitor` lost messages, so the end was found by polling the kernel's table.
    polled: bool,
}

impl Bulk {
    fn describe(&self) -> String {
        match (self.up, self.load, self.total) {
            (Some(u), Some(l), Some(t)) => format!(
                "session up {} after launch; all in the kernel {} after it ({} from launch){}",
                secs(u),
                secs(l),
                secs(t),
                if self.polled {
                    " [end found by polling the kernel table: ip monitor lost messages]"
                } else {
                    ""
                }
            ),
            _ => format!(
                "did not finish: session up {:?}, {} prefixes in the kernel",
                self.up,
                self.short.unwrap_or(0)
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The cluster.

/// CNI failures printed so far (the rest are only counted).
static FAILURES_SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn cni_ip(out: &Output) -> Option<String> {
    if !out.status.success() {
        if FAILURES_SHOWN.fetch_add(1, Ordering::Relaxed) >= 3 {
            return None;
        }
        eprintln!(
            "CNI ADD failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let a = v["ips"][0]["address"].as_str()?;
    Some(a.split('/').next()?.to_string())
}

fn sh(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("command runs");
    if !o.status.success() {
        eprintln!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o
}

fn ip_ok(args: &[&str]) -> bool {
    sh(Command::new("ip").args(args)).status.success()
}

/// Container namespaces, [`PER_NS`] endpoints each, created on demand.
struct NsPool {
    prefix: String,
    pool: Vec<ContainerNs>,
}

impl NsPool {
    /// The namespace and interface name of endpoint slot `i`.
    fn slot(&mut self, i: usize) -> (String, String, usize) {
        let k = i / PER_NS;
        while self.pool.len() <= k {
            let n = ContainerNs::new(&format!("{}-c{}", self.prefix, self.pool.len()));
            self.pool.push(n);
        }
        let p = &self.pool[k];
        (p.path(), p.name.clone(), i % PER_NS + 1)
    }
}

/// Waits until netplugin on host1 reports its session with tor1 established.
fn wait_netplugin_session(nm: &Netmaster, p: &Netplugin) {
    let start = Instant::now();
    loop {
        let o = nm.ok("netctl bgp inspect host1");
        if o.contains("\"neighborStatus\": \"established\"") {
            return;
        }
        interrupted();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "host1's session did not come up: {o}\n{}",
            p.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Default)]
struct Results {
    idle: Idle,
    /// Sequential ADDs with `full_from` endpoints already on the host.
    full_add: Lat,
    full_from: usize,
    np_fib: Lat,
    np_add_in_fib: Lat,
    calico_fib: Lat,
    seq_add: Lat,
    par_add: Lat,
    par_wall: Duration,
    par_n: usize,
    bulk_np: Bulk,
    bulk_frr: Bulk,
    bulk_bird: Bulk,
    inject: Duration,
}

struct Cfg {
    endpoints: usize,
    seq: usize,
    par: usize,
    prefixes: usize,
    /// Endpoints on the host for the second sequential ADD figure (`NP_BENCH_FULL`,
    /// 2000; 0 skips it).
    full: usize,
    /// `--only idle` (or `NP_BENCH_ONLY=idle`): the idle row alone.
    only_idle: bool,
    /// Routes the idle row's peers announce (`NP_BENCH_IDLE_ROUTES`, 10 000).
    idle_routes: usize,
    /// The idle row's measuring window (`NP_BENCH_IDLE_SECS`, 60 s: BIRD's default
    /// kernel and device scans, every 60 s, fall into it once).
    idle_window: Duration,
}

impl Cfg {
    fn from_args() -> Cfg {
        let mut pos = Vec::new();
        let mut only = std::env::var("NP_BENCH_ONLY").ok();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "--only" {
                only = Some(args.next().expect("--only needs a part: idle"));
            } else if let Some(v) = a.strip_prefix("--only=") {
                only = Some(v.to_string());
            } else {
                pos.push(a.parse::<usize>().unwrap_or_else(|_| {
                    panic!(
                        "{a:?}: arguments are ENDPOINTS SEQ_ADDS PAR_ADDS PREFIXES [--only idle]"
                    )
                }));
            }
        }
        let only_idle = match only.as_deref() {
            None | Some("") | Some("all") => false,
            Some("idle") => true,
            Some(o) => panic!("--only {o}: the only part that runs alone is idle"),
        };
        let env = |k: &str, d: usize| {
            std::env::var(k).ok().map_or(d, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{k}={v}: not a number"))
            })
        };
        let at = |i: usize, d: usize| pos.get(i).copied().unwrap_or(d);
        Cfg {
            endpoints: at(0, 1000),
            seq: at(1, 200),
            par: at(2, 200),
            prefixes: at(3, 100_000),
            full: env("NP_BENCH_FULL", 2000),
            only_idle,
            idle_routes: env("NP_BENCH_IDLE_ROUTES", 10_000),
            idle_window: Duration::from_secs(env("NP_BENCH_IDLE_SECS", 60) as u64),
        }
    }
}

fn tor1_bgpd_log(lab: &containerlab::Lab) -> PathBuf {
    lab.plan()
        .node("tor1")
        .expect("tor1")
        .daemons
        .iter()
        .find(|d| d.name == "bgpd")
        .expect("tor1 runs bgpd")
        .log
        .clone()
}

fn up_watch(lab: &containerlab::Lab) -> LogWatch {
    // FRR (datacenter defaults log neighbor changes):
    // "%ADJCHANGE: neighbor 10.1.1.1(Unknown) in vrf default Up"
    LogWatch::start(
        &tor1_bgpd_log(lab),
        &[&format!("%ADJCHANGE: neighbor {HOST1_ADDR}("), " Up"],
    )
}

/// Runs one bulk-load measurement: `launch` starts the speaker on host1; the clock runs
/// from then (and from tor1 seeing the session Up) to all prefixes in host1's kernel.
fn bulk<T>(
    lab: &containerlab::Lab,
    host_ns: &str,
    mon: &RouteMonitor,
    target: usize,
    launch: impl FnOnce() -> T,
) -> (Bulk, T) {
    mon.count("30.", target);
    let watch = up_watch(lab);
    let t0 = Instant::now();
    let guard = launch();
    let mut b = Bulk::default();
    let Some(up) = watch.wait(Duration::from_secs(60)) else {
        b.short = Some(mon.counted());
        return (b, guard);
    };
    b.up = Some(up.saturating_duration_since(t0));
    let deadline = Instant::now() + BULK_TIMEOUT;
    let done = loop {
        interrupted();
        if mon.overrun() {
            // `ip monitor` lost messages: count the kernel's table instead (each poll
            // takes a while at 100k routes, so this end time is late by up to one poll).
            b.polled = true;
            let n = kernel_routes(host_ns, "30.0.0.0/8").len();
            if n >= target {
                break Ok(Instant::now());
            }
            if Instant::now() > deadline {
                break Err(n);
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match mon.wait_count(Duration::from_millis(500)) {
            Ok(t) => break Ok(t),
            Err(n) if Instant::now() > deadline => break Err(n),
            Err(_) => {}
        }
    };
    match done {
        Ok(done) => {
            b.load = Some(done.saturating_duration_since(up));
            b.total = Some(done.saturating_duration_since(t0));
        }
        Err(n) => b.short = Some(n),
    }
    (b, guard)
}

/// Removes whatever is left of the bulk prefixes from host1's kernel.
fn flush_bulk(host_ns: &str, mon: &RouteMonitor) {
    ip_ok(&["-n", host_ns, "route", "flush", "root", "30.0.0.0/8"]);
    mon.count("30.", 0);
    let start = Instant::now();
    while mon.counted() > 0 && !mon.overrun() && start.elapsed() < Duration::from_secs(20) {
        interrupted();
        std::thread::sleep(Duration::from_millis(50));
    }
    // The kernel is what counts: flush again (a no-op when empty) and take its table.
    ip_ok(&["-n", host_ns, "route", "flush", "root", "30.0.0.0/8"]);
    mon.resync(host_ns, "30.0.0.0/8", "30.");
    let left = mon.counted();
    assert_eq!(
        left, 0,
        "{left} bulk routes left in host1's kernel after a flush"
    );
}

// ---------------------------------------------------------------------------------------
// Idle: netplugin with IDLE_PEERS sessions and learned routes, nothing changing, beside
// BIRD doing the same job.

/// BGP sessions of the idle row (each to its own address of one peer BIRD).
const IDLE_PEERS: usize = 4;
/// The idle row's goals: netplugin's RSS and CPU while nothing changes.
const IDLE_RSS_GOAL_MIB: f64 = 20.0;
const IDLE_CPU_GOAL_PCT: f64 = 0.5;
/// Reports netplugin may send netmaster per second while idle (one per `report_every`,
/// 3 s, plus some slack); more means something republishes without a change.
const IDLE_REPORTS_GOAL_PER_S: f64 = 1.0;
const PEER_AS: u32 = 65300;

/// CPU and memory of one process over the idle window.
#[derive(Debug, Clone, Default)]
struct IdleUse {
    /// utime + stime over the window, in clock ticks.
    ticks: u64,
    /// Of one core, over the window.
    cpu_pct: f64,
    rss_mib: f64,
    hwm_mib: f64,
    /// Launch → every route in the kernel with all its next hops.
    converged: Option<Duration>,
    /// netplugin's reconcile passes during the window (its /metrics).
    passes: Option<u64>,
    /// Requests netmaster served during the window, per second.
    master_rps: f64,
    /// CPU of this process (netmaster runs in it; the harness only sleeps and scrapes)
    /// over the window, % of a core.
    master_cpu_pct: f64,
}

#[derive(Debug, Clone, Default)]
struct Idle {
    window: Duration,
    routes: usize,
    np: Option<IdleUse>,
    bird: Option<IdleUse>,
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, field 3 (state) is index 0: utime (14) and stime (15).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A `Vm*:` line of /proc/<pid>/status, in MiB.
fn vm_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn clock_ticks_per_s() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// The pid of the process whose command line holds `needle` as one argument (the
/// netplugin we started: its `--state-dir` is ours alone).
fn pid_with_arg(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        cmd.split(|b| *b == 0)
            .any(|a| a == needle.as_bytes())
            .then_some(pid)
    })
}

/// The sum of the samples of a Prometheus text family whose lines start with `name`
/// (`name{...} v` or `name v`).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Requests netmaster has served, `/metrics` scrapes left out.
fn master_requests(nm: &Netmaster) -> f64 {
    let text = nm.get("/metrics").unwrap_or_default();
    let all = metric_sum(&text, "netmaster_http_requests_total");
    let scrapes: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("netmaster_http_requests_total{") && l.contains("route=\"/metrics\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    all - scrapes
}

/// netplugin's reconcile passes so far (its /metrics).
fn np_passes(p: &Netplugin) -> Option<u64> {
    let text = contiv_tests::cluster::http_get(p.metrics_addr()?, "/metrics")?;
    Some(metric_sum(&text, "netplugin_reconcile_duration_seconds_count") as u64)
}

/// The peer side of the idle row: a namespace of our own with IDLE_PEERS veths to host1
/// (host1 has `10.200.<k>.1/31`, the peer `10.200.<k>.0/31`) and one BIRD announcing the
/// same `routes` /32s (40.0.0.0/8) over one session per veth, so host1 learns every route
/// with IDLE_PEERS next hops. Dropped in order: BIRD, then the namespace (which takes
/// the veths with it).
struct IdlePeers {
    bird: Option<Daemon>,
    _ns: ContainerNs,
}

impl Drop for IdlePeers {
    fn drop(&mut self) {
        if let Some(mut b) = self.bird.take() {
            b.stop();
        }
    }
}

fn idle_peers(host_ns: &str, dir: &Path, routes: usize) -> IdlePeers {
    let ns = ContainerNs::new(&format!("{host_ns}-peers"));
    for k in 0..IDLE_PEERS {
        let ifname = format!("bnp{k}");
        assert!(
            ip_ok(&[
                "-n", host_ns, "link", "add", &ifname, "type", "veth", "peer", "name", &ifname,
                "netns", &ns.name,
            ]),
            "idle peer veth {k}"
        );
        for (n, a) in [
            (host_ns, format!("10.200.{k}.1/31")),
            (ns.name.as_str(), format!("10.200.{k}.0/31")),
        ] {
            assert!(ip_ok(&["-n", n, "addr", "add", &a, "dev", &ifname]));
            assert!(ip_ok(&["-n", n, "link", "set", &ifname, "up"]));
        }
    }
    let mut conf = format!(
        "log \"{dir}/bird.log\" {{ warning, error, fatal }};\nrouter id 10.200.0.0;\n\
         protocol device {{ }}\nprotocol static idleroutes {{\n  ipv4;\n",
        dir = dir.display()
    );
    for i in 0..routes {
        conf.push_str(&format!(
            "  route 40.{}.{}.{}/32 blackhole;\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    conf.push_str("}\n");
    for k in 0..IDLE_PEERS {
        conf.push_str(&format!(
            "protocol bgp p{k} {{\n  local 10.200.{k}.0 as {PEER_AS};\n  neighbor 10.200.{k}.1 as {HOST1_AS};\n  \
             hold time 90; connect delay time 1; connect retry time 1;\n  \
             ipv4 {{ import none; export where proto = \"idleroutes\"; }};\n}}\n"
        ));
    }
    let bird = start_bird(&ns.name, dir, &conf);
    IdlePeers {
        bird: Some(bird),
        _ns: ns,
    }
}

/// Waits until host1's kernel holds all `routes` idle routes, the last one with every
/// peer as a next hop; returns when, or None after `within`.
fn wait_idle_routes(host_ns: &str, routes: usize, within: Duration) -> Option<Instant> {
    let last = routes.saturating_sub(1);
    let probe = format!("40.{}.{}.{}", last >> 16, (last >> 8) & 255, last & 255);
    let start = Instant::now();
    loop {
        interrupted();
        let o = Command::new("ip")
            .args(["-n", host_ns, "route", "show", &probe])
            .output()
            .expect("ip route show");
        let hops = String::from_utf8_lossy(&o.stdout)
            .matches("nexthop")
            .count();
        if hops == IDLE_PEERS && kernel_routes(host_ns, "40.0.0.0/8").len() >= routes {
            return Some(Instant::now());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Measures `pid` over `window` (after a quiet `settle`), with netmaster's request rate.
fn idle_window(
    pid: u32,
    nm: &Netmaster,
    window: Duration,
    passes: impl Fn() -> Option<u64>,
) -> IdleUse {
    let me = std::process::id();
    let (t0, r0, p0, m0) = (cpu_ticks(pid), master_requests(nm), passes(), cpu_ticks(me));
    let start = Instant::now();
    while start.elapsed() < window {
        interrupted();
        std::thread::sleep(Duration::from_millis(200));
    }
    let secs = start.elapsed().as_secs_f64();
    let (t1, r1, p1, m1) = (cpu_ticks(pid), master_requests(nm), passes(), cpu_ticks(me));
    let ticks = t1.zip(t0).map_or(0, |(a, b)| a.saturating_sub(b));
    let mticks = m1.zip(m0).map_or(0, |(a, b)| a.saturating_sub(b));
    IdleUse {
        ticks,
        cpu_pct: ticks as f64 / clock_ticks_per_s() / secs * 100.0,
        rss_mib: vm_mib(pid, "VmRSS:"),
        hwm_mib: vm_mib(pid, "VmHWM:"),
        converged: None,
        passes: p1.zip(p0).map(|(a, b)| a.saturating_sub(b)),
        master_rps: (r1 - r0).max(0.0) / secs,
        master_cpu_pct: mticks as f64 / clock_ticks_per_s() / secs * 100.0,
    }
}

impl IdleUse {
    fn describe(&self) -> String {
        format!(
            "{} ticks = {:.2} % of a core, RSS {:.1} MiB (peak {:.1} MiB), converged {}{}, netmaster {:.2} requests/s ({:.2} % of a core with the harness)",
            self.ticks,
            self.cpu_pct,
            self.rss_mib,
            self.hwm_mib,
            opt(self.converged),
            self.passes
                .map(|p| format!(", {p} reconcile passes"))
                .unwrap_or_default(),
            self.master_rps,
            self.master_cpu_pct
        )
    }
}

/// The idle row: netplugin on host1 with IDLE_PEERS sessions learning `routes` routes,
/// then BIRD in its place; each measured over `window` once converged and settled.
/// Leaves host1 without a `Bgp` object and without the idle routes.
fn run_idle(
    lab: &containerlab::Lab,
    nm: &Netmaster,
    dir: &Path,
    routes: usize,
    window: Duration,
) -> Idle {
    let host_ns = lab.namespace("host1").expect("host1");
    let settle = Duration::from_secs(5);
    println!(
        "== 0. idle: {IDLE_PEERS} BGP sessions, {routes} learned routes (each with {IDLE_PEERS} next hops), no endpoints; {}s window after {}s settle",
        window.as_secs(),
        settle.as_secs()
    );
    let peers = idle_peers(&host_ns, &dir.join("idle-peers"), routes);
    // The idle routes are inside a network's subnet: the host's import policy installs
    // only what the intent names.
    nm.ok(
        "netctl net create idle-routes --subnet=40.0.0.0/8 --gateway=40.255.255.254 --pkt-tag=1999",
    );
    // Each peer on a link of its own (the host's address there in --local-address); BIRD
    // without GTSM here.
    let mut bgp = format!(
        "netctl bgp create host1 --router-ip={HOST1_ADDR}/31 --as={HOST1_AS} --neighbor-as={PEER_AS} --neighbor=10.200.0.0 --no-ttl-security"
    );
    for k in 0..IDLE_PEERS {
        bgp.push_str(&format!(" --local-address=10.200.{k}.1/31"));
        if k > 0 {
            bgp.push_str(&format!(" --peer=10.200.{k}.0:{PEER_AS}"));
        }
    }
    nm.ok(&bgp);
    let mut out = Idle {
        window,
        routes,
        ..Idle::default()
    };

    let np_dir = dir.join("idle-np");
    std::fs::create_dir_all(&np_dir).expect("idle dir");
    let t0 = Instant::now();
    let mut p = Netplugin::start(lab, "host1", nm, &np_dir);
    let state_dir = p.state_dir.display().to_string();
    let conv = wait_idle_routes(&host_ns, routes, Duration::from_secs(120));
    match (conv, pid_with_arg(&state_dir)) {
        (Some(c), Some(pid)) => {
            std::thread::sleep(settle);
            let mut u = idle_window(pid, nm, window, || np_passes(&p));
            u.converged = Some(c.saturating_duration_since(t0));
            println!("   netplugin: {}", u.describe());
            out.np = Some(u);
        }
        (c, pid) => eprintln!(
            "   netplugin: did not converge (routes {c:?}, pid {pid:?}): {} routes in host1; log:\n{}",
            kernel_routes(&host_ns, "40.0.0.0/8").len(),
            p.log_tail()
        ),
    }
    p.stop();
    nm.ok("netctl bgp delete host1");
    nm.ok("netctl net delete idle-routes");
    ip_ok(&["-n", &host_ns, "route", "flush", "root", "40.0.0.0/8"]);

    let bird_dir = dir.join("idle-bird");
    let mut conf = format!(
        "log \"{d}/bird.log\" {{ warning, error, fatal }};\nrouter id {HOST1_ADDR};\n\
         protocol device {{ }}\nprotocol kernel {{\n  ipv4 {{ import none; export all; }};\n  merge paths on;\n}}\n",
        d = bird_dir.display()
    );
    for k in 0..IDLE_PEERS {
        conf.push_str(&format!(
            "protocol bgp p{k} {{\n  local 10.200.{k}.1 as {HOST1_AS};\n  neighbor 10.200.{k}.0 as {PEER_AS};\n  \
             hold time 90; connect delay time 1; connect retry time 1;\n  \
             ipv4 {{ import all; export none; }};\n}}\n"
        ));
    }
    let t0 = Instant::now();
    let mut bird = start_bird(&host_ns, &bird_dir, &conf);
    let pid = bird.child.as_ref().map(Child::id);
    match (
        wait_idle_routes(&host_ns, routes, Duration::from_secs(120)),
        pid,
    ) {
        (Some(c), Some(pid)) => {
            std::thread::sleep(settle);
            let mut u = idle_window(pid, nm, window, || None);
            u.converged = Some(c.saturating_duration_since(t0));
            println!("   BIRD: {}", u.describe());
            out.bird = Some(u);
        }
        _ => eprintln!(
            "   BIRD: did not converge: {} routes in host1",
            kernel_routes(&host_ns, "40.0.0.0/8").len()
        ),
    }
    bird.stop();
    ip_ok(&["-n", &host_ns, "route", "flush", "root", "40.0.0.0/8"]);
    drop(peers);
    out
}

// ---------------------------------------------------------------------------------------
// Where an ADD's time goes, from the two daemons' own metrics (deltas over a phase).

/// Counters read from netplugin's and netmaster's /metrics.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    passes: f64,
    pass_s: f64,
    fib_syncs: f64,
    fib_s: f64,
    /// netmaster: `POST /api/v1/plugin/endpoints/` (the address allocation).
    alloc: f64,
    alloc_s: f64,
    /// netmaster: `PUT /api/v1/feed/hosts/{host}/` (host reports).
    reports: f64,
    reports_s: f64,
}

/// The `_count` and `_sum` of a histogram family, over the lines whose labels contain
/// `labels` (all of them when empty).
fn hist(text: &str, name: &str, labels: &str) -> (f64, f64) {
    let pick = |suffix: &str| -> f64 {
        let full = format!("{name}{suffix}");
        text.lines()
            .filter(|l| {
                l.strip_prefix(full.as_str())
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
                    && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (pick("_count"), pick("_sum"))
}

fn probe(nm: &Netmaster, p: &Netplugin) -> Probe {
    let np = p
        .metrics_addr()
        .and_then(|a| contiv_tests::cluster::http_get(a, "/metrics"))
        .unwrap_or_default();
    let m = nm.get("/metrics").unwrap_or_default();
    let (passes, pass_s) = hist(&np, "netplugin_reconcile_duration_seconds", "");
    let (fib_syncs, fib_s) = hist(&np, "netplugin_fib_sync_duration_seconds", "");
    let (alloc, alloc_s) = hist(
        &m,
        "netmaster_http_request_duration_seconds",
        "route=\"/api/v1/plugin/endpoints/\",method=\"POST\"",
    );
    let (reports, reports_s) = hist(
        &m,
        "netmaster_http_request_duration_seconds",
        "method=\"PUT\"",
    );
    Probe {
        passes,
        pass_s,
        fib_syncs,
        fib_s,
        alloc,
        alloc_s,
        reports,
        reports_s,
    }
}

/// One line: per ADD (over `adds` ADDs taking `wall` in all), what the daemons did.
fn breakdown(a: Probe, b: Probe, adds: usize, wall: Duration) -> String {
    let n = adds.max(1) as f64;
    let per = |c: f64, s: f64| if c > 0.0 { s / c * 1000.0 } else { 0.0 };
    let secs = wall.as_secs_f64().max(1e-9);
    format!(
        "per ADD: netmaster allocation {:.2} ms (server side, {:.0} calls); \
         reconcile passes {:.1}/ADD ({:.1}/s), {:.2} ms each (FIB sync {:.2} ms of it); \
         host reports {:.2}/s at {:.2} ms each (server side)",
        per(b.alloc - a.alloc, b.alloc_s - a.alloc_s),
        b.alloc - a.alloc,
        (b.passes - a.passes) / n,
        (b.passes - a.passes) / secs,
        per(b.passes - a.passes, b.pass_s - a.pass_s),
        per(b.fib_syncs - a.fib_syncs, b.fib_s - a.fib_s),
        (b.reports - a.reports) / secs,
        per(b.reports - a.reports, b.reports_s - a.reports_s),
    )
}

fn run(cfg: &Cfg) -> Results {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab: LabGuard = contiv_tests::fabric_lab("quickstart", "bench")
        .deploy_guarded(&DeployOptions::default())
        .expect("deploy quickstart");
    lab.wait_established(Duration::from_secs(60))
        .expect("ToR sessions");
    let host_ns = lab.namespace("host1").expect("host1");
    let tor2_ns = lab.namespace("tor2").expect("tor2");
    // tor1 keeps the bulk prefixes of part 3 to itself (tor2 would only burn CPU on them).
    let o = node_exec(
        &lab,
        "tor1",
        "vtysh -c 'conf t' -c 'ip prefix-list NO-BULK seq 10 deny 30.0.0.0/8 le 32' \
         -c 'ip prefix-list NO-BULK seq 20 permit 0.0.0.0/0 le 32' -c 'router bgp 65001' \
         -c 'address-family ipv4 unicast' -c 'neighbor 10.0.0.1 prefix-list NO-BULK out'",
    );
    assert!(o.status.success(), "tor1 prefix-list: {o:?}");

    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok(
        "netctl net create contiv-net --subnet=20.1.0.0/16 --gateway=20.1.255.254 --pkt-tag=1001",
    );
    // The bulk /32s of part 3 are inside a network's subnet: the host's import policy
    // installs only what the intent names.
    nm.ok(
        "netctl net create bulk-routes --subnet=30.0.0.0/8 --gateway=30.255.255.254 --pkt-tag=1002",
    );
    // 0. Idle, first: a fresh host, no endpoints (it leaves host1 without a Bgp object).
    let idle = run_idle(&lab, &nm, tmp.path(), cfg.idle_routes, cfg.idle_window);
    if cfg.only_idle {
        return Results {
            idle,
            ..Results::default()
        };
    }
    nm.ok(&format!(
        "netctl bgp create host1 --router-ip={HOST1_ADDR}/31 --as={HOST1_AS} \
         --neighbor-as={TOR1_AS} --neighbor={TOR1_ADDR}"
    ));
    let mut p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    wait_netplugin_session(&nm, &p1);
    let conf = p1.netconf("contiv-net", None);
    let mut pool = NsPool {
        prefix: host_ns.clone(),
        pool: Vec::new(),
    };
    let mut slot = 0;
    let tor2 = RouteMonitor::start(&tor2_ns);
    // Where the endpoint → tor2 time goes: the /32 in host1's own FIB, then in tor1's.
    let host_mon = RouteMonitor::start(&host_ns);
    let tor1_mon = RouteMonitor::start(&lab.namespace("tor1").expect("tor1"));
    let legs = |key: &str, t0: Instant, l: &mut Legs| {
        for (mon, lat) in [(&host_mon, &mut l.host1), (&tor1_mon, &mut l.tor1)] {
            match mon.wait_route(key, Duration::from_secs(1)) {
                Some(t) => lat.samples.push(t.saturating_duration_since(t0)),
                None => lat.lost += 1,
            }
        }
    };

    // 2. CNI ADD latency, sequential then all at once (first, on a host with few endpoints).
    println!("== 2. CNI ADD latency: {} sequential", cfg.seq);
    let mut seq_add = Lat::default();
    let (pr0, w0) = (probe(&nm, &p1), Instant::now());
    for i in 0..cfg.seq {
        interrupted();
        let (path, _, j) = pool.slot(slot);
        slot += 1;
        let t0 = Instant::now();
        let out = p1.cni("ADD", &format!("seq-{i}"), &path, &format!("eth{j}"), &conf);
        let d = t0.elapsed();
        match cni_ip(&out) {
            Some(_) => seq_add.samples.push(d),
            None => seq_add.lost += 1,
        }
    }
    println!("   sequential: {}", seq_add.describe());
    println!(
        "   {}",
        breakdown(pr0, probe(&nm, &p1), cfg.seq, w0.elapsed())
    );
    println!("== 2. CNI ADD latency: {} issued at once", cfg.par);
    let slots: Vec<(String, usize)> = (0..cfg.par)
        .map(|_| {
            let (path, _, j) = pool.slot(slot);
            slot += 1;
            (path, j)
        })
        .collect();
    let barrier = Barrier::new(cfg.par + 1);
    let (par_add, par_wall) = std::thread::scope(|s| {
        let handles: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(i, (path, j))| {
                let (p1, conf, barrier) = (&p1, &conf, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let t0 = Instant::now();
                    let out = p1.cni("ADD", &format!("par-{i}"), path, &format!("eth{j}"), conf);
                    (t0.elapsed(), Instant::now(), cni_ip(&out).is_some())
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut lat = Lat::default();
        let mut last = t0;
        for h in handles {
            let (d, end, ok) = h.join().expect("CNI thread");
            if ok {
                lat.samples.push(d);
            } else {
                lat.lost += 1;
            }
            last = last.max(end);
        }
        (lat, last.saturating_duration_since(t0))
    });
    println!(
        "   {} at once: all done in {}; each: {}",
        cfg.par,
        secs(par_wall),
        par_add.describe()
    );

    // 1a. netplugin: CNI ADD → /32 in tor2's FIB, one endpoint at a time (after part 2).
    println!(
        "== 1. endpoint → /32 in tor2's FIB, {} endpoints one at a time",
        cfg.endpoints
    );
    let mut np_fib = Lat::default();
    let mut np_add_in_fib = Lat::default();
    let mut np_legs = Legs::default();
    let (pr0, w0) = (probe(&nm, &p1), Instant::now());
    for i in 0..cfg.endpoints {
        interrupted();
        let (path, _, j) = pool.slot(slot);
        slot += 1;
        let t0 = Instant::now();
        let out = p1.cni("ADD", &format!("fib-{i}"), &path, &format!("eth{j}"), &conf);
        let added = t0.elapsed();
        let Some(ip) = cni_ip(&out) else {
            np_fib.lost += 1;
            continue;
        };
        np_add_in_fib.samples.push(added);
        match tor2.wait_route(&format!("{ip}/32"), ROUTE_TIMEOUT) {
            Some(t) => np_fib.samples.push(t.saturating_duration_since(t0)),
            None => np_fib.lost += 1,
        }
        legs(&format!("{ip}/32"), t0, &mut np_legs);
        if (i + 1) % 100 == 0 {
            println!(
                "   netplugin {}/{}: {}",
                i + 1,
                cfg.endpoints,
                np_fib.describe()
            );
        }
    }
    println!("   netplugin CNI ADD → tor2 FIB: {}", np_fib.describe());
    println!(
        "   {}",
        breakdown(pr0, probe(&nm, &p1), cfg.endpoints, w0.elapsed())
    );

    // 2b. CNI ADD latency on a full host: fill it up to `cfg.full` endpoints (untimed,
    // FILL_AT_ONCE at a time), then the same sequential ADDs as on the fresh host.
    let mut full_add = Lat::default();
    let mut on_host = slot;
    if cfg.full > 0 {
        println!(
            "== 2b. CNI ADD latency with {} endpoints on the host: filling from {slot}",
            cfg.full
        );
        let fill = cfg.full.saturating_sub(slot);
        let mut failed = 0;
        for chunk in (0..fill).collect::<Vec<_>>().chunks(FILL_AT_ONCE) {
            interrupted();
            let slots: Vec<(usize, String, usize)> = chunk
                .iter()
                .map(|i| {
                    let (path, _, j) = pool.slot(slot);
                    slot += 1;
                    (*i, path, j)
                })
                .collect();
            failed += std::thread::scope(|s| {
                let hs: Vec<_> = slots
                    .iter()
                    .map(|(i, path, j)| {
                        let (p1, conf) = (&p1, &conf);
                        s.spawn(move || {
                            let out =
                                p1.cni("ADD", &format!("fill-{i}"), path, &format!("eth{j}"), conf);
                            cni_ip(&out).is_none()
                        })
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| usize::from(h.join().expect("fill thread")))
                    .sum::<usize>()
            });
        }
        on_host = slot - failed;
        println!(
            "   {on_host} endpoints on the host ({failed} fills failed); {} sequential ADDs",
            cfg.seq
        );
        let (pr0, w0) = (probe(&nm, &p1), Instant::now());
        for i in 0..cfg.seq {
            interrupted();
            let (path, _, j) = pool.slot(slot);
            slot += 1;
            let t0 = Instant::now();
            let out = p1.cni(
                "ADD",
                &format!("full-{i}"),
                &path,
                &format!("eth{j}"),
                &conf,
            );
            let d = t0.elapsed();
            match cni_ip(&out) {
                Some(_) => full_add.samples.push(d),
                None => full_add.lost += 1,
            }
        }
        println!("   sequential on a full host: {}", full_add.describe());
        println!(
            "   {}",
            breakdown(pr0, probe(&nm, &p1), cfg.seq, w0.elapsed())
        );
    }

    // 1b. Calico-style baseline: netplugin stopped; BIRD learns hand-made device routes.
    p1.stop();
    let bird_dir = tmp.path().join("bird-calico");
    let watch = up_watch(&lab);
    let calico_bird = start_bird(
        &host_ns,
        &bird_dir,
        &format!(
            r#"log "{dir}/bird.log" all;
router id {HOST1_ADDR};
protocol device {{ scan time 10; }}
protocol kernel {{
  learn;
  scan time 1;
  ipv4 {{ import where net ~ [ 20.2.0.0/16{{32,32}} ]; export none; }};
}}
protocol bgp tor1 {{
  local {HOST1_ADDR} as {HOST1_AS};
  neighbor {TOR1_ADDR} as {TOR1_AS};
  hold time 9; keepalive time 3; connect delay time 1; connect retry time 1;
  ttl security on;
  ipv4 {{ import none; export where net ~ [ 20.2.0.0/16{{32,32}} ]; }};
}}
"#,
            dir = bird_dir.display()
        ),
    );
    watch
        .wait(Duration::from_secs(60))
        .expect("BIRD's session with tor1 comes up");
    println!(
        "== 1. baseline: veth + /32 device route by hand, BIRD 2 (kernel learn) → tor1, {} endpoints",
        cfg.endpoints
    );
    let mut calico_fib = Lat::default();
    let mut calico_legs = Legs::default();
    for i in 0..cfg.endpoints {
        interrupted();
        let (_, ctr, j) = pool.slot(i);
        let n = i + 1;
        let addr = format!("20.2.{}.{}", n / 256, n % 256);
        let (host_if, ctr_if) = (format!("cali{i}"), format!("ceth{j}"));
        let t0 = Instant::now();
        let ok = ip_ok(&[
            "-n", &ctr, "link", "add", &ctr_if, "up", "type", "veth", "peer", "name", &host_if,
            "netns", &host_ns,
        ]) && ip_ok(&["-n", &host_ns, "link", "set", &host_if, "up"])
            && ip_ok(&[
                "-n",
                &host_ns,
                "route",
                "add",
                &format!("{addr}/32"),
                "dev",
                &host_if,
            ]);
        if !ok {
            calico_fib.lost += 1;
            continue;
        }
        calico_legs.done.samples.push(t0.elapsed());
        match tor2.wait_route(&format!("{addr}/32"), ROUTE_TIMEOUT) {
            Some(t) => calico_fib.samples.push(t.saturating_duration_since(t0)),
            None => calico_fib.lost += 1,
        }
        legs(&format!("{addr}/32"), t0, &mut calico_legs);
        if (i + 1) % 100 == 0 {
            println!(
                "   baseline {}/{}: {}",
                i + 1,
                cfg.endpoints,
                calico_fib.describe()
            );
        }
    }
    println!("   baseline → tor2 FIB: {}", calico_fib.describe());
    np_legs.done = np_add_in_fib.clone();
    println!("   legs, netplugin: {}", np_legs.describe(&np_fib));
    println!("   legs, baseline:  {}", calico_legs.describe(&calico_fib));
    drop(calico_bird);
    drop(tor2);
    drop(host_mon);
    drop(tor1_mon);

    // 3. Bulk: tor1 originates the prefixes; each speaker on host1 in turn.
    println!("== 3. {} /32s from tor1 into host1's kernel", cfg.prefixes);
    let file = tmp.path().join("bulk.conf");
    let mut text = String::from("router bgp 65001\naddress-family ipv4 unicast\n");
    for i in 0..cfg.prefixes {
        text.push_str(&format!(
            " network 30.{}.{}.{}/32\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    text.push_str("exit-address-family\nend\n");
    std::fs::write(&file, text).expect("bulk config");
    let t0 = Instant::now();
    let o = node_exec(&lab, "tor1", &format!("vtysh -f {}", file.display()));
    let inject = t0.elapsed();
    assert!(o.status.success(), "loading the prefixes on tor1: {o:?}");
    let last = cfg.prefixes.saturating_sub(1);
    let o = node_exec(
        &lab,
        "tor1",
        &format!(
            "vtysh -c 'show bgp ipv4 unicast 30.{}.{}.{}/32 json'",
            last >> 16,
            (last >> 8) & 255,
            last & 255
        ),
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"paths\""),
        "tor1 does not hold the last prefix: {o:?}"
    );
    println!(
        "   tor1 loaded {} network statements in {}",
        cfg.prefixes,
        secs(inject)
    );
    let host = RouteMonitor::start(&host_ns);
    flush_bulk(&host_ns, &host);

    println!("   netplugin ...");
    let (bulk_np, ()) = bulk(&lab, &host_ns, &host, cfg.prefixes, || p1.spawn());
    println!("   netplugin: {}", bulk_np.describe());
    p1.stop();
    flush_bulk(&host_ns, &host);

    println!("   FRR bgpd + zebra ...");
    let frr_dir = tmp.path().join("frr-host");
    let (bulk_frr, frr) = bulk(&lab, &host_ns, &host, cfg.prefixes, || {
        start_frr(
            &host_ns,
            &frr_dir,
            &format!(
                "frr defaults datacenter
hostname host1
log stdout informational
router bgp {HOST1_AS}
 bgp router-id {HOST1_ADDR}
 no bgp ebgp-requires-policy
 neighbor {TOR1_ADDR} remote-as {TOR1_AS}
 neighbor {TOR1_ADDR} timers 3 9
 neighbor {TOR1_ADDR} timers connect 1
 neighbor {TOR1_ADDR} ttl-security hops 1
exit
"
            ),
        )
    });
    println!("   FRR: {}", bulk_frr.describe());
    for mut d in frr.into_iter().rev() {
        d.stop();
    }
    flush_bulk(&host_ns, &host);

    println!("   BIRD 2 ...");
    let bird_dir = tmp.path().join("bird-host");
    let (bulk_bird, bird) = bulk(&lab, &host_ns, &host, cfg.prefixes, || {
        start_bird(
            &host_ns,
            &bird_dir,
            &format!(
                r#"log "{dir}/bird.log" all;
router id {HOST1_ADDR};
protocol device {{ scan time 10; }}
protocol kernel {{
  ipv4 {{ import none; export all; }};
  merge paths on;
}}
protocol bgp tor1 {{
  local {HOST1_ADDR} as {HOST1_AS};
  neighbor {TOR1_ADDR} as {TOR1_AS};
  hold time 9; keepalive time 3; connect delay time 1; connect retry time 1;
  ttl security on;
  ipv4 {{ import all; export none; }};
}}
"#,
                dir = bird_dir.display()
            ),
        )
    });
    println!("   BIRD: {}", bulk_bird.describe());
    drop(bird);
    flush_bulk(&host_ns, &host);
    drop(host);
    drop(p1);
    drop(pool);
    drop(nm);
    drop(lab);

    Results {
        idle,
        full_add,
        full_from: on_host,
        np_fib,
        np_add_in_fib,
        calico_fib,
        seq_add,
        par_add,
        par_wall,
        par_n: cfg.par,
        bulk_np,
        bulk_frr,
        bulk_bird,
        inject,
    }
}

fn version(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("?").trim().to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

fn opt(d: Option<Duration>) -> String {
    d.map(secs).unwrap_or_else(|| "did not finish".into())
}

fn opt_ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => "–".into(),
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the benchmark creates network namespaces and daemons: run it as root");
        std::process::exit(1);
    }
    catch_signals();
    let cfg = Cfg::from_args();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "netplugin_bench: {} endpoints, {} sequential + {} parallel ADDs, {} prefixes; \
         {} cores, kernel {}, load average at start {}",
        cfg.endpoints,
        cfg.seq,
        cfg.par,
        cfg.prefixes,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        version("uname", &["-r"]),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{}; {}",
        version("/usr/lib/frr/bgpd", &["--version"]),
        version("bird", &["--version"])
    );
    let r = run(&cfg);

    println!("\n== summary");
    println!("| figure | netplugin | reference | netplugin / reference |");
    println!("|---|---|---|---|");
    let warnings = idle_rows(&r.idle);
    if !cfg.only_idle {
        full_rows(&r);
    }
    for w in &warnings {
        println!("WARN: {w}");
    }
    if !warnings.is_empty() {
        eprintln!(
            "netplugin_bench: FAILED: netplugin's idle row misses its goal (see the WARN lines above)"
        );
        std::process::exit(2);
    }
}

/// The idle rows; returns a warning for each idle goal netplugin misses (or that it did
/// not converge).
fn idle_rows(i: &Idle) -> Vec<String> {
    let w = i.window.as_secs();
    let (np, bird) = (
        i.np.clone().unwrap_or_default(),
        i.bird.clone().unwrap_or_default(),
    );
    let fr = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}×", a / b)
        } else {
            "∞ (BIRD used nothing measurable)".into()
        }
    };
    let cpu_ok = i.np.is_some() && np.cpu_pct <= IDLE_CPU_GOAL_PCT;
    let rss_ok = i.np.is_some() && np.rss_mib <= IDLE_RSS_GOAL_MIB;
    let rps_ok = i.np.is_some() && np.master_rps <= IDLE_REPORTS_GOAL_PER_S;
    println!(
        "| idle, {IDLE_PEERS} sessions, {} learned routes: CPU over {w} s | {:.2} % of a core ({} ticks{}) | BIRD {:.2} % ({} ticks) | {} (goal ≤ {IDLE_CPU_GOAL_PCT} %: {}) |",
        i.routes,
        np.cpu_pct,
        np.ticks,
        np.passes
            .map(|p| format!(", {p} reconcile passes"))
            .unwrap_or_default(),
        bird.cpu_pct,
        bird.ticks,
        fr(np.cpu_pct, bird.cpu_pct),
        met(cpu_ok)
    );
    println!(
        "| idle: RSS (peak) | {:.1} MiB ({:.1}) | BIRD {:.1} MiB ({:.1}) | {} (goal ≤ {IDLE_RSS_GOAL_MIB} MiB: {}) |",
        np.rss_mib,
        np.hwm_mib,
        bird.rss_mib,
        bird.hwm_mib,
        fr(np.rss_mib, bird.rss_mib),
        met(rss_ok)
    );
    println!(
        "| idle: requests to netmaster (netmaster + harness CPU) | {:.2} /s ({:.2} % of a core) | BIRD – ({:.2} /s, {:.2} %, netplugin stopped) | (goal ≤ {IDLE_REPORTS_GOAL_PER_S} /s: {}) |",
        np.master_rps,
        np.master_cpu_pct,
        bird.master_rps,
        bird.master_cpu_pct,
        met(rps_ok)
    );
    println!(
        "| idle: launch → {} routes × {IDLE_PEERS} next hops in host1's kernel | {} | BIRD {} | {} |",
        i.routes,
        opt(np.converged),
        opt(bird.converged),
        opt_ratio(np.converged, bird.converged)
    );
    let mut warnings = Vec::new();
    if i.np.is_none() {
        warnings.push("idle: netplugin did not converge; no idle figure for it".to_string());
    }
    if i.np.is_some() && !cpu_ok {
        warnings.push(format!(
            "idle: netplugin used {:.2} % of a core while nothing changed (goal ≤ {IDLE_CPU_GOAL_PCT} %); {} reconcile passes in {} s (one per 10 s resync is expected: far more means something spins)",
            np.cpu_pct,
            np.passes.map_or_else(|| "?".to_string(), |p| p.to_string()),
            i.window.as_secs()
        ));
    }
    if i.np.is_some() && !rss_ok {
        warnings.push(format!(
            "idle: netplugin's RSS {:.1} MiB is above the {IDLE_RSS_GOAL_MIB} MiB goal",
            np.rss_mib
        ));
    }
    if i.np.is_some() && !rps_ok {
        warnings.push(format!(
            "idle: netplugin sent netmaster {:.2} requests/s while nothing changed (goal ≤ {IDLE_REPORTS_GOAL_PER_S} /s)",
            np.master_rps
        ));
    }
    warnings
}

/// Every other row (the full run).
fn full_rows(r: &Results) {
    let (np50, np99) = (r.np_fib.p(50.0), r.np_fib.p(99.0));
    let (ca50, ca99) = (r.calico_fib.p(50.0), r.calico_fib.p(99.0));
    let (s50, s99) = (r.seq_add.p(50.0), r.seq_add.p(99.0));
    println!(
        "| endpoint → /32 in tor2's FIB, p50 ({} endpoints) | {} | {} (veth + route by hand, BIRD 2 learn) | {} (goal ≤ 1.00×: {}) |",
        r.np_fib.samples.len(),
        ms(np50),
        ms(ca50),
        ratio(np50, ca50),
        met(!ca50.is_zero() && np50 <= ca50)
    );
    println!(
        "| endpoint → /32 in tor2's FIB, p99 | {} | {} | {} (goal ≤ 1.00×: {}) |",
        ms(np99),
        ms(ca99),
        ratio(np99, ca99),
        met(!ca99.is_zero() && np99 <= ca99)
    );
    println!(
        "| (of which CNI ADD, p50 / p99) | {} / {} | – | – |",
        ms(r.np_add_in_fib.p(50.0)),
        ms(r.np_add_in_fib.p(99.0))
    );
    println!(
        "| CNI ADD, sequential, p50 ({} adds) | {} | goal ≤ 5 ms | {} |",
        r.seq_add.samples.len(),
        ms(s50),
        met(s50 <= Duration::from_millis(5))
    );
    println!(
        "| CNI ADD, sequential, p99 | {} | goal ≤ 20 ms | {} |",
        ms(s99),
        met(s99 <= Duration::from_millis(20))
    );
    let (f50, f99) = (r.full_add.p(50.0), r.full_add.p(99.0));
    println!(
        "| CNI ADD, sequential, p50 ({} adds from {} endpoints on the host) | {} | goal ≤ 5 ms | {} (× the fresh host: {}) |",
        r.full_add.samples.len(),
        r.full_from,
        ms(f50),
        met(!r.full_add.samples.is_empty() && f50 <= Duration::from_millis(5)),
        ratio(f50, s50)
    );
    println!(
        "| CNI ADD, sequential, p99 (from {} endpoints on the host) | {} | goal ≤ 20 ms | {} (× the fresh host: {}) |",
        r.full_from,
        ms(f99),
        met(!r.full_add.samples.is_empty() && f99 <= Duration::from_millis(20)),
        ratio(f99, s99)
    );
    println!(
        "| {} CNI ADDs at once, wall | {} (each p50 {}, p99 {}) | goal ≤ 2 s | {} |",
        r.par_n,
        secs(r.par_wall),
        ms(r.par_add.p(50.0)),
        ms(r.par_add.p(99.0)),
        met(r.par_wall <= Duration::from_secs(2) && r.par_add.lost == 0)
    );
    println!(
        "| prefixes → host1's kernel, from session Up | {} | FRR {} / BIRD {} | {} / {} |",
        opt(r.bulk_np.load),
        opt(r.bulk_frr.load),
        opt(r.bulk_bird.load),
        opt_ratio(r.bulk_np.load, r.bulk_frr.load),
        opt_ratio(r.bulk_np.load, r.bulk_bird.load)
    );
    println!(
        "| prefixes → host1's kernel, from launch | {} | FRR {} / BIRD {} | {} / {} |",
        opt(r.bulk_np.total),
        opt(r.bulk_frr.total),
        opt(r.bulk_bird.total),
        opt_ratio(r.bulk_np.total, r.bulk_frr.total),
        opt_ratio(r.bulk_np.total, r.bulk_bird.total)
    );
    println!(
        "| launch → session Up (tor1's log) | {} | FRR {} / BIRD {} | – |",
        opt(r.bulk_np.up),
        opt(r.bulk_frr.up),
        opt(r.bulk_bird.up)
    );
    println!(
        "(tor1 took {} to load its network statements; lost/failed: netplugin FIB {}, baseline FIB {}, sequential ADD {}, parallel ADD {}, full-host ADD {})",
        secs(r.inject),
        r.np_fib.lost,
        r.calico_fib.lost,
        r.seq_add.lost,
        r.par_add.lost,
        r.full_add.lost
    );
}
