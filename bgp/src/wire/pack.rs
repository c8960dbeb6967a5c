//! Outbound packing: many prefixes sharing one attribute set (and many
//! withdrawals) into as few UPDATE messages as the negotiated length allows.

use bytes::BytesMut;

use super::attrs::encode_common;
use super::ctx::SessionCtx;
use super::error::EncodeError;
use super::message::Message;
use super::nlri::encoded_len;
use super::update::{Update, mp_next_hop_len};
use crate::types::{Afi, Family, NextHop, Nlri, PathAttrs};

/// Where an item goes in an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Classic Withdrawn Routes (IPv4 unicast).
    Withdrawn4,
    /// MP_UNREACH_NLRI of a family.
    Unreach(Family),
    /// Classic NLRI (IPv4 unicast with an IPv4 next hop).
    Nlri4,
    /// MP_REACH_NLRI of a family.
    Reach(Family),
}

fn attr_header(value_len: usize) -> usize {
    if value_len > 255 { 4 } else { 3 }
}

/// Sizes that do not depend on the prefixes.
struct Sizes {
    max: usize,
    /// Attributes other than NEXT_HOP and the MP ones.
    common: usize,
    /// MP_REACH_NLRI value without NLRI (AFI, SAFI, next hop length and value, reserved).
    reach_fixed: usize,
}

/// One UPDATE being filled.
#[derive(Default)]
struct Plan {
    w4: Vec<Nlri>,
    unreach: Option<(Family, Vec<Nlri>)>,
    unreach_bytes: usize,
    nlri4: Vec<Nlri>,
    reach: Option<(Family, Vec<Nlri>)>,
    reach_bytes: usize,
    w4_bytes: usize,
    nlri4_bytes: usize,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.w4.is_empty()
            && self.unreach.is_none()
            && self.nlri4.is_empty()
            && self.reach.is_none()
    }

    fn size(&self, s: &Sizes) -> usize {
        let mut n = 23 + self.w4_bytes + self.nlri4_bytes;
        if self.unreach.is_some() {
            let v = 3 + self.unreach_bytes;
            n += attr_header(v) + v;
        }
        let announces = !self.nlri4.is_empty() || self.reach.is_some();
        if announces {
            n += s.common;
        }
        if !self.nlri4.is_empty() {
            n += 7; // NEXT_HOP
        }
        if self.reach.is_some() {
            let v = s.reach_fixed + self.reach_bytes;
            n += attr_header(v) + v;
        }
        n
    }

    /// Add `nlri` to `slot` if the slot is compatible and the result fits.
    fn try_add(&mut self, slot: Slot, nlri: Nlri, len: usize, s: &Sizes) -> bool {
        match slot {
            Slot::Unreach(f) if self.unreach.as_ref().is_some_and(|(uf, _)| *uf != f) => {
                return false;
            }
            Slot::Reach(f) if self.reach.as_ref().is_some_and(|(rf, _)| *rf != f) => return false,
            _ => {}
        }
        let before = (
            self.w4_bytes,
            self.unreach_bytes,
            self.nlri4_bytes,
            self.reach_bytes,
        );
        let fresh_unreach = matches!(slot, Slot::Unreach(_)) && self.unreach.is_none();
        let fresh_reach = matches!(slot, Slot::Reach(_)) && self.reach.is_none();
        match slot {
            Slot::Withdrawn4 => self.w4_bytes += len,
            Slot::Unreach(f) => {
                self.unreach.get_or_insert_with(|| (f, Vec::new()));
                self.unreach_bytes += len;
            }
            Slot::Nlri4 => self.nlri4_bytes += len,
            Slot::Reach(f) => {
                self.reach.get_or_insert_with(|| (f, Vec::new()));
                self.reach_bytes += len;
            }
        }
        // An empty NLRI list in nlri4 does not count as announcing; account for it.
        let nlri4_was_empty = self.nlri4.is_empty();
        if slot == Slot::Nlri4 {
            self.nlri4.push(nlri);
        }
        if self.size(s) > s.max {
            (
                self.w4_bytes,
                self.unreach_bytes,
                self.nlri4_bytes,
                self.reach_bytes,
            ) = before;
            if slot == Slot::Nlri4 {
                self.nlri4.pop();
                debug_assert_eq!(self.nlri4.is_empty(), nlri4_was_empty);
            }
            if fresh_unreach {
                self.unreach = None;
            }
            if fresh_reach {
                self.reach = None;
            }
            return false;
        }
        match slot {
            Slot::Withdrawn4 => self.w4.push(nlri),
            Slot::Unreach(_) => {
                if let Some((_, v)) = self.unreach.as_mut() {
                    v.push(nlri);
                }
            }
            Slot::Nlri4 => {}
            Slot::Reach(_) => {
                if let Some((_, v)) = self.reach.as_mut() {
                    v.push(nlri);
                }
            }
        }
        true
    }

    fn into_update(self, attrs: Option<&PathAttrs>) -> Update {
        let mut u = Update::default();
        if !self.w4.is_empty() {
            u.withdrawn.push((Family::IPV4_UNICAST, self.w4));
        }
        if let Some(x) = self.unreach {
            u.withdrawn.push(x);
        }
        if !self.nlri4.is_empty() {
            u.announced.push((Family::IPV4_UNICAST, self.nlri4));
        }
        if let Some(x) = self.reach {
            u.announced.push(x);
        }
        if !u.announced.is_empty() {
            u.attrs = attrs.cloned();
        }
        u
    }
}

/// Append to `out` the fewest UPDATE messages (within the greedy bound: each
/// message is filled before the next is started) that withdraw `withdrawn` and
/// announce `announced` with `attrs`, respecting `ctx.max_len`. Returns the number
/// of messages written. On error nothing is appended.
///
/// Prefixes are IPv4 or IPv6 unicast. IPv4 prefixes go in the classic fields when
/// the next hop is IPv4, in MP_REACH_NLRI when it is IPv6 (RFC 8950, which `ctx`
/// must allow); IPv6 prefixes need an IPv6 next hop. Withdrawals fill messages
/// first, announcements continue in the last one when there is room.
pub fn pack_updates(
    ctx: &SessionCtx,
    withdrawn: &[Nlri],
    attrs: Option<&PathAttrs>,
    announced: &[Nlri],
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    let nh = attrs.and_then(|a| a.next_hop);
    if !announced.is_empty() && attrs.is_none() {
        return Err(EncodeError::MissingAttributes);
    }
    let announce_slot = |family: Family| -> Result<Slot, EncodeError> {
        let nh = nh.ok_or(EncodeError::MissingNextHop(family))?;
        match (family.afi, nh) {
            (Afi::Ipv4, NextHop::V4(_)) => Ok(Slot::Nlri4),
            (Afi::Ipv4, NextHop::V6 { .. }) if ctx.next_hop_allowed(family, Afi::Ipv6) => {
                Ok(Slot::Reach(family))
            }
            (Afi::Ipv6, NextHop::V6 { .. }) => Ok(Slot::Reach(family)),
            _ => Err(EncodeError::NextHopFamily {
                family,
                next_hop: nh,
            }),
        }
    };
    let mut scratch = BytesMut::new();
    let common = match attrs {
        Some(a) => {
            encode_common(a, ctx.four_octet_as, None, &mut scratch)?;
            scratch.len()
        }
        None => 0,
    };
    let sizes = Sizes {
        max: ctx.max_len,
        common,
        reach_fixed: 5 + nh.map_or(0, |n| mp_next_hop_len(&n)),
    };

    let mut plans: Vec<Plan> = Vec::new();
    let mut cur = Plan::default();
    let items = withdrawn
        .iter()
        .map(|n| (true, n))
        .filter(|(_, n)| n.prefix.addr().is_ipv4())
        .chain(
            withdrawn
                .iter()
                .map(|n| (true, n))
                .filter(|(_, n)| n.prefix.addr().is_ipv6()),
        )
        .chain(
            announced
                .iter()
                .map(|n| (false, n))
                .filter(|(_, n)| n.prefix.addr().is_ipv4()),
        )
        .chain(
            announced
                .iter()
                .map(|n| (false, n))
                .filter(|(_, n)| n.prefix.addr().is_ipv6()),
        );
    for (is_withdrawal, n) in items {
        let family = if n.prefix.addr().is_ipv4() { v4 } else { v6 };
        let slot = match (is_withdrawal, family == v4) {
            (true, true) => Slot::Withdrawn4,
            (true, false) => Slot::Unreach(family),
            (false, _) => announce_slot(family)?,
        };
        let add_path = ctx.add_path_tx(family);
        let len = encoded_len(n, add_path);
        if cur.try_add(slot, *n, len, &sizes) {
            continue;
        }
        if !cur.is_empty() {
            plans.push(std::mem::take(&mut cur));
        }
        if !cur.try_add(slot, *n, len, &sizes) {
            return Err(EncodeError::AttributesTooLarge {
                len: Plan::default().size(&sizes) + common,
                max: ctx.max_len,
            });
        }
    }
    if !cur.is_empty() {
        plans.push(cur);
    }
    let start = out.len();
    let count = plans.len();
    for plan in plans {
        let msg = Message::Update(plan.into_update(attrs));
        if let Err(e) = msg.encode(ctx, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(count)
}
