//! RIB insertion with incremental best path and ECMP: 100k IPv4 prefixes from 1 peer,
//! and the same 100k prefixes from each of 10 peers (1M paths), announced as packed
//! UPDATEs would carry them (one attribute set per batch of up to 500 prefixes); plus
//! one peer of the ten going down. Throughput is paths per second. Run with
//! `cargo bench -p bgp --bench rib`.

mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use bgp::rib::{AttrInterner, PeerId, PeerInfo, Rib};
use bgp::types::{NextHop, Nlri, PathAttrs};
use common::{Lcg, attr_set, spread, v4_prefixes};

const PREFIXES: usize = 100_000;
/// Attribute sets per peer; with 10 peers about 100 distinct sets in all.
const SETS_PER_PEER: usize = 10;
const PER_UPDATE: usize = 500;

type Batch = Vec<(Nlri, Arc<PathAttrs>)>;

/// Per peer: its info and its UPDATE-sized announcement batches.
fn feeds(peers: usize, interner: &mut AttrInterner) -> Vec<(PeerInfo, Vec<Batch>)> {
    let prefixes = v4_prefixes(PREFIXES, 7);
    let mut rng = Lcg(17);
    (0..peers)
        .map(|p| {
            let addr = Ipv4Addr::new(10, 0, p as u8, 1);
            let info = PeerInfo {
                addr: Some(IpAddr::V4(addr)),
                router_id: Ipv4Addr::new(10, 255, p as u8, 1),
                ebgp: true,
            };
            let mut batches = Vec::new();
            for list in spread(&prefixes, SETS_PER_PEER, 100 + p as u64) {
                let a = interner.intern(attr_set(&mut rng, 65000 + p as u32, NextHop::V4(addr)));
                for chunk in list.chunks(PER_UPDATE) {
                    batches.push(chunk.iter().map(|n| (*n, a.clone())).collect());
                }
            }
            (info, batches)
        })
        .collect()
}

fn load(feeds: &[(PeerInfo, Vec<Batch>)]) -> (Rib, Vec<PeerId>, usize) {
    let mut rib = Rib::new(16);
    let ids: Vec<PeerId> = feeds.iter().map(|(i, _)| rib.add_peer(*i)).collect();
    let mut changes = 0;
    for ((_, batches), id) in feeds.iter().zip(&ids) {
        for b in batches {
            changes += rib.update(*id, b, &[]).len();
        }
    }
    (rib, ids, changes)
}

fn bench(c: &mut Criterion) {
    let mut interner = AttrInterner::new();
    let mut g = c.benchmark_group("rib-insert");
    for peers in [1usize, 10] {
        let f = feeds(peers, &mut interner);
        let (rib, _, changes) = load(&f);
        eprintln!(
            "{peers} peer(s): {} paths, {} prefixes, {changes} Loc-RIB changes, {} attribute sets",
            rib.route_count(),
            rib.len(),
            interner.len()
        );
        drop(rib);
        g.throughput(Throughput::Elements((peers * PREFIXES) as u64));
        g.bench_function(format!("{peers}x100k"), |b| {
            // The RIB is returned so that its drop is not timed.
            b.iter_batched(|| (), |()| load(black_box(&f)), BatchSize::PerIteration)
        });
    }
    g.finish();

    let f = feeds(10, &mut interner);
    let mut g = c.benchmark_group("rib-peer-down");
    g.throughput(Throughput::Elements(PREFIXES as u64));
    g.bench_function("1of10x100k", |b| {
        b.iter_batched(
            || load(&f),
            |(mut rib, ids, _)| {
                let n = rib.peer_down(ids[0]).len();
                (rib, n)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
