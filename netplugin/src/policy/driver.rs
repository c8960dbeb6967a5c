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

pub use super::nft::Count;
use super::nft::{self, FAMILIES, Op, Ruleset, Snapshot, TABLE};
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

pub trait NftDriver: Send {
    /// Commits the operations as one transaction.
    fn commit(&mut self, ops: &[Op]) -> Result<(), NftError>;
    /// Our tables as they are now.
    fn snapshot(&mut self) -> Result<Snapshot, NftError>;
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

    /// `nft -j list <what> <family> contiv` (`what`: `table`, `counters table`), `None`
    /// when the table does not exist.
    fn list(&self, what: &str, family: &str) -> Result<Option<serde_json::Value>, NftError> {
        let mut args = vec!["-j", "list"];
        args.extend(what.split(' '));
        args.extend([family, TABLE]);
        match self.run(&args, None) {
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

/// The named counters of an `nft -j list` answer.
fn counts(family: &str, v: &serde_json::Value) -> Vec<((String, String), Count)> {
    objects(v)
        .filter(|(kind, _)| *kind == "counter")
        .filter_map(|(_, o)| {
            let n = |k: &str| o.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            Some((
                (family.to_string(), name_of(o)?),
                Count {
                    packets: n("packets"),
                    bytes: n("bytes"),
                },
            ))
        })
        .collect()
}

/// Drops what changes without anyone changing the table: handles, counts, nft's
/// version line.
fn normalise(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("handle");
            if o.contains_key("packets") && o.contains_key("bytes") {
                o.remove("packets");
                o.remove("bytes");
            }
            for x in o.values_mut() {
                normalise(x);
            }
        }
        serde_json::Value::Array(a) => {
            a.retain(|x| x.get("metainfo").is_none());
            for x in a {
                normalise(x);
            }
        }
        _ => {}
    }
}

impl NftDriver for NftCli {
    fn commit(&mut self, ops: &[Op]) -> Result<(), NftError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.run(&["-f", "-"], Some(nft::script(ops))).map(|_| ())
    }

    fn snapshot(&mut self) -> Result<Snapshot, NftError> {
        let mut snap = Snapshot::default();
        let mut print = Vec::new();
        for family in FAMILIES {
            let Some(mut v) = self.list("table", family)? else {
                continue;
            };
            snap.tables.insert(family.to_string());
            snap.counters.extend(counts(family, &v));
            normalise(&mut v);
            print.push(v);
        }
        snap.fingerprint = serde_json::Value::Array(print).to_string();
        Ok(snap)
    }

    fn counters(&mut self) -> Result<BTreeMap<(String, String), Count>, NftError> {
        let mut out = BTreeMap::new();
        for family in FAMILIES {
            if let Some(v) = self.list("counters table", family)? {
                out.extend(counts(family, &v));
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

    fn snapshot(&mut self) -> Result<Snapshot, NftError> {
        Ok(nft::snapshot(&self.ruleset))
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
