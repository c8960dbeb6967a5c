//! The nftables policy path against a real kernel: a "host" namespace routing between
//! two "container" namespaces over veths named like ours, the ruleset compiled from a
//! policy view and committed by the policy manager through `nft`. Real connections
//! decide: the seed's walkthrough (80 open, 8080 closed), an established connection
//! outliving a new deny, forged sources dropped, counters kept across a whole rewrite,
//! a foreign table untouched, a failed transaction changing nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use containerlab::testing::require_root;
use contiv_model::Rule;
use contiv_model::policy::{self as semantics, RuleSpec};
use netplugin::endpoint::HostNs;
use netplugin::managers::PolicyManager;
use netplugin::nl::in_netns;
use netplugin::policy::compile::{ENCAPSULATED, ISOLATED, SPOOFED, counter_of};
use netplugin::policy::driver::{NftCli, NftDriver};
use netplugin::policy::nft::Op;
use netplugin::policy::{LocalEndpoint, PolicyView, compile};

/// Namespaces `<tag>-h`, `<tag>-c1`, `<tag>-c2`: c1 is 10.9.1.2 behind cv1, c2 is
/// 10.9.2.2 behind cv2, the host routes between them. Deleted on drop.
struct Lab {
    tag: String,
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .output()
        .unwrap()
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let tag = format!("pol{tag}{}", std::process::id());
        let lab = Lab { tag: tag.clone() };
        let (h, c1, c2) = (lab.ns("h"), lab.ns("c1"), lab.ns("c2"));
        for n in [&h, &c1, &c2] {
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        for (i, c) in [(1, &c1), (2, &c2)] {
            let veth = format!("cv{i}");
            ip(&[
                "-n", &h, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", c,
            ]);
            ip(&[
                "-n",
                c,
                "link",
                "set",
                "eth0",
                "address",
                &format!("02:02:0a:09:0{i}:02"),
            ]);
            ip(&[
                "-n",
                &h,
                "addr",
                "add",
                &format!("10.9.{i}.1/24"),
                "dev",
                &veth,
            ]);
            ip(&[
                "-n",
                c,
                "addr",
                "add",
                &format!("10.9.{i}.2/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &h, "link", "set", &veth, "up"]);
            ip(&["-n", c, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                c,
                "route",
                "add",
                "default",
                "via",
                &format!("10.9.{i}.1"),
            ]);
        }
        ip(&[
            "netns",
            "exec",
            &h,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // Outside: another interface of the host, 10.9.100.2 behind up0, and the
        // host's route to another tenant's 10.8.0.0/16 through it.
        let ext = lab.ns("ext");
        ip(&["netns", "add", &ext]);
        for (ns, cmd) in [
            (&h, "link add up0 type veth peer name eth0 netns EXT"),
            (&h, "addr add 10.9.100.1/24 dev up0"),
            (&ext, "addr add 10.9.100.2/24 dev eth0"),
            (&h, "link set up0 up"),
            (&ext, "link set eth0 up"),
            (&ext, "link set lo up"),
            (&ext, "route add default via 10.9.100.1"),
            (&h, "route add 10.8.0.0/16 via 10.9.100.2"),
        ] {
            let args: Vec<&str> = ["-n", ns.as_str()]
                .into_iter()
                .chain(
                    cmd.split(' ')
                        .map(|w| if w == "EXT" { ext.as_str() } else { w }),
                )
                .collect();
            ip(&args);
        }
        lab
    }

    fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.tag)
    }

    fn path(&self, n: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(self.ns(n))
    }

    /// A listener on `port` inside `n`, answering each connection with its data echoed.
    fn serve(&self, n: &str, port: u16) {
        let l = in_netns(&self.path(n), move || {
            Ok(TcpListener::bind(("0.0.0.0", port))?)
        })
        .unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }

    /// A connection from `n` (optionally from `source`) to `to`, or `None` within 2 s.
    fn connect(&self, n: &str, source: Option<&str>, to: &str) -> Option<TcpStream> {
        let to: SocketAddr = to.parse().unwrap();
        let source: Option<IpAddr> = source.map(|s| s.parse().unwrap());
        in_netns(&self.path(n), move || {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            if let Some(s) = source {
                sock.bind(&SocketAddr::new(s, 0).into())?;
            }
            Ok(sock
                .connect_timeout(&to.into(), Duration::from_secs(2))
                .ok()
                .map(|()| TcpStream::from(sock)))
        })
        .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in ["h", "c1", "c2", "ext"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
    }
}

fn echoes(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4];
    s.write_all(b"ping").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

fn rule(id: &str, f: impl FnOnce(&mut Rule)) -> RuleSpec {
    let mut r = Rule {
        rule_id: id.into(),
        policy_name: "prod_web".into(),
        tenant_name: "default".into(),
        direction: "in".into(),
        action: "allow".into(),
        ..Rule::default()
    };
    f(&mut r);
    RuleSpec::parse(&r).unwrap()
}

fn view(rules: Vec<RuleSpec>) -> PolicyView {
    let mut rules = rules;
    semantics::order(&mut rules);
    PolicyView {
        revision: 1,
        networks: [
            (
                ("default".to_string(), "contiv-net".to_string()),
                "10.9.0.0/16".parse().unwrap(),
            ),
            (
                ("blue".to_string(), "contiv-net".to_string()),
                "10.8.0.0/16".parse().unwrap(),
            ),
        ]
        .into(),
        groups: [(("default".to_string(), "web".to_string()), Arc::new(rules))].into(),
        ..PolicyView::default()
    }
}

fn endpoints() -> BTreeMap<String, LocalEndpoint> {
    let ep = |i: u8, group: Option<&str>| LocalEndpoint {
        ifname: format!("cv{i}"),
        address: format!("10.9.{i}.2").parse().unwrap(),
        mac: format!("02:02:0a:09:0{i}:02"),
        tenant: "default".into(),
        group: group.map(str::to_string),
    };
    [
        ("c1".to_string(), ep(1, None)),
        ("c2".to_string(), ep(2, Some("web"))),
    ]
    .into()
}

fn walkthrough() -> Vec<RuleSpec> {
    vec![
        rule("1", |r| {
            r.protocol = "tcp".into();
            r.action = "deny".into();
        }),
        rule("2", |r| {
            r.protocol = "tcp".into();
            r.port = 80;
            r.priority = 10;
        }),
    ]
}

#[test]
fn policy_is_enforced_statefully_by_the_kernel() {
    if !require_root("policy_is_enforced_statefully_by_the_kernel") {
        return;
    }
    let lab = Lab::new("a");
    let h = lab.ns("h");
    // Someone else's table, before and after everything we do.
    let foreign = "add table inet foreign\nadd set inet foreign keep { type ipv4_addr; }\n\
        add element inet foreign keep { 192.0.2.1 }\n\
        add chain inet foreign fw { type filter hook forward priority 10; policy accept; }\n\
        add rule inet foreign fw ip saddr @keep counter drop\n";
    let o = Command::new("ip")
        .args(["netns", "exec", &h, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(foreign.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success());
    let foreign_now = || {
        String::from_utf8_lossy(&nft(&h, &["list", "table", "inet", "foreign"]).stdout).into_owned()
    };
    let foreign_before = foreign_now();
    lab.serve("c2", 80);
    lab.serve("c2", 8080);

    let mut m = PolicyManager::new(NftCli::new(HostNs(Some(lab.path("h")))));
    // The web group without rules yet: everything connects; conntrack is on.
    m.set_desired(compile(&view(vec![]), &endpoints()).ruleset);
    assert!(m.apply().unwrap().resynced);
    let mut early = lab
        .connect("c1", None, "10.9.2.2:8080")
        .expect("8080 open without rules");
    assert!(echoes(&mut early));

    // The walkthrough's rules: 80 connects, 8080 does not, the open connection stays.
    let c = compile(&view(walkthrough()), &endpoints());
    m.set_desired(c.ruleset.clone());
    let pass = m.apply().unwrap();
    assert!(pass.committed && !pass.resynced, "{pass:?}");
    assert!(
        lab.connect("c1", None, "10.9.2.2:80").is_some(),
        "80 is allowed"
    );
    assert!(
        lab.connect("c1", None, "10.9.2.2:8080").is_none(),
        "8080 is denied"
    );
    assert!(
        lab.connect("c1", None, "10.9.2.2:80").is_some(),
        "80 still allowed after"
    );
    assert!(
        echoes(&mut early),
        "an established connection outlives a new deny"
    );
    // web opens a connection out and gets its replies (c1 serves on 9000).
    lab.serve("c1", 9000);
    let mut out = lab
        .connect("c2", None, "10.9.1.2:9000")
        .expect("web connects out");
    assert!(echoes(&mut out));

    // Counters count, and survive a whole rewrite.
    let counters = || m_counters(&lab);
    let deny = counter_of(&rule("1", |r| {
        r.protocol = "tcp".into();
        r.action = "deny".into();
    }));
    let before = counters()[&("inet".to_string(), deny.clone())];
    assert!(before.packets >= 1, "{before:?}");
    // The first resync after changes writes whole once (counters carried over); one
    // that reads back what that left writes nothing.
    m.request_resync();
    assert!(m.apply().unwrap().resynced);
    assert_eq!(counters()[&("inet".to_string(), deny.clone())], before);
    m.request_resync();
    assert!(!m.apply().unwrap().committed);
    // Drift (someone flushed our source checks) is repaired by a whole rewrite, and
    // the counters keep counting through it.
    assert!(
        nft(&h, &["flush", "chain", "inet", "contiv", "pre"])
            .status
            .success()
    );
    m.request_resync();
    assert!(m.apply().unwrap().resynced);
    assert_eq!(counters()[&("inet".to_string(), deny.clone())], before);
    let pre = String::from_utf8_lossy(&nft(&h, &["list", "chain", "inet", "contiv", "pre"]).stdout)
        .into_owned();
    assert!(pre.contains("@src4"), "{pre}");

    // A forged source is dropped at the veth and counted; the real one still works.
    ip(&[
        "-n",
        &lab.ns("c1"),
        "addr",
        "add",
        "10.9.1.99/24",
        "dev",
        "eth0",
    ]);
    assert!(
        lab.connect("c1", Some("10.9.1.99"), "10.9.2.2:80")
            .is_none()
    );
    assert!(lab.connect("c1", Some("10.9.1.2"), "10.9.2.2:80").is_some());
    assert!(counters()[&("inet".to_string(), SPOOFED.to_string())].packets >= 1);

    // A transaction the kernel refuses changes nothing: the old ruleset stays whole.
    let mut bad = c.ruleset.clone();
    bad.tables
        .get_mut("inet")
        .unwrap()
        .chains
        .get_mut("pre")
        .unwrap()
        .rules
        .push("this is not nftables".into());
    m.set_desired(bad);
    assert!(m.apply().is_err());
    assert!(
        lab.connect("c1", None, "10.9.2.2:8080").is_none(),
        "still denied"
    );
    assert!(
        lab.connect("c1", None, "10.9.2.2:80").is_some(),
        "still allowed"
    );

    // A transaction the kernel itself refuses (an element that is not there to delete)
    // takes nothing of what came before it in the same transaction.
    let mut cli = NftCli::new(HostNs(Some(lab.path("h"))));
    let refused = cli.commit(&[
        Op::AddElements {
            family: "inet".into(),
            name: "local4".into(),
            map: false,
            elements: vec!["10.9.7.7".into()],
        },
        Op::DeleteElements {
            family: "inet".into(),
            name: "local4".into(),
            map: false,
            elements: vec!["10.9.8.8".into()],
        },
    ]);
    assert!(refused.is_err());
    let local4 =
        String::from_utf8_lossy(&nft(&h, &["list", "set", "inet", "contiv", "local4"]).stdout)
            .into_owned();
    assert!(!local4.contains("10.9.7.7"), "{local4}");

    // From outside (another interface of the host): an address of this host's own
    // containers is refused as a source; another tenant's address meets only rules
    // naming a prefix (the allow of port 80 names none); our own tenant connects.
    let drops = |c: &str| counters()[&("inet".to_string(), c.to_string())].packets;
    assert!(
        lab.connect("ext", None, "10.9.2.2:80").is_some(),
        "same tenant"
    );
    let spoofed = drops(SPOOFED);
    ip(&[
        "-n",
        &lab.ns("ext"),
        "addr",
        "add",
        "10.9.1.2/32",
        "dev",
        "eth0",
    ]);
    assert!(
        lab.connect("ext", Some("10.9.1.2"), "10.9.2.2:80")
            .is_none()
    );
    assert!(
        drops(SPOOFED) > spoofed,
        "a local container's address from outside"
    );
    let isolated = drops(ISOLATED);
    ip(&[
        "-n",
        &lab.ns("ext"),
        "addr",
        "add",
        "10.8.0.2/32",
        "dev",
        "eth0",
    ]);
    assert!(
        lab.connect("ext", Some("10.8.0.2"), "10.9.2.2:80")
            .is_none()
    );
    assert!(drops(ISOLATED) > isolated, "another tenant's address");
    assert!(
        lab.connect("ext", None, "10.9.2.2:80").is_some(),
        "same tenant still"
    );

    // A container cannot have the host decapsulate a packet for it (the inner packet
    // would arrive past the veth's checks).
    let encapsulated = drops(ENCAPSULATED);
    in_netns(&lab.path("c1"), || {
        let raw = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(4)),
        )?;
        // An inner IPv4 header: 10.9.9.9 → 10.9.2.2, ICMP.
        let inner = [
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 9, 9, 9, 10, 9, 2, 2,
        ];
        let to: SocketAddr = "10.9.1.1:0".parse().unwrap();
        raw.send_to(&inner, &to.into())?;
        Ok(())
    })
    .unwrap();
    wait_until(|| drops(ENCAPSULATED) > encapsulated);

    // Rules gone: 8080 opens again and their counters are swept.
    m.set_desired(compile(&view(vec![]), &endpoints()).ruleset);
    m.apply().unwrap();
    assert!(
        lab.connect("c1", None, "10.9.2.2:8080").is_some(),
        "re-opened"
    );
    assert!(!counters().contains_key(&("inet".to_string(), deny)));
    assert!(counters().contains_key(&("inet".to_string(), ISOLATED.to_string())));
    assert_eq!(
        foreign_now(),
        foreign_before,
        "the foreign table is untouched"
    );
}

fn m_counters(lab: &Lab) -> BTreeMap<(String, String), netplugin::policy::driver::Count> {
    NftCli::new(HostNs(Some(lab.path("h")))).counters().unwrap()
}

/// Waits (up to 5 s) for a counter the kernel updates as the packet goes through.
fn wait_until(f: impl Fn() -> bool) {
    for _ in 0..50 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the condition never held");
}
