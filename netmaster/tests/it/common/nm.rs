//! A netmaster on the embedded store for REST tests, with a small JSON client: every
//! call returns the status and the body as JSON (`Null` when there is none).

use std::net::SocketAddr;

use netmaster::server::{self, Config};
use serde_json::{Value, json};

pub struct Nm {
    pub url: String,
    pub http: reqwest::Client,
    /// The bearer token writes send, when the netmaster requires one.
    pub token: Option<String>,
    running: Option<server::Running>,
    _dir: tempfile::TempDir,
}

impl Nm {
    pub async fn start() -> Nm {
        Nm::start_with(None).await
    }

    /// A netmaster that requires `token` for changes.
    pub async fn start_with(token: Option<&str>) -> Nm {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut cfg = Config::embedded(addr, dir.path().to_path_buf());
        cfg.token = token.map(contiv_model::Secret::new);
        let running = server::start(cfg).await.unwrap();
        Nm {
            url: running.url(),
            http: reqwest::Client::new(),
            token: token.map(str::to_string),
            running: Some(running),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await;
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Creates an object, asserting that it was.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    pub async fn set_mode(&self, mode: &str) -> (u16, Value) {
        let (_, mut g) = self.get("/api/v1/globals/global/").await;
        g["fwdMode"] = json!(mode);
        self.post("/api/v1/globals/global/", g).await
    }

    /// How many objects of a kind exist.
    pub async fn count(&self, plural: &str) -> usize {
        let (s, v) = self.get(&format!("/api/v1/{plural}/")).await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().len()
    }

    /// The current store revision, as `/info` tells it.
    pub async fn revision(&self) -> i64 {
        self.get("/info").await.1["revision"].as_i64().unwrap()
    }
}

/// A network of `tenant` (VXLAN, automatic tag).
pub fn net(tenant: &str, name: &str, subnet: &str) -> Value {
    json!({"tenantName": tenant, "networkName": name, "encap": "vxlan", "subnet": subnet})
}
