use super::*;
use crate::config::Secret;
use crate::limits::{Pool, Replica};

fn cluster(budgets_allow: bool) -> Cluster {
    let cfg = Config {
        redis_url: Secret::new("redis://127.0.0.1:1".into(), "test".into()),
        prefix: "p:".into(),
        replicas: 2,
        replica_id: Some("r1".into()),
        fallback_share: 0.5,
        budgets_allow,
    };
    let gauge = || Arc::new(AtomicI64::new(-1));
    Cluster::new(cfg, gauge(), gauge(), Arc::default())
}

fn slot(id: u32, key: &str, window: Window, cap: u64) -> Arc<Slot> {
    Arc::new(Slot::new(id, key, window, cap))
}

/// 2026-12-02T15:04:05Z: 55 s left in the minute.
const NOW: i64 = 1_764_687_845_000;

#[test]
fn a_fresh_slot_asks_its_base_share_then_what_its_shards_take() {
    let mut c = cluster(false);
    let s = slot(0, "model:m:rpm", Window::Secs(60), 80);
    let t0 = Instant::now();
    let (asks, pending) = c.plan(std::slice::from_ref(&s), NOW, t0);
    assert_eq!(asks.len(), 1);
    let w = Window::Secs(60).index(NOW);
    assert_eq!(asks[0].key, format!("p:model:m:rpm:{w}"));
    assert_eq!((asks[0].want, asks[0].floor), (10, 0), "80 / (4 × 2)");
    assert!(asks[0].ttl_ms > 55_000 && asks[0].ttl_ms <= 115_000);
    assert!(!asks[0].gauge && !pending[0].next);
    s.set_share(w, 10, false);
    let (asks, _) = c.plan(std::slice::from_ref(&s), NOW, t0);
    assert!(asks.is_empty(), "the share covers the base: nothing to ask");
    // The shards took 9 in a tick: four ticks of that ahead.
    assert_eq!(Replica::default().acquire(&s, w, 9, 9), 9);
    let (asks, _) = c.plan(std::slice::from_ref(&s), NOW, t0);
    assert_eq!((asks[0].want, asks[0].floor), (9 + 36, 9));
    s.set_share(w, 45, false);
    // A shortfall a shard noted is asked for at once.
    s.note_short(20);
    let (asks, _) = c.plan(std::slice::from_ref(&s), NOW, t0);
    assert_eq!(asks[0].want, 9 + 30, "the shortfall and a base share");
    // Idle for a second: back down to the base.
    let (asks, _) = c.plan(std::slice::from_ref(&s), NOW, t0 + IDLE);
    assert_eq!((asks[0].want, asks[0].floor), (9 + 10, 9));
}

#[test]
fn the_next_window_is_reserved_shortly_before_it_begins() {
    let mut c = cluster(false);
    let s = slot(0, "key:k:rpm", Window::Secs(60), 80);
    let end = Window::Secs(60).bounds(NOW).unwrap().1;
    let (asks, pending) = c.plan(std::slice::from_ref(&s), end - 200, Instant::now());
    assert_eq!(asks.len(), 2, "this window and the next");
    let next = Window::Secs(60).index(NOW) + 1;
    assert!(pending[1].next && pending[1].window == next);
    assert_eq!((asks[1].want, asks[1].floor), (10, 0));
    assert!(
        asks[1].ttl_ms > 60_000,
        "it lives past the next window's end"
    );
    let (asks, _) = c.plan(std::slice::from_ref(&s), end - 100, Instant::now());
    assert!(
        asks.iter().all(|a| !a.key.ends_with(&next.to_string())),
        "asked once"
    );
    let g = slot(1, "key:k:parallel", Window::Forever, 8);
    let (asks, _) = c.plan(std::slice::from_ref(&g), NOW, Instant::now());
    assert!(
        asks[0].gauge && asks[0].ttl_ms == 0,
        "a gauge never expires"
    );
}

#[test]
fn without_redis_limits_take_their_share_and_budgets_refuse_unless_allowed() {
    let lim = slot(0, "key:k:rpm", Window::Secs(60), 9);
    let budget = slot(1, "key:k:budget:30d", Window::Days(30, 0), 1_000_000);
    let now = crate::auth::now_ms();
    let w = budget.window.index(now);
    budget.set_share(w, 300, false);
    assert_eq!(Replica::default().acquire(&budget, w, 300, 300), 300);
    let both = [lim.clone(), budget.clone()];
    cluster(false).fall_back(&both);
    assert_eq!(lim.share(lim.window.index(now)), 5, "half of 9, rounded up");
    assert_eq!(budget.share(w), 300, "what was taken, no more");
    assert!(budget.pool_down.load(Ordering::Relaxed) && !lim.pool_down.load(Ordering::Relaxed));
    cluster(true).fall_back(&both);
    assert_eq!(budget.share(w), 500_000);
    assert!(!budget.pool_down.load(Ordering::Relaxed));
}
