//! NLRI encoding (RFC 4271 §4.3, RFC 4760 §5, ADD-PATH RFC 7911 §3): an optional
//! 4-octet path identifier, a length in bits, then the fewest octets that hold it.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BufMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::error::NlriError;
use crate::types::{Afi, Family, Nlri};

/// Iterates over the NLRI in a buffer without allocating. After the first error
/// the iterator ends.
#[derive(Debug, Clone)]
pub struct NlriIter<'a> {
    buf: &'a [u8],
    afi: Afi,
    add_path: bool,
    failed: bool,
}

impl<'a> NlriIter<'a> {
    /// `family` must be IPv4 or IPv6 (any SAFI whose NLRI is a plain prefix);
    /// `add_path` says whether path identifiers precede the prefixes.
    pub fn new(buf: &'a [u8], family: Family, add_path: bool) -> Result<Self, NlriError> {
        match family.afi {
            Afi::Ipv4 | Afi::Ipv6 => Ok(NlriIter {
                buf,
                afi: family.afi,
                add_path,
                failed: false,
            }),
            Afi::Other(_) => Err(NlriError::UnsupportedFamily(family)),
        }
    }

    fn next_inner(&mut self) -> Result<Nlri, NlriError> {
        let mut buf = self.buf;
        let path_id = if self.add_path {
            let Some((id, rest)) = buf.split_first_chunk::<4>() else {
                return Err(NlriError::TruncatedPathId);
            };
            buf = rest;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let (&bits, rest) = buf.split_first().ok_or(NlriError::Truncated)?;
        let max = if self.afi == Afi::Ipv4 { 32 } else { 128 };
        if bits > max {
            return Err(NlriError::PrefixTooLong { len: bits, max });
        }
        let n = usize::from(bits).div_ceil(8);
        let bytes = rest.get(..n).ok_or(NlriError::Truncated)?;
        self.buf = &rest[n..];
        let prefix = if self.afi == Afi::Ipv4 {
            let mut o = [0u8; 4];
            o[..n].copy_from_slice(bytes);
            // Host bits beyond the length are ignored (masked off).
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(o), bits).trunc())
        } else {
            let mut o = [0u8; 16];
            o[..n].copy_from_slice(bytes);
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(o), bits).trunc())
        };
        Ok(Nlri { prefix, path_id })
    }
}

impl Iterator for NlriIter<'_> {
    type Item = Result<Nlri, NlriError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        let r = self.next_inner();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Decode a whole NLRI field into a vector (one allocation for all prefixes).
pub fn decode_all(buf: &[u8], family: Family, add_path: bool) -> Result<Vec<Nlri>, NlriError> {
    // A prefix takes at least one octet: a cheap capacity bound.
    let mut out = Vec::with_capacity((buf.len() / if add_path { 6 } else { 3 }).max(1));
    for n in NlriIter::new(buf, family, add_path)? {
        out.push(n?);
    }
    Ok(out)
}

/// Octets one NLRI takes on the wire.
pub fn encoded_len(nlri: &Nlri, add_path: bool) -> usize {
    1 + usize::from(nlri.prefix.prefix_len()).div_ceil(8) + if add_path { 4 } else { 0 }
}

/// Append one NLRI. With `add_path`, a missing path id is sent as 0; without it,
/// a path id is not sent.
pub fn encode(nlri: &Nlri, add_path: bool, out: &mut impl BufMut) {
    if add_path {
        out.put_u32(nlri.path_id.unwrap_or(0));
    }
    let bits = nlri.prefix.prefix_len();
    let n = usize::from(bits).div_ceil(8);
    out.put_u8(bits);
    match nlri.prefix.trunc() {
        IpNet::V4(p) => out.put_slice(&p.addr().octets()[..n]),
        IpNet::V6(p) => out.put_slice(&p.addr().octets()[..n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_masks_host_bits() {
        // 10.1.0.0/16, 192.168.1.128/25 with a stray host bit, 0.0.0.0/0
        let buf = [16, 10, 1, 25, 192, 168, 1, 0xC0, 0];
        let v = decode_all(&buf, Family::IPV4_UNICAST, false).unwrap();
        let p: Vec<String> = v.iter().map(|n| n.prefix.to_string()).collect();
        assert_eq!(p, ["10.1.0.0/16", "192.168.1.128/25", "0.0.0.0/0"]);
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            decode_all(&[33, 1, 2, 3, 4, 5], Family::IPV4_UNICAST, false),
            Err(NlriError::PrefixTooLong { len: 33, max: 32 })
        );
        assert_eq!(
            decode_all(&[24, 10, 1], Family::IPV4_UNICAST, false),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            decode_all(&[0, 0, 1], Family::IPV4_UNICAST, true),
            Err(NlriError::TruncatedPathId)
        );
        assert_eq!(
            decode_all(&[129], Family::IPV6_UNICAST, false),
            Err(NlriError::PrefixTooLong { len: 129, max: 128 })
        );
    }

    #[test]
    fn add_path_round_trip() {
        let n = Nlri {
            prefix: "2001:db8::/32".parse().unwrap(),
            path_id: Some(7),
        };
        let mut out = Vec::new();
        encode(&n, true, &mut out);
        assert_eq!(out, [0, 0, 0, 7, 32, 0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(encoded_len(&n, true), out.len());
        assert_eq!(
            decode_all(&out, Family::IPV6_UNICAST, true).unwrap(),
            vec![n]
        );
    }
}
