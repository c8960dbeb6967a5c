//! The embedded store: etcd's data model on one redb file.
//!
//! Tables:
//! - `kv`: key → record (create revision, mod revision, version, value);
//! - `log`: (revision, sequence) → event, the history watches resume from;
//! - `meta`: `revision` (the current one) and `compacted` (history below it is gone).
//!
//! Every transaction is one redb write transaction: the comparisons, the writes, the new
//! revision and the log entries commit together (fsynced), then the events are published
//! to in-process watchers. A transaction that changes nothing is aborted and leaves the
//! revision alone, as in etcd.

use std::path::Path;
use std::sync::Arc;

use ::redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::{broadcast, mpsc};

use super::{
    Compare, Event, KeyValue, Op, Revision, Store, StoreError, Txn, TxnResult, WatchStream,
};

const KV: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("log");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// How many committed transactions a slow in-process watcher may fall behind before it
/// re-reads the log (it never loses events either way).
const FANOUT_BUFFER: usize = 4096;

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    events: broadcast::Sender<Arc<Vec<Event>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the store file. A second process opening the same file gets
    /// [`StoreError::Locked`].
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(|e| match e {
            ::redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: path.display().to_string(),
            },
            other => StoreError::Unavailable(format!("{}: {other}", path.display())),
        })?;
        // Create the tables so readers never see them missing.
        let w = db.begin_write().map_err(corrupt)?;
        {
            w.open_table(KV).map_err(corrupt)?;
            w.open_table(LOG).map_err(corrupt)?;
            w.open_table(META).map_err(corrupt)?;
        }
        w.commit().map_err(corrupt)?;
        let (events, _) = broadcast::channel(FANOUT_BUFFER);
        Ok(RedbStore {
            db: Arc::new(db),
            events,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    /// Events with revision >= `from` under `prefix`, from the log; the current revision.
    fn history(
        db: &Database,
        prefix: &str,
        from: Revision,
    ) -> Result<(Vec<Event>, Revision), StoreError> {
        let r = db.begin_read().map_err(corrupt)?;
        let meta = r.open_table(META).map_err(corrupt)?;
        let current = get_meta(&meta, "revision")?;
        let compacted = get_meta(&meta, "compacted")?;
        if from < compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        let log = r.open_table(LOG).map_err(corrupt)?;
        let mut out = Vec::new();
        for entry in log.range((from.max(0) as u64, 0)..).map_err(corrupt)? {
            let (k, v) = entry.map_err(corrupt)?;
            let ev = decode_event(k.value().0 as Revision, v.value())?;
            if ev.key().starts_with(prefix) {
                out.push(ev);
            }
        }
        Ok((out, current))
    }
}

trait MetaRead {
    fn meta(&self, key: &str) -> Result<Option<u64>, ::redb::StorageError>;
}

impl<T: ReadableTable<&'static str, u64>> MetaRead for T {
    fn meta(&self, key: &str) -> Result<Option<u64>, ::redb::StorageError> {
        Ok(self.get(key)?.map(|g| g.value()))
    }
}

fn get_meta(t: &impl MetaRead, key: &str) -> Result<Revision, StoreError> {
    Ok(t.meta(key).map_err(corrupt)?.unwrap_or(0) as Revision)
}

impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let r = db.begin_read().map_err(corrupt)?;
            let kv = r.open_table(KV).map_err(corrupt)?;
            match kv.get(key.as_str()).map_err(corrupt)? {
                Some(v) => Ok(Some(decode_record(&key, v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let r = db.begin_read().map_err(corrupt)?;
            let meta = r.open_table(META).map_err(corrupt)?;
            let revision = get_meta(&meta, "revision")?;
            let kv = r.open_table(KV).map_err(corrupt)?;
            let mut out = Vec::new();
            for entry in kv.range(prefix.as_str()..).map_err(corrupt)? {
                let (k, v) = entry.map_err(corrupt)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                out.push(decode_record(k.value(), v.value())?);
            }
            Ok((out, revision))
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        let (result, events) = self
            .blocking(move |db| {
                let w = db.begin_write().map_err(corrupt)?;
                let (succeeded, current, events) = {
                    let mut kv = w.open_table(KV).map_err(corrupt)?;
                    let mut log = w.open_table(LOG).map_err(corrupt)?;
                    let mut meta = w.open_table(META).map_err(corrupt)?;
                    let current = get_meta(&meta, "revision")?;
                    let mut succeeded = true;
                    for c in &txn.when {
                        if !compare(&kv, c)? {
                            succeeded = false;
                            break;
                        }
                    }
                    let ops = if succeeded { &txn.then } else { &txn.otherwise };
                    let next = current + 1;
                    let mut events = Vec::new();
                    for op in ops {
                        apply(&mut kv, op, next, &mut events)?;
                    }
                    if !events.is_empty() {
                        meta.insert("revision", next as u64).map_err(corrupt)?;
                        for (seq, ev) in events.iter().enumerate() {
                            log.insert((next as u64, seq as u32), encode_event(ev).as_slice())
                                .map_err(corrupt)?;
                        }
                    }
                    (succeeded, current, events)
                };
                if events.is_empty() {
                    w.abort().map_err(corrupt)?;
                    return Ok((
                        TxnResult {
                            succeeded,
                            revision: current,
                        },
                        events,
                    ));
                }
                w.commit().map_err(corrupt)?;
                Ok((
                    TxnResult {
                        succeeded,
                        revision: current + 1,
                    },
                    events,
                ))
            })
            .await?;
        if !events.is_empty() {
            // No receivers is fine: nobody watches.
            let _ = self.events.send(Arc::new(events));
        }
        Ok(result)
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe before reading history so nothing committed in between is missed;
        // duplicates are dropped by revision below.
        let mut live = self.events.subscribe();
        let prefix = prefix.to_string();
        let p = prefix.clone();
        let (history, current) = self
            .blocking(move |db| {
                if from <= 0 {
                    let r = db.begin_read().map_err(corrupt)?;
                    let meta = r.open_table(META).map_err(corrupt)?;
                    return Ok((Vec::new(), get_meta(&meta, "revision")?));
                }
                RedbStore::history(db, &p, from)
            })
            .await?;
        let (tx, mut rx) = mpsc::channel::<Result<Event, StoreError>>(1024);
        let store = self.clone();
        tokio::spawn(async move {
            // The last revision delivered (or, watching "from now", the current one).
            let mut last = if from <= 0 { current } else { from - 1 };
            for ev in history {
                last = ev.revision();
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            loop {
                let batch = tokio::select! {
                    _ = tx.closed() => return,
                    b = live.recv() => b,
                };
                let events: Vec<Event> = match batch {
                    Ok(batch) => batch.iter().cloned().collect(),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the fan-out buffer: catch up from the log.
                        let p = prefix.clone();
                        let from = last + 1;
                        match store
                            .blocking(move |db| RedbStore::history(db, &p, from))
                            .await
                        {
                            Ok((evs, _)) => evs,
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // A live batch is one transaction: one revision. Events at or below
                // `last` were delivered already (from the log or an earlier batch).
                let mut newest = last;
                for ev in events {
                    newest = newest.max(ev.revision());
                    if ev.revision() <= last || !ev.key().starts_with(prefix.as_str()) {
                        continue;
                    }
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                last = newest;
            }
        });
        Ok(Box::pin(futures::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let w = db.begin_write().map_err(corrupt)?;
            {
                let mut meta = w.open_table(META).map_err(corrupt)?;
                let current = get_meta(&meta, "revision")?;
                let compacted = get_meta(&meta, "compacted")?;
                let target = revision.min(current);
                if target > compacted {
                    let mut log = w.open_table(LOG).map_err(corrupt)?;
                    log.retain_in(..(target as u64, 0), |_, _| false)
                        .map_err(corrupt)?;
                    meta.insert("compacted", target as u64).map_err(corrupt)?;
                }
            }
            w.commit().map_err(corrupt)?;
            Ok(())
        })
        .await
    }
}

fn compare(kv: &Table<'_, &'static str, &'static [u8]>, c: &Compare) -> Result<bool, StoreError> {
    let read = |key: &str| -> Result<Option<KeyValue>, StoreError> {
        match kv.get(key).map_err(corrupt)? {
            Some(v) => Ok(Some(decode_record(key, v.value())?)),
            None => Ok(None),
        }
    };
    Ok(match c {
        Compare::Exists(k) => read(k)?.is_some(),
        Compare::Absent(k) => read(k)?.is_none(),
        Compare::ValueIs(k, v) => read(k)?.is_some_and(|kv| &kv.value == v),
        Compare::ModRevisionIs(k, r) => read(k)?.map_or(0, |kv| kv.mod_revision) == *r,
        Compare::VersionIs(k, v) => read(k)?.map_or(0, |kv| kv.version) == *v,
    })
}

fn apply(
    kv: &mut Table<'_, &'static str, &'static [u8]>,
    op: &Op,
    rev: Revision,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    match op {
        Op::Put { key, value } => {
            let prev = match kv.get(key.as_str()).map_err(corrupt)? {
                Some(v) => Some(decode_record(key, v.value())?),
                None => None,
            };
            let rec = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                mod_revision: rev,
                version: prev.as_ref().map_or(1, |p| p.version + 1),
            };
            kv.insert(key.as_str(), encode_record(&rec).as_slice())
                .map_err(corrupt)?;
            events.push(Event::Put(rec));
        }
        Op::Delete { key } => {
            if kv.remove(key.as_str()).map_err(corrupt)?.is_some() {
                events.push(Event::Delete {
                    key: key.clone(),
                    revision: rev,
                });
            }
        }
        Op::DeletePrefix { prefix } => {
            let mut keys = Vec::new();
            for entry in kv.range(prefix.as_str()..).map_err(corrupt)? {
                let (k, _) = entry.map_err(corrupt)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                keys.push(k.value().to_string());
            }
            for key in keys {
                kv.remove(key.as_str()).map_err(corrupt)?;
                events.push(Event::Delete { key, revision: rev });
            }
        }
    }
    Ok(())
}

// Record: create u64 | mod u64 | version u64 | value.
fn encode_record(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + kv.value.len());
    out.extend_from_slice(&(kv.create_revision as u64).to_be_bytes());
    out.extend_from_slice(&(kv.mod_revision as u64).to_be_bytes());
    out.extend_from_slice(&(kv.version as u64).to_be_bytes());
    out.extend_from_slice(&kv.value);
    out
}

fn decode_record(key: &str, b: &[u8]) -> Result<KeyValue, StoreError> {
    if b.len() < 24 {
        return Err(StoreError::Corrupt(format!(
            "record of {key} is {} bytes",
            b.len()
        )));
    }
    let n = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes")) as i64;
    Ok(KeyValue {
        key: key.to_string(),
        create_revision: n(0),
        mod_revision: n(8),
        version: n(16),
        value: b[24..].to_vec(),
    })
}

// Event: tag (1 put, 2 delete) | key length u32 | key | record (put only).
fn encode_event(ev: &Event) -> Vec<u8> {
    let (tag, key) = match ev {
        Event::Put(kv) => (1u8, kv.key.as_str()),
        Event::Delete { key, .. } => (2u8, key.as_str()),
    };
    let mut out = vec![tag];
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    if let Event::Put(kv) = ev {
        out.extend_from_slice(&encode_record(kv));
    }
    out
}

fn decode_event(rev: Revision, b: &[u8]) -> Result<Event, StoreError> {
    let bad = || StoreError::Corrupt(format!("log entry at revision {rev}"));
    if b.len() < 5 {
        return Err(bad());
    }
    let len = u32::from_be_bytes(b[1..5].try_into().expect("4 bytes")) as usize;
    let key = std::str::from_utf8(b.get(5..5 + len).ok_or_else(bad)?).map_err(|_| bad())?;
    match b[0] {
        1 => Ok(Event::Put(decode_record(key, &b[5 + len..])?)),
        2 => Ok(Event::Delete {
            key: key.to_string(),
            revision: rev,
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    fn store() -> (tempfile::TempDir, RedbStore) {
        let d = tempfile::tempdir().unwrap();
        let s = RedbStore::open(&d.path().join("state.redb")).unwrap();
        (d, s)
    }

    #[tokio::test]
    async fn conformance_basic() {
        let (_d, s) = store();
        conformance::basic(&s, "/t").await;
    }

    #[tokio::test]
    async fn conformance_transactions() {
        let (_d, s) = store();
        conformance::transactions(&s, "/t").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conformance_no_lost_updates() {
        let (_d, s) = store();
        conformance::no_lost_updates(&s, "/t").await;
    }

    #[tokio::test]
    async fn conformance_watches() {
        let (_d, s) = store();
        conformance::watches(&s, "/t").await;
    }

    #[tokio::test]
    async fn conformance_compaction() {
        let (_d, s) = store();
        conformance::compaction(&s, "/t").await;
    }

    #[tokio::test]
    async fn state_and_history_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.redb");
        let (r1, r2) = {
            let s = RedbStore::open(&path).unwrap();
            let r1 = s.put("/k", b"v".to_vec()).await.unwrap();
            let r2 = s.put("/k2", b"w".to_vec()).await.unwrap();
            (r1, r2)
        };
        let s = RedbStore::open(&path).unwrap();
        let kv = s.get("/k").await.unwrap().unwrap();
        assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v"[..], r1));
        // Revisions continue, never restart.
        assert_eq!(s.put("/k3", b"x".to_vec()).await.unwrap(), r2 + 1);
        // A watcher resumes across the restart.
        let mut w = s.watch("/", r1).await.unwrap();
        use futures::StreamExt;
        assert_eq!(w.next().await.unwrap().unwrap().revision(), r1);
    }

    #[tokio::test]
    async fn a_slow_watcher_catches_up_from_the_log() {
        use futures::StreamExt;
        let (_d, s) = store();
        let mut w = s.watch("/", 0).await.unwrap();
        // More transactions than the fan-out buffer holds, before the watcher reads one.
        let n = FANOUT_BUFFER + 50;
        for i in 0..n {
            s.put(&format!("/k{}", i % 7), i.to_string().into_bytes())
                .await
                .unwrap();
        }
        let mut last = 0;
        for _ in 0..n {
            let ev = w.next().await.unwrap().unwrap();
            assert_eq!(
                ev.revision(),
                last + 1,
                "every revision exactly once, in order"
            );
            last = ev.revision();
        }
    }

    #[test]
    fn corrupt_records_are_reported() {
        assert!(decode_record("/k", b"short").is_err());
        assert!(decode_event(1, &[9, 0, 0, 0, 0]).is_err());
        let kv = KeyValue {
            key: "/k".into(),
            value: b"v".to_vec(),
            create_revision: 3,
            mod_revision: 5,
            version: 2,
        };
        assert_eq!(
            decode_event(5, &encode_event(&Event::Put(kv.clone()))).unwrap(),
            Event::Put(kv)
        );
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.redb");
        let _first = RedbStore::open(&path).unwrap();
        match RedbStore::open(&path) {
            Err(StoreError::Locked { path: p }) => assert!(p.contains("state.redb")),
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second open of a store file must be refused"),
        }
    }
}
