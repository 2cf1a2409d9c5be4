//! Just enough HTTP/1.1 for the load generator: the request bytes (built once per run), the
//! response head (`httparse`) and an incremental body decoder for Content-Length, chunked and
//! close-delimited bodies that hands out body data as it arrives without buffering it.

use std::fmt;

/// A malformed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// Builds the request bytes. A body gets a `Content-Length`, and `Content-Type:
/// application/json` unless the headers name a content type.
pub fn build_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut r = Vec::with_capacity(256 + body.len());
    r.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !body.is_empty() || method == "POST" || method == "PUT" {
        if !has("content-type") {
            r.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The parts of a response head the load generator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub body: BodyKind,
    /// The server will close the connection after this response.
    pub close: bool,
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses a response head at the start of `buf`: `Ok(None)` if it is not complete yet, else the
/// head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(err(format!("bad response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut close = resp.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| err("bad content-length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(err("conflicting content-length headers"));
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(h.value, "chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, "close") {
                close = true;
            } else if has_token(h.value, "keep-alive") {
                close = false;
            }
        }
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyKind::Empty
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        close = true;
        BodyKind::UntilClose
    };
    Ok(Some((
        Head {
            status,
            body,
            close,
        },
        len,
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Decodes one response body incrementally.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub fn new(kind: BodyKind) -> BodyDecoder {
        let state = match kind {
            BodyKind::Empty | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::ChunkSize,
            BodyKind::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// The whole body has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes from `buf`, passing body data to `data`, and returns how many bytes it
    /// used. Bytes left over are either the start of an incomplete chunk-size or trailer line
    /// (feed them again with more data) or, once done, bytes after this response.
    pub fn feed(&mut self, buf: &[u8], data: &mut impl FnMut(&[u8])) -> Result<usize, ParseError> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.state {
                State::Done => return Ok(pos),
                State::UntilClose => {
                    if !rest.is_empty() {
                        data(rest);
                    }
                    return Ok(buf.len());
                }
                _ if rest.is_empty() => return Ok(pos),
                State::Length(n) | State::ChunkData(n) => {
                    let take = rest.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    data(&rest[..take]);
                    pos += take;
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        pos += used;
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > 1024 {
                            return Err(err("chunk-size line too long"));
                        }
                        return Ok(pos);
                    }
                    Err(_) => return Err(err("bad chunk size")),
                },
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        if rest != b"\r" {
                            return Err(err("missing CRLF after chunk data"));
                        }
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(err("missing CRLF after chunk data"));
                    }
                    pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        let line = &rest[..i];
                        pos += i + 1;
                        if line.is_empty() || line == b"\r" {
                            self.state = State::Done;
                        }
                    }
                    None if rest.len() > 8192 => return Err(err("trailer line too long")),
                    None => return Ok(pos),
                },
            }
        }
    }

    /// The connection ended: fine for a close-delimited body, an error otherwise.
    pub fn eof(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(err("connection closed before the end of the body")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> (Head, usize) {
        parse_head(s.as_bytes()).unwrap().unwrap()
    }

    /// Feeds `input` in pieces of `step` bytes like a socket would (keeping unconsumed bytes),
    /// returning the decoded body, whether it completed and the bytes left after it.
    fn decode(kind: BodyKind, input: &[u8], step: usize) -> (Vec<u8>, bool, Vec<u8>) {
        let mut d = BodyDecoder::new(kind);
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut consumed = 0;
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            let used = d.feed(&pending, &mut |b| out.extend_from_slice(b)).unwrap();
            pending.drain(..used);
            consumed += used;
            if d.is_done() {
                break;
            }
        }
        (out, d.is_done(), input[consumed..].to_vec())
    }

    #[test]
    fn request_bytes() {
        let h = vec![("Authorization".to_string(), "Bearer x".to_string())];
        let r = build_request("POST", "127.0.0.1:80", "/v1/x", &h, b"{}");
        assert_eq!(
            r,
            b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:80\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nAuthorization: Bearer x\r\n\r\n{}"
        );
        let h = vec![("content-type".to_string(), "text/plain".to_string())];
        let r = build_request("POST", "h", "/", &h, b"a");
        assert!(!String::from_utf8(r).unwrap().contains("application/json"));
        let r = build_request("GET", "h", "/m", &[], b"");
        assert_eq!(r, b"GET /m HTTP/1.1\r\nHost: h\r\n\r\n");
    }

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        let (h, n) = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(n, 38);
        assert_eq!(
            (h.status, h.body, h.close),
            (200, BodyKind::Length(5), false)
        );
        let (h, _) = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.body, BodyKind::Chunked);
        let (h, _) = head("HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            (h.status, h.body, h.close),
            (503, BodyKind::Length(0), true)
        );
        let (h, _) = head("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!((h.body, h.close), (BodyKind::UntilClose, true));
        let (h, _) = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.close);
        let (h, _) = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(h.body, BodyKind::Empty);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn content_length_body_in_any_pieces() {
        for step in [1, 2, 3, 7, 100] {
            let (out, done, rest) = decode(BodyKind::Length(5), b"helloHTTP/1.1", step);
            assert_eq!(out, b"hello");
            assert!(done);
            assert_eq!(rest, b"HTTP/1.1", "step {step}");
        }
    }

    #[test]
    fn chunked_body_in_any_pieces() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 5, 8, 13, 1000] {
            let (out, done, rest) = decode(BodyKind::Chunked, wire, step);
            assert_eq!(out, b"hello 0123456789", "step {step}");
            assert!(done, "step {step}");
            assert_eq!(rest, b"NEXT", "step {step}");
        }
    }

    #[test]
    fn bad_chunked_bodies() {
        let mut d = BodyDecoder::new(BodyKind::Chunked);
        assert!(d.feed(b"zz\r\n", &mut |_| {}).is_err());
        let mut d = BodyDecoder::new(BodyKind::Chunked);
        assert!(d.feed(b"1\r\nab", &mut |_| {}).is_err());
        let mut d = BodyDecoder::new(BodyKind::Chunked);
        assert_eq!(d.feed(b"3\r\nab", &mut |_| {}).unwrap(), 5);
        assert!(d.eof().is_err());
    }

    #[test]
    fn close_delimited_body() {
        let mut d = BodyDecoder::new(BodyKind::UntilClose);
        let mut n = 0;
        assert_eq!(d.feed(b"abc", &mut |b| n += b.len()).unwrap(), 3);
        assert!(!d.is_done());
        d.eof().unwrap();
        assert!(d.is_done());
        assert_eq!(n, 3);
    }
}
