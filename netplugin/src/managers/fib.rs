//! The FIB manager: desired routes in, the smallest set of kernel changes out.

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::fib::{FibDriver, FibOp, Route, RouteSet, diff, hold_learned};

/// The outcome of one [`FibManager::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FibPass {
    /// The kernel's routes were read back (a resync) this pass.
    pub resynced: bool,
    /// Changes that took effect.
    pub applied: usize,
    /// Changes that failed, with the kernel's error; they stay dirty.
    pub failed: Vec<(FibOp, String)>,
}

/// Desired routes, the kernel's routes as last seen, and what is dirty.
#[derive(Debug)]
pub struct FibManager<D> {
    driver: D,
    desired: RouteSet,
    /// Our routes in the kernel as far as we know; `None` until read back (a resync).
    installed: Option<RouteSet>,
    dirty: BTreeSet<IpNet>,
    /// Routes learned before a restart are kept until the speaker converged.
    hold: bool,
}

impl<D: FibDriver> FibManager<D> {
    pub fn new(driver: D) -> FibManager<D> {
        FibManager {
            driver,
            desired: RouteSet::new(),
            installed: None,
            dirty: BTreeSet::new(),
            hold: false,
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The desired routes.
    pub fn desired(&self) -> &RouteSet {
        &self.desired
    }

    /// The calc's route for a prefix (`None`: no route of ours). Cheap: no kernel I/O.
    pub fn on_update(&mut self, prefix: IpNet, route: Option<Route>) {
        let stale: Vec<(IpNet, u32)> = self
            .desired
            .range((prefix, 0)..=(prefix, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.desired.remove(&k);
        }
        if let Some(r) = route {
            self.desired.insert((r.prefix, r.metric), r);
        }
        self.dirty.insert(prefix);
    }

    /// Holds (or stops holding) routes learned before a restart. Ending the hold reads the
    /// kernel back so that what was held and is no longer wanted goes.
    pub fn set_hold(&mut self, hold: bool) {
        if self.hold && !hold {
            self.installed = None;
        }
        self.hold = hold;
    }

    /// The next pass reads the kernel back and diffs every route.
    pub fn request_resync(&mut self) {
        self.installed = None;
    }

    /// Programs what is dirty (everything, on a resync).
    pub fn apply(&mut self) -> Result<FibPass, D::Error> {
        let mut pass = FibPass::default();
        let ops = match &self.installed {
            None => {
                let installed = self.driver.installed()?;
                let ops = if self.hold {
                    diff(&hold_learned(&self.desired, &installed), &installed)
                } else {
                    diff(&self.desired, &installed)
                };
                self.installed = Some(installed);
                self.dirty.clear();
                pass.resynced = true;
                ops
            }
            Some(installed) => {
                let mut ops = Vec::new();
                for p in std::mem::take(&mut self.dirty) {
                    self.ops_for(p, installed, &mut ops);
                }
                ops
            }
        };
        if ops.is_empty() {
            return Ok(pass);
        }
        let failed = self.driver.apply(&ops)?;
        // One operation per (prefix, metric) and kind in a batch.
        let key = |op: &FibOp| match op {
            FibOp::Add(r) | FibOp::Replace(r) => (r.prefix, r.metric, true),
            FibOp::Delete { prefix, metric } => (*prefix, *metric, false),
        };
        let failed_keys: BTreeSet<(IpNet, u32, bool)> =
            failed.iter().map(|(f, _)| key(f)).collect();
        let installed = self.installed.get_or_insert_with(RouteSet::new);
        for op in &ops {
            if failed_keys.contains(&key(op)) {
                self.dirty.insert(op.prefix());
                continue;
            }
            match op {
                FibOp::Add(r) | FibOp::Replace(r) => {
                    installed.insert((r.prefix, r.metric), r.clone());
                }
                FibOp::Delete { prefix, metric } => {
                    installed.remove(&(*prefix, *metric));
                }
            }
        }
        pass.applied = ops.len() - failed.len();
        pass.failed = failed;
        Ok(pass)
    }

    /// The changes one prefix needs: deletes of ours no longer wanted first, then
    /// replaces. While holding, a learned route of ours the calc no longer has for the
    /// prefix stays.
    fn ops_for(&self, p: IpNet, installed: &RouteSet, ops: &mut Vec<FibOp>) {
        let range = (p, 0)..=(p, u32::MAX);
        let wanted: Vec<&Route> = self.desired.range(range.clone()).map(|(_, r)| r).collect();
        for (key, have) in installed.range(range.clone()) {
            if self.desired.contains_key(key) {
                continue;
            }
            let held =
                self.hold && wanted.is_empty() && have.nexthops.iter().all(|n| n.gateway.is_some());
            if !held {
                ops.push(FibOp::Delete {
                    prefix: key.0,
                    metric: key.1,
                });
            }
        }
        for want in wanted {
            match installed.get(&(want.prefix, want.metric)) {
                Some(have) if want.satisfied_by(have) => {}
                Some(_) => ops.push(FibOp::Replace(want.clone())),
                // Never over a route of someone else's: added, not replaced.
                None => ops.push(FibOp::Add(want.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::fib::{MemoryFib, route_set};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// A MemoryFib that counts read-backs and applied operations.
    #[derive(Debug, Default)]
    struct Counting {
        fib: MemoryFib,
        reads: usize,
        ops: usize,
    }

    impl FibDriver for Counting {
        type Error = crate::fib::MemoryFibError;
        fn installed(&mut self) -> Result<RouteSet, Self::Error> {
            self.reads += 1;
            self.fib.installed()
        }
        fn apply(&mut self, ops: &[FibOp]) -> Result<Vec<(FibOp, String)>, Self::Error> {
            self.ops += ops.len();
            self.fib.apply(ops)
        }
        fn host_default(&mut self) -> Result<bool, Self::Error> {
            self.fib.host_default()
        }
        fn own_prefixes(
            &mut self,
        ) -> Result<std::collections::BTreeSet<ipnet::IpNet>, Self::Error> {
            self.fib.own_prefixes()
        }
    }

    #[test]
    fn a_change_touches_only_its_prefix_after_the_first_read_back() {
        let mut m = FibManager::new(Counting::default());
        for i in 1..=200u8 {
            let p = net(&format!("20.1.1.{i}/32"));
            m.on_update(p, Some(Route::dev(p, u32::from(i))));
        }
        let first = m.apply().unwrap();
        assert!(first.resynced);
        assert_eq!(first.applied, 200);
        assert_eq!(m.driver().reads, 1);

        let p = net("20.1.2.1/32");
        m.on_update(p, Some(Route::dev(p, 999)));
        let second = m.apply().unwrap();
        assert!(!second.resynced, "no read-back for one endpoint");
        assert_eq!(second.applied, 1);
        assert_eq!(m.driver().reads, 1);
        assert_eq!(m.driver().ops, 201);

        m.on_update(p, None);
        assert_eq!(m.apply().unwrap().applied, 1);
        assert!(!m.driver().fib.ours.contains_key(&(p, 20)));
        assert_eq!(
            m.apply().unwrap(),
            FibPass::default(),
            "nothing dirty, nothing done"
        );
    }

    #[test]
    fn a_resync_repairs_drift_and_keeps_foreign_routes() {
        let mut m = FibManager::new(Counting::default());
        let p = net("10.1.0.0/24");
        m.on_update(p, Some(Route::new(p, [ip("192.0.2.1")])));
        m.apply().unwrap();
        // Someone deletes our route and leaves a stale one of ours; a foreign route sits
        // beside them.
        let stale = net("10.9.0.0/24");
        let d = &mut m.driver;
        d.fib.ours.clear();
        d.fib
            .ours
            .insert((stale, 20), Route::new(stale, [ip("192.0.2.9")]));
        d.fib.foreign = route_set([Route::new(net("0.0.0.0/0"), [ip("192.0.2.254")])]);
        assert_eq!(m.apply().unwrap().applied, 0, "the view says all is well");
        m.request_resync();
        let pass = m.apply().unwrap();
        assert!(pass.resynced);
        assert_eq!(pass.applied, 2);
        assert_eq!(m.driver().fib.ours.len(), 1);
        assert!(m.driver().fib.ours.contains_key(&(p, 20)));
        assert_eq!(m.driver().fib.foreign.len(), 1, "foreign routes untouched");
    }

    #[test]
    fn failures_stay_dirty_and_are_retried() {
        let mut m = FibManager::new(Counting::default());
        m.driver.fib.unreachable.insert(ip("192.0.2.1"));
        let (a, b) = (net("10.1.0.0/24"), net("10.2.0.0/24"));
        m.on_update(a, Some(Route::new(a, [ip("192.0.2.1")])));
        m.on_update(b, Some(Route::new(b, [ip("192.0.2.2")])));
        let pass = m.apply().unwrap();
        assert_eq!(
            (pass.applied, pass.failed.len()),
            (1, 1),
            "one failure, one success"
        );
        m.driver.fib.unreachable.clear();
        let retry = m.apply().unwrap();
        assert!(!retry.resynced);
        assert_eq!(retry.applied, 1);
        assert_eq!(m.driver().fib.ours.len(), 2);
    }

    #[test]
    fn the_hold_keeps_learned_routes_until_it_ends() {
        let mut m = FibManager::new(Counting::default());
        let learned = net("10.1.0.0/24");
        let local = net("20.1.1.9/32");
        m.driver.fib.ours =
            route_set([Route::new(learned, [ip("192.0.2.1")]), Route::dev(local, 7)]);
        m.set_hold(true);
        let pass = m.apply().unwrap();
        assert_eq!(
            pass.applied, 1,
            "the stale device route goes, the learned one stays"
        );
        assert!(m.driver().fib.ours.contains_key(&(learned, 20)));
        // A learned route withdrawn during the hold stays too.
        m.on_update(learned, None);
        m.apply().unwrap();
        assert!(m.driver().fib.ours.contains_key(&(learned, 20)));
        m.set_hold(false);
        let end = m.apply().unwrap();
        assert!(end.resynced);
        assert!(m.driver().fib.ours.is_empty());
    }
}
