//! Payment card numbers: 13–19 digits, written whole or in groups split by single spaces or
//! dashes (one kind per number), passing Luhn, with a known issuer prefix and a length that
//! issuer uses.
//!
//! Grouped numbers start with a group of four (every issuer prints them so) and continue in
//! groups of three to six; the longest valid number from the start wins, so `4111 1111 1111
//! 1111 exp 12` is the card and the expiry. Detection reads at most [`SPAN`] bytes from the
//! start.

use super::class::{digit_at, numeric_end};

const MAX_DIGITS: usize = 19;
/// The most bytes read from a start: 20 digits and the separators between them.
pub(super) const SPAN: usize = 2 * (MAX_DIGITS + 1) + 1;

/// The end of the card number starting at `i` (a numeric start), if there is one.
pub(super) fn at(t: &[u8], i: usize) -> Option<usize> {
    let mut digits = [0u8; MAX_DIGITS];
    let first = super::class::run(t, i, MAX_DIGITS, |b| b.is_ascii_digit());
    if first > MAX_DIGITS {
        return None;
    }
    digits[..first].copy_from_slice(&t[i..i + first]);
    let mut j = i + first;
    if first >= 13 {
        return (numeric_end(t, j) && valid(&digits[..first])).then_some(j);
    }
    if first != 4 || j >= t.len() || !matches!(t[j], b' ' | b'-') || !digit_at(t, j + 1) {
        return None;
    }
    let sep = t[j];
    let mut n = first;
    let mut best = None;
    while j < t.len() && t[j] == sep && digit_at(t, j + 1) {
        let len = super::class::run(t, j + 1, 6, |b| b.is_ascii_digit());
        if !(3..=6).contains(&len) || n + len > MAX_DIGITS {
            break;
        }
        digits[n..n + len].copy_from_slice(&t[j + 1..j + 1 + len]);
        n += len;
        j += 1 + len;
        if n >= 13 && end_ok(t, j, sep) && valid(&digits[..n]) {
            best = Some(j);
        }
    }
    best
}

/// A grouped number may be followed by another space-separated number, not by more dashes.
fn end_ok(t: &[u8], j: usize, sep: u8) -> bool {
    if sep == b' ' && j < t.len() && t[j] == b' ' {
        return true;
    }
    numeric_end(t, j)
}

/// Luhn, issuer prefix and issuer length, on ASCII digits.
pub(super) fn valid(d: &[u8]) -> bool {
    issuer_ok(d) && luhn(d)
}

pub(super) fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &b) in d.iter().rev().enumerate() {
        let mut v = u32::from(b - b'0');
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix(d: &[u8], n: usize) -> u32 {
    d[..n].iter().fold(0, |v, &b| v * 10 + u32::from(b - b'0'))
}

fn issuer_ok(d: &[u8]) -> bool {
    let len = d.len();
    let (p1, p2, p3, p4) = (prefix(d, 1), prefix(d, 2), prefix(d, 3), prefix(d, 4));
    match p1 {
        // Visa.
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard, old and 2-series.
        5 => (51..=55).contains(&p2) && len == 16,
        2 => (2221..=2720).contains(&p4) && len == 16,
        // Amex 34/37, JCB 35, Diners 36/38/300–305.
        3 => match p2 {
            34 | 37 => len == 15,
            35 => (16..=19).contains(&len),
            36 | 38 => (14..=19).contains(&len),
            30 => (300..=305).contains(&p3) && (14..=19).contains(&len),
            _ => false,
        },
        // Discover.
        6 => (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) && (16..=19).contains(&len),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(text: &str) -> Option<&str> {
        at(text.as_bytes(), 0).map(|e| &text[..e])
    }

    #[test]
    fn finds_issuer_numbers_that_pass_luhn() {
        for n in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "4222222222222",
        ] {
            assert_eq!(card(n), Some(n), "{n}");
        }
        assert_eq!(
            card("4111 1111 1111 1111 exp 12/29"),
            Some("4111 1111 1111 1111")
        );
        assert_eq!(
            card("4111 1111 1111 1111, thanks"),
            Some("4111 1111 1111 1111")
        );
    }

    #[test]
    fn rejects_order_numbers_and_runs() {
        for n in [
            "4111111111111112",      // Luhn fails
            "1234567812345670",      // Luhn passes, no issuer
            "9111111111111111",      // no issuer
            "41111111111111111111",  // 20 digits
            "4111-1111-1111-1111-2", // dashed run carries on
            "4111 1111-1111 1111",   // mixed separators
            "4111111111111111.5",
            "4111111111111111abc",
            "41 11 11 11 11 11 11 11",
            "3782 82 2463 10005",
        ] {
            assert_eq!(card(n), None, "{n}");
        }
    }
}
