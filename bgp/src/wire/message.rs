//! The BGP message enum, ROUTE-REFRESH (RFC 2918, RFC 7313) and whole-message
//! decode/encode.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::ctx::SessionCtx;
use super::error::{DecodeError, EncodeError};
use super::frame::{begin_message, finish_header};
use super::notification::Notification;
use super::open::Open;
use super::update::Update;
use super::{HEADER_LEN, MARKER, MAX_MESSAGE_LEN};
use crate::types::{Afi, Family, Safi};

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod kind {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// ROUTE-REFRESH message subtype (RFC 7313 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    /// A normal route refresh request (RFC 2918).
    Request,
    /// Beginning of Route Refresh.
    BoRR,
    /// End of Route Refresh.
    EoRR,
    /// Any other value: RFC 7313 says the message must be ignored.
    Unknown(u8),
}

impl RefreshSubtype {
    pub fn code(self) -> u8 {
        match self {
            RefreshSubtype::Request => 0,
            RefreshSubtype::BoRR => 1,
            RefreshSubtype::EoRR => 2,
            RefreshSubtype::Unknown(c) => c,
        }
    }
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => RefreshSubtype::Request,
            1 => RefreshSubtype::BoRR,
            2 => RefreshSubtype::EoRR,
            c => RefreshSubtype::Unknown(c),
        }
    }
}

/// A ROUTE-REFRESH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        RouteRefresh {
            family,
            subtype: RefreshSubtype::Request,
        }
    }
}

/// One BGP message.
// UPDATE dominates the traffic; boxing it would add an allocation per message
// for no gain, so the size difference between variants is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The type code.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Open(_) => kind::OPEN,
            Message::Update(_) => kind::UPDATE,
            Message::Notification(_) => kind::NOTIFICATION,
            Message::Keepalive => kind::KEEPALIVE,
            Message::RouteRefresh(_) => kind::ROUTE_REFRESH,
        }
    }

    /// Decode one whole message (header included), as cut by
    /// [`frame_len`](super::frame_len).
    ///
    /// An error means the session must be closed with
    /// [`DecodeError::notification`]. UPDATE problems that RFC 7606 lets the
    /// session survive come back in [`Update::outcome`] instead.
    pub fn decode(frame: &[u8], ctx: &SessionCtx) -> Result<Self, DecodeError> {
        let Some((header, body)) = frame.split_at_checked(HEADER_LEN) else {
            return Err(DecodeError::BadLength {
                len: frame.len().min(usize::from(u16::MAX)) as u16,
            });
        };
        if header[..16] != MARKER {
            return Err(DecodeError::BadMarker);
        }
        let len = u16::from_be_bytes([header[16], header[17]]);
        if usize::from(len) != frame.len() || usize::from(len) > ctx.max_len.max(MAX_MESSAGE_LEN) {
            return Err(DecodeError::BadLength { len });
        }
        let kind = header[18];
        let bad_len = DecodeError::BadLength { len };
        match kind {
            kind::OPEN => {
                // RFC 8654: OPEN never exceeds 4096; minimum 29 octets.
                if usize::from(len) < 29 || usize::from(len) > MAX_MESSAGE_LEN {
                    return Err(bad_len);
                }
                Ok(Message::Open(Open::decode_body(body)?))
            }
            kind::UPDATE => {
                if usize::from(len) < 23 {
                    return Err(bad_len);
                }
                Ok(Message::Update(Update::decode_body(body, ctx)?))
            }
            kind::NOTIFICATION => {
                if usize::from(len) < 21 {
                    return Err(bad_len);
                }
                Ok(Message::Notification(Notification::decode_body(body)?))
            }
            kind::KEEPALIVE => {
                if !body.is_empty() {
                    return Err(bad_len);
                }
                Ok(Message::Keepalive)
            }
            kind::ROUTE_REFRESH => {
                if body.len() < 4 {
                    return Err(bad_len);
                }
                let afi = u16::from_be_bytes([body[0], body[1]]);
                let subtype = RefreshSubtype::from_code(body[2]);
                let safi = body[3];
                // RFC 7313 §5: BoRR/EoRR must be exactly 4 octets long. Longer
                // plain requests may carry ORF entries (RFC 5291), which we do not
                // support and ignore.
                if body.len() != 4 && matches!(subtype, RefreshSubtype::BoRR | RefreshSubtype::EoRR)
                {
                    return Err(DecodeError::RouteRefreshLength {
                        len,
                        message: frame.to_vec(),
                    });
                }
                Ok(Message::RouteRefresh(RouteRefresh {
                    family: Family::new(Afi::from_code(afi), Safi::from_code(safi)),
                    subtype,
                }))
            }
            kind => Err(DecodeError::BadType { kind }),
        }
    }

    /// Append the encoded message to `out`. On error nothing is appended.
    pub fn encode(&self, ctx: &SessionCtx, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = begin_message(out, self.kind());
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_len,
        };
        let r = match self {
            Message::Open(o) => o.encode_body(out),
            Message::Update(u) => u.encode_body(ctx, out),
            Message::Notification(n) => n.encode_body(out),
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(rr) => {
                out.put_u16(rr.family.afi.code());
                out.put_u8(rr.subtype.code());
                out.put_u8(rr.family.safi.code());
                Ok(())
            }
        };
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        finish_header(out, start, max)
    }

    /// Encode into a fresh buffer.
    pub fn to_bytes(&self, ctx: &SessionCtx) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(ctx, &mut out)?;
        Ok(out)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Open(o) => write!(
                f,
                "OPEN as {} hold {} id {} ({} capabilities)",
                o.asn(),
                o.hold_time,
                o.bgp_id,
                o.capabilities.len()
            ),
            Message::Update(u) => {
                if let Some(fam) = u.is_end_of_rib() {
                    return write!(f, "UPDATE End-of-RIB {fam}");
                }
                let (a, w) = u.prefix_count();
                write!(f, "UPDATE {a} announced, {w} withdrawn")
            }
            Message::Notification(n) => write!(f, "NOTIFICATION {n}"),
            Message::Keepalive => f.write_str("KEEPALIVE"),
            Message::RouteRefresh(rr) => write!(f, "ROUTE-REFRESH {} {:?}", rr.family, rr.subtype),
        }
    }
}
