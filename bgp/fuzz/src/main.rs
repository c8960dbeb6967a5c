//! Stable-toolchain fuzz harness: runs a target on random inputs and on
//! mutations of seed messages, without libFuzzer or sanitizers.
//!
//! ```text
//! cargo run --release -- <target> <iterations> [rng-seed]   fuzz one target
//! cargo run --release -- all <iterations> [rng-seed]        every target in turn
//! cargo run --release -- repro <target> <file>...           replay saved inputs
//! cargo run --release -- corpus <dir>                       write the seeds as a libFuzzer corpus
//! ```
//!
//! There is no coverage feedback; as a cheap stand-in, inputs a decoder accepts
//! join the mutation pool (bounded), so mutations reach past the first checks.
//! A panic is a finding: its input is saved under `artifacts/<target>/` and the
//! run goes on; the exit status is 1 if anything panicked.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bgp_fuzz::{TARGETS, Target, seeds};

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const INTERESTING8: &[u8] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 32, 33, 64, 65, 69, 70, 73, 0x10, 0x20, 0x40,
    0x50, 0x7f, 0x80, 0x81, 0x90, 0xc0, 0xd0, 0xe0, 0xfe, 0xff,
];
const INTERESTING16: &[u16] = &[
    0, 1, 2, 3, 4, 16, 19, 23, 29, 32, 128, 255, 256, 4096, 4097, 23456, 0x7fff, 0x8000, 0xfffe,
    0xffff,
];

/// One mutation step.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(11) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // An interesting octet.
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING8[rng.below(INTERESTING8.len())];
        }
        // An interesting 16-bit value, or the remaining length ± 1 (length fields).
        2 if len > 1 => {
            let i = rng.below(len - 1);
            let v = if rng.chance(2) {
                INTERESTING16[rng.below(INTERESTING16.len())]
            } else {
                let rest = (len - i - 2) as i64 + rng.below(3) as i64 - 1;
                rest.clamp(0, 0xffff) as u16
            };
            data[i..i + 2].copy_from_slice(&v.to_be_bytes());
        }
        // Small arithmetic on an octet.
        3 if len > 0 => {
            let i = rng.below(len);
            let d = rng.below(35) as u8;
            data[i] = if rng.chance(2) {
                data[i].wrapping_add(d)
            } else {
                data[i].wrapping_sub(d)
            };
        }
        // Insert random octets.
        4 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, ins);
        }
        // Delete a range.
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            data.drain(at..at + n);
        }
        // Duplicate a range (repeated attributes, NLRI, capabilities).
        6 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            let chunk = data[at..at + n].to_vec();
            let to = rng.below(data.len() + 1);
            data.splice(to..to, chunk);
        }
        // Splice: our head, another input's tail.
        7 if !pool.is_empty() => {
            let other = &pool[rng.below(pool.len())];
            let cut = rng.below(len + 1);
            let ocut = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[ocut..]);
        }
        // Truncate.
        8 if len > 0 => {
            data.truncate(rng.below(len));
        }
        // Overwrite with random octets.
        9 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(8));
            for b in &mut data[at..at + n] {
                *b = rng.next() as u8;
            }
        }
        // Swap two octets.
        _ if len > 1 => {
            let (a, b) = (rng.below(len), rng.below(len));
            data.swap(a, b);
        }
        _ => data.push(rng.next() as u8),
    }
}

fn next_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    if pool.is_empty() || rng.chance(10) {
        // Fully random, mostly short.
        let n = if rng.chance(4) {
            rng.below(4096)
        } else {
            rng.below(64)
        };
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut data = pool[rng.below(pool.len())].clone();
    let max_steps = if rng.chance(4) { 16 } else { 4 };
    let steps = 1 + rng.below(max_steps);
    for _ in 0..steps {
        mutate_once(rng, &mut data, pool);
    }
    data
}

#[derive(Default)]
struct Stats {
    execs: u64,
    accepted: u64,
    panics: u64,
    /// Distinct panic messages (first line, location included) and one input each.
    unique: BTreeMap<String, Vec<u8>>,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The panic hook stores the message here instead of printing it.
type LastPanic = Arc<Mutex<Option<String>>>;

fn install_hook() -> LastPanic {
    let last: LastPanic = Arc::default();
    let l = last.clone();
    panic::set_hook(Box::new(move |info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_owned()
        };
        let first = msg
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        *l.lock().unwrap() = Some(format!("{loc}: {first}"));
    }));
    last
}

fn run_one(f: Target, data: &[u8], last: &LastPanic) -> Result<bool, String> {
    match panic::catch_unwind(AssertUnwindSafe(|| f(data))) {
        Ok(ok) => Ok(ok),
        Err(_) => Err(last
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| "panic".to_owned())),
    }
}

fn fuzz(name: &str, f: Target, iterations: u64, seed: u64, last: &LastPanic) -> Stats {
    const POOL_MAX: usize = 4096;
    let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
    let mut pool = seeds(name);
    let n_seeds = pool.len();
    let mut stats = Stats::default();
    let start = Instant::now();
    let artifacts = Path::new("artifacts").join(name);
    for i in 0..iterations {
        let data = next_input(&mut rng, &pool);
        stats.execs += 1;
        match run_one(f, &data, last) {
            Ok(true) => {
                stats.accepted += 1;
                // Keep some accepted inputs; replace at random once full.
                if rng.chance(8) {
                    if pool.len() < POOL_MAX {
                        pool.push(data);
                    } else {
                        let at = n_seeds + rng.below(POOL_MAX - n_seeds);
                        pool[at] = data;
                    }
                }
            }
            Ok(false) => {}
            Err(msg) => {
                stats.panics += 1;
                if let std::collections::btree_map::Entry::Vacant(e) = stats.unique.entry(msg) {
                    std::fs::create_dir_all(&artifacts).ok();
                    let file = artifacts.join(format!("crash-{:016x}", fnv(&data)));
                    std::fs::write(&file, &data).ok();
                    eprintln!(
                        "[{name}] PANIC after {} execs: {}\n        input saved to {}",
                        i + 1,
                        e.key(),
                        file.display()
                    );
                    e.insert(data);
                }
            }
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!(
                "[{name}] {} execs, {} accepted, {} panics, pool {}, {:.0} execs/s",
                i + 1,
                stats.accepted,
                stats.panics,
                pool.len(),
                (i + 1) as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{name}: {} executions, {} accepted by the decoder, {} panics ({} distinct), {:.1} s",
        stats.execs,
        stats.accepted,
        stats.panics,
        stats.unique.len(),
        start.elapsed().as_secs_f64()
    );
    stats
}

fn usage() -> ! {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    eprintln!(
        "usage: bgp-fuzz <target|all> <iterations> [rng-seed]\n       bgp-fuzz repro <target> <file>...\n       bgp-fuzz corpus <dir>\ntargets: {}",
        names.join(", ")
    );
    std::process::exit(2)
}

fn target(name: &str) -> Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else { usage() };
    match cmd.as_str() {
        "corpus" => {
            let dir = args.get(1).unwrap_or_else(|| usage());
            for (name, _) in TARGETS {
                let d = Path::new(dir).join(name);
                std::fs::create_dir_all(&d).expect("create corpus directory");
                for s in seeds(name) {
                    std::fs::write(d.join(format!("seed-{:016x}", fnv(&s))), &s)
                        .expect("write seed");
                }
            }
        }
        "repro" => {
            let f = target(args.get(1).unwrap_or_else(|| usage()));
            let last = install_hook();
            let mut failed = false;
            for file in &args[2..] {
                let data = std::fs::read(file).expect("read input");
                match run_one(f, &data, &last) {
                    Ok(ok) => println!("{file}: no panic (accepted: {ok})"),
                    Err(msg) => {
                        println!("{file}: PANIC {msg}");
                        failed = true;
                    }
                }
            }
            std::process::exit(i32::from(failed));
        }
        _ => {
            let iterations: u64 = args
                .get(1)
                .and_then(|s| s.replace('_', "").parse().ok())
                .unwrap_or_else(|| usage());
            let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let names: Vec<&str> = if cmd == "all" {
                TARGETS.iter().map(|(n, _)| *n).collect()
            } else {
                target(cmd); // validates the name
                vec![cmd.as_str()]
            };
            let last = install_hook();
            let mut any = false;
            for name in names {
                let stats = fuzz(name, target(name), iterations, seed, &last);
                any |= stats.panics > 0;
            }
            std::process::exit(i32::from(any));
        }
    }
}
