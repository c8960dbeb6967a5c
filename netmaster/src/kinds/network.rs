//! `network`: subnets that must not overlap (within a tenant; across tenants in the
//! routing mode; never with the fabric's own addresses), tags, IPAM state, dependents.

use super::*;

/// In the routing mode every tenant's networks are routed in one table (the hosts' and
/// the ToRs'), so a subnet must not overlap another tenant's. The VXLAN bridge mode,
/// when it comes, gives each tenant its own forwarding and may allow it.
fn other_tenants_overlap(
    w: &World,
    new: &Network,
    net: &ipnet::Ipv4Net,
) -> Result<(), IntentError> {
    let why = "in the routing mode the networks of every tenant are routed in one table, so \
               their subnets must not overlap (the VXLAN bridge mode will allow it)";
    for other in w
        .list::<Network>()?
        .iter()
        .filter(|n| n.tenant_name != new.tenant_name)
    {
        if let Ok(o) = parse_subnet("subnet", &other.subnet)
            && contiv_model::validate::subnets_overlap(&o.net, net)
        {
            return Err(IntentError::conflict(format!(
                "subnet {} overlaps network {} of tenant {} ({}): {why}",
                new.subnet, other.network_name, other.tenant_name, other.subnet
            ))
            .with_field("subnet")
            .with_object(format!("networks/{}", other.key())));
        }
        if let (Ok(a), Ok(b)) = (
            new.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
            other.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
        ) && (a.contains(&b.network()) || b.contains(&a.network()))
        {
            return Err(IntentError::conflict(format!(
                "ipv6Subnet {} overlaps network {} of tenant {} ({}): {why}",
                new.ipv6_subnet, other.network_name, other.tenant_name, other.ipv6_subnet
            ))
            .with_field("ipv6Subnet")
            .with_object(format!("networks/{}", other.key())));
        }
    }
    Ok(())
}

/// The fabric's own addresses, per `Bgp` object: the host–ToR subnet of its `routerip`
/// and its neighbors' addresses. Containers must not get them: their /32s would shadow
/// the fabric's links.
pub(super) fn fabric_addresses(b: &Bgp) -> Vec<(String, ipnet::IpNet)> {
    let Ok(spec) = BgpSpec::parse(b) else {
        return Vec::new();
    };
    let link = spec.router_net.trunc();
    let mut out = vec![(
        format!(
            "host {}'s routerip subnet {link} (its link to the ToR)",
            b.hostname
        ),
        ipnet::IpNet::V4(link),
    )];
    for n in &spec.neighbors {
        out.push((
            format!("host {}'s BGP neighbor {}", b.hostname, n.address),
            ipnet::IpNet::from(n.address),
        ));
    }
    out
}

/// Whether two prefixes share an address.
pub(super) fn nets_overlap(a: &ipnet::IpNet, b: &ipnet::IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn fabric_overlap(w: &World, new: &Network, net: &ipnet::Ipv4Net) -> Result<(), IntentError> {
    let v6 = new.ipv6_subnet.parse::<ipnet::Ipv6Net>().ok();
    for b in w.list::<Bgp>()? {
        for (what, addr) in fabric_addresses(&b) {
            let (field, mine, subnet) = match addr {
                ipnet::IpNet::V4(_) => ("subnet", ipnet::IpNet::V4(*net), &new.subnet),
                ipnet::IpNet::V6(_) => match v6 {
                    Some(n) => ("ipv6Subnet", ipnet::IpNet::V6(n), &new.ipv6_subnet),
                    None => continue,
                },
            };
            if nets_overlap(&mine, &addr) {
                return Err(IntentError::conflict(format!(
                    "{field} {subnet} overlaps the fabric: {what}; pick a subnet apart from \
                     the hosts' and routers' addresses"
                ))
                .with_field(field)
                .with_object(format!("Bgps/{}", b.hostname)));
            }
        }
    }
    Ok(())
}

impl Rules for Network {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        if let Some(o) = old {
            let mut same = new.clone();
            // A pktTag of 0 asked for an automatic tag; the stored one is what was chosen.
            if same.pkt_tag == 0 {
                same.pkt_tag = o.pkt_tag;
            }
            if &same == o {
                return Ok(());
            }
            return Err(IntentError::conflict(format!(
                "Cant change network parameters after its created: delete network {} and create it again",
                new.key()
            ))
            .with_object(format!("networks/{}", new.key())));
        }
        tenant_exists(w, &new.tenant_name)?;
        let g = global(w)?;
        if g.fwd_mode.is_empty() {
            return Err(IntentError::conflict(
                "set the forwarding mode first: netctl global set --fwd-mode routing (or bridge)",
            ));
        }
        if w.list::<EndpointGroup>()?
            .iter()
            .any(|e| e.tenant_name == new.tenant_name && e.group_name == new.network_name)
        {
            return Err(IntentError::conflict(format!(
                "an endpoint group named {} exists in tenant {}; networks and groups share names",
                new.network_name, new.tenant_name
            ))
            .with_field("networkName"));
        }
        let spec = parse_subnet("subnet", &new.subnet).map_err(IntentError::from)?;
        for other in w
            .list::<Network>()?
            .iter()
            .filter(|n| n.tenant_name == new.tenant_name)
        {
            if let Ok(o) = parse_subnet("subnet", &other.subnet)
                && contiv_model::validate::subnets_overlap(&o.net, &spec.net)
            {
                return Err(IntentError::conflict(format!(
                    "subnet {} overlaps network {}'s subnet {}",
                    new.subnet, other.network_name, other.subnet
                ))
                .with_field("subnet"));
            }
            if !new.ipv6_subnet.is_empty()
                && let (Ok(a), Ok(b)) = (
                    new.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
                    other.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
                )
                && (a.contains(&b.network()) || b.contains(&a.network()))
            {
                return Err(IntentError::conflict(format!(
                    "ipv6Subnet {} overlaps network {}'s {}",
                    new.ipv6_subnet, other.network_name, other.ipv6_subnet
                ))
                .with_field("ipv6Subnet"));
            }
        }
        if g.fwd_mode == "routing" {
            other_tenants_overlap(w, &new, &spec.net)?;
        }
        fabric_overlap(w, &new, &spec.net)?;
        let mut net = new;
        let mut t = tags(w)?;
        let (lo, hi) = tag_range(&g, &net.encap)?;
        let set = t.set(&net.encap);
        let tag = if net.pkt_tag == 0 {
            set.first_free(lo, hi, |_| None).ok_or_else(|| {
                IntentError::conflict(format!("no free {} tag in {lo}-{hi}", net.encap))
                    .with_field("pktTag")
            })?
        } else {
            let tag = net.pkt_tag as u32;
            if tag < lo || tag > hi {
                return Err(IntentError::invalid_field(
                    "pktTag",
                    format!(
                        "{tag} is outside the {} range {lo}-{hi} (netctl global set changes it)",
                        net.encap
                    ),
                ));
            }
            if set.contains(tag) {
                let user = w
                    .list::<Network>()?
                    .into_iter()
                    .find(|n| n.encap == net.encap && n.pkt_tag == i64::from(tag))
                    .map(|n| n.key())
                    .unwrap_or_default();
                return Err(IntentError::conflict(format!(
                    "{} tag {tag} is used by network {user}",
                    net.encap
                ))
                .with_field("pktTag"));
            }
            tag
        };
        set.insert(tag);
        net.pkt_tag = i64::from(tag);
        let gw = if net.gateway.is_empty() {
            None
        } else {
            net.gateway.parse::<std::net::IpAddr>().ok()
        };
        let spec4: SubnetSpec = net
            .subnet
            .parse()
            .map_err(|e: IpamError| IntentError::invalid_field("subnet", e.to_string()))?;
        let pool = Pool::new(net.key(), spec4, gw)
            .map_err(|e| IntentError::invalid_field("gateway", e.to_string()))?;
        plan.put_state(TAGS, &t)?;
        plan.put_state(&ipam_key(&net.key()), &pool.to_state())?;
        if !net.ipv6_subnet.is_empty() {
            let spec6: SubnetSpec = net
                .ipv6_subnet
                .parse()
                .map_err(|e: IpamError| IntentError::invalid_field("ipv6Subnet", e.to_string()))?;
            let gw6 = if net.ipv6_gateway.is_empty() {
                None
            } else {
                net.ipv6_gateway.parse::<std::net::IpAddr>().ok()
            };
            let pool6 = Pool::new(net.key(), spec6, gw6)
                .map_err(|e| IntentError::invalid_field("ipv6Gateway", e.to_string()))?;
            plan.put_state(&ipam6_key(&net.key()), &pool6.to_state())?;
        }
        let _ = spec;
        plan.put(&net)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        let k = old.key();
        policy::refuse_if_rules_name(
            w,
            policy::RulePeer::Network,
            &old.tenant_name,
            &old.network_name,
        )?;
        let groups: Vec<String> = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.network_name == old.network_name)
            .map(|e| e.group_name)
            .collect();
        if !groups.is_empty() {
            return Err(IntentError::conflict(format!(
                "network {k} still has endpoint groups {}; delete them first",
                groups.join(", ")
            )));
        }
        let svcs = w
            .list::<ServiceLb>()?
            .into_iter()
            .filter(|s| s.tenant_name == old.tenant_name && s.network_name == old.network_name)
            .count();
        if svcs > 0 {
            return Err(IntentError::conflict(format!(
                "network {k} still has {svcs} services; delete them first"
            )));
        }
        let eps = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.network_name == old.network_name)
            .count();
        if eps > 0 {
            return Err(IntentError::conflict(format!(
                "network {k} still has {eps} active endpoints; remove the containers first (or collect a dead host's endpoints)"
            )));
        }
        let mut t = tags(w)?;
        let set = t.set(&old.encap);
        let tag = old.pkt_tag as u32;
        if set.contains(tag) {
            set.remove(tag);
        }
        plan.put_state(TAGS, &t)?;
        plan.delete_state(&ipam_key(&k));
        if pool6_of(w, &k)?.is_some() {
            plan.delete_state(&ipam6_key(&k));
        }
        plan.delete::<Network>(&k);
        Ok(())
    }
    fn oper(w: &World, n: &Self) -> Result<serde_json::Value, IntentError> {
        let pool = pool_of(w, &n.key())?;
        let eps: Vec<String> = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == n.tenant_name && e.network_name == n.network_name)
            .map(|e| e.endpoint_id)
            .collect();
        Ok(json!({
            "pktTag": n.pkt_tag,
            "externalPktTag": n.pkt_tag,
            "numEndpoints": eps.len(),
            "endpoints": eps,
            "allocatedAddressesCount": pool.counts_all().used as u64,
            "allocatedIPAddresses": pool.allocated_addresses_all(),
            "availableIPAddresses": pool.available_addresses(Scope::Network).map_err(IntentError::from)?,
            "utilisation": pool.counts_all().utilisation(),
            "networkTag": n.cfgd_tag,
        }))
    }
}
