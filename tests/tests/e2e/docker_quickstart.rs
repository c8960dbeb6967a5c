//! Contiv's quick start with real Docker on the `quickstart` fabric: a private dockerd in
//! each host's namespace (its resolver pointed at the host's netplugin), netplugin serving
//! Docker's network and IPAM drivers and creating `contiv-net` in every dockerd by
//! itself, then the quick start's commands verbatim: `docker run -itd --name=web
//! --net=contiv-net` on host1, `--name=db` on host2, and `ping db` inside `web`.

use std::time::Duration;

use contiv_tests::cluster::{Netmaster, deploy, frr_routes, quickstart_docker, wait_for};
use contiv_tests::docker::Dockerd;
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(90);

fn sh(d: &Dockerd, line: &str) -> std::process::Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(args[0], "docker", "{line}");
    d.docker(&args[1..])
}

fn ok(d: &Dockerd, line: &str) -> String {
    let o = sh(d, line);
    assert!(
        o.status.success(),
        "{line}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn docker_quick_start_verbatim() {
    if !require_root("docker_quick_start_verbatim") {
        return;
    }
    let lab = deploy("quickstart", "docker");
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    let mut hosts = quickstart_docker(&lab, &nm, tmp.path());

    // The quick start, verbatim (busybox instead of alpine: no registry here).
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    for (d, p) in &hosts {
        wait_for(
            &format!("contiv-net appears in {}'s dockerd", p.host),
            LONG,
            || {
                ok(d, "docker network ls")
                    .contains("contiv-net")
                    .then_some(())
            },
            || p.log_tail(),
        );
    }
    let (d1, p1) = &hosts[0];
    let (d2, p2) = &hosts[1];
    ok(
        d1,
        "docker run -itd --name=web --net=contiv-net busybox /bin/sh",
    );
    ok(
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
    assert!(web_ip.starts_with("20.1.1."), "web's address: {web_ip:?}");
    wait_for(
        "web's /32 on tor2",
        LONG,
        || {
            frr_routes(&lab, "tor2")
                .contains_key(&format!("{web_ip}/32"))
                .then_some(())
        },
        || p1.log_tail(),
    );
    // `ping db` inside web: Docker's resolver forwards to the host's netplugin, which
    // knows db (on the other host) by its container name.
    wait_for(
        "ping db from web",
        LONG,
        || {
            let o = sh(d1, "docker exec web ping -c 1 -W 1 db");
            (o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("1 packets received"))
            .then_some(())
        },
        || {
            let o = sh(d1, "docker exec web ping -c 1 -W 1 db");
            format!(
                "{}{}\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                nm.ok("netctl endpoint list"),
                p2.log_tail()
            )
        },
    );
    // Docker asking for a network Contiv does not have gets a clear error.
    let o = sh(
        d1,
        "docker network create -d netplugin --ipam-driver netplugin -o network=nosuch --ipam-opt network=nosuch nosuch",
    );
    assert!(
        !o.status.success(),
        "an unknown Contiv network was accepted"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nosuch") && err.contains("does not exist"),
        "{err}\n{}",
        p1.log_tail()
    );
    assert!(!ok(d1, "docker network ls").contains("nosuch"));

    // Removing the container withdraws its /32.
    ok(d2, "docker rm -f db");
    wait_for(
        "db's /32 gone from tor1",
        LONG,
        || {
            (!frr_routes(&lab, "tor1")
                .keys()
                .any(|k| k.starts_with("20.1.1.") && !k.starts_with(&format!("{web_ip}/"))))
            .then_some(())
        },
        || format!("{:?}", frr_routes(&lab, "tor1")),
    );
    // netplugin restarts under a running dockerd: Docker does not activate the plugin
    // again, the driver knows its networks from its saved state, new containers attach
    // and one made before the restart is removed cleanly.
    {
        let (d1, p1) = &mut hosts[0];
        p1.stop();
        p1.spawn();
        ok(
            d1,
            "docker run -itd --name=web2 --net=contiv-net busybox /bin/sh",
        );
        wait_for(
            "web2, started after the restart, pings web",
            LONG,
            || {
                let o = d1.docker(["exec", "web2", "ping", "-c", "1", "-W", "1", &web_ip]);
                o.status.success().then_some(())
            },
            || p1.log_tail(),
        );
        ok(d1, "docker rm -f web");
        ok(d1, "docker rm -f web2");
        let leftover = String::from_utf8_lossy(
            &contiv_tests::cluster::node_exec(&lab, "host1", "ip -o link").stdout,
        )
        .lines()
        .filter(|l| l.contains(": cv"))
        .count();
        assert_eq!(leftover, 0, "host1 still has endpoint interfaces");
    }
    for (d, mut p) in hosts {
        drop(d);
        p.stop();
    }
}
