//! The pools behind the shards' leases. A [`Slot`] is one limit instance (say "key k1, requests
//! per minute"); a [`Pool`] grants slices of a slot's current window to shards and takes back
//! what they return. Shards only ever call the trait, so the in-process pool here can be
//! replaced by a cluster one without touching them.
//!
//! The in-process pool is one atomic word per slot: the window number (24 bits) and the
//! amount granted in it (40 bits), changed by compare-and-swap. A shard touches it only when
//! its lease runs out (every few requests at most, adaptively fewer), never per request.
//!
//! In cluster mode a slot also carries what this replica holds of the window in the shared
//! pool (set by control, read by [`super::Replica`]); the in-process pool never reads it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::window::Window;

const USED_BITS: u32 = 40;
const USED_MAX: u64 = (1 << USED_BITS) - 1;
const WINDOW_MASK: u32 = 0xff_ffff;

/// One limit instance: what it counts in, its capacity, and the pool's state for it.
#[derive(Debug)]
pub struct Slot {
    /// Dense, stable for the process: shards index their leases by it.
    pub id: u32,
    /// Stable name, e.g. `key:key_ab12:rpm`, for messages, persistence and metrics.
    pub key: Box<str>,
    pub window: Window,
    /// The limit; changes in place when an operator edits it.
    capacity: AtomicU64,
    /// `window << 40 | granted`.
    state: AtomicU64,
    /// Cluster mode: this replica's share of the shared pool, for the current window and the
    /// next one (`window << 40 | amount` each), what the other replicas hold, and what their
    /// shards took of it (control's view, for key info and soft budgets; shards never read it).
    share: [AtomicU64; 2],
    others: AtomicU64,
    others_used: AtomicU64,
    /// Cluster mode: below capacity the shortfall a shard last met, for control to top up.
    short: AtomicU64,
    /// Cluster mode: the shared pool is out of reach and this budget refuses meanwhile.
    pub pool_down: AtomicBool,
}

impl Slot {
    pub fn new(id: u32, key: impl Into<Box<str>>, window: Window, capacity: u64) -> Slot {
        Slot {
            id,
            key: key.into(),
            window,
            capacity: AtomicU64::new(capacity.min(USED_MAX)),
            state: AtomicU64::new(0),
            share: [AtomicU64::new(0), AtomicU64::new(0)],
            others: AtomicU64::new(0),
            others_used: AtomicU64::new(0),
            short: AtomicU64::new(0),
            pool_down: AtomicBool::new(false),
        }
    }

    /// What this replica holds of `window` in the shared pool (cluster mode).
    pub fn share(&self, window: u32) -> u64 {
        self.share
            .iter()
            .map(|w| w.load(Ordering::Acquire))
            .find(|s| (s >> USED_BITS) as u32 == window)
            .map_or(0, |s| s & USED_MAX)
    }

    /// Sets this replica's share of `window`; `next` marks a reservation made ahead for the
    /// window after the current one.
    pub fn set_share(&self, window: u32, amount: u64, next: bool) {
        let packed = u64::from(window) << USED_BITS | amount.min(USED_MAX);
        self.share[usize::from(next)].store(packed, Ordering::Release);
    }

    /// What the other replicas hold of `window`, as the shared pool last said.
    pub fn others(&self, window: u32) -> u64 {
        unpack(self.others.load(Ordering::Acquire), window)
    }

    /// What the other replicas' shards took of `window`, as the shared pool last said.
    pub fn others_used(&self, window: u32) -> u64 {
        unpack(self.others_used.load(Ordering::Acquire), window)
    }

    /// What the shared pool said of the other replicas in `window`: held, and taken of that.
    pub fn set_others(&self, window: u32, held: u64, used: u64) {
        let pack = |n: u64| u64::from(window) << USED_BITS | n.min(USED_MAX);
        self.others.store(pack(held), Ordering::Release);
        self.others_used.store(pack(used), Ordering::Release);
    }

    /// A shard found this replica's share short by `amount` (cluster mode).
    pub fn note_short(&self, amount: u64) {
        self.short.fetch_max(amount, Ordering::Relaxed);
    }

    /// The largest shortfall noted since the last call.
    pub fn take_short(&self) -> u64 {
        self.short.swap(0, Ordering::Relaxed)
    }

    /// Grants `need` or more, up to `want`, of `window` if `cap` leaves that much (the pools'
    /// one compare-and-swap loop; `cap` is the capacity or this replica's share of it).
    #[inline]
    pub(super) fn take(&self, window: u32, need: u64, want: u64, cap: u64) -> u64 {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let stored = (cur >> USED_BITS) as u32;
            // A grant for a window older than the slot's (a late settlement) would wipe the
            // current window's count: refused. Windows compare modulo 2^24.
            let older = window.wrapping_sub(stored) & WINDOW_MASK > WINDOW_MASK / 2;
            if stored != window && older && cur & USED_MAX > 0 {
                return 0;
            }
            let granted = if stored == window { cur & USED_MAX } else { 0 };
            let left = cap.saturating_sub(granted);
            if left < need {
                return 0;
            }
            let give = want.max(need).min(left);
            let next = u64::from(window) << USED_BITS | (granted + give);
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return give,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Takes back `amount` granted in `window` (nothing once the window moved on).
    #[inline]
    pub(super) fn give_back(&self, window: u32, amount: u64) {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if (cur >> USED_BITS) as u32 != window || amount == 0 {
                return;
            }
            let granted = (cur & USED_MAX).saturating_sub(amount);
            let next = u64::from(window) << USED_BITS | granted;
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn set_capacity(&self, capacity: u64) {
        self.capacity
            .store(capacity.min(USED_MAX), Ordering::Relaxed);
    }

    /// Granted so far in `window` (0 if the slot is on another window).
    pub fn granted(&self, window: u32) -> u64 {
        unpack(self.state.load(Ordering::Acquire), window)
    }

    /// Sets what was used in `window` (a restart restoring its counters).
    pub fn restore(&self, window: u32, used: u64) {
        self.state.store(
            u64::from(window) << USED_BITS | used.min(USED_MAX),
            Ordering::Release,
        );
    }
}

/// Grants and takes back slices of slots' windows.
pub trait Pool: Send + Sync {
    /// Grants `need` or more, up to `want`, of `slot`'s window `window` if that much is left;
    /// else grants nothing. Returns what was granted.
    fn acquire(&self, slot: &Slot, window: u32, need: u64, want: u64) -> u64;
    /// Takes back an unused part of a grant in `window` (ignored once the window moved on).
    fn release(&self, slot: &Slot, window: u32, amount: u64);
    /// What is left to grant in `window`.
    fn remaining(&self, slot: &Slot, window: u32) -> u64 {
        slot.capacity().saturating_sub(slot.granted(window))
    }
}

/// The pool of one process: the slots' own atomics.
#[derive(Debug, Default)]
pub struct InProcess;

impl Pool for InProcess {
    fn acquire(&self, slot: &Slot, window: u32, need: u64, want: u64) -> u64 {
        slot.take(window, need, want, slot.capacity())
    }

    fn release(&self, slot: &Slot, window: u32, amount: u64) {
        slot.give_back(window, amount);
    }
}

/// The amount of a packed `window << 40 | amount` word, if it is for `window`.
fn unpack(s: u64, window: u32) -> u64 {
    if (s >> USED_BITS) as u32 == window {
        s & USED_MAX
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_never_pass_capacity_and_a_new_window_starts_empty() {
        let s = Slot::new(0, "t", Window::Secs(60), 10);
        let p = InProcess;
        assert_eq!(p.acquire(&s, 5, 1, 4), 4);
        assert_eq!(p.acquire(&s, 5, 1, 100), 6);
        assert_eq!(p.acquire(&s, 5, 1, 1), 0);
        p.release(&s, 5, 3);
        assert_eq!(p.remaining(&s, 5), 3);
        p.release(&s, 4, 3); // an old window's return is dropped
        assert_eq!(p.remaining(&s, 5), 3);
        assert_eq!(p.acquire(&s, 5, 4, 4), 0, "need more than is left: nothing");
        assert_eq!(p.acquire(&s, 6, 1, 10), 10, "the next window");
        assert_eq!(
            p.acquire(&s, 5, 1, 1),
            0,
            "an older window never comes back"
        );
        assert_eq!(p.remaining(&s, 6), 0);
    }

    #[test]
    fn concurrent_grants_sum_to_capacity_exactly() {
        let s = std::sync::Arc::new(Slot::new(0, "t", Window::Secs(1), 100_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    loop {
                        let g = InProcess.acquire(&s, 1, 1, 7);
                        if g == 0 {
                            return got;
                        }
                        got += g;
                    }
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 100_000);
    }
}
