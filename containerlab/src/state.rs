//! The lab's state file (`<lab dir>/state.json`): what a deploy created, written *before*
//! each step relies on it, so `destroy` can clean up after a deploy that crashed or was
//! killed at any point.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::proc::ProcId;

/// How far a deploy got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Deploy in progress (or crashed).
    Deploying,
    /// Deploy finished.
    Deployed,
}

/// A daemon process of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    pub node: String,
    pub name: String,
    #[serde(flatten)]
    pub id: ProcId,
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub lab: String,
    pub topology: PathBuf,
    pub phase: Phase,
    /// Every namespace the deploy may have created (written before creating them).
    pub namespaces: Vec<String>,
    /// Every process it started.
    pub daemons: Vec<DaemonRecord>,
}

impl LabState {
    /// Reads a state file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<LabState>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Parse {
                    file: path.to_path_buf(),
                    message: format!("corrupt lab state file: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes the state file atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("state serialises");
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        assert_eq!(LabState::load(&path).unwrap(), None);
        let s = LabState {
            lab: "l".into(),
            topology: "/x/l.clab.yml".into(),
            phase: Phase::Deploying,
            namespaces: vec!["clab-l-a".into()],
            daemons: vec![DaemonRecord {
                node: "a".into(),
                name: "bgpd".into(),
                id: ProcId {
                    pid: 42,
                    start_time: 7,
                },
            }],
        };
        s.save(&path).unwrap();
        assert_eq!(LabState::load(&path).unwrap(), Some(s));
        std::fs::write(&path, "{").unwrap();
        assert!(
            LabState::load(&path)
                .unwrap_err()
                .to_string()
                .contains("corrupt")
        );
    }
}
