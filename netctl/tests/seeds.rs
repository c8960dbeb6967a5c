//! Every netctl command of the seed documents, verbatim, against a real netmaster; junk
//! arguments give a clear error and change nothing; exit codes scripts can rely on.

use std::net::SocketAddr;
use std::process::{Command, Output};

struct Master {
    url: String,
    rt: tokio::runtime::Runtime,
    running: Option<netmaster::server::Running>,
    _dir: tempfile::TempDir,
}

impl Master {
    fn start() -> Master {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cfg = netmaster::server::Config::embedded(addr, dir.path().to_path_buf());
        let running = rt.block_on(netmaster::server::start(cfg)).unwrap();
        Master {
            url: running.url(),
            rt,
            running: Some(running),
            _dir: dir,
        }
    }

    /// Runs netctl with a shell-like command line (split on spaces).
    fn netctl(&self, line: &str) -> Output {
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(args[0], "netctl");
        Command::new(env!("CARGO_BIN_EXE_netctl"))
            .args(&args[1..])
            .env("NETMASTER", &self.url)
            .output()
            .unwrap()
    }

    fn ok(&self, line: &str) -> String {
        let o = self.netctl(line);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            o.status.success(),
            "{line}\nexit {:?}\nstdout: {out}\nstderr: {err}",
            o.status.code()
        );
        out.into_owned()
    }

    fn fails(&self, line: &str, code: i32) -> String {
        let o = self.netctl(line);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{line}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop());
        }
    }
}

#[test]
fn the_seed_commands_work_verbatim() {
    let m = Master::start();
    // Routing mode first, as the routing quick start does.
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl global set --vlan-range 100-2094 --vxlan-range 1-10000 --arp-mode proxy");
    let info = m.ok("netctl global info");
    assert!(info.contains("Forward mode: routing"), "{info}");
    assert!(info.contains("Vlan Range: 100-2094"), "{info}");
    m.ok("netctl bgp create node1 --router-ip=50.1.1.2/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.200");
    let ls = m.ok("netctl bgp ls");
    assert!(ls.contains("node1") && ls.contains("50.1.1.200"), "{ls}");
    let inspect = m.ok("netctl bgp inspect node1");
    assert!(inspect.contains("\"neighborStatus\""), "{inspect}");
    // The quick start and the policy walk-through.
    m.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    m.ok("netctl policy create prod_web");
    m.ok("netctl policy rule-add prod_web 1 -direction=in -protocol=tcp -action=deny");
    m.ok("netctl policy rule-add prod_web 2 -direction=in -protocol=tcp -port=80 -action=allow -priority=10");
    m.ok("netctl policy rule-add prod_web 3 -direction=in -protocol=tcp -port=443 -action=allow -priority=10");
    m.ok("netctl group create contiv-net web -policy=prod_web");
    let rules = m.ok("netctl policy rule-ls prod_web");
    assert!(
        rules.contains("Incoming Rules:") && rules.contains("443"),
        "{rules}"
    );
    // The inventory's examples with short flags.
    m.ok("netctl net create -t default -e vlan -p 1001 -s 10.1.1.0/24 -g 10.1.1.254 public");
    m.ok("netctl net create -s 10.2.1.50-10.2.1.100/24 -g 10.2.1.1 -e vlan pool-net");
    m.ok("netctl policy create web-policy");
    m.ok("netctl policy rule-add web-policy 1 -d in -l tcp -j deny");
    m.ok("netctl policy rule-add web-policy 2 -d in -l tcp -P 80 -j allow -p 10");
    m.ok("netctl group create -t default public web2 -p web-policy -r 10.1.1.10-10.1.1.20");
    m.ok("netctl net create svc-net --subnet=30.1.1.0/24");
    m.ok("netctl service create app-svc --network svc-net --tenant default --selector=tier=web --port 8080:80:TCP");
    m.ok("netctl netprofile create -b 10Mbps -d 10 -s 100 gold");
    let nets = m.ok("netctl net ls");
    assert!(nets.lines().next().unwrap().starts_with("Tenant"), "{nets}");
    assert!(
        nets.contains("contiv-net") && nets.contains("1001"),
        "{nets}"
    );
    let q = m.ok("netctl net ls -q");
    assert_eq!(q.lines().count(), 4, "{q}");
    let j = m.ok("netctl group ls -j");
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    m.ok("netctl version");
    m.ok("netctl tenant ls");
    m.ok("netctl net inspect contiv-net");
    m.ok("netctl group inspect web");
    m.ok("netctl service inspect app-svc");
    m.ok("netctl netprofile ls");
    m.ok("netctl endpoint ls");
    m.ok("netctl completion bash");
}

#[test]
fn errors_are_clear_and_change_nothing() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    // Usage errors: exit 1.
    let e = m.fails("netctl net create contiv-net", 1);
    assert!(e.contains("--subnet"), "{e}");
    let e = m.fails(
        "netctl net create x --subnet=20.1.1.0/24 --gateway=banana",
        1,
    );
    assert!(e.contains("gateway"), "{e}");
    let e = m.fails("netctl policy rule-add p 1 -direction=sideways", 1);
    assert!(e.contains("direction"), "{e}");
    m.fails("netctl frobnicate", 1);
    m.fails("netctl global set", 1);
    m.fails("netctl external-contracts create x", 1);
    // Refusals by netmaster: exit 3, with its message.
    m.ok("netctl net create a --subnet=20.1.1.0/24");
    let e = m.fails("netctl net create b --subnet=20.1.1.128/25", 3);
    assert!(e.contains("overlaps"), "{e}");
    let e = m.fails("netctl group create nosuch web", 3);
    assert!(e.contains("does not exist"), "{e}");
    let nets = m.ok("netctl net ls -q");
    assert_eq!(nets, "a\n");
    // Nobody listening: exit 2.
    let o = Command::new(env!("CARGO_BIN_EXE_netctl"))
        .args(["net", "ls"])
        .env("NETMASTER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach netmaster"));
}

#[test]
fn bgp_bfd_flags() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl bgp create node1 --router-ip=50.1.1.2/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-interval 100 --bfd-multiplier 5");
    let inspect = m.ok("netctl bgp inspect node1");
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let cfg = &v["Config"];
    assert_eq!(cfg["bfd"], true, "{inspect}");
    assert_eq!(cfg["bfd-interval"], 100, "{inspect}");
    assert_eq!(cfg["bfd-multiplier"], 5, "{inspect}");
    // Defaults: only the switch is stored.
    m.ok("netctl bgp create node2 --router-ip=50.1.1.3/24 --as=65003 --neighbor-as=500 --neighbor=50.1.1.200 --bfd");
    let v: serde_json::Value = serde_json::from_str(&m.ok("netctl bgp inspect node2")).unwrap();
    assert_eq!(v["Config"]["bfd"], true);
    assert!(v["Config"].get("bfd-interval").is_none(), "{v}");
    // Out of range, or timers without --bfd: usage errors naming the field.
    let e = m.fails("netctl bgp create node3 --router-ip=50.1.1.4/24 --as=65004 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-interval 10", 1);
    assert!(
        e.contains("bfd-interval") && e.contains("50..=60000"),
        "{e}"
    );
    let e = m.fails("netctl bgp create node3 --router-ip=50.1.1.4/24 --as=65004 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-multiplier 256", 1);
    assert!(e.contains("bfd-multiplier") && e.contains("1..=255"), "{e}");
    let e = m.fails("netctl bgp create node3 --router-ip=50.1.1.4/24 --as=65004 --neighbor-as=500 --neighbor=50.1.1.200 --bfd-interval 100", 1);
    assert!(e.contains("--bfd"), "{e}");
    let ls = m.ok("netctl bgp ls -q");
    assert!(!ls.contains("node3"), "{ls}");
}

#[test]
fn bgp_bfd_auth_flags() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl bgp create node1 --router-ip=50.1.1.2/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-auth-ref tor-bfd --bfd-auth-type keyed-sha1 --bfd-auth-key-id 7");
    let v: serde_json::Value = serde_json::from_str(&m.ok("netctl bgp inspect node1")).unwrap();
    assert_eq!(
        v["Config"]["bfd-auth"],
        serde_json::json!({"secret-ref": "tor-bfd", "type": "keyed-sha1", "key-id": 7}),
        "{v}"
    );
    // The default type is meticulous keyed SHA1, key id 1.
    m.ok("netctl bgp create node2 --router-ip=50.1.1.3/24 --as=65003 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-auth-ref tor-bfd");
    let v: serde_json::Value = serde_json::from_str(&m.ok("netctl bgp inspect node2")).unwrap();
    assert_eq!(v["Config"]["bfd-auth"]["type"], "meticulous-keyed-sha1");
    assert_eq!(v["Config"]["bfd-auth"]["key-id"], 1);
    // A secret name with a path, or authentication without BFD, is refused.
    let e = m.fails("netctl bgp create node3 --router-ip=50.1.1.4/24 --as=65004 --neighbor-as=500 --neighbor=50.1.1.200 --bfd --bfd-auth-ref ../etc/shadow", 1);
    assert!(e.contains("bfd-auth.secret-ref"), "{e}");
    let e = m.fails("netctl bgp create node3 --router-ip=50.1.1.4/24 --as=65004 --neighbor-as=500 --neighbor=50.1.1.200 --bfd-auth-ref tor-bfd", 1);
    assert!(e.contains("--bfd"), "{e}");
}

/// People read these tables: their shape is held to golden files
/// (`UPDATE_GOLDEN=1` rewrites them).
#[test]
fn tables_match_their_golden_files() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    m.ok("netctl net create -e vlan -p 100 -s 10.1.1.0/24 -g 10.1.1.254 public");
    m.ok("netctl policy create prod_web");
    m.ok("netctl policy rule-add prod_web 1 -direction=in -protocol=tcp -action=deny");
    m.ok("netctl policy rule-add prod_web 2 -direction=in -protocol=tcp -port=80 -action=allow -priority=10");
    m.ok("netctl group create contiv-net web -policy=prod_web");
    m.ok("netctl bgp create node1 --router-ip=50.1.1.2/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.200");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (file, cmd) in [
        ("net-ls.txt", "netctl net ls"),
        ("group-ls.txt", "netctl group ls"),
        ("policy-rule-ls.txt", "netctl policy rule-ls prod_web"),
        ("bgp-ls.txt", "netctl bgp ls"),
        ("global-info.txt", "netctl global info"),
    ] {
        let out = m.ok(cmd);
        let path = dir.join(file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &out).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing (UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(out, want, "{cmd}");
    }
}

#[test]
fn fabric_view_and_collecting_a_dead_host() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254");
    let url = m.url.clone();
    m.rt.block_on(async move {
        let c = reqwest::Client::new();
        let ep = r#"{"endpointID":"e1","tenant":"default","network":"contiv-net","host":"node1"}"#;
        assert!(c.post(format!("{url}/api/v1/plugin/endpoints/")).body(ep).send().await.unwrap().status().is_success());
        let report = r#"{"neighbors":[{"address":"10.1.1.0","state":"established","prefixesReceived":3}],"routes":[{"prefix":"0.0.0.0/0","nexthops":["10.1.1.0","10.1.2.0"]}]}"#;
        assert!(c.put(format!("{url}/api/v1/feed/hosts/node1/")).body(report).send().await.unwrap().status().is_success());
    });
    let view = m.ok("netctl bgp routes");
    assert!(
        view.contains("established")
            && view.contains("0.0.0.0/0")
            && view.contains("10.1.1.0,10.1.2.0"),
        "{view}"
    );
    let eps = m.ok("netctl endpoint ls -q");
    assert_eq!(eps, "e1\n");
    let out = m.ok("netctl endpoint collect node1");
    assert!(out.contains("collected 1"), "{out}");
    assert_eq!(m.ok("netctl endpoint ls -q"), "");
}

#[test]
fn policy_explain_tells_what_decides_and_why() {
    let m = Master::start();
    m.ok("netctl global set --fwd-mode routing");
    m.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    m.ok("netctl policy create prod_web");
    m.ok("netctl policy rule-add prod_web 1 -direction=in -protocol=tcp -action=deny");
    m.ok("netctl policy rule-add prod_web 2 -direction=in -protocol=tcp -port=80 -action=allow -priority=10");
    m.ok("netctl policy rule-add prod_web 3 -direction=in -protocol=tcp -port=443 -action=allow -priority=10");
    m.ok("netctl group create contiv-net web -policy=prod_web");
    let url = m.url.clone();
    let (web1, c1) = m.rt.block_on(async move {
        let c = reqwest::Client::new();
        let mut ips = Vec::new();
        for (id, name, group, host) in [("ep-web1", "web1", "web", "h2"), ("ep-c1", "c1", "", "h1")] {
            let ep = serde_json::json!({"endpointID": id, "tenant": "default", "network": "contiv-net",
                                        "group": group, "host": host, "containerName": name});
            let r = c.post(format!("{url}/api/v1/plugin/endpoints/")).body(ep.to_string()).send().await.unwrap();
            assert!(r.status().is_success());
            let a: serde_json::Value = r.json().await.unwrap();
            ips.push(a["endpoint"]["ipAddress"][0].as_str().unwrap().to_string());
        }
        (ips[0].clone(), ips[1].clone())
    });
    let out = m.ok("netctl policy explain c1 web1 tcp/8080");
    assert_eq!(
        out,
        format!(
            "deny  tcp/8080 from c1 ({c1}, default/- on host h1) to web1 ({web1}, default/web on host h2)\n  \
             egress  (at c1): allow — no policy\n  \
             ingress (at web1): deny — rule default:prod_web:1 (in tcp priority 1 deny)\n  \
             (rules decide new connections; connections already established keep running)\n"
        )
    );
    let out = m.ok("netctl policy explain ep-c1 web1 tcp/80");
    assert!(
        out.starts_with("allow tcp/80 ")
            && out.contains("rule default:prod_web:2 (in tcp/80 priority 10 allow)"),
        "{out}"
    );
    let out = m.ok(&format!("netctl policy explain {c1} {web1} icmp"));
    assert!(
        out.contains(&format!("from {c1} (default/- on host h1)")),
        "{out}"
    );
    assert!(out.contains("ingress (at"), "{out}");
    assert!(out.contains("allow — no rule matched"), "{out}");
    let out = m.ok("netctl policy explain 198.51.100.7 web1 tcp/443 -json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["action"], "allow", "{out}");
    assert_eq!(v["ingressRule"]["ruleId"], "3", "{out}");
    let out = m.ok("netctl policy explain web1 198.51.100.7 udp/53");
    assert!(out.contains("(not an endpoint)"), "{out}");
    // Refusals name what was wrong.
    let e = m.fails("netctl policy explain c1 nosuch tcp/80", 3);
    assert!(e.contains("\"nosuch\""), "{e}");
    let e = m.fails("netctl policy explain c1 web1 tcp/0", 3);
    assert!(e.contains("port"), "{e}");
    // A group cannot list a policy that does not exist.
    let e = m.fails("netctl group create contiv-net web2 -policy=nosuch", 3);
    assert!(e.contains("policys/default:nosuch"), "{e}");
    // The group's inspect shows the hosts' policy status (none reported here).
    let g: serde_json::Value = serde_json::from_str(&m.ok("netctl group inspect web")).unwrap();
    assert!(g["Oper"]["policyStatus"].is_array(), "{g}");
}
