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
//!   (`DYNAMIC_LIMIT`; further connections are refused and logged). A dynamic neighbor
//!   goes, its routes withdrawn, when its session leaves Established (or has not
//!   reached it within its hold time); the peer's next connection creates it again.
//! - Session changes (state, last error) are logged as they are seen.
//! - `SIGHUP` reloads the file and applies only the difference: neighbors added get a
//!   session, removed ones are closed with a Cease, changed ones are reset only when a
//!   setting the speaker uses changed (AS, timers, passive, source address, MD5, TTL,
//!   ADD-PATH, policies, max-prefix); ranges likewise, a change resetting every dynamic
//!   session of the range;
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
//! differ per family, graceful restart settings that differ per neighbor, BFD, and
//! listen addresses beyond the first one (the speaker has one listener).
//! Learned routes are only logged; installing them in a FIB is the agent's job.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bgp_speaker::config::{self, Config, ConfigError, Neighbor, NeighborField, NeighborKey};
use bgp_speaker::driver::{
    GracefulRestartConfig, PeerConfig, Speaker, SpeakerConfig, SpeakerError,
};
use bgp_speaker::transport::BGP_PORT;
use clap::Parser;
use ipnet::IpNet;
use tokio::signal::unix::{SignalKind, signal};

/// Most next hops in one ECMP group of learned routes.
const MAX_PATHS: usize = 16;

/// How often the neighbors' states are looked at for the log.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Exit code of a configuration that does not load.
const EXIT_CONFIG: u8 = 2;

/// Most dynamic neighbors of one range at a time (FRR's default `bgp listen limit`);
/// further connections from the range are refused and logged.
const DYNAMIC_LIMIT: usize = 100;

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

/// Loads the configuration and checks what the policy module interprets (the
/// `[policies]` section and the names neighbors use).
fn load_checked(path: &Path) -> Result<Config, Vec<String>> {
    let c = Config::load(path).map_err(|e| {
        let mut lines = Vec::new();
        print_config_error(&e, |l| lines.push(l));
        lines
    })?;
    let mut problems = Vec::new();
    for n in &c.neighbors {
        if let Err(e) = neighbor_policy(&c, n) {
            problems.push(format!("error: {}: {e}", n.key));
        }
    }
    if problems.is_empty() {
        Ok(c)
    } else {
        let mut lines = vec![format!("{}: {} problem(s)", path.display(), problems.len())];
        lines.extend(problems);
        Err(lines)
    }
}

/// `--check`: problems on stdout, one a line.
fn check(path: &Path) -> ExitCode {
    match load_checked(path) {
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
        Err(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn print_config_error(e: &ConfigError, mut out: impl FnMut(String)) {
    match e {
        ConfigError::Invalid { origin, problems } => {
            out(format!("{origin}: {} problem(s)", problems.len()));
            for p in problems {
                out(format!("error: {p}"));
            }
        }
        other => out(format!("error: {other}")),
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
    let config = match load_checked(&path) {
        Ok(c) => c,
        Err(lines) => {
            for line in lines {
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
                tracing::info!("SIGHUP: reloading {}", daemon.path.display());
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
    if let Some(s) = daemon.speaker.take() {
        s.shutdown().await;
    }
    tracing::info!("stopped");
    code
}

// ---- the configuration as the driver takes it ---------------------------------------

fn speaker_config(c: &Config) -> SpeakerConfig {
    SpeakerConfig {
        asn: c.global.asn,
        router_id: c.global.router_id,
        listen: c
            .global
            .listen
            .addresses
            .first()
            .map(|a| SocketAddr::new(*a, c.global.listen.port)),
        max_paths: MAX_PATHS,
        export_learned: c.global.export_learned,
        // Nothing is installed in a FIB: the route dump asks the Loc-RIB instead.
        publish_routes: false,
        communities: Vec::new(),
        large_communities: Vec::new(),
        // The speaker runs graceful restart for all its sessions: on when a neighbor
        // asks for it, with the first such neighbor's timers.
        graceful_restart: speaker_gr(c).map(|g| GracefulRestartConfig {
            restart_time: g.restart_time,
            restarting: false,
            stale_time: std::time::Duration::from_secs(u64::from(g.stale_time)),
        }),
    }
}

fn speaker_gr(c: &Config) -> Option<bgp_speaker::config::GracefulRestart> {
    c.neighbors
        .iter()
        .map(|n| n.graceful_restart)
        .find(|g| g.enabled)
}

/// The `[policies]` section, interpreted.
fn policies(c: &Config) -> Result<bgp::policy::Policies, String> {
    toml::Value::Table(c.policies.clone())
        .try_into()
        .map_err(|e| format!("policies: {e}"))
}

/// A neighbor's policies by name; several names are not supported yet.
fn neighbor_policy(c: &Config, n: &Neighbor) -> Result<bgp::policy::NeighborPolicy, String> {
    let all = policies(c)?;
    let pick = |what: &str, names: &[String]| -> Result<Option<bgp::policy::Policy>, String> {
        match names {
            [] => Ok(None),
            [one] => all
                .get(one)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("{what} {one:?} is not in [policies]")),
            _ => Err(format!(
                "{what}: one policy per neighbor for now, got {names:?}"
            )),
        }
    };
    Ok(bgp::policy::NeighborPolicy {
        import: pick("import_policy", &n.import_policy)?,
        export: pick("export_policy", &n.export_policy)?,
        max_prefix: n.max_prefix.map(|limit| bgp::policy::MaxPrefix {
            limit,
            warning_only: false,
            restart_after: None,
        }),
    })
}

/// The driver's view of a neighbor; for a range, the template of its dynamic neighbors
/// (its address is the range's first; each dynamic neighbor gets its own).
fn peer_config(c: &Config, n: &Neighbor) -> PeerConfig {
    let local_asn = c.global.asn;
    let addr = n.key.prefix().addr();
    let (remote_as, allowed_as) = match &n.peer_as {
        config::PeerAs::Exact(a) => (Some(*a), Vec::new()),
        config::PeerAs::AnyOf(set) => (None, set.iter().copied().collect()),
    };
    PeerConfig {
        addr,
        port: BGP_PORT,
        remote_as,
        allowed_as,
        passive: n.passive,
        hold_time: n.hold_time,
        keepalive: n.keepalive,
        connect_retry: Duration::from_secs(n.connect_retry.into()),
        transport: n.transport_opts(local_asn),
        description: n.description.clone().unwrap_or_default(),
        next_hop_v6: None,
        // Checked when the configuration was loaded.
        policy: neighbor_policy(c, n).unwrap_or_default(),
        ebgp_requires_policy: c.global.ebgp_requires_policy,
        add_path_receive: n.add_path.values().any(|m| m.receives()),
        add_path_send: n.add_path.values().any(|m| m.sends()),
        // BFD with FRR's default timers: 300 ms × 3.
        bfd: n.bfd.then(|| {
            let every = Duration::from_millis(u64::from(n.bfd_interval_ms));
            bgp_speaker::bfd::BfdConfig {
                desired_min_tx: every,
                required_min_rx: every,
                detect_mult: n.bfd_multiplier,
            }
        }),
    }
}

/// Starts a neighbor's session, or accepts a range's dynamic neighbors (replacing what
/// ran under that key: its sessions are reset).
fn run_neighbor(s: &Speaker, c: &Config, n: &Neighbor) -> Result<(), SpeakerError> {
    let p = peer_config(c, n);
    match n.key {
        NeighborKey::Address(_) => s.add_neighbor(p),
        NeighborKey::Range(r) => s.add_range(r, p, DYNAMIC_LIMIT),
    }
}

/// Stops a neighbor's session, or a range with its dynamic neighbors.
fn stop_neighbor(s: &Speaker, key: NeighborKey) {
    match key {
        NeighborKey::Address(a) => {
            s.remove_neighbor(a);
        }
        NeighborKey::Range(r) => {
            s.remove_range(r);
        }
    }
}

/// Whether a changed setting is one the driver uses, so that the session must be reset
/// for it to take effect (ADD-PATH: the capability offered in our OPEN; policies and
/// max-prefix: the session starts over under the new ones — the speaker keeps no
/// pre-policy copy of what the peer sent; BFD: it starts with the session). The others
/// (description, families, graceful restart) leave the session alone.
fn driver_uses(f: NeighborField) -> bool {
    use NeighborField::*;
    matches!(
        f,
        PeerAs
            | LocalAddress
            | Passive
            | HoldTime
            | Keepalive
            | ConnectRetry
            | Md5Password
            | TtlSecurity
            | EbgpMultihop
            | AddPath
            | ImportPolicy
            | ExportPolicy
            | MaxPrefix
            | Bfd
    )
}

/// The settings of a valid configuration that this speaker does not run, one sentence
/// each.
fn ignored(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let listen = &c.global.listen.addresses;
    if listen.len() > 1 {
        let rest: Vec<String> = listen[1..].iter().map(|a| a.to_string()).collect();
        out.push(format!(
            "global.listen.addresses: only {} is listened on; {} ignored",
            listen[0],
            rest.join(", ")
        ));
    }
    for n in &c.neighbors {
        let at = format!("neighbor {}", n.key);
        if n.passive
            && listen
                .first()
                .is_none_or(|l| l.is_ipv4() != n.key.prefix().addr().is_ipv4())
        {
            out.push(format!(
                "{at}: passive, but no listener of its address family; the session cannot come up"
            ));
        }
        let mut fields: Vec<String> = Vec::new();
        // The speaker offers one ADD-PATH mode for both unicast families: a setting that
        // differs per family is widened.
        let mut modes = n.add_path.values();
        let first = modes.next();
        if modes.any(|m| Some(m) != first)
            || (!n.add_path.is_empty() && n.add_path.len() < n.families.len())
        {
            fields.push(
                "add_path per family (the speaker offers the union of the modes for every family)"
                    .into(),
            );
        }
        if n.graceful_restart.enabled && speaker_gr(c) != Some(n.graceful_restart) {
            fields.push(
                "graceful_restart (differing per neighbor; the first neighbor's applies to all)"
                    .into(),
            );
        }
        if !fields.is_empty() {
            out.push(format!(
                "{at}: {} not implemented by the speaker yet; ignored",
                fields.join(", ")
            ));
        }
    }
    out
}

/// What a reload does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Our AS, router id or listen socket changed: a new speaker with every session.
    RestartAll(&'static str),
    /// A neighbor removed (a range: with its dynamic neighbors).
    Remove(NeighborKey),
    Add(NeighborKey),
    /// A changed neighbor whose session is reset (fields named as in the file); for a
    /// range, every dynamic neighbor's.
    Reset(NeighborKey, Vec<&'static str>),
    /// A changed neighbor whose session is left alone (nothing the driver uses changed).
    Keep(NeighborKey, Vec<&'static str>),
    Originate(Vec<IpNet>),
    Withdraw(Vec<IpNet>),
}

/// The steps that bring the running speaker from `old` to `new`.
fn plan(old: &Config, new: &Config) -> Vec<Step> {
    let d = config::diff(old, new);
    if d.reset_all {
        return vec![Step::RestartAll("the AS or router id changed")];
    }
    if speaker_config(old).listen != speaker_config(new).listen {
        return vec![Step::RestartAll("the listen socket changed")];
    }
    if old.global.export_learned != new.global.export_learned
        || old.global.ebgp_requires_policy != new.global.ebgp_requires_policy
        || old.policies != new.policies
    {
        return vec![Step::RestartAll(
            "export_learned, ebgp_requires_policy or [policies] changed",
        )];
    }
    let mut steps: Vec<Step> = Vec::new();
    steps.extend(d.removed.iter().copied().map(Step::Remove));
    for c in &d.changed {
        let names: Vec<&'static str> = c.fields.iter().map(|f| f.name()).collect();
        if c.fields.iter().any(|f| driver_uses(*f)) {
            steps.push(Step::Reset(c.key, names))
        } else {
            steps.push(Step::Keep(c.key, names))
        }
    }
    steps.extend(d.added.iter().copied().map(Step::Add));
    if !d.originate_removed.is_empty() {
        steps.push(Step::Withdraw(d.originate_removed));
    }
    if !d.originate_added.is_empty() {
        steps.push(Step::Originate(d.originate_added));
    }
    steps
}

// ---- the daemon -------------------------------------------------------------------------

struct Daemon {
    path: PathBuf,
    config: Config,
    /// Always `Some` while running; taken for a restart and at the end.
    speaker: Option<Speaker>,
    /// Last logged state and error of each neighbor.
    seen: BTreeMap<IpAddr, (String, Option<String>)>,
}

impl Daemon {
    async fn start(path: PathBuf, config: Config) -> Result<Daemon, SpeakerError> {
        let speaker = start_speaker(&config).await?;
        Ok(Daemon {
            path,
            config,
            speaker: Some(speaker),
            seen: BTreeMap::new(),
        })
    }

    fn speaker(&self) -> &Speaker {
        self.speaker.as_ref().expect("a running speaker")
    }

    /// Loads the file again and applies the difference. `Err` only when no speaker is
    /// left running (a restart failed with the new and with the old configuration).
    async fn reload(&mut self) -> Result<(), SpeakerError> {
        let new = match load_checked(&self.path) {
            Ok(c) => c,
            Err(lines) => {
                for line in lines {
                    tracing::error!("reload: {line}");
                }
                tracing::error!("reload: keeping the running configuration");
                return Ok(());
            }
        };
        let steps = plan(&self.config, &new);
        if steps.is_empty() {
            tracing::info!("reload: nothing changed");
            self.config = new;
            return Ok(());
        }
        for w in ignored(&new) {
            tracing::warn!("{w}");
        }
        for step in steps {
            match step {
                Step::RestartAll(why) => {
                    tracing::info!("reload: {why}: restarting every session");
                    if let Some(s) = self.speaker.take() {
                        s.shutdown().await;
                    }
                    self.seen.clear();
                    match start_speaker(&new).await {
                        Ok(s) => self.speaker = Some(s),
                        Err(e) => {
                            tracing::error!(
                                "reload: starting with the new configuration: {e}; back to the old one"
                            );
                            self.speaker = Some(start_speaker(&self.config).await?);
                            return Ok(());
                        }
                    }
                }
                Step::Remove(k) => {
                    match k {
                        NeighborKey::Address(_) => tracing::info!("reload: neighbor {k} removed"),
                        NeighborKey::Range(_) => {
                            tracing::info!("reload: range {k} removed with its dynamic neighbors")
                        }
                    }
                    stop_neighbor(self.speaker(), k);
                    self.forget(k);
                }
                Step::Add(k) | Step::Reset(k, _) => {
                    if let Step::Reset(_, fields) = &step {
                        match k {
                            NeighborKey::Address(_) => tracing::info!(
                                "reload: neighbor {k}: {} changed; resetting its session",
                                fields.join(", ")
                            ),
                            NeighborKey::Range(_) => tracing::info!(
                                "reload: range {k}: {} changed; resetting its dynamic neighbors",
                                fields.join(", ")
                            ),
                        }
                    } else {
                        tracing::info!("reload: neighbor {k} added");
                    }
                    if let Some(n) = new.neighbor(&k)
                        && let Err(e) = run_neighbor(self.speaker(), &new, n)
                    {
                        tracing::error!("reload: neighbor {k}: {e}");
                    }
                    self.forget(k);
                }
                Step::Keep(k, fields) => tracing::info!(
                    "reload: neighbor {k}: {} changed; not used by this speaker, session untouched",
                    fields.join(", ")
                ),
                Step::Withdraw(p) => {
                    tracing::info!("reload: withdrawing {}", list(&p));
                    self.speaker().withdraw(p)?;
                }
                Step::Originate(p) => {
                    tracing::info!("reload: originating {}", list(&p));
                    self.speaker().originate(p)?;
                }
            }
        }
        self.config = new;
        Ok(())
    }

    /// Forgets the logged state of the neighbor, or of a range's dynamic neighbors.
    fn forget(&mut self, key: NeighborKey) {
        self.seen.retain(|a, _| !key.contains(*a));
    }

    /// Logs every neighbor whose state or last error changed since the last look, and
    /// dynamic neighbors that went.
    fn log_changes(&mut self) {
        let Some(s) = &self.speaker else { return };
        let neighbors = s.neighbors();
        let gone: Vec<IpAddr> = self
            .seen
            .keys()
            .filter(|a| neighbors.iter().all(|n| n.address != **a))
            .copied()
            .collect();
        for a in gone {
            self.seen.remove(&a);
            tracing::info!("neighbor {}: gone", describe(&self.config, a));
        }
        for n in neighbors {
            let now = (n.state.clone(), n.last_error.clone());
            let before = self.seen.insert(n.address, now.clone());
            let (from, err_before) = match before {
                Some((st, e)) => (st, e),
                None => ("(new)".to_string(), None),
            };
            if from == now.0 && err_before == now.1 {
                continue;
            }
            let who = describe(&self.config, n.address);
            if from != now.0 {
                if now.0 == "Established" {
                    tracing::info!("neighbor {who}: {from} -> Established");
                } else if from == "Established" {
                    tracing::warn!(
                        "neighbor {who}: Established -> {} ({})",
                        now.0,
                        now.1.as_deref().unwrap_or("no error recorded")
                    );
                } else {
                    tracing::info!("neighbor {who}: {from} -> {}", now.0);
                }
            } else if let Some(e) = &now.1 {
                tracing::info!("neighbor {who}: {} ({e})", now.0);
            }
        }
    }

    /// `SIGUSR1`: what runs, in the log.
    async fn dump(&self) {
        let s = self.speaker();
        tracing::info!(
            "status: AS {}, router id {}, listening on {}",
            self.config.global.asn,
            self.config.global.router_id,
            s.listen_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "nothing".into())
        );
        for n in s.neighbors() {
            tracing::info!(
                "status: neighbor {} AS {} {}{}: {} prefixes received, {} advertised, {} updates in, {} out, {} flaps{}{}",
                describe(&self.config, n.address),
                n.remote_as
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "any".into()),
                n.state,
                n.established_at
                    .map(|t| format!(" since {t}"))
                    .unwrap_or_default(),
                n.prefixes_received,
                n.prefixes_advertised,
                n.updates_in,
                n.updates_out,
                n.flaps,
                if n.capabilities.is_empty() {
                    String::new()
                } else {
                    format!(", negotiated: {}", n.capabilities.join(", "))
                },
                n.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
        }
        match s.originated().await {
            Ok(p) => tracing::info!("status: originating {}", list(&p)),
            Err(e) => tracing::warn!("status: {e}"),
        }
        let routes = s.loc_rib().await.unwrap_or_default();
        tracing::info!("status: {} learned route(s)", routes.len());
        for (prefix, hops) in routes.iter().take(100) {
            let hops: Vec<String> = hops.iter().map(|h| h.to_string()).collect();
            tracing::info!("status: route {prefix} via {}", hops.join(", "));
        }
        if routes.len() > 100 {
            tracing::info!("status: ... {} more", routes.len() - 100);
        }
    }
}

/// A new speaker with every neighbor of `c` and its prefixes. A listen socket that a
/// speaker just shut down may take a moment to be released: binding is retried briefly.
async fn start_speaker(c: &Config) -> Result<Speaker, SpeakerError> {
    let mut attempts = 0;
    let speaker = loop {
        match Speaker::start(speaker_config(c)).await {
            Ok(s) => break s,
            Err(SpeakerError::Transport(e)) if attempts < 50 => {
                attempts += 1;
                tracing::debug!("starting the speaker: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    };
    match speaker.listen_addr() {
        Some(a) => tracing::info!(
            "AS {}, router id {}, listening on {a}",
            c.global.asn,
            c.global.router_id
        ),
        None => tracing::info!(
            "AS {}, router id {}, not listening (connecting out only)",
            c.global.asn,
            c.global.router_id
        ),
    }
    for n in &c.neighbors {
        let p = peer_config(c, n);
        let who = match n.key {
            NeighborKey::Address(a) => describe(c, a),
            NeighborKey::Range(r) => format!("range {r} (dynamic, at most {DYNAMIC_LIMIT})"),
        };
        tracing::info!(
            "neighbor {who}: AS {}{}{}",
            match &n.peer_as {
                config::PeerAs::Exact(a) => a.to_string(),
                config::PeerAs::AnyOf(set) => set
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            },
            if p.passive { ", passive" } else { "" },
            if p.transport.md5_password.is_some() {
                ", TCP MD5"
            } else {
                ""
            }
        );
        run_neighbor(&speaker, c, n)?;
    }
    if !c.originate.is_empty() {
        tracing::info!("originating {}", list(&c.originate));
        speaker.originate(c.originate.clone())?;
    }
    Ok(speaker)
}

/// `10.0.0.2 (tor-1)`, or the address alone; a dynamic neighbor names its range:
/// `10.1.1.7 (dynamic, range 10.1.1.0/24, leaves)`.
fn describe(c: &Config, addr: IpAddr) -> String {
    let Some(n) = c.neighbor_for(addr) else {
        return addr.to_string();
    };
    let desc = n.description.as_deref().filter(|d| !d.is_empty());
    match (n.key, desc) {
        (NeighborKey::Address(_), Some(d)) => format!("{addr} ({d})"),
        (NeighborKey::Address(_), None) => addr.to_string(),
        (NeighborKey::Range(r), Some(d)) => format!("{addr} (dynamic, range {r}, {d})"),
        (NeighborKey::Range(r), None) => format!("{addr} (dynamic, range {r})"),
    }
}

fn list(prefixes: &[IpNet]) -> String {
    if prefixes.is_empty() {
        return "nothing".into();
    }
    prefixes
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
originate = ["20.1.1.0/24", "20.1.2.0/24"]

[global]
asn = 65201
router_id = "10.1.1.1"

[[neighbors]]
address = "10.1.1.0"
peer_asn = 65001
description = "tor1"
hold_time = 9
connect_retry = 2

[[neighbors]]
address = "10.1.2.0"
peer_asn = 65002
hold_time = 9
md5_password = "s3cret"
"#;

    fn cfg(text: &str) -> Config {
        Config::from_toml_str(text).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn addr(s: &str) -> NeighborKey {
        NeighborKey::Address(ip(s))
    }

    #[test]
    fn neighbors_map_to_the_driver() {
        let c = cfg(BASE);
        let sp = speaker_config(&c);
        assert_eq!(sp.asn, 65201);
        assert_eq!(sp.listen, Some("0.0.0.0:179".parse().unwrap()));
        let p = peer_config(&c, &c.neighbors[0]);
        assert_eq!(p.addr, ip("10.1.1.0"));
        assert_eq!(p.remote_as, Some(65001));
        assert_eq!((p.hold_time, p.keepalive), (9, 3));
        assert_eq!(p.connect_retry, Duration::from_secs(2));
        assert_eq!(p.description, "tor1");
        assert!(p.transport.md5_password.is_none());
        // eBGP without GTSM or multihop: TTL 1.
        assert_eq!(p.transport.ttl, bgp_speaker::transport::TtlMode::Fixed(1));
        let p2 = peer_config(&c, &c.neighbors[1]);
        assert_eq!(
            p2.transport
                .md5_password
                .as_ref()
                .map(|p| p.expose_secret()),
            Some("s3cret")
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let c = Config::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/contiv-bgpd.toml"
        ))
        .unwrap();
        assert_eq!(c.neighbors.len(), 1);
        assert_eq!(c.originate.len(), 2);
        assert!(ignored(&c).is_empty(), "{:?}", ignored(&c));
    }

    #[test]
    fn nothing_changed_plans_nothing() {
        assert!(plan(&cfg(BASE), &cfg(BASE)).is_empty());
    }

    #[test]
    fn a_changed_password_resets_only_that_neighbor() {
        let new = cfg(&BASE.replace("\"s3cret\"", "\"other\""));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Reset(addr("10.1.2.0"), vec!["md5_password"])]
        );
    }

    #[test]
    fn a_description_change_leaves_the_session_alone() {
        let new = cfg(&BASE.replace("\"tor1\"", "\"tor-1\""));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Keep(
                NeighborKey::Address(ip("10.1.1.0")),
                vec!["description"]
            )]
        );
    }

    #[test]
    fn prefixes_and_neighbors_added_and_removed() {
        let new = cfg(&BASE
            .replace("\"20.1.2.0/24\"", "\"20.1.3.0/24\"")
            .replace("10.1.2.0", "10.1.3.0"));
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![
                Step::Remove(addr("10.1.2.0")),
                Step::Add(addr("10.1.3.0")),
                Step::Withdraw(vec!["20.1.2.0/24".parse().unwrap()]),
                Step::Originate(vec!["20.1.3.0/24".parse().unwrap()]),
            ]
        );
    }

    #[test]
    fn identity_or_listen_changes_restart_everything() {
        let new = cfg(&BASE.replace("asn = 65201", "asn = 65202"));
        assert!(matches!(plan(&cfg(BASE), &new)[..], [Step::RestartAll(_)]));
        let new = cfg(&BASE.replace(
            "router_id = \"10.1.1.1\"",
            "router_id = \"10.1.1.1\"\nlisten = { addresses = [] }",
        ));
        assert!(matches!(plan(&cfg(BASE), &new)[..], [Step::RestartAll(_)]));
        // Only the second listen address changed: the listener is the same.
        let new = cfg(&BASE.replace(
            "router_id = \"10.1.1.1\"",
            "router_id = \"10.1.1.1\"\nlisten = { addresses = [\"0.0.0.0\"] }",
        ));
        assert!(plan(&cfg(BASE), &new).is_empty());
    }

    #[test]
    fn policies_are_resolved_and_checked() {
        let with = |extra: &str, neighbor: &str| {
            cfg(&format!(
                "{}\n{extra}",
                BASE.replace(
                    "hold_time = 9\nmd5",
                    &format!("hold_time = 9\n{neighbor}\nmd5")
                )
            ))
        };
        let c = with(
            "[policies.from-tor]\ndefault = \"reject\"\n[[policies.from-tor.terms]]\nthen = \"accept\"\n",
            "import_policy = \"from-tor\"\nmax_prefix = 10",
        );
        let p = neighbor_policy(&c, &c.neighbors[1]).unwrap();
        assert!(p.import.is_some() && p.export.is_none());
        assert_eq!(p.max_prefix.map(|m| m.limit), Some(10));
        let pc = peer_config(&c, &c.neighbors[1]);
        assert!(pc.ebgp_requires_policy, "RFC 8212 is the default");
        let c = with("", "import_policy = \"nosuch\"");
        assert!(
            neighbor_policy(&c, &c.neighbors[1])
                .unwrap_err()
                .contains("nosuch")
        );
    }

    #[test]
    fn unimplemented_settings_are_reported() {
        let c = cfg(BASE);
        let w = ignored(&c);
        assert!(
            w.iter().any(|w| w.contains("only 0.0.0.0 is listened on")),
            "{w:?}"
        );
        let c = cfg(&BASE.replace(
            "hold_time = 9\nmd5",
            "hold_time = 9\nbfd = true\nmax_prefix = 10\nmd5",
        ));
        let w = ignored(&c);
        // BFD runs now (300 ms × 3): no longer reported as ignored.
        assert!(!w.iter().any(|w| w.contains("bfd")), "{w:?}");
        let n = c.neighbors.iter().find(|n| n.bfd).unwrap();
        assert_eq!(
            peer_config(&c, n).bfd,
            Some(bgp_speaker::bfd::BfdConfig::default())
        );
    }

    const RANGE: &str = r#"
[[neighbors]]
range = "10.9.0.0/24"
allowed_asns = [65009, 65010]
hold_time = 30
md5_password = "r4nge"
description = "leaves"
"#;

    #[test]
    fn ranges_are_run_with_their_settings() {
        let c = cfg(&format!("{BASE}{RANGE}"));
        // Nothing reported about the range: it is run.
        let w = ignored(&c);
        assert!(w.iter().all(|w| !w.contains("10.9.0.0/24")), "{w:?}");
        let p = peer_config(&c, &c.neighbors[2]);
        assert_eq!(p.remote_as, None);
        assert_eq!(p.allowed_as, vec![65009, 65010]);
        assert!(p.passive, "dynamic neighbors only accept");
        assert_eq!((p.hold_time, p.keepalive), (30, 10));
        assert_eq!(
            p.transport.md5_password.as_ref().map(|p| p.expose_secret()),
            Some("r4nge")
        );
        assert!(p.accepts_as(65010) && !p.accepts_as(65011));
        // One AS: the FSM checks it exactly.
        let c = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("allowed_asns = [65009, 65010]", "peer_asn = 65009")
        ));
        let p = peer_config(&c, &c.neighbors[2]);
        assert_eq!((p.remote_as, p.allowed_as.is_empty()), (Some(65009), true));
        // A dynamic neighbor is logged with its range.
        let c = cfg(&format!("{BASE}{RANGE}"));
        assert_eq!(
            describe(&c, ip("10.9.0.7")),
            "10.9.0.7 (dynamic, range 10.9.0.0/24, leaves)"
        );
        assert_eq!(describe(&c, ip("10.1.1.0")), "10.1.1.0 (tor1)");
        assert_eq!(describe(&c, ip("10.8.0.1")), "10.8.0.1");
    }

    #[test]
    fn reloads_add_remove_and_reset_ranges() {
        let range = NeighborKey::Range("10.9.0.0/24".parse().unwrap());
        let with = cfg(&format!("{BASE}{RANGE}"));
        assert_eq!(plan(&cfg(BASE), &with), vec![Step::Add(range)]);
        assert_eq!(plan(&with, &cfg(BASE)), vec![Step::Remove(range)]);
        // A setting the driver uses resets the range's dynamic neighbors.
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("[65009, 65010]", "[65009]")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Reset(range, vec!["peer_asn"])]
        );
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("\"r4nge\"", "\"other\"")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Reset(range, vec!["md5_password"])]
        );
        // The description only: left alone.
        let new = cfg(&format!("{BASE}{}", RANGE.replace("leaves", "spines")));
        assert_eq!(
            plan(&with, &new),
            vec![Step::Keep(range, vec!["description"])]
        );
        // A changed prefix is a removal and an addition.
        let new = cfg(&format!(
            "{BASE}{}",
            RANGE.replace("10.9.0.0/24", "10.9.1.0/24")
        ));
        assert_eq!(
            plan(&with, &new),
            vec![
                Step::Remove(range),
                Step::Add(NeighborKey::Range("10.9.1.0/24".parse().unwrap()))
            ]
        );
    }

    #[test]
    fn add_path_receive_is_run_and_only_send_is_reported() {
        let with = |add_path: &str| {
            cfg(&BASE.replace(
                "hold_time = 9\nmd5",
                &format!("hold_time = 9\nadd_path = {{ {add_path} }}\nmd5"),
            ))
        };
        // What is reported about the neighbors (BASE's second listen address aside).
        let about_neighbors = |c: &Config| -> Vec<String> {
            ignored(c)
                .into_iter()
                .filter(|w| w.starts_with("neighbor "))
                .collect()
        };
        // Receive for every family: run (offered in our OPEN), nothing reported.
        let c = with("ipv4-unicast = \"receive\", ipv6-unicast = \"receive\"");
        assert!(about_neighbors(&c).is_empty(), "{:?}", ignored(&c));
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(p.add_path_receive && !p.add_path_send);
        // No add_path: not offered.
        let c = cfg(BASE);
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(!p.add_path_receive && !p.add_path_send);
        // Send for every family: run.
        let c = with("ipv4-unicast = \"send\", ipv6-unicast = \"send\"");
        assert!(about_neighbors(&c).is_empty(), "{:?}", ignored(&c));
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(!p.add_path_receive && p.add_path_send);
        // Modes differing per family (or a family left out): widened, and said so.
        let c = with("ipv4-unicast = \"both\", ipv6-unicast = \"receive\"");
        let p = peer_config(&c, &c.neighbors[1]);
        assert!(p.add_path_receive && p.add_path_send);
        assert_eq!(
            about_neighbors(&c),
            vec![
                "neighbor 10.1.2.0: add_path per family (the speaker offers the union of the \
                 modes for every family) not implemented by the speaker yet; ignored"
                    .to_string()
            ]
        );
        let c = with("ipv4-unicast = \"receive\"");
        assert_eq!(about_neighbors(&c).len(), 1, "{:?}", ignored(&c));
        // Changing it resets the session (the capability is in our OPEN).
        let new = with("ipv4-unicast = \"receive\"");
        assert_eq!(
            plan(&cfg(BASE), &new),
            vec![Step::Reset(addr("10.1.2.0"), vec!["add_path"])]
        );
    }

    #[test]
    fn a_max_prefix_change_resets_the_session_so_that_it_takes_effect() {
        let new = BASE.replace(
            "md5_password = \"s3cret\"",
            "md5_password = \"s3cret\"\nmax_prefix = 10",
        );
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            vec![Step::Reset(addr("10.1.2.0"), vec!["max_prefix"])]
        );
    }
}
