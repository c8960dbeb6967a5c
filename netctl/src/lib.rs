//! netctl: Contiv's command line for netmaster.
//!
//! - [`args`]: the command tree (Contiv's verbs and flags, plus a few additions such as
//!   several BGP neighbors and shell completion);
//! - [`go_flags`]: accepts Go-style single-dash long flags (`-direction=in`) as the seed
//!   documents write them, next to `--flag=value` and the short forms;
//! - [`client`]: the REST client, with exit codes scripts can rely on;
//! - [`table`]: aligned tables for people.

pub mod args;
pub mod client;
pub mod go_flags;
pub mod run;
pub mod table;
