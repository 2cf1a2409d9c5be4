//! Hold-back for streamed text: output checks must see a match whole before any of it leaves,
//! but a stream arrives in arbitrary pieces.
//!
//! [`Holdback`] keeps the unreleased text. On each push it releases a prefix that no match can
//! still change, together with the findings in it:
//!
//! - everything but the last `max_span` bytes (the largest [`Check::max_span`] of the checks in
//!   use): a match not yet complete is shorter than that, so it starts inside the tail;
//! - cut only at a *clean* point, just after ASCII whitespace or a non-ASCII char (and never
//!   just before a U+FEFF, which a scan treats as a BOM at a text's start). Every detector
//!   bounds matches at such a point exactly as at the start of a text, so the next window
//!   scans like the whole text would. Punctuation is not clean: after `1.2.` a window
//!   starting `3.4.5.6` would see an IP the whole text does not have;
//! - and never inside a finding. Matches may contain whitespace (`4111 1111 1111 1111`, phrases,
//!   PEM blocks), so a whitespace cut alone could split one. The holder therefore scans all it
//!   holds (through the caller's `scan`) and moves the cut back before any finding that
//!   crosses it. That is why `push` takes the scan: the prefix is only known to be safe after
//!   a scan that saw past it.
//!
//! Guarantee (the proptest below): for matches of at most `max_span` bytes in text that has a
//! clean point in every `max_span` window, the findings of all releases are exactly those of
//! scanning the whole text. Outside it — a longer match, or a stretch with no clean point held
//! past `FORCE × max_span` bytes — the cut is forced at the span boundary and a crossing
//! finding is clipped to the released part, so nothing is let out unscanned and memory stays
//! bounded.
//!
//! Cost: a push that can release rescans the held tail, about `max_span` bytes plus what
//! arrived; a push that cannot (the held text is still within `max_span`) scans nothing. With
//! token-sized deltas that is a rescan per delta; [`Holdback::min_release`] trades a little
//! more latency for fewer rescans.
//!
//! [`Check::max_span`]: super::Check::max_span

use super::Finding;
use super::class::floor_char;

/// Held text beyond `FORCE × max_span` is released even without a clean cut.
const FORCE: usize = 4;
const BOM: &[u8] = "\u{FEFF}".as_bytes();

/// Holds back the tail of streamed text that a match might still be completing, so output
/// checks see text before it leaves.
#[derive(Debug, Default, Clone)]
pub struct Holdback {
    held: String,
    max_span: usize,
    min_release: usize,
}

impl Holdback {
    /// `max_span`: the largest [`Check::max_span`](super::Check::max_span) of the checks the
    /// caller's scan runs.
    pub fn new(max_span: usize) -> Holdback {
        Holdback {
            held: String::new(),
            max_span: max_span.max(1),
            min_release: 0,
        }
    }

    /// Scans and releases only once at least `bytes` could leave (default 0: as soon as
    /// anything can), so a stream of tiny deltas is rescanned once per `bytes` rather than per
    /// delta; each release then waits for up to `bytes` more text.
    pub fn min_release(mut self, bytes: usize) -> Holdback {
        self.min_release = bytes;
        self
    }

    /// Appends `text` and returns the prefix that is now safe to emit (possibly empty), with
    /// `found` cleared and then filled with the findings in it (ranges relative to the returned
    /// text, ready for [`redact`](super::redact)). `scan` is called at most once, on all the
    /// held text, and must append the findings of every check in use.
    pub fn push<S>(&mut self, text: &str, found: &mut Vec<Finding>, mut scan: S) -> String
    where
        S: FnMut(&str, &mut Vec<Finding>),
    {
        self.held.push_str(text);
        found.clear();
        let n = self.held.len();
        if n <= self.max_span {
            return String::new();
        }
        let limit = floor_char(&self.held, n - self.max_span);
        let forced = n > FORCE * self.max_span;
        let clean = clean_cut(&self.held, limit);
        if clean.is_none_or(|c| c < self.min_release) && !forced {
            return String::new();
        }
        scan(&self.held, found);
        let cut = match self.settle(clean, found) {
            Some(cut) => cut,
            None if forced => limit,
            None => 0,
        };
        found.retain(|f| f.range.start < cut);
        for f in found.iter_mut() {
            f.range.end = f.range.end.min(cut);
        }
        if cut == 0 {
            return String::new();
        }
        let rest = self.held.split_off(cut);
        std::mem::replace(&mut self.held, rest)
    }

    /// At the end of the stream: the rest, scanned whole into `found` (cleared first).
    pub fn finish<S>(&mut self, found: &mut Vec<Finding>, mut scan: S) -> String
    where
        S: FnMut(&str, &mut Vec<Finding>),
    {
        found.clear();
        let rest = std::mem::take(&mut self.held);
        scan(&rest, found);
        rest
    }

    /// Bytes held back now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The clean cut at or before `cut` that no finding of at most `max_span` bytes crosses.
    fn settle(&self, mut cut: Option<usize>, found: &[Finding]) -> Option<usize> {
        while let Some(c) = cut {
            let crossing = found
                .iter()
                .filter(|f| f.range.start < c && c < f.range.end)
                .filter(|f| f.range.len() <= self.max_span)
                .map(|f| f.range.start)
                .min();
            match crossing {
                None => return Some(c),
                Some(start) => cut = clean_cut(&self.held, start),
            }
        }
        None
    }
}

/// The last clean point in `1..=limit`: just after ASCII whitespace or a non-ASCII char, on a
/// char boundary, and not just before a U+FEFF.
fn clean_cut(text: &str, limit: usize) -> Option<usize> {
    let t = text.as_bytes();
    (1..=limit.min(t.len())).rev().find(|&p| {
        let b = t[p - 1];
        (b.is_ascii_whitespace() || b >= 0x80)
            && text.is_char_boundary(p)
            && !t[p..].starts_with(BOM)
    })
}

#[cfg(test)]
mod tests;
