//! How netmaster reaches etcd: plain or TLS endpoints, the CA that signs etcd's server
//! certificate, a client certificate, a user and password.
//!
//! [`EtcdAccess::urls`] is the pure part: it turns the endpoints as given into URLs and
//! refuses a combination that cannot work or would leak a credential (TLS files with an
//! `http://` endpoint, an `https://` endpoint without `--etcd-ca`, a password sent in
//! clear off loopback). [`EtcdAccess::connect_options`] reads the files, naming the file
//! in every error. The store and the leader election share the one client built from
//! these options, so they always reach etcd the same way.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use contiv_model::Secret;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Connect timeout per endpoint (TCP and TLS handshake).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Timeout of every request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Credentials and trust for etcd. The default is plain `http://` without credentials.
#[derive(Debug, Clone, Default)]
pub struct EtcdAccess {
    /// PEM file of the CA certificate(s) that sign etcd's server certificates; needed for
    /// `https://` endpoints (there is no fallback to the system's public roots).
    pub ca: Option<PathBuf>,
    /// A client certificate for etcd's `--client-cert-auth`.
    pub client_cert: Option<ClientCert>,
    /// A user for etcd's authentication (`etcdctl auth enable`).
    pub user: Option<EtcdUser>,
}

/// PEM files of a client certificate (with its chain) and its private key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An etcd user. The password never shows in `Debug` or logs.
#[derive(Debug, Clone)]
pub struct EtcdUser {
    pub name: String,
    pub password: Secret,
}

impl EtcdUser {
    /// The user `name` with the password in the first line of `path` (surrounding
    /// whitespace removed).
    pub fn from_password_file(name: &str, path: &Path) -> Result<EtcdUser, AccessError> {
        if name.is_empty() {
            return Err(AccessError::Flags("--etcd-user is empty".into()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| AccessError::Read {
            what: "etcd password file",
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        let password = text.lines().next().unwrap_or("").trim();
        if password.is_empty() {
            return Err(AccessError::BadFile {
                what: "etcd password file",
                path: path.to_path_buf(),
                problem: "it is empty".into(),
            });
        }
        Ok(EtcdUser {
            name: name.to_string(),
            password: Secret::new(password),
        })
    }
}

/// Why the etcd access flags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("reading the {what} {}: {error}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("the {what} {}: {problem}", path.display())]
    BadFile {
        what: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("etcd endpoint {endpoint}: {problem}")]
    Endpoint { endpoint: String, problem: String },
    #[error("{0}")]
    Flags(String),
}

impl EtcdAccess {
    /// Whether the endpoints are reached over TLS.
    pub fn tls(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some()
    }

    /// The endpoints as URLs. A bare `host:port` is `https://` when TLS is configured
    /// (`--etcd-ca`), `http://` otherwise; an explicit scheme must agree with the TLS
    /// flags, and a password is sent in clear to a loopback etcd only.
    pub fn urls(&self, endpoints: &[String]) -> Result<Vec<String>, AccessError> {
        if endpoints.is_empty() {
            return Err(AccessError::Flags("no etcd endpoint".into()));
        }
        if self.client_cert.is_some() && self.ca.is_none() {
            return Err(AccessError::Flags(
                "--etcd-cert/--etcd-key need --etcd-ca (the CA that signs etcd's server certificate)"
                    .into(),
            ));
        }
        let tls = self.tls();
        endpoints
            .iter()
            .map(|e| {
                let bad = |problem: String| AccessError::Endpoint {
                    endpoint: e.clone(),
                    problem,
                };
                let url = if let Some(rest) = e.strip_prefix("https://") {
                    if !tls {
                        return Err(bad(
                            "https:// needs --etcd-ca, the CA that signs etcd's server certificate (the system's public roots are not trusted for etcd)"
                                .into(),
                        ));
                    }
                    format!("https://{rest}")
                } else if let Some(rest) = e.strip_prefix("http://") {
                    if tls {
                        return Err(bad(
                            "plain http:// with --etcd-ca/--etcd-cert: use https://".into(),
                        ));
                    }
                    format!("http://{rest}")
                } else if e.contains("://") {
                    return Err(bad("only http:// and https:// are supported".into()));
                } else if tls {
                    format!("https://{e}")
                } else {
                    format!("http://{e}")
                };
                if url.starts_with("http://") && self.user.is_some() && !loopback_url(&url) {
                    return Err(bad(
                        "--etcd-user would send the password in clear off loopback: use https:// with --etcd-ca"
                            .into(),
                    ));
                }
                Ok(url)
            })
            .collect()
    }

    /// The client options: timeouts, TLS (CA and client certificate read and checked
    /// here) and the user. Never log them: they hold the password.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, AccessError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        if let Some(tls) = self.tls_options()? {
            opts = opts.with_tls(tls);
        }
        if let Some(u) = &self.user {
            // etcd's tokens expire (--auth-token-ttl): authenticate again when refused.
            opts = opts
                .with_user(u.name.clone(), u.password.expose())
                .with_auto_token_refresh(true);
        }
        Ok(opts)
    }

    pub(crate) fn tls_options(&self) -> Result<Option<TlsOptions>, AccessError> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let ca_pem = read_certs("etcd CA file", ca)?;
        let mut tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .timeout(CONNECT_TIMEOUT);
        if let Some(c) = &self.client_cert {
            let cert = read_certs("etcd client certificate", &c.cert)?;
            let key = read_key("etcd client key", &c.key)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Ok(Some(tls))
    }
}

impl EtcdAccess {
    /// The same trust and client certificate as [`Self::tls_options`], for our own
    /// handshake in [`Self::tls_refusal`].
    fn rustls_config(&self) -> Result<Option<rustls::ClientConfig>, AccessError> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let bad = |what, path: &Path, problem: String| AccessError::BadFile {
            what,
            path: path.to_path_buf(),
            problem,
        };
        let mut roots = rustls::RootCertStore::empty();
        let ca_pem = read_certs("etcd CA file", ca)?;
        for c in CertificateDer::pem_slice_iter(&ca_pem) {
            let c = c.map_err(|e| bad("etcd CA file", ca, pem_problem(&e)))?;
            roots
                .add(c)
                .map_err(|e| bad("etcd CA file", ca, format!("not a usable CA ({e})")))?;
        }
        // The provider etcd-client's `tls` feature gives tonic, so both handshakes offer
        // the same algorithms (rustls marks ring's as lacking post-quantum key exchange).
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| AccessError::Flags(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some(c) => {
                let pem = read_certs("etcd client certificate", &c.cert)?;
                let chain = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("etcd client certificate", &c.cert, pem_problem(&e)))?;
                let key = PrivateKeyDer::from_pem_slice(&read_key("etcd client key", &c.key)?)
                    .map_err(|e| bad("etcd client key", &c.key, pem_problem(&e)))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    bad(
                        "etcd client key",
                        &c.key,
                        format!("does not fit the client certificate ({e})"),
                    )
                })?
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(config))
    }

    /// Shakes hands with the `https://` endpoint `url` as the etcd client would, and
    /// waits a moment for etcd's verdict on our certificate (with TLS 1.3 it comes after
    /// the handshake). Returns why the handshake was refused, by etcd or by us, or `None`
    /// when it was accepted or could not be tried.
    pub(crate) async fn tls_refusal(&self, url: &str) -> Option<String> {
        let config = self.rustls_config().ok()??;
        let hostport = url.strip_prefix("https://")?.split('/').next()?;
        let host = host_of(hostport);
        let name = ServerName::try_from(host.to_string()).ok()?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(hostport))
            .await
            .ok()?
            .ok()?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls =
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
                Err(_) => return Some("the TLS handshake timed out".into()),
                Ok(Err(e)) => return Some(explain_tls(&e)),
                Ok(Ok(s)) => s,
            };
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(1), tls.read(&mut byte)).await {
            Ok(Err(e)) => Some(explain_tls(&e)),
            _ => None,
        }
    }
}

/// What a failed TLS exchange with etcd means, in the terms of netmaster's flags.
fn explain_tls(e: &std::io::Error) -> String {
    use rustls::AlertDescription as A;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return format!("TLS with etcd failed: {e}");
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => format!(
            "TLS handshake refused by netmaster: etcd's server certificate is not acceptable ({c:?}); --etcd-ca must be the CA that signed it and the certificate must name the endpoint's host"
        ),
        rustls::Error::AlertReceived(
            a @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::HandshakeFailure
            | A::AccessDenied),
        ) => format!(
            "TLS handshake refused by etcd ({a:?}): etcd wants a client certificate signed by a CA it trusts (--etcd-cert/--etcd-key)"
        ),
        other => format!("TLS with etcd failed: {other}"),
    }
}

fn host_of(hostport: &str) -> &str {
    match hostport.strip_prefix('[') {
        Some(h) => h.split(']').next().unwrap_or(""),
        None => hostport.rsplit_once(':').map_or(hostport, |(h, _)| h),
    }
}

/// Whether the etcd client would connect to a loopback address: the host as the
/// client's own URI parser (`http::Uri`, which tonic uses) reads it, so user info such
/// as `http://[::1]@etcd.example:2379` counts as the host it really names. An endpoint
/// that does not parse is not loopback.
fn loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<axum::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, AccessError> {
    std::fs::read(path).map_err(|e| AccessError::Read {
        what,
        path: path.to_path_buf(),
        error: e.to_string(),
    })
}

/// Reads a PEM file that must hold at least one certificate, each of which parses.
fn read_certs(what: &'static str, path: &Path) -> Result<Vec<u8>, AccessError> {
    let pem = read(what, path)?;
    let bad = |problem: String| AccessError::BadFile {
        what,
        path: path.to_path_buf(),
        problem,
    };
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(&pem) {
        c.map_err(|e| bad(pem_problem(&e)))?;
        n += 1;
    }
    if n == 0 {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(pem)
}

/// Reads a PEM file that must hold a private key.
fn read_key(what: &'static str, path: &Path) -> Result<Vec<u8>, AccessError> {
    let pem = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| AccessError::BadFile {
        what,
        path: path.to_path_buf(),
        problem: match e {
            pem::Error::NoItemsFound => "no PEM private key in it".into(),
            e => pem_problem(&e),
        },
    })?;
    Ok(pem)
}

fn pem_problem(e: &pem::Error) -> String {
    format!("not valid PEM ({e})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn user() -> Option<EtcdUser> {
        Some(EtcdUser {
            name: "root".into(),
            password: Secret::new("pw"),
        })
    }

    fn with_ca() -> EtcdAccess {
        EtcdAccess {
            ca: Some("/ca.pem".into()),
            ..EtcdAccess::default()
        }
    }

    #[test]
    fn bare_endpoints_follow_the_tls_flags() {
        let plain = EtcdAccess::default();
        assert_eq!(
            plain.urls(&eps(&["127.0.0.1:2379"])).unwrap(),
            ["http://127.0.0.1:2379"]
        );
        assert_eq!(
            with_ca().urls(&eps(&["etcd1:2379"])).unwrap(),
            ["https://etcd1:2379"]
        );
    }

    #[test]
    fn https_without_a_ca_is_refused() {
        let e = EtcdAccess::default()
            .urls(&eps(&["https://etcd1:2379"]))
            .unwrap_err();
        assert!(e.to_string().contains("needs --etcd-ca"), "{e}");
    }

    #[test]
    fn http_with_tls_flags_is_refused() {
        let e = with_ca().urls(&eps(&["http://etcd1:2379"])).unwrap_err();
        assert!(e.to_string().contains("use https://"), "{e}");
    }

    #[test]
    fn a_client_certificate_needs_a_ca() {
        let a = EtcdAccess {
            client_cert: Some(ClientCert {
                cert: "/c".into(),
                key: "/k".into(),
            }),
            ..EtcdAccess::default()
        };
        let e = a.urls(&eps(&["etcd1:2379"])).unwrap_err();
        assert!(e.to_string().contains("need --etcd-ca"), "{e}");
    }

    #[test]
    fn a_password_goes_in_clear_to_loopback_only() {
        let a = EtcdAccess {
            user: user(),
            ..EtcdAccess::default()
        };
        for ok in [
            "127.0.0.1:2379",
            "http://localhost:2379",
            "http://[::1]:2379",
        ] {
            a.urls(&eps(&[ok])).unwrap();
        }
        let e = a.urls(&eps(&["10.0.0.5:2379"])).unwrap_err();
        assert!(e.to_string().contains("in clear"), "{e}");
        // User info that looks like loopback: the client connects to the host after '@'.
        let uri: axum::http::Uri = "http://[::1]@10.0.0.5:2379".parse().unwrap();
        assert_eq!(uri.host(), Some("10.0.0.5"));
        for far in [
            "http://[::1]@10.0.0.5:2379",
            "[::1]@10.0.0.5:2379",
            "http://127.0.0.1@10.0.0.5:2379",
            "http://localhost:2379@10.0.0.5:2379",
        ] {
            let e = a.urls(&eps(&[far])).unwrap_err();
            assert!(e.to_string().contains("in clear"), "{far}: {e}");
        }
        let tls = EtcdAccess {
            user: user(),
            ..with_ca()
        };
        tls.urls(&eps(&["10.0.0.5:2379"])).unwrap();
    }

    #[test]
    fn other_schemes_are_refused() {
        let e = EtcdAccess::default()
            .urls(&eps(&["unix:///run/etcd.sock"]))
            .unwrap_err();
        assert!(e.to_string().contains("only http:// and https://"), "{e}");
    }

    #[test]
    fn the_password_never_prints() {
        let a = EtcdAccess {
            user: Some(EtcdUser {
                name: "root".into(),
                password: Secret::new("hunter2-secret"),
            }),
            ..EtcdAccess::default()
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn unreadable_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let a = EtcdAccess {
            ca: Some(missing.clone()),
            ..EtcdAccess::default()
        };
        let e = a.connect_options().unwrap_err().to_string();
        assert!(e.contains("etcd CA file") && e.contains("nope.pem"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let a = EtcdAccess {
            ca: Some(garbage),
            ..EtcdAccess::default()
        };
        let e = a.connect_options().unwrap_err().to_string();
        assert!(
            e.contains("garbage.pem") && e.contains("no PEM certificate"),
            "{e}"
        );

        let pw = dir.path().join("empty-password");
        std::fs::write(&pw, "\n").unwrap();
        let e = EtcdUser::from_password_file("root", &pw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty-password") && e.contains("empty"), "{e}");
        let e = EtcdUser::from_password_file("root", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("etcd password file") && e.contains("nope.pem"),
            "{e}"
        );
    }
}
