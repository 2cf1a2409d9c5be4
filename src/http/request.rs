//! Parsing an ingress request head. Only what the gateway acts on is kept, as byte ranges into
//! the connection's read buffer, so parsing a head allocates nothing.

use std::ops::Range;

use super::{content_length, has_token, trim};
use crate::error::{GatewayError, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    pub path: Range<usize>,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub expect_continue: bool,
    pub keep_alive: bool,
    /// The token of `Authorization: Bearer <token>`, or `x-api-key` / `x-goog-api-key`.
    pub api_key: Option<Range<usize>>,
    pub request_id: Option<Range<usize>>,
    /// `x-shardgate-tags`: a comma list routing rules match on.
    pub tags: Option<Range<usize>>,
    /// `Cache-Control`, for the response cache.
    pub cache_control: Option<Range<usize>>,
}

const MAX_HEADERS: usize = 100;

fn range_of(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more.
pub fn parse(buf: &[u8], max_header_bytes: usize) -> Result<Option<Head>, GatewayError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > max_header_bytes => return Err(too_large()),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => return Err(too_large()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(e) => {
            return Err(GatewayError::new(
                Kind::BadRequest,
                format!("malformed HTTP request: {e}"),
            ));
        }
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let path_str = req.path.unwrap_or("/");
    let path = range_of(buf, path_str.as_bytes());
    let http10 = req.version == Some(0);
    let mut head = Head {
        method,
        path,
        len,
        content_length: None,
        chunked: false,
        expect_continue: false,
        keep_alive: !http10,
        api_key: None,
        request_id: None,
        tags: None,
        cache_control: None,
    };
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim(h.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(value)
                .ok_or_else(|| GatewayError::new(Kind::BadRequest, "invalid Content-Length"))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(GatewayError::new(
                    Kind::BadRequest,
                    "conflicting Content-Length headers",
                ));
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if http10 {
                // RFC 9112 §6.1: an HTTP/1.0 peer cannot frame chunked; a proxy that guesses
                // is a smuggling vector.
                return Err(GatewayError::new(
                    Kind::BadRequest,
                    "Transfer-Encoding is not allowed on HTTP/1.0",
                ));
            }
            if head.chunked {
                return Err(GatewayError::new(
                    Kind::BadRequest,
                    "Transfer-Encoding sent twice",
                ));
            }
            if value.eq_ignore_ascii_case(b"chunked") {
                head.chunked = true;
            } else {
                return Err(GatewayError::new(
                    Kind::BadRequest,
                    "unsupported Transfer-Encoding",
                ));
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                head.keep_alive = false;
            } else if has_token(value, b"keep-alive") {
                head.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case(b"authorization") {
            if value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
                head.api_key = Some(range_of(buf, trim(&value[7..])));
            }
        } else if name.eq_ignore_ascii_case(b"x-api-key")
            || name.eq_ignore_ascii_case(b"x-goog-api-key")
        {
            // Anthropic's SDKs send `x-api-key`, Google's `x-goog-api-key`.
            if head.api_key.is_none() {
                head.api_key = Some(range_of(buf, value));
            }
        } else if name.eq_ignore_ascii_case(b"x-request-id") && valid_request_id(value) {
            head.request_id = Some(range_of(buf, value));
        } else if name.eq_ignore_ascii_case(b"x-shardgate-tags") {
            head.tags = Some(range_of(buf, value));
        } else if name.eq_ignore_ascii_case(b"cache-control") {
            head.cache_control = Some(range_of(buf, value));
        }
    }
    if head.chunked && head.content_length.is_some() {
        // RFC 9112 §6.3: both present is a smuggling vector; refuse instead of guessing.
        return Err(GatewayError::new(
            Kind::BadRequest,
            "both Content-Length and Transfer-Encoding sent",
        ));
    }
    Ok(Some(head))
}

fn too_large() -> GatewayError {
    GatewayError::new(Kind::HeaderTooLarge, "request headers too large")
}

/// Client request ids are echoed back and logged, so only short printable ones are taken.
fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 128 && v.iter().all(|&b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_the_gateway_needs() {
        let raw = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\
                    Authorization: Bearer sk-1\r\nExpect: 100-continue\r\nX-Request-Id: abc\r\n\r\nbody";
        let h = parse(raw, 1 << 15).unwrap().unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(&raw[h.path.clone()], b"/v1/chat/completions");
        assert_eq!(h.content_length, Some(12));
        assert!(h.expect_continue && h.keep_alive && !h.chunked);
        assert_eq!(&raw[h.api_key.clone().unwrap()], b"sk-1");
        assert_eq!(&raw[h.request_id.clone().unwrap()], b"abc");
        assert_eq!(&raw[h.len..], b"body");
    }

    #[test]
    fn partial_then_limits() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:", 1024).unwrap(), None);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            parse(big.as_bytes(), 1024).unwrap_err().kind,
            Kind::HeaderTooLarge
        );
        let partial_big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(2000));
        assert_eq!(
            parse(partial_big.as_bytes(), 1024).unwrap_err().kind,
            Kind::HeaderTooLarge
        );
        assert_eq!(
            parse(b"\x01\x02 nonsense\r\n\r\n", 1024).unwrap_err().kind,
            Kind::BadRequest
        );
    }

    #[test]
    fn refuses_ambiguous_framing_and_honours_close() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(raw, 1024).unwrap_err().kind, Kind::BadRequest);
        let raw = b"GET / HTTP/1.1\r\nConnection: close\r\nx-api-key: k\r\n\r\n";
        let h = parse(raw, 1024).unwrap().unwrap();
        assert!(!h.keep_alive);
        assert_eq!(&raw[h.api_key.unwrap()], b"k");
        let raw = b"POST / HTTP/1.1\r\nx-goog-api-key: g\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            &raw[parse(raw, 1024).unwrap().unwrap().api_key.unwrap()],
            b"g"
        );
        let h = parse(b"GET / HTTP/1.0\r\n\r\n", 1024).unwrap().unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn lenient_framing_is_refused() {
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ] {
            let e = parse(raw, 1024).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{}", String::from_utf8_lossy(raw));
        }
        let ok = parse(b"POST / HTTP/1.1\r\nContent-Length:  7 \r\n\r\n", 1024);
        assert_eq!(ok.unwrap().unwrap().content_length, Some(7));
    }
}
