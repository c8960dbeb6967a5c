//! Our own BGP speaker library.
//!
//! The core is sans-IO: it never touches sockets, tokio or the clock; a thin driver
//! owns those. Modules:
//! - [`types`]: value types shared by everything (families, prefixes, path attributes).
//! - [`bfd`]: Bidirectional Forwarding Detection (RFC 5880/5881): Control packet codec and the
//!   session state machine, clock-free like the FSM.
//! - [`error_codes`]: the NOTIFICATION error codes and subcodes, one set for the FSM and
//!   the codec.
//! - [`fsm`]: the session finite-state machine of RFC 4271 §8, pure and clock-free.
//! - [`policy`]: import/export policy (matchers, actions, RFC 8212 default, max-prefix).
//! - [`wire`]: the wire codec (framing, OPEN/UPDATE/NOTIFICATION/KEEPALIVE/ROUTE-REFRESH,
//!   capabilities, RFC 7606 error handling, outbound UPDATE packing).
//! - [`rib`]: interned attributes, Adj-RIBs-In, Loc-RIB with best path and ECMP,
//!   graceful-restart stale marking, and export to each peer (per-peer bitmaps over
//!   prefix ids, export policy, UPDATE packing, flow control).
//!
//! The tokio driver lives in `bgp/speaker/`.

pub mod bfd;
pub mod error_codes;
pub mod fsm;
pub mod policy;
pub mod rib;
pub mod types;
pub mod wire;
