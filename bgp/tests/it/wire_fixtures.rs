//! Byte fixtures checked in both directions: bytes → value and value → bytes.
//! The fixtures are written by hand from the RFC layouts; `#` starts a comment.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::types::*;
use bgp::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// Decode must give `value`, and encoding `value` must give the bytes back.
fn both_ways(bytes: &[u8], value: &Message, ctx: &SessionCtx) {
    assert_eq!(frame_len(bytes, ctx.max_len), Ok(Some(bytes.len())));
    let decoded = Message::decode(bytes, ctx).expect("fixture decodes");
    assert_eq!(&decoded, value);
    let encoded = value.to_bytes(ctx).expect("fixture encodes");
    assert_eq!(encoded.as_ref(), bytes, "encoding differs from the fixture");
}

fn n(p: &str) -> Nlri {
    Nlri::new(p.parse().unwrap())
}

const MARKER: &str = "ffffffff ffffffff ffffffff ffffffff";

#[test]
fn open_like_frr_8_4() {
    let bytes = hex(&format!(
        "{MARKER}
         0069 01              # length 105, OPEN
         04                   # version
         fde9                 # my AS 65001
         00b4                 # hold time 180
         0a000001             # BGP identifier 10.0.0.1
         4c                   # optional parameters length 76
         02 06 01 04 0001 00 01         # MP IPv4 unicast
         02 06 01 04 0002 00 01         # MP IPv6 unicast
         02 02 02 00                    # route refresh
         02 02 80 00                    # old Cisco route refresh (128): kept raw
         02 02 46 00                    # enhanced route refresh
         02 06 41 04 0000fde9           # 4-octet AS 65001
         02 0a 45 08 0001 01 03 0002 01 03   # ADD-PATH v4/v6 unicast send+receive
         02 0c 49 0a 05 6c65616631 03 6c6162 # FQDN leaf1 / lab
         02 0c 40 0a c078 0001 01 80 0002 01 80 # GR R+N, 120 s, both families F bit
        "
    ));
    let open = Open {
        my_as: 65001,
        hold_time: 180,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 128,
                value: vec![],
            },
            Capability::EnhancedRouteRefresh,
            Capability::FourOctetAs(65001),
            Capability::AddPath(vec![
                (Family::IPV4_UNICAST, AddPathMode::Both),
                (Family::IPV6_UNICAST, AddPathMode::Both),
            ]),
            Capability::Fqdn {
                hostname: "leaf1".into(),
                domain: "lab".into(),
            },
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, true), (Family::IPV6_UNICAST, true)],
            }),
        ],
    };
    both_ways(&bytes, &Message::Open(open.clone()), &SessionCtx::default());
    assert_eq!(open.asn(), 65001);

    // Negotiation against a peer with fewer capabilities.
    let peer = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::AddPath(vec![(Family::IPV6_UNICAST, AddPathMode::Receive)]),
            Capability::ExtendedMessage,
        ],
    );
    assert_eq!(peer.my_as, 23456);
    assert_eq!(peer.asn(), 4_200_000_000);
    let ctx = SessionCtx::negotiate(&open, &peer);
    assert!(ctx.four_octet_as);
    assert_eq!(ctx.families, vec![Family::IPV6_UNICAST]);
    assert_eq!(ctx.add_path_tx, vec![Family::IPV6_UNICAST]);
    assert!(ctx.add_path_rx.is_empty());
    assert!(ctx.route_refresh && !ctx.enhanced_route_refresh);
    assert!(!ctx.extended_messages);
    assert_eq!(ctx.max_len, 4096);
}

#[test]
fn open_with_rfc9072_extended_parameters() {
    // 60 unknown capabilities of 3 value octets, each in its own parameter:
    // 60 * (1 + 2 + 2 + 3) = 480 octets.
    let caps: Vec<Capability> = (0..60)
        .map(|i| Capability::Unknown {
            code: 200,
            value: vec![i, i, i],
        })
        .collect();
    let open = Open {
        my_as: 65001,
        hold_time: 0,
        bgp_id: Ipv4Addr::new(1, 1, 1, 1),
        capabilities: caps,
    };
    let bytes = Message::Open(open.clone())
        .to_bytes(&SessionCtx::default())
        .unwrap();
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 480.
    assert_eq!(&bytes[28..32], &[0xff, 0xff, 0x01, 0xe0]);
    // Each parameter: type 2, 2-octet length 5, then capability 200 length 3.
    assert_eq!(&bytes[32..37], &[0x02, 0x00, 0x05, 200, 3]);
    assert_eq!(
        Message::decode(&bytes, &SessionCtx::default()).unwrap(),
        Message::Open(open)
    );
}

#[test]
fn open_with_extended_next_hop_and_extended_message() {
    let bytes = hex(&format!(
        "{MARKER} 002f 01
         04 5ba0 005a c0000201   # AS_TRANS, hold 90, 192.0.2.1
         12                      # optional parameters length 18
         02 10                   # one parameter with three capabilities
            05 06 0001 0001 0002 # extended next hop: IPv4 unicast over IPv6
            06 00                # extended message
            41 04 fa56ea00       # 4-octet AS 4200000000
        "
    ));
    let decoded = Message::decode(&bytes, &SessionCtx::default()).unwrap();
    let Message::Open(open) = decoded else {
        panic!("not an OPEN")
    };
    assert_eq!(open.asn(), 4_200_000_000);
    assert_eq!(
        open.capabilities,
        vec![
            Capability::ExtendedNextHop(vec![ExtNextHop {
                family: Family::IPV4_UNICAST,
                next_hop_afi: Afi::Ipv6
            }]),
            Capability::ExtendedMessage,
            Capability::FourOctetAs(4_200_000_000),
        ]
    );
    let ctx = SessionCtx::negotiate(&open, &open);
    assert!(ctx.extended_messages);
    assert_eq!(ctx.max_len, 65535);
    assert!(ctx.next_hop_allowed(Family::IPV4_UNICAST, Afi::Ipv6));
    // Re-encoding puts each capability in its own parameter.
    let again = Message::Open(open.clone()).to_bytes(&ctx).unwrap();
    assert_eq!(again.len(), bytes.len() + 4);
    assert_eq!(Message::decode(&again, &ctx).unwrap(), Message::Open(open));
}

#[test]
fn update_ipv6_with_communities_and_large_communities() {
    let ctx = SessionCtx::four_octet();
    let bytes = hex(&format!(
        "{MARKER} 007f 02
         0000                  # no withdrawn routes
         0068                  # path attributes: 104 octets
         80 0e 33              # MP_REACH_NLRI, optional, 51 octets
            0002 01            # IPv6 unicast
            20                 # next hop length 32: global + link-local
            20010db8000000000000000000000001
            fe800000000000000000000000000001
            00                 # reserved
            30 20010db80001    # 2001:db8:1::/48
            30 20010db80002    # 2001:db8:2::/48
         40 01 01 00           # ORIGIN IGP
         40 02 0a 02 02 0000fde9 0000fdea   # AS_PATH sequence 65001 65002
         80 04 04 00000064     # MED 100
         c0 08 08 fde90064 ffffff01         # COMMUNITIES 65001:100 no-export
         c0 20 0c 0000fde9 00000001 00000002 # LARGE_COMMUNITY 65001:1:2
        "
    ));
    let attrs = PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::from_sequence([65001, 65002]),
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        }),
        med: Some(100),
        communities: vec![Community::new(65001, 100), Community::NO_EXPORT],
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2,
        }],
        ..Default::default()
    };
    let update = Update::announce(
        Family::IPV6_UNICAST,
        vec![n("2001:db8:1::/48"), n("2001:db8:2::/48")],
        attrs,
    );
    both_ways(&bytes, &Message::Update(update), &ctx);
}

#[test]
fn update_ipv4_to_two_octet_peer_with_as4_path() {
    let ctx = SessionCtx::default();
    let bytes = hex(&format!(
        "{MARKER} 003f 02
         0000 0021
         40 01 01 00                  # ORIGIN IGP
         40 02 06 02 02 fde9 5ba0     # AS_PATH 65001 AS_TRANS
         40 03 04 c0000201            # NEXT_HOP 192.0.2.1
         c0 11 0a 02 02 0000fde9 fa56ea00 # AS4_PATH 65001 4200000000
         10 0a01                      # 10.1.0.0/16
         18 c0a800                    # 192.168.0.0/24
        "
    ));
    let attrs = PathAttrs {
        as_path: AsPath::from_sequence([65001, 4_200_000_000]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    let update = Update::announce(
        Family::IPV4_UNICAST,
        vec![n("10.1.0.0/16"), n("192.168.0.0/24")],
        attrs,
    );
    both_ways(&bytes, &Message::Update(update.clone()), &ctx);

    // The same UPDATE to a 4-octet peer has no AS4_PATH.
    let four = Message::Update(update)
        .to_bytes(&SessionCtx::four_octet())
        .unwrap();
    assert_eq!(four.len(), bytes.len() - 13 + 4);
}

#[test]
fn update_ipv4_over_ipv6_next_hop_rfc8950() {
    let ctx = SessionCtx {
        ext_next_hop: vec![(Family::IPV4_UNICAST, Afi::Ipv6)],
        ..SessionCtx::four_octet()
    };
    let bytes = hex(&format!(
        "{MARKER} 003a 02
         0000 0023
         80 0e 19 0001 01 10 20010db8000000000000000000000001 00 18 0a0001  # MP_REACH IPv4 10.0.1.0/24 via 2001:db8::1
         40 01 01 02     # ORIGIN incomplete
         40 02 00        # empty AS_PATH (iBGP)
        "
    ));
    let attrs = PathAttrs {
        origin: Origin::Incomplete,
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        }),
        ..Default::default()
    };
    let update = Update::announce(Family::IPV4_UNICAST, vec![n("10.0.1.0/24")], attrs);
    both_ways(&bytes, &Message::Update(update.clone()), &ctx);
    // Without the capability the codec refuses to send it.
    assert!(matches!(
        Message::Update(update).to_bytes(&SessionCtx::four_octet()),
        Err(EncodeError::NextHopFamily { .. })
    ));
}

#[test]
fn update_withdraw_with_add_path() {
    let ctx = SessionCtx {
        add_path_rx: vec![Family::IPV4_UNICAST],
        add_path_tx: vec![Family::IPV4_UNICAST],
        ..SessionCtx::four_octet()
    };
    let bytes = hex(&format!(
        "{MARKER} 001e 02
         0007 00000001 10 0a01   # withdraw path 1 of 10.1.0.0/16
         0000
        "
    ));
    let update = Update::withdraw(
        Family::IPV4_UNICAST,
        vec![Nlri {
            prefix: "10.1.0.0/16".parse().unwrap(),
            path_id: Some(1),
        }],
    );
    both_ways(&bytes, &Message::Update(update), &ctx);
}

#[test]
fn end_of_rib_markers() {
    let ctx = SessionCtx::four_octet();
    let v4 = hex(&format!("{MARKER} 0017 02 0000 0000"));
    both_ways(
        &v4,
        &Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        &ctx,
    );
    let v6 = hex(&format!("{MARKER} 001d 02 0000 0006 80 0f 03 0002 01"));
    both_ways(
        &v6,
        &Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        &ctx,
    );
    for (bytes, fam) in [(v4, Family::IPV4_UNICAST), (v6, Family::IPV6_UNICAST)] {
        let Message::Update(u) = Message::decode(&bytes, &ctx).unwrap() else {
            panic!()
        };
        assert_eq!(u.is_end_of_rib(), Some(fam));
    }
    assert_eq!(
        Update::withdraw(Family::IPV6_UNICAST, vec![n("::/0")]).is_end_of_rib(),
        None
    );
}

#[test]
fn notification_cease_with_shutdown_communication() {
    let bytes = hex(&format!(
        "{MARKER} 0019 03 06 02 03 627965 # Cease/Administrative Shutdown \"bye\""
    ));
    let msg = Message::Notification(Notification::admin_shutdown("bye", false));
    both_ways(&bytes, &msg, &SessionCtx::default());
    let Message::Notification(n) = msg else {
        unreachable!()
    };
    assert_eq!(n.shutdown_communication(), Some("bye"));
    assert_eq!(n.to_string(), "Cease/Administrative Shutdown: \"bye\"");
}

#[test]
fn notification_hard_reset_and_unknown_code() {
    let bytes = hex(&format!(
        "{MARKER} 0017 03 06 09 04 00 # Cease/Hard Reset wrapping Hold Timer Expired"
    ));
    let inner = Notification::new(ErrorCode::HoldTimerExpired(0), vec![]);
    both_ways(
        &bytes,
        &Message::Notification(Notification::hard_reset(&inner)),
        &SessionCtx::default(),
    );
    let bytes = hex(&format!(
        "{MARKER} 0016 03 63 01 ff # code 99 subcode 1 data ff"
    ));
    let n = Notification::new(
        ErrorCode::Unknown {
            code: 99,
            subcode: 1,
        },
        vec![0xff],
    );
    both_ways(&bytes, &Message::Notification(n), &SessionCtx::default());
}

#[test]
fn keepalive_and_route_refresh() {
    let ctx = SessionCtx::default();
    both_ways(
        &hex(&format!("{MARKER} 0013 04")),
        &Message::Keepalive,
        &ctx,
    );
    both_ways(
        &hex(&format!(
            "{MARKER} 0017 05 0001 00 01 # refresh IPv4 unicast"
        )),
        &Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST)),
        &ctx,
    );
    both_ways(
        &hex(&format!("{MARKER} 0017 05 0002 01 01 # BoRR IPv6 unicast")),
        &Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: RefreshSubtype::BoRR,
        }),
        &ctx,
    );
    both_ways(
        &hex(&format!("{MARKER} 0017 05 0002 02 01 # EoRR IPv6 unicast")),
        &Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: RefreshSubtype::EoRR,
        }),
        &ctx,
    );
    // Unknown subtypes decode, so the session can ignore them (RFC 7313 §5).
    let Message::RouteRefresh(rr) =
        Message::decode(&hex(&format!("{MARKER} 0017 05 0001 07 01")), &ctx).unwrap()
    else {
        panic!()
    };
    assert_eq!(rr.subtype, RefreshSubtype::Unknown(7));
}
