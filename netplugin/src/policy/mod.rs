//! Policy enforcement: Contiv's endpoint-group policies, tenant isolation and source
//! verification as an nftables ruleset of ours.
//!
//! - [`PolicyView`] reads what policy needs from the intent mirror, once per intent
//!   change: the rules of every group's policies (parsed and ordered by
//!   `contiv_model::policy`, the one definition of the semantics, which netmaster's
//!   `policy explain` uses too), the addresses of every group's endpoints across the
//!   fabric, and the tenants' subnets.
//! - [`compile`] is pure: that view and the host's endpoints → a [`nft::Ruleset`].
//! - [`nft`] is the ruleset as nftables objects, the transactions that turn one
//!   ruleset into another (or write one whole over whatever is there), and their text.
//! - [`driver`] runs a transaction through `nft -f -` (one atomic kernel transaction)
//!   in the host's namespace and reads our tables back; [`driver::MemoryNft`] is its
//!   in-memory fake.
//!
//! The manager (`crate::managers::PolicyManager`) applies the difference after each
//! change and writes the whole ruleset at each resync.
//!
//! ## Why `nft -f -` with nftables' own syntax
//! A change must be one atomic transaction; `nft -f` commits a whole script as one
//! netlink batch, and `nft` is the nftables project's own front end, kept in step with
//! the kernel. The crates over nftables' netlink API (`rustables`, `nftnl`) are either
//! bindings to libnftnl or young and thinly maintained, and lack concatenations and
//! verdict maps we need; the `nftables` crate drives the same `nft` binary through its
//! JSON syntax, which adds a schema that trails nft's. We write the native syntax
//! (readable in tests and in `nft list`), every name in it is ours (derived by hash
//! from object keys, never a user string), and read back with `nft -j`.

pub mod compile;
pub mod driver;
pub mod nft;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use contiv_model::policy::{self as semantics, Resolve, RuleSpec};
use contiv_model::{Endpoint, EndpointGroup, Network, Object, Rule};
use ipnet::IpNet;

pub use compile::{LocalEndpoint, compile};

use crate::intent::Mirror;

/// `(tenant, name)`.
pub type Key = (String, String);

/// What policy needs of the intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyView {
    /// The intent revision it was read at.
    pub revision: i64,
    /// `(tenant, network)` → subnet.
    pub networks: BTreeMap<Key, IpNet>,
    /// `(tenant, group)` → the rules of the group's policies, in order (empty: none).
    pub groups: BTreeMap<Key, Arc<Vec<RuleSpec>>>,
    /// `(tenant, group)` → the addresses of the group's endpoints, on every host.
    pub members: BTreeMap<Key, BTreeSet<IpAddr>>,
    /// Rules that do not parse (netmaster refuses them; kept to be reported).
    pub errors: Vec<String>,
}

impl PolicyView {
    pub fn from_mirror(m: &Mirror) -> PolicyView {
        let mut v = PolicyView {
            revision: m.revision,
            ..PolicyView::default()
        };
        for n in m.list::<Network>(Network::PLURAL) {
            if let Ok(s) = contiv_model::validate::parse_subnet("subnet", &n.subnet) {
                v.networks
                    .insert((n.tenant_name, n.network_name), IpNet::from(s.net));
            }
        }
        let mut by_policy: BTreeMap<Key, Vec<RuleSpec>> = BTreeMap::new();
        for r in m.list::<Rule>(Rule::PLURAL) {
            match RuleSpec::parse(&r) {
                Ok(spec) => by_policy
                    .entry((r.tenant_name.clone(), r.policy_name.clone()))
                    .or_default()
                    .push(spec),
                Err(e) => v.errors.push(format!("rule {}: {e}", Object::key(&r))),
            }
        }
        for g in m.list::<EndpointGroup>(EndpointGroup::PLURAL) {
            let mut rules: Vec<RuleSpec> = g
                .policies
                .iter()
                .filter_map(|p| by_policy.get(&(g.tenant_name.clone(), p.clone())))
                .flatten()
                .cloned()
                .collect();
            semantics::order(&mut rules);
            v.groups
                .insert((g.tenant_name, g.group_name), Arc::new(rules));
        }
        for e in m.list::<Endpoint>(Endpoint::PLURAL) {
            if e.service_name.is_empty() {
                continue;
            }
            let set = v
                .members
                .entry((e.tenant_name.clone(), e.service_name.clone()))
                .or_default();
            for a in &e.ip_address {
                let addr = a
                    .parse::<IpNet>()
                    .map(|n| n.addr())
                    .or_else(|_| a.parse::<IpAddr>());
                if let Ok(addr) = addr {
                    set.insert(addr);
                }
            }
        }
        v
    }

    /// The rules of a group (empty when it has no policy or does not exist).
    pub fn rules(&self, tenant: &str, group: &str) -> &[RuleSpec] {
        self.groups
            .get(&(tenant.to_string(), group.to_string()))
            .map(|r| r.as_slice())
            .unwrap_or(&[])
    }
}

impl Resolve for PolicyView {
    fn in_group(&self, tenant: &str, group: &str, ip: IpAddr) -> bool {
        self.members
            .get(&(tenant.to_string(), group.to_string()))
            .is_some_and(|m| m.contains(&ip))
    }
    fn network_subnet(&self, tenant: &str, network: &str) -> Option<IpNet> {
        self.networks
            .get(&(tenant.to_string(), network.to_string()))
            .copied()
    }
    fn tenant_of(&self, ip: IpAddr) -> Option<String> {
        self.networks
            .iter()
            .filter(|(_, s)| s.contains(&ip))
            .max_by_key(|(_, s)| s.prefix_len())
            .map(|((t, _), _)| t.clone())
    }
}
