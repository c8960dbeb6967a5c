//! Property tests: random configurations and random input sequences never panic, and the
//! FSM's invariants hold after every input.

use crate::fsm_support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::fsm::{
    Damping, Fsm, FsmConfig, Input, NotificationData, OpenInfo, Output, PeerAs, State, Timer,
};
use fsm_support::*;
use proptest::prelude::*;

fn arb_config() -> impl Strategy<Value = FsmConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u16, 3, 9, 90]),
        any::<bool>(),
    )
        .prop_map(
            |(passive, delay, damping, restart, snwo, hold_time, any_peer)| {
                let mut c = cfg();
                c.passive = passive;
                c.delay_open = delay.then(|| Duration::from_secs(3));
                c.damping = damping.then_some(Damping {
                    max_idle_hold: Duration::from_secs(40),
                    reset_after: Duration::from_secs(60),
                });
                c.automatic_restart = restart;
                c.send_notification_without_open = snwo;
                c.hold_time = hold_time;
                if any_peer {
                    c.peer_as = PeerAs::Any;
                }
                c
            },
        )
}

fn arb_open() -> impl Strategy<Value = OpenInfo> {
    (
        prop::sample::select(vec![4u8, 4, 4, 4, 3, 5]),
        prop::sample::select(vec![PEER_AS, PEER_AS, PEER_AS, LOCAL_AS, 0, 4_200_000_000]),
        prop::sample::select(vec![90u16, 90, 0, 1, 2, 3, 9, 180, u16::MAX]),
        prop::sample::select(vec![
            PEER_ID,
            PEER_ID,
            PEER_ID,
            Ipv4Addr::UNSPECIFIED,
            LOCAL_ID,
        ]),
    )
        .prop_map(|(version, asn, hold_time, bgp_id)| OpenInfo {
            version,
            asn,
            hold_time,
            bgp_id,
        })
}

fn arb_notification() -> impl Strategy<Value = NotificationData> {
    (0u8..8, 0u8..12, prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(code, subcode, data)| {
        NotificationData {
            code,
            subcode,
            data,
        }
    })
}

fn arb_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => Just(Input::ManualStart),
        1 => Just(Input::ManualStartPassive),
        1 => Just(Input::AutomaticStart),
        1 => Just(Input::AutomaticStartPassive),
        1 => Just(Input::ManualStop),
        1 => any::<u8>().prop_map(|cease_subcode| Input::AutomaticStop { cease_subcode }),
        3 => prop::sample::select(Timer::ALL.to_vec()).prop_map(Input::TimerExpired),
        2 => Just(Input::TcpCrAcked),
        2 => Just(Input::TcpConnectionConfirmed),
        1 => Just(Input::TcpConnectionFails),
        3 => arb_open().prop_map(Input::BgpOpen),
        1 => arb_notification().prop_map(Input::BgpHeaderErr),
        1 => arb_notification().prop_map(Input::BgpOpenMsgErr),
        1 => Just(Input::OpenCollisionDump),
        1 => arb_notification().prop_map(Input::NotifMsg),
        1 => Just(Input::NotifMsg(NotificationData::new(2, 1))),
        4 => Just(Input::KeepAliveMsg),
        3 => Just(Input::UpdateMsg),
        1 => arb_notification().prop_map(Input::UpdateMsgErr),
    ]
}

/// What the test observes of the handshake since the FSM last entered Idle.
#[derive(Debug, Default)]
struct Handshake {
    open_sent: bool,
    open_received: bool,
    keepalive_sent: bool,
}

/// Checks everything that must hold after one step.
struct Checker {
    cfg: FsmConfig,
    /// Timers running according to the outputs seen so far.
    shadow: BTreeSet<Timer>,
    handshake: Handshake,
}

impl Checker {
    fn step(&mut self, f: &mut Fsm, input: Input) -> Result<(), TestCaseError> {
        let before = f.state();
        let counter_before = f.connect_retry_counter();
        if let Input::TimerExpired(t) = &input {
            self.shadow.remove(t);
        }
        if matches!(input, Input::BgpOpen(_)) {
            self.handshake.open_received = true;
        }
        let resets_counter =
            matches!(
                input,
                Input::ManualStart | Input::ManualStartPassive | Input::ManualStop
            ) || matches!(input, Input::AutomaticStart | Input::AutomaticStartPassive);
        let was_keepalive = input == Input::KeepAliveMsg;
        let outs = f.process(input.clone());
        let after = f.state();

        // Output stream consistency.
        let mut state = before;
        let mut dropped_since_notify = true;
        for o in &outs {
            match o {
                Output::StartTimer(t, d) => {
                    prop_assert!(!d.is_zero(), "zero-length {t} in {outs:?}");
                    self.shadow.insert(*t);
                }
                Output::StopTimer(t) => {
                    prop_assert!(self.shadow.remove(t), "stop of a stopped {t}: {outs:?}");
                }
                Output::StateChanged { from, to } => {
                    prop_assert_eq!(*from, state);
                    prop_assert_ne!(from, to);
                    if *to == State::Idle {
                        prop_assert!(outs.contains(&Output::DropConnection));
                        prop_assert!(outs.contains(&Output::ReleaseResources));
                        self.handshake = Handshake::default();
                    }
                    if *to == State::Established {
                        prop_assert_eq!(*from, State::OpenConfirm);
                        prop_assert!(was_keepalive, "Established without a KEEPALIVE");
                        let h = &self.handshake;
                        prop_assert!(
                            h.open_sent && h.open_received && h.keepalive_sent,
                            "Established before the OPEN/KEEPALIVE exchange: {h:?}"
                        );
                    }
                    state = *to;
                }
                Output::SendOpen(o) => {
                    prop_assert_eq!(o.version, 4);
                    prop_assert_eq!(o.hold_time, self.cfg.hold_time);
                    self.handshake.open_sent = true;
                }
                Output::SendKeepalive => self.handshake.keepalive_sent = true,
                Output::SendNotification(_) => {
                    prop_assert!(
                        self.handshake.open_sent || self.cfg.send_notification_without_open,
                        "NOTIFICATION before our OPEN: {outs:?}"
                    );
                    dropped_since_notify = false;
                }
                Output::DropConnection => dropped_since_notify = true,
                Output::InitiateConnection => {
                    prop_assert!(!self.cfg.passive, "a passive FSM connected: {outs:?}");
                }
                Output::SessionUp(n) => {
                    prop_assert_eq!(state, State::Established);
                    prop_assert!(n.hold_time == 0 || n.hold_time >= 3);
                    prop_assert!(n.keepalive <= n.hold_time / 3);
                }
                Output::SessionDown { .. } => prop_assert_eq!(before, State::Established),
                Output::ProcessUpdate => prop_assert_eq!(state, State::Established),
                Output::ReleaseResources => {}
            }
        }
        prop_assert!(
            dropped_since_notify,
            "NOTIFICATION not followed by a drop: {outs:?}"
        );
        prop_assert_eq!(state, after, "StateChanged outputs disagree with state()");
        let up = outs.iter().any(|o| matches!(o, Output::SessionUp(_)));
        prop_assert_eq!(
            up,
            before != State::Established && after == State::Established
        );
        let down = outs.iter().any(|o| matches!(o, Output::SessionDown { .. }));
        prop_assert_eq!(
            down,
            before == State::Established && after != State::Established
        );

        // The timers the driver was told about are the timers the FSM thinks run.
        let running: BTreeSet<Timer> = f.running_timers().collect();
        prop_assert_eq!(&running, &self.shadow);
        self.check_timers_allowed(f, &running)?;

        // Negotiated parameters exist exactly once the peer's OPEN was accepted.
        let synced = matches!(after, State::OpenConfirm | State::Established);
        prop_assert_eq!(f.negotiated().is_some(), synced);
        if after == State::Idle {
            prop_assert!(!f.accepts_connection());
        }

        // ConnectRetryCounter: +1 at most, back to 0 only on a start or ManualStop.
        let counter = f.connect_retry_counter();
        prop_assert!(counter <= counter_before + 1);
        prop_assert!(counter >= counter_before || (resets_counter && counter == 0));
        Ok(())
    }

    fn check_timers_allowed(
        &self,
        f: &Fsm,
        running: &BTreeSet<Timer>,
    ) -> Result<(), TestCaseError> {
        use Timer::*;
        let allowed: &[Timer] = match f.state() {
            State::Idle => &[IdleHold],
            State::Connect | State::Active => &[ConnectRetry, DelayOpen],
            State::OpenSent => &[Hold],
            State::OpenConfirm => &[Hold, Keepalive],
            State::Established => &[Hold, Keepalive, DampingReset],
        };
        for t in running {
            prop_assert!(allowed.contains(t), "{t} running in {}", f.state());
        }
        match f.state() {
            State::Idle => {
                if running.contains(&IdleHold) {
                    prop_assert!(self.cfg.automatic_restart);
                }
            }
            State::Connect | State::Active => {
                prop_assert!(!(running.contains(&ConnectRetry) && running.contains(&DelayOpen)));
                if running.contains(&DelayOpen) {
                    prop_assert!(self.cfg.delay_open.is_some());
                }
                if f.state() == State::Connect {
                    prop_assert_eq!(running.len(), 1, "Connect without a timer");
                }
            }
            State::OpenSent => prop_assert!(running.contains(&Hold)),
            State::OpenConfirm | State::Established => {
                let hold = f.hold_time().unwrap_or(0);
                prop_assert_eq!(running.contains(&Hold), hold != 0);
                prop_assert_eq!(running.contains(&Keepalive), hold != 0);
                if f.state() == State::OpenConfirm {
                    prop_assert!(!running.contains(&DampingReset));
                }
            }
        }
        Ok(())
    }
}

/// The input a well-behaved peer and driver would deliver next.
fn forward(f: &Fsm, pick: u8) -> Input {
    let delay = f.is_running(Timer::DelayOpen);
    match f.state() {
        State::Idle if f.is_running(Timer::IdleHold) => Input::TimerExpired(Timer::IdleHold),
        State::Idle => Input::ManualStart,
        State::Connect | State::Active if delay && pick == 0 => {
            Input::TimerExpired(Timer::DelayOpen)
        }
        State::Connect | State::Active if delay => Input::BgpOpen(peer_open(90)),
        State::Connect => Input::TcpCrAcked,
        State::Active if f.is_running(Timer::ConnectRetry) && pick == 0 => {
            Input::TimerExpired(Timer::ConnectRetry)
        }
        State::Active => Input::TcpConnectionConfirmed,
        State::OpenSent => Input::BgpOpen(peer_open([0, 9, 90][usize::from(pick)])),
        State::OpenConfirm => Input::KeepAliveMsg,
        State::Established => match pick {
            0 => Input::UpdateMsg,
            1 => Input::KeepAliveMsg,
            _ => Input::TimerExpired(Timer::Keepalive),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_the_invariants(
        cfg in arb_config(),
        inputs in prop::collection::vec(arb_input(), 0..80),
    ) {
        let mut f = fsm(cfg.clone());
        let mut checker = Checker { cfg, shadow: BTreeSet::new(), handshake: Handshake::default() };
        for input in inputs {
            checker.step(&mut f, input)?;
        }
    }

    /// Like a real driver and a mostly well-behaved peer: each step is, four times in
    /// five, the input that moves the session forward and otherwise a random input;
    /// timer expiries are only delivered for running timers.
    #[test]
    fn driver_like_sequences_keep_the_invariants(
        cfg in arb_config(),
        steps in prop::collection::vec((0u8..5, arb_input(), 0u8..3), 0..150),
    ) {
        let mut f = fsm(cfg.clone());
        let mut checker = Checker { cfg, shadow: BTreeSet::new(), handshake: Handshake::default() };
        for (dice, random, pick) in steps {
            let input = if dice == 0 { random } else { forward(&f, pick) };
            let input = match input {
                Input::TimerExpired(_) => match f.running_timers().nth(usize::from(pick)) {
                    Some(t) => Input::TimerExpired(t),
                    None => continue,
                },
                other => other,
            };
            checker.step(&mut f, input)?;
        }
    }

    /// A well-behaved peer always brings the session up, whatever happened before.
    #[test]
    fn a_clean_handshake_after_any_history_reaches_established(
        cfg in arb_config(),
        inputs in prop::collection::vec(arb_input(), 0..40),
        hold in prop::sample::select(vec![0u16, 3, 90]),
    ) {
        let mut f = fsm(cfg.clone());
        for input in inputs {
            f.process(input);
        }
        f.process(Input::ManualStop);
        f.process(Input::ManualStart);
        f.process(if cfg.passive { Input::TcpConnectionConfirmed } else { Input::TcpCrAcked });
        if cfg.delay_open.is_some() {
            f.process(Input::TimerExpired(Timer::DelayOpen));
        }
        f.process(Input::BgpOpen(OpenInfo { version: 4, asn: PEER_AS, hold_time: hold, bgp_id: PEER_ID }));
        f.process(Input::KeepAliveMsg);
        prop_assert_eq!(f.state(), State::Established);
        prop_assert_eq!(f.hold_time(), Some(hold.min(cfg.hold_time)));
    }
}
