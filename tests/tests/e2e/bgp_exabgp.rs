//! Our BGP speaker against malformed input.
//!
//! - ExaBGP, in a lab namespace of its own, peers with our speaker and sends UPDATEs
//!   whose path attributes are broken on purpose (ExaBGP's raw `attribute [ code flags
//!   value ]` syntax puts the bytes on the wire as given). RFC 7606 decides the outcome:
//!   a malformed COMMUNITIES or ORIGIN is treat-as-withdraw (the route goes away, the
//!   session stays up); a malformed AGGREGATOR or ATOMIC_AGGREGATE is attribute-discard
//!   (the route is kept). An unrecognized well-known attribute, which RFC 7606 leaves
//!   fatal, resets the session with the NOTIFICATION RFC 4271 §6.3 prescribes.
//! - Plain TCP clients on the host's loopback, each a neighbor of the same speaker,
//!   complete the OPEN exchange and then send garbage: a bad marker, a bad length, an
//!   unknown message type. Each gets the Message Header Error NOTIFICATION with the
//!   subcode and data RFC 4271 §6.1 prescribes, while the ExaBGP session is untouched.
//!
//! The lab is a throwaway topology written to a temporary directory: an `exabgp` node
//! and a plain host node (`h1`; containerlab reserves `host`) joined by one veth.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_speaker::driver::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use containerlab::lab::{DeployOptions, LabGuard};
use contiv_tests::require_root;
use contiv_tests::speaker::{in_node, runtime, wait_routes};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const DEADLINE: Duration = Duration::from_secs(60);

const HOST_ADDR: &str = "10.0.3.0";
const EXA_ADDR: &str = "10.0.3.1";
const HOST_AS: u32 = 65201;
const EXA_AS: u32 = 65003;
/// The AS the raw test clients claim.
const RAW_AS: u16 = 65010;

// ---- the lab -----------------------------------------------------------------------------

/// A lab from a topology written into `dir` together with its config files, under a
/// name unique to this process.
fn temp_lab(dir: &Path, name: &str, yml: &str, files: &[(&str, String)]) -> containerlab::Lab {
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let file = dir.join(format!("{name}.clab.yml"));
    std::fs::write(&file, yml).unwrap();
    let topo = containerlab::Topology::parse(yml, &file).expect("topology parses");
    containerlab::Lab::new(topo, &containerlab::plan::default_lab_root()).expect("lab plans")
}

fn exabgp_lab(dir: &Path) -> LabGuard {
    let name = format!("exa-{}", std::process::id());
    let yml = format!(
        "name: {name}
topology:
  nodes:
    exa:
      kind: linux
      image: exabgp/exabgp:4.2.21
      binds:
        - exabgp.conf:/etc/exabgp/exabgp.conf
      exec:
        - ip addr add {EXA_ADDR}/31 dev eth1
    h1:
      kind: linux
      exec:
        - ip addr add {HOST_ADDR}/31 dev eth1
  links:
    - endpoints: [\"exa:eth1\", \"h1:eth1\"]
"
    );
    // ExaBGP connects out (it does not listen by default); our speaker listens.
    let conf = format!(
        "neighbor {HOST_ADDR} {{
  router-id {EXA_ADDR};
  local-address {EXA_ADDR};
  local-as {EXA_AS};
  peer-as {HOST_AS};
  hold-time 9;
  family {{ ipv4 unicast; }}
}}
"
    );
    temp_lab(dir, &name, &yml, &[("exabgp.conf", conf)])
        .deploy_guarded(&DeployOptions::default())
        .unwrap()
}

/// Sends an API command to the node's ExaBGP (through its `exabgpcli` wrapper).
fn exa(lab: &containerlab::Lab, cmd: &str) {
    lab.exec_ok("exa", &format!("exabgpcli '{cmd}'"))
        .unwrap_or_else(|e| panic!("exabgpcli {cmd}: {e}"));
}

fn announce(lab: &containerlab::Lab, prefix: &str, extra: &str) {
    exa(
        lab,
        &format!("neighbor {HOST_ADDR} announce route {prefix} next-hop self {extra}"),
    );
}

// ---- waiting on the speaker --------------------------------------------------------------

fn status(s: &Speaker, addr: IpAddr) -> PeerStatus {
    s.neighbors()
        .into_iter()
        .find(|p| p.address == addr)
        .unwrap_or_else(|| panic!("no neighbor {addr}"))
}

async fn wait_status(s: &Speaker, addr: IpAddr, what: &str, f: impl Fn(&PeerStatus) -> bool) {
    let start = Instant::now();
    loop {
        let st = status(s, addr);
        if f(&st) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{addr}: {what}; status {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the peer has sent `n` UPDATEs in all (so the next check sees the effect
/// of the last one, whichever way it went).
async fn wait_updates(s: &Speaker, addr: IpAddr, n: u64) {
    wait_status(s, addr, &format!("{n} UPDATEs received"), |p| {
        p.updates_in >= n
    })
    .await;
}

fn speaker_cfg() -> SpeakerConfig {
    SpeakerConfig {
        publish_routes: true,
        asn: HOST_AS,
        router_id: HOST_ADDR.parse().unwrap(),
        listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 179)),
        max_paths: 16,
        export_learned: false,
        communities: vec!["65000:42".parse().unwrap()],
        large_communities: vec![],
        graceful_restart: None,
    }
}

fn passive(addr: &str, asn: u32) -> PeerConfig {
    PeerConfig {
        passive: true,
        ..PeerConfig::new(addr.parse().unwrap(), asn)
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

// ---- a raw BGP client --------------------------------------------------------------------

const MARKER: [u8; 16] = [0xFF; 16];

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = MARKER.to_vec();
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An OPEN: version 4, `RAW_AS`, hold time 9, with the IPv4 unicast and 4-octet AS
/// capabilities.
fn open(id: Ipv4Addr) -> Vec<u8> {
    let mut caps = vec![1, 4, 0, 1, 0, 1, 65, 4];
    caps.extend_from_slice(&u32::from(RAW_AS).to_be_bytes());
    let mut body = vec![4];
    body.extend_from_slice(&RAW_AS.to_be_bytes());
    body.extend_from_slice(&9u16.to_be_bytes());
    body.extend_from_slice(&id.octets());
    body.push(caps.len() as u8 + 2);
    body.push(2);
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    message(1, &body)
}

/// Reads one message: its type and body; `None` at end of stream.
async fn read_msg(c: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 19];
    let read = tokio::time::timeout(DEADLINE, c.read_exact(&mut h))
        .await
        .expect("the speaker went silent");
    if read.is_err() {
        return None;
    }
    assert_eq!(h[..16], MARKER, "marker of a message from the speaker");
    let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let mut body = vec![0u8; len - 19];
    c.read_exact(&mut body).await.ok()?;
    Some((h[18], body))
}

/// Reads until a message of `kind` arrives (skipping others); panics at end of stream.
async fn expect_msg(c: &mut TcpStream, kind: u8) -> Vec<u8> {
    loop {
        match read_msg(c).await {
            Some((k, body)) if k == kind => return body,
            Some((3, body)) => panic!("unexpected NOTIFICATION {body:?}"),
            Some(_) => {}
            None => panic!("connection closed while waiting for a message of type {kind}"),
        }
    }
}

/// Connects from `local` to the speaker and sends our OPEN, once the speaker accepts.
async fn connect_raw(local: Ipv4Addr) -> TcpStream {
    let start = Instant::now();
    loop {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(local.into(), 0)).unwrap();
        if let Ok(mut c) = sock.connect("127.0.0.1:179".parse().unwrap()).await {
            c.write_all(&open(local)).await.unwrap();
            // A speaker that is not ready for us (Idle) closes at once; try again.
            if let Some((1, _)) = read_msg(&mut c).await {
                return c;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{local}: the speaker never answered with an OPEN"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A session from `local` brought to Established (the OPENs and KEEPALIVEs exchanged).
async fn established_raw(s: &Speaker, local: Ipv4Addr) -> TcpStream {
    let mut c = connect_raw(local).await;
    expect_msg(&mut c, 4).await;
    c.write_all(&message(4, &[])).await.unwrap();
    wait_status(s, local.into(), "Established", |p| p.state == "Established").await;
    c
}

/// Sends `garbage` and checks that the speaker answers with NOTIFICATION 1/`subcode`
/// carrying `data`, then closes the connection.
async fn expect_header_error(c: &mut TcpStream, garbage: &[u8], subcode: u8, data: &[u8]) {
    c.write_all(garbage).await.unwrap();
    let n = expect_msg(c, 3).await;
    assert_eq!(
        (n[0], n[1], &n[2..]),
        (1, subcode, data),
        "NOTIFICATION (code, subcode, data) for {garbage:02x?}"
    );
    assert!(
        read_msg(c).await.is_none(),
        "the speaker closes after its NOTIFICATION"
    );
}

// ---- the tests ---------------------------------------------------------------------------

#[test]
fn exabgp_malformed_attributes_follow_rfc7606_and_garbage_gets_header_errors() {
    let test = "exabgp_malformed_attributes_follow_rfc7606_and_garbage_gets_header_errors";
    if !require_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = exabgp_lab(dir.path());
    let exa_ip: IpAddr = EXA_ADDR.parse().unwrap();
    in_node(&lab, "h1", || {
        runtime().block_on(async {
            let s = Speaker::start(speaker_cfg()).await.unwrap();
            s.add_neighbor(passive(EXA_ADDR, EXA_AS)).unwrap();
            wait_status(&s, exa_ip, "Established", |p| p.state == "Established").await;

            // ---- RFC 7606 over a live session ----
            // A normal route is learned, next hop ExaBGP.
            announce(&lab, "10.3.1.0/24", "community [ 65003:1 ]");
            let r = wait_routes(&s, "10.3.1.0/24 learned", |r| {
                r.contains_key(&net("10.3.1.0/24"))
            })
            .await;
            assert_eq!(r[&net("10.3.1.0/24")], vec![exa_ip]);
            let base = status(&s, exa_ip);

            // COMMUNITIES (optional transitive) of 3 octets: not a multiple of 4, so
            // treat-as-withdraw (RFC 7606 §7.8): the route goes, the session stays.
            announce(&lab, "10.3.1.0/24", "attribute [ 0x08 0xc0 0x000102 ]");
            wait_routes(&s, "malformed COMMUNITIES withdraws 10.3.1.0/24", |r| {
                !r.contains_key(&net("10.3.1.0/24"))
            })
            .await;
            assert!(s.adj_rib_in(exa_ip).await.unwrap().is_empty());

            // Learned again from a good UPDATE, then an ORIGIN of 5 (undefined):
            // treat-as-withdraw (RFC 7606 §7.1).
            announce(&lab, "10.3.1.0/24", "");
            wait_routes(&s, "10.3.1.0/24 learned again", |r| {
                r.contains_key(&net("10.3.1.0/24"))
            })
            .await;
            announce(&lab, "10.3.1.0/24", "attribute [ 0x01 0x40 0x05 ]");
            wait_routes(&s, "bad ORIGIN withdraws 10.3.1.0/24", |r| {
                !r.contains_key(&net("10.3.1.0/24"))
            })
            .await;

            // A malformed AGGREGATOR (5 octets; 8 with 4-octet AS) is discarded
            // (RFC 7606 §7.7) and so is an ATOMIC_AGGREGATE with a value (§7.6): the
            // routes they come with are learned all the same.
            announce(&lab, "10.3.2.0/24", "attribute [ 0x07 0xc0 0x0000fde801 ]");
            announce(&lab, "10.3.3.0/24", "attribute [ 0x06 0x40 0x01 ]");
            let r = wait_routes(&s, "routes with discarded attributes kept", |r| {
                r.contains_key(&net("10.3.2.0/24")) && r.contains_key(&net("10.3.3.0/24"))
            })
            .await;
            assert_eq!(r[&net("10.3.2.0/24")], vec![exa_ip]);
            // ... and a later discard on a route we hold keeps it too. The UPDATE is
            // seen to arrive; a marker route sent after it proves the table has dealt
            // with it (the table takes a peer's UPDATEs in order).
            let seen = status(&s, exa_ip).updates_in;
            announce(&lab, "10.3.2.0/24", "attribute [ 0x07 0xc0 0x00 ]");
            wait_updates(&s, exa_ip, seen + 1).await;
            announce(&lab, "10.3.9.0/24", "");
            let r = wait_routes(&s, "marker after the discard", |r| {
                r.contains_key(&net("10.3.9.0/24"))
            })
            .await;
            assert!(
                r.contains_key(&net("10.3.2.0/24")),
                "attribute-discard must not withdraw: {r:?}"
            );

            // Through all of it the session never left Established.
            let now = status(&s, exa_ip);
            assert_eq!(now.state, "Established", "{now:?}");
            assert_eq!(
                (now.flaps, now.transitions, now.established_at),
                (base.flaps, base.transitions, base.established_at),
                "the ExaBGP session was reset: {now:?}"
            );
            let summary = lab
                .exec_ok("exa", "exabgpcli 'show neighbor summary'")
                .unwrap();
            assert!(summary.contains("established"), "{summary}");

            // ---- garbage after OPEN, from raw clients on the host's loopback ----
            let raw: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
            for a in &raw {
                s.add_neighbor(passive(&a.to_string(), u32::from(RAW_AS)))
                    .unwrap();
            }
            let keepalive = message(4, &[]);

            // Bad marker (the last octet of the marker is 0): Connection Not
            // Synchronized, no data.
            let mut c = established_raw(&s, raw[0]).await;
            let mut bad_marker = keepalive.clone();
            bad_marker[15] = 0;
            expect_header_error(&mut c, &bad_marker, 1, &[]).await;

            // Length 5000 (above 4096, extended messages not negotiated): Bad Message
            // Length with the length field as data.
            let mut c = established_raw(&s, raw[1]).await;
            let mut too_long = keepalive.clone();
            too_long[16..18].copy_from_slice(&5000u16.to_be_bytes());
            expect_header_error(&mut c, &too_long, 2, &5000u16.to_be_bytes()).await;

            // A KEEPALIVE of 20 octets (it must be exactly 19): Bad Message Length.
            let mut c = established_raw(&s, raw[2]).await;
            expect_header_error(&mut c, &message(4, &[0]), 2, &20u16.to_be_bytes()).await;

            // Message type 9 (unassigned): Bad Message Type with the type as data.
            let mut c = established_raw(&s, raw[3]).await;
            expect_header_error(&mut c, &message(9, &[]), 3, &[9]).await;

            // The same in OpenConfirm: our OPEN is in, our KEEPALIVE is not.
            let mut c = connect_raw(raw[4]).await;
            expect_header_error(&mut c, &message(9, &[1, 2, 3]), 3, &[9]).await;

            // Every broken session says why, and returns to waiting for its peer.
            for a in &raw {
                wait_status(&s, (*a).into(), "back to Active after the error", |p| {
                    p.state == "Active" && p.last_error.as_deref().is_some_and(|e| !e.is_empty())
                })
                .await;
            }
            // A well-behaved peer at a once-broken address gets a session again.
            let mut c = established_raw(&s, raw[0]).await;
            c.write_all(&keepalive).await.unwrap();

            // The ExaBGP session was never disturbed and still carries routes.
            announce(&lab, "10.3.4.0/24", "");
            wait_routes(&s, "a route after the garbage", |r| {
                r.contains_key(&net("10.3.4.0/24")) && r.contains_key(&net("10.3.2.0/24"))
            })
            .await;
            let now = status(&s, exa_ip);
            assert_eq!(
                (now.state.as_str(), now.flaps, now.transitions),
                ("Established", base.flaps, base.transitions),
                "the ExaBGP session was disturbed: {now:?}"
            );

            // ---- and an UPDATE error that does reset the session ----
            // An unrecognized well-known attribute (flags 0x40, type 99) is not one RFC
            // 7606 softens: NOTIFICATION UPDATE Message Error / Unrecognized Well-known
            // Attribute, with the attribute (flags, type, length, value) as data.
            announce(&lab, "10.3.7.0/24", "attribute [ 0x63 0x40 0x01 ]");
            wait_status(&s, exa_ip, "reset with NOTIFICATION 3/2", |p| {
                p.flaps > base.flaps
                    && p.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("code: 3, subcode: 2, data: [64, 99, 1, 1]"))
            })
            .await;
            // Once ExaBGP no longer sends that route, the session comes back and the
            // other routes are learned again.
            exa(
                &lab,
                &format!("neighbor {HOST_ADDR} withdraw route 10.3.7.0/24"),
            );
            wait_status(&s, exa_ip, "Established again", |p| {
                p.state == "Established"
            })
            .await;
            wait_routes(&s, "routes after the reset", |r| {
                r.contains_key(&net("10.3.4.0/24")) && !r.contains_key(&net("10.3.7.0/24"))
            })
            .await;
            s.shutdown().await;
        })
    });
}
