//! contiv-lab: deploys containerlab topology files onto network namespaces.
//!
//! A `*.clab.yml` file (containerlab's own schema) becomes, on this one machine and
//! without Docker:
//! - one network namespace per node, named as containerlab names containers
//!   (`clab-<lab>-<node>`), with `lo` up;
//! - one veth pair per link, with the interface names the file gives;
//! - real routing daemons in the namespaces of router nodes (FRR, BIRD 2, GoBGP, ExaBGP),
//!   each instance with its own config, pid, socket and log files under the lab directory;
//! - the node's `exec` commands, run inside its namespace once links and daemons are up.
//!
//! The crate is split the usual way: [`topology`] parses and validates the file into a
//! resolved model and [`plan`] turns that into the concrete namespaces, links and daemon
//! command lines; both are pure and tested without root. [`lab`] is the driver that
//! executes a plan, records every namespace and pid in a state file *before* relying on
//! it, and tears everything down again ([`lab::destroy`]), also after a crashed deploy.
//! [`sessions`] reads each daemon's own view of its BGP sessions.
//!
//! Invariants:
//! - nothing is ever created in the machine's own network namespace: links are created
//!   directly inside the lab namespaces and all addresses live there;
//! - every process the lab starts is recorded by pid (with its start time, so a recycled
//!   pid is never signalled) and killed by `destroy`, which also kills whatever else still
//!   runs inside the lab's own namespaces;
//! - a failed deploy leaves nothing behind: it is rolled back before the error is returned.

pub mod daemon;
pub mod error;
pub mod lab;
pub mod plan;
pub mod proc;
pub mod sessions;
pub mod state;
pub mod testing;
pub mod topology;

pub use error::{Error, Result};
pub use lab::Lab;
pub use topology::Topology;
