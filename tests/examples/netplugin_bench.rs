//! `scripts/bench.sh`: netplugin on the `quickstart` fabric (real FRR ToRs), beside BIRD
//! and FRR doing the same jobs on the same fabric.
//!
//! ```sh
//! cargo build --release -p netplugin -p netctl
//! cargo build --release -p contiv-tests --example netplugin_bench
//! target/release/examples/netplugin_bench [ENDPOINTS] [SEQ_ADDS] [PAR_ADDS] [PREFIXES]
//! #                                        defaults: 1000 200 200 100000
//! ```
//!
//! 1. Endpoint created → its /32 in the kernel FIB of tor2 (the other rack's ToR), one
//!    endpoint at a time: netplugin (CNI ADD through the real `contiv-cni` binary on
//!    host1), then a Calico-style baseline on the same host (netplugin stopped): BIRD 2
//!    learning kernel device routes (`protocol kernel { learn; }`) and exporting them to
//!    tor1, while a veth and a `/32 dev` route are made by hand with `ip`. tor2's FIB is
//!    watched with `ip monitor route` inside its namespace.
//! 2. CNI ADD latency: sequential adds, then adds all issued at once.
//! 3. tor1 originates PREFIXES /32s (`network` statements, loaded before the host's
//!    speaker starts); from host1's session coming up (tor1's `%ADJCHANGE ... Up` log
//!    line) until host1's kernel holds all of them (`ip monitor route` in host1): netplugin,
//!    then FRR (bgpd + zebra) and BIRD 2 (`protocol kernel` export) in its place.
//!
//! Nothing here asserts a time. Everything (lab, daemons, namespaces) is torn down at the
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

struct Results {
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
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("numeric argument"))
        .unwrap_or(default)
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
    nm.ok(&format!(
        "netctl bgp create host1 --router-ip={HOST1_ADDR}/31 --as={HOST1_AS} \
         --neighbor-as={TOR1_AS} --neighbor={TOR1_ADDR}"
    ));
    let mut p1 = Netplugin::start(&lab, "host1", &nm.url, tmp.path());
    wait_netplugin_session(&nm, &p1);
    let conf = p1.netconf("contiv-net", None);
    let mut pool = NsPool {
        prefix: host_ns.clone(),
        pool: Vec::new(),
    };
    let mut slot = 0;
    let tor2 = RouteMonitor::start(&tor2_ns);

    // 2. CNI ADD latency, sequential then all at once (first, on a host with few endpoints).
    println!("== 2. CNI ADD latency: {} sequential", cfg.seq);
    let mut seq_add = Lat::default();
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
        match tor2.wait_route(&format!("{addr}/32"), ROUTE_TIMEOUT) {
            Some(t) => calico_fib.samples.push(t.saturating_duration_since(t0)),
            None => calico_fib.lost += 1,
        }
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
    drop(calico_bird);
    drop(tor2);

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
    let cfg = Cfg {
        endpoints: arg(1, 1000),
        seq: arg(2, 200),
        par: arg(3, 200),
        prefixes: arg(4, 100_000),
    };
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

    let (np50, np99) = (r.np_fib.p(50.0), r.np_fib.p(99.0));
    let (ca50, ca99) = (r.calico_fib.p(50.0), r.calico_fib.p(99.0));
    let (s50, s99) = (r.seq_add.p(50.0), r.seq_add.p(99.0));
    println!("\n== summary");
    println!("| figure | netplugin | reference | netplugin / reference |");
    println!("|---|---|---|---|");
    println!(
        "| endpoint → /32 in tor2's FIB, p50 ({} endpoints) | {} | {} (veth + route by hand, BIRD 2 learn) | {} |",
        r.np_fib.samples.len(),
        ms(np50),
        ms(ca50),
        ratio(np50, ca50)
    );
    println!(
        "| endpoint → /32 in tor2's FIB, p99 | {} | {} | {} |",
        ms(np99),
        ms(ca99),
        ratio(np99, ca99)
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
        "(tor1 took {} to load its network statements; lost/failed: netplugin FIB {}, baseline FIB {}, sequential ADD {}, parallel ADD {})",
        secs(r.inject),
        r.np_fib.lost,
        r.calico_fib.lost,
        r.seq_add.lost,
        r.par_add.lost
    );
}
