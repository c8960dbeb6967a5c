//! netplugin's `/metrics`: `promtool check metrics` accepts it, and Debian's Prometheus
//! scrapes it and sees the host's BGP session established and its endpoint.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, deploy, free_port, http_get, wait_for,
};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The quick start on host1 with one endpoint (CNI ADD done). Fields drop in order: the
/// container, netplugin, netmaster, the state directory, then the lab.
struct Host1 {
    /// The CNI ADD's output (the endpoint's result).
    added: std::process::Output,
    _c: ContainerNs,
    p1: Netplugin,
    nm: Netmaster,
    tmp: tempfile::TempDir,
    lab: containerlab::lab::LabGuard,
}

fn host1_with_an_endpoint(tag: &str, id: &str) -> Host1 {
    let lab = deploy("quickstart", tag);
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let c = ContainerNs::new(&format!("{}-{id}", lab.namespace("host1").unwrap()));
    let o = p1.cni(
        "ADD",
        id,
        &c.path(),
        "eth0",
        &p1.netconf("contiv-net", None),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    Host1 {
        added: o,
        _c: c,
        p1,
        nm,
        tmp,
        lab,
    }
}

#[test]
fn prometheus_scrapes_netplugin() {
    if !require_root("prometheus_scrapes_netplugin") {
        return;
    }
    let h = host1_with_an_endpoint("metrics", "m");
    let (lab, nm, p1, tmp, o) = (&h.lab, &h.nm, &h.p1, &h.tmp, &h.added);

    let addr = wait_for(
        "the metrics address in the log",
        LONG,
        || p1.metrics_addr(),
        || p1.log_tail(),
    );
    let text = wait_for(
        "session established in /metrics",
        LONG,
        || {
            let t = http_get(addr, "/metrics")?;
            t.contains("netplugin_bgp_session_established{neighbor=\"10.1.1.0\"} 1")
                .then_some(t)
        },
        || http_get(addr, "/metrics").unwrap_or_default(),
    );
    for want in [
        "netplugin_endpoints 1",
        "netplugin_bgp_originated_prefixes 1",
        "netplugin_bgp_prefixes_received{neighbor=\"10.1.1.0\"}",
        "netplugin_bgp_updates_received_total{neighbor=\"10.1.1.0\"}",
        "netplugin_fib_routes",
        "netplugin_reconcile_duration_seconds_bucket",
        "netplugin_endpoint_operations_total{op=\"add\"} 1",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }

    // promtool's linter accepts the exposition.
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scrapes it.
    let port = free_port();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: netplugin\n    static_configs: [ {{ targets: ['{addr}'] }} ]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prom = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus"),
    );
    let prom: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let answer = wait_for(
        "Prometheus has scraped netplugin_bgp_session_established = 1",
        Duration::from_secs(90),
        || {
            let body = http_get(
                prom,
                "/api/v1/query?query=netplugin_bgp_session_established",
            )?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let r = &v["data"]["result"][0];
            (r["value"][1] == "1").then(|| r.clone())
        },
        || {
            format!(
                "{:?}\n{}",
                http_get(prom, "/api/v1/targets"),
                std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default()
            )
        },
    );
    assert_eq!(answer["metric"]["neighbor"], "10.1.1.0", "{answer}");

    // Switching host1 to host-block advertisement changes what it announces without
    // resetting its session: tor1 gets the block, the /32 goes.
    let ip = String::from_utf8_lossy(&o.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&ip).unwrap();
    let ep = v["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let routes = |tor: &str| contiv_tests::cluster::frr_routes(lab, tor);
    wait_for(
        "the /32 on tor1",
        LONG,
        || {
            routes("tor1")
                .contains_key(&format!("{ep}/32"))
                .then_some(())
        },
        || p1.log_tail(),
    );
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0 --advertise=host-block --host-block=20.1.1.0/28");
    wait_for(
        "the host block replaces the /32 on tor1",
        LONG,
        || {
            let r = routes("tor1");
            (r.contains_key("20.1.1.0/28") && !r.contains_key(&format!("{ep}/32"))).then_some(())
        },
        || format!("{:?}", routes("tor1")),
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&nm.ok("netctl bgp inspect host1")).unwrap();
    assert_eq!(inspect["Oper"]["neighbors"][0]["flaps"], 0, "{inspect}");

    // An agent started with a forwarding mode that disagrees with the fabric says so.
    let p2 = Netplugin::start_with_args(lab, "host2", nm, tmp.path(), &["--fwd-mode", "bridge"]);
    wait_for(
        "host2's netplugin reports the disagreement",
        LONG,
        || {
            std::fs::read_to_string(&p2.log)
                .unwrap_or_default()
                .contains("was started with --fwd-mode bridge but the fabric's forwarding mode is routing")
                .then_some(())
        },
        || p2.log_tail(),
    );
}

/// The sum of a metric's samples whose labels contain `labels` (every sample: `""`).
fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An idle agent does no work: once its session is up, its routes learned and its
/// endpoint programmed, nothing changes, so the reconciler runs no pass but the periodic
/// resync (30 s) and the reporter sends no more than its periodic report (3 s). Counted over an
/// idle window — a machine of any speed can only do fewer, never more. (A reconciler
/// that woke itself, as one did on a routes watch it never marked seen, ran hundreds of
/// passes and sent five reports a second.)
#[test]
fn an_idle_agent_does_no_work() {
    if !require_root("an_idle_agent_does_no_work") {
        return;
    }
    let h = host1_with_an_endpoint("idle", "i");
    let (nm, p1) = (&h.nm, &h.p1);
    let addr = wait_for(
        "the metrics address in the log",
        LONG,
        || p1.metrics_addr(),
        || p1.log_tail(),
    );
    // Up, routes learned from tor1, and the start-up hold over.
    wait_for(
        "session up with learned routes, hold over",
        LONG,
        || {
            let t = http_get(addr, "/metrics")?;
            (t.contains("netplugin_bgp_session_established{neighbor=\"10.1.1.0\"} 1")
                && metric_sum(&t, "netplugin_bgp_prefixes_received", "10.1.1.0") > 0.0
                && metric_sum(&t, "netplugin_fib_holding_learned", "") == 0.0)
                .then_some(())
        },
        || http_get(addr, "/metrics").unwrap_or_default(),
    );
    let passes = |t: &str| metric_sum(t, "netplugin_reconcile_duration_seconds_count", "");
    let reports = |t: &str| {
        metric_sum(
            t,
            "netmaster_http_requests_total",
            "route=\"/api/v1/feed/hosts/",
        )
    };
    let before = (
        passes(&http_get(addr, "/metrics").unwrap()),
        reports(&nm.get("/metrics").unwrap()),
    );
    std::thread::sleep(Duration::from_secs(6));
    let after = (
        passes(&http_get(addr, "/metrics").unwrap()),
        reports(&nm.get("/metrics").unwrap()),
    );
    let (p, r) = (after.0 - before.0, after.1 - before.1);
    assert!(
        p <= 1.0,
        "{p} reconcile passes in 6 idle seconds (at most one resync expected); log:\n{}",
        p1.log_tail()
    );
    assert!(
        r <= 3.0,
        "{r} host reports in 6 idle seconds (one every 3 s expected); log:\n{}",
        p1.log_tail()
    );
}
