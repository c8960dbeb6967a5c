//! `endpointGroup`: EPG ids, group pools inside the network's, policies.

use super::*;

const EPG_IDS: &str = "epg-ids";

/// EPG ids by group key, allocated persistently (1..65535).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EpgIds(BTreeMap<String, u32>);

impl Rules for EndpointGroup {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
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
                return Err(IntentError::conflict(format!(
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
                .ok_or_else(|| IntentError::conflict("all 65535 endpoint group ids are in use"))?;
            ids.0.insert(new.key(), id);
            plan.put_state(EPG_IDS, &ids)?;
            if !new.ip_pool.is_empty() {
                let (a, b) = parse_ip_range("ipPool", &new.ip_pool).map_err(IntentError::from)?;
                let mut pool = pool_of(w, &net_key)?;
                let range = AddrRange::new(a.into(), b.into())
                    .map_err(|e| IntentError::invalid_field("ipPool", e.to_string()))?;
                pool.add_epg_pool(&new.group_name, range)
                    .map_err(|e| IntentError::from(e).with_field("ipPool"))?;
                plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
            }
        }
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        let k = old.key();
        policy::refuse_if_rules_name(
            w,
            policy::RulePeer::Group,
            &old.tenant_name,
            &old.group_name,
        )?;
        let eps = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == old.tenant_name && e.service_name == old.group_name)
            .count();
        if eps > 0 {
            return Err(IntentError::conflict(format!(
                "endpoint group {k} still has {eps} active endpoints"
            )));
        }
        if let Some(a) = w.list::<AppProfile>()?.into_iter().find(|a| {
            a.tenant_name == old.tenant_name && a.endpoint_groups.contains(&old.group_name)
        }) {
            return Err(IntentError::conflict(format!(
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
            pool.remove_epg_pool(&old.group_name)
                .map_err(IntentError::from)?;
            plan.put_state(&ipam_key(&net_key), &pool.to_state())?;
        }
        plan.delete::<EndpointGroup>(&k);
        Ok(())
    }
    fn oper(w: &World, g: &Self) -> Result<serde_json::Value, IntentError> {
        let ids = w.state::<EpgIds>(EPG_IDS)?.unwrap_or_default();
        let net = w.get::<Network>(&format!("{}:{}", g.tenant_name, g.network_name))?;
        let eps: Vec<String> = w
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.tenant_name == g.tenant_name && e.service_name == g.group_name)
            .map(|e| e.endpoint_id)
            .collect();
        let revision = policy::group_policy_revision(w, g)?;
        let status = policy::hosts_policy_status(
            w,
            &g.tenant_name,
            &[(g.group_name.clone(), revision)].into(),
        );
        Ok(json!({
            "policyRevision": revision,
            "policyStatus": status,
            "groupTag": ids.0.get(&g.key()).copied().unwrap_or(0),
            "pktTag": net.as_ref().map(|n| n.pkt_tag).unwrap_or(0),
            "externalPktTag": net.as_ref().map(|n| n.pkt_tag).unwrap_or(0),
            "numEndpoints": eps.len(),
            "endpoints": eps,
        }))
    }
}
