//! CNI spec 1.1.0 types: versions, the network configuration, the environment, results
//! (converted to the version the runtime asked for) and the error object.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::service::{Attachment, EndpointResult, MacAddr};

/// The default path of netplugin's CNI socket.
pub const DEFAULT_NETPLUGIN_SOCKET: &str = "/run/contiv/netplugin.sock";

/// The spec versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A supported CNI spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl CniVersion {
    /// The newest version we speak.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "0.3.0" => Self::V0_3_0,
            "0.3.1" => Self::V0_3_1,
            "0.4.0" => Self::V0_4_0,
            "1.0.0" => Self::V1_0_0,
            "1.1.0" => Self::V1_1_0,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0 on.
    pub fn has_status_and_gc(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Before 1.0.0 every `ips` entry carries `"version": "4"|"6"`.
    pub fn ips_have_version(self) -> bool {
        self < Self::V1_0_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The spec's well-known error codes and ours.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin is not available (cannot serve ADD).
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const NOT_AVAILABLE_DEGRADED: u32 = 51;
    /// Ours (the spec leaves 100 and up to plugins): the network has no free address.
    pub const NO_FREE_ADDRESS: u32 = 100;
    /// Ours: netplugin failed internally.
    pub const INTERNAL: u32 = 101;
}

/// The CNI error object, printed on stdout with a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The JSON the plugin prints, with the version the runtime used.
    pub fn to_json(&self, version: &str) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), json!(version));
        m.insert("code".into(), json!(self.code));
        m.insert("msg".into(), json!(self.msg));
        if !self.details.is_empty() {
            m.insert("details".into(), json!(self.details));
        }
        Value::Object(m)
    }
}

/// The CNI environment variables, as given (empty values count as missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Option<String>,
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
    pub path: Option<String>,
}

impl CniEnv {
    /// Reads the variables through `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Self {
            command: get("CNI_COMMAND"),
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
        }
    }

    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// Static addresses (`IP=a,b`), as podman sends them.
    pub ips: Vec<IpAddr>,
    /// A static MAC (`MAC=...`).
    pub mac: Option<MacAddr>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_infra_container_id: Option<String>,
    pub pod_uid: Option<String>,
    /// Every pair as given.
    pub all: BTreeMap<String, String>,
}

impl CniArgs {
    /// Parses `CNI_ARGS`. Unknown keys are an error unless `IgnoreUnknown` is true (`1` or
    /// `true`), as the CNI conventions say.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        let bad = |m: String| CniError::new(code::INVALID_ENV, m);
        let mut out = CniArgs::default();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("CNI_ARGS: {pair:?} is not KEY=VALUE")))?;
            out.all.insert(k.to_string(), v.to_string());
        }
        let ignore_unknown = out
            .all
            .get("IgnoreUnknown")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        for (k, v) in &out.all {
            match k.as_str() {
                "IgnoreUnknown" => {}
                "IP" => {
                    for ip in v.split(',').filter(|s| !s.is_empty()) {
                        let ip =
                            ip.split_once('/')
                                .map_or(ip, |(a, _)| a)
                                .parse()
                                .map_err(|_| {
                                    bad(format!("CNI_ARGS: IP={v:?} is not a list of IP addresses"))
                                })?;
                        out.ips.push(ip);
                    }
                }
                "MAC" => {
                    out.mac = Some(v.parse().map_err(|e| bad(format!("CNI_ARGS: MAC: {e}")))?);
                }
                "K8S_POD_NAME" => out.pod_name = Some(v.clone()),
                "K8S_POD_NAMESPACE" => out.pod_namespace = Some(v.clone()),
                "K8S_POD_INFRA_CONTAINER_ID" => out.pod_infra_container_id = Some(v.clone()),
                "K8S_POD_UID" => out.pod_uid = Some(v.clone()),
                _ if ignore_unknown => {}
                _ => {
                    return Err(bad(format!(
                        "CNI_ARGS: unknown key {k:?} (set IgnoreUnknown=1 to ignore unknown keys)"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// An entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

impl From<GcAttachment> for Attachment {
    fn from(a: GcAttachment) -> Self {
        Attachment {
            container_id: a.container_id,
            ifname: a.ifname,
        }
    }
}

/// The `runtimeConfig` keys we use (capabilities `ips` and `mac`); others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RuntimeConfig {
    /// Static addresses, with or without a prefix length.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub mac: Option<String>,
}

/// The network configuration on stdin, as decoded (before validation).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawNetConf {
    #[serde(rename = "cniVersion")]
    pub cni_version: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub plugin_type: Option<String>,
    #[serde(default)]
    pub args: Option<Value>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Option<RuntimeConfig>,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub netplugin_socket: Option<PathBuf>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    /// The name libcni also sends (a spec typo kept for compatibility).
    #[serde(rename = "cni.dev/attachments", default)]
    pub attachments: Option<Vec<GcAttachment>>,
}

/// A validated network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: CniVersion,
    pub name: String,
    pub plugin_type: String,
    pub tenant: String,
    pub network: String,
    pub group: Option<String>,
    pub netplugin_socket: PathBuf,
    /// Static addresses from `runtimeConfig.ips` or `args.cni.ips`.
    pub ips: Vec<IpAddr>,
    /// A static MAC from `runtimeConfig.mac` or `args.cni.mac`.
    pub mac: Option<MacAddr>,
    pub prev_result: Option<Value>,
    pub valid_attachments: Option<Vec<GcAttachment>>,
}

fn valid_network_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn parse_ip_list(what: &str, list: &[String]) -> Result<Vec<IpAddr>, CniError> {
    list.iter()
        .map(|s| {
            s.split_once('/')
                .map_or(s.as_str(), |(a, _)| a)
                .parse()
                .map_err(|_| {
                    CniError::new(
                        code::INVALID_NETWORK_CONFIG,
                        format!("{what}: {s:?} is not an IP address"),
                    )
                })
        })
        .collect()
}

impl NetConf {
    /// Decodes and validates stdin. A JSON syntax or type error is code 6, a missing or
    /// invalid field code 7, and an unsupported `cniVersion` code 1.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let raw: RawNetConf = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE,
                "failed to decode the network configuration on stdin",
            )
            .with_details(e.to_string())
        })?;
        let bad = |m: &str| CniError::new(code::INVALID_NETWORK_CONFIG, m);
        let v = raw
            .cni_version
            .as_deref()
            .ok_or_else(|| bad("network configuration has no cniVersion"))?;
        let cni_version = CniVersion::parse(v).ok_or_else(|| {
            CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "incompatible CNI version {v:?}: this plugin supports {}",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            )
        })?;
        let name = raw
            .name
            .ok_or_else(|| bad("network configuration has no name"))?;
        if !valid_network_name(&name) {
            return Err(bad(&format!(
                "network name {name:?} is invalid: it must start with a letter or digit and \
                 hold only letters, digits, '_', '.' and '-'"
            )));
        }
        let plugin_type = raw
            .plugin_type
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("network configuration has no type"))?;

        // Static IP/MAC: runtimeConfig wins over args.cni.
        let mut ips = Vec::new();
        let mut mac = None;
        if let Some(args) = raw.args.as_ref().and_then(|a| a.get("cni")) {
            if let Some(list) = args.get("ips") {
                let list: Vec<String> = serde_json::from_value(list.clone())
                    .map_err(|e| bad(&format!("args.cni.ips must be a list of strings: {e}")))?;
                ips = parse_ip_list("args.cni.ips", &list)?;
            }
            if let Some(m) = args.get("mac") {
                let m = m
                    .as_str()
                    .ok_or_else(|| bad("args.cni.mac must be a string"))?;
                mac = Some(m.parse().map_err(|e: super::service::MacParseError| {
                    bad(&format!("args.cni.mac: {e}"))
                })?);
            }
        }
        if let Some(rc) = &raw.runtime_config {
            if !rc.ips.is_empty() {
                ips = parse_ip_list("runtimeConfig.ips", &rc.ips)?;
            }
            if let Some(m) = &rc.mac {
                mac = Some(m.parse().map_err(|e: super::service::MacParseError| {
                    bad(&format!("runtimeConfig.mac: {e}"))
                })?);
            }
        }
        Ok(NetConf {
            cni_version,
            name,
            plugin_type,
            tenant: raw
                .tenant
                .unwrap_or_else(|| super::service::DEFAULT_TENANT.to_string()),
            network: raw
                .network
                .unwrap_or_else(|| super::service::DEFAULT_NETWORK.to_string()),
            group: raw.group.filter(|g| !g.is_empty()),
            netplugin_socket: raw
                .netplugin_socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_NETPLUGIN_SOCKET)),
            ips,
            mac,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments.or(raw.attachments),
        })
    }
}

/// A result interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// A result address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A result route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

/// Result DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A version-independent result; [`CniResult::to_json`] renders it for one version and
/// [`CniResult::from_json`] reads any supported version (for `prevResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpEntry>,
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
    #[serde(default)]
    pub dns: Dns,
}

impl CniResult {
    /// The result of an ADD: interface 0 is the host side, interface 1 the container side
    /// in `netns`; every address belongs to interface 1.
    pub fn from_endpoint(ep: &EndpointResult, ifname: &str, netns: &str) -> Self {
        let interfaces = vec![
            Interface {
                name: ep.host_ifname.clone(),
                mac: ep.host_mac.map(|m| m.to_string()),
                ..Interface::default()
            },
            Interface {
                name: ifname.to_string(),
                mac: Some(ep.mac.to_string()),
                mtu: ep.mtu,
                sandbox: Some(netns.to_string()),
                ..Interface::default()
            },
        ];
        CniResult {
            interfaces,
            ips: ep
                .ips
                .iter()
                .map(|c| IpEntry {
                    interface: Some(1),
                    address: c.address,
                    gateway: c.gateway,
                })
                .collect(),
            routes: ep
                .routes
                .iter()
                .map(|r| RouteEntry {
                    dst: r.dst,
                    gw: r.gw,
                    mtu: None,
                    advmss: None,
                    priority: None,
                    table: None,
                    scope: None,
                })
                .collect(),
            dns: Dns {
                nameservers: ep.dns.nameservers.iter().map(|a| a.to_string()).collect(),
                domain: ep.dns.domain.clone(),
                search: ep.dns.search.clone(),
                options: ep.dns.options.clone(),
            },
        }
    }

    /// Renders the result for `version`: `version` fields on `ips` before 1.0.0, and the
    /// 1.1.0-only interface and route fields dropped before 1.1.0.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let mut r = self.clone();
        if version < CniVersion::V1_1_0 {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for rt in &mut r.routes {
                rt.mtu = None;
                rt.advmss = None;
                rt.priority = None;
                rt.table = None;
                rt.scope = None;
            }
        }
        let ips: Vec<Value> = r
            .ips
            .iter()
            .map(|ip| {
                let mut v = serde_json::to_value(ip).unwrap_or(Value::Null);
                if version.ips_have_version()
                    && let Value::Object(m) = &mut v
                {
                    let fam = if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    m.insert("version".into(), json!(fam));
                }
                v
            })
            .collect();
        let mut m = Map::new();
        m.insert("cniVersion".into(), json!(version.as_str()));
        m.insert(
            "interfaces".into(),
            serde_json::to_value(&r.interfaces).unwrap_or(Value::Null),
        );
        m.insert("ips".into(), Value::Array(ips));
        m.insert(
            "routes".into(),
            serde_json::to_value(&r.routes).unwrap_or(Value::Null),
        );
        m.insert(
            "dns".into(),
            serde_json::to_value(&r.dns).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    /// Appends `ours` to this (previous) result, as a plugin later in a chain does:
    /// interfaces are appended and our address indices shifted to match; routes are
    /// appended; our DNS settings replace the previous ones only if we have any.
    pub fn chain(mut self, ours: CniResult) -> CniResult {
        let offset = self.interfaces.len();
        self.interfaces.extend(ours.interfaces);
        self.ips.extend(ours.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        self.routes.extend(ours.routes);
        if ours.dns != Dns::default() {
            self.dns = ours.dns;
        }
        self
    }

    /// Reads a result of any supported version (unknown fields such as `version` on `ips`
    /// are ignored).
    pub fn from_json(v: &Value) -> Result<Self, CniError> {
        serde_json::from_value(v.clone()).map_err(|e| {
            CniError::new(code::DECODE, "failed to decode prevResult").with_details(e.to_string())
        })
    }
}
