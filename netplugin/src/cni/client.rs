//! The CNI plugin's side of netplugin's socket: a blocking, dependency-free HTTP/1.1
//! client over [`std::os::unix::net::UnixStream`] (one request per connection), so the
//! `contiv-cni` binary needs no async runtime.
//!
//! Failing to reach netplugin (no socket, connection refused, time-out) is an
//! [`ErrorKind::Unavailable`] error; the plugin turns that into "try again later" for
//! ADD and success for DEL.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::plugin::CniBackend;
use super::server::{PATH_ADD, PATH_CHECK, PATH_DEL, PATH_GC, PATH_STATUS};
use super::service::{
    AddEndpoint, CheckEndpoint, DelEndpoint, EndpointError, EndpointResult, ErrorKind, GcRequest,
};

/// The largest reply accepted (a result is a few hundred bytes).
const MAX_REPLY: u64 = 1 << 20;

/// A client for netplugin's CNI socket.
#[derive(Debug, Clone)]
pub struct UnixClient {
    socket: PathBuf,
    timeout: Duration,
}

/// A parsed HTTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl UnixClient {
    /// A client for the socket at `socket`, with a 60 s time-out per read and write.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: Duration::from_secs(60),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn unavailable(&self, what: &str, e: io::Error) -> EndpointError {
        EndpointError::unavailable(format!(
            "{what} netplugin at {}: {e}",
            self.socket.display()
        ))
    }

    /// Sends one `POST` and reads the reply.
    pub fn post(&self, path: &str, body: &[u8]) -> Result<HttpReply, EndpointError> {
        let mut s = UnixStream::connect(&self.socket)
            .map_err(|e| self.unavailable("cannot connect to", e))?;
        s.set_read_timeout(Some(self.timeout))
            .and_then(|()| s.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.unavailable("cannot set time-outs on the connection to", e))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: netplugin\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        // One write: a server that answers without reading the body (and closes) must
        // not turn a good answer into a broken pipe.
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        let sent = s.write_all(&req).and_then(|()| s.flush());
        let mut raw = Vec::new();
        let read = (&mut s).take(MAX_REPLY + 1).read_to_end(&mut raw);
        match (sent, read) {
            (_, Ok(_)) if !raw.is_empty() => {}
            (Err(e), _) => return Err(self.unavailable("cannot send the request to", e)),
            (Ok(()), Err(e)) => return Err(self.unavailable("no reply from", e)),
            (Ok(()), Ok(_)) => {
                return Err(self.unavailable(
                    "no reply from",
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"),
                ));
            }
        }
        if raw.len() as u64 > MAX_REPLY {
            return Err(EndpointError::internal(format!(
                "netplugin at {} sent a reply larger than {MAX_REPLY} bytes",
                self.socket.display()
            )));
        }
        parse_reply(&raw).map_err(|m| {
            EndpointError::internal(format!(
                "netplugin at {} sent a malformed HTTP reply: {m}",
                self.socket.display()
            ))
        })
    }

    fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, EndpointError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| EndpointError::internal(format!("cannot encode the request: {e}")))?;
        let reply = self.post(path, &body)?;
        if reply.status == 200 {
            return serde_json::from_slice(&reply.body).map_err(|e| {
                EndpointError::internal(format!("cannot decode netplugin's reply to {path}: {e}"))
            });
        }
        Err(match serde_json::from_slice::<EndpointError>(&reply.body) {
            Ok(e) => e,
            Err(_) => EndpointError::new(
                if reply.status == 503 {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Internal
                },
                format!(
                    "netplugin answered {path} with HTTP {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body).trim()
                ),
            ),
        })
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Empty {}

impl CniBackend for UnixClient {
    fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError> {
        self.call(PATH_ADD, &req)
    }
    fn del(&self, req: DelEndpoint) -> Result<(), EndpointError> {
        self.call::<_, Empty>(PATH_DEL, &req).map(|_| ())
    }
    fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError> {
        self.call::<_, Empty>(PATH_CHECK, &req).map(|_| ())
    }
    fn status(&self) -> Result<(), EndpointError> {
        self.call::<_, Empty>(PATH_STATUS, &Empty {}).map(|_| ())
    }
    fn gc(&self, req: GcRequest) -> Result<(), EndpointError> {
        self.call::<_, Empty>(PATH_GC, &req).map(|_| ())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a complete HTTP/1.1 reply: status line, headers, and a body framed by
/// `Content-Length`, `Transfer-Encoding: chunked`, or the end of the stream.
pub fn parse_reply(raw: &[u8]) -> Result<HttpReply, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(format!("status line {status_line:?} is not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status line {status_line:?} has no status code"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("header line {line:?} has no ':'"));
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("Content-Length {v:?} is not a number"))?,
            );
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(n) = content_length {
        rest.get(..n)
            .ok_or_else(|| format!("body is {} bytes, Content-Length says {n}", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpReply { status, body })
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = find(rest, b"\r\n").ok_or("chunk size line has no end")?;
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "chunk size is not UTF-8")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("chunk size {size_hex:?} is not hex"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("chunk is shorter than its size")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("chunk has no trailing CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_reply() {
        let r = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: y\r\n\r\n{}").unwrap();
        assert_eq!(
            r,
            HttpReply {
                status: 200,
                body: b"{}".to_vec()
            }
        );
    }

    #[test]
    fn parses_chunked_reply() {
        let r = parse_reply(b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.status, 409);
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn rejects_malformed_replies() {
        for raw in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SPDY 200 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(
                parse_reply(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn missing_socket_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let c = UnixClient::new(dir.path().join("none.sock"));
        let e = c.status().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("none.sock"), "{e}");
    }
}
