//! The netplugin feed: a snapshot, then every change once, in order; resuming from a
//! revision neither misses nor repeats; host reports are stored and listed.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use netmaster::api::feed::FeedLine;
use netmaster::intent::IntentError;
use netmaster::intent::{Kind, Plan, World};
use netmaster::server::{self, Config};
use serde::{Deserialize, Serialize};

/// A throwaway kind, so the feed is tested apart from Contiv's rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Thing {
    name: String,
    size: u32,
}

impl Kind for Thing {
    const PLURAL: &'static str = "things";
    fn key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), IntentError> {
        Ok(())
    }
    fn plan_put(
        _: &World,
        _: Option<&Self>,
        new: Self,
        plan: &mut Plan,
    ) -> Result<(), IntentError> {
        plan.put(&new)
    }
    fn plan_delete(_: &World, old: &Self, plan: &mut Plan) -> Result<(), IntentError> {
        plan.delete::<Thing>(&old.name);
        Ok(())
    }
}

struct Feed {
    lines: std::pin::Pin<Box<dyn futures::Stream<Item = FeedLine> + Send>>,
}

impl Feed {
    async fn open(url: &str, from: i64) -> Feed {
        let resp = reqwest::get(format!("{url}/api/v1/feed/?from={from}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes_stream();
        let lines = futures::stream::unfold(
            (bytes, Vec::new()),
            move |(mut bytes, mut pending): (_, Vec<u8>)| async move {
                loop {
                    if let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let rest = pending.split_off(i + 1);
                        let line: FeedLine = serde_json::from_slice(&pending).unwrap();
                        return Some((line, (bytes, rest)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                        _ => return None,
                    }
                }
            },
        );
        Feed {
            lines: Box::pin(lines),
        }
    }

    /// The next line that is not a heartbeat.
    async fn next(&mut self) -> FeedLine {
        loop {
            let l = tokio::time::timeout(Duration::from_secs(20), self.lines.next())
                .await
                .expect("a feed line within 20 s")
                .expect("the feed is open");
            if !matches!(l, FeedLine::Heartbeat { .. }) {
                return l;
            }
        }
    }
}

#[tokio::test]
async fn snapshot_then_changes_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let nm = server::start(Config::embedded(addr, dir.path().to_path_buf()))
        .await
        .unwrap();
    nm.engine
        .put(
            "a",
            Thing {
                name: "a".into(),
                size: 1,
            },
        )
        .await
        .unwrap();

    let mut feed = Feed::open(&nm.url(), 0).await;
    let FeedLine::Snapshot { revision, objects } = feed.next().await else {
        panic!("snapshot first")
    };
    assert!(
        objects.iter().any(|o| o.plural == "things" && o.key == "a"),
        "{objects:?}"
    );

    nm.engine
        .put(
            "b",
            Thing {
                name: "b".into(),
                size: 2,
            },
        )
        .await
        .unwrap();
    nm.engine.delete::<Thing>("a").await.unwrap();
    let FeedLine::Change(c1) = feed.next().await else {
        panic!("change")
    };
    assert_eq!((c1.key.as_str(), c1.value.is_some()), ("b", true));
    assert!(c1.revision > revision);
    let FeedLine::Change(c2) = feed.next().await else {
        panic!("change")
    };
    assert_eq!((c2.key.as_str(), c2.value.is_none()), ("a", true));
    assert!(c2.revision > c1.revision);

    // Resuming after c1 yields exactly c2 and then what follows.
    let mut resumed = Feed::open(&nm.url(), c1.revision).await;
    let FeedLine::Change(r) = resumed.next().await else {
        panic!("backlog change")
    };
    assert_eq!(r, c2);
    nm.engine
        .put(
            "c",
            Thing {
                name: "c".into(),
                size: 3,
            },
        )
        .await
        .unwrap();
    let FeedLine::Change(r) = resumed.next().await else {
        panic!("live change")
    };
    assert_eq!(r.key, "c");
    let FeedLine::Change(l) = feed.next().await else {
        panic!("live change")
    };
    assert_eq!(l, r);
    nm.stop().await;
}

#[tokio::test]
async fn host_reports_are_stored_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let nm = server::start(Config::embedded(addr, dir.path().to_path_buf()))
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let r = c
        .put(format!("{}/api/v1/feed/hosts/host1/", nm.url()))
        .body(r#"{"neighbors":[{"address":"10.1.1.1","state":"established"}],"fwdMode":"routing"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let bad = c
        .put(format!("{}/api/v1/feed/hosts/host1/", nm.url()))
        .body(r#"{"bogus":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(v["field"], "bogus");
    let all: serde_json::Value = c
        .get(format!("{}/api/v1/feed/hosts/", nm.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["host1"]["neighbors"][0]["state"], "established");
    assert!(all["host1"]["lastSeen"].as_u64().unwrap() > 0);
    nm.stop().await;
}
