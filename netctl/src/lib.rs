//! netctl: the command-line client of netmaster.
//!
//! It will implement Contiv's whole `netctl` command tree (tenant, network, group,
//! policy, global, bgp, endpoint, service, netprofile, version) so that every command in
//! the Contiv documents works verbatim.
//!
//! Nothing is implemented yet: see the issue "netmaster and netctl".
