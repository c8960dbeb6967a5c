//! The table task: Adj-RIBs-In, best paths, the published routes and every session's
//! Adj-RIB-Out.

use super::*;
use crate::select::{self, Path, Source};

// ---- the table --------------------------------------------------------------------------

struct Session {
    peer: IpAddr,
    conn: u64,
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

pub(super) async fn table_task(
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
                    conn,
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
                            conn,
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
                TableCmd::Written { .. } => {}
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
                let mut bytes = BytesMut::new();
                for m in &msgs {
                    if let Err(e) = m.encode(&s.ctx, &mut bytes) {
                        tracing::warn!("{addr}: UPDATE not encoded: {e}");
                    }
                }
                let _ = s.out.send(SessionOut::Updates {
                    conn: s.conn,
                    bytes: bytes.freeze(),
                    updates: msgs.len() as u64,
                });
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
                    conn: 1,
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

