//! The spend ledger's write side and the limits' memory across restarts.
//!
//! Shards push one [`LedgerRow`] per request onto their own bounded lock-free queue
//! ([`QUEUE_ROWS`] rows); a full queue drops the row and counts it, it never blocks a shard.
//! Control drains every queue each tick and appends the rows in batched transactions. It also
//! saves every windowed limit's count (`limit_usage`) and, at start, restores them; a budget's
//! spend in its current period comes back from the ledger's daily rollups as well.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::slots::Slots;
use crate::limits::Window;
use crate::store::{LedgerRow, SpendScope, Store, day_of};

/// Rows each shard's queue holds (at 20,000 requests a second on a shard, 3 s of them).
pub const QUEUE_ROWS: usize = 65_536;
/// Rows appended per transaction.
const BATCH: usize = 4_096;

/// One shard's outbox of ledger rows, and what it dropped when full.
pub struct Outbox {
    rows: ArrayQueue<LedgerRow>,
    pub dropped: AtomicU64,
}

impl Outbox {
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox {
            rows: ArrayQueue::new(QUEUE_ROWS),
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues a row; a full queue drops it (counted).
    pub fn push(&self, row: LedgerRow) {
        if self.rows.push(row).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Drains every outbox into the store; returns rows written.
pub fn drain(store: &mut Store, outboxes: &[Arc<Outbox>], batch: &mut Vec<LedgerRow>) -> u64 {
    let mut written = 0;
    loop {
        batch.clear();
        for o in outboxes {
            while batch.len() < BATCH {
                match o.rows.pop() {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
        }
        if batch.is_empty() {
            return written;
        }
        match store.append_ledger(batch) {
            Ok(()) => written += batch.len() as u64,
            Err(e) => {
                ::log::error!("ledger: {} rows not written: {e}", batch.len());
                return written;
            }
        }
    }
}

/// The start of the window of `w` holding `now`, as saved in `limit_usage` (0 for `Forever`).
fn window_start(w: Window, now_ms: i64) -> i64 {
    w.bounds(now_ms).map_or(0, |(start, _)| start)
}

/// Saves every windowed limit's count in its current window.
pub fn save_usage(store: &mut Store, slots: &Slots, now_ms: i64) {
    let rows: Vec<(String, i64, f64)> = slots
        .all()
        .filter(|s| !s.key.ends_with(":parallel"))
        .filter_map(|s| {
            let used = s.granted(s.window.index(now_ms));
            (used > 0).then(|| {
                (
                    s.key.to_string(),
                    window_start(s.window, now_ms),
                    used as f64,
                )
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    if let Err(e) = store.save_limit_usage(&rows) {
        ::log::warn!("limit counters not saved: {e}");
    }
    // Rows of windows long over (a month and a day) go.
    let _ = store.prune_limit_usage(now_ms - 32 * 86_400_000);
}

/// Restores what windowed limits counted before a restart: saved counters of the current
/// windows, and for budgets of whole days or months at least the ledger's spend since the
/// period began.
pub fn restore_usage(store: &Store, slots: &Slots, now_ms: i64) {
    let saved = store
        .load_limit_usage(now_ms - 32 * 86_400_000)
        .unwrap_or_default();
    let saved: std::collections::HashMap<(String, i64), f64> =
        saved.into_iter().map(|(k, w, u)| ((k, w), u)).collect();
    let mut restored = 0;
    for s in slots.all() {
        if s.key.ends_with(":parallel") {
            continue;
        }
        let start = window_start(s.window, now_ms);
        let mut used = saved
            .get(&(s.key.to_string(), start))
            .copied()
            .unwrap_or(0.0) as u64;
        if s.key.contains(":budget:")
            && matches!(
                s.window,
                Window::Days(..) | Window::Month(_) | Window::Forever
            )
        {
            let day = if start == 0 {
                i64::MIN / 2
            } else {
                day_of(start)
            };
            let spent = budget_scope(&s.key)
                .and_then(|scope| store.spend_since_day(scope, day).ok())
                .unwrap_or(0.0);
            used = used.max(crate::limits::micros(spent));
        }
        if used > 0 {
            s.restore(s.window.index(now_ms), used);
            restored += 1;
        }
    }
    if restored > 0 {
        ::log::info!("limits: {restored} counters restored from the store");
    }
}

/// Whose spend a budget slot (`key:<id>:budget:…`, `team:<id>:…`, `config:<name>:…`) counts.
fn budget_scope(key: &str) -> Option<SpendScope<'_>> {
    let (kind, rest) = key.split_once(':')?;
    let owner = &key[..kind.len() + 1 + rest.find(':')?];
    match kind {
        "key" => Some(SpendScope::Key(&owner[4..])),
        "config" => Some(SpendScope::Key(owner)),
        "team" => Some(SpendScope::Team(&owner[5..])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_slots_name_their_owner() {
        assert!(matches!(
            budget_scope("key:key_ab:budget:30d"),
            Some(SpendScope::Key("key_ab"))
        ));
        assert!(matches!(
            budget_scope("team:t1:budget:1mo"),
            Some(SpendScope::Team("t1"))
        ));
        assert!(matches!(
            budget_scope("config:team-a:budget:total"),
            Some(SpendScope::Key("config:team-a"))
        ));
        assert!(budget_scope("model:x:rpm").is_none());
    }
}
