//! IPAM errors.

use std::fmt;
use std::net::IpAddr;

/// Why an address is reserved and never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservedKind {
    /// The all-zero host address of an IPv4 subnet (not for /31 and /32).
    NetworkAddress,
    /// The all-ones host address of an IPv4 subnet (not for /31 and /32).
    BroadcastAddress,
    /// The all-zero host address of an IPv6 subnet (RFC 4291 §2.6.1; not for /127 and /128).
    SubnetRouterAnycast,
    /// The network's configured gateway.
    Gateway,
}

impl fmt::Display for ReservedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReservedKind::NetworkAddress => "network address",
            ReservedKind::BroadcastAddress => "broadcast address",
            ReservedKind::SubnetRouterAnycast => "subnet-router anycast address",
            ReservedKind::Gateway => "gateway",
        })
    }
}

/// Names the owner of an allocation in messages: `network N` or `endpoint group G of network N`.
fn owner(network: &str, group: &Option<String>) -> String {
    match group {
        None => format!("network {network:?}"),
        Some(g) => format!("endpoint group {g:?} of network {network:?}"),
    }
}

/// Everything that can go wrong in IPAM. Every message names the address, range, network or
/// group concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// A subnet spec (`a.b.c.d/len` or `start-end/len`) could not be used.
    #[error("invalid subnet {spec:?}: {reason}")]
    InvalidSubnet { spec: String, reason: String },
    /// An address range (`start-end`) could not be parsed.
    #[error("invalid address range {spec:?}: {reason}")]
    InvalidRange { spec: String, reason: String },
    /// The gateway is not an address of the subnet.
    #[error("gateway {gateway} is not in subnet {subnet} of network {network:?}")]
    GatewayNotInSubnet {
        network: String,
        subnet: String,
        gateway: IpAddr,
    },
    /// The gateway is the network, broadcast or subnet-router anycast address.
    #[error("gateway {gateway} of network {network:?} is the {kind} of subnet {subnet}")]
    GatewayReserved {
        network: String,
        subnet: String,
        gateway: IpAddr,
        kind: ReservedKind,
    },
    /// No free address is left.
    #[error("no free address left in {}", owner(.network, .group))]
    Exhausted {
        network: String,
        group: Option<String>,
    },
    /// The address is not in the network's subnet (or is of the other family).
    #[error("address {addr} is not in subnet {subnet} of network {network:?}")]
    NotInSubnet {
        network: String,
        subnet: String,
        addr: IpAddr,
    },
    /// The address is in the subnet but outside the allocatable range `start-end`.
    #[error("address {addr} is outside the allocatable range {range} of network {network:?}")]
    NotInRange {
        network: String,
        range: String,
        addr: IpAddr,
    },
    /// The address is reserved.
    #[error("address {addr} is reserved as the {kind} of network {network:?}")]
    Reserved {
        network: String,
        addr: IpAddr,
        kind: ReservedKind,
    },
    /// The address belongs to an endpoint group's ip pool, so the network itself cannot use it.
    #[error(
        "address {addr} belongs to the ip pool {pool} of endpoint group {group:?} of network {network:?}"
    )]
    InEpgPool {
        network: String,
        group: String,
        pool: String,
        addr: IpAddr,
    },
    /// The address is outside the endpoint group's ip pool.
    #[error(
        "address {addr} is outside the ip pool {pool} of endpoint group {group:?} of network {network:?}"
    )]
    NotInEpgPool {
        network: String,
        group: String,
        pool: String,
        addr: IpAddr,
    },
    /// The address is already allocated.
    #[error("address {addr} is already allocated in {}", owner(.network, .group))]
    AlreadyAllocated {
        network: String,
        group: Option<String>,
        addr: IpAddr,
    },
    /// The address is not allocated (double release, or never allocated).
    #[error("address {addr} is not allocated in {}", owner(.network, .group))]
    NotAllocated {
        network: String,
        group: Option<String>,
        addr: IpAddr,
    },
    /// The endpoint group has no ip pool in this network.
    #[error("endpoint group {group:?} has no ip pool in network {network:?}")]
    UnknownEpg { network: String, group: String },
    /// The endpoint group already has an ip pool in this network.
    #[error("endpoint group {group:?} already has the ip pool {pool} in network {network:?}")]
    EpgPoolExists {
        network: String,
        group: String,
        pool: String,
    },
    /// The ip pool is not inside the network's allocatable range.
    #[error(
        "ip pool {pool} of endpoint group {group:?} is not inside the range {range} of network {network:?}"
    )]
    EpgPoolOutside {
        network: String,
        group: String,
        pool: String,
        range: String,
    },
    /// The ip pool overlaps another endpoint group's pool (of the same network; the network
    /// is left out to keep the error small).
    #[error(
        "ip pool {pool} of endpoint group {group:?} overlaps the ip pool {other_pool} of endpoint group {other:?}"
    )]
    EpgPoolOverlap {
        group: String,
        pool: String,
        other: String,
        other_pool: String,
    },
    /// The ip pool contains a reserved address.
    #[error(
        "ip pool {pool} of endpoint group {group:?} contains {addr}, the {kind} of network {network:?}"
    )]
    EpgPoolReserved {
        network: String,
        group: String,
        pool: String,
        addr: IpAddr,
        kind: ReservedKind,
    },
    /// The ip pool contains an address already allocated to the network.
    #[error(
        "ip pool {pool} of endpoint group {group:?} contains {addr}, which is already allocated in network {network:?}"
    )]
    EpgPoolAllocated {
        network: String,
        group: String,
        pool: String,
        addr: IpAddr,
    },
    /// The endpoint group's pool still has allocated addresses.
    #[error(
        "ip pool {pool} of endpoint group {group:?} in network {network:?} still has {count} allocated addresses"
    )]
    EpgPoolInUse {
        network: String,
        group: String,
        pool: String,
        count: u128,
    },
    /// A stored state has a version this build does not understand.
    #[error("IPAM state version {found} is not supported (this build reads version {supported})")]
    UnsupportedStateVersion { found: u32, supported: u32 },
    /// A stored state is malformed or inconsistent.
    #[error("corrupt IPAM state for network {network:?}: {reason}")]
    CorruptState { network: String, reason: String },
}
