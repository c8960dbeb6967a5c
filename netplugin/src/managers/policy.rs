//! The policy manager: the compiled ruleset in, one nftables transaction out.
//!
//! It keeps the ruleset it last committed. A pass with a new desired ruleset commits
//! the difference ([`Ruleset::changes`]); a resync — at start, every resync period,
//! after any failure — reads back which objects our tables hold and writes the whole
//! ruleset over them ([`Ruleset::overwrite`]): drift is repaired and whatever intent no
//! longer has is swept, in one transaction, so no packet ever meets a half-written
//! ruleset. Until the first commit succeeds the kernel keeps what it has (a restart
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
}

impl<D: NftDriver> PolicyManager<D> {
    pub fn new(driver: D) -> PolicyManager<D> {
        PolicyManager {
            driver,
            desired: None,
            installed: None,
            resync: true,
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
        self.desired = Some(rs);
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
        let ops = if resync {
            let present = match self.driver.present() {
                Ok(p) => p,
                Err(e) => {
                    self.installed = None;
                    return Err(e);
                }
            };
            want.overwrite(&present)
        } else {
            let Some(have) = &self.installed else {
                unreachable!("checked above")
            };
            want.changes(have)
        };
        if ops.is_empty() {
            return Ok(PolicyPass::default());
        }
        match self.driver.commit(&ops) {
            Ok(()) => {
                self.installed = Some(want.clone());
                self.resync = false;
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
                Err(e)
            }
        }
    }
}
