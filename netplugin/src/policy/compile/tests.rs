use std::collections::BTreeMap;
use std::sync::Arc;

use contiv_model::Rule;
use contiv_model::policy::{self as semantics, RuleSpec};

use super::*;
use crate::policy::nft::{self, Op};

fn spec(tenant: &str, policy: &str, id: &str, f: impl FnOnce(&mut Rule)) -> RuleSpec {
    let mut r = Rule {
        rule_id: id.into(),
        policy_name: policy.into(),
        tenant_name: tenant.into(),
        direction: "in".into(),
        action: "allow".into(),
        ..Rule::default()
    };
    f(&mut r);
    RuleSpec::parse(&r).unwrap()
}

/// The seed's walkthrough: tenant default, network contiv-net 10.1.1.0/24, group web
/// with prod_web (deny tcp in; allow tcp 80 and 443 at priority 10); tenant blue with
/// 10.2.1.0/24.
fn walkthrough() -> PolicyView {
    let mut rules = vec![
        spec("default", "prod_web", "1", |r| {
            r.protocol = "tcp".into();
            r.action = "deny".into();
        }),
        spec("default", "prod_web", "2", |r| {
            r.protocol = "tcp".into();
            r.port = 80;
            r.priority = 10;
        }),
        spec("default", "prod_web", "3", |r| {
            r.protocol = "tcp".into();
            r.port = 443;
            r.priority = 10;
        }),
    ];
    semantics::order(&mut rules);
    PolicyView {
        revision: 7,
        networks: [
            (
                ("default".to_string(), "contiv-net".to_string()),
                "10.1.1.0/24".parse().unwrap(),
            ),
            (
                ("blue".to_string(), "contiv-net".to_string()),
                "10.2.1.0/24".parse().unwrap(),
            ),
        ]
        .into(),
        groups: [
            (("default".to_string(), "web".to_string()), Arc::new(rules)),
            (("default".to_string(), "app".to_string()), Arc::new(vec![])),
        ]
        .into(),
        members: [(
            ("default".to_string(), "app".to_string()),
            ["10.1.1.9".parse().unwrap(), "10.1.1.10".parse().unwrap()].into(),
        )]
        .into(),
        errors: vec![],
    }
}

fn ep(ifname: &str, addr: &str, tenant: &str, group: Option<&str>) -> LocalEndpoint {
    LocalEndpoint {
        ifname: ifname.into(),
        address: addr.parse().unwrap(),
        mac: "02:02:0a:01:01:02".into(),
        tenant: tenant.into(),
        group: group.map(str::to_string),
    }
}

fn locals(eps: &[LocalEndpoint]) -> BTreeMap<String, LocalEndpoint> {
    eps.iter().map(|e| (e.ifname.clone(), e.clone())).collect()
}

fn inet(c: &Compiled) -> &nft::Table {
    &c.ruleset.tables["inet"]
}

#[test]
fn the_walkthrough_compiles_to_isolation_then_its_rules_in_order() {
    let c = compile(
        &walkthrough(),
        &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
    );
    let t = inet(&c);
    let chain = name("in", "default:web");
    let r = |id: &str| name("r", &format!("default:prod_web:{id}"));
    assert_eq!(
        t.chains[&chain].rules,
        vec![
            format!(
                "ip saddr @nets ip saddr != @{} counter name \"isolated\" drop",
                name("t", "default")
            ),
            format!("tcp dport 80 counter name \"{}\" return", r("2")),
            format!("tcp dport 443 counter name \"{}\" return", r("3")),
            format!("meta l4proto 6 counter name \"{}\" drop", r("1")),
        ]
    );
    assert_eq!(
        t.sets["ingress"].elements,
        [format!("\"cvweb\" : jump {chain}")].into()
    );
    assert!(
        t.sets["egress"].elements.is_empty(),
        "no out rules: nothing at the sender"
    );
    assert_eq!(c.rules, 3);
    assert_eq!(c.endpoints_under_policy, 1);
    assert_eq!(c.counters.len(), 3);
    assert_eq!(c.counters[&r("1")].rule, "1");
    // Stateful: the hooks accept established and related traffic before any rule.
    assert_eq!(
        t.chains["forward"].rules[0],
        "ct state established,related accept"
    );
    assert_eq!(
        t.sets[&name("t", "default")].elements,
        ["10.1.1.0/24".to_string()].into()
    );
    assert_eq!(
        t.sets["nets"].elements,
        ["10.1.1.0/24".to_string(), "10.2.1.0/24".to_string()].into()
    );
}

#[test]
fn endpoints_without_policy_get_tenant_isolation_only() {
    let c = compile(
        &walkthrough(),
        &locals(&[
            ep("cva", "10.1.1.9", "default", Some("app")),
            ep("cvb", "10.1.1.11", "default", None),
            ep("cvc", "10.2.1.3", "blue", None),
        ]),
    );
    let t = inet(&c);
    let ten = name("ten", "default");
    assert_eq!(
        t.sets["ingress"].elements,
        [
            format!("\"cva\" : jump {ten}"),
            format!("\"cvb\" : jump {ten}"),
            format!("\"cvc\" : jump {}", name("ten", "blue")),
        ]
        .into()
    );
    assert_eq!(c.rules, 0);
    assert_eq!(c.endpoints_under_policy, 0);
}

#[test]
fn sources_are_verified_per_veth_for_ip_and_arp() {
    let c = compile(
        &walkthrough(),
        &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
    );
    let want = ["\"cvweb\" . 10.1.1.2 . 02:02:0a:01:01:02".to_string()].into();
    assert_eq!(inet(&c).sets["src4"].elements, want);
    assert_eq!(c.ruleset.tables["arp"].sets["src4"].elements, want);
    assert!(inet(&c).chains["pre"].rules[0].contains("!= @src4"));
    assert!(inet(&c).chains["pre"].rules[1].contains("iifname != @veths ip saddr @local4"));
    assert!(inet(&c).chains["pre"].rules[2].contains("ipv6"));
    assert_eq!(
        inet(&c).sets["local4"].elements,
        ["10.1.1.2".to_string()].into()
    );
    // Nothing a container sends is decapsulated by the host.
    let input = &inet(&c).chains["input"].rules;
    assert!(
        input[0].contains("meta l4proto != { icmp, tcp, udp }"),
        "{input:?}"
    );
    assert!(
        input[1].contains("udp dport { 4789, 8472, 6081 }"),
        "{input:?}"
    );
}

#[test]
fn group_peers_are_sets_of_their_members_on_every_host() {
    let mut v = walkthrough();
    let mut rules = vec![
        spec("default", "db", "1", |r| {
            r.from_endpoint_group = "app".into();
            r.protocol = "tcp".into();
            r.port = 5432;
        }),
        spec("default", "db", "2", |r| {
            r.direction = "out".into();
            r.to_network = "contiv-net".into();
            r.protocol = "udp".into();
            r.port = 53;
            r.action = "deny".into();
        }),
        spec("default", "db", "3", |r| {
            r.direction = "out".into();
            r.to_ip_address = "192.0.2.0/24".into();
            r.protocol = "icmp".into();
            r.action = "deny".into();
        }),
    ];
    semantics::order(&mut rules);
    v.groups
        .insert(("default".into(), "db".into()), Arc::new(rules));
    let c = compile(
        &v,
        &locals(&[ep("cvdb", "10.1.1.3", "default", Some("db"))]),
    );
    let t = inet(&c);
    let g = name("g", "default:app");
    assert_eq!(
        t.sets[&g].elements,
        ["10.1.1.10".to_string(), "10.1.1.9".to_string()].into()
    );
    let ins = &t.chains[&name("in", "default:db")].rules;
    assert!(ins[0].contains("isolated"), "{ins:?}");
    assert!(ins[1].starts_with(&format!("ip saddr @{g} tcp dport 5432 counter")));
    let outs = &t.chains[&name("out", "default:db")].rules;
    assert!(
        outs[0].starts_with("ip daddr 10.1.1.0/24 udp dport 53 counter"),
        "{outs:?}"
    );
    assert!(
        outs[1].starts_with("ip daddr 192.0.2.0/24 meta l4proto icmp counter"),
        "{outs:?}"
    );
    assert!(outs.iter().all(|r| r.ends_with(" drop")));
    assert_eq!(
        t.sets["egress"].elements,
        [format!("\"cvdb\" : jump {}", name("out", "default:db"))].into()
    );
}

#[test]
fn names_are_short_stable_and_distinct() {
    assert_eq!(name("g", "default:web"), name("g", "default:web"));
    assert_ne!(name("g", "default:web"), name("g", "blue:web"));
    assert_eq!(
        name("ten", "a-very-long-tenant-name-of-sixty-four-characters").len(),
        20
    );
}

/// Changes and overwrites reach exactly the ruleset they were computed for, from any
/// earlier one, and the kernel model accepts every step.
#[test]
fn changes_and_overwrites_reach_the_desired_ruleset() {
    let v = walkthrough();
    let mut v2 = v.clone();
    v2.groups
        .insert(("default".into(), "web".into()), Arc::new(vec![]));
    v2.members.insert(
        ("default".into(), "app".into()),
        ["10.1.1.9".parse().unwrap()].into(),
    );
    let mut states = vec![
        compile(&v, &BTreeMap::new()),
        compile(
            &v,
            &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
        ),
        compile(
            &v,
            &locals(&[
                ep("cvweb", "10.1.1.2", "default", Some("web")),
                ep("cvc", "10.2.1.3", "blue", None),
            ]),
        ),
        compile(
            &v2,
            &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
        ),
    ];
    let mut rules = v.groups[&("default".to_string(), "web".to_string())]
        .as_ref()
        .clone();
    rules.push(spec("default", "x", "9", |r| {
        r.direction = "out".into();
        r.from_endpoint_group.clear();
        r.to_endpoint_group = "app".into();
    }));
    semantics::order(&mut rules);
    let mut v3 = v.clone();
    v3.groups
        .insert(("default".into(), "web".into()), Arc::new(rules));
    states.push(compile(
        &v3,
        &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
    ));
    for a in &states {
        for b in &states {
            let mut k = nft::Ruleset::default();
            nft::apply(&mut k, &a.ruleset.overwrite(&nft::Snapshot::default())).unwrap();
            assert_eq!(k, a.ruleset);
            nft::apply(&mut k, &b.ruleset.changes(&a.ruleset)).unwrap();
            assert_eq!(k, b.ruleset);
            // And a whole rewrite over it sweeps what is not wanted.
            let mut k2 = k.clone();
            nft::apply(&mut k2, &a.ruleset.overwrite(&nft::snapshot(&k))).unwrap();
            assert_eq!(k2, a.ruleset);
        }
    }
    // No change, no transaction.
    assert!(states[1].ruleset.changes(&states[1].ruleset).is_empty());
}

#[test]
fn an_endpoint_change_touches_its_own_elements_only() {
    let v = walkthrough();
    let one = compile(
        &v,
        &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
    );
    let two = compile(
        &v,
        &locals(&[
            ep("cvweb", "10.1.1.2", "default", Some("web")),
            ep("cvw2", "10.1.1.4", "default", Some("web")),
        ]),
    );
    let ops = two.ruleset.changes(&one.ruleset);
    assert!(
        ops.iter().all(|o| matches!(o, Op::AddElements { .. })),
        "{ops:?}"
    );
    let script = nft::script(&ops);
    assert!(
        script.contains("add element inet contiv ingress { \"cvw2\" : jump in_"),
        "{script}"
    );
    assert!(script.contains("add element arp contiv src4"), "{script}");
}

/// A connection from another tenant's address meets only the rules naming a prefix,
/// and is dropped when none of them matches.
#[test]
fn other_tenants_meet_only_prefix_rules() {
    let mut v = walkthrough();
    let mut rules = vec![
        spec("default", "p", "1", |r| {
            r.protocol = "tcp".into();
            r.port = 80;
        }),
        spec("default", "p", "2", |r| {
            r.from_ip_address = "10.2.1.0/24".into();
            r.protocol = "tcp".into();
            r.port = 443;
        }),
    ];
    semantics::order(&mut rules);
    v.groups
        .insert(("default".into(), "web".into()), Arc::new(rules));
    let c = compile(
        &v,
        &locals(&[ep("cvweb", "10.1.1.2", "default", Some("web"))]),
    );
    let t = inet(&c);
    let x = name("xin", "default:web");
    assert_eq!(
        t.chains[&name("in", "default:web")].rules[0],
        format!(
            "ip saddr @nets ip saddr != @{} jump {x}",
            name("t", "default")
        )
    );
    assert_eq!(
        t.chains[&x].rules,
        vec![
            format!(
                "ip saddr 10.2.1.0/24 tcp dport 443 counter name \"{}\" accept",
                name("r", "default:p:2")
            ),
            "counter name \"isolated\" drop".to_string(),
        ]
    );
}
