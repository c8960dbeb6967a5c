//! How a node maps to routing daemons, and the exact command lines that run them.
//!
//! A node's daemon is chosen by the label `contiv-lab.daemon` when present, else by its
//! image name, so containerlab files that use the routers' usual images just work:
//!
//! | image contains | daemon | config taken from (bind target, or `startup-config`) |
//! |---|---|---|
//! | `frr` (e.g. `quay.io/frrouting/frr:8.4.1`) | FRR: `zebra` first, then the daemons enabled in the bound `daemons` file (default `bgpd`, `staticd`, `bfdd`) | `/etc/frr/frr.conf` (integrated config), `/etc/frr/daemons` |
//! | `bird` | BIRD 2 (`bird -f`) | `/etc/bird/bird.conf` or `/etc/bird.conf` |
//! | `gobgp` | GoBGP (`gobgpd`, gRPC API on the namespace's own 127.0.0.1:50051) | `/etc/gobgp/gobgpd.{toml,yaml,json}` |
//! | `exabgp` | ExaBGP 4 | `/etc/exabgp/exabgp.conf` |
//! | anything else | none: a plain namespace (clients, servers, hosts that run netplugin) | – |
//!
//! Every instance gets its own directory (`<lab dir>/<node>/`) for pid files, control
//! sockets and logs, so any number of instances run side by side. Daemons run in the
//! foreground as processes of their own (recorded by pid), with their output in
//! `<node dir>/<daemon>.log`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::topology::Node;

/// The routing daemon that runs in a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonKind {
    /// A plain namespace.
    None,
    Frr,
    Bird,
    Gobgp,
    Exabgp,
}

impl DaemonKind {
    /// Guesses the daemon from a container image name.
    pub fn from_image(image: &str) -> DaemonKind {
        // Only the repository part counts: `registry:port/org/name:tag`.
        let repo = image.rsplit('/').next().unwrap_or(image);
        let repo = repo.split(':').next().unwrap_or(repo).to_ascii_lowercase();
        if repo.contains("exabgp") {
            DaemonKind::Exabgp
        } else if repo.contains("gobgp") {
            DaemonKind::Gobgp
        } else if repo.contains("bird") {
            DaemonKind::Bird
        } else if repo.contains("frr") {
            DaemonKind::Frr
        } else {
            DaemonKind::None
        }
    }

    /// The name used in messages and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonKind::None => "none",
            DaemonKind::Frr => "frr",
            DaemonKind::Bird => "bird",
            DaemonKind::Gobgp => "gobgp",
            DaemonKind::Exabgp => "exabgp",
        }
    }

    /// Whether the daemon speaks BGP and reports sessions.
    pub fn is_router(self) -> bool {
        self != DaemonKind::None
    }
}

impl std::fmt::Display for DaemonKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DaemonKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => DaemonKind::None,
            "frr" => DaemonKind::Frr,
            "bird" => DaemonKind::Bird,
            "gobgp" => DaemonKind::Gobgp,
            "exabgp" => DaemonKind::Exabgp,
            other => {
                return Err(format!(
                    "label {}='{other}' is not one of none, frr, bird, gobgp, exabgp",
                    crate::topology::DAEMON_LABEL
                ));
            }
        })
    }
}

/// FRR daemons started when the node binds no `daemons` file.
pub const FRR_DEFAULT_DAEMONS: &[&str] = &["bgpd", "staticd", "bfdd"];

/// FRR daemons contiv-lab knows how to run (besides zebra, which always runs).
pub const FRR_KNOWN_DAEMONS: &[&str] = &[
    "bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "ldpd", "nhrpd", "eigrpd",
    "babeld", "sharpd", "pbrd", "staticd", "bfdd", "fabricd", "vrrpd", "pathd",
];

/// Where each daemon's configuration is bound inside a container.
fn config_targets(kind: DaemonKind) -> &'static [&'static str] {
    match kind {
        DaemonKind::None => &[],
        DaemonKind::Frr => &["/etc/frr/frr.conf"],
        DaemonKind::Bird => &["/etc/bird/bird.conf", "/etc/bird.conf"],
        DaemonKind::Gobgp => &[
            "/etc/gobgp/gobgpd.toml",
            "/etc/gobgp/gobgpd.yaml",
            "/etc/gobgp/gobgpd.yml",
            "/etc/gobgp/gobgpd.json",
        ],
        DaemonKind::Exabgp => &["/etc/exabgp/exabgp.conf"],
    }
}

/// The node's daemon configuration file on this machine.
pub fn config_file(node: &Node) -> Option<&Path> {
    if let Some(p) = &node.startup_config {
        return Some(p);
    }
    config_targets(node.daemon)
        .iter()
        .find_map(|t| node.bind_for(t))
        .map(|b| b.source.as_path())
}

/// Validates what the daemon of a node needs (used while resolving the topology).
pub(crate) fn check_node(node: &Node) -> Result<(), String> {
    if node.daemon == DaemonKind::None {
        return Ok(());
    }
    let Some(conf) = config_file(node) else {
        return Err(format!(
            "node '{}' runs {} but has no config: bind one to {} or set startup-config",
            node.name,
            node.daemon,
            config_targets(node.daemon).join(" or ")
        ));
    };
    if !conf.is_file() {
        return Err(format!(
            "node '{}': config {} is not a file",
            node.name,
            conf.display()
        ));
    }
    if node.daemon == DaemonKind::Frr {
        frr_daemons(node)?;
    }
    Ok(())
}

/// The FRR daemons to start after zebra, from the bound `daemons` file.
pub fn frr_daemons(node: &Node) -> Result<Vec<String>, String> {
    let Some(bind) = node.bind_for("/etc/frr/daemons") else {
        return Ok(FRR_DEFAULT_DAEMONS.iter().map(|s| s.to_string()).collect());
    };
    let text = std::fs::read_to_string(&bind.source)
        .map_err(|e| format!("node '{}': {}: {e}", node.name, bind.source.display()))?;
    parse_frr_daemons(&text)
        .map_err(|e| format!("node '{}': {}: {e}", node.name, bind.source.display()))
}

/// Parses FRR's `daemons` file: `name=yes|no` lines; option lines and comments are skipped.
pub fn parse_frr_daemons(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: '{line}' is not name=value", i + 1));
        };
        let value = value.trim().trim_matches('"');
        if key.ends_with("_options")
            || key.contains("vtysh")
            || key.starts_with("watchfrr")
            || key.starts_with("MAX_FDS")
            || key.starts_with("frr_profile")
            || key.starts_with("FRR_")
            || key == "zebra"
        {
            continue;
        }
        if !FRR_KNOWN_DAEMONS.contains(&key) {
            return Err(format!("line {}: unknown FRR daemon '{key}'", i + 1));
        }
        match value {
            "yes" => out.push(key.to_string()),
            "no" => {}
            other => return Err(format!("line {}: '{key}={other}' is not yes or no", i + 1)),
        }
    }
    Ok(out)
}

/// How the runner knows a daemon is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// A unix socket appears at this path.
    Socket(PathBuf),
    /// This command, run inside the node's namespace, succeeds.
    Command(Vec<String>),
    /// The process is still alive after this long.
    Alive(Duration),
}

/// One daemon process of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonProcess {
    /// Short name (`zebra`, `bgpd`, `bird`, `gobgpd`, `exabgp`).
    pub name: String,
    /// The command line (run inside the node's namespace).
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Where stdout and stderr go.
    pub log: PathBuf,
    /// How to tell it is up.
    pub ready: Ready,
    /// Wait for this daemon to be ready before starting the node's next one.
    pub gate: bool,
}

/// A helper script placed in `<node dir>/bin`, first on the PATH of commands run in the
/// node, so `vtysh` or `birdc` there reach this node's own daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    pub path: PathBuf,
    pub script: String,
}

/// What it takes to run a node's daemon: processes in start order, wrappers, FIFOs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSetup {
    pub processes: Vec<DaemonProcess>,
    pub wrappers: Vec<Wrapper>,
    pub fifos: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

/// The GoBGP gRPC API address inside a node's namespace.
pub const GOBGP_API: &str = "127.0.0.1:50051";

/// Builds the daemon setup of `node`, whose instance directory is `dir`.
/// `instance` is a machine-wide unique name for the instance (used for ExaBGP's pipes).
pub fn setup(node: &Node, dir: &Path, instance: &str) -> Result<DaemonSetup, String> {
    let s = |p: &Path| p.display().to_string();
    let mut out = DaemonSetup::default();
    let Some(conf) = config_file(node) else {
        return Ok(out);
    };
    let conf = s(conf);
    let log = |name: &str| dir.join(format!("{name}.log"));
    match node.daemon {
        DaemonKind::None => {}
        DaemonKind::Frr => {
            let run = dir.join("run");
            out.dirs.push(run.clone());
            let mut names = vec!["zebra".to_string()];
            names.extend(frr_daemons(node)?);
            for name in names {
                let mut argv = vec![
                    format!("/usr/lib/frr/{name}"),
                    "-f".into(),
                    conf.clone(),
                    "-i".into(),
                    s(&run.join(format!("{name}.pid"))),
                    "-z".into(),
                    s(&run.join("zserv.api")),
                    "--vty_socket".into(),
                    s(&run),
                    "-A".into(),
                    "127.0.0.1".into(),
                    "-P".into(),
                    "0".into(),
                    "-u".into(),
                    "root".into(),
                    "-g".into(),
                    "frrvty".into(),
                    "--log".into(),
                    "stdout".into(),
                ];
                if name == "bfdd" {
                    argv.push("--bfdctl".into());
                    argv.push(s(&run.join("bfdd.sock")));
                }
                out.processes.push(DaemonProcess {
                    ready: Ready::Socket(run.join(format!("{name}.vty"))),
                    gate: name == "zebra",
                    log: log(&name),
                    name,
                    argv,
                    env: Vec::new(),
                    cwd: dir.to_path_buf(),
                });
            }
            out.wrappers.push(Wrapper {
                path: dir.join("bin/vtysh"),
                script: format!(
                    "#!/bin/sh\nexec /usr/bin/vtysh --vty_socket '{}' \"$@\"\n",
                    s(&run)
                ),
            });
        }
        DaemonKind::Bird => {
            let ctl = dir.join("bird.ctl");
            out.processes.push(DaemonProcess {
                name: "bird".into(),
                argv: vec![
                    "/usr/sbin/bird".into(),
                    "-f".into(),
                    "-c".into(),
                    conf,
                    "-s".into(),
                    s(&ctl),
                    "-P".into(),
                    s(&dir.join("bird.pid")),
                ],
                env: Vec::new(),
                cwd: dir.to_path_buf(),
                log: log("bird"),
                // BIRD opens its control socket *before* reading its config, so only an
                // answer on the socket proves the config was accepted.
                ready: Ready::Command(vec![
                    "/usr/sbin/birdc".into(),
                    "-s".into(),
                    s(&ctl),
                    "show".into(),
                    "status".into(),
                ]),
                gate: false,
            });
            out.wrappers.push(Wrapper {
                path: dir.join("bin/birdc"),
                script: format!("#!/bin/sh\nexec /usr/sbin/birdc -s '{}' \"$@\"\n", s(&ctl)),
            });
        }
        DaemonKind::Gobgp => {
            let ty = match Path::new(&conf).extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => "yaml",
                Some("json") => "json",
                _ => "toml",
            };
            out.processes.push(DaemonProcess {
                name: "gobgpd".into(),
                argv: vec![
                    "/usr/bin/gobgpd".into(),
                    "-f".into(),
                    conf,
                    "-t".into(),
                    ty.into(),
                    "-p".into(),
                    format!("--api-hosts={GOBGP_API}"),
                    "--pprof-disable".into(),
                ],
                env: Vec::new(),
                cwd: dir.to_path_buf(),
                log: log("gobgpd"),
                ready: Ready::Command(vec![
                    "/usr/bin/gobgp".into(),
                    "-u".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    "50051".into(),
                    "global".into(),
                ]),
                gate: false,
            });
        }
        DaemonKind::Exabgp => {
            let run = dir.join("run");
            out.dirs.push(run.clone());
            out.fifos.push(run.join(format!("{instance}.in")));
            out.fifos.push(run.join(format!("{instance}.out")));
            out.processes.push(DaemonProcess {
                name: "exabgp".into(),
                argv: vec!["/usr/sbin/exabgp".into(), "--root".into(), s(dir), conf],
                env: exabgp_env(instance),
                cwd: dir.to_path_buf(),
                log: log("exabgp"),
                ready: Ready::Alive(Duration::from_millis(700)),
                gate: false,
            });
            out.wrappers.push(Wrapper {
                path: dir.join("bin/exabgpcli"),
                script: format!(
                    "#!/bin/sh\nexport exabgp_api_pipename='{instance}'\nexec /usr/sbin/exabgpcli --root '{}' \"$@\"\n",
                    s(dir)
                ),
            });
        }
    }
    Ok(out)
}

fn exabgp_env(instance: &str) -> Vec<(String, String)> {
    [
        ("exabgp_daemon_user", "root"),
        ("exabgp_daemon_drop", "false"),
        ("exabgp_daemon_daemonize", "false"),
        ("exabgp_api_cli", "true"),
        ("exabgp_api_pipename", instance),
        ("exabgp_log_destination", "stdout"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_from_image() {
        assert_eq!(
            DaemonKind::from_image("quay.io/frrouting/frr:8.4.1"),
            DaemonKind::Frr
        );
        assert_eq!(DaemonKind::from_image("frrouting/frr"), DaemonKind::Frr);
        assert_eq!(
            DaemonKind::from_image("pierky/bird:2.0.12"),
            DaemonKind::Bird
        );
        assert_eq!(
            DaemonKind::from_image("jauderho/gobgp:v3.10.0"),
            DaemonKind::Gobgp
        );
        assert_eq!(
            DaemonKind::from_image("mikenowak/exabgp:4.2"),
            DaemonKind::Exabgp
        );
        assert_eq!(DaemonKind::from_image("alpine:3.20"), DaemonKind::None);
        // A registry host name must not decide the daemon.
        assert_eq!(
            DaemonKind::from_image("frr.example:5000/alpine"),
            DaemonKind::None
        );
    }

    #[test]
    fn daemons_file() {
        let text = "# comment\nzebra=yes\nbgpd=yes\nospfd=no\nbfdd=yes\nvtysh_enable=yes\nzebra_options=\"  -A 127.0.0.1 -s 90000000\"\nbgpd_options=\"   -A 127.0.0.1\"\nfrr_profile=\"datacenter\"\n";
        assert_eq!(parse_frr_daemons(text).unwrap(), vec!["bgpd", "bfdd"]);
        assert!(
            parse_frr_daemons("bogusd=yes\n")
                .unwrap_err()
                .contains("unknown FRR daemon")
        );
        assert!(
            parse_frr_daemons("bgpd=maybe\n")
                .unwrap_err()
                .contains("not yes or no")
        );
        assert!(parse_frr_daemons("bgpd\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn label_parses() {
        assert_eq!("gobgp".parse::<DaemonKind>().unwrap(), DaemonKind::Gobgp);
        assert!(
            "quagga"
                .parse::<DaemonKind>()
                .unwrap_err()
                .contains("quagga")
        );
    }
}
