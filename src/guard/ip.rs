//! IP addresses: IPv4 dotted quads and IPv6 in its full and `::`-compressed forms.
//!
//! IPv4: four decimal octets 0–255 without leading zeros, not inside a longer dotted or
//! numeric run (`1.2.3.4.5`, `v1.2.3.4`). IPv6: a run of hex digits, colons and (for a
//! trailing IPv4 part) dots with at least two colons, two non-empty groups and four hex
//! digits — so `a::b` in code, `x[::2]` slices and `12:30:45` times are not addresses — that
//! std's parser accepts. Detection reads at most [`SPAN`] bytes around a match.

use std::net::Ipv6Addr;
use std::str::FromStr;

use super::class::{digit_at, is_word, word_at};

/// The longest IPv6 text (`ffff:…:255.255.255.255`, 45 bytes) with a byte either side, read
/// from a colon in either direction.
pub(super) const SPAN: usize = 2 * 46 + 2;
const V6_MAX: usize = 45;

/// The end of the IPv4 address starting at the digit at `i`.
pub(super) fn v4(t: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (is_word(t[i - 1]) || t[i - 1] == b'.') {
        return None;
    }
    let mut j = i;
    for octet in 0..4 {
        if octet > 0 {
            if t.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let len = super::class::run(t, j, 3, |b| b.is_ascii_digit());
        if len == 0 || len > 3 || (len > 1 && t[j] == b'0') {
            return None;
        }
        let v = t[j..j + len]
            .iter()
            .fold(0u32, |v, &b| v * 10 + u32::from(b - b'0'));
        if v > 255 {
            return None;
        }
        j += len;
    }
    let more = t.get(j) == Some(&b'.') && digit_at(t, j + 1);
    (!word_at(t, j) && !more).then_some(j)
}

fn is_v6(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':'
}

/// The IPv6 address around the colon at `c`, as `(start, end)`.
pub(super) fn v6(t: &[u8], c: usize) -> Option<(usize, usize)> {
    let before = c > 0 && is_v6(t[c - 1]);
    let after = c + 1 < t.len() && is_v6(t[c + 1]);
    if !before || !after {
        // `::1`-style starts still have a colon next to this one.
        if !(after && t[c + 1] == b':') {
            return None;
        }
    }
    let mut start = c;
    while start > 0 && c - start <= V6_MAX && is_v6(t[start - 1]) {
        start -= 1;
    }
    let mut end = c;
    while end < t.len() && end - start <= V6_MAX && (is_v6(t[end]) || t[end] == b'.') {
        end += 1;
    }
    if end - start > V6_MAX || (start > 0 && (is_word(t[start - 1]) || t[start - 1] == b'.')) {
        return None;
    }
    // A sentence may end right after the address: `… at fe80::1.` or `fe80::1:`.
    while end > start && t[end - 1] == b'.' {
        end -= 1;
    }
    if end >= start + 2 && t[end - 1] == b':' && t[end - 2] != b':' {
        end -= 1;
    }
    if word_at(t, end) || plausible(&t[start..end]).is_none() {
        return None;
    }
    Some((start, end))
}

fn plausible(s: &[u8]) -> Option<()> {
    let colons = s.iter().filter(|&&b| b == b':').count();
    let groups = s.split(|&b| b == b':').filter(|g| !g.is_empty()).count();
    let hex = s.iter().filter(|b| b.is_ascii_hexdigit()).count();
    let digit = s.iter().any(u8::is_ascii_digit);
    if colons < 2 || groups < 2 || hex < 4 || !digit {
        return None;
    }
    Ipv6Addr::from_str(std::str::from_utf8(s).ok()?)
        .ok()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4s(text: &str) -> Option<&str> {
        v4(text.as_bytes(), 0).map(|e| &text[..e])
    }

    fn v6s(text: &str) -> Option<&str> {
        let c = text.find(':')?;
        v6(text.as_bytes(), c).map(|(s, e)| &text[s..e])
    }

    #[test]
    fn finds_ipv4() {
        assert_eq!(v4s("192.168.0.1"), Some("192.168.0.1"));
        assert_eq!(v4s("10.0.0.255."), Some("10.0.0.255"));
        assert_eq!(v4s("0.0.0.0:8080"), Some("0.0.0.0"));
        assert_eq!(v4(b"v1.2.3.4", 1), None);
        assert_eq!(v4(b"x 8.8.8.8 y", 2), Some(9));
    }

    #[test]
    fn rejects_non_ipv4() {
        for s in [
            "1.2.3.4.5",
            "1.2.3",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4a",
            "1..2.3",
        ] {
            assert_eq!(v4s(s), None, "{s}");
        }
        assert_eq!(v4(b"1.2.3.4.5", 2), None);
    }

    #[test]
    fn finds_ipv6() {
        for s in [
            "2001:db8::1",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::ffff:192.0.2.128",
        ] {
            assert_eq!(v6s(s), Some(s), "{s}");
        }
        assert_eq!(v6s("[2001:db8::1]:443"), Some("2001:db8::1"));
        assert_eq!(v6s("at fe80::1234."), Some("fe80::1234"));
    }

    #[test]
    fn rejects_non_ipv6() {
        for s in [
            "std::io",
            "Vec::new()",
            "a::b",
            "x[::2]",
            "x[1::2]",
            "12:30:45",
            "00:1a:2b:3c:4d:5e",
            "::",
            "::1",
            "Note: fine",
            "http://x",
        ] {
            assert_eq!(v6s(s), None, "{s}");
        }
    }
}
