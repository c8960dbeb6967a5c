//! The crate's integration tests, one binary (a module per area): one link instead of
//! one per file.

mod cni_binary;
mod cni_plugin;
mod dns_netns;
mod docker_driver;
mod endpoint_netns;
mod fib_netns;
mod netns;
mod policy_netns;
mod startup;
