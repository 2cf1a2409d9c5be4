//! Per-shard metrics. Each shard records into its own counters and hdrhistograms with plain
//! arithmetic (no atomics, no locks); a scrape asks every shard for a copy over its control
//! queue, merges the copies and renders Prometheus text.
//!
//! Aliases, targets and providers are recorded by their stable label ids
//! ([`crate::config::Labels`]), never by position in a generation, so series survive reloads
//! and shards on different generations merge correctly.

use std::collections::HashMap;
use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::config::LabelNames;
use crate::error::Kind;
use crate::providers::Usage;

/// Label index meaning "no model/provider" (the request failed before one was known).
pub const NONE: u32 = u32::MAX;

/// Guardrail phases and verdicts, in the order of the pipeline's `Phase` and `Verdict`.
pub const GUARD_PHASES: [&str; 2] = ["request", "response"];
pub const GUARD_VERDICTS: [&str; 5] = ["passed", "flagged", "redacted", "blocked", "failed_open"];
const GUARD_CELLS: usize = GUARD_PHASES.len() * GUARD_VERDICTS.len();

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 1 hour, 2 significant digits: a few KiB each.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid")
}

#[derive(Clone)]
pub struct ShardMetrics {
    requests: HashMap<(u32, u32, u16), u64>,
    errors: HashMap<Kind, u64>,
    upstream_errors: HashMap<(u32, Kind), u64>,
    /// By alias label id; allocated on an alias's first request.
    duration: Vec<Option<Histogram<u64>>>,
    /// Requests that failed before a model was known.
    duration_none: Histogram<u64>,
    /// By provider label id.
    ttfb: Vec<Option<Histogram<u64>>>,
    overhead: Histogram<u64>,
    tokens: Vec<(u64, u64)>,
    /// Upstream attempts by (target label, result code or "ok").
    attempts: HashMap<(u32, &'static str), u64>,
    /// Attempts after the first, by alias.
    retries: HashMap<u32, u64>,
    /// Fallbacks by (from alias, to alias).
    fallbacks: HashMap<(u32, u32), u64>,
    /// Circuit-breaker trips by target label.
    breaker_trips: HashMap<u32, u64>,
    /// Hedges sent by (target label hedged to, whether the hedge won the race).
    hedges: HashMap<(u32, bool), u64>,
    /// Health-check probes by (target label, result).
    probes: HashMap<(u32, &'static str), u64>,
    pub inflight: i64,
    pub connections_open: i64,
    pub connections_total: u64,
    pub access_log_dropped: u64,
    /// Connections closed at once because the shard was at `server.max_connections`.
    pub connections_rejected: u64,
    /// Writes to clients that did not finish within `server.write_timeout_ms`.
    pub write_timeouts: u64,
    /// Panics caught at a connection (each one a bug).
    pub panics: u64,
    /// USD by (key, team, alias label); at most [`MAX_SPEND_SERIES`] pairs, the rest under
    /// key `other`.
    spend: HashMap<u64, SpendSeries>,
    /// Served requests whose target has no price (cost recorded as null), by alias label.
    unpriced: HashMap<u32, u64>,
    /// Tokens or spend charged past a reservation with nothing left to take it from.
    pub limit_overshoot: u64,
    /// Cache lookups by alias label: hits, misses, bypasses (a plain index: this runs on every
    /// request of an alias that caches).
    cache: Vec<[u64; 4]>,
    /// Guardrail verdicts by policy label, then phase × verdict.
    guardrails: Vec<[u64; GUARD_CELLS]>,
    /// The store's state when the copy was taken: entries, bytes, evictions so far.
    pub cache_store: (u64, u64, u64),
}

/// Distinct (key, team, alias) series `shardgate_spend_usd_total` keeps per shard.
pub const MAX_SPEND_SERIES: usize = 1000;

/// One spend series: its labels and its total. Kept by a hash of the labels, so recording a
/// request allocates nothing once its series exists.
#[derive(Clone, Debug)]
struct SpendSeries {
    key: Box<str>,
    team: Box<str>,
    model: u32,
    usd: f64,
}

fn series_hash(key: &str, team: &str, model: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, team, model).hash(&mut h);
    h.finish()
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One request, as the settle stage reports it (`model` and `provider` are label ids).
pub struct Sample {
    pub model: u32,
    pub provider: u32,
    pub status: u16,
    pub error: Option<Kind>,
    pub total_us: u64,
    pub upstream_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub usage: Option<Usage>,
}

impl ShardMetrics {
    pub fn new() -> Self {
        ShardMetrics {
            requests: HashMap::new(),
            errors: HashMap::new(),
            upstream_errors: HashMap::new(),
            duration: Vec::new(),
            duration_none: histogram(),
            ttfb: Vec::new(),
            overhead: histogram(),
            tokens: Vec::new(),
            attempts: HashMap::new(),
            retries: HashMap::new(),
            fallbacks: HashMap::new(),
            breaker_trips: HashMap::new(),
            hedges: HashMap::new(),
            probes: HashMap::new(),
            inflight: 0,
            connections_open: 0,
            connections_total: 0,
            access_log_dropped: 0,
            connections_rejected: 0,
            write_timeouts: 0,
            panics: 0,
            spend: HashMap::new(),
            unpriced: HashMap::new(),
            limit_overshoot: 0,
            cache: Vec::new(),
            guardrails: Vec::new(),
            cache_store: (0, 0, 0),
        }
    }

    /// What the response cache did for a request on alias `model`.
    pub fn cache(&mut self, model: u32, status: crate::cache::Status) {
        if model == NONE {
            return;
        }
        let i = model as usize;
        if self.cache.len() <= i {
            self.cache.resize(i + 1, [0; 4]);
        }
        self.cache[i][status as usize] += 1;
    }

    /// One guardrail verdict: policy label `policy`, in `phase`, as `verdict` (indices of
    /// the pipeline's `Phase` and `Verdict`).
    pub fn guardrail(&mut self, policy: u32, phase: usize, verdict: usize) {
        if policy == NONE {
            return;
        }
        let i = policy as usize;
        if self.guardrails.len() <= i {
            self.guardrails.resize(i + 1, [0; GUARD_CELLS]);
        }
        self.guardrails[i][phase * GUARD_VERDICTS.len() + verdict] += 1;
    }

    /// What a served request cost, or that its price is unknown (`None`).
    pub fn spend(&mut self, key: &str, team: &str, model: u32, usd: Option<f64>) {
        let Some(usd) = usd else {
            *self.unpriced.entry(model).or_default() += 1;
            return;
        };
        if let Some(s) = self.spend.get_mut(&series_hash(key, team, model)) {
            s.usd += usd;
            return;
        }
        let (key, team) = match self.spend.len() < MAX_SPEND_SERIES {
            true => (key, team),
            false => ("other", "other"),
        };
        self.spend
            .entry(series_hash(key, team, model))
            .or_insert_with(|| SpendSeries {
                key: key.into(),
                team: team.into(),
                model,
                usd: 0.0,
            })
            .usd += usd;
    }

    pub fn record(&mut self, s: &Sample) {
        *self
            .requests
            .entry((s.model, s.provider, s.status))
            .or_default() += 1;
        if let Some(k) = s.error {
            *self.errors.entry(k).or_default() += 1;
            if k.is_upstream() && s.provider != NONE {
                *self.upstream_errors.entry((s.provider, k)).or_default() += 1;
            }
        }
        let h = if s.model == NONE {
            &mut self.duration_none
        } else {
            slot(&mut self.duration, s.model)
        };
        let _ = h.record(s.total_us.max(1));
        if let (Some(t), true) = (s.ttfb_us, s.provider != NONE) {
            let _ = slot(&mut self.ttfb, s.provider).record(t.max(1));
        }
        if s.model != NONE {
            let overhead = s.total_us.saturating_sub(s.upstream_us.unwrap_or(0));
            let _ = self.overhead.record(overhead.max(1));
            if let Some(u) = s.usage {
                let i = s.model as usize;
                if self.tokens.len() <= i {
                    self.tokens.resize(i + 1, (0, 0));
                }
                let t = &mut self.tokens[i];
                t.0 = t.0.saturating_add(u.input);
                t.1 = t.1.saturating_add(u.output);
            }
        }
    }

    /// One upstream attempt: its result (`ok`, an error kind's code, or `cancelled`), whether
    /// it was a retry, whether it tripped a breaker.
    pub fn attempt(
        &mut self,
        model: u32,
        target: u32,
        result: &'static str,
        retry: bool,
        tripped: bool,
    ) {
        *self.attempts.entry((target, result)).or_default() += 1;
        if retry {
            *self.retries.entry(model).or_default() += 1;
        }
        if tripped {
            *self.breaker_trips.entry(target).or_default() += 1;
        }
    }

    /// A hedge was sent to `target`; `won`: its answer was the one kept.
    pub fn hedge(&mut self, target: u32, won: bool) {
        *self.hedges.entry((target, won)).or_default() += 1;
    }

    /// A health-check probe of a target ended with `result` (`ok` or an error kind's code).
    pub fn probe(&mut self, target: u32, result: &'static str) {
        *self.probes.entry((target, result)).or_default() += 1;
    }

    pub fn fallback(&mut self, from: u32, to: u32) {
        *self.fallbacks.entry((from, to)).or_default() += 1;
    }

    pub fn merge(&mut self, o: &ShardMetrics) {
        add_counts(&mut self.attempts, &o.attempts);
        add_counts(&mut self.retries, &o.retries);
        add_counts(&mut self.fallbacks, &o.fallbacks);
        add_counts(&mut self.breaker_trips, &o.breaker_trips);
        add_counts(&mut self.hedges, &o.hedges);
        add_counts(&mut self.probes, &o.probes);
        add_counts(&mut self.requests, &o.requests);
        add_counts(&mut self.errors, &o.errors);
        add_counts(&mut self.upstream_errors, &o.upstream_errors);
        add_slots(&mut self.duration, &o.duration);
        let _ = self.duration_none.add(&o.duration_none);
        add_slots(&mut self.ttfb, &o.ttfb);
        let _ = self.overhead.add(&o.overhead);
        if self.tokens.len() < o.tokens.len() {
            self.tokens.resize(o.tokens.len(), (0, 0));
        }
        for (a, b) in self.tokens.iter_mut().zip(&o.tokens) {
            a.0 = a.0.saturating_add(b.0);
            a.1 = a.1.saturating_add(b.1);
        }
        self.inflight += o.inflight;
        self.connections_open += o.connections_open;
        self.connections_total += o.connections_total;
        self.connections_rejected += o.connections_rejected;
        self.write_timeouts += o.write_timeouts;
        self.panics += o.panics;
        self.limit_overshoot += o.limit_overshoot;
        for (h, s) in &o.spend {
            self.spend
                .entry(*h)
                .or_insert_with(|| SpendSeries {
                    usd: 0.0,
                    ..s.clone()
                })
                .usd += s.usd;
        }
        add_counts(&mut self.unpriced, &o.unpriced);
        if self.cache.len() < o.cache.len() {
            self.cache.resize(o.cache.len(), [0; 4]);
        }
        for (a, b) in self.cache.iter_mut().zip(&o.cache) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        if self.guardrails.len() < o.guardrails.len() {
            self.guardrails.resize(o.guardrails.len(), [0; GUARD_CELLS]);
        }
        for (a, b) in self.guardrails.iter_mut().zip(&o.guardrails) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.cache_store.0 += o.cache_store.0;
        self.cache_store.1 += o.cache_store.1;
        self.cache_store.2 += o.cache_store.2;
        self.access_log_dropped += o.access_log_dropped;
    }

    /// Attempts, retries, fallbacks and breaker trips, by alias and target.
    fn render_routing(&self, o: &mut String, names: &LabelNames) {
        let alias = |m: u32| esc(name(&names.aliases, m));
        per_target(
            o,
            names,
            ("shardgate_attempts_total", "result"),
            "Upstream attempts by alias, target and result (ok or error kind).",
            &self.attempts,
        );
        header(
            o,
            "shardgate_retries_total",
            "counter",
            "Attempts after a request's first, by alias.",
        );
        let mut rows: Vec<_> = self.retries.iter().collect();
        rows.sort();
        for (m, v) in rows {
            let _ = writeln!(o, "shardgate_retries_total{{model=\"{}\"}} {v}", alias(*m));
        }
        header(
            o,
            "shardgate_fallbacks_total",
            "counter",
            "Requests moved to a fallback alias.",
        );
        let mut rows: Vec<_> = self.fallbacks.iter().collect();
        rows.sort();
        for ((f, t), v) in rows {
            let (f, t) = (alias(*f), alias(*t));
            let _ = writeln!(
                o,
                "shardgate_fallbacks_total{{from=\"{f}\",to=\"{t}\"}} {v}"
            );
        }
        header(
            o,
            "shardgate_breaker_trips_total",
            "counter",
            "Circuit breakers opened, by target.",
        );
        let mut rows: Vec<_> = self.breaker_trips.iter().collect();
        rows.sort();
        for (t, v) in rows {
            let (a, n) = target_names(names, *t);
            let _ = writeln!(
                o,
                "shardgate_breaker_trips_total{{model=\"{a}\",target=\"{n}\"}} {v}"
            );
        }
        per_target(
            o,
            names,
            ("shardgate_hedges_total", "won"),
            "Hedged requests by alias and the target hedged to; won: the hedge answered first.",
            &self.hedges,
        );
        per_target(
            o,
            names,
            ("shardgate_health_probes_total", "result"),
            "Active health-check probes by alias, target and result (ok or error kind).",
            &self.probes,
        );
    }

    /// Guardrail verdicts by policy, phase and verdict.
    fn render_guardrails(&self, o: &mut String, names: &LabelNames) {
        if self.guardrails.is_empty() {
            return;
        }
        header(
            o,
            "shardgate_guardrail_verdicts_total",
            "counter",
            "Guardrail verdicts by policy, phase (request, response) and verdict.",
        );
        for (p, counts) in self.guardrails.iter().enumerate() {
            let p = esc(name(&names.guardrails, p as u32));
            for (cell, v) in counts.iter().enumerate() {
                if *v == 0 {
                    continue;
                }
                let phase = GUARD_PHASES[cell / GUARD_VERDICTS.len()];
                let verdict = GUARD_VERDICTS[cell % GUARD_VERDICTS.len()];
                let _ = writeln!(
                    o,
                    "shardgate_guardrail_verdicts_total{{policy=\"{p}\",phase=\"{phase}\",verdict=\"{verdict}\"}} {v}"
                );
            }
        }
    }

    /// The response cache: lookups by alias and result, and the stores' size.
    fn render_cache(&self, o: &mut String, names: &LabelNames) {
        header(
            o,
            "shardgate_cache_requests_total",
            "counter",
            "Response-cache lookups by alias and result (hit, semantic_hit, miss, bypass).",
        );
        use crate::cache::Status;
        for (m, counts) in self.cache.iter().enumerate() {
            let m = esc(name(&names.aliases, m as u32));
            for s in [
                Status::Hit,
                Status::SemanticHit,
                Status::Miss,
                Status::Bypass,
            ] {
                let (r, v) = (s.label(), counts[s as usize]);
                if v > 0 {
                    let _ = writeln!(
                        o,
                        "shardgate_cache_requests_total{{model=\"{m}\",result=\"{r}\"}} {v}"
                    );
                }
            }
        }
        let (entries, bytes, evictions) = self.cache_store;
        for (n, kind, help, v) in [
            (
                "shardgate_cache_entries",
                "gauge",
                "Answers stored, all shards.",
                entries,
            ),
            (
                "shardgate_cache_bytes",
                "gauge",
                "Bytes of stored answers, all shards.",
                bytes,
            ),
            (
                "shardgate_cache_evictions_total",
                "counter",
                "Answers evicted to keep a shard within cache.max_bytes.",
                evictions,
            ),
        ] {
            header(o, n, kind, help);
            let _ = writeln!(o, "{n} {v}");
        }
    }

    /// Prometheus text exposition of merged metrics.
    pub fn render(&self, names: &LabelNames, shards: usize, cpu_micros: u64) -> String {
        let model = |i: u32| name(&names.aliases, i);
        let provider = |i: u32| name(&names.providers, i);
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        header(
            o,
            "shardgate_requests_total",
            "counter",
            "Requests by model alias, provider and HTTP status.",
        );
        let mut rows: Vec<_> = self.requests.iter().collect();
        rows.sort();
        for ((m, p, s), v) in rows {
            let _ = writeln!(
                o,
                "shardgate_requests_total{{model=\"{}\",provider=\"{}\",status=\"{s}\"}} {v}",
                esc(model(*m)),
                esc(provider(*p))
            );
        }
        header(
            o,
            "shardgate_errors_total",
            "counter",
            "Failed requests by error kind.",
        );
        for k in Kind::ALL {
            let _ = writeln!(
                o,
                "shardgate_errors_total{{kind=\"{}\"}} {}",
                k.label(),
                self.errors.get(&k).unwrap_or(&0)
            );
        }
        header(
            o,
            "shardgate_upstream_errors_total",
            "counter",
            "Upstream failures by provider and kind.",
        );
        let mut rows: Vec<_> = self.upstream_errors.iter().collect();
        rows.sort_by_key(|((p, k), _)| (*p, k.label()));
        for ((p, k), v) in rows {
            let _ = writeln!(
                o,
                "shardgate_upstream_errors_total{{provider=\"{}\",kind=\"{}\"}} {v}",
                esc(provider(*p)),
                k.label()
            );
        }
        self.render_routing(o, names);
        self.render_cache(o, names);
        self.render_guardrails(o, names);
        header(
            o,
            "shardgate_request_duration_seconds",
            "summary",
            "Whole request time as the gateway saw it.",
        );
        let durations = self.duration.iter().enumerate();
        for (i, h) in durations.filter_map(|(i, h)| Some((i as u32, h.as_ref()?))) {
            summary(
                o,
                "shardgate_request_duration_seconds",
                &format!("model=\"{}\"", esc(model(i))),
                h,
            );
        }
        summary(
            o,
            "shardgate_request_duration_seconds",
            "model=\"\"",
            &self.duration_none,
        );
        header(
            o,
            "shardgate_upstream_ttfb_seconds",
            "summary",
            "Time from sending upstream to its response head.",
        );
        let ttfbs = self.ttfb.iter().enumerate();
        for (i, h) in ttfbs.filter_map(|(i, h)| Some((i as u32, h.as_ref()?))) {
            summary(
                o,
                "shardgate_upstream_ttfb_seconds",
                &format!("provider=\"{}\"", esc(provider(i))),
                h,
            );
        }
        header(
            o,
            "shardgate_overhead_seconds",
            "summary",
            "Gateway overhead: total time minus upstream time.",
        );
        summary(o, "shardgate_overhead_seconds", "", &self.overhead);
        header(
            o,
            "shardgate_tokens_total",
            "counter",
            "Tokens by model alias and direction.",
        );
        for (i, (tin, tout)) in self.tokens.iter().enumerate() {
            let m = esc(model(i as u32));
            let _ = writeln!(
                o,
                "shardgate_tokens_total{{model=\"{m}\",direction=\"input\"}} {tin}"
            );
            let _ = writeln!(
                o,
                "shardgate_tokens_total{{model=\"{m}\",direction=\"output\"}} {tout}"
            );
        }
        gauge(
            o,
            "shardgate_inflight_requests",
            "Requests being served.",
            self.inflight,
        );
        gauge(
            o,
            "shardgate_connections_open",
            "Open client connections.",
            self.connections_open,
        );
        header(
            o,
            "shardgate_connections_total",
            "counter",
            "Client connections accepted.",
        );
        let _ = writeln!(o, "shardgate_connections_total {}", self.connections_total);
        for (name, help, v) in [
            (
                "shardgate_connections_rejected_total",
                "Client connections closed on accept: the shard was at server.max_connections.",
                self.connections_rejected,
            ),
            (
                "shardgate_client_write_timeouts_total",
                "Client connections cut off because a write did not finish in time.",
                self.write_timeouts,
            ),
            (
                "shardgate_panics_total",
                "Panics caught at a connection; each closed that connection.",
                self.panics,
            ),
        ] {
            header(o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
        header(
            o,
            "shardgate_access_log_dropped_total",
            "counter",
            "Access log lines dropped because the writer fell behind.",
        );
        let _ = writeln!(
            o,
            "shardgate_access_log_dropped_total {}",
            self.access_log_dropped
        );
        header(
            o,
            "shardgate_spend_usd_total",
            "counter",
            "Cost of served requests in USD, by key, team and model alias.",
        );
        let mut rows: Vec<_> = self.spend.values().collect();
        rows.sort_by(|a, b| (&a.key, &a.team, a.model).cmp(&(&b.key, &b.team, b.model)));
        for s in rows {
            let _ = writeln!(
                o,
                "shardgate_spend_usd_total{{key=\"{}\",team=\"{}\",model=\"{}\"}} {:.8}",
                esc(&s.key),
                esc(&s.team),
                esc(model(s.model)),
                s.usd
            );
        }
        header(
            o,
            "shardgate_unpriced_requests_total",
            "counter",
            "Served requests whose target has no known price (their cost is recorded as null).",
        );
        let mut rows: Vec<_> = self.unpriced.iter().collect();
        rows.sort();
        for (m, v) in rows {
            let _ = writeln!(
                o,
                "shardgate_unpriced_requests_total{{model=\"{}\"}} {v}",
                esc(model(*m))
            );
        }
        header(
            o,
            "shardgate_limit_overshoot_total",
            "counter",
            "Tokens and micro-dollars used past reservations with no capacity left to charge.",
        );
        let _ = writeln!(
            o,
            "shardgate_limit_overshoot_total {}",
            self.limit_overshoot
        );
        gauge(o, "shardgate_shards", "Shards serving.", shards as i64);
        header(
            o,
            "shardgate_process_cpu_seconds_total",
            "counter",
            "CPU time used by the process.",
        );
        let _ = writeln!(
            o,
            "shardgate_process_cpu_seconds_total {:.6}",
            cpu_micros as f64 / 1e6
        );
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Adds one shard's counters into the merged ones.
fn add_counts<K: Copy + Eq + std::hash::Hash>(into: &mut HashMap<K, u64>, from: &HashMap<K, u64>) {
    for (k, v) in from {
        *into.entry(*k).or_default() += v;
    }
}

/// The name behind label id `i`; empty for [`NONE`] (or an id this registry lacks).
fn name(names: &[String], i: u32) -> &str {
    names.get(i as usize).map_or("", String::as_str)
}

/// A target label's (alias, target) names, escaped.
fn target_names(names: &LabelNames, t: u32) -> (String, String) {
    match names.targets.get(t as usize) {
        Some((a, n)) => (esc(name(&names.aliases, *a)), esc(n)),
        None => (String::new(), String::new()),
    }
}

/// The histogram at label id `i`, allocated on first use.
fn slot(v: &mut Vec<Option<Histogram<u64>>>, i: u32) -> &mut Histogram<u64> {
    let i = i as usize;
    if v.len() <= i {
        v.resize_with(i + 1, || None);
    }
    v[i].get_or_insert_with(histogram)
}

/// Adds one shard's histograms into the merged ones, slot by slot.
fn add_slots(into: &mut Vec<Option<Histogram<u64>>>, from: &[Option<Histogram<u64>>]) {
    for (i, h) in from.iter().enumerate() {
        if let Some(h) = h {
            let _ = slot(into, i as u32).add(h);
        }
    }
}

/// A counter family by alias, target and one more label (`name`, `label`), rows sorted.
fn per_target<L: Ord + Copy + std::fmt::Display>(
    o: &mut String,
    names: &LabelNames,
    (name, label): (&str, &str),
    help: &str,
    counts: &HashMap<(u32, L), u64>,
) {
    header(o, name, "counter", help);
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort();
    for ((t, l), v) in rows {
        let (a, n) = target_names(names, *t);
        let _ = writeln!(
            o,
            "{name}{{model=\"{a}\",target=\"{n}\",{label}=\"{l}\"}} {v}"
        );
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: i64) {
    header(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {v}");
}

fn summary(o: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    let sep = if labels.is_empty() { "" } else { "," };
    for q in [0.5, 0.9, 0.99, 0.999] {
        let v = h.value_at_quantile(q) as f64 / 1e6;
        let _ = writeln!(o, "{name}{{{labels}{sep}quantile=\"{q}\"}} {v:.6}");
    }
    let sum = h.mean() * h.len() as f64 / 1e6;
    let _ = writeln!(o, "{name}_sum{{{labels}}} {sum:.6}");
    let _ = writeln!(o, "{name}_count{{{labels}}} {}", h.len());
}
