//! The kernel FIB, as netplugin manages it: the routes it wants (learned over BGP, with
//! ECMP next hops) against the routes the kernel has *that carry our mark*.
//!
//! - [`diff`] is the pure core: desired and installed route sets in, the minimal list of
//!   replaces and deletes out.
//! - [`netlink::NetlinkFib`] is the driver: it reads back the kernel's routes of our
//!   protocol and applies a diff in batches (many netlink messages per `sendmsg`), each
//!   route's error reported apart so one bad route never blocks the others.
//! - [`MemoryFib`] is an in-memory kernel for tests of code above this layer.
//!
//! Invariants: every route we install carries the route protocol number [`RTPROT_CONTIV`];
//! we read back, replace and delete only routes with that number (the kernel also matches
//! the protocol on delete), so a route we did not make is never touched. A restart reads
//! back what is installed and converges by diff (mark and sweep): routes that did not
//! change are not touched, so forwarding never flaps.

pub mod netlink;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

/// The route protocol number marking netplugin's routes (`ip route show proto 200`).
/// Linux reserves numbers above 4 for routing daemons; zebra uses 11, BIRD 12, and 186-192
/// are FRR's per-protocol numbers. 200 is used by none of them.
pub const RTPROT_CONTIV: u8 = 200;

/// The metric of our routes unless a route says otherwise.
pub const DEFAULT_METRIC: u32 = 20;

/// One next hop: a gateway (optionally pinned to an interface), or an interface alone
/// (a device route, such as the /32 of a local container on its veth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    pub gateway: Option<IpAddr>,
    /// The outgoing interface; `None` lets the kernel resolve it from the gateway.
    pub ifindex: Option<u32>,
}

impl NextHop {
    /// Through a gateway.
    pub fn via(gateway: IpAddr) -> NextHop {
        NextHop {
            gateway: Some(gateway),
            ifindex: None,
        }
    }

    /// Straight out of an interface (scope link).
    pub fn dev(ifindex: u32) -> NextHop {
        NextHop {
            gateway: None,
            ifindex: Some(ifindex),
        }
    }
}

/// A route: a prefix with one next hop, or several (ECMP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub nexthops: BTreeSet<NextHop>,
    pub metric: u32,
}

impl Route {
    /// A route via the given gateways (ECMP when more than one).
    pub fn new(prefix: IpNet, gateways: impl IntoIterator<Item = IpAddr>) -> Route {
        Route {
            prefix: prefix.trunc(),
            nexthops: gateways.into_iter().map(NextHop::via).collect(),
            metric: DEFAULT_METRIC,
        }
    }

    /// A device route: the prefix is on-link out of `ifindex`.
    pub fn dev(prefix: IpNet, ifindex: u32) -> Route {
        Route {
            prefix: prefix.trunc(),
            nexthops: [NextHop::dev(ifindex)].into(),
            metric: DEFAULT_METRIC,
        }
    }

    /// Whether an installed route already is what this desired route asks for. Next hops
    /// compare by gateway, and by interface only where the desired one names it.
    pub fn satisfied_by(&self, installed: &Route) -> bool {
        if self.metric != installed.metric || self.nexthops.len() != installed.nexthops.len() {
            return false;
        }
        self.nexthops.iter().all(|want| {
            installed.nexthops.iter().any(|have| {
                have.gateway == want.gateway && want.ifindex.is_none_or(|i| have.ifindex == Some(i))
            })
        })
    }
}

/// A change to the FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibOp {
    /// Install a route where we have none for this prefix and metric. Refused (not
    /// overwritten) when a route of another protocol holds that prefix and metric.
    Add(Route),
    /// Replace our route for this prefix (and metric).
    Replace(Route),
    /// Remove our route for this prefix and metric.
    Delete { prefix: IpNet, metric: u32 },
}

impl FibOp {
    pub fn prefix(&self) -> IpNet {
        match self {
            FibOp::Add(r) | FibOp::Replace(r) => r.prefix,
            FibOp::Delete { prefix, .. } => *prefix,
        }
    }
}

/// Routes keyed by (prefix, metric): the kernel keeps one route per pair.
pub type RouteSet = BTreeMap<(IpNet, u32), Route>;

/// Builds a [`RouteSet`].
pub fn route_set(routes: impl IntoIterator<Item = Route>) -> RouteSet {
    routes
        .into_iter()
        .map(|r| ((r.prefix, r.metric), r))
        .collect()
}

/// The operations that turn `installed` (our routes as the kernel has them) into
/// `desired`: replaces for new or changed routes, deletes for ours that are no longer
/// wanted. Deletes come first, so a prefix that moves between metrics never has two.
pub fn diff(desired: &RouteSet, installed: &RouteSet) -> Vec<FibOp> {
    let mut ops = Vec::new();
    for (key, _) in installed.iter().filter(|(k, _)| !desired.contains_key(k)) {
        ops.push(FibOp::Delete {
            prefix: key.0,
            metric: key.1,
        });
    }
    for (key, want) in desired {
        match installed.get(key) {
            Some(have) if want.satisfied_by(have) => {}
            Some(_) => ops.push(FibOp::Replace(want.clone())),
            None => ops.push(FibOp::Add(want.clone())),
        }
    }
    ops
}

/// A FIB the reconciler can read back and change.
pub trait FibDriver {
    type Error: std::error::Error;

    /// Our routes as installed (protocol [`RTPROT_CONTIV`] only).
    fn installed(&mut self) -> Result<RouteSet, Self::Error>;

    /// Applies the operations; returns the ones that failed with their error, the rest
    /// took effect.
    fn apply(&mut self, ops: &[FibOp]) -> Result<Vec<(FibOp, String)>, Self::Error>;

    /// Whether the host has an IPv4 default route of its own (not ours) in the main table:
    /// then a default learned over BGP is not installed (see `calc`).
    fn host_default(&mut self) -> Result<bool, Self::Error>;

    /// The host's own prefixes: its addresses and the main table's routes that are not
    /// ours, defaults apart (see `calc::import`: no learned route overlapping one is
    /// installed).
    fn own_prefixes(&mut self) -> Result<BTreeSet<IpNet>, Self::Error>;

    /// Reads back, diffs against `desired` and applies the difference. Returns how many
    /// operations were applied and which failed.
    fn sync(&mut self, desired: &RouteSet) -> Result<SyncReport, Self::Error> {
        let installed = self.installed()?;
        let ops = diff(desired, &installed);
        let failed = self.apply(&ops)?;
        Ok(SyncReport {
            applied: ops.len() - failed.len(),
            failed,
        })
    }
}

/// While the speaker has not converged after a restart (not every neighbor has sent
/// End-of-RIB yet), routes learned before the restart stay: `desired` plus every
/// installed route through a gateway that `desired` does not have. Device routes (local
/// endpoints) are not held: the saved endpoints are the truth for them.
pub fn hold_learned(desired: &RouteSet, installed: &RouteSet) -> RouteSet {
    let mut out = desired.clone();
    for (k, r) in installed {
        if !out.keys().any(|(p, _)| *p == k.0) && r.nexthops.iter().all(|n| n.gateway.is_some()) {
            out.insert(*k, r.clone());
        }
    }
    out
}

/// The outcome of [`FibDriver::sync`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub applied: usize,
    pub failed: Vec<(FibOp, String)>,
}

/// An in-memory FIB with foreign routes beside ours, for tests of the layers above.
#[derive(Debug, Clone, Default)]
pub struct MemoryFib {
    pub ours: RouteSet,
    /// Routes of other protocols; never touched.
    pub foreign: RouteSet,
    /// Gateways that make a route fail (simulating an unreachable next hop).
    pub unreachable: BTreeSet<IpAddr>,
}

/// Errors of [`MemoryFib`] (it has none, but the trait wants a type).
#[derive(Debug, thiserror::Error)]
#[error("memory FIB error")]
pub struct MemoryFibError;

impl FibDriver for MemoryFib {
    type Error = MemoryFibError;

    fn host_default(&mut self) -> Result<bool, MemoryFibError> {
        Ok(self
            .foreign
            .keys()
            .any(|(p, _)| p.prefix_len() == 0 && p.addr().is_ipv4()))
    }

    fn own_prefixes(&mut self) -> Result<BTreeSet<IpNet>, MemoryFibError> {
        Ok(self
            .foreign
            .keys()
            .map(|(p, _)| *p)
            .filter(|p| p.prefix_len() > 0)
            .collect())
    }

    fn installed(&mut self) -> Result<RouteSet, MemoryFibError> {
        Ok(self.ours.clone())
    }

    fn apply(&mut self, ops: &[FibOp]) -> Result<Vec<(FibOp, String)>, MemoryFibError> {
        let mut failed = Vec::new();
        for op in ops {
            match op {
                FibOp::Add(r) if self.foreign.contains_key(&(r.prefix, r.metric)) => {
                    failed.push((op.clone(), "File exists (os error 17)".to_string()));
                }
                FibOp::Add(r) | FibOp::Replace(r) => {
                    if r.nexthops
                        .iter()
                        .any(|n| n.gateway.is_some_and(|g| self.unreachable.contains(&g)))
                    {
                        failed.push((op.clone(), "Network is unreachable".to_string()));
                    } else {
                        self.ours.insert((r.prefix, r.metric), r.clone());
                    }
                }
                FibOp::Delete { prefix, metric } => {
                    self.ours.remove(&(*prefix, *metric));
                }
            }
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn learned_routes_are_held_until_convergence() {
        let installed = route_set([
            Route::new(net("10.1.0.0/24"), [ip("192.0.2.1")]),
            Route::new(net("10.2.0.0/24"), [ip("192.0.2.1"), ip("192.0.2.2")]),
            Route::dev(net("20.1.1.9/32"), 7),
        ]);
        let desired = route_set([
            Route::new(net("10.2.0.0/24"), [ip("192.0.2.2")]),
            Route::dev(net("20.1.1.1/32"), 8),
        ]);
        let held = hold_learned(&desired, &installed);
        // Relearned routes take their new form, not yet relearned ones stay, a local
        // endpoint that is gone does not.
        assert_eq!(
            held,
            route_set([
                Route::new(net("10.1.0.0/24"), [ip("192.0.2.1")]),
                Route::new(net("10.2.0.0/24"), [ip("192.0.2.2")]),
                Route::dev(net("20.1.1.1/32"), 8),
            ])
        );
        assert!(diff(&held, &installed).iter().all(|op| match op {
            FibOp::Delete { prefix, .. } => *prefix == net("20.1.1.9/32"),
            FibOp::Add(_) | FibOp::Replace(_) => true,
        }));
    }

    #[test]
    fn diff_installs_changes_and_sweeps() {
        let installed = route_set([
            Route::new(net("10.1.0.0/24"), [ip("192.0.2.1")]),
            Route::new(net("10.2.0.0/24"), [ip("192.0.2.1")]),
            Route::new(net("10.3.0.0/24"), [ip("192.0.2.1"), ip("192.0.2.2")]),
        ]);
        let desired = route_set([
            // unchanged
            Route::new(net("10.1.0.0/24"), [ip("192.0.2.1")]),
            // a second path appears: ECMP
            Route::new(net("10.2.0.0/24"), [ip("192.0.2.2"), ip("192.0.2.1")]),
            // new
            Route::new(net("10.4.0.1/32"), [ip("192.0.2.2")]),
        ]);
        let ops = diff(&desired, &installed);
        assert_eq!(
            ops,
            vec![
                FibOp::Delete {
                    prefix: net("10.3.0.0/24"),
                    metric: DEFAULT_METRIC
                },
                FibOp::Replace(Route::new(
                    net("10.2.0.0/24"),
                    [ip("192.0.2.1"), ip("192.0.2.2")]
                )),
                FibOp::Add(Route::new(net("10.4.0.1/32"), [ip("192.0.2.2")])),
            ]
        );
        assert!(
            diff(&desired, &desired).is_empty(),
            "nothing to do when in sync"
        );
    }

    #[test]
    fn interface_counts_only_when_asked_for() {
        let mut want = Route::new(net("10.0.0.0/8"), [ip("192.0.2.1")]);
        let mut have = want.clone();
        have.nexthops = [NextHop {
            gateway: Some(ip("192.0.2.1")),
            ifindex: Some(3),
        }]
        .into();
        assert!(want.satisfied_by(&have));
        want.nexthops = [NextHop {
            gateway: Some(ip("192.0.2.1")),
            ifindex: Some(4),
        }]
        .into();
        assert!(!want.satisfied_by(&have));
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(
            Route::new(net("10.1.2.3/24"), [ip("192.0.2.1")]).prefix,
            net("10.1.2.0/24")
        );
    }

    #[test]
    fn memory_fib_keeps_foreign_routes_and_reports_failures() {
        let mut fib = MemoryFib {
            foreign: route_set([Route::new(net("10.9.0.0/16"), [ip("192.0.2.9")])]),
            ..MemoryFib::default()
        };
        fib.unreachable.insert(ip("198.51.100.1"));
        let desired = route_set([
            Route::new(net("10.1.0.0/24"), [ip("192.0.2.1")]),
            Route::new(net("10.2.0.0/24"), [ip("198.51.100.1")]),
        ]);
        let r = fib.sync(&desired).unwrap();
        assert_eq!(r.applied, 1);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0.prefix(), net("10.2.0.0/24"));
        let r = fib.sync(&RouteSet::new()).unwrap();
        assert_eq!(r.applied, 1);
        assert!(fib.ours.is_empty());
        assert_eq!(fib.foreign.len(), 1, "foreign routes are never touched");
    }
}
