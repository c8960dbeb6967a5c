//! netmaster's HTTP/1.1 serving loop, in place of `axum::serve`, for the limits a server
//! exposed to untrusted peers needs and `axum::serve` does not set: hyper runs without a
//! timer there, so its header-read timeout is off and a peer that sends its request
//! headers slowly holds a connection and a task for as long as it likes.
//!
//! - a request's headers must arrive within [`Limits::header_read`] of the connection
//!   waiting for them, so an idle kept-alive connection is closed after the same time
//!   (100 s: longer than HTTP clients keep idle connections in their pools — reqwest and
//!   Go's net/http both drop them after 90 s — so a client never sends a request on a
//!   connection the server is closing at that moment; it still bounds what a slow peer
//!   holds);
//! - at most [`Limits::max_connections`] connections are served at once: above that the
//!   loop stops accepting (the kernel's backlog holds the rest) until one ends;
//! - each request carries the peer's address (`ConnectInfo<Peer>`, for the loopback rule
//!   of [`crate::api::auth`]);
//! - on shutdown every connection is told to finish its request and close; the feed's
//!   streams never finish, so [`crate::server::Running::stop`] drops what is left, and with
//!   the loop every connection task goes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::api::auth::Peer;

/// What one peer, or all of them, may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a peer may take to send a request's headers (and a kept-alive connection
    /// may stay idle).
    pub header_read: Duration,
    /// How many connections are served at once.
    pub max_connections: usize,
}

impl Limits {
    /// netmaster's limits.
    pub const DEFAULT: Limits = Limits {
        header_read: Duration::from_secs(100),
        max_connections: 4096,
    };
}

/// Serves `app` on the connections `listener` hands out until `stopped` completes.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    stopped: impl Future<Output = ()>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(stopped);
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut stopped => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (io, peer) = tokio::select! {
            () = &mut stopped => break,
            c = listener.accept() => c,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(Peer(peer)));
            app.clone().oneshot(req.map(Body::new))
        });
        let mut closing = closing_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    let _ = closing.send(true);
    while conns.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads until the server closes the connection; what it sent.
    async fn until_closed(c: &mut TcpStream) -> String {
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all).await;
        String::from_utf8_lossy(&all).into_owned()
    }

    /// A peer that sends its headers slowly is cut off, and while it holds the only
    /// connection slot a well-behaved request waits; it is answered once the slow peer
    /// is gone.
    #[tokio::test]
    async fn slow_headers_are_cut_off_and_connections_are_bounded() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let limits = Limits {
            header_read: Duration::from_millis(500),
            max_connections: 1,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, limits, async {
            let _ = stopped.await;
        }));

        // The slow peer: half a request line, then nothing.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // The good client connects while the slot is taken.
        let mut good = TcpStream::connect(addr).await.unwrap();
        good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 1];
        // Biased, the slow peer first: the good client is accepted only after the slow
        // peer's connection is closed, so once both are ready the close comes first.
        let answered = tokio::select! {
            biased;
            gone = until_closed(&mut slow) => { assert!(gone.is_empty() || gone.starts_with("HTTP/1.1 408"), "{gone:?}"); None }
            n = good.read(&mut first) => Some(n.unwrap()),
        };
        assert_eq!(
            answered, None,
            "the good client was answered while the slow peer held the only slot"
        );
        // The slow peer is gone: the good client's request is served now.
        let rest = until_closed(&mut good).await;
        assert!(rest.contains("hello"), "{rest:?}");

        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
