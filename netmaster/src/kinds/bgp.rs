//! `Bgp`: only in routing mode; the fabric's addresses stay apart from the networks'
//! subnets; the Oper view from the host's report.

use super::*;
use network::{fabric_addresses, nets_overlap};

/// The JSON field a neighbor address of `b` came from.
fn neighbor_field(b: &Bgp, addr: &ipnet::IpNet) -> String {
    let is = |s: &str| {
        s.parse::<std::net::IpAddr>()
            .is_ok_and(|a| ipnet::IpNet::from(a) == *addr)
    };
    if is(&b.neighbor) {
        return "neighbor".into();
    }
    b.neighbors
        .iter()
        .position(|n| is(&n.address))
        .map(|i| format!("neighbors[{i}].address"))
        .unwrap_or_else(|| "neighbors".into())
}

/// Refuses a `Bgp` object whose host–ToR subnet or neighbors overlap a network's subnet
/// (of any tenant): the containers' /32s would shadow the fabric's links.
fn networks_overlap(w: &World, b: &Bgp) -> Result<(), IntentError> {
    let nets = w.list::<Network>()?;
    for (i, (what, addr)) in fabric_addresses(b).into_iter().enumerate() {
        for n in &nets {
            let mut subnets = Vec::new();
            if let Ok(s) = parse_subnet("subnet", &n.subnet) {
                subnets.push((&n.subnet, ipnet::IpNet::V4(s.net)));
            }
            if let Ok(s) = n.ipv6_subnet.parse::<ipnet::Ipv6Net>() {
                subnets.push((&n.ipv6_subnet, ipnet::IpNet::V6(s)));
            }
            for (text, subnet) in subnets {
                if nets_overlap(&subnet, &addr) {
                    let field = if i == 0 {
                        "routerip".to_string()
                    } else {
                        neighbor_field(b, &addr)
                    };
                    return Err(IntentError::conflict(format!(
                        "{what} overlaps network {} of tenant {} ({text}): the fabric's \
                         addresses must stay apart from the containers' subnets",
                        n.network_name, n.tenant_name
                    ))
                    .with_field(field)
                    .with_object(format!("networks/{}", n.key())));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a router address another host already has: two hosts with one BGP router id
/// and one address on the fabric would take each other's sessions and routes.
fn router_ip_unique(w: &World, b: &Bgp) -> Result<(), IntentError> {
    let addr = |r: &str| r.parse::<ipnet::Ipv4Net>().ok().map(|n| n.addr());
    let Some(mine) = addr(&b.routerip) else {
        return Ok(());
    };
    for other in w.list::<Bgp>()? {
        if other.hostname != b.hostname && addr(&other.routerip) == Some(mine) {
            return Err(IntentError::conflict(format!(
                "router address {mine} is host {}'s already: each host needs its own \
                 (it is also the BGP router id)",
                other.hostname
            ))
            .with_field("routerip")
            .with_object(format!("Bgps/{}", other.hostname)));
        }
    }
    Ok(())
}

impl Rules for Bgp {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        let g = global(w)?;
        if g.network_infra_type.starts_with("aci") {
            return Err(IntentError::conflict(
                "Bgp configs are not supported in the ACI fabric mode",
            ));
        }
        if g.fwd_mode != "routing" {
            return Err(IntentError::conflict(
                "Bgp configs need the routing forwarding mode: netctl global set --fwd-mode routing",
            ));
        }
        networks_overlap(w, &new)?;
        router_ip_unique(w, &new)?;
        plan.put(&new)
    }
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        plan.delete::<Bgp>(&old.hostname);
        Ok(())
    }
    fn oper(w: &World, b: &Self) -> Result<serde_json::Value, IntentError> {
        let report = w.host_report(&b.hostname);
        let neighbors = report
            .as_ref()
            .map(|r| r.neighbors.as_slice())
            .unwrap_or_default();
        let status = neighbors
            .first()
            .and_then(|n| n.state.clone())
            .unwrap_or_default();
        let prefixes: Vec<&str> = report
            .iter()
            .flat_map(|r| &r.routes)
            .map(|r| r.prefix.as_str())
            .collect();
        Ok(json!({
            "neighborStatus": status,
            "adminStatus": if report.is_some() { "up" } else { "" },
            "numRoutes": prefixes.len(),
            "routes": prefixes,
            "neighbors": neighbors,
            "lastSeen": report.as_ref().map(|r| r.last_seen).unwrap_or(0),
            "bgpError": report.as_ref().and_then(|r| r.bgp_error.clone()),
            "policy": report.as_ref().and_then(|r| r.policy.clone()),
            "rejectedRoutes": report.as_ref().map(|r| r.rejected_routes.clone()).unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{IntentErrorKind, Kind};

    fn bgp(v: serde_json::Value) -> Bgp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_is_the_models_bgp_parse() {
        // An asdot AS is accepted here, and netplugin plans from the same parse.
        let asdot = bgp(
            json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "1.10",
            "neighbor": "10.1.1.254", "neighbor-as": "65001"}),
        );
        assert_eq!(Kind::validate(&asdot), Ok(()));
        assert_eq!(BgpSpec::parse(&asdot).unwrap().asn, 65546);
        // A neighbor given in both forms with different AS numbers is refused by name
        // (netplugin could not run it).
        let twice = bgp(
            json!({"hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001",
            "neighbors": [{"address": "10.1.1.254", "as": "65002"}]}),
        );
        let e = Kind::validate(&twice).unwrap_err();
        assert_eq!(e.kind, IntentErrorKind::Invalid);
        assert_eq!(e.field.as_deref(), Some("neighbors[0].as"));
    }
}
