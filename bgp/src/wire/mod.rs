//! The BGP wire codec: framing, the five message types, capabilities, path
//! attributes, RFC 7606 error handling and outbound UPDATE packing.
//!
//! Pure functions over byte slices and [`bytes::BytesMut`]; no I/O. A driver cuts
//! frames with [`frame_len`], decodes them with [`Message::decode`] under the
//! [`SessionCtx`] the OPEN exchange produced ([`SessionCtx::negotiate`]), and
//! encodes with [`Message::encode`] or, for bulk announcements, [`pack_updates`].
//!
//! Not supported: ORF entries in ROUTE-REFRESH (ignored), families other than
//! IPv4/IPv6 unicast and multicast (MP attributes for them are discarded), AFI/SAFI
//! disable (the RFC 7606 alternative to a session reset; we always reset), and the
//! iBGP/eBGP-dependent checks of RFC 7606 (LOCAL_PREF from eBGP, confederation
//! segments from eBGP, first AS check), which need the peer type and belong to the
//! session layer.

pub mod attrs;
pub mod ctx;
pub mod error;
pub mod frame;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod pack;
mod reader;
pub mod update;

pub use ctx::SessionCtx;
pub use error::{AttrAction, AttrError, AttrIssue, DecodeError, EncodeError, NlriError};
pub use frame::frame_len;
pub use message::{Message, RefreshSubtype, RouteRefresh};
pub use nlri::NlriIter;
pub use notification::{
    CeaseError, ErrorCode, FsmError, HeaderError, Notification, OpenError, RouteRefreshError,
    UpdateError,
};
pub use open::{AddPathMode, Capability, ExtNextHop, GracefulRestart, Open};
pub use pack::pack_updates;
pub use update::{Update, UpdateOutcome};

/// Length of the message header.
pub const HEADER_LEN: usize = 19;
/// The all-ones marker.
pub const MARKER: [u8; 16] = [0xFF; 16];
/// Maximum message length without extended messages (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message length with extended messages (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// The 2-octet stand-in for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;
