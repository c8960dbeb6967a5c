//! BFD authentication (RFC 5880 §4.3, §4.4, §6.7): Keyed MD5, Meticulous Keyed MD5,
//! Keyed SHA1 and Meticulous Keyed SHA1. Simple Password (type 1) is not offered: it puts
//! the secret on the wire.
//!
//! The authentication section of these four types is, after its Auth Type and Auth Len
//! octets: Auth Key ID (1), Reserved (1), Sequence Number (4), then the digest (16 bytes
//! for MD5, 20 for SHA1). The digest is computed over the whole packet with the digest
//! field holding the secret padded with zeros to the digest length, then replaced by the
//! result (§6.7.3, §6.7.4).
//!
//! The sequence number rules live in [`super::Session`]; this module has the codec and the
//! window test ([`seq_acceptable`]).

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha1::{Digest, Sha1};

use super::packet::{AuthSection, ControlPacket};

/// The authentication types offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    KeyedMd5,
    MeticulousKeyedMd5,
    KeyedSha1,
    MeticulousKeyedSha1,
}

impl AuthType {
    pub const ALL: [AuthType; 4] = [
        AuthType::KeyedMd5,
        AuthType::MeticulousKeyedMd5,
        AuthType::KeyedSha1,
        AuthType::MeticulousKeyedSha1,
    ];

    /// The Auth Type code (RFC 5880 §4.1).
    pub fn code(self) -> u8 {
        match self {
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        AuthType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The sequence number must grow with every packet (§6.7.3).
    pub fn meticulous(self) -> bool {
        matches!(
            self,
            AuthType::MeticulousKeyedMd5 | AuthType::MeticulousKeyedSha1
        )
    }

    /// Length of the digest, and so the longest secret.
    pub fn digest_len(self) -> usize {
        match self {
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => 16,
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => 20,
        }
    }

    /// The Auth Len field: type, length, key id, reserved, sequence number, digest.
    pub fn auth_len(self) -> usize {
        8 + self.digest_len()
    }

    /// The name in configuration ("keyed-sha1", "meticulous-keyed-sha1", …).
    pub fn name(self) -> &'static str {
        match self {
            AuthType::KeyedMd5 => "keyed-md5",
            AuthType::MeticulousKeyedMd5 => "meticulous-keyed-md5",
            AuthType::KeyedSha1 => "keyed-sha1",
            AuthType::MeticulousKeyedSha1 => "meticulous-keyed-sha1",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown authentication type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown BFD authentication type {0:?} (keyed-md5, meticulous-keyed-md5, keyed-sha1, meticulous-keyed-sha1)"
)]
pub struct UnknownAuthType(pub String);

impl FromStr for AuthType {
    type Err = UnknownAuthType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownAuthType(s.to_string()))
    }
}

/// One key: its type, its Auth Key ID and the secret (1 to [`AuthType::digest_len`]
/// bytes). `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    auth_type: AuthType,
    key_id: u8,
    secret: Vec<u8>,
}

/// Why a secret cannot be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthKeyError {
    #[error("the BFD authentication secret is empty")]
    Empty,
    #[error("the BFD authentication secret is {len} bytes; {auth_type} allows at most {max}")]
    TooLong {
        len: usize,
        max: usize,
        auth_type: AuthType,
    },
}

impl AuthKey {
    pub fn new(auth_type: AuthType, key_id: u8, secret: Vec<u8>) -> Result<Self, AuthKeyError> {
        if secret.is_empty() {
            return Err(AuthKeyError::Empty);
        }
        if secret.len() > auth_type.digest_len() {
            return Err(AuthKeyError::TooLong {
                len: secret.len(),
                max: auth_type.digest_len(),
                auth_type,
            });
        }
        Ok(AuthKey {
            auth_type,
            key_id,
            secret,
        })
    }

    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The secret padded with zeros to the digest length.
    fn padded(&self) -> Vec<u8> {
        let mut k = self.secret.clone();
        k.resize(self.auth_type.digest_len(), 0);
        k
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKey")
            .field("auth_type", &self.auth_type)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a received packet failed authentication (RFC 5880 §6.7, §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is configured but the packet has none")]
    Missing,
    #[error("the packet is authenticated but no authentication is configured")]
    Unexpected,
    #[error("authentication type {0} is not the configured one")]
    Type(u8),
    #[error("authentication length {0} is wrong for the type")]
    Length(usize),
    #[error("key id {0} is not the configured one")]
    KeyId(u8),
    #[error("the digest does not match")]
    Digest,
    #[error("sequence number {got} is outside the window after {last}")]
    Sequence { got: u32, last: u32 },
}

fn digest(auth_type: AuthType, bytes: &[u8]) -> Vec<u8> {
    match auth_type {
        AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => Md5::digest(bytes).to_vec(),
        AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => Sha1::digest(bytes).to_vec(),
    }
}

/// The authentication section's data with the padded secret in the digest field.
fn section_with_secret(key: &AuthKey, seq: u32) -> AuthSection {
    let mut data = Vec::with_capacity(key.auth_type.auth_len() - 2);
    data.push(key.key_id);
    data.push(0);
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(&key.padded());
    AuthSection {
        auth_type: key.auth_type.code(),
        data,
    }
}

/// Adds an authentication section with sequence number `seq` to `p` (any earlier section
/// is replaced).
pub fn sign(p: &mut ControlPacket, key: &AuthKey, seq: u32) {
    p.auth = Some(section_with_secret(key, seq));
    let d = digest(key.auth_type, &p.encode());
    if let Some(a) = p.auth.as_mut() {
        a.data.truncate(6);
        a.data.extend_from_slice(&d);
    }
}

/// Checks type, length, key id and digest of `p`'s authentication section against `key`;
/// returns the packet's sequence number. The window is the caller's ([`seq_acceptable`]).
pub fn verify(p: &ControlPacket, key: &AuthKey) -> Result<u32, AuthError> {
    let a = p.auth.as_ref().ok_or(AuthError::Missing)?;
    if a.auth_type != key.auth_type.code() {
        return Err(AuthError::Type(a.auth_type));
    }
    if a.data.len() + 2 != key.auth_type.auth_len() {
        return Err(AuthError::Length(a.data.len() + 2));
    }
    if a.data[0] != key.key_id {
        return Err(AuthError::KeyId(a.data[0]));
    }
    let seq = u32::from_be_bytes([a.data[2], a.data[3], a.data[4], a.data[5]]);
    let mut unsigned = p.clone();
    if let Some(u) = unsigned.auth.as_mut() {
        u.data.truncate(6);
        u.data.extend_from_slice(&key.padded());
    }
    let want = digest(key.auth_type, &unsigned.encode());
    // Compare without an early exit.
    let diff = want
        .iter()
        .zip(&a.data[6..])
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if diff != 0 {
        return Err(AuthError::Digest);
    }
    Ok(seq)
}

/// The sequence number window of §6.7.3/§6.7.4 once bfd.AuthSeqKnown: `seq` lies in
/// `last ..= last + 3 × detect_mult` (Keyed) or `last + 1 ..= last + 3 × detect_mult`
/// (Meticulous), counting modulo 2³².
pub fn seq_acceptable(auth_type: AuthType, last: u32, seq: u32, detect_mult: u8) -> bool {
    let ahead = seq.wrapping_sub(last);
    let max = 3 * u32::from(detect_mult);
    let min = u32::from(auth_type.meticulous());
    (min..=max).contains(&ahead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfd::{BfdState, Diag};
    use proptest::prelude::*;

    fn base() -> ControlPacket {
        ControlPacket {
            diag: Diag::None,
            state: BfdState::Up,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 0x0506_0708,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
            auth: None,
        }
    }

    fn key(t: AuthType) -> AuthKey {
        AuthKey::new(t, 7, b"secret".to_vec()).unwrap()
    }

    /// Keyed SHA1 worked by hand from §4.4 and §6.7.4: the bytes hashed are the packet
    /// with A set, length 52, and the section 04 1c 07 00 <seq> <secret, zero padded>.
    #[test]
    fn keyed_sha1_fixture() {
        let mut p = base();
        sign(&mut p, &key(AuthType::KeyedSha1), 0x0a0b_0c0d);
        let wire = p.encode();
        assert_eq!(wire.len(), 52);
        assert_eq!(wire[1] & 0x04, 0x04, "A bit");
        assert_eq!(wire[3], 52);
        assert_eq!(&wire[24..32], &[4, 28, 7, 0, 0x0a, 0x0b, 0x0c, 0x0d]);
        let mut hashed = wire.clone();
        hashed[32..52].copy_from_slice(b"secret\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&wire[32..52], Sha1::digest(&hashed).as_slice());
        let back = ControlPacket::decode(&wire).unwrap();
        assert_eq!(verify(&back, &key(AuthType::KeyedSha1)), Ok(0x0a0b_0c0d));
    }

    #[test]
    fn md5_lengths() {
        let mut p = base();
        sign(&mut p, &key(AuthType::MeticulousKeyedMd5), 1);
        let wire = p.encode();
        assert_eq!(wire.len(), 48);
        assert_eq!(&wire[24..26], &[3, 24]);
        assert_eq!(
            verify(
                &ControlPacket::decode(&wire).unwrap(),
                &key(AuthType::MeticulousKeyedMd5)
            ),
            Ok(1)
        );
    }

    #[test]
    fn verify_refuses() {
        let k = key(AuthType::KeyedSha1);
        let mut p = base();
        sign(&mut p, &k, 5);
        assert_eq!(verify(&base(), &k), Err(AuthError::Missing));
        let other_id = AuthKey::new(AuthType::KeyedSha1, 8, b"secret".to_vec()).unwrap();
        assert_eq!(verify(&p, &other_id), Err(AuthError::KeyId(7)));
        let wrong = AuthKey::new(AuthType::KeyedSha1, 7, b"Secret".to_vec()).unwrap();
        assert_eq!(verify(&p, &wrong), Err(AuthError::Digest));
        assert_eq!(
            verify(&p, &key(AuthType::MeticulousKeyedSha1)),
            Err(AuthError::Type(4))
        );
        // A changed field breaks the digest.
        let mut q = p.clone();
        q.state = BfdState::Down;
        assert_eq!(verify(&q, &k), Err(AuthError::Digest));
        // A changed sequence number too (no replay with a new number).
        let mut q = p.clone();
        q.auth.as_mut().unwrap().data[5] = 6;
        assert_eq!(verify(&q, &k), Err(AuthError::Digest));
        let mut q = p.clone();
        q.auth.as_mut().unwrap().data.pop();
        assert_eq!(verify(&q, &k), Err(AuthError::Length(27)));
    }

    #[test]
    fn keys_and_names() {
        assert_eq!(
            AuthKey::new(AuthType::KeyedSha1, 1, vec![]),
            Err(AuthKeyError::Empty)
        );
        assert!(AuthKey::new(AuthType::KeyedSha1, 1, vec![1; 20]).is_ok());
        assert!(matches!(
            AuthKey::new(AuthType::KeyedMd5, 1, vec![1; 17]),
            Err(AuthKeyError::TooLong {
                len: 17,
                max: 16,
                ..
            })
        ));
        for t in AuthType::ALL {
            assert_eq!(t.name().parse::<AuthType>(), Ok(t));
            assert_eq!(AuthType::from_code(t.code()), Some(t));
        }
        assert!("simple".parse::<AuthType>().is_err());
        let dbg = format!("{:?}", key(AuthType::KeyedSha1));
        assert!(!dbg.contains("secret\""), "{dbg}");
        assert!(!dbg.contains("115"), "{dbg}"); // no byte of the secret either
    }

    #[test]
    fn windows() {
        let k = AuthType::KeyedSha1;
        let m = AuthType::MeticulousKeyedSha1;
        // Keyed: the same number again is fine, up to 3 × mult ahead.
        assert!(seq_acceptable(k, 10, 10, 3));
        assert!(seq_acceptable(k, 10, 19, 3));
        assert!(!seq_acceptable(k, 10, 20, 3));
        assert!(!seq_acceptable(k, 10, 9, 3));
        // Meticulous: strictly ahead.
        assert!(!seq_acceptable(m, 10, 10, 3));
        assert!(seq_acceptable(m, 10, 11, 3));
        assert!(seq_acceptable(m, 10, 19, 3));
        assert!(!seq_acceptable(m, 10, 20, 3));
        // Wrapping.
        assert!(seq_acceptable(m, u32::MAX, 0, 3));
        assert!(seq_acceptable(m, u32::MAX - 1, 3, 3));
        assert!(!seq_acceptable(m, 0, u32::MAX, 3));
    }

    proptest! {
        #[test]
        fn sign_verify_round_trip(
            t in 0usize..4, id in any::<u8>(), seq in any::<u32>(),
            secret in proptest::collection::vec(any::<u8>(), 1..=16),
            poll in any::<bool>(), discr in 1u32..,
        ) {
            let t = AuthType::ALL[t];
            let k = AuthKey::new(t, id, secret).unwrap();
            let mut p = ControlPacket { poll, my_discr: discr, ..base() };
            sign(&mut p, &k, seq);
            let back = ControlPacket::decode(&p.encode()).unwrap();
            prop_assert_eq!(verify(&back, &k), Ok(seq));
        }

        #[test]
        fn any_flipped_bit_fails(
            byte in 0usize..52, bit in 0u8..8,
        ) {
            let k = key(AuthType::KeyedSha1);
            let mut p = base();
            sign(&mut p, &k, 99);
            let mut wire = p.encode();
            wire[byte] ^= 1 << bit;
            if let Ok(q) = ControlPacket::decode(&wire) {
                prop_assert!(verify(&q, &k).is_err(), "flipped byte {} bit {}", byte, bit);
            }
        }

        #[test]
        fn meticulous_window_never_accepts_a_replay(last in any::<u32>(), m in 1u8..) {
            prop_assert!(!seq_acceptable(AuthType::MeticulousKeyedSha1, last, last, m));
            prop_assert!(seq_acceptable(AuthType::MeticulousKeyedSha1, last, last.wrapping_add(1), m));
            prop_assert!(!seq_acceptable(AuthType::KeyedSha1, last, last.wrapping_sub(1), m));
        }
    }
}
