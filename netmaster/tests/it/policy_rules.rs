//! Rules over REST: every bad rule is a 4xx naming the field and stores nothing; a group
//! or network that rules name cannot be deleted under them; a group cannot list a policy
//! that does not exist.

use serde_json::{Value, json};

use crate::common::nm::{Nm, net};

fn rule(id: &str, extra: Value) -> Value {
    let mut r = json!({"tenantName": "default", "policyName": "prod_web", "ruleId": id,
                       "direction": "in", "protocol": "tcp", "action": "allow"});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

async fn setup() -> Nm {
    let nm = Nm::start().await;
    assert_eq!(nm.set_mode("routing").await.0, 200);
    nm.create(
        "/api/v1/networks/default:contiv-net/",
        net("default", "contiv-net", "20.1.1.0/24"),
    )
    .await;
    nm.create(
        "/api/v1/networks/default:other-net/",
        net("default", "other-net", "20.1.2.0/24"),
    )
    .await;
    nm.create(
        "/api/v1/policys/default:prod_web/",
        json!({"tenantName": "default", "policyName": "prod_web"}),
    )
    .await;
    nm.create(
        "/api/v1/endpointGroups/default:db/",
        json!({"tenantName": "default", "groupName": "db", "networkName": "contiv-net"}),
    )
    .await;
    nm
}

#[tokio::test]
async fn bad_rules_name_the_field_and_store_nothing() {
    let nm = setup().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        // References that do not exist.
        (
            json!({"fromEndpointGroup": "nosuch"}),
            404,
            "fromEndpointGroup",
        ),
        (
            json!({"direction": "out", "toEndpointGroup": "nosuch"}),
            404,
            "toEndpointGroup",
        ),
        (json!({"fromNetwork": "nosuch"}), 404, "fromNetwork"),
        (
            json!({"direction": "out", "toNetwork": "nosuch"}),
            404,
            "toNetwork",
        ),
        (json!({"policyName": "nosuch"}), 404, "policyName"),
        // The other side's fields for the direction.
        (json!({"toEndpointGroup": "db"}), 400, "direction"),
        (json!({"toIpAddress": "10.0.0.1"}), 400, "direction"),
        (
            json!({"direction": "out", "fromNetwork": "other-net"}),
            400,
            "direction",
        ),
        // Two peers at once.
        (
            json!({"fromEndpointGroup": "db", "fromNetwork": "other-net"}),
            400,
            "fromNetwork",
        ),
        (
            json!({"fromEndpointGroup": "db", "fromIpAddress": "10.0.0.0/8"}),
            400,
            "fromIpAddress",
        ),
        (
            json!({"fromNetwork": "other-net", "fromIpAddress": "10.0.0.1"}),
            400,
            "fromIpAddress",
        ),
        (
            json!({"direction": "out", "toNetwork": "other-net", "toEndpointGroup": "db"}),
            400,
            "toNetwork",
        ),
        (json!({"fromIpAddress": "banana"}), 400, "fromIpAddress"),
        // Ranges and protocols.
        (json!({"port": 70000}), 400, "port"),
        (json!({"port": -1}), 400, "port"),
        (json!({"priority": 101}), 400, "priority"),
        (json!({"priority": -1}), 400, "priority"),
        (json!({"protocol": "sctp"}), 400, "protocol"),
        (json!({"protocol": "256"}), 400, "protocol"),
        (json!({"protocol": "icmp", "port": 80}), 400, "port"),
        (json!({"protocol": "", "port": 80}), 400, "port"),
        (json!({"direction": "sideways"}), 400, "direction"),
        (json!({"action": "maybe"}), 400, "action"),
        (json!({"ruleId": "a b"}), 400, "ruleId"),
    ];
    for (extra, status, field) in cases {
        let r = rule("9", extra.clone());
        let key = format!(
            "default:{}:{}",
            r["policyName"].as_str().unwrap(),
            r["ruleId"].as_str().unwrap()
        );
        let (s, e) = nm.post(&format!("/api/v1/rules/{key}/"), r).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (status, Some(field)),
            "{extra}: {e}"
        );
        assert!(!e["message"].as_str().unwrap_or("").is_empty(), "{e}");
    }
    assert_eq!(nm.count("rules").await, 0, "a refused rule was stored");
    // The message of a direction refusal says which field is on the wrong side.
    let (_, e) = nm
        .post(
            "/api/v1/rules/default:prod_web:9/",
            rule("9", json!({"toEndpointGroup": "db"})),
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("toEndpointGroup"),
        "{e}"
    );
    nm.stop().await;
}

#[tokio::test]
async fn what_rules_name_cannot_be_deleted_under_them() {
    let nm = setup().await;
    nm.create(
        "/api/v1/rules/default:prod_web:1/",
        rule("1", json!({"fromEndpointGroup": "db", "port": 5432})),
    )
    .await;
    nm.create(
        "/api/v1/rules/default:prod_web:2/",
        rule("2", json!({"direction": "out", "toNetwork": "other-net"})),
    )
    .await;
    let (s, e) = nm.delete("/api/v1/endpointGroups/default:db/").await;
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("default:prod_web:1"),
        "{e}"
    );
    assert_eq!(e["object"], "endpointGroups/default:db");
    let (s, e) = nm.delete("/api/v1/networks/default:other-net/").await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("default:prod_web:2"),
        "{e}"
    );
    // Both still exist.
    assert_eq!(nm.get("/api/v1/endpointGroups/default:db/").await.0, 200);
    assert_eq!(nm.get("/api/v1/networks/default:other-net/").await.0, 200);
    // Without the rules they go.
    assert_eq!(nm.delete("/api/v1/rules/default:prod_web:1/").await.0, 204);
    assert_eq!(nm.delete("/api/v1/rules/default:prod_web:2/").await.0, 204);
    assert_eq!(nm.delete("/api/v1/endpointGroups/default:db/").await.0, 204);
    assert_eq!(
        nm.delete("/api/v1/networks/default:other-net/").await.0,
        204
    );
    nm.stop().await;
}

#[tokio::test]
async fn a_group_lists_only_policies_that_exist() {
    let nm = setup().await;
    let groups = nm.count("endpointGroups").await;
    let (s, e) = nm
        .post(
            "/api/v1/endpointGroups/default:web/",
            json!({"tenantName": "default", "groupName": "web", "networkName": "contiv-net",
                   "policies": ["prod_web", "nosuch"]}),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (404, Some("policies")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("nosuch"), "{e}");
    assert_eq!(nm.count("endpointGroups").await, groups);
    // Nor can an existing group be changed to one.
    let (s, e) = nm
        .post(
            "/api/v1/endpointGroups/default:db/",
            json!({"tenantName": "default", "groupName": "db", "networkName": "contiv-net",
                   "policies": ["nosuch"]}),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (404, Some("policies")), "{e}");
    let (_, g) = nm.get("/api/v1/endpointGroups/default:db/").await;
    assert_eq!(g["policies"], json!([]), "{g}");
    nm.stop().await;
}
