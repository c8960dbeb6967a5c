//! `netmaster`: Contiv's intent server. With no flags it keeps its state in an embedded
//! store under `/var/lib/contiv` and listens on 127.0.0.1:9999; `--etcd-endpoints`
//! moves the state to an etcd cluster shared with other netmasters, one of which leads.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use netmaster::server::{self, Backend, Config};
use netmaster::store::{ClientCert, EtcdAccess, EtcdUser};

#[derive(Debug, Parser)]
#[command(name = "netmaster", version, about = "Contiv network intent server")]
struct Args {
    /// Address and port of the REST API.
    #[arg(long, default_value = "127.0.0.1:9999", env = "NETMASTER_LISTEN")]
    listen: SocketAddr,
    /// Directory of the embedded store (ignored with --etcd-endpoints).
    #[arg(long, default_value = "/var/lib/contiv")]
    data_dir: PathBuf,
    /// etcd endpoints, comma separated (host:port or URLs); the state then lives in etcd.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// PEM file of the CA that signs etcd's server certificates; endpoints are then
    /// https:// (a bare host:port included). https:// endpoints need it: the system's
    /// public roots are not trusted for etcd.
    #[arg(long, value_name = "FILE")]
    etcd_ca: Option<PathBuf>,
    /// PEM file of a client certificate for etcd (--client-cert-auth); needs --etcd-key
    /// and --etcd-ca.
    #[arg(long, value_name = "FILE", requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// etcd user (etcd authentication); the password is read from --etcd-password-file.
    #[arg(long, value_name = "NAME", requires = "etcd_password_file")]
    etcd_user: Option<String>,
    /// File whose first line is the etcd user's password.
    #[arg(long, value_name = "FILE", requires = "etcd_user")]
    etcd_password_file: Option<PathBuf>,
    /// Key prefix in etcd.
    #[arg(long, default_value = "/contiv.io")]
    etcd_prefix: String,
    /// URL other netmasters send writes to (default: http://<listen>, https://<listen>
    /// with --tls-cert).
    #[arg(long)]
    advertise_url: Option<String>,
    /// File holding the admin token. With one, every request needs a credential (the
    /// admin token or a host's); needed unless listening on loopback.
    #[arg(long, env = "NETMASTER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Accept any request without a credential on a non-loopback address.
    #[arg(long)]
    insecure: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", env = "NETMASTER_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", env = "NETMASTER_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA certificate (PEM) other netmasters' certificates are checked against when
    /// this netmaster talks to them.
    #[arg(long)]
    peer_ca: Option<PathBuf>,
    /// Leader lease time-to-live in seconds (how long a dead leader blocks writes).
    #[arg(long, default_value_t = 5)]
    election_ttl: i64,
    /// Collect the endpoints of a host whose netplugin has not reported for this many
    /// seconds (0: only by hand, with netctl endpoint collect).
    #[arg(long, default_value_t = 600)]
    endpoint_gc_after: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the token file {}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let etcd_flags = args.etcd_ca.is_some() || args.etcd_cert.is_some() || args.etcd_user.is_some();
    if args.etcd_endpoints.is_empty() && etcd_flags {
        anyhow::bail!("--etcd-ca, --etcd-cert and --etcd-user need --etcd-endpoints");
    }
    let backend = if args.etcd_endpoints.is_empty() {
        Backend::Embedded {
            data_dir: args.data_dir.clone(),
        }
    } else {
        let user = match (&args.etcd_user, &args.etcd_password_file) {
            (Some(name), Some(file)) => Some(EtcdUser::from_password_file(name, file)?),
            _ => None,
        };
        let client_cert = match (&args.etcd_cert, &args.etcd_key) {
            (Some(cert), Some(key)) => Some(ClientCert {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Backend::Etcd {
            endpoints: args.etcd_endpoints.clone(),
            prefix: args.etcd_prefix.clone(),
            access: EtcdAccess {
                ca: args.etcd_ca.clone(),
                client_cert,
                user,
            },
        }
    };
    let cfg = Config {
        listen: args.listen,
        backend,
        advertise_url: args.advertise_url.clone(),
        token: token.map(contiv_model::Secret::from),
        insecure: args.insecure,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(netmaster::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        peer_ca: args.peer_ca.clone(),
        election_ttl: args.election_ttl,
        endpoint_gc_after: (args.endpoint_gc_after > 0)
            .then(|| std::time::Duration::from_secs(args.endpoint_gc_after)),
    };
    let running = server::start(cfg).await?;
    tracing::info!("netmaster serving on {}", running.url());
    shutdown_signal().await;
    tracing::info!("netmaster stopping");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
