//! TLS for the REST API: the server's certificate chain and key from PEM files (rustls
//! with ring; no OpenSSL), and a listener that completes each TLS handshake off the
//! accept loop, so a client that stalls its handshake delays no one else.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The server's certificate chain and private key, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate, then any intermediates (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key (`--tls-key`): PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// How long a client has to complete its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// How many TLS handshakes run at once; more connections wait in the kernel's backlog.
const HANDSHAKES: usize = 256;

fn pem_problem(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => format!("no {what} in the file (PEM expected)"),
        other => format!("not a readable PEM file: {other:?}"),
    }
}

/// Reads the files into a rustls server configuration; every error names the file and
/// the flag it came from.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| anyhow!("--tls-cert {cert_path}: {}", pem_problem(e, "CERTIFICATE")))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("--tls-cert {cert_path}: {}", pem_problem(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        bail!(
            "--tls-cert {cert_path}: no CERTIFICATE in the file (a PEM certificate chain is expected)"
        );
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow!("--tls-key {key_path}: {}", pem_problem(e, "PRIVATE KEY")))?;
    // ring, as reqwest's rustls in netctl and netplugin: no C toolchain for aws-lc. rustls
    // deprecates it for lacking post-quantum key exchange; classical ECDHE remains.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow!("--tls-cert {cert_path} with --tls-key {key_path}: {e} (does the key belong to the certificate?)")
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A TCP listener that hands out connections once their TLS handshake succeeded.
/// Failed handshakes (a plain-HTTP client, a client that does not trust the
/// certificate) are dropped and logged at debug level.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, cfg: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let tls = TlsAcceptor::from(cfg);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // At most HANDSHAKES at once: a peer that opens connections and never
                // finishes a handshake holds a slot for HANDSHAKE at most.
                let Ok(slot) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE, tls.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => {
                            tracing::debug!("TLS handshake with {peer} took over {HANDSHAKE:?}")
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor is gone (only when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
