//! The state store: one interface, two backends.
//!
//! netmaster keeps every object, allocation and counter in a key-value store with etcd's
//! semantics, so the same code runs on one machine and on a cluster:
//! - a global **revision** that grows by one for every transaction that changes something;
//!   every key records the revision that created it, the one that last modified it and its
//!   version (number of writes since creation);
//! - **transactions**: compare (value, version, revisions, existence) then a list of puts
//!   and deletes, or another list when the comparison fails; all writes of one transaction
//!   carry the same revision, so an object and its allocations commit together;
//! - **watches** from a revision: a watcher that reconnects with the last revision it saw
//!   gets every later event exactly once, in order, or a `Compacted` error telling it to
//!   re-list.
//!
//! [`RedbStore`] is the embedded default (a single file, no other service); [`EtcdStore`]
//! talks to a real etcd cluster. [`conformance`] is the test suite both must pass.

pub mod conformance;
mod etcd;
mod etcd_access;
mod redb;

use std::future::Future;
use std::pin::Pin;

use futures::Stream;

pub use self::etcd::EtcdStore;
pub use self::etcd_access::{AccessError, ClientCert, EtcdAccess, EtcdUser};
pub use self::redb::RedbStore;

/// A store revision (etcd's `int64` revision; 0 means "none").
pub type Revision = i64;

/// A key with its value and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the write that created the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
    /// Writes since creation (1 after the first put).
    pub version: i64,
}

/// A condition on one key, checked atomically with a transaction's writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key exists.
    Exists(String),
    /// The key does not exist.
    Absent(String),
    /// The key's value equals this (false when absent).
    ValueIs(String, Vec<u8>),
    /// The key's mod revision equals this (0 when absent).
    ModRevisionIs(String, Revision),
    /// The key's version equals this (0 when absent).
    VersionIs(String, i64),
}

/// A write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    /// Deletes every key that starts with the prefix.
    DeletePrefix {
        prefix: String,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete { key: key.into() }
    }
}

/// If every comparison holds, apply `then`; otherwise apply `otherwise`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub when: Vec<Compare>,
    pub then: Vec<Op>,
    pub otherwise: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn when(mut self, c: Compare) -> Txn {
        self.when.push(c);
        self
    }

    pub fn then(mut self, op: Op) -> Txn {
        self.then.push(op);
        self
    }

    pub fn otherwise(mut self, op: Op) -> Txn {
        self.otherwise.push(op);
        self
    }
}

/// The outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the comparisons held (`then` was applied).
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: Revision,
}

/// A change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was created or updated; the value is the new one.
    Put(KeyValue),
    /// The key was deleted at `revision`.
    Delete { key: String, revision: Revision },
}

impl Event {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put(kv) => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Event::Put(kv) => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }
}

/// A stream of watch events, in revision order.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested revision was compacted away; re-list, then watch from the list's
    /// revision.
    #[error(
        "revision {requested} is compacted (oldest kept: {compacted}); re-list and watch again"
    )]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The store cannot be reached or refused the request.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's data is unreadable.
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// The store refused our credentials or trust settings, or they cannot be used
    /// (unreadable file, TLS handshake refused, wrong password): retrying will not help.
    #[error("etcd access: {0}")]
    Access(String),
    /// The embedded store is held by another netmaster.
    #[error(
        "store {path} is locked by another process (another netmaster on the same --data-dir?)"
    )]
    Locked { path: String },
}

/// The store interface. Implemented by [`RedbStore`] and [`EtcdStore`]; [`AnyStore`]
/// chooses one at run time.
pub trait Store: Send + Sync {
    /// One key.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<KeyValue>, StoreError>> + Send;

    /// Every key under `prefix`, in key order, and the revision the listing reflects.
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<(Vec<KeyValue>, Revision), StoreError>> + Send;

    /// Runs a transaction atomically.
    fn txn(&self, txn: Txn) -> impl Future<Output = Result<TxnResult, StoreError>> + Send;

    /// Watches keys under `prefix` for changes at revisions >= `from` (use the listing's
    /// revision + 1 to continue from a [`Store::list`]; 0 watches from now on).
    fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> impl Future<Output = Result<WatchStream, StoreError>> + Send;

    /// Forgets history before `revision` (watches from older revisions fail).
    fn compact(&self, revision: Revision) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts one key unconditionally.
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<Revision, StoreError>> + Send {
        async move {
            Ok(self
                .txn(Txn::new().then(Op::put(key, value)))
                .await?
                .revision)
        }
    }

    /// Deletes one key unconditionally.
    fn delete(&self, key: &str) -> impl Future<Output = Result<Revision, StoreError>> + Send {
        async move { Ok(self.txn(Txn::new().then(Op::delete(key))).await?.revision) }
    }
}

/// The backend chosen at start-up.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Redb(RedbStore),
    Etcd(Box<EtcdStore>),
}

impl Store for AnyStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        match self {
            AnyStore::Redb(s) => s.get(key).await,
            AnyStore::Etcd(s) => s.get(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        match self {
            AnyStore::Redb(s) => s.list(prefix).await,
            AnyStore::Etcd(s) => s.list(prefix).await,
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        match self {
            AnyStore::Redb(s) => s.txn(txn).await,
            AnyStore::Etcd(s) => s.txn(txn).await,
        }
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        match self {
            AnyStore::Redb(s) => s.watch(prefix, from).await,
            AnyStore::Etcd(s) => s.watch(prefix, from).await,
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self {
            AnyStore::Redb(s) => s.compact(revision).await,
            AnyStore::Etcd(s) => s.compact(revision).await,
        }
    }
}
