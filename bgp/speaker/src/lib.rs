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
//!   whether each change needs a session reset ([`config::NeighborField::needs_reset`],
//!   the one answer the daemon uses too).
//!
//! - [`driver`]: the speaker — one task per neighbor drives the pure FSM over a socket
//!   (with RFC 4271 collision handling), one table task holds the `bgp` crate's RIB
//!   (Adj-RIBs-In, Loc-RIB with best path and ECMP, ADD-PATH paths), runs import and
//!   export policy, graceful restart in both roles, and fills each session from the
//!   Loc-RIB under flow control; learned routes are published for the FIB. Ranges of
//!   dynamic neighbors accept sessions from any address inside them.
//! - [`bfd`]: the BFD driver (RFC 5880/5881 single hop): one task, UDP sockets with
//!   TTL 255 checks, sessions keyed by (peer, local) address, state published on a watch
//!   channel and a broadcast of changes.
//! - [`daemon`]: `contiv-bgpd` as a library: loading its configuration, what the driver
//!   is given for it and the plan of a reload ([`daemon::plan`], pure), and the running
//!   [`daemon::Daemon`] that applies reloads and logs.
//! - `contiv-bgpd` (src/bin): the standalone speaker with a TOML configuration; the
//!   binary keeps arguments, signals and the loop.
//!
//! Not here: a management API over the network (contiv-bgpd reports on SIGUSR1; netplugin exposes its speaker through
//! netmaster and metrics).

pub mod bfd;
pub mod config;
pub mod daemon;
pub mod driver;
pub mod transport;
