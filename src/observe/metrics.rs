//! Per-shard metrics. Each shard records into its own counters and hdrhistograms with plain
//! arithmetic (no atomics, no locks); a scrape asks every shard for a copy over its control
//! queue, merges the copies and renders Prometheus text.

use std::collections::HashMap;
use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::config::Snapshot;
use crate::error::Kind;
use crate::providers::Usage;

/// Label index meaning "no model/provider" (the request failed before one was known).
pub const NONE: u32 = u32::MAX;

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 1 hour, 2 significant digits: a few KiB each.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid")
}

#[derive(Clone)]
pub struct ShardMetrics {
    requests: HashMap<(u32, u32, u16), u64>,
    errors: HashMap<Kind, u64>,
    upstream_errors: HashMap<(u32, Kind), u64>,
    duration: Vec<Histogram<u64>>,
    ttfb: Vec<Histogram<u64>>,
    overhead: Histogram<u64>,
    tokens: Vec<(u64, u64)>,
    /// Upstream attempts by (alias, target, result code or "ok").
    attempts: HashMap<(u32, u16, &'static str), u64>,
    /// Attempts after the first, by alias.
    retries: HashMap<u32, u64>,
    /// Fallbacks by (from alias, to alias).
    fallbacks: HashMap<(u32, u32), u64>,
    /// Circuit-breaker trips by (alias, target).
    breaker_trips: HashMap<(u32, u16), u64>,
    /// Hedges sent by (alias, target hedged to, whether the hedge won the race).
    hedges: HashMap<(u32, u16, bool), u64>,
    /// Health-check probes by (alias, target, result).
    probes: HashMap<(u32, u16, &'static str), u64>,
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
}

/// One request, as the settle stage reports it.
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
    pub fn new(snapshot: &Snapshot) -> Self {
        ShardMetrics {
            requests: HashMap::new(),
            errors: HashMap::new(),
            upstream_errors: HashMap::new(),
            // One extra slot for requests without a known model.
            duration: (0..=snapshot.models.len()).map(|_| histogram()).collect(),
            ttfb: snapshot.providers.iter().map(|_| histogram()).collect(),
            overhead: histogram(),
            tokens: vec![(0, 0); snapshot.models.len()],
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
        }
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
        let slot = if s.model == NONE {
            self.duration.len() - 1
        } else {
            s.model as usize
        };
        let _ = self.duration[slot].record(s.total_us.max(1));
        if let (Some(t), true) = (s.ttfb_us, s.provider != NONE) {
            let _ = self.ttfb[s.provider as usize].record(t.max(1));
        }
        if s.model != NONE {
            let overhead = s.total_us.saturating_sub(s.upstream_us.unwrap_or(0));
            let _ = self.overhead.record(overhead.max(1));
            if let Some(u) = s.usage {
                let t = &mut self.tokens[s.model as usize];
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
        target: u16,
        result: &'static str,
        retry: bool,
        tripped: bool,
    ) {
        *self.attempts.entry((model, target, result)).or_default() += 1;
        if retry {
            *self.retries.entry(model).or_default() += 1;
        }
        if tripped {
            *self.breaker_trips.entry((model, target)).or_default() += 1;
        }
    }

    /// A hedge was sent to `target`; `won`: its answer was the one kept.
    pub fn hedge(&mut self, model: u32, target: u16, won: bool) {
        *self.hedges.entry((model, target, won)).or_default() += 1;
    }

    /// A health-check probe of a target ended with `result` (`ok` or an error kind's code).
    pub fn probe(&mut self, model: u32, target: u16, result: &'static str) {
        *self.probes.entry((model, target, result)).or_default() += 1;
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
        for (a, b) in self.duration.iter_mut().zip(&o.duration) {
            let _ = a.add(b);
        }
        for (a, b) in self.ttfb.iter_mut().zip(&o.ttfb) {
            let _ = a.add(b);
        }
        let _ = self.overhead.add(&o.overhead);
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
        self.access_log_dropped += o.access_log_dropped;
    }

    /// Attempts, retries, fallbacks and breaker trips, by alias and target.
    fn render_routing(&self, o: &mut String, snap: &Snapshot) {
        let alias = |m: u32| esc(&snap.models[m as usize].alias);
        let target = |m: u32, t: u16| esc(&snap.models[m as usize].targets[t as usize].name);
        per_target(
            o,
            snap,
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
        for ((m, t), v) in rows {
            let (a, n) = (alias(*m), target(*m, *t));
            let _ = writeln!(
                o,
                "shardgate_breaker_trips_total{{model=\"{a}\",target=\"{n}\"}} {v}"
            );
        }
        per_target(
            o,
            snap,
            ("shardgate_hedges_total", "won"),
            "Hedged requests by alias and the target hedged to; won: the hedge answered first.",
            &self.hedges,
        );
        per_target(
            o,
            snap,
            ("shardgate_health_probes_total", "result"),
            "Active health-check probes by alias, target and result (ok or error kind).",
            &self.probes,
        );
    }

    /// Prometheus text exposition of merged metrics.
    pub fn render(&self, snap: &Snapshot, shards: usize, cpu_micros: u64) -> String {
        let model = |i: u32| {
            if i == NONE {
                ""
            } else {
                snap.models[i as usize].alias.as_str()
            }
        };
        let provider = |i: u32| {
            if i == NONE {
                ""
            } else {
                snap.providers[i as usize].name.as_str()
            }
        };
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
                k.code(),
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
        rows.sort_by_key(|((p, k), _)| (*p, k.code()));
        for ((p, k), v) in rows {
            let _ = writeln!(
                o,
                "shardgate_upstream_errors_total{{provider=\"{}\",kind=\"{}\"}} {v}",
                esc(provider(*p)),
                k.code()
            );
        }
        self.render_routing(o, snap);
        header(
            o,
            "shardgate_request_duration_seconds",
            "summary",
            "Whole request time as the gateway saw it.",
        );
        for (i, h) in self.duration.iter().enumerate() {
            let m = if i == snap.models.len() {
                ""
            } else {
                &snap.models[i].alias
            };
            summary(
                o,
                "shardgate_request_duration_seconds",
                &format!("model=\"{}\"", esc(m)),
                h,
            );
        }
        header(
            o,
            "shardgate_upstream_ttfb_seconds",
            "summary",
            "Time from sending upstream to its response head.",
        );
        for (i, h) in self.ttfb.iter().enumerate() {
            summary(
                o,
                "shardgate_upstream_ttfb_seconds",
                &format!("provider=\"{}\"", esc(&snap.providers[i].name)),
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
            let m = esc(&snap.models[i].alias);
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

/// A counter family by alias, target and one more label (`name`, `label`), rows sorted.
fn per_target<L: Ord + Copy + std::fmt::Display>(
    o: &mut String,
    snap: &Snapshot,
    (name, label): (&str, &str),
    help: &str,
    counts: &HashMap<(u32, u16, L), u64>,
) {
    header(o, name, "counter", help);
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort();
    for ((m, t, l), v) in rows {
        let model = &snap.models[*m as usize];
        let (a, n) = (esc(&model.alias), esc(&model.targets[*t as usize].name));
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
