//! The UDP + TCP DNS server around [`DnsTable`]; behaviour documented in [`super`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record as RR, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

use super::table::{Answer, Asker, DnsTable, QType};

/// TTL of our own answers: 0, so no cache pins one group member or a stale address.
pub const TTL: u32 = 0;
/// Default time to wait for each upstream resolver.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries (UDP) and connections (TCP) handled at once; more are dropped.
const MAX_INFLIGHT: usize = 256;
/// TCP connections one source may hold open; more are closed at once, so no single
/// source can take every connection slot.
pub const MAX_TCP_PER_SOURCE: usize = 8;
/// The largest UDP answer we offer to EDNS clients.
const EDNS_PAYLOAD: u16 = 1232;
/// Queries a second each source may send (token bucket refill rate)...
pub const RATE_PER_SEC: f64 = 50.0;
/// ...and its burst (bucket size). Queries over the limit are dropped.
pub const RATE_BURST: f64 = 100.0;
/// Sources whose buckets are remembered; beyond it new sources are dropped until
/// idle buckets (full again) are forgotten.
const MAX_SOURCES: usize = 4096;
/// Queries relayed upstream at once; more get SERVFAIL at once, so slow upstreams
/// cannot tie up the server.
pub const MAX_FORWARDS: usize = 32;
/// How long [`serve`] waits before trying a failed bind again.
const BIND_RETRY: Duration = Duration::from_secs(1);

/// A token bucket: `rate` tokens a second up to `burst`; each query takes one. Pure:
/// the time is an argument (any monotonic clock, as a duration since its origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(rate: f64, burst: f64, now: Duration) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes a token at time `now`; `false`: over the limit.
    pub fn take(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (its source has been quiet).
    pub fn is_full(&self, now: Duration) -> bool {
        let mut b = *self;
        b.refill(now);
        b.tokens >= b.burst
    }
}

/// What becomes of a query, decided before any lookup or forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// From a local container, within its rate: answer it (from the table or upstream).
    Serve(Asker),
    /// From anyone else: REFUSED, never forwarded.
    Refuse,
    /// Over the source's rate: no reply at all.
    Drop,
}

/// The admission of a query: `within_rate` from the source's [`TokenBucket`], `asker` the
/// local container that sent it (`None`: not one of ours).
pub fn admission(within_rate: bool, asker: Option<Asker>) -> Admission {
    match (within_rate, asker) {
        (false, _) => Admission::Drop,
        (true, None) => Admission::Refuse,
        (true, Some(a)) => Admission::Serve(a),
    }
}

/// The asker of `src` if it is the address of a container on this host (`local`) that the
/// table places in one tenant and network; anything else is not ours to answer.
pub fn local_asker(local: &HashSet<IpAddr>, table: &DnsTable, src: IpAddr) -> Option<Asker> {
    local.contains(&src).then(|| table.asker_of(src)).flatten()
}

/// An [`AskerOf`] over the current table and the current set of local container addresses
/// (see [`local_asker`]).
pub fn local_askers(
    table: watch::Receiver<Arc<DnsTable>>,
    local: watch::Receiver<Arc<HashSet<IpAddr>>>,
) -> Arc<dyn AskerOf> {
    Arc::new(move |ip: IpAddr| {
        let local = local.borrow().clone();
        local_asker(&local, &table.borrow(), ip)
    })
}

/// Per-source token buckets.
struct Limiter {
    rate: f64,
    burst: f64,
    origin: Instant,
    buckets: std::sync::Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl Limiter {
    fn allow(&self, src: IpAddr) -> bool {
        let now = self.origin.elapsed();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !b.contains_key(&src) && b.len() >= MAX_SOURCES {
            b.retain(|_, t| !t.is_full(now));
            if b.len() >= MAX_SOURCES {
                return false;
            }
        }
        b.entry(src)
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst, now))
            .take(now)
    }
}

/// Maps the source address of a query to the endpoint that asked (`None`: unknown source).
pub trait AskerOf: Send + Sync + 'static {
    fn asker_of(&self, src: IpAddr) -> Option<Asker>;
}

impl<F: Fn(IpAddr) -> Option<Asker> + Send + Sync + 'static> AskerOf for F {
    fn asker_of(&self, src: IpAddr) -> Option<Asker> {
        self(src)
    }
}

impl AskerOf for Arc<dyn AskerOf> {
    fn asker_of(&self, src: IpAddr) -> Option<Asker> {
        (**self).asker_of(src)
    }
}

/// A bound server; [`DnsServer::run`] serves until the future is dropped.
pub struct DnsServer {
    udp: UdpSocket,
    tcp: TcpListener,
    table: watch::Receiver<Arc<DnsTable>>,
    upstreams: Vec<SocketAddr>,
    asker_of: Box<dyn AskerOf>,
    upstream_timeout: Duration,
    rate: (f64, f64),
    max_forwards: usize,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.udp.local_addr().ok())
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Bind UDP and TCP on `addr` (with port 0, both get the same ephemeral port). Upstreams
    /// equal to our own address are dropped so we never forward to ourselves.
    pub async fn bind(
        addr: SocketAddr,
        table: watch::Receiver<Arc<DnsTable>>,
        upstreams: Vec<SocketAddr>,
        asker_of: impl AskerOf,
    ) -> std::io::Result<Self> {
        let mut tries = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind(addr).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if addr.port() == 0 && tries < 10 => {
                    tries += 1;
                    tracing::debug!("dns: tcp port taken, trying another: {e}");
                }
                Err(e) => return Err(e),
            }
        };
        let local = udp.local_addr()?;
        let upstreams = upstreams.into_iter().filter(|u| *u != local).collect();
        Ok(DnsServer {
            udp,
            tcp,
            table,
            upstreams,
            asker_of: Box::new(asker_of),
            upstream_timeout: UPSTREAM_TIMEOUT,
            rate: (RATE_PER_SEC, RATE_BURST),
            max_forwards: MAX_FORWARDS,
        })
    }

    /// Wait this long for each upstream (default 2 s).
    pub fn with_upstream_timeout(mut self, t: Duration) -> Self {
        self.upstream_timeout = t;
        self
    }

    /// Each source may send `per_sec` queries a second, `burst` at once (default
    /// [`RATE_PER_SEC`], [`RATE_BURST`]).
    pub fn with_rate_limit(mut self, per_sec: f64, burst: f64) -> Self {
        self.rate = (per_sec, burst);
        self
    }

    /// At most `n` queries relayed upstream at once (default [`MAX_FORWARDS`]).
    pub fn with_max_forwards(mut self, n: usize) -> Self {
        self.max_forwards = n;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serve UDP and TCP. Never returns; dropping the future stops the server and every
    /// query still in flight.
    pub async fn run(self) {
        let h = Arc::new(Handler {
            table: self.table,
            upstreams: self.upstreams,
            asker_of: self.asker_of,
            upstream_timeout: self.upstream_timeout,
            counter: AtomicUsize::new(0),
            limiter: Limiter {
                rate: self.rate.0,
                burst: self.rate.1,
                origin: Instant::now(),
                buckets: Default::default(),
            },
            forwards: Semaphore::new(self.max_forwards),
        });
        let udp = Arc::new(self.udp);
        tokio::join!(serve_udp(udp, h.clone()), serve_tcp(self.tcp, h));
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, h: Arc<Handler>) {
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, src) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!("dns: udp recv: {e}");
                        continue;
                    }
                };
                if tasks.len() >= MAX_INFLIGHT {
                    continue;
                }
                let (pkt, sock, h) = (buf[..n].to_vec(), sock.clone(), h.clone());
                tasks.spawn(async move {
                    if let Some(reply) = h.handle(&pkt, src.ip(), false).await
                        && let Err(e) = sock.send_to(&reply, src).await
                    {
                        tracing::debug!("dns: udp send to {src}: {e}");
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, h: Arc<Handler>) {
    let mut tasks = JoinSet::new();
    let mut per_source: HashMap<IpAddr, usize> = HashMap::new();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, src) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!("dns: tcp accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let n = per_source.entry(src.ip()).or_insert(0);
                if tasks.len() >= MAX_INFLIGHT || *n >= MAX_TCP_PER_SOURCE {
                    continue;
                }
                *n += 1;
                let h = h.clone();
                tasks.spawn(async move {
                    let _ = tcp_conn(stream, src.ip(), &h).await;
                    src.ip()
                });
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(ip) = done
                    && let Some(n) = per_source.get_mut(&ip)
                {
                    *n -= 1;
                    if *n == 0 {
                        per_source.remove(&ip);
                    }
                }
            }
        }
    }
}

/// Length-prefixed queries on one connection, answered in order, until EOF or idle.
async fn tcp_conn(mut s: TcpStream, src: IpAddr, h: &Handler) -> std::io::Result<()> {
    loop {
        let len = match timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return Ok(()),
        };
        let mut pkt = vec![0u8; len];
        timeout(TCP_IDLE, s.read_exact(&mut pkt)).await??;
        let Some(reply) = h.handle(&pkt, src, true).await else {
            return Ok(());
        };
        s.write_all(&framed(&reply)).await?;
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

struct Handler {
    table: watch::Receiver<Arc<DnsTable>>,
    upstreams: Vec<SocketAddr>,
    asker_of: Box<dyn AskerOf>,
    upstream_timeout: Duration,
    counter: AtomicUsize,
    limiter: Limiter,
    forwards: Semaphore,
}

impl Handler {
    /// The reply to one query, or `None` to drop it.
    async fn handle(&self, pkt: &[u8], src: IpAddr, tcp: bool) -> Option<Vec<u8>> {
        let within_rate = self.limiter.allow(src);
        if !within_rate {
            return None;
        }
        let req = match Message::from_vec(pkt) {
            Ok(m) => m,
            Err(_) => return formerr(pkt),
        };
        if req.message_type != MessageType::Query {
            return None;
        }
        let mut resp = Message::response(req.id, req.op_code);
        resp.metadata.recursion_desired = req.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_queries(req.queries.iter().cloned());
        if req.edns.is_some() {
            let mut e = Edns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            resp.set_edns(e);
        }
        if req.op_code != OpCode::Query || req.queries.len() != 1 {
            resp.metadata.response_code = if req.op_code != OpCode::Query {
                ResponseCode::NotImp
            } else {
                ResponseCode::FormErr
            };
            return resp.to_vec().ok();
        }
        let q = &req.queries[0];
        let qtype = match q.query_type() {
            RecordType::A => QType::A,
            RecordType::AAAA => QType::Aaaa,
            RecordType::ANY => QType::Any,
            _ => QType::Other,
        };
        let qname = q.name().to_ascii();
        let table = self.table.borrow().clone();
        let answer = match admission(within_rate, self.asker_of.asker_of(src)) {
            Admission::Drop => return None,
            Admission::Refuse => Answer::Refused,
            _ if q.query_class() != DNSClass::IN => Answer::Forward,
            Admission::Serve(asker) => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                table.resolve(&asker, &qname, qtype, n)
            }
        };
        match answer {
            Answer::Forward => {
                // Bounded: over MAX_FORWARDS relays in flight, SERVFAIL at once.
                if let Ok(_permit) = self.forwards.try_acquire()
                    && let Some(r) = self.forward(pkt, req.id, tcp).await
                {
                    return Some(r);
                }
                resp.metadata.response_code = ResponseCode::ServFail;
            }
            Answer::Refused => resp.metadata.response_code = ResponseCode::Refused,
            Answer::NxDomain => {
                resp.metadata.authoritative = true;
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            Answer::Records(addrs) => {
                resp.metadata.authoritative = true;
                for a in addrs {
                    let rdata = match a {
                        IpAddr::V4(v4) => RData::A(A(v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                    };
                    resp.add_answer(RR::from_rdata(q.name().clone(), TTL, rdata));
                }
            }
        }
        let bytes = resp.to_vec().ok()?;
        let limit = match &req.edns {
            _ if tcp => u16::MAX,
            Some(e) => e.max_payload().clamp(512, EDNS_PAYLOAD),
            None => 512,
        } as usize;
        if bytes.len() > limit {
            return resp.truncate().to_vec().ok();
        }
        Some(bytes)
    }

    /// Relay the query to each upstream in turn; the first reply wins.
    async fn forward(&self, pkt: &[u8], id: u16, tcp: bool) -> Option<Vec<u8>> {
        for &up in &self.upstreams {
            let reply = match timeout(self.upstream_timeout, forward_udp(pkt, id, up)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::debug!("dns: upstream {up}: {e}");
                    continue;
                }
                Err(_) => {
                    tracing::debug!("dns: upstream {up} timed out");
                    continue;
                }
            };
            let truncated = reply[2] & 0x02 != 0;
            if tcp
                && truncated
                && let Ok(Ok(full)) = timeout(self.upstream_timeout, forward_tcp(pkt, up)).await
            {
                return Some(full);
            }
            return Some(reply);
        }
        None
    }
}

/// One UDP exchange with an upstream, from a fresh socket (random source port).
async fn forward_udp(pkt: &[u8], id: u16, up: SocketAddr) -> std::io::Result<Vec<u8>> {
    let any: SocketAddr = if up.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(any).await?;
    sock.connect(up).await?;
    sock.send(pkt).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // A reply (QR set) to our id; anything else is ignored.
        if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One TCP exchange with an upstream.
async fn forward_tcp(pkt: &[u8], up: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(up).await?;
    s.write_all(&framed(pkt)).await?;
    let len = s.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// FORMERR for a query that does not parse but has a header; `None` (drop) otherwise.
fn formerr(pkt: &[u8]) -> Option<Vec<u8>> {
    if pkt.len() < 12 || pkt[2] & 0x80 != 0 {
        return None;
    }
    let mut h = [0u8; 12];
    h[..2].copy_from_slice(&pkt[..2]);
    h[2] = 0x80 | (pkt[2] & 0x79); // QR, the request's opcode and RD
    h[3] = ResponseCode::FormErr.low();
    Some(h.to_vec())
}

/// Aborts its task when dropped.
struct Serving(JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The DNS server as the agent runs it: UDP and TCP on port `port` of every address in
/// `addrs` (the addresses containers are told to use; never the wildcard), re-bound
/// whenever the set changes, nothing bound while it is empty. A failed bind (the address
/// not yet configured, the port taken) is logged and retried every second; it never ends
/// the server. Runs until the future is dropped, which stops every listener.
pub async fn serve(
    mut addrs: watch::Receiver<Vec<IpAddr>>,
    port: u16,
    table: watch::Receiver<Arc<DnsTable>>,
    upstreams: Vec<SocketAddr>,
    asker_of: Arc<dyn AskerOf>,
) {
    let mut servers: HashMap<IpAddr, Serving> = HashMap::new();
    let mut failing: HashSet<IpAddr> = HashSet::new();
    loop {
        let wanted: BTreeSet<IpAddr> = addrs
            .borrow_and_update()
            .iter()
            .copied()
            .filter(|ip| !ip.is_unspecified())
            .collect();
        servers.retain(|ip, _| {
            let keep = wanted.contains(ip);
            if !keep {
                tracing::info!("dns: no longer listening on {ip}:{port}");
            }
            keep
        });
        failing.retain(|ip| wanted.contains(ip));
        for &ip in &wanted {
            if servers.contains_key(&ip) {
                continue;
            }
            let addr = SocketAddr::new(ip, port);
            match DnsServer::bind(addr, table.clone(), upstreams.clone(), asker_of.clone()).await {
                Ok(s) => {
                    tracing::info!("dns: listening on {addr} (udp, tcp)");
                    failing.remove(&ip);
                    servers.insert(ip, Serving(tokio::spawn(s.run())));
                }
                Err(e) => {
                    // Warn once per address, then retry quietly.
                    if failing.insert(ip) {
                        tracing::warn!("dns: cannot listen on {addr}: {e}; retrying");
                    } else {
                        tracing::debug!("dns: cannot listen on {addr}: {e}");
                    }
                }
            }
        }
        let changed = if failing.is_empty() {
            addrs.changed().await.is_ok()
        } else {
            tokio::select! {
                r = addrs.changed() => r.is_ok(),
                _ = tokio::time::sleep(BIND_RETRY) => true,
            }
        };
        if !changed {
            // Nobody will change the addresses again: keep serving (and retrying).
            if failing.is_empty() {
                return std::future::pending().await;
            }
            tokio::time::sleep(BIND_RETRY).await;
        }
    }
}
