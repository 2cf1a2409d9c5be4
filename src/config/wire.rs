//! Config text that goes on the wire: what may be written into an HTTP head.
//!
//! Secrets become `authorization`/`x-api-key` values, `base_url` becomes the request line and
//! `host`, names become `x-shardgate-target`, log fields and metric labels. The writers copy
//! these bytes as they are, so they are vetted here, once, at load: a CR, LF or NUL that got
//! through would split or truncate a head. Every check says what is wrong: the offending byte
//! and its offset. The secret check never repeats the value (nor does a URL with a password);
//! the others show it escaped.
//!
//! Offsets count bytes from the start of the value as read: for a secret, before trimming.

use std::borrow::Cow;

/// Bytes a name may hold besides ASCII letters and digits. Enough for every real model name
/// (`meta-llama/Llama-3.1-8B-Instruct`, `qwen2.5:7b`, `claude-3-5-sonnet@20240620`) and the
/// derived target names `provider/model`; nothing that needs quoting in a head, a log or a URL.
const NAME_PUNCTUATION: &[u8] = b"-._~:/@+";

/// Printable ASCII, space included: what a head value may hold.
fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(&b)
}

/// The offending byte, in words: `a control character (byte 0x0a at offset 5)`.
fn describe(b: u8, at: usize) -> String {
    let what = match b {
        0..0x20 | 0x7f => "a control character".to_owned(),
        0x80.. => "a non-ASCII byte".to_owned(),
        b' ' => "a space".to_owned(),
        _ => format!("the character {:?}", b as char),
    };
    format!("{what} (byte {b:#04x} at offset {at})")
}

/// `name` if it is a clean name, else its escaped form: safe to put in a problem's path.
pub(super) fn shown(name: &str) -> Cow<'_, str> {
    if !name.is_empty() && name.bytes().all(name_byte) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{name:?}"))
    }
}

/// A provider name, model alias, target name or key name: `A-Za-z0-9` and [`NAME_PUNCTUATION`].
pub(super) fn name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    match s.bytes().position(|b| !name_byte(b)) {
        None => Ok(()),
        Some(at) => Err(format!(
            "the name {s:?} contains {}; names may use only letters, digits and {}",
            describe(s.as_bytes()[at], at),
            spaced(NAME_PUNCTUATION)
        )),
    }
}

fn spaced(bytes: &[u8]) -> String {
    let chars: Vec<String> = bytes.iter().map(|&b| (b as char).to_string()).collect();
    chars.join(" ")
}

/// A secret as read from the environment or a file: trimmed of surrounding ASCII whitespace
/// (a file written by `echo` ends in `\n`), then non-empty and printable ASCII (spaces inside
/// allowed). The error completes "the value from env NAME …" and never shows the secret.
pub(super) fn secret(raw: &[u8]) -> Result<String, String> {
    let lead = raw.len() - raw.trim_ascii_start().len();
    let value = raw.trim_ascii();
    if value.is_empty() {
        return Err("is empty".into());
    }
    if let Some(at) = value.iter().position(|&b| !printable(b)) {
        return Err(format!("contains {}", describe(value[at], lead + at)));
    }
    // Printable ASCII only, so this is valid UTF-8.
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// A configured upstream header name (an RFC 9110 token, narrowed) and value (printable ASCII,
/// spaces only inside). Headers the gateway writes itself, or that frame the message, are
/// refused: a second `content-length` or a `transfer-encoding` would change where the upstream
/// thinks the body ends.
pub(super) fn header(name: &str, value: &str) -> Result<(), String> {
    const OWN: [&str; 9] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    ];
    if name.is_empty() {
        return Err("a header name must not be empty".into());
    }
    if let Some(at) = name
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(format!(
            "the header name contains {}; header names may use only letters, digits, - and _",
            describe(name.as_bytes()[at], at)
        ));
    }
    if OWN.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} is set by the gateway and cannot be configured"
        ));
    }
    header_value(value)
}

/// A header value from config (`headers`, `organization`, `anthropic_version`, …).
pub(super) fn header_value(value: &str) -> Result<(), String> {
    if let Some(at) = value.bytes().position(|b| !printable(b)) {
        return Err(format!(
            "{value:?} contains {}",
            describe(value.as_bytes()[at], at)
        ));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(format!("{value:?} must not start or end with a space"));
    }
    Ok(())
}

/// A `base_url` as written: no control character, whitespace or non-ASCII byte anywhere (a
/// trailing newline is an error, not trimmed: a URL is not a secret read from a file), and no
/// `user:password@` (the error does not repeat the URL then, as it holds a password).
pub(super) fn base_url(url: &str) -> Result<(), String> {
    if let Some(at) = url.bytes().position(|b| b == b' ' || !printable(b)) {
        let hint = if url.as_bytes()[at] >= 0x80 {
            " (write a non-ASCII host in its xn-- form and percent-encode the path)"
        } else {
            ""
        };
        return Err(format!(
            "{url:?} contains {}{hint}",
            describe(url.as_bytes()[at], at)
        ));
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "must not contain user:password@ (credentials go in api_key or headers)".into(),
        );
    }
    Ok(())
}

/// `http[s]://host[:port][/path]` → (tls, host, port, path without trailing slash). The host
/// is a DNS name or IPv4 address (letters, digits, `-`, `.`, `_`) or a bracketed IPv6 address.
pub(super) fn split_url(url: &str) -> Result<(bool, String, u16, String), &'static str> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("must start with http:// or https://");
    };
    if rest.contains(['?', '#']) {
        return Err("must not contain a query or fragment");
    }
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port, v6) = if let Some(h) = hostport.strip_prefix('[') {
        let end = h.find(']').ok_or("unclosed [ in host")?;
        let port = &h[end + 1..];
        (&h[..end], port.strip_prefix(':'), true)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (hostport, None, false),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let host_ok = if v6 {
        host.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !host_ok {
        return Err("has an invalid host");
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| "has an invalid port")?,
        None if tls => 443,
        None => 80,
    };
    Ok((
        tls,
        host.to_owned(),
        port,
        path.trim_end_matches('/').to_owned(),
    ))
}
