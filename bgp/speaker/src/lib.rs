//! The tokio side of the contiv-rs BGP speaker. The protocol itself (codec, FSM, RIB,
//! policy) lives in the sans-IO `bgp` crate; this crate owns what touches the operating
//! system.
//!
//! What exists today:
//! - [`transport`]: sockets for BGP sessions: outgoing [`transport::connect`] and the
//!   incoming [`transport::Listener`], with TCP MD5 keys per peer or per prefix, GTSM,
//!   outgoing TTL, DSCP and source address and port.
//! - [`config`]: the speaker's TOML configuration, its validation, and
//!   [`config::diff`], which tells which neighbors a reload adds, removes or changes and
//!   whether each change needs a session reset.
//!
//! - [`driver`]: the speaker — one task per neighbor drives the pure FSM over a socket,
//!   one table task holds the Adj-RIBs-In, selects best paths and ECMP groups
//!   ([`select`]), publishes learned routes and exports only what the host originates.
//!
//! Not here yet: graceful restart, ADD-PATH and IPv6 origination in the driver, the
//! full RIB and policy of the `bgp` crate (the driver's export is the fixed host
//! guardrail), a management API over the network and the standalone speaker binary.

pub mod config;
pub mod driver;
pub mod select;
pub mod transport;
