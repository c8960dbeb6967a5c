//! NOTIFICATION error codes and subcodes the FSM emits or recognises.
//!
//! Values from RFC 4271 §4.5 and §6, RFC 4486 (Cease subcodes), RFC 6608 (FSM error
//! subcodes). The wire codec has its own view of these numbers; the FSM keeps this small
//! copy so that it does not depend on the codec.

/// Message Header Error (RFC 4271 §6.1).
pub const MESSAGE_HEADER_ERROR: u8 = 1;
/// OPEN Message Error (RFC 4271 §6.2).
pub const OPEN_MESSAGE_ERROR: u8 = 2;
/// UPDATE Message Error (RFC 4271 §6.3).
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
/// Hold Timer Expired (RFC 4271 §6.5).
pub const HOLD_TIMER_EXPIRED: u8 = 4;
/// Finite State Machine Error (RFC 4271 §6.6).
pub const FSM_ERROR: u8 = 5;
/// Cease (RFC 4271 §6.7).
pub const CEASE: u8 = 6;

/// OPEN Message Error subcodes (RFC 4271 §4.5).
pub mod open {
    /// Unsupported Version Number; the data carries the highest supported version.
    pub const UNSUPPORTED_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
}

/// Finite State Machine Error subcodes (RFC 6608).
pub mod fsm {
    /// Unspecified error.
    pub const UNSPECIFIED: u8 = 0;
    /// Receive Unexpected Message in OpenSent State.
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486).
pub mod cease {
    /// Maximum Number of Prefixes Reached.
    pub const MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown.
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Administrative Reset.
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    /// Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Other Configuration Change.
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    /// Connection Collision Resolution.
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    /// Out of Resources.
    pub const OUT_OF_RESOURCES: u8 = 8;
}

/// The only BGP version this speaker supports.
pub const BGP_VERSION: u8 = 4;
