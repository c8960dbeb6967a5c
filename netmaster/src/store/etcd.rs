//! The cluster store: a real etcd (v3 API), every key under a root prefix so several
//! contiv-rs clusters (or test runs) can share one etcd.

use etcd_client::{
    Client, Compare as ECompare, CompareOp, DeleteOptions, EventType, GetOptions, Txn as ETxn,
    TxnOp, WatchOptions,
};
use futures::StreamExt;

use super::etcd_access::{EtcdAccess, REQUEST_TIMEOUT};
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
    StoreError::Unavailable(describe(&e))
}

/// An etcd client error as one line: etcd's message and the causes below it (the
/// transport's, the TLS library's), without the gRPC wrapping.
fn describe(e: &etcd_client::Error) -> String {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return e.to_string();
    };
    let mut out = status.message().to_string();
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

/// Why connecting (and the first read under `root`) failed: a refusal that retrying will
/// not fix is [`StoreError::Access`], naming what was refused; anything else is
/// [`StoreError::Unavailable`]. `None` is a timeout.
async fn explain_failure(
    e: Option<etcd_client::Error>,
    urls: &[String],
    root: &str,
    access: &EtcdAccess,
) -> StoreError {
    let at = urls.join(",");
    if let Some(etcd_client::Error::GRpcStatus(status)) = &e {
        let msg = status.message();
        if msg.contains("authentication failed") {
            let user = access.user.as_ref().map_or("", |u| u.name.as_str());
            return StoreError::Access(format!(
                "etcd {at} refused user {user:?}: {msg} (check --etcd-user and --etcd-password-file)"
            ));
        }
        if msg.contains("permission denied") || msg.contains("user name is empty") {
            let hint = if access.user.is_none() {
                "etcd has authentication on: give --etcd-user and --etcd-password-file"
            } else {
                "grant the user's role readwrite on the key prefix"
            };
            return StoreError::Access(format!(
                "etcd {at} refused to read under {root}: {msg} ({hint})"
            ));
        }
    }
    // Below gRPC: the connection itself. Our own handshake tells why TLS failed.
    for url in urls.iter().filter(|u| u.starts_with("https://")) {
        if let Some(why) = access.tls_refusal(url).await {
            return StoreError::Access(format!("etcd {url}: {why}"));
        }
    }
    let what = match &e {
        Some(e) => describe(e),
        None => format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
    };
    let hint = if !access.tls() && e.is_some() && urls.iter().all(|u| u.starts_with("http://")) {
        " (if etcd serves TLS, use https:// endpoints with --etcd-ca)"
    } else {
        ""
    };
    StoreError::Unavailable(format!("etcd {at}: {what}{hint}"))
}

impl EtcdStore {
    /// Connects to the cluster (`host:port` or `http://` URLs) without credentials; every
    /// key lives under `root`.
    pub async fn connect(endpoints: &[String], root: &str) -> Result<EtcdStore, StoreError> {
        EtcdStore::connect_with(endpoints, root, &EtcdAccess::default()).await
    }

    /// Connects to the cluster with `access` (TLS, client certificate, user), then reads
    /// under `root` once, so that a refused handshake, a wrong password or a missing
    /// permission is an error here, within [`REQUEST_TIMEOUT`], not a retry loop later.
    pub async fn connect_with(
        endpoints: &[String],
        root: &str,
        access: &EtcdAccess,
    ) -> Result<EtcdStore, StoreError> {
        let urls = access
            .urls(endpoints)
            .map_err(|e| StoreError::Access(e.to_string()))?;
        let opts = access
            .connect_options()
            .map_err(|e| StoreError::Access(e.to_string()))?;
        let connected = async {
            let client = Client::connect(&urls, Some(opts)).await?;
            let store = EtcdStore {
                client,
                root: root.to_string(),
            };
            store
                .client
                .kv_client()
                .get(
                    store.full("/"),
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await?;
            Ok::<_, etcd_client::Error>(store)
        };
        let failure = match tokio::time::timeout(REQUEST_TIMEOUT, connected).await {
            Ok(Ok(store)) => return Ok(store),
            Ok(Err(e)) => Some(e),
            Err(_) => None,
        };
        Err(explain_failure(failure, &urls, root, access).await)
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
