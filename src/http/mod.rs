//! HTTP/1.1 on monoio, written for a proxy: bounded heads and bodies, `Expect: 100-continue`,
//! responses built into reusable buffers, and a chunked writer that sends every SSE event the
//! moment it is ready.
//!
//! The codec is our own, on `httparse` (the parser monoio-http itself uses): monoio-http's server
//! decoder has no header or body limits and no 100-continue, its encoder batches writes up to
//! ~8 KiB (which would hold SSE events back), and its client has no pool. Owning the few hundred
//! lines here keeps every one of those properties visible and tested.

pub mod chunked;
pub mod conn;
pub mod io;
pub mod request;
pub mod response;
pub mod sse;

/// A header value without surrounding whitespace.
pub fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Whether a comma-separated header value lists `token` (case-insensitively).
pub fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// A `Content-Length` value: decimal digits only (no sign, no list), as RFC 9110 §8.6 has it;
/// `usize::from_str` alone would take `+5`.
pub fn content_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + (d - b'0') as usize))
}
