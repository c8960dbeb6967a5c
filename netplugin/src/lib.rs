//! netplugin: the host agent. It follows intent from netmaster, plumbs endpoints (CNI
//! plugin and Docker CNM remote driver), runs the BGP speaker towards the top-of-rack
//! routers, programs the kernel in routing mode (routes with ECMP, proxy ARP), answers
//! DNS for service discovery and exports Prometheus metrics.
//!
//! The reconciler is shaped calc → managers → drivers:
//! - [`calc`]: the pure calculation (intent, local endpoints, learned routes, time in;
//!   changes of the desired FIB and advertisements out);
//! - [`managers`]: desired state and dirty marks, programmed through the drivers once per
//!   pass;
//! - drivers: [`fib`] (routes marked with our protocol number; netlink and in-memory),
//!   [`links`] (our interfaces; netlink and in-memory), the BGP speaker
//!   ([`agent::bgp`]).
//!
//! Around them: [`endpoint`] (routing-mode plumbing: veth pair, container address,
//! gateway neighbour, proxy ARP), [`nl`] (the batched rtnetlink connection), [`routing`]
//! (pure routing helpers), [`intent`] (the mirror of netmaster's feed), [`cni`] and
//! [`docker`] (the front ends), [`dns`] (service discovery), [`agent`] (the daemon).

pub mod agent;
pub mod calc;
pub mod cni;
pub mod dns;
pub mod docker;
pub mod endpoint;
pub mod fib;
pub mod intent;
pub mod links;
pub mod managers;
pub mod nl;
pub mod policy;
pub mod routing;
