//! The BFD driver (RFC 5880 asynchronous mode, single hop per RFC 5881): one tokio task
//! runs every [`bgp::bfd::Session`] of the process.
//!
//! Sockets: one receive socket per address family bound to the BFD control port (3784;
//! [`BfdOptions::port`] changes it for tests), with IP_PKTINFO/IPV6_RECVPKTINFO to learn
//! the local address a packet came to and IP_RECVTTL/IPV6_RECVHOPLIMIT to discard
//! everything that did not arrive with TTL/hop limit 255 (RFC 5881 §5). Each session
//! sends from its own socket bound to its local address and a source port in
//! 49152–65535, kept for the session's life, with TTL/hop limit 255 (RFC 5881 §4).
//!
//! Demultiplexing (RFC 5880 §6.3, RFC 5881 §3): a packet with a non-zero Your
//! Discriminator goes to the session with that local discriminator; otherwise to the
//! session keyed by (source address, destination address).
//!
//! Ingress: TTL 255 proves one hop, not which link. A packet counts for a session only
//! when it arrived (IP_PKTINFO/IPV6_PKTINFO interface index) on an interface that holds
//! the session's local address — the link the peer is reached over in single hop
//! ([`bgp::bfd::check_ingress`]). The interfaces are looked up when the session is added
//! and again, at most once a second, when a packet arrives elsewhere (addresses move).
//! Without this a container on the host (one hop, TTL 255, the peer's address forged)
//! could take a session down with the right discriminators.
//!
//! Authentication (RFC 5880 §6.7): [`Bfd::add_with_auth`] gives a session a key; the pure
//! session signs, verifies and keeps the sequence numbers.
//!
//! API: [`Bfd::start`], [`Bfd::add`] (or reconfigure), [`Bfd::remove`] (the peer is told
//! AdminDown once, so that it does not take the removal for a failure, RFC 5882 §3.2),
//! [`Bfd::watch`] (a map of every session's [`SessionStatus`]) and [`Bfd::subscribe`]
//! ([`BfdEvent`] per state change). Dropping the last handle stops the task without
//! telling anyone (like a crash); [`Bfd::shutdown`] says AdminDown first.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use bgp::bfd::{self, ControlPacket, Discard, Input, Output, Session};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

pub use bgp::bfd::{AuthKey, AuthType, BfdConfig, BfdState, Diag};

/// A session is keyed by (peer address, local address).
pub type SessionKey = (IpAddr, IpAddr);

/// Where the driver listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdOptions {
    /// UDP port of the receive sockets and the destination port of what we send.
    pub port: u16,
    /// Address of the IPv4 receive socket (None: no IPv4).
    pub bind_v4: Option<Ipv4Addr>,
    /// Address of the IPv6 receive socket (None: no IPv6). Failing to bind it is only
    /// logged when IPv4 works (hosts without IPv6).
    pub bind_v6: Option<Ipv6Addr>,
}

impl Default for BfdOptions {
    fn default() -> Self {
        BfdOptions {
            port: bfd::CONTROL_PORT,
            bind_v4: Some(Ipv4Addr::UNSPECIFIED),
            bind_v6: Some(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// One session as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: BfdState,
    /// bfd.LocalDiag: why the state last changed.
    pub diag: Diag,
    pub remote_state: BfdState,
    pub local_discr: u32,
    pub remote_discr: u32,
    pub config: BfdConfig,
    /// The session has been Up at least once.
    pub was_up: bool,
    /// The authentication type in use (None: none).
    pub auth: Option<AuthType>,
    /// Packets for this session that arrived on another interface (forged), so far.
    pub wrong_interface: u64,
    /// Packets for this session that failed authentication, so far.
    pub auth_failures: u64,
}

/// A state change of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdEvent {
    pub peer: IpAddr,
    pub local: IpAddr,
    pub from: BfdState,
    pub to: BfdState,
    pub diag: Diag,
    /// The peer's state as last received (AdminDown: the peer turned the session off,
    /// which RFC 5882 §3.2 says is not a failure).
    pub remote_state: BfdState,
}

impl BfdEvent {
    /// A path failure: the session went from Up to Down, and not because the peer
    /// turned BFD off administratively (RFC 5882 §3.2).
    pub fn is_failure(&self) -> bool {
        self.from == BfdState::Up
            && self.to == BfdState::Down
            && self.remote_state != BfdState::AdminDown
    }
}

#[derive(Debug)]
enum Cmd {
    Add {
        key: SessionKey,
        cfg: BfdConfig,
        auth: Option<AuthKey>,
        socket: std::net::UdpSocket,
    },
    Remove(SessionKey),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Inner {
    cmd: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<BTreeMap<SessionKey, SessionStatus>>,
    events: broadcast::Sender<BfdEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Handle to the BFD task. Clones share the task; it stops when the last clone drops.
#[derive(Debug, Clone)]
pub struct Bfd {
    inner: Arc<Inner>,
}

impl Bfd {
    /// Binds the receive sockets and starts the task. Must run inside a tokio runtime.
    pub fn start(opts: BfdOptions) -> io::Result<Bfd> {
        let v4 = opts
            .bind_v4
            .map(|a| rx_socket(SocketAddr::V4(SocketAddrV4::new(a, opts.port))))
            .transpose()?;
        let v6 = match opts.bind_v6 {
            None => None,
            Some(a) => match rx_socket(SocketAddr::V6(SocketAddrV6::new(a, opts.port, 0, 0))) {
                Ok(s) => Some(s),
                Err(e) if v4.is_some() => {
                    tracing::warn!("BFD: no IPv6 receive socket on port {}: {e}", opts.port);
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(BTreeMap::new());
        let (events, _) = broadcast::channel(256);
        let task = Task {
            port: opts.port,
            v4,
            v6,
            epoch: Instant::now(),
            sessions: HashMap::new(),
            by_discr: HashMap::new(),
            status: status_tx,
            events: events.clone(),
            rng: seed(),
        };
        let task = tokio::spawn(task.run(cmd_rx));
        Ok(Bfd {
            inner: Arc::new(Inner {
                cmd: cmd_tx,
                status: status_rx,
                events,
                task,
            }),
        })
    }

    /// Starts a session with `peer` from `local`, or changes the parameters of the
    /// existing one (a Poll Sequence tells the peer). The send socket is opened here, so
    /// a local address that does not exist fails at once.
    pub fn add(&self, peer: IpAddr, local: IpAddr, cfg: BfdConfig) -> io::Result<()> {
        self.add_with_auth(peer, local, cfg, None)
    }

    /// [`Bfd::add`] with authentication `auth` (None: none). Changing the key of an
    /// existing session takes effect at once (RFC 5880 §6.7.1).
    pub fn add_with_auth(
        &self,
        peer: IpAddr,
        local: IpAddr,
        cfg: BfdConfig,
        auth: Option<AuthKey>,
    ) -> io::Result<()> {
        cfg.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if peer.is_ipv4() != local.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "peer and local address families differ",
            ));
        }
        let socket = tx_socket(local)?;
        self.inner
            .cmd
            .send(Cmd::Add {
                key: (peer, local),
                cfg,
                auth,
                socket,
            })
            .map_err(|_| io::Error::other("BFD task has stopped"))
    }

    /// Like [`Bfd::add`], returning a guard that removes the session when dropped.
    pub fn session(
        &self,
        peer: IpAddr,
        local: IpAddr,
        cfg: BfdConfig,
        auth: Option<AuthKey>,
    ) -> io::Result<BfdSession> {
        self.add_with_auth(peer, local, cfg, auth)?;
        Ok(BfdSession {
            bfd: self.clone(),
            key: (peer, local),
        })
    }

    /// Ends a session, telling the peer AdminDown once.
    pub fn remove(&self, peer: IpAddr, local: IpAddr) {
        let _ = self.inner.cmd.send(Cmd::Remove((peer, local)));
    }

    /// The status of every session, updated on each state change.
    pub fn watch(&self) -> watch::Receiver<BTreeMap<SessionKey, SessionStatus>> {
        self.inner.status.clone()
    }

    /// The status of one session.
    pub fn status(&self, peer: IpAddr, local: IpAddr) -> Option<SessionStatus> {
        self.inner.status.borrow().get(&(peer, local)).cloned()
    }

    /// Every state change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BfdEvent> {
        self.inner.events.subscribe()
    }

    /// Stops the task at once, telling no one (as a crash would: peers detect it).
    /// Every clone of this handle is left without a task.
    pub fn abort(&self) {
        self.inner.task.abort();
    }

    /// Tells every peer AdminDown and stops the task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.cmd.send(Cmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// A session that ends (AdminDown to the peer) when this guard drops ([`Bfd::session`]).
#[derive(Debug)]
pub struct BfdSession {
    bfd: Bfd,
    key: SessionKey,
}

impl BfdSession {
    pub fn key(&self) -> SessionKey {
        self.key
    }
}

impl Drop for BfdSession {
    fn drop(&mut self) {
        self.bfd.remove(self.key.0, self.key.1);
    }
}

/// The next event of `rx`, skipping over a lag; never resolves without a receiver or
/// once the task is gone.
pub async fn next_event(rx: &mut Option<broadcast::Receiver<BfdEvent>>) -> BfdEvent {
    if let Some(r) = rx.as_mut() {
        loop {
            match r.recv().await {
                Ok(e) => return e,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }
    std::future::pending().await
}

fn rx_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    match addr {
        SocketAddr::V4(_) => {
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4PacketInfo, &true)?;
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvTtl, &true)?;
        }
        SocketAddr::V6(_) => {
            s.set_only_v6(true)?;
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvPacketInfo, &true)?;
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)?;
        }
    }
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// A send socket for one session: bound to `local` and a free port in 49152–65535,
/// TTL/hop limit 255.
fn tx_socket(local: IpAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(local, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    match local {
        IpAddr::V4(_) => s.set_ttl_v4(255)?,
        IpAddr::V6(_) => s.set_unicast_hops_v6(255)?,
    }
    s.set_nonblocking(true)?;
    const FIRST: u16 = 49152;
    let span = u32::from(u16::MAX - FIRST) + 1;
    let start = (seed() as u32) % span;
    let mut last = None;
    for i in 0..span.min(512) {
        let port = FIRST + u16::try_from((start + i) % span).unwrap_or(0);
        match s.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => return Ok(s.into()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free BFD source port")))
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let x = t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    let mut s = x | 1;
    xorshift(&mut s);
    s
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// One received datagram.
struct Datagram {
    len: usize,
    src: SocketAddr,
    dst: Option<IpAddr>,
    /// The interface it arrived on.
    ifindex: Option<u32>,
    ttl: Option<i32>,
}

fn recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let mut dst = None;
    let mut ifindex = None;
    let mut ttl = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4PacketInfo(i) => {
                dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr))));
                ifindex = u32::try_from(i.ipi_ifindex).ok();
            }
            ControlMessageOwned::Ipv6PacketInfo(i) => {
                dst = Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)));
                ifindex = Some(i.ipi6_ifindex);
            }
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => ttl = Some(t),
            _ => {}
        }
    }
    let src = msg.address.and_then(|a: SockaddrStorage| {
        a.as_sockaddr_in()
            .map(|s| SocketAddr::V4(SocketAddrV4::from(*s)))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|s| SocketAddr::V6(SocketAddrV6::from(*s)))
            })
    });
    let src = src.ok_or_else(|| io::Error::other("datagram without a source address"))?;
    Ok(Datagram {
        len: msg.bytes,
        src,
        dst,
        ifindex,
        ttl,
    })
}

/// The interfaces holding `local`: those with exactly that address, else those whose
/// prefix contains it (127.0.0.2 on `lo`'s 127.0.0.1/8). Empty when none does, which
/// [`bgp::bfd::check_ingress`] treats as "accept nothing".
fn interfaces_of(local: IpAddr) -> Vec<u32> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let ip_of = |a: &nix::sys::socket::SockaddrStorage| -> Option<IpAddr> {
        a.as_sockaddr_in()
            .map(|s| IpAddr::V4(s.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
    };
    let mut exact = Vec::new();
    let mut within = Vec::new();
    for i in addrs {
        let Some(addr) = i.address.as_ref().and_then(ip_of) else {
            continue;
        };
        let Ok(index) = nix::net::if_::if_nametoindex(i.interface_name.as_str()) else {
            continue;
        };
        if addr == local {
            exact.push(index);
        } else if let Some(mask) = i.netmask.as_ref().and_then(ip_of)
            && contains(addr, mask, local)
        {
            within.push(index);
        }
    }
    let mut found = if exact.is_empty() { within } else { exact };
    found.sort_unstable();
    found.dedup();
    found
}

fn contains(addr: IpAddr, mask: IpAddr, x: IpAddr) -> bool {
    match (addr, mask, x) {
        (IpAddr::V4(a), IpAddr::V4(m), IpAddr::V4(x)) => {
            u32::from(a) & u32::from(m) == u32::from(x) & u32::from(m)
        }
        (IpAddr::V6(a), IpAddr::V6(m), IpAddr::V6(x)) => {
            u128::from(a) & u128::from(m) == u128::from(x) & u128::from(m)
        }
        _ => false,
    }
}

struct Entry {
    session: Session,
    socket: UdpSocket,
    tx_at: Option<Duration>,
    detect_at: Option<Duration>,
    was_up: bool,
    /// The interfaces the session's packets must arrive on, and when they were looked up.
    interfaces: Vec<u32>,
    interfaces_at: Duration,
    wrong_interface: u64,
    auth_failures: u64,
    /// When the counters were last published (at most every 100 ms when they change,
    /// and with the next timer otherwise).
    published_at: Duration,
    /// The counters changed since they were last published.
    dirty: bool,
}

struct Task {
    port: u16,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    epoch: Instant,
    sessions: HashMap<SessionKey, Entry>,
    by_discr: HashMap<u32, SessionKey>,
    status: watch::Sender<BTreeMap<SessionKey, SessionStatus>>,
    events: broadcast::Sender<BfdEvent>,
    rng: u64,
}

async fn readable(sock: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<Datagram> {
    let Some(sock) = sock else {
        return std::future::pending().await;
    };
    loop {
        sock.readable().await?;
        match sock.try_io(Interest::READABLE, || recv(sock, buf)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

impl Task {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.sessions
            .values()
            .flat_map(|e| [e.tx_at, e.detect_at])
            .flatten()
            .min()
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut buf4 = vec![0u8; 512];
        let mut buf6 = vec![0u8; 512];
        loop {
            let deadline = self.next_deadline().map(|d| self.epoch + d);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(Cmd::Shutdown(done)) => {
                        let keys: Vec<_> = self.sessions.keys().copied().collect();
                        for k in keys {
                            self.remove(k);
                        }
                        let _ = done.send(());
                        return;
                    }
                    Some(Cmd::Add { key, cfg, auth, socket }) => self.add(key, cfg, auth, socket),
                    Some(Cmd::Remove(key)) => self.remove(key),
                },
                r = readable(self.v4.as_ref(), &mut buf4) => self.on_datagram(r, &buf4),
                r = readable(self.v6.as_ref(), &mut buf6) => self.on_datagram(r, &buf6),
                () = sleep => self.fire_timers(),
            }
        }
    }

    fn add(
        &mut self,
        key: SessionKey,
        cfg: BfdConfig,
        auth: Option<AuthKey>,
        socket: std::net::UdpSocket,
    ) {
        if let Some(e) = self.sessions.get_mut(&key) {
            let mut changed = false;
            if e.session.auth() != auth.as_ref() {
                e.session.set_auth(auth);
                changed = true;
            }
            if e.session.config() != cfg {
                self.input(key, Input::Configure(cfg));
                changed = true;
            }
            if changed {
                self.publish(key);
            }
            return;
        }
        let socket = match UdpSocket::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("BFD {} → {}: send socket: {e}", key.1, key.0);
                return;
            }
        };
        let discr = loop {
            let d = xorshift(&mut self.rng) as u32;
            if d != 0 && !self.by_discr.contains_key(&d) {
                break d;
            }
        };
        let Ok(session) = Session::new(discr, cfg) else {
            return; // validated in Bfd::add
        };
        let session = session.with_auth(auth, xorshift(&mut self.rng) as u32);
        let now = self.now();
        self.by_discr.insert(discr, key);
        self.sessions.insert(
            key,
            Entry {
                session,
                socket,
                tx_at: None,
                detect_at: None,
                was_up: false,
                interfaces: interfaces_of(key.1),
                interfaces_at: now,
                wrong_interface: 0,
                auth_failures: 0,
                published_at: Duration::ZERO,
                dirty: false,
            },
        );
        tracing::info!(peer = %key.0, local = %key.1, "BFD session added ({:?} × {})", cfg.desired_min_tx, cfg.detect_mult);
        self.input(key, Input::Start);
        self.publish(key);
    }

    fn remove(&mut self, key: SessionKey) {
        if self.sessions.contains_key(&key) {
            self.input(key, Input::AdminDown);
        }
        if let Some(e) = self.sessions.remove(&key) {
            self.by_discr.remove(&e.session.local_discr());
            self.status.send_modify(|m| {
                m.remove(&key);
            });
            tracing::info!(peer = %key.0, local = %key.1, "BFD session removed");
        }
    }

    fn on_datagram(&mut self, r: io::Result<Datagram>, buf: &[u8]) {
        let d = match r {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!("BFD receive: {e}");
                return;
            }
        };
        if d.ttl != Some(255) {
            tracing::debug!("BFD: dropped packet from {} with TTL {:?}", d.src, d.ttl);
            return;
        }
        let p = match ControlPacket::decode(&buf[..d.len]) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("BFD: bad packet from {}: {e}", d.src);
                return;
            }
        };
        if let Err(why) = bfd::check_received(&p) {
            tracing::debug!("BFD: discarded packet from {}: {why}", d.src);
            return;
        }
        let peer = canonical(d.src.ip());
        let key = if p.your_discr != 0 {
            self.by_discr.get(&p.your_discr).copied()
        } else {
            match d.dst.map(canonical) {
                Some(local) => Some((peer, local)).filter(|k| self.sessions.contains_key(k)),
                None => self.sessions.keys().find(|k| k.0 == peer).copied(),
            }
        };
        let Some(key) = key else {
            tracing::trace!(
                "BFD: no session for packet from {} (your discr {})",
                d.src,
                p.your_discr
            );
            return;
        };
        if key.0 != peer {
            tracing::debug!("BFD: packet for {key:?} came from {peer}; discarded");
            return;
        }
        if !self.ingress_ok(key, d.ifindex) {
            return;
        }
        self.input(key, Input::Received(p));
    }

    /// [`bfd::check_ingress`] for `key`, looking the interfaces up again (at most once a
    /// second) before discarding.
    fn ingress_ok(&mut self, key: SessionKey, arrived: Option<u32>) -> bool {
        let now = self.now();
        let Some(e) = self.sessions.get_mut(&key) else {
            return false;
        };
        let mut verdict = bfd::check_ingress(&e.interfaces, arrived);
        if verdict.is_err() && now.saturating_sub(e.interfaces_at) >= Duration::from_secs(1) {
            e.interfaces = interfaces_of(key.1);
            e.interfaces_at = now;
            verdict = bfd::check_ingress(&e.interfaces, arrived);
        }
        match verdict {
            Ok(()) => true,
            Err(why) => {
                e.wrong_interface += 1;
                tracing::debug!(peer = %key.0, local = %key.1, "BFD: discarded: {why} (expected {:?})", e.interfaces);
                self.publish_counters(key);
                false
            }
        }
    }

    /// Publishes the discard counters, at most every 100 ms per session.
    fn publish_counters(&mut self, key: SessionKey) {
        let now = self.now();
        if let Some(e) = self.sessions.get_mut(&key) {
            e.dirty = true;
            if e.published_at.is_zero()
                || now.saturating_sub(e.published_at) >= Duration::from_millis(100)
            {
                self.publish(key);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        let due: Vec<(SessionKey, bool, bool)> = self
            .sessions
            .iter()
            .map(|(k, e)| {
                (
                    *k,
                    e.tx_at.is_some_and(|t| t <= now),
                    e.detect_at.is_some_and(|t| t <= now),
                )
            })
            .filter(|(_, t, d)| *t || *d)
            .collect();
        let dirty: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, _)| *k)
            .collect();
        for key in dirty {
            self.publish(key);
        }
        for (key, tx, det) in due {
            if det {
                if let Some(e) = self.sessions.get_mut(&key) {
                    e.detect_at = None;
                }
                self.input(key, Input::DetectTimer);
            }
            if tx {
                if let Some(e) = self.sessions.get_mut(&key) {
                    e.tx_at = None;
                }
                self.input(key, Input::TxTimer);
            }
        }
    }

    /// Feeds one input to a session and carries out its outputs.
    fn input(&mut self, key: SessionKey, input: Input) {
        let now = self.now();
        let random = xorshift(&mut self.rng) as u32;
        let port = self.port;
        let Some(e) = self.sessions.get_mut(&key) else {
            return;
        };
        let out = e.session.process(input, now, random);
        let mut changed = false;
        let mut counted = false;
        for o in out {
            match o {
                Output::Send(p) => {
                    let bytes = p.encode();
                    if let Err(err) = e.socket.try_send_to(&bytes, SocketAddr::new(key.0, port)) {
                        tracing::debug!("BFD send to {}: {err}", key.0);
                    }
                }
                Output::ArmTx(t) => e.tx_at = Some(t),
                Output::StopTx => e.tx_at = None,
                Output::ArmDetect(t) => e.detect_at = Some(t),
                Output::StopDetect => e.detect_at = None,
                Output::Discarded(why) => {
                    if matches!(why, Discard::Auth(_)) {
                        e.auth_failures += 1;
                        counted = true;
                    }
                    tracing::debug!("BFD {}: discarded: {why}", key.0);
                }
                Output::StateChanged { from, to, diag } => {
                    changed = true;
                    if to == BfdState::Up {
                        e.was_up = true;
                    }
                    let remote_state = e.session.remote_state();
                    tracing::info!(peer = %key.0, local = %key.1, "BFD {from} → {to} ({diag})");
                    let _ = self.events.send(BfdEvent {
                        peer: key.0,
                        local: key.1,
                        from,
                        to,
                        diag,
                        remote_state,
                    });
                }
            }
        }
        if changed {
            self.publish(key);
        } else if counted {
            self.publish_counters(key);
        }
    }

    fn publish(&mut self, key: SessionKey) {
        let now = self.now();
        let Some(e) = self.sessions.get_mut(&key) else {
            return;
        };
        e.published_at = now.max(Duration::from_nanos(1));
        e.dirty = false;
        let st = SessionStatus {
            state: e.session.state(),
            diag: e.session.local_diag(),
            remote_state: e.session.remote_state(),
            local_discr: e.session.local_discr(),
            remote_discr: e.session.remote_discr(),
            config: e.session.config(),
            was_up: e.was_up,
            auth: e.session.auth().map(AuthKey::auth_type),
            wrong_interface: e.wrong_interface,
            auth_failures: e.auth_failures,
        };
        self.status.send_modify(|m| {
            m.insert(key, st);
        });
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        a => a,
    }
}

#[cfg(test)]
mod tests;
