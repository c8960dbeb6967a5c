//! Adj-RIBs-In and the Loc-RIB, maintained incrementally.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::select::{PeerId, PeerInfo, compare, compare_multipath};
use crate::types::{Family, Nlri, PathAttrs};

/// One path to a prefix: who sent it, under which ADD-PATH identifier, with which
/// (interned) attributes. Cloning costs a reference count increment.
#[derive(Debug, Clone)]
pub struct Path {
    pub attrs: Arc<PathAttrs>,
    /// The ADD-PATH path identifier it was received with (RFC 7911), if any.
    pub path_id: Option<u32>,
    pub peer: PeerId,
    /// Retained through a graceful restart of its peer and not re-announced yet
    /// (RFC 4724). Stale paths still take part in selection.
    pub stale: bool,
}

impl Path {
    /// Same source and equal attributes (the stale mark is not compared).
    pub fn same_route(&self, other: &Path) -> bool {
        self.peer == other.peer
            && self.path_id == other.path_id
            && same_attrs(&self.attrs, &other.attrs)
    }
}

fn same_attrs(a: &Arc<PathAttrs>, b: &Arc<PathAttrs>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// A prefix whose best path or ECMP group changed.
#[derive(Debug, Clone)]
pub struct Change {
    pub prefix: IpNet,
    /// The prefix's id in the [`Rib`] (see [`Rib::by_id`]).
    pub id: u32,
    /// The group changed (always, unless [`Rib::report_path_changes`] is on: then a
    /// change of a path outside the group is reported too, with this false).
    pub group_changed: bool,
    /// The new group, best path first, then the other ECMP members in preference
    /// order. Empty when the prefix is no longer reachable.
    pub paths: Vec<Path>,
}

impl Change {
    pub fn best(&self) -> Option<&Path> {
        self.paths.first()
    }

    pub fn is_withdrawal(&self) -> bool {
        self.paths.is_empty()
    }

    /// The next hops of the group, sorted and deduplicated (for the FIB).
    pub fn next_hops(&self) -> Vec<IpAddr> {
        next_hops(&self.paths)
    }
}

/// The next hops of a group of paths, sorted and deduplicated.
pub fn next_hops(paths: &[Path]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = paths
        .iter()
        .filter_map(|p| p.attrs.next_hop.map(|n| n.addr()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[derive(Debug)]
struct PeerSlot {
    info: PeerInfo,
    routes: usize,
    live: bool,
}

/// The paths to one prefix, sorted best first. Most prefixes have exactly one, which
/// is kept inline (no allocation of its own).
#[derive(Debug, Default)]
enum Paths {
    #[default]
    Empty,
    One(Path),
    // Boxed so that the inline case stays one path wide.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Path>>),
}

impl Paths {
    fn as_slice(&self) -> &[Path] {
        match self {
            Paths::Empty => &[],
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Path] {
        match self {
            Paths::Empty => &mut [],
            Paths::One(p) => std::slice::from_mut(p),
            Paths::Many(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        matches!(self, Paths::Empty)
    }

    fn insert(&mut self, at: usize, path: Path) {
        *self = match std::mem::take(self) {
            Paths::Empty => Paths::One(path),
            Paths::One(p) => {
                let mut v = Vec::with_capacity(2);
                v.push(p);
                v.insert(at, path);
                Paths::Many(Box::new(v))
            }
            Paths::Many(mut v) => {
                // Grow by a quarter instead of doubling: a prefix typically has as
                // many paths as there are peers.
                if v.len() == v.capacity() {
                    v.reserve_exact((v.len() / 4).max(1));
                }
                v.insert(at, path);
                Paths::Many(v)
            }
        };
    }

    fn remove(&mut self, i: usize) {
        self.retain_indexed(|j, _| j != i);
    }

    fn retain(&mut self, f: impl Fn(&Path) -> bool) {
        self.retain_indexed(|_, p| f(p));
    }

    fn retain_indexed(&mut self, f: impl Fn(usize, &Path) -> bool) {
        *self = match std::mem::take(self) {
            Paths::Empty => Paths::Empty,
            Paths::One(p) => {
                if f(0, &p) {
                    Paths::One(p)
                } else {
                    Paths::Empty
                }
            }
            Paths::Many(mut v) => {
                let mut j = 0;
                v.retain(|p| {
                    let keep = f(j, p);
                    j += 1;
                    keep
                });
                match v.len() {
                    0 => Paths::Empty,
                    1 => Paths::One(v.pop().expect("one path")),
                    _ => Paths::Many(v),
                }
            }
        };
    }
}

/// One prefix: its paths from every peer, sorted best first.
#[derive(Debug)]
struct Dest {
    prefix: IpNet,
    paths: Paths,
    /// Already recorded in the current batch.
    dirty: bool,
    /// The slot holds a prefix (free slots are kept for reuse).
    used: bool,
}

/// Prefix slots are allocated in chunks of this many, so the table never has to be
/// copied to grow.
const CHUNK: usize = 4096;

/// The routing information base: the Adj-RIB-In of every peer (after import policy)
/// and the Loc-RIB (best path and ECMP group per prefix), updated incrementally.
///
/// Storage is per prefix: the paths of every peer to that prefix, kept sorted by the
/// decision process ([`super::select`]), so the Loc-RIB entry is the head of that list
/// and an update costs one ordered-index lookup and an insertion into a short sorted
/// list (a single path is stored inline). Each prefix has a small integer id (its
/// slot), stable while the prefix is in the table, so that a driver can keep per-peer
/// state (what is queued, what was sent) in bitmaps instead of maps. A peer's
/// Adj-RIB-In is the view [`Rib::adj_rib_in`] of that same storage; whole-peer
/// operations ([`Rib::peer_down`], [`Rib::mark_stale`], [`Rib::purge_stale`]) walk the
/// table once.
///
/// Mutations return the [`Change`]s of the Loc-RIB: exactly the prefixes whose group
/// (best path plus ECMP members: source, path id and attributes) differs from before
/// the call, each once, with the new group.
///
/// A prefix left without paths is dropped at once, unless [`Rib::keep_empty`] is set:
/// then it keeps its id (with an empty group) until [`Rib::release`], so that a driver
/// can finish withdrawing it from its peers before the id is handed out again.
#[derive(Debug)]
pub struct Rib {
    peers: Vec<PeerSlot>,
    free: Vec<u32>,
    v4: BTreeMap<Ipv4Net, u32>,
    v6: BTreeMap<Ipv6Net, u32>,
    slots: Vec<Vec<Dest>>,
    free_slots: Vec<u32>,
    slot_count: u32,
    /// Prefixes with at least one path.
    live: usize,
    keep_empty: bool,
    report_path_changes: bool,
    max_paths: usize,
    routes: usize,
}

/// Prefixes touched by the current call, with their group before it (a range of
/// `saved`, so that recording costs no allocation per prefix).
#[derive(Default)]
struct Batch {
    touched: Vec<(u32, usize, usize)>,
    saved: Vec<Path>,
}

impl Batch {
    fn record(&mut self, id: u32, group: &[Path]) {
        let start = self.saved.len();
        self.saved.extend_from_slice(group);
        self.touched.push((id, start, group.len()));
    }
}

impl Rib {
    /// An empty RIB whose ECMP groups hold at most `max_paths` paths (at least 1).
    pub fn new(max_paths: usize) -> Self {
        Rib {
            peers: Vec::new(),
            free: Vec::new(),
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            slot_count: 0,
            live: 0,
            keep_empty: false,
            report_path_changes: false,
            max_paths: max_paths.max(1),
            routes: 0,
        }
    }

    /// Keep prefixes left without paths (with their ids) until [`Rib::release`].
    pub fn keep_empty(&mut self, on: bool) {
        self.keep_empty = on;
    }

    /// Also report prefixes whose paths changed outside the group (a driver that sends
    /// every path, ADD-PATH, needs them); [`Change::group_changed`] tells them apart.
    pub fn report_path_changes(&mut self, on: bool) {
        self.report_path_changes = on;
    }

    pub fn max_paths(&self) -> usize {
        self.max_paths
    }

    /// One more than the highest prefix id in use (for sizing per-id state).
    pub fn id_bound(&self) -> usize {
        self.slot_count as usize
    }

    /// The id of `prefix`, if it is in the table.
    pub fn id_of(&self, prefix: &IpNet) -> Option<u32> {
        match prefix {
            IpNet::V4(p) => self.v4.get(p).copied(),
            IpNet::V6(p) => self.v6.get(p).copied(),
        }
    }

    /// The prefix with this id and its group (empty for a prefix kept by
    /// [`Rib::keep_empty`]); `None` for an id not in use.
    pub fn by_id(&self, id: u32) -> Option<(IpNet, &[Path])> {
        let d = self.slot_ref(id)?;
        d.used.then(|| {
            let paths = d.paths.as_slice();
            (
                d.prefix,
                &paths[..group_len(paths, &self.peers, self.max_paths)],
            )
        })
    }

    /// Drop a prefix kept without paths (see [`Rib::keep_empty`]); its id may be handed
    /// out again. Does nothing (and returns false) if it has paths again.
    pub fn release(&mut self, id: u32) -> bool {
        match self.slot_ref(id) {
            Some(d) if d.used && d.paths.is_empty() => {
                self.drop_slot(id);
                true
            }
            _ => false,
        }
    }

    fn slot_ref(&self, id: u32) -> Option<&Dest> {
        let id = id as usize;
        self.slots.get(id / CHUNK).and_then(|c| c.get(id % CHUNK))
    }

    fn dest_mut(&mut self, id: u32) -> &mut Dest {
        let id = id as usize;
        &mut self.slots[id / CHUNK][id % CHUNK]
    }

    fn find_or_insert(&mut self, prefix: IpNet) -> (u32, bool) {
        if let Some(id) = self.id_of(&prefix) {
            return (id, false);
        }
        let id = match self.free_slots.pop() {
            Some(id) => id,
            None => {
                let id = self.slot_count;
                self.slot_count = id.checked_add(1).expect("fewer than 2^32 prefixes");
                if (id as usize).is_multiple_of(CHUNK) {
                    self.slots.push(Vec::with_capacity(CHUNK));
                }
                self.slots.last_mut().expect("a chunk").push(Dest {
                    prefix,
                    paths: Paths::Empty,
                    dirty: false,
                    used: false,
                });
                id
            }
        };
        let d = self.dest_mut(id);
        d.prefix = prefix;
        d.used = true;
        d.dirty = false;
        match prefix {
            IpNet::V4(p) => self.v4.insert(p, id),
            IpNet::V6(p) => self.v6.insert(p, id),
        };
        (id, true)
    }

    fn drop_slot(&mut self, id: u32) {
        let d = self.dest_mut(id);
        d.used = false;
        d.paths = Paths::Empty;
        let prefix = d.prefix;
        match prefix {
            IpNet::V4(p) => self.v4.remove(&p),
            IpNet::V6(p) => self.v6.remove(&p),
        };
        self.free_slots.push(id);
    }

    fn dests_mut(&mut self) -> impl Iterator<Item = &mut Dest> {
        self.slots.iter_mut().flatten().filter(|d| d.used)
    }

    fn dests(&self) -> impl Iterator<Item = (u32, &Dest)> {
        self.slots
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, d)| d.used)
            .map(|(i, d)| (i as u32, d))
    }

    /// Register a peer (or the local origin, with [`PeerInfo::local`]).
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        let slot = PeerSlot {
            info,
            routes: 0,
            live: true,
        };
        if let Some(i) = self.free.pop() {
            self.peers[i as usize] = slot;
            PeerId(i)
        } else {
            self.peers.push(slot);
            PeerId(u32::try_from(self.peers.len() - 1).expect("fewer than 2^32 peers"))
        }
    }

    /// Withdraw everything `peer` sent and forget it; its id may be handed out again.
    pub fn remove_peer(&mut self, peer: PeerId) -> Vec<Change> {
        let changes = self.peer_down(peer);
        self.peers[peer.index()].live = false;
        self.free.push(peer.0);
        changes
    }

    /// The peer's information. Panics for an id that is not registered.
    pub fn peer_info(&self, peer: PeerId) -> &PeerInfo {
        &self.slot(peer).info
    }

    /// Change what selection knows about `peer` (e.g. its router id, once the OPEN
    /// exchange told it), re-sorting the prefixes it has paths to.
    pub fn set_peer_info(&mut self, peer: PeerId, info: PeerInfo) -> Vec<Change> {
        let max_paths = self.max_paths;
        if self.slot(peer).routes == 0 {
            self.slot_mut(peer).info = info;
            return Vec::new();
        }
        // The groups before are recorded with what selection knew before.
        let mut batch = Batch::default();
        let peers = &self.peers;
        for (id, dest) in self.slots.iter_mut().flatten().enumerate() {
            if dest.used && dest.paths.as_slice().iter().any(|p| p.peer == peer) {
                touch(dest, id as u32, &mut batch, peers, max_paths);
            }
        }
        self.slot_mut(peer).info = info;
        let peers = &self.peers;
        for &(id, _, _) in &batch.touched {
            self.slots[id as usize / CHUNK][id as usize % CHUNK]
                .paths
                .as_mut_slice()
                .sort_by(|a, b| compare(key(peers, b), key(peers, a)));
        }
        self.finish(batch)
    }

    fn slot(&self, peer: PeerId) -> &PeerSlot {
        let s = &self.peers[peer.index()];
        assert!(s.live, "peer {peer:?} is not registered");
        s
    }

    fn slot_mut(&mut self, peer: PeerId) -> &mut PeerSlot {
        let s = &mut self.peers[peer.index()];
        assert!(s.live, "peer {peer:?} is not registered");
        s
    }

    /// Apply one UPDATE from `peer` (after import policy): withdrawals first, then
    /// announcements (which replace the peer's path with the same prefix and path id,
    /// and clear its stale mark). Panics for an unregistered peer.
    pub fn update(
        &mut self,
        peer: PeerId,
        announced: &[(Nlri, Arc<PathAttrs>)],
        withdrawn: &[Nlri],
    ) -> Vec<Change> {
        self.slot(peer);
        let max_paths = self.max_paths;
        let mut batch = Batch::default();
        let mut added: isize = 0;
        for n in withdrawn {
            let Some(id) = self.id_of(&n.prefix) else {
                continue;
            };
            let peers = &self.peers;
            let dest = &mut self.slots[id as usize / CHUNK][id as usize % CHUNK];
            let Some(i) = position(dest, peer, n.path_id) else {
                continue;
            };
            touch(dest, id, &mut batch, peers, max_paths);
            dest.paths.remove(i);
            added -= 1;
        }
        for (n, attrs) in announced {
            let (id, new) = self.find_or_insert(n.prefix);
            let peers = &self.peers;
            let dest = &mut self.slots[id as usize / CHUNK][id as usize % CHUNK];
            if new {
                // A new prefix: its group before was empty.
                batch.record(id, &[]);
                dest.dirty = true;
            }
            match position(dest, peer, n.path_id) {
                Some(i) if same_attrs(&dest.paths.as_slice()[i].attrs, attrs) => {
                    dest.paths.as_mut_slice()[i].stale = false;
                    continue;
                }
                Some(i) => {
                    touch(dest, id, &mut batch, peers, max_paths);
                    dest.paths.remove(i);
                }
                None => {
                    touch(dest, id, &mut batch, peers, max_paths);
                    added += 1;
                }
            }
            let path = Path {
                attrs: Arc::clone(attrs),
                path_id: n.path_id,
                peer,
                stale: false,
            };
            insert_sorted(dest, path, peers);
        }
        let slot = &mut self.peers[peer.index()];
        slot.routes = slot.routes.checked_add_signed(added).expect("route count");
        self.routes = self.routes.checked_add_signed(added).expect("route count");
        self.finish(batch)
    }

    /// The session with `peer` went down (without graceful restart): remove all its
    /// paths. The peer stays registered.
    pub fn peer_down(&mut self, peer: PeerId) -> Vec<Change> {
        self.remove_where(peer, |_, _| true)
    }

    /// Graceful restart began for `peer` (RFC 4724 §4.2): mark all its paths stale,
    /// keeping them in use. Returns how many were marked.
    pub fn mark_stale(&mut self, peer: PeerId) -> usize {
        self.slot(peer);
        if self.peers[peer.index()].routes == 0 {
            return 0;
        }
        let mut n = 0;
        for dest in self.dests_mut() {
            for p in dest
                .paths
                .as_mut_slice()
                .iter_mut()
                .filter(|p| p.peer == peer)
            {
                p.stale = true;
                n += 1;
            }
        }
        n
    }

    /// End-of-RIB for `family` arrived from `peer`, or its restart timer expired:
    /// remove its paths of that family still marked stale.
    pub fn purge_stale(&mut self, peer: PeerId, family: Family) -> Vec<Change> {
        self.remove_where(peer, |prefix, p| p.stale && Family::of(prefix) == family)
    }

    /// Number of `peer`'s paths still marked stale.
    pub fn stale_count(&self, peer: PeerId) -> usize {
        if self.slot(peer).routes == 0 {
            return 0;
        }
        self.dests()
            .flat_map(|(_, d)| d.paths.as_slice())
            .filter(|p| p.peer == peer && p.stale)
            .count()
    }

    fn remove_where(&mut self, peer: PeerId, pred: impl Fn(&IpNet, &Path) -> bool) -> Vec<Change> {
        self.slot(peer);
        if self.peers[peer.index()].routes == 0 {
            return Vec::new();
        }
        let max_paths = self.max_paths;
        let mut batch = Batch::default();
        let mut removed = 0;
        let peers = &self.peers;
        for (id, dest) in self.slots.iter_mut().flatten().enumerate() {
            let prefix = dest.prefix;
            if !dest.used
                || !dest
                    .paths
                    .as_slice()
                    .iter()
                    .any(|p| p.peer == peer && pred(&prefix, p))
            {
                continue;
            }
            touch(dest, id as u32, &mut batch, peers, max_paths);
            let before = dest.paths.len();
            dest.paths.retain(|p| !(p.peer == peer && pred(&prefix, p)));
            removed += before - dest.paths.len();
        }
        self.peers[peer.index()].routes -= removed;
        self.routes -= removed;
        self.finish(batch)
    }

    /// Compare each touched prefix's group with the one recorded before, emit the
    /// changes, drop prefixes left without paths (unless kept).
    fn finish(&mut self, batch: Batch) -> Vec<Change> {
        let mut changes = Vec::new();
        for &(id, start, len) in &batch.touched {
            let before = &batch.saved[start..start + len];
            let (max_paths, keep_empty) = (self.max_paths, self.keep_empty);
            let report_path_changes = self.report_path_changes;
            let peers = &self.peers;
            let dest = &mut self.slots[id as usize / CHUNK][id as usize % CHUNK];
            dest.dirty = false;
            let paths = dest.paths.as_slice();
            let n = group_len(paths, peers, max_paths);
            let after = &paths[..n];
            let same = before.len() == after.len()
                && before.iter().zip(after).all(|(a, b)| a.same_route(b));
            if !same || report_path_changes {
                changes.push(Change {
                    prefix: dest.prefix,
                    id,
                    paths: after.to_vec(),
                    group_changed: !same,
                });
            }
            match (before.is_empty(), after.is_empty()) {
                (true, false) => self.live += 1,
                (false, true) => self.live -= 1,
                _ => {}
            }
            if after.is_empty() && !keep_empty {
                self.drop_slot(id);
            }
        }
        changes
    }

    /// The Loc-RIB entry of `prefix`: best path first, then the other ECMP members.
    pub fn get(&self, prefix: &IpNet) -> Option<&[Path]> {
        let (_, group) = self.by_id(self.id_of(prefix)?)?;
        (!group.is_empty()).then_some(group)
    }

    /// Every path to `prefix` from every peer, best first.
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        self.id_of(prefix)
            .and_then(|id| self.slot_ref(id))
            .map_or(&[], |d| d.paths.as_slice())
    }

    /// The Loc-RIB: each reachable prefix with its group, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &[Path])> + '_ {
        self.dests()
            .filter(|(_, d)| !d.paths.is_empty())
            .map(|(_, d)| {
                let paths = d.paths.as_slice();
                let n = group_len(paths, &self.peers, self.max_paths);
                (&d.prefix, &paths[..n])
            })
    }

    /// Every prefix id with paths (for a full export).
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.dests()
            .filter(|(_, d)| !d.paths.is_empty())
            .map(|(id, _)| id)
    }

    /// The Adj-RIB-In of `peer` (after import policy), in id order.
    pub fn adj_rib_in(&self, peer: PeerId) -> impl Iterator<Item = (Nlri, &Path)> + '_ {
        self.dests().flat_map(move |(_, d)| {
            d.paths
                .as_slice()
                .iter()
                .filter(move |p| p.peer == peer)
                .map(|p| {
                    (
                        Nlri {
                            prefix: d.prefix,
                            path_id: p.path_id,
                        },
                        p,
                    )
                })
        })
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of paths from all peers.
    pub fn route_count(&self) -> usize {
        self.routes
    }

    /// Number of paths `peer` has in its Adj-RIB-In (for max-prefix checks).
    pub fn peer_route_count(&self, peer: PeerId) -> usize {
        self.slot(peer).routes
    }
}

fn key<'a>(
    peers: &'a [PeerSlot],
    p: &'a Path,
) -> (PeerId, &'a PeerInfo, Option<u32>, &'a PathAttrs) {
    (p.peer, &peers[p.peer.index()].info, p.path_id, &p.attrs)
}

fn position(dest: &Dest, peer: PeerId, path_id: Option<u32>) -> Option<usize> {
    dest.paths
        .as_slice()
        .iter()
        .position(|p| p.peer == peer && p.path_id == path_id)
}

fn insert_sorted(dest: &mut Dest, path: Path, peers: &[PeerSlot]) {
    let new = key(peers, &path);
    let at = dest
        .paths
        .as_slice()
        .partition_point(|p| compare(key(peers, p), new) == Ordering::Greater);
    dest.paths.insert(at, path);
}

/// Length of the ECMP group at the head of `paths` (sorted best first).
fn group_len(paths: &[Path], peers: &[PeerSlot], max_paths: usize) -> usize {
    let Some(best) = paths.first() else {
        return 0;
    };
    let b = (&peers[best.peer.index()].info, &*best.attrs);
    1 + paths[1..]
        .iter()
        .take(max_paths - 1)
        .take_while(|p| {
            compare_multipath((&peers[p.peer.index()].info, &p.attrs), b) == Ordering::Equal
        })
        .count()
}

/// Record `dest`'s current group once per batch, before its first mutation.
fn touch(dest: &mut Dest, id: u32, batch: &mut Batch, peers: &[PeerSlot], max_paths: usize) {
    if dest.dirty {
        return;
    }
    dest.dirty = true;
    let paths = dest.paths.as_slice();
    let n = group_len(paths, peers, max_paths);
    batch.record(id, &paths[..n]);
}
