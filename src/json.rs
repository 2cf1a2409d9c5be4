//! Small JSON writing helpers for the hot path: escaping strings straight into output buffers,
//! so responses and log lines are built without an intermediate serialiser.

/// Appends `s` as a quoted JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s.as_bytes());
    out.push(b'"');
}

/// Appends the bytes of a JSON string body (without quotes), escaping what JSON requires.
/// Whether `s` has a byte a JSON string must escape (`push_escaped` would change it).
pub fn needs_escape(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

pub fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a float so that it stays a float (`1.0`, not `1`); `1e-7` is valid JSON. A
/// non-finite value has no JSON form and is written as `null` (a parsed body never holds one).
pub fn push_f64(out: &mut Vec<u8>, x: f64) {
    use std::io::Write;
    if x.is_finite() {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{x:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let s = "a\"b\\c\nd\u{1}é";
        let mut out = Vec::new();
        push_str(&mut out, s);
        let back: String = simd_json::from_slice(&mut out).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn needs_escape_agrees_with_push_escaped() {
        for s in [
            "gpt-4o-mini",
            "a\"b",
            "back\\slash",
            "tab\t",
            "\u{1f}",
            "é/ü:1",
        ] {
            let mut out = Vec::new();
            push_escaped(&mut out, s.as_bytes());
            assert_eq!(needs_escape(s.as_bytes()), out != s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn floats_stay_floats() {
        let mut out = Vec::new();
        for x in [1.0, 0.25, 1e-7, f64::NAN] {
            push_f64(&mut out, x);
            out.push(b' ');
        }
        assert_eq!(out, b"1.0 0.25 1e-7 null ");
    }
}

/// Appends a non-negative amount with exactly eight decimals (`0.00012500`), without the
/// float formatter (which costs more than the rest of a cost header).
pub fn push_fixed8(out: &mut Vec<u8>, v: f64) {
    let n = if v.is_finite() && v > 0.0 {
        (v * 1e8).round() as u64
    } else {
        0
    };
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n / 100_000_000).as_bytes());
    out.push(b'.');
    let frac = b.format(n % 100_000_000);
    out.extend(std::iter::repeat_n(b'0', 8 - frac.len()));
    out.extend_from_slice(frac.as_bytes());
}

#[cfg(test)]
mod fixed8_tests {
    #[test]
    fn eight_decimals() {
        for (v, want) in [
            (0.000125, "0.00012500"),
            (1.5, "1.50000000"),
            (0.0, "0.00000000"),
            (12.345678915, "12.34567892"),
        ] {
            let mut out = Vec::new();
            super::push_fixed8(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
