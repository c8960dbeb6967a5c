use super::*;

const REALISTIC: &str = r#"
# A leaf's speaker: two ToRs over IPv4 and IPv6, a route server, dynamic neighbors.
originate = ["10.10.0.0/24", "2001:db8:10::/64"]

[global]
asn = 4200000101
router_id = "10.0.0.1"
families = ["ipv4-unicast", "ipv6-unicast"]
listen = { addresses = ["0.0.0.0", "::"], port = 179 }

[[neighbors]]
address = "10.0.0.2"
peer_asn = 65002
description = "tor-1"
local_address = "10.0.0.1"
hold_time = 9
keepalive = 3
connect_retry = 5
md5_password = "tor-secret"
ttl_security = 0
families = ["ipv4-unicast"]
add_path = { ipv4-unicast = "both" }
import_policy = "from-tor"
export_policy = ["to-tor", "tag-leaf"]
max_prefix = 10000
bfd = true

[neighbors.graceful_restart]
enabled = true
restart_time = 120
stale_time = 300
notification = true

[[neighbors]]
address = "2001:db8::2"
peer_asn = 65002
description = "tor-1 v6"
families = ["ipv6-unicast"]
add_path = { ipv6-unicast = "receive" }

[[neighbors]]
address = "192.0.2.10"
peer_asn = 65100
description = "route server"
ebgp_multihop = 3
passive = true

[[neighbors]]
address = "10.0.0.9"
peer_asn = 4200000101
description = "iBGP reflector"

[[neighbors]]
range = "10.1.1.0/24"
allowed_asns = [65010, 65011]
description = "workloads"
hold_time = 0

[policies.from-tor]
statements = [{ match = { prefix-set = "any" }, action = "accept" }]

[policies.to-tor]
action = "accept"
"#;

fn parse_ok(text: &str) -> Config {
    match Config::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn problems(text: &str) -> Vec<String> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert!(!e.problems().is_empty(), "not a validation error: {e}");
            e.problems().iter().map(|p| p.to_string()).collect()
        }
    }
}

/// Asserts exactly one problem, containing every `needle`.
#[track_caller]
fn one_problem(text: &str, needles: &[&str]) {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    for n in needles {
        assert!(p[0].contains(n), "{:?} does not contain {n:?}", p[0]);
    }
}

const GLOBAL: &str = "[global]\nasn = 65001\nrouter_id = \"10.0.0.1\"\n";

/// A config with one neighbor made of `body` (TOML lines).
fn with_neighbor(body: &str) -> String {
    format!("{GLOBAL}\n[[neighbors]]\n{body}\n")
}

#[test]
fn realistic_file() {
    let c = parse_ok(REALISTIC);
    assert_eq!(c.global.asn, 4_200_000_101);
    assert_eq!(c.global.router_id, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(c.global.listen.port, 179);
    assert_eq!(c.global.listen.addresses.len(), 2);
    assert_eq!(c.neighbors.len(), 5);
    assert_eq!(c.originate.len(), 2);

    let tor = &c.neighbors[0];
    assert_eq!(tor.key, NeighborKey::Address("10.0.0.2".parse().unwrap()));
    assert_eq!(tor.peer_as, PeerAs::Exact(65002));
    assert_eq!(tor.description.as_deref(), Some("tor-1"));
    assert_eq!((tor.hold_time, tor.keepalive, tor.connect_retry), (9, 3, 5));
    assert_eq!(
        tor.md5_password.as_ref().map(|p| p.expose_secret()),
        Some("tor-secret")
    );
    assert_eq!(tor.families, BTreeSet::from([Family::IPV4_UNICAST]));
    assert_eq!(
        tor.add_path.get(&Family::IPV4_UNICAST),
        Some(&AddPathMode::Both)
    );
    assert!(tor.graceful_restart.enabled);
    assert_eq!(tor.graceful_restart.stale_time, 300);
    assert_eq!(tor.import_policy, vec!["from-tor"]);
    assert_eq!(tor.export_policy, vec!["to-tor", "tag-leaf"]);
    assert_eq!(tor.max_prefix, Some(10000));
    assert!(tor.bfd && !tor.passive);
    let opts = tor.transport_opts(c.global.asn);
    assert_eq!(opts.ttl, TtlMode::Gtsm { hops: 0 });
    assert_eq!(opts.local_addr, Some("10.0.0.1".parse().unwrap()));
    assert!(opts.md5_password.is_some());
    // The password never shows in Debug output.
    assert!(!format!("{c:?}").contains("tor-secret"));

    let v6 = &c.neighbors[1];
    assert_eq!(
        v6.add_path.get(&Family::IPV6_UNICAST),
        Some(&AddPathMode::Receive)
    );
    // Defaults.
    assert_eq!(
        (v6.hold_time, v6.keepalive, v6.connect_retry),
        (90, 30, 120)
    );
    assert_eq!(v6.graceful_restart, GracefulRestart::default());
    assert_eq!(v6.transport_opts(c.global.asn).ttl, TtlMode::Fixed(1));

    let rs = &c.neighbors[2];
    assert!(rs.passive);
    assert_eq!(rs.transport_opts(c.global.asn).ttl, TtlMode::Fixed(3));
    // Families default to the global ones.
    assert_eq!(rs.families, c.global.families);

    let ibgp = &c.neighbors[3];
    assert!(!ibgp.is_ebgp(c.global.asn));
    assert_eq!(ibgp.transport_opts(c.global.asn).ttl, TtlMode::Default);

    let range = &c.neighbors[4];
    assert_eq!(
        range.key,
        NeighborKey::Range("10.1.1.0/24".parse().unwrap())
    );
    assert_eq!(range.peer_as, PeerAs::AnyOf(BTreeSet::from([65010, 65011])));
    assert!(range.passive);
    assert_eq!((range.hold_time, range.keepalive), (0, 0));
    assert!(range.peer_as.allows(65011) && !range.peer_as.allows(65012));

    // Matching incoming connections to neighbors.
    assert_eq!(
        c.neighbor_for("10.0.0.2".parse().unwrap()).map(|n| n.key),
        Some(tor.key)
    );
    assert_eq!(
        c.neighbor_for("10.1.1.77".parse().unwrap()).map(|n| n.key),
        Some(range.key)
    );
    assert!(c.neighbor_for("10.2.0.1".parse().unwrap()).is_none());

    // The policies section is kept as it was written.
    assert!(c.policies.contains_key("from-tor") && c.policies.contains_key("to-tor"));
}

#[test]
fn minimal_file_takes_defaults() {
    let c = parse_ok(GLOBAL);
    assert_eq!(c.global.listen.port, BGP_PORT);
    assert_eq!(c.global.listen.addresses, default_listen_addresses());
    assert_eq!(
        c.global.families,
        BTreeSet::from([Family::IPV4_UNICAST, Family::IPV6_UNICAST])
    );
    assert!(c.neighbors.is_empty() && c.originate.is_empty() && c.policies.is_empty());
}

#[test]
fn narrowest_range_wins() {
    let c = parse_ok(&format!(
        "{GLOBAL}\n[[neighbors]]\nrange = \"10.0.0.0/8\"\npeer_asn = 65010\n\
         [[neighbors]]\nrange = \"10.1.0.0/16\"\npeer_asn = 65011\n"
    ));
    let n = c.neighbor_for("10.1.2.3".parse().unwrap()).unwrap();
    assert_eq!(n.peer_as, PeerAs::Exact(65011));
    let n = c.neighbor_for("10.2.2.3".parse().unwrap()).unwrap();
    assert_eq!(n.peer_as, PeerAs::Exact(65010));
}

#[test]
fn parse_errors() {
    let e = Config::from_toml_str("[global]\nasn = 1\nrouter_id = \"10.0.0.1\"\nbogus = 1\n")
        .unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = Config::from_toml_str(&with_neighbor(
        "address = \"10.0.0.2\"\npeer_asn = 1\nhold = 3",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("hold"), "{e}");
    let e = Config::from_toml_str(&with_neighbor(
        "address = \"10.0.0.2\"\npeer_asn = 1\nfamilies = [\"ipv4-flowspec\"]",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("ipv4-flowspec"), "{e}");
    let e = Config::from_toml_str(&with_neighbor(
        "address = \"10.0.0.2\"\npeer_asn = 1\nadd_path = { ipv4-unicast = \"sideways\" }",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("sideways"), "{e}");
    let e = Config::from_toml_str(&with_neighbor("address = \"10.0.0.300\"\npeer_asn = 1"))
        .unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    let e = Config::from_toml_str(&with_neighbor(
        "address = \"10.0.0.2\"\npeer_asn = 1\nhold_time = 70000",
    ))
    .unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    let e = Config::from_toml_str(&with_neighbor(
        "address = \"10.0.0.2\"\npeer_asn = 1\nimport_policy = 3",
    ))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("a policy name or a list of policy names"),
        "{e}"
    );
    // No [global] at all.
    let e = Config::from_toml_str("").unwrap_err();
    assert!(e.to_string().contains("global"), "{e}");
}

#[test]
fn global_errors() {
    one_problem(
        "[global]\nasn = 0\nrouter_id = \"10.0.0.1\"\n",
        &["global: asn: AS 0"],
    );
    one_problem(
        "[global]\nasn = 23456\nrouter_id = \"10.0.0.1\"\n",
        &["global: asn:", "AS_TRANS"],
    );
    one_problem(
        "[global]\nasn = 1\nrouter_id = \"0.0.0.0\"\n",
        &["global: router_id: 0.0.0.0"],
    );
    one_problem(
        "[global]\nasn = 1\nrouter_id = \"224.0.0.1\"\n",
        &["global: router_id: 224.0.0.1"],
    );
    one_problem(
        "[global]\nasn = 1\nrouter_id = \"10.0.0.1\"\nlisten = { addresses = [\"::\", \"::\"] }\n",
        &["global: listen.addresses: :: is listed more than once"],
    );
    one_problem(
        "[global]\nasn = 1\nrouter_id = \"10.0.0.1\"\nfamilies = []\n",
        &["global: families:"],
    );
}

#[test]
fn originate_errors() {
    one_problem(
        &format!("originate = [\"10.0.0.1/24\"]\n{GLOBAL}"),
        &["originate", "write 10.0.0.0/24"],
    );
    one_problem(
        &format!("originate = [\"10.0.0.0/24\", \"10.0.0.0/24\"]\n{GLOBAL}"),
        &["10.0.0.0/24 is listed more than once"],
    );
    one_problem(
        &format!("originate = [\"2001:db8::/32\"]\n{GLOBAL}families = [\"ipv4-unicast\"]\n"),
        &["2001:db8::/32: ipv6-unicast is not in global.families"],
    );
}

#[test]
fn neighbor_identity_errors() {
    one_problem(
        &with_neighbor("peer_asn = 1"),
        &["neighbors[0]: address: one of address or range"],
    );
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\nrange = \"10.1.0.0/16\"\npeer_asn = 1"),
        &["neighbors[0]: address: address and range exclude each other"],
    );
    one_problem(
        &with_neighbor("address = \"0.0.0.0\"\npeer_asn = 1"),
        &["neighbor 0.0.0.0: address:"],
    );
    one_problem(
        &with_neighbor("address = \"ff02::1\"\npeer_asn = 1"),
        &["neighbor ff02::1: address:"],
    );
    one_problem(
        &with_neighbor("range = \"10.1.1.5/24\"\npeer_asn = 1"),
        &["neighbor 10.1.1.5/24: range:", "write 10.1.1.0/24"],
    );
    one_problem(
        &format!(
            "{GLOBAL}[[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 1\n\
             [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\n"
        ),
        &["neighbor 10.0.0.2: address: defined more than once"],
    );
}

#[test]
fn neighbor_as_errors() {
    one_problem(
        &with_neighbor("address = \"10.0.0.2\""),
        &["neighbor 10.0.0.2: peer_asn: peer_asn is required"],
    );
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\npeer_asn = 0"),
        &["neighbor 10.0.0.2: peer_asn: AS 0"],
    );
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\npeer_asn = 23456"),
        &["peer_asn:", "AS_TRANS"],
    );
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\nallowed_asns = [1]"),
        &["neighbor 10.0.0.2: allowed_asns: only range neighbors"],
    );
    one_problem(
        &with_neighbor("range = \"10.1.0.0/16\""),
        &["neighbor 10.1.0.0/16: peer_asn: a range needs"],
    );
    one_problem(
        &with_neighbor("range = \"10.1.0.0/16\"\npeer_asn = 1\nallowed_asns = [2]"),
        &["allowed_asns: peer_asn and allowed_asns exclude each other"],
    );
    one_problem(
        &with_neighbor("range = \"10.1.0.0/16\"\nallowed_asns = [5, 0]"),
        &["allowed_asns: AS 0"],
    );
}

#[test]
fn neighbor_address_and_passive_errors() {
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\npeer_asn = 1\nlocal_address = \"::1\""),
        &["neighbor 10.0.0.2: local_address: ::1 is not of the neighbor's address family"],
    );
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\npeer_asn = 1\nlocal_address = \"0.0.0.0\""),
        &["local_address: 0.0.0.0 is not a unicast address"],
    );
    one_problem(
        &with_neighbor("range = \"10.1.0.0/16\"\npeer_asn = 1\npassive = false"),
        &["neighbor 10.1.0.0/16: passive: dynamic neighbors only accept"],
    );
    let no_v6_listener = format!(
        "{GLOBAL}listen = {{ addresses = [\"0.0.0.0\"] }}\n\
         [[neighbors]]\naddress = \"2001:db8::2\"\npeer_asn = 1\npassive = true\n"
    );
    one_problem(
        &no_v6_listener,
        &["neighbor 2001:db8::2: passive: a passive neighbor needs an IPv6 address"],
    );
    let no_listener = format!(
        "{GLOBAL}listen = {{ addresses = [] }}\n[[neighbors]]\nrange = \"10.1.0.0/16\"\npeer_asn = 1\n"
    );
    one_problem(
        &no_listener,
        &["neighbor 10.1.0.0/16: passive: a range needs an IPv4 address"],
    );
    // Active neighbors do not need a listener.
    parse_ok(&format!(
        "{GLOBAL}listen = {{ addresses = [] }}\n[[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 1\n"
    ));
}

#[test]
fn neighbor_timer_errors() {
    let n = |extra: &str| with_neighbor(&format!("address = \"10.0.0.2\"\npeer_asn = 1\n{extra}"));
    one_problem(
        &n("hold_time = 2"),
        &["neighbor 10.0.0.2: hold_time: 2 is neither 0 nor at least 3"],
    );
    one_problem(&n("hold_time = 1"), &["hold_time: 1 is neither"]);
    one_problem(
        &n("hold_time = 0\nkeepalive = 10"),
        &["keepalive: 10: with hold_time 0"],
    );
    one_problem(
        &n("hold_time = 9\nkeepalive = 0"),
        &["keepalive: 0: with hold_time 9"],
    );
    one_problem(
        &n("hold_time = 9\nkeepalive = 9"),
        &["keepalive: 9 is not below hold_time 9"],
    );
    one_problem(
        &n("connect_retry = 0"),
        &["neighbor 10.0.0.2: connect_retry: must be at least 1"],
    );
    let c = parse_ok(&n("hold_time = 3"));
    assert_eq!(c.neighbors[0].keepalive, 1);
    let c = parse_ok(&n("hold_time = 0"));
    assert_eq!(c.neighbors[0].keepalive, 0);
}

#[test]
fn neighbor_md5_errors() {
    let n = |extra: &str| with_neighbor(&format!("address = \"10.0.0.2\"\npeer_asn = 1\n{extra}"));
    one_problem(
        &n("md5_password = \"a\"\nmd5_password_file = \"/nonexistent\""),
        &["neighbor 10.0.0.2: md5_password: md5_password and md5_password_file exclude each other"],
    );
    one_problem(
        &n("md5_password = \"\""),
        &["md5_password: the TCP MD5 password is empty"],
    );
    one_problem(
        &n(&format!("md5_password = \"{}\"", "x".repeat(81))),
        &["md5_password:", "81 bytes"],
    );
    one_problem(
        &n("md5_password_file = \"/nonexistent/contiv-md5.key\""),
        &["neighbor 10.0.0.2: md5_password_file: reading /nonexistent/contiv-md5.key"],
    );
}

#[test]
fn md5_password_file_is_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tor.key"), "from-file\n").unwrap();
    std::fs::write(dir.path().join("empty.key"), "\n").unwrap();
    let path = dir.path().join("speaker.toml");
    std::fs::write(
        &path,
        with_neighbor("address = \"10.0.0.2\"\npeer_asn = 1\nmd5_password_file = \"tor.key\""),
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(
        c.neighbors[0]
            .md5_password
            .as_ref()
            .unwrap()
            .expose_secret(),
        "from-file"
    );

    std::fs::write(
        &path,
        with_neighbor("address = \"10.0.0.2\"\npeer_asn = 1\nmd5_password_file = \"empty.key\""),
    )
    .unwrap();
    let e = Config::load(&path).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("md5_password_file: the TCP MD5 password is empty"),
        "{text}"
    );

    let missing = dir.path().join("missing.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(
        matches!(e, ConfigError::Read { .. }) && e.to_string().contains("missing.toml"),
        "{e}"
    );
}

#[test]
fn neighbor_ttl_errors() {
    let n = |extra: &str| with_neighbor(&format!("address = \"10.0.0.2\"\npeer_asn = 2\n{extra}"));
    one_problem(
        &n("ttl_security = 255"),
        &["neighbor 10.0.0.2: ttl_security: 255 hops"],
    );
    one_problem(
        &n("ttl_security = 1\nebgp_multihop = 2"),
        &["ebgp_multihop: ttl_security and ebgp_multihop exclude each other"],
    );
    one_problem(&n("ebgp_multihop = 0"), &["ebgp_multihop: a TTL of 0"]);
    one_problem(
        &with_neighbor("address = \"10.0.0.2\"\npeer_asn = 65001\nebgp_multihop = 2"),
        &["ebgp_multihop: applies to eBGP neighbors only"],
    );
}

#[test]
fn neighbor_family_errors() {
    let n = |extra: &str| with_neighbor(&format!("address = \"10.0.0.2\"\npeer_asn = 2\n{extra}"));
    one_problem(
        &n("families = []"),
        &["neighbor 10.0.0.2: families: at least one"],
    );
    one_problem(
        &format!(
            "{GLOBAL}families = [\"ipv4-unicast\"]\n[[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\n\
             families = [\"ipv6-unicast\"]\n"
        ),
        &["families: ipv6-unicast is not in global.families"],
    );
    one_problem(
        &n("families = [\"ipv4-unicast\"]\nadd_path = { ipv6-unicast = \"send\" }"),
        &["neighbor 10.0.0.2: add_path: ipv6-unicast is not one of the neighbor's families"],
    );
}

#[test]
fn neighbor_gr_policy_and_limit_errors() {
    let n = |extra: &str| with_neighbor(&format!("address = \"10.0.0.2\"\npeer_asn = 2\n{extra}"));
    one_problem(
        &n("graceful_restart = { enabled = true, restart_time = 4096 }"),
        &["neighbor 10.0.0.2: graceful_restart.restart_time: 4096 is above 4095"],
    );
    one_problem(
        &n("graceful_restart = { stale_time = 0 }"),
        &["graceful_restart.stale_time: must be at least 1"],
    );
    one_problem(
        &n("import_policy = \"\""),
        &["import_policy: a policy name is empty"],
    );
    one_problem(
        &n("export_policy = [\"a\", \" \"]"),
        &["export_policy: a policy name is empty"],
    );
    one_problem(
        &n("max_prefix = 0"),
        &["neighbor 10.0.0.2: max_prefix: 0 would refuse"],
    );
    one_problem(
        &n("bfd_interval = 100"),
        &["neighbor 10.0.0.2: bfd_interval: only with bfd = true"],
    );
    one_problem(
        &n("bfd = true\nbfd_interval = 10"),
        &["bfd_interval: must be 50..=60000 milliseconds"],
    );
    one_problem(
        &n("bfd = true\nbfd_multiplier = 0"),
        &["bfd_multiplier: must be 1..=255"],
    );
}

#[test]
fn bfd_timers_default_to_300_ms_times_3() {
    let c = Config::from_toml_str(
        "[global]\nasn = 1\nrouter_id = \"10.0.0.1\"\n\
         [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\nbfd = true\n\
         [[neighbors]]\naddress = \"10.0.0.3\"\npeer_asn = 2\nbfd = true\nbfd_interval = 100\nbfd_multiplier = 5\n",
    )
    .unwrap();
    let t: Vec<(bool, u32, u8)> = c
        .neighbors
        .iter()
        .map(|n| (n.bfd, n.bfd_interval_ms, n.bfd_multiplier))
        .collect();
    assert_eq!(t, vec![(true, 300, 3), (true, 100, 5)]);
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = "[global]\nasn = 0\nrouter_id = \"10.0.0.1\"\n\
         [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\nhold_time = 1\nmax_prefix = 0\n\
         [[neighbors]]\naddress = \"10.0.0.3\"\n";
    let p = problems(text);
    assert_eq!(p.len(), 4, "{p:#?}");
    let e = Config::from_toml_str(text).unwrap_err().to_string();
    assert!(e.starts_with("config is invalid:\n"), "{e}");
    assert_eq!(e.lines().count(), 5, "{e}");
}

// ---- diff ----------------------------------------------------------------------------

fn key(s: &str) -> NeighborKey {
    match s.parse::<IpAddr>() {
        Ok(a) => NeighborKey::Address(a),
        Err(_) => NeighborKey::Range(s.parse().unwrap()),
    }
}

#[test]
fn diff_of_identical_configs_is_empty() {
    let a = parse_ok(REALISTIC);
    assert!(diff(&a, &a.clone()).is_empty());
}

#[test]
fn diff_added_removed_and_address_change() {
    let old = parse_ok(REALISTIC);
    let text = REALISTIC
        .replace("address = \"192.0.2.10\"", "address = \"192.0.2.11\"")
        .replace("range = \"10.1.1.0/24\"", "range = \"10.1.2.0/24\"");
    let new = parse_ok(&text);
    let d = diff(&old, &new);
    assert_eq!(d.added, vec![key("192.0.2.11"), key("10.1.2.0/24")]);
    assert_eq!(d.removed, vec![key("192.0.2.10"), key("10.1.1.0/24")]);
    assert!(d.changed.is_empty() && !d.reset_all && !d.listen_changed && !d.policies_changed);
}

#[test]
fn diff_classifies_neighbor_changes() {
    let old = parse_ok(REALISTIC);
    // Policy and description: a reset, for the policy (no soft reconfiguration).
    let new = parse_ok(
        &REALISTIC
            .replace(
                "import_policy = \"from-tor\"",
                "import_policy = \"from-tor-v2\"",
            )
            .replace(
                "description = \"tor-1\"",
                "description = \"tor-1 (rack 3)\"",
            ),
    );
    let d = diff(&old, &new);
    assert_eq!(d.changed.len(), 1);
    let c = &d.changed[0];
    assert_eq!(c.key, key("10.0.0.2"));
    assert_eq!(
        c.fields,
        vec![NeighborField::Description, NeighborField::ImportPolicy]
    );
    assert!(c.needs_reset() && c.policy_changed());
    assert_eq!(d.resets(), vec![key("10.0.0.2")]);

    // AS change: reset.
    let new = parse_ok(&REALISTIC.replace("peer_asn = 65100", "peer_asn = 65101"));
    let d = diff(&old, &new);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].fields, vec![NeighborField::PeerAs]);
    assert_eq!(d.resets(), vec![key("192.0.2.10")]);

    // Password, hold time, max-prefix, bfd, keepalive: reset; GR (speaker-wide): no
    // reset.
    let new = parse_ok(&REALISTIC.replace(
        "md5_password = \"tor-secret\"",
        "md5_password = \"rotated\"",
    ));
    assert_eq!(
        diff(&old, &new).changed[0].fields,
        vec![NeighborField::Md5Password]
    );
    assert!(diff(&old, &new).changed[0].needs_reset());
    let new = parse_ok(&REALISTIC.replace("stale_time = 300", "stale_time = 200"));
    assert!(!diff(&old, &new).changed[0].needs_reset());
    let new = parse_ok(
        &REALISTIC
            .replace("max_prefix = 10000", "max_prefix = 20000")
            .replace("bfd = true", "bfd = false"),
    );
    let d = diff(&old, &new);
    assert_eq!(
        d.changed[0].fields,
        vec![NeighborField::MaxPrefix, NeighborField::Bfd]
    );
    assert!(d.changed[0].needs_reset());
    let new = parse_ok(&REALISTIC.replace("keepalive = 3", "keepalive = 2"));
    assert!(diff(&old, &new).changed[0].needs_reset());
    let new = parse_ok(&REALISTIC.replace("hold_time = 9", "hold_time = 12"));
    let d = diff(&old, &new);
    assert_eq!(d.changed[0].fields, vec![NeighborField::HoldTime]);
    assert!(d.changed[0].needs_reset());

    // Allowed ASes of a range.
    let new =
        parse_ok(&REALISTIC.replace("allowed_asns = [65010, 65011]", "allowed_asns = [65010]"));
    assert_eq!(diff(&old, &new).resets(), vec![key("10.1.1.0/24")]);
}

/// The one reset predicate, field by field: a reset for every setting the speaker runs
/// per neighbor (it applies them when a session starts); none for the description, nor
/// for the families and graceful restart, which it does not take per neighbor.
/// `needs_reset` used to leave policies, max-prefix, BFD, timers and passive without a
/// reset (they never took effect) and reset for families and graceful restart (which a
/// reset did not apply); contiv-bgpd's reload had its own, different list.
#[test]
fn reset_predicate_is_what_the_speaker_applies_per_session() {
    use NeighborField::*;
    let all = [
        PeerAs,
        Description,
        LocalAddress,
        Passive,
        HoldTime,
        Keepalive,
        ConnectRetry,
        Md5Password,
        TtlSecurity,
        EbgpMultihop,
        Families,
        AddPath,
        GracefulRestart,
        ImportPolicy,
        ExportPolicy,
        MaxPrefix,
        Bfd,
    ];
    let kept: Vec<NeighborField> = all.into_iter().filter(|f| !f.needs_reset()).collect();
    assert_eq!(kept, vec![Description, Families, GracefulRestart]);
    // And as `diff` reports them.
    let old = parse_ok(REALISTIC);
    for (from, to, field) in [
        ("\"tag-leaf\"]", "\"tag-leaf-v2\"]", ExportPolicy),
        ("passive = true", "passive = false", Passive),
        (
            "families = [\"ipv6-unicast\"]\nadd",
            "families = [\"ipv4-unicast\", \"ipv6-unicast\"]\nadd",
            Families,
        ),
        ("max_prefix = 10000", "max_prefix = 20000", MaxPrefix),
        ("connect_retry = 5", "connect_retry = 6", ConnectRetry),
    ] {
        assert!(REALISTIC.contains(from), "{from}");
        let d = diff(&old, &parse_ok(&REALISTIC.replace(from, to)));
        assert_eq!(d.changed[0].fields, vec![field]);
        let resets = if field.needs_reset() {
            vec![d.changed[0].key]
        } else {
            vec![]
        };
        assert_eq!(d.resets(), resets, "{}", field.name());
    }
}

#[test]
fn diff_global_originate_and_policies() {
    let old = parse_ok(REALISTIC);
    let d = diff(
        &old,
        &parse_ok(&REALISTIC.replace("router_id = \"10.0.0.1\"", "router_id = \"10.0.0.5\"")),
    );
    assert!(d.reset_all && d.changed.is_empty());
    let d = diff(
        &old,
        &parse_ok(&REALISTIC.replace("port = 179", "port = 1179")),
    );
    assert!(d.listen_changed && !d.reset_all);
    let d = diff(
        &old,
        &parse_ok(&REALISTIC.replace(
            "originate = [\"10.10.0.0/24\", \"2001:db8:10::/64\"]",
            "originate = [\"10.10.0.0/24\", \"10.20.0.0/24\"]",
        )),
    );
    assert_eq!(
        d.originate_added,
        vec!["10.20.0.0/24".parse::<IpNet>().unwrap()]
    );
    assert_eq!(
        d.originate_removed,
        vec!["2001:db8:10::/64".parse::<IpNet>().unwrap()]
    );
    assert!(d.changed.is_empty());
    let d = diff(
        &old,
        &parse_ok(&REALISTIC.replace("action = \"accept\"\n", "action = \"reject\"\n")),
    );
    assert!(d.policies_changed && d.changed.is_empty());
    assert!(!d.is_empty());
}

#[test]
fn diff_global_families_reach_neighbors_that_follow_them() {
    let text = |fams: &str| {
        format!(
            "[global]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nfamilies = {fams}\n\
             [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\n\
             [[neighbors]]\naddress = \"10.0.0.3\"\npeer_asn = 3\nfamilies = [\"ipv4-unicast\"]\n"
        )
    };
    let old = parse_ok(&text("[\"ipv4-unicast\", \"ipv6-unicast\"]"));
    let new = parse_ok(&text("[\"ipv4-unicast\"]"));
    let d = diff(&old, &new);
    assert!(d.families_changed);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].key, key("10.0.0.2"));
    assert_eq!(d.changed[0].fields, vec![NeighborField::Families]);
    // The speaker offers IPv4 and IPv6 unicast on every session: a reset would not
    // apply the change (see `NeighborField::needs_reset`).
    assert!(d.resets().is_empty());
}

#[test]
fn bfd_auth_reads_its_key_from_a_file() {
    use crate::bfd::AuthType;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tor.bfd"), "bfd-key\n").unwrap();
    std::fs::write(dir.path().join("long.bfd"), "x".repeat(21)).unwrap();
    let file = dir.path().join("bgpd.toml");
    let base = "[global]\nasn = 1\nrouter_id = \"10.0.0.1\"\n\
                [[neighbors]]\naddress = \"10.0.0.2\"\npeer_asn = 2\n";
    let load = |extra: &str| {
        std::fs::write(&file, format!("{base}{extra}")).unwrap();
        Config::load(&file)
    };
    let c = load("bfd = true\nbfd_auth = { secret_file = \"tor.bfd\" }\n").unwrap();
    let k = c.neighbors[0].bfd_auth.clone().expect("a key");
    assert_eq!(
        (k.auth_type(), k.key_id()),
        (AuthType::MeticulousKeyedSha1, 1)
    );
    assert_eq!(
        k,
        crate::bfd::AuthKey::new(AuthType::MeticulousKeyedSha1, 1, b"bfd-key".to_vec()).unwrap()
    );
    assert!(!format!("{c:?}").contains("bfd-key"), "Debug shows the key");
    let c = load(
        "bfd = true\nbfd_auth = { type = \"keyed-md5\", key_id = 9, secret_file = \"tor.bfd\" }\n",
    )
    .unwrap();
    let k = c.neighbors[0].bfd_auth.clone().unwrap();
    assert_eq!((k.auth_type(), k.key_id()), (AuthType::KeyedMd5, 9));
    for (extra, want) in [
        (
            "bfd_auth = { secret_file = \"tor.bfd\" }\n",
            "bfd_auth: only with bfd = true",
        ),
        (
            "bfd = true\nbfd_auth = { type = \"simple\", secret_file = \"tor.bfd\" }\n",
            "bfd_auth.type: unknown BFD authentication type",
        ),
        (
            "bfd = true\nbfd_auth = { secret_file = \"missing.bfd\" }\n",
            "bfd_auth.secret_file: reading",
        ),
        (
            "bfd = true\nbfd_auth = { secret_file = \"long.bfd\" }\n",
            "bfd_auth.secret_file: the BFD authentication secret is 21 bytes",
        ),
    ] {
        let e = load(extra).unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
}
