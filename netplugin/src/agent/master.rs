//! The agent's REST client for netmaster: endpoint allocation and release
//! (`/api/v1/plugin/endpoints/`) and the host report (`/api/v1/feed/hosts/<host>/`).

use std::time::Duration;

use contiv_model::Endpoint;
use contiv_model::feed::HostReport;
use serde::{Deserialize, Serialize};

use crate::cni::service::EndpointError;

/// What netplugin asks netmaster for (the body of `POST /api/v1/plugin/endpoints/`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRequest {
    #[serde(rename = "endpointID")]
    pub endpoint_id: String,
    pub tenant: String,
    pub network: String,
    pub group: String,
    pub host: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub container_name: String,
    pub preferred_ip: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// netmaster's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAllocation {
    pub endpoint: Endpoint,
    /// The address with the network's prefix length (`20.1.1.2/24`).
    pub address: String,
    pub gateway: String,
    #[serde(default)]
    pub pkt_tag: i64,
}

/// A netmaster client.
#[derive(Debug, Clone)]
pub struct Master {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl Master {
    pub fn new(base: &str, token: Option<String>) -> Result<Master, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Master {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
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
    pub async fn report(&self, host: &str, report: &HostReport) -> Result<(), String> {
        let resp = self
            .req(reqwest::Method::PUT, &format!("/api/v1/feed/hosts/{host}/"))
            .json(report)
            .send()
            .await
            .map_err(|e| format!("netmaster at {}: {e}", self.base))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "netmaster refused the host report: HTTP {}",
                resp.status()
            ))
        }
    }
}
