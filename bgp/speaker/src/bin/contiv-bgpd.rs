//! `contiv-bgpd`: the speaker as a daemon of its own, run from a TOML file (the format
//! of [`bgp_speaker::config`]; `examples/contiv-bgpd.toml` shows every part).
//!
//! ```text
//! contiv-bgpd -c /etc/contiv/bgpd.toml           # run
//! contiv-bgpd -c /etc/contiv/bgpd.toml --check   # validate, print problems, exit 2 if any
//! ```
//!
//! - Every neighbor with an `address` gets a session; the `originate` prefixes are
//!   advertised to all of them.
//! - A `range` accepts dynamic neighbors ([`Speaker::add_range`]): a connection from an
//!   address in it that has no neighbor of its own (the narrowest range wins) gets a
//!   passive session with the range's settings (`peer_asn`, or `allowed_asns`: another
//!   AS is refused with OPEN error Bad Peer AS; the MD5 password becomes the
//!   listener's key for the prefix). At most 100 dynamic neighbors per range at a time
//!   (`daemon::plan::DYNAMIC_LIMIT`; further connections are refused and logged). A
//!   dynamic neighbor goes, its routes withdrawn, when its session leaves Established (or has not
//!   reached it within its hold time); the peer's next connection creates it again.
//! - Session changes (state, last error) are logged as they are seen.
//! - `SIGHUP` reloads the file and applies only the difference: neighbors added get a
//!   session, removed ones are closed with a Cease, changed ones are reset only when a
//!   setting the speaker uses changed (AS, timers, passive, source address, MD5, TTL,
//!   ADD-PATH, policies, max-prefix, BFD: `config::NeighborField::needs_reset`); ranges
//!   likewise, a change resetting every dynamic session of the range;
//!   prefixes are announced or withdrawn one by one. Other sessions are not touched. A
//!   change of our AS, router id or listen socket restarts every session. A file that
//!   does not load is logged and the running configuration stays.
//! - `SIGTERM` / `SIGINT` close every session with a Cease and exit 0.
//! - `SIGUSR1` writes a status dump (neighbors, originated prefixes, learned routes) to
//!   the log.
//!
//! Exit codes: 0 clean stop (or a valid `--check`), 1 a runtime failure (e.g. the listen
//! address is taken), 2 a configuration that does not load.
//!
//! Graceful restart runs for every session when a neighbor enables it. ADD-PATH
//! (`add_path`) runs both ways: `receive` offers the peer to send several paths per
//! prefix, `send` sends it every path we would advertise (with `export_learned`, the
//! paths learned from the other peers), `both` does both; the union of the modes is
//! offered for every family.
//! Not run yet, reported by `--check` and at start as ignored: ADD-PATH modes that
//! differ per family, graceful restart settings that differ per neighbor, and
//! listen addresses beyond the first one (the speaker has one listener).
//! Learned routes are only logged; installing them in a FIB is the agent's job.
//!
//! This file keeps the arguments, the signals and the loop; loading, planning a reload
//! and applying it are [`bgp_speaker::daemon`].
//!
//! [`Speaker::add_range`]: bgp_speaker::driver::Speaker::add_range

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bgp_speaker::config::NeighborKey;
use bgp_speaker::daemon::plan::ignored;
use bgp_speaker::daemon::{self, Daemon};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// How often the neighbors' states are looked at for the log.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Exit code of a configuration that does not load.
const EXIT_CONFIG: u8 = 2;

/// The contiv-rs BGP speaker, run from a TOML configuration file.
#[derive(Debug, Parser)]
#[command(name = "contiv-bgpd", version)]
struct Args {
    /// The configuration file (TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration, print its problems (and the settings this speaker
    /// ignores) and exit: 0 when it is valid, 2 when it is not.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check {
        return check(&args.config);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args.config))
}

/// `--check`: problems on stdout, one a line.
fn check(path: &Path) -> ExitCode {
    match daemon::load(path) {
        Ok(c) => {
            let neighbors = c
                .neighbors
                .iter()
                .filter(|n| matches!(n.key, NeighborKey::Address(_)))
                .count();
            let ranges = c.neighbors.len() - neighbors;
            println!(
                "{}: valid: AS {}, router id {}, {neighbors} neighbor(s), {ranges} range(s) of dynamic neighbors, {} prefix(es) to originate",
                path.display(),
                c.global.asn,
                c.global.router_id,
                c.originate.len()
            );
            for w in ignored(&c) {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                println!("{line}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

async fn run(path: PathBuf) -> ExitCode {
    // Handlers first: a SIGHUP that arrives while starting must not end the process.
    let signals = (|| -> std::io::Result<_> {
        Ok((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::user_defined1())?,
        ))
    })();
    let (mut hup, mut term, mut int, mut usr1) = match signals {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("installing signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match daemon::load(&path) {
        Ok(c) => c,
        Err(e) => {
            for line in e.lines() {
                tracing::error!("{line}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in ignored(&config) {
        tracing::warn!("{w}");
    }
    let mut daemon = match Daemon::start(path, config).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("starting the speaker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let code = loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading {}", daemon.path().display());
                if let Err(e) = daemon.reload().await {
                    tracing::error!("reload left no running speaker: {e}");
                    break ExitCode::FAILURE;
                }
            }
            _ = term.recv() => {
                tracing::info!("SIGTERM: closing every session");
                break ExitCode::SUCCESS;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: closing every session");
                break ExitCode::SUCCESS;
            }
            _ = usr1.recv() => daemon.dump().await,
            _ = tick.tick() => daemon.log_changes(),
        }
    };
    daemon.shutdown().await;
    tracing::info!("stopped");
    code
}
