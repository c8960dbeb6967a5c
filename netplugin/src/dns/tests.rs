//! The server over real loopback sockets (no root): hand-built queries, a fake upstream.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;

const A: u16 = 1;
const AAAA: u16 = 28;

/// A query with one question, RD set, optionally with an EDNS OPT record.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p
}

fn rec(network: &str, name: &str, group: Option<&str>, addr: &str) -> Record {
    Record {
        tenant: "t1".into(),
        network: network.into(),
        name: Some(name.into()),
        group: group.map(Into::into),
        addrs: vec![addr.parse().unwrap()],
    }
}

fn records() -> Vec<Record> {
    vec![
        rec("net", "w1", Some("web"), "10.0.0.1"),
        rec("net", "w2", Some("web"), "10.0.0.2"),
        rec("net", "w3", Some("web"), "10.0.0.3"),
        rec("net", "db1", None, "10.0.0.9"),
        rec("other", "x1", Some("app"), "10.1.0.1"),
    ]
}

/// The fake upstreams' reply: one A record 192.0.2.53, or none with TC set.
fn fake_reply(q: &[u8], truncated: bool) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2] |= if truncated { 0x82 } else { 0x80 }; // QR (+TC)
    r[3] = 0x80; // RA, NOERROR
    r[6..12].copy_from_slice(&[0, u8::from(!truncated), 0, 0, 0, 0]); // drop any OPT
    r.truncate(12 + r[12..].iter().position(|&b| b == 0).unwrap() + 5);
    if !truncated {
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53]);
    }
    r
}

/// A fake UDP upstream answering every query with [`fake_reply`], counting queries.
async fn fake_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, src)) = sock.recv_from(&mut buf).await {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = sock.send_to(&fake_reply(&buf[..n], false), src).await;
        }
    });
    (addr, seen, task)
}

/// A fake upstream whose UDP replies are truncated and whose TCP replies are full.
async fn truncating_upstream() -> (SocketAddr, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                Ok((n, src)) = sock.recv_from(&mut buf) => {
                    let _ = sock.send_to(&fake_reply(&buf[..n], true), src).await;
                }
                Ok((mut c, _)) = tcp.accept() => {
                    let mut q = vec![0u8; c.read_u16().await.unwrap() as usize];
                    c.read_exact(&mut q).await.unwrap();
                    let r = fake_reply(&q, false);
                    c.write_all(&(r.len() as u16).to_be_bytes()).await.unwrap();
                    c.write_all(&r).await.unwrap();
                }
            }
        }
    });
    (addr, task)
}

/// A UDP port on which nothing listens (queries to it are refused at once).
async fn dead_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.local_addr().unwrap()
}

struct Running {
    addr: SocketAddr,
    tx: watch::Sender<Arc<DnsTable>>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server on 127.0.0.1:0; 127.0.0.1 asks as t1/net, every other source is unknown.
async fn start(upstreams: Vec<SocketAddr>) -> Running {
    start_with(upstreams, |s| s).await
}

/// [`start`], the server adjusted by `adjust` before it runs.
async fn start_with(
    upstreams: Vec<SocketAddr>,
    adjust: impl FnOnce(DnsServer) -> DnsServer,
) -> Running {
    let (tx, rx) = watch::channel(Arc::new(DnsTable::new(records(), Some("contiv.local"))));
    let asker_of = |ip: IpAddr| {
        (ip == IpAddr::from([127, 0, 0, 1])).then(|| Asker {
            tenant: "t1".into(),
            network: "net".into(),
        })
    };
    let server = DnsServer::bind("127.0.0.1:0".parse().unwrap(), rx, upstreams, asker_of)
        .await
        .unwrap()
        .with_upstream_timeout(Duration::from_millis(300));
    let server = adjust(server);
    let addr = server.local_addr().unwrap();
    Running {
        addr,
        tx,
        task: tokio::spawn(server.run()),
    }
}

async fn udp_from(src: &str, server: SocketAddr, pkt: &[u8]) -> Message {
    let sock = UdpSocket::bind(src).await.unwrap();
    sock.send_to(pkt, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).await.unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn udp(server: SocketAddr, pkt: &[u8]) -> Message {
    udp_from("127.0.0.1:0", server, pkt).await
}

async fn tcp_exchange(s: &mut TcpStream, pkt: &[u8]) -> Message {
    s.write_all(&(pkt.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(pkt).await.unwrap();
    let len = s.read_u16().await.unwrap() as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

fn ips(a: &[&str]) -> Vec<IpAddr> {
    a.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test]
async fn udp_answers_names_and_rotates_groups() {
    let s = start(vec![]).await;
    let r = udp(s.addr, &query(7, "db1", A)).await;
    assert_eq!(r.id, 7);
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert!(r.authoritative);
    assert_eq!(addrs(&r), ips(&["10.0.0.9"]));
    assert_eq!(r.answers[0].ttl, TTL);

    let first = addrs(&udp(s.addr, &query(8, "WEB.contiv.local.", A)).await);
    let second = addrs(&udp(s.addr, &query(9, "web", A)).await);
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    assert_eq!(first.len(), second.len());
    assert_ne!(
        first[0], second[0],
        "consecutive queries start with another member"
    );

    let r = udp(s.addr, &query(10, "x1.other", A)).await;
    assert_eq!(addrs(&r), ips(&["10.1.0.1"]));
    // A v4-only name asked for AAAA: NOERROR, no answers.
    let r = udp(s.addr, &query(11, "db1", AAAA)).await;
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
}

#[tokio::test]
async fn nxdomain_for_unknown_names_in_our_zone() {
    let s = start(vec![]).await;
    for name in [
        "nosuch.net",
        "nosuch.contiv.local",
        "w1.nosuchnet.contiv.local",
    ] {
        let r = udp(s.addr, &query(3, name, A)).await;
        assert_eq!(r.response_code, ResponseCode::NXDomain, "{name}");
        assert!(r.answers.is_empty());
    }
}

#[tokio::test]
async fn tcp_answers_several_queries_on_one_connection() {
    let (up, _, up_task) = fake_upstream().await;
    let s = start(vec![up]).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let r = tcp_exchange(&mut c, &query(1, "db1.net", A)).await;
    assert_eq!((r.id, addrs(&r)), (1, ips(&["10.0.0.9"])));
    let r = tcp_exchange(&mut c, &query(2, "web", A)).await;
    assert_eq!(addrs(&r).len(), 3);
    let r = tcp_exchange(&mut c, &query(3, "example.com", A)).await;
    assert_eq!((r.id, addrs(&r)), (3, ips(&["192.0.2.53"])));
    up_task.abort();
}

#[tokio::test]
async fn forwards_other_names_skipping_dead_upstreams() {
    let (up, seen, up_task) = fake_upstream().await;
    let s = start(vec![dead_port().await, up]).await;
    let r = udp(s.addr, &query(42, "www.example.com", A)).await;
    assert_eq!(r.id, 42);
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), ips(&["192.0.2.53"]));
    // An unqualified miss is forwarded too; our own names never are.
    udp(s.addr, &query(43, "nosuchhost", A)).await;
    udp(s.addr, &query(44, "web", A)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    up_task.abort();
}

#[tokio::test]
async fn servfail_when_no_upstream_answers() {
    // One refuses at once, one is silent (bound but never read) and times out.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = start(vec![dead_port().await, silent.local_addr().unwrap()]).await;
    let r = udp(s.addr, &query(5, "example.org", A)).await;
    assert_eq!(r.id, 5);
    assert_eq!(r.response_code, ResponseCode::ServFail);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let r = tcp_exchange(&mut c, &query(6, "example.org", A)).await;
    assert_eq!(r.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn unknown_sources_are_refused_and_never_forwarded() {
    let (up, seen, up_task) = fake_upstream().await;
    let s = start(vec![up]).await;
    for (id, name) in [
        (1, "web.net"),
        (2, "db1.contiv.local"),
        (3, "web"),
        (4, "example.org"),
    ] {
        let r = udp_from("127.0.0.2:0", s.addr, &query(id, name, A)).await;
        assert_eq!(r.response_code, ResponseCode::Refused, "{name}");
        assert!(r.answers.is_empty(), "{name}");
    }
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut c = sock.connect(s.addr).await.unwrap();
    let r = tcp_exchange(&mut c, &query(5, "example.org", A)).await;
    assert_eq!(r.response_code, ResponseCode::Refused, "over TCP too");
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing went upstream");
    let r = udp(s.addr, &query(6, "example.org", A)).await;
    assert_eq!(
        addrs(&r),
        ips(&["192.0.2.53"]),
        "the container's is forwarded"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    up_task.abort();
}

#[test]
fn token_bucket_allows_the_burst_then_the_rate() {
    let t = |ms: u64| Duration::from_millis(ms);
    let mut b = TokenBucket::new(10.0, 3.0, t(1000));
    assert!(
        b.take(t(1000)) && b.take(t(1000)) && b.take(t(1000)),
        "the burst"
    );
    assert!(!b.take(t(1000)), "empty");
    assert!(!b.take(t(1050)), "half a token after 50 ms");
    assert!(b.take(t(1100)), "one token after 100 ms");
    assert!(!b.take(t(1100)));
    assert!(!b.is_full(t(1200)));
    assert!(b.is_full(t(1400)), "refilled after 300 ms");
    assert!(b.take(t(60_000)) && b.take(t(60_000)) && b.take(t(60_000)));
    assert!(
        !b.take(t(60_000)),
        "a long pause refills only up to the burst"
    );
    assert!(!b.take(t(500)), "time going backwards gives nothing");
}

#[test]
fn admission_serves_only_local_containers_within_their_rate() {
    let a = Asker {
        tenant: "t1".into(),
        network: "net".into(),
    };
    assert_eq!(
        admission(true, Some(a.clone())),
        Admission::Serve(a.clone())
    );
    assert_eq!(admission(true, None), Admission::Refuse);
    assert_eq!(admission(false, Some(a)), Admission::Drop);
    assert_eq!(admission(false, None), Admission::Drop);
}

#[test]
fn only_local_addresses_the_table_places_are_askers() {
    let mut recs = records();
    recs.push(Record {
        tenant: "t2".into(),
        network: "n".into(),
        name: Some("dup".into()),
        group: None,
        addrs: vec!["10.0.0.1".parse().unwrap()],
    });
    let table = DnsTable::new(recs, None);
    let local: std::collections::HashSet<IpAddr> = ips(&["10.0.0.2", "10.0.0.1", "10.9.9.9"])
        .into_iter()
        .collect();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        local_asker(&local, &table, ip("10.0.0.2")),
        Some(Asker {
            tenant: "t1".into(),
            network: "net".into()
        })
    );
    assert_eq!(
        local_asker(&local, &table, ip("10.0.0.3")),
        None,
        "a remote endpoint"
    );
    assert_eq!(
        local_asker(&local, &table, ip("10.0.0.1")),
        None,
        "ambiguous"
    );
    assert_eq!(
        local_asker(&local, &table, ip("10.9.9.9")),
        None,
        "not in the table"
    );
    assert_eq!(local_asker(&local, &table, ip("192.0.2.1")), None);
}

#[tokio::test]
async fn queries_over_a_sources_rate_are_dropped() {
    let s = start_with(vec![], |s| s.with_rate_limit(0.5, 3.0)).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 4096];
    for id in 0..3 {
        sock.send_to(&query(id, "w1", A), s.addr).await.unwrap();
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .expect("within the burst")
            .unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().id, id);
    }
    sock.send_to(&query(9, "w1", A), s.addr).await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await;
    assert!(r.is_err(), "the fourth query is dropped");
    // Another source has its own bucket (and, not being a container, is refused).
    let r = udp_from("127.0.0.2:0", s.addr, &query(10, "w1", A)).await;
    assert_eq!(r.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn one_source_cannot_hold_every_tcp_connection() {
    let s = start(vec![]).await;
    let mut held = Vec::new();
    for _ in 0..MAX_TCP_PER_SOURCE {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        held.push(sock.connect(s.addr).await.unwrap());
    }
    let mut r = tcp_exchange(&mut held[0], &query(1, "w1", A)).await;
    assert_eq!(r.response_code, ResponseCode::Refused);
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut extra = sock.connect(s.addr).await.unwrap();
    let mut buf = [0u8; 2];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "closed at once: {n:?}");
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    r = tcp_exchange(&mut c, &query(2, "w1", A)).await;
    assert_eq!(
        addrs(&r),
        ips(&["10.0.0.1"]),
        "another source is still served"
    );
    drop(held);
}

#[tokio::test]
async fn slow_upstreams_cannot_tie_up_the_server() {
    // An upstream that never answers; one relay at a time.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let up = silent.local_addr().unwrap();
    let s = start_with(vec![up], |s| {
        s.with_max_forwards(1)
            .with_upstream_timeout(Duration::from_secs(3))
    })
    .await;
    let addr = s.addr;
    let first = tokio::spawn(async move { udp(addr, &query(1, "example.org", A)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let r = udp(s.addr, &query(2, "example.com", A)).await;
    assert_eq!(r.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not queued behind the slow one"
    );
    let r = udp(s.addr, &query(3, "w1", A)).await;
    assert_eq!(
        addrs(&r),
        ips(&["10.0.0.1"]),
        "our own names still answered"
    );
    assert_eq!(first.await.unwrap().response_code, ResponseCode::ServFail);
    drop(silent);
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_are_dropped() {
    let s = start(vec![]).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 4096];
    // Too short for a header: dropped. The next reply is the valid query's.
    sock.send_to(&[1, 2, 3], s.addr).await.unwrap();
    sock.send_to(&query(77, "db1", A), s.addr).await.unwrap();
    let n = sock.recv(&mut buf).await.unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().id, 77);
    // A header announcing a question that is cut off: FORMERR with the same id.
    let mut bad = query(78, "db1", A);
    bad.truncate(15);
    sock.send_to(&bad, s.addr).await.unwrap();
    let n = sock.recv(&mut buf).await.unwrap();
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!((r.id, r.response_code), (78, ResponseCode::FormErr));
    // A response sent to us is dropped; the server still answers afterwards.
    let mut resp = query(79, "db1", A);
    resp[2] |= 0x80;
    sock.send_to(&resp, s.addr).await.unwrap();
    let r = udp(s.addr, &query(80, "db1", A)).await;
    assert_eq!(addrs(&r), ips(&["10.0.0.9"]));
    // Garbage over TCP closes that connection only.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(&[0, 3, 9, 9, 9]).await.unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(
        addrs(&tcp_exchange(&mut c, &query(81, "db1", A)).await).len(),
        1
    );
}

#[tokio::test]
async fn table_updates_and_large_groups_truncate_over_udp() {
    let s = start(vec![]).await;
    let big: Vec<Record> = (1..=100)
        .map(|i| rec("net", &format!("b{i}"), Some("big"), &format!("10.2.0.{i}")))
        .collect();
    s.tx.send(Arc::new(DnsTable::new(big, None))).unwrap();
    let r = udp(s.addr, &query(1, "big", A)).await;
    assert!(r.truncation, "100 A records do not fit in 512 bytes");
    assert!(r.answers.is_empty());
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let r = tcp_exchange(&mut c, &query(2, "big", A)).await;
    assert!(!r.truncation);
    assert_eq!(addrs(&r).len(), 100);
    // More than a TCP message can carry (64 KiB): cut there too, never mis-framed.
    let huge: Vec<Record> = (0..5000u32)
        .map(|i| {
            rec(
                "net",
                &format!("h{i}"),
                Some("huge"),
                &format!("10.3.{}.{}", i / 250, i % 250),
            )
        })
        .collect();
    s.tx.send(Arc::new(DnsTable::new(huge, None))).unwrap();
    let r = tcp_exchange(&mut c, &query(4, "huge", A)).await;
    assert!(r.truncation, "as many as fit, flagged TC");
    assert!(!r.answers.is_empty() && r.answers.len() < 5000);
    // The old names are gone with the old snapshot.
    let r = udp(s.addr, &query(3, "db1.net", A)).await;
    assert_eq!(r.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn truncated_upstream_replies_are_refetched_over_tcp_for_tcp_clients() {
    let (up, up_task) = truncating_upstream().await;
    let s = start(vec![up]).await;
    let r = udp(s.addr, &query(1, "example.org", A)).await;
    assert!(
        r.truncation && r.answers.is_empty(),
        "UDP clients get the TC reply"
    );
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let r = tcp_exchange(&mut c, &query(2, "example.org", A)).await;
    assert!(!r.truncation);
    assert_eq!((r.id, addrs(&r)), (2, ips(&["192.0.2.53"])));
    up_task.abort();
}
