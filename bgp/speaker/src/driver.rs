//! The speaker: the `bgp` core run over real sockets.
//!
//! - One **session task** per neighbor drives the pure FSM ([`bgp::fsm::Fsm`]) with a TCP
//!   connection (outgoing through [`crate::transport::connect`], or incoming handed over
//!   by the listener), frames and decodes messages with [`bgp::wire`], and turns timer
//!   outputs into tokio sleeps.
//! - One **table task** holds every neighbor's Adj-RIB-In and the prefixes we originate,
//!   selects best paths and ECMP groups ([`crate::select`]), publishes the learned routes
//!   on a watch channel (for the kernel FIB), and sends UPDATEs to established peers.
//!
//! Import drops paths through our own AS (RFC 4271 §9.1.2 loop detection).
//!
//! Export is the host guardrail: only the prefixes the agent originates are ever
//! advertised; a learned route is never passed on, so a host cannot leak routes between
//! its ToRs. Import keeps what the peer sends (RFC 7606 treat-as-withdraw respected).
//!
//! Simplifications, documented: a connection that arrives while our own is past
//! Connect/Active is refused (the peer's collision handling keeps one); IPv6 routes go
//! over IPv4 sessions only with a configured IPv6 next hop, IPv4 routes over IPv6
//! sessions with RFC 8950 extended next hop; ADD-PATH is not negotiated yet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bgp::fsm::{
    self, Fsm, FsmConfig, Input, NotificationData, OpenInfo, Output, PeerAs, State, Timer,
};
use bgp::types::{AsPath, Community, Family, LargeCommunity, NextHop, Nlri, Origin, PathAttrs};
use bgp::wire::{
    self, Capability, ErrorCode, GracefulRestart, Message, Notification, Open, SessionCtx, Update,
    UpdateOutcome,
};
use bytes::BytesMut;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::select::{self, Path, Source};
use crate::transport::{self, Listener, Md5Password, TransportOpts};

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
    /// The peer's AS (`None`: any, for dynamic peers).
    pub remote_as: Option<u32>,
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
}

impl PeerConfig {
    /// An active eBGP/iBGP neighbor with short, fabric-friendly timers (hold 9 s,
    /// keepalive 3 s, connect retry 2 s).
    pub fn new(addr: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            addr,
            port: 179,
            remote_as: Some(remote_as),
            passive: false,
            hold_time: 9,
            keepalive: 3,
            connect_retry: Duration::from_secs(2),
            transport: TransportOpts::default(),
            description: String::new(),
            next_hop_v6: None,
            policy: bgp::policy::NeighborPolicy::default(),
            ebgp_requires_policy: false,
        }
    }

    /// The same neighbor with a TCP MD5 password (RFC 2385): outgoing connections sign
    /// with it, and the speaker's listener gets it as the key for this peer's address.
    pub fn with_md5_password(mut self, password: Md5Password) -> PeerConfig {
        self.transport.md5_password = Some(password);
        self
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
        /// The session went down in a way graceful restart covers (connection loss, hold
        /// timer, or with the N bit a NOTIFICATION other than Hard Reset): keep the
        /// peer's routes as stale.
        graceful: bool,
    },
    Update {
        addr: IpAddr,
        update: Update,
    },
    Refresh {
        addr: IpAddr,
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
}

/// A running speaker.
pub struct Speaker {
    cfg: SpeakerConfig,
    table: mpsc::UnboundedSender<TableCmd>,
    routes: watch::Receiver<Arc<Routes>>,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
    peers: Arc<Mutex<HashMap<IpAddr, PeerHandle>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    listener: Option<Arc<Listener>>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("asn", &self.cfg.asn)
            .field("router_id", &self.cfg.router_id)
            .finish()
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Ok(peers) = self.peers.lock() {
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

impl Speaker {
    /// Starts the table task and, when configured, the listener.
    pub async fn start(cfg: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        let (table_tx, table_rx) = mpsc::unbounded_channel();
        let (routes_tx, routes) = watch::channel(Arc::new(Routes::new()));
        let status = Arc::new(Mutex::new(BTreeMap::new()));
        let peers: Arc<Mutex<HashMap<IpAddr, PeerHandle>>> = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = vec![tokio::spawn(table_task(
            cfg.clone(),
            table_rx,
            routes_tx,
            status.clone(),
        ))];
        let mut listener = None;
        if let Some(addr) = cfg.listen {
            let l = Arc::new(Listener::bind_addr(addr)?);
            listener = Some(l.clone());
            let peers = peers.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((stream, from)) => {
                            let p = peers
                                .lock()
                                .ok()
                                .and_then(|p| p.get(&from.ip()).map(|h| h.ctl.clone()));
                            match p {
                                Some(ctl) => {
                                    let _ = ctl.send(PeerCtl::Incoming(stream));
                                }
                                None => tracing::info!(
                                    "BGP connection from unknown peer {from} refused"
                                ),
                            }
                        }
                        Err(e) => {
                            tracing::warn!("BGP listener: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }));
        }
        Ok(Speaker {
            cfg,
            table: table_tx,
            routes,
            status,
            peers,
            tasks,
            listener,
        })
    }

    /// The address the listener is bound to.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|l| l.local_addr())
    }

    /// Adds a neighbor (or replaces one: its session is reset).
    pub fn add_neighbor(&self, p: PeerConfig) -> Result<(), SpeakerError> {
        let mut fc = FsmConfig::new(
            self.cfg.asn,
            self.cfg.router_id,
            p.remote_as.map(PeerAs::Exact).unwrap_or(PeerAs::Any),
        );
        fc.hold_time = p.hold_time;
        fc.keepalive = p.keepalive;
        fc.connect_retry = p.connect_retry;
        fc.passive = p.passive;
        fc.idle_hold = Duration::from_millis(500);
        let fsm = Fsm::new(fc).map_err(|e| SpeakerError::Neighbor(p.addr, e.to_string()))?;
        // Removed first: removal clears the peer's MD5 key on the listener.
        self.remove_neighbor(p.addr);
        // The listener's key for the peer makes the kernel accept its signed handshake;
        // a listener of the other family never sees this peer.
        if let Some(l) = &self.listener
            && let Some(pw) = &p.transport.md5_password
            && l.local_addr().is_ipv4() == p.addr.is_ipv4()
        {
            l.set_md5(p.addr, Some(pw))?;
        }
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
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
                },
            );
        let task = tokio::spawn(session_task(
            p.clone(),
            self.cfg.clone(),
            fsm,
            ctl_rx,
            self.table.clone(),
            self.status.clone(),
        ));
        self.peers
            .lock()
            .map_err(|_| SpeakerError::Stopped)?
            .insert(p.addr, PeerHandle { ctl: ctl_tx, task });
        Ok(())
    }

    /// Removes a neighbor: its session is closed with a Cease and its routes withdrawn.
    pub fn remove_neighbor(&self, addr: IpAddr) -> bool {
        let h = self.peers.lock().ok().and_then(|mut p| p.remove(&addr));
        if let Some(h) = h {
            let _ = h.ctl.send(PeerCtl::Stop);
            if let Ok(mut s) = self.status.lock() {
                s.remove(&addr);
            }
            if let Some(l) = &self.listener {
                let _ = l.set_md5(addr, None);
            }
            return true;
        }
        false
    }

    /// Starts advertising these prefixes to every neighbor.
    pub fn originate(&self, prefixes: Vec<IpNet>) -> Result<(), SpeakerError> {
        self.table
            .send(TableCmd::Originate(prefixes))
            .map_err(|_| SpeakerError::Stopped)
    }

    /// Stops advertising these prefixes.
    pub fn withdraw(&self, prefixes: Vec<IpNet>) -> Result<(), SpeakerError> {
        self.table
            .send(TableCmd::Withdraw(prefixes))
            .map_err(|_| SpeakerError::Stopped)
    }

    /// The prefixes we originate now.
    pub async fn originated(&self) -> Result<Vec<IpNet>, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.table
            .send(TableCmd::Originated { reply: tx })
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Learned best routes with their ECMP next hops; every change is published.
    pub fn routes(&self) -> watch::Receiver<Arc<Routes>> {
        self.routes.clone()
    }

    /// Every neighbor's status.
    pub fn neighbors(&self) -> Vec<PeerStatus> {
        self.status
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// What a neighbor sent us (its Adj-RIB-In): prefix and next hop.
    pub async fn adj_rib_in(
        &self,
        addr: IpAddr,
    ) -> Result<Vec<(IpNet, Option<IpAddr>)>, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.table
            .send(TableCmd::AdjIn { addr, reply: tx })
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Stops for a restart: every connection is closed without a NOTIFICATION, so peers
    /// that negotiated graceful restart keep our routes (and forwarding) until we are
    /// back or their restart timer runs out. Without graceful restart this is a plain
    /// connection loss.
    pub async fn shutdown_for_restart(self) {
        let handles: Vec<PeerHandle> = self
            .peers
            .lock()
            .map(|mut p| p.drain().map(|(_, h)| h).collect())
            .unwrap_or_default();
        for h in &handles {
            let _ = h.ctl.send(PeerCtl::Abandon);
        }
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
        }
    }

    /// Closes every session (Cease) and stops.
    pub async fn shutdown(self) {
        let handles: Vec<PeerHandle> = self
            .peers
            .lock()
            .map(|mut p| p.drain().map(|(_, h)| h).collect())
            .unwrap_or_default();
        for h in &handles {
            let _ = h.ctl.send(PeerCtl::Stop);
        }
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
        }
    }
}

/// Whether a session that ended this way keeps the peer's routes under graceful restart:
/// connection loss and hold timer expiry always (RFC 4724); a NOTIFICATION either way
/// only with the N bit (RFC 8538), and never a Cease/Hard Reset; our own stop never.
fn gr_covers(reason: &fsm::DownReason, n_bit: bool) -> bool {
    const CEASE: u8 = 6;
    const HARD_RESET: u8 = 9;
    match reason {
        fsm::DownReason::ConnectionFailed | fsm::DownReason::HoldTimerExpired => true,
        fsm::DownReason::NotificationReceived(n) | fsm::DownReason::ProtocolError(n) => {
            n_bit && !(n.code == CEASE && n.subcode == HARD_RESET)
        }
        fsm::DownReason::ManualStop
        | fsm::DownReason::AutomaticStop { .. }
        | fsm::DownReason::CollisionDump
        | fsm::DownReason::UnexpectedInput { .. } => false,
    }
}

fn notif_data(n: &Notification) -> NotificationData {
    let (code, subcode) = n.code.codes();
    NotificationData {
        code,
        subcode,
        data: n.data.clone(),
    }
}

fn to_wire(n: &NotificationData) -> Notification {
    Notification::new(ErrorCode::from_codes(n.code, n.subcode), n.data.clone())
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

/// One neighbor's session.
async fn session_task(
    p: PeerConfig,
    sp: SpeakerConfig,
    mut fsm: Fsm,
    mut ctl: mpsc::UnboundedReceiver<PeerCtl>,
    table: mpsc::UnboundedSender<TableCmd>,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
) {
    let families = match p.addr {
        IpAddr::V4(_) => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        IpAddr::V6(_) => vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST],
    };
    let mut caps: Vec<Capability> = wire::ctx::basic_capabilities(sp.asn, &families);
    if p.addr.is_ipv6() {
        // RFC 8950: IPv4 routes with our IPv6 next hop on an IPv6-only session.
        caps.push(Capability::ExtendedNextHop(vec![wire::ExtNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: bgp::types::Afi::Ipv6,
        }]));
    }
    // Our GR capability; the R bit only in the first session after a restart.
    let gr_cap = |restarting: bool| {
        sp.graceful_restart.as_ref().map(|g| {
            Capability::GracefulRestart(GracefulRestart {
                restart_state: restarting,
                notification: true,
                restart_time: g.restart_time.min(4095),
                families: families.iter().map(|f| (*f, true)).collect(),
            })
        })
    };
    let mut restarting = sp.graceful_restart.as_ref().is_some_and(|g| g.restarting);
    if let Some(c) = gr_cap(restarting) {
        caps.push(c);
    }
    let mut conn: Option<TcpStream> = None;
    let mut connecting: Option<
        tokio::task::JoinHandle<Result<TcpStream, transport::TransportError>>,
    > = None;
    let mut timers: HashMap<Timer, Instant> = HashMap::new();
    let mut buf = BytesMut::with_capacity(65536);
    let mut ctx = SessionCtx::default();
    let mut local_open: Option<Open> = None;
    let mut remote_open: Option<Open> = None;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<SessionOut>();
    // After a reset by the table (max-prefix), the session stays down until then.
    let mut paused_until: Option<Instant> = None;
    let mut stopping = false;
    // The peer's GR capability of the current session, when both sides sent one.
    let mut gr_negotiated: Option<GracefulRestart> = None;
    // Steps to take in order: FSM inputs, and UPDATEs / refreshes that reach the table
    // only if the session is Established once the FSM has seen them.
    let mut inputs: std::collections::VecDeque<Step> = std::collections::VecDeque::new();
    inputs.push_back(Step::Input(if p.passive {
        Input::ManualStartPassive
    } else {
        Input::ManualStart
    }));

    loop {
        // Feed pending inputs, applying outputs (which may produce more inputs).
        while let Some(step) = inputs.pop_front() {
            let input = match step {
                Step::Input(i) => i,
                Step::Update(u) => {
                    set_status(&status, p.addr, |s| s.updates_in += 1);
                    let up = fsm.state() == State::Established;
                    inputs.push_front(Step::Input(Input::UpdateMsg));
                    if up {
                        let _ = table.send(TableCmd::Update {
                            addr: p.addr,
                            update: u,
                        });
                    }
                    continue;
                }
                Step::Refresh => {
                    if fsm.state() == State::Established {
                        let _ = table.send(TableCmd::Refresh { addr: p.addr });
                    }
                    continue;
                }
            };
            for out in fsm.process(input) {
                match out {
                    Output::InitiateConnection => {
                        if conn.is_none() && connecting.is_none() {
                            let (addr, opts) =
                                (SocketAddr::new(p.addr, p.port), p.transport.clone());
                            connecting = Some(tokio::spawn(async move {
                                transport::connect(addr, &opts).await
                            }));
                        }
                    }
                    Output::DropConnection => {
                        if let Some(mut c) = conn.take() {
                            let _ = c.shutdown().await;
                        }
                        if let Some(t) = connecting.take() {
                            t.abort();
                        }
                        buf.clear();
                    }
                    Output::SendOpen(info) => {
                        let open = Open::new(info.asn, info.hold_time, info.bgp_id, caps.clone());
                        local_open = Some(open.clone());
                        if let Err(e) = send(&mut conn, &[Message::Open(open)], &ctx).await {
                            tracing::debug!("{}: sending OPEN: {e}", p.addr);
                            inputs.push_front(Step::Input(Input::TcpConnectionFails));
                        }
                    }
                    Output::SendKeepalive => {
                        if send(&mut conn, &[Message::Keepalive], &ctx).await.is_err() {
                            inputs.push_front(Step::Input(Input::TcpConnectionFails));
                        }
                    }
                    Output::SendNotification(n) => {
                        let _ = send(&mut conn, &[Message::Notification(to_wire(&n))], &ctx).await;
                        set_status(&status, p.addr, |s| {
                            s.last_error = Some(format!("sent {n}"))
                        });
                    }
                    Output::StartTimer(t, d) => {
                        let mut at = Instant::now() + d;
                        if t == Timer::IdleHold
                            && let Some(until) = paused_until.take()
                        {
                            at = at.max(until);
                        }
                        timers.insert(t, at);
                    }
                    Output::StopTimer(t) => {
                        timers.remove(&t);
                    }
                    Output::StateChanged { to, .. } => {
                        set_status(&status, p.addr, |s| {
                            s.state = to.to_string();
                            s.transitions += 1;
                        });
                    }
                    Output::SessionUp(neg) => {
                        let local = conn
                            .as_ref()
                            .and_then(|c| c.local_addr().ok())
                            .map(|a| a.ip());
                        if let (Some(lo), Some(ro)) = (&local_open, &remote_open) {
                            ctx = SessionCtx::negotiate(lo, ro);
                        }
                        set_status(&status, p.addr, |s| {
                            s.established_at = Some(now_secs());
                            s.last_error = None;
                        });
                        let peer_gr = sp
                            .graceful_restart
                            .as_ref()
                            .and(remote_open.as_ref())
                            .and_then(|o| o.graceful_restart().cloned());
                        if let Some(local) = local {
                            let _ = table.send(TableCmd::PeerUp {
                                addr: p.addr,
                                out: out_tx.clone(),
                                ctx: ctx.clone(),
                                local,
                                ebgp: !neg.internal,
                                router_id: neg.peer.bgp_id,
                                peer_gr: peer_gr.clone(),
                                next_hop_v6: p.next_hop_v6,
                                policy: Box::new(p.policy.clone()),
                                ebgp_requires_policy: p.ebgp_requires_policy,
                            });
                        }
                        gr_negotiated = peer_gr;
                        // Later sessions are not restarts any more: clear the R bit.
                        if restarting {
                            restarting = false;
                            caps.retain(|c| !matches!(c, Capability::GracefulRestart(_)));
                            if let Some(c) = gr_cap(false) {
                                caps.push(c);
                            }
                        }
                    }
                    Output::SessionDown { reason } => {
                        let graceful = gr_negotiated
                            .take()
                            .is_some_and(|g| gr_covers(&reason, g.notification));
                        let _ = table.send(TableCmd::PeerDown {
                            addr: p.addr,
                            graceful,
                        });
                        set_status(&status, p.addr, |s| {
                            s.eor_received = false;
                            s.flaps += 1;
                            s.established_at = None;
                            s.prefixes_received = 0;
                            s.prefixes_advertised = 0;
                            s.last_error = Some(format!("{reason:?}"));
                        });
                    }
                    Output::ProcessUpdate | Output::ReleaseResources => {}
                }
            }
            if matches!(fsm.state(), State::Idle) {
                ctx = SessionCtx::default();
                remote_open = None;
                if let Some(e) = fsm.last_error() {
                    let e = format!("{e:?}");
                    set_status(&status, p.addr, |s| s.last_error = Some(e));
                }
            }
        }
        if stopping {
            if let Some(mut c) = conn.take() {
                let _ = c.flush().await;
                let _ = c.shutdown().await;
            }
            let _ = table.send(TableCmd::PeerDown {
                addr: p.addr,
                graceful: false,
            });
            return;
        }

        let next_timer = timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at));
        tokio::select! {
            c = ctl.recv() => match c {
                Some(PeerCtl::Incoming(stream)) => {
                    if conn.is_none() && fsm.state().accepts_connection() {
                        if let Some(t) = connecting.take() {
                            t.abort();
                        }
                        let _ = transport::configure_accepted(&stream, SocketAddr::new(p.addr, 179), &p.transport);
                        conn = Some(stream);
                        inputs.push_back(Step::Input(Input::TcpConnectionConfirmed));
                    } else {
                        drop(stream);
                    }
                }
                Some(PeerCtl::Abandon) => {
                    // Drop the connection as a crash would; the table goes with us.
                    if let Some(t) = connecting.take() {
                        t.abort();
                    }
                    drop(conn.take());
                    return;
                }
                Some(PeerCtl::Stop) | None => {
                    stopping = true;
                    inputs.push_back(Step::Input(Input::ManualStop));
                }
            },
            r = async { match connecting.as_mut() { Some(t) => t.await, None => std::future::pending().await } } => {
                connecting = None;
                match r {
                    Ok(Ok(stream)) => {
                        conn = Some(stream);
                        inputs.push_back(Step::Input(Input::TcpCrAcked));
                    }
                    Ok(Err(e)) => {
                        set_status(&status, p.addr, |s| s.last_error = Some(e.to_string()));
                        inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    }
                    Err(_) => inputs.push_back(Step::Input(Input::TcpConnectionFails)),
                }
            }
            n = async { match conn.as_mut() { Some(c) => c.read_buf(&mut buf).await, None => std::future::pending().await } } => {
                match n {
                    Ok(0) | Err(_) => {
                        conn = None;
                        inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    }
                    Ok(_) => {
                        // Cut and decode every whole message; inputs are processed in order.
                        let mut got = Vec::new();
                        loop {
                            match wire::frame_len(&buf, ctx.max_len) {
                                Ok(Some(len)) => {
                                    let frame = buf.split_to(len);
                                    let d = decode(&frame, &ctx);
                                    // Later frames of this read decode with what the OPENs
                                    // negotiated (4-octet AS, ADD-PATH, lengths).
                                    if let (Decoded::Open(o), Some(lo)) = (&d, &local_open) {
                                        ctx = SessionCtx::negotiate(lo, o);
                                    }
                                    got.push(d);
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    got.push(Decoded::Input(Input::BgpHeaderErr(notif_data(&e.notification()))));
                                    buf.clear();
                                    break;
                                }
                            }
                        }
                        for d in got {
                            match d {
                                Decoded::Input(i) => inputs.push_back(Step::Input(i)),
                                Decoded::Open(open) => {
                                    let info = OpenInfo { version: 4, asn: open.asn(), hold_time: open.hold_time, bgp_id: open.bgp_id };
                                    remote_open = Some(open);
                                    inputs.push_back(Step::Input(Input::BgpOpen(info)));
                                }
                                Decoded::Update(u) => inputs.push_back(Step::Update(u)),
                                Decoded::Refresh => inputs.push_back(Step::Refresh),
                            }
                        }
                    }
                }
            }
            Some(out) = out_rx.recv() => {
                let msgs = match out {
                    SessionOut::Msgs(m) => m,
                    SessionOut::Reset { cease_subcode, hold } => {
                        paused_until = Some(Instant::now() + hold);
                        inputs.push_back(Step::Input(Input::AutomaticStop { cease_subcode }));
                        continue;
                    }
                };
                if fsm.state() == State::Established {
                    let n = msgs.len() as u64;
                    if send(&mut conn, &msgs, &ctx).await.is_err() {
                        inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    } else {
                        set_status(&status, p.addr, |s| s.updates_out += n);
                        // Any message sent counts as a keepalive: restart ours.
                    }
                }
            }
            _ = async { match next_timer { Some((_, at)) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } } => {
                if let Some((t, _)) = next_timer {
                    timers.remove(&t);
                    inputs.push_back(Step::Input(Input::TimerExpired(t)));
                }
            }
        }
    }
}

// UPDATEs dominate; boxing them would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Step {
    Input(Input),
    Update(Update),
    Refresh,
}

#[allow(clippy::large_enum_variant)]
enum Decoded {
    Input(Input),
    Open(Open),
    Update(Update),
    Refresh,
}

fn decode(frame: &[u8], ctx: &SessionCtx) -> Decoded {
    match Message::decode(frame, ctx) {
        Ok(Message::Open(o)) => Decoded::Open(o),
        Ok(Message::Update(u)) => Decoded::Update(u),
        Ok(Message::Keepalive) => Decoded::Input(Input::KeepAliveMsg),
        Ok(Message::Notification(n)) => Decoded::Input(Input::NotifMsg(notif_data(&n))),
        Ok(Message::RouteRefresh(_)) => Decoded::Refresh,
        Err(e) => {
            let n = notif_data(&e.notification());
            Decoded::Input(match n.code {
                fsm::codes::MESSAGE_HEADER_ERROR => Input::BgpHeaderErr(n),
                fsm::codes::OPEN_MESSAGE_ERROR => Input::BgpOpenMsgErr(n),
                _ => Input::UpdateMsgErr(n),
            })
        }
    }
}

async fn send(
    conn: &mut Option<TcpStream>,
    msgs: &[Message],
    ctx: &SessionCtx,
) -> std::io::Result<()> {
    let Some(c) = conn.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "no connection",
        ));
    };
    let mut out = BytesMut::new();
    for m in msgs {
        m.encode(ctx, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    }
    c.write_all(&out).await
}

// ---- the table --------------------------------------------------------------------------

/// What the table tells a session.
enum SessionOut {
    /// UPDATEs to send.
    Msgs(Vec<Message>),
    /// Close the session with a Cease of this subcode and stay down for `hold`.
    Reset { cease_subcode: u8, hold: Duration },
}

struct Session {
    peer: IpAddr,
    out: mpsc::UnboundedSender<SessionOut>,
    ctx: SessionCtx,
    local: IpAddr,
    ebgp: bool,
    /// What the peer was sent (Adj-RIB-Out), attributes interned.
    adj_out: BTreeMap<IpNet, Arc<PathAttrs>>,
    /// The first export (and its End-of-RIB) went out.
    synced: bool,
    peer_gr: Option<GracefulRestart>,
    next_hop_v6: Option<std::net::Ipv6Addr>,
    import: bgp::policy::Policy,
    export: bgp::policy::Policy,
    max_prefix: Option<bgp::policy::MaxPrefixState>,
    /// Families the peer sent End-of-RIB for in this session.
    eor: BTreeSet<Family>,
}

/// A restarting peer's routes kept through its restart (RFC 4724 receiving speaker).
struct Stale {
    prefixes: BTreeSet<IpNet>,
    /// When they are purged: the peer's restart time after it went down; once it is
    /// back, our stale time (unless End-of-RIB comes first).
    deadline: Instant,
}

async fn table_task(
    sp: SpeakerConfig,
    mut rx: mpsc::UnboundedReceiver<TableCmd>,
    routes_tx: watch::Sender<Arc<Routes>>,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
) {
    let mut originated: BTreeSet<IpNet> = BTreeSet::new();
    // Adj-RIB-In per peer; attributes are interned, so routes sharing them share memory.
    let mut adj_in: HashMap<IpAddr, BTreeMap<IpNet, Arc<PathAttrs>>> = HashMap::new();
    let mut interner = Interner::default();
    // Loc-RIB: each prefix's best path (its source peer and attributes) and the next
    // hops of its ECMP group (what `routes` publishes).
    let mut loc: BTreeMap<IpNet, (IpAddr, bool, Arc<PathAttrs>)> = BTreeMap::new();
    let mut routes: Routes = Routes::new();
    let mut routes_pending = false;
    let mut last_publish = Instant::now();
    let mut sessions: HashMap<IpAddr, Session> = HashMap::new();
    // Who a peer is, for best path: kept while its routes are (also when stale).
    let mut peer_info: HashMap<IpAddr, (Ipv4Addr, bool)> = HashMap::new();
    let mut stale: HashMap<IpAddr, Stale> = HashMap::new();
    loop {
        let next_purge = stale
            .values()
            .map(|s| s.deadline)
            .chain(routes_pending.then(|| last_publish + PUBLISH_EVERY))
            .min();
        let first = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => Some(c),
                None => return,
            },
            _ = async {
                match next_purge {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        // Prefixes whose paths changed in this burst, and originated prefixes that did.
        let mut dirty: BTreeSet<IpNet> = BTreeSet::new();
        let mut orig_dirty: BTreeSet<IpNet> = BTreeSet::new();
        // Stale routes whose time is up go.
        let now = Instant::now();
        let expired: Vec<IpAddr> = stale
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            if let Some(st) = stale.remove(&addr) {
                tracing::info!(
                    "{addr}: graceful restart over, purging {} stale routes",
                    st.prefixes.len()
                );
                if let Some(rib) = adj_in.get_mut(&addr) {
                    for p in &st.prefixes {
                        rib.remove(p);
                    }
                    let count = rib.len() as u64;
                    set_status(&status, addr, |s| {
                        s.prefixes_received = count;
                        s.stale_routes = 0;
                    });
                }
                dirty.extend(st.prefixes.iter().copied());
                if !sessions.contains_key(&addr) {
                    if let Some(rib) = adj_in.remove(&addr) {
                        dirty.extend(rib.into_keys());
                    }
                    peer_info.remove(&addr);
                }
            }
        }
        // Coalesce what is queued: one route computation per burst.
        let mut batch: Vec<TableCmd> = first.into_iter().collect();
        while let Ok(c) = rx.try_recv() {
            batch.push(c);
        }
        for cmd in batch {
            match cmd {
                TableCmd::PeerUp {
                    addr,
                    out,
                    ctx,
                    local,
                    ebgp,
                    router_id,
                    peer_gr,
                    next_hop_v6,
                    policy,
                    ebgp_requires_policy,
                } => {
                    // A restarted peer: its stale routes wait for its End-of-RIB, unless
                    // it no longer does graceful restart or lost its forwarding state.
                    let keep_stale = stale.contains_key(&addr)
                        && peer_gr
                            .as_ref()
                            .is_some_and(|g| g.families.iter().any(|(_, f)| *f));
                    match stale.get_mut(&addr) {
                        Some(st) if keep_stale => {
                            st.deadline = Instant::now()
                                + sp.graceful_restart
                                    .as_ref()
                                    .map_or(Duration::ZERO, |g| g.stale_time);
                        }
                        _ => {
                            stale.remove(&addr);
                            let rib = adj_in.entry(addr).or_default();
                            dirty.extend(std::mem::take(rib).into_keys());
                            set_status(&status, addr, |s| s.stale_routes = 0);
                        }
                    }
                    peer_info.insert(addr, (router_id, ebgp));
                    sessions.insert(
                        addr,
                        Session {
                            peer: addr,
                            out,
                            ctx,
                            local,
                            ebgp,
                            adj_out: BTreeMap::new(),
                            synced: false,
                            peer_gr,
                            next_hop_v6,
                            eor: BTreeSet::new(),
                            max_prefix: policy.max_prefix.map(bgp::policy::MaxPrefixState::new),
                            import: policy
                                .effective_import(ebgp, !ebgp_requires_policy)
                                .into_owned(),
                            export: policy
                                .effective_export(ebgp, !ebgp_requires_policy)
                                .into_owned(),
                        },
                    );
                }
                TableCmd::PeerDown { addr, graceful } => {
                    let gr = sessions.remove(&addr).and_then(|s| s.peer_gr);
                    match gr {
                        Some(g) if graceful => {
                            // Receiving speaker: keep the routes (and forwarding) as
                            // stale for the peer's restart time.
                            let prefixes: BTreeSet<IpNet> = adj_in
                                .get(&addr)
                                .map(|m| m.keys().copied().collect())
                                .unwrap_or_default();
                            tracing::info!(
                                "{addr}: session lost, keeping {} routes through its restart ({} s)",
                                prefixes.len(),
                                g.restart_time
                            );
                            let n = prefixes.len() as u64;
                            stale.insert(
                                addr,
                                Stale {
                                    prefixes,
                                    deadline: Instant::now()
                                        + Duration::from_secs(u64::from(g.restart_time)),
                                },
                            );
                            set_status(&status, addr, |s| s.stale_routes = n);
                        }
                        _ => {
                            stale.remove(&addr);
                            peer_info.remove(&addr);
                            if let Some(rib) = adj_in.remove(&addr) {
                                dirty.extend(rib.into_keys());
                            }
                        }
                    }
                }
                TableCmd::Update { addr, update } => {
                    // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored.
                    let ebgp = sessions.get(&addr).is_some_and(|s| s.ebgp);
                    let Some(rib) = adj_in.get_mut(&addr) else {
                        continue;
                    };
                    if let Some(fam) = update.is_end_of_rib() {
                        // The peer's table for this family is complete: what is still
                        // stale from before its restart is gone.
                        if let Some(st) = stale.get_mut(&addr) {
                            let old: Vec<IpNet> = st
                                .prefixes
                                .iter()
                                .filter(|p| Family::of(p) == fam)
                                .copied()
                                .collect();
                            for p in &old {
                                st.prefixes.remove(p);
                                rib.remove(p);
                            }
                            dirty.extend(old.iter().copied());
                            let left = st.prefixes.len() as u64;
                            if left == 0 {
                                stale.remove(&addr);
                            }
                            set_status(&status, addr, |s| s.stale_routes = left);
                        }
                        if let Some(sess) = sessions.get_mut(&addr) {
                            sess.eor.insert(fam);
                            let all = sess.ctx.families.iter().all(|f| sess.eor.contains(f));
                            set_status(&status, addr, |s| s.eor_received = all);
                        }
                    }
                    let st = stale.get_mut(&addr);
                    let mut refreshed: Vec<IpNet> = Vec::new();
                    for (_, nlris) in &update.withdrawn {
                        for n in nlris {
                            rib.remove(&n.prefix);
                            refreshed.push(n.prefix);
                        }
                    }
                    for (_, nlris) in &update.announced {
                        refreshed.extend(nlris.iter().map(|n| n.prefix));
                    }
                    if let Some(st) = st {
                        for p in &refreshed {
                            st.prefixes.remove(p);
                        }
                        let left = st.prefixes.len() as u64;
                        set_status(&status, addr, |s| s.stale_routes = left);
                    }
                    if let (Some(attrs), false) = (
                        &update.attrs,
                        matches!(update.outcome, UpdateOutcome::TreatAsWithdraw(_)),
                    ) {
                        // RFC 4271 §9.1.2: a path through our own AS is a loop; it
                        // replaces (withdraws) what the peer sent before and is not used.
                        let looped = attrs.as_path.contains(sp.asn);
                        for (_, nlris) in &update.announced {
                            for n in nlris {
                                if looped {
                                    rib.remove(&n.prefix);
                                    continue;
                                }
                                let mut a = attrs.clone();
                                if ebgp {
                                    a.local_pref = None;
                                }
                                if n.prefix.addr().is_ipv4()
                                    && update.classic_next_hop.is_some()
                                    && matches!(a.next_hop, Some(NextHop::V6 { .. }))
                                {
                                    a.next_hop = update.classic_next_hop.map(NextHop::V4);
                                }
                                // Import policy: a rejected route is as if withdrawn.
                                let verdict = match sessions.get(&addr) {
                                    Some(sess) => bgp::policy::apply(
                                        &sess.import,
                                        &bgp::policy::RouteContext {
                                            prefix: n.prefix,
                                            attrs: &a,
                                            neighbor: addr,
                                            ebgp,
                                            local_as: sp.asn,
                                            local_addr: sess.local,
                                        },
                                    ),
                                    None => bgp::policy::Verdict::Reject,
                                };
                                match verdict {
                                    bgp::policy::Verdict::Accept(a) => {
                                        rib.insert(n.prefix, interner.intern(a));
                                    }
                                    bgp::policy::Verdict::Reject => {
                                        rib.remove(&n.prefix);
                                    }
                                }
                            }
                        }
                    }
                    dirty.extend(refreshed.iter().copied());
                    let count = rib.len() as u64;
                    set_status(&status, addr, |s| s.prefixes_received = count);
                    if let Some(sess) = sessions.get_mut(&addr)
                        && let Some(mp) = sess.max_prefix.as_mut()
                    {
                        match mp.on_accept(count as usize) {
                            bgp::policy::MaxPrefixDecision::Ok => {}
                            bgp::policy::MaxPrefixDecision::Warn => {
                                tracing::warn!(
                                    "{addr}: {count} prefixes, over its max-prefix limit"
                                );
                            }
                            bgp::policy::MaxPrefixDecision::Exceeded { restart_after } => {
                                tracing::warn!(
                                    "{addr}: {count} prefixes, over its max-prefix limit: closing the session"
                                );
                                set_status(&status, addr, |s| {
                                    s.last_error =
                                        Some(format!("max-prefix exceeded ({count} prefixes)"));
                                });
                                // RFC 4486: Cease / Maximum Number of Prefixes Reached.
                                let _ = sess.out.send(SessionOut::Reset {
                                    cease_subcode: 1,
                                    hold: restart_after
                                        .unwrap_or(Duration::from_secs(365 * 24 * 3600)),
                                });
                            }
                        }
                    }
                }
                TableCmd::Refresh { addr } => {
                    if let Some(s) = sessions.get_mut(&addr) {
                        // Send everything again (RFC 2918): forget what was sent.
                        s.adj_out.clear();
                        s.synced = false;
                    }
                }
                TableCmd::Originate(p) => {
                    orig_dirty.extend(p.iter().copied());
                    originated.extend(p);
                }
                TableCmd::Withdraw(p) => {
                    for x in p {
                        originated.remove(&x);
                        orig_dirty.insert(x);
                    }
                }
                TableCmd::AdjIn { addr, reply } => {
                    let v = adj_in
                        .get(&addr)
                        .map(|m| {
                            m.iter()
                                .map(|(p, a)| (*p, a.next_hop.map(|n| n.addr())))
                                .collect()
                        })
                        .unwrap_or_default();
                    let _ = reply.send(v);
                }
                TableCmd::Originated { reply } => {
                    let _ = reply.send(originated.iter().copied().collect());
                }
            }
        }
        // Best paths of the prefixes that changed (and only those).
        let mut routes_changed = false;
        for p in &dirty {
            let mut just: Vec<Path> = Vec::new();
            let mut arcs: Vec<&Arc<PathAttrs>> = Vec::new();
            for (peer, rib) in &adj_in {
                let (Some(a), Some((router_id, ebgp))) = (rib.get(p), peer_info.get(peer).copied())
                else {
                    continue;
                };
                just.push(Path {
                    source: Source {
                        peer: Some(*peer),
                        router_id,
                        ebgp,
                    },
                    attrs: (**a).clone(),
                });
                arcs.push(a);
            }
            let chosen = select::select(&just, sp.max_paths).and_then(|(best, hops)| {
                let i = just.iter().position(|x| std::ptr::eq(x, best))?;
                Some((i, hops))
            });
            match chosen {
                Some((i, hops)) if !hops.is_empty() => {
                    let src = &just[i].source;
                    loc.insert(
                        *p,
                        (
                            src.peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                            src.ebgp,
                            arcs[i].clone(),
                        ),
                    );
                    if routes.get(p) != Some(&hops) {
                        routes.insert(*p, hops);
                        routes_changed = true;
                    }
                }
                _ => {
                    loc.remove(p);
                    routes_changed |= routes.remove(p).is_some();
                }
            }
        }
        // Publishing copies the whole route map: while UPDATEs keep pouring in, at most
        // every 100 ms; as soon as the queue is empty, at once.
        routes_pending |= routes_changed;
        if routes_pending && (rx.is_empty() || last_publish.elapsed() >= PUBLISH_EVERY) {
            routes_tx.send_replace(Arc::new(routes.clone()));
            routes_pending = false;
            last_publish = Instant::now();
        }
        // Adj-RIB-Out: what changed goes to every session; a session not synced yet
        // (new or refreshed) gets everything.
        for (addr, s) in sessions.iter_mut() {
            let msgs = if s.synced {
                let mut changed: BTreeSet<IpNet> = orig_dirty.clone();
                if sp.export_learned {
                    changed.extend(dirty.iter().copied());
                }
                if changed.is_empty() {
                    continue;
                }
                export(&sp, &originated, &loc, &mut interner, s, changed)
            } else {
                let mut all: BTreeSet<IpNet> = originated.clone();
                if sp.export_learned {
                    all.extend(loc.keys().copied());
                }
                all.extend(s.adj_out.keys().copied());
                let mut m = export(&sp, &originated, &loc, &mut interner, s, all);
                for f in &s.ctx.families {
                    m.push(Message::Update(Update::end_of_rib(*f)));
                }
                s.synced = true;
                m
            };
            let n = s.adj_out.len() as u64;
            set_status(&status, *addr, |st| st.prefixes_advertised = n);
            if !msgs.is_empty() {
                let _ = s.out.send(SessionOut::Msgs(msgs));
            }
        }
        interner.maybe_gc();
    }
}

/// How often the learned routes are published while UPDATEs keep coming.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Hash-consed path attributes: routes with equal attributes share one allocation.
#[derive(Default)]
struct Interner {
    set: std::collections::HashSet<Arc<PathAttrs>>,
    gc_at: usize,
}

impl Interner {
    fn intern(&mut self, a: PathAttrs) -> Arc<PathAttrs> {
        if let Some(x) = self.set.get(&a) {
            return x.clone();
        }
        let x = Arc::new(a);
        self.set.insert(x.clone());
        x
    }

    /// Drops attributes no route uses any more (when the set has doubled since the
    /// last sweep).
    fn maybe_gc(&mut self) {
        if self.set.len() > self.gc_at.max(1024) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.gc_at = self.set.len() * 2;
        }
    }
}

/// The UPDATEs that bring a session's Adj-RIB-Out up to date for `prefixes`: what we
/// originate, and with `export_learned` the best paths learned from other peers (never
/// back to the peer they came from, never from one iBGP peer to another), each through
/// the session's export policy. Prefixes sharing attributes go out together.
fn export(
    sp: &SpeakerConfig,
    originated: &BTreeSet<IpNet>,
    loc: &BTreeMap<IpNet, (IpAddr, bool, Arc<PathAttrs>)>,
    interner: &mut Interner,
    s: &mut Session,
    prefixes: BTreeSet<IpNet>,
) -> Vec<Message> {
    // Our next hop per family on this session, if we can send that family at all.
    let v4_nh: Option<NextHop> = match s.local {
        IpAddr::V4(a) => Some(NextHop::V4(a)),
        IpAddr::V6(a)
            if s.ctx
                .next_hop_allowed(Family::IPV4_UNICAST, bgp::types::Afi::Ipv6) =>
        {
            Some(NextHop::V6 {
                global: a,
                link_local: None,
            })
        }
        IpAddr::V6(_) => None,
    };
    let v6_nh: Option<NextHop> = match s.local {
        IpAddr::V6(a) => Some(NextHop::V6 {
            global: a,
            link_local: None,
        }),
        IpAddr::V4(_) if s.ctx.families.contains(&Family::IPV6_UNICAST) => {
            s.next_hop_v6.map(|global| NextHop::V6 {
                global,
                link_local: None,
            })
        }
        IpAddr::V4(_) => None,
    };
    let mut withdraw: Vec<IpNet> = Vec::new();
    let mut announce: HashMap<Arc<PathAttrs>, Vec<IpNet>> = HashMap::new();
    for p in prefixes {
        let nh = if p.addr().is_ipv4() { v4_nh } else { v6_nh };
        let candidate: Option<PathAttrs> = nh.and_then(|nh| {
            if originated.contains(&p) {
                Some(PathAttrs {
                    origin: Origin::Igp,
                    as_path: if s.ebgp {
                        AsPath::from_sequence([sp.asn])
                    } else {
                        AsPath::default()
                    },
                    next_hop: Some(nh),
                    local_pref: (!s.ebgp).then_some(100),
                    communities: sp.communities.clone(),
                    large_communities: sp.large_communities.clone(),
                    ..Default::default()
                })
            } else if sp.export_learned {
                let (src, src_ebgp, a) = loc.get(&p)?;
                if *src == s.peer || (!*src_ebgp && !s.ebgp) {
                    return None;
                }
                let mut a = (**a).clone();
                if s.ebgp {
                    a.as_path.prepend(sp.asn, 1);
                    a.local_pref = None;
                    a.med = None;
                } else {
                    a.local_pref = Some(a.local_pref.unwrap_or(100));
                }
                a.next_hop = Some(nh);
                Some(a)
            } else {
                None
            }
        });
        let exported = candidate.and_then(|a| {
            match bgp::policy::apply(
                &s.export,
                &bgp::policy::RouteContext {
                    prefix: p,
                    attrs: &a,
                    neighbor: s.peer,
                    ebgp: s.ebgp,
                    local_as: sp.asn,
                    local_addr: s.local,
                },
            ) {
                bgp::policy::Verdict::Accept(mut a) => {
                    a.normalize();
                    Some(a)
                }
                bgp::policy::Verdict::Reject => None,
            }
        });
        match exported {
            Some(a) => {
                let a = interner.intern(a);
                if s.adj_out.get(&p) != Some(&a) {
                    s.adj_out.insert(p, a.clone());
                    announce.entry(a).or_default().push(p);
                }
            }
            None => {
                if s.adj_out.remove(&p).is_some() {
                    withdraw.push(p);
                }
            }
        }
    }
    let mut msgs = Vec::new();
    for (family, chunk) in chunks(&withdraw) {
        msgs.push(Message::Update(Update::withdraw(family, chunk)));
    }
    for (attrs, prefixes) in announce {
        for (family, chunk) in chunks(&prefixes) {
            msgs.push(Message::Update(Update::announce(
                family,
                chunk,
                (*attrs).clone(),
            )));
        }
    }
    msgs
}

/// Prefixes in groups small enough for one 4096-octet UPDATE.
fn chunks(prefixes: &[IpNet]) -> Vec<(Family, Vec<Nlri>)> {
    let mut out = Vec::new();
    for fam in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let of: Vec<Nlri> = prefixes
            .iter()
            .filter(|p| Family::of(p) == fam)
            .map(|p| Nlri::new(*p))
            .collect();
        for c in of.chunks(400) {
            out.push((fam, c.to_vec()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))
    }

    fn attrs(path: &[u32], next_hop: IpAddr, local_pref: Option<u32>) -> PathAttrs {
        PathAttrs {
            as_path: AsPath::from_sequence(path.iter().copied()),
            next_hop: Some(NextHop::from(next_hop)),
            local_pref,
            ..Default::default()
        }
    }

    /// Waits until the table has handled everything sent before (two queries in a
    /// row: the second runs in a later batch, after the first's routes are published).
    async fn settle(table: &mpsc::UnboundedSender<TableCmd>) {
        for _ in 0..2 {
            let (tx, rx) = oneshot::channel();
            table.send(TableCmd::Originated { reply: tx }).unwrap();
            rx.await.unwrap();
        }
    }

    #[tokio::test]
    async fn local_pref_counts_from_internal_peers_only() {
        let sp = SpeakerConfig {
            asn: 65201,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            listen: None,
            max_paths: 4,
            export_learned: false,
            communities: Vec::new(),
            large_communities: Vec::new(),
            graceful_restart: None,
        };
        let (table, rx) = mpsc::unbounded_channel();
        let (routes_tx, routes) = watch::channel(Arc::new(Routes::new()));
        let task = tokio::spawn(table_task(
            sp,
            rx,
            routes_tx,
            Arc::new(Mutex::new(BTreeMap::new())),
        ));
        let (out, _out_rx) = mpsc::unbounded_channel();
        for (i, ebgp) in [(1, true), (2, true), (3, false)] {
            table
                .send(TableCmd::PeerUp {
                    addr: peer(i),
                    out: out.clone(),
                    ctx: SessionCtx::default(),
                    local: peer(100),
                    ebgp,
                    router_id: Ipv4Addr::new(1, 1, 1, i),
                    peer_gr: None,
                    next_hop_v6: None,
                    policy: Box::default(),
                    ebgp_requires_policy: false,
                })
                .unwrap();
        }
        let prefix: IpNet = "20.0.0.0/24".parse().unwrap();
        let announce = |i: u8, a: PathAttrs| TableCmd::Update {
            addr: peer(i),
            update: Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(prefix)], a),
        };
        // Two external peers: the longer path carries LOCAL_PREF 200, which an external
        // peer must not be able to set; the shorter path wins.
        table
            .send(announce(1, attrs(&[65001], peer(1), None)))
            .unwrap();
        table
            .send(announce(2, attrs(&[65002, 65003], peer(2), Some(200))))
            .unwrap();
        settle(&table).await;
        assert_eq!(routes.borrow()[&prefix], vec![peer(1)]);
        // An internal peer's LOCAL_PREF is honored, even with a longer path.
        table
            .send(announce(
                3,
                attrs(&[65004, 65005, 65006], peer(3), Some(300)),
            ))
            .unwrap();
        settle(&table).await;
        assert_eq!(routes.borrow()[&prefix], vec![peer(3)]);
        // A path through our own AS (a ToR echoing our route back) is a loop: it replaces
        // the peer's earlier path and is never selected.
        let other: IpNet = "20.1.1.1/32".parse().unwrap();
        let announce_other = |a: PathAttrs| TableCmd::Update {
            addr: peer(1),
            update: Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(other)], a),
        };
        table
            .send(announce_other(attrs(&[65001], peer(1), None)))
            .unwrap();
        settle(&table).await;
        assert!(routes.borrow().contains_key(&other));
        table
            .send(announce_other(attrs(&[65001, 65201], peer(1), None)))
            .unwrap();
        settle(&table).await;
        assert!(
            !routes.borrow().contains_key(&other),
            "{:?}",
            routes.borrow()
        );
        task.abort();
    }
}
