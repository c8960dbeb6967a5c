//! The OpenAPI document matches its golden file (`UPDATE_GOLDEN=1` rewrites it), every
//! object route is in it, and the server serves the same document.

use std::path::PathBuf;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/openapi.json")
}

#[test]
fn matches_the_golden_file() {
    let doc = serde_json::to_string_pretty(&netmaster::api::openapi::document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden(), &doc).unwrap();
    }
    let want = std::fs::read_to_string(golden())
        .expect("golden file (run with UPDATE_GOLDEN=1 to create it)");
    assert!(
        doc == want,
        "the OpenAPI document changed; review and run with UPDATE_GOLDEN=1"
    );
}

#[test]
fn covers_every_kind() {
    let doc = netmaster::api::openapi::document();
    for plural in [
        "globals",
        "tenants",
        "networks",
        "endpointGroups",
        "policys",
        "rules",
        "Bgps",
        "serviceLBs",
        "netprofiles",
        "appProfiles",
        "endpoints",
    ] {
        for p in [
            format!("/api/v1/{plural}/"),
            format!("/api/v1/{plural}/{{key}}/"),
            format!("/api/v1/inspect/{plural}/{{key}}/"),
        ] {
            assert!(doc["paths"].get(&p).is_some(), "{p} missing");
        }
    }
    assert_eq!(
        doc["components"]["schemas"]["Bgp"]["properties"]["neighbor-as"]["type"],
        "string"
    );
}

#[tokio::test]
async fn served_document_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let nm = netmaster::server::start(netmaster::server::Config::embedded(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let served: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", nm.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, netmaster::api::openapi::document());
    nm.stop().await;
}

/// The document states what the server enforces, from the rules' own definitions.
#[test]
fn states_the_constraints_the_server_enforces() {
    use contiv_model::validate;
    let doc = netmaster::api::openapi::document();
    let s = &doc["components"]["schemas"];
    let tenant = &s["Network"]["properties"]["tenantName"];
    assert_eq!(tenant["pattern"], validate::NAME_PATTERN);
    assert_eq!(tenant["minLength"], 1);
    assert_eq!(tenant["maxLength"], validate::NAME_MAX);
    assert_eq!(
        s["Network"]["properties"]["cfgdTag"]["pattern"],
        validate::OPTIONAL_NAME_PATTERN
    );
    assert_eq!(
        s["Network"]["properties"]["encap"]["enum"],
        serde_json::json!(validate::ENCAPS)
    );
    assert_eq!(
        s["Network"]["properties"]["pktTag"]["maximum"],
        validate::PKT_TAG_MAX
    );
    assert_eq!(
        s["Rule"]["properties"]["port"]["maximum"],
        validate::PORT_MAX
    );
    assert_eq!(
        s["Netprofile"]["properties"]["DSCP"]["maximum"],
        validate::DSCP_MAX
    );
    assert_eq!(s["Endpoint"]["properties"]["endpointID"]["minLength"], 1);
    let kinds: Vec<&str> = netmaster::api::ErrorKind::ALL
        .iter()
        .map(|k| k.name())
        .collect();
    assert_eq!(
        s["Error"]["properties"]["error"]["enum"],
        serde_json::json!(kinds)
    );
}

/// Every operation documents the credential answers and its JSON errors; writes and the
/// plugin endpoints document 400; the bearer scheme applies to the whole API.
#[test]
fn documents_every_status_and_the_bearer_scheme() {
    let doc = netmaster::api::openapi::document();
    assert_eq!(doc["security"], serde_json::json!([{"token": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let mut n = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            n += 1;
            let r = &op["responses"];
            for status in ["401", "403", "503"] {
                assert!(r.get(status).is_some(), "{method} {path}: no {status}");
            }
            let writes =
                method != "get" || path == "/api/v1/policy-explain/" || path == "/api/v1/feed/";
            if writes && method != "delete" {
                assert!(r.get("400").is_some(), "{method} {path}: no 400");
            }
            for (code, resp) in r.as_object().unwrap() {
                if !code.starts_with('2') {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
    assert!(n > 70);
    for p in [
        "/api/v1/plugin/endpoints/",
        "/api/v1/plugin/hosts/{host}/collect",
        "/api/v1/feed/hosts/{host}/",
    ] {
        let op = doc["paths"][p]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        assert!(op["responses"].get("400").is_some(), "{p}");
    }
}

/// The feed is marked as a stream, so a generic client (and the fuzzer) does not wait for
/// its end.
#[test]
fn marks_the_feed_as_a_stream() {
    let doc = netmaster::api::openapi::document();
    let feed = &doc["paths"]["/api/v1/feed/"]["get"];
    assert_eq!(feed["x-streaming"], true);
    assert!(
        feed["responses"]["200"]["content"]
            .get("application/x-ndjson")
            .is_some()
    );
    assert_eq!(feed["parameters"][0]["schema"]["minimum"], 0);
    let streaming: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter(|op| op["x-streaming"] == true)
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(streaming, ["feed"]);
}
