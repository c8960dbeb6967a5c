//! Path attribute values: type codes, flags, the AS path in its 2- and 4-octet
//! forms with the RFC 6793 merge, and the encoding of a [`PathAttrs`] set.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::AS_TRANS;
use super::error::EncodeError;
use super::reader::Reader;
use crate::types::{AsPath, AsSegment, PathAttrs, SegmentKind};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXT_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// The Optional and Transitive bits an attribute we interpret must carry, or
/// `None` for types we keep raw.
pub fn expected_flags(type_code: u8) -> Option<u8> {
    use code::*;
    const WK: u8 = flag::TRANSITIVE;
    const OT: u8 = flag::OPTIONAL | flag::TRANSITIVE;
    const ON: u8 = flag::OPTIONAL;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => WK,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => ON,
        AGGREGATOR | COMMUNITIES | EXT_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITIES => OT,
        _ => return None,
    })
}

/// Decode an AS_PATH or AS4_PATH value with 2- or 4-octet AS numbers.
pub fn decode_as_path(value: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = r.u8().ok_or("truncated segment header")?;
        let kind = SegmentKind::from_code(kind).ok_or("unknown segment type")?;
        let count = r.u8().ok_or("truncated segment header")?;
        if count == 0 {
            return Err("empty segment");
        }
        let width = if four_octet { 4 } else { 2 };
        let body = r
            .take(usize::from(count) * width)
            .ok_or("segment overruns the attribute")?;
        let asns = body
            .chunks_exact(width)
            .map(|c| {
                if four_octet {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                }
            })
            .collect();
        segments.push(AsSegment { kind, asns });
    }
    Ok(AsPath { segments })
}

/// Encode an AS path. With `four_octet` false, AS numbers above 65535 become
/// AS_TRANS. Segments longer than 255 are split; empty segments are skipped.
/// With `skip_confed`, confederation segments are left out (for AS4_PATH).
pub fn encode_as_path(path: &AsPath, four_octet: bool, skip_confed: bool, out: &mut BytesMut) {
    for seg in &path.segments {
        if skip_confed
            && matches!(
                seg.kind,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet
            )
        {
            continue;
        }
        for chunk in seg.asns.chunks(255) {
            out.put_u8(seg.kind.code());
            out.put_u8(chunk.len() as u8);
            for &asn in chunk {
                if four_octet {
                    out.put_u32(asn);
                } else {
                    out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                }
            }
        }
    }
}

/// Does the path need AS4_PATH when sent to a 2-octet speaker?
pub fn needs_as4(path: &AsPath) -> bool {
    path.segments
        .iter()
        .filter(|s| matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set))
        .any(|s| s.asns.iter().any(|&a| a > 0xFFFF))
}

/// Number of AS numbers for the RFC 6793 §4.2.3 comparison: a SET counts as one,
/// confederation segments count as none.
fn counted_len(path: &AsPath) -> usize {
    path.path_len()
}

/// Reconstruct the path from AS_PATH and AS4_PATH (RFC 6793 §4.2.3): when AS_PATH
/// is shorter than AS4_PATH, AS4_PATH is ignored; otherwise the leading AS
/// numbers of AS_PATH that AS4_PATH lacks (and any leading confederation
/// segments) are kept in front of AS4_PATH.
pub fn merge_as4_path(as_path: &AsPath, as4_path: &AsPath) -> AsPath {
    let n2 = counted_len(as_path);
    let n4 = counted_len(as4_path);
    if n2 < n4 {
        return as_path.clone();
    }
    let mut take = n2 - n4;
    let mut segments = Vec::new();
    // Whether the last kept segment is a sequence cut short, to be continued by
    // the first AS4_PATH sequence.
    let mut cut = false;
    for seg in &as_path.segments {
        match seg.kind {
            SegmentKind::ConfedSequence | SegmentKind::ConfedSet => segments.push(seg.clone()),
            _ if take == 0 => break,
            SegmentKind::Set => {
                segments.push(seg.clone());
                take -= 1;
            }
            SegmentKind::Sequence => {
                let n = take.min(seg.asns.len());
                segments.push(AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: seg.asns[..n].to_vec(),
                });
                take -= n;
                cut = n < seg.asns.len();
            }
        }
    }
    let mut rest = as4_path.segments.iter().cloned();
    if cut
        && let (Some(last), Some(first)) = (segments.last_mut(), as4_path.segments.first())
        && first.kind == SegmentKind::Sequence
        && last.asns.len() + first.asns.len() <= 255
    {
        last.asns.extend_from_slice(&first.asns);
        rest.next();
    }
    segments.extend(rest);
    AsPath { segments }
}

/// Start an attribute whose value length is not known yet; returns the header
/// offset for [`end_attr`].
pub(crate) fn begin_attr(out: &mut BytesMut, flags: u8, type_code: u8) -> usize {
    let at = out.len();
    out.put_u8(flags | flag::EXTENDED_LENGTH);
    out.put_u8(type_code);
    out.put_u16(0);
    at
}

/// Finish an attribute: use the one-octet length when the value fits (moving the
/// value one octet left), the extended length otherwise.
pub(crate) fn end_attr(
    out: &mut BytesMut,
    at: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len() - at - 4;
    if len <= 255 {
        out[at] &= !flag::EXTENDED_LENGTH;
        out[at + 2] = len as u8;
        out.copy_within(at + 4.., at + 3);
        out.truncate(out.len() - 1);
        Ok(())
    } else if len <= usize::from(u16::MAX) {
        out[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    } else {
        Err(EncodeError::FieldTooLong { what, len })
    }
}

/// Write one attribute with a value already in hand.
pub(crate) fn put_attr(
    out: &mut BytesMut,
    flags: u8,
    type_code: u8,
    value: &[u8],
    what: &'static str,
) -> Result<(), EncodeError> {
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong {
            what,
            len: value.len(),
        })?;
        out.put_u8(flags | flag::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(len);
    } else {
        out.put_u8(flags & !flag::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u8(value.len() as u8);
    }
    out.put_slice(value);
    Ok(())
}

/// Is this a type code the encoder writes from the typed fields of
/// [`PathAttrs`] (or from the NLRI)? Raw attributes with such codes are not sent.
pub fn is_interpreted(type_code: u8) -> bool {
    expected_flags(type_code).is_some()
}

/// Encode every attribute of `attrs` except MP_REACH_NLRI and MP_UNREACH_NLRI, in
/// type-code order. `next_hop` is written as NEXT_HOP when given. For a 2-octet
/// peer (`four_octet_as` false), AS numbers above 65535 go out as AS_TRANS with
/// AS4_PATH / AS4_AGGREGATOR beside them. Unknown optional transitive attributes
/// get the Partial bit (RFC 4271 §5).
pub fn encode_common(
    attrs: &PathAttrs,
    four_octet_as: bool,
    next_hop: Option<Ipv4Addr>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    use code::*;
    use flag::*;
    let mut unknown = attrs
        .unknown
        .iter()
        .filter(|a| !is_interpreted(a.type_code))
        .peekable();
    let mut flush_unknown_below = |limit: u16, out: &mut BytesMut| -> Result<(), EncodeError> {
        while let Some(a) = unknown.peek() {
            if u16::from(a.type_code) >= limit {
                break;
            }
            let mut flags = a.flags & !EXTENDED_LENGTH;
            if flags & OPTIONAL != 0 && flags & TRANSITIVE != 0 {
                flags |= PARTIAL;
            }
            put_attr(out, flags, a.type_code, &a.value, "unknown attribute")?;
            unknown.next();
        }
        Ok(())
    };

    flush_unknown_below(u16::from(ORIGIN), out)?;
    put_attr(out, TRANSITIVE, ORIGIN, &[attrs.origin.code()], "ORIGIN")?;
    let at = begin_attr(out, TRANSITIVE, AS_PATH);
    encode_as_path(&attrs.as_path, four_octet_as, false, out);
    end_attr(out, at, "AS_PATH")?;
    if let Some(nh) = next_hop {
        put_attr(out, TRANSITIVE, NEXT_HOP, &nh.octets(), "NEXT_HOP")?;
    }
    if let Some(med) = attrs.med {
        put_attr(out, OPTIONAL, MED, &med.to_be_bytes(), "MED")?;
    }
    if let Some(lp) = attrs.local_pref {
        put_attr(out, TRANSITIVE, LOCAL_PREF, &lp.to_be_bytes(), "LOCAL_PREF")?;
    }
    if attrs.atomic_aggregate {
        put_attr(out, TRANSITIVE, ATOMIC_AGGREGATE, &[], "ATOMIC_AGGREGATE")?;
    }
    let mut as4_aggregator = None;
    if let Some(agg) = attrs.aggregator {
        let mut v = [0u8; 8];
        let n = if four_octet_as {
            v[..4].copy_from_slice(&agg.asn.to_be_bytes());
            v[4..].copy_from_slice(&agg.addr.octets());
            8
        } else {
            let asn = u16::try_from(agg.asn).unwrap_or(AS_TRANS);
            if agg.asn > 0xFFFF {
                as4_aggregator = Some(agg);
            }
            v[..2].copy_from_slice(&asn.to_be_bytes());
            v[2..6].copy_from_slice(&agg.addr.octets());
            6
        };
        put_attr(
            out,
            OPTIONAL | TRANSITIVE,
            AGGREGATOR,
            &v[..n],
            "AGGREGATOR",
        )?;
    }
    if !attrs.communities.is_empty() {
        let at = begin_attr(out, OPTIONAL | TRANSITIVE, COMMUNITIES);
        for c in &attrs.communities {
            out.put_u32(c.0);
        }
        end_attr(out, at, "COMMUNITIES")?;
    }
    if let Some(id) = attrs.originator_id {
        put_attr(out, OPTIONAL, ORIGINATOR_ID, &id.octets(), "ORIGINATOR_ID")?;
    }
    if !attrs.cluster_list.is_empty() {
        let at = begin_attr(out, OPTIONAL, CLUSTER_LIST);
        for c in &attrs.cluster_list {
            out.put_slice(&c.octets());
        }
        end_attr(out, at, "CLUSTER_LIST")?;
    }
    flush_unknown_below(u16::from(EXT_COMMUNITIES), out)?;
    if !attrs.ext_communities.is_empty() {
        let at = begin_attr(out, OPTIONAL | TRANSITIVE, EXT_COMMUNITIES);
        for c in &attrs.ext_communities {
            out.put_slice(&c.0);
        }
        end_attr(out, at, "EXTENDED_COMMUNITIES")?;
    }
    if !four_octet_as && needs_as4(&attrs.as_path) {
        let at = begin_attr(out, OPTIONAL | TRANSITIVE, AS4_PATH);
        encode_as_path(&attrs.as_path, true, true, out);
        end_attr(out, at, "AS4_PATH")?;
    }
    if let Some(agg) = as4_aggregator {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&agg.asn.to_be_bytes());
        v[4..].copy_from_slice(&agg.addr.octets());
        put_attr(
            out,
            OPTIONAL | TRANSITIVE,
            AS4_AGGREGATOR,
            &v,
            "AS4_AGGREGATOR",
        )?;
    }
    flush_unknown_below(u16::from(LARGE_COMMUNITIES), out)?;
    if !attrs.large_communities.is_empty() {
        let at = begin_attr(out, OPTIONAL | TRANSITIVE, LARGE_COMMUNITIES);
        for c in &attrs.large_communities {
            out.put_u32(c.global);
            out.put_u32(c.local1);
            out.put_u32(c.local2);
        }
        end_attr(out, at, "LARGE_COMMUNITY")?;
    }
    flush_unknown_below(256, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(v: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentKind::Sequence,
            asns: v.to_vec(),
        }
    }

    #[test]
    fn as4_merge_keeps_leading_2_octet_ases() {
        // A 2-octet speaker prepended 65001 to a path that had 4200000001.
        let as_path = AsPath {
            segments: vec![seq(&[65001, 23456, 65003])],
        };
        let as4 = AsPath {
            segments: vec![seq(&[4200000001, 65003])],
        };
        let merged = merge_as4_path(&as_path, &as4);
        assert_eq!(
            merged,
            AsPath {
                segments: vec![seq(&[65001, 4200000001, 65003])]
            }
        );
    }

    #[test]
    fn as4_merge_ignores_longer_as4_path() {
        let as_path = AsPath {
            segments: vec![seq(&[65001])],
        };
        let as4 = AsPath {
            segments: vec![seq(&[1, 2])],
        };
        assert_eq!(merge_as4_path(&as_path, &as4), as_path);
    }

    #[test]
    fn long_attribute_uses_extended_length() {
        let mut out = BytesMut::new();
        let at = begin_attr(&mut out, flag::OPTIONAL, 99);
        out.put_slice(&[7u8; 300]);
        end_attr(&mut out, at, "test").unwrap();
        assert_eq!(&out[..4], &[0x90, 99, 0x01, 0x2C]);
        let mut out = BytesMut::new();
        let at = begin_attr(&mut out, flag::OPTIONAL, 99);
        out.put_slice(&[7u8; 3]);
        end_attr(&mut out, at, "test").unwrap();
        assert_eq!(&out[..], &[0x80, 99, 3, 7, 7, 7]);
    }

    #[test]
    fn as_path_two_octet_uses_as_trans() {
        let p = AsPath {
            segments: vec![seq(&[65001, 4200000000])],
        };
        let mut out = BytesMut::new();
        encode_as_path(&p, false, false, &mut out);
        assert_eq!(&out[..], &[2, 2, 0xFD, 0xE9, 0x5B, 0xA0]);
        assert!(needs_as4(&p));
        assert_eq!(
            decode_as_path(&out, false).unwrap(),
            AsPath {
                segments: vec![seq(&[65001, 23456])]
            }
        );
        assert_eq!(decode_as_path(&[2, 0], true), Err("empty segment"));
        assert_eq!(
            decode_as_path(&[5, 1, 0, 0, 0, 1], true),
            Err("unknown segment type")
        );
        assert_eq!(
            decode_as_path(&[2, 2, 0, 0, 0, 1], true),
            Err("segment overruns the attribute")
        );
    }
}
