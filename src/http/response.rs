//! Writing response heads and whole responses into a connection's reusable write buffer.
//!
//! This is the one place response heads are written, so it is the one place their values are
//! vetted: every value (request ids, target names, content types and `retry-after` from an
//! upstream, field names from a request body) goes through [`push_value`], and no CR, LF, NUL
//! or other control byte can reach a client's head whatever a request or an upstream sent.

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
    /// The tightest limits' state, as rate-limit headers in the client's protocol's names.
    pub rates: Option<&'a Rates>,
    /// `x-shardgate-cache`: what the response cache did.
    pub cache: Option<&'static str>,
    /// `x-shardgate-guardrails`: the guardrail verdicts so far.
    pub guardrails: Option<&'a str>,
}

/// One limit's state for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window resets.
    pub reset_ms: i64,
}

/// The rate-limit headers of a response: the tightest request limit and the tightest token
/// limit that applied to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// `anthropic-ratelimit-*` (RFC 3339 resets) instead of OpenAI's `x-ratelimit-*`
    /// (duration resets such as `6m0s`).
    pub anthropic: bool,
    pub now_ms: i64,
    pub requests: Option<Rate>,
    pub tokens: Option<Rate>,
}

/// Header names of a limit's state: (limit, remaining, reset), by protocol then by kind.
const RATE_NAMES: [[[&str; 3]; 2]; 2] = [
    [
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
        [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
    ],
    [
        [
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
        ],
        [
            "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
        ],
    ],
];

impl Rates {
    fn write(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        let names = &RATE_NAMES[usize::from(self.anthropic)];
        for (names, rate) in names.iter().zip([self.requests, self.tokens]) {
            let Some(r) = rate else { continue };
            for (name, value) in names.iter().zip([r.limit, r.remaining]) {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(num.format(value).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(names[2].as_bytes());
            out.extend_from_slice(b": ");
            if self.anthropic {
                let at = crate::observe::time::iso8601(self.now_ms + r.reset_ms.max(0) + 999);
                out.extend_from_slice(at.as_bytes());
            } else {
                push_duration(out, r.reset_ms);
            }
        }
    }
}

/// OpenAI's reset format: `20ms`, `1s`, `12.5s`, `6m0s`, `1h2m3s`.
pub fn push_duration(out: &mut Vec<u8>, ms: i64) {
    let ms = ms.max(0) as u64;
    let mut num = itoa::Buffer::new();
    if ms < 1000 {
        out.extend_from_slice(num.format(ms).as_bytes());
        out.extend_from_slice(b"ms");
        return;
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    if h > 0 {
        out.extend_from_slice(num.format(h).as_bytes());
        out.push(b'h');
    }
    if h > 0 || m > 0 {
        out.extend_from_slice(num.format(m).as_bytes());
        out.push(b'm');
    }
    out.extend_from_slice(num.format(ms / 1000 % 60).as_bytes());
    let frac = ms % 1000;
    if frac > 0 {
        // Milliseconds as a decimal fraction, trailing zeros dropped (`.5`, `.25`, `.125`).
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let keep = 3 - digits.iter().rev().take_while(|d| **d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..keep]);
    }
    out.push(b's');
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
    push_value(out, content_type.as_bytes());
    match body_len {
        Some(n) => {
            out.extend_from_slice(b"\r\ncontent-length: ");
            out.extend_from_slice(num.format(n).as_bytes());
        }
        None => out.extend_from_slice(b"\r\ntransfer-encoding: chunked\r\ncache-control: no-cache"),
    }
    out.extend_from_slice(b"\r\nx-request-id: ");
    push_value(out, meta.request_id);
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
        push_value(out, target.as_bytes());
        out.extend_from_slice(b"\r\nx-shardgate-attempts: ");
        out.extend_from_slice(num.format(attempts).as_bytes());
    }
    if let Some(rates) = meta.rates {
        rates.write(out);
    }
    if let Some(c) = meta.cache {
        out.extend_from_slice(b"\r\nx-shardgate-cache: ");
        out.extend_from_slice(c.as_bytes());
    }
    if let Some(g) = meta.guardrails {
        out.extend_from_slice(b"\r\nx-shardgate-guardrails: ");
        push_value(out, g.as_bytes());
    }
    for (name, value) in extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        push_value(out, value);
    }
    out.extend_from_slice(if meta.keep_alive {
        b"\r\nconnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nconnection: close\r\n\r\n"
    });
}

/// Appends a header value with every byte outside printable ASCII (controls, DEL, non-ASCII)
/// percent-encoded, and leading or trailing spaces too, so a value can neither end the header
/// nor change its meaning. Values are almost always clean: one scan, then one copy.
pub fn push_value(out: &mut Vec<u8>, v: &[u8]) {
    let clean = |b: u8| (0x21..0x7f).contains(&b);
    // One subtraction and compare per byte, without an early exit, so it vectorises: this
    // runs on every value of every response.
    let printable = v
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f));
    let ok =
        printable && v.first().is_none_or(|&b| b != b' ') && v.last().is_none_or(|&b| b != b' ');
    if ok {
        out.extend_from_slice(v);
        return;
    }
    let last = v.len().saturating_sub(1);
    for (i, &b) in v.iter().enumerate() {
        if clean(b) || (b == b' ' && i != 0 && i != last) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

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
    wire.ingress().error_body(err, &mut body);
    let mut secs = itoa::Buffer::new();
    let mut ms = itoa::Buffer::new();
    let extra: &[(&str, &[u8])] = match (err.kind, err.retry_after_s) {
        (crate::error::Kind::MethodNotAllowed, _) => &[("allow", b"GET, POST")],
        // The SDKs read `retry-after-ms` first: a limit's exact wait, not rounded up.
        (crate::error::Kind::RateLimited | crate::error::Kind::BudgetExceeded, Some(s)) => &[
            ("retry-after", secs.format(s).as_bytes()),
            (
                "retry-after-ms",
                ms.format(err.retry_after_ms.unwrap_or(s * 1000)).as_bytes(),
            ),
        ],
        (_, Some(s)) => &[("retry-after", secs.format(s).as_bytes())],
        _ => &[],
    };
    full(out, err.status(), JSON, &body, meta, extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_headers_in_each_protocols_names() {
        let rates = Rates {
            anthropic: false,
            now_ms: 1_764_687_845_000,
            requests: Some(Rate {
                limit: 600,
                remaining: 599,
                reset_ms: 360_000,
            }),
            tokens: Some(Rate {
                limit: 100_000,
                remaining: 99_000,
                reset_ms: 12_500,
            }),
        };
        let mut out = Vec::new();
        rates.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("x-ratelimit-limit-requests: 600\r\n"));
        assert!(text.contains("x-ratelimit-remaining-requests: 599\r\n"));
        assert!(text.contains("x-ratelimit-reset-requests: 6m0s\r\n"));
        assert!(text.ends_with("x-ratelimit-reset-tokens: 12.5s"));
        let mut out = Vec::new();
        Rates {
            anthropic: true,
            ..rates
        }
        .write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("anthropic-ratelimit-requests-remaining: 599\r\n"));
        assert!(text.contains("anthropic-ratelimit-tokens-reset: 2025-12-02T15:04:18Z"));
        for (ms, want) in [
            (20, "20ms"),
            (1_000, "1s"),
            (61_000, "1m1s"),
            (3_723_000, "1h2m3s"),
        ] {
            let mut out = Vec::new();
            push_duration(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn no_value_can_break_a_head() {
        let mut out = Vec::new();
        let meta = Meta {
            request_id: b"id\r\nset-cookie: a=b",
            keep_alive: true,
            timing: None,
            route: Some(("t\n\0x", 2)),
            rates: None,
            cache: None,
            guardrails: None,
        };
        let extra: &[(&str, &[u8])] = &[
            ("x-shardgate-dropped", b"a\r\n\r\nHTTP/1.1 200"),
            ("retry-after", b" 5 \x7f\xff"),
        ];
        full(&mut out, 200, "text/plain\r\nx: y", b"{}", &meta, extra);
        let head = &out[..out.len() - 2];
        let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
        // Every line ends in CR, and no byte but CRLF is a control byte.
        for l in &lines[..lines.len() - 1] {
            assert_eq!(l.last(), Some(&b'\r'), "{}", String::from_utf8_lossy(l));
            assert!(l[..l.len() - 1].iter().all(|&b| (0x20..0x7f).contains(&b)));
        }
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("x-request-id: id%0D%0Aset-cookie: a=b\r\n"),
            "{s}"
        );
        assert!(s.contains("x-shardgate-target: t%0A%00x\r\n"));
        assert!(s.contains("content-type: text/plain%0D%0Ax: y\r\n"));
        assert!(s.contains("retry-after: %205 %7F%FF\r\n"), "{s}");
        let mut clean = Vec::new();
        push_value(&mut clean, b"application/json; charset=utf-8");
        assert_eq!(clean, b"application/json; charset=utf-8");
    }

    #[test]
    fn head_has_length_id_timing_and_connection() {
        let mut out = Vec::new();
        let meta = Meta {
            request_id: b"req-1",
            keep_alive: true,
            timing: Some((52, Some(12_301))),
            route: None,
            rates: None,
            cache: None,
            guardrails: None,
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
