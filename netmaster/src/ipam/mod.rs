//! IPAM: the pure address allocator of netmaster.
//!
//! One [`Pool`] per network subnet (IPv4 or IPv6) hands out endpoint addresses and service
//! VIPs, lowest free address first, and carves endpoint-group ip pools out of the network.
//! Nothing here does I/O: netmaster loads a pool from its [`PoolState`], changes it, and
//! writes the new state in the same store transaction as the object it belongs to.
//!
//! ```
//! use netmaster::ipam::{Pool, Scope};
//!
//! let mut pool = Pool::new("blue", "10.1.1.0/24".parse()?, Some("10.1.1.254".parse()?))?;
//! pool.add_epg_pool("web", "10.1.1.100-10.1.1.109".parse()?)?;
//! assert_eq!(pool.allocate(Scope::Network)?.to_string(), "10.1.1.1");
//! assert_eq!(pool.allocate(Scope::Epg("web"))?.to_string(), "10.1.1.100");
//! pool.allocate_preferred(Scope::Network, "10.1.1.7".parse()?)?;
//! assert_eq!(pool.allocated_addresses(Scope::Network)?, "10.1.1.1, 10.1.1.7");
//! let restored = netmaster::ipam::Pool::from_bytes(&pool.to_bytes())?;
//! assert!(restored.is_allocated("10.1.1.100".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod pool;
mod range;
mod space;
mod state;

pub use error::{IpamError, ReservedKind};
pub use pool::{Counts, Pool, Scope};
pub use range::{AddrRange, SubnetSpec};
pub use state::{Allocations, EpgState, PoolState, STATE_VERSION};

pub(crate) use range::format_runs;
