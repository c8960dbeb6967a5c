//! `global`: forwarding-mode changes, tag ranges, the Oper view.

use super::*;

impl Rules for Global {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        let nets = w.list::<Network>()?;
        if new.fwd_mode == "routing" && old.is_none_or(|o| o.fwd_mode != "routing") {
            let pairs = cross_tenant_overlaps(&nets);
            if !pairs.is_empty() {
                return Err(IntentError::conflict(format!(
                    "cannot switch to the routing mode: networks of different tenants overlap ({}); \
                     the routing mode routes every tenant in one table, so their subnets must not \
                     overlap: delete one network of each pair first",
                    pairs.join("; ")
                ))
                .with_field("fwdMode"));
            }
        }
        if let Some(old) = old {
            if old.fwd_mode != new.fwd_mode && !old.fwd_mode.is_empty() && !nets.is_empty() {
                let vlans = nets.iter().filter(|n| n.encap == "vlan").count();
                return Err(IntentError::conflict(format!(
                    "Unable to update forwarding mode due to existing {vlans} vlans and {} vxlans: delete the networks first",
                    nets.len() - vlans
                ))
                .with_field("fwdMode"));
            }
            if old.fwd_mode == "routing"
                && new.fwd_mode != "routing"
                && w.count(<Bgp as Object>::PLURAL) > 0
            {
                return Err(IntentError::conflict(
                    "cannot leave the routing mode while Bgp configs exist: please delete existing Bgp configs",
                )
                .with_field("fwdMode"));
            }
            if old.pvt_subnet != new.pvt_subnet && !nets.is_empty() {
                return Err(
                    IntentError::conflict("pvtSubnet cannot change while networks exist")
                        .with_field("pvtSubnet"),
                );
            }
            let t = tags(w)?;
            for (encap, set, field) in [("vlan", &t.vlan, "vlans"), ("vxlan", &t.vxlan, "vxlans")] {
                let (lo, hi) = tag_range(&new, encap)?;
                if let Some(r) = set
                    .ranges()
                    .find(|r| u32::from(r.first) < lo || u32::from(r.last) > hi)
                {
                    let (a, b) = (u32::from(r.first), u32::from(r.last));
                    return Err(IntentError::conflict(format!(
                        "the new {field} range {lo}-{hi} leaves out tags in use ({a}-{b})"
                    ))
                    .with_field(field));
                }
            }
        }
        plan.put(&new)
    }
    fn delete(_: &World, _: &Self, _: &mut Plan) -> Result<(), IntentError> {
        Err(IntentError::conflict(
            "the global object cannot be deleted; change it with netctl global set",
        ))
    }
    fn oper(w: &World, g: &Self) -> Result<serde_json::Value, IntentError> {
        let t = tags(w)?;
        let tenant = w.get::<Tenant>("default")?;
        Ok(json!({
            "numNetworks": w.count(<Network as Object>::PLURAL),
            "vlansInUse": t.vlan.ranges().map(|r| tag_str(&r)).collect::<Vec<_>>().join(", "),
            "vxlansInUse": t.vxlan.ranges().map(|r| tag_str(&r)).collect::<Vec<_>>().join(", "),
            "defaultNetwork": tenant.map(|t| t.default_network).unwrap_or_default(),
            "clusterMode": "docker",
            "fwdMode": g.fwd_mode,
        }))
    }
}

/// Pairs of networks of different tenants whose subnets overlap, as
/// `t1:n1 (subnet) and t2:n2 (subnet)`.
fn cross_tenant_overlaps(nets: &[Network]) -> Vec<String> {
    let subnet = |n: &Network| -> Vec<ipnet::IpNet> {
        let mut v = Vec::new();
        if let Ok(s) = parse_subnet("subnet", &n.subnet) {
            v.push(ipnet::IpNet::V4(s.net));
        }
        if let Ok(s) = n.ipv6_subnet.parse::<ipnet::Ipv6Net>() {
            v.push(ipnet::IpNet::V6(s));
        }
        v
    };
    let mut out = Vec::new();
    for (i, a) in nets.iter().enumerate() {
        for b in nets[i + 1..]
            .iter()
            .filter(|b| b.tenant_name != a.tenant_name)
        {
            let (sa, sb) = (subnet(a), subnet(b));
            if sa
                .iter()
                .any(|x| sb.iter().any(|y| network::nets_overlap(x, y)))
            {
                out.push(format!(
                    "{} ({}) and {} ({})",
                    a.key(),
                    a.subnet,
                    b.key(),
                    b.subnet
                ));
            }
        }
    }
    out
}

fn tag_str(r: &crate::tags::Range) -> String {
    let (a, b) = (u32::from(r.first), u32::from(r.last));
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}
