//! Fuzz targets for the BGP wire codec (`bgp::wire`), shared by the libFuzzer
//! binaries in `fuzz_targets/` and by the stable harness in `src/main.rs`.
//!
//! Each target feeds arbitrary bytes to one decoder and, when the decoder accepts
//! them, checks a few invariants (a message we decoded re-encodes, and what we
//! encode we decode again). Any panic — an index out of range, an overflow (the
//! release profile keeps overflow checks and debug assertions on) or a failed
//! invariant — is a finding.

use bgp::types::{Afi, Family};
use bgp::wire::{
    HEADER_LEN, MARKER, MAX_MESSAGE_LEN, Message, Notification, Open, SessionCtx, Update,
    UpdateOutcome, frame_len,
};
use bytes::BytesMut;

/// A fuzz target: takes any bytes, returns whether the decoder accepted them.
pub type Target = fn(&[u8]) -> bool;

/// The targets by name, as the harness and `scripts/fuzz.sh` spell them.
pub const TARGETS: &[(&str, Target)] = &[
    ("framing", framing),
    ("open", open),
    ("update", update),
    ("notification", notification),
    ("bfd", bfd),
];

/// The session contexts the UPDATE and framing targets decode under; the first
/// input octet picks one.
pub fn contexts() -> Vec<SessionCtx> {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    vec![
        // Before/without negotiation: 2-octet AS, IPv4 unicast only.
        SessionCtx::default(),
        // 4-octet AS, IPv4 unicast only.
        SessionCtx::four_octet(),
        // 4-octet AS, both families, ADD-PATH received for both.
        SessionCtx {
            add_path_rx: vec![v4, v6],
            add_path_tx: vec![v4, v6],
            families: vec![v4, v6],
            ..SessionCtx::four_octet()
        },
        // Extended messages and IPv4 over an IPv6 next hop (RFC 8654, RFC 8950).
        SessionCtx {
            extended_messages: true,
            max_len: 65535,
            ext_next_hop: vec![(v4, Afi::Ipv6)],
            families: vec![v4, v6],
            route_refresh: true,
            enhanced_route_refresh: true,
            ..SessionCtx::four_octet()
        },
        // 2-octet AS with IPv6 too (AS4_PATH merge, and the RFC 7606 rule that a
        // malformed attribute list resets the session when MP_REACH may hide).
        SessionCtx {
            add_path_rx: vec![v6],
            families: vec![v4, v6],
            ..SessionCtx::default()
        },
    ]
}

fn pick_ctx(data: &[u8]) -> (SessionCtx, &[u8]) {
    let ctxs = contexts();
    match data.split_first() {
        Some((&b, rest)) => (ctxs[usize::from(b) % ctxs.len()].clone(), rest),
        None => (SessionCtx::default(), data),
    }
}

/// Wrap `body` in a header of type `kind` (length clamped to 16 bits, so an
/// oversized body gives a header that disagrees with the frame, which is a case
/// worth feeding too).
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN + body.len()).min(usize::from(u16::MAX)) as u16;
    let mut v = Vec::with_capacity(HEADER_LEN + body.len());
    v.extend_from_slice(&MARKER);
    v.extend_from_slice(&len.to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// A byte stream cut into frames and decoded message by message, as the
/// session driver does. Octet 0 picks the session context. Returns whether some
/// message was accepted (targets return this so that the stable harness can keep
/// accepted inputs as seeds).
pub fn framing(data: &[u8]) -> bool {
    let (ctx, mut buf) = pick_ctx(data);
    let mut accepted = false;
    while !buf.is_empty() {
        match frame_len(buf, ctx.max_len) {
            Ok(Some(n)) => {
                assert!(
                    (HEADER_LEN..=buf.len()).contains(&n) && n <= ctx.max_len,
                    "frame_len returned {n} for {} buffered octets",
                    buf.len()
                );
                let (msg, rest) = buf.split_at(n);
                if let Ok(m) = Message::decode(msg, &ctx) {
                    check_message(&m, &ctx);
                    accepted = true;
                }
                buf = rest;
            }
            Ok(None) => {
                // Needs more input: the frame must really be incomplete.
                if buf.len() >= HEADER_LEN {
                    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
                    assert!(
                        len > buf.len(),
                        "frame_len wants more than the {len} octets it has"
                    );
                }
                break;
            }
            Err(e) => {
                // Every decode error maps to a NOTIFICATION we can send.
                let n = e.notification();
                let _ = Message::Notification(n).to_bytes(&ctx);
                break;
            }
        }
    }
    // The whole input as one message too, whatever its header says.
    if let Ok(m) = Message::decode(buf, &ctx) {
        check_message(&m, &ctx);
    }
    accepted
}

/// An OPEN body (after the header).
pub fn open(data: &[u8]) -> bool {
    let from_body = Open::decode_body(data);
    let framed = frame(1, data);
    let from_frame = Message::decode(&framed, &SessionCtx::default());
    if let Ok(o) = &from_body {
        check_open(o);
        if framed.len() <= MAX_MESSAGE_LEN {
            assert_eq!(from_frame, Ok(Message::Open(o.clone())));
        }
    }
    if let Err(e) = &from_body {
        let _ = e.notification();
    }
    if let Ok(o) = &from_body {
        // Negotiation against ourselves and against a plain peer never panics.
        let _ = SessionCtx::negotiate(o, o);
        let plain = Open::new(65000, 90, std::net::Ipv4Addr::new(10, 0, 0, 1), vec![]);
        let _ = SessionCtx::negotiate(o, &plain);
        let _ = SessionCtx::negotiate(&plain, o);
        let _ = Message::Open(o.clone()).to_string();
    }
    from_body.is_ok()
}

/// An UPDATE body (after the header); octet 0 picks the session context.
pub fn update(data: &[u8]) -> bool {
    let (ctx, body) = pick_ctx(data);
    let from_body = Update::decode_body(body, &ctx);
    match &from_body {
        Ok(u) => check_update(u, &ctx),
        Err(e) => {
            let n = e.notification();
            let _ = Message::Notification(n).to_bytes(&ctx);
        }
    }
    let framed = frame(2, body);
    if framed.len() <= ctx.max_len {
        let from_frame = Message::decode(&framed, &ctx);
        match (&from_body, from_frame) {
            // A body shorter than 4 octets is a length error at the header.
            (_, Err(_)) if body.len() < 4 => {}
            (Ok(u), Ok(Message::Update(f))) => assert_eq!(u, &f),
            (Err(a), Err(b)) => assert_eq!(a, &b),
            (a, b) => panic!("body and frame decode disagree: {a:?} vs {b:?}"),
        }
    }
    from_body.is_ok()
}

/// A NOTIFICATION body (after the header).
pub fn notification(data: &[u8]) -> bool {
    let Ok(n) = Notification::decode_body(data) else {
        assert!(
            data.len() < 2,
            "a NOTIFICATION of {} octets failed",
            data.len()
        );
        return false;
    };
    let _ = n.to_string();
    let _ = n.shutdown_communication();
    let _ = n.hard_reset_inner().map(|i| i.to_string());
    let _ = n.max_prefixes_data();
    let mut out = BytesMut::new();
    n.encode_body(&mut out)
        .expect("a decoded NOTIFICATION encodes");
    assert_eq!(
        &out[..],
        data,
        "NOTIFICATION does not re-encode to its bytes"
    );
    let framed = frame(3, data);
    if framed.len() <= MAX_MESSAGE_LEN {
        assert_eq!(
            Message::decode(&framed, &SessionCtx::default()),
            Ok(Message::Notification(n))
        );
    }
    true
}

fn check_message(m: &Message, ctx: &SessionCtx) {
    let _ = m.to_string();
    match m {
        Message::Open(o) => check_open(o),
        Message::Update(u) => check_update(u, ctx),
        Message::Notification(n) => {
            let bytes = m.to_bytes(ctx).expect("a decoded NOTIFICATION encodes");
            assert_eq!(
                Message::decode(&bytes, ctx),
                Ok(Message::Notification(n.clone()))
            );
        }
        Message::Keepalive | Message::RouteRefresh(_) => {
            let bytes = m.to_bytes(ctx).expect("encodes");
            assert_eq!(Message::decode(&bytes, ctx).as_ref(), Ok(m));
        }
    }
}

/// A decoded OPEN re-encodes, and the encoding decodes to the same value.
fn check_open(o: &Open) {
    let ctx = SessionCtx::default();
    let _ = o.asn();
    let _ = o.families();
    let _ = o.graceful_restart();
    match Message::Open(o.clone()).to_bytes(&ctx) {
        Ok(bytes) => assert_eq!(
            Message::decode(&bytes, &ctx),
            Ok(Message::Open(o.clone())),
            "OPEN does not survive re-encoding"
        ),
        // The re-encoding puts each capability in its own parameter, which can
        // push a full OPEN beyond 4096 octets; anything else is a bug.
        Err(bgp::wire::EncodeError::TooLong { .. }) => {}
        Err(e) => panic!("a decoded OPEN does not encode: {e}"),
    }
}

/// What we encode from a decoded UPDATE we decode again; a second round trip is
/// stable.
fn check_update(u: &Update, ctx: &SessionCtx) {
    let _ = u.is_end_of_rib();
    let _ = u.prefix_count();
    let _ = Message::Update(u.clone()).to_string();
    if let UpdateOutcome::TreatAsWithdraw(issues) | UpdateOutcome::AttributesDiscarded(issues) =
        &u.outcome
    {
        for i in issues {
            let _ = i.subcode();
            let _ = i.to_string();
        }
    }
    // Encode with the context the sender had (our receive is its send).
    let tx = ctx.mirrored();
    let Ok(bytes) = Message::Update(u.clone()).to_bytes(&tx) else {
        return;
    };
    let again = match Message::decode(&bytes, ctx) {
        Ok(Message::Update(a)) => a,
        other => panic!("our own encoding of a decoded UPDATE does not decode: {other:?}"),
    };
    let bytes2 = Message::Update(again.clone())
        .to_bytes(&tx)
        .expect("a re-decoded UPDATE encodes");
    let third = match Message::decode(&bytes2, ctx) {
        Ok(Message::Update(a)) => a,
        other => panic!("second round trip does not decode: {other:?}"),
    };
    assert_eq!(again, third, "UPDATE round trip is not stable");
}

/// Seed inputs for each target: fixture-like messages built with our encoder.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    seeds::for_target(target)
}

mod seeds;

/// BFD Control packets (RFC 5880): a stream of records, each a length octet and that
/// many octets. Every record is decoded; a decoded packet re-encodes and decodes to the
/// same value, and those passing the reception checks are fed, with timer expiries in
/// between, into a session whose state machine must keep its invariants.
pub fn bfd(data: &[u8]) -> bool {
    use bgp::bfd::{BfdConfig, BfdState, ControlPacket, Input, Output, Session, check_received};
    use std::time::Duration;

    let mut session = Session::new(7, BfdConfig::default()).expect("the default config is valid");
    let mut now = Duration::ZERO;
    let mut outs = session.process(Input::Start, now, 0);
    let mut accepted = false;
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (record, next) = tail.split_at(take);
        rest = next;
        now += Duration::from_micros(u64::from(len) * 997);
        let Ok(p) = ControlPacket::decode(record) else {
            continue;
        };
        accepted = true;
        let again = ControlPacket::decode(&p.encode()).expect("a decoded packet re-encodes");
        assert_eq!(again, p, "encode/decode round trip");
        if check_received(&p).is_ok() {
            outs.extend(session.process(Input::Received(p), now, u32::from(len) << 24));
        }
        let timer = if len % 2 == 0 {
            Input::TxTimer
        } else {
            Input::DetectTimer
        };
        outs.extend(session.process(timer, now, u32::from(len).wrapping_mul(0x0101_0101)));
        for o in outs.drain(..) {
            if let Output::Send(pkt) = o {
                // What we send passes our own reception checks (a peer's).
                assert_eq!(pkt.my_discr, 7);
                assert!(pkt.detect_mult >= 1);
                let _ = ControlPacket::decode(&pkt.encode()).expect("ours decode");
            }
        }
        // The remote discriminator is known whenever the session is Up.
        if session.state() == BfdState::Up {
            assert_ne!(session.remote_discr(), 0, "Up without a remote discriminator");
        }
    }
    accepted
}
