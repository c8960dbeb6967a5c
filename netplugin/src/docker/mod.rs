//! Docker CNM remote network driver and remote IPAM driver (the legacy plugin protocol
//! Docker 20.10 speaks on `/run/docker/plugins/<name>.sock`), translated onto the
//! [`EndpointService`].
//!
//! Protocol facts this follows (see `docs/runtimes.md`): every call is `POST
//! /<Method>` with no Content-Type (bodies are parsed here, never by an axum extractor),
//! `Plugin.Activate`, `GetCapabilities` and `GetDefaultAddressSpaces` have empty bodies,
//! errors are HTTP 200 with `{"Err": "...", "Error": "..."}` (the network API reads `Err`, the IPAM API `Error`).
//!
//! Mapping Docker networks to Contiv: `CreateNetwork` options `network`, `tenant`,
//! `group` (as Contiv's netmaster sets them) name the Contiv network; otherwise the
//! Docker network's name, `[group.]network[/tenant]`, does, resolved at the first
//! `CreateEndpoint` because Docker calls `CreateNetwork` before the name is visible in its
//! API. The mapping is stored through [`EndpointService::bind_docker_network`], never in
//! this process, because after a plugin restart Docker sends neither `Plugin.Activate`
//! nor `CreateNetwork` again.
//!
//! Endpoints: `CreateEndpoint` asks for the endpoint with no namespace (the container end
//! stays in the host namespace), `Join` hands that end to Docker as `SrcName`, and
//! `DeleteEndpoint` removes the whole veth pair — Docker moves the container end back to
//! the host on `Leave`, so `Leave` itself does nothing.
//!
//! `EndpointOperInfo` for an endpoint netplugin does not know answers an empty `Value`
//! (Docker polls it). The IPAM driver says `RequiresMACAddress: false`, so Docker leaves
//! the MAC empty and `CreateEndpoint` hands back netplugin's (Contiv's `02:02:<IPv4>`).
//!
//! IPAM pool ids are `<[group.]network[/tenant]>|<subnet>`, e.g.
//! `web.contiv-net|20.1.1.0/24`, so later calls need no lookup.
//!
//! Not done: port publishing (`com.docker.network.portmap` in
//! `ProgramExternalConnectivity`) is accepted and ignored; `AllocateNetwork` /
//! `FreeNetwork` (swarm only, never called for local-scope networks) are acknowledged
//! without creating anything; SIGTERM handling belongs to the agent's `main`.

pub mod types;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ipnet::IpNet;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cni::service::{
    AddEndpoint, AddressKind, AddressRequest, Attachment, DOCKER_IFNAME, DelEndpoint,
    DockerNetwork, EndpointError, EndpointService, ErrorKind, MacAddr, NetworkTarget, PoolRequest,
};
use types::*;

/// The Content-Type of replies (Docker ignores it).
pub const REPLY_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// Docker's gateway marker in `RequestAddress` options.
pub const GATEWAY_REQUEST: &str = "com.docker.network.gateway";
/// Docker's MAC option in `RequestAddress` options.
pub const MAC_OPTION: &str = "com.docker.network.endpoint.macaddress";
/// Docker's generic options (`-o key=value`) in `CreateNetwork` options.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";

/// Where Docker looks for a legacy plugin's socket.
pub fn socket_path(plugin_name: &str) -> PathBuf {
    PathBuf::from(format!("/run/docker/plugins/{plugin_name}.sock"))
}

/// The driver's scope as Docker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Networks exist per Docker host (single dockerd, no swarm).
    Local,
    /// Networks are cluster-wide (Contiv's own choice: netmaster owns them).
    Global,
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub scope: Scope,
    /// The answer to `GetDefaultAddressSpaces`.
    pub local_address_space: String,
    pub global_address_space: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            scope: Scope::Local,
            local_address_space: "contiv-local".to_string(),
            global_address_space: "contiv-global".to_string(),
        }
    }
}

struct Driver<S> {
    service: Arc<S>,
    config: DockerConfig,
}

/// A failed call: the message Docker shows.
type CallResult = Result<Value, String>;

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn service_err(method: &str, e: EndpointError) -> String {
    format!("{method}: {}: {}", e.kind, e.message)
}

fn parse<T: DeserializeOwned>(method: &str, body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "{method}: the request body is empty, expected a JSON object"
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("{method}: cannot decode the request: {e}"))
}

fn to_value<T: Serialize>(v: &T) -> CallResult {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the reply: {e}"))
}

fn respond(r: CallResult) -> Response {
    let body = match r {
        Ok(v) => v,
        Err(msg) => {
            tracing::warn!("docker driver: {msg}");
            // The network driver API names the field `Err`, the IPAM API `Error`
            // (libnetwork's two Response types); Docker ignores the other one.
            json!({ "Err": msg, "Error": msg })
        }
    };
    let bytes = serde_json::to_vec(&body)
        .unwrap_or_else(|_| b"{\"Err\":\"cannot encode the reply\"}".to_vec());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, REPLY_CONTENT_TYPE)],
        bytes,
    )
        .into_response()
}

/// Parses an address that may carry a prefix length (`20.1.1.2/24` or `20.1.1.2`).
fn parse_addr(what: &str, s: &str) -> Result<IpAddr, String> {
    s.split_once('/')
        .map_or(s, |(a, _)| a)
        .parse()
        .map_err(|_| format!("{what} {s:?} is not an IP address"))
}

fn parse_net(what: &str, s: &str) -> Result<IpNet, String> {
    s.parse()
        .map_err(|_| format!("{what} {s:?} is not a CIDR prefix"))
}

/// Encodes an IPAM pool id.
pub fn pool_id(target: &NetworkTarget, subnet: IpNet) -> String {
    format!("{}|{subnet}", target.docker_name())
}

/// Decodes an IPAM pool id made by [`pool_id`].
pub fn parse_pool_id(id: &str) -> Result<(NetworkTarget, IpNet), String> {
    let bad = || {
        format!(
            "pool id {id:?} is not one of this driver's (expected <[group.]network[/tenant]>|<subnet>)"
        )
    };
    let (name, subnet) = id.split_once('|').ok_or_else(bad)?;
    let target = NetworkTarget::parse_docker_name(name).map_err(|e| format!("{}: {e}", bad()))?;
    let subnet = subnet.parse().map_err(|_| bad())?;
    Ok((target, subnet))
}

/// A string view of Docker's generic options (`-o key=value`).
fn generic_options(options: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    options
        .get(GENERIC_OPTIONS)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Contiv network named by `network`/`tenant`/`group` options, if `network` is given.
fn target_from_options(
    options: &BTreeMap<String, String>,
) -> Result<Option<NetworkTarget>, String> {
    match options.get("network") {
        Some(network) => NetworkTarget::new(
            options
                .get("tenant")
                .map_or(crate::cni::service::DEFAULT_TENANT, String::as_str),
            network,
            options.get("group").map(String::as_str),
        )
        .map(Some)
        .map_err(|e| format!("options name an invalid Contiv network: {e}")),
        None if options.contains_key("group") => {
            Err("option group is given without option network".to_string())
        }
        None => Ok(None),
    }
}

impl<S: EndpointService> Driver<S> {
    /// The Contiv network of a Docker network: from the stored binding, else from the
    /// Docker network's name (and then stored).
    async fn resolve(&self, method: &str, network_id: &str) -> Result<NetworkTarget, String> {
        let known = self
            .service
            .docker_network(network_id.to_string())
            .await
            .map_err(|e| service_err(method, e))?;
        if let Some(DockerNetwork {
            target: Some(t), ..
        }) = &known
        {
            return Ok(t.clone());
        }
        let name = self
            .service
            .docker_network_name(network_id.to_string())
            .await
            .map_err(|e| service_err(method, e))?;
        let Some(name) = name else {
            return Err(match known {
                Some(_) => format!(
                    "{method}: network {} has no Contiv network: create it with \
                     -o network=<name> [-o tenant=<tenant>] [-o group=<group>], or name it \
                     [group.]network[/tenant]",
                    short(network_id)
                ),
                None => format!(
                    "{method}: network {} is unknown: it was not created through this driver \
                     and Docker reports no name for it",
                    short(network_id)
                ),
            });
        };
        let mut target = NetworkTarget::parse_docker_name(&name).map_err(|e| {
            format!(
                "{method}: network {} is named {name:?}, which is not a Contiv network name: {e}",
                short(network_id)
            )
        })?;
        let mut net = known.unwrap_or(DockerNetwork {
            target: None,
            pools: Vec::new(),
            gateways: Vec::new(),
            options: BTreeMap::new(),
        });
        if !name.contains('/')
            && let Some(t) = net.options.get("tenant")
        {
            target.tenant = t.clone();
        }
        net.target = Some(target.clone());
        self.service
            .bind_docker_network(network_id.to_string(), net)
            .await
            .map_err(|e| service_err(method, e))?;
        Ok(target)
    }

    async fn create_network(&self, body: &[u8]) -> CallResult {
        const M: &str = "CreateNetwork";
        let req: CreateNetworkRequest = parse(M, body)?;
        let options = generic_options(&req.options);
        let target = target_from_options(&options).map_err(|e| format!("{M}: {e}"))?;
        let mut pools = Vec::new();
        let mut gateways = Vec::new();
        for d in req.ipv4_data.iter().chain(&req.ipv6_data) {
            if !d.pool.is_empty() {
                pools.push(parse_net("pool", &d.pool).map_err(|e| format!("{M}: {e}"))?);
            }
            if !d.gateway.is_empty() {
                gateways.push(parse_net("gateway", &d.gateway).map_err(|e| format!("{M}: {e}"))?);
            }
        }
        self.service
            .bind_docker_network(
                req.network_id,
                DockerNetwork {
                    target,
                    pools,
                    gateways,
                    options,
                },
            )
            .await
            .map_err(|e| service_err(M, e))?;
        Ok(json!({}))
    }

    async fn delete_network(&self, body: &[u8]) -> CallResult {
        const M: &str = "DeleteNetwork";
        let req: NetworkRequest = parse(M, body)?;
        self.service
            .unbind_docker_network(req.network_id)
            .await
            .map_err(|e| service_err(M, e))?;
        Ok(json!({}))
    }

    async fn create_endpoint(&self, body: &[u8]) -> CallResult {
        const M: &str = "CreateEndpoint";
        let req: CreateEndpointRequest = parse(M, body)?;
        let target = self.resolve(M, &req.network_id).await?;
        let iface = req.interface.unwrap_or_default();
        let mut ips = Vec::new();
        for a in [&iface.address, &iface.address_ipv6] {
            if !a.is_empty() {
                ips.push(parse_addr("address", a).map_err(|e| format!("{M}: {e}"))?);
            }
        }
        let mac = if iface.mac_address.is_empty() {
            None
        } else {
            Some(
                iface
                    .mac_address
                    .parse::<MacAddr>()
                    .map_err(|e| format!("{M}: {e}"))?,
            )
        };
        let labels = BTreeMap::from([
            ("docker.network-id".to_string(), req.network_id.clone()),
            ("docker.endpoint-id".to_string(), req.endpoint_id.clone()),
        ]);
        let ep = self
            .service
            .add(AddEndpoint {
                attachment: Attachment {
                    container_id: req.endpoint_id,
                    ifname: DOCKER_IFNAME.to_string(),
                },
                target,
                netns: None,
                ips,
                mac,
                labels,
            })
            .await
            .map_err(|e| service_err(M, e))?;
        // Docker refuses replies that change fields it set: fill only empty ones.
        let mut out = EndpointInterface::default();
        if iface.mac_address.is_empty() {
            out.mac_address = ep.mac.to_string();
        }
        if iface.address.is_empty()
            && let Some(c) = ep.ips.iter().find(|c| c.address.addr().is_ipv4())
        {
            out.address = c.address.to_string();
        }
        if iface.address_ipv6.is_empty() && iface.address.is_empty() {
            // Only when Docker left addressing to the driver altogether.
            if let Some(c) = ep.ips.iter().find(|c| c.address.addr().is_ipv6()) {
                out.address_ipv6 = c.address.to_string();
            }
        }
        to_value(&CreateEndpointResponse {
            interface: (!out.is_empty()).then_some(out),
        })
    }

    async fn delete_endpoint(&self, body: &[u8]) -> CallResult {
        const M: &str = "DeleteEndpoint";
        let req: EndpointRequest = parse(M, body)?;
        let target = match self.service.docker_network(req.network_id.clone()).await {
            Ok(n) => n.and_then(|n| n.target),
            Err(e) => return Err(service_err(M, e)),
        };
        match self
            .service
            .del(DelEndpoint {
                attachment: Attachment {
                    container_id: req.endpoint_id,
                    ifname: DOCKER_IFNAME.to_string(),
                },
                target,
                netns: None,
            })
            .await
        {
            Ok(()) => Ok(json!({})),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(json!({})),
            Err(e) => Err(service_err(M, e)),
        }
    }

    async fn endpoint_oper_info(&self, body: &[u8]) -> CallResult {
        const M: &str = "EndpointOperInfo";
        let req: EndpointRequest = parse(M, body)?;
        let ep = self
            .service
            .endpoint(Attachment {
                container_id: req.endpoint_id,
                ifname: DOCKER_IFNAME.to_string(),
            })
            .await
            .map_err(|e| service_err(M, e))?;
        let value = match ep {
            Some(ep) => json!({
                "host_veth": ep.host_ifname,
                "contiv_network": ep.target.docker_name(),
            }),
            None => json!({}),
        };
        Ok(json!({ "Value": value }))
    }

    async fn join(&self, body: &[u8]) -> CallResult {
        const M: &str = "Join";
        let req: JoinRequest = parse(M, body)?;
        let ep = self
            .service
            .endpoint(Attachment {
                container_id: req.endpoint_id.clone(),
                ifname: DOCKER_IFNAME.to_string(),
            })
            .await
            .map_err(|e| service_err(M, e))?
            .ok_or_else(|| {
                format!(
                    "{M}: endpoint {} on network {} is unknown to netplugin (CreateEndpoint \
                     was not seen, or its state was lost)",
                    short(&req.endpoint_id),
                    short(&req.network_id)
                )
            })?;
        let gw = |v4: bool| {
            ep.ips
                .iter()
                .filter(|c| c.address.addr().is_ipv4() == v4)
                .find_map(|c| c.gateway)
                .map(|g| g.to_string())
                .unwrap_or_default()
        };
        let static_routes = ep
            .routes
            .iter()
            .filter(|r| r.dst.prefix_len() != 0)
            .map(|r| match r.gw {
                Some(gw) => StaticRoute {
                    destination: r.dst.to_string(),
                    route_type: 0,
                    next_hop: gw.to_string(),
                },
                None => StaticRoute {
                    destination: r.dst.to_string(),
                    route_type: 1,
                    next_hop: String::new(),
                },
            })
            .collect();
        to_value(&JoinResponse {
            interface_name: InterfaceName {
                src_name: ep.container_ifname.clone(),
                dst_prefix: DOCKER_IFNAME.to_string(),
            },
            gateway: gw(true),
            gateway_ipv6: gw(false),
            static_routes,
        })
    }

    fn acknowledge<T: DeserializeOwned>(method: &str, body: &[u8]) -> CallResult {
        parse::<T>(method, body)?;
        Ok(json!({}))
    }

    async fn request_pool(&self, body: &[u8]) -> CallResult {
        const M: &str = "RequestPool";
        let req: RequestPoolRequest = parse(M, body)?;
        let target = target_from_options(&req.options).map_err(|e| format!("{M}: {e}"))?;
        let subnet = match req.pool.as_str() {
            "" => None,
            p => Some(parse_net("pool", p).map_err(|e| format!("{M}: {e}"))?),
        };
        let sub_pool = match req.sub_pool.as_str() {
            "" => None,
            p => Some(parse_net("sub-pool", p).map_err(|e| format!("{M}: {e}"))?),
        };
        if target.is_none() && subnet.is_none() {
            return Err(format!(
                "{M}: no Contiv network given: pass --ipam-opt network=<name> \
                 [--ipam-opt tenant=<tenant>] [--ipam-opt group=<group>], or --subnet of an \
                 existing Contiv network"
            ));
        }
        let info = self
            .service
            .request_pool(PoolRequest {
                target,
                subnet,
                sub_pool,
                v6: req.v6,
            })
            .await
            .map_err(|e| service_err(M, e))?;
        to_value(&RequestPoolResponse {
            pool_id: pool_id(&info.target, info.subnet),
            pool: info.subnet.to_string(),
            data: BTreeMap::new(),
        })
    }

    async fn release_pool(&self, body: &[u8]) -> CallResult {
        const M: &str = "ReleasePool";
        let req: ReleasePoolRequest = parse(M, body)?;
        let (target, subnet) = parse_pool_id(&req.pool_id).map_err(|e| format!("{M}: {e}"))?;
        self.service
            .release_pool(target, subnet)
            .await
            .map_err(|e| service_err(M, e))?;
        Ok(json!({}))
    }

    async fn request_address(&self, body: &[u8]) -> CallResult {
        const M: &str = "RequestAddress";
        let req: RequestAddressRequest = parse(M, body)?;
        let (target, subnet) = parse_pool_id(&req.pool_id).map_err(|e| format!("{M}: {e}"))?;
        let address = match req.address.as_str() {
            "" => None,
            a => Some(parse_addr("address", a).map_err(|e| format!("{M}: {e}"))?),
        };
        let kind =
            if req.options.get("RequestAddressType").map(String::as_str) == Some(GATEWAY_REQUEST) {
                AddressKind::Gateway
            } else {
                AddressKind::Endpoint
            };
        let mac = match req.options.get(MAC_OPTION) {
            Some(m) if !m.is_empty() => {
                Some(m.parse::<MacAddr>().map_err(|e| format!("{M}: {e}"))?)
            }
            _ => None,
        };
        let got = self
            .service
            .request_address(AddressRequest {
                target,
                subnet,
                address,
                mac,
                kind,
            })
            .await
            .map_err(|e| service_err(M, e))?;
        to_value(&RequestAddressResponse {
            address: got.to_string(),
            data: BTreeMap::new(),
        })
    }

    async fn release_address(&self, body: &[u8]) -> CallResult {
        const M: &str = "ReleaseAddress";
        let req: ReleaseAddressRequest = parse(M, body)?;
        let (target, subnet) = parse_pool_id(&req.pool_id).map_err(|e| format!("{M}: {e}"))?;
        let address = parse_addr("address", &req.address).map_err(|e| format!("{M}: {e}"))?;
        self.service
            .release_address(target, subnet, address)
            .await
            .map_err(|e| service_err(M, e))?;
        Ok(json!({}))
    }
}

type D<S> = State<Arc<Driver<S>>>;

/// Declares one axum handler per protocol method, each taking the raw body.
macro_rules! handlers {
    ($($name:ident => |$d:ident, $b:ident| $e:expr;)*) => {
        $(
            #[allow(unused_variables)] // not every method reads the driver or the body
            async fn $name<S: EndpointService>(State($d): D<S>, $b: Bytes) -> Response {
                respond($e)
            }
        )*
    };
}

handlers! {
    activate => |d, b| Ok(json!({ "Implements": ["NetworkDriver", "IpamDriver"] }));
    net_caps => |d, b| Ok(json!({ "Scope": d.config.scope, "ConnectivityScope": d.config.scope }));
    create_network => |d, b| d.create_network(&b).await;
    delete_network => |d, b| d.delete_network(&b).await;
    allocate_network => |d, b| parse::<AllocateNetworkRequest>("AllocateNetwork", &b).map(|_| json!({ "Options": {} }));
    free_network => |d, b| Driver::<S>::acknowledge::<NetworkRequest>("FreeNetwork", &b);
    create_endpoint => |d, b| d.create_endpoint(&b).await;
    delete_endpoint => |d, b| d.delete_endpoint(&b).await;
    endpoint_oper_info => |d, b| d.endpoint_oper_info(&b).await;
    join => |d, b| d.join(&b).await;
    leave => |d, b| Driver::<S>::acknowledge::<EndpointRequest>("Leave", &b);
    discover_new => |d, b| Driver::<S>::acknowledge::<DiscoveryNotification>("DiscoverNew", &b);
    discover_delete => |d, b| Driver::<S>::acknowledge::<DiscoveryNotification>("DiscoverDelete", &b);
    program_external => |d, b| Driver::<S>::acknowledge::<JoinRequest>("ProgramExternalConnectivity", &b);
    revoke_external => |d, b| Driver::<S>::acknowledge::<EndpointRequest>("RevokeExternalConnectivity", &b);
    ipam_caps => |d, b| Ok(json!({ "RequiresMACAddress": false, "RequiresRequestReplay": false }));
    address_spaces => |d, b| Ok(json!({
        "LocalDefaultAddressSpace": d.config.local_address_space,
        "GlobalDefaultAddressSpace": d.config.global_address_space,
    }));
    request_pool => |d, b| d.request_pool(&b).await;
    release_pool => |d, b| d.release_pool(&b).await;
    request_address => |d, b| d.request_address(&b).await;
    release_address => |d, b| d.release_address(&b).await;
}

async fn unknown_method(uri: Uri) -> Response {
    let mut r = respond(Err(format!("unknown plugin method {}", uri.path())));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// The plugin socket's router: the NetworkDriver and IpamDriver methods over `service`.
pub fn router<S: EndpointService>(service: Arc<S>, config: DockerConfig) -> Router {
    let driver = Arc::new(Driver { service, config });
    Router::new()
        .route("/Plugin.Activate", post(activate::<S>))
        .route("/NetworkDriver.GetCapabilities", post(net_caps::<S>))
        .route("/NetworkDriver.CreateNetwork", post(create_network::<S>))
        .route("/NetworkDriver.DeleteNetwork", post(delete_network::<S>))
        .route(
            "/NetworkDriver.AllocateNetwork",
            post(allocate_network::<S>),
        )
        .route("/NetworkDriver.FreeNetwork", post(free_network::<S>))
        .route("/NetworkDriver.CreateEndpoint", post(create_endpoint::<S>))
        .route("/NetworkDriver.DeleteEndpoint", post(delete_endpoint::<S>))
        .route(
            "/NetworkDriver.EndpointOperInfo",
            post(endpoint_oper_info::<S>),
        )
        .route("/NetworkDriver.Join", post(join::<S>))
        .route("/NetworkDriver.Leave", post(leave::<S>))
        .route("/NetworkDriver.DiscoverNew", post(discover_new::<S>))
        .route("/NetworkDriver.DiscoverDelete", post(discover_delete::<S>))
        .route(
            "/NetworkDriver.ProgramExternalConnectivity",
            post(program_external::<S>),
        )
        .route(
            "/NetworkDriver.RevokeExternalConnectivity",
            post(revoke_external::<S>),
        )
        .route("/IpamDriver.GetCapabilities", post(ipam_caps::<S>))
        .route(
            "/IpamDriver.GetDefaultAddressSpaces",
            post(address_spaces::<S>),
        )
        .route("/IpamDriver.RequestPool", post(request_pool::<S>))
        .route("/IpamDriver.ReleasePool", post(release_pool::<S>))
        .route("/IpamDriver.RequestAddress", post(request_address::<S>))
        .route("/IpamDriver.ReleaseAddress", post(release_address::<S>))
        .fallback(unknown_method)
        .with_state(driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids_round_trip() {
        let t = NetworkTarget::new("blue", "contiv-net", Some("web")).unwrap();
        let id = pool_id(&t, "20.1.1.0/24".parse().unwrap());
        assert_eq!(id, "web.contiv-net/blue|20.1.1.0/24");
        assert_eq!(
            parse_pool_id(&id).unwrap(),
            (t, "20.1.1.0/24".parse().unwrap())
        );
        let d = NetworkTarget::new("default", "n", None).unwrap();
        assert_eq!(pool_id(&d, "fd00::/64".parse().unwrap()), "n|fd00::/64");
        for bad in ["", "n", "n|", "n|x", "|20.1.1.0/24", "a b|20.1.1.0/24"] {
            assert!(parse_pool_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_name_targets() {
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(target_from_options(&o(&[])).unwrap(), None);
        assert_eq!(
            target_from_options(&o(&[("network", "n"), ("tenant", "t"), ("group", "g")])).unwrap(),
            Some(NetworkTarget::new("t", "n", Some("g")).unwrap())
        );
        assert!(target_from_options(&o(&[("group", "g")])).is_err());
        assert!(target_from_options(&o(&[("network", "bad name")])).is_err());
    }
}
