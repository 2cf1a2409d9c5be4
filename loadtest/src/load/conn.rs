//! One keep-alive client connection: sends the prebuilt request and reads the response,
//! reusing its request and read buffers for every exchange (no per-request allocation).
//!
//! Reads are never dropped mid-flight (see MONOIO_NOTES): the run's deadline is enforced by
//! shutting sockets down, which ends a pending read with EOF.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::http::{BodyDecoder, parse_head};
use super::sse::SseScanner;

const READ_BUF: usize = 16 * 1024;
/// The smallest read a full buffer grows by.
const MIN_READ: usize = 1024;

/// How an exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Connect(io::Error),
    Io(io::Error),
    /// The connection failed before any byte of the response came back.
    Stale(io::Error),
    /// A complete non-2xx response.
    Status(u16),
}

impl Failure {
    pub fn describe(&self) -> String {
        match self {
            Failure::Connect(e) => format!("connect: {e}"),
            Failure::Io(e) | Failure::Stale(e) => format!("i/o: {e}"),
            Failure::Status(s) => format!("status {s}"),
        }
    }
}

/// A successful (2xx) exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    /// When the first body byte arrived.
    pub first_byte: Option<Instant>,
    pub done: Instant,
}

/// The sockets of one runtime thread's connections, so a deadline can shut them down.
pub(crate) type FdSlots = RefCell<Vec<Option<RawFd>>>;

pub(crate) struct Conn {
    addr: SocketAddr,
    slot: usize,
    stream: Option<TcpStream>,
    req: Option<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    read_at: Instant,
    sse: SseScanner,
    /// Gaps between the SSE events of the last response.
    pub gaps: Vec<Duration>,
}

fn io_err(e: impl std::fmt::Display) -> Failure {
    Failure::Io(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

impl Conn {
    pub fn new(addr: SocketAddr, slot: usize, request: Vec<u8>) -> Conn {
        Conn::with_buffer(addr, slot, request, READ_BUF)
    }

    /// A connection whose read buffer starts at `capacity` bytes (it grows as responses need).
    pub fn with_buffer(addr: SocketAddr, slot: usize, request: Vec<u8>, capacity: usize) -> Conn {
        Conn {
            addr,
            slot,
            stream: None,
            req: Some(request),
            buf: Vec::with_capacity(capacity),
            pos: 0,
            read_at: Instant::now(),
            sse: SseScanner::default(),
            gaps: Vec::new(),
        }
    }

    /// Opens the connection if it is not open.
    pub async fn connect(&mut self, fds: &FdSlots) -> io::Result<()> {
        if self.stream.is_some() {
            return Ok(());
        }
        let s = TcpStream::connect_addr(self.addr).await?;
        s.set_nodelay(true)?;
        fds.borrow_mut()[self.slot] = Some(s.as_raw_fd());
        self.stream = Some(s);
        self.buf.clear();
        self.pos = 0;
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Gives the read buffer back if nothing in it is left to read (an idle connection then
    /// costs a few hundred bytes, not `READ_BUF`).
    pub fn release_buffer(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Closes the connection (forgetting its socket in `fds` first).
    pub fn close(&mut self, fds: &FdSlots) {
        fds.borrow_mut()[self.slot] = None;
        self.stream = None;
    }

    /// Reads more bytes after the unconsumed ones; `Ok(false)` at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.buf.len() == self.buf.capacity() && self.pos > 0 {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.pos = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(self.buf.capacity().max(MIN_READ));
        }
        let stream = self.stream.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let mut buf = std::mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.bytes_total());
        let slice: SliceMut<Vec<u8>> = buf.slice_mut(len..cap);
        let (res, slice) = stream.read(slice).await;
        self.buf = slice.into_inner();
        self.read_at = Instant::now();
        Ok(res? > 0)
    }

    /// Sends the request and reads the whole response. With `sse`, records the gaps between
    /// the response's SSE events in `self.gaps`. Any failure but a non-2xx status closes the
    /// connection; so does a response that says it will close.
    ///
    /// A kept-alive connection the server closed while idle fails before any byte of the
    /// response: the request is then sent once more on a new connection, as HTTP clients do,
    /// unless `stopping` (the run's deadline shut the socket down).
    pub async fn exchange(
        &mut self,
        fds: &FdSlots,
        sse: bool,
        stopping: &Cell<bool>,
    ) -> Result<Reply, Failure> {
        let reused = self.stream.is_some();
        let mut r = self.exchange_inner(fds, sse).await;
        if reused && !stopping.get() && matches!(r, Err(Failure::Stale(_))) {
            self.close(fds);
            r = self.exchange_inner(fds, sse).await;
        }
        if let Err(Failure::Io(_) | Failure::Stale(_)) = r {
            self.close(fds);
        }
        r
    }

    /// One exchange on the connection as it is, with no reconnect and no retry: fails if the
    /// connection is not open or the server closed it. Any failure but a non-2xx status closes it.
    pub async fn probe(&mut self, fds: &FdSlots) -> Result<Reply, Failure> {
        if self.stream.is_none() {
            let e = io::Error::new(io::ErrorKind::NotConnected, "connection already closed");
            return Err(Failure::Stale(e));
        }
        let r = self.exchange_inner(fds, false).await;
        if let Err(Failure::Io(_) | Failure::Stale(_)) = r {
            self.close(fds);
        }
        r
    }

    async fn exchange_inner(&mut self, fds: &FdSlots, sse: bool) -> Result<Reply, Failure> {
        self.connect(fds).await.map_err(Failure::Connect)?;
        self.gaps.clear();
        self.sse.reset();
        let stream = self.stream.as_mut().expect("connected");
        let req = self.req.take().expect("request buffer");
        let (res, req) = stream.write_all(req).await;
        self.req = Some(req);
        res.map_err(Failure::Stale)?;

        let head = loop {
            if let Some((head, n)) = parse_head(&self.buf[self.pos..]).map_err(io_err)? {
                self.pos += n;
                // Skip interim responses (100 Continue and the like).
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                break head;
            }
            let nothing_yet = self.pos == self.buf.len();
            match self.fill().await {
                Ok(true) => {}
                Ok(false) if nothing_yet => {
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response");
                    return Err(Failure::Stale(e));
                }
                Ok(false) => return Err(io_err("connection closed in the response head")),
                Err(e) if nothing_yet => return Err(Failure::Stale(e)),
                Err(e) => return Err(Failure::Io(e)),
            }
        };

        let mut body = BodyDecoder::new(head.body);
        let mut first_byte = None;
        let mut last_event: Option<Instant> = None;
        loop {
            if self.pos < self.buf.len() {
                let at = self.read_at;
                let (scanner, gaps) = (&mut self.sse, &mut self.gaps);
                let used = body
                    .feed(&self.buf[self.pos..], &mut |data: &[u8]| {
                        first_byte.get_or_insert(at);
                        if sse {
                            for _ in 0..scanner.feed(data) {
                                if let Some(prev) = last_event {
                                    gaps.push(at - prev);
                                }
                                last_event = Some(at);
                            }
                        }
                    })
                    .map_err(io_err)?;
                self.pos += used;
            }
            if body.is_done() {
                break;
            }
            if !self.fill().await.map_err(Failure::Io)? {
                body.eof().map_err(io_err)?;
                break;
            }
        }
        let done = self.read_at;
        if head.close {
            self.close(fds);
        }
        if !(200..300).contains(&head.status) {
            return Err(Failure::Status(head.status));
        }
        Ok(Reply { first_byte, done })
    }
}
