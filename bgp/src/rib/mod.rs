//! The routing information base: interned path attributes, Adj-RIBs-In, the Loc-RIB
//! with best path and ECMP, and export to each peer from the Loc-RIB with UPDATE
//! packing. Pure: no I/O, no clock.
//!
//! How a driver uses it:
//! 1. Keep one [`AttrInterner`] and one [`Rib`]; register each peer with
//!    [`Rib::add_peer`] (and the local origin with [`PeerInfo::local`]).
//! 2. For each received UPDATE, after import policy: intern the attributes once
//!    ([`AttrInterner::intern`]), call [`Rib::update`] with the announced
//!    `(Nlri, Arc<PathAttrs>)` pairs and the withdrawn NLRI, and act on the returned
//!    [`Change`]s (FIB: [`Change::next_hops`]; export: see 4).
//! 3. Session down: [`Rib::peer_down`]; graceful restart: [`Rib::mark_stale`] when the
//!    session drops, [`Rib::purge_stale`] on End-of-RIB or when the timer expires.
//!    Call [`AttrInterner::gc`] now and then.
//! 4. Keep one [`Export`] and, per established session, a [`PeerOut`]
//!    ([`PeerOut::mark_all`] for the initial table); give every change to
//!    [`Export::changed`]; [`Export::fill`] gives each peer its UPDATEs (and End-of-RIB)
//!    within its flow-control budget, [`PeerOut::written`] returns the budget, and
//!    [`Export::release`] drops prefixes no peer needs any more (the RIB keeps emptied
//!    prefixes with [`Rib::keep_empty`]).
//!
//! Limits: selection follows [`select`] (always-compare-med, multipath-relax, no IGP
//! cost); IPv4/IPv6 unicast only.

mod export;
mod interner;
mod pack;
pub mod select;
mod table;

pub use export::{Batch, Export, ExportProblem, FILL_STEP, Filled, IN_FLIGHT, PeerOut, PeerParams};
pub use interner::AttrInterner;
pub use pack::{OutChange, end_of_rib, pack};
pub use select::{PeerId, PeerInfo};
pub use table::{Change, Path, Rib, next_hops};

#[cfg(test)]
mod tests;
