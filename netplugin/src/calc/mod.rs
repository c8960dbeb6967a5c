//! The calculation core of netplugin's reconciler: what the host should look like, from
//! what the agent knows. Pure: no I/O, no clock (time comes in as an argument), no
//! tokio; every input is data and every output is data.
//!
//! The reconciler is shaped like Calico Felix's dataplane: **calc → managers → drivers**.
//!
//! - [`Calc`] (here) holds the inputs — the intent as it concerns this host
//!   ([`IntentView`], read once per intent change), the local endpoints, the routes the
//!   speaker selected — and turns each *change* of an input into the outputs it affects:
//!   a route for a prefix of the FIB, a prefix to originate or withdraw. An endpoint
//!   coming or going touches its own /32 and its own advertisement, nothing else.
//! - The managers (`crate::managers`) receive those outputs, mark what is dirty and, once
//!   per pass, program the kernel through the drivers — the smallest delta, in batches.
//! - The drivers (`crate::fib`, `crate::links`) are small traits over netlink with
//!   in-memory fakes.
//!
//! [`Convergence`] decides the graceful-restart hold: after a restart, routes learned
//! before it stay in the kernel until the speaker has converged (or the hold time is
//! over).
//!
//! The state-to-state property: what [`Calc`] asks for depends only on its current
//! inputs, not on the order they arrived in (`calc::tests`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerStatus, Routes};
use contiv_model::{Bgp, Global, Network, Object};
use ipnet::IpNet;

pub use self::bgp::{BgpPlan, PlanError, bgp_plan};
use crate::fib::Route;
use crate::intent::Mirror;
use crate::routing::{self, AdvertiseMode, RemoteEndpoint};

pub mod bgp;
pub mod import;
#[cfg(test)]
mod tests;

/// The forwarding mode netplugin implements.
pub const ROUTING: &str = "routing";

/// The stored forwarding mode (Contiv's default is bridge when nothing is set).
pub fn stored_fwd_mode(m: &Mirror) -> String {
    m.get::<Global>(Global::PLURAL, "global")
        .map(|g| g.fwd_mode)
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "bridge".to_string())
}

/// The intent as it concerns this host, read from the mirror once per intent change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentView {
    /// The agent has intent (from netmaster or saved): until then nothing is touched.
    pub have_intent: bool,
    /// The fabric's forwarding mode (`routing`, `bridge`).
    pub fwd_mode: String,
    /// The host's `Bgp` object read into a plan (routing mode only), or why it cannot be.
    pub bgp: Option<Result<BgpPlan, PlanError>>,
    /// `tenant:network` → subnet, for `network-subnet` advertisement.
    pub subnets: BTreeMap<String, IpNet>,
    /// Endpoints of other hosts on this host's own router segment, routed directly
    /// (only with `direct_routes`).
    pub direct: Vec<RemoteEndpoint>,
    /// The fabric's prefixes every `Bgp` object names: host blocks, router subnets and
    /// `local-addresses` subnets (for the import policy, `calc::import`).
    pub fabric_prefixes: BTreeSet<IpNet>,
    /// The networks' gateways (routing mode), as /32s. Each gets a route to the
    /// loopback ([`LOOPBACK_IFINDEX`]) so that the host answers a container's ARP for its
    /// gateway by proxy ARP on the veth (proxy ARP answers only for an address the host
    /// routes through another interface). CNI containers never ARP for it (a permanent
    /// neighbour entry); Docker's do, and a host with no route covering the gateway —
    /// no default of its own, and the ToRs' default not accepted — left them without one.
    pub gateways: BTreeSet<IpNet>,
}

/// The loopback's interface index, the same in every network namespace.
pub const LOOPBACK_IFINDEX: u32 = 1;

impl IntentView {
    /// Reads the mirror. Cost grows with the fabric's endpoints only with
    /// `direct_routes` (the endpoint → host map is read then).
    pub fn from_mirror(m: &Mirror, host: &str, direct_routes: bool) -> IntentView {
        let have_intent = m.revision > 0 || !m.objects.is_empty();
        let fwd_mode = stored_fwd_mode(m);
        let bgp = (fwd_mode == ROUTING)
            .then(|| m.get::<Bgp>(Bgp::PLURAL, host))
            .flatten()
            .map(|b| bgp_plan(&b));
        let subnets = m
            .list::<Network>(Network::PLURAL)
            .into_iter()
            .filter_map(|n| {
                let s = contiv_model::validate::parse_subnet("subnet", &n.subnet).ok()?;
                Some((
                    format!("{}:{}", n.tenant_name, n.network_name),
                    IpNet::from(s.net),
                ))
            })
            .collect();
        let direct = match &bgp {
            Some(Ok(p)) if direct_routes => {
                let hosts: BTreeMap<String, IpAddr> = m
                    .list::<Bgp>(Bgp::PLURAL)
                    .into_iter()
                    .filter_map(|b| {
                        let net: IpNet = b.routerip.parse().ok()?;
                        Some((b.hostname, net.addr()))
                    })
                    .collect();
                let eps: Vec<(String, Vec<IpAddr>)> = m
                    .list::<contiv_model::Endpoint>(contiv_model::Endpoint::PLURAL)
                    .into_iter()
                    .map(|e| {
                        let addrs = e.ip_address.iter().filter_map(|a| a.parse().ok()).collect();
                        (e.homing_host, addrs)
                    })
                    .collect();
                routing::direct_endpoints(host, p.router_net_full, &hosts, &eps)
            }
            _ => Vec::new(),
        };
        let fabric_prefixes = fabric_prefixes(&m.list::<Bgp>(Bgp::PLURAL));
        let gateways = if fwd_mode == ROUTING {
            m.list::<Network>(Network::PLURAL)
                .into_iter()
                .filter_map(|n| n.gateway.parse::<std::net::Ipv4Addr>().ok())
                .map(|g| routing::host_route(IpAddr::V4(g)))
                .collect()
        } else {
            BTreeSet::new()
        };
        IntentView {
            gateways,
            have_intent,
            fwd_mode,
            bgp,
            subnets,
            direct,
            fabric_prefixes,
        }
    }

    /// The import policy this view asks for, with the host's own prefixes read from its
    /// kernel.
    pub fn import_filter(&self, own_kernel: &BTreeSet<IpNet>) -> import::ImportFilter {
        let plan = self.plan();
        let own_intent: BTreeSet<IpNet> = plan
            .into_iter()
            .flat_map(|p| {
                std::iter::once(p.router_net)
                    .chain(p.guard.local_nets.iter().map(|n| IpNet::V4(n.trunc())))
            })
            .collect();
        import::ImportFilter {
            allowed: self
                .subnets
                .values()
                .map(IpNet::trunc)
                .chain(self.fabric_prefixes.iter().copied())
                .collect(),
            own_intent,
            own_kernel: own_kernel.clone(),
            accept_default: plan.is_some_and(|p| p.guard.accept_default),
        }
    }

    /// The host's BGP plan, when its `Bgp` object is in effect.
    pub fn plan(&self) -> Option<&BgpPlan> {
        self.bgp.as_ref().and_then(|b| b.as_ref().ok())
    }
}

/// The prefixes the `Bgp` objects name (valid ones only): each host's block, router
/// subnet and `local-addresses` subnets.
pub fn fabric_prefixes(objects: &[Bgp]) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    for b in objects {
        let Ok(spec) = contiv_model::bgp::BgpSpec::parse(b) else {
            continue;
        };
        out.insert(IpNet::V4(spec.router_net.trunc()));
        out.extend(spec.guard.local_nets.iter().map(|n| IpNet::V4(n.trunc())));
        if let contiv_model::bgp::AdvertiseSpec::HostBlock(block) = spec.advertise {
            out.insert(IpNet::V4(block.trunc()));
        }
    }
    out
}

/// The IPv4 default route's prefix.
pub const DEFAULT_V4: IpNet = IpNet::V4(ipnet::Ipv4Net::new_assert(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// A container endpoint plumbed on this host, as the calc sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: IpAddr,
    /// The host-side veth's interface index.
    pub host_ifindex: u32,
    /// `tenant:network`.
    pub network: String,
}

/// What one change of the inputs asks of the managers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updates {
    /// Prefix → the route it should have now (`None`: no route of ours).
    pub routes: BTreeMap<IpNet, Option<Route>>,
    /// Prefix → originate (`true`) or withdraw (`false`).
    pub advertise: BTreeMap<IpNet, bool>,
}

impl Updates {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.advertise.is_empty()
    }
}

/// The calculation: inputs in, changes of the desired state out.
#[derive(Debug, Default)]
pub struct Calc {
    intent: IntentView,
    /// Local endpoints by key (the agent's attachment key).
    endpoints: BTreeMap<String, Endpoint>,
    /// /32 of a local endpoint → the endpoints with that address (normally one) and
    /// their veths; the first by key gets the route, whatever order they came in.
    local: BTreeMap<IpNet, BTreeMap<String, u32>>,
    learned: Arc<Routes>,
    direct: BTreeMap<IpNet, IpAddr>,
    /// Prefixes never installed from BGP (the host's own router subnet).
    protected: Option<IpNet>,
    /// The host has an IPv4 default route of its own: a learned default is not installed.
    host_default: bool,
    /// The host's own prefixes as its kernel has them (`set_own_prefixes`).
    own_kernel: BTreeSet<IpNet>,
    /// The import policy of learned routes, from the intent and `own_kernel`.
    filter: import::ImportFilter,
    /// Learned prefixes the import policy keeps out of the kernel, with why.
    rejected: BTreeMap<IpNet, import::Rejection>,
    /// The route last asked for, per prefix.
    routes: BTreeMap<IpNet, Route>,
    /// Advertised prefix → how many local endpoints stand behind it.
    adverts: BTreeMap<IpNet, usize>,
    pending: Updates,
}

impl Calc {
    pub fn new() -> Calc {
        Calc::default()
    }

    pub fn intent(&self) -> &IntentView {
        &self.intent
    }

    /// The local endpoints the calc knows.
    pub fn endpoints(&self) -> &BTreeMap<String, Endpoint> {
        &self.endpoints
    }

    /// The desired FIB as a whole (for status and tests).
    pub fn routes(&self) -> &BTreeMap<IpNet, Route> {
        &self.routes
    }

    /// The prefixes to originate as a whole.
    pub fn advertised(&self) -> BTreeSet<IpNet> {
        self.adverts.keys().copied().collect()
    }

    /// The learned routes the calc was last given.
    pub fn learned(&self) -> &Arc<Routes> {
        &self.learned
    }

    /// Learned prefixes kept out of the kernel by the import policy, with why.
    pub fn rejected(&self) -> &BTreeMap<IpNet, import::Rejection> {
        &self.rejected
    }

    /// The host's own prefixes as read from its kernel (its addresses' subnets and the
    /// main table's routes that are not ours): no learned route overlapping one is
    /// installed.
    pub fn set_own_prefixes(&mut self, own: BTreeSet<IpNet>) {
        if own != self.own_kernel {
            self.own_kernel = own;
            self.refilter();
        }
    }

    /// The import policy again from the intent and the host's prefixes; every learned
    /// prefix is evaluated again when it changed (a route already learned is installed
    /// or removed without its session being touched).
    fn refilter(&mut self) {
        let filter = self.intent.import_filter(&self.own_kernel);
        if filter == self.filter {
            return;
        }
        self.filter = filter;
        let learned: Vec<IpNet> = self.learned.keys().copied().collect();
        for p in learned {
            self.refresh(p);
        }
    }

    /// Everything asked for since the last call.
    pub fn take_updates(&mut self) -> Updates {
        std::mem::take(&mut self.pending)
    }

    /// A new intent view. Touches the prefixes whose direct route, protection or
    /// advertisement it changes.
    pub fn set_intent(&mut self, intent: IntentView) {
        if intent == self.intent {
            return;
        }
        let old_mode = self.advert_mode();
        let old_subnets = std::mem::take(&mut self.intent.subnets);
        let old_protected = self.protected;
        let gateways_touched: Vec<IpNet> = self
            .intent
            .gateways
            .symmetric_difference(&intent.gateways)
            .copied()
            .collect();
        self.intent = intent;
        for p in gateways_touched {
            self.refresh(p);
        }
        self.protected = self.intent.plan().map(|p| p.router_net);
        if old_protected != self.protected {
            for p in old_protected.into_iter().chain(self.protected) {
                self.refresh(p);
            }
        }
        let direct: BTreeMap<IpNet, IpAddr> = self
            .intent
            .direct
            .iter()
            .map(|r| (routing::host_route(r.address), r.host_router_ip))
            .collect();
        if direct != self.direct {
            let touched: BTreeSet<IpNet> = self
                .direct
                .keys()
                .chain(direct.keys())
                .filter(|p| self.direct.get(p) != direct.get(p))
                .copied()
                .collect();
            self.direct = direct;
            for p in touched {
                self.refresh(p);
            }
        }
        self.refilter();
        let subnets_changed = old_subnets != self.intent.subnets;
        if old_mode != self.advert_mode()
            || (subnets_changed
                && matches!(self.advert_mode(), Some(AdvertiseMode::NetworkSubnets)))
        {
            self.recompute_adverts(old_mode.as_ref(), &old_subnets);
        }
    }

    /// Whether the host has an IPv4 default route of its own (read by the FIB driver).
    /// The host's default is the host's business — its management network, its
    /// upstream: a default learned from the ToRs never competes with it (whichever
    /// metric either has), and is installed only on a host without one.
    pub fn set_host_default(&mut self, has: bool) {
        if has != self.host_default {
            self.host_default = has;
            self.refresh(DEFAULT_V4);
        }
    }

    /// An endpoint plumbed (or changed) on this host.
    pub fn endpoint_up(&mut self, key: &str, ep: Endpoint) {
        if self.endpoints.get(key) == Some(&ep) {
            return;
        }
        self.endpoint_down(key);
        let p = routing::host_route(ep.address);
        self.local
            .entry(p)
            .or_default()
            .insert(key.to_string(), ep.host_ifindex);
        if let Some(a) = self.advert_of(&ep, self.advert_mode().as_ref(), &self.intent.subnets) {
            self.advert_add(a);
        }
        self.endpoints.insert(key.to_string(), ep);
        self.refresh(p);
    }

    /// An endpoint gone from this host.
    pub fn endpoint_down(&mut self, key: &str) {
        let Some(ep) = self.endpoints.remove(key) else {
            return;
        };
        let p = routing::host_route(ep.address);
        // Another endpoint with the same address (a stale record) keeps the /32.
        if let Some(m) = self.local.get_mut(&p) {
            m.remove(key);
            if m.is_empty() {
                self.local.remove(&p);
            }
        }
        if let Some(a) = self.advert_of(&ep, self.advert_mode().as_ref(), &self.intent.subnets) {
            self.advert_remove(a);
        }
        self.refresh(p);
    }

    /// The routes the speaker selected. Only prefixes whose next hops changed are touched.
    pub fn set_learned(&mut self, learned: Arc<Routes>) {
        if Arc::ptr_eq(&learned, &self.learned) {
            return;
        }
        let old = std::mem::replace(&mut self.learned, learned);
        let mut touched = Vec::new();
        let new = self.learned.clone();
        let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
        // Both maps are ordered: one merge walk finds what changed.
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((pa, _)), None) => {
                    touched.push(**pa);
                    a.next();
                }
                (None, Some((pb, _))) => {
                    touched.push(**pb);
                    b.next();
                }
                (Some((pa, na)), Some((pb, nb))) => match pa.cmp(pb) {
                    std::cmp::Ordering::Less => {
                        touched.push(**pa);
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        touched.push(**pb);
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if na != nb {
                            touched.push(**pa);
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
        for p in touched {
            self.refresh(p);
        }
    }

    /// The route a prefix should have: a local endpoint wins over a direct route, which
    /// wins over a learned one (a ToR echoing our own /32 back must never pull our
    /// container's traffic into the fabric); the host's own router subnet is never
    /// taken from BGP.
    fn wanted(&self, p: IpNet) -> Option<Route> {
        if let Some(ix) = self.local.get(&p).and_then(|m| m.values().next()) {
            return Some(Route::dev(p, *ix));
        }
        if let Some(via) = self.direct.get(&p) {
            return Some(Route::new(p, [*via]));
        }
        if self.intent.gateways.contains(&p) {
            return Some(Route::dev(p, LOOPBACK_IFINDEX));
        }
        if self.protected == Some(p) || (self.host_default && p == DEFAULT_V4) {
            return None;
        }
        let nh = self.learned.get(&p).filter(|nh| !nh.is_empty())?;
        if self.filter.check(p).is_err() {
            return None;
        }
        Some(Route::new(p, nh.iter().copied()))
    }

    /// Why the import policy keeps a learned prefix out, when it does (a local
    /// endpoint's or a direct route is not a learned one).
    fn rejection(&self, p: IpNet) -> Option<import::Rejection> {
        if self.local.contains_key(&p)
            || self.direct.contains_key(&p)
            || self.intent.gateways.contains(&p)
            || self.learned.get(&p).is_none_or(|nh| nh.is_empty())
        {
            return None;
        }
        self.filter.check(p).err()
    }

    fn refresh(&mut self, p: IpNet) {
        match self.rejection(p) {
            Some(r) => self.rejected.insert(p, r),
            None => self.rejected.remove(&p),
        };
        let want = self.wanted(p);
        if self.routes.get(&p) == want.as_ref() {
            return;
        }
        match &want {
            Some(r) => self.routes.insert(p, r.clone()),
            None => self.routes.remove(&p),
        };
        self.pending.routes.insert(p, want);
    }

    fn advert_mode(&self) -> Option<AdvertiseMode> {
        self.intent.plan().map(|p| p.advertise.clone())
    }

    fn advert_of(
        &self,
        ep: &Endpoint,
        mode: Option<&AdvertiseMode>,
        subnets: &BTreeMap<String, IpNet>,
    ) -> Option<IpNet> {
        let host = routing::host_route(ep.address);
        Some(match mode? {
            AdvertiseMode::PerEndpoint => host,
            AdvertiseMode::HostBlocks(blocks) => blocks
                .iter()
                .find(|b| b.contains(&ep.address))
                .map_or(host, IpNet::trunc),
            AdvertiseMode::NetworkSubnets => subnets.get(&ep.network).map_or(host, IpNet::trunc),
        })
    }

    fn advert_add(&mut self, p: IpNet) {
        let n = self.adverts.entry(p).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.note_advert(p, true);
        }
    }

    fn advert_remove(&mut self, p: IpNet) {
        if let Some(n) = self.adverts.get_mut(&p) {
            *n -= 1;
            if *n == 0 {
                self.adverts.remove(&p);
                self.note_advert(p, false);
            }
        }
    }

    fn note_advert(&mut self, p: IpNet, on: bool) {
        // Withdrawn then originated again within one batch (or the reverse) is no change.
        match self.pending.advertise.get(&p) {
            Some(prev) if *prev != on => {
                self.pending.advertise.remove(&p);
            }
            _ => {
                self.pending.advertise.insert(p, on);
            }
        }
    }

    /// The advertisement mode or the subnets changed: every endpoint's advertisement is
    /// computed again (a rare, whole-host change).
    fn recompute_adverts(
        &mut self,
        old_mode: Option<&AdvertiseMode>,
        old_subnets: &BTreeMap<String, IpNet>,
    ) {
        let mode = self.advert_mode();
        let eps: Vec<Endpoint> = self.endpoints.values().cloned().collect();
        for ep in &eps {
            if let Some(a) = self.advert_of(ep, old_mode, old_subnets) {
                self.advert_remove(a);
            }
        }
        for ep in &eps {
            if let Some(a) = self.advert_of(ep, mode.as_ref(), &self.intent.subnets) {
                self.advert_add(a);
            }
        }
    }
}

/// The graceful-restart hold after a start: routes learned before it stay in the kernel
/// until every neighbor has sent its whole table (End-of-RIB with graceful restart, else
/// a few seconds of being up) or the hold time — the graceful-restart time, at least
/// 60 s — is over. Only the start holds: once over, it stays over.
#[derive(Debug, Clone)]
pub struct Convergence {
    started: Instant,
    converged_once: bool,
}

/// How long a session without graceful restart must be up before its table counts as
/// complete.
pub const SETTLED_AFTER: u64 = 3;

impl Convergence {
    pub fn new(started: Instant) -> Convergence {
        Convergence {
            started,
            converged_once: false,
        }
    }

    /// Whether learned routes are held now. `now_unix` is wall-clock seconds (the
    /// speaker's `established_at` is in those); `neighbors` is `None` while no speaker
    /// runs.
    pub fn hold(
        &mut self,
        now: Instant,
        now_unix: u64,
        plan: Option<&BgpPlan>,
        neighbors: Option<&[PeerStatus]>,
    ) -> bool {
        let Some(plan) = plan else {
            return false;
        };
        if self.converged_once {
            return false;
        }
        let hold_for = Duration::from_secs(u64::from(plan.graceful_restart).max(60));
        let gr = plan.graceful_restart > 0;
        let converged = match neighbors {
            None => true,
            Some(n) => {
                !n.is_empty()
                    && n.iter().all(|p| {
                        p.state == "Established"
                            && (p.eor_received
                                || (!gr
                                    && p.established_at.is_some_and(|t| {
                                        now_unix.saturating_sub(t) >= SETTLED_AFTER
                                    })))
                    })
            }
        };
        if converged || now.saturating_duration_since(self.started) >= hold_for {
            self.converged_once = true;
        }
        !self.converged_once
    }
}
