//! Import and export policy, pure: matchers, actions, evaluation, the RFC 8212 default
//! for eBGP neighbors and a max-prefix counter. No I/O, no clock.
//!
//! A [`Policy`] is an ordered list of [`Term`]s and a default. Each term has conditions
//! (all given ones must hold; a list inside one condition is any-of), actions, and what
//! happens then: `accept`, `reject` or `continue` to the next term. Later terms see the
//! attributes as earlier `continue` terms left them. When no term accepts or rejects,
//! the policy's `default` decides (and an accepted route keeps the changes made so far).
//!
//! Policies deserialize from the speaker's `[policies]` table ([`Policies`]):
//!
//! ```toml
//! [from-tor]
//! default = "reject"
//!
//! [[from-tor.terms]]
//! name = "pods"
//! match = { prefix = ["10.0.0.0/8 ge 24 le 32", "fd00::/8 ge 64"], as_path = { first = [65000] } }
//! actions = { local_pref = 200, add_community = ["65001:100"] }
//! then = "accept"
//!
//! [[from-tor.terms]]
//! match.community = { any = ["65000:666", "blackhole"] }
//! then = "reject"
//! ```
//!
//! Several policies on one neighbor form a chain ([`apply_chain`]): each must accept, and
//! each sees the attributes the previous one produced. Prefix lists and community sets are
//! written inline in each term (no named sets).

mod matchers;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

pub use matchers::{AsPathMatch, AsPathPattern, NetMatch, PrefixEntry, SetMatch};

use matchers::{opt_strs, strs};

use crate::types::{Community, LargeCommunity, NextHop, PathAttrs};

/// Policies by name: the speaker's `[policies]` table.
pub type Policies = BTreeMap<String, Policy>;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub terms: Vec<Term>,
    /// What happens to a route no term accepted or rejected. Required in the
    /// configuration, so that nobody has to guess.
    pub default: DefaultAction,
}

/// A policy's final decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Accept,
    Reject,
}

/// What a matching term does after its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    Accept,
    Reject,
    /// Go on with the next term, with the attributes as changed.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// For logs only.
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub conditions: Match,
    #[serde(default)]
    pub actions: Actions,
    pub then: Then,
}

/// The conditions of a term; all given ones must hold. An absent condition holds; a
/// list is any-of, and an empty list matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub prefix: Option<Vec<PrefixEntry>>,
    pub as_path: Option<AsPathMatch>,
    pub community: Option<SetMatch<Community>>,
    pub large_community: Option<SetMatch<LargeCommunity>>,
    /// The route's next hop (its global address) is one of these addresses or prefixes.
    pub next_hop: Option<Vec<NetMatch>>,
    /// The route was learnt from (import) or is sent to (export) one of these.
    pub neighbor: Option<Vec<NetMatch>>,
    /// The neighbor is external (`true`) or internal (`false`).
    pub ebgp: Option<bool>,
}

impl Match {
    pub fn matches(&self, ctx: &RouteContext<'_>, attrs: &PathAttrs) -> bool {
        fn any<T>(list: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
            list.as_ref().is_none_or(|l| l.iter().any(f))
        }
        any(&self.prefix, |e| e.matches(&ctx.prefix))
            && self
                .as_path
                .as_ref()
                .is_none_or(|m| m.matches(&attrs.as_path))
            && (self.community.as_ref()).is_none_or(|m| m.matches(&attrs.communities))
            && (self.large_community.as_ref()).is_none_or(|m| m.matches(&attrs.large_communities))
            && (self.next_hop.is_none()
                || attrs
                    .next_hop
                    .is_some_and(|nh| any(&self.next_hop, |n| n.matches(nh.addr()))))
            && any(&self.neighbor, |n| n.matches(ctx.neighbor))
            && self.ebgp.is_none_or(|e| e == ctx.ebgp)
    }
}

/// Where to point the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetNextHop {
    /// Our own address on the session ([`RouteContext::local_addr`]): `"self"`.
    SelfAddr,
    Addr(IpAddr),
}

impl FromStr for SetNextHop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "self" {
            return Ok(SetNextHop::SelfAddr);
        }
        s.parse()
            .map(SetNextHop::Addr)
            .map_err(|_| format!("next hop {s:?} is neither \"self\" nor an address"))
    }
}

matchers::deserialize_from_str!(SetNextHop);

/// The actions of a term, applied in this order: communities (set, then remove, then
/// add; likewise large communities), local preference, MED, next hop, AS-path prepend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub next_hop: Option<SetNextHop>,
    /// Prepend our own AS this many times.
    #[serde(default)]
    pub prepend: u8,
    /// Replace all communities (`[]` clears them).
    #[serde(default, deserialize_with = "opt_strs")]
    pub set_community: Option<Vec<Community>>,
    #[serde(default, deserialize_with = "strs")]
    pub add_community: Vec<Community>,
    #[serde(default, deserialize_with = "strs")]
    pub remove_community: Vec<Community>,
    #[serde(default, deserialize_with = "opt_strs")]
    pub set_large_community: Option<Vec<LargeCommunity>>,
    #[serde(default, deserialize_with = "strs")]
    pub add_large_community: Vec<LargeCommunity>,
    #[serde(default, deserialize_with = "strs")]
    pub remove_large_community: Vec<LargeCommunity>,
}

impl Actions {
    pub fn apply(&self, attrs: &mut PathAttrs, ctx: &RouteContext<'_>) {
        fn edit<T: Copy + Ord>(list: &mut Vec<T>, set: &Option<Vec<T>>, rm: &[T], add: &[T]) {
            if let Some(s) = set {
                list.clone_from(s);
            }
            list.retain(|c| !rm.contains(c));
            list.extend_from_slice(add);
            list.sort_unstable();
            list.dedup();
        }
        let c = (
            &self.set_community,
            &self.remove_community,
            &self.add_community,
        );
        edit(&mut attrs.communities, c.0, c.1, c.2);
        let l = (&self.set_large_community, &self.remove_large_community);
        edit(
            &mut attrs.large_communities,
            l.0,
            l.1,
            &self.add_large_community,
        );
        if let Some(lp) = self.local_pref {
            attrs.local_pref = Some(lp);
        }
        if let Some(med) = self.med {
            attrs.med = Some(med);
        }
        match self.next_hop {
            Some(SetNextHop::SelfAddr) => attrs.next_hop = Some(NextHop::from(ctx.local_addr)),
            Some(SetNextHop::Addr(a)) => attrs.next_hop = Some(NextHop::from(a)),
            None => {}
        }
        attrs
            .as_path
            .prepend(ctx.local_as, usize::from(self.prepend));
    }
}

/// A route as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    pub prefix: IpNet,
    pub attrs: &'a PathAttrs,
    /// The neighbor the route came from (import) or goes to (export).
    pub neighbor: IpAddr,
    pub ebgp: bool,
    pub local_as: u32,
    /// Our address on the session with `neighbor`, for next-hop self.
    pub local_addr: IpAddr,
}

/// Returned by value and consumed at once; boxing the attributes would only add an
/// allocation per route.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The route with its attributes as the policy left them.
    Accept(PathAttrs),
    Reject,
}

impl Policy {
    pub fn accept_all() -> Policy {
        Policy {
            terms: Vec::new(),
            default: DefaultAction::Accept,
        }
    }

    /// Some term looks at the prefix: the verdict may differ between routes with the
    /// same attributes (otherwise a caller may run the policy once per attribute set).
    pub fn uses_prefix(&self) -> bool {
        self.terms.iter().any(|t| t.conditions.prefix.is_some())
    }

    pub fn reject_all() -> Policy {
        Policy {
            terms: Vec::new(),
            default: DefaultAction::Reject,
        }
    }
}

/// Run a policy over one route.
pub fn apply(policy: &Policy, ctx: &RouteContext<'_>) -> Verdict {
    let mut attrs = Cow::Borrowed(ctx.attrs);
    for term in &policy.terms {
        if !term.conditions.matches(ctx, &attrs) {
            continue;
        }
        if term.then == Then::Reject {
            return Verdict::Reject;
        }
        if term.actions != Actions::default() {
            term.actions.apply(attrs.to_mut(), ctx);
        }
        if term.then == Then::Accept {
            return Verdict::Accept(attrs.into_owned());
        }
    }
    match policy.default {
        DefaultAction::Accept => Verdict::Accept(attrs.into_owned()),
        DefaultAction::Reject => Verdict::Reject,
    }
}

/// Run policies in turn: the route must be accepted by every one, and each sees the
/// attributes the previous one produced. An empty chain accepts.
pub fn apply_chain<'p>(
    policies: impl IntoIterator<Item = &'p Policy>,
    ctx: &RouteContext<'_>,
) -> Verdict {
    let mut attrs = ctx.attrs.clone();
    for p in policies {
        match apply(
            p,
            &RouteContext {
                attrs: &attrs,
                ..*ctx
            },
        ) {
            Verdict::Accept(a) => attrs = a,
            Verdict::Reject => return Verdict::Reject,
        }
    }
    Verdict::Accept(attrs)
}

/// The import policy in effect (RFC 8212): a configured policy as it is; without one,
/// an eBGP neighbor gets reject-all unless the operator opted out, an iBGP neighbor
/// accept-all.
pub fn effective_import(ebgp: bool, policy: Option<&Policy>, opt_out: bool) -> Cow<'_, Policy> {
    match policy {
        Some(p) => Cow::Borrowed(p),
        None if ebgp && !opt_out => Cow::Owned(Policy::reject_all()),
        None => Cow::Owned(Policy::accept_all()),
    }
}

/// The export policy in effect; the same rule as [`effective_import`] (RFC 8212 §3).
pub fn effective_export(ebgp: bool, policy: Option<&Policy>, opt_out: bool) -> Cow<'_, Policy> {
    effective_import(ebgp, policy, opt_out)
}

/// Everything policy-related about one neighbor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NeighborPolicy {
    pub import: Option<Policy>,
    pub export: Option<Policy>,
    pub max_prefix: Option<MaxPrefix>,
}

impl NeighborPolicy {
    pub fn effective_import(&self, ebgp: bool, opt_out: bool) -> Cow<'_, Policy> {
        effective_import(ebgp, self.import.as_ref(), opt_out)
    }
    pub fn effective_export(&self, ebgp: bool, opt_out: bool) -> Cow<'_, Policy> {
        effective_export(ebgp, self.export.as_ref(), opt_out)
    }
}

/// A limit on the prefixes accepted from one neighbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefix {
    pub limit: u32,
    /// Only warn when the limit is passed; keep the session.
    #[serde(default)]
    pub warning_only: bool,
    /// Re-establish this long after closing the session (seconds in the configuration);
    /// absent: stay down until an operator intervenes.
    #[serde(default, deserialize_with = "opt_secs")]
    pub restart_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxPrefixDecision {
    Ok,
    /// Over the limit with `warning_only`: log it. Given once per crossing of the limit.
    Warn,
    /// Over the limit: close the session with Cease / Maximum Number of Prefixes
    /// Reached (RFC 4486) and, if set, restart after this long.
    Exceeded {
        restart_after: Option<Duration>,
    },
}

/// The max-prefix decision for one session.
#[derive(Debug, Clone)]
pub struct MaxPrefixState {
    config: MaxPrefix,
    warned: bool,
}

impl MaxPrefixState {
    pub fn new(config: MaxPrefix) -> Self {
        MaxPrefixState {
            config,
            warned: false,
        }
    }

    /// `count`: prefixes accepted from the neighbor, this one included. Call also after
    /// withdrawals, so that a later crossing warns again.
    pub fn on_accept(&mut self, count: usize) -> MaxPrefixDecision {
        if count <= self.config.limit as usize {
            self.warned = false;
            MaxPrefixDecision::Ok
        } else if !self.config.warning_only {
            MaxPrefixDecision::Exceeded {
                restart_after: self.config.restart_after,
            }
        } else if std::mem::replace(&mut self.warned, true) {
            MaxPrefixDecision::Ok
        } else {
            MaxPrefixDecision::Warn
        }
    }
}

fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "restart_after must be at least 1 second; leave it out to stay down",
        )),
        s => Ok(Some(Duration::from_secs(u64::from(s)))),
    }
}
