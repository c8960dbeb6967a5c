//! The REST server itself: version/info/metrics, errors for unknown routes, body limits,
//! tokens (for reads too) on non-loopback listeners, and restart safety of the embedded store.

use std::net::SocketAddr;

use netmaster::server::{self, Config};

async fn start(dir: &std::path::Path) -> server::Running {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    server::start(Config::embedded(addr, dir.to_path_buf()))
        .await
        .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn version_info_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let nm = start(dir.path()).await;
    let (s, body) = get(&format!("{}/version", nm.url())).await;
    assert_eq!(s, 200);
    assert!(body.contains(env!("CARGO_PKG_VERSION")), "{body}");
    let (s, body) = get(&format!("{}/info", nm.url())).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["isLeader"], true);
    assert!(
        v["info"]["storeBackend"]
            .as_str()
            .unwrap()
            .starts_with("embedded:")
    );
    let (s, body) = get(&format!("{}/metrics", nm.url())).await;
    assert_eq!(s, 200);
    assert!(body.contains("netmaster_leader 1"), "{body}");
    assert!(
        body.contains("netmaster_http_requests_total{route=\"/info\""),
        "{body}"
    );
    nm.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let dir = tempfile::tempdir().unwrap();
    let nm = start(dir.path()).await;
    let (s, body) = get(&format!("{}/api/v1/nosuchthings/", nm.url())).await;
    assert_eq!(s, 404);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "not-found");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/nosuchthings/")
    );
    nm.stop().await;
}

#[tokio::test]
async fn a_second_netmaster_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nm = start(dir.path()).await;
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let err = server::start(Config::embedded(addr, dir.path().to_path_buf()))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("locked"), "{err:#}");
    nm.stop().await;
}

#[tokio::test]
async fn non_loopback_listeners_need_a_token_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = server::start(Config::embedded(addr, dir.path().to_path_buf()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--token-file"), "{err}");
}

#[tokio::test]
async fn a_token_guards_changes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = Config::embedded(addr, dir.path().to_path_buf());
    cfg.token = Some("s3cret-token".into());
    let nm = server::start(cfg).await.unwrap();
    let c = reqwest::Client::new();
    let body = r#"{"tenantName":"t1"}"#;
    let r = c
        .post(format!("{}/api/v1/tenants/t1/", nm.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(!text.contains("s3cret"), "the token leaked: {text}");
    let r = c
        .post(format!("{}/api/v1/tenants/t1/", nm.url()))
        .bearer_auth("wrong")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{}/api/v1/tenants/t1/", nm.url()))
        .bearer_auth("s3cret-token")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/api/v1/tenants/t1/", nm.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "reads need a credential too");
    let r = c
        .get(format!("{}/api/v1/tenants/t1/", nm.url()))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info = c
        .get(format!("{}/info", nm.url()))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!info.contains("s3cret"), "{info}");
    nm.stop().await;
}
