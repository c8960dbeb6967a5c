//! Adj-RIBs-In and the Loc-RIB, maintained incrementally.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

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

/// Every path to one prefix, sorted best first.
#[derive(Debug, Default)]
struct Dest {
    paths: Vec<Path>,
    /// Already recorded in the current batch.
    dirty: bool,
}

/// The routing information base: the Adj-RIB-In of every peer (after import policy)
/// and the Loc-RIB (best path and ECMP group per prefix), updated incrementally.
///
/// Storage is per prefix: the paths of every peer to that prefix, kept sorted by the
/// decision process ([`super::select`]), so the Loc-RIB entry is the head of that list
/// and an update costs one hash lookup and an insertion into a short sorted vector.
/// A peer's Adj-RIB-In is the view [`Rib::adj_rib_in`] of that same storage; whole-peer
/// operations ([`Rib::peer_down`], [`Rib::mark_stale`], [`Rib::purge_stale`]) walk the
/// table once.
///
/// Mutations return the [`Change`]s of the Loc-RIB: exactly the prefixes whose group
/// (best path plus ECMP members: source, path id and attributes) differs from before
/// the call, each once, with the new group.
#[derive(Debug)]
pub struct Rib {
    peers: Vec<PeerSlot>,
    free: Vec<u32>,
    table: HashMap<IpNet, Dest>,
    max_paths: usize,
    routes: usize,
}

/// Prefixes touched by the current call, with their group before it (a range of
/// `saved`, so that recording costs no allocation per prefix).
#[derive(Default)]
struct Batch {
    touched: Vec<(IpNet, usize, usize)>,
    saved: Vec<Path>,
}

impl Batch {
    fn record(&mut self, prefix: IpNet, group: &[Path]) {
        let start = self.saved.len();
        self.saved.extend_from_slice(group);
        self.touched.push((prefix, start, group.len()));
    }
}

impl Rib {
    /// An empty RIB whose ECMP groups hold at most `max_paths` paths (at least 1).
    pub fn new(max_paths: usize) -> Self {
        Rib {
            peers: Vec::new(),
            free: Vec::new(),
            table: HashMap::new(),
            max_paths: max_paths.max(1),
            routes: 0,
        }
    }

    pub fn max_paths(&self) -> usize {
        self.max_paths
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
        let slot = self.slot_mut(peer);
        slot.info = info;
        if slot.routes == 0 {
            return Vec::new();
        }
        let mut batch = Batch::default();
        let peers = &self.peers;
        for (prefix, dest) in &mut self.table {
            if dest.paths.iter().any(|p| p.peer == peer) {
                touch(dest, *prefix, &mut batch, peers, max_paths);
                dest.paths
                    .sort_by(|a, b| compare(key(peers, b), key(peers, a)));
            }
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
            let Some(dest) = self.table.get_mut(&n.prefix) else {
                continue;
            };
            let Some(i) = position(dest, peer, n.path_id) else {
                continue;
            };
            touch(dest, n.prefix, &mut batch, &self.peers, max_paths);
            dest.paths.remove(i);
            added -= 1;
        }
        for (n, attrs) in announced {
            let dest = match self.table.entry(n.prefix) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    // A new prefix: its group before was empty.
                    batch.record(n.prefix, &[]);
                    e.insert(Dest {
                        paths: Vec::new(),
                        dirty: true,
                    })
                }
            };
            match position(dest, peer, n.path_id) {
                Some(i) if same_attrs(&dest.paths[i].attrs, attrs) => {
                    dest.paths[i].stale = false;
                    continue;
                }
                Some(i) => {
                    touch(dest, n.prefix, &mut batch, &self.peers, max_paths);
                    dest.paths.remove(i);
                }
                None => {
                    touch(dest, n.prefix, &mut batch, &self.peers, max_paths);
                    added += 1;
                }
            }
            let path = Path {
                attrs: Arc::clone(attrs),
                path_id: n.path_id,
                peer,
                stale: false,
            };
            insert_sorted(dest, path, &self.peers);
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
        for dest in self.table.values_mut() {
            for p in dest.paths.iter_mut().filter(|p| p.peer == peer) {
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

    fn remove_where(&mut self, peer: PeerId, pred: impl Fn(&IpNet, &Path) -> bool) -> Vec<Change> {
        self.slot(peer);
        if self.peers[peer.index()].routes == 0 {
            return Vec::new();
        }
        let max_paths = self.max_paths;
        let mut batch = Batch::default();
        let mut removed = 0;
        let peers = &self.peers;
        for (prefix, dest) in &mut self.table {
            if !dest.paths.iter().any(|p| p.peer == peer && pred(prefix, p)) {
                continue;
            }
            touch(dest, *prefix, &mut batch, peers, max_paths);
            let before = dest.paths.len();
            dest.paths.retain(|p| !(p.peer == peer && pred(prefix, p)));
            removed += before - dest.paths.len();
        }
        self.peers[peer.index()].routes -= removed;
        self.routes -= removed;
        self.finish(batch)
    }

    /// Compare each touched prefix's group with the one recorded before, emit the
    /// changes, drop prefixes left without paths.
    fn finish(&mut self, batch: Batch) -> Vec<Change> {
        let mut changes = Vec::new();
        for &(prefix, start, len) in &batch.touched {
            let before = &batch.saved[start..start + len];
            let Some(dest) = self.table.get_mut(&prefix) else {
                continue;
            };
            dest.dirty = false;
            let n = group_len(&dest.paths, &self.peers, self.max_paths);
            let after = &dest.paths[..n];
            let same = before.len() == after.len()
                && before.iter().zip(after).all(|(a, b)| a.same_route(b));
            if !same {
                changes.push(Change {
                    prefix,
                    paths: after.to_vec(),
                });
            }
            if dest.paths.is_empty() {
                self.table.remove(&prefix);
            }
        }
        changes
    }

    /// The Loc-RIB entry of `prefix`: best path first, then the other ECMP members.
    pub fn get(&self, prefix: &IpNet) -> Option<&[Path]> {
        let dest = self.table.get(prefix)?;
        Some(&dest.paths[..group_len(&dest.paths, &self.peers, self.max_paths)])
    }

    /// Every path to `prefix` from every peer, best first.
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        self.table.get(prefix).map_or(&[], |d| &d.paths)
    }

    /// The Loc-RIB, in no particular order: each reachable prefix with its group.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &[Path])> + '_ {
        self.table.iter().map(|(p, d)| {
            let n = group_len(&d.paths, &self.peers, self.max_paths);
            (p, &d.paths[..n])
        })
    }

    /// The Adj-RIB-In of `peer` (after import policy), in no particular order.
    pub fn adj_rib_in(&self, peer: PeerId) -> impl Iterator<Item = (Nlri, &Path)> + '_ {
        self.table.iter().flat_map(move |(prefix, d)| {
            d.paths.iter().filter(move |p| p.peer == peer).map(|p| {
                (
                    Nlri {
                        prefix: *prefix,
                        path_id: p.path_id,
                    },
                    p,
                )
            })
        })
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
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
        .iter()
        .position(|p| p.peer == peer && p.path_id == path_id)
}

fn insert_sorted(dest: &mut Dest, path: Path, peers: &[PeerSlot]) {
    let new = key(peers, &path);
    let at = dest
        .paths
        .partition_point(|p| compare(key(peers, p), new) == Ordering::Greater);
    // Grow by a quarter instead of doubling: a prefix typically has as many paths as
    // there are peers, and the slack of doubling would be a third of the table.
    let len = dest.paths.len();
    if len == dest.paths.capacity() {
        dest.paths.reserve_exact((len / 4).max(1));
    }
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
fn touch(dest: &mut Dest, prefix: IpNet, batch: &mut Batch, peers: &[PeerSlot], max_paths: usize) {
    if dest.dirty {
        return;
    }
    dest.dirty = true;
    let n = group_len(&dest.paths, peers, max_paths);
    batch.record(prefix, &dest.paths[..n]);
}
