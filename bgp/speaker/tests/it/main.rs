//! The crate's integration tests, one binary (a module per area): one link instead of
//! one per file.

mod bfd_coupling;
mod bfd_ingress_netns;
mod collision;
mod common;
mod dynamic;
mod gtsm_netns;
mod speakers;
mod transport;
