//! The agent's REST client for netmaster: endpoint allocation and release
//! (`/api/v1/plugin/endpoints/`) and the host report (`/api/v1/feed/hosts/<host>/`).
//! With `--netmaster-ca`, netmaster's certificate is checked against that CA alone
//! ([`client_builder`], also used by the feed).

use std::path::Path;
use std::time::Duration;

use contiv_model::feed::HostReport;
pub use contiv_model::plugin::{EndpointAllocation, EndpointRequest};
use serde::Deserialize;

use crate::cni::service::EndpointError;

/// Failures of the client outside the endpoint calls (those answer [`EndpointError`]s,
/// which the CNI and Docker front ends understand).
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot build an HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("--netmaster-ca {0}")]
    Ca(String),
    #[error("netmaster at {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("netmaster refused the host report: HTTP {0}")]
    ReportRefused(reqwest::StatusCode),
}

/// A netmaster client.
#[derive(Debug, Clone)]
pub struct Master {
    base: String,
    token: Option<contiv_model::Secret>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

/// The CA certificates of a PEM file; errors name the file.
pub fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE in the file (a PEM CA certificate is expected)",
            path.display()
        ));
    }
    Ok(certs)
}

/// An HTTP client builder for netmaster: with `ca`, netmaster's certificate must chain
/// to it (the system's roots are not used).
pub fn client_builder(ca: Option<&Path>) -> Result<reqwest::ClientBuilder, MasterError> {
    let mut b = reqwest::Client::builder();
    if let Some(ca) = ca {
        b = b.tls_built_in_root_certs(false);
        for c in read_ca(ca).map_err(MasterError::Ca)? {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

impl Master {
    pub fn new(
        base: &str,
        token: Option<contiv_model::Secret>,
        ca: Option<&Path>,
    ) -> Result<Master, MasterError> {
        let http = client_builder(ca)?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(MasterError::Client)?;
        Ok(Master {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t.expose()),
            None => r,
        }
    }

    async fn error_of(resp: reqwest::Response) -> EndpointError {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<ApiErrorBody>(&text)
            .ok()
            .map(|b| {
                if b.message.is_empty() {
                    b.error
                } else {
                    b.message
                }
            })
            .filter(|m| !m.is_empty())
            .unwrap_or(text);
        let msg = format!("netmaster: {msg}");
        match status.as_u16() {
            400 | 422 => EndpointError::invalid(msg),
            404 => EndpointError::not_found(msg),
            409 if msg.contains("no free") || msg.contains("exhausted") => {
                EndpointError::no_free_address(msg)
            }
            409 => EndpointError::invalid(msg),
            502..=504 => EndpointError::unavailable(msg),
            _ => EndpointError::internal(msg),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> EndpointError {
        EndpointError::unavailable(format!("netmaster at {} is unreachable: {e}", self.base))
    }

    /// Creates the endpoint (idempotent for the same id, network and host).
    pub async fn create_endpoint(
        &self,
        req: &EndpointRequest,
    ) -> Result<EndpointAllocation, EndpointError> {
        let resp = self
            .req(reqwest::Method::POST, "/api/v1/plugin/endpoints/")
            .json(req)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| EndpointError::internal(format!("netmaster's answer: {e}")))
    }

    /// Releases the endpoint's address and removes it; a missing endpoint is fine.
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), EndpointError> {
        let resp = self
            .req(
                reqwest::Method::DELETE,
                &format!("/api/v1/plugin/endpoints/{id}/"),
            )
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if resp.status().is_success() || resp.status().as_u16() == 404 {
            Ok(())
        } else {
            Err(Self::error_of(resp).await)
        }
    }

    /// Publishes the host's report.
    pub async fn report(&self, host: &str, report: &HostReport) -> Result<(), MasterError> {
        let resp = self
            .req(reqwest::Method::PUT, &format!("/api/v1/feed/hosts/{host}/"))
            .json(report)
            .send()
            .await
            .map_err(|source| MasterError::Unreachable {
                base: self.base.clone(),
                source,
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(MasterError::ReportRefused(resp.status()))
        }
    }
}
