//! Bytes per route: 1M paths (the same 100k IPv4 prefixes from each of 10 peers, about
//! 100 distinct attribute sets), measured as live heap bytes with a counting global
//! allocator, beside the naive layout the speaker's driver used before it ran on this
//! RIB (a map per peer from prefix to a full `PathAttrs` clone), the export state of one
//! peer sent 100k routes, and the bgperf shape (1M distinct prefixes, one path each). RSS
//! growth is printed as a cross-check. Run with `cargo bench -p bgp --bench rib_memory`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use bgp::policy::Policy;
use bgp::rib::{AttrInterner, Export, PeerInfo, PeerOut, PeerParams, Rib};
use bgp::types::{NextHop, Nlri, PathAttrs};
use bgp::wire::SessionCtx;
use common::{Lcg, attr_set, spread, v4_prefixes};
use ipnet::IpNet;

/// Counts live heap bytes and allocations; delegates to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// The only unsafe code: the GlobalAlloc contract, forwarded as is to `System`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (isize, usize) {
    (LIVE.load(Ordering::Relaxed), ALLOCS.load(Ordering::Relaxed))
}

fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

const PEERS: usize = 10;
const PREFIXES: usize = 100_000;
const SETS_PER_PEER: usize = 10;

/// A peer and the attribute sets it announces, each with its prefixes.
type Feed = (PeerInfo, Vec<(PathAttrs, Vec<Nlri>)>);

fn report(what: &str, routes: usize, before: (isize, usize), after: (isize, usize)) {
    let bytes = after.0 - before.0;
    let allocs = after.1 as isize - before.1 as isize;
    println!(
        "{what:<44} {routes:>8} routes  {:>7.1} MiB  {:>6.1} bytes/route  {:>5.2} allocs/route",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / routes as f64,
        allocs as f64 / routes as f64
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench` / `cargo test --benches` probing: nothing to list.
        return;
    }
    let prefixes = v4_prefixes(PREFIXES, 7);
    let mut rng = Lcg(17);
    // Per peer: (info, [(attrs, prefixes)]).
    let feeds: Vec<Feed> = (0..PEERS)
        .map(|p| {
            let addr = Ipv4Addr::new(10, 0, p as u8, 1);
            let info = PeerInfo {
                addr: Some(IpAddr::V4(addr)),
                router_id: Ipv4Addr::new(10, 255, p as u8, 1),
                ebgp: true,
            };
            let sets = spread(&prefixes, SETS_PER_PEER, 100 + p as u64)
                .into_iter()
                .map(|list| {
                    (
                        attr_set(&mut rng, 65000 + p as u32, NextHop::V4(addr)),
                        list,
                    )
                })
                .collect();
            (info, sets)
        })
        .collect();
    let routes = PEERS * PREFIXES;

    // The RIB and its interner, fed one UPDATE-sized batch at a time (each batch is
    // freed before the next, so only the RIB stays).
    let rss0 = rss_bytes();
    let before = live();
    let mut interner = AttrInterner::new();
    let mut rib = Rib::new(16);
    for (info, sets) in &feeds {
        let id = rib.add_peer(*info);
        for (attrs, list) in sets {
            let a = interner.intern(attrs.clone());
            for chunk in list.chunks(500) {
                let batch: Vec<(Nlri, _)> = chunk.iter().map(|n| (*n, a.clone())).collect();
                drop(rib.update(id, &batch, &[]));
            }
        }
    }
    let after = live();
    let rss1 = rss_bytes();
    assert_eq!(rib.route_count(), routes);
    println!(
        "{} paths, {} prefixes, {} distinct attribute sets",
        rib.route_count(),
        rib.len(),
        interner.len()
    );
    report("Rib + AttrInterner (this crate)", routes, before, after);
    if let (Some(a), Some(b)) = (rss0, rss1) {
        println!(
            "{:<44} {routes:>8} routes  {:>7.1} MiB  {:>6.1} bytes/route",
            "  (RSS growth while building it)",
            (b - a) as f64 / (1 << 20) as f64,
            (b - a) as f64 / routes as f64
        );
    }

    // Export towards one peer sent the 100k best paths: its bitmaps and the exported
    // attribute sets (no per-peer copy of the table).
    let local = rib.add_peer(PeerInfo::local(Ipv4Addr::new(10, 255, 0, 1)));
    let before_out = live();
    let mut export = Export::new(65000, true, local);
    let mut out = PeerOut::new(PeerParams {
        addr: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
        local: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        ebgp: true,
        ctx: SessionCtx::four_octet(),
        next_hop_v6: None,
        policy: Policy::accept_all(),
    });
    out.mark_all(&rib);
    while out.pending() > 0 {
        let filled = export.fill(&rib, &mut interner, &mut out);
        for b in filled.batches {
            out.written(b.bytes.len());
        }
    }
    let after_out = live();
    assert_eq!(out.advertised() as usize, PREFIXES);
    report(
        "Export state (one peer, 100k sent)",
        PREFIXES,
        before_out,
        after_out,
    );
    drop((export, out));
    drop(rib);
    interner.gc();

    // The bgperf shape: 1M distinct /32s, one path each (10 peers × 100k of their own,
    // one attribute set per peer), as the speaker's table holds them.
    let before = live();
    let mut interner = AttrInterner::new();
    let mut rib = Rib::new(16);
    rib.keep_empty(true);
    for (p, (info, sets)) in feeds.iter().enumerate() {
        let id = rib.add_peer(*info);
        let a = interner.intern(sets[0].0.clone());
        let base = (100u32 << 24) + (p * PREFIXES) as u32;
        let all: Vec<Nlri> = (0..PREFIXES as u32)
            .map(|i| {
                Nlri::new(IpNet::V4(
                    ipnet::Ipv4Net::new(Ipv4Addr::from(base + i), 32).expect("a /32"),
                ))
            })
            .collect();
        for chunk in all.chunks(800) {
            let batch: Vec<(Nlri, _)> = chunk.iter().map(|n| (*n, a.clone())).collect();
            drop(rib.update(id, &batch, &[]));
        }
    }
    let after = live();
    assert_eq!(rib.len(), routes);
    report("Rib, 1M distinct prefixes × 1 path", routes, before, after);
    drop(rib);
    drop(interner);

    // The layout of the speaker's driver before it used this RIB: per peer a BTreeMap
    // from prefix to a full PathAttrs clone.
    let before = live();
    let mut naive: HashMap<IpAddr, BTreeMap<IpNet, PathAttrs>> = HashMap::new();
    for (info, sets) in &feeds {
        let m = naive.entry(info.addr.unwrap()).or_default();
        for (attrs, list) in sets {
            for n in list {
                m.insert(n.prefix, attrs.clone());
            }
        }
    }
    let after = live();
    report(
        "HashMap<peer, BTreeMap<IpNet, PathAttrs>>",
        routes,
        before,
        after,
    );
    drop(naive);
}
