//! The table task: every peer's Adj-RIB-In and the Loc-RIB in one [`bgp::rib::Rib`]
//! (the prefixes we originate are the paths of its local peer), the published routes,
//! and what each session is sent.
//!
//! - `mod.rs`: the task, its commands, sessions coming and going (graceful restart's
//!   stale routes included) and the routes published for the FIB.
//! - `import.rs`: a peer's UPDATE into the RIB (loop detection, LOCAL_PREF from eBGP
//!   ignored, import policy, max-prefix).
//! - `export.rs`: the I/O glue of [`bgp::rib::Export`], which decides what each session
//!   is sent from the Loc-RIB (pending and sent bitmaps over prefix ids, no per-session
//!   copy of the table): handing its UPDATEs to the session's writer and taking the
//!   writer's acknowledgements back, [`bgp::rib::IN_FLIGHT`] bytes at most outstanding.

use bgp::policy::{MaxPrefixState, Policy};
use bgp::rib::{AttrInterner, Change, Export, PeerId, PeerInfo, PeerOut, PeerParams, Rib};

use super::*;

mod export;
mod import;
#[cfg(test)]
mod tests;

/// Route changes published as soon as the table is idle; more wait for PUBLISH_EVERY.
const PUBLISH_AT_ONCE: usize = 1024;
/// How often the learned routes are published while UPDATEs keep coming.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// An established session as the table sees it.
struct Session {
    id: PeerId,
    conn: u64,
    out: mpsc::UnboundedSender<SessionOut>,
    router_id: Ipv4Addr,
    peer_gr: Option<GracefulRestart>,
    import: Policy,
    max_prefix: Option<MaxPrefixState>,
    /// Families the peer sent End-of-RIB for in this session.
    eor: BTreeSet<Family>,
    /// What the session is sent: its address, ours, eBGP or not, what it negotiated and
    /// its export policy, with the export state.
    export: PeerOut,
}

impl Session {
    fn addr(&self) -> IpAddr {
        self.export.params.addr
    }

    fn ctx(&self) -> &SessionCtx {
        &self.export.params.ctx
    }

    fn ebgp(&self) -> bool {
        self.export.params.ebgp
    }

    fn local(&self) -> IpAddr {
        self.export.params.local
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
    /// What each session is sent.
    export: Export,
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
        let export = Export::new(sp.asn, sp.export_learned, local);
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
            export,
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
                id: self.local, // replaced in peer_up
                conn,
                out,
                router_id,
                peer_gr,
                eor: BTreeSet::new(),
                max_prefix: policy.max_prefix.map(MaxPrefixState::new),
                import: policy
                    .effective_import(ebgp, !ebgp_requires_policy)
                    .into_owned(),
                export: PeerOut::new(PeerParams {
                    addr,
                    local,
                    ebgp,
                    ctx,
                    next_hop_v6,
                    policy: policy
                        .effective_export(ebgp, !ebgp_requires_policy)
                        .into_owned(),
                }),
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
                if let Some(s) = self.sessions.get_mut(&addr) {
                    s.export.refresh(&self.rib, family);
                }
            }
            TableCmd::Written { addr, conn, bytes } => {
                if let Some(s) = self.sessions.get_mut(&addr)
                    && s.conn == conn
                {
                    s.export.written(bytes);
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
                let _ = reply.send(self.adj_rib_out(addr));
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
        let addr = s.addr();
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
                    self.export.peer_removed(id);
                    self.apply(changes);
                }
                self.set_status(addr, |st| st.stale_routes = 0);
            }
        }
        let info = PeerInfo {
            addr: Some(addr),
            router_id: s.router_id,
            ebgp: s.ebgp(),
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
        s.export.mark_all(&self.rib);
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
                self.export.peer_removed(id);
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
                self.export.peer_removed(id);
                self.apply(changes);
                self.set_status(addr, |s| s.stale_routes = 0);
            }
        }
    }

    /// Loc-RIB changes: every session looks at the prefix again; the published routes
    /// follow.
    fn apply(&mut self, changes: Vec<Change>) {
        for c in changes {
            self.export
                .changed(&c, self.sessions.values_mut().map(|s| &mut s.export));
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
}
