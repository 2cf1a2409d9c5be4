//! IBANs: country code, two check digits, then the account in capitals and digits, written
//! whole or in groups of four split by single spaces.
//!
//! Only countries with a known IBAN length are recognised, and the number must have exactly
//! that length and pass the ISO 7064 mod-97 check, so capitalised prose like `AB12 CDEF` never
//! matches. Detection reads at most [`SPAN`] bytes.

use super::class::{word_at, word_before};

const MAX_LEN: usize = 34;
/// 34 characters, a space per group of four, and the byte after.
pub(super) const SPAN: usize = MAX_LEN + MAX_LEN / 4 + 2;

/// IBAN lengths by country (SWIFT registry), sorted by code.
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

fn is_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

/// The end of the IBAN starting at the capital at `i`, if there is one.
pub(super) fn at(t: &[u8], i: usize) -> Option<usize> {
    let head = t.get(i..i + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
        || word_before(t, i)
    {
        return None;
    }
    let country: &[u8; 2] = head[..2].try_into().ok()?;
    let want = LENGTHS
        .binary_search_by_key(&country, |(c, _)| *c)
        .ok()
        .map(|k| LENGTHS[k].1)?;
    let mut buf = [0u8; MAX_LEN];
    buf[..4].copy_from_slice(head);
    let mut n = 4;
    let mut j = i + 4;
    if t.get(j) == Some(&b' ') {
        // Grouped: full groups of four, the last one possibly shorter.
        while n < want && t.get(j) == Some(&b' ') {
            let len = super::class::run(t, j + 1, 4, is_char).min(4);
            if len == 0 || (len < 4 && n + len != want) {
                return None;
            }
            buf[n..n + len].copy_from_slice(&t[j + 1..j + 1 + len]);
            n += len;
            j += 1 + len;
        }
    } else {
        let len = super::class::run(t, j, MAX_LEN, is_char);
        if 4 + len != want {
            return None;
        }
        buf[4..want].copy_from_slice(&t[j..j + len]);
        n = want;
        j += len;
    }
    (n == want && !word_at(t, j) && mod97(&buf[..n]) == 1).then_some(j)
}

/// ISO 7064 MOD 97-10 over the rearranged IBAN (head moved to the end, letters as 10–35).
fn mod97(iban: &[u8]) -> u32 {
    let (head, rest) = iban.split_at(4);
    rest.iter().chain(head).fold(0u32, |r, &b| {
        if b.is_ascii_digit() {
            (r * 10 + u32::from(b - b'0')) % 97
        } else {
            (r * 100 + u32::from(b - b'A') + 10) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iban(text: &str) -> Option<&str> {
        at(text.as_bytes(), 0).map(|e| &text[..e])
    }

    #[test]
    fn the_table_is_sorted() {
        assert!(LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn finds_valid_ibans() {
        for s in [
            "GB82 WEST 1234 5698 7654 32",
            "GB82WEST12345698765432",
            "DE89 3704 0044 0532 0130 00",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91ABNA0417164300",
            "BE68 5390 0754 7034",
            "NO93 8601 1117 947",
        ] {
            assert_eq!(iban(s), Some(s), "{s}");
        }
        assert_eq!(
            iban("GB82 WEST 1234 5698 7654 32 is mine"),
            Some("GB82 WEST 1234 5698 7654 32")
        );
    }

    #[test]
    fn rejects_bad_checksums_and_shapes() {
        for s in [
            "GB83 WEST 1234 5698 7654 32",
            "GB82 WEST 1234 5698 7654 33",
            "GB82 WEST 1234 5698 7654",
            "GB82 WEST 1234 5698 7654 321",
            "GB82WEST1234569876543",
            "GB82 WES 1234 5698 7654 32",
            "ZZ82 WEST 1234 5698 7654 32",
            "GB82 WEST 1234 5698 7654 32X",
            "AB12 CDEF",
        ] {
            assert_eq!(iban(s), None, "{s}");
        }
    }
}
