//! Contiv's objects over REST on the embedded store: each kind's validation and refusal
//! rules, with clear 4xx errors and unchanged state after every refusal; allocations that
//! survive a restart.

use std::net::SocketAddr;

use netmaster::server::{self, Config};
use serde_json::{Value, json};

struct Nm {
    url: String,
    http: reqwest::Client,
    running: Option<server::Running>,
}

impl Nm {
    async fn start(dir: &std::path::Path) -> Nm {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let running = server::start(Config::embedded(addr, dir.to_path_buf()))
            .await
            .unwrap();
        Nm {
            url: running.url(),
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }
    async fn stop(mut self) {
        self.running.take().unwrap().stop().await;
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn raw(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.raw(reqwest::Method::DELETE, path, Vec::new()).await
    }
    async fn set_mode(&self, mode: &str) -> (u16, Value) {
        let (_, mut g) = self.get("/api/v1/globals/global/").await;
        g["fwdMode"] = json!(mode);
        self.post("/api/v1/globals/global/", g).await
    }
}

fn net(name: &str, subnet: &str, tag: i64) -> Value {
    json!({"tenantName": "default", "networkName": name, "encap": "vxlan", "pktTag": tag, "subnet": subnet, "gateway": ""})
}

#[tokio::test]
async fn defaults_exist_and_global_rules_hold() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    let (s, g) = nm.get("/api/v1/globals/global/").await;
    assert_eq!(s, 200);
    assert_eq!(g["fwdMode"], "bridge");
    assert_eq!(g["pvtSubnet"], "172.19.0.0/16");
    let (s, t) = nm.get("/api/v1/tenants/default").await;
    assert_eq!((s, t["tenantName"].as_str()), (200, Some("default")));
    assert_eq!(nm.set_mode("routing").await.0, 200);
    let (s, e) = nm.set_mode("routed").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("fwdMode")));
    assert_eq!(
        nm.post("/api/v1/networks/default:a/", net("a", "20.1.1.0/24", 0))
            .await
            .0,
        200
    );
    let (s, e) = nm.set_mode("bridge").await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("existing 0 vlans and 1 vxlans"),
        "{e}"
    );
    let (s, _) = nm.delete("/api/v1/globals/global/").await;
    assert_eq!(s, 409);
    nm.stop().await;
}

#[tokio::test]
async fn networks_validate_overlap_and_refuse_changes() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    nm.set_mode("routing").await;
    let mut quick = net("contiv-net", "20.1.1.0/24", 1001);
    quick["gateway"] = json!("20.1.1.254");
    let (s, n) = nm
        .post("/api/v1/networks/default:contiv-net/", quick.clone())
        .await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(n["key"], "default:contiv-net");
    assert_eq!(n["nwType"], "data");
    // The same create again is fine; a change is not.
    assert_eq!(
        nm.post("/api/v1/networks/default:contiv-net/", quick.clone())
            .await
            .0,
        200
    );
    let mut changed = quick.clone();
    changed["gateway"] = json!("20.1.1.1");
    let (s, e) = nm
        .post("/api/v1/networks/default:contiv-net/", changed)
        .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")));
    // Overlap within the tenant; a tag taken; the URL key must match the body.
    let (s, e) = nm
        .post(
            "/api/v1/networks/default:other/",
            net("other", "20.1.0.0/16", 0),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (409, Some("subnet")), "{e}");
    let (s, e) = nm
        .post(
            "/api/v1/networks/default:other/",
            net("other", "20.2.0.0/16", 1001),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (409, Some("pktTag")), "{e}");
    let (s, e) = nm
        .post(
            "/api/v1/networks/default:wrong/",
            net("other", "20.2.0.0/16", 0),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("key")), "{e}");
    // Malformed and unknown input.
    let (s, e) = nm
        .raw(
            reqwest::Method::POST,
            "/api/v1/networks/default:x/",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("validation")));
    let mut unknown = net("x", "20.3.0.0/16", 0);
    unknown["subnett"] = json!("1");
    let (s, e) = nm.post("/api/v1/networks/default:x/", unknown).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("subnett")), "{e}");
    let (s, e) = nm
        .post("/api/v1/networks/default:x/", net("x", "20.3.0.0/33", 0))
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("subnet")), "{e}");
    let huge = vec![b' '; 2 << 20];
    let (s, e) = nm
        .raw(reqwest::Method::POST, "/api/v1/networks/default:x/", huge)
        .await;
    assert_eq!((s, e["error"].as_str()), (413, Some("too-large")));
    let (s, _) = nm.post("/api/v1/networks/nosuch:x/", json!({"tenantName": "nosuch", "networkName": "x", "encap": "vxlan", "subnet": "20.4.0.0/16"})).await;
    assert_eq!(s, 404);
    // Nothing of the refused requests is stored.
    let (_, all) = nm.get("/api/v1/networks/").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    let (s, i) = nm.get("/api/v1/inspect/networks/default:contiv-net/").await;
    assert_eq!(s, 200);
    assert_eq!(i["Config"]["subnet"], "20.1.1.0/24");
    assert_eq!(i["Oper"]["availableIPAddresses"], "20.1.1.1-20.1.1.253");
    nm.stop().await;
}

#[tokio::test]
async fn groups_policies_rules_and_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    nm.set_mode("routing").await;
    nm.post(
        "/api/v1/networks/default:contiv-net/",
        net("contiv-net", "20.1.1.0/24", 0),
    )
    .await;
    let (s, _) = nm
        .post(
            "/api/v1/policys/default:prod_web/",
            json!({"tenantName": "default", "policyName": "prod_web"}),
        )
        .await;
    assert_eq!(s, 200);
    let rule = |id: &str, extra: Value| {
        let mut r = json!({"tenantName": "default", "policyName": "prod_web", "ruleId": id, "direction": "in", "protocol": "tcp", "action": "deny"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    assert_eq!(
        nm.post("/api/v1/rules/default:prod_web:1/", rule("1", json!({})))
            .await
            .0,
        200
    );
    assert_eq!(
        nm.post(
            "/api/v1/rules/default:prod_web:2/",
            rule("2", json!({"port": 80, "action": "allow", "priority": 10}))
        )
        .await
        .0,
        200
    );
    let (s, e) = nm
        .post(
            "/api/v1/rules/default:prod_web:3/",
            rule("3", json!({"port": 70000})),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("port")));
    let (s, e) = nm.post("/api/v1/rules/default:nosuch:1/", json!({"tenantName": "default", "policyName": "nosuch", "ruleId": "1", "direction": "in", "action": "allow"})).await;
    assert_eq!((s, e["field"].as_str()), (404, Some("policyName")));

    let web = json!({"tenantName": "default", "groupName": "web", "networkName": "contiv-net", "policies": ["prod_web"], "ipPool": "20.1.1.10-20.1.1.20"});
    let (s, g) = nm
        .post("/api/v1/endpointGroups/default:web/", web.clone())
        .await;
    assert_eq!(s, 200, "{g}");
    let (s, e) = nm.post("/api/v1/endpointGroups/default:contiv-net/", json!({"tenantName": "default", "groupName": "contiv-net", "networkName": "contiv-net"})).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("groupName")));
    let mut moved = web.clone();
    moved["ipPool"] = json!("20.1.1.30-20.1.1.40");
    let (s, e) = nm.post("/api/v1/endpointGroups/default:web/", moved).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("ipPool")));
    let (s, e) = nm.delete("/api/v1/policys/default:prod_web/").await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = nm.delete("/api/v1/networks/default:contiv-net/").await;
    assert_eq!(s, 409, "{e}");
    let (_, i) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    assert_eq!(i["Oper"]["groupTag"], 1);
    // Group ids come from the store: a second group gets 2, also after a restart.
    let url = nm.url.clone();
    nm.stop().await;
    let nm = Nm::start(dir.path()).await;
    assert_ne!(url, "");
    let (s, _) = nm
        .post(
            "/api/v1/endpointGroups/default:db/",
            json!({"tenantName": "default", "groupName": "db", "networkName": "contiv-net"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, i) = nm.get("/api/v1/inspect/endpointGroups/default:db/").await;
    assert_eq!(i["Oper"]["groupTag"], 2);
    // Deleting in dependency order works; the policy takes its rules along.
    assert_eq!(
        nm.delete("/api/v1/endpointGroups/default:web/").await.0,
        204
    );
    assert_eq!(nm.delete("/api/v1/endpointGroups/default:db/").await.0, 204);
    assert_eq!(nm.delete("/api/v1/policys/default:prod_web/").await.0, 204);
    let (_, rules) = nm.get("/api/v1/rules/").await;
    assert_eq!(rules.as_array().unwrap().len(), 0);
    assert_eq!(
        nm.delete("/api/v1/networks/default:contiv-net/").await.0,
        204
    );
    nm.stop().await;
}

#[tokio::test]
async fn bgp_needs_routing_and_shows_oper_from_reports() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    let b = json!({"hostname": "node1", "routerip": "50.1.1.2/24", "as": "65002", "neighbor-as": "500", "neighbor": "50.1.1.200"});
    let (s, e) = nm.post("/api/v1/Bgps/node1/", b.clone()).await;
    assert_eq!(s, 409, "{e}");
    nm.set_mode("routing").await;
    let (s, e) = nm.post("/api/v1/Bgps/node1/", b.clone()).await;
    assert_eq!(s, 200, "{e}");
    let mut bad = b.clone();
    bad["routerip"] = json!("50.1.1.2");
    let (s, e) = nm.post("/api/v1/Bgps/node1/", bad).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("routerip")));
    let (s, e) = nm.set_mode("bridge").await;
    assert_eq!(s, 409);
    assert!(e["message"].as_str().unwrap().contains("Bgp"), "{e}");
    let r = nm
        .http
        .put(format!("{}/api/v1/feed/hosts/node1/", nm.url))
        .body(r#"{"neighbors":[{"address":"50.1.1.200","state":"established"}],"routes":[{"prefix":"20.1.1.3/32","nexthops":["50.1.1.200"]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, i) = nm.get("/api/v1/inspect/Bgps/node1/").await;
    assert_eq!(i["Oper"]["neighborStatus"], "established");
    assert_eq!(i["Oper"]["numRoutes"], 1);
    assert_eq!(i["Oper"]["routes"][0], "20.1.1.3/32");
    assert_eq!(nm.delete("/api/v1/Bgps/node1/").await.0, 204);
    assert_eq!(nm.set_mode("bridge").await.0, 200);
    nm.stop().await;
}

#[tokio::test]
async fn services_get_vips_and_endpoints_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    nm.set_mode("routing").await;
    nm.post(
        "/api/v1/networks/default:svc-net/",
        net("svc-net", "30.1.1.0/24", 0),
    )
    .await;
    let svc = json!({"tenantName": "default", "serviceName": "app-svc", "networkName": "svc-net", "selectors": ["tier=web"], "ports": ["8080:80:TCP"]});
    let (s, e) = nm.post("/api/v1/serviceLBs/default:app-svc/", svc).await;
    assert_eq!(s, 200, "{e}");
    let (_, i) = nm.get("/api/v1/inspect/serviceLBs/default:app-svc/").await;
    assert_eq!(i["Oper"]["serviceVip"], "30.1.1.1");
    // Metrics follow: object counts, IPAM use, store transactions.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = nm
            .http
            .get(format!("{}/metrics", nm.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("netmaster_objects{kind=\"serviceLBs\"} 1")
            && text.contains("netmaster_ipam_allocated_addresses{network=\"default:svc-net\"} 1")
            && text.contains("netmaster_store_operations_total{op=\"txn\",result=\"committed\"}")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, _) = nm.post("/api/v1/endpoints/x/", json!({"endpointID": "x", "network": "n", "tenantName": "default", "networkName": "n", "homingHost": "h"})).await;
    assert_eq!(s, 405);
    assert_eq!(
        nm.delete("/api/v1/serviceLBs/default:app-svc/").await.0,
        204
    );
    let (_, i) = nm.get("/api/v1/inspect/networks/default:svc-net/").await;
    assert_eq!(i["Oper"]["allocatedAddressesCount"], 0);
    nm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_together_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Nm::start(dir.path()).await;
    nm.set_mode("routing").await;
    let url = nm.url.clone();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // Every fourth network overlaps the one before it and must be refused alone.
            let subnet = if i % 4 == 3 {
                format!("10.{}.0.0/16", i - 1)
            } else {
                format!("10.{i}.0.0/16")
            };
            let body = net(&format!("n{i}"), &subnet, 0);
            let r = reqwest::Client::new()
                .post(format!("{url}/api/v1/networks/default:n{i}/"))
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (i, r.status().as_u16())
        }));
    }
    let mut status = std::collections::BTreeMap::new();
    for t in tasks {
        let (i, s) = t.await.unwrap();
        status.insert(i, s);
    }
    // Of each overlapping pair exactly one wins (whichever was planned first); every
    // other network is created.
    let mut ok = 0;
    for i in 0..40 {
        match i % 4 {
            2 => {
                let pair = [status[&i], status[&(i + 1)]];
                assert!(
                    pair.contains(&200) && pair.contains(&409),
                    "n{i}/n{}: {pair:?}",
                    i + 1
                );
                ok += 1;
            }
            3 => {}
            _ => {
                assert_eq!(status[&i], 200, "n{i}");
                ok += 1;
            }
        }
    }
    let (_, all) = nm.get("/api/v1/networks/").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), ok);
    let tags: std::collections::BTreeSet<i64> =
        all.iter().map(|n| n["pktTag"].as_i64().unwrap()).collect();
    assert_eq!(tags.len(), ok, "tags handed out twice");
    nm.stop().await;
}
