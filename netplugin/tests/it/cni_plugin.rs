//! The CNI plugin core (`handle`) against the in-memory service: every command, every
//! validation error, version conversion. No socket, no root.

use std::path::Path;

use netplugin::cni::plugin::{Blocking, CniOutput, handle};
use netplugin::cni::service::Attachment;
use netplugin::cni::testing::FakeService;
use netplugin::cni::types::CniEnv;
use proptest::prelude::*;
use serde_json::{Value, json};

const CID: &str = "97564880584d446dfb39456c157e8c5e156e5b11a03a1578a950dc23dc2e49a6";
const NETNS: &str = "/run/netns/netns-c95d2ae0-d9c4-fa99-a3d2-a3cc54e0803b";

fn fake() -> FakeService {
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
}

fn env(cmd: &str) -> CniEnv {
    CniEnv {
        command: Some(cmd.to_string()),
        container_id: Some(CID.to_string()),
        netns: Some(NETNS.to_string()),
        ifname: Some("eth0".to_string()),
        args: Some("IgnoreUnknown=1;K8S_POD_NAME=la;K8S_POD_NAMESPACE=ns1".to_string()),
        path: Some("/opt/cni/bin".to_string()),
    }
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "contiv", "type": "contiv-cni", "network": "contiv-net"})
}

fn run(svc: &FakeService, env: &CniEnv, stdin: &Value) -> CniOutput {
    let bytes = serde_json::to_vec(stdin).unwrap();
    run_raw(svc, env, &bytes)
}

fn run_raw(svc: &FakeService, env: &CniEnv, stdin: &[u8]) -> CniOutput {
    handle(env, stdin, |p: &Path| {
        assert_eq!(p, Path::new("/run/contiv/netplugin.sock"));
        Blocking(svc)
    })
}

fn out_json(o: &CniOutput) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// Asserts a CNI error with `code` whose msg or details contain `needle`.
fn assert_error(o: &CniOutput, code: u64, needle: &str) {
    assert_eq!(o.exit_code, 1, "{:?}", String::from_utf8_lossy(&o.stdout));
    let v = out_json(o);
    assert_eq!(v["code"], code, "{v}");
    let text = format!("{} {}", v["msg"], v["details"]);
    assert!(text.contains(needle), "{needle:?} not in {v}");
    assert!(v["cniVersion"].is_string(), "{v}");
}

#[test]
fn add_returns_a_1_1_0_result() {
    let svc = fake();
    let o = run(&svc, &env("ADD"), &conf("1.1.0"));
    assert_eq!(o.exit_code, 0);
    let v = out_json(&o);
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(v["interfaces"][1]["name"], "eth0");
    assert_eq!(v["interfaces"][1]["sandbox"], NETNS);
    assert_eq!(v["interfaces"][1]["mac"], "02:02:14:01:01:02");
    assert_eq!(v["interfaces"][1]["mtu"], 1500);
    assert!(
        v["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("cv")
    );
    assert_eq!(
        v["ips"],
        json!([{"interface": 1, "address": "20.1.1.2/24", "gateway": "20.1.1.1"}])
    );
    assert_eq!(v["routes"], json!([{"dst": "0.0.0.0/0", "gw": "20.1.1.1"}]));
    let st = svc.state();
    let add = st.last_add.as_ref().unwrap();
    assert_eq!(add.target.tenant, "default");
    assert_eq!(add.target.network, "contiv-net");
    assert_eq!(add.netns.as_deref(), Some(Path::new(NETNS)));
    assert_eq!(add.labels["K8S_POD_NAME"], "la");
    assert_eq!(add.labels["K8S_POD_NAMESPACE"], "ns1");
}

#[test]
fn add_is_idempotent() {
    let svc = fake();
    let a = run(&svc, &env("ADD"), &conf("1.0.0"));
    let b = run(&svc, &env("ADD"), &conf("1.0.0"));
    assert_eq!(a, b);
    assert_eq!(svc.state().endpoints.len(), 1);
}

#[test]
fn results_are_converted_to_the_requested_version() {
    for (version, has_version_field) in [
        ("0.3.0", true),
        ("0.3.1", true),
        ("0.4.0", true),
        ("1.0.0", false),
        ("1.1.0", false),
    ] {
        let svc = fake();
        let mut c = conf(version);
        c["tenant"] = json!("blue");
        c["network"] = json!("dual");
        let v = out_json(&run(&svc, &env("ADD"), &c));
        assert_eq!(v["cniVersion"], version);
        let ips = v["ips"].as_array().unwrap();
        assert_eq!(ips.len(), 2, "{v}");
        if has_version_field {
            assert_eq!(ips[0]["version"], "4", "{v}");
            assert_eq!(ips[1]["version"], "6", "{v}");
        } else {
            assert!(ips.iter().all(|i| i.get("version").is_none()), "{v}");
        }
        // `mtu` on interfaces exists from 1.1.0 on.
        assert_eq!(
            v["interfaces"][1].get("mtu").is_some(),
            version == "1.1.0",
            "{v}"
        );
        assert_eq!(ips[1]["address"], "fd00:1:4::2/64");
    }
}

#[test]
fn static_ip_and_mac_from_cni_args_runtime_config_and_args() {
    // podman: CNI_ARGS
    let svc = fake();
    let mut e = env("ADD");
    e.args = Some("IgnoreUnknown=1;K8S_POD_NAME=lb;MAC=02:00:00:00:00:bb;IP=20.1.1.50".into());
    let v = out_json(&run(&svc, &e, &conf("1.0.0")));
    assert_eq!(v["ips"][0]["address"], "20.1.1.50/24");
    assert_eq!(v["interfaces"][1]["mac"], "02:00:00:00:00:bb");

    // runtimeConfig wins over CNI_ARGS
    let svc = fake();
    let mut c = conf("1.0.0");
    c["runtimeConfig"] =
        json!({"ips": ["20.1.1.60/24"], "mac": "02:00:00:00:00:cc", "portMappings": []});
    let v = out_json(&run(&svc, &e, &c));
    assert_eq!(v["ips"][0]["address"], "20.1.1.60/24");
    assert_eq!(v["interfaces"][1]["mac"], "02:00:00:00:00:cc");

    // args.cni
    let svc = fake();
    let mut c = conf("1.0.0");
    c["args"] = json!({"cni": {"ips": ["20.1.1.70"]}});
    let v = out_json(&run(&svc, &env("ADD"), &c));
    assert_eq!(v["ips"][0]["address"], "20.1.1.70/24");
}

#[test]
fn chained_add_keeps_the_previous_result() {
    let svc = fake();
    let mut c = conf("0.4.0");
    c["prevResult"] = json!({
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "lo0"}],
        "ips": [{"version": "4", "interface": 0, "address": "10.9.9.9/32"}],
        "routes": [{"dst": "10.9.0.0/16"}],
        "dns": {"nameservers": ["10.9.9.53"]}
    });
    let v = out_json(&run(&svc, &env("ADD"), &c));
    assert_eq!(v["interfaces"][0]["name"], "lo0");
    assert_eq!(v["interfaces"][2]["name"], "eth0");
    assert_eq!(v["ips"][0]["address"], "10.9.9.9/32");
    assert_eq!(
        v["ips"][1],
        json!({"version": "4", "interface": 2, "address": "20.1.1.2/24", "gateway": "20.1.1.1"})
    );
    assert_eq!(v["routes"].as_array().unwrap().len(), 2);
    assert_eq!(v["dns"]["nameservers"][0], "10.9.9.53");

    // A broken prevResult is rejected before netplugin is asked.
    let svc = fake();
    c["prevResult"] = json!({"ips": "nope"});
    assert_error(&run(&svc, &env("ADD"), &c), 6, "prevResult");
    assert!(svc.state().calls.is_empty());
}

#[test]
fn del_succeeds_with_and_without_netns_and_for_unknown_containers() {
    let svc = fake();
    run(&svc, &env("ADD"), &conf("1.0.0"));
    let o = run(&svc, &env("DEL"), &conf("1.0.0"));
    assert_eq!((o.exit_code, o.stdout.len()), (0, 0));
    assert!(svc.state().endpoints.is_empty());
    assert_eq!(
        svc.state().last_del.as_ref().unwrap().netns.as_deref(),
        Some(Path::new(NETNS))
    );

    // containerd: empty CNI_NETNS on DEL; the container is unknown by now too.
    let mut e = env("DEL");
    e = CniEnv::from_lookup(|k| match k {
        "CNI_NETNS" => Some(String::new()),
        "CNI_COMMAND" => e.command.clone(),
        "CNI_CONTAINERID" => Some("default-c2".into()),
        "CNI_IFNAME" => e.ifname.clone(),
        "CNI_ARGS" => Some(String::new()),
        _ => None,
    });
    assert_eq!(e.netns, None);
    let mut c = conf("1.0.0");
    c["prevResult"] = json!({"cniVersion": "1.0.0", "ips": []});
    let o = run(&svc, &e, &c);
    assert_eq!((o.exit_code, o.stdout.len()), (0, 0));
    assert_eq!(svc.state().last_del.as_ref().unwrap().netns, None);
}

#[test]
fn del_succeeds_when_netplugin_is_down_and_add_says_try_again() {
    let svc = fake();
    svc.state().ready = false;
    let o = run(&svc, &env("DEL"), &conf("1.0.0"));
    assert_eq!(o.exit_code, 0);
    assert_error(&run(&svc, &env("ADD"), &conf("1.0.0")), 11, "not ready");
    assert_error(&run(&svc, &env("STATUS"), &conf("1.1.0")), 50, "not ready");
    let mut c = conf("1.1.0");
    c["cni.dev/valid-attachments"] = json!([]);
    assert_error(&run(&svc, &env("GC"), &c), 11, "try again");
}

#[test]
fn check_uses_prev_result() {
    let svc = fake();
    let add = out_json(&run(&svc, &env("ADD"), &conf("1.0.0")));
    let mut c = conf("1.0.0");
    c["prevResult"] = add.clone();
    let o = run(&svc, &env("CHECK"), &c);
    assert_eq!(
        (o.exit_code, o.stdout.len()),
        (0, 0),
        "{:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    let chk = svc.state().last_check.clone().unwrap();
    assert_eq!(chk.ips, vec!["20.1.1.2/24".parse().unwrap()]);
    assert_eq!(chk.mac.unwrap().to_string(), "02:02:14:01:01:02");

    // A 0.4.0 prevResult (with `version` on ips) reads too.
    let mut c = conf("0.4.0");
    let mut prev = add.clone();
    prev["ips"][0]["version"] = json!("4");
    c["prevResult"] = prev;
    assert_eq!(run(&svc, &env("CHECK"), &c).exit_code, 0);

    // A wrong address in prevResult fails, with the service's reason.
    let mut bad = add.clone();
    bad["ips"][0]["address"] = json!("20.1.1.99/24");
    let mut c = conf("1.0.0");
    c["prevResult"] = bad;
    assert_error(&run(&svc, &env("CHECK"), &c), 7, "20.1.1.99");

    // After DEL the container is unknown: code 3.
    run(&svc, &env("DEL"), &conf("1.0.0"));
    let mut c = conf("1.0.0");
    c["prevResult"] = add;
    assert_error(&run(&svc, &env("CHECK"), &c), 3, "no endpoint");
}

#[test]
fn check_without_prev_result_is_code_7() {
    assert_error(
        &run(&fake(), &env("CHECK"), &conf("1.0.0")),
        7,
        "prevResult",
    );
}

#[test]
fn check_needs_0_4_0_and_status_gc_need_1_1_0() {
    let svc = fake();
    assert_error(&run(&svc, &env("CHECK"), &conf("0.3.1")), 1, "0.4.0");
    assert_error(&run(&svc, &env("STATUS"), &conf("1.0.0")), 1, "1.1.0");
    assert_error(&run(&svc, &env("GC"), &conf("1.0.0")), 1, "1.1.0");
}

#[test]
fn status_and_gc() {
    let svc = fake();
    let o = run(&svc, &env("STATUS"), &conf("1.1.0"));
    assert_eq!((o.exit_code, o.stdout.len()), (0, 0));

    run(&svc, &env("ADD"), &conf("1.1.0"));
    let mut other = env("ADD");
    other.container_id = Some("other".into());
    run(&svc, &other, &conf("1.1.0"));
    assert_eq!(svc.state().endpoints.len(), 2);

    let mut c = conf("1.1.0");
    c["cni.dev/valid-attachments"] = json!([{"containerID": CID, "ifname": "eth0"}]);
    let o = run(
        &svc,
        &CniEnv {
            command: Some("GC".into()),
            ..CniEnv::default()
        },
        &c,
    );
    assert_eq!((o.exit_code, o.stdout.len()), (0, 0));
    let keys: Vec<Attachment> = svc.state().endpoints.keys().cloned().collect();
    assert_eq!(
        keys,
        vec![Attachment {
            container_id: CID.into(),
            ifname: "eth0".into()
        }]
    );
    // libcni's alternative key works as well.
    let mut c = conf("1.1.0");
    c["cni.dev/attachments"] = json!([]);
    assert_eq!(run(&svc, &env("GC"), &c).exit_code, 0);
    assert!(svc.state().endpoints.is_empty());
    // GC without the list is an invalid config.
    assert_error(
        &run(&svc, &env("GC"), &conf("1.1.0")),
        7,
        "valid-attachments",
    );
}

#[test]
fn version_lists_supported_versions() {
    let svc = fake();
    let e = CniEnv {
        command: Some("VERSION".into()),
        ..CniEnv::default()
    };
    let o = run_raw(&svc, &e, br#"{"cniVersion":"1.0.0"}"#);
    assert_eq!(o.exit_code, 0);
    let v = out_json(&o);
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // Old runtimes send nothing.
    let v = out_json(&run_raw(&svc, &e, b""));
    assert_eq!(v["cniVersion"], "1.1.0");
    assert!(
        svc.state().calls.is_empty(),
        "VERSION must not call netplugin"
    );
}

#[test]
fn missing_environment_is_code_4() {
    let svc = fake();
    assert_error(
        &run(&svc, &CniEnv::default(), &conf("1.0.0")),
        4,
        "CNI_COMMAND",
    );
    assert_error(&run(&svc, &env("FROB"), &conf("1.0.0")), 4, "FROB");
    for (cmd, field) in [
        ("ADD", "CNI_CONTAINERID"),
        ("ADD", "CNI_IFNAME"),
        ("ADD", "CNI_NETNS"),
        ("DEL", "CNI_CONTAINERID"),
        ("DEL", "CNI_IFNAME"),
        ("CHECK", "CNI_NETNS"),
    ] {
        let mut e = env(cmd);
        match field {
            "CNI_CONTAINERID" => e.container_id = None,
            "CNI_IFNAME" => e.ifname = None,
            _ => e.netns = None,
        }
        let mut c = conf("1.0.0");
        c["prevResult"] = json!({"cniVersion": "1.0.0"});
        assert_error(&run(&svc, &e, &c), 4, field);
    }
    assert!(svc.state().calls.is_empty());
}

#[test]
fn invalid_environment_values_are_code_4() {
    let svc = fake();
    let mut e = env("ADD");
    e.container_id = Some("-bad id".into());
    assert_error(&run(&svc, &e, &conf("1.0.0")), 4, "CNI_CONTAINERID");
    for bad in ["a/b", "eth0:1", "a very long name!", ".", "e th"] {
        let mut e = env("ADD");
        e.ifname = Some(bad.into());
        assert_error(&run(&svc, &e, &conf("1.0.0")), 4, "CNI_IFNAME");
    }
    let mut e = env("ADD");
    e.args = Some("FOO=bar".into());
    assert_error(&run(&svc, &e, &conf("1.0.0")), 4, "FOO");
    e.args = Some("IgnoreUnknown=1;IP=not-an-ip".into());
    assert_error(&run(&svc, &e, &conf("1.0.0")), 4, "IP");
    e.args = Some("novalue".into());
    assert_error(&run(&svc, &e, &conf("1.0.0")), 4, "novalue");
}

#[test]
fn bad_configurations() {
    let svc = fake();
    assert_error(&run_raw(&svc, &env("ADD"), b"{not json"), 6, "decode");
    assert_error(&run_raw(&svc, &env("ADD"), b""), 6, "decode");
    assert_error(
        &run(
            &svc,
            &env("ADD"),
            &json!({"cniVersion": 1, "name": "x", "type": "t"}),
        ),
        6,
        "decode",
    );
    assert_error(
        &run(&svc, &env("ADD"), &json!({"name": "x", "type": "t"})),
        7,
        "cniVersion",
    );
    let o = run(&svc, &env("ADD"), &conf("0.2.0"));
    assert_error(&o, 1, "0.2.0");
    assert_error(&o, 1, "1.1.0");
    assert_error(
        &run(
            &svc,
            &env("ADD"),
            &json!({"cniVersion": "1.0.0", "type": "t"}),
        ),
        7,
        "name",
    );
    assert_error(
        &run(
            &svc,
            &env("ADD"),
            &json!({"cniVersion": "1.0.0", "name": "-x", "type": "t"}),
        ),
        7,
        "name",
    );
    assert_error(
        &run(
            &svc,
            &env("ADD"),
            &json!({"cniVersion": "1.0.0", "name": "x"}),
        ),
        7,
        "type",
    );
    let mut c = conf("1.0.0");
    c["tenant"] = json!("bad tenant");
    assert_error(&run(&svc, &env("ADD"), &c), 7, "tenant");
    let mut c = conf("1.0.0");
    c["runtimeConfig"] = json!({"ips": ["nope"]});
    assert_error(&run(&svc, &env("ADD"), &c), 7, "runtimeConfig.ips");
    assert!(svc.state().calls.is_empty());
}

#[test]
fn service_errors_map_to_codes() {
    let svc = fake();
    // Unknown network: code 7 naming it.
    let mut c = conf("1.0.0");
    c["network"] = json!("nosuch");
    assert_error(&run(&svc, &env("ADD"), &c), 7, "nosuch");
    // Address outside the subnet: code 7.
    let mut e = env("ADD");
    e.args = Some("IP=10.0.0.1".into());
    assert_error(&run(&svc, &e, &conf("1.0.0")), 7, "10.0.0.1");
    // Exhausted: code 100.
    let tiny = FakeService::new().with_network(
        "default",
        "contiv-net",
        &[("20.9.9.0/30", Some("20.9.9.1"))],
    );
    let o = run(&tiny, &env("ADD"), &conf("1.0.0"));
    assert_eq!(o.exit_code, 0);
    let mut e2 = env("ADD");
    e2.container_id = Some("second".into());
    assert_error(&run(&tiny, &e2, &conf("1.0.0")), 100, "no free address");
}

#[test]
fn socket_comes_from_the_configuration() {
    let svc = fake();
    let mut c = conf("1.0.0");
    c["netplugin_socket"] = json!("/tmp/other.sock");
    let mut seen = None;
    let o = handle(&env("ADD"), &serde_json::to_vec(&c).unwrap(), |p: &Path| {
        seen = Some(p.to_path_buf());
        Blocking(&svc)
    });
    assert_eq!(o.exit_code, 0);
    assert_eq!(seen.as_deref(), Some(Path::new("/tmp/other.sock")));
}

proptest! {
    /// Whatever the runtime sends, the plugin answers with exit 0 or a CNI error object.
    #[test]
    fn never_panics(
        cmd in prop::sample::select(vec!["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", "X"]),
        stdin in prop::collection::vec(any::<u8>(), 0..200),
        args in ".{0,40}",
        ifname in ".{0,20}",
    ) {
        let svc = fake();
        let e = CniEnv {
            command: Some(cmd.to_string()),
            container_id: Some("c1".into()),
            netns: Some("/proc/1/ns/net".into()),
            ifname: Some(ifname),
            args: Some(args),
            path: None,
        };
        let o = run_raw(&svc, &e, &stdin);
        if o.exit_code != 0 {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            prop_assert!(v["code"].is_u64());
            prop_assert!(v["msg"].is_string());
        }
    }

    /// The same with structurally valid configurations carrying arbitrary field values.
    #[test]
    fn never_panics_on_json(
        version in prop::sample::select(vec!["0.3.0", "0.4.0", "1.0.0", "1.1.0", "9"]),
        network in ".{0,10}",
        prev in prop::option::of(prop::sample::select(vec![
            json!({"ips": [{"address": "x"}]}),
            json!({"interfaces": [{"name": "eth0", "sandbox": "/x", "mac": "zz"}]}),
            json!([1, 2]),
            json!({"interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"interface": 7, "address": "1.2.3.4/8"}]}),
        ])),
        cmd in prop::sample::select(vec!["ADD", "DEL", "CHECK", "GC"]),
    ) {
        let svc = fake();
        let mut c = json!({"cniVersion": version, "name": "n", "type": "t", "network": network});
        if let Some(p) = prev { c["prevResult"] = p; }
        let o = run(&svc, &env(cmd), &c);
        prop_assert!(o.exit_code == 0 || o.exit_code == 1);
    }
}
