//! Message framing (RFC 4271 §4.1): the 16-octet marker, the 2-octet length and
//! the type octet.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::{HEADER_LEN, MARKER};

/// Look at the front of a receive buffer and say whether a whole message is there.
///
/// Returns `Ok(Some(len))` when the first `len` octets form one message (header
/// included), `Ok(None)` when more input is needed, and an error when the marker
/// is wrong or the length is below 19 or above `max_len` (4096, or 65535 once
/// extended messages are negotiated, RFC 8654). Only the header is checked; the
/// body is validated by [`Message::decode`](super::Message::decode).
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        // Reject a bad marker as soon as its octets are in.
        let seen = &buf[..buf.len().min(MARKER.len())];
        if seen.iter().any(|&b| b != 0xFF) {
            return Err(DecodeError::BadMarker);
        }
        return Ok(None);
    };
    if header[..16] != MARKER {
        return Err(DecodeError::BadMarker);
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    if usize::from(len) < HEADER_LEN || usize::from(len) > max_len {
        return Err(DecodeError::BadLength { len });
    }
    if buf.len() < usize::from(len) {
        Ok(None)
    } else {
        Ok(Some(usize::from(len)))
    }
}

/// Write a header with a placeholder length; returns the offset of the message
/// start so that [`finish_header`] can fill the length in.
pub(crate) fn begin_message(out: &mut BytesMut, kind: u8) -> usize {
    let start = out.len();
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(kind);
    start
}

/// Fill in the length of the message that starts at `start`, checking `max`.
/// On error the partial message is removed from `out`.
pub(crate) fn finish_header(
    out: &mut BytesMut,
    start: usize,
    max: usize,
) -> Result<(), EncodeError> {
    let len = out.len() - start;
    if len > max || len > usize::from(u16::MAX) {
        out.truncate(start);
        return Err(EncodeError::TooLong { len, max });
    }
    out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut v = vec![0xFF; 16];
        v.extend_from_slice(&[0, 19, 4]);
        v
    }

    #[test]
    fn needs_more_until_complete() {
        let k = keepalive();
        for n in 0..k.len() {
            assert_eq!(frame_len(&k[..n], 4096), Ok(None), "prefix of {n} octets");
        }
        assert_eq!(frame_len(&k, 4096), Ok(Some(19)));
        let mut two = k.clone();
        two.extend_from_slice(&k);
        assert_eq!(frame_len(&two, 4096), Ok(Some(19)));
    }

    #[test]
    fn rejects_bad_marker_early() {
        assert_eq!(frame_len(&[0xFF, 0x00], 4096), Err(DecodeError::BadMarker));
        let mut k = keepalive();
        k[15] = 0;
        assert_eq!(frame_len(&k, 4096), Err(DecodeError::BadMarker));
        assert_eq!(frame_len(&k[..17], 4096), Err(DecodeError::BadMarker));
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut k = keepalive();
        k[17] = 18;
        assert_eq!(frame_len(&k, 4096), Err(DecodeError::BadLength { len: 18 }));
        k[16] = 0x10;
        k[17] = 0x01;
        assert_eq!(
            frame_len(&k, 4096),
            Err(DecodeError::BadLength { len: 4097 })
        );
        assert_eq!(frame_len(&k, 65535), Ok(None));
    }
}
