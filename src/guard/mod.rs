//! Guardrail detection and redaction: finds PII, secrets, prompt-injection markers and denied
//! words in text, and replaces what it found with typed numbered placeholders.
//!
//! Pure: no I/O, no config parsing, no pipeline wiring. A policy compiles each of its checks
//! once ([`Check`]); a request scans its text with them ([`Check::scan`]) and, if the policy
//! says so, redacts ([`redact`]). Streams hold back their tail with [`stream::Holdback`] so a
//! match is never split between two releases.
//!
//! Invariants:
//! - every [`Finding`] range lies on char boundaries of the scanned text;
//! - one check's findings are sorted by start and never overlap;
//! - every check has a bounded [`Check::max_span`]: no match, with the bytes its detection
//!   looks at around it, is longer. Shapes with no natural end (private keys, JWTs, long
//!   tokens, invisible runs) are cut at a documented cap instead.
//! - the built-in detectors are hand-written linear scanners over bytes (a regex engine is used
//!   only for a policy's own deny patterns); the literal tables (secret prefixes, injection
//!   phrases) are compiled once per process on first use and never change.

mod card;
mod class;
mod deny;
mod email;
mod iban;
mod injection;
mod ip;
mod phone;
mod pii;
mod redact;
mod secret;
mod ssn;
pub mod stream;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use deny::{Deny, REGEX_SPAN};
pub use pii::PiiSet;
pub use redact::{Placeholders, merge, redact};
pub use secret::SECRET_CAP;

/// One policy's check, compiled.
#[derive(Debug)]
pub enum Check {
    /// The PII kinds of the set (default: all).
    Pii(PiiSet),
    /// API keys, cloud keys, tokens, private keys and JWTs.
    Secrets,
    /// Instruction-override phrases, chat-template role markers and invisible Unicode.
    Injection,
    /// A policy's own words and regexes.
    Deny(Deny),
}

/// What a finding is; also the placeholder's name and the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    AwsKey,
    CloudKey,
    ApiKey,
    PrivateKey,
    Jwt,
    Injection,
    Invisible,
    Denied,
}

/// One match: what it is and where, as a byte range of the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub entity: Entity,
    pub range: Range<usize>,
}

// === impl Entity ===

impl Entity {
    /// Every entity, in declaration order (`entity as usize` indexes this).
    pub const ALL: [Entity; 14] = [
        Entity::Email,
        Entity::Phone,
        Entity::CreditCard,
        Entity::Iban,
        Entity::UsSsn,
        Entity::IpAddress,
        Entity::AwsKey,
        Entity::CloudKey,
        Entity::ApiKey,
        Entity::PrivateKey,
        Entity::Jwt,
        Entity::Injection,
        Entity::Invisible,
        Entity::Denied,
    ];

    /// The name inside a placeholder: `<EMAIL_1>`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::UsSsn => "US_SSN",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::AwsKey => "AWS_KEY",
            Entity::CloudKey => "CLOUD_KEY",
            Entity::ApiKey => "API_KEY",
            Entity::PrivateKey => "PRIVATE_KEY",
            Entity::Jwt => "JWT",
            Entity::Injection => "INJECTION",
            Entity::Invisible => "INVISIBLE",
            Entity::Denied => "DENIED",
        }
    }

    /// Lower snake case, for metrics labels and config.
    pub fn label(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::CreditCard => "credit_card",
            Entity::Iban => "iban",
            Entity::UsSsn => "us_ssn",
            Entity::IpAddress => "ip_address",
            Entity::AwsKey => "aws_key",
            Entity::CloudKey => "cloud_key",
            Entity::ApiKey => "api_key",
            Entity::PrivateKey => "private_key",
            Entity::Jwt => "jwt",
            Entity::Injection => "injection",
            Entity::Invisible => "invisible",
            Entity::Denied => "denied",
        }
    }

    /// The entity with this [`label`](Entity::label).
    pub fn from_label(label: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.label() == label)
    }
}

// === impl Finding ===

impl Finding {
    pub(crate) fn new(entity: Entity, range: Range<usize>) -> Finding {
        Finding { entity, range }
    }

    /// The matched text, if `text` is the one that was scanned.
    pub fn text<'t>(&self, text: &'t str) -> Option<&'t str> {
        text.get(self.range.clone())
    }
}

// === impl Check ===

impl Check {
    pub fn pii(kinds: PiiSet) -> Check {
        Check::Pii(kinds)
    }

    /// Compiles the shared prefix table now, so the first request does not pay for it.
    pub fn secrets() -> Check {
        secret::warm();
        Check::Secrets
    }

    /// Compiles the shared phrase tables now, so the first request does not pay for it.
    pub fn injection() -> Check {
        injection::warm();
        Check::Injection
    }

    /// Words match case-insensitively on word boundaries; regexes as written. Both are
    /// compiled here, once per policy. A bad regex is an error naming it.
    pub fn deny(words: &[String], regexes: &[String]) -> Result<Check, String> {
        Deny::new(words, regexes).map(Check::Deny)
    }

    /// Appends every match in `text`: non-overlapping within this check, sorted by start.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        match self {
            Check::Pii(kinds) => pii::scan(text, *kinds, out),
            Check::Secrets => secret::scan(text, out),
            Check::Injection => injection::scan(text, out),
            Check::Deny(deny) => deny.scan(text, out),
        }
    }

    /// The longest stretch of text one match of this check, with the bytes its detection
    /// looks at on either side, can span; what a stream must hold back ([`stream::Holdback`]).
    pub fn max_span(&self) -> usize {
        match self {
            Check::Pii(kinds) => kinds.max_span(),
            Check::Secrets => secret::MAX_SPAN,
            Check::Injection => injection::MAX_SPAN,
            Check::Deny(deny) => deny.max_span(),
        }
    }
}

/// Sorts one check's findings from `from` on by start (longest first on ties) and drops any
/// that overlaps an earlier one, so the check's output keeps its invariant.
pub(crate) fn settle(out: &mut Vec<Finding>, from: usize) {
    let tail = &mut out[from..];
    if tail.len() < 2 {
        return;
    }
    tail.sort_unstable_by_key(|f| (f.range.start, std::cmp::Reverse(f.range.end)));
    let mut end = 0;
    let mut keep = from;
    for i in from..out.len() {
        if out[i].range.start >= end {
            end = out[i].range.end;
            out.swap(keep, i);
            keep += 1;
        }
    }
    out.truncate(keep);
}

/// What a scan function finds in `text`, as (entity, matched text): the detectors' tests.
#[cfg(test)]
fn matches(scan: fn(&str, &mut Vec<Finding>), text: &str) -> Vec<(Entity, &str)> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out.iter()
        .map(|f| (f.entity, &text[f.range.clone()]))
        .collect()
}
