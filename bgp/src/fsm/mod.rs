//! The BGP session finite-state machine of RFC 4271 §8, as a pure state machine.
//!
//! [`Fsm::process`] takes one [`Input`] and returns the [`Output`]s the driver must carry
//! out, in order. The FSM does no I/O and never reads the clock: timers are outputs
//! ([`Output::StartTimer`], [`Output::StopTimer`]) and their expiry is an input
//! ([`Input::TimerExpired`]). It does not know the wire format either: the driver maps
//! decoded messages to [`OpenInfo`] and [`NotificationData`], and sends what
//! [`Output::SendOpen`], [`Output::SendKeepalive`] and [`Output::SendNotification`] ask
//! for. One `Fsm` handles one TCP connection; [`collision`] explains how a driver runs two
//! of them for one peer to resolve connection collisions (RFC 4271 §6.8).
//!
//! Supported session attributes (§8.1.1): ConnectRetryTime, HoldTime, KeepaliveTime,
//! AllowAutomaticStart ([`FsmConfig::automatic_restart`]), DampPeerOscillations and
//! IdleHoldTime ([`FsmConfig::damping`], [`FsmConfig::idle_hold`]), DelayOpen and
//! DelayOpenTime, PassiveTcpEstablishment, SendNOTIFICATIONwithoutOPEN. Not supported:
//! TrackTcpState (events 14 and 15, TcpConnection_Valid/Invalid: the driver's listener
//! filters connections itself), AllowAutomaticStop and CollisionDetectEstablishedState
//! inside the FSM (the latter is [`collision::Policy::in_established`]).
//!
//! # Driver contract
//!
//! - Carry out the outputs of one input in order before processing the next input.
//! - [`Output::StartTimer`] replaces a running instance of that timer; after
//!   [`Output::StopTimer`] (or a restart) the old instance must never be delivered. The
//!   FSM ignores expiries of timers it considers stopped, but cannot tell an old instance
//!   of a restarted timer from the new one.
//! - The FSM owns at most one TCP connection. Hand it an accepted connection only when
//!   [`Fsm::accepts_connection`] says so (and then abandon any pending outgoing attempt);
//!   otherwise follow [`collision`]. [`Output::DropConnection`] closes whatever it has.
//! - [`Output::SessionDown`] means: withdraw everything learned from this peer.
//! - A refused or failed connection attempt in Connect goes to Idle without counting or
//!   damping (RFC 4271); with `automatic_restart` the attempt is repeated after the idle
//!   hold time, so [`FsmConfig::idle_hold`] is also the retry interval for unreachable
//!   peers.
//!
//! # Where this differs from the text of RFC 4271 §8.2.2
//!
//! - Every transition to Idle stops every timer, emits [`Output::DropConnection`] and
//!   [`Output::ReleaseResources`]; automatic restarts use only the IdleHoldTimer (the RFC
//!   leaves some ConnectRetryTimers running in Idle, where their expiry is ignored
//!   anyway). With `automatic_restart`, after any cause but ManualStop the IdleHoldTimer
//!   starts and its expiry performs an automatic start; that restart keeps the
//!   ConnectRetryCounter, which only ManualStart, AutomaticStart and ManualStop reset.
//! - A timer expiry is acted on only while the FSM considers that timer running; stale
//!   expiries (a timer already stopped) are ignored instead of resetting the session.
//! - Passive runs never initiate a connection: the ConnectRetryTimer is not started, so
//!   the FSM waits in Active.
//! - A received NOTIFICATION is never answered with an FSM Error NOTIFICATION (RFC 4271
//!   asks for one in OpenSent; the peer closes the connection anyway).
//! - BGPHeaderErr in Established sends the Message Header Error NOTIFICATION of §6.1
//!   rather than an FSM Error.
//! - In Connect, ManualStop while the DelayOpenTimer runs sends a Cease when
//!   SendNOTIFICATIONwithoutOPEN is set, as the RFC specifies for Active.
//! - FSM Error NOTIFICATIONs carry the RFC 6608 subcodes.
//! - Inbound connections in Idle are refused with [`Output::DropConnection`].
//! - ManualStop in Idle (ignored by the RFC) cancels a pending automatic restart.
//! - Peer-oscillation damping, whose method RFC 4271 leaves open, doubles the idle hold
//!   time on every damped failure and forgets it after a stable Established period
//!   ([`Damping`]).

pub mod collision;
mod config;
mod event;
mod open;
mod states;

use std::time::Duration;

pub use config::{ConfigError, Damping, FsmConfig, PeerAs};
pub use event::{
    DownReason, Input, InputKind, Negotiated, NotificationData, OpenInfo, Output, State, Timer,
};
pub use open::{negotiate_timers, validate_open};

/// The error codes and subcodes of the NOTIFICATIONs the FSM sends and recognises: the
/// crate's one set, shared with the codec.
pub use crate::error_codes::{CeaseError, ErrorCode, FsmError, OpenError};

/// The only BGP version this speaker supports.
pub const BGP_VERSION: u8 = 4;

/// The HoldTimer value used between sending our OPEN and receiving the peer's
/// (RFC 4271 §8.2.2 suggests 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);

/// The session FSM of one TCP connection.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    /// Which timers run, indexed by [`Timer::index`].
    timers: [bool; Timer::ALL.len()],
    connect_retry_counter: u32,
    negotiated: Option<Negotiated>,
    last_error: Option<DownReason>,
    /// Started and not manually stopped: automatic restarts are allowed.
    enabled: bool,
    /// The current run waits for the peer to connect.
    passive: bool,
    /// Idle hold time of the next automatic restart (grows with damping).
    idle_hold: Duration,
    /// Damped failures since the damping state was last reset.
    damped_flaps: u32,
}

/// How a transition to Idle changes the ConnectRetryCounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Keep,
    Increment,
    Reset,
}

impl Fsm {
    /// A new FSM in Idle. Fails if the configuration is invalid.
    pub fn new(cfg: FsmConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let idle_hold = cfg.idle_hold;
        Ok(Fsm {
            cfg,
            state: State::Idle,
            timers: [false; Timer::ALL.len()],
            connect_retry_counter: 0,
            negotiated: None,
            last_error: None,
            enabled: false,
            passive: false,
            idle_hold,
            damped_flaps: 0,
        })
    }

    /// Processes one input and returns the actions to carry out, in order.
    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.process_into(input, &mut out);
        out
    }

    /// Like [`Fsm::process`], appending to `out`.
    pub fn process_into(&mut self, input: Input, out: &mut Vec<Output>) {
        if let Input::TimerExpired(t) = input {
            if !self.timers[t.index()] {
                return; // stale expiry of a stopped timer
            }
            self.timers[t.index()] = false;
        }
        match self.state {
            State::Idle => self.on_idle(input, out),
            State::Connect | State::Active => self.on_connect_or_active(input, out),
            State::OpenSent => self.on_open_sent(input, out),
            State::OpenConfirm => self.on_open_confirm(input, out),
            State::Established => self.on_established(input, out),
        }
    }

    // ---- accessors ----

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    /// The parameters negotiated with the peer: `Some` in OpenConfirm and Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Negotiated hold time in seconds (0: no hold timer), once the peer's OPEN was
    /// accepted.
    pub fn hold_time(&self) -> Option<u16> {
        self.negotiated.map(|n| n.hold_time)
    }

    /// Negotiated keepalive interval in seconds (0: no keepalives), once the peer's OPEN
    /// was accepted.
    pub fn keepalive_time(&self) -> Option<u16> {
        self.negotiated.map(|n| n.keepalive)
    }

    /// The ConnectRetryCounter.
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Why the FSM last went to Idle, unless that was a ManualStop.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    /// Whether the FSM considers `timer` running.
    pub fn is_running(&self, timer: Timer) -> bool {
        self.timers[timer.index()]
    }

    /// The running timers, in [`Timer::ALL`] order.
    pub fn running_timers(&self) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL.into_iter().filter(|t| self.is_running(*t))
    }

    /// The idle hold time the next automatic restart will wait (after damping).
    pub fn idle_hold_time(&self) -> Duration {
        self.idle_hold
    }

    /// Damped failures since the damping state was last reset.
    pub fn damped_flaps(&self) -> u32 {
        self.damped_flaps
    }

    /// Whether the driver may hand this FSM an inbound connection: in Connect or Active
    /// while it has no connection of its own yet (the DelayOpenTimer is not running).
    pub fn accepts_connection(&self) -> bool {
        self.state.accepts_connection() && !self.is_running(Timer::DelayOpen)
    }

    // ---- helpers shared by the state handlers ----

    fn start_timer(&mut self, timer: Timer, duration: Duration, out: &mut Vec<Output>) {
        self.timers[timer.index()] = true;
        out.push(Output::StartTimer(timer, duration));
    }

    fn stop_timer(&mut self, timer: Timer, out: &mut Vec<Output>) {
        if self.timers[timer.index()] {
            self.timers[timer.index()] = false;
            out.push(Output::StopTimer(timer));
        }
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Output>) {
        if self.state != to {
            out.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn local_open(&self) -> OpenInfo {
        OpenInfo {
            version: BGP_VERSION,
            asn: self.cfg.local_as,
            hold_time: self.cfg.hold_time,
            bgp_id: self.cfg.local_id,
        }
    }

    /// Sends our OPEN and arms the HoldTimer with the large value.
    fn send_open(&mut self, out: &mut Vec<Output>) {
        out.push(Output::SendOpen(self.local_open()));
        self.start_timer(Timer::Hold, LARGE_HOLD_TIME, out);
    }

    /// Starts a run: from Idle to Connect (active) or Active (passive).
    fn start(&mut self, passive: bool, counter: Counter, out: &mut Vec<Output>) {
        self.enabled = true;
        self.passive = passive;
        if counter == Counter::Reset {
            self.connect_retry_counter = 0;
        }
        self.stop_timer(Timer::IdleHold, out);
        if passive {
            self.set_state(State::Active, out);
        } else {
            self.start_timer(Timer::ConnectRetry, self.cfg.connect_retry, out);
            out.push(Output::InitiateConnection);
            self.set_state(State::Connect, out);
        }
    }

    /// Accepts the peer's OPEN: sets the negotiated timers and moves to OpenConfirm.
    /// `send_open` is set when our OPEN was delayed (DelayOpen) and goes out now.
    fn accept_open(&mut self, n: Negotiated, send_open: bool, out: &mut Vec<Output>) {
        self.stop_timer(Timer::ConnectRetry, out);
        self.stop_timer(Timer::DelayOpen, out);
        if send_open {
            out.push(Output::SendOpen(self.local_open()));
        }
        out.push(Output::SendKeepalive);
        if n.hold_time != 0 {
            self.start_timer(Timer::Keepalive, n.keepalive_duration(), out);
            self.start_timer(Timer::Hold, n.hold_duration(), out);
        } else {
            self.stop_timer(Timer::Keepalive, out);
            self.stop_timer(Timer::Hold, out);
        }
        self.negotiated = Some(n);
        self.set_state(State::OpenConfirm, out);
    }

    /// Restarts the HoldTimer with the negotiated value, unless that is 0.
    fn restart_hold_timer(&mut self, out: &mut Vec<Output>) {
        if let Some(n) = self.negotiated
            && n.hold_time != 0
        {
            self.start_timer(Timer::Hold, n.hold_duration(), out);
        }
    }

    /// Sends a KEEPALIVE and restarts the KeepaliveTimer.
    fn keepalive_due(&mut self, out: &mut Vec<Output>) {
        out.push(Output::SendKeepalive);
        if let Some(n) = self.negotiated
            && n.keepalive != 0
        {
            self.start_timer(Timer::Keepalive, n.keepalive_duration(), out);
        }
    }

    /// Sends a NOTIFICATION and goes to Idle with [`DownReason::ProtocolError`].
    fn fail_with(&mut self, n: NotificationData, out: &mut Vec<Output>) {
        out.push(Output::SendNotification(n.clone()));
        self.go_idle(DownReason::ProtocolError(n), Counter::Increment, true, out);
    }

    /// ManualStop: no automatic restart until the next start, damping forgotten.
    fn disable(&mut self) {
        self.enabled = false;
        self.idle_hold = self.cfg.idle_hold;
        self.damped_flaps = 0;
    }

    /// The common transition to Idle: stops every timer, drops the connection, releases
    /// resources, updates the ConnectRetryCounter, performs damping when `damp` is set and
    /// arms the automatic restart.
    fn go_idle(&mut self, reason: DownReason, counter: Counter, damp: bool, out: &mut Vec<Output>) {
        for t in Timer::ALL {
            self.stop_timer(t, out);
        }
        out.push(Output::DropConnection);
        out.push(Output::ReleaseResources);
        match counter {
            Counter::Keep => {}
            Counter::Increment => {
                self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
            }
            Counter::Reset => self.connect_retry_counter = 0,
        }
        let was_established = self.state == State::Established;
        self.negotiated = None;
        self.set_state(State::Idle, out);
        if was_established {
            out.push(Output::SessionDown {
                reason: reason.clone(),
            });
        }
        if reason == DownReason::ManualStop {
            self.disable();
            return;
        }
        self.last_error = Some(reason);
        let wait = self.idle_hold;
        if damp && let Some(d) = self.cfg.damping {
            self.damped_flaps = self.damped_flaps.saturating_add(1);
            self.idle_hold = self.idle_hold.saturating_mul(2).min(d.max_idle_hold);
        }
        if self.enabled && self.cfg.automatic_restart {
            self.start_timer(Timer::IdleHold, wait, out);
        }
    }
}
