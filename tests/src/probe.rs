//! TCP probes inside network namespaces, for the policy tests: servers that greet every
//! connection with one byte and then echo, and clients that tell a connection that was
//! made (the greeting arrived) from one whose SYN went unanswered (a drop: it times out)
//! and from one that was refused or failed otherwise (a broken setup, never a policy
//! deny).
//!
//! The sockets are made by a thread that entered the namespace (`setns` changes only the
//! calling thread's network namespace); a socket stays in the namespace it was made in,
//! so it is used from any thread afterwards.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a client waits for a connection and then for the greeting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The byte servers greet with.
pub const GREETING: u8 = b'!';

/// Runs `f` on a thread inside network namespace `netns` (a file such as
/// `/run/netns/<name>` or `/proc/<pid>/ns/net`) and returns what it returns.
pub fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = std::fs::File::open(netns)
        .unwrap_or_else(|e| panic!("opening network namespace {}: {e}", netns.display()));
    let shown = netns.display().to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns into {shown}: {e}"));
        f()
    })
    .join()
    .expect("the thread in the namespace panicked")
}

/// What became of a connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected, and the server's greeting arrived.
    Connected,
    /// No answer to the SYN within [`CONNECT_TIMEOUT`]: dropped on the way.
    TimedOut,
    /// Refused (a RST: nothing listens, or a reject).
    Refused,
    /// Anything else (no route, connected but no greeting, ...): never a policy drop.
    Other(String),
}

/// Connects from namespace `netns` to `to` and waits for the greeting.
pub fn connect(netns: &Path, to: SocketAddr) -> Outcome {
    match open(netns, to) {
        Ok(_) => Outcome::Connected,
        Err(o) => o,
    }
}

/// A connection made by [`open`], kept open to exchange data later.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub to: SocketAddr,
}

impl Conn {
    /// Sends a few bytes and reads the echo back (each within [`CONNECT_TIMEOUT`]).
    pub fn exchange(&mut self, tag: &str) -> Result<(), String> {
        let msg = format!("{tag}\n");
        self.stream
            .write_all(msg.as_bytes())
            .map_err(|e| format!("write to {}: {e}", self.to))?;
        let mut buf = vec![0u8; msg.len()];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| format!("echo from {}: {e}", self.to))?;
        if buf != msg.as_bytes() {
            return Err(format!(
                "echo from {}: {:?}, sent {msg:?}",
                self.to,
                String::from_utf8_lossy(&buf)
            ));
        }
        Ok(())
    }
}

/// Opens a connection from namespace `netns` to `to` and reads the greeting.
pub fn open(netns: &Path, to: SocketAddr) -> Result<Conn, Outcome> {
    let stream = in_netns(netns, move || {
        TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
    });
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::TimedOut => return Err(Outcome::TimedOut),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(Outcome::Refused),
        Err(e) => return Err(Outcome::Other(format!("connect {to}: {e}"))),
    };
    let setup = stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CONNECT_TIMEOUT)));
    if let Err(e) = setup {
        return Err(Outcome::Other(format!("socket options: {e}")));
    }
    let mut b = [0u8; 1];
    match stream.read_exact(&mut b) {
        Ok(()) if b[0] == GREETING => Ok(Conn { stream, to }),
        Ok(()) => Err(Outcome::Other(format!("{to} greeted with {:?}", b[0]))),
        Err(e) => Err(Outcome::Other(format!(
            "connected to {to} but no greeting: {e}"
        ))),
    }
}

/// TCP servers on some ports of a namespace (every address), each connection greeted
/// with [`GREETING`] and then echoed. Stopped on drop.
#[derive(Debug)]
pub struct Servers {
    pub netns: PathBuf,
    pub ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Listens on `ports` inside `netns` (panics when a port cannot be bound).
    pub fn start(netns: &Path, ports: &[u16]) -> Servers {
        let list = ports.to_vec();
        let listeners = in_netns(netns, move || {
            list.iter()
                .map(|p| {
                    let l = TcpListener::bind(("0.0.0.0", *p))
                        .unwrap_or_else(|e| panic!("binding port {p}: {e}"));
                    l.set_nonblocking(true).expect("nonblocking listener");
                    l
                })
                .collect::<Vec<_>>()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let threads = listeners
            .into_iter()
            .map(|l| {
                let stop = stop.clone();
                std::thread::spawn(move || accept_loop(l, stop))
            })
            .collect();
        Servers {
            netns: netns.to_path_buf(),
            ports: ports.to_vec(),
            stop,
            threads,
        }
    }
}

fn accept_loop(l: TcpListener, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                let stop = stop.clone();
                std::thread::spawn(move || serve(s, stop));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn serve(mut s: TcpStream, stop: Arc<AtomicBool>) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(Duration::from_millis(200)))
            .is_err()
        || s.write_all(&[GREETING]).is_err()
    {
        return;
    }
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
