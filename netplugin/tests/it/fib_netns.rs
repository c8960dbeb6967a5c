//! The rtnetlink FIB driver against a real kernel, inside network namespaces the tests
//! create (and always delete): ECMP routes in one batch, read-back, mark and sweep that
//! never touches a route of another protocol, per-route errors.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use containerlab::testing::require_root;
use ipnet::IpNet;
use netplugin::fib::netlink::NetlinkFib;
use netplugin::fib::{FibDriver, FibOp, RTPROT_CONTIV, Route, RouteSet, route_set};

/// A namespace with two "uplinks" (a veth pair, both ends inside) on which the gateways
/// 10.0.1.2 and 10.0.2.2 are on-link. Deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("fibtest-{tag}-{}", std::process::id());
        let ns = Netns(name.clone());
        ns.ip(&["netns", "add", &name]);
        for cmd in [
            "link set lo up",
            "link add up1 type veth peer name up2",
            "addr add 10.0.1.1/24 dev up1",
            "addr add 10.0.2.1/24 dev up2",
            "addr add 2001:db8:1::1/64 dev up1 nodad",
            "link set up1 up",
            "link set up2 up",
        ] {
            let args: Vec<&str> = ["-n", &name].into_iter().chain(cmd.split(' ')).collect();
            ns.ip(&args);
        }
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    fn routes(&self, proto: &str) -> String {
        self.ip(&["-n", &self.0, "route", "show", "proto", proto])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn ecmp_routes_are_installed_read_back_and_swept() {
    if !require_root("ecmp_routes_are_installed_read_back_and_swept") {
        return;
    }
    let ns = Netns::new("ecmp");
    // A route of someone else, on a prefix we also use and on one we do not.
    ns.ip(&[
        "-n",
        &ns.0,
        "route",
        "add",
        "192.168.10.0/24",
        "via",
        "10.0.1.2",
        "proto",
        "static",
        "metric",
        "100",
    ]);
    ns.ip(&[
        "-n",
        &ns.0,
        "route",
        "add",
        "192.168.99.0/24",
        "via",
        "10.0.2.2",
        "proto",
        "bird",
    ]);
    let mut fib = NetlinkFib::open_in_netns(&ns.path()).unwrap();
    assert!(fib.installed().unwrap().is_empty(), "nothing of ours yet");

    let desired = route_set([
        Route::new(net("192.168.10.0/24"), [ip("10.0.1.2"), ip("10.0.2.2")]),
        Route::new(net("20.1.1.3/32"), [ip("10.0.1.2")]),
        Route::new(net("2001:db8:99::/48"), [ip("2001:db8:1::2")]),
    ]);
    let r = fib.sync(&desired).unwrap();
    assert_eq!((r.applied, r.failed.len()), (3, 0), "{r:?}");
    let ours = ns.routes(&RTPROT_CONTIV.to_string());
    assert!(ours.contains("192.168.10.0/24"), "{ours}");
    assert!(
        ours.contains("nexthop via 10.0.1.2") && ours.contains("nexthop via 10.0.2.2"),
        "{ours}"
    );
    assert!(ours.contains("20.1.1.3 via 10.0.1.2"), "{ours}");
    let v6 = ns.ip(&[
        "-n",
        &ns.0,
        "-6",
        "route",
        "show",
        "proto",
        &RTPROT_CONTIV.to_string(),
    ]);
    assert!(v6.contains("2001:db8:99::/48 via 2001:db8:1::2"), "{v6}");

    // Read back equals desired: a second sync (or an agent restart) changes nothing.
    let mut restarted = NetlinkFib::open_in_netns(&ns.path()).unwrap();
    assert_eq!(restarted.installed().unwrap().len(), 3);
    let r = restarted.sync(&desired).unwrap();
    assert_eq!(r.applied, 0, "in sync: no route touched");

    // One path goes away: the ECMP route is replaced in place.
    let fewer = route_set([Route::new(net("192.168.10.0/24"), [ip("10.0.2.2")])]);
    let r = restarted.sync(&fewer).unwrap();
    assert_eq!(r.applied, 3, "one replace, two deletes: {r:?}");
    let ours = ns.routes(&RTPROT_CONTIV.to_string());
    assert_eq!(
        ours.trim(),
        "192.168.10.0/24 via 10.0.2.2 dev up2 metric 20",
        "{ours}"
    );

    // Sweep everything of ours: the foreign routes, even on the same prefix, stay.
    restarted.sync(&RouteSet::new()).unwrap();
    assert_eq!(ns.routes(&RTPROT_CONTIV.to_string()).trim(), "");
    assert!(ns.routes("static").contains("192.168.10.0/24 via 10.0.1.2"));
    assert!(ns.routes("bird").contains("192.168.99.0/24 via 10.0.2.2"));
}

#[test]
fn one_bad_route_does_not_block_the_batch() {
    if !require_root("one_bad_route_does_not_block_the_batch") {
        return;
    }
    let ns = Netns::new("bad");
    let mut fib = NetlinkFib::open_in_netns(&ns.path()).unwrap();
    let desired = route_set([
        Route::new(net("192.168.1.0/24"), [ip("10.0.1.2")]),
        // No interface reaches 203.0.113.1: the kernel refuses this one alone.
        Route::new(net("192.168.2.0/24"), [ip("203.0.113.1")]),
        Route::new(net("192.168.3.0/24"), [ip("10.0.2.2")]),
    ]);
    let r = fib.sync(&desired).unwrap();
    assert_eq!(r.applied, 2);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0.prefix(), net("192.168.2.0/24"));
    assert!(r.failed[0].1.contains("unreachable"), "{:?}", r.failed);
    let ours = ns.routes(&RTPROT_CONTIV.to_string());
    assert!(
        ours.contains("192.168.1.0/24") && ours.contains("192.168.3.0/24"),
        "{ours}"
    );
}

#[test]
fn many_routes_go_in_batches() {
    if !require_root("many_routes_go_in_batches") {
        return;
    }
    let ns = Netns::new("many");
    let mut fib = NetlinkFib::open_in_netns(&ns.path()).unwrap();
    // 5000 /32s over two paths: several batches of BATCH routes.
    let routes: Vec<Route> = (0..5000u32)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x1400_0000u32 + i);
            Route::new(
                IpNet::new(IpAddr::V4(a), 32).unwrap(),
                [ip("10.0.1.2"), ip("10.0.2.2")],
            )
        })
        .collect();
    let desired = route_set(routes);
    let r = fib.sync(&desired).unwrap();
    assert_eq!((r.applied, r.failed.len()), (5000, 0));
    assert_eq!(fib.installed().unwrap().len(), 5000);
    let ops = netplugin::fib::diff(&RouteSet::new(), &fib.installed().unwrap());
    assert!(ops.iter().all(|o| matches!(o, FibOp::Delete { .. })));
    let r = fib.sync(&RouteSet::new()).unwrap();
    assert_eq!(r.applied, 5000);
    assert!(fib.installed().unwrap().is_empty());
}

/// A route of another protocol on the same prefix and metric as ours is never
/// overwritten (nor deleted later with ours): the add is refused and reported, the
/// other route stays; once it is gone, ours goes in.
#[test]
fn a_foreign_route_with_our_key_is_never_overwritten() {
    if !require_root("a_foreign_route_with_our_key_is_never_overwritten") {
        return;
    }
    let ns = Netns::new("foreign");
    ns.ip(&[
        "-n",
        &ns.0,
        "route",
        "add",
        "192.168.20.0/24",
        "via",
        "10.0.2.2",
        "proto",
        "static",
        "metric",
        "20",
    ]);
    let mut fib = NetlinkFib::open_in_netns(&ns.path()).unwrap();
    let desired = route_set([
        Route::new(net("192.168.20.0/24"), [ip("10.0.1.2")]),
        Route::new(net("192.168.21.0/24"), [ip("10.0.1.2")]),
    ]);
    let r = fib.sync(&desired).unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].0.prefix(), net("192.168.20.0/24"));
    assert!(r.failed[0].1.contains("exists"), "{r:?}");
    let statics = ns.routes("static");
    assert!(
        statics.contains("192.168.20.0/24 via 10.0.2.2"),
        "{statics}"
    );
    let ours = ns.routes(&RTPROT_CONTIV.to_string());
    assert!(!ours.contains("192.168.20.0/24"), "{ours}");
    assert!(ours.contains("192.168.21.0/24"), "{ours}");
    // Syncing to nothing deletes ours only.
    fib.sync(&RouteSet::new()).unwrap();
    assert!(ns.routes("static").contains("192.168.20.0/24 via 10.0.2.2"));
    // The foreign route gone, ours goes in.
    ns.ip(&[
        "-n",
        &ns.0,
        "route",
        "del",
        "192.168.20.0/24",
        "proto",
        "static",
    ]);
    let r = fib.sync(&desired).unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    assert!(
        ns.routes(&RTPROT_CONTIV.to_string())
            .contains("192.168.20.0/24 via 10.0.1.2"),
        "ours after the foreign route left"
    );
}
