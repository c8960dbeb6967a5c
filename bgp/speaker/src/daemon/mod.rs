//! contiv-bgpd as a library: loading and checking its TOML configuration ([`load`]),
//! running a [`Speaker`] from it, applying a reload's [`plan::Step`]s, and the log of
//! neighbor changes and status dumps. The binary (`src/bin/contiv-bgpd.rs`) keeps the
//! argument parsing, the signals and the loop.
//!
//! [`plan`](mod@plan) is the pure part: what the driver is given and what a reload does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, ConfigError, Neighbor, NeighborKey};
use crate::driver::{Speaker, SpeakerError};

pub mod plan;

use plan::{
    DYNAMIC_LIMIT, PolicyError, Step, describe, ignored, list, peer_config, plan, policy_problems,
    speaker_config,
};

/// A configuration file that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not load or does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neighbors whose policies do not resolve against `[policies]`.
    #[error("{}: {} problem(s)", path.display(), problems.len())]
    Policies {
        path: PathBuf,
        problems: Vec<(NeighborKey, PolicyError)>,
    },
}

impl LoadError {
    /// The error for a person, one line per problem after a summary line.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Config(ConfigError::Invalid { origin, problems }) => {
                let mut lines = vec![format!("{origin}: {} problem(s)", problems.len())];
                lines.extend(problems.iter().map(|p| format!("error: {p}")));
                lines
            }
            LoadError::Config(other) => vec![format!("error: {other}")],
            LoadError::Policies { problems, .. } => {
                let mut lines = vec![self.to_string()];
                lines.extend(problems.iter().map(|(k, e)| format!("error: {k}: {e}")));
                lines
            }
        }
    }
}

/// Loads the configuration and checks what the policy module interprets (the
/// `[policies]` section and the names neighbors use).
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let c = Config::load(path)?;
    let problems = policy_problems(&c);
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(LoadError::Policies {
            path: path.to_path_buf(),
            problems,
        })
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

/// The running daemon: its file, the configuration it runs and its speaker.
#[derive(Debug)]
pub struct Daemon {
    path: PathBuf,
    config: Config,
    /// Always `Some` while running; taken for a restart and at the end.
    speaker: Option<Speaker>,
    /// Last logged state and error of each neighbor.
    seen: BTreeMap<IpAddr, (String, Option<String>)>,
}

impl Daemon {
    pub async fn start(path: PathBuf, config: Config) -> Result<Daemon, SpeakerError> {
        let speaker = start_speaker(&config).await?;
        Ok(Daemon {
            path,
            config,
            speaker: Some(speaker),
            seen: BTreeMap::new(),
        })
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration running.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Closes every session with a Cease.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.speaker.take() {
            s.shutdown().await;
        }
    }

    fn speaker(&self) -> &Speaker {
        self.speaker.as_ref().expect("a running speaker")
    }

    /// Loads the file again and applies the difference. `Err` only when no speaker is
    /// left running (a restart failed with the new and with the old configuration).
    pub async fn reload(&mut self) -> Result<(), SpeakerError> {
        let new = match load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                for line in e.lines() {
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
    pub fn log_changes(&mut self) {
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
    pub async fn dump(&self) {
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const GLOBAL: &str = "[global]\nasn = 65201\nrouter_id = \"10.1.1.1\"\n";

    #[test]
    fn load_names_each_problem_on_its_line() {
        let f = file(&format!(
            "{GLOBAL}[[neighbors]]\naddress = \"10.1.2.0\"\npeer_asn = 65002\nimport_policy = \"nosuch\"\n"
        ));
        let e = load(f.path()).unwrap_err();
        assert!(matches!(e, LoadError::Policies { .. }), "{e:?}");
        assert_eq!(
            e.lines(),
            vec![
                format!("{}: 1 problem(s)", f.path().display()),
                "error: 10.1.2.0: import_policy \"nosuch\" is not in [policies]".to_string(),
            ]
        );
        let f = file(&format!("{GLOBAL}[[neighbors]]\naddress = \"10.1.2.0\"\n"));
        let e = load(f.path()).unwrap_err();
        assert!(matches!(e, LoadError::Config(ConfigError::Invalid { .. })));
        let lines = e.lines();
        assert!(lines[0].ends_with("1 problem(s)"), "{lines:?}");
        assert!(
            lines[1].starts_with("error: ") && lines.len() == 2,
            "{lines:?}"
        );
        let f = file(&format!(
            "{GLOBAL}[[neighbors]]\naddress = \"10.1.2.0\"\npeer_asn = 65002\n"
        ));
        assert_eq!(load(f.path()).unwrap().neighbors.len(), 1);
    }
}
