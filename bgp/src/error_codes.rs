//! NOTIFICATION error codes and subcodes (RFC 4271 §4.5, §6): every code and subcode
//! registered at IANA that a unicast speaker can meet: FSM errors (RFC 6608), Cease
//! subcodes (RFC 4486, RFC 8538 Hard Reset, RFC 9384 BFD Down), ROUTE-REFRESH errors
//! (RFC 7313), Send Hold Timer Expired (RFC 9687) and OPEN Role Mismatch (RFC 9234).
//!
//! The one set of these numbers in the crate: the FSM builds and recognises its
//! NOTIFICATIONs with it, the codec ([`crate::wire::notification`]) decodes and encodes
//! them. Codes and subcodes are typed enums; values we do not know are kept in an
//! `Unknown` variant so that every NOTIFICATION decodes and re-encodes unchanged.

use std::fmt;

macro_rules! subcodes {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A subcode this implementation does not know.
            Unknown(u8),
        }

        impl $name {
            pub fn from_code(code: u8) -> Self {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }

            pub fn code(self) -> u8 {
                match self {
                    $( $name::$variant => $code, )*
                    $name::Unknown(c) => c,
                }
            }

            /// The IANA name of the subcode.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown(_) => "Unknown subcode",
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Unknown(c) => write!(f, "Unknown subcode {c}"),
                    other => f.write_str(other.name()),
                }
            }
        }
    };
}

subcodes! {
    /// Message Header Error subcodes (code 1).
    HeaderError {
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        BadMessageLength = 2 => "Bad Message Length",
        BadMessageType = 3 => "Bad Message Type",
    }
}

subcodes! {
    /// OPEN Message Error subcodes (code 2).
    OpenError {
        Unspecific = 0 => "Unspecific",
        UnsupportedVersion = 1 => "Unsupported Version Number",
        BadPeerAs = 2 => "Bad Peer AS",
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        /// Deprecated (was Authentication Failure).
        Deprecated5 = 5 => "Deprecated (5)",
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        /// RFC 5492.
        UnsupportedCapability = 7 => "Unsupported Capability",
        Deprecated8 = 8 => "Deprecated (8)",
        Deprecated9 = 9 => "Deprecated (9)",
        Deprecated10 = 10 => "Deprecated (10)",
        /// RFC 9234.
        RoleMismatch = 11 => "Role Mismatch",
    }
}

subcodes! {
    /// UPDATE Message Error subcodes (code 3).
    UpdateError {
        Unspecific = 0 => "Unspecific",
        MalformedAttributeList = 1 => "Malformed Attribute List",
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        AttributeFlagsError = 4 => "Attribute Flags Error",
        AttributeLengthError = 5 => "Attribute Length Error",
        InvalidOriginAttribute = 6 => "Invalid ORIGIN Attribute",
        /// Deprecated (was AS Routing Loop).
        Deprecated7 = 7 => "Deprecated (7)",
        InvalidNextHopAttribute = 8 => "Invalid NEXT_HOP Attribute",
        OptionalAttributeError = 9 => "Optional Attribute Error",
        InvalidNetworkField = 10 => "Invalid Network Field",
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
}

subcodes! {
    /// Finite State Machine Error subcodes (code 5, RFC 6608).
    FsmError {
        Unspecified = 0 => "Unspecified Error",
        UnexpectedInOpenSent = 1 => "Receive Unexpected Message in OpenSent State",
        UnexpectedInOpenConfirm = 2 => "Receive Unexpected Message in OpenConfirm State",
        UnexpectedInEstablished = 3 => "Receive Unexpected Message in Established State",
    }
}

subcodes! {
    /// Cease subcodes (code 6, RFC 4486 and later).
    CeaseError {
        Unspecific = 0 => "Unspecific",
        MaxPrefixesReached = 1 => "Maximum Number of Prefixes Reached",
        /// Data may carry a shutdown communication (RFC 9003).
        AdministrativeShutdown = 2 => "Administrative Shutdown",
        PeerDeconfigured = 3 => "Peer De-configured",
        /// Data may carry a shutdown communication (RFC 9003).
        AdministrativeReset = 4 => "Administrative Reset",
        ConnectionRejected = 5 => "Connection Rejected",
        OtherConfigurationChange = 6 => "Other Configuration Change",
        ConnectionCollisionResolution = 7 => "Connection Collision Resolution",
        OutOfResources = 8 => "Out of Resources",
        /// RFC 8538: data is the encapsulated NOTIFICATION (code, subcode, data).
        HardReset = 9 => "Hard Reset",
        /// RFC 9384.
        BfdDown = 10 => "BFD Down",
    }
}

subcodes! {
    /// ROUTE-REFRESH Message Error subcodes (code 7, RFC 7313).
    RouteRefreshError {
        Reserved = 0 => "Reserved",
        InvalidMessageLength = 1 => "Invalid Message Length",
    }
}

/// A NOTIFICATION error code with its typed subcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MessageHeader(HeaderError),
    Open(OpenError),
    Update(UpdateError),
    /// Code 4; the subcode is always 0 in practice but is kept as received.
    HoldTimerExpired(u8),
    Fsm(FsmError),
    Cease(CeaseError),
    RouteRefresh(RouteRefreshError),
    /// Code 8, RFC 9687.
    SendHoldTimerExpired(u8),
    /// A code this implementation does not know.
    Unknown {
        code: u8,
        subcode: u8,
    },
}

impl ErrorCode {
    pub fn from_codes(code: u8, subcode: u8) -> Self {
        match code {
            1 => ErrorCode::MessageHeader(HeaderError::from_code(subcode)),
            2 => ErrorCode::Open(OpenError::from_code(subcode)),
            3 => ErrorCode::Update(UpdateError::from_code(subcode)),
            4 => ErrorCode::HoldTimerExpired(subcode),
            5 => ErrorCode::Fsm(FsmError::from_code(subcode)),
            6 => ErrorCode::Cease(CeaseError::from_code(subcode)),
            7 => ErrorCode::RouteRefresh(RouteRefreshError::from_code(subcode)),
            8 => ErrorCode::SendHoldTimerExpired(subcode),
            code => ErrorCode::Unknown { code, subcode },
        }
    }

    /// The (code, subcode) octets.
    pub fn codes(self) -> (u8, u8) {
        match self {
            ErrorCode::MessageHeader(s) => (1, s.code()),
            ErrorCode::Open(s) => (2, s.code()),
            ErrorCode::Update(s) => (3, s.code()),
            ErrorCode::HoldTimerExpired(s) => (4, s),
            ErrorCode::Fsm(s) => (5, s.code()),
            ErrorCode::Cease(s) => (6, s.code()),
            ErrorCode::RouteRefresh(s) => (7, s.code()),
            ErrorCode::SendHoldTimerExpired(s) => (8, s),
            ErrorCode::Unknown { code, subcode } => (code, subcode),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::MessageHeader(s) => write!(f, "Message Header Error/{s}"),
            ErrorCode::Open(s) => write!(f, "OPEN Message Error/{s}"),
            ErrorCode::Update(s) => write!(f, "UPDATE Message Error/{s}"),
            ErrorCode::HoldTimerExpired(0) => f.write_str("Hold Timer Expired"),
            ErrorCode::HoldTimerExpired(s) => write!(f, "Hold Timer Expired/subcode {s}"),
            ErrorCode::Fsm(s) => write!(f, "Finite State Machine Error/{s}"),
            ErrorCode::Cease(s) => write!(f, "Cease/{s}"),
            ErrorCode::RouteRefresh(s) => write!(f, "ROUTE-REFRESH Message Error/{s}"),
            ErrorCode::SendHoldTimerExpired(0) => f.write_str("Send Hold Timer Expired"),
            ErrorCode::SendHoldTimerExpired(s) => write!(f, "Send Hold Timer Expired/subcode {s}"),
            ErrorCode::Unknown { code, subcode } => {
                write!(f, "Unknown error code {code}/subcode {subcode}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_for_every_octet_pair() {
        for code in 0..=255u8 {
            for sub in 0..=255u8 {
                assert_eq!(ErrorCode::from_codes(code, sub).codes(), (code, sub));
            }
        }
    }
}
