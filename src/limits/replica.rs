//! The pool of one replica in a cluster. Shards call it exactly as the in-process pool: the
//! difference is the ceiling. A slot's window grants at most what this replica holds of it in
//! the shared pool (Redis), which the control thread reserves ahead of the shards' need and
//! writes into the slot ([`Slot::set_share`]). So the replicas' shards together never pass
//! the limit: Redis never lets the replicas' shares add up to more than the capacity.
//!
//! It never blocks and never talks to Redis. A shard that finds the share short notes the
//! shortfall in the slot and raises a flag control looks at every few milliseconds, so the
//! share is topped up well before its next full tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Pool, Slot};

/// The cluster pool: grants within this replica's share of each slot's window.
#[derive(Debug, Default)]
pub struct Replica {
    /// Raised when a shard met a share short (control lowers it).
    pub short: Arc<AtomicBool>,
}

impl Pool for Replica {
    fn acquire(&self, slot: &Slot, window: u32, need: u64, want: u64) -> u64 {
        let cap = slot.share(window).min(slot.capacity());
        let got = slot.take(window, need, want, cap);
        if got == 0 {
            slot.note_short(need);
            self.short.store(true, Ordering::Release);
        }
        got
    }

    fn release(&self, slot: &Slot, window: u32, amount: u64) {
        slot.give_back(window, amount);
    }

    /// What the cluster has left: the capacity less what the other replicas hold and what
    /// this one granted (its shards' slices are sized by it; what they may take is the share).
    fn remaining(&self, slot: &Slot, window: u32) -> u64 {
        slot.capacity()
            .saturating_sub(slot.others(window) + slot.granted(window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Window;

    #[test]
    fn grants_stay_within_the_replicas_share() {
        let s = Slot::new(0, "t", Window::Secs(60), 60);
        let p = Replica::default();
        assert_eq!(p.acquire(&s, 7, 1, 5), 0, "no share: nothing");
        assert_eq!(s.take_short(), 1, "the shortfall is noted for control");
        assert!(
            p.short.swap(false, Ordering::Acquire),
            "and control is told"
        );
        assert_eq!(s.take_short(), 0);
        s.set_share(7, 10, false);
        s.set_share(8, 4, true);
        s.set_others(7, 30, 10);
        assert_eq!(p.remaining(&s, 7), 30);
        assert_eq!(p.acquire(&s, 7, 1, 8), 8);
        assert_eq!(p.remaining(&s, 7), 22, "capacity − others − granted");
        assert_eq!(p.acquire(&s, 7, 1, 8), 2, "only what is left of the share");
        assert_eq!(p.acquire(&s, 7, 1, 1), 0);
        p.release(&s, 7, 3);
        assert_eq!(p.acquire(&s, 7, 3, 3), 3, "a return is granted again");
        assert_eq!(p.acquire(&s, 8, 1, 10), 4, "the next window's reservation");
        s.set_capacity(2);
        s.set_share(9, 10, false);
        assert_eq!(p.acquire(&s, 9, 1, 10), 2, "never past the capacity");
    }
}
