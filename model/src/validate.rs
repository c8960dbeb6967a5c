//! Validation of single objects, with errors that name the JSON field, say what is
//! wrong and what is allowed. Rules that need other objects (overlaps, dependents) live
//! with netmaster's plans; the helpers they share are here.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use crate::objects::*;

/// A field that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The JSON name of the field.
    pub field: String,
    pub message: String,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        field: field.into(),
        message: message.into(),
    })
}

/// Validates one object on its own.
pub trait Validate {
    fn validate(&self) -> Result<(), ValidationError>;
}

/// The longest name of most objects (tenants, networks, groups, policies, ...).
pub const NAME_MAX: usize = 64;
/// The longest configured tag (`cfgdTag`).
pub const TAG_MAX: usize = 128;
/// The longest service or host name.
pub const LONG_NAME_MAX: usize = 256;

/// The regular expression [`check_name`] implements (one label, then `.label`s), for the
/// OpenAPI document; a test checks the two agree.
macro_rules! name_regex {
    () => {
        r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
    };
}
/// A name ([`check_name`]), as an anchored regular expression.
pub const NAME_PATTERN: &str = concat!("^", name_regex!(), "$");
/// A name or the empty string (optional name fields).
pub const OPTIONAL_NAME_PATTERN: &str = concat!("^(?:", name_regex!(), ")?$");

fn name_schema_of(max: usize, optional: bool) -> schemars::Schema {
    let (min, pattern) = if optional {
        (0, OPTIONAL_NAME_PATTERN)
    } else {
        (1, NAME_PATTERN)
    };
    schemars::json_schema!({
        "type": "string",
        "minLength": min,
        "maxLength": max,
        "pattern": pattern,
        "description": "letters, digits, inner '-' or '_', and '.' between words",
    })
}

/// The schema of a required name of at most `MAX` characters (`schema_with`).
pub fn name_schema<const MAX: usize>(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    name_schema_of(MAX, false)
}

/// The schema of an optional name (empty or a name of at most `MAX` characters).
pub fn optional_name_schema<const MAX: usize>(
    _: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    name_schema_of(MAX, true)
}

/// The schema of a list of names of at most `MAX` characters each.
pub fn names_schema<const MAX: usize>(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = name_schema_of(MAX, false);
    schemars::json_schema!({"type": "array", "items": item})
}

/// Contiv's name rule: DNS-label-like words (letters, digits, inner `-` and `_`) joined
/// by dots, at most `max` characters.
pub fn check_name(field: &str, v: &str, max: usize) -> Result<(), ValidationError> {
    if v.is_empty() {
        return err(field, "is required");
    }
    if v.len() > max {
        return err(field, format!("{v:?} is longer than {max} characters"));
    }
    for label in v.split('.') {
        let ok = !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return err(
                field,
                format!(
                    "{v:?} is not a valid name: use letters, digits, inner '-' or '_', and '.' between words"
                ),
            );
        }
    }
    Ok(())
}

/// A Contiv subnet: `a.b.c.d/len` or `a.b.c.d-e.f.g.h/len` (a range inside the subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetSpec {
    pub net: Ipv4Net,
    /// The allocatable range, when given (inclusive).
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// Parses a Contiv subnet string.
pub fn parse_subnet(field: &str, s: &str) -> Result<SubnetSpec, ValidationError> {
    let Some((addr, len)) = s.split_once('/') else {
        return err(
            field,
            format!("{s:?} is not a.b.c.d/len or a.b.c.d-e.f.g.h/len"),
        );
    };
    let len: u8 = match len.parse() {
        Ok(l) if (8..=30).contains(&l) => l,
        _ => return err(field, format!("{s:?}: the prefix length must be 8..30")),
    };
    let (start, end) = match addr.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (addr, None),
    };
    let start: Ipv4Addr = start.parse().map_err(|_| ValidationError {
        field: field.into(),
        message: format!("{s:?}: {start:?} is not an IPv4 address"),
    })?;
    let net = Ipv4Net::new(start, len)
        .map_err(|e| ValidationError {
            field: field.into(),
            message: e.to_string(),
        })?
        .trunc();
    let range = match end {
        None => None,
        Some(e) => {
            let e: Ipv4Addr = e.parse().map_err(|_| ValidationError {
                field: field.into(),
                message: format!("{s:?}: {e:?} is not an IPv4 address"),
            })?;
            if !net.contains(&e) || e < start {
                return err(
                    field,
                    format!("{s:?}: the range must lie inside {net} and end after it starts"),
                );
            }
            Some((start, e))
        }
    };
    Ok(SubnetSpec { net, range })
}

/// Parses `"a-b"` (integers) with bounds.
pub fn parse_range(
    field: &str,
    s: &str,
    min: u32,
    max: u32,
) -> Result<(u32, u32), ValidationError> {
    let bad = || ValidationError {
        field: field.into(),
        message: format!("{s:?} is not a range \"a-b\" with {min} <= a <= b <= {max}"),
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let b: u32 = b.trim().parse().map_err(|_| bad())?;
    if a < min || b > max || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses an IPv4 address range `a.b.c.d-e.f.g.h` (EPG pools).
pub fn parse_ip_range(field: &str, s: &str) -> Result<(Ipv4Addr, Ipv4Addr), ValidationError> {
    let bad = || ValidationError {
        field: field.into(),
        message: format!("{s:?} is not a.b.c.d-e.f.g.h"),
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return err(field, format!("{s:?}: the range ends before it starts"));
    }
    Ok((a, b))
}

/// Parses an AS number (1..4294967295; `a.b` asdot form accepted).
pub fn parse_asn(field: &str, s: &str) -> Result<u32, ValidationError> {
    let v = match s.split_once('.') {
        Some((hi, lo)) => match (hi.parse::<u16>(), lo.parse::<u16>()) {
            (Ok(h), Ok(l)) => Some((u32::from(h) << 16) | u32::from(l)),
            _ => None,
        },
        None => s.parse::<u32>().ok(),
    };
    match v {
        Some(n) if n > 0 => Ok(n),
        _ => err(field, format!("{s:?} is not an AS number (1..4294967295)")),
    }
}

/// Parses a bandwidth like `10Mbps`, `10 mbps`, `1gbps`, `500kbps` into bits per second.
pub fn parse_bandwidth(field: &str, s: &str) -> Result<u64, ValidationError> {
    let t = s.trim().to_ascii_lowercase().replace(' ', "");
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = &t[digits.len()..];
    let mult: u64 = match unit {
        "kbps" => 1_000,
        "mbps" => 1_000_000,
        "gbps" => 1_000_000_000,
        _ => {
            return err(
                field,
                format!("{s:?} is not a bandwidth such as 10kbps, 100Mbps or 1gbps"),
            );
        }
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n.checked_mul(mult).ok_or_else(|| ValidationError {
            field: field.into(),
            message: format!("{s:?} is more bandwidth than anything can have"),
        }),
        _ => err(field, format!("{s:?}: the number must be positive")),
    }
}

/// `global.networkInfraType`.
pub const INFRA_TYPES: &[&str] = &["aci", "aci-opflex", "default", ""];
/// `global.fwdMode` ("" until chosen).
pub const FWD_MODES: &[&str] = &["bridge", "routing", ""];
/// `global.arpMode`.
pub const ARP_MODES: &[&str] = &["proxy", "flood", ""];
/// `network.nwType`.
pub const NW_TYPES: &[&str] = &["data", "infra"];
/// `network.encap`.
pub const ENCAPS: &[&str] = &["vlan", "vxlan"];
/// `rule.direction`.
pub const DIRECTIONS: &[&str] = &["in", "out"];
/// `rule.action`.
pub const ACTIONS: &[&str] = &["allow", "deny"];
/// `network.pktTag`: 0 picks one; a VLAN id stops at 4094, a VXLAN id at 16777215.
pub const PKT_TAG_MAX: i64 = 16_777_215;
/// `network.pktTag` for VLAN encapsulation.
pub const VLAN_TAG_MAX: i64 = 4094;
/// `rule.priority`.
pub const PRIORITY_MAX: i64 = 100;
/// `rule.port` (0: any).
pub const PORT_MAX: i64 = 65535;
/// `netprofile.DSCP`.
pub const DSCP_MAX: i64 = 63;
/// `netprofile.burst` in KB (0: none; 1 is refused).
pub const BURST_MAX: i64 = 10486;

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), ValidationError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        let shown: Vec<String> = allowed
            .iter()
            .map(|a| {
                if a.is_empty() {
                    "\"\"".into()
                } else {
                    (*a).into()
                }
            })
            .collect();
        err(field, format!("{v:?} is not one of {}", shown.join(", ")))
    }
}

impl Validate for Global {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.name != "global" {
            return err(
                "name",
                format!("{:?}: the global object is named \"global\"", self.name),
            );
        }
        one_of("networkInfraType", &self.network_infra_type, INFRA_TYPES)?;
        one_of("fwdMode", &self.fwd_mode, FWD_MODES)?;
        one_of("arpMode", &self.arp_mode, ARP_MODES)?;
        if !self.vlans.is_empty() {
            parse_range("vlans", &self.vlans, 1, 4094)?;
        }
        if !self.vxlans.is_empty() {
            let (a, b) = parse_range("vxlans", &self.vxlans, 1, 65535)?;
            if b - a >= 16000 {
                return err(
                    "vxlans",
                    format!("{:?} spans more than 16000 ids", self.vxlans),
                );
            }
        }
        if !self.pvt_subnet.is_empty() {
            match self.pvt_subnet.parse::<Ipv4Net>() {
                Ok(n) if n.prefix_len() == 16 => {}
                _ => {
                    return err(
                        "pvtSubnet",
                        format!(
                            "{:?} is not an IPv4 /16 such as 172.19.0.0/16",
                            self.pvt_subnet
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

impl Validate for Tenant {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        if !self.default_network.is_empty() {
            check_name("defaultNetwork", &self.default_network, NAME_MAX)?;
        }
        Ok(())
    }
}

impl Validate for Network {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("networkName", &self.network_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        one_of("nwType", &self.nw_type, NW_TYPES)?;
        one_of("encap", &self.encap, ENCAPS)?;
        let max = if self.encap == "vlan" {
            VLAN_TAG_MAX
        } else {
            PKT_TAG_MAX
        };
        if self.pkt_tag < 0 || self.pkt_tag > max {
            return err(
                "pktTag",
                format!(
                    "{} is outside 0..{max} for {} (0 picks one)",
                    self.pkt_tag, self.encap
                ),
            );
        }
        if self.subnet.is_empty() {
            return err("subnet", "is required (a.b.c.d/len or a.b.c.d-e.f.g.h/len)");
        }
        let sub = parse_subnet("subnet", &self.subnet)?;
        if let Some(why) = reserved_v4(&sub.net) {
            return err(
                "subnet",
                format!("{} overlaps {why}: containers cannot use it", sub.net),
            );
        }
        if !self.gateway.is_empty() {
            let gw: Ipv4Addr = self.gateway.parse().map_err(|_| ValidationError {
                field: "gateway".into(),
                message: format!("{:?} is not an IPv4 address", self.gateway),
            })?;
            if !sub.net.contains(&gw) || gw == sub.net.network() || gw == sub.net.broadcast() {
                return err(
                    "gateway",
                    format!("{gw} is not a host address of {}", sub.net),
                );
            }
        }
        if !self.ipv6_subnet.is_empty() {
            let n: ipnet::Ipv6Net = self.ipv6_subnet.parse().map_err(|_| ValidationError {
                field: "ipv6Subnet".into(),
                message: format!("{:?} is not an IPv6 prefix", self.ipv6_subnet),
            })?;
            if !self.ipv6_gateway.is_empty() {
                match self.ipv6_gateway.parse::<std::net::Ipv6Addr>() {
                    Ok(g) if n.contains(&g) => {}
                    _ => {
                        return err(
                            "ipv6Gateway",
                            format!("{:?} is not an address of {n}", self.ipv6_gateway),
                        );
                    }
                }
            }
        } else if !self.ipv6_gateway.is_empty() {
            return err("ipv6Gateway", "needs ipv6Subnet");
        }
        if !self.cfgd_tag.is_empty() {
            check_name("cfgdTag", &self.cfgd_tag, TAG_MAX)?;
        }
        Ok(())
    }
}

impl Validate for EndpointGroup {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("groupName", &self.group_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        check_name("networkName", &self.network_name, NAME_MAX)?;
        if !self.ip_pool.is_empty() {
            parse_ip_range("ipPool", &self.ip_pool)?;
        }
        for p in &self.policies {
            check_name("policies", p, NAME_MAX)?;
        }
        if !self.net_profile.is_empty() {
            check_name("netProfile", &self.net_profile, NAME_MAX)?;
        }
        if !self.cfgd_tag.is_empty() {
            check_name("cfgdTag", &self.cfgd_tag, TAG_MAX)?;
        }
        Ok(())
    }
}

impl Validate for Policy {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("policyName", &self.policy_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)
    }
}

fn check_ip_or_cidr(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.is_empty() || v.parse::<Ipv4Addr>().is_ok() || v.parse::<Ipv4Net>().is_ok() {
        Ok(())
    } else {
        err(
            field,
            format!("{v:?} is not an IPv4 address or a.b.c.d/len"),
        )
    }
}

impl Validate for Rule {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("ruleId", &self.rule_id, NAME_MAX)?;
        check_name("policyName", &self.policy_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        one_of("direction", &self.direction, DIRECTIONS)?;
        one_of("action", &self.action, ACTIONS)?;
        if !(0..=PRIORITY_MAX).contains(&self.priority) {
            return err(
                "priority",
                format!("{} is outside 0..{PRIORITY_MAX}", self.priority),
            );
        }
        match self.protocol.as_str() {
            "" | "tcp" | "udp" | "icmp" => {}
            p => match p.parse::<u8>() {
                Ok(_) => {}
                Err(_) => {
                    return err(
                        "protocol",
                        format!("{p:?} is not tcp, udp, icmp or a protocol number 0..255"),
                    );
                }
            },
        }
        if !(0..=PORT_MAX).contains(&self.port) {
            return err("port", format!("{} is outside 0..{PORT_MAX}", self.port));
        }
        if self.port != 0 && !matches!(self.protocol.as_str(), "tcp" | "udp") {
            return err("port", "a port needs protocol tcp or udp");
        }
        check_ip_or_cidr("fromIpAddress", &self.from_ip_address)?;
        check_ip_or_cidr("toIpAddress", &self.to_ip_address)?;
        let exclusive = |a: &str, b: &str, fa: &str, fb: &str| {
            if !a.is_empty() && !b.is_empty() {
                err(fb, format!("cannot be combined with {fa}"))
            } else {
                Ok(())
            }
        };
        exclusive(
            &self.from_endpoint_group,
            &self.from_network,
            "fromEndpointGroup",
            "fromNetwork",
        )?;
        exclusive(
            &self.from_endpoint_group,
            &self.from_ip_address,
            "fromEndpointGroup",
            "fromIpAddress",
        )?;
        exclusive(
            &self.from_network,
            &self.from_ip_address,
            "fromNetwork",
            "fromIpAddress",
        )?;
        exclusive(
            &self.to_endpoint_group,
            &self.to_network,
            "toEndpointGroup",
            "toNetwork",
        )?;
        exclusive(
            &self.to_endpoint_group,
            &self.to_ip_address,
            "toEndpointGroup",
            "toIpAddress",
        )?;
        exclusive(
            &self.to_network,
            &self.to_ip_address,
            "toNetwork",
            "toIpAddress",
        )?;
        // The direction is what is wrong (the field named); the message says which
        // field of the other side is set.
        let (other, which) = if self.direction == "in" {
            (
                [
                    ("toEndpointGroup", &self.to_endpoint_group),
                    ("toNetwork", &self.to_network),
                    ("toIpAddress", &self.to_ip_address),
                ],
                "an incoming rule matches the source: use fromEndpointGroup, fromNetwork or fromIpAddress",
            )
        } else {
            (
                [
                    ("fromEndpointGroup", &self.from_endpoint_group),
                    ("fromNetwork", &self.from_network),
                    ("fromIpAddress", &self.from_ip_address),
                ],
                "an outgoing rule matches the destination: use toEndpointGroup, toNetwork or toIpAddress",
            )
        };
        if let Some((f, _)) = other.iter().find(|(_, v)| !v.is_empty()) {
            return err(
                "direction",
                format!("{which} ({f} is set, direction is {:?})", self.direction),
            );
        }
        Ok(())
    }
}

/// The reserved IPv4 space a prefix overlaps ("this network" 0/8, loopback 127/8,
/// multicast 224/4, reserved 240/4), if any.
pub fn reserved_v4(net: &Ipv4Net) -> Option<&'static str> {
    const RESERVED: [(&str, [u8; 4], u8); 4] = [
        ("0.0.0.0/8 (this network)", [0, 0, 0, 0], 8),
        ("127.0.0.0/8 (loopback)", [127, 0, 0, 0], 8),
        ("224.0.0.0/4 (multicast)", [224, 0, 0, 0], 4),
        ("240.0.0.0/4 (reserved, broadcast)", [240, 0, 0, 0], 4),
    ];
    RESERVED.iter().find_map(|(why, a, len)| {
        let r = Ipv4Net::new(Ipv4Addr::from(*a), *len).ok()?;
        (r.contains(net) || net.contains(&r)).then_some(*why)
    })
}

/// Whether an address can be a BGP peer's or a host's: not unspecified, loopback,
/// multicast, broadcast or in 0/8 and 240/4.
pub fn unicast_v4(a: Ipv4Addr) -> Result<(), &'static str> {
    match reserved_v4(&Ipv4Net::from(a)) {
        Some(why) => Err(why),
        None if a.is_link_local() => Err("169.254.0.0/16 (link-local)"),
        None => Ok(()),
    }
}

/// Parses a `routerip` (`a.b.c.d/len`, len 1..32).
pub fn parse_router_ip(field: &str, s: &str) -> Result<Ipv4Net, ValidationError> {
    match s.parse::<Ipv4Net>() {
        Ok(n) if n.prefix_len() >= 8 => match unicast_v4(n.addr()) {
            Ok(()) => Ok(n),
            Err(why) => err(
                field,
                format!("{s:?}: {} is in {why}, not a host's address", n.addr()),
            ),
        },
        _ => err(
            field,
            format!(
                "{s:?} is not the host's IPv4 address with its length, such as 50.1.1.2/24 \
                 (it is also the BGP router id)"
            ),
        ),
    }
}

impl Validate for Bgp {
    /// A `Bgp` object is valid when it parses into a [`crate::bgp::BgpSpec`].
    fn validate(&self) -> Result<(), ValidationError> {
        crate::bgp::BgpSpec::parse(self).map(|_| ())
    }
}

impl Validate for ServiceLb {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("serviceName", &self.service_name, LONG_NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        check_name("networkName", &self.network_name, NAME_MAX)?;
        if !self.ip_address.is_empty() && self.ip_address.parse::<Ipv4Addr>().is_err() {
            return err(
                "ipAddress",
                format!("{:?} is not an IPv4 address", self.ip_address),
            );
        }
        if self.selectors.is_empty() {
            return err("selectors", "at least one key=value selector is required");
        }
        for s in &self.selectors {
            match s.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {}
                _ => return err("selectors", format!("{s:?} is not key=value")),
            }
        }
        if self.ports.is_empty() {
            return err("ports", "at least one svcPort:provPort:TCP|UDP is required");
        }
        for p in &self.ports {
            let parts: Vec<&str> = p.split(':').collect();
            let ok = matches!(parts.as_slice(), [a, b, proto]
                if a.parse::<u16>().is_ok_and(|x| x > 0) && b.parse::<u16>().is_ok_and(|x| x > 0) && matches!(*proto, "TCP" | "UDP"));
            if !ok {
                return err("ports", format!("{p:?} is not svcPort:provPort:TCP|UDP"));
            }
        }
        Ok(())
    }
}

impl Validate for Netprofile {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("profileName", &self.profile_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        if !self.bandwidth.is_empty() {
            parse_bandwidth("bandwidth", &self.bandwidth)?;
        }
        if !(0..=DSCP_MAX).contains(&self.dscp) {
            return err("DSCP", format!("{} is outside 0..{DSCP_MAX}", self.dscp));
        }
        if !(0..=BURST_MAX).contains(&self.burst) || self.burst == 1 {
            return err(
                "burst",
                format!("{} is outside 0, 2..{BURST_MAX} (KB)", self.burst),
            );
        }
        Ok(())
    }
}

impl Validate for AppProfile {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("appProfileName", &self.app_profile_name, NAME_MAX)?;
        check_name("tenantName", &self.tenant_name, NAME_MAX)?;
        for g in &self.endpoint_groups {
            check_name("endpointGroups", g, NAME_MAX)?;
        }
        Ok(())
    }
}

impl Validate for Endpoint {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.endpoint_id.is_empty() {
            return err("endpointID", "is required");
        }
        check_name("homingHost", &self.homing_host, LONG_NAME_MAX)
    }
}

/// Whether two Contiv subnets overlap.
pub fn subnets_overlap(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv4 network of a subnet string, if it parses.
pub fn subnet_net(s: &str) -> Option<IpNet> {
    parse_subnet("subnet", s).ok().map(|s| IpNet::V4(s.net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("n", "contiv-net", NAME_MAX).is_ok());
        assert!(check_name("n", "a.b_c", NAME_MAX).is_ok());
        for bad in ["", "-a", "a-", "a b", "a..b", "ä"] {
            assert!(check_name("n", bad, NAME_MAX).is_err(), "{bad}");
        }
        assert!(check_name("n", &"a".repeat(65), NAME_MAX).is_err());
    }

    /// The pattern the OpenAPI document states is the rule `check_name` applies: every
    /// string of up to four characters over an alphabet of each kind of character.
    #[test]
    fn name_pattern_is_check_name() {
        let re = regex::Regex::new(NAME_PATTERN).unwrap();
        let opt = regex::Regex::new(OPTIONAL_NAME_PATTERN).unwrap();
        let alphabet = ['a', 'Z', '0', '_', '-', '.', ' ', '/', 'é'];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .filter(|w| w.chars().count() == words.last().unwrap().chars().count())
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        assert!(words.len() > 6000);
        for w in &words {
            let ok = check_name("n", w, NAME_MAX).is_ok();
            assert_eq!(re.is_match(w), ok, "{w:?}");
            assert_eq!(opt.is_match(w), ok || w.is_empty(), "{w:?}");
        }
    }

    #[test]
    fn subnets() {
        let s = parse_subnet("subnet", "20.1.1.0/24").unwrap();
        assert_eq!(s.net.to_string(), "20.1.1.0/24");
        let s = parse_subnet("subnet", "10.1.1.50-10.1.1.100/24").unwrap();
        assert_eq!(s.range.unwrap().1.to_string(), "10.1.1.100");
        for bad in [
            "20.1.1.0",
            "20.1.1.0/33",
            "20.1.1.0/4",
            "x/24",
            "10.1.1.50-10.1.2.1/24",
            "10.1.1.50-10.1.1.10/24",
        ] {
            let e = parse_subnet("subnet", bad).unwrap_err();
            assert_eq!(e.field, "subnet", "{bad}");
        }
    }

    fn network() -> Network {
        Network {
            network_name: "contiv-net".into(),
            tenant_name: "default".into(),
            nw_type: "data".into(),
            encap: "vxlan".into(),
            pkt_tag: 1001,
            subnet: "20.1.1.0/24".into(),
            gateway: "20.1.1.254".into(),
            ..Default::default()
        }
    }

    #[test]
    fn network_rules() {
        assert_eq!(network().validate(), Ok(()));
        type Edit = Box<dyn Fn(&mut Network)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|n| n.encap = "gre".into()), "encap"),
            (Box::new(|n| n.gateway = "20.1.2.1".into()), "gateway"),
            (Box::new(|n| n.gateway = "20.1.1.255".into()), "gateway"),
            (Box::new(|n| n.subnet = String::new()), "subnet"),
            (
                Box::new(|n| {
                    n.encap = "vlan".into();
                    n.pkt_tag = 5000
                }),
                "pktTag",
            ),
            (Box::new(|n| n.nw_type = "x".into()), "nwType"),
            (
                Box::new(|n| n.ipv6_gateway = "fd00::1".into()),
                "ipv6Gateway",
            ),
        ];
        for (f, field) in cases {
            let mut n = network();
            f(&mut n);
            assert_eq!(n.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn rules() {
        let ok = Rule {
            rule_id: "2".into(),
            policy_name: "prod_web".into(),
            tenant_name: "default".into(),
            direction: "in".into(),
            priority: 10,
            protocol: "tcp".into(),
            port: 80,
            action: "allow".into(),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let mut r = ok.clone();
        r.to_endpoint_group = "web".into();
        assert_eq!(r.validate().unwrap_err().field, "direction");
        let mut r = ok.clone();
        r.protocol = "icmp".into();
        assert_eq!(r.validate().unwrap_err().field, "port");
        let mut r = ok.clone();
        r.priority = 101;
        assert_eq!(r.validate().unwrap_err().field, "priority");
        let mut r = ok;
        r.from_network = "a".into();
        r.from_endpoint_group = "b".into();
        assert_eq!(r.validate().unwrap_err().field, "fromNetwork");
    }

    #[test]
    fn bandwidths_never_overflow() {
        assert_eq!(parse_bandwidth("b", "10Mbps"), Ok(10_000_000));
        assert!(parse_bandwidth("b", "18446744073709551615gbps").is_err());
        assert!(parse_bandwidth("b", "99999999999999999999kbps").is_err());
    }

    #[test]
    fn bgp_forms() {
        let b = Bgp {
            hostname: "node1".into(),
            routerip: "50.1.1.2/24".into(),
            asn: "65002".into(),
            neighbor_as: "500".into(),
            neighbor: "50.1.1.200".into(),
            ..Default::default()
        };
        assert_eq!(b.validate(), Ok(()));
        assert_eq!(b.effective_neighbors().len(), 1);
        let mut m = b.clone();
        m.neighbor.clear();
        m.neighbor_as.clear();
        assert_eq!(m.validate().unwrap_err().field, "neighbor");
        m.neighbors = vec![
            BgpNeighbor {
                address: "10.1.1.1".into(),
                asn: "65001".into(),
                ..Default::default()
            },
            BgpNeighbor {
                address: "10.1.2.1".into(),
                asn: "65002".into(),
                ..Default::default()
            },
        ];
        // Each neighbor on a subnet of the host's (`local-addresses`).
        m.local_addresses = vec!["10.1.1.2/24".into(), "10.1.2.2/24".into()];
        assert_eq!(m.validate(), Ok(()));
        m.neighbors[1].asn = "0".into();
        assert_eq!(m.validate().unwrap_err().field, "neighbors[1].as");
        let mut r = b.clone();
        r.routerip = "50.1.1.2".into();
        assert_eq!(r.validate().unwrap_err().field, "routerip");
        let mut c = b;
        c.communities = vec!["65000:1".into(), "4200000000:1:2".into()];
        assert_eq!(c.validate(), Ok(()));
        c.communities.push("70000:1".into());
        assert_eq!(c.validate().unwrap_err().field, "communities");
    }

    #[test]
    fn bgp_bfd_settings() {
        let b = Bgp {
            hostname: "node1".into(),
            routerip: "50.1.1.2/24".into(),
            asn: "65002".into(),
            neighbor_as: "500".into(),
            neighbor: "50.1.1.200".into(),
            bfd: true,
            ..Default::default()
        };
        assert_eq!(b.validate(), Ok(()));
        assert_eq!((b.bfd_interval_ms(), b.bfd_multiplier()), (300, 3));
        for (i, ok) in [
            (49, false),
            (50, true),
            (60000, true),
            (60001, false),
            (0, false),
        ] {
            let mut x = b.clone();
            x.bfd_interval = Some(i);
            match x.validate() {
                Ok(()) => assert!(ok, "{i}"),
                Err(e) => {
                    assert!(!ok, "{i}");
                    assert_eq!(e.field, "bfd-interval");
                    assert!(e.message.contains("50..=60000"), "{}", e.message);
                }
            }
        }
        for (m, ok) in [(0, false), (1, true), (255, true), (256, false)] {
            let mut x = b.clone();
            x.bfd_multiplier = Some(m);
            match x.validate() {
                Ok(()) => assert!(ok, "{m}"),
                Err(e) => {
                    assert!(!ok, "{m}");
                    assert_eq!(e.field, "bfd-multiplier");
                    assert!(e.message.contains("1..=255"), "{}", e.message);
                }
            }
        }
        // Timers without BFD anywhere are a mistake, not silently ignored.
        let mut off = b.clone();
        off.bfd = false;
        off.bfd_interval = Some(100);
        let e = off.validate().unwrap_err();
        assert_eq!(e.field, "bfd-interval");
        assert!(e.message.contains("only with bfd"), "{}", e.message);
        off.neighbors = vec![BgpNeighbor {
            address: "50.1.1.201".into(),
            asn: "500".into(),
            bfd: true,
            ..Default::default()
        }];
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn bgp_without_bfd_fields_still_loads_and_writes_them_only_when_set() {
        // An object stored before BFD existed.
        let old: Bgp = serde_json::from_value(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor-as": "65001", "neighbor": "10.1.1.254", "graceful-restart": 120
        }))
        .unwrap();
        assert!(!old.bfd);
        assert_eq!((old.bfd_interval, old.bfd_multiplier), (None, None));
        assert_eq!(old.validate(), Ok(()));
        let v = serde_json::to_value(&old).unwrap();
        assert!(v.get("bfd").is_none() && v.get("bfd-interval").is_none());
        let new: Bgp = serde_json::from_value(serde_json::json!({
            "hostname": "h", "routerip": "10.1.1.1/24", "as": "65101",
            "neighbor-as": "65001", "neighbor": "10.1.1.254",
            "bfd": true, "bfd-interval": 100, "bfd-multiplier": 5
        }))
        .unwrap();
        assert_eq!((new.bfd_interval_ms(), new.bfd_multiplier()), (100, 5));
        let v = serde_json::to_value(&new).unwrap();
        assert_eq!(v["bfd-interval"], 100);
        assert_eq!(v["bfd-multiplier"], 5);
    }

    #[test]
    fn globals_services_profiles() {
        let mut g = Global::default();
        assert_eq!(g.validate(), Ok(()));
        g.fwd_mode = "routed".into();
        assert_eq!(g.validate().unwrap_err().field, "fwdMode");
        let g = Global {
            pvt_subnet: "172.19.0.0/24".into(),
            ..Default::default()
        };
        assert_eq!(g.validate().unwrap_err().field, "pvtSubnet");
        let g = Global {
            vxlans: "1-20000".into(),
            ..Default::default()
        };
        assert_eq!(g.validate().unwrap_err().field, "vxlans");
        let s = ServiceLb {
            service_name: "app-svc".into(),
            tenant_name: "default".into(),
            network_name: "svc-net".into(),
            selectors: vec!["tier=web".into()],
            ports: vec!["8080:80:TCP".into()],
            ..Default::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let mut bad = s;
        bad.ports = vec!["8080:80:SCTP".into()];
        assert_eq!(bad.validate().unwrap_err().field, "ports");
        assert_eq!(parse_bandwidth("b", "10Mbps").unwrap(), 10_000_000);
        assert_eq!(parse_bandwidth("b", "10 kbps").unwrap(), 10_000);
        assert!(parse_bandwidth("b", "fast").is_err());
        assert_eq!(parse_asn("as", "1.10").unwrap(), 65546);
    }

    #[test]
    fn json_shapes() {
        let n: Network = serde_json::from_str(
            r#"{"key":"default:contiv-net","networkName":"contiv-net","tenantName":"default","encap":"vxlan","pktTag":1001,"subnet":"20.1.1.0/24","gateway":"20.1.1.254","links":{"Tenant":{"type":"tenant","key":"default"}}}"#,
        )
        .unwrap();
        assert_eq!(n.nw_type, "data");
        assert_eq!(crate::Object::key(&n), "default:contiv-net");
        let e = serde_json::from_str::<Network>(
            r#"{"networkName":"a","tenantName":"t","subnett":"x"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("subnett"));
        let b: Bgp = serde_json::from_str(
            r#"{"hostname":"node1","routerip":"50.1.1.2/24","as":"65002","neighbor-as":"500","neighbor":"50.1.1.200"}"#,
        )
        .unwrap();
        let out = serde_json::to_value(&b).unwrap();
        assert_eq!(out["neighbor-as"], "500");
        assert!(out.get("neighbors").is_none());
    }
}
