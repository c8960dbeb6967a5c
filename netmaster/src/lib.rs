//! netmaster: the intent server.
//!
//! It will hold Contiv's object model behind the REST API (`/api/v1/...`), IPAM and
//! VLAN/VXLAN id pools, the state store (embedded by default, etcd for clusters),
//! leader election between several netmasters, and the feed that streams intent to every
//! netplugin and collects their endpoints, BGP sessions and learned routes.
//!
//! What exists so far:
//! - [`election`]: leader election (always-leader locally, etcd's election API on a
//!   lease in a cluster);
//! - [`ipam`]: the pure address allocator;
//! - [`store`]: the state store with etcd's semantics, embedded (redb) or on etcd;
//! - [`tls`]: the API's TLS (certificate and key from PEM files);
//! - [`credentials`]: per-host credentials, kept as SHA-256 hashes in the store.

pub mod api;
pub mod credentials;
pub mod election;
pub mod http;
pub mod intent;
pub mod ipam;
pub mod kinds;
pub mod metrics;
pub mod server;
pub mod store;
pub mod tags;
pub mod tls;
