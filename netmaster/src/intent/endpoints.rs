//! Endpoint planning: creating an endpoint allocates its address from its network's (or
//! group's) pool in the same plan as the endpoint object, so an address is never held
//! without its endpoint or handed out twice; removing one releases it. The plugin API
//! (`api::plugin`) and the collection of silent hosts call these.

use std::net::Ipv4Addr;

use contiv_model::{Endpoint, EndpointAllocation, EndpointGroup, EndpointRequest, Network, Object};

use super::pools::{ipam_key, ipam6_key, pool_of, pool6_of, release_any, scope_for};
use super::{Engine, IntentError, Plan, World};
use crate::ipam::PoolState;

/// The answer to a netplugin for `ep`: its address with the network's length, gateway
/// and tag.
pub fn allocation(w: &World, ep: &Endpoint) -> Result<EndpointAllocation, IntentError> {
    let net = w
        .get::<Network>(&format!("{}:{}", ep.tenant_name, ep.network_name))?
        .ok_or_else(|| {
            IntentError::not_found(format!("networks/{}:{}", ep.tenant_name, ep.network_name))
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
pub fn plan_create(w: &World, req: &EndpointRequest) -> Result<Plan, IntentError> {
    plan_create_endpoint(w, req).map(|(plan, _)| plan)
}

/// [`plan_create`], also returning the endpoint as it will be after the plan.
pub fn plan_create_endpoint(
    w: &World,
    req: &EndpointRequest,
) -> Result<(Plan, Endpoint), IntentError> {
    if req.endpoint_id.is_empty() || req.endpoint_id.len() > 128 || req.endpoint_id.contains('/') {
        return Err(IntentError::invalid_field(
            "endpointID",
            "is required: up to 128 characters, no '/'",
        ));
    }
    contiv_model::validate::check_name("host", &req.host, 256)?;
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
        return Err(IntentError::conflict(format!(
            "endpoint {} already exists on host {} in network {}",
            req.endpoint_id, old.homing_host, old.network
        )));
    }
    let net_key = format!("{}:{}", req.tenant, req.network);
    let net = w.get::<Network>(&net_key)?.ok_or_else(|| {
        IntentError::not_found(format!("networks/{net_key}")).with_field("network")
    })?;
    if !req.group.is_empty() {
        let g = w
            .get::<EndpointGroup>(&format!("{}:{}", req.tenant, req.group))?
            .ok_or_else(|| {
                IntentError::not_found(format!("endpointGroups/{}:{}", req.tenant, req.group))
                    .with_field("group")
            })?;
        if g.network_name != req.network {
            return Err(IntentError::invalid_field(
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
            .map_err(|e| IntentError::conflict(e.to_string()))?
    } else {
        let a: Ipv4Addr = req.preferred_ip.parse().map_err(|_| {
            IntentError::invalid_field(
                "preferredIp",
                format!("{:?} is not an IPv4 address", req.preferred_ip),
            )
        })?;
        pool.allocate_preferred(scope, a.into())
            .map_err(|e| IntentError::conflict(e.to_string()).with_field("preferredIp"))?;
        a.into()
    };
    let std::net::IpAddr::V4(ip) = ip else {
        return Err(IntentError::internal(format!(
            "network {net_key}'s IPv4 pool handed out {ip}"
        )));
    };
    let mut ips = vec![ip.to_string()];
    let mut pool6 = pool6_of(w, &net_key)?;
    if let Some(p6) = pool6.as_mut() {
        let scope6 = scope_for(p6, &req.group);
        ips.push(
            p6.allocate(scope6)
                .map_err(|e| IntentError::conflict(e.to_string()))?
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
    plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
    if let Some(p6) = pool6 {
        plan.put_state(&ipam6_key(&net_key), &p6.to_state())?;
    }
    plan.put(&ep)?;
    Ok((plan, ep))
}

/// Plans the removal of endpoints (pure); absent ones are skipped.
pub fn plan_remove(w: &World, ids: &[String]) -> Result<Plan, IntentError> {
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
                ipam_key(&net_key)
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

/// Removes every endpoint homed on `host`; returns how many.
pub async fn collect_host(engine: &Engine, host: &str) -> Result<usize, IntentError> {
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

/// The hosts whose endpoints should be collected: they have endpoints, and their last
/// report is older than `gc_after` seconds (or they never reported and their endpoints
/// are that old — approximated by the report being absent at two checks in a row by
/// the caller).
pub fn stale_hosts(w: &World, now: u64, gc_after: u64) -> Result<Vec<String>, IntentError> {
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
            let seen = w.host_report(h).map(|r| r.last_seen);
            match seen {
                Some(t) => now.saturating_sub(t) > gc_after,
                None => false,
            }
        })
        .collect())
}
