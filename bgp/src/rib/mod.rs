//! The routing information base: interned path attributes, Adj-RIBs-In, the Loc-RIB
//! with best path and ECMP, and Adj-RIBs-Out with UPDATE packing. Pure: no I/O, no
//! clock.
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
//! 4. For each peer keep an [`AdjRibOut`]; for each change apply export policy to the
//!    best path's attributes, intern the result and queue it ([`AdjRibOut::announce`],
//!    [`AdjRibOut::withdraw`]); then [`AdjRibOut::flush_packed`] gives the UPDATEs,
//!    [`end_of_rib`] the End-of-RIB markers after the initial table.
//!
//! Limits: only the best path is advertised (no ADD-PATH send of several paths per
//! prefix, although received path ids are kept); selection follows [`select`]
//! (always-compare-med, multipath-relax, no IGP cost); IPv4/IPv6 unicast only.

mod interner;
mod out;
pub mod select;
mod table;

pub use interner::AttrInterner;
pub use out::{AdjRibOut, OutChange, end_of_rib, pack};
pub use select::{PeerId, PeerInfo};
pub use table::{Change, Path, Rib, next_hops};

#[cfg(test)]
mod tests;
