//! A shard's leases: per slot, what this shard was granted of the current window and has not
//! yet charged. Admission charges them with plain arithmetic; only a lease that runs short goes
//! to the pool, for a slice sized to this shard's recent rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Limit, Meter, Pool, Side, Slot};

/// Limits one request can be charged against at most (key, team, alias, key × alias, user:
/// each a few windows); more are not checked (the control side never builds that many).
pub const MAX_CHARGES: usize = 12;

/// What a request asks for, before it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand {
    /// Prompt tokens (estimated).
    pub input: u64,
    /// Completion tokens it may produce (`max_tokens`, else the alias's bound).
    pub output: u64,
    /// Its worst-case cost, micro-dollars.
    pub spend: u64,
}

/// What a request turned out to use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actual {
    pub input: u64,
    pub output: u64,
    pub spend: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Charge {
    slot: u32,
    meter: Option<Meter>,
    window: u32,
    amount: u64,
}

/// The charges of one admitted request, to settle when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Charges {
    items: [Charge; MAX_CHARGES],
    n: usize,
}

impl Charges {
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// What was reserved for `meter` (the first such charge).
    pub fn reserved(&self, meter: Meter) -> u64 {
        self.items[..self.n]
            .iter()
            .find(|c| c.meter == Some(meter))
            .map_or(0, |c| c.amount)
    }

    /// The window the charge for `meter` was made in.
    pub fn window_of(&self, meter: Meter) -> u32 {
        self.items[..self.n]
            .iter()
            .find(|c| c.meter == Some(meter))
            .map_or(0, |c| c.window)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub limit: Limit,
    /// Seconds until the window frees capacity (at least 1).
    pub retry_after_s: u64,
}

/// A limit's state, for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window resets.
    pub reset_ms: i64,
}

#[derive(Debug)]
struct Lease {
    slot: Arc<Slot>,
    window: u32,
    /// Granted to this shard and not yet charged.
    left: u64,
    /// The next slice to ask for.
    grant: u64,
    refilled: Option<Instant>,
}

/// Refilling faster than this doubles the next slice; slower than [`SLOW_REFILL`] halves it.
const FAST_REFILL: Duration = Duration::from_millis(50);
const SLOW_REFILL: Duration = Duration::from_millis(500);

pub struct Leases {
    pool: Arc<dyn Pool>,
    shards: u64,
    by_slot: Vec<Option<Lease>>,
    /// Charged beyond a reservation with nothing left to take it from (tokens, spend).
    pub overshoot: u64,
}

impl Leases {
    pub fn new(pool: Arc<dyn Pool>, shards: usize) -> Leases {
        Leases {
            pool,
            shards: shards.max(1) as u64,
            by_slot: Vec::new(),
            overshoot: 0,
        }
    }

    fn lease(&mut self, slot: &Arc<Slot>, window: u32) -> &mut Lease {
        let i = slot.id as usize;
        if self.by_slot.len() <= i {
            self.by_slot.resize_with(i + 1, || None);
        }
        let lease = self.by_slot[i].get_or_insert_with(|| Lease {
            slot: slot.clone(),
            window,
            left: 0,
            grant: 1,
            refilled: None,
        });
        if lease.window != window {
            // A new window: what was left of the old one is void.
            lease.window = window;
            lease.left = 0;
        }
        lease
    }

    /// Makes sure the lease of `slot` holds at least `need`, asking the pool for the shortfall
    /// plus a slice; false if the pool has not that much left.
    fn cover(&mut self, slot: &Arc<Slot>, window: u32, need: u64) -> bool {
        let (pool, shards) = (self.pool.clone(), self.shards);
        let lease = self.lease(slot, window);
        if lease.left >= need {
            return true;
        }
        let now = Instant::now();
        match lease.refilled.map(|t| now - t) {
            Some(d) if d < FAST_REFILL => lease.grant = lease.grant.saturating_mul(2),
            Some(d) if d > SLOW_REFILL => lease.grant = (lease.grant / 2).max(1),
            _ => {}
        }
        let cap = slot.capacity();
        lease.grant = lease.grant.clamp(1, (cap / (4 * shards)).max(1));
        let short = need - lease.left;
        // Near exhaustion the slices shrink: at most half of an even share of what is left.
        let left_in_pool = pool.remaining(slot, window);
        let want = short + lease.grant.min(left_in_pool / (2 * shards));
        let got = pool.acquire(slot, window, short, want);
        lease.left += got;
        lease.refilled = Some(now);
        lease.left >= need
    }

    /// Admits a request against every limit in `limits`, all or nothing, and records what
    /// it charged in `out` (to give to [`Leases::settle`]).
    pub fn admit<'l>(
        &mut self,
        limits: impl Iterator<Item = &'l Limit> + Clone,
        demand: &Demand,
        now_ms: i64,
        out: &mut Charges,
    ) -> Result<(), Refusal> {
        out.n = 0;
        for l in limits.clone().take(MAX_CHARGES) {
            let need = amount(l.meter, demand);
            let window = l.slot.window.index(now_ms);
            if need > 0 && !self.cover(&l.slot, window, need) {
                let retry_after_s = match l.meter {
                    Meter::Concurrent => 1,
                    _ => l
                        .slot
                        .window
                        .left_ms(now_ms)
                        .map_or(1, |ms| (ms as u64).div_ceil(1000).max(1)),
                };
                return Err(Refusal {
                    limit: l.clone(),
                    retry_after_s,
                });
            }
        }
        for l in limits.take(MAX_CHARGES) {
            let amount = amount(l.meter, demand);
            let window = l.slot.window.index(now_ms);
            self.lease(&l.slot, window).left -= amount;
            out.items[out.n] = Charge {
                slot: l.slot.id,
                meter: Some(l.meter),
                window,
                amount,
            };
            out.n += 1;
        }
        Ok(())
    }

    /// Settles an admitted request: token and spend charges move from the reservation to what
    /// was used, a concurrency slot comes back.
    pub fn settle(&mut self, charges: &Charges, actual: &Actual) {
        for c in &charges.items[..charges.n] {
            let Some(meter) = c.meter else { continue };
            let Some(Some(lease)) = self.by_slot.get_mut(c.slot as usize) else {
                continue;
            };
            let used = match meter {
                Meter::Requests => continue,
                Meter::Concurrent => 0,
                Meter::Tokens(side) => tokens(side, actual.input, actual.output),
                Meter::Spend => actual.spend,
            };
            let same_window = lease.window == c.window;
            if used <= c.amount {
                if same_window {
                    lease.left += c.amount - used;
                    if meter == Meter::Concurrent {
                        // Spare slots beyond a slice go back, so other shards can use them.
                        let spare = lease.left.saturating_sub(lease.grant);
                        if spare > 0 {
                            lease.left -= spare;
                            self.pool.release(&lease.slot, lease.window, spare);
                        }
                    }
                }
                continue;
            }
            let mut extra = used - c.amount;
            if same_window {
                let from_lease = extra.min(lease.left);
                lease.left -= from_lease;
                extra -= from_lease;
                if extra > 0 {
                    extra -= self
                        .pool
                        .acquire(&lease.slot, lease.window, 1, extra)
                        .min(extra);
                }
            }
            self.overshoot += extra;
        }
    }

    /// The state of `l` for rate-limit headers: the pool's remaining plus what this shard
    /// holds unspent.
    pub fn state(&self, l: &Limit, now_ms: i64) -> State {
        let window = l.slot.window.index(now_ms);
        let held = match self.by_slot.get(l.slot.id as usize) {
            Some(Some(lease)) if lease.window == window => lease.left,
            _ => 0,
        };
        State {
            limit: l.slot.capacity(),
            remaining: (self.pool.remaining(&l.slot, window) + held).min(l.slot.capacity()),
            reset_ms: l.slot.window.left_ms(now_ms).unwrap_or(0),
        }
    }

    /// Gives every unspent lease back to the pool (a shard going idle or draining).
    pub fn release_all(&mut self) {
        for lease in self.by_slot.iter_mut().flatten() {
            if lease.left > 0 {
                self.pool.release(&lease.slot, lease.window, lease.left);
                lease.left = 0;
            }
        }
    }

    /// What this shard holds unspent of `slot`.
    pub fn holds(&self, slot: u32) -> u64 {
        match self.by_slot.get(slot as usize) {
            Some(Some(l)) => l.left,
            _ => 0,
        }
    }
}

fn tokens(side: Side, input: u64, output: u64) -> u64 {
    match side {
        Side::Input => input,
        Side::Output => output,
        Side::Total => input + output,
    }
}

fn amount(meter: Meter, d: &Demand) -> u64 {
    match meter {
        Meter::Requests | Meter::Concurrent => 1,
        Meter::Tokens(side) => tokens(side, d.input, d.output),
        Meter::Spend => d.spend,
    }
}
