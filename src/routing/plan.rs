//! The output of route selection: [`Plan`], an ordered list of target indices in a fixed array,
//! and [`TargetSet`], a bitset of an alias's targets.
//!
//! Both are plain `Copy`-sized values so that planning never allocates. The fixed capacity is
//! [`MAX_TARGETS`]: config rejects an alias with more targets, so every index of an alias fits in
//! one `u16` bitset and one plan.

use std::time::Duration;

/// Most targets one alias may have. A `Plan` holds at most this many entries and a `TargetSet`
/// is one `u16`; `config` validates every alias against it. Sixteen deployments behind one alias
/// is already far beyond what the route strategies are useful for.
pub const MAX_TARGETS: usize = 16;

/// A set of target indices (0..16) of one alias.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TargetSet(u16);

impl TargetSet {
    pub const EMPTY: TargetSet = TargetSet(0);

    /// Targets `0..n` (`n` is clamped to [`MAX_TARGETS`]).
    pub fn first(n: usize) -> TargetSet {
        let n = n.min(MAX_TARGETS);
        TargetSet(((1u32 << n) - 1) as u16)
    }

    pub fn from_bits(bits: u16) -> TargetSet {
        TargetSet(bits)
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    /// Adds `i`; indices at or beyond [`MAX_TARGETS`] are ignored (config never makes them).
    pub fn insert(&mut self, i: usize) {
        if i < MAX_TARGETS {
            self.0 |= 1 << i;
        }
    }

    pub fn contains(self, i: usize) -> bool {
        i < MAX_TARGETS && self.0 & (1 << i) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersect(self, other: TargetSet) -> TargetSet {
        TargetSet(self.0 & other.0)
    }

    /// The indices in ascending order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(i)
        })
    }
}

/// Why a plan came out empty, so the pipeline can pick its answer (or try a fallback alias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Some eligible target is at its `max_concurrent`: the gateway is busy (answer 429).
    Saturated,
    /// Some eligible target is cooling down after the provider's own 429 (answer 429 with
    /// [`Plan::ready_in`] as `Retry-After`).
    RateLimited,
    /// Every eligible target is down: breaker open or credentials benched (answer 503).
    Unavailable,
}

/// The targets to try for one request, best first. Filled by [`super::Router::plan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    order: [u16; MAX_TARGETS],
    len: u8,
    rule: Option<u8>,
    saturated: TargetSet,
    cooling: TargetSet,
    down: TargetSet,
    ready_in: Option<Duration>,
}

impl Plan {
    /// Target indices (into `Model::targets`) in the order to try them.
    pub fn targets(&self) -> &[u16] {
        &self.order[..self.len as usize]
    }

    pub fn first(&self) -> Option<usize> {
        self.targets().first().map(|&i| i as usize)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index of the rule (in `Model::rules`) that chose the eligible targets, if one matched.
    pub fn rule(&self) -> Option<usize> {
        self.rule.map(usize::from)
    }

    /// Eligible targets left out because they were at `max_concurrent`.
    pub fn saturated(&self) -> TargetSet {
        self.saturated
    }

    /// Eligible targets left out because they are cooling down after an upstream 429.
    pub fn cooling(&self) -> TargetSet {
        self.cooling
    }

    /// Eligible targets left out because their breaker is open or their credentials are benched.
    pub fn down(&self) -> TargetSet {
        self.down
    }

    /// When the plan is empty, why. Saturation wins over rate limiting, which wins over
    /// unavailability: if anything could take the request soon, the answer is "busy", not "down".
    pub fn shortfall(&self) -> Option<Shortfall> {
        if !self.is_empty() {
            None
        } else if !self.saturated.is_empty() {
            Some(Shortfall::Saturated)
        } else if !self.cooling.is_empty() {
            Some(Shortfall::RateLimited)
        } else {
            Some(Shortfall::Unavailable)
        }
    }

    /// How long until the first excluded (cooling or down) target may be tried again, measured
    /// from the `now` given to `plan`; a `Retry-After` hint.
    pub fn ready_in(&self) -> Option<Duration> {
        self.ready_in
    }

    pub(super) fn clear(&mut self) {
        // Field by field: the order array needs no zeroing (`len` bounds it), and building a
        // whole default value to copy in costs a store-forwarding stall on this hot path.
        self.len = 0;
        self.rule = None;
        self.saturated = TargetSet::EMPTY;
        self.cooling = TargetSet::EMPTY;
        self.down = TargetSet::EMPTY;
        self.ready_in = None;
    }

    pub(super) fn set_rule(&mut self, rule: Option<usize>) {
        self.rule = rule.map(|r| r.min(u8::MAX as usize) as u8);
    }

    pub(super) fn push(&mut self, target: usize) {
        debug_assert!((self.len as usize) < MAX_TARGETS);
        if (self.len as usize) < MAX_TARGETS {
            self.order[self.len as usize] = target as u16;
            self.len += 1;
        }
    }

    pub(super) fn extend(&mut self, targets: TargetSet) {
        for i in targets.iter() {
            self.push(i);
        }
    }

    pub(super) fn exclude_saturated(&mut self, target: usize) {
        self.saturated.insert(target);
    }

    pub(super) fn exclude_cooling(&mut self, target: usize, ready_in: Duration) {
        self.cooling.insert(target);
        self.note_ready(ready_in);
    }

    /// `ready_in` is `None` for a half-open breaker whose probes are all in flight.
    pub(super) fn exclude_down(&mut self, target: usize, ready_in: Option<Duration>) {
        self.down.insert(target);
        if let Some(d) = ready_in {
            self.note_ready(d);
        }
    }

    fn note_ready(&mut self, d: Duration) {
        self.ready_in = Some(self.ready_in.map_or(d, |r| r.min(d)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_set_basics() {
        let mut s = TargetSet::EMPTY;
        s.insert(0);
        s.insert(5);
        s.insert(15);
        s.insert(16); // ignored
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 5, 15]);
        assert_eq!(s.len(), 3);
        assert!(s.contains(5) && !s.contains(4) && !s.contains(16));
        assert_eq!(TargetSet::first(16).len(), 16);
        assert_eq!(TargetSet::first(3).bits(), 0b111);
        assert_eq!(s.intersect(TargetSet::first(6)).len(), 2);
    }

    #[test]
    fn shortfall_prefers_busy_over_down() {
        let mut p = Plan::default();
        assert_eq!(p.shortfall(), Some(Shortfall::Unavailable));
        p.exclude_down(0, Some(Duration::from_secs(30)));
        p.exclude_cooling(1, Duration::from_secs(2));
        assert_eq!(p.shortfall(), Some(Shortfall::RateLimited));
        assert_eq!(p.ready_in(), Some(Duration::from_secs(2)));
        p.exclude_saturated(2);
        assert_eq!(p.shortfall(), Some(Shortfall::Saturated));
        p.push(3);
        assert_eq!(p.shortfall(), None);
        assert_eq!(p.targets(), [3]);
    }
}
