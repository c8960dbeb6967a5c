//! What the REST fuzz run (scripts/fuzz-api.sh) found, and the untrusted numbers of
//! issue #13 item 7, each performed against a real netmaster: every refusal is a JSON 400
//! naming the field (never axum's plain-text rejection, never a 5xx or a panic), a resume
//! revision out of range neither overflows nor silences the feed, and the state survives.

use futures::StreamExt;
use netmaster::api::feed::FeedLine;
use serde_json::{Value, json};

use crate::common::nm::Nm;

/// The first line of the feed from a query string, or the status and JSON error.
async fn feed_first(nm: &Nm, query: &str) -> Result<FeedLine, (u16, Value)> {
    let resp = nm
        .http
        .get(format!("{}/api/v1/feed/?{query}", nm.url))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{query}");
        return Err((status, resp.json().await.unwrap()));
    }
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.unwrap());
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            return Ok(serde_json::from_slice(&buf[..i]).unwrap());
        }
    }
    panic!("the feed ended before its first line");
}

#[tokio::test]
async fn feed_refuses_negative_and_malformed_resume_points_naming_the_field() {
    let nm = Nm::start().await;
    for (query, field) in [
        ("from=-1", "from"),
        (&format!("from={}", i64::MIN), "from"),
        ("from=abc", "from"),
        ("from=99999999999999999999", "from"),
        (
            &format!("from=1&index={}", u64::from(u32::MAX) + 1),
            "index",
        ),
        ("from=1&index=-1", "index"),
    ] {
        let (status, err) = feed_first(&nm, query).await.unwrap_err();
        assert_eq!(status, 400, "{query}: {err}");
        assert_eq!(err["error"], "validation", "{query}");
        assert_eq!(err["field"], field, "{query}: {err}");
    }
    nm.stop().await;
}

#[tokio::test]
async fn feed_resume_from_the_largest_revision_gets_a_snapshot_and_later_changes() {
    let nm = Nm::start().await;
    // i64::MAX used to overflow `from + 1` (a panic in the feed task) and, past that, a
    // resume point beyond the store's revision gave an empty backlog and then filtered
    // out every later change: the subscriber heard nothing, forever.
    for query in [
        format!("from={}", i64::MAX),
        format!("from={}&index={}", i64::MAX, u32::MAX),
        format!("from={}", i64::MAX - 1),
    ] {
        match feed_first(&nm, &query).await {
            Ok(FeedLine::Snapshot { objects, .. }) => {
                assert!(
                    objects.iter().any(|o| o.plural == "tenants"),
                    "{query}: the snapshot holds the default tenant"
                );
            }
            other => panic!("{query}: expected a snapshot, got {other:?}"),
        }
    }
    // The feed still works for an ordinary resume afterwards.
    let rev = nm.revision().await;
    assert!(matches!(
        feed_first(&nm, &format!("from={}", rev + 1)).await,
        Ok(FeedLine::Snapshot { .. })
    ));
    nm.stop().await;
}

#[tokio::test]
async fn bad_path_parameters_answer_json_400_naming_them() {
    let nm = Nm::start().await;
    for (method, path, field) in [
        (reqwest::Method::GET, "/api/v1/tenants/%FF/", "key"),
        (
            reqwest::Method::GET,
            "/api/v1/inspect/networks/%C3%28/",
            "key",
        ),
        (reqwest::Method::DELETE, "/api/v1/tenants/%FF/", "key"),
        (
            reqwest::Method::DELETE,
            "/api/v1/plugin/endpoints/%FF/",
            "id",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/plugin/hosts/%FF/collect",
            "host",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/plugin/hosts/-h/collect",
            "host",
        ),
        (reqwest::Method::PUT, "/api/v1/feed/hosts/a..b/", "host"),
    ] {
        let body = (method == reqwest::Method::PUT).then(|| json!({}));
        let (status, err) = nm.call(method.clone(), path, body).await;
        assert_eq!(status, 400, "{method} {path}: {err}");
        assert_eq!(err["field"], field, "{method} {path}: {err}");
    }
    let (status, err) = nm
        .put("/api/v1/tenants/%FF/", json!({"tenantName": "t"}))
        .await;
    assert_eq!((status, &err["field"]), (400, &json!("key")), "{err}");
    nm.stop().await;
}

#[tokio::test]
async fn the_default_tenant_cannot_be_deleted_so_a_restart_changes_nothing() {
    // The fuzzer deleted it; netmaster recreated it at the next start, so the state read
    // before a restart was not the state after it.
    let nm = Nm::start().await;
    let (status, err) = nm.delete("/api/v1/tenants/default/").await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["object"], "tenants/default");
    let (status, _) = nm.get("/api/v1/tenants/default/").await;
    assert_eq!(status, 200);
    // Other tenants still go.
    nm.create("/api/v1/tenants/t1/", json!({"tenantName": "t1"}))
        .await;
    assert_eq!(nm.delete("/api/v1/tenants/t1/").await.0, 204);
    nm.stop().await;
}

#[tokio::test]
async fn out_of_range_numbers_are_refused_naming_the_field() {
    let nm = Nm::start().await;
    let net = |tag: Value| {
        json!({"networkName": "n1", "tenantName": "default", "encap": "vxlan",
            "subnet": "20.1.1.0/24", "pktTag": tag})
    };
    for tag in [
        json!(i64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!(16_777_216),
    ] {
        let (status, err) = nm
            .post("/api/v1/networks/default:n1/", net(tag.clone()))
            .await;
        assert_eq!(status, 400, "{tag}: {err}");
        assert_eq!(err["field"], "pktTag", "{tag}: {err}");
    }
    // Beyond i64: the JSON number does not fit the field.
    let (status, err) = nm
        .post("/api/v1/networks/default:n1/", net(json!(u64::MAX)))
        .await;
    assert_eq!((status, &err["field"]), (400, &json!("pktTag")), "{err}");
    let prof = |k: &str, v: Value| {
        let mut p = json!({"profileName": "p", "tenantName": "default"});
        p[k] = v;
        p
    };
    for (k, v) in [
        ("DSCP", json!(i64::MAX)),
        ("DSCP", json!(-1)),
        ("burst", json!(i64::MIN)),
        ("burst", json!(u64::MAX)),
        ("bandwidth", json!(format!("{}gbps", u64::MAX))),
        ("bandwidth", json!("-5mbps")),
    ] {
        let (status, err) = nm
            .post("/api/v1/netprofiles/default:p/", prof(k, v.clone()))
            .await;
        assert_eq!(status, 400, "{k}={v}: {err}");
        assert_eq!(err["field"], k, "{k}={v}: {err}");
    }
    let (status, _) = nm.get("/info").await;
    assert_eq!(status, 200);
    nm.stop().await;
}

#[tokio::test]
async fn reports_with_impossible_numbers_are_refused_naming_the_field() {
    let nm = Nm::start().await;
    for (body, field) in [
        (json!({"policy": {"revision": -1}}), "policy.revision"),
        (json!({"policy": {"revision": i64::MIN}}), "policy.revision"),
        (json!({"policy": {"revision": u64::MAX}}), "policy.revision"),
        (
            json!({"policy": {"revision": 1, "rules": -1}}),
            "policy.rules",
        ),
        (json!({"lastSeen": -5}), "lastSeen"),
    ] {
        let (status, err) = nm.put("/api/v1/feed/hosts/h1/", body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    // The largest revision is a revision: stored, and the policy status still answers.
    let (status, err) = nm
        .put(
            "/api/v1/feed/hosts/h1/",
            json!({"policy": {"revision": i64::MAX, "rules": u64::MAX}}),
        )
        .await;
    assert_eq!(status, 204, "{err}");
    let (status, reports) = nm.get("/api/v1/feed/hosts/").await;
    assert_eq!(status, 200);
    assert_eq!(reports["h1"]["policy"]["revision"], i64::MAX);
    nm.stop().await;
}

#[tokio::test]
async fn feed_resume_slightly_ahead_waits_for_the_revision_instead_of_going_back() {
    // A follower a little behind the leader the subscriber was on: the subscriber's
    // resume point is reached moments later, and it resumes from there (no snapshot of an
    // older state).
    let nm = Nm::start().await;
    let rev = nm.revision().await;
    let url = format!("{}/api/v1/feed/?from={}", nm.url, rev + 1);
    let first = tokio::spawn(async move {
        let resp = reqwest::get(url).await.unwrap();
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.unwrap());
            if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                return serde_json::from_slice::<FeedLine>(&buf[..i]).unwrap();
            }
        }
        panic!("the feed ended");
    });
    // The subscriber is connected (its feed task runs) before the writes.
    let mut connected = false;
    for _ in 0..1000 {
        let m = nm
            .http
            .get(format!("{}/metrics", nm.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.lines()
            .any(|l| l.starts_with("netmaster_feed_subscribers ") && l.ends_with(" 1"))
        {
            connected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(connected, "the feed subscriber never showed in the metrics");
    // Two writes: the resume point is reached, and a change follows it.
    nm.create("/api/v1/tenants/t1/", json!({"tenantName": "t1"}))
        .await;
    nm.create("/api/v1/tenants/t2/", json!({"tenantName": "t2"}))
        .await;
    match first.await.unwrap() {
        FeedLine::Change(c) => {
            assert!(c.revision > rev + 1, "{c:?} is not after the resume point");
            assert!(c.key == "t1" || c.key == "t2", "{c:?}");
        }
        other => panic!("expected the change after the resume point, got {other:?}"),
    }
    nm.stop().await;
}
