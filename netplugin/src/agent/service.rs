//! [`EndpointService`] for the agent: what the CNI plugin and the Docker driver call.

use std::net::IpAddr;
use std::time::Duration;

use contiv_model::{Network, Object};
use ipnet::IpNet;

use super::master::{EndpointAllocation, EndpointRequest};
use super::{Agent, LocalRecord, Reservation, attachment_key, endpoint_id};
use crate::cni::service::{
    AddEndpoint, AddressKind, AddressRequest, Attachment, CheckEndpoint, DelEndpoint, DnsConfig,
    DockerNetwork, EndpointError, EndpointResult, EndpointService, GcRequest, IpConfig, MacAddr,
    NetworkTarget, PoolInfo, PoolRequest, RouteConfig,
};
use crate::endpoint::{self, EndpointSpec, GATEWAY_MAC};

/// How long a front-end call waits for the data path to be programmed.
const SETTLE: Duration = Duration::from_secs(30);

fn result_of(r: &LocalRecord, dns: Option<IpAddr>) -> EndpointResult {
    let routes = r
        .gateway
        .map(|gw| {
            vec![RouteConfig {
                dst: if gw.is_ipv4() {
                    "0.0.0.0/0".parse().expect("literal")
                } else {
                    "::/0".parse().expect("literal")
                },
                gw: Some(gw),
            }]
        })
        .unwrap_or_default();
    EndpointResult {
        container_ifname: r.container_ifname.clone(),
        mac: r.mac,
        host_ifname: r.host_ifname.clone(),
        host_mac: Some(MacAddr(GATEWAY_MAC)),
        ips: vec![IpConfig {
            address: r.address,
            gateway: r.gateway,
        }],
        routes,
        dns: DnsConfig {
            nameservers: dns.into_iter().collect(),
            ..DnsConfig::default()
        },
        mtu: None,
        target: r.target.clone(),
    }
}

fn parse_allocation(a: &EndpointAllocation) -> Result<(IpNet, Option<IpAddr>), EndpointError> {
    let address: IpNet = a.address.parse().map_err(|_| {
        EndpointError::internal(format!(
            "netmaster allocated {:?}, not an address",
            a.address
        ))
    })?;
    let gateway = if a.gateway.is_empty() {
        None
    } else {
        Some(a.gateway.parse().map_err(|_| {
            EndpointError::internal(format!(
                "netmaster's gateway {:?} is not an address",
                a.gateway
            ))
        })?)
    };
    Ok((address, gateway))
}

impl Agent {
    fn network_of(&self, t: &NetworkTarget) -> Result<(Network, IpNet), EndpointError> {
        let key = format!("{}:{}", t.tenant, t.network);
        let net = self
            .mirror()
            .get::<Network>(Network::PLURAL, &key)
            .ok_or_else(|| EndpointError::not_found(format!("network {key} does not exist")))?;
        let subnet = contiv_model::validate::parse_subnet("subnet", &net.subnet)
            .map(|s| IpNet::from(s.net))
            .map_err(|e| EndpointError::internal(format!("network {key}: {}", e.message)))?;
        Ok((net, subnet))
    }

    async fn allocate(
        &self,
        id: &str,
        req: &AddEndpoint,
        preferred: Option<IpAddr>,
    ) -> Result<EndpointAllocation, EndpointError> {
        self.master
            .create_endpoint(&EndpointRequest {
                endpoint_id: id.to_string(),
                tenant: req.target.tenant.clone(),
                network: req.target.network.clone(),
                group: req.target.group.clone().unwrap_or_default(),
                host: self.cfg.host.clone(),
                container_id: req.attachment.container_id.clone(),
                container_name: req
                    .labels
                    .get("K8S_POD_NAME")
                    .or_else(|| req.labels.get("name"))
                    .cloned()
                    .unwrap_or_default(),
                preferred_ip: preferred.map(|a| a.to_string()).unwrap_or_default(),
                labels: req.labels.clone(),
            })
            .await
    }

    async fn save(&self, st: &super::Saved) -> Result<(), EndpointError> {
        st.save(&self.cfg.state_dir).map_err(|e| {
            EndpointError::internal(format!(
                "saving {}: {e}",
                self.cfg.state_dir.join("endpoints.json").display()
            ))
        })
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, endpoint::EndpointError> + Send + 'static,
    ) -> Result<T, EndpointError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| EndpointError::internal(format!("plumbing task: {e}")))?
            .map_err(|e| match e {
                endpoint::EndpointError::Invalid { .. } => EndpointError::invalid(e.to_string()),
                endpoint::EndpointError::Step { .. } => EndpointError::internal(e.to_string()),
            })
    }

    async fn remove_record(&self, r: &LocalRecord) -> Result<(), EndpointError> {
        let host = self.host_ns.clone();
        let id = r.endpoint_id.clone();
        Self::blocking(move || endpoint::unplumb(&host, &id)).await?;
        if !r.ipam_reserved {
            self.master.delete_endpoint(&r.endpoint_id).await?;
        }
        Ok(())
    }
}

impl EndpointService for Agent {
    async fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError> {
        self.await_first_intent().await;
        self.check_mode()?;
        let key = attachment_key(&req.attachment);
        let mut st = self.state.lock().await;
        if let Some(r) = st.endpoints.get(&key) {
            if r.target.tenant != req.target.tenant || r.target.network != req.target.network {
                return Err(EndpointError::invalid(format!(
                    "attachment {key} already exists on {}",
                    r.target
                )));
            }
            // Fail closed here too: a runtime that retries an ADD must not get a
            // success the first attempt was refused for.
            if let Some(e) = self.status().policy.as_ref().and_then(|p| p.error.clone()) {
                return Err(EndpointError::unavailable(format!(
                    "the policy ruleset could not be programmed: {e}"
                )));
            }
            return Ok(result_of(r, self.dns_server_ip()));
        }
        // A Docker address reserved through our IPAM driver becomes this endpoint.
        let reservation = req
            .ips
            .iter()
            .find_map(|a| st.reservations.get(a))
            .filter(|r| {
                r.target.tenant == req.target.tenant && r.target.network == req.target.network
            })
            .cloned();
        let (id, address, gateway) = match &reservation {
            Some(r) => (r.endpoint_id.clone(), r.address, r.gateway),
            None => {
                let id = endpoint_id(&req.attachment);
                let alloc = self
                    .allocate(&id, &req, req.ips.iter().copied().find(IpAddr::is_ipv4))
                    .await?;
                let (a, g) = match parse_allocation(&alloc) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = self.master.delete_endpoint(&id).await;
                        return Err(e);
                    }
                };
                (id, a, g)
            }
        };
        let undo_alloc = |this: &Self, id: String| {
            let reserved = reservation.is_some();
            let master = this.master.clone();
            async move {
                if !reserved {
                    let _ = master.delete_endpoint(&id).await;
                }
            }
        };
        // Routing mode gives every container Contiv's MAC for its address, and the
        // source checks hold it to that MAC: a runtime asking for another one
        // (`docker run --mac-address`) would start a container whose every packet drops.
        if let (Some(m), IpAddr::V4(v4)) = (req.mac, address.addr())
            && m != MacAddr(endpoint::container_mac(v4))
        {
            undo_alloc(self, id).await;
            return Err(EndpointError::invalid(format!(
                "MAC {m} cannot be honoured: in routing mode a container's MAC is 02:02 and its \
                 IPv4 address ({}); run the container without --mac-address",
                MacAddr(endpoint::container_mac(v4))
            )));
        }
        let host = self.host_ns.clone();
        let mtu = self.cfg.mtu;
        let plumbed = match req.netns.clone() {
            Some(netns) => {
                let spec = EndpointSpec {
                    id: id.clone(),
                    netns,
                    ifname: req.attachment.ifname.clone(),
                    address,
                    gateway,
                    mtu,
                };
                let ifname = spec.ifname.clone();
                Self::blocking(move || endpoint::plumb(&host, &spec).map(|p| (p, ifname))).await
            }
            None => {
                let eid = id.clone();
                Self::blocking(move || endpoint::plumb_detached(&host, &eid, address, mtu)).await
            }
        };
        let (p, container_ifname) = match plumbed {
            Ok(v) => v,
            Err(e) => {
                undo_alloc(self, id).await;
                return Err(e);
            }
        };
        let record = LocalRecord {
            endpoint_id: id.clone(),
            attachment: req.attachment.clone(),
            target: req.target.clone(),
            netns: req.netns.clone(),
            address,
            gateway,
            host_ifname: p.host_ifname.clone(),
            container_ifname,
            mac: MacAddr(p.mac),
            container_name: req
                .labels
                .get("K8S_POD_NAME")
                .or_else(|| req.labels.get("name"))
                .cloned()
                .unwrap_or_default(),
            ipam_reserved: reservation.is_some(),
        };
        st.endpoints.insert(key.clone(), record.clone());
        if let Err(e) = self.save(&st).await {
            st.endpoints.remove(&key);
            let host = self.host_ns.clone();
            let eid = id.clone();
            let _ = Self::blocking(move || endpoint::unplumb(&host, &eid)).await;
            undo_alloc(self, id).await;
            return Err(e);
        }
        let touched = self.touch(Some(&key));
        drop(st);
        if record.netns.is_none() && record.container_name.is_empty() {
            let _ = self
                .naming
                .send((key.clone(), req.attachment.container_id.clone()));
        }
        self.metrics
            .endpoint_ops
            .get_or_create(&super::metrics::OpLabels::new("add"))
            .inc();
        self.settle(touched, SETTLE).await?;
        // Fail closed: a container does not start unprotected. The runtime's DEL that
        // follows a failed ADD removes the endpoint.
        if let Some(e) = self.status().policy.as_ref().and_then(|p| p.error.clone()) {
            return Err(EndpointError::unavailable(format!(
                "the policy ruleset could not be programmed: {e}"
            )));
        }
        Ok(result_of(&record, self.dns_server_ip()))
    }

    async fn del(&self, req: DelEndpoint) -> Result<(), EndpointError> {
        let key = attachment_key(&req.attachment);
        let mut st = self.state.lock().await;
        let Some(r) = st.endpoints.get(&key).cloned() else {
            return Ok(());
        };
        self.remove_record(&r).await?;
        st.endpoints.remove(&key);
        let touched = self.touch(Some(&key));
        self.save(&st).await?;
        drop(st);
        self.metrics
            .endpoint_ops
            .get_or_create(&super::metrics::OpLabels::new("del"))
            .inc();
        self.settle(touched, SETTLE).await
    }

    async fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError> {
        let key = attachment_key(&req.attachment);
        let r = self
            .state
            .lock()
            .await
            .endpoints
            .get(&key)
            .cloned()
            .ok_or_else(|| EndpointError::not_found(format!("no endpoint for attachment {key}")))?;
        if r.target.tenant != req.target.tenant || r.target.network != req.target.network {
            return Err(EndpointError::invalid(format!(
                "attachment {key} is on {}, not {}",
                r.target, req.target
            )));
        }
        if !req.ips.is_empty() && !req.ips.contains(&r.address) {
            return Err(EndpointError::invalid(format!(
                "attachment {key} has address {}, not {:?}",
                r.address, req.ips
            )));
        }
        if let Some(m) = req.mac
            && m != r.mac
        {
            return Err(EndpointError::invalid(format!(
                "attachment {key} has MAC {}, not {m}",
                r.mac
            )));
        }
        let host = self.host_ns.clone();
        let name = r.host_ifname.clone();
        let present = tokio::task::spawn_blocking(move || endpoint::host_ifindex(&host, &name))
            .await
            .map_err(|e| EndpointError::internal(e.to_string()))?
            .map_err(|e| EndpointError::internal(e.to_string()))?;
        if present.is_none() {
            return Err(EndpointError::not_found(format!(
                "attachment {key}: host interface {} is missing",
                r.host_ifname
            )));
        }
        Ok(())
    }

    async fn status(&self) -> Result<(), EndpointError> {
        self.check_mode()
    }

    async fn gc(&self, req: GcRequest) -> Result<(), EndpointError> {
        let keep: std::collections::BTreeSet<String> =
            req.keep.iter().map(attachment_key).collect();
        let mut st = self.state.lock().await;
        let stale: Vec<(String, LocalRecord)> = st
            .endpoints
            .iter()
            .filter(|(k, r)| {
                r.netns.is_some()
                    && r.target.tenant == req.target.tenant
                    && r.target.network == req.target.network
                    && !keep.contains(*k)
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for (k, r) in &stale {
            self.remove_record(r).await?;
            st.endpoints.remove(k);
            self.touch(Some(k));
        }
        let touched = self.touch(None);
        self.save(&st).await?;
        drop(st);
        if !stale.is_empty() {
            self.settle(touched, SETTLE).await?;
        }
        Ok(())
    }

    async fn endpoint(
        &self,
        attachment: Attachment,
    ) -> Result<Option<EndpointResult>, EndpointError> {
        Ok(self
            .state
            .lock()
            .await
            .endpoints
            .get(&attachment_key(&attachment))
            .map(|r| result_of(r, self.dns_server_ip())))
    }

    async fn bind_docker_network(
        &self,
        network_id: String,
        network: DockerNetwork,
    ) -> Result<(), EndpointError> {
        let mut st = self.state.lock().await;
        st.docker_networks.insert(network_id, network);
        self.save(&st).await
    }

    async fn docker_network(
        &self,
        network_id: String,
    ) -> Result<Option<DockerNetwork>, EndpointError> {
        Ok(self
            .state
            .lock()
            .await
            .docker_networks
            .get(&network_id)
            .cloned())
    }

    async fn unbind_docker_network(&self, network_id: String) -> Result<(), EndpointError> {
        let mut st = self.state.lock().await;
        if st.docker_networks.remove(&network_id).is_some() {
            self.save(&st).await?;
        }
        Ok(())
    }

    async fn docker_network_name(
        &self,
        _network_id: String,
    ) -> Result<Option<String>, EndpointError> {
        // Networks are created with their Contiv names in the options; a network created
        // by hand without them cannot be resolved.
        Ok(None)
    }

    async fn request_pool(&self, req: PoolRequest) -> Result<PoolInfo, EndpointError> {
        if req.v6 {
            return Err(EndpointError::invalid(
                "IPv6 pools are not supported in routing mode yet",
            ));
        }
        let target = match req.target {
            Some(t) => t,
            None => {
                let want = req.subnet.ok_or_else(|| {
                    EndpointError::invalid(
                        "name the Contiv network (-o tenant=... -o network=...) or give its --subnet",
                    )
                })?;
                self.mirror()
                    .list::<Network>(Network::PLURAL)
                    .into_iter()
                    .find(|n| {
                        contiv_model::validate::parse_subnet("subnet", &n.subnet)
                            .is_ok_and(|s| IpNet::from(s.net).trunc() == want.trunc())
                    })
                    .map(|n| NetworkTarget::new(&n.tenant_name, &n.network_name, None))
                    .ok_or_else(|| {
                        EndpointError::not_found(format!("no Contiv network has subnet {want}"))
                    })?
                    .map_err(|e| EndpointError::invalid(e.to_string()))?
            }
        };
        let (net, subnet) = self.network_of(&target)?;
        if let Some(s) = req.subnet
            && s.trunc() != subnet.trunc()
        {
            return Err(EndpointError::invalid(format!(
                "{target} has subnet {subnet}, not {s}"
            )));
        }
        if let Some(r) = req.sub_pool
            && !subnet.contains(&r)
        {
            return Err(EndpointError::invalid(format!(
                "range {r} is outside {subnet}"
            )));
        }
        Ok(PoolInfo {
            target,
            subnet: subnet.trunc(),
            gateway: net.gateway.parse().ok(),
        })
    }

    async fn release_pool(
        &self,
        _target: NetworkTarget,
        _subnet: IpNet,
    ) -> Result<(), EndpointError> {
        Ok(())
    }

    async fn request_address(&self, req: AddressRequest) -> Result<IpNet, EndpointError> {
        self.await_first_intent().await;
        self.check_mode()?;
        let (net, subnet) = self.network_of(&req.target)?;
        let len = subnet.prefix_len();
        let with_len =
            |a: IpAddr| IpNet::new(a, len).map_err(|e| EndpointError::internal(e.to_string()));
        match req.kind {
            AddressKind::Gateway => {
                let gw: IpAddr = net.gateway.parse().map_err(|_| {
                    EndpointError::invalid(format!("{} has no gateway", req.target))
                })?;
                if let Some(a) = req.address
                    && a != gw
                {
                    return Err(EndpointError::invalid(format!(
                        "gateway {a} requested, but {} has gateway {gw}",
                        req.target
                    )));
                }
                with_len(gw)
            }
            AddressKind::Endpoint => {
                let mut st = self.state.lock().await;
                let id = format!("ipam-{}-{:016x}", self.cfg.host, rand_u64());
                let add = AddEndpoint {
                    attachment: Attachment {
                        container_id: id.clone(),
                        ifname: String::new(),
                    },
                    target: req.target.clone(),
                    netns: None,
                    ips: Vec::new(),
                    mac: req.mac,
                    labels: Default::default(),
                };
                let alloc = self.allocate(&id, &add, req.address).await?;
                let (address, gateway) = parse_allocation(&alloc)?;
                st.reservations.insert(
                    address.addr(),
                    Reservation {
                        endpoint_id: id.clone(),
                        target: req.target.clone(),
                        address,
                        gateway,
                    },
                );
                if let Err(e) = self.save(&st).await {
                    st.reservations.remove(&address.addr());
                    let _ = self.master.delete_endpoint(&id).await;
                    return Err(e);
                }
                Ok(address)
            }
        }
    }

    async fn release_address(
        &self,
        _target: NetworkTarget,
        _subnet: IpNet,
        address: IpAddr,
    ) -> Result<(), EndpointError> {
        let mut st = self.state.lock().await;
        let Some(r) = st.reservations.get(&address).cloned() else {
            return Ok(());
        };
        self.master.delete_endpoint(&r.endpoint_id).await?;
        st.reservations.remove(&address);
        // An endpoint still using the address (Docker releases after DeleteEndpoint, but
        // be safe) no longer owns a reservation.
        for e in st.endpoints.values_mut() {
            if e.endpoint_id == r.endpoint_id {
                e.ipam_reserved = false;
            }
        }
        self.save(&st).await
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ u64::from(std::process::id())).to_le_bytes();
    }
    u64::from_le_bytes(b)
}
