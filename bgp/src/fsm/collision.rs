//! Connection collision detection (RFC 4271 §6.8, RFC 6286 §2.3), as a pure helper.
//!
//! # How the driver uses it
//!
//! Each TCP connection has its own [`Fsm`](super::Fsm), so a peer has at most two: one
//! for the connection we initiated ([`Direction::Outbound`]) and one for the connection
//! the peer initiated ([`Direction::Inbound`]).
//!
//! 1. The primary FSM is started normally. While it is in Connect or Active
//!    ([`State::accepts_connection`]) an accepted connection is handed to it with
//!    [`Input::TcpConnectionConfirmed`](super::Input::TcpConnectionConfirmed) and the
//!    driver abandons its own pending connection attempt.
//! 2. When a connection is accepted while the primary is in OpenSent, OpenConfirm or
//!    Established, the driver creates a second FSM for it (same configuration but
//!    `automatic_restart: false`), feeds it
//!    [`Input::ManualStartPassive`](super::Input::ManualStartPassive) then
//!    [`Input::TcpConnectionConfirmed`](super::Input::TcpConnectionConfirmed). A third
//!    connection from the same peer is refused.
//! 3. Whenever an FSM accepts the peer's OPEN (it moves to OpenConfirm, or its
//!    [`Fsm::negotiated`](super::Fsm::negotiated) becomes `Some`) while the other FSM
//!    exists, the driver calls [`resolve`] with the direction of the connection that
//!    just got the OPEN, the other FSM's state and both BGP Identifiers and AS numbers.
//!    On [`Verdict::Dump`] it feeds
//!    [`Input::OpenCollisionDump`](super::Input::OpenCollisionDump) to the FSM of that
//!    direction, which sends Cease / Connection Collision Resolution (subcode 7) and
//!    goes to Idle. If the dumped FSM was the primary, the other one becomes primary;
//!    the secondary is dropped once it is Idle.
//! 4. On [`Verdict::NotYet`] the driver calls [`resolve`] again when the other FSM
//!    accepts its OPEN.

use std::net::Ipv4Addr;

use thiserror::Error;

use super::event::State;

/// Which end opened a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We initiated it (Tcp_CR_Acked).
    Outbound,
    /// The peer initiated it (TcpConnectionConfirmed).
    Inbound,
}

impl Direction {
    /// The other direction.
    pub fn other(self) -> Direction {
        match self {
            Direction::Outbound => Direction::Inbound,
            Direction::Inbound => Direction::Outbound,
        }
    }
}

/// The two speakers' identities, as needed to break a collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Speakers {
    pub local_id: Ipv4Addr,
    pub local_as: u32,
    pub remote_id: Ipv4Addr,
    pub remote_as: u32,
}

/// When collisions are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Also resolve against a connection still in OpenSent (RFC 4271 §6.8 allows this
    /// when the peer's BGP Identifier is known by other means; here it is known from the
    /// OPEN on the other connection of the same peer). Default true.
    pub in_open_sent: bool,
    /// CollisionDetectEstablishedState (RFC 4271 §8.1.1 attribute 11): also resolve
    /// against an Established session. When false (default) the Established session
    /// always survives and the new connection is dumped.
    pub in_established: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            in_open_sent: true,
            in_established: false,
        }
    }
}

/// What to do about two connections to the same peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The other connection cannot collide (it is Idle, Connect or Active).
    NoCollision,
    /// The other connection is in OpenSent and [`Policy::in_open_sent`] is off: decide
    /// when it accepts the peer's OPEN.
    NotYet,
    /// Feed OpenCollisionDump to the FSM of the connection in this direction.
    Dump(Direction),
}

/// Collision resolution impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CollisionError {
    #[error(
        "cannot resolve a connection collision: both speakers use BGP identifier {id} in AS {asn}"
    )]
    Indistinguishable { id: Ipv4Addr, asn: u32 },
}

/// The direction of the connection that survives a collision.
///
/// The connection initiated by the speaker with the higher BGP Identifier (compared as
/// 4-octet unsigned integers) survives; with equal identifiers (possible for eBGP,
/// RFC 6286 §2.3) the one initiated by the speaker with the larger AS survives.
pub fn survivor(s: &Speakers) -> Result<Direction, CollisionError> {
    let local = u32::from(s.local_id);
    let remote = u32::from(s.remote_id);
    let local_wins = if local != remote {
        local > remote
    } else if s.local_as != s.remote_as {
        s.local_as > s.remote_as
    } else {
        return Err(CollisionError::Indistinguishable {
            id: s.local_id,
            asn: s.local_as,
        });
    };
    Ok(if local_wins {
        Direction::Outbound
    } else {
        Direction::Inbound
    })
}

/// Decides a collision when the connection in direction `opened` has just accepted the
/// peer's OPEN and the peer's other connection is in `other_state`.
pub fn resolve(
    opened: Direction,
    other_state: State,
    policy: Policy,
    speakers: &Speakers,
) -> Result<Verdict, CollisionError> {
    match other_state {
        State::Idle | State::Connect | State::Active => Ok(Verdict::NoCollision),
        State::OpenSent if !policy.in_open_sent => Ok(Verdict::NotYet),
        State::Established if !policy.in_established => Ok(Verdict::Dump(opened)),
        State::OpenSent | State::OpenConfirm | State::Established => {
            Ok(Verdict::Dump(survivor(speakers)?.other()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speakers(local: [u8; 4], remote: [u8; 4]) -> Speakers {
        Speakers {
            local_id: Ipv4Addr::from(local),
            local_as: 65001,
            remote_id: Ipv4Addr::from(remote),
            remote_as: 65002,
        }
    }

    #[test]
    fn higher_local_identifier_keeps_our_connection() {
        let s = speakers([10, 0, 0, 9], [10, 0, 0, 2]);
        assert_eq!(survivor(&s), Ok(Direction::Outbound));
        let v = resolve(
            Direction::Inbound,
            State::OpenConfirm,
            Policy::default(),
            &s,
        );
        assert_eq!(v, Ok(Verdict::Dump(Direction::Inbound)));
    }

    #[test]
    fn lower_local_identifier_keeps_the_peers_connection() {
        // 9.0.0.0 < 10.0.0.0 as unsigned integers although "9" > "1" as text.
        let s = speakers([9, 0, 0, 0], [10, 0, 0, 0]);
        assert_eq!(survivor(&s), Ok(Direction::Inbound));
        let v = resolve(Direction::Inbound, State::OpenSent, Policy::default(), &s);
        assert_eq!(v, Ok(Verdict::Dump(Direction::Outbound)));
    }

    #[test]
    fn equal_identifiers_fall_back_to_the_larger_as() {
        let mut s = speakers([10, 0, 0, 1], [10, 0, 0, 1]);
        assert_eq!(survivor(&s), Ok(Direction::Inbound));
        s.local_as = 65100;
        assert_eq!(survivor(&s), Ok(Direction::Outbound));
        s.remote_as = 65100;
        assert!(survivor(&s).is_err());
    }

    #[test]
    fn established_session_survives_unless_configured() {
        let s = speakers([10, 0, 0, 9], [10, 0, 0, 2]);
        let v = resolve(
            Direction::Outbound,
            State::Established,
            Policy::default(),
            &s,
        );
        assert_eq!(v, Ok(Verdict::Dump(Direction::Outbound)));
        let p = Policy {
            in_open_sent: true,
            in_established: true,
        };
        let v = resolve(Direction::Outbound, State::Established, p, &s);
        assert_eq!(v, Ok(Verdict::Dump(Direction::Inbound)));
    }

    #[test]
    fn no_collision_before_open_sent() {
        let s = speakers([10, 0, 0, 9], [10, 0, 0, 2]);
        for st in [State::Idle, State::Connect, State::Active] {
            let v = resolve(Direction::Inbound, st, Policy::default(), &s);
            assert_eq!(v, Ok(Verdict::NoCollision));
        }
        let p = Policy {
            in_open_sent: false,
            in_established: false,
        };
        assert_eq!(
            resolve(Direction::Inbound, State::OpenSent, p, &s),
            Ok(Verdict::NotYet)
        );
    }
}
