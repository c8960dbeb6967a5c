//! bgperf: a bgperf-style BGP benchmark. N sender peers announce M prefixes each to a
//! target speaker, which passes them on to a monitor peer that counts what arrives, and
//! to every other sender, which counts too.
//! The targets (contiv-bgpd, BIRD 2, FRR bgpd, GoBGP) run one after another in the same
//! invocation against the same senders; for each one the harness prints the time from
//! the senders' first UPDATE to the monitor holding every prefix, the time until every
//! peer (the monitor and each sender) holds every prefix it should, the target's
//! CPU-seconds and peak RSS, and the ratios against contiv-bgpd.
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
//! - all peers: from the same start to the moment every sender holds every prefix of
//!   the other senders ((N-1)×M distinct each; its own are not expected, and are not
//!   counted if the target sends them back) and the monitor is complete, i.e. the later
//!   of the monitor's time and the last sender's. A target cannot look fast by serving
//!   the monitor first. With one sender it equals elapsed. With `--overlap` it is not
//!   measured ("not measured with --overlap"): every sender announces the same M
//!   prefixes, the target sends a sender a prefix only when another sender's path is
//!   the best one, and which one is best changes while the routes arrive, so there is
//!   no fixed set a sender must end up with. Nor is it measured when the senders'
//!   bitmaps (below) would exceed 2 GiB;
//! - senders done: from the same start to the last sender finishing its writes;
//! - CPU: utime+stime of the target's processes from the start to the monitor being
//!   complete (/proc/<pid>/stat); the target's and the harness's CPU up to the end of
//!   the run (all peers complete, or the timeout) are logged to stderr;
//! - peak RSS: VmHWM of the target's processes when the monitor is complete, summed.
//!
//! Counting is exact and cheap: every peer decodes each UPDATE with the `bgp` codec (RFC
//! 7606 treat-as-withdraw included) and keeps one bit per prefix of the announced range
//! (prefix k is 100.0.0.0 + k × 2^(32-len)) and a count of the bits set outside its own
//! block (a sender's own prefixes; none for the monitor); no hash set, and the harness's
//! CPU stays about what it was when the senders only framed their input. Withdrawals
//! clear bits (none are expected: their number is shown in the progress lines and in a
//! timeout's message when there are any, as are announcements outside the range). The run
//! for one target ends when both the monitor and every sender are complete, or at
//! `--timeout`: if the monitor was complete the row keeps its columns and "all peers"
//! says "missed" with the senders' counts (how many are complete, and the one with the
//! fewest prefixes); otherwise the row says the monitor missed, with the same counts.
//!
//! The harness shares the machine with the target; its own CPU over the interval is
//! printed too, so contention is visible.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
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
struct Marks {
    first_write: Mutex<Option<Instant>>,
    last_sent: Mutex<Option<Instant>>,
    /// Expected prefixes the monitor holds.
    received: AtomicUsize,
    /// Expected prefixes each sender holds (the other senders' ones).
    sender_held: Vec<AtomicUsize>,
    /// Withdrawn prefixes seen by any peer (there should be none).
    withdrawals: AtomicUsize,
    /// Announcements outside the announced range, or of another length or family,
    /// seen by any peer (there should be none; they are not counted).
    foreign: AtomicUsize,
}

impl Marks {
    fn new(senders: usize) -> Marks {
        Marks {
            first_write: Mutex::new(None),
            last_sent: Mutex::new(None),
            received: AtomicUsize::new(0),
            sender_held: (0..senders).map(|_| AtomicUsize::new(0)).collect(),
            withdrawals: AtomicUsize::new(0),
            foreign: AtomicUsize::new(0),
        }
    }
}

/// Which peer reached its expected prefix count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Monitor,
    Sender(usize),
}

/// The distinct prefixes one peer holds, one bit per prefix of the announced range:
/// index `k` stands for `PREFIX_BASE + (k << (32 - len))`, length `len` (sender `i`
/// announces indexes `i*M..(i+1)*M`, every sender `0..M` with `--overlap`). Indexes
/// in `own` are tracked but not counted (a sender does not expect its own prefixes).
struct Held {
    len: u8,
    shift: u32,
    range: usize,
    own: Range<usize>,
    bits: Vec<u64>,
    /// Distinct prefixes held in the range, outside `own`.
    held: usize,
}

impl Held {
    fn new(cfg: &RunCfg, own: Range<usize>) -> Held {
        let range = cfg.range();
        Held {
            len: cfg.prefix_len,
            shift: 32 - u32::from(cfg.prefix_len),
            range,
            own,
            bits: vec![0; range.div_ceil(64)],
            held: 0,
        }
    }

    /// The index of `p`, if it is one of the announced range. The decoder masks host
    /// bits, so a prefix of the right length is aligned.
    fn index(&self, p: &IpNet) -> Option<usize> {
        let IpNet::V4(p) = p else { return None };
        if p.prefix_len() != self.len {
            return None;
        }
        let off = u32::from(p.addr()).checked_sub(PREFIX_BASE)?;
        let k = (off >> self.shift) as usize;
        (k < self.range).then_some(k)
    }

    /// Applies one UPDATE: withdrawals first, then announcements (RFC 4271 §9).
    /// Returns (withdrawn prefixes seen, foreign announcements seen).
    fn apply(&mut self, u: &Update) -> (usize, usize) {
        let (mut withdrawn, mut foreign) = (0, 0);
        for (_, nlri) in &u.withdrawn {
            withdrawn += nlri.len();
            for n in nlri {
                if let Some(k) = self.index(&n.prefix) {
                    self.set(k, false);
                }
            }
        }
        for (_, nlri) in &u.announced {
            for n in nlri {
                match self.index(&n.prefix) {
                    Some(k) => self.set(k, true),
                    None => foreign += 1,
                }
            }
        }
        (withdrawn, foreign)
    }

    fn set(&mut self, k: usize, on: bool) {
        let (word, bit) = (&mut self.bits[k / 64], 1u64 << (k % 64));
        if (*word & bit != 0) == on {
            return;
        }
        *word ^= bit;
        if !self.own.contains(&k) {
            if on {
                self.held += 1;
            } else {
                self.held -= 1;
            }
        }
    }
}

/// Applies a decoded UPDATE to `held`, publishes the counts, and says when `held`
/// first reaches `expected` (`reported` remembers that it did).
fn count_update(
    u: &Update,
    held: &mut Held,
    expected: usize,
    reported: &mut bool,
    marks: &Marks,
    slot: &AtomicUsize,
) -> Option<Instant> {
    let (withdrawn, foreign) = held.apply(u);
    if withdrawn > 0 {
        marks.withdrawals.fetch_add(withdrawn, Ordering::Relaxed);
    }
    if foreign > 0 {
        marks.foreign.fetch_add(foreign, Ordering::Relaxed);
    }
    slot.store(held.held, Ordering::Relaxed);
    if !*reported && held.held >= expected {
        *reported = true;
        return Some(Instant::now());
    }
    None
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

/// What a sender counts on its read side: the other senders' prefixes.
struct SenderCount {
    index: usize,
    held: Held,
    expected: usize,
    done: mpsc::UnboundedSender<(Peer, Instant)>,
}

/// A sender: waits for `go`, writes its UPDATEs, then keeps the session alive. Its read
/// side decodes what the target sends back (the other senders' routes) and counts the
/// distinct prefixes when `count` is given; otherwise it only frames the messages.
#[allow(clippy::too_many_arguments)]
async fn run_sender(
    session: Session,
    payload: Bytes,
    mut go: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    marks: Arc<Marks>,
    errors: mpsc::UnboundedSender<String>,
    who: String,
    count: Option<SenderCount>,
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
    let read_ctx = ctx.clone();
    let read_marks = marks.clone();
    let rx = tokio::spawn(async move {
        let mut count = count;
        let mut reported = false;
        loop {
            match reader.frame().await {
                Ok(Some(f)) => match f.get(18) {
                    Some(&2) => {
                        let Some(c) = count.as_mut() else { continue };
                        match Message::decode(&f, &read_ctx) {
                            Ok(Message::Update(u)) => {
                                let slot = &read_marks.sender_held[c.index];
                                let hit = count_update(
                                    &u,
                                    &mut c.held,
                                    c.expected,
                                    &mut reported,
                                    &read_marks,
                                    slot,
                                );
                                if let Some(t) = hit {
                                    let _ = c.done.send((Peer::Sender(c.index), t));
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                if !*read_stop.borrow() {
                                    let _ = read_errors.send(format!("{read_who}: decoding: {e}"));
                                }
                                return;
                            }
                        }
                    }
                    Some(&3) => {
                        let text = match Message::decode(&f, &SessionCtx::default()) {
                            Ok(m) => m.to_string(),
                            Err(e) => e.to_string(),
                        };
                        if !*read_stop.borrow() {
                            let _ = read_errors.send(format!("{read_who}: target sent {text}"));
                        }
                        return;
                    }
                    _ => {}
                },
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

/// The monitor: counts the distinct expected prefixes the target announces (minus the
/// ones it withdraws) and reports the moment the count first reaches `expected`.
async fn run_monitor(
    session: Session,
    mut held: Held,
    expected: usize,
    done: mpsc::UnboundedSender<(Peer, Instant)>,
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
                let slot = &marks.received;
                if let Some(t) = count_update(&u, &mut held, expected, &mut reported, &marks, slot)
                {
                    let _ = done.send((Peer::Monitor, t));
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

/// Above this many bytes of sender bitmaps (N senders × N×M bits) the "all peers"
/// measure is not taken.
const SENDER_BITMAPS_LIMIT: u64 = 2 << 30;

impl RunCfg {
    /// Prefixes expected at the monitor: every distinct prefix announced.
    fn expected(&self) -> usize {
        self.range()
    }

    /// Indexes of the announced range: N×M, or M with `--overlap`.
    fn range(&self) -> usize {
        if self.overlap {
            self.prefixes
        } else {
            self.senders * self.prefixes
        }
    }

    /// Prefixes each sender expects from the target ((N-1)×M, the other senders'
    /// ones), or why the "all peers" measure is not taken.
    fn sender_expected(&self) -> Result<usize, &'static str> {
        if self.overlap {
            return Err("not measured with --overlap");
        }
        let bytes = self.senders as u64 * (self.range() as u64).div_ceil(8);
        if bytes > SENDER_BITMAPS_LIMIT {
            return Err("not measured: sender bitmaps over 2 GiB");
        }
        Ok((self.senders - 1) * self.prefixes)
    }
}

struct Measured {
    /// First UPDATE write → monitor complete.
    elapsed: f64,
    /// First UPDATE write → every sender holds the other senders' prefixes and the
    /// monitor is complete; or why that was not reached (or not measured).
    all_peers: Result<f64, String>,
    /// First UPDATE write → the last sender finished writing.
    sent: f64,
    cpu: f64,
    /// Target CPU from the start to the end of the run (all peers complete, or the
    /// timeout); logged, not in the table.
    cpu_end: f64,
    rss_mib: f64,
    harness_cpu: f64,
    /// Harness CPU from the start to the end of the run; logged.
    harness_cpu_end: f64,
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
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Peer, Instant)>();
    let marks = Arc::new(Marks::new(cfg.senders));
    // Senders counted for "all peers"; with one sender there is nothing to expect and
    // "all peers" is the monitor's time.
    let sender_expected = cfg.sender_expected();
    let counted = match sender_expected {
        Ok(_) if cfg.senders > 1 => cfg.senders,
        _ => 0,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(run_monitor(
        monitor,
        Held::new(cfg, 0..0),
        cfg.expected(),
        done_tx.clone(),
        stop_rx.clone(),
        marks.clone(),
        err_tx.clone(),
    ));
    for (i, (s, p)) in sessions.into_iter().zip(payloads).enumerate() {
        let count = match sender_expected {
            Ok(expected) if counted > 0 => Some(SenderCount {
                index: i,
                held: Held::new(cfg, i * cfg.prefixes..(i + 1) * cfg.prefixes),
                expected,
                done: done_tx.clone(),
            }),
            _ => None,
        };
        tasks.spawn(run_sender(
            s.expect("every sender established"),
            p,
            go_rx.clone(),
            stop_rx.clone(),
            marks.clone(),
            err_tx.clone(),
            format!("sender {i}"),
            count,
        ));
    }
    drop(done_tx);
    tokio::time::sleep(cfg.settle).await;

    let cpu0 = target_cpu(&procs, cfg.tick);
    let self0 = self_cpu(cfg.tick);
    let started = Instant::now();
    let _ = go_tx.send(true);
    let give_up = started + cfg.timeout;
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    // Taken when the monitor completes (the existing columns' interval): target CPU,
    // harness CPU, target peak RSS in KiB.
    let mut at_monitor: Option<(f64, f64, u64)> = None;
    let mut monitor_at: Option<Instant> = None;
    let mut senders_done = vec![false; counted];
    let mut senders_left = counted;
    let mut last_sender_at: Option<Instant> = None;
    let end: Result<(), String> = loop {
        if monitor_at.is_some() && senders_left == 0 {
            break Ok(());
        }
        tokio::select! {
            d = done_rx.recv() => match d {
                Some((Peer::Monitor, t)) => {
                    monitor_at = Some(t);
                    at_monitor = Some((
                        target_cpu(&procs, cfg.tick),
                        self_cpu(cfg.tick),
                        procs.iter().filter_map(|p| vm_hwm_kib(p.pid)).sum(),
                    ));
                }
                Some((Peer::Sender(i), t)) => {
                    if !std::mem::replace(&mut senders_done[i], true) {
                        senders_left -= 1;
                        last_sender_at = last_sender_at.max(Some(t));
                    }
                }
                None => break Err("peers ended".into()),
            },
            e = err_rx.recv() => break Err(e.unwrap_or_else(|| "peers ended".into())),
            () = tokio::time::sleep_until(give_up.into()) => {
                break Err(format!("timeout after {} s", cfg.timeout.as_secs()));
            }
            _ = progress.tick() => {
                if !procs.iter().all(ProcId::alive) {
                    break Err("the target exited".into());
                }
                eprintln!(
                    "bgperf:   {:>6.1} s  {}",
                    started.elapsed().as_secs_f64(),
                    progress_text(&marks, cfg, counted, senders_left)
                );
            }
        }
    };
    let cpu_end = target_cpu(&procs, cfg.tick);
    let self_end = self_cpu(cfg.tick);
    let rss_end: u64 = procs.iter().filter_map(|p| vm_hwm_kib(p.pid)).sum();
    let status = progress_text(&marks, cfg, counted, senders_left);

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let first = *marks.first_write.lock().unwrap();
    let last = *marks.last_sent.lock().unwrap();
    let first = first.unwrap_or(started);
    let (Some(monitor_at), Some((cpu1, self1, rss_kib))) = (monitor_at, at_monitor) else {
        let e = end.err().unwrap_or_default();
        return Outcome::Failed(format!(
            "{e}: monitor missed; {status} (target CPU {:.1} s, peak RSS {:.0} MiB)",
            cpu_end - cpu0,
            rss_end as f64 / 1024.0
        ));
    };
    let all_peers = match (&sender_expected, end) {
        (Err(why), _) => Err((*why).to_string()),
        (Ok(_), Ok(())) => {
            let at = last_sender_at.map_or(monitor_at, |l| l.max(monitor_at));
            Ok(at.duration_since(first).as_secs_f64())
        }
        (Ok(_), Err(e)) => Err(format!("missed: {e}; {status}")),
    };
    Outcome::Done(Measured {
        elapsed: monitor_at.duration_since(first).as_secs_f64(),
        all_peers,
        sent: last.map_or(f64::NAN, |l| l.duration_since(first).as_secs_f64()),
        cpu: cpu1 - cpu0,
        cpu_end: cpu_end - cpu0,
        harness_cpu_end: self_end - self0,
        rss_mib: rss_kib as f64 / 1024.0,
        harness_cpu: self1 - self0,
    })
}

/// Where the peers are: the monitor's count, the senders' (complete ones and the one
/// furthest behind), and any withdrawals or foreign prefixes seen.
fn progress_text(marks: &Marks, cfg: &RunCfg, counted: usize, senders_left: usize) -> String {
    let mut t = format!(
        "monitor {}/{}",
        marks.received.load(Ordering::Relaxed),
        cfg.expected()
    );
    if counted > 0 {
        let expected = cfg.sender_expected().unwrap_or(0);
        let (worst, held) = marks
            .sender_held
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|&(_, h)| h)
            .unwrap_or((0, 0));
        let _ = write!(
            t,
            ", senders complete {}/{counted} (fewest: sender {worst} {held}/{expected})",
            counted - senders_left
        );
    }
    let w = marks.withdrawals.load(Ordering::Relaxed);
    if w > 0 {
        let _ = write!(t, ", {w} withdrawn");
    }
    let f = marks.foreign.load(Ordering::Relaxed);
    if f > 0 {
        let _ = write!(t, ", {f} foreign announcements");
    }
    t
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
        "{} senders × {} prefixes ({}), /{} each, {} expected at the monitor, {}",
        cfg.senders,
        cfg.prefixes,
        if cfg.overlap {
            "the same prefixes from every sender"
        } else {
            "distinct"
        },
        cfg.prefix_len,
        cfg.expected(),
        match cfg.sender_expected() {
            Ok(n) => format!("{n} at each sender"),
            Err(why) => format!("senders {why}"),
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| target | version | elapsed s | all peers s | senders done s | target CPU s | peak RSS MiB | harness CPU s | elapsed × | all peers × | CPU × | RSS × |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        match &r.outcome {
            Outcome::Done(m) => {
                let (re, ra, rc, rr) = match reference {
                    Some(c) => (
                        ratio(m.elapsed, c.elapsed),
                        match (&m.all_peers, &c.all_peers) {
                            (Ok(a), Ok(b)) => ratio(*a, *b),
                            _ => "–".into(),
                        },
                        ratio(m.cpu, c.cpu),
                        ratio(m.rss_mib, c.rss_mib),
                    ),
                    None => ("–".into(), "–".into(), "–".into(), "–".into()),
                };
                let all = match &m.all_peers {
                    Ok(t) => format!("{t:.3}"),
                    Err(why) => why.clone(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.3} | {all} | {:.3} | {:.2} | {:.1} | {:.2} | {re} | {ra} | {rc} | {rr} |",
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
                    "| {} | {} | {why} | | | | | | | | | |",
                    r.kind.name(),
                    r.version
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nelapsed: first UPDATE write → the monitor holds every prefix; all peers: → every \
         sender also holds every other sender's prefixes; target CPU, peak RSS and harness \
         CPU are taken when the monitor completes."
    );
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
                        "bgperf:   monitor converged in {:.2} s, target CPU {:.2} s, peak RSS \
                         {:.1} MiB; all peers: {} (target CPU {:.2} s, harness CPU {:.2} s up to the end)",
                        m.elapsed,
                        m.cpu,
                        m.rss_mib,
                        match &m.all_peers {
                            Ok(t) => format!("{t:.2} s"),
                            Err(why) => why.clone(),
                        },
                        m.cpu_end,
                        m.harness_cpu_end
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(senders: usize, prefixes: usize, prefix_len: u8, overlap: bool) -> RunCfg {
        RunCfg {
            senders,
            prefixes,
            overlap,
            prefix_len,
            per_update: 0,
            timeout: Duration::from_secs(1),
            settle: Duration::ZERO,
            tick: 100.0,
        }
    }

    /// Decodes every UPDATE in `payload` and applies it to `held`.
    fn apply_payload(payload: &[u8], held: &mut Held) -> (usize, usize) {
        let ctx = SessionCtx::default();
        let mut buf = payload;
        let (mut w, mut f) = (0, 0);
        while let Some(n) = frame_len(buf, ctx.max_len).unwrap() {
            if let Message::Update(u) = Message::decode(&buf[..n], &ctx).unwrap() {
                let (a, b) = held.apply(&u);
                w += a;
                f += b;
            }
            buf = &buf[n..];
        }
        assert!(buf.is_empty());
        (w, f)
    }

    #[test]
    fn a_sender_counts_the_other_senders_prefixes_once() {
        for len in [32, 24, 16] {
            let c = cfg(3, 500, len, false);
            assert_eq!(c.sender_expected(), Ok(1000));
            let ctx = SessionCtx::default();
            let mut held = Held::new(&c, 500..1000);
            // Its own prefixes (sent back by a target) are tracked, not counted.
            apply_payload(&sender_payload(1, &c, &ctx).unwrap(), &mut held);
            assert_eq!(held.held, 0);
            for i in [0, 2, 0] {
                let (w, f) = apply_payload(&sender_payload(i, &c, &ctx).unwrap(), &mut held);
                assert_eq!((w, f), (0, 0));
            }
            assert_eq!(held.held, 1000, "/{len}");
        }
    }

    #[test]
    fn withdrawals_and_foreign_prefixes() {
        let c = cfg(2, 100, 32, false);
        let mut held = Held::new(&c, 0..0);
        let p = |k: u32, len: u8| {
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(PREFIX_BASE + k), len).unwrap(),
            ))
        };
        let attrs = PathAttrs {
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 97, 0, 1))),
            ..Default::default()
        };
        let announce = Update::announce(
            Family::IPV4_UNICAST,
            vec![p(0, 32), p(5, 32), p(5, 32)],
            attrs.clone(),
        );
        assert_eq!(held.apply(&announce), (0, 0));
        assert_eq!(held.held, 2);
        // Outside the range, another length, before the base: foreign, not counted.
        let foreign = Update::announce(
            Family::IPV4_UNICAST,
            vec![
                p(200, 32),
                p(0, 24),
                Nlri::new("99.0.0.1/32".parse().unwrap()),
            ],
            attrs,
        );
        assert_eq!(held.apply(&foreign), (0, 3));
        assert_eq!(held.held, 2);
        // A withdrawal clears the bit once; withdrawing an absent prefix changes nothing.
        let withdraw = Update::withdraw(Family::IPV4_UNICAST, vec![p(5, 32), p(5, 32), p(7, 32)]);
        assert_eq!(held.apply(&withdraw), (3, 0));
        assert_eq!(held.held, 1);
    }

    #[test]
    fn what_each_peer_expects() {
        assert_eq!(cfg(10, 100, 32, false).expected(), 1000);
        assert_eq!(cfg(10, 100, 32, false).sender_expected(), Ok(900));
        assert_eq!(cfg(1, 100, 32, false).sender_expected(), Ok(0));
        assert_eq!(cfg(10, 100, 32, true).expected(), 100);
        assert!(cfg(10, 100, 32, true).sender_expected().is_err());
        assert!(cfg(900, 2_000_000, 32, false).sender_expected().is_err());
    }
}
