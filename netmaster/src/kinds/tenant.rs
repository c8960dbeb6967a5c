//! `tenant`: immutable, refused while it holds objects.

use super::*;

impl Rules for Tenant {
    fn put(_: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        immutable(old, &new)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        let t = &old.tenant_name;
        if t == DEFAULT_TENANT {
            // netmaster creates it at every start: deleting it would not survive a restart.
            return Err(IntentError::conflict(
                "the default tenant always exists and cannot be deleted",
            )
            .with_object(format!("tenants/{t}")));
        }
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
            return Err(IntentError::conflict(format!(
                "tenant {t} still has {}; delete them first",
                left.join(", ")
            ))
            .with_object(format!("tenants/{t}")));
        }
        plan.delete::<Tenant>(&old.key());
        Ok(())
    }
    fn oper(w: &World, o: &Self) -> Result<serde_json::Value, IntentError> {
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
