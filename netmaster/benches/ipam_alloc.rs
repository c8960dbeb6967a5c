//! Prints the cost of allocation on a /16 with 60k addresses in use (and on a /64), and the
//! size and cost of the serialized state. Run with `cargo bench -p netmaster --bench ipam_alloc`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use netmaster::ipam::{Pool, Scope};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn churn(name: &str, p: &mut Pool, addr: impl Fn(u64) -> IpAddr, span: u64) {
    let mut rng = Lcg(3);
    // Release scattered addresses, then measure first-free allocation refilling them.
    let mut holes = Vec::new();
    while holes.len() < 5_000 {
        let a = addr(2 + rng.next(span));
        if p.release(Scope::Network, a).is_ok() {
            holes.push(a);
        }
    }
    let fragmented = p.to_bytes().len();
    let t = Instant::now();
    for _ in 0..holes.len() {
        black_box(p.allocate(Scope::Network).ok());
    }
    let fill = t.elapsed().as_nanos() / holes.len() as u128;

    // Release one random address and allocate again, at full occupancy.
    let rounds = 200_000u32;
    let t = Instant::now();
    for _ in 0..rounds {
        let a = addr(2 + rng.next(span));
        let _ = p.release(Scope::Network, a);
        black_box(p.allocate(Scope::Network).ok());
    }
    let pair = t.elapsed().as_nanos() / u128::from(rounds);

    let t = Instant::now();
    let bytes = p.to_bytes();
    let enc = t.elapsed().as_micros();
    let t = Instant::now();
    let q = Pool::from_bytes(&bytes).map(|q| q.counts_all());
    let dec = t.elapsed().as_micros();
    black_box(q.ok());
    println!(
        "{name}: refill {fill} ns/alloc, release+alloc {pair} ns/pair, state {} bytes \
         (encode {enc} us, decode {dec} us), {} in use; with {} scattered holes the state was {fragmented} bytes",
        bytes.len(),
        p.counts(Scope::Network).map(|c| c.used).unwrap_or(0),
        holes.len()
    );
}

fn main() {
    let base4 = u32::from(Ipv4Addr::new(10, 20, 0, 0));
    let a4 = |off: u64| IpAddr::V4(Ipv4Addr::from(base4 + off as u32));
    let mut p = match Pool::new("bench", "10.20.0.0/16".parse().expect("spec"), Some(a4(1))) {
        Ok(p) => p,
        Err(e) => return eprintln!("{e}"),
    };
    let t = Instant::now();
    for _ in 0..60_000 {
        black_box(p.allocate(Scope::Network).ok());
    }
    println!(
        "/16: first 60k allocations {} ns/alloc",
        t.elapsed().as_nanos() / 60_000
    );
    churn("/16 at 60k in use", &mut p, a4, 60_000);

    let base6 = u128::from("2001:db8::".parse::<Ipv6Addr>().expect("addr"));
    let a6 = |off: u64| IpAddr::V6(Ipv6Addr::from(base6 + u128::from(off)));
    let mut p = match Pool::new(
        "bench6",
        "2001:db8::/64".parse().expect("spec"),
        Some(a6(1)),
    ) {
        Ok(p) => p,
        Err(e) => return eprintln!("{e}"),
    };
    let t = Instant::now();
    for _ in 0..60_000 {
        black_box(p.allocate(Scope::Network).ok());
    }
    println!(
        "/64: first 60k allocations {} ns/alloc",
        t.elapsed().as_nanos() / 60_000
    );
    churn("/64 at 60k in use", &mut p, a6, 60_000);
}
