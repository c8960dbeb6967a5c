//! The policy manager: the compiled ruleset in, one nftables transaction out.
//!
//! It keeps the ruleset it last committed. A pass with a new desired ruleset commits
//! the difference ([`Ruleset::changes`]); a resync — at start, every resync period,
//! after any failure — reads our tables back and, unless they are exactly as the last
//! whole write left them (the fingerprint taken right after it: flags, types, elements,
//! rules), writes the whole ruleset over them ([`Ruleset::overwrite`]: tables deleted
//! and created again, counters carried over): drift is repaired and whatever intent no
//! longer has is swept, in one transaction, so no packet ever meets a half-written
//! ruleset. After changes the next resync writes whole once. A pass with nothing new
//! costs nothing. Until the first commit succeeds the kernel keeps what it has (a restart
//! neither opens nor closes anything).

use crate::policy::driver::{NftDriver, NftError};
use crate::policy::nft::Ruleset;

/// The outcome of one [`PolicyManager::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyPass {
    /// Whether a transaction was committed.
    pub committed: bool,
    /// It was a whole rewrite (a resync).
    pub resynced: bool,
    /// Operations in the transaction.
    pub ops: usize,
}

#[derive(Debug)]
pub struct PolicyManager<D> {
    driver: D,
    desired: Option<Ruleset>,
    /// What the kernel has, as we last committed it; `None`: unknown (read back next).
    installed: Option<Ruleset>,
    resync: bool,
    /// The desired ruleset changed since the last commit.
    dirty: bool,
    /// Our tables as read right after the last whole write (`None` after a change).
    fingerprint: Option<String>,
}

impl<D: NftDriver> PolicyManager<D> {
    pub fn new(driver: D) -> PolicyManager<D> {
        PolicyManager {
            driver,
            desired: None,
            installed: None,
            resync: true,
            dirty: false,
            fingerprint: None,
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The ruleset wanted now. Cheap: no kernel I/O.
    pub fn set_desired(&mut self, rs: Ruleset) {
        if self.desired.as_ref() != Some(&rs) {
            self.desired = Some(rs);
            self.dirty = true;
        }
    }

    pub fn desired(&self) -> Option<&Ruleset> {
        self.desired.as_ref()
    }

    /// The next pass writes the whole ruleset.
    pub fn request_resync(&mut self) {
        self.resync = true;
    }

    /// Whether the kernel has the desired ruleset as far as we know.
    pub fn in_sync(&self) -> bool {
        !self.resync && self.desired.is_some() && self.desired == self.installed
    }

    /// Commits what is needed. Nothing happens before a desired ruleset is known.
    pub fn apply(&mut self) -> Result<PolicyPass, NftError> {
        let Some(want) = &self.desired else {
            return Ok(PolicyPass::default());
        };
        let resync = self.resync || self.installed.is_none();
        if !resync && !self.dirty {
            return Ok(PolicyPass::default());
        }
        let ops = if resync {
            let snap = match self.driver.snapshot() {
                Ok(p) => p,
                Err(e) => {
                    self.installed = None;
                    return Err(e);
                }
            };
            if self.installed.as_ref() == Some(want)
                && self.fingerprint.as_ref() == Some(&snap.fingerprint)
            {
                // Read back as we left it.
                self.resync = false;
                self.dirty = false;
                return Ok(PolicyPass::default());
            }
            want.overwrite(&snap)
        } else {
            let Some(have) = &self.installed else {
                unreachable!("checked above")
            };
            want.changes(have)
        };
        if ops.is_empty() {
            self.dirty = false;
            return Ok(PolicyPass::default());
        }
        match self.driver.commit(&ops) {
            Ok(()) => {
                self.installed = Some(want.clone());
                self.resync = false;
                self.dirty = false;
                // What the next resync compares with: taken after a whole write only
                // (a change leaves it unknown, and the next resync writes whole once).
                self.fingerprint = if resync {
                    self.driver.snapshot().ok().map(|s| s.fingerprint)
                } else {
                    None
                };
                Ok(PolicyPass {
                    committed: true,
                    resynced: resync,
                    ops: ops.len(),
                })
            }
            Err(e) => {
                // The transaction did not happen: the kernel still has what it had, but
                // read it back before the next try anyway.
                self.installed = None;
                self.resync = true;
                self.fingerprint = None;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::driver::MemoryNft;
    use crate::policy::{LocalEndpoint, PolicyView, compile};

    fn ruleset(n: u8) -> Ruleset {
        let view = PolicyView {
            networks: [(
                ("t".to_string(), "n".to_string()),
                "10.1.0.0/16".parse().unwrap(),
            )]
            .into(),
            ..PolicyView::default()
        };
        let eps: BTreeMap<String, LocalEndpoint> = (1..=n)
            .map(|i| {
                (
                    format!("e{i}"),
                    LocalEndpoint {
                        ifname: format!("cv{i}"),
                        address: format!("10.1.0.{i}").parse().unwrap(),
                        mac: format!("02:02:0a:01:00:{i:02x}"),
                        tenant: "t".into(),
                        group: None,
                    },
                )
            })
            .collect();
        compile(&view, &eps).ruleset
    }

    #[test]
    fn commits_whole_then_changes_then_nothing() {
        let mut m = PolicyManager::new(MemoryNft::default());
        assert_eq!(
            m.apply().unwrap(),
            PolicyPass::default(),
            "nothing before intent"
        );
        m.set_desired(ruleset(1));
        let p = m.apply().unwrap();
        assert!(p.committed && p.resynced);
        m.set_desired(ruleset(2));
        let p = m.apply().unwrap();
        assert!(p.committed && !p.resynced);
        assert_eq!(m.driver().ruleset, ruleset(2));
        let commits = m.driver().commits;
        m.set_desired(ruleset(2));
        assert!(!m.apply().unwrap().committed);
        m.request_resync();
        assert!(
            m.apply().unwrap().resynced,
            "after a change, the resync writes whole once"
        );
        m.request_resync();
        assert!(
            !m.apply().unwrap().committed,
            "read back as left: nothing to write"
        );
        assert_eq!(m.driver().commits, commits + 1);
        assert!(m.in_sync());
    }

    #[test]
    fn drift_and_failures_lead_to_a_whole_rewrite() {
        let mut m = PolicyManager::new(MemoryNft::default());
        m.set_desired(ruleset(2));
        m.apply().unwrap();
        // Someone removes an element of ours.
        let set = m
            .driver_mut()
            .ruleset
            .tables
            .get_mut("inet")
            .unwrap()
            .sets
            .get_mut("veths")
            .unwrap();
        let first = set.elements.iter().next().unwrap().clone();
        set.elements.remove(&first);
        m.request_resync();
        assert!(m.apply().unwrap().resynced);
        assert_eq!(m.driver().ruleset, ruleset(2));
        // A refused transaction leaves the kernel as it was and is retried whole.
        m.driver_mut().fail = Some("no".into());
        m.set_desired(ruleset(3));
        assert!(m.apply().is_err());
        assert_eq!(m.driver().ruleset, ruleset(2));
        assert!(!m.in_sync());
        m.driver_mut().fail = None;
        let p = m.apply().unwrap();
        assert!(p.committed && p.resynced);
        assert_eq!(m.driver().ruleset, ruleset(3));
    }
}
