//! Phone numbers in the two shapes people write them: international (`+` country code, then
//! digits in groups split by single spaces, dashes or dots, with at most one parenthesised
//! group, 8–15 digits in all) and North American (`(555) 123-4567`, `555-123-4567`,
//! `555.123.4567`).
//!
//! Deliberately not phones: bare digit runs, ISO dates, versions and card numbers (the card
//! detector runs first at the same start). Detection reads at most [`SPAN`] bytes.

use super::class::{digit_at, numeric_end, run, word_at};

const MAX_DIGITS: usize = 15;
/// The most bytes read from a start: 16 digits, a separator after each, two parentheses.
pub(super) const SPAN: usize = 2 * (MAX_DIGITS + 1) + 4;

/// `555-123-4567` or `555.123.4567` at `i` (a numeric start), or either after a trunk
/// prefix written the same way (`1-800-555-0199`).
pub(super) fn north_american(t: &[u8], i: usize) -> Option<usize> {
    if t[i] == b'1' && matches!(t.get(i + 1), Some(b'-' | b'.')) {
        let with_trunk = ten_digits(t, i + 2).filter(|_| t.get(i + 5) == t.get(i + 1));
        if with_trunk.is_some() {
            return with_trunk;
        }
    }
    ten_digits(t, i)
}

fn ten_digits(t: &[u8], i: usize) -> Option<usize> {
    let s = t.get(i..i + 12)?;
    let sep = s[3];
    let shape = matches!(sep, b'-' | b'.')
        && s[7] == sep
        && s.iter()
            .enumerate()
            .all(|(k, &b)| k == 3 || k == 7 || b.is_ascii_digit());
    (shape && numeric_end(t, i + 12)).then_some(i + 12)
}

/// `(555) 123-4567`, `(555)123.4567` or `(555) 123 4567` at the `(` at `i`.
pub(super) fn parenthesised(t: &[u8], i: usize) -> Option<usize> {
    if i > 0 && word_at(t, i - 1) {
        return None;
    }
    let s = t.get(i..)?;
    if s.len() < 13 || run(s, 1, 3, |b| b.is_ascii_digit()) != 3 || s[4] != b')' {
        return None;
    }
    let j = if s[5] == b' ' { 6 } else { 5 };
    let rest = s.get(j..j + 8)?;
    let shape = run(rest, 0, 3, |b| b.is_ascii_digit()) == 3
        && matches!(rest[3], b'-' | b'.' | b' ')
        && run(rest, 4, 4, |b| b.is_ascii_digit()) == 4;
    (shape && numeric_end(t, i + j + 8)).then_some(i + j + 8)
}

/// `+<country><digits>` at the `+` at `i`.
pub(super) fn international(t: &[u8], i: usize) -> Option<usize> {
    if (i > 0 && (word_at(t, i - 1) || t[i - 1] == b'+'))
        || !matches!(t.get(i + 1), Some(b'1'..=b'9'))
    {
        return None;
    }
    let mut j = i + 1;
    let mut digits = 0;
    let mut paren = false;
    let mut end;
    loop {
        if t.get(j) == Some(&b'(') && !paren {
            let len = run(t, j + 1, 4, |b| b.is_ascii_digit());
            if !(1..=4).contains(&len) || t.get(j + 1 + len) != Some(&b')') {
                return None;
            }
            paren = true;
            digits += len;
            j += len + 2;
        } else {
            let len = run(t, j, MAX_DIGITS, |b| b.is_ascii_digit());
            digits += len;
            j += len;
        }
        if digits > MAX_DIGITS {
            return None;
        }
        end = j;
        let next_paren = !paren && t.get(j + 1) == Some(&b'(');
        match t.get(j) {
            Some(b' ' | b'-' | b'.') if digit_at(t, j + 1) || next_paren => j += 1,
            Some(b'(') if !paren => {}
            // `+44(0)20 …`: digits straight after the parenthesised group.
            Some(b'0'..=b'9') if paren && t[j - 1] == b')' => {}
            _ => break,
        }
    }
    ((8..=MAX_DIGITS).contains(&digits) && !word_at(t, end)).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(text: &str) -> Option<&str> {
        let t = text.as_bytes();
        let end = match t[0] {
            b'+' => international(t, 0),
            b'(' => parenthesised(t, 0),
            _ => north_american(t, 0),
        };
        end.map(|e| &text[..e])
    }

    #[test]
    fn finds_phone_shapes() {
        for p in [
            "+1 555 123 4567",
            "+14155552671",
            "+44 (0)20 7946 0958",
            "+1 (555) 123-4567",
            "+33 1 23 45 67 89",
            "+49-30-1234567",
            "+44(0)20 7946 0958",
            "(555) 123-4567",
            "(555)123.4567",
            "555-123-4567",
            "555.123.4567",
            "1-800-555-0199",
            "1.800.555.0199",
        ] {
            assert_eq!(phone(p), Some(p), "{p}");
        }
        assert_eq!(phone("+1 555 123 4567."), Some("+1 555 123 4567"));
        assert_eq!(phone("555-123-4567, ok"), Some("555-123-4567"));
    }

    #[test]
    fn rejects_dates_versions_and_runs() {
        for p in [
            "2024-01-15",
            "555-123-45678",
            "555-123.4567",
            "555-123-4567-8",
            "1.2.3",
            "+1234567",
            "+1234567890123456",
            "+0 555 123 4567",
            "(555) 123-45",
            "555 123 4567",
            "+1 555 123 4567x",
            "1-800.555.0199",
        ] {
            assert_eq!(phone(p), None, "{p}");
        }
    }
}
