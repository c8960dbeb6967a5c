use std::net::UdpSocket;

use super::*;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Generous bound so a test never hangs; nothing asserts on elapsed time.
const PATIENCE: Duration = Duration::from_secs(20);

fn fast() -> BfdConfig {
    BfdConfig {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(50),
        detect_mult: 3,
    }
}

fn free_port() -> u16 {
    UdpSocket::bind((A, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn on(addr: IpAddr, port: u16) -> Bfd {
    let IpAddr::V4(v4) = addr else { unreachable!() };
    Bfd::start(BfdOptions {
        port,
        bind_v4: Some(v4),
        bind_v6: None,
    })
    .unwrap()
}

async fn wait_state(bfd: &Bfd, key: SessionKey, want: BfdState) -> SessionStatus {
    let mut w = bfd.watch();
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(s) = w.borrow_and_update().get(&key).filter(|s| s.state == want) {
                return s.clone();
            }
            w.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{key:?} never reached {want}: {:?}",
            bfd.status(key.0, key.1)
        )
    })
}

async fn next_event(rx: &mut broadcast::Receiver<BfdEvent>, to: BfdState) -> BfdEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let e = rx.recv().await.unwrap();
            if e.to == to {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event to {to}"))
}

#[tokio::test]
async fn two_instances_up_then_removed_then_stopped() {
    let port = free_port();
    let a = on(A, port);
    let b = on(B, port);
    let mut a_events = a.subscribe();
    a.add(B, A, fast()).unwrap();
    b.add(A, B, fast()).unwrap();
    let sa = wait_state(&a, (B, A), BfdState::Up).await;
    let sb = wait_state(&b, (A, B), BfdState::Up).await;
    assert_eq!(sa.remote_discr, sb.local_discr);
    assert_eq!(sb.remote_discr, sa.local_discr);
    assert!(sa.was_up);
    assert_eq!(
        next_event(&mut a_events, BfdState::Up).await.diag,
        Diag::None
    );

    // Removal on B says AdminDown: A goes Down, diag 3, and it is not a failure.
    b.remove(A, B);
    let e = next_event(&mut a_events, BfdState::Down).await;
    assert_eq!(
        (e.from, e.diag, e.remote_state),
        (
            BfdState::Up,
            Diag::NeighborSignaledDown,
            BfdState::AdminDown
        )
    );
    assert!(!e.is_failure());
    assert!(b.status(A, B).is_none());

    // Back again.
    b.add(A, B, fast()).unwrap();
    wait_state(&a, (B, A), BfdState::Up).await;
    wait_state(&b, (A, B), BfdState::Up).await;

    // B vanishes silently: A detects it (diag 1), a failure.
    drop(b);
    let e = next_event(&mut a_events, BfdState::Down).await;
    assert_eq!(
        (e.from, e.diag),
        (BfdState::Up, Diag::ControlDetectionTimeExpired)
    );
    assert!(e.is_failure());
    let s = a.status(B, A).unwrap();
    assert_eq!(
        (s.state, s.diag, s.remote_discr),
        (BfdState::Down, Diag::ControlDetectionTimeExpired, 0)
    );
}

#[tokio::test]
async fn reconfigure_and_shutdown() {
    let port = free_port();
    let a = on(A, port);
    let b = on(B, port);
    a.add(B, A, fast()).unwrap();
    b.add(A, B, fast()).unwrap();
    wait_state(&a, (B, A), BfdState::Up).await;
    let slower = BfdConfig {
        desired_min_tx: Duration::from_millis(200),
        ..fast()
    };
    a.add(B, A, slower).unwrap();
    let mut w = a.watch();
    tokio::time::timeout(
        PATIENCE,
        w.wait_for(|m| m.get(&(B, A)).is_some_and(|s| s.config == slower)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        a.status(B, A).unwrap().state,
        BfdState::Up,
        "a parameter change keeps the session"
    );
    let mut b_events = b.subscribe();
    a.shutdown().await;
    let e = next_event(&mut b_events, BfdState::Down).await;
    assert_eq!(e.remote_state, BfdState::AdminDown);
    assert!(!e.is_failure());
}

#[tokio::test]
async fn bad_input_refused() {
    let a = on(A, free_port());
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(
        a.add(v6, A, fast()).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let zero = BfdConfig {
        detect_mult: 0,
        ..fast()
    };
    assert_eq!(
        a.add(B, A, zero).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    // A local address that is not ours.
    let foreign = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    assert!(a.add(B, foreign, fast()).is_err());
}

/// Packets that did not arrive with TTL 255 are dropped (RFC 5881 §5); with 255 they
/// reach the session chosen by (source, destination).
#[tokio::test]
async fn ttl_255_only() {
    let port = free_port();
    let a = on(A, port);
    a.add(B, A, fast()).unwrap();
    wait_state(&a, (B, A), BfdState::Down).await;
    let peer = ControlPacket {
        diag: Diag::None,
        state: BfdState::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: 99,
        your_discr: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 1_000_000,
        required_min_echo_rx_us: 0,
        auth: None,
    };
    let local_discr = a.status(B, A).unwrap().local_discr;
    let mut events = a.subscribe();
    let s = UdpSocket::bind((B, 0)).unwrap();
    // With TTL 64, an Init packet naming our session would take it straight Up…
    s.set_ttl(64).unwrap();
    let init = ControlPacket {
        state: BfdState::Init,
        your_discr: local_discr,
        ..peer.clone()
    };
    s.send_to(&init.encode(), (A, port)).unwrap();
    // …while with TTL 255 a Down packet takes it to Init. Loopback keeps the order, so
    // the first change tells which packet counted.
    s.set_ttl(255).unwrap();
    s.send_to(&peer.encode(), (A, port)).unwrap();
    let e = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.from, e.to),
        (BfdState::Down, BfdState::Init),
        "the TTL 64 packet counted"
    );
    assert_eq!(a.status(B, A).unwrap().remote_discr, 99);
}

fn key(t: AuthType, secret: &[u8]) -> AuthKey {
    AuthKey::new(t, 3, secret.to_vec()).unwrap()
}

/// Authenticated sessions over loopback: the same key comes Up (and the status says
/// which type); a wrong key on one side keeps both Down and counts failures.
#[tokio::test]
async fn authenticated_sessions() {
    let port = free_port();
    let a = on(A, port);
    let b = on(B, port);
    let t = AuthType::MeticulousKeyedSha1;
    a.add_with_auth(B, A, fast(), Some(key(t, b"right")))
        .unwrap();
    b.add_with_auth(A, B, fast(), Some(key(t, b"right")))
        .unwrap();
    let s = wait_state(&a, (B, A), BfdState::Up).await;
    assert_eq!(s.auth, Some(t));
    wait_state(&b, (A, B), BfdState::Up).await;
    // b changes to a key a does not have: a stops accepting b's packets and times out.
    let mut a_events = a.subscribe();
    b.add_with_auth(A, B, fast(), Some(key(t, b"wrong")))
        .unwrap();
    let e = next_event(&mut a_events, BfdState::Down).await;
    assert_eq!(e.diag, Diag::ControlDetectionTimeExpired);
    let mut w = a.watch();
    tokio::time::timeout(
        PATIENCE,
        w.wait_for(|m| m.get(&(B, A)).is_some_and(|s| s.auth_failures > 0)),
    )
    .await
    .unwrap()
    .unwrap();
    // Unauthenticated packets are refused by an authenticated session too.
    b.add_with_auth(A, B, fast(), None).unwrap();
    let before = a.status(B, A).unwrap().auth_failures;
    tokio::time::timeout(
        PATIENCE,
        w.wait_for(|m| m.get(&(B, A)).is_some_and(|s| s.auth_failures > before + 2)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_ne!(a.status(B, A).unwrap().state, BfdState::Up);
}
