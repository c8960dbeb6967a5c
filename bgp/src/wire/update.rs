//! UPDATE messages (RFC 4271 §4.3, RFC 4760) with RFC 7606 revised error handling.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::AS_TRANS;
use super::attrs::{self, code, flag};
use super::ctx::SessionCtx;
use super::error::{AttrAction, AttrError, AttrIssue, DecodeError, EncodeError, NlriError};
use super::nlri;
use super::reader::Reader;
use crate::types::{
    Afi, Aggregator, AsPath, Community, ExtCommunity, Family, LargeCommunity, NextHop, Nlri,
    Origin, PathAttrs, RawAttr, Safi, SegmentKind,
};

/// How an UPDATE came through RFC 7606 error handling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UpdateOutcome {
    /// Nothing was wrong.
    #[default]
    Ok,
    /// An attribute error requires treat-as-withdraw: the routes the UPDATE
    /// announced have been moved to [`Update::withdrawn`] and the attributes
    /// dropped. The session stays up. Any discarded attributes are listed too.
    TreatAsWithdraw(Vec<AttrIssue>),
    /// Some attributes were malformed or repeated and were dropped; the rest of the
    /// UPDATE is valid.
    AttributesDiscarded(Vec<AttrIssue>),
}

/// An UPDATE message.
///
/// Routes are grouped per family. On the wire, IPv4 unicast goes in the classic
/// Withdrawn Routes and NLRI fields when it can (IPv4 next hop), every other
/// family (and IPv4 with an IPv6 next hop, RFC 8950) in MP_REACH_NLRI /
/// MP_UNREACH_NLRI; one UPDATE carries at most one of each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<(Family, Vec<Nlri>)>,
    /// `None` when the UPDATE carries no path attribute besides MP_UNREACH_NLRI.
    /// `next_hop` holds the MP_REACH_NLRI next hop when there is one, else NEXT_HOP.
    pub attrs: Option<PathAttrs>,
    pub announced: Vec<(Family, Vec<Nlri>)>,
    /// The NEXT_HOP attribute, only when the UPDATE also has MP_REACH_NLRI (so two
    /// next hops travel together: NEXT_HOP for classic IPv4 NLRI, the MP one for
    /// the MP family).
    pub classic_next_hop: Option<Ipv4Addr>,
    /// Decode result; ignored by the encoder.
    pub outcome: UpdateOutcome,
}

impl Update {
    /// An announcement of `nlri` (all of one family) with `attrs`.
    pub fn announce(family: Family, nlri: Vec<Nlri>, attrs: PathAttrs) -> Self {
        Update {
            announced: vec![(family, nlri)],
            attrs: Some(attrs),
            ..Default::default()
        }
    }

    /// A withdrawal of `nlri` (all of one family).
    pub fn withdraw(family: Family, nlri: Vec<Nlri>) -> Self {
        Update {
            withdrawn: vec![(family, nlri)],
            ..Default::default()
        }
    }

    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4
    /// unicast, an empty MP_UNREACH_NLRI for the others.
    pub fn end_of_rib(family: Family) -> Self {
        if family == Family::IPV4_UNICAST {
            Update::default()
        } else {
            Update::withdraw(family, Vec::new())
        }
    }

    /// The family this UPDATE marks the end of the initial table for, if it is an
    /// End-of-RIB marker.
    pub fn is_end_of_rib(&self) -> Option<Family> {
        if self.attrs.is_some() || !self.announced.is_empty() || self.outcome != UpdateOutcome::Ok {
            return None;
        }
        match self.withdrawn.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [(f, v)] if v.is_empty() => Some(*f),
            _ => None,
        }
    }

    /// Number of announced and withdrawn prefixes.
    pub fn prefix_count(&self) -> (usize, usize) {
        let a = self.announced.iter().map(|(_, v)| v.len()).sum();
        let w = self.withdrawn.iter().map(|(_, v)| v.len()).sum();
        (a, w)
    }

    /// Decode the body of an UPDATE (after the header).
    pub fn decode_body(body: &[u8], ctx: &SessionCtx) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or(DecodeError::MalformedAttributeList {
            reason: "truncated withdrawn routes length",
        })?;
        let wd = r
            .take(usize::from(wlen))
            .ok_or(DecodeError::MalformedAttributeList {
                reason: "withdrawn routes length exceeds the message",
            })?;
        let alen = r.u16().ok_or(DecodeError::MalformedAttributeList {
            reason: "truncated total path attribute length",
        })?;
        let abuf = r
            .take(usize::from(alen))
            .ok_or(DecodeError::MalformedAttributeList {
                reason: "total path attribute length exceeds the message",
            })?;
        let nbuf = r.rest();
        let v4 = Family::IPV4_UNICAST;
        let withdrawn4 = nlri::decode_all(wd, v4, ctx.add_path_rx(v4)).map_err(|reason| {
            DecodeError::InvalidNetwork {
                section: "withdrawn routes",
                reason,
            }
        })?;
        let nlri4 = nlri::decode_all(nbuf, v4, ctx.add_path_rx(v4)).map_err(|reason| {
            DecodeError::InvalidNetwork {
                section: "NLRI",
                reason,
            }
        })?;

        let mut p = AttrParser::new(ctx);
        p.parse(abuf)?;
        p.finish(withdrawn4, nlri4)
    }

    /// Encode the body of an UPDATE (after the header).
    pub fn encode_body(&self, ctx: &SessionCtx, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v4 = Family::IPV4_UNICAST;
        // Withdrawals: IPv4 unicast in the classic field, one other family in
        // MP_UNREACH_NLRI.
        let mut unreach: Option<Family> = None;
        for (f, _) in &self.withdrawn {
            if *f != v4 {
                check_family(*f)?;
                match unreach {
                    Some(u) if u != *f => return Err(EncodeError::TwoMpUnreach(u, *f)),
                    _ => unreach = Some(*f),
                }
            }
        }
        let at = out.len();
        out.put_u16(0);
        for (f, list) in self.withdrawn.iter().filter(|(f, _)| *f == v4) {
            put_nlri(list, *f, ctx.add_path_tx(*f), out)?;
        }
        let wlen = out.len() - at - 2;
        out[at..at + 2].copy_from_slice(&(wlen as u16).to_be_bytes());

        // Announcements: decide which go classic and which go in MP_REACH_NLRI.
        let nh = self.attrs.as_ref().and_then(|a| a.next_hop);
        let v4_count = self.announced.iter().filter(|(f, _)| *f == v4).count();
        let other_mp = self.announced.iter().any(|(f, _)| *f != v4);
        let all_v4_classic = matches!(nh, Some(NextHop::V4(_)));
        let first_v4_classic = all_v4_classic || (v4_count >= 2 || (v4_count == 1 && other_mp));
        let mut classic: Vec<&[Nlri]> = Vec::new();
        let mut mp: Option<(Family, Vec<&[Nlri]>)> = None;
        let mut seen_v4 = 0;
        for (f, list) in &self.announced {
            let is_classic = *f == v4 && (all_v4_classic || (seen_v4 == 0 && first_v4_classic));
            if *f == v4 {
                seen_v4 += 1;
            }
            if is_classic {
                classic.push(list);
                continue;
            }
            check_family(*f)?;
            match &mut mp {
                Some((m, lists)) if *m == *f => lists.push(list),
                Some((m, _)) => return Err(EncodeError::TwoMpReach(*m, *f)),
                None => mp = Some((*f, vec![list])),
            }
        }
        let attrs = match &self.attrs {
            Some(a) => Some(a),
            None if self.announced.is_empty() => None,
            None => return Err(EncodeError::MissingAttributes),
        };
        let classic_nh = if !classic.is_empty() {
            let nh = self.classic_next_hop.or(match nh {
                Some(NextHop::V4(a)) => Some(a),
                _ => None,
            });
            Some(nh.ok_or(EncodeError::MissingNextHop(v4))?)
        } else if mp.is_some() {
            self.classic_next_hop
        } else {
            match nh {
                Some(NextHop::V4(a)) => Some(a),
                _ => self.classic_next_hop,
            }
        };

        let at = out.len();
        out.put_u16(0);
        if let Some((family, lists)) = &mp {
            let nh = nh.ok_or(EncodeError::MissingNextHop(*family))?;
            encode_mp_reach(*family, &nh, lists, ctx, out)?;
        }
        if let Some(family) = unreach {
            let a = attrs::begin_attr(out, flag::OPTIONAL, code::MP_UNREACH_NLRI);
            out.put_u16(family.afi.code());
            out.put_u8(family.safi.code());
            for (_, list) in self.withdrawn.iter().filter(|(f, _)| *f == family) {
                put_nlri(list, family, ctx.add_path_tx(family), out)?;
            }
            attrs::end_attr(out, a, "MP_UNREACH_NLRI")?;
        }
        if let Some(attrs) = attrs {
            attrs::encode_common(attrs, ctx.four_octet_as, classic_nh, out)?;
        }
        let alen = out.len() - at - 2;
        let alen16 = u16::try_from(alen).map_err(|_| EncodeError::FieldTooLong {
            what: "path attributes",
            len: alen,
        })?;
        out[at..at + 2].copy_from_slice(&alen16.to_be_bytes());
        for list in classic {
            put_nlri(list, v4, ctx.add_path_tx(v4), out)?;
        }
        Ok(())
    }
}

fn check_family(f: Family) -> Result<(), EncodeError> {
    match (f.afi, f.safi) {
        (Afi::Ipv4 | Afi::Ipv6, Safi::Unicast | Safi::Multicast) => Ok(()),
        _ => Err(EncodeError::UnsupportedFamily(f)),
    }
}

fn put_nlri(
    list: &[Nlri],
    family: Family,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    for n in list {
        if Family::of(&n.prefix).afi != family.afi {
            return Err(EncodeError::PrefixFamily {
                prefix: n.prefix,
                family,
            });
        }
        nlri::encode(n, add_path, out);
    }
    Ok(())
}

/// Length of the MP_REACH_NLRI next hop field for `nh`.
pub(crate) fn mp_next_hop_len(nh: &NextHop) -> usize {
    match nh {
        NextHop::V4(_) => 4,
        NextHop::V6 {
            link_local: None, ..
        } => 16,
        NextHop::V6 {
            link_local: Some(_),
            ..
        } => 32,
    }
}

fn encode_mp_reach(
    family: Family,
    nh: &NextHop,
    lists: &[&[Nlri]],
    ctx: &SessionCtx,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let nh_afi = match nh {
        NextHop::V4(_) => Afi::Ipv4,
        NextHop::V6 { .. } => Afi::Ipv6,
    };
    // IPv6 routes need an IPv6 next hop; IPv4 routes may use IPv6 under RFC 8950.
    let allowed = match family.afi {
        Afi::Ipv6 => nh_afi == Afi::Ipv6,
        _ => nh_afi == Afi::Ipv4 || ctx.next_hop_allowed(family, nh_afi),
    };
    if !allowed {
        return Err(EncodeError::NextHopFamily {
            family,
            next_hop: *nh,
        });
    }
    let a = attrs::begin_attr(out, flag::OPTIONAL, code::MP_REACH_NLRI);
    out.put_u16(family.afi.code());
    out.put_u8(family.safi.code());
    out.put_u8(mp_next_hop_len(nh) as u8);
    match nh {
        NextHop::V4(addr) => out.put_slice(&addr.octets()),
        NextHop::V6 { global, link_local } => {
            out.put_slice(&global.octets());
            if let Some(ll) = link_local {
                out.put_slice(&ll.octets());
            }
        }
    }
    out.put_u8(0);
    for list in lists {
        put_nlri(list, family, ctx.add_path_tx(family), out)?;
    }
    attrs::end_attr(out, a, "MP_REACH_NLRI")
}

/// Tracks which attribute types were seen (for duplicate detection).
#[derive(Default)]
struct Seen([u64; 4]);

impl Seen {
    /// Mark `t` seen; returns whether it had been seen before.
    fn insert(&mut self, t: u8) -> bool {
        let (w, b) = (usize::from(t / 64), t % 64);
        let was = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        was
    }
}

struct AttrParser<'c> {
    ctx: &'c SessionCtx,
    attrs: PathAttrs,
    any_path_attr: bool,
    seen: Seen,
    issues: Vec<AttrIssue>,
    origin: bool,
    as_path: Option<AsPath>,
    as4_path: Option<AsPath>,
    aggregator: Option<Aggregator>,
    as4_aggregator: Option<Aggregator>,
    next_hop: Option<Ipv4Addr>,
    mp_reach: Option<(Family, NextHop, Vec<Nlri>)>,
    mp_unreach: Option<(Family, Vec<Nlri>)>,
    framing_error: bool,
}

impl<'c> AttrParser<'c> {
    fn new(ctx: &'c SessionCtx) -> Self {
        AttrParser {
            ctx,
            attrs: PathAttrs::default(),
            any_path_attr: false,
            seen: Seen::default(),
            issues: Vec::new(),
            origin: false,
            as_path: None,
            as4_path: None,
            aggregator: None,
            as4_aggregator: None,
            next_hop: None,
            mp_reach: None,
            mp_unreach: None,
            framing_error: false,
        }
    }

    fn issue(&mut self, type_code: u8, error: AttrError, action: AttrAction) {
        self.issues.push(AttrIssue {
            type_code,
            error,
            action,
        });
    }

    fn parse(&mut self, buf: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(buf);
        while !r.is_empty() {
            let start = buf.len() - r.remaining();
            let (Some(flags), Some(type_code)) = (r.u8(), r.u8()) else {
                self.framing(0, "fewer than three octets left for an attribute");
                break;
            };
            let len = if flags & flag::EXTENDED_LENGTH != 0 {
                r.u16()
            } else {
                r.u8().map(u16::from)
            };
            let Some(len) = len else {
                self.framing(type_code, "truncated attribute header");
                break;
            };
            let Some(value) = r.take(usize::from(len)) else {
                self.framing(type_code, "attribute length exceeds the path attributes");
                break;
            };
            let whole = &buf[start..buf.len() - r.remaining()];
            self.attribute(flags, type_code, value, whole)?;
        }
        Ok(())
    }

    fn framing(&mut self, type_code: u8, reason: &'static str) {
        self.framing_error = true;
        self.issue(
            type_code,
            AttrError::Framing(reason),
            AttrAction::TreatAsWithdraw,
        );
    }

    fn attribute(
        &mut self,
        flags: u8,
        t: u8,
        value: &[u8],
        whole: &[u8],
    ) -> Result<(), DecodeError> {
        use AttrAction::{Discard, TreatAsWithdraw as Taw};
        let is_mp = t == code::MP_REACH_NLRI || t == code::MP_UNREACH_NLRI;
        if self.seen.insert(t) {
            if is_mp {
                return Err(DecodeError::MalformedAttributeList {
                    reason: "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                });
            }
            self.issue(t, AttrError::Duplicate, Discard);
            return Ok(());
        }
        if t != code::MP_UNREACH_NLRI {
            self.any_path_attr = true;
        }
        let Some(expected) = attrs::expected_flags(t) else {
            if flags & flag::OPTIONAL == 0 {
                return Err(DecodeError::UnrecognizedWellKnown {
                    type_code: t,
                    attr: whole.to_vec(),
                });
            }
            self.attrs.unknown.push(RawAttr {
                flags: flags & !flag::EXTENDED_LENGTH,
                type_code: t,
                value: value.to_vec(),
            });
            return Ok(());
        };
        if flags & (flag::OPTIONAL | flag::TRANSITIVE) != expected {
            if is_mp {
                return Err(DecodeError::AttributeFlags {
                    type_code: t,
                    flags,
                    attr: whole.to_vec(),
                });
            }
            let action = match t {
                code::ATOMIC_AGGREGATE
                | code::AGGREGATOR
                | code::AS4_PATH
                | code::AS4_AGGREGATOR => Discard,
                _ => Taw,
            };
            self.issue(t, AttrError::Flags { flags }, action);
            return Ok(());
        }
        let len_err = AttrError::Length { len: value.len() };
        let four = self.ctx.four_octet_as;
        match t {
            code::ORIGIN => match value {
                [o] => match Origin::from_code(*o) {
                    Some(o) => {
                        self.attrs.origin = o;
                        self.origin = true;
                    }
                    None => self.issue(t, AttrError::InvalidOrigin(*o), Taw),
                },
                _ => self.issue(t, len_err, Taw),
            },
            code::AS_PATH => match attrs::decode_as_path(value, four) {
                Ok(p) => self.as_path = Some(p),
                Err(e) => self.issue(t, AttrError::MalformedAsPath(e), Taw),
            },
            code::NEXT_HOP => match <[u8; 4]>::try_from(value) {
                Ok(a) => self.next_hop = Some(Ipv4Addr::from(a)),
                Err(_) => self.issue(t, len_err, Taw),
            },
            code::MED | code::LOCAL_PREF | code::ORIGINATOR_ID => {
                match <[u8; 4]>::try_from(value) {
                    Ok(a) => match t {
                        code::MED => self.attrs.med = Some(u32::from_be_bytes(a)),
                        code::LOCAL_PREF => self.attrs.local_pref = Some(u32::from_be_bytes(a)),
                        _ => self.attrs.originator_id = Some(Ipv4Addr::from(a)),
                    },
                    Err(_) => self.issue(t, len_err, Taw),
                }
            }
            code::ATOMIC_AGGREGATE => {
                if value.is_empty() {
                    self.attrs.atomic_aggregate = true;
                } else {
                    self.issue(t, len_err, Discard);
                }
            }
            code::AGGREGATOR => {
                let want = if four { 8 } else { 6 };
                if value.len() != want {
                    self.issue(t, len_err, Discard);
                } else {
                    let (asn, addr) = value.split_at(want - 4);
                    let asn = if four {
                        u32::from_be_bytes([asn[0], asn[1], asn[2], asn[3]])
                    } else {
                        u32::from(u16::from_be_bytes([asn[0], asn[1]]))
                    };
                    let addr = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                    self.aggregator = Some(Aggregator { asn, addr });
                }
            }
            code::COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    self.issue(t, len_err, Taw);
                } else {
                    self.attrs.communities = value
                        .chunks_exact(4)
                        .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                        .collect();
                }
            }
            code::CLUSTER_LIST => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    self.issue(t, len_err, Taw);
                } else {
                    self.attrs.cluster_list = value
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        .collect();
                }
            }
            code::EXT_COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(8) {
                    self.issue(t, len_err, Taw);
                } else {
                    self.attrs.ext_communities = value
                        .chunks_exact(8)
                        .map(|c| {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(c);
                            ExtCommunity(b)
                        })
                        .collect();
                }
            }
            code::LARGE_COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(12) {
                    self.issue(t, len_err, Taw);
                } else {
                    let be = |c: &[u8]| u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                    self.attrs.large_communities = value
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global: be(&c[0..4]),
                            local1: be(&c[4..8]),
                            local2: be(&c[8..12]),
                        })
                        .collect();
                }
            }
            code::AS4_PATH => {
                if four {
                    self.issue(t, AttrError::UnexpectedAs4, Discard);
                } else {
                    match attrs::decode_as_path(value, true) {
                        Ok(p)
                            if p.segments.iter().any(|s| {
                                matches!(
                                    s.kind,
                                    SegmentKind::ConfedSequence | SegmentKind::ConfedSet
                                )
                            }) =>
                        {
                            self.issue(
                                t,
                                AttrError::MalformedAsPath("confederation segment in AS4_PATH"),
                                Discard,
                            )
                        }
                        Ok(p) => self.as4_path = Some(p),
                        Err(e) => self.issue(t, AttrError::MalformedAsPath(e), Discard),
                    }
                }
            }
            code::AS4_AGGREGATOR => {
                if four {
                    self.issue(t, AttrError::UnexpectedAs4, Discard);
                } else if let Ok(v) = <[u8; 8]>::try_from(value) {
                    self.as4_aggregator = Some(Aggregator {
                        asn: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                        addr: Ipv4Addr::new(v[4], v[5], v[6], v[7]),
                    });
                } else {
                    self.issue(t, len_err, Discard);
                }
            }
            code::MP_REACH_NLRI => self.mp_reach(value, whole)?,
            code::MP_UNREACH_NLRI => self.mp_unreach(value, whole)?,
            _ => {}
        }
        Ok(())
    }

    fn mp_family(
        &mut self,
        t: u8,
        r: &mut Reader<'_>,
        name: &'static str,
        whole: &[u8],
    ) -> Result<Option<Family>, DecodeError> {
        let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
            return Err(mp_err(name, "truncated AFI/SAFI", None, whole));
        };
        let family = Family::new(Afi::from_code(afi), Safi::from_code(safi));
        if check_family(family).is_err() {
            // A family we never negotiate: its NLRI cannot be interpreted. Drop it.
            self.issue(t, AttrError::UnsupportedFamily(family), AttrAction::Discard);
            return Ok(None);
        }
        Ok(Some(family))
    }

    fn mp_reach(&mut self, value: &[u8], whole: &[u8]) -> Result<(), DecodeError> {
        const NAME: &str = "MP_REACH_NLRI";
        let mut r = Reader::new(value);
        let Some(family) = self.mp_family(code::MP_REACH_NLRI, &mut r, NAME, whole)? else {
            return Ok(());
        };
        let err = |reason| mp_err(NAME, reason, Some(family), whole);
        let nh_len = r.u8().ok_or(err("truncated next hop length"))?;
        let nh = r
            .take(usize::from(nh_len))
            .ok_or(err("next hop overruns the attribute"))?;
        let v6 = |b: &[u8]| {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            Ipv6Addr::from(o)
        };
        let next_hop = match (family.afi, nh.len()) {
            (Afi::Ipv4, 4) => NextHop::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])),
            (_, 16) => NextHop::V6 {
                global: v6(nh),
                link_local: None,
            },
            (_, 32) => NextHop::V6 {
                global: v6(&nh[..16]),
                link_local: Some(v6(&nh[16..])),
            },
            _ => return Err(err("next hop length is invalid for the family")),
        };
        // Reserved octet (the old SNPA count), ignored as RFC 4760 asks.
        r.u8().ok_or(err("truncated reserved octet"))?;
        let list = nlri::decode_all(r.rest(), family, self.ctx.add_path_rx(family))
            .map_err(|e| err(nlri_reason(e)))?;
        self.mp_reach = Some((family, next_hop, list));
        Ok(())
    }

    fn mp_unreach(&mut self, value: &[u8], whole: &[u8]) -> Result<(), DecodeError> {
        const NAME: &str = "MP_UNREACH_NLRI";
        let mut r = Reader::new(value);
        let Some(family) = self.mp_family(code::MP_UNREACH_NLRI, &mut r, NAME, whole)? else {
            return Ok(());
        };
        let list = nlri::decode_all(r.rest(), family, self.ctx.add_path_rx(family))
            .map_err(|e| mp_err(NAME, nlri_reason(e), Some(family), whole))?;
        self.mp_unreach = Some((family, list));
        Ok(())
    }

    fn finish(mut self, withdrawn4: Vec<Nlri>, nlri4: Vec<Nlri>) -> Result<Update, DecodeError> {
        // RFC 7606 §4: with a malformed attribute list, treat-as-withdraw needs all
        // the NLRI; if MP_REACH_NLRI may be hidden in the unparsed part, only a
        // session reset is safe.
        if self.framing_error
            && self.mp_reach.is_none()
            && self.ctx.families.iter().any(|f| *f != Family::IPV4_UNICAST)
        {
            return Err(DecodeError::MalformedAttributeList {
                reason: "attribute list is malformed and MP_REACH_NLRI cannot be located",
            });
        }
        // RFC 6793 §4.2.3: rebuild 4-octet values from a 2-octet speaker.
        if !self.ctx.four_octet_as {
            let ignore_as4 = matches!(self.aggregator, Some(a) if a.asn != u32::from(AS_TRANS));
            if ignore_as4 {
                self.as4_path = None;
                self.as4_aggregator = None;
            }
            if let (Some(agg), Some(as4)) = (self.aggregator.as_mut(), self.as4_aggregator) {
                *agg = as4;
            }
            if let (Some(p), Some(p4)) = (self.as_path.as_mut(), self.as4_path.as_ref()) {
                *p = attrs::merge_as4_path(p, p4);
            }
        }
        self.attrs.aggregator = self.aggregator;
        let has_nlri = !nlri4.is_empty()
            || self
                .mp_reach
                .as_ref()
                .is_some_and(|(_, _, v)| !v.is_empty());
        if has_nlri {
            if !self.origin && !self.seen_code(code::ORIGIN) {
                self.issue(
                    code::ORIGIN,
                    AttrError::Missing,
                    AttrAction::TreatAsWithdraw,
                );
            }
            if self.as_path.is_none() && !self.seen_code(code::AS_PATH) {
                self.issue(
                    code::AS_PATH,
                    AttrError::Missing,
                    AttrAction::TreatAsWithdraw,
                );
            }
        }
        if !nlri4.is_empty() {
            match self.next_hop {
                None if !self.seen_code(code::NEXT_HOP) => self.issue(
                    code::NEXT_HOP,
                    AttrError::Missing,
                    AttrAction::TreatAsWithdraw,
                ),
                Some(a) if a.is_unspecified() || a.is_broadcast() || a.is_multicast() => self
                    .issue(
                        code::NEXT_HOP,
                        AttrError::InvalidNextHop(a),
                        AttrAction::TreatAsWithdraw,
                    ),
                _ => {}
            }
        }
        self.attrs.as_path = self.as_path.take().unwrap_or_default();

        let mut withdrawn = Vec::new();
        if !withdrawn4.is_empty() {
            withdrawn.push((Family::IPV4_UNICAST, withdrawn4));
        }
        if let Some((f, v)) = self.mp_unreach.take() {
            withdrawn.push((f, v));
        }
        let mut announced = Vec::new();
        if !nlri4.is_empty() {
            announced.push((Family::IPV4_UNICAST, nlri4));
        }
        let mut classic_next_hop = None;
        if let Some((f, nh, v)) = self.mp_reach.take() {
            announced.push((f, v));
            self.attrs.next_hop = Some(nh);
            classic_next_hop = self.next_hop;
        } else {
            self.attrs.next_hop = self.next_hop.map(NextHop::V4);
        }
        self.attrs.normalize();

        let withdraw_all = self
            .issues
            .iter()
            .any(|i| i.action == AttrAction::TreatAsWithdraw);
        if withdraw_all {
            for (f, v) in announced {
                match withdrawn.iter_mut().find(|(wf, _)| *wf == f) {
                    Some((_, w)) => w.extend(v),
                    None => withdrawn.push((f, v)),
                }
            }
            return Ok(Update {
                withdrawn,
                attrs: None,
                announced: Vec::new(),
                classic_next_hop: None,
                outcome: UpdateOutcome::TreatAsWithdraw(self.issues),
            });
        }
        let outcome = if self.issues.is_empty() {
            UpdateOutcome::Ok
        } else {
            UpdateOutcome::AttributesDiscarded(self.issues)
        };
        Ok(Update {
            withdrawn,
            attrs: self.any_path_attr.then_some(self.attrs),
            announced,
            classic_next_hop,
            outcome,
        })
    }

    /// Whether an attribute of this type was present at all (even if malformed).
    fn seen_code(&self, t: u8) -> bool {
        let (w, b) = (usize::from(t / 64), t % 64);
        self.seen.0[w] & (1 << b) != 0
    }
}

fn mp_err(
    name: &'static str,
    reason: &'static str,
    family: Option<Family>,
    whole: &[u8],
) -> DecodeError {
    DecodeError::MalformedMpAttribute {
        name,
        reason,
        family,
        attr: whole.to_vec(),
    }
}

fn nlri_reason(e: NlriError) -> &'static str {
    match e {
        NlriError::PrefixTooLong { .. } => "prefix length exceeds the address length",
        NlriError::Truncated => "truncated prefix",
        NlriError::TruncatedPathId => "truncated ADD-PATH path identifier",
        NlriError::UnsupportedFamily(_) => "unsupported address family",
    }
}
