//! Byte classes and boundary tests the detectors share.
//!
//! Every boundary rule looks at ASCII only: a non-ASCII byte is never a word byte, so a match
//! next to a multibyte char is bounded there, and a cut just after one (`stream`) looks to every
//! detector like the start of the text.

/// ASCII letter, digit or underscore: what a "word" is made of for boundary tests.
#[inline]
pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the byte before `i` continues a word (so a match may not start at `i`).
#[inline]
pub(super) fn word_before(t: &[u8], i: usize) -> bool {
    i > 0 && is_word(t[i - 1])
}

/// Whether the byte at `j` continues a word (so a match may not end at `j`).
#[inline]
pub(super) fn word_at(t: &[u8], j: usize) -> bool {
    j < t.len() && is_word(t[j])
}

#[inline]
pub(super) fn digit_at(t: &[u8], j: usize) -> bool {
    j < t.len() && t[j].is_ascii_digit()
}

/// The length of the run of bytes in `class` from `i`, reading at most `max + 1` bytes (so a
/// caller can tell "exactly `max`" from "longer").
#[inline]
pub(super) fn run(t: &[u8], i: usize, max: usize, class: impl Fn(u8) -> bool) -> usize {
    let end = t.len().min(i.saturating_add(max + 1));
    t[i.min(end)..end]
        .iter()
        .position(|&b| !class(b))
        .unwrap_or(end - i.min(end))
}

/// Whether a number may start at `i`: not inside a word, and not the continuation of a dotted,
/// dashed or comma-grouped number (`1.2.3`, `12-34`, `1,000`).
#[inline]
pub(super) fn numeric_start(t: &[u8], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let p = t[i - 1];
    let carried = matches!(p, b'.' | b'-' | b',') && i >= 2 && t[i - 2].is_ascii_digit();
    !is_word(p) && !carried
}

/// Whether a number may end at `j`: not followed by a word byte, nor by a dot, dash or comma
/// that carries the number on (`…4567.8`, `…4567-1`).
#[inline]
pub(super) fn numeric_end(t: &[u8], j: usize) -> bool {
    if j >= t.len() {
        return true;
    }
    let carried = matches!(t[j], b'.' | b'-' | b',') && digit_at(t, j + 1);
    !is_word(t[j]) && !carried
}

/// `i` moved back to the nearest char boundary at or before it.
#[inline]
pub(super) fn floor_char(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stop_at_the_class_or_the_limit() {
        assert_eq!(run(b"abc1", 0, 10, |b| b.is_ascii_alphabetic()), 3);
        assert_eq!(run(b"abcdef", 0, 3, |b| b.is_ascii_alphabetic()), 4);
        assert_eq!(run(b"abc", 3, 3, |b| b.is_ascii_alphabetic()), 0);
        assert_eq!(run(b"abc", 9, 3, |b| b.is_ascii_alphabetic()), 0);
    }

    #[test]
    fn numbers_start_and_end_at_number_boundaries() {
        assert!(numeric_start(b"a 12", 2));
        assert!(!numeric_start(b"a12", 1));
        assert!(!numeric_start(b"1.2", 2));
        assert!(numeric_start(b"x.2", 2));
        assert!(numeric_end(b"12. ", 2));
        assert!(!numeric_end(b"12.3", 2));
        assert!(!numeric_end(b"12a", 2));
    }
}
