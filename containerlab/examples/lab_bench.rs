//! Lab benchmark: for each fabric, deploy -> every BGP session Established -> destroy,
//! several rounds, printing the median, min and max of each phase.
//!
//! `cargo run --release -p containerlab --example lab_bench -- [ROUNDS] [FABRIC...]`
//! (run as root; `make bench` runs it with the defaults: 5 rounds of every fabric).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use containerlab::lab::DeployOptions;
use containerlab::{Lab, plan};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let mut fabrics: Vec<String> = args.collect();
    if fabrics.is_empty() {
        fabrics = ["quickstart", "dual-homed", "leaf-spine"]
            .map(String::from)
            .to_vec();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    println!(
        "{:<12} {:>6} {:>6} {:>8} | {:>22} | {:>22} | {:>22}",
        "fabric",
        "nodes",
        "links",
        "sessions",
        "deploy s (med min max)",
        "to Established s",
        "destroy s"
    );
    for fabric in &fabrics {
        let file = root.join(fabric).join(format!("{fabric}.clab.yml"));
        let lab = Lab::load(&file, &plan::default_lab_root())?;
        let (mut deploy, mut converge, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
        let mut sessions = 0;
        for _ in 0..rounds {
            let t0 = Instant::now();
            lab.deploy(&DeployOptions { reconfigure: true })?;
            deploy.push(t0.elapsed());
            let s = lab.wait_established(Duration::from_secs(120));
            converge.push(t0.elapsed());
            let t1 = Instant::now();
            lab.destroy()?;
            destroy.push(t1.elapsed());
            sessions = s?.len();
        }
        println!(
            "{:<12} {:>6} {:>6} {:>8} | {} | {} | {}",
            fabric,
            lab.plan().nodes.len(),
            lab.plan().links.len(),
            sessions,
            stats(&mut deploy),
            stats(&mut converge),
            stats(&mut destroy)
        );
    }
    Ok(())
}

fn stats(v: &mut [Duration]) -> String {
    v.sort();
    let s = |d: Duration| d.as_secs_f64();
    format!(
        "{:>6.2} {:>6.2} {:>6.2}",
        s(v[v.len() / 2]),
        s(v[0]),
        s(v[v.len() - 1])
    )
}
