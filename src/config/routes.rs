//! The `models:` section: aliases, their targets, and the route settings [`crate::routing`] acts
//! on (strategy, rules, retries, timeouts, breaker, hedging, fallbacks), with their defaults.
//!
//! ```yaml
//! models:
//!   fast:
//!     strategy: weighted          # weighted | least-latency | least-busy | cost | priority
//!     targets:
//!       - { provider: openai, model: gpt-4o-mini, weight: 3, max_concurrent: 200 }
//!       - { provider: claude, model: claude-haiku-4-5, name: haiku, api_key: { env: K },
//!           price: { input: 1.0, output: 5.0, cached_input: 0.1, cache_write: 1.25 } }
//!     fallbacks: [backup]
//!     fallback_on: { context_window: big, content_policy: other }
//!     retry: { attempts: 2, backoff_ms: 50, max_backoff_ms: 2000 }
//!     timeouts: { first_byte_ms: 20000, total_ms: 600000 }
//!     breaker: { failures: 5, failure_rate: 0.5, window: 20, cooldown_ms: 30000, half_open_probes: 1 }
//!     rules:
//!       - { when: { tag: batch }, targets: [haiku] }
//! ```
//!
//! Parsing follows the rest of `parse`: every problem is reported with its path and unknown
//! fields are errors. Alias references (`fallbacks`, `fallback_on`) are resolved after every
//! alias is read, so they may point forward; only a self-reference is rejected (the pipeline
//! bounds the fallback depth, so cycles between aliases are harmless).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::parse::{Walker, get, join, type_name};
use super::wire;
use super::{Model, Provider, Target};
use crate::routing::{MAX_TARGETS, Price, TargetSet};

/// How an alias picks the first target of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Smooth weighted round-robin over the healthy targets, per shard.
    #[default]
    Weighted,
    /// Power of two choices on the peak-EWMA time to first byte.
    LeastLatency,
    /// Fewest requests in flight on this shard, relative to weight.
    LeastBusy,
    /// Cheapest for the request's estimated tokens.
    Cost,
    /// Config order: the first healthy target.
    Priority,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Weighted,
        Strategy::LeastLatency,
        Strategy::LeastBusy,
        Strategy::Cost,
        Strategy::Priority,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Weighted => "weighted",
            Strategy::LeastLatency => "least-latency",
            Strategy::LeastBusy => "least-busy",
            Strategy::Cost => "cost",
            Strategy::Priority => "priority",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Retries within one alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included (1 = no retry).
    pub attempts: u32,
    /// Backoff ceiling of the first retry; doubles per retry up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(2000),
        }
    }
}

/// Per-alias overrides of the provider's timeouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTimeouts {
    pub first_byte: Option<Duration>,
    pub total: Option<Duration>,
}

/// Circuit-breaker settings, the same for every target of an alias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failures that trip the breaker.
    pub failures: u32,
    /// Share of failures in the last `window` results that trips it, in (0, 1].
    pub failure_rate: f64,
    /// Results the rate is judged over, 1..=64.
    pub window: u32,
    /// How long an open breaker stays open before admitting probes.
    pub cooldown: Duration,
    /// Requests a half-open breaker lets through at a time.
    pub half_open_probes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures: 5,
            failure_rate: 0.5,
            window: 20,
            cooldown: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// Hedging: when the first target has not answered within a delay, the same request also goes
/// to the plan's next target, and whichever answers first is kept (the other is cancelled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgePolicy {
    /// The fixed delay; with `quantile`, the delay until the target has enough samples.
    pub after: Duration,
    /// Hedge after this quantile (e.g. 0.95) of the first target's recent times to first byte.
    pub quantile: Option<f64>,
    /// At most this share of the alias's requests (0..=1) is hedged, per shard.
    pub max_share: f64,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        HedgePolicy {
            after: Duration::from_millis(500),
            quantile: None,
            max_share: 0.1,
        }
    }
}

/// What an active health check sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Probe {
    /// `GET …/models`: free, proves the provider is reachable and the credentials work.
    #[default]
    Models,
    /// A one-token chat to the target's model: costs a token, proves the model answers.
    Chat,
}

/// Active health checks of every target of an alias, from each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub interval: Duration,
    /// Limit on each probe, connect included.
    pub timeout: Duration,
    /// Consecutive failed probes that mark a target down (one good probe marks it up).
    pub failures: u32,
    pub probe: Probe,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            failures: 2,
            probe: Probe::Models,
        }
    }
}

/// Aliases for specific error classes, tried before the general `fallbacks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FallbackOn {
    pub context_window: Option<usize>,
    pub content_policy: Option<usize>,
}

/// A routing rule: when every condition holds, only `targets` are eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub when: When,
    pub targets: TargetSet,
}

/// A rule's conditions; absent ones always hold, at least one is present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    /// A tag in the request's `x-shardgate-tags` header.
    pub tag: Option<String>,
    /// The request's `user` (OpenAI) or `metadata.user_id` (Anthropic).
    pub user: Option<String>,
    /// The caller's team (the key's name).
    pub team: Option<String>,
    pub min_prompt_tokens: Option<u64>,
    pub max_prompt_tokens: Option<u64>,
    /// Share of requests, in basis points (0..=10000), by request hash.
    pub canary: Option<u16>,
}

/// The most `retry.attempts` may say: a sanity bound, far beyond any useful retry count.
const MAX_ATTEMPTS: u64 = 10;

/// An alias named by another, resolved once every alias is known.
struct AliasRef {
    from: usize,
    path: String,
    name: String,
    slot: Slot,
}

#[derive(Clone, Copy)]
enum Slot {
    Fallback,
    ContextWindow,
    ContentPolicy,
}

const MODEL_FIELDS: [&str; 14] = [
    "cache",
    "guardrails",
    "limits",
    "max_output_tokens",
    "strategy",
    "targets",
    "fallbacks",
    "fallback_on",
    "retry",
    "timeouts",
    "breaker",
    "hedge",
    "health",
    "rules",
];

const TARGET_FIELDS: [&str; 7] = [
    "provider",
    "model",
    "name",
    "weight",
    "max_concurrent",
    "api_key",
    "price",
];

impl Walker<'_> {
    pub(super) fn models(
        &mut self,
        y: Option<&Yaml>,
        providers: &[Provider],
        guardrails: &super::guardrail::Guardrails,
    ) -> (Vec<Model>, HashMap<String, usize>) {
        let mut models = Vec::new();
        let mut index = HashMap::new();
        let Some(y) = y else { return (models, index) };
        let Yaml::Hash(h) = y else {
            self.problem(
                "models",
                format_args!(
                    "expected a mapping of model aliases, found {}",
                    type_name(y)
                ),
            );
            return (models, index);
        };
        let declared: HashSet<&str> = h.keys().filter_map(|k| k.as_str()).collect();
        let mut refs = Vec::new();
        for (alias, body) in h {
            let Some(alias) = alias.as_str() else {
                self.problem("models", "model aliases must be strings");
                continue;
            };
            let path = format!("models.{}", wire::shown(alias));
            if let Err(e) = wire::name(alias) {
                self.problem(&path, e);
            }
            let Some(mh) = self.mapping(body, &path, &MODEL_FIELDS) else {
                continue;
            };
            let from = models.len();
            let mut model = self.model(alias, mh, &path, providers, from, &mut refs);
            if let Some(y) = get(mh, "guardrails") {
                model.guardrails = self.attached(y, &join(&path, "guardrails"), guardrails);
            }
            index.insert(alias.to_owned(), from);
            models.push(model);
        }
        for r in refs {
            let Some(&to) = index.get(&r.name) else {
                if !declared.contains(r.name.as_str()) {
                    self.problem(&r.path, format_args!("no model named {:?}", r.name));
                }
                continue;
            };
            if to == r.from {
                self.problem(&r.path, "must not be the alias itself");
                continue;
            }
            let m = &mut models[r.from];
            match r.slot {
                Slot::Fallback => m.fallbacks.push(to),
                Slot::ContextWindow => m.fallback_on.context_window = Some(to),
                Slot::ContentPolicy => m.fallback_on.content_policy = Some(to),
            }
        }
        (models, index)
    }

    fn model(
        &mut self,
        alias: &str,
        h: &Hash,
        path: &str,
        providers: &[Provider],
        from: usize,
        refs: &mut Vec<AliasRef>,
    ) -> Model {
        let targets = self.targets(h, path, providers);
        let mut m = Model::new(alias, targets);
        if let Some(y) = get(h, "strategy") {
            let sp = join(path, "strategy");
            if let Some(name) = self.string(y, &sp) {
                match Strategy::from_name(&name) {
                    Some(s) => m.strategy = s,
                    None => {
                        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
                        self.problem(
                            &sp,
                            format_args!(
                                "unknown strategy {name:?} (one of: {})",
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        self.alias_refs(h, path, from, refs);
        if let Some(y) = get(h, "retry") {
            m.retry = self.retry(y, &join(path, "retry"));
        }
        if let Some(y) = get(h, "timeouts") {
            m.timeouts = self.route_timeouts(y, &join(path, "timeouts"));
        }
        m.request_timeout = m.timeouts.total.unwrap_or_else(|| {
            let totals = m
                .targets
                .iter()
                .map(|t| providers[t.provider].timeouts.total);
            totals.max().unwrap_or(m.request_timeout)
        });
        if let Some(y) = get(h, "breaker") {
            m.breaker = self.breaker(y, &join(path, "breaker"));
        }
        if let Some(y) = get(h, "hedge") {
            let hp = join(path, "hedge");
            m.hedge = self.hedge(y, &hp);
            if m.hedge.is_some() && m.targets.len() < 2 {
                self.problem(&hp, "needs at least two targets to hedge between");
            } else if m.hedge.is_some() && m.retry.attempts < 2 {
                self.problem(
                    &hp,
                    "needs retry.attempts of at least 2 (the hedge is the second attempt)",
                );
            }
        }
        if let Some(y) = get(h, "health") {
            m.health = self.health(y, &join(path, "health"));
        }
        if let Some(y) = get(h, "rules") {
            m.rules = self.rules(y, &join(path, "rules"), &m.targets);
        }
        if let Some(y) = get(h, "limits") {
            m.limits = self.alias_limits(y, &join(path, "limits"));
        }
        if let Some(y) = get(h, "cache") {
            m.cache = self.cache_rule(y, &join(path, "cache"));
        }
        if let Some(n) = get(h, "max_output_tokens")
            .and_then(|y| self.uint(y, &join(path, "max_output_tokens"), 1))
        {
            m.output_bound = n;
        }
        m
    }

    fn targets(&mut self, h: &Hash, path: &str, providers: &[Provider]) -> Vec<Target> {
        let tpath = join(path, "targets");
        let mut targets: Vec<Target> = Vec::new();
        match get(h, "targets") {
            Some(Yaml::Array(list)) if list.len() > MAX_TARGETS => self.problem(
                &tpath,
                format_args!("at most {MAX_TARGETS} targets, found {}", list.len()),
            ),
            Some(Yaml::Array(list)) if !list.is_empty() => {
                for (i, t) in list.iter().enumerate() {
                    let p = format!("{tpath}[{i}]");
                    let Some(t) = self.target(t, &p, providers) else {
                        continue;
                    };
                    if targets.iter().any(|o| o.name == t.name) {
                        self.problem(
                            &p,
                            format_args!(
                                "another target is named {:?}; give one a distinct `name`",
                                t.name
                            ),
                        );
                    } else {
                        targets.push(t);
                    }
                }
            }
            Some(Yaml::Array(_)) | None => self.problem(&tpath, "needs at least one target"),
            Some(other) => self.problem(
                &tpath,
                format_args!("expected a list, found {}", type_name(other)),
            ),
        }
        targets
    }

    fn target(&mut self, y: &Yaml, path: &str, providers: &[Provider]) -> Option<Target> {
        let h = self.mapping(y, path, &TARGET_FIELDS)?;
        let provider = match get(h, "provider") {
            Some(p) => {
                let name = self.string(p, &join(path, "provider"))?;
                match providers.iter().position(|p| p.name == name) {
                    Some(i) => Some(i),
                    None => {
                        self.problem(
                            &join(path, "provider"),
                            format_args!("no provider named {name:?}"),
                        );
                        None
                    }
                }
            }
            None => {
                self.problem(&join(path, "provider"), "missing");
                None
            }
        };
        let model = match get(h, "model") {
            Some(m) => self.string(m, &join(path, "model")),
            None => {
                self.problem(&join(path, "model"), "missing");
                None
            }
        };
        let name = get(h, "name").and_then(|y| self.name(y, &join(path, "name")));
        let weight = get(h, "weight")
            .and_then(|y| self.bounded(y, &join(path, "weight"), 1, 1_000_000))
            .unwrap_or(1) as u32;
        let max_concurrent = get(h, "max_concurrent")
            .and_then(|y| self.bounded(y, &join(path, "max_concurrent"), 1, u32::MAX as u64))
            .map(|n| n as u32);
        let api_key = get(h, "api_key").and_then(|y| self.secret(y, &join(path, "api_key")));
        let price = get(h, "price").and_then(|y| self.price(y, &join(path, "price")));
        let (provider, model) = (provider?, model?);
        if get(h, "name").is_none()
            && let Err(e) = wire::name(&model)
        {
            // The target's name is `provider/model`; the provider part is vetted with the
            // provider, so the model is what to fix (or a `name` to give).
            self.problem(
                &join(path, "model"),
                format_args!(
                    "{e} (the target's name is derived from it; give the target a `name`)"
                ),
            );
            return None;
        }
        let mut t = Target::new(provider, &providers[provider].name, model);
        if let Some(name) = name {
            t.name = name;
        }
        t.weight = weight;
        t.max_concurrent = max_concurrent;
        t.api_key = api_key;
        if price.is_some() {
            t.price = price;
        }
        Some(t)
    }

    fn price(&mut self, y: &Yaml, path: &str) -> Option<Price> {
        let h = self.mapping(y, path, &["input", "output", "cached_input", "cache_write"])?;
        let field = |w: &mut Self, key: &str, required: bool| match get(h, key) {
            Some(v) => w.number(v, &join(path, key), f64::MAX).map(Some),
            None if required => {
                w.problem(&join(path, key), "missing");
                None
            }
            None => Some(None),
        };
        let input = field(self, "input", true);
        let output = field(self, "output", true);
        let cached = field(self, "cached_input", false);
        let write = field(self, "cache_write", false);
        let (input, output) = (input??, output??);
        let mut p = Price::new(input, output, cached?.unwrap_or(input));
        p.cache_write = write?.unwrap_or(input);
        Some(p)
    }

    fn alias_refs(&mut self, h: &Hash, path: &str, from: usize, refs: &mut Vec<AliasRef>) {
        let mut push = |path: String, name: String, slot| {
            refs.push(AliasRef {
                from,
                path,
                name,
                slot,
            })
        };
        match get(h, "fallbacks") {
            None => {}
            Some(Yaml::Array(list)) => {
                let mut seen = HashSet::new();
                for (i, y) in list.iter().enumerate() {
                    let p = format!("{path}.fallbacks[{i}]");
                    let Some(name) = self.string(y, &p) else {
                        continue;
                    };
                    if !seen.insert(name.clone()) {
                        self.problem(&p, format_args!("{name:?} is listed twice"));
                    } else {
                        push(p, name, Slot::Fallback);
                    }
                }
            }
            Some(other) => self.problem(
                &join(path, "fallbacks"),
                format_args!("expected a list of aliases, found {}", type_name(other)),
            ),
        }
        if let Some(y) = get(h, "fallback_on") {
            let fp = join(path, "fallback_on");
            if let Some(fh) = self.mapping(y, &fp, &["context_window", "content_policy"]) {
                for (key, slot) in [
                    ("context_window", Slot::ContextWindow),
                    ("content_policy", Slot::ContentPolicy),
                ] {
                    let kp = join(&fp, key);
                    if let Some(name) = get(fh, key).and_then(|y| self.string(y, &kp)) {
                        push(kp, name, slot);
                    }
                }
            }
        }
    }

    fn retry(&mut self, y: &Yaml, path: &str) -> RetryPolicy {
        let mut r = RetryPolicy::default();
        let Some(h) = self.mapping(y, path, &["attempts", "backoff_ms", "max_backoff_ms"]) else {
            return r;
        };
        if let Some(n) = get(h, "attempts")
            .and_then(|y| self.bounded(y, &join(path, "attempts"), 1, MAX_ATTEMPTS))
        {
            r.attempts = n as u32;
        }
        if let Some(n) =
            get(h, "backoff_ms").and_then(|y| self.uint(y, &join(path, "backoff_ms"), 0))
        {
            r.backoff = Duration::from_millis(n);
        }
        r.max_backoff = self.millis(h, "max_backoff_ms", path, r.max_backoff);
        if r.max_backoff < r.backoff {
            self.problem(
                &join(path, "max_backoff_ms"),
                format_args!("must be at least backoff_ms ({} ms)", r.backoff.as_millis()),
            );
        }
        r
    }

    fn route_timeouts(&mut self, y: &Yaml, path: &str) -> RouteTimeouts {
        let mut t = RouteTimeouts::default();
        let Some(h) = self.mapping(y, path, &["first_byte_ms", "total_ms"]) else {
            return t;
        };
        let ms = |w: &mut Self, key: &str| {
            get(h, key)
                .and_then(|y| w.uint(y, &join(path, key), 1))
                .map(Duration::from_millis)
        };
        t.first_byte = ms(self, "first_byte_ms");
        t.total = ms(self, "total_ms");
        if let (Some(fb), Some(total)) = (t.first_byte, t.total)
            && fb > total
        {
            self.problem(
                &join(path, "first_byte_ms"),
                format_args!("must not exceed total_ms ({} ms)", total.as_millis()),
            );
        }
        t
    }

    fn hedge(&mut self, y: &Yaml, path: &str) -> Option<HedgePolicy> {
        let h = self.mapping(y, path, &["after", "after_ms", "max_percent"])?;
        let mut p = HedgePolicy::default();
        if get(h, "after").is_none() && get(h, "after_ms").is_none() {
            self.problem(path, "needs `after` (a quantile such as p95) or `after_ms`");
        }
        p.after = self.millis(h, "after_ms", path, p.after);
        if let Some(y) = get(h, "after") {
            let ap = join(path, "after");
            let q = self.string(y, &ap)?;
            match q.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()) {
                Some(n) if (50.0..100.0).contains(&n) => p.quantile = Some(n / 100.0),
                _ => self.problem(
                    &ap,
                    format_args!("expected a quantile from p50 to p99.9, found {q:?}"),
                ),
            }
        }
        if let Some(y) = get(h, "max_percent") {
            let mp = join(path, "max_percent");
            match self.number(y, &mp, 100.0) {
                Some(n) if n > 0.0 => p.max_share = n / 100.0,
                Some(_) => self.problem(&mp, "must be greater than 0"),
                None => {}
            }
        }
        Some(p)
    }

    fn health(&mut self, y: &Yaml, path: &str) -> Option<HealthPolicy> {
        let fields = ["interval_ms", "timeout_ms", "failures", "probe"];
        let h = self.mapping(y, path, &fields)?;
        let mut p = HealthPolicy::default();
        if let Some(n) =
            get(h, "interval_ms").and_then(|y| self.uint(y, &join(path, "interval_ms"), 100))
        {
            p.interval = Duration::from_millis(n);
        }
        p.timeout = self.millis(h, "timeout_ms", path, p.timeout);
        if let Some(n) =
            get(h, "failures").and_then(|y| self.bounded(y, &join(path, "failures"), 1, 100))
        {
            p.failures = n as u32;
        }
        if let Some(y) = get(h, "probe") {
            let pp = join(path, "probe");
            match self.string(y, &pp).as_deref() {
                Some("models") => p.probe = Probe::Models,
                Some("chat") => p.probe = Probe::Chat,
                Some(other) => self.problem(
                    &pp,
                    format_args!("expected `models` or `chat`, found {other:?}"),
                ),
                None => {}
            }
        }
        Some(p)
    }

    fn breaker(&mut self, y: &Yaml, path: &str) -> BreakerPolicy {
        let mut b = BreakerPolicy::default();
        let fields = [
            "failures",
            "failure_rate",
            "window",
            "cooldown_ms",
            "half_open_probes",
        ];
        let Some(h) = self.mapping(y, path, &fields) else {
            return b;
        };
        if let Some(n) = get(h, "failures").and_then(|y| self.uint(y, &join(path, "failures"), 1)) {
            b.failures = n.min(u32::MAX as u64) as u32;
        }
        if let Some(y) = get(h, "failure_rate") {
            let rp = join(path, "failure_rate");
            match self.number(y, &rp, 1.0) {
                Some(r) if r > 0.0 => b.failure_rate = r,
                Some(_) => self.problem(&rp, "must be greater than 0"),
                None => {}
            }
        }
        if let Some(n) =
            get(h, "window").and_then(|y| self.bounded(y, &join(path, "window"), 1, 64))
        {
            b.window = n as u32;
        }
        b.cooldown = self.millis(h, "cooldown_ms", path, b.cooldown);
        if let Some(n) = get(h, "half_open_probes")
            .and_then(|y| self.bounded(y, &join(path, "half_open_probes"), 1, 1000))
        {
            b.half_open_probes = n as u32;
        }
        b
    }

    fn rules(&mut self, y: &Yaml, path: &str, targets: &[Target]) -> Vec<Rule> {
        let mut out = Vec::new();
        let Yaml::Array(list) = y else {
            self.problem(
                path,
                format_args!("expected a list, found {}", type_name(y)),
            );
            return out;
        };
        for (i, r) in list.iter().enumerate() {
            let rp = format!("{path}[{i}]");
            let Some(h) = self.mapping(r, &rp, &["when", "targets"]) else {
                continue;
            };
            let when = match get(h, "when") {
                Some(w) => self.when(w, &join(&rp, "when")),
                None => {
                    self.problem(&join(&rp, "when"), "missing");
                    None
                }
            };
            let set = self.rule_targets(get(h, "targets"), &join(&rp, "targets"), targets);
            if let (Some(when), Some(targets)) = (when, set) {
                out.push(Rule { when, targets });
            }
        }
        out
    }

    fn rule_targets(
        &mut self,
        y: Option<&Yaml>,
        path: &str,
        targets: &[Target],
    ) -> Option<TargetSet> {
        let list = match y {
            Some(Yaml::Array(list)) if !list.is_empty() => list,
            Some(Yaml::Array(_)) | None => {
                self.problem(path, "needs at least one target name");
                return None;
            }
            Some(other) => {
                self.problem(
                    path,
                    format_args!(
                        "expected a list of target names, found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        let mut set = TargetSet::EMPTY;
        let mut ok = true;
        for (j, n) in list.iter().enumerate() {
            let np = format!("{path}[{j}]");
            let Some(name) = self.string(n, &np) else {
                ok = false;
                continue;
            };
            match targets.iter().position(|t| t.name == name) {
                Some(k) => set.insert(k),
                None => {
                    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                    self.problem(
                        &np,
                        format_args!(
                            "no target named {name:?} in this alias (targets: {})",
                            names.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(set)
    }

    fn when(&mut self, y: &Yaml, path: &str) -> Option<When> {
        let fields = [
            "tag",
            "user",
            "team",
            "min_prompt_tokens",
            "max_prompt_tokens",
            "canary",
        ];
        let h = self.mapping(y, path, &fields)?;
        if h.is_empty() {
            self.problem(
                path,
                format_args!("needs at least one condition ({})", fields.join(", ")),
            );
            return None;
        }
        let before = self.problems.len();
        let text =
            |w: &mut Self, key: &str| get(h, key).and_then(|y| w.string(y, &join(path, key)));
        let mut when = When {
            tag: text(self, "tag"),
            user: text(self, "user"),
            team: get(h, "team").and_then(|y| self.name(y, &join(path, "team"))),
            ..When::default()
        };
        if let Some(tag) = &when.tag
            && (tag.contains(',') || tag.trim_matches([' ', '\t']) != tag)
        {
            self.problem(
                &join(path, "tag"),
                "a tag must not contain commas or surrounding spaces",
            );
        }
        when.min_prompt_tokens = get(h, "min_prompt_tokens")
            .and_then(|y| self.uint(y, &join(path, "min_prompt_tokens"), 0));
        when.max_prompt_tokens = get(h, "max_prompt_tokens")
            .and_then(|y| self.uint(y, &join(path, "max_prompt_tokens"), 0));
        if let (Some(lo), Some(hi)) = (when.min_prompt_tokens, when.max_prompt_tokens)
            && lo > hi
        {
            self.problem(
                &join(path, "max_prompt_tokens"),
                format_args!("must be at least min_prompt_tokens ({lo})"),
            );
        }
        when.canary = get(h, "canary")
            .and_then(|y| self.number(y, &join(path, "canary"), 100.0))
            .map(|pct| (pct * 100.0).round() as u16);
        (self.problems.len() == before).then_some(when)
    }

    /// An integer in `min..=max`.
    fn bounded(&mut self, y: &Yaml, path: &str, min: u64, max: u64) -> Option<u64> {
        let n = self.uint(y, path, min)?;
        if n > max {
            self.problem(path, format_args!("must be at most {max}, found {n}"));
            return None;
        }
        Some(n)
    }

    /// A finite number (integer or decimal) in `0..=max`.
    pub(super) fn number(&mut self, y: &Yaml, path: &str, max: f64) -> Option<f64> {
        let v = match y {
            Yaml::Integer(i) => *i as f64,
            Yaml::Real(_) => match y.as_f64() {
                Some(v) if v.is_finite() => v,
                _ => {
                    self.problem(path, "expected a finite number");
                    return None;
                }
            },
            other => {
                self.problem(
                    path,
                    format_args!("expected a number, found {}", type_name(other)),
                );
                return None;
            }
        };
        if v < 0.0 || v > max {
            let shown = if max == f64::MAX {
                "must not be negative".to_owned()
            } else {
                format!("must be from 0 to {max}")
            };
            self.problem(path, format_args!("{shown}, found {v}"));
            return None;
        }
        Some(v)
    }
}
