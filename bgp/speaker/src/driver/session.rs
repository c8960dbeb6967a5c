//! One neighbor's session task: the FSM over a TCP connection.

use super::*;
use bytes::Bytes;
use tokio::net::tcp::OwnedReadHalf;

/// Whether a session that ended this way keeps the peer's routes under graceful restart:
/// connection loss and hold timer expiry always (RFC 4724); a NOTIFICATION either way
/// only with the N bit (RFC 8538), and never a Cease/Hard Reset; our own stop never.
fn gr_covers(reason: &fsm::DownReason, n_bit: bool) -> bool {
    const CEASE: u8 = 6;
    const HARD_RESET: u8 = 9;
    match reason {
        fsm::DownReason::ConnectionFailed | fsm::DownReason::HoldTimerExpired => true,
        fsm::DownReason::NotificationReceived(n) | fsm::DownReason::ProtocolError(n) => {
            n_bit && !(n.code == CEASE && n.subcode == HARD_RESET)
        }
        fsm::DownReason::ManualStop
        | fsm::DownReason::AutomaticStop { .. }
        | fsm::DownReason::CollisionDump
        | fsm::DownReason::UnexpectedInput { .. } => false,
    }
}

fn notif_data(n: &Notification) -> NotificationData {
    let (code, subcode) = n.code.codes();
    NotificationData {
        code,
        subcode,
        data: n.data.clone(),
    }
}

fn to_wire(n: &NotificationData) -> Notification {
    Notification::new(ErrorCode::from_codes(n.code, n.subcode), n.data.clone())
}

pub(super) async fn session_task(
    p: PeerConfig,
    sp: SpeakerConfig,
    mut fsm: Fsm,
    mut ctl: mpsc::UnboundedReceiver<PeerCtl>,
    table: TableTx,
    status: Arc<Mutex<BTreeMap<IpAddr, PeerStatus>>>,
) {
    let families = match p.addr {
        IpAddr::V4(_) => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        IpAddr::V6(_) => vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST],
    };
    let mut caps: Vec<Capability> = wire::ctx::basic_capabilities(sp.asn, &families);
    if p.addr.is_ipv6() {
        // RFC 8950: IPv4 routes with our IPv6 next hop on an IPv6-only session.
        caps.push(Capability::ExtendedNextHop(vec![wire::ExtNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: bgp::types::Afi::Ipv6,
        }]));
    }
    if p.add_path_receive {
        caps.push(Capability::AddPath(
            families
                .iter()
                .map(|f| (*f, wire::AddPathMode::Receive))
                .collect(),
        ));
    }
    // Our GR capability; the R bit only in the first session after a restart.
    let gr_cap = |restarting: bool| {
        sp.graceful_restart.as_ref().map(|g| {
            Capability::GracefulRestart(GracefulRestart {
                restart_state: restarting,
                notification: true,
                restart_time: g.restart_time.min(4095),
                families: families.iter().map(|f| (*f, true)).collect(),
            })
        })
    };
    let mut restarting = sp.graceful_restart.as_ref().is_some_and(|g| g.restarting);
    if let Some(c) = gr_cap(restarting) {
        caps.push(c);
    }
    let mut conn: Option<Conn> = None;
    // Connections are numbered so that what was meant for an earlier one (UPDATEs made
    // for it, its writer's failure) never touches a later one.
    let mut conn_gen: u64 = 0;
    let (werr_tx, mut werr_rx) = mpsc::unbounded_channel::<u64>();
    // The writer of a connection being closed (its NOTIFICATION still going out).
    let mut closing: Option<tokio::task::JoinHandle<()>> = None;
    let mut connecting: Option<
        tokio::task::JoinHandle<Result<TcpStream, transport::TransportError>>,
    > = None;
    let mut timers: HashMap<Timer, Instant> = HashMap::new();
    let mut buf = BytesMut::with_capacity(65536);
    let mut ctx = SessionCtx::default();
    let mut local_open: Option<Open> = None;
    let mut remote_open: Option<Open> = None;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<SessionOut>();
    // After a reset by the table (max-prefix), the session stays down until then.
    let mut paused_until: Option<Instant> = None;
    let mut stopping = false;
    // The peer's GR capability of the current session, when both sides sent one.
    let mut gr_negotiated: Option<GracefulRestart> = None;
    // Steps to take in order: FSM inputs, and UPDATEs / refreshes that reach the table
    // only if the session is Established once the FSM has seen them.
    let mut inputs: std::collections::VecDeque<Step> = std::collections::VecDeque::new();
    inputs.push_back(Step::Input(if p.passive {
        Input::ManualStartPassive
    } else {
        Input::ManualStart
    }));

    loop {
        // Feed pending inputs, applying outputs (which may produce more inputs).
        while let Some(step) = inputs.pop_front() {
            let input = match step {
                Step::Input(i) => i,
                Step::Update(u) => {
                    set_status(&status, p.addr, |s| s.updates_in += 1);
                    let up = fsm.state() == State::Established;
                    inputs.push_front(Step::Input(Input::UpdateMsg));
                    if up {
                        table.update(p.addr, u).await;
                    }
                    continue;
                }
                Step::Refresh => {
                    if fsm.state() == State::Established {
                        let _ = table.send(TableCmd::Refresh { addr: p.addr });
                    }
                    continue;
                }
            };
            for out in fsm.process(input) {
                match out {
                    Output::InitiateConnection => {
                        if conn.is_none() && connecting.is_none() {
                            let (addr, opts) =
                                (SocketAddr::new(p.addr, p.port), p.transport.clone());
                            connecting = Some(tokio::spawn(async move {
                                transport::connect(addr, &opts).await
                            }));
                        }
                    }
                    Output::DropConnection => {
                        if let Some(c) = conn.take() {
                            closing = Some(c.close());
                        }
                        if let Some(t) = connecting.take() {
                            t.abort();
                        }
                        buf.clear();
                    }
                    Output::SendOpen(info) => {
                        let open = Open::new(info.asn, info.hold_time, info.bgp_id, caps.clone());
                        local_open = Some(open.clone());
                        if let Err(e) = send(&conn, &[Message::Open(open)], &ctx) {
                            tracing::debug!("{}: sending OPEN: {e}", p.addr);
                            inputs.push_front(Step::Input(Input::TcpConnectionFails));
                        }
                    }
                    Output::SendKeepalive => {
                        if send(&conn, &[Message::Keepalive], &ctx).is_err() {
                            inputs.push_front(Step::Input(Input::TcpConnectionFails));
                        }
                    }
                    Output::SendNotification(n) => {
                        let _ = send(&conn, &[Message::Notification(to_wire(&n))], &ctx);
                        set_status(&status, p.addr, |s| {
                            s.last_error = Some(format!("sent {n}"))
                        });
                    }
                    Output::StartTimer(t, d) => {
                        let mut at = Instant::now() + d;
                        if t == Timer::IdleHold
                            && let Some(until) = paused_until.take()
                        {
                            at = at.max(until);
                        }
                        timers.insert(t, at);
                    }
                    Output::StopTimer(t) => {
                        timers.remove(&t);
                    }
                    Output::StateChanged { to, .. } => {
                        set_status(&status, p.addr, |s| {
                            s.state = to.to_string();
                            s.transitions += 1;
                        });
                    }
                    Output::SessionUp(neg) => {
                        let local = conn.as_ref().map(|c| c.local);
                        if let (Some(lo), Some(ro)) = (&local_open, &remote_open) {
                            ctx = SessionCtx::negotiate(lo, ro);
                        }
                        set_status(&status, p.addr, |s| {
                            s.established_at = Some(now_secs());
                            s.last_error = None;
                        });
                        let peer_gr = sp
                            .graceful_restart
                            .as_ref()
                            .and(remote_open.as_ref())
                            .and_then(|o| o.graceful_restart().cloned());
                        if let Some(local) = local {
                            let _ = table.send(TableCmd::PeerUp {
                                addr: p.addr,
                                conn: conn_gen,
                                out: out_tx.clone(),
                                ctx: ctx.clone(),
                                local,
                                ebgp: !neg.internal,
                                router_id: neg.peer.bgp_id,
                                peer_gr: peer_gr.clone(),
                                next_hop_v6: p.next_hop_v6,
                                policy: Box::new(p.policy.clone()),
                                ebgp_requires_policy: p.ebgp_requires_policy,
                            });
                        }
                        gr_negotiated = peer_gr;
                        // Later sessions are not restarts any more: clear the R bit.
                        if restarting {
                            restarting = false;
                            caps.retain(|c| !matches!(c, Capability::GracefulRestart(_)));
                            if let Some(c) = gr_cap(false) {
                                caps.push(c);
                            }
                        }
                    }
                    Output::SessionDown { reason } => {
                        let graceful = gr_negotiated
                            .take()
                            .is_some_and(|g| gr_covers(&reason, g.notification));
                        let _ = table.send(TableCmd::PeerDown {
                            addr: p.addr,
                            graceful,
                        });
                        set_status(&status, p.addr, |s| {
                            s.eor_received = false;
                            s.flaps += 1;
                            s.established_at = None;
                            s.prefixes_received = 0;
                            s.prefixes_advertised = 0;
                            s.last_error = Some(format!("{reason:?}"));
                        });
                    }
                    Output::ProcessUpdate | Output::ReleaseResources => {}
                }
            }
            if matches!(fsm.state(), State::Idle) {
                ctx = SessionCtx::default();
                remote_open = None;
                if let Some(e) = fsm.last_error() {
                    let e = format!("{e:?}");
                    set_status(&status, p.addr, |s| s.last_error = Some(e));
                }
            }
        }
        if stopping {
            if let Some(c) = conn.take() {
                closing = Some(c.close());
            }
            if let Some(w) = closing.take() {
                let _ = tokio::time::timeout(CLOSE_WAIT, w).await;
            }
            let _ = table.send(TableCmd::PeerDown {
                addr: p.addr,
                graceful: false,
            });
            return;
        }

        let next_timer = timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at));
        tokio::select! {
            c = ctl.recv() => match c {
                Some(PeerCtl::Incoming(stream)) => {
                    if conn.is_none() && fsm.state().accepts_connection() {
                        if let Some(t) = connecting.take() {
                            t.abort();
                        }
                        let _ = transport::configure_accepted(&stream, SocketAddr::new(p.addr, 179), &p.transport);
                        conn_gen += 1;
                        match Conn::new(stream, conn_gen, p.addr, &werr_tx, &table) {
                            Ok(c) => {
                                conn = Some(c);
                                inputs.push_back(Step::Input(Input::TcpConnectionConfirmed));
                            }
                            Err(_) => inputs.push_back(Step::Input(Input::TcpConnectionFails)),
                        }
                    } else {
                        drop(stream);
                    }
                }
                Some(PeerCtl::Abandon) => {
                    // Drop the connection as a crash would; the table goes with us.
                    if let Some(t) = connecting.take() {
                        t.abort();
                    }
                    if let Some(c) = conn.take() {
                        c.abandon();
                    }
                    return;
                }
                Some(PeerCtl::Stop) | None => {
                    stopping = true;
                    inputs.push_back(Step::Input(Input::ManualStop));
                }
            },
            r = async { match connecting.as_mut() { Some(t) => t.await, None => std::future::pending().await } } => {
                connecting = None;
                match r {
                    Ok(Ok(stream)) => {
                        conn_gen += 1;
                        match Conn::new(stream, conn_gen, p.addr, &werr_tx, &table) {
                            Ok(c) => {
                                conn = Some(c);
                                inputs.push_back(Step::Input(Input::TcpCrAcked));
                            }
                            Err(_) => inputs.push_back(Step::Input(Input::TcpConnectionFails)),
                        }
                    }
                    Ok(Err(e)) => {
                        set_status(&status, p.addr, |s| s.last_error = Some(e.to_string()));
                        inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    }
                    Err(_) => inputs.push_back(Step::Input(Input::TcpConnectionFails)),
                }
            }
            Some(g) = werr_rx.recv() => {
                if conn.as_ref().is_some_and(|c| c.generation == g) {
                    if let Some(c) = conn.take() {
                        c.abandon();
                    }
                    inputs.push_front(Step::Input(Input::TcpConnectionFails));
                }
            }
            n = async { match conn.as_mut() { Some(c) => c.rd.read_buf(&mut buf).await, None => std::future::pending().await } } => {
                match n {
                    Ok(0) | Err(_) => {
                        if let Some(c) = conn.take() {
                            c.abandon();
                        }
                        inputs.push_front(Step::Input(Input::TcpConnectionFails));
                    }
                    Ok(_) => {
                        // Cut and decode every whole message; inputs are processed in order.
                        let mut got = Vec::new();
                        loop {
                            match wire::frame_len(&buf, ctx.max_len) {
                                Ok(Some(len)) => {
                                    let frame = buf.split_to(len);
                                    let d = decode(&frame, &ctx);
                                    // Later frames of this read decode with what the OPENs
                                    // negotiated (4-octet AS, ADD-PATH, lengths).
                                    if let (Decoded::Open(o), Some(lo)) = (&d, &local_open) {
                                        ctx = SessionCtx::negotiate(lo, o);
                                    }
                                    got.push(d);
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    got.push(Decoded::Input(Input::BgpHeaderErr(notif_data(&e.notification()))));
                                    buf.clear();
                                    break;
                                }
                            }
                        }
                        for d in got {
                            match d {
                                Decoded::Input(i) => inputs.push_back(Step::Input(i)),
                                Decoded::Open(open) => {
                                    let info = OpenInfo { version: 4, asn: open.asn(), hold_time: open.hold_time, bgp_id: open.bgp_id };
                                    remote_open = Some(open);
                                    inputs.push_back(Step::Input(Input::BgpOpen(info)));
                                }
                                Decoded::Update(u) => inputs.push_back(Step::Update(u)),
                                Decoded::Refresh => inputs.push_back(Step::Refresh),
                            }
                        }
                    }
                }
            }
            Some(out) = out_rx.recv() => {
                match out {
                    SessionOut::Updates { conn: g, bytes, updates } => {
                        // UPDATEs made for an earlier connection are dropped.
                        if fsm.state() == State::Established
                            && let Some(c) = conn.as_ref().filter(|c| c.generation == g)
                        {
                            c.write(bytes, true);
                            set_status(&status, p.addr, |s| s.updates_out += updates);
                        }
                    }
                    SessionOut::Reset { cease_subcode, hold } => {
                        paused_until = Some(Instant::now() + hold);
                        inputs.push_back(Step::Input(Input::AutomaticStop { cease_subcode }));
                    }
                }
            }
            _ = async { match next_timer { Some((_, at)) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } } => {
                if let Some((t, _)) = next_timer {
                    timers.remove(&t);
                    inputs.push_back(Step::Input(Input::TimerExpired(t)));
                }
            }
        }
    }
}

// UPDATEs dominate; boxing them would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Step {
    Input(Input),
    Update(Update),
    Refresh,
}

#[allow(clippy::large_enum_variant)]
enum Decoded {
    Input(Input),
    Open(Open),
    Update(Update),
    Refresh,
}

fn decode(frame: &[u8], ctx: &SessionCtx) -> Decoded {
    match Message::decode(frame, ctx) {
        Ok(Message::Open(o)) => Decoded::Open(o),
        Ok(Message::Update(u)) => Decoded::Update(u),
        Ok(Message::Keepalive) => Decoded::Input(Input::KeepAliveMsg),
        Ok(Message::Notification(n)) => Decoded::Input(Input::NotifMsg(notif_data(&n))),
        Ok(Message::RouteRefresh(_)) => Decoded::Refresh,
        Err(e) => {
            let n = notif_data(&e.notification());
            Decoded::Input(match n.code {
                fsm::codes::MESSAGE_HEADER_ERROR => Input::BgpHeaderErr(n),
                fsm::codes::OPEN_MESSAGE_ERROR => Input::BgpOpenMsgErr(n),
                _ => Input::UpdateMsgErr(n),
            })
        }
    }
}

/// Queues FSM messages (OPEN, KEEPALIVE, NOTIFICATION) on the connection.
fn send(conn: &Option<Conn>, msgs: &[Message], ctx: &SessionCtx) -> std::io::Result<()> {
    let Some(c) = conn.as_ref() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "no connection",
        ));
    };
    let mut out = BytesMut::new();
    for m in msgs {
        m.encode(ctx, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    }
    c.write(out.freeze(), false);
    Ok(())
}

/// How long a closing connection may take to send what is queued (its NOTIFICATION).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

enum Write {
    /// Bytes to send; `ack`: tell the table once they are written (its flow control).
    Bytes(Bytes, bool),
    /// Send what is queued, then close.
    Close,
}

/// A session's TCP connection. We read here; a writer task of its own writes, so a peer
/// slow to read never keeps us from reading (two speakers each blocked writing to the
/// other would wait forever).
struct Conn {
    rd: OwnedReadHalf,
    local: IpAddr,
    generation: u64,
    wr: mpsc::UnboundedSender<Write>,
    writer: tokio::task::JoinHandle<()>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        generation: u64,
        peer: IpAddr,
        failed: &mpsc::UnboundedSender<u64>,
        table: &TableTx,
    ) -> std::io::Result<Conn> {
        let local = stream.local_addr()?.ip();
        let (rd, mut w) = stream.into_split();
        let (wr, mut rx) = mpsc::unbounded_channel::<Write>();
        let (failed, table) = (failed.clone(), table.clone());
        let writer = tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Write::Bytes(b, ack) => {
                        if w.write_all(&b).await.is_err() {
                            let _ = failed.send(generation);
                            return;
                        }
                        if ack {
                            let _ = table.send(TableCmd::Written {
                                addr: peer,
                                conn: generation,
                                bytes: b.len(),
                            });
                        }
                    }
                    Write::Close => break,
                }
            }
            let _ = w.shutdown().await;
        });
        Ok(Conn {
            rd,
            local,
            generation,
            wr,
            writer,
        })
    }

    fn write(&self, bytes: Bytes, ack: bool) {
        let _ = self.wr.send(Write::Bytes(bytes, ack));
    }

    /// Sends what is queued and closes; gives up after [`CLOSE_WAIT`].
    fn close(self) -> tokio::task::JoinHandle<()> {
        let _ = self.wr.send(Write::Close);
        let mut writer = self.writer;
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
                writer.abort();
            }
        })
    }

    /// Drops the connection at once, as a crash would.
    fn abandon(self) {
        self.writer.abort();
    }
}
