//! Endpoints created by netplugins: addresses from the pool in the same transaction as
//! the endpoint, retries harmless, refusals leave nothing behind, removal releases, and
//! a dead host's endpoints are collected by hand or after the GC time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netmaster::server::{self, Config};
use serde_json::{Value, json};

async fn start(dir: &std::path::Path, gc: Option<Duration>) -> (server::Running, reqwest::Client) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = Config::embedded(addr, dir.to_path_buf());
    cfg.endpoint_gc_after = gc;
    let nm = server::start(cfg).await.unwrap();
    (nm, reqwest::Client::new())
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method, url);
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn setup(nm: &server::Running, c: &reqwest::Client, subnet: &str) {
    let u = nm.url();
    let (_, mut g) = call(
        c,
        reqwest::Method::GET,
        format!("{u}/api/v1/globals/global/"),
        None,
    )
    .await;
    g["fwdMode"] = json!("routing");
    call(
        c,
        reqwest::Method::POST,
        format!("{u}/api/v1/globals/global/"),
        Some(g),
    )
    .await;
    let (s, e) = call(
        c,
        reqwest::Method::POST,
        format!("{u}/api/v1/networks/default:contiv-net/"),
        Some(json!({"tenantName": "default", "networkName": "contiv-net", "encap": "vxlan", "subnet": subnet, "gateway": "20.1.1.1"})),
    )
    .await;
    assert_eq!(s, 200, "{e}");
}

fn ep(id: &str, host: &str) -> Value {
    json!({"endpointID": id, "tenant": "default", "network": "contiv-net", "host": host, "containerName": format!("c-{id}")})
}

#[tokio::test]
async fn create_retry_refuse_release() {
    let dir = tempfile::tempdir().unwrap();
    let (nm, c) = start(dir.path(), None).await;
    setup(&nm, &c, "20.1.1.0/29").await;
    let u = nm.url();
    let post = |b: Value| {
        call(
            &c,
            reqwest::Method::POST,
            format!("{u}/api/v1/plugin/endpoints/"),
            Some(b),
        )
    };
    let (s, a) = post(ep("e1", "host1")).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["address"], "20.1.1.2/29");
    assert_eq!(a["gateway"], "20.1.1.1");
    assert_eq!(a["endpoint"]["macAddress"], "02:02:14:01:01:02");
    // A retry returns the same allocation.
    let (_, again) = post(ep("e1", "host1")).await;
    assert_eq!(again, a);
    // The same id from another host is a conflict.
    let (s, _) = post(ep("e1", "host2")).await;
    assert_eq!(s, 409);
    // Unknown network; bad fields.
    let mut bad = ep("e2", "host1");
    bad["network"] = json!("nosuch");
    let (s, e) = post(bad).await;
    assert_eq!((s, e["field"].as_str()), (404, Some("network")));
    let mut bad = ep("e2", "host1");
    bad["preferredIp"] = json!("20.1.1.1");
    let (s, e) = post(bad).await;
    assert_eq!(s, 409, "{e}");
    // Fill the /29 (hosts .2-.6, gateway .1): four more, then exhaustion.
    for i in 2..6 {
        assert_eq!(post(ep(&format!("e{i}"), "host1")).await.0, 200);
    }
    let (s, e) = post(ep("e6", "host1")).await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("no free address"),
        "{e}"
    );
    let (_, eps) = call(
        &c,
        reqwest::Method::GET,
        format!("{u}/api/v1/endpoints/"),
        None,
    )
    .await;
    assert_eq!(eps.as_array().unwrap().len(), 5);
    // The network cannot go while endpoints exist; removal releases addresses.
    let (s, _) = call(
        &c,
        reqwest::Method::DELETE,
        format!("{u}/api/v1/networks/default:contiv-net/"),
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = call(
        &c,
        reqwest::Method::DELETE,
        format!("{u}/api/v1/plugin/endpoints/e1/"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &c,
        reqwest::Method::DELETE,
        format!("{u}/api/v1/plugin/endpoints/e1/"),
        None,
    )
    .await;
    assert_eq!(s, 204, "removing an absent endpoint succeeds");
    let (_, a) = post(ep("e7", "host1")).await;
    assert_eq!(a["address"], "20.1.1.2/29");
    nm.stop().await;
}

#[tokio::test]
async fn collect_by_hand_and_after_the_gc_time() {
    let dir = tempfile::tempdir().unwrap();
    let (nm, c) = start(dir.path(), Some(Duration::from_secs(1))).await;
    setup(&nm, &c, "20.1.1.0/24").await;
    let u = nm.url();
    for (id, host) in [("a1", "host1"), ("a2", "host1"), ("b1", "host2")] {
        let (s, _) = call(
            &c,
            reqwest::Method::POST,
            format!("{u}/api/v1/plugin/endpoints/"),
            Some(ep(id, host)),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, v) = call(
        &c,
        reqwest::Method::POST,
        format!("{u}/api/v1/plugin/hosts/host1/collect"),
        None,
    )
    .await;
    assert_eq!((s, v["collected"].as_u64()), (200, Some(2)));
    // host2 reports once and then goes silent: its endpoint is collected.
    let (s, _) = call(
        &c,
        reqwest::Method::PUT,
        format!("{u}/api/v1/feed/hosts/host2/"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, eps) = call(
            &c,
            reqwest::Method::GET,
            format!("{u}/api/v1/endpoints/"),
            None,
        )
        .await;
        if eps.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host2's endpoint was not collected: {eps}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, i) = call(
        &c,
        reqwest::Method::GET,
        format!("{u}/api/v1/inspect/networks/default:contiv-net/"),
        None,
    )
    .await;
    assert_eq!(i["Oper"]["allocatedAddressesCount"], 0);
    nm.stop().await;
}

#[tokio::test]
async fn dual_stack_networks_give_endpoints_both_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (nm, c) = start(dir.path(), None).await;
    let u = nm.url();
    let (_, mut g) = call(
        &c,
        reqwest::Method::GET,
        format!("{u}/api/v1/globals/global/"),
        None,
    )
    .await;
    g["fwdMode"] = json!("routing");
    call(
        &c,
        reqwest::Method::POST,
        format!("{u}/api/v1/globals/global/"),
        Some(g),
    )
    .await;
    let (s, e) = call(
        &c,
        reqwest::Method::POST,
        format!("{u}/api/v1/networks/default:ds/"),
        Some(json!({"tenantName": "default", "networkName": "ds", "encap": "vxlan", "subnet": "20.5.1.0/24",
            "gateway": "20.5.1.254", "ipv6Subnet": "fd00:5:1::/64", "ipv6Gateway": "fd00:5:1::1"})),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let mut req = ep("v6", "host1");
    req["network"] = json!("ds");
    let (s, a) = call(
        &c,
        reqwest::Method::POST,
        format!("{u}/api/v1/plugin/endpoints/"),
        Some(req),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        a["endpoint"]["ipAddress"],
        json!(["20.5.1.1", "fd00:5:1::2"])
    );
    let (s, _) = call(
        &c,
        reqwest::Method::DELETE,
        format!("{u}/api/v1/plugin/endpoints/v6/"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let mut again = ep("v6b", "host1");
    again["network"] = json!("ds");
    let (_, a) = call(
        &c,
        reqwest::Method::POST,
        format!("{u}/api/v1/plugin/endpoints/"),
        Some(again),
    )
    .await;
    assert_eq!(
        a["endpoint"]["ipAddress"],
        json!(["20.5.1.1", "fd00:5:1::2"]),
        "both addresses were released"
    );
    nm.stop().await;
}
