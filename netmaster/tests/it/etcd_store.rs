//! The store conformance suite against a real etcd (Debian's etcd-server 3.4), started by
//! each test on free loopback ports.

use crate::common;

use netmaster::store::{EtcdStore, StoreError, conformance};

async fn store(etcd: &common::Etcd) -> EtcdStore {
    EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), "/contiv-test")
        .await
        .unwrap()
}

#[tokio::test]
async fn etcd_conformance_basic() {
    let etcd = common::Etcd::start();
    conformance::basic(&store(&etcd).await, "/t").await;
}

#[tokio::test]
async fn etcd_conformance_transactions() {
    let etcd = common::Etcd::start();
    conformance::transactions(&store(&etcd).await, "/t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_conformance_no_lost_updates() {
    let etcd = common::Etcd::start();
    conformance::no_lost_updates(&store(&etcd).await, "/t").await;
}

#[tokio::test]
async fn etcd_conformance_watches() {
    let etcd = common::Etcd::start();
    conformance::watches(&store(&etcd).await, "/t").await;
}

#[tokio::test]
async fn etcd_conformance_compaction() {
    let etcd = common::Etcd::start();
    conformance::compaction(&store(&etcd).await, "/t").await;
}

#[tokio::test]
async fn unreachable_etcd_is_a_clear_error() {
    // Nothing listens on port 1 of the loopback address.
    let err = EtcdStore::connect(&["127.0.0.1:1".to_string()], "/x").await;
    let err = match err {
        Err(e) => e,
        Ok(s) => {
            use netmaster::store::Store;
            s.get("/k").await.unwrap_err()
        }
    };
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}
