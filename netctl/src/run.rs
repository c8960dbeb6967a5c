//! Runs one parsed command against netmaster and renders what it prints.

use std::collections::BTreeMap;

use contiv_model::feed::HostReport;
use contiv_model::*;
use serde::Serialize;
use serde_json::json;

use crate::args::*;
use crate::client::{Client, Error};
use crate::table::render;

/// What a command prints on success.
pub type Out = String;

fn pretty<T: Serialize>(v: &T) -> Result<Out, Error> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::Io(e.to_string()))
}

fn obj_path<T: Object>(key: &str) -> String {
    format!("/api/v1/{}/{key}/", T::PLURAL)
}

fn inspect_path<T: Object>(key: &str) -> String {
    format!("/api/v1/inspect/{}/{key}/", T::PLURAL)
}

fn list<T: Object>(c: &Client) -> Result<Vec<T>, Error> {
    c.get(&format!("/api/v1/{}/", T::PLURAL))
}

fn create<T: Object>(c: &Client, mut obj: T) -> Result<Out, Error> {
    obj.set_key();
    c.post(&obj_path::<T>(&obj.key()), &obj)?;
    Ok(String::new())
}

fn tenant_filter<'a>(f: &'a ListFlags) -> impl Fn(&str) -> bool + 'a {
    move |t: &str| f.all || t == f.tenant
}

fn quiet_or<T: Serialize>(
    f_json: bool,
    f_quiet: bool,
    items: &[T],
    names: Vec<String>,
    table: impl FnOnce() -> Out,
) -> Result<Out, Error> {
    if f_json {
        pretty(&items)
    } else if f_quiet {
        Ok(names.into_iter().map(|n| n + "\n").collect())
    } else {
        Ok(table())
    }
}

/// Runs `cmd`.
pub fn run(cmd: Cmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        Cmd::Version => {
            let server = c.get_value("/version").map(|v| v["version"].as_str().unwrap_or("?").to_string());
            let server = match server {
                Ok(v) => v,
                Err(e) => format!("unreachable ({e})"),
            };
            Ok(format!("Client Version: {}\nServer Version: {server}\n", env!("CARGO_PKG_VERSION")))
        }
        Cmd::Completion { .. } => Ok(String::new()),
        Cmd::ExternalContracts { .. } | Cmd::AciGw { .. } => Err(Error::Usage(
            "ACI fabric mode is not supported by contiv-rs: external contracts and the ACI gateway have no effect".into(),
        )),
        Cmd::Global { cmd } => global(cmd, c),
        Cmd::Tenant { cmd } => tenant(cmd, c),
        Cmd::Net { cmd } => net(cmd, c),
        Cmd::Group { cmd } => group(cmd, c),
        Cmd::Policy { cmd } => policy(cmd, c),
        Cmd::Bgp { cmd } => bgp(cmd, c),
        Cmd::Endpoint { cmd } => endpoint(cmd, c),
        Cmd::Host {
            cmd: HostCmd::Credential { cmd },
        } => credential(cmd, c),
        Cmd::Service { cmd } => service(cmd, c),
        Cmd::Netprofile { cmd } => netprofile(cmd, c),
        Cmd::AppProfile { cmd } => app_profile(cmd, c),
    }
}

fn global(cmd: GlobalCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        GlobalCmd::Info { json } => {
            let g: Global = c.get(&obj_path::<Global>("global"))?;
            if json {
                return pretty(&g);
            }
            Ok(format!(
                "Fabric mode: {}\nForward mode: {}\nARP mode: {}\nVlan Range: {}\nVxlan range: {}\nPrivate subnet: {}\n",
                g.network_infra_type, g.fwd_mode, g.arp_mode, g.vlans, g.vxlans, g.pvt_subnet
            ))
        }
        GlobalCmd::Inspect => pretty(&c.get_value(&inspect_path::<Global>("global"))?),
        GlobalCmd::Set(s) => {
            let mut g: Global = c.get(&obj_path::<Global>("global"))?;
            let mut changed = false;
            for (dst, src) in [
                (&mut g.network_infra_type, s.fabric_mode),
                (&mut g.vlans, s.vlan_range),
                (&mut g.vxlans, s.vxlan_range),
                (&mut g.fwd_mode, s.fwd_mode),
                (&mut g.arp_mode, s.arp_mode),
                (&mut g.pvt_subnet, s.private_subnet),
            ] {
                if let Some(v) = src {
                    *dst = v;
                    changed = true;
                }
            }
            if !changed {
                return Err(Error::Usage(
                    "nothing to set: give at least one of --fabric-mode, --vlan-range, --vxlan-range, --fwd-mode, --arp-mode, --private-subnet".into(),
                ));
            }
            g.validate()
                .map_err(|e| Error::Usage(format!("invalid {e}")))?;
            c.post(&obj_path::<Global>("global"), &g)?;
            Ok(String::new())
        }
    }
}

fn tenant(cmd: TenantCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        TenantCmd::Ls(o) => {
            let ts = list::<Tenant>(c)?;
            let names = ts.iter().map(|t| t.tenant_name.clone()).collect();
            quiet_or(o.json, o.quiet, &ts, names, || {
                render(
                    &["Name"],
                    &ts.iter()
                        .map(|t| vec![t.tenant_name.clone()])
                        .collect::<Vec<_>>(),
                )
            })
        }
        TenantCmd::Create { name } => {
            let t = Tenant {
                tenant_name: name,
                ..Default::default()
            };
            t.validate()
                .map_err(|e| Error::Usage(format!("invalid {e}")))?;
            create(c, t)
        }
        TenantCmd::Rm { name } => c.delete(&obj_path::<Tenant>(&name)).map(|_| String::new()),
        TenantCmd::Inspect { name } => pretty(&c.get_value(&inspect_path::<Tenant>(&name))?),
    }
}

fn check<T: Validate>(o: &T) -> Result<(), Error> {
    o.validate()
        .map_err(|e| Error::Usage(format!("invalid {e}")))
}

fn net(cmd: NetCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        NetCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let ns: Vec<Network> = list::<Network>(c)?
                .into_iter()
                .filter(|n| keep(&n.tenant_name))
                .collect();
            let names = ns.iter().map(|n| n.network_name.clone()).collect();
            quiet_or(f.json, f.quiet, &ns, names, || {
                let rows: Vec<Vec<String>> = ns
                    .iter()
                    .map(|n| {
                        vec![
                            n.tenant_name.clone(),
                            n.network_name.clone(),
                            n.nw_type.clone(),
                            n.encap.clone(),
                            n.pkt_tag.to_string(),
                            n.subnet.clone(),
                            n.gateway.clone(),
                            n.ipv6_subnet.clone(),
                            n.ipv6_gateway.clone(),
                            n.cfgd_tag.clone(),
                        ]
                    })
                    .collect();
                render(
                    &[
                        "Tenant",
                        "Network",
                        "Nw Type",
                        "Encap type",
                        "Packet tag",
                        "Subnet",
                        "Gateway",
                        "IPv6Subnet",
                        "IPv6Gateway",
                        "Cfgd Tag",
                    ],
                    &rows,
                )
            })
        }
        NetCmd::Create(a) => {
            if !a.gateway.is_empty() && a.gateway.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::Usage(format!(
                    "invalid gateway {:?}: not an IP address",
                    a.gateway
                )));
            }
            let n = Network {
                network_name: a.name,
                tenant_name: a.t.tenant,
                nw_type: a.nw_type,
                encap: a.encap,
                pkt_tag: a.pkt_tag,
                subnet: a.subnet,
                gateway: a.gateway,
                ipv6_subnet: a.subnetv6,
                ipv6_gateway: a.gatewayv6,
                cfgd_tag: a.nw_tag,
                ..Default::default()
            };
            check(&n)?;
            create(c, n)
        }
        NetCmd::Rm { t, name } => c
            .delete(&obj_path::<Network>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        NetCmd::Inspect { t, name } => {
            pretty(&c.get_value(&inspect_path::<Network>(&format!("{}:{name}", t.tenant)))?)
        }
    }
}

fn group(cmd: GroupCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        GroupCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let gs: Vec<EndpointGroup> = list::<EndpointGroup>(c)?
                .into_iter()
                .filter(|g| keep(&g.tenant_name))
                .collect();
            let names = gs.iter().map(|g| g.group_name.clone()).collect();
            quiet_or(f.json, f.quiet, &gs, names, || {
                let rows: Vec<Vec<String>> = gs
                    .iter()
                    .map(|g| {
                        vec![
                            g.tenant_name.clone(),
                            g.group_name.clone(),
                            g.network_name.clone(),
                            g.ip_pool.clone(),
                            g.cfgd_tag.clone(),
                            g.policies.join(","),
                            g.net_profile.clone(),
                        ]
                    })
                    .collect();
                render(
                    &[
                        "Tenant",
                        "Group",
                        "Network",
                        "IP Pool",
                        "CfgdTag",
                        "Policies",
                        "Network profile",
                    ],
                    &rows,
                )
            })
        }
        GroupCmd::Create(a) => {
            if !a.external_contract.is_empty() {
                return Err(Error::Usage(
                    "external contracts are an ACI feature, not supported by contiv-rs".into(),
                ));
            }
            let g = EndpointGroup {
                group_name: a.group,
                tenant_name: a.t.tenant,
                network_name: a.network,
                ip_pool: a.ip_pool,
                policies: a.policy,
                net_profile: a.networkprofile,
                cfgd_tag: a.epg_tag,
                ..Default::default()
            };
            check(&g)?;
            create(c, g)
        }
        GroupCmd::Rm { t, name } => c
            .delete(&obj_path::<EndpointGroup>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        GroupCmd::Inspect { t, name } => pretty(&c.get_value(&inspect_path::<EndpointGroup>(
            &format!("{}:{name}", t.tenant),
        ))?),
    }
}

fn policy(cmd: PolicyCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        PolicyCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let ps: Vec<Policy> = list::<Policy>(c)?
                .into_iter()
                .filter(|p| keep(&p.tenant_name))
                .collect();
            let names = ps.iter().map(|p| p.policy_name.clone()).collect();
            quiet_or(f.json, f.quiet, &ps, names, || {
                render(
                    &["Tenant", "Policy"],
                    &ps.iter()
                        .map(|p| vec![p.tenant_name.clone(), p.policy_name.clone()])
                        .collect::<Vec<_>>(),
                )
            })
        }
        PolicyCmd::Create { t, name } => {
            let p = Policy {
                policy_name: name,
                tenant_name: t.tenant,
                ..Default::default()
            };
            check(&p)?;
            create(c, p)
        }
        PolicyCmd::Rm { t, name } => c
            .delete(&obj_path::<Policy>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        PolicyCmd::Inspect { t, name } => {
            pretty(&c.get_value(&inspect_path::<Policy>(&format!("{}:{name}", t.tenant)))?)
        }
        PolicyCmd::RuleAdd(a) => {
            let a = *a;
            let r = Rule {
                rule_id: a.rule_id,
                policy_name: a.policy,
                tenant_name: a.t.tenant,
                direction: a.direction,
                priority: a.priority,
                from_endpoint_group: a.from_group,
                to_endpoint_group: a.to_group,
                from_network: a.from_network,
                to_network: a.to_network,
                from_ip_address: a.from_ip_address,
                to_ip_address: a.to_ip_address,
                protocol: a.protocol,
                port: a.port,
                action: a.action,
                ..Default::default()
            };
            check(&r)?;
            create(c, r)
        }
        PolicyCmd::Explain {
            from,
            to,
            service,
            json,
        } => {
            let x: PolicyExplain = c.get(&format!(
                "/api/v1/policy-explain/?from={}&to={}&service={}",
                query_value(&from),
                query_value(&to),
                query_value(&service)
            ))?;
            if json {
                pretty(&x)
            } else {
                Ok(render_explain(&x))
            }
        }
        PolicyCmd::RuleRm { t, policy, rule_id } => c
            .delete(&obj_path::<Rule>(&format!(
                "{}:{policy}:{rule_id}",
                t.tenant
            )))
            .map(|_| String::new()),
        PolicyCmd::RuleLs { t, out, policy } => {
            let mut rules: Vec<Rule> = list::<Rule>(c)?
                .into_iter()
                .filter(|r| r.tenant_name == t.tenant && r.policy_name == policy)
                .collect();
            rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.rule_id.cmp(&b.rule_id)));
            let names = rules.iter().map(|r| r.rule_id.clone()).collect();
            quiet_or(out.json, out.quiet, &rules, names, || {
                let mut s = String::new();
                for (title, dir) in [("Incoming Rules:", "in"), ("Outgoing Rules:", "out")] {
                    s.push_str(title);
                    s.push('\n');
                    let rows: Vec<Vec<String>> = rules
                        .iter()
                        .filter(|r| r.direction == dir)
                        .map(|r| {
                            let (g, n, ip) = if dir == "in" {
                                (&r.from_endpoint_group, &r.from_network, &r.from_ip_address)
                            } else {
                                (&r.to_endpoint_group, &r.to_network, &r.to_ip_address)
                            };
                            vec![
                                r.rule_id.clone(),
                                r.priority.to_string(),
                                g.clone(),
                                n.clone(),
                                ip.clone(),
                                r.protocol.clone(),
                                if r.port == 0 {
                                    String::new()
                                } else {
                                    r.port.to_string()
                                },
                                r.action.clone(),
                            ]
                        })
                        .collect();
                    let who = if dir == "in" { "From" } else { "To" };
                    s.push_str(&render(
                        &[
                            "Rule",
                            "Priority",
                            &format!("{who} EndpointGroup"),
                            &format!("{who} Network"),
                            &format!("{who} IpAddress"),
                            "Protocol",
                            "Port",
                            "Action",
                        ],
                        &rows,
                    ));
                }
                s
            })
        }
    }
}

fn bgp(cmd: BgpCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        BgpCmd::Ls(o) => {
            let bs = list::<Bgp>(c)?;
            let names = bs.iter().map(|b| b.hostname.clone()).collect();
            quiet_or(o.json, o.quiet, &bs, names, || {
                let rows: Vec<Vec<String>> = bs
                    .iter()
                    .map(|b| {
                        let ns = b.effective_neighbors();
                        vec![
                            b.hostname.clone(),
                            b.routerip.clone(),
                            b.asn.clone(),
                            ns.iter()
                                .map(|n| n.address.clone())
                                .collect::<Vec<_>>()
                                .join(","),
                            ns.iter()
                                .map(|n| n.asn.clone())
                                .collect::<Vec<_>>()
                                .join(","),
                        ]
                    })
                    .collect();
                render(
                    &["HostName", "RouterIP", "AS", "Neighbor", "NeighborAS"],
                    &rows,
                )
            })
        }
        BgpCmd::Create(a) => {
            let a = *a;
            let mut neighbors = Vec::new();
            for p in &a.peers {
                let (addr, asn) = p.rsplit_once(':').ok_or_else(|| {
                    Error::Usage(format!(
                        "--peer {p:?}: expected ADDRESS:AS, e.g. 10.1.2.1:65002"
                    ))
                })?;
                neighbors.push(BgpNeighbor {
                    address: addr.into(),
                    asn: asn.into(),
                    bfd: a.bfd,
                    ..Default::default()
                });
            }
            let b = Bgp {
                hostname: a.hostname,
                routerip: a.router_ip,
                asn: a.asn,
                neighbor_as: a.neighbor_as,
                neighbor: a.neighbor,
                neighbors,
                bfd: a.bfd,
                bfd_interval: a.bfd_interval,
                bfd_multiplier: a.bfd_multiplier,
                bfd_auth: a.bfd_auth_ref.map(|secret_ref| contiv_model::BgpBfdAuth {
                    secret_ref,
                    auth_type: match a.bfd_auth_type.as_str() {
                        "keyed-sha1" => contiv_model::BfdAuthType::KeyedSha1,
                        "keyed-md5" => contiv_model::BfdAuthType::KeyedMd5,
                        "meticulous-keyed-md5" => contiv_model::BfdAuthType::MeticulousKeyedMd5,
                        _ => contiv_model::BfdAuthType::MeticulousKeyedSha1,
                    },
                    key_id: a.bfd_auth_key_id,
                }),
                graceful_restart: a.graceful_restart,
                communities: a.communities,
                advertise: match a.advertise.as_str() {
                    "host-block" => contiv_model::AdvertiseMode::HostBlock,
                    "network-subnet" => contiv_model::AdvertiseMode::NetworkSubnet,
                    _ => contiv_model::AdvertiseMode::PerEndpoint,
                },
                host_block: a.host_block,
                accept_default: a.accept_default,
                max_prefix: a.max_prefix,
                ttl_security: a.no_ttl_security.then_some(false),
                local_addresses: a.local_addresses,
                ..Default::default()
            };
            check(&b)?;
            create(c, b)
        }
        BgpCmd::Rm { hostname } => c.delete(&obj_path::<Bgp>(&hostname)).map(|_| String::new()),
        BgpCmd::Inspect { hostname } => pretty(&c.get_value(&inspect_path::<Bgp>(&hostname))?),
        BgpCmd::Routes(o) => {
            let hosts = c.get_value("/api/v1/feed/hosts/")?;
            if o.json {
                return pretty(&hosts);
            }
            // Each host's report, typed; one that does not read as a report shows nothing.
            let reports: BTreeMap<String, HostReport> = hosts
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(host, r)| {
                    serde_json::from_value(r.clone())
                        .ok()
                        .map(|r| (host.clone(), r))
                })
                .collect();
            let mut sessions = Vec::new();
            let mut routes = Vec::new();
            for (host, r) in &reports {
                for n in &r.neighbors {
                    let count = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
                    sessions.push(vec![
                        host.clone(),
                        n.address.clone(),
                        n.state.clone().unwrap_or_default(),
                        count(n.prefixes_received),
                        count(n.prefixes_advertised),
                    ]);
                }
                for rt in &r.routes {
                    routes.push(vec![host.clone(), rt.prefix.clone(), rt.nexthops.join(",")]);
                }
            }
            if o.quiet {
                return Ok(routes
                    .iter()
                    .map(|r| format!("{} {}\n", r[0], r[1]))
                    .collect());
            }
            Ok(render(
                &["Host", "Neighbor", "State", "Received", "Advertised"],
                &sessions,
            ) + "\n"
                + &render(&["Host", "Prefix", "Next hops"], &routes))
        }
    }
}

fn endpoint(cmd: EndpointCmd, c: &Client) -> Result<Out, Error> {
    if let EndpointCmd::Collect { host } = &cmd {
        let v = c.post(&format!("/api/v1/plugin/hosts/{host}/collect"), &json!({}))?;
        return Ok(format!(
            "collected {} endpoints of host {host}\n",
            v["collected"].as_u64().unwrap_or(0)
        ));
    }
    let eps = list::<Endpoint>(c)?;
    match cmd {
        EndpointCmd::Ls(o) => {
            let names = eps.iter().map(|e| e.endpoint_id.clone()).collect();
            quiet_or(o.json, o.quiet, &eps, names, || {
                let rows: Vec<Vec<String>> = eps
                    .iter()
                    .map(|e| {
                        vec![
                            e.endpoint_id.clone(),
                            e.container_name.clone(),
                            e.network.clone(),
                            e.service_name.clone(),
                            e.ip_address.join(","),
                            e.homing_host.clone(),
                        ]
                    })
                    .collect();
                render(
                    &["Endpoint", "Container", "Network", "Group", "IP", "Host"],
                    &rows,
                )
            })
        }
        EndpointCmd::Collect { .. } => Ok(String::new()),
        EndpointCmd::Inspect { id } => {
            let found: Vec<&Endpoint> = eps
                .iter()
                .filter(|e| {
                    e.endpoint_id.starts_with(&id)
                        || e.container_id.starts_with(&id)
                        || e.container_name == id
                })
                .collect();
            match found.as_slice() {
                [e] => pretty(&json!({ "Config": {}, "Oper": e })),
                [] => Err(Error::Api(format!("no endpoint matches {id:?}"))),
                many => Err(Error::Usage(format!(
                    "{id:?} matches {} endpoints ({}); give more of the id",
                    many.len(),
                    many.iter()
                        .map(|e| e.endpoint_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
    }
}

/// Host credentials: `create` prints the token alone on stdout (for `> file`).
fn credential(cmd: CredentialCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        CredentialCmd::Create { host } => {
            let v = c.post(&format!("/api/v1/credentials/hosts/{host}/"), &json!({}))?;
            let cred: contiv_model::credential::HostCredential = serde_json::from_value(v)
                .map_err(|e| Error::Api(format!("unexpected answer to the credential: {e}")))?;
            Ok(format!("{}\n", cred.token.expose()))
        }
        CredentialCmd::Rm { host } => {
            c.delete(&format!("/api/v1/credentials/hosts/{host}/"))?;
            Ok(String::new())
        }
        CredentialCmd::Ls { json } => {
            let hosts: Vec<String> = c.get("/api/v1/credentials/hosts/")?;
            if json {
                pretty(&hosts)
            } else {
                Ok(hosts.into_iter().map(|h| h + "\n").collect())
            }
        }
    }
}

fn service(cmd: ServiceCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        ServiceCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let ss: Vec<ServiceLb> = list::<ServiceLb>(c)?
                .into_iter()
                .filter(|s| keep(&s.tenant_name))
                .collect();
            let names = ss.iter().map(|s| s.service_name.clone()).collect();
            quiet_or(f.json, f.quiet, &ss, names, || {
                let rows: Vec<Vec<String>> = ss
                    .iter()
                    .map(|s| {
                        vec![
                            s.service_name.clone(),
                            s.tenant_name.clone(),
                            s.network_name.clone(),
                            s.selectors.join(","),
                            s.ports.join(","),
                        ]
                    })
                    .collect();
                render(
                    &["ServiceName", "Tenant", "Network", "Selectors", "Ports"],
                    &rows,
                )
            })
        }
        ServiceCmd::Create(a) => {
            let s = ServiceLb {
                service_name: a.name,
                tenant_name: a.t.tenant,
                network_name: a.network,
                ip_address: a.preferred_ip,
                selectors: a.selectors,
                ports: a.ports,
                ..Default::default()
            };
            check(&s)?;
            create(c, s)
        }
        ServiceCmd::Rm { t, name } => c
            .delete(&obj_path::<ServiceLb>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        ServiceCmd::Inspect { t, name } => {
            pretty(&c.get_value(&inspect_path::<ServiceLb>(&format!("{}:{name}", t.tenant)))?)
        }
    }
}

fn netprofile(cmd: NetprofileCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        NetprofileCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let ps: Vec<Netprofile> = list::<Netprofile>(c)?
                .into_iter()
                .filter(|p| keep(&p.tenant_name))
                .collect();
            let names = ps.iter().map(|p| p.profile_name.clone()).collect();
            quiet_or(f.json, f.quiet, &ps, names, || {
                let rows: Vec<Vec<String>> = ps
                    .iter()
                    .map(|p| {
                        vec![
                            p.profile_name.clone(),
                            p.tenant_name.clone(),
                            p.bandwidth.clone(),
                            p.dscp.to_string(),
                            p.burst.to_string(),
                        ]
                    })
                    .collect();
                render(
                    &["Name", "Tenant", "Bandwidth", "DSCP", "Burst size"],
                    &rows,
                )
            })
        }
        NetprofileCmd::Create(a) => {
            let p = Netprofile {
                profile_name: a.name,
                tenant_name: a.t.tenant,
                bandwidth: a.bandwidth,
                dscp: a.dscp,
                burst: a.burst,
                ..Default::default()
            };
            check(&p)?;
            create(c, p)
        }
        NetprofileCmd::Rm { t, name } => c
            .delete(&obj_path::<Netprofile>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        NetprofileCmd::Inspect { t, name } => {
            pretty(&c.get_value(&inspect_path::<Netprofile>(&format!("{}:{name}", t.tenant)))?)
        }
    }
}

fn app_profile(cmd: AppProfileCmd, c: &Client) -> Result<Out, Error> {
    match cmd {
        AppProfileCmd::Ls(f) => {
            let keep = tenant_filter(&f);
            let ps: Vec<AppProfile> = list::<AppProfile>(c)?
                .into_iter()
                .filter(|p| keep(&p.tenant_name))
                .collect();
            let names = ps.iter().map(|p| p.app_profile_name.clone()).collect();
            quiet_or(f.json, f.quiet, &ps, names, || {
                let rows: Vec<Vec<String>> = ps
                    .iter()
                    .map(|p| {
                        vec![
                            p.tenant_name.clone(),
                            p.app_profile_name.clone(),
                            p.endpoint_groups.join(","),
                        ]
                    })
                    .collect();
                render(&["Tenant", "AppProfile", "Groups"], &rows)
            })
        }
        AppProfileCmd::Create(a) | AppProfileCmd::Update(a) => {
            let p = AppProfile {
                app_profile_name: a.name,
                tenant_name: a.t.tenant,
                endpoint_groups: a.groups,
                ..Default::default()
            };
            check(&p)?;
            create(c, p)
        }
        AppProfileCmd::Rm { t, name } => c
            .delete(&obj_path::<AppProfile>(&format!("{}:{name}", t.tenant)))
            .map(|_| String::new()),
        AppProfileCmd::GroupLs { t, name } => {
            let p: AppProfile = c.get(&obj_path::<AppProfile>(&format!("{}:{name}", t.tenant)))?;
            Ok(p.endpoint_groups.iter().map(|g| format!("{g}\n")).collect())
        }
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One end of an explanation: `c1 (10.1.1.3, default/- on host h1)`.
fn explain_end(e: &ExplainEnd) -> String {
    let addr = if e.query == e.address {
        String::new()
    } else {
        format!("{}, ", e.address)
    };
    match &e.tenant {
        None => format!("{} ({addr}not an endpoint)", e.query),
        Some(t) => {
            let group = if e.group.is_empty() { "-" } else { &e.group };
            let host = if e.host.is_empty() {
                String::new()
            } else {
                format!(" on host {}", e.host)
            };
            format!("{} ({addr}{t}/{group}{host})", e.query)
        }
    }
}

/// A rule in a few words: `in tcp/80 from group db priority 10 allow`.
fn rule_words(r: &Rule) -> String {
    let mut w = vec![r.direction.clone()];
    w.push(match (r.protocol.as_str(), r.port) {
        ("", _) => "any protocol".to_string(),
        (p, 0) => p.to_string(),
        (p, port) => format!("{p}/{port}"),
    });
    let (dir, g, n, ip) = if r.direction == "in" {
        (
            "from",
            &r.from_endpoint_group,
            &r.from_network,
            &r.from_ip_address,
        )
    } else {
        ("to", &r.to_endpoint_group, &r.to_network, &r.to_ip_address)
    };
    if !g.is_empty() {
        w.push(format!("{dir} group {g}"));
    } else if !n.is_empty() {
        w.push(format!("{dir} network {n}"));
    } else if !ip.is_empty() {
        w.push(format!("{dir} {ip}"));
    }
    w.push(format!("priority {}", r.priority.max(1)));
    w.push(r.action.clone());
    w.join(" ")
}

fn action_word(a: policy::Action) -> &'static str {
    match a {
        policy::Action::Allow => "allow",
        policy::Action::Deny => "deny",
    }
}

fn verdict_words(v: &policy::Verdict, rule: Option<&Rule>, end: &ExplainEnd) -> String {
    let why = match v.reason.as_str() {
        "rule" => {
            let key = v.rule.as_deref().unwrap_or("?");
            match rule {
                Some(r) => format!("rule {key} ({})", rule_words(r)),
                None => format!("rule {key}"),
            }
        }
        "default" => "no rule matched (allowed by default)".to_string(),
        "tenant-isolation" => {
            "no rule matched and the source is another tenant's (tenant isolation)".to_string()
        }
        "no-policy" if end.tenant.is_none() => "no policy (not an endpoint)".to_string(),
        "no-policy" => "no policy".to_string(),
        other => other.to_string(),
    };
    format!("{} — {why}", action_word(v.action))
}

/// `deny  tcp/8080 from c1 (...) to web1 (...)`, then the verdict at each end.
fn render_explain(x: &PolicyExplain) -> String {
    format!(
        "{:<5} {} from {} to {}\n  egress  (at {}): {}\n  ingress (at {}): {}\n  \
         (rules decide new connections; connections already established keep running)\n",
        action_word(x.decision.action),
        x.service,
        explain_end(&x.from),
        explain_end(&x.to),
        x.from.query,
        verdict_words(&x.decision.egress, x.egress_rule.as_ref(), &x.from),
        x.to.query,
        verdict_words(&x.decision.ingress, x.ingress_rule.as_ref(), &x.to),
    )
}
