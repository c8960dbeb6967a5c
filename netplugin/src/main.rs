//! `netplugin`: the Contiv host agent. It follows netmaster's intent, serves the CNI
//! plugin and the Docker network and IPAM drivers on unix sockets, peers with the
//! top-of-rack routers over BGP and programs the kernel in routing mode, and exports
//! Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use clap::Parser;
use netplugin::agent::{Agent, AgentConfig};
use netplugin::cni::server as cni_server;
use netplugin::docker::{self, DockerConfig};

#[derive(Debug, Parser)]
#[command(name = "netplugin", version, about = "Contiv host agent")]
struct Args {
    /// This host's name (its Bgp object's hostname, its endpoints' homing host).
    #[arg(long, env = "CONTIV_HOST")]
    host: Option<String>,
    /// netmaster's URL (`https://...` when netmaster serves TLS).
    #[arg(long, default_value = "http://127.0.0.1:9999", env = "NETMASTER_URL")]
    netmaster: String,
    /// File holding this host's credential at netmaster (`netctl host credential
    /// create <host>` prints it).
    #[arg(long, env = "NETMASTER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) that netmaster's certificate must chain to.
    #[arg(long, env = "NETMASTER_CA")]
    netmaster_ca: Option<PathBuf>,
    /// Where the agent keeps its state (default /var/lib/contiv/netplugin/<host>).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Run the host's data plane and BGP in this network namespace (a lab host), instead
    /// of the agent's own.
    #[arg(long)]
    netns: Option<PathBuf>,
    /// The forwarding mode this host is expected to run in; the fabric's global setting
    /// decides, a disagreement is logged as an error.
    #[arg(long, value_parser = ["routing", "bridge"])]
    fwd_mode: Option<String>,
    /// The CNI plugin's socket.
    #[arg(long, default_value = "/run/contiv/netplugin.sock")]
    cni_socket: PathBuf,
    /// Docker's legacy plugin directory; the network and IPAM drivers listen on
    /// `<dir>/<plugin-name>.sock`.
    #[arg(long, default_value = "/run/docker/plugins")]
    docker_plugin_dir: PathBuf,
    /// Do not serve the Docker drivers (CNI only).
    #[arg(long)]
    no_docker: bool,
    /// dockerd's API socket: Contiv networks are created there as Docker networks.
    #[arg(long, default_value = "/run/docker.sock")]
    docker_socket: PathBuf,
    /// The Docker driver name (network and IPAM).
    #[arg(long, default_value = "netplugin")]
    plugin_name: String,
    /// Address of the Prometheus endpoint (`/metrics`); "" disables it.
    #[arg(long, default_value = "127.0.0.1:9202")]
    metrics_listen: String,
    /// Port of the service-discovery DNS server (0 disables it). It listens only on the
    /// host's router address, which containers get as their nameserver, and answers only
    /// this host's containers.
    #[arg(long, default_value_t = 53)]
    dns_port: u16,
    /// Where other names are forwarded ("none": nowhere; default: the host's
    /// /etc/resolv.conf nameservers).
    #[arg(long, value_delimiter = ',')]
    dns_upstreams: Vec<String>,
    /// Route straight to the endpoints of hosts on this host's own router subnet (a
    /// shared L2 segment) instead of through the ToR.
    #[arg(long)]
    direct_routes: bool,
    /// MTU of endpoint interfaces.
    #[arg(long, default_value_t = 1500)]
    mtu: u32,
    /// Directory of the BGP secrets: a neighbor's `password-ref` names the file here that
    /// holds its TCP MD5 password (mode 0600; a file every user may read is refused).
    #[arg(long, default_value = netplugin::agent::bgp::BgpSecrets::DEFAULT_DIR)]
    bgp_secrets_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let host = match args.host {
        Some(h) => h,
        None => nix::unistd::gethostname()
            .context("no --host given and the hostname is unreadable")?
            .to_string_lossy()
            .into_owned(),
    };
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| PathBuf::from("/var/lib/contiv/netplugin").join(&host));
    let mut cfg = AgentConfig::new(&host, &args.netmaster, &state_dir);
    cfg.netns = args.netns;
    cfg.fwd_mode = args.fwd_mode;
    cfg.mtu = args.mtu;
    cfg.direct_routes = args.direct_routes;
    if let Some(ca) = &args.netmaster_ca {
        // Checked now, so a wrong file stops the start with its name.
        netplugin::agent::master::read_ca(ca).map_err(|e| anyhow::anyhow!("--netmaster-ca {e}"))?;
    }
    cfg.netmaster_ca = args.netmaster_ca.clone();
    cfg.token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the token file {}", p.display()))?
                .trim()
                .to_string()
                .into(),
        ),
        None => None,
    };
    if args.dns_port != 0 {
        let upstreams = if args.dns_upstreams.is_empty() {
            netplugin::dns::host_upstreams()
        } else if args.dns_upstreams.iter().any(|u| u == "none") {
            Vec::new()
        } else {
            args.dns_upstreams
                .iter()
                .map(|u| {
                    u.parse::<SocketAddr>()
                        .or_else(|_| {
                            u.parse::<std::net::IpAddr>()
                                .map(|ip| SocketAddr::new(ip, 53))
                        })
                        .with_context(|| format!("--dns-upstreams: {u:?} is not an address"))
                })
                .collect::<anyhow::Result<_>>()?
        };
        cfg.dns = Some(netplugin::agent::DnsSettings {
            port: args.dns_port,
            upstreams,
        });
    }
    cfg.bgp_secrets = netplugin::agent::bgp::BgpSecrets::new(&args.bgp_secrets_dir);
    if !args.no_docker {
        cfg.docker = Some(netplugin::agent::DockerSettings {
            socket: args.docker_socket.clone(),
            driver: args.plugin_name.clone(),
        });
    }
    let running = Agent::start(cfg).await.context("starting the agent")?;
    let agent = running.agent.clone();
    tracing::info!(
        "netplugin for host {host}: state in {}",
        state_dir.display()
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut servers = Vec::new();

    let cni = cni_server::bind_unix(&args.cni_socket)
        .with_context(|| format!("binding the CNI socket {}", args.cni_socket.display()))?;
    servers.push(tokio::spawn(cni_server::serve(
        cni,
        cni_server::router(agent.clone()),
        stopped(),
    )));
    tracing::info!("CNI socket: {}", args.cni_socket.display());
    let mut docker_socket = None;
    if !args.no_docker {
        let path = args
            .docker_plugin_dir
            .join(format!("{}.sock", args.plugin_name));
        let l = cni_server::bind_unix(&path)
            .with_context(|| format!("binding the Docker plugin socket {}", path.display()))?;
        servers.push(tokio::spawn(cni_server::serve(
            l,
            docker::router(agent.clone(), DockerConfig::default()),
            stopped(),
        )));
        tracing::info!(
            "Docker network and IPAM driver {}: {}",
            args.plugin_name,
            path.display()
        );
        docker_socket = Some(path);
    }
    if !args.metrics_listen.is_empty() {
        let addr: SocketAddr = args
            .metrics_listen
            .parse()
            .with_context(|| format!("--metrics-listen {:?}", args.metrics_listen))?;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        let l_addr = l.local_addr()?;
        let m = agent.metrics.clone();
        let a = agent.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let m = m.clone();
                let a = a.clone();
                async move {
                    let extra = a.policy_metrics().await;
                    let openmetrics = headers
                        .get(axum::http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("application/openmetrics-text"));
                    if openmetrics {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            m.render_with(&extra),
                        )
                    } else {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            netplugin::agent::metrics::classic(&m.render_with(&extra)),
                        )
                    }
                }
            }),
        );
        let shutdown = stopped();
        servers.push(tokio::spawn(async move {
            axum::serve(l, app).with_graceful_shutdown(shutdown).await
        }));
        tracing::info!("metrics: http://{}/metrics", l_addr);
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("netplugin: stopping");
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    for p in [Some(args.cni_socket.clone()), docker_socket]
        .into_iter()
        .flatten()
    {
        let _ = std::fs::remove_file(p);
    }
    drop(agent);
    running.stop().await;
    Ok(())
}
