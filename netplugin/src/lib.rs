//! netplugin: the host agent.
//!
//! It will watch intent from netmaster, plumb endpoints (CNI plugin and Docker CNM remote
//! driver), run the BGP speaker towards the top-of-rack routers, program the kernel in
//! routing mode (routes with ECMP, proxy ARP, nftables policy) and Open vSwitch in bridge
//! mode, answer DNS for service discovery and export Prometheus metrics.
//!
//! What exists so far:
//! - [`fib`]: the kernel FIB reconciler core (desired vs installed routes, marked with
//!   our own route protocol number) and its batched rtnetlink driver;
//! - [`endpoint`]: routing-mode endpoint plumbing (veth pair, container address, gateway
//!   neighbour and default route, proxy ARP on the host side);
//! - [`nl`]: the batched rtnetlink connection the drivers share;
//! - [`dns`]: service discovery by DNS (name table and UDP/TCP server with forwarding).

pub mod agent;
pub mod cni;
pub mod dns;
pub mod docker;
pub mod endpoint;
pub mod fib;
pub mod intent;
pub mod nl;
pub mod routing;
