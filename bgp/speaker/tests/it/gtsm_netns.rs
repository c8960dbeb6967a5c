//! GTSM with a real router hop: three network namespaces `a — r — b`, where `r` forwards
//! and so decrements the TTL. Needs root (skips with a message otherwise). The namespaces
//! are created with unique names and deleted by a guard, also when the test fails; nothing
//! is added to the machine's own namespace (the veths are created inside the namespaces).
//! Also BFD over IPv6 (hop limit 255) inside a namespace of its own.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use bgp_speaker::transport::{Listener, TransportError, TransportOpts, TtlMode, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MUST: Duration = Duration::from_secs(20);
const MUST_NOT: Duration = Duration::from_secs(3);

/// Deletes the namespaces it created when dropped.
pub(crate) struct Netns {
    pub(crate) names: Vec<String>,
}

impl Netns {
    pub(crate) fn name(&self, i: usize) -> &str {
        &self.names[i]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// a (10.99.1.1) — (10.99.1.2) r (10.99.2.2) — (10.99.2.1) b
fn topology() -> Netns {
    let tag = std::process::id();
    let mut ns = Netns { names: Vec::new() };
    for role in ["a", "r", "b"] {
        let name = format!("cbgp-gtsm-{role}-{tag}");
        ip(&["netns", "add", &name]);
        ns.names.push(name);
    }
    let (a, r, b) = (
        ns.name(0).to_string(),
        ns.name(1).to_string(),
        ns.name(2).to_string(),
    );
    ip(&[
        "-n", &a, "link", "add", "va", "type", "veth", "peer", "name", "ra", "netns", &r,
    ]);
    ip(&[
        "-n", &r, "link", "add", "rb", "type", "veth", "peer", "name", "vb", "netns", &b,
    ]);
    ip(&["-n", &a, "addr", "add", "10.99.1.1/24", "dev", "va"]);
    ip(&["-n", &r, "addr", "add", "10.99.1.2/24", "dev", "ra"]);
    ip(&["-n", &r, "addr", "add", "10.99.2.2/24", "dev", "rb"]);
    ip(&["-n", &b, "addr", "add", "10.99.2.1/24", "dev", "vb"]);
    for (n, dev) in [(&a, "va"), (&r, "ra"), (&r, "rb"), (&b, "vb")] {
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    for n in [&a, &r, &b] {
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &a, "route", "add", "default", "via", "10.99.1.2"]);
    ip(&["-n", &b, "route", "add", "default", "via", "10.99.2.2"]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .output()
        .expect("running sysctl");
    assert!(
        out.status.success(),
        "enabling forwarding: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns
}

/// Runs `f` on a thread that has entered namespace `ns`, with its own tokio runtime.
pub(crate) fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("opening the namespace");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("entering the namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f())
    })
}

/// Listens in `b` with a TTL floor of `255 - server_hops`, connects from `a` with
/// `client_ttl`, and says whether a session came up and carried a message.
fn session_comes_up(ns: &Netns, server_hops: u8, client_ttl: TtlMode) -> bool {
    let (port_tx, port_rx) = mpsc::channel::<u16>();
    let server = in_netns(ns.name(2), async move || {
        let listener = Listener::bind("10.99.2.1".parse().unwrap(), 0).unwrap();
        listener
            .set_min_ttl(TtlMode::Gtsm { hops: server_hops }.min_ttl())
            .unwrap();
        port_tx.send(listener.local_addr().port()).unwrap();
        let Ok(accepted) = tokio::time::timeout(MUST_NOT, listener.accept()).await else {
            return false;
        };
        let (mut stream, _) = accepted.unwrap();
        let mut buf = [0u8; 5];
        matches!(
            tokio::time::timeout(MUST, stream.read_exact(&mut buf)).await,
            Ok(Ok(_))
        ) && &buf == b"hello"
    });
    let port = port_rx
        .recv_timeout(MUST)
        .expect("the server did not start");
    let client = in_netns(ns.name(0), async move || {
        let peer = SocketAddr::new("10.99.2.1".parse::<IpAddr>().unwrap(), port);
        let opts = TransportOpts {
            ttl: client_ttl,
            connect_timeout: MUST_NOT,
            ..Default::default()
        };
        match connect(peer, &opts).await {
            Ok(mut s) => {
                // Data written before the close still reaches the server.
                s.write_all(b"hello").await.unwrap();
                true
            }
            // Dropped silently (TTL floor) or answered with ICMP time exceeded (TTL 1
            // at the router), which Linux reports as EHOSTUNREACH.
            Err(TransportError::ConnectTimeout { .. }) => false,
            Err(TransportError::Connect { source, .. })
                if source.raw_os_error() == Some(libc_ehostunreach()) =>
            {
                false
            }
            Err(e) => panic!("unexpected connect error: {e}"),
        }
    });
    let client_up = client.join().expect("client thread");
    let server_up = server.join().expect("server thread");
    assert!(
        !server_up || client_up,
        "the server got data from a client that never connected"
    );
    server_up
}

fn libc_ehostunreach() -> i32 {
    nix::errno::Errno::EHOSTUNREACH as i32
}

#[test]
fn gtsm_through_one_router() {
    if !containerlab::testing::require_root("gtsm_through_one_router") {
        return;
    }
    let ns = topology();
    // Sent with 255, arrives with 254 after one router.
    assert!(
        !session_comes_up(&ns, 0, TtlMode::Gtsm { hops: 1 }),
        "a floor of 255 let a packet that crossed a router through"
    );
    assert!(
        session_comes_up(&ns, 1, TtlMode::Gtsm { hops: 1 }),
        "a floor of 254 dropped a GTSM peer one router away"
    );
    // TTL 1 (direct eBGP) dies at the router; TTL 2 (multihop) gets through.
    assert!(
        !session_comes_up(&ns, 254, TtlMode::Fixed(1)),
        "TTL 1 crossed a router"
    );
    assert!(
        session_comes_up(&ns, 254, TtlMode::Fixed(2)),
        "TTL 2 did not cross one router"
    );
}

/// BFD over IPv6 (RFC 5881 §5: hop limit 255 both ways) between two instances on two
/// addresses of one namespace's loopback: the sessions come up, and a peer that goes
/// silent is detected. The IPv6 receive path (IPV6_RECVHOPLIMIT, packet info) is only
/// exercised here.
#[test]
fn bfd_over_ipv6_comes_up_and_detects_a_silent_peer() {
    use std::net::Ipv6Addr;

    use bgp::bfd::{BfdConfig, BfdState, Diag};
    use bgp_speaker::bfd::{Bfd, BfdOptions};

    if !containerlab::testing::require_root("bfd_over_ipv6_comes_up_and_detects_a_silent_peer") {
        return;
    }
    let name = format!("cbgp-bfd6-{}", std::process::id());
    ip(&["netns", "add", &name]);
    let ns = Netns {
        names: vec![name.clone()],
    };
    ip(&["-n", &name, "link", "set", "lo", "up"]);
    for a in ["fd00:99::1/128", "fd00:99::2/128"] {
        ip(&["-n", &name, "addr", "add", a, "dev", "lo", "nodad"]);
    }
    let (a, b): (Ipv6Addr, Ipv6Addr) =
        ("fd00:99::1".parse().unwrap(), "fd00:99::2".parse().unwrap());
    let (ia, ib) = (IpAddr::V6(a), IpAddr::V6(b));
    let done = in_netns(ns.name(0), async move || {
        let on = |addr: Ipv6Addr| {
            Bfd::start(BfdOptions {
                port: bgp::bfd::CONTROL_PORT,
                bind_v4: None,
                bind_v6: Some(addr),
            })
            .unwrap()
        };
        let cfg = BfdConfig {
            desired_min_tx: Duration::from_millis(50),
            required_min_rx: Duration::from_millis(50),
            detect_mult: 3,
        };
        let (x, y) = (on(a), on(b));
        x.add(ib, ia, cfg).unwrap();
        y.add(ia, ib, cfg).unwrap();
        let wait = async |bfd: &Bfd, peer: IpAddr, local: IpAddr, want: BfdState| {
            tokio::time::timeout(MUST, async {
                loop {
                    if let Some(s) = bfd.status(peer, local).filter(|s| s.state == want) {
                        return s;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{peer} never {want}: {:?}", bfd.status(peer, local)))
        };
        wait(&x, ib, ia, BfdState::Up).await;
        wait(&y, ia, ib, BfdState::Up).await;
        // y goes silent (no AdminDown): x detects it.
        y.abort();
        let s = wait(&x, ib, ia, BfdState::Down).await;
        assert_eq!(s.diag, Diag::ControlDetectionTimeExpired);
    });
    done.join().expect("the IPv6 BFD run");
}
