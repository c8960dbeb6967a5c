//! `Bgp`: only in routing mode; the Oper view from the host's report.

use super::*;

impl Rules for Bgp {
    fn put(w: &World, _old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        let g = global(w)?;
        if g.network_infra_type.starts_with("aci") {
            return Err(IntentError::conflict(
                "Bgp configs are not supported in the ACI fabric mode",
            ));
        }
        if g.fwd_mode != "routing" {
            return Err(IntentError::conflict(
                "Bgp configs need the routing forwarding mode: netctl global set --fwd-mode routing",
            ));
        }
        plan.put(&new)
    }
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        plan.delete::<Bgp>(&old.hostname);
        Ok(())
    }
    fn oper(w: &World, b: &Self) -> Result<serde_json::Value, IntentError> {
        let report = w.host_report(&b.hostname);
        let neighbors = report
            .as_ref()
            .map(|r| r.neighbors.as_slice())
            .unwrap_or_default();
        let status = neighbors
            .first()
            .and_then(|n| n.state.clone())
            .unwrap_or_default();
        let prefixes: Vec<&str> = report
            .iter()
            .flat_map(|r| &r.routes)
            .map(|r| r.prefix.as_str())
            .collect();
        Ok(json!({
            "neighborStatus": status,
            "adminStatus": if report.is_some() { "up" } else { "" },
            "numRoutes": prefixes.len(),
            "routes": prefixes,
            "neighbors": neighbors,
            "lastSeen": report.as_ref().map(|r| r.last_seen).unwrap_or(0),
        }))
    }
}
