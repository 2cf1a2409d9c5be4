//! Reading an upstream response: the head (skipping 1xx), then the body as it arrives,
//! de-chunked, so streamed events reach the client the moment the upstream sends them.

use std::borrow::Cow;
use std::io;

use super::conn::Conn;
use crate::http::{chunked, content_length, has_token, trim};

const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(chunked::Decoder),
    UntilClose,
    Done,
}

pub struct Response {
    pub status: u16,
    pub content_type: Option<Cow<'static, str>>,
    pub retry_after: Option<String>,
    /// On a 429: the provider's own rate-limit headers (`*ratelimit*`, at most
    /// [`MAX_RATE_HEADERS`]), for its adapter to read when the limit resets.
    pub rate_limit: Vec<(String, String)>,
    keep_alive: bool,
    framing: Framing,
    /// Body bytes read off the wire so far, framing included: what bounds are counted in.
    raw: u64,
    pub(super) conn: Conn,
}

#[derive(Debug)]
pub enum HeadError {
    /// The connection closed or failed before any byte of a response.
    Closed(io::Error),
    Malformed(String),
}

/// The content types providers send, kept without an allocation per response.
const COMMON_TYPES: [&str; 4] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/event-stream",
    "text/event-stream; charset=utf-8",
];

fn media_type(v: &[u8]) -> Cow<'static, str> {
    match COMMON_TYPES
        .iter()
        .find(|t| t.as_bytes().eq_ignore_ascii_case(v))
    {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(String::from_utf8_lossy(v).into_owned()),
    }
}

/// A parsed response head.
pub(crate) struct Head {
    status: u16,
    content_type: Option<Cow<'static, str>>,
    retry_after: Option<String>,
    rate_limit: Vec<(String, String)>,
    keep_alive: bool,
    framing: Framing,
}

/// Rate-limit headers a 429 keeps at most.
pub const MAX_RATE_HEADERS: usize = 16;

/// Parses a response head from the start of `rbuf`, dropping it (and any 1xx before it) from
/// the buffer; `None` until the head is complete. Kept out of `read_head` so the header array
/// is not held in the read's future across its await.
pub(crate) fn parse_head(rbuf: &mut Vec<u8>) -> Result<Option<Head>, HeadError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(rbuf) {
            // A head that completes past the bound in the read that crossed it is as large.
            Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                return Err(HeadError::Malformed("response head too large".into()));
            }
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                if (100..200).contains(&status) && status != 101 {
                    rbuf.drain(..n);
                    continue;
                }
                let mut content_type = None;
                let mut retry_after = None;
                let mut rate_limit = Vec::new();
                let mut keep_alive = resp.version == Some(1);
                let mut chunked = false;
                let mut length = None;
                // Compared in place: no allocation per header on the hot path.
                for h in resp.headers.iter() {
                    let (name, v) = (h.name.as_bytes(), trim(h.value));
                    if name.eq_ignore_ascii_case(b"content-length") {
                        let n = content_length(v)
                            .ok_or_else(|| HeadError::Malformed("invalid Content-Length".into()))?
                            as u64;
                        if length.is_some_and(|m| m != n) {
                            return Err(HeadError::Malformed(
                                "conflicting Content-Length headers".into(),
                            ));
                        }
                        length = Some(n);
                    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        chunked = has_token(v, b"chunked");
                    } else if name.eq_ignore_ascii_case(b"connection") {
                        if has_token(v, b"close") {
                            keep_alive = false;
                        } else if has_token(v, b"keep-alive") {
                            keep_alive = true;
                        }
                    } else if name.eq_ignore_ascii_case(b"content-type") {
                        content_type = Some(media_type(v));
                    } else if name.eq_ignore_ascii_case(b"retry-after") {
                        retry_after = Some(String::from_utf8_lossy(v).into_owned());
                    } else if status == 429
                        && rate_limit.len() < MAX_RATE_HEADERS
                        && memchr::memmem::find(&name.to_ascii_lowercase(), b"ratelimit").is_some()
                    {
                        rate_limit.push((
                            String::from_utf8_lossy(name).to_ascii_lowercase(),
                            String::from_utf8_lossy(v).into_owned(),
                        ));
                    }
                }
                let framing = match length {
                    _ if status == 204 || status == 304 => Framing::Done,
                    _ if chunked => Framing::Chunked(chunked::Decoder::default()),
                    Some(0) => Framing::Done,
                    Some(n) => Framing::Length(n),
                    None => {
                        keep_alive = false;
                        Framing::UntilClose
                    }
                };
                rbuf.drain(..n);
                return Ok(Some(Head {
                    status,
                    content_type,
                    retry_after,
                    rate_limit,
                    keep_alive,
                    framing,
                }));
            }
            Ok(httparse::Status::Partial) if rbuf.len() > MAX_HEAD => {
                return Err(HeadError::Malformed("response head too large".into()));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(HeadError::Malformed(format!(
                    "malformed response head: {e}"
                )));
            }
        }
    }
}

fn too_large(limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("the upstream body is larger than {limit} bytes"),
    )
}

impl Response {
    /// Reads the head. Bytes after it stay in the connection's buffer for `next`.
    pub(super) async fn read_head(mut conn: Conn) -> Result<Response, (HeadError, Conn)> {
        loop {
            match parse_head(&mut conn.rbuf) {
                Ok(Some(h)) => {
                    return Ok(Response {
                        status: h.status,
                        content_type: h.content_type,
                        retry_after: h.retry_after,
                        rate_limit: h.rate_limit,
                        keep_alive: h.keep_alive,
                        framing: h.framing,
                        raw: 0,
                        conn,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err((e, conn)),
            }
            let had = conn.rbuf.len();
            match conn.fill().await {
                Ok(0) if had == 0 => {
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    );
                    return Err((HeadError::Closed(eof), conn));
                }
                Ok(0) => {
                    return Err((
                        HeadError::Malformed("connection closed mid-head".into()),
                        conn,
                    ));
                }
                Ok(_) => {}
                Err(e) if had == 0 => return Err((HeadError::Closed(e), conn)),
                Err(e) => return Err((HeadError::Malformed(e.to_string()), conn)),
            }
        }
    }

    /// Body bytes already read (they came with the head or an earlier event).
    pub fn has_buffered(&self) -> bool {
        !self.conn.rbuf.is_empty()
    }

    pub fn is_done(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// Appends the next body bytes to `out`. `Ok(false)`: the body is complete.
    /// An error means the body was cut short or malformed.
    pub async fn next(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            let before = out.len();
            if !self.conn.rbuf.is_empty() {
                self.consume_buffered(out)?;
            }
            if self.is_done() {
                return Ok(out.len() > before);
            }
            if out.len() > before {
                return Ok(true);
            }
            let n = self.conn.fill().await?;
            if n == 0 {
                return match self.framing {
                    Framing::UntilClose => {
                        self.framing = Framing::Done;
                        Ok(false)
                    }
                    _ => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "upstream closed mid-body",
                    )),
                };
            }
        }
    }

    fn consume_buffered(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let buf = &mut self.conn.rbuf;
        match &mut self.framing {
            Framing::Length(left) => {
                let n = (*left as usize).min(buf.len());
                out.extend_from_slice(&buf[..n]);
                buf.drain(..n);
                self.raw += n as u64;
                *left -= n as u64;
                if *left == 0 {
                    self.framing = Framing::Done;
                }
            }
            Framing::Chunked(dec) => {
                let n = dec.decode(buf, out).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body")
                })?;
                buf.drain(..n);
                self.raw += n as u64;
                if dec.is_done() {
                    self.framing = Framing::Done;
                }
            }
            Framing::UntilClose => {
                out.extend_from_slice(buf);
                self.raw += buf.len() as u64;
                buf.clear();
            }
            Framing::Done => {}
        }
        Ok(())
    }

    /// Body bytes read off the wire so far (chunk framing included).
    pub fn raw_bytes(&self) -> u64 {
        self.raw
    }

    /// Reads the whole remaining body into `out`, up to `limit` bytes received (framing
    /// included). Past it: `FileTooLarge`, and the connection is not reused.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        if let Framing::Length(n) = self.framing
            && n > limit as u64
        {
            return Err(too_large(limit));
        }
        while self.next(out).await? {
            if self.raw > limit as u64 {
                return Err(too_large(limit));
            }
        }
        Ok(())
    }

    /// The connection, if it can serve another request.
    pub(super) fn into_reusable(self) -> Option<Conn> {
        let reusable =
            self.keep_alive && self.is_done() && !self.conn.broken && self.conn.rbuf.is_empty();
        reusable.then_some(self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_content_types_need_no_allocation() {
        let sse = media_type(b"Text/Event-Stream");
        assert!(matches!(sse, Cow::Borrowed("text/event-stream")));
        let json = media_type(b"application/json; charset=utf-8");
        assert!(matches!(json, Cow::Borrowed(_)));
        let other = media_type(b"application/x-ndjson");
        assert!(matches!(&other, Cow::Owned(s) if s == "application/x-ndjson"));
    }

    #[test]
    fn a_head_past_the_bound_is_refused_however_it_arrives() {
        let mut head = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
        head.resize(MAX_HEAD + 100, b'a');
        head.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        // All in one read (complete at once), and in two (partial past the bound first).
        assert!(matches!(
            parse_head(&mut head.clone()),
            Err(HeadError::Malformed(_))
        ));
        let mut first = head[..MAX_HEAD + 10].to_vec();
        assert!(matches!(
            parse_head(&mut first),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn a_head_in_pieces_parses_once_complete() {
        let mut buf =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                .to_vec();
        assert!(parse_head(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n5\r\nhello");
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_type.as_deref(), Some("text/event-stream"));
        assert!(matches!(head.framing, Framing::Chunked(_)));
        assert_eq!(buf, b"5\r\nhello");
    }
}
