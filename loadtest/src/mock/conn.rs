//! One HTTP/1.1 connection: reading request heads and bodies (Content-Length or chunked,
//! `Expect: 100-continue`, pipelining), writing responses, and sleeping while watching for
//! the peer to go away. Buffers live as long as the connection and are reused.

use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;

/// Largest request head accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 96;
/// Room `scratch` keeps after a large body: more than any ordinary answer needs.
const KEEP_SCRATCH: usize = 16 * 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// The parts of a request head the mock uses, copied out of the read buffer.
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub keep_alive: bool,
    content_length: Option<usize>,
    chunked: bool,
    expect_continue: bool,
    len: usize,
}

/// Why a request could not be read.
pub(crate) enum ReadError {
    /// The peer closed or the socket failed: just drop the connection.
    Gone,
    /// A protocol error: answer with this status and message, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

pub(crate) struct Conn {
    pub stream: TcpStream,
    /// Bytes read and not yet consumed (a pipelined next request may already be here).
    rbuf: Vec<u8>,
    /// Response bytes being built; reused.
    pub out: Vec<u8>,
    /// Scratch space for one SSE event or body; reused.
    pub scratch: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(4096),
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Reads more bytes into `rbuf`; `Ok(0)` is end of stream.
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let buf = std::mem::take(&mut self.rbuf);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.stream.read(buf.slice_mut(len..cap)).await;
        self.rbuf = slice.into_inner();
        res
    }

    /// Reads the next request. `Ok(None)` means the peer closed cleanly between requests.
    pub async fn read_request(&mut self) -> Result<Option<(Head, Vec<u8>)>, ReadError> {
        let head = loop {
            if !self.rbuf.is_empty() {
                if let Some(h) = parse_head(&self.rbuf)? {
                    break h;
                }
                if self.rbuf.len() > MAX_HEAD {
                    return Err(ReadError::Bad(431, "request head too large"));
                }
            }
            if self.read_more().await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Gone)
                };
            }
        };
        let mut sent_continue = false;
        let body = if head.chunked {
            let mut dec = Chunked::default();
            let mut body = Vec::new();
            let mut pos = head.len;
            loop {
                if dec.feed(&self.rbuf, &mut pos, &mut body)? {
                    break;
                }
                if body.len() > MAX_BODY {
                    return Err(ReadError::Bad(413, "request body too large"));
                }
                if head.expect_continue && !sent_continue {
                    sent_continue = true;
                    self.write_static(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                }
                if self.read_more().await? == 0 {
                    return Err(ReadError::Gone);
                }
            }
            self.rbuf.drain(..pos);
            body
        } else {
            let n = head.content_length.unwrap_or(0);
            if n > MAX_BODY {
                return Err(ReadError::Bad(413, "request body too large"));
            }
            let end = head.len + n;
            while self.rbuf.len() < end {
                if head.expect_continue && !sent_continue {
                    sent_continue = true;
                    self.write_static(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                }
                self.rbuf.reserve(end - self.rbuf.len());
                if self.read_more().await? == 0 {
                    return Err(ReadError::Gone);
                }
            }
            let body = self.rbuf[head.len..end].to_vec();
            self.rbuf.drain(..end);
            body
        };
        Ok(Some((head, body)))
    }

    /// Writes `self.out` completely, then clears it.
    pub async fn flush_out(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.out);
        let (res, mut buf) = self.stream.write_all(buf).await;
        buf.clear();
        self.out = buf;
        res.map(|_| ())
    }

    /// Writes `self.out` one byte per write, each after a pause of `every` (`head_trickle_ms`;
    /// pausing before the first byte too keeps the pace even when a long head comes in several
    /// calls), then clears it. Fails with `BrokenPipe` if the peer goes away during a pause.
    pub async fn trickle_out(&mut self, every: Duration) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.out);
        let mut res = Ok(());
        for i in 0..buf.len() {
            if !self.sleep_watching(every).await {
                res = Err(io::ErrorKind::BrokenPipe.into());
                break;
            }
            let (r, slice) = self.stream.write_all(buf.slice(i..i + 1)).await;
            buf = slice.into_inner();
            if let Err(e) = r {
                res = Err(e);
                break;
            }
        }
        buf.clear();
        self.out = buf;
        res
    }

    /// Writes `self.scratch` completely (a large body goes out without a copy), then clears it
    /// and gives back the room past [`KEEP_SCRATCH`]: a `huge_body` answer must not pin hundreds
    /// of MiB to a kept-alive connection.
    pub async fn flush_scratch(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.scratch);
        let (res, mut buf) = self.stream.write_all(buf).await;
        buf.clear();
        buf.shrink_to(KEEP_SCRATCH);
        self.scratch = buf;
        res.map(|_| ())
    }

    pub async fn write_static(&mut self, bytes: &'static [u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await.0.map(|_| ())
    }

    /// Sleeps for `dur` while watching the socket. Returns false if the peer closed (or the
    /// socket failed) meanwhile. Bytes that arrive (a pipelined request) are kept.
    pub async fn sleep_watching(&mut self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        loop {
            if Instant::now() >= deadline {
                return true;
            }
            if self.rbuf.len() > MAX_HEAD + MAX_BODY {
                // The client keeps sending: stop reading, just wait.
                monoio::time::sleep_until(deadline.into()).await;
                return true;
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            let buf = std::mem::take(&mut self.rbuf);
            let (len, cap) = (buf.len(), buf.capacity());
            let canceller = Canceller::new();
            let mut read = pin!(
                self.stream
                    .cancelable_read(buf.slice_mut(len..cap), canceller.handle())
            );
            let mut sleep = pin!(monoio::time::sleep_until(deadline.into()));
            let first = poll_fn(|cx| {
                if let Poll::Ready(r) = read.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            // Never drop an in-flight read: cancel it and wait for its outcome.
            let (res, slice) = match first {
                Some(r) => r,
                None => {
                    let _ = canceller.cancel();
                    read.await
                }
            };
            self.rbuf = slice.into_inner();
            match res {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Holds the connection without answering until the peer closes it (for `hang`).
    pub async fn wait_for_close(&mut self) {
        loop {
            self.rbuf.clear();
            match self.read_more().await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::Bad(431, "too many request headers"));
        }
        Err(_) => return Err(ReadError::Bad(400, "malformed request head")),
    };
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        headers: Vec::with_capacity(req.headers.len()),
        keep_alive: version >= 1,
        content_length: None,
        chunked: false,
        expect_continue: false,
        len,
    };
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(h.value).into_owned();
        match name.as_str() {
            "content-length" => match value.trim().parse::<usize>() {
                Ok(n) if head.content_length.is_none_or(|m| m == n) => {
                    head.content_length = Some(n)
                }
                _ => return Err(ReadError::Bad(400, "invalid content-length")),
            },
            "transfer-encoding" => {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(ReadError::Bad(400, "unsupported transfer-encoding"));
                }
                head.chunked = true;
            }
            "expect" => head.expect_continue = value.trim().eq_ignore_ascii_case("100-continue"),
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        head.keep_alive = true;
                    }
                }
            }
            _ => {}
        }
        head.headers.push((name, value));
    }
    Ok(Some(head))
}

/// Incremental decoder of a chunked request body.
#[derive(Default)]
struct Chunked {
    state: ChunkState,
}

#[derive(Default)]
enum ChunkState {
    #[default]
    Size,
    Data(usize),
    DataEnd,
    Trailers,
}

impl Chunked {
    /// Consumes what it can from `buf[*pos..]`, appending data to `out`.
    /// Returns true once the body (and its trailers) is complete.
    fn feed(&mut self, buf: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        const BAD: ReadError = ReadError::Bad(400, "malformed chunked body");
        loop {
            match self.state {
                ChunkState::Data(n) => {
                    let take = n.min(buf.len() - *pos);
                    out.extend_from_slice(&buf[*pos..*pos + take]);
                    *pos += take;
                    if take < n {
                        self.state = ChunkState::Data(n - take);
                        return Ok(false);
                    }
                    self.state = ChunkState::DataEnd;
                }
                _ => {
                    let Some(nl) = memchr::memchr(b'\n', &buf[*pos..]) else {
                        if buf.len() - *pos > 4096 {
                            return Err(BAD);
                        }
                        return Ok(false);
                    };
                    let line = &buf[*pos..*pos + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    *pos += nl + 1;
                    match self.state {
                        ChunkState::Size => {
                            let digits = line.split(|&c| c == b';').next().unwrap_or(b"");
                            let digits = std::str::from_utf8(digits).map_err(|_| BAD)?.trim();
                            let n = usize::from_str_radix(digits, 16).map_err(|_| BAD)?;
                            if n > MAX_BODY {
                                return Err(ReadError::Bad(413, "request body too large"));
                            }
                            self.state = if n == 0 {
                                ChunkState::Trailers
                            } else {
                                ChunkState::Data(n)
                            };
                        }
                        ChunkState::DataEnd if line.is_empty() => self.state = ChunkState::Size,
                        ChunkState::DataEnd => return Err(BAD),
                        _ if line.is_empty() => return Ok(true),
                        _ => {} // a trailer field: ignored
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_in_pieces() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        for split in 0..wire.len() - 4 {
            let mut dec = Chunked::default();
            let mut out = Vec::new();
            let mut pos = 0;
            let done = dec.feed(&wire[..split], &mut pos, &mut out).ok().unwrap();
            assert!(!done);
            let mut buf = wire[..split].to_vec();
            buf.extend_from_slice(&wire[split..]);
            assert!(dec.feed(&buf, &mut pos, &mut out).ok().unwrap());
            assert_eq!(out, b"hello world");
            assert_eq!(&buf[pos..], b"NEXT");
        }
    }
}
