//! The agent's copy of the intent, fed by netmaster's feed and kept on disk.
//!
//! [`Mirror`] is the pure part: it applies feed lines (a snapshot replaces everything,
//! a change applies only if its revision is newer than the mirror's) and remembers the
//! revision to resume from. [`follow`] is the driver: it streams the feed, reconnects
//! with back-off from the last revision when netmaster goes away (the agent keeps working
//! from the mirror meanwhile), treats a silent connection as dead after
//! [`SILENCE`], and saves the mirror after changes (coalesced, off the feed's path) so a restarted agent starts from
//! its last state even when netmaster is down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use contiv_model::feed::{FeedLine, Revision};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The least time between two saves of the mirror.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A connection that sent nothing (not even a heartbeat) for this long is dead.
pub const SILENCE: Duration = Duration::from_secs(20);

fn all() -> u32 {
    u32::MAX
}

/// The intent as last seen: every configured object by `(plural, key)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    pub revision: Revision,
    /// The index of the last change applied at `revision` (`u32::MAX`: all of them).
    #[serde(default = "all")]
    pub index: u32,
    /// `plural` → `key` → object. Objects are shared between copies, so a copy of the
    /// mirror costs a pointer per object, not the objects.
    pub objects: BTreeMap<String, BTreeMap<String, Arc<serde_json::Value>>>,
}

impl Mirror {
    /// Applies one feed line; returns whether the mirror changed.
    pub fn apply(&mut self, line: FeedLine) -> bool {
        match line {
            FeedLine::Snapshot { revision, objects } => {
                let mut next = Mirror {
                    revision,
                    index: u32::MAX,
                    objects: BTreeMap::new(),
                };
                for o in objects {
                    next.objects
                        .entry(o.plural)
                        .or_default()
                        .insert(o.key, Arc::new(o.value));
                }
                let changed = next != *self;
                *self = next;
                changed
            }
            FeedLine::Change(c) => {
                if (c.revision, c.index) <= (self.revision, self.index) {
                    return false;
                }
                self.revision = c.revision;
                self.index = c.index;
                let kind = self.objects.entry(c.plural.clone()).or_default();
                match c.value {
                    Some(v) => {
                        kind.insert(c.key, Arc::new(v));
                    }
                    None => {
                        kind.remove(&c.key);
                        if kind.is_empty() {
                            self.objects.remove(&c.plural);
                        }
                    }
                }
                true
            }
            FeedLine::Heartbeat { .. } => false,
        }
    }

    /// Every object of a kind, typed; objects that do not decode are skipped with a
    /// warning (a newer netmaster may know fields this agent does not).
    pub fn list<T: serde::de::DeserializeOwned>(&self, plural: &str) -> Vec<T> {
        self.objects
            .get(plural)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| match T::deserialize(&**v) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("intent: {plural}/{k} does not decode: {e}");
                    None
                }
            })
            .collect()
    }

    /// One object, typed.
    pub fn get<T: serde::de::DeserializeOwned>(&self, plural: &str, key: &str) -> Option<T> {
        let v = self.objects.get(plural)?.get(key)?;
        T::deserialize(&**v).ok()
    }

    /// Loads a saved mirror; a missing file is an empty mirror.
    pub fn load(path: &Path) -> std::io::Result<Mirror> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Mirror::default()),
            Err(e) => Err(e),
        }
    }

    /// Saves atomically (write to a temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, path)
    }
}

/// Where [`follow`] connects and saves.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// netmaster's base URL (`http://127.0.0.1:9999`, `https://...`).
    pub netmaster: String,
    /// The client to connect with (it carries the CA netmaster's certificate is checked
    /// against); it needs no overall timeout, the feed is a long-lived stream.
    pub client: reqwest::Client,
    /// The host's credential, sent as a bearer token.
    pub token: Option<contiv_model::Secret>,
    /// The saved mirror (`<state dir>/intent.json`).
    pub path: PathBuf,
}

/// Whether the agent is connected to netmaster's feed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    Disconnected,
}

/// Streams the feed into `out` forever, reconnecting with back-off (0.2 s doubling to
/// 5 s). `out` starts with the saved mirror.
pub async fn follow(cfg: FeedConfig, out: watch::Sender<Arc<Mirror>>, link: watch::Sender<Link>) {
    let client = cfg.client.clone();
    tokio::spawn(save_loop(out.subscribe(), cfg.path.clone()));
    let mut backoff = Duration::from_millis(200);
    loop {
        let from = (out.borrow().revision, out.borrow().index);
        match stream_once(&client, &cfg, from, &out, &link).await {
            Ok(()) => tracing::info!("feed: netmaster closed the stream; reconnecting"),
            Err(e) => tracing::warn!("feed: {e}; retrying in {backoff:?}"),
        }
        link.send_replace(Link::Disconnected);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Saves the mirror after it changed, off the path of the change: a burst of changes is
/// one write. A restart resumes the feed from the saved revision, so a save that lags
/// (or is lost with the process) only means the feed replays a little more.
async fn save_loop(mut rx: watch::Receiver<Arc<Mirror>>, path: PathBuf) {
    rx.borrow_and_update();
    while rx.changed().await.is_ok() {
        let m = rx.borrow_and_update().clone();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || m.save(&p)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("feed: saving {}: {e}", path.display()),
            Err(e) => tracing::warn!("feed: saving {}: {e}", path.display()),
        }
        // At most one write a second: the file holds the whole intent.
        tokio::time::sleep(SAVE_EVERY).await;
    }
}

async fn stream_once(
    client: &reqwest::Client,
    cfg: &FeedConfig,
    from: (Revision, u32),
    out: &watch::Sender<Arc<Mirror>>,
    link: &watch::Sender<Link>,
) -> Result<(), String> {
    let base = cfg.netmaster.trim_end_matches('/');
    let url = if from.1 == u32::MAX {
        format!("{base}/api/v1/feed/?from={}", from.0)
    } else {
        format!("{base}/api/v1/feed/?from={}&index={}", from.0, from.1)
    };
    let mut req = client.get(&url);
    if let Some(t) = &cfg.token {
        req = req.bearer_auth(t.expose());
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    link.send_replace(Link::Connected);
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(SILENCE, body.next()).await {
            Err(_) => return Err(format!("no word from netmaster for {SILENCE:?}")),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(format!("reading the feed: {e}")),
            Ok(Some(Ok(c))) => c,
        };
        pending.extend_from_slice(&chunk);
        let mut changed = false;
        let mut mirror = (**out.borrow()).clone();
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let parsed: FeedLine = serde_json::from_slice(&line)
                .map_err(|e| format!("netmaster sent a line that is not a feed line: {e}"))?;
            changed |= mirror.apply(parsed);
        }
        if changed {
            out.send_replace(Arc::new(mirror));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_model::feed::{FeedChange, SnapshotObject};
    use serde_json::json;

    fn change(rev: Revision, key: &str, v: Option<serde_json::Value>) -> FeedLine {
        FeedLine::Change(FeedChange {
            revision: rev,
            index: 0,
            plural: "networks".into(),
            key: key.into(),
            value: v,
        })
    }

    #[test]
    fn snapshot_then_changes_in_order_only() {
        let mut m = Mirror::default();
        assert!(m.apply(FeedLine::Snapshot {
            revision: 5,
            objects: vec![SnapshotObject {
                plural: "networks".into(),
                key: "a".into(),
                value: json!({"x": 1})
            }],
        }));
        assert!(
            !m.apply(change(5, "a", None)),
            "not newer than the snapshot"
        );
        assert!(m.apply(change(6, "b", Some(json!({"x": 2})))));
        assert!(m.apply(change(7, "a", None)));
        assert!(!m.apply(FeedLine::Heartbeat { revision: 7 }));
        assert_eq!(m.revision, 7);
        assert_eq!(m.objects["networks"].keys().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn changes_of_one_transaction_share_a_revision() {
        let mut m = Mirror::default();
        let at = |idx: u32, key: &str| {
            FeedLine::Change(FeedChange {
                revision: 9,
                index: idx,
                plural: "rules".into(),
                key: key.into(),
                value: None,
            })
        };
        m.apply(change(8, "r1", Some(json!({}))));
        assert!(m.apply(at(0, "r1")));
        assert!(m.apply(at(1, "r2")));
        assert!(!m.apply(at(1, "r2")), "a repeat is ignored");
        assert_eq!((m.revision, m.index), (9, 1));
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/intent.json");
        assert_eq!(Mirror::load(&p).unwrap(), Mirror::default());
        let mut m = Mirror::default();
        m.apply(change(3, "a", Some(json!({"x": 1}))));
        m.save(&p).unwrap();
        assert_eq!(Mirror::load(&p).unwrap(), m);
        std::fs::write(&p, b"junk").unwrap();
        assert!(Mirror::load(&p).is_err());
    }
}
