//! The host's BGP: what the `Bgp` object asks for ([`BgpPlan`], pure) and the speaker that
//! carries it out ([`SpeakerHost`]), running on its own thread inside the host's network
//! namespace so that every socket it opens lives there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bgp_speaker::bfd::{Bfd, BfdOptions};
use bgp_speaker::driver::{
    GracefulRestartConfig, PeerConfig, PeerStatus, Routes, Speaker, SpeakerConfig, SpeakerError,
};
use bgp_speaker::transport::Md5Password;
use ipnet::IpNet;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

pub use crate::calc::bgp::{BgpPlan, PlanError, PlanNeighbor, SecretError, bgp_plan, plan_of};

/// The directory of the host's BGP secrets: the file named by a neighbor's
/// `password-ref` holds its TCP MD5 password (one line; a trailing newline is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSecrets {
    dir: PathBuf,
}

impl BgpSecrets {
    /// Where netplugin looks unless told otherwise (`--bgp-secrets-dir`).
    pub const DEFAULT_DIR: &'static str = "/etc/contiv/bgp-secrets";

    pub fn new(dir: impl Into<PathBuf>) -> BgpSecrets {
        BgpSecrets { dir: dir.into() }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Reads the password of secret `name` (a name the model validated: no `/`, no
    /// `..`). A file that every user may read is refused.
    pub fn md5(&self, name: &str) -> Result<Md5Password, SecretError> {
        let (path, text) = self.read(name)?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        Md5Password::new(password).map_err(|e| SecretError::BadPassword {
            path,
            reason: e.to_string(),
        })
    }

    /// Reads the BFD authentication key of secret `name` (a `bfd-auth` `secret-ref`):
    /// the file's bytes, one trailing newline ignored; the same rules as [`Self::md5`].
    pub fn bfd_key(&self, name: &str) -> Result<Vec<u8>, SecretError> {
        let (path, text) = self.read(name)?;
        let key = text.strip_suffix('\n').unwrap_or(&text);
        let key = key.strip_suffix('\r').unwrap_or(key);
        if key.is_empty() {
            return Err(SecretError::BadPassword {
                path,
                reason: "the BFD authentication key is empty".into(),
            });
        }
        Ok(key.as_bytes().to_vec())
    }

    /// The path shown in messages and the text of secret file `name`, refused when
    /// missing, unreadable or readable by every user.
    fn read(&self, name: &str) -> Result<(String, String), SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretError::Missing { path: shown });
            }
            Err(e) => {
                return Err(SecretError::Unreadable {
                    path: shown,
                    reason: e.to_string(),
                });
            }
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o004 != 0 {
            return Err(SecretError::WorldReadable { path: shown, mode });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| SecretError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok((shown, text))
    }
}

impl BgpPlan {
    /// The plan with every `password-ref` resolved to its password from `secrets`.
    pub fn with_secrets(self, secrets: &BgpSecrets) -> Result<BgpPlan, PlanError> {
        self.with_passwords(|name| secrets.md5(name))?
            .with_bfd_keys(|name| secrets.bfd_key(name))
    }
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

/// Why the speaker could not do what a plan asks.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerHostError {
    #[error("the BGP thread: {0}")]
    Thread(#[from] tokio::task::JoinError),
    #[error("starting the BGP speaker: {0}")]
    Start(#[source] SpeakerError),
    #[error("starting BFD (UDP 3784): {0}")]
    Bfd(#[source] std::io::Error),
    #[error("adding BGP neighbor {addr}: {source}")]
    Neighbor {
        addr: IpAddr,
        #[source]
        source: SpeakerError,
    },
    #[error("originating: {0}")]
    Originate(#[source] SpeakerError),
    #[error("withdrawing: {0}")]
    Withdraw(#[source] SpeakerError),
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
    ) -> Result<SpeakerHost, SpeakerHostError> {
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
            .await?
            .map_err(SpeakerHostError::Start)?;
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
    pub async fn update(&mut self, next: &BgpPlan) -> Result<(), SpeakerHostError> {
        self.ensure_bfd(next).await?;
        if self.plan.sessions_guard_changed(next) {
            // Max-prefix or GTSM changed: every session starts again with them.
            self.set_neighbors(&BTreeMap::new())?;
            self.plan.guard = next.guard.clone();
        }
        self.set_neighbors(&next.neighbors)?;
        self.plan = next.clone();
        Ok(())
    }

    /// Starts the speaker's BFD task when `plan` needs one and it has none yet. It is
    /// started here, on the BGP thread, so that its receive sockets are bound inside the
    /// host's network namespace (the speaker would otherwise bind them on first use, on
    /// whatever thread adds the neighbor).
    async fn ensure_bfd(&mut self, plan: &BgpPlan) -> Result<(), SpeakerHostError> {
        if !plan.uses_bfd() || self.speaker().bfd().is_some() {
            return Ok(());
        }
        let bfd = self
            .rt
            .handle()
            .spawn(async { Bfd::start(BfdOptions::default()) })
            .await?
            .map_err(SpeakerHostError::Bfd)?;
        self.speaker().use_bfd(bfd);
        Ok(())
    }

    fn set_neighbors(
        &mut self,
        want: &BTreeMap<IpAddr, PlanNeighbor>,
    ) -> Result<(), SpeakerHostError> {
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
                p.bfd_auth = n.bfd_auth.clone();
                p.policy = self.plan.neighbor_policy();
                p.transport.ttl = self.plan.ttl_mode(n.asn);
                if let Some(pw) = &n.md5 {
                    p = p.with_md5_password(pw.clone());
                }
                self.speaker()
                    .add_neighbor(p)
                    .map_err(|source| SpeakerHostError::Neighbor {
                        addr: *addr,
                        source,
                    })?;
            }
        }
        self.plan.neighbors = want.clone();
        Ok(())
    }

    /// Originates exactly `want` (withdrawing what is no longer wanted).
    pub fn advertise(&mut self, want: &BTreeSet<IpNet>) -> Result<(), SpeakerHostError> {
        let gone: Vec<IpNet> = self.originated.difference(want).copied().collect();
        let new: Vec<IpNet> = want.difference(&self.originated).copied().collect();
        if !gone.is_empty() {
            self.speaker()
                .withdraw(gone)
                .map_err(SpeakerHostError::Withdraw)?;
        }
        if !new.is_empty() {
            self.speaker()
                .originate(new)
                .map_err(SpeakerHostError::Originate)?;
        }
        self.originated = want.clone();
        Ok(())
    }

    /// Originates (`true`) or withdraws (`false`) the given prefixes.
    pub fn advertise_changes(
        &mut self,
        changes: &BTreeMap<IpNet, bool>,
    ) -> Result<(), SpeakerHostError> {
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
                .map_err(SpeakerHostError::Withdraw)?;
        }
        if !new.is_empty() {
            self.speaker()
                .originate(new.clone())
                .map_err(SpeakerHostError::Originate)?;
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
    use std::net::Ipv4Addr;

    use bgp_speaker::bfd::BfdConfig;

    use super::*;
    use crate::routing::AdvertiseMode;

    fn bgp(json: serde_json::Value) -> contiv_model::Bgp {
        serde_json::from_value(json).unwrap()
    }

    /// The plan of an object, with its error as text.
    fn plan(b: &contiv_model::Bgp) -> Result<BgpPlan, String> {
        bgp_plan(b).map_err(|e| e.to_string())
    }

    /// The plan with the passwords from `secrets`.
    fn plan_with(b: &contiv_model::Bgp, secrets: &BgpSecrets) -> Result<BgpPlan, PlanError> {
        bgp_plan(b)?.with_secrets(secrets)
    }

    #[test]
    fn contivs_one_neighbor_form() {
        let p = plan(&bgp(serde_json::json!({
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
                    bfd: None,
                    password_ref: None,
                    md5: None,
                    bfd_auth_ref: None,
                    bfd_auth: None,
                }
            )])
        );
        assert!(!p.uses_bfd());
        assert_eq!(p.advertise, AdvertiseMode::PerEndpoint);
    }

    #[test]
    fn several_neighbors_communities_and_blocks() {
        let p = plan(&bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbors": [{"address": "10.1.1.254", "as": "65001"},
                          {"address": "10.1.2.254", "as": "65002"}],
            "local-addresses": ["10.1.2.1/24"],
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
            plan(&bgp(o)).unwrap_err()
        };
        assert!(with("as", "x".into()).contains("as"));
        assert!(with("routerip", "nope".into()).contains("routerip"));
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
        let p = plan(&bgp(serde_json::json!({
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
                password_ref: None,
                md5: None,
                bfd_auth_ref: None,
                bfd_auth: None,
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
            "neighbors": [{"address": "10.1.2.254", "as": "65002"}],
            "local-addresses": ["10.1.2.1/24"]});
        let off = plan(&bgp(base.clone())).unwrap();
        assert!(!off.uses_bfd());
        let mut o = base.clone();
        o["bfd"] = true.into();
        let on = plan(&bgp(o.clone())).unwrap();
        let default = BfdConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        };
        assert_eq!(on.neighbors.len(), 2);
        assert!(on.neighbors.values().all(|n| n.bfd == Some(default)));
        o["bfd-interval"] = 100.into();
        o["bfd-multiplier"] = 5.into();
        let fast = plan(&bgp(o)).unwrap();
        let want = BfdConfig {
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 5,
        };
        assert!(fast.neighbors.values().all(|n| n.bfd == Some(want)));
        // A neighbor's own switch: only that one, with the object's timers.
        let mut o = base;
        o["neighbors"][0]["bfd"] = true.into();
        let one = plan(&bgp(o)).unwrap();
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
        let off = plan(&bgp(o.clone())).unwrap();
        let mut on_o = o;
        on_o["bfd"] = true.into();
        let on = plan(&bgp(on_o.clone())).unwrap();
        on_o["bfd-interval"] = 1000.into();
        let slow = plan(&bgp(on_o)).unwrap();
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
        assert!(plan(&bgp(o.clone())).unwrap_err().contains("bfd-interval"));
        o["bfd-interval"] = 100.into();
        o["bfd-multiplier"] = 0.into();
        assert!(
            plan(&bgp(o.clone()))
                .unwrap_err()
                .contains("bfd-multiplier")
        );
        o["bfd-multiplier"] = 300.into();
        assert!(plan(&bgp(o)).unwrap_err().contains("bfd-multiplier"));
    }

    #[test]
    fn an_asdot_as_netmaster_accepts_is_one_netplugin_runs() {
        use contiv_model::Validate;
        // Before the model parsed Bgp objects once, netmaster accepted asdot and
        // netplugin refused it, so BGP never started on such a host.
        let b = bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "1.10",
            "neighbor": "10.1.1.254", "neighbor-as": "65001",
            "neighbors": [{"address": "10.1.2.254", "as": "2.1"}],
            "local-addresses": ["10.1.2.1/24"]
        }));
        assert_eq!(b.validate(), Ok(()), "netmaster's validation");
        let p = plan(&b).unwrap();
        assert_eq!(p.asn, 65546);
        assert_eq!(
            p.neighbors[&"10.1.2.254".parse::<IpAddr>().unwrap()].asn,
            131073
        );
        assert_eq!(
            p.neighbors[&"10.1.1.254".parse::<IpAddr>().unwrap()].asn,
            65001
        );
    }

    fn with_password() -> contiv_model::Bgp {
        bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbors": [{"address": "10.1.1.254", "as": "65001", "password-ref": "tor1"},
                          {"address": "10.1.2.254", "as": "65002"}],
            "local-addresses": ["10.1.2.1/24"]
        }))
    }

    fn write_secret(dir: &std::path::Path, name: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn password_ref_becomes_the_neighbors_md5_password() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = BgpSecrets::new(dir.path());
        write_secret(dir.path(), "tor1", "s3cret\n", 0o600);
        let p = plan_with(&with_password(), &secrets).unwrap();
        let tor1 = &p.neighbors[&"10.1.1.254".parse::<IpAddr>().unwrap()];
        let tor2 = &p.neighbors[&"10.1.2.254".parse::<IpAddr>().unwrap()];
        assert_eq!(
            tor1.md5.as_ref().map(|m| m.expose_secret()),
            Some("s3cret"),
            "the trailing newline is not part of the password"
        );
        assert_eq!(tor2.md5, None);
        // The password never prints (the reconciler logs plans).
        assert!(!format!("{p:?}").contains("s3cret"));
        // A new password re-adds that neighbor only; the speaker stays.
        write_secret(dir.path(), "tor1", "other", 0o600);
        let q = plan_with(&with_password(), &secrets).unwrap();
        assert!(!p.needs_restart(&q));
        assert_ne!(
            p.neighbors[&"10.1.1.254".parse::<IpAddr>().unwrap()],
            q.neighbors[&"10.1.1.254".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            p.neighbors[&"10.1.2.254".parse::<IpAddr>().unwrap()],
            q.neighbors[&"10.1.2.254".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn bfd_auth_reads_its_key_from_the_secrets_dir_with_the_same_rules() {
        use bgp_speaker::bfd::AuthType;
        let b = bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101", "bfd": true,
            "bfd-auth": {"secret-ref": "tor-bfd", "type": "keyed-sha1", "key-id": 4},
            "neighbors": [{"address": "10.1.1.254", "as": "65001"}]
        }));
        let dir = tempfile::tempdir().unwrap();
        let secrets = BgpSecrets::new(dir.path());
        let tor = "10.1.1.254".parse::<IpAddr>().unwrap();
        let bfd_problem = |b: &contiv_model::Bgp| match plan_with(b, &secrets) {
            Err(PlanError::BfdSecret {
                problem,
                name,
                neighbor,
            }) => {
                assert_eq!((name.as_str(), neighbor), ("tor-bfd", tor));
                problem
            }
            other => panic!("{other:?}"),
        };
        assert!(matches!(bfd_problem(&b), SecretError::Missing { .. }));
        write_secret(dir.path(), "tor-bfd", "bfd-s3cret\n", 0o644);
        assert!(matches!(
            bfd_problem(&b),
            SecretError::WorldReadable { mode: 0o644, .. }
        ));
        write_secret(dir.path(), "tor-bfd", "\n", 0o600);
        assert!(matches!(bfd_problem(&b), SecretError::BadPassword { .. }));
        write_secret(dir.path(), "tor-bfd", &"x".repeat(21), 0o600);
        assert!(matches!(bfd_problem(&b), SecretError::BadPassword { .. }));
        write_secret(dir.path(), "tor-bfd", "bfd-s3cret\n", 0o600);
        let p = plan_with(&b, &secrets).unwrap();
        let key = p.neighbors[&tor].bfd_auth.as_ref().expect("a key");
        assert_eq!((key.auth_type(), key.key_id()), (AuthType::KeyedSha1, 4));
        assert_eq!(
            key,
            &bgp_speaker::bfd::AuthKey::new(AuthType::KeyedSha1, 4, b"bfd-s3cret".to_vec())
                .unwrap()
        );
        // Neither the plan nor the object prints the key.
        assert!(!format!("{p:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&b).unwrap().contains("s3cret"));
    }

    #[test]
    fn a_password_ref_without_a_usable_secret_is_an_error_not_a_session_without_md5() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = BgpSecrets::new(dir.path());
        let b = with_password();
        let e = plan_with(&b, &secrets).unwrap_err();
        assert!(
            matches!(&e, PlanError::Secret { problem: SecretError::Missing { .. }, name, .. } if name == "tor1"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("10.1.1.254") && msg.contains("tor1") && msg.contains("does not exist"),
            "{msg}"
        );
        write_secret(dir.path(), "tor1", "s3cret", 0o644);
        let e = plan_with(&b, &secrets).unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::Secret {
                    problem: SecretError::WorldReadable { mode: 0o644, .. },
                    ..
                }
            ),
            "{e:?}"
        );
        write_secret(dir.path(), "tor1", "", 0o600);
        let e = plan_with(&b, &secrets).unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::Secret {
                    problem: SecretError::BadPassword { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        write_secret(dir.path(), "tor1", &"x".repeat(81), 0o600);
        assert!(plan_with(&b, &secrets).is_err());
        write_secret(dir.path(), "tor1", "s3cret", 0o640);
        assert!(plan_with(&b, &secrets).is_ok());
    }
}
