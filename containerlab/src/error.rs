//! The one error type of the lab runner. Every variant names the file, node, link or
//! command it is about, so a message alone tells the user what to fix.

use std::path::PathBuf;

/// Errors of the lab runner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The topology file is not valid YAML or does not have containerlab's shape.
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// The topology file is well-formed but describes something that cannot be deployed.
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    /// The lab (or a namespace of it) already exists.
    #[error(
        "lab '{lab}' is already deployed ({detail}); run `contiv-lab destroy` first or deploy with --reconfigure"
    )]
    AlreadyDeployed { lab: String, detail: String },
    /// An external command (ip, sysctl, a node's exec command) failed.
    #[error("{context}: `{command}` failed: {stderr}")]
    Command {
        context: String,
        command: String,
        stderr: String,
    },
    /// A routing daemon exited or never became ready.
    #[error("node '{node}': {daemon} failed to start ({reason}); last lines of {log}:\n{tail}")]
    DaemonFailed {
        node: String,
        daemon: String,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    /// Something did not happen within its time limit.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout { what: String, seconds: f64 },
    /// A node name given on the command line is not in the topology.
    #[error("lab '{lab}' has no node '{node}' (nodes: {known})")]
    UnknownNode {
        lab: String,
        node: String,
        known: String,
    },
    /// The lab is not deployed.
    #[error("lab '{lab}' is not deployed")]
    NotDeployed { lab: String },
    /// A lab name given on the command line that no topology could have (a path, `..`).
    #[error("{0}")]
    BadName(String),
}

/// Result with the lab runner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
