//! `netprofile` and `appProfile`.

use super::*;

impl Rules for Netprofile {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        tenant_exists(w, &new.tenant_name)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        if let Some(g) = w
            .list::<EndpointGroup>()?
            .into_iter()
            .find(|g| g.tenant_name == old.tenant_name && g.net_profile == old.profile_name)
        {
            return Err(IntentError::conflict(format!(
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
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
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
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        plan.delete::<AppProfile>(&old.key());
        Ok(())
    }
}
