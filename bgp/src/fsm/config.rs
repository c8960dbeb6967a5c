//! Per-peer FSM configuration (the RFC 4271 §8.1.1 session attributes we support).

use std::net::Ipv4Addr;
use std::time::Duration;

use thiserror::Error;

/// Which AS numbers the peer may announce in its OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAs {
    /// Exactly this AS.
    Exact(u32),
    /// Any AS in `min..=max` (dynamic peers of a known range).
    Range { min: u32, max: u32 },
    /// Any AS (dynamic peers); iBGP or eBGP follows from what the peer announces.
    Any,
}

impl PeerAs {
    /// Whether `asn` is acceptable.
    pub fn accepts(&self, asn: u32) -> bool {
        match *self {
            PeerAs::Exact(a) => a == asn,
            PeerAs::Range { min, max } => (min..=max).contains(&asn),
            PeerAs::Any => asn != 0,
        }
    }
}

/// Peer-oscillation damping (RFC 4271 §8.1.1, optional attribute DampPeerOscillations).
///
/// Every time the session goes down for a reason the RFC marks with "performs peer
/// oscillation damping", the idle hold time used for the next automatic restart doubles,
/// up to `max_idle_hold`. Once the session has stayed Established for `reset_after`
/// (the [`super::Timer::DampingReset`] timer) the idle hold time returns to its initial
/// value. A ManualStop also resets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Damping {
    pub max_idle_hold: Duration,
    pub reset_after: Duration,
}

/// Configuration of one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FsmConfig {
    /// Our AS (4-octet).
    pub local_as: u32,
    /// Our BGP Identifier.
    pub local_id: Ipv4Addr,
    /// The AS the peer must announce.
    pub peer_as: PeerAs,
    /// Hold time we offer, in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Keepalive interval we want, in seconds; the negotiated value is
    /// min(keepalive, negotiated hold time / 3). At least 1 unless `hold_time` is 0.
    pub keepalive: u16,
    /// ConnectRetryTime.
    pub connect_retry: Duration,
    /// PassiveTcpEstablishment: never initiate a connection, wait for the peer. The
    /// ConnectRetryTimer is not used for passive runs.
    pub passive: bool,
    /// DelayOpen with this DelayOpenTime; `None` sends our OPEN as soon as TCP is up.
    pub delay_open: Option<Duration>,
    /// IdleHoldTime: time spent in Idle before an automatic restart (the initial value
    /// when damping is on).
    pub idle_hold: Duration,
    /// DampPeerOscillations; `None` keeps the idle hold time constant.
    pub damping: Option<Damping>,
    /// AllowAutomaticStart: after going to Idle for any reason but ManualStop, start the
    /// IdleHoldTimer and restart automatically when it expires.
    pub automatic_restart: bool,
    /// SendNOTIFICATIONwithoutOPEN: in Connect and Active, send a NOTIFICATION for header
    /// and OPEN errors (and a Cease on ManualStop while the DelayOpenTimer runs) although
    /// our OPEN has not been sent.
    pub send_notification_without_open: bool,
}

impl FsmConfig {
    /// A configuration with the usual defaults: hold time 90 s, keepalive 30 s, connect
    /// retry 120 s (RFC 4271 §10), active, no DelayOpen, idle hold 1 s damped up to 60 s
    /// and forgotten after 60 s Established, automatic restart on,
    /// SendNOTIFICATIONwithoutOPEN off.
    pub fn new(local_as: u32, local_id: Ipv4Addr, peer_as: PeerAs) -> Self {
        FsmConfig {
            local_as,
            local_id,
            peer_as,
            hold_time: 90,
            keepalive: 30,
            connect_retry: Duration::from_secs(120),
            passive: false,
            delay_open: None,
            idle_hold: Duration::from_secs(1),
            damping: Some(Damping {
                max_idle_hold: Duration::from_secs(60),
                reset_after: Duration::from_secs(60),
            }),
            automatic_restart: true,
            send_notification_without_open: false,
        }
    }

    /// Checks the values the FSM relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 {
            return Err(ConfigError::ZeroLocalAs);
        }
        if self.local_id.is_unspecified() {
            return Err(ConfigError::ZeroLocalId);
        }
        match self.peer_as {
            PeerAs::Exact(0) => return Err(ConfigError::ZeroPeerAs),
            PeerAs::Range { min, max } if min == 0 || min > max => {
                return Err(ConfigError::BadPeerAsRange { min, max });
            }
            _ => {}
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if self.hold_time != 0 && self.keepalive == 0 {
            return Err(ConfigError::ZeroKeepalive {
                hold_time: self.hold_time,
            });
        }
        if self.connect_retry.is_zero() {
            return Err(ConfigError::ZeroTimer("connect retry"));
        }
        if self.delay_open.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroTimer("delay open"));
        }
        if self.idle_hold.is_zero() {
            return Err(ConfigError::ZeroTimer("idle hold"));
        }
        if let Some(d) = self.damping {
            if d.max_idle_hold < self.idle_hold {
                return Err(ConfigError::DampingMax {
                    max: d.max_idle_hold,
                    initial: self.idle_hold,
                });
            }
            if d.reset_after.is_zero() {
                return Err(ConfigError::ZeroTimer("damping reset"));
            }
        }
        Ok(())
    }
}

/// A configuration the FSM refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("local AS 0 is reserved (RFC 7607)")]
    ZeroLocalAs,
    #[error("local BGP identifier 0.0.0.0 is invalid (RFC 6286)")]
    ZeroLocalId,
    #[error("peer AS 0 is reserved (RFC 7607)")]
    ZeroPeerAs,
    #[error("peer AS range {min}..={max} is empty or contains AS 0")]
    BadPeerAsRange { min: u32, max: u32 },
    #[error("hold time {0} s is invalid: it must be 0 or at least 3 s (RFC 4271 §4.2)")]
    HoldTime(u16),
    #[error("keepalive 0 s is invalid with hold time {hold_time} s")]
    ZeroKeepalive { hold_time: u16 },
    #[error("{0} time must not be zero")]
    ZeroTimer(&'static str),
    #[error(
        "damping maximum idle hold time {max:?} is below the initial idle hold time {initial:?}"
    )]
    DampingMax { max: Duration, initial: Duration },
}
