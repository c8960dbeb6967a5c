//! The speaker's TOML configuration: parsing, validation and the difference between two
//! versions.
//!
//! ```toml
//! originate = ["10.10.0.0/24"]
//!
//! [global]
//! asn = 65001
//! router_id = "10.0.0.1"
//! families = ["ipv4-unicast", "ipv6-unicast"]   # the default
//! listen = { addresses = ["0.0.0.0", "::"], port = 179 }   # the default
//!
//! [[neighbors]]
//! address = "10.0.0.2"
//! peer_asn = 65002
//! description = "tor-1"
//! md5_password_file = "tor-1.key"   # relative to the config file
//! ttl_security = 0                  # GTSM; 0 = directly connected
//! add_path = { ipv4-unicast = "both" }
//! graceful_restart = { enabled = true }
//! import_policy = "from-tor"
//! bfd = true
//! bfd_auth = { type = "meticulous-keyed-sha1", key_id = 1, secret_file = "tor-1.bfd" }
//!
//! [[neighbors]]
//! range = "10.1.1.0/24"             # dynamic neighbors
//! allowed_asns = [65010, 65011]
//!
//! [policies]   # kept as a table; the policy module interprets it
//! ```
//!
//! Parsing rejects unknown fields. Validation reports every problem it finds at once,
//! each naming the neighbor (or `global`, `originate`) and the field. Defaults are
//! resolved during validation (a neighbor's families default to the global ones,
//! keepalive to a third of the hold time, and so on), so [`diff`] compares what is in
//! effect, not what was written.
//!
//! Not interpreted here: the bodies of `import_policy` / `export_policy`; they are names
//! into [`Config::policies`], which the policy module reads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use bgp::types::Family;
use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::transport::{BGP_PORT, Md5Password, TransportOpts, TtlMode};

/// `AS_TRANS` (RFC 6793): never a real neighbor's or our own AS.
pub const AS_TRANS: u32 = 23456;
/// Default hold time (seconds, RFC 4271 suggests 90).
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default ConnectRetry time (seconds, RFC 4271 suggests 120).
pub const DEFAULT_CONNECT_RETRY: u16 = 120;
/// Default graceful-restart restart time (seconds).
pub const DEFAULT_RESTART_TIME: u16 = 120;
/// Default time stale routes are kept after a peer restarts (seconds).
pub const DEFAULT_STALE_TIME: u32 = 360;
/// The restart time field of the graceful-restart capability has 12 bits (RFC 4724).
pub const MAX_RESTART_TIME: u16 = 4095;

// ---------------------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------------------

/// A validated speaker configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub global: Global,
    /// In file order; keys are unique.
    pub neighbors: Vec<Neighbor>,
    /// Prefixes the speaker announces itself.
    pub originate: Vec<IpNet>,
    /// The `[policies]` section, uninterpreted.
    pub policies: toml::Table,
}

/// Speaker-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen: Listen,
    /// The families the speaker runs at all.
    pub families: BTreeSet<Family>,
    /// RFC 8212: eBGP neighbors without an import (export) policy have nothing accepted
    /// (sent). On by default; `ebgp_requires_policy = false` opts out.
    pub ebgp_requires_policy: bool,
    /// Re-advertise learned best paths to the other neighbors (a transit router or a
    /// route server); off by default.
    pub export_learned: bool,
}

/// Where incoming sessions are accepted. No addresses: the speaker only connects out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addresses: Vec<IpAddr>,
    pub port: u16,
}

/// How a neighbor is identified: one address, or a range of dynamic neighbors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NeighborKey {
    Address(IpAddr),
    Range(IpNet),
}

impl NeighborKey {
    /// Whether a connection from `ip` belongs to this neighbor.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            NeighborKey::Address(a) => *a == ip,
            NeighborKey::Range(r) => r.contains(&ip),
        }
    }

    /// The key as a prefix (a host prefix for an address), e.g. for MD5 keys.
    pub fn prefix(&self) -> IpNet {
        match self {
            NeighborKey::Address(a) => IpNet::from(*a),
            NeighborKey::Range(r) => *r,
        }
    }

    fn is_ipv4(&self) -> bool {
        match self {
            NeighborKey::Address(a) => a.is_ipv4(),
            NeighborKey::Range(r) => r.addr().is_ipv4(),
        }
    }
}

impl fmt::Display for NeighborKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighborKey::Address(a) => write!(f, "{a}"),
            NeighborKey::Range(r) => write!(f, "{r}"),
        }
    }
}

/// The AS a neighbor may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAs {
    /// Exactly this AS (`peer_asn`).
    Exact(u32),
    /// Any of these (`allowed_asns`, range neighbors only).
    AnyOf(BTreeSet<u32>),
}

impl PeerAs {
    pub fn allows(&self, asn: u32) -> bool {
        match self {
            PeerAs::Exact(a) => *a == asn,
            PeerAs::AnyOf(set) => set.contains(&asn),
        }
    }
}

/// ADD-PATH (RFC 7911) direction for one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddPathMode {
    Send,
    Receive,
    Both,
}

impl AddPathMode {
    pub fn sends(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
    pub fn receives(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
}

/// Graceful restart (RFC 4724) and its notification extension (RFC 8538).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestart {
    pub enabled: bool,
    /// Seconds the peer should wait for us to come back (at most [`MAX_RESTART_TIME`]).
    pub restart_time: u16,
    /// Seconds we keep a restarting peer's routes as stale.
    pub stale_time: u32,
    /// Graceful restart also on NOTIFICATION and hold timer expiry (RFC 8538).
    pub notification: bool,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart {
            enabled: false,
            restart_time: DEFAULT_RESTART_TIME,
            stale_time: DEFAULT_STALE_TIME,
            notification: true,
        }
    }
}

/// One neighbor (or range of dynamic neighbors), with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub key: NeighborKey,
    pub peer_as: PeerAs,
    pub description: Option<String>,
    /// Source address of the session.
    pub local_address: Option<IpAddr>,
    /// Only accept, never connect (always true for ranges).
    pub passive: bool,
    /// Seconds; 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Seconds; 0 when the hold time is 0, otherwise 1 up to below the hold time.
    pub keepalive: u16,
    /// Seconds between connection attempts.
    pub connect_retry: u16,
    pub md5_password: Option<Md5Password>,
    /// GTSM hops (see [`TtlMode::Gtsm`]).
    pub ttl_security: Option<u8>,
    /// Outgoing TTL for an eBGP neighbor that is not directly connected.
    pub ebgp_multihop: Option<u8>,
    pub families: BTreeSet<Family>,
    pub add_path: BTreeMap<Family, AddPathMode>,
    pub graceful_restart: GracefulRestart,
    /// Policy names, applied in order.
    pub import_policy: Vec<String>,
    pub export_policy: Vec<String>,
    /// Most prefixes accepted from the neighbor.
    pub max_prefix: Option<u32>,
    /// Whether to run BFD with the neighbor (started with the BGP session).
    pub bfd: bool,
    /// BFD transmit/receive interval (`bfd_interval`, ms, default 300) and detection
    /// multiplier (`bfd_multiplier`, default 3).
    pub bfd_interval_ms: u32,
    pub bfd_multiplier: u8,
    /// BFD authentication (`bfd_auth`: type, key id and `secret_file`, relative to the
    /// configuration file); `Debug` hides the key.
    pub bfd_auth: Option<crate::bfd::AuthKey>,
}

impl Neighbor {
    /// Whether sessions with this neighbor are eBGP. A range is eBGP unless our own AS is
    /// among its allowed ASes.
    pub fn is_ebgp(&self, local_asn: u32) -> bool {
        !self.peer_as.allows(local_asn)
    }

    /// The socket options for sessions with this neighbor: MD5 password, source address,
    /// and TTL: GTSM if configured, else the multihop TTL, else 1 for eBGP, else the
    /// kernel default.
    pub fn transport_opts(&self, local_asn: u32) -> TransportOpts {
        let ttl = match (self.ttl_security, self.ebgp_multihop) {
            (Some(hops), _) => TtlMode::Gtsm { hops },
            (None, Some(ttl)) => TtlMode::Fixed(ttl),
            (None, None) if self.is_ebgp(local_asn) => TtlMode::Fixed(1),
            (None, None) => TtlMode::Default,
        };
        TransportOpts {
            md5_password: self.md5_password.clone(),
            ttl,
            local_addr: self.local_address,
            ..TransportOpts::default()
        }
    }
}

impl Config {
    /// Parses and validates a configuration. Relative `md5_password_file` paths are
    /// resolved against the current directory.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        parse(text, "config", None)
    }

    /// Reads, parses and validates a configuration file. Relative `md5_password_file`
    /// paths are resolved against the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&text, &path.display().to_string(), path.parent())
    }

    /// The neighbor with exactly this key.
    pub fn neighbor(&self, key: &NeighborKey) -> Option<&Neighbor> {
        self.neighbors.iter().find(|n| n.key == *key)
    }

    /// The neighbor a connection from `ip` belongs to: the neighbor with that address, or
    /// else the narrowest range that contains it.
    pub fn neighbor_for(&self, ip: IpAddr) -> Option<&Neighbor> {
        self.neighbor(&NeighborKey::Address(ip)).or_else(|| {
            self.neighbors
                .iter()
                .filter(|n| matches!(n.key, NeighborKey::Range(_)) && n.key.contains(ip))
                .max_by_key(|n| n.key.prefix().prefix_len())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing {origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("{origin} is invalid:\n{}", problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The validation problems, if that is what went wrong.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One validation problem: where (`global`, `neighbor 10.0.0.2`, `neighbors[3]`,
/// `originate`), which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.field, self.reason)
    }
}

// ---------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: RawGlobal,
    #[serde(default)]
    neighbors: Vec<RawNeighbor>,
    #[serde(default)]
    originate: Vec<IpNet>,
    #[serde(default)]
    policies: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    asn: u32,
    router_id: Ipv4Addr,
    #[serde(default)]
    listen: RawListen,
    #[serde(default = "default_families")]
    families: Vec<FamilyName>,
    #[serde(default = "yes")]
    ebgp_requires_policy: bool,
    #[serde(default)]
    export_learned: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    #[serde(default = "default_listen_addresses")]
    addresses: Vec<IpAddr>,
    #[serde(default = "default_port")]
    port: u16,
}

impl Default for RawListen {
    fn default() -> Self {
        RawListen {
            addresses: default_listen_addresses(),
            port: BGP_PORT,
        }
    }
}

fn default_listen_addresses() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    ]
}

fn default_port() -> u16 {
    BGP_PORT
}

fn default_families() -> Vec<FamilyName> {
    vec![FamilyName::Ipv4Unicast, FamilyName::Ipv6Unicast]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum FamilyName {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl From<FamilyName> for Family {
    fn from(f: FamilyName) -> Family {
        match f {
            FamilyName::Ipv4Unicast => Family::IPV4_UNICAST,
            FamilyName::Ipv6Unicast => Family::IPV6_UNICAST,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbor {
    address: Option<IpAddr>,
    range: Option<IpNet>,
    peer_asn: Option<u32>,
    #[serde(default)]
    allowed_asns: Vec<u32>,
    description: Option<String>,
    local_address: Option<IpAddr>,
    passive: Option<bool>,
    hold_time: Option<u16>,
    keepalive: Option<u16>,
    connect_retry: Option<u16>,
    md5_password: Option<String>,
    md5_password_file: Option<PathBuf>,
    ttl_security: Option<u8>,
    ebgp_multihop: Option<u8>,
    families: Option<Vec<FamilyName>>,
    #[serde(default)]
    add_path: BTreeMap<FamilyName, AddPathMode>,
    #[serde(default)]
    graceful_restart: RawGracefulRestart,
    #[serde(default)]
    import_policy: OneOrMany,
    #[serde(default)]
    export_policy: OneOrMany,
    max_prefix: Option<u32>,
    #[serde(default)]
    bfd: bool,
    bfd_interval: Option<u32>,
    bfd_multiplier: Option<u8>,
    bfd_auth: Option<RawBfdAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBfdAuth {
    #[serde(rename = "type")]
    auth_type: Option<String>,
    key_id: Option<u8>,
    secret_file: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGracefulRestart {
    #[serde(default)]
    enabled: bool,
    restart_time: Option<u16>,
    stale_time: Option<u32>,
    notification: Option<bool>,
}

/// A policy name or a list of names.
#[derive(Default)]
struct OneOrMany(Vec<String>);

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a policy name or a list of policy names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(OneOrMany(names))
            }
        }
        deserializer.deserialize_any(Names)
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

fn parse(text: &str, origin: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        source: Box::new(e),
    })?;
    let mut v = Validator {
        problems: Vec::new(),
        base,
    };
    let config = v.config(raw);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            origin: origin.to_string(),
            problems: v.problems,
        })
    }
}

struct Validator<'a> {
    problems: Vec<Problem>,
    base: Option<&'a Path>,
}

impl Validator<'_> {
    fn problem(&mut self, at: &str, field: &'static str, reason: impl Into<String>) {
        self.problems.push(Problem {
            at: at.to_string(),
            field,
            reason: reason.into(),
        });
    }

    fn asn(&mut self, at: &str, field: &'static str, asn: u32) {
        if asn == 0 {
            self.problem(at, field, "AS 0 is reserved");
        } else if asn == AS_TRANS {
            self.problem(at, field, format!("AS {AS_TRANS} (AS_TRANS) is reserved"));
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let global = self.global(raw.global);
        let mut neighbors: Vec<Neighbor> = Vec::with_capacity(raw.neighbors.len());
        for (i, rn) in raw.neighbors.into_iter().enumerate() {
            if let Some(n) = self.neighbor(i, rn, &global) {
                if neighbors.iter().any(|o| o.key == n.key) {
                    let field = match n.key {
                        NeighborKey::Address(_) => "address",
                        NeighborKey::Range(_) => "range",
                    };
                    self.problem(
                        &format!("neighbor {}", n.key),
                        field,
                        "defined more than once",
                    );
                } else {
                    neighbors.push(n);
                }
            }
        }
        let mut originate: Vec<IpNet> = Vec::with_capacity(raw.originate.len());
        for p in raw.originate {
            if p != p.trunc() {
                self.problem(
                    "originate",
                    "originate",
                    format!("{p} has host bits set; write {}", p.trunc()),
                );
            } else if !global.families.contains(&Family::of(&p)) {
                self.problem(
                    "originate",
                    "originate",
                    format!("{p}: {} is not in global.families", Family::of(&p)),
                );
            } else if originate.contains(&p) {
                self.problem(
                    "originate",
                    "originate",
                    format!("{p} is listed more than once"),
                );
            } else {
                originate.push(p);
            }
        }
        Config {
            global,
            neighbors,
            originate,
            policies: raw.policies,
        }
    }

    fn global(&mut self, raw: RawGlobal) -> Global {
        let at = "global";
        self.asn(at, "asn", raw.asn);
        let id = raw.router_id;
        if id.is_unspecified() || id.is_broadcast() || id.is_multicast() {
            self.problem(at, "router_id", format!("{id} is not a usable router id"));
        }
        let mut seen = BTreeSet::new();
        for a in &raw.listen.addresses {
            if !seen.insert(*a) {
                self.problem(
                    at,
                    "listen.addresses",
                    format!("{a} is listed more than once"),
                );
            }
        }
        if raw.families.is_empty() {
            self.problem(at, "families", "at least one family is needed");
        }
        Global {
            asn: raw.asn,
            router_id: id,
            listen: Listen {
                addresses: raw.listen.addresses,
                port: raw.listen.port,
            },
            families: raw.families.into_iter().map(Family::from).collect(),
            ebgp_requires_policy: raw.ebgp_requires_policy,
            export_learned: raw.export_learned,
        }
    }

    fn neighbor(&mut self, index: usize, raw: RawNeighbor, global: &Global) -> Option<Neighbor> {
        let key = match (raw.address, raw.range) {
            (Some(a), None) => NeighborKey::Address(a),
            (None, Some(r)) => NeighborKey::Range(r),
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("neighbors[{index}]"),
                    "address",
                    "address and range exclude each other",
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    &format!("neighbors[{index}]"),
                    "address",
                    "one of address or range is required",
                );
                return None;
            }
        };
        let at = format!("neighbor {key}");
        let at = at.as_str();
        let is_range = matches!(key, NeighborKey::Range(_));

        match key {
            NeighborKey::Address(a) => {
                if a.is_unspecified() || a.is_multicast() || a == IpAddr::V4(Ipv4Addr::BROADCAST) {
                    self.problem(at, "address", format!("{a} is not a unicast address"));
                }
            }
            NeighborKey::Range(r) => {
                if r != r.trunc() {
                    self.problem(
                        at,
                        "range",
                        format!("{r} has host bits set; write {}", r.trunc()),
                    );
                }
            }
        }

        // The peer's AS.
        let peer_as = match (raw.peer_asn, raw.allowed_asns.is_empty(), is_range) {
            (Some(asn), true, _) => {
                self.asn(at, "peer_asn", asn);
                PeerAs::Exact(asn)
            }
            (None, false, true) => {
                for &asn in &raw.allowed_asns {
                    self.asn(at, "allowed_asns", asn);
                }
                PeerAs::AnyOf(raw.allowed_asns.iter().copied().collect())
            }
            (Some(_), false, true) => {
                self.problem(
                    at,
                    "allowed_asns",
                    "peer_asn and allowed_asns exclude each other",
                );
                PeerAs::AnyOf(BTreeSet::new())
            }
            (_, false, false) => {
                self.problem(
                    at,
                    "allowed_asns",
                    "only range neighbors take allowed_asns; use peer_asn",
                );
                PeerAs::AnyOf(BTreeSet::new())
            }
            (None, true, false) => {
                self.problem(at, "peer_asn", "peer_asn is required");
                PeerAs::AnyOf(BTreeSet::new())
            }
            (None, true, true) => {
                self.problem(at, "peer_asn", "a range needs peer_asn or allowed_asns");
                PeerAs::AnyOf(BTreeSet::new())
            }
        };

        if let Some(local) = raw.local_address {
            if local.is_ipv4() != key.is_ipv4() {
                self.problem(
                    at,
                    "local_address",
                    format!("{local} is not of the neighbor's address family"),
                );
            } else if local.is_unspecified() || local.is_multicast() {
                self.problem(
                    at,
                    "local_address",
                    format!("{local} is not a unicast address"),
                );
            }
        }

        // Passive, and whether anything listens for it.
        let passive = match (raw.passive, is_range) {
            (Some(false), true) => {
                self.problem(
                    at,
                    "passive",
                    "dynamic neighbors only accept connections; drop passive = false",
                );
                true
            }
            (p, _) => p.unwrap_or(is_range),
        };
        if passive
            && !global
                .listen
                .addresses
                .iter()
                .any(|a| a.is_ipv4() == key.is_ipv4())
        {
            let family = if key.is_ipv4() { "IPv4" } else { "IPv6" };
            let what = if is_range {
                "a range"
            } else {
                "a passive neighbor"
            };
            self.problem(
                at,
                "passive",
                format!("{what} needs an {family} address in global.listen.addresses"),
            );
        }

        // Timers.
        let hold_time = raw.hold_time.unwrap_or(DEFAULT_HOLD_TIME);
        if hold_time == 1 || hold_time == 2 {
            self.problem(
                at,
                "hold_time",
                format!("{hold_time} is neither 0 nor at least 3 seconds"),
            );
        }
        let keepalive = match raw.keepalive {
            None => hold_time / 3,
            Some(k) if hold_time == 0 && k != 0 => {
                self.problem(
                    at,
                    "keepalive",
                    format!("{k}: with hold_time 0 no keepalives are sent; use 0"),
                );
                0
            }
            Some(0) if hold_time != 0 => {
                self.problem(
                    at,
                    "keepalive",
                    format!("0: with hold_time {hold_time} keepalives are needed"),
                );
                0
            }
            Some(k) if hold_time != 0 && k >= hold_time => {
                self.problem(
                    at,
                    "keepalive",
                    format!("{k} is not below hold_time {hold_time}"),
                );
                k
            }
            Some(k) => k,
        };
        let connect_retry = raw.connect_retry.unwrap_or(DEFAULT_CONNECT_RETRY);
        if connect_retry == 0 {
            self.problem(at, "connect_retry", "must be at least 1 second");
        }

        // MD5.
        let password = match (raw.md5_password, raw.md5_password_file) {
            (Some(_), Some(_)) => {
                self.problem(
                    at,
                    "md5_password",
                    "md5_password and md5_password_file exclude each other",
                );
                None
            }
            (Some(p), None) => Some((p, "md5_password")),
            (None, Some(file)) => {
                let path = match self.base {
                    Some(base) if file.is_relative() => base.join(&file),
                    _ => file,
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some((
                        text.trim_end_matches(['\r', '\n']).to_string(),
                        "md5_password_file",
                    )),
                    Err(e) => {
                        self.problem(
                            at,
                            "md5_password_file",
                            format!("reading {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        let md5_password = password.and_then(|(p, field)| match Md5Password::new(p) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(at, field, e.to_string());
                None
            }
        });

        // TTL.
        if let Some(hops) = raw.ttl_security
            && hops == u8::MAX
        {
            self.problem(
                at,
                "ttl_security",
                "255 hops leaves no TTL floor; use 0 to 254",
            );
        }
        if let Some(ttl) = raw.ebgp_multihop {
            if raw.ttl_security.is_some() {
                self.problem(
                    at,
                    "ebgp_multihop",
                    "ttl_security and ebgp_multihop exclude each other",
                );
            }
            if ttl == 0 {
                self.problem(
                    at,
                    "ebgp_multihop",
                    "a TTL of 0 sends nothing; use 1 to 255",
                );
            }
            if peer_as == PeerAs::Exact(global.asn) {
                self.problem(
                    at,
                    "ebgp_multihop",
                    "applies to eBGP neighbors only; this one is iBGP",
                );
            }
        }

        // Families and ADD-PATH.
        let families: BTreeSet<Family> = match raw.families {
            Some(list) => list.into_iter().map(Family::from).collect(),
            None => global.families.clone(),
        };
        if families.is_empty() {
            self.problem(at, "families", "at least one family is needed");
        }
        for f in &families {
            if !global.families.contains(f) {
                self.problem(at, "families", format!("{f} is not in global.families"));
            }
        }
        let mut add_path = BTreeMap::new();
        for (name, mode) in raw.add_path {
            let f = Family::from(name);
            if !families.contains(&f) {
                self.problem(
                    at,
                    "add_path",
                    format!("{f} is not one of the neighbor's families"),
                );
            }
            add_path.insert(f, mode);
        }

        // Graceful restart.
        let gr_raw = raw.graceful_restart;
        let graceful_restart = GracefulRestart {
            enabled: gr_raw.enabled,
            restart_time: gr_raw.restart_time.unwrap_or(DEFAULT_RESTART_TIME),
            stale_time: gr_raw.stale_time.unwrap_or(DEFAULT_STALE_TIME),
            notification: gr_raw.notification.unwrap_or(true),
        };
        if graceful_restart.restart_time > MAX_RESTART_TIME {
            self.problem(
                at,
                "graceful_restart.restart_time",
                format!(
                    "{} is above {MAX_RESTART_TIME} seconds",
                    graceful_restart.restart_time
                ),
            );
        }
        if graceful_restart.stale_time == 0 {
            self.problem(
                at,
                "graceful_restart.stale_time",
                "must be at least 1 second",
            );
        }

        // Policies, max-prefix.
        let import_policy = raw.import_policy.into_vec();
        let export_policy = raw.export_policy.into_vec();
        if import_policy.iter().any(|n| n.trim().is_empty()) {
            self.problem(at, "import_policy", "a policy name is empty");
        }
        if export_policy.iter().any(|n| n.trim().is_empty()) {
            self.problem(at, "export_policy", "a policy name is empty");
        }
        if raw.max_prefix == Some(0) {
            self.problem(
                at,
                "max_prefix",
                "0 would refuse every route; leave it out for no limit",
            );
        }
        // BFD timers.
        for (field, set) in [
            ("bfd_interval", raw.bfd_interval.is_some()),
            ("bfd_multiplier", raw.bfd_multiplier.is_some()),
        ] {
            if set && !raw.bfd {
                self.problem(at, field, "only with bfd = true");
            }
        }
        let bfd_interval_ms = raw.bfd_interval.unwrap_or(300);
        if !(50..=60_000).contains(&bfd_interval_ms) {
            self.problem(at, "bfd_interval", "must be 50..=60000 milliseconds");
        }
        let bfd_multiplier = raw.bfd_multiplier.unwrap_or(3);
        if bfd_multiplier == 0 {
            self.problem(at, "bfd_multiplier", "must be 1..=255");
        }
        let bfd_auth = match raw.bfd_auth {
            None => None,
            Some(_) if !raw.bfd => {
                self.problem(at, "bfd_auth", "only with bfd = true");
                None
            }
            Some(a) => self.bfd_auth(at, a),
        };

        Some(Neighbor {
            key,
            peer_as,
            description: raw.description,
            local_address: raw.local_address,
            passive,
            hold_time,
            keepalive,
            connect_retry,
            md5_password,
            ttl_security: raw.ttl_security,
            ebgp_multihop: raw.ebgp_multihop,
            families,
            add_path,
            graceful_restart,
            import_policy,
            export_policy,
            max_prefix: raw.max_prefix,
            bfd: raw.bfd,
            bfd_interval_ms,
            bfd_multiplier,
            bfd_auth,
        })
    }

    /// The key of a `bfd_auth` table: its type (meticulous keyed SHA1 by default), key id
    /// (1 by default) and the contents of `secret_file` (one trailing newline ignored).
    fn bfd_auth(&mut self, at: &str, a: RawBfdAuth) -> Option<crate::bfd::AuthKey> {
        use crate::bfd::{AuthKey, AuthType};
        let auth_type = match a.auth_type.as_deref().map(str::parse::<AuthType>) {
            None => AuthType::MeticulousKeyedSha1,
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                self.problem(at, "bfd_auth.type", e.to_string());
                return None;
            }
        };
        let path = match self.base {
            Some(base) if a.secret_file.is_relative() => base.join(&a.secret_file),
            _ => a.secret_file,
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    at,
                    "bfd_auth.secret_file",
                    format!("reading {}: {e}", path.display()),
                );
                return None;
            }
        };
        let mut key = text.as_slice();
        key = key.strip_suffix(b"\n").unwrap_or(key);
        key = key.strip_suffix(b"\r").unwrap_or(key);
        match AuthKey::new(auth_type, a.key_id.unwrap_or(1), key.to_vec()) {
            Ok(k) => Some(k),
            Err(e) => {
                self.problem(at, "bfd_auth.secret_file", e.to_string());
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Diff
// ---------------------------------------------------------------------------------------

/// A neighbor setting, as named in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NeighborField {
    PeerAs,
    Description,
    LocalAddress,
    Passive,
    HoldTime,
    Keepalive,
    ConnectRetry,
    Md5Password,
    TtlSecurity,
    EbgpMultihop,
    Families,
    AddPath,
    GracefulRestart,
    ImportPolicy,
    ExportPolicy,
    MaxPrefix,
    Bfd,
}

impl NeighborField {
    /// Whether a change to this setting needs the neighbor's sessions reset to take
    /// effect. This is the one answer: [`diff`] and contiv-bgpd's reload plan both ask
    /// it.
    ///
    /// The speaker applies a neighbor's settings when its session starts (replacing a
    /// neighbor resets it) and keeps no pre-policy copy of what the peer sent, so every
    /// setting it runs per neighbor needs a reset: what goes into the OPEN (AS, hold
    /// time, ADD-PATH), the TCP connection (source address, MD5, TTL), the FSM's timers
    /// and passive mode, the policies and max-prefix (routes are imported and exported
    /// under new ones only on a new session) and BFD (started with the session). The
    /// others do not: the description, and the families and graceful restart, which the
    /// speaker does not take per neighbor (it offers IPv4 and IPv6 unicast on every
    /// session and runs graceful restart speaker-wide), so that a reset would not apply
    /// them either.
    pub fn needs_reset(self) -> bool {
        use NeighborField::*;
        match self {
            PeerAs | LocalAddress | Passive | HoldTime | Keepalive | ConnectRetry | Md5Password
            | TtlSecurity | EbgpMultihop | AddPath | ImportPolicy | ExportPolicy | MaxPrefix
            | Bfd => true,
            Description | Families | GracefulRestart => false,
        }
    }

    /// The field's name in the file.
    pub fn name(self) -> &'static str {
        use NeighborField::*;
        match self {
            PeerAs => "peer_asn",
            Description => "description",
            LocalAddress => "local_address",
            Passive => "passive",
            HoldTime => "hold_time",
            Keepalive => "keepalive",
            ConnectRetry => "connect_retry",
            Md5Password => "md5_password",
            TtlSecurity => "ttl_security",
            EbgpMultihop => "ebgp_multihop",
            Families => "families",
            AddPath => "add_path",
            GracefulRestart => "graceful_restart",
            ImportPolicy => "import_policy",
            ExportPolicy => "export_policy",
            MaxPrefix => "max_prefix",
            Bfd => "bfd",
        }
    }
}

/// How one neighbor that is in both versions changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborChange {
    pub key: NeighborKey,
    /// The settings that differ, in declaration order of [`NeighborField`].
    pub fields: Vec<NeighborField>,
}

impl NeighborChange {
    /// Whether the neighbor's sessions must be reset for the change to take effect.
    pub fn needs_reset(&self) -> bool {
        self.fields.iter().any(|f| f.needs_reset())
    }

    /// Whether routes must be re-evaluated against the neighbor's policies.
    pub fn policy_changed(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, NeighborField::ImportPolicy | NeighborField::ExportPolicy))
    }
}

/// What changed between two configurations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// Our AS or router id changed: every session must be reset.
    pub reset_all: bool,
    /// Listen addresses or port changed: the listeners must be rebound.
    pub listen_changed: bool,
    /// The global families changed (neighbors whose families follow them are also listed
    /// in `changed`).
    pub families_changed: bool,
    /// Neighbors only in the new version (an address change is a removal plus an addition).
    pub added: Vec<NeighborKey>,
    /// Neighbors only in the old version.
    pub removed: Vec<NeighborKey>,
    /// Neighbors in both versions whose settings differ.
    pub changed: Vec<NeighborChange>,
    pub originate_added: Vec<IpNet>,
    pub originate_removed: Vec<IpNet>,
    /// The `[policies]` section differs: every neighbor's routes must be re-evaluated.
    pub policies_changed: bool,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }

    /// The neighbors whose sessions must be reset (all old ones when `reset_all`), not
    /// counting removed ones.
    pub fn resets(&self) -> Vec<NeighborKey> {
        self.changed
            .iter()
            .filter(|c| c.needs_reset())
            .map(|c| c.key)
            .collect()
    }
}

/// Compares two configurations: which neighbors were added, removed or changed (and
/// whether each change needs a session reset), plus global, origination and policy
/// changes. Neighbor lists come out sorted by key.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let old_n: BTreeMap<NeighborKey, &Neighbor> =
        old.neighbors.iter().map(|n| (n.key, n)).collect();
    let new_n: BTreeMap<NeighborKey, &Neighbor> =
        new.neighbors.iter().map(|n| (n.key, n)).collect();
    let added = new_n
        .keys()
        .filter(|k| !old_n.contains_key(k))
        .copied()
        .collect();
    let removed = old_n
        .keys()
        .filter(|k| !new_n.contains_key(k))
        .copied()
        .collect();
    let changed = old_n
        .iter()
        .filter_map(|(k, o)| {
            let n = new_n.get(k)?;
            let fields = neighbor_fields(o, n);
            (!fields.is_empty()).then_some(NeighborChange { key: *k, fields })
        })
        .collect();
    let old_o: BTreeSet<IpNet> = old.originate.iter().copied().collect();
    let new_o: BTreeSet<IpNet> = new.originate.iter().copied().collect();
    ConfigDiff {
        reset_all: old.global.asn != new.global.asn || old.global.router_id != new.global.router_id,
        listen_changed: old.global.listen != new.global.listen,
        families_changed: old.global.families != new.global.families,
        added,
        removed,
        changed,
        originate_added: new_o.difference(&old_o).copied().collect(),
        originate_removed: old_o.difference(&new_o).copied().collect(),
        policies_changed: old.policies != new.policies,
    }
}

fn neighbor_fields(o: &Neighbor, n: &Neighbor) -> Vec<NeighborField> {
    use NeighborField::*;
    // Destructured so that a new field cannot be forgotten here.
    let Neighbor {
        key: _,
        peer_as: _,
        description: _,
        local_address: _,
        passive: _,
        hold_time: _,
        keepalive: _,
        connect_retry: _,
        md5_password: _,
        ttl_security: _,
        ebgp_multihop: _,
        families: _,
        add_path: _,
        graceful_restart: _,
        import_policy: _,
        export_policy: _,
        max_prefix: _,
        bfd: _,
        bfd_interval_ms: _,
        bfd_multiplier: _,
        bfd_auth: _,
    } = o;
    let checks = [
        (PeerAs, o.peer_as != n.peer_as),
        (Description, o.description != n.description),
        (LocalAddress, o.local_address != n.local_address),
        (Passive, o.passive != n.passive),
        (HoldTime, o.hold_time != n.hold_time),
        (Keepalive, o.keepalive != n.keepalive),
        (ConnectRetry, o.connect_retry != n.connect_retry),
        (Md5Password, o.md5_password != n.md5_password),
        (TtlSecurity, o.ttl_security != n.ttl_security),
        (EbgpMultihop, o.ebgp_multihop != n.ebgp_multihop),
        (Families, o.families != n.families),
        (AddPath, o.add_path != n.add_path),
        (GracefulRestart, o.graceful_restart != n.graceful_restart),
        (ImportPolicy, o.import_policy != n.import_policy),
        (ExportPolicy, o.export_policy != n.export_policy),
        (MaxPrefix, o.max_prefix != n.max_prefix),
        (
            Bfd,
            (o.bfd, o.bfd_interval_ms, o.bfd_multiplier, &o.bfd_auth)
                != (n.bfd, n.bfd_interval_ms, n.bfd_multiplier, &n.bfd_auth),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(test)]
mod tests;
