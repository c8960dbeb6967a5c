//! The speaker: the `bgp` core run over real sockets.
//!
//! - One **session task** per neighbor drives the pure FSM ([`bgp::fsm::Fsm`]) with a TCP
//!   connection (outgoing through [`crate::transport::connect`], or incoming handed over
//!   by the listener), frames and decodes messages with [`bgp::wire`], and turns timer
//!   outputs into tokio sleeps.
//! - Each connection has a **writer task**, so a peer slow to read never keeps the
//!   session from reading; the table's UPDATEs reach it encoded, tagged with the
//!   connection they were made for, and are acknowledged once written.
//! - One **table task** (`table/`) holds the [`bgp::rib::Rib`]: every neighbor's
//!   Adj-RIB-In (after import policy, ADD-PATH paths apart; `table/import.rs`), the
//!   prefixes we originate (the RIB's local peer) and the Loc-RIB with best path and ECMP
//!   groups. It publishes the learned routes on a watch channel for the kernel FIB
//!   ([`SpeakerConfig::publish_routes`]) and fills each established session from the
//!   Loc-RIB through its export policy, with flow control: [`bgp::rib::Export`] decides
//!   what goes out, `table/export.rs` hands it to the session's writer.
//!
//! Sessions hand UPDATEs to the table through a bounded queue (`TableTx`): when the
//! table is behind, sessions stop reading and TCP pushes back on the peers, so memory
//! stays bounded however fast routes arrive.
//!
//! Import drops paths through our own AS (RFC 4271 §9.1.2 loop detection) and follows
//! RFC 7606 (treat-as-withdraw). Export, for a host, is the guardrail: only what the
//! agent originates is advertised; a learned route is passed on only with
//! [`SpeakerConfig::export_learned`] (a transit router or route server), never back to
//! the peer it came from and never from one iBGP peer to another.
//!
//! Dynamic neighbors ([`Speaker::add_range`], like FRR's `bgp listen range`): the
//! listener hands a connection to the neighbor with the peer's address; failing that,
//! the narrowest range holding the address gets a passive neighbor made from its
//! template (up to the range's limit), which is removed again, its routes withdrawn,
//! when its session leaves Established or does not reach it within the hold time (its
//! session's messages to the table pass through a watcher that sees this). Other
//! connections are refused.
//!
//! Connection collisions (RFC 4271 §6.8) are resolved with [`bgp::fsm::collision`]: a
//! connection the other way while ours is past Active gets a second FSM, and the one
//! opened by the speaker with the higher BGP Identifier survives (see `session.rs`). A
//! peer doing graceful restart that comes back on a new connection while its old
//! session still looks up ends that session as a restart (RFC 4724 §4.2).
//!
//! ADD-PATH (RFC 7911): received paths are kept apart by identifier; with
//! [`PeerConfig::add_path_send`] a peer that takes several paths gets every path we
//! would advertise.
//! IPv6 routes go over IPv4 sessions only with a configured IPv6 next hop, IPv4 routes
//! over IPv6 sessions with RFC 8950 extended next hop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bgp::fsm::{
    self, Fsm, FsmConfig, Input, NotificationData, OpenInfo, Output, PeerAs, State, Timer,
};
use bgp::types::{Community, Family, LargeCommunity, NextHop, Nlri, Origin, PathAttrs};
use bgp::wire::{
    self, Capability, ErrorCode, GracefulRestart, Message, Notification, Open, SessionCtx, Update,
    UpdateOutcome,
};
use bytes::BytesMut;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

mod session;
mod table;

use crate::transport::{self, Listener, Md5Password, TransportOpts};
use session::session_task;
use table::table_task;

/// The speaker as a whole.
#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept sessions (`None`: only connect out).
    pub listen: Option<SocketAddr>,
    /// Most next hops in one ECMP group.
    pub max_paths: usize,
    /// Attached to every route we originate.
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Graceful restart (RFC 4724, with RFC 8538's N bit); `None` disables it.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Re-advertise learned best paths to the other neighbors (a transit router or
    /// route server). Off for hosts: a host only ever advertises what it originates,
    /// so it can never pass routes between its ToRs.
    pub export_learned: bool,
    /// Keep the learned routes as [`Speaker::routes`] publishes them (for a FIB). A
    /// speaker that installs nothing turns this off and saves a copy of the table;
    /// [`Speaker::loc_rib`] answers either way.
    pub publish_routes: bool,
}

/// Graceful restart settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// How long peers should keep our routes while we restart (seconds, at most 4095).
    pub restart_time: u16,
    /// We are a restarting speaker: the first session to each peer sets the R bit. The
    /// F bit is always set: the agent never removes its forwarding state when it stops.
    pub restarting: bool,
    /// How long a restarted peer's stale routes are kept, once it is back, waiting for
    /// its End-of-RIB.
    pub stale_time: Duration,
}

/// One neighbor.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub addr: IpAddr,
    /// The peer's BGP port (179).
    pub port: u16,
    /// The peer's AS (`None`: any, for dynamic peers; see also
    /// [`PeerConfig::allowed_as`]).
    pub remote_as: Option<u32>,
    /// With `remote_as` `None`: the ASes the peer may announce in its OPEN (empty: any);
    /// another AS is refused with OPEN Message Error / Bad Peer AS. For ranges of
    /// dynamic neighbors that allow several ASes.
    pub allowed_as: Vec<u32>,
    pub passive: bool,
    pub hold_time: u16,
    pub keepalive: u16,
    pub connect_retry: Duration,
    /// Socket options, the TCP MD5 password included (`transport.md5_password`, see
    /// [`PeerConfig::with_md5_password`]).
    pub transport: TransportOpts,
    pub description: String,
    /// Our IPv6 next hop for IPv6 routes sent over an IPv4 session (IPv6 routes are not
    /// sent over IPv4 sessions without one). Over IPv6 sessions the session's own
    /// address is used, and IPv4 routes go with it when the peer accepts IPv6 next hops
    /// for IPv4 (RFC 8950).
    pub next_hop_v6: Option<std::net::Ipv6Addr>,
    /// Import and export policies and the max-prefix limit.
    pub policy: bgp::policy::NeighborPolicy,
    /// RFC 8212: an eBGP neighbor without an import (export) policy has nothing
    /// accepted (sent). Off in [`PeerConfig::new`] (the caller states its policy, as
    /// netplugin does); `contiv-bgpd` turns it on unless its configuration opts out.
    pub ebgp_requires_policy: bool,
    /// Offer to receive several paths per prefix (ADD-PATH, RFC 7911) for IPv4 and IPv6
    /// unicast; a peer configured to send them then does, and each path takes part in
    /// best path and ECMP on its own. On in [`PeerConfig::new`].
    pub add_path_receive: bool,
    /// Offer to send several paths per prefix (ADD-PATH): a peer that takes them gets
    /// every path we would advertise, each under a path identifier of ours, instead of
    /// only the best (useful for a route server or transit speaker with
    /// [`SpeakerConfig::export_learned`]). Off in [`PeerConfig::new`].
    pub add_path_send: bool,
    /// Run BFD with this neighbor (RFC 5880/5881 single hop; RFC 5882 coupling): a BFD
    /// session starts when the BGP session reaches Established and ends with it, and a
    /// BFD session that was Up going Down (not by the peer's AdminDown) ends the BGP
    /// session at once as a lost connection. `None` in [`PeerConfig::new`].
    pub bfd: Option<crate::bfd::BfdConfig>,
    /// BFD authentication with this neighbor (RFC 5880 §6.7; `None`: none, as in
    /// [`PeerConfig::new`]). Only used with [`PeerConfig::bfd`].
    pub bfd_auth: Option<crate::bfd::AuthKey>,
}

impl PeerConfig {
    /// An active eBGP/iBGP neighbor with short, fabric-friendly timers (hold 9 s,
    /// keepalive 3 s, connect retry 2 s).
    pub fn new(addr: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            addr,
            port: 179,
            remote_as: Some(remote_as),
            allowed_as: Vec::new(),
            passive: false,
            hold_time: 9,
            keepalive: 3,
            connect_retry: Duration::from_secs(2),
            transport: TransportOpts::default(),
            description: String::new(),
            next_hop_v6: None,
            policy: bgp::policy::NeighborPolicy::default(),
            ebgp_requires_policy: false,
            add_path_receive: true,
            add_path_send: false,
            bfd: None,
            bfd_auth: None,
        }
    }

    /// The same neighbor with a TCP MD5 password (RFC 2385): outgoing connections sign
    /// with it, and the speaker's listener gets it as the key for this peer's address.
    pub fn with_md5_password(mut self, password: Md5Password) -> PeerConfig {
        self.transport.md5_password = Some(password);
        self
    }

    /// Whether the peer may announce `asn` (see [`PeerConfig::allowed_as`]; an exact
    /// `remote_as` is the FSM's check).
    pub fn accepts_as(&self, asn: u32) -> bool {
        self.remote_as.is_some() || self.allowed_as.is_empty() || self.allowed_as.contains(&asn)
    }
}

/// A neighbor's state as `show` commands and metrics report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub remote_as: Option<u32>,
    /// FSM state name (`Idle` ... `Established`).
    pub state: String,
    /// When the session last became Established (seconds since the UNIX epoch).
    pub established_at: Option<u64>,
    pub updates_in: u64,
    pub updates_out: u64,
    pub prefixes_received: u64,
    pub prefixes_advertised: u64,
    /// Times the session left Established.
    pub flaps: u64,
    pub last_error: Option<String>,
    /// FSM transitions so far.
    pub transitions: u64,
    /// The peer sent End-of-RIB for every family of the current session: its initial
    /// table is complete.
    pub eor_received: bool,
    /// Routes of this peer kept as stale through its restart (RFC 4724 helper).
    pub stale_routes: u64,
    /// What the current session negotiated (families, 4-octet-as, route-refresh,
    /// add-path, graceful-restart, ...); empty while it is down.
    pub capabilities: Vec<String>,
    /// A dynamic neighbor, created for a connection from inside a range
    /// ([`Speaker::add_range`]); it goes when its session does.
    pub dynamic: bool,
    /// BFD with this neighbor: `None` when not configured, `idle` while the BGP session
    /// is not Established (no BFD session then), else the BFD state (`down`, `init`,
    /// `up`, `admin-down`), or `error: …` when the BFD sockets could not be opened.
    pub bfd: Option<String>,
}

/// Learned prefixes and the next hops of their ECMP groups.
pub type Routes = BTreeMap<IpNet, Vec<IpAddr>>;

/// Speaker errors.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("neighbor {0}: {1}")]
    Neighbor(IpAddr, String),
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error("the speaker has stopped")]
    Stopped,
}

enum TableCmd {
    PeerUp {
        addr: IpAddr,
        /// The session's connection number (see [`SessionOut::Updates`]).
        conn: u64,
        out: mpsc::UnboundedSender<SessionOut>,
        ctx: SessionCtx,
        local: IpAddr,
        ebgp: bool,
        router_id: Ipv4Addr,
        /// The peer's graceful restart capability, when both sides sent one.
        peer_gr: Option<GracefulRestart>,
        next_hop_v6: Option<std::net::Ipv6Addr>,
        policy: Box<bgp::policy::NeighborPolicy>,
        ebgp_requires_policy: bool,
    },
    PeerDown {
        addr: IpAddr,
        /// The connection whose session went down; `None` from a neighbor stopping
        /// without a session up (its stale routes, if any, go). A session of another
        /// connection is left alone: the news is older than it.
        conn: Option<u64>,
        /// The session went down in a way graceful restart covers (connection loss, hold
        /// timer, or with the N bit a NOTIFICATION other than Hard Reset): keep the
        /// peer's routes as stale.
        graceful: bool,
    },
    Update {
        addr: IpAddr,
        update: Update,
        /// Held until the table has handled the UPDATE: sessions stop reading when the
        /// table is behind, instead of queueing without bound.
        _permit: tokio::sync::OwnedSemaphorePermit,
    },
    Refresh {
        addr: IpAddr,
        family: Family,
    },
    /// A session wrote this many bytes of UPDATEs the table gave it.
    Written {
        addr: IpAddr,
        conn: u64,
        bytes: usize,
    },
    Originate(Vec<IpNet>),
    Withdraw(Vec<IpNet>),
    AdjIn {
        addr: IpAddr,
        reply: oneshot::Sender<Vec<(IpNet, Option<IpAddr>)>>,
    },
    Originated {
        reply: oneshot::Sender<Vec<IpNet>>,
    },
    LocRib {
        reply: oneshot::Sender<Vec<(IpNet, Vec<IpAddr>)>>,
    },
    AdjOut {
        addr: IpAddr,
        reply: oneshot::Sender<Vec<(IpNet, Option<IpAddr>)>>,
    },
}

/// What the table tells a session.
enum SessionOut {
    /// Encoded UPDATEs for connection number `conn` (dropped if that connection is
    /// gone); the session acknowledges them with [`TableCmd::Written`] once written.
    Updates {
        conn: u64,
        bytes: bytes::Bytes,
        updates: u64,
    },
    /// Close the session with a Cease of this subcode and stay down for `hold`.
    Reset { cease_subcode: u8, hold: Duration },
}

/// Connection numbers, unique in the process: what a session's table entry, its
/// UPDATEs and its writer's acknowledgements belong to.
fn next_conn_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The way into the table task. An UPDATE takes a permit first (see
/// [`TableCmd::Update`]).
#[derive(Clone)]
struct TableTx {
    tx: mpsc::UnboundedSender<TableCmd>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// UPDATEs queued for the table at most, all sessions together.
const UPDATE_QUEUE: usize = 64;

impl TableTx {
    fn send(&self, cmd: TableCmd) -> Result<(), SpeakerError> {
        self.tx.send(cmd).map_err(|_| SpeakerError::Stopped)
    }

    /// Queues an UPDATE, unless the table is [`UPDATE_QUEUE`] behind: then the UPDATE
    /// comes back, to be tried again after [`TableTx::room`].
    fn try_update(&self, addr: IpAddr, update: Update) -> Result<(), Box<Update>> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = self.tx.send(TableCmd::Update {
                    addr,
                    update,
                    _permit: permit,
                });
                Ok(())
            }
            Err(_) => Err(Box::new(update)),
        }
    }

    /// Waits until the table has room for an UPDATE (another session may take it
    /// first: then [`TableTx::try_update`] says so again).
    async fn room(&self) {
        let _ = self.permits.acquire().await;
    }
}

enum PeerCtl {
    Incoming(TcpStream),
    Stop,
    /// Close the connection without a NOTIFICATION (we are restarting: the peer sees
    /// the connection go and, with graceful restart, keeps our routes).
    Abandon,
}

struct PeerHandle {
    ctl: mpsc::UnboundedSender<PeerCtl>,
    task: tokio::task::JoinHandle<()>,
    /// Tells this neighbor from a later one at the same address.
    id: u64,
    /// The range a dynamic neighbor was created for.
    range: Option<IpNet>,
}

/// A range of dynamic neighbors ([`Speaker::add_range`]).
struct DynRange {
    template: PeerConfig,
    limit: usize,
    /// Its dynamic neighbors now.
    members: BTreeSet<IpAddr>,
}

/// What the speaker's handle, its listener task and the dynamic neighbors' watchers
/// share. Lock order: `peers`, then `ranges`, then `status`.
struct Shared {
    cfg: SpeakerConfig,
    table: TableTx,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
    peers: Mutex<HashMap<IpAddr, PeerHandle>>,
    ranges: Mutex<BTreeMap<IpNet, DynRange>>,
    listener: Option<Arc<Listener>>,
    next_id: std::sync::atomic::AtomicU64,
    /// The BFD task, started with the first neighbor that wants BFD (or given with
    /// [`Speaker::use_bfd`]).
    bfd: Mutex<Option<crate::bfd::Bfd>>,
}

/// A running speaker.
pub struct Speaker {
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("asn", &self.shared.cfg.asn)
            .field("router_id", &self.shared.cfg.router_id)
            .finish()
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Ok(peers) = self.shared.peers.lock() {
            for p in peers.values() {
                p.task.abort();
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How long a dynamic neighbor whose hold time is 0 may take to reach Established.
const DYNAMIC_UP_DEFAULT: Duration = Duration::from_secs(90);

impl Shared {
    /// Starts a neighbor's session task and registers it (the caller holds `peers`). A
    /// dynamic neighbor's session talks to the table through [`watch_dynamic`], which
    /// removes the neighbor when its session ends.
    fn spawn_neighbor(
        self: &Arc<Self>,
        peers: &mut HashMap<IpAddr, PeerHandle>,
        p: PeerConfig,
        range: Option<IpNet>,
    ) -> Result<(), SpeakerError> {
        let fsm = Fsm::new(fsm_config(&self.cfg, &p))
            .map_err(|e| SpeakerError::Neighbor(p.addr, e.to_string()))?;
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (bfd, bfd_status) = match p.bfd {
            None => (None, None),
            Some(_) => match self.bfd() {
                Ok(b) => (Some(b), Some("idle".to_string())),
                Err(e) => {
                    tracing::warn!("{}: BFD not available: {e}", p.addr);
                    (None, Some(format!("error: {e}")))
                }
            },
        };
        self.status
            .lock()
            .map_err(|_| SpeakerError::Stopped)?
            .insert(
                p.addr,
                PeerStatus {
                    address: p.addr,
                    remote_as: p.remote_as,
                    state: State::Idle.to_string(),
                    established_at: None,
                    updates_in: 0,
                    updates_out: 0,
                    prefixes_received: 0,
                    prefixes_advertised: 0,
                    flaps: 0,
                    last_error: None,
                    transitions: 0,
                    eor_received: false,
                    stale_routes: 0,
                    capabilities: Vec::new(),
                    dynamic: range.is_some(),
                    bfd: bfd_status,
                },
            );
        let table = match range {
            None => self.table.clone(),
            Some(_) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let up_within = match p.hold_time {
                    0 => DYNAMIC_UP_DEFAULT,
                    h => Duration::from_secs(h.into()),
                };
                tokio::spawn(watch_dynamic(
                    Arc::downgrade(self),
                    p.addr,
                    id,
                    rx,
                    self.table.tx.clone(),
                    up_within,
                ));
                TableTx {
                    tx,
                    permits: self.table.permits.clone(),
                }
            }
        };
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let addr = p.addr;
        let task = tokio::spawn(session_task(
            p,
            self.cfg.clone(),
            fsm,
            ctl_rx,
            table,
            self.status.clone(),
            bfd,
        ));
        let old = peers.insert(
            addr,
            PeerHandle {
                ctl: ctl_tx,
                task,
                id,
                range,
            },
        );
        if let Some(old) = old {
            // Raced with another addition: the older one goes.
            let _ = old.ctl.send(PeerCtl::Stop);
            self.forget_member(&old, addr);
        }
        Ok(())
    }

    /// The BFD task, started on first use on the standard port.
    fn bfd(&self) -> std::io::Result<crate::bfd::Bfd> {
        let mut b = self
            .bfd
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        if let Some(b) = b.as_ref() {
            return Ok(b.clone());
        }
        let started = crate::bfd::Bfd::start(crate::bfd::BfdOptions::default())?;
        *b = Some(started.clone());
        Ok(started)
    }

    /// A removed handle's address leaves its range.
    fn forget_member(&self, h: &PeerHandle, addr: IpAddr) {
        if let Some(r) = h.range
            && let Ok(mut ranges) = self.ranges.lock()
            && let Some(dr) = ranges.get_mut(&r)
        {
            dr.members.remove(&addr);
        }
    }

    /// Removes the neighbor at `addr` (only the one with this `id`, if given): Cease,
    /// routes withdrawn, status and listener key gone.
    fn remove(&self, addr: IpAddr, id: Option<u64>) -> bool {
        let h = self.peers.lock().ok().and_then(|mut p| {
            if id.is_some_and(|id| p.get(&addr).is_none_or(|h| h.id != id)) {
                return None;
            }
            p.remove(&addr)
        });
        let Some(h) = h else { return false };
        let _ = h.ctl.send(PeerCtl::Stop);
        self.forget_member(&h, addr);
        if let Ok(mut s) = self.status.lock() {
            s.remove(&addr);
        }
        if h.range.is_none()
            && let Some(l) = &self.listener
            && l.local_addr().is_ipv4() == addr.is_ipv4()
        {
            let _ = l.set_md5(addr, None);
        }
        true
    }

    /// A connection the listener accepted from `from`: to its neighbor, or to a new
    /// dynamic neighbor of the narrowest range that holds it, or refused.
    fn incoming(self: &Arc<Self>, stream: TcpStream, from: SocketAddr) {
        let ip = from.ip();
        let Ok(mut peers) = self.peers.lock() else {
            return;
        };
        if let Some(h) = peers.get(&ip) {
            let _ = h.ctl.send(PeerCtl::Incoming(stream));
            return;
        }
        let template = {
            let Ok(mut ranges) = self.ranges.lock() else {
                return;
            };
            let Some((range, dr)) = ranges
                .iter_mut()
                .filter(|(r, _)| r.contains(&ip))
                .max_by_key(|(r, _)| r.prefix_len())
            else {
                tracing::info!("BGP connection from unknown peer {from} refused");
                return;
            };
            if dr.members.len() >= dr.limit {
                tracing::warn!(
                    "BGP connection from {from} refused: range {range} has its limit of {} dynamic neighbors",
                    dr.limit
                );
                return;
            }
            dr.members.insert(ip);
            let mut p = dr.template.clone();
            p.addr = ip;
            p.passive = true;
            (*range, p)
        };
        let (range, p) = template;
        tracing::info!("BGP connection from {from}: dynamic neighbor of range {range}");
        match self.spawn_neighbor(&mut peers, p, Some(range)) {
            Ok(()) => {
                if let Some(h) = peers.get(&ip) {
                    let _ = h.ctl.send(PeerCtl::Incoming(stream));
                }
            }
            Err(e) => {
                tracing::warn!("dynamic neighbor {ip}: {e}");
                if let Ok(mut ranges) = self.ranges.lock()
                    && let Some(dr) = ranges.get_mut(&range)
                {
                    dr.members.remove(&ip);
                }
            }
        }
    }
}

/// Passes a dynamic neighbor's messages to the table and removes the neighbor when its
/// session leaves Established, or when it has not reached Established within
/// `up_within` of its creation. The peer's next connection creates it again.
async fn watch_dynamic(
    shared: std::sync::Weak<Shared>,
    addr: IpAddr,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<TableCmd>,
    table: mpsc::UnboundedSender<TableCmd>,
    up_within: Duration,
) {
    let deadline = tokio::time::sleep(up_within);
    tokio::pin!(deadline);
    let (mut up, mut gone) = (false, false);
    loop {
        let why = tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                let down = matches!(cmd, TableCmd::PeerDown { .. });
                up |= matches!(cmd, TableCmd::PeerUp { .. });
                let _ = table.send(cmd);
                if !down || gone {
                    continue;
                }
                "its session went down"
            }
            _ = &mut deadline, if !up && !gone => "no session came up in time",
        };
        gone = true;
        if let Some(s) = shared.upgrade()
            && s.remove(addr, Some(id))
        {
            tracing::info!("dynamic neighbor {addr} removed: {why}");
        }
    }
}

impl Speaker {
    /// Starts the table task and, when configured, the listener.
    pub async fn start(cfg: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        let (table_tx, table_rx) = mpsc::unbounded_channel();
        let (routes_tx, routes) = watch::channel(Arc::new(Routes::new()));
        let status = Arc::new(Mutex::new(BTreeMap::new()));
        let mut tasks = vec![tokio::spawn(table_task(
            cfg.clone(),
            table_rx,
            routes_tx,
            status.clone(),
        ))];
        let listener = match cfg.listen {
            Some(addr) => Some(Arc::new(Listener::bind_addr(addr)?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            cfg,
            table: TableTx {
                tx: table_tx,
                permits: Arc::new(tokio::sync::Semaphore::new(UPDATE_QUEUE)),
            },
            status,
            peers: Mutex::new(HashMap::new()),
            ranges: Mutex::new(BTreeMap::new()),
            listener: listener.clone(),
            next_id: std::sync::atomic::AtomicU64::new(0),
            bfd: Mutex::new(None),
        });
        if let Some(l) = listener {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((stream, from)) => shared.incoming(stream, from),
                        Err(e) => {
                            tracing::warn!("BGP listener: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }));
        }
        Ok(Speaker {
            shared,
            routes,
            tasks,
        })
    }

    /// The address the listener is bound to.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.shared.listener.as_ref().map(|l| l.local_addr())
    }

    /// Adds a neighbor (or replaces one: its session is reset). A dynamic neighbor at
    /// that address gives way: a configured neighbor always wins over a range.
    pub fn add_neighbor(&self, p: PeerConfig) -> Result<(), SpeakerError> {
        // Checked before anything is removed.
        fsm_config(&self.shared.cfg, &p)
            .validate()
            .map_err(|e| SpeakerError::Neighbor(p.addr, e.to_string()))?;
        // Removed first: removal clears the peer's MD5 key on the listener.
        self.remove_neighbor(p.addr);
        // The listener's key for the peer makes the kernel accept its signed handshake;
        // a listener of the other family never sees this peer.
        if let Some(l) = &self.shared.listener
            && let Some(pw) = &p.transport.md5_password
            && l.local_addr().is_ipv4() == p.addr.is_ipv4()
        {
            l.set_md5(p.addr, Some(pw))?;
        }
        let mut peers = self
            .shared
            .peers
            .lock()
            .map_err(|_| SpeakerError::Stopped)?;
        self.shared.spawn_neighbor(&mut peers, p, None)
    }

    /// Removes a neighbor (a configured or a dynamic one): its session is closed with a
    /// Cease and its routes withdrawn.
    pub fn remove_neighbor(&self, addr: IpAddr) -> bool {
        self.shared.remove(addr, None)
    }

    /// Accepts sessions from any address in `range` that has no configured neighbor
    /// (like FRR's `bgp listen range`, BIRD's `neighbor range`): a connection from such
    /// an address creates a passive neighbor from `template` (its address and
    /// `passive` are set; [`PeerConfig::remote_as`] `None` with
    /// [`PeerConfig::allowed_as`] for several ASes) and hands it the connection. When
    /// ranges overlap the narrowest wins. At most `limit` dynamic neighbors per range
    /// at a time; further connections are refused. A dynamic neighbor is removed, its
    /// routes withdrawn, when its session leaves Established or has not reached it
    /// within its hold time (90 s with hold time 0).
    ///
    /// The template's MD5 password becomes the listener's key for the whole prefix
    /// (a configured neighbor's own key, a longer prefix, wins for its address).
    /// Adding a range that exists replaces it: its dynamic neighbors are reset.
    pub fn add_range(
        &self,
        range: IpNet,
        template: PeerConfig,
        limit: usize,
    ) -> Result<(), SpeakerError> {
        let range = range.trunc();
        fsm_config(&self.shared.cfg, &template)
            .validate()
            .map_err(|e| SpeakerError::Neighbor(range.addr(), e.to_string()))?;
        self.remove_range(range);
        if let Some(l) = &self.shared.listener
            && let Some(pw) = &template.transport.md5_password
            && l.local_addr().is_ipv4() == range.addr().is_ipv4()
        {
            l.set_md5(range, Some(pw))?;
        }
        self.shared
            .ranges
            .lock()
            .map_err(|_| SpeakerError::Stopped)?
            .insert(
                range,
                DynRange {
                    template,
                    limit,
                    members: BTreeSet::new(),
                },
            );
        Ok(())
    }

    /// Removes a range: its dynamic neighbors are closed (Cease) and their routes
    /// withdrawn, and no new ones are accepted.
    pub fn remove_range(&self, range: IpNet) -> bool {
        let range = range.trunc();
        let Some(dr) = self
            .shared
            .ranges
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&range))
        else {
            return false;
        };
        for addr in dr.members {
            let id = self.shared.peers.lock().ok().and_then(|p| {
                p.get(&addr)
                    .filter(|h| h.range == Some(range))
                    .map(|h| h.id)
            });
            if let Some(id) = id {
                self.shared.remove(addr, Some(id));
            }
        }
        if let Some(l) = &self.shared.listener
            && l.local_addr().is_ipv4() == range.addr().is_ipv4()
        {
            let _ = l.set_md5(range, None);
        }
        true
    }

    /// The ranges of dynamic neighbors with their limits.
    pub fn ranges(&self) -> Vec<(IpNet, usize)> {
        self.shared
            .ranges
            .lock()
            .map(|r| r.iter().map(|(k, d)| (*k, d.limit)).collect())
            .unwrap_or_default()
    }

    /// Starts advertising these prefixes to every neighbor.
    pub fn originate(&self, prefixes: Vec<IpNet>) -> Result<(), SpeakerError> {
        self.shared
            .table
            .send(TableCmd::Originate(prefixes))
            .map_err(|_| SpeakerError::Stopped)
    }

    /// Stops advertising these prefixes.
    pub fn withdraw(&self, prefixes: Vec<IpNet>) -> Result<(), SpeakerError> {
        self.shared
            .table
            .send(TableCmd::Withdraw(prefixes))
            .map_err(|_| SpeakerError::Stopped)
    }

    /// The Loc-RIB's learned routes with their ECMP next hops, sorted (also when
    /// [`SpeakerConfig::publish_routes`] is off).
    pub async fn loc_rib(&self) -> Result<Vec<(IpNet, Vec<IpAddr>)>, SpeakerError> {
        self.ask(|reply| TableCmd::LocRib { reply }).await
    }

    /// The prefixes we originate now.
    pub async fn originated(&self) -> Result<Vec<IpNet>, SpeakerError> {
        self.ask(|reply| TableCmd::Originated { reply }).await
    }

    /// Learned best routes with their ECMP next hops; every change is published.
    pub fn routes(&self) -> watch::Receiver<Arc<Routes>> {
        self.routes.clone()
    }

    /// Runs BFD for neighbors added from now on with this instance (for instance one on
    /// another port, for tests) instead of starting one on the standard port.
    ///
    /// Without it, BFD's sockets are opened by the first `add_neighbor` that asks for
    /// BFD, on the calling thread — in that thread's network namespace. A caller that
    /// adds neighbors from a thread outside the speaker's namespace starts BFD where the
    /// speaker runs and hands it over here (netplugin does).
    pub fn use_bfd(&self, bfd: crate::bfd::Bfd) {
        if let Ok(mut b) = self.shared.bfd.lock() {
            *b = Some(bfd);
        }
    }

    /// The BFD task, once a neighbor with BFD has started it.
    pub fn bfd(&self) -> Option<crate::bfd::Bfd> {
        self.shared.bfd.lock().ok().and_then(|b| b.clone())
    }

    /// Every neighbor's status.
    pub fn neighbors(&self) -> Vec<PeerStatus> {
        self.shared
            .status
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// What a neighbor sent us (its Adj-RIB-In): prefix and next hop.
    pub async fn adj_rib_in(
        &self,
        addr: IpAddr,
    ) -> Result<Vec<(IpNet, Option<IpAddr>)>, SpeakerError> {
        self.ask(|reply| TableCmd::AdjIn { addr, reply }).await
    }

    /// What a neighbor has been sent (its Adj-RIB-Out): each prefix announced to it and
    /// not withdrawn since, with the next hop it carries, sorted. A prefix whose update
    /// is still queued shows its next hop as it will go out.
    pub async fn adj_rib_out(
        &self,
        addr: IpAddr,
    ) -> Result<Vec<(IpNet, Option<IpAddr>)>, SpeakerError> {
        self.ask(|reply| TableCmd::AdjOut { addr, reply }).await
    }

    /// Stops for a restart: every connection is closed without a NOTIFICATION, so peers
    /// that negotiated graceful restart keep our routes (and forwarding) until we are
    /// back or their restart timer runs out. Without graceful restart this is a plain
    /// connection loss.
    pub async fn shutdown_for_restart(self) {
        self.stop_all(|| PeerCtl::Abandon).await;
    }

    /// Closes every session (Cease) and stops.
    pub async fn shutdown(self) {
        self.stop_all(|| PeerCtl::Stop).await;
    }

    /// Tells every session `how` to stop and waits (at most 2 s each) for them.
    async fn stop_all(&self, how: impl Fn() -> PeerCtl) {
        let handles: Vec<PeerHandle> = self
            .shared
            .peers
            .lock()
            .map(|mut p| p.drain().map(|(_, h)| h).collect())
            .unwrap_or_default();
        for h in &handles {
            let _ = h.ctl.send(how());
        }
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
        }
    }

    /// Asks the table something and waits for its answer.
    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<T>) -> TableCmd,
    ) -> Result<T, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.shared.table.send(cmd(tx))?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }
}

/// The session FSM's configuration for a neighbor.
fn fsm_config(sp: &SpeakerConfig, p: &PeerConfig) -> FsmConfig {
    let mut fc = FsmConfig::new(
        sp.asn,
        sp.router_id,
        p.remote_as.map(PeerAs::Exact).unwrap_or(PeerAs::Any),
    );
    fc.hold_time = p.hold_time;
    fc.keepalive = p.keepalive;
    fc.connect_retry = p.connect_retry;
    fc.passive = p.passive;
    fc.idle_hold = Duration::from_millis(500);
    fc
}

fn set_status(
    status: &Mutex<BTreeMap<IpAddr, PeerStatus>>,
    addr: IpAddr,
    f: impl FnOnce(&mut PeerStatus),
) {
    if let Ok(mut s) = status.lock()
        && let Some(p) = s.get_mut(&addr)
    {
        f(p);
    }
}
