//! Intent → ruleset, pure.
//!
//! ```text
//! table inet contiv
//!   prerouting (raw):  from one of our veths, an IPv4 source (address, MAC) other than
//!                      the endpoint's own → drop; IPv6 from our veths → drop
//!   forward / input / output (filter):
//!       ct state established,related → accept           (rules judge new connections)
//!       iifname vmap @egress   → out_<group>: the group's out rules
//!       oifname vmap @ingress  → in_<group>:  tenant isolation (a source in another
//!                                tenant's network: only rules naming a prefix may
//!                                let it in, xin_<group>), then the group's in rules
//!                              → ten_<tenant>: tenant isolation only (no in rules)
//! table arp contiv
//!   input: an ARP packet from one of our veths whose sender (address, MAC) is not the
//!          endpoint's own → drop
//! ```
//!
//! A rule that allows `return`s (the next check runs: the receiver's after the
//! sender's), a rule that denies drops; each counts into a named counter of its own, so
//! counts survive the ruleset being rewritten. Membership and prefixes are in sets and
//! interfaces in verdict maps: a packet meets one map lookup per check and the rules of
//! its own group, however many groups, rules and endpoints there are.
//!
//! Every name is derived from object keys by a hash ([`name`]); no user string reaches
//! the ruleset.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use contiv_model::policy::{Action, Direction, ICMP, Peer, RuleSpec, TCP, UDP};
use ipnet::IpNet;

use super::PolicyView;
use super::nft::{Chain, Ruleset, Set, Table};

/// A local endpoint as policy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// The host side of its veth.
    pub ifname: String,
    pub address: IpAddr,
    pub mac: String,
    pub tenant: String,
    /// `None`: in no endpoint group.
    pub group: Option<String>,
}

/// The labels of a rule's counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterLabels {
    pub tenant: String,
    pub policy: String,
    pub rule: String,
}

/// The compiled ruleset and what it is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    pub ruleset: Ruleset,
    /// Counter name → the rule it counts.
    pub counters: BTreeMap<String, CounterLabels>,
    /// Policy rules in the ruleset (a rule of a policy two local groups use counts twice).
    pub rules: usize,
    /// Local endpoints whose group has a policy.
    pub endpoints_under_policy: usize,
    /// Why the ruleset must not be committed (two keys hashed to one name).
    pub errors: Vec<String>,
}

/// A short stable name: `prefix` and the 16 hex digits of FNV-1a over `key` (a
/// collision is reported by [`compile`], never silently shared).
pub fn name(prefix: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}_{h:016x}")
}

fn group_key(tenant: &str, group: &str) -> String {
    format!("{tenant}:{group}")
}

/// The counter a rule counts into.
pub fn counter_of(r: &RuleSpec) -> String {
    name("r", &r.key())
}

/// Spoofed packets dropped at our veths (IP and ARP).
pub const SPOOFED: &str = "spoofed";
/// New connections dropped by tenant isolation.
pub const ISOLATED: &str = "isolated";
/// IPv6 from containers (endpoints are IPv4; router solicitations and the like land here).
pub const IPV6: &str = "ipv6";
/// Encapsulated packets from containers to the host (a tunnel would deliver the inner
/// packet on another interface, past the checks of the veth).
pub const ENCAPSULATED: &str = "encapsulated";

/// UDP ports of the tunnels Linux decapsulates (VXLAN, its old Linux port, Geneve).
const TUNNEL_PORTS: &str = "{ 4789, 8472, 6081 }";

const BASE_PRE: &str = "type filter hook prerouting priority raw; policy accept;";
const BASE_FORWARD: &str = "type filter hook forward priority filter; policy accept;";
const BASE_INPUT: &str = "type filter hook input priority filter; policy accept;";
const BASE_OUTPUT: &str = "type filter hook output priority filter; policy accept;";
const BASE_ARP: &str = "type filter hook input priority filter; policy accept;";

fn quote(ifname: &str) -> String {
    format!("\"{ifname}\"")
}

/// Prefixes without those another one covers (interval sets refuse overlaps).
fn minimal(mut nets: Vec<IpNet>) -> Vec<IpNet> {
    nets.sort_by_key(|n| (n.prefix_len(), n.network()));
    let mut out: Vec<IpNet> = Vec::new();
    for n in nets {
        if !out.iter().any(|o| o.contains(&n)) {
            out.push(n);
        }
    }
    out.sort();
    out
}

fn v4_set(nets: &[IpNet]) -> Set {
    Set {
        map: false,
        decl: "type ipv4_addr; flags interval;".into(),
        elements: minimal(
            nets.iter()
                .filter(|n| matches!(n, IpNet::V4(_)))
                .copied()
                .collect(),
        )
        .iter()
        .map(ToString::to_string)
        .collect(),
    }
}

/// One rule as nftables text, or `None` when it cannot match on this family (an IPv6
/// prefix, a network that does not exist: netmaster refuses both).
fn rule_text(
    r: &RuleSpec,
    view: &PolicyView,
    local: &BTreeMap<String, LocalEndpoint>,
    sets: &mut BTreeMap<String, Set>,
) -> Option<String> {
    let side = match r.direction {
        Direction::In => "saddr",
        Direction::Out => "daddr",
    };
    let mut m: Vec<String> = Vec::new();
    match &r.peer {
        Peer::Any => {}
        Peer::Group(g) => {
            let set = name("g", &group_key(&r.tenant, g));
            // The fabric's members as netmaster knows them, and this host's own at once
            // (before netmaster's copy of a new endpoint comes back in the feed).
            sets.entry(set.clone()).or_insert_with(|| {
                let known = view.members.get(&(r.tenant.clone(), g.clone()));
                let own = local
                    .values()
                    .filter(|e| e.tenant == r.tenant && e.group.as_ref() == Some(g))
                    .map(|e| e.address);
                Set {
                    map: false,
                    decl: "type ipv4_addr;".into(),
                    elements: known
                        .into_iter()
                        .flatten()
                        .copied()
                        .chain(own)
                        .filter(IpAddr::is_ipv4)
                        .map(|a| a.to_string())
                        .collect(),
                }
            });
            m.push(format!("ip {side} @{set}"));
        }
        Peer::Network(n) => {
            let s = view.networks.get(&(r.tenant.clone(), n.clone()))?;
            if !matches!(s, IpNet::V4(_)) {
                return None;
            }
            m.push(format!("ip {side} {s}"));
        }
        Peer::Prefix(p) => {
            if !matches!(p, IpNet::V4(_)) {
                return None;
            }
            m.push(format!("ip {side} {p}"));
        }
    }
    match (r.protocol, r.port) {
        (Some(TCP), Some(port)) => m.push(format!("tcp dport {port}")),
        (Some(UDP), Some(port)) => m.push(format!("udp dport {port}")),
        (Some(ICMP), _) => m.push("meta l4proto icmp".into()),
        (Some(p), _) => m.push(format!("meta l4proto {p}")),
        (None, _) => {}
    }
    m.push(format!("counter name \"{}\"", counter_of(r)));
    m.push(
        match r.action {
            Action::Allow => "return",
            Action::Deny => "drop",
        }
        .into(),
    );
    Some(m.join(" "))
}

/// Names two different keys would share.
fn collisions(view: &PolicyView, local: &BTreeMap<String, LocalEndpoint>) -> Vec<String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut check = |prefix: &str, key: String| {
        let n = name(prefix, &key);
        match seen.get(&n) {
            Some(k) if *k != key => errors.push(format!(
                "{key:?} and {k:?} hash to the same nftables name {n}; rename one"
            )),
            Some(_) => {}
            None => {
                seen.insert(n, key);
            }
        }
    };
    for ep in local.values() {
        check("t", ep.tenant.clone());
        if let Some(g) = &ep.group {
            check("in", group_key(&ep.tenant, g));
            for r in view.rules(&ep.tenant, g) {
                check("r", r.key());
                if let Peer::Group(p) = &r.peer {
                    check("g", group_key(&r.tenant, p));
                }
            }
        }
    }
    errors
}

/// The ruleset for the host's endpoints under the intent `view`.
pub fn compile(view: &PolicyView, local: &BTreeMap<String, LocalEndpoint>) -> Compiled {
    let mut out = Compiled::default();
    let mut t = Table::default();
    let mut arp = Table::default();

    // Source verification.
    let mut veths = Set {
        map: false,
        decl: "type ifname;".into(),
        elements: BTreeSet::new(),
    };
    let mut src4 = Set {
        map: false,
        decl: "type ifname . ipv4_addr . ether_addr;".into(),
        elements: BTreeSet::new(),
    };
    let mut local4 = Set {
        map: false,
        decl: "type ipv4_addr;".into(),
        elements: BTreeSet::new(),
    };
    for ep in local.values() {
        veths.elements.insert(quote(&ep.ifname));
        if let IpAddr::V4(a) = ep.address {
            src4.elements
                .insert(format!("{} . {a} . {}", quote(&ep.ifname), ep.mac));
            local4.elements.insert(a.to_string());
        }
    }
    t.sets.insert("local4".into(), local4);
    for c in [SPOOFED, ISOLATED, IPV6, ENCAPSULATED] {
        t.counters.insert(c.into());
    }
    arp.counters.insert(SPOOFED.into());
    t.chains.insert(
        "pre".into(),
        Chain {
            base: Some(BASE_PRE.into()),
            rules: vec![
                format!(
                    "iifname @veths iifname . ip saddr . ether saddr != @src4 counter name \"{SPOOFED}\" drop"
                ),
                // This host's containers' addresses come only from their own veths.
                format!("iifname != @veths ip saddr @local4 counter name \"{SPOOFED}\" drop"),
                format!("iifname @veths meta nfproto ipv6 counter name \"{IPV6}\" drop"),
            ],
        },
    );
    arp.chains.insert(
        "input".into(),
        Chain {
            base: Some(BASE_ARP.into()),
            rules: vec![format!(
                "iifname @veths iifname . arp saddr ip . arp saddr ether != @src4 counter name \"{SPOOFED}\" drop"
            )],
        },
    );
    arp.sets.insert("veths".into(), veths.clone());
    arp.sets.insert("src4".into(), src4.clone());
    t.sets.insert("veths".into(), veths);
    t.sets.insert("src4".into(), src4);

    // Every Contiv subnet, and each tenant's, for isolation.
    let all: Vec<IpNet> = view.networks.values().copied().collect();
    t.sets.insert("nets".into(), v4_set(&all));

    let mut ingress = Set {
        map: true,
        decl: "type ifname : verdict;".into(),
        elements: BTreeSet::new(),
    };
    let mut egress = ingress.clone();
    let mut sets: BTreeMap<String, Set> = BTreeMap::new();
    for ep in local.values() {
        let tenant_set = name("t", &ep.tenant);
        let tenant_chain = name("ten", &ep.tenant);
        if !t.sets.contains_key(&tenant_set) {
            let own: Vec<IpNet> = view
                .networks
                .iter()
                .filter(|((tn, _), _)| tn == &ep.tenant)
                .map(|(_, s)| *s)
                .collect();
            t.sets.insert(tenant_set.clone(), v4_set(&own));
        }
        let isolation =
            format!("ip saddr @nets ip saddr != @{tenant_set} counter name \"{ISOLATED}\" drop");
        t.chains
            .entry(tenant_chain.clone())
            .or_insert_with(|| Chain {
                base: None,
                rules: vec![isolation.clone()],
            });
        let rules = ep
            .group
            .as_deref()
            .map(|g| view.rules(&ep.tenant, g))
            .unwrap_or(&[]);
        if !rules.is_empty() {
            out.endpoints_under_policy += 1;
        }
        let gk = ep
            .group
            .as_deref()
            .map(|g| group_key(&ep.tenant, g))
            .unwrap_or_default();
        let mut chain_for = |dir: Direction, prefix: &str, t: &mut Table| -> Option<String> {
            let of_dir: Vec<&RuleSpec> = rules.iter().filter(|r| r.direction == dir).collect();
            if of_dir.is_empty() {
                return None;
            }
            let chain = name(prefix, &gk);
            if !t.chains.contains_key(&chain) {
                let mut body: Vec<String> = Vec::new();
                // Rules that name an address prefix: the only ones a connection from
                // another tenant's address is judged by.
                let mut foreign: Vec<String> = Vec::new();
                for r in of_dir {
                    if let Some(text) = rule_text(r, view, local, &mut sets) {
                        if matches!(r.peer, Peer::Prefix(_)) {
                            let verdict = match r.action {
                                Action::Allow => "accept",
                                Action::Deny => "drop",
                            };
                            let (m, _) = text.rsplit_once(' ').unwrap_or((&text, ""));
                            foreign.push(format!("{m} {verdict}"));
                        }
                        t.counters.insert(counter_of(r));
                        out.counters.insert(
                            counter_of(r),
                            CounterLabels {
                                tenant: r.tenant.clone(),
                                policy: r.policy.clone(),
                                rule: r.rule_id.clone(),
                            },
                        );
                        out.rules += 1;
                        body.push(text);
                    }
                }
                if dir == Direction::In {
                    // Another tenant's address first: only prefix rules may let it in.
                    if foreign.is_empty() {
                        body.insert(0, isolation.clone());
                    } else {
                        let x = name("xin", &gk);
                        foreign.push(format!("counter name \"{ISOLATED}\" drop"));
                        t.chains.insert(
                            x.clone(),
                            Chain {
                                base: None,
                                rules: foreign,
                            },
                        );
                        body.insert(
                            0,
                            format!("ip saddr @nets ip saddr != @{tenant_set} jump {x}"),
                        );
                    }
                }
                t.chains.insert(
                    chain.clone(),
                    Chain {
                        base: None,
                        rules: body,
                    },
                );
            }
            Some(chain)
        };
        let in_chain = chain_for(Direction::In, "in", &mut t).unwrap_or(tenant_chain);
        ingress
            .elements
            .insert(format!("{} : jump {in_chain}", quote(&ep.ifname)));
        if let Some(out_chain) = chain_for(Direction::Out, "out", &mut t) {
            egress
                .elements
                .insert(format!("{} : jump {out_chain}", quote(&ep.ifname)));
        }
    }
    t.sets.extend(sets);
    out.errors = collisions(view, local);
    t.sets.insert("ingress".into(), ingress);
    t.sets.insert("egress".into(), egress);
    let established = "ct state established,related accept".to_string();
    t.chains.insert(
        "forward".into(),
        Chain {
            base: Some(BASE_FORWARD.into()),
            rules: vec![
                established.clone(),
                "iifname vmap @egress".into(),
                "oifname vmap @ingress".into(),
            ],
        },
    );
    t.chains.insert(
        "input".into(),
        Chain {
            base: Some(BASE_INPUT.into()),
            rules: vec![
                // Nothing a container sends is decapsulated by the host.
                format!(
                    "iifname @veths meta l4proto != {{ icmp, tcp, udp }} counter name \"{ENCAPSULATED}\" drop"
                ),
                format!(
                    "iifname @veths udp dport {TUNNEL_PORTS} counter name \"{ENCAPSULATED}\" drop"
                ),
                established.clone(),
                "iifname vmap @egress".into(),
            ],
        },
    );
    t.chains.insert(
        "output".into(),
        Chain {
            base: Some(BASE_OUTPUT.into()),
            rules: vec![established, "oifname vmap @ingress".into()],
        },
    );
    out.ruleset.tables.insert("inet".into(), t);
    out.ruleset.tables.insert("arp".into(), arp);
    out
}

#[cfg(test)]
mod tests;
