//! netmaster over TLS with an admin token and per-host credentials, attacked: plain HTTP
//! and clients that trust another CA get nowhere, reads without a credential are 401,
//! host A's credential cannot report as B, create or delete B's endpoints, collect B,
//! write intent or mint credentials (403) while the admin can, a deleted or replaced
//! credential stops working at the next request (and ends its feed), and no token or
//! hash appears in any answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use netmaster::server::{self, Config, Running};
use netmaster::tls::TlsFiles;
use serde_json::{Value, json};

const ADMIN: &str = "admin-s3cret-token";

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "netmaster test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let srv_key = KeyPair::generate().unwrap();
        let srv = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&srv_key, &ca)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), srv.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), srv_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub(crate) fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server.key"),
        }
    }

    /// A client that trusts this CA alone.
    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.ca()).unwrap();
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }
}

/// A TLS netmaster with the admin token, on loopback.
struct Secure {
    nm: Running,
    pki: Pki,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

async fn secure() -> Secure {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = Config::embedded(addr, data.path().to_path_buf());
    cfg.token = Some(ADMIN.into());
    cfg.tls = Some(pki.files());
    let nm = server::start(cfg).await.unwrap();
    assert!(nm.url().starts_with("https://"), "{}", nm.url());
    let http = pki.client();
    Secure {
        nm,
        pki,
        http,
        _data: data,
    }
}

impl Secure {
    /// A call with `token` (none: no Authorization header); the status and the body.
    async fn call(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.nm.url()));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.text().await.unwrap())
    }

    /// The first line of the feed (a snapshot), or the status when refused.
    async fn feed_first_line(&self, token: Option<&str>) -> (u16, String) {
        let mut r = self.http.get(format!("{}/api/v1/feed/", self.nm.url()));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        if s != 200 {
            return (s, r.text().await.unwrap());
        }
        let mut body = r.bytes_stream();
        let mut got = Vec::new();
        while !got.contains(&b'\n') {
            got.extend_from_slice(&body.next().await.unwrap().unwrap());
        }
        let line = String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap()
            .to_string();
        (s, line)
    }

    /// Makes a credential for `host` as the admin; its token.
    async fn credential(&self, host: &str) -> String {
        let (s, b) = self
            .call(
                Some(ADMIN),
                reqwest::Method::POST,
                &format!("/api/v1/credentials/hosts/{host}/"),
                None,
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let c: contiv_model::credential::HostCredential = serde_json::from_str(&b).unwrap();
        assert_eq!(c.host, host);
        c.token.expose().to_string()
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (s, b) = self.call(Some(ADMIN), method, path, body).await;
        assert!((200..300).contains(&s), "{path}: {s} {b}");
        serde_json::from_str(&b).unwrap_or(Value::Null)
    }

    /// Routing mode and a network, as the admin.
    async fn network(&self) {
        let mut g = self
            .admin(reqwest::Method::GET, "/api/v1/globals/global/", None)
            .await;
        g["fwdMode"] = json!("routing");
        self.admin(reqwest::Method::POST, "/api/v1/globals/global/", Some(g))
            .await;
        self.admin(
            reqwest::Method::POST,
            "/api/v1/networks/default:contiv-net/",
            Some(json!({"tenantName": "default", "networkName": "contiv-net",
                        "encap": "vxlan", "subnet": "20.1.1.0/24", "gateway": "20.1.1.254"})),
        )
        .await;
    }
}

fn endpoint(id: &str, host: &str) -> Value {
    json!({"endpointID": id, "tenant": "default", "network": "contiv-net", "host": host})
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut s: &dyn std::error::Error = e;
    let mut all = s.to_string();
    while let Some(src) = s.source() {
        s = src;
        all = format!("{all}: {s}");
    }
    all
}

#[tokio::test]
async fn plain_http_to_a_tls_netmaster_gets_no_answer() {
    let s = secure().await;
    let plain = format!("http://{}/version", s.nm.addr);
    let r = reqwest::Client::new().get(&plain).send().await;
    assert!(
        r.is_err(),
        "plain HTTP was answered: {:?}",
        r.map(|r| r.status())
    );
    // Nor with the admin token, which would then have crossed the network in clear:
    // the server never answers, so no request is served.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/tenants/t1/", s.nm.addr))
        .bearer_auth(ADMIN)
        .body(r#"{"tenantName":"t1"}"#)
        .send()
        .await;
    assert!(r.is_err());
    let (st, _) = s
        .call(
            Some(ADMIN),
            reqwest::Method::GET,
            "/api/v1/tenants/t1/",
            None,
        )
        .await;
    assert_eq!(st, 404, "the plain request must not have been served");
    // The same netmaster over HTTPS with its CA answers.
    let (st, b) = s.call(None, reqwest::Method::GET, "/version", None).await;
    assert_eq!(st, 200, "{b}");
    s.nm.stop().await;
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let s = secure().await;
    let other = Pki::new();
    let url = format!("{}/version", s.nm.url());
    let e = other.client().get(&url).send().await.unwrap_err();
    let why = root_cause(&e);
    assert!(
        why.contains("certificate") || why.contains("UnknownIssuer"),
        "{why}"
    );
    // A client with no CA at all (no system roots are built in) fails the same way.
    let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(root_cause(&e).contains("certificate"), "{}", root_cause(&e));
    // The right CA, under a name the certificate does not have, fails too.
    let wrong_name = format!("https://netmaster.invalid:{}/version", s.nm.addr.port());
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(s.pki.ca()).unwrap()).unwrap(),
        )
        .resolve("netmaster.invalid", s.nm.addr)
        .build()
        .unwrap();
    let e = c.get(&wrong_name).send().await.unwrap_err();
    assert!(root_cause(&e).contains("certificate"), "{}", root_cause(&e));
    s.nm.stop().await;
}

#[tokio::test]
async fn every_read_needs_a_credential() {
    let s = secure().await;
    s.network().await;
    for path in [
        "/api/v1/networks/",
        "/api/v1/networks/default:contiv-net/",
        "/api/v1/inspect/networks/default:contiv-net/",
        "/api/v1/endpoints/",
        "/api/v1/feed/hosts/",
        "/api/v1/credentials/hosts/",
        "/api/v1/policy-explain/?from=a&to=b",
        "/info",
    ] {
        let (st, b) = s.call(None, reqwest::Method::GET, path, None).await;
        assert_eq!(st, 401, "{path} without a credential: {b}");
        let (st, b) = s
            .call(Some("wrong"), reqwest::Method::GET, path, None)
            .await;
        assert_eq!(st, 401, "{path} with a wrong token: {b}");
    }
    let (st, b) = s.feed_first_line(None).await;
    assert_eq!(st, 401, "the feed without a credential: {b}");
    let (st, line) = s.feed_first_line(Some(ADMIN)).await;
    assert_eq!(st, 200);
    assert!(line.contains("snapshot"), "{line}");
    for path in ["/api/v1/networks/", "/info", "/api/v1/feed/hosts/"] {
        let (st, b) = s.call(Some(ADMIN), reqwest::Method::GET, path, None).await;
        assert_eq!(st, 200, "{path} with the admin token: {b}");
    }
    // What stays open: the version, the API description, and /metrics from loopback
    // (this client is on loopback).
    for path in ["/version", "/api/v1/openapi.json", "/metrics"] {
        let (st, b) = s.call(None, reqwest::Method::GET, path, None).await;
        assert_eq!(st, 200, "{path}: {b}");
    }
    s.nm.stop().await;
}

#[tokio::test]
async fn a_host_credential_acts_only_for_its_host() {
    let s = secure().await;
    s.network().await;
    let a = s.credential("host-a").await;
    let _b = s.credential("host-b").await;
    let a = Some(a.as_str());
    use reqwest::Method as M;

    // Its own report and endpoint: yes.
    let (st, b) = s
        .call(a, M::PUT, "/api/v1/feed/hosts/host-a/", Some(json!({})))
        .await;
    assert_eq!(st, 204, "{b}");
    let (st, b) = s
        .call(
            a,
            M::POST,
            "/api/v1/plugin/endpoints/",
            Some(endpoint("ep-a", "host-a")),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, line) = s.feed_first_line(a).await;
    assert_eq!(st, 200, "the host reads the feed");
    assert!(line.contains("contiv-net"), "{line}");

    // Report as B.
    let (st, b) = s
        .call(a, M::PUT, "/api/v1/feed/hosts/host-b/", Some(json!({})))
        .await;
    assert_eq!(st, 403, "{b}");
    assert!(
        b.contains("host-a"),
        "the refusal says whose credential: {b}"
    );
    // Create an endpoint homed on B.
    let (st, b) = s
        .call(
            a,
            M::POST,
            "/api/v1/plugin/endpoints/",
            Some(endpoint("ep-x", "host-b")),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    // Delete B's endpoint (made by the admin).
    s.admin(
        M::POST,
        "/api/v1/plugin/endpoints/",
        Some(endpoint("ep-b", "host-b")),
    )
    .await;
    let (st, b) = s
        .call(a, M::DELETE, "/api/v1/plugin/endpoints/ep-b/", None)
        .await;
    assert_eq!(st, 403, "{b}");
    // Collect B (or even itself: collecting is the admin's).
    for h in ["host-b", "host-a"] {
        let (st, b) = s
            .call(
                a,
                M::POST,
                &format!("/api/v1/plugin/hosts/{h}/collect"),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 403, "collect {h}: {b}");
    }
    // Write or read intent, read other hosts' reports, mint credentials.
    let (st, b) = s
        .call(
            a,
            M::POST,
            "/api/v1/tenants/evil/",
            Some(json!({"tenantName": "evil"})),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    let (st, b) = s
        .call(a, M::DELETE, "/api/v1/networks/default:contiv-net/", None)
        .await;
    assert_eq!(st, 403, "{b}");
    for path in [
        "/api/v1/networks/",
        "/api/v1/feed/hosts/",
        "/info",
        "/api/v1/credentials/hosts/",
    ] {
        let (st, b) = s.call(a, M::GET, path, None).await;
        assert_eq!(st, 403, "{path}: {b}");
    }
    let (st, b) = s
        .call(a, M::POST, "/api/v1/credentials/hosts/host-b/", None)
        .await;
    assert_eq!(st, 403, "{b}");
    let (st, b) = s
        .call(a, M::DELETE, "/api/v1/credentials/hosts/host-b/", None)
        .await;
    assert_eq!(st, 403, "{b}");

    // Nothing of that happened.
    let eps = s.admin(M::GET, "/api/v1/endpoints/", None).await;
    let ids: Vec<&str> = eps
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpointID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ep-a", "ep-b"], "{eps}");
    let reports = s.admin(M::GET, "/api/v1/feed/hosts/", None).await;
    assert!(reports.get("host-b").is_none(), "{reports}");
    assert_eq!(
        s.admin(M::GET, "/api/v1/credentials/hosts/", None).await,
        json!(["host-a", "host-b"])
    );
    let (st, _) = s
        .call(Some(ADMIN), M::GET, "/api/v1/tenants/evil/", None)
        .await;
    assert_eq!(st, 404);

    // Its own endpoint it may delete; the admin may do all of the above.
    let (st, b) = s
        .call(a, M::DELETE, "/api/v1/plugin/endpoints/ep-a/", None)
        .await;
    assert_eq!(st, 204, "{b}");
    s.admin(M::PUT, "/api/v1/feed/hosts/host-b/", Some(json!({})))
        .await;
    let v = s
        .admin(
            M::POST,
            "/api/v1/plugin/hosts/host-b/collect",
            Some(json!({})),
        )
        .await;
    assert_eq!(v["collected"], 1, "{v}");
    s.nm.stop().await;
}

#[tokio::test]
async fn a_deleted_or_replaced_credential_stops_at_once() {
    let s = secure().await;
    let old = s.credential("h1").await;
    let report = |t: String| {
        let s = &s;
        async move {
            s.call(
                Some(&t),
                reqwest::Method::PUT,
                "/api/v1/feed/hosts/h1/",
                Some(json!({})),
            )
            .await
            .0
        }
    };
    assert_eq!(report(old.clone()).await, 204);
    // Replacing it (rotation) revokes the old token.
    let new = s.credential("h1").await;
    assert_ne!(old, new);
    assert_eq!(report(old.clone()).await, 401);
    assert_eq!(report(new.clone()).await, 204);

    // A feed open with it ends once the credential is deleted.
    let r = s
        .http
        .get(format!("{}/api/v1/feed/", s.nm.url()))
        .bearer_auth(&new)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, b) = s
        .call(
            Some(ADMIN),
            reqwest::Method::DELETE,
            "/api/v1/credentials/hosts/h1/",
            None,
        )
        .await;
    assert_eq!(st, 204, "{b}");
    assert_eq!(
        report(new.clone()).await,
        401,
        "the next request is refused"
    );
    let mut body = r.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked host's feed did not end");
    let (st, _) = s
        .call(
            Some(ADMIN),
            reqwest::Method::DELETE,
            "/api/v1/credentials/hosts/h1/",
            None,
        )
        .await;
    assert_eq!(st, 404, "deleting twice says there is none");
    s.nm.stop().await;
}

#[tokio::test]
async fn no_token_or_hash_appears_in_any_answer() {
    let s = secure().await;
    s.network().await;
    let t = s.credential("h1").await;
    let secret = t.rsplit_once('.').unwrap().1.to_string();
    let digest = netmaster::credentials::digest(&t);
    // The store holds the hash only.
    let kv = {
        use netmaster::store::Store;
        s.nm.engine
            .store()
            .get("/auth/hosts/h1")
            .await
            .unwrap()
            .unwrap()
    };
    let stored = String::from_utf8_lossy(&kv.value).to_string();
    assert!(
        stored.contains(&digest) && !stored.contains(&secret),
        "{stored}"
    );

    s.call(
        Some(&t),
        reqwest::Method::PUT,
        "/api/v1/feed/hosts/h1/",
        Some(json!({})),
    )
    .await;
    let mut answers = Vec::new();
    for path in [
        "/api/v1/credentials/hosts/",
        "/api/v1/feed/hosts/",
        "/api/v1/networks/",
        "/api/v1/globals/",
        "/info",
        "/metrics",
        "/version",
    ] {
        answers.push(
            s.call(Some(ADMIN), reqwest::Method::GET, path, None)
                .await
                .1,
        );
    }
    answers.push(s.feed_first_line(Some(ADMIN)).await.1);
    answers.push(s.feed_first_line(Some(&t)).await.1);
    // Refusals do not echo what was sent.
    answers.push(
        s.call(Some(&t), reqwest::Method::GET, "/api/v1/networks/", None)
            .await
            .1,
    );
    answers.push(
        s.call(Some(&format!("{t}x")), reqwest::Method::GET, "/info", None)
            .await
            .1,
    );
    for a in &answers {
        for leak in [secret.as_str(), digest.as_str(), ADMIN] {
            assert!(!a.contains(leak), "{leak:?} in an answer: {a}");
        }
    }
    s.nm.stop().await;
}

#[tokio::test]
async fn certificate_problems_stop_the_start_naming_the_file() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let start = |tls: TlsFiles| {
        let data = data.path().to_path_buf();
        async move {
            let mut cfg = Config::embedded("127.0.0.1:0".parse().unwrap(), data);
            cfg.tls = Some(tls);
            format!("{:#}", server::start(cfg).await.unwrap_err())
        }
    };
    let missing = pki.dir.path().join("nope.pem");
    let e = start(TlsFiles {
        cert: missing.clone(),
        key: pki.files().key,
    })
    .await;
    assert!(
        e.contains("--tls-cert") && e.contains(&path(&missing)),
        "{e}"
    );
    // The key given as the certificate: no certificate in it.
    let e = start(TlsFiles {
        cert: pki.files().key,
        key: pki.files().key,
    })
    .await;
    assert!(
        e.contains("no CERTIFICATE") && e.contains("server.key"),
        "{e}"
    );
    // The certificate given as the key.
    let e = start(TlsFiles {
        cert: pki.files().cert,
        key: pki.files().cert,
    })
    .await;
    assert!(e.contains("--tls-key") && e.contains("PRIVATE KEY"), "{e}");
    // Another certificate's key.
    let other = Pki::new();
    let e = start(TlsFiles {
        cert: pki.files().cert,
        key: other.files().key,
    })
    .await;
    assert!(e.contains("--tls-cert") && e.contains("--tls-key"), "{e}");
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn loopback_without_a_token_stays_open() {
    let data = tempfile::tempdir().unwrap();
    let nm = server::start(Config::embedded(
        "127.0.0.1:0".parse().unwrap(),
        data.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let c = reqwest::Client::new();
    for path in ["/info", "/api/v1/networks/", "/api/v1/feed/hosts/"] {
        let r = c.get(format!("{}{path}", nm.url())).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    nm.stop().await;
}

/// `/metrics` is open to a loopback peer only: the router asked as if from another
/// address needs a credential (a listener off loopback cannot be opened in a test
/// without touching the machine's addresses).
#[tokio::test]
async fn metrics_from_beyond_loopback_need_a_credential() {
    use axum::extract::ConnectInfo;
    use netmaster::api::auth::{Auth, Peer};
    use netmaster::api::{AppState, Info};
    use std::sync::Arc;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let store = netmaster::store::RedbStore::open(&dir.path().join("s.redb")).unwrap();
    let engine = Arc::new(
        netmaster::intent::Engine::open(Arc::new(netmaster::store::AnyStore::Redb(store)))
            .await
            .unwrap(),
    );
    let (_role_tx, role) = tokio::sync::watch::channel(netmaster::election::Role::Leader);
    let state = AppState {
        engine,
        metrics: Arc::new(netmaster::metrics::Metrics::new()),
        role,
        auth: Auth::Token(ADMIN.into()),
        forward: netmaster::api::forward::Forwarder::new(
            netmaster::api::forward::Forwarder::client_builder()
                .build()
                .unwrap(),
            "https://192.0.2.1:9999",
        ),
        info: Arc::new(Info {
            version: "test",
            store_backend: "test".into(),
            advertise_url: "https://192.0.2.1:9999".into(),
            listen: "192.0.2.1:9999".into(),
        }),
    };
    let app = netmaster::api::router(state, netmaster::api::contiv_routes);
    let ask = |from: &str, token: Option<&str>| {
        let mut req = axum::http::Request::get("/metrics");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(Peer(from.parse::<SocketAddr>().unwrap())));
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap().status().as_u16() }
    };
    assert_eq!(ask("127.0.0.1:40000", None).await, 200);
    assert_eq!(ask("[::1]:40000", None).await, 200);
    assert_eq!(ask("192.0.2.7:40000", None).await, 401);
    assert_eq!(ask("192.0.2.7:40000", Some("wrong")).await, 401);
    assert_eq!(ask("192.0.2.7:40000", Some(ADMIN)).await, 200);
}

/// A stand-in leader on loopback that records every request reaching it (`METHOD path`)
/// and answers 204; its URL, the record and its task.
async fn recording_leader() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let leader = {
        let seen = seen.clone();
        axum::Router::new().fallback(move |m: axum::http::Method, u: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(format!("{m} {}", u.path()));
                axum::http::StatusCode::NO_CONTENT
            }
        })
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (
        url,
        seen,
        tokio::spawn(async move { axum::serve(l, leader).await }),
    )
}

/// The router of a follower advertised at `me` whose leader is `leader_url`, with the
/// admin token and a credential for host `h1` (returned); `dir` holds its store.
async fn follower_router(
    dir: &Path,
    leader_url: &str,
    me: &str,
) -> (axum::Router, contiv_model::Secret) {
    use netmaster::api::auth::Auth;
    use netmaster::api::{AppState, Info};
    use std::sync::Arc;

    let store = netmaster::store::RedbStore::open(&dir.join("s.redb")).unwrap();
    let store = Arc::new(netmaster::store::AnyStore::Redb(store));
    let (token, stored) = netmaster::credentials::generate("h1", 0).unwrap();
    netmaster::credentials::put(&store, &stored).await.unwrap();
    let engine = Arc::new(netmaster::intent::Engine::open(store).await.unwrap());
    // The sender goes; the role stays what it was sent as.
    let (_, role) = tokio::sync::watch::channel(netmaster::election::Role::Follower {
        leader: Some(leader_url.to_string()),
    });
    let state = AppState {
        engine,
        metrics: Arc::new(netmaster::metrics::Metrics::new()),
        role,
        auth: Auth::Token(ADMIN.into()),
        forward: netmaster::api::forward::Forwarder::new(
            netmaster::api::forward::Forwarder::client_builder()
                .build()
                .unwrap(),
            me,
        ),
        info: Arc::new(Info {
            version: "test",
            store_backend: "test".into(),
            advertise_url: me.into(),
            listen: "192.0.2.1:9999".into(),
        }),
    };
    (
        netmaster::api::router(state, netmaster::api::contiv_routes),
        token,
    )
}

/// `DELETE path` with `token` through `app`: the status and the body.
async fn delete_via(app: &axum::Router, token: &str, path: &str) -> (u16, String) {
    use tower::ServiceExt;
    let req = axum::http::Request::delete(path)
        .header("Authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let s = r.status().as_u16();
    let b = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    (s, String::from_utf8_lossy(&b).to_string())
}

/// A follower authorizes a write by its path, then forwards it: the leader must get that
/// very path. Dot segments (`..`, `%2e%2e`) would be removed by the URL parser on the
/// way, so a host's credential allowed `DELETE /api/v1/plugin/endpoints/x/../..` at the
/// follower reached `DELETE /api/v1/credentials/hosts/<other>/` at the leader.
#[tokio::test]
async fn a_follower_forwards_only_the_path_it_authorized() {
    let (leader_url, seen, served) = recording_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = follower_router(dir.path(), &leader_url, "http://192.0.2.1:9999").await;
    let host = token.expose();

    // The host's credential, aiming at the credentials of another host.
    for path in [
        "/api/v1/plugin/endpoints/x/%2e%2e/%2e%2e/%2e%2e/credentials/hosts/h2/",
        "/api/v1/plugin/endpoints/x/../../../credentials/hosts/h2/",
    ] {
        let (s, b) = delete_via(&app, host, path).await;
        assert_eq!(s, 403, "{path}: {b}");
    }
    // The admin's token: the path is not rewritten on the way either.
    for path in [
        "/api/v1/networks/default:n/%2e%2e/%2e%2e/tenants/t/",
        "/api/v1/networks/default:n/../../tenants/t/",
        "/api/v1/networks/./default:n/",
    ] {
        let (s, b) = delete_via(&app, ADMIN, path).await;
        assert_eq!(s, 400, "{path}: {b}");
        assert!(b.contains("not forwarded"), "{b}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the leader got {:?}",
        seen.lock().unwrap()
    );

    // What netplugin and netctl send is forwarded as it is.
    let (s, b) = delete_via(&app, host, "/api/v1/plugin/endpoints/ep-1/").await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = delete_via(&app, ADMIN, "/api/v1/networks/default:n/").await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "DELETE /api/v1/plugin/endpoints/ep-1/",
            "DELETE /api/v1/networks/default:n/"
        ]
    );
    served.abort();
}

/// A follower that serves TLS does not forward a caller's token to a leader advertised
/// over plain http, where anyone on the path could read it.
#[tokio::test]
async fn a_tls_follower_sends_no_credential_in_clear() {
    let (leader_url, seen, served) = recording_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = follower_router(dir.path(), &leader_url, "https://192.0.2.1:9999").await;
    for t in [ADMIN, token.expose()] {
        let (s, b) = delete_via(&app, t, "/api/v1/plugin/endpoints/ep-1/").await;
        assert_eq!(s, 503, "{b}");
        assert!(b.contains("in clear"), "{b}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the plain-http leader got {:?}",
        seen.lock().unwrap()
    );
    served.abort();
}
