//! The netmaster → netplugin feed and the netplugin → netmaster host report: the JSON
//! shapes both sides share (see netmaster's `api::feed` for the protocol).

use serde::{Deserialize, Serialize};

/// A store revision.
pub type Revision = i64;

/// One line of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeedLine {
    Snapshot {
        revision: Revision,
        objects: Vec<SnapshotObject>,
    },
    Change(FeedChange),
    Heartbeat {
        revision: Revision,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotObject {
    pub plural: String,
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedChange {
    pub revision: Revision,
    /// Position among the changes of the same revision (one transaction).
    #[serde(default)]
    pub index: u32,
    pub plural: String,
    pub key: String,
    pub value: Option<serde_json::Value>,
}

/// A netplugin's report about its host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    /// Endpoints plumbed on the host.
    #[serde(default)]
    pub endpoints: Vec<serde_json::Value>,
    /// BGP neighbors with their state (`established`, ...), uptime and counters.
    #[serde(default)]
    pub neighbors: Vec<serde_json::Value>,
    /// Routes the host learned (prefix → next hops).
    #[serde(default)]
    pub routes: Vec<serde_json::Value>,
    /// The forwarding mode the agent runs in.
    #[serde(default, rename = "fwdMode")]
    pub fwd_mode: String,
    /// Seconds since the UNIX epoch when netmaster received the report (set by netmaster).
    #[serde(default, rename = "lastSeen")]
    pub last_seen: u64,
}
