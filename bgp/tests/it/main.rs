//! The crate's integration tests, one binary (a module per area): one link instead of
//! one per file.

mod differential;
mod fsm_props;
mod fsm_scenarios;
mod fsm_support;
mod fsm_table;
mod wire_errors;
mod wire_fixtures;
mod wire_proptest;
