//! Policy enforced in routing mode end to end, on the `quickstart` fabric (real FRR ToRs,
//! a netplugin process per host, containers attached through the real CNI plugin): the
//! walkthrough's commands verbatim through netctl, then rules changed live, rules by
//! peer (group, network, address) and by direction, tenants, forged sources, a foreign
//! nftables table beside ours, and a netplugin restart.
//!
//! Every "does not connect" is a TCP connection whose SYN went unanswered within 2 s (a
//! drop, never a refusal), checked once the hosts report the ruleset of the intent as it
//! is ([`Netmaster::wait_policy`]) and next to a connection that is made between the same
//! two containers; the servers answer on their own loopback first, so a closed port is
//! never a server that is not there.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use contiv_tests::cluster::{
    ContainerNs, Netmaster, Netplugin, deploy, nft_ruleset, nft_table, node_exec, wait_for,
};
use contiv_tests::probe::{Conn, Outcome, Servers, connect, open};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);

/// The quick start's intent and a netplugin on each host. Fields drop in order:
/// netplugins, netmaster, state, then the lab.
struct Cluster {
    p1: Netplugin,
    p2: Netplugin,
    nm: Netmaster,
    _tmp: tempfile::TempDir,
    lab: containerlab::lab::LabGuard,
}

/// Deploys the fabric, gives netmaster the quick start's intent, runs `before` on the
/// lab (netplugin not started yet), then starts both netplugins.
fn cluster(tag: &str, before: impl FnOnce(&containerlab::Lab)) -> Cluster {
    let lab = deploy("quickstart", tag);
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254 --pkt-tag=1001");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");
    before(&lab);
    let p1 = Netplugin::start(&lab, "host1", &nm, tmp.path());
    let p2 = Netplugin::start(&lab, "host2", &nm, tmp.path());
    Cluster {
        p1,
        p2,
        nm,
        _tmp: tmp,
        lab,
    }
}

/// The walkthrough's policy commands, verbatim.
const WALKTHROUGH: &[&str] = &[
    "netctl policy create prod_web",
    "netctl policy rule-add prod_web 1 -direction=in -protocol=tcp -action=deny",
    "netctl policy rule-add prod_web 2 -direction=in -protocol=tcp -port=80 -action=allow -priority=10",
    "netctl policy rule-add prod_web 3 -direction=in -protocol=tcp -port=443 -action=allow -priority=10",
    "netctl group create contiv-net web -policy=prod_web",
];

fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an IP address"), port)
}

/// A container namespace named after its host's lab namespace.
fn container(c: &Cluster, host: &str, name: &str) -> ContainerNs {
    ContainerNs::new(&format!("{}-{name}", c.lab.namespace(host).unwrap()))
}

impl Cluster {
    /// Both hosts' rulesets and the ends of both logs, for failure messages.
    fn diagnostics(&self) -> String {
        format!(
            "--- host1 nft ---\n{}\n--- host2 nft ---\n{}\n--- host1 log ---\n{}\n--- host2 log ---\n{}",
            nft_ruleset(&self.lab, "host1"),
            nft_ruleset(&self.lab, "host2"),
            self.p1.log_tail(),
            self.p2.log_tail()
        )
    }

    /// Runs netctl commands, then waits until both hosts have the resulting ruleset.
    fn change(&self, lines: &[&str]) {
        self.nm.change(lines, &[&self.p1, &self.p2]);
    }

    /// Waits until both hosts have a ruleset from an intent revision above `after`.
    fn wait_policy_after(&self, after: i64) -> Vec<serde_json::Value> {
        self.nm.wait_policy_after(after, &[&self.p1, &self.p2])
    }

    /// Waits (routes and ruleset converging) until `from` connects to `ip:port`.
    fn converge(&self, from: &ContainerNs, ip: &str, port: u16) {
        let to = sock(ip, port);
        let path = Path::new(&from.path()).to_path_buf();
        wait_for(
            &format!("{} connects to {to}", from.name),
            LONG,
            || (connect(&path, to) == Outcome::Connected).then_some(()),
            || format!("last: {:?}\n{}", connect(&path, to), self.diagnostics()),
        );
    }

    /// From `from` to `ip`: every port of `open` connects, then every port of `closed`
    /// times out (dropped), then the `open` ones connect again — all once, no retry.
    fn expect(&self, what: &str, from: &ContainerNs, ip: &str, open: &[u16], closed: &[u16]) {
        let path = Path::new(&from.path()).to_path_buf();
        let mut seen = Vec::new();
        let mut bad = false;
        for (round, ports, want) in [
            (1, open, Outcome::Connected),
            (2, closed, Outcome::TimedOut),
            (3, open, Outcome::Connected),
        ] {
            for &p in ports {
                let got = connect(&path, sock(ip, p));
                bad |= got != want;
                seen.push(format!("round {round}: {}:{p} {got:?} (want {want:?})", ip));
            }
        }
        assert!(
            !bad,
            "{what}: from {}:\n{}\n{}",
            from.name,
            seen.join("\n"),
            self.diagnostics()
        );
    }

    /// `host`'s rule counters (`r_...` names) in `table inet contiv`.
    fn rule_counters(&self, host: &str) -> std::collections::BTreeSet<String> {
        nft_table(&self.lab, host, "inet", "contiv")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("counter r_"))
            .map(|rest| format!("r_{}", rest.trim_end_matches(" {").trim()))
            .collect()
    }
}

/// The first value under `key` in a JSON document, at any depth.
fn find_key<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

/// Servers listening in `c` on `ports`, checked to answer on the container's own
/// loopback (which no policy sees), so a port that does not connect from outside is
/// dropped on the way, never missing.
fn serve(c: &ContainerNs, ports: &[u16]) -> Servers {
    let s = Servers::start(Path::new(&c.path()), ports);
    for &p in ports {
        assert_eq!(
            connect(Path::new(&c.path()), sock("127.0.0.1", p)),
            Outcome::Connected,
            "{}'s own server on port {p}",
            c.name
        );
    }
    s
}

/// A table of someone else's, with a set and a rule, made before netplugin starts.
const FOREIGN: &str = "nft add table inet foreign \
    && nft add set inet foreign blocked '{ type ipv4_addr; elements = { 192.0.2.1 } ; }' \
    && nft add chain inet foreign input '{ type filter hook input priority 10 ; policy accept ; }' \
    && nft add rule inet foreign input ip saddr @blocked counter drop";

#[test]
fn policy_walkthrough_enforced_and_changed_live() {
    if !require_root("policy_walkthrough_enforced_and_changed_live") {
        return;
    }
    let mut c = cluster("pol", |lab| {
        let o = node_exec(lab, "host1", FOREIGN);
        assert!(o.status.success(), "{o:?}");
    });
    let foreign = nft_table(&c.lab, "host1", "inet", "foreign").expect("the foreign table");
    let foreign_intact = |when: &str| {
        assert_eq!(
            nft_table(&c.lab, "host1", "inet", "foreign").as_deref(),
            Some(foreign.as_str()),
            "the foreign table changed {when}"
        );
    };

    // The walkthrough, verbatim.
    for l in WALKTHROUGH {
        c.nm.ok(l);
    }
    let web = container(&c, "host1", "web");
    let client = container(&c, "host2", "client");
    let local = container(&c, "host1", "local");
    let web_ip =
        c.p1.add_in(&web, "web", "default", "contiv-net", Some("web"));
    let client_ip =
        c.p2.add_in(&client, "client", "default", "contiv-net", None);
    let last = c.nm.revision();
    let _local_ip = c.p1.add_in(&local, "local", "default", "contiv-net", None);
    let _web_srv = serve(&web, &[80, 443, 8080]);
    let _client_srv = serve(&client, &[9000]);

    c.converge(&client, &web_ip, 80);
    let reports = c.wait_policy_after(last);
    assert_eq!(reports[0]["rules"], 3, "host1: {}", reports[0]);
    assert_eq!(reports[0]["endpoints"], 1, "host1: {}", reports[0]);
    assert_eq!(reports[1]["endpoints"], 0, "host2: {}", reports[1]);
    c.expect("the walkthrough", &client, &web_ip, &[80, 443], &[8080]);
    c.expect(
        "the walkthrough, same host",
        &local,
        &web_ip,
        &[80, 443],
        &[8080],
    );
    // web opens connections out and gets the replies; ICMP passes both ways.
    c.converge(&web, &client_ip, 9000);
    assert!(client.pings(&web_ip), "client pings web");
    assert!(web.pings(&client_ip), "web pings client");
    let denied = c.p1.metric(
        "netplugin_policy_rule_packets_total",
        &["tenant=\"default\"", "policy=\"prod_web\"", "rule=\"1\""],
    );
    assert!(denied > 0.0, "rule 1's counter on host1: {denied}");
    foreign_intact("by the walkthrough");

    // Removing the deny re-opens 8080, and its counter is swept from our table.
    let counters = c.rule_counters("host1");
    assert_eq!(counters.len(), 3, "{counters:?}\n{}", c.diagnostics());
    c.change(&["netctl policy rule-rm prod_web 1"]);
    c.expect("rule 1 removed", &client, &web_ip, &[80, 443, 8080], &[]);
    let after = c.rule_counters("host1");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.is_subset(&counters), "{after:?} vs {counters:?}");
    let swept: Vec<_> = counters.difference(&after).collect();
    let table = nft_table(&c.lab, "host1", "inet", "contiv").unwrap_or_default();
    assert!(
        !table.contains(swept[0].as_str()),
        "{swept:?} is still in the table:\n{table}"
    );
    assert_eq!(
        c.p1.metric(
            "netplugin_policy_rule_packets_total",
            &["policy=\"prod_web\"", "rule=\"1\""]
        ),
        0.0,
        "rule 1 still in /metrics"
    );
    foreign_intact("by a rule removed");

    // A connection opened while 8080 is allowed keeps running once it is denied again
    // (rules judge new connections); new ones fail.
    let mut conn: Conn = open(Path::new(&client.path()), sock(&web_ip, 8080))
        .unwrap_or_else(|o| panic!("opening 8080: {o:?}"));
    conn.exchange("before").unwrap();
    c.change(&[WALKTHROUGH[1]]);
    conn.exchange("after the deny")
        .unwrap_or_else(|e| panic!("the established connection: {e}\n{}", c.diagnostics()));
    c.expect("rule 1 back", &client, &web_ip, &[80, 443], &[8080]);
    conn.exchange("still").unwrap();
    drop(conn);

    // Priorities: a deny on 80 above the allow wins; an allow at the same priority does
    // not (deny first); removing the deny leaves the allows.
    c.change(&[
        "netctl policy rule-add prod_web 4 -direction=in -protocol=tcp -port=80 -action=deny -priority=20",
    ]);
    c.expect("deny 80 at 20", &client, &web_ip, &[443], &[80, 8080]);
    c.change(&[
        "netctl policy rule-add prod_web 5 -direction=in -protocol=tcp -port=80 -action=allow -priority=20",
    ]);
    c.expect(
        "deny and allow 80 at 20",
        &client,
        &web_ip,
        &[443],
        &[80, 8080],
    );
    c.change(&["netctl policy rule-rm prod_web 4"]);
    c.expect("allow 80 at 20", &client, &web_ip, &[80, 443], &[8080]);
    c.change(&["netctl policy rule-rm prod_web 5"]);

    // The group's policy swapped live, and back.
    c.change(&[
        "netctl policy create prod_alt",
        "netctl policy rule-add prod_alt 1 -direction=in -protocol=tcp -port=443 -action=deny",
        "netctl group create contiv-net web -policy=prod_alt",
    ]);
    c.expect("prod_alt", &client, &web_ip, &[80, 8080], &[443]);
    c.change(&["netctl group create contiv-net web -policy=prod_web"]);
    c.expect("prod_web again", &client, &web_ip, &[80, 443], &[8080]);
    foreign_intact("by the changes");

    // A restart neither opens nor closes anything: while host1's netplugin is down and
    // while it starts, its kernel keeps the ruleset (checked from the container on the
    // same host: the other host's routes to web go with the BGP session).
    let before = c.rule_counters("host1");
    let revision = c.nm.host_report("host1")["policy"]["revision"]
        .as_i64()
        .unwrap_or(0);
    c.p1.stop();
    assert_eq!(c.rule_counters("host1"), before, "{}", c.diagnostics());
    c.expect(
        "host1's netplugin down",
        &local,
        &web_ip,
        &[80, 443],
        &[8080],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let path = Path::new(&local.path()).to_path_buf();
        let ip = web_ip.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push((80, connect(&path, sock(&ip, 80))));
                seen.push((8080, connect(&path, sock(&ip, 8080))));
            }
            seen
        })
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c.p1.spawn();
    c.nm.wait_policy_since(since, revision, &[&c.p1]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let wrong: Vec<_> = seen
        .iter()
        .filter(|(p, o)| {
            (*p == 80 && *o != Outcome::Connected) || (*p == 8080 && *o != Outcome::TimedOut)
        })
        .collect();
    assert!(
        wrong.is_empty() && seen.len() >= 2,
        "during the restart: {wrong:?} of {} probes\n{}",
        seen.len(),
        c.diagnostics()
    );
    c.converge(&client, &web_ip, 80);
    c.expect("after the restart", &client, &web_ip, &[80, 443], &[8080]);
    assert_eq!(c.rule_counters("host1"), before);
    foreign_intact("by a netplugin restart");
}

#[test]
fn policy_rules_by_peer_and_direction() {
    if !require_root("policy_rules_by_peer_and_direction") {
        return;
    }
    let c = cluster("polpeer", |_| {});
    c.nm.ok("netctl net create other-net --subnet=20.1.2.0/24 --gateway=20.1.2.254");
    c.nm.ok("netctl group create contiv-net clients");
    for l in WALKTHROUGH {
        c.nm.ok(l);
    }
    let web = container(&c, "host1", "web");
    let member = container(&c, "host2", "member");
    let plain = container(&c, "host2", "plain");
    let other = container(&c, "host2", "other");
    let web_ip =
        c.p1.add_in(&web, "web", "default", "contiv-net", Some("web"));
    let _member_ip =
        c.p2.add_in(&member, "member", "default", "contiv-net", Some("clients"));
    let plain_ip = c.p2.add_in(&plain, "plain", "default", "contiv-net", None);
    let last = c.nm.revision();
    let _other_ip = c.p2.add_in(&other, "other", "default", "other-net", None);
    let _web_srv = serve(&web, &[80, 8080]);
    let _plain_srv = serve(&plain, &[9000, 9001]);
    for from in [&member, &plain, &other] {
        c.converge(from, &web_ip, 80);
    }
    c.wait_policy_after(last);
    for from in [&member, &plain, &other] {
        c.expect("the walkthrough", from, &web_ip, &[80], &[8080]);
    }

    // From a group: its members, wherever they are, and only they.
    c.change(&[
        "netctl policy rule-add prod_web 4 -direction=in -protocol=tcp -port=8080 -from-group=clients -action=allow -priority=20",
    ]);
    c.expect("from-group", &member, &web_ip, &[80, 8080], &[]);
    c.expect("from-group, not a member", &plain, &web_ip, &[80], &[8080]);
    c.expect("from-group, not a member", &other, &web_ip, &[80], &[8080]);
    // A member that joins later, on web's own host, is let in too.
    let late = container(&c, "host1", "late");
    let last = c.nm.revision();
    c.p1.add_in(&late, "late", "default", "contiv-net", Some("clients"));
    c.wait_policy_after(last);
    c.converge(&late, &web_ip, 80);
    c.expect("from-group, a new member", &late, &web_ip, &[80, 8080], &[]);

    // From a network: its subnet.
    c.change(&[
        "netctl policy rule-add prod_web 5 -direction=in -protocol=tcp -port=8080 -from-network=other-net -action=allow -priority=20",
    ]);
    c.expect("from-network", &other, &web_ip, &[80, 8080], &[]);
    c.expect(
        "from-network, another network",
        &plain,
        &web_ip,
        &[80],
        &[8080],
    );

    // From an address.
    c.change(&[&format!(
        "netctl policy rule-add prod_web 6 -direction=in -protocol=tcp -port=8080 -from-ip-address={plain_ip}/32 -action=allow -priority=20"
    )]);
    c.expect("from-ip-address", &plain, &web_ip, &[80, 8080], &[]);

    // Out rules judge web's own new connections, on web's host.
    c.expect("out, before", &web, &plain_ip, &[9000, 9001], &[]);
    c.change(&[
        "netctl policy rule-add prod_web 7 -direction=out -protocol=tcp -port=9000 -action=deny",
    ]);
    c.expect("out deny 9000", &web, &plain_ip, &[9001], &[9000]);
    let counted = c.p1.metric(
        "netplugin_policy_rule_packets_total",
        &["policy=\"prod_web\"", "rule=\"7\""],
    );
    assert!(counted > 0.0, "rule 7's counter on host1: {counted}");
    // ... and leave connections to web alone.
    c.expect("out deny 9000, in", &plain, &web_ip, &[80, 8080], &[]);
    c.change(&["netctl policy rule-rm prod_web 7"]);
    c.expect("out deny removed", &web, &plain_ip, &[9000, 9001], &[]);
}

/// `ip ...` inside a container, required to succeed.
fn ip(cn: &ContainerNs, args: &str) {
    let mut all = vec!["ip"];
    all.extend(args.split_whitespace());
    let o = cn.exec(&all);
    assert!(o.status.success(), "ip {args} in {}: {o:?}", cn.name);
}

#[test]
fn policy_tenants_isolated_and_sources_verified() {
    if !require_root("policy_tenants_isolated_and_sources_verified") {
        return;
    }
    let c = cluster("poltenant", |_| {});
    for (t, subnet, gw) in [
        ("blue", "30.1.1.0/24", "30.1.1.254"),
        ("red", "30.2.1.0/24", "30.2.1.254"),
    ] {
        c.nm.ok(&format!("netctl tenant create {t}"));
        c.nm.ok(&format!(
            "netctl net create -t {t} contiv-net --subnet={subnet} --gateway={gw}"
        ));
        c.nm.ok(&format!("netctl group create -t {t} contiv-net web"));
    }
    let blue1 = container(&c, "host1", "blue1");
    let blue2 = container(&c, "host2", "blue2");
    let red1 = container(&c, "host1", "red1");
    let red2 = container(&c, "host2", "red2");
    let b1 =
        c.p1.add_in(&blue1, "blue1", "blue", "contiv-net", Some("web"));
    let b2 =
        c.p2.add_in(&blue2, "blue2", "blue", "contiv-net", Some("web"));
    let r1 = c.p1.add_in(&red1, "red1", "red", "contiv-net", Some("web"));
    let r2 = c.p2.add_in(&red2, "red2", "red", "contiv-net", Some("web"));
    let _s: Vec<Servers> = [&blue1, &blue2, &red1, &red2]
        .iter()
        .map(|cn| serve(cn, &[80]))
        .collect();

    // Each tenant lets the other in for a moment (an `in` allow before isolation), so
    // every pair is seen to connect before it is seen not to.
    c.change(&[
        "netctl policy create -t blue let-red",
        "netctl policy rule-add -t blue let-red 1 -direction=in -from-ip-address=30.2.1.0/24 -action=allow",
        "netctl group create -t blue contiv-net web -policy=let-red",
        "netctl policy create -t red let-blue",
        "netctl policy rule-add -t red let-blue 1 -direction=in -from-ip-address=30.1.1.0/24 -action=allow",
        "netctl group create -t red contiv-net web -policy=let-blue",
    ]);
    let pairs = [
        (&blue2, &b1, "blue2 → blue1", true),
        (&red2, &r1, "red2 → red1", true),
        (&blue1, &b2, "blue1 → blue2", true),
        (&blue2, &r1, "blue2 → red1", false),
        (&red2, &b1, "red2 → blue1", false),
        (&blue1, &r1, "blue1 → red1 (same host)", false),
        (&red1, &b1, "red1 → blue1 (same host)", false),
        (&red1, &b2, "red1 → blue2", false),
        (&blue2, &r2, "blue2 → red2 (same host)", false),
    ];
    for (from, to, what, _) in pairs {
        c.converge(from, to, 80);
        assert!(
            from.pings(to),
            "{what}: ping with the tenants open to each other"
        );
    }
    let isolated_before = c.p1.metric(
        "netplugin_policy_dropped_packets_total",
        &["reason=\"tenant_isolation\""],
    );
    c.change(&[
        "netctl policy rule-rm -t blue let-red 1",
        "netctl policy rule-rm -t red let-blue 1",
    ]);
    for (from, to, what, same_tenant) in pairs {
        if same_tenant {
            c.expect(what, from, to, &[80], &[]);
            assert!(from.pings(to), "{what}: ping");
        } else {
            assert_eq!(
                connect(Path::new(&from.path()), sock(to, 80)),
                Outcome::TimedOut,
                "{what}: isolated tenants\n{}",
                c.diagnostics()
            );
            assert!(!from.pings(to), "{what}: ping between isolated tenants");
        }
    }
    let isolated_after = c.p1.metric(
        "netplugin_policy_dropped_packets_total",
        &["reason=\"tenant_isolation\""],
    );
    assert!(
        isolated_after > isolated_before,
        "tenant_isolation drops on host1: {isolated_before} → {isolated_after}"
    );

    // A forged source address is dropped at the sender's veth and counted; the real one
    // passes.
    let spoofed = |p: &Netplugin| {
        p.metric(
            "netplugin_policy_dropped_packets_total",
            &["reason=\"spoofed\""],
        )
    };
    ip(&blue2, "addr add 30.1.1.200/32 dev eth0");
    let before = spoofed(&c.p2);
    let o = blue2.exec(&["ping", "-c", "1", "-W", "1", "-I", "30.1.1.200", &b1]);
    assert!(!o.status.success(), "a forged source got through: {o:?}");
    assert!(blue2.pings(&b1), "the real source is let through");
    let after = spoofed(&c.p2);
    assert!(after > before, "spoofed drops on host2: {before} → {after}");
    ip(&blue2, "addr del 30.1.1.200/32 dev eth0");
    // A forged MAC address too.
    let mac = String::from_utf8_lossy(&blue2.exec(&["cat", "/sys/class/net/eth0/address"]).stdout)
        .trim()
        .to_string();
    // The container's neighbor entries are pinned, so it sends the IP packets
    // themselves (not an ARP request, which the next check is about).
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&blue2.exec(args).stdout).unwrap_or_default()
    };
    let gw = json(&["ip", "-j", "route", "show", "default"])[0]["gateway"]
        .as_str()
        .expect("a default route via a gateway")
        .to_string();
    assert!(blue2.pings(&b1));
    let neigh = json(&["ip", "-j", "neigh", "show", "dev", "eth0"]);
    let gw_mac = neigh
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["dst"] == gw.as_str())
        .and_then(|n| n["lladdr"].as_str())
        .unwrap_or_else(|| panic!("no neighbor entry for {gw}: {neigh}"))
        .to_string();
    ip(&blue2, "link set eth0 address 02:00:00:00:be:ef");
    // (The subnet is on the link: the host answers for every address of it.)
    for n in [&gw, &b1] {
        ip(
            &blue2,
            &format!("neigh replace {n} lladdr {gw_mac} dev eth0 nud permanent"),
        );
    }
    let before = spoofed(&c.p2);
    assert!(!blue2.pings(&b1), "a forged MAC got through");
    let after = spoofed(&c.p2);
    assert!(
        after > before,
        "spoofed drops on host2: {before} → {after}\n{}\n{}\n{}\n{}",
        String::from_utf8_lossy(&blue2.exec(&["ip", "-s", "link"]).stdout),
        String::from_utf8_lossy(&blue2.exec(&["ip", "neigh"]).stdout),
        String::from_utf8_lossy(
            &node_exec(&c.lab, "host2", "ip -s link; ip neigh; ip route").stdout
        ),
        c.diagnostics()
    );
    for n in [&gw, &b1] {
        ip(&blue2, &format!("neigh del {n} dev eth0"));
    }
    ip(&blue2, &format!("link set eth0 address {mac}"));
    assert!(blue2.pings(&b1), "with its own MAC again");
    c.expect("own MAC again", &blue2, &b1, &[80], &[]);

    // ARP with a forged sender is dropped (table arp contiv) and counted.
    let arp_spoofed = |p: &Netplugin| {
        p.metric(
            "netplugin_policy_dropped_packets_total",
            &["reason=\"spoofed_arp\""],
        )
    };
    // (arping sends from an address of the interface: the forged one is added.)
    ip(&blue2, "addr add 30.1.1.201/32 dev eth0");
    let before = arp_spoofed(&c.p2);
    let arping = |src: &str| {
        blue2.exec(&[
            "busybox", "arping", "-c", "1", "-w", "1", "-I", "eth0", "-s", src, &b1,
        ])
    };
    let o = arping("30.1.1.201");
    assert!(!o.status.success(), "a forged ARP was answered: {o:?}");
    let after = arp_spoofed(&c.p2);
    ip(&blue2, "addr del 30.1.1.201/32 dev eth0");
    let o = arping(&b2);
    assert!(o.status.success(), "the real ARP is answered: {o:?}");
    assert!(
        after > before,
        "spoofed_arp drops on host2: {before} → {after}: {o:?}"
    );
    c.expect("after the forged ARP", &blue2, &b1, &[80], &[]);

    // IPv6 from a container is dropped (link-local to the host's side of the veth),
    // and counted apart from forged sources.
    let ipv6 = |p: &Netplugin| {
        p.metric(
            "netplugin_policy_dropped_packets_total",
            &["reason=\"ipv6\""],
        )
    };
    let before = ipv6(&c.p2);
    let _ = blue2.exec(&["ping", "-6", "-c", "2", "-W", "1", "ff02::1%eth0"]);
    let after = ipv6(&c.p2);
    assert!(after > before, "IPv6 from a container: {before} → {after}");
}

/// Tenants share one routing table in routing mode (the containers' /32s on the ToRs) and
/// tenant isolation tells tenants apart by their subnets, so a subnet that overlaps
/// another tenant's is refused, as one that overlaps a network of the same tenant is.
#[test]
fn overlapping_subnets_across_tenants_are_refused_in_routing_mode() {
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl net create contiv-net --subnet=20.1.1.0/24 --gateway=20.1.1.254");
    let same = nm.netctl("netctl net create spare --subnet=20.1.1.0/25");
    assert!(
        !same.status.success(),
        "an overlap in one tenant was accepted"
    );
    nm.ok("netctl tenant create blue");
    let o = nm.netctl("netctl net create -t blue contiv-net --subnet=20.1.1.0/25");
    assert!(
        !o.status.success(),
        "blue's 20.1.1.0/25 overlapping default's 20.1.1.0/24 was accepted in routing mode"
    );
}

/// `netctl bgp inspect <host>` shows the host report's policy status (the ruleset's intent
/// revision, rules, endpoints and error) as netplugin sent it.
#[test]
fn netctl_bgp_inspect_shows_the_hosts_policy_status() {
    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    // The report a netplugin sends (PUT /api/v1/feed/hosts/<host>/), with host1's
    // credential.
    let body = serde_json::json!({
        "fwdMode": "routing",
        "policy": {"revision": 7, "rules": 3, "endpoints": 1},
    })
    .to_string();
    let dir = tempfile::tempdir().unwrap();
    let link = nm.link("host1", dir.path());
    let token = std::fs::read_to_string(&link.token_file).unwrap();
    let reply = nm.call(
        "PUT",
        "/api/v1/feed/hosts/host1/",
        Some(&body),
        Some(&token),
    );
    assert!(matches!(reply, Some((204, _))), "{reply:?}");
    assert_eq!(nm.host_report("host1")["policy"]["rules"], 3);
    let inspect = nm.ok("netctl bgp inspect host1");
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("JSON");
    assert_eq!(
        find_key(&v, "policy").map(|p| (p["revision"].clone(), p["rules"].clone())),
        Some((7.into(), 3.into())),
        "netctl bgp inspect host1: {inspect}"
    );
}
