//! The semantic cache's index: one shard's embeddings of earlier requests' last user turns,
//! each pointing at the answer kept in the exact store ([`super::store::Store`]) under that
//! request's exact key. A request whose last user turn embeds close enough to one of them, and
//! whose *scope* is the same, may be served that answer.
//!
//! The scope is the caller's hash of everything a match must share: alias, target group,
//! tenant, client protocol, namespace, and the context hash of [`split`] (the body without
//! that turn's text) — [`super::key::key`] over a [`super::key::Parts`] whose `body` is the
//! context is one. The index never compares across scopes, nor across dimensions (another
//! embedding model, another group).
//!
//! Vectors are stored unit-length, as `f32`, contiguously per (scope, dimension) group, so a
//! lookup is one tight dot-product pass over its group and no other. At most `max_entries`
//! are kept: past it the least recently used goes first (an insert or a hit is a use). Expired
//! entries are dropped when a lookup passes over them. The index owns no answers and takes no
//! lock: it is its shard's alone, and an answer purged from the store must be removed here too
//! ([`Index::purge`]) or it simply misses there.

mod turn;

pub use turn::{Split, split};

use std::collections::{HashMap, VecDeque};

use foldhash::fast::FixedState;

/// A group's key: the scope and the vectors' dimension.
type GroupKey = (u128, usize);

/// The entries of one scope and dimension, slot by slot.
struct Group {
    dims: usize,
    /// `dims` floats per slot, unit length.
    vectors: Vec<f32>,
    answers: Vec<u128>,
    expires: Vec<i64>,
}

/// Where an answer's entry is, and its last use.
struct Place {
    group: GroupKey,
    slot: usize,
    used: u64,
}

/// One shard's semantic index, bounded by `max_entries` (least recently used evicted).
pub struct Index {
    max_entries: usize,
    groups: HashMap<GroupKey, Group, FixedState>,
    places: HashMap<u128, Place, FixedState>,
    /// (answer, use) oldest use first; a record whose use is not its entry's last is stale
    /// and skipped, so a use is O(1) and the queue is compacted once it is mostly stale.
    order: VecDeque<(u128, u64)>,
    clock: u64,
    evictions: u64,
}

impl Index {
    pub fn new(max_entries: usize) -> Index {
        Index {
            max_entries,
            groups: HashMap::default(),
            places: HashMap::default(),
            order: VecDeque::new(),
            clock: 0,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Entries evicted to keep within `max_entries` so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Indexes `vector` under `scope` as the way to `answer` (an exact-cache key), until
    /// `expires_ms`; an entry already there for `answer` is replaced. An empty vector, one with
    /// a non-finite component or of zero length is refused (false).
    pub fn insert(&mut self, scope: u128, vector: &[f32], answer: u128, expires_ms: i64) -> bool {
        if self.max_entries == 0 {
            return false;
        }
        let Some(norm) = norm(vector) else {
            return false;
        };
        self.remove(answer);
        let dims = vector.len();
        let group = (scope, dims);
        let g = self.groups.entry(group).or_insert_with(|| Group {
            dims,
            vectors: Vec::new(),
            answers: Vec::new(),
            expires: Vec::new(),
        });
        let slot = g.answers.len();
        let inv = 1.0 / norm;
        g.vectors
            .extend(vector.iter().map(|&x| (x as f64 * inv) as f32));
        g.answers.push(answer);
        g.expires.push(expires_ms);
        let used = self.tick(answer);
        self.places.insert(answer, Place { group, slot, used });
        while self.places.len() > self.max_entries {
            self.evict();
        }
        true
    }

    /// The answer whose vector is most similar to `vector` (cosine similarity, at least
    /// `threshold`) among the unexpired entries of `scope` with as many dimensions, and that
    /// similarity; it becomes the most recently used. Expired entries passed over are dropped.
    pub fn nearest(
        &mut self,
        scope: u128,
        vector: &[f32],
        threshold: f32,
        now_ms: i64,
    ) -> Option<(u128, f32)> {
        let inv = (1.0 / norm(vector)?) as f32;
        let dims = vector.len();
        let g = self.groups.get(&(scope, dims))?;
        let mut best: Option<(u128, f32)> = None;
        let mut expired = Vec::new();
        for ((v, &expires), &answer) in g.vectors.chunks_exact(dims).zip(&g.expires).zip(&g.answers)
        {
            if now_ms >= expires {
                expired.push(answer);
                continue;
            }
            let s = (dot(vector, v) * inv).min(1.0);
            if s >= threshold && best.is_none_or(|(_, b)| s > b) {
                best = Some((answer, s));
            }
        }
        for answer in expired {
            self.remove(answer);
        }
        let (answer, s) = best?;
        let used = self.tick(answer);
        if let Some(p) = self.places.get_mut(&answer) {
            p.used = used;
        }
        Some((answer, s))
    }

    /// Drops `answer`'s entry, if any (true when there was one).
    pub fn remove(&mut self, answer: u128) -> bool {
        let Some(p) = self.places.remove(&answer) else {
            return false;
        };
        let g = self
            .groups
            .get_mut(&p.group)
            .expect("every place is in its group");
        let (d, last) = (g.dims, g.answers.len() - 1);
        if p.slot != last {
            // The last slot moves into the freed one.
            g.vectors.copy_within(last * d..(last + 1) * d, p.slot * d);
            g.answers[p.slot] = g.answers[last];
            g.expires[p.slot] = g.expires[last];
            if let Some(moved) = self.places.get_mut(&g.answers[p.slot]) {
                moved.slot = p.slot;
            }
        }
        g.vectors.truncate(last * d);
        g.answers.pop();
        g.expires.pop();
        if g.answers.is_empty() {
            self.groups.remove(&p.group);
        }
        true
    }

    /// Drops every entry whose answer `gone` says is gone (for instance, not in the exact
    /// store after a purge of it); how many were dropped.
    pub fn purge(&mut self, mut gone: impl FnMut(u128) -> bool) -> usize {
        let doomed: Vec<u128> = self.places.keys().copied().filter(|&a| gone(a)).collect();
        for &a in &doomed {
            self.remove(a);
        }
        doomed.len()
    }

    /// A new use of `answer`: its record at the back of the queue.
    fn tick(&mut self, answer: u128) -> u64 {
        self.clock += 1;
        let now = self.clock;
        self.order.push_back((answer, now));
        if self.order.len() > 2 * self.places.len() + 64 {
            // `answer`'s place may not say `now` yet: its caller records it next.
            let places = &self.places;
            self.order
                .retain(|&(a, used)| used == now || places.get(&a).is_some_and(|p| p.used == used));
        }
        now
    }

    /// Drops the least recently used entry.
    fn evict(&mut self) {
        while let Some((answer, used)) = self.order.pop_front() {
            if self.places.get(&answer).is_some_and(|p| p.used == used) {
                self.remove(answer);
                self.evictions += 1;
                return;
            }
        }
    }
}

/// The vector's length, if it can be made unit length: not empty, every component finite.
fn norm(v: &[f32]) -> Option<f64> {
    if v.is_empty() || !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    (n > 0.0 && n.is_finite()).then_some(n)
}

/// The dot product in eight lanes (floats do not reassociate, so one running sum would not
/// vectorise; eight independent ones do).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;
    const LATER: i64 = 10_000;

    /// A unit vector at `angle` radians from the first axis, in the first two dimensions of `n`.
    fn at(angle: f32, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        v[0] = angle.cos();
        v[1] = angle.sin();
        v
    }

    #[test]
    fn the_threshold_is_inclusive_and_below_it_misses() {
        let mut ix = Index::new(16);
        // Not unit length on the way in: stored normalised.
        let stored: Vec<f32> = at(0.0, 20).iter().map(|x| x * 3.0).collect();
        assert!(ix.insert(7, &stored, 0xa, LATER));
        let cos = 0.95f32;
        let hit = at(cos.acos() - 1e-3, 20);
        let (answer, s) = ix.nearest(7, &hit, 0.95, NOW).unwrap();
        assert_eq!(answer, 0xa);
        assert!((0.95..0.951).contains(&s), "{s}");
        let miss = at(cos.acos() + 1e-3, 20);
        assert_eq!(ix.nearest(7, &miss, 0.95, NOW), None);
        // The stored direction itself is a perfect match.
        let (_, s) = ix.nearest(7, &at(0.0, 20), 1.0, NOW).unwrap();
        assert!((s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_best_match_wins() {
        let mut ix = Index::new(16);
        ix.insert(1, &at(0.30, 9), 1, LATER);
        ix.insert(1, &at(0.10, 9), 2, LATER);
        ix.insert(1, &at(0.20, 9), 3, LATER);
        assert_eq!(ix.nearest(1, &at(0.0, 9), 0.5, NOW).unwrap().0, 2);
        assert_eq!(ix.nearest(1, &at(0.28, 9), 0.5, NOW).unwrap().0, 1);
    }

    #[test]
    fn another_scope_never_matches() {
        let mut ix = Index::new(16);
        ix.insert(1, &at(0.0, 8), 0xa, LATER);
        assert_eq!(ix.nearest(2, &at(0.0, 8), 0.0, NOW), None);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.0, NOW).unwrap().0, 0xa);
    }

    #[test]
    fn another_dimension_never_matches() {
        let mut ix = Index::new(16);
        ix.insert(1, &at(0.0, 8), 0xa, LATER);
        assert_eq!(ix.nearest(1, &at(0.0, 9), -1.0, NOW), None);
        ix.insert(1, &at(0.0, 9), 0xb, LATER);
        assert_eq!(ix.nearest(1, &at(0.0, 9), 0.9, NOW).unwrap().0, 0xb);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.9, NOW).unwrap().0, 0xa);
    }

    #[test]
    fn expired_entries_miss_and_are_dropped() {
        let mut ix = Index::new(16);
        ix.insert(1, &at(0.0, 8), 0xa, NOW + 5);
        ix.insert(1, &at(0.1, 8), 0xb, LATER);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.9, NOW).unwrap().0, 0xa);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.9, NOW + 5).unwrap().0, 0xb);
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.9, LATER), None);
        assert!(ix.is_empty() && ix.groups.is_empty());
    }

    #[test]
    fn the_least_recently_used_is_evicted_past_the_bound() {
        let mut ix = Index::new(3);
        for a in 0..3u128 {
            ix.insert(1, &at(a as f32, 8), a, LATER);
        }
        // A hit on 0 makes 1 the least recently used.
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.99, NOW).unwrap().0, 0);
        ix.insert(2, &at(0.0, 8), 3, LATER);
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.evictions(), 1);
        assert!(!ix.places.contains_key(&1));
        assert_eq!(ix.nearest(1, &at(1.0, 8), 0.99, NOW), None);
        for a in 4..1_000u128 {
            ix.insert(a % 5, &at(a as f32, 8), a, LATER);
            assert!(ix.len() <= 3);
        }
        // The queue of uses stays bounded too.
        assert!(ix.order.len() <= 2 * 3 + 65);
        assert_eq!(
            ix.groups.values().map(|g| g.answers.len()).sum::<usize>(),
            3
        );
        assert!(!Index::new(0).insert(1, &at(0.0, 8), 1, LATER));
    }

    #[test]
    fn inserting_an_answer_again_replaces_it() {
        let mut ix = Index::new(16);
        ix.insert(1, &at(0.0, 8), 0xa, LATER);
        ix.insert(1, &at(0.1, 8), 0xb, LATER);
        ix.insert(1, &at(1.5, 8), 0xa, LATER);
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.nearest(1, &at(0.0, 8), 0.9, NOW).unwrap().0, 0xb);
        assert_eq!(ix.nearest(1, &at(1.5, 8), 0.99, NOW).unwrap().0, 0xa);
        // Into another scope: gone from the first.
        ix.insert(2, &at(1.5, 8), 0xa, LATER);
        assert_eq!(ix.nearest(1, &at(1.5, 8), 0.99, NOW), None);
        assert_eq!(ix.nearest(2, &at(1.5, 8), 0.99, NOW).unwrap().0, 0xa);
    }

    #[test]
    fn vectors_that_cannot_be_normalised_are_refused() {
        let mut ix = Index::new(16);
        assert!(!ix.insert(1, &[], 1, LATER));
        assert!(!ix.insert(1, &[0.0; 8], 1, LATER));
        assert!(!ix.insert(1, &[1.0, f32::NAN], 1, LATER));
        assert!(!ix.insert(1, &[1.0, f32::INFINITY], 1, LATER));
        assert!(ix.is_empty());
        ix.insert(1, &at(0.0, 8), 1, LATER);
        assert_eq!(ix.nearest(1, &[0.0; 8], -1.0, NOW), None);
        assert_eq!(ix.nearest(1, &[], -1.0, NOW), None);
        // Large but finite components are fine.
        assert!(ix.insert(1, &[3e38, 3e38], 2, LATER));
        assert!(ix.nearest(1, &[1.0, 1.0], 0.999, NOW).is_some());
    }

    #[test]
    fn remove_and_purge_keep_the_slots_consistent() {
        let mut ix = Index::new(64);
        for a in 0..10u128 {
            ix.insert(1, &at(a as f32 * 0.3, 8), a, LATER);
        }
        assert!(ix.remove(0) && !ix.remove(0));
        assert_eq!(ix.purge(|a| a % 2 == 1), 5);
        assert_eq!(ix.len(), 4);
        for a in [2u128, 4, 6, 8] {
            let got = ix.nearest(1, &at(a as f32 * 0.3, 8), 0.999, NOW).unwrap();
            assert_eq!(got.0, a);
        }
        assert_eq!(ix.nearest(1, &at(0.3, 8), 0.999, NOW), None);
    }

    #[test]
    fn the_dot_product_covers_the_tail() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b = vec![1.0; 13];
        assert_eq!(dot(&a, &b), 78.0);
    }
}
