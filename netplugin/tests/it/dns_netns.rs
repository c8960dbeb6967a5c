//! The DNS server in a namespace playing the host, started as the agent starts it
//! (`dns::serve` with `dns::local_askers`): beside a stub resolver on 127.0.0.53:53, only
//! on the router address, answering the local container and refusing anyone else. The
//! namespace is created by the test and deleted on drop.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use containerlab::testing::require_root;

use crate::netns::Ns;
use netplugin::agent::bgp::NsRuntime;
use netplugin::dns::{DnsTable, Record};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

const ROUTER: &str = "10.255.1.1";
const CONTAINER: &str = "20.1.1.2";
const OUTSIDER: &str = "198.51.100.7";

fn ns(tag: &str) -> Ns {
    Ns::new("dnstest", tag)
}

/// A query for `name` (type A, RD set).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

/// The stub's reply: the question and one A record 192.0.2.53.
fn stub_reply(q: &[u8]) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2] |= 0x80;
    r[3] = 0x80;
    r[7] = 1;
    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53]);
    r
}

/// rcode and A records of a reply.
fn parse(r: &[u8]) -> (u8, Vec<IpAddr>) {
    let m = hickory_proto::op::Message::from_vec(r).unwrap();
    let addrs = m
        .answers
        .iter()
        .filter_map(|rr| match &rr.data {
            hickory_proto::rr::RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    (m.response_code.low(), addrs)
}

/// One UDP exchange from `src` (`None`: no reply within 1 s).
async fn ask(src: &str, server: SocketAddr, id: u16, name: &str) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((src.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    sock.send_to(&query(id, name), server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Listening sockets on port 53 in the namespace (`ss -Hln`).
fn listeners(ns: &Ns) -> Vec<String> {
    let (ok, out) = ns.exec("ss -Hlntu");
    assert!(ok, "{out}");
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|a| a.ends_with(":53"))
        .collect()
}

#[tokio::test]
async fn dns_server_starts_beside_a_stub_resolver_and_answers_only_local_containers() {
    if !require_root("dns_server_starts_beside_a_stub_resolver_and_answers_only_local_containers") {
        return;
    }
    let host = ns("host");
    let (ok, out) = host.exec(&format!(
        "ip link set lo up && ip addr add {CONTAINER}/32 dev lo && ip addr add {OUTSIDER}/32 dev lo"
    ));
    assert!(ok, "{out}");
    let rt = Arc::new(NsRuntime::start(Some(format!("/run/netns/{}", host.0).into())).unwrap());

    // systemd-resolved's place: 127.0.0.53:53, taken first (UDP and TCP), which also plays
    // the host's upstream resolver and counts what reaches it.
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let stub = rt.handle().spawn(async move {
        let udp = UdpSocket::bind("127.0.0.53:53").await.unwrap();
        let tcp = TcpListener::bind("127.0.0.53:53").await.unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                Ok((n, src)) = udp.recv_from(&mut buf) => {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = udp.send_to(&stub_reply(&buf[..n]), src).await;
                }
                _ = tcp.accept() => {}
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The agent's wiring: the table, this host's container addresses, the router address.
    let table = DnsTable::new(
        [Record {
            tenant: "t1".into(),
            network: "net".into(),
            name: Some("web".into()),
            group: None,
            addrs: vec![CONTAINER.parse().unwrap()],
        }],
        None,
    );
    let (_table_tx, table_rx) = watch::channel(Arc::new(table));
    let local: HashSet<IpAddr> = [CONTAINER.parse().unwrap()].into();
    let (_local_tx, local_rx) = watch::channel(Arc::new(local));
    let (addr_tx, addr_rx) = watch::channel(Vec::<IpAddr>::new());
    let askers = netplugin::dns::local_askers(table_rx.clone(), local_rx);
    let server = rt.handle().spawn(netplugin::dns::serve(
        addr_rx,
        53,
        table_rx,
        vec!["127.0.0.53:53".parse().unwrap()],
        askers,
    ));

    // No router address yet: nothing but the stub listens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let l = listeners(&host);
    assert!(l.iter().all(|a| a.starts_with("127.0.0.53:")), "{l:?}");

    // The router address is known before it is configured: the bind fails, is retried,
    // and succeeds once the address is there.
    addr_tx.send_replace(vec![ROUTER.parse().unwrap()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_finished(),
        "a failed bind does not end the server"
    );
    let (ok, out) = host.exec(&format!("ip addr add {ROUTER}/32 dev lo"));
    assert!(ok, "{out}");
    let dns: SocketAddr = (ROUTER.parse::<IpAddr>().unwrap(), 53).into();
    let mut answered = None;
    for i in 0..50 {
        let h = rt.handle().spawn(ask(CONTAINER, dns, i, "web"));
        if let Some(r) = h.await.unwrap() {
            answered = Some(r);
            break;
        }
    }
    let r = answered.expect("the server came up on the router address");
    assert_eq!(parse(&r), (0, vec![CONTAINER.parse().unwrap()]));

    // The local container's other names are forwarded to the stub.
    let r = rt.handle().spawn(ask(CONTAINER, dns, 100, "example.org"));
    let r = r.await.unwrap().expect("forwarded");
    assert_eq!(parse(&r), (0, vec!["192.0.2.53".parse().unwrap()]));
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // The attack: an outside source asks to resolve through us. REFUSED, nothing forwarded.
    for (id, name) in [(200, "example.org"), (201, "web"), (202, "internal.corp")] {
        let r = rt.handle().spawn(ask(OUTSIDER, dns, id, name));
        let r = r.await.unwrap().expect("an answer");
        assert_eq!(parse(&r), (5, vec![]), "{name}: REFUSED");
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the outsider reached no upstream"
    );

    // Listening on the router address only (UDP and TCP), never the wildcard.
    let l = listeners(&host);
    let ours: Vec<_> = l.iter().filter(|a| !a.starts_with("127.0.0.53:")).collect();
    assert_eq!(
        ours,
        vec![&format!("{ROUTER}:53"), &format!("{ROUTER}:53")],
        "{l:?}"
    );
    assert!(
        !l.iter()
            .any(|a| a.starts_with("0.0.0.0:") || a.starts_with("*:") || a.starts_with("[::]:")),
        "{l:?}"
    );
    let r = rt
        .handle()
        .spawn(ask(CONTAINER, "127.0.0.1:53".parse().unwrap(), 300, "web"));
    assert!(
        r.await.unwrap().is_none(),
        "nothing answers on 127.0.0.1:53"
    );

    // The router address goes away: the listener closes.
    addr_tx.send_replace(Vec::new());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let l = listeners(&host);
    assert!(l.iter().all(|a| a.starts_with("127.0.0.53:")), "{l:?}");

    server.abort();
    stub.abort();
    let _ = server.await;
    let _ = stub.await;
    drop(rt);
}
