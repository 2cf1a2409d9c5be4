//! The spend ledger's write side and the limits' memory across restarts.
//!
//! Shards push one [`Spend`] per request onto their own bounded lock-free queue
//! ([`QUEUE_ROWS`] rows); a full queue drops the row and counts it, it never blocks a shard.
//! A `Spend` names its key, alias and target by number, so queueing it allocates nothing (but
//! for a client's long request id or an end user); control resolves the numbers ([`Names`])
//! as it drains every queue each tick, and appends the rows in batched transactions. It also
//! saves every windowed limit's count (`limit_usage`) and, at start, restores them; a budget's
//! spend in its current period comes back from the ledger's daily rollups as well.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::keys::KeyNumbers;
use super::slots::Slots;
use crate::config::labels::LabelNames;
use crate::limits::Window;
use crate::providers::Usage;
use crate::store::{LedgerRow, SpendScope, Store, day_of};

/// Rows each shard's queue holds (at 20,000 requests a second on a shard, 3 s of them).
pub const QUEUE_ROWS: usize = 65_536;
/// Rows appended per transaction (about a millisecond of control's CPU).
const BATCH: usize = 2_048;

/// A request id as a ledger row carries it: inline when short (the gateway's own are).
#[derive(Debug, Clone)]
pub enum RequestId {
    Inline(u8, [u8; 32]),
    Long(Box<str>),
}

impl RequestId {
    pub fn new(id: &[u8]) -> RequestId {
        match std::str::from_utf8(id) {
            Ok(_) if id.len() <= 32 => {
                let mut b = [0; 32];
                b[..id.len()].copy_from_slice(id);
                RequestId::Inline(id.len() as u8, b)
            }
            _ => RequestId::Long(String::from_utf8_lossy(id).into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Only ever made from a whole `str` of at most 32 bytes.
            RequestId::Inline(n, b) => std::str::from_utf8(&b[..*n as usize]).unwrap_or(""),
            RequestId::Long(s) => s,
        }
    }
}

/// One finished request as a shard queues it; control turns it into a [`LedgerRow`].
#[derive(Debug, Clone)]
pub struct Spend {
    pub request_id: RequestId,
    /// When the request started, unix ms.
    pub ts_ms: i64,
    /// The key's number ([`KeyNumbers`]); `auth::NO_NUMBER` for an anonymous request.
    pub key: u32,
    /// The alias the client asked for, and what served it (target, provider and upstream
    /// model), as label ids ([`LabelNames`]); `u32::MAX` for none.
    pub alias: u32,
    pub served: u32,
    pub end_user: Option<Box<str>>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub status: u16,
    pub latency_ms: f64,
    pub estimated: bool,
}

/// What control resolves a [`Spend`]'s numbers with: both registries only hand out numbers
/// before a shard can use them, and keep them while a queued row may still name them.
pub struct Names<'a> {
    pub labels: &'a LabelNames,
    pub keys: &'a KeyNumbers,
}

impl Names<'_> {
    /// The ledger row of `s`, borrowing names from the registries.
    pub fn row<'s>(&'s self, s: &'s Spend) -> LedgerRow<&'s str> {
        let (key_id, team_id) = self.keys.get(s.key).unzip();
        let served = self.labels.served(s.served);
        LedgerRow {
            request_id: s.request_id.as_str(),
            ts_ms: s.ts_ms,
            key_id,
            team_id: team_id.flatten(),
            end_user: s.end_user.as_deref(),
            alias: self.labels.alias(s.alias),
            target: served.map(|t| t.0),
            provider: served.map(|t| t.1),
            upstream_model: served.map(|t| t.2),
            input: s.usage.input,
            output: s.usage.output,
            cache_read: s.usage.cache_read,
            cache_write: s.usage.cache_write,
            reasoning: s.usage.reasoning,
            cost_usd: s.cost_usd,
            status: s.status,
            latency_ms: s.latency_ms,
            estimated: s.estimated,
        }
    }
}

/// One shard's outbox of ledger rows, and what it dropped when full.
pub struct Outbox {
    rows: ArrayQueue<Spend>,
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
    pub fn push(&self, row: Spend) {
        if self.rows.push(row).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What one [`drain`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub written: u64,
    /// Rows wait still (the batch was full, or the store refused it): drain again soon.
    pub behind: bool,
}

/// Appends one batch of at most [`BATCH`] rows from the outboxes in one transaction. A batch
/// the store refuses stays in `batch` and is tried first next time (while it waits, the
/// outboxes fill and, full, drop rows and count them). One batch per call keeps each burst of
/// control's work short, so a shard sharing its CPU waits at most about a millisecond.
pub fn drain(
    store: &mut Store,
    outboxes: &[Arc<Outbox>],
    batch: &mut Vec<Spend>,
    names: &Names<'_>,
) -> Drained {
    let mut full = false;
    for o in outboxes {
        while batch.len() < BATCH {
            match o.rows.pop() {
                Some(r) => batch.push(r),
                None => break,
            }
        }
        full |= batch.len() == BATCH;
    }
    if batch.is_empty() {
        return Drained::default();
    }
    let rows: Vec<LedgerRow<&str>> = batch.iter().map(|s| names.row(s)).collect();
    match store.append_ledger(&rows) {
        Ok(()) => {
            let written = batch.len() as u64;
            batch.clear();
            Drained {
                written,
                behind: full,
            }
        }
        Err(e) => {
            // An unreachable store (its spool full) says so itself, at most every 30 s.
            if e.fault != crate::store::Fault::Unavailable {
                ::log::error!("ledger: {} rows not written yet: {e}", batch.len());
            }
            Drained {
                written: 0,
                behind: true,
            }
        }
    }
}

/// The start of the window of `w` holding `now`, as saved in `limit_usage` (0 for `Forever`).
fn window_start(w: Window, now_ms: i64) -> i64 {
    w.bounds(now_ms).map_or(0, |(start, _)| start)
}

/// Saves the count of every windowed limit (keys', teams', aliases' and end users') that
/// moved since the last save; `saved` remembers what was written, by slot id.
pub fn save_usage(
    store: &mut Store,
    slots: &Slots,
    users: &crate::limits::Users,
    saved: &mut HashMap<u32, (i64, u64)>,
    now_ms: i64,
) {
    let user_slots = users.slots();
    let mut rows: Vec<(String, i64, f64)> = Vec::new();
    // Rebuilt each time, so slots that are gone leave it.
    let mut now_saved = HashMap::with_capacity(saved.len());
    for s in slots.all().chain(&user_slots) {
        if s.key.ends_with(":parallel") {
            continue;
        }
        let used = s.granted(s.window.index(now_ms));
        if used == 0 {
            continue;
        }
        let at = (window_start(s.window, now_ms), used);
        if saved.get(&s.id) != Some(&at) {
            rows.push((s.key.to_string(), at.0, used as f64));
        }
        now_saved.insert(s.id, at);
    }
    if rows.is_empty() {
        *saved = now_saved;
        return;
    }
    match store.save_limit_usage(&rows) {
        Ok(()) => *saved = now_saved,
        Err(e) if e.fault == crate::store::Fault::Unavailable => {}
        Err(e) => ::log::warn!("limit counters not saved: {e}"),
    }
    // Rows of windows long over (a month and a day) go.
    let _ = store.prune_limit_usage(now_ms - 32 * 86_400_000);
}

/// Restores what windowed limits counted before a restart: saved counters of the current
/// windows, and for budgets of whole days or months at least the ledger's spend since the
/// period began.
pub fn restore_usage(store: &Store, slots: &Slots, users: &crate::limits::Users, now_ms: i64) {
    let saved = store
        .load_limit_usage(now_ms - 32 * 86_400_000)
        .unwrap_or_default();
    restore_users(store, users, &saved, now_ms);
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

/// End users' slots are made when a user is first seen: their saved counts, and each user's
/// spend in the current budget period from the ledger, wait in the registry until then.
fn restore_users(
    store: &Store,
    users: &crate::limits::Users,
    saved: &[(String, i64, f64)],
    now_ms: i64,
) {
    let mut counts: Vec<(String, i64, u64)> = saved
        .iter()
        .filter(|(k, ..)| k.starts_with("user:"))
        .map(|(k, start, used)| (k.clone(), *start, *used as u64))
        .collect();
    if let Some(w) = users.budget_window() {
        let start = window_start(w, now_ms);
        let day = if start == 0 {
            i64::MIN / 2
        } else {
            day_of(start)
        };
        if !matches!(w, Window::Secs(_)) {
            for (user, spent) in store.spend_by_user_since_day(day).unwrap_or_default() {
                let used = crate::limits::micros(spent);
                counts.push((format!("user:{user}:budget"), start, used));
            }
        }
    }
    if !counts.is_empty() {
        ::log::info!("limits: {} end-user counters restored", counts.len());
        users.restore(counts);
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

    #[test]
    fn a_drain_writes_one_batch_and_says_when_more_wait() {
        let mut store = Store::open(None).unwrap();
        let outbox = Outbox::new();
        let labels = LabelNames::default();
        let keys = KeyNumbers::default();
        let names = Names {
            labels: &labels,
            keys: &keys,
        };
        for i in 0..BATCH + 100 {
            outbox.push(Spend {
                request_id: RequestId::new(format!("r{i}").as_bytes()),
                ts_ms: crate::auth::now_ms(),
                key: crate::auth::NO_NUMBER,
                alias: u32::MAX,
                served: u32::MAX,
                end_user: None,
                usage: Usage::default(),
                cost_usd: None,
                status: 200,
                latency_ms: 1.0,
                estimated: false,
            });
        }
        let mut batch = Vec::new();
        let outboxes = [outbox];
        let first = drain(&mut store, &outboxes, &mut batch, &names);
        assert_eq!(
            first,
            Drained {
                written: BATCH as u64,
                behind: true
            }
        );
        let second = drain(&mut store, &outboxes, &mut batch, &names);
        assert_eq!(
            second,
            Drained {
                written: 100,
                behind: false
            }
        );
        assert_eq!(store.ledger_count().unwrap(), BATCH as u64 + 100);
        let long = "x".repeat(100);
        assert_eq!(RequestId::new(long.as_bytes()).as_str(), long);
        assert_eq!(RequestId::new(b"req-1").as_str(), "req-1");
    }

    /// An end user's counts come back after a restart: saved counters (only those that moved
    /// are written again) and, with no counter saved, the budget's spend from the ledger.
    #[test]
    fn end_user_counts_are_saved_and_restored() {
        use crate::limits::Users;
        use crate::store::Limits;
        let spec = Limits {
            rpm_limit: Some(10),
            max_budget: Some(5.0),
            budget_duration: Some("1d".into()),
            ..Limits::default()
        };
        let ids = || Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut store = Store::open(None).unwrap();
        let now = crate::auth::now_ms();
        let users = Users::new(ids(), spec.clone(), 0);
        let carol = users.of("carol");
        let rpm = carol.iter().find(|l| l.slot.key.ends_with(":rpm")).unwrap();
        rpm.slot.restore(rpm.slot.window.index(now), 4);
        let mut saved = HashMap::new();
        save_usage(&mut store, &Slots::default(), &users, &mut saved, now);
        assert_eq!(saved.len(), 1, "carol's rpm (her budget is untouched)");
        // The ledger knows what dave spent today; no counter of his was saved.
        let row = |user: &str, cost: f64| LedgerRow {
            request_id: format!("r-{user}"),
            ts_ms: now,
            end_user: Some(user.to_owned()),
            cost_usd: Some(cost),
            status: 200,
            ..LedgerRow::default()
        };
        store
            .append_ledger(&[row("dave", 1.25), row("dave", 0.5)])
            .unwrap();

        let again = Users::new(ids(), spec, 0);
        restore_usage(&store, &Slots::default(), &again, now);
        let granted = |user: &str, limit: &str| {
            let l = again.of(user);
            let l = l.iter().find(|l| l.slot.key.ends_with(limit)).unwrap();
            l.slot.granted(l.slot.window.index(now))
        };
        assert_eq!(granted("carol", ":rpm"), 4);
        assert_eq!(
            granted("dave", ":budget"),
            1_750_000,
            "$1.75 in micro-dollars"
        );
        assert_eq!(granted("erin", ":budget"), 0);
    }
}
