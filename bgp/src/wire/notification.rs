//! NOTIFICATION messages (RFC 4271 §4.5, §6) with every error code and subcode
//! registered at IANA that a unicast speaker can meet: FSM errors (RFC 6608), Cease
//! subcodes (RFC 4486, RFC 8538 Hard Reset, RFC 9384 BFD Down) with the shutdown
//! communication (RFC 9003), ROUTE-REFRESH errors (RFC 7313), Send Hold Timer
//! Expired (RFC 9687) and OPEN Role Mismatch (RFC 9234).
//!
//! Codes and subcodes are typed enums; values we do not know are kept in an
//! `Unknown` variant so that every NOTIFICATION decodes and re-encodes unchanged.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use crate::types::Family;

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

/// A NOTIFICATION message: an error code, its subcode and the data field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: ErrorCode,
    pub data: Vec<u8>,
}

/// The longest shutdown communication RFC 9003 allows, in octets.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

impl Notification {
    pub fn new(code: ErrorCode, data: Vec<u8>) -> Self {
        Notification { code, data }
    }

    /// A Cease NOTIFICATION without data.
    pub fn cease(sub: CeaseError) -> Self {
        Notification::new(ErrorCode::Cease(sub), Vec::new())
    }

    /// Cease/Administrative Shutdown (or Reset when `reset`) with a shutdown
    /// communication (RFC 9003). The message is cut at a character boundary to
    /// fit 255 octets.
    pub fn admin_shutdown(message: &str, reset: bool) -> Self {
        let sub = if reset {
            CeaseError::AdministrativeReset
        } else {
            CeaseError::AdministrativeShutdown
        };
        let mut end = message.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        if end > 0 {
            data.push(end as u8);
            data.extend_from_slice(&message.as_bytes()[..end]);
        }
        Notification::new(ErrorCode::Cease(sub), data)
    }

    /// Cease/Maximum Number of Prefixes Reached with the RFC 4486 data (AFI, SAFI,
    /// upper bound).
    pub fn max_prefixes(family: Family, limit: u32) -> Self {
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&family.afi.code().to_be_bytes());
        data.push(family.safi.code());
        data.extend_from_slice(&limit.to_be_bytes());
        Notification::new(ErrorCode::Cease(CeaseError::MaxPrefixesReached), data)
    }

    /// Cease/Hard Reset (RFC 8538) wrapping the NOTIFICATION that caused it.
    pub fn hard_reset(inner: &Notification) -> Self {
        let (code, sub) = inner.code.codes();
        let mut data = Vec::with_capacity(2 + inner.data.len());
        data.push(code);
        data.push(sub);
        data.extend_from_slice(&inner.data);
        Notification::new(ErrorCode::Cease(CeaseError::HardReset), data)
    }

    /// OPEN Message Error/Unsupported Capability (RFC 5492) listing the capabilities
    /// (already encoded as code, length, value) the speaker requires.
    pub fn unsupported_capability(encoded_caps: Vec<u8>) -> Self {
        Notification::new(
            ErrorCode::Open(OpenError::UnsupportedCapability),
            encoded_caps,
        )
    }

    /// The shutdown communication of a Cease/Administrative Shutdown or Reset, if
    /// the data carries a well-formed one (length octet then UTF-8).
    pub fn shutdown_communication(&self) -> Option<&str> {
        match self.code {
            ErrorCode::Cease(
                CeaseError::AdministrativeShutdown | CeaseError::AdministrativeReset,
            ) => {}
            _ => return None,
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        std::str::from_utf8(text).ok()
    }

    /// The NOTIFICATION wrapped in a Cease/Hard Reset (RFC 8538).
    pub fn hard_reset_inner(&self) -> Option<Notification> {
        if self.code != ErrorCode::Cease(CeaseError::HardReset) {
            return None;
        }
        let [code, sub, rest @ ..] = self.data.as_slice() else {
            return None;
        };
        Some(Notification::new(
            ErrorCode::from_codes(*code, *sub),
            rest.to_vec(),
        ))
    }

    /// The (family, limit) of a Cease/Maximum Number of Prefixes Reached.
    pub fn max_prefixes_data(&self) -> Option<(Family, u32)> {
        if self.code != ErrorCode::Cease(CeaseError::MaxPrefixesReached) {
            return None;
        }
        let mut r = Reader::new(&self.data);
        let afi = r.u16()?;
        let safi = r.u8()?;
        let limit = r.u32()?;
        Some((
            Family::new(
                crate::types::Afi::from_code(afi),
                crate::types::Safi::from_code(safi),
            ),
            limit,
        ))
    }

    /// Decode the body of a NOTIFICATION (after the 19-octet header).
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let [code, sub, data @ ..] = body else {
            return Err(DecodeError::BadLength {
                len: (body.len() + super::HEADER_LEN) as u16,
            });
        };
        Ok(Notification::new(
            ErrorCode::from_codes(*code, *sub),
            data.to_vec(),
        ))
    }

    /// Encode the body of a NOTIFICATION (after the header).
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let (code, sub) = self.code.codes();
        out.put_u8(code);
        out.put_u8(sub);
        out.put_slice(&self.data);
        Ok(())
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(text) = self.shutdown_communication() {
            return write!(f, ": {text:?}");
        }
        if let Some(inner) = self.hard_reset_inner() {
            return write!(f, " ({inner})");
        }
        if let Some((family, limit)) = self.max_prefixes_data() {
            return write!(f, " ({family}, limit {limit})");
        }
        if !self.data.is_empty() {
            f.write_str(" data ")?;
            for b in self.data.iter().take(64) {
                write!(f, "{b:02x}")?;
            }
            if self.data.len() > 64 {
                write!(f, "... ({} octets)", self.data.len())?;
            }
        }
        Ok(())
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

    #[test]
    fn shutdown_communication_is_cut_at_char_boundary() {
        let long = "é".repeat(200); // 400 octets
        let n = Notification::admin_shutdown(&long, false);
        assert_eq!(n.data[0] as usize, n.data.len() - 1);
        assert!(n.data.len() - 1 <= 255);
        assert_eq!(n.shutdown_communication().unwrap(), "é".repeat(127));
        let n = Notification::admin_shutdown("maintenance", true);
        assert_eq!(n.to_string(), "Cease/Administrative Reset: \"maintenance\"");
    }

    #[test]
    fn hard_reset_wraps_and_unwraps() {
        let inner = Notification::new(ErrorCode::HoldTimerExpired(0), vec![]);
        let hr = Notification::hard_reset(&inner);
        assert_eq!(hr.data, vec![4, 0]);
        assert_eq!(hr.hard_reset_inner(), Some(inner));
        assert_eq!(hr.to_string(), "Cease/Hard Reset (Hold Timer Expired)");
    }

    #[test]
    fn display_names_unknown_values() {
        let n = Notification::new(ErrorCode::from_codes(6, 42), vec![1, 2]);
        assert_eq!(n.to_string(), "Cease/Unknown subcode 42 data 0102");
        let n = Notification::new(ErrorCode::from_codes(99, 1), vec![]);
        assert_eq!(n.to_string(), "Unknown error code 99/subcode 1");
    }
}
