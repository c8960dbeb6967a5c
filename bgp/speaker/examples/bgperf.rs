//! bgperf: a bgperf-style BGP benchmark. N sender peers announce M prefixes each to a
//! target speaker, which passes them on to a monitor peer that counts what arrives.
//! The targets (contiv-bgpd, BIRD 2, FRR bgpd, GoBGP) run one after another in the same
//! invocation against the same senders; for each one the harness prints the time from
//! the senders' first UPDATE to the monitor holding every prefix, the target's
//! CPU-seconds over that interval and its peak RSS, and the ratios against contiv-bgpd.
//!
//! ```text
//! cargo build --release -p bgp-speaker --bin contiv-bgpd
//! cargo run --release -p bgp-speaker --example bgperf -- --senders 10 --prefixes 100000
//! cargo run --release -p bgp-speaker --example bgperf -- -n 2 -m 1000 --targets bird,frr
//! ```
//!
//! Needs root (it creates network namespaces). Layout, all in namespaces of its own that
//! are deleted at the end (also on an error or Ctrl-C):
//! - `bgperf-<pid>-t`: the target daemon, 10.97.0.1/16 on `t0`;
//! - `bgperf-<pid>-p`: the senders (10.97.1.1, 10.97.1.2, ...) and the monitor
//!   (10.97.0.2), all addresses on `p0`, the veth peer of `t0`. The senders and the
//!   monitor are this program's own tokio tasks (one thread, one runtime, inside that
//!   namespace), built on the `bgp` crate's wire codec.
//!
//! Each target is configured by the harness: eBGP with every sender (AS 64600 + i) and
//! with the monitor (AS 65001), the target being AS 65000, passive (the peers connect),
//! import and export everything to everyone (as bgperf does: senders also receive the
//! other senders' routes), no route installation in the kernel:
//! - BIRD: no `kernel` protocol (only `device`);
//! - FRR: `bgpd -Z` alone (no zebra), as bgperf2 runs it; `no bgp ebgp-requires-policy`,
//!   `advertisement-interval 0`;
//! - GoBGP: `gobgpd` (it never programs a FIB by itself);
//! - contiv-bgpd: `[global] export_learned = true`, `ebgp_requires_policy = false`, log
//!   level `warn`. When the binary does not know these options (`--check` refuses the
//!   config), its row says "not run: transit not available".
//!
//! Senders announce distinct /32s from 100.0.0.0 upwards (sender i the i-th block of M),
//! or all the same M prefixes with `--overlap`; packed as many per UPDATE as fit in
//! 4096 octets (or `--per-update K`), then End-of-RIB; sessions stay up with keepalives.
//! The UPDATE bytes are encoded before the clock starts. Measured per target:
//! - elapsed: from the first sender starting its first write to the monitor holding all
//!   expected prefixes (N×M distinct, M with `--overlap`);
//! - CPU: utime+stime of the target's processes over that interval (/proc/<pid>/stat);
//! - peak RSS: VmHWM of the target's processes at convergence, summed.
//!
//! The harness shares the machine with the target; its own CPU over the interval is
//! printed too, so contention is visible.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp::types::{AsPath, Family, NextHop, Nlri, Origin, PathAttrs};
use bgp::wire::ctx::basic_capabilities;
use bgp::wire::{
    CeaseError, Message, Notification, Open, SessionCtx, Update, frame_len, pack_updates,
};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use containerlab::proc::{ProcId, netns_pids, spawn_in_ns, stop_all};
use ipnet::{IpNet, Ipv4Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

const TARGET_ADDR: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 1);
const MONITOR_ADDR: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 2);
const TARGET_AS: u32 = 65000;
const MONITOR_AS: u32 = 65001;
const SENDER_AS_BASE: u32 = 64600;
const MAX_SENDERS: usize = 900;
/// Hold time we offer; every target is configured with the same.
const HOLD_TIME: u16 = 90;
/// First prefix announced: 100.0.0.0.
const PREFIX_BASE: u32 = 100 << 24;
/// Prefixes must stay below 224.0.0.0.
const PREFIX_LIMIT: u64 = 224 << 24;

#[derive(Debug, Parser)]
#[command(
    name = "bgperf",
    about = "N senders x M prefixes -> target speaker -> counting monitor, for contiv-bgpd, BIRD, FRR and GoBGP"
)]
struct Args {
    /// Sender peers.
    #[arg(short = 'n', long, default_value_t = 10)]
    senders: usize,
    /// Prefixes announced by each sender.
    #[arg(short = 'm', long, default_value_t = 100_000)]
    prefixes: usize,
    /// Targets to run, in order (contiv, bird, frr, gobgp).
    #[arg(long, value_delimiter = ',', default_value = "contiv,bird,frr,gobgp")]
    targets: Vec<String>,
    /// Every sender announces the same M prefixes (the target runs best path over N
    /// candidates; the monitor expects M).
    #[arg(long)]
    overlap: bool,
    /// Prefix length of the announced prefixes (8..=32).
    #[arg(long, default_value_t = 32)]
    prefix_len: u8,
    /// At most this many prefixes per UPDATE (0: as many as fit in 4096 octets).
    #[arg(long, default_value_t = 0)]
    per_update: usize,
    /// Give up on a target after this many seconds without full convergence.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Seconds to wait after every session is Established before the senders start.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// The contiv-bgpd binary (default: next to this example, i.e. target/<profile>/).
    #[arg(long)]
    bgpd: Option<PathBuf>,
    /// Keep the work directory (configs and daemon logs) and print where it is.
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------------------------------
// Namespaces and processes: everything created is removed by `Lab`'s Drop
// ---------------------------------------------------------------------------------------

struct Lab {
    target_ns: String,
    peers_ns: String,
    /// Processes of the target currently running (stopped by Drop if still there).
    procs: Arc<Mutex<Vec<ProcId>>>,
    created: Vec<String>,
}

impl Lab {
    fn create(senders: usize) -> Result<Lab, String> {
        let pid = std::process::id();
        let mut lab = Lab {
            target_ns: format!("bgperf-{pid}-t"),
            peers_ns: format!("bgperf-{pid}-p"),
            procs: Arc::new(Mutex::new(Vec::new())),
            created: Vec::new(),
        };
        for ns in [lab.target_ns.clone(), lab.peers_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            lab.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (t, p) = (lab.target_ns.clone(), lab.peers_ns.clone());
        ip(&[
            "-n", &t, "link", "add", "t0", "type", "veth", "peer", "name", "p0", "netns", &p,
        ])?;
        ip(&[
            "-n",
            &t,
            "addr",
            "add",
            &format!("{TARGET_ADDR}/16"),
            "dev",
            "t0",
        ])?;
        ip(&["-n", &t, "link", "set", "t0", "up"])?;
        let mut batch = format!("addr add {MONITOR_ADDR}/16 dev p0\n");
        for i in 0..senders {
            let _ = writeln!(batch, "addr add {}/16 dev p0", sender_addr(i));
        }
        batch.push_str("link set p0 up\n");
        containerlab::proc::ip_batch("peers namespace", Some(&p), &batch)
            .map_err(|e| e.to_string())?;
        Ok(lab)
    }

    fn stop_target(&self) {
        let procs = std::mem::take(&mut *self.procs.lock().unwrap());
        stop_all(&procs, Duration::from_secs(5));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_target();
        for ns in &self.created {
            // Anything still inside our own fresh namespaces was started by us.
            let left: Vec<ProcId> = netns_pids(ns).into_iter().filter_map(ProcId::of).collect();
            if !left.is_empty() {
                stop_all(&left, Duration::from_secs(2));
            }
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("bgperf: deleting namespace {ns}: {e}");
            }
        }
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    containerlab::proc::ip("bgperf", args).map_err(|e| e.to_string())
}

fn sender_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 97, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn sender_as(i: usize) -> u32 {
    SENDER_AS_BASE + i as u32
}

/// utime+stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Skip the command name (it may contain spaces); the rest starts at field 3.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Peak resident set size (VmHWM) of a process, in KiB.
fn vm_hwm_kib(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Contiv,
    Bird,
    Frr,
    Gobgp,
}

impl Kind {
    fn parse(s: &str) -> Result<Kind, String> {
        Ok(match s.trim() {
            "contiv" | "contiv-bgpd" => Kind::Contiv,
            "bird" => Kind::Bird,
            "frr" => Kind::Frr,
            "gobgp" | "gobgpd" => Kind::Gobgp,
            other => {
                return Err(format!(
                    "unknown target '{other}' (contiv, bird, frr, gobgp)"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Contiv => "contiv-bgpd",
            Kind::Bird => "BIRD",
            Kind::Frr => "FRR bgpd -Z",
            Kind::Gobgp => "GoBGP",
        }
    }
}

/// What the run needs to know about the peers.
#[derive(Clone)]
struct Peers {
    senders: usize,
}

impl Peers {
    /// (address, AS) of every peer of the target: the monitor first, then the senders.
    fn all(&self) -> Vec<(Ipv4Addr, u32)> {
        let mut v = vec![(MONITOR_ADDR, MONITOR_AS)];
        v.extend((0..self.senders).map(|i| (sender_addr(i), sender_as(i))));
        v
    }
}

fn bird_config(dir: &Path, peers: &Peers) -> String {
    let mut c = format!(
        "log \"{}\" {{ info, remote, warning, error, auth, fatal, bug }};\n\
         router id {TARGET_ADDR};\n\
         protocol device {{ }}\n\
         template bgp peer {{\n  local {TARGET_ADDR} as {TARGET_AS};\n  passive on;\n  \
         hold time {HOLD_TIME};\n  ipv4 {{ import all; export all; }};\n}}\n",
        dir.join("bird.log").display()
    );
    for (i, (addr, asn)) in peers.all().into_iter().enumerate() {
        let name = if i == 0 {
            "monitor".to_string()
        } else {
            format!("s{}", i - 1)
        };
        let _ = writeln!(
            c,
            "protocol bgp {name} from peer {{ neighbor {addr} as {asn}; }}"
        );
    }
    c
}

fn frr_config(peers: &Peers) -> String {
    let mut c = format!(
        "hostname bgperf\n!\nrouter bgp {TARGET_AS}\n bgp router-id {TARGET_ADDR}\n \
         no bgp ebgp-requires-policy\n"
    );
    for (addr, asn) in peers.all() {
        let _ = write!(
            c,
            " neighbor {addr} remote-as {asn}\n neighbor {addr} passive\n \
             neighbor {addr} advertisement-interval 0\n neighbor {addr} timers {} {HOLD_TIME}\n",
            HOLD_TIME / 3
        );
    }
    c.push_str(" address-family ipv4 unicast\n");
    for (addr, _) in peers.all() {
        let _ = writeln!(c, "  neighbor {addr} activate");
    }
    c.push_str(" exit-address-family\n!\n");
    c
}

fn gobgp_config(peers: &Peers) -> String {
    let mut c = format!(
        "[global.config]\n  as = {TARGET_AS}\n  router-id = \"{TARGET_ADDR}\"\n  port = 179\n  \
         local-address-list = [\"{TARGET_ADDR}\"]\n"
    );
    for (addr, asn) in peers.all() {
        let _ = write!(
            c,
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    \
             peer-as = {asn}\n  [neighbors.transport.config]\n    passive-mode = true\n  \
             [neighbors.timers.config]\n    hold-time = {HOLD_TIME}\n    keepalive-interval = {}\n  \
             [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"ipv4-unicast\"\n",
            HOLD_TIME / 3
        );
    }
    c
}

fn contiv_config(peers: &Peers) -> String {
    let mut c = format!(
        "[global]\nasn = {TARGET_AS}\nrouter_id = \"{TARGET_ADDR}\"\nfamilies = [\"ipv4-unicast\"]\n\
         export_learned = true\nebgp_requires_policy = false\nlisten = {{ addresses = [\"{TARGET_ADDR}\"], port = 179 }}\n"
    );
    for (addr, asn) in peers.all() {
        let _ = write!(
            c,
            "\n[[neighbors]]\naddress = \"{addr}\"\npeer_asn = {asn}\npassive = true\n\
             hold_time = {HOLD_TIME}\n"
        );
    }
    c
}

/// How a target is run: its processes' command lines and environment.
struct Launch {
    argv: Vec<Vec<String>>,
    env: Vec<(String, String)>,
}

/// Writes the target's config into `dir` and says how to run it, or why it cannot run.
fn prepare(kind: Kind, dir: &Path, peers: &Peers, bgpd: &Path) -> Result<Launch, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let s = |p: PathBuf| p.display().to_string();
    let write = |name: &str, text: String| -> Result<String, String> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(s(p))
    };
    let sv = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match kind {
        Kind::Bird => {
            let conf = write("bird.conf", bird_config(dir, peers))?;
            let out = std::process::Command::new("/usr/sbin/bird")
                .args(["-p", "-c", &conf])
                .output()
                .map_err(|e| format!("bird: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "bird -p refused the config: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let (ctl, pid) = (s(dir.join("bird.ctl")), s(dir.join("bird.pid")));
            Ok(Launch {
                argv: vec![sv(&[
                    "/usr/sbin/bird",
                    "-f",
                    "-c",
                    &conf,
                    "-s",
                    &ctl,
                    "-P",
                    &pid,
                ])],
                env: Vec::new(),
            })
        }
        Kind::Frr => {
            let conf = write("bgpd.conf", frr_config(peers))?;
            let run = dir.join("run");
            std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
            Ok(Launch {
                argv: vec![sv(&[
                    "/usr/lib/frr/bgpd",
                    "-Z",
                    "-f",
                    &conf,
                    "-i",
                    &s(run.join("bgpd.pid")),
                    "--vty_socket",
                    &s(run.clone()),
                    "-A",
                    "127.0.0.1",
                    "-P",
                    "0",
                    "-u",
                    "root",
                    "-g",
                    "frrvty",
                    "--log",
                    "stdout",
                ])],
                env: Vec::new(),
            })
        }
        Kind::Gobgp => {
            let conf = write("gobgpd.toml", gobgp_config(peers))?;
            Ok(Launch {
                argv: vec![sv(&[
                    "/usr/bin/gobgpd",
                    "-f",
                    &conf,
                    "-t",
                    "toml",
                    "-p",
                    "--api-hosts=127.0.0.1:50051",
                    "--pprof-disable",
                ])],
                env: Vec::new(),
            })
        }
        Kind::Contiv => {
            if !bgpd.exists() {
                return Err(format!(
                    "not run: {} missing (cargo build --release -p bgp-speaker --bin contiv-bgpd)",
                    bgpd.display()
                ));
            }
            let conf = write("contiv-bgpd.toml", contiv_config(peers))?;
            let out = std::process::Command::new(bgpd)
                .args(["-c", &conf, "--check"])
                .output()
                .map_err(|e| format!("{}: {e}", bgpd.display()))?;
            if !out.status.success() {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if text.contains("export_learned") || text.contains("ebgp_requires_policy") {
                    return Err("not run: transit not available (contiv-bgpd does not know \
                                `[global] export_learned` / `ebgp_requires_policy`)"
                        .into());
                }
                return Err(format!(
                    "contiv-bgpd --check refused the config: {}",
                    text.trim()
                ));
            }
            Ok(Launch {
                argv: vec![vec![s(bgpd.to_path_buf()), "-c".into(), conf]],
                env: vec![("RUST_LOG".into(), "warn".into())],
            })
        }
    }
}

fn version(kind: Kind, bgpd: &Path) -> String {
    let (prog, arg): (&Path, &str) = match kind {
        Kind::Contiv => (bgpd, "--version"),
        Kind::Bird => (Path::new("/usr/sbin/bird"), "--version"),
        Kind::Frr => (Path::new("/usr/lib/frr/bgpd"), "--version"),
        Kind::Gobgp => (Path::new("/usr/bin/gobgpd"), "--version"),
    };
    let Ok(out) = std::process::Command::new(prog).arg(arg).output() else {
        return "?".into();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let first = text.lines().next().unwrap_or("").trim();
    // "BIRD version 2.0.12", "bgpd version 8.4.4", "gobgpd version 3.10.0", "contiv-bgpd 0.1.0"
    first.rsplit(' ').next().unwrap_or("?").to_string()
}

// ---------------------------------------------------------------------------------------
// Peers: our own BGP sessions on the bgp crate's codec
// ---------------------------------------------------------------------------------------

/// The read side of a session: cuts whole messages out of the byte stream.
struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    max_len: usize,
}

impl Reader {
    async fn frame(&mut self) -> io::Result<Option<BytesMut>> {
        loop {
            match frame_len(&self.buf, self.max_len) {
                Ok(Some(n)) => return Ok(Some(self.buf.split_to(n))),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(256 * 1024);
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// An Established session.
struct Session {
    reader: Reader,
    wr: OwnedWriteHalf,
    ctx: SessionCtx,
    keepalive: Duration,
}

fn encode(msg: &Message, ctx: &SessionCtx) -> Result<BytesMut, String> {
    msg.to_bytes(ctx).map_err(|e| format!("encoding: {e}"))
}

/// Connects from `local` to the target (retrying until `deadline`: the target may still
/// be starting), exchanges OPEN and KEEPALIVE, and returns the Established session.
async fn establish(local: Ipv4Addr, asn: u32, deadline: Instant) -> Result<Session, String> {
    let target = SocketAddr::V4(SocketAddrV4::new(TARGET_ADDR, 179));
    let stream = loop {
        let sock = TcpSocket::new_v4().map_err(|e| format!("{local}: socket: {e}"))?;
        sock.bind(SocketAddr::new(IpAddr::V4(local), 0))
            .map_err(|e| format!("{local}: bind: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(1), sock.connect(target)).await {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) if Instant::now() >= deadline => {
                return Err(format!("{local}: connecting to the target: {e}"));
            }
            Err(_) if Instant::now() >= deadline => {
                return Err(format!("{local}: connecting to the target: timed out"));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let (rd, mut wr) = stream.into_split();
    let mut reader = Reader {
        rd,
        buf: BytesMut::with_capacity(64 * 1024),
        max_len: bgp::wire::MAX_MESSAGE_LEN,
    };
    let pre = SessionCtx::default();
    let ours = Open::new(
        asn,
        HOLD_TIME,
        local,
        basic_capabilities(asn, &[Family::IPV4_UNICAST]),
    );
    let io_err = |what: &str, e: io::Error| format!("{local}: {what}: {e}");
    wr.write_all(&encode(&Message::Open(ours.clone()), &pre)?)
        .await
        .map_err(|e| io_err("sending OPEN", e))?;
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
    let handshake = async {
        let mut ctx = None;
        let mut hold = HOLD_TIME;
        loop {
            let Some(frame) = reader.frame().await.map_err(|e| io_err("reading", e))? else {
                return Err(format!("{local}: the target closed the connection"));
            };
            let decode_ctx = ctx.clone().unwrap_or_else(|| pre.clone());
            match Message::decode(&frame, &decode_ctx) {
                Ok(Message::Open(theirs)) if ctx.is_none() => {
                    hold = hold.min(theirs.hold_time);
                    ctx = Some(SessionCtx::negotiate(&ours, &theirs));
                    wr.write_all(&encode(&Message::Keepalive, &pre)?)
                        .await
                        .map_err(|e| io_err("sending KEEPALIVE", e))?;
                }
                Ok(Message::Keepalive) if ctx.is_some() => {
                    return Ok((ctx.unwrap_or_default(), hold));
                }
                Ok(Message::Notification(n)) => {
                    return Err(format!("{local}: the target sent {n}"));
                }
                Ok(other) => {
                    return Err(format!("{local}: unexpected {} in OpenSent", other.kind()));
                }
                Err(e) => return Err(format!("{local}: decoding: {e}")),
            }
        }
    };
    let (ctx, hold) = tokio::time::timeout(left, handshake)
        .await
        .map_err(|_| format!("{local}: no OPEN/KEEPALIVE from the target"))??;
    reader.max_len = ctx.max_len;
    let keepalive = Duration::from_secs(u64::from((hold / 3).max(1)));
    Ok(Session {
        reader,
        wr,
        ctx,
        keepalive,
    })
}

/// The prefixes sender `i` announces.
fn sender_prefixes(i: usize, cfg: &RunCfg) -> Vec<Nlri> {
    let first = if cfg.overlap { 0 } else { i * cfg.prefixes };
    let shift = 32 - u32::from(cfg.prefix_len);
    (first..first + cfg.prefixes)
        .map(|k| {
            let addr = Ipv4Addr::from(PREFIX_BASE + ((k as u32) << shift));
            let net = Ipv4Net::new(addr, cfg.prefix_len).expect("prefix length checked");
            Nlri::new(IpNet::V4(net))
        })
        .collect()
}

/// Every UPDATE sender `i` sends, then its End-of-RIB, as one buffer.
fn sender_payload(i: usize, cfg: &RunCfg, ctx: &SessionCtx) -> Result<Bytes, String> {
    let asn = sender_as(i);
    let attrs = PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::from_sequence([asn]),
        next_hop: Some(NextHop::V4(sender_addr(i))),
        ..Default::default()
    };
    let nlri = sender_prefixes(i, cfg);
    let mut out = BytesMut::with_capacity(nlri.len() * 6 + 4096);
    let chunk = if cfg.per_update == 0 {
        nlri.len().max(1)
    } else {
        cfg.per_update
    };
    for part in nlri.chunks(chunk) {
        pack_updates(ctx, &[], Some(&attrs), part, &mut out)
            .map_err(|e| format!("packing: {e}"))?;
    }
    Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))
        .encode(ctx, &mut out)
        .map_err(|e| format!("encoding End-of-RIB: {e}"))?;
    Ok(out.freeze())
}

/// Shared marks of one run.
#[derive(Default)]
struct Marks {
    first_write: Mutex<Option<Instant>>,
    last_sent: Mutex<Option<Instant>>,
    received: AtomicUsize,
}

/// Keeps a session alive until `stop`, then closes it with a Cease. Meanwhile the read
/// side is consumed by `read`.
async fn keep_alive(
    mut wr: OwnedWriteHalf,
    ctx: SessionCtx,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let ka = encode(&Message::Keepalive, &ctx).unwrap_or_default();
    loop {
        let stopping = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            () = tokio::time::sleep(every) => false,
        };
        if stopping {
            break;
        }
        if wr.write_all(&ka).await.is_err() {
            return;
        }
    }
    let cease = Message::Notification(Notification::cease(CeaseError::AdministrativeShutdown));
    if let Ok(b) = encode(&cease, &ctx) {
        let _ = wr.write_all(&b).await;
    }
    let _ = wr.shutdown().await;
}

/// A sender: waits for `go`, writes its UPDATEs, then keeps the session alive. Its read
/// side only frames what the target sends back (the other senders' routes).
async fn run_sender(
    session: Session,
    payload: Bytes,
    mut go: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    marks: Arc<Marks>,
    errors: mpsc::UnboundedSender<String>,
    who: String,
) {
    let Session {
        mut reader,
        mut wr,
        ctx,
        keepalive,
    } = session;
    let read_stop = stop.clone();
    let read_errors = errors.clone();
    let read_who = who.clone();
    let rx = tokio::spawn(async move {
        loop {
            match reader.frame().await {
                Ok(Some(f)) => {
                    if f.get(18) == Some(&3) {
                        let text = match Message::decode(&f, &SessionCtx::default()) {
                            Ok(m) => m.to_string(),
                            Err(e) => e.to_string(),
                        };
                        if !*read_stop.borrow() {
                            let _ = read_errors.send(format!("{read_who}: target sent {text}"));
                        }
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    if !*read_stop.borrow() {
                        let _ = read_errors.send(format!("{read_who}: session closed by target"));
                    }
                    return;
                }
            }
        }
    });
    if go.wait_for(|g| *g).await.is_ok() {
        {
            let now = Instant::now();
            let mut fw = marks.first_write.lock().unwrap();
            if fw.is_none_or(|t| now < t) {
                *fw = Some(now);
            }
        }
        if let Err(e) = wr.write_all(&payload).await {
            let _ = errors.send(format!("{who}: writing UPDATEs: {e}"));
        } else {
            let now = Instant::now();
            let mut ls = marks.last_sent.lock().unwrap();
            if ls.is_none_or(|t| now > t) {
                *ls = Some(now);
            }
        }
    }
    keep_alive(wr, ctx, keepalive, stop).await;
    rx.abort();
}

/// The monitor: counts the distinct prefixes the target announces (minus the ones it
/// withdraws) and reports the moment the count first reaches `expected`.
async fn run_monitor(
    session: Session,
    expected: usize,
    done: mpsc::UnboundedSender<Instant>,
    stop: watch::Receiver<bool>,
    marks: Arc<Marks>,
    errors: mpsc::UnboundedSender<String>,
) {
    let Session {
        mut reader,
        wr,
        ctx,
        keepalive,
    } = session;
    let ka = tokio::spawn(keep_alive(wr, ctx.clone(), keepalive, stop.clone()));
    let mut seen: HashSet<(u32, u8)> = HashSet::with_capacity(expected);
    let mut reported = false;
    loop {
        let frame = match reader.frame().await {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => {
                if !*stop.borrow() {
                    let _ = errors.send("monitor: session closed by target".into());
                }
                break;
            }
        };
        match Message::decode(&frame, &ctx) {
            Ok(Message::Update(u)) => {
                for (_, nlri) in &u.withdrawn {
                    for n in nlri {
                        if let IpNet::V4(p) = n.prefix {
                            seen.remove(&(u32::from(p.addr()), p.prefix_len()));
                        }
                    }
                }
                for (_, nlri) in &u.announced {
                    for n in nlri {
                        if let IpNet::V4(p) = n.prefix {
                            seen.insert((u32::from(p.addr()), p.prefix_len()));
                        }
                    }
                }
                marks.received.store(seen.len(), Ordering::Relaxed);
                if !reported && seen.len() >= expected {
                    reported = true;
                    let _ = done.send(Instant::now());
                }
            }
            Ok(Message::Notification(n)) => {
                if !*stop.borrow() {
                    let _ = errors.send(format!("monitor: target sent {n}"));
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = errors.send(format!("monitor: decoding: {e}"));
                break;
            }
        }
    }
    let _ = ka.await;
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct RunCfg {
    senders: usize,
    prefixes: usize,
    overlap: bool,
    prefix_len: u8,
    per_update: usize,
    timeout: Duration,
    settle: Duration,
    tick: f64,
}

impl RunCfg {
    fn expected(&self) -> usize {
        if self.overlap {
            self.prefixes
        } else {
            self.senders * self.prefixes
        }
    }
}

struct Measured {
    /// First UPDATE write → monitor complete.
    elapsed: f64,
    /// First UPDATE write → the last sender finished writing.
    sent: f64,
    cpu: f64,
    rss_mib: f64,
    harness_cpu: f64,
}

enum Outcome {
    Done(Measured),
    NotRun(String),
    Failed(String),
}

struct Row {
    kind: Kind,
    version: String,
    outcome: Outcome,
}

fn target_cpu(procs: &[ProcId], tick: f64) -> f64 {
    procs.iter().filter_map(|p| cpu_ticks(p.pid)).sum::<u64>() as f64 / tick
}

fn self_cpu(tick: f64) -> f64 {
    cpu_ticks(std::process::id() as i32).unwrap_or(0) as f64 / tick
}

/// Runs one target. Runs inside the peers namespace (this thread entered it).
async fn run_target(
    kind: Kind,
    cfg: &RunCfg,
    target_ns: &str,
    dir: &Path,
    bgpd: &Path,
    procs_slot: &Arc<Mutex<Vec<ProcId>>>,
) -> Outcome {
    let peers = Peers {
        senders: cfg.senders,
    };
    let launch = match prepare(kind, dir, &peers, bgpd) {
        Ok(l) => l,
        Err(e) if e.starts_with("not run") => return Outcome::NotRun(e),
        Err(e) => return Outcome::Failed(e),
    };
    for (i, argv) in launch.argv.iter().enumerate() {
        let log = dir.join(format!("daemon{i}.log"));
        match spawn_in_ns(target_ns, argv, &launch.env, dir, &log) {
            Ok(p) => procs_slot.lock().unwrap().push(p),
            Err(e) => return Outcome::Failed(format!("starting {}: {e}", argv[0])),
        }
    }
    let procs = procs_slot.lock().unwrap().clone();

    // Sessions: the monitor first (this also waits for the target to listen), then
    // every sender at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let monitor = match establish(MONITOR_ADDR, MONITOR_AS, deadline).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("monitor session: {e}")),
    };
    let mut set = tokio::task::JoinSet::new();
    for i in 0..cfg.senders {
        set.spawn(async move { (i, establish(sender_addr(i), sender_as(i), deadline).await) });
    }
    let mut sessions: Vec<Option<Session>> = (0..cfg.senders).map(|_| None).collect();
    while let Some(res) = set.join_next().await {
        match res {
            Ok((i, Ok(s))) => sessions[i] = Some(s),
            Ok((_, Err(e))) => return Outcome::Failed(format!("sender session: {e}")),
            Err(e) => return Outcome::Failed(format!("sender task: {e}")),
        }
    }
    let mut payloads = Vec::with_capacity(cfg.senders);
    for (i, s) in sessions.iter().enumerate() {
        let s = s.as_ref().expect("every sender established");
        match sender_payload(i, cfg, &s.ctx) {
            Ok(p) => payloads.push(p),
            Err(e) => return Outcome::Failed(format!("sender {i}: {e}")),
        }
    }

    let (go_tx, go_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (err_tx, mut err_rx) = mpsc::unbounded_channel::<String>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Instant>();
    let marks = Arc::new(Marks::default());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(run_monitor(
        monitor,
        cfg.expected(),
        done_tx,
        stop_rx.clone(),
        marks.clone(),
        err_tx.clone(),
    ));
    for (i, (s, p)) in sessions.into_iter().zip(payloads).enumerate() {
        tasks.spawn(run_sender(
            s.expect("every sender established"),
            p,
            go_rx.clone(),
            stop_rx.clone(),
            marks.clone(),
            err_tx.clone(),
            format!("sender {i}"),
        ));
    }
    tokio::time::sleep(cfg.settle).await;

    let cpu0 = target_cpu(&procs, cfg.tick);
    let self0 = self_cpu(cfg.tick);
    let started = Instant::now();
    let _ = go_tx.send(true);
    let give_up = started + cfg.timeout;
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    let result: Result<Instant, String> = loop {
        tokio::select! {
            t = done_rx.recv() => break t.ok_or_else(|| "monitor ended".to_string()),
            e = err_rx.recv() => break Err(e.unwrap_or_else(|| "peers ended".into())),
            () = tokio::time::sleep_until(give_up.into()) => {
                break Err(format!(
                    "timeout after {} s with {}/{} prefixes at the monitor",
                    cfg.timeout.as_secs(),
                    marks.received.load(Ordering::Relaxed),
                    cfg.expected()
                ));
            }
            _ = progress.tick() => {
                if !procs.iter().all(ProcId::alive) {
                    break Err("the target exited".into());
                }
                eprintln!(
                    "bgperf:   {:>6.1} s  {}/{} prefixes at the monitor",
                    started.elapsed().as_secs_f64(),
                    marks.received.load(Ordering::Relaxed),
                    cfg.expected()
                );
            }
        }
    };
    let cpu1 = target_cpu(&procs, cfg.tick);
    let self1 = self_cpu(cfg.tick);
    let rss_kib: u64 = procs.iter().filter_map(|p| vm_hwm_kib(p.pid)).sum();

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let first = *marks.first_write.lock().unwrap();
    let last = *marks.last_sent.lock().unwrap();
    match result {
        Ok(t) => {
            let first = first.unwrap_or(started);
            Outcome::Done(Measured {
                elapsed: t.duration_since(first).as_secs_f64(),
                sent: last.map_or(f64::NAN, |l| l.duration_since(first).as_secs_f64()),
                cpu: cpu1 - cpu0,
                rss_mib: rss_kib as f64 / 1024.0,
                harness_cpu: self1 - self0,
            })
        }
        Err(e) => Outcome::Failed(format!(
            "{e} (target CPU {:.1} s, peak RSS {:.0} MiB)",
            cpu1 - cpu0,
            rss_kib as f64 / 1024.0
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn table(rows: &[Row], cfg: &RunCfg) -> String {
    let reference = rows.iter().find_map(|r| match (&r.kind, &r.outcome) {
        (Kind::Contiv, Outcome::Done(m)) => Some(m),
        _ => None,
    });
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} senders × {} prefixes ({}), /{} each, {} expected at the monitor",
        cfg.senders,
        cfg.prefixes,
        if cfg.overlap {
            "the same prefixes from every sender"
        } else {
            "distinct"
        },
        cfg.prefix_len,
        cfg.expected()
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| target | version | elapsed s | senders done s | target CPU s | peak RSS MiB | harness CPU s | elapsed × | CPU × | RSS × |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        match &r.outcome {
            Outcome::Done(m) => {
                let (re, rc, rr) = match reference {
                    Some(c) => (
                        ratio(m.elapsed, c.elapsed),
                        ratio(m.cpu, c.cpu),
                        ratio(m.rss_mib, c.rss_mib),
                    ),
                    None => ("–".into(), "–".into(), "–".into()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.3} | {:.3} | {:.2} | {:.1} | {:.2} | {re} | {rc} | {rr} |",
                    r.kind.name(),
                    r.version,
                    m.elapsed,
                    m.sent,
                    m.cpu,
                    m.rss_mib,
                    m.harness_cpu
                );
            }
            Outcome::NotRun(why) | Outcome::Failed(why) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {why} | | | | | | | |",
                    r.kind.name(),
                    r.version
                );
            }
        }
    }
    if reference.is_none() {
        let _ = writeln!(
            s,
            "\nRatios are target ÷ contiv-bgpd; contiv-bgpd did not complete, so there are none."
        );
    } else {
        let _ = writeln!(
            s,
            "\nRatios are target ÷ contiv-bgpd (above 1: contiv-bgpd is better)."
        );
    }
    s
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgperf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    if args.senders == 0 || args.senders > MAX_SENDERS {
        return Err(format!("--senders must be 1..={MAX_SENDERS}"));
    }
    if args.prefixes == 0 {
        return Err("--prefixes must be at least 1".into());
    }
    if !(8..=32).contains(&args.prefix_len) {
        return Err("--prefix-len must be 8..=32".into());
    }
    let blocks = if args.overlap { 1 } else { args.senders } as u64;
    let span = blocks * args.prefixes as u64 * (1u64 << (32 - u32::from(args.prefix_len)));
    if u64::from(PREFIX_BASE) + span > PREFIX_LIMIT {
        return Err("too many prefixes for 100.0.0.0–223.255.255.255 at this length".into());
    }
    let kinds = args
        .targets
        .iter()
        .map(|t| Kind::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if nix::unistd::geteuid().as_raw() != 0 {
        return Err("needs root (it creates network namespaces)".into());
    }
    let bgpd = match &args.bgpd {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("contiv-bgpd")))
            .unwrap_or_else(|| PathBuf::from("contiv-bgpd")),
    };
    let cfg = RunCfg {
        senders: args.senders,
        prefixes: args.prefixes,
        overlap: args.overlap,
        prefix_len: args.prefix_len,
        per_update: args.per_update,
        timeout: Duration::from_secs(args.timeout),
        settle: Duration::from_secs_f64(args.settle.max(0.0)),
        tick: clock_ticks_per_second(),
    };
    let work = tempfile::Builder::new()
        .prefix("bgperf-")
        .tempdir()
        .map_err(|e| format!("work directory: {e}"))?;
    let lab = Lab::create(cfg.senders)?;
    eprintln!(
        "bgperf: namespaces {} and {}, work directory {}",
        lab.target_ns,
        lab.peers_ns,
        work.path().display()
    );

    let peers_ns = lab.peers_ns.clone();
    let target_ns = lab.target_ns.clone();
    let procs = lab.procs.clone();
    let work_dir = work.path().to_path_buf();
    let thread_cfg = cfg.clone();
    let thread_kinds = kinds.clone();
    let thread_bgpd = bgpd.clone();
    // The peers live in their namespace: one thread enters it and runs every target
    // from there (target daemons are started with `ip netns exec`, which is
    // independent of the caller's namespace).
    let handle = std::thread::spawn(move || -> Result<Vec<Row>, String> {
        let file = std::fs::File::open(format!("/run/netns/{peers_ns}"))
            .map_err(|e| format!("opening namespace {peers_ns}: {e}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("entering namespace {peers_ns}: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        rt.block_on(async {
            let mut rows = Vec::new();
            for kind in thread_kinds {
                let version = version(kind, &thread_bgpd);
                eprintln!("bgperf: {} {version}", kind.name());
                let dir = work_dir.join(kind.name().split(' ').next().unwrap_or("target"));
                let run = run_target(kind, &thread_cfg, &target_ns, &dir, &thread_bgpd, &procs);
                let outcome = tokio::select! {
                    o = run => o,
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("bgperf: interrupted");
                        break;
                    }
                };
                // Stop the target before the next one starts.
                let p = std::mem::take(&mut *procs.lock().unwrap());
                stop_all(&p, Duration::from_secs(5));
                match &outcome {
                    Outcome::Done(m) => eprintln!(
                        "bgperf:   converged in {:.2} s, target CPU {:.2} s, peak RSS {:.1} MiB",
                        m.elapsed, m.cpu, m.rss_mib
                    ),
                    Outcome::NotRun(w) | Outcome::Failed(w) => eprintln!("bgperf:   {w}"),
                }
                rows.push(Row {
                    kind,
                    version,
                    outcome,
                });
            }
            Ok(rows)
        })
    });
    let rows = handle
        .join()
        .map_err(|_| "the peers thread panicked".to_string())??;
    lab.stop_target();
    drop(lab);
    if args.keep {
        let kept = work.keep();
        eprintln!("bgperf: configs and logs kept in {}", kept.display());
    }
    print!("{}", table(&rows, &cfg));
    Ok(())
}
