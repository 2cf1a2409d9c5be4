//! One ingress connection: its socket and its reusable buffers, reading request heads and
//! bodies within the configured limits.
//!
//! Timed-out reads are cancelled and awaited rather than dropped (the io_uring trap: a dropped
//! in-flight read loses its buffer), so the request's bytes stay in `rbuf` for the error path.
//!
//! Deadlines: an idle connection waits `keepalive_timeout` for a request's first byte; the
//! whole head must then arrive within `header_timeout` of that byte (not per read, so a client
//! trickling a byte at a time is cut off too); each body read waits `header_timeout`; each
//! write must finish within `write_timeout` (a client that stops reading is cut off).
//! Chunked bodies are bounded in bytes received, framing included, not in decoded payload.

use std::ops::Range;
use std::time::{Duration, Instant};

use monoio::io::{AsyncWriteRentExt, Canceller};
use monoio::net::TcpStream;

use super::chunked;
use super::request::{self, Head};
use super::response;
use crate::error::{GatewayError, Kind};

/// Limits an ingress connection enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub write_timeout: Duration,
}

pub struct Conn {
    pub io: TcpStream,
    /// Bytes read from the client and not yet consumed (a head, a body, pipelined requests).
    pub rbuf: Vec<u8>,
    pub wbuf: Vec<u8>,
    /// Decoded chunked request bodies.
    chunked_body: Vec<u8>,
    /// Bytes of the current request (head and body) at the front of `rbuf`.
    consumed: usize,
    /// Cancels a read that timed out (see `io::read_more_within`).
    canceller: Canceller,
    write_timeout: Duration,
    /// Writes that hit the write timeout (for the shard's metric, when the connection ends).
    pub write_timeouts: u32,
}

/// Where the current request's body is.
#[derive(Debug, Clone)]
pub enum Body {
    InRead(Range<usize>),
    Decoded,
}

/// Read buffer of a connection between requests: a typical request head fits, and 10,000 idle
/// keep-alive connections cost 20 MiB of buffers rather than hundreds.
const IDLE_RBUF: usize = 2048;
/// Buffers that grew past this for one large request are given back once it is answered.
const KEEP_AFTER_REQUEST: usize = 64 * 1024;

fn head_timeout() -> GatewayError {
    GatewayError::new(
        Kind::RequestTimeout,
        "the request head did not arrive within the header timeout",
    )
}

fn write_failed(e: std::io::Error) -> GatewayError {
    GatewayError::new(Kind::ClientDisconnected, format!("write failed: {e}"))
}

/// A client that stops reading: reported as gone (nothing more can be sent to it), with a
/// message saying why.
fn write_timed_out() -> GatewayError {
    GatewayError::new(
        Kind::ClientDisconnected,
        "write timed out: the client stopped reading",
    )
}

impl Conn {
    pub fn new(io: TcpStream, write_timeout: Duration) -> Self {
        Conn {
            write_timeout,
            write_timeouts: 0,
            io,
            rbuf: Vec::with_capacity(IDLE_RBUF),
            wbuf: Vec::new(),
            chunked_body: Vec::new(),
            consumed: 0,
            canceller: Canceller::new(),
        }
    }

    /// Puts `body` in place of the request's body (a guardrail's redaction): where a
    /// decoded chunked body lives, so the read buffer and what follows it stay as they are.
    pub fn replace_body(&mut self, body: Vec<u8>) -> Body {
        self.chunked_body = body;
        Body::Decoded
    }

    pub fn body<'a>(&'a self, b: &Body) -> &'a [u8] {
        match b {
            Body::InRead(r) => &self.rbuf[r.clone()],
            Body::Decoded => &self.chunked_body,
        }
    }

    /// Reads more bytes into `rbuf` within `limit`. `Ok(0)` is EOF. The read is cancelled
    /// (not dropped) on timeout, so `rbuf` and the ranges into it stay valid for the error path.
    async fn fill(&mut self, limit: Duration) -> Result<usize, GatewayError> {
        let (io, rbuf, canceller) = (&mut self.io, &mut self.rbuf, &mut self.canceller);
        match super::io::read_more_within(io, rbuf, limit, canceller).await {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(GatewayError::new(
                Kind::RequestTimeout,
                "timed out reading the request",
            )),
            Err(e) => Err(GatewayError::new(
                Kind::ClientDisconnected,
                format!("read failed: {e}"),
            )),
        }
    }

    /// Drops the previous request's bytes, keeping anything pipelined after them, and gives
    /// back buffer space a large request needed.
    pub fn finish_request(&mut self) {
        if self.consumed > 0 {
            self.rbuf.drain(..self.consumed);
            self.consumed = 0;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_AFTER_REQUEST {
            self.rbuf = Vec::with_capacity(IDLE_RBUF);
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > KEEP_AFTER_REQUEST {
            self.wbuf = Vec::new();
        }
        if self.chunked_body.capacity() > KEEP_AFTER_REQUEST {
            self.chunked_body = Vec::new();
        }
    }

    /// Waits for the next request head. `Ok(None)`: the client closed an idle connection
    /// (or it stayed idle past the keep-alive timeout).
    pub async fn read_head(&mut self, limits: &Limits) -> Result<Option<Head>, GatewayError> {
        self.finish_request();
        // The head's deadline runs from its first byte (pipelined bytes: from now).
        let mut deadline = (!self.rbuf.is_empty()).then(|| Instant::now() + limits.header_timeout);
        loop {
            if !self.rbuf.is_empty()
                && let Some(head) = request::parse(&self.rbuf, limits.max_header_bytes)?
            {
                // The head is consumed now; `read_body` extends this past the body.
                self.consumed = head.len;
                return Ok(Some(head));
            }
            let idle = self.rbuf.is_empty();
            let limit = match deadline {
                None => limits.keepalive_timeout,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if limit.is_zero() {
                return Err(head_timeout());
            }
            let result = self.fill(limit).await;
            if deadline.is_none() && matches!(result, Ok(n) if n > 0) {
                deadline = Some(Instant::now() + limits.header_timeout);
            }
            match result {
                Ok(0) if idle => return Ok(None),
                Ok(0) => {
                    return Err(GatewayError::new(
                        Kind::ClientDisconnected,
                        "client closed mid-request",
                    ));
                }
                Ok(_) => {}
                Err(e) if idle && e.kind == Kind::RequestTimeout => return Ok(None),
                Err(e) if e.kind == Kind::RequestTimeout => return Err(head_timeout()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the body of `head` (answering `Expect: 100-continue` first).
    pub async fn read_body(&mut self, head: &Head, limits: &Limits) -> Result<Body, GatewayError> {
        let too_large = || {
            GatewayError::new(
                Kind::PayloadTooLarge,
                format!(
                    "request body exceeds the limit of {} bytes",
                    limits.max_body_bytes
                ),
            )
        };
        if head
            .content_length
            .is_some_and(|n| n > limits.max_body_bytes)
        {
            return Err(too_large());
        }
        let has_body = head.chunked || head.content_length.is_some_and(|n| n > 0);
        if head.expect_continue && has_body && self.rbuf.len() == head.len {
            self.write_raw(response::CONTINUE).await?;
        }
        if head.chunked {
            self.chunked_body.clear();
            let mut dec = chunked::Decoder::default();
            let mut at = head.len;
            loop {
                let n = dec
                    .decode(&self.rbuf[at..], &mut self.chunked_body)
                    .map_err(|_| {
                        GatewayError::new(Kind::BadRequest, "malformed chunked request body")
                    })?;
                at += n;
                // Bytes received, not payload: extensions, trailers and framing all count.
                if at - head.len > limits.max_body_bytes {
                    return Err(too_large());
                }
                if dec.is_done() {
                    self.consumed = at;
                    return Ok(Body::Decoded);
                }
                // Not done: the decoder took every byte read, so `at` is all of them.
                self.read_more_body(limits).await?;
            }
        }
        let end = head.len + head.content_length.unwrap_or(0);
        while self.rbuf.len() < end {
            self.read_more_body(limits).await?;
        }
        self.consumed = end;
        Ok(Body::InRead(head.len..end))
    }

    async fn read_more_body(&mut self, limits: &Limits) -> Result<(), GatewayError> {
        match self.fill(limits.header_timeout).await? {
            0 => Err(GatewayError::new(
                Kind::ClientDisconnected,
                "client closed mid-body",
            )),
            _ => Ok(()),
        }
    }

    /// After an error response on a request whose body was not read: the connection must close.
    pub fn mark_unframed(&mut self) {
        self.consumed = self.rbuf.len();
    }

    async fn write_raw(&mut self, bytes: &'static [u8]) -> Result<(), GatewayError> {
        match monoio::time::timeout(self.write_timeout, self.io.write_all(bytes)).await {
            Ok((res, _)) => res.map(|_| ()).map_err(write_failed),
            Err(_) => {
                self.write_timeouts += 1;
                Err(write_timed_out())
            }
        }
    }

    /// Writes and clears `wbuf`, within the write timeout. On a timeout the write is dropped
    /// with its buffer (the driver keeps that until the kernel lets go) and the connection is
    /// done: the caller closes it.
    pub async fn flush(&mut self) -> Result<(), GatewayError> {
        let buf = std::mem::take(&mut self.wbuf);
        match monoio::time::timeout(self.write_timeout, self.io.write_all(buf)).await {
            Ok((res, mut buf)) => {
                buf.clear();
                self.wbuf = buf;
                res.map(|_| ()).map_err(write_failed)
            }
            Err(_) => {
                self.write_timeouts += 1;
                Err(write_timed_out())
            }
        }
    }

    /// Waits until the client closes (`true`) or sends more bytes, e.g. a pipelined request
    /// (`false`; the bytes stay in the socket for the next `read_head`). Only readiness is
    /// awaited and the socket is then peeked without blocking, so dropping this future at any
    /// point loses nothing.
    pub async fn closed(&self) -> bool {
        loop {
            if self.io.readable(false).await.is_err() {
                return true;
            }
            match crate::sys::peek(&self.io) {
                crate::sys::Peek::Closed => return true,
                crate::sys::Peek::Data => return false,
                crate::sys::Peek::Nothing => {}
            }
        }
    }
}
