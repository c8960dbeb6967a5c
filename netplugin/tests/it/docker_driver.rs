//! The Docker CNM remote driver + IPAM driver router, fed the JSON Docker 20.10 actually
//! sent (docs/runtimes.md), through `tower::ServiceExt::oneshot` against
//! the in-memory service. Requests go without a Content-Type, as Docker sends them, and
//! again with one.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use netplugin::cni::service::{Attachment, DOCKER_IFNAME, NetworkTarget};
use netplugin::cni::testing::FakeService;
use netplugin::docker::{DockerConfig, Scope, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const NID: &str = "4c268f227827d889aa7311c9bf757e467a6f94fe3db078818d145fc7c7b6b506";
const EID: &str = "37b15291c406820632557f14fde77864b68bb2aa0405a5c7e86e311151ff26b0";

fn fake() -> Arc<FakeService> {
    Arc::new(
        FakeService::new()
            .with_network(
                "default",
                "contiv-net",
                &[("20.1.1.0/24", Some("20.1.1.1"))],
            )
            .with_network(
                "blue",
                "dual",
                &[
                    ("20.1.4.0/24", Some("20.1.4.1")),
                    ("fd00:1:4::/64", Some("fd00:1:4::1")),
                ],
            )
            .with_network("default", "optnet", &[("20.1.3.0/24", Some("20.1.3.254"))]),
    )
}

async fn call_ct(
    r: &Router,
    method: &str,
    body: &str,
    content_type: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::post(format!("/{method}"))
        .header("Host", "")
        .header("User-Agent", "Go-http-client/1.1")
        .header("Accept", "application/vnd.docker.plugins.v1.2+json")
        .header("Content-Length", body.len());
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = r
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method}: reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, v)
}

/// Docker's framing: no Content-Type; bodies from Go's json.Encoder end with a newline.
async fn call(r: &Router, method: &str, body: &str) -> Value {
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    };
    let (status, v) = call_ct(r, method, &body, None).await;
    assert_eq!(status, StatusCode::OK, "{method}: {v}");
    v
}

async fn call_ok(r: &Router, method: &str, body: &str) -> Value {
    let v = call(r, method, body).await;
    assert!(v.get("Err").is_none(), "{method} failed: {v}");
    v
}

async fn call_err(r: &Router, method: &str, body: &str, needle: &str) {
    let v = call(r, method, body).await;
    let err = v["Err"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} did not fail: {v}"));
    assert!(err.contains(needle), "{method}: {needle:?} not in {err:?}");
}

fn net_router(svc: &Arc<FakeService>) -> Router {
    router(svc.clone(), DockerConfig::default())
}

#[tokio::test]
async fn activate_and_capabilities_with_empty_bodies() {
    let svc = fake();
    let r = net_router(&svc);
    assert_eq!(
        call_ok(&r, "Plugin.Activate", "").await,
        json!({"Implements": ["NetworkDriver", "IpamDriver"]})
    );
    assert_eq!(
        call_ok(&r, "NetworkDriver.GetCapabilities", "").await,
        json!({"Scope": "local", "ConnectivityScope": "local"})
    );
    assert_eq!(
        call_ok(&r, "IpamDriver.GetCapabilities", "").await,
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    );
    assert_eq!(
        call_ok(&r, "IpamDriver.GetDefaultAddressSpaces", "").await,
        json!({"LocalDefaultAddressSpace": "contiv-local", "GlobalDefaultAddressSpace": "contiv-global"})
    );
    let global = router(
        svc,
        DockerConfig {
            scope: Scope::Global,
            ..DockerConfig::default()
        },
    );
    assert_eq!(
        call_ok(&global, "NetworkDriver.GetCapabilities", "").await["Scope"],
        "global"
    );
}

fn create_network() -> String {
    format!(
        r#"{{"NetworkID":"{NID}","Options":{{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{}}}},"IPv4Data":[{{"AddressSpace":"LocalDefault","Gateway":"20.1.1.1/24","Pool":"20.1.1.0/24"}}],"IPv6Data":[]}}"#
    )
}

fn create_endpoint() -> String {
    format!(
        r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","Interface":{{"Address":"20.1.1.2/24","AddressIPv6":"","MacAddress":""}},"Options":{{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}}}"#
    )
}

fn join() -> String {
    format!(
        r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","SandboxKey":"/tmp/rt/docker-exec/netns/bc2e5fbe071d","Options":{{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}}}"#
    )
}

fn pair() -> String {
    format!(r#"{{"NetworkID":"{NID}","EndpointID":"{EID}"}}"#)
}

fn program_external() -> String {
    format!(
        r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","Options":{{"com.docker.network.endpoint.exposedports":[{{"Proto":6,"Port":80}},{{"Proto":17,"Port":53}},{{"Proto":6,"Port":9000}}],"com.docker.network.portmap":[{{"Proto":6,"IP":"","Port":80,"HostIP":"127.0.0.1","HostPort":18080,"HostPortEnd":18080}},{{"Proto":17,"IP":"","Port":53,"HostIP":"","HostPort":5353,"HostPortEnd":5353}}]}}}}"#
    )
}

/// The whole sequence of `docker network create`, `run`, `stop`, `network rm`.
async fn lifecycle(r: &Router, svc: &Arc<FakeService>) {
    // Docker names the network after CreateNetwork; the driver resolves it lazily.
    svc.state()
        .docker_names
        .insert(NID.into(), "contiv-net".into());
    call_ok(r, "Plugin.Activate", "").await;
    call_ok(r, "NetworkDriver.GetCapabilities", "").await;
    assert_eq!(
        call_ok(r, "NetworkDriver.CreateNetwork", &create_network()).await,
        json!({})
    );
    {
        let st = svc.state();
        let n = &st.docker_networks[NID];
        assert_eq!(n.target, None);
        assert_eq!(n.pools, vec!["20.1.1.0/24".parse().unwrap()]);
        assert_eq!(n.gateways, vec!["20.1.1.1/24".parse().unwrap()]);
    }

    let v = call_ok(r, "NetworkDriver.CreateEndpoint", &create_endpoint()).await;
    assert_eq!(v, json!({"Interface": {"MacAddress": "02:02:14:01:01:02"}}));
    {
        let st = svc.state();
        let add = st.last_add.as_ref().unwrap();
        assert_eq!(add.attachment.container_id, EID);
        assert_eq!(add.netns, None);
        assert_eq!(
            add.ips,
            vec!["20.1.1.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            add.target,
            NetworkTarget::new("default", "contiv-net", None).unwrap()
        );
        assert_eq!(add.labels["docker.network-id"], NID);
        // The resolved mapping is stored in the service.
        assert_eq!(st.docker_networks[NID].target, Some(add.target.clone()));
    }

    let v = call_ok(r, "NetworkDriver.Join", &join()).await;
    let src = v["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    assert!(src.starts_with("cc") && src.len() <= 15, "{v}");
    assert_eq!(v["InterfaceName"]["DstPrefix"], "eth");
    assert_eq!(v["Gateway"], "20.1.1.1");
    assert!(v.get("GatewayIPv6").is_none(), "{v}");
    assert!(
        v.get("StaticRoutes").is_none(),
        "default routes come from Gateway: {v}"
    );

    assert_eq!(
        call_ok(
            r,
            "NetworkDriver.ProgramExternalConnectivity",
            &program_external()
        )
        .await,
        json!({})
    );
    for _ in 0..2 {
        let v = call_ok(r, "NetworkDriver.EndpointOperInfo", &pair()).await;
        assert!(
            v["Value"]["host_veth"].as_str().unwrap().starts_with("cv"),
            "{v}"
        );
    }

    assert_eq!(
        call_ok(r, "NetworkDriver.RevokeExternalConnectivity", &pair()).await,
        json!({})
    );
    assert_eq!(call_ok(r, "NetworkDriver.Leave", &pair()).await, json!({}));
    assert_eq!(
        call_ok(r, "NetworkDriver.DeleteEndpoint", &pair()).await,
        json!({})
    );
    assert!(svc.state().endpoints.is_empty());
    // Docker repeats DeleteEndpoint after restarts: still fine.
    assert_eq!(
        call_ok(r, "NetworkDriver.DeleteEndpoint", &pair()).await,
        json!({})
    );
    assert_eq!(
        call_ok(r, "NetworkDriver.EndpointOperInfo", &pair()).await,
        json!({"Value": {}})
    );

    assert_eq!(
        call_ok(
            r,
            "NetworkDriver.DeleteNetwork",
            &format!(r#"{{"NetworkID":"{NID}"}}"#)
        )
        .await,
        json!({})
    );
    assert!(svc.state().docker_networks.is_empty());
}

#[tokio::test]
async fn network_driver_lifecycle_verbatim() {
    let svc = fake();
    lifecycle(&net_router(&svc), &svc).await;
}

#[tokio::test]
async fn requests_with_a_content_type_work_too() {
    let svc = fake();
    let r = net_router(&svc);
    svc.state()
        .docker_names
        .insert(NID.into(), "contiv-net".into());
    for ct in [
        "application/json",
        "text/plain",
        "application/vnd.docker.plugins.v1.2+json",
    ] {
        let (s, v) = call_ct(
            &r,
            "NetworkDriver.CreateNetwork",
            &create_network(),
            Some(ct),
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, json!({})));
        let (s, v) = call_ct(
            &r,
            "NetworkDriver.CreateEndpoint",
            &create_endpoint(),
            Some(ct),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["Interface"]["MacAddress"], "02:02:14:01:01:02", "{v}");
        let (_, v) = call_ct(&r, "Plugin.Activate", "", Some(ct)).await;
        assert_eq!(v["Implements"][1], "IpamDriver");
        let (_, v) = call_ct(&r, "NetworkDriver.DeleteEndpoint", &pair(), Some(ct)).await;
        assert_eq!(v, json!({}));
    }
}

#[tokio::test]
async fn mapping_survives_a_plugin_restart() {
    let svc = fake();
    svc.state()
        .docker_names
        .insert(NID.into(), "contiv-net".into());
    let first = net_router(&svc);
    call_ok(&first, "NetworkDriver.CreateNetwork", &create_network()).await;
    call_ok(&first, "NetworkDriver.CreateEndpoint", &create_endpoint()).await;
    drop(first);
    // Docker forgets nothing and replays nothing; Docker's API is not asked again.
    svc.state().docker_names.clear();
    let second = net_router(&svc);
    let v = call_ok(&second, "NetworkDriver.Join", &join()).await;
    assert_eq!(v["Gateway"], "20.1.1.1");
    let other = create_endpoint()
        .replace(
            EID,
            "ffff5291c406820632557f14fde77864b68bb2aa0405a5c7e86e311151ff26b0",
        )
        .replace("20.1.1.2/24", "20.1.1.3/24");
    let v = call_ok(&second, "NetworkDriver.CreateEndpoint", &other).await;
    assert_eq!(v["Interface"]["MacAddress"], "02:02:14:01:01:03");
}

#[tokio::test]
async fn options_and_names_select_tenant_and_group() {
    let svc = fake();
    let r = net_router(&svc);
    // The optnet variant, with Contiv options naming the network.
    let create = r#"{"NetworkID":"bd36aaaa","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"com.example.mtu":"1400","foo":"bar","network":"dual","tenant":"blue","group":"web"},"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"LocalDefault","AuxAddresses":{"a1":"20.1.3.5/24"},"Gateway":"20.1.3.254/24","Pool":"20.1.3.0/24"}],"IPv6Data":[]}"#;
    call_ok(&r, "NetworkDriver.CreateNetwork", create).await;
    let t = svc.state().docker_networks["bd36aaaa"]
        .target
        .clone()
        .unwrap();
    assert_eq!(t, NetworkTarget::new("blue", "dual", Some("web")).unwrap());
    assert_eq!(
        svc.state().docker_networks["bd36aaaa"].options["foo"],
        "bar"
    );

    // Names: web.contiv-net → group web; a tenant option applies to a name without /tenant.
    svc.state()
        .docker_names
        .insert("n2".into(), "web.contiv-net".into());
    call_ok(
        &r,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"n2","Options":{},"IPv4Data":[],"IPv6Data":[]}"#,
    )
    .await;
    call_ok(&r, "NetworkDriver.CreateEndpoint", r#"{"NetworkID":"n2","EndpointID":"e2","Interface":{"Address":"","AddressIPv6":"","MacAddress":""},"Options":{}}"#).await;
    let add = svc.state().last_add.clone().unwrap();
    assert_eq!(
        add.target,
        NetworkTarget::new("default", "contiv-net", Some("web")).unwrap()
    );

    svc.state().docker_names.insert("n3".into(), "dual".into());
    call_ok(
        &r,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"n3","Options":{"com.docker.network.generic":{"tenant":"blue"}}}"#,
    )
    .await;
    // Docker left addressing to the driver: the reply carries addresses and MAC.
    let v = call_ok(
        &r,
        "NetworkDriver.CreateEndpoint",
        r#"{"NetworkID":"n3","EndpointID":"e3","Interface":null,"Options":null}"#,
    )
    .await;
    assert_eq!(
        v,
        json!({"Interface": {"Address": "20.1.4.2/24", "AddressIPv6": "fd00:1:4::2/64", "MacAddress": "02:02:14:01:04:02"}})
    );
    assert_eq!(svc.state().last_add.as_ref().unwrap().target.tenant, "blue");
}

#[tokio::test]
async fn static_mac_and_dual_stack_variants() {
    let svc = fake();
    let r = net_router(&svc);
    call_ok(&r, "NetworkDriver.CreateNetwork", r#"{"NetworkID":"bd36","Options":{"com.docker.network.generic":{"network":"optnet"},"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"20.1.3.254/24","Pool":"20.1.3.0/24"}],"IPv6Data":[]}"#).await;
    // --ip and --mac-address: the reply must not set MacAddress.
    let v = call_ok(&r, "NetworkDriver.CreateEndpoint", r#"{"NetworkID":"bd36","EndpointID":"2c2d","Interface":{"Address":"20.1.3.200/24","AddressIPv6":"","MacAddress":"02:00:00:00:00:aa"},"Options":{"com.docker.network.endpoint.macaddress":"AgAAAACq"}}"#).await;
    assert_eq!(v, json!({}));
    let ep = svc.state().endpoints[&Attachment {
        container_id: "2c2d".into(),
        ifname: DOCKER_IFNAME.into(),
    }]
        .clone();
    assert_eq!(ep.mac.to_string(), "02:00:00:00:00:aa");
    assert_eq!(ep.ips[0].address.to_string(), "20.1.3.200/24");
    let v = call_ok(
        &r,
        "NetworkDriver.Join",
        r#"{"NetworkID":"bd36","EndpointID":"2c2d","SandboxKey":"/x","Options":{}}"#,
    )
    .await;
    assert_eq!(v["Gateway"], "20.1.3.254");

    // --ipv6 dual stack.
    call_ok(&r, "NetworkDriver.CreateNetwork", r#"{"NetworkID":"332e","Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{"network":"dual","tenant":"blue"}},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"20.1.4.1/24","Pool":"20.1.4.0/24"}],"IPv6Data":[{"AddressSpace":"LocalDefault","Gateway":"fd00:1:4::1/64","Pool":"fd00:1:4::/64"}]}"#).await;
    let v = call_ok(&r, "NetworkDriver.CreateEndpoint", r#"{"NetworkID":"332e","EndpointID":"e6","Interface":{"Address":"20.1.4.2/24","AddressIPv6":"fd00:1:4::2/64","MacAddress":""},"Options":{}}"#).await;
    assert_eq!(v, json!({"Interface": {"MacAddress": "02:02:14:01:04:02"}}));
    let v = call_ok(
        &r,
        "NetworkDriver.Join",
        r#"{"NetworkID":"332e","EndpointID":"e6","SandboxKey":"/x","Options":{}}"#,
    )
    .await;
    assert_eq!(
        (v["Gateway"].clone(), v["GatewayIPv6"].clone()),
        (json!("20.1.4.1"), json!("fd00:1:4::1"))
    );
}

#[tokio::test]
async fn ipam_verbatim() {
    let svc = fake();
    let r = net_router(&svc);
    call_ok(&r, "Plugin.Activate", "").await;
    call_ok(&r, "IpamDriver.GetCapabilities", "").await;
    call_ok(&r, "IpamDriver.GetDefaultAddressSpaces", "").await;

    // No subnet and no Contiv network named: a clear error.
    call_err(
        &r,
        "IpamDriver.RequestPool",
        r#"{"AddressSpace":"contiv-local","Pool":"","SubPool":"","Options":{},"V6":false}"#,
        "--ipam-opt network=",
    )
    .await;

    // --ipam-opt network=contiv-net
    let v = call_ok(&r, "IpamDriver.RequestPool", r#"{"AddressSpace":"contiv-local","Pool":"","SubPool":"","Options":{"network":"contiv-net"},"V6":false}"#).await;
    assert_eq!(
        v,
        json!({"PoolID": "contiv-net|20.1.1.0/24", "Pool": "20.1.1.0/24", "Data": {}})
    );
    let v = call_ok(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#).await;
    assert_eq!(v, json!({"Address": "20.1.1.1/24", "Data": {}}));

    // --subnet of an existing network, with --ip-range, --gateway and --ipam-opt.
    let v = call_ok(&r, "IpamDriver.RequestPool", r#"{"AddressSpace":"contiv-local","Pool":"20.1.4.0/24","SubPool":"20.1.4.64/26","Options":{"k1":"v1"},"V6":false}"#).await;
    assert_eq!(v["PoolID"], "dual/blue|20.1.4.0/24");
    assert_eq!(
        svc.state().last_pool_request.as_ref().unwrap().sub_pool,
        Some("20.1.4.64/26".parse().unwrap())
    );
    let v = call_ok(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"dual/blue|20.1.4.0/24","Address":"20.1.4.1","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#).await;
    assert_eq!(v["Address"], "20.1.4.1/24");
    let v = call_ok(&r, "IpamDriver.RequestPool", r#"{"AddressSpace":"contiv-local","Pool":"fd00:1:4::/64","SubPool":"","Options":{"k1":"v1"},"V6":true}"#).await;
    assert_eq!(v["PoolID"], "dual/blue|fd00:1:4::/64");
    let v = call_ok(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"dual/blue|fd00:1:4::/64","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#).await;
    assert_eq!(v["Address"], "fd00:1:4::1/64");

    // docker run --ip 20.1.4.70 (with the MAC option Docker adds when asked for it)
    let v = call_ok(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"dual/blue|20.1.4.0/24","Address":"20.1.4.70","Options":{"com.docker.network.endpoint.macaddress":"02:42:b4:ec:ba:3f"}}"#).await;
    assert_eq!(v, json!({"Address": "20.1.4.70/24", "Data": {}}));
    assert_eq!(
        svc.state()
            .last_address_request
            .as_ref()
            .unwrap()
            .mac
            .unwrap()
            .to_string(),
        "02:42:b4:ec:ba:3f"
    );
    let v = call_ok(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"dual/blue|fd00:1:4::/64","Address":"","Options":{"com.docker.network.endpoint.macaddress":"02:42:b4:ec:ba:3f"}}"#).await;
    assert_eq!(v["Address"], "fd00:1:4::2/64");
    // Any free one.
    let v = call_ok(
        &r,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"","Options":{}}"#,
    )
    .await;
    assert_eq!(v["Address"], "20.1.1.2/24");

    // docker rm -f, docker network rm
    assert_eq!(
        call_ok(
            &r,
            "IpamDriver.ReleaseAddress",
            r#"{"PoolID":"dual/blue|20.1.4.0/24","Address":"20.1.4.70"}"#
        )
        .await,
        json!({})
    );
    assert!(
        !svc.state()
            .ipam_reserved
            .contains(&"20.1.4.70".parse().unwrap())
    );
    assert_eq!(
        call_ok(
            &r,
            "IpamDriver.ReleaseAddress",
            r#"{"PoolID":"dual/blue|20.1.4.0/24","Address":"20.1.4.1"}"#
        )
        .await,
        json!({})
    );
    assert_eq!(
        call_ok(
            &r,
            "IpamDriver.ReleasePool",
            r#"{"PoolID":"dual/blue|20.1.4.0/24"}"#
        )
        .await,
        json!({})
    );
    assert_eq!(
        call_ok(
            &r,
            "IpamDriver.ReleaseAddress",
            r#"{"PoolID":"dual/blue|fd00:1:4::/64","Address":"fd00:1:4::1"}"#
        )
        .await,
        json!({})
    );
    assert_eq!(
        call_ok(
            &r,
            "IpamDriver.ReleasePool",
            r#"{"PoolID":"dual/blue|fd00:1:4::/64"}"#
        )
        .await,
        json!({})
    );
    assert_eq!(svc.state().pools.len(), 1);
}

#[tokio::test]
async fn every_call_rejects_bad_json() {
    let svc = fake();
    let r = net_router(&svc);
    for method in [
        "NetworkDriver.CreateNetwork",
        "NetworkDriver.DeleteNetwork",
        "NetworkDriver.AllocateNetwork",
        "NetworkDriver.FreeNetwork",
        "NetworkDriver.CreateEndpoint",
        "NetworkDriver.DeleteEndpoint",
        "NetworkDriver.EndpointOperInfo",
        "NetworkDriver.Join",
        "NetworkDriver.Leave",
        "NetworkDriver.DiscoverNew",
        "NetworkDriver.DiscoverDelete",
        "NetworkDriver.ProgramExternalConnectivity",
        "NetworkDriver.RevokeExternalConnectivity",
        "IpamDriver.RequestPool",
        "IpamDriver.ReleasePool",
        "IpamDriver.RequestAddress",
        "IpamDriver.ReleaseAddress",
    ] {
        let short = method.split('.').nth(1).unwrap();
        call_err(&r, method, "{\"NetworkID\": ", "cannot decode").await;
        call_err(&r, method, "{\"NetworkID\": ", short).await;
        call_err(&r, method, "", "empty").await;
        call_err(&r, method, "\"text\"", short).await;
    }
    // Unknown methods: 404 with an Err body.
    let (s, v) = call_ct(&r, "NetworkDriver.Frobnicate", "{}", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["Err"].as_str().unwrap().contains("Frobnicate"), "{v}");
}

#[tokio::test]
async fn semantic_errors_per_call() {
    let svc = fake();
    let r = net_router(&svc);
    // CreateNetwork: invalid Contiv options, bad pool.
    call_err(
        &r,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"x","Options":{"com.docker.network.generic":{"group":"web"}}}"#,
        "without option network",
    )
    .await;
    call_err(
        &r,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"x","Options":{"com.docker.network.generic":{"network":"no such"}}}"#,
        "network name",
    )
    .await;
    call_err(
        &r,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"x","IPv4Data":[{"Pool":"20.1.1.0/33"}]}"#,
        "20.1.1.0/33",
    )
    .await;
    // CreateEndpoint on a network nobody knows, on one whose name is not Contiv's,
    // on one created without options and without a name, and on an unknown Contiv network.
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint(),
        "is unknown",
    )
    .await;
    svc.state()
        .docker_names
        .insert(NID.into(), "bad name!".into());
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint(),
        "not a Contiv network name",
    )
    .await;
    svc.state().docker_names.clear();
    call_ok(&r, "NetworkDriver.CreateNetwork", &create_network()).await;
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint(),
        "-o network=",
    )
    .await;
    svc.state().docker_names.insert(NID.into(), "nosuch".into());
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint(),
        "has no network nosuch",
    )
    .await;
    // The (unvalidated) mapping was stored; a network that appears later in Contiv
    // would work. Re-point it for the next cases.
    svc.state().docker_networks.get_mut(NID).unwrap().target = None;
    svc.state()
        .docker_names
        .insert(NID.into(), "contiv-net".into());
    // Bad addresses and MACs from Docker.
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint().replace("20.1.1.2/24", "300.1.1.2/24"),
        "300.1.1.2",
    )
    .await;
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint().replace(r#""MacAddress":"""#, r#""MacAddress":"zz""#),
        "MAC",
    )
    .await;
    call_err(
        &r,
        "NetworkDriver.CreateEndpoint",
        &create_endpoint().replace("20.1.1.2/24", "10.0.0.2/8"),
        "outside",
    )
    .await;
    // Join / EndpointOperInfo for an endpoint never created.
    call_err(&r, "NetworkDriver.Join", &join(), "unknown to netplugin").await;
    // netplugin down: errors name it.
    svc.state().ready = false;
    call_err(&r, "NetworkDriver.DeleteEndpoint", &pair(), "unavailable").await;
    call_err(&r, "NetworkDriver.EndpointOperInfo", &pair(), "not ready").await;
    call_err(
        &r,
        "NetworkDriver.DeleteNetwork",
        &format!(r#"{{"NetworkID":"{NID}"}}"#),
        "not ready",
    )
    .await;
    svc.state().ready = true;

    // IPAM: bad pool ids, unknown networks, conflicts, exhaustion.
    call_err(
        &r,
        "IpamDriver.RequestPool",
        r#"{"Pool":"","Options":{"network":"nosuch"},"V6":false}"#,
        "nosuch",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.RequestPool",
        r#"{"Pool":"99.0.0.0/8","Options":{},"V6":false}"#,
        "99.0.0.0/8",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.RequestPool",
        r#"{"Pool":"20.1.1.0/24","Options":{"network":"optnet"},"V6":false}"#,
        "does not match",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.RequestPool",
        r#"{"Pool":"nonsense","Options":{},"V6":false}"#,
        "nonsense",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.ReleasePool",
        r#"{"PoolID":"pylocal/20.2.2.0/24"}"#,
        "not one of this driver's",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"garbage","Address":""}"#,
        "garbage",
    )
    .await;
    call_err(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"20.1.1.9","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#, "has gateway 20.1.1.1").await;
    call_err(
        &r,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"x.y"}"#,
        "x.y",
    )
    .await;
    call_err(&r, "IpamDriver.RequestAddress", r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"","Options":{"com.docker.network.endpoint.macaddress":"nope"}}"#, "MAC").await;
    call_ok(
        &r,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"20.1.1.5"}"#,
    )
    .await;
    call_err(
        &r,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"20.1.1.5"}"#,
        "in use",
    )
    .await;
    call_err(
        &r,
        "IpamDriver.ReleaseAddress",
        r#"{"PoolID":"contiv-net|20.1.1.0/24","Address":"bogus"}"#,
        "bogus",
    )
    .await;

    let tiny = Arc::new(FakeService::new().with_network(
        "default",
        "t",
        &[("20.9.9.0/30", Some("20.9.9.1"))],
    ));
    let rt = net_router(&tiny);
    call_ok(
        &rt,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"t|20.9.9.0/30","Address":""}"#,
    )
    .await;
    call_err(
        &rt,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"t|20.9.9.0/30","Address":""}"#,
        "no free address",
    )
    .await;
}

/// Docker's exact framing over a real unix socket: `Host: ""`, no Content-Type, empty
/// bodies with `Content-Length: 0`, and JSON bodies ending in a newline.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn docker_framing_over_a_unix_socket() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins/netplugin.sock");
    let listener = netplugin::cni::server::bind_unix(&path).unwrap();
    let svc = fake();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(netplugin::cni::server::serve(
        listener,
        net_router(&svc),
        async {
            let _ = rx.await;
        },
    ));
    let p = path.clone();
    let replies = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (method, body) in [
            ("Plugin.Activate", String::new()),
            (
                "NetworkDriver.CreateNetwork",
                format!("{}\n", create_network()),
            ),
        ] {
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            let req = format!(
                "POST /{method} HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\n\
                 Content-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            out.push(netplugin::cni::client::parse_reply(&raw).unwrap());
        }
        out
    })
    .await
    .unwrap();
    assert_eq!(replies[0].status, 200);
    let v: Value = serde_json::from_slice(&replies[0].body).unwrap();
    assert_eq!(v["Implements"], json!(["NetworkDriver", "IpamDriver"]));
    assert_eq!(
        (replies[1].status, replies[1].body.as_slice()),
        (200, &b"{}"[..])
    );
    assert!(svc.state().docker_networks.contains_key(NID));
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
