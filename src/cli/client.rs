//! A small blocking HTTP/1.1 client for the admin API: one request per connection
//! (`Connection: close`), a `Content-Length` body, and the whole answer read back, whether it
//! is framed by `Content-Length`, chunked, or ended by the close.
//!
//! Plain `http://` only: the admin listener is meant for localhost or a private network, and a
//! TLS client is not worth a second stack in a CLI. Connecting waits at most [`CONNECT_TIMEOUT`],
//! each read or write [`IO_TIMEOUT`], and an answer is at most [`MAX_RESPONSE`] bytes on the wire.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::http::chunked;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_RESPONSE: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Where the admin API listens: `http://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As given, brackets around an IPv6 address kept: the `Host` header.
    authority: String,
    host: String,
    port: u16,
    /// Empty, or `/...` without a trailing slash; put before every request path.
    prefix: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(format!(
                "admin URL {url:?}: https is not supported; the CLI speaks plain HTTP to the \
                 admin listener (give http://host:port, over an SSH tunnel if it is remote)"
            ));
        }
        let Some(rest) = lower.starts_with("http://").then(|| &url[7..]) else {
            return Err(format!(
                "admin URL {url:?}: expected http://host:port[/prefix]"
            ));
        };
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let bad = |why: &str| format!("admin URL {url:?}: {why}");
        if prefix
            .bytes()
            .any(|b| b <= b' ' || b == b'?' || b == b'#' || b >= 0x7f)
        {
            return Err(bad(
                "the path may not hold a query, a fragment, spaces or non-ASCII",
            ));
        }
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, port)) => (
                    host,
                    Some(port.strip_prefix(':').ok_or_else(|| bad("bad port"))?),
                ),
                None => return Err(bad("unclosed [")),
            },
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(Endpoint {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Path and query, percent-encoded, starting with `/`.
    pub target: String,
    /// JSON, sent with `Content-Length`.
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot reach the admin API at {0}: {1}")]
    Connect(String, io::Error),
    #[error("admin API at {0}: no answer within {1} s")]
    Timeout(String, u64),
    #[error("admin API at {0}: {1}")]
    Io(String, io::Error),
    #[error("admin API at {0}: the answer is larger than {mib} MiB", mib = MAX_RESPONSE >> 20)]
    TooLarge(String),
    #[error("admin API at {0}: malformed answer: {1}")]
    Malformed(String, &'static str),
}

/// Why reading or writing an open connection stopped.
enum Fault {
    Io(io::Error),
    TooLarge,
    Malformed(&'static str),
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

/// Sends `request` (with `Authorization: Bearer <bearer>` when given) and reads the answer.
pub fn send(
    endpoint: &Endpoint,
    request: &Request,
    bearer: Option<&str>,
) -> Result<Response, Failure> {
    let mut stream = connect(endpoint)?;
    let url = endpoint.to_string();
    let exchanged = (|| {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(&head(endpoint, request, bearer))?;
        read_response(&mut stream)
    })();
    exchanged.map_err(|fault| match fault {
        Fault::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Failure::Timeout(url, IO_TIMEOUT.as_secs())
        }
        Fault::Io(e) => Failure::Io(url, e),
        Fault::TooLarge => Failure::TooLarge(url),
        Fault::Malformed(why) => Failure::Malformed(url, why),
    })
}

fn connect(endpoint: &Endpoint) -> Result<TcpStream, Failure> {
    let failed = |e| Failure::Connect(endpoint.to_string(), e);
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(failed)?
    {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(failed(last))
}

/// The request head, and the body after it.
fn head(endpoint: &Endpoint, request: &Request, bearer: Option<&str>) -> Vec<u8> {
    let mut h = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardgate-cli/{}\r\n\
         Accept: application/json\r\nConnection: close\r\n",
        request.method.as_str(),
        endpoint.prefix,
        request.target,
        endpoint.authority,
        env!("CARGO_PKG_VERSION"),
    );
    if let Some(key) = bearer {
        h.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    let body = request.body.as_deref();
    if let Some(body) = body {
        h.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    h.push_str("\r\n");
    let mut out = h.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    out
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Reads one answer, skipping interim `1xx` heads.
fn read_response(r: &mut impl Read) -> Result<Response, Fault> {
    let mut wire = Wire {
        buf: Vec::new(),
        read: 0,
    };
    loop {
        let (status, framing, len) = loop {
            if let Some(head) = parse_head(&wire.buf)? {
                break head;
            }
            if wire.fill(r)? == 0 {
                return Err(Fault::Malformed(
                    "the connection closed before the head ended",
                ));
            }
        };
        wire.buf.drain(..len);
        if (100..200).contains(&status) {
            continue;
        }
        let body = match framing {
            Framing::Length(n) => {
                while wire.buf.len() < n {
                    if wire.fill(r)? == 0 {
                        return Err(Fault::Malformed(
                            "the connection closed before the body ended",
                        ));
                    }
                }
                wire.buf.truncate(n);
                std::mem::take(&mut wire.buf)
            }
            Framing::Chunked => wire.dechunk(r)?,
            Framing::Close => {
                while wire.fill(r)? > 0 {}
                std::mem::take(&mut wire.buf)
            }
        };
        return Ok(Response { status, body });
    }
}

/// Bytes received and not yet consumed, and how many were received in all (the bound).
struct Wire {
    buf: Vec<u8>,
    read: usize,
}

impl Wire {
    fn fill(&mut self, r: &mut impl Read) -> Result<usize, Fault> {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match r.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.read += n;
        if self.read > MAX_RESPONSE {
            return Err(Fault::TooLarge);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn dechunk(&mut self, r: &mut impl Read) -> Result<Vec<u8>, Fault> {
        let mut decoder = chunked::Decoder::default();
        let mut body = Vec::new();
        loop {
            let used = decoder
                .decode(&self.buf, &mut body)
                .map_err(|_| Fault::Malformed("bad chunked framing"))?;
            self.buf.drain(..used);
            if decoder.is_done() {
                return Ok(body);
            }
            if self.fill(r)? == 0 {
                return Err(Fault::Malformed(
                    "the connection closed inside a chunked body",
                ));
            }
        }
    }
}

/// The status, framing and length of a complete head at the start of `buf`, if there is one.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, Framing, usize)>, Fault> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Fault::Malformed("bad response head")),
    };
    let status = parsed.code.unwrap_or_default();
    let mut length = None;
    let mut chunked = false;
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| Fault::Malformed("bad header"))?
            .trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| Fault::Malformed("bad Content-Length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(Fault::Malformed("two different Content-Length values"));
            }
            length = Some(n);
        }
    }
    let framing = match (status, chunked, length) {
        (204 | 304, _, _) => Framing::Length(0),
        (_, true, _) => Framing::Chunked,
        (_, false, Some(n)) if n > MAX_RESPONSE => return Err(Fault::TooLarge),
        (_, false, Some(n)) => Framing::Length(n),
        (_, false, None) => Framing::Close,
    };
    Ok(Some((status, framing, len)))
}

#[cfg(test)]
mod tests;
