//! One BFD session (RFC 5880 §6.2, §6.8): state machine, timers, Poll Sequence.

use std::time::Duration;

use super::auth::{self, AuthError, AuthKey};
use super::packet::{BfdState, ControlPacket, Diag};

/// While a session is not Up, bfd.DesiredMinTxInterval is at least one second (§6.8.3).
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// The local, configured session parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval (zero: we ask the peer not to send periodic packets).
    pub required_min_rx: Duration,
    /// bfd.DetectMult (≥ 1).
    pub detect_mult: u8,
}

impl Default for BfdConfig {
    /// 300 ms × 3, FRR's defaults.
    fn default() -> Self {
        BfdConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

/// An invalid [`BfdConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("detect multiplier must not be 0")]
    DetectMult,
    #[error("desired min TX interval must be between 1 µs and 4294 s")]
    DesiredMinTx,
    #[error("required min RX interval must be below 4294 s")]
    RequiredMinRx,
}

impl BfdConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detect_mult == 0 {
            return Err(ConfigError::DetectMult);
        }
        if self.desired_min_tx.is_zero() || to_us(self.desired_min_tx).is_none() {
            return Err(ConfigError::DesiredMinTx);
        }
        if to_us(self.required_min_rx).is_none() {
            return Err(ConfigError::RequiredMinRx);
        }
        Ok(())
    }
}

fn to_us(d: Duration) -> Option<u32> {
    u32::try_from(d.as_micros()).ok()
}

fn us(v: u32) -> Duration {
    Duration::from_micros(u64::from(v))
}

/// What the driver feeds a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin transmitting (the session starts Down).
    Start,
    /// A decoded Control packet that the driver demultiplexed to this session. The driver
    /// has already checked TTL/hop limit 255 (RFC 5881 §5).
    Received(ControlPacket),
    /// The transmit deadline passed.
    TxTimer,
    /// The detection deadline passed.
    DetectTimer,
    /// Take the session administratively down (§6.8.16).
    AdminDown,
    /// Leave AdminDown (back to Down).
    AdminUp,
    /// New local parameters; starts a Poll Sequence if the advertised values change.
    Configure(BfdConfig),
}

/// Why a received packet was discarded (RFC 5880 §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    #[error("detect multiplier is 0")]
    DetectMultZero,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator is 0")]
    MyDiscrZero,
    #[error("your discriminator does not select this session")]
    YourDiscrMismatch,
    #[error("your discriminator is 0 but state is neither Down nor AdminDown")]
    YourDiscrZero,
    /// A packet that names no session (your discriminator 0) is matched by addresses
    /// alone, which anyone one hop away can forge: once Up, only packets naming this
    /// session count (a peer that really restarted is caught by the detection time).
    #[error("your discriminator is 0 but the session is Up")]
    YourDiscrZeroWhileUp,
    /// Authentication failed or did not match the configuration (§6.7, §6.8.6).
    #[error("authentication: {0}")]
    Auth(AuthError),
    /// The packet arrived on another interface than the one the session runs over: a
    /// sender on another link forged the peer's address ([`check_ingress`]).
    #[error("arrived on interface {arrived}, not the session's")]
    WrongInterface { arrived: u32 },
    #[error("local session is AdminDown")]
    LocalAdminDown,
}

/// The reception checks of RFC 5880 §6.8.6 that need no session: detect multiplier,
/// multipoint, my discriminator, and a zero your discriminator only in Down/AdminDown.
/// Version and lengths are the codec's checks ([`ControlPacket::decode`]); authentication
/// is the session's ([`Session::with_auth`]).
pub fn check_received(p: &ControlPacket) -> Result<(), Discard> {
    if p.detect_mult == 0 {
        return Err(Discard::DetectMultZero);
    }
    if p.multipoint {
        return Err(Discard::Multipoint);
    }
    if p.my_discr == 0 {
        return Err(Discard::MyDiscrZero);
    }
    if p.your_discr == 0 && !matches!(p.state, BfdState::Down | BfdState::AdminDown) {
        return Err(Discard::YourDiscrZero);
    }
    Ok(())
}

/// The ingress check: a single-hop session accepts packets only from the interface(s)
/// its local address is on (`expected`, which the driver resolves), since TTL 255 proves
/// one hop but not which link. `arrived` is the interface index the packet came in on
/// (IP_PKTINFO / IPV6_PKTINFO); a packet whose interface is unknown, or a session whose
/// interface is unknown, is discarded too (index 0).
pub fn check_ingress(expected: &[u32], arrived: Option<u32>) -> Result<(), Discard> {
    match arrived {
        Some(i) if i != 0 && expected.contains(&i) => Ok(()),
        other => Err(Discard::WrongInterface {
            arrived: other.unwrap_or(0),
        }),
    }
}

/// What a session asks the driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this Control packet now.
    Send(ControlPacket),
    /// bfd.SessionState changed.
    StateChanged {
        from: BfdState,
        to: BfdState,
        diag: Diag,
    },
    /// Feed [`Input::TxTimer`] at this time (replaces an earlier deadline).
    ArmTx(Duration),
    /// No periodic transmission (the peer's Required Min RX Interval is 0).
    StopTx,
    /// Feed [`Input::DetectTimer`] at this time (replaces an earlier deadline).
    ArmDetect(Duration),
    /// Cancel the detection deadline.
    StopDetect,
    /// A received packet was discarded (for counters and logs).
    Discarded(Discard),
}

/// One BFD session in asynchronous mode, active role.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: BfdConfig,
    state: BfdState,
    remote_state: BfdState,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    /// bfd.DesiredMinTxInterval as advertised.
    desired_tx: Duration,
    /// bfd.RequiredMinRxInterval as advertised.
    required_rx: Duration,
    /// The DesiredMinTxInterval the transmit interval is computed from: an increase while
    /// Up takes effect only when its Poll Sequence ends (§6.8.3).
    tx_in_use: Duration,
    /// The RequiredMinRxInterval the detection time is computed from: a decrease while Up
    /// takes effect only when its Poll Sequence ends (§6.8.3).
    rx_in_use: Duration,
    /// bfd.RemoteMinRxInterval (initialised to 1 µs).
    remote_min_rx: Duration,
    /// Desired Min TX Interval of the last packet received.
    remote_desired_tx: Duration,
    /// Detect Mult of the last packet received.
    remote_detect_mult: u8,
    /// bfd.RemoteDemandMode: the D bit of the last packet received.
    remote_demand: bool,
    /// A Poll Sequence is in progress: our packets carry P until a packet with F arrives.
    polling: bool,
    started: bool,
    tx_at: Option<Duration>,
    detect_at: Option<Duration>,
    /// bfd.AuthType and the key (None: no authentication).
    auth: Option<AuthKey>,
    /// bfd.XmitAuthSeq.
    xmit_seq: u32,
    /// bfd.RcvAuthSeq when bfd.AuthSeqKnown, with the time it stops being known: two
    /// Detection Times after the last authenticated packet (§6.8.1).
    rcv_seq: Option<(u32, Duration)>,
}

impl Session {
    /// A new session, Down. `local_discr` must be non-zero and unique among the driver's
    /// sessions.
    pub fn new(local_discr: u32, cfg: BfdConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        assert_ne!(local_discr, 0, "bfd.LocalDiscr must be non-zero");
        Ok(Session {
            cfg,
            state: BfdState::Down,
            remote_state: BfdState::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            desired_tx: cfg.desired_min_tx.max(SLOW_TX_INTERVAL),
            required_rx: cfg.required_min_rx,
            tx_in_use: cfg.desired_min_tx.max(SLOW_TX_INTERVAL),
            rx_in_use: cfg.required_min_rx,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            polling: false,
            started: false,
            tx_at: None,
            detect_at: None,
            auth: None,
            xmit_seq: 0,
            rcv_seq: None,
        })
    }

    /// The session with authentication `key` (None: none); `xmit_seq` is the first
    /// bfd.XmitAuthSeq, which §6.8.1 asks to be random.
    pub fn with_auth(mut self, key: Option<AuthKey>, xmit_seq: u32) -> Self {
        self.auth = key;
        self.xmit_seq = xmit_seq;
        self
    }

    /// Changes the key (§6.7.1 allows it at any time); the sequence numbers continue.
    pub fn set_auth(&mut self, key: Option<AuthKey>) {
        self.auth = key;
    }

    pub fn auth(&self) -> Option<&AuthKey> {
        self.auth.as_ref()
    }

    pub fn state(&self) -> BfdState {
        self.state
    }
    pub fn remote_state(&self) -> BfdState {
        self.remote_state
    }
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }
    pub fn config(&self) -> BfdConfig {
        self.cfg
    }
    /// A Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.polling
    }
    /// The transmit interval before jitter (None: no periodic transmission: the peer's
    /// Required Min RX Interval is 0, or it runs Demand mode with both sides Up, §6.8.7).
    pub fn tx_interval(&self) -> Option<Duration> {
        let remote_demand_active =
            self.remote_demand && self.state == BfdState::Up && self.remote_state == BfdState::Up;
        if self.remote_min_rx.is_zero() || remote_demand_active {
            None
        } else {
            Some(self.tx_in_use.max(self.remote_min_rx))
        }
    }
    /// The detection time (§6.8.4), once a packet has been received.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_detect_mult != 0).then(|| {
            self.rx_in_use.max(self.remote_desired_tx) * u32::from(self.remote_detect_mult)
        })
    }
    pub fn tx_deadline(&self) -> Option<Duration> {
        self.tx_at
    }
    pub fn detect_deadline(&self) -> Option<Duration> {
        self.detect_at
    }

    /// Processes one input at time `now`. `random` is any random number from the driver;
    /// it only chooses the jitter of the next transmit deadline (75–100 % of the interval,
    /// 75–90 % with a detect multiplier of 1, §6.8.7).
    pub fn process(&mut self, input: Input, now: Duration, random: u32) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if !self.started {
                    self.started = true;
                    {
                        let p = self.emit(false);
                        out.push(Output::Send(p));
                    }
                    self.schedule_tx(now, random, &mut out);
                }
            }
            Input::Received(p) => self.on_received(p, now, random, &mut out),
            Input::TxTimer => match self.tx_at {
                Some(at) if now >= at && self.started => {
                    {
                        let p = self.emit(false);
                        out.push(Output::Send(p));
                    }
                    self.schedule_tx(now, random, &mut out);
                }
                Some(at) => out.push(Output::ArmTx(at)),
                None => {}
            },
            Input::DetectTimer => {
                if let Some(at) = self.detect_at
                    && now >= at
                {
                    self.on_detect_expired(now, random, &mut out);
                }
            }
            Input::AdminDown => {
                if self.state != BfdState::AdminDown {
                    self.detect_at = None;
                    out.push(Output::StopDetect);
                    self.change_state(BfdState::AdminDown, Diag::AdministrativelyDown, &mut out);
                    self.after_change(now, random, &mut out);
                }
            }
            Input::AdminUp => {
                if self.state == BfdState::AdminDown {
                    self.change_state(BfdState::Down, Diag::None, &mut out);
                    self.after_change(now, random, &mut out);
                }
            }
            Input::Configure(cfg) => {
                if cfg.validate().is_ok() && cfg != self.cfg {
                    self.cfg = cfg;
                    self.update_intervals();
                    self.reschedule_if_sooner(now, random, &mut out);
                }
            }
        }
        out
    }

    fn on_received(&mut self, p: ControlPacket, now: Duration, random: u32, out: &mut Vec<Output>) {
        if let Err(d) = check_received(&p) {
            out.push(Output::Discarded(d));
            return;
        }
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            out.push(Output::Discarded(Discard::YourDiscrMismatch));
            return;
        }
        if let Err(e) = self.authenticate(&p, now) {
            out.push(Output::Discarded(Discard::Auth(e)));
            return;
        }
        if p.your_discr == 0 && self.state == BfdState::Up {
            out.push(Output::Discarded(Discard::YourDiscrZeroWhileUp));
            return;
        }
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_min_rx = us(p.required_min_rx_us);
        self.remote_desired_tx = us(p.desired_min_tx_us);
        self.remote_detect_mult = p.detect_mult;
        self.remote_demand = p.demand;
        if self.polling && p.final_ {
            // The Poll Sequence ends: the new intervals apply in full.
            self.polling = false;
            self.tx_in_use = self.desired_tx;
            self.rx_in_use = self.required_rx;
        }
        if self.tx_interval().is_none() {
            if self.tx_at.take().is_some() {
                out.push(Output::StopTx);
            }
        } else if self.started {
            self.reschedule_if_sooner(now, random, out);
        }
        if self.state == BfdState::AdminDown {
            out.push(Output::Discarded(Discard::LocalAdminDown));
            return;
        }
        // §6.8.6: a remote AdminDown brings any other state than Down to Down (diag 3);
        // otherwise the three-way handshake of §6.2.
        let next = if p.state == BfdState::AdminDown {
            (self.state != BfdState::Down).then_some((BfdState::Down, Diag::NeighborSignaledDown))
        } else {
            match (self.state, p.state) {
                (BfdState::Down, BfdState::Down) => Some((BfdState::Init, Diag::None)),
                (BfdState::Down, BfdState::Init) => Some((BfdState::Up, Diag::None)),
                (BfdState::Init, BfdState::Init | BfdState::Up) => Some((BfdState::Up, Diag::None)),
                (BfdState::Up, BfdState::Down) => {
                    Some((BfdState::Down, Diag::NeighborSignaledDown))
                }
                _ => None,
            }
        };
        if let Some((to, diag)) = next {
            self.change_state(to, diag, out);
        }
        if p.poll {
            // Answer at once with F, regardless of the transmit timer (§6.8.6).
            let p = self.emit(true);
            out.push(Output::Send(p));
        }
        if next.is_some() {
            self.after_change(now, random, out);
        }
        if let Some(t) = self.detection_time() {
            let at = now + t;
            self.detect_at = Some(at);
            out.push(Output::ArmDetect(at));
        }
    }

    /// §6.8.6: an A bit without authentication in use, or none with it, discards; else
    /// the digest and the sequence number window (§6.7.3/§6.7.4) decide. Only a packet
    /// that passes moves bfd.RcvAuthSeq.
    fn authenticate(&mut self, p: &ControlPacket, now: Duration) -> Result<(), AuthError> {
        let Some(key) = &self.auth else {
            return match p.auth {
                Some(_) => Err(AuthError::Unexpected),
                None => Ok(()),
            };
        };
        let seq = auth::verify(p, key)?;
        if let Some((last, until)) = self.rcv_seq
            && now <= until
            && !auth::seq_acceptable(key.auth_type(), last, seq, p.detect_mult)
        {
            return Err(AuthError::Sequence { got: seq, last });
        }
        let detection = self.rx_in_use.max(us(p.desired_min_tx_us)) * u32::from(p.detect_mult);
        self.rcv_seq = Some((seq, now + detection * 2));
        Ok(())
    }

    fn on_detect_expired(&mut self, now: Duration, random: u32, out: &mut Vec<Output>) {
        self.detect_at = None;
        // No packet for a Detection Time: forget the peer (§6.8.1 bfd.RemoteDiscr). The
        // remote Required Min RX goes back to its initial 1 µs so that we keep
        // transmitting and the session can come back.
        self.remote_discr = 0;
        self.remote_state = BfdState::Down;
        self.remote_min_rx = Duration::from_micros(1);
        self.remote_detect_mult = 0;
        self.remote_demand = false;
        self.polling = false;
        if matches!(self.state, BfdState::Init | BfdState::Up) {
            self.change_state(BfdState::Down, Diag::ControlDetectionTimeExpired, out);
            self.after_change(now, random, out);
        } else if self.started && self.tx_at.is_none() {
            self.schedule_tx(now, random, out);
        }
    }

    fn change_state(&mut self, to: BfdState, diag: Diag, out: &mut Vec<Output>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        out.push(Output::StateChanged { from, to, diag });
        self.update_intervals();
    }

    /// After a state change: tell the peer at once, and keep the periodic schedule no
    /// longer than the (possibly new) interval.
    fn after_change(&mut self, now: Duration, random: u32, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        {
            let p = self.emit(false);
            out.push(Output::Send(p));
        }
        self.reschedule_if_sooner(now, random, out);
    }

    /// Recomputes the advertised intervals from the configuration and the state; a change
    /// starts a Poll Sequence when there is a peer (§6.8.3).
    fn update_intervals(&mut self) {
        let up = self.state == BfdState::Up;
        let desired = if up {
            self.cfg.desired_min_tx
        } else {
            self.cfg.desired_min_tx.max(SLOW_TX_INTERVAL)
        };
        let required = self.cfg.required_min_rx;
        let changed = desired != self.desired_tx || required != self.required_rx;
        self.desired_tx = desired;
        self.required_rx = required;
        if changed && self.remote_discr != 0 {
            self.polling = true;
        }
        // The values in use follow at once, except that while Up and polling a larger TX
        // interval and a smaller RX interval wait for the Final (§6.8.3).
        let waiting = up && self.polling;
        if !(waiting && desired > self.tx_in_use) {
            self.tx_in_use = desired;
        }
        if !(waiting && required < self.rx_in_use) {
            self.rx_in_use = required;
        }
    }

    fn jittered(&self, interval: Duration, random: u32) -> Duration {
        // Reduce by 0–25 % (10–25 % with a detect multiplier of 1), in per-mille steps.
        let (lo, hi) = if self.cfg.detect_mult == 1 {
            (100, 250)
        } else {
            (0, 250)
        };
        let cut = lo + random % (hi - lo + 1);
        interval * (1000 - cut) / 1000
    }

    fn schedule_tx(&mut self, now: Duration, random: u32, out: &mut Vec<Output>) {
        match self.tx_interval() {
            Some(i) => {
                let at = now + self.jittered(i, random);
                self.tx_at = Some(at);
                out.push(Output::ArmTx(at));
            }
            None => {
                if self.tx_at.take().is_some() {
                    out.push(Output::StopTx);
                }
            }
        }
    }

    /// Moves the transmit deadline earlier if the current interval is shorter than what
    /// remains (or arms it if periodic transmission was stopped).
    fn reschedule_if_sooner(&mut self, now: Duration, random: u32, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        match (self.tx_interval(), self.tx_at) {
            (Some(i), Some(at)) if at > now + i => self.schedule_tx(now, random, out),
            (Some(_), None) => self.schedule_tx(now, random, out),
            _ => {}
        }
    }

    /// The packet to send, authenticated when a key is set: bfd.XmitAuthSeq grows by one
    /// per packet, which the meticulous types require and the keyed ones allow (§6.7.3).
    fn emit(&mut self, final_: bool) -> ControlPacket {
        let mut p = self.packet(final_);
        if let Some(key) = &self.auth {
            self.xmit_seq = self.xmit_seq.wrapping_add(1);
            auth::sign(&mut p, key, self.xmit_seq);
        }
        p
    }

    /// The packet to send now (§6.8.7), without authentication. `final_`: answer a Poll
    /// (never with P as well).
    pub fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            cpi: false,
            demand: false,
            multipoint: false,
            detect_mult: self.cfg.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: to_us(self.desired_tx).unwrap_or(u32::MAX),
            required_min_rx_us: to_us(self.required_rx).unwrap_or(u32::MAX),
            required_min_echo_rx_us: 0,
            auth: None,
        }
    }
}

#[cfg(test)]
mod tests;
