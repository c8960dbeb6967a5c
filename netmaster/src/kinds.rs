//! Contiv's objects as [`Kind`]s: their cross-object rules, allocations and Oper views.
//! Every rule is a pure function of the [`World`]; allocations (tags, EPG ids, addresses)
//! are state written in the same plan as the object.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use axum::Router;
use contiv_model::validate::{parse_ip_range, parse_range, parse_subnet};
use contiv_model::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{ApiError, AppState, ErrorKind, kind_routes};
use crate::intent::{Engine, Plan, World};
use crate::ipam::{AddrRange, IpamError, Pool, PoolState, Scope, SubnetSpec};
use crate::tags::RangeSet;

/// Every kind's routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = kind_routes::<Global>(r);
    let r = kind_routes::<Tenant>(r);
    let r = kind_routes::<Network>(r);
    let r = kind_routes::<EndpointGroup>(r);
    let r = kind_routes::<Policy>(r);
    let r = kind_routes::<Rule>(r);
    let r = kind_routes::<Bgp>(r);
    let r = kind_routes::<ServiceLb>(r);
    let r = kind_routes::<Netprofile>(r);
    let r = kind_routes::<AppProfile>(r);
    kind_routes::<Endpoint>(r)
}

/// Creates the `global` object and the `default` tenant when they do not exist.
pub async fn ensure_defaults(engine: &Engine) -> Result<(), ApiError> {
    let w = engine.world();
    if w.get::<Global>("global")?.is_some() && w.get::<Tenant>("default")?.is_some() {
        return Ok(());
    }
    engine
        .commit(|w| {
            let mut plan = Plan::default();
            if w.get::<Global>("global")?.is_none() {
                let mut g = Global {
                    fwd_mode: "bridge".into(),
                    ..Global::default()
                };
                g.set_key();
                plan.put(&g)?;
            }
            if w.get::<Tenant>("default")?.is_none() {
                let mut t = Tenant {
                    tenant_name: "default".into(),
                    ..Default::default()
                };
                t.set_key();
                plan.put(&t)?;
            }
            Ok(plan)
        })
        .await
        .map(|_| ())
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid_field(e.field, e.message)
}

fn ipam_err(e: IpamError) -> ApiError {
    match e {
        IpamError::CorruptState { .. } | IpamError::UnsupportedStateVersion { .. } => {
            ApiError::internal(e.to_string())
        }
        IpamError::Exhausted { .. }
        | IpamError::AlreadyAllocated { .. }
        | IpamError::EpgPoolOverlap { .. }
        | IpamError::EpgPoolAllocated { .. }
        | IpamError::EpgPoolInUse { .. } => ApiError::conflict(e.to_string()),
        _ => ApiError::validation(e.to_string()),
    }
}

fn missing(what: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("{what}/{key}"))
}

/// Refuses a change to an object that Contiv does not let change; the same object again
/// is fine (create-or-update is idempotent).
fn immutable<T: PartialEq + Object>(old: Option<&T>, new: &T) -> Result<(), ApiError> {
    match old {
        Some(o) if o != new => Err(ApiError::conflict(format!(
            "{} {} cannot be changed after it is created; delete and create it again",
            T::NAME,
            new.key()
        ))
        .with_object(format!("{}/{}", T::PLURAL, new.key()))),
        _ => Ok(()),
    }
}

/// A named field getter, for immutability checks.
type Field<T> = (&'static str, fn(&T) -> String);

fn one_field_changed<T>(old: &T, new: &T, fields: &[Field<T>]) -> Result<(), ApiError> {
    for (name, get) in fields {
        if get(old) != get(new) {
            return Err(
                ApiError::conflict(format!("{name} cannot be changed after creation"))
                    .with_field(*name),
            );
        }
    }
    Ok(())
}

fn global(w: &World) -> Result<Global, ApiError> {
    w.get::<Global>("global")?
        .ok_or_else(|| ApiError::unavailable("the global object is not created yet; retry"))
}

fn tenant_exists(w: &World, t: &str) -> Result<(), ApiError> {
    w.get::<Tenant>(t)?
        .map(|_| ())
        .ok_or_else(|| missing("tenants", t).with_field("tenantName"))
}

macro_rules! kind {
    ($ty:ty) => {
        impl crate::intent::Kind for $ty {
            const PLURAL: &'static str = <$ty as Object>::PLURAL;
            fn key(&self) -> String {
                Object::key(self)
            }
            fn validate(&self) -> Result<(), ApiError> {
                Validate::validate(self).map_err(invalid)
            }
            fn plan_put(
                world: &World,
                old: Option<&Self>,
                mut new: Self,
                plan: &mut Plan,
            ) -> Result<(), ApiError> {
                new.set_key();
                put(world, old, new, plan)
            }
            fn plan_delete(world: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
                delete(world, old, plan)
            }
            fn oper(world: &World, obj: &Self) -> Result<serde_json::Value, ApiError> {
                oper(world, obj)
            }
        }
    };
}

/// Per-kind rules, dispatched by type.
trait Rules: Sized {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError>;
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError>;
    fn oper(_w: &World, _o: &Self) -> Result<serde_json::Value, ApiError> {
        Ok(json!({}))
    }
}
fn put<T: Rules>(w: &World, old: Option<&T>, new: T, plan: &mut Plan) -> Result<(), ApiError> {
    T::put(w, old, new, plan)
}
fn delete<T: Rules>(w: &World, old: &T, plan: &mut Plan) -> Result<(), ApiError> {
    T::delete(w, old, plan)
}
fn oper<T: Rules>(w: &World, o: &T) -> Result<serde_json::Value, ApiError> {
    T::oper(w, o)
}

kind!(Global);
kind!(Tenant);
kind!(Network);
kind!(EndpointGroup);
kind!(Policy);
kind!(Rule);
kind!(Bgp);
kind!(ServiceLb);
kind!(Netprofile);
kind!(AppProfile);
kind!(Endpoint);

// ---- tags (VLAN ids and VNIs) -------------------------------------------------------

/// VLAN ids and VXLAN VNIs in use, stored as state `tags`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Tags {
    vlan: RangeSet,
    vxlan: RangeSet,
}

const TAGS: &str = "tags";

fn tags(w: &World) -> Result<Tags, ApiError> {
    Ok(w.state::<Tags>(TAGS)?.unwrap_or_default())
}

impl Tags {
    fn set(&mut self, encap: &str) -> &mut RangeSet {
        if encap == "vlan" {
            &mut self.vlan
        } else {
            &mut self.vxlan
        }
    }
}

fn tag_range(g: &Global, encap: &str) -> Result<(u32, u32), ApiError> {
    let (field, s, max) = if encap == "vlan" {
        ("vlans", &g.vlans, 4094)
    } else {
        ("vxlans", &g.vxlans, 16_777_215)
    };
    parse_range(field, s, 1, max).map_err(invalid)
}

// ---- global -------------------------------------------------------------------------

impl Rules for Global {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        let nets = w.list::<Network>()?;
        if let Some(old) = old {
            if old.fwd_mode != new.fwd_mode && !old.fwd_mode.is_empty() && !nets.is_empty() {
                let vlans = nets.iter().filter(|n| n.encap == "vlan").count();
                return Err(ApiError::conflict(format!(
                    "Unable to update forwarding mode due to existing {vlans} vlans and {} vxlans: delete the networks first",
                    nets.len() - vlans
                ))
                .with_field("fwdMode"));
            }
            if old.fwd_mode == "routing"
                && new.fwd_mode != "routing"
                && w.count(<Bgp as Object>::PLURAL) > 0
            {
                return Err(ApiError::conflict(
                    "cannot leave the routing mode while Bgp configs exist: please delete existing Bgp configs",
                )
                .with_field("fwdMode"));
            }
            if old.pvt_subnet != new.pvt_subnet && !nets.is_empty() {
                return Err(
                    ApiError::conflict("pvtSubnet cannot change while networks exist")
                        .with_field("pvtSubnet"),
                );
            }
            let t = tags(w)?;
            for (encap, set, field) in [("vlan", &t.vlan, "vlans"), ("vxlan", &t.vxlan, "vxlans")] {
                let (lo, hi) = tag_range(&new, encap)?;
                if let Some(r) = set
                    .ranges()
                    .find(|r| u32::from(r.first) < lo || u32::from(r.last) > hi)
                {
                    let (a, b) = (u32::from(r.first), u32::from(r.last));
                    return Err(ApiError::conflict(format!(
                        "the new {field} range {lo}-{hi} leaves out tags in use ({a}-{b})"
                    ))
                    .with_field(field));
                }
            }
        }
        plan.put(&new)
    }
    fn delete(_: &World, _: &Self, _: &mut Plan) -> Result<(), ApiError> {
        Err(ApiError::conflict(
            "the global object cannot be deleted; change it with netctl global set",
        ))
    }
    fn oper(w: &World, g: &Self) -> Result<serde_json::Value, ApiError> {
        let t = tags(w)?;
        let tenant = w.get::<Tenant>("default")?;
        Ok(json!({
            "numNetworks": w.count(<Network as Object>::PLURAL),
            "vlansInUse": t.vlan.ranges().map(|r| tag_str(&r)).collect::<Vec<_>>().join(", "),
            "vxlansInUse": t.vxlan.ranges().map(|r| tag_str(&r)).collect::<Vec<_>>().join(", "),
            "defaultNetwork": tenant.map(|t| t.default_network).unwrap_or_default(),
            "clusterMode": "docker",
            "fwdMode": g.fwd_mode,
        }))
    }
}

fn tag_str(r: &crate::tags::Range) -> String {
    let (a, b) = (u32::from(r.first), u32::from(r.last));
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

// ---- tenant -------------------------------------------------------------------------

impl Rules for Tenant {
    fn put(_: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        immutable(old, &new)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        let t = &old.tenant_name;
        let counts = [
            (
                "networks",
                w.list::<Network>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
            (
                "endpoint groups",
                w.list::<EndpointGroup>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
            (
                "policies",
                w.list::<Policy>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
            (
                "netprofiles",
                w.list::<Netprofile>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
            (
                "app profiles",
                w.list::<AppProfile>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
            (
                "services",
                w.list::<ServiceLb>()?
                    .iter()
                    .filter(|n| &n.tenant_name == t)
                    .count(),
            ),
        ];
        let left: Vec<String> = counts
            .iter()
            .filter(|c| c.1 > 0)
            .map(|(n, c)| format!("{c} {n}"))
            .collect();
        if !left.is_empty() {
            return Err(ApiError::conflict(format!(
                "tenant {t} still has {}; delete them first",
                left.join(", ")
            ))
            .with_object(format!("tenants/{t}")));
        }
        plan.delete::<Tenant>(&old.key());
        Ok(())
    }
    fn oper(w: &World, o: &Self) -> Result<serde_json::Value, ApiError> {
        let t = &o.tenant_name;
        let nets = w
            .list::<Network>()?
            .into_iter()
            .filter(|n| &n.tenant_name == t)
            .count();
        let groups = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|n| &n.tenant_name == t)
            .count();
        let policies = w
            .list::<Policy>()?
            .into_iter()
            .filter(|n| &n.tenant_name == t)
            .count();
        let eps = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|n| &n.tenant_name == t)
            .count();
        let svcs = w
            .list::<ServiceLb>()?
            .into_iter()
            .filter(|n| &n.tenant_name == t)
            .count();
        Ok(json!({
            "totalNetworks": nets, "totalEPGs": groups, "totalPolicies": policies,
            "totalEndpoints": eps, "totalServicelbs": svcs,
        }))
    }
}

// ---- network ------------------------------------------------------------------------

fn ipam_key(network_key: &str) -> String {
    format!("ipam/{network_key}")
}

pub(crate) fn pool_of(w: &World, network_key: &str) -> Result<Pool, ApiError> {
    let st = w
        .state::<PoolState>(&ipam_key(network_key))?
        .ok_or_else(|| ApiError::internal(format!("network {network_key} has no IPAM state")))?;
    Pool::from_state(&st).map_err(ipam_err)
}

/// The IPv6 pool of a network, when it has an IPv6 subnet.
pub(crate) fn pool6_of(w: &World, network_key: &str) -> Result<Option<Pool>, ApiError> {
    match w.state::<PoolState>(&ipam6_key(network_key))? {
        Some(st) => Pool::from_state(&st).map(Some).map_err(ipam_err),
        None => Ok(None),
    }
}

pub(crate) fn ipam6_key(network_key: &str) -> String {
    format!("ipam6/{network_key}")
}

/// Releases an address from whichever scope holds it; an address not held is ignored.
pub(crate) fn release_any(pool: &mut Pool, addr: std::net::IpAddr) {
    let group = pool.epg_of(addr).map(str::to_string);
    let scope = match &group {
        Some(g) => Scope::Epg(g),
        None => Scope::Network,
    };
    let _ = pool.release(scope, addr);
}

/// The scope a member of `group` allocates from: its group's pool when it has one.
pub(crate) fn scope_for<'a>(pool: &Pool, group: &'a str) -> Scope<'a> {
    if !group.is_empty() && pool.epg_pool(group).is_some() {
        Scope::Epg(group)
    } else {
        Scope::Network
    }
}

impl Rules for Network {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        if let Some(o) = old {
            let mut same = new.clone();
            // A pktTag of 0 asked for an automatic tag; the stored one is what was chosen.
            if same.pkt_tag == 0 {
                same.pkt_tag = o.pkt_tag;
            }
            if &same == o {
                return Ok(());
            }
            return Err(ApiError::conflict(format!(
                "Cant change network parameters after its created: delete network {} and create it again",
                new.key()
            ))
            .with_object(format!("networks/{}", new.key())));
        }
        tenant_exists(w, &new.tenant_name)?;
        let g = global(w)?;
        if g.fwd_mode.is_empty() {
            return Err(ApiError::conflict(
                "set the forwarding mode first: netctl global set --fwd-mode routing (or bridge)",
            ));
        }
        if w.list::<EndpointGroup>()?
            .iter()
            .any(|e| e.tenant_name == new.tenant_name && e.group_name == new.network_name)
        {
            return Err(ApiError::conflict(format!(
                "an endpoint group named {} exists in tenant {}; networks and groups share names",
                new.network_name, new.tenant_name
            ))
            .with_field("networkName"));
        }
        let spec = parse_subnet("subnet", &new.subnet).map_err(invalid)?;
        for other in w
            .list::<Network>()?
            .iter()
            .filter(|n| n.tenant_name == new.tenant_name)
        {
            if let Ok(o) = parse_subnet("subnet", &other.subnet)
                && contiv_model::validate::subnets_overlap(&o.net, &spec.net)
            {
                return Err(ApiError::conflict(format!(
                    "subnet {} overlaps network {}'s subnet {}",
                    new.subnet, other.network_name, other.subnet
                ))
                .with_field("subnet"));
            }
            if !new.ipv6_subnet.is_empty()
                && let (Ok(a), Ok(b)) = (
                    new.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
                    other.ipv6_subnet.parse::<ipnet::Ipv6Net>(),
                )
                && (a.contains(&b.network()) || b.contains(&a.network()))
            {
                return Err(ApiError::conflict(format!(
                    "ipv6Subnet {} overlaps network {}'s {}",
                    new.ipv6_subnet, other.network_name, other.ipv6_subnet
                ))
                .with_field("ipv6Subnet"));
            }
        }
        let mut net = new;
        let mut t = tags(w)?;
        let (lo, hi) = tag_range(&g, &net.encap)?;
        let set = t.set(&net.encap);
        let tag = if net.pkt_tag == 0 {
            set.first_free(lo, hi, |_| None).ok_or_else(|| {
                ApiError::conflict(format!("no free {} tag in {lo}-{hi}", net.encap))
                    .with_field("pktTag")
            })?
        } else {
            let tag = net.pkt_tag as u32;
            if tag < lo || tag > hi {
                return Err(ApiError::invalid_field(
                    "pktTag",
                    format!(
                        "{tag} is outside the {} range {lo}-{hi} (netctl global set changes it)",
                        net.encap
                    ),
                ));
            }
            if set.contains(tag) {
                let user = w
                    .list::<Network>()?
                    .into_iter()
                    .find(|n| n.encap == net.encap && n.pkt_tag == i64::from(tag))
                    .map(|n| n.key())
                    .unwrap_or_default();
                return Err(ApiError::conflict(format!(
                    "{} tag {tag} is used by network {user}",
                    net.encap
                ))
                .with_field("pktTag"));
            }
            tag
        };
        set.insert(tag);
        net.pkt_tag = i64::from(tag);
        let gw = if net.gateway.is_empty() {
            None
        } else {
            net.gateway.parse::<std::net::IpAddr>().ok()
        };
        let spec4: SubnetSpec = net
            .subnet
            .parse()
            .map_err(|e: IpamError| ApiError::invalid_field("subnet", e.to_string()))?;
        let pool = Pool::new(net.key(), spec4, gw)
            .map_err(|e| ApiError::invalid_field("gateway", e.to_string()))?;
        plan.put_state(TAGS, &t)?;
        plan.put_state(&ipam_key(&net.key()), &pool.to_state())?;
        if !net.ipv6_subnet.is_empty() {
            let spec6: SubnetSpec = net
                .ipv6_subnet
                .parse()
                .map_err(|e: IpamError| ApiError::invalid_field("ipv6Subnet", e.to_string()))?;
            let gw6 = if net.ipv6_gateway.is_empty() {
                None
            } else {
                net.ipv6_gateway.parse::<std::net::IpAddr>().ok()
            };
            let pool6 = Pool::new(net.key(), spec6, gw6)
                .map_err(|e| ApiError::invalid_field("ipv6Gateway", e.to_string()))?;
            plan.put_state(&ipam6_key(&net.key()), &pool6.to_state())?;
        }
        let _ = spec;
        plan.put(&net)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        let k = old.key();
        let groups: Vec<String> = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.network_name == old.network_name)
            .map(|e| e.group_name)
            .collect();
        if !groups.is_empty() {
            return Err(ApiError::conflict(format!(
                "network {k} still has endpoint groups {}; delete them first",
                groups.join(", ")
            )));
        }
        let svcs = w
            .list::<ServiceLb>()?
            .into_iter()
            .filter(|s| s.tenant_name == old.tenant_name && s.network_name == old.network_name)
            .count();
        if svcs > 0 {
            return Err(ApiError::conflict(format!(
                "network {k} still has {svcs} services; delete them first"
            )));
        }
        let eps = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.network_name == old.network_name)
            .count();
        if eps > 0 {
            return Err(ApiError::conflict(format!(
                "network {k} still has {eps} active endpoints; remove the containers first (or collect a dead host's endpoints)"
            )));
        }
        let mut t = tags(w)?;
        let set = t.set(&old.encap);
        let tag = old.pkt_tag as u32;
        if set.contains(tag) {
            set.remove(tag);
        }
        plan.put_state(TAGS, &t)?;
        plan.delete_state(&ipam_key(&k));
        if pool6_of(w, &k)?.is_some() {
            plan.delete_state(&ipam6_key(&k));
        }
        plan.delete::<Network>(&k);
        Ok(())
    }
    fn oper(w: &World, n: &Self) -> Result<serde_json::Value, ApiError> {
        let pool = pool_of(w, &n.key())?;
        let eps: Vec<String> = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == n.tenant_name && e.network_name == n.network_name)
            .map(|e| e.endpoint_id)
            .collect();
        Ok(json!({
            "pktTag": n.pkt_tag,
            "externalPktTag": n.pkt_tag,
            "numEndpoints": eps.len(),
            "endpoints": eps,
            "allocatedAddressesCount": pool.counts_all().used as u64,
            "allocatedIPAddresses": pool.allocated_addresses_all(),
            "availableIPAddresses": pool.available_addresses(Scope::Network).map_err(ipam_err)?,
            "utilisation": pool.counts_all().utilisation(),
            "networkTag": n.cfgd_tag,
        }))
    }
}

// ---- endpoint groups ----------------------------------------------------------------

const EPG_IDS: &str = "epg-ids";

/// EPG ids by group key, allocated persistently (1..65535).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EpgIds(BTreeMap<String, u32>);

impl Rules for EndpointGroup {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        let net_key = format!("{}:{}", new.tenant_name, new.network_name);
        if let Some(o) = old {
            one_field_changed(
                o,
                &new,
                &[
                    ("networkName", |g| g.network_name.clone()),
                    ("ipPool", |g| g.ip_pool.clone()),
                ],
            )?;
        } else {
            tenant_exists(w, &new.tenant_name)?;
            if w.get::<Network>(&net_key)?.is_none() {
                return Err(missing("networks", &net_key).with_field("networkName"));
            }
            if w.get::<Network>(&format!("{}:{}", new.tenant_name, new.group_name))?
                .is_some()
            {
                return Err(ApiError::conflict(format!(
                    "a network named {} exists in tenant {}; networks and groups share names",
                    new.group_name, new.tenant_name
                ))
                .with_field("groupName"));
            }
        }
        for p in &new.policies {
            if w.get::<Policy>(&format!("{}:{p}", new.tenant_name))?
                .is_none()
            {
                return Err(
                    missing("policys", &format!("{}:{p}", new.tenant_name)).with_field("policies")
                );
            }
        }
        if !new.net_profile.is_empty()
            && w.get::<Netprofile>(&format!("{}:{}", new.tenant_name, new.net_profile))?
                .is_none()
        {
            return Err(missing(
                "netprofiles",
                &format!("{}:{}", new.tenant_name, new.net_profile),
            )
            .with_field("netProfile"));
        }
        if old.is_none() {
            let mut ids = w.state::<EpgIds>(EPG_IDS)?.unwrap_or_default();
            let used: std::collections::BTreeSet<u32> = ids.0.values().copied().collect();
            let id = (1..=65535u32)
                .find(|i| !used.contains(i))
                .ok_or_else(|| ApiError::conflict("all 65535 endpoint group ids are in use"))?;
            ids.0.insert(new.key(), id);
            plan.put_state(EPG_IDS, &ids)?;
            if !new.ip_pool.is_empty() {
                let (a, b) = parse_ip_range("ipPool", &new.ip_pool).map_err(invalid)?;
                let mut pool = pool_of(w, &net_key)?;
                let range = AddrRange::new(a.into(), b.into())
                    .map_err(|e| ApiError::invalid_field("ipPool", e.to_string()))?;
                pool.add_epg_pool(&new.group_name, range)
                    .map_err(|e| ipam_err(e).with_field("ipPool"))?;
                plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
            }
        }
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        let k = old.key();
        let eps = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.service_name == old.group_name)
            .count();
        if eps > 0 {
            return Err(ApiError::conflict(format!(
                "endpoint group {k} still has {eps} active endpoints"
            )));
        }
        if let Some(a) = w.list::<AppProfile>()?.into_iter().find(|a| {
            a.tenant_name == old.tenant_name && a.endpoint_groups.contains(&old.group_name)
        }) {
            return Err(ApiError::conflict(format!(
                "endpoint group {k} is part of app profile {}",
                a.app_profile_name
            )));
        }
        let mut ids = w.state::<EpgIds>(EPG_IDS)?.unwrap_or_default();
        ids.0.remove(&k);
        plan.put_state(EPG_IDS, &ids)?;
        let net_key = format!("{}:{}", old.tenant_name, old.network_name);
        if !old.ip_pool.is_empty()
            && let Ok(mut pool) = pool_of(w, &net_key)
        {
            pool.remove_epg_pool(&old.group_name).map_err(ipam_err)?;
            plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
        }
        plan.delete::<EndpointGroup>(&k);
        Ok(())
    }
    fn oper(w: &World, g: &Self) -> Result<serde_json::Value, ApiError> {
        let ids = w.state::<EpgIds>(EPG_IDS)?.unwrap_or_default();
        let net = w.get::<Network>(&format!("{}:{}", g.tenant_name, g.network_name))?;
        let eps: Vec<String> = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == g.tenant_name && e.service_name == g.group_name)
            .map(|e| e.endpoint_id)
            .collect();
        Ok(json!({
            "groupTag": ids.0.get(&g.key()).copied().unwrap_or(0),
            "pktTag": net.as_ref().map(|n| n.pkt_tag).unwrap_or(0),
            "externalPktTag": net.as_ref().map(|n| n.pkt_tag).unwrap_or(0),
            "numEndpoints": eps.len(),
            "endpoints": eps,
        }))
    }
}

// ---- policies and rules -------------------------------------------------------------

impl Rules for Policy {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        immutable(old, &new)?;
        tenant_exists(w, &new.tenant_name)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        let users: Vec<String> = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|g| g.tenant_name == old.tenant_name && g.policies.contains(&old.policy_name))
            .map(|g| g.group_name)
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "policy {} is attached to endpoint groups {}; detach it first",
                old.key(),
                users.join(", ")
            )));
        }
        for r in w
            .list::<Rule>()?
            .into_iter()
            .filter(|r| r.tenant_name == old.tenant_name && r.policy_name == old.policy_name)
        {
            plan.delete::<Rule>(&Object::key(&r));
        }
        plan.delete::<Policy>(&old.key());
        Ok(())
    }
    fn oper(w: &World, p: &Self) -> Result<serde_json::Value, ApiError> {
        let groups: Vec<String> = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|g| g.tenant_name == p.tenant_name && g.policies.contains(&p.policy_name))
            .map(|g| g.group_name)
            .collect();
        let eps: Vec<String> = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == p.tenant_name && groups.contains(&e.service_name))
            .map(|e| e.endpoint_id)
            .collect();
        Ok(json!({ "numEndpoints": eps.len(), "endpoints": eps, "policyViolations": 0 }))
    }
}

impl Rules for Rule {
    fn put(w: &World, old: Option<&Self>, mut new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        if new.priority == 0 {
            new.priority = 1;
        }
        immutable(old, &new)?;
        let t = &new.tenant_name;
        if w.get::<Policy>(&format!("{t}:{}", new.policy_name))?
            .is_none()
        {
            return Err(
                missing("policys", &format!("{t}:{}", new.policy_name)).with_field("policyName")
            );
        }
        for (field, g) in [
            ("fromEndpointGroup", &new.from_endpoint_group),
            ("toEndpointGroup", &new.to_endpoint_group),
        ] {
            if !g.is_empty() && w.get::<EndpointGroup>(&format!("{t}:{g}"))?.is_none() {
                return Err(missing("endpointGroups", &format!("{t}:{g}")).with_field(field));
            }
        }
        for (field, n) in [
            ("fromNetwork", &new.from_network),
            ("toNetwork", &new.to_network),
        ] {
            if !n.is_empty() && w.get::<Network>(&format!("{t}:{n}"))?.is_none() {
                return Err(missing("networks", &format!("{t}:{n}")).with_field(field));
            }
        }
        plan.put(&new)
    }
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        plan.delete::<Rule>(&Object::key(old));
        Ok(())
    }
}

// ---- Bgp ----------------------------------------------------------------------------

impl Rules for Bgp {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        let g = global(w)?;
        if g.network_infra_type.starts_with("aci") {
            return Err(ApiError::conflict(
                "Bgp configs are not supported in the ACI fabric mode",
            ));
        }
        if g.fwd_mode != "routing" {
            return Err(ApiError::conflict(
                "Bgp configs need the routing forwarding mode: netctl global set --fwd-mode routing",
            ));
        }
        plan.put(&new)
    }
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        plan.delete::<Bgp>(&old.hostname);
        Ok(())
    }
    fn oper(w: &World, b: &Self) -> Result<serde_json::Value, ApiError> {
        let report = w.oper(&format!("hosts/{}", b.hostname));
        let neighbors = report
            .and_then(|r| r.get("neighbors"))
            .and_then(|n| n.as_array())
            .cloned()
            .unwrap_or_default();
        let routes: Vec<serde_json::Value> = report
            .and_then(|r| r.get("routes"))
            .and_then(|n| n.as_array())
            .cloned()
            .unwrap_or_default();
        let first = neighbors.first();
        let status = first
            .and_then(|n| n.get("state"))
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        let prefixes: Vec<serde_json::Value> = routes
            .iter()
            .filter_map(|r| {
                r.get("prefix")
                    .cloned()
                    .or_else(|| r.as_str().map(|s| json!(s)))
            })
            .collect();
        Ok(json!({
            "neighborStatus": status,
            "adminStatus": if report.is_some() { "up" } else { "" },
            "numRoutes": prefixes.len(),
            "routes": prefixes,
            "neighbors": neighbors,
            "lastSeen": report.and_then(|r| r.get("lastSeen")).cloned().unwrap_or(json!(0)),
        }))
    }
}

// ---- services, profiles -------------------------------------------------------------

fn vip_key(svc_key: &str) -> String {
    format!("vip/{svc_key}")
}

impl Rules for ServiceLb {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        let net_key = format!("{}:{}", new.tenant_name, new.network_name);
        if let Some(o) = old {
            one_field_changed(
                o,
                &new,
                &[
                    ("networkName", |s| s.network_name.clone()),
                    ("ipAddress", |s| s.ip_address.clone()),
                ],
            )?;
            return plan.put(&new);
        }
        tenant_exists(w, &new.tenant_name)?;
        if w.get::<Network>(&net_key)?.is_none() {
            return Err(missing("networks", &net_key).with_field("networkName"));
        }
        let mut pool = pool_of(w, &net_key)?;
        let vip = if new.ip_address.is_empty() {
            pool.allocate(Scope::Network).map_err(ipam_err)?
        } else {
            let a: Ipv4Addr = new
                .ip_address
                .parse()
                .map_err(|_| ApiError::invalid_field("ipAddress", "not an IPv4 address"))?;
            pool.allocate_preferred(Scope::Network, a.into())
                .map_err(|e| ipam_err(e).with_field("ipAddress"))?;
            a.into()
        };
        plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
        plan.put_state(&vip_key(&new.key()), &vip.to_string())?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        let net_key = format!("{}:{}", old.tenant_name, old.network_name);
        if let (Some(vip), Ok(mut pool)) = (
            w.state::<String>(&vip_key(&old.key()))?,
            pool_of(w, &net_key),
        ) && let Ok(a) = vip.parse::<Ipv4Addr>()
        {
            release_any(&mut pool, std::net::IpAddr::V4(a));
            plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
        }
        plan.delete_state(&vip_key(&old.key()));
        plan.delete::<ServiceLb>(&old.key());
        Ok(())
    }
    fn oper(w: &World, s: &Self) -> Result<serde_json::Value, ApiError> {
        let vip = w.state::<String>(&vip_key(&s.key()))?.unwrap_or_default();
        Ok(json!({ "serviceVip": vip, "numProviders": 0, "providers": [] }))
    }
}

impl Rules for Netprofile {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        tenant_exists(w, &new.tenant_name)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        if let Some(g) = w
            .list::<EndpointGroup>()?
            .into_iter()
            .find(|g| g.tenant_name == old.tenant_name && g.net_profile == old.profile_name)
        {
            return Err(ApiError::conflict(format!(
                "netprofile {} is used by endpoint group {}",
                old.key(),
                g.group_name
            )));
        }
        plan.delete::<Netprofile>(&old.key());
        Ok(())
    }
}

impl Rules for AppProfile {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), ApiError> {
        tenant_exists(w, &new.tenant_name)?;
        for g in &new.endpoint_groups {
            if w.get::<EndpointGroup>(&format!("{}:{g}", new.tenant_name))?
                .is_none()
            {
                return Err(
                    missing("endpointGroups", &format!("{}:{g}", new.tenant_name))
                        .with_field("endpointGroups"),
                );
            }
        }
        plan.put(&new)
    }
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), ApiError> {
        plan.delete::<AppProfile>(&old.key());
        Ok(())
    }
}

impl Rules for Endpoint {
    fn put(_: &World, _: Option<&Self>, _: Self, _: &mut Plan) -> Result<(), ApiError> {
        Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            "endpoints are created by netplugin when containers start",
        ))
    }
    fn delete(_: &World, _: &Self, _: &mut Plan) -> Result<(), ApiError> {
        Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            "endpoints go away when their containers do",
        ))
    }
    fn oper(w: &World, e: &Self) -> Result<serde_json::Value, ApiError> {
        let _ = w;
        Ok(serde_json::to_value(e).unwrap_or_default())
    }
}

/// Sets the object-count and IPAM gauges from the world.
pub fn update_metrics(w: &World, m: &crate::metrics::Metrics) {
    for plural in [
        <Global as Object>::PLURAL,
        <Tenant as Object>::PLURAL,
        <Network as Object>::PLURAL,
        <EndpointGroup as Object>::PLURAL,
        <Policy as Object>::PLURAL,
        <Rule as Object>::PLURAL,
        <Bgp as Object>::PLURAL,
        <ServiceLb as Object>::PLURAL,
        <Netprofile as Object>::PLURAL,
        <AppProfile as Object>::PLURAL,
        <Endpoint as Object>::PLURAL,
    ] {
        m.objects
            .get_or_create(&vec![("kind", plural.to_string())])
            .set(w.count(plural) as i64);
    }
    m.ipam_used.clear();
    m.ipam_utilisation.clear();
    for n in w.list::<Network>().unwrap_or_default() {
        if let Ok(pool) = pool_of(w, &n.key()) {
            let labels = vec![("network", n.key())];
            m.ipam_used
                .get_or_create(&labels)
                .set(pool.counts_all().used as i64);
            m.ipam_utilisation
                .get_or_create(&labels)
                .set(pool.counts_all().utilisation());
        }
    }
}
