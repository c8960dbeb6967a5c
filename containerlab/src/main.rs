//! `contiv-lab`: containerlab's verbs for network-namespace labs.
//!
//! ```text
//! contiv-lab deploy  -t FILE [--reconfigure] [--wait-bgp SECS]
//! contiv-lab destroy -t FILE | --name LAB
//! contiv-lab inspect -t FILE [--format table|json] [--sessions]
//! contiv-lab exec    -t FILE [--node NODE] --cmd CMD
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use containerlab::lab::{self, DeployOptions, Lab};
use containerlab::plan;

#[derive(Debug, Parser)]
#[command(
    name = "contiv-lab",
    version,
    about = "Deploy containerlab topologies onto network namespaces with real routing daemons"
)]
struct Cli {
    /// Where lab state, configs, sockets and logs live.
    #[arg(long, global = true, env = plan::LAB_ROOT_ENV, default_value = plan::DEFAULT_LAB_ROOT)]
    lab_root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Deploy a lab.
    Deploy {
        /// The topology file.
        #[arg(short = 't', long = "topo")]
        topo: PathBuf,
        /// Destroy an existing deployment of the lab first.
        #[arg(long)]
        reconfigure: bool,
        /// Then wait up to SECS for every BGP session of every router to be Established.
        #[arg(long, value_name = "SECS")]
        wait_bgp: Option<f64>,
    },
    /// Destroy a lab: stop its processes, delete its namespaces and links.
    Destroy {
        /// The topology file.
        #[arg(short = 't', long = "topo", required_unless_present = "name")]
        topo: Option<PathBuf>,
        /// The lab name (when the topology file is gone).
        #[arg(long, conflicts_with = "topo")]
        name: Option<String>,
    },
    /// Show the nodes of a lab (or their BGP sessions).
    Inspect {
        /// The topology file.
        #[arg(short = 't', long = "topo")]
        topo: PathBuf,
        #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Show the routers' BGP sessions instead of the nodes.
        #[arg(long)]
        sessions: bool,
    },
    /// Run a command inside one node (or every node).
    Exec {
        /// The topology file.
        #[arg(short = 't', long = "topo")]
        topo: PathBuf,
        /// The node; every node when absent.
        #[arg(long)]
        node: Option<String>,
        /// The command, run with `sh -c`.
        #[arg(long)]
        cmd: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("contiv-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!("contiv-lab creates network namespaces and must run as root");
    }
    match cli.cmd {
        Cmd::Deploy {
            topo,
            reconfigure,
            wait_bgp,
        } => {
            let start = Instant::now();
            let lab = Lab::load(&topo, &cli.lab_root)?;
            let r = lab.deploy(&DeployOptions { reconfigure })?;
            println!(
                "deployed lab '{}': {} nodes, {} links, {} daemons in {:.2} s",
                r.lab,
                r.nodes,
                r.links,
                r.daemons,
                r.elapsed.as_secs_f64()
            );
            print_nodes(&lab.inspect()?);
            if let Some(secs) = wait_bgp {
                let sessions = lab.wait_established(Duration::from_secs_f64(secs))?;
                println!(
                    "all {} BGP sessions Established {:.2} s after deploy started",
                    sessions.len(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
        Cmd::Destroy { topo, name } => {
            let r = match (topo, name) {
                (Some(t), _) => Lab::load(&t, &cli.lab_root)?.destroy()?,
                (None, Some(n)) => lab::destroy_by_name(&cli.lab_root, &n)?,
                (None, None) => unreachable!("clap requires one"),
            };
            println!(
                "destroyed: {} namespaces removed, {} processes stopped in {:.2} s",
                r.namespaces_removed,
                r.processes_stopped,
                r.elapsed.as_secs_f64()
            );
        }
        Cmd::Inspect {
            topo,
            format,
            sessions,
        } => {
            let lab = Lab::load(&topo, &cli.lab_root)?;
            if sessions {
                let s = lab.sessions()?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                    Format::Table => {
                        let rows = s
                            .iter()
                            .map(|x| {
                                vec![
                                    x.node.clone(),
                                    x.daemon.to_string(),
                                    x.peer.clone(),
                                    x.state.clone(),
                                    x.prefixes.map(|p| p.to_string()).unwrap_or("-".into()),
                                ]
                            })
                            .collect();
                        print_table(&["NODE", "DAEMON", "PEER", "STATE", "PREFIXES"], rows);
                    }
                }
            } else {
                let nodes = lab.inspect()?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "containers": nodes }))?
                    ),
                    Format::Table => print_nodes(&nodes),
                }
            }
        }
        Cmd::Exec { topo, node, cmd } => {
            let lab = Lab::load(&topo, &cli.lab_root)?;
            let nodes: Vec<String> = match node {
                Some(n) => vec![n],
                None => lab
                    .topology()
                    .nodes
                    .iter()
                    .map(|n| n.name.clone())
                    .collect(),
            };
            let many = nodes.len() > 1;
            let mut failed = false;
            for n in nodes {
                if many {
                    println!("--- {n}");
                }
                let status = lab
                    .command(&n, &cmd)?
                    .status()
                    .with_context(|| format!("running the command in node '{n}'"))?;
                failed |= !status.success();
                if !many && !status.success() {
                    return Ok(ExitCode::from(
                        status.code().unwrap_or(1).clamp(1, 255) as u8
                    ));
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_nodes(nodes: &[lab::NodeStatus]) {
    let rows = nodes
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.kind.clone(),
                n.image.clone(),
                n.daemon.clone(),
                n.state.clone(),
                n.ipv4_address.join(" "),
            ]
        })
        .collect();
    print_table(
        &["NAME", "KIND", "IMAGE", "DAEMON", "STATE", "IPV4 ADDRESS"],
        rows,
    );
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}
