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
