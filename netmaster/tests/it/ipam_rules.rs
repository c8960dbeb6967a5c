//! One test per IPAM rule, through the public API.

use std::net::IpAddr;

use netmaster::ipam::{
    Allocations, Counts, IpamError, Pool, PoolState, ReservedKind, STATE_VERSION, Scope, SubnetSpec,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(spec: &str, gw: Option<&str>) -> Pool {
    Pool::new("blue", spec.parse().unwrap(), gw.map(ip)).unwrap()
}

const NET: Scope<'static> = Scope::Network;

#[test]
fn v4_reserves_network_broadcast_and_gateway() {
    let mut p = pool("10.1.1.0/29", Some("10.1.1.1"));
    // .0 network, .1 gateway, .7 broadcast: .2 to .6 are handed out, lowest first.
    for want in ["10.1.1.2", "10.1.1.3", "10.1.1.4", "10.1.1.5", "10.1.1.6"] {
        assert_eq!(p.allocate(NET).unwrap(), ip(want));
    }
    let err = p.allocate(NET).unwrap_err();
    assert_eq!(
        err,
        IpamError::Exhausted {
            network: "blue".into(),
            group: None
        }
    );
    assert_eq!(err.to_string(), "no free address left in network \"blue\"");
    assert_eq!(
        p.reserved(),
        vec![
            (ip("10.1.1.0"), ReservedKind::NetworkAddress),
            (ip("10.1.1.1"), ReservedKind::Gateway),
            (ip("10.1.1.7"), ReservedKind::BroadcastAddress),
        ]
    );
    for (a, kind) in [
        ("10.1.1.0", ReservedKind::NetworkAddress),
        ("10.1.1.1", ReservedKind::Gateway),
        ("10.1.1.7", ReservedKind::BroadcastAddress),
    ] {
        let err = p.allocate_preferred(NET, ip(a)).unwrap_err();
        assert_eq!(
            err,
            IpamError::Reserved {
                network: "blue".into(),
                addr: ip(a),
                kind
            }
        );
        assert!(err.to_string().contains(a), "{err}");
        assert!(matches!(
            p.release(NET, ip(a)),
            Err(IpamError::Reserved { .. })
        ));
        assert!(!p.is_allocated(ip(a)));
    }
    assert_eq!(
        p.counts(NET).unwrap(),
        Counts {
            total: 5,
            used: 5,
            free: 0
        }
    );
}

#[test]
fn point_to_point_subnets_use_every_address() {
    let mut p = pool("10.1.1.0/31", None);
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.0"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.1"));
    let mut p = pool("10.1.1.9/32", None);
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.9"));
    assert!(p.allocate(NET).is_err());
    let mut p = pool("2001:db8::/127", None);
    assert_eq!(p.allocate(NET).unwrap(), ip("2001:db8::"));
}

#[test]
fn gateway_must_be_a_usable_subnet_address() {
    let spec: SubnetSpec = "10.1.1.0/24".parse().unwrap();
    let err = Pool::new("blue", spec, Some(ip("10.1.2.1"))).unwrap_err();
    assert!(matches!(err, IpamError::GatewayNotInSubnet { .. }), "{err}");
    assert!(err.to_string().contains("10.1.2.1"));
    let err = Pool::new("blue", spec, Some(ip("2001:db8::1"))).unwrap_err();
    assert!(matches!(err, IpamError::GatewayNotInSubnet { .. }), "{err}");
    let err = Pool::new("blue", spec, Some(ip("10.1.1.255"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gateway 10.1.1.255 of network \"blue\" is the broadcast address of subnet 10.1.1.0/24"
    );
    let v6: SubnetSpec = "2001:db8::/64".parse().unwrap();
    let err = Pool::new("blue", v6, Some(ip("2001:db8::"))).unwrap_err();
    assert!(matches!(
        err,
        IpamError::GatewayReserved {
            kind: ReservedKind::SubnetRouterAnycast,
            ..
        }
    ));
}

#[test]
fn sub_range_limits_allocation() {
    let mut p = pool("10.1.1.10-10.1.1.12/24", Some("10.1.1.1"));
    assert_eq!(p.range().to_string(), "10.1.1.10-10.1.1.12");
    assert_eq!(p.counts(NET).unwrap().total, 3);
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.10"));
    let err = p.allocate_preferred(NET, ip("10.1.1.50")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.1.50 is outside the allocatable range 10.1.1.10-10.1.1.12 of network \"blue\""
    );
    // The gateway is outside the range: still the gateway, but it does not cost a slot.
    assert!(matches!(
        p.allocate_preferred(NET, ip("10.1.1.1")),
        Err(IpamError::NotInRange { .. })
    ));
    let err = p.allocate_preferred(NET, ip("10.1.2.1")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.2.1 is not in subnet 10.1.1.0/24 of network \"blue\""
    );
    assert!(matches!(
        p.allocate_preferred(NET, ip("::1")),
        Err(IpamError::NotInSubnet { .. })
    ));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.11"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.12"));
    assert!(matches!(p.allocate(NET), Err(IpamError::Exhausted { .. })));
    // A range that includes the gateway skips it.
    let mut p = pool("10.1.1.1-10.1.1.3/24", Some("10.1.1.2"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.1"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.3"));
}

#[test]
fn preferred_release_and_errors() {
    let mut p = pool("10.1.1.0/24", Some("10.1.1.254"));
    p.allocate_preferred(NET, ip("10.1.1.1")).unwrap();
    p.allocate_preferred(NET, ip("10.1.1.3")).unwrap();
    let err = p.allocate_preferred(NET, ip("10.1.1.3")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.1.3 is already allocated in network \"blue\""
    );
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.2"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.4"));
    assert!(p.is_allocated(ip("10.1.1.3")));
    p.release(NET, ip("10.1.1.3")).unwrap();
    assert!(!p.is_allocated(ip("10.1.1.3")));
    let err = p.release(NET, ip("10.1.1.3")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.1.3 is not allocated in network \"blue\""
    );
    assert!(matches!(
        p.release(NET, ip("10.9.9.9")),
        Err(IpamError::NotInSubnet { .. })
    ));
    // The lowest free address is reused first.
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.3"));
    assert_eq!(p.allocate_with(NET, None).unwrap(), ip("10.1.1.5"));
    assert_eq!(
        p.allocate_with(NET, Some(ip("10.1.1.100"))).unwrap(),
        ip("10.1.1.100")
    );
}

#[test]
fn counts_utilisation_and_oper_strings() {
    let mut p = pool("10.1.1.0/24", Some("10.1.1.254"));
    assert_eq!(p.allocated_addresses(NET).unwrap(), "");
    assert_eq!(p.available_addresses(NET).unwrap(), "10.1.1.1-10.1.1.253");
    for _ in 0..9 {
        p.allocate(NET).unwrap();
    }
    for a in ["10.1.1.6", "10.1.1.7", "10.1.1.8"] {
        p.release(NET, ip(a)).unwrap();
    }
    assert_eq!(
        p.allocated_addresses(NET).unwrap(),
        "10.1.1.1-10.1.1.5, 10.1.1.9"
    );
    assert_eq!(
        p.available_addresses(NET).unwrap(),
        "10.1.1.6-10.1.1.8, 10.1.1.10-10.1.1.253"
    );
    let c = p.counts(NET).unwrap();
    assert_eq!(
        c,
        Counts {
            total: 253,
            used: 6,
            free: 247
        }
    );
    assert!((p.utilisation(NET).unwrap() - 6.0 / 253.0).abs() < 1e-12);
    assert_eq!(p.counts_all(), c);
    assert_eq!(Counts::default().utilisation(), 0.0);
}

#[test]
fn epg_pools_are_carved_out_of_the_network() {
    let mut p = pool("10.1.1.0/28", Some("10.1.1.14"));
    p.add_epg_pool("web", "10.1.1.1-10.1.1.3".parse().unwrap())
        .unwrap();
    p.add_epg_pool("db", "10.1.1.8-10.1.1.9".parse().unwrap())
        .unwrap();
    // The network skips both pools; each group stays inside its own.
    assert_eq!(p.allocate(NET).unwrap(), ip("10.1.1.4"));
    assert_eq!(p.allocate(Scope::Epg("web")).unwrap(), ip("10.1.1.1"));
    assert_eq!(p.allocate(Scope::Epg("db")).unwrap(), ip("10.1.1.8"));
    assert_eq!(p.allocate(Scope::Epg("db")).unwrap(), ip("10.1.1.9"));
    let err = p.allocate(Scope::Epg("db")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no free address left in endpoint group \"db\" of network \"blue\""
    );
    let err = p.allocate_preferred(NET, ip("10.1.1.2")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.1.2 belongs to the ip pool 10.1.1.1-10.1.1.3 of endpoint group \"web\" of network \"blue\""
    );
    assert!(matches!(
        p.release(NET, ip("10.1.1.1")),
        Err(IpamError::InEpgPool { .. })
    ));
    let err = p
        .allocate_preferred(Scope::Epg("web"), ip("10.1.1.5"))
        .unwrap_err();
    assert!(matches!(err, IpamError::NotInEpgPool { .. }), "{err}");
    p.allocate_preferred(Scope::Epg("web"), ip("10.1.1.3"))
        .unwrap();
    let err = p
        .allocate_preferred(Scope::Epg("web"), ip("10.1.1.3"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.1.1.3 is already allocated in endpoint group \"web\" of network \"blue\""
    );
    assert!(matches!(
        p.allocate(Scope::Epg("nope")),
        Err(IpamError::UnknownEpg { .. })
    ));
    assert!(p.is_allocated(ip("10.1.1.3")));
    assert!(!p.is_allocated(ip("10.1.1.2")));
    assert_eq!(p.epg_of(ip("10.1.1.2")), Some("web"));
    assert_eq!(p.epg_of(ip("10.1.1.4")), None);

    assert_eq!(
        p.allocated_addresses(Scope::Epg("web")).unwrap(),
        "10.1.1.1, 10.1.1.3"
    );
    assert_eq!(
        p.available_addresses(Scope::Epg("web")).unwrap(),
        "10.1.1.2"
    );
    assert_eq!(
        p.available_addresses(NET).unwrap(),
        "10.1.1.5-10.1.1.7, 10.1.1.10-10.1.1.13"
    );
    assert_eq!(p.allocated_addresses(NET).unwrap(), "10.1.1.4");
    assert_eq!(
        p.allocated_addresses_all(),
        "10.1.1.1, 10.1.1.3-10.1.1.4, 10.1.1.8-10.1.1.9"
    );
    assert_eq!(
        p.counts(NET).unwrap(),
        Counts {
            total: 8,
            used: 1,
            free: 7
        }
    );
    assert_eq!(
        p.counts(Scope::Epg("web")).unwrap(),
        Counts {
            total: 3,
            used: 2,
            free: 1
        }
    );
    assert_eq!(
        p.counts_all(),
        Counts {
            total: 13,
            used: 5,
            free: 8
        }
    );

    // A pool in use cannot go; once empty it returns to the network.
    let err = p.remove_epg_pool("db").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip pool 10.1.1.8-10.1.1.9 of endpoint group \"db\" in network \"blue\" still has 2 allocated addresses"
    );
    p.release(Scope::Epg("db"), ip("10.1.1.8")).unwrap();
    p.release(Scope::Epg("db"), ip("10.1.1.9")).unwrap();
    assert!(matches!(
        p.release(Scope::Epg("db"), ip("10.1.1.9")),
        Err(IpamError::NotAllocated { group: Some(_), .. })
    ));
    assert_eq!(
        p.remove_epg_pool("db").unwrap().to_string(),
        "10.1.1.8-10.1.1.9"
    );
    assert!(matches!(
        p.remove_epg_pool("db"),
        Err(IpamError::UnknownEpg { .. })
    ));
    p.allocate_preferred(NET, ip("10.1.1.9")).unwrap();
    assert_eq!(
        p.epg_pools()
            .map(|(g, r)| format!("{g}={r}"))
            .collect::<Vec<_>>(),
        vec!["web=10.1.1.1-10.1.1.3"]
    );
}

#[test]
fn epg_pool_rules() {
    let mut p = pool("10.1.1.10-10.1.1.100/24", Some("10.1.1.50"));
    p.add_epg_pool("web", "10.1.1.20-10.1.1.29".parse().unwrap())
        .unwrap();
    let err = p
        .add_epg_pool("web", "10.1.1.60-10.1.1.61".parse().unwrap())
        .unwrap_err();
    assert!(matches!(err, IpamError::EpgPoolExists { .. }), "{err}");
    let err = p
        .add_epg_pool("db", "10.1.1.5-10.1.1.12".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip pool 10.1.1.5-10.1.1.12 of endpoint group \"db\" is not inside the range 10.1.1.10-10.1.1.100 of network \"blue\""
    );
    let err = p
        .add_epg_pool("db", "2001:db8::1-2001:db8::2".parse().unwrap())
        .unwrap_err();
    assert!(matches!(err, IpamError::EpgPoolOutside { .. }), "{err}");
    let err = p
        .add_epg_pool("db", "10.1.1.29-10.1.1.35".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip pool 10.1.1.29-10.1.1.35 of endpoint group \"db\" overlaps the ip pool 10.1.1.20-10.1.1.29 of endpoint group \"web\""
    );
    let err = p
        .add_epg_pool("db", "10.1.1.45-10.1.1.55".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::EpgPoolReserved {
            network: "blue".into(),
            group: "db".into(),
            pool: "10.1.1.45-10.1.1.55".into(),
            addr: ip("10.1.1.50"),
            kind: ReservedKind::Gateway
        }
    );
    p.allocate_preferred(NET, ip("10.1.1.70")).unwrap();
    let err = p
        .add_epg_pool("db", "10.1.1.60-10.1.1.80".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip pool 10.1.1.60-10.1.1.80 of endpoint group \"db\" contains 10.1.1.70, which is already allocated in network \"blue\""
    );
    p.add_epg_pool("db", "10.1.1.71-10.1.1.80".parse().unwrap())
        .unwrap();
}

#[test]
fn service_vips_come_from_the_service_network() {
    let mut svc = Pool::new("svc-net", "100.64.0.0/30".parse().unwrap(), None).unwrap();
    assert_eq!(
        svc.allocate_with(NET, Some(ip("100.64.0.2"))).unwrap(),
        ip("100.64.0.2")
    );
    assert_eq!(svc.allocate_with(NET, None).unwrap(), ip("100.64.0.1"));
    let err = svc.allocate_with(NET, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no free address left in network \"svc-net\""
    );
    let err = svc.allocate_with(NET, Some(ip("100.64.0.2"))).unwrap_err();
    assert!(matches!(err, IpamError::AlreadyAllocated { .. }));
}

#[test]
fn ipv6_pools() {
    let mut p = pool("2001:db8:1::/64", Some("2001:db8:1::1"));
    assert_eq!(p.allocate(NET).unwrap(), ip("2001:db8:1::2"));
    assert_eq!(p.allocate(NET).unwrap(), ip("2001:db8:1::3"));
    let err = p.allocate_preferred(NET, ip("2001:db8:1::")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 2001:db8:1:: is reserved as the subnet-router anycast address of network \"blue\""
    );
    p.allocate_preferred(NET, ip("2001:db8:1::ffff:ffff:ffff:ffff"))
        .unwrap();
    let c = p.counts(NET).unwrap();
    assert_eq!(c.total, (1u128 << 64) - 2);
    assert_eq!(c.used, 3);
    assert_eq!(
        p.allocated_addresses(NET).unwrap(),
        "2001:db8:1::2-2001:db8:1::3, 2001:db8:1:0:ffff:ffff:ffff:ffff"
    );
    assert_eq!(
        p.available_addresses(NET).unwrap(),
        "2001:db8:1::4-2001:db8:1:0:ffff:ffff:ffff:fffe"
    );
    p.add_epg_pool("web", "2001:db8:1::1:0-2001:db8:1::1:ffff".parse().unwrap())
        .unwrap();
    assert_eq!(
        p.allocate(Scope::Epg("web")).unwrap(),
        ip("2001:db8:1::1:0")
    );
    // A /32 (2^96 addresses) and even a /1 cost nothing up front.
    let mut big = pool("2001:db8::/32", None);
    big.allocate_preferred(NET, ip("2001:db8:ffff::1")).unwrap();
    assert_eq!(big.allocate(NET).unwrap(), ip("2001:db8::1"));
    let mut huge = pool("8000::/1", None);
    assert_eq!(huge.allocate(NET).unwrap(), ip("8000::1"));
    assert_eq!(huge.counts(NET).unwrap().total, (1u128 << 127) - 1);
}

#[test]
fn large_ipv4_spaces_work_without_a_huge_bitmap() {
    let mut p = pool("10.0.0.0/7", Some("10.0.0.1"));
    assert_eq!(p.allocate(NET).unwrap(), ip("10.0.0.2"));
    p.allocate_preferred(NET, ip("11.255.255.254")).unwrap();
    assert!(matches!(
        p.allocate_preferred(NET, ip("11.255.255.255")),
        Err(IpamError::Reserved {
            kind: ReservedKind::BroadcastAddress,
            ..
        })
    ));
    assert_eq!(p.counts(NET).unwrap().total, (1 << 25) - 3);
    let q = Pool::from_bytes(&p.to_bytes()).unwrap();
    assert!(q.is_allocated(ip("11.255.255.254")));
}

#[test]
fn state_round_trip_is_exact_and_deterministic() {
    let mut p = pool("10.1.1.10-10.1.1.200/24", Some("10.1.1.100"));
    p.add_epg_pool("web", "10.1.1.20-10.1.1.29".parse().unwrap())
        .unwrap();
    p.add_epg_pool("app", "10.1.1.150-10.1.1.160".parse().unwrap())
        .unwrap();
    for _ in 0..30 {
        p.allocate(NET).unwrap();
    }
    p.release(NET, ip("10.1.1.12")).unwrap();
    p.allocate(Scope::Epg("web")).unwrap();
    p.allocate_preferred(Scope::Epg("app"), ip("10.1.1.160"))
        .unwrap();
    let bytes = p.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(
        text,
        r#"{"version":1,"network":"blue","subnet":"10.1.1.10-10.1.1.200/24","gateway":"10.1.1.100","allocated":{"bitmap":"+wPw//8="},"epgs":[{"group":"app","pool":"10.1.1.150-10.1.1.160","allocated":{"bitmap":"AAQ="}},{"group":"web","pool":"10.1.1.20-10.1.1.29","allocated":{"bitmap":"AQ=="}}]}"#
    );
    let q = Pool::from_bytes(&bytes).unwrap();
    assert_eq!(q.to_bytes(), bytes);
    assert_eq!(
        q.allocated_addresses(NET).unwrap(),
        "10.1.1.10-10.1.1.11, 10.1.1.13-10.1.1.19, 10.1.1.30-10.1.1.49"
    );
    assert_eq!(q.counts_all(), p.counts_all());
    assert_eq!(q.allocated_addresses_all(), p.allocated_addresses_all());
    // Building the same pool in a different order gives the same bytes.
    let mut r = pool("10.1.1.10-10.1.1.200/24", Some("10.1.1.100"));
    r.add_epg_pool("app", "10.1.1.150-10.1.1.160".parse().unwrap())
        .unwrap();
    r.add_epg_pool("web", "10.1.1.20-10.1.1.29".parse().unwrap())
        .unwrap();
    r.allocate_preferred(Scope::Epg("app"), ip("10.1.1.160"))
        .unwrap();
    for a in (30..=49).rev().chain([19, 18, 17, 16, 15, 14, 13, 11, 10]) {
        r.allocate_preferred(NET, ip(&format!("10.1.1.{a}")))
            .unwrap();
    }
    r.allocate(Scope::Epg("web")).unwrap();
    assert_eq!(r.to_bytes(), bytes);
}

#[test]
fn state_encoding_is_the_shorter_of_ranges_and_bitmap() {
    // Allocations far from the start of the range are cheaper as ranges.
    let mut p = pool("10.1.0.0/16", None);
    p.allocate_preferred(NET, ip("10.1.200.1")).unwrap();
    assert_eq!(
        p.to_state().allocated,
        Allocations::Ranges("10.1.200.1".into())
    );
}

#[test]
fn fragmented_state_switches_to_a_bitmap() {
    let mut p = pool("10.1.0.0/22", None);
    for _ in 0..1000 {
        p.allocate(NET).unwrap();
    }
    for i in (1..1000u32).step_by(2) {
        let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 1, 0, 0)) + i);
        p.release(NET, IpAddr::V4(a)).unwrap();
    }
    let state = p.to_state();
    assert!(
        matches!(state.allocated, Allocations::Bitmap(_)),
        "{state:?}"
    );
    let bytes = p.to_bytes();
    assert!(bytes.len() < 300, "{} bytes", bytes.len());
    let q = Pool::from_bytes(&bytes).unwrap();
    assert_eq!(q.to_bytes(), bytes);
    assert_eq!(
        q.allocated_addresses(NET).unwrap(),
        p.allocated_addresses(NET).unwrap()
    );
}

type Mutation = Box<dyn FnMut(&mut PoolState)>;

fn corrupt(mut f: impl FnMut(&mut PoolState)) -> IpamError {
    let mut p = pool("10.1.1.0/24", Some("10.1.1.1"));
    p.add_epg_pool("web", "10.1.1.100-10.1.1.109".parse().unwrap())
        .unwrap();
    p.allocate(NET).unwrap();
    let mut s = p.to_state();
    assert!(Pool::from_state(&s).is_ok());
    f(&mut s);
    Pool::from_state(&s).unwrap_err()
}

#[test]
fn corrupt_state_is_an_error_never_a_panic() {
    assert_eq!(
        corrupt(|s| s.version = 7),
        IpamError::UnsupportedStateVersion {
            found: 7,
            supported: STATE_VERSION
        }
    );
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|s| s.subnet = "10.1.1.0/99".into()),
            "prefix length",
        ),
        (
            Box::new(|s| s.gateway = Some(ip("10.1.1.0"))),
            "network address",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("10.1.1.1".into())),
            "10.1.1.1 is the gateway",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("10.1.1.2,10.1.1.2".into())),
            "allocated twice",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("10.1.1.105".into())),
            "endpoint group \"web\"",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("10.1.2.5".into())),
            "outside the range",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("2001:db8::1".into())),
            "wrong address family",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Ranges("10.1.1.9-10.1.1.3".into())),
            "starts after it ends",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Bitmap("!!!!".into())),
            "base64",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Bitmap("A".repeat(400))),
            "longer than the scope",
        ),
        (
            Box::new(|s| s.allocated = Allocations::Bitmap("AQ==".into())),
            "10.1.1.0 is the network address",
        ),
        (
            Box::new(|s| s.epgs[0].pool = "10.1.1.0-10.1.1.5".into()),
            "network address",
        ),
        (
            Box::new(|s| {
                let e = s.epgs[0].clone();
                s.epgs.push(e);
            }),
            "already has",
        ),
        (
            Box::new(|s| s.epgs[0].allocated = Allocations::Ranges("10.1.1.110".into())),
            "outside its ip pool",
        ),
    ];
    for (mut f, want) in cases {
        let err = corrupt(&mut f);
        assert!(
            matches!(err, IpamError::CorruptState { .. }) && err.to_string().contains(want),
            "want {want:?}, got {err}"
        );
    }
    for junk in [&b""[..], b"{}", b"[1,2]", b"{\"version\":1}", b"\xff\xfe"] {
        assert!(matches!(
            Pool::from_bytes(junk),
            Err(IpamError::CorruptState { .. })
        ));
    }
    assert!(std::mem::size_of::<IpamError>() < 128);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&pool("10.1.1.0/24", None).to_bytes()).unwrap();
    doc["extra"] = serde_json::json!(1);
    assert!(Pool::from_bytes(doc.to_string().as_bytes()).is_err());
}
