//! Contiv's objects with their exact JSON field names.
//!
//! Every object carries `key` (filled by netmaster; clients may omit it) and may carry
//! Contiv's server-maintained `links`/`link-sets`, which are accepted and ignored on
//! input. Any other unknown field is refused, so a typo never goes unnoticed.

use serde::{Deserialize, Serialize};

/// An object kind of the REST model.
pub trait Object:
    Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Contiv's URL plural (`networks`, `endpointGroups`, `Bgps`, ...).
    const PLURAL: &'static str;
    /// The type name used in messages (`network`, `endpointGroup`, ...).
    const NAME: &'static str;
    /// The key built from the object's fields (`tenant:network`, ...).
    fn key(&self) -> String;
    /// Sets the `key` field from the other fields.
    fn set_key(&mut self);
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

macro_rules! object {
    ($ty:ident, $plural:literal, $name:literal, |$s:ident| $key:expr) => {
        impl Object for $ty {
            const PLURAL: &'static str = $plural;
            const NAME: &'static str = $name;
            fn key(&self) -> String {
                let $s = self;
                $key
            }
            fn set_key(&mut self) {
                self.key = self.key();
            }
        }
    };
}

/// `global`: the fabric-wide settings (one object, key `global`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Global {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[schemars(extend("enum" = ["global"]))]
    pub name: String,
    #[serde(rename = "networkInfraType", default)]
    #[schemars(extend("enum" = crate::validate::INFRA_TYPES))]
    pub network_infra_type: String,
    #[serde(default)]
    pub vlans: String,
    #[serde(default)]
    pub vxlans: String,
    #[serde(rename = "fwdMode", default)]
    #[schemars(extend("enum" = crate::validate::FWD_MODES))]
    pub fwd_mode: String,
    #[serde(rename = "arpMode", default)]
    #[schemars(extend("enum" = crate::validate::ARP_MODES))]
    pub arp_mode: String,
    #[serde(rename = "pvtSubnet", default)]
    pub pvt_subnet: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}

impl Default for Global {
    /// Contiv's defaults: no forwarding mode yet, ARP proxy, private subnet
    /// 172.19.0.0/16, VLANs 1-4094, VXLANs 1-10000.
    fn default() -> Self {
        Global {
            key: "global".into(),
            name: "global".into(),
            network_infra_type: "default".into(),
            vlans: "1-4094".into(),
            vxlans: "1-10000".into(),
            fwd_mode: String::new(),
            arp_mode: "proxy".into(),
            pvt_subnet: "172.19.0.0/16".into(),
            links: None,
            link_sets: None,
        }
    }
}
object!(Global, "globals", "global", |s| s.name.clone());

/// `tenant`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(rename = "defaultNetwork", default)]
    #[schemars(
        schema_with = "crate::validate::optional_name_schema::<{ crate::validate::NAME_MAX }>"
    )]
    pub default_network: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(Tenant, "tenants", "tenant", |s| s.tenant_name.clone());

/// `network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "networkName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub network_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(rename = "nwType", default = "default_nw_type")]
    #[schemars(extend("enum" = crate::validate::NW_TYPES))]
    pub nw_type: String,
    #[serde(default)]
    #[schemars(extend("enum" = crate::validate::ENCAPS))]
    pub encap: String,
    #[serde(rename = "pktTag", default)]
    #[schemars(range(min = 0, max = crate::validate::PKT_TAG_MAX))]
    pub pkt_tag: i64,
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(rename = "ipv6Subnet", default)]
    pub ipv6_subnet: String,
    #[serde(rename = "ipv6Gateway", default)]
    pub ipv6_gateway: String,
    #[serde(rename = "cfgdTag", default)]
    #[schemars(
        schema_with = "crate::validate::optional_name_schema::<{ crate::validate::TAG_MAX }>"
    )]
    pub cfgd_tag: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
fn default_nw_type() -> String {
    "data".into()
}
object!(Network, "networks", "network", |s| format!(
    "{}:{}",
    s.tenant_name, s.network_name
));

/// `endpointGroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointGroup {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "groupName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub group_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(rename = "networkName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub network_name: String,
    #[serde(rename = "ipPool", default)]
    pub ip_pool: String,
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::names_schema::<{ crate::validate::NAME_MAX }>")]
    pub policies: Vec<String>,
    #[serde(rename = "extContractsGrps", default)]
    pub ext_contracts_grps: Vec<String>,
    #[serde(rename = "netProfile", default)]
    #[schemars(
        schema_with = "crate::validate::optional_name_schema::<{ crate::validate::NAME_MAX }>"
    )]
    pub net_profile: String,
    #[serde(rename = "cfgdTag", default)]
    #[schemars(
        schema_with = "crate::validate::optional_name_schema::<{ crate::validate::TAG_MAX }>"
    )]
    pub cfgd_tag: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(
    EndpointGroup,
    "endpointGroups",
    "endpointGroup",
    |s| format!("{}:{}", s.tenant_name, s.group_name)
);

/// `policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "policyName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub policy_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(Policy, "policys", "policy", |s| format!(
    "{}:{}",
    s.tenant_name, s.policy_name
));

/// `rule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "ruleId")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub rule_id: String,
    #[serde(rename = "policyName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub policy_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(default)]
    #[schemars(extend("enum" = crate::validate::DIRECTIONS))]
    pub direction: String,
    #[serde(default)]
    #[schemars(range(min = 0, max = crate::validate::PRIORITY_MAX))]
    pub priority: i64,
    #[serde(rename = "fromEndpointGroup", default)]
    pub from_endpoint_group: String,
    #[serde(rename = "toEndpointGroup", default)]
    pub to_endpoint_group: String,
    #[serde(rename = "fromNetwork", default)]
    pub from_network: String,
    #[serde(rename = "toNetwork", default)]
    pub to_network: String,
    #[serde(rename = "fromIpAddress", default)]
    pub from_ip_address: String,
    #[serde(rename = "toIpAddress", default)]
    pub to_ip_address: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    #[schemars(range(min = 0, max = crate::validate::PORT_MAX))]
    pub port: i64,
    #[serde(default)]
    #[schemars(extend("enum" = crate::validate::ACTIONS))]
    pub action: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(Rule, "rules", "rule", |s| format!(
    "{}:{}:{}",
    s.tenant_name, s.policy_name, s.rule_id
));

/// One BGP neighbor of a host (the modern, several-neighbor form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpNeighbor {
    pub address: String,
    #[serde(rename = "as")]
    pub asn: String,
    /// The name of a secret holding the TCP MD5 password; the password itself never
    /// appears in any object.
    #[serde(rename = "password-ref", default, skip_serializing_if = "is_empty")]
    pub password_ref: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bfd: bool,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub description: String,
    /// BFD authentication with this neighbor (overrides the object's `bfd-auth`).
    #[serde(rename = "bfd-auth", default, skip_serializing_if = "Option::is_none")]
    pub bfd_auth: Option<BgpBfdAuth>,
}

/// BFD authentication (RFC 5880 §6.7) of a host's BFD sessions: the secret is a file in
/// netplugin's `--bgp-secrets-dir` named by `secret-ref` (like `password-ref`); the
/// secret itself never appears in any object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpBfdAuth {
    /// The name of the host's secret holding the key (1–20 bytes for SHA1, 1–16 for MD5).
    #[serde(rename = "secret-ref")]
    pub secret_ref: String,
    #[serde(rename = "type", default)]
    pub auth_type: BfdAuthType,
    /// The Auth Key ID both sides agree on (0–255).
    #[serde(rename = "key-id", default = "default_bfd_key_id")]
    pub key_id: u8,
}

fn default_bfd_key_id() -> u8 {
    1
}

/// The BFD authentication types (RFC 5880 §6.7.3, §6.7.4).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum BfdAuthType {
    KeyedMd5,
    MeticulousKeyedMd5,
    KeyedSha1,
    /// The default: replay of a captured packet is refused.
    #[default]
    MeticulousKeyedSha1,
}

impl BfdAuthType {
    /// The name in objects and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BfdAuthType::KeyedMd5 => "keyed-md5",
            BfdAuthType::MeticulousKeyedMd5 => "meticulous-keyed-md5",
            BfdAuthType::KeyedSha1 => "keyed-sha1",
            BfdAuthType::MeticulousKeyedSha1 => "meticulous-keyed-sha1",
        }
    }

    /// The longest key the type takes (its digest length).
    pub fn max_key_len(self) -> usize {
        match self {
            BfdAuthType::KeyedMd5 | BfdAuthType::MeticulousKeyedMd5 => 16,
            BfdAuthType::KeyedSha1 | BfdAuthType::MeticulousKeyedSha1 => 20,
        }
    }
}

/// How a host advertises its endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AdvertiseMode {
    /// One /32 per endpoint (Contiv's behaviour).
    #[default]
    PerEndpoint,
    /// The host's block (`host-block`), with /32s for endpoints outside it.
    HostBlock,
    /// The subnets of the networks the host has endpoints in.
    NetworkSubnet,
}

/// `Bgp`: one host's BGP settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bgp {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::LONG_NAME_MAX }>")]
    pub hostname: String,
    /// The host's address on the ToR subnet, with its length (`50.1.1.2/24`).
    pub routerip: String,
    #[serde(rename = "as")]
    pub asn: String,
    #[serde(rename = "neighbor-as", default)]
    pub neighbor_as: String,
    #[serde(default)]
    pub neighbor: String,
    /// Several neighbors (each ToR of a dual-homed host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbors: Vec<BgpNeighbor>,
    /// BFD (RFC 5880/5881) with every neighbor: a silent ToR or link ends the BGP
    /// session within interval × multiplier instead of the hold time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bfd: bool,
    /// BFD transmit and receive interval in milliseconds (50..=60000; 300 when not given).
    #[serde(
        rename = "bfd-interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bfd_interval: Option<u32>,
    /// BFD detection multiplier (1..=255; 3 when not given).
    #[serde(
        rename = "bfd-multiplier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bfd_multiplier: Option<u32>,
    /// BFD authentication for the neighbors without their own `bfd-auth`.
    #[serde(rename = "bfd-auth", default, skip_serializing_if = "Option::is_none")]
    pub bfd_auth: Option<BgpBfdAuth>,
    /// Graceful restart: seconds the ToRs keep our routes while the agent restarts
    /// (0 disables).
    #[serde(rename = "graceful-restart", default, skip_serializing_if = "is_zero")]
    pub graceful_restart: u32,
    /// Standard (`65000:100`) and large (`65000:1:2`) communities attached to what the
    /// host advertises.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    #[serde(rename = "advertise", default, skip_serializing_if = "is_default_mode")]
    pub advertise: AdvertiseMode,
    /// The host's block for `host-block` advertisement.
    #[serde(rename = "host-block", default, skip_serializing_if = "is_empty")]
    pub host_block: String,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
    /// Install a default route learned from the neighbors (refused otherwise: a host
    /// keeps its own default unless this asks for the fabric's).
    #[serde(
        rename = "accept-default",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub accept_default: bool,
    /// The most prefixes accepted from one neighbor (1..=10000000; 200000 when not
    /// given). Above it the session closes with Cease / Maximum Number of Prefixes
    /// Reached and comes back 60 s later.
    #[serde(
        rename = "max-prefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_prefix: Option<u32>,
    /// GTSM (RFC 5082) on the eBGP sessions: TTL 255 sent, less refused. On when not
    /// given; `false` for a neighbor that is not directly connected.
    #[serde(
        rename = "ttl-security",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<bool>,
    /// More addresses of the host with their subnet's length (`10.2.2.1/31`), one per
    /// further link to a ToR: a neighbor must be on the subnet of `routerip` or of one
    /// of these.
    #[serde(
        rename = "local-addresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub local_addresses: Vec<String>,
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}
fn is_default_mode(m: &AdvertiseMode) -> bool {
    *m == AdvertiseMode::PerEndpoint
}
object!(Bgp, "Bgps", "Bgp", |s| s.hostname.clone());

impl Bgp {
    /// BFD interval (ms) when `bfd-interval` is not given.
    pub const DEFAULT_BFD_INTERVAL_MS: u32 = 300;
    /// BFD detection multiplier when `bfd-multiplier` is not given.
    pub const DEFAULT_BFD_MULTIPLIER: u32 = 3;

    /// The BFD interval in milliseconds (the default when not given).
    pub fn bfd_interval_ms(&self) -> u32 {
        self.bfd_interval.unwrap_or(Self::DEFAULT_BFD_INTERVAL_MS)
    }

    /// The BFD detection multiplier (the default when not given).
    pub fn bfd_multiplier(&self) -> u32 {
        self.bfd_multiplier.unwrap_or(Self::DEFAULT_BFD_MULTIPLIER)
    }

    /// `max-prefix` when not given: twice the 100 000 /32s the benchmark drives into one
    /// host (far above a per-endpoint fabric's containers), a fifth of a full Internet
    /// table (the classic leak), so the host's memory and kernel FIB stay bounded.
    pub const DEFAULT_MAX_PREFIX: u32 = 200_000;

    /// The max-prefix limit (the default when not given).
    pub fn max_prefix(&self) -> u32 {
        self.max_prefix.unwrap_or(Self::DEFAULT_MAX_PREFIX)
    }

    /// The neighbors to peer with, from either form: Contiv's single `neighbor` /
    /// `neighbor-as` pair first, then `neighbors`.
    pub fn effective_neighbors(&self) -> Vec<BgpNeighbor> {
        let mut out = Vec::new();
        if !self.neighbor.is_empty() {
            out.push(BgpNeighbor {
                address: self.neighbor.clone(),
                asn: self.neighbor_as.clone(),
                bfd: self.bfd,
                ..Default::default()
            });
        }
        for n in &self.neighbors {
            if !out.iter().any(|o| o.address == n.address) {
                out.push(n.clone());
            }
        }
        out
    }
}

/// `serviceLB`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLb {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "serviceName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::LONG_NAME_MAX }>")]
    pub service_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(rename = "networkName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub network_name: String,
    #[serde(rename = "ipAddress", default)]
    pub ip_address: String,
    #[serde(default)]
    pub selectors: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(ServiceLb, "serviceLBs", "serviceLB", |s| format!(
    "{}:{}",
    s.tenant_name, s.service_name
));

/// `netprofile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Netprofile {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "profileName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub profile_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(default)]
    pub bandwidth: String,
    #[serde(rename = "DSCP", default)]
    #[schemars(range(min = 0, max = crate::validate::DSCP_MAX))]
    pub dscp: i64,
    #[serde(default)]
    #[schemars(range(min = 0, max = crate::validate::BURST_MAX))]
    pub burst: i64,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(Netprofile, "netprofiles", "netprofile", |s| format!(
    "{}:{}",
    s.tenant_name, s.profile_name
));

/// `appProfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppProfile {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "appProfileName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub app_profile_name: String,
    #[serde(rename = "tenantName")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::NAME_MAX }>")]
    pub tenant_name: String,
    #[serde(rename = "endpointGroups", default)]
    #[schemars(schema_with = "crate::validate::names_schema::<{ crate::validate::NAME_MAX }>")]
    pub endpoint_groups: Vec<String>,
    #[serde(default, skip_serializing)]
    pub links: Option<serde_json::Value>,
    #[serde(rename = "link-sets", default, skip_serializing)]
    pub link_sets: Option<serde_json::Value>,
}
object!(AppProfile, "appProfiles", "appProfile", |s| format!(
    "{}:{}",
    s.tenant_name, s.app_profile_name
));

/// `endpoint`: read-only, created by netplugins through netmaster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: String,
    #[serde(rename = "endpointID")]
    #[schemars(length(min = 1))]
    pub endpoint_id: String,
    #[serde(rename = "containerID", default)]
    pub container_id: String,
    #[serde(rename = "containerName", default)]
    pub container_name: String,
    /// `network.tenant`, as Contiv prints it.
    pub network: String,
    #[serde(rename = "tenantName")]
    pub tenant_name: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    /// The endpoint group (Contiv's `serviceName`), or "".
    #[serde(rename = "serviceName", default)]
    pub service_name: String,
    #[serde(rename = "endpointGroupId", default)]
    pub endpoint_group_id: i64,
    #[serde(rename = "ipAddress", default)]
    pub ip_address: Vec<String>,
    #[serde(rename = "macAddress", default)]
    pub mac_address: String,
    #[serde(rename = "homingHost")]
    #[schemars(schema_with = "crate::validate::name_schema::<{ crate::validate::LONG_NAME_MAX }>")]
    pub homing_host: String,
    #[serde(rename = "intfName", default)]
    pub intf_name: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}
object!(Endpoint, "endpoints", "endpoint", |s| s.endpoint_id.clone());

/// `inspect` answers: `{"Config": ..., "Oper": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Inspect<C> {
    #[serde(rename = "Config")]
    pub config: C,
    #[serde(rename = "Oper")]
    pub oper: serde_json::Value,
}

/// `GET /api/v1/policy-explain/?from=<end>&to=<end>&service=<tcp/80|icmp|...>`: the
/// decision on a new connection (the [`crate::policy::Decision`]'s `action`, `egress`
/// and `ingress`, flattened in) and what each end resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyExplain {
    /// The service asked about, as given (`tcp/80`, `icmp`, `47`).
    pub service: String,
    /// Its IP protocol number and destination port.
    pub protocol: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub from: ExplainEnd,
    pub to: ExplainEnd,
    #[serde(flatten)]
    pub decision: crate::policy::Decision,
    /// The rule that decided at the sender, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_rule: Option<Rule>,
    /// The rule that decided at the receiver, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_rule: Option<Rule>,
    /// The intent revision the answer was computed at.
    pub revision: i64,
}

/// One end of a [`PolicyExplain`]: the address used and, when it is an endpoint's, the
/// endpoint with its tenant, group and host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainEnd {
    /// What was asked for: a container name, an endpoint id (or its prefix), a container
    /// id, or an address.
    pub query: String,
    /// The address of the flow at this end.
    pub address: String,
    /// The endpoint's id; absent when the address is no endpoint's.
    #[serde(
        rename = "endpointID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// The endpoint's tenant; absent when the address is no endpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// The endpoint group, or "".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The host the endpoint is on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The policies of the endpoint's group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// How many rules those policies hold (both directions).
    #[serde(default)]
    pub rules: usize,
}
