//! OPEN messages (RFC 4271 §4.2) and capabilities (RFC 5492).
//!
//! Capabilities are decoded from optional parameters of type 2, in the classic
//! one-octet-length form and in the RFC 9072 extended form. On encode each
//! capability goes in its own optional parameter (as FRR, BIRD and GoBGP do); the
//! RFC 9072 form is used only when the parameters exceed 255 octets.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::AS_TRANS;
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use crate::types::{Afi, Family, Safi};

/// Capability codes (IANA "Capability Codes").
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const FQDN: u8 = 73;
}

/// Optional parameter type carrying capabilities.
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: Non-Ext OP Type marking the extended optional parameters format.
const PARAM_EXTENDED: u8 = 255;

/// ADD-PATH send/receive mode for one family (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddPathMode {
    Receive,
    Send,
    Both,
}

impl AddPathMode {
    pub fn code(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }
    pub fn can_send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
    pub fn can_receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
}

/// One entry of the extended next hop capability (RFC 8950): routes of `family`
/// may carry a next hop of `next_hop_afi`. The NLRI SAFI is two octets on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtNextHop {
    pub family: Family,
    pub next_hop_afi: Afi,
}

/// The graceful restart capability (RFC 4724, N bit from RFC 8538).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): graceful restart also covers NOTIFICATIONs.
    pub notification: bool,
    /// Restart time in seconds (12 bits, at most 4095).
    pub restart_time: u16,
    /// Families with their "forwarding state preserved" bit.
    pub families: Vec<(Family, bool)>,
}

/// One capability of an OPEN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol(Family),
    /// RFC 2918.
    RouteRefresh,
    /// RFC 8950.
    ExtendedNextHop(Vec<ExtNextHop>),
    /// RFC 8654.
    ExtendedMessage,
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793.
    FourOctetAs(u32),
    /// RFC 7911.
    AddPath(Vec<(Family, AddPathMode)>),
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// draft-walton-bgp-hostname (FRR's hostname capability).
    Fqdn { hostname: String, domain: String },
    /// Any other capability (or a known one we keep verbatim), code and value.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    pub fn code(&self) -> u8 {
        use cap_code::*;
        match self {
            Capability::Multiprotocol(_) => MULTIPROTOCOL,
            Capability::RouteRefresh => ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => FOUR_OCTET_AS,
            Capability::AddPath(_) => ADD_PATH,
            Capability::EnhancedRouteRefresh => ENHANCED_ROUTE_REFRESH,
            Capability::Fqdn { .. } => FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decode one capability value.
    pub fn decode(code: u8, value: &[u8]) -> Result<Self, DecodeError> {
        use cap_code::*;
        let bad = |reason| DecodeError::MalformedCapability { code, reason };
        let mut r = Reader::new(value);
        let cap = match code {
            MULTIPROTOCOL => {
                if value.len() != 4 {
                    return Err(bad("length is not 4"));
                }
                let afi = r.u16().ok_or(bad("truncated"))?;
                let _reserved = r.u8();
                let safi = r.u8().ok_or(bad("truncated"))?;
                Capability::Multiprotocol(Family::new(Afi::from_code(afi), Safi::from_code(safi)))
            }
            ROUTE_REFRESH | EXTENDED_MESSAGE | ENHANCED_ROUTE_REFRESH => {
                if !value.is_empty() {
                    return Err(bad("value must be empty"));
                }
                match code {
                    ROUTE_REFRESH => Capability::RouteRefresh,
                    EXTENDED_MESSAGE => Capability::ExtendedMessage,
                    _ => Capability::EnhancedRouteRefresh,
                }
            }
            EXTENDED_NEXT_HOP => {
                if !value.len().is_multiple_of(6) {
                    return Err(bad("length is not a multiple of 6"));
                }
                let mut entries = Vec::with_capacity(value.len() / 6);
                while !r.is_empty() {
                    let afi = r.u16().ok_or(bad("truncated"))?;
                    let safi = r.u16().ok_or(bad("truncated"))?;
                    let nh = r.u16().ok_or(bad("truncated"))?;
                    // The NLRI SAFI is two octets here; values above 255 cannot name
                    // a SAFI, keep the capability raw in that case.
                    let Ok(safi) = u8::try_from(safi) else {
                        return Ok(Capability::Unknown {
                            code,
                            value: value.to_vec(),
                        });
                    };
                    entries.push(ExtNextHop {
                        family: Family::new(Afi::from_code(afi), Safi::from_code(safi)),
                        next_hop_afi: Afi::from_code(nh),
                    });
                }
                Capability::ExtendedNextHop(entries)
            }
            GRACEFUL_RESTART => {
                if value.len() < 2 || !(value.len() - 2).is_multiple_of(4) {
                    return Err(bad("length is not 2 + 4n"));
                }
                let word = r.u16().ok_or(bad("truncated"))?;
                let mut families = Vec::with_capacity((value.len() - 2) / 4);
                while !r.is_empty() {
                    let afi = r.u16().ok_or(bad("truncated"))?;
                    let safi = r.u8().ok_or(bad("truncated"))?;
                    let flags = r.u8().ok_or(bad("truncated"))?;
                    families.push((
                        Family::new(Afi::from_code(afi), Safi::from_code(safi)),
                        flags & 0x80 != 0,
                    ));
                }
                // Unused flag bits (0x2000 and 0x1000) and per-family flag bits other
                // than F are ignored as RFC 4724 asks; they do not survive re-encoding.
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: word & 0x8000 != 0,
                    notification: word & 0x4000 != 0,
                    restart_time: word & 0x0FFF,
                    families,
                })
            }
            FOUR_OCTET_AS => {
                if value.len() != 4 {
                    return Err(bad("length is not 4"));
                }
                Capability::FourOctetAs(r.u32().ok_or(bad("truncated"))?)
            }
            ADD_PATH => {
                if !value.len().is_multiple_of(4) {
                    return Err(bad("length is not a multiple of 4"));
                }
                let mut entries = Vec::with_capacity(value.len() / 4);
                while !r.is_empty() {
                    let afi = r.u16().ok_or(bad("truncated"))?;
                    let safi = r.u8().ok_or(bad("truncated"))?;
                    let mode = r.u8().ok_or(bad("truncated"))?;
                    let mode = AddPathMode::from_code(mode)
                        .ok_or(bad("send/receive value is not 1, 2 or 3"))?;
                    entries.push((
                        Family::new(Afi::from_code(afi), Safi::from_code(safi)),
                        mode,
                    ));
                }
                Capability::AddPath(entries)
            }
            FQDN => {
                let decode_fqdn = |r: &mut Reader<'_>| -> Option<(String, String)> {
                    let hl = r.u8()?;
                    let host = std::str::from_utf8(r.take(usize::from(hl))?)
                        .ok()?
                        .to_owned();
                    let dl = r.u8()?;
                    let domain = std::str::from_utf8(r.take(usize::from(dl))?)
                        .ok()?
                        .to_owned();
                    r.is_empty().then_some((host, domain))
                };
                match decode_fqdn(&mut r) {
                    Some((hostname, domain)) => Capability::Fqdn { hostname, domain },
                    // Informational only: keep anything odd verbatim rather than fail.
                    None => Capability::Unknown {
                        code,
                        value: value.to_vec(),
                    },
                }
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        };
        Ok(cap)
    }

    /// Encode code, length and value.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.code());
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol(f) => {
                out.put_u16(f.afi.code());
                out.put_u8(0);
                out.put_u8(f.safi.code());
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    out.put_u16(e.family.afi.code());
                    out.put_u16(u16::from(e.family.safi.code()));
                    out.put_u16(e.next_hop_afi.code());
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut word = gr.restart_time.min(0x0FFF);
                if gr.restart_state {
                    word |= 0x8000;
                }
                if gr.notification {
                    word |= 0x4000;
                }
                out.put_u16(word);
                for (f, fwd) in &gr.families {
                    out.put_u16(f.afi.code());
                    out.put_u8(f.safi.code());
                    out.put_u8(if *fwd { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(entries) => {
                for (f, mode) in entries {
                    out.put_u16(f.afi.code());
                    out.put_u8(f.safi.code());
                    out.put_u8(mode.code());
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for (what, s) in [("FQDN hostname", hostname), ("FQDN domain", domain)] {
                    let len = u8::try_from(s.len())
                        .map_err(|_| EncodeError::FieldTooLong { what, len: s.len() })?;
                    out.put_u8(len);
                    out.put_slice(s.as_bytes());
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        let len = out.len() - len_at - 1;
        out[len_at] = u8::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            what: "capability",
            len,
        })?;
        Ok(())
    }
}

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// The 2-octet My Autonomous System field as sent: the AS itself, or
    /// AS_TRANS (23456) when the AS needs four octets. Use [`Open::asn`] for the
    /// real AS.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn`, filling My AS (AS_TRANS if needed) and adding the
    /// 4-octet AS capability if the list does not have one.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-octet AS capability when present (RFC 6793),
    /// otherwise the My AS field.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    pub fn has(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// Families announced with the multiprotocol capability. A speaker that sends
    /// none supports IPv4 unicast only (RFC 4760 §8).
    pub fn families(&self) -> Vec<Family> {
        let mut v: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if v.is_empty() && !self.has(cap_code::MULTIPROTOCOL) {
            v.push(Family::IPV4_UNICAST);
        }
        v.sort();
        v.dedup();
        v
    }

    pub fn add_path(&self) -> impl Iterator<Item = (Family, AddPathMode)> + '_ {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::AddPath(v) => Some(v.iter().copied()),
                _ => None,
            })
            .flatten()
    }

    pub fn ext_next_hop(&self) -> impl Iterator<Item = ExtNextHop> + '_ {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::ExtendedNextHop(v) => Some(v.iter().copied()),
                _ => None,
            })
            .flatten()
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    /// Decode the body of an OPEN (after the header).
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let short = DecodeError::MalformedOpen {
            reason: "truncated",
        };
        let mut r = Reader::new(body);
        let version = r.u8().ok_or(short.clone())?;
        if version != 4 {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let my_as = r.u16().ok_or(short.clone())?;
        let hold_time = r.u16().ok_or(short.clone())?;
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime { hold_time });
        }
        let bgp_id = Ipv4Addr::from(r.array::<4>().ok_or(short.clone())?);
        if bgp_id.is_unspecified() {
            return Err(DecodeError::BadBgpId { id: bgp_id });
        }
        let opt_len = r.u8().ok_or(short.clone())?;
        // RFC 9072: Non-Ext OP Len 255 followed by Non-Ext OP Type 255.
        let extended = opt_len == 255 && r.rest().first() == Some(&PARAM_EXTENDED);
        let params = if extended {
            r.u8();
            let len = r.u16().ok_or(short.clone())?;
            r.take(usize::from(len)).ok_or(DecodeError::MalformedOpen {
                reason: "optional parameters overrun the message",
            })?
        } else {
            r.take(usize::from(opt_len))
                .ok_or(DecodeError::MalformedOpen {
                    reason: "optional parameters overrun the message",
                })?
        };
        if !r.is_empty() {
            return Err(DecodeError::MalformedOpen {
                reason: "octets after the optional parameters",
            });
        }
        let mut capabilities = Vec::new();
        let mut p = Reader::new(params);
        while !p.is_empty() {
            let kind = p.u8().ok_or(short.clone())?;
            let len = if extended {
                p.u16()
            } else {
                p.u8().map(u16::from)
            };
            let len = len.ok_or(DecodeError::MalformedOpen {
                reason: "truncated optional parameter",
            })?;
            let value = p.take(usize::from(len)).ok_or(DecodeError::MalformedOpen {
                reason: "optional parameter overruns the parameters",
            })?;
            if kind != PARAM_CAPABILITIES {
                return Err(DecodeError::UnsupportedOptionalParameter { kind });
            }
            let mut c = Reader::new(value);
            while !c.is_empty() {
                let code = c.u8().ok_or(short.clone())?;
                let clen = c.u8().ok_or(DecodeError::MalformedOpen {
                    reason: "truncated capability header",
                })?;
                let cval = c
                    .take(usize::from(clen))
                    .ok_or(DecodeError::MalformedCapability {
                        code,
                        reason: "value overruns the parameter",
                    })?;
                capabilities.push(Capability::decode(code, cval)?);
            }
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    /// Encode the body of an OPEN (after the header).
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(4);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let mut params = BytesMut::new();
        let mut caps = Vec::with_capacity(self.capabilities.len());
        for c in &self.capabilities {
            let mut one = BytesMut::new();
            c.encode(&mut one)?;
            caps.push(one);
        }
        let classic_len: usize = caps.iter().map(|c| c.len() + 2).sum();
        if classic_len <= 255 {
            for c in &caps {
                params.put_u8(PARAM_CAPABILITIES);
                params.put_u8(c.len() as u8);
                params.put_slice(c);
            }
            out.put_u8(params.len() as u8);
        } else {
            // RFC 9072 extended optional parameters.
            for c in &caps {
                params.put_u8(PARAM_CAPABILITIES);
                params.put_u16(c.len() as u16);
                params.put_slice(c);
            }
            let len = u16::try_from(params.len()).map_err(|_| EncodeError::FieldTooLong {
                what: "optional parameters",
                len: params.len(),
            })?;
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            out.put_u16(len);
        }
        out.put_slice(&params);
        Ok(())
    }
}
