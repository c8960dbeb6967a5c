//! The API netplugins use to create and remove endpoints, and to collect the endpoints
//! of a host that is gone. An endpoint's address comes from its network's (or group's)
//! pool, in the same transaction as the endpoint object, so an address is never held
//! without its endpoint or handed out twice.
//!
//! - `POST /api/v1/plugin/endpoints/` with an [`EndpointRequest`]: creates the endpoint
//!   (or returns it unchanged when it already exists with the same network and host, so
//!   a retried request is harmless) and answers an [`EndpointAllocation`].
//! - `DELETE /api/v1/plugin/endpoints/<id>/`: releases the address and removes the
//!   endpoint; removing one that does not exist succeeds.
//! - `POST /api/v1/plugin/hosts/<host>/collect`: removes every endpoint homed on the
//!   host (also done automatically for hosts silent longer than the GC time).

use std::net::Ipv4Addr;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contiv_model::{Endpoint, EndpointGroup, Network, Object};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, json, parse_body};
use crate::intent::{Engine, Plan, World};
use crate::ipam::PoolState;
use crate::kinds::{ipam6_key, pool_of, pool6_of, release_any, scope_for};

/// What a netplugin asks for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointRequest {
    #[serde(rename = "endpointID")]
    pub endpoint_id: String,
    pub tenant: String,
    pub network: String,
    /// The endpoint group, or "".
    #[serde(default)]
    pub group: String,
    pub host: String,
    #[serde(default, rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub container_name: String,
    /// A specific address, when the runtime asks for one.
    #[serde(default)]
    pub preferred_ip: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What the netplugin gets back: enough to plumb the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAllocation {
    pub endpoint: Endpoint,
    /// The address with the network's prefix length (`20.1.1.2/24`).
    pub address: String,
    pub gateway: String,
    pub pkt_tag: i64,
}

fn ipam_state_key(net_key: &str) -> String {
    format!("ipam/{net_key}")
}

fn allocation(w: &World, ep: &Endpoint) -> Result<EndpointAllocation, ApiError> {
    let net = w
        .get::<Network>(&format!("{}:{}", ep.tenant_name, ep.network_name))?
        .ok_or_else(|| {
            ApiError::not_found(format!("networks/{}:{}", ep.tenant_name, ep.network_name))
        })?;
    let len = contiv_model::validate::parse_subnet("subnet", &net.subnet)
        .map(|s| s.net.prefix_len())
        .unwrap_or(32);
    let ip = ep.ip_address.first().cloned().unwrap_or_default();
    Ok(EndpointAllocation {
        endpoint: ep.clone(),
        address: format!("{ip}/{len}"),
        gateway: net.gateway.clone(),
        pkt_tag: net.pkt_tag,
    })
}

/// Plans the creation of an endpoint (pure).
pub fn plan_create(w: &World, req: &EndpointRequest) -> Result<Plan, ApiError> {
    plan_create_endpoint(w, req).map(|(plan, _)| plan)
}

/// [`plan_create`], also returning the endpoint as it will be after the plan.
pub fn plan_create_endpoint(
    w: &World,
    req: &EndpointRequest,
) -> Result<(Plan, Endpoint), ApiError> {
    if req.endpoint_id.is_empty() || req.endpoint_id.len() > 128 || req.endpoint_id.contains('/') {
        return Err(ApiError::invalid_field(
            "endpointID",
            "is required: up to 128 characters, no '/'",
        ));
    }
    contiv_model::validate::check_name("host", &req.host, 256)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    if let Some(old) = w.get::<Endpoint>(&req.endpoint_id)? {
        if old.tenant_name == req.tenant
            && old.network_name == req.network
            && old.homing_host == req.host
        {
            // A retry is harmless; a retry that names the container (Docker tells the
            // agent only once the container runs) records the name.
            let mut plan = Plan::default();
            if !req.container_name.is_empty() && old.container_name != req.container_name {
                let mut named = old.clone();
                named.container_name = req.container_name.clone();
                plan.put(&named)?;
                return Ok((plan, named));
            }
            return Ok((plan, old));
        }
        return Err(ApiError::conflict(format!(
            "endpoint {} already exists on host {} in network {}",
            req.endpoint_id, old.homing_host, old.network
        )));
    }
    let net_key = format!("{}:{}", req.tenant, req.network);
    let net = w
        .get::<Network>(&net_key)?
        .ok_or_else(|| ApiError::not_found(format!("networks/{net_key}")).with_field("network"))?;
    if !req.group.is_empty() {
        let g = w
            .get::<EndpointGroup>(&format!("{}:{}", req.tenant, req.group))?
            .ok_or_else(|| {
                ApiError::not_found(format!("endpointGroups/{}:{}", req.tenant, req.group))
                    .with_field("group")
            })?;
        if g.network_name != req.network {
            return Err(ApiError::invalid_field(
                "group",
                format!(
                    "group {} belongs to network {}, not {}",
                    req.group, g.network_name, req.network
                ),
            ));
        }
    }
    let mut pool = pool_of(w, &net_key)?;
    let scope = scope_for(&pool, &req.group);
    let ip = if req.preferred_ip.is_empty() {
        pool.allocate(scope)
            .map_err(|e| ApiError::conflict(e.to_string()))?
    } else {
        let a: Ipv4Addr = req.preferred_ip.parse().map_err(|_| {
            ApiError::invalid_field(
                "preferredIp",
                format!("{:?} is not an IPv4 address", req.preferred_ip),
            )
        })?;
        pool.allocate_preferred(scope, a.into())
            .map_err(|e| ApiError::conflict(e.to_string()).with_field("preferredIp"))?;
        a.into()
    };
    let std::net::IpAddr::V4(ip) = ip else {
        return Err(ApiError::internal(format!(
            "network {net_key}'s IPv4 pool handed out {ip}"
        )));
    };
    let mut ips = vec![ip.to_string()];
    let mut pool6 = pool6_of(w, &net_key)?;
    if let Some(p6) = pool6.as_mut() {
        let scope6 = scope_for(p6, &req.group);
        ips.push(
            p6.allocate(scope6)
                .map_err(|e| ApiError::conflict(e.to_string()))?
                .to_string(),
        );
    }
    let groups = w
        .state::<std::collections::BTreeMap<String, u32>>("epg-ids")?
        .unwrap_or_default();
    let mut ep = Endpoint {
        endpoint_id: req.endpoint_id.clone(),
        container_id: req.container_id.clone(),
        container_name: req.container_name.clone(),
        network: if req.tenant == "default" {
            req.network.clone()
        } else {
            format!("{}.{}", req.network, req.tenant)
        },
        tenant_name: req.tenant.clone(),
        network_name: net.network_name.clone(),
        service_name: req.group.clone(),
        endpoint_group_id: i64::from(
            groups
                .get(&format!("{}:{}", req.tenant, req.group))
                .copied()
                .unwrap_or(0),
        ),
        ip_address: ips,
        mac_address: {
            let o = ip.octets();
            format!("02:02:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
        },
        homing_host: req.host.clone(),
        labels: req.labels.clone(),
        ..Default::default()
    };
    ep.set_key();
    let mut plan = Plan::default();
    plan.put_state(&ipam_state_key(&net_key), &pool.to_state())?;
    if let Some(p6) = pool6 {
        plan.put_state(&ipam6_key(&net_key), &p6.to_state())?;
    }
    plan.put(&ep)?;
    Ok((plan, ep))
}

/// Plans the removal of endpoints (pure); absent ones are skipped.
pub fn plan_remove(w: &World, ids: &[String]) -> Result<Plan, ApiError> {
    let mut plan = Plan::default();
    let mut pools: std::collections::BTreeMap<String, crate::ipam::Pool> = Default::default();
    for id in ids {
        let Some(ep) = w.get::<Endpoint>(id)? else {
            continue;
        };
        let net_key = format!("{}:{}", ep.tenant_name, ep.network_name);
        for ip in &ep.ip_address {
            let Ok(a) = ip.parse::<std::net::IpAddr>() else {
                continue;
            };
            let state_key = if a.is_ipv6() {
                ipam6_key(&net_key)
            } else {
                ipam_state_key(&net_key)
            };
            if !pools.contains_key(&state_key) {
                let pool = if a.is_ipv6() {
                    pool6_of(w, &net_key)?
                } else {
                    pool_of(w, &net_key).ok()
                };
                let Some(pool) = pool else { continue };
                pools.insert(state_key.clone(), pool);
            }
            if let Some(pool) = pools.get_mut(&state_key) {
                release_any(pool, a);
            }
        }
        plan.delete::<Endpoint>(id);
    }
    for (k, p) in pools {
        let st: PoolState = p.to_state();
        plan.put_state(&k, &st)?;
    }
    Ok(plan)
}

pub(super) async fn create(
    State(st): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| super::body_error(&e))?;
    let req: EndpointRequest = parse_body(&body)?;
    let r = req.clone();
    // What the committed plan wrote, for when the world has not caught up yet.
    let written = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = written.clone();
    st.engine
        .commit(move |w| {
            let (plan, ep) = plan_create_endpoint(w, &r)?;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(ep);
            Ok(plan)
        })
        .await?;
    let w = st.engine.world();
    let ep = match w.get::<Endpoint>(&req.endpoint_id)? {
        Some(ep) => ep,
        None => written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "endpoint {} vanished after its write",
                    req.endpoint_id
                ))
            })?,
    };
    Ok(json(StatusCode::OK, &allocation(&w, &ep)?))
}

pub(super) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if st.engine.world().get::<Endpoint>(&id)?.is_some() {
        st.engine
            .commit({
                let id = id.clone();
                move |w| plan_remove(w, std::slice::from_ref(&id))
            })
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes every endpoint homed on `host`; returns how many.
pub async fn collect_host(engine: &Engine, host: &str) -> Result<usize, ApiError> {
    let ids: Vec<String> = engine
        .world()
        .list::<Endpoint>()?
        .into_iter()
        .filter(|e| e.homing_host == host)
        .map(|e| e.endpoint_id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    engine
        .commit({
            let host = host.to_string();
            move |w| {
                let still: Vec<String> = w
                    .list::<Endpoint>()?
                    .into_iter()
                    .filter(|e| e.homing_host == host)
                    .map(|e| e.endpoint_id)
                    .collect();
                plan_remove(w, &still)
            }
        })
        .await?;
    Ok(ids.len())
}

pub(super) async fn collect(
    State(st): State<AppState>,
    Path(host): Path<String>,
) -> Result<Response, ApiError> {
    let n = collect_host(&st.engine, &host).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "host": host, "collected": n }),
    ))
}

/// The hosts whose endpoints should be collected: they have endpoints, and their last
/// report is older than `gc_after` seconds (or they never reported and their endpoints
/// are that old — approximated by the report being absent at two checks in a row by
/// the caller).
pub fn stale_hosts(w: &World, now: u64, gc_after: u64) -> Result<Vec<String>, ApiError> {
    let mut hosts: Vec<String> = w
        .list::<Endpoint>()?
        .into_iter()
        .map(|e| e.homing_host)
        .collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts
        .into_iter()
        .filter(|h| {
            let seen = w
                .oper(&format!("hosts/{h}"))
                .and_then(|r| r.get("lastSeen"))
                .and_then(|v| v.as_u64());
            match seen {
                Some(t) => now.saturating_sub(t) > gc_after,
                None => false,
            }
        })
        .collect())
}
