//! A `Bgp` object parsed once: [`BgpSpec`] is what the object means (AS numbers with the
//! asdot form, router address, neighbors merged from both forms, BFD timers, graceful
//! restart, communities, advertisement, MD5 password references). netmaster validates a
//! `Bgp` object by parsing it here, and netplugin builds its speaker plan from the same
//! parse, so an object netmaster accepts is one netplugin can run.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use crate::objects::{AdvertiseMode, Bgp};
use crate::validate::{ValidationError, check_name, parse_asn, parse_router_ip};

/// The parsed, validated form of a [`Bgp`] object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSpec {
    pub hostname: String,
    /// The host's AS.
    pub asn: u32,
    /// The host's address on the ToR subnet, with that subnet's length (`routerip`); its
    /// address is also the BGP router id.
    pub router_net: Ipv4Net,
    /// The neighbors: Contiv's single `neighbor` first, then `neighbors`, each address once.
    pub neighbors: Vec<NeighborSpec>,
    /// The BFD timers for the neighbors that run BFD.
    pub bfd_timers: BfdTimers,
    /// Graceful restart time in seconds (0: off; at most 4095).
    pub graceful_restart: u16,
    /// Standard communities `ASN:VALUE` as (ASN, VALUE).
    pub communities: Vec<(u16, u16)>,
    /// Large communities `GLOBAL:LOCAL1:LOCAL2`.
    pub large_communities: Vec<(u32, u32, u32)>,
    pub advertise: AdvertiseSpec,
    /// What the host takes from its neighbors and how its sessions are protected.
    pub guard: GuardSpec,
}

/// The protections of the host's sessions: what it imports, how many prefixes, GTSM,
/// and the subnets its neighbors may be on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSpec {
    /// A learned default route may be installed (`accept-default`).
    pub accept_default: bool,
    /// The most prefixes accepted from one neighbor.
    pub max_prefix: u32,
    /// GTSM on the eBGP sessions (`ttl-security`, on unless turned off).
    pub ttl_security: bool,
    /// The host's further addresses with their subnets' length (`local-addresses`).
    pub local_nets: Vec<Ipv4Net>,
}

impl GuardSpec {
    /// Reads the guard fields of `b`, and checks that every neighbor is on the router
    /// subnet or on the subnet of one of the host's further addresses (a dual-homed
    /// host's second ToR), and is not one of the host's own addresses.
    pub fn parse(
        b: &Bgp,
        router_net: Ipv4Net,
        neighbors: &[NeighborSpec],
    ) -> Result<GuardSpec, ValidationError> {
        let max_prefix = b.max_prefix();
        if !(1..=10_000_000).contains(&max_prefix) {
            return err(
                "max-prefix",
                format!("{max_prefix} is outside 1..=10000000"),
            );
        }
        let mut local_nets: Vec<Ipv4Net> = Vec::new();
        for (i, a) in b.local_addresses.iter().enumerate() {
            let f = format!("local-addresses[{i}]");
            let n = crate::validate::parse_router_ip(&f, a)?;
            if n.addr() == router_net.addr() || local_nets.iter().any(|o| o.addr() == n.addr()) {
                return err(&f, format!("{} is given twice", n.addr()));
            }
            local_nets.push(n);
        }
        for n in neighbors {
            let IpAddr::V4(a) = n.address else {
                // IPv6 neighbors: the host's IPv6 addresses are not declared.
                return err(
                    "neighbor",
                    format!(
                        "{}: only IPv4 neighbors on the host's subnets are supported",
                        n.address
                    ),
                );
            };
            if local_nets.iter().any(|l| l.addr() == a) {
                return err(
                    "neighbor",
                    format!("{a} is one of the host's own addresses"),
                );
            }
            if !std::iter::once(&router_net)
                .chain(&local_nets)
                .any(|l| l.trunc().contains(&a))
            {
                return err(
                    "neighbor",
                    format!(
                        "{a} is outside the router subnet {} (and the subnets of \
                         local-addresses): a neighbor is a directly connected ToR; \
                         declare the host's address on another link in local-addresses",
                        router_net.trunc()
                    ),
                );
            }
        }
        Ok(GuardSpec {
            accept_default: b.accept_default,
            max_prefix,
            ttl_security: b.ttl_security.unwrap_or(true),
            local_nets,
        })
    }
}

/// One neighbor of a [`BgpSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborSpec {
    pub address: IpAddr,
    pub asn: u32,
    /// BFD with this neighbor (the object's `bfd` or the neighbor's own).
    pub bfd: bool,
    /// The name of the host's secret holding the TCP MD5 password (`password-ref`).
    pub password_ref: Option<String>,
    pub description: String,
    /// BFD authentication (the neighbor's `bfd-auth`, else the object's); only with BFD.
    pub bfd_auth: Option<crate::objects::BgpBfdAuth>,
}

/// BFD transmit/receive interval and detection multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdTimers {
    /// 50..=60000 ms.
    pub interval_ms: u32,
    /// 1..=255.
    pub multiplier: u8,
}

/// How the host advertises its endpoints, with what each mode needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvertiseSpec {
    PerEndpoint,
    /// The host's block, with /32s for endpoints outside it.
    HostBlock(Ipv4Net),
    NetworkSubnet,
}

impl BgpSpec {
    /// The BGP router id (the router address).
    pub fn router_id(&self) -> Ipv4Addr {
        self.router_net.addr()
    }

    /// Whether any neighbor runs BFD.
    pub fn uses_bfd(&self) -> bool {
        self.neighbors.iter().any(|n| n.bfd)
    }

    /// Parses and validates a `Bgp` object; the error names the JSON field.
    pub fn parse(b: &Bgp) -> Result<BgpSpec, ValidationError> {
        check_name("hostname", &b.hostname, 256)?;
        let router_net = parse_router_ip("routerip", &b.routerip)?;
        let asn = parse_asn("as", &b.asn)?;
        if b.neighbor.is_empty() != b.neighbor_as.is_empty() {
            return err(
                if b.neighbor.is_empty() {
                    "neighbor"
                } else {
                    "neighbor-as"
                },
                "neighbor and neighbor-as go together",
            );
        }
        let mut neighbors: Vec<NeighborSpec> = Vec::new();
        if !b.neighbor.is_empty() {
            let address: Ipv4Addr = b.neighbor.parse().map_err(|_| ValidationError {
                field: "neighbor".into(),
                message: format!("{:?} is not an IPv4 address", b.neighbor),
            })?;
            neighbors.push(NeighborSpec {
                address: address.into(),
                asn: parse_asn("neighbor-as", &b.neighbor_as)?,
                bfd: b.bfd,
                password_ref: None,
                description: String::new(),
                bfd_auth: None,
            });
        }
        for (i, n) in b.neighbors.iter().enumerate() {
            let f = |x: &str| format!("neighbors[{i}].{x}");
            let address: IpAddr = n.address.parse().map_err(|_| ValidationError {
                field: f("address"),
                message: format!("{:?} is not an IP address", n.address),
            })?;
            let asn = parse_asn(&f("as"), &n.asn)?;
            let password_ref = if n.password_ref.is_empty() {
                None
            } else {
                check_name(&f("password-ref"), &n.password_ref, 64)?;
                Some(n.password_ref.clone())
            };
            match neighbors.iter_mut().find(|o| o.address == address) {
                None => neighbors.push(NeighborSpec {
                    address,
                    asn,
                    bfd: b.bfd || n.bfd,
                    password_ref,
                    description: n.description.clone(),
                    bfd_auth: None,
                }),
                // The same neighbor in both forms (or twice): it must agree.
                Some(o) => {
                    if o.asn != asn {
                        return err(
                            &f("as"),
                            format!("neighbor {address} is given twice, as {} and {asn}", o.asn),
                        );
                    }
                    match (&o.password_ref, password_ref) {
                        (Some(a), Some(p)) if *a != p => {
                            return err(
                                &f("password-ref"),
                                format!(
                                    "neighbor {address} is given twice, with password-ref {a} and {p}"
                                ),
                            );
                        }
                        (None, Some(p)) => o.password_ref = Some(p),
                        _ => {}
                    }
                    o.bfd |= n.bfd;
                    if o.description.is_empty() {
                        o.description = n.description.clone();
                    }
                }
            }
        }
        bfd_auth(b, &mut neighbors)?;
        if neighbors.is_empty() {
            return err(
                "neighbor",
                "give a neighbor (neighbor and neighbor-as) or neighbors",
            );
        }
        for n in &neighbors {
            let bad = match n.address {
                IpAddr::V4(a) => crate::validate::unicast_v4(a).err(),
                IpAddr::V6(a) if a.is_unspecified() => Some(":: (unspecified)"),
                IpAddr::V6(a) if a.is_loopback() => Some("::1 (loopback)"),
                IpAddr::V6(a) if a.is_multicast() => Some("ff00::/8 (multicast)"),
                IpAddr::V6(_) => None,
            };
            if let Some(why) = bad {
                return err(
                    "neighbor",
                    format!("{} is in {why}, not a peer's address", n.address),
                );
            }
        }
        if let Some(n) = neighbors
            .iter()
            .find(|n| n.address == IpAddr::V4(router_net.addr()))
        {
            return err(
                "neighbor",
                format!("{} is the host's own router address", n.address),
            );
        }
        let graceful_restart = match u16::try_from(b.graceful_restart) {
            Ok(t) if t <= 4095 => t,
            _ => {
                return err(
                    "graceful-restart",
                    format!("{} is above 4095 seconds (RFC 4724)", b.graceful_restart),
                );
            }
        };
        let interval_ms = b.bfd_interval_ms();
        if !(50..=60000).contains(&interval_ms) {
            return err(
                "bfd-interval",
                format!("{interval_ms} ms is outside 50..=60000 ms"),
            );
        }
        let multiplier = match u8::try_from(b.bfd_multiplier()) {
            Ok(m) if m >= 1 => m,
            _ => {
                return err(
                    "bfd-multiplier",
                    format!("{} is outside 1..=255", b.bfd_multiplier()),
                );
            }
        };
        if !b.bfd && !b.neighbors.iter().any(|n| n.bfd) {
            for (field, given) in [
                ("bfd-interval", b.bfd_interval.is_some()),
                ("bfd-multiplier", b.bfd_multiplier.is_some()),
            ] {
                if given {
                    return err(field, "only with bfd (on the object or a neighbor)");
                }
            }
        }
        let mut communities = Vec::new();
        let mut large_communities = Vec::new();
        for c in &b.communities {
            let parts: Vec<&str> = c.split(':').collect();
            let parsed = match parts.as_slice() {
                [a, v] => match (a.parse::<u16>(), v.parse::<u16>()) {
                    (Ok(a), Ok(v)) => {
                        communities.push((a, v));
                        true
                    }
                    _ => false,
                },
                [g, l1, l2] => match (g.parse::<u32>(), l1.parse::<u32>(), l2.parse::<u32>()) {
                    (Ok(g), Ok(l1), Ok(l2)) => {
                        large_communities.push((g, l1, l2));
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if !parsed {
                return err(
                    "communities",
                    format!(
                        "{c:?} is neither ASN:VALUE (16-bit) nor GLOBAL:LOCAL1:LOCAL2 (32-bit)"
                    ),
                );
            }
        }
        let block = b.host_block.parse::<Ipv4Net>();
        if let Ok(bl) = &block {
            if bl.prefix_len() < 8 {
                return err(
                    "host-block",
                    format!(
                        "{bl} is shorter than /8: the host would originate it (a default \
                         route, or a good part of the Internet) into the fabric"
                    ),
                );
            }
            if let Some(why) = crate::validate::reserved_v4(bl) {
                return err("host-block", format!("{bl} overlaps {why}"));
            }
        }
        let advertise = match (&b.advertise, block) {
            (AdvertiseMode::HostBlock, Ok(block)) => AdvertiseSpec::HostBlock(block),
            (AdvertiseMode::HostBlock, Err(_)) => {
                return err(
                    "host-block",
                    "advertise host-block needs host-block a.b.c.d/len",
                );
            }
            (_, _) if !b.host_block.is_empty() => {
                return err("host-block", "only with advertise host-block");
            }
            (AdvertiseMode::PerEndpoint, _) => AdvertiseSpec::PerEndpoint,
            (AdvertiseMode::NetworkSubnet, _) => AdvertiseSpec::NetworkSubnet,
        };
        let guard = GuardSpec::parse(b, router_net, &neighbors)?;
        Ok(BgpSpec {
            hostname: b.hostname.clone(),
            asn,
            router_net,
            neighbors,
            bfd_timers: BfdTimers {
                interval_ms,
                multiplier,
            },
            graceful_restart,
            communities,
            large_communities,
            advertise,
            guard,
        })
    }
}

impl TryFrom<&Bgp> for BgpSpec {
    type Error = ValidationError;
    fn try_from(b: &Bgp) -> Result<BgpSpec, ValidationError> {
        BgpSpec::parse(b)
    }
}

/// Resolves each neighbor's BFD authentication: its own `bfd-auth` (the same neighbor
/// given twice must agree), else the object's; refused where BFD is off.
fn bfd_auth(b: &Bgp, neighbors: &mut [NeighborSpec]) -> Result<(), ValidationError> {
    let check = |field: &str, a: &crate::objects::BgpBfdAuth| {
        check_name(&format!("{field}.secret-ref"), &a.secret_ref, 64)
    };
    if let Some(a) = &b.bfd_auth {
        check("bfd-auth", a)?;
        if !b.bfd && !b.neighbors.iter().any(|n| n.bfd) {
            return err("bfd-auth", "only with bfd (on the object or a neighbor)");
        }
    }
    for n in neighbors.iter_mut() {
        let own: Vec<(usize, &crate::objects::BgpBfdAuth)> = b
            .neighbors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.address.parse::<IpAddr>().ok() == Some(n.address))
            .filter_map(|(i, m)| m.bfd_auth.as_ref().map(|a| (i, a)))
            .collect();
        for (i, a) in &own {
            let field = format!("neighbors[{i}].bfd-auth");
            check(&field, a)?;
            if !n.bfd {
                return err(&field, format!("neighbor {} does not run bfd", n.address));
            }
            if *a != own[0].1 {
                return err(
                    &field,
                    format!(
                        "neighbor {} is given twice, with different bfd-auth",
                        n.address
                    ),
                );
            }
        }
        n.bfd_auth = match own.first() {
            Some((_, a)) => Some((*a).clone()),
            None if n.bfd => b.bfd_auth.clone(),
            None => None,
        };
    }
    Ok(())
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        field: field.into(),
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgp(v: serde_json::Value) -> Bgp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn asdot_and_asplain_are_the_same_number() {
        let s = BgpSpec::parse(&bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "1.10",
            "neighbor": "10.1.1.254", "neighbor-as": "65001.65535"
        })))
        .unwrap();
        assert_eq!(s.asn, 65546);
        assert_eq!(s.neighbors[0].asn, (65001 << 16) | 65535);
        assert_eq!(s.router_id(), Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(s.router_net.to_string(), "10.1.1.1/24");
    }

    #[test]
    fn both_forms_merge_and_must_agree() {
        let base = serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor": "10.1.1.254", "neighbor-as": "65001",
            "neighbors": [{"address": "10.1.1.254", "as": "65001", "bfd": true,
                           "password-ref": "tor1"},
                          {"address": "10.1.2.254", "as": "65002"}],
            "local-addresses": ["10.1.2.1/24"]
        });
        let s = BgpSpec::parse(&bgp(base.clone())).unwrap();
        assert_eq!(s.neighbors.len(), 2);
        assert!(s.neighbors[0].bfd && !s.neighbors[1].bfd);
        assert_eq!(s.neighbors[0].password_ref.as_deref(), Some("tor1"));
        let mut o = base.clone();
        o["neighbors"][0]["as"] = "65009".into();
        let e = BgpSpec::parse(&bgp(o)).unwrap_err();
        assert_eq!(e.field, "neighbors[0].as");
        assert!(e.message.contains("twice"), "{e}");
        let mut o = base;
        o["neighbors"][1]["password-ref"] = "../etc/passwd".into();
        assert_eq!(
            BgpSpec::parse(&bgp(o)).unwrap_err().field,
            "neighbors[1].password-ref"
        );
    }

    #[test]
    fn bfd_auth_from_the_object_or_the_neighbor() {
        use crate::objects::{BfdAuthType, BgpBfdAuth};
        let base = serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "local-addresses": ["10.1.2.1/24"],
            "neighbor": "10.1.1.254", "neighbor-as": "65001", "bfd": true,
            "bfd-auth": {"secret-ref": "tor-bfd"},
            "neighbors": [{"address": "10.1.2.254", "as": "65002", "bfd": true,
                           "bfd-auth": {"secret-ref": "tor2", "type": "keyed-sha1", "key-id": 9}}]
        });
        let s = BgpSpec::parse(&bgp(base.clone())).unwrap();
        assert_eq!(
            s.neighbors[0].bfd_auth,
            Some(BgpBfdAuth {
                secret_ref: "tor-bfd".into(),
                auth_type: BfdAuthType::MeticulousKeyedSha1,
                key_id: 1
            })
        );
        assert_eq!(
            s.neighbors[1].bfd_auth,
            Some(BgpBfdAuth {
                secret_ref: "tor2".into(),
                auth_type: BfdAuthType::KeyedSha1,
                key_id: 9
            })
        );
        // The secret's name follows password-ref's rules.
        let mut o = base.clone();
        o["bfd-auth"]["secret-ref"] = "../x".into();
        assert_eq!(
            BgpSpec::parse(&bgp(o)).unwrap_err().field,
            "bfd-auth.secret-ref"
        );
        let mut o = base.clone();
        o["neighbors"][0]["bfd-auth"]["secret-ref"] = "".into();
        assert_eq!(
            BgpSpec::parse(&bgp(o)).unwrap_err().field,
            "neighbors[0].bfd-auth.secret-ref"
        );
        // Only with BFD.
        let mut o = base.clone();
        o["bfd"] = false.into();
        o["neighbors"][0]["bfd"] = false.into();
        assert_eq!(BgpSpec::parse(&bgp(o)).unwrap_err().field, "bfd-auth");
        let mut o = base.clone();
        o["bfd"] = false.into();
        o["neighbors"][0]["bfd"] = false.into();
        o.as_object_mut().unwrap().remove("bfd-auth");
        assert_eq!(
            BgpSpec::parse(&bgp(o)).unwrap_err().field,
            "neighbors[0].bfd-auth"
        );
        // Unknown type and unknown fields are refused by the object's shape.
        let mut o = base;
        o["bfd-auth"]["type"] = "simple-password".into();
        assert!(serde_json::from_value::<Bgp>(o).is_err());
    }

    #[test]
    fn typed_communities_timers_and_advertisement() {
        let s = BgpSpec::parse(&bgp(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbors": [{"address": "10.1.1.254", "as": "65001"}],
            "bfd": true, "bfd-interval": 100, "bfd-multiplier": 5, "graceful-restart": 120,
            "communities": ["65000:100", "65000:1:2"],
            "advertise": "host-block", "host-block": "20.1.1.0/26"
        })))
        .unwrap();
        assert_eq!(s.communities, vec![(65000, 100)]);
        assert_eq!(s.large_communities, vec![(65000, 1, 2)]);
        assert_eq!(
            s.bfd_timers,
            BfdTimers {
                interval_ms: 100,
                multiplier: 5
            }
        );
        assert!(s.uses_bfd());
        assert_eq!(s.graceful_restart, 120);
        assert_eq!(
            s.advertise,
            AdvertiseSpec::HostBlock("20.1.1.0/26".parse().unwrap())
        );
    }

    #[test]
    fn guard_defaults_and_fields() {
        let base = serde_json::json!({
            "hostname": "h", "routerip": "10.2.1.1/31", "as": "65201",
            "neighbors": [{"address": "10.2.1.0", "as": "65101"}]
        });
        let s = BgpSpec::parse(&bgp(base.clone())).unwrap();
        assert_eq!(
            s.guard,
            GuardSpec {
                accept_default: false,
                max_prefix: Bgp::DEFAULT_MAX_PREFIX,
                ttl_security: true,
                local_nets: vec![],
            }
        );
        let mut o = base.clone();
        o["accept-default"] = true.into();
        o["max-prefix"] = 50.into();
        o["ttl-security"] = false.into();
        let s = BgpSpec::parse(&bgp(o)).unwrap();
        assert!(s.guard.accept_default && !s.guard.ttl_security);
        assert_eq!(s.guard.max_prefix, 50);
        let mut o = base;
        o["max-prefix"] = 0.into();
        assert_eq!(BgpSpec::parse(&bgp(o)).unwrap_err().field, "max-prefix");
    }

    #[test]
    fn a_neighbor_must_be_on_one_of_the_hosts_subnets() {
        // The dual-homed lab's host1: leaf1 on the router subnet, leaf2 on eth2's.
        let base = serde_json::json!({
            "hostname": "host1", "routerip": "10.2.1.1/31", "as": "65201",
            "neighbors": [{"address": "10.2.1.0", "as": "65101"},
                          {"address": "10.2.2.0", "as": "65102"}]
        });
        let e = BgpSpec::parse(&bgp(base.clone())).unwrap_err();
        assert_eq!(e.field, "neighbor");
        assert!(e.message.contains("10.2.2.0 is outside"), "{e}");
        let mut o = base.clone();
        o["local-addresses"] = serde_json::json!(["10.2.2.1/31"]);
        let s = BgpSpec::parse(&bgp(o)).unwrap();
        assert_eq!(s.guard.local_nets, vec!["10.2.2.1/31".parse().unwrap()]);
        // A neighbor two links away, the host's own further address, bad addresses.
        for (addrs, neighbor, field) in [
            (vec!["10.2.2.1/31"], "10.9.9.9", "neighbor"),
            (vec!["10.2.2.1/31"], "10.2.2.1", "neighbor"),
            (vec!["0.0.0.0/1"], "10.2.2.0", "local-addresses[0]"),
            (vec!["127.0.0.1/8"], "10.2.2.0", "local-addresses[0]"),
            (vec!["10.2.1.1/31"], "10.2.2.0", "local-addresses[0]"),
        ] {
            let mut o = base.clone();
            o["local-addresses"] = serde_json::json!(addrs);
            o["neighbors"][1]["address"] = neighbor.into();
            assert_eq!(
                BgpSpec::parse(&bgp(o)).unwrap_err().field,
                field,
                "{addrs:?} {neighbor}"
            );
        }
    }
}
