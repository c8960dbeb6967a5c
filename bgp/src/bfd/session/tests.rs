use super::*;
use crate::bfd::auth::{AuthKey, AuthType, sign};

const LOCAL: u32 = 0x1111;
const PEER: u32 = 0x7777;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn started() -> Session {
    let mut s = Session::new(LOCAL, BfdConfig::default()).unwrap();
    let out = s.process(Input::Start, Duration::ZERO, 0);
    assert!(matches!(&out[0], Output::Send(p) if p.state == BfdState::Down && p.your_discr == 0));
    assert_eq!(out[1], Output::ArmTx(SLOW_TX_INTERVAL));
    s
}

fn from_peer(state: BfdState, your_discr: u32) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: PEER,
        your_discr,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
        auth: None,
    }
}

fn sent(out: &[Output]) -> Vec<&ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn changes(out: &[Output]) -> Vec<(BfdState, BfdState, Diag)> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn rx(s: &mut Session, p: ControlPacket, now: Duration) -> Vec<Output> {
    s.process(Input::Received(p), now, 0)
}

/// A started session brought into `state` by packets from the peer.
fn in_state(state: BfdState) -> Session {
    let mut s = started();
    match state {
        BfdState::Down => {}
        BfdState::Init => {
            rx(&mut s, from_peer(BfdState::Down, 0), ms(10));
        }
        BfdState::Up => {
            rx(&mut s, from_peer(BfdState::Init, LOCAL), ms(10));
        }
        BfdState::AdminDown => {
            s.process(Input::AdminDown, ms(10), 0);
        }
    }
    assert_eq!(s.state(), state);
    s
}

#[test]
fn state_transitions_table() {
    use BfdState::*;
    // (local state, received state, your discriminator in the packet, expected state, diag
    //  of the change or None when no change)
    let table: &[(BfdState, BfdState, u32, BfdState, Option<Diag>)] = &[
        (Down, AdminDown, 0, Down, None),
        (Down, Down, 0, Init, Some(Diag::None)),
        (Down, Init, LOCAL, Up, Some(Diag::None)),
        (Down, Up, LOCAL, Down, None),
        (
            Init,
            AdminDown,
            LOCAL,
            Down,
            Some(Diag::NeighborSignaledDown),
        ),
        (Init, Down, 0, Init, None),
        (Init, Down, LOCAL, Init, None),
        (Init, Init, LOCAL, Up, Some(Diag::None)),
        (Init, Up, LOCAL, Up, Some(Diag::None)),
        (Up, AdminDown, LOCAL, Down, Some(Diag::NeighborSignaledDown)),
        (Up, Down, LOCAL, Down, Some(Diag::NeighborSignaledDown)),
        // Not naming the session: discarded once Up (anyone one hop away could send it).
        (Up, Down, 0, Up, None),
        (Up, Init, LOCAL, Up, None),
        (Up, Up, LOCAL, Up, None),
        (AdminDown, Down, 0, AdminDown, None),
        (AdminDown, Up, LOCAL, AdminDown, None),
    ];
    for &(from, received, your, to, diag) in table {
        let mut s = in_state(from);
        let out = rx(&mut s, from_peer(received, your), ms(100));
        assert_eq!(s.state(), to, "{from:?} + {received:?}");
        let ch = changes(&out);
        match diag {
            Some(d) => {
                assert_eq!(ch, vec![(from, to, d)], "{from:?} + {received:?}");
                assert_eq!(s.local_diag(), d);
                // A state change is told to the peer at once.
                assert!(sent(&out).iter().any(|p| p.state == to && p.diag == d));
            }
            None => assert!(ch.is_empty(), "{from:?} + {received:?}: {ch:?}"),
        }
        if from == AdminDown {
            assert!(out.contains(&Output::Discarded(Discard::LocalAdminDown)));
        }
    }
}

#[test]
fn reception_checks_table() {
    let base = from_peer(BfdState::Down, 0);
    let cases: Vec<(ControlPacket, Discard)> = vec![
        (
            ControlPacket {
                detect_mult: 0,
                ..base.clone()
            },
            Discard::DetectMultZero,
        ),
        (
            ControlPacket {
                multipoint: true,
                ..base.clone()
            },
            Discard::Multipoint,
        ),
        (
            ControlPacket {
                my_discr: 0,
                ..base.clone()
            },
            Discard::MyDiscrZero,
        ),
        (
            ControlPacket {
                your_discr: 42,
                ..base.clone()
            },
            Discard::YourDiscrMismatch,
        ),
        (
            ControlPacket {
                state: BfdState::Init,
                ..base.clone()
            },
            Discard::YourDiscrZero,
        ),
        (
            ControlPacket {
                state: BfdState::Up,
                ..base.clone()
            },
            Discard::YourDiscrZero,
        ),
        (
            ControlPacket {
                auth: Some(crate::bfd::AuthSection {
                    auth_type: 1,
                    data: vec![1, b'x'],
                }),
                ..base.clone()
            },
            Discard::Auth(AuthError::Unexpected),
        ),
    ];
    for (p, why) in cases {
        let mut s = started();
        let out = rx(&mut s, p, ms(5));
        assert_eq!(out, vec![Output::Discarded(why)]);
        assert_eq!(s.state(), BfdState::Down);
        assert_eq!(s.remote_discr(), 0, "a discarded packet changes nothing");
    }
    // Zero your discriminator is fine in AdminDown.
    assert_eq!(
        check_received(&ControlPacket {
            state: BfdState::AdminDown,
            ..base
        }),
        Ok(())
    );
}

#[test]
fn slow_until_up_then_poll_to_configured_rate() {
    let mut s = started();
    assert_eq!(s.packet(false).desired_min_tx_us, 1_000_000);
    assert_eq!(s.packet(false).required_min_rx_us, 300_000);
    // Down → Init: still slow, no poll (intervals unchanged).
    let out = rx(&mut s, from_peer(BfdState::Down, 0), ms(10));
    assert_eq!(s.remote_discr(), PEER);
    let p = sent(&out)[0];
    assert_eq!(
        (p.state, p.your_discr, p.desired_min_tx_us, p.poll),
        (BfdState::Init, PEER, 1_000_000, false)
    );
    // Init → Up: Desired Min TX drops to 300 ms, announced with a Poll.
    let out = rx(&mut s, from_peer(BfdState::Up, LOCAL), ms(20));
    let p = sent(&out)[0];
    assert_eq!(
        (p.state, p.desired_min_tx_us, p.poll),
        (BfdState::Up, 300_000, true)
    );
    assert!(s.polling());
    // A decrease applies at once.
    assert_eq!(s.tx_interval(), Some(ms(300)));
    assert!(out.contains(&Output::ArmTx(ms(320))), "{out:?}");
    // Periodic packets carry P until the Final.
    let out = s.process(Input::TxTimer, ms(320), 0);
    assert!(sent(&out)[0].poll);
    rx(
        &mut s,
        ControlPacket {
            final_: true,
            ..from_peer(BfdState::Up, LOCAL)
        },
        ms(330),
    );
    assert!(!s.polling());
    let out = s.process(Input::TxTimer, ms(620), 0);
    assert!(!sent(&out)[0].poll);
    // Going Down returns to the slow rate at once.
    let out = rx(&mut s, from_peer(BfdState::Down, LOCAL), ms(700));
    let p = sent(&out)[0];
    assert_eq!((p.state, p.desired_min_tx_us), (BfdState::Down, 1_000_000));
    assert_eq!(s.tx_interval(), Some(SLOW_TX_INTERVAL));
}

#[test]
fn poll_is_answered_with_final_at_once() {
    let mut s = in_state(BfdState::Up);
    let out = rx(
        &mut s,
        ControlPacket {
            poll: true,
            ..from_peer(BfdState::Up, LOCAL)
        },
        ms(50),
    );
    let p = sent(&out);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].final_ && !p[0].poll,
        "F without P even while our own poll runs"
    );
}

#[test]
fn tx_interval_negotiation() {
    let mut s = in_state(BfdState::Up);
    // The peer wants packets no faster than every 2 s.
    let p = ControlPacket {
        required_min_rx_us: 2_000_000,
        ..from_peer(BfdState::Up, LOCAL)
    };
    rx(&mut s, p, ms(50));
    assert_eq!(s.tx_interval(), Some(ms(2000)));
    // The peer wants no periodic packets at all.
    let p = ControlPacket {
        required_min_rx_us: 0,
        ..from_peer(BfdState::Up, LOCAL)
    };
    let out = rx(&mut s, p, ms(60));
    assert!(out.contains(&Output::StopTx));
    assert_eq!(s.tx_deadline(), None);
    // A shorter interval pulls an armed deadline earlier.
    let p = ControlPacket {
        required_min_rx_us: 100_000,
        ..from_peer(BfdState::Up, LOCAL)
    };
    let out = rx(&mut s, p, ms(70));
    assert!(out.contains(&Output::ArmTx(ms(370))), "{out:?}");
}

#[test]
fn peer_in_demand_mode_gets_no_periodic_packets() {
    let mut s = in_state(BfdState::Up);
    let demand = ControlPacket {
        demand: true,
        ..from_peer(BfdState::Up, LOCAL)
    };
    let out = rx(&mut s, demand.clone(), ms(20));
    assert_eq!(s.tx_interval(), None);
    assert!(out.contains(&Output::StopTx), "{out:?}");
    assert_eq!(s.tx_deadline(), None);
    assert!(s.process(Input::TxTimer, ms(1000), 0).is_empty());
    // A Poll is still answered, and detection still runs on the peer's packets.
    let out = rx(
        &mut s,
        ControlPacket {
            poll: true,
            ..demand
        },
        ms(40),
    );
    assert!(sent(&out)[0].final_);
    assert!(s.detect_deadline().is_some());
    // The peer leaves Demand mode: periodic transmission resumes.
    let out = rx(&mut s, from_peer(BfdState::Up, LOCAL), ms(60));
    assert!(out.iter().any(|o| matches!(o, Output::ArmTx(_))), "{out:?}");
}

#[test]
fn detection_time_and_expiry() {
    let mut s = in_state(BfdState::Up);
    // Remote mult 3 × max(our 300 ms RX, remote 500 ms TX).
    let p = ControlPacket {
        desired_min_tx_us: 500_000,
        ..from_peer(BfdState::Up, LOCAL)
    };
    let out = rx(&mut s, p, ms(100));
    assert_eq!(s.detection_time(), Some(ms(1500)));
    assert!(out.contains(&Output::ArmDetect(ms(1600))));
    // Early and stale expiries do nothing.
    assert!(s.process(Input::DetectTimer, ms(1599), 0).is_empty());
    let out = s.process(Input::DetectTimer, ms(1600), 0);
    assert_eq!(
        changes(&out),
        vec![(
            BfdState::Up,
            BfdState::Down,
            Diag::ControlDetectionTimeExpired
        )]
    );
    assert_eq!(s.remote_discr(), 0);
    let p = sent(&out)[0];
    assert_eq!(
        (p.state, p.diag, p.your_discr),
        (BfdState::Down, Diag::ControlDetectionTimeExpired, 0)
    );
    assert!(s.process(Input::DetectTimer, ms(1700), 0).is_empty());
    // And it comes back through Init.
    rx(&mut s, from_peer(BfdState::Down, 0), ms(2000));
    assert_eq!(s.state(), BfdState::Init);
    // No Init → Up without a packet for too long either.
    let at = s.detect_deadline().unwrap();
    let out = s.process(Input::DetectTimer, at, 0);
    assert_eq!(
        changes(&out),
        vec![(
            BfdState::Init,
            BfdState::Down,
            Diag::ControlDetectionTimeExpired
        )]
    );
}

#[test]
fn detection_in_down_only_forgets_the_peer() {
    let mut s = started();
    rx(&mut s, from_peer(BfdState::AdminDown, 0), ms(10));
    assert_eq!(s.remote_discr(), PEER);
    let out = s.process(Input::DetectTimer, s.detect_deadline().unwrap(), 0);
    assert!(changes(&out).is_empty());
    assert_eq!(s.remote_discr(), 0);
}

#[test]
fn jitter_bounds() {
    let mut s = started();
    let out = s.process(Input::TxTimer, ms(1000), 0);
    assert!(
        out.contains(&Output::ArmTx(ms(2000))),
        "random 0: full interval"
    );
    let out = s.process(Input::TxTimer, ms(2000), 250);
    assert!(out.contains(&Output::ArmTx(ms(2750))), "cut 25 %");
    for r in [1, 77, 251, 1000, u32::MAX] {
        let now = s.tx_deadline().unwrap();
        s.process(Input::TxTimer, now, r);
        let d = s.tx_deadline().unwrap() - now;
        assert!(d >= ms(750) && d <= ms(1000), "{d:?}");
    }
    // Detect multiplier 1: 75–90 %.
    let cfg = BfdConfig {
        detect_mult: 1,
        ..BfdConfig::default()
    };
    let mut s = Session::new(LOCAL, cfg).unwrap();
    s.process(Input::Start, Duration::ZERO, 0);
    for r in [0, 1, 77, 150, 151, 1000, u32::MAX] {
        let now = s.tx_deadline().unwrap();
        s.process(Input::TxTimer, now, r);
        let d = s.tx_deadline().unwrap() - now;
        assert!(d >= ms(750) && d <= ms(900), "{r}: {d:?}");
    }
}

#[test]
fn early_tx_timer_re_arms() {
    let mut s = started();
    assert_eq!(
        s.process(Input::TxTimer, ms(999), 0),
        vec![Output::ArmTx(ms(1000))]
    );
}

#[test]
fn slower_tx_while_up_waits_for_final() {
    let mut s = in_state(BfdState::Up);
    rx(
        &mut s,
        ControlPacket {
            final_: true,
            ..from_peer(BfdState::Up, LOCAL)
        },
        ms(20),
    );
    assert!(!s.polling());
    let slower = BfdConfig {
        desired_min_tx: ms(900),
        ..BfdConfig::default()
    };
    s.process(Input::Configure(slower), ms(30), 0);
    assert!(s.polling());
    let p = s.packet(false);
    assert_eq!((p.desired_min_tx_us, p.poll), (900_000, true));
    assert_eq!(s.tx_interval(), Some(ms(300)), "old rate until the Final");
    rx(
        &mut s,
        ControlPacket {
            final_: true,
            ..from_peer(BfdState::Up, LOCAL)
        },
        ms(40),
    );
    assert_eq!(s.tx_interval(), Some(ms(900)));
}

#[test]
fn faster_rx_while_up_waits_for_final() {
    let mut s = in_state(BfdState::Up);
    rx(
        &mut s,
        ControlPacket {
            final_: true,
            ..from_peer(BfdState::Up, LOCAL)
        },
        ms(20),
    );
    let p = ControlPacket {
        desired_min_tx_us: 50_000,
        ..from_peer(BfdState::Up, LOCAL)
    };
    rx(&mut s, p.clone(), ms(25));
    assert_eq!(s.detection_time(), Some(ms(900)));
    let faster = BfdConfig {
        required_min_rx: ms(100),
        ..BfdConfig::default()
    };
    s.process(Input::Configure(faster), ms(30), 0);
    assert_eq!(s.packet(false).required_min_rx_us, 100_000);
    assert_eq!(s.detection_time(), Some(ms(900)), "old RX until the Final");
    rx(&mut s, ControlPacket { final_: true, ..p }, ms(40));
    assert_eq!(s.detection_time(), Some(ms(300)));
}

#[test]
fn admin_down_and_up() {
    let mut s = in_state(BfdState::Up);
    let out = s.process(Input::AdminDown, ms(50), 0);
    assert_eq!(
        changes(&out),
        vec![(
            BfdState::Up,
            BfdState::AdminDown,
            Diag::AdministrativelyDown
        )]
    );
    assert!(out.contains(&Output::StopDetect));
    let p = sent(&out)[0];
    assert_eq!(
        (p.state, p.diag),
        (BfdState::AdminDown, Diag::AdministrativelyDown)
    );
    let out = s.process(Input::AdminUp, ms(60), 0);
    assert_eq!(
        changes(&out),
        vec![(BfdState::AdminDown, BfdState::Down, Diag::None)]
    );
}

#[test]
fn invalid_config() {
    let bad = BfdConfig {
        detect_mult: 0,
        ..BfdConfig::default()
    };
    assert_eq!(Session::new(1, bad).unwrap_err(), ConfigError::DetectMult);
    let bad = BfdConfig {
        desired_min_tx: Duration::ZERO,
        ..BfdConfig::default()
    };
    assert_eq!(Session::new(1, bad).unwrap_err(), ConfigError::DesiredMinTx);
}

/// Two sessions wired back to back through a simulated link with a 1 ms delay, on a
/// simulated clock: they come Up, settle the Poll Sequence, and when one direction of the
/// link drops the far side detects it (diag 1) while the near side hears "Down" (diag 3).
#[test]
fn two_sessions_simulated() {
    struct Side {
        s: Session,
        tx: Option<Duration>,
        det: Option<Duration>,
        changes: Vec<(BfdState, BfdState, Diag)>,
    }
    fn apply(
        side: &mut Side,
        out: Vec<Output>,
        now: Duration,
        wire: &mut Vec<(Duration, ControlPacket)>,
    ) {
        for o in out {
            match o {
                Output::Send(p) => wire.push((now + Duration::from_millis(1), p)),
                Output::ArmTx(t) => side.tx = Some(t),
                Output::StopTx => side.tx = None,
                Output::ArmDetect(t) => side.det = Some(t),
                Output::StopDetect => side.det = None,
                Output::StateChanged { from, to, diag } => side.changes.push((from, to, diag)),
                // The far side, gone Down, no longer names the near side's session.
                Output::Discarded(Discard::YourDiscrZeroWhileUp) => {}
                Output::Discarded(d) => panic!("discarded {d}"),
            }
        }
    }
    let mut sides = [
        Side {
            s: Session::new(10, BfdConfig::default()).unwrap(),
            tx: None,
            det: None,
            changes: vec![],
        },
        Side {
            s: Session::new(20, BfdConfig::default()).unwrap(),
            tx: None,
            det: None,
            changes: vec![],
        },
    ];
    // wires[i]: packets in flight from side i to the other side.
    let mut wires: [Vec<(Duration, ControlPacket)>; 2] = [vec![], vec![]];
    let mut now = Duration::ZERO;
    let mut rnd = 12345u32;
    for (i, side) in sides.iter_mut().enumerate() {
        let out = side
            .s
            .process(Input::Start, now + Duration::from_millis(i as u64 * 7), 0);
        apply(side, out, now, &mut wires[i]);
    }
    let mut cut_1_to_0 = false;
    let step = Duration::from_millis(1);
    while now < Duration::from_secs(10) {
        now += step;
        if now == Duration::from_secs(5) {
            cut_1_to_0 = true;
        }
        for i in 0..2 {
            rnd = rnd.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let other = 1 - i;
            let (arrived, rest): (Vec<_>, Vec<_>) =
                wires[other].drain(..).partition(|(t, _)| *t <= now);
            wires[other] = rest;
            for (_, p) in arrived {
                if other == 1 && cut_1_to_0 {
                    continue;
                }
                let out = sides[i].s.process(Input::Received(p), now, rnd);
                apply(&mut sides[i], out, now, &mut wires[i]);
            }
            if sides[i].tx.is_some_and(|t| t <= now) {
                let out = sides[i].s.process(Input::TxTimer, now, rnd >> 7);
                apply(&mut sides[i], out, now, &mut wires[i]);
            }
            if sides[i].det.is_some_and(|t| t <= now) {
                sides[i].det = None;
                let out = sides[i].s.process(Input::DetectTimer, now, rnd);
                apply(&mut sides[i], out, now, &mut wires[i]);
            }
        }
        if now == Duration::from_millis(4900) {
            for side in &sides {
                assert_eq!(side.s.state(), BfdState::Up);
                assert!(!side.s.polling(), "poll sequence finished");
                assert_eq!(side.s.tx_interval(), Some(Duration::from_millis(300)));
                assert_eq!(side.s.detection_time(), Some(Duration::from_millis(900)));
            }
        }
    }
    use BfdState::*;
    // Side 0 stops hearing side 1 and detects it; its Down packets no longer name side
    // 1's session, so side 1 detects the loss too (its detection time), then both keep
    // trying: side 1 sees side 0's Down packets and goes Init, never Up.
    assert_eq!(
        sides[0].changes[..2],
        [(Down, Init, Diag::None), (Init, Up, Diag::None)]
    );
    assert_eq!(
        sides[0].changes[2],
        (Up, Down, Diag::ControlDetectionTimeExpired)
    );
    assert_eq!(
        sides[1].changes[2],
        (Up, Down, Diag::ControlDetectionTimeExpired)
    );
    assert_eq!(sides[0].s.state(), Down);
    assert_ne!(sides[1].s.state(), Up);
}

/// A forged Down without our discriminator (matched by addresses only) from one hop
/// away does not take an Up session down; one naming the session does.
#[test]
fn an_up_session_ignores_packets_that_do_not_name_it() {
    let mut s = in_state(BfdState::Up);
    let out = rx(&mut s, from_peer(BfdState::Down, 0), ms(1000));
    assert_eq!(out, vec![Output::Discarded(Discard::YourDiscrZeroWhileUp)]);
    assert!(changes(&out).is_empty());
    let out = rx(&mut s, from_peer(BfdState::Down, LOCAL), ms(1100));
    assert_eq!(changes(&out)[0].1, BfdState::Down, "{out:?}");
}

fn sha1_key(t: AuthType, secret: &[u8]) -> AuthKey {
    AuthKey::new(t, 1, secret.to_vec()).unwrap()
}

/// Two sessions wired back to back: every packet one sends the other receives at the same
/// instant; runs until both are Up or `rounds` timer rounds passed.
fn handshake(a: &mut Session, b: &mut Session, rounds: u64) -> bool {
    let mut now = Duration::ZERO;
    let mut to_b: Vec<ControlPacket> = sent(&a.process(Input::Start, now, 0))
        .into_iter()
        .cloned()
        .collect();
    let mut to_a: Vec<ControlPacket> = sent(&b.process(Input::Start, now, 0))
        .into_iter()
        .cloned()
        .collect();
    for _ in 0..rounds {
        now += ms(100);
        while !to_a.is_empty() || !to_b.is_empty() {
            for p in std::mem::take(&mut to_b) {
                to_a.extend(
                    sent(&b.process(Input::Received(p), now, 0))
                        .into_iter()
                        .cloned(),
                );
            }
            for p in std::mem::take(&mut to_a) {
                to_b.extend(
                    sent(&a.process(Input::Received(p), now, 0))
                        .into_iter()
                        .cloned(),
                );
            }
        }
        if a.state() == BfdState::Up && b.state() == BfdState::Up {
            return true;
        }
        now += SLOW_TX_INTERVAL;
        to_b.extend(
            sent(&a.process(Input::TxTimer, now, 0))
                .into_iter()
                .cloned(),
        );
        to_a.extend(
            sent(&b.process(Input::TxTimer, now, 0))
                .into_iter()
                .cloned(),
        );
    }
    false
}

#[test]
fn authenticated_sessions_come_up_with_the_same_key_only() {
    for t in AuthType::ALL {
        let mut a = Session::new(LOCAL, BfdConfig::default())
            .unwrap()
            .with_auth(Some(sha1_key(t, b"k1")), 1000);
        let mut b = Session::new(PEER, BfdConfig::default())
            .unwrap()
            .with_auth(Some(sha1_key(t, b"k1")), u32::MAX - 2);
        assert!(handshake(&mut a, &mut b, 5), "{t}: same key, not Up");
        // Every packet carries the section, and the sequence numbers grow.
        let p1 = a.process(Input::TxTimer, ms(100_000), 0);
        let p2 = a.process(Input::TxTimer, ms(200_000), 0);
        let seq = |o: &[Output]| {
            let p = sent(o)[0];
            let d = &p.auth.as_ref().expect("authenticated").data;
            u32::from_be_bytes([d[2], d[3], d[4], d[5]])
        };
        assert_eq!(seq(&p2), seq(&p1).wrapping_add(1));

        let mut a = Session::new(LOCAL, BfdConfig::default())
            .unwrap()
            .with_auth(Some(sha1_key(t, b"k1")), 1);
        let mut b = Session::new(PEER, BfdConfig::default())
            .unwrap()
            .with_auth(Some(sha1_key(t, b"k2")), 1);
        assert!(!handshake(&mut a, &mut b, 5), "{t}: different keys came Up");
        assert_eq!(a.state(), BfdState::Down);
        assert_eq!(b.state(), BfdState::Down);
    }
    // One side authenticates, the other does not: neither comes Up.
    let mut a = Session::new(LOCAL, BfdConfig::default())
        .unwrap()
        .with_auth(Some(sha1_key(AuthType::KeyedSha1, b"k")), 1);
    let mut b = Session::new(PEER, BfdConfig::default()).unwrap();
    assert!(!handshake(&mut a, &mut b, 5));
    assert_eq!((a.state(), b.state()), (BfdState::Down, BfdState::Down));
}

/// A session with a key, Up with the peer whose packets `peer_packet` signs.
fn auth_up(t: AuthType) -> (Session, AuthKey) {
    let key = sha1_key(t, b"secret");
    let mut s = Session::new(LOCAL, BfdConfig::default())
        .unwrap()
        .with_auth(Some(key.clone()), 7);
    s.process(Input::Start, Duration::ZERO, 0);
    let mut p = from_peer(BfdState::Init, LOCAL);
    sign(&mut p, &key, 100);
    rx(&mut s, p, ms(10));
    assert_eq!(s.state(), BfdState::Up);
    (s, key)
}

#[test]
fn authentication_reception_table() {
    for t in [AuthType::KeyedSha1, AuthType::MeticulousKeyedSha1] {
        let meticulous = t.meticulous();
        let signed = |state, seq, key: &AuthKey| {
            let mut p = from_peer(state, LOCAL);
            sign(&mut p, key, seq);
            p
        };
        let (_, key) = auth_up(t);
        let wrong = sha1_key(t, b"Secret");
        let other_id = AuthKey::new(t, 2, b"secret".to_vec()).unwrap();
        // (packet, why it is discarded, or None when accepted). The last accepted
        // sequence number is 100, detect mult 3: the window ends at 109.
        let cases: Vec<(ControlPacket, Option<AuthError>)> = vec![
            (from_peer(BfdState::Down, LOCAL), Some(AuthError::Missing)),
            (signed(BfdState::Down, 101, &wrong), Some(AuthError::Digest)),
            (
                signed(BfdState::Down, 101, &other_id),
                Some(AuthError::KeyId(2)),
            ),
            (
                signed(BfdState::Down, 99, &key),
                Some(AuthError::Sequence { got: 99, last: 100 }),
            ),
            (
                signed(BfdState::Down, 110, &key),
                Some(AuthError::Sequence {
                    got: 110,
                    last: 100,
                }),
            ),
            (
                signed(BfdState::Down, 100, &key),
                meticulous.then_some(AuthError::Sequence {
                    got: 100,
                    last: 100,
                }),
            ),
            (signed(BfdState::Down, 109, &key), None),
        ];
        for (p, why) in cases {
            let (mut s, _) = auth_up(t);
            let out = rx(&mut s, p, ms(20));
            match why {
                Some(e) => {
                    assert_eq!(out, vec![Output::Discarded(Discard::Auth(e))], "{t}");
                    assert_eq!(s.state(), BfdState::Up, "{t}: {e}");
                }
                None => assert_eq!(s.state(), BfdState::Down, "{t}: accepted"),
            }
        }
    }
}

#[test]
fn replay_is_refused_until_the_sequence_is_forgotten() {
    let (mut s, key) = auth_up(AuthType::MeticulousKeyedSha1);
    let mut up = from_peer(BfdState::Up, LOCAL);
    sign(&mut up, &key, 101);
    rx(&mut s, up.clone(), ms(20));
    // A captured Down packet with an old number, replayed: refused.
    let mut down = from_peer(BfdState::Down, LOCAL);
    sign(&mut down, &key, 100);
    let out = rx(&mut s, down.clone(), ms(30));
    assert_eq!(
        out,
        vec![Output::Discarded(Discard::Auth(AuthError::Sequence {
            got: 100,
            last: 101
        }))]
    );
    assert_eq!(s.state(), BfdState::Up);
    // Two Detection Times (2 × 3 × 300 ms) with no packet: bfd.AuthSeqKnown is 0 again
    // (§6.8.1), so any number is taken (the session is long Down by then).
    let out = rx(&mut s, down, ms(20 + 1801));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Discarded(_))),
        "{out:?}"
    );
}

#[test]
fn ingress_check() {
    assert_eq!(check_ingress(&[4], Some(4)), Ok(()));
    assert_eq!(check_ingress(&[3, 4], Some(3)), Ok(()));
    assert_eq!(
        check_ingress(&[4], Some(5)),
        Err(Discard::WrongInterface { arrived: 5 })
    );
    assert_eq!(
        check_ingress(&[4], None),
        Err(Discard::WrongInterface { arrived: 0 })
    );
    assert_eq!(
        check_ingress(&[], Some(4)),
        Err(Discard::WrongInterface { arrived: 4 })
    );
    assert_eq!(
        check_ingress(&[0], Some(0)),
        Err(Discard::WrongInterface { arrived: 0 })
    );
}
