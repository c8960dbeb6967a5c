//! The address pools of networks as stored state (`ipam/<network>`, `ipam6/<network>`),
//! shared by the network, service and endpoint rules.

use crate::ipam::{Pool, PoolState, Scope};

use super::{IntentError, World};

/// The state name of a network's IPv4 pool.
pub fn ipam_key(network_key: &str) -> String {
    format!("ipam/{network_key}")
}

/// The state name of a network's IPv6 pool.
pub fn ipam6_key(network_key: &str) -> String {
    format!("ipam6/{network_key}")
}

/// The IPv4 pool of a network.
pub fn pool_of(w: &World, network_key: &str) -> Result<Pool, IntentError> {
    let st = w
        .state::<PoolState>(&ipam_key(network_key))?
        .ok_or_else(|| IntentError::internal(format!("network {network_key} has no IPAM state")))?;
    Ok(Pool::from_state(&st)?)
}

/// The IPv6 pool of a network, when it has an IPv6 subnet.
pub fn pool6_of(w: &World, network_key: &str) -> Result<Option<Pool>, IntentError> {
    match w.state::<PoolState>(&ipam6_key(network_key))? {
        Some(st) => Ok(Some(Pool::from_state(&st)?)),
        None => Ok(None),
    }
}

/// Releases an address from whichever scope holds it; an address not held is ignored.
pub fn release_any(pool: &mut Pool, addr: std::net::IpAddr) {
    let group = pool.epg_of(addr).map(str::to_string);
    let scope = match &group {
        Some(g) => Scope::Epg(g),
        None => Scope::Network,
    };
    let _ = pool.release(scope, addr);
}

/// The scope a member of `group` allocates from: its group's pool when it has one.
pub fn scope_for<'a>(pool: &Pool, group: &'a str) -> Scope<'a> {
    if !group.is_empty() && pool.epg_pool(group).is_some() {
        Scope::Epg(group)
    } else {
        Scope::Network
    }
}
