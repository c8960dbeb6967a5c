//! State-to-state tests of the calc: what it asks for depends only on its current inputs,
//! checked against the whole-state functions of `crate::routing` as the oracle.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerStatus, Routes};
use ipnet::IpNet;

use super::*;
use crate::fib::{Route, route_set};
use crate::routing::{FibInputs, Learned, LocalEndpoint};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn plan(advertise: AdvertiseMode, gr: u16) -> BgpPlan {
    BgpPlan {
        asn: 65001,
        router_id: Ipv4Addr::new(50, 1, 1, 1),
        router_net: net("50.1.1.0/24"),
        router_net_full: net("50.1.1.1/24"),
        neighbors: BTreeMap::new(),
        communities: Vec::new(),
        large_communities: Vec::new(),
        graceful_restart: gr,
        advertise,
        guard: contiv_model::bgp::GuardSpec {
            accept_default: true,
            max_prefix: contiv_model::Bgp::DEFAULT_MAX_PREFIX,
            ttl_security: true,
            local_nets: Vec::new(),
        },
    }
}

/// A view whose intent names 10.0.0.0/8 too, with a default accepted.
fn open_view() -> IntentView {
    let mut v = view(Some(plan(AdvertiseMode::PerEndpoint, 0)));
    v.fabric_prefixes.insert(net("10.0.0.0/8"));
    v
}

fn view(p: Option<BgpPlan>) -> IntentView {
    IntentView {
        have_intent: true,
        fwd_mode: ROUTING.into(),
        bgp: p.map(Ok),
        subnets: [("default:contiv-net".to_string(), net("20.1.1.0/24"))].into(),
        direct: Vec::new(),
        fabric_prefixes: [net("50.1.1.0/24"), net("50.1.2.0/24")].into(),
        gateways: BTreeSet::new(),
    }
}

fn ep(addr: &str, ix: u32) -> Endpoint {
    Endpoint {
        address: ip(addr),
        host_ifindex: ix,
        network: "default:contiv-net".into(),
    }
}

fn learned(routes: &[(&str, &[&str])]) -> Arc<Routes> {
    Arc::new(
        routes
            .iter()
            .map(|(p, nh)| (net(p), nh.iter().map(|a| ip(a)).collect()))
            .collect(),
    )
}

#[test]
fn an_endpoint_touches_its_own_route_and_advertisement_only() {
    let mut c = Calc::new();
    c.set_intent(view(Some(plan(AdvertiseMode::PerEndpoint, 0))));
    c.set_learned(learned(&[("0.0.0.0/0", &["50.1.1.254"])]));
    for i in 1..=100u32 {
        c.endpoint_up(&format!("c{i}/eth0"), ep(&format!("20.1.1.{i}"), 100 + i));
    }
    c.take_updates();

    c.endpoint_up("new/eth0", ep("20.1.1.200", 7));
    let u = c.take_updates();
    let p = net("20.1.1.200/32");
    assert_eq!(u.routes, [(p, Some(Route::dev(p, 7)))].into());
    assert_eq!(u.advertise, [(p, true)].into());

    c.endpoint_down("new/eth0");
    let u = c.take_updates();
    assert_eq!(u.routes, [(p, None)].into());
    assert_eq!(u.advertise, [(p, false)].into());
    assert!(c.take_updates().is_empty());
}

#[test]
fn a_local_endpoint_wins_over_a_learned_route_for_its_address() {
    let mut c = Calc::new();
    c.set_intent(view(Some(plan(AdvertiseMode::PerEndpoint, 0))));
    let p = net("20.1.1.5/32");
    c.set_learned(learned(&[("20.1.1.5/32", &["50.1.1.254"])]));
    assert_eq!(c.routes()[&p], Route::new(p, [ip("50.1.1.254")]));
    c.endpoint_up("a/eth0", ep("20.1.1.5", 9));
    assert_eq!(c.routes()[&p], Route::dev(p, 9));
    // The ToR echoes it again with another next hop: still ours.
    c.set_learned(learned(&[("20.1.1.5/32", &["50.1.1.253"])]));
    assert_eq!(c.routes()[&p], Route::dev(p, 9));
    c.endpoint_down("a/eth0");
    assert_eq!(c.routes()[&p], Route::new(p, [ip("50.1.1.253")]));
}

#[test]
fn the_router_subnet_is_never_taken_from_bgp() {
    let mut c = Calc::new();
    c.set_learned(learned(&[("50.1.1.0/24", &["50.1.1.254"])]));
    assert!(
        !c.routes().contains_key(&net("50.1.1.0/24")),
        "no plan: nothing is imported"
    );
    c.set_intent(view(Some(plan(AdvertiseMode::PerEndpoint, 0))));
    assert!(!c.routes().contains_key(&net("50.1.1.0/24")));
    // The fabric's intent names it (a router subnet), yet it is the host's own.
    assert_eq!(
        c.rejected()[&net("50.1.1.0/24")],
        import::Rejection::OwnPrefix(net("50.1.1.0/24"))
    );
}

#[test]
fn the_import_policy_follows_intent_and_the_hosts_own_prefixes() {
    let mut c = Calc::new();
    c.set_intent(view(Some(plan(AdvertiseMode::PerEndpoint, 0))));
    c.set_learned(learned(&[
        ("20.1.1.9/32", &["50.1.1.254"]),
        ("30.1.1.0/24", &["50.1.1.254"]),
        ("192.168.77.0/24", &["50.1.1.254"]),
    ]));
    assert!(c.routes().contains_key(&net("20.1.1.9/32")));
    assert_eq!(
        c.rejected().keys().copied().collect::<Vec<_>>(),
        [net("30.1.1.0/24"), net("192.168.77.0/24")]
    );
    c.take_updates();
    // A new network: its subnet's route is installed, nothing else is touched (the
    // routes already learned are evaluated again; no new input from the speaker).
    let mut v = view(Some(plan(AdvertiseMode::PerEndpoint, 0)));
    v.subnets.insert("default:blue".into(), net("30.1.1.0/24"));
    v.subnets
        .insert("default:mgmt-by-mistake".into(), net("192.168.77.0/24"));
    c.set_intent(v);
    let u = c.take_updates();
    assert_eq!(
        u.routes.keys().copied().collect::<Vec<_>>(),
        [net("30.1.1.0/24"), net("192.168.77.0/24")]
    );
    assert!(c.routes().contains_key(&net("30.1.1.0/24")));
    // The kernel says 192.168.77.0/24 is the host's own (its management network): that
    // holds although the intent names it.
    c.set_own_prefixes([net("192.168.77.0/24")].into());
    assert!(!c.routes().contains_key(&net("192.168.77.0/24")));
    assert_eq!(
        c.rejected()[&net("192.168.77.0/24")],
        import::Rejection::OwnPrefix(net("192.168.77.0/24"))
    );
    assert!(c.routes().contains_key(&net("20.1.1.9/32")));
}

#[test]
fn learned_changes_touch_only_the_prefixes_that_changed() {
    let mut c = Calc::new();
    c.set_intent(open_view());
    c.take_updates();
    let many: Vec<(String, Vec<&str>)> = (0..1000)
        .map(|i| {
            (
                format!("10.{}.{}.0/24", i / 256, i % 256),
                vec!["50.1.1.254"],
            )
        })
        .collect();
    let table: Routes = many
        .iter()
        .map(|(p, nh)| (net(p), nh.iter().map(|a| ip(a)).collect()))
        .collect();
    c.set_learned(Arc::new(table.clone()));
    assert_eq!(c.take_updates().routes.len(), 1000);
    let mut next = table;
    next.insert(net("10.0.5.0/24"), vec![ip("50.1.1.254"), ip("50.1.1.253")]);
    next.remove(&net("10.0.6.0/24"));
    next.insert(net("10.99.0.0/16"), vec![ip("50.1.1.253")]);
    c.set_learned(Arc::new(next));
    let u = c.take_updates();
    assert_eq!(
        u.routes.keys().copied().collect::<Vec<_>>(),
        vec![net("10.0.5.0/24"), net("10.0.6.0/24"), net("10.99.0.0/16")]
    );
    assert_eq!(u.routes[&net("10.0.6.0/24")], None);
}

#[test]
fn advertisement_modes_follow_the_plan() {
    let mut c = Calc::new();
    c.set_intent(view(Some(plan(AdvertiseMode::PerEndpoint, 0))));
    c.endpoint_up("a", ep("20.1.1.1", 1));
    c.endpoint_up("b", ep("20.1.1.2", 2));
    c.endpoint_up("c", ep("20.1.9.3", 3));
    c.take_updates();
    c.set_intent(view(Some(plan(
        AdvertiseMode::HostBlocks(vec![net("20.1.1.0/28")]),
        0,
    ))));
    assert_eq!(
        c.advertised(),
        [net("20.1.1.0/28"), net("20.1.9.3/32")].into()
    );
    let u = c.take_updates();
    assert_eq!(
        u.advertise,
        [
            (net("20.1.1.0/28"), true),
            (net("20.1.1.1/32"), false),
            (net("20.1.1.2/32"), false),
        ]
        .into(),
        "the /32 outside every block is no change"
    );
    c.set_intent(view(Some(plan(AdvertiseMode::NetworkSubnets, 0))));
    assert_eq!(c.advertised(), [net("20.1.1.0/24")].into());
    c.set_intent(view(None));
    assert!(
        c.advertised().is_empty(),
        "no Bgp object, nothing originated"
    );
}

/// One input change.
#[derive(Debug, Clone)]
enum Step {
    Up(String, Endpoint),
    Down(String),
    Learned(Arc<Routes>),
    Intent(Box<IntentView>),
}

fn apply(c: &mut Calc, s: &Step) {
    match s {
        Step::Up(k, e) => c.endpoint_up(k, e.clone()),
        Step::Down(k) => c.endpoint_down(k),
        Step::Learned(l) => c.set_learned(l.clone()),
        Step::Intent(v) => c.set_intent((**v).clone()),
    }
}

/// A small deterministic generator (xorshift), so the test needs no seed file.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_step(r: &mut Rng) -> Step {
    let key = format!("c{}", r.below(12));
    match r.below(6) {
        0 | 1 => Step::Up(
            key,
            ep(&format!("20.1.1.{}", 1 + r.below(8)), 1 + r.below(5) as u32),
        ),
        2 => Step::Down(key),
        3 | 4 => {
            let mut t = Routes::new();
            for _ in 0..r.below(6) {
                let p = match r.below(4) {
                    0 => net("0.0.0.0/0"),
                    1 => net("50.1.1.0/24"),
                    2 => net(&format!("20.1.1.{}/32", 1 + r.below(8))),
                    _ => net(&format!("10.{}.0.0/16", r.below(4))),
                };
                let nh = (0..r.below(3))
                    .map(|i| ip(&format!("50.1.1.{}", 250 + i)))
                    .collect();
                t.insert(p, nh);
            }
            Step::Learned(Arc::new(t))
        }
        _ => Step::Intent(Box::new(match r.below(4) {
            0 => view(None),
            1 => view(Some(plan(AdvertiseMode::PerEndpoint, 0))),
            2 => view(Some(plan(
                AdvertiseMode::HostBlocks(vec![net("20.1.1.0/30")]),
                0,
            ))),
            _ => view(Some(plan(AdvertiseMode::NetworkSubnets, 0))),
        })),
    }
}

/// What the whole-state functions say for the calc's current inputs.
#[test]
fn each_networks_gateway_is_routed_to_the_loopback_for_proxy_arp() {
    let mut c = Calc::new();
    let gw = net("20.1.1.254/32");
    let mut v = view(Some(plan(AdvertiseMode::PerEndpoint, 0)));
    v.gateways.insert(gw);
    c.set_intent(v.clone());
    assert_eq!(c.routes()[&gw], Route::dev(gw, LOOPBACK_IFINDEX));
    // A learned route for the anycast gateway never replaces it, and is not "rejected".
    c.set_learned(learned(&[("20.1.1.254/32", &["50.1.1.254"])]));
    assert_eq!(c.routes()[&gw], Route::dev(gw, LOOPBACK_IFINDEX));
    assert!(c.rejected().is_empty(), "{:?}", c.rejected());
    // The network goes: so does the route (the learned one is then the route).
    v.gateways.clear();
    c.set_intent(v);
    assert_eq!(c.routes()[&gw], Route::new(gw, [ip("50.1.1.254")]));
}

fn oracle(c: &Calc) -> (crate::fib::RouteSet, BTreeSet<IpNet>) {
    let locals: Vec<LocalEndpoint> = c
        .endpoints()
        .iter()
        .map(|(k, e)| LocalEndpoint {
            id: k.clone(),
            address: e.address,
            host_ifindex: e.host_ifindex,
        })
        .collect();
    let filter = c.intent().import_filter(&BTreeSet::new());
    let learned: Vec<Learned> = c
        .learned()
        .iter()
        .filter(|(p, _)| filter.check(**p).is_ok())
        .map(|(p, nh)| Learned {
            prefix: *p,
            nexthops: nh.clone(),
        })
        .collect();
    let protected: Vec<IpNet> = c
        .intent()
        .plan()
        .map(|p| p.router_net)
        .into_iter()
        .collect();
    let fib = routing::desired_fib(&FibInputs {
        endpoints: &locals,
        learned: &learned,
        direct: &[],
        protected: &protected,
    });
    let adverts = match c.intent().plan() {
        None => BTreeSet::new(),
        Some(p) => routing::advertisements(&p.advertise, &locals, |e| {
            c.intent()
                .subnets
                .get(&c.endpoints()[&e.id].network)
                .copied()
        }),
    };
    (fib, adverts)
}

#[test]
fn the_outputs_depend_on_the_inputs_not_on_the_path() {
    for seed in 1..=300u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut c = Calc::new();
        // The managers' view, built only from the updates.
        let mut fib: BTreeMap<IpNet, Route> = BTreeMap::new();
        let mut adverts: BTreeSet<IpNet> = BTreeSet::new();
        for _ in 0..40 {
            let s = random_step(&mut r);
            apply(&mut c, &s);
            let u = c.take_updates();
            for (p, route) in u.routes {
                match route {
                    Some(rt) => fib.insert(p, rt),
                    None => fib.remove(&p),
                };
            }
            for (p, on) in u.advertise {
                assert_eq!(
                    adverts.contains(&p),
                    !on,
                    "seed {seed}: {p} toggled to what it was"
                );
                if on {
                    adverts.insert(p);
                } else {
                    adverts.remove(&p);
                }
            }
            let (want_fib, want_adverts) = oracle(&c);
            // Two endpoints with one address: the calc routes to the first by key
            // whatever order they came in; the oracle is given them in key order and
            // lets the last win, so compare only where addresses are unique.
            let unique = {
                let mut seen = BTreeSet::new();
                c.endpoints().values().all(|e| seen.insert(e.address))
            };
            if unique {
                assert_eq!(
                    route_set(fib.values().cloned()),
                    want_fib,
                    "seed {seed} after {s:?}"
                );
            }
            assert_eq!(adverts, want_adverts, "seed {seed} after {s:?}");
            assert_eq!(c.advertised(), adverts);
        }
    }
}

fn peer(state: &str, eor: bool, established_at: Option<u64>) -> PeerStatus {
    PeerStatus {
        address: ip("50.1.1.254"),
        remote_as: Some(65000),
        state: state.into(),
        established_at,
        updates_in: 0,
        updates_out: 0,
        prefixes_received: 0,
        prefixes_advertised: 0,
        flaps: 0,
        last_error: None,
        transitions: 0,
        eor_received: eor,
        stale_routes: 0,
        capabilities: Vec::new(),
        dynamic: false,
        bfd: None,
    }
}

#[test]
fn the_restart_hold_ends_at_end_of_rib_or_after_the_hold_time() {
    let t0 = Instant::now();
    let gr = plan(AdvertiseMode::PerEndpoint, 120);
    let mut c = Convergence::new(t0);
    assert!(c.hold(t0, 1000, Some(&gr), Some(&[])), "no session yet");
    let up = [peer("Established", false, Some(990))];
    assert!(
        c.hold(t0, 1000, Some(&gr), Some(&up)),
        "GR: up is not enough"
    );
    let eor = [peer("Established", true, Some(990))];
    assert!(!c.hold(t0, 1000, Some(&gr), Some(&eor)));
    assert!(!c.hold(t0, 1000, Some(&gr), Some(&[])), "once over, over");

    let mut c = Convergence::new(t0);
    let later = t0 + Duration::from_secs(120);
    assert!(c.hold(later - Duration::from_secs(1), 0, Some(&gr), Some(&[])));
    assert!(
        !c.hold(later, 0, Some(&gr), Some(&[])),
        "the hold time is over"
    );

    let no_gr = plan(AdvertiseMode::PerEndpoint, 0);
    let mut c = Convergence::new(t0);
    let just_up = [peer("Established", false, Some(1000))];
    assert!(c.hold(t0, 1001, Some(&no_gr), Some(&just_up)));
    assert!(!c.hold(t0, 1000 + SETTLED_AFTER, Some(&no_gr), Some(&just_up)));

    let mut c = Convergence::new(t0);
    assert!(!c.hold(t0, 0, None, None), "no Bgp object: nothing to hold");
    let mut c = Convergence::new(t0);
    assert!(!c.hold(t0, 0, Some(&no_gr), None), "no speaker: converged");
}

#[test]
fn a_learned_default_never_competes_with_the_hosts_own() {
    let mut c = Calc::new();
    c.set_intent(open_view());
    c.take_updates();
    c.set_learned(learned(&[
        ("0.0.0.0/0", &["50.1.1.254"]),
        ("10.1.0.0/16", &["50.1.1.254"]),
    ]));
    assert!(c.routes().contains_key(&DEFAULT_V4));
    c.take_updates();
    c.set_host_default(true);
    let u = c.take_updates();
    assert_eq!(
        u.routes,
        [(DEFAULT_V4, None)].into(),
        "only the default is touched"
    );
    c.set_learned(learned(&[("0.0.0.0/0", &["50.1.1.253"])]));
    assert!(!c.routes().contains_key(&DEFAULT_V4));
    c.set_host_default(false);
    assert_eq!(
        c.routes()[&DEFAULT_V4],
        Route::new(DEFAULT_V4, [ip("50.1.1.253")])
    );
}

#[test]
fn endpoints_sharing_an_address_route_the_same_whatever_the_order() {
    let run = |order: &[(&str, u32)]| {
        let mut c = Calc::new();
        for (k, ix) in order {
            c.endpoint_up(k, ep("20.1.1.7", *ix));
        }
        c.routes()[&net("20.1.1.7/32")].clone()
    };
    assert_eq!(run(&[("a", 1), ("b", 2)]), run(&[("b", 2), ("a", 1)]));
    let mut c = Calc::new();
    c.endpoint_up("b", ep("20.1.1.7", 2));
    c.endpoint_up("a", ep("20.1.1.7", 1));
    c.endpoint_down("a");
    assert_eq!(
        c.routes()[&net("20.1.1.7/32")],
        Route::dev(net("20.1.1.7/32"), 2)
    );
    c.endpoint_down("b");
    assert!(c.routes().is_empty());
}
