//! [`World`]: the configured objects at one store revision, and [`Plan`]: the writes one
//! request makes. Kind-specific rules read the world and add to the plan; both are
//! plain data, so every rule is a pure function tested without a store.

use std::sync::Arc;

use imbl::OrdMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::IntentError;
use super::Kind;
use crate::store::Revision;

/// Where intent lives in the store.
pub mod keys {
    /// Every configured object: `/contiv/config/<plural>/<key>` → its JSON.
    pub const CONFIG: &str = "/contiv/config/";
    /// Allocator states, counters and other derived state: `/contiv/state/<name>`.
    pub const STATE: &str = "/contiv/state/";
    /// What netplugins report (endpoints, BGP sessions, routes): `/contiv/oper/<name>`.
    /// Written without the epoch guard: reports are not intent.
    pub const OPER: &str = "/contiv/oper/";
    /// Bumped by every intent write; writes compare it, so two writers never both
    /// commit against the same world.
    pub const EPOCH: &str = "/contiv/epoch";

    pub fn config(plural: &str, key: &str) -> String {
        format!("{CONFIG}{plural}/{key}")
    }
    pub fn state(name: &str) -> String {
        format!("{STATE}{name}")
    }
    pub fn oper(name: &str) -> String {
        format!("{OPER}{name}")
    }
}

/// The objects and derived state at one revision, as raw JSON. The maps are persistent
/// (a copy shares everything with the original; a change copies one path), so copying a
/// world per store event or per write batch costs the same with 10 objects or 100 000.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// `(plural, key)` → object JSON.
    objects: OrdMap<(String, String), Arc<serde_json::Value>>,
    /// state name → value JSON.
    state: OrdMap<String, Arc<serde_json::Value>>,
    /// oper name → value JSON (reports from netplugins).
    oper: OrdMap<String, Arc<serde_json::Value>>,
    /// `(plural, key)` → the revision the object was last written at.
    mod_revs: OrdMap<(String, String), Revision>,
    /// plural → the revision an object of that kind was last deleted at, as far as this
    /// netmaster saw (deletions before it read the store are not known: 0).
    deleted: OrdMap<String, Revision>,
    /// The store revision this world was read at.
    pub revision: Revision,
    /// The mod revision of the epoch key at that time (0 when never written).
    pub epoch: Revision,
}

impl World {
    /// Builds a world from `(key, value, mod_revision)` triples under [`keys::CONFIG`],
    /// [`keys::STATE`] and [`keys::EPOCH`]. Values that are not JSON are reported, not
    /// skipped: they mean the store holds something we did not write.
    pub fn from_kvs<'a>(
        kvs: impl IntoIterator<Item = (&'a str, &'a [u8], Revision)>,
        revision: Revision,
    ) -> Result<World, IntentError> {
        let mut w = World {
            revision,
            ..World::default()
        };
        for (k, v, mod_rev) in kvs {
            if k == keys::EPOCH {
                w.epoch = mod_rev;
                continue;
            }
            let parse = || {
                serde_json::from_slice(v)
                    .map(Arc::new)
                    .map_err(|e| IntentError::internal(format!("{k}: not JSON: {e}")))
            };
            if let Some(rest) = k.strip_prefix(keys::CONFIG) {
                let Some((plural, key)) = rest.split_once('/') else {
                    return Err(IntentError::internal(format!("{k}: not a config key")));
                };
                let id = (plural.to_string(), key.to_string());
                w.objects.insert(id.clone(), parse()?);
                w.mod_revs.insert(id, mod_rev);
            } else if let Some(name) = k.strip_prefix(keys::STATE) {
                w.state.insert(name.to_string(), parse()?);
            } else if let Some(name) = k.strip_prefix(keys::OPER) {
                w.oper.insert(name.to_string(), parse()?);
            }
        }
        Ok(w)
    }

    /// One object as JSON.
    pub fn raw(&self, plural: &str, key: &str) -> Option<&serde_json::Value> {
        self.objects
            .get(&(plural.to_string(), key.to_string()))
            .map(|v| &**v)
    }

    /// Every object of a kind as `(key, JSON)`, in key order.
    pub fn raw_list<'a>(
        &'a self,
        plural: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a serde_json::Value)> + 'a {
        self.objects
            .range((plural.to_string(), String::new())..)
            .take_while(move |((p, _), _)| p == plural)
            .map(|((_, k), v)| (k.as_str(), &**v))
    }

    /// The revision an object was last written at (created or changed).
    pub fn mod_revision(&self, plural: &str, key: &str) -> Option<Revision> {
        self.mod_revs
            .get(&(plural.to_string(), key.to_string()))
            .copied()
    }

    /// The revision an object of kind `plural` was last deleted at, as far as this
    /// netmaster has seen (0 when none was deleted since it read the store).
    pub fn last_deletion(&self, plural: &str) -> Revision {
        self.deleted.get(plural).copied().unwrap_or(0)
    }

    /// One typed object.
    pub fn get<K: Kind>(&self, key: &str) -> Result<Option<K>, IntentError> {
        self.raw(K::PLURAL, key)
            .map(|v| decode::<K>(K::PLURAL, key, v))
            .transpose()
    }

    /// Every object of a kind, typed, in key order.
    pub fn list<K: Kind>(&self) -> Result<Vec<K>, IntentError> {
        self.raw_list(K::PLURAL)
            .map(|(k, v)| decode::<K>(K::PLURAL, k, v))
            .collect()
    }

    /// A netplugin report (or other oper entry), raw.
    pub fn oper(&self, name: &str) -> Option<&serde_json::Value> {
        self.oper.get(name).map(|v| &**v)
    }

    /// The last report of a host's netplugin, when there is one that reads as a report.
    pub fn host_report(&self, host: &str) -> Option<contiv_model::feed::HostReport> {
        self.oper(&format!("hosts/{host}"))
            .and_then(|v| contiv_model::feed::HostReport::deserialize(v).ok())
    }

    /// Every oper entry under a name prefix.
    pub fn oper_list<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a serde_json::Value)> + 'a {
        self.oper
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), &**v))
    }

    /// Every configured object as `(plural, key, JSON)`.
    pub fn all_objects(&self) -> impl Iterator<Item = (&str, &str, &serde_json::Value)> {
        self.objects
            .iter()
            .map(|((p, k), v)| (p.as_str(), k.as_str(), &**v))
    }

    pub fn count(&self, plural: &str) -> usize {
        self.raw_list(plural).count()
    }

    /// A piece of derived state, typed.
    pub fn state<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, IntentError> {
        self.state
            .get(name)
            .map(|v| {
                T::deserialize(&**v).map_err(|e| {
                    IntentError::internal(format!("stored state {name} is unreadable: {e}"))
                })
            })
            .transpose()
    }

    /// Applies a committed plan, so the world reflects it without re-reading the store.
    pub fn apply(&mut self, plan: &Plan, revision: Revision) {
        for w in &plan.writes {
            match w {
                Write::PutObject { plural, key, value } => {
                    let id = (plural.clone(), key.clone());
                    self.objects.insert(id.clone(), Arc::new(value.clone()));
                    self.mod_revs.insert(id, revision);
                }
                Write::DeleteObject { plural, key } => {
                    let id = (plural.clone(), key.clone());
                    self.objects.remove(&id);
                    self.mod_revs.remove(&id);
                    self.deleted.insert(plural.clone(), revision);
                }
                Write::PutState { name, value } => {
                    self.state.insert(name.clone(), Arc::new(value.clone()));
                }
                Write::DeleteState { name } => {
                    self.state.remove(name);
                }
            }
        }
        self.revision = revision;
        self.epoch = revision;
    }
}

fn decode<K: Kind>(plural: &str, key: &str, v: &serde_json::Value) -> Result<K, IntentError> {
    K::deserialize(v)
        .map_err(|e| IntentError::internal(format!("stored {plural}/{key} is unreadable: {e}")))
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    PutObject {
        plural: String,
        key: String,
        value: serde_json::Value,
    },
    DeleteObject {
        plural: String,
        key: String,
    },
    PutState {
        name: String,
        value: serde_json::Value,
    },
    DeleteState {
        name: String,
    },
}

/// Everything one request writes; committed in one store transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
}

impl Plan {
    pub fn put<K: Kind>(&mut self, obj: &K) -> Result<(), IntentError> {
        let value = to_json(obj)?;
        self.writes.push(Write::PutObject {
            plural: K::PLURAL.into(),
            key: obj.key(),
            value,
        });
        Ok(())
    }
    pub fn delete<K: Kind>(&mut self, key: &str) {
        self.writes.push(Write::DeleteObject {
            plural: K::PLURAL.into(),
            key: key.into(),
        });
    }
    pub fn put_state<T: Serialize>(&mut self, name: &str, value: &T) -> Result<(), IntentError> {
        let value = to_json(value)?;
        self.writes.push(Write::PutState {
            name: name.into(),
            value,
        });
        Ok(())
    }
    pub fn delete_state(&mut self, name: &str) {
        self.writes.push(Write::DeleteState { name: name.into() });
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, IntentError> {
    serde_json::to_value(v).map_err(|e| IntentError::internal(format!("cannot encode: {e}")))
}

impl World {
    /// Folds one watched change of `key` into this world; `one` holds the new value
    /// (empty for a deletion).
    pub(crate) fn merge_change(&mut self, key: &str, one: &mut World, revision: Revision) {
        if key == keys::EPOCH {
            self.epoch = revision;
        } else if let Some(rest) = key.strip_prefix(keys::CONFIG) {
            if let Some((plural, k)) = rest.split_once('/') {
                let id = (plural.to_string(), k.to_string());
                match one.objects.remove(&id) {
                    Some(v) => {
                        self.objects.insert(id.clone(), v);
                        self.mod_revs.insert(id, revision);
                    }
                    None => {
                        if self.objects.remove(&id).is_some() {
                            self.deleted.insert(plural.to_string(), revision);
                        }
                        self.mod_revs.remove(&id);
                    }
                };
            }
        } else if let Some(name) = key.strip_prefix(keys::STATE) {
            match one.state.remove(name) {
                Some(v) => self.state.insert(name.to_string(), v),
                None => self.state.remove(name),
            };
        } else if let Some(name) = key.strip_prefix(keys::OPER) {
            match one.oper.remove(name) {
                Some(v) => self.oper.insert(name.to_string(), v),
                None => self.oper.remove(name),
            };
        }
        self.revision = revision;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(plural: &str, key: &str) -> Write {
        Write::PutObject {
            plural: plural.into(),
            key: key.into(),
            value: serde_json::json!({}),
        }
    }

    #[test]
    fn mod_revisions_and_deletions_follow_writes_and_the_watch() {
        let kvs = [("/contiv/config/rules/default:p:1", b"{}".as_slice(), 3)];
        let mut w = World::from_kvs(kvs, 5).unwrap();
        assert_eq!(w.mod_revision("rules", "default:p:1"), Some(3));
        assert_eq!(
            w.last_deletion("rules"),
            0,
            "deletions before the read are unknown"
        );
        w.apply(
            &Plan {
                writes: vec![
                    put("rules", "default:p:2"),
                    Write::DeleteObject {
                        plural: "rules".into(),
                        key: "default:p:1".into(),
                    },
                ],
            },
            6,
        );
        assert_eq!(w.mod_revision("rules", "default:p:2"), Some(6));
        assert_eq!(w.mod_revision("rules", "default:p:1"), None);
        assert_eq!(w.last_deletion("rules"), 6);
        // From the watch: a put, then a deletion (an empty world holds the new value).
        let key = keys::config("policys", "default:p");
        let mut one = World::from_kvs([(key.as_str(), b"{}".as_slice(), 7)], 7).unwrap();
        w.merge_change(&key, &mut one, 7);
        assert_eq!(w.mod_revision("policys", "default:p"), Some(7));
        w.merge_change(&key, &mut World::default(), 8);
        assert_eq!(w.mod_revision("policys", "default:p"), None);
        assert_eq!(w.last_deletion("policys"), 8);
        // Deleting what does not exist is no deletion.
        w.merge_change(&keys::config("policys", "x"), &mut World::default(), 9);
        assert_eq!(w.last_deletion("policys"), 8);
        assert_eq!(w.last_deletion("rules"), 6);
    }
}
