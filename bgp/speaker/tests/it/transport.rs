//! Transport tests on loopback (127.0.0.0/8 and ::1) in the machine's own namespace.
//!
//! None of these needs root: TCP MD5 keys, IP_MINTTL and TTL are unprivileged options.
//! TTL is not decremented on loopback, so a client that sends TTL 254 stands in for a peer
//! one hop away. Failure cases are bounded by generous timeouts and only check that no
//! connection or data arrives, never how long anything took.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bgp_speaker::transport::{
    DSCP_CS6, Listener, Md5Password, TransportError, TransportOpts, TtlMode, configure_accepted,
    connect,
};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// Bound for things that must happen (generous, for a loaded 2-core machine).
const MUST: Duration = Duration::from_secs(20);
/// How long we watch for things that must not happen.
const MUST_NOT: Duration = Duration::from_secs(3);

fn pw(s: &str) -> Md5Password {
    Md5Password::new(s).unwrap()
}

fn opts() -> TransportOpts {
    TransportOpts {
        connect_timeout: MUST,
        ..Default::default()
    }
}

/// Options for a connection attempt that is expected to fail.
fn failing_opts() -> TransportOpts {
    TransportOpts {
        connect_timeout: MUST_NOT,
        ..Default::default()
    }
}

/// `connect` with owned options, so `opts()` can be passed inline into `join!`.
async fn dial(
    peer: SocketAddr,
    opts: impl std::borrow::Borrow<TransportOpts>,
) -> Result<TcpStream, TransportError> {
    connect(peer, opts.borrow()).await
}

async fn accept(listener: &Listener) -> (TcpStream, SocketAddr) {
    tokio::time::timeout(MUST, listener.accept())
        .await
        .expect("no connection accepted in time")
        .expect("accept failed")
}

/// Sends a line each way and checks both arrive.
async fn exchange(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"open").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(MUST, server.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"open");
    server.write_all(b"keep").await.unwrap();
    tokio::time::timeout(MUST, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"keep");
}

/// Asserts that nothing reaches `listener` while a connection attempt with `opts` runs,
/// and that the attempt fails.
async fn assert_rejected(listener: &Listener, opts: &TransportOpts) {
    let peer = listener.local_addr();
    let (res, accepted) = tokio::join!(
        connect(peer, opts),
        tokio::time::timeout(MUST_NOT, listener.accept())
    );
    assert!(
        accepted.is_err(),
        "the listener accepted a connection it should have dropped"
    );
    match res {
        Err(TransportError::ConnectTimeout { peer: p, .. }) => assert_eq!(p, peer),
        Err(e) => panic!("expected a timeout, got {e}"),
        Ok(_) => panic!("connected although the handshake should have been dropped"),
    }
}

/// Whether ::1 is usable here (some CI containers run without IPv6).
fn have_ipv6() -> bool {
    std::net::TcpListener::bind((LO6, 0)).is_ok()
}

#[tokio::test]
async fn plain_connect_and_accept() {
    let listener = Listener::bind(LO4, 0).unwrap();
    let (client, accepted) = tokio::join!(dial(listener.local_addr(), opts()), accept(&listener));
    let mut client = client.unwrap();
    let (mut server, peer) = accepted;
    assert_eq!(peer, client.local_addr().unwrap());
    assert!(client.nodelay().unwrap());
    configure_accepted(&server, peer, &opts()).unwrap();
    exchange(&mut client, &mut server).await;
}

#[tokio::test]
async fn ttl_and_dscp_land_on_the_sockets() {
    let listener = Listener::bind(LO4, 0).unwrap();
    let direct_ebgp = TransportOpts {
        ttl: TtlMode::Fixed(1),
        tcp_nodelay: false,
        ..opts()
    };
    let (client, (server, peer)) =
        tokio::join!(dial(listener.local_addr(), &direct_ebgp), accept(&listener));
    let client = client.unwrap();
    let c = SockRef::from(&client);
    assert_eq!(c.ttl_v4().unwrap(), 1);
    assert_eq!(c.tos_v4().unwrap(), u32::from(DSCP_CS6) << 2);
    assert!(!client.nodelay().unwrap());
    // Accepted sockets inherit the listener's TTL 255 and CS6 until configured.
    let s = SockRef::from(&server);
    assert_eq!(s.ttl_v4().unwrap(), 255);
    assert_eq!(s.tos_v4().unwrap(), u32::from(DSCP_CS6) << 2);
    let multihop = TransportOpts {
        ttl: TtlMode::Fixed(3),
        dscp: 0,
        ..opts()
    };
    configure_accepted(&server, peer, &multihop).unwrap();
    assert_eq!(s.ttl_v4().unwrap(), 3);
    assert_eq!(s.tos_v4().unwrap(), 0);
    assert!(server.nodelay().unwrap());
    // A bad option is refused before anything is set.
    let bad = TransportOpts { dscp: 64, ..opts() };
    let e = configure_accepted(&server, peer, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&peer.to_string()) && e.contains("DSCP 64"),
        "{e}"
    );
}

#[tokio::test]
async fn plain_connect_and_accept_ipv6() {
    if !have_ipv6() {
        eprintln!("plain_connect_and_accept_ipv6: skipped, no ::1");
        return;
    }
    let listener = Listener::bind(LO6, 0).unwrap();
    let gtsm = TransportOpts {
        ttl: TtlMode::Gtsm { hops: 0 },
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &gtsm), accept(&listener));
    let mut client = client.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    configure_accepted(&server, peer, &gtsm).unwrap();
    exchange(&mut client, &mut server).await;
}

#[tokio::test]
async fn ipv4_and_ipv6_listen_on_the_same_port() {
    if !have_ipv6() {
        eprintln!("ipv4_and_ipv6_listen_on_the_same_port: skipped, no ::1");
        return;
    }
    let v4 = Listener::bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap();
    let v6 = Listener::bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED), v4.local_addr().port()).unwrap();
    assert_eq!(v4.local_addr().port(), v6.local_addr().port());
    let port = v4.local_addr().port();
    let (c4, (_, p4)) = tokio::join!(dial((LO4, port).into(), opts()), accept(&v4));
    assert!(p4.is_ipv4());
    drop(c4.unwrap());
    let (c6, (_, p6)) = tokio::join!(dial((LO6, port).into(), opts()), accept(&v6));
    assert!(p6.is_ipv6());
    drop(c6.unwrap());
}

#[tokio::test]
async fn md5_same_password_exchanges_bytes() {
    let listener = Listener::bind(LO4, 0).unwrap();
    listener.set_md5(LO4, Some(&pw("bgp-secret"))).unwrap();
    let client_opts = TransportOpts {
        md5_password: Some(pw("bgp-secret")),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &client_opts), accept(&listener));
    exchange(&mut client.unwrap(), &mut server).await;
}

#[tokio::test]
async fn md5_same_password_ipv6() {
    if !have_ipv6() {
        eprintln!("md5_same_password_ipv6: skipped, no ::1");
        return;
    }
    let listener = Listener::bind(LO6, 0).unwrap();
    listener.set_md5(LO6, Some(&pw("six"))).unwrap();
    let client_opts = TransportOpts {
        md5_password: Some(pw("six")),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &client_opts), accept(&listener));
    exchange(&mut client.unwrap(), &mut server).await;
    // Wrong password on v6 is dropped as well.
    let wrong = TransportOpts {
        md5_password: Some(pw("seven")),
        ..failing_opts()
    };
    assert_rejected(&listener, &wrong).await;
}

#[tokio::test]
async fn md5_prefix_key_for_dynamic_neighbors() {
    let listener = Listener::bind(LO4, 0).unwrap();
    let range: ipnet::IpNet = "127.0.0.0/8".parse().unwrap();
    listener.set_md5(range, Some(&pw("range-key"))).unwrap();
    // A source address inside the range, other than the listener's own.
    let client_opts = TransportOpts {
        md5_password: Some(pw("range-key")),
        local_addr: Some("127.0.0.2".parse().unwrap()),
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &client_opts), accept(&listener));
    assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    exchange(&mut client.unwrap(), &mut server).await;
    // A host key inside the range wins over the range key.
    listener.set_md5(LO4, Some(&pw("host-key"))).unwrap();
    let host = TransportOpts {
        md5_password: Some(pw("host-key")),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &host), accept(&listener));
    exchange(&mut client.unwrap(), &mut server).await;
    let range_pw_from_host = TransportOpts {
        md5_password: Some(pw("range-key")),
        ..failing_opts()
    };
    assert_rejected(&listener, &range_pw_from_host).await;
    // Removing the range key.
    listener.set_md5(range, None).unwrap();
    let from_2 = TransportOpts {
        md5_password: Some(pw("range-key")),
        local_addr: Some("127.0.0.2".parse().unwrap()),
        ..failing_opts()
    };
    assert_rejected(&listener, &from_2).await;
}

#[tokio::test]
async fn md5_wrong_password_does_not_connect() {
    let listener = Listener::bind(LO4, 0).unwrap();
    listener.set_md5(LO4, Some(&pw("right"))).unwrap();
    let wrong = TransportOpts {
        md5_password: Some(pw("wrong")),
        ..failing_opts()
    };
    assert_rejected(&listener, &wrong).await;
}

#[tokio::test]
async fn md5_key_missing_on_the_listener_does_not_connect() {
    let listener = Listener::bind(LO4, 0).unwrap();
    let signed = TransportOpts {
        md5_password: Some(pw("only-client")),
        ..failing_opts()
    };
    assert_rejected(&listener, &signed).await;
}

#[tokio::test]
async fn md5_key_missing_on_the_client_does_not_connect() {
    let listener = Listener::bind(LO4, 0).unwrap();
    listener.set_md5(LO4, Some(&pw("only-listener"))).unwrap();
    assert_rejected(&listener, &failing_opts()).await;
}

#[tokio::test]
async fn md5_key_removed_at_run_time() {
    let listener = Listener::bind(LO4, 0).unwrap();
    listener.set_md5(LO4, Some(&pw("first"))).unwrap();
    let signed = TransportOpts {
        md5_password: Some(pw("first")),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &signed), accept(&listener));
    let mut client = client.unwrap();
    exchange(&mut client, &mut server).await;

    listener.set_md5(LO4, None).unwrap();
    // Removing twice is fine.
    listener.set_md5(LO4, None).unwrap();
    // The session accepted before keeps its key and keeps working.
    exchange(&mut client, &mut server).await;
    // New signed connections are dropped, unsigned ones get through.
    let signed_failing = TransportOpts {
        md5_password: Some(pw("first")),
        ..failing_opts()
    };
    assert_rejected(&listener, &signed_failing).await;
    let (plain, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), opts()), accept(&listener));
    exchange(&mut plain.unwrap(), &mut server).await;

    // And a new key can be set again.
    listener.set_md5(LO4, Some(&pw("second"))).unwrap();
    let signed = TransportOpts {
        md5_password: Some(pw("second")),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &signed), accept(&listener));
    exchange(&mut client.unwrap(), &mut server).await;
}

#[tokio::test]
async fn md5_key_of_the_other_family_is_refused() {
    let listener = Listener::bind(LO4, 0).unwrap();
    let e = listener
        .set_md5(LO6, Some(&pw("x")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("::1") && e.contains("other address family"),
        "{e}"
    );
}

#[tokio::test]
async fn gtsm_listener_accepts_ttl_255_and_drops_ttl_254() {
    let listener = Listener::bind(LO4, 0).unwrap();
    listener.set_min_ttl(Some(255)).unwrap();
    let gtsm = TransportOpts {
        ttl: TtlMode::Gtsm { hops: 0 },
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &gtsm), accept(&listener));
    configure_accepted(&server, peer, &gtsm).unwrap();
    exchange(&mut client.unwrap(), &mut server).await;

    let one_hop_away = TransportOpts {
        ttl: TtlMode::Fixed(254),
        ..failing_opts()
    };
    assert_rejected(&listener, &one_hop_away).await;

    // One hop of slack accepts TTL 254.
    listener.set_min_ttl(Some(254)).unwrap();
    let one_hop = TransportOpts {
        ttl: TtlMode::Fixed(254),
        ..opts()
    };
    let (client, (mut server, _)) =
        tokio::join!(dial(listener.local_addr(), &one_hop), accept(&listener));
    exchange(&mut client.unwrap(), &mut server).await;
}

#[tokio::test]
async fn gtsm_per_accepted_connection() {
    // No floor on the listener: the handshake completes, then the peer's GTSM floor is
    // put on the accepted socket before anything is read.
    let listener = Listener::bind(LO4, 0).unwrap();
    let server_opts = TransportOpts {
        ttl: TtlMode::Gtsm { hops: 0 },
        ..opts()
    };

    let good = TransportOpts {
        ttl: TtlMode::Gtsm { hops: 0 },
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &good), accept(&listener));
    configure_accepted(&server, peer, &server_opts).unwrap();
    exchange(&mut client.unwrap(), &mut server).await;

    let low = TransportOpts {
        ttl: TtlMode::Fixed(254),
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &low), accept(&listener));
    configure_accepted(&server, peer, &server_opts).unwrap();
    let mut client = client.unwrap();
    client.write_all(b"open").await.unwrap();
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(MUST_NOT, server.read_exact(&mut buf)).await;
    assert!(
        read.is_err(),
        "data sent with TTL 254 reached a GTSM socket with floor 255"
    );
}

#[tokio::test]
async fn gtsm_client_drops_a_syn_ack_below_its_floor() {
    let default_ttl =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap_or_default();
    if default_ttl.trim() == "255" {
        eprintln!("gtsm_client_drops_a_syn_ack_below_its_floor: skipped, the default TTL is 255");
        return;
    }
    // A plain listener answers with the kernel's default TTL (64, not 255): a GTSM client
    // must drop its SYN-ACK.
    let listener = tokio::net::TcpListener::bind((LO4, 0)).await.unwrap();
    let gtsm = TransportOpts {
        ttl: TtlMode::Gtsm { hops: 0 },
        ..failing_opts()
    };
    let res = connect(listener.local_addr().unwrap(), &gtsm).await;
    assert!(
        matches!(res, Err(TransportError::ConnectTimeout { .. })),
        "a GTSM client completed a handshake with a TTL-64 peer"
    );
}

#[tokio::test]
async fn binds_source_address_and_port() {
    let listener = Listener::bind(LO4, 0).unwrap();
    // Find a free port for the client, then release it.
    let port = std::net::TcpListener::bind("127.0.0.3:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client_opts = TransportOpts {
        local_addr: Some("127.0.0.3".parse().unwrap()),
        local_port: Some(port),
        ..opts()
    };
    let (client, (mut server, peer)) =
        tokio::join!(dial(listener.local_addr(), &client_opts), accept(&listener));
    assert_eq!(peer, SocketAddr::from(([127, 0, 0, 3], port)));
    exchange(&mut client.unwrap(), &mut server).await;

    // Source address alone: the kernel picks the port.
    let addr_only = TransportOpts {
        local_addr: Some("127.0.0.4".parse().unwrap()),
        ..opts()
    };
    let (client, (_, peer)) =
        tokio::join!(dial(listener.local_addr(), &addr_only), accept(&listener));
    assert_eq!(peer.ip(), "127.0.0.4".parse::<IpAddr>().unwrap());
    assert_ne!(peer.port(), 0);
    drop(client.unwrap());

    if have_ipv6() {
        let listener = Listener::bind(LO6, 0).unwrap();
        let addr_only = TransportOpts {
            local_addr: Some(LO6),
            ..opts()
        };
        let (client, (_, peer)) =
            tokio::join!(dial(listener.local_addr(), &addr_only), accept(&listener));
        assert_eq!(peer.ip(), LO6);
        drop(client.unwrap());
    }
}

#[tokio::test]
async fn errors_name_the_peer() {
    // A port nobody listens on: refused.
    let port = std::net::TcpListener::bind((LO4, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = SocketAddr::from((LO4, port));
    let e = connect(peer, &opts()).await.unwrap_err();
    assert!(matches!(e, TransportError::Connect { .. }), "{e}");
    assert!(e.to_string().contains(&peer.to_string()), "{e}");

    // A source address of the wrong family.
    let v6_source = TransportOpts {
        local_addr: Some(LO6),
        ..opts()
    };
    let e = connect(peer, &v6_source).await.unwrap_err().to_string();
    assert!(
        e.contains(&peer.to_string()) && e.contains("source address ::1"),
        "{e}"
    );

    // A source address that is not ours.
    let foreign = TransportOpts {
        local_addr: Some("192.0.2.1".parse().unwrap()),
        ..opts()
    };
    let e = connect(peer, &foreign).await.unwrap_err().to_string();
    assert!(
        e.contains("binding source address 192.0.2.1:0") && e.contains(&peer.to_string()),
        "{e}"
    );

    // Listening on an address that is taken.
    let listener = Listener::bind(LO4, 0).unwrap();
    let held = std::net::TcpListener::bind((LO4, 0)).unwrap();
    let e = Listener::bind(LO4, held.local_addr().unwrap().port())
        .unwrap_err()
        .to_string();
    assert!(e.contains("listening on 127.0.0.1:"), "{e}");
    drop(listener);
}
