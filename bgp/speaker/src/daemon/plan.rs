//! contiv-bgpd's configuration planning, pure: what the driver is given for a
//! configuration ([`speaker_config`], [`peer_config`] with the neighbor's policies
//! resolved by [`neighbor_policy`]), the settings it does not run ([`ignored`]), and the
//! [`Step`]s a reload takes from one configuration to the next ([`plan`]).
//!
//! Whether a changed neighbor's session is reset is [`NeighborChange::needs_reset`], the
//! one predicate [`config::diff`] uses too.
//!
//! [`NeighborChange::needs_reset`]: crate::config::NeighborChange::needs_reset

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{self, Config, Neighbor, NeighborKey};
use crate::driver::{GracefulRestartConfig, PeerConfig, SpeakerConfig};
use crate::transport::BGP_PORT;

/// Most next hops in one ECMP group of learned routes.
pub const MAX_PATHS: usize = 16;

/// Most dynamic neighbors of one range at a time (FRR's default `bgp listen limit`);
/// further connections from the range are refused and logged.
pub const DYNAMIC_LIMIT: usize = 100;

/// A neighbor's policies that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The `[policies]` section does not interpret.
    #[error("policies: {0}")]
    Section(#[source] toml::de::Error),
    /// A neighbor names a policy the section does not have.
    #[error("{field} {name:?} is not in [policies]")]
    Unknown { field: &'static str, name: String },
    /// A neighbor names several policies for one direction.
    #[error("{field}: one policy per neighbor for now, got {names:?}")]
    Several {
        field: &'static str,
        names: Vec<String>,
    },
}

/// The speaker-wide settings of a configuration.
pub fn speaker_config(c: &Config) -> SpeakerConfig {
    SpeakerConfig {
        asn: c.global.asn,
        router_id: c.global.router_id,
        listen: c
            .global
            .listen
            .addresses
            .first()
            .map(|a| SocketAddr::new(*a, c.global.listen.port)),
        max_paths: MAX_PATHS,
        export_learned: c.global.export_learned,
        // Nothing is installed in a FIB: the route dump asks the Loc-RIB instead.
        publish_routes: false,
        communities: Vec::new(),
        large_communities: Vec::new(),
        // The speaker runs graceful restart for all its sessions: on when a neighbor
        // asks for it, with the first such neighbor's timers.
        graceful_restart: speaker_gr(c).map(|g| GracefulRestartConfig {
            restart_time: g.restart_time,
            restarting: false,
            stale_time: Duration::from_secs(u64::from(g.stale_time)),
        }),
    }
}

/// The graceful restart settings the speaker runs with: the first neighbor's that
/// enables it.
pub fn speaker_gr(c: &Config) -> Option<config::GracefulRestart> {
    c.neighbors
        .iter()
        .map(|n| n.graceful_restart)
        .find(|g| g.enabled)
}

/// The `[policies]` section, interpreted.
pub fn policies(c: &Config) -> Result<bgp::policy::Policies, PolicyError> {
    toml::Value::Table(c.policies.clone())
        .try_into()
        .map_err(PolicyError::Section)
}

/// Every neighbor whose policies do not resolve, with the reason, in file order.
pub fn policy_problems(c: &Config) -> Vec<(NeighborKey, PolicyError)> {
    c.neighbors
        .iter()
        .filter_map(|n| neighbor_policy(c, n).err().map(|e| (n.key, e)))
        .collect()
}

/// A neighbor's policies by name; several names are not supported yet.
pub fn neighbor_policy(
    c: &Config,
    n: &Neighbor,
) -> Result<bgp::policy::NeighborPolicy, PolicyError> {
    let all = policies(c)?;
    let pick = |field: &'static str,
                names: &[String]|
     -> Result<Option<bgp::policy::Policy>, PolicyError> {
        match names {
            [] => Ok(None),
            [one] => all
                .get(one)
                .cloned()
                .map(Some)
                .ok_or_else(|| PolicyError::Unknown {
                    field,
                    name: one.clone(),
                }),
            _ => Err(PolicyError::Several {
                field,
                names: names.to_vec(),
            }),
        }
    };
    Ok(bgp::policy::NeighborPolicy {
        import: pick("import_policy", &n.import_policy)?,
        export: pick("export_policy", &n.export_policy)?,
        max_prefix: n.max_prefix.map(|limit| bgp::policy::MaxPrefix {
            limit,
            warning_only: false,
            restart_after: None,
        }),
    })
}

/// The driver's view of a neighbor; for a range, the template of its dynamic neighbors
/// (its address is the range's first; each dynamic neighbor gets its own).
pub fn peer_config(c: &Config, n: &Neighbor) -> PeerConfig {
    let local_asn = c.global.asn;
    let addr = n.key.prefix().addr();
    let (remote_as, allowed_as) = match &n.peer_as {
        config::PeerAs::Exact(a) => (Some(*a), Vec::new()),
        config::PeerAs::AnyOf(set) => (None, set.iter().copied().collect()),
    };
    PeerConfig {
        addr,
        port: BGP_PORT,
        remote_as,
        allowed_as,
        passive: n.passive,
        hold_time: n.hold_time,
        keepalive: n.keepalive,
        connect_retry: Duration::from_secs(n.connect_retry.into()),
        transport: n.transport_opts(local_asn),
        description: n.description.clone().unwrap_or_default(),
        next_hop_v6: None,
        // Checked when the configuration was loaded.
        policy: neighbor_policy(c, n).unwrap_or_default(),
        ebgp_requires_policy: c.global.ebgp_requires_policy,
        add_path_receive: n.add_path.values().any(|m| m.receives()),
        add_path_send: n.add_path.values().any(|m| m.sends()),
        // BFD with FRR's default timers: 300 ms × 3.
        bfd: n.bfd.then(|| {
            let every = Duration::from_millis(u64::from(n.bfd_interval_ms));
            crate::bfd::BfdConfig {
                desired_min_tx: every,
                required_min_rx: every,
                detect_mult: n.bfd_multiplier,
            }
        }),
        bfd_auth: n.bfd.then(|| n.bfd_auth.clone()).flatten(),
    }
}
/// The settings of a valid configuration that this speaker does not run, one sentence
/// each.
pub fn ignored(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let listen = &c.global.listen.addresses;
    if listen.len() > 1 {
        let rest: Vec<String> = listen[1..].iter().map(|a| a.to_string()).collect();
        out.push(format!(
            "global.listen.addresses: only {} is listened on; {} ignored",
            listen[0],
            rest.join(", ")
        ));
    }
    for n in &c.neighbors {
        let at = format!("neighbor {}", n.key);
        if n.passive
            && listen
                .first()
                .is_none_or(|l| l.is_ipv4() != n.key.prefix().addr().is_ipv4())
        {
            out.push(format!(
                "{at}: passive, but no listener of its address family; the session cannot come up"
            ));
        }
        let mut fields: Vec<String> = Vec::new();
        // The speaker offers one ADD-PATH mode for both unicast families: a setting that
        // differs per family is widened.
        let mut modes = n.add_path.values();
        let first = modes.next();
        if modes.any(|m| Some(m) != first)
            || (!n.add_path.is_empty() && n.add_path.len() < n.families.len())
        {
            fields.push(
                "add_path per family (the speaker offers the union of the modes for every family)"
                    .into(),
            );
        }
        if n.graceful_restart.enabled && speaker_gr(c) != Some(n.graceful_restart) {
            fields.push(
                "graceful_restart (differing per neighbor; the first neighbor's applies to all)"
                    .into(),
            );
        }
        if !fields.is_empty() {
            out.push(format!(
                "{at}: {} not implemented by the speaker yet; ignored",
                fields.join(", ")
            ));
        }
    }
    out
}

/// What a reload does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Our AS, router id or listen socket changed: a new speaker with every session.
    RestartAll(&'static str),
    /// A neighbor removed (a range: with its dynamic neighbors).
    Remove(NeighborKey),
    Add(NeighborKey),
    /// A changed neighbor whose session is reset (fields named as in the file); for a
    /// range, every dynamic neighbor's.
    Reset(NeighborKey, Vec<&'static str>),
    /// A changed neighbor whose session is left alone (nothing the driver uses changed).
    Keep(NeighborKey, Vec<&'static str>),
    Originate(Vec<IpNet>),
    Withdraw(Vec<IpNet>),
}

/// The steps that bring the running speaker from `old` to `new`.
pub fn plan(old: &Config, new: &Config) -> Vec<Step> {
    let d = config::diff(old, new);
    if d.reset_all {
        return vec![Step::RestartAll("the AS or router id changed")];
    }
    if speaker_config(old).listen != speaker_config(new).listen {
        return vec![Step::RestartAll("the listen socket changed")];
    }
    if old.global.export_learned != new.global.export_learned
        || old.global.ebgp_requires_policy != new.global.ebgp_requires_policy
        || old.policies != new.policies
    {
        return vec![Step::RestartAll(
            "export_learned, ebgp_requires_policy or [policies] changed",
        )];
    }
    let mut steps: Vec<Step> = Vec::new();
    steps.extend(d.removed.iter().copied().map(Step::Remove));
    for c in &d.changed {
        let names: Vec<&'static str> = c.fields.iter().map(|f| f.name()).collect();
        if c.needs_reset() {
            steps.push(Step::Reset(c.key, names))
        } else {
            steps.push(Step::Keep(c.key, names))
        }
    }
    steps.extend(d.added.iter().copied().map(Step::Add));
    if !d.originate_removed.is_empty() {
        steps.push(Step::Withdraw(d.originate_removed));
    }
    if !d.originate_added.is_empty() {
        steps.push(Step::Originate(d.originate_added));
    }
    steps
}

/// `10.0.0.2 (tor-1)`, or the address alone; a dynamic neighbor names its range:
/// `10.1.1.7 (dynamic, range 10.1.1.0/24, leaves)`.
pub fn describe(c: &Config, addr: IpAddr) -> String {
    let Some(n) = c.neighbor_for(addr) else {
        return addr.to_string();
    };
    let desc = n.description.as_deref().filter(|d| !d.is_empty());
    match (n.key, desc) {
        (NeighborKey::Address(_), Some(d)) => format!("{addr} ({d})"),
        (NeighborKey::Address(_), None) => addr.to_string(),
        (NeighborKey::Range(r), Some(d)) => format!("{addr} (dynamic, range {r}, {d})"),
        (NeighborKey::Range(r), None) => format!("{addr} (dynamic, range {r})"),
    }
}

/// Prefixes for the log: `a, b, c`, or `nothing`.
pub fn list(prefixes: &[IpNet]) -> String {
    if prefixes.is_empty() {
        return "nothing".into();
    }
    prefixes
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
originate = ["20.1.1.0/24", "20.1.2.0/24"]

[global]
asn = 65201
router_id = "10.1.1.1"

[[neighbors]]
address = "10.1.1.0"
peer_asn = 65001
description = "tor1"
hold_time = 9
connect_retry = 2

[[neighbors]]
address = "10.1.2.0"
peer_asn = 65002
hold_time = 9
md5_password = "s3cret"
"#;

    fn cfg(text: &str) -> Config {
        Config::from_toml_str(text).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn addr(s: &str) -> NeighborKey {
        NeighborKey::Address(ip(s))
    }

    #[test]
    fn neighbors_map_to_the_driver() {
        let c = cfg(BASE);
        let sp = speaker_config(&c);
        assert_eq!(sp.asn, 65201);
        assert_eq!(sp.listen, Some("0.0.0.0:179".parse().unwrap()));
        let p = peer_config(&c, &c.neighbors[0]);
        assert_eq!(p.addr, ip("10.1.1.0"));
        assert_eq!(p.remote_as, Some(65001));
        assert_eq!((p.hold_time, p.keepalive), (9, 3));
        assert_eq!(p.connect_retry, Duration::from_secs(2));
        assert_eq!(p.description, "tor1");
        assert!(p.transport.md5_password.is_none());
        // eBGP without GTSM or multihop: TTL 1.
        assert_eq!(p.transport.ttl, crate::transport::TtlMode::Fixed(1));
        let p2 = peer_config(&c, &c.neighbors[1]);
        assert_eq!(
            p2.transport
                .md5_password
                .as_ref()
                .map(|p| p.expose_secret()),
            Some("s3cret")
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let c = Config::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/contiv-bgpd.toml"
        ))
        .unwrap();
        assert_eq!(c.neighbors.len(), 1);
        assert_eq!(c.originate.len(), 2);
        assert!(ignored(&c).is_empty(), "{:?}", ignored(&c));
    }

    #[test]
    fn nothing_changed_plans_nothing() {
        assert!(plan(&cfg(BASE), &cfg(BASE)).is_empty());
    }

    #[test]
    fn a_changed_password_resets_only_that_neighbor() {
        let new = cfg(&BASE.replace("\"s3cret\"", "\"other\""));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Reset(addr("10.1.2.0"), vec!["md5_password"])]
        );
    }

    #[test]
    fn a_description_change_leaves_the_session_alone() {
        let new = cfg(&BASE.replace("\"tor1\"", "\"tor-1\""));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Keep(
                NeighborKey::Address(ip("10.1.1.0")),
                vec!["description"]
            )]
        );
    }

    #[test]
    fn prefixes_and_neighbors_added_and_removed() {
        let new = cfg(&BASE
            .replace("\"20.1.2.0/24\"", "\"20.1.3.0/24\"")
            .replace("10.1.2.0", "10.1.3.0"));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![
                Step::Remove(addr("10.1.2.0")),
                Step::Add(addr("10.1.3.0")),
                Step::Withdraw(vec!["20.1.2.0/24".parse().unwrap()]),
                Step::Originate(vec!["20.1.3.0/24".parse().unwrap()]),
            ]
        );
    }

    #[test]
    fn identity_or_listen_changes_restart_everything() {
        let new = cfg(&BASE.replace("asn = 65201", "asn = 65202"));
        assert!(matches!(plan(&cfg(BASE), &new)[..], [Step::RestartAll(_)]));
        let new = cfg(&BASE.replace(
            "router_id = \"10.1.1.1\"",
            "router_id = \"10.1.1.1\"\nlisten = { addresses = [] }",
        ));
        assert!(matches!(plan(&cfg(BASE), &new)[..], [Step::RestartAll(_)]));
        // Only the second listen address changed: the listener is the same.
        let new = cfg(&BASE.replace(
            "router_id = \"10.1.1.1\"",
            "router_id = \"10.1.1.1\"\nlisten = { addresses = [\"0.0.0.0\"] }",
        ));
        assert!(plan(&cfg(BASE), &new).is_empty());
    }

    #[test]
    fn policies_are_resolved_and_checked() {
        let with = |extra: &str, neighbor: &str| {
            cfg(&format!(
                "{}\n{extra}",
                BASE.replace(
                    "hold_time = 9\nmd5",
                    &format!("hold_time = 9\n{neighbor}\nmd5")
                )
            ))
        };
        let c = with(
            "[policies.from-tor]\ndefault = \"reject\"\n[[policies.from-tor.terms]]\nthen = \"accept\"\n",
            "import_policy = \"from-tor\"\nmax_prefix = 10",
        );
        let p = neighbor_policy(&c, &c.neighbors[1]).unwrap();
        assert!(p.import.is_some() && p.export.is_none());
        assert_eq!(p.max_prefix.map(|m| m.limit), Some(10));
        let pc = peer_config(&c, &c.neighbors[1]);
        assert!(pc.ebgp_requires_policy, "RFC 8212 is the default");
        let c = with("", "import_policy = \"nosuch\"");
        assert!(
            neighbor_policy(&c, &c.neighbors[1])
                .unwrap_err()
                .to_string()
                .contains("nosuch")
        );
    }

    #[test]
    fn unimplemented_settings_are_reported() {
        let c = cfg(BASE);
        let w = ignored(&c);
        assert!(
            w.iter().any(|w| w.contains("only 0.0.0.0 is listened on")),
            "{w:?}"
        );
        let c = cfg(&BASE.replace(
            "hold_time = 9\nmd5",
            "hold_time = 9\nbfd = true\nmax_prefix = 10\nmd5",
        ));
        let w = ignored(&c);
        // BFD runs now (300 ms × 3): no longer reported as ignored.
        assert!(!w.iter().any(|w| w.contains("bfd")), "{w:?}");
        let n = c.neighbors.iter().find(|n| n.bfd).unwrap();
        assert_eq!(
            peer_config(&c, n).bfd,
            Some(crate::bfd::BfdConfig::default())
        );
    }

    const RANGE: &str = r#"
[[neighbors]]
range = "10.9.0.0/24"
allowed_asns = [65009, 65010]
hold_time = 30
md5_password = "r4nge"
description = "leaves"
"#;

    #[test]
    fn ranges_are_run_with_their_settings() {
        let c = cfg(&format!("{BASE}{RANGE}"));
        // Nothing reported about the range: it is run.
        let w = ignored(&c);
        assert!(w.iter().all(|w| !w.contains("10.9.0.0/24")), "{w:?}");
        let p = peer_config(&c, &c.neighbors[2]);
        assert_eq!(p.remote_as, None);
        assert_eq!(p.allowed_as, vec![65009, 65010]);
        assert!(p.passive, "dynamic neighbors only accept");
        assert_eq!((p.hold_time, p.keepalive), (30, 10));
        assert_eq!(
            p.transport.md5_password.as_ref().map(|p| p.expose_secret()),
            Some("r4nge")
        );
        assert!(p.accepts_as(65010) && !p.accepts_as(65011));
        // One AS: the FSM checks it exactly.
        let c = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("allowed_asns = [65009, 65010]", "peer_asn = 65009")
        ));
        let p = peer_config(&c, &c.neighbors[2]);
        assert_eq!((p.remote_as, p.allowed_as.is_empty()), (Some(65009), true));
        // A dynamic neighbor is logged with its range.
        let c = cfg(&format!("{BASE}{RANGE}"));
        assert_eq!(
            describe(&c, ip("10.9.0.7")),
            "10.9.0.7 (dynamic, range 10.9.0.0/24, leaves)"
        );
        assert_eq!(describe(&c, ip("10.1.1.0")), "10.1.1.0 (tor1)");
        assert_eq!(describe(&c, ip("10.8.0.1")), "10.8.0.1");
    }

    #[test]
    fn reloads_add_remove_and_reset_ranges() {
        let range = NeighborKey::Range("10.9.0.0/24".parse().unwrap());
        let with = cfg(&format!("{BASE}{RANGE}"));
        assert_eq!(plan(&cfg(BASE), &with), vec![Step::Add(range)]);
        assert_eq!(plan(&with, &cfg(BASE)), vec![Step::Remove(range)]);
        // A setting the driver uses resets the range's dynamic neighbors.
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("[65009, 65010]", "[65009]")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Reset(range, vec!["peer_asn"])]
        );
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("\"r4nge\"", "\"other\"")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Reset(range, vec!["md5_password"])]
        );
        // The description only: left alone.
        let new = cfg(&format!("{BASE}{}", RANGE.replace("leaves", "spines")));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Keep(range, vec!["description"])]
        );
        // A changed prefix is a removal and an addition.
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("10.9.0.0/24", "10.9.1.0/24")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![
                Step::Remove(range),
                Step::Add(NeighborKey::Range("10.9.1.0/24".parse().unwrap()))
            ]
        );
    }

    #[test]
    fn add_path_receive_is_run_and_only_send_is_reported() {
        let with = |add_path: &str| {
            cfg(&BASE.replace(
                "hold_time = 9\nmd5",
                &format!("hold_time = 9\nadd_path = {{ {add_path} }}\nmd5"),
            ))
        };
        // What is reported about the neighbors (BASE's second listen address aside).
        let about_neighbors = |c: &Config| -> Vec<String> {
            ignored(c)
                .into_iter()
                .filter(|w| w.starts_with("neighbor "))
                .collect()
        };
        // Receive for every family: run (offered in our OPEN), nothing reported.
        let c = with("ipv4-unicast = \"receive\", ipv6-unicast = \"receive\"");
        assert!(about_neighbors(&c).is_empty(), "{:?}", ignored(&c));
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(p.add_path_receive && !p.add_path_send);
        // No add_path: not offered.
        let c = cfg(BASE);
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(!p.add_path_receive && !p.add_path_send);
        // Send for every family: run.
        let c = with("ipv4-unicast = \"send\", ipv6-unicast = \"send\"");
        assert!(about_neighbors(&c).is_empty(), "{:?}", ignored(&c));
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(!p.add_path_receive && p.add_path_send);
        // Modes differing per family (or a family left out): widened, and said so.
        let c = with("ipv4-unicast = \"both\", ipv6-unicast = \"receive\"");
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(p.add_path_receive && p.add_path_send);
        assert_eq!(
            about_neighbors(&c),
            vec![
                "neighbor 10.1.2.0: add_path per family (the speaker offers the union of the \
                 modes for every family) not implemented by the speaker yet; ignored"
                    .to_string()
            ]
        );
        let c = with("ipv4-unicast = \"receive\"");
        assert_eq!(about_neighbors(&c).len(), 1, "{:?}", ignored(&c));
        // Changing it resets the session (the capability is in our OPEN).
        let new = with("ipv4-unicast = \"receive\"");
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Reset(addr("10.1.2.0"), vec!["add_path"])]
        );
    }

    #[test]
    fn a_max_prefix_change_resets_the_session_so_that_it_takes_effect() {
        let new = BASE.replace(
            "md5_password = \"s3cret\"",
            "md5_password = \"s3cret\"\nmax_prefix = 10",
        );
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            vec![Step::Reset(addr("10.1.2.0"), vec!["max_prefix"])]
        );
    }

    /// A reload resets a changed neighbor exactly when the library's diff says it needs
    /// a reset: one predicate. (They used to disagree: the diff reset for families and
    /// graceful restart and not for timers, passive, policies, max-prefix or BFD; the
    /// daemon the other way round.)
    #[test]
    fn the_plan_resets_when_the_diff_says_so() {
        let change = |line: &str| {
            cfg(&BASE.replace("hold_time = 9\nmd5", &format!("hold_time = 9\n{line}\nmd5")))
        };
        let base = cfg(BASE);
        for (line, name, reset) in [
            ("keepalive = 2", "keepalive", true),
            ("passive = true", "passive", true),
            ("bfd = true", "bfd", true),
            ("families = [\"ipv4-unicast\"]", "families", false),
            (
                "graceful_restart = { enabled = true }",
                "graceful_restart",
                false,
            ),
        ] {
            let new = change(line);
            let d = config::diff(&base, &new);
            assert_eq!(d.changed.len(), 1, "{line}");
            assert_eq!(d.changed[0].needs_reset(), reset, "{line}");
            let key = addr("10.1.2.0");
            let step = if reset {
                Step::Reset(key, vec![name])
            } else {
                Step::Keep(key, vec![name])
            };
            assert_eq!(plan(&base, &new), vec![step], "{line}");
        }
    }
}
