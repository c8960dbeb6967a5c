//! The host's `Bgp` object as a plan for its speaker ([`BgpPlan`]): pure, parsed by the
//! model ([`BgpSpec`], the same parse netmaster validated the object with). Passwords are
//! resolved by a function the caller gives ([`BgpPlan::with_passwords`]); reading the
//! secret files is the agent's (`agent::bgp::BgpSecrets`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::types::{Community, LargeCommunity};
use bgp_speaker::bfd::BfdConfig;
use bgp_speaker::transport::Md5Password;
use contiv_model::ValidationError;
use contiv_model::bgp::{AdvertiseSpec, BfdTimers, BgpSpec, GuardSpec};
use ipnet::IpNet;

use crate::routing::AdvertiseMode;

/// The speaker settings a `Bgp` object stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPlan {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// The host's ToR subnet (network address).
    pub router_net: IpNet,
    /// The host's address on the ToR subnet, with that subnet's length.
    pub router_net_full: IpNet,
    /// Neighbor address → its AS, BFD and MD5 password.
    pub neighbors: BTreeMap<IpAddr, PlanNeighbor>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Graceful restart time in seconds (0: off).
    pub graceful_restart: u16,
    pub advertise: AdvertiseMode,
    /// Default route, max-prefix, GTSM and the host's further subnets.
    pub guard: GuardSpec,
}

/// One neighbor of a [`BgpPlan`]: any change re-adds it (a session reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNeighbor {
    pub asn: u32,
    /// BFD with this neighbor (the object's `bfd`, or the neighbor's own), with the
    /// object's timers.
    pub bfd: Option<BfdConfig>,
    /// The host's secret holding the TCP MD5 password (`password-ref`).
    pub password_ref: Option<String>,
    /// That password (RFC 2385), once read ([`BgpPlan::with_secrets`]).
    pub md5: Option<Md5Password>,
    /// BFD authentication as the object asks for it (the secret's name, type, key id).
    pub bfd_auth_ref: Option<contiv_model::BgpBfdAuth>,
    /// Its key, once read ([`BgpPlan::with_bfd_keys`]); `Debug` hides the secret.
    pub bfd_auth: Option<bgp_speaker::bfd::AuthKey>,
}

impl BgpPlan {
    /// Whether any neighbor runs BFD.
    pub fn uses_bfd(&self) -> bool {
        self.neighbors.values().any(|n| n.bfd.is_some())
    }

    /// Whether going from `self` to `next` needs a new speaker (the neighbors alone can
    /// change on a running one).
    pub fn needs_restart(&self, next: &BgpPlan) -> bool {
        self.asn != next.asn
            || self.router_id != next.router_id
            || self.communities != next.communities
            || self.large_communities != next.large_communities
            || self.graceful_restart != next.graceful_restart
    }
}

/// Why a `Bgp` object cannot be carried out on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The object itself is wrong (netmaster refuses such objects; one stored before a
    /// rule existed can still arrive).
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The MD5 password a neighbor refers to is not usable on this host.
    #[error("neighbor {neighbor}: password-ref {name:?}: {problem}")]
    Secret {
        neighbor: IpAddr,
        name: String,
        problem: SecretError,
    },
    /// The BFD authentication key a neighbor refers to is not usable on this host.
    #[error("neighbor {neighbor}: bfd-auth secret-ref {name:?}: {problem}")]
    BfdSecret {
        neighbor: IpAddr,
        name: String,
        problem: SecretError,
    },
}

/// What is wrong with a secret file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{path} does not exist: put the secret there (mode 0600, owned by root)")]
    Missing { path: String },
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is readable by every user (mode {mode:o}); refusing it: chmod 600 {path}")]
    WorldReadable { path: String, mode: u32 },
    #[error("{path}: {reason}")]
    BadPassword { path: String, reason: String },
}

/// The BFD timers of a spec (used by the neighbors that run BFD).
fn bfd_config(t: BfdTimers) -> BfdConfig {
    let interval = Duration::from_millis(u64::from(t.interval_ms));
    BfdConfig {
        desired_min_tx: interval,
        required_min_rx: interval,
        detect_mult: t.multiplier,
    }
}

/// Reads a `Bgp` object: parsed by the model ([`BgpSpec`], the same parse netmaster
/// validated it with). Pure: the neighbors' MD5 passwords are read afterwards, by
/// [`BgpPlan::with_secrets`].
pub fn bgp_plan(b: &contiv_model::Bgp) -> Result<BgpPlan, PlanError> {
    Ok(plan_of(&BgpSpec::parse(b)?))
}

impl BgpPlan {
    /// The plan with every `password-ref` resolved by `md5`.
    pub fn with_passwords(
        mut self,
        md5: impl Fn(&str) -> Result<Md5Password, SecretError>,
    ) -> Result<BgpPlan, PlanError> {
        for (addr, n) in self.neighbors.iter_mut() {
            if let Some(name) = &n.password_ref {
                n.md5 = Some(md5(name).map_err(|problem| PlanError::Secret {
                    neighbor: *addr,
                    name: name.clone(),
                    problem,
                })?);
            }
        }
        Ok(self)
    }
}

impl BgpPlan {
    /// The plan with every `bfd-auth` resolved to its key: `read` gives the secret's
    /// bytes; an empty one, or one longer than the type's digest, is refused.
    pub fn with_bfd_keys(
        mut self,
        read: impl Fn(&str) -> Result<Vec<u8>, SecretError>,
    ) -> Result<BgpPlan, PlanError> {
        use bgp_speaker::bfd::{AuthKey, AuthType};
        for (addr, n) in self.neighbors.iter_mut() {
            let Some(a) = &n.bfd_auth_ref else {
                continue;
            };
            let problem = |problem| PlanError::BfdSecret {
                neighbor: *addr,
                name: a.secret_ref.clone(),
                problem,
            };
            let secret = read(&a.secret_ref).map_err(problem)?;
            let auth_type = match a.auth_type {
                contiv_model::BfdAuthType::KeyedMd5 => AuthType::KeyedMd5,
                contiv_model::BfdAuthType::MeticulousKeyedMd5 => AuthType::MeticulousKeyedMd5,
                contiv_model::BfdAuthType::KeyedSha1 => AuthType::KeyedSha1,
                contiv_model::BfdAuthType::MeticulousKeyedSha1 => AuthType::MeticulousKeyedSha1,
            };
            let key = AuthKey::new(auth_type, a.key_id, secret).map_err(|e| {
                problem(SecretError::BadPassword {
                    path: a.secret_ref.clone(),
                    reason: e.to_string(),
                })
            })?;
            n.bfd_auth = Some(key);
        }
        Ok(self)
    }
}

/// The plan of a parsed `Bgp` object (passwords not read yet).
pub fn plan_of(spec: &BgpSpec) -> BgpPlan {
    let bfd = bfd_config(spec.bfd_timers);
    let neighbors = spec
        .neighbors
        .iter()
        .map(|n| {
            (
                n.address,
                PlanNeighbor {
                    asn: n.asn,
                    bfd: n.bfd.then_some(bfd),
                    password_ref: n.password_ref.clone(),
                    md5: None,
                    bfd_auth_ref: n.bfd_auth.clone(),
                    bfd_auth: None,
                },
            )
        })
        .collect();
    let router_net = IpNet::V4(spec.router_net);
    BgpPlan {
        asn: spec.asn,
        router_id: spec.router_id(),
        router_net: router_net.trunc(),
        router_net_full: router_net,
        neighbors,
        communities: spec
            .communities
            .iter()
            .map(|(a, v)| Community::new(*a, *v))
            .collect(),
        large_communities: spec
            .large_communities
            .iter()
            .map(|(global, local1, local2)| LargeCommunity {
                global: *global,
                local1: *local1,
                local2: *local2,
            })
            .collect(),
        graceful_restart: spec.graceful_restart,
        advertise: match &spec.advertise {
            AdvertiseSpec::PerEndpoint => AdvertiseMode::PerEndpoint,
            AdvertiseSpec::NetworkSubnet => AdvertiseMode::NetworkSubnets,
            AdvertiseSpec::HostBlock(block) => AdvertiseMode::HostBlocks(vec![IpNet::V4(*block)]),
        },
        guard: spec.guard.clone(),
    }
}

impl BgpPlan {
    /// Whether the sessions' protections (max-prefix, GTSM) differ: every neighbor is
    /// added again then (the default route and the host's subnets act on the FIB only).
    pub fn sessions_guard_changed(&self, next: &BgpPlan) -> bool {
        self.guard.max_prefix != next.guard.max_prefix
            || self.guard.ttl_security != next.guard.ttl_security
    }

    /// The speaker's policy for a neighbor: every route is accepted by the speaker (the
    /// import policy acts between the speaker and the kernel, `calc::import`, so an
    /// intent change re-evaluates routes without touching sessions), up to the
    /// max-prefix limit, above which the session closes with Cease / Maximum Number of
    /// Prefixes Reached and comes back after [`MAX_PREFIX_RESTART`].
    pub fn neighbor_policy(&self) -> bgp::policy::NeighborPolicy {
        bgp::policy::NeighborPolicy {
            import: Some(bgp::policy::Policy::accept_all()),
            export: None,
            max_prefix: Some(bgp::policy::MaxPrefix {
                limit: self.guard.max_prefix,
                warning_only: false,
                restart_after: Some(MAX_PREFIX_RESTART),
            }),
        }
    }

    /// The TTL handling of a session with a neighbor of AS `asn`: GTSM (TTL 255 sent,
    /// only 255 accepted: a directly connected peer) for eBGP unless `ttl-security` is
    /// off.
    pub fn ttl_mode(&self, asn: u32) -> bgp_speaker::transport::TtlMode {
        if self.guard.ttl_security && asn != self.asn {
            bgp_speaker::transport::TtlMode::Gtsm { hops: 0 }
        } else {
            bgp_speaker::transport::TtlMode::Default
        }
    }
}

/// How long a session closed for max-prefix stays down before it is tried again.
pub const MAX_PREFIX_RESTART: Duration = Duration::from_secs(60);
