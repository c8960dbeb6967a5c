//! Several netmasters on a 3-member etcd cluster: the leader is killed again and again
//! while clients keep writing through any netmaster; no acknowledged write is lost and no
//! allocation (VLAN/VXLAN tag, addresses) is handed out twice.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netmaster::election::Role as server_role;
use netmaster::server::{self, Backend, Config, Running};
use serde_json::{Value, json};

async fn start(endpoints: &[String]) -> Running {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cfg = Config {
        listen: addr,
        backend: Backend::Etcd {
            endpoints: endpoints.to_vec(),
            prefix: "/ha".into(),
            access: Default::default(),
        },
        advertise_url: None,
        token: None,
        insecure: false,
        tls: None,
        peer_ca: None,
        election_ttl: 2,
        endpoint_gc_after: None,
    };
    server::start(cfg).await.unwrap()
}

fn client() -> reqwest::Client {
    // No pooled connections: a request to a killed netmaster must fail, not ride an old
    // keep-alive connection.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        // Followers forward writes; a redirect would be a regression.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Retries a write on the netmasters in turn until one acknowledges it.
async fn write(urls: &[String], path: &str, body: &Value) -> Value {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        let url = &urls[i % urls.len()];
        i += 1;
        if let Ok(r) = c
            .post(format!("{url}{path}"))
            .body(body.to_string())
            .send()
            .await
        {
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            match s {
                200 => return v,
                503 => {}
                other => panic!("{path}: unexpected {other}: {v}"),
            }
        }
        assert!(Instant::now() < deadline, "{path} was never acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader_index(nms: &[Option<Running>]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = nms
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.role.borrow().is_leader()))
        {
            return i;
        }
        assert!(Instant::now() < deadline, "no leader was elected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_leaders_loses_no_acknowledged_write() {
    let cluster = common::Etcd::cluster(3);
    let endpoints = common::endpoints(&cluster);
    let mut nms: Vec<Option<Running>> = Vec::new();
    for _ in 0..3 {
        nms.push(Some(start(&endpoints).await));
    }
    let urls = |nms: &[Option<Running>]| nms.iter().flatten().map(|n| n.url()).collect::<Vec<_>>();
    leader_index(&nms).await;
    let mut g = write(&urls(&nms), "/api/v1/globals/global/", &json!({"name": "global", "fwdMode": "routing", "vlans": "1-4094", "vxlans": "1-10000", "arpMode": "proxy", "pvtSubnet": "172.19.0.0/16", "networkInfraType": "default"})).await;
    g["fwdMode"] = json!("routing");

    let mut acknowledged = Vec::new();
    for round in 0..3 {
        for k in 0..8 {
            let name = format!("n{round}-{k}");
            let body = json!({"tenantName": "default", "networkName": name, "encap": "vxlan", "subnet": format!("10.{round}.{k}.0/24")});
            let stored = write(
                &urls(&nms),
                &format!("/api/v1/networks/default:{name}/"),
                &body,
            )
            .await;
            acknowledged.push((name, stored["pktTag"].as_i64().unwrap()));
        }
        // Crash the leader (no resignation: its lease must expire) and start a new one.
        let l = leader_index(&nms).await;
        drop(nms[l].take());
        nms.push(Some(start(&endpoints).await));
    }

    // Every acknowledged network is there, with the tag it was acknowledged with, and no
    // tag was handed out twice.
    let c = client();
    let url = urls(&nms)[0].clone();
    let all: Vec<Value> = c
        .get(format!("{url}/api/v1/networks/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (name, tag) in &acknowledged {
        let n = all
            .iter()
            .find(|n| n["networkName"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} was lost"));
        assert_eq!(n["pktTag"].as_i64().unwrap(), *tag, "{name}");
    }
    let tags: BTreeSet<i64> = all.iter().map(|n| n["pktTag"].as_i64().unwrap()).collect();
    assert_eq!(tags.len(), all.len(), "a tag was allocated twice: {all:?}");
    // Followers serve reads: each netmaster shows every network (its watch caught up).
    for u in urls(&nms) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let a: Vec<Value> = c
                .get(format!("{u}/api/v1/networks/"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if a.len() == acknowledged.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{u} shows {} of {} networks",
                a.len(),
                acknowledged.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for n in nms.into_iter().flatten() {
        n.stop().await;
    }
}

/// A follower forwards an authenticated write to the leader with its credentials (a
/// redirect would lose them: HTTP clients drop `Authorization` on a redirect to another
/// host), refuses one without valid credentials itself, and does not forward a write
/// another netmaster already forwarded. Over TLS, as a production cluster runs: the
/// follower checks the leader's certificate against `peer_ca`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_authenticated_writes_to_the_leader() {
    let member = common::Etcd::cluster(1);
    let endpoints = common::endpoints(&member);
    let pki = crate::tls_credentials::Pki::new();
    let (files, ca) = (pki.files(), pki.ca());
    let start_with_token = |endpoints: Vec<String>| {
        let (files, ca) = (files.clone(), ca.clone());
        async move {
            let cfg = Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                backend: Backend::Etcd {
                    endpoints,
                    prefix: "/fwd".into(),
                    access: Default::default(),
                },
                advertise_url: None,
                token: Some(contiv_model::Secret::new("s3cret-token")),
                insecure: false,
                tls: Some(files),
                peer_ca: Some(ca),
                election_ttl: 2,
                endpoint_gc_after: None,
            };
            server::start(cfg).await.unwrap()
        }
    };
    let nms = vec![
        Some(start_with_token(endpoints.clone()).await),
        Some(start_with_token(endpoints.clone()).await),
    ];
    let l = leader_index(&nms).await;
    let (leader, follower) = (nms[l].as_ref().unwrap(), nms[1 - l].as_ref().unwrap());
    // The follower must know the leader before it can forward.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(
        &*follower.role.borrow(),
        server_role::Follower { leader: Some(_) }
    ) {
        assert!(
            Instant::now() < deadline,
            "the follower never learnt the leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(follower.url().starts_with("https://"), "{}", follower.url());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.ca()).unwrap()).unwrap();
    // Follows no redirect: a 307 would show as such.
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tenant = json!({"tenantName": "blue"});
    let put = |token: Option<&'static str>, extra: Option<(&'static str, &'static str)>| {
        let mut r = c
            .post(format!("{}/api/v1/tenants/blue/", follower.url()))
            .body(tenant.to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };

    let r = put(None, None).await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "no token: refused by the follower"
    );
    let r = put(Some("wrong"), None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "a wrong token: refused");
    let r = put(
        Some("s3cret-token"),
        Some((netmaster::api::forward::FORWARDED_BY, "http://127.0.0.1:1")),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "an already forwarded write is not forwarded again"
    );
    assert!(
        leader
            .engine
            .world()
            .get::<contiv_model::Tenant>("blue")
            .unwrap()
            .is_none(),
        "nothing was written by the refused calls"
    );

    let r = put(Some("s3cret-token"), None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let stored: Value = r.json().await.unwrap();
    assert_eq!(
        stored["tenantName"], "blue",
        "the leader's answer comes back"
    );
    assert!(
        leader
            .engine
            .world()
            .get::<contiv_model::Tenant>("blue")
            .unwrap()
            .is_some(),
        "the leader wrote it"
    );
    for n in nms.into_iter().flatten() {
        n.stop().await;
    }
}
