//! `GET /api/v1/policy-explain/` on the seed walkthrough.

use contiv_model::PolicyExplain;
use contiv_model::policy::Action;
use serde_json::Value;

use crate::common::nm::Nm;
use crate::policy_status::{endpoint, walkthrough};

/// Asks with the query parameters (and the token: reads need it too).
async fn explain(nm: &Nm, from: &str, to: &str, service: &str) -> (u16, Value) {
    let r = nm
        .http
        .get(format!("{}/api/v1/policy-explain/", nm.url))
        .bearer_auth(nm.token.as_deref().unwrap_or_default())
        .query(&[("from", from), ("to", to), ("service", service)])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn explains_the_walkthrough() {
    let (nm, web1, c1) = walkthrough().await;
    let (s, v) = explain(&nm, "c1", "web1", "tcp/8080").await;
    assert_eq!(s, 200, "{v}");
    let x: PolicyExplain = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(x.decision.action, Action::Deny);
    assert_eq!(x.decision.egress.reason, "no-policy");
    assert_eq!(
        x.decision.ingress.rule.as_deref(),
        Some("default:prod_web:1")
    );
    assert_eq!(x.ingress_rule.unwrap().action, "deny");
    assert_eq!(
        (x.from.address.as_str(), x.to.address.as_str()),
        (c1.as_str(), web1.as_str())
    );
    assert_eq!(x.to.endpoint_id.as_deref(), Some("ep-web1"));
    assert_eq!((x.to.group.as_str(), x.to.host.as_str()), ("web", "h2"));
    assert_eq!(x.port, Some(8080));
    // The JSON names the main engineer's clients read.
    assert_eq!(v["action"], "deny");
    assert_eq!(v["ingress"]["reason"], "rule");
    assert_eq!(v["to"]["endpointID"], "ep-web1");
    // 80 and 443 are open, by endpoint id and by address.
    for (from, to, service) in [
        ("ep-c1", "web1", "tcp/80"),
        (c1.as_str(), web1.as_str(), "tcp/443"),
    ] {
        let (s, v) = explain(&nm, from, to, service).await;
        assert_eq!(
            (s, v["action"].as_str()),
            (200, Some("allow")),
            "{service}: {v}"
        );
    }
    // From outside: only the receiver's rules decide.
    let (_, v) = explain(&nm, "198.51.100.7", "web1", "tcp/22").await;
    assert_eq!(v["action"], "deny", "{v}");
    assert!(v["from"].get("endpointID").is_none(), "{v}");
    nm.stop().await;
}

#[tokio::test]
async fn bad_questions_name_the_parameter() {
    let (nm, _, _) = walkthrough().await;
    // Two containers of the same name.
    endpoint(&nm, "ep-dup1", "dup", "", "h1").await;
    endpoint(&nm, "ep-dup2", "dup", "", "h3").await;
    let (s, e) = explain(&nm, "dup", "web1", "tcp/80").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("from")), "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("ep-dup1") && msg.contains("ep-dup2"), "{msg}");
    let (s, e) = explain(&nm, "c1", "nosuch", "tcp/80").await;
    assert_eq!((s, e["field"].as_str()), (404, Some("to")), "{e}");
    for service in ["", "tcp/0", "tcp/99999", "icmp/3", "sctp"] {
        let (s, e) = explain(&nm, "c1", "web1", service).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (400, Some("service")),
            "{service}: {e}"
        );
    }
    let r = nm
        .http
        .get(format!(
            "{}/api/v1/policy-explain?to=web1&service=icmp",
            nm.url
        ))
        .bearer_auth(nm.token.as_deref().unwrap_or_default())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["field"], "from", "{e}");
    nm.stop().await;
}
