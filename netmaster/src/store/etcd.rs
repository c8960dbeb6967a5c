//! The cluster store: a real etcd (v3 API), every key under a root prefix so several
//! contiv-rs clusters (or test runs) can share one etcd.

use std::time::Duration;

use etcd_client::{
    Client, Compare as ECompare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Txn as ETxn, TxnOp, WatchOptions,
};
use futures::StreamExt;

use super::{
    Compare, Event, KeyValue, Op, Revision, Store, StoreError, Txn, TxnResult, WatchStream,
};

/// A store on an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    root: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: etcd_client::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl EtcdStore {
    /// Connects to the cluster (`host:port` or URLs); every key lives under `root`.
    pub async fn connect(endpoints: &[String], root: &str) -> Result<EtcdStore, StoreError> {
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(opts))
            .await
            .map_err(|e| StoreError::Unavailable(format!("etcd {}: {e}", endpoints.join(","))))?;
        Ok(EtcdStore {
            client,
            root: root.to_string(),
        })
    }

    /// The etcd client (shared with leader election).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    fn strip(&self, key: &[u8]) -> Result<String, StoreError> {
        let k = std::str::from_utf8(key)
            .map_err(|_| StoreError::Corrupt("a key is not UTF-8".into()))?;
        Ok(k.strip_prefix(self.root.as_str()).unwrap_or(k).to_string())
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.strip(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    fn op(&self, op: &Op) -> TxnOp {
        match op {
            Op::Put { key, value } => TxnOp::put(self.full(key), value.clone(), None),
            Op::Delete { key } => TxnOp::delete(self.full(key), None),
            Op::DeletePrefix { prefix } => {
                TxnOp::delete(self.full(prefix), Some(DeleteOptions::new().with_prefix()))
            }
        }
    }

    fn compare(&self, c: &Compare) -> ECompare {
        match c {
            Compare::Exists(k) => ECompare::version(self.full(k), CompareOp::Greater, 0),
            Compare::Absent(k) => ECompare::version(self.full(k), CompareOp::Equal, 0),
            Compare::ValueIs(k, v) => ECompare::value(self.full(k), CompareOp::Equal, v.clone()),
            Compare::ModRevisionIs(k, r) => {
                ECompare::mod_revision(self.full(k), CompareOp::Equal, *r)
            }
            Compare::VersionIs(k, v) => ECompare::version(self.full(k), CompareOp::Equal, *v),
        }
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let r = self
            .client
            .kv_client()
            .get(self.full(""), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(unavailable)?;
        Ok(r.header().map_or(0, |h| h.revision()))
    }
}

impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let r = self
            .client
            .kv_client()
            .get(self.full(key), None)
            .await
            .map_err(unavailable)?;
        r.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let r = self
            .client
            .kv_client()
            .get(self.full(prefix), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(unavailable)?;
        let kvs = r
            .kvs()
            .iter()
            .map(|kv| self.kv(kv))
            .collect::<Result<_, _>>()?;
        Ok((kvs, r.header().map_or(0, |h| h.revision())))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        let t = ETxn::new()
            .when(txn.when.iter().map(|c| self.compare(c)).collect::<Vec<_>>())
            .and_then(txn.then.iter().map(|o| self.op(o)).collect::<Vec<_>>())
            .or_else(txn.otherwise.iter().map(|o| self.op(o)).collect::<Vec<_>>());
        let r = self.client.kv_client().txn(t).await.map_err(unavailable)?;
        Ok(TxnResult {
            succeeded: r.succeeded(),
            revision: r.header().map_or(0, |h| h.revision()),
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        let mut opts = WatchOptions::new().with_prefix();
        if from > 0 {
            opts = opts.with_start_revision(from);
        }
        let mut stream = self
            .client
            .watch_client()
            .watch(self.full(prefix), Some(opts))
            .await
            .map_err(unavailable)?;
        let this = self.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Event, StoreError>>(1024);
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = tx.closed() => return,
                    m = stream.next() => m,
                };
                let resp = match msg {
                    None => {
                        let _ = tx
                            .send(Err(StoreError::Unavailable("etcd watch ended".into())))
                            .await;
                        return;
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                    Some(Ok(r)) => r,
                };
                if resp.canceled() {
                    let err = if resp.compact_revision() > 0 {
                        StoreError::Compacted {
                            requested: from,
                            compacted: resp.compact_revision(),
                        }
                    } else {
                        StoreError::Unavailable(format!(
                            "etcd canceled the watch: {}",
                            resp.cancel_reason()
                        ))
                    };
                    let _ = tx.send(Err(err)).await;
                    return;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let item = match ev.event_type() {
                        EventType::Put => this.kv(kv).map(Event::Put),
                        EventType::Delete => this.strip(kv.key()).map(|key| Event::Delete {
                            key,
                            revision: kv.mod_revision(),
                        }),
                    };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(futures::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let target = revision.min(self.revision().await?);
        match self.client.kv_client().compact(target, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("has been compacted") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
