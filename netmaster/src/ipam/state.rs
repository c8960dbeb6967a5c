//! The serialized state of a [`Pool`]: small, versioned and deterministic.
//!
//! netmaster stores a pool's state in the same store transaction as the object that changed
//! it. Allocations of each scope are written as whichever of two encodings is shorter (ties
//! go to ranges), so the same pool always gives the same bytes:
//! - `{"ranges": "10.1.1.1-10.1.1.200,10.1.1.210"}`: runs of allocated addresses;
//! - `{"bitmap": "<base64>"}`: bit `i` (byte `i / 8`, bit `i % 8` from the least significant)
//!   is offset `i` from the start of the scope (the network's allocatable range, or the
//!   group's pool), trailing zero bytes left out. A /16 costs at most about 11 KB however
//!   fragmented it is.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::range::{format_runs, parse_runs};
use super::{AddrRange, IpamError, Pool, Scope, SubnetSpec};

/// The state format this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The state of one [`Pool`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The network's name.
    pub network: String,
    /// The subnet spec, `a.b.c.d/len` or `start-end/len`.
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Network-scope allocations.
    pub allocated: Allocations,
    /// Endpoint-group pools, sorted by group name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epgs: Vec<EpgState>,
}

/// The state of one endpoint group's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpgState {
    pub group: String,
    /// The pool, `start-end`.
    pub pool: String,
    pub allocated: Allocations,
}

/// The allocated addresses of one scope (see the module docs for the two encodings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocations {
    Ranges(String),
    Bitmap(String),
}

/// Encodes `runs` (numbers) of a scope starting at `base`.
fn encode(v6: bool, base: u128, runs: &[(u128, u128)]) -> Allocations {
    let ranges = format_runs(v6, runs, ",");
    let Some(&(_, last)) = runs.last() else {
        return Allocations::Ranges(ranges);
    };
    let nbytes = (last - base) / 8 + 1;
    let b64_len = nbytes.div_ceil(3).saturating_mul(4);
    if b64_len >= ranges.len() as u128 {
        return Allocations::Ranges(ranges);
    }
    // Shorter than the ranges string, so it fits in memory.
    let mut bytes = vec![0u8; nbytes as usize];
    for &(s, e) in runs {
        for off in (s - base)..=(e - base) {
            bytes[(off / 8) as usize] |= 1 << (off % 8);
        }
    }
    Allocations::Bitmap(STANDARD.encode(bytes))
}

/// Decodes the allocations of a scope `base..=base + last` into runs of numbers.
fn decode(v6: bool, base: u128, last: u128, a: &Allocations) -> Result<Vec<(u128, u128)>, String> {
    match a {
        Allocations::Ranges(s) => parse_runs(v6, s),
        Allocations::Bitmap(s) => {
            let max_bytes = last / 8 + 1;
            if s.len() as u128 > max_bytes.div_ceil(3).saturating_mul(4) {
                return Err(format!(
                    "bitmap of {} base64 characters is longer than the scope",
                    s.len()
                ));
            }
            let bytes = STANDARD
                .decode(s)
                .map_err(|e| format!("bitmap is not valid base64: {e}"))?;
            let mut runs: Vec<(u128, u128)> = Vec::new();
            for (i, &byte) in bytes.iter().enumerate() {
                for bit in 0..8 {
                    if byte & (1 << bit) == 0 {
                        continue;
                    }
                    let off = i as u128 * 8 + bit;
                    if off > last {
                        return Err(format!("bitmap sets bit {off}, past the end of the scope"));
                    }
                    let v = base + off;
                    match runs.last_mut() {
                        Some(r) if r.1 + 1 == v => r.1 = v,
                        _ => runs.push((v, v)),
                    }
                }
            }
            Ok(runs)
        }
    }
}

impl Pool {
    /// The pool's state; the same pool always gives an equal state.
    pub fn to_state(&self) -> PoolState {
        PoolState {
            version: STATE_VERSION,
            network: self.network.clone(),
            subnet: self.spec.to_string(),
            gateway: self.gateway,
            allocated: encode(self.v6, self.lo, &self.network_runs()),
            epgs: self
                .epgs
                .iter()
                .map(|(g, p)| EpgState {
                    group: g.clone(),
                    pool: p.range.to_string(),
                    allocated: encode(
                        self.v6,
                        p.lo,
                        &p.space
                            .runs()
                            .into_iter()
                            .map(|(s, e)| (s + p.lo, e + p.lo))
                            .collect::<Vec<_>>(),
                    ),
                })
                .collect(),
        }
    }

    /// Rebuilds a pool from its state, checking everything: the version, the subnet and
    /// gateway, the group pools (inside the range, no overlap, no reserved address) and every
    /// allocation (inside its scope, not reserved, listed once).
    pub fn from_state(state: &PoolState) -> Result<Pool, IpamError> {
        if state.version != STATE_VERSION {
            return Err(IpamError::UnsupportedStateVersion {
                found: state.version,
                supported: STATE_VERSION,
            });
        }
        let corrupt = |reason: String| IpamError::CorruptState {
            network: state.network.clone(),
            reason,
        };
        let spec: SubnetSpec = state
            .subnet
            .parse()
            .map_err(|e: IpamError| corrupt(e.to_string()))?;
        let mut pool = Pool::new(state.network.clone(), spec, state.gateway)
            .map_err(|e| corrupt(e.to_string()))?;
        for epg in &state.epgs {
            let range: AddrRange = epg
                .pool
                .parse()
                .map_err(|e: IpamError| corrupt(e.to_string()))?;
            pool.add_epg_pool(&epg.group, range)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        let (v6, lo, hi) = (pool.v6, pool.lo, pool.hi);
        let runs = decode(v6, lo, hi - lo, &state.allocated).map_err(&corrupt)?;
        for (a, b) in runs {
            pool.mark_run(Scope::Network, a, b).map_err(&corrupt)?;
        }
        for epg in &state.epgs {
            let (plo, phi) = {
                let p = &pool.epgs[&epg.group];
                (p.lo, p.hi)
            };
            let runs = decode(v6, plo, phi - plo, &epg.allocated)
                .map_err(|e| corrupt(format!("endpoint group {:?}: {e}", epg.group)))?;
            for (a, b) in runs {
                pool.mark_run(Scope::Epg(&epg.group), a, b)
                    .map_err(&corrupt)?;
            }
        }
        Ok(pool)
    }

    /// The state as JSON bytes (deterministic).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing these plain structs to a Vec cannot fail; fall back to an empty object
        // rather than panic should serde_json ever disagree.
        serde_json::to_vec(&self.to_state()).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Rebuilds a pool from [`Pool::to_bytes`] output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Pool, IpamError> {
        let state: PoolState =
            serde_json::from_slice(bytes).map_err(|e| IpamError::CorruptState {
                network: String::new(),
                reason: format!("not a valid IPAM state document: {e}"),
            })?;
        Pool::from_state(&state)
    }
}
