//! The behaviour every [`Store`] backend must show, as async checks that panic on a
//! violation. The unit tests run them on [`super::RedbStore`]; the integration tests run
//! them on [`super::EtcdStore`] against a real etcd. Each check works under its own key
//! prefix, so checks can share a store.

use std::time::Duration;

use futures::StreamExt;

use super::{Compare, Event, Op, Store, StoreError, Txn, WatchStream};

const WAIT: Duration = Duration::from_secs(10);

async fn next(w: &mut WatchStream) -> Event {
    tokio::time::timeout(WAIT, w.next())
        .await
        .expect("a watch event within the deadline")
        .expect("the watch stream is open")
        .expect("no watch error")
}

async fn nothing_more(w: &mut WatchStream) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), w.next()).await {
        panic!("unexpected watch event {ev:?}");
    }
}

/// Puts, gets, lists, deletes, and the revision/version bookkeeping.
pub async fn basic(s: &impl Store, p: &str) {
    let a = format!("{p}/a");
    assert_eq!(s.get(&a).await.unwrap(), None);
    let r1 = s.put(&a, b"one".to_vec()).await.unwrap();
    let kv = s.get(&a).await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"one"[..], r1, r1, 1)
    );
    let r2 = s.put(&a, b"two".to_vec()).await.unwrap();
    assert!(r2 > r1);
    let kv = s.get(&a).await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    s.put(&format!("{p}/c"), b"c".to_vec()).await.unwrap();
    let r3 = s.put(&format!("{p}/b"), b"b".to_vec()).await.unwrap();
    s.put(&format!("{p}x/other"), b"not under {p}/".to_vec())
        .await
        .unwrap();
    let (list, rev) = s.list(&format!("{p}/")).await.unwrap();
    let keys: Vec<_> = list.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![a.as_str(), &format!("{p}/b"), &format!("{p}/c")],
        "key order"
    );
    assert!(rev > r3);
    let r4 = s.delete(&a).await.unwrap();
    assert_eq!(s.get(&a).await.unwrap(), None);
    // Deleting what does not exist changes nothing, not even the revision.
    let r5 = s.delete(&a).await.unwrap();
    assert_eq!(r5, r4);
    // Deleting a prefix deletes exactly what is under it.
    let t = s
        .txn(Txn::new().then(Op::DeletePrefix {
            prefix: format!("{p}/"),
        }))
        .await
        .unwrap();
    assert!(t.succeeded && t.revision > r5);
    assert!(s.list(&format!("{p}/")).await.unwrap().0.is_empty());
    assert!(s.get(&format!("{p}x/other")).await.unwrap().is_some());
}

/// Compare-and-swap transactions.
pub async fn transactions(s: &impl Store, p: &str) {
    let k = format!("{p}/k");
    let create = || {
        Txn::new()
            .when(Compare::Absent(k.clone()))
            .then(Op::put(k.clone(), "v1"))
    };
    let t1 = s.txn(create()).await.unwrap();
    assert!(t1.succeeded);
    let t2 = s
        .txn(create().otherwise(Op::put(format!("{p}/lost"), "x")))
        .await
        .unwrap();
    assert!(!t2.succeeded, "create-if-absent succeeds once");
    assert!(
        s.get(&format!("{p}/lost")).await.unwrap().is_some(),
        "otherwise branch applied"
    );
    // A failed comparison with no otherwise branch writes nothing and keeps the revision.
    let t3 = s
        .txn(
            Txn::new()
                .when(Compare::ValueIs(k.clone(), b"nope".to_vec()))
                .then(Op::delete(k.clone())),
        )
        .await
        .unwrap();
    assert!(!t3.succeeded);
    assert_eq!(t3.revision, t2.revision);
    let kv = s.get(&k).await.unwrap().unwrap();
    let t4 = s
        .txn(
            Txn::new()
                .when(Compare::ModRevisionIs(k.clone(), kv.mod_revision))
                .when(Compare::VersionIs(k.clone(), 1))
                .when(Compare::Exists(k.clone()))
                .when(Compare::ValueIs(k.clone(), b"v1".to_vec()))
                .then(Op::put(k.clone(), "v2"))
                .then(Op::put(format!("{p}/alloc"), "10.0.0.1")),
        )
        .await
        .unwrap();
    assert!(t4.succeeded);
    // All writes of one transaction carry one revision.
    let a = s.get(&k).await.unwrap().unwrap();
    let b = s.get(&format!("{p}/alloc")).await.unwrap().unwrap();
    assert_eq!((a.mod_revision, b.mod_revision), (t4.revision, t4.revision));
    assert_eq!(t4.revision, t3.revision + 1);
}

/// Concurrent compare-and-swap increments lose no update.
pub async fn no_lost_updates(s: &(impl Store + Clone + 'static), p: &str) {
    let k = format!("{p}/counter");
    s.put(&k, b"0".to_vec()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 25 {
                let kv = s.get(&k).await.unwrap().unwrap();
                let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                let t = s
                    .txn(
                        Txn::new()
                            .when(Compare::ModRevisionIs(k.clone(), kv.mod_revision))
                            .then(Op::put(k.clone(), (n + 1).to_string())),
                    )
                    .await
                    .unwrap();
                if t.succeeded {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value, b"100");
    assert_eq!(kv.version, 101);
}

/// Watches deliver every change once, in order, and resume from a revision.
pub async fn watches(s: &impl Store, p: &str) {
    let r0 = s.put(&format!("{p}/a"), b"1".to_vec()).await.unwrap();
    let r1 = s.put(&format!("{p}/b"), b"2".to_vec()).await.unwrap();
    s.put(&format!("{p}-sibling"), b"x".to_vec()).await.unwrap();
    let r2 = s.put(&format!("{p}/c"), b"3".to_vec()).await.unwrap();
    // From a past revision: history first...
    let mut w = s.watch(&format!("{p}/"), r0).await.unwrap();
    for (key, rev) in [("a", r0), ("b", r1), ("c", r2)] {
        let ev = next(&mut w).await;
        assert_eq!(
            (ev.key(), ev.revision()),
            (format!("{p}/{key}").as_str(), rev)
        );
    }
    // ...then live changes, in order, prefix-filtered.
    let mut now = s.watch(&format!("{p}/"), 0).await.unwrap();
    let r3 = s.put(&format!("{p}/d"), b"4".to_vec()).await.unwrap();
    s.put(&format!("{p}-sibling"), b"y".to_vec()).await.unwrap();
    let r4 = s.delete(&format!("{p}/a")).await.unwrap();
    for w in [&mut w, &mut now] {
        let ev = next(w).await;
        assert!(
            matches!(&ev, Event::Put(kv) if kv.key == format!("{p}/d") && kv.value == b"4" && kv.mod_revision == r3),
            "{ev:?}"
        );
        let ev = next(w).await;
        assert_eq!(
            ev,
            Event::Delete {
                key: format!("{p}/a"),
                revision: r4
            }
        );
        nothing_more(w).await;
    }
    // A watcher that saw up to r2 resumes from r2 + 1 and gets exactly the rest.
    let mut resumed = s.watch(&format!("{p}/"), r2 + 1).await.unwrap();
    assert_eq!(next(&mut resumed).await.revision(), r3);
    assert_eq!(next(&mut resumed).await.revision(), r4);
    nothing_more(&mut resumed).await;
}

/// History before a compaction is gone, and a watch from there says so.
pub async fn compaction(s: &impl Store, p: &str) {
    let r1 = s.put(&format!("{p}/x"), b"1".to_vec()).await.unwrap();
    let r2 = s.put(&format!("{p}/x"), b"2".to_vec()).await.unwrap();
    s.compact(r2).await.unwrap();
    let err = match s.watch(&format!("{p}/"), r1).await {
        Err(e) => e,
        Ok(mut w) => match tokio::time::timeout(WAIT, w.next())
            .await
            .expect("an answer")
        {
            Some(Err(e)) => e,
            other => panic!("watch from a compacted revision gave {other:?}"),
        },
    };
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
    let mut w = s.watch(&format!("{p}/"), r2).await.unwrap();
    assert_eq!(next(&mut w).await.revision(), r2);
    // Compacting again (or to an older revision) is harmless.
    s.compact(r1).await.unwrap();
}
