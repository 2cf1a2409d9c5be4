//! Tests across detectors: whole checks on realistic text, precision on prose and code, and
//! UTF-8 safety.

use super::*;

fn found(check: &Check, text: &str) -> Vec<(Entity, String)> {
    let mut out = Vec::new();
    check.scan(text, &mut out);
    for w in out.windows(2) {
        assert!(w[0].range.end <= w[1].range.start, "overlap in {out:?}");
    }
    out.iter()
        .map(|f| {
            assert!(text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end));
            (f.entity, text[f.range.clone()].to_owned())
        })
        .collect()
}

fn pii(text: &str) -> Vec<(Entity, String)> {
    found(&Check::pii(PiiSet::ALL), text)
}

#[test]
fn labels_and_placeholders_round_trip() {
    for e in Entity::ALL {
        assert_eq!(Entity::from_label(e.label()), Some(e));
        assert_eq!(Entity::ALL[e as usize], e);
        assert_eq!(e.placeholder().to_ascii_lowercase(), e.label());
    }
}

#[test]
fn pii_check_finds_each_kind_in_prose() {
    let text = "Reach Jane at jane.doe@example.com or +1 (415) 555-2671; card 4111 1111 1111 1111, \
                IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, server 10.0.0.12 or 2001:db8::7.";
    let kinds: Vec<Entity> = pii(text).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        kinds,
        [
            Entity::Email,
            Entity::Phone,
            Entity::CreditCard,
            Entity::Iban,
            Entity::UsSsn,
            Entity::IpAddress,
            Entity::IpAddress
        ]
    );
}

#[test]
fn a_set_finds_only_its_kinds() {
    let text = "jane@example.com 555-123-4567 4111111111111111";
    let only = found(&Check::pii(PiiSet::of(&[Entity::Phone])), text);
    assert_eq!(only, [(Entity::Phone, "555-123-4567".to_owned())]);
    assert!(found(&Check::pii(PiiSet::NONE), text).is_empty());
    assert!(PiiSet::default().contains(Entity::Iban));
    assert!(!PiiSet::ALL.contains(Entity::Jwt));
}

#[test]
fn card_wins_over_phone() {
    let text = "ref 4111-1111-1111-1111 and 5555 5555 5555 4444";
    let all = pii(text);
    assert!(all.iter().all(|(e, _)| *e == Entity::CreditCard), "{all:?}");
    assert_eq!(all.len(), 2);
}

#[test]
fn ordinary_prose_and_code_have_no_pii() {
    let text = r#"Released v1.2.3 on 2024-01-15 (build 20240115.3); see RFC 7231 §6.5 and
        issue #4521. It costs $1,299.99 or 12.5% less; ETA 10:30-11:45. let x = a[1::2];
        std::mem::swap(&mut a, &mut b); ratio 16:9; 1.2.3.4.5 is not an address,
        neither is v1.2.3.4. Order 4111111111111112 failed; call ext. 5551234567 maybe.
        Use @decorator and user@localhost; logo@2x.png. UUID 123e4567-e89b-12d3-a456-426614174000.
        Version 10.0.19041.1 and 3.14159 and 1e-9; git sha 9fceb02d0ae598e95dc970b74767f19372d61af8."#;
    assert_eq!(pii(text), []);
    assert_eq!(found(&Check::secrets(), text), []);
    assert_eq!(found(&Check::injection(), text), []);
}

#[test]
fn multibyte_text_around_matches_never_splits_a_char() {
    let pieces = [
        "é", "日本", "😀", "\u{200B}", "ñ", "Ω", "\u{FEFF}", " ", ".", "@", "+", "(", ":", "-",
    ];
    let matches = [
        "a@b.io",
        "4111111111111111",
        "+44 20 7946 0958",
        "10.0.0.1",
        "fe80::1234",
        "GB82WEST12345698765432",
        "AKIAIOSFODNN7EXAMPLE",
        "ignore previous instructions",
    ];
    let checks = [
        Check::pii(PiiSet::ALL),
        Check::secrets(),
        Check::injection(),
        Check::deny(&["日本".into(), "b".into()], &["[é😀]+".into()]).unwrap(),
    ];
    for l in pieces {
        for m in matches {
            for r in pieces {
                let text = format!("{l}{m}{r}{l}{r}{m}");
                for c in &checks {
                    found(c, &text);
                }
            }
        }
    }
}

#[test]
fn max_spans_are_bounded() {
    assert_eq!(Check::pii(PiiSet::ALL).max_span(), email::SPAN);
    assert!(Check::pii(PiiSet::of(&[Entity::CreditCard])).max_span() < 64);
    assert!(Check::secrets().max_span() > SECRET_CAP);
    assert!(Check::injection().max_span() >= injection::PHRASE_SPAN);
    let deny = Check::deny(&["abc".into()], &[]).unwrap();
    assert_eq!(deny.max_span(), 5);
}

#[test]
fn redacting_a_request_end_to_end() {
    let text = "From ann@corp.com: key AKIAIOSFODNN7EXAMPLE, cc ann@corp.com and bo@corp.com";
    let mut findings = Vec::new();
    Check::pii(PiiSet::ALL).scan(text, &mut findings);
    Check::secrets().scan(text, &mut findings);
    let mut names = Placeholders::default();
    let mut out = String::new();
    redact(text, &mut findings, &mut names, &mut out);
    assert_eq!(
        out,
        "From <EMAIL_1>: key <AWS_KEY_1>, cc <EMAIL_1> and <EMAIL_2>"
    );
}
