//! The leaf matchers of a policy term: prefix-list entries, AS-path patterns, address
//! sets and community sets. Each parses from the text form the configuration uses and
//! reports what is wrong with it in words.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::types::AsPath;

/// Implements `Deserialize` for a type through its `FromStr`, so that a parse error
/// reaches the user with the position the deserializer knows.
macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use deserialize_from_str;

deserialize_from_str!(PrefixEntry, AsPathPattern, NetMatch);

/// One prefix-list entry: `10.0.0.0/8` (exactly that prefix), `10.0.0.0/8 le 24`,
/// `10.0.0.0/8 ge 24`, `10.0.0.0/8 ge 24 le 32`, and the same for IPv6.
///
/// A route prefix matches when it lies inside `net` and its length is within
/// `ge..=le` (FRR / Cisco semantics: `ge` alone runs up to the longest prefix, `le`
/// alone starts at the entry's own length). The bounds are stored resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixEntry {
    pub net: IpNet,
    pub ge: u8,
    pub le: u8,
}

impl PrefixEntry {
    pub fn matches(&self, prefix: &IpNet) -> bool {
        (self.ge..=self.le).contains(&prefix.prefix_len()) && self.net.contains(prefix)
    }
}

impl FromStr for PrefixEntry {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("prefix-list entry {s:?}: {why}");
        let mut words = s.split_whitespace();
        let first = words.next().ok_or_else(|| bad("empty".into()))?;
        let net: IpNet = first.parse().map_err(|_| {
            bad(format!(
                "{first:?} is not a prefix like 10.0.0.0/8 or fd00::/8"
            ))
        })?;
        if net.trunc() != net {
            return Err(bad(format!(
                "{net} has host bits set; did you mean {}?",
                net.trunc()
            )));
        }
        let (len, max) = (net.prefix_len(), net.max_prefix_len());
        let (mut ge, mut le) = (None, None);
        while let Some(kw) = words.next() {
            let slot = match kw {
                "ge" => &mut ge,
                "le" => &mut le,
                _ => return Err(bad(format!("expected `ge N` or `le N`, found {kw:?}"))),
            };
            let n: u8 = words
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("`{kw}` needs a prefix length after it")))?;
            if slot.replace(n).is_some() {
                return Err(bad(format!("`{kw}` given twice")));
            }
        }
        let (ge, le) = match (ge, le) {
            (None, None) => (len, len),
            (Some(g), None) => (g, max),
            (None, Some(l)) => (len, l),
            (Some(g), Some(l)) => (g, l),
        };
        if ge < len {
            return Err(bad(format!(
                "ge {ge} is shorter than the prefix length {len}"
            )));
        }
        if le > max {
            return Err(bad(format!(
                "le {le} is longer than {max}, the longest prefix"
            )));
        }
        if ge > le {
            return Err(bad(format!("ge {ge} is greater than le {le}")));
        }
        Ok(PrefixEntry { net, ge, le })
    }
}

impl fmt::Display for PrefixEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        if (self.ge, self.le) != (self.net.prefix_len(), self.net.prefix_len()) {
            write!(f, " ge {} le {}", self.ge, self.le)?;
        }
        Ok(())
    }
}

/// An address or a prefix (`10.0.0.2` is read as `10.0.0.2/32`), for next-hop and
/// neighbor matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetMatch(pub IpNet);

impl NetMatch {
    pub fn matches(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }
}

impl FromStr for NetMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let net = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        net.map(NetMatch)
            .ok_or_else(|| format!("{s:?} is not an address or a prefix"))
    }
}

/// A small, word-level AS-path pattern (not a full regular expression). Words are
/// separated by spaces:
/// - `65001` one AS, `64512-65534` one AS in that range,
/// - `.` any one AS, `.*` any run of ASes (possibly none),
/// - `^` at the very start anchors at the neighbor end of the path, `$` at the very end
///   at the origin end; without them the pattern may match anywhere in the path.
///
/// The path is read as its ASes in order, AS_SET members included in their order.
/// Example: `^65001 .* 65100$` — learnt from 65001, originated by 65100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsPathPattern {
    text: String,
    /// Anchors resolved: an unanchored end has an `AnyRun` there.
    words: Vec<Word>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Range(u32, u32),
    Any,
    AnyRun,
}

impl Word {
    fn one(self, asn: u32) -> bool {
        match self {
            Word::Range(lo, hi) => (lo..=hi).contains(&asn),
            Word::Any => true,
            Word::AnyRun => false,
        }
    }
}

impl AsPathPattern {
    pub fn matches(&self, path: &AsPath) -> bool {
        let asns: Vec<u32> = path.iter_asns().collect();
        // reach[j]: the words so far can consume exactly asns[..j].
        let mut reach = vec![false; asns.len() + 1];
        reach[0] = true;
        for &w in &self.words {
            if w == Word::AnyRun {
                for j in 1..reach.len() {
                    reach[j] |= reach[j - 1];
                }
            } else {
                for j in (1..reach.len()).rev() {
                    reach[j] = reach[j - 1] && w.one(asns[j - 1]);
                }
                reach[0] = false;
            }
        }
        reach[asns.len()]
    }
}

impl FromStr for AsPathPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("AS-path pattern {s:?}: {why}");
        let mut body = s.trim();
        let start = body.starts_with('^');
        if start {
            body = &body[1..];
        }
        let end = body.ends_with('$');
        if end {
            body = &body[..body.len() - 1];
        }
        let asn = |w: &str| {
            w.parse::<u32>()
                .map_err(|_| bad(format!("{w:?} is not an AS number, `.`, `.*` or LOW-HIGH")))
        };
        let mut words = Vec::new();
        if !start {
            words.push(Word::AnyRun);
        }
        for w in body.split_whitespace() {
            words.push(match w {
                "." => Word::Any,
                ".*" => Word::AnyRun,
                _ => match w.split_once('-') {
                    Some((lo, hi)) => {
                        let (lo, hi) = (asn(lo)?, asn(hi)?);
                        if lo > hi {
                            return Err(bad(format!("range {w:?} is empty")));
                        }
                        Word::Range(lo, hi)
                    }
                    None => {
                        let a = asn(w)?;
                        Word::Range(a, a)
                    }
                },
            });
        }
        if !end {
            words.push(Word::AnyRun);
        }
        Ok(AsPathPattern {
            text: s.to_string(),
            words,
        })
    }
}

impl fmt::Display for AsPathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// AS-path conditions; all given ones must hold. Lists are any-of.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsPathMatch {
    /// The path contains one of these ASes anywhere.
    pub contains: Option<Vec<u32>>,
    /// The route was originated by one of these ASes.
    pub origin: Option<Vec<u32>>,
    /// The route was learnt from (first AS is) one of these ASes.
    pub first: Option<Vec<u32>>,
    /// Path length for best-path purposes ([`AsPath::path_len`]) at least this.
    pub min_len: Option<usize>,
    /// … and at most this.
    pub max_len: Option<usize>,
    pub pattern: Option<AsPathPattern>,
}

impl AsPathMatch {
    pub fn matches(&self, path: &AsPath) -> bool {
        let any = |list: &Option<Vec<u32>>, f: &dyn Fn(u32) -> bool| {
            list.as_ref().is_none_or(|l| l.iter().any(|&a| f(a)))
        };
        let len = path.path_len();
        any(&self.contains, &|a| path.contains(a))
            && any(&self.origin, &|a| path.origin_as() == Some(a))
            && any(&self.first, &|a| path.first_as() == Some(a))
            && self.min_len.is_none_or(|m| len >= m)
            && self.max_len.is_none_or(|m| len <= m)
            && self.pattern.as_ref().is_none_or(|p| p.matches(path))
    }
}

/// Conditions on a set of communities (standard or large); all given ones must hold.
/// `any = []` matches nothing; empty `all` / `none` hold trivially.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "T: FromStr, T::Err: fmt::Display")
)]
pub struct SetMatch<T> {
    /// At least one of these is present.
    #[serde(default, deserialize_with = "opt_strs")]
    pub any: Option<Vec<T>>,
    /// All of these are present.
    #[serde(default, deserialize_with = "strs")]
    pub all: Vec<T>,
    /// None of these is present.
    #[serde(default, deserialize_with = "strs")]
    pub none: Vec<T>,
}

impl<T> Default for SetMatch<T> {
    fn default() -> Self {
        SetMatch {
            any: None,
            all: Vec::new(),
            none: Vec::new(),
        }
    }
}

impl<T: PartialEq> SetMatch<T> {
    pub fn matches(&self, have: &[T]) -> bool {
        self.any
            .as_ref()
            .is_none_or(|l| l.iter().any(|c| have.contains(c)))
            && self.all.iter().all(|c| have.contains(c))
            && !self.none.iter().any(|c| have.contains(c))
    }
}

/// A list of strings, each parsed with `FromStr`.
pub(crate) fn strs<'de, D: Deserializer<'de>, T>(d: D) -> Result<Vec<T>, D::Error>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

pub(crate) fn opt_strs<'de, D: Deserializer<'de>, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    strs(d).map(Some)
}
