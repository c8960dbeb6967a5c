//! Container runtime front ends, part 1: the CNI plugin (spec 1.1.0, speaking 0.3.0 to
//! 1.1.0) and the [`service::EndpointService`] trait that both front ends (CNI and the
//! Docker driver in [`crate::docker`]) call into.
//!
//! - [`service`]: the trait, its request/result types and [`service::EndpointError`];
//! - [`types`]: CNI configuration, environment, result and error types with version
//!   conversion;
//! - [`plugin`]: the pure `handle(env, stdin, backend)` core of the `contiv-cni` binary;
//! - [`client`]: the plugin's blocking HTTP/1.1 client over netplugin's unix socket;
//! - [`server`]: the axum side of that socket, exposing an `EndpointService`;
//! - [`testing`]: an in-memory `EndpointService` for tests.

pub mod client;
pub mod plugin;
pub mod server;
pub mod service;
pub mod testing;
pub mod types;

pub use plugin::{CniBackend, CniOutput, handle};
pub use service::{EndpointError, EndpointService, ErrorKind};
