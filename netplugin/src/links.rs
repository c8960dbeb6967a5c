//! The host's endpoint interfaces as a driver: find ours (by the `cv` name prefix,
//! [`crate::endpoint::is_ours`]), look one up by name, remove one, and turn on IPv4
//! forwarding. [`NetlinkLinks`] does it in the host's namespace; [`MemoryLinks`] is the
//! in-memory fake for tests of the layers above. Plumbing an endpoint stays in
//! [`crate::endpoint`] (the front ends call it); this driver is what the reconciler needs.

use std::collections::BTreeMap;

use crate::endpoint::{self, HostNs};
use crate::nl::{Conn, NlError};

/// The interfaces the reconciler reads and sweeps.
pub trait LinkDriver {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Our interfaces (name → index), from one dump.
    fn ours(&mut self) -> Result<BTreeMap<String, u32>, Self::Error>;

    /// The index of one interface, `None` when it does not exist.
    fn index_of(&mut self, name: &str) -> Result<Option<u32>, Self::Error>;

    /// Removes one of our interfaces (already gone is not an error).
    fn remove(&mut self, name: &str) -> Result<(), Self::Error>;

    /// Turns on IPv4 forwarding (routing mode routes every container packet).
    fn enable_forwarding(&mut self) -> Result<(), Self::Error>;
}

/// The kernel's interfaces in the host namespace, over one netlink connection kept
/// open (opening one in another namespace costs a thread).
#[derive(Debug, Default)]
pub struct NetlinkLinks {
    pub host: HostNs,
    conn: Option<Conn>,
}

impl NetlinkLinks {
    pub fn new(host: HostNs) -> NetlinkLinks {
        NetlinkLinks { host, conn: None }
    }

    /// Runs `f` on the connection; a failed socket is dropped and opened again next time.
    fn with<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T, NlError>) -> Result<T, NlError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.host.conn()?),
        };
        let res = f(conn);
        if matches!(res, Err(NlError::Socket(_))) {
            self.conn = None;
        }
        res
    }
}

impl LinkDriver for NetlinkLinks {
    type Error = NlError;

    fn ours(&mut self) -> Result<BTreeMap<String, u32>, NlError> {
        self.with(endpoint::our_links_on)
    }

    fn index_of(&mut self, name: &str) -> Result<Option<u32>, NlError> {
        self.with(|c| endpoint::ifindex_on(c, name))
    }

    fn remove(&mut self, name: &str) -> Result<(), NlError> {
        self.with(|c| endpoint::remove_link_on(c, name))
    }

    fn enable_forwarding(&mut self) -> Result<(), NlError> {
        endpoint::enable_forwarding(&self.host)
    }
}

/// An in-memory host: interfaces by name, a forwarding switch, and call counters so a
/// test can check how much work a change cost.
#[derive(Debug, Clone, Default)]
pub struct MemoryLinks {
    pub links: BTreeMap<String, u32>,
    pub forwarding: bool,
    pub dumps: usize,
    pub lookups: usize,
}

impl LinkDriver for MemoryLinks {
    type Error = std::convert::Infallible;

    fn ours(&mut self) -> Result<BTreeMap<String, u32>, Self::Error> {
        self.dumps += 1;
        Ok(self
            .links
            .iter()
            .filter(|(n, _)| endpoint::is_ours(n))
            .map(|(n, i)| (n.clone(), *i))
            .collect())
    }

    fn index_of(&mut self, name: &str) -> Result<Option<u32>, Self::Error> {
        self.lookups += 1;
        Ok(self.links.get(name).copied())
    }

    fn remove(&mut self, name: &str) -> Result<(), Self::Error> {
        self.links.remove(name);
        Ok(())
    }

    fn enable_forwarding(&mut self) -> Result<(), Self::Error> {
        self.forwarding = true;
        Ok(())
    }
}
