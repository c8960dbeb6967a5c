//! The OpenAPI 3.1 document of the REST API, built from the model's types, served at
//! `/api/v1/openapi.json`. A golden-file test keeps it from changing unnoticed.

use contiv_model::*;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::ErrorKind;
use contiv_model::feed::{FeedLine, HostReport};

/// What each error status means, by [`ErrorKind`] (401 and 403 are answered by the
/// credential check before any handler runs).
fn error_description(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::Validation => {
            "the request is malformed or fails validation; `field` names the JSON field or parameter"
        }
        ErrorKind::NotFound => "the object, or one it refers to, does not exist",
        ErrorKind::Conflict => "refused by a rule (dependents exist, overlap, immutable field)",
        ErrorKind::Unauthorized => {
            "credentials are missing or wrong (every operation may answer this when netmaster requires a credential)"
        }
        ErrorKind::Forbidden => {
            "the credential does not allow this request (a host's credential reaches only its feed, its own report and its own endpoints)"
        }
        ErrorKind::MethodNotAllowed => {
            "this kind is read-only here (endpoints change through the plugin API)"
        }
        ErrorKind::TooLarge => "the body is larger than 1 MiB",
        ErrorKind::UnsupportedMediaType => "the body is not JSON",
        ErrorKind::Unavailable => {
            "no netmaster leads right now, or the store is unavailable; retry"
        }
        ErrorKind::Internal => "a bug or an unexpected store failure",
    }
}

/// Which errors an operation can answer.
#[derive(Clone, Copy)]
enum Op {
    /// A read of a list or of the whole state.
    List,
    /// A read of one object by key.
    Read,
    /// A write with a JSON body.
    Write,
    /// A removal by key.
    Delete,
    /// A read whose query parameters are checked.
    Query,
}

/// The `403` of host credentials (the credential check answers it).
fn forbidden() -> Value {
    json!({"description": error_description(ErrorKind::Forbidden),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn error_responses(op: Op) -> Value {
    use ErrorKind::*;
    let kinds: &[ErrorKind] = match op {
        Op::List => &[Unauthorized, Unavailable],
        Op::Read => &[Unauthorized, NotFound, Unavailable],
        Op::Query => &[Validation, Unauthorized, NotFound, Unavailable],
        Op::Write => &[
            Validation,
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            Conflict,
            TooLarge,
            Unavailable,
        ],
        Op::Delete => &[
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            Conflict,
            Unavailable,
        ],
    };
    let mut r = Map::new();
    for k in kinds {
        r.insert(
            k.status().as_u16().to_string(),
            json!({"description": error_description(*k),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    r.insert("403".into(), forbidden());
    Value::Object(r)
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// A valid object of each kind (with `default` tenant objects that refer to each other),
/// so a client, or the fuzzer's example phase, can start from requests that succeed.
fn example(plural: &str) -> Option<Value> {
    Some(match plural {
        "globals" => json!({"name": "global", "fwdMode": "bridge", "arpMode": "proxy"}),
        "tenants" => json!({"tenantName": "blue"}),
        "networks" => json!({"tenantName": "default", "networkName": "net1", "encap": "vxlan",
            "subnet": "20.1.1.0/24", "gateway": "20.1.1.254"}),
        "endpointGroups" => {
            json!({"tenantName": "default", "groupName": "web", "networkName": "net1",
            "policies": ["web-in"]})
        }
        "policys" => json!({"tenantName": "default", "policyName": "web-in"}),
        "rules" => json!({"tenantName": "default", "policyName": "web-in", "ruleId": "1",
            "direction": "in", "priority": 10, "protocol": "tcp", "port": 80, "action": "allow"}),
        "Bgps" => json!({"hostname": "host1", "routerip": "50.1.1.2/24", "as": "65002",
            "neighbor-as": "500", "neighbor": "50.1.1.200"}),
        "serviceLBs" => {
            json!({"tenantName": "default", "serviceName": "app", "networkName": "net1",
            "selectors": ["tier=web"], "ports": ["8080:80:TCP"]})
        }
        "netprofiles" => json!({"tenantName": "default", "profileName": "gold",
            "bandwidth": "100mbps", "DSCP": 10, "burst": 64}),
        "appProfiles" => json!({"tenantName": "default", "appProfileName": "shop",
            "endpointGroups": ["web"]}),
        _ => return None,
    })
}

/// The key the server derives from an example's fields.
fn example_key<T: Object>(v: &Value) -> Option<String> {
    let o: T = serde_json::from_value(v.clone()).ok()?;
    Some(o.key())
}

fn kind_paths<T: Object + schemars::JsonSchema>(
    g: &mut SchemaGenerator,
    paths: &mut Map<String, Value>,
) {
    let schema = serde_json::to_value(g.subschema_for::<T>()).unwrap_or(Value::Null);
    let plural = T::PLURAL;
    let name = T::NAME;
    let ex = example(plural);
    let ex_key = ex.as_ref().and_then(example_key::<T>);
    let mut key_param = json!([{"name": "key", "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1},
        "description": format!("the {name}'s key (the body's key fields joined by ':')")}]);
    if let Some(k) = &ex_key {
        key_param[0]["example"] = json!(k);
    }
    let mut write_r = error_responses(Op::Write);
    write_r["200"] = ok_json(&format!("the stored {name}"), schema.clone());
    // What a client does next with the stored object: read, inspect or delete it by key.
    write_r["200"]["links"] = json!({
        "get": {"operationId": format!("get_{name}"), "parameters": {"key": "$response.body#/key"}},
        "inspect": {"operationId": format!("inspect_{name}"), "parameters": {"key": "$response.body#/key"}},
        "delete": {"operationId": format!("delete_{name}"), "parameters": {"key": "$response.body#/key"}},
    });
    let mut body = json!({"schema": schema});
    if let Some(e) = &ex {
        body["example"] = e.clone();
    }
    let write = json!({
        "summary": format!("Create or update a {name}"),
        "operationId": format!("put_{name}"),
        "parameters": key_param,
        "requestBody": {"required": true, "content": {"application/json": body}},
        "responses": write_r,
    });
    let mut list_r = error_responses(Op::List);
    list_r["200"] = ok_json(
        &format!("all {plural}"),
        json!({"type": "array", "items": schema}),
    );
    paths.insert(
        format!("/api/v1/{plural}/"),
        json!({"get": {"summary": format!("List {plural}"), "operationId": format!("list_{name}"), "responses": list_r}}),
    );
    let mut get_r = error_responses(Op::Read);
    get_r["200"] = ok_json(&format!("the {name}"), schema.clone());
    let mut del_r = error_responses(Op::Delete);
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
    let mut insp = error_responses(Op::Read);
    insp["200"] = ok_json(
        &format!("the {name} and its operational state"),
        json!({"type": "object", "properties": {"Config": schema, "Oper": {"type": "object"}}, "required": ["Config", "Oper"]}),
    );
    paths.insert(
        format!("/api/v1/inspect/{plural}/{{key}}/"),
        json!({"get": {"summary": format!("Inspect a {name}"), "operationId": format!("inspect_{name}"), "parameters": key_param, "responses": insp}}),
    );
}

fn schema_of<T: schemars::JsonSchema>(g: &mut SchemaGenerator) -> Value {
    serde_json::to_value(g.subschema_for::<T>()).unwrap_or(Value::Null)
}

/// A path parameter naming a host (the rule [`contiv_model::validate::check_name`] applies).
fn host_param() -> Value {
    let schema = serde_json::to_value(contiv_model::validate::name_schema::<
        { contiv_model::validate::LONG_NAME_MAX },
    >(&mut SchemaGenerator::default()))
    .unwrap_or(Value::Null);
    json!({"name": "host", "in": "path", "required": true, "schema": schema,
        "description": "the host's name"})
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
    let plain = |summary: &str, id: &str, ok: Value| {
        let mut r = error_responses(Op::List);
        r["200"] = ok;
        json!({"get": {"summary": summary, "operationId": id, "responses": r}})
    };
    paths.insert(
        "/version".into(),
        plain(
            "netmaster's version",
            "version",
            ok_json(
                "name and version",
                json!({"type": "object", "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}),
            ),
        ),
    );
    paths.insert(
        "/info".into(),
        plain(
            "this netmaster: store, leadership, revision",
            "info",
            ok_json(
                "this netmaster",
                json!({"type": "object", "required": ["info", "isLeader", "leaderURL", "revision"],
                    "properties": {"info": {"type": "object"}, "isLeader": {"type": "boolean"},
                        "leaderURL": {"type": ["string", "null"]}, "revision": {"type": "integer"}}}),
            ),
        ),
    );
    paths.insert(
        "/metrics".into(),
        plain(
            "Prometheus metrics (OpenMetrics text)",
            "metrics",
            json!({"description": "the metrics", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}),
        ),
    );
    paths.insert(
        "/api/v1/openapi.json".into(),
        plain(
            "this document",
            "openapi",
            ok_json("the OpenAPI document", json!({"type": "object"})),
        ),
    );
    let mut explain_r = error_responses(Op::Query);
    explain_r["200"] = ok_json(
        "the decision (`action`, `egress` and `ingress` verdicts, each with `action`, `reason` and the deciding `rule`'s key), what each end resolved to (`from`, `to`: `query`, `address`, `endpointID`, `containerName`, `tenant`, `network`, `group`, `host`, `policies`, `rules`), the deciding rules (`egressRule`, `ingressRule`), `service`, `protocol`, `port` and the intent `revision`",
        json!({"type": "object", "required": ["action", "egress", "ingress", "from", "to", "service", "protocol", "revision"]}),
    );
    paths.insert(
        "/api/v1/policy-explain/".into(),
        json!({"get": {"summary": "What the policy decides for a new connection between two ends, and why", "operationId": "policy_explain",
            "parameters": [
                {"name": "from", "in": "query", "required": true, "schema": {"type": "string"}, "description": "the source: a container name, an endpoint id (or a unique prefix), a container id, or an address"},
                {"name": "to", "in": "query", "required": true, "schema": {"type": "string"}, "description": "the destination, as `from`"},
                {"name": "service", "in": "query", "required": true, "schema": {"type": "string"}, "description": "tcp/<port>, udp/<port>, icmp, tcp, udp or an IP protocol number"}],
            "responses": explain_r}}),
    );
    let line = schema_of::<FeedLine>(&mut g);
    let mut feed_r = error_responses(Op::Query);
    feed_r["200"] = json!({"description": "an endless stream of newline-delimited JSON, each line a FeedLine (the schema is one line's): a snapshot (unless the subscriber resumes), then changes and heartbeats; the response never ends while the subscriber reads",
        "content": {"application/x-ndjson": {"schema": line}}});
    paths.insert(
        "/api/v1/feed/".into(),
        json!({"get": {"summary": "The netplugin feed: newline-delimited JSON (snapshot, changes, heartbeats)", "operationId": "feed",
            "description": "A stream: the body does not end. A client reads it line by line and must not wait for the end; `x-streaming: true` marks it so generic clients and fuzzers leave it out.",
            "x-streaming": true,
            "parameters": [
                {"name": "from", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": i64::MAX}, "description": "resume after this revision (0: start with a snapshot); a revision this netmaster has not reached also starts with a snapshot"},
                {"name": "index", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": u32::MAX}, "description": "the last change index seen at `from`"}],
            "responses": feed_r}}),
    );
    let report = schema_of::<HostReport>(&mut g);
    let mut report_r = error_responses(Op::Write);
    report_r["204"] = json!({"description": "stored"});
    paths.insert(
        "/api/v1/feed/hosts/{host}/".into(),
        json!({"put": {"summary": "A netplugin's report (endpoints, BGP sessions, routes)", "operationId": "report",
            "parameters": [host_param()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": report}}},
            "responses": report_r}}),
    );
    paths.insert(
        "/api/v1/feed/hosts/".into(),
        plain(
            "every host's last report",
            "reports",
            ok_json(
                "the reports by host name",
                json!({"type": "object", "additionalProperties": report}),
            ),
        ),
    );
    let request = schema_of::<EndpointRequest>(&mut g);
    let request_example = json!({"endpointID": "0123456789abcdef", "tenant": "default",
        "network": "net1", "host": "host1", "containerName": "web1"});
    let allocation = schema_of::<EndpointAllocation>(&mut g);
    let mut create_r = error_responses(Op::Write);
    create_r["200"] = ok_json("the endpoint with its address", allocation);
    paths.insert(
        "/api/v1/plugin/endpoints/".into(),
        json!({"post": {"summary": "Create an endpoint and allocate its address (netplugin)", "operationId": "create_endpoint",
            "requestBody": {"required": true, "content": {"application/json": {"schema": request, "example": request_example}}},
            "responses": create_r}}),
    );
    let mut remove_r = error_responses(Op::Delete);
    remove_r["204"] = json!({"description": "removed (or was not there)"});
    paths.insert(
        "/api/v1/plugin/endpoints/{id}/".into(),
        json!({"delete": {"summary": "Remove an endpoint and release its address (netplugin)", "operationId": "remove_endpoint",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}],
            "responses": remove_r}}),
    );
    let mut collect_r = error_responses(Op::Delete);
    collect_r["400"] = error_responses(Op::Write)["400"].clone();
    collect_r["200"] = ok_json(
        "how many were collected",
        json!({"type": "object", "required": ["host", "collected"],
            "properties": {"host": {"type": "string"}, "collected": {"type": "integer", "minimum": 0}}}),
    );
    paths.insert(
        "/api/v1/plugin/hosts/{host}/collect".into(),
        json!({"post": {"summary": "Remove every endpoint of a host that is gone", "operationId": "collect_host",
            "parameters": [host_param()],
            "responses": collect_r}}),
    );
    let credential = schema_of::<contiv_model::credential::HostCredential>(&mut g);
    let mut list_r = error_responses(Op::List);
    list_r["200"] = ok_json(
        "the hosts that have a credential (names only)",
        json!({"type": "array", "items": {"type": "string"}}),
    );
    paths.insert(
        "/api/v1/credentials/hosts/".into(),
        json!({"get": {"summary": "List the hosts that have a credential (admin)", "operationId": "list_host_credentials",
            "responses": list_r}}),
    );
    let mut create_r = error_responses(Op::Write);
    create_r["201"] = ok_json(
        "the host's new token, shown this once; any older one is revoked",
        credential,
    );
    let mut remove_r = error_responses(Op::Delete);
    remove_r["400"] = error_responses(Op::Write)["400"].clone();
    remove_r["204"] = json!({"description": "revoked"});
    paths.insert(
        "/api/v1/credentials/hosts/{host}/".into(),
        json!({
            "post": {"summary": "Make a new credential for a host's netplugin (admin)", "operationId": "create_host_credential",
                "parameters": [host_param()], "responses": create_r},
            "delete": {"summary": "Revoke a host's credential (admin)", "operationId": "delete_host_credential",
                "parameters": [host_param()], "responses": remove_r}}),
    );
    let mut schemas = g.take_definitions(true);
    let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "enum": kinds},
            "message": {"type": "string"},
            "field": {"type": "string"},
            "object": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "contiv-rs netmaster", "version": env!("CARGO_PKG_VERSION"),
            "description": "Contiv's REST API: /api/v1/<plural>/<key>/ with create-or-update on POST/PUT. \
                Every operation takes a bearer credential (the `token` scheme); a netmaster that requires one \
                answers 401 without it and 403 when the credential may not do the operation. \
                Operations marked `x-streaming: true` answer a body that does not end."},
        "paths": paths,
        "security": [{"token": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                "description": "the admin token (netctl), or a host's credential (netplugin)"}},
        },
    })
}
