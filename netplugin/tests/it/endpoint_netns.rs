//! Endpoint plumbing against a real kernel: a namespace plays the host, two more play
//! containers. Every namespace is created by the test and deleted on drop.

use std::path::PathBuf;

use containerlab::testing::require_root;

use crate::netns::Ns;
use netplugin::endpoint::{EndpointSpec, HostNs, host_ifname, plumb, unplumb};
use netplugin::fib::netlink::NetlinkFib;
use netplugin::fib::{FibDriver, FibOp, RTPROT_CONTIV, Route};

fn ns(tag: &str) -> Ns {
    Ns::new("eptest", tag)
}

fn spec(id: &str, ns: &Ns, addr: &str) -> EndpointSpec {
    EndpointSpec {
        id: id.into(),
        netns: ns.path(),
        ifname: "eth0".into(),
        address: addr.parse().unwrap(),
        gateway: Some("20.1.1.254".parse().unwrap()),
        mtu: 1500,
    }
}

#[test]
fn two_containers_reach_each_other_and_the_host() {
    if !require_root("two_containers_reach_each_other_and_the_host") {
        return;
    }
    let (host, c1, c2) = (ns("host"), ns("c1"), ns("c2"));
    assert!(host.exec("sysctl -qw net.ipv4.ip_forward=1 && ip link set lo up && ip addr add 10.255.1.1/32 dev lo").0);
    let h = HostNs(Some(host.path()));
    let p1 = plumb(&h, &spec("ep-web", &c1, "20.1.1.2/24")).unwrap();
    let p2 = plumb(&h, &spec("ep-db", &c2, "20.1.1.3/24")).unwrap();
    assert_eq!(p1.host_ifname, host_ifname("ep-web"));
    let mut fib = NetlinkFib::open_in_netns(&host.path()).unwrap();
    let failed = fib
        .apply(&[
            FibOp::Replace(Route::dev("20.1.1.2/32".parse().unwrap(), p1.host_ifindex)),
            FibOp::Replace(Route::dev("20.1.1.3/32".parse().unwrap(), p2.host_ifindex)),
        ])
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");

    // Container side: Contiv's MAC, the gateway as a permanent anycast neighbour.
    let (_, link) = c1.exec("ip link show eth0");
    assert!(link.contains("02:02:14:01:01:02"), "{link}");
    let (_, neigh) = c1.exec("ip neigh show 20.1.1.254");
    assert!(
        neigh.contains("00:00:11:11:11:11") && neigh.contains("PERMANENT"),
        "{neigh}"
    );
    let (_, routes) = c1.exec("ip route");
    assert!(
        routes.contains("default via 20.1.1.254 dev eth0"),
        "{routes}"
    );
    // Host side: the /32s carry our mark.
    let (_, ours) = host.exec(&format!("ip route show proto {RTPROT_CONTIV}"));
    assert!(
        ours.contains(&format!("20.1.1.2 dev {} scope link", p1.host_ifname)),
        "{ours}"
    );

    // Same subnet, different veths: proxy ARP on the host side carries it.
    let (ok, out) = c1.exec("ping -c 2 -W 2 20.1.1.3");
    assert!(ok, "c1 -> c2: {out}");
    let (ok, out) = c2.exec("ping -c 1 -W 2 10.255.1.1");
    assert!(ok, "c2 -> host: {out}");

    // Unplumbing removes the pair and with it the /32; again is fine.
    unplumb(&h, "ep-db").unwrap();
    unplumb(&h, "ep-db").unwrap();
    let (_, links) = host.exec("ip -o link show");
    assert!(!links.contains(&p2.host_ifname), "{links}");
    let (_, ours) = host.exec(&format!("ip route show proto {RTPROT_CONTIV}"));
    assert!(!ours.contains("20.1.1.3"), "{ours}");
    assert!(ours.contains("20.1.1.2"), "{ours}");
}

#[test]
fn a_failed_plumb_leaves_nothing_behind() {
    if !require_root("a_failed_plumb_leaves_nothing_behind") {
        return;
    }
    let (host, c1) = (ns("fhost"), ns("fc1"));
    let h = HostNs(Some(host.path()));
    let links_before = host.exec("ip -o link show").1;

    // A container namespace that does not exist.
    let mut bad = spec("ep-x", &c1, "20.1.1.9/24");
    bad.netns = PathBuf::from("/run/netns/no-such-namespace-here");
    let e = plumb(&h, &bad).unwrap_err().to_string();
    assert!(
        e.contains("ep-x") && e.contains("container namespace"),
        "{e}"
    );

    // A gateway of the wrong family is refused up front.
    let mut v6gw = spec("ep-w", &c1, "20.1.1.9/24");
    v6gw.gateway = Some("2001:db8::1".parse().unwrap());
    assert!(
        plumb(&h, &v6gw)
            .unwrap_err()
            .to_string()
            .contains("not an IPv4 address")
    );

    // Failing late (the kernel refuses a default route via the subnet's broadcast
    // address, after the veth pair exists): the pair is removed again.
    let mut late = spec("ep-y", &c1, "20.1.1.9/24");
    late.gateway = Some("20.1.1.255".parse().unwrap());
    let e = plumb(&h, &late).unwrap_err().to_string();
    assert!(e.contains("ep-y") && e.contains("container side"), "{e}");
    assert_eq!(
        host.exec("ip -o link show").1,
        links_before,
        "host links changed"
    );
    let (_, ctr_links) = c1.exec("ip -o link show");
    assert!(!ctr_links.contains("eth0"), "{ctr_links}");

    // The same endpoint twice: the second is refused, the first stays whole.
    plumb(&h, &spec("ep-z", &c1, "20.1.1.10/24")).unwrap();
    let e = plumb(&h, &spec("ep-z", &c1, "20.1.1.10/24"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("veth"), "{e}");
    assert!(c1.exec("ip addr show eth0").1.contains("20.1.1.10/24"));

    // IPv6 endpoints are refused with a clear message (not yet supported).
    let e = plumb(&h, &spec("ep-6", &c1, "2001:db8::5/64"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("IPv6"), "{e}");
}
