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

/// A request target without its query.
pub fn without_query(path: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', path) {
        Some(q) => &path[..q],
        None => path,
    }
}

/// `s` with its `%XX` escapes decoded (a malformed escape is kept as it is; bytes that do not
/// make UTF-8 become U+FFFD). Borrowed when there is nothing to decode.
pub fn percent_decoded(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod percent_tests {
    #[test]
    fn escapes_decode_and_bad_ones_stay() {
        assert_eq!(super::percent_decoded("gemini-2.5"), "gemini-2.5");
        assert_eq!(super::percent_decoded("my%2Falias%3a1"), "my/alias:1");
        assert_eq!(super::percent_decoded("100%"), "100%");
        assert_eq!(super::percent_decoded("%zz%4"), "%zz%4");
    }
}
