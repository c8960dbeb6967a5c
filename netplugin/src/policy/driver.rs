//! The nftables driver: commit a transaction, read our tables back, read counters.
//!
//! [`NftCli`] runs `nft -f -` (the script is one kernel transaction: all of it or
//! nothing) and `nft -j list table` in the host's network namespace; it touches only
//! the tables named [`super::nft::TABLE`]. [`MemoryNft`] keeps a ruleset in memory and
//! refuses what the kernel would refuse ([`super::nft::apply`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::nft::{self, FAMILIES, Op, Present, Ruleset, TABLE};
use crate::endpoint::HostNs;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the transaction: {0}")]
    Refused(String),
    #[error("reading nft's output: {0}")]
    Parse(String),
    #[error("entering the host's namespace: {0}")]
    Netns(String),
}

/// Packets and bytes of a named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

pub trait NftDriver: Send {
    /// Commits the operations as one transaction.
    fn commit(&mut self, ops: &[Op]) -> Result<(), NftError>;
    /// The objects our tables hold, per family (absent: no table).
    fn present(&mut self) -> Result<BTreeMap<String, Present>, NftError>;
    /// The named counters of our tables: `(family, name)` → count.
    fn counters(&mut self) -> Result<BTreeMap<(String, String), Count>, NftError>;
}

/// `nft` in the host's namespace.
#[derive(Debug, Clone)]
pub struct NftCli {
    host: HostNs,
    binary: PathBuf,
}

impl NftCli {
    pub fn new(host: HostNs) -> NftCli {
        let binary = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("nft"));
        NftCli { host, binary }
    }

    /// Runs nft with `args`, `stdin` on its standard input, in the host's namespace.
    fn run(&self, args: &[&str], stdin: Option<String>) -> Result<Vec<u8>, NftError> {
        let binary = self.binary.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let go = move || -> Result<std::process::Output, std::io::Error> {
            let mut child = Command::new(&binary)
                .args(&args)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            if let Some(input) = stdin
                && let Some(mut w) = child.stdin.take()
            {
                w.write_all(input.as_bytes())?;
            }
            child.wait_with_output()
        };
        let out = match &self.host.0 {
            // A child inherits the namespace of the thread that spawns it.
            Some(path) => {
                crate::nl::in_netns(path, move || go().map_err(crate::nl::NlError::Socket))
                    .map_err(|e| match e {
                        crate::nl::NlError::Socket(e) => NftError::Spawn(e),
                        e => NftError::Netns(e.to_string()),
                    })?
            }
            None => go().map_err(NftError::Spawn)?,
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first: Vec<&str> = err
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(6)
                .collect();
            return Err(NftError::Refused(first.join(" | ")));
        }
        Ok(out.stdout)
    }

    /// `nft -j list table <family> contiv`, `None` when the table does not exist.
    fn list(&self, family: &str) -> Result<Option<serde_json::Value>, NftError> {
        match self.run(&["-j", "list", "table", family, TABLE], None) {
            Ok(out) => serde_json::from_slice(&out)
                .map(Some)
                .map_err(|e| NftError::Parse(e.to_string())),
            Err(NftError::Refused(e)) if e.contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The objects of an `nft -j list table` answer.
fn objects(v: &serde_json::Value) -> impl Iterator<Item = (&str, &serde_json::Value)> {
    v.get("nftables")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|o| o.as_object())
        .flat_map(|o| o.iter().map(|(k, v)| (k.as_str(), v)))
}

fn name_of(v: &serde_json::Value) -> Option<String> {
    v.get("name").and_then(|n| n.as_str()).map(str::to_string)
}

impl NftDriver for NftCli {
    fn commit(&mut self, ops: &[Op]) -> Result<(), NftError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.run(&["-f", "-"], Some(nft::script(ops))).map(|_| ())
    }

    fn present(&mut self) -> Result<BTreeMap<String, Present>, NftError> {
        let mut out = BTreeMap::new();
        for family in FAMILIES {
            let Some(v) = self.list(family)? else {
                continue;
            };
            let mut p = Present::default();
            for (kind, o) in objects(&v) {
                if kind == "rule" {
                    if let Some(c) = o.get("chain").and_then(|c| c.as_str()) {
                        *p.rules.entry(c.to_string()).or_insert(0) += 1;
                    }
                    continue;
                }
                let Some(name) = name_of(o) else { continue };
                match kind {
                    "counter" => {
                        p.counters.insert(name);
                    }
                    "set" | "map" => {
                        let n = o.get("elem").and_then(|e| e.as_array()).map_or(0, Vec::len);
                        p.elements.insert(name.clone(), n);
                        if kind == "set" {
                            p.sets.insert(name);
                        } else {
                            p.maps.insert(name);
                        }
                    }
                    "chain" => {
                        p.rules.entry(name.clone()).or_insert(0);
                        p.chains.insert(name);
                    }
                    _ => {}
                }
            }
            out.insert(family.to_string(), p);
        }
        Ok(out)
    }

    fn counters(&mut self) -> Result<BTreeMap<(String, String), Count>, NftError> {
        let mut out = BTreeMap::new();
        for family in FAMILIES {
            let Some(v) = self.list(family)? else {
                continue;
            };
            for (kind, o) in objects(&v) {
                if kind != "counter" {
                    continue;
                }
                let Some(name) = name_of(o) else { continue };
                let n = |k: &str| o.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
                out.insert(
                    (family.to_string(), name),
                    Count {
                        packets: n("packets"),
                        bytes: n("bytes"),
                    },
                );
            }
        }
        Ok(out)
    }
}

/// An in-memory kernel for tests: holds a ruleset, applies transactions all or
/// nothing, can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryNft {
    pub ruleset: Ruleset,
    /// Transactions committed.
    pub commits: usize,
    /// Operations of the last commit.
    pub last: Vec<Op>,
    /// The next commits fail with this message.
    pub fail: Option<String>,
}

impl NftDriver for MemoryNft {
    fn commit(&mut self, ops: &[Op]) -> Result<(), NftError> {
        if let Some(e) = &self.fail {
            return Err(NftError::Refused(e.clone()));
        }
        nft::apply(&mut self.ruleset, ops).map_err(NftError::Refused)?;
        self.commits += 1;
        self.last = ops.to_vec();
        Ok(())
    }

    fn present(&mut self) -> Result<BTreeMap<String, Present>, NftError> {
        Ok(nft::present(&self.ruleset))
    }

    fn counters(&mut self) -> Result<BTreeMap<(String, String), Count>, NftError> {
        Ok(self
            .ruleset
            .tables
            .iter()
            .flat_map(|(f, t)| {
                t.counters
                    .iter()
                    .map(|c| ((f.clone(), c.clone()), Count::default()))
            })
            .collect())
    }
}
