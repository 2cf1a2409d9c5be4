//! Limits per end user (the request's `user` / `metadata.user_id`): the same limit for every
//! user, counted apart for each. Users are not known ahead, so their slots are made when a
//! shard first sees one: the shard asks this registry once (a lock shared by the shards, taken
//! only on that first sight) and keeps the answer in its own cache. What a user had counted
//! before a restart is handed to the registry at start ([`Users::restore`]) and put into the
//! user's slots when they are made.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{Limit, Meter, Scope, Side, Slot, Window};
use crate::store::Limits;

/// The end-user limits of the current config and every user's slots.
pub struct Users {
    /// Slot ids, shared with control's registry so ids stay dense and distinct.
    ids: Arc<AtomicU32>,
    inner: Mutex<Inner>,
    /// Bumped when the limits change, so shards drop what they cached.
    pub version: std::sync::atomic::AtomicU64,
}

struct Inner {
    spec: Limits,
    offset_min: i32,
    by_user: HashMap<String, Arc<[Limit]>>,
    /// Counts saved before a restart, by slot name: (window start, unix ms; used), taken when
    /// the user's slots are made.
    restored: HashMap<String, (i64, u64)>,
}

/// Users whose slots the registry keeps at most; past it, new users share one set (`*`).
pub const MAX_USERS: usize = 100_000;

impl Users {
    pub fn new(ids: Arc<AtomicU32>, spec: Limits, offset_min: i32) -> Users {
        Users {
            ids,
            version: std::sync::atomic::AtomicU64::new(0),
            inner: Mutex::new(Inner {
                spec,
                offset_min,
                by_user: HashMap::new(),
                restored: HashMap::new(),
            }),
        }
    }

    /// A new config's limits: capacities of existing slots change in place; a changed window
    /// or a new kind of limit starts the users over.
    pub fn set(&self, spec: Limits, offset_min: i32) {
        let mut inner = self.inner.lock().expect("users lock");
        if inner.spec != spec || inner.offset_min != offset_min {
            inner.spec = spec;
            inner.offset_min = offset_min;
            inner.by_user.clear();
            inner.restored.clear();
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    /// What users' slots counted before a restart: (slot name, window start, used). A count
    /// goes into its slot when the user is first seen, if its window is still the current one.
    pub fn restore(&self, saved: impl IntoIterator<Item = (String, i64, u64)>) {
        let mut inner = self.inner.lock().expect("users lock");
        for (key, start, used) in saved {
            let e = inner.restored.entry(key).or_insert((start, 0));
            if e.0 == start {
                e.1 = e.1.max(used);
            } else if start > e.0 {
                *e = (start, used);
            }
        }
    }

    /// The window of the users' budget, if they have one.
    pub fn budget_window(&self) -> Option<Window> {
        let inner = self.inner.lock().expect("users lock");
        limits_of(&inner.spec)
            .into_iter()
            .find(|l| l.3 == Meter::Spend)
            .map(|l| local(l.1, inner.offset_min))
    }

    /// Every user slot made so far (control saves their counts).
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        let inner = self.inner.lock().expect("users lock");
        inner
            .by_user
            .values()
            .flat_map(|l| l.iter().map(|l| l.slot.clone()))
            .collect()
    }

    /// The limits of `user`, made on first sight.
    pub fn of(&self, user: &str) -> Arc<[Limit]> {
        let mut inner = self.inner.lock().expect("users lock");
        if let Some(l) = inner.by_user.get(user) {
            return l.clone();
        }
        let who = if inner.by_user.len() < MAX_USERS {
            user
        } else {
            "*"
        };
        if let Some(l) = inner.by_user.get(who) {
            return l.clone();
        }
        let now = crate::auth::now_ms();
        let offset_min = inner.offset_min;
        let made: Arc<[Limit]> = limits_of(&inner.spec)
            .into_iter()
            .map(|(name, window, cap, meter)| {
                let window = local(window, offset_min);
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let slot = Slot::new(id, format!("user:{who}:{name}"), window, cap);
                if let Some((start, used)) = inner.restored.remove(&*slot.key)
                    && start == window.bounds(now).map_or(0, |(s, _)| s)
                    && meter != Meter::Concurrent
                {
                    slot.restore(window.index(now), used);
                }
                Limit {
                    slot: Arc::new(slot),
                    meter,
                    scope: Scope::User,
                    who: who.into(),
                }
            })
            .collect();
        inner.by_user.insert(who.to_owned(), made.clone());
        made
    }
}

/// `w` in the configured budget timezone.
fn local(w: Window, offset_min: i32) -> Window {
    match w {
        Window::Days(d, _) => Window::Days(d, offset_min),
        Window::Month(_) => Window::Month(offset_min),
        w => w,
    }
}

/// (name, window, capacity, meter) of each limit the spec sets.
fn limits_of(l: &Limits) -> Vec<(&'static str, Window, u64, Meter)> {
    let minute = Window::Secs(60);
    let mut out = Vec::new();
    if let Some(n) = l.rpm_limit {
        out.push(("rpm", minute, n, Meter::Requests));
    }
    if let Some(n) = l.tpm_limit {
        out.push(("tpm", minute, n, Meter::Tokens(Side::Total)));
    }
    if let Some(n) = l.max_parallel_requests {
        out.push(("parallel", Window::Forever, n, Meter::Concurrent));
    }
    if let Some(usd) = l.max_budget {
        let period = l.budget_duration.as_deref();
        let window = period
            .and_then(|p| Window::parse_period(p, 0))
            .unwrap_or(Window::Forever);
        out.push(("budget", window, super::micros(usd), Meter::Spend));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_own_slots_once() {
        let spec = Limits {
            rpm_limit: Some(5),
            max_budget: Some(1.0),
            budget_duration: Some("1d".into()),
            ..Limits::default()
        };
        let users = Users::new(Arc::new(AtomicU32::new(100)), spec.clone(), 60);
        let a = users.of("alice");
        let again = users.of("alice");
        let b = users.of("bob");
        assert_eq!(a.len(), 2);
        assert!(Arc::ptr_eq(&a[0].slot, &again[0].slot), "made once");
        assert_ne!(a[0].slot.id, b[0].slot.id);
        assert!(a[0].slot.id >= 100, "ids come from the shared counter");
        assert_eq!(
            a[1].slot.window,
            Window::Days(1, 60),
            "the configured offset"
        );
        assert_eq!(&*a[0].slot.key, "user:alice:rpm");
        users.set(spec, 60);
        assert!(
            Arc::ptr_eq(&users.of("alice")[0].slot, &a[0].slot),
            "same spec: kept"
        );
        users.set(Limits::default(), 0);
        assert!(users.of("alice").is_empty(), "no limits set: none");
    }

    #[test]
    fn a_restored_count_goes_into_the_users_slot_only_in_its_window() {
        let spec = Limits {
            rpm_limit: Some(5),
            max_budget: Some(1.0),
            budget_duration: Some("30d".into()),
            ..Limits::default()
        };
        let users = Users::new(Arc::new(AtomicU32::new(0)), spec, 0);
        let now = crate::auth::now_ms();
        let month = Window::Days(30, 0).bounds(now).unwrap().0;
        let minute = Window::Secs(60).bounds(now).unwrap().0;
        users.restore([
            ("user:carol:budget".to_owned(), month, 400_000),
            ("user:carol:budget".to_owned(), month, 250_000),
            ("user:carol:rpm".to_owned(), minute - 60_000, 3),
            ("user:dave:budget".to_owned(), month, 7),
        ]);
        let carol = users.of("carol");
        let granted = |l: &Limit| l.slot.granted(l.slot.window.index(now));
        let rpm = carol.iter().find(|l| l.slot.key.ends_with(":rpm")).unwrap();
        let budget = carol
            .iter()
            .find(|l| l.slot.key.ends_with(":budget"))
            .unwrap();
        assert_eq!(granted(budget), 400_000, "the larger count of the window");
        assert_eq!(granted(rpm), 0, "a past minute's count is not carried");
        assert_eq!(users.slots().len(), 2, "carol's two slots");
        let _ = users.of("dave");
        assert_eq!(users.slots().len(), 4);
    }
}
