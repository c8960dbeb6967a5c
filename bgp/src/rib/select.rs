//! The decision process: an order on paths to one prefix.
//!
//! The rules: RFC 4271 §9.1.2.2 minus the IGP-cost step
//! (a host does not know IGP costs), with MED compared between all paths
//! ("always-compare-med"), which keeps the order total and transitive so that a sorted
//! list of paths can be maintained incrementally.
//!
//! Order, best first: locally originated; highest LOCAL_PREF (100 when absent);
//! shortest AS_PATH; lowest ORIGIN; lowest MED (missing = 0); eBGP over iBGP; lowest
//! router id; lowest peer address. Two further tie-breakers make the order total:
//! lowest ADD-PATH path identifier (none before any), then lowest [`PeerId`].
//!
//! The ECMP (multipath) group is the best path and every path equal to it through the
//! eBGP/iBGP step, with "as-path multipath-relax": equal AS_PATH length is enough, so a
//! host dual-homed to two ToRs in different ASes gets both.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use crate::types::PathAttrs;

/// A handle for one peer (or for local origination) in a [`super::Rib`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) u32);

impl PeerId {
    /// The slot number, stable while the peer is registered.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the decision process needs to know about where a path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// The peer's address; `None` for locally originated routes.
    pub addr: Option<IpAddr>,
    /// The peer's BGP identifier (ours for local routes).
    pub router_id: Ipv4Addr,
    /// The session is eBGP.
    pub ebgp: bool,
}

impl PeerInfo {
    /// The source of locally originated routes.
    pub fn local(router_id: Ipv4Addr) -> Self {
        PeerInfo {
            addr: None,
            router_id,
            ebgp: false,
        }
    }
}

fn local_pref(a: &PathAttrs) -> u32 {
    a.local_pref.unwrap_or(100)
}

/// Compares through the multipath-relevant steps only; `Greater` means `a` is better
/// and `Equal` means the two are ECMP candidates.
pub fn compare_multipath(a: (&PeerInfo, &PathAttrs), b: (&PeerInfo, &PathAttrs)) -> Ordering {
    let (pa, aa) = a;
    let (pb, ab) = b;
    (pa.addr.is_none())
        .cmp(&pb.addr.is_none())
        .then(local_pref(aa).cmp(&local_pref(ab)))
        .then(ab.as_path.path_len().cmp(&aa.as_path.path_len()))
        .then(ab.origin.cmp(&aa.origin))
        .then(ab.med.unwrap_or(0).cmp(&aa.med.unwrap_or(0)))
        .then(pa.ebgp.cmp(&pb.ebgp))
}

/// The full decision process between two paths of one prefix; `Greater` means `a` is
/// better. `Equal` only for the same (peer, path id).
pub fn compare(
    a: (PeerId, &PeerInfo, Option<u32>, &PathAttrs),
    b: (PeerId, &PeerInfo, Option<u32>, &PathAttrs),
) -> Ordering {
    let (ia, pa, ida, aa) = a;
    let (ib, pb, idb, ab) = b;
    compare_multipath((pa, aa), (pb, ab))
        .then(pb.router_id.cmp(&pa.router_id))
        .then(pb.addr.cmp(&pa.addr))
        .then(idb.cmp(&ida))
        .then(ib.cmp(&ia))
}
