//! `serviceLB`: the VIP from the network's pool.

use super::*;

fn vip_key(svc_key: &str) -> String {
    format!("vip/{svc_key}")
}

impl Rules for ServiceLb {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
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
            pool.allocate(Scope::Network).map_err(IntentError::from)?
        } else {
            let a: Ipv4Addr = new
                .ip_address
                .parse()
                .map_err(|_| IntentError::invalid_field("ipAddress", "not an IPv4 address"))?;
            pool.allocate_preferred(Scope::Network, a.into())
                .map_err(|e| IntentError::from(e).with_field("ipAddress"))?;
            a.into()
        };
        plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
        plan.put_state(&vip_key(&new.key()), &vip.to_string())?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
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
    fn oper(w: &World, s: &Self) -> Result<serde_json::Value, IntentError> {
        let vip = w.state::<String>(&vip_key(&s.key()))?.unwrap_or_default();
        Ok(json!({ "serviceVip": vip, "numProviders": 0, "providers": [] }))
    }
}
