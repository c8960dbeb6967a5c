//! Helpers shared by the speaker's loopback tests (each test file uses some of them).
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp::wire::{self, Message, Open, SessionCtx};
use bgp_speaker::driver::{PeerConfig, Routes, Speaker};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound for things that must happen (generous, for a loaded 2-core machine).
pub const MUST: Duration = Duration::from_secs(30);

/// An active neighbor at `addr:port`, connecting from `local`.
pub fn peer(addr: IpAddr, port: u16, asn: u32, local: IpAddr) -> PeerConfig {
    let mut p = PeerConfig::new(addr, asn);
    p.port = port;
    p.transport.local_addr = Some(local);
    p
}

/// Waits until the speaker's published routes satisfy `f`.
pub async fn wait_routes(s: &Speaker, what: &str, f: impl Fn(&Routes) -> bool) -> Arc<Routes> {
    let mut rx = s.routes();
    tokio::time::timeout(MUST, async {
        loop {
            let r = rx.borrow_and_update().clone();
            if f(&r) {
                return r;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {what}: {:?}", s.routes().borrow()))
}

/// One end of a BGP connection, scripted by the test.
pub struct Wire {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub ctx: SessionCtx,
}

impl Wire {
    pub fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            buf: BytesMut::new(),
            ctx: SessionCtx::default(),
        }
    }

    pub async fn send(&mut self, m: Message) {
        let mut out = BytesMut::new();
        m.encode(&self.ctx, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next message, or `None` when the connection is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        tokio::time::timeout(MUST, async {
            loop {
                if let Some(len) = wire::frame_len(&self.buf, self.ctx.max_len).unwrap() {
                    let frame = self.buf.split_to(len);
                    return Some(Message::decode(&frame, &self.ctx).unwrap());
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("a message or the end of the connection in time")
    }

    pub async fn recv_open(&mut self) -> Open {
        match self.recv().await {
            Some(Message::Open(o)) => o,
            m => panic!("expected an OPEN, got {m:?}"),
        }
    }
}
