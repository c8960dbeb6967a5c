//! Export: what each peer is sent from the Loc-RIB, decided without a per-peer copy of
//! the table.
//!
//! Each prefix has a small id in the [`Rib`]; a peer's [`PeerOut`] has two bitmaps over
//! those ids: *pending* (to be looked at again) and *sent* (announced and not withdrawn
//! since). A Loc-RIB change sets the prefix's pending bit in every peer
//! ([`Export::changed`]); [`Export::fill`] then computes what to send from the Loc-RIB
//! as it is (so a prefix that changed ten times while the peer was slow goes out once),
//! packs prefixes sharing attributes together, and hands back the encoded UPDATEs.
//! Flow control: a peer has at most [`IN_FLIGHT`] bytes handed out and not
//! acknowledged ([`PeerOut::written`]); the rest waits as pending bits. A prefix that
//! lost every path keeps its id until no peer has it pending or sent
//! ([`Export::release`]), so its withdrawal is never overtaken by a later announcement
//! under a reused id.
//!
//! What a peer is sent for a prefix ([`Export::attrs`]): what we originate (the RIB's
//! local peer), and with `export_learned` the best paths learned from other peers —
//! never back to the peer they came from (split horizon), never from one iBGP peer to
//! another, never with NO_ADVERTISE, never to eBGP with NO_EXPORT(_SUBCONFED) — each
//! through the peer's export policy. With ADD-PATH send every exportable path goes out
//! under an identifier of ours. A route whose UPDATE does not encode for the peer (too
//! large for its message size) is withdrawn from it. Only negotiated families are sent.
//!
//! Pure: no clock, no I/O; the driver moves the bytes and reports them written.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;

use super::interner::AttrInterner;
use super::pack::end_of_rib;
use super::select::PeerId;
use super::table::{Change, Path, Rib};
use crate::policy::{self, Policy, RouteContext, Verdict};
use crate::types::{Afi, AsPath, Community, Family, NextHop, Nlri, PathAttrs};
use crate::wire::{self, EncodeError, Message, SessionCtx};

/// Bytes of UPDATEs a peer may have handed out and not written before it is filled
/// again.
pub const IN_FLIGHT: usize = 256 * 1024;
/// Prefixes looked at per filling step (one round of packing).
pub const FILL_STEP: usize = 8192;

const ATTR_OPTIONAL: u8 = 0x80;
const ATTR_TRANSITIVE: u8 = 0x40;
const ATTR_PARTIAL: u8 = 0x20;

/// A growable bitmap over prefix ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`; returns whether it was clear.
    pub(crate) fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        let w = &mut self.0[i / 64];
        let was = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        !was
    }

    /// Clears bit `i`; returns whether it was set.
    pub(crate) fn clear(&mut self, i: u32) -> bool {
        let i = i as usize;
        match self.0.get_mut(i / 64) {
            Some(w) => {
                let was = *w & (1 << (i % 64)) != 0;
                *w &= !(1 << (i % 64));
                was
            }
            None => false,
        }
    }

    /// The first set bit at or after `from`, if any.
    pub(crate) fn next_from(&self, from: usize) -> Option<usize> {
        let mut wi = from / 64;
        let mut w = *self.0.get(wi)? & (!0u64 << (from % 64));
        loop {
            if w != 0 {
                return Some(wi * 64 + w.trailing_zeros() as usize);
            }
            wi += 1;
            w = *self.0.get(wi)?;
        }
    }
}

/// Routes going out with one attribute set: their NLRI, and for each its prefix id and
/// whether the peer holds an earlier version of it.
type OutGroup = (Arc<PathAttrs>, Vec<Nlri>, Vec<(u32, bool)>);

/// With ADD-PATH send: a path identifier a prefix went out under, with the attributes
/// (`None`: send again).
type SentPath = (u32, Option<Arc<PathAttrs>>);

/// What export needs to know of a session.
#[derive(Debug, Clone)]
pub struct PeerParams {
    /// The peer's address (split horizon, export policy).
    pub addr: IpAddr,
    /// Our address on the session: our next hop.
    pub local: IpAddr,
    pub ebgp: bool,
    /// What the session negotiated (families, ADD-PATH, message size).
    pub ctx: SessionCtx,
    /// Our IPv6 next hop for IPv6 routes over an IPv4 session (none: not sent).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// The export policy in effect.
    pub policy: Policy,
}

/// One peer's export state: the session's parameters, its pending and sent bitmaps,
/// the path identifiers it was sent under ADD-PATH, and its flow-control budget.
#[derive(Debug, Clone)]
pub struct PeerOut {
    pub params: PeerParams,
    /// Prefix ids to look at again, how many, and where filling goes on.
    pending: Bits,
    pending_count: usize,
    cursor: usize,
    /// Prefix ids announced to the peer and not withdrawn since, and how many.
    sent: Bits,
    advertised: u64,
    /// With ADD-PATH send: the path identifiers each prefix was announced under, and
    /// the attributes each went out with (`None`: to be sent again, after a route
    /// refresh).
    sent_paths: HashMap<u32, Vec<SentPath>>,
    /// Bytes handed out and not acknowledged yet.
    in_flight: usize,
    /// The initial table (or a refresh) went out, End-of-RIB included.
    synced: bool,
}

impl PeerOut {
    /// A session that has been sent nothing yet.
    pub fn new(params: PeerParams) -> PeerOut {
        PeerOut {
            params,
            pending: Bits::default(),
            pending_count: 0,
            cursor: 0,
            sent: Bits::default(),
            advertised: 0,
            sent_paths: HashMap::new(),
            in_flight: 0,
            synced: false,
        }
    }

    /// The prefix with this id is to be looked at again.
    pub fn mark(&mut self, id: u32) {
        if self.pending.set(id) {
            self.pending_count += 1;
        }
    }

    /// The initial table: every prefix of the RIB.
    pub fn mark_all(&mut self, rib: &Rib) {
        for id in rib.ids() {
            self.mark(id);
        }
    }

    /// A route refresh for `family` (RFC 2918): everything of the family is sent again,
    /// then End-of-RIB.
    pub fn refresh(&mut self, rib: &Rib, family: Family) {
        let ids: Vec<u32> = rib
            .ids()
            .filter(|id| {
                rib.by_id(*id)
                    .is_some_and(|(p, _)| Family::of(&p) == family)
            })
            .collect();
        for id in ids {
            self.mark(id);
        }
        for paths in self.sent_paths.values_mut() {
            for (_, attrs) in paths {
                *attrs = None;
            }
        }
        self.synced = false;
    }

    /// The writer wrote `bytes` of what [`Export::fill`] handed out.
    pub fn written(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// Prefixes the peer holds from us.
    pub fn advertised(&self) -> u64 {
        self.advertised
    }

    /// Paths the peer holds from us under ADD-PATH identifiers of ours.
    pub fn sent_paths(&self) -> usize {
        self.sent_paths.values().map(Vec::len).sum()
    }

    /// Bytes handed out and not written yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Prefixes waiting to be looked at.
    pub fn pending(&self) -> usize {
        self.pending_count
    }

    /// The ids of the prefixes the peer holds from us, in id order.
    pub fn sent_ids(&self) -> impl Iterator<Item = u32> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let id = self.sent.next_from(i)?;
            i = id + 1;
            Some(id as u32)
        })
    }

    /// Whether the prefix with this id is pending or held by the peer.
    pub fn holds(&self, id: u32) -> bool {
        self.pending.get(id) || self.sent.get(id)
    }

    /// The peer no longer holds this route (or, with ADD-PATH, this path of it).
    fn forget(&mut self, id: u32, path_id: Option<u32>) {
        if let Some(pid) = path_id
            && let Some(paths) = self.sent_paths.get_mut(&id)
        {
            paths.retain(|(p, _)| *p != pid);
            if !paths.is_empty() {
                return;
            }
            self.sent_paths.remove(&id);
        }
        if self.sent.clear(id) {
            self.advertised -= 1;
        }
    }

    /// Our next hop for a family on this session, if we can send that family at all:
    /// the session's own address; IPv4 over an IPv6 session with RFC 8950; IPv6 over an
    /// IPv4 session only with a configured IPv6 next hop.
    fn next_hop(&self, v4: bool) -> Option<NextHop> {
        let p = &self.params;
        let family = if v4 {
            Family::IPV4_UNICAST
        } else {
            Family::IPV6_UNICAST
        };
        if !p.ctx.families.contains(&family) {
            return None;
        }
        match (v4, p.local) {
            (true, IpAddr::V4(a)) => Some(NextHop::V4(a)),
            (true, IpAddr::V6(a)) => p
                .ctx
                .next_hop_allowed(Family::IPV4_UNICAST, Afi::Ipv6)
                .then_some(NextHop::V6 {
                    global: a,
                    link_local: None,
                }),
            (false, IpAddr::V6(a)) => Some(NextHop::V6 {
                global: a,
                link_local: None,
            }),
            (false, IpAddr::V4(_)) => p.next_hop_v6.map(|global| NextHop::V6 {
                global,
                link_local: None,
            }),
        }
    }
}

/// UPDATEs for one peer, encoded: one hand-over to its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub bytes: Bytes,
    /// How many UPDATE messages `bytes` holds.
    pub updates: u64,
}

/// Something [`Export::fill`] could not encode; the rest went out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportProblem {
    #[error("withdrawals not encoded: {0}")]
    Withdrawals(#[source] EncodeError),
    /// Attributes this peer cannot take (too large for its message size): the routes
    /// are not sent, and what it held of them is withdrawn.
    #[error("{count} route(s) not sent, their UPDATE does not encode: {error}")]
    Unencodable {
        count: usize,
        #[source]
        error: EncodeError,
    },
    #[error("End-of-RIB not encoded: {0}")]
    EndOfRib(#[source] EncodeError),
}

/// What one [`Export::fill`] produced, in order.
#[derive(Debug, Default)]
pub struct Filled {
    pub batches: Vec<Batch>,
    pub problems: Vec<ExportProblem>,
}

/// The export engine: the speaker-wide settings and what is shared between peers (the
/// path identifiers given under ADD-PATH, prefixes waiting to be released).
#[derive(Debug)]
pub struct Export {
    asn: u32,
    export_learned: bool,
    /// The RIB's peer for what we originate.
    local: PeerId,
    /// ADD-PATH send: the path identifier we give each (source peer, its path id).
    out_path_ids: HashMap<(PeerId, Option<u32>), u32>,
    next_out_path_id: u32,
    /// Prefixes left without paths, kept until no peer has them pending or sent.
    emptied: Vec<u32>,
}

impl Export {
    /// Export for a speaker of AS `asn` whose originated prefixes are the paths of the
    /// RIB's `local` peer; with `export_learned` learned best paths go out too.
    pub fn new(asn: u32, export_learned: bool, local: PeerId) -> Export {
        Export {
            asn,
            export_learned,
            local,
            out_path_ids: HashMap::new(),
            next_out_path_id: 1,
            emptied: Vec::new(),
        }
    }

    /// A Loc-RIB change: every peer it matters to looks at the prefix again (a change
    /// outside the group only matters to a peer sent every path).
    pub fn changed<'a>(&mut self, c: &Change, peers: impl IntoIterator<Item = &'a mut PeerOut>) {
        for s in peers {
            if c.group_changed || !s.params.ctx.add_path_tx.is_empty() {
                s.mark(c.id);
            }
        }
        if c.paths.is_empty() {
            self.emptied.push(c.id);
        }
    }

    /// A RIB peer is gone (removed, not kept stale): the path identifiers given to its
    /// paths are forgotten.
    pub fn peer_removed(&mut self, id: PeerId) {
        self.out_path_ids.retain(|(p, _), _| *p != id);
    }

    /// Prefixes without paths that no peer needs any more are dropped from the RIB.
    pub fn release<'a>(&mut self, rib: &mut Rib, peers: impl Iterator<Item = &'a PeerOut> + Clone) {
        self.emptied.retain(|id| {
            if peers.clone().any(|s| s.holds(*id)) {
                return true;
            }
            rib.release(*id);
            false
        });
    }

    /// What a peer is sent for `prefix` whose path is `path` (the best, or with
    /// ADD-PATH any): see the module's description. `None` when nothing is to be sent
    /// (a withdrawal if something was).
    pub fn attrs(
        &self,
        rib: &Rib,
        interner: &mut AttrInterner,
        s: &PeerOut,
        prefix: IpNet,
        path: &Path,
    ) -> Option<Arc<PathAttrs>> {
        let p = &s.params;
        let nh = s.next_hop(prefix.addr().is_ipv4())?;
        let mut a: PathAttrs = if path.peer == self.local {
            let mut a = (*path.attrs).clone();
            a.as_path = if p.ebgp {
                AsPath::from_sequence([self.asn])
            } else {
                AsPath::default()
            };
            a.local_pref = (!p.ebgp).then_some(100);
            a
        } else if self.export_learned {
            let src = rib.peer_info(path.peer);
            if src.addr == Some(p.addr) || (!src.ebgp && !p.ebgp) {
                return None;
            }
            // RFC 1997: NO_ADVERTISE goes to nobody, NO_EXPORT (and NO_EXPORT_SUBCONFED,
            // there being no confederation) stays inside our AS.
            let c = &path.attrs.communities;
            if c.contains(&Community::NO_ADVERTISE)
                || (p.ebgp
                    && (c.contains(&Community::NO_EXPORT)
                        || c.contains(&Community::NO_EXPORT_SUBCONFED)))
            {
                return None;
            }
            let mut a = (*path.attrs).clone();
            // RFC 4271 §5: an unrecognized optional non-transitive attribute is not
            // passed on; an optional transitive one is, with the Partial bit set.
            a.unknown
                .retain(|u| u.flags & ATTR_OPTIONAL == 0 || u.flags & ATTR_TRANSITIVE != 0);
            for u in &mut a.unknown {
                if u.flags & ATTR_OPTIONAL != 0 {
                    u.flags |= ATTR_PARTIAL;
                }
            }
            if p.ebgp {
                a.as_path.prepend(self.asn, 1);
                a.local_pref = None;
                a.med = None;
                // RFC 4456: route reflection attributes never leave the AS.
                a.originator_id = None;
                a.cluster_list.clear();
            } else {
                a.local_pref = Some(a.local_pref.unwrap_or(100));
            }
            a
        } else {
            return None;
        };
        a.next_hop = Some(nh);
        match policy::apply(
            &p.policy,
            &RouteContext {
                prefix,
                attrs: &a,
                neighbor: p.addr,
                ebgp: p.ebgp,
                local_as: self.asn,
                local_addr: p.local,
            },
        ) {
            Verdict::Accept(a) => Some(interner.intern(a)),
            Verdict::Reject => None,
        }
    }

    /// Fills a peer from its pending bits within its flow-control budget: the UPDATEs
    /// in batches (one per round of [`FILL_STEP`] prefixes), then End-of-RIB for every
    /// negotiated family once the initial table (or a refresh) is out.
    pub fn fill(&mut self, rib: &Rib, interner: &mut AttrInterner, s: &mut PeerOut) -> Filled {
        let mut filled = Filled::default();
        let mut cache: HashMap<(usize, PeerId, bool), Option<Arc<PathAttrs>>> = HashMap::new();
        let by_prefix = s.params.policy.uses_prefix();
        while s.in_flight < IN_FLIGHT && s.pending_count > 0 {
            let mut withdraw: Vec<Nlri> = Vec::new();
            // Per attribute set: the NLRI, and for each its prefix id and whether the
            // peer holds an earlier version of it (to withdraw should this one not
            // encode).
            let mut groups: Vec<OutGroup> = Vec::new();
            let mut group_of: HashMap<usize, usize> = HashMap::new();
            let mut looked = 0;
            while looked < FILL_STEP && s.pending_count > 0 {
                let i = match s.pending.next_from(s.cursor) {
                    Some(i) => i,
                    None => match s.pending.next_from(0) {
                        Some(i) => i,
                        None => {
                            s.pending_count = 0;
                            break;
                        }
                    },
                };
                s.cursor = i + 1;
                let id = i as u32;
                s.pending.clear(id);
                s.pending_count -= 1;
                looked += 1;
                let Some((prefix, group)) = rib.by_id(id) else {
                    // Released: nothing was sent for it (release waits for that).
                    continue;
                };
                let mut export = |s: &PeerOut, path: &Path| {
                    let key = (
                        Arc::as_ptr(&path.attrs) as usize,
                        path.peer,
                        prefix.addr().is_ipv4(),
                    );
                    if !by_prefix && let Some(v) = cache.get(&key) {
                        return v.clone();
                    }
                    let v = self.attrs(rib, interner, s, prefix, path);
                    if !by_prefix {
                        cache.insert(key, v.clone());
                    }
                    v
                };
                // What goes out now: the best path, or with ADD-PATH every path, each
                // under the path identifier we give it.
                let mut out: Vec<(Nlri, Arc<PathAttrs>)> = Vec::new();
                // For each of `out`: the peer holds an earlier version of it.
                let mut held: Vec<bool> = Vec::new();
                if s.params.ctx.add_path_tx(Family::of(&prefix)) {
                    let mut exported = Vec::new();
                    for path in rib.paths(&prefix) {
                        if let Some(a) = export(s, path) {
                            exported.push(((path.peer, path.path_id), a));
                        }
                    }
                    for (key, a) in exported {
                        let pid = *self.out_path_ids.entry(key).or_insert_with(|| {
                            self.next_out_path_id = self.next_out_path_id.wrapping_add(1).max(1);
                            self.next_out_path_id
                        });
                        out.push((
                            Nlri {
                                prefix,
                                path_id: Some(pid),
                            },
                            a,
                        ));
                    }
                    let before = s.sent_paths.remove(&id).unwrap_or_default();
                    for (pid, _) in &before {
                        if !out.iter().any(|(n, _)| n.path_id == Some(*pid)) {
                            withdraw.push(Nlri {
                                prefix,
                                path_id: Some(*pid),
                            });
                        }
                    }
                    if !out.is_empty() {
                        s.sent_paths.insert(
                            id,
                            out.iter()
                                .filter_map(|(n, a)| Some((n.path_id?, Some(a.clone()))))
                                .collect(),
                        );
                    }
                    // A path that went out with these very attributes is not sent again.
                    out.retain(|(n, a)| {
                        !before.iter().any(|(pid, was)| {
                            Some(*pid) == n.path_id
                                && was.as_ref().is_some_and(|w| Arc::ptr_eq(w, a))
                        })
                    });
                    for (n, _) in &out {
                        held.push(before.iter().any(|(pid, _)| Some(*pid) == n.path_id));
                    }
                    if s.sent_paths.contains_key(&id) {
                        if s.sent.set(id) {
                            s.advertised += 1;
                        }
                    } else if s.sent.clear(id) {
                        s.advertised -= 1;
                    }
                } else {
                    match group.first().and_then(|best| export(s, best)) {
                        Some(a) => {
                            out.push((Nlri::new(prefix), a));
                            held.push(s.sent.get(id));
                        }
                        None if s.sent.get(id) => withdraw.push(Nlri::new(prefix)),
                        None => {}
                    }
                    if out.is_empty() {
                        if s.sent.clear(id) {
                            s.advertised -= 1;
                        }
                    } else if s.sent.set(id) {
                        s.advertised += 1;
                    }
                }
                for ((nlri, a), was) in out.into_iter().zip(held) {
                    let g = match group_of.entry(Arc::as_ptr(&a) as usize) {
                        Entry::Occupied(e) => *e.get(),
                        Entry::Vacant(e) => {
                            groups.push((a, Vec::new(), Vec::new()));
                            *e.insert(groups.len() - 1)
                        }
                    };
                    groups[g].1.push(nlri);
                    groups[g].2.push((id, was));
                }
            }
            let mut bytes = BytesMut::new();
            let mut msgs = 0;
            let ctx = &s.params.ctx;
            if !withdraw.is_empty() {
                match wire::pack_updates(ctx, &withdraw, None, &[], &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(e) => filled.problems.push(ExportProblem::Withdrawals(e)),
                }
            }
            let mut unsent: Vec<Nlri> = Vec::new();
            let mut forget: Vec<(u32, Option<u32>)> = Vec::new();
            for (attrs, nlris, ids) in &groups {
                match wire::pack_updates(ctx, &[], Some(attrs), nlris, &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(error) => {
                        filled.problems.push(ExportProblem::Unencodable {
                            count: nlris.len(),
                            error,
                        });
                        for (n, (id, was)) in nlris.iter().zip(ids) {
                            if *was {
                                unsent.push(*n);
                            }
                            forget.push((*id, n.path_id));
                        }
                    }
                }
            }
            if !unsent.is_empty() {
                match wire::pack_updates(ctx, &unsent, None, &[], &mut bytes) {
                    Ok(n) => msgs += n,
                    Err(e) => filled.problems.push(ExportProblem::Withdrawals(e)),
                }
            }
            for (id, path_id) in forget {
                s.forget(id, path_id);
            }
            if !bytes.is_empty() {
                s.in_flight += bytes.len();
                filled.batches.push(Batch {
                    bytes: bytes.freeze(),
                    updates: msgs as u64,
                });
            }
        }
        if s.pending_count == 0 && !s.synced {
            let mut bytes = BytesMut::new();
            for u in end_of_rib(&s.params.ctx) {
                if let Err(e) = Message::Update(u).encode(&s.params.ctx, &mut bytes) {
                    filled.problems.push(ExportProblem::EndOfRib(e));
                }
            }
            s.synced = true;
            s.in_flight += bytes.len();
            filled.batches.push(Batch {
                updates: s.params.ctx.families.len() as u64,
                bytes: bytes.freeze(),
            });
        }
        filled
    }

    /// Prefixes a peer holds from us with the attributes it was sent for each (the
    /// best path's export, as computed now), in id order.
    pub fn adj_rib_out(
        &self,
        rib: &Rib,
        interner: &mut AttrInterner,
        s: &PeerOut,
    ) -> Vec<(IpNet, Option<Arc<PathAttrs>>)> {
        let mut v = Vec::new();
        for id in s.sent_ids() {
            let Some((prefix, group)) = rib.by_id(id) else {
                continue;
            };
            let a = group
                .first()
                .and_then(|best| self.attrs(rib, interner, s, prefix, best));
            v.push((prefix, a));
        }
        v
    }
}

#[cfg(test)]
mod tests;
