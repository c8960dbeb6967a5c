//! The kernel FIB over rtnetlink. Route changes go out in batches through [`Conn`] (many
//! messages per `sendmsg`), each acknowledged on its own, so an error is tied to its
//! route and the other routes of the batch still take effect.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};

use super::{FibDriver, FibOp, NextHop, RTPROT_CONTIV, Route, RouteSet};
use crate::nl::{Conn, NlError};

/// The main routing table.
const TABLE_MAIN: u32 = 254;
/// The local table (the host's own addresses).
const TABLE_LOCAL: u32 = 255;

/// A prefix of the host's own, when `m` is one: a route of the main table that is not
/// ours and not a default (connected subnets, static routes), or an address of the
/// host (a `local` route of the local table).
fn own_prefix(m: &RouteMessage) -> Option<IpNet> {
    if m.header.protocol == RouteProtocol::Other(RTPROT_CONTIV)
        || m.header.destination_prefix_length == 0
    {
        return None;
    }
    let mut dst = None;
    let mut table = u32::from(m.header.table);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = addr(d),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let wanted = match table {
        TABLE_MAIN => m.header.kind == RouteType::Unicast,
        TABLE_LOCAL => m.header.kind == RouteType::Local,
        _ => false,
    };
    if !wanted {
        return None;
    }
    IpNet::new(dst?, m.header.destination_prefix_length)
        .ok()
        .map(|n| n.trunc())
}

/// The kernel FIB of one network namespace.
#[derive(Debug)]
pub struct NetlinkFib {
    conn: Conn,
}

impl NetlinkFib {
    /// The FIB of the caller's network namespace.
    pub fn open() -> Result<NetlinkFib, NlError> {
        Ok(NetlinkFib {
            conn: Conn::open()?,
        })
    }

    /// The FIB of the network namespace at `path` (e.g. `/run/netns/NAME`).
    pub fn open_in_netns(path: &Path) -> Result<NetlinkFib, NlError> {
        Ok(NetlinkFib {
            conn: Conn::open_in_netns(path)?,
        })
    }

    fn dump(&mut self, family: AddressFamily) -> Result<Vec<RouteMessage>, NlError> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        req.header.table = RouteHeader::RT_TABLE_MAIN;
        req.header.protocol = RouteProtocol::Other(RTPROT_CONTIV);
        Ok(self
            .conn
            .query(RouteNetlinkMessage::GetRoute(req), true)?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .collect())
    }
}

fn family(prefix: &IpNet) -> AddressFamily {
    match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// The netlink message of one of our routes, without next hops.
fn route_message(prefix: IpNet, metric: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(&prefix);
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Other(RTPROT_CONTIV);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Destination(prefix.network().into()));
    m.attributes.push(RouteAttribute::Priority(metric));
    m.attributes.push(RouteAttribute::Table(TABLE_MAIN));
    m
}

fn encode_route(r: &Route) -> RouteMessage {
    let mut m = route_message(r.prefix, r.metric);
    if r.nexthops.len() == 1 {
        let nh = r.nexthops.iter().next().expect("one next hop");
        match nh.gateway {
            Some(gw) => m.attributes.push(RouteAttribute::Gateway(gw.into())),
            None => m.header.scope = RouteScope::Link,
        }
        if let Some(i) = nh.ifindex {
            m.attributes.push(RouteAttribute::Oif(i));
        }
    } else {
        let hops = r
            .nexthops
            .iter()
            .map(|nh| {
                let mut hop = RouteNextHop::default();
                hop.interface_index = nh.ifindex.unwrap_or(0);
                if let Some(gw) = nh.gateway {
                    hop.attributes.push(RouteAttribute::Gateway(gw.into()));
                }
                hop
            })
            .collect();
        m.attributes.push(RouteAttribute::MultiPath(hops));
    }
    m
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Reads one of our routes back; `None` for anything that is not ours or not a gateway
/// route in the main table.
fn decode_route(m: &RouteMessage) -> Option<Route> {
    if m.header.protocol != RouteProtocol::Other(RTPROT_CONTIV) {
        return None;
    }
    let mut dst = None;
    let mut table = u32::from(m.header.table);
    let mut metric = 0;
    let mut gateway = None;
    let mut oif = None;
    let mut nexthops = BTreeSet::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = addr(d),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Gateway(g) => gateway = addr(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(hops) => {
                for h in hops {
                    let gw = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => addr(g),
                        _ => None,
                    });
                    nexthops.insert(NextHop {
                        gateway: gw,
                        ifindex: Some(h.interface_index),
                    });
                }
            }
            _ => {}
        }
    }
    if table != TABLE_MAIN {
        return None;
    }
    if gateway.is_some() || (nexthops.is_empty() && oif.is_some()) {
        nexthops.insert(NextHop {
            gateway,
            ifindex: oif,
        });
    }
    let len = m.header.destination_prefix_length;
    let prefix = match dst {
        Some(ip) => IpNet::new(ip, len).ok()?,
        None if m.header.address_family == AddressFamily::Inet6 => {
            IpNet::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0).ok()?
        }
        None => IpNet::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0).ok()?,
    };
    Some(Route {
        prefix,
        nexthops,
        metric,
    })
}

impl FibDriver for NetlinkFib {
    type Error = NlError;

    fn host_default(&mut self) -> Result<bool, NlError> {
        Ok(self.dump(AddressFamily::Inet)?.iter().any(|m| {
            let table = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(m.header.table));
            m.header.destination_prefix_length == 0
                && m.header.protocol != RouteProtocol::Other(RTPROT_CONTIV)
                && table == TABLE_MAIN
                && m.header.kind == RouteType::Unicast
        }))
    }

    fn own_prefixes(&mut self) -> Result<BTreeSet<IpNet>, NlError> {
        let mut out = BTreeSet::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            out.extend(self.dump(fam)?.iter().filter_map(own_prefix));
        }
        Ok(out)
    }

    fn installed(&mut self) -> Result<RouteSet, NlError> {
        let mut out = RouteSet::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            for m in self.dump(fam)? {
                if let Some(r) = decode_route(&m) {
                    out.insert((r.prefix, r.metric), r);
                }
            }
        }
        Ok(out)
    }

    fn apply(&mut self, ops: &[FibOp]) -> Result<Vec<(FibOp, String)>, NlError> {
        let requests = ops
            .iter()
            .map(|op| match op {
                // A prefix and metric another protocol holds is refused (EEXIST), never
                // overwritten; only a route read back as ours is replaced.
                FibOp::Add(r) => (
                    RouteNetlinkMessage::NewRoute(encode_route(r)),
                    NLM_F_CREATE | NLM_F_EXCL,
                ),
                FibOp::Replace(r) => (
                    RouteNetlinkMessage::NewRoute(encode_route(r)),
                    NLM_F_CREATE | NLM_F_REPLACE,
                ),
                FibOp::Delete { prefix, metric } => (
                    RouteNetlinkMessage::DelRoute(route_message(*prefix, *metric)),
                    0,
                ),
            })
            .collect();
        let results = self.conn.batch(requests)?;
        Ok(ops
            .iter()
            .zip(results)
            .filter_map(|(op, r)| match r {
                Ok(()) => None,
                // A route already gone (ESRCH) is what a delete wanted.
                Err(e) if matches!(op, FibOp::Delete { .. }) && e.raw_os_error() == Some(3) => None,
                Err(e) => Some((op.clone(), e.to_string())),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let single = Route::new(
            "10.1.0.0/24".parse().unwrap(),
            ["192.0.2.1".parse().unwrap()],
        );
        let back = decode_route(&encode_route(&single)).unwrap();
        assert!(single.satisfied_by(&back), "{back:?}");
        let ecmp = Route::new(
            "2001:db8:1::/48".parse().unwrap(),
            ["fe80::1".parse().unwrap(), "fe80::2".parse().unwrap()],
        );
        let back = decode_route(&encode_route(&ecmp)).unwrap();
        assert_eq!(back.nexthops.len(), 2);
        assert!(ecmp.satisfied_by(&back), "{back:?}");
    }

    #[test]
    fn own_prefixes_are_foreign_non_default_routes_and_local_addresses() {
        let mut m = encode_route(&Route::new(
            "192.168.77.0/24".parse().unwrap(),
            ["192.0.2.1".parse().unwrap()],
        ));
        assert_eq!(own_prefix(&m), None, "ours");
        m.header.protocol = RouteProtocol::Kernel;
        assert_eq!(own_prefix(&m), Some("192.168.77.0/24".parse().unwrap()));
        m.attributes
            .retain(|a| !matches!(a, RouteAttribute::Table(_)));
        m.attributes.push(RouteAttribute::Table(TABLE_LOCAL));
        assert_eq!(own_prefix(&m), None, "a unicast route of the local table");
        m.header.kind = RouteType::Local;
        assert_eq!(own_prefix(&m), Some("192.168.77.0/24".parse().unwrap()));
    }

    #[test]
    fn foreign_routes_are_not_read_back() {
        let mut m = encode_route(&Route::new(
            "10.1.0.0/24".parse().unwrap(),
            ["192.0.2.1".parse().unwrap()],
        ));
        m.header.protocol = RouteProtocol::Bgp;
        assert_eq!(decode_route(&m), None);
    }
}
