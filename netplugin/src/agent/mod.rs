//! The netplugin daemon: the pieces of this crate wired into one agent.
//!
//! - [`Agent`] implements [`EndpointService`] for the CNI and Docker front ends: an
//!   endpoint's address comes from netmaster (`/api/v1/plugin/endpoints/`), the veth pair
//!   is plumbed in the host's namespace, and the endpoint is saved on disk
//!   (`<state dir>/endpoints.json`) before the call returns. Any failure undoes what the
//!   call did (no veth, no address held, no route).
//! - The reconciler ([`reconcile`]) makes the host match its intent: it starts, updates
//!   or stops the BGP speaker from the host's `Bgp` object, originates the local
//!   endpoints' prefixes, and syncs the kernel FIB (local /32s on their veths, learned
//!   routes with their ECMP next hops). It runs on every change (endpoint, intent,
//!   learned routes) and every few seconds to repair drift; front-end calls wait for
//!   the pass that includes them, so a container is routable when ADD returns.
//! - The reporter publishes the host's endpoints, BGP sessions and learned routes to
//!   netmaster (`PUT /api/v1/feed/hosts/<host>/`) for `netctl bgp inspect`.
//!
//! Restart safety: on start the agent loads its saved endpoints and intent, waits until
//! it has intent (from disk or from netmaster), and only then sweeps: veths named like
//! ours that no saved endpoint owns at two resyncs in a row are removed (a veth is
//! plumbed before its endpoint is saved), and the FIB sync removes routes with our
//! protocol number that are no longer wanted. Nothing without our marks is touched.

pub mod bgp;
pub mod docker_sync;
pub mod master;
pub mod metrics;
mod reconcile;
mod report;
mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use contiv_model::Object;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

use crate::cni::service::{Attachment, DockerNetwork, EndpointError, MacAddr, NetworkTarget};
use crate::endpoint::HostNs;
use crate::intent::{Link, Mirror};

pub use reconcile::Status;

pub use crate::calc::{ROUTING, stored_fwd_mode};

/// How long an endpoint call waits for the first intent after a start.
const FIRST_INTENT_WAIT: Duration = Duration::from_secs(5);

/// How the agent is set up.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This host's name (the `Bgp` object's `hostname`, endpoints' `homingHost`).
    pub host: String,
    /// netmaster's base URL.
    pub netmaster: String,
    /// This host's credential at netmaster (`--token-file`).
    pub token: Option<contiv_model::Secret>,
    /// The CA netmaster's certificate must chain to (`--netmaster-ca`).
    pub netmaster_ca: Option<PathBuf>,
    /// Where the agent keeps its state (intent mirror, endpoints).
    pub state_dir: PathBuf,
    /// The host's network namespace when it is not the agent's own (lab hosts).
    pub netns: Option<PathBuf>,
    /// The forwarding mode given on the command line, if any; it must agree with the
    /// stored global (a disagreement is reported loudly, the global wins).
    pub fwd_mode: Option<String>,
    /// MTU of endpoint interfaces.
    pub mtu: u32,
    /// Resync period of the reconciler: every change is applied as it comes; the resync
    /// reads the kernel back whole to repair drift (Calico refreshes routes every 90 s).
    pub resync: Duration,
    /// How often the host report goes to netmaster.
    pub report_every: Duration,
    /// Service discovery: the DNS server in the host namespace, if enabled.
    pub dns: Option<DnsSettings>,
    /// The host's dockerd, if Docker runs there: Contiv networks become its networks.
    pub docker: Option<DockerSettings>,
    /// Route straight to endpoints of hosts on this host's own router subnet (a shared
    /// segment) instead of through the ToR.
    pub direct_routes: bool,
    /// Where the TCP MD5 passwords named by the `Bgp` object's `password-ref`s are.
    pub bgp_secrets: bgp::BgpSecrets,
}

/// The host's dockerd and our driver's name in it.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// dockerd's API socket (`/run/docker.sock`).
    pub socket: PathBuf,
    /// The driver name networks are created with (network and IPAM).
    pub driver: String,
}

/// The port of netplugin's DNS server (it listens on the host's router address, the one
/// containers are told to use) and where it forwards other names.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub port: u16,
    pub upstreams: Vec<std::net::SocketAddr>,
}

impl AgentConfig {
    pub fn new(host: &str, netmaster: &str, state_dir: &Path) -> AgentConfig {
        AgentConfig {
            host: host.to_string(),
            netmaster: netmaster.to_string(),
            token: None,
            netmaster_ca: None,
            state_dir: state_dir.to_path_buf(),
            netns: None,
            fwd_mode: None,
            mtu: 1500,
            resync: Duration::from_secs(30),
            report_every: Duration::from_secs(3),
            dns: None,
            docker: None,
            direct_routes: false,
            bgp_secrets: bgp::BgpSecrets::new(bgp::BgpSecrets::DEFAULT_DIR),
        }
    }
}

/// One endpoint plumbed on this host, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRecord {
    pub endpoint_id: String,
    pub attachment: Attachment,
    pub target: NetworkTarget,
    /// The container's namespace (CNI); `None` for Docker endpoints.
    pub netns: Option<PathBuf>,
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    pub host_ifname: String,
    pub container_ifname: String,
    pub mac: MacAddr,
    #[serde(default)]
    pub container_name: String,
    /// The address came from a Docker IPAM reservation: `ReleaseAddress` releases it.
    #[serde(default)]
    pub ipam_reserved: bool,
}

/// An address Docker's IPAM reserved (an endpoint at netmaster not yet plumbed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub endpoint_id: String,
    pub target: NetworkTarget,
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

/// Everything the agent saves, in one file written atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// By `<container id>/<ifname>`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, LocalRecord>,
    /// Docker network id → what the driver knows of it.
    #[serde(default)]
    pub docker_networks: BTreeMap<String, DockerNetwork>,
    /// Reserved address → reservation.
    #[serde(default)]
    pub reservations: BTreeMap<IpAddr, Reservation>,
}

impl Saved {
    fn path(dir: &Path) -> PathBuf {
        dir.join("endpoints.json")
    }

    pub fn load(dir: &Path) -> std::io::Result<Saved> {
        match std::fs::read(Self::path(dir)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", Self::path(dir).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let path = Self::path(dir);
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        // Atomic against a crash of the agent (rename); not fsynced: what it records is
        // kernel state (veths, routes) that a power loss takes away as well.
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)
    }
}

/// The key of an attachment in [`Saved::endpoints`].
pub fn attachment_key(a: &Attachment) -> String {
    format!("{}/{}", a.container_id, a.ifname)
}

/// netmaster's endpoint id for an attachment: `<container id>-<ifname>` (Docker: the
/// endpoint id itself), hashed when that would be too long for netmaster.
pub fn endpoint_id(a: &Attachment) -> String {
    if a.ifname == crate::cni::service::DOCKER_IFNAME {
        return a.container_id.clone();
    }
    let id = format!("{}-{}", a.container_id, a.ifname);
    if id.len() <= 128 && !id.contains('/') {
        id
    } else {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("cni-{h:016x}")
    }
}

/// Endpoints the front ends changed, numbered so that a call can wait for the pass that
/// took its change in.
#[derive(Debug, Default)]
struct Touched {
    generation: u64,
    keys: BTreeSet<String>,
}

/// The agent: shared by the front ends, the reconciler and the reporter.
pub struct Agent {
    cfg: AgentConfig,
    host_ns: HostNs,
    master: master::Master,
    state: Mutex<Saved>,
    mirror: watch::Receiver<Arc<Mirror>>,
    link: watch::Receiver<Link>,
    /// Endpoints (attachment keys) the front ends changed since the last pass.
    touched: std::sync::Mutex<Touched>,
    /// Bumped by every front-end change; the reconciler answers with `done`.
    wanted: watch::Sender<u64>,
    done: watch::Receiver<u64>,
    status: watch::Receiver<Arc<Status>>,
    pub metrics: Arc<metrics::Metrics>,
    /// Docker endpoints whose container name is to be learned: (attachment key, id).
    naming: tokio::sync::mpsc::UnboundedSender<(String, String)>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("host", &self.cfg.host)
            .finish()
    }
}

/// A running agent's background work; dropping it stops the agent.
#[derive(Debug)]
pub struct Running {
    pub agent: Arc<Agent>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    reconciler: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Running {
    /// Stops the agent: the speaker closes its sessions (the ToRs withdraw our routes
    /// unless graceful restart keeps them), the data path stays as it is.
    pub async fn stop(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some((tx, task)) = self.reconciler.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some((tx, _)) = self.reconciler.take() {
            let _ = tx.send(());
        }
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("state directory {0}: {1}")]
    State(PathBuf, std::io::Error),
    #[error("{0}")]
    Setup(String),
}

impl Agent {
    /// Loads the saved state, follows netmaster's feed and starts the reconciler and the
    /// reporter.
    pub async fn start(cfg: AgentConfig) -> Result<Running, StartError> {
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| StartError::State(cfg.state_dir.clone(), e))?;
        let saved =
            Saved::load(&cfg.state_dir).map_err(|e| StartError::State(cfg.state_dir.clone(), e))?;
        let mirror_path = cfg.state_dir.join("intent.json");
        let mirror =
            Mirror::load(&mirror_path).map_err(|e| StartError::State(cfg.state_dir.clone(), e))?;
        let (mirror_tx, mirror_rx) = watch::channel(Arc::new(mirror));
        let (link_tx, link_rx) = watch::channel(Link::Disconnected);
        let ca = cfg.netmaster_ca.as_deref();
        let master = master::Master::new(&cfg.netmaster, cfg.token.clone(), ca)
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let feed_client = master::client_builder(ca)
            .and_then(|b| {
                b.connect_timeout(std::time::Duration::from_secs(3))
                    .build()
                    .map_err(master::MasterError::Client)
            })
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let (wanted, wanted_rx) = watch::channel(0u64);
        let (done_tx, done) = watch::channel(0u64);
        let (status_tx, status) = watch::channel(Arc::new(Status::default()));
        let metrics = Arc::new(metrics::Metrics::new());
        let (naming, mut naming_rx) = tokio::sync::mpsc::unbounded_channel();
        let agent = Arc::new(Agent {
            naming,
            host_ns: HostNs(cfg.netns.clone()),
            master,
            state: Mutex::new(saved),
            mirror: mirror_rx,
            link: link_rx,
            touched: std::sync::Mutex::new(Touched::default()),
            wanted,
            done,
            status,
            metrics,
            cfg: cfg.clone(),
        });
        let mut tasks = vec![tokio::spawn(crate::intent::follow(
            crate::intent::FeedConfig {
                netmaster: cfg.netmaster.clone(),
                client: feed_client,
                token: cfg.token.clone(),
                path: mirror_path,
            },
            mirror_tx,
            link_tx,
        ))];
        let rt = Arc::new(
            bgp::NsRuntime::start(cfg.netns.clone())
                .map_err(|e| StartError::Setup(format!("the BGP thread: {e}")))?,
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let reconciler = tokio::spawn(reconcile::run(
            agent.clone(),
            rt.clone(),
            wanted_rx,
            done_tx,
            status_tx,
            stop_rx,
        ));
        tasks.push(tokio::spawn(report::report_loop(agent.clone())));
        if let Some(d) = &cfg.docker {
            tasks.push(tokio::spawn(docker_sync::run(
                agent.clone(),
                d.socket.clone(),
                d.driver.clone(),
            )));
            let (a, socket) = (agent.clone(), d.socket.clone());
            tasks.push(tokio::spawn(async move {
                while let Some((key, id)) = naming_rx.recv().await {
                    tokio::spawn(docker_sync::name_endpoint(
                        a.clone(),
                        socket.clone(),
                        key,
                        id,
                    ));
                }
            }));
        }
        if let Some(dns) = &cfg.dns {
            tasks.extend(start_dns(&agent, &rt, dns).await?);
        }
        Ok(Running {
            agent,
            tasks,
            reconciler: Some((stop_tx, reconciler)),
        })
    }

    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// The latest intent.
    pub fn mirror(&self) -> Arc<Mirror> {
        self.mirror.borrow().clone()
    }

    /// Whether the feed is connected now.
    pub fn connected(&self) -> bool {
        *self.link.borrow() == Link::Connected
    }

    /// The reconciler's latest view (sessions, routes, errors).
    pub fn status(&self) -> Arc<Status> {
        self.status.borrow().clone()
    }

    /// The saved endpoints.
    pub async fn endpoints(&self) -> Vec<LocalRecord> {
        self.state
            .lock()
            .await
            .endpoints
            .values()
            .cloned()
            .collect()
    }

    /// Notes that the endpoint saved under `key` changed (added, removed) — or, with
    /// `None`, only that a pass is wanted — and wakes the reconciler. Call it while
    /// holding the state lock, so that a pass waiting for the lock sees the change.
    /// Returns the touch's number for [`Agent::settle`].
    fn touch(&self, key: Option<&str>) -> u64 {
        let generation = {
            let mut t = self
                .touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            t.generation += 1;
            if let Some(k) = key {
                t.keys.insert(k.to_string());
            }
            t.generation
        };
        self.wanted.send_replace(generation);
        generation
    }

    /// The endpoints touched since the last call, and the number of the last touch.
    fn take_touched(&self) -> (u64, BTreeSet<String>) {
        let mut t = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (t.generation, std::mem::take(&mut t.keys))
    }

    /// The number of the last touch, leaving its endpoints for the next pass.
    fn touched_generation(&self) -> u64 {
        self.touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .generation
    }

    /// Waits until a reconcile pass has taken in the touch numbered `generation` (or
    /// `within` passes): the first pass that reads the endpoints after the touch, which
    /// may be one already waiting for the state lock.
    pub async fn settle(&self, generation: u64, within: Duration) -> Result<(), EndpointError> {
        let mut done = self.done.clone();
        tokio::time::timeout(within, done.wait_for(|d| *d >= generation))
            .await
            .map_err(|_| {
                EndpointError::unavailable(
                    "the data path was not programmed in time; see the netplugin log",
                )
            })?
            .map_err(|_| EndpointError::unavailable("netplugin is shutting down"))?;
        Ok(())
    }

    /// The policy families for a scrape, from the counters of our nftables tables read
    /// now (empty when they cannot be read).
    pub async fn policy_metrics(&self) -> String {
        use crate::policy::driver::NftDriver as _;
        let labels = self.status().policy_counters.clone();
        let host = self.host_ns.clone();
        let counts = tokio::task::spawn_blocking(move || {
            crate::policy::driver::NftCli::new(host).counters()
        })
        .await;
        match counts {
            Ok(Ok(c)) => metrics::policy_text(&c, &labels),
            Ok(Err(e)) => {
                tracing::debug!("policy counters: {e}");
                String::new()
            }
            Err(_) => String::new(),
        }
    }

    /// The address containers send DNS queries to: the host's router address, when
    /// service discovery is on and the host has a `Bgp` object.
    pub fn dns_server_ip(&self) -> Option<IpAddr> {
        self.cfg.dns.as_ref()?;
        let b = self
            .mirror()
            .get::<contiv_model::Bgp>(contiv_model::Bgp::PLURAL, &self.cfg.host)?;
        let net: IpNet = b.routerip.parse().ok()?;
        Some(net.addr())
    }

    /// Records the container name of a local endpoint, here and at netmaster.
    pub async fn set_container_name(&self, key: &str, name: &str) -> Result<(), EndpointError> {
        let mut st = self.state.lock().await;
        let Some(r) = st.endpoints.get_mut(key) else {
            return Ok(());
        };
        if r.container_name == name {
            return Ok(());
        }
        r.container_name = name.to_string();
        let r = r.clone();
        st.save(&self.cfg.state_dir)
            .map_err(|e| EndpointError::internal(format!("saving: {e}")))?;
        drop(st);
        self.master
            .create_endpoint(&master::EndpointRequest {
                endpoint_id: r.endpoint_id.clone(),
                tenant: r.target.tenant.clone(),
                network: r.target.network.clone(),
                group: r.target.group.clone().unwrap_or_default(),
                host: self.cfg.host.clone(),
                container_id: r.attachment.container_id.clone(),
                container_name: name.to_string(),
                preferred_ip: String::new(),
                labels: BTreeMap::new(),
            })
            .await
            .map(|_| ())
    }

    /// Right after a start the first snapshot of the feed may still be on its way (a
    /// TLS handshake, a busy netmaster): an endpoint call waits for it a little instead
    /// of failing at once; with still no intent, [`Agent::check_mode`] refuses it.
    async fn await_first_intent(&self) {
        let mut rx = self.mirror.clone();
        let _ = tokio::time::timeout(
            FIRST_INTENT_WAIT,
            rx.wait_for(|m| !(m.revision == 0 && m.objects.is_empty())),
        )
        .await;
    }

    /// Refuses endpoint changes while the host is not in routing mode.
    fn check_mode(&self) -> Result<(), EndpointError> {
        let m = self.mirror();
        if m.revision == 0 && m.objects.is_empty() {
            return Err(EndpointError::unavailable(format!(
                "netplugin on {} has no intent from netmaster yet",
                self.cfg.host
            )));
        }
        let mode = stored_fwd_mode(&m);
        if mode != ROUTING {
            return Err(EndpointError::unavailable(format!(
                "the fabric's forwarding mode is {mode}; this netplugin implements the routing \
                 mode only (netctl global set --fwd-mode routing)"
            )));
        }
        Ok(())
    }
}

/// The DNS records of the fabric's endpoints.
pub fn dns_records(m: &Mirror) -> Vec<crate::dns::Record> {
    m.list::<contiv_model::Endpoint>(contiv_model::Endpoint::PLURAL)
        .into_iter()
        .map(|e| crate::dns::Record {
            tenant: e.tenant_name,
            network: e.network_name,
            name: Some(e.container_name).filter(|n| !n.is_empty()),
            group: Some(e.service_name).filter(|g| !g.is_empty()),
            addrs: e.ip_address.iter().filter_map(|a| a.parse().ok()).collect(),
        })
        .collect()
}

/// The addresses of the endpoints homed on `host`: the only sources the DNS server answers.
pub fn local_endpoint_addrs(m: &Mirror, host: &str) -> std::collections::HashSet<IpAddr> {
    m.list::<contiv_model::Endpoint>(contiv_model::Endpoint::PLURAL)
        .into_iter()
        .filter(|e| e.homing_host == host)
        .flat_map(|e| e.ip_address)
        .filter_map(|a| {
            a.parse::<IpNet>()
                .map(|n| n.addr())
                .or_else(|_| a.parse())
                .ok()
        })
        .collect()
}

/// Starts the table builder (on this runtime) and the DNS server (in the host
/// namespace, on the address containers use: [`Agent::dns_server_ip`]).
async fn start_dns(
    agent: &Arc<Agent>,
    rt: &Arc<bgp::NsRuntime>,
    dns: &DnsSettings,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
    use crate::dns::DnsTable;
    let host = agent.cfg.host.clone();
    let m = agent.mirror();
    let (table_tx, table_rx) = watch::channel(Arc::new(DnsTable::new(dns_records(&m), None)));
    let (local_tx, local_rx) = watch::channel(Arc::new(local_endpoint_addrs(&m, &host)));
    let (addr_tx, addr_rx) = watch::channel(agent.dns_server_ip().into_iter().collect());
    let mut mirror = agent.mirror.clone();
    let a = agent.clone();
    let builder = tokio::spawn(async move {
        while mirror.changed().await.is_ok() {
            let m = mirror.borrow_and_update().clone();
            table_tx.send_replace(Arc::new(DnsTable::new(dns_records(&m), None)));
            local_tx.send_replace(Arc::new(local_endpoint_addrs(&m, &host)));
            let ip: Vec<IpAddr> = a.dns_server_ip().into_iter().collect();
            addr_tx.send_if_modified(|cur| {
                let changed = *cur != ip;
                *cur = ip;
                changed
            });
        }
    });
    let askers = crate::dns::local_askers(table_rx.clone(), local_rx);
    let serving = rt.handle().spawn(crate::dns::serve(
        addr_rx,
        dns.port,
        table_rx,
        dns.upstreams.clone(),
        askers,
    ));
    Ok(vec![builder, serving])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_fit_netmaster() {
        let a = Attachment {
            container_id: "abc".into(),
            ifname: "eth0".into(),
        };
        assert_eq!(endpoint_id(&a), "abc-eth0");
        let d = Attachment {
            container_id: "0123456789abcdef".into(),
            ifname: crate::cni::service::DOCKER_IFNAME.into(),
        };
        assert_eq!(endpoint_id(&d), "0123456789abcdef");
        let long = Attachment {
            container_id: "x".repeat(200),
            ifname: "eth0".into(),
        };
        let id = endpoint_id(&long);
        assert!(id.starts_with("cni-") && id.len() == 20);
        let slash = Attachment {
            container_id: "a/b".into(),
            ifname: "eth0".into(),
        };
        assert!(!endpoint_id(&slash).contains('/'));
    }

    #[test]
    fn saved_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Saved::load(dir.path()).unwrap(), Saved::default());
        let mut s = Saved::default();
        s.endpoints.insert(
            "c/eth0".into(),
            LocalRecord {
                endpoint_id: "c-eth0".into(),
                attachment: Attachment {
                    container_id: "c".into(),
                    ifname: "eth0".into(),
                },
                target: NetworkTarget::new("default", "contiv-net", None).unwrap(),
                netns: Some("/proc/1/ns/net".into()),
                address: "20.1.1.1/24".parse().unwrap(),
                gateway: Some("20.1.1.254".parse().unwrap()),
                host_ifname: "cv0".into(),
                container_ifname: "eth0".into(),
                mac: MacAddr([2, 2, 20, 1, 1, 1]),
                container_name: "web".into(),
                ipam_reserved: false,
            },
        );
        s.save(dir.path()).unwrap();
        assert_eq!(Saved::load(dir.path()).unwrap(), s);
    }

    #[test]
    fn the_global_decides_the_mode() {
        let mut m = Mirror::default();
        assert_eq!(stored_fwd_mode(&m), "bridge");
        m.objects.entry("globals".into()).or_default().insert(
            "global".into(),
            Arc::new(serde_json::json!({"name": "global", "fwdMode": "routing"})),
        );
        assert_eq!(stored_fwd_mode(&m), "routing");
    }
}
