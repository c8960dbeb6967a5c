//! OPEN message checks (RFC 4271 §6.2, RFC 6286) and timer negotiation (§4.2, §4.4).

use super::config::FsmConfig;
use super::event::{Negotiated, NotificationData, OpenInfo};
use crate::error_codes::OpenError;

/// Checks a received OPEN against our configuration and, when it is acceptable, returns
/// the negotiated session parameters. On error returns the NOTIFICATION to send.
///
/// Checks, in the order of RFC 4271 §6.2:
/// - version ≠ 4: Unsupported Version Number, data = the 2-octet version we support;
/// - peer AS not accepted by [`FsmConfig::peer_as`]: Bad Peer AS;
/// - hold time 1 or 2: Unacceptable Hold Time;
/// - BGP Identifier 0, or equal to ours on an iBGP session (RFC 6286 §2.2): Bad BGP
///   Identifier.
///
/// Capabilities and optional parameters are the codec's and the driver's business.
pub fn validate_open(cfg: &FsmConfig, open: &OpenInfo) -> Result<Negotiated, NotificationData> {
    if open.version != super::BGP_VERSION {
        let mut n = NotificationData::open_error(OpenError::UnsupportedVersion);
        n.data = u16::from(super::BGP_VERSION).to_be_bytes().to_vec();
        return Err(n);
    }
    if open.asn == 0 || !cfg.peer_as.accepts(open.asn) {
        return Err(NotificationData::open_error(OpenError::BadPeerAs));
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(NotificationData::open_error(
            OpenError::UnacceptableHoldTime,
        ));
    }
    let internal = open.asn == cfg.local_as;
    if open.bgp_id.is_unspecified() || (internal && open.bgp_id == cfg.local_id) {
        return Err(NotificationData::open_error(OpenError::BadBgpIdentifier));
    }
    let (hold_time, keepalive) = negotiate_timers(cfg.hold_time, cfg.keepalive, open.hold_time);
    Ok(Negotiated {
        hold_time,
        keepalive,
        peer: *open,
        internal,
    })
}

/// Negotiated (hold time, keepalive interval) in seconds: the hold time is the smaller of
/// the two offers, the keepalive interval the smaller of the configured one and a third
/// of the hold time. A hold time of 0 gives (0, 0): no hold timer and no keepalives.
pub fn negotiate_timers(local_hold: u16, local_keepalive: u16, peer_hold: u16) -> (u16, u16) {
    let hold = local_hold.min(peer_hold);
    if hold == 0 {
        return (0, 0);
    }
    // hold ≥ 3 here for any valid configuration and accepted OPEN, so hold / 3 ≥ 1; the
    // max(1) keeps a keepalive of at least one second should a caller pass odd values.
    let keepalive = local_keepalive.min(hold / 3).max(1);
    (hold, keepalive)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::fsm::config::PeerAs;

    fn cfg() -> FsmConfig {
        FsmConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(65002))
    }

    fn open(asn: u32, hold_time: u16, id: [u8; 4]) -> OpenInfo {
        OpenInfo {
            version: 4,
            asn,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
        }
    }

    #[test]
    fn accepts_a_good_open_and_negotiates_the_smaller_hold_time() {
        let n = validate_open(&cfg(), &open(65002, 30, [10, 0, 0, 2])).unwrap();
        assert_eq!((n.hold_time, n.keepalive, n.internal), (30, 10, false));
    }

    #[test]
    fn version_three_is_refused_with_version_four_in_the_data() {
        let mut o = open(65002, 90, [10, 0, 0, 2]);
        o.version = 3;
        let n = validate_open(&cfg(), &o).unwrap_err();
        assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));
    }

    #[test]
    fn wrong_as_is_bad_peer_as() {
        let n = validate_open(&cfg(), &open(65003, 90, [10, 0, 0, 2])).unwrap_err();
        assert_eq!((n.code, n.subcode), (2, 2));
    }

    #[test]
    fn hold_time_one_or_two_is_unacceptable() {
        for h in [1, 2] {
            let n = validate_open(&cfg(), &open(65002, h, [10, 0, 0, 2])).unwrap_err();
            assert_eq!((n.code, n.subcode), (2, 6));
        }
    }

    #[test]
    fn zero_identifier_is_bad_and_our_own_only_on_ibgp() {
        let n = validate_open(&cfg(), &open(65002, 90, [0, 0, 0, 0])).unwrap_err();
        assert_eq!((n.code, n.subcode), (2, 3));
        // eBGP peer with our identifier is allowed (RFC 6286 §2.2).
        assert!(validate_open(&cfg(), &open(65002, 90, [10, 0, 0, 1])).is_ok());
        let mut ibgp = cfg();
        ibgp.peer_as = PeerAs::Exact(65001);
        let n = validate_open(&ibgp, &open(65001, 90, [10, 0, 0, 1])).unwrap_err();
        assert_eq!((n.code, n.subcode), (2, 3));
    }

    #[test]
    fn hold_time_zero_disables_keepalives() {
        assert_eq!(negotiate_timers(90, 30, 0), (0, 0));
        assert_eq!(negotiate_timers(0, 30, 90), (0, 0));
        assert_eq!(negotiate_timers(9, 30, 90), (9, 3));
        assert_eq!(negotiate_timers(3, 30, 3), (3, 1));
    }

    #[test]
    fn ranges_and_any_accept_what_they_say() {
        let mut c = cfg();
        c.peer_as = PeerAs::Range {
            min: 64512,
            max: 65534,
        };
        assert!(validate_open(&c, &open(64600, 90, [1, 1, 1, 1])).is_ok());
        assert!(validate_open(&c, &open(65535, 90, [1, 1, 1, 1])).is_err());
        c.peer_as = PeerAs::Any;
        let n = validate_open(&c, &open(65001, 90, [1, 1, 1, 1])).unwrap();
        assert!(n.internal);
        assert!(validate_open(&c, &open(0, 90, [1, 1, 1, 1])).is_err());
    }
}
