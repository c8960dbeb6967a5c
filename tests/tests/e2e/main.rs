//! contiv-rs's end-to-end tests, in one test binary: each module below used to be a test
//! binary of its own, and each linked the whole workspace. nextest still runs every test in
//! a process of its own (`contiv-tests::e2e <module>::<test>`), so a test that panics still
//! runs its cleanup guards and never shares a lab with another.
//!
//! Run one group with a filter: `cargo nextest run -p contiv-tests -E 'test(/^routing_fabrics::/)'`
//! or plainly `cargo nextest run -p contiv-tests routing_fabrics::`.

mod bfd_auth_bird;
mod bgp_addpath;
mod bgp_addpath_send;
mod bgp_bfd_frr;
mod bgp_exabgp;
mod bgp_gobgp;
mod bgp_interop;
mod bgp_ipv6_frr;
mod bgp_md5_frr;
mod bgpd_daemon;
mod cni_runtimes;
mod docker_harness;
mod docker_quickstart;
mod fabrics;
mod graceful_restart;
mod netplugin_metrics;
mod policy_docker;
mod policy_routing;
mod routing_bfd;
mod routing_bgp_md5;
mod routing_fabrics;
mod routing_import_policy;
mod routing_quickstart;
mod tidy;
