//! Sockets for BGP sessions: TCP MD5 signatures (RFC 2385), GTSM (RFC 5082), outgoing
//! TTL for direct and multihop eBGP, DSCP, and source address and port.
//!
//! Two entry points hand back tokio types:
//! - [`connect`] opens an outgoing session: every option, the MD5 key for the peer included,
//!   is set and the source address bound *before* the SYN goes out.
//! - [`Listener`] accepts incoming sessions. MD5 keys live on the listening socket, one per
//!   peer address or per prefix ([`Listener::set_md5`]; prefixes serve dynamic-neighbor
//!   ranges), and can be added and removed while it runs. The kernel copies the matching
//!   key to each accepted socket, so a connection from a peer whose key is wrong or missing
//!   never completes its handshake and is never seen by [`Listener::accept`].
//!
//! GTSM on incoming sessions has two layers. [`Listener::set_min_ttl`] makes the kernel drop
//! SYNs (and everything else) below a TTL for *every* peer on that listener; use it when all
//! the peers that may reach this listener run GTSM. Per peer, call [`configure_accepted`] on
//! the accepted stream right after [`Listener::accept`] and before reading: from then on the
//! kernel drops segments below the peer's minimum TTL. Segments that arrived between the
//! handshake and that call were checked only against the listener's minimum, because Linux
//! offers no way to read the TTL of an accepted connection's earlier packets.
//!
//! Linux only: `TCP_MD5SIG`, `TCP_MD5SIG_EXT`, `IP_MINTTL` and `IPV6_MINHOPCOUNT` are Linux
//! socket options.
//!
//! Not supported yet: MD5 keys scoped to an interface (`TCP_MD5SIG_FLAG_IFINDEX`, needed
//! to tell apart link-local peers with the same address on different links), TCP-AO
//! (RFC 5925), and binding sessions to a VRF device.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use ipnet::IpNet;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The BGP port (RFC 4271).
pub const BGP_PORT: u16 = 179;

/// DSCP class selector 6 (network control), the usual marking for BGP.
pub const DSCP_CS6: u8 = 48;

/// The highest DSCP value (6 bits).
pub const DSCP_MAX: u8 = 63;

/// The TTL a GTSM speaker sends with, and the ceiling of every TTL (RFC 5082).
pub const GTSM_TTL: u8 = 255;

/// The longest TCP MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Default bound on an outgoing connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default backlog of a [`Listener`].
pub const DEFAULT_BACKLOG: i32 = 128;

// ---------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------

/// A TCP MD5 password. Its `Debug` output is `Md5Password(***)` and it has no `Display`,
/// so it cannot end up in a log line by accident; [`Md5Password::expose_secret`] is the
/// only way to read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Md5Password(String);

/// Why a string is not a usable TCP MD5 password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordError {
    #[error("the TCP MD5 password is empty")]
    Empty,
    #[error("the TCP MD5 password is {len} bytes long; Linux accepts at most {MD5_MAX_KEY_LEN}")]
    TooLong { len: usize },
}

impl Md5Password {
    /// A password of 1 to [`MD5_MAX_KEY_LEN`] bytes.
    pub fn new(password: impl Into<String>) -> Result<Self, PasswordError> {
        let password = password.into();
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        if password.len() > MD5_MAX_KEY_LEN {
            return Err(PasswordError::TooLong {
                len: password.len(),
            });
        }
        Ok(Md5Password(password))
    }

    /// The password itself, for the socket option and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Md5Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Password(***)")
    }
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// What a session does with the IP TTL (IPv6 hop limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlMode {
    /// The kernel's default TTL, no check on receive (iBGP).
    #[default]
    Default,
    /// Send with this TTL, no check on receive: 1 for a directly connected eBGP peer, the
    /// hop count for eBGP multihop. Must be at least 1.
    Fixed(u8),
    /// GTSM (RFC 5082): send with TTL 255 and drop everything that arrives with a TTL below
    /// `255 - hops`. `hops` counts the routers between the speakers: 0 accepts only TTL 255
    /// (a directly connected peer), 1 also accepts 254, and so on, up to 254.
    Gtsm { hops: u8 },
}

impl TtlMode {
    /// The TTL to send with, when it is not the kernel's default.
    pub fn send_ttl(self) -> Option<u8> {
        match self {
            TtlMode::Default => None,
            TtlMode::Fixed(ttl) => Some(ttl),
            TtlMode::Gtsm { .. } => Some(GTSM_TTL),
        }
    }

    /// The lowest TTL accepted on receive, when there is a floor.
    pub fn min_ttl(self) -> Option<u8> {
        match self {
            TtlMode::Gtsm { hops } => Some(GTSM_TTL.saturating_sub(hops).max(1)),
            _ => None,
        }
    }
}

/// Socket options of one BGP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOpts {
    /// TCP MD5 signature password shared with the peer (RFC 2385).
    pub md5_password: Option<Md5Password>,
    /// TTL sent and TTL floor (GTSM).
    pub ttl: TtlMode,
    /// Source address of outgoing connections; must be of the peer's family.
    pub local_addr: Option<IpAddr>,
    /// Source port of outgoing connections; `None` lets the kernel choose.
    pub local_port: Option<u16>,
    /// Bound on an outgoing connection attempt.
    pub connect_timeout: Duration,
    /// `TCP_NODELAY`: BGP messages are written whole, so Nagle only delays them.
    pub tcp_nodelay: bool,
    /// DSCP of the session's packets (0 to 63); [`DSCP_CS6`] by default.
    pub dscp: u8,
}

impl Default for TransportOpts {
    fn default() -> Self {
        TransportOpts {
            md5_password: None,
            ttl: TtlMode::Default,
            local_addr: None,
            local_port: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tcp_nodelay: true,
            dscp: DSCP_CS6,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A socket operation that failed, naming the peer (or listener) and the option.
#[derive(Debug, Error)]
pub enum TransportError {
    /// A socket option could not be set.
    #[error("{action} for {target}: {source}")]
    SockOpt {
        /// What was being done, e.g. "setting TCP MD5 key".
        action: &'static str,
        /// The peer, prefix or listener it was done for.
        target: String,
        source: io::Error,
    },
    /// An option value is out of range or inconsistent.
    #[error("invalid transport option for {target}: {reason}")]
    InvalidOption { target: String, reason: String },
    #[error("creating a TCP socket for {target}: {source}")]
    Socket { target: String, source: io::Error },
    #[error("binding source address {local} for {peer}: {source}")]
    Bind {
        local: SocketAddr,
        peer: SocketAddr,
        source: io::Error,
    },
    #[error("connecting to {peer}: {source}")]
    Connect { peer: SocketAddr, source: io::Error },
    #[error("connecting to {peer}: no answer within {timeout:?}")]
    ConnectTimeout { peer: SocketAddr, timeout: Duration },
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("accepting a connection on {addr}: {source}")]
    Accept { addr: SocketAddr, source: io::Error },
}

impl TransportError {
    fn sockopt(action: &'static str, target: impl fmt::Display, source: io::Error) -> Self {
        TransportError::SockOpt {
            action,
            target: target.to_string(),
            source,
        }
    }
}

type Result<T, E = TransportError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// Outgoing sessions
// ---------------------------------------------------------------------------------------

/// Opens a TCP connection to a BGP peer with every option of `opts` in place before the
/// SYN is sent: MD5 key for the peer, TTL and TTL floor, DSCP, `TCP_NODELAY`, and the
/// source address and port.
///
/// Fails with [`TransportError::ConnectTimeout`] when the peer does not complete the
/// handshake within `opts.connect_timeout` (which is also what a wrong MD5 password or a
/// GTSM mismatch looks like: the segments are dropped silently).
pub async fn connect(peer: SocketAddr, opts: &TransportOpts) -> Result<TcpStream> {
    check_opts(peer, opts)?;
    let socket = Socket::new(Domain::for_address(peer), Type::STREAM, Some(Protocol::TCP))
        .map_err(|source| TransportError::Socket {
            target: peer.to_string(),
            source,
        })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| TransportError::sockopt("setting O_NONBLOCK", peer, e))?;
    let fd = socket.as_fd();
    if let Some(password) = &opts.md5_password {
        set_md5_key(fd, IpNet::from(peer.ip()), Some(password))
            .map_err(|e| TransportError::sockopt("setting TCP MD5 key", peer, e))?;
    }
    apply_session_opts(fd, peer, opts)?;

    if opts.local_addr.is_some() || opts.local_port.is_some() {
        let ip = opts.local_addr.unwrap_or(match peer {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        match opts.local_port {
            // A fixed port may still be in TIME_WAIT from the previous session.
            Some(_) => socket
                .set_reuse_address(true)
                .map_err(|e| TransportError::sockopt("setting SO_REUSEADDR", peer, e))?,
            // Let connect() pick the port, so the 4-tuple rather than the address alone
            // must be unique (avoids exhausting ports on a busy source address).
            None => set_int(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)
                .map_err(|e| TransportError::sockopt("setting IP_BIND_ADDRESS_NO_PORT", peer, e))?,
        }
        let local = SocketAddr::new(ip, opts.local_port.unwrap_or(0));
        socket
            .bind(&local.into())
            .map_err(|source| TransportError::Bind {
                local,
                peer,
                source,
            })?;
    }

    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    match tokio::time::timeout(opts.connect_timeout, socket.connect(peer)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(TransportError::Connect { peer, source }),
        Err(_) => Err(TransportError::ConnectTimeout {
            peer,
            timeout: opts.connect_timeout,
        }),
    }
}

/// Applies a peer's TTL mode (send TTL and GTSM floor), DSCP and `TCP_NODELAY` to a
/// stream accepted by a [`Listener`]. Call it right after [`Listener::accept`], before
/// reading; see the module docs for what GTSM covers before this call. The MD5 key, source
/// address and timeout of `opts` do not apply here: accepted sockets take their MD5 key
/// from the listener.
pub fn configure_accepted(
    stream: &TcpStream,
    peer: SocketAddr,
    opts: &TransportOpts,
) -> Result<()> {
    check_opts(peer, opts)?;
    apply_session_opts(stream.as_fd(), peer, opts)
}

fn check_opts(peer: SocketAddr, opts: &TransportOpts) -> Result<()> {
    let invalid = |reason: String| TransportError::InvalidOption {
        target: peer.to_string(),
        reason,
    };
    if opts.dscp > DSCP_MAX {
        return Err(invalid(format!("DSCP {} is above {DSCP_MAX}", opts.dscp)));
    }
    if opts.ttl == TtlMode::Fixed(0) {
        return Err(invalid("a TTL of 0 sends nothing; use at least 1".into()));
    }
    if let TtlMode::Gtsm { hops } = opts.ttl
        && hops == GTSM_TTL
    {
        return Err(invalid(format!(
            "GTSM hops {hops} leaves no TTL floor; use at most 254"
        )));
    }
    if let Some(local) = opts.local_addr
        && local.is_ipv4() != peer.is_ipv4()
    {
        return Err(invalid(format!(
            "source address {local} is not of the peer's address family"
        )));
    }
    Ok(())
}

/// TTL, TTL floor, DSCP and nodelay: the options both connected and accepted sockets take.
fn apply_session_opts(fd: BorrowedFd<'_>, peer: SocketAddr, opts: &TransportOpts) -> Result<()> {
    let sock = SockRef::from(&fd);
    let v4 = peer.is_ipv4();
    if let Some(ttl) = opts.ttl.send_ttl() {
        let res = if v4 {
            sock.set_ttl_v4(ttl.into())
        } else {
            sock.set_unicast_hops_v6(ttl.into())
        };
        res.map_err(|e| TransportError::sockopt("setting the outgoing TTL", peer, e))?;
    }
    // Always written, so that a mode change on a reused option set clears the floor.
    let floor = opts.ttl.min_ttl().unwrap_or(0);
    set_min_ttl(fd, v4, floor)
        .map_err(|e| TransportError::sockopt("setting the GTSM minimum TTL", peer, e))?;
    let tos = u32::from(opts.dscp) << 2;
    let res = if v4 {
        sock.set_tos_v4(tos)
    } else {
        sock.set_tclass_v6(tos)
    };
    res.map_err(|e| TransportError::sockopt("setting the DSCP", peer, e))?;
    sock.set_tcp_nodelay(opts.tcp_nodelay)
        .map_err(|e| TransportError::sockopt("setting TCP_NODELAY", peer, e))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Incoming sessions
// ---------------------------------------------------------------------------------------

/// A listening socket for incoming BGP sessions on one address (IPv6 listeners are
/// v6-only, so `0.0.0.0` and `::` can listen on the same port side by side).
///
/// Every method takes `&self`, so the listener can sit in an `Arc` while one task accepts
/// and another adds or removes MD5 keys as neighbors come and go.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    local: SocketAddr,
}

impl Listener {
    /// Listens on `addr:port` with `SO_REUSEADDR`, DSCP [`DSCP_CS6`] and TTL 255. The
    /// SYN-ACK goes out with the listener's TTL, and a GTSM peer drops a SYN-ACK below its
    /// floor, so the listener sends with 255 for everyone (a higher TTL never hurts a
    /// non-GTSM peer); [`configure_accepted`] then sets each session's own TTL. Accepted
    /// sockets inherit all of these. Port 0 picks a free port; see
    /// [`Listener::local_addr`].
    pub fn bind(addr: IpAddr, port: u16) -> Result<Listener> {
        Listener::bind_addr(SocketAddr::new(addr, port))
    }

    /// [`Listener::bind`] with a full socket address, e.g. an IPv6 link-local address
    /// with its scope id.
    pub fn bind_addr(local: SocketAddr) -> Result<Listener> {
        let addr = local.ip();
        let listen_err = |source| TransportError::Listen {
            addr: local,
            source,
        };
        let socket = Socket::new(
            Domain::for_address(local),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(|source| TransportError::Socket {
            target: format!("listener {local}"),
            source,
        })?;
        let target = format!("listener {local}");
        socket
            .set_nonblocking(true)
            .map_err(|e| TransportError::sockopt("setting O_NONBLOCK", &target, e))?;
        socket
            .set_reuse_address(true)
            .map_err(|e| TransportError::sockopt("setting SO_REUSEADDR", &target, e))?;
        let tos = u32::from(DSCP_CS6) << 2;
        let ttl = u32::from(GTSM_TTL);
        if addr.is_ipv6() {
            socket
                .set_only_v6(true)
                .map_err(|e| TransportError::sockopt("setting IPV6_V6ONLY", &target, e))?;
            socket
                .set_tclass_v6(tos)
                .map_err(|e| TransportError::sockopt("setting the DSCP", &target, e))?;
            socket
                .set_unicast_hops_v6(ttl)
                .map_err(|e| TransportError::sockopt("setting the outgoing TTL", &target, e))?;
        } else {
            socket
                .set_tos_v4(tos)
                .map_err(|e| TransportError::sockopt("setting the DSCP", &target, e))?;
            socket
                .set_ttl_v4(ttl)
                .map_err(|e| TransportError::sockopt("setting the outgoing TTL", &target, e))?;
        }
        socket.bind(&local.into()).map_err(listen_err)?;
        socket.listen(DEFAULT_BACKLOG).map_err(listen_err)?;
        let inner =
            TcpListener::from_std(std::net::TcpListener::from(socket)).map_err(listen_err)?;
        let local = inner.local_addr().map_err(listen_err)?;
        Ok(Listener { inner, local })
    }

    /// The address and port it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Adds (`Some`) or removes (`None`) the MD5 key for a peer address or, for
    /// dynamic-neighbor ranges, a prefix (`TCP_MD5SIG_EXT`). A longer prefix wins over a
    /// shorter one. Setting a key again replaces it; removing a key that is not there is
    /// not an error. Sessions already accepted keep the key they were accepted with.
    pub fn set_md5(&self, peer: impl Into<IpNet>, password: Option<&Md5Password>) -> Result<()> {
        let peer: IpNet = peer.into();
        let action = if password.is_some() {
            "setting TCP MD5 key"
        } else {
            "removing TCP MD5 key"
        };
        if peer.addr().is_ipv4() != self.local.is_ipv4() {
            return Err(TransportError::InvalidOption {
                target: peer.to_string(),
                reason: format!(
                    "{action}: listener {} is of the other address family",
                    self.local
                ),
            });
        }
        match set_md5_key(self.inner.as_fd(), peer, password) {
            Err(e) if password.is_none() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            res => res.map_err(|e| TransportError::sockopt(action, peer_label(peer), e)),
        }
    }

    /// Sets (`Some`) or clears (`None`) a TTL floor for every connection to this listener,
    /// enforced by the kernel from the SYN on; accepted sockets inherit it.
    pub fn set_min_ttl(&self, min_ttl: Option<u8>) -> Result<()> {
        set_min_ttl(
            self.inner.as_fd(),
            self.local.is_ipv4(),
            min_ttl.unwrap_or(0),
        )
        .map_err(|e| {
            TransportError::sockopt(
                "setting the minimum TTL",
                format!("listener {}", self.local),
                e,
            )
        })
    }

    /// Waits for the next connection whose handshake completed (so its MD5 signature, if
    /// any, matched) and returns it with the peer's address. Errors such as `EMFILE` or
    /// `ECONNABORTED` are returned as they are; the listener stays usable.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        self.inner
            .accept()
            .await
            .map_err(|source| TransportError::Accept {
                addr: self.local,
                source,
            })
    }
}

/// A host prefix is shown as its address, a shorter prefix as a prefix.
fn peer_label(peer: IpNet) -> String {
    if peer.prefix_len() == peer.max_prefix_len() {
        peer.addr().to_string()
    } else {
        peer.trunc().to_string()
    }
}

// ---------------------------------------------------------------------------------------
// Raw socket options
// ---------------------------------------------------------------------------------------

fn set_min_ttl(fd: BorrowedFd<'_>, v4: bool, min_ttl: u8) -> io::Result<()> {
    if v4 {
        set_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, min_ttl.into())
    } else {
        set_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            min_ttl.into(),
        )
    }
}

/// Installs or removes an MD5 key for `prefix` on a socket of the prefix's family.
fn set_md5_key(
    fd: BorrowedFd<'_>,
    prefix: IpNet,
    password: Option<&Md5Password>,
) -> io::Result<()> {
    let key = password
        .map(|p| p.expose_secret().as_bytes())
        .unwrap_or_default();
    let (name, buf) = encode_md5sig(prefix, key)?;
    set_bytes(fd, libc::IPPROTO_TCP, name, &buf)
}

/// Size of Linux's `struct tcp_md5sig`: `sockaddr_storage` (128 bytes), flags (u8),
/// prefix length (u8), key length (u16), ifindex (i32), key (80 bytes).
const TCP_MD5SIG_LEN: usize = 128 + 1 + 1 + 2 + 4 + MD5_MAX_KEY_LEN;
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;
const _: () = assert!(size_of::<libc::sockaddr_storage>() == 128);

/// Encodes `struct tcp_md5sig` for `prefix` and `key` (an empty key removes), and picks
/// `TCP_MD5SIG` for a host address or `TCP_MD5SIG_EXT` with a prefix length otherwise.
fn encode_md5sig(prefix: IpNet, key: &[u8]) -> io::Result<(libc::c_int, [u8; TCP_MD5SIG_LEN])> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "MD5 key longer than 80 bytes",
        ));
    }
    let mut buf = [0u8; TCP_MD5SIG_LEN];
    match prefix.trunc().addr() {
        IpAddr::V4(a) => {
            // struct sockaddr_in: family, port (0), address.
            buf[0..2].copy_from_slice(&(libc::AF_INET as libc::sa_family_t).to_ne_bytes());
            buf[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            // struct sockaddr_in6: family, port (0), flowinfo (0), address, scope id (0).
            buf[0..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
            buf[8..24].copy_from_slice(&a.octets());
        }
    }
    let name = if prefix.prefix_len() == prefix.max_prefix_len() {
        libc::TCP_MD5SIG
    } else {
        buf[128] = TCP_MD5SIG_FLAG_PREFIX;
        buf[129] = prefix.prefix_len();
        libc::TCP_MD5SIG_EXT
    };
    // The length check above makes this conversion lossless.
    buf[130..132].copy_from_slice(&(key.len() as u16).to_ne_bytes());
    buf[136..136 + key.len()].copy_from_slice(key);
    Ok((name, buf))
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_bytes(fd, level, name, &value.to_ne_bytes())
}

/// `setsockopt(2)` with an option value given as bytes.
#[allow(unsafe_code)]
fn set_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socket option value too long"))?;
    // SAFETY: `fd` is an open descriptor for the whole call (it is borrowed), and
    // `value.as_ptr()` points to `len` initialised bytes that stay alive and unchanged
    // during the call; the kernel only reads (copies in) that many bytes and has no
    // alignment requirement on them.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_hides_the_value() {
        let p = Md5Password::new("s3cret").unwrap();
        assert_eq!(format!("{p:?}"), "Md5Password(***)");
        let opts = TransportOpts {
            md5_password: Some(p),
            ..Default::default()
        };
        assert!(!format!("{opts:?}").contains("s3cret"));
    }

    #[test]
    fn password_length_limits() {
        assert_eq!(Md5Password::new(""), Err(PasswordError::Empty));
        assert!(Md5Password::new("x".repeat(80)).is_ok());
        assert_eq!(
            Md5Password::new("x".repeat(81)),
            Err(PasswordError::TooLong { len: 81 })
        );
    }

    #[test]
    fn ttl_modes() {
        assert_eq!(TtlMode::Default.send_ttl(), None);
        assert_eq!(TtlMode::Default.min_ttl(), None);
        assert_eq!(TtlMode::Fixed(1).send_ttl(), Some(1));
        assert_eq!(TtlMode::Fixed(3).min_ttl(), None);
        assert_eq!(TtlMode::Gtsm { hops: 0 }.send_ttl(), Some(255));
        assert_eq!(TtlMode::Gtsm { hops: 0 }.min_ttl(), Some(255));
        assert_eq!(TtlMode::Gtsm { hops: 1 }.min_ttl(), Some(254));
        assert_eq!(TtlMode::Gtsm { hops: 254 }.min_ttl(), Some(1));
        assert_eq!(TtlMode::Gtsm { hops: 255 }.min_ttl(), Some(1));
    }

    #[test]
    fn md5sig_host_v4() {
        let (name, buf) = encode_md5sig("10.0.0.1/32".parse().unwrap(), b"abc").unwrap();
        assert_eq!(name, libc::TCP_MD5SIG);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), libc::AF_INET as u16);
        assert_eq!(&buf[2..4], &[0, 0]);
        assert_eq!(&buf[4..8], &[10, 0, 0, 1]);
        assert_eq!(buf[128], 0);
        assert_eq!(buf[129], 0);
        assert_eq!(u16::from_ne_bytes([buf[130], buf[131]]), 3);
        assert_eq!(&buf[136..139], b"abc");
        assert!(buf[139..].iter().all(|&b| b == 0));
    }

    #[test]
    fn md5sig_prefix_v6_is_truncated() {
        let (name, buf) = encode_md5sig("2001:db8::5/64".parse().unwrap(), b"k").unwrap();
        assert_eq!(name, libc::TCP_MD5SIG_EXT);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), libc::AF_INET6 as u16);
        let want: Ipv6Addr = "2001:db8::".parse().unwrap();
        assert_eq!(&buf[8..24], &want.octets());
        assert_eq!(buf[128], TCP_MD5SIG_FLAG_PREFIX);
        assert_eq!(buf[129], 64);
        assert_eq!(u16::from_ne_bytes([buf[130], buf[131]]), 1);
    }

    #[test]
    fn md5sig_removal_has_zero_key_length() {
        let (_, buf) = encode_md5sig("10.1.1.0/24".parse().unwrap(), b"").unwrap();
        assert_eq!(u16::from_ne_bytes([buf[130], buf[131]]), 0);
        assert!(encode_md5sig("10.1.1.0/24".parse().unwrap(), &[0; 81]).is_err());
    }

    #[test]
    fn option_checks_name_the_peer() {
        let peer: SocketAddr = "10.0.0.1:179".parse().unwrap();
        let bad = |opts: TransportOpts| check_opts(peer, &opts).unwrap_err().to_string();
        let e = bad(TransportOpts {
            dscp: 64,
            ..Default::default()
        });
        assert!(e.contains("10.0.0.1:179") && e.contains("DSCP 64"), "{e}");
        let e = bad(TransportOpts {
            ttl: TtlMode::Fixed(0),
            ..Default::default()
        });
        assert!(e.contains("TTL of 0"), "{e}");
        let e = bad(TransportOpts {
            ttl: TtlMode::Gtsm { hops: 255 },
            ..Default::default()
        });
        assert!(e.contains("GTSM hops 255"), "{e}");
        let e = bad(TransportOpts {
            local_addr: Some("::1".parse().unwrap()),
            ..Default::default()
        });
        assert!(e.contains("source address ::1"), "{e}");
        assert!(check_opts(peer, &TransportOpts::default()).is_ok());
    }

    #[test]
    fn peer_labels() {
        assert_eq!(peer_label("10.0.0.1/32".parse().unwrap()), "10.0.0.1");
        assert_eq!(peer_label("10.1.1.7/24".parse().unwrap()), "10.1.1.0/24");
    }
}
