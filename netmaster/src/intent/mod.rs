//! The intent engine: objects, their rules and their allocations, committed to the
//! store in one transaction per request.
//!
//! Shape: a [`World`] (every object and derived state at one revision) is read from the
//! store and kept current by a watch; a request is turned into a [`Plan`] by the pure
//! rules of its [`Kind`] against that world; the plan is committed in one transaction
//! guarded by the epoch key, so a plan computed against an outdated world is never
//! applied (the engine re-reads the world and plans again). Ids, tags and addresses are
//! therefore allocated in the store, in the same transaction as the object that uses
//! them.

pub mod endpoints;
pub mod error;
pub mod pools;
pub mod world;

use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use tokio::sync::watch;

use crate::store::{AnyStore, Compare, Event, Op, Revision, Store, StoreError, Txn};
pub use error::{IntentError, IntentErrorKind};
pub use world::{Plan, World, Write, keys};

/// How long a write waits for the watch to show it before re-reading the world.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a write re-plans after losing a race before reporting the conflict.
const MAX_ATTEMPTS: usize = 16;

/// One object kind of Contiv's model, with its rules.
pub trait Kind: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Contiv's URL plural (`networks`, `endpointGroups`, `Bgps`, ...).
    const PLURAL: &'static str;

    /// The object's key as it appears in the URL (`tenant:network`, `hostname`, ...).
    fn key(&self) -> String;

    /// Checks the object on its own (no other objects needed).
    fn validate(&self) -> Result<(), IntentError>;

    /// Adds to `plan` what creating (`old == None`) or updating this object writes,
    /// including the object itself; refuses what the rules forbid.
    fn plan_put(
        world: &World,
        old: Option<&Self>,
        new: Self,
        plan: &mut Plan,
    ) -> Result<(), IntentError>;

    /// Adds to `plan` what deleting this object writes, including its own deletion;
    /// refuses while dependents exist.
    fn plan_delete(world: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError>;

    /// The `Oper` part of `inspect`.
    fn oper(world: &World, obj: &Self) -> Result<serde_json::Value, IntentError> {
        let _ = (world, obj);
        Ok(serde_json::Value::Object(Default::default()))
    }
}

/// How many recent changes the engine keeps for subscribers that resume.
const RECENT: usize = 8192;

/// One change of a configured object, as the feed publishes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub revision: Revision,
    /// The position of this write among the writes of its transaction (all writes of one
    /// transaction share the revision); `(revision, index)` orders every change.
    pub index: u32,
    pub plural: String,
    pub key: String,
    /// The new object, or `None` when it was deleted.
    pub value: Option<serde_json::Value>,
}

/// What subscribers of [`Engine::subscribe`] receive.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    Change(Change),
    /// Changes were lost (compaction): re-read the whole world.
    Resync,
}

/// The engine over one store.
#[derive(Debug)]
pub struct Engine {
    store: Arc<AnyStore>,
    world: RwLock<Arc<World>>,
    writer: tokio::sync::Mutex<()>,
    /// Requests waiting for the writer.
    pending: std::sync::Mutex<std::collections::VecDeque<Job>>,
    /// Every change seen by [`Engine::follow`], in revision order.
    changes: tokio::sync::broadcast::Sender<FeedItem>,
    /// The latest changes, so a subscriber can resume from a revision.
    recent: std::sync::Mutex<std::collections::VecDeque<Change>>,
    /// The `(revision, index)` of the last published change (`index` is `u32::MAX` when
    /// every change of that revision is included).
    published: watch::Sender<(Revision, u32)>,
    /// Where store operations are counted, once the server sets it.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// The result of a committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub revision: Revision,
}

impl Engine {
    /// Reads the world from the store.
    pub async fn open(store: Arc<AnyStore>) -> Result<Engine, IntentError> {
        let world = read_world(&store).await?;
        let published = watch::channel((world.revision, u32::MAX)).0;
        Ok(Engine {
            store,
            world: RwLock::new(Arc::new(world)),
            writer: tokio::sync::Mutex::new(()),
            pending: Default::default(),
            changes: tokio::sync::broadcast::channel(RECENT).0,
            recent: Default::default(),
            published,
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Counts store operations into `m` from now on.
    pub fn set_metrics(&self, m: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(m);
    }

    /// A receiver of the `(revision, index)` of the last published change.
    pub fn published_watch(&self) -> watch::Receiver<(Revision, u32)> {
        self.published.subscribe()
    }

    fn count_op(&self, op: &'static str, result: &'static str, secs: f64) {
        if let Some(m) = self.metrics.get() {
            m.store_ops
                .get_or_create(&vec![
                    ("op", op.to_string()),
                    ("result", result.to_string()),
                ])
                .inc();
            m.store_seconds
                .get_or_create(&vec![("op", op.to_string())])
                .observe(secs);
        }
    }

    pub fn store(&self) -> &Arc<AnyStore> {
        &self.store
    }

    /// The current world (cheap: shared).
    pub fn world(&self) -> Arc<World> {
        self.world.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs `w` unless a newer world is already installed (the watch and the
    /// writer race; the newest revision wins).
    fn set_world(&self, w: World) {
        let mut cur = self.world.write().unwrap_or_else(|p| p.into_inner());
        if w.revision >= cur.revision {
            *cur = Arc::new(w);
        }
    }

    /// Re-reads the world from the store.
    pub async fn refresh(&self) -> Result<(), IntentError> {
        let w = read_world(&self.store).await?;
        self.set_world(w);
        Ok(())
    }

    /// Keeps the world current from the store's watch (for followers, and for writes
    /// made by other netmasters). Returns when the watch fails; the caller restarts it.
    ///
    /// Every change is also published to subscribers, in revision order and exactly
    /// once, also across restarts of this loop; if the store compacted changes away, a
    /// [`FeedItem::Resync`] is published instead.
    pub async fn follow(&self) -> Result<(), StoreError> {
        use futures::StreamExt;
        let start = self.published_at();
        // Resume inside a transaction whose changes were only partly seen.
        let from = if start.1 == u32::MAX {
            start.0 + 1
        } else {
            start.0
        };
        let mut events = match self.store.watch("/contiv/", from).await {
            Err(StoreError::Compacted { .. }) => {
                self.refresh()
                    .await
                    .map_err(|e| StoreError::Unavailable(e.message))?;
                let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.clear();
                self.published
                    .send_replace((self.world().revision, u32::MAX));
                let _ = self.changes.send(FeedItem::Resync);
                return Ok(());
            }
            other => other?,
        };
        let (mut cur_rev, mut idx) = (-1, 0u32);
        while let Some(ev) = events.next().await {
            let ev = ev?;
            let rev = ev.revision();
            if rev == cur_rev {
                idx += 1;
            } else {
                (cur_rev, idx) = (rev, 0);
            }
            if (rev, idx) <= start {
                continue;
            }
            // The watch is the only writer of the world after it is read. All writes of
            // a transaction share its revision, so the rest of the revision the world is
            // at is applied too.
            {
                let mut cur = self.world.write().unwrap_or_else(|p| p.into_inner());
                if rev >= cur.revision {
                    let mut w = (**cur).clone();
                    apply_event(&mut w, &ev);
                    *cur = Arc::new(w);
                }
            }
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(change) = change_of(&ev, idx) {
                if recent.len() >= RECENT {
                    // Evict whole revisions, so what is kept can always be resumed from.
                    let gone = recent.front().map(|c| c.revision);
                    while recent.front().map(|c| c.revision) == gone {
                        recent.pop_front();
                    }
                }
                recent.push_back(change.clone());
                // Sent under the lock, so `subscribe` sees each change exactly once.
                let _ = self.changes.send(FeedItem::Change(change));
            }
            self.published.send_replace((rev, idx));
        }
        Ok(())
    }

    /// The `(revision, index)` of the last published change.
    pub fn published_at(&self) -> (Revision, u32) {
        *self.published.borrow()
    }

    /// Subscribes to changes after `from` (a `(revision, index)` position): returns the
    /// changes already published after it (or `None` when they are no longer kept: the
    /// caller must start from the whole world), and a receiver of the later ones.
    pub fn subscribe(
        &self,
        from: (Revision, u32),
    ) -> (
        Option<Vec<Change>>,
        tokio::sync::broadcast::Receiver<FeedItem>,
    ) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.changes.subscribe();
        let published = self.published_at();
        // A resume point this netmaster has not reached (another store, a restored
        // backup, or a made-up number) is no resume point: the subscriber gets a snapshot.
        let complete = from.0 <= published.0
            && match recent.front() {
                Some(oldest) => from.0.saturating_add(1) >= oldest.revision,
                None => from >= published || from.0 >= published.0,
            };
        let backlog = complete.then(|| {
            recent
                .iter()
                .filter(|c| (c.revision, c.index) > from)
                .cloned()
                .collect()
        });
        (backlog, rx)
    }

    /// The revision up to which changes have been published.
    pub fn published(&self) -> Revision {
        self.published_at().0
    }

    /// Creates or updates an object: validates it, checks the URL key matches it,
    /// plans against the world and commits.
    pub async fn put<K: Kind>(&self, url_key: &str, obj: K) -> Result<Committed, IntentError> {
        obj.validate()?;
        let key = obj.key();
        if key != url_key {
            return Err(IntentError::invalid_field(
                "key",
                format!(
                    "the URL names {}/{url_key} but the body describes {}/{key}",
                    K::PLURAL,
                    K::PLURAL
                ),
            ));
        }
        self.commit(move |w| {
            let old = w.get::<K>(&key)?;
            let mut plan = Plan::default();
            K::plan_put(w, old.as_ref(), obj.clone(), &mut plan)?;
            Ok(plan)
        })
        .await
    }

    /// Deletes an object.
    pub async fn delete<K: Kind>(&self, key: &str) -> Result<Committed, IntentError> {
        let key = key.to_string();
        self.commit(move |w| {
            let key = key.as_str();
            let Some(old) = w.get::<K>(key)? else {
                return Err(IntentError::not_found(format!("{}/{key}", K::PLURAL)));
            };
            let mut plan = Plan::default();
            K::plan_delete(w, &old, &mut plan)?;
            Ok(plan)
        })
        .await
    }

    /// Plans with `f` against the current world and commits, re-planning when another
    /// writer got there first.
    ///
    /// Concurrent requests are committed together (group commit): whoever holds the
    /// writer lock takes every waiting request, plans each against the world as the
    /// previous ones left it, and commits the accepted plans in one transaction. A
    /// request whose plan is refused gets its own error; the others are unaffected.
    pub async fn commit(
        &self,
        f: impl Fn(&World) -> Result<Plan, IntentError> + Send + Sync + 'static,
    ) -> Result<Committed, IntentError> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Job {
                plan: Box::new(f),
                reply: tx,
            });
        loop {
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            let _serial = self.writer.lock().await;
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            let jobs: Vec<Job> = {
                let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                let n = p.len().min(MAX_BATCH);
                p.drain(..n).collect()
            };
            self.commit_batch(jobs).await;
        }
    }

    async fn commit_batch(&self, mut jobs: Vec<Job>) {
        for _ in 0..MAX_ATTEMPTS {
            let world = self.world();
            let mut scratch = (*world).clone();
            let mut accepted = Vec::new();
            let mut writes: Vec<Write> = Vec::new();
            for job in jobs {
                match (job.plan)(&scratch) {
                    Ok(plan) => {
                        scratch.apply(&plan, world.revision);
                        writes.extend(plan.writes);
                        accepted.push(job);
                    }
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                    }
                }
            }
            if accepted.is_empty() {
                return;
            }
            // One write per key: the last one holds the combined state.
            let mut ops: Vec<(String, Op)> = Vec::new();
            for w in &writes {
                let op = match to_op(w) {
                    Ok(op) => op,
                    Err(e) => {
                        for j in accepted {
                            let _ = j.reply.send(Err(e.clone()));
                        }
                        return;
                    }
                };
                let key = match &op {
                    Op::Put { key, .. } | Op::Delete { key } => key.clone(),
                    Op::DeletePrefix { prefix } => prefix.clone(),
                };
                ops.retain(|(k, _)| *k != key);
                ops.push((key, op));
            }
            let n = ops.len() as u32;
            let mut txn = Txn::new().when(Compare::ModRevisionIs(keys::EPOCH.into(), world.epoch));
            for (_, op) in ops {
                txn = txn.then(op);
            }
            txn = txn.then(Op::put(keys::EPOCH, Vec::new()));
            let started = std::time::Instant::now();
            let res = self.store.txn(txn).await;
            let secs = started.elapsed().as_secs_f64();
            let res = match res {
                Ok(r) => {
                    self.count_op(
                        "txn",
                        if r.succeeded { "committed" } else { "conflict" },
                        secs,
                    );
                    r
                }
                Err(e) => {
                    self.count_op("txn", "error", secs);
                    let e: IntentError = e.into();
                    for j in accepted {
                        let _ = j.reply.send(Err(e.clone()));
                    }
                    return;
                }
            };
            if res.succeeded {
                // Read-your-writes: wait until the watch has applied the whole
                // transaction (its writes plus the epoch bump), then answer.
                let last = (res.revision, n);
                let mut rx = self.published.subscribe();
                let seen = tokio::time::timeout(APPLY_WAIT, rx.wait_for(|p| *p >= last))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if !seen && let Err(e) = self.refresh().await {
                    tracing::warn!("re-reading the world after a commit: {e}");
                }
                for j in accepted {
                    let _ = j.reply.send(Ok(Committed {
                        revision: res.revision,
                    }));
                }
                return;
            }
            if let Err(e) = self.refresh().await {
                for j in accepted {
                    let _ = j.reply.send(Err(e.clone()));
                }
                return;
            }
            jobs = accepted;
        }
        for j in jobs {
            let _ = j.reply.send(Err(IntentError::conflict(
                "too many concurrent writers; try again",
            )));
        }
    }
}

/// Turns the world into the writes of one request.
type Planner = Box<dyn Fn(&World) -> Result<Plan, IntentError> + Send + Sync>;

/// A request waiting to be committed.
struct Job {
    plan: Planner,
    reply: tokio::sync::oneshot::Sender<Result<Committed, IntentError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// Requests committed together at most (etcd allows 128 operations per transaction;
/// a plan writes a few keys).
const MAX_BATCH: usize = 24;

fn to_op(w: &Write) -> Result<Op, IntentError> {
    let enc = |v: &serde_json::Value| {
        serde_json::to_vec(v).map_err(|e| IntentError::internal(format!("cannot encode: {e}")))
    };
    Ok(match w {
        Write::PutObject { plural, key, value } => Op::put(keys::config(plural, key), enc(value)?),
        Write::DeleteObject { plural, key } => Op::delete(keys::config(plural, key)),
        Write::PutState { name, value } => Op::put(keys::state(name), enc(value)?),
        Write::DeleteState { name } => Op::delete(keys::state(name)),
    })
}

async fn read_world(store: &AnyStore) -> Result<World, IntentError> {
    let (kvs, rev) = store.list("/contiv/").await?;
    World::from_kvs(
        kvs.iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_slice(), kv.mod_revision)),
        rev,
    )
    .map_err(|e| IntentError::internal(format!("the store holds unreadable intent: {e}")))
}

fn change_of(ev: &Event, index: u32) -> Option<Change> {
    let rest = ev.key().strip_prefix(keys::CONFIG)?;
    let (plural, key) = rest.split_once('/')?;
    let value = match ev {
        Event::Put(kv) => Some(serde_json::from_slice(&kv.value).ok()?),
        Event::Delete { .. } => None,
    };
    Some(Change {
        revision: ev.revision(),
        index,
        plural: plural.into(),
        key: key.into(),
        value,
    })
}

fn apply_event(w: &mut World, ev: &Event) {
    let rev = ev.revision();
    let mut one = match ev {
        Event::Put(kv) => {
            match World::from_kvs(
                [(kv.key.as_str(), kv.value.as_slice(), kv.mod_revision)],
                rev,
            ) {
                Ok(one) => one,
                Err(e) => {
                    tracing::warn!("ignoring unreadable change: {e}");
                    return;
                }
            }
        }
        Event::Delete { .. } => World::default(),
    };
    w.merge_change(ev.key(), &mut one, rev);
}
