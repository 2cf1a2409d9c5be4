//! Email addresses: `local@domain.tld`, found from each `@` (memchr) outwards.
//!
//! Local part: letters, digits and `._%+-`, at most 64 bytes, not starting or ending with a
//! dot. Domain: at least two labels of letters, digits and inner hyphens (each ≤ 63 bytes, the
//! whole ≤ 253), the last an alphabetic TLD of two letters or more that is not a file
//! extension (`icon@2x.png` is an asset, not an address). So a match is at most
//! [`SPAN`] bytes, and detection reads at most one byte past either end.

use super::class::is_word;
use super::{Entity, Finding};

const LOCAL_MAX: usize = 64;
const DOMAIN_MAX: usize = 253;
/// The longest address, plus the byte each side its detection looks at.
pub(super) const SPAN: usize = LOCAL_MAX + 1 + DOMAIN_MAX + 2;

/// Extensions that follow `@2x`-style asset names and are not top-level domains.
const NOT_TLDS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"tiff", b"css", b"js",
    b"jsx", b"ts", b"tsx", b"json", b"yaml", b"yml", b"toml", b"lock", b"txt", b"html", b"htm",
    b"pdf", b"zip", b"mp4", b"mp3", b"wav",
];

pub(super) fn scan(t: &[u8], out: &mut Vec<Finding>) {
    // No address starts inside the previous one.
    let mut floor = 0;
    for at in memchr::memchr_iter(b'@', t) {
        if at < floor {
            continue;
        }
        if let Some((start, end)) = around(t, at, floor) {
            out.push(Finding::new(Entity::Email, start..end));
            floor = end;
        }
    }
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// The address around the `@` at `at`, if there is one.
fn around(t: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > floor && at - start <= LOCAL_MAX && is_local(t[start - 1]) {
        start -= 1;
    }
    if at - start > LOCAL_MAX {
        return None;
    }
    while start < at && t[start] == b'.' {
        start += 1;
    }
    if start == at || t[at - 1] == b'.' {
        return None;
    }
    let end = domain(t, at + 1)?;
    Some((start, end))
}

/// The end of the domain starting at `from`: the end of its last label that can be a TLD.
fn domain(t: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let mut labels = 0;
    let mut end = None;
    loop {
        let start = i;
        while i < t.len() && i - from <= DOMAIN_MAX && is_label(t[i]) {
            i += 1;
        }
        if i - from > DOMAIN_MAX {
            return None;
        }
        let label = &t[start..i];
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            break;
        }
        labels += 1;
        if labels >= 2 && is_tld(label) {
            end = Some(i);
        }
        if i + 1 < t.len() && t[i] == b'.' && is_label(t[i + 1]) {
            i += 1;
        } else {
            break;
        }
    }
    // `a@b.com_x` is an identifier, not an address.
    end.filter(|&e| e >= t.len() || !is_word(t[e]))
}

fn is_tld(label: &[u8]) -> bool {
    label.len() >= 2
        && label.iter().all(u8::is_ascii_alphabetic)
        && !NOT_TLDS.iter().any(|x| x.eq_ignore_ascii_case(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan(text.as_bytes(), &mut out);
        out.iter().map(|f| &text[f.range.clone()]).collect()
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(
            emails("mail jane.doe+tag@mail.example.co.uk, or bob@x.io."),
            ["jane.doe+tag@mail.example.co.uk", "bob@x.io"]
        );
        assert_eq!(emails("(a_b%c@d-e.org)"), ["a_b%c@d-e.org"]);
        assert_eq!(emails("é.ü@x.com → ü@x.com"), Vec::<&str>::new());
        assert_eq!(emails("日本a@b.jp語"), ["a@b.jp"]);
    }

    #[test]
    fn trims_dots_and_backs_off_to_a_tld() {
        assert_eq!(emails("...john@example.com"), ["john@example.com"]);
        assert_eq!(emails("x@example.com.123"), ["x@example.com"]);
    }

    #[test]
    fn rejects_non_addresses() {
        for text in [
            "@decorator",
            "user@localhost",
            "a@b.c",
            "john.@example.com",
            "icon@2x.png",
            "npm i pkg@1.2.3",
            "a@-b.com",
            "a@b.com_x",
            "x = y @ z",
        ] {
            assert!(emails(text).is_empty(), "{text}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(emails(&long).is_empty());
    }
}
