//! The BFD Control packet of RFC 5880 §4.1 (version 1) and its codec.
//!
//! The mandatory section is 24 bytes. An authentication section (A bit) is decoded as far
//! as its type and length and kept raw; [`super::auth`] reads and writes its contents.

use std::fmt;

/// The UDP destination port of single-hop BFD Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// The protocol version this codec speaks.
pub const VERSION: u8 = 1;
/// Length of the mandatory section.
pub const MANDATORY_LEN: usize = 24;

/// Session states as carried in the Sta field (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BfdState {
    AdminDown,
    Down,
    Init,
    Up,
}

impl BfdState {
    pub fn code(self) -> u8 {
        match self {
            BfdState::AdminDown => 0,
            BfdState::Down => 1,
            BfdState::Init => 2,
            BfdState::Up => 3,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code & 3 {
            0 => BfdState::AdminDown,
            1 => BfdState::Down,
            2 => BfdState::Init,
            _ => BfdState::Up,
        }
    }

    /// Lower-case name as FRR prints it ("up", "down", "init", "admin-down").
    pub fn name(self) -> &'static str {
        match self {
            BfdState::AdminDown => "admin-down",
            BfdState::Down => "down",
            BfdState::Init => "init",
            BfdState::Up => "up",
        }
    }
}

impl fmt::Display for BfdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Diagnostic codes (RFC 5880 §4.1). Values 9–31 are reserved and kept as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    Reserved(u8),
}

impl Diag {
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(c) => c & 0x1f,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            c => Diag::Reserved(c),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::None => f.write_str("no diagnostic"),
            Diag::ControlDetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFunctionFailed => f.write_str("echo function failed"),
            Diag::NeighborSignaledDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdministrativelyDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Reserved(c) => write!(f, "reserved diagnostic {c}"),
        }
    }
}

/// The authentication section, kept raw: type, and the bytes after the type and length
/// octets ([`super::auth`] gives them meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSection {
    pub auth_type: u8,
    pub data: Vec<u8>,
}

/// One BFD Control packet. Intervals are in microseconds, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: BfdState,
    /// P: Poll.
    pub poll: bool,
    /// F: Final.
    pub final_: bool,
    /// C: Control Plane Independent.
    pub cpi: bool,
    /// D: Demand.
    pub demand: bool,
    /// M: Multipoint (must be zero).
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
    /// Present when the A bit is set.
    pub auth: Option<AuthSection>,
}

/// Why bytes are not a BFD Control packet (the codec-level checks of RFC 5880 §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes is shorter than the mandatory section")]
    TooShort(usize),
    #[error("version {0} is not 1")]
    Version(u8),
    #[error("length field {field} is invalid for {available} received bytes")]
    Length { field: u8, available: usize },
    #[error("authentication section length {0} is invalid")]
    AuthLength(u8),
}

impl ControlPacket {
    /// Length of the encoded packet.
    pub fn encoded_len(&self) -> usize {
        MANDATORY_LEN + self.auth.as_ref().map_or(0, |a| 2 + a.data.len())
    }

    /// Encodes into a new buffer. An auth section longer than the one-octet length field
    /// allows is truncated.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let auth_data = self
            .auth
            .as_ref()
            .map(|a| &a.data[..a.data.len().min(usize::from(u8::MAX) - 2)]);
        let len = MANDATORY_LEN + auth_data.map_or(0, |d| 2 + d.len());
        out.push((VERSION << 5) | self.diag.code());
        let flags = (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.cpi) << 3)
            | (u8::from(self.auth.is_some()) << 2)
            | (u8::from(self.demand) << 1)
            | u8::from(self.multipoint);
        out.push((self.state.code() << 6) | flags);
        out.push(self.detect_mult);
        out.push(u8::try_from(len).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.my_discr.to_be_bytes());
        out.extend_from_slice(&self.your_discr.to_be_bytes());
        out.extend_from_slice(&self.desired_min_tx_us.to_be_bytes());
        out.extend_from_slice(&self.required_min_rx_us.to_be_bytes());
        out.extend_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        if let (Some(a), Some(d)) = (&self.auth, auth_data) {
            out.push(a.auth_type);
            out.push(u8::try_from(2 + d.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(d);
        }
    }

    /// Decodes one packet from a UDP payload. Bytes after the length field's end are
    /// ignored (RFC 5880 §6.8.6 only rejects a length field larger than the payload).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < MANDATORY_LEN {
            return Err(DecodeError::TooShort(buf.len()));
        }
        let version = buf[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let auth_bit = buf[1] & 0x04 != 0;
        let len = buf[3];
        let min = if auth_bit {
            MANDATORY_LEN + 2
        } else {
            MANDATORY_LEN
        };
        if usize::from(len) < min || usize::from(len) > buf.len() {
            return Err(DecodeError::Length {
                field: len,
                available: buf.len(),
            });
        }
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let auth = if auth_bit {
            let auth_len = buf[MANDATORY_LEN + 1];
            let end = MANDATORY_LEN + usize::from(auth_len);
            if auth_len < 2 || end > usize::from(len) {
                return Err(DecodeError::AuthLength(auth_len));
            }
            Some(AuthSection {
                auth_type: buf[MANDATORY_LEN],
                data: buf[MANDATORY_LEN + 2..end].to_vec(),
            })
        } else {
            None
        };
        Ok(ControlPacket {
            diag: Diag::from_code(buf[0]),
            state: BfdState::from_code(buf[1] >> 6),
            poll: buf[1] & 0x20 != 0,
            final_: buf[1] & 0x10 != 0,
            cpi: buf[1] & 0x08 != 0,
            demand: buf[1] & 0x02 != 0,
            multipoint: buf[1] & 0x01 != 0,
            detect_mult: buf[2],
            my_discr: u32_at(4),
            your_discr: u32_at(8),
            desired_min_tx_us: u32_at(12),
            required_min_rx_us: u32_at(16),
            required_min_echo_rx_us: u32_at(20),
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ControlPacket {
        ControlPacket {
            diag: Diag::ControlDetectionTimeExpired,
            state: BfdState::Init,
            poll: true,
            final_: false,
            cpi: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 0xa0b0_c0d0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
            auth: None,
        }
    }

    /// Hand-assembled from the field layout of RFC 5880 §4.1.
    const SAMPLE_BYTES: [u8; 24] = [
        0x21, // version 1, diag 1
        0xa0, // state Init (2 << 6), P
        3, 24, 0x01, 0x02, 0x03, 0x04, 0xa0, 0xb0, 0xc0, 0xd0, 0x00, 0x0f, 0x42, 0x40, // 1 s
        0x00, 0x04, 0x93, 0xe0, // 300 ms
        0, 0, 0, 0,
    ];

    #[test]
    fn encode_fixture() {
        assert_eq!(sample().encode(), SAMPLE_BYTES);
    }

    #[test]
    fn decode_fixture() {
        assert_eq!(ControlPacket::decode(&SAMPLE_BYTES).unwrap(), sample());
    }

    #[test]
    fn decode_up_final_fixture() {
        // State Up, F, diag 0, mult 5.
        let mut b = SAMPLE_BYTES;
        b[0] = 0x20;
        b[1] = 0xd0;
        b[2] = 5;
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(p.state, BfdState::Up);
        assert!(p.final_ && !p.poll);
        assert_eq!(p.diag, Diag::None);
        assert_eq!(p.detect_mult, 5);
    }

    #[test]
    fn decode_rejects() {
        assert_eq!(
            ControlPacket::decode(&SAMPLE_BYTES[..23]),
            Err(DecodeError::TooShort(23))
        );
        let mut b = SAMPLE_BYTES;
        b[0] = 0x41; // version 2
        assert_eq!(ControlPacket::decode(&b), Err(DecodeError::Version(2)));
        let mut b = SAMPLE_BYTES;
        b[3] = 23;
        assert!(matches!(
            ControlPacket::decode(&b),
            Err(DecodeError::Length { field: 23, .. })
        ));
        let mut b = SAMPLE_BYTES;
        b[3] = 25; // longer than the payload
        assert!(matches!(
            ControlPacket::decode(&b),
            Err(DecodeError::Length { field: 25, .. })
        ));
        let mut b = SAMPLE_BYTES;
        b[1] |= 0x04; // A bit with only 24 bytes
        assert!(matches!(
            ControlPacket::decode(&b),
            Err(DecodeError::Length { field: 24, .. })
        ));
    }

    #[test]
    fn trailing_bytes_ignored() {
        let mut b = SAMPLE_BYTES.to_vec();
        b.extend_from_slice(&[9, 9, 9]);
        assert_eq!(ControlPacket::decode(&b).unwrap(), sample());
    }

    #[test]
    fn auth_section_decoded_as_present() {
        // Simple password (type 1), key id 1, password "abc": auth len 2 + 1 + 3 = 6.
        let mut b = SAMPLE_BYTES.to_vec();
        b[1] |= 0x04;
        b[3] = 30;
        b.extend_from_slice(&[1, 6, 1, b'a', b'b', b'c']);
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(
            p.auth,
            Some(AuthSection {
                auth_type: 1,
                data: vec![1, b'a', b'b', b'c']
            })
        );
        assert_eq!(p.encode(), b);
        // Auth length pointing past the packet.
        b[25] = 7;
        assert_eq!(ControlPacket::decode(&b), Err(DecodeError::AuthLength(7)));
    }

    #[test]
    fn diag_and_state_codes_round_trip() {
        for c in 0..32 {
            assert_eq!(Diag::from_code(c).code(), c);
        }
        for c in 0..4 {
            assert_eq!(BfdState::from_code(c).code(), c);
        }
    }

    fn arb_packet() -> impl Strategy<Value = ControlPacket> {
        (
            (0u8..32, 0u8..4, any::<[bool; 5]>(), any::<u8>()),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
            ),
            proptest::option::of((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40))),
        )
            .prop_map(|((d, s, f, m), (a, b, c, e, g), auth)| ControlPacket {
                diag: Diag::from_code(d),
                state: BfdState::from_code(s),
                poll: f[0],
                final_: f[1],
                cpi: f[2],
                demand: f[3],
                multipoint: f[4],
                detect_mult: m,
                my_discr: a,
                your_discr: b,
                desired_min_tx_us: c,
                required_min_rx_us: e,
                required_min_echo_rx_us: g,
                auth: auth.map(|(auth_type, data)| AuthSection { auth_type, data }),
            })
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_packet()) {
            let b = p.encode();
            prop_assert_eq!(b.len(), p.encoded_len());
            prop_assert_eq!(ControlPacket::decode(&b).unwrap(), p);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = ControlPacket::decode(&b) {
                // What decodes re-encodes to something that decodes the same.
                prop_assert_eq!(ControlPacket::decode(&p.encode()).unwrap(), p);
            }
        }
    }
}
