//! The FSM's vocabulary: states, timers, inputs, outputs and the small message views it
//! needs. Nothing here knows the wire format; the driver maps decoded messages to
//! [`OpenInfo`] and [`NotificationData`].

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error_codes::{CeaseError, ErrorCode, FsmError, OpenError};

/// The six session states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// All states, in RFC order.
    pub const ALL: [State; 6] = [
        State::Idle,
        State::Connect,
        State::Active,
        State::OpenSent,
        State::OpenConfirm,
        State::Established,
    ];

    /// The name FRR and BIRD show for this state.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }

    /// Whether the driver may hand this FSM an inbound connection
    /// ([`Input::TcpConnectionConfirmed`]). In OpenSent, OpenConfirm and Established an
    /// inbound connection belongs to a second FSM instance (see [`super::collision`]).
    pub fn accepts_connection(self) -> bool {
        matches!(self, State::Connect | State::Active)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The timers of RFC 4271 §8 plus one for forgetting damping penalties.
///
/// The FSM never reads the clock: it asks the driver to start or stop a timer with
/// [`Output::StartTimer`] / [`Output::StopTimer`] and learns of the expiry through
/// [`Input::TimerExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// ConnectRetryTimer (RFC 4271 §8.1.1 attribute 4).
    ConnectRetry,
    /// HoldTimer.
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// DelayOpenTimer (optional attribute DelayOpen).
    DelayOpen,
    /// IdleHoldTimer: how long the FSM stays in Idle before an automatic restart.
    IdleHold,
    /// Runs while the session is Established; when it expires the session counts as
    /// stable and the damped idle hold time falls back to its initial value. Only used
    /// when peer-oscillation damping is configured.
    DampingReset,
}

impl Timer {
    /// All timers, in the order the FSM stops them.
    pub const ALL: [Timer; 6] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::DelayOpen,
        Timer::IdleHold,
        Timer::DampingReset,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            Timer::ConnectRetry => 0,
            Timer::Hold => 1,
            Timer::Keepalive => 2,
            Timer::DelayOpen => 3,
            Timer::IdleHold => 4,
            Timer::DampingReset => 5,
        }
    }

    /// The RFC 4271 §8.1 event name of this timer's expiry.
    pub fn expiry_event_name(self) -> &'static str {
        match self {
            Timer::ConnectRetry => "ConnectRetryTimer_Expires",
            Timer::Hold => "HoldTimer_Expires",
            Timer::Keepalive => "KeepaliveTimer_Expires",
            Timer::DelayOpen => "DelayOpenTimer_Expires",
            Timer::IdleHold => "IdleHoldTimer_Expires",
            Timer::DampingReset => "DampingResetTimer_Expires",
        }
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Timer::ConnectRetry => "ConnectRetryTimer",
            Timer::Hold => "HoldTimer",
            Timer::Keepalive => "KeepaliveTimer",
            Timer::DelayOpen => "DelayOpenTimer",
            Timer::IdleHold => "IdleHoldTimer",
            Timer::DampingReset => "DampingResetTimer",
        };
        f.write_str(name)
    }
}

/// What the FSM needs from a received OPEN message (RFC 4271 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenInfo {
    /// The Version field.
    pub version: u8,
    /// The peer's AS, already resolved from the 4-octet AS capability (RFC 6793) when the
    /// peer sent one, else the 2-octet My Autonomous System field.
    pub asn: u32,
    /// The Hold Time field, in seconds.
    pub hold_time: u16,
    /// The BGP Identifier field.
    pub bgp_id: Ipv4Addr,
}

/// The contents of a NOTIFICATION message, sent or received (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotificationData {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl NotificationData {
    /// A NOTIFICATION without data, from its code and subcode octets.
    pub fn new(code: u8, subcode: u8) -> Self {
        NotificationData {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// A NOTIFICATION without data with this error code and subcode.
    pub fn of(code: ErrorCode) -> Self {
        let (code, subcode) = code.codes();
        NotificationData::new(code, subcode)
    }

    /// A Cease NOTIFICATION with the given subcode (RFC 4486).
    pub fn cease(subcode: CeaseError) -> Self {
        NotificationData::of(ErrorCode::Cease(subcode))
    }

    /// An OPEN Message Error NOTIFICATION with the given subcode.
    pub fn open_error(subcode: OpenError) -> Self {
        NotificationData::of(ErrorCode::Open(subcode))
    }

    /// A Finite State Machine Error NOTIFICATION with the given subcode (RFC 6608).
    pub fn fsm_error(subcode: FsmError) -> Self {
        NotificationData::of(ErrorCode::Fsm(subcode))
    }

    /// The error code and subcode, typed.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from_codes(self.code, self.subcode)
    }

    /// Whether this is an OPEN Message Error / Unsupported Version Number, which the FSM
    /// handles as NotifMsgVerErr (event 24) rather than NotifMsg (event 25).
    pub fn is_version_error(&self) -> bool {
        self.error_code() == ErrorCode::Open(OpenError::UnsupportedVersion)
    }
}

impl fmt::Display for NotificationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.error_code() {
            ErrorCode::MessageHeader(_) => "message header error",
            ErrorCode::Open(_) => "open message error",
            ErrorCode::Update(_) => "update message error",
            ErrorCode::HoldTimerExpired(_) => "hold timer expired",
            ErrorCode::Fsm(_) => "finite state machine error",
            ErrorCode::Cease(_) => "cease",
            ErrorCode::RouteRefresh(_) => "route-refresh message error",
            ErrorCode::SendHoldTimerExpired(_) => "send hold timer expired",
            ErrorCode::Unknown { .. } => "unknown error code",
        };
        write!(f, "{code} ({}/{})", self.code, self.subcode)?;
        if !self.data.is_empty() {
            write!(f, ", {} octets of data", self.data.len())?;
        }
        Ok(())
    }
}

/// The parameters agreed with the peer once its OPEN was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// min(local hold time, peer hold time), in seconds; 0 disables the hold and keepalive
    /// timers.
    pub hold_time: u16,
    /// min(configured keepalive, hold time / 3), in seconds; 0 when the hold time is 0.
    pub keepalive: u16,
    /// The peer's OPEN as received.
    pub peer: OpenInfo,
    /// Whether the peer is in our AS (iBGP).
    pub internal: bool,
}

impl Negotiated {
    /// The hold time as a duration.
    pub fn hold_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.hold_time))
    }

    /// The keepalive interval as a duration.
    pub fn keepalive_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.keepalive))
    }
}

/// One input to [`super::Fsm::process`]. Each variant names the RFC 4271 §8.1 events it
/// stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// ManualStart (event 1), or ManualStart_with_PassiveTcpEstablishment (event 4) when
    /// the configuration is passive.
    ManualStart,
    /// ManualStart_with_PassiveTcpEstablishment (event 4) regardless of configuration.
    ManualStartPassive,
    /// AutomaticStart (event 3), or AutomaticStart_with_PassiveTcpEstablishment (event 5)
    /// when the configuration is passive. With damping configured this is also
    /// AutomaticStart_with_DampPeerOscillations (events 6 and 7): it is ignored while the
    /// IdleHoldTimer runs.
    AutomaticStart,
    /// AutomaticStart_with_PassiveTcpEstablishment (event 5) regardless of configuration.
    AutomaticStartPassive,
    /// ManualStop (event 2). Sends Cease / Administrative Shutdown where a NOTIFICATION is
    /// due, and disables automatic restarts until the next start.
    ManualStop,
    /// AutomaticStop (event 8), e.g. because the maximum number of prefixes was reached.
    /// `cease_subcode` goes into the Cease NOTIFICATION (RFC 4486).
    AutomaticStop { cease_subcode: u8 },
    /// ConnectRetryTimer_Expires (9), HoldTimer_Expires (10), KeepaliveTimer_Expires (11),
    /// DelayOpenTimer_Expires (12), IdleHoldTimer_Expires (13), and the expiry of
    /// [`Timer::DampingReset`]. An expiry for a timer the FSM does not consider running is
    /// stale and ignored.
    TimerExpired(Timer),
    /// Tcp_CR_Acked (event 16): our outgoing connection was established.
    TcpCrAcked,
    /// TcpConnectionConfirmed (event 17): the driver accepted an incoming connection from
    /// the peer and hands it to this FSM.
    TcpConnectionConfirmed,
    /// TcpConnectionFails (event 18): the connection (or the attempt) failed or was closed
    /// by the peer.
    TcpConnectionFails,
    /// An OPEN was received and decoded: BGPOpen (event 19) or, when the DelayOpenTimer
    /// runs, BGPOpen with DelayOpenTimer running (event 20). The FSM validates it
    /// (RFC 4271 §6.2); an invalid OPEN becomes BGPOpenMsgErr (event 22).
    BgpOpen(OpenInfo),
    /// BGPHeaderErr (event 21): the codec found a message header error; the data is the
    /// NOTIFICATION it asks to send.
    BgpHeaderErr(NotificationData),
    /// BGPOpenMsgErr (event 22): the codec could not decode an OPEN; the data is the
    /// NOTIFICATION it asks to send.
    BgpOpenMsgErr(NotificationData),
    /// OpenCollisionDump (event 23): collision detection (see [`super::collision`]) chose
    /// to close this connection.
    OpenCollisionDump,
    /// A NOTIFICATION was received: NotifMsgVerErr (event 24) when it is an Unsupported
    /// Version Number error, NotifMsg (event 25) otherwise.
    NotifMsg(NotificationData),
    /// KeepAliveMsg (event 26).
    KeepAliveMsg,
    /// UpdateMsg (event 27): a valid UPDATE was received; the driver holds it and passes
    /// it to the RIB when the FSM answers [`Output::ProcessUpdate`].
    UpdateMsg,
    /// UpdateMsgErr (event 28): an UPDATE with an error that resets the session (errors
    /// handled by treat-as-withdraw, RFC 7606, are not this event); the data is the
    /// NOTIFICATION the codec asks to send.
    UpdateMsgErr(NotificationData),
}

/// The kind of an [`Input`], without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    ManualStart,
    ManualStartPassive,
    AutomaticStart,
    AutomaticStartPassive,
    ManualStop,
    AutomaticStop,
    TimerExpired(Timer),
    TcpCrAcked,
    TcpConnectionConfirmed,
    TcpConnectionFails,
    BgpOpen,
    BgpHeaderErr,
    BgpOpenMsgErr,
    OpenCollisionDump,
    NotifMsgVerErr,
    NotifMsg,
    KeepAliveMsg,
    UpdateMsg,
    UpdateMsgErr,
}

impl Input {
    /// The kind of this input. A received NOTIFICATION is [`InputKind::NotifMsgVerErr`]
    /// when it reports an unsupported version.
    pub fn kind(&self) -> InputKind {
        match self {
            Input::ManualStart => InputKind::ManualStart,
            Input::ManualStartPassive => InputKind::ManualStartPassive,
            Input::AutomaticStart => InputKind::AutomaticStart,
            Input::AutomaticStartPassive => InputKind::AutomaticStartPassive,
            Input::ManualStop => InputKind::ManualStop,
            Input::AutomaticStop { .. } => InputKind::AutomaticStop,
            Input::TimerExpired(t) => InputKind::TimerExpired(*t),
            Input::TcpCrAcked => InputKind::TcpCrAcked,
            Input::TcpConnectionConfirmed => InputKind::TcpConnectionConfirmed,
            Input::TcpConnectionFails => InputKind::TcpConnectionFails,
            Input::BgpOpen(_) => InputKind::BgpOpen,
            Input::BgpHeaderErr(_) => InputKind::BgpHeaderErr,
            Input::BgpOpenMsgErr(_) => InputKind::BgpOpenMsgErr,
            Input::OpenCollisionDump => InputKind::OpenCollisionDump,
            Input::NotifMsg(n) if n.is_version_error() => InputKind::NotifMsgVerErr,
            Input::NotifMsg(_) => InputKind::NotifMsg,
            Input::KeepAliveMsg => InputKind::KeepAliveMsg,
            Input::UpdateMsg => InputKind::UpdateMsg,
            Input::UpdateMsgErr(_) => InputKind::UpdateMsgErr,
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            InputKind::ManualStart => "ManualStart",
            InputKind::ManualStartPassive => "ManualStart_with_PassiveTcpEstablishment",
            InputKind::AutomaticStart => "AutomaticStart",
            InputKind::AutomaticStartPassive => "AutomaticStart_with_PassiveTcpEstablishment",
            InputKind::ManualStop => "ManualStop",
            InputKind::AutomaticStop => "AutomaticStop",
            InputKind::TimerExpired(t) => t.expiry_event_name(),
            InputKind::TcpCrAcked => "Tcp_CR_Acked",
            InputKind::TcpConnectionConfirmed => "TcpConnectionConfirmed",
            InputKind::TcpConnectionFails => "TcpConnectionFails",
            InputKind::BgpOpen => "BGPOpen",
            InputKind::BgpHeaderErr => "BGPHeaderErr",
            InputKind::BgpOpenMsgErr => "BGPOpenMsgErr",
            InputKind::OpenCollisionDump => "OpenCollisionDump",
            InputKind::NotifMsgVerErr => "NotifMsgVerErr",
            InputKind::NotifMsg => "NotifMsg",
            InputKind::KeepAliveMsg => "KeepAliveMsg",
            InputKind::UpdateMsg => "UpdateMsg",
            InputKind::UpdateMsgErr => "UpdateMsgErr",
        };
        f.write_str(name)
    }
}

/// Why a session went to Idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// ManualStop.
    ManualStop,
    /// AutomaticStop with this Cease subcode.
    AutomaticStop { cease_subcode: u8 },
    /// The HoldTimer expired (a Hold Timer Expired NOTIFICATION was sent).
    HoldTimerExpired,
    /// The TCP connection failed or was closed by the peer.
    ConnectionFailed,
    /// The peer sent this NOTIFICATION.
    NotificationReceived(NotificationData),
    /// We detected an error and closed the connection with this NOTIFICATION. When the
    /// NOTIFICATION could not be sent (before our OPEN, without
    /// `send_notification_without_open`) it is still reported here.
    ProtocolError(NotificationData),
    /// Connection collision resolution closed this connection.
    CollisionDump,
    /// An input that the current state does not accept and that RFC 4271 answers by
    /// closing the connection without a NOTIFICATION (Connect and Active states).
    UnexpectedInput { state: State, input: InputKind },
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::ManualStop => f.write_str("manual stop"),
            DownReason::AutomaticStop { cease_subcode } => {
                write!(f, "automatic stop (cease subcode {cease_subcode})")
            }
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::ConnectionFailed => f.write_str("tcp connection failed"),
            DownReason::NotificationReceived(n) => write!(f, "notification received: {n}"),
            DownReason::ProtocolError(n) => write!(f, "notification sent: {n}"),
            DownReason::CollisionDump => f.write_str("connection collision resolution"),
            DownReason::UnexpectedInput { state, input } => {
                write!(f, "unexpected {input} in state {state}")
            }
        }
    }
}

/// One action the driver must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer. Any previous attempt was dropped first with
    /// [`Output::DropConnection`].
    InitiateConnection,
    /// Close the FSM's TCP connection, or abandon a pending connection attempt, if any.
    /// Idempotent.
    DropConnection,
    /// Send our OPEN. The FSM fills in version, AS (the driver encodes AS_TRANS plus the
    /// 4-octet AS capability when needed), hold time and BGP Identifier; the driver adds
    /// the capabilities.
    SendOpen(OpenInfo),
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send this NOTIFICATION (the driver then flushes and the FSM's next output is
    /// [`Output::DropConnection`]).
    SendNotification(NotificationData),
    /// Start (or restart, replacing a running instance) this timer.
    StartTimer(Timer, Duration),
    /// Stop this timer; a later expiry of it must not be delivered.
    StopTimer(Timer),
    /// The FSM changed state.
    StateChanged { from: State, to: State },
    /// The session reached Established with these parameters.
    SessionUp(Negotiated),
    /// The session left Established: delete all routes learned on it and release its
    /// Adj-RIBs.
    SessionDown { reason: DownReason },
    /// Hand the UPDATE just received to the RIB.
    ProcessUpdate,
    /// Release all BGP resources of this connection (codec context, buffers). Emitted on
    /// every transition to Idle.
    ReleaseResources,
}
