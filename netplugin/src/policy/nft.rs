//! Our nftables tables as data, and the transactions between two states of them.
//!
//! A [`Ruleset`] is what we want in the kernel: per table (family + our fixed name)
//! named counters, sets and maps with their elements, and chains with their rules, each
//! element and rule as nftables text. [`Ruleset::changes`] gives the operations that
//! turn one ruleset into another (elements added and deleted, changed chains flushed
//! and written again, objects no longer wanted deleted after what refers to them);
//! [`Ruleset::overwrite`] the operations that write a ruleset whole over what the
//! kernel has (the resync: our tables deleted and created again, whatever was done to
//! them, with the named counters' values carried over so they keep counting). Either
//! list is committed as one transaction, so no packet meets a half-written ruleset.
//! [`script`] renders operations as an `nft -f` script.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The name of every table of ours (one per family).
pub const TABLE: &str = "contiv";

/// The families we use: `inet` for IP, `arp` for ARP source checks.
pub const FAMILIES: [&str; 2] = ["inet", "arp"];

/// A set or a map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Set {
    /// A verdict map (`map`) rather than a set.
    pub map: bool,
    /// The declaration inside the braces: `type ifname; flags interval;`.
    pub decl: String,
    /// Elements as nftables text (`"cv1" . 10.0.0.2`, `10.1.0.0/16`, `"cv1" : jump x`).
    pub elements: BTreeSet<String>,
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// A base chain's declaration (`type filter hook forward priority filter; policy
    /// accept;`), `None` for a regular chain.
    pub base: Option<String>,
    pub rules: Vec<String>,
}

/// One table of ours.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub counters: BTreeSet<String>,
    pub sets: BTreeMap<String, Set>,
    pub chains: BTreeMap<String, Chain>,
}

/// Our tables by family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub tables: BTreeMap<String, Table>,
}

/// Packets and bytes of a named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// Our tables as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The families that have a table of ours.
    pub tables: BTreeSet<String>,
    /// `(family, counter)` → its count.
    pub counters: BTreeMap<(String, String), Count>,
    /// Everything the tables hold but handles and counts, as one string: equal
    /// fingerprints, equal tables (flags, types, elements, rules, policies).
    pub fingerprint: String,
}

/// One operation of a transaction. Every name is in `family` table [`TABLE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddTable {
        family: String,
    },
    /// Removes the table and everything in it.
    DeleteTable {
        family: String,
    },
    /// A named counter, starting from `value` when given.
    AddCounter {
        family: String,
        name: String,
        value: Option<Count>,
    },
    AddSet {
        family: String,
        name: String,
        set: Set,
    },
    AddElements {
        family: String,
        name: String,
        map: bool,
        elements: Vec<String>,
    },
    DeleteElements {
        family: String,
        name: String,
        map: bool,
        elements: Vec<String>,
    },
    AddChain {
        family: String,
        name: String,
        base: Option<String>,
    },
    /// Removes every rule of a chain.
    FlushChain {
        family: String,
        name: String,
    },
    AddRule {
        family: String,
        chain: String,
        rule: String,
    },
    DeleteChain {
        family: String,
        name: String,
    },
    DeleteSet {
        family: String,
        name: String,
        map: bool,
    },
    DeleteCounter {
        family: String,
        name: String,
    },
}

fn f(s: &str) -> String {
    s.to_string()
}

impl Ruleset {
    /// The operations that write `self` whole over what `snapshot` read: each table of
    /// ours is deleted and created again in the same transaction (so nothing done to it
    /// — a flag, a type, a rule, an element — survives), named counters start from the
    /// values they had. The resync, and the first write after a start.
    pub fn overwrite(&self, snapshot: &Snapshot) -> Vec<Op> {
        let mut ops = Vec::new();
        let none = Table::default();
        for family in FAMILIES {
            let want = self.tables.get(family).unwrap_or(&none);
            if snapshot.tables.contains(family) {
                ops.push(Op::DeleteTable { family: f(family) });
            }
            ops.push(Op::AddTable { family: f(family) });
            for c in &want.counters {
                ops.push(Op::AddCounter {
                    family: f(family),
                    name: c.clone(),
                    value: snapshot.counters.get(&(f(family), c.clone())).copied(),
                });
            }
            for (name, s) in &want.sets {
                ops.push(Op::AddSet {
                    family: f(family),
                    name: name.clone(),
                    set: Set {
                        elements: BTreeSet::new(),
                        ..s.clone()
                    },
                });
            }
            for (name, c) in &want.chains {
                ops.push(Op::AddChain {
                    family: f(family),
                    name: name.clone(),
                    base: c.base.clone(),
                });
            }
            for (name, s) in &want.sets {
                if !s.elements.is_empty() {
                    ops.push(Op::AddElements {
                        family: f(family),
                        name: name.clone(),
                        map: s.map,
                        elements: s.elements.iter().cloned().collect(),
                    });
                }
            }
            for (name, c) in &want.chains {
                for r in &c.rules {
                    ops.push(Op::AddRule {
                        family: f(family),
                        chain: name.clone(),
                        rule: r.clone(),
                    });
                }
            }
        }
        ops
    }

    /// The operations that turn `old` (what the kernel has, as we wrote it) into `self`.
    /// Empty when nothing changed.
    pub fn changes(&self, old: &Ruleset) -> Vec<Op> {
        let mut ops = Vec::new();
        let none = Table::default();
        let families: BTreeSet<&String> = self.tables.keys().chain(old.tables.keys()).collect();
        for family in families {
            let want = self.tables.get(family).unwrap_or(&none);
            let had = old.tables.get(family).unwrap_or(&none);
            if want == had {
                continue;
            }
            let fam = || family.clone();
            if !old.tables.contains_key(family) {
                ops.push(Op::AddTable { family: fam() });
            }
            for c in want.counters.difference(&had.counters) {
                ops.push(Op::AddCounter {
                    family: fam(),
                    name: c.clone(),
                    value: None,
                });
            }
            for (name, s) in &want.sets {
                if !had.sets.contains_key(name) {
                    ops.push(Op::AddSet {
                        family: fam(),
                        name: name.clone(),
                        set: Set {
                            elements: BTreeSet::new(),
                            ..s.clone()
                        },
                    });
                }
            }
            for (name, c) in &want.chains {
                if !had.chains.contains_key(name) {
                    ops.push(Op::AddChain {
                        family: fam(),
                        name: name.clone(),
                        base: c.base.clone(),
                    });
                }
            }
            // Chains whose rules changed, and chains going away, lose their rules first.
            let rewritten: Vec<&String> = want
                .chains
                .iter()
                .filter(|(name, c)| had.chains.get(*name).is_some_and(|h| h.rules != c.rules))
                .map(|(name, _)| name)
                .collect();
            for name in rewritten
                .iter()
                .copied()
                .chain(had.chains.keys().filter(|n| !want.chains.contains_key(*n)))
            {
                ops.push(Op::FlushChain {
                    family: fam(),
                    name: name.clone(),
                });
            }
            for (name, s) in &had.sets {
                let gone: Vec<String> = match want.sets.get(name) {
                    Some(w) => s.elements.difference(&w.elements).cloned().collect(),
                    None => Vec::new(),
                };
                if !gone.is_empty() {
                    ops.push(Op::DeleteElements {
                        family: fam(),
                        name: name.clone(),
                        map: s.map,
                        elements: gone,
                    });
                }
            }
            for (name, s) in &want.sets {
                let new: Vec<String> = match had.sets.get(name) {
                    Some(h) => s.elements.difference(&h.elements).cloned().collect(),
                    None => s.elements.iter().cloned().collect(),
                };
                if !new.is_empty() {
                    ops.push(Op::AddElements {
                        family: fam(),
                        name: name.clone(),
                        map: s.map,
                        elements: new,
                    });
                }
            }
            for (name, c) in &want.chains {
                let write = match had.chains.get(name) {
                    Some(h) => h.rules != c.rules,
                    None => true,
                };
                if write {
                    for r in &c.rules {
                        ops.push(Op::AddRule {
                            family: fam(),
                            chain: name.clone(),
                            rule: r.clone(),
                        });
                    }
                }
            }
            for (name, s) in &had.sets {
                if s.map && !want.sets.contains_key(name) {
                    ops.push(Op::DeleteSet {
                        family: fam(),
                        name: name.clone(),
                        map: true,
                    });
                }
            }
            for name in had.chains.keys().filter(|n| !want.chains.contains_key(*n)) {
                ops.push(Op::DeleteChain {
                    family: fam(),
                    name: name.clone(),
                });
            }
            for (name, s) in &had.sets {
                if !s.map && !want.sets.contains_key(name) {
                    ops.push(Op::DeleteSet {
                        family: fam(),
                        name: name.clone(),
                        map: false,
                    });
                }
            }
            for c in had.counters.difference(&want.counters) {
                ops.push(Op::DeleteCounter {
                    family: fam(),
                    name: c.clone(),
                });
            }
        }
        ops
    }

    /// Number of rules across our chains.
    pub fn rule_count(&self) -> usize {
        self.tables
            .values()
            .flat_map(|t| t.chains.values())
            .map(|c| c.rules.len())
            .sum()
    }
}

fn kind(map: bool) -> &'static str {
    if map { "map" } else { "set" }
}

/// Elements per `add element` line (nft reads long lines fine; this keeps error
/// messages short).
const CHUNK: usize = 512;

/// The operations as one `nft -f` script (one transaction).
pub fn script(ops: &[Op]) -> String {
    let mut s = String::new();
    for op in ops {
        let _ = match op {
            Op::AddTable { family } => writeln!(s, "add table {family} {TABLE}"),
            Op::DeleteTable { family } => writeln!(s, "delete table {family} {TABLE}"),
            Op::AddCounter {
                family,
                name,
                value,
            } => match value {
                Some(c) => writeln!(
                    s,
                    "add counter {family} {TABLE} {name} {{ packets {} bytes {} }}",
                    c.packets, c.bytes
                ),
                None => writeln!(s, "add counter {family} {TABLE} {name}"),
            },
            Op::AddSet { family, name, set } => writeln!(
                s,
                "add {} {family} {TABLE} {name} {{ {} }}",
                kind(set.map),
                set.decl
            ),
            Op::AddElements {
                family,
                name,
                elements,
                ..
            } => {
                for chunk in elements.chunks(CHUNK) {
                    let _ = writeln!(
                        s,
                        "add element {family} {TABLE} {name} {{ {} }}",
                        chunk.join(", ")
                    );
                }
                Ok(())
            }
            Op::DeleteElements {
                family,
                name,
                elements,
                ..
            } => {
                for chunk in elements.chunks(CHUNK) {
                    let _ = writeln!(
                        s,
                        "delete element {family} {TABLE} {name} {{ {} }}",
                        chunk.join(", ")
                    );
                }
                Ok(())
            }
            Op::AddChain { family, name, base } => match base {
                Some(b) => writeln!(s, "add chain {family} {TABLE} {name} {{ {b} }}"),
                None => writeln!(s, "add chain {family} {TABLE} {name}"),
            },
            Op::FlushChain { family, name } => {
                writeln!(s, "flush chain {family} {TABLE} {name}")
            }
            Op::AddRule {
                family,
                chain,
                rule,
            } => writeln!(s, "add rule {family} {TABLE} {chain} {rule}"),
            Op::DeleteChain { family, name } => {
                writeln!(s, "delete chain {family} {TABLE} {name}")
            }
            Op::DeleteSet { family, name, map } => {
                writeln!(s, "delete {} {family} {TABLE} {name}", kind(*map))
            }
            Op::DeleteCounter { family, name } => {
                writeln!(s, "delete counter {family} {TABLE} {name}")
            }
        };
    }
    s
}

/// Applies operations to a ruleset the way the kernel would, refusing what the kernel
/// refuses (an object added twice with another type, an element deleted that is not
/// there, a chain or set deleted while referenced, a name that does not exist). The
/// in-memory driver uses it, and tests check that `changes` and `overwrite` reach the
/// ruleset they were computed for.
pub fn apply(rs: &mut Ruleset, ops: &[Op]) -> Result<(), String> {
    let mut next = rs.clone();
    for op in ops {
        apply_one(&mut next, op)?;
    }
    *rs = next;
    Ok(())
}

fn table<'a>(rs: &'a mut Ruleset, family: &str) -> Result<&'a mut Table, String> {
    rs.tables
        .get_mut(family)
        .ok_or_else(|| format!("no table {family} {TABLE}"))
}

fn referenced(t: &Table, name: &str) -> bool {
    let at = format!("@{name}");
    let jump = format!("jump {name}");
    let counter = format!("counter name \"{name}\"");
    t.chains.values().flat_map(|c| &c.rules).any(|r| {
        r.split_whitespace().any(|w| w == at)
            || r.contains(&format!("{jump} "))
            || r.ends_with(&jump)
            || r.contains(&counter)
    }) || t
        .sets
        .values()
        .flat_map(|s| &s.elements)
        .any(|e| e.ends_with(&jump))
}

fn apply_one(rs: &mut Ruleset, op: &Op) -> Result<(), String> {
    match op {
        Op::AddTable { family } => {
            rs.tables.entry(family.clone()).or_default();
        }
        Op::DeleteTable { family } => {
            rs.tables
                .remove(family)
                .ok_or_else(|| format!("no table {family} {TABLE}"))?;
        }
        Op::AddCounter { family, name, .. } => {
            table(rs, family)?.counters.insert(name.clone());
        }
        Op::AddSet { family, name, set } => {
            let t = table(rs, family)?;
            match t.sets.get(name) {
                Some(s) if s.map != set.map || s.decl != set.decl => {
                    return Err(format!("{name} exists with another type"));
                }
                Some(_) => {}
                None => {
                    t.sets.insert(
                        name.clone(),
                        Set {
                            elements: BTreeSet::new(),
                            ..set.clone()
                        },
                    );
                }
            }
        }
        Op::AddElements {
            family,
            name,
            elements,
            ..
        } => {
            let s = table(rs, family)?
                .sets
                .get_mut(name)
                .ok_or_else(|| format!("no set {name}"))?;
            s.elements.extend(elements.iter().cloned());
        }
        Op::DeleteElements {
            family,
            name,
            elements,
            ..
        } => {
            let s = table(rs, family)?
                .sets
                .get_mut(name)
                .ok_or_else(|| format!("no set {name}"))?;
            for e in elements {
                if !s.elements.remove(e) {
                    return Err(format!("{name} has no element {e}"));
                }
            }
        }
        Op::AddChain { family, name, base } => {
            let t = table(rs, family)?;
            match t.chains.get(name) {
                Some(c) if c.base != *base => {
                    return Err(format!("chain {name} exists with another hook"));
                }
                Some(_) => {}
                None => {
                    t.chains.insert(
                        name.clone(),
                        Chain {
                            base: base.clone(),
                            rules: Vec::new(),
                        },
                    );
                }
            }
        }
        Op::FlushChain { family, name } => {
            table(rs, family)?
                .chains
                .get_mut(name)
                .ok_or_else(|| format!("no chain {name}"))?
                .rules
                .clear();
        }
        Op::AddRule {
            family,
            chain,
            rule,
        } => {
            table(rs, family)?
                .chains
                .get_mut(chain)
                .ok_or_else(|| format!("no chain {chain}"))?
                .rules
                .push(rule.clone());
        }
        Op::DeleteChain { family, name } => {
            let t = table(rs, family)?;
            if !t.chains.get(name).is_some_and(|c| c.rules.is_empty()) {
                return Err(format!("chain {name} missing or not empty"));
            }
            if referenced(t, name) {
                return Err(format!("chain {name} is in use"));
            }
            t.chains.remove(name);
        }
        Op::DeleteSet { family, name, .. } => {
            let t = table(rs, family)?;
            if referenced(t, name) {
                return Err(format!("set {name} is in use"));
            }
            t.sets
                .remove(name)
                .ok_or_else(|| format!("no set {name}"))?;
        }
        Op::DeleteCounter { family, name } => {
            let t = table(rs, family)?;
            if referenced(t, name) {
                return Err(format!("counter {name} is in use"));
            }
            if !t.counters.remove(name) {
                return Err(format!("no counter {name}"));
            }
        }
    }
    Ok(())
}

/// What a ruleset of ours reads back as (counts zero), in the in-memory kernel.
pub fn snapshot(rs: &Ruleset) -> Snapshot {
    Snapshot {
        tables: rs.tables.keys().cloned().collect(),
        counters: rs
            .tables
            .iter()
            .flat_map(|(f, t)| {
                t.counters
                    .iter()
                    .map(|c| ((f.clone(), c.clone()), Count::default()))
            })
            .collect(),
        fingerprint: format!("{:?}", rs.tables),
    }
}
