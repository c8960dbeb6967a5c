//! The crate's integration tests, one binary (a module per area): one link instead of
//! one per file.

mod api_basics;
mod api_objects;
mod common;
mod election;
mod etcd_access;
mod etcd_store;
mod feed;
mod fuzz_findings;
mod ha;
mod ipam_model;
mod ipam_rules;
mod ipam_scale;
mod openapi;
mod plugin_endpoints;
mod policy_explain;
mod policy_rules;
mod policy_status;
mod routing_overlaps;
mod tls_credentials;
