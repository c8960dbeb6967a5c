//! The OpenAPI 3.1 document of the REST API, built from the model's types, served at
//! `/api/v1/openapi.json`. A golden-file test keeps it from changing unnoticed.

use contiv_model::*;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

fn error_responses() -> Value {
    let e = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let with = |d: &str| {
        let mut v = e.clone();
        v["description"] = json!(d);
        v
    };
    json!({
        "400": with("validation failed; `field` names the JSON field"),
        "401": with("a token is required for changes"),
        "404": with("the object, or one it refers to, does not exist"),
        "409": with("refused by a rule (dependents exist, overlap, immutable field)"),
        "413": with("body too large"),
        "503": with("no leader right now, or the store is unavailable"),
    })
}

fn kind_paths<T: Object + schemars::JsonSchema>(
    g: &mut SchemaGenerator,
    paths: &mut Map<String, Value>,
) {
    let schema = serde_json::to_value(g.subschema_for::<T>()).unwrap_or(Value::Null);
    let plural = T::PLURAL;
    let name = T::NAME;
    let key_param = json!([{"name": "key", "in": "path", "required": true, "schema": {"type": "string"},
        "description": format!("the {name}'s key")}]);
    let ok = |d: &str, s: &Value| json!({"description": d, "content": {"application/json": {"schema": s}}});
    let mut errors = error_responses();
    let write = {
        let mut r = errors.clone();
        r["200"] = ok(&format!("the stored {name}"), &schema);
        json!({
            "summary": format!("Create or update a {name}"),
            "operationId": format!("put_{name}"),
            "parameters": key_param,
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema}}},
            "responses": r,
        })
    };
    errors["200"] = ok(
        &format!("all {plural}"),
        &json!({"type": "array", "items": schema}),
    );
    paths.insert(
        format!("/api/v1/{plural}/"),
        json!({"get": {"summary": format!("List {plural}"), "operationId": format!("list_{name}"), "responses": errors}}),
    );
    let mut get_r = error_responses();
    get_r["200"] = ok(&format!("the {name}"), &schema);
    let mut del_r = error_responses();
    del_r["204"] = json!({"description": "deleted"});
    let mut post = write.clone();
    post["operationId"] = json!(format!("post_{name}"));
    paths.insert(
        format!("/api/v1/{plural}/{{key}}/"),
        json!({
            "get": {"summary": format!("Read a {name}"), "operationId": format!("get_{name}"), "parameters": key_param, "responses": get_r},
            "post": post,
            "put": write,
            "delete": {"summary": format!("Delete a {name}"), "operationId": format!("delete_{name}"), "parameters": key_param, "responses": del_r},
        }),
    );
    let mut insp = error_responses();
    insp["200"] = ok(
        &format!("the {name} and its operational state"),
        &json!({"type": "object", "properties": {"Config": schema, "Oper": {"type": "object"}}, "required": ["Config", "Oper"]}),
    );
    paths.insert(
        format!("/api/v1/inspect/{plural}/{{key}}/"),
        json!({"get": {"summary": format!("Inspect a {name}"), "operationId": format!("inspect_{name}"), "parameters": key_param, "responses": insp}}),
    );
}

/// The whole document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut g = settings.into_generator();
    let mut paths = Map::new();
    kind_paths::<Global>(&mut g, &mut paths);
    kind_paths::<Tenant>(&mut g, &mut paths);
    kind_paths::<Network>(&mut g, &mut paths);
    kind_paths::<EndpointGroup>(&mut g, &mut paths);
    kind_paths::<Policy>(&mut g, &mut paths);
    kind_paths::<Rule>(&mut g, &mut paths);
    kind_paths::<Bgp>(&mut g, &mut paths);
    kind_paths::<ServiceLb>(&mut g, &mut paths);
    kind_paths::<Netprofile>(&mut g, &mut paths);
    kind_paths::<AppProfile>(&mut g, &mut paths);
    kind_paths::<Endpoint>(&mut g, &mut paths);
    let plain = |summary: &str, id: &str| json!({"get": {"summary": summary, "operationId": id, "responses": {"200": {"description": "OK"}}}});
    paths.insert("/version".into(), plain("netmaster's version", "version"));
    paths.insert(
        "/info".into(),
        plain("this netmaster: store, leadership, revision", "info"),
    );
    paths.insert(
        "/metrics".into(),
        plain("Prometheus metrics (OpenMetrics text)", "metrics"),
    );
    paths.insert(
        "/api/v1/openapi.json".into(),
        plain("this document", "openapi"),
    );
    let mut explain_r = error_responses();
    explain_r["200"] = json!({"description": "the decision (`action`, `egress` and `ingress` verdicts, each with `action`, `reason` and the deciding `rule`'s key), what each end resolved to (`from`, `to`: `query`, `address`, `endpointID`, `containerName`, `tenant`, `network`, `group`, `host`, `policies`, `rules`), the deciding rules (`egressRule`, `ingressRule`), `service`, `protocol`, `port` and the intent `revision`",
        "content": {"application/json": {"schema": {"type": "object", "required": ["action", "egress", "ingress", "from", "to", "service", "protocol", "revision"]}}}});
    paths.insert(
        "/api/v1/policy-explain/".into(),
        json!({"get": {"summary": "What the policy decides for a new connection between two ends, and why", "operationId": "policy_explain",
            "parameters": [
                {"name": "from", "in": "query", "required": true, "schema": {"type": "string"}, "description": "the source: a container name, an endpoint id (or a unique prefix), a container id, or an address"},
                {"name": "to", "in": "query", "required": true, "schema": {"type": "string"}, "description": "the destination, as `from`"},
                {"name": "service", "in": "query", "required": true, "schema": {"type": "string"}, "description": "tcp/<port>, udp/<port>, icmp, tcp, udp or an IP protocol number"}],
            "responses": explain_r}}),
    );
    paths.insert(
        "/api/v1/feed/".into(),
        json!({"get": {"summary": "The netplugin feed: newline-delimited JSON (snapshot, changes, heartbeats)", "operationId": "feed",
            "parameters": [
                {"name": "from", "in": "query", "schema": {"type": "integer"}, "description": "resume after this revision"},
                {"name": "index", "in": "query", "schema": {"type": "integer"}, "description": "the last change index seen at `from`"}],
            "responses": {"200": {"description": "a stream", "content": {"application/x-ndjson": {}}}}}}),
    );
    paths.insert(
        "/api/v1/feed/hosts/{host}/".into(),
        json!({"put": {"summary": "A netplugin's report (endpoints, BGP sessions, routes)", "operationId": "report",
            "parameters": [{"name": "host", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "stored"}}}}),
    );
    paths.insert(
        "/api/v1/feed/hosts/".into(),
        plain("every host's last report", "reports"),
    );
    paths.insert(
        "/api/v1/plugin/endpoints/".into(),
        json!({"post": {"summary": "Create an endpoint and allocate its address (netplugin)", "operationId": "create_endpoint",
            "responses": {"200": {"description": "the endpoint with its address"}}}}),
    );
    paths.insert(
        "/api/v1/plugin/endpoints/{id}/".into(),
        json!({"delete": {"summary": "Remove an endpoint and release its address (netplugin)", "operationId": "remove_endpoint",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "removed"}}}}),
    );
    paths.insert(
        "/api/v1/plugin/hosts/{host}/collect".into(),
        json!({"post": {"summary": "Remove every endpoint of a host that is gone", "operationId": "collect_host",
            "parameters": [{"name": "host", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "how many were collected"}}}}),
    );
    let mut schemas = g.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "enum": ["validation", "not-found", "conflict", "unauthorized", "method-not-allowed", "too-large", "unsupported-media-type", "unavailable", "internal"]},
            "message": {"type": "string"},
            "field": {"type": "string"},
            "object": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "contiv-rs netmaster", "version": env!("CARGO_PKG_VERSION"),
            "description": "Contiv's REST API: /api/v1/<plural>/<key>/ with create-or-update on POST/PUT."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    })
}
