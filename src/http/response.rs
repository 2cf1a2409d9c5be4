//! Writing response heads and whole responses into a connection's reusable write buffer.

use crate::error::GatewayError;
use crate::providers::translate::Wire;

/// What every response of the gateway carries besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub request_id: &'a [u8],
    pub keep_alive: bool,
    /// `server-timing`: the gateway's own time and the upstream's, in microseconds.
    pub timing: Option<(u64, Option<u64>)>,
    /// `x-shardgate-target` and `x-shardgate-attempts`: the target that served (or failed
    /// last) and how many upstream attempts the request made.
    pub route: Option<(&'a str, u8)>,
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
pub const JSON: &str = "application/json";
pub const SSE: &str = "text/event-stream";

/// Appends a response head. `body_len: None` means a chunked body follows.
pub fn head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body_len: Option<usize>,
    meta: &Meta<'_>,
    extra: &[(&str, &[u8])],
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: ");
    out.extend_from_slice(content_type.as_bytes());
    match body_len {
        Some(n) => {
            out.extend_from_slice(b"\r\ncontent-length: ");
            out.extend_from_slice(num.format(n).as_bytes());
        }
        None => out.extend_from_slice(b"\r\ntransfer-encoding: chunked\r\ncache-control: no-cache"),
    }
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(meta.request_id);
    if let Some((gateway, upstream)) = meta.timing {
        out.extend_from_slice(b"\r\nserver-timing: gateway;dur=");
        push_ms(out, gateway);
        if let Some(u) = upstream {
            out.extend_from_slice(b", upstream;dur=");
            push_ms(out, u);
        }
    }
    if let Some((target, attempts)) = meta.route {
        out.extend_from_slice(b"\r\nx-shardgate-target: ");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b"\r\nx-shardgate-attempts: ");
        out.extend_from_slice(num.format(attempts).as_bytes());
    }
    for (name, value) in extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    out.extend_from_slice(if meta.keep_alive {
        b"\r\nconnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nconnection: close\r\n\r\n"
    });
}

/// Microseconds as milliseconds with three decimals, the unit `server-timing` uses.
fn push_ms(out: &mut Vec<u8>, us: u64) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(us / 1000).as_bytes());
    out.push(b'.');
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// A whole response with a body.
pub fn full(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    meta: &Meta<'_>,
    extra: &[(&str, &[u8])],
) {
    head(out, status, content_type, Some(body.len()), meta, extra);
    out.extend_from_slice(body);
}

/// An error response in the ingress's shape (OpenAI's or Anthropic's error JSON).
pub fn error(out: &mut Vec<u8>, err: &GatewayError, meta: &Meta<'_>, wire: Wire) {
    let mut body = Vec::with_capacity(160);
    match wire {
        Wire::OpenAi => err.write_openai_body(&mut body),
        Wire::Anthropic => err.write_anthropic_body(&mut body),
    }
    let mut secs = itoa::Buffer::new();
    let extra: &[(&str, &[u8])] = match (err.kind, err.retry_after_s) {
        (crate::error::Kind::MethodNotAllowed, _) => &[("allow", b"GET, POST")],
        (_, Some(s)) => &[("retry-after", secs.format(s).as_bytes())],
        _ => &[],
    };
    full(out, err.kind.status(), JSON, &body, meta, extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_length_id_timing_and_connection() {
        let mut out = Vec::new();
        let meta = Meta {
            request_id: b"req-1",
            keep_alive: true,
            timing: Some((52, Some(12_301))),
            route: None,
        };
        full(&mut out, 200, JSON, b"{}", &meta, &[]);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("content-length: 2\r\n"));
        assert!(s.contains("x-request-id: req-1\r\n"));
        assert!(s.contains("server-timing: gateway;dur=0.052, upstream;dur=12.301\r\n"));
        assert!(s.ends_with("connection: keep-alive\r\n\r\n{}"));
    }
}
