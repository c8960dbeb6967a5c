//! Address ranges, subnet specs and the range strings of Contiv's oper state.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use super::IpamError;

/// An address as a number (IPv4 addresses are below 2^32).
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address with number `value` in the given family. For IPv4 `value` must be below 2^32;
/// callers only pass numbers taken from IPv4 ranges.
pub(crate) fn from_u128(v6: bool, value: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    }
}

/// An inclusive range of addresses of one family, written `start-end` (an endpoint group's
/// `ipPool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange {
    start: IpAddr,
    end: IpAddr,
}

impl AddrRange {
    /// A range `start..=end`; both must be of the same family and `start <= end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Result<Self, IpamError> {
        let bad = |reason: &str| IpamError::InvalidRange {
            spec: format!("{start}-{end}"),
            reason: reason.to_string(),
        };
        if start.is_ipv4() != end.is_ipv4() {
            return Err(bad("start and end are of different address families"));
        }
        if to_u128(start) > to_u128(end) {
            return Err(bad("start is after end"));
        }
        Ok(AddrRange { start, end })
    }

    pub fn start(&self) -> IpAddr {
        self.start
    }

    pub fn end(&self) -> IpAddr {
        self.end
    }

    pub fn is_ipv6(&self) -> bool {
        self.start.is_ipv6()
    }

    /// Whether `addr` is in the range (an address of the other family never is).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv6() == self.is_ipv6()
            && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(addr))
    }

    /// Number of addresses, saturating at `u128::MAX` for the whole IPv6 space.
    pub fn len(&self) -> u128 {
        (to_u128(self.end) - to_u128(self.start)).saturating_add(1)
    }

    /// Always false: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub(crate) fn bounds(&self) -> (u128, u128) {
        (to_u128(self.start), to_u128(self.end))
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for AddrRange {
    type Err = IpamError;

    /// Parses `start-end` (surrounding whitespace allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| IpamError::InvalidRange {
            spec: s.to_string(),
            reason,
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| bad("expected start-end".to_string()))?;
        let start: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not an IP address", a.trim())))?;
        let end: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not an IP address", b.trim())))?;
        AddrRange::new(start, end).map_err(|e| match e {
            IpamError::InvalidRange { reason, .. } => bad(reason),
            other => other,
        })
    }
}

/// A network's subnet as Contiv writes it: `a.b.c.d/len`, or `start-end/len` where only the
/// addresses from `start` to `end` may be allocated. IPv6 works the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubnetSpec {
    subnet: IpNet,
    range: Option<AddrRange>,
}

impl SubnetSpec {
    /// A subnet (its host bits must be zero) with an optional allocatable sub-range inside it.
    /// IPv6 `::/0` is refused (its size does not fit the counters).
    pub fn new(subnet: IpNet, range: Option<AddrRange>) -> Result<Self, IpamError> {
        let spec = match range {
            Some(r) => format!("{r}/{}", subnet.prefix_len()),
            None => subnet.to_string(),
        };
        let bad = |reason: String| IpamError::InvalidSubnet {
            spec: spec.clone(),
            reason,
        };
        if subnet.trunc() != subnet {
            return Err(bad(format!(
                "host bits are set (the subnet is {})",
                subnet.trunc()
            )));
        }
        if matches!(subnet, IpNet::V6(_)) && subnet.prefix_len() == 0 {
            return Err(bad(
                "the whole IPv6 space ::/0 cannot be a subnet".to_string()
            ));
        }
        if let Some(r) = range
            && !(subnet.contains(&r.start) && subnet.contains(&r.end))
        {
            return Err(bad(format!("range {r} is not inside {subnet}")));
        }
        Ok(SubnetSpec { subnet, range })
    }

    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// The explicit sub-range, if the spec was written `start-end/len`.
    pub fn sub_range(&self) -> Option<AddrRange> {
        self.range
    }

    /// The allocatable range: the sub-range, or the whole subnet.
    pub fn range(&self) -> AddrRange {
        self.range.unwrap_or(AddrRange {
            start: self.subnet.network(),
            end: self.subnet.broadcast(),
        })
    }
}

impl fmt::Display for SubnetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            Some(r) => write!(f, "{r}/{}", self.subnet.prefix_len()),
            None => write!(f, "{}", self.subnet),
        }
    }
}

impl FromStr for SubnetSpec {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| IpamError::InvalidSubnet {
            spec: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (addrs, len) = t
            .rsplit_once('/')
            .ok_or_else(|| bad("expected a.b.c.d/len or start-end/len".to_string()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| bad(format!("{len:?} is not a prefix length")))?;
        let (first, range) = if addrs.contains('-') {
            let r: AddrRange = addrs.parse().map_err(|e: IpamError| bad(e.to_string()))?;
            (r.start, Some(r))
        } else {
            let a: IpAddr = addrs
                .parse()
                .map_err(|_| bad(format!("{addrs:?} is not an IP address")))?;
            (a, None)
        };
        let net = IpNet::new(first, len).map_err(|_| {
            bad(format!(
                "prefix length {len} is too long for an {} address",
                if first.is_ipv4() { "IPv4" } else { "IPv6" }
            ))
        })?;
        let subnet = if range.is_some() { net.trunc() } else { net };
        SubnetSpec::new(subnet, range).map_err(|e| match e {
            IpamError::InvalidSubnet { reason, .. } => bad(reason),
            other => other,
        })
    }
}

/// Writes runs of addresses as `a-b<sep>c`, a run of one address as just the address.
pub(crate) fn format_runs(v6: bool, runs: &[(u128, u128)], sep: &str) -> String {
    let mut out = String::new();
    for (i, &(s, e)) in runs.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&from_u128(v6, s).to_string());
        if e != s {
            out.push('-');
            out.push_str(&from_u128(v6, e).to_string());
        }
    }
    out
}

/// Parses what [`format_runs`] writes (any separator of commas and spaces); addresses must be
/// of the given family.
pub(crate) fn parse_runs(v6: bool, s: &str) -> Result<Vec<(u128, u128)>, String> {
    let addr = |t: &str| -> Result<u128, String> {
        let a: IpAddr = t
            .trim()
            .parse()
            .map_err(|_| format!("{t:?} is not an IP address"))?;
        if a.is_ipv6() != v6 {
            return Err(format!("{a} is of the wrong address family"));
        }
        Ok(to_u128(a))
    };
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let run = match item.split_once('-') {
            Some((a, b)) => (addr(a)?, addr(b)?),
            None => {
                let a = addr(item)?;
                (a, a)
            }
        };
        if run.0 > run.1 {
            return Err(format!("range {item:?} starts after it ends"));
        }
        out.push(run);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_specs() {
        let s: SubnetSpec = "10.1.1.0/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.1.0/24");
        assert_eq!(s.range().to_string(), "10.1.1.0-10.1.1.255");
        let s: SubnetSpec = " 10.1.1.10-10.1.1.20/24 ".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.1.10-10.1.1.20/24");
        assert_eq!(s.subnet().to_string(), "10.1.1.0/24");
        assert_eq!(s.range().len(), 11);
        let s: SubnetSpec = "2001:db8::10-2001:db8::ff/64".parse().unwrap();
        assert_eq!(s.subnet().to_string(), "2001:db8::/64");
        for bad in [
            "10.1.1.0",
            "10.1.1.0/33",
            "10.1.1.5/24",
            "10.1.1.20-10.1.1.10/24",
            "10.1.1.10-10.1.2.10/24",
            "10.1.1.10-2001:db8::1/24",
            "x/24",
            "10.1.1.0/x",
            "::/0",
        ] {
            let err = bad.parse::<SubnetSpec>().unwrap_err();
            assert!(
                matches!(err, IpamError::InvalidSubnet { ref spec, .. } if spec == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn addr_ranges() {
        let r: AddrRange = "10.1.1.5 - 10.1.1.9".parse().unwrap();
        assert_eq!(r.to_string(), "10.1.1.5-10.1.1.9");
        assert_eq!(r.len(), 5);
        assert!(r.contains("10.1.1.9".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        assert!("10.1.1.9-10.1.1.5".parse::<AddrRange>().is_err());
        assert!("10.1.1.9".parse::<AddrRange>().is_err());
        assert!("10.1.1.9-::1".parse::<AddrRange>().is_err());
        assert_eq!(
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse::<AddrRange>()
                .unwrap()
                .len(),
            u128::MAX
        );
    }

    #[test]
    fn runs_round_trip() {
        let runs = vec![(1, 5), (9, 9), (11, 12)];
        let s = format_runs(false, &runs, ", ");
        assert_eq!(s, "0.0.0.1-0.0.0.5, 0.0.0.9, 0.0.0.11-0.0.0.12");
        assert_eq!(parse_runs(false, &s).unwrap(), runs);
        assert!(parse_runs(true, &s).is_err());
        assert!(parse_runs(false, "0.0.0.5-0.0.0.1").is_err());
        assert_eq!(parse_runs(false, "").unwrap(), vec![]);
    }
}
