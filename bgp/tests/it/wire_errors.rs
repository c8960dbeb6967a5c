//! Error handling: the NOTIFICATION each fatal error leads to (RFC 4271 §6) and
//! the RFC 7606 outcomes of UPDATEs the session survives.

use bgp::types::*;
use bgp::wire::*;

const MARKER: [u8; 16] = [0xff; 16];

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = MARKER.to_vec();
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// An UPDATE with the given attribute octets and classic NLRI.
fn update(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    msg(2, &body)
}

const ORIGIN: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP: &[u8] = &[0x40, 3, 4, 192, 0, 2, 1];
const NLRI: &[u8] = &[24, 10, 0, 1];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn decode_update(bytes: &[u8], ctx: &SessionCtx) -> Update {
    match Message::decode(bytes, ctx).expect("session survives") {
        Message::Update(u) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

fn fatal(bytes: &[u8], ctx: &SessionCtx) -> (DecodeError, Notification) {
    let e = Message::decode(bytes, ctx).expect_err("must be fatal");
    let n = e.notification();
    (e, n)
}

fn four() -> SessionCtx {
    SessionCtx::four_octet()
}

#[test]
fn header_errors() {
    let mut k = msg(4, &[]);
    k[3] = 0;
    assert_eq!(
        fatal(&k, &four()).1.code,
        ErrorCode::MessageHeader(HeaderError::ConnectionNotSynchronized)
    );
    let (_, n) = fatal(&msg(4, &[0]), &four());
    assert_eq!(
        (n.code, n.data),
        (
            ErrorCode::MessageHeader(HeaderError::BadMessageLength),
            vec![0, 20]
        )
    );
    let (_, n) = fatal(&msg(9, &[]), &four());
    assert_eq!(
        (n.code, n.data),
        (
            ErrorCode::MessageHeader(HeaderError::BadMessageType),
            vec![9]
        )
    );
    // UPDATE shorter than 23 octets, NOTIFICATION shorter than 21.
    assert_eq!(
        fatal(&msg(2, &[0, 0]), &four()).1.code,
        ErrorCode::MessageHeader(HeaderError::BadMessageLength)
    );
    assert_eq!(
        fatal(&msg(3, &[6]), &four()).1.code,
        ErrorCode::MessageHeader(HeaderError::BadMessageLength)
    );
    // A 5000-octet UPDATE without extended messages.
    let big = msg(2, &vec![0; 5000 - 19]);
    assert_eq!(fatal(&big, &four()).0, DecodeError::BadLength { len: 5000 });
    let ext = SessionCtx {
        max_len: 65535,
        extended_messages: true,
        ..four()
    };
    // With extended messages it is framed fine (4977 default routes without
    // attributes, hence treat-as-withdraw).
    let Ok(Message::Update(u)) = Message::decode(&big, &ext) else {
        panic!("decodes with extended messages")
    };
    assert!(matches!(u.outcome, UpdateOutcome::TreatAsWithdraw(_)));
}

#[test]
fn open_errors() {
    let open = |version: u8, hold: u16, id: [u8; 4], params: &[u8]| {
        let mut b = vec![version, 0xfd, 0xe9];
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&id);
        b.push(params.len() as u8);
        b.extend_from_slice(params);
        msg(1, &b)
    };
    let (_, n) = fatal(&open(3, 90, [1, 1, 1, 1], &[]), &four());
    assert_eq!(
        (n.code, n.data),
        (ErrorCode::Open(OpenError::UnsupportedVersion), vec![0, 4])
    );
    assert_eq!(
        fatal(&open(4, 2, [1, 1, 1, 1], &[]), &four()).1.code,
        ErrorCode::Open(OpenError::UnacceptableHoldTime)
    );
    assert_eq!(
        fatal(&open(4, 90, [0, 0, 0, 0], &[]), &four()).1.code,
        ErrorCode::Open(OpenError::BadBgpIdentifier)
    );
    assert_eq!(
        fatal(&open(4, 90, [1, 1, 1, 1], &[1, 2, 0, 0]), &four())
            .1
            .code,
        ErrorCode::Open(OpenError::UnsupportedOptionalParameter)
    );
    // 4-octet AS capability with a 2-octet value.
    let (e, n) = fatal(&open(4, 90, [1, 1, 1, 1], &[2, 4, 65, 2, 0, 1]), &four());
    assert!(
        matches!(e, DecodeError::MalformedCapability { code: 65, .. }),
        "{e}"
    );
    assert_eq!(n.code, ErrorCode::Open(OpenError::Unspecific));
    // Parameter overruns the optional parameters.
    assert!(matches!(
        fatal(&open(4, 90, [1, 1, 1, 1], &[2, 9, 2, 0]), &four()).0,
        DecodeError::MalformedOpen { .. }
    ));
}

#[test]
fn route_refresh_length_error_carries_the_message() {
    let bad = msg(5, &[0, 1, 1, 1, 0]);
    let (_, n) = fatal(&bad, &four());
    assert_eq!(
        n.code,
        ErrorCode::RouteRefresh(RouteRefreshError::InvalidMessageLength)
    );
    assert_eq!(n.data, bad);
    // A plain request with trailing ORF data is accepted (ORF ignored).
    assert!(Message::decode(&msg(5, &[0, 1, 0, 1, 1, 0]), &four()).is_ok());
}

#[test]
fn valid_update_decodes_ok() {
    let u = decode_update(&update(&cat(&[ORIGIN, AS_PATH, NEXT_HOP]), NLRI), &four());
    assert_eq!(u.outcome, UpdateOutcome::Ok);
    assert_eq!(
        u.announced,
        vec![(
            Family::IPV4_UNICAST,
            vec![Nlri::new("10.0.1.0/24".parse().unwrap())]
        )]
    );
}

#[test]
fn invalid_origin_is_treat_as_withdraw() {
    let u = decode_update(
        &update(&cat(&[&[0x40, 1, 1, 7], AS_PATH, NEXT_HOP]), NLRI),
        &four(),
    );
    let UpdateOutcome::TreatAsWithdraw(issues) = &u.outcome else {
        panic!("{:?}", u.outcome)
    };
    assert_eq!(issues[0].error, AttrError::InvalidOrigin(7));
    assert_eq!(issues[0].subcode(), UpdateError::InvalidOriginAttribute);
    assert!(u.announced.is_empty() && u.attrs.is_none());
    assert_eq!(
        u.withdrawn,
        vec![(
            Family::IPV4_UNICAST,
            vec![Nlri::new("10.0.1.0/24".parse().unwrap())]
        )]
    );
}

#[test]
fn missing_mandatory_attributes_are_treat_as_withdraw() {
    let u = decode_update(&update(&cat(&[ORIGIN, AS_PATH]), NLRI), &four());
    let UpdateOutcome::TreatAsWithdraw(issues) = &u.outcome else {
        panic!()
    };
    assert_eq!(
        (issues[0].type_code, &issues[0].error),
        (3, &AttrError::Missing)
    );
    // Without NLRI nothing is missing.
    let u = decode_update(&update(ORIGIN, &[]), &four());
    assert_eq!(u.outcome, UpdateOutcome::Ok);
    // NEXT_HOP 0.0.0.0 is not usable.
    let u = decode_update(
        &update(&cat(&[ORIGIN, AS_PATH, &[0x40, 3, 4, 0, 0, 0, 0]]), NLRI),
        &four(),
    );
    assert!(matches!(u.outcome, UpdateOutcome::TreatAsWithdraw(_)));
}

#[test]
fn length_and_flag_errors_follow_rfc7606() {
    let base = [ORIGIN, AS_PATH, NEXT_HOP];
    let cases: &[(&[u8], AttrAction)] = &[
        (&[0x80, 4, 3, 0, 0, 1], AttrAction::TreatAsWithdraw), // MED of 3 octets
        (&[0x40, 5, 2, 0, 1], AttrAction::TreatAsWithdraw),    // LOCAL_PREF of 2 octets
        (&[0x40, 6, 1, 0], AttrAction::Discard),               // ATOMIC_AGGREGATE with a value
        (&[0xc0, 7, 6, 0, 1, 1, 1, 1, 1], AttrAction::Discard), // 2-octet AGGREGATOR to a 4-octet session
        (&[0xc0, 8, 3, 0, 0, 1], AttrAction::TreatAsWithdraw),  // COMMUNITIES not a multiple of 4
        (&[0xc0, 8, 0], AttrAction::TreatAsWithdraw),           // empty COMMUNITIES
        (&[0x80, 9, 5, 1, 1, 1, 1, 1], AttrAction::TreatAsWithdraw), // ORIGINATOR_ID of 5
        (&[0x80, 10, 0], AttrAction::TreatAsWithdraw),          // empty CLUSTER_LIST
        (&[0xc0, 16, 4, 0, 0, 0, 0], AttrAction::TreatAsWithdraw), // EXT_COMMUNITIES of 4
        (
            &[0xc0, 32, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            AttrAction::TreatAsWithdraw,
        ), // LARGE_COMMUNITY of 8
        (&[0x80, 4, 4, 0, 0, 0, 1], AttrAction::Discard), // second MED? no: a valid MED (see below)
        (&[0xc0, 4, 4, 0, 0, 0, 1], AttrAction::TreatAsWithdraw), // MED flagged transitive
        (&[0xc0, 17, 6, 2, 1, 0, 0, 0, 1], AttrAction::Discard), // AS4_PATH on a 4-octet session
    ];
    for (i, (attr, action)) in cases.iter().enumerate() {
        let mut parts: Vec<&[u8]> = base.to_vec();
        parts.push(attr);
        if i == 10 {
            // Duplicate MED: the copy is discarded.
            parts.push(attr);
        }
        let u = decode_update(&update(&cat(&parts), NLRI), &four());
        let issues = match (&u.outcome, action) {
            (UpdateOutcome::TreatAsWithdraw(v), AttrAction::TreatAsWithdraw) => v,
            (UpdateOutcome::AttributesDiscarded(v), AttrAction::Discard) => v,
            (o, _) => panic!("case {i}: unexpected outcome {o:?}"),
        };
        assert_eq!(issues.len(), 1, "case {i}");
        assert_eq!(issues[0].action, *action, "case {i}");
        if *action == AttrAction::Discard {
            assert_eq!(u.announced.len(), 1, "case {i}: routes kept");
        }
    }
}

#[test]
fn attribute_list_framing_errors() {
    // The last attribute claims more octets than remain: treat-as-withdraw on an
    // IPv4-only session, where the NLRI field is still found from the total length.
    let attrs = cat(&[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 4, 9, 0, 0]]);
    let u = decode_update(&update(&attrs, NLRI), &SessionCtx::four_octet());
    let UpdateOutcome::TreatAsWithdraw(issues) = &u.outcome else {
        panic!("{:?}", u.outcome)
    };
    assert!(matches!(issues[0].error, AttrError::Framing(_)));
    assert_eq!(u.withdrawn[0].1.len(), 1);
    // With IPv6 negotiated, an MP_REACH_NLRI may hide behind the error: reset.
    let ctx = SessionCtx {
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        ..four()
    };
    let (_, n) = fatal(&update(&attrs, NLRI), &ctx);
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
    // Fewer than three octets left for an attribute.
    let u = decode_update(
        &update(&cat(&[ORIGIN, AS_PATH, NEXT_HOP, &[0x40]]), NLRI),
        &four(),
    );
    assert!(matches!(u.outcome, UpdateOutcome::TreatAsWithdraw(_)));
}

#[test]
fn session_reset_cases() {
    // Withdrawn routes length beyond the message.
    let (_, n) = fatal(&msg(2, &[0, 50, 0, 0]), &four());
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
    // Total path attribute length beyond the message.
    let (_, n) = fatal(&msg(2, &[0, 0, 0, 9, 0x40, 1, 1, 0]), &four());
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
    // Prefix length 33 in the NLRI field.
    let (_, n) = fatal(
        &update(&cat(&[ORIGIN, AS_PATH, NEXT_HOP]), &[33, 1, 2, 3, 4, 5]),
        &four(),
    );
    assert_eq!(n.code, ErrorCode::Update(UpdateError::InvalidNetworkField));
    // MP_UNREACH_NLRI twice.
    let mp = [0x80, 15, 3, 0, 2, 1];
    let (_, n) = fatal(
        &update(&cat(&[ORIGIN, AS_PATH, &mp[..], &mp[..]]), &[]),
        &four(),
    );
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
    // MP_REACH_NLRI with a 5-octet IPv6 next hop.
    let mp = [0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let (e, n) = fatal(&update(&cat(&[ORIGIN, AS_PATH, &mp[..]]), &[]), &four());
    assert!(matches!(e, DecodeError::MalformedMpAttribute { .. }), "{e}");
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::OptionalAttributeError)
    );
    assert_eq!(n.data, mp.to_vec());
    // Unrecognized well-known attribute: the data is the attribute.
    let unknown = [0x40, 99, 1, 7];
    let (_, n) = fatal(&update(&cat(&[ORIGIN, &unknown[..]]), &[]), &four());
    assert_eq!(
        (n.code, n.data),
        (
            ErrorCode::Update(UpdateError::UnrecognizedWellKnownAttribute),
            unknown.to_vec()
        )
    );
}

#[test]
fn unknown_optional_attributes_are_kept_and_resent_partial() {
    let raw = [0xc0, 99, 2, 0xab, 0xcd];
    let u = decode_update(
        &update(&cat(&[ORIGIN, AS_PATH, NEXT_HOP, &raw[..]]), NLRI),
        &four(),
    );
    let attrs = u.attrs.clone().unwrap();
    assert_eq!(
        attrs.unknown,
        vec![RawAttr {
            flags: 0xc0,
            type_code: 99,
            value: vec![0xab, 0xcd]
        }]
    );
    let out = Message::Update(u).to_bytes(&four()).unwrap();
    assert!(
        out.windows(5).any(|w| w == [0xe0, 99, 2, 0xab, 0xcd]),
        "Partial bit set on re-send"
    );
}

#[test]
fn as4_reconstruction_from_two_octet_speaker() {
    let two = SessionCtx::default();
    let as_path = [0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0]; // 65001 AS_TRANS
    let as4_path = [0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00]; // 4200000000
    let aggregator_trans = [0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1];
    let as4_aggregator = [0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 1];
    let u = decode_update(
        &update(
            &cat(&[
                ORIGIN,
                &as_path[..],
                NEXT_HOP,
                &aggregator_trans[..],
                &as4_path[..],
                &as4_aggregator[..],
            ]),
            NLRI,
        ),
        &two,
    );
    let a = u.attrs.unwrap();
    assert_eq!(a.as_path, AsPath::from_sequence([65001, 4_200_000_000]));
    assert_eq!(a.aggregator.unwrap().asn, 4_200_000_000);
    // An AGGREGATOR that is not AS_TRANS means AS4_PATH and AS4_AGGREGATOR are stale.
    let aggregator_old = [0xc0, 7, 6, 0xfd, 0xea, 10, 0, 0, 1];
    let u = decode_update(
        &update(
            &cat(&[
                ORIGIN,
                &as_path[..],
                NEXT_HOP,
                &aggregator_old[..],
                &as4_path[..],
                &as4_aggregator[..],
            ]),
            NLRI,
        ),
        &two,
    );
    let a = u.attrs.unwrap();
    assert_eq!(a.as_path, AsPath::from_sequence([65001, 23456]));
    assert_eq!(a.aggregator.unwrap().asn, 65002);
    // AS4_PATH with a confederation segment is discarded.
    let bad_as4 = [0xc0, 17, 6, 3, 1, 0, 0, 0, 1];
    let u = decode_update(
        &update(&cat(&[ORIGIN, &as_path[..], NEXT_HOP, &bad_as4[..]]), NLRI),
        &two,
    );
    assert!(matches!(u.outcome, UpdateOutcome::AttributesDiscarded(_)));
    assert_eq!(
        u.attrs.unwrap().as_path,
        AsPath::from_sequence([65001, 23456])
    );
}

#[test]
fn malformed_as_path_is_treat_as_withdraw() {
    for bad in [
        &[0x40u8, 2, 2, 2, 0][..],
        &[0x40, 2, 6, 9, 1, 0, 0, 0, 1][..],
        &[0x40, 2, 4, 2, 2, 0, 0][..],
    ] {
        let u = decode_update(&update(&cat(&[ORIGIN, bad, NEXT_HOP]), NLRI), &four());
        let UpdateOutcome::TreatAsWithdraw(issues) = &u.outcome else {
            panic!("{:?}", u.outcome)
        };
        assert_eq!(issues[0].subcode(), UpdateError::MalformedAsPath);
    }
}
