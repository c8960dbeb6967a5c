//! Shared helpers of the FSM integration tests: a base configuration, sample messages and
//! a short text form of outputs that keeps expectations readable.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::fsm::{Damping, Fsm, FsmConfig, Input, NotificationData, OpenInfo, Output, PeerAs};

pub const LOCAL_AS: u32 = 65001;
pub const PEER_AS: u32 = 65002;
pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// eBGP 65001 → 65002, hold 90 s, keepalive 30 s, connect retry 120 s, idle hold 5 s
/// damped up to 40 s and forgotten after 60 s Established.
pub fn cfg() -> FsmConfig {
    let mut c = FsmConfig::new(LOCAL_AS, LOCAL_ID, PeerAs::Exact(PEER_AS));
    c.connect_retry = Duration::from_secs(120);
    c.idle_hold = Duration::from_secs(5);
    c.damping = Some(Damping {
        max_idle_hold: Duration::from_secs(40),
        reset_after: Duration::from_secs(60),
    });
    c
}

/// [`cfg`] with DelayOpen 3 s.
pub fn cfg_delay_open() -> FsmConfig {
    let mut c = cfg();
    c.delay_open = Some(Duration::from_secs(3));
    c
}

pub fn fsm(c: FsmConfig) -> Fsm {
    Fsm::new(c).expect("test configuration is valid")
}

/// The peer's OPEN with the given hold time.
pub fn peer_open(hold_time: u16) -> OpenInfo {
    OpenInfo {
        version: 4,
        asn: PEER_AS,
        hold_time,
        bgp_id: PEER_ID,
    }
}

pub fn open(hold_time: u16) -> Input {
    Input::BgpOpen(peer_open(hold_time))
}

pub fn notif(code: u8, subcode: u8) -> NotificationData {
    NotificationData::new(code, subcode)
}

/// Feeds inputs and returns the outputs of the last one.
pub fn feed(f: &mut Fsm, inputs: impl IntoIterator<Item = Input>) -> Vec<Output> {
    let mut last = Vec::new();
    for i in inputs {
        last = f.process(i);
    }
    last
}

/// A compact text form of one output.
pub fn short(o: &Output) -> String {
    match o {
        Output::InitiateConnection => "connect".into(),
        Output::DropConnection => "drop".into(),
        Output::SendOpen(_) => "open".into(),
        Output::SendKeepalive => "keepalive".into(),
        Output::SendNotification(n) => format!("notify {}/{}", n.code, n.subcode),
        Output::StartTimer(t, d) => format!("start {t:?} {}", d.as_secs()),
        Output::StopTimer(t) => format!("stop {t:?}"),
        Output::StateChanged { to, .. } => format!("->{to}"),
        Output::SessionUp(n) => format!("up {}/{}", n.hold_time, n.keepalive),
        Output::SessionDown { .. } => "down".into(),
        Output::ProcessUpdate => "update".into(),
        Output::ReleaseResources => "release".into(),
    }
}

pub fn shorts(outs: &[Output]) -> Vec<String> {
    outs.iter().map(short).collect()
}

/// Asserts the compact form of `outs`.
#[track_caller]
pub fn assert_outputs(outs: &[Output], expected: &[&str]) {
    assert_eq!(shorts(outs), expected, "full outputs: {outs:?}");
}
