//! Value types shared by the codec, the RIB, policy and the driver.
//!
//! These are plain data: no wire format (that is [`crate::wire`]'s job) and no
//! behaviour beyond small helpers. Path attributes are kept in one struct,
//! [`PathAttrs`], that is hashable so the RIB can intern identical sets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Address family identifier (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    Ipv4,
    Ipv6,
    /// Any other AFI, kept so that it can be echoed or reported.
    Other(u16),
}

impl Afi {
    pub fn code(self) -> u16 {
        match self {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
            Afi::Other(c) => c,
        }
    }
    pub fn from_code(code: u16) -> Self {
        match code {
            1 => Afi::Ipv4,
            2 => Afi::Ipv6,
            c => Afi::Other(c),
        }
    }
}

/// Subsequent address family identifier (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Safi {
    Unicast,
    Multicast,
    Other(u8),
}

impl Safi {
    pub fn code(self) -> u8 {
        match self {
            Safi::Unicast => 1,
            Safi::Multicast => 2,
            Safi::Other(c) => c,
        }
    }
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Safi::Unicast,
            2 => Safi::Multicast,
            c => Safi::Other(c),
        }
    }
}

/// An (AFI, SAFI) pair. The speaker routes IPv4 and IPv6 unicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::Ipv4,
        safi: Safi::Unicast,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::Ipv6,
        safi: Safi::Unicast,
    };

    pub fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }

    /// The unicast family a prefix belongs to.
    pub fn of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.afi, self.safi) {
            (Afi::Ipv4, Safi::Unicast) => f.write_str("ipv4-unicast"),
            (Afi::Ipv6, Safi::Unicast) => f.write_str("ipv6-unicast"),
            (a, s) => write!(f, "afi{}-safi{}", a.code(), s.code()),
        }
    }
}

/// One NLRI entry: a prefix, with its ADD-PATH path identifier when negotiated
/// (RFC 7911).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            prefix,
            path_id: None,
        }
    }
}

/// ORIGIN attribute values (RFC 4271 §5.1.1). Ordered by preference (lower wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Origin {
    #[default]
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    pub fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Origin::Igp),
            1 => Some(Origin::Egp),
            2 => Some(Origin::Incomplete),
            _ => None,
        }
    }
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 for the confederation ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

impl SegmentKind {
    pub fn code(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(SegmentKind::Set),
            2 => Some(SegmentKind::Sequence),
            3 => Some(SegmentKind::ConfedSequence),
            4 => Some(SegmentKind::ConfedSet),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// An AS path with 4-octet AS numbers throughout. The codec converts from and to
/// 2-octet paths plus AS4_PATH for peers without the 4-octet capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn from_sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Path length for the decision process: a SET counts as one, confederation
    /// segments count as zero (RFC 4271 §9.1.2.2, RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of the first SEQUENCE segment.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == SegmentKind::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    /// The originating AS: the last AS of the last SEQUENCE segment.
    pub fn origin_as(&self) -> Option<u32> {
        match self.segments.last() {
            Some(s) if s.kind == SegmentKind::Sequence => s.asns.last().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Every AS number in order of appearance.
    pub fn iter_asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// Prepend `asn` `times` times, as an eBGP speaker does on export.
    pub fn prepend(&mut self, asn: u32, times: usize) {
        if times == 0 {
            return;
        }
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentKind::Sequence && s.asns.len() + times <= 255 => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, times));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn; times],
                },
            ),
        }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let inner = seg
                .asns
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            match seg.kind {
                SegmentKind::Sequence => f.write_str(&inner)?,
                SegmentKind::Set => write!(f, "{{{inner}}}")?,
                SegmentKind::ConfedSequence => write!(f, "({inner})")?,
                SegmentKind::ConfedSet => write!(f, "[{inner}]")?,
            }
        }
        Ok(())
    }
}

/// A standard community (RFC 1997), `asn:value` in its upper and lower halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// RFC 8642: marks routes retained as stale through a long-lived graceful restart.
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);

    pub fn new(asn: u16, value: u16) -> Self {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

impl std::str::FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no-export" => return Ok(Community::NO_EXPORT),
            "no-advertise" => return Ok(Community::NO_ADVERTISE),
            "no-export-subconfed" | "local-as" => return Ok(Community::NO_EXPORT_SUBCONFED),
            "graceful-shutdown" => return Ok(Community::GRACEFUL_SHUTDOWN),
            "blackhole" => return Ok(Community::BLACKHOLE),
            _ => {}
        }
        let (a, v) = s
            .split_once(':')
            .ok_or_else(|| format!("community {s:?} is not ASN:VALUE"))?;
        let a: u16 = a
            .parse()
            .map_err(|_| format!("community {s:?}: {a:?} is not a 16-bit number"))?;
        let v: u16 = v
            .parse()
            .map_err(|_| format!("community {s:?}: {v:?} is not a 16-bit number"))?;
        Ok(Community::new(a, v))
    }
}

/// An extended community (RFC 4360), kept as its eight octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl ExtCommunity {
    /// Route target, 2-octet AS specific (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> Self {
        let mut b = [0u8; 8];
        b[0] = 0x00;
        b[1] = 0x02;
        b[2..4].copy_from_slice(&asn.to_be_bytes());
        b[4..8].copy_from_slice(&value.to_be_bytes());
        ExtCommunity(b)
    }

    /// The transitive bit is clear (RFC 4360 §2).
    pub fn is_transitive(&self) -> bool {
        self.0[0] & 0x40 == 0
    }
}

/// A large community (RFC 8092): `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl std::str::FromStr for LargeCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [g, l1, l2] = parts.as_slice() else {
            return Err(format!("large community {s:?} is not GLOBAL:LOCAL1:LOCAL2"));
        };
        let p = |x: &str| {
            x.parse::<u32>()
                .map_err(|_| format!("large community {s:?}: {x:?} is not a 32-bit number"))
        };
        Ok(LargeCommunity {
            global: p(g)?,
            local1: p(l1)?,
            local2: p(l2)?,
        })
    }
}

/// The next hop of a route as the RIB sees it, whatever attribute carried it
/// (NEXT_HOP for IPv4 or MP_REACH_NLRI, which may carry an IPv6 global and a
/// link-local address, also for IPv4 routes under RFC 8950).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    pub fn addr(&self) -> IpAddr {
        match *self {
            NextHop::V4(a) => IpAddr::V4(a),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        }
    }
}

impl From<IpAddr> for NextHop {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => NextHop::V4(a),
            IpAddr::V6(a) => NextHop::V6 {
                global: a,
                link_local: None,
            },
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

/// An attribute the speaker does not interpret, kept verbatim. Optional transitive
/// ones are passed on with the Partial bit set (RFC 4271 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawAttr {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// Aggregator attribute, with a 4-octet AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    pub asn: u32,
    pub addr: Ipv4Addr,
}

/// The path attributes of a route, decoded, excluding the reachability information
/// itself (NLRI, MP_REACH/MP_UNREACH prefixes), which travel beside them.
///
/// `next_hop` is the family-independent next hop: the codec fills it from NEXT_HOP
/// or from MP_REACH_NLRI, and writes it back to whichever the family needs.
/// Lists of communities are kept sorted and deduplicated by the code that builds
/// them ([`PathAttrs::normalize`]), so equal sets hash equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PathAttrs {
    pub origin: Origin,
    pub as_path: AsPath,
    pub next_hop: Option<NextHop>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub ext_communities: Vec<ExtCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// RFC 4456 route reflection.
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Attributes we do not interpret, in type-code order.
    pub unknown: Vec<RawAttr>,
}

impl PathAttrs {
    /// Sort and deduplicate the community lists and order unknown attributes by
    /// type code, so that equal attribute sets compare and hash equal.
    pub fn normalize(&mut self) {
        self.communities.sort_unstable();
        self.communities.dedup();
        self.ext_communities.sort_unstable();
        self.ext_communities.dedup();
        self.large_communities.sort_unstable();
        self.large_communities.dedup();
        self.unknown.sort_by_key(|a| a.type_code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_length_and_ends() {
        let mut p = AsPath::from_sequence([65001, 65002]);
        p.segments.push(AsSegment {
            kind: SegmentKind::Set,
            asns: vec![1, 2, 3],
        });
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65001));
        assert_eq!(p.origin_as(), None);
        p.prepend(64512, 2);
        assert_eq!(p.to_string(), "64512 64512 65001 65002 {1 2 3}");
        assert_eq!(p.path_len(), 5);
    }

    #[test]
    fn communities_parse_and_print() {
        let c: Community = "65001:100".parse().unwrap();
        assert_eq!(c, Community::new(65001, 100));
        assert_eq!(c.to_string(), "65001:100");
        assert_eq!(
            "no-export".parse::<Community>().unwrap(),
            Community::NO_EXPORT
        );
        assert!("65536:1".parse::<Community>().is_err());
        let l: LargeCommunity = "4200000000:1:2".parse().unwrap();
        assert_eq!(l.to_string(), "4200000000:1:2");
        assert!("1:2".parse::<LargeCommunity>().is_err());
    }

    #[test]
    fn normalize_makes_equal_sets_equal() {
        let mut a = PathAttrs {
            communities: vec![Community(2), Community(1), Community(2)],
            ..Default::default()
        };
        let mut b = PathAttrs {
            communities: vec![Community(1), Community(2)],
            ..Default::default()
        };
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
    }
}
