//! Contiv networks as Docker networks: on a host running Docker, every Contiv network
//! and endpoint group of the fabric appears as a Docker network of our driver
//! (`contiv-net`, `web.contiv-net`, `net/tenant`), so `docker run --net=contiv-net`
//! works without a `docker network create`. Networks of our driver whose Contiv network
//! is gone are removed (Docker refuses while containers use them; retried later).
//!
//! Also learns the names of Docker containers (Docker's CreateEndpoint does not carry
//! them) from dockerd, so service discovery knows them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use contiv_model::{EndpointGroup, Network, Object};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Agent;
use crate::cni::client::parse_reply;
use crate::cni::service::NetworkTarget;
use crate::intent::Mirror;

/// One HTTP request to dockerd's API socket.
pub async fn docker_api(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let fut = async {
        let mut s = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("dockerd at {}: {e}", socket.display()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("dockerd: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .await
            .map_err(|e| format!("dockerd: {e}"))?;
        let reply = parse_reply(&raw).map_err(|e| format!("dockerd's reply: {e}"))?;
        let v = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
        };
        Ok((reply.status, v))
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .map_err(|_| format!("dockerd at {} did not answer", socket.display()))?
}

/// The Docker networks the fabric's intent asks for: name → Contiv target.
pub fn wanted_networks(m: &Mirror) -> BTreeMap<String, NetworkTarget> {
    let mut out = BTreeMap::new();
    for n in m.list::<Network>(Network::PLURAL) {
        if let Ok(t) = NetworkTarget::new(&n.tenant_name, &n.network_name, None) {
            out.insert(t.docker_name(), t);
        }
    }
    for g in m.list::<EndpointGroup>(EndpointGroup::PLURAL) {
        if let Ok(t) = NetworkTarget::new(&g.tenant_name, &g.network_name, Some(&g.group_name)) {
            out.insert(t.docker_name(), t);
        }
    }
    out
}

/// `(tenant, network)` → the network's subnet, for the networks' IPAM configuration.
fn subnets(m: &Mirror) -> BTreeMap<(String, String), String> {
    m.list::<Network>(Network::PLURAL)
        .into_iter()
        .filter_map(|n| {
            let s = contiv_model::validate::parse_subnet("subnet", &n.subnet).ok()?;
            Some(((n.tenant_name, n.network_name), s.net.to_string()))
        })
        .collect()
}

/// The body of `POST /networks/create`. The subnet is given: dockerd then takes the
/// pool our IPAM driver answers as it is, where for a network without one it would
/// check the pool against the host's routes — and a running container's /32 inside it
/// would have it ask for another pool forever.
fn create_body(name: &str, t: &NetworkTarget, driver: &str, subnet: Option<&str>) -> Value {
    let mut opts = BTreeMap::from([
        ("tenant".to_string(), t.tenant.clone()),
        ("network".to_string(), t.network.clone()),
    ]);
    if let Some(g) = &t.group {
        opts.insert("group".to_string(), g.clone());
    }
    json!({
        "Name": name,
        "Driver": driver,
        "CheckDuplicate": true,
        "IPAM": {
            "Driver": driver,
            "Options": opts,
            "Config": subnet.map(|s| vec![json!({ "Subnet": s })]).unwrap_or_default(),
        },
        "Options": opts,
        "Labels": { "io.contiv.managed": "true" },
    })
}

/// Makes dockerd's networks of our driver match the intent. Returns what failed.
pub async fn sync_networks(socket: &Path, driver: &str, m: &Mirror) -> Vec<String> {
    let mut errors = Vec::new();
    let (status, list) = match docker_api(socket, "GET", "/networks", None).await {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    if status != 200 {
        return vec![format!("dockerd: listing networks: HTTP {status}")];
    }
    let have: BTreeMap<String, String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["Driver"] == driver)
        .filter_map(|n| {
            Some((
                n["Name"].as_str()?.to_string(),
                n["Id"].as_str()?.to_string(),
            ))
        })
        .collect();
    let want = wanted_networks(m);
    let subnets = subnets(m);
    for (name, t) in &want {
        if have.contains_key(name) {
            continue;
        }
        match docker_api(
            socket,
            "POST",
            "/networks/create",
            Some(&create_body(
                name,
                t,
                driver,
                subnets
                    .get(&(t.tenant.clone(), t.network.clone()))
                    .map(String::as_str),
            )),
        )
        .await
        {
            Ok((201 | 200, _)) => tracing::info!("docker: created network {name}"),
            Ok((409, _)) => {}
            Ok((s, v)) => errors.push(format!("docker: creating network {name}: HTTP {s} {v}")),
            Err(e) => errors.push(e),
        }
    }
    let stale: BTreeSet<&String> = have.keys().filter(|n| !want.contains_key(*n)).collect();
    for name in stale {
        let id = &have[name];
        match docker_api(socket, "DELETE", &format!("/networks/{id}"), None).await {
            Ok((204 | 200 | 404, _)) => tracing::info!("docker: removed network {name}"),
            Ok((s, v)) => errors.push(format!("docker: removing network {name}: HTTP {s} {v}")),
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// The name of the container holding a Docker endpoint, from dockerd.
pub async fn container_name_of(socket: &Path, endpoint_id: &str) -> Option<String> {
    let (status, list) = docker_api(socket, "GET", "/containers/json", None)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    list.as_array()?.iter().find_map(|c| {
        let nets = c["NetworkSettings"]["Networks"].as_object()?;
        nets.values()
            .any(|n| n["EndpointID"] == endpoint_id)
            .then(|| {
                c["Names"][0]
                    .as_str()
                    .map(|n| n.trim_start_matches('/').to_string())
            })?
    })
}

/// Keeps dockerd's networks in line with the intent (on every change, and every 10 s
/// to retry), and names Docker endpoints once their containers are known.
pub(super) async fn run(agent: Arc<Agent>, socket: PathBuf, driver: String) {
    let mut mirror = agent.mirror.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = mirror.changed() => if r.is_err() { return },
        }
        let m = mirror.borrow_and_update().clone();
        if m.revision == 0 && m.objects.is_empty() {
            continue;
        }
        for e in sync_networks(&socket, &driver, &m).await {
            tracing::warn!("{e}");
        }
    }
}

/// Learns the container name of a Docker endpoint (polling dockerd for a while, since
/// the container is being started while the endpoint is created) and records it.
pub(super) async fn name_endpoint(
    agent: Arc<Agent>,
    socket: PathBuf,
    key: String,
    docker_ep: String,
) {
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(name) = container_name_of(&socket, &docker_ep).await {
            if let Err(e) = agent.set_container_name(&key, &name).await {
                tracing::warn!("naming endpoint {key} {name}: {e}");
            }
            return;
        }
    }
    tracing::info!("docker: no container found for endpoint {docker_ep}");
}
