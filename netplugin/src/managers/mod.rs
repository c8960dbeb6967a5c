//! The managers of netplugin's reconciler (calc → **managers** → drivers). A manager
//! takes the calc's outputs cheaply — it only records the desired state and marks what is
//! dirty, no kernel I/O — and once per pass programs what is dirty through its driver, in
//! one batch. What failed stays dirty and is tried again on the next pass; one failed
//! resource never holds back the others.
//!
//! - [`FibManager`] keeps the desired routes and its view of what the kernel has. A pass
//!   diffs only the dirty prefixes against that view; a resync (at start, periodically,
//!   after an error, when the graceful-restart hold ends) reads the kernel's routes of our
//!   protocol back and diffs everything, so drift is repaired (mark and sweep).
//! - [`LinkManager`] knows our interfaces' indexes: a new endpoint's veth is looked up
//!   by name (one request), the resync dumps them all and sweeps interfaces no endpoint
//!   owned at this resync and the one before (never a plumb in progress).
//! - [`PolicyManager`] keeps the compiled nftables ruleset and the one it last
//!   committed: a change commits the difference, a resync writes the whole ruleset over
//!   what the kernel has, each as one transaction.

mod fib;
mod links;
mod policy;

pub use fib::{FibManager, FibPass};
pub use links::{LinkManager, LinkPass};
pub use policy::{PolicyManager, PolicyPass};
