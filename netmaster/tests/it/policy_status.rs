//! The hosts' policy status in the `Oper` of endpoint groups and policies, from their
//! reports: each host's ruleset revision, size and error, and whether it holds the last
//! change of the group, its policies and their rules. The walkthrough's setup lives
//! here; `policy_explain` shares it.

use serde_json::{Value, json};

use crate::common::nm::{Nm, net};

pub const TOKEN: &str = "s3cret-token";

pub fn rule(id: &str, extra: Value) -> Value {
    let mut r = json!({"tenantName": "default", "policyName": "prod_web", "ruleId": id,
                       "direction": "in", "protocol": "tcp", "action": "allow"});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

pub async fn endpoint(nm: &Nm, id: &str, name: &str, group: &str, host: &str) -> String {
    let (s, a) = nm
        .post(
            "/api/v1/plugin/endpoints/",
            json!({"endpointID": id, "tenant": "default", "network": "contiv-net",
                   "group": group, "host": host, "containerName": name}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    a["endpoint"]["ipAddress"][0].as_str().unwrap().to_string()
}

/// The walkthrough: prod_web (1 deny tcp in; 2, 3 allow tcp 80, 443 at priority 10) on
/// group web; web1 in it on h2, c1 in no group on h1.
pub async fn walkthrough() -> (Nm, String, String) {
    let nm = Nm::start_with(Some(TOKEN)).await;
    assert_eq!(nm.set_mode("routing").await.0, 200);
    nm.create(
        "/api/v1/networks/default:contiv-net/",
        net("default", "contiv-net", "10.1.1.0/24"),
    )
    .await;
    nm.create(
        "/api/v1/policys/default:prod_web/",
        json!({"tenantName": "default", "policyName": "prod_web"}),
    )
    .await;
    nm.create(
        "/api/v1/rules/default:prod_web:1/",
        rule("1", json!({"action": "deny"})),
    )
    .await;
    nm.create(
        "/api/v1/rules/default:prod_web:2/",
        rule("2", json!({"port": 80, "priority": 10})),
    )
    .await;
    nm.create(
        "/api/v1/rules/default:prod_web:3/",
        rule("3", json!({"port": 443, "priority": 10})),
    )
    .await;
    nm.create(
        "/api/v1/endpointGroups/default:web/",
        json!({"tenantName": "default", "groupName": "web", "networkName": "contiv-net",
               "policies": ["prod_web"]}),
    )
    .await;
    let web1 = endpoint(&nm, "ep-web1", "web1", "web", "h2").await;
    let c1 = endpoint(&nm, "ep-c1", "c1", "", "h1").await;
    (nm, web1, c1)
}

fn report(ep: (&str, &str, &str), policy: Value) -> Value {
    json!({"endpoints": [{"endpointID": ep.0, "tenant": "default", "network": "contiv-net",
                          "group": ep.1, "address": format!("{}/24", ep.2)}],
           "fwdMode": "routing", "policy": policy})
}

#[tokio::test]
async fn inspect_shows_each_hosts_policy_status() {
    let (nm, web1, c1) = walkthrough().await;
    let rev = nm.revision().await;
    // h2 has web1 and programmed the current ruleset; h1 has c1 (no group).
    let (s, e) = nm
        .put(
            "/api/v1/feed/hosts/h2/",
            report(
                ("ep-web1", "web", &web1),
                json!({"revision": rev, "rules": 3, "endpoints": 1}),
            ),
        )
        .await;
    assert_eq!(s, 204, "{e}");
    nm.put(
        "/api/v1/feed/hosts/h1/",
        report(("ep-c1", "", &c1), json!({"revision": rev, "rules": 0})),
    )
    .await;
    let status = |v: &Value| v["Oper"]["policyStatus"].as_array().unwrap().clone();
    let (_, g) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    let st = status(&g);
    assert_eq!(st.len(), 1, "{g}");
    assert_eq!(st[0]["host"], "h2");
    assert_eq!(st[0]["rules"], 3);
    assert_eq!(st[0]["current"], true, "{g}");
    assert!(g["Oper"]["policyRevision"].as_i64().unwrap() <= rev, "{g}");
    // A new rule: h2 is behind until it reports a newer ruleset.
    nm.create(
        "/api/v1/rules/default:prod_web:4/",
        rule("4", json!({"port": 8443, "priority": 10})),
    )
    .await;
    let (_, g) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    assert_eq!(status(&g)[0]["current"], false, "{g}");
    assert!(g["Oper"]["policyRevision"].as_i64().unwrap() > rev, "{g}");
    let (_, p) = nm.get("/api/v1/inspect/policys/default:prod_web/").await;
    assert_eq!(status(&p)[0]["host"], "h2", "{p}");
    assert_eq!(status(&p)[0]["current"], false, "{p}");
    // A failed attempt keeps the old revision and says why.
    let now = nm.revision().await;
    nm.put(
        "/api/v1/feed/hosts/h2/",
        report(
            ("ep-web1", "web", &web1),
            json!({"revision": rev, "rules": 3, "error": "nft: out of memory"}),
        ),
    )
    .await;
    let (_, g) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    assert_eq!(status(&g)[0]["error"], "nft: out of memory", "{g}");
    nm.put(
        "/api/v1/feed/hosts/h2/",
        report(
            ("ep-web1", "web", &web1),
            json!({"revision": now, "rules": 4}),
        ),
    )
    .await;
    let (_, g) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    assert_eq!(status(&g)[0]["current"], true, "{g}");
    assert!(status(&g)[0].get("error").is_none(), "{g}");
    // Deleting a rule is a change too.
    assert_eq!(nm.delete("/api/v1/rules/default:prod_web:4/").await.0, 204);
    let (_, p) = nm.get("/api/v1/inspect/policys/default:prod_web/").await;
    assert_eq!(status(&p)[0]["current"], false, "{p}");
    // A host without a policy status yet is not current.
    nm.put(
        "/api/v1/feed/hosts/h2/",
        json!({"endpoints": [{"endpointID": "ep-web1", "tenant": "default", "group": "web"}]}),
    )
    .await;
    let (_, g) = nm.get("/api/v1/inspect/endpointGroups/default:web/").await;
    assert_eq!(
        (
            status(&g)[0]["revision"].as_i64(),
            status(&g)[0]["current"].as_bool()
        ),
        (Some(0), Some(false)),
        "{g}"
    );
    nm.stop().await;
}
