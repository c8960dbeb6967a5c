//! The Docker plugin protocol's JSON, as Docker 20.10 sends and expects it (field names are
//! Go's; `null` is accepted wherever Go may send it for an empty map or list).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One pool of `IPv4Data` / `IPv6Data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default, deserialize_with = "nullable")]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "nullable")]
    pub pool: String,
    #[serde(rename = "Gateway", default, deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "AuxAddresses", default, deserialize_with = "nullable")]
    pub aux_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

/// `DeleteNetwork` and `FreeNetwork`.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

/// The interface of `CreateEndpoint`, in the request and in the reply (where only the
/// fields that came empty may be set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    #[serde(
        rename = "Address",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub address: String,
    #[serde(
        rename = "AddressIPv6",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub address_ipv6: String,
    #[serde(
        rename = "MacAddress",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
}

impl EndpointInterface {
    pub fn is_empty(&self) -> bool {
        self.address.is_empty() && self.address_ipv6.is_empty() && self.mac_address.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Interface", default)]
    pub interface: Option<EndpointInterface>,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface", skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

/// `EndpointOperInfo`, `DeleteEndpoint`, `Leave`, `RevokeExternalConnectivity`.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

/// `Join` and `ProgramExternalConnectivity` (the latter has no `SandboxKey`).
#[derive(Debug, Clone, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "SandboxKey", default, deserialize_with = "nullable")]
    pub sandbox_key: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InterfaceName {
    #[serde(rename = "SrcName")]
    pub src_name: String,
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// A route Docker installs in the container: `RouteType` 0 is via `NextHop`, 1 is
/// on-link (connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticRoute {
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "RouteType")]
    pub route_type: u8,
    #[serde(rename = "NextHop", skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinResponse {
    #[serde(rename = "InterfaceName")]
    pub interface_name: InterfaceName,
    #[serde(rename = "Gateway", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "String::is_empty")]
    pub gateway_ipv6: String,
    #[serde(rename = "StaticRoutes", skip_serializing_if = "Vec::is_empty")]
    pub static_routes: Vec<StaticRoute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscoveryNotification {
    #[serde(rename = "DiscoveryType")]
    pub discovery_type: i64,
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default, deserialize_with = "nullable")]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "nullable")]
    pub pool: String,
    #[serde(rename = "SubPool", default, deserialize_with = "nullable")]
    pub sub_pool: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Address", default, deserialize_with = "nullable")]
    pub address: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestAddressResponse {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Address")]
    pub address: String,
}
