//! The host's BGP: what the `Bgp` object asks for ([`BgpPlan`], pure) and the speaker that
//! carries it out ([`SpeakerHost`]), running on its own thread inside the host's network
//! namespace so that every socket it opens lives there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use bgp::types::{Community, LargeCommunity};
use bgp_speaker::bfd::{Bfd, BfdConfig, BfdOptions};
use bgp_speaker::driver::{
    GracefulRestartConfig, PeerConfig, PeerStatus, Routes, Speaker, SpeakerConfig,
};
use ipnet::IpNet;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::routing::AdvertiseMode;

/// The speaker settings a `Bgp` object stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPlan {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// The host's ToR subnet (network address).
    pub router_net: IpNet,
    /// The host's address on the ToR subnet, with that subnet's length.
    pub router_net_full: IpNet,
    /// Neighbor address → its AS and BFD.
    pub neighbors: BTreeMap<IpAddr, PlanNeighbor>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Graceful restart time in seconds (0: off).
    pub graceful_restart: u16,
    pub advertise: AdvertiseMode,
}

/// One neighbor of a [`BgpPlan`]: any change re-adds it (a session reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanNeighbor {
    pub asn: u32,
    /// BFD with this neighbor (the object's `bfd`, or the neighbor's own), with the
    /// object's timers.
    pub bfd: Option<BfdConfig>,
}

impl BgpPlan {
    /// Whether any neighbor runs BFD.
    pub fn uses_bfd(&self) -> bool {
        self.neighbors.values().any(|n| n.bfd.is_some())
    }

    /// Whether going from `self` to `next` needs a new speaker (the neighbors alone can
    /// change on a running one).
    pub fn needs_restart(&self, next: &BgpPlan) -> bool {
        self.asn != next.asn
            || self.router_id != next.router_id
            || self.communities != next.communities
            || self.large_communities != next.large_communities
            || self.graceful_restart != next.graceful_restart
    }
}

fn parse_asn(what: &str, s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|a| *a != 0)
        .ok_or_else(|| format!("{what} {s:?} is not an AS number (1..4294967295)"))
}

/// The BFD timers of a `Bgp` object (used by the neighbors that run BFD).
fn bfd_config(b: &contiv_model::Bgp) -> Result<BfdConfig, String> {
    let ms = b.bfd_interval_ms();
    if !(50..=60000).contains(&ms) {
        return Err(format!("bfd-interval {ms} ms is outside 50..=60000 ms"));
    }
    let mult = u8::try_from(b.bfd_multiplier())
        .ok()
        .filter(|m| *m >= 1)
        .ok_or_else(|| format!("bfd-multiplier {} is outside 1..=255", b.bfd_multiplier()))?;
    let interval = Duration::from_millis(u64::from(ms));
    Ok(BfdConfig {
        desired_min_tx: interval,
        required_min_rx: interval,
        detect_mult: mult,
    })
}

/// Reads a `Bgp` object. Contiv's single-neighbor form (`neighbor`, `neighbor-as`) and the
/// several-neighbors form (`neighbors`) may be combined; duplicates must agree.
pub fn bgp_plan(b: &contiv_model::Bgp) -> Result<BgpPlan, String> {
    let asn = parse_asn("as", &b.asn)?;
    let router_net: IpNet = b
        .routerip
        .parse()
        .or_else(|_| b.routerip.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("router-ip {:?} is not an address with a length", b.routerip))?;
    let IpAddr::V4(router_id) = router_net.addr() else {
        return Err(format!(
            "router-ip {} must be IPv4 (it is also the BGP router id)",
            b.routerip
        ));
    };
    let bfd = bfd_config(b)?;
    let mut neighbors: BTreeMap<IpAddr, PlanNeighbor> = BTreeMap::new();
    let mut add = |addr: &str, asn: &str, own_bfd: bool| -> Result<(), String> {
        let a: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("neighbor {addr:?} is not an IP address"))?;
        let n = parse_asn(&format!("neighbor {a}: as"), asn)?;
        let wants_bfd = b.bfd || own_bfd;
        let entry = neighbors
            .entry(a)
            .or_insert(PlanNeighbor { asn: n, bfd: None });
        if entry.asn != n {
            return Err(format!(
                "neighbor {a} is given twice, as {} and {n}",
                entry.asn
            ));
        }
        if wants_bfd {
            entry.bfd = Some(bfd);
        }
        Ok(())
    };
    if !b.neighbor.is_empty() {
        add(&b.neighbor, &b.neighbor_as, false)?;
    }
    for n in &b.neighbors {
        add(&n.address, &n.asn, n.bfd)?;
    }
    let mut communities = Vec::new();
    let mut large_communities = Vec::new();
    for c in &b.communities {
        if c.matches(':').count() == 2 {
            large_communities.push(c.parse().map_err(|e| format!("community {c:?}: {e}"))?);
        } else {
            communities.push(c.parse().map_err(|e| format!("community {c:?}: {e}"))?);
        }
    }
    let advertise = match b.advertise {
        contiv_model::AdvertiseMode::PerEndpoint => AdvertiseMode::PerEndpoint,
        contiv_model::AdvertiseMode::NetworkSubnet => AdvertiseMode::NetworkSubnets,
        contiv_model::AdvertiseMode::HostBlock => {
            let block: IpNet = b
                .host_block
                .parse()
                .map_err(|_| format!("host-block {:?} is not a prefix", b.host_block))?;
            AdvertiseMode::HostBlocks(vec![block])
        }
    };
    Ok(BgpPlan {
        asn,
        router_id,
        router_net: router_net.trunc(),
        router_net_full: router_net,
        neighbors,
        communities,
        large_communities,
        advertise,
        graceful_restart: u16::try_from(b.graceful_restart)
            .ok()
            .filter(|t| *t <= 4095)
            .ok_or_else(|| {
                format!(
                    "graceful-restart {} is longer than BGP allows (4095 s)",
                    b.graceful_restart
                )
            })?,
    })
}

/// A tokio runtime on a thread of its own, inside a network namespace (or the caller's).
#[derive(Debug)]
pub struct NsRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    pub fn start(netns: Option<PathBuf>) -> std::io::Result<NsRuntime> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("netplugin-bgp".into())
            .spawn(move || {
                let setup = (|| -> std::io::Result<tokio::runtime::Runtime> {
                    if let Some(p) = &netns {
                        let f = File::open(p)?;
                        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                            .map_err(std::io::Error::from)?;
                    }
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                })();
                match setup {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(rt) => {
                        let (stop_tx, stop_rx) = oneshot::channel::<()>();
                        let _ = tx.send(Ok((rt.handle().clone(), stop_tx)));
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                    }
                }
            })?;
        let (handle, stop) = rx
            .recv()
            .map_err(|_| std::io::Error::other("the BGP thread died while starting"))??;
        Ok(NsRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running speaker with the plan it carries out.
pub struct SpeakerHost {
    rt: Arc<NsRuntime>,
    speaker: Option<Speaker>,
    plan: BgpPlan,
    originated: BTreeSet<IpNet>,
}

impl std::fmt::Debug for SpeakerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerHost")
            .field("plan", &self.plan)
            .finish()
    }
}

impl SpeakerHost {
    /// Starts a speaker for `plan` on `rt` with the plan's neighbors. `restarting`: the
    /// agent restarted with its data path in place (graceful restart's R and F bits).
    pub async fn start(
        rt: Arc<NsRuntime>,
        plan: BgpPlan,
        restarting: bool,
    ) -> Result<SpeakerHost, String> {
        let cfg = SpeakerConfig {
            publish_routes: true,
            asn: plan.asn,
            router_id: plan.router_id,
            listen: None,
            max_paths: 16,
            export_learned: false,
            communities: plan.communities.clone(),
            large_communities: plan.large_communities.clone(),
            graceful_restart: (plan.graceful_restart > 0).then(|| GracefulRestartConfig {
                restart_time: plan.graceful_restart,
                restarting,
                stale_time: Duration::from_secs(u64::from(plan.graceful_restart).max(120)),
            }),
        };
        let speaker = rt
            .handle()
            .spawn(Speaker::start(cfg))
            .await
            .map_err(|e| format!("the BGP thread: {e}"))?
            .map_err(|e| format!("starting the BGP speaker: {e}"))?;
        let mut host = SpeakerHost {
            rt,
            speaker: Some(speaker),
            plan: BgpPlan {
                neighbors: BTreeMap::new(),
                ..plan.clone()
            },
            originated: BTreeSet::new(),
        };
        host.ensure_bfd(&plan).await?;
        host.set_neighbors(&plan.neighbors)?;
        host.plan = plan;
        Ok(host)
    }

    fn speaker(&self) -> &Speaker {
        self.speaker
            .as_ref()
            .expect("speaker present until shutdown")
    }

    pub fn plan(&self) -> &BgpPlan {
        &self.plan
    }

    /// Moves to `next` without touching unaffected sessions: removed and changed
    /// neighbors go, new and changed ones come. The caller restarts the speaker when
    /// [`BgpPlan::needs_restart`].
    pub async fn update(&mut self, next: &BgpPlan) -> Result<(), String> {
        self.ensure_bfd(next).await?;
        self.set_neighbors(&next.neighbors)?;
        self.plan = next.clone();
        Ok(())
    }

    /// Starts the speaker's BFD task when `plan` needs one and it has none yet. It is
    /// started here, on the BGP thread, so that its receive sockets are bound inside the
    /// host's network namespace (the speaker would otherwise bind them on first use, on
    /// whatever thread adds the neighbor).
    async fn ensure_bfd(&mut self, plan: &BgpPlan) -> Result<(), String> {
        if !plan.uses_bfd() || self.speaker().bfd().is_some() {
            return Ok(());
        }
        let bfd = self
            .rt
            .handle()
            .spawn(async { Bfd::start(BfdOptions::default()) })
            .await
            .map_err(|e| format!("the BGP thread: {e}"))?
            .map_err(|e| format!("starting BFD (UDP 3784): {e}"))?;
        self.speaker().use_bfd(bfd);
        Ok(())
    }

    fn set_neighbors(&mut self, want: &BTreeMap<IpAddr, PlanNeighbor>) -> Result<(), String> {
        let _guard = self.rt.handle().enter();
        let have = self.plan.neighbors.clone();
        for (addr, n) in &have {
            if want.get(addr) != Some(n) {
                self.speaker().remove_neighbor(*addr);
            }
        }
        for (addr, n) in want {
            if have.get(addr) != Some(n) {
                let mut p = PeerConfig::new(*addr, n.asn);
                p.description = format!("ToR {addr}");
                p.bfd = n.bfd;
                self.speaker()
                    .add_neighbor(p)
                    .map_err(|e| format!("adding BGP neighbor {addr}: {e}"))?;
            }
        }
        self.plan.neighbors = want.clone();
        Ok(())
    }

    /// Originates exactly `want` (withdrawing what is no longer wanted).
    pub fn advertise(&mut self, want: &BTreeSet<IpNet>) -> Result<(), String> {
        let gone: Vec<IpNet> = self.originated.difference(want).copied().collect();
        let new: Vec<IpNet> = want.difference(&self.originated).copied().collect();
        if !gone.is_empty() {
            self.speaker()
                .withdraw(gone)
                .map_err(|e| format!("withdrawing: {e}"))?;
        }
        if !new.is_empty() {
            self.speaker()
                .originate(new)
                .map_err(|e| format!("originating: {e}"))?;
        }
        self.originated = want.clone();
        Ok(())
    }

    /// Originates (`true`) or withdraws (`false`) the given prefixes.
    pub fn advertise_changes(&mut self, changes: &BTreeMap<IpNet, bool>) -> Result<(), String> {
        let (new, gone): (Vec<_>, Vec<_>) = changes.iter().partition(|(_, on)| **on);
        let gone: Vec<IpNet> = gone
            .into_iter()
            .map(|(p, _)| *p)
            .filter(|p| self.originated.contains(p))
            .collect();
        let new: Vec<IpNet> = new
            .into_iter()
            .map(|(p, _)| *p)
            .filter(|p| !self.originated.contains(p))
            .collect();
        if !gone.is_empty() {
            self.speaker()
                .withdraw(gone.clone())
                .map_err(|e| format!("withdrawing: {e}"))?;
        }
        if !new.is_empty() {
            self.speaker()
                .originate(new.clone())
                .map_err(|e| format!("originating: {e}"))?;
        }
        for p in gone {
            self.originated.remove(&p);
        }
        self.originated.extend(new);
        Ok(())
    }

    pub fn originated(&self) -> &BTreeSet<IpNet> {
        &self.originated
    }

    pub fn routes(&self) -> watch::Receiver<Arc<Routes>> {
        self.speaker().routes()
    }

    pub fn neighbors(&self) -> Vec<PeerStatus> {
        self.speaker().neighbors()
    }

    /// Closes every session (a Cease to each established peer) and stops.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.speaker.take() {
            let _ = self.rt.handle().spawn(s.shutdown()).await;
        }
    }

    /// Stops for a restart: with graceful restart the ToRs keep our routes meanwhile.
    pub async fn shutdown_for_restart(mut self) {
        if let Some(s) = self.speaker.take() {
            let _ = self.rt.handle().spawn(s.shutdown_for_restart()).await;
        }
    }
}

impl Drop for SpeakerHost {
    fn drop(&mut self) {
        if let Some(s) = self.speaker.take() {
            // Dropping aborts the speaker's tasks; do it on its own runtime.
            let _guard = self.rt.handle().enter();
            drop(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgp(json: serde_json::Value) -> contiv_model::Bgp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn contivs_one_neighbor_form() {
        let p = bgp_plan(&bgp(serde_json::json!({
            "hostname": "host1", "routerip": "10.1.1.1/31", "as": "65101",
            "neighbor-as": "65001", "neighbor": "10.1.1.0"
        })))
        .unwrap();
        assert_eq!(p.asn, 65101);
        assert_eq!(p.router_id, Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(p.router_net, "10.1.1.0/31".parse::<IpNet>().unwrap());
        assert_eq!(
            p.neighbors,
            BTreeMap::from([(
                "10.1.1.0".parse().unwrap(),
                PlanNeighbor {
                    asn: 65001,
                    bfd: None
                }
            )])
        );
        assert!(!p.uses_bfd());
        assert_eq!(p.advertise, AdvertiseMode::PerEndpoint);
    }

    #[test]
    fn several_neighbors_communities_and_blocks() {
        let p = bgp_plan(&bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbors": [{"address": "10.1.1.254", "as": "65001"},
                          {"address": "10.1.2.254", "as": "65002"}],
            "communities": ["65000:100", "65000:1:2"],
            "advertise": "host-block", "host-block": "20.1.1.0/26"
        })))
        .unwrap();
        assert_eq!(p.neighbors.len(), 2);
        assert_eq!(p.communities.len(), 1);
        assert_eq!(p.large_communities.len(), 1);
        assert_eq!(
            p.advertise,
            AdvertiseMode::HostBlocks(vec!["20.1.1.0/26".parse().unwrap()])
        );
    }

    #[test]
    fn bad_objects_are_named() {
        let base = serde_json::json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001"});
        let with = |k: &str, v: serde_json::Value| {
            let mut o = base.clone();
            o[k] = v;
            bgp_plan(&bgp(o)).unwrap_err()
        };
        assert!(with("as", "x".into()).contains("as"));
        assert!(with("routerip", "nope".into()).contains("router-ip"));
        assert!(with("routerip", "2001:db8::1/64".into()).contains("IPv4"));
        assert!(with("neighbor", "10.1.1".into()).contains("neighbor"));
        assert!(with("neighbor-as", "0".into()).contains("AS number"));
        assert!(
            with(
                "neighbors",
                serde_json::json!([{"address": "10.1.1.254", "as": "65009"}])
            )
            .contains("twice")
        );
    }

    #[test]
    fn only_identity_changes_restart_the_speaker() {
        let p = bgp_plan(&bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001"
        })))
        .unwrap();
        let mut q = p.clone();
        q.neighbors.insert(
            "10.1.1.253".parse().unwrap(),
            PlanNeighbor {
                asn: 65001,
                bfd: None,
            },
        );
        assert!(!p.needs_restart(&q));
        q.asn = 65102;
        assert!(p.needs_restart(&q));
    }

    #[test]
    fn bfd_from_the_object_reaches_every_neighbor() {
        let base = serde_json::json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001",
            "neighbors": [{"address": "10.1.2.254", "as": "65002"}]});
        let off = bgp_plan(&bgp(base.clone())).unwrap();
        assert!(!off.uses_bfd());
        let mut o = base.clone();
        o["bfd"] = true.into();
        let on = bgp_plan(&bgp(o.clone())).unwrap();
        let default = BfdConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        };
        assert_eq!(on.neighbors.len(), 2);
        assert!(on.neighbors.values().all(|n| n.bfd == Some(default)));
        o["bfd-interval"] = 100.into();
        o["bfd-multiplier"] = 5.into();
        let fast = bgp_plan(&bgp(o)).unwrap();
        let want = BfdConfig {
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 5,
        };
        assert!(fast.neighbors.values().all(|n| n.bfd == Some(want)));
        // A neighbor's own switch: only that one, with the object's timers.
        let mut o = base;
        o["neighbors"][0]["bfd"] = true.into();
        let one = bgp_plan(&bgp(o)).unwrap();
        let a: IpAddr = "10.1.2.254".parse().unwrap();
        let b: IpAddr = "10.1.1.254".parse().unwrap();
        assert_eq!(one.neighbors[&a].bfd, Some(default));
        assert_eq!(one.neighbors[&b].bfd, None);
        assert!(one.uses_bfd());
    }

    #[test]
    fn a_bfd_change_readds_neighbors_without_restarting_the_speaker() {
        let o = serde_json::json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001"});
        let off = bgp_plan(&bgp(o.clone())).unwrap();
        let mut on_o = o;
        on_o["bfd"] = true.into();
        let on = bgp_plan(&bgp(on_o.clone())).unwrap();
        on_o["bfd-interval"] = 1000.into();
        let slow = bgp_plan(&bgp(on_o)).unwrap();
        for (a, b) in [(&off, &on), (&on, &off), (&on, &slow)] {
            // Not a new speaker: the neighbor is re-added (SpeakerHost::update compares
            // whole PlanNeighbors), so the plans must differ there.
            assert!(!a.needs_restart(b));
            assert_ne!(a.neighbors, b.neighbors);
            assert_ne!(a, b);
        }
    }

    #[test]
    fn bad_bfd_timers_are_named() {
        let mut o = serde_json::json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001", "bfd": true});
        o["bfd-interval"] = 10.into();
        assert!(
            bgp_plan(&bgp(o.clone()))
                .unwrap_err()
                .contains("bfd-interval")
        );
        o["bfd-interval"] = 100.into();
        o["bfd-multiplier"] = 0.into();
        assert!(
            bgp_plan(&bgp(o.clone()))
                .unwrap_err()
                .contains("bfd-multiplier")
        );
        o["bfd-multiplier"] = 300.into();
        assert!(bgp_plan(&bgp(o)).unwrap_err().contains("bfd-multiplier"));
    }
}
