//! The PII check: which kinds a policy wants ([`PiiSet`]) and the one pass over the bytes that
//! runs every number-, letter- and colon-triggered detector.
//!
//! Emails are found from their `@` (memchr); everything else from one table-driven walk that
//! stops only on digits, `+`, `(`, capitals and colons. At a number's start the detectors are
//! tried in a fixed order — card, SSN, phone, IPv4 — so a card is never also a phone. The
//! check's findings are then sorted and overlaps dropped (`settle`).

use super::class::numeric_start;
use super::{Entity, Finding, card, email, iban, ip, phone, ssn};

/// A set of PII kinds (the `Email` … `IpAddress` entities). Default: all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiSet(u8);

impl PiiSet {
    /// The PII entities, in the order of their bits.
    pub const KINDS: [Entity; 6] = [
        Entity::Email,
        Entity::Phone,
        Entity::CreditCard,
        Entity::Iban,
        Entity::UsSsn,
        Entity::IpAddress,
    ];
    pub const ALL: PiiSet = PiiSet(0b11_1111);
    pub const NONE: PiiSet = PiiSet(0);

    fn bit(entity: Entity) -> u8 {
        PiiSet::KINDS
            .iter()
            .position(|&k| k == entity)
            .map_or(0, |k| 1 << k)
    }

    /// The set of these kinds; entities that are not PII are ignored.
    pub fn of(kinds: &[Entity]) -> PiiSet {
        kinds.iter().fold(PiiSet::NONE, |s, &k| s.with(k))
    }

    pub fn with(self, entity: Entity) -> PiiSet {
        PiiSet(self.0 | PiiSet::bit(entity))
    }

    pub fn contains(self, entity: Entity) -> bool {
        let bit = PiiSet::bit(entity);
        bit != 0 && self.0 & bit != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn max_span(self) -> usize {
        let mut span = 0;
        let parts = [
            (Entity::Email, email::SPAN),
            (Entity::Phone, phone::SPAN),
            (Entity::CreditCard, card::SPAN),
            (Entity::Iban, iban::SPAN),
            (Entity::UsSsn, ssn::SPAN),
            (Entity::IpAddress, ip::SPAN),
        ];
        for (kind, s) in parts {
            if self.contains(kind) {
                span = span.max(s);
            }
        }
        span
    }
}

impl Default for PiiSet {
    fn default() -> PiiSet {
        PiiSet::ALL
    }
}

/// What stops the walk: nothing (0), or the detector family to try.
const DIGIT: u8 = 1;
const PLUS: u8 = 2;
const PAREN: u8 = 3;
const UPPER: u8 = 4;
const COLON: u8 = 5;

static CLASS: [u8; 256] = {
    let mut c = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        c[b] = match b as u8 {
            b'0'..=b'9' => DIGIT,
            b'+' => PLUS,
            b'(' => PAREN,
            b'A'..=b'Z' => UPPER,
            b':' => COLON,
            _ => 0,
        };
        b += 1;
    }
    c
};

pub(super) fn scan(text: &str, kinds: PiiSet, out: &mut Vec<Finding>) {
    let from = out.len();
    let t = text.as_bytes();
    if kinds.contains(Entity::Email) {
        email::scan(t, out);
    }
    if kinds.0 & !PiiSet::bit(Entity::Email) != 0 {
        walk(t, kinds, out);
    }
    super::settle(out, from);
}

fn walk(t: &[u8], kinds: PiiSet, out: &mut Vec<Finding>) {
    let phones = kinds.contains(Entity::Phone);
    let ibans = kinds.contains(Entity::Iban);
    let ips = kinds.contains(Entity::IpAddress);
    let mut i = 0;
    while i < t.len() {
        let class = CLASS[t[i] as usize];
        if class == 0 {
            i += 1;
            continue;
        }
        let found = match class {
            DIGIT if numeric_start(t, i) => number(t, i, kinds).map(|(e, end)| (e, i, end)),
            DIGIT => None,
            PLUS if phones => phone::international(t, i).map(|e| (Entity::Phone, i, e)),
            PAREN if phones => phone::parenthesised(t, i).map(|e| (Entity::Phone, i, e)),
            UPPER if ibans => iban::at(t, i).map(|e| (Entity::Iban, i, e)),
            COLON if ips => ip::v6(t, i).map(|(s, e)| (Entity::IpAddress, s, e)),
            _ => None,
        };
        // After a failed number its other digits are not number starts: skip them in one go.
        match found {
            Some((entity, start, end)) => {
                out.push(Finding::new(entity, start..end));
                i = end;
            }
            None => {
                i += 1;
                while class == DIGIT && i < t.len() && t[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
    }
}

/// The number starting at `i`, trying shapes from the most specific.
fn number(t: &[u8], i: usize, kinds: PiiSet) -> Option<(Entity, usize)> {
    if kinds.contains(Entity::CreditCard)
        && let Some(e) = card::at(t, i)
    {
        return Some((Entity::CreditCard, e));
    }
    if kinds.contains(Entity::UsSsn)
        && let Some(e) = ssn::at(t, i)
    {
        return Some((Entity::UsSsn, e));
    }
    if kinds.contains(Entity::Phone)
        && let Some(e) = phone::north_american(t, i)
    {
        return Some((Entity::Phone, e));
    }
    if kinds.contains(Entity::IpAddress)
        && let Some(e) = ip::v4(t, i)
    {
        return Some((Entity::IpAddress, e));
    }
    None
}
