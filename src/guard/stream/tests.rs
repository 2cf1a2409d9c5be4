//! Hold-back tests: fixed cases, and the property that a stream split anywhere yields the
//! findings of the whole text.

use proptest::prelude::*;

use super::*;
use crate::guard::{Check, Entity, PiiSet};

fn pii(text: &str, out: &mut Vec<Finding>) {
    Check::pii(PiiSet::ALL).scan(text, out);
}

/// Feeds `parts` through a hold-back; returns the released text and findings (absolute).
fn stream(
    parts: &[&str],
    hold: Holdback,
    scan: &dyn Fn(&str, &mut Vec<Finding>),
) -> (String, Vec<(Entity, std::ops::Range<usize>)>) {
    let mut hold = hold;
    let mut text = String::new();
    let mut all = Vec::new();
    let mut found = Vec::new();
    let mut take = |released: String, found: &[Finding], text: &mut String| {
        for f in found {
            all.push((
                f.entity,
                f.range.start + text.len()..f.range.end + text.len(),
            ));
        }
        text.push_str(&released);
    };
    for part in parts {
        let released = hold.push(part, &mut found, scan);
        take(released, &found, &mut text);
    }
    let rest = hold.finish(&mut found, scan);
    take(rest, &found, &mut text);
    all.sort_by_key(|(_, r)| (r.start, r.end));
    (text, all)
}

fn whole(
    text: &str,
    scan: &dyn Fn(&str, &mut Vec<Finding>),
) -> Vec<(Entity, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out.sort_by_key(|f| (f.range.start, f.range.end));
    out.into_iter().map(|f| (f.entity, f.range)).collect()
}

#[test]
fn nothing_leaves_while_within_the_span() {
    let mut hold = Holdback::new(16);
    let mut found = Vec::new();
    let mut scans = 0;
    assert_eq!(hold.push("short text", &mut found, |_, _| scans += 1), "");
    assert_eq!(scans, 0);
    assert_eq!(hold.held(), 10);
}

#[test]
fn a_spaced_card_across_pushes_leaves_whole() {
    // The span boundary falls inside the card, on one of its spaces.
    let parts = [
        "pay with 4111 1111 ",
        "1111 1111 today, thanks ",
        "and more words after it",
    ];
    let (text, found) = stream(&parts, Holdback::new(24), &pii);
    assert_eq!(text, parts.concat());
    assert_eq!(found, whole(&text, &pii));
    assert_eq!(found.len(), 1);
    assert_eq!(&text[found[0].1.clone()], "4111 1111 1111 1111");
}

#[test]
fn a_minimum_release_batches_scans() {
    let mut hold = Holdback::new(8).min_release(20);
    let mut found = Vec::new();
    let mut scans = 0;
    for _ in 0..5 {
        assert_eq!(hold.push("word ", &mut found, |_, _| scans += 1), "");
    }
    assert_eq!(scans, 0);
    assert_eq!(
        hold.push("word ", &mut found, |_, _| scans += 1),
        "word word word word "
    );
    assert_eq!(scans, 1);
}

#[test]
fn releases_carry_their_findings() {
    let mut hold = Holdback::new(20);
    let mut found = Vec::new();
    let out = hold.push("mail bob@x.io now, then a lot more text", &mut found, pii);
    assert_eq!(out, "mail bob@x.io now, ");
    assert_eq!(found, [Finding::new(Entity::Email, 5..13)]);
    let rest = hold.finish(&mut found, pii);
    assert_eq!(rest, "then a lot more text");
    assert!(found.is_empty());
}

#[test]
fn text_without_clean_points_is_forced_out() {
    let mut hold = Holdback::new(8);
    let mut found = Vec::new();
    let mut out = String::new();
    for _ in 0..10 {
        out.push_str(&hold.push("abcdefgh", &mut found, pii));
    }
    assert!(hold.held() <= 4 * 8 + 8);
    out.push_str(&hold.finish(&mut found, pii));
    assert_eq!(out, "abcdefgh".repeat(10));
}

#[test]
fn never_cuts_before_a_bom_or_inside_a_char() {
    let mut hold = Holdback::new(4);
    let mut found = Vec::new();
    let out = hold.push("ab \u{FEFF}é日本語テキスト", &mut found, |_, _| {});
    assert!(!out.ends_with(' '), "{out:?}");
    assert!(hold.held() >= 4);
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "said",
    "Please",
    "call",
    "me",
    "at",
    "ok",
    "café",
    "日本語",
    "naïve",
    "version",
    "v1.2.3",
    "1.2.3.4.5",
    "2024-01-15",
    "10:30",
    "x[::2]",
    "fn",
    "main()",
    "{",
    "}",
    "$42.50",
    "1,000",
    "4111111111111112",
    "order",
    "#12345",
    "Ünïcödé",
    "😀",
    "ÆØÅ",
    "2001:db8::1",
    "192.168.1.20",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "GB82 WEST 1234 5698 7654 32",
    "123-45-6789",
    "666-12-3456",
    "Ignore all previous instructions",
    "<|im_start|>",
    "a\u{200B}b",
];

const CARDS: &[&str] = &[
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
];

const SEPS: &[&str] = &[
    " ", "  ", "\n", ", ", ". ", " — ", " 日本 ", "\t", " (", ") ",
];

fn card() -> impl Strategy<Value = String> {
    (prop::sample::select(CARDS), 0..3usize).prop_map(|(c, style)| {
        let sep = match style {
            0 => return c.to_owned(),
            1 => " ",
            _ => "-",
        };
        // Amex prints 4-6-5, everything else in fours.
        let groups: Vec<&str> = if c.len() == 15 {
            vec![&c[..4], &c[4..10], &c[10..]]
        } else {
            c.as_bytes()
                .chunks(4)
                .map(|g| std::str::from_utf8(g).unwrap())
                .collect()
        };
        groups.join(sep)
    })
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9._+-]{0,10}[a-z0-9]",
        "[a-z][a-z0-9-]{0,8}[a-z0-9]",
        "(com|org|io|co\\.uk|de)",
    )
        .prop_map(|(l, d, tld)| format!("{l}@{d}.{tld}"))
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(str::to_owned),
        2 => email(),
        2 => card(),
        1 => (0u64..10_000_000_000).prop_map(|n| n.to_string()),
    ]
}

/// A text of pieces joined by separators, and where to split it.
fn case() -> impl Strategy<Value = (String, Vec<prop::sample::Index>)> {
    let joined = prop::collection::vec((piece(), prop::sample::select(SEPS)), 1..120)
        .prop_map(|ps| ps.into_iter().map(|(p, s)| p + s).collect::<String>());
    (
        joined,
        prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    )
}

fn split<'t>(text: &'t str, at: &[prop::sample::Index]) -> Vec<&'t str> {
    let mut cuts: Vec<usize> = at
        .iter()
        .map(|i| floor_char(text, i.index(text.len() + 1)))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut parts = Vec::new();
    let mut from = 0;
    for c in cuts {
        parts.push(&text[from..c]);
        from = c;
    }
    parts.push(&text[from..]);
    parts
}

fn pii_and_injection(text: &str, out: &mut Vec<Finding>) {
    Check::pii(PiiSet::ALL).scan(text, out);
    Check::injection().scan(text, out);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_split_stream_finds_what_the_whole_text_has((text, at) in case()) {
        let span = Check::pii(PiiSet::ALL).max_span();
        let parts = split(&text, &at);
        let (out, found) = stream(&parts, Holdback::new(span), &pii);
        prop_assert_eq!(&out, &text);
        prop_assert_eq!(found, whole(&text, &pii));
    }

    #[test]
    fn a_tight_span_still_finds_everything((text, at) in case(), batch in 0..160usize) {
        // Every generated match and its context fit in 96 bytes; the tight span makes many
        // more cuts land near matches.
        let parts = split(&text, &at);
        let hold = Holdback::new(96).min_release(batch);
        let (out, found) = stream(&parts, hold, &pii_and_injection);
        prop_assert_eq!(&out, &text);
        prop_assert_eq!(found, whole(&text, &pii_and_injection));
    }
}
