//! Cluster mode on the control thread: this replica's shares of the shared pools in Redis.
//!
//! Shards only see [`crate::limits::Replica`], whose ceiling for a slot's window is the share
//! control wrote into the slot. Every tick (50 ms, and within 5 ms of a shard meeting its share
//! short) control reserves ahead of the shards: a base share
//! of every slot's window (`capacity / (4 × replicas)`), more as the shards' consumption of the
//! last tick or a shortfall they noted asks, the next window's base share shortly before it
//! begins, and gives back down to the base what a slot idle for a second does not use. All of
//! it goes in one pipelined round trip of a Lua script (see [`redis`]) that never lets the
//! replicas' shares add up to more than the capacity.
//!
//! Redis out of reach (or not there at start): each replica falls back to its share of every
//! limit (`fallback_share`, 1/replicas by default) per window, keeping what its shards already
//! took; budgets refuse (`on_pool_unavailable: reject`, the default) or fall back too
//! (`allow`). `shardgate_cluster_pool_up` goes to 0 and a log line says so (again every 30 s
//! while it lasts). Control reconnects with a backoff (100 ms doubling to 5 s), and on its
//! first answer every share is set again from what the shards took, so a restarted, empty
//! Redis learns the window's counts back from the replicas.

mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::config::cluster::Cluster as Config;
use crate::limits::{Slot, Window};

/// How often control looks at the shares in cluster mode.
pub const TICK: Duration = Duration::from_millis(50);
/// How often it looks whether a shard met a share short (then it sets the shares at once).
pub const WAKE: Duration = Duration::from_millis(5);
/// A slot with no consumption this long gives back what it holds beyond its base share.
const IDLE: Duration = Duration::from_secs(1);
/// A slot in use (and for `SETTLE` after) is asked at least this often even when its share is
/// enough, so what control knows of the other replicas (key info, soft budgets) follows them
/// within about this long, their last requests included.
const REFRESH: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(5);
/// The next window's share is reserved this long before it begins.
const AHEAD_MS: i64 = 300;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const LOG_EVERY: Duration = Duration::from_secs(30);
/// How often the replicas alive are counted.
const CENSUS: Duration = Duration::from_secs(1);

/// What control remembers of a slot between ticks.
#[derive(Default)]
struct Track {
    window: u32,
    /// What the shards had taken at the last tick.
    used: u64,
    /// When the shards last took more.
    active: Option<Instant>,
    /// Whether this window's share (and the next one's) was asked for.
    asked: bool,
    asked_next: bool,
    /// When this window's share was last asked for.
    asked_at: Option<Instant>,
}

pub struct Cluster {
    cfg: Config,
    me: String,
    redis: Option<redis::Redis>,
    retry_at: Instant,
    backoff: Duration,
    down_since: Option<Instant>,
    logged: Option<Instant>,
    ticked: Option<Instant>,
    tracks: HashMap<u32, Track>,
    /// `shardgate_cluster_pool_up` (1 or 0).
    up: Arc<AtomicI64>,
    /// `shardgate_cluster_replicas_alive`, counted every `CENSUS` (-1 until known).
    alive: Arc<AtomicI64>,
    census_at: Option<Instant>,
    /// When a census was last logged, and the count it said.
    census_logged: Option<(Instant, u64)>,
    /// Raised by the shards' pool when a share ran short.
    short: Arc<AtomicBool>,
}

/// One share asked of Redis, and where its answer goes.
struct Pending {
    slot: Arc<Slot>,
    window: u32,
    next: bool,
}

impl Cluster {
    pub fn new(
        cfg: Config,
        up: Arc<AtomicI64>,
        alive: Arc<AtomicI64>,
        short: Arc<AtomicBool>,
    ) -> Cluster {
        let me = cfg.replica_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        ::log::info!(
            "cluster: replica {me:?} of {}, limit and budget pools in Redis ({}), prefix {:?}",
            cfg.replicas,
            cfg.redis_url.origin(),
            cfg.prefix
        );
        up.store(0, Ordering::Relaxed);
        Cluster {
            cfg,
            me,
            redis: None,
            retry_at: Instant::now(),
            backoff: BACKOFF_MIN,
            down_since: None,
            logged: None,
            ticked: None,
            tracks: HashMap::new(),
            up,
            alive,
            census_at: None,
            census_logged: None,
            short,
        }
    }

    /// Whether [`TICK`] has passed since the last [`Cluster::tick`], or a shard met a share
    /// short (while Redis answers: the fallback's shares do not grow).
    pub fn due(&self) -> bool {
        self.ticked.is_none_or(|t| t.elapsed() >= TICK)
            || (self.redis.is_some() && self.short.swap(false, Ordering::AcqRel))
    }

    /// Sets this replica's shares of `slots`.
    pub fn tick(&mut self, slots: &[Arc<Slot>]) {
        let now = Instant::now();
        self.ticked = Some(now);
        if self.redis.is_none() && now >= self.retry_at {
            match redis::Redis::connect(self.cfg.redis_url.expose()) {
                Ok(r) => self.redis = Some(r),
                Err(e) => self.failed(&e, now),
            }
        }
        if self.redis.is_some() {
            let now_ms = crate::auth::now_ms();
            let (asks, pending) = self.plan(slots, now_ms, now);
            let answer = self
                .redis
                .as_mut()
                .map(|r| r.grant(&self.cfg.prefix, &self.me, &asks));
            match answer {
                Some(Ok(got)) => {
                    self.census(now);
                    self.recovered(slots);
                    for (p, (held, others, others_used)) in pending.iter().zip(got) {
                        p.slot.set_share(p.window, held, p.next);
                        if !p.next {
                            p.slot.set_others(p.window, others, others_used);
                        }
                    }
                    return;
                }
                Some(Err(e)) => {
                    self.redis = None;
                    // Asked again from scratch once Redis answers.
                    self.tracks.clear();
                    self.failed(&e, now);
                }
                None => {}
            }
        }
        self.fall_back(slots);
    }

    /// What to ask Redis this tick, slot by slot.
    fn plan(
        &mut self,
        slots: &[Arc<Slot>],
        now_ms: i64,
        now: Instant,
    ) -> (Vec<redis::Ask>, Vec<Pending>) {
        let (mut asks, mut pending) = (Vec::new(), Vec::new());
        if self.tracks.len() > 2 * slots.len() + 64 {
            let live: std::collections::HashSet<u32> = slots.iter().map(|s| s.id).collect();
            self.tracks.retain(|id, _| live.contains(id));
        }
        let replicas = u64::from(self.cfg.replicas.max(1));
        for slot in slots {
            let w = slot.window.index(now_ms);
            let cap = slot.capacity();
            let used = slot.granted(w);
            let share = slot.share(w);
            let t = self.tracks.entry(slot.id).or_default();
            if t.window != w {
                // A new window: the share reserved ahead for it last window is its share.
                *t = Track {
                    window: w,
                    used: 0,
                    active: t.active,
                    asked: t.asked_next && share > 0,
                    asked_next: false,
                    asked_at: None,
                };
            }
            let took = used.saturating_sub(t.used);
            t.used = used;
            if took > 0 {
                t.active = Some(now);
            }
            // An idle replica keeps a base share, unless the limit is too small to leave
            // one to every replica (2 concurrent requests on 3 replicas): then none.
            let idle_base = cap / (4 * replicas);
            let base = idle_base.max(1);
            let short = slot.take_short();
            let target = base
                .max(took.saturating_mul(4))
                .max(short.saturating_add(base))
                .min(cap);
            let free = share.saturating_sub(used);
            let idle = t.active.is_none_or(|a| now - a >= IDLE);
            let want = if !t.asked || used > share || free < target.div_ceil(2) || short > 0 {
                Some(used + target)
            } else if idle && free > idle_base {
                Some(used + idle_base)
            } else if t.active.is_some_and(|a| now - a < SETTLE)
                && t.asked_at.is_none_or(|a| now - a >= REFRESH)
            {
                // The same share again, for the others' latest figures.
                Some(share.max(used))
            } else {
                None
            };
            let gauge = slot.window == Window::Forever && slot.key.ends_with(":parallel");
            let key = |window: u32| format!("{}{}:{window}", self.cfg.prefix, slot.key);
            if let Some(want) = want {
                t.asked = true;
                t.asked_at = Some(now);
                asks.push(redis::Ask {
                    key: key(w),
                    want,
                    floor: used,
                    cap,
                    ttl_ms: ttl_ms(slot.window, now_ms, false),
                    gauge,
                });
                pending.push(Pending {
                    slot: slot.clone(),
                    window: w,
                    next: false,
                });
            }
            let ends_soon = slot
                .window
                .left_ms(now_ms)
                .is_some_and(|left| left <= AHEAD_MS);
            if ends_soon && !t.asked_next {
                t.asked_next = true;
                let next = (w + 1) & 0xff_ffff;
                asks.push(redis::Ask {
                    key: key(next),
                    want: target,
                    floor: 0,
                    cap,
                    ttl_ms: ttl_ms(slot.window, now_ms, true),
                    gauge,
                });
                pending.push(Pending {
                    slot: slot.clone(),
                    window: next,
                    next: true,
                });
            }
        }
        (asks, pending)
    }

    /// Redis out of reach: every limit to this replica's share per window, keeping what the
    /// shards took; budgets the same under `on_pool_unavailable: allow`, else no more.
    fn fall_back(&self, slots: &[Arc<Slot>]) {
        let now_ms = crate::auth::now_ms();
        for slot in slots {
            let w = slot.window.index(now_ms);
            let refuse = slot.key.contains(":budget:") && !self.cfg.budgets_allow;
            slot.pool_down.store(refuse, Ordering::Relaxed);
            let fallback = match refuse {
                true => 0,
                false => (slot.capacity() as f64 * self.cfg.fallback_share).ceil() as u64,
            };
            slot.set_share(w, slot.granted(w).max(fallback), false);
            slot.set_share((w + 1) & 0xff_ffff, fallback, true);
        }
    }

    /// Counts the replicas alive in Redis (every `CENSUS`); says so while that is not the
    /// configured count, which each replica's fallback share assumes.
    fn census(&mut self, now: Instant) {
        if self.census_at.is_some_and(|t| now - t < CENSUS) {
            return;
        }
        self.census_at = Some(now);
        let Some(r) = self.redis.as_mut() else { return };
        let Ok(n) = r.census(&self.cfg.prefix, &self.me, crate::auth::now_ms()) else {
            return;
        };
        self.alive.store(n as i64, Ordering::Relaxed);
        let configured = u64::from(self.cfg.replicas);
        // Said when the count changes, and again every LOG_EVERY while it is off.
        let (changed, stale) = match self.census_logged {
            None => (true, true),
            Some((at, said)) => (said != n, now - at >= LOG_EVERY),
        };
        if n == configured {
            if changed && self.census_logged.is_some() {
                ::log::info!("cluster: {n} replicas alive in Redis, as configured");
            }
            self.census_logged = Some((now, n));
        } else if changed || stale {
            self.census_logged = Some((now, n));
            ::log::warn!(
                "cluster: {n} replicas alive in Redis, configured for {configured} \
                 (cluster.replicas): without Redis each would admit {:.2} of every limit",
                self.cfg.fallback_share
            );
        }
    }

    fn failed(&mut self, e: &::redis::RedisError, now: Instant) {
        self.up.store(0, Ordering::Relaxed);
        self.retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let since = *self.down_since.get_or_insert(now);
        if self.logged.is_none_or(|l| now - l >= LOG_EVERY) {
            self.logged = Some(now);
            let budgets = match self.cfg.budgets_allow {
                true => "budgets fall back likewise (on_pool_unavailable: allow)",
                false => "budgets refuse (on_pool_unavailable: reject)",
            };
            ::log::warn!(
                "cluster pool: Redis ({}) unreachable for {} s: {e}; each limit falls back to this replica's share ({:.2} of it per window), {budgets}; retrying",
                self.cfg.redis_url.origin(),
                (now - since).as_secs(),
                self.cfg.fallback_share,
            );
        }
    }

    fn recovered(&mut self, slots: &[Arc<Slot>]) {
        self.backoff = BACKOFF_MIN;
        self.up.store(1, Ordering::Relaxed);
        if let Some(since) = self.down_since.take() {
            self.logged = None;
            for s in slots {
                s.pool_down.store(false, Ordering::Relaxed);
            }
            ::log::info!(
                "cluster pool: Redis ({}) answers again after {:.1} s; shared limits and budgets resume",
                self.cfg.redis_url.origin(),
                since.elapsed().as_secs_f64()
            );
        } else if self.logged.is_none() {
            self.logged = Some(Instant::now());
            ::log::info!(
                "cluster pool: Redis ({}) connected",
                self.cfg.redis_url.origin()
            );
        }
    }
}

/// How long the pool of `window`'s current (or `next`) window lives from `now_ms`: a minute
/// past its end; 0 (for ever) without an end.
fn ttl_ms(window: Window, now_ms: i64, next: bool) -> u64 {
    let Some((_, end)) = window.bounds(now_ms) else {
        return 0;
    };
    let end = match next {
        true => window.bounds(end).map_or(end, |(_, e)| e),
        false => end,
    };
    (end - now_ms + 60_000).max(1) as u64
}

impl super::Control {
    /// Cluster mode: sets this replica's shares of every slot (keys, teams, aliases, users)
    /// once a [`TICK`].
    pub(super) fn cluster_tick(&mut self) {
        if self.cluster.as_ref().is_some_and(Cluster::due) {
            self.cluster_reserve();
        }
    }

    /// Cluster mode: sets this replica's shares of every slot now.
    pub(super) fn cluster_reserve(&mut self) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let slots: Vec<Arc<Slot>> = self
            .slots
            .all()
            .cloned()
            .chain(self.users.slots())
            .collect();
        cluster.tick(&slots);
    }
}

#[cfg(test)]
mod tests;
