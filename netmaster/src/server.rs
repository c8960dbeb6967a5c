//! Assembles a running netmaster: store, election, intent engine, REST server. Used by
//! the binary and by tests (which listen on port 0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState, Info, auth::Auth};
use crate::election::{Election, Role};
use crate::intent::Engine;
use crate::metrics::Metrics;
use crate::store::{AnyStore, EtcdAccess, EtcdStore, RedbStore};

/// Where the state lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded store, in this directory.
    Embedded { data_dir: PathBuf },
    /// A real etcd cluster.
    Etcd {
        /// `host:port` or `http(s)://` URLs.
        endpoints: Vec<String>,
        prefix: String,
        /// TLS trust, client certificate, user (the store and the election use them both).
        access: EtcdAccess,
    },
}

/// Everything a netmaster is started with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub backend: Backend,
    /// The URL other netmasters forward writes to; defaults to `http://<listen>`
    /// (`https://<listen>` with TLS).
    pub advertise_url: Option<String>,
    /// The admin token. With one, every request needs a credential (see
    /// [`crate::api::auth`]); without one, netmaster must listen on loopback (or be
    /// `insecure`) and is open.
    pub token: Option<contiv_model::Secret>,
    /// Accept calls without credentials on any address.
    pub insecure: bool,
    /// Serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<crate::tls::TlsFiles>,
    /// The CA that other netmasters' certificates are checked against when a follower
    /// forwards a write to the leader (`--peer-ca`); needed with TLS on etcd.
    pub peer_ca: Option<PathBuf>,
    /// Lease time-to-live for leader election, in seconds.
    pub election_ttl: i64,
    /// Collect the endpoints of hosts whose netplugin has not reported for this long
    /// (`None`: only by hand).
    pub endpoint_gc_after: Option<Duration>,
}

impl Config {
    pub fn embedded(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            backend: Backend::Embedded { data_dir },
            advertise_url: None,
            token: None,
            insecure: false,
            tls: None,
            peer_ca: None,
            election_ttl: 5,
            endpoint_gc_after: Some(Duration::from_secs(600)),
        }
    }
}

/// A running netmaster.
#[derive(Debug)]
pub struct Running {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub role: watch::Receiver<Role>,
    tls: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    election: Option<Election>,
}

impl Running {
    /// The base URL of the API (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops serving, resigns leadership and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(e) = self.election.take() {
            e.resign().await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // Feed subscribers keep their streams open forever: give ordinary requests a
        // moment to finish, then close whatever is left.
        if tokio::time::timeout(Duration::from_secs(2), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.server.abort();
    }
}

fn auth_for(cfg: &Config) -> anyhow::Result<Auth> {
    if cfg.listen.ip().is_loopback() || cfg.insecure {
        return Ok(match &cfg.token {
            Some(t) => Auth::Token(t.clone()),
            None => Auth::Open,
        });
    }
    match &cfg.token {
        Some(t) if !t.expose().is_empty() => Ok(Auth::Token(t.clone())),
        _ => bail!(
            "netmaster listens on {} (not loopback): give an admin token (--token-file), or --insecure to accept any request from anyone",
            cfg.listen
        ),
    }
}

/// The client a follower forwards writes with: the leader's certificate must chain to
/// `peer_ca` (without one, only plain-HTTP leaders can be reached: the client has no
/// built-in roots).
fn forward_client(peer_ca: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut b = api::forward::Forwarder::client_builder();
    if let Some(p) = peer_ca {
        let pem = std::fs::read(p)
            .with_context(|| format!("reading the peer CA file {}", p.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("the peer CA file {} is not PEM", p.display()))?;
        if certs.is_empty() {
            bail!("the peer CA file {} holds no certificate", p.display());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .context("building the client that forwards writes to the leader")
}

/// Opens the store, joins the election, loads intent and starts serving.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let auth = auth_for(&cfg)?;
    // Certificate problems stop the start before anything is opened.
    let tls = cfg
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    if tls.is_some() && cfg.peer_ca.is_none() && matches!(cfg.backend, Backend::Etcd { .. }) {
        bail!(
            "with --tls-cert and etcd, followers forward writes to the leader over HTTPS: give --peer-ca (the CA of the netmasters' certificates)"
        );
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let advertise_url = cfg
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let (store, election, backend_name) = match &cfg.backend {
        Backend::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let path = data_dir.join("netmaster.redb");
            let store =
                RedbStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
            (
                AnyStore::Redb(store),
                Election::local(),
                format!("embedded:{}", path.display()),
            )
        }
        Backend::Etcd {
            endpoints,
            prefix,
            access,
        } => {
            let store = EtcdStore::connect_with(endpoints, prefix, access)
                .await
                .with_context(|| format!("connecting to etcd {}", endpoints.join(",")))?;
            let election = Election::etcd(
                store.client(),
                &format!("{prefix}/leader"),
                &advertise_url,
                cfg.election_ttl,
            );
            (
                AnyStore::Etcd(Box::new(store)),
                election,
                format!("etcd:{}", endpoints.join(",")),
            )
        }
    };
    let store = Arc::new(store);
    let engine = Arc::new(
        Engine::open(store)
            .await
            .map_err(|e| anyhow::anyhow!("loading intent: {e}"))?,
    );
    let metrics = Arc::new(Metrics::new());
    let mut tasks = Vec::new();
    engine.set_metrics(metrics.clone());
    // Object counts and IPAM use follow every change.
    let (e, m) = (engine.clone(), metrics.clone());
    tasks.push(tokio::spawn(async move {
        let mut changes = e.published_watch();
        loop {
            crate::kinds::update_metrics(&e.world(), &m);
            if changes.changed().await.is_err() {
                return;
            }
            // Coalesce bursts of changes.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }));
    let role = election.subscribe();

    // Keep the world current with writes made elsewhere (other netmasters).
    let follower = engine.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            if let Err(e) = follower.follow().await {
                tracing::warn!("intent watch ended: {e}; re-reading");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = follower.refresh().await {
                tracing::warn!("re-reading intent failed: {e}");
            }
        }
    }));
    // Leadership into the metrics; a new leader re-reads intent before writing.
    let (m, mut r, e) = (metrics.clone(), role.clone(), engine.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            let leader = r.borrow_and_update().is_leader();
            m.leader.set(i64::from(leader));
            if leader {
                if let Err(err) = e.refresh().await {
                    tracing::warn!("re-reading intent on taking the lead failed: {err}");
                }
                if let Err(err) = crate::kinds::ensure_defaults(&e).await {
                    tracing::warn!("creating the default objects failed: {err}");
                }
            }
            if r.changed().await.is_err() {
                return;
            }
        }
    }));

    // The leader collects the endpoints of hosts gone for longer than the GC time.
    if let Some(gc_after) = cfg.endpoint_gc_after {
        let (e, r) = (engine.clone(), role.clone());
        let period = (gc_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if !r.borrow().is_leader() {
                    continue;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let hosts = match crate::intent::endpoints::stale_hosts(&e.world(), now, gc_after.as_secs()) {
                    Ok(h) => h,
                    Err(err) => {
                        tracing::warn!("endpoint GC: {err}");
                        continue;
                    }
                };
                for h in hosts {
                    match crate::intent::endpoints::collect_host(&e, &h).await {
                        Ok(n) => tracing::info!("endpoint GC: host {h} silent for over {gc_after:?}: collected {n} endpoints"),
                        Err(err) => tracing::warn!("endpoint GC of host {h}: {err}"),
                    }
                }
            }
        }));
    }

    if role.borrow().is_leader() {
        crate::kinds::ensure_defaults(&engine)
            .await
            .map_err(|e| anyhow::anyhow!("creating the default objects: {e}"))?;
    }

    let state = AppState {
        engine: engine.clone(),
        metrics,
        role: role.clone(),
        auth,
        forward: api::forward::Forwarder::new(
            forward_client(cfg.peer_ca.as_deref())?,
            &advertise_url,
        ),
        info: Arc::new(Info {
            version: env!("CARGO_PKG_VERSION"),
            store_backend: backend_name,
            advertise_url,
            listen: addr.to_string(),
        }),
    };
    let app = api::router(state, api::contiv_routes);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = rx.await;
    };
    let limits = crate::http::Limits::DEFAULT;
    let server = match tls.clone() {
        None => tokio::spawn(crate::http::serve(listener, app, limits, stopped)),
        Some(tls) => {
            let listener = crate::tls::TlsListener::new(listener, tls)?;
            tokio::spawn(crate::http::serve(listener, app, limits, stopped))
        }
    };
    Ok(Running {
        addr,
        engine,
        role,
        tls: tls.is_some(),
        shutdown: Some(tx),
        server,
        tasks,
        election: Some(election),
    })
}
