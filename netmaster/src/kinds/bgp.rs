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
