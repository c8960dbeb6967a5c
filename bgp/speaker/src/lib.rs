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
//! Not here yet: the driver that runs the `bgp` core over these sockets, the management
//! API and the standalone speaker binary.

pub mod config;
pub mod transport;
