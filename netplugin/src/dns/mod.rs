//! Service discovery by DNS: netplugin answers its containers' queries from a table of
//! endpoints and relays every other name to the host's resolvers.
//!
//! # Resolution rules ([`DnsTable::resolve`])
//! Names are case-insensitive and a trailing dot is optional. If a search domain is
//! configured (e.g. `contiv.local`), it is stripped first, and every name under it is ours.
//! Tenant and network names compare case-insensitively too.
//! 1. `<x>` (one label): in the asker's own tenant and network, the endpoint group `x`
//!    (all members' addresses), else the container named `x`.
//! 2. `<x>.<network>`, where `<network>` is a network of the asker's tenant that has
//!    endpoints: the group `x`, else the container `x`, of that network; a miss is NXDOMAIN.
//!    (So a network called like a top-level domain shadows that domain for its tenant.)
//! 3. A group and a container of the same name: the group wins.
//! 4. A group's addresses are sorted, then rotated left by a counter the caller passes (the
//!    server passes a per-query counter), so successive queries start with another member.
//! 5. Only the asked family is returned (A: IPv4, AAAA: IPv6, ANY: both); a known name
//!    without addresses of that family, or asked for another type, is NOERROR with no answers.
//! 6. Names of another tenant are never visible: lookups are keyed by the asker's tenant.
//! 7. A miss under the search domain is NXDOMAIN; any other miss is forwarded upstream.
//!
//! # Server ([`DnsServer`], [`serve`])
//! UDP and TCP on the same address. The agent runs [`serve`]: it listens only on the
//! addresses containers are told to use (the host's router address), never on the wildcard,
//! so it starts beside a stub resolver on 127.0.0.53:53; it re-binds when that address
//! changes, binds nothing while there is none, and retries a failed bind instead of failing.
//! The source address of a query is mapped to the asking endpoint by a caller-supplied
//! [`AskerOf`]; the agent's ([`local_askers`]) knows only the containers of this host.
//! Every query first passes [`admission`]: each source has a [`TokenBucket`]
//! ([`RATE_PER_SEC`], burst [`RATE_BURST`]; over it the query is dropped), and a query
//! from anything but a local container is REFUSED without a lookup or forwarding, so the
//! server is no open resolver (no reflection, amplification or relaying to internal
//! resolvers). At most [`MAX_FORWARDS`] queries are relayed upstream at once; more get
//! SERVFAIL at once, so slow upstreams cannot exhaust the server; one source holds at most
//! [`MAX_TCP_PER_SOURCE`] TCP connections.
//! Our answers are authoritative with TTL [`TTL`] = 0: caches must not pin one member of a
//! group, and membership changes are visible at once. An answer that does not fit in UDP
//! (512 bytes, or the client's EDNS size up to 1232) goes out truncated (TC) so the client
//! retries over TCP; over TCP as many records as fit in 64 KiB are sent, with TC.
//! Forwarding relays the query bytes over UDP to each upstream in turn (timeout 2 s each,
//! configurable) and relays the first reply; a truncated reply is retried over TCP when the
//! client came over TCP. No upstream answering gives SERVFAIL. Malformed queries get
//! FORMERR if they carry a header, else are dropped; responses sent to us are dropped,
//! other opcodes get NOTIMP, and questions of a class other than IN are forwarded.

mod server;
mod table;
#[cfg(test)]
mod tests;

pub use server::{
    Admission, AskerOf, DnsServer, MAX_FORWARDS, MAX_TCP_PER_SOURCE, RATE_BURST, RATE_PER_SEC, TTL,
    TokenBucket, admission, local_asker, local_askers, serve,
};
pub use table::{Answer, Asker, DnsTable, QType, Record};

use std::net::{IpAddr, SocketAddr};

/// The nameservers of a resolv.conf text (port 53). Lines that do not parse (such as
/// link-local addresses with a zone) are skipped.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            words.next()?.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The host's upstream resolvers from `/etc/resolv.conf` (empty if it cannot be read).
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| upstreams_from_resolv_conf(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod resolv_tests {
    #[test]
    fn parses_nameservers() {
        let text = "# c\nsearch example.org\nnameserver 10.0.0.53\nnameserver fd00::53 \n\
                    nameserver fe80::1%eth0\nnameserver\noptions ndots:2\n";
        assert_eq!(
            super::upstreams_from_resolv_conf(text),
            vec![
                "10.0.0.53:53".parse().unwrap(),
                "[fd00::53]:53".parse().unwrap()
            ]
        );
    }
}
