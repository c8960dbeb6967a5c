//! Routing mode's pure core: from what the agent knows (its local endpoints, the routes
//! the BGP speaker selected, the fabric's endpoint → host map) to what the kernel FIB and
//! the speaker should hold.
//!
//! - [`desired_fib`]: the host's routes. A local endpoint gets a device /32 on its veth;
//!   a learned prefix gets its ECMP next hops; a remote endpoint on a segment this host
//!   shares with its host may be routed straight to that host (`direct_routes`).
//!   A local endpoint always wins over a learned route for the same /32 (a ToR echoing
//!   our own /32 back must never pull our container's traffic into the fabric).
//! - [`advertisements`]: the prefixes to originate: each local endpoint's /32
//!   (`per-endpoint`), or host blocks with /32 exceptions (`host-block`), or network
//!   subnets (`network-subnet`).
//!
//! Everything here is data in, data out; the agent's drivers apply it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::fib::{Route, RouteSet, route_set};

/// A container endpoint plumbed on this host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalEndpoint {
    pub id: String,
    pub address: IpAddr,
    /// The host-side veth's interface index.
    pub host_ifindex: u32,
}

/// A best path from the speaker: a prefix and its ECMP next hops.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Learned {
    pub prefix: IpNet,
    pub nexthops: Vec<IpAddr>,
}

/// An endpoint of another host, from netmaster's endpoint → host map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemoteEndpoint {
    pub address: IpAddr,
    /// The router address of the host that holds it.
    pub host_router_ip: IpAddr,
}

/// How the host advertises its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvertiseMode {
    /// One /32 per endpoint (Contiv's behaviour).
    PerEndpoint,
    /// The host's blocks; endpoints outside every block still go out as /32s.
    HostBlocks(Vec<IpNet>),
    /// The network subnets the host has endpoints in.
    NetworkSubnets,
}

/// Inputs of [`desired_fib`].
#[derive(Debug, Clone, Default)]
pub struct FibInputs<'a> {
    pub endpoints: &'a [LocalEndpoint],
    pub learned: &'a [Learned],
    /// Remote endpoints to route directly (only those on segments we share).
    pub direct: &'a [RemoteEndpoint],
    /// Prefixes never installed from BGP (the host's own router subnet, its
    /// management networks): learning them must not override connected routes.
    pub protected: &'a [IpNet],
}

fn host_prefix(a: IpAddr) -> IpNet {
    host_route(a)
}

/// The routes the kernel should hold, marked as ours.
pub fn desired_fib(inp: &FibInputs<'_>) -> RouteSet {
    let mut routes: BTreeMap<IpNet, Route> = BTreeMap::new();
    for l in inp.learned {
        if l.nexthops.is_empty() || inp.protected.iter().any(|p| p == &l.prefix) {
            continue;
        }
        routes.insert(l.prefix, Route::new(l.prefix, l.nexthops.iter().copied()));
    }
    for r in inp.direct {
        let p = host_prefix(r.address);
        routes.insert(p, Route::new(p, [r.host_router_ip]));
    }
    for e in inp.endpoints {
        let p = host_prefix(e.address);
        routes.insert(p, Route::dev(p, e.host_ifindex));
    }
    route_set(routes.into_values())
}

/// The prefixes this host originates into BGP.
pub fn advertisements(
    mode: &AdvertiseMode,
    endpoints: &[LocalEndpoint],
    subnet_of: impl Fn(&LocalEndpoint) -> Option<IpNet>,
) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    match mode {
        AdvertiseMode::PerEndpoint => {
            out.extend(endpoints.iter().map(|e| host_prefix(e.address)));
        }
        AdvertiseMode::HostBlocks(blocks) => {
            for e in endpoints {
                match blocks.iter().find(|b| b.contains(&e.address)) {
                    Some(b) => {
                        out.insert(b.trunc());
                    }
                    None => {
                        out.insert(host_prefix(e.address));
                    }
                }
            }
        }
        AdvertiseMode::NetworkSubnets => {
            for e in endpoints {
                match subnet_of(e) {
                    Some(s) => out.insert(s.trunc()),
                    None => out.insert(host_prefix(e.address)),
                };
            }
        }
    }
    out
}

/// True when `a` is a usable IPv4 host /32 (not 0.0.0.0/8, multicast, broadcast).
pub fn is_host_address(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// The /32 (or /128) of an address.
pub fn host_route(a: IpAddr) -> IpNet {
    match a {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => IpNet::V6(ipnet::Ipv6Net::from(v6)),
    }
}

/// The remote endpoints this host may reach without the fabric: those homed on a host
/// whose router address is on this host's own router subnet (a shared segment). `hosts`
/// maps each host to its router address; `endpoints` lists every endpoint of the fabric
/// with its homing host.
pub fn direct_endpoints(
    own_host: &str,
    own_router_net: IpNet,
    hosts: &BTreeMap<String, IpAddr>,
    endpoints: &[(String, Vec<IpAddr>)],
) -> Vec<RemoteEndpoint> {
    let own_ip = own_router_net.addr();
    let mut out: Vec<RemoteEndpoint> = endpoints
        .iter()
        .filter(|(h, _)| h != own_host)
        .filter_map(|(h, addrs)| {
            let router = *hosts.get(h)?;
            (router != own_ip && own_router_net.contains(&router)).then(|| {
                addrs.iter().map(move |a| RemoteEndpoint {
                    address: *a,
                    host_router_ip: router,
                })
            })
        })
        .flatten()
        .filter(|r| r.address.is_ipv4() == r.host_router_ip.is_ipv4())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::NextHop;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn local_endpoints_win_over_learned_and_direct() {
        let eps = [LocalEndpoint {
            id: "a".into(),
            address: ip("20.1.1.2"),
            host_ifindex: 7,
        }];
        let learned = [
            Learned {
                prefix: net("20.1.1.2/32"),
                nexthops: vec![ip("10.1.1.1")],
            },
            Learned {
                prefix: net("0.0.0.0/0"),
                nexthops: vec![ip("10.1.1.1"), ip("10.1.2.1")],
            },
            Learned {
                prefix: net("10.1.1.0/24"),
                nexthops: vec![ip("10.1.1.1")],
            },
        ];
        let direct = [RemoteEndpoint {
            address: ip("20.1.1.3"),
            host_router_ip: ip("10.1.1.12"),
        }];
        let protected = [net("10.1.1.0/24")];
        let fib = desired_fib(&FibInputs {
            endpoints: &eps,
            learned: &learned,
            direct: &direct,
            protected: &protected,
        });
        let routes: Vec<&Route> = fib.values().collect();
        assert_eq!(routes.len(), 3, "{routes:?}");
        let own = fib
            .values()
            .find(|r| r.prefix == net("20.1.1.2/32"))
            .unwrap();
        assert_eq!(
            own.nexthops.iter().collect::<Vec<_>>(),
            vec![&NextHop::dev(7)]
        );
        let default = fib.values().find(|r| r.prefix == net("0.0.0.0/0")).unwrap();
        assert_eq!(default.nexthops.len(), 2);
        assert!(fib.values().any(|r| r.prefix == net("20.1.1.3/32")));
        assert!(!fib.values().any(|r| r.prefix == net("10.1.1.0/24")));
    }

    #[test]
    fn advertisement_modes() {
        let eps = [
            LocalEndpoint {
                id: "a".into(),
                address: ip("20.1.1.2"),
                host_ifindex: 7,
            },
            LocalEndpoint {
                id: "b".into(),
                address: ip("20.1.2.9"),
                host_ifindex: 8,
            },
        ];
        let per = advertisements(&AdvertiseMode::PerEndpoint, &eps, |_| None);
        assert_eq!(per, [net("20.1.1.2/32"), net("20.1.2.9/32")].into());
        let blocks = advertisements(
            &AdvertiseMode::HostBlocks(vec![net("20.1.1.0/26")]),
            &eps,
            |_| None,
        );
        assert_eq!(blocks, [net("20.1.1.0/26"), net("20.1.2.9/32")].into());
        let subnets = advertisements(&AdvertiseMode::NetworkSubnets, &eps, |e| {
            (e.id == "a").then(|| net("20.1.1.0/24"))
        });
        assert_eq!(subnets, [net("20.1.1.0/24"), net("20.1.2.9/32")].into());
    }

    #[test]
    fn host_addresses() {
        assert!(is_host_address(ip("20.1.1.2")));
        assert!(!is_host_address(ip("0.0.0.0")));
        assert!(!is_host_address(ip("224.0.0.1")));
        assert_eq!(host_route(ip("20.1.1.2")), net("20.1.1.2/32"));
    }

    #[test]
    fn direct_routes_only_towards_hosts_on_our_segment() {
        let hosts = BTreeMap::from([
            ("h1".to_string(), ip("10.9.0.1")),
            ("h2".to_string(), ip("10.9.0.2")),
            ("h3".to_string(), ip("10.8.0.3")),
        ]);
        let eps = vec![
            ("h1".to_string(), vec![ip("20.1.1.1")]),
            ("h2".to_string(), vec![ip("20.1.1.2"), ip("2001:db8::2")]),
            ("h3".to_string(), vec![ip("20.1.1.3")]),
            ("gone".to_string(), vec![ip("20.1.1.4")]),
        ];
        let d = direct_endpoints("h1", "10.9.0.1/24".parse().unwrap(), &hosts, &eps);
        assert_eq!(
            d,
            vec![RemoteEndpoint {
                address: ip("20.1.1.2"),
                host_router_ip: ip("10.9.0.2")
            }]
        );
        let fib = desired_fib(&FibInputs {
            direct: &d,
            ..Default::default()
        });
        assert_eq!(fib.len(), 1);
    }
}
