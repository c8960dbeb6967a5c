//! `policy` and `rule`: a rule's policy, groups and networks must exist, and a group or
//! network a rule names cannot be deleted while the rule exists.

use super::*;

/// What a rule may name besides its policy.
#[derive(Debug, Clone, Copy)]
pub(super) enum RulePeer {
    Group,
    Network,
}

/// Refuses to delete `tenant:name` (a group or a network) while rules name it: the rules
/// would dangle (a group rule would match nobody, silently).
pub(super) fn refuse_if_rules_name(
    w: &World,
    kind: RulePeer,
    tenant: &str,
    name: &str,
) -> Result<(), IntentError> {
    let users: Vec<String> = w
        .list::<Rule>()?
        .into_iter()
        .filter(|r| {
            r.tenant_name == tenant
                && match kind {
                    RulePeer::Group => r.from_endpoint_group == name || r.to_endpoint_group == name,
                    RulePeer::Network => r.from_network == name || r.to_network == name,
                }
        })
        .map(|r| Object::key(&r))
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    let (what, plural) = match kind {
        RulePeer::Group => ("endpoint group", "endpointGroups"),
        RulePeer::Network => ("network", "networks"),
    };
    Err(IntentError::conflict(format!(
        "{what} {tenant}:{name} is named by rules {}; delete those rules first \
         (netctl policy rule-rm <policy> <rule id>)",
        users.join(", ")
    ))
    .with_object(format!("{plural}/{tenant}:{name}")))
}

/// The revision a host's ruleset must be at to hold the last change of the policy of
/// `g`: the last write of the group, of its policies and of their rules, and the last
/// deletion of any rule (the world keeps the revision of deletions per kind, not which
/// policy a deleted rule was in; so a rule deletion elsewhere may show a host as behind
/// until its next ruleset, never as current when it is not). Deletions before this
/// netmaster read the store are not known. Changes of the members of groups the rules
/// name (endpoints coming and going) are not counted.
pub(super) fn group_policy_revision(w: &World, g: &EndpointGroup) -> Result<i64, IntentError> {
    let mut rev = w
        .mod_revision(<EndpointGroup as Object>::PLURAL, &Object::key(g))
        .unwrap_or(0)
        .max(w.last_deletion(<Rule as Object>::PLURAL));
    for p in &g.policies {
        let key = format!("{}:{p}", g.tenant_name);
        rev = rev.max(
            w.mod_revision(<Policy as Object>::PLURAL, &key)
                .unwrap_or(0),
        );
    }
    for r in w
        .list::<Rule>()?
        .iter()
        .filter(|r| r.tenant_name == g.tenant_name && g.policies.contains(&r.policy_name))
    {
        rev = rev.max(
            w.mod_revision(<Rule as Object>::PLURAL, &Object::key(r))
                .unwrap_or(0),
        );
    }
    Ok(rev)
}

/// The policy status of every host that reported endpoints of `groups` (of `tenant`,
/// each with its [`group_policy_revision`]): the host's ruleset revision, size and
/// error, and whether it is current for the groups it has endpoints of.
pub(super) fn hosts_policy_status(
    w: &World,
    tenant: &str,
    groups: &BTreeMap<String, i64>,
) -> Vec<contiv_model::feed::HostPolicyStatus> {
    let mut out = Vec::new();
    for (name, v) in w.oper_list("hosts/") {
        let Ok(report) = contiv_model::feed::HostReport::deserialize(v) else {
            continue;
        };
        let mine: Vec<&str> = report
            .endpoints
            .iter()
            .filter(|e| e.tenant == tenant && groups.contains_key(&e.group))
            .map(|e| e.group.as_str())
            .collect();
        let Some(needed) = mine.iter().filter_map(|g| groups.get(*g)).max() else {
            continue;
        };
        let p = report.policy.unwrap_or_default();
        out.push(contiv_model::feed::HostPolicyStatus {
            host: name.trim_start_matches("hosts/").to_string(),
            endpoints: mine.len() as u64,
            revision: p.revision,
            rules: p.rules,
            current: p.revision > 0 && p.revision >= *needed,
            error: p.error,
        });
    }
    out
}

impl Rules for Policy {
    fn put(w: &World, old: Option<&Self>, new: Self, plan: &mut Plan) -> Result<(), IntentError> {
        immutable(old, &new)?;
        tenant_exists(w, &new.tenant_name)?;
        plan.put(&new)
    }
    fn delete(w: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        let users: Vec<String> = w
            .list::<EndpointGroup>()?
            .into_iter()
            .filter(|g| g.tenant_name == old.tenant_name && g.policies.contains(&old.policy_name))
            .map(|g| g.group_name)
            .collect();
        if !users.is_empty() {
            return Err(IntentError::conflict(format!(
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
    fn oper(w: &World, p: &Self) -> Result<serde_json::Value, IntentError> {
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
        let mut revs = BTreeMap::new();
        for g in w
            .list::<EndpointGroup>()?
            .iter()
            .filter(|g| g.tenant_name == p.tenant_name && g.policies.contains(&p.policy_name))
        {
            revs.insert(g.group_name.clone(), group_policy_revision(w, g)?);
        }
        Ok(json!({
            "numEndpoints": eps.len(),
            "endpoints": eps,
            "policyViolations": 0,
            "policyRevision": revs.values().max().copied().unwrap_or(0),
            "policyStatus": hosts_policy_status(w, &p.tenant_name, &revs),
            "ruleChanges": RULE_CHANGES,
        }))
    }
}

/// What a rule change does to connections, as `policy inspect` says it.
pub(crate) const RULE_CHANGES: &str =
    "rules decide new connections; connections already established keep running until they end";

impl Rules for Rule {
    fn put(
        w: &World,
        old: Option<&Self>,
        mut new: Self,
        plan: &mut Plan,
    ) -> Result<(), IntentError> {
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
    fn delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        plan.delete::<Rule>(&Object::key(old));
        Ok(())
    }
}
