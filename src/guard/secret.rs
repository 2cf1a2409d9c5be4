//! The secrets check: cloud and API keys, tokens, PEM private keys and JWTs.
//!
//! One Aho–Corasick pass over the known prefixes (`AKIA`, `AIza`, `ghp_`, `sk-`, `eyJ`,
//! `-----BEGIN `, …) finds every candidate; each is then validated by its own tail rule. A key
//! must start at a token boundary (not inside a longer word or dashed name), so `task-…` never
//! yields an `sk-` key. Shapes with no natural end are cut: a token tail at [`TOKEN_CAP`]
//! bytes, a private key without its END line or a JWT at [`SECRET_CAP`]; so no finding is
//! longer than `SECRET_CAP` and [`MAX_SPAN`] bounds what detection reads.
//!
//! The prefix table is a constant compiled once per process on first use.

use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use super::class::{floor_char, is_word, run, word_at};
use super::{Entity, Finding};

/// The longest secret finding: a private key or JWT is cut here if it runs on.
pub const SECRET_CAP: usize = 8 * 1024;
/// The longest token tail after its prefix (`sk-…`, `ghp_…`); longer runs are cut here.
const TOKEN_CAP: usize = 256;
/// What detection may read around one finding.
pub(super) const MAX_SPAN: usize = SECRET_CAP + 64;

#[derive(Debug, Clone, Copy)]
enum Shape {
    AwsId,
    AwsSecret,
    Google,
    GitHub,
    GitHubPat,
    Slack,
    Sk,
    Stripe,
    Pem,
    Jwt,
}

const PREFIXES: &[(&str, Shape)] = &[
    ("AKIA", Shape::AwsId),
    ("ASIA", Shape::AwsId),
    ("AGPA", Shape::AwsId),
    ("AIDA", Shape::AwsId),
    ("AROA", Shape::AwsId),
    ("ANPA", Shape::AwsId),
    ("ANVA", Shape::AwsId),
    ("AIPA", Shape::AwsId),
    ("ABIA", Shape::AwsId),
    ("ACCA", Shape::AwsId),
    ("A3T", Shape::AwsId),
    ("aws_secret_access_key", Shape::AwsSecret),
    ("AWS_SECRET_ACCESS_KEY", Shape::AwsSecret),
    ("AIza", Shape::Google),
    ("ghp_", Shape::GitHub),
    ("gho_", Shape::GitHub),
    ("ghu_", Shape::GitHub),
    ("ghs_", Shape::GitHub),
    ("ghr_", Shape::GitHub),
    ("github_pat_", Shape::GitHubPat),
    ("xoxa-", Shape::Slack),
    ("xoxb-", Shape::Slack),
    ("xoxp-", Shape::Slack),
    ("xoxr-", Shape::Slack),
    ("xoxs-", Shape::Slack),
    ("sk-", Shape::Sk),
    ("sk_live_", Shape::Stripe),
    ("rk_live_", Shape::Stripe),
    ("-----BEGIN ", Shape::Pem),
    ("eyJ", Shape::Jwt),
];

static PREFIX: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(PREFIXES.iter().map(|p| p.0))
        .expect("the secret prefixes are valid literals")
});

pub(super) fn warm() {
    LazyLock::force(&PREFIX);
}

pub(super) fn scan(text: &str, out: &mut Vec<Finding>) {
    let from = out.len();
    // Prefixes inside a secret already found (a key's base64 body) are not new secrets.
    let mut floor = 0;
    for m in PREFIX.find_iter(text) {
        if m.start() < floor {
            continue;
        }
        let shape = PREFIXES[m.pattern().as_usize()].1;
        if let Some(f) = validate(text, shape, m.start(), m.end()) {
            floor = f.range.end;
            out.push(f);
        }
    }
    super::settle(out, from);
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+' || b == b'='
}

/// A key starts a token: not after a word byte or a dash (`task-…`, `my_ghp_…`).
fn token_start(t: &[u8], s: usize) -> bool {
    s == 0 || !(is_word(t[s - 1]) || t[s - 1] == b'-')
}

/// A tail of at least `min` bytes of `class` from `p`; one longer than [`TOKEN_CAP`] is cut.
fn tail(t: &[u8], p: usize, min: usize, class: fn(u8) -> bool) -> Option<usize> {
    let n = run(t, p, TOKEN_CAP, class);
    (n >= min).then_some(p + n.min(TOKEN_CAP))
}

/// The finding for the prefix `shape` matched at `s..p`, if its tail is right.
fn validate(text: &str, shape: Shape, s: usize, p: usize) -> Option<Finding> {
    let t = text.as_bytes();
    let (entity, end) = match shape {
        Shape::Pem => (Entity::PrivateKey, pem(text, s, p)?),
        Shape::AwsSecret => return aws_secret(t, p).map(|r| Finding::new(Entity::AwsKey, r)),
        _ if !token_start(t, s) => return None,
        Shape::AwsId => {
            let n = run(t, s, 20, |b| b.is_ascii_uppercase() || b.is_ascii_digit());
            (n == 20 && !word_at(t, s + 20)).then_some((Entity::AwsKey, s + 20))?
        }
        Shape::Google => {
            let n = run(t, p, 35, base64url);
            (n == 35).then_some((Entity::CloudKey, p + 35))?
        }
        Shape::GitHub => (Entity::ApiKey, tail(t, p, 36, alnum)?),
        Shape::GitHubPat => (Entity::ApiKey, tail(t, p, 82, is_word)?),
        Shape::Slack => {
            let end = tail(t, p, 15, |b| alnum(b) || b == b'-')?;
            t[p..end]
                .iter()
                .any(u8::is_ascii_digit)
                .then_some((Entity::ApiKey, end))?
        }
        Shape::Sk => (Entity::ApiKey, sk(t, p)?),
        Shape::Stripe => (Entity::ApiKey, tail(t, p, 20, alnum)?),
        Shape::Jwt => (Entity::Jwt, jwt(t, s)?),
    };
    Some(Finding::new(entity, s..end))
}

/// `sk-ant-…` (Anthropic) or `sk-…`/`sk-proj-…` (OpenAI). A plain `sk-` tail must mix
/// capitals, small letters and digits, as generated keys do and `sk-learn-style-slugs` don't.
fn sk(t: &[u8], p: usize) -> Option<usize> {
    if t[p..].starts_with(b"ant-") {
        return tail(t, p + 4, 20, base64url);
    }
    let end = tail(t, p, 20, base64url)?;
    let body = &t[p..end];
    let mixed = body.iter().any(u8::is_ascii_uppercase)
        && body.iter().any(u8::is_ascii_lowercase)
        && body.iter().any(u8::is_ascii_digit);
    mixed.then_some(end)
}

/// The 40-byte value after an `aws_secret_access_key` label: `= …`, `: …`, `="…"`.
fn aws_secret(t: &[u8], mut j: usize) -> Option<Range<usize>> {
    let filler = |b: u8| matches!(b, b'"' | b'\'' | b' ' | b'\t');
    j += run(t, j, 4, filler).min(4);
    if !matches!(t.get(j), Some(b'=' | b':')) {
        return None;
    }
    j += 1;
    j += run(t, j, 4, filler).min(4);
    (run(t, j, 40, base64) == 40).then_some(j..j + 40)
}

/// A PEM private key from its BEGIN line through the matching END line, or to the cap.
fn pem(text: &str, s: usize, p: usize) -> Option<usize> {
    let t = text.as_bytes();
    let n = run(t, p, 40, |b| b.is_ascii_uppercase() || b == b' ');
    let label = &t[p..p + n.min(40)];
    if n > 40 || !label.ends_with(b"PRIVATE KEY") || !t[p + n..].starts_with(b"-----") {
        return None;
    }
    let body = p + n + 5;
    let limit = (s + SECRET_CAP).min(t.len());
    let mut end_line = Vec::with_capacity(label.len() + 14);
    end_line.extend_from_slice(b"-----END ");
    end_line.extend_from_slice(label);
    end_line.extend_from_slice(b"-----");
    let end = match memchr::memmem::find(&t[body.min(limit)..limit], &end_line) {
        Some(k) => body + k + end_line.len(),
        None => floor_char(text, limit),
    };
    Some(end)
}

/// `eyJ…` `.` `eyJ…` `.` signature: three base64url segments, each of ten bytes or more.
fn jwt(t: &[u8], s: usize) -> Option<usize> {
    let limit = (s + SECRET_CAP).min(t.len());
    let w = &t[..limit];
    // A segment that reaches the cap with more text beyond is cut there.
    let capped = |end: usize| end == limit && limit < t.len();
    let header = run(w, s, SECRET_CAP, base64url);
    if header < 10 || capped(s + header) || w.get(s + header) != Some(&b'.') {
        return None;
    }
    let p = s + header + 1;
    if !w[p..].starts_with(b"eyJ") {
        return None;
    }
    let payload = run(w, p, SECRET_CAP, base64url);
    if capped(p + payload) {
        return Some(limit);
    }
    if payload < 10 || w.get(p + payload) != Some(&b'.') {
        return None;
    }
    let g = p + payload + 1;
    let signature = run(w, g, SECRET_CAP, base64url);
    (signature >= 10).then_some(g + signature)
}

#[cfg(test)]
mod tests;
