//! Decode and encode errors.
//!
//! A [`DecodeError`] is always fatal to the session: the NOTIFICATION to send
//! follows from its variant ([`DecodeError::notification`]) with the data field
//! RFC 4271 §6 prescribes. UPDATE problems that RFC 7606 lets the session survive
//! are not errors: they come back inside the decoded UPDATE as an
//! [`UpdateOutcome`](super::update::UpdateOutcome) made of [`AttrIssue`]s.

use std::fmt;

use super::notification::{
    ErrorCode, HeaderError, Notification, OpenError, RouteRefreshError, UpdateError,
};
use crate::types::Family;

/// A message that cannot be accepted; the session must be closed with
/// [`DecodeError::notification`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message header marker is not all ones")]
    BadMarker,
    #[error("bad message length {len}")]
    BadLength { len: u16 },
    #[error("bad message type {kind}")]
    BadType { kind: u8 },

    #[error("unsupported BGP version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("unacceptable hold time {hold_time}s (must be 0 or at least 3)")]
    UnacceptableHoldTime { hold_time: u16 },
    #[error("bad BGP identifier {id}")]
    BadBgpId { id: std::net::Ipv4Addr },
    #[error("unsupported optional parameter type {kind}")]
    UnsupportedOptionalParameter { kind: u8 },
    #[error("malformed OPEN: {reason}")]
    MalformedOpen { reason: &'static str },
    #[error("malformed capability {code}: {reason}")]
    MalformedCapability { code: u8, reason: &'static str },

    #[error("malformed UPDATE attribute list: {reason}")]
    MalformedAttributeList { reason: &'static str },
    #[error("unrecognized well-known attribute {type_code}")]
    UnrecognizedWellKnown { type_code: u8, attr: Vec<u8> },
    #[error("attribute {type_code} has flags {flags:#04x} that contradict its type")]
    AttributeFlags {
        type_code: u8,
        flags: u8,
        attr: Vec<u8>,
    },
    #[error("malformed {name} attribute: {reason}")]
    MalformedMpAttribute {
        name: &'static str,
        reason: &'static str,
        family: Option<Family>,
        attr: Vec<u8>,
    },
    #[error("invalid network field in {section}: {reason}")]
    InvalidNetwork {
        section: &'static str,
        reason: NlriError,
    },

    #[error("ROUTE-REFRESH with invalid length {len}")]
    RouteRefreshLength { len: u16, message: Vec<u8> },
}

impl DecodeError {
    /// The NOTIFICATION to send for this error, with the data field RFC 4271 §6
    /// (and RFC 7313 §5 for ROUTE-REFRESH) prescribes.
    pub fn notification(&self) -> Notification {
        use DecodeError::*;
        let (code, data) = match self {
            BadMarker => (
                ErrorCode::MessageHeader(HeaderError::ConnectionNotSynchronized),
                vec![],
            ),
            BadLength { len } => (
                ErrorCode::MessageHeader(HeaderError::BadMessageLength),
                len.to_be_bytes().to_vec(),
            ),
            BadType { kind } => (
                ErrorCode::MessageHeader(HeaderError::BadMessageType),
                vec![*kind],
            ),
            UnsupportedVersion { .. } => (
                ErrorCode::Open(OpenError::UnsupportedVersion),
                4u16.to_be_bytes().to_vec(),
            ),
            UnacceptableHoldTime { .. } => {
                (ErrorCode::Open(OpenError::UnacceptableHoldTime), vec![])
            }
            BadBgpId { .. } => (ErrorCode::Open(OpenError::BadBgpIdentifier), vec![]),
            UnsupportedOptionalParameter { .. } => (
                ErrorCode::Open(OpenError::UnsupportedOptionalParameter),
                vec![],
            ),
            MalformedOpen { .. } | MalformedCapability { .. } => {
                (ErrorCode::Open(OpenError::Unspecific), vec![])
            }
            MalformedAttributeList { .. } => (
                ErrorCode::Update(UpdateError::MalformedAttributeList),
                vec![],
            ),
            UnrecognizedWellKnown { attr, .. } => (
                ErrorCode::Update(UpdateError::UnrecognizedWellKnownAttribute),
                attr.clone(),
            ),
            AttributeFlags { attr, .. } => (
                ErrorCode::Update(UpdateError::AttributeFlagsError),
                attr.clone(),
            ),
            MalformedMpAttribute { attr, .. } => (
                ErrorCode::Update(UpdateError::OptionalAttributeError),
                attr.clone(),
            ),
            InvalidNetwork { .. } => (ErrorCode::Update(UpdateError::InvalidNetworkField), vec![]),
            RouteRefreshLength { message, .. } => (
                ErrorCode::RouteRefresh(RouteRefreshError::InvalidMessageLength),
                message.clone(),
            ),
        };
        Notification::new(code, data)
    }
}

/// Why a run of NLRI could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    #[error("prefix length {len} exceeds {max}")]
    PrefixTooLong { len: u8, max: u8 },
    #[error("truncated prefix")]
    Truncated,
    #[error("truncated ADD-PATH path identifier")]
    TruncatedPathId,
    #[error("address family {0} is not supported")]
    UnsupportedFamily(Family),
}

/// What was wrong with one path attribute, when RFC 7606 lets the session live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("flags {flags:#04x} contradict the attribute type")]
    Flags { flags: u8 },
    #[error("length {len} is invalid for this attribute")]
    Length { len: usize },
    #[error("undefined ORIGIN value {0}")]
    InvalidOrigin(u8),
    #[error("malformed AS path: {0}")]
    MalformedAsPath(&'static str),
    #[error("attribute appears more than once; later copies discarded")]
    Duplicate,
    #[error("well-known mandatory attribute is missing")]
    Missing,
    #[error("the attribute list is malformed: {0}")]
    Framing(&'static str),
    #[error("received from a 4-octet-AS speaker, which must not send it")]
    UnexpectedAs4,
    #[error("invalid NEXT_HOP {0}")]
    InvalidNextHop(std::net::Ipv4Addr),
    #[error("address family {0} is not supported; its routes are ignored")]
    UnsupportedFamily(Family),
}

/// The handling RFC 7606 assigns to one attribute error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrAction {
    /// The routes of the UPDATE are withdrawn; the session stays up.
    TreatAsWithdraw,
    /// Only this attribute is dropped.
    Discard,
}

/// One attribute problem found while decoding an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrIssue {
    pub type_code: u8,
    pub error: AttrError,
    pub action: AttrAction,
}

impl AttrIssue {
    /// The UPDATE error subcode RFC 4271 would have used, for logs and counters.
    pub fn subcode(&self) -> UpdateError {
        match (&self.error, self.type_code) {
            (AttrError::Flags { .. }, _) => UpdateError::AttributeFlagsError,
            (AttrError::Length { .. }, _) => UpdateError::AttributeLengthError,
            (AttrError::InvalidOrigin(_), _) => UpdateError::InvalidOriginAttribute,
            (AttrError::MalformedAsPath(_), _) => UpdateError::MalformedAsPath,
            (AttrError::Missing, _) => UpdateError::MissingWellKnownAttribute,
            (AttrError::InvalidNextHop(_), _) => UpdateError::InvalidNextHopAttribute,
            (AttrError::Duplicate | AttrError::Framing(_), _) => {
                UpdateError::MalformedAttributeList
            }
            (AttrError::UnexpectedAs4 | AttrError::UnsupportedFamily(_), _) => {
                UpdateError::OptionalAttributeError
            }
        }
    }
}

impl fmt::Display for AttrIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            AttrAction::TreatAsWithdraw => "treat-as-withdraw",
            AttrAction::Discard => "attribute discarded",
        };
        write!(f, "attribute {}: {} ({action})", self.type_code, self.error)
    }
}

/// A value that cannot be put on the wire as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the maximum of {max}")]
    TooLong { len: usize, max: usize },
    #[error("{what} of {len} octets exceeds its length field")]
    FieldTooLong { what: &'static str, len: usize },
    #[error("UPDATE announces routes but has no path attributes")]
    MissingAttributes,
    #[error("no next hop for the routes of {0}")]
    MissingNextHop(Family),
    #[error("next hop {next_hop} cannot be used for {family}")]
    NextHopFamily {
        family: Family,
        next_hop: crate::types::NextHop,
    },
    #[error("an UPDATE can carry one MP_REACH_NLRI; got {0} and {1}")]
    TwoMpReach(Family, Family),
    #[error("an UPDATE can carry one MP_UNREACH_NLRI; got {0} and {1}")]
    TwoMpUnreach(Family, Family),
    #[error("prefix {prefix} does not belong to {family}")]
    PrefixFamily {
        prefix: ipnet::IpNet,
        family: Family,
    },
    #[error("family {0} is not supported by the codec")]
    UnsupportedFamily(Family),
    #[error(
        "path attributes take {len} octets, leaving no room for a prefix in a {max}-octet message"
    )]
    AttributesTooLarge { len: usize, max: usize },
}
