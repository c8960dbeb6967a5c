//! One neighbor's session task: the FSM over a TCP connection.
//!
//! Connection collisions follow [`bgp::fsm::collision`]. The primary link starts the
//! session; a connection the peer opens while the primary is in Connect or Active goes to
//! the primary. A connection the other way while the primary's is in OpenSent, OpenConfirm
//! or Established gets a second link (its own FSM, no automatic restart, its own `Conn`);
//! whenever a link accepts the peer's OPEN while the other exists, [`collision::resolve`]
//! picks the loser, which gets `OpenCollisionDump` (Cease/7; the KEEPALIVE accepting the
//! OPEN is not sent first). A third connection is refused. Only the link that reaches
//! Established sends `PeerUp`, with its own connection's generation.
//!
//! Two differences from the recipe of the helper's documentation:
//! - When the primary takes the peer's connection in Connect, our own attempt is not
//!   abandoned: if both ends dial at once each would otherwise drop the connection the
//!   other kept. If it completes while the primary is past Active, it becomes the second
//!   link (an outbound one) and the collision is resolved as above.
//! - When the primary loses (a collision, or its connection while the second link lives),
//!   the second link becomes the primary and the old primary FSM is parked (stopped
//!   first if it was in Connect/Active). When the promoted link ends, the parked FSM comes
//!   back and restarts the session after its idle hold time (damping kept), so the session
//!   keeps restarting automatically although the promoted FSM does not.

use super::*;
use bgp::fsm::collision::{self, Direction};
use bytes::Bytes;
use std::collections::VecDeque;
use tokio::net::tcp::OwnedReadHalf;

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

/// Our capabilities other than graceful restart, for every OPEN to this peer.
fn base_capabilities(p: &PeerConfig, sp: &SpeakerConfig, families: &[Family]) -> Vec<Capability> {
    let mut caps: Vec<Capability> = wire::ctx::basic_capabilities(sp.asn, families);
    // RFC 8654: UPDATEs up to 65535 octets when the peer takes them too.
    caps.push(Capability::ExtendedMessage);
    if p.addr.is_ipv6() {
        // RFC 8950: IPv4 routes with our IPv6 next hop on an IPv6-only session.
        caps.push(Capability::ExtendedNextHop(vec![wire::ExtNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: bgp::types::Afi::Ipv6,
        }]));
    }
    let add_path = match (p.add_path_receive, p.add_path_send) {
        (true, true) => Some(wire::AddPathMode::Both),
        (true, false) => Some(wire::AddPathMode::Receive),
        (false, true) => Some(wire::AddPathMode::Send),
        (false, false) => None,
    };
    if let Some(mode) = add_path {
        caps.push(Capability::AddPath(
            families.iter().map(|f| (*f, mode)).collect(),
        ));
    }
    caps
}

/// What a session negotiated, for `show` commands: one short name per capability
/// both sides use.
fn capability_names(ctx: &SessionCtx, gr: Option<&GracefulRestart>) -> Vec<String> {
    let mut v: Vec<String> = ctx.families.iter().map(|f| f.to_string()).collect();
    if ctx.four_octet_as {
        v.push("4-octet-as".into());
    }
    if ctx.route_refresh {
        v.push("route-refresh".into());
    }
    if ctx.enhanced_route_refresh {
        v.push("enhanced-route-refresh".into());
    }
    if ctx.extended_messages {
        v.push("extended-messages".into());
    }
    for (f, afi) in &ctx.ext_next_hop {
        v.push(format!("extended-next-hop {f} over {afi:?}").to_lowercase());
    }
    for f in &ctx.add_path_rx {
        v.push(format!("add-path receive {f}"));
    }
    for f in &ctx.add_path_tx {
        v.push(format!("add-path send {f}"));
    }
    if let Some(g) = gr {
        v.push(format!(
            "graceful-restart (peer restart time {} s{})",
            g.restart_time,
            if g.notification { ", notification" } else { "" }
        ));
    }
    v
}

type Connecting = tokio::task::JoinHandle<Result<TcpStream, transport::TransportError>>;

/// One TCP connection to the peer with its own FSM. A neighbor has at most two at a time
/// (RFC 4271 §6.8, see [`bgp::fsm::collision`]): the primary, and while the primary is
/// past Active with a connection we opened, a secondary for a connection the peer opened.
struct Link {
    fsm: Fsm,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    timers: HashMap<Timer, Instant>,
    buf: BytesMut,
    ctx: SessionCtx,
    local_open: Option<Open>,
    remote_open: Option<Open>,
    /// The peer's GR capability of this link's session, when both sides sent one.
    gr_negotiated: Option<GracefulRestart>,
    /// Steps to take in order: FSM inputs, and UPDATEs / refreshes that reach the table
    /// only if this link is Established once its FSM has seen them.
    inputs: VecDeque<Step>,
}

impl Link {
    fn new(fsm: Fsm) -> Link {
        Link {
            fsm,
            conn: None,
            connecting: None,
            timers: HashMap::new(),
            buf: BytesMut::with_capacity(65536),
            ctx: SessionCtx::default(),
            local_open: None,
            remote_open: None,
            gr_negotiated: None,
            inputs: VecDeque::new(),
        }
    }

    /// Who opened the current connection.
    fn dir(&self) -> Option<Direction> {
        self.conn.as_ref().map(|c| c.dir)
    }

    fn push(&mut self, i: Input) {
        self.inputs.push_back(Step::Input(i));
    }
}

/// What happened on a link's sockets.
enum LinkEvent {
    Connected(Result<Result<TcpStream, transport::TransportError>, tokio::task::JoinError>),
    Read(std::io::Result<usize>),
}

/// Waits for the link's connection attempt to finish or its connection to have data.
async fn link_event(l: &mut Link) -> LinkEvent {
    let Link {
        connecting,
        conn,
        buf,
        ..
    } = l;
    tokio::select! {
        r = async { match connecting.as_mut() { Some(t) => t.await, None => std::future::pending().await } } => LinkEvent::Connected(r),
        n = async { match conn.as_mut() { Some(c) => c.rd.read_buf(buf).await, None => std::future::pending().await } } => LinkEvent::Read(n),
    }
}

/// A timer that is due.
#[derive(Clone, Copy)]
enum Due {
    Primary(Timer),
    Secondary(Timer),
    /// The restart of a parked FSM (see `Session::settle`).
    Restart,
}

/// What the links of one neighbor share.
struct Session {
    p: PeerConfig,
    sp: SpeakerConfig,
    families: Vec<Family>,
    caps: Vec<Capability>,
    /// The next session is the first after our restart: its OPEN has the R bit.
    restarting: bool,
    /// The connection whose session the table has (PeerUp sent, PeerDown not yet).
    /// Connections are numbered process-wide (`next_conn_id`) so that what was meant for
    /// an earlier one (UPDATEs made for it, its writer's failure, its PeerDown) never
    /// touches a later one, also across a neighbor's replacement.
    up_conn: Option<u64>,
    werr_tx: mpsc::UnboundedSender<u64>,
    /// Writers of connections being closed (their NOTIFICATION still going out).
    closing: Vec<tokio::task::JoinHandle<()>>,
    table: TableTx,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
    out_tx: mpsc::UnboundedSender<SessionOut>,
    /// After a reset by the table (max-prefix), the session stays down until then.
    paused_until: Option<Instant>,
    /// An UPDATE waits for room in the table's queue: inputs stop until there is.
    blocked: bool,
    /// Stopped (removed or replaced): the neighbor's status is no longer ours to write.
    retired: bool,
    /// BFD coupling (RFC 5882), see `PeerConfig::bfd`: the BFD task, the BFD session of
    /// the Established BGP session (dropping it ends the BFD session), and the cause to
    /// report when BFD ended the BGP session.
    bfd: Option<crate::bfd::Bfd>,
    bfd_session: Option<crate::bfd::BfdSession>,
    bfd_cause: Option<String>,
}

impl Session {
    /// Our GR capability; the R bit only in the first session after a restart.
    fn gr_cap(&self, restarting: bool) -> Option<Capability> {
        self.sp.graceful_restart.as_ref().map(|g| {
            Capability::GracefulRestart(GracefulRestart {
                restart_state: restarting,
                notification: true,
                restart_time: g.restart_time.min(4095),
                families: self.families.iter().map(|f| (*f, true)).collect(),
            })
        })
    }

    fn set_status(&self, f: impl FnOnce(&mut PeerStatus)) {
        // A stopped neighbor's entry is gone, or belongs to the neighbor that replaced it.
        if !self.retired {
            set_status(&self.status, self.p.addr, f);
        }
    }

    fn new_conn(&mut self, stream: TcpStream, dir: Direction) -> std::io::Result<Conn> {
        Conn::new(
            stream,
            next_conn_id(),
            dir,
            self.p.addr,
            &self.werr_tx,
            &self.table,
        )
    }

    fn close(&mut self, c: Conn) {
        self.closing.retain(|w| !w.is_finished());
        self.closing.push(c.close());
    }

    /// Feeds both links their pending inputs until none are left, resolving collisions,
    /// dropping a secondary that lost, promoting it when the primary lost, and restarting
    /// the session when a promoted link ends.
    fn settle(
        &mut self,
        primary: &mut Link,
        secondary: &mut Option<Link>,
        parked: &mut Option<Fsm>,
        restart_at: &mut Option<Instant>,
        stopping: bool,
    ) {
        loop {
            self.run(primary, secondary.as_mut());
            if let Some(sec) = secondary.as_mut() {
                self.run(sec, Some(primary));
            }
            // A secondary that is Idle lost a collision (or its connection): it goes. Its
            // connection was closed by its DropConnection.
            if secondary
                .as_ref()
                .is_some_and(|l| l.fsm.state() == State::Idle)
            {
                *secondary = None;
            }
            // The primary lost (a collision, or its connection) while the secondary lives:
            // the secondary becomes the primary. The old primary, when it is the one that
            // restarts the session automatically, is parked until the new one ends.
            if let Some(sec) = secondary.take_if(|_| {
                matches!(
                    primary.fsm.state(),
                    State::Idle | State::Connect | State::Active
                )
            }) {
                let mut old = std::mem::replace(primary, sec);
                if old.fsm.state() != State::Idle {
                    // No connection of its own (Connect/Active): stop its retries.
                    old.push(Input::ManualStop);
                    self.run(&mut old, None);
                }
                if let Some(c) = old.conn.take() {
                    self.close(c);
                }
                if let Some(t) = old.connecting.take() {
                    t.abort();
                }
                if old.fsm.config().automatic_restart {
                    *parked = Some(old.fsm);
                }
                tracing::debug!("{}: the peer's connection took over", self.p.addr);
            }
            // A promoted link ended: the parked FSM restarts the session after its idle
            // hold time, as it would have had it not been parked.
            if secondary.is_none()
                && primary.fsm.state() == State::Idle
                && !primary.fsm.config().automatic_restart
                && !stopping
                && let Some(f) = parked.take()
            {
                let mut at = Instant::now() + f.idle_hold_time();
                if let Some(until) = self.paused_until.take() {
                    at = at.max(until);
                }
                *primary = Link::new(f);
                *restart_at = Some(at);
            }
            if self.blocked
                || (primary.inputs.is_empty()
                    && secondary.as_ref().is_none_or(|l| l.inputs.is_empty()))
            {
                break;
            }
        }
        // The most advanced of the two is the neighbor's state.
        let state = std::iter::once(&*primary)
            .chain(secondary.as_ref())
            .map(|l| l.fsm.state())
            .max()
            .unwrap_or(State::Idle);
        self.set_status(|s| s.state = state.to_string());
    }

    /// Feeds one link its pending inputs; `other` is the neighbor's other link.
    fn run(&mut self, l: &mut Link, mut other: Option<&mut Link>) {
        while let Some(step) = l.inputs.pop_front() {
            let input = match step {
                Step::Input(i) => i,
                Step::Update(u) => {
                    if l.fsm.state() == State::Established
                        && let Err(u) = self.table.try_update(self.p.addr, u)
                    {
                        // The table is behind: wait for it (see `settle`).
                        l.inputs.push_front(Step::Update(*u));
                        self.blocked = true;
                        return;
                    }
                    self.set_status(|s| s.updates_in += 1);
                    l.inputs.push_front(Step::Input(Input::UpdateMsg));
                    continue;
                }
                Step::Refresh(family) => {
                    if l.fsm.state() == State::Established {
                        let _ = self.table.send(TableCmd::Refresh {
                            addr: self.p.addr,
                            family,
                        });
                    }
                    continue;
                }
            };
            let had_open = l.fsm.negotiated().is_some();
            let mut outs = l.fsm.process(input);
            let accepted_open = !had_open && l.fsm.negotiated().is_some();
            // The peer's OPEN on a new connection while our session with it is up and
            // it does graceful restart: it restarted without our noticing (RFC 4724
            // §4.2). The old session ends as if its connection was lost — the peer's
            // routes are kept as stale — and the new one goes on.
            if accepted_open
                && let Some(o) = other.as_deref_mut()
                && o.fsm.state() == State::Established
                && o.gr_negotiated.is_some()
                && o.conn
                    .as_ref()
                    .zip(l.conn.as_ref())
                    .is_some_and(|(old, new)| old.generation < new.generation)
            {
                tracing::info!(
                    "{}: new session from the peer while ours is up: it restarted; the old one ends as a restart",
                    self.p.addr
                );
                if let Some(c) = o.conn.take() {
                    c.abandon();
                }
                for out in o.fsm.process(Input::TcpConnectionFails) {
                    self.apply(o, out);
                }
                self.after_input(o);
            } else if accepted_open
                && let Some(o) = other.as_deref_mut()
                && let Some(loser) = self.collision(l, o)
            {
                if Some(loser) == l.dir() {
                    // The KEEPALIVE accepting the OPEN would only precede the Cease.
                    outs.retain(|o| *o != Output::SendKeepalive);
                    outs.extend(l.fsm.process(Input::OpenCollisionDump));
                } else {
                    for out in o.fsm.process(Input::OpenCollisionDump) {
                        self.apply(o, out);
                    }
                    self.after_input(o);
                }
            }
            for out in outs {
                self.apply(l, out);
            }
            self.after_input(l);
        }
    }

    /// The direction of the connection to close when `l` has just accepted the peer's
    /// OPEN while `o` exists, if any (RFC 4271 §6.8).
    fn collision(&self, l: &Link, o: &Link) -> Option<Direction> {
        let (Some(opened), Some(other), Some(n)) = (l.dir(), o.dir(), l.fsm.negotiated()) else {
            return None;
        };
        if opened == other {
            return None;
        }
        let speakers = collision::Speakers {
            local_id: self.sp.router_id,
            local_as: self.sp.asn,
            remote_id: n.peer.bgp_id,
            remote_as: n.peer.asn,
        };
        match collision::resolve(
            opened,
            o.fsm.state(),
            collision::Policy::default(),
            &speakers,
        ) {
            Ok(collision::Verdict::Dump(d)) => {
                tracing::info!(
                    "{}: connection collision, closing the connection {} opened",
                    self.p.addr,
                    if d == Direction::Outbound {
                        "we"
                    } else {
                        "the peer"
                    }
                );
                Some(d)
            }
            Ok(collision::Verdict::NoCollision | collision::Verdict::NotYet) => None,
            Err(e) => {
                tracing::warn!("{}: {e}; closing the newer connection", self.p.addr);
                Some(opened)
            }
        }
    }

    /// Bookkeeping after an input: an Idle link forgets its session.
    fn after_input(&mut self, l: &mut Link) {
        if l.fsm.state() == State::Idle {
            l.ctx = SessionCtx::default();
            l.remote_open = None;
            if let Some(e) = l.fsm.last_error() {
                // BFD ended the session: say so rather than "ConnectionFailed".
                let e = self.bfd_cause.take().unwrap_or_else(|| down_text(e));
                self.set_status(|s| s.last_error = Some(e));
            }
        }
    }

    /// Carries out one FSM output of link `l`.
    fn apply(&mut self, l: &mut Link, out: Output) {
        let addr = self.p.addr;
        match out {
            Output::InitiateConnection => {
                if l.conn.is_none() && l.connecting.is_none() {
                    let (to, opts) = (SocketAddr::new(addr, self.p.port), self.p.transport.clone());
                    l.connecting =
                        Some(tokio::spawn(
                            async move { transport::connect(to, &opts).await },
                        ));
                }
            }
            Output::DropConnection => {
                if let Some(c) = l.conn.take() {
                    self.close(c);
                }
                if let Some(t) = l.connecting.take() {
                    t.abort();
                }
                l.buf.clear();
            }
            Output::SendOpen(info) => {
                let open = Open::new(info.asn, info.hold_time, info.bgp_id, self.caps.clone());
                l.local_open = Some(open.clone());
                if let Err(e) = send(&l.conn, &[Message::Open(open)], &l.ctx) {
                    tracing::debug!("{addr}: sending OPEN: {e}");
                    l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
                }
            }
            Output::SendKeepalive => {
                if send(&l.conn, &[Message::Keepalive], &l.ctx).is_err() {
                    l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
                }
            }
            Output::SendNotification(n) => {
                let _ = send(&l.conn, &[Message::Notification(to_wire(&n))], &l.ctx);
                self.set_status(|s| s.last_error = Some(format!("sent {n}")));
            }
            Output::StartTimer(t, d) => {
                let mut at = Instant::now() + d;
                if t == Timer::IdleHold
                    && let Some(until) = self.paused_until.take()
                {
                    at = at.max(until);
                }
                l.timers.insert(t, at);
            }
            Output::StopTimer(t) => {
                l.timers.remove(&t);
            }
            Output::StateChanged { .. } => {
                self.set_status(|s| s.transitions += 1);
            }
            Output::SessionUp(neg) => {
                if let (Some(lo), Some(ro)) = (&l.local_open, &l.remote_open) {
                    l.ctx = SessionCtx::negotiate(lo, ro);
                }
                let peer_gr = self
                    .sp
                    .graceful_restart
                    .as_ref()
                    .and(l.remote_open.as_ref())
                    .and_then(|o| o.graceful_restart().cloned());
                let caps = capability_names(&l.ctx, peer_gr.as_ref());
                self.set_status(|s| {
                    s.established_at = Some(now_secs());
                    s.last_error = None;
                    s.capabilities = caps;
                });
                // Only the link that reaches Established talks to the table, with its
                // own connection's number.
                if let Some(c) = l.conn.as_ref() {
                    self.up_conn = Some(c.generation);
                    let _ = self.table.send(TableCmd::PeerUp {
                        addr,
                        conn: c.generation,
                        out: self.out_tx.clone(),
                        ctx: l.ctx.clone(),
                        local: c.local,
                        ebgp: !neg.internal,
                        router_id: neg.peer.bgp_id,
                        peer_gr: peer_gr.clone(),
                        next_hop_v6: self.p.next_hop_v6,
                        policy: Box::new(self.p.policy.clone()),
                        ebgp_requires_policy: self.p.ebgp_requires_policy,
                    });
                }
                l.gr_negotiated = peer_gr;
                // BFD (RFC 5882 §4.3): started once BGP is Established, from the
                // session's local address; a BFD session that never comes Up does not
                // hold BGP back.
                if let (Some(b), Some(cfg), Some(c)) = (&self.bfd, self.p.bfd, l.conn.as_ref()) {
                    let started = b.session(addr, c.local, cfg, self.p.bfd_auth.clone());
                    let st = match &started {
                        Ok(_) => "down".to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                    self.bfd_session = started.ok();
                    self.set_status(|s| s.bfd = Some(st));
                }
                // Later sessions are not restarts any more: clear the R bit.
                if self.restarting {
                    self.restarting = false;
                    self.caps
                        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
                    if let Some(c) = self.gr_cap(false) {
                        self.caps.push(c);
                    }
                }
            }
            Output::SessionDown { reason } => {
                let graceful = l
                    .gr_negotiated
                    .take()
                    .is_some_and(|g| gr_covers(&reason, g.notification));
                let _ = self.table.send(TableCmd::PeerDown {
                    addr,
                    conn: self.up_conn.take(),
                    graceful,
                });
                // The BFD session ends with the BGP session.
                if self.bfd_session.take().is_some() {
                    self.set_status(|s| s.bfd = Some("idle".into()));
                }
                let reason = self.bfd_cause.clone().unwrap_or_else(|| down_text(&reason));
                self.set_status(|s| {
                    s.eor_received = false;
                    s.flaps += 1;
                    s.established_at = None;
                    s.prefixes_received = 0;
                    s.prefixes_advertised = 0;
                    s.capabilities.clear();
                    s.last_error = Some(reason);
                });
            }
            Output::ProcessUpdate | Output::ReleaseResources => {}
        }
    }

    /// Our connection attempt for `l` finished. When `l` took a connection the peer
    /// opened meanwhile, ours may become the second link (`spare`).
    fn on_connected(
        &mut self,
        l: &mut Link,
        spare: Option<&mut Option<Link>>,
        r: Result<Result<TcpStream, transport::TransportError>, tokio::task::JoinError>,
    ) {
        l.connecting = None;
        if l.conn.is_some() {
            if let (Ok(Ok(stream)), Some(spare)) = (r, spare) {
                self.second_link(l, spare, stream, Direction::Outbound);
            }
            return;
        }
        match r {
            Ok(Ok(stream)) => match self.new_conn(stream, Direction::Outbound) {
                Ok(c) => {
                    l.conn = Some(c);
                    l.push(Input::TcpCrAcked);
                }
                Err(_) => l.push(Input::TcpConnectionFails),
            },
            Ok(Err(e)) => {
                self.set_status(|s| s.last_error = Some(e.to_string()));
                l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
            }
            Err(_) => l.push(Input::TcpConnectionFails),
        }
    }

    /// A connection the peer opened, handed over by the listener.
    fn on_incoming(&mut self, stream: TcpStream, primary: &mut Link, secondary: &mut Option<Link>) {
        let _ = transport::configure_accepted(
            &stream,
            SocketAddr::new(self.p.addr, 179),
            &self.p.transport,
        );
        if primary.conn.is_none() && primary.fsm.accepts_connection() {
            // Connect or Active: the primary takes it. Our own attempt, if one is under
            // way, goes on: when both ends dial at once the peer may be keeping that one
            // (it becomes the second link, and collision resolution picks).
            match self.new_conn(stream, Direction::Inbound) {
                Ok(c) => {
                    primary.conn = Some(c);
                    primary.push(Input::TcpConnectionConfirmed);
                }
                Err(_) => primary.push(Input::TcpConnectionFails),
            }
        } else {
            self.second_link(primary, secondary, stream, Direction::Inbound);
        }
    }

    /// A connection in direction `dir` while the primary has one: it gets a second FSM
    /// when the primary's goes the other way and is past Active (a possible collision,
    /// decided when an OPEN is accepted), or when the primary is Established with
    /// graceful restart (the peer may have restarted); otherwise (the primary Idle or
    /// still opening, a third connection, two the same way) it is refused.
    fn second_link(
        &mut self,
        primary: &Link,
        secondary: &mut Option<Link>,
        stream: TcpStream,
        dir: Direction,
    ) {
        let collides = secondary.is_none()
            && primary.dir() == Some(dir.other())
            && matches!(
                primary.fsm.state(),
                State::OpenSent | State::OpenConfirm | State::Established
            );
        // A peer doing graceful restart may come back on a new connection (either way)
        // before we noticed the old one die: heard out, its OPEN ends the old session
        // as a restart (see `run`).
        let restarted = secondary.is_none()
            && primary.fsm.state() == State::Established
            && primary.gr_negotiated.is_some();
        if !collides && !restarted {
            tracing::debug!("{}: {dir:?} connection refused", self.p.addr);
            return;
        }
        let mut cfg = primary.fsm.config().clone();
        cfg.automatic_restart = false;
        let Ok(fsm) = Fsm::new(cfg) else { return };
        let Ok(c) = self.new_conn(stream, dir) else {
            return;
        };
        let mut l = Link::new(fsm);
        l.conn = Some(c);
        match dir {
            Direction::Inbound => {
                l.push(Input::ManualStartPassive);
                l.push(Input::TcpConnectionConfirmed);
            }
            Direction::Outbound => {
                // An active start: its InitiateConnection finds the connection there.
                l.push(Input::ManualStart);
                l.push(Input::TcpCrAcked);
            }
        }
        *secondary = Some(l);
    }

    /// Data (or the end) on `l`'s connection.
    fn on_read(&mut self, l: &mut Link, n: std::io::Result<usize>) {
        match n {
            Ok(0) | Err(_) => {
                if let Some(c) = l.conn.take() {
                    c.abandon();
                }
                l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
            }
            Ok(_) => {
                // Cut and decode every whole message; inputs are processed in order.
                loop {
                    match wire::frame_len(&l.buf, l.ctx.max_len) {
                        Ok(Some(len)) => {
                            let frame = l.buf.split_to(len);
                            let d = decode(&frame, &l.ctx);
                            // Later frames of this read decode with what the OPENs
                            // negotiated (4-octet AS, ADD-PATH, lengths).
                            if let (Decoded::Open(o), Some(lo)) = (&d, &l.local_open) {
                                l.ctx = SessionCtx::negotiate(lo, o);
                            }
                            match d {
                                Decoded::Input(i) => l.push(i),
                                Decoded::Open(open) => {
                                    let info = OpenInfo {
                                        version: 4,
                                        asn: open.asn(),
                                        hold_time: open.hold_time,
                                        bgp_id: open.bgp_id,
                                    };
                                    l.remote_open = Some(open);
                                    l.push(if self.p.accepts_as(info.asn) {
                                        Input::BgpOpen(info)
                                    } else {
                                        // An AS outside `allowed_as` (a range's).
                                        Input::BgpOpenMsgErr(NotificationData::open_error(
                                            wire::OpenError::BadPeerAs,
                                        ))
                                    });
                                }
                                Decoded::Update(u) => l.inputs.push_back(Step::Update(u)),
                                Decoded::Refresh(f) => l.inputs.push_back(Step::Refresh(f)),
                                Decoded::Ignore => {}
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            l.push(Input::BgpHeaderErr(notif_data(&e.notification())));
                            l.buf.clear();
                            break;
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn session_task(
    p: PeerConfig,
    sp: SpeakerConfig,
    fsm: Fsm,
    mut ctl: mpsc::UnboundedReceiver<PeerCtl>,
    table: TableTx,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
    bfd: Option<crate::bfd::Bfd>,
) {
    let mut bfd_rx = bfd.as_ref().map(|b| b.subscribe());
    let families = match p.addr {
        IpAddr::V4(_) => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        IpAddr::V6(_) => vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST],
    };
    let (werr_tx, mut werr_rx) = mpsc::unbounded_channel::<u64>();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<SessionOut>();
    let start = if p.passive {
        Input::ManualStartPassive
    } else {
        Input::ManualStart
    };
    let mut s = Session {
        caps: base_capabilities(&p, &sp, &families),
        restarting: sp.graceful_restart.as_ref().is_some_and(|g| g.restarting),
        p,
        sp,
        families,
        up_conn: None,
        werr_tx,
        closing: Vec::new(),
        table,
        status,
        out_tx,
        paused_until: None,
        blocked: false,
        retired: false,
        bfd,
        bfd_session: None,
        bfd_cause: None,
    };
    if let Some(c) = s.gr_cap(s.restarting) {
        s.caps.push(c);
    }
    let mut primary = Link::new(fsm);
    let mut secondary: Option<Link> = None;
    // The FSM that restarts the session automatically, while a promoted secondary runs.
    let mut parked: Option<Fsm> = None;
    let mut restart_at: Option<Instant> = None;
    let mut stopping = false;
    primary.push(start);

    loop {
        s.settle(
            &mut primary,
            &mut secondary,
            &mut parked,
            &mut restart_at,
            stopping,
        );
        if stopping {
            for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                if let Some(c) = l.conn.take() {
                    s.close(c);
                }
            }
            for w in std::mem::take(&mut s.closing) {
                let _ = tokio::time::timeout(CLOSE_WAIT, w).await;
            }
            let _ = s.table.send(TableCmd::PeerDown {
                addr: s.p.addr,
                conn: s.up_conn.take(),
                graceful: false,
            });
            return;
        }

        let next_timer = primary
            .timers
            .iter()
            .map(|(t, at)| (*at, Due::Primary(*t)))
            .chain(
                secondary
                    .iter()
                    .flat_map(|l| l.timers.iter().map(|(t, at)| (*at, Due::Secondary(*t)))),
            )
            .chain(restart_at.map(|at| (at, Due::Restart)))
            .min_by_key(|(at, _)| *at);
        tokio::select! {
            c = ctl.recv() => match c {
                Some(PeerCtl::Incoming(stream)) => s.on_incoming(stream, &mut primary, &mut secondary),
                Some(PeerCtl::Abandon) => {
                    // Drop the connections as a crash would; the table goes with us.
                    for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                        if let Some(t) = l.connecting.take() {
                            t.abort();
                        }
                        if let Some(c) = l.conn.take() {
                            c.abandon();
                        }
                    }
                    return;
                }
                Some(PeerCtl::Stop) | None => {
                    stopping = true;
                    s.retired = true;
                    // Ahead of an UPDATE waiting for the table: the Cease goes now.
                    s.blocked = false;
                    for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                        l.inputs.push_front(Step::Input(Input::ManualStop));
                    }
                }
            },
            // An UPDATE waits for room in the table: nothing more is read meanwhile
            // (TCP pushes back on the peer), everything else goes on.
            _ = s.table.room(), if s.blocked => s.blocked = false,
            e = link_event(&mut primary), if !s.blocked => match e {
                LinkEvent::Connected(r) => s.on_connected(&mut primary, Some(&mut secondary), r),
                LinkEvent::Read(n) => s.on_read(&mut primary, n),
            },
            e = async { match secondary.as_mut() { Some(l) => link_event(l).await, None => std::future::pending().await } }, if !s.blocked => {
                if let Some(l) = secondary.as_mut() {
                    match e {
                        LinkEvent::Connected(r) => s.on_connected(l, None, r),
                        LinkEvent::Read(n) => s.on_read(l, n),
                    }
                }
            }
            // BFD (RFC 5882 §4.3): our BFD session going from Up to Down, unless the
            // peer turned it off (AdminDown), is the connection lost: the Established
            // link gets TcpConnectionFails at once.
            ev = crate::bfd::next_event(&mut bfd_rx) => {
                if s.bfd_session.as_ref().is_some_and(|b| b.key() == (ev.peer, ev.local)) {
                    s.set_status(|st| st.bfd = Some(ev.to.to_string()));
                    if ev.is_failure() {
                        for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                            if l.fsm.state() == State::Established {
                                tracing::warn!("{}: BFD down ({}); closing the session", s.p.addr, ev.diag);
                                s.bfd_cause = Some(format!("BFD down: {}", ev.diag));
                                l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
                            }
                        }
                    }
                }
            }
            Some(g) = werr_rx.recv() => {
                for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                    if l.conn.as_ref().is_some_and(|c| c.generation == g) {
                        if let Some(c) = l.conn.take() {
                            c.abandon();
                        }
                        l.inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    }
                }
            }
            Some(out) = out_rx.recv() => {
                match out {
                    SessionOut::Updates { conn: g, bytes, updates } => {
                        // UPDATEs made for another connection are dropped.
                        if let Some(c) = std::iter::once(&primary)
                            .chain(secondary.as_ref())
                            .filter(|l| l.fsm.state() == State::Established)
                            .filter_map(|l| l.conn.as_ref())
                            .find(|c| c.generation == g)
                        {
                            c.write(bytes, true);
                            s.set_status(|st| st.updates_out += updates);
                        }
                    }
                    SessionOut::Reset { cease_subcode, hold } => {
                        s.paused_until = Some(Instant::now() + hold);
                        // Both links: a second one must not take over during the pause.
                        for l in std::iter::once(&mut primary).chain(secondary.as_mut()) {
                            l.push(Input::AutomaticStop { cease_subcode });
                        }
                    }
                }
            }
            _ = async { match next_timer { Some((at, _)) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } } => {
                match next_timer.map(|(_, d)| d) {
                    Some(Due::Primary(t)) => {
                        primary.timers.remove(&t);
                        primary.push(Input::TimerExpired(t));
                    }
                    Some(Due::Secondary(t)) => {
                        if let Some(l) = secondary.as_mut() {
                            l.timers.remove(&t);
                            l.push(Input::TimerExpired(t));
                        }
                    }
                    Some(Due::Restart) => {
                        restart_at = None;
                        // The parked FSM's pending automatic restart, or a new start
                        // when it had to be stopped.
                        primary.push(if primary.fsm.is_running(Timer::IdleHold) {
                            Input::TimerExpired(Timer::IdleHold)
                        } else {
                            Input::AutomaticStart
                        });
                    }
                    None => {}
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
    /// A route refresh request for this family.
    Refresh(Family),
}

#[allow(clippy::large_enum_variant)]
enum Decoded {
    Input(Input),
    Open(Open),
    Update(Update),
    Refresh(Family),
    /// Nothing to act on.
    Ignore,
}

fn decode(frame: &[u8], ctx: &SessionCtx) -> Decoded {
    match Message::decode(frame, ctx) {
        Ok(Message::Open(o)) => Decoded::Open(o),
        Ok(Message::Update(u)) => Decoded::Update(u),
        Ok(Message::Keepalive) => Decoded::Input(Input::KeepAliveMsg),
        Ok(Message::Notification(n)) => Decoded::Input(Input::NotifMsg(notif_data(&n))),
        // A request (RFC 2918); the enhanced route refresh markers (RFC 7313) that
        // frame the peer's own re-advertisement ask nothing of us.
        Ok(Message::RouteRefresh(r)) => match r.subtype {
            wire::RefreshSubtype::Request => Decoded::Refresh(r.family),
            _ => Decoded::Ignore,
        },
        Err(e) => {
            let n = e.notification();
            let input = notif_data(&n);
            Decoded::Input(match n.code {
                ErrorCode::MessageHeader(_) => Input::BgpHeaderErr(input),
                ErrorCode::Open(_) => Input::BgpOpenMsgErr(input),
                _ => Input::UpdateMsgErr(input),
            })
        }
    }
}

/// Queues FSM messages (OPEN, KEEPALIVE, NOTIFICATION) on the connection.
fn send(conn: &Option<Conn>, msgs: &[Message], ctx: &SessionCtx) -> std::io::Result<()> {
    let Some(c) = conn.as_ref() else {
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
    c.write(out.freeze(), false);
    Ok(())
}

/// How long a closing connection may take to send what is queued (its NOTIFICATION).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

enum Write {
    /// Bytes to send; `ack`: tell the table once they are written (its flow control).
    Bytes(Bytes, bool),
    /// Send what is queued, then close.
    Close,
}

/// A session's TCP connection. We read here; a writer task of its own writes, so a peer
/// slow to read never keeps us from reading (two speakers each blocked writing to the
/// other would wait forever).
struct Conn {
    rd: OwnedReadHalf,
    local: IpAddr,
    generation: u64,
    /// Who opened it.
    dir: Direction,
    wr: mpsc::UnboundedSender<Write>,
    writer: tokio::task::JoinHandle<()>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        generation: u64,
        dir: Direction,
        peer: IpAddr,
        failed: &mpsc::UnboundedSender<u64>,
        table: &TableTx,
    ) -> std::io::Result<Conn> {
        let local = stream.local_addr()?.ip();
        let (rd, mut w) = stream.into_split();
        let (wr, mut rx) = mpsc::unbounded_channel::<Write>();
        let (failed, table) = (failed.clone(), table.clone());
        let writer = tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Write::Bytes(b, ack) => {
                        if w.write_all(&b).await.is_err() {
                            let _ = failed.send(generation);
                            return;
                        }
                        if ack {
                            let _ = table.send(TableCmd::Written {
                                addr: peer,
                                conn: generation,
                                bytes: b.len(),
                            });
                        }
                    }
                    Write::Close => break,
                }
            }
            let _ = w.shutdown().await;
        });
        Ok(Conn {
            rd,
            local,
            generation,
            dir,
            wr,
            writer,
        })
    }

    fn write(&self, bytes: Bytes, ack: bool) {
        let _ = self.wr.send(Write::Bytes(bytes, ack));
    }

    /// Sends what is queued and closes; gives up after [`CLOSE_WAIT`].
    fn close(self) -> tokio::task::JoinHandle<()> {
        let _ = self.wr.send(Write::Close);
        let mut writer = self.writer;
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
                writer.abort();
            }
        })
    }

    /// Drops the connection at once, as a crash would.
    fn abandon(self) {
        self.writer.abort();
    }
}

/// Why a session went down, as the status shows it: the max-prefix stop in words an
/// operator looks for, anything else as the FSM names it.
fn down_text(reason: &fsm::DownReason) -> String {
    match reason {
        fsm::DownReason::AutomaticStop { cease_subcode }
            if *cease_subcode == wire::CeaseError::MaxPrefixesReached.code() =>
        {
            "max-prefix exceeded: sent Cease / Maximum Number of Prefixes Reached".to_string()
        }
        _ => format!("{reason:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_say_what_both_sides_use() {
        let ctx = SessionCtx {
            four_octet_as: true,
            add_path_rx: vec![Family::IPV4_UNICAST],
            extended_messages: true,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            route_refresh: true,
            ..SessionCtx::default()
        };
        let gr = GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: vec![(Family::IPV4_UNICAST, true)],
        };
        assert_eq!(
            capability_names(&ctx, Some(&gr)),
            vec![
                "ipv4-unicast",
                "ipv6-unicast",
                "4-octet-as",
                "route-refresh",
                "extended-messages",
                "add-path receive ipv4-unicast",
                "graceful-restart (peer restart time 120 s, notification)",
            ]
        );
        assert_eq!(
            capability_names(&SessionCtx::default(), None),
            vec!["ipv4-unicast"]
        );
    }
}
