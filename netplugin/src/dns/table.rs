//! The pure name table: a snapshot of endpoint records and the resolution rules (no I/O).
//! The rules are listed in the module doc of [`super`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One endpoint as service discovery sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub tenant: String,
    pub network: String,
    /// The container name, if the runtime told us one.
    pub name: Option<String>,
    /// The endpoint group the endpoint belongs to, if any.
    pub group: Option<String>,
    pub addrs: Vec<IpAddr>,
}

/// The endpoint that asked: its tenant and network decide which names it sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Asker {
    pub tenant: String,
    pub network: String,
}

/// The question's type, reduced to what we answer from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QType {
    A,
    Aaaa,
    Any,
    /// Any other type (MX, TXT, ...): our names exist but have no such data.
    Other,
}

/// What to tell the asker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The name is ours; these are its addresses of the asked type (empty: NOERROR/NODATA).
    Records(Vec<IpAddr>),
    /// The name is in our zone but does not exist: NXDOMAIN.
    NxDomain,
    /// Not our name: relay the query to the upstream resolvers.
    Forward,
    /// The name is (or may be) ours but the asker is unknown, so we do not tell: REFUSED.
    Refused,
}

/// The names of one (tenant, network). Keys are lower case.
#[derive(Clone, Debug, Default)]
struct NetNames {
    /// group -> member addresses, sorted and deduplicated (rotation starts from a fixed order).
    groups: BTreeMap<String, Vec<IpAddr>>,
    /// container name -> its addresses.
    names: BTreeMap<String, Vec<IpAddr>>,
}

/// An immutable, indexed snapshot of every endpoint's names. Build a new one on each change.
#[derive(Clone, Debug, Default)]
pub struct DnsTable {
    /// (tenant, network), lower case -> names.
    nets: BTreeMap<(String, String), NetNames>,
    /// address -> the (tenant, network) pairs that use it.
    owners: BTreeMap<IpAddr, BTreeSet<(String, String)>>,
    /// Lower case, without leading or trailing dots.
    search_domain: Option<String>,
}

fn norm(s: &str) -> String {
    s.trim_matches('.').to_ascii_lowercase()
}

impl DnsTable {
    /// Index `records`. `search_domain` (e.g. `contiv.local`) is an optional suffix that is
    /// stripped from questions; every name under it is ours.
    pub fn new(records: impl IntoIterator<Item = Record>, search_domain: Option<&str>) -> Self {
        let mut t = DnsTable {
            search_domain: search_domain.map(norm).filter(|d| !d.is_empty()),
            ..Default::default()
        };
        for r in records {
            let key = (norm(&r.tenant), norm(&r.network));
            let net = t.nets.entry(key.clone()).or_default();
            for a in &r.addrs {
                t.owners.entry(*a).or_default().insert(key.clone());
            }
            let add = |map: &mut BTreeMap<String, Vec<IpAddr>>, label: &Option<String>| {
                if let Some(l) = label.as_deref().map(norm).filter(|l| !l.is_empty()) {
                    let v = map.entry(l).or_default();
                    v.extend(&r.addrs);
                    v.sort();
                    v.dedup();
                }
            };
            add(&mut net.groups, &r.group);
            add(&mut net.names, &r.name);
        }
        t
    }

    /// The endpoint that owns `ip`, if exactly one (tenant, network) uses that address
    /// (tenants may reuse addresses; an ambiguous source is treated as unknown).
    pub fn asker_of(&self, ip: IpAddr) -> Option<Asker> {
        let owners = self.owners.get(&ip)?;
        if owners.len() != 1 {
            return None;
        }
        let (tenant, network) = owners.iter().next()?.clone();
        Some(Asker { tenant, network })
    }

    /// Split a question name into labels relative to our zone. Returns the labels (lower case)
    /// and whether the name was under the search domain.
    fn split(&self, qname: &str) -> (Vec<String>, bool) {
        let name = norm(qname);
        if let Some(d) = &self.search_domain {
            if name == *d {
                return (Vec::new(), true);
            }
            if let Some(rest) = name
                .strip_suffix(d.as_str())
                .and_then(|r| r.strip_suffix('.'))
            {
                return (rest.split('.').map(str::to_owned).collect(), true);
            }
        }
        if name.is_empty() {
            return (Vec::new(), false);
        }
        (name.split('.').map(str::to_owned).collect(), false)
    }

    /// Resolve `qname` for `asker`. `rotation` (e.g. a per-server query counter) rotates the
    /// addresses of a group so successive queries start with different members.
    pub fn resolve(&self, asker: &Asker, qname: &str, qtype: QType, rotation: usize) -> Answer {
        let tenant = norm(&asker.tenant);
        let (labels, in_zone) = self.split(qname);
        let found = match labels.as_slice() {
            [] if in_zone => return Answer::Records(Vec::new()),
            [one] => self.lookup(&tenant, &norm(&asker.network), one),
            [one, net] if self.nets.contains_key(&(tenant.clone(), net.clone())) => {
                match self.lookup(&tenant, net, one) {
                    None => return Answer::NxDomain,
                    found => found,
                }
            }
            _ => None,
        };
        match found {
            Some(addrs) => Answer::Records(select(addrs, qtype, rotation)),
            None if in_zone => Answer::NxDomain,
            None => Answer::Forward,
        }
    }

    /// Resolve for a source we cannot place in a tenant: names that could be ours (under the
    /// search domain, or `<x>.<network>` for a network of any tenant) are refused, so nothing
    /// leaks; everything else is forwarded.
    pub fn resolve_unknown(&self, qname: &str) -> Answer {
        match self.split(qname) {
            (_, true) => Answer::Refused,
            (labels, false) if labels.len() == 2 => {
                if self.nets.keys().any(|(_, n)| *n == labels[1]) {
                    Answer::Refused
                } else {
                    Answer::Forward
                }
            }
            _ => Answer::Forward,
        }
    }

    /// A group first, then a container name, inside one (tenant, network).
    fn lookup(&self, tenant: &str, network: &str, label: &str) -> Option<&[IpAddr]> {
        let net = self.nets.get(&(tenant.to_owned(), network.to_owned()))?;
        net.groups
            .get(label)
            .or_else(|| net.names.get(label))
            .map(Vec::as_slice)
    }
}

/// The addresses of the asked family, rotated left by `rotation`.
fn select(addrs: &[IpAddr], qtype: QType, rotation: usize) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|a| match qtype {
            QType::A => a.is_ipv4(),
            QType::Aaaa => a.is_ipv6(),
            QType::Any => true,
            QType::Other => false,
        })
        .collect();
    if !v.is_empty() {
        let n = rotation % v.len();
        v.rotate_left(n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: &str, n: &str, name: &str, g: Option<&str>, a: &[&str]) -> Record {
        let (tenant, network, name) = (t.into(), n.into(), Some(name.into()));
        let addrs = a.iter().map(|s| s.parse().unwrap()).collect();
        Record {
            tenant,
            network,
            name,
            group: g.map(Into::into),
            addrs,
        }
    }
    fn asker(t: &str, n: &str) -> Asker {
        Asker {
            tenant: t.into(),
            network: n.into(),
        }
    }
    /// "NX", "FWD", "REFUSED", or the expected addresses in order, comma-separated.
    fn expect(s: &str) -> Answer {
        match s {
            "NX" => Answer::NxDomain,
            "FWD" => Answer::Forward,
            "REFUSED" => Answer::Refused,
            _ => Answer::Records(
                s.split(',')
                    .filter(|a| !a.is_empty())
                    .map(|a| a.parse().unwrap())
                    .collect(),
            ),
        }
    }
    fn table() -> DnsTable {
        let recs = [
            rec("t1", "net", "c1", Some("web"), &["10.0.0.1"]),
            rec("t1", "net", "c2", Some("web"), &["10.0.0.2", "fd00::2"]),
            rec("t1", "net", "c3", Some("web"), &["10.0.0.3"]),
            rec("t1", "net", "db1", None, &["10.0.0.9"]),
            rec("t1", "other", "x1", Some("app"), &["10.1.0.1"]),
            rec("t2", "net", "c1", Some("web"), &["10.9.0.1"]),
            rec("t2", "net2", "secret", None, &["10.9.1.1"]),
        ];
        DnsTable::new(recs, Some("Contiv.Local."))
    }
    /// (asker tenant, asker network, qname, qtype, rotation, expected).
    fn check(cases: &[(&str, &str, &str, QType, usize, &str)]) {
        let t = table();
        for &(tenant, net, qname, qt, rot, want) in cases {
            let got = t.resolve(&asker(tenant, net), qname, qt, rot);
            assert_eq!(
                got,
                expect(want),
                "{tenant}/{net} asks {qname} {qt:?} rot {rot}"
            );
        }
    }
    use QType::{A, Aaaa, Any, Other};

    #[test]
    fn container_name_within_its_network() {
        check(&[
            ("t1", "net", "db1", A, 0, "10.0.0.9"),
            ("t1", "net", "c2", Any, 0, "10.0.0.2,fd00::2"),
            // A container of another network is not visible by its bare name.
            ("t1", "net", "x1", A, 0, "FWD"),
        ]);
    }

    #[test]
    fn group_answers_all_members_rotated() {
        check(&[
            ("t1", "net", "web", A, 0, "10.0.0.1,10.0.0.2,10.0.0.3"),
            ("t1", "net", "web", A, 1, "10.0.0.2,10.0.0.3,10.0.0.1"),
            ("t1", "net", "web", A, 5, "10.0.0.3,10.0.0.1,10.0.0.2"),
            ("t1", "net", "web", Aaaa, 7, "fd00::2"),
        ]);
    }

    #[test]
    fn qualified_names_from_other_networks_of_the_tenant() {
        check(&[
            ("t1", "other", "db1.net", A, 0, "10.0.0.9"),
            ("t1", "other", "web.net", A, 2, "10.0.0.3,10.0.0.1,10.0.0.2"),
            ("t1", "other", "app.other", A, 0, "10.1.0.1"),
            ("t1", "other", "nosuch.net", A, 0, "NX"),
        ]);
    }

    #[test]
    fn case_insensitive_trailing_dot_and_search_domain() {
        check(&[
            ("T1", "NET", "DB1.", A, 0, "10.0.0.9"),
            ("T1", "NET", "db1.contiv.local.", A, 0, "10.0.0.9"),
            ("t1", "net", "App.Other.CONTIV.local", A, 0, "10.1.0.1"),
            // Under the search domain every miss is ours: NXDOMAIN, never forwarded.
            ("t1", "net", "nosuch.contiv.local", A, 0, "NX"),
            ("t1", "net", "a.b.c.contiv.local", A, 0, "NX"),
            ("t1", "net", "contiv.local.", A, 0, ""),
        ]);
    }

    #[test]
    fn same_name_in_two_tenants_never_leaks() {
        check(&[
            ("t1", "net", "c1", A, 0, "10.0.0.1"),
            ("t2", "net", "c1", A, 0, "10.9.0.1"),
            ("t2", "net", "web", Any, 3, "10.9.0.1"),
            ("t2", "net", "db1.net", A, 0, "NX"),
            // net2 is not a t1 network: not ours, or NXDOMAIN under the search domain.
            ("t1", "net", "secret.net2", A, 0, "FWD"),
            ("t1", "net", "secret.net2.contiv.local", A, 0, "NX"),
            ("t3", "net", "c1.net.contiv.local", A, 0, "NX"),
        ]);
    }

    #[test]
    fn aaaa_for_v4_only_name_is_nodata_not_nxdomain() {
        check(&[
            ("t1", "net", "db1", Aaaa, 0, ""),
            ("t1", "net", "db1", Other, 0, ""),
            ("t1", "net", "c2", Aaaa, 0, "fd00::2"),
        ]);
    }

    #[test]
    fn other_names_are_forwarded() {
        check(&[
            ("t1", "net", "example.com", A, 0, "FWD"),
            ("t1", "net", "www.example.com.", A, 0, "FWD"),
            ("t1", "net", "nosuchhost", A, 0, "FWD"),
            ("t1", "net", ".", A, 0, "FWD"),
        ]);
    }

    #[test]
    fn group_name_wins_over_container_name() {
        let recs = [
            rec("t", "n", "web", None, &["10.0.0.7"]),
            rec("t", "n", "w1", Some("web"), &["10.0.0.1"]),
        ];
        let t = DnsTable::new(recs, None);
        assert_eq!(t.resolve(&asker("t", "n"), "web", A, 0), expect("10.0.0.1"));
    }

    #[test]
    fn unknown_askers_and_source_mapping() {
        let t = table();
        assert_eq!(
            t.asker_of("10.0.0.2".parse().unwrap()),
            Some(asker("t1", "net"))
        );
        assert_eq!(t.asker_of("10.7.7.7".parse().unwrap()), None);
        let same_ip = [
            rec("a", "n", "x", None, &["10.0.0.1"]),
            rec("b", "n", "y", None, &["10.0.0.1"]),
        ];
        assert_eq!(
            DnsTable::new(same_ip, None).asker_of("10.0.0.1".parse().unwrap()),
            None
        );
        for (qname, want) in [
            ("web.net", "REFUSED"),
            ("db1.contiv.local", "REFUSED"),
            ("example.com", "FWD"),
            ("web", "FWD"),
        ] {
            assert_eq!(t.resolve_unknown(qname), expect(want), "{qname}");
        }
    }
}
