//! The REST client and netctl's failure kinds, each with its exit code (Contiv's:
//! 1 usage, 2 request could not be made, 3 netmaster refused, 4 local I/O).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A netctl failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot reach netmaster at {url}: {why}\n(is netmaster running? set --netmaster or NETMASTER)"
    )]
    Request { url: String, why: String },
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 1,
            Error::Request { .. } => 2,
            Error::Api(_) => 3,
            Error::Io(_) => 4,
        }
    }
}

/// netmaster's REST API.
#[derive(Debug)]
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
    token: Option<contiv_model::Secret>,
}

impl Client {
    /// A client of netmaster at `base`; with `ca`, netmaster's certificate must chain to
    /// the CA certificates in that PEM file (and the system's roots are not used).
    pub fn new(
        base: &str,
        token: Option<contiv_model::Secret>,
        ca: Option<&std::path::Path>,
    ) -> Result<Client, Error> {
        let mut b = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .map_err(|e| Error::Io(format!("--ca-file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Io(format!(
                    "--ca-file {}: not a PEM certificate file: {e}",
                    ca.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(Error::Io(format!(
                    "--ca-file {}: no CERTIFICATE in the file (a PEM CA certificate is expected)",
                    ca.display()
                )));
            }
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| Error::Io(format!("HTTP client: {e}")))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            token,
        })
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<Value>, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().map_err(|e| Error::Request {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        let status = resp.status();
        let text = resp.text().map_err(|e| Error::Request {
            url: url.clone(),
            why: e.to_string(),
        })?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::Api(format!(
                    "netmaster answered {url} with something that is not JSON: {e}"
                ))
            });
        }
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.trim().to_string());
        Err(Error::Api(format!(
            "netmaster refused ({}): {msg}",
            status.as_u16()
        )))
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let v = self
            .send(reqwest::Method::GET, path, None)?
            .unwrap_or(Value::Null);
        serde_json::from_value(v)
            .map_err(|e| Error::Api(format!("unexpected answer from {path}: {e}")))
    }

    pub fn get_value(&self, path: &str) -> Result<Value, Error> {
        Ok(self
            .send(reqwest::Method::GET, path, None)?
            .unwrap_or(Value::Null))
    }

    pub fn post<T: Serialize>(&self, path: &str, body: &T) -> Result<Value, Error> {
        let b = serde_json::to_vec(body).map_err(|e| Error::Io(e.to_string()))?;
        Ok(self
            .send(reqwest::Method::POST, path, Some(b))?
            .unwrap_or(Value::Null))
    }

    pub fn delete(&self, path: &str) -> Result<(), Error> {
        self.send(reqwest::Method::DELETE, path, None).map(|_| ())
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut s: &dyn std::error::Error = e;
    while let Some(src) = s.source() {
        s = src;
    }
    s.to_string()
}
