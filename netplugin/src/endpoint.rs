//! Routing-mode endpoint plumbing in the kernel: one veth pair per container.
//!
//! Container side (`eth0` in the container's namespace): the endpoint's address with its
//! network's prefix length, MAC `02:02:<IPv4 octets>` (Contiv's convention), a permanent
//! neighbour entry for the gateway pointing at the anycast gateway MAC
//! `00:00:11:11:11:11`, and a default route via the gateway. The container never ARPs for
//! its gateway; ARPs for other addresses of its subnet are answered by the host side.
//!
//! Host side (`cv<hash>` in the host namespace): MAC `00:00:11:11:11:11`, up, proxy ARP on
//! with no delay. The /32 route to the container (a device route on the host side) is a
//! FIB route like any other and is installed through [`crate::fib`], marked with our
//! protocol number.
//!
//! Invariants: host-side interfaces are named `cv` + 11 hex digits of a hash of the
//! endpoint id (so the name is ours, stable across restarts, and at most 15 bytes); a
//! failed plumb removes whatever it created before returning its error.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

use crate::fib::RTPROT_CONTIV;
use crate::nl::{Conn, NlError, in_netns};

/// Prefix of every host-side interface netplugin creates.
pub const HOST_IF_PREFIX: &str = "cv";

/// Contiv's anycast gateway MAC: the host side of every endpoint.
pub const GATEWAY_MAC: [u8; 6] = [0x00, 0x00, 0x11, 0x11, 0x11, 0x11];

/// Contiv's container MAC: `02:02:` and the four octets of the IPv4 address.
pub fn container_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x02, o[0], o[1], o[2], o[3]]
}

/// The host-side interface name of an endpoint: `cv` + 11 hex digits of FNV-1a(id).
pub fn host_ifname(endpoint_id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{HOST_IF_PREFIX}{:011x}", h & 0x0fff_ffff_ffff)
}

/// What a container's interface should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The endpoint id (Contiv: the container/endpoint id); names the host interface.
    pub id: String,
    /// The container's network namespace (a path such as `/proc/<pid>/ns/net`).
    pub netns: PathBuf,
    /// The interface name inside the container.
    pub ifname: String,
    /// The container's address with its network's prefix length (`20.1.1.2/24`).
    pub address: IpNet,
    /// The network's gateway, reached through the host side.
    pub gateway: Option<IpAddr>,
    pub mtu: u32,
}

/// What [`plumb`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plumbed {
    pub host_ifname: String,
    pub host_ifindex: u32,
    pub mac: [u8; 6],
}

/// Endpoint plumbing errors; each names the endpoint and the step.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint {id}: {step}: {source}")]
    Step {
        id: String,
        step: &'static str,
        #[source]
        source: NlError,
    },
    #[error("endpoint {id}: {reason}")]
    Invalid { id: String, reason: String },
}

/// Where the host side lives: the caller's namespace (production) or a namespace path
/// (tests, where a namespace plays the host).
#[derive(Debug, Clone, Default)]
pub struct HostNs(pub Option<PathBuf>);

impl HostNs {
    pub(crate) fn conn(&self) -> Result<Conn, NlError> {
        match &self.0 {
            Some(p) => Conn::open_in_netns(p),
            None => Conn::open(),
        }
    }

    /// Writes `/proc/sys/net/...` settings inside the host namespace (one trip into it).
    fn sysctls(&self, settings: &[(String, &str)]) -> Result<(), NlError> {
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| (format!("/proc/sys/{}", k.replace('.', "/")), v.to_string()))
            .collect();
        let write = move || {
            settings
                .iter()
                .try_for_each(|(path, value)| std::fs::write(path, value))
                .map_err(NlError::Socket)
        };
        match &self.0 {
            Some(p) => in_netns(p, write),
            None => write(),
        }
    }
}

fn link_index(conn: &mut Conn, name: &str) -> Result<u32, NlError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    conn.query(RouteNetlinkMessage::GetLink(m), false)?
        .into_iter()
        .find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
            _ => None,
        })
        .ok_or_else(|| NlError::Protocol(format!("no interface {name}")))
}

fn set_up(conn: &mut Conn, index: u32) -> Result<(), NlError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    conn.request(RouteNetlinkMessage::SetLink(m), 0)
}

/// Creates the endpoint's veth pair and configures both sides. On error, removes what it
/// created.
pub fn plumb(host: &HostNs, spec: &EndpointSpec) -> Result<Plumbed, EndpointError> {
    let id = spec.id.clone();
    let step = |step: &'static str| {
        let id = id.clone();
        move |source: NlError| EndpointError::Step {
            id: id.clone(),
            step,
            source,
        }
    };
    let IpAddr::V4(v4) = spec.address.addr() else {
        return Err(EndpointError::Invalid {
            id,
            reason: "IPv6 endpoint addresses are not supported in routing mode yet".into(),
        });
    };
    if let Some(gw) = spec.gateway
        && !gw.is_ipv4()
    {
        return Err(EndpointError::Invalid {
            id,
            reason: format!("gateway {gw} is not an IPv4 address like {v4}"),
        });
    }
    if spec.ifname.is_empty() || spec.ifname.len() > 15 {
        return Err(EndpointError::Invalid {
            id,
            reason: format!("interface name '{}' needs 1 to 15 characters", spec.ifname),
        });
    }
    let mac = container_mac(v4);
    let host_if = host_ifname(&spec.id);
    let mut hc = host.conn().map_err(step("opening the host namespace"))?;
    let ctr_ns = File::open(&spec.netns)
        .map_err(|e| step("opening the container namespace")(NlError::Socket(e)))?;

    // The pair, with the peer created directly inside the container's namespace.
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(spec.ifname.clone()));
    peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    peer.attributes.push(LinkAttribute::Mtu(spec.mtu));
    peer.attributes
        .push(LinkAttribute::NetNsFd(ctr_ns.as_raw_fd()));
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(host_if.clone()));
    m.attributes
        .push(LinkAttribute::Address(GATEWAY_MAC.to_vec()));
    m.attributes.push(LinkAttribute::Mtu(spec.mtu));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    hc.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(step("creating the veth pair"))?;
    drop(ctr_ns);

    let configured = (|| -> Result<u32, EndpointError> {
        let index = link_index(&mut hc, &host_if).map_err(step("finding the host interface"))?;
        host.sysctls(&[
            (format!("net.ipv4.conf.{host_if}.proxy_arp"), "1"),
            (format!("net.ipv4.neigh.{host_if}.proxy_delay"), "0"),
        ])
        .map_err(step("enabling proxy ARP without delay"))?;
        set_up(&mut hc, index).map_err(step("bringing the host interface up"))?;
        configure_container(spec, v4).map_err(step("configuring the container side"))?;
        Ok(index)
    })();
    match configured {
        Ok(host_ifindex) => Ok(Plumbed {
            host_ifname: host_if,
            host_ifindex,
            mac,
        }),
        Err(e) => {
            let _ = delete_link(&mut hc, &host_if);
            Err(e)
        }
    }
}

fn configure_container(spec: &EndpointSpec, v4: Ipv4Addr) -> Result<(), NlError> {
    let spec = spec.clone();
    in_netns(&spec.netns.clone(), move || {
        let mut c = Conn::open()?;
        let lo = link_index(&mut c, "lo")?;
        set_up(&mut c, lo)?;
        let eth = link_index(&mut c, &spec.ifname)?;
        let mut a = AddressMessage::default();
        a.header.family = AddressFamily::Inet;
        a.header.prefix_len = spec.address.prefix_len();
        a.header.scope = AddressScope::Universe;
        a.header.index = eth;
        a.attributes.push(AddressAttribute::Local(IpAddr::V4(v4)));
        a.attributes.push(AddressAttribute::Address(IpAddr::V4(v4)));
        c.request(
            RouteNetlinkMessage::NewAddress(a),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        set_up(&mut c, eth)?;
        if let Some(gw) = spec.gateway {
            let mut n = NeighbourMessage::default();
            n.header.family = AddressFamily::Inet;
            n.header.ifindex = eth;
            n.header.state = NeighbourState::Permanent;
            n.header.kind = RouteType::Unicast;
            n.attributes.push(NeighbourAttribute::Destination(match gw {
                IpAddr::V4(g) => NeighbourAddress::Inet(g),
                IpAddr::V6(g) => NeighbourAddress::Inet6(g),
            }));
            n.attributes
                .push(NeighbourAttribute::LinkLayerAddress(GATEWAY_MAC.to_vec()));
            c.request(
                RouteNetlinkMessage::NewNeighbour(n),
                NLM_F_CREATE | NLM_F_REPLACE,
            )?;
            let mut r = RouteMessage::default();
            r.header.address_family = AddressFamily::Inet;
            r.header.table = RouteHeader::RT_TABLE_MAIN;
            r.header.protocol = RouteProtocol::Other(RTPROT_CONTIV);
            r.header.scope = RouteScope::Universe;
            r.header.kind = RouteType::Unicast;
            if !spec.address.contains(&gw) {
                r.header.flags = RouteFlags::Onlink;
            }
            r.attributes.push(RouteAttribute::Gateway(gw.into()));
            r.attributes.push(RouteAttribute::Oif(eth));
            c.request(
                RouteNetlinkMessage::NewRoute(r),
                NLM_F_CREATE | NLM_F_REPLACE,
            )?;
        }
        Ok(())
    })
}

fn delete_link(conn: &mut Conn, name: &str) -> Result<(), NlError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    conn.request(RouteNetlinkMessage::DelLink(m), 0)
}

/// Removes an endpoint's veth pair (both ends; the kernel drops the /32 device route with
/// it). Removing one that is already gone is not an error.
pub fn unplumb(host: &HostNs, endpoint_id: &str) -> Result<(), EndpointError> {
    let name = host_ifname(endpoint_id);
    let err = |source| EndpointError::Step {
        id: endpoint_id.to_string(),
        step: "deleting the veth pair",
        source,
    };
    let mut hc = host.conn().map_err(err)?;
    match delete_link(&mut hc, &name) {
        Ok(()) => Ok(()),
        Err(NlError::Socket(e)) if e.raw_os_error() == Some(19) => Ok(()), // ENODEV
        Err(e) => Err(err(e)),
    }
}

/// The temporary name of a Docker endpoint's container side (`ct` + the same hash as the
/// host side): the pair is created in the host namespace and Docker moves this end into
/// the sandbox, renaming it to `eth<N>`.
pub fn detached_ifname(endpoint_id: &str) -> String {
    format!("ct{}", &host_ifname(endpoint_id)[HOST_IF_PREFIX.len()..])
}

/// Creates a Docker endpoint's veth pair, both ends in the host namespace: the host side
/// configured as [`plumb`] does, the container side named [`detached_ifname`] with
/// Contiv's MAC and left down and unaddressed for Docker to move and configure. On error,
/// removes what it created.
pub fn plumb_detached(
    host: &HostNs,
    id: &str,
    address: IpNet,
    mtu: u32,
) -> Result<(Plumbed, String), EndpointError> {
    let step = |step: &'static str| {
        let id = id.to_string();
        move |source: NlError| EndpointError::Step {
            id: id.clone(),
            step,
            source,
        }
    };
    let IpAddr::V4(v4) = address.addr() else {
        return Err(EndpointError::Invalid {
            id: id.to_string(),
            reason: "IPv6 endpoint addresses are not supported in routing mode yet".into(),
        });
    };
    let mac = container_mac(v4);
    let host_if = host_ifname(id);
    let ctr_if = detached_ifname(id);
    let mut hc = host.conn().map_err(step("opening the host namespace"))?;
    let mut peer = LinkMessage::default();
    peer.attributes.push(LinkAttribute::IfName(ctr_if.clone()));
    peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    peer.attributes.push(LinkAttribute::Mtu(mtu));
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(host_if.clone()));
    m.attributes
        .push(LinkAttribute::Address(GATEWAY_MAC.to_vec()));
    m.attributes.push(LinkAttribute::Mtu(mtu));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    hc.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(step("creating the veth pair"))?;
    let configured = (|| -> Result<u32, EndpointError> {
        let index = link_index(&mut hc, &host_if).map_err(step("finding the host interface"))?;
        host.sysctls(&[
            (format!("net.ipv4.conf.{host_if}.proxy_arp"), "1"),
            (format!("net.ipv4.neigh.{host_if}.proxy_delay"), "0"),
        ])
        .map_err(step("enabling proxy ARP without delay"))?;
        set_up(&mut hc, index).map_err(step("bringing the host interface up"))?;
        Ok(index)
    })();
    match configured {
        Ok(host_ifindex) => Ok((
            Plumbed {
                host_ifname: host_if,
                host_ifindex,
                mac,
            },
            ctr_if,
        )),
        Err(e) => {
            let _ = delete_link(&mut hc, &host_if);
            Err(e)
        }
    }
}

/// The index of a host interface, `None` when it does not exist.
pub fn host_ifindex(host: &HostNs, name: &str) -> Result<Option<u32>, NlError> {
    ifindex_on(&mut host.conn()?, name)
}

/// [`host_ifindex`] on an open connection.
pub(crate) fn ifindex_on(conn: &mut Conn, name: &str) -> Result<Option<u32>, NlError> {
    match link_index(conn, name) {
        Ok(i) => Ok(Some(i)),
        Err(NlError::Protocol(_)) => Ok(None),
        Err(NlError::Socket(e)) if e.raw_os_error() == Some(19) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The host interfaces that are ours ([`is_ours`]), by name.
pub fn our_links(host: &HostNs) -> Result<Vec<String>, NlError> {
    Ok(our_link_indexes(host)?.into_keys().collect())
}

/// Our host interfaces with their indexes, from one link dump.
pub fn our_link_indexes(host: &HostNs) -> Result<std::collections::BTreeMap<String, u32>, NlError> {
    our_links_on(&mut host.conn()?)
}

/// [`our_link_indexes`] on an open connection.
pub(crate) fn our_links_on(
    conn: &mut Conn,
) -> Result<std::collections::BTreeMap<String, u32>, NlError> {
    Ok(conn
        .query(RouteNetlinkMessage::GetLink(LinkMessage::default()), true)?
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => {
                let index = l.header.index;
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) if is_ours(&n) => Some((n, index)),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect())
}

/// Removes a host interface of ours by name (gone already is not an error).
pub fn remove_link(host: &HostNs, name: &str) -> Result<(), NlError> {
    remove_link_on(&mut host.conn()?, name)
}

/// [`remove_link`] on an open connection.
pub(crate) fn remove_link_on(conn: &mut Conn, name: &str) -> Result<(), NlError> {
    match delete_link(conn, name) {
        Ok(()) => Ok(()),
        Err(NlError::Socket(e)) if e.raw_os_error() == Some(19) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Turns on IPv4 forwarding in the host namespace: routing mode routes every container
/// packet, and proxy ARP answers only on a forwarding host. Reads first, so an already
/// forwarding host is not written to.
pub fn enable_forwarding(host: &HostNs) -> Result<(), NlError> {
    let read = || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map_err(NlError::Socket);
    let on = match &host.0 {
        Some(p) => in_netns(p, read)?,
        None => read()?,
    };
    if on.trim() == "1" {
        return Ok(());
    }
    host.sysctls(&[("net.ipv4.ip_forward".to_string(), "1")])
}

/// Whether a host interface is one of ours.
pub fn is_ours(ifname: &str) -> bool {
    ifname.len() == HOST_IF_PREFIX.len() + 11
        && ifname.starts_with(HOST_IF_PREFIX)
        && ifname[HOST_IF_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
}

/// The container namespace of a process (`/proc/<pid>/ns/net`).
pub fn netns_of(pid: u32) -> PathBuf {
    Path::new("/proc").join(pid.to_string()).join("ns/net")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_macs_follow_the_conventions() {
        assert_eq!(
            container_mac("20.1.1.3".parse().unwrap()),
            [2, 2, 20, 1, 1, 3]
        );
        let n = host_ifname("8f2e01aa9c7d");
        assert_eq!(n.len(), 13);
        assert!(is_ours(&n));
        assert_eq!(n, host_ifname("8f2e01aa9c7d"), "stable across restarts");
        assert_ne!(n, host_ifname("8f2e01aa9c7e"));
        assert!(!is_ours("eth0") && !is_ours("cvzzzzzzzzzzz") && !is_ours("cali1234567890"));
    }
}
