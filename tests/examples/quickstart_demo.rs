//! `make demo`: Contiv's quick start in routing mode on the `quickstart` fabric.
//!
//! Deploys the fabric (two FRR ToRs, two hosts) on network namespaces, starts netmaster,
//! a dockerd and a netplugin per host, and runs the quick start's commands verbatim,
//! printing each with its output, the ToRs' routes and `netctl bgp inspect` on the way;
//! then the policy part of the walkthrough (`prod_web` on group `web`), a container in
//! `web.contiv-net` serving HTTP on 80 and 8080, and db's requests to both: 80 answered,
//! 8080 dropped. Everything is torn down at the end, also on failure.

use std::process::Output;
use std::time::Duration;

use containerlab::lab::DeployOptions;
use contiv_tests::cluster::{Netmaster, docker_host, frr_routes, node_exec, wait_for};
use contiv_tests::docker::Dockerd;

const LONG: Duration = Duration::from_secs(90);

fn step(s: &str) {
    println!("\n\x1b[1m==> {s}\x1b[0m");
}

fn show(o: &Output) {
    print!("{}", String::from_utf8_lossy(&o.stdout));
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "the command failed");
}

fn docker(host: &str, d: &Dockerd, line: &str) {
    step(&format!("[{host}] {line}"));
    let args: Vec<&str> = line.split_whitespace().collect();
    show(&d.docker(&args[1..]));
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the demo creates network namespaces and daemons: run it as root");
        std::process::exit(1);
    }
    let lab = contiv_tests::fabric_lab("quickstart", "demo");
    step("contiv-lab deploy -t topologies/quickstart/quickstart.clab.yml");
    let lab = lab
        .deploy_guarded(&DeployOptions::default())
        .expect("deploy");
    for n in ["tor1", "tor2", "host1", "host2"] {
        println!("  {n}: namespace {}", lab.namespace(n).unwrap());
    }
    let tmp = tempfile::tempdir().unwrap();
    step("netmaster (embedded store, HTTPS, an admin token; a credential per host)");
    let nm = Netmaster::start();
    println!("  listening on {}", nm.url);
    let netctl = |line: &str| {
        step(line);
        print!("{}", nm.ok(line));
    };
    netctl("netctl global set --fwd-mode routing");
    netctl(
        "netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0",
    );
    netctl(
        "netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0",
    );

    let mut hosts = Vec::new();
    for (host, router) in [("host1", "10.1.1.1"), ("host2", "10.1.2.1")] {
        step(&format!("[{host}] dockerd and netplugin"));
        let (d, p) = docker_host(&lab, host, router, &nm, tmp.path());
        println!(
            "  dockerd {} (busybox imported), netplugin log {}",
            d.socket().display(),
            p.log.display()
        );
        hosts.push((host, d, p));
    }
    wait_for(
        "BGP sessions established",
        LONG,
        || {
            ["host1", "host2"]
                .iter()
                .all(|h| {
                    nm.ok(&format!("netctl bgp inspect {h}"))
                        .contains("\"neighborStatus\": \"established\"")
                })
                .then_some(())
        },
        String::new,
    );

    netctl("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    for (host, d, p) in &hosts {
        wait_for(
            "contiv-net in dockerd",
            LONG,
            || {
                String::from_utf8_lossy(&d.docker(["network", "ls"]).stdout)
                    .contains("contiv-net")
                    .then_some(())
            },
            || p.log_tail(),
        );
        docker(host, d, "docker network ls");
    }
    let (_, d1, _) = &hosts[0];
    let (_, d2, _) = &hosts[1];
    docker(
        "host1",
        d1,
        "docker run -itd --name=web --net=contiv-net busybox /bin/sh",
    );
    docker(
        "host2",
        d2,
        "docker run -itd --name=db --net=contiv-net busybox /bin/sh",
    );
    let web_ip = String::from_utf8_lossy(
        &d1.docker([
            "inspect",
            "-f",
            "{{(index .NetworkSettings.Networks \"contiv-net\").IPAddress}}",
            "web",
        ])
        .stdout,
    )
    .trim()
    .to_string();
    wait_for(
        "web's /32 on tor2",
        LONG,
        || {
            frr_routes(&lab, "tor2")
                .contains_key(&format!("{web_ip}/32"))
                .then_some(())
        },
        String::new,
    );
    step("[tor1] vtysh -c 'show ip route bgp'  (the containers' /32s, learned from the hosts)");
    show(&node_exec(&lab, "tor1", "vtysh -c 'show ip route bgp'"));
    step("[host1] ip route  (proto 200: installed by netplugin)");
    show(&node_exec(&lab, "host1", "ip route"));
    netctl("netctl bgp inspect host1");
    // Docker does not tell a network driver the container's name; netplugin learns it
    // from dockerd a moment after the container starts.
    wait_for(
        "netmaster knows db by name",
        LONG,
        || {
            nm.ok("netctl endpoint list")
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("db"))
                .then_some(())
        },
        String::new,
    );
    netctl("netctl endpoint list");
    docker("host1", d1, "docker exec web ping -c 3 db");

    // The policy part of the walkthrough, beside the quick start's running containers.
    let last_write = nm.revision();
    for line in [
        "netctl policy create prod_web",
        "netctl policy rule-add prod_web 1 -direction=in -protocol=tcp -action=deny",
        "netctl policy rule-add prod_web 2 -direction=in -protocol=tcp -port=80 -action=allow -priority=10",
        "netctl policy rule-add prod_web 3 -direction=in -protocol=tcp -port=443 -action=allow -priority=10",
        "netctl policy rule-ls prod_web",
        "netctl group create contiv-net web -policy=prod_web",
    ] {
        netctl(line);
    }
    for (_, d, p) in &hosts {
        wait_for(
            "web.contiv-net in dockerd",
            LONG,
            || {
                String::from_utf8_lossy(&d.docker(["network", "ls"]).stdout)
                    .contains("web.contiv-net")
                    .then_some(())
            },
            || p.log_tail(),
        );
    }
    step("[host1] docker run -itd --net web.contiv-net busybox /bin/sh");
    let o = d1.docker([
        "run",
        "-itd",
        "--net",
        "web.contiv-net",
        "busybox",
        "/bin/sh",
    ]);
    show(&o);
    let prod = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let short = &prod[..12.min(prod.len())];
    docker(
        "host1",
        d1,
        &format!("docker exec {short} httpd -p 80 -h /var/www"),
    );
    docker(
        "host1",
        d1,
        &format!("docker exec {short} httpd -p 8080 -h /var/www"),
    );
    let o = d1.docker([
        "exec",
        &prod,
        "sh",
        "-c",
        "echo hello from web > /var/www/index.html",
    ]);
    assert!(o.status.success(), "{o:?}");
    let prod_ip = String::from_utf8_lossy(
        &d1.docker([
            "inspect",
            "-f",
            "{{(index .NetworkSettings.Networks \"web.contiv-net\").IPAddress}}",
            &prod,
        ])
        .stdout,
    )
    .trim()
    .to_string();
    let (_, _, p1) = &hosts[0];
    let (_, _, p2) = &hosts[1];
    nm.wait_policy_after(last_write, &[p1, p2]);
    let request = |port: u16| {
        d2.docker([
            "exec",
            "db",
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {prod_ip} {port}"),
        ])
    };
    wait_for(
        "the web container's /32 reachable from db",
        LONG,
        || {
            String::from_utf8_lossy(&request(80).stdout)
                .starts_with("HTTP/1.")
                .then_some(())
        },
        || p1.log_tail(),
    );
    for (port, expect) in [(80, "allowed by rule 2"), (8080, "denied by rule 1")] {
        step(&format!(
            "[host2] docker exec db sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {prod_ip} {port}\"  ({expect})"
        ));
        let o = request(port);
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        match out.lines().next() {
            Some(status) if status.starts_with("HTTP/1.") => {
                println!("  {status}");
                println!("  => port {port}: connected, the web container answered");
                assert_eq!(port, 80, "8080 is denied, yet it answered");
            }
            _ => {
                println!("  {}", err.trim());
                println!("  => port {port}: no answer within 2 s, the connection was dropped");
                assert!(
                    port == 8080 && err.contains("timed out"),
                    "port {port}: {out}{err}"
                );
            }
        }
    }
    // Which rule decided, as netmaster explains it from the same semantics netplugin
    // compiled into the kernel.
    netctl(&format!("netctl policy explain db {prod_ip} tcp/8080"));
    let _ = d1.docker(["rm", "-f", &prod]);
    step("cleaning up: containers, dockerds, netplugins, netmaster, the fabric");
    let _ = d2.docker(["rm", "-f", "db"]);
    for (_, d, mut p) in hosts {
        p.stop();
        drop(d);
    }
    drop(nm);
    println!("\ndone.");
}
