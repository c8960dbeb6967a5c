//! What a session negotiated, as far as the wire format is concerned.

use super::open::{Capability, Open, cap_code};
use super::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use crate::types::{Afi, Family};

/// The negotiated parameters that change how messages are encoded and decoded.
///
/// [`SessionCtx::default`] is the context before the OPEN exchange (2-octet AS,
/// no ADD-PATH, 4096-octet messages, IPv4 unicast only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCtx {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS numbers in AS_PATH
    /// and AGGREGATOR are four octets, AS4_PATH/AS4_AGGREGATOR are not used.
    pub four_octet_as: bool,
    /// Families whose NLRI we receive with path identifiers (RFC 7911).
    pub add_path_rx: Vec<Family>,
    /// Families whose NLRI we send with path identifiers.
    pub add_path_tx: Vec<Family>,
    /// Both sides sent the extended message capability (RFC 8654).
    pub extended_messages: bool,
    /// (family, next hop AFI) pairs both sides allow under RFC 8950, e.g. IPv4
    /// unicast over an IPv6 next hop.
    pub ext_next_hop: Vec<(Family, Afi)>,
    /// Families both sides announced (RFC 4760).
    pub families: Vec<Family>,
    /// Maximum message length: 4096, or 65535 with extended messages.
    pub max_len: usize,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
}

impl Default for SessionCtx {
    fn default() -> Self {
        SessionCtx {
            four_octet_as: false,
            add_path_rx: Vec::new(),
            add_path_tx: Vec::new(),
            extended_messages: false,
            ext_next_hop: Vec::new(),
            families: vec![Family::IPV4_UNICAST],
            max_len: MAX_MESSAGE_LEN,
            route_refresh: false,
            enhanced_route_refresh: false,
        }
    }
}

impl SessionCtx {
    /// Intersect the capabilities of our OPEN and the peer's.
    pub fn negotiate(local: &Open, remote: &Open) -> Self {
        let both = |code| local.has(code) && remote.has(code);
        let four_octet_as = local.four_octet_as().is_some() && remote.four_octet_as().is_some();
        let remote_families = remote.families();
        let families: Vec<Family> = local
            .families()
            .into_iter()
            .filter(|f| remote_families.contains(f))
            .collect();
        let mut add_path_rx = Vec::new();
        let mut add_path_tx = Vec::new();
        for (f, mode) in local.add_path() {
            let peer = remote
                .add_path()
                .filter(|(pf, _)| *pf == f)
                .last()
                .map(|(_, m)| m);
            if let Some(peer) = peer {
                if mode.can_receive() && peer.can_send() && !add_path_rx.contains(&f) {
                    add_path_rx.push(f);
                }
                if mode.can_send() && peer.can_receive() && !add_path_tx.contains(&f) {
                    add_path_tx.push(f);
                }
            }
        }
        let remote_enh: Vec<_> = remote.ext_next_hop().collect();
        let mut ext_next_hop = Vec::new();
        for e in local.ext_next_hop() {
            if remote_enh.contains(&e) && !ext_next_hop.contains(&(e.family, e.next_hop_afi)) {
                ext_next_hop.push((e.family, e.next_hop_afi));
            }
        }
        let extended_messages = both(cap_code::EXTENDED_MESSAGE);
        SessionCtx {
            four_octet_as,
            add_path_rx,
            add_path_tx,
            extended_messages,
            ext_next_hop,
            families,
            max_len: if extended_messages {
                MAX_EXTENDED_MESSAGE_LEN
            } else {
                MAX_MESSAGE_LEN
            },
            route_refresh: both(cap_code::ROUTE_REFRESH),
            enhanced_route_refresh: both(cap_code::ENHANCED_ROUTE_REFRESH),
        }
    }

    /// A context with 4-octet AS and everything else at its default.
    pub fn four_octet() -> Self {
        SessionCtx {
            four_octet_as: true,
            ..Default::default()
        }
    }

    pub fn add_path_rx(&self, family: Family) -> bool {
        self.add_path_rx.contains(&family)
    }

    pub fn add_path_tx(&self, family: Family) -> bool {
        self.add_path_tx.contains(&family)
    }

    /// May routes of `family` carry a next hop of `afi` (RFC 8950)? The native
    /// AFI is always allowed.
    pub fn next_hop_allowed(&self, family: Family, afi: Afi) -> bool {
        family.afi == afi || self.ext_next_hop.contains(&(family, afi))
    }

    /// The context the peer sees: send and receive swapped. Handy in tests.
    pub fn mirrored(&self) -> Self {
        SessionCtx {
            add_path_rx: self.add_path_tx.clone(),
            add_path_tx: self.add_path_rx.clone(),
            ..self.clone()
        }
    }
}

/// The capabilities an OPEN of ours would typically carry; a convenience for
/// drivers and tests. The caller adds graceful restart, ADD-PATH etc. as needed.
pub fn basic_capabilities(asn: u32, families: &[Family]) -> Vec<Capability> {
    let mut caps: Vec<Capability> = families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs(asn));
    caps
}
