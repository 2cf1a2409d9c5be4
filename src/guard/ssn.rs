//! US Social Security numbers: `AAA-GG-SSSS`, or the same with single spaces, never with an
//! area the SSA does not issue (000, 666, 900–999), a group 00 or a serial 0000.

use super::class::numeric_end;

/// The bytes a number and the look-ahead of its end take.
pub(super) const SPAN: usize = 11 + 2;

/// The end of the SSN starting at `i` (a numeric start), if there is one.
pub(super) fn at(t: &[u8], i: usize) -> Option<usize> {
    let s = t.get(i..i + 11)?;
    let sep = s[3];
    let shape = matches!(sep, b'-' | b' ')
        && s[6] == sep
        && s.iter()
            .enumerate()
            .all(|(k, &b)| k == 3 || k == 6 || b.is_ascii_digit());
    if !shape || !numeric_end(t, i + 11) {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| s[r].iter().fold(0u32, |v, &b| v * 10 + u32::from(b - b'0'));
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    let issued = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    issued.then_some(i + 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssn(text: &str) -> Option<&str> {
        at(text.as_bytes(), 0).map(|e| &text[..e])
    }

    #[test]
    fn finds_issued_numbers() {
        assert_eq!(ssn("123-45-6789"), Some("123-45-6789"));
        assert_eq!(ssn("123 45 6789."), Some("123 45 6789"));
        assert_eq!(ssn("899-01-0001 ok"), Some("899-01-0001"));
    }

    #[test]
    fn rejects_unissued_and_misshapen() {
        for n in [
            "666-12-3456",
            "000-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45 6789",
            "123-45-67890",
            "123-45-6789-1",
            "123-456-789",
            "12-345-6789",
        ] {
            assert_eq!(ssn(n), None, "{n}");
        }
    }
}
