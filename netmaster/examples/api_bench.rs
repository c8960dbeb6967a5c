//! netmaster benchmark: REST write and read throughput on the embedded store and on a
//! real etcd, with etcd's raw put rate measured in the same run, and the latency of the
//! feed fanning one change out to many subscribers.
//!
//! `cargo run --release -p netmaster --example api_bench -- [seconds] [subscribers]`

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use netmaster::server::{self, Backend, Config};

const CONCURRENCY: usize = 16;

async fn for_duration<F, Fut>(secs: f64, f: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let (f, done) = (f.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                f(w, i).await;
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn rest_rates(url: String, secs: f64, tag: &str) -> (f64, f64) {
    let http = reqwest::Client::new();
    let (h, u, t) = (http.clone(), url.clone(), tag.to_string());
    let writes = for_duration(secs, move |w, i| {
        let (h, u, t) = (h.clone(), u.clone(), t.clone());
        async move {
            let name = format!("p{t}-{w}-{i}");
            let body = format!(r#"{{"tenantName":"default","policyName":"{name}"}}"#);
            let r = h
                .post(format!("{u}/api/v1/policys/default:{name}/"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    })
    .await;
    let (h, u, t) = (http.clone(), url.clone(), tag.to_string());
    let reads = for_duration(secs, move |w, i| {
        let (h, u, t) = (h.clone(), u.clone(), t.clone());
        async move {
            let name = format!("p{t}-{w}-{}", i % 50);
            let r = h
                .get(format!("{u}/api/v1/policys/default:{name}/"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await;
        }
    })
    .await;
    (writes, reads)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn fanout(url: String, subscribers: usize, changes: usize) -> (f64, f64, f64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut ready = Vec::new();
    for _ in 0..subscribers {
        let resp = http
            .get(format!("{url}/api/v1/feed/?from=0"))
            .send()
            .await
            .unwrap();
        let tx = tx.clone();
        let (rtx, rrx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rrx);
        tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut pending = Vec::new();
            let mut rtx = Some(rtx);
            while let Some(Ok(chunk)) = body.next().await {
                let now = Instant::now();
                pending.extend_from_slice(&chunk);
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    match v["type"].as_str() {
                        Some("snapshot") => {
                            if let Some(r) = rtx.take() {
                                let _ = r.send(());
                            }
                        }
                        Some("change") => {
                            let _ =
                                tx.send((v["key"].as_str().unwrap_or_default().to_string(), now));
                        }
                        _ => {}
                    }
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    let mut lat = Vec::new();
    for i in 0..changes {
        let name = format!("fan{i}");
        let body = format!(r#"{{"tenantName":"default","policyName":"{name}"}}"#);
        let acked = Instant::now();
        http.post(format!("{url}/api/v1/policys/default:{name}/"))
            .body(body)
            .send()
            .await
            .unwrap();
        let key = format!("default:{name}");
        let mut got = 0;
        while got < subscribers {
            let (k, at) = rx.recv().await.unwrap();
            if k == key {
                got += 1;
                lat.push(at.saturating_duration_since(acked).as_secs_f64() * 1000.0);
            }
        }
    }
    let p50 = percentile(&mut lat, 0.5);
    let p99 = percentile(&mut lat, 0.99);
    let max = percentile(&mut lat, 1.0);
    (p50, p99, max)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let subs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);

    let etcd = common::Etcd::start();
    let endpoint = format!("http://{}", etcd.endpoint);

    // etcd's raw put rate with the same concurrency.
    let client = etcd_client::Client::connect([endpoint.clone()], None)
        .await
        .unwrap();
    let raw = for_duration(secs, move |w, i| {
        let mut kv = client.kv_client();
        async move {
            let v = format!(r#"{{"tenantName":"default","policyName":"raw-{w}-{i}"}}"#);
            kv.put(format!("/raw/{w}/{i}"), v, None).await.unwrap();
        }
    })
    .await;

    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cfg = Config {
        listen: addr,
        backend: Backend::Etcd {
            endpoints: vec![endpoint.clone()],
            prefix: "/bench".into(),
            access: Default::default(),
        },
        advertise_url: None,
        token: None,
        insecure: false,
        tls: None,
        peer_ca: None,
        election_ttl: 5,
        endpoint_gc_after: None,
    };
    let on_etcd = server::start(cfg).await.unwrap();
    while !on_etcd.role.borrow().is_leader() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (etcd_w, etcd_r) = rest_rates(on_etcd.url(), secs, "e").await;

    let dir = tempfile::tempdir().unwrap();
    let embedded = server::start(Config::embedded(addr, dir.path().to_path_buf()))
        .await
        .unwrap();
    let (redb_w, redb_r) = rest_rates(embedded.url(), secs, "r").await;

    println!("concurrency {CONCURRENCY}, {secs} s per figure");
    println!("etcd raw put                 {raw:>9.0} /s");
    println!(
        "REST write on etcd           {etcd_w:>9.0} /s   ratio to raw etcd puts {:.2}",
        etcd_w / raw
    );
    println!("REST read  on etcd netmaster {etcd_r:>9.0} /s");
    println!("REST write on embedded redb  {redb_w:>9.0} /s");
    println!("REST read  on embedded redb  {redb_r:>9.0} /s");
    let (p50, p99, max) = fanout(embedded.url(), subs, 20).await;
    println!(
        "feed fan-out to {subs} subscribers, 20 changes: p50 {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms (from write acknowledged to line received)"
    );
    embedded.stop().await;
    on_etcd.stop().await;
}
