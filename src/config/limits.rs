//! The limit settings of config: an alias's `limits:` and the LiteLLM fields of a key in
//! `keys:` (`rpm_limit`, `tpm_limit`, `max_parallel_requests`, `model_rpm_limit`, …). The
//! control thread turns them into pool slots; here they are only checked and read.

use std::collections::{BTreeMap, HashMap};

use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::parse::{Walker, get, join, type_name};
use crate::store::Limits;

/// An alias's own limits, across every key that uses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AliasLimits {
    pub rps: Option<u64>,
    pub rpm: Option<u64>,
    pub rph: Option<u64>,
    pub rpd: Option<u64>,
    /// Tokens (prompt + completion) per minute and per day.
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
    pub input_tpm: Option<u64>,
    pub output_tpm: Option<u64>,
    pub max_parallel_requests: Option<u64>,
}

const ALIAS_FIELDS: [&str; 9] = [
    "rps",
    "rpm",
    "rph",
    "rpd",
    "tpm",
    "tpd",
    "input_tpm",
    "output_tpm",
    "max_parallel_requests",
];

/// The limit fields a key in `keys:` may carry (LiteLLM's names).
pub const KEY_FIELDS: [&str; 8] = [
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
    "max_budget",
    "soft_budget",
    "budget_duration",
];

impl Walker<'_> {
    pub(super) fn alias_limits(&mut self, y: &Yaml, path: &str) -> AliasLimits {
        let mut l = AliasLimits::default();
        let Some(h) = self.mapping(y, path, &ALIAS_FIELDS) else {
            return l;
        };
        for (name, field) in [
            ("rps", &mut l.rps),
            ("rpm", &mut l.rpm),
            ("rph", &mut l.rph),
            ("rpd", &mut l.rpd),
            ("tpm", &mut l.tpm),
            ("tpd", &mut l.tpd),
            ("input_tpm", &mut l.input_tpm),
            ("output_tpm", &mut l.output_tpm),
            ("max_parallel_requests", &mut l.max_parallel_requests),
        ] {
            if let Some(v) = get(h, name) {
                *field = self.uint(v, &join(path, name), 1);
            }
        }
        l
    }

    /// `end_users:`: the limits every end user gets, counted per user.
    pub(super) fn end_user_limits(&mut self, y: &Yaml) -> Limits {
        let fields = [
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "max_budget",
            "budget_duration",
        ];
        match self.mapping(y, "end_users", &fields) {
            Some(h) => self.key_limits(h, "end_users", &HashMap::new()),
            None => Limits::default(),
        }
    }

    /// A config key's limit fields; `models` are the aliases `model_*_limit` may name.
    pub(super) fn key_limits(
        &mut self,
        h: &Hash,
        path: &str,
        models: &HashMap<String, usize>,
    ) -> Limits {
        let mut l = Limits::default();
        for (name, field) in [
            ("rpm_limit", &mut l.rpm_limit),
            ("tpm_limit", &mut l.tpm_limit),
            ("max_parallel_requests", &mut l.max_parallel_requests),
        ] {
            if let Some(v) = get(h, name) {
                *field = self.uint(v, &join(path, name), 1);
            }
        }
        for (name, field) in [
            ("max_budget", &mut l.max_budget),
            ("soft_budget", &mut l.soft_budget),
        ] {
            if let Some(v) = get(h, name) {
                *field = self.number(v, &join(path, name), 1e12);
            }
        }
        if let Some(v) = get(h, "budget_duration") {
            let p = join(path, "budget_duration");
            if let Some(text) = self.string(v, &p) {
                if crate::limits::Window::parse_period(&text, 0).is_some() {
                    l.budget_duration = Some(text);
                } else {
                    self.problem(&p, "expected a period such as 1d, 7d, 30d or 1mo");
                }
            }
        }
        for (name, field) in [
            ("model_rpm_limit", &mut l.model_rpm_limit),
            ("model_tpm_limit", &mut l.model_tpm_limit),
        ] {
            if let Some(v) = get(h, name) {
                *field = self.per_model(v, &join(path, name), models);
            }
        }
        if l.budget_duration.is_some() && l.max_budget.is_none() && l.soft_budget.is_none() {
            self.problem(
                &join(path, "budget_duration"),
                "needs max_budget or soft_budget",
            );
        }
        l
    }

    fn per_model(
        &mut self,
        y: &Yaml,
        path: &str,
        models: &HashMap<String, usize>,
    ) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Yaml::Hash(h) = y else {
            self.problem(
                path,
                format_args!(
                    "expected a mapping of alias: number, found {}",
                    type_name(y)
                ),
            );
            return out;
        };
        for (k, v) in h {
            let Some(alias) = k.as_str() else {
                self.problem(path, "aliases must be strings");
                continue;
            };
            let p = join(path, alias);
            if !models.contains_key(alias) {
                self.problem(&p, format_args!("no model named {alias:?}"));
            } else if let Some(n) = self.uint(v, &p, 1) {
                out.insert(alias.to_owned(), n);
            }
        }
        out
    }
}
