//! Scripted scenarios: a sequence of inputs and the outputs each must produce.

use crate::fsm_support;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::fsm::collision::{self, Direction, Policy, Speakers, Verdict};
use bgp::fsm::{
    ConfigError, DownReason, Fsm, Input, NotificationData, OpenInfo, Output, PeerAs, State, Timer,
};
use fsm_support::*;

/// Drives a fresh FSM to Established over an outgoing connection.
fn established(f: &mut Fsm) {
    feed(
        f,
        [
            Input::ManualStart,
            Input::TcpCrAcked,
            open(90),
            Input::KeepAliveMsg,
        ],
    );
    assert_eq!(f.state(), State::Established);
}

fn session_down_reason(outs: &[Output]) -> Option<&DownReason> {
    outs.iter().find_map(|o| match o {
        Output::SessionDown { reason } => Some(reason),
        _ => None,
    })
}

fn idle_hold_started(outs: &[Output]) -> Option<Duration> {
    outs.iter().find_map(|o| match o {
        Output::StartTimer(Timer::IdleHold, d) => Some(*d),
        _ => None,
    })
}

#[test]
fn active_open_reaches_established() {
    let mut f = fsm(cfg());
    assert_outputs(
        &f.process(Input::ManualStart),
        &["start ConnectRetry 120", "connect", "->Connect"],
    );
    let outs = f.process(Input::TcpCrAcked);
    assert_outputs(
        &outs,
        &["stop ConnectRetry", "open", "start Hold 240", "->OpenSent"],
    );
    let expected_open = OpenInfo {
        version: 4,
        asn: LOCAL_AS,
        hold_time: 90,
        bgp_id: LOCAL_ID,
    };
    assert_eq!(outs[1], Output::SendOpen(expected_open));
    assert_outputs(
        &f.process(open(60)),
        &[
            "keepalive",
            "start Keepalive 20",
            "start Hold 60",
            "->OpenConfirm",
        ],
    );
    assert_eq!((f.hold_time(), f.keepalive_time()), (Some(60), Some(20)));
    assert_outputs(
        &f.process(Input::KeepAliveMsg),
        &[
            "start Hold 60",
            "->Established",
            "up 60/20",
            "start DampingReset 60",
        ],
    );
    assert_eq!(f.state().to_string(), "Established");
    let n = f.negotiated().unwrap();
    assert_eq!(
        (n.peer.asn, n.peer.bgp_id, n.internal),
        (PEER_AS, PEER_ID, false)
    );
    assert_outputs(
        &f.process(Input::TimerExpired(Timer::Keepalive)),
        &["keepalive", "start Keepalive 20"],
    );
    assert_outputs(&f.process(Input::UpdateMsg), &["update", "start Hold 60"]);
    assert_outputs(&f.process(Input::KeepAliveMsg), &["start Hold 60"]);
    assert_eq!(f.connect_retry_counter(), 0);
    assert_eq!(f.last_error(), None);
}

#[test]
fn passive_peer_waits_and_never_connects() {
    let mut c = cfg();
    c.passive = true;
    let mut f = fsm(c);
    let mut all = Vec::new();
    all.extend(f.process(Input::ManualStart));
    assert_eq!(f.state(), State::Active);
    assert!(f.accepts_connection());
    all.extend(f.process(Input::TcpConnectionConfirmed));
    assert_eq!(f.state(), State::OpenSent);
    // The connection dies: back to Active without a ConnectRetryTimer.
    all.extend(f.process(Input::TcpConnectionFails));
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.running_timers().count(), 0);
    all.extend(f.process(Input::TcpConnectionConfirmed));
    all.extend(f.process(open(90)));
    all.extend(f.process(Input::KeepAliveMsg));
    assert_eq!(f.state(), State::Established);
    assert!(!all.contains(&Output::InitiateConnection), "{all:?}");
}

#[test]
fn delay_open_waits_before_sending_open() {
    let mut f = fsm(cfg_delay_open());
    f.process(Input::ManualStart);
    assert_outputs(
        &f.process(Input::TcpCrAcked),
        &["stop ConnectRetry", "start DelayOpen 3"],
    );
    assert!(!f.accepts_connection());
    assert_outputs(
        &f.process(Input::TimerExpired(Timer::DelayOpen)),
        &["open", "start Hold 240", "->OpenSent"],
    );
    f.process(open(90));
    f.process(Input::KeepAliveMsg);
    assert_eq!(f.state(), State::Established);
}

#[test]
fn delay_open_answers_an_early_open_with_open_and_keepalive() {
    let mut c = cfg_delay_open();
    c.passive = true;
    let mut f = fsm(c);
    feed(&mut f, [Input::ManualStart, Input::TcpConnectionConfirmed]);
    assert_outputs(
        &f.process(open(90)),
        &[
            "stop DelayOpen",
            "open",
            "keepalive",
            "start Keepalive 30",
            "start Hold 90",
            "->OpenConfirm",
        ],
    );
    f.process(Input::KeepAliveMsg);
    assert_eq!(f.state(), State::Established);
}

#[test]
fn delay_open_bad_open_sends_notification_only_when_configured() {
    let mut bad = peer_open(90);
    bad.asn = 65099;
    let mut f = fsm(cfg_delay_open());
    let outs = feed(
        &mut f,
        [Input::ManualStart, Input::TcpCrAcked, Input::BgpOpen(bad)],
    );
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::SendNotification(_)))
    );
    assert_eq!(
        f.last_error(),
        Some(&DownReason::ProtocolError(notif(2, 2)))
    );

    let mut c = cfg_delay_open();
    c.send_notification_without_open = true;
    let mut f = fsm(c);
    let outs = feed(
        &mut f,
        [Input::ManualStart, Input::TcpCrAcked, Input::BgpOpen(bad)],
    );
    assert_eq!(outs[0], Output::SendNotification(notif(2, 2)));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn hold_timer_expiry_sends_notification_and_goes_down() {
    let mut f = fsm(cfg());
    established(&mut f);
    let outs = f.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(outs[0], Output::SendNotification(notif(4, 0)));
    assert_eq!(
        session_down_reason(&outs),
        Some(&DownReason::HoldTimerExpired)
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.last_error(), Some(&DownReason::HoldTimerExpired));
    assert_eq!(f.connect_retry_counter(), 1);
    assert_eq!(f.negotiated(), None);
    assert_eq!(f.running_timers().collect::<Vec<_>>(), [Timer::IdleHold]);
}

#[test]
fn notification_received_closes_without_answering() {
    let mut f = fsm(cfg());
    established(&mut f);
    let n = NotificationData {
        code: 6,
        subcode: 4,
        data: b"reset".to_vec(),
    };
    let outs = f.process(Input::NotifMsg(n.clone()));
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::SendNotification(_))),
        "{outs:?}"
    );
    assert_eq!(
        session_down_reason(&outs),
        Some(&DownReason::NotificationReceived(n.clone()))
    );
    assert_eq!(f.last_error(), Some(&DownReason::NotificationReceived(n)));
    assert_eq!(f.state(), State::Idle);
}

/// Two FSMs for one peer, resolved as the `collision` module documents.
fn collision(local_id: Ipv4Addr) -> (Fsm, Fsm, Vec<Output>, Verdict) {
    let mut c = cfg();
    c.local_id = local_id;
    let mut outbound = fsm(c.clone());
    feed(&mut outbound, [Input::ManualStart, Input::TcpCrAcked]);
    assert!(!outbound.accepts_connection());
    // The peer connects too: a second FSM for the inbound connection.
    let mut second = c;
    second.automatic_restart = false;
    let mut inbound = fsm(second);
    feed(
        &mut inbound,
        [Input::ManualStartPassive, Input::TcpConnectionConfirmed],
    );
    assert_eq!(inbound.state(), State::OpenSent);
    // The peer's OPEN arrives on our connection first.
    outbound.process(open(90));
    assert_eq!(outbound.state(), State::OpenConfirm);
    let speakers = Speakers {
        local_id,
        local_as: LOCAL_AS,
        remote_id: outbound.negotiated().unwrap().peer.bgp_id,
        remote_as: outbound.negotiated().unwrap().peer.asn,
    };
    let verdict = collision::resolve(
        Direction::Outbound,
        inbound.state(),
        Policy::default(),
        &speakers,
    )
    .unwrap();
    let dumped = match verdict {
        Verdict::Dump(Direction::Outbound) => outbound.process(Input::OpenCollisionDump),
        Verdict::Dump(Direction::Inbound) => inbound.process(Input::OpenCollisionDump),
        other => panic!("unexpected verdict {other:?}"),
    };
    (outbound, inbound, dumped, verdict)
}

#[test]
fn collision_we_win_keeps_our_connection() {
    // 10.0.0.9 > 10.0.0.2: the connection we initiated survives.
    let (mut outbound, inbound, dumped, verdict) = collision(Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(verdict, Verdict::Dump(Direction::Inbound));
    assert_eq!(dumped[0], Output::SendNotification(notif(6, 7)));
    assert_eq!(inbound.state(), State::Idle);
    assert_eq!(inbound.last_error(), Some(&DownReason::CollisionDump));
    assert_eq!(
        idle_hold_started(&dumped),
        None,
        "the secondary FSM does not restart"
    );
    outbound.process(Input::KeepAliveMsg);
    assert_eq!(outbound.state(), State::Established);
}

#[test]
fn collision_we_lose_keeps_the_peers_connection() {
    // 10.0.0.1 < 10.0.0.2: the connection the peer initiated survives.
    let (outbound, mut inbound, dumped, verdict) = collision(LOCAL_ID);
    assert_eq!(verdict, Verdict::Dump(Direction::Outbound));
    assert_eq!(dumped[0], Output::SendNotification(notif(6, 7)));
    assert_eq!(outbound.state(), State::Idle);
    feed(&mut inbound, [open(90), Input::KeepAliveMsg]);
    assert_eq!(inbound.state(), State::Established);
}

#[test]
fn hold_time_zero_runs_no_hold_or_keepalive_timer() {
    let mut f = fsm(cfg());
    feed(&mut f, [Input::ManualStart, Input::TcpCrAcked]);
    assert_outputs(
        &f.process(open(0)),
        &["keepalive", "stop Hold", "->OpenConfirm"],
    );
    assert_eq!((f.hold_time(), f.keepalive_time()), (Some(0), Some(0)));
    assert_outputs(
        &f.process(Input::KeepAliveMsg),
        &["->Established", "up 0/0", "start DampingReset 60"],
    );
    assert_outputs(&f.process(Input::UpdateMsg), &["update"]);
    assert_outputs(&f.process(Input::KeepAliveMsg), &[]);
    assert_outputs(&f.process(Input::TimerExpired(Timer::Hold)), &[]);
    assert_outputs(&f.process(Input::TimerExpired(Timer::Keepalive)), &[]);
    assert_eq!(f.state(), State::Established);
}

#[test]
fn local_hold_time_zero_also_disables_timers() {
    let mut c = cfg();
    c.hold_time = 0;
    let mut f = fsm(c);
    let outs = feed(&mut f, [Input::ManualStart, Input::TcpCrAcked]);
    // The large hold timer still guards OpenSent.
    assert!(outs.contains(&Output::StartTimer(Timer::Hold, Duration::from_secs(240))));
    f.process(open(90));
    assert_eq!(f.hold_time(), Some(0));
    assert_eq!(f.running_timers().count(), 0);
}

#[test]
fn each_bad_open_produces_its_notification() {
    let good = peer_open(90);
    let cases: Vec<(&str, OpenInfo, PeerAs, NotificationData)> = vec![
        (
            "version 3",
            OpenInfo { version: 3, ..good },
            PeerAs::Exact(PEER_AS),
            NotificationData {
                code: 2,
                subcode: 1,
                data: vec![0, 4],
            },
        ),
        (
            "wrong AS",
            OpenInfo { asn: 65010, ..good },
            PeerAs::Exact(PEER_AS),
            notif(2, 2),
        ),
        (
            "AS outside range",
            OpenInfo {
                asn: 4_200_000_000,
                ..good
            },
            PeerAs::Range {
                min: 64512,
                max: 65534,
            },
            notif(2, 2),
        ),
        (
            "zero identifier",
            OpenInfo {
                bgp_id: Ipv4Addr::UNSPECIFIED,
                ..good
            },
            PeerAs::Exact(PEER_AS),
            notif(2, 3),
        ),
        (
            "our identifier on iBGP",
            OpenInfo {
                asn: LOCAL_AS,
                bgp_id: LOCAL_ID,
                ..good
            },
            PeerAs::Exact(LOCAL_AS),
            notif(2, 3),
        ),
        (
            "hold time 1",
            OpenInfo {
                hold_time: 1,
                ..good
            },
            PeerAs::Exact(PEER_AS),
            notif(2, 6),
        ),
        (
            "hold time 2",
            OpenInfo {
                hold_time: 2,
                ..good
            },
            PeerAs::Exact(PEER_AS),
            notif(2, 6),
        ),
    ];
    for (name, bad, peer_as, expected) in cases {
        let mut c = cfg();
        c.peer_as = peer_as;
        let mut f = fsm(c);
        let outs = feed(
            &mut f,
            [Input::ManualStart, Input::TcpCrAcked, Input::BgpOpen(bad)],
        );
        assert_eq!(
            outs[0],
            Output::SendNotification(expected.clone()),
            "{name}"
        );
        assert_eq!(f.state(), State::Idle, "{name}");
        assert_eq!(
            f.last_error(),
            Some(&DownReason::ProtocolError(expected)),
            "{name}"
        );
        assert_eq!(f.connect_retry_counter(), 1, "{name}");
    }
}

#[test]
fn ebgp_peer_may_use_our_identifier() {
    let mut f = fsm(cfg());
    let o = OpenInfo {
        bgp_id: LOCAL_ID,
        ..peer_open(90)
    };
    feed(
        &mut f,
        [Input::ManualStart, Input::TcpCrAcked, Input::BgpOpen(o)],
    );
    assert_eq!(f.state(), State::OpenConfirm);
}

#[test]
fn repeated_flaps_are_damped_and_forgiven_after_stability() {
    // Automatic restarts only: a ManualStop would forget the damping.
    let mut waits = Vec::new();
    let mut f = fsm(cfg());
    f.process(Input::ManualStart);
    for round in 0..5 {
        feed(&mut f, [Input::TcpCrAcked, open(90), Input::KeepAliveMsg]);
        assert_eq!(f.state(), State::Established, "round {round}");
        let outs = f.process(Input::NotifMsg(notif(6, 4)));
        waits.push(idle_hold_started(&outs).unwrap().as_secs());
        // The automatic restart.
        let outs = f.process(Input::TimerExpired(Timer::IdleHold));
        assert!(outs.contains(&Output::InitiateConnection));
    }
    assert_eq!(waits, [5, 10, 20, 40, 40]);
    assert_eq!(f.damped_flaps(), 5);
    assert_eq!(
        f.connect_retry_counter(),
        5,
        "automatic restarts keep the counter"
    );
    // Stable for the damping reset period: the next flap waits the initial time again.
    feed(&mut f, [Input::TcpCrAcked, open(90), Input::KeepAliveMsg]);
    assert!(
        f.process(Input::TimerExpired(Timer::DampingReset))
            .is_empty()
    );
    assert_eq!(f.idle_hold_time(), Duration::from_secs(5));
    let outs = f.process(Input::TcpConnectionFails);
    assert_eq!(idle_hold_started(&outs), Some(Duration::from_secs(5)));
    assert_eq!(f.idle_hold_time(), Duration::from_secs(10));
}

#[test]
fn without_damping_the_idle_hold_time_stays_constant() {
    let mut c = cfg();
    c.damping = None;
    let mut f = fsm(c);
    f.process(Input::ManualStart);
    for _ in 0..3 {
        feed(&mut f, [Input::TcpCrAcked, open(90), Input::KeepAliveMsg]);
        let outs = f.process(Input::TcpConnectionFails);
        assert_eq!(idle_hold_started(&outs), Some(Duration::from_secs(5)));
        assert!(!f.is_running(Timer::DampingReset));
        f.process(Input::TimerExpired(Timer::IdleHold));
    }
}

#[test]
fn automatic_start_waits_for_the_idle_hold_timer() {
    let mut f = fsm(cfg());
    established(&mut f);
    f.process(Input::TcpConnectionFails);
    assert!(f.process(Input::AutomaticStart).is_empty());
    assert_eq!(f.state(), State::Idle);
    // A manual start does not wait and resets the counter.
    let outs = f.process(Input::ManualStart);
    assert_eq!(outs[0], Output::StopTimer(Timer::IdleHold));
    assert_eq!((f.state(), f.connect_retry_counter()), (State::Connect, 0));
}

#[test]
fn automatic_restart_of_a_passive_run_stays_passive() {
    let mut f = fsm(cfg());
    feed(
        &mut f,
        [
            Input::ManualStartPassive,
            Input::TcpConnectionConfirmed,
            Input::TcpConnectionFails,
        ],
    );
    assert_eq!(f.state(), State::Active);
    feed(
        &mut f,
        [Input::TcpConnectionConfirmed, open(90), Input::UpdateMsg],
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(
        f.last_error(),
        Some(&DownReason::ProtocolError(notif(5, 2)))
    );
    let outs = f.process(Input::TimerExpired(Timer::IdleHold));
    assert_outputs(&outs, &["->Active"]);
}

#[test]
fn manual_stop_sends_cease_and_disables_restarts() {
    let mut f = fsm(cfg());
    established(&mut f);
    let outs = f.process(Input::ManualStop);
    assert_eq!(outs[0], Output::SendNotification(notif(6, 2)));
    assert_eq!(session_down_reason(&outs), Some(&DownReason::ManualStop));
    assert_eq!(idle_hold_started(&outs), None);
    assert_eq!(f.running_timers().count(), 0);
    assert_eq!(f.last_error(), None, "a manual stop is not an error");
}

#[test]
fn automatic_stop_uses_the_given_cease_subcode_and_restarts() {
    let mut f = fsm(cfg());
    established(&mut f);
    let outs = f.process(Input::AutomaticStop { cease_subcode: 1 });
    assert_eq!(outs[0], Output::SendNotification(notif(6, 1)));
    assert_eq!(idle_hold_started(&outs), Some(Duration::from_secs(5)));
}

#[test]
fn no_automatic_restart_when_not_allowed() {
    let mut c = cfg();
    c.automatic_restart = false;
    let mut f = fsm(c);
    established(&mut f);
    let outs = f.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(idle_hold_started(&outs), None);
    assert_eq!(f.running_timers().count(), 0);
    // The driver may restart it itself.
    f.process(Input::AutomaticStart);
    assert_eq!(f.state(), State::Connect);
}

#[test]
fn connect_retry_timer_retries_the_connection() {
    let mut f = fsm(cfg());
    f.process(Input::ManualStart);
    for _ in 0..3 {
        assert_outputs(
            &f.process(Input::TimerExpired(Timer::ConnectRetry)),
            &["drop", "start ConnectRetry 120", "connect"],
        );
    }
    assert_eq!((f.state(), f.connect_retry_counter()), (State::Connect, 0));
}

#[test]
fn refused_connection_goes_idle_without_counting() {
    let mut f = fsm(cfg());
    f.process(Input::ManualStart);
    let outs = f.process(Input::TcpConnectionFails);
    assert_eq!(idle_hold_started(&outs), Some(Duration::from_secs(5)));
    assert_eq!(f.connect_retry_counter(), 0);
    assert_eq!(f.idle_hold_time(), Duration::from_secs(5), "not damped");
    assert_eq!(f.last_error(), Some(&DownReason::ConnectionFailed));
}

#[test]
fn version_error_notification_does_not_count_before_established() {
    let mut f = fsm(cfg());
    feed(&mut f, [Input::ManualStart, Input::TcpCrAcked]);
    f.process(Input::NotifMsg(NotificationData {
        code: 2,
        subcode: 1,
        data: vec![0, 3],
    }));
    assert_eq!((f.state(), f.connect_retry_counter()), (State::Idle, 0));
}

#[test]
fn header_error_in_established_sends_the_header_error() {
    let mut f = fsm(cfg());
    established(&mut f);
    let n = NotificationData {
        code: 1,
        subcode: 1,
        data: vec![0xff],
    };
    let outs = f.process(Input::BgpHeaderErr(n.clone()));
    assert_eq!(outs[0], Output::SendNotification(n.clone()));
    assert_eq!(
        session_down_reason(&outs),
        Some(&DownReason::ProtocolError(n))
    );
}

#[test]
fn update_error_sends_the_codecs_notification() {
    let mut f = fsm(cfg());
    established(&mut f);
    let n = NotificationData {
        code: 3,
        subcode: 4,
        data: vec![0x40, 1, 1, 7],
    };
    let outs = f.process(Input::UpdateMsgErr(n.clone()));
    assert_eq!(outs[0], Output::SendNotification(n));
}

#[test]
fn stale_timer_expiries_are_ignored() {
    let mut f = fsm(cfg());
    feed(&mut f, [Input::ManualStart, Input::TcpCrAcked]);
    // The ConnectRetryTimer was stopped when TCP came up.
    assert!(
        f.process(Input::TimerExpired(Timer::ConnectRetry))
            .is_empty()
    );
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn inbound_connection_in_idle_is_refused() {
    let mut f = fsm(cfg());
    assert_outputs(&f.process(Input::TcpConnectionConfirmed), &["drop"]);
    assert!(!f.accepts_connection());
}

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    type Mutation = fn(&mut bgp::fsm::FsmConfig);
    let cases: Vec<(Mutation, ConfigError)> = vec![
        (|c| c.hold_time = 2, ConfigError::HoldTime(2)),
        (
            |c| c.keepalive = 0,
            ConfigError::ZeroKeepalive { hold_time: 90 },
        ),
        (|c| c.local_as = 0, ConfigError::ZeroLocalAs),
        (
            |c| c.local_id = Ipv4Addr::UNSPECIFIED,
            ConfigError::ZeroLocalId,
        ),
        (|c| c.peer_as = PeerAs::Exact(0), ConfigError::ZeroPeerAs),
        (
            |c| c.peer_as = PeerAs::Range { min: 10, max: 5 },
            ConfigError::BadPeerAsRange { min: 10, max: 5 },
        ),
        (
            |c| c.connect_retry = Duration::ZERO,
            ConfigError::ZeroTimer("connect retry"),
        ),
        (
            |c| c.delay_open = Some(Duration::ZERO),
            ConfigError::ZeroTimer("delay open"),
        ),
        (
            |c| c.idle_hold = Duration::ZERO,
            ConfigError::ZeroTimer("idle hold"),
        ),
    ];
    for (mutate, expected) in cases {
        let mut c = cfg();
        mutate(&mut c);
        let err = Fsm::new(c).unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        ConfigError::HoldTime(2).to_string(),
        "hold time 2 s is invalid: it must be 0 or at least 3 s (RFC 4271 §4.2)"
    );
    let mut c = cfg();
    c.hold_time = 0;
    c.keepalive = 0;
    assert!(Fsm::new(c).is_ok(), "hold time 0 needs no keepalive");
}

#[test]
fn states_display_the_names_frr_and_bird_use() {
    let names: Vec<String> = State::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names,
        [
            "Idle",
            "Connect",
            "Active",
            "OpenSent",
            "OpenConfirm",
            "Established"
        ]
    );
}

#[test]
fn down_reasons_read_well() {
    let r = DownReason::NotificationReceived(notif(6, 2));
    assert_eq!(r.to_string(), "notification received: cease (6/2)");
    let r = DownReason::UnexpectedInput {
        state: State::Connect,
        input: Input::KeepAliveMsg.kind(),
    };
    assert_eq!(r.to_string(), "unexpected KeepAliveMsg in state Connect");
}
