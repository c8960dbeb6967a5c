//! The link manager: our interfaces' indexes, looked up one by one for new endpoints and
//! dumped on a resync; the sweep of interfaces no endpoint owns.

use std::collections::{BTreeMap, BTreeSet};

use crate::links::LinkDriver;

/// Our interfaces as last seen, and the unowned ones seen at the last resync.
#[derive(Debug)]
pub struct LinkManager<D> {
    driver: D,
    index: BTreeMap<String, u32>,
    /// Interfaces of ours that no endpoint owned at the last resync: removed if still
    /// unowned at the next one. An interface is plumbed before its endpoint is saved, so
    /// one seen unowned once may be a plumb in progress; one seen unowned a whole resync
    /// period later is not.
    /// Kept with their indexes: a name plumbed again in between is another interface.
    unowned: BTreeSet<(String, u32)>,
}

/// What a resync found wrong (each error names the interface).
#[derive(Debug, Default)]
pub struct LinkPass {
    pub errors: Vec<String>,
}

impl<D: LinkDriver> LinkManager<D> {
    pub fn new(driver: D) -> LinkManager<D> {
        LinkManager {
            driver,
            index: BTreeMap::new(),
            unowned: BTreeSet::new(),
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The index of one of our interfaces: from what the last dump or lookup saw, else
    /// one lookup (an endpoint just plumbed).
    pub fn index_of(&mut self, name: &str) -> Result<Option<u32>, D::Error> {
        if let Some(i) = self.index.get(name) {
            return Ok(Some(*i));
        }
        let found = self.driver.index_of(name)?;
        if let Some(i) = found {
            self.index.insert(name.to_string(), i);
        }
        Ok(found)
    }

    /// An endpoint's interface went (unplumbed): forget its index.
    pub fn forget(&mut self, name: &str) {
        self.index.remove(name);
    }

    /// Dumps our interfaces (indexes may have changed behind our back), turns on
    /// forwarding, and removes interfaces that none of `owned` names, at this resync and
    /// the one before (mark and sweep, safe against a plumb in progress). Returns the
    /// owned interfaces whose index changed or that vanished.
    pub fn resync(&mut self, owned: &BTreeSet<String>) -> (BTreeSet<String>, LinkPass) {
        let mut pass = LinkPass::default();
        if let Err(e) = self.driver.enable_forwarding() {
            pass.errors.push(format!("enabling IPv4 forwarding: {e}"));
        }
        let links = match self.driver.ours() {
            Ok(l) => l,
            Err(e) => {
                pass.errors.push(format!("listing interfaces: {e}"));
                return (BTreeSet::new(), pass);
            }
        };
        let unowned: BTreeSet<(String, u32)> = links
            .iter()
            .filter(|(n, _)| !owned.contains(*n))
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        for (name, _) in unowned.intersection(&self.unowned) {
            tracing::info!("sweeping interface {name}: no endpoint owns it");
            if let Err(e) = self.driver.remove(name) {
                pass.errors.push(format!("removing {name}: {e}"));
            }
        }
        self.unowned = unowned;
        let mut changed: BTreeSet<String> = owned
            .iter()
            .filter(|n| self.index.get(*n) != links.get(*n))
            .cloned()
            .collect();
        changed.extend(
            self.index
                .keys()
                .filter(|n| !links.contains_key(*n))
                .cloned(),
        );
        self.index = links
            .into_iter()
            .filter(|(n, _)| owned.contains(n))
            .collect();
        (changed, pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::MemoryLinks;

    #[test]
    fn lookups_are_cached_and_unowned_interfaces_go_at_the_second_resync() {
        let mut d = MemoryLinks::default();
        d.links.insert("cv00000000001".into(), 11);
        d.links.insert("cv00000000002".into(), 12);
        d.links.insert("eth0".into(), 2);
        let mut m = LinkManager::new(d);
        let owned: BTreeSet<String> = ["cv00000000001".to_string()].into();
        let (changed, pass) = m.resync(&owned);
        assert!(pass.errors.is_empty());
        assert_eq!(changed, owned, "a new index is a change");
        assert!(m.driver().forwarding);
        assert!(
            m.driver().links.contains_key("cv00000000002"),
            "unowned once: maybe a plumb in progress"
        );
        m.resync(&owned);
        assert!(!m.driver().links.contains_key("cv00000000002"), "swept");
        assert!(m.driver().links.contains_key("eth0"), "not ours: untouched");

        assert_eq!(m.index_of("cv00000000001").unwrap(), Some(11));
        assert_eq!(m.driver().lookups, 0, "known from the dump");
        m.driver.links.insert("cv00000000003".into(), 13);
        assert_eq!(m.index_of("cv00000000003").unwrap(), Some(13));
        assert_eq!(m.index_of("cv00000000003").unwrap(), Some(13));
        assert_eq!(m.driver().lookups, 1, "one lookup, then cached");

        // An interface plumbed before its endpoint is saved survives the resync it is
        // first seen at.
        m.driver.links.insert("cv00000000004".into(), 14);
        let (changed, _) = m.resync(&owned);
        assert!(changed.is_empty());
        assert!(m.driver().links.contains_key("cv00000000004"));
        m.index_of("cv00000000003").unwrap();
        assert_eq!(m.driver().lookups, 2, "not owned at the resync: forgotten");
        // An owned interface that vanished is a change.
        m.driver.links.remove("cv00000000001");
        let (changed, _) = m.resync(&owned);
        assert_eq!(changed, owned);
    }
}
