//! `scripts/bench.sh` (issue #12): netplugin's endpoint-group policy in nftables, beside
//! the linear iptables ruleset Calico's classic data plane would load for the same intent.
//!
//! ```sh
//! cargo build --release -p netplugin -p netctl
//! cargo build --release -p contiv-tests --example policy_bench
//! target/release/examples/policy_bench [CHANGES] [GROUPS] [RULES] [ENDPOINTS]
//! #                                     defaults: 200 1000 10 1000
//! target/release/examples/policy_bench --only enforce|load|packet   # one part alone
//! # env: POLICY_BENCH_ONLY (same as --only), POLICY_BENCH_SECS (2: per throughput or
//! #      connection-rate run), POLICY_BENCH_REPEATS (6: runs per configuration),
//! #      POLICY_BENCH_VERBOSE (set: one line per change of part 1)
//! ```
//!
//! 1. **enforce**: rule added → enforced on every host. The `quickstart` fabric, netmaster
//!    in this process, netplugin processes on host1 and host2, one endpoint of group
//!    `web` (policy `p`) on each host through the real `contiv-cni`. Each change is one
//!    `POST /api/v1/rules/default:p:<id>/` (what `netctl policy rule-add` sends); the
//!    clock starts before the request is written and stops, per host, when `nft monitor
//!    rules` in the host's namespace prints a rule counting into the new rule's counter
//!    (`policy::compile::counter_of`): the rule is in the kernel's ruleset. Event-driven,
//!    so nothing polls. One change at a time; the next starts once both hosts have it.
//! 2. **load**: GROUPS groups × RULES rules, ENDPOINTS endpoints on one host (one per
//!    group), built in code as a `PolicyView` and `LocalEndpoint`s: `compile`, the first
//!    full load (`NftCli::snapshot` + `Ruleset::overwrite` + `NftCli::commit`) into a
//!    scratch namespace, a resync over the loaded ruleset, one rule added
//!    (`compile` + `Ruleset::changes` + commit). Beside it, into another scratch
//!    namespace: `ipset restore` + `iptables-restore` of the linear ruleset a Calico
//!    classic host would hold (see [`iptables_text`]), with iptables' nf_tables backend and
//!    with its legacy backend, and the one-rule change as `iptables-restore --noflush`
//!    rewriting the endpoint's chain.
//! 3. **packet**: two "containers" (namespaces) routed through a "host" namespace over
//!    veths named as netplugin names them (`cv` + 11 hex digits), both endpoints of one
//!    group of the GROUPS × RULES ruleset of part 2 (their group's rules all evaluated,
//!    none matching, so a new connection walks the whole group chain and tenant check);
//!    TCP throughput (iperf3, one stream) and connection rate (connect, 1 byte each way,
//!    close; the client in one thread, the server in another) with no ruleset, with
//!    conntrack alone (one `ct state` rule), with ours, with the iptables ruleset
//!    (nf_tables backend, legacy backend); configurations
//!    interleaved, REPEATS runs each (each on a fresh topology), median and range; this
//!    part runs at nice -10 (the machine is shared with other jobs).
//!
//! Nothing here asserts a time. Every namespace is ours (`pb<pid>-*`, and the lab's) and
//! deleted at the end, also on a panic; processes are stopped by pid. A SIGINT kills the
//! bench without that cleanup (`ip netns del` the `pb<pid>-*` namespaces, `contiv-lab
//! destroy` the lab).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use contiv_model::policy::{self as semantics, Action, Direction, Peer, RuleSpec, TCP, UDP};
use contiv_tests::cluster::{ContainerNs, Netmaster, Netplugin, cni_ip, deploy, wait_for};
use ipnet::IpNet;
use netplugin::endpoint::{HostNs, host_ifname};
use netplugin::policy::compile::counter_of;
use netplugin::policy::driver::{NftCli, NftDriver};
use netplugin::policy::nft::Ruleset;
use netplugin::policy::{LocalEndpoint, PolicyView, compile};

const LONG: Duration = Duration::from_secs(60);
/// How long one change may take to reach a host before it counts as lost.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The iperf3 and connection-rate ports (no rule of the synthetic groups matches them).
const IPERF_PORT: u16 = 5201;
const CRR_PORT: u16 = 5202;

// ---------------------------------------------------------------------------------------
// Figures.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn lat(samples: &[Duration]) -> String {
    let mut s = samples.to_vec();
    s.sort();
    format!(
        "n={} p50 {} p99 {} max {}",
        s.len(),
        ms(percentile(&s, 50.0)),
        ms(percentile(&s, 99.0)),
        ms(s.last().copied().unwrap_or_default())
    )
}

fn median_of(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    percentile(&s, 50.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "–".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces and commands.

fn sh(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Runs `argv` inside namespace `ns`, `stdin` on its input; panics on failure.
fn ns_run(ns: &str, argv: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?} in {ns}: {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let o = child.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "{argv:?} in {ns}: {}",
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    o
}

/// A namespace of ours, deleted on drop.
struct Ns(ContainerNs);

impl Ns {
    fn new(tag: &str) -> Ns {
        Ns(ContainerNs::new(&format!("pb{}-{tag}", std::process::id())))
    }
    fn name(&self) -> &str {
        &self.0.name
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(self.0.path())
    }
    fn run(&self, argv: &[&str]) -> Output {
        ns_run(self.name(), argv, None)
    }
}

/// A process we started, stopped by its pid on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `f` on a thread inside the namespace at `path` (sockets it opens stay there).
fn in_ns<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

fn version(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// 1. Rule added → enforced on every host.

/// `nft monitor rules` in a namespace: the first time each rule counter appears in an
/// added rule, timestamped as the line is read.
struct RuleMonitor {
    _proc: Proc,
    seen: Arc<(Mutex<BTreeMap<String, Instant>>, Condvar)>,
}

impl RuleMonitor {
    fn start(ns: &str) -> RuleMonitor {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "monitor", "rules"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nft monitor");
        let out = child.stdout.take().expect("stdout");
        let seen: Arc<(Mutex<BTreeMap<String, Instant>>, Condvar)> = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let now = Instant::now();
                if !line.starts_with("add rule inet contiv") {
                    continue;
                }
                let Some(rest) = line.split("counter name \"").nth(1) else {
                    continue;
                };
                let Some(name) = rest.split('"').next() else {
                    continue;
                };
                let (m, cv) = &*s;
                m.lock()
                    .expect("monitor")
                    .entry(name.to_string())
                    .or_insert(now);
                cv.notify_all();
            }
        });
        // `nft monitor` has subscribed once it runs; give it a moment to get there.
        std::thread::sleep(Duration::from_millis(300));
        RuleMonitor {
            _proc: Proc(child),
            seen,
        }
    }

    fn wait(&self, counter: &str, within: Duration) -> Option<Instant> {
        let (m, cv) = &*self.seen;
        let deadline = Instant::now() + within;
        let mut g = m.lock().expect("monitor");
        loop {
            if let Some(t) = g.get(counter) {
                return Some(*t);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).expect("monitor").0;
        }
    }
}

/// An HTTPS POST of a JSON body as the admin; returns the status as `HTTP <code>`.
fn http_post(nm: &Netmaster, path: &str, body: &str) -> String {
    match nm.call("POST", path, Some(body), None) {
        Some((code, text)) => format!("HTTP {code} {text}"),
        None => "no answer".to_string(),
    }
}

fn rule_json(id: usize) -> (String, RuleSpec) {
    let prefix = format!("192.0.{}.{}/32", 2 + id / 250, id % 250 + 1);
    let port = 1000 + id as u16;
    let priority = (id % 100 + 1) as i64;
    let body = serde_json::json!({
        "key": format!("default:p:{id}"),
        "ruleId": id.to_string(),
        "policyName": "p",
        "tenantName": "default",
        "direction": "in",
        "priority": priority,
        "fromIpAddress": prefix,
        "protocol": "tcp",
        "port": port,
        "action": "allow",
    })
    .to_string();
    let spec = RuleSpec {
        tenant: "default".into(),
        policy: "p".into(),
        rule_id: id.to_string(),
        direction: Direction::In,
        priority: priority as u8,
        action: Action::Allow,
        protocol: Some(TCP),
        port: Some(port),
        peer: Peer::Prefix(prefix.parse().expect("prefix")),
    };
    (body, spec)
}

/// `(count, sum)` of netplugin's reconcile-pass histogram (its /metrics).
fn passes(p: &Netplugin) -> (f64, f64) {
    let Some(text) = p
        .metrics_addr()
        .and_then(|a| contiv_tests::cluster::http_get(a, "/metrics"))
    else {
        return (0.0, 0.0);
    };
    let pick = |name: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        pick("netplugin_reconcile_duration_seconds_count"),
        pick("netplugin_reconcile_duration_seconds_sum"),
    )
}

#[derive(Debug, Default)]
struct Enforce {
    /// Per host: reconcile passes during the changes, and their mean duration.
    passes: Vec<(f64, Duration)>,
    /// POST → both hosts have the rule in their kernel.
    all: Vec<Duration>,
    /// POST → answered by netmaster.
    ack: Vec<Duration>,
    /// POST → in host1's kernel, host2's.
    host: [Vec<Duration>; 2],
    lost: usize,
}

fn run_enforce(changes: usize) -> Enforce {
    let lab = deploy("quickstart", "policy");
    let tmp = tempfile::tempdir().expect("tempdir");
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");
    nm.ok("netctl policy create p");
    nm.ok("netctl group create contiv-net web -p p");
    let hosts = ["host1", "host2"];
    let plugins: Vec<Netplugin> = hosts
        .iter()
        .map(|h| Netplugin::start(&lab, h, &nm, tmp.path()))
        .collect();
    let ns: Vec<String> = hosts
        .iter()
        .map(|h| lab.namespace(h).expect("host"))
        .collect();
    let containers: Vec<ContainerNs> = ns
        .iter()
        .map(|n| ContainerNs::new(&format!("{n}-w")))
        .collect();
    for (i, p) in plugins.iter().enumerate() {
        cni_ip(&p.cni(
            "ADD",
            &format!("web{i}"),
            &containers[i].path(),
            "eth0",
            &p.netconf("contiv-net", Some("web")),
        ));
    }
    let monitors: Vec<RuleMonitor> = ns.iter().map(|n| RuleMonitor::start(n)).collect();
    // Rule 0 first, untimed: both hosts have the group chain.
    let (body, spec) = rule_json(0);
    let st = http_post(&nm, "/api/v1/rules/default:p:0/", &body);
    assert!(st.contains(" 200") || st.contains(" 201"), "POST: {st}");
    for (m, p) in monitors.iter().zip(&plugins) {
        wait_for(
            "rule 0 in the host's kernel",
            LONG,
            || m.wait(&counter_of(&spec), Duration::from_millis(100)),
            || p.log_tail(),
        );
    }
    let mut out = Enforce::default();
    let before: Vec<(f64, f64)> = plugins.iter().map(passes).collect();
    for id in 1..=changes {
        let (body, spec) = rule_json(id);
        let counter = counter_of(&spec);
        let path = format!("/api/v1/rules/default:p:{id}/");
        let t0 = Instant::now();
        let st = http_post(&nm, &path, &body);
        let acked = t0.elapsed();
        assert!(st.contains(" 200") || st.contains(" 201"), "POST: {st}");
        out.ack.push(acked);
        let mut worst = Duration::ZERO;
        let mut lost = false;
        for (i, m) in monitors.iter().enumerate() {
            match m.wait(&counter, CHANGE_TIMEOUT) {
                Some(t) => {
                    let d = t.saturating_duration_since(t0);
                    out.host[i].push(d);
                    worst = worst.max(d);
                }
                None => lost = true,
            }
        }
        if std::env::var_os("POLICY_BENCH_VERBOSE").is_some() {
            eprintln!(
                "change {id}: ack {} host1 {} host2 {}",
                ms(acked),
                ms(out.host[0].last().copied().unwrap_or_default()),
                ms(out.host[1].last().copied().unwrap_or_default())
            );
        }
        if lost {
            out.lost += 1;
            eprintln!(
                "rule {id} not in every host's kernel after {CHANGE_TIMEOUT:?}:\n{}",
                plugins[0].log_tail()
            );
        } else {
            out.all.push(worst);
        }
    }
    for (p, (c0, s0)) in plugins.iter().zip(before) {
        let (c1, s1) = passes(p);
        let n = c1 - c0;
        out.passes.push((
            n,
            Duration::from_secs_f64(if n > 0.0 { (s1 - s0) / n } else { 0.0 }),
        ));
    }
    for p in &plugins {
        let log = std::fs::read_to_string(&p.log).unwrap_or_default();
        let warns: Vec<&str> = log.lines().filter(|l| l.contains("policy:")).collect();
        if !warns.is_empty() {
            eprintln!(
                "{}: {} policy warnings, e.g. {}",
                p.host,
                warns.len(),
                warns[0]
            );
        }
    }
    drop(monitors);
    drop(plugins);
    drop(containers);
    drop(nm);
    drop(lab);
    out
}

// ---------------------------------------------------------------------------------------
// 2. The big ruleset: compile + load, beside iptables.

/// The synthetic intent: `groups` groups `g0000`… in tenant `default` (network `net`,
/// 20.0.0.0/8), each with a policy of `rules` rules and two members (a local endpoint and
/// one on another host); endpoint `i` is in group `i`.
struct Synthetic {
    view: PolicyView,
    local: BTreeMap<String, LocalEndpoint>,
    /// Endpoint key → its index (the iptables dispatch order).
    order: Vec<String>,
}

fn group(i: usize) -> String {
    format!("g{i:04}")
}

fn ep_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(20, 1, (i / 200) as u8, (i % 200 + 10) as u8)
}

fn remote_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(20, 2, (i / 200) as u8, (i % 200 + 10) as u8)
}

/// The `k`th rule of group `i`'s policy: in rules from other groups, a network, prefixes;
/// out rules to a group, a prefix, anywhere. None matches the bench's own ports.
fn synthetic_rule(i: usize, k: usize, groups: usize) -> RuleSpec {
    let r = |direction, action, protocol, port: Option<u16>, peer| RuleSpec {
        tenant: "default".into(),
        policy: format!("p{i:04}"),
        rule_id: k.to_string(),
        direction,
        priority: (100 - k) as u8,
        action,
        protocol,
        port,
        peer,
    };
    let pfx = |s: String| Peer::Prefix(s.parse::<IpNet>().expect("prefix"));
    use Action::*;
    use Direction::*;
    match k % 10 {
        0 => r(
            In,
            Allow,
            Some(TCP),
            Some(80),
            Peer::Group(group((i + 1) % groups)),
        ),
        1 => r(
            In,
            Allow,
            Some(TCP),
            Some(443),
            Peer::Group(group((i + 2) % groups)),
        ),
        2 => r(
            In,
            Allow,
            Some(TCP),
            Some(8080),
            Peer::Network("net".into()),
        ),
        3 => r(In, Deny, Some(UDP), Some(53), pfx("192.0.2.0/24".into())),
        4 => r(
            In,
            Allow,
            Some(1),
            None,
            pfx(format!("10.{}.0.0/16", i % 250)),
        ),
        5 => r(
            In,
            Deny,
            Some(TCP),
            Some(22),
            pfx(format!("198.51.100.{}/32", i % 250)),
        ),
        6 => r(In, Allow, Some(UDP), Some(9000 + k as u16), Peer::Any),
        7 => r(
            Out,
            Allow,
            Some(TCP),
            Some(5432),
            Peer::Group(group((i + 3) % groups)),
        ),
        8 => r(Out, Allow, Some(UDP), Some(53), pfx("10.96.0.10/32".into())),
        _ => r(Out, Deny, Some(TCP), Some(25), Peer::Any),
    }
}

fn synthetic(groups: usize, rules: usize, endpoints: usize) -> Synthetic {
    let mut view = PolicyView {
        revision: 1,
        ..PolicyView::default()
    };
    view.networks.insert(
        ("default".into(), "net".into()),
        "20.0.0.0/8".parse().expect("net"),
    );
    for i in 0..groups {
        let mut rs: Vec<RuleSpec> = (0..rules).map(|k| synthetic_rule(i, k, groups)).collect();
        semantics::order(&mut rs);
        let key = ("default".to_string(), group(i));
        view.groups.insert(key.clone(), Arc::new(rs));
        let mut members: BTreeSet<IpAddr> = [IpAddr::V4(remote_addr(i))].into();
        if i < endpoints {
            members.insert(IpAddr::V4(ep_addr(i)));
        }
        view.members.insert(key, members);
    }
    let mut local = BTreeMap::new();
    let mut order = Vec::new();
    for i in 0..endpoints {
        let key = format!("ep{i:04}");
        local.insert(
            key.clone(),
            LocalEndpoint {
                ifname: host_ifname(&key),
                address: IpAddr::V4(ep_addr(i)),
                mac: format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256),
                tenant: "default".into(),
                group: Some(group(i % groups)),
            },
        );
        order.push(key);
    }
    Synthetic { view, local, order }
}

fn ipset_name(g: &str) -> String {
    format!("cali40s:{g}")
}

/// One rule as iptables arguments (allow → RETURN: the next check runs, as ours).
fn ipt_rule(r: &RuleSpec, view: &PolicyView) -> Option<String> {
    let (side, set_dir) = match r.direction {
        Direction::In => ("-s", "src"),
        Direction::Out => ("-d", "dst"),
    };
    let mut m: Vec<String> = Vec::new();
    match (r.protocol, r.port) {
        (Some(TCP), Some(p)) => m.push(format!("-p tcp --dport {p}")),
        (Some(UDP), Some(p)) => m.push(format!("-p udp --dport {p}")),
        (Some(1), _) => m.push("-p icmp".into()),
        (Some(p), _) => m.push(format!("-p {p}")),
        (None, _) => {}
    }
    match &r.peer {
        Peer::Any => {}
        Peer::Group(g) => m.push(format!("-m set --match-set {} {set_dir}", ipset_name(g))),
        Peer::Network(n) => m.push(format!(
            "{side} {}",
            view.networks.get(&(r.tenant.clone(), n.clone()))?
        )),
        Peer::Prefix(p) => m.push(format!("{side} {p}")),
    }
    m.push(
        match r.action {
            Action::Allow => "-j RETURN",
            Action::Deny => "-j DROP",
        }
        .into(),
    );
    Some(m.join(" "))
}

/// The ipsets of the linear ruleset (`ipset restore` input): one `hash:ip` per group a
/// rule names (Calico: one per selector), and the tenant's and all Contiv subnets.
fn ipset_text(s: &Synthetic) -> String {
    let mut out = String::new();
    let mut named: BTreeSet<String> = BTreeSet::new();
    for rules in s.view.groups.values() {
        for r in rules.iter() {
            if let Peer::Group(g) = &r.peer {
                named.insert(g.clone());
            }
        }
    }
    for g in &named {
        let n = ipset_name(g);
        out += &format!("create {n} hash:ip family inet\n");
        for a in s
            .view
            .members
            .get(&("default".to_string(), g.clone()))
            .into_iter()
            .flatten()
        {
            out += &format!("add {n} {a}\n");
        }
    }
    out += "create cali40all-nets hash:net family inet\n";
    out += "create cali40t-default hash:net family inet\n";
    for ((t, _), net) in &s.view.networks {
        out += &format!("add cali40all-nets {net}\n");
        if t == "default" {
            out += &format!("add cali40t-default {net}\n");
        }
    }
    out
}

/// The linear ruleset of a Calico classic host for the same intent (`iptables-restore`
/// input): FORWARD → `cali-FORWARD`: conntrack accept, then a from-workload dispatch
/// chain with one `-i <veth> -g cali-fw-<veth>` per endpoint, then a to-workload one with
/// `-o <veth> -g cali-tw-<veth>`; each endpoint's chains hold its group's out (fw) and
/// in (tw, then tenant isolation) rules; INPUT and OUTPUT use the same dispatch chains;
/// source checks as Calico does them: one `rpfilter` rule for every workload interface
/// in `raw` (no MAC or ARP check: Calico has none). Calico splits its dispatch chains
/// into a tree by interface-name prefix; this is the linear form.
fn iptables_text(s: &Synthetic) -> String {
    let mut o = String::new();
    o += "*raw\n:PREROUTING ACCEPT [0:0]\n:cali-PREROUTING - [0:0]\n";
    o += "-A PREROUTING -j cali-PREROUTING\n";
    o += "-A cali-PREROUTING -i cv+ -m rpfilter --invert -j DROP\nCOMMIT\n";
    o += "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
    let chains = [
        "cali-FORWARD",
        "cali-INPUT",
        "cali-OUTPUT",
        "cali-from-wl-dispatch",
        "cali-to-wl-dispatch",
    ];
    for c in chains {
        o += &format!(":{c} - [0:0]\n");
    }
    let ifs: Vec<&LocalEndpoint> = s.order.iter().map(|k| &s.local[k]).collect();
    for ep in &ifs {
        o += &format!(
            ":cali-fw-{} - [0:0]\n:cali-tw-{} - [0:0]\n",
            ep.ifname, ep.ifname
        );
    }
    o += "-A FORWARD -j cali-FORWARD\n-A INPUT -j cali-INPUT\n-A OUTPUT -j cali-OUTPUT\n";
    let est = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";
    o += &format!("-A cali-FORWARD {est}\n");
    o += "-A cali-FORWARD -j cali-from-wl-dispatch\n-A cali-FORWARD -j cali-to-wl-dispatch\n";
    o += &format!("-A cali-INPUT {est}\n-A cali-INPUT -j cali-from-wl-dispatch\n");
    o += &format!("-A cali-OUTPUT {est}\n-A cali-OUTPUT -j cali-to-wl-dispatch\n");
    for ep in &ifs {
        o += &format!(
            "-A cali-from-wl-dispatch -i {0} -g cali-fw-{0}\n",
            ep.ifname
        );
    }
    for ep in &ifs {
        o += &format!("-A cali-to-wl-dispatch -o {0} -g cali-tw-{0}\n", ep.ifname);
    }
    for ep in &ifs {
        o += &endpoint_chains(ep, &s.view);
    }
    o += "COMMIT\n";
    o
}

fn endpoint_chains(ep: &LocalEndpoint, view: &PolicyView) -> String {
    let mut o = String::new();
    let rules = ep
        .group
        .as_deref()
        .map(|g| view.rules(&ep.tenant, g))
        .unwrap_or(&[]);
    for r in rules.iter().filter(|r| r.direction == Direction::Out) {
        if let Some(t) = ipt_rule(r, view) {
            o += &format!("-A cali-fw-{} {t}\n", ep.ifname);
        }
    }
    for r in rules.iter().filter(|r| r.direction == Direction::In) {
        if let Some(t) = ipt_rule(r, view) {
            o += &format!("-A cali-tw-{} {t}\n", ep.ifname);
        }
    }
    o += &format!(
        "-A cali-tw-{} -m set --match-set cali40all-nets src -m set ! --match-set \
         cali40t-default src -j DROP\n",
        ep.ifname
    );
    o
}

fn rule_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("-A ")).count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Nft,
    Legacy,
}

impl Backend {
    fn restore(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-nft-restore",
            Backend::Legacy => "iptables-legacy-restore",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nf_tables",
            Backend::Legacy => "legacy",
        }
    }
}

/// Loads the ipsets and the linear ruleset into `ns`; returns (ipset, iptables) times.
fn load_iptables(ns: &str, s: &Synthetic, b: Backend) -> (Duration, Duration) {
    let sets = ipset_text(s);
    let rules = iptables_text(s);
    let t = Instant::now();
    ns_run(ns, &["ipset", "restore"], Some(&sets));
    let t_sets = t.elapsed();
    let t = Instant::now();
    ns_run(ns, &[b.restore()], Some(&rules));
    (t_sets, t.elapsed())
}

/// Removes whatever iptables and ipset left in `ns`.
fn unload_iptables(ns: &str, b: Backend) {
    match b {
        Backend::Nft => {
            ns_run(ns, &["nft", "flush", "ruleset"], None);
        }
        Backend::Legacy => {
            for t in ["filter", "raw"] {
                ns_run(ns, &["iptables-legacy", "-t", t, "-F"], None);
                ns_run(ns, &["iptables-legacy", "-t", t, "-X"], None);
            }
        }
    }
    ns_run(ns, &["ipset", "destroy"], None);
}

/// Loads our ruleset into `ns` as the manager's first pass does; returns the commit time.
fn load_ours(ns: &Ns, rs: &Ruleset) -> (Duration, Duration) {
    let mut nft = NftCli::new(HostNs(Some(ns.path())));
    let t = Instant::now();
    let snapshot = nft.snapshot().expect("nft snapshot");
    let ops = rs.overwrite(&snapshot);
    let t_plan = t.elapsed();
    let t = Instant::now();
    nft.commit(&ops).expect("nft commit");
    (t_plan, t.elapsed())
}

#[derive(Debug, Default)]
struct Load {
    nft_rules: usize,
    set_elements: usize,
    compile: Vec<Duration>,
    /// snapshot + overwrite, commit (fresh namespace each).
    first_plan: Vec<Duration>,
    first_commit: Vec<Duration>,
    resync_plan: Vec<Duration>,
    resync_commit: Vec<Duration>,
    inc_compile: Vec<Duration>,
    inc_changes: Vec<Duration>,
    inc_commit: Vec<Duration>,
    inc_ops: usize,
    ipt_rules: usize,
    ipsets: usize,
    ipt: Vec<IptLoad>,
}

/// The iptables baseline's load times with one backend.
#[derive(Debug)]
struct IptLoad {
    backend: Backend,
    /// `ipset restore`.
    sets: Vec<Duration>,
    /// `iptables-restore`.
    loads: Vec<Duration>,
    /// `iptables-restore --noflush` rewriting one endpoint's chain.
    incs: Vec<Duration>,
}

fn run_load(groups: usize, rules: usize, endpoints: usize, rounds: usize) -> Load {
    let mut s = synthetic(groups, rules, endpoints);
    let mut out = Load::default();
    let mut c = compile(&s.view, &s.local);
    for _ in 0..rounds {
        let t = Instant::now();
        c = compile(&s.view, &s.local);
        out.compile.push(t.elapsed());
    }
    let rs = c.ruleset.clone();
    out.nft_rules = rs.rule_count();
    out.set_elements = rs
        .tables
        .values()
        .flat_map(|t| t.sets.values())
        .map(|s| s.elements.len())
        .sum();
    for round in 0..rounds {
        let ns = Ns::new(&format!("load{round}"));
        let (plan, commit) = load_ours(&ns, &rs);
        out.first_plan.push(plan);
        out.first_commit.push(commit);
        let (plan, commit) = load_ours(&ns, &rs);
        out.resync_plan.push(plan);
        out.resync_commit.push(commit);
        // One rule added to one group's policy, as the manager's next pass.
        let mut nft = NftCli::new(HostNs(Some(ns.path())));
        let mut installed = rs.clone();
        let g = ("default".to_string(), group(groups / 2));
        for k in 0..3 {
            let mut grs: Vec<RuleSpec> = s.view.groups[&g].as_ref().clone();
            let mut r = synthetic_rule(groups / 2, 0, groups);
            r.rule_id = format!("new{round}-{k}");
            r.port = Some(7000 + k as u16);
            grs.push(r);
            semantics::order(&mut grs);
            s.view.groups.insert(g.clone(), Arc::new(grs));
            let t = Instant::now();
            let c2 = compile(&s.view, &s.local);
            out.inc_compile.push(t.elapsed());
            let t = Instant::now();
            let ops = c2.ruleset.changes(&installed);
            out.inc_changes.push(t.elapsed());
            out.inc_ops = ops.len();
            let t = Instant::now();
            nft.commit(&ops).expect("incremental commit");
            out.inc_commit.push(t.elapsed());
            installed = c2.ruleset;
        }
    }
    let s = synthetic(groups, rules, endpoints);
    let text = iptables_text(&s);
    out.ipt_rules = rule_lines(&text);
    out.ipsets = ipset_text(&s)
        .lines()
        .filter(|l| l.starts_with("create"))
        .count();
    let mid = &s.local[&s.order[s.order.len() / 2]];
    let mut chain = format!("*filter\n:cali-tw-{0} - [0:0]\n", mid.ifname);
    let mut view2 = s.view.clone();
    let g = ("default".to_string(), mid.group.clone().expect("group"));
    let mut grs: Vec<RuleSpec> = view2.groups[&g].as_ref().clone();
    let mut r = synthetic_rule(0, 0, groups);
    r.port = Some(7000);
    r.rule_id = "new".into();
    grs.push(r);
    semantics::order(&mut grs);
    view2.groups.insert(g, Arc::new(grs));
    chain += &endpoint_chains(mid, &view2)
        .lines()
        .filter(|l| l.starts_with(&format!("-A cali-tw-{} ", mid.ifname)))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    chain += "COMMIT\n";
    for b in [Backend::Nft, Backend::Legacy] {
        let (mut sets, mut loads, mut incs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let ns = Ns::new(&format!("ipt{round}"));
            let (a, l) = load_iptables(ns.name(), &s, b);
            sets.push(a);
            loads.push(l);
            let t = Instant::now();
            ns_run(ns.name(), &[b.restore(), "--noflush"], Some(&chain));
            incs.push(t.elapsed());
            unload_iptables(ns.name(), b);
        }
        out.ipt.push(IptLoad {
            backend: b,
            sets,
            loads,
            incs,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// 3. Per packet: two containers through a routing host.

struct Topo {
    host: Ns,
    c1: Ns,
    c2: Ns,
    c2_addr: Ipv4Addr,
}

/// c1 (20.1.100.2) — cvA — host — cvB — c2 (20.1.101.2); the veths are endpoints
/// `pair-a` and `pair-b` (names as netplugin derives them).
fn topo() -> Topo {
    let host = Ns::new("h");
    let c1 = Ns::new("c1");
    let c2 = Ns::new("c2");
    for (c, id, net) in [(&c1, "pair-a", 100), (&c2, "pair-b", 101)] {
        let ifname = host_ifname(id);
        sh(Command::new("ip").args([
            "-n",
            host.name(),
            "link",
            "add",
            &ifname,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            c.name(),
        ]));
        host.run(&[
            "ip",
            "addr",
            "add",
            &format!("20.1.{net}.1/24"),
            "dev",
            &ifname,
        ]);
        host.run(&["ip", "link", "set", &ifname, "up"]);
        c.run(&[
            "ip",
            "addr",
            "add",
            &format!("20.1.{net}.2/24"),
            "dev",
            "eth0",
        ]);
        c.run(&["ip", "link", "set", "eth0", "up"]);
        c.run(&["ip", "link", "set", "lo", "up"]);
        c.run(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("20.1.{net}.1"),
        ]);
        // No IPv6 (router solicitations, MLD): our ruleset drops IPv6 from veths, so the
        // spoofed counter then counts only what the measured traffic would have lost.
        c.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        c.run(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
        c.run(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"]);
    }
    host.run(&["ip", "link", "set", "lo", "up"]);
    host.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    Topo {
        host,
        c1,
        c2,
        c2_addr: Ipv4Addr::new(20, 1, 101, 2),
    }
}

fn mac_of(ns: &Ns) -> String {
    let o = ns.run(&["ip", "-j", "link", "show", "eth0"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ip -j");
    v[0]["address"].as_str().expect("mac").to_string()
}

/// The synthetic intent with endpoints `order.len()/2` and the next one replaced by the
/// pair, both in the first one's group.
fn with_pair(groups: usize, rules: usize, endpoints: usize, t: &Topo) -> Synthetic {
    let mut s = synthetic(groups, rules, endpoints);
    let mid = endpoints / 2;
    let g = group(mid % groups);
    for (k, (id, addr, ns)) in [
        ("pair-a", Ipv4Addr::new(20, 1, 100, 2), &t.c1),
        ("pair-b", Ipv4Addr::new(20, 1, 101, 2), &t.c2),
    ]
    .into_iter()
    .enumerate()
    {
        let key = s.order[mid + k].clone();
        s.local.insert(
            key,
            LocalEndpoint {
                ifname: host_ifname(id),
                address: IpAddr::V4(addr),
                mac: mac_of(ns),
                tenant: "default".into(),
                group: Some(g.clone()),
            },
        );
        s.view
            .members
            .get_mut(&("default".to_string(), g.clone()))
            .expect("group")
            .insert(IpAddr::V4(addr));
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    None,
    /// Only `ct state established,related accept` in a forward chain: what conntrack
    /// alone costs (the no-policy host has no conntrack).
    CtOnly,
    Ours,
    Ipt(Backend),
}

impl Config {
    fn name(self) -> String {
        match self {
            Config::None => "no policy".into(),
            Config::CtOnly => "conntrack only (1 nft rule)".into(),
            Config::Ours => "netplugin nftables".into(),
            Config::Ipt(b) => format!("iptables linear ({})", b.name()),
        }
    }
}

fn iperf(t: &Topo, secs: u64) -> f64 {
    let o = t.c1.run(&[
        "iperf3",
        "-c",
        &t.c2_addr.to_string(),
        "-p",
        &IPERF_PORT.to_string(),
        "-t",
        &secs.to_string(),
        "-J",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("iperf3 -J");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
}

/// The connection-rate server in c2: accept, read a byte, write one, close.
struct CrrServer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
    /// The client's namespace (the wake-up connection at the end is made from there).
    client_ns: PathBuf,
}

impl CrrServer {
    fn start(t: &Topo) -> CrrServer {
        let addr = SocketAddr::new(IpAddr::V4(t.c2_addr), CRR_PORT);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = stop.clone();
        let handle = in_ns(t.c2.path(), move || {
            let l = TcpListener::bind(addr).expect("bind");
            tx.send(()).expect("ready");
            let mut b = [0u8; 1];
            for s in l.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let _ = s.set_nodelay(true);
                if s.read_exact(&mut b).is_ok() {
                    let _ = s.write_all(&b);
                }
            }
        });
        rx.recv().expect("server ready");
        CrrServer {
            stop,
            handle: Some(handle),
            addr,
            client_ns: t.c1.path(),
        }
    }

    /// Connections per second from c1 over `window`, and each connection's time
    /// (connect → the reply byte read).
    fn rate(&self, t: &Topo, window: Duration) -> (f64, Vec<Duration>) {
        let addr = self.addr;
        let h = in_ns(t.c1.path(), move || {
            let end = Instant::now() + window;
            let start = Instant::now();
            let mut b = [0u8; 1];
            let mut each = Vec::new();
            while Instant::now() < end {
                let t0 = Instant::now();
                let mut s =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
                let _ = s.set_nodelay(true);
                s.write_all(&[1]).expect("write");
                s.read_exact(&mut b).expect("read");
                each.push(t0.elapsed());
            }
            (start.elapsed(), each)
        });
        let (took, each) = h.join().expect("client");
        (each.len() as f64 / took.as_secs_f64(), each)
    }
}

impl Drop for CrrServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop up, from the client's namespace (never from the machine's).
        let addr = self.addr;
        let _ = in_ns(self.client_ns.clone(), move || {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(500));
        })
        .join();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[derive(Debug, Default)]
struct Packet {
    /// Configuration → (Gbit/s runs, connections/s runs).
    runs: Vec<(Config, Vec<f64>, Vec<f64>)>,
    /// Configuration → every connection's time, all runs pooled.
    conn_times: Vec<Vec<Duration>>,
    /// Our spoofed / isolated counters after each run with our ruleset (both must stay 0).
    drops: Vec<String>,
}

fn load_config(t: &Topo, cfg: Config, s: &Synthetic, rs: &Ruleset) {
    match cfg {
        Config::None => {}
        Config::CtOnly => {
            ns_run(
                t.host.name(),
                &["nft", "-f", "-"],
                Some(
                    "table inet ctonly {\n chain forward {\n type filter hook forward \
                     priority filter; policy accept;\n ct state established,related accept\n \
                     }\n}\n",
                ),
            );
        }
        Config::Ours => {
            load_ours(&t.host, rs);
        }
        Config::Ipt(b) => {
            load_iptables(t.host.name(), s, b);
        }
    }
}

/// One run on a fresh topology (so no configuration inherits another's hooks, conntrack
/// entries or legacy tables): load, warm up, iperf3, connection rate.
fn packet_run(
    cfg: Config,
    sizes: (usize, usize, usize),
    secs: u64,
) -> (f64, (f64, Vec<Duration>), String) {
    let t = topo();
    let s = with_pair(sizes.0, sizes.1, sizes.2, &t);
    let rs = compile(&s.view, &s.local).ruleset;
    load_config(&t, cfg, &s, &rs);
    let iperf_server = Proc(
        Command::new("ip")
            .args(["netns", "exec", t.c2.name(), "iperf3", "-s", "-p"])
            .arg(IPERF_PORT.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 -s"),
    );
    let server = CrrServer::start(&t);
    // Warm-up (ARP, route and socket caches); iperf3's server is listening by then.
    let _ = server.rate(&t, Duration::from_millis(500));
    let bps = iperf(&t, secs);
    let cps = server.rate(&t, Duration::from_secs(secs));
    let mut drops = String::new();
    if cfg == Config::Ours {
        let o = t
            .host
            .run(&["nft", "list", "counters", "table", "inet", "contiv"]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            let l = l.trim();
            for name in ["spoofed", "isolated"] {
                if l.starts_with(&format!("counter {name} ")) {
                    let v = lines.next().unwrap_or_default().trim().to_string();
                    drops += &format!("{name}: {v}; ");
                }
            }
        }
    }
    drop(server);
    drop(iperf_server);
    (bps / 1e9, cps, drops)
}

fn run_packet(groups: usize, rules: usize, endpoints: usize, secs: u64, repeats: usize) -> Packet {
    let configs = [
        Config::None,
        Config::CtOnly,
        Config::Ours,
        Config::Ipt(Backend::Nft),
        Config::Ipt(Backend::Legacy),
    ];
    let mut out = Packet {
        runs: configs.iter().map(|c| (*c, vec![], vec![])).collect(),
        conn_times: configs.iter().map(|_| Vec::new()).collect(),
        drops: Vec::new(),
    };
    for rep in 0..repeats {
        for (i, cfg) in configs.iter().enumerate() {
            let (gbps, (cps, times), drops) = packet_run(*cfg, (groups, rules, endpoints), secs);
            out.conn_times[i].extend(times);
            eprintln!(
                "packet run {rep} {:<30} {gbps:6.2} Gbit/s {cps:8.0} conn/s {drops}",
                cfg.name()
            );
            out.runs[i].1.push(gbps);
            out.runs[i].2.push(cps);
            if !drops.is_empty() {
                out.drops.push(drops);
            }
        }
    }
    out
}

fn med(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        0.0
    } else {
        s[(s.len() - 1) / 2]
    }
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn spread(v: &[f64], unit: &str, prec: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    format!(
        "best {:.prec$} {unit}, median {:.prec$} (worst {:.prec$}, n={})",
        best(v),
        med(v),
        lo,
        v.len()
    )
}

// ---------------------------------------------------------------------------------------

struct Cfg {
    changes: usize,
    groups: usize,
    rules: usize,
    endpoints: usize,
    only: Option<String>,
    secs: u64,
    repeats: usize,
}

impl Cfg {
    fn from_args() -> Cfg {
        let mut only = std::env::var("POLICY_BENCH_ONLY")
            .ok()
            .filter(|s| !s.is_empty());
        let mut nums = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "--only" {
                only = Some(args.next().expect("--only needs enforce, load or packet"));
            } else if let Some(v) = a.strip_prefix("--only=") {
                only = Some(v.to_string());
            } else {
                nums.push(a.parse::<usize>().unwrap_or_else(|_| {
                    panic!("{a:?}: arguments are CHANGES GROUPS RULES ENDPOINTS [--only PART]")
                }));
            }
        }
        if let Some(o) = &only {
            assert!(
                ["enforce", "load", "packet"].contains(&o.as_str()),
                "--only {o}: enforce, load or packet"
            );
        }
        let env = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let endpoints = nums.get(3).copied().unwrap_or(1000);
        assert!(endpoints >= 4, "at least 4 endpoints");
        Cfg {
            changes: nums.first().copied().unwrap_or(200),
            groups: nums.get(1).copied().unwrap_or(1000).max(4),
            rules: nums.get(2).copied().unwrap_or(10),
            endpoints,
            only,
            secs: env("POLICY_BENCH_SECS", 2) as u64,
            repeats: env("POLICY_BENCH_REPEATS", 6),
        }
    }
    fn runs(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == part)
    }
}

fn main() {
    if !contiv_tests::require_root("policy_bench") {
        return;
    }
    let cfg = Cfg::from_args();
    println!(
        "policy_bench: {} changes; {} groups × {} rules, {} endpoints; packet runs {} × {} s; \
         load average {}; {}; {}; {}; {}",
        cfg.changes,
        cfg.groups,
        cfg.rules,
        cfg.endpoints,
        cfg.repeats,
        cfg.secs,
        load_average(),
        version("nft", &["--version"]),
        version("iptables", &["--version"]),
        version("iperf3", &["--version"]),
        version("uname", &["-r"]),
    );
    let mut rows: Vec<String> = Vec::new();
    let mut printed = 0;
    if cfg.runs("enforce") {
        let e = run_enforce(cfg.changes);
        rows.push(format!(
            "| rule added → in every host's kernel (2 hosts, {} changes) | {} | goal p99 ≤ 50 ms: {} |",
            cfg.changes,
            lat(&e.all),
            if e.lost == 0 && percentile(&sorted(&e.all), 99.0) <= Duration::from_millis(50) {
                "**met**"
            } else {
                "**not met**"
            }
        ));
        rows.push(format!(
            "| (of which netmaster's answer to the POST) | {} | – |",
            lat(&e.ack)
        ));
        for (i, h) in e.host.iter().enumerate() {
            let (n, mean) = e.passes.get(i).copied().unwrap_or_default();
            rows.push(format!(
                "| (host{} alone) | {} | {n:.0} reconcile passes, mean {} |",
                i + 1,
                lat(h),
                ms(mean)
            ));
        }
        let n = e.all.len();
        if n >= 40 {
            rows.push(format!(
                "| (first 20 changes / last 20: the policy holds 1–20 / {}–{} rules) | p50 {} / {} | – |",
                n - 19,
                n,
                ms(median_of(&e.all[..20])),
                ms(median_of(&e.all[n - 20..]))
            ));
        }
        if e.lost > 0 {
            rows.push(format!(
                "| changes lost (not enforced in 10 s) | {} | – |",
                e.lost
            ));
        }
    }
    flush_part(&mut rows, &mut printed);
    if cfg.runs("load") {
        let l = run_load(cfg.groups, cfg.rules, cfg.endpoints, 3);
        let m = median_of;
        let first = m(&l.first_plan) + m(&l.first_commit);
        rows.push(format!(
            "| ruleset size | ours: {} rules, {} set/map elements | iptables: {} rules, {} ipsets |",
            l.nft_rules, l.set_elements, l.ipt_rules, l.ipsets
        ));
        rows.push(format!(
            "| compile | {} (median of {}) | – |",
            ms(m(&l.compile)),
            l.compile.len()
        ));
        rows.push(format!(
            "| first full load: snapshot + overwrite, commit (`nft -f`) | {} + {} = {} | compile + load {} (goal ≤ 200 ms: {}) |",
            ms(m(&l.first_plan)),
            ms(m(&l.first_commit)),
            ms(first),
            ms(first + m(&l.compile)),
            if first + m(&l.compile) <= Duration::from_millis(200) {
                "**met**"
            } else {
                "**not met**"
            }
        ));
        rows.push(format!(
            "| resync over the loaded ruleset: snapshot + overwrite, commit | {} + {} | – |",
            ms(m(&l.resync_plan)),
            ms(m(&l.resync_commit))
        ));
        rows.push(format!(
            "| one rule added: compile, changes, commit ({} ops) | {} + {} + {} = {} | – |",
            l.inc_ops,
            ms(m(&l.inc_compile)),
            ms(m(&l.inc_changes)),
            ms(m(&l.inc_commit)),
            ms(m(&l.inc_compile) + m(&l.inc_changes) + m(&l.inc_commit))
        ));
        for IptLoad {
            backend: b,
            sets,
            loads,
            incs,
        } in &l.ipt
        {
            let total = m(sets) + m(loads);
            rows.push(format!(
                "| iptables linear ({}): ipset restore + iptables-restore | {} + {} = {} | ours (compile + first load) / iptables: {} |",
                b.name(),
                ms(m(sets)),
                ms(m(loads)),
                ms(total),
                ratio(
                    (first + m(&l.compile)).as_secs_f64(),
                    total.as_secs_f64()
                )
            ));
            rows.push(format!(
                "| iptables linear ({}): one rule added (`--noflush`, the endpoint's chain rewritten) | {} | ours / iptables: {} |",
                b.name(),
                ms(m(incs)),
                ratio(
                    (m(&l.inc_compile) + m(&l.inc_changes) + m(&l.inc_commit)).as_secs_f64(),
                    m(incs).as_secs_f64()
                )
            ));
        }
    }
    flush_part(&mut rows, &mut printed);
    if cfg.runs("packet") {
        // The machine is shared: at nice -10 (this thread, so the threads and processes
        // started from here on) the runs are less at the mercy of other jobs.
        let _ = Command::new("renice")
            .args(["-n", "-10", "-p", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
        let p = run_packet(cfg.groups, cfg.rules, cfg.endpoints, cfg.secs, cfg.repeats);
        // Ratios: of the medians, and the median of the ratios within each round (the
        // configurations of a round ran back to back, so those pairs share the load).
        let base = p.runs.first().cloned();
        for (c, gbps, cps) in &p.runs {
            let (_, bg, bc) = base.clone().unwrap_or((Config::None, vec![], vec![]));
            let paired = |v: &[f64], b: &[f64]| -> f64 {
                med(&v
                    .iter()
                    .zip(b)
                    .filter(|(_, b)| **b > 0.0)
                    .map(|(a, b)| a / b)
                    .collect::<Vec<_>>())
            };
            rows.push(format!(
                "| {}: TCP throughput, 1 stream | {} | best {} of no policy's best; medians {}, paired {:.2}× |",
                c.name(),
                spread(gbps, "Gbit/s", 2),
                ratio(best(gbps), best(&bg)),
                ratio(med(gbps), med(&bg)),
                paired(gbps, &bg)
            ));
            rows.push(format!(
                "| {}: connections/s (connect, 1 byte each way, close) | {} | best {} of no policy's best; medians {}, paired {:.2}× |",
                c.name(),
                spread(cps, "/s", 0),
                ratio(best(cps), best(&bc)),
                ratio(med(cps), med(&bc)),
                paired(cps, &bc)
            ));
        }
        let base_times = p.conn_times.first().map(|v| sorted(v)).unwrap_or_default();
        for ((c, _, _), times) in p.runs.iter().zip(&p.conn_times) {
            let s = sorted(times);
            rows.push(format!(
                "| {}: one connection (connect → reply read), all runs | p10 {} p50 {} | p10 {} of no policy's |",
                c.name(),
                us(percentile(&s, 10.0)),
                us(percentile(&s, 50.0)),
                ratio(
                    percentile(&s, 10.0).as_secs_f64(),
                    percentile(&base_times, 10.0).as_secs_f64()
                )
            ));
        }
        if let Some(d) = p.drops.last() {
            rows.push(format!(
                "| our drop counters after the last run with our ruleset | {d} | – |"
            ));
        }
    }
    println!("\n| figure | value | against |\n|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

/// Prints the rows of a part as soon as it is done (the whole table follows at the end).
fn flush_part(rows: &mut [String], printed: &mut usize) {
    if rows.len() > *printed {
        println!("{}", rows[*printed..].join("\n"));
        *printed = rows.len();
    }
}

fn sorted(v: &[Duration]) -> Vec<Duration> {
    let mut s = v.to_vec();
    s.sort();
    s
}
