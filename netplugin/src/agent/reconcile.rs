//! The agent's reconciler (calc → managers → drivers).
//!
//! The reconciler task owns the pure [`Calc`], the managers with their netlink drivers,
//! and the BGP speaker. Each wake-up is one pass: the inputs that changed (intent,
//! endpoints the front ends touched, learned routes, time) go into the calc, the calc's
//! outputs go to the managers and the speaker, and the managers program what is dirty.
//! Front-end calls wait for the pass that includes them ([`super::Agent::settle`]).
//! Every `resync` the kernel is read back whole (links and our routes) to repair drift.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerStatus, Routes};
use ipnet::IpNet;
use tokio::sync::{oneshot, watch};

use super::bgp::{BgpPlan, NsRuntime, SpeakerHost, SpeakerHostError};
use super::{Agent, LocalRecord};
use crate::calc::{self, Calc, Convergence, IntentView};
use crate::endpoint::HostNs;
use crate::fib::FibDriver;
use crate::fib::netlink::NetlinkFib;
use crate::intent::Mirror;
use crate::links::NetlinkLinks;
use crate::managers::{FibManager, LinkManager, PolicyManager};
use crate::nl::NlError;
use crate::policy::compile::CounterLabels;
use crate::policy::driver::NftCli;
use crate::policy::{LocalEndpoint, PolicyView};

/// What the reconciler last saw and did; published for the reporter and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub fwd_mode: String,
    /// Why the host's `Bgp` object is not in effect, if it is not.
    pub bgp_error: Option<String>,
    pub neighbors: Vec<PeerStatus>,
    /// Routes the speaker selected (prefix → next hops).
    pub learned: Arc<Routes>,
    pub advertised: BTreeSet<IpNet>,
    pub fib_routes: usize,
    /// Endpoints plumbed on this host.
    pub endpoints: usize,
    pub fib_failures: Vec<String>,
    pub passes: u64,
    pub errors: u64,
    /// Routes learned before a restart are held until the speaker has converged.
    pub holding_learned: bool,
    /// The policy ruleset programmed (`None` before the first attempt).
    pub policy: Option<contiv_model::feed::PolicyReport>,
    /// The policy rules' counters: counter name → the rule.
    pub policy_counters: Arc<BTreeMap<String, CounterLabels>>,
    /// Learned prefixes the import policy keeps out of the kernel → why.
    pub rejected_routes: BTreeMap<IpNet, String>,
}

impl Status {
    /// Equal apart from the pass counter: a pass that changed nothing is not news.
    fn same_as(&self, other: &Status) -> bool {
        let mut o = other.clone();
        o.passes = self.passes;
        *self == o
    }
}

/// Why a pass did not fully succeed. Each names what failed; the pass still did
/// everything else (what failed stays dirty and is tried again).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("BGP: {0}")]
    Bgp(#[from] SpeakerHostError),
    #[error("opening the kernel FIB: {0}")]
    OpenFib(#[source] NlError),
    #[error("reading the kernel FIB: {0}")]
    Fib(#[source] NlError),
    #[error("policy: {0}")]
    Policy(String),
    #[error("{}", .0.join("; "))]
    Dataplane(Vec<String>),
    #[error("the data-plane task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The managers with their kernel drivers, moved onto a blocking thread for each pass
/// (netlink calls block), with the calc (pure, cheap) that feeds them.
struct Core {
    calc: Calc,
    fib: FibManager<NetlinkFib>,
    links: LinkManager<NetlinkLinks>,
    policy: PolicyManager<NftCli>,
    /// The intent as policy needs it.
    policy_view: Arc<PolicyView>,
    /// The host's endpoints as policy needs them.
    policy_eps: BTreeMap<String, LocalEndpoint>,
    /// The ruleset is to be compiled again (intent or endpoints changed).
    policy_dirty: bool,
    /// The revision of the ruleset last committed, and its figures.
    policy_report: contiv_model::feed::PolicyReport,
    /// Resyncs so far.
    resyncs: u64,
    /// Endpoint key → its host interface, for the endpoints the calc has.
    ifnames: BTreeMap<String, String>,
    /// The host's own default route, as last read.
    host_default: bool,
}

/// What one pass hands the data-plane thread.
struct PassInput {
    intent: Option<IntentView>,
    policy: Option<Arc<PolicyView>>,
    /// Endpoints the front ends touched: key → the record now (`None`: gone).
    touched: BTreeMap<String, Option<LocalRecord>>,
    /// Every endpoint (on a resync only).
    resync: Option<BTreeMap<String, LocalRecord>>,
    learned: Arc<Routes>,
    hold: bool,
}

/// What it hands back.
struct PassOutput {
    advertise: BTreeMap<IpNet, bool>,
    errors: Vec<String>,
    /// Endpoints to look at again next pass (their interface was missing).
    retry: Vec<String>,
    /// The kernel could not be read or written at all (the view is to be read again).
    fib_error: Option<NlError>,
    /// The policy ruleset in force, and why the last commit failed.
    policy: contiv_model::feed::PolicyReport,
    /// The counters of a newly compiled ruleset.
    policy_counters: Option<Arc<BTreeMap<String, CounterLabels>>>,
}

impl Core {
    fn open(host: &HostNs) -> Result<Core, NlError> {
        let fib = match &host.0 {
            Some(p) => NetlinkFib::open_in_netns(p)?,
            None => NetlinkFib::open()?,
        };
        Ok(Core {
            calc: Calc::new(),
            fib: FibManager::new(fib),
            links: LinkManager::new(NetlinkLinks::new(host.clone())),
            policy: PolicyManager::new(NftCli::new(host.clone())),
            policy_view: Arc::new(PolicyView::default()),
            policy_eps: BTreeMap::new(),
            policy_dirty: true,
            policy_report: Default::default(),
            resyncs: 0,
            ifnames: BTreeMap::new(),
            host_default: false,
        })
    }

    /// An endpoint into the calc. `fresh`: a front end touched it, so its interface may
    /// be new (deleted and plumbed again under the same name): look its index up again.
    fn endpoint(&mut self, key: &str, r: Option<&LocalRecord>, fresh: bool, out: &mut PassOutput) {
        let pe = r.map(|r| LocalEndpoint {
            ifname: r.host_ifname.clone(),
            address: r.address.addr(),
            mac: r.mac.to_string(),
            tenant: r.target.tenant.clone(),
            group: r.target.group.clone().filter(|g| !g.is_empty()),
        });
        if self.policy_eps.get(key) != pe.as_ref() {
            match pe {
                Some(pe) => self.policy_eps.insert(key.to_string(), pe),
                None => self.policy_eps.remove(key),
            };
            self.policy_dirty = true;
        }
        let Some(r) = r else {
            if let Some(name) = self.ifnames.remove(key) {
                self.links.forget(&name);
            }
            self.calc.endpoint_down(key);
            return;
        };
        if fresh {
            self.links.forget(&r.host_ifname);
        }
        match self.links.index_of(&r.host_ifname) {
            Ok(Some(ix)) => {
                self.ifnames.insert(key.to_string(), r.host_ifname.clone());
                self.calc.endpoint_up(
                    key,
                    calc::Endpoint {
                        address: r.address.addr(),
                        host_ifindex: ix,
                        network: format!("{}:{}", r.target.tenant, r.target.network),
                    },
                );
            }
            res => {
                self.calc.endpoint_down(key);
                out.errors.push(match res {
                    Err(e) => format!(
                        "endpoint {}: looking up {}: {e}",
                        r.endpoint_id, r.host_ifname
                    ),
                    _ => format!(
                        "endpoint {}: interface {} is missing",
                        r.endpoint_id, r.host_ifname
                    ),
                });
                out.retry.push(key.to_string());
            }
        }
    }

    /// One pass on the data-plane thread.
    fn pass(&mut self, inp: PassInput) -> PassOutput {
        let mut out = PassOutput {
            advertise: BTreeMap::new(),
            errors: Vec::new(),
            retry: Vec::new(),
            fib_error: None,
            policy: Default::default(),
            policy_counters: None,
        };
        if let Some(view) = inp.intent {
            self.calc.set_intent(view);
        }
        if let Some(view) = inp.policy {
            self.policy_view = view;
            self.policy_dirty = true;
        }
        if let Some(all) = &inp.resync {
            let owned: BTreeSet<String> = all.values().map(|r| r.host_ifname.clone()).collect();
            let (changed, links) = self.links.resync(&owned);
            out.errors.extend(links.errors);
            let gone: Vec<String> = self
                .calc
                .endpoints()
                .keys()
                .filter(|k| !all.contains_key(*k))
                .cloned()
                .collect();
            for k in gone {
                self.endpoint(&k, None, false, &mut out);
            }
            for (k, r) in all {
                let known = self.ifnames.get(k).is_some_and(|n| !changed.contains(n));
                if !known || !self.calc.endpoints().contains_key(k) {
                    self.endpoint(k, Some(r), false, &mut out);
                }
            }
            self.fib.request_resync();
            // Reading a big ruleset back costs (about 0.7 s of nft at 10 000 rules): the
            // drift check runs at every resync up to 2000 rules, then less often.
            self.resyncs += 1;
            if self
                .resyncs
                .is_multiple_of(1 + self.policy_report.rules / 2000)
            {
                self.policy.request_resync();
            }
            match self.fib.driver_mut().own_prefixes() {
                Ok(own) => self.calc.set_own_prefixes(own),
                Err(e) => out
                    .errors
                    .push(format!("reading the host's own prefixes: {e}")),
            }
            match self.fib.driver_mut().host_default() {
                Ok(has) => {
                    if has != self.host_default {
                        if has {
                            tracing::warn!(
                                "the host has a default route of its own: a default route \
                                 learned over BGP is not installed"
                            );
                        }
                        self.host_default = has;
                    }
                    self.calc.set_host_default(has);
                }
                Err(e) => out
                    .errors
                    .push(format!("reading the host's default route: {e}")),
            }
        }
        for (k, r) in &inp.touched {
            self.endpoint(k, r.as_ref(), true, &mut out);
        }
        // Policy before routes: an endpoint is reachable only once its rules are in.
        self.program_policy(&mut out);
        self.calc.set_learned(inp.learned);
        let updates = self.calc.take_updates();
        for (p, r) in updates.routes {
            self.fib.on_update(p, r);
        }
        out.advertise = updates.advertise;
        self.fib.set_hold(inp.hold);
        // A failure here must not lose what the calc handed over: the advertisement
        // changes still go out, and the FIB's view is read again next pass.
        match self.fib.apply() {
            Ok(pass) => out
                .errors
                .extend(pass.failed.iter().map(|(op, e)| format!("{op:?}: {e}"))),
            Err(e) => {
                self.fib.request_resync();
                out.fib_error = Some(e);
            }
        }
        out
    }

    /// Compiles the ruleset when its inputs changed and commits what the kernel lacks.
    fn program_policy(&mut self, out: &mut PassOutput) {
        if std::mem::take(&mut self.policy_dirty) {
            let c = crate::policy::compile(&self.policy_view, &self.policy_eps);
            self.policy_report.rules = c.rules as u64;
            self.policy_report.endpoints = c.endpoints_under_policy as u64;
            out.policy_counters = Some(Arc::new(c.counters));
            if !c.errors.is_empty() {
                // Keep the kernel's ruleset; new endpoints fail closed meanwhile.
                self.policy_dirty = true;
                self.policy_report.error = Some(c.errors.join("; "));
                out.policy = self.policy_report.clone();
                return;
            }
            self.policy.set_desired(c.ruleset);
        }
        match self.policy.apply() {
            Ok(_) => {
                self.policy_report.revision = self.policy_view.revision;
                self.policy_report.error = None;
            }
            Err(e) => {
                tracing::warn!("policy: {e}");
                self.policy_report.error = Some(e.to_string());
            }
        }
        out.policy = self.policy_report.clone();
    }
}

struct Reconciler {
    agent: Arc<Agent>,
    /// The fabric mode a disagreeing `--fwd-mode` flag was last reported against.
    warned_mode: Option<String>,
    convergence: Convergence,
    /// The agent restarted with endpoints in place: the first speaker says so (GR R bit)
    /// and learned routes are held until the speaker converged.
    restarting: bool,
    rt: Arc<NsRuntime>,
    speaker: Option<SpeakerHost>,
    /// Bumped whenever a new speaker starts (its routes are a new watch).
    speaker_starts: u64,
    core: Option<Core>,
    /// The intent the calc was last given.
    seen: Option<Arc<Mirror>>,
    /// The intent as policy needs it (handed to the core with the intent view).
    policy_view: Arc<PolicyView>,
    view: IntentView,
    /// A whole read-back is due (start, resync period, after an error).
    resync_due: bool,
    /// The calc has not been given the intent view yet (new intent, or a new core).
    feed_intent: bool,
    /// The speaker is to be given the whole advertisement set, not a change (a new
    /// speaker, a new core, a failed pass or advertisement).
    advert_sync: bool,
    /// Endpoints whose interface was missing: looked at again next pass.
    retry: BTreeSet<String>,
    /// The number of the last touch a pass took in (answered on `done`).
    taken: u64,
    status: Status,
}

/// Seconds since the UNIX epoch (the speaker's `established_at` is in those).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Reconciler {
    async fn pass(&mut self) -> Result<(), ReconcileError> {
        let mirror = self.agent.mirror();
        let new_intent = !self.seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &mirror));
        if new_intent {
            self.policy_view = Arc::new(PolicyView::from_mirror(&mirror));
            self.view = IntentView::from_mirror(
                &mirror,
                &self.agent.cfg.host,
                self.agent.cfg.direct_routes,
            );
            self.seen = Some(mirror);
            self.feed_intent = true;
        }
        let mode = self.view.fwd_mode.clone();
        if let Some(flag) = &self.agent.cfg.fwd_mode
            && self.view.have_intent
            && flag != &mode
            && self.warned_mode.as_deref() != Some(mode.as_str())
        {
            self.warned_mode = Some(mode.clone());
            tracing::error!(
                "netplugin was started with --fwd-mode {flag} but the fabric's forwarding mode \
                 is {mode}; following the fabric ({mode})"
            );
        }
        self.status.fwd_mode = mode;
        if !self.view.have_intent {
            // Wait for intent before touching anything: a restarted agent with no saved
            // state must not sweep a working data path. The touched endpoints wait too.
            self.taken = self.agent.touched_generation();
            return Ok(());
        }

        // The data plane first: nothing is taken from the front ends (touches, the resync
        // due) before it can be programmed.
        if self.core.is_none() {
            let host = self.agent.host_ns.clone();
            let core = tokio::task::spawn_blocking(move || Core::open(&host))
                .await?
                .map_err(ReconcileError::OpenFib)?;
            self.core = Some(core);
            self.resync_due = true;
            self.feed_intent = true;
            self.advert_sync = true;
        }

        // BGP: the host's Bgp object, only in routing mode.
        // The neighbors' MD5 passwords are read at every pass, so a new secret file is
        // picked up by the next resync.
        let plan = match &self.view.bgp {
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(p)) => p
                .clone()
                .with_secrets(&self.agent.cfg.bgp_secrets)
                .map(Some),
            None => Ok(None),
        };
        let plan = match plan {
            Err(e) => {
                let e = e.to_string();
                if self.status.bgp_error.as_ref() != Some(&e) {
                    tracing::error!("Bgp object of {}: {e}", self.agent.cfg.host);
                }
                self.status.bgp_error = Some(e);
                None
            }
            Ok(p) => {
                self.status.bgp_error = None;
                p
            }
        };
        // A speaker that fails to start does not hold the data path back.
        let (started, bgp_failed) = match self.apply_plan(plan.as_ref()).await {
            Ok(s) => (s, None),
            Err(e) => (false, Some(e)),
        };

        // The inputs that changed. Touches are taken under the state lock: a front end
        // touches while it holds it, so a pass that waited for the lock sees its change.
        // The state lock only when there is something to read: front ends hold it across
        // their netmaster round trip, and a pass that only carries learned routes (a ToR
        // lost) must not wait for that.
        let resync = std::mem::take(&mut self.resync_due);
        let endpoints_moved =
            resync || !self.retry.is_empty() || self.agent.touched_generation() != self.taken;
        let (touched, all) = if !endpoints_moved {
            (BTreeMap::new(), None)
        } else {
            let st = self.agent.state.lock().await;
            let (taken, touched_keys) = self.agent.take_touched();
            self.taken = taken;
            self.status.endpoints = st.endpoints.len();
            let touched: BTreeMap<String, Option<LocalRecord>> = touched_keys
                .into_iter()
                .chain(std::mem::take(&mut self.retry))
                .map(|k| {
                    let r = st.endpoints.get(&k).cloned();
                    (k, r)
                })
                .collect();
            (touched, resync.then(|| st.endpoints.clone()))
        };
        let learned: Arc<Routes> = match &self.speaker {
            Some(s) => s.routes().borrow().clone(),
            None => Arc::new(Routes::new()),
        };
        let neighbors = self.speaker.as_ref().map(SpeakerHost::neighbors);
        let hold = self.convergence.hold(
            Instant::now(),
            unix_now(),
            plan.as_ref(),
            neighbors.as_deref(),
        );
        self.status.holding_learned = hold;

        let Some(mut core) = self.core.take() else {
            unreachable!("the core is opened before anything is taken")
        };
        let input = PassInput {
            policy: self.feed_intent.then(|| self.policy_view.clone()),
            intent: std::mem::take(&mut self.feed_intent).then(|| self.view.clone()),
            touched,
            resync: all,
            learned: learned.clone(),
            hold,
        };
        let t = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let out = core.pass(input);
            (core, out)
        })
        .await;
        let (core, mut out) = match joined {
            Ok(done) => done,
            Err(e) => {
                // The core went with its thread: the next one starts from a whole read-back,
                // the intent, and a full advertisement.
                self.resync_due = true;
                self.feed_intent = true;
                self.advert_sync = true;
                return Err(e.into());
            }
        };
        self.agent
            .metrics
            .fib_sync_seconds
            .observe(t.elapsed().as_secs_f64());
        self.status.fib_routes = core.fib.desired().len();
        let policy_error = out.policy.error.clone();
        self.status.policy = Some(out.policy.clone());
        if let Some(c) = out.policy_counters.take() {
            self.status.policy_counters = c;
        }
        let advertised = core.calc.advertised();
        let rejected: BTreeMap<IpNet, String> = core
            .calc
            .rejected()
            .iter()
            .map(|(p, r)| (*p, r.to_string()))
            .collect();
        for (p, why) in &rejected {
            if self.status.rejected_routes.get(p) != Some(why) {
                tracing::warn!("learned route {p} not installed: {why}");
            }
        }
        self.status.rejected_routes = rejected;
        self.core = Some(core);
        self.retry.extend(out.retry);
        if out.fib_error.is_some() {
            self.resync_due = true;
        }

        // What to originate: a new speaker (or one a failure may have left behind) gets
        // the whole set, a running one the change.
        let mut advert_failed = None;
        if started {
            self.advert_sync = true;
        }
        if let Some(s) = &mut self.speaker {
            let res = if self.advert_sync {
                s.advertise(&advertised)
            } else if !out.advertise.is_empty() {
                s.advertise_changes(&out.advertise)
            } else {
                Ok(())
            };
            match res {
                Ok(()) => self.advert_sync = false,
                Err(e) => {
                    self.advert_sync = true;
                    advert_failed = Some(ReconcileError::Bgp(e));
                }
            }
            self.status.advertised = advertised;
            self.status.neighbors = neighbors.unwrap_or_default();
        } else {
            self.status.advertised.clear();
            self.status.neighbors.clear();
        }
        self.status.learned = learned;
        self.status.fib_failures = out.errors;
        if let Some(e) = out.fib_error {
            return Err(ReconcileError::Fib(e));
        }
        if let Some(e) = bgp_failed.or(advert_failed) {
            return Err(e);
        }
        if let Some(e) = policy_error {
            return Err(ReconcileError::Policy(e));
        }
        if self.status.fib_failures.is_empty() {
            Ok(())
        } else {
            Err(ReconcileError::Dataplane(self.status.fib_failures.clone()))
        }
    }

    /// Starts, updates or stops the speaker; `true` when a new one started.
    async fn apply_plan(&mut self, plan: Option<&BgpPlan>) -> Result<bool, ReconcileError> {
        match (plan, self.speaker.as_mut()) {
            (None, None) => Ok(false),
            (None, Some(_)) => {
                if let Some(s) = self.speaker.take() {
                    tracing::info!("BGP: the host's Bgp object is gone; stopping the speaker");
                    s.shutdown().await;
                }
                Ok(false)
            }
            (Some(p), Some(s)) if !s.plan().needs_restart(p) => {
                if s.plan() != p {
                    tracing::info!("BGP: updating neighbors to {:?}", p.neighbors);
                    s.update(p).await.map_err(ReconcileError::Bgp)?;
                }
                Ok(false)
            }
            (Some(p), _) => {
                if let Some(s) = self.speaker.take() {
                    tracing::info!("BGP: AS, router id or communities changed; restarting");
                    s.shutdown().await;
                }
                tracing::info!(
                    "BGP: starting AS {} router id {} with neighbors {:?}",
                    p.asn,
                    p.router_id,
                    p.neighbors
                );
                let restarting = std::mem::take(&mut self.restarting);
                self.speaker_starts += 1;
                self.speaker = Some(
                    SpeakerHost::start(self.rt.clone(), p.clone(), restarting)
                        .await
                        .map_err(ReconcileError::Bgp)?,
                );
                Ok(true)
            }
        }
    }
}

/// Waits for the next change of the speaker's routes; forever when there is no speaker
/// or its publisher is gone (a closed watch must not wake the loop again and again).
async fn routes_changed(rx: &mut Option<watch::Receiver<Arc<Routes>>>) {
    match rx {
        Some(r) => {
            if r.changed().await.is_err() {
                *rx = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// The reconciler task.
pub(super) async fn run(
    agent: Arc<Agent>,
    rt: Arc<NsRuntime>,
    mut wanted: watch::Receiver<u64>,
    done: watch::Sender<u64>,
    status: watch::Sender<Arc<Status>>,
    mut stop: oneshot::Receiver<()>,
) {
    let restarting = !agent.endpoints().await.is_empty();
    let mut r = Reconciler {
        agent: agent.clone(),
        warned_mode: None,
        convergence: Convergence::new(Instant::now()),
        restarting,
        rt,
        speaker: None,
        speaker_starts: 0,
        core: None,
        seen: None,
        policy_view: Arc::new(PolicyView::default()),
        view: IntentView::default(),
        resync_due: true,
        feed_intent: true,
        advert_sync: true,
        retry: BTreeSet::new(),
        taken: 0,
        status: Status::default(),
    };
    let mut mirror = agent.mirror.clone();
    let mut tick = tokio::time::interval(agent.cfg.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Session states change without route changes; the status follows them each second
    // (without a pass), and so does the graceful-restart hold.
    let mut peers_tick = tokio::time::interval(Duration::from_secs(1));
    peers_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One receiver of the speaker's routes per speaker, marked seen after each pass: a
    // receiver taken afresh each turn would report the last publication again and again.
    let mut routes = None;
    let mut routes_of = 0;
    loop {
        if routes_of != r.speaker_starts || r.speaker.is_none() {
            routes = r.speaker.as_ref().map(SpeakerHost::routes);
            routes_of = r.speaker_starts;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => r.resync_due = true,
            res = wanted.changed() => if res.is_err() { break },
            res = mirror.changed() => if res.is_err() { break },
            () = routes_changed(&mut routes) => {}
            _ = peers_tick.tick() => {
                if !r.status.holding_learned {
                    if let Some(s) = &r.speaker {
                        let now = s.neighbors();
                        if now != r.status.neighbors {
                            r.status.neighbors = now;
                            status.send_replace(Arc::new(r.status.clone()));
                        }
                    }
                    continue;
                }
            }
        }
        // Let a burst of changes collapse into one pass (without adding latency).
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        wanted.borrow_and_update();
        mirror.borrow_and_update();
        if let Some(rx) = routes.as_mut() {
            rx.borrow_and_update();
        }
        let started = Instant::now();
        let before = r.status.clone();
        let res = r.pass().await;
        r.status.passes += 1;
        agent
            .metrics
            .reconcile_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = res {
            r.status.errors += 1;
            agent.metrics.reconcile_errors.inc();
            tracing::warn!("reconcile: {e}");
        }
        agent.metrics.observe(&r.status);
        if !r.status.same_as(&before) {
            status.send_replace(Arc::new(r.status.clone()));
        }
        done.send_replace(r.taken);
    }
    if let Some(s) = r.speaker.take() {
        if s.plan().graceful_restart > 0 {
            // A stop is a restart: the ToRs keep our routes for the restart time.
            s.shutdown_for_restart().await;
        } else {
            s.shutdown().await;
        }
    }
}
