//! Contiv's REST object model, shared by netmaster, netctl and netplugin.
//!
//! This crate will hold the object types (global, tenant, network, endpointGroup,
//! policy, rule, Bgp, serviceLB, netprofile, appProfile, endpoint) with Contiv's JSON
//! field names and validation rules, and a typed client for netmaster's REST API, so
//! that no JSON shape is written twice.
//!
//! Nothing is implemented yet: see the issue "netmaster and netctl".
/// Shapes of the netmaster ↔ netplugin feed.
pub mod feed;
