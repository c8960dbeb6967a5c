//! The agent's reconciler and reporter.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerStatus, Routes};
use contiv_model::feed::HostReport;
use contiv_model::{Bgp, Network, Object};
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use super::bgp::{BgpPlan, NsRuntime, SpeakerHost, bgp_plan};
use super::{Agent, ROUTING, stored_fwd_mode};
use crate::endpoint;
use crate::fib::netlink::NetlinkFib;
use crate::fib::{FibDriver, RouteSet};
use crate::routing::{self, FibInputs, Learned, LocalEndpoint};

/// What the reconciler last saw and did; published for the reporter and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub fwd_mode: String,
    /// Why the host's `Bgp` object is not in effect, if it is not.
    pub bgp_error: Option<String>,
    pub neighbors: Vec<PeerStatus>,
    /// Routes the speaker selected (prefix → next hops).
    pub learned: BTreeMap<IpNet, Vec<IpAddr>>,
    pub advertised: BTreeSet<IpNet>,
    pub fib_routes: usize,
    /// Endpoints plumbed on this host.
    pub endpoints: usize,
    pub fib_failures: Vec<String>,
    pub passes: u64,
    pub errors: u64,
    /// Routes learned before a restart are held until the speaker has converged.
    pub holding_learned: bool,
}

struct Reconciler {
    agent: Arc<Agent>,
    /// The fabric mode a disagreeing `--fwd-mode` flag was last reported against.
    warned_mode: Option<String>,
    /// The sessions converged once since the start (the start-up hold is over).
    converged_once: bool,
    /// The agent restarted with endpoints in place: the first speaker says so (GR R bit)
    /// and learned routes are held until the speaker converged.
    restarting: bool,
    started: Instant,
    rt: Arc<NsRuntime>,
    speaker: Option<SpeakerHost>,
    fib: Option<NetlinkFib>,
    swept: bool,
    status: Status,
}

impl Reconciler {
    async fn pass(&mut self) -> Result<(), String> {
        let mirror = self.agent.mirror();
        let have_intent = mirror.revision > 0 || !mirror.objects.is_empty();
        let mode = stored_fwd_mode(&mirror);
        if let Some(flag) = &self.agent.cfg.fwd_mode
            && have_intent
            && flag != &mode
            && self.warned_mode.as_deref() != Some(mode.as_str())
        {
            self.warned_mode = Some(mode.clone());
            tracing::error!(
                "netplugin was started with --fwd-mode {flag} but the fabric's forwarding mode \
                 is {mode}; following the fabric ({mode})"
            );
        }
        self.status.fwd_mode = mode.clone();
        if !have_intent {
            // Wait for intent before touching anything: a restarted agent with no saved
            // state must not sweep a working data path.
            return Ok(());
        }

        // BGP: the host's Bgp object, only in routing mode.
        let bgp = (mode == ROUTING)
            .then(|| mirror.get::<Bgp>(Bgp::PLURAL, &self.agent.cfg.host))
            .flatten();
        let plan: Option<BgpPlan> = match bgp.as_ref().map(bgp_plan) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.status.bgp_error = Some(e.clone());
                tracing::error!("Bgp object of {}: {e}", self.agent.cfg.host);
                None
            }
        };
        if plan.is_some() || bgp.is_none() {
            self.status.bgp_error = None;
        }
        self.apply_plan(plan.as_ref()).await?;

        // Local endpoints with their interface indexes.
        let records = self.agent.endpoints().await;
        self.status.endpoints = records.len();
        let host = self.agent.host_ns.clone();
        let names: Vec<(String, String, IpAddr)> = records
            .iter()
            .map(|r| {
                (
                    r.endpoint_id.clone(),
                    r.host_ifname.clone(),
                    r.address.addr(),
                )
            })
            .collect();
        let swept = self.swept;
        let ours: BTreeSet<String> = records.iter().map(|r| r.host_ifname.clone()).collect();
        let (locals, sweep_errors) = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            if let Err(e) = endpoint::enable_forwarding(&host) {
                errors.push(format!("enabling IPv4 forwarding: {e}"));
            }
            // One link dump a pass: the indexes of our interfaces, and the ones to sweep.
            let links = match endpoint::our_link_indexes(&host) {
                Ok(l) => l,
                Err(e) => {
                    errors.push(format!("listing interfaces: {e}"));
                    return (Vec::new(), errors);
                }
            };
            if !swept {
                for l in links.keys().filter(|l| !ours.contains(*l)) {
                    tracing::info!("sweeping interface {l}: no endpoint owns it");
                    if let Err(e) = endpoint::remove_link(&host, l) {
                        errors.push(format!("removing {l}: {e}"));
                    }
                }
            }
            let mut locals = Vec::new();
            for (id, name, address) in names {
                match links.get(&name) {
                    Some(ix) => locals.push(LocalEndpoint {
                        id,
                        address,
                        host_ifindex: *ix,
                    }),
                    None => errors.push(format!("endpoint {id}: interface {name} is missing")),
                }
            }
            (locals, errors)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.swept = true;

        // What to originate.
        let subnets: BTreeMap<String, IpNet> = mirror
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
        let subnet_of: BTreeMap<String, IpNet> = records
            .iter()
            .filter_map(|r| {
                subnets
                    .get(&format!("{}:{}", r.target.tenant, r.target.network))
                    .map(|s| (r.endpoint_id.clone(), *s))
            })
            .collect();
        let learned: Arc<Routes> = match &self.speaker {
            Some(s) => s.routes().borrow().clone(),
            None => Arc::new(Routes::new()),
        };
        if let Some(s) = &mut self.speaker {
            let want = routing::advertisements(&s.plan().advertise.clone(), &locals, |e| {
                subnet_of.get(&e.id).copied()
            });
            s.advertise(&want)?;
            self.status.advertised = want;
            self.status.neighbors = s.neighbors();
        } else {
            self.status.advertised.clear();
            self.status.neighbors.clear();
        }

        // The FIB.
        let learned_list: Vec<Learned> = learned
            .iter()
            .map(|(p, nh)| Learned {
                prefix: *p,
                nexthops: nh.clone(),
            })
            .collect();
        let protected: Vec<IpNet> = plan.iter().map(|p| p.router_net).collect();
        let direct = match (&plan, self.agent.cfg.direct_routes) {
            (Some(p), true) => {
                let hosts: BTreeMap<String, IpAddr> = mirror
                    .list::<Bgp>(Bgp::PLURAL)
                    .into_iter()
                    .filter_map(|b| {
                        let net: IpNet = b.routerip.parse().ok()?;
                        Some((b.hostname, net.addr()))
                    })
                    .collect();
                let eps: Vec<(String, Vec<IpAddr>)> = mirror
                    .list::<contiv_model::Endpoint>(contiv_model::Endpoint::PLURAL)
                    .into_iter()
                    .map(|e| {
                        let addrs = e.ip_address.iter().filter_map(|a| a.parse().ok()).collect();
                        (e.homing_host, addrs)
                    })
                    .collect();
                routing::direct_endpoints(&self.agent.cfg.host, p.router_net_full, &hosts, &eps)
            }
            _ => Vec::new(),
        };
        let desired: RouteSet = routing::desired_fib(&FibInputs {
            endpoints: &locals,
            learned: &learned_list,
            direct: &direct,
            protected: &protected,
        });
        let mut fib = match self.fib.take() {
            Some(f) => f,
            None => {
                let ns = self.agent.cfg.netns.clone();
                tokio::task::spawn_blocking(move || match ns {
                    Some(p) => NetlinkFib::open_in_netns(&p),
                    None => NetlinkFib::open(),
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("opening the kernel FIB: {e}"))?
            }
        };
        // Hold what was learned before a restart until every neighbor sent its End-of-RIB
        // (or the hold time is over): a restart must not flap the data path.
        let hold_for = Duration::from_secs(
            plan.as_ref()
                .map_or(0, |p| u64::from(p.graceful_restart).max(60)),
        );
        // Converged: every session is up and has sent its whole table — its End-of-RIB
        // with graceful restart (peers send End-of-RIB only then), else a few seconds of
        // being up.
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let gr = plan.as_ref().is_some_and(|p| p.graceful_restart > 0);
        let converged = match &self.speaker {
            None => true,
            Some(s) => {
                let n = s.neighbors();
                !n.is_empty()
                    && n.iter().all(|p| {
                        p.state == "Established"
                            && (p.eor_received
                                || (!gr
                                    && p.established_at
                                        .is_some_and(|t| now_secs.saturating_sub(t) >= 3)))
                    })
            }
        };
        // Only the start holds: once converged (or the hold time is over), a neighbor
        // going away later takes its routes with it at once.
        if converged || self.started.elapsed() >= hold_for {
            self.converged_once = true;
        }
        let hold = plan.is_some() && !self.converged_once;
        self.status.holding_learned = hold;
        let started = Instant::now();
        let want = desired.clone();
        let (fib, report) = tokio::task::spawn_blocking(move || {
            let r = if hold {
                fib.installed().and_then(|installed| {
                    let held = crate::fib::hold_learned(&want, &installed);
                    let ops = crate::fib::diff(&held, &installed);
                    let failed = fib.apply(&ops)?;
                    Ok(crate::fib::SyncReport {
                        applied: ops.len() - failed.len(),
                        failed,
                    })
                })
            } else {
                fib.sync(&want)
            };
            (fib, r)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.agent
            .metrics
            .fib_sync_seconds
            .observe(started.elapsed().as_secs_f64());
        self.fib = Some(fib);
        let report = report.map_err(|e| format!("syncing the kernel FIB: {e}"))?;
        self.status.fib_routes = desired.len();
        self.status.fib_failures = report
            .failed
            .iter()
            .map(|(op, e)| format!("{op:?}: {e}"))
            .chain(sweep_errors)
            .collect();
        self.status.learned = (*learned).clone();
        if self.status.fib_failures.is_empty() {
            Ok(())
        } else {
            Err(self.status.fib_failures.join("; "))
        }
    }

    async fn apply_plan(&mut self, plan: Option<&BgpPlan>) -> Result<(), String> {
        match (plan, self.speaker.as_mut()) {
            (None, None) => Ok(()),
            (None, Some(_)) => {
                if let Some(s) = self.speaker.take() {
                    tracing::info!("BGP: the host's Bgp object is gone; stopping the speaker");
                    s.shutdown().await;
                }
                Ok(())
            }
            (Some(p), Some(s)) if !s.plan().needs_restart(p) => {
                if s.plan() != p {
                    tracing::info!("BGP: updating neighbors to {:?}", p.neighbors);
                    s.update(p).await?;
                }
                Ok(())
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
                self.speaker =
                    Some(SpeakerHost::start(self.rt.clone(), p.clone(), restarting).await?);
                Ok(())
            }
        }
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
        converged_once: false,
        restarting,
        started: Instant::now(),
        rt,
        speaker: None,
        fib: None,
        swept: false,
        status: Status::default(),
    };
    let mut mirror = agent.mirror.clone();
    let mut tick = tokio::time::interval(agent.cfg.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut routes = r.speaker.as_ref().map(|s| s.routes());
        let mut peers_tick = tokio::time::interval(Duration::from_secs(1));
        peers_tick.tick().await;
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
            res = wanted.changed() => if res.is_err() { break },
            res = mirror.changed() => if res.is_err() { break },
            _ = async {
                match routes.as_mut() {
                    Some(rx) => { let _ = rx.changed().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
            // Session states change without route changes; refresh them often.
            _ = peers_tick.tick() => {
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
        // Let a burst of changes collapse into one pass (without adding latency).
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let generation = *wanted.borrow_and_update();
        mirror.borrow_and_update();
        let started = Instant::now();
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
        status.send_replace(Arc::new(r.status.clone()));
        done.send_replace(generation);
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

/// Publishes the host report to netmaster every `report_every` (and keeps the host's
/// endpoints from being collected as a dead host's).
pub(super) async fn report_loop(agent: Arc<Agent>) {
    let mut tick = tokio::time::interval(agent.cfg.report_every);
    let mut status_rx = agent.status.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            res = status_rx.changed() => if res.is_err() { return },
        }
        let status = status_rx.borrow_and_update().clone();
        let endpoints = agent
            .endpoints()
            .await
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "endpointID": r.endpoint_id,
                    "tenant": r.target.tenant,
                    "network": r.target.network,
                    "group": r.target.group.clone().unwrap_or_default(),
                    "address": r.address.to_string(),
                    "mac": r.mac.to_string(),
                    "hostIntf": r.host_ifname,
                })
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let neighbors = status
            .neighbors
            .iter()
            .map(|n| {
                serde_json::json!({
                    "address": n.address.to_string(),
                    "remoteAs": n.remote_as,
                    "state": n.state.to_lowercase(),
                    "uptime": n.established_at.map(|t| now.saturating_sub(t)).unwrap_or(0),
                    "prefixesReceived": n.prefixes_received,
                    "prefixesAdvertised": n.prefixes_advertised,
                    "updatesIn": n.updates_in,
                    "updatesOut": n.updates_out,
                    "flaps": n.flaps,
                    "lastError": n.last_error,
                    "capabilities": n.capabilities,
                    "bfd": n.bfd,
                })
            })
            .collect();
        let routes = status
            .learned
            .iter()
            .map(|(p, nh)| {
                serde_json::json!({
                    "prefix": p.to_string(),
                    "nexthops": nh.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        let report = HostReport {
            endpoints,
            neighbors,
            routes,
            fwd_mode: status.fwd_mode.clone(),
            last_seen: 0,
        };
        if let Err(e) = agent.master.report(&agent.cfg.host, &report).await {
            tracing::debug!("host report: {e}");
        }
        // Coalesce bursts of changes (many endpoints at once) into one report.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
