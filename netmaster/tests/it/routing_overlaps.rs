//! Tenants share one routing table in the routing mode: subnets of different tenants
//! must not overlap there (the mode cannot be entered while some do), and no subnet may
//! overlap the fabric's own addresses (a `Bgp` object's host–ToR subnet and neighbors),
//! whichever of the two comes first. Every refusal says why and stores nothing.

use serde_json::json;

use crate::common::nm::{Nm, net};

async fn tenant(nm: &Nm, name: &str) {
    nm.create(
        &format!("/api/v1/tenants/{name}/"),
        json!({"tenantName": name}),
    )
    .await;
}

#[tokio::test]
async fn the_routing_mode_refuses_subnets_that_overlap_across_tenants() {
    let nm = Nm::start().await;
    tenant(&nm, "blue").await;
    // The bridge mode keeps tenants apart: overlapping subnets are fine there.
    nm.create(
        "/api/v1/networks/default:a/",
        net("default", "a", "10.1.0.0/16"),
    )
    .await;
    nm.create("/api/v1/networks/blue:b/", net("blue", "b", "10.1.1.0/24"))
        .await;
    let (s, e) = nm.set_mode("routing").await;
    assert_eq!((s, e["field"].as_str()), (409, Some("fwdMode")), "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("default:a") && msg.contains("blue:b") && msg.contains("one table"),
        "{msg}"
    );
    let (_, g) = nm.get("/api/v1/globals/global/").await;
    assert_eq!(g["fwdMode"], "bridge");
    assert_eq!(nm.delete("/api/v1/networks/blue:b/").await.0, 204);
    assert_eq!(nm.delete("/api/v1/networks/default:a/").await.0, 204);
    assert_eq!(nm.set_mode("routing").await.0, 200);

    nm.create(
        "/api/v1/networks/default:a/",
        net("default", "a", "10.1.0.0/16"),
    )
    .await;
    for subnet in ["10.1.2.0/24", "10.0.0.0/8"] {
        let (s, e) = nm
            .post("/api/v1/networks/blue:c/", net("blue", "c", subnet))
            .await;
        assert_eq!((s, e["field"].as_str()), (409, Some("subnet")), "{e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains("tenant default") && msg.contains("routing mode"),
            "{msg}"
        );
        assert_eq!(e["object"], "networks/default:a");
    }
    // IPv6 subnets too.
    let mut v6 = net("default", "six", "10.3.0.0/16");
    v6["ipv6Subnet"] = json!("2001:db8:1::/64");
    nm.create("/api/v1/networks/default:six/", v6).await;
    let mut v6 = net("blue", "six", "10.4.0.0/16");
    v6["ipv6Subnet"] = json!("2001:db8:1::/48");
    let (s, e) = nm.post("/api/v1/networks/blue:six/", v6).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("ipv6Subnet")), "{e}");
    assert_eq!(
        nm.count("networks").await,
        2,
        "a refused network was stored"
    );
    // Apart is fine.
    nm.create("/api/v1/networks/blue:d/", net("blue", "d", "10.2.0.0/16"))
        .await;
    nm.stop().await;
}

#[tokio::test]
async fn subnets_and_the_fabric_stay_apart() {
    let nm = Nm::start().await;
    tenant(&nm, "blue").await;
    assert_eq!(nm.set_mode("routing").await.0, 200);
    nm.create(
        "/api/v1/Bgps/host1/",
        json!({"hostname": "host1", "routerip": "10.9.9.1/31", "as": "65101",
               "neighbor-as": "65001", "neighbor": "10.9.9.0",
               "neighbors": [{"address": "10.8.0.1", "as": "65002"}],
               "local-addresses": ["10.8.0.2/24"]}),
    )
    .await;
    // A network over the host–ToR link or a neighbor, of any tenant.
    for (tenant, name, subnet, what) in [
        ("default", "a", "10.9.0.0/16", "routerip subnet 10.9.9.0/31"),
        ("blue", "b", "10.9.9.0/30", "routerip subnet 10.9.9.0/31"),
        ("blue", "c", "10.8.0.0/24", "BGP neighbor 10.8.0.1"),
    ] {
        let (s, e) = nm
            .post(
                &format!("/api/v1/networks/{tenant}:{name}/"),
                net(tenant, name, subnet),
            )
            .await;
        assert_eq!((s, e["field"].as_str()), (409, Some("subnet")), "{e}");
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("host host1") && msg.contains(what), "{msg}");
        assert_eq!(e["object"], "Bgps/host1");
    }
    assert_eq!(
        nm.count("networks").await,
        0,
        "a refused network was stored"
    );
    nm.create(
        "/api/v1/networks/default:a/",
        net("default", "a", "20.1.0.0/16"),
    )
    .await;
    nm.create("/api/v1/networks/blue:b/", net("blue", "b", "30.1.1.0/24"))
        .await;
    // A Bgp object over a network's subnet: its routerip, its neighbor, a neighbor of
    // the list.
    let bgp = |routerip: &str, neighbor: &str, more: &str| {
        let mut b = json!({"hostname": "host2", "routerip": routerip, "as": "65102",
                           "neighbor-as": "65001", "neighbor": neighbor});
        if !more.is_empty() {
            b["neighbors"] = json!([{"address": more, "as": "65003"}]);
        }
        // Each neighbor on one of the host's subnets (the model's rule), so that the
        // overlap is what refuses the object.
        let locals: Vec<String> = [neighbor, more]
            .iter()
            .filter(|a| !a.is_empty())
            .map(|a| {
                let mut o: [u8; 4] = a.parse::<std::net::Ipv4Addr>().unwrap().octets();
                o[3] ^= 1;
                format!("{}/31", std::net::Ipv4Addr::from(o))
            })
            .filter(|l| !l.starts_with(routerip.split('/').next().unwrap()))
            .collect();
        b["local-addresses"] = json!(locals);
        b
    };
    for (b, field, net) in [
        (bgp("20.1.7.1/31", "20.1.7.0", ""), "routerip", "default:a"),
        (bgp("10.9.8.1/31", "30.1.1.9", ""), "neighbor", "blue:b"),
        (
            bgp("10.9.8.1/31", "10.9.8.0", "20.1.200.1"),
            "neighbors[0].address",
            "default:a",
        ),
    ] {
        let (s, e) = nm.post("/api/v1/Bgps/host2/", b).await;
        assert_eq!((s, e["field"].as_str()), (409, Some(field)), "{e}");
        assert_eq!(e["object"], format!("networks/{net}"));
        assert!(e["message"].as_str().unwrap().contains("host host2"), "{e}");
    }
    assert_eq!(nm.count("Bgps").await, 1, "a refused Bgp object was stored");
    nm.create(
        "/api/v1/Bgps/host2/",
        bgp("10.9.8.1/31", "10.9.8.0", "10.8.0.2"),
    )
    .await;
    nm.stop().await;
}

/// Addresses no host or peer can have, prefixes a host must never originate, and one
/// router address for two hosts: refused, naming the field, nothing stored.
#[tokio::test]
async fn reserved_addresses_and_shared_router_ids_are_refused() {
    let nm = Nm::start().await;
    assert_eq!(nm.set_mode("routing").await.0, 200);
    let bgp = |host: &str, routerip: &str, neighbor: &str| {
        json!({"hostname": host, "routerip": routerip, "as": "65101",
               "neighbor-as": "65001", "neighbor": neighbor})
    };
    let mut cases = vec![
        (bgp("h1", "10.1.1.1/31", "0.0.0.0"), "neighbor"),
        (bgp("h1", "10.1.1.1/31", "127.0.0.1"), "neighbor"),
        (bgp("h1", "10.1.1.1/31", "224.0.0.5"), "neighbor"),
        (bgp("h1", "10.1.1.1/31", "255.255.255.255"), "neighbor"),
        (bgp("h1", "0.0.0.0/1", "10.1.1.0"), "routerip"),
        (bgp("h1", "127.0.0.2/8", "10.1.1.0"), "routerip"),
    ];
    let mut block = bgp("h1", "10.1.1.1/31", "10.1.1.0");
    block["advertise"] = json!("host-block");
    block["host-block"] = json!("0.0.0.0/0");
    cases.push((block, "host-block"));
    for (b, field) in cases {
        let (s, e) = nm.post("/api/v1/Bgps/h1/", b.clone()).await;
        assert!((400..500).contains(&s), "{b} → {s} {e}");
        assert_eq!(e["field"].as_str(), Some(field), "{b} → {e}");
    }
    assert_eq!(nm.count("Bgps").await, 0, "a refused Bgp object was stored");
    nm.create("/api/v1/Bgps/h1/", bgp("h1", "10.1.1.1/31", "10.1.1.0"))
        .await;
    let (s, e) = nm
        .post("/api/v1/Bgps/h2/", bgp("h2", "10.1.1.1/24", "10.1.1.254"))
        .await;
    assert_eq!((s, e["field"].as_str()), (409, Some("routerip")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("h1"), "{e}");
    assert_eq!(nm.count("Bgps").await, 1);
    // Network subnets in reserved space.
    for subnet in ["0.1.0.0/16", "127.1.0.0/16", "224.1.0.0/16", "240.0.0.0/8"] {
        let (s, e) = nm
            .post("/api/v1/networks/default:r/", net("default", "r", subnet))
            .await;
        assert!((400..500).contains(&s), "{subnet} → {s} {e}");
        assert_eq!(e["field"].as_str(), Some("subnet"), "{subnet} → {e}");
    }
    assert_eq!(
        nm.count("networks").await,
        0,
        "a refused network was stored"
    );
    nm.stop().await;
}
