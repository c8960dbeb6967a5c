//! netplugin: the host agent.
//!
//! It will watch intent from netmaster, plumb endpoints (CNI plugin and Docker CNM remote
//! driver), run the BGP speaker towards the top-of-rack routers, program the kernel in
//! routing mode (routes with ECMP, proxy ARP, nftables policy) and Open vSwitch in bridge
//! mode, answer DNS for service discovery and export Prometheus metrics.
//!
//! Nothing is implemented yet: see the issue "netplugin routing mode end to end".
