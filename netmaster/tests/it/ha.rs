//! Several netmasters on a 3-member etcd cluster: the leader is killed again and again
//! while clients keep writing through any netmaster; no acknowledged write is lost and no
//! allocation (VLAN/VXLAN tag, addresses) is handed out twice.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
