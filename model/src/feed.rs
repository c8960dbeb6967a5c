//! The netmaster → netplugin feed and the netplugin → netmaster host report: the JSON
//! shapes both sides share (see netmaster's `api::feed` for the protocol).

use serde::{Deserialize, Serialize};

/// A store revision.
pub type Revision = i64;

/// One line of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SnapshotObject {
    pub plural: String,
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FeedChange {
    pub revision: Revision,
    /// Position among the changes of the same revision (one transaction).
    #[serde(default)]
    pub index: u32,
    pub plural: String,
    pub key: String,
    pub value: Option<serde_json::Value>,
}

/// A netplugin's report about its host (`PUT /api/v1/feed/hosts/<host>/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    /// Endpoints plumbed on the host.
    #[serde(default)]
    pub endpoints: Vec<EndpointReport>,
    /// BGP neighbors with their state (`established`, ...), uptime and counters.
    #[serde(default)]
    pub neighbors: Vec<NeighborReport>,
    /// Routes the host learned (prefix → next hops).
    #[serde(default)]
    pub routes: Vec<RouteReport>,
    /// The forwarding mode the agent runs in.
    #[serde(default, rename = "fwdMode")]
    pub fwd_mode: String,
    /// Why the host's `Bgp` object is not in effect, when it is not (a missing MD5
    /// secret, ...).
    #[serde(default, rename = "bgpError", skip_serializing_if = "Option::is_none")]
    pub bgp_error: Option<String>,
    /// The policy ruleset the host has programmed, when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyReport>,
    /// Seconds since the UNIX epoch when netmaster received the report (set by netmaster).
    #[serde(default, rename = "lastSeen")]
    pub last_seen: u64,
    /// Learned routes the host's import policy keeps out of its kernel, with why.
    #[serde(
        default,
        rename = "rejectedRoutes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rejected_routes: Vec<RejectedRouteReport>,
}

/// The policy ruleset a host programmed: the intent revision it was compiled from and,
/// when the last attempt failed, why (the ruleset of `revision` stays in force).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// The intent revision of the ruleset in the kernel (0: none yet).
    #[schemars(range(min = 0))]
    pub revision: Revision,
    /// Rules (of every group with local endpoints) in the ruleset.
    #[serde(default)]
    pub rules: u64,
    /// Local endpoints under a policy.
    #[serde(default)]
    pub endpoints: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A host's policy ruleset as netmaster shows it in the `Oper` of an endpoint group or a
/// policy (`policyStatus`, one per host that reported endpoints of the group, or of a
/// group of the policy), next to `policyRevision`, the revision that ruleset must have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPolicyStatus {
    pub host: String,
    /// The host's endpoints of the group (or of the policy's groups), as it reported them.
    pub endpoints: u64,
    /// The intent revision of the host's ruleset ([`PolicyReport::revision`]; 0: none
    /// reported yet).
    pub revision: Revision,
    /// Rules in the host's whole ruleset.
    pub rules: u64,
    /// Why the host's last attempt to program its ruleset failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether `revision` is at or after `policyRevision`: the host's ruleset holds the
    /// last change of the group, its policies and their rules.
    pub current: bool,
}

/// An endpoint plumbed on the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
pub struct EndpointReport {
    #[serde(rename = "endpointID", default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub network: String,
    /// The endpoint group, or "".
    #[serde(default)]
    pub group: String,
    /// The address with its length (`20.1.1.2/24`).
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub mac: String,
    /// The host side of the endpoint's veth.
    #[serde(rename = "hostIntf", default)]
    pub host_intf: String,
}

/// A BGP session of the host. Every field but the address may be absent (older or
/// partial reports); absent fields stay absent when the report is stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeighborReport {
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_as: Option<u32>,
    /// The session state in lower case (`idle` ... `established`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Seconds the session has been Established (0 when it is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes_advertised: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates_out: Option<u64>,
    /// Times the session left Established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the session negotiated; empty while it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// BFD with this neighbor (`up`, `down`, `idle`, ...), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<String>,
}

/// A route the host learned and the next hops of its ECMP group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
pub struct RouteReport {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub nexthops: Vec<String>,
}

/// A learned route kept out of the host's kernel by its import policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
pub struct RejectedRouteReport {
    #[serde(default)]
    pub prefix: String,
    /// Why: `default route not accepted (accept-default)`, `overlaps the host's own
    /// prefix ...`, `outside the fabric's intent`.
    #[serde(default)]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_the_json_era_parse_and_keep_their_shape() {
        // What netplugin sent when the report was built with json!.
        let old = serde_json::json!({
            "endpoints": [{"endpointID": "e1", "tenant": "default", "network": "n",
                           "group": "", "address": "20.1.1.2/24", "mac": "02:02:14:01:01:02",
                           "hostIntf": "cv1234"}],
            "neighbors": [{"address": "10.1.1.254", "remoteAs": 65001, "state": "established",
                           "uptime": 12, "prefixesReceived": 3, "prefixesAdvertised": 1,
                           "updatesIn": 4, "updatesOut": 2, "flaps": 0,
                           "lastError": "hold timer expired",
                           "capabilities": ["ipv4-unicast"], "bfd": "up"}],
            "routes": [{"prefix": "20.1.2.0/24", "nexthops": ["10.1.1.254", "10.1.2.254"]}],
            "fwdMode": "routing", "lastSeen": 7
        });
        let r: HostReport = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(r.neighbors[0].remote_as, Some(65001));
        assert_eq!(r.routes[0].nexthops.len(), 2);
        assert_eq!(r.endpoints[0].host_intf, "cv1234");
        assert_eq!(serde_json::to_value(&r).unwrap(), old);
        // A partial report stays partial.
        let partial = serde_json::json!({"neighbors": [{"address": "10.1.1.1",
            "state": "established"}], "fwdMode": "routing", "endpoints": [], "routes": [],
            "lastSeen": 0});
        let r: HostReport = serde_json::from_value(partial.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), partial);
        assert!(serde_json::from_value::<HostReport>(serde_json::json!({"x": 1})).is_err());
    }
}
