//! Best path and ECMP groups over the routes the speaker holds — a small, pure decision
//! process for a host agent (RFC 4271 §9.1.2.2 minus the IGP-cost step, which a host
//! does not know), used until the `bgp` crate's full RIB replaces it.
//!
//! Order: locally originated first, highest LOCAL_PREF (100 when absent), shortest
//! AS_PATH, lowest ORIGIN, lowest MED (missing = 0; compared between all paths), eBGP
//! over iBGP, lowest router id, lowest peer address. The multipath group is every path
//! equal to the best through the eBGP/iBGP step with "as-path multipath-relax" (equal
//! AS_PATH length is enough), so a host dual-homed to two ToRs in different ASes gets
//! both as next hops.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use bgp::types::PathAttrs;

/// Where a path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// `None` for a locally originated path.
    pub peer: Option<IpAddr>,
    pub router_id: Ipv4Addr,
    pub ebgp: bool,
}

/// A path to a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub source: Source,
    pub attrs: PathAttrs,
}

impl Path {
    fn local_pref(&self) -> u32 {
        self.attrs.local_pref.unwrap_or(100)
    }
}

/// Compares through the multipath-relevant steps only (`Equal` = ECMP candidates).
fn compare_multipath(a: &Path, b: &Path) -> Ordering {
    // Greater = better.
    (a.source.peer.is_none())
        .cmp(&b.source.peer.is_none())
        .then(a.local_pref().cmp(&b.local_pref()))
        .then(b.attrs.as_path.path_len().cmp(&a.attrs.as_path.path_len()))
        .then(b.attrs.origin.cmp(&a.attrs.origin))
        .then(b.attrs.med.unwrap_or(0).cmp(&a.attrs.med.unwrap_or(0)))
        .then(a.source.ebgp.cmp(&b.source.ebgp))
}

/// Full comparison; `Greater` means `a` is better.
pub fn compare(a: &Path, b: &Path) -> Ordering {
    compare_multipath(a, b)
        .then(b.source.router_id.cmp(&a.source.router_id))
        .then(b.source.peer.cmp(&a.source.peer))
}

/// The best path and the next hops of its multipath group (deduplicated, sorted).
pub fn select(paths: &[Path], max_paths: usize) -> Option<(&Path, Vec<IpAddr>)> {
    let best = paths.iter().max_by(|a, b| compare(a, b))?;
    let mut hops: Vec<IpAddr> = paths
        .iter()
        .filter(|p| compare_multipath(p, best) == Ordering::Equal)
        .filter_map(|p| p.attrs.next_hop.map(|n| n.addr()))
        .collect();
    hops.sort();
    hops.dedup();
    hops.truncate(max_paths.max(1));
    Some((best, hops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::types::{AsPath, NextHop, Origin};

    fn path(peer: &str, asns: &[u32], nh: &str) -> Path {
        Path {
            source: Source {
                peer: Some(peer.parse().unwrap()),
                router_id: Ipv4Addr::new(1, 1, 1, 1),
                ebgp: true,
            },
            attrs: PathAttrs {
                as_path: AsPath::from_sequence(asns.iter().copied()),
                next_hop: Some(NextHop::V4(nh.parse().unwrap())),
                ..Default::default()
            },
        }
    }

    #[test]
    fn two_tors_in_different_ases_give_ecmp() {
        let paths = [
            path("10.1.1.0", &[65001], "10.1.1.0"),
            path("10.2.1.0", &[65002], "10.2.1.0"),
        ];
        let (_, hops) = select(&paths, 16).unwrap();
        assert_eq!(hops.len(), 2);
    }

    #[test]
    fn shorter_paths_and_local_routes_win() {
        let paths = [
            path("10.1.1.0", &[65001, 65000], "10.1.1.0"),
            path("10.2.1.0", &[65002], "10.2.1.0"),
        ];
        let (best, hops) = select(&paths, 16).unwrap();
        assert_eq!(best.source.peer, Some("10.2.1.0".parse().unwrap()));
        assert_eq!(hops, vec!["10.2.1.0".parse::<IpAddr>().unwrap()]);
        let mut local = path("10.9.9.9", &[], "10.9.9.9");
        local.source.peer = None;
        let mut all = paths.to_vec();
        all.push(local);
        assert_eq!(select(&all, 16).unwrap().0.source.peer, None);
        let mut worse_origin = path("10.3.1.0", &[65003], "10.3.1.0");
        worse_origin.attrs.origin = Origin::Incomplete;
        let two = [worse_origin, path("10.4.1.0", &[65004], "10.4.1.0")];
        assert_eq!(
            select(&two, 16).unwrap().1,
            vec!["10.4.1.0".parse::<IpAddr>().unwrap()]
        );
    }
}
