//! Contiv's REST object model, shared by netmaster, netctl and netplugin, so that no JSON
//! shape is written twice.
//!
//! - [`objects`]: global, tenant, network, endpointGroup, policy, rule, Bgp, serviceLB,
//!   netprofile, appProfile and the read-only endpoint, with Contiv's JSON field names,
//!   keys (`tenant:name`, `tenant:policy:ruleId`, `hostname`, `global`) and URL plurals
//!   (including the odd ones: `policys`, `Bgps`, `serviceLBs`, `endpointGroups`);
//! - [`validate`]: single-object validation whose errors name the JSON field, and the
//!   parsers netctl and netmaster share (subnets with ranges, tag ranges, AS numbers,
//!   bandwidths);
//! - [`bgp`]: a `Bgp` object parsed once into a [`BgpSpec`] (netmaster validates with
//!   it, netplugin plans its speaker from it);
//! - [`plugin`]: the netplugin → netmaster endpoint API ([`EndpointRequest`],
//!   [`EndpointAllocation`]);
//! - [`policy`]: Contiv's policy semantics (rule parse, order, match, the decision on
//!   a flow) shared by netplugin's compiler and netmaster's `policy explain`;
//! - [`secret`]: [`Secret`], a credential that never prints;
//! - [`credential`]: the answer that carries a new per-host token
//!   ([`credential::HostCredential`]);
//! - [`feed`]: the netmaster ↔ netplugin feed and the typed host report
//!   ([`feed::HostReport`]).
//!
//! The object graph: a tenant holds networks, policies, netprofiles and services; an
//! endpoint group belongs to one network of its tenant and refers to policies and a
//! netprofile; a rule belongs to a policy; Bgp objects are per host; endpoints belong to
//! a network (and optionally a group) and a host.

pub mod bgp;
pub mod credential;
pub mod feed;
pub mod objects;
pub mod plugin;
pub mod policy;
pub mod secret;
pub mod validate;

pub use bgp::BgpSpec;
pub use objects::*;
pub use plugin::{EndpointAllocation, EndpointRequest};
pub use secret::Secret;
pub use validate::{Validate, ValidationError};
