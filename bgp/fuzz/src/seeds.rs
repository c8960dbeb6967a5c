//! Seed messages for the mutation harness and the libFuzzer corpus: the shapes of
//! the codec's fixtures (FRR-like OPEN, RFC 9072 OPEN, IPv6 UPDATE with
//! communities, 2-octet UPDATE with AS4_PATH, RFC 8950, ADD-PATH, End-of-RIB,
//! NOTIFICATIONs), built with our encoder.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::types::*;
use bgp::wire::*;

use super::{contexts, frame};

fn n(p: &str) -> Nlri {
    Nlri::new(p.parse().unwrap())
}

fn opens() -> Vec<Open> {
    let frr = Open {
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
                (Family::IPV6_UNICAST, AddPathMode::Receive),
            ]),
            Capability::Fqdn {
                hostname: "leaf1".into(),
                domain: "lab".into(),
            },
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, true), (Family::IPV6_UNICAST, false)],
            }),
            Capability::ExtendedNextHop(vec![ExtNextHop {
                family: Family::IPV4_UNICAST,
                next_hop_afi: Afi::Ipv6,
            }]),
            Capability::ExtendedMessage,
        ],
    };
    let rfc9072 = Open {
        my_as: 23456,
        hold_time: 0,
        bgp_id: Ipv4Addr::new(1, 1, 1, 1),
        capabilities: (0..60)
            .map(|i| Capability::Unknown {
                code: 200,
                value: vec![i, i, i],
            })
            .collect(),
    };
    let minimal = Open::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 1), vec![]);
    vec![frr, rfc9072, minimal]
}

fn updates() -> Vec<(usize, Update)> {
    let v6_attrs = PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::from_sequence([65001, 65002]),
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        }),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            addr: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![Community::new(65001, 100), Community::NO_EXPORT],
        ext_communities: vec![ExtCommunity::route_target(65001, 7)],
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2,
        }],
        originator_id: Some(Ipv4Addr::new(10, 9, 9, 9)),
        cluster_list: vec![Ipv4Addr::new(10, 8, 8, 8)],
        unknown: vec![RawAttr {
            flags: 0xC0,
            type_code: 99,
            value: vec![1, 2, 3],
        }],
    };
    let v4_attrs = PathAttrs {
        as_path: AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65001, 4_200_000_000],
                },
                AsSegment {
                    kind: SegmentKind::Set,
                    asns: vec![1, 70000],
                },
            ],
        },
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            addr: Ipv4Addr::new(192, 0, 2, 9),
        }),
        ..Default::default()
    };
    let v4_over_v6 = PathAttrs {
        origin: Origin::Incomplete,
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        }),
        ..Default::default()
    };
    let with_id = |p: &str, id| Nlri {
        prefix: p.parse().unwrap(),
        path_id: Some(id),
    };
    let mut mixed = Update::announce(
        Family::IPV6_UNICAST,
        vec![n("2001:db8:1::/48"), n("2001:db8:2::/48")],
        v6_attrs.clone(),
    );
    mixed
        .withdrawn
        .push((Family::IPV4_UNICAST, vec![n("10.9.0.0/16")]));
    mixed.classic_next_hop = Some(Ipv4Addr::new(192, 0, 2, 7));
    mixed
        .announced
        .push((Family::IPV4_UNICAST, vec![n("10.7.0.0/16")]));
    vec![
        (1, mixed),
        (
            1,
            Update::announce(
                Family::IPV6_UNICAST,
                vec![n("2001:db8:1::/48"), n("::/0")],
                v6_attrs,
            ),
        ),
        (
            0,
            Update::announce(
                Family::IPV4_UNICAST,
                vec![n("10.1.0.0/16"), n("192.168.0.0/24"), n("0.0.0.0/0")],
                v4_attrs.clone(),
            ),
        ),
        (
            4,
            Update::announce(
                Family::IPV4_UNICAST,
                vec![n("10.1.0.0/16"), n("10.2.3.4/32")],
                v4_attrs,
            ),
        ),
        (
            3,
            Update::announce(Family::IPV4_UNICAST, vec![n("10.0.1.0/24")], v4_over_v6),
        ),
        (
            2,
            Update::withdraw(
                Family::IPV4_UNICAST,
                vec![with_id("10.1.0.0/16", 1), with_id("10.1.0.0/16", 2)],
            ),
        ),
        (
            2,
            Update::withdraw(Family::IPV6_UNICAST, vec![with_id("2001:db8::/32", 7)]),
        ),
        (1, Update::end_of_rib(Family::IPV4_UNICAST)),
        (1, Update::end_of_rib(Family::IPV6_UNICAST)),
    ]
}

fn notifications() -> Vec<Notification> {
    let inner = Notification::new(ErrorCode::HoldTimerExpired(0), vec![]);
    vec![
        Notification::admin_shutdown("maintenance window", false),
        Notification::hard_reset(&inner),
        Notification::max_prefixes(Family::IPV6_UNICAST, 1000),
        Notification::new(
            ErrorCode::Update(UpdateError::AttributeFlagsError),
            vec![0x40, 1, 1, 0],
        ),
        Notification::new(
            ErrorCode::Unknown {
                code: 99,
                subcode: 1,
            },
            vec![0xff],
        ),
    ]
}

fn body(m: &Message, ctx: &SessionCtx) -> Vec<u8> {
    m.to_bytes(ctx).expect("seed encodes")[HEADER_LEN..].to_vec()
}

/// The seeds of one target (empty for an unknown name).
pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    let ctxs = contexts();
    let d = SessionCtx::default();
    match target {
        "open" => opens()
            .into_iter()
            .map(|o| body(&Message::Open(o), &d))
            .collect(),
        "update" => updates()
            .into_iter()
            .map(|(c, u)| {
                // Encode as the peer would: its send is our receive.
                let tx = ctxs[c].mirrored();
                let mut v = vec![c as u8];
                v.extend(body(&Message::Update(u), &tx));
                v
            })
            .collect(),
        "bfd" => {
            use bgp::bfd::{BfdState, ControlPacket, Diag};
            let pkt = |state: BfdState, your: u32, poll: bool, fin: bool| ControlPacket {
                diag: Diag::None,
                state,
                poll,
                final_: fin,
                cpi: false,
                demand: false,
                multipoint: false,
                detect_mult: 3,
                my_discr: 42,
                your_discr: your,
                desired_min_tx_us: 300_000,
                required_min_rx_us: 300_000,
                required_min_echo_rx_us: 0,
                auth: None,
            };
            // A three-way handshake, a poll, and a Down: each record prefixed by its length.
            let mut stream = Vec::new();
            for p in [
                pkt(BfdState::Down, 0, false, false),
                pkt(BfdState::Init, 7, false, false),
                pkt(BfdState::Up, 7, true, false),
                pkt(BfdState::Up, 7, false, true),
                pkt(BfdState::Down, 7, false, false),
            ] {
                let b = p.encode();
                stream.push(b.len() as u8);
                stream.extend(b);
            }
            vec![stream]
        }
        "notification" => notifications()
            .into_iter()
            .map(|n| body(&Message::Notification(n), &d))
            .collect(),
        "framing" => {
            let mut out = Vec::new();
            for (c, ctx) in ctxs.iter().enumerate() {
                let tx = ctx.mirrored();
                let mut stream = vec![c as u8];
                for o in opens().into_iter().take(1) {
                    stream.extend(Message::Open(o).to_bytes(&tx).unwrap());
                }
                stream.extend(Message::Keepalive.to_bytes(&tx).unwrap());
                for (uc, u) in updates() {
                    if uc == c {
                        stream.extend(Message::Update(u).to_bytes(&tx).unwrap());
                    }
                }
                stream.extend(
                    Message::RouteRefresh(RouteRefresh {
                        family: Family::IPV6_UNICAST,
                        subtype: RefreshSubtype::BoRR,
                    })
                    .to_bytes(&tx)
                    .unwrap(),
                );
                stream.extend(frame(5, &[0, 1, 0, 1, 9, 9]));
                for nt in notifications().into_iter().take(1) {
                    stream.extend(Message::Notification(nt).to_bytes(&tx).unwrap());
                }
                out.push(stream);
            }
            out
        }
        _ => Vec::new(),
    }
}
