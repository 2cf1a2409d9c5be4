//! The registry of limit slots, by stable name (`key:<id>:rpm`, `team:<id>:budget:30d`,
//! `model:<alias>:tpm`, …). Control builds every key table and generation from it, so a slot
//! (and what its window has counted) outlives the tables that point at it; editing a limit
//! changes its capacity in place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::AliasLimits;
use crate::limits::{Limit, Meter, Scope, Side, Slot, Window};
use crate::store::Limits;

#[derive(Default)]
pub struct Slots {
    by_key: HashMap<String, Arc<Slot>>,
    /// Slot ids, shared with the end users' registry.
    next: Arc<std::sync::atomic::AtomicU32>,
    /// Keys handed out since the last [`Slots::retain_used`].
    used: HashSet<String>,
    /// Soft budgets: the spend slot they watch and their threshold (micro-dollars).
    pub soft: HashMap<String, (Arc<Slot>, u64)>,
    /// Where budget days and months begin: minutes from UTC (`server.budget_timezone`).
    pub budget_offset_min: i32,
}

impl Slots {
    fn slot(&mut self, key: String, window: Window, capacity: u64) -> Arc<Slot> {
        self.used.insert(key.clone());
        if let Some(s) = self.by_key.get(&key) {
            if s.capacity() != capacity {
                s.set_capacity(capacity);
            }
            return s.clone();
        }
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let s = Arc::new(Slot::new(id, key.clone(), window, capacity));
        self.by_key.insert(key, s.clone());
        s
    }

    fn limit(
        &mut self,
        key: String,
        window: Window,
        capacity: u64,
        meter: Meter,
        scope: Scope,
        who: &str,
    ) -> Limit {
        Limit {
            slot: self.slot(key, window, capacity),
            meter,
            scope,
            who: who.into(),
        }
    }

    /// A key's or team's limits from LiteLLM's fields; `owner` prefixes the slot names.
    pub fn of(&mut self, owner: &str, scope: Scope, who: &str, l: &Limits) -> Vec<Limit> {
        let mut out = Vec::new();
        let minute = Window::Secs(60);
        if let Some(n) = l.rpm_limit {
            out.push(self.limit(
                format!("{owner}:rpm"),
                minute,
                n,
                Meter::Requests,
                scope,
                who,
            ));
        }
        if let Some(n) = l.tpm_limit {
            let m = Meter::Tokens(Side::Total);
            out.push(self.limit(format!("{owner}:tpm"), minute, n, m, scope, who));
        }
        if let Some(n) = l.max_parallel_requests {
            let w = Window::Forever;
            out.push(self.limit(
                format!("{owner}:parallel"),
                w,
                n,
                Meter::Concurrent,
                scope,
                who,
            ));
        }
        if l.max_budget.is_some() || l.soft_budget.is_some() {
            let period = l.budget_duration.as_deref();
            let offset = self.budget_offset_min;
            let window = period
                .and_then(|p| Window::parse_period(p, offset))
                .unwrap_or(Window::Forever);
            let at = match offset {
                0 => String::new(),
                o => format!("@{o}"),
            };
            let name = format!("{owner}:budget:{}{at}", period.unwrap_or("total"));
            // A soft budget alone still needs the period's spend counted: a slot that never
            // refuses (the pool's largest count, about $1.1M).
            let cap = l.max_budget.map_or(u64::MAX, crate::limits::micros);
            let limit = self.limit(name.clone(), window, cap, Meter::Spend, scope, who);
            if let Some(soft) = l.soft_budget {
                self.soft
                    .insert(name, (limit.slot.clone(), crate::limits::micros(soft)));
            }
            out.push(limit);
        }
        out
    }

    /// A key's limits on single aliases (`model_rpm_limit`, `model_tpm_limit`).
    pub fn per_alias(&mut self, owner: &str, who: &str, l: &Limits) -> Vec<(String, Limit)> {
        let mut out = Vec::new();
        let minute = Window::Secs(60);
        for (alias, &n) in &l.model_rpm_limit {
            let name = format!("{owner}:model:{alias}:rpm");
            let lim = self.limit(name, minute, n, Meter::Requests, Scope::KeyAlias, who);
            out.push((alias.clone(), lim));
        }
        for (alias, &n) in &l.model_tpm_limit {
            let name = format!("{owner}:model:{alias}:tpm");
            let m = Meter::Tokens(Side::Total);
            out.push((
                alias.clone(),
                self.limit(name, minute, n, m, Scope::KeyAlias, who),
            ));
        }
        out
    }

    /// An alias's own limits.
    pub fn of_alias(&mut self, alias: &str, l: &AliasLimits) -> Vec<Limit> {
        let total = Meter::Tokens(Side::Total);
        let rows: [(&str, Option<u64>, Window, Meter); 9] = [
            ("rps", l.rps, Window::Secs(1), Meter::Requests),
            ("rpm", l.rpm, Window::Secs(60), Meter::Requests),
            ("rph", l.rph, Window::Secs(3600), Meter::Requests),
            ("rpd", l.rpd, Window::Days(1, 0), Meter::Requests),
            ("tpm", l.tpm, Window::Secs(60), total),
            ("tpd", l.tpd, Window::Days(1, 0), total),
            (
                "input_tpm",
                l.input_tpm,
                Window::Secs(60),
                Meter::Tokens(Side::Input),
            ),
            (
                "output_tpm",
                l.output_tpm,
                Window::Secs(60),
                Meter::Tokens(Side::Output),
            ),
            (
                "parallel",
                l.max_parallel_requests,
                Window::Forever,
                Meter::Concurrent,
            ),
        ];
        rows.into_iter()
            .filter_map(|(name, n, window, meter)| {
                let n = n?;
                Some(self.limit(
                    format!("model:{alias}:{name}"),
                    window,
                    n,
                    meter,
                    Scope::Alias,
                    alias,
                ))
            })
            .collect()
    }

    /// Forgets slots that no table built since the last call used, except `keep` prefixes'.
    pub fn retain_used(&mut self, keep: impl Fn(&str) -> bool) {
        let used = std::mem::take(&mut self.used);
        self.by_key.retain(|k, _| used.contains(k) || keep(k));
        self.soft.retain(|k, _| used.contains(k));
    }

    /// The slot id counter, for the end users' registry.
    pub fn ids(&self) -> Arc<std::sync::atomic::AtomicU32> {
        self.next.clone()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.by_key.values()
    }
}
