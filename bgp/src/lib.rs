//! Our own BGP speaker library.
//!
//! The core is sans-IO: it never touches sockets, tokio or the clock; a thin driver
//! owns those. Modules:
//! - [`types`]: value types shared by everything (families, prefixes, path attributes).
//! - [`fsm`]: the session finite-state machine of RFC 4271 §8, pure and clock-free.
//!
//! Still to come (see the issue "bgp/: our own BGP speaker"): the wire codec, the
//! session FSM, the RIB with best path and ECMP, policy, graceful restart and the
//! tokio driver.

pub mod fsm;
pub mod types;
