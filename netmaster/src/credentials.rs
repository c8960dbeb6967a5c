//! Per-host credentials: the token a host's netplugin presents. netmaster keeps only
//! each token's SHA-256, in the store under `/auth/hosts/<host>` (outside `/contiv/`, so
//! never in the world, the feed or an object answer), which every netmaster of a cluster
//! shares: a credential created or deleted through one holds on all of them at the next
//! request.
//!
//! A token is `<host>.<secret>`, the secret 32 random bytes in unpadded base64url (which
//! has no `.`), so netmaster finds the one hash to compare with a single read; the host
//! name in it is no secret.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::store::{AnyStore, Store, StoreError};

/// Where the hashes live in the store.
pub const PREFIX: &str = "/auth/hosts/";

fn key(host: &str) -> String {
    format!("{PREFIX}{host}")
}

/// What the store holds for a host: the hash, never the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    pub host: String,
    /// Hex SHA-256 of the whole token.
    pub sha256: String,
    /// When it was created (seconds since the epoch).
    pub created: u64,
}

/// The SHA-256 of a token, as stored.
pub fn digest(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison, so a credential cannot be guessed byte by byte.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host a token claims to belong to (the part before the last `.`).
pub fn claimed_host(token: &str) -> Option<&str> {
    let (host, secret) = token.rsplit_once('.')?;
    (!host.is_empty() && !secret.is_empty()).then_some(host)
}

/// A host name a credential can be made for: what a host report's URL accepts.
pub fn check_host(host: &str) -> Result<(), String> {
    contiv_model::validate::check_name("host", host, contiv_model::validate::LONG_NAME_MAX)
        .map_err(|e| e.message)
}

/// A fresh token for `host` and what the store keeps of it.
pub fn generate(host: &str, now: u64) -> Result<(contiv_model::Secret, Stored), String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system's random generator failed".to_string())?;
    let token = format!(
        "{host}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let stored = Stored {
        host: host.to_string(),
        sha256: digest(&token),
        created: now,
    };
    Ok((contiv_model::Secret::new(token), stored))
}

/// The host whose credential `token` is, if it is one that exists now.
pub async fn verify(store: &AnyStore, token: &str) -> Result<Option<String>, StoreError> {
    let Some(host) = claimed_host(token) else {
        return Ok(None);
    };
    if check_host(host).is_err() {
        return Ok(None);
    }
    let Some(kv) = store.get(&key(host)).await? else {
        return Ok(None);
    };
    let Ok(stored) = serde_json::from_slice::<Stored>(&kv.value) else {
        tracing::warn!("the stored credential of host {host} is unreadable; refusing it");
        return Ok(None);
    };
    Ok(same(digest(token).as_bytes(), stored.sha256.as_bytes()).then(|| host.to_string()))
}

/// Stores the hash of a new credential for `host`, replacing any older one.
pub async fn put(store: &AnyStore, stored: &Stored) -> Result<(), StoreError> {
    let value = serde_json::to_vec(stored).unwrap_or_default();
    store.put(&key(&stored.host), value).await.map(|_| ())
}

/// Deletes the credential of `host`; false when it had none.
pub async fn delete(store: &AnyStore, host: &str) -> Result<bool, StoreError> {
    if store.get(&key(host)).await?.is_none() {
        return Ok(false);
    }
    store.delete(&key(host)).await.map(|_| true)
}

/// The hosts that have a credential.
pub async fn hosts(store: &AnyStore) -> Result<Vec<String>, StoreError> {
    let (kvs, _) = store.list(PREFIX).await?;
    Ok(kvs
        .iter()
        .filter_map(|kv| kv.key.strip_prefix(PREFIX).map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_host_and_are_stored_hashed() {
        let (t, s) = generate("host-1.lab", 7).unwrap();
        assert_eq!(claimed_host(t.expose()), Some("host-1.lab"));
        assert_eq!(s.sha256, digest(t.expose()));
        assert!(!s.sha256.contains(t.expose()));
        assert_eq!(s.sha256.len(), 64);
        let (t2, _) = generate("host-1.lab", 7).unwrap();
        assert_ne!(t.expose(), t2.expose());
        assert_eq!(claimed_host("nodot"), None);
        assert_eq!(claimed_host(".x"), None);
        assert_eq!(claimed_host("h."), None);
    }

    #[test]
    fn comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }

    #[test]
    fn host_names() {
        assert!(check_host("host1").is_ok());
        assert!(check_host("").is_err());
        assert!(check_host("a/b").is_err());
        assert!(check_host("a%2fb").is_err());
    }
}
