//! NOTIFICATION messages (RFC 4271 §4.5, §6): the error code and subcode (the crate's
//! one set, [`crate::error_codes`], re-exported here) and the data, with the shutdown
//! communication (RFC 9003), Hard Reset (RFC 8538) and max-prefix (RFC 4486) data
//! read and written.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
pub use crate::error_codes::{
    CeaseError, ErrorCode, FsmError, HeaderError, OpenError, RouteRefreshError, UpdateError,
};
use crate::types::Family;

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
