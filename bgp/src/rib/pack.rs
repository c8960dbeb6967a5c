//! Packing of outbound changes into UPDATE messages, and the End-of-RIB markers.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;

use crate::types::{Afi, Family, NextHop, Nlri, PathAttrs};
use crate::wire::attrs::encode_common;
use crate::wire::nlri::encoded_len;
use crate::wire::update::mp_next_hop_len;
use crate::wire::{EncodeError, HEADER_LEN, SessionCtx, Update};

/// One change to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutChange {
    Announce(Nlri, Arc<PathAttrs>),
    Withdraw(Nlri),
}

/// The End-of-RIB markers (RFC 4724 §2) for every family the session negotiated.
pub fn end_of_rib(ctx: &SessionCtx) -> Vec<Update> {
    ctx.families
        .iter()
        .map(|f| Update::end_of_rib(*f))
        .collect()
}

fn attr_header(value_len: usize) -> usize {
    if value_len > 255 { 4 } else { 3 }
}

/// Fixed part of an UPDATE: header, withdrawn routes length, path attributes length.
const UPDATE_FIXED: usize = HEADER_LEN + 4;

/// Where announcements of one family with one attribute set go.
#[derive(Clone, Copy)]
enum Carrier {
    /// Classic NLRI field with a NEXT_HOP attribute.
    Classic,
    /// MP_REACH_NLRI whose value without NLRI has this length.
    MpReach(usize),
}

/// Split `items` (their encoded lengths given by `len`) greedily into runs whose
/// message size `size(bytes)` stays within `max`.
fn fill<T: Copy>(
    items: &[T],
    len: impl Fn(&T) -> usize,
    size: impl Fn(usize) -> usize,
    max: usize,
    mut emit: impl FnMut(Vec<T>),
) -> Result<(), EncodeError> {
    let mut cur: Vec<T> = Vec::new();
    let mut bytes = 0;
    for it in items {
        let l = len(it);
        if !cur.is_empty() && size(bytes + l) > max {
            emit(std::mem::take(&mut cur));
            bytes = 0;
        }
        if cur.is_empty() && size(l) > max {
            return Err(EncodeError::AttributesTooLarge { len: size(l), max });
        }
        cur.push(*it);
        bytes += l;
    }
    if !cur.is_empty() {
        emit(cur);
    }
    Ok(())
}

/// Pack `changes` into as few UPDATEs as fit `ctx.max_len` (greedily: each message
/// is filled before the next starts). Withdrawals come first, IPv4 in the classic
/// Withdrawn Routes field and IPv6 in MP_UNREACH_NLRI; then, for each distinct
/// attribute set (interned sets are grouped by pointer, in order of first
/// appearance), its IPv4 prefixes (classic NLRI with an IPv4 next hop, MP_REACH_NLRI
/// with an IPv6 one where `ctx` allows RFC 8950) and its IPv6 prefixes.
///
/// Sizes are computed with the wire module's own encoders and lengths, so every
/// message encodes within `ctx.max_len`. Each NLRI should appear at most once in
/// `changes`. Families other than IPv4 and IPv6
/// unicast are not handled: prefixes are sent as unicast.
pub fn pack(changes: &[OutChange], ctx: &SessionCtx) -> Result<Vec<Update>, EncodeError> {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    let max = ctx.max_len;
    let mut out = Vec::new();

    // Withdrawals.
    let mut w4 = Vec::new();
    let mut w6 = Vec::new();
    // Announcements grouped by attribute set.
    let mut groups: Vec<(Arc<PathAttrs>, Vec<Nlri>, Vec<Nlri>)> = Vec::new();
    let mut index: HashMap<*const PathAttrs, usize> = HashMap::new();
    for c in changes {
        match c {
            OutChange::Withdraw(n) if n.prefix.addr().is_ipv4() => w4.push(*n),
            OutChange::Withdraw(n) => w6.push(*n),
            OutChange::Announce(n, a) => {
                let i = *index.entry(Arc::as_ptr(a)).or_insert_with(|| {
                    groups.push((Arc::clone(a), Vec::new(), Vec::new()));
                    groups.len() - 1
                });
                if n.prefix.addr().is_ipv4() {
                    groups[i].1.push(*n);
                } else {
                    groups[i].2.push(*n);
                }
            }
        }
    }

    let ap4 = ctx.add_path_tx(v4);
    let ap6 = ctx.add_path_tx(v6);
    fill(
        &w4,
        |n| encoded_len(n, ap4),
        |b| UPDATE_FIXED + b,
        max,
        |list| out.push(Update::withdraw(v4, list)),
    )?;
    fill(
        &w6,
        |n| encoded_len(n, ap6),
        |b| UPDATE_FIXED + attr_header(3 + b) + 3 + b,
        max,
        |list| out.push(Update::withdraw(v6, list)),
    )?;

    let mut scratch = BytesMut::new();
    for (attrs, list4, list6) in &groups {
        scratch.clear();
        encode_common(attrs, ctx.four_octet_as, None, &mut scratch)?;
        let common = scratch.len();
        for (family, list, add_path) in [(v4, list4, ap4), (v6, list6, ap6)] {
            if list.is_empty() {
                continue;
            }
            let nh = attrs.next_hop.ok_or(EncodeError::MissingNextHop(family))?;
            let carrier = match (family.afi, nh) {
                (Afi::Ipv4, NextHop::V4(_)) => Carrier::Classic,
                (Afi::Ipv4, NextHop::V6 { .. }) if ctx.next_hop_allowed(family, Afi::Ipv6) => {
                    Carrier::MpReach(5 + mp_next_hop_len(&nh))
                }
                (Afi::Ipv6, NextHop::V6 { .. }) => Carrier::MpReach(5 + mp_next_hop_len(&nh)),
                _ => {
                    return Err(EncodeError::NextHopFamily {
                        family,
                        next_hop: nh,
                    });
                }
            };
            let size = |b: usize| match carrier {
                Carrier::Classic => UPDATE_FIXED + common + 7 + b,
                Carrier::MpReach(fixed) => {
                    UPDATE_FIXED + common + attr_header(fixed + b) + fixed + b
                }
            };
            fill(
                list,
                |n| encoded_len(n, add_path),
                size,
                max,
                |l| out.push(Update::announce(family, l, PathAttrs::clone(attrs))),
            )?;
        }
    }
    Ok(out)
}
