//! Bidirectional Forwarding Detection (RFC 5880, single hop per RFC 5881), sans-IO.
//!
//! - [`packet`]: the Control packet codec (version 1; the authentication section raw).
//! - [`auth`]: authentication (§6.7): Keyed MD5/SHA1 and their meticulous variants, the
//!   digest and the sequence number window; the session keeps bfd.XmitAuthSeq and
//!   bfd.RcvAuthSeq ([`Session::with_auth`]).
//! - [`check_ingress`]: a packet counts only when it arrived on the session's interface.
//! - [`Session`]: one BFD session in asynchronous mode: the state machine of RFC 5880
//!   §6.2 with the reception rules of §6.8.6, timer negotiation (§6.8.2–§6.8.4), the Poll
//!   Sequence (§6.5) when our intervals change, the 1 s slow transmit rate while not Up
//!   (§6.8.3) and per-packet jitter (§6.8.7).
//!
//! Like [`crate::fsm`], a session never reads the clock and never touches a socket.
//! [`Session::process`] takes an [`Input`], the current time `now` (any monotonic clock
//! the driver chooses, as a [`Duration`] from its own epoch) and a random number for
//! jitter, and returns [`Output`]s in order. Timers are deadlines on that same clock:
//! [`Output::ArmTx`] / [`Output::ArmDetect`] replace any earlier deadline of that timer,
//! [`Output::StopTx`] / [`Output::StopDetect`] cancel it. When a deadline passes the
//! driver feeds [`Input::TxTimer`] / [`Input::DetectTimer`]; the session checks the
//! deadline itself, so an early or stale expiry is harmless.
//!
//! Not supported: running Demand mode ourselves (we never set D; a peer that runs it —
//! D set, both sides Up — gets no periodic packets from us, as §6.8.7 asks, while we keep
//! detecting on the packets it still sends), the Echo function (we advertise a Required
//! Min Echo RX Interval of 0), Simple Password authentication, multipoint.

pub mod auth;
pub mod packet;
mod session;

pub use auth::{AuthError, AuthKey, AuthKeyError, AuthType};
pub use packet::{AuthSection, BfdState, CONTROL_PORT, ControlPacket, DecodeError, Diag};
pub use session::{
    BfdConfig, ConfigError, Discard, Input, Output, SLOW_TX_INTERVAL, Session, check_ingress,
    check_received,
};
