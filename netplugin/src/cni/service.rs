//! The one interface both runtime front ends (the CNI plugin and the Docker CNM driver)
//! talk to: [`EndpointService`], implemented by the netplugin agent.
//!
//! The front ends are stateless translators. Everything that must survive a restart of
//! the agent or of the plugin (endpoints, the Docker network id → Contiv network mapping,
//! IPAM reservations) is kept behind this trait, so the agent can persist it. This
//! matters for Docker: after a plugin restart Docker sends no `Plugin.Activate` or
//! `CreateNetwork` again and goes straight to `CreateEndpoint`/`Join`.
//!
//! All request and result types are serde types because they also travel as JSON between
//! `contiv-cni` and netplugin (see [`crate::cni::server`] and [`crate::cni::client`]).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Contiv's default tenant.
pub const DEFAULT_TENANT: &str = "default";

/// Contiv's default network (used when a CNI config names none).
pub const DEFAULT_NETWORK: &str = "default-net";

/// Where a container attaches: a Contiv tenant, network and optional endpoint group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkTarget {
    pub tenant: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A Contiv name that cannot be used as a tenant, network or group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} name is empty in {input:?}")]
    Empty { what: &'static str, input: String },
    #[error(
        "{what} name {name:?} in {input:?} has characters other than letters, digits, '-' and '_' \
         (or does not start with a letter or digit)"
    )]
    BadChars {
        what: &'static str,
        name: String,
        input: String,
    },
    #[error("{what} name {name:?} is longer than 64 characters")]
    TooLong { what: &'static str, name: String },
}

fn check_name(what: &'static str, name: &str, input: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty {
            what,
            input: input.to_string(),
        });
    }
    if name.len() > 64 {
        return Err(NameError::TooLong {
            what,
            name: name.to_string(),
        });
    }
    let ok_first = name.as_bytes()[0].is_ascii_alphanumeric();
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_first || !ok_rest {
        return Err(NameError::BadChars {
            what,
            name: name.to_string(),
            input: input.to_string(),
        });
    }
    Ok(())
}

impl NetworkTarget {
    /// Builds a target after checking each name (letters, digits, `-`, `_`; at most 64).
    pub fn new(tenant: &str, network: &str, group: Option<&str>) -> Result<Self, NameError> {
        let input = format!("tenant {tenant:?} network {network:?} group {group:?}");
        check_name("tenant", tenant, &input)?;
        check_name("network", network, &input)?;
        if let Some(g) = group {
            check_name("group", g, &input)?;
        }
        Ok(Self {
            tenant: tenant.to_string(),
            network: network.to_string(),
            group: group.map(str::to_string),
        })
    }

    /// Parses a Contiv Docker network name, `[group.]network[/tenant]`: `contiv-net` is
    /// network `contiv-net` of tenant `default`, `web.contiv-net` is group `web` on it, and
    /// `web.contiv-net/blue` the same in tenant `blue`. Group names never contain `.`, so
    /// the first `.` separates the group.
    pub fn parse_docker_name(name: &str) -> Result<Self, NameError> {
        let (rest, tenant) = match name.split_once('/') {
            Some((rest, tenant)) => (rest, tenant),
            None => (name, DEFAULT_TENANT),
        };
        let (group, network) = match rest.split_once('.') {
            Some((group, network)) => (Some(group), network),
            None => (None, rest),
        };
        let input = name.to_string();
        check_name("tenant", tenant, &input)?;
        check_name("network", network, &input)?;
        if let Some(g) = group {
            check_name("group", g, &input)?;
        }
        Ok(Self {
            tenant: tenant.to_string(),
            network: network.to_string(),
            group: group.map(str::to_string),
        })
    }

    /// The Docker network name of this target (the inverse of
    /// [`NetworkTarget::parse_docker_name`]; the default tenant is left out).
    pub fn docker_name(&self) -> String {
        let mut s = String::new();
        if let Some(g) = &self.group {
            s.push_str(g);
            s.push('.');
        }
        s.push_str(&self.network);
        if self.tenant != DEFAULT_TENANT {
            s.push('/');
            s.push_str(&self.tenant);
        }
        s
    }
}

impl fmt::Display for NetworkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tenant {} network {}", self.tenant, self.network)?;
        if let Some(g) = &self.group {
            write!(f, " group {g}")?;
        }
        Ok(())
    }
}

/// The identity of one attachment: (container id, interface name). ADD is idempotent per
/// attachment. For Docker the container id is the Docker endpoint id and the interface
/// name is [`DOCKER_IFNAME`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

/// The interface name used in the [`Attachment`] of a Docker endpoint (Docker names the
/// interface itself, `eth<N>`, from this prefix).
pub const DOCKER_IFNAME: &str = "eth";

/// A MAC address, written `02:02:14:01:01:02` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// A MAC address string that is not six `:`-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets separated by ':'")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in &mut out {
            let p = parts.next().ok_or_else(|| MacParseError(s.to_string()))?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacParseError(s.to_string()));
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(MacParseError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// ADD: create (or return the existing) endpoint for an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddEndpoint {
    pub attachment: Attachment,
    pub target: NetworkTarget,
    /// The container's network namespace. `None` (Docker): create the veth pair in the host
    /// namespace and leave the container end there under
    /// [`EndpointResult::container_ifname`]; the runtime moves it into the sandbox itself.
    pub netns: Option<PathBuf>,
    /// Addresses the runtime asks for (static IPs, or the address Docker's IPAM chose).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// The MAC the runtime asks for; `None` lets netplugin choose (Contiv: `02:02:<IPv4>`).
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Free-form facts about the workload (`K8S_POD_NAME`, `K8S_POD_NAMESPACE`,
    /// `docker.network-id`, ...), for policy and service discovery.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// DEL: remove an endpoint. Must succeed when the endpoint or the namespace is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelEndpoint {
    pub attachment: Attachment,
    /// The network the attachment was made on, when the caller still knows it.
    #[serde(default)]
    pub target: Option<NetworkTarget>,
    /// The namespace, when it still exists (containerd sends an empty `CNI_NETNS` on DEL).
    #[serde(default)]
    pub netns: Option<PathBuf>,
}

/// CHECK: verify that an endpoint is as ADD left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEndpoint {
    pub attachment: Attachment,
    pub target: NetworkTarget,
    pub netns: PathBuf,
    /// The addresses the previous result reported for this interface.
    #[serde(default)]
    pub ips: Vec<IpNet>,
    /// The MAC the previous result reported for this interface.
    #[serde(default)]
    pub mac: Option<MacAddr>,
}

/// GC: remove every attachment on `target` that is not in `keep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRequest {
    pub target: NetworkTarget,
    pub keep: Vec<Attachment>,
}

/// One address of an endpoint, with the gateway of its family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address with the network's prefix length (`20.1.1.2/24`).
    pub address: IpNet,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

/// A route inside the container; no gateway means a link (on-interface) route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    pub dst: IpNet,
    #[serde(default)]
    pub gw: Option<IpAddr>,
}

/// DNS settings for the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// What an endpoint looks like after ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointResult {
    /// The container-side interface: its final name (CNI), or the temporary host-namespace
    /// name the runtime moves into the sandbox (Docker's `SrcName`).
    pub container_ifname: String,
    pub mac: MacAddr,
    /// The host side of the veth pair.
    pub host_ifname: String,
    #[serde(default)]
    pub host_mac: Option<MacAddr>,
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The network the endpoint is on.
    pub target: NetworkTarget,
}

/// What kind of failure an [`EndpointError`] is; the front ends map it to CNI error codes
/// and Docker `{"Err": ...}` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request named something invalid (bad address, unknown network, bad name).
    InvalidArgument,
    /// The endpoint, network or pool does not exist.
    NotFound,
    /// The pool or network has no free address left.
    NoFreeAddress,
    /// netplugin cannot serve the request now (not ready, unreachable); try again later.
    Unavailable,
    /// Anything else (kernel or store failures).
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::NoFreeAddress => "no free address",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// An error from the [`EndpointService`]: a kind and a message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct EndpointError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EndpointError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn no_free_address(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoFreeAddress, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// A Docker network as the driver knows it, persisted by the agent under Docker's network
/// id so that a restarted plugin still knows it (Docker does not replay `CreateNetwork`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerNetwork {
    /// The Contiv network; `None` until it could be resolved (from the `CreateNetwork`
    /// options, or later from the Docker network's name).
    pub target: Option<NetworkTarget>,
    /// The pools Docker's IPAM gave the network (IPv4 and IPv6).
    #[serde(default)]
    pub pools: Vec<IpNet>,
    /// The gateways Docker's IPAM gave the network, with prefix length.
    #[serde(default)]
    pub gateways: Vec<IpNet>,
    /// Docker's generic options (`-o key=value`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// IPAM `RequestPool`: find the Contiv network a Docker pool stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRequest {
    /// The Contiv network, when the IPAM options name it.
    pub target: Option<NetworkTarget>,
    /// The subnet the user gave (`--subnet`), if any.
    pub subnet: Option<IpNet>,
    /// The range the user gave (`--ip-range`); addresses must come from it.
    pub sub_pool: Option<IpNet>,
    pub v6: bool,
}

/// A pool granted by [`EndpointService::request_pool`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub target: NetworkTarget,
    pub subnet: IpNet,
    pub gateway: Option<IpAddr>,
}

/// Whether an IPAM address request is for the network's gateway or for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    Gateway,
    Endpoint,
}

/// IPAM `RequestAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRequest {
    pub target: NetworkTarget,
    pub subnet: IpNet,
    /// The address asked for (`--ip`, `--gateway`); `None` means any free one.
    pub address: Option<IpAddr>,
    pub mac: Option<MacAddr>,
    pub kind: AddressKind,
}

/// The agent side of container networking.
///
/// Every method must be safe to call again with the same arguments (runtimes retry, and
/// Docker repeats calls after restarts). Implementations are expected to persist what
/// they are told, including the Docker mapping, so front ends can stay stateless.
pub trait EndpointService: Send + Sync + 'static {
    /// Creates the endpoint, or returns the existing one for the same attachment.
    fn add(
        &self,
        req: AddEndpoint,
    ) -> impl Future<Output = Result<EndpointResult, EndpointError>> + Send;

    /// Removes the endpoint; unknown attachments and missing namespaces are not errors.
    fn del(&self, req: DelEndpoint) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// Verifies the endpoint against what ADD returned.
    fn check(&self, req: CheckEndpoint) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// Whether netplugin is ready to serve ADD.
    fn status(&self) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// Removes stale attachments of a network.
    fn gc(&self, req: GcRequest) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// The current state of an endpoint, `None` when unknown.
    fn endpoint(
        &self,
        attachment: Attachment,
    ) -> impl Future<Output = Result<Option<EndpointResult>, EndpointError>> + Send;

    /// Records (or replaces) what the driver knows about a Docker network.
    fn bind_docker_network(
        &self,
        network_id: String,
        network: DockerNetwork,
    ) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// What was recorded for a Docker network id.
    fn docker_network(
        &self,
        network_id: String,
    ) -> impl Future<Output = Result<Option<DockerNetwork>, EndpointError>> + Send;

    /// Forgets a Docker network id (unknown ids are not an error).
    fn unbind_docker_network(
        &self,
        network_id: String,
    ) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// The name Docker knows a network by (the agent asks dockerd), `None` when Docker does
    /// not know it (yet): Docker calls `CreateNetwork` before the network is visible in its
    /// API, so the driver resolves names lazily at `CreateEndpoint`.
    fn docker_network_name(
        &self,
        network_id: String,
    ) -> impl Future<Output = Result<Option<String>, EndpointError>> + Send;

    /// IPAM: resolves a pool to a Contiv network (by target, or by subnet when the target
    /// is not given) and checks the requested subnet and range against it.
    fn request_pool(
        &self,
        req: PoolRequest,
    ) -> impl Future<Output = Result<PoolInfo, EndpointError>> + Send;

    /// IPAM: releases a pool (unknown pools are not an error).
    fn release_pool(
        &self,
        target: NetworkTarget,
        subnet: IpNet,
    ) -> impl Future<Output = Result<(), EndpointError>> + Send;

    /// IPAM: reserves an address (or returns the network's gateway for gateway requests);
    /// the reply carries the prefix length.
    fn request_address(
        &self,
        req: AddressRequest,
    ) -> impl Future<Output = Result<IpNet, EndpointError>> + Send;

    /// IPAM: releases an address (a free one is not an error).
    fn release_address(
        &self,
        target: NetworkTarget,
        subnet: IpNet,
        address: IpAddr,
    ) -> impl Future<Output = Result<(), EndpointError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_round_trip() {
        let t = NetworkTarget::parse_docker_name("contiv-net").unwrap();
        assert_eq!(
            t,
            NetworkTarget::new("default", "contiv-net", None).unwrap()
        );
        let t = NetworkTarget::parse_docker_name("web.contiv-net").unwrap();
        assert_eq!(t.group.as_deref(), Some("web"));
        assert_eq!(t.network, "contiv-net");
        assert_eq!(t.docker_name(), "web.contiv-net");
        let t = NetworkTarget::parse_docker_name("web.contiv-net/blue").unwrap();
        assert_eq!(t.tenant, "blue");
        assert_eq!(t.docker_name(), "web.contiv-net/blue");
        let t = NetworkTarget::parse_docker_name("net/blue").unwrap();
        assert_eq!((t.tenant.as_str(), t.group), ("blue", None));
    }

    #[test]
    fn bad_docker_names() {
        assert!(matches!(
            NetworkTarget::parse_docker_name(""),
            Err(NameError::Empty { .. })
        ));
        assert!(NetworkTarget::parse_docker_name(".net").is_err());
        assert!(NetworkTarget::parse_docker_name("net/").is_err());
        assert!(NetworkTarget::parse_docker_name("a.b.c").is_err());
        assert!(NetworkTarget::parse_docker_name("net/a/b").is_err());
        assert!(NetworkTarget::parse_docker_name("n et").is_err());
        assert!(NetworkTarget::parse_docker_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn mac_parse_and_print() {
        let m: MacAddr = "02:42:AA:37:b1:52".parse().unwrap();
        assert_eq!(m.0, [0x02, 0x42, 0xaa, 0x37, 0xb1, 0x52]);
        assert_eq!(m.to_string(), "02:42:aa:37:b1:52");
        for bad in [
            "",
            "02:42:aa:37:b1",
            "02:42:aa:37:b1:52:00",
            "0:42:aa:37:b1:52",
            "zz:42:aa:37:b1:52",
            "+2:42:aa:37:b1:52",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, "\"02:42:aa:37:b1:52\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&j).unwrap(), m);
    }
}
