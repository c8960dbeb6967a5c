//! An in-memory [`EndpointService`] for tests of the front ends: no kernel, no store.
//!
//! It behaves like the agent is specified to: idempotent ADD per attachment, DEL of unknown
//! attachments succeeds, lowest-free-address allocation that skips the network, broadcast
//! and gateway addresses, Contiv MACs (`02:02:<IPv4>`), and IPAM reservations that a later
//! ADD with the same address takes over (Docker's `RequestAddress` then `CreateEndpoint`).
//! Every call is logged in [`FakeState::calls`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard};

use ipnet::IpNet;

use super::service::*;
use crate::endpoint::{GATEWAY_MAC, host_ifname};

/// A network the fake knows: an IPv4 and optionally an IPv6 subnet, each with a gateway.
#[derive(Debug, Clone)]
pub struct FakeNetwork {
    pub subnets: Vec<(IpNet, Option<IpAddr>)>,
}

/// The fake's whole state, open for inspection and for tweaking in tests.
#[derive(Debug, Default)]
pub struct FakeState {
    /// `status()` and every other call fail with `Unavailable` while this is false.
    pub ready: bool,
    /// Networks by (tenant, network).
    pub networks: BTreeMap<(String, String), FakeNetwork>,
    pub endpoints: BTreeMap<Attachment, EndpointResult>,
    /// Addresses reserved through IPAM `request_address` (endpoint kind).
    pub ipam_reserved: BTreeSet<IpAddr>,
    pub pools: BTreeSet<(NetworkTarget, IpNet)>,
    pub docker_networks: BTreeMap<String, DockerNetwork>,
    /// What `docker_network_name` answers, by Docker network id.
    pub docker_names: BTreeMap<String, String>,
    /// One line per call: `"add <container id>/<ifname>"` and so on.
    pub calls: Vec<String>,
    /// The last request of each endpoint call, for assertions.
    pub last_add: Option<AddEndpoint>,
    pub last_del: Option<DelEndpoint>,
    pub last_check: Option<CheckEndpoint>,
    pub last_gc: Option<GcRequest>,
    pub last_address_request: Option<AddressRequest>,
    pub last_pool_request: Option<PoolRequest>,
}

/// The in-memory service. Build it with [`FakeService::new`] and
/// [`FakeService::with_network`].
#[derive(Debug, Default)]
pub struct FakeService {
    state: Mutex<FakeState>,
}

impl FakeService {
    /// A ready service with no networks.
    pub fn new() -> Self {
        let s = Self::default();
        s.state().ready = true;
        s
    }

    /// Adds a network with its subnets and gateways (`("20.1.1.0/24", Some("20.1.1.1"))`).
    /// Panics on malformed literals, which only tests write.
    pub fn with_network(
        self,
        tenant: &str,
        network: &str,
        subnets: &[(&str, Option<&str>)],
    ) -> Self {
        let subnets = subnets
            .iter()
            .map(|(n, g)| {
                (
                    n.parse().expect("test subnet literal"),
                    g.map(|g| g.parse().expect("test gateway literal")),
                )
            })
            .collect();
        self.state().networks.insert(
            (tenant.to_string(), network.to_string()),
            FakeNetwork { subnets },
        );
        self
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self, call: String) -> Result<MutexGuard<'_, FakeState>, EndpointError> {
        let mut st = self.state();
        st.calls.push(call);
        if !st.ready {
            return Err(EndpointError::unavailable("netplugin is not ready"));
        }
        Ok(st)
    }
}

fn network<'a>(st: &'a FakeState, t: &NetworkTarget) -> Result<&'a FakeNetwork, EndpointError> {
    st.networks
        .get(&(t.tenant.clone(), t.network.clone()))
        .ok_or_else(|| {
            EndpointError::not_found(format!("tenant {} has no network {}", t.tenant, t.network))
        })
}

fn in_use(st: &FakeState, ip: IpAddr) -> Option<&Attachment> {
    st.endpoints
        .iter()
        .find(|(_, r)| r.ips.iter().any(|c| c.address.addr() == ip))
        .map(|(a, _)| a)
}

fn nth(net: IpNet, i: u128) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(
            u32::from(n.network()).wrapping_add(i as u32),
        )),
        IpNet::V6(n) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(n.network()).wrapping_add(i),
        )),
    }
}

fn host_count(net: IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if bits >= 17 { 1 << 16 } else { 1u128 << bits }
}

fn allocate(
    st: &FakeState,
    subnet: IpNet,
    gateway: Option<IpAddr>,
) -> Result<IpAddr, EndpointError> {
    let n = host_count(subnet);
    // Skip the network address and (IPv4) the broadcast address.
    let last = if subnet.addr().is_ipv4() {
        n.saturating_sub(1)
    } else {
        n
    };
    (1..last)
        .map(|i| nth(subnet, i))
        .find(|ip| {
            Some(*ip) != gateway && in_use(st, *ip).is_none() && !st.ipam_reserved.contains(ip)
        })
        .ok_or_else(|| {
            EndpointError::no_free_address(format!("subnet {subnet} has no free address"))
        })
}

fn subnet_for(net: &FakeNetwork, ip: IpAddr) -> Option<(IpNet, Option<IpAddr>)> {
    net.subnets.iter().copied().find(|(s, _)| s.contains(&ip))
}

impl EndpointService for FakeService {
    async fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError> {
        let mut st = self.enter(format!(
            "add {}/{}",
            req.attachment.container_id, req.attachment.ifname
        ))?;
        st.last_add = Some(req.clone());
        if let Some(existing) = st.endpoints.get(&req.attachment) {
            if existing.target != req.target {
                return Err(EndpointError::invalid(format!(
                    "attachment {}/{} already exists on {}",
                    req.attachment.container_id, req.attachment.ifname, existing.target
                )));
            }
            return Ok(existing.clone());
        }
        let net = network(&st, &req.target)?.clone();
        let mut ips = Vec::new();
        for ip in &req.ips {
            let (subnet, gateway) = subnet_for(&net, *ip).ok_or_else(|| {
                EndpointError::invalid(format!(
                    "address {ip} is outside the subnets of {}",
                    req.target
                ))
            })?;
            if let Some(owner) = in_use(&st, *ip) {
                return Err(EndpointError::invalid(format!(
                    "address {ip} is in use by {}/{}",
                    owner.container_id, owner.ifname
                )));
            }
            let address = IpNet::new(*ip, subnet.prefix_len())
                .map_err(|e| EndpointError::internal(e.to_string()))?;
            ips.push(IpConfig { address, gateway });
        }
        for (subnet, gateway) in &net.subnets {
            if ips
                .iter()
                .any(|c| c.address.addr().is_ipv4() == subnet.addr().is_ipv4())
            {
                continue;
            }
            let ip = allocate(&st, *subnet, *gateway)?;
            let address = IpNet::new(ip, subnet.prefix_len())
                .map_err(|e| EndpointError::internal(e.to_string()))?;
            ips.push(IpConfig {
                address,
                gateway: *gateway,
            });
        }
        let mac = req.mac.unwrap_or_else(|| {
            match ips.iter().find_map(|c| match c.address.addr() {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            }) {
                Some(a) => MacAddr(crate::endpoint::container_mac(a)),
                None => MacAddr([0x02, 0x02, 0, 0, 0, 1]),
            }
        });
        let routes = ips
            .iter()
            .filter_map(|c| {
                c.gateway.map(|gw| RouteConfig {
                    dst: if gw.is_ipv4() {
                        "0.0.0.0/0".parse().expect("literal")
                    } else {
                        "::/0".parse().expect("literal")
                    },
                    gw: Some(gw),
                })
            })
            .collect();
        let host = host_ifname(&format!(
            "{}/{}",
            req.attachment.container_id, req.attachment.ifname
        ));
        let container_ifname = match req.netns {
            Some(_) => req.attachment.ifname.clone(),
            None => format!("cc{}", &host[2..]),
        };
        for c in &ips {
            st.ipam_reserved.remove(&c.address.addr());
        }
        let result = EndpointResult {
            container_ifname,
            mac,
            host_ifname: host,
            host_mac: Some(MacAddr(GATEWAY_MAC)),
            ips,
            routes,
            dns: DnsConfig::default(),
            mtu: Some(1500),
            target: req.target.clone(),
        };
        st.endpoints.insert(req.attachment, result.clone());
        Ok(result)
    }

    async fn del(&self, req: DelEndpoint) -> Result<(), EndpointError> {
        let mut st = self.enter(format!(
            "del {}/{}",
            req.attachment.container_id, req.attachment.ifname
        ))?;
        st.endpoints.remove(&req.attachment);
        st.last_del = Some(req);
        Ok(())
    }

    async fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError> {
        let mut st = self.enter(format!(
            "check {}/{}",
            req.attachment.container_id, req.attachment.ifname
        ))?;
        st.last_check = Some(req.clone());
        let ep = st.endpoints.get(&req.attachment).ok_or_else(|| {
            EndpointError::not_found(format!(
                "no endpoint for container {} interface {}",
                req.attachment.container_id, req.attachment.ifname
            ))
        })?;
        let have: BTreeSet<IpNet> = ep.ips.iter().map(|c| c.address).collect();
        let want: BTreeSet<IpNet> = req.ips.iter().copied().collect();
        if !want.is_empty() && have != want {
            return Err(EndpointError::invalid(format!(
                "endpoint has addresses {have:?}, the previous result says {want:?}"
            )));
        }
        if let Some(mac) = req.mac
            && mac != ep.mac
        {
            return Err(EndpointError::invalid(format!(
                "endpoint has MAC {}, the previous result says {mac}",
                ep.mac
            )));
        }
        Ok(())
    }

    async fn status(&self) -> Result<(), EndpointError> {
        self.enter("status".to_string()).map(|_| ())
    }

    async fn gc(&self, req: GcRequest) -> Result<(), EndpointError> {
        let mut st = self.enter(format!("gc {}", req.target))?;
        let keep: BTreeSet<&Attachment> = req.keep.iter().collect();
        let stale: Vec<Attachment> = st
            .endpoints
            .iter()
            .filter(|(a, r)| {
                r.target.tenant == req.target.tenant
                    && r.target.network == req.target.network
                    && !keep.contains(a)
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in stale {
            st.endpoints.remove(&a);
        }
        st.last_gc = Some(req);
        Ok(())
    }

    async fn endpoint(
        &self,
        attachment: Attachment,
    ) -> Result<Option<EndpointResult>, EndpointError> {
        let st = self.enter(format!(
            "endpoint {}/{}",
            attachment.container_id, attachment.ifname
        ))?;
        Ok(st.endpoints.get(&attachment).cloned())
    }

    async fn bind_docker_network(
        &self,
        network_id: String,
        network: DockerNetwork,
    ) -> Result<(), EndpointError> {
        let mut st = self.enter(format!("bind_docker_network {network_id}"))?;
        st.docker_networks.insert(network_id, network);
        Ok(())
    }

    async fn docker_network(
        &self,
        network_id: String,
    ) -> Result<Option<DockerNetwork>, EndpointError> {
        let st = self.enter(format!("docker_network {network_id}"))?;
        Ok(st.docker_networks.get(&network_id).cloned())
    }

    async fn unbind_docker_network(&self, network_id: String) -> Result<(), EndpointError> {
        let mut st = self.enter(format!("unbind_docker_network {network_id}"))?;
        st.docker_networks.remove(&network_id);
        Ok(())
    }

    async fn docker_network_name(
        &self,
        network_id: String,
    ) -> Result<Option<String>, EndpointError> {
        let st = self.enter(format!("docker_network_name {network_id}"))?;
        Ok(st.docker_names.get(&network_id).cloned())
    }

    async fn request_pool(&self, req: PoolRequest) -> Result<PoolInfo, EndpointError> {
        let mut st = self.enter("request_pool".to_string())?;
        st.last_pool_request = Some(req.clone());
        let family_ok = |s: &IpNet| s.addr().is_ipv6() == req.v6;
        let (target, subnet, gateway) = match (&req.target, req.subnet) {
            (Some(t), _) => {
                let net = network(&st, t)?;
                let (subnet, gateway) = net
                    .subnets
                    .iter()
                    .copied()
                    .find(|(s, _)| family_ok(s))
                    .ok_or_else(|| {
                        EndpointError::not_found(format!(
                            "{t} has no {} subnet",
                            if req.v6 { "IPv6" } else { "IPv4" }
                        ))
                    })?;
                if let Some(want) = req.subnet
                    && want != subnet
                {
                    return Err(EndpointError::invalid(format!(
                        "pool {want} does not match the subnet {subnet} of {t}"
                    )));
                }
                (t.clone(), subnet, gateway)
            }
            (None, Some(want)) => {
                let found: Vec<_> = st
                    .networks
                    .iter()
                    .flat_map(|((tenant, network), n)| {
                        n.subnets
                            .iter()
                            .filter(|(s, _)| *s == want)
                            .map(|(s, g)| (tenant.clone(), network.clone(), *s, *g))
                    })
                    .collect();
                match found.as_slice() {
                    [] => {
                        return Err(EndpointError::not_found(format!(
                            "no Contiv network has subnet {want}"
                        )));
                    }
                    [(tenant, network, s, g)] => (
                        NetworkTarget {
                            tenant: tenant.clone(),
                            network: network.clone(),
                            group: None,
                        },
                        *s,
                        *g,
                    ),
                    _ => {
                        return Err(EndpointError::invalid(format!(
                            "several Contiv networks have subnet {want}; name one"
                        )));
                    }
                }
            }
            (None, None) => {
                return Err(EndpointError::invalid(
                    "neither a Contiv network nor a subnet was given",
                ));
            }
        };
        if let Some(sp) = req.sub_pool
            && !subnet.contains(&sp)
        {
            return Err(EndpointError::invalid(format!(
                "range {sp} is not inside subnet {subnet}"
            )));
        }
        st.pools.insert((target.clone(), subnet));
        Ok(PoolInfo {
            target,
            subnet,
            gateway,
        })
    }

    async fn release_pool(
        &self,
        target: NetworkTarget,
        subnet: IpNet,
    ) -> Result<(), EndpointError> {
        let mut st = self.enter(format!("release_pool {subnet}"))?;
        st.pools.remove(&(target, subnet));
        Ok(())
    }

    async fn request_address(&self, req: AddressRequest) -> Result<IpNet, EndpointError> {
        let mut st = self.enter(format!("request_address {:?}", req.kind))?;
        st.last_address_request = Some(req.clone());
        let net = network(&st, &req.target)?.clone();
        let (subnet, gateway) = net
            .subnets
            .iter()
            .copied()
            .find(|(s, _)| *s == req.subnet)
            .ok_or_else(|| {
                EndpointError::not_found(format!("{} has no pool {}", req.target, req.subnet))
            })?;
        let prefix = |ip| {
            IpNet::new(ip, subnet.prefix_len()).map_err(|e| EndpointError::internal(e.to_string()))
        };
        match req.kind {
            AddressKind::Gateway => {
                let gw = gateway.ok_or_else(|| {
                    EndpointError::invalid(format!(
                        "subnet {subnet} of {} has no gateway",
                        req.target
                    ))
                })?;
                if let Some(want) = req.address
                    && want != gw
                {
                    return Err(EndpointError::invalid(format!(
                        "gateway {want} requested, but {} has gateway {gw}",
                        req.target
                    )));
                }
                prefix(gw)
            }
            AddressKind::Endpoint => {
                let ip = match req.address {
                    Some(ip) => {
                        if !subnet.contains(&ip) {
                            return Err(EndpointError::invalid(format!(
                                "address {ip} is outside {subnet}"
                            )));
                        }
                        if in_use(&st, ip).is_some()
                            || st.ipam_reserved.contains(&ip)
                            || Some(ip) == gateway
                        {
                            return Err(EndpointError::invalid(format!(
                                "address {ip} is already in use"
                            )));
                        }
                        ip
                    }
                    None => allocate(&st, subnet, gateway)?,
                };
                st.ipam_reserved.insert(ip);
                prefix(ip)
            }
        }
    }

    async fn release_address(
        &self,
        _target: NetworkTarget,
        _subnet: IpNet,
        address: IpAddr,
    ) -> Result<(), EndpointError> {
        let mut st = self.enter(format!("release_address {address}"))?;
        st.ipam_reserved.remove(&address);
        Ok(())
    }
}
