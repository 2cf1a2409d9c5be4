//! One upstream connection (plain TCP, TLS, or the in-process transport) and its read buffer.

use std::io;
use std::time::Instant;

use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::ClientTlsStream;

use crate::http::io::read_more;

pub enum Io {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
    /// The in-process transport: a request written is answered at once by the built-in mock
    /// ([`crate::providers::mock::serve`]), whole, into the read buffer.
    Local,
}

/// A connection's read buffer to start with (a response head and its first events fit).
pub const RBUF: usize = 4096;

pub struct Conn {
    pub io: Io,
    pub origin: usize,
    /// Bytes read but not yet consumed.
    pub rbuf: Vec<u8>,
    /// Came from the pool (so it may have been closed by the upstream while idle).
    pub reused: bool,
    pub idle_since: Instant,
    /// A read or write was abandoned mid-flight: the connection's state is unknown.
    pub broken: bool,
}

impl Conn {
    pub fn new(io: Io, origin: usize) -> Self {
        Conn {
            io,
            origin,
            rbuf: Vec::with_capacity(RBUF),
            reused: false,
            idle_since: Instant::now(),
            broken: false,
        }
    }

    pub async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        self.broken = true;
        let (res, buf) = match &mut self.io {
            Io::Local => {
                crate::providers::mock::serve(&buf, &mut self.rbuf);
                (Ok(buf.len()), buf)
            }
            Io::Plain(s) => s.write_all(buf).await,
            Io::Tls(s) => {
                let (res, buf) = s.write_all(buf).await;
                match res {
                    Ok(n) => (s.flush().await.map(|_| n), buf),
                    Err(e) => (Err(e), buf),
                }
            }
        };
        self.broken = res.is_err();
        (res.map(|_| ()), buf)
    }

    /// Appends what the upstream sends next to `rbuf`. `Ok(0)` is EOF. If this is dropped
    /// mid-read the connection stays `broken` and is never pooled again.
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.broken = true;
        let res = match &mut self.io {
            // Everything was answered with the request: nothing more comes.
            Io::Local => Ok(0),
            Io::Plain(s) => read_more(s, &mut self.rbuf).await,
            Io::Tls(s) => read_more(s.as_mut(), &mut self.rbuf).await,
        };
        self.broken = false;
        res
    }
}
