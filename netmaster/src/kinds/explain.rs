//! `policy explain`: what the policy decides for a new connection between two ends, and
//! why, computed from the intent with the model's one copy of the policy semantics
//! ([`contiv_model::policy`]), so the answer is what netplugin enforces. Pure: the API's
//! handler (`api::explain`) only parses the query and renders the answer.
//!
//! An end is an endpoint (by container name, endpoint id or a prefix of it, container
//! id) or an address that may or may not be an endpoint's. The rules of an end are those
//! of every policy of its endpoint's group, in [`policy::order`]; an address that is no
//! endpoint's has none (and no tenant).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use contiv_model::policy::{self, Flow, Resolve, RuleSpec, Side};
use contiv_model::{Endpoint, EndpointGroup, ExplainEnd, Network, Object, PolicyExplain, Rule};
use ipnet::IpNet;

use crate::intent::{IntentError, IntentErrorKind, World};

/// [`Resolve`] over the intent: a group's members are the addresses of its endpoints, a
/// network is its subnet, and an address belongs to the tenant whose network's subnet
/// holds it (the first in key order, should subnets of tenants overlap: only the
/// routing mode forbids that).
#[derive(Debug, Clone, Default)]
pub struct IntentResolve {
    groups: BTreeMap<(String, String), BTreeSet<IpAddr>>,
    nets: BTreeMap<(String, String), Vec<IpNet>>,
}

impl IntentResolve {
    pub fn new(w: &World) -> Result<IntentResolve, IntentError> {
        let mut r = IntentResolve::default();
        for e in w.list::<Endpoint>()? {
            if e.service_name.is_empty() {
                continue;
            }
            r.groups
                .entry((e.tenant_name.clone(), e.service_name.clone()))
                .or_default()
                .extend(addresses(&e));
        }
        for n in w.list::<Network>()? {
            let mut subnets = Vec::new();
            if let Some(s) = contiv_model::validate::subnet_net(&n.subnet) {
                subnets.push(s);
            }
            if let Ok(s) = n.ipv6_subnet.parse::<ipnet::Ipv6Net>() {
                subnets.push(IpNet::V6(s.trunc()));
            }
            r.nets.insert((n.tenant_name, n.network_name), subnets);
        }
        Ok(r)
    }
}

impl Resolve for IntentResolve {
    fn in_group(&self, tenant: &str, group: &str, ip: IpAddr) -> bool {
        self.groups
            .get(&(tenant.to_string(), group.to_string()))
            .is_some_and(|s| s.contains(&ip))
    }
    fn network_subnet(&self, tenant: &str, network: &str) -> Option<IpNet> {
        self.nets
            .get(&(tenant.to_string(), network.to_string()))
            .and_then(|v| v.first().copied())
    }
    fn tenant_of(&self, ip: IpAddr) -> Option<String> {
        self.nets
            .iter()
            .find(|(_, subnets)| subnets.iter().any(|s| s.contains(&ip)))
            .map(|((t, _), _)| t.clone())
    }
}

fn addresses(e: &Endpoint) -> impl Iterator<Item = IpAddr> + '_ {
    e.ip_address.iter().filter_map(|a| {
        a.parse::<IpAddr>()
            .ok()
            .or_else(|| a.parse::<IpNet>().ok().map(|n| n.addr()))
    })
}

/// One end as asked for: an endpoint, or an address that is no endpoint's.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Endpoint(Box<Endpoint>),
    Address(IpAddr),
}

fn describe(e: &Endpoint) -> String {
    format!(
        "{} (container {:?}, {}/{}, {}, host {})",
        e.endpoint_id,
        e.container_name,
        e.tenant_name,
        e.network_name,
        e.ip_address.join(" "),
        e.homing_host
    )
}

fn ambiguous(field: &str, q: &str, found: &[Endpoint]) -> IntentError {
    IntentError::invalid_field(
        field,
        format!(
            "{q:?} matches {} endpoints: {}; give the endpoint id or the address",
            found.len(),
            found.iter().map(describe).collect::<Vec<_>>().join("; ")
        ),
    )
}

/// Finds the end `q` names; `field` (`from`, `to`) is named in refusals.
fn find_end(eps: &[Endpoint], field: &str, q: &str) -> Result<End, IntentError> {
    if q.is_empty() {
        return Err(IntentError::invalid_field(
            field,
            "is required: a container name, an endpoint id, a container id or an address",
        ));
    }
    if let Ok(ip) = q.parse::<IpAddr>() {
        let found: Vec<Endpoint> = eps
            .iter()
            .filter(|e| addresses(e).any(|a| a == ip))
            .cloned()
            .collect();
        return match found.as_slice() {
            [] => Ok(End::Address(ip)),
            [e] => Ok(End::Endpoint(Box::new(e.clone()))),
            _ => Err(ambiguous(field, q, &found)),
        };
    }
    let exact: Vec<Endpoint> = eps
        .iter()
        .filter(|e| e.endpoint_id == q || e.container_name == q || e.container_id == q)
        .cloned()
        .collect();
    let found = if exact.is_empty() {
        eps.iter()
            .filter(|e| e.endpoint_id.starts_with(q) || e.container_id.starts_with(q))
            .cloned()
            .collect()
    } else {
        exact
    };
    match found.as_slice() {
        [e] => Ok(End::Endpoint(Box::new(e.clone()))),
        [] => Err(IntentError::new(
            IntentErrorKind::NotFound,
            format!(
                "no endpoint has the container name, endpoint id or container id {q:?}, \
                 and it is not an IP address"
            ),
        )
        .with_field(field)),
        _ => Err(ambiguous(field, q, &found)),
    }
}

/// What the policies of one endpoint group hold.
#[derive(Debug, Clone, Default)]
pub struct GroupRules {
    /// The group's policies.
    pub policies: Vec<String>,
    /// Their rules, in the order they are tried ([`policy::order`]).
    pub ordered: Vec<RuleSpec>,
    /// The stored rules, by key.
    pub objects: BTreeMap<String, Rule>,
}

/// The rules of the policies of `tenant:group` (none when the group does not exist).
pub fn group_rules(w: &World, tenant: &str, group: &str) -> Result<GroupRules, IntentError> {
    let Some(g) = w.get::<EndpointGroup>(&format!("{tenant}:{group}"))? else {
        return Ok(GroupRules::default());
    };
    let mut out = GroupRules::default();
    for r in w
        .list::<Rule>()?
        .into_iter()
        .filter(|r| r.tenant_name == tenant && g.policies.contains(&r.policy_name))
    {
        let spec = RuleSpec::parse(&r).map_err(|e| {
            IntentError::internal(format!("stored rule {} does not parse: {e}", r.key()))
        })?;
        out.objects.insert(r.key(), r);
        out.ordered.push(spec);
    }
    policy::order(&mut out.ordered);
    out.policies = g.policies;
    Ok(out)
}

/// Explains a new connection from `from` to `to` for `service` (`tcp/80`, `udp/53`,
/// `icmp`, `tcp`, a protocol number).
pub fn explain(
    w: &World,
    from: &str,
    to: &str,
    service: &str,
) -> Result<PolicyExplain, IntentError> {
    if service.is_empty() {
        return Err(IntentError::invalid_field(
            "service",
            "is required: tcp/<port>, udp/<port>, icmp, tcp, udp or a protocol number",
        ));
    }
    let (protocol, port) =
        policy::parse_service(service).map_err(|e| IntentError::invalid_field("service", e))?;
    let eps = w.list::<Endpoint>()?;
    let src = find_end(&eps, "from", from)?;
    let dst = find_end(&eps, "to", to)?;
    let (src_ip, dst_ip) = pick_addresses(&src, &dst)?;
    let resolve = IntentResolve::new(w)?;
    let mut rules = BTreeMap::new();
    let mut side =
        |end: &End, query: &str, address: IpAddr| -> Result<(Side, ExplainEnd), IntentError> {
            let mut out = ExplainEnd {
                query: query.to_string(),
                address: address.to_string(),
                ..ExplainEnd::default()
            };
            let End::Endpoint(e) = end else {
                return Ok((Side::default(), out));
            };
            let g = if e.service_name.is_empty() {
                GroupRules::default()
            } else {
                group_rules(w, &e.tenant_name, &e.service_name)?
            };
            rules.extend(g.objects);
            out.endpoint_id = Some(e.endpoint_id.clone());
            out.container_name = e.container_name.clone();
            out.tenant = Some(e.tenant_name.clone());
            out.network = e.network_name.clone();
            out.group = e.service_name.clone();
            out.host = e.homing_host.clone();
            out.policies = g.policies;
            out.rules = g.ordered.len();
            Ok((
                Side {
                    tenant: Some(e.tenant_name.clone()),
                    rules: g.ordered,
                },
                out,
            ))
        };
    let (src_side, from_end) = side(&src, from, src_ip)?;
    let (dst_side, to_end) = side(&dst, to, dst_ip)?;
    let flow = Flow {
        src: src_ip,
        dst: dst_ip,
        protocol,
        port,
    };
    let decision = policy::decide(&flow, &src_side, &dst_side, &resolve);
    let rule = |key: &Option<String>| key.as_ref().and_then(|k| rules.get(k).cloned());
    Ok(PolicyExplain {
        service: service.to_string(),
        protocol,
        port,
        from: from_end,
        to: to_end,
        egress_rule: rule(&decision.egress.rule),
        ingress_rule: rule(&decision.ingress.rule),
        decision,
        revision: w.revision,
    })
}

/// The addresses of the flow: an endpoint's of the other end's family (IPv4 when both
/// are endpoints).
fn pick_addresses(src: &End, dst: &End) -> Result<(IpAddr, IpAddr), IntentError> {
    let of = |end: &End, v6: bool, field: &str| -> Result<IpAddr, IntentError> {
        match end {
            End::Address(a) if a.is_ipv6() == v6 => Ok(*a),
            End::Address(a) => Err(IntentError::invalid_field(
                field,
                format!(
                    "{a} is IPv{}, the other end is IPv{}",
                    if a.is_ipv6() { 6 } else { 4 },
                    if v6 { 6 } else { 4 }
                ),
            )),
            End::Endpoint(e) => addresses(e).find(|a| a.is_ipv6() == v6).ok_or_else(|| {
                IntentError::invalid_field(
                    field,
                    format!(
                        "endpoint {} has no IPv{} address",
                        e.endpoint_id,
                        if v6 { 6 } else { 4 }
                    ),
                )
            }),
        }
    };
    let v6 = match (src, dst) {
        (End::Address(a), _) | (_, End::Address(a)) => a.is_ipv6(),
        _ => false,
    };
    Ok((of(src, v6, "from")?, of(dst, v6, "to")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::Plan;
    use contiv_model::policy::Action;
    use contiv_model::{Policy, Tenant};
    use serde_json::json;

    /// A world with the objects given as JSON, written as one plan.
    fn world(objects: Vec<(&str, serde_json::Value)>) -> World {
        let mut w = World::default();
        let mut plan = Plan::default();
        for (plural, v) in objects {
            let key = match plural {
                "tenants" => serde_json::from_value::<Tenant>(v.clone()).unwrap().key(),
                "networks" => serde_json::from_value::<Network>(v.clone()).unwrap().key(),
                "endpointGroups" => serde_json::from_value::<EndpointGroup>(v.clone())
                    .unwrap()
                    .key(),
                "policys" => serde_json::from_value::<Policy>(v.clone()).unwrap().key(),
                "rules" => serde_json::from_value::<Rule>(v.clone()).unwrap().key(),
                "endpoints" => serde_json::from_value::<Endpoint>(v.clone()).unwrap().key(),
                other => panic!("{other}"),
            };
            plan.writes.push(crate::intent::Write::PutObject {
                plural: plural.into(),
                key,
                value: v,
            });
        }
        w.apply(&plan, 7);
        w
    }

    fn ep(
        id: &str,
        name: &str,
        tenant: &str,
        net: &str,
        group: &str,
        ip: &str,
        host: &str,
    ) -> (&'static str, serde_json::Value) {
        (
            "endpoints",
            json!({"endpointID": id, "containerName": name, "network": net, "tenantName": tenant,
                   "networkName": net, "serviceName": group, "ipAddress": [ip], "homingHost": host}),
        )
    }

    fn rule(id: &str, extra: serde_json::Value) -> (&'static str, serde_json::Value) {
        let mut r = json!({"tenantName": "default", "policyName": "prod_web", "ruleId": id,
                           "direction": "in", "protocol": "tcp", "action": "allow"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        ("rules", r)
    }

    /// The seed walkthrough: prod_web denies tcp in, allows 80 and 443 at priority 10,
    /// on group web; c1 (no group) connects to web1.
    fn walkthrough() -> World {
        world(vec![
            ("tenants", json!({"tenantName": "default"})),
            ("tenants", json!({"tenantName": "blue"})),
            (
                "networks",
                json!({"tenantName": "default", "networkName": "contiv-net", "subnet": "10.1.1.0/24", "encap": "vxlan"}),
            ),
            (
                "networks",
                json!({"tenantName": "blue", "networkName": "blue-net", "subnet": "10.2.1.0/24", "encap": "vxlan"}),
            ),
            (
                "policys",
                json!({"tenantName": "default", "policyName": "prod_web"}),
            ),
            rule("1", json!({"action": "deny"})),
            rule("2", json!({"port": 80, "priority": 10})),
            rule("3", json!({"port": 443, "priority": 10})),
            (
                "endpointGroups",
                json!({"tenantName": "default", "groupName": "web", "networkName": "contiv-net", "policies": ["prod_web"]}),
            ),
            ep(
                "e-web1",
                "web1",
                "default",
                "contiv-net",
                "web",
                "10.1.1.2",
                "h2",
            ),
            ep("e-c1", "c1", "default", "contiv-net", "", "10.1.1.3", "h1"),
            ep("e-b1", "b1", "blue", "blue-net", "", "10.2.1.2", "h3"),
            ep(
                "e-dup1",
                "dup",
                "default",
                "contiv-net",
                "",
                "10.1.1.4",
                "h1",
            ),
            ep("e-dup2", "dup", "blue", "blue-net", "", "10.2.1.3", "h1"),
        ])
    }

    #[test]
    fn the_walkthrough_denies_8080_and_allows_80_and_443() {
        let w = walkthrough();
        let x = explain(&w, "c1", "web1", "tcp/8080").unwrap();
        assert_eq!(x.decision.action, Action::Deny);
        assert_eq!(x.decision.egress.reason, "no-policy");
        assert_eq!(
            x.decision.ingress.rule.as_deref(),
            Some("default:prod_web:1")
        );
        assert_eq!(x.ingress_rule.as_ref().unwrap().action, "deny");
        assert_eq!(x.egress_rule, None);
        assert_eq!(x.from.address, "10.1.1.3");
        assert_eq!(x.from.group, "");
        assert_eq!(x.to.endpoint_id.as_deref(), Some("e-web1"));
        assert_eq!((x.to.group.as_str(), x.to.host.as_str()), ("web", "h2"));
        assert_eq!(x.to.policies, ["prod_web"]);
        assert_eq!(x.to.rules, 3);
        assert_eq!(x.revision, 7);
        for port in ["80", "443"] {
            let x = explain(&w, "e-c1", "10.1.1.2", &format!("tcp/{port}")).unwrap();
            assert_eq!(x.decision.action, Action::Allow, "{port}");
            assert_eq!(x.ingress_rule.unwrap().port.to_string(), port);
        }
        // Not tcp: no rule matches, the default allows.
        let x = explain(&w, "c1", "web1", "icmp").unwrap();
        assert_eq!(
            (x.decision.action, x.decision.ingress.reason.as_str()),
            (Action::Allow, "default")
        );
        // web1 connecting out: no out rule.
        let x = explain(&w, "web1", "c1", "tcp/22").unwrap();
        assert_eq!(x.decision.action, Action::Allow);
        assert_eq!(x.decision.ingress.reason, "no-policy");
    }

    #[test]
    fn tenants_are_isolated_and_outsiders_meet_the_rules() {
        let w = walkthrough();
        let x = explain(&w, "b1", "c1", "tcp/22").unwrap();
        assert_eq!(
            (x.decision.action, x.decision.ingress.reason.as_str()),
            (Action::Deny, "tenant-isolation")
        );
        assert_eq!(x.from.tenant.as_deref(), Some("blue"));
        // An address that is no endpoint's: no tenant, no rules; the receiver's rules decide.
        let x = explain(&w, "198.51.100.7", "web1", "tcp/8080").unwrap();
        assert_eq!(x.from.endpoint_id, None);
        assert_eq!(x.from.tenant, None);
        assert_eq!(
            x.decision.ingress.rule.as_deref(),
            Some("default:prod_web:1")
        );
        let x = explain(&w, "web1", "198.51.100.7", "udp/53").unwrap();
        assert_eq!(
            (x.decision.action, x.decision.ingress.reason.as_str()),
            (Action::Allow, "no-policy")
        );
    }

    #[test]
    fn bad_queries_name_the_field() {
        let w = walkthrough();
        let e = explain(&w, "dup", "web1", "tcp/80").unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (IntentErrorKind::Invalid, Some("from"))
        );
        assert!(
            e.message.contains("e-dup1") && e.message.contains("e-dup2"),
            "{}",
            e.message
        );
        let e = explain(&w, "c1", "nosuch", "tcp/80").unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (IntentErrorKind::NotFound, Some("to"))
        );
        let e = explain(&w, "c1", "web1", "tcp/0").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("service"));
        let e = explain(&w, "c1", "web1", "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("service"));
        let e = explain(&w, "", "web1", "icmp").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
        let e = explain(&w, "c1", "2001:db8::1", "icmp").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
        // A unique prefix of an endpoint id is enough.
        assert_eq!(
            explain(&w, "e-c", "web1", "icmp")
                .unwrap()
                .from
                .endpoint_id
                .as_deref(),
            Some("e-c1")
        );
    }

    #[test]
    fn resolve_reads_groups_networks_and_tenants() {
        let w = walkthrough();
        let r = IntentResolve::new(&w).unwrap();
        assert!(r.in_group("default", "web", "10.1.1.2".parse().unwrap()));
        assert!(!r.in_group("default", "web", "10.1.1.3".parse().unwrap()));
        assert_eq!(
            r.network_subnet("blue", "blue-net"),
            Some("10.2.1.0/24".parse().unwrap())
        );
        assert_eq!(
            r.tenant_of("10.2.1.99".parse().unwrap()).as_deref(),
            Some("blue")
        );
        assert_eq!(r.tenant_of("192.0.2.1".parse().unwrap()), None);
    }
}
