//! Contiv's policy semantics, once: what a rule matches, in which order rules are
//! tried, and what decides a flow between two addresses. netplugin compiles these into
//! its nftables ruleset, netmaster answers `policy explain` with them: the rules of
//! the semantics have no second copy (each side only resolves groups, networks and
//! tenants against its own view of the intent, through [`Resolve`]).
//!
//! The model (Contiv's, made stateful):
//! - A rule belongs to a policy; endpoint groups list policies. A rule's direction is
//!   seen from the container: `in` rules judge connections *to* the group's endpoints
//!   (matching the source: a group, a network's subnet or an IP prefix), `out` rules
//!   connections *from* them (matching the destination).
//! - Rules are tried by priority, highest first (1..100; 0 is stored as 1). At equal
//!   priority a deny is tried before an allow, then rule ids in natural order, so the
//!   order never depends on how the rules were stored.
//! - The first rule that matches decides; no match allows (Contiv's default).
//! - Rules judge *new connections* only: packets of a connection that was allowed, and
//!   its replies, pass (conntrack). A rule change applies to new connections;
//!   connections already established keep running until they end.
//! - Tenants are isolated: a connection from an address of another tenant's network is
//!   judged only by the receiver's `in` rules that name an IP prefix (`fromIpAddress`):
//!   the first of those that matches decides, and when none does it is denied. A rule
//!   without a source (or naming a group or network, which are the tenant's own) never
//!   opens a group to other tenants.
//! - `in` rules hold for every source, inside the fabric or outside it: they are
//!   enforced on the receiving endpoint's host; `out` rules on the sending endpoint's host.

use std::cmp::Ordering;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::objects::Rule;
use crate::validate::{Validate, ValidationError};

/// IP protocol numbers of the names rules use.
pub const ICMP: u8 = 1;
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

/// The other side of a connection a rule names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Any,
    /// An endpoint group of the rule's tenant: the addresses of its endpoints.
    Group(String),
    /// A network of the rule's tenant: its subnet.
    Network(String),
    Prefix(IpNet),
}

/// One rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    pub tenant: String,
    pub policy: String,
    pub rule_id: String,
    pub direction: Direction,
    /// 1..=100, higher first.
    pub priority: u8,
    pub action: Action,
    /// `None`: any protocol.
    pub protocol: Option<u8>,
    /// The destination port (tcp or udp only); `None`: any.
    pub port: Option<u16>,
    pub peer: Peer,
}

impl RuleSpec {
    /// Parses a rule that passes [`Validate`] (the same checks run first).
    pub fn parse(r: &Rule) -> Result<RuleSpec, ValidationError> {
        r.validate()?;
        let protocol = match r.protocol.as_str() {
            "" => None,
            "tcp" => Some(TCP),
            "udp" => Some(UDP),
            "icmp" => Some(ICMP),
            n => Some(n.parse::<u8>().map_err(|_| ValidationError {
                field: "protocol".into(),
                message: format!("{n:?} is not tcp, udp, icmp or a protocol number"),
            })?),
        };
        let (group, network, ip) = match r.direction.as_str() {
            "in" => (&r.from_endpoint_group, &r.from_network, &r.from_ip_address),
            _ => (&r.to_endpoint_group, &r.to_network, &r.to_ip_address),
        };
        let peer = if !group.is_empty() {
            Peer::Group(group.clone())
        } else if !network.is_empty() {
            Peer::Network(network.clone())
        } else if !ip.is_empty() {
            let net = ip
                .parse::<IpNet>()
                .or_else(|_| ip.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ValidationError {
                    field: if r.direction == "in" {
                        "fromIpAddress"
                    } else {
                        "toIpAddress"
                    }
                    .into(),
                    message: format!("{ip:?} is not an address or a prefix"),
                })?;
            Peer::Prefix(net.trunc())
        } else {
            Peer::Any
        };
        Ok(RuleSpec {
            tenant: r.tenant_name.clone(),
            policy: r.policy_name.clone(),
            rule_id: r.rule_id.clone(),
            direction: if r.direction == "in" {
                Direction::In
            } else {
                Direction::Out
            },
            priority: r.priority.clamp(1, 100) as u8,
            action: if r.action == "deny" {
                Action::Deny
            } else {
                Action::Allow
            },
            protocol,
            port: (r.port > 0).then_some(r.port as u16),
            peer,
        })
    }

    /// `tenant:policy:ruleId`, the rule's object key.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.tenant, self.policy, self.rule_id)
    }

    /// Whether the rule matches a flow whose far end (the source of an `in` rule, the
    /// destination of an `out` rule) is `peer`.
    pub fn matches(&self, flow: &Flow, resolve: &impl Resolve) -> bool {
        if self.protocol.is_some_and(|p| p != flow.protocol) {
            return false;
        }
        if self.port.is_some() && self.port != flow.port {
            return false;
        }
        let peer = match self.direction {
            Direction::In => flow.src,
            Direction::Out => flow.dst,
        };
        match &self.peer {
            Peer::Any => true,
            Peer::Group(g) => resolve.in_group(&self.tenant, g, peer),
            Peer::Network(n) => resolve
                .network_subnet(&self.tenant, n)
                .is_some_and(|s| s.contains(&peer)),
            Peer::Prefix(p) => p.contains(&peer),
        }
    }
}

/// Natural order of rule ids: `2` before `10`, numbers before names.
fn natural(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// The order rules are tried in: priority (highest first), deny before allow, then
/// the policy name and the rule id (natural order).
pub fn order(rules: &mut [RuleSpec]) {
    rules.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| (b.action == Action::Deny).cmp(&(a.action == Action::Deny)))
            .then_with(|| a.policy.cmp(&b.policy))
            .then_with(|| natural(&a.rule_id, &b.rule_id))
    });
}

/// A new connection: addresses, IP protocol and destination port (tcp and udp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub port: Option<u16>,
}

/// What rules refer to, resolved against the intent.
pub trait Resolve {
    /// `ip` is the address of an endpoint of `tenant:group`.
    fn in_group(&self, tenant: &str, group: &str, ip: IpAddr) -> bool;
    /// The subnet of `tenant:network`.
    fn network_subnet(&self, tenant: &str, network: &str) -> Option<IpNet>;
    /// The tenant whose network holds `ip`, if any.
    fn tenant_of(&self, ip: IpAddr) -> Option<String>;
}

/// The first rule of `ordered` (already in [`order`]) of `direction` that matches.
pub fn first_match<'a>(
    ordered: &'a [RuleSpec],
    direction: Direction,
    flow: &Flow,
    resolve: &impl Resolve,
) -> Option<&'a RuleSpec> {
    ordered
        .iter()
        .find(|r| r.direction == direction && r.matches(flow, resolve))
}

/// What decided one side of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub action: Action,
    /// `rule`: a rule matched (`rule` names it); `default`: no rule matched;
    /// `tenant-isolation`: no rule matched and the source is another tenant's;
    /// `no-policy`: the endpoint is in no group with a policy, or is not an endpoint.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Verdict {
    fn of(rule: Option<&RuleSpec>, fallback: (Action, &str)) -> Verdict {
        match rule {
            Some(r) => Verdict {
                action: r.action,
                reason: "rule".into(),
                rule: Some(r.key()),
            },
            None => Verdict {
                action: fallback.0,
                reason: fallback.1.into(),
                rule: None,
            },
        }
    }
}

/// One end of a flow as the policy sees it.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// The endpoint's tenant, when the address is a Contiv endpoint.
    pub tenant: Option<String>,
    /// The rules of the policies of its group, in [`order`]; empty when it has none.
    pub rules: Vec<RuleSpec>,
}

/// The decision on a new connection: the sender's `out` rules, then the receiver's
/// `in` rules and tenant isolation. Both must allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub action: Action,
    /// At the sender (its `out` rules).
    pub egress: Verdict,
    /// At the receiver (its `in` rules, then tenant isolation).
    pub ingress: Verdict,
}

/// Decides a new connection `flow` from `src` to `dst`.
pub fn decide(flow: &Flow, src: &Side, dst: &Side, resolve: &impl Resolve) -> Decision {
    let egress = if src.tenant.is_none() || src.rules.is_empty() {
        Verdict::of(None, (Action::Allow, "no-policy"))
    } else {
        Verdict::of(
            first_match(&src.rules, Direction::Out, flow, resolve),
            (Action::Allow, "default"),
        )
    };
    let ingress = match &dst.tenant {
        None => Verdict::of(None, (Action::Allow, "no-policy")),
        Some(t) => {
            let foreign = resolve.tenant_of(flow.src).is_some_and(|s| &s != t);
            if foreign {
                let hit = dst.rules.iter().find(|r| {
                    r.direction == Direction::In
                        && matches!(r.peer, Peer::Prefix(_))
                        && r.matches(flow, resolve)
                });
                Verdict::of(hit, (Action::Deny, "tenant-isolation"))
            } else {
                let hit = first_match(&dst.rules, Direction::In, flow, resolve);
                let fallback = if dst.rules.is_empty() {
                    (Action::Allow, "no-policy")
                } else {
                    (Action::Allow, "default")
                };
                Verdict::of(hit, fallback)
            }
        }
    };
    let action = if egress.action == Action::Allow && ingress.action == Action::Allow {
        Action::Allow
    } else {
        Action::Deny
    };
    Decision {
        action,
        egress,
        ingress,
    }
}

/// Parses `tcp/80`, `udp/53`, `icmp`, `tcp` or a protocol number (`47`) into the
/// protocol and port of a [`Flow`].
pub fn parse_service(s: &str) -> Result<(u8, Option<u16>), String> {
    let (proto, port) = match s.split_once('/') {
        Some((p, port)) => (p, Some(port)),
        None => (s, None),
    };
    let protocol = match proto {
        "tcp" => TCP,
        "udp" => UDP,
        "icmp" => ICMP,
        n => n
            .parse::<u8>()
            .map_err(|_| format!("{n:?} is not tcp, udp, icmp or a protocol number"))?,
    };
    let port = match port {
        None => None,
        Some(p) => {
            if protocol != TCP && protocol != UDP {
                return Err(format!("{s:?}: only tcp and udp have ports"));
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("{p:?} is not a port 1..65535")),
            }
        }
    };
    Ok((protocol, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rule(id: &str, f: impl FnOnce(&mut Rule)) -> RuleSpec {
        let mut r = Rule {
            rule_id: id.into(),
            policy_name: "p".into(),
            tenant_name: "default".into(),
            direction: "in".into(),
            action: "allow".into(),
            ..Rule::default()
        };
        f(&mut r);
        RuleSpec::parse(&r).unwrap()
    }

    struct World {
        groups: BTreeMap<(String, String), Vec<IpAddr>>,
        nets: BTreeMap<(String, String), IpNet>,
    }
    impl Resolve for World {
        fn in_group(&self, t: &str, g: &str, ip: IpAddr) -> bool {
            self.groups
                .get(&(t.into(), g.into()))
                .is_some_and(|v| v.contains(&ip))
        }
        fn network_subnet(&self, t: &str, n: &str) -> Option<IpNet> {
            self.nets.get(&(t.into(), n.into())).copied()
        }
        fn tenant_of(&self, ip: IpAddr) -> Option<String> {
            self.nets
                .iter()
                .find(|(_, s)| s.contains(&ip))
                .map(|((t, _), _)| t.clone())
        }
    }
    fn world() -> World {
        World {
            groups: [(
                ("default".to_string(), "db".to_string()),
                vec!["10.1.1.5".parse().unwrap()],
            )]
            .into(),
            nets: [
                (
                    ("default".to_string(), "net".to_string()),
                    "10.1.1.0/24".parse().unwrap(),
                ),
                (
                    ("blue".to_string(), "net".to_string()),
                    "10.2.1.0/24".parse().unwrap(),
                ),
            ]
            .into(),
        }
    }
    fn flow(src: &str, dst: &str, protocol: u8, port: Option<u16>) -> Flow {
        Flow {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            port,
        }
    }

    /// The seed walkthrough: deny tcp, allow 80 and 443 at priority 10.
    fn prod_web() -> Vec<RuleSpec> {
        let mut v = vec![
            rule("1", |r| {
                r.protocol = "tcp".into();
                r.action = "deny".into();
            }),
            rule("2", |r| {
                r.protocol = "tcp".into();
                r.port = 80;
                r.priority = 10;
            }),
            rule("3", |r| {
                r.protocol = "tcp".into();
                r.port = 443;
                r.priority = 10;
            }),
        ];
        order(&mut v);
        v
    }

    #[test]
    fn the_walkthrough_opens_80_and_443_only() {
        let w = world();
        let web = Side {
            tenant: Some("default".into()),
            rules: prod_web(),
        };
        let client = Side {
            tenant: Some("default".into()),
            rules: vec![],
        };
        let d = |port, proto| {
            decide(
                &flow("10.1.1.9", "10.1.1.2", proto, port),
                &client,
                &web,
                &w,
            )
        };
        assert_eq!(d(Some(80), TCP).action, Action::Allow);
        assert_eq!(
            d(Some(80), TCP).ingress.rule.as_deref(),
            Some("default:p:2")
        );
        assert_eq!(d(Some(443), TCP).action, Action::Allow);
        let x = d(Some(8080), TCP);
        assert_eq!(
            (x.action, x.ingress.rule.as_deref()),
            (Action::Deny, Some("default:p:1"))
        );
        // ICMP and UDP are not tcp: no rule matches, the default allows.
        assert_eq!(d(None, ICMP).ingress.reason, "default");
        assert_eq!(d(Some(53), UDP).action, Action::Allow);
        // The web group opening connections out: no out rule, allowed.
        let out = decide(
            &flow("10.1.1.2", "10.1.1.9", TCP, Some(22)),
            &web,
            &client,
            &w,
        );
        assert_eq!(out.action, Action::Allow);
    }

    #[test]
    fn order_is_priority_then_deny_then_natural_ids() {
        let mut v = vec![
            rule("10", |r| r.priority = 5),
            rule("2", |r| r.priority = 5),
            rule("3", |r| {
                r.priority = 5;
                r.action = "deny".into();
            }),
            rule("1", |r| r.priority = 50),
        ];
        order(&mut v);
        let ids: Vec<&str> = v.iter().map(|r| r.rule_id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "2", "10"]);
    }

    #[test]
    fn peers_match_groups_networks_and_prefixes() {
        let w = world();
        let g = rule("1", |r| r.from_endpoint_group = "db".into());
        assert!(g.matches(&flow("10.1.1.5", "10.1.1.2", TCP, None), &w));
        assert!(!g.matches(&flow("10.1.1.6", "10.1.1.2", TCP, None), &w));
        let n = rule("2", |r| r.from_network = "net".into());
        assert!(n.matches(&flow("10.1.1.77", "10.1.1.2", UDP, None), &w));
        assert!(!n.matches(&flow("10.2.1.7", "10.1.1.2", UDP, None), &w));
        let p = rule("3", |r| {
            r.direction = "out".into();
            r.to_ip_address = "192.0.2.7/24".into();
        });
        assert_eq!(p.peer, Peer::Prefix("192.0.2.0/24".parse().unwrap()));
        assert!(p.matches(&flow("10.1.1.2", "192.0.2.200", ICMP, None), &w));
        assert!(!p.matches(&flow("192.0.2.200", "10.1.1.2", ICMP, None), &w));
    }

    #[test]
    fn tenants_are_isolated_unless_a_rule_allows() {
        let w = world();
        let red = Side {
            tenant: Some("default".into()),
            rules: vec![],
        };
        let blue = Side {
            tenant: Some("blue".into()),
            rules: vec![],
        };
        let f = flow("10.2.1.3", "10.1.1.2", TCP, Some(80));
        let d = decide(&f, &blue, &red, &w);
        assert_eq!(
            (d.action, d.ingress.reason.as_str()),
            (Action::Deny, "tenant-isolation")
        );
        let open = Side {
            tenant: Some("default".into()),
            rules: vec![rule("1", |r| r.from_ip_address = "10.2.1.0/24".into())],
        };
        assert_eq!(decide(&f, &blue, &open, &w).action, Action::Allow);
        // A rule without a source does not open the group to other tenants.
        let web = Side {
            tenant: Some("default".into()),
            rules: prod_web(),
        };
        let d = decide(&f, &blue, &web, &w);
        assert_eq!(
            (d.action, d.ingress.reason.as_str()),
            (Action::Deny, "tenant-isolation")
        );
        // From outside any Contiv network: only the rules decide.
        let ext = decide(
            &flow("198.51.100.1", "10.1.1.2", TCP, Some(80)),
            &Side::default(),
            &red,
            &w,
        );
        assert_eq!(ext.action, Action::Allow);
    }

    #[test]
    fn out_rules_judge_the_sender() {
        let w = world();
        let src = Side {
            tenant: Some("default".into()),
            rules: vec![rule("1", |r| {
                r.direction = "out".into();
                r.action = "deny".into();
                r.protocol = "udp".into();
                r.port = 53;
            })],
        };
        let d = decide(
            &flow("10.1.1.2", "10.1.1.3", UDP, Some(53)),
            &src,
            &Side::default(),
            &w,
        );
        assert_eq!(
            (d.action, d.egress.rule.as_deref()),
            (Action::Deny, Some("default:p:1"))
        );
        assert_eq!(d.ingress.reason, "no-policy");
    }

    #[test]
    fn services_parse() {
        assert_eq!(parse_service("tcp/80"), Ok((TCP, Some(80))));
        assert_eq!(parse_service("icmp"), Ok((ICMP, None)));
        assert_eq!(parse_service("47"), Ok((47, None)));
        assert!(parse_service("icmp/3").is_err());
        assert!(parse_service("tcp/0").is_err());
        assert!(parse_service("sctp").is_err());
    }
}
