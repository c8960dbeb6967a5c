//! Property tests: value → bytes → value round trips for OPEN, UPDATE and
//! NOTIFICATION, packing, and decoding of arbitrary or mutated bytes never panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::types::*;
use bgp::wire::*;
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![
        Just(Family::IPV4_UNICAST),
        Just(Family::IPV6_UNICAST),
        (any::<u16>(), any::<u8>())
            .prop_map(|(a, s)| Family::new(Afi::from_code(a), Safi::from_code(s))),
    ]
}

fn capability() -> impl Strategy<Value = Capability> {
    let known = [1u8, 2, 5, 6, 64, 65, 69, 70, 73];
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        vec((family(), any::<u16>().prop_map(Afi::from_code)), 0..4).prop_map(|v| {
            Capability::ExtendedNextHop(
                v.into_iter()
                    .map(|(family, next_hop_afi)| ExtNextHop {
                        family,
                        next_hop_afi,
                    })
                    .collect(),
            )
        }),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((family(), any::<bool>()), 0..4)
        )
            .prop_map(|(restart_state, notification, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restart_state,
                    notification,
                    restart_time,
                    families,
                })
            }),
        vec(
            (
                family(),
                prop_oneof![
                    Just(AddPathMode::Receive),
                    Just(AddPathMode::Send),
                    Just(AddPathMode::Both)
                ]
            ),
            0..4
        )
        .prop_map(Capability::AddPath),
        ("[a-z0-9.-]{0,20}", "[a-z0-9.-]{0,20}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            any::<u8>().prop_filter("unknown code", move |c| !known.contains(c)),
            vec(any::<u8>(), 0..12)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>().prop_filter("hold 1 and 2 are invalid", |h| *h != 1 && *h != 2),
        any::<u32>().prop_filter("id 0 is invalid", |i| *i != 0),
        vec(capability(), 0..50),
    )
        .prop_map(|(my_as, hold_time, id, capabilities)| Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            capabilities,
        })
}

fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
}

fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

fn nlris(
    prefix: impl Strategy<Value = IpNet>,
    add_path: bool,
    range: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Nlri>> {
    vec((prefix, any::<u32>()), range).prop_map(move |v| {
        v.into_iter()
            .map(|(prefix, id)| Nlri {
                prefix,
                path_id: add_path.then_some(id),
            })
            .collect()
    })
}

fn segment(four_octet: bool) -> impl Strategy<Value = AsSegment> {
    let kinds = if four_octet {
        prop_oneof![
            Just(SegmentKind::Sequence),
            Just(SegmentKind::Set),
            Just(SegmentKind::ConfedSequence),
            Just(SegmentKind::ConfedSet)
        ]
        .boxed()
    } else {
        // Confederation segments do not survive a 2-octet session with large ASNs.
        prop_oneof![Just(SegmentKind::Sequence), Just(SegmentKind::Set)].boxed()
    };
    (kinds, vec(any::<u32>(), 1..8)).prop_map(|(kind, asns)| AsSegment { kind, asns })
}

fn path_attrs(four_octet: bool) -> impl Strategy<Value = PathAttrs> {
    let known = |t: &u8| (1..=10).contains(t) || (14..=18).contains(t) || *t == 32;
    (
        (
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ],
            vec(segment(four_octet), 0..4),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
        ),
        (
            vec(any::<u32>(), 0..6),
            vec(any::<[u8; 8]>(), 0..4),
            vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..4),
            proptest::option::of(any::<u32>()),
            vec(any::<u32>(), 0..4),
            proptest::collection::btree_map(
                any::<u8>().prop_filter("not interpreted", move |t| !known(t)),
                (any::<bool>(), vec(any::<u8>(), 0..300)),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (origin, segments, med, local_pref, atomic_aggregate, agg),
                (comms, ext, large, orig, clusters, unknown),
            )| {
                let mut a = PathAttrs {
                    origin,
                    as_path: AsPath { segments },
                    next_hop: None,
                    med,
                    local_pref,
                    atomic_aggregate,
                    aggregator: agg.map(|(asn, ip)| Aggregator {
                        asn,
                        addr: Ipv4Addr::from(ip),
                    }),
                    communities: comms.into_iter().map(Community).collect(),
                    ext_communities: ext.into_iter().map(ExtCommunity).collect(),
                    large_communities: large
                        .into_iter()
                        .map(|(global, local1, local2)| LargeCommunity {
                            global,
                            local1,
                            local2,
                        })
                        .collect(),
                    originator_id: orig.map(Ipv4Addr::from),
                    cluster_list: clusters.into_iter().map(Ipv4Addr::from).collect(),
                    unknown: unknown
                        .into_iter()
                        .map(|(type_code, (transitive, value))| RawAttr {
                            // Transitive unknowns are re-sent with Partial; generate them so.
                            flags: if transitive { 0xe0 } else { 0x80 },
                            type_code,
                            value,
                        })
                        .collect(),
                };
                a.normalize();
                a
            },
        )
}

/// A usable IPv4 next hop (not 0.0.0.0, multicast or broadcast).
fn unicast_v4() -> impl Strategy<Value = u32> {
    0x0100_0000u32..0xE000_0000
}

fn v6_next_hop() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

/// A coherent UPDATE for `ctx`: classic IPv4, MP IPv6 or IPv4 over IPv6, with
/// withdrawals of both families.
fn update(ctx: SessionCtx) -> impl Strategy<Value = Update> {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    let ap4 = ctx.add_path_tx(v4);
    let ap6 = ctx.add_path_tx(v6);
    let four = ctx.four_octet_as;
    (
        0..4u8,
        nlris(v4_prefix(), ap4, 0..20),
        proptest::option::of(nlris(v6_prefix(), ap6, 0..20)),
        nlris(v4_prefix(), ap4, 1..20),
        nlris(v6_prefix(), ap6, 0..20),
        path_attrs(four),
        unicast_v4(),
        v6_next_hop(),
    )
        .prop_map(move |(kind, w4, w6, a4, a6, mut attrs, nh4, nh6)| {
            let mut u = Update::default();
            if !w4.is_empty() {
                u.withdrawn.push((v4, w4));
            }
            if let Some(w6) = w6 {
                u.withdrawn.push((v6, w6));
            }
            match kind {
                0 => {}
                1 => {
                    attrs.next_hop = Some(NextHop::V4(Ipv4Addr::from(nh4)));
                    u.announced.push((v4, a4));
                    u.attrs = Some(attrs);
                }
                2 => {
                    attrs.next_hop = Some(nh6);
                    u.announced.push((v6, a6));
                    u.attrs = Some(attrs);
                }
                _ => {
                    // IPv4 over an IPv6 next hop (the context allows it).
                    attrs.next_hop = Some(nh6);
                    u.announced.push((v4, a4));
                    u.attrs = Some(attrs);
                }
            }
            u
        })
}

fn ctx() -> impl Strategy<Value = SessionCtx> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(four, ap4, ap6, ext)| {
            let mut c = SessionCtx {
                four_octet_as: four,
                ext_next_hop: vec![(Family::IPV4_UNICAST, Afi::Ipv6)],
                families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
                extended_messages: ext,
                max_len: if ext { 65535 } else { 4096 },
                ..Default::default()
            };
            if ap4 {
                c.add_path_rx.push(Family::IPV4_UNICAST);
                c.add_path_tx.push(Family::IPV4_UNICAST);
            }
            if ap6 {
                c.add_path_rx.push(Family::IPV6_UNICAST);
                c.add_path_tx.push(Family::IPV6_UNICAST);
            }
            c
        },
    )
}

/// RFC 6793: an AGGREGATOR with a 2-octet AS other than AS_TRANS makes the
/// receiver ignore AS4_PATH, so such combinations do not round-trip by design.
fn as4_consistent(u: &Update, ctx: &SessionCtx) -> bool {
    let Some(a) = &u.attrs else { return true };
    ctx.four_octet_as
        || !a.as_path.iter_asns().any(|x| x > 0xFFFF)
        || a.aggregator
            .is_none_or(|g| g.asn > 0xFFFF || g.asn == u32::from(AS_TRANS))
}

proptest! {
    // PROPTEST_CASES overrides the default of 512 cases per property.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn open_round_trips(open in open()) {
        let msg = Message::Open(open);
        let bytes = msg.to_bytes(&SessionCtx::default()).unwrap();
        prop_assert_eq!(frame_len(&bytes, 4096).unwrap(), Some(bytes.len()));
        prop_assert_eq!(Message::decode(&bytes, &SessionCtx::default()).unwrap(), msg);
    }

    #[test]
    fn notification_round_trips(code in any::<u8>(), sub in any::<u8>(), data in vec(any::<u8>(), 0..200)) {
        let msg = Message::Notification(Notification::new(ErrorCode::from_codes(code, sub), data));
        let bytes = msg.to_bytes(&SessionCtx::default()).unwrap();
        prop_assert_eq!(Message::decode(&bytes, &SessionCtx::default()).unwrap(), msg.clone());
        // Display never panics and names the code.
        prop_assert!(!msg.to_string().is_empty());
    }

    #[test]
    fn update_round_trips((ctx, u) in ctx().prop_flat_map(|c| (Just(c.clone()), update(c)))) {
        prop_assume!(as4_consistent(&u, &ctx));
        let msg = Message::Update(u);
        let bytes = match msg.to_bytes(&ctx) {
            Ok(b) => b,
            // Large random sets can exceed 4096 octets; that must be the only failure.
            Err(EncodeError::TooLong { len, max }) => { prop_assert!(len > max); return Ok(()); }
            Err(e) => return Err(TestCaseError::fail(format!("encode failed: {e}"))),
        };
        prop_assert!(bytes.len() <= ctx.max_len);
        let back = Message::decode(&bytes, &ctx.mirrored()).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn packing_carries_everything_in_few_messages(
        (ctx, w, a, attrs, nh) in ctx().prop_flat_map(|c| {
            let ap = c.add_path_tx(Family::IPV4_UNICAST);
            (Just(c.clone()), nlris(v4_prefix(), ap, 0..1500), nlris(v4_prefix(), ap, 0..3000), path_attrs(c.four_octet_as), unicast_v4())
        })
    ) {
        let mut attrs = attrs;
        attrs.next_hop = Some(NextHop::V4(Ipv4Addr::from(nh)));
        let attrs = attrs;
        let mut out = BytesMut::new();
        let count = match pack_updates(&ctx, &w, Some(&attrs), &a, &mut out) {
            Ok(c) => c,
            Err(EncodeError::AttributesTooLarge { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("pack failed: {e}"))),
        };
        let rx = ctx.mirrored();
        let mut buf = &out[..];
        let (mut got_w, mut got_a, mut n) = (Vec::new(), Vec::new(), 0);
        let mut total = 0;
        while let Some(len) = frame_len(buf, ctx.max_len).unwrap() {
            total += len;
            let Message::Update(u) = Message::decode(&buf[..len], &rx).unwrap() else { panic!("not an UPDATE") };
            prop_assert_eq!(&u.outcome, &UpdateOutcome::Ok);
            for (_, v) in u.withdrawn { got_w.extend(v); }
            for (_, v) in u.announced { got_a.extend(v); }
            if u.attrs.is_some() { prop_assert_eq!(u.attrs.as_ref().unwrap(), &attrs); }
            buf = &buf[len..];
            n += 1;
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(n, count);
        prop_assert_eq!(got_w, w);
        prop_assert_eq!(got_a, a);
        // Greedy bound: every message but the last is more than full minus one
        // prefix plus one attribute block; so count <= total / (max - slack) + 1.
        let slack = 19 + 4 + 4096.min(ctx.max_len) / 2;
        prop_assert!(count <= total / (ctx.max_len - slack).max(1) + 2, "count {} total {}", count, total);
    }

    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..600), kind in 0u8..8, ctx in ctx()) {
        let mut frame = vec![0xff; 16];
        frame.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        frame.push(kind);
        frame.extend_from_slice(&body);
        let _ = frame_len(&frame, ctx.max_len);
        if let Err(e) = Message::decode(&frame, &ctx) {
            let n = e.notification();
            prop_assert!(!n.to_string().is_empty());
        }
        let _ = Message::decode(&body, &ctx);
        let _ = frame_len(&body, 4096);
    }

    #[test]
    fn mutated_updates_never_panic(
        (ctx, u) in ctx().prop_flat_map(|c| (Just(c.clone()), update(c))),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let Ok(bytes) = Message::Update(u).to_bytes(&ctx) else { return Ok(()) };
        let mut b = bytes.to_vec();
        for (i, v) in flips {
            let i = 19 + i.index(b.len() - 19);
            b[i] = v;
        }
        let _ = Message::decode(&b, &ctx);
        // Also with a consistent length field after truncation.
        let len = 19 + cut.index(b.len() - 18);
        let mut t = b[..len].to_vec();
        t[16..18].copy_from_slice(&(len as u16).to_be_bytes());
        if let Ok(Message::Update(u)) = Message::decode(&t, &ctx) {
            // Whatever decoded must re-encode (possibly needing an extended length).
            let _ = Message::Update(u).to_bytes(&SessionCtx { max_len: 65535, ..ctx.clone() });
        }
    }
}
