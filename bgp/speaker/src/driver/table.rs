//! The table task: every peer's Adj-RIB-In and the Loc-RIB in one [`bgp::rib::Rib`]
//! (the prefixes we originate are the paths of its local peer), the published routes,
//! and what each session is sent.
//!
//! Export keeps no per-session copy of the table. Each prefix has a small id in the RIB;
//! a session has two bitmaps over those ids: *pending* (to be looked at again) and
//! *sent* (announced and not withdrawn since). A Loc-RIB change sets the prefix's
//! pending bit in every session; a session is filled from its pending bits, computing
//! what to send from the Loc-RIB as it is then (so a prefix that changed ten times
//! while the peer was slow goes out once), prefixes sharing attributes packed together.
//! Flow control: a session has at most [`IN_FLIGHT`] bytes handed to its writer and not
//! written yet; the rest waits as pending bits. A prefix that lost every path keeps its
//! id until no session has it pending or sent, so its withdrawal is never overtaken by
//! a later announcement under a reused id.

use std::collections::hash_map::Entry;

use bgp::policy::{self, MaxPrefixDecision, MaxPrefixState, Policy, RouteContext, Verdict};
use bgp::rib::{AttrInterner, Change, PeerId, PeerInfo, Rib};

use super::*;

/// Bytes of UPDATEs a session may have queued for writing before it is filled again.
const IN_FLIGHT: usize = 256 * 1024;
/// Prefixes looked at per filling step (one round of packing).
const FILL_STEP: usize = 8192;
/// Route changes published as soon as the table is idle; more wait for PUBLISH_EVERY.
const PUBLISH_AT_ONCE: usize = 1024;
/// How often the learned routes are published while UPDATEs keep coming.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A growable bitmap over prefix ids.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`; returns whether it was clear.
    fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        let w = &mut self.0[i / 64];
        let was = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        !was
    }

    /// Clears bit `i`; returns whether it was set.
    fn clear(&mut self, i: u32) -> bool {
        let i = i as usize;
        match self.0.get_mut(i / 64) {
            Some(w) => {
                let was = *w & (1 << (i % 64)) != 0;
                *w &= !(1 << (i % 64));
                was
            }
            None => false,
        }
    }

    /// The first set bit at or after `from`, if any.
    fn next_from(&self, from: usize) -> Option<usize> {
        let mut wi = from / 64;
        let mut w = *self.0.get(wi)? & (!0u64 << (from % 64));
        loop {
            if w != 0 {
                return Some(wi * 64 + w.trailing_zeros() as usize);
            }
            wi += 1;
            w = *self.0.get(wi)?;
        }
    }
}

/// Routes going out with one attribute set: their NLRI, and for each its prefix id and
/// whether the peer holds an earlier version of it.
type OutGroup = (Arc<PathAttrs>, Vec<Nlri>, Vec<(u32, bool)>);

/// With ADD-PATH send: a path identifier a prefix went out under, with the attributes
/// (`None`: send again).
type SentPath = (u32, Option<Arc<PathAttrs>>);

/// An established session as the table sees it.
struct Session {
    peer: IpAddr,
    id: PeerId,
    conn: u64,
    out: mpsc::UnboundedSender<SessionOut>,
    ctx: SessionCtx,
    local: IpAddr,
    ebgp: bool,
    router_id: Ipv4Addr,
    peer_gr: Option<GracefulRestart>,
    next_hop_v6: Option<std::net::Ipv6Addr>,
    import: Policy,
    export: Policy,
    max_prefix: Option<MaxPrefixState>,
    /// Families the peer sent End-of-RIB for in this session.
    eor: BTreeSet<Family>,
    /// Prefix ids to look at again, how many, and where filling goes on.
    pending: Bits,
    pending_count: usize,
    cursor: usize,
    /// Prefix ids announced to the peer and not withdrawn since, and how many.
    sent: Bits,
    advertised: u64,
    /// With ADD-PATH send: the path identifiers each prefix was announced under.
    /// and the attributes each went out with (`None`: to be sent again, after a route
    /// refresh).
    sent_paths: HashMap<u32, Vec<SentPath>>,
    /// Bytes handed to the writer and not acknowledged yet.
    in_flight: usize,
    /// The initial table (or a refresh) went out, End-of-RIB included.
    synced: bool,
}

impl Session {
    /// The peer no longer holds this route (or, with ADD-PATH, this path of it).
    fn forget(&mut self, id: u32, path_id: Option<u32>) {
        if let Some(pid) = path_id
            && let Some(paths) = self.sent_paths.get_mut(&id)
        {
            paths.retain(|(p, _)| *p != pid);
            if !paths.is_empty() {
                return;
            }
            self.sent_paths.remove(&id);
        }
        if self.sent.clear(id) {
            self.advertised -= 1;
        }
    }

    fn mark(&mut self, id: u32) {
        if self.pending.set(id) {
            self.pending_count += 1;
        }
    }
}

/// A peer whose session went down with graceful restart: its routes are kept (stale)
/// until this deadline.
struct Stale {
    deadline: Instant,
}

pub(super) struct Table {
    sp: SpeakerConfig,
    rib: Rib,
    interner: AttrInterner,
    /// The RIB's peer for what we originate.
    local: PeerId,
    /// Attributes of what we originate (next hop and AS path are set per session).
    local_attrs: Arc<PathAttrs>,
    /// Peers known to the RIB: while a session is up, or its routes kept stale.
    peer_ids: HashMap<IpAddr, PeerId>,
    sessions: HashMap<IpAddr, Session>,
    stale: HashMap<IpAddr, Stale>,
    /// Prefixes left without paths, kept until no session has them pending or sent.
    emptied: Vec<u32>,
    /// ADD-PATH send: the path identifier we give each (source peer, its path id).
    out_path_ids: HashMap<(PeerId, Option<u32>), u32>,
    next_out_path_id: u32,
    /// The learned routes (with [`SpeakerConfig::publish_routes`]).
    routes: Routes,
    /// Routes changed since the last publication.
    routes_changed: usize,
    last_publish: Instant,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
    updates_since_gc: usize,
}

pub(super) async fn table_task(
    sp: SpeakerConfig,
    mut rx: mpsc::UnboundedReceiver<TableCmd>,
    routes_tx: watch::Sender<Arc<Routes>>,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
) {
    let mut t = Table::new(sp, status);
    loop {
        let next = t
            .stale
            .values()
            .map(|s| s.deadline)
            .chain((t.routes_changed > 0).then(|| t.last_publish + PUBLISH_EVERY))
            .min();
        let first = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => Some(c),
                None => return,
            },
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        t.expire_stale(Instant::now());
        // Everything queued is handled before sessions are filled, up to a bound so
        // that acknowledgements keep the writers busy while UPDATEs pour in.
        let mut n = 0;
        let mut next_cmd = first;
        while let Some(c) = next_cmd {
            t.handle(c);
            n += 1;
            next_cmd = if n < 256 { rx.try_recv().ok() } else { None };
        }
        t.fill_all();
        t.release_emptied();
        // Publishing copies the whole route map: a few changes go out at once, a flood
        // at most every PUBLISH_EVERY (its tail when that time is up).
        if t.routes_changed > 0
            && ((rx.is_empty() && t.routes_changed < PUBLISH_AT_ONCE)
                || t.last_publish.elapsed() >= PUBLISH_EVERY)
        {
            routes_tx.send_replace(Arc::new(t.routes.clone()));
            t.routes_changed = 0;
            t.last_publish = Instant::now();
        }
    }
}

impl Table {
    fn new(sp: SpeakerConfig, status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>) -> Table {
        let mut rib = Rib::new(sp.max_paths);
        rib.keep_empty(true);
        // Changes of paths outside the group matter too: to ADD-PATH send sessions, and
        // to the published route of a prefix we originate (see `apply`).
        rib.report_path_changes(true);
        let local = rib.add_peer(PeerInfo::local(sp.router_id));
        let mut interner = AttrInterner::new();
        let local_attrs = interner.intern(PathAttrs {
            origin: Origin::Igp,
            communities: sp.communities.clone(),
            large_communities: sp.large_communities.clone(),
            ..Default::default()
        });
        Table {
            sp,
            rib,
            interner,
            local,
            local_attrs,
            peer_ids: HashMap::new(),
            sessions: HashMap::new(),
            stale: HashMap::new(),
            emptied: Vec::new(),
            out_path_ids: HashMap::new(),
            next_out_path_id: 1,
            routes: Routes::new(),
            routes_changed: 0,
            last_publish: Instant::now(),
            status,
            updates_since_gc: 0,
        }
    }

    fn handle(&mut self, cmd: TableCmd) {
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
            } => self.peer_up(Session {
                peer: addr,
                id: self.local, // replaced below
                conn,
                out,
                ctx,
                local,
                ebgp,
                router_id,
                peer_gr,
                next_hop_v6,
                eor: BTreeSet::new(),
                max_prefix: policy.max_prefix.map(MaxPrefixState::new),
                import: policy
                    .effective_import(ebgp, !ebgp_requires_policy)
                    .into_owned(),
                export: policy
                    .effective_export(ebgp, !ebgp_requires_policy)
                    .into_owned(),
                pending: Bits::default(),
                pending_count: 0,
                cursor: 0,
                sent: Bits::default(),
                advertised: 0,
                sent_paths: HashMap::new(),
                in_flight: 0,
                synced: false,
            }),
            TableCmd::PeerDown {
                addr,
                conn,
                graceful,
            } => {
                // News about another connection than the session's is older than it.
                if self
                    .sessions
                    .get(&addr)
                    .is_none_or(|s| conn == Some(s.conn))
                {
                    self.peer_down(addr, graceful);
                }
            }
            TableCmd::Update { addr, update, .. } => self.update(addr, update),
            TableCmd::Refresh { addr, family } => {
                // Send everything of that family again (RFC 2918).
                let ids: Vec<u32> = self
                    .rib
                    .ids()
                    .filter(|id| {
                        self.rib
                            .by_id(*id)
                            .is_some_and(|(p, _)| Family::of(&p) == family)
                    })
                    .collect();
                if let Some(s) = self.sessions.get_mut(&addr) {
                    for id in ids {
                        s.mark(id);
                    }
                    for paths in s.sent_paths.values_mut() {
                        for (_, attrs) in paths {
                            *attrs = None;
                        }
                    }
                    s.synced = false;
                }
            }
            TableCmd::Written { addr, conn, bytes } => {
                if let Some(s) = self.sessions.get_mut(&addr)
                    && s.conn == conn
                {
                    s.in_flight = s.in_flight.saturating_sub(bytes);
                }
            }
            TableCmd::Originate(prefixes) => {
                let announced: Vec<(Nlri, Arc<PathAttrs>)> = prefixes
                    .into_iter()
                    .map(|p| (Nlri::new(p), self.local_attrs.clone()))
                    .collect();
                let changes = self.rib.update(self.local, &announced, &[]);
                self.apply(changes);
            }
            TableCmd::Withdraw(prefixes) => {
                let withdrawn: Vec<Nlri> = prefixes.into_iter().map(Nlri::new).collect();
                let changes = self.rib.update(self.local, &[], &withdrawn);
                self.apply(changes);
            }
            TableCmd::AdjIn { addr, reply } => {
                let v = match self.peer_ids.get(&addr) {
                    Some(id) => self
                        .rib
                        .adj_rib_in(*id)
                        .map(|(n, p)| (n.prefix, p.attrs.next_hop.map(|h| h.addr())))
                        .collect(),
                    None => Vec::new(),
                };
                let _ = reply.send(v);
            }
            TableCmd::Originated { reply } => {
                let mut v: Vec<IpNet> = self
                    .rib
                    .adj_rib_in(self.local)
                    .map(|(n, _)| n.prefix)
                    .collect();
                v.sort();
                let _ = reply.send(v);
            }
            TableCmd::AdjOut { addr, reply } => {
                let mut v = Vec::new();
                if let Some(s) = self.sessions.get(&addr) {
                    let mut i = 0;
                    while let Some(id) = s.sent.next_from(i) {
                        i = id + 1;
                        let Some((prefix, group)) = self.rib.by_id(id as u32) else {
                            continue;
                        };
                        let hop = group.first().and_then(|best| {
                            export_attrs(
                                &self.sp,
                                &self.rib,
                                self.local,
                                &mut self.interner,
                                s,
                                prefix,
                                best,
                            )
                        });
                        v.push((prefix, hop.and_then(|a| a.next_hop).map(|h| h.addr())));
                    }
                }
                v.sort();
                let _ = reply.send(v);
            }
            TableCmd::LocRib { reply } => {
                let mut v: Vec<(IpNet, Vec<IpAddr>)> = self
                    .rib
                    .iter()
                    .filter(|(_, g)| g.first().is_some_and(|b| b.peer != self.local))
                    .map(|(p, g)| (*p, bgp::rib::next_hops(g)))
                    .collect();
                v.sort();
                let _ = reply.send(v);
            }
        }
    }

    fn set_status(&self, addr: IpAddr, f: impl FnOnce(&mut PeerStatus)) {
        set_status(&self.status, addr, f);
    }

    fn peer_up(&mut self, mut s: Session) {
        let addr = s.peer;
        // A restarted peer: its stale routes wait for its End-of-RIB, unless it no
        // longer does graceful restart or lost its forwarding state.
        let keep_stale = self.stale.contains_key(&addr)
            && s.peer_gr
                .as_ref()
                .is_some_and(|g| g.families.iter().any(|(_, f)| *f));
        let stale_time = self
            .sp
            .graceful_restart
            .as_ref()
            .map_or(Duration::ZERO, |g| g.stale_time);
        match self.stale.get_mut(&addr) {
            Some(st) if keep_stale => {
                st.deadline = Instant::now() + stale_time;
                // RFC 4724 §4.2: families the peer did not keep forwarding for (F bit
                // clear, or no longer listed) lose their stale routes now.
                let kept: Vec<Family> = s
                    .peer_gr
                    .iter()
                    .flat_map(|g| g.families.iter())
                    .filter(|(_, f)| *f)
                    .map(|(fam, _)| *fam)
                    .collect();
                if let Some(id) = self.peer_ids.get(&addr).copied() {
                    for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                        if !kept.contains(&f) {
                            let changes = self.rib.purge_stale(id, f);
                            self.apply(changes);
                        }
                    }
                }
            }
            _ => {
                self.stale.remove(&addr);
                if let Some(id) = self.peer_ids.remove(&addr) {
                    let changes = self.rib.remove_peer(id);
                    self.out_path_ids.retain(|(p, _), _| *p != id);
                    self.apply(changes);
                }
                self.set_status(addr, |st| st.stale_routes = 0);
            }
        }
        let info = PeerInfo {
            addr: Some(addr),
            router_id: s.router_id,
            ebgp: s.ebgp,
        };
        let id = match self.peer_ids.get(&addr).copied() {
            Some(id) => {
                let changes = self.rib.set_peer_info(id, info);
                self.apply(changes);
                id
            }
            None => {
                let id = self.rib.add_peer(info);
                self.peer_ids.insert(addr, id);
                id
            }
        };
        s.id = id;
        // The initial table: every prefix with a path.
        for pid in self.rib.ids() {
            s.mark(pid);
        }
        self.sessions.insert(addr, s);
    }

    fn peer_down(&mut self, addr: IpAddr, graceful: bool) {
        let gr = self.sessions.remove(&addr).and_then(|s| s.peer_gr);
        let Some(id) = self.peer_ids.get(&addr).copied() else {
            return;
        };
        match gr {
            Some(g) if graceful => {
                // Receiving speaker: keep the routes (and forwarding) as stale for the
                // peer's restart time.
                let n = self.rib.mark_stale(id) as u64;
                tracing::info!(
                    "{addr}: session lost, keeping {n} routes through its restart ({} s)",
                    g.restart_time
                );
                self.stale.insert(
                    addr,
                    Stale {
                        deadline: Instant::now() + Duration::from_secs(u64::from(g.restart_time)),
                    },
                );
                self.set_status(addr, |s| s.stale_routes = n);
            }
            _ => {
                self.stale.remove(&addr);
                self.peer_ids.remove(&addr);
                let changes = self.rib.remove_peer(id);
                self.out_path_ids.retain(|(p, _), _| *p != id);
                self.apply(changes);
            }
        }
    }

    /// Stale routes whose time is up go.
    fn expire_stale(&mut self, now: Instant) {
        let expired: Vec<IpAddr> = self
            .stale
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            self.stale.remove(&addr);
            let Some(id) = self.peer_ids.get(&addr).copied() else {
                continue;
            };
            if self.sessions.contains_key(&addr) {
                let mut changes = Vec::new();
                for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                    changes.extend(self.rib.purge_stale(id, f));
                }
                tracing::info!(
                    "{addr}: graceful restart over, {} stale routes purged",
                    changes.len()
                );
                self.apply(changes);
                let count = self.rib.peer_route_count(id) as u64;
                self.set_status(addr, |s| {
                    s.prefixes_received = count;
                    s.stale_routes = 0;
                });
            } else {
                tracing::info!("{addr}: graceful restart over, purging its routes");
                self.peer_ids.remove(&addr);
                let changes = self.rib.remove_peer(id);
                self.out_path_ids.retain(|(p, _), _| *p != id);
                self.apply(changes);
                self.set_status(addr, |s| s.stale_routes = 0);
            }
        }
    }

    fn update(&mut self, addr: IpAddr, update: Update) {
        let asn = self.sp.asn;
        let Some(s) = self.sessions.get_mut(&addr) else {
            return;
        };
        let (id, ebgp) = (s.id, s.ebgp);
        let mut changes = Vec::new();
        if let Some(fam) = update.is_end_of_rib() {
            s.eor.insert(fam);
            let all = s.ctx.families.iter().all(|f| s.eor.contains(f));
            // The peer's table for this family is complete: what is still stale from
            // before its restart is gone.
            if self.stale.contains_key(&addr) {
                changes.extend(self.rib.purge_stale(id, fam));
                let left = self.rib.stale_count(id) as u64;
                if left == 0 {
                    self.stale.remove(&addr);
                }
                set_status(&self.status, addr, |st| st.stale_routes = left);
            }
            set_status(&self.status, addr, |st| st.eor_received = all);
            self.apply(changes);
            return;
        }
        let mut withdrawn: Vec<Nlri> = update
            .withdrawn
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let mut announced: Vec<(Nlri, Arc<PathAttrs>)> = Vec::new();
        let usable = !matches!(update.outcome, UpdateOutcome::TreatAsWithdraw(_));
        match &update.attrs {
            // RFC 4271 §9.1.2: a path through our own AS is a loop; it replaces
            // (withdraws) what the peer sent before and is not used.
            Some(attrs) if usable && !attrs.as_path.contains(asn) => {
                let s = self.sessions.get(&addr).expect("session");
                let by_prefix = s.import.uses_prefix();
                // The attributes as imported, once per family (and per prefix only if
                // the import policy looks at prefixes).
                let mut per_family: [Option<Option<Arc<PathAttrs>>>; 2] = [None, None];
                for (_, nlris) in &update.announced {
                    for n in nlris {
                        let v4 = n.prefix.addr().is_ipv4();
                        let slot = &mut per_family[usize::from(!v4)];
                        let imported = match slot {
                            Some(a) if !by_prefix => a.clone(),
                            _ => {
                                let mut a = attrs.clone();
                                // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is
                                // ignored.
                                if ebgp {
                                    a.local_pref = None;
                                }
                                if v4
                                    && update.classic_next_hop.is_some()
                                    && matches!(a.next_hop, Some(NextHop::V6 { .. }))
                                {
                                    a.next_hop = update.classic_next_hop.map(NextHop::V4);
                                }
                                let v = match policy::apply(
                                    &s.import,
                                    &RouteContext {
                                        prefix: n.prefix,
                                        attrs: &a,
                                        neighbor: addr,
                                        ebgp,
                                        local_as: asn,
                                        local_addr: s.local,
                                    },
                                ) {
                                    Verdict::Accept(a) => Some(self.interner.intern(a)),
                                    Verdict::Reject => None,
                                };
                                *slot = Some(v.clone());
                                v
                            }
                        };
                        match imported {
                            // Import policy: a rejected route is as if withdrawn.
                            Some(a) => announced.push((*n, a)),
                            None => withdrawn.push(*n),
                        }
                    }
                }
            }
            _ => {
                withdrawn.extend(update.announced.iter().flat_map(|(_, n)| n.iter().copied()));
            }
        }
        changes.extend(self.rib.update(id, &announced, &withdrawn));
        self.apply(changes);
        let count = self.rib.peer_route_count(id) as u64;
        self.set_status(addr, |st| st.prefixes_received = count);
        let s = self.sessions.get_mut(&addr).expect("session");
        if let Some(mp) = s.max_prefix.as_mut() {
            match mp.on_accept(count as usize) {
                MaxPrefixDecision::Ok => {}
                MaxPrefixDecision::Warn => {
                    tracing::warn!("{addr}: {count} prefixes, over its max-prefix limit");
                }
                MaxPrefixDecision::Exceeded { restart_after } => {
                    tracing::warn!(
                        "{addr}: {count} prefixes, over its max-prefix limit: closing the session"
                    );
                    set_status(&self.status, addr, |st| {
                        st.last_error = Some(format!("max-prefix exceeded ({count} prefixes)"));
                    });
                    // RFC 4486: Cease / Maximum Number of Prefixes Reached.
                    let _ = s.out.send(SessionOut::Reset {
                        cease_subcode: wire::CeaseError::MaxPrefixesReached.code(),
                        hold: restart_after.unwrap_or(Duration::from_secs(365 * 24 * 3600)),
                    });
                }
            }
        }
        self.updates_since_gc += 1;
        if self.updates_since_gc >= 4096 {
            self.interner.gc();
            self.updates_since_gc = 0;
        }
    }

    /// Loc-RIB changes: every session looks at the prefix again; the published routes
    /// follow.
    fn apply(&mut self, changes: Vec<Change>) {
        for c in changes {
            for s in self.sessions.values_mut() {
                // A change outside the group only matters to a session sent every path.
                if c.group_changed || !s.ctx.add_path_tx.is_empty() {
                    s.mark(c.id);
                }
            }
            if c.paths.is_empty() {
                self.emptied.push(c.id);
            }
            if self.sp.publish_routes {
                // A prefix we originate still gets the route learned for it (what the
                // others advertise, e.g. the same subnet from every host): its learned
                // paths change under our own path, which stays the group.
                if c.paths.first().is_some_and(|p| p.peer == self.local) {
                    let hops = self.learned_hops(&c.prefix);
                    self.set_route(c.prefix, hops);
                } else if c.group_changed {
                    self.set_route(c.prefix, bgp::rib::next_hops(&c.paths));
                }
            }
        }
    }

    fn set_route(&mut self, prefix: IpNet, hops: Vec<IpAddr>) {
        if hops.is_empty() {
            if self.routes.remove(&prefix).is_some() {
                self.routes_changed += 1;
            }
        } else if self.routes.get(&prefix) != Some(&hops) {
            self.routes.insert(prefix, hops);
            self.routes_changed += 1;
        }
    }

    /// The next hops of the best group among the learned paths to `prefix` (the
    /// Loc-RIB's own group is our local path when we originate it).
    fn learned_hops(&self, prefix: &IpNet) -> Vec<IpAddr> {
        let mut learned = self
            .rib
            .paths(prefix)
            .iter()
            .filter(|p| p.peer != self.local);
        let Some(best) = learned.next() else {
            return Vec::new();
        };
        let b = (self.rib.peer_info(best.peer), &*best.attrs);
        let group: Vec<bgp::rib::Path> = std::iter::once(best)
            .chain(learned.take_while(|p| {
                bgp::rib::select::compare_multipath((self.rib.peer_info(p.peer), &p.attrs), b)
                    == std::cmp::Ordering::Equal
            }))
            .take(self.rib.max_paths())
            .cloned()
            .collect();
        bgp::rib::next_hops(&group)
    }

    /// Prefixes without paths that no session needs any more are dropped from the RIB.
    fn release_emptied(&mut self) {
        let sessions = &self.sessions;
        let rib = &mut self.rib;
        self.emptied.retain(|id| {
            if sessions
                .values()
                .any(|s| s.pending.get(*id) || s.sent.get(*id))
            {
                return true;
            }
            rib.release(*id);
            false
        });
    }

    fn fill_all(&mut self) {
        let addrs: Vec<IpAddr> = self.sessions.keys().copied().collect();
        for a in addrs {
            self.fill(a);
        }
    }

    /// Sends a session what its pending bits say, within its flow-control budget;
    /// End-of-RIB once the initial table is out.
    fn fill(&mut self, addr: IpAddr) {
        let Some(mut s) = self.sessions.remove(&addr) else {
            return;
        };
        let mut cache: HashMap<(usize, PeerId, bool), Option<Arc<PathAttrs>>> = HashMap::new();
        let by_prefix = s.export.uses_prefix();
        while s.in_flight < IN_FLIGHT && s.pending_count > 0 {
            let mut withdraw: Vec<Nlri> = Vec::new();
            // Per attribute set: the NLRI, and for each its prefix id and whether the
            // peer holds an earlier version of it (to withdraw should this one not encode).
            let mut groups: Vec<OutGroup> = Vec::new();
            let mut group_of: HashMap<usize, usize> = HashMap::new();
            let mut looked = 0;
            while looked < FILL_STEP && s.pending_count > 0 {
                let i = match s.pending.next_from(s.cursor) {
                    Some(i) => i,
                    None => match s.pending.next_from(0) {
                        Some(i) => i,
                        None => {
                            s.pending_count = 0;
                            break;
                        }
                    },
                };
                s.cursor = i + 1;
                let id = i as u32;
                s.pending.clear(id);
                s.pending_count -= 1;
                looked += 1;
                let Some((prefix, group)) = self.rib.by_id(id) else {
                    // Released: nothing was sent for it (release waits for that).
                    continue;
                };
                let mut export = |path: &bgp::rib::Path| {
                    let key = (
                        Arc::as_ptr(&path.attrs) as usize,
                        path.peer,
                        prefix.addr().is_ipv4(),
                    );
                    if !by_prefix && let Some(v) = cache.get(&key) {
                        return v.clone();
                    }
                    let v = export_attrs(
                        &self.sp,
                        &self.rib,
                        self.local,
                        &mut self.interner,
                        &s,
                        prefix,
                        path,
                    );
                    if !by_prefix {
                        cache.insert(key, v.clone());
                    }
                    v
                };
                // What goes out now: the best path, or with ADD-PATH every path, each
                // under the path identifier we give it.
                let mut out: Vec<(Nlri, Arc<PathAttrs>)> = Vec::new();
                // For each of `out`: the peer holds an earlier version of it.
                let mut held: Vec<bool> = Vec::new();
                if s.ctx.add_path_tx(Family::of(&prefix)) {
                    for path in self.rib.paths(&prefix) {
                        if let Some(a) = export(path) {
                            let key = (path.peer, path.path_id);
                            let pid = *self.out_path_ids.entry(key).or_insert_with(|| {
                                self.next_out_path_id =
                                    self.next_out_path_id.wrapping_add(1).max(1);
                                self.next_out_path_id
                            });
                            out.push((
                                Nlri {
                                    prefix,
                                    path_id: Some(pid),
                                },
                                a,
                            ));
                        }
                    }
                    let before = s.sent_paths.remove(&id).unwrap_or_default();
                    for (pid, _) in &before {
                        if !out.iter().any(|(n, _)| n.path_id == Some(*pid)) {
                            withdraw.push(Nlri {
                                prefix,
                                path_id: Some(*pid),
                            });
                        }
                    }
                    if !out.is_empty() {
                        s.sent_paths.insert(
                            id,
                            out.iter()
                                .filter_map(|(n, a)| Some((n.path_id?, Some(a.clone()))))
                                .collect(),
                        );
                    }
                    // A path that went out with these very attributes is not sent again.
                    out.retain(|(n, a)| {
                        !before.iter().any(|(pid, was)| {
                            Some(*pid) == n.path_id
                                && was.as_ref().is_some_and(|w| Arc::ptr_eq(w, a))
                        })
                    });
                    for (n, _) in &out {
                        held.push(before.iter().any(|(pid, _)| Some(*pid) == n.path_id));
                    }
                    if s.sent_paths.contains_key(&id) {
                        if s.sent.set(id) {
                            s.advertised += 1;
                        }
                    } else if s.sent.clear(id) {
                        s.advertised -= 1;
                    }
                } else {
                    match group.first().and_then(&mut export) {
                        Some(a) => {
                            out.push((Nlri::new(prefix), a));
                            held.push(s.sent.get(id));
                        }
                        None if s.sent.get(id) => withdraw.push(Nlri::new(prefix)),
                        None => {}
                    }
                    if out.is_empty() {
                        if s.sent.clear(id) {
                            s.advertised -= 1;
                        }
                    } else if s.sent.set(id) {
                        s.advertised += 1;
                    }
                }
                for ((nlri, a), was) in out.into_iter().zip(held) {
                    let g = match group_of.entry(Arc::as_ptr(&a) as usize) {
                        Entry::Occupied(e) => *e.get(),
                        Entry::Vacant(e) => {
                            groups.push((a, Vec::new(), Vec::new()));
                            *e.insert(groups.len() - 1)
                        }
                    };
                    groups[g].1.push(nlri);
                    groups[g].2.push((id, was));
                }
            }
            let mut bytes = BytesMut::new();
            let mut msgs = 0;
            if !withdraw.is_empty() {
                match wire::pack_updates(&s.ctx, &withdraw, None, &[], &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(e) => tracing::warn!("{addr}: withdrawals not encoded: {e}"),
                }
            }
            let mut unsent: Vec<Nlri> = Vec::new();
            for (attrs, nlris, ids) in &groups {
                match wire::pack_updates(&s.ctx, &[], Some(attrs), nlris, &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(e) => {
                        // Attributes this peer cannot take (too large for its message
                        // size): the routes are not sent, and what it holds of them
                        // goes.
                        tracing::warn!(
                            "{addr}: {} route(s) not sent, their UPDATE does not encode: {e}",
                            nlris.len()
                        );
                        for (n, (id, was)) in nlris.iter().zip(ids) {
                            if *was {
                                unsent.push(*n);
                            }
                            s.forget(*id, n.path_id);
                        }
                    }
                }
            }
            if !unsent.is_empty() {
                match wire::pack_updates(&s.ctx, &unsent, None, &[], &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(e) => tracing::warn!("{addr}: withdrawals not encoded: {e}"),
                }
            }
            if !bytes.is_empty() {
                s.in_flight += bytes.len();
                let _ = s.out.send(SessionOut::Updates {
                    conn: s.conn,
                    bytes: bytes.freeze(),
                    updates: msgs as u64,
                });
            }
        }
        if s.pending_count == 0 && !s.synced {
            let mut bytes = BytesMut::new();
            for f in &s.ctx.families {
                if let Err(e) = Message::Update(Update::end_of_rib(*f)).encode(&s.ctx, &mut bytes) {
                    tracing::warn!("{addr}: End-of-RIB not encoded: {e}");
                }
            }
            s.synced = true;
            s.in_flight += bytes.len();
            let _ = s.out.send(SessionOut::Updates {
                conn: s.conn,
                updates: s.ctx.families.len() as u64,
                bytes: bytes.freeze(),
            });
        }
        let n = s.advertised;
        self.set_status(addr, |st| st.prefixes_advertised = n);
        self.sessions.insert(addr, s);
    }
}

/// What a session is sent for a prefix whose best path is `best`: what we originate,
/// and with `export_learned` the best paths learned from other peers (never back to
/// the peer they came from, never from one iBGP peer to another), each through the
/// session's export policy; `None` when nothing is to be sent (a withdrawal if
/// something was).
fn export_attrs(
    sp: &SpeakerConfig,
    rib: &Rib,
    local: PeerId,
    interner: &mut AttrInterner,
    s: &Session,
    prefix: IpNet,
    best: &bgp::rib::Path,
) -> Option<Arc<PathAttrs>> {
    let nh = next_hop(s, prefix.addr().is_ipv4())?;
    let mut a: PathAttrs = if best.peer == local {
        let mut a = (*best.attrs).clone();
        a.as_path = if s.ebgp {
            AsPath::from_sequence([sp.asn])
        } else {
            AsPath::default()
        };
        a.local_pref = (!s.ebgp).then_some(100);
        a
    } else if sp.export_learned {
        let src = rib.peer_info(best.peer);
        if src.addr == Some(s.peer) || (!src.ebgp && !s.ebgp) {
            return None;
        }
        // RFC 1997: NO_ADVERTISE goes to nobody, NO_EXPORT (and NO_EXPORT_SUBCONFED,
        // there being no confederation) stays inside our AS.
        let c = &best.attrs.communities;
        if c.contains(&Community::NO_ADVERTISE)
            || (s.ebgp
                && (c.contains(&Community::NO_EXPORT)
                    || c.contains(&Community::NO_EXPORT_SUBCONFED)))
        {
            return None;
        }
        let mut a = (*best.attrs).clone();
        // RFC 4271 §5: an unrecognized optional non-transitive attribute is not passed
        // on; an optional transitive one is, with the Partial bit set.
        a.unknown
            .retain(|u| u.flags & ATTR_OPTIONAL == 0 || u.flags & ATTR_TRANSITIVE != 0);
        for u in &mut a.unknown {
            if u.flags & ATTR_OPTIONAL != 0 {
                u.flags |= ATTR_PARTIAL;
            }
        }
        if s.ebgp {
            a.as_path.prepend(sp.asn, 1);
            a.local_pref = None;
            a.med = None;
            // RFC 4456: route reflection attributes never leave the AS.
            a.originator_id = None;
            a.cluster_list.clear();
        } else {
            a.local_pref = Some(a.local_pref.unwrap_or(100));
        }
        a
    } else {
        return None;
    };
    a.next_hop = Some(nh);
    match policy::apply(
        &s.export,
        &RouteContext {
            prefix,
            attrs: &a,
            neighbor: s.peer,
            ebgp: s.ebgp,
            local_as: sp.asn,
            local_addr: s.local,
        },
    ) {
        Verdict::Accept(a) => Some(interner.intern(a)),
        Verdict::Reject => None,
    }
}

const ATTR_OPTIONAL: u8 = 0x80;
const ATTR_TRANSITIVE: u8 = 0x40;
const ATTR_PARTIAL: u8 = 0x20;

/// Our next hop for a family on this session, if we can send that family at all: the
/// session's own address; IPv4 over an IPv6 session with RFC 8950; IPv6 over an IPv4
/// session only with a configured IPv6 next hop.
fn next_hop(s: &Session, v4: bool) -> Option<NextHop> {
    match (v4, s.local) {
        _ if !s.ctx.families.contains(&if v4 {
            Family::IPV4_UNICAST
        } else {
            Family::IPV6_UNICAST
        }) =>
        {
            None
        }
        (true, IpAddr::V4(a)) => Some(NextHop::V4(a)),
        (true, IpAddr::V6(a)) => s
            .ctx
            .next_hop_allowed(Family::IPV4_UNICAST, bgp::types::Afi::Ipv6)
            .then_some(NextHop::V6 {
                global: a,
                link_local: None,
            }),
        (false, IpAddr::V6(a)) => Some(NextHop::V6 {
            global: a,
            link_local: None,
        }),
        (false, IpAddr::V4(_)) => s
            .ctx
            .families
            .contains(&Family::IPV6_UNICAST)
            .then_some(())
            .and(s.next_hop_v6)
            .map(|global| NextHop::V6 {
                global,
                link_local: None,
            }),
    }
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
            publish_routes: true,
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
        let permits = Arc::new(tokio::sync::Semaphore::new(64));
        let permit = || permits.clone().try_acquire_owned().unwrap();
        let announce = |i: u8, a: PathAttrs| TableCmd::Update {
            addr: peer(i),
            update: Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(prefix)], a),
            _permit: permit(),
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
            _permit: permit(),
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

#[cfg(test)]
mod export_tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn sp(export_learned: bool) -> SpeakerConfig {
        SpeakerConfig {
            asn: 65000,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            listen: None,
            max_paths: 4,
            export_learned,
            publish_routes: true,
            communities: Vec::new(),
            large_communities: Vec::new(),
            graceful_restart: None,
        }
    }

    /// A peer's end of a session: what the table sent it, decoded.
    struct Peer {
        addr: IpAddr,
        rx: mpsc::UnboundedReceiver<SessionOut>,
        ctx: SessionCtx,
        /// Bytes received and not acknowledged yet.
        unacked: usize,
    }

    impl Peer {
        fn up(t: &mut Table, i: u8, asn_ebgp: bool, ctx: SessionCtx) -> Peer {
            let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            let (out, rx) = mpsc::unbounded_channel();
            t.handle(TableCmd::PeerUp {
                addr,
                conn: 7,
                out,
                ctx: ctx.clone(),
                local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
                ebgp: asn_ebgp,
                router_id: Ipv4Addr::new(1, 1, 1, i),
                peer_gr: None,
                next_hop_v6: None,
                policy: Box::default(),
                ebgp_requires_policy: false,
            });
            // The peer decodes with the mirror image of what the table encodes with.
            let ctx = SessionCtx {
                add_path_rx: ctx.add_path_tx.clone(),
                add_path_tx: ctx.add_path_rx.clone(),
                ..ctx
            };
            Peer {
                addr,
                rx,
                ctx,
                unacked: 0,
            }
        }

        /// Every UPDATE queued for the peer so far.
        fn take(&mut self) -> Vec<Update> {
            let mut out = Vec::new();
            while let Ok(SessionOut::Updates { bytes, .. }) = self.rx.try_recv() {
                self.unacked += bytes.len();
                let mut rest = &bytes[..];
                while let Some(len) = wire::frame_len(rest, self.ctx.max_len).unwrap() {
                    match Message::decode(&rest[..len], &self.ctx).unwrap() {
                        Message::Update(u) => out.push(u),
                        m => panic!("unexpected {m:?}"),
                    }
                    rest = &rest[len..];
                }
            }
            out
        }

        /// The writer wrote everything: the table may send more.
        fn ack(&mut self, t: &mut Table) {
            t.handle(TableCmd::Written {
                addr: self.addr,
                conn: 7,
                bytes: std::mem::take(&mut self.unacked),
            });
            t.fill_all();
            t.release_emptied();
        }

        fn send(&self, t: &mut Table, update: Update) {
            let permit = Arc::new(tokio::sync::Semaphore::new(1))
                .try_acquire_owned()
                .unwrap();
            t.handle(TableCmd::Update {
                addr: self.addr,
                update,
                _permit: permit,
            });
            t.fill_all();
            t.release_emptied();
        }
    }

    fn table(export_learned: bool) -> Table {
        Table::new(sp(export_learned), Arc::new(Mutex::new(BTreeMap::new())))
    }

    fn announced(us: &[Update]) -> Vec<IpNet> {
        us.iter()
            .flat_map(|u| {
                u.announced
                    .iter()
                    .flat_map(|(_, n)| n.iter().map(|n| n.prefix))
            })
            .collect()
    }

    fn withdrawn(us: &[Update]) -> Vec<IpNet> {
        us.iter()
            .flat_map(|u| {
                u.withdrawn
                    .iter()
                    .flat_map(|(_, n)| n.iter().map(|n| n.prefix))
            })
            .collect()
    }

    #[test]
    fn bits_find_the_next_set_bit_across_words() {
        let mut b = Bits::default();
        assert_eq!(b.next_from(0), None);
        assert!(b.set(3));
        assert!(!b.set(3));
        assert!(b.set(130));
        assert_eq!(b.next_from(0), Some(3));
        assert_eq!(b.next_from(4), Some(130));
        assert_eq!(b.next_from(131), None);
        assert!(b.clear(3));
        assert!(!b.clear(3));
        assert!(!b.clear(10_000));
        assert_eq!(b.next_from(0), Some(130));
    }

    #[test]
    fn originated_prefixes_go_out_packed_then_end_of_rib_then_withdrawals() {
        let mut t = table(false);
        t.handle(TableCmd::Originate(vec![
            net("10.1.0.1/32"),
            net("10.1.0.2/32"),
        ]));
        let mut p = Peer::up(&mut t, 1, true, SessionCtx::default());
        t.fill_all();
        let us = p.take();
        assert_eq!(us.len(), 2, "{us:?}");
        assert_eq!(announced(&us), vec![net("10.1.0.1/32"), net("10.1.0.2/32")]);
        let a = us[0].attrs.as_ref().unwrap();
        assert_eq!(a.as_path, AsPath::from_sequence([65000]));
        assert_eq!(a.next_hop, Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 100))));
        assert_eq!(us[1].is_end_of_rib(), Some(Family::IPV4_UNICAST));
        p.ack(&mut t);
        t.handle(TableCmd::Withdraw(vec![net("10.1.0.1/32")]));
        t.fill_all();
        t.release_emptied();
        let us = p.take();
        assert_eq!(withdrawn(&us), vec![net("10.1.0.1/32")]);
        assert!(announced(&us).is_empty());
        // Withdrawn everywhere: the prefix's id is free again.
        assert_eq!(t.rib.id_of(&net("10.1.0.1/32")), None);
        assert_eq!(t.sessions[&p.addr].advertised, 1);
        let (tx, mut rx) = oneshot::channel();
        t.handle(TableCmd::AdjOut {
            addr: p.addr,
            reply: tx,
        });
        assert_eq!(
            rx.try_recv().unwrap(),
            vec![(
                net("10.1.0.2/32"),
                Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)))
            )]
        );
    }

    #[test]
    fn a_slow_peer_gets_at_most_the_in_flight_budget_and_then_the_rest() {
        let mut t = table(false);
        let mut p = Peer::up(&mut t, 1, true, SessionCtx::default());
        let prefixes: Vec<IpNet> = (0..100_000u32)
            .map(|i| IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x6400_0000 + i), 32).unwrap()))
            .collect();
        t.handle(TableCmd::Originate(prefixes.clone()));
        t.fill_all();
        let mut got: Vec<IpNet> = Vec::new();
        let mut rounds = 0;
        let mut eor = false;
        loop {
            let us = p.take();
            if us.is_empty() {
                break;
            }
            assert!(
                p.unacked < IN_FLIGHT + 64 * 1024,
                "{} bytes unacknowledged",
                p.unacked
            );
            eor |= us.iter().any(|u| u.is_end_of_rib().is_some());
            got.extend(announced(&us));
            rounds += 1;
            p.ack(&mut t);
        }
        assert!(rounds > 1, "everything went out at once");
        assert!(eor);
        got.sort();
        assert_eq!(got, prefixes, "each prefix exactly once");
    }

    #[test]
    fn transit_withdrawal_and_reannouncement_reach_a_slow_peer_in_order() {
        let mut t = table(true);
        let mut a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let mut b = Peer::up(&mut t, 2, true, SessionCtx::default());
        t.fill_all();
        b.take();
        b.ack(&mut t);
        let p = net("20.0.0.0/24");
        let attrs = PathAttrs {
            as_path: AsPath::from_sequence([65001]),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ..Default::default()
        };
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
        );
        let us = b.take();
        assert_eq!(announced(&us), vec![p]);
        let got = us[0].attrs.as_ref().unwrap();
        assert_eq!(got.as_path, AsPath::from_sequence([65000, 65001]));
        assert_eq!(
            got.next_hop,
            Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 100)))
        );
        // Not sent back to where it came from.
        assert!(!announced(&a.take()).contains(&p));
        // Withdrawn and announced again: the peer ends up with the route.
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
        );
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
        );
        let us = b.take();
        let mut present = true;
        for u in &us {
            if withdrawn(std::slice::from_ref(u)).contains(&p) {
                present = false;
            }
            if announced(std::slice::from_ref(u)).contains(&p) {
                present = true;
            }
        }
        assert!(present, "{us:?}");
    }

    #[test]
    fn add_path_paths_of_one_peer_are_kept_apart() {
        let mut t = table(false);
        let a = Peer::up(&mut t, 1, false, SessionCtx::default());
        let p = net("198.51.100.0/24");
        let via = |last: u8| PathAttrs {
            as_path: AsPath::from_sequence([65010]),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 9, 0, last))),
            local_pref: Some(100),
            ..Default::default()
        };
        let with_id = |id: u32| Nlri {
            prefix: p,
            path_id: Some(id),
        };
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![with_id(1)], via(1)),
        );
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![with_id(2)], via(2)),
        );
        let hops = |t: &Table| t.routes.get(&p).cloned().unwrap_or_default();
        assert_eq!(
            hops(&t),
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2))
            ]
        );
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![with_id(1)]),
        );
        assert_eq!(hops(&t), vec![IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2))]);
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![with_id(2)]),
        );
        assert!(hops(&t).is_empty());
    }

    #[test]
    fn a_prefix_we_originate_still_publishes_the_route_learned_for_it() {
        let mut t = table(false);
        let a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let p = net("10.1.1.0/24");
        t.handle(TableCmd::Originate(vec![p]));
        let attrs = PathAttrs {
            as_path: AsPath::from_sequence([65001, 65002]),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ..Default::default()
        };
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
        );
        let via_a = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))];
        assert_eq!(t.routes.get(&p), Some(&via_a));
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
        );
        assert_eq!(t.routes.get(&p), None);
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
        );
        // No longer originated: the learned route stays.
        t.handle(TableCmd::Withdraw(vec![p]));
        assert_eq!(t.routes.get(&p), Some(&via_a));
    }

    #[test]
    fn add_path_send_gives_every_path_its_own_identifier() {
        let mut t = table(true);
        let mut a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let b = Peer::up(&mut t, 2, true, SessionCtx::default());
        let tx = SessionCtx {
            add_path_tx: vec![Family::IPV4_UNICAST],
            ..SessionCtx::default()
        };
        let mut c = Peer::up(&mut t, 3, true, tx);
        t.fill_all();
        c.take();
        c.ack(&mut t);
        let p = net("203.0.113.0/24");
        let via = |peer: u8, asn: u32| PathAttrs {
            as_path: AsPath::from_sequence([asn]),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, peer))),
            ..Default::default()
        };
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, 65001)),
        );
        b.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(2, 65002)),
        );
        let ids = |us: &[Update]| -> Vec<Option<u32>> {
            let mut v: Vec<Option<u32>> = us
                .iter()
                .flat_map(|u| {
                    u.announced
                        .iter()
                        .flat_map(|(_, n)| n.iter().map(|n| n.path_id))
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        // Both paths, under two identifiers.
        let us = c.take();
        c.ack(&mut t);
        let got = ids(&us);
        assert_eq!(got.len(), 2, "{us:?}");
        assert!(got.iter().all(|i| i.is_some()));
        // Without ADD-PATH, a gets the best path only: its own, so nothing.
        assert!(!announced(&a.take()).contains(&p));
        // a withdraws: c loses exactly a's path identifier.
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
        );
        let us = c.take();
        let gone: Vec<Option<u32>> = us
            .iter()
            .flat_map(|u| {
                u.withdrawn
                    .iter()
                    .flat_map(|(_, n)| n.iter().map(|n| n.path_id))
            })
            .collect();
        assert_eq!(gone.len(), 1, "{us:?}");
        assert!(got.contains(&gone[0]));
        // b's path did not change: it is not sent again.
        assert!(announced(&us).is_empty(), "{us:?}");
        // A route refresh sends it again, under the same identifier.
        c.ack(&mut t);
        t.handle(TableCmd::Refresh {
            addr: c.addr,
            family: Family::IPV4_UNICAST,
        });
        t.fill_all();
        let us = c.take();
        let again = ids(&us);
        assert_eq!(again.len(), 1, "{us:?}");
        assert!(got.contains(&again[0]) && again[0] != gone[0]);
        assert_eq!(
            t.sessions[&c.addr]
                .sent_paths
                .values()
                .map(Vec::len)
                .sum::<usize>(),
            1
        );
    }

    fn down(t: &mut Table, addr: IpAddr, graceful: bool) {
        let conn = t.sessions.get(&addr).map(|s| s.conn);
        t.handle(TableCmd::PeerDown {
            addr,
            conn,
            graceful,
        });
        t.fill_all();
        t.release_emptied();
    }

    fn via(peer: u8, path: &[u32]) -> PathAttrs {
        PathAttrs {
            as_path: AsPath::from_sequence(path.iter().copied()),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(10, 0, 0, peer))),
            ..Default::default()
        }
    }

    #[test]
    fn the_route_published_under_our_own_prefix_goes_with_its_peer() {
        let mut t = table(false);
        let a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let p = net("10.1.1.0/24");
        t.handle(TableCmd::Originate(vec![p]));
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, &[65001])),
        );
        assert!(t.routes.contains_key(&p));
        down(&mut t, a.addr, false);
        assert_eq!(t.rib.paths(&p).len(), 1, "only our own path is left");
        assert_eq!(t.routes.get(&p), None);
    }

    #[test]
    fn add_path_send_follows_paths_outside_the_group() {
        let mut t = table(true);
        let a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let b = Peer::up(&mut t, 2, true, SessionCtx::default());
        let tx = SessionCtx {
            add_path_tx: vec![Family::IPV4_UNICAST],
            ..SessionCtx::default()
        };
        let mut c = Peer::up(&mut t, 3, true, tx);
        t.fill_all();
        c.take();
        c.ack(&mut t);
        let p = net("203.0.113.0/24");
        b.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(2, &[65002])),
        );
        assert_eq!(announced(&c.take()), vec![p]);
        c.ack(&mut t);
        // A longer path: a backup, outside the group — still a path C is sent.
        a.send(
            &mut t,
            Update::announce(
                Family::IPV4_UNICAST,
                vec![Nlri::new(p)],
                via(1, &[65001, 65009]),
            ),
        );
        let us = c.take();
        assert_eq!(announced(&us), vec![p], "{us:?}");
        c.ack(&mut t);
        // And its withdrawal.
        a.send(
            &mut t,
            Update::withdraw(Family::IPV4_UNICAST, vec![Nlri::new(p)]),
        );
        let us = c.take();
        assert_eq!(withdrawn(&us), vec![p], "{us:?}");
        assert!(announced(&us).is_empty(), "{us:?}");
    }

    #[test]
    fn a_route_too_large_for_a_peer_is_withdrawn_from_it() {
        let mut t = table(true);
        let big = SessionCtx {
            extended_messages: true,
            max_len: 65535,
            ..SessionCtx::default()
        };
        let a = Peer::up(&mut t, 1, true, big);
        let mut c = Peer::up(&mut t, 3, true, SessionCtx::default());
        t.fill_all();
        c.take();
        c.ack(&mut t);
        let p = net("203.0.113.0/24");
        let mut attrs = via(1, &[65001]);
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs.clone()),
        );
        assert_eq!(announced(&c.take()), vec![p]);
        c.ack(&mut t);
        attrs.communities = (0..3000u32).map(Community).collect();
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
        );
        let us = c.take();
        assert_eq!(withdrawn(&us), vec![p], "{us:?}");
        assert_eq!(t.sessions[&c.addr].advertised, 0);
    }

    #[test]
    fn a_family_the_peer_did_not_negotiate_is_not_sent() {
        let mut t = table(false);
        let v6_only = SessionCtx {
            families: vec![Family::IPV6_UNICAST],
            ..SessionCtx::default()
        };
        let mut c = Peer::up(&mut t, 3, true, v6_only);
        t.fill_all();
        c.take();
        c.ack(&mut t);
        t.handle(TableCmd::Originate(vec![net("10.9.0.0/24")]));
        t.fill_all();
        assert!(announced(&c.take()).is_empty());
    }

    #[test]
    fn well_known_communities_and_route_reflection_attributes_are_honoured() {
        let mut t = table(true);
        let a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let mut ebgp = Peer::up(&mut t, 3, true, SessionCtx::default());
        let mut ibgp = Peer::up(&mut t, 4, false, SessionCtx::default());
        t.fill_all();
        for x in [&mut ebgp, &mut ibgp] {
            x.take();
            x.ack(&mut t);
        }
        let with = |c: Community, n: &str| {
            let mut a = via(1, &[65001]);
            a.communities = vec![c];
            (net(n), a)
        };
        for (p, attrs) in [
            with(Community::NO_EXPORT, "203.0.113.0/24"),
            with(Community::NO_ADVERTISE, "203.0.113.1/32"),
        ] {
            a.send(
                &mut t,
                Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], attrs),
            );
        }
        let mut rr = via(1, &[65001]);
        rr.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
        rr.cluster_list = vec![Ipv4Addr::new(8, 8, 8, 8)];
        rr.unknown = vec![
            bgp::types::RawAttr {
                flags: 0x80,
                type_code: 250,
                value: vec![1],
            },
            bgp::types::RawAttr {
                flags: 0xC0,
                type_code: 251,
                value: vec![2],
            },
        ];
        let q = net("198.51.100.0/24");
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(q)], rr),
        );
        let to_ebgp = ebgp.take();
        assert_eq!(announced(&to_ebgp), vec![q], "no-export, no-advertise stay");
        let got = to_ebgp[0].attrs.as_ref().unwrap();
        assert_eq!((got.originator_id, got.cluster_list.len()), (None, 0));
        assert_eq!(got.unknown.len(), 1, "only the transitive one goes on");
        assert_eq!(got.unknown[0].type_code, 251);
        assert_ne!(got.unknown[0].flags & 0x20, 0, "with the Partial bit");
        let mut to_ibgp = announced(&ibgp.take());
        to_ibgp.sort();
        assert_eq!(
            to_ibgp,
            vec![q, net("203.0.113.0/24")],
            "no-export goes inside the AS"
        );
    }

    #[test]
    fn news_of_an_older_connection_leaves_the_session_alone() {
        let mut t = table(false);
        let a = Peer::up(&mut t, 1, true, SessionCtx::default());
        let p = net("20.0.0.0/24");
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p)], via(1, &[65001])),
        );
        // A PeerDown from another connection (a replaced neighbor's late stop).
        t.handle(TableCmd::PeerDown {
            addr: a.addr,
            conn: Some(1234),
            graceful: false,
        });
        t.handle(TableCmd::PeerDown {
            addr: a.addr,
            conn: None,
            graceful: false,
        });
        assert!(t.sessions.contains_key(&a.addr));
        assert!(t.routes.contains_key(&p));
        down(&mut t, a.addr, false);
        assert!(!t.routes.contains_key(&p));
    }

    #[test]
    fn a_restarted_peer_keeps_stale_routes_only_where_it_kept_forwarding() {
        let mut spc = sp(false);
        spc.graceful_restart = Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            stale_time: Duration::from_secs(300),
        });
        let mut t = Table::new(spc, Arc::new(Mutex::new(BTreeMap::new())));
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let gr = |f4: bool| GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: vec![(Family::IPV4_UNICAST, f4), (Family::IPV6_UNICAST, true)],
        };
        let up = |t: &mut Table, rid: u8, g: GracefulRestart| {
            let (out, rx) = mpsc::unbounded_channel();
            t.handle(TableCmd::PeerUp {
                addr,
                conn: u64::from(rid),
                out,
                ctx: SessionCtx::default(),
                local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
                ebgp: true,
                router_id: Ipv4Addr::new(1, 1, 1, rid),
                peer_gr: Some(g),
                next_hop_v6: None,
                policy: Box::default(),
                ebgp_requires_policy: false,
            });
            rx
        };
        let _rx = up(&mut t, 1, gr(true));
        let a = Peer {
            addr,
            rx: mpsc::unbounded_channel().1,
            ctx: SessionCtx::default(),
            unacked: 0,
        };
        let (p1, p2) = (net("10.1.0.0/24"), net("10.2.0.0/24"));
        a.send(
            &mut t,
            Update::announce(
                Family::IPV4_UNICAST,
                vec![Nlri::new(p1), Nlri::new(p2)],
                via(1, &[65001]),
            ),
        );
        down(&mut t, addr, true);
        assert!(t.routes.contains_key(&p1) && t.routes.contains_key(&p2));
        // Back with a new router id, IPv4 forwarding kept: stale until End-of-RIB.
        let _rx2 = up(&mut t, 9, gr(true));
        a.send(
            &mut t,
            Update::announce(Family::IPV4_UNICAST, vec![Nlri::new(p1)], via(1, &[65001])),
        );
        a.send(&mut t, Update::end_of_rib(Family::IPV4_UNICAST));
        assert!(t.routes.contains_key(&p1) && !t.routes.contains_key(&p2));
        assert!(t.stale.is_empty());
        assert_eq!(
            t.rib.peer_info(t.peer_ids[&addr]).router_id,
            Ipv4Addr::new(1, 1, 1, 9)
        );
        // Down again, and back without IPv4 forwarding kept: its IPv4 routes go at once.
        down(&mut t, addr, true);
        assert!(t.routes.contains_key(&p1));
        let _rx3 = up(&mut t, 10, gr(false));
        assert!(!t.routes.contains_key(&p1));
    }
}
