//! Contiv's objects as [`Kind`](crate::intent::Kind)s: their cross-object rules,
//! allocations and Oper views, one file per object kind. Every rule is a pure function
//! of the [`World`]; allocations (tags, EPG ids, addresses) are state written in the same
//! plan as the object. Refusals are [`IntentError`]s; the API maps them to HTTP.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_model::validate::{parse_ip_range, parse_range, parse_subnet};
use contiv_model::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::intent::pools::{ipam_key, ipam6_key, pool_of, pool6_of, release_any};
use crate::intent::{Engine, IntentError, Plan, World};
use crate::ipam::{AddrRange, IpamError, Pool, Scope, SubnetSpec};
use crate::tags::RangeSet;

mod bgp;
mod endpoint;
pub mod explain;
mod global;
mod group;
mod network;
mod policy;
mod profile;
mod service;
mod tenant;

/// The tenant that always exists.
pub const DEFAULT_TENANT: &str = "default";

/// Creates the `global` object and the `default` tenant when they do not exist.
pub async fn ensure_defaults(engine: &Engine) -> Result<(), IntentError> {
    let w = engine.world();
    if w.get::<Global>("global")?.is_some() && w.get::<Tenant>(DEFAULT_TENANT)?.is_some() {
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
            if w.get::<Tenant>(DEFAULT_TENANT)?.is_none() {
                let mut t = Tenant {
                    tenant_name: DEFAULT_TENANT.into(),
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

fn missing(what: &str, key: &str) -> IntentError {
    IntentError::not_found(format!("{what}/{key}"))
}

/// Refuses a change to an object that Contiv does not let change; the same object again
/// is fine (create-or-update is idempotent).
fn immutable<T: PartialEq + Object>(old: Option<&T>, new: &T) -> Result<(), IntentError> {
    match old {
        Some(o) if o != new => Err(IntentError::conflict(format!(
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

fn one_field_changed<T>(old: &T, new: &T, fields: &[Field<T>]) -> Result<(), IntentError> {
    for (name, get) in fields {
        if get(old) != get(new) {
            return Err(
                IntentError::conflict(format!("{name} cannot be changed after creation"))
                    .with_field(*name),
            );
        }
    }
    Ok(())
}

fn global(w: &World) -> Result<Global, IntentError> {
    w.get::<Global>("global")?
        .ok_or_else(|| IntentError::unavailable("the global object is not created yet; retry"))
}

fn tenant_exists(w: &World, t: &str) -> Result<(), IntentError> {
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
            fn validate(&self) -> Result<(), IntentError> {
                Ok(Validate::validate(self)?)
            }
            fn plan_put(
                world: &World,
                old: Option<&Self>,
                mut new: Self,
                plan: &mut Plan,
            ) -> Result<(), IntentError> {
                new.set_key();
                put(world, old, new, plan)
            }
            fn plan_delete(world: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
                delete(world, old, plan)
            }
            fn oper(world: &World, obj: &Self) -> Result<serde_json::Value, IntentError> {
                oper(world, obj)
            }
        }
    };
}

/// Per-kind rules, dispatched by type.
trait Rules: Sized {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError>;
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError>;
    fn oper(_w: &World, _o: &Self) -> Result<serde_json::Value, IntentError> {
        Ok(json!({}))
    }
}
fn put<T: Rules>(w: &World, old: Option<&T>, new: T, plan: &mut Plan) -> Result<(), IntentError> {
    T::put(w, old, new, plan)
}
fn delete<T: Rules>(w: &World, old: &T, plan: &mut Plan) -> Result<(), IntentError> {
    T::delete(w, old, plan)
}
fn oper<T: Rules>(w: &World, o: &T) -> Result<serde_json::Value, IntentError> {
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

fn tags(w: &World) -> Result<Tags, IntentError> {
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

fn tag_range(g: &Global, encap: &str) -> Result<(u32, u32), IntentError> {
    let (field, s, max) = if encap == "vlan" {
        ("vlans", &g.vlans, 4094)
    } else {
        ("vxlans", &g.vxlans, 16_777_215)
    };
    parse_range(field, s, 1, max).map_err(IntentError::from)
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
