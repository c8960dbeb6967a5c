//! The netplugin feed, over plain HTTP:
//!
//! - `GET /api/v1/feed/?from=<revision>` streams newline-delimited JSON: a `snapshot`
//!   (every configured object and the revision it was read at) unless the subscriber can
//!   resume from `from` (and `index`), then one `change` per object change in
//!   `(revision, index)` order (the writes of one transaction share a revision), and a
//!   `heartbeat` every few seconds so a dead connection is noticed. A subscriber applies a
//!   change only if its `(revision, index)` is above the last one it applied, remembers
//!   it, and reconnects with `from` and `index` set to it: nothing is missed or repeated.
//! - `PUT /api/v1/feed/hosts/<host>/` stores a netplugin's report (its endpoints, BGP
//!   sessions, learned routes) under the host's name, stamped with the time it arrived;
//!   `GET /api/v1/feed/hosts/` lists every host's report (the cluster-wide view).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState, json, parse_body};
use crate::intent::{Change, FeedItem, keys};
use crate::store::{Revision, Store};
pub use contiv_model::feed::{FeedChange, FeedLine, HostReport, SnapshotObject};

fn feed_change(c: Change) -> FeedChange {
    FeedChange {
        revision: c.revision,
        index: c.index,
        plural: c.plural,
        key: c.key,
        value: c.value,
    }
}

/// How long a subscriber resuming from a revision this netmaster has not published yet
/// waits for it before it gets a snapshot instead.
pub const CATCH_UP: Duration = Duration::from_secs(2);

/// How often an idle feed sends a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    #[serde(default)]
    from: Revision,
    /// The index of the last change seen at `from`; absent means all of them.
    #[serde(default)]
    index: Option<u32>,
}

fn line(l: &FeedLine) -> Bytes {
    let mut v = serde_json::to_vec(l).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn snapshot(st: &AppState) -> (Revision, Bytes) {
    let world = st.engine.world();
    let objects = world
        .all_objects()
        .map(|(p, k, v)| SnapshotObject {
            plural: p.into(),
            key: k.into(),
            value: v.clone(),
        })
        .collect();
    (
        world.revision,
        line(&FeedLine::Snapshot {
            revision: world.revision,
            objects,
        }),
    )
}

/// Reads the feed's query: `from` must be a revision (not negative), `index` a u32.
fn feed_query(
    q: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<FeedQuery, ApiError> {
    let Query(q) = q.map_err(|e| {
        let msg = e.body_text();
        let field = if msg.contains("index") {
            "index"
        } else {
            "from"
        };
        ApiError::invalid_field(field, format!("bad query string: {msg}"))
    })?;
    if q.from < 0 {
        return Err(ApiError::invalid_field(
            "from",
            format!("{} is not a revision (0 or more)", q.from),
        ));
    }
    Ok(q)
}

pub(super) async fn feed(
    State(st): State<AppState>,
    caller: super::auth::Caller,
    q: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match feed_query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let st2 = st.clone();
    tokio::spawn(async move {
        let st = st2;
        st.metrics.feed_subscribers.inc();
        let _gauge = scopeguard(|| {
            st.metrics.feed_subscribers.dec();
        });
        let from = (q.from, q.index.unwrap_or(u32::MAX));
        // A resume point ahead of this netmaster: a follower a little behind the leader
        // the subscriber was on catches up within moments, and then resumes it; a point
        // it does not reach (another store, a restored backup, a made-up number) gets a
        // snapshot from `subscribe`.
        if q.from > st.engine.published() {
            let mut published = st.engine.published_watch();
            let _ = tokio::time::timeout(CATCH_UP, published.wait_for(|p| p.0 >= q.from)).await;
        }
        let (backlog, mut changes) = st.engine.subscribe(from);
        let mut last = from;
        match backlog {
            Some(b) if q.from > 0 => {
                for c in b {
                    last = (c.revision, c.index);
                    if tx
                        .send(line(&FeedLine::Change(feed_change(c))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            _ => {
                let (rev, snap) = snapshot(&st);
                last = (rev, u32::MAX);
                if tx.send(snap).await.is_err() {
                    return;
                }
            }
        }
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        loop {
            let out = tokio::select! {
                item = changes.recv() => match item {
                    Ok(FeedItem::Change(c)) if (c.revision, c.index) > last => {
                        last = (c.revision, c.index);
                        line(&FeedLine::Change(feed_change(c)))
                    }
                    Ok(FeedItem::Change(_)) => continue,
                    Ok(FeedItem::Resync) | Err(RecvError::Lagged(_)) => {
                        let (rev, snap) = snapshot(&st);
                        last = (rev, u32::MAX);
                        snap
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = beat.tick() => {
                    // A host credential deleted (or replaced) since the stream began ends it.
                    if !super::auth::still_valid(&st, &caller).await {
                        tracing::info!("feed of {caller:?}: its credential was revoked; closing");
                        return;
                    }
                    line(&FeedLine::Heartbeat { revision: last.0.max(st.engine.published()) })
                }
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(Ok::<_, std::convert::Infallible>))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Runs a closure when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}

pub(super) async fn put_report(
    State(st): State<AppState>,
    host: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| super::body_error(&e))?;
    let host = super::host_name(host)?;
    let mut report: HostReport = parse_body(&body)?;
    if let Some(p) = report.policy.as_ref().filter(|p| p.revision < 0) {
        return Err(ApiError::invalid_field(
            "policy.revision",
            format!("{} is not a revision (0 or more)", p.revision),
        ));
    }
    report.last_seen = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let value = serde_json::to_vec(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    st.engine
        .store()
        .put(&keys::oper(&format!("hosts/{host}")), value)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_reports(State(st): State<AppState>) -> Result<Response, ApiError> {
    let (kvs, _) = st.engine.store().list(&keys::oper("hosts/")).await?;
    let mut out = BTreeMap::new();
    for kv in kvs {
        let host = kv.key.rsplit('/').next().unwrap_or_default().to_string();
        let v: serde_json::Value =
            serde_json::from_slice(&kv.value).unwrap_or(serde_json::Value::Null);
        out.insert(host, v);
    }
    Ok(json(StatusCode::OK, &out))
}
