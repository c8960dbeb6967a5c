//! UPDATE decode and encode throughput (prefixes per second) over realistic packed
//! UPDATEs: 100k prefixes packed by `pack_updates` into 4096-octet messages, with few
//! attribute sets (dense: ~1000 prefixes per UPDATE) or many (sparse: ~10 per UPDATE,
//! closer to a DFZ feed). Run with `cargo bench -p bgp --bench codec`.

mod common;

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use bgp::types::{Family, NextHop};
use bgp::wire::{Message, SessionCtx, Update, frame_len, pack_updates};
use common::{Lcg, attr_set, spread, v4_prefixes, v6_prefixes};

struct Case {
    name: &'static str,
    ctx: SessionCtx,
    /// Concatenated frames.
    wire: Vec<u8>,
    updates: Vec<Update>,
    prefixes: u64,
}

fn case(name: &'static str, v6: bool, sets: usize) -> Case {
    let mut ctx = SessionCtx::four_octet();
    ctx.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let prefixes = if v6 {
        v6_prefixes(100_000, 7)
    } else {
        v4_prefixes(100_000, 7)
    };
    let mut rng = Lcg(11);
    let mut wire = BytesMut::new();
    for (i, list) in spread(&prefixes, sets, 13).iter().enumerate() {
        let nh = if v6 {
            NextHop::V6 {
                global: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + (i % 4) as u16),
                link_local: None,
            }
        } else {
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 1 + (i % 4) as u8))
        };
        let attrs = attr_set(&mut rng, 65000 + (i % 8) as u32, nh);
        pack_updates(&ctx, &[], Some(&attrs), list, &mut wire).unwrap();
    }
    let wire = wire.to_vec();
    let updates = decode_all(&wire, &ctx);
    let n: usize = updates.iter().map(|u| u.prefix_count().0).sum();
    assert_eq!(n, prefixes.len());
    Case {
        name,
        ctx,
        wire,
        updates,
        prefixes: n as u64,
    }
}

fn decode_all(mut buf: &[u8], ctx: &SessionCtx) -> Vec<Update> {
    let mut out = Vec::new();
    while let Some(len) = frame_len(buf, ctx.max_len).unwrap() {
        match Message::decode(&buf[..len], ctx).unwrap() {
            Message::Update(u) => out.push(u),
            m => panic!("unexpected {m}"),
        }
        buf = &buf[len..];
    }
    out
}

fn bench(c: &mut Criterion) {
    let cases = [
        case("ipv4-dense", false, 100),
        case("ipv4-sparse", false, 10_000),
        case("ipv6-dense", true, 100),
    ];
    let mut g = c.benchmark_group("update-decode");
    for k in &cases {
        eprintln!(
            "{}: {} prefixes in {} UPDATEs, {} octets",
            k.name,
            k.prefixes,
            k.updates.len(),
            k.wire.len()
        );
        g.throughput(Throughput::Elements(k.prefixes));
        g.bench_function(k.name, |b| {
            b.iter(|| black_box(decode_all(black_box(&k.wire), &k.ctx)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("update-encode");
    for k in &cases {
        g.throughput(Throughput::Elements(k.prefixes));
        let mut out = BytesMut::with_capacity(k.wire.len());
        let msgs: Vec<Message> = k.updates.iter().cloned().map(Message::Update).collect();
        for m in &msgs {
            m.encode(&k.ctx, &mut out).unwrap();
        }
        assert_eq!(&out[..], &k.wire[..], "re-encoding gives the packed bytes");
        g.bench_function(k.name, |b| {
            b.iter(|| {
                out.clear();
                for m in &msgs {
                    m.encode(&k.ctx, &mut out).unwrap();
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
