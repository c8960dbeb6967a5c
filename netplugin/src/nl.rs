//! A small synchronous rtnetlink connection: requests are serialised back to back and
//! sent as one batch (one `sendmsg`), and every message's acknowledgement is matched to
//! it by sequence number, so each request gets its own result. The socket belongs to the
//! network namespace it was opened in; [`Conn::open_in_netns`] opens one in another
//! namespace without moving the calling thread.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Requests per `sendmsg`: their acknowledgements must fit the receive buffer before the
/// next batch goes out.
pub const BATCH: usize = 1024;

/// Errors of the netlink connection itself (a refused request is a per-request
/// `std::io::Error` instead).
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("entering network namespace {path}: {source}")]
    Netns {
        path: String,
        source: nix::errno::Errno,
    },
    #[error("netlink: {0}")]
    Protocol(String),
}

/// An rtnetlink connection.
#[derive(Debug)]
pub struct Conn {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Runs `f` on a thread that has entered the network namespace at `path`; the caller's
/// namespace is untouched. Sockets opened inside stay in that namespace.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, NlError> + Send + 'static,
) -> Result<T, NlError> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let ns = File::open(&path)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
            NlError::Netns {
                path: path.display().to_string(),
                source,
            }
        })?;
        f()
    })
    .join()
    .map_err(|_| NlError::Protocol("namespace thread panicked".into()))?
}

impl Conn {
    /// Opens a connection in the caller's network namespace.
    pub fn open() -> Result<Conn, NlError> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        socket.set_rx_buf_sz(8 * 1024 * 1024)?;
        Ok(Conn {
            socket,
            seq: 0,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Opens a connection inside the network namespace at `path`.
    pub fn open_in_netns(path: &Path) -> Result<Conn, NlError> {
        in_netns(path, Conn::open)
    }

    fn push(&mut self, out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut out[start..]);
        self.seq
    }

    /// Receives messages, handing each to `each` until it returns true.
    fn receive(
        &mut self,
        mut each: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<bool, NlError>,
    ) -> Result<(), NlError> {
        loop {
            self.buf.clear();
            self.socket.recv(&mut self.buf, 0)?;
            let mut offset = 0;
            while offset < self.buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..])
                    .map_err(|e| NlError::Protocol(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(NlError::Protocol("zero-length netlink message".into()));
                }
                offset += len;
                if each(msg)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends requests (each `flags | NLM_F_REQUEST | NLM_F_ACK`) in batches and returns
    /// each one's result, in order.
    pub fn batch(
        &mut self,
        requests: Vec<(RouteNetlinkMessage, u16)>,
    ) -> Result<Vec<Result<(), std::io::Error>>, NlError> {
        let mut results: Vec<Result<(), std::io::Error>> = Vec::with_capacity(requests.len());
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let mut out = Vec::with_capacity(BATCH * 96);
            let mut pending: HashMap<u32, usize> = HashMap::with_capacity(BATCH);
            for (msg, flags) in requests.by_ref().take(BATCH) {
                let seq = self.push(&mut out, msg, flags | NLM_F_REQUEST | NLM_F_ACK);
                pending.insert(seq, results.len());
                results.push(Ok(()));
            }
            self.socket.send(&out, 0)?;
            self.receive(|msg| {
                if let NetlinkPayload::Error(e) = &msg.payload
                    && let Some(i) = pending.remove(&msg.header.sequence_number)
                    && let Some(code) = e.code
                {
                    results[i] = Err(std::io::Error::from_raw_os_error(-code.get()));
                }
                Ok(pending.is_empty())
            })?;
        }
        Ok(results)
    }

    /// Sends one request and waits for its acknowledgement.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        self.batch(vec![(msg, flags)])?
            .pop()
            .expect("one result")
            .map_err(NlError::Socket)
    }

    /// Sends a request that is answered with messages (a dump with `dump`, or a single
    /// get) and returns them.
    pub fn query(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let mut out = Vec::new();
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let seq = self.push(&mut out, msg, flags);
        self.socket.send(&out, 0)?;
        let mut replies = Vec::new();
        let mut failure = None;
        self.receive(|m| {
            if m.header.sequence_number != seq {
                return Ok(false);
            }
            match m.payload {
                NetlinkPayload::Done(_) => Ok(true),
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        failure = Some(std::io::Error::from_raw_os_error(-code.get()));
                    }
                    Ok(true)
                }
                NetlinkPayload::InnerMessage(inner) => {
                    replies.push(inner);
                    Ok(false)
                }
                _ => Ok(false),
            }
        })?;
        match failure {
            Some(e) => Err(NlError::Socket(e)),
            None => Ok(replies),
        }
    }
}
