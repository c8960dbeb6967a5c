//! The kernel FIB over rtnetlink, with batching.
//!
//! Route changes are serialised back to back into one buffer and sent with one
//! `sendmsg` per [`BATCH`] routes; the kernel processes every message of the buffer and
//! acknowledges each by sequence number, so an error is tied to its route and the other
//! routes of the batch still take effect. The socket belongs to the network namespace it
//! was opened in ([`NetlinkFib::open_in_netns`] opens one in another namespace).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::{DEFAULT_METRIC, FibDriver, FibOp, NextHop, RTPROT_CONTIV, Route, RouteSet};

/// Routes per `sendmsg`; the acknowledgements of one batch must fit the socket's receive
/// buffer before the next batch goes out.
pub const BATCH: usize = 1024;

/// The main routing table.
const TABLE_MAIN: u32 = 254;

/// Errors of the netlink FIB driver.
#[derive(Debug, thiserror::Error)]
pub enum FibError {
    #[error("netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("entering network namespace {path}: {source}")]
    Netns {
        path: String,
        source: nix::errno::Errno,
    },
    #[error("netlink: {0}")]
    Protocol(String),
}

/// The kernel FIB of one network namespace.
#[derive(Debug)]
pub struct NetlinkFib {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NetlinkFib {
    /// Opens a rtnetlink socket in the caller's network namespace.
    pub fn open() -> Result<NetlinkFib, FibError> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Room for the acknowledgements of a whole batch and for large dumps.
        socket.set_rx_buf_sz(8 * 1024 * 1024)?;
        Ok(NetlinkFib {
            socket,
            seq: 0,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Opens a socket inside the network namespace at `path` (e.g. `/run/netns/NAME`);
    /// the caller's own namespace is left as it was.
    pub fn open_in_netns(path: &Path) -> Result<NetlinkFib, FibError> {
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let ns = File::open(&path)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
                FibError::Netns {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            NetlinkFib::open()
        })
        .join()
        .map_err(|_| FibError::Protocol("namespace thread panicked".into()))?
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Serialises `msg` with `flags` at the end of `out`; returns its sequence number.
    fn push(&mut self, out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16) -> u32 {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut out[start..]);
        seq
    }

    /// Receives messages until `done` says so.
    fn receive(
        &mut self,
        mut each: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<bool, FibError>,
    ) -> Result<(), FibError> {
        loop {
            self.buf.clear();
            self.socket.recv(&mut self.buf, 0)?;
            let mut offset = 0;
            while offset < self.buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..])
                    .map_err(|e| FibError::Protocol(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(FibError::Protocol("zero-length netlink message".into()));
                }
                offset += len;
                if each(msg)? {
                    return Ok(());
                }
            }
        }
    }

    fn dump(&mut self, family: AddressFamily) -> Result<Vec<RouteMessage>, FibError> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        req.header.table = RouteHeader::RT_TABLE_MAIN;
        req.header.protocol = RouteProtocol::Other(RTPROT_CONTIV);
        let mut out = Vec::new();
        let seq = self.push(
            &mut out,
            RouteNetlinkMessage::GetRoute(req),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        self.socket.send(&out, 0)?;
        let mut routes = Vec::new();
        self.receive(|msg| {
            if msg.header.sequence_number != seq {
                return Ok(false);
            }
            match msg.payload {
                NetlinkPayload::Done(_) => Ok(true),
                NetlinkPayload::Error(e) => Err(FibError::Protocol(format!(
                    "route dump failed: {}",
                    e.code.map_or(0, |c| c.get())
                ))),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                    routes.push(r);
                    Ok(false)
                }
                _ => Ok(false),
            }
        })?;
        Ok(routes)
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
        m.attributes
            .push(RouteAttribute::Gateway(nh.gateway.into()));
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
                hop.attributes
                    .push(RouteAttribute::Gateway(nh.gateway.into()));
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
                    if let Some(gw) = gw {
                        nexthops.insert(NextHop {
                            gateway: gw,
                            ifindex: Some(h.interface_index),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if table != TABLE_MAIN {
        return None;
    }
    if let Some(gw) = gateway {
        nexthops.insert(NextHop {
            gateway: gw,
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
    type Error = FibError;

    fn installed(&mut self) -> Result<RouteSet, FibError> {
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

    fn apply(&mut self, ops: &[FibOp]) -> Result<Vec<(FibOp, String)>, FibError> {
        let mut failed = Vec::new();
        for chunk in ops.chunks(BATCH) {
            let mut out = Vec::with_capacity(chunk.len() * 96);
            let mut pending: HashMap<u32, &FibOp> = HashMap::with_capacity(chunk.len());
            for op in chunk {
                let seq = match op {
                    FibOp::Replace(r) => self.push(
                        &mut out,
                        RouteNetlinkMessage::NewRoute(encode_route(r)),
                        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                    ),
                    FibOp::Delete { prefix, metric } => self.push(
                        &mut out,
                        RouteNetlinkMessage::DelRoute(route_message(*prefix, *metric)),
                        NLM_F_REQUEST | NLM_F_ACK,
                    ),
                };
                pending.insert(seq, op);
            }
            self.socket.send(&out, 0)?;
            self.receive(|msg| {
                if let NetlinkPayload::Error(e) = &msg.payload
                    && let Some(op) = pending.remove(&msg.header.sequence_number)
                    && let Some(code) = e.code
                {
                    let err = std::io::Error::from_raw_os_error(-code.get());
                    // A route already gone is what a delete wanted.
                    if !(matches!(op, FibOp::Delete { .. }) && err.raw_os_error() == Some(3)) {
                        failed.push((op.clone(), err.to_string()));
                    }
                }
                Ok(pending.is_empty())
            })?;
        }
        Ok(failed)
    }
}

/// The metric netplugin gives routes it learned over BGP.
pub const BGP_METRIC: u32 = DEFAULT_METRIC;

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
    fn foreign_routes_are_not_read_back() {
        let mut m = encode_route(&Route::new(
            "10.1.0.0/24".parse().unwrap(),
            ["192.0.2.1".parse().unwrap()],
        ));
        m.header.protocol = RouteProtocol::Bgp;
        assert_eq!(decode_route(&m), None);
    }
}
