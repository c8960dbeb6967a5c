//! Our own BGP speaker library.
//!
//! This crate will own the BGP-4 wire codec (RFC 4271 and the extensions the fabric
//! needs), the session finite-state machine as a pure `process(input) -> outputs` core,
//! the Adj-RIB-In / Loc-RIB / Adj-RIB-Out with best-path selection and ECMP groups,
//! import/export policy and graceful restart. The core is sans-IO: it never touches
//! sockets, tokio or the clock; a thin driver owns those.
//!
//! Nothing is implemented yet: see the project's issue tracker ("bgp/: our own BGP
//! speaker").
