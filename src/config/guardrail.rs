//! `guardrails:` — named policies, each one check with an action, compiled once per
//! generation and attached to aliases (`models.<alias>.guardrails: [names]`) and, through the
//! store, to keys and teams.
//!
//! ```yaml
//! guardrails:
//!   no-pii:     { check: pii, action: redact, on: [request, response] }
//!   no-secrets: { check: secrets, action: block, on: [request] }
//!   words:      { check: deny, patterns: ["project-x"], regex: ["ticket-\\d+"] }
//!   short:      { check: length, max_chars: 20000 }
//!   only-mini:  { check: models, allow: ["*-mini"] }
//!   shape:      { check: json_schema, schema: { type: object, required: [answer] }, on: [response] }
//!   review:     { check: webhook, url: "http://127.0.0.1:7000/check", timeout_ms: 200, on_error: allow }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::parse::{Walker, get, join, type_name};
use super::{Origin, Provider, Timeouts};
use crate::guard::{Check, Entity, PiiSet};

/// What a policy does when its check finds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refuse: the request (or the answer) becomes an error naming the policy.
    Block,
    /// Replace what was found with typed placeholders (`<EMAIL_1>`) and go on.
    Redact,
    /// Go on unchanged; log and count only.
    Flag,
}

/// What a policy checks.
#[derive(Debug)]
pub enum Rule {
    /// A detector over the text ([`crate::guard`]).
    Scan(Check),
    /// More than `max_chars` characters of text.
    Length { max_chars: u64 },
    /// The requested alias against allow and deny lists (`*` ends a prefix pattern).
    Models {
        allow: Vec<String>,
        deny: Vec<String>,
    },
    /// The answer's text must be JSON valid against the schema.
    Schema(Box<jsonschema::Validator>),
    /// An HTTP call that answers allow, block or redact.
    Webhook(Box<Webhook>),
}

/// A webhook check's endpoint, as an upstream of its own (pooled like the providers').
#[derive(Debug)]
pub struct Webhook {
    pub provider: Provider,
    /// The request path (and query) at the origin.
    pub path: String,
    /// The whole call's deadline: connect, send and answer.
    pub timeout: Duration,
    /// When the call fails or times out: go on (`on_error: allow`) or refuse.
    pub fail_open: bool,
}

/// One named policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub rule: Rule,
    pub action: Action,
    /// Checked on the request, before routing.
    pub request: bool,
    /// Checked on the answer, whole or streamed, before it reaches the client.
    pub response: bool,
    /// The HTTP status of a block (default 400).
    pub status: u16,
}

/// Every policy of a generation, by position, and their names.
#[derive(Debug, Default)]
pub struct Guardrails {
    pub policies: Vec<Policy>,
    pub index: HashMap<String, usize>,
}

impl Guardrails {
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

impl Rule {
    fn check_name(&self) -> &'static str {
        match self {
            Rule::Scan(Check::Pii(_)) => "pii",
            Rule::Scan(Check::Secrets) => "secrets",
            Rule::Scan(Check::Injection) => "injection",
            Rule::Scan(Check::Deny(_)) => "deny",
            Rule::Length { .. } => "length",
            Rule::Models { .. } => "models",
            Rule::Schema(_) => "json_schema",
            Rule::Webhook(_) => "webhook",
        }
    }
}

/// Whether `alias` matches `pattern` (exact, or a prefix before a final `*`).
pub fn matches(pattern: &str, alias: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => alias.starts_with(prefix),
        None => pattern == alias,
    }
}

const FIELDS: [&str; 14] = [
    "check",
    "action",
    "on",
    "status",
    "entities",
    "patterns",
    "regex",
    "max_chars",
    "allow",
    "deny",
    "schema",
    "url",
    "timeout_ms",
    "on_error",
];

impl Walker<'_> {
    /// The top-level `guardrails:` mapping. Webhook endpoints join `origins`.
    pub(super) fn guardrails(&mut self, y: Option<&Yaml>, origins: &mut Vec<Origin>) -> Guardrails {
        let mut g = Guardrails::default();
        let Some(y) = y else { return g };
        if matches!(y, Yaml::Null) {
            return g;
        }
        let Yaml::Hash(h) = y else {
            self.problem(
                "guardrails",
                format_args!("expected a mapping, found {}", type_name(y)),
            );
            return g;
        };
        for (k, v) in h {
            let Some(name) = k.as_str() else { continue };
            let path = join("guardrails", name);
            if let Err(e) = super::wire::name(name) {
                self.problem(&path, e);
                continue;
            }
            if let Some(p) = self.policy(name, v, &path, origins) {
                g.index.insert(name.to_owned(), g.policies.len());
                g.policies.push(p);
            }
        }
        g
    }

    /// `models.<alias>.guardrails: [names]`, as indices into `g`.
    pub(super) fn attached(&mut self, y: &Yaml, path: &str, g: &Guardrails) -> Vec<u16> {
        let mut out = Vec::new();
        for name in self.strings(y, path) {
            match g.find(&name) {
                Some(i) if !out.contains(&(i as u16)) => out.push(i as u16),
                Some(_) => {}
                None => self.problem(path, format_args!("no guardrail named {name:?}")),
            }
        }
        out
    }

    fn policy(
        &mut self,
        name: &str,
        y: &Yaml,
        path: &str,
        origins: &mut Vec<Origin>,
    ) -> Option<Policy> {
        let h = self.mapping(y, path, &FIELDS)?;
        let check = match get(h, "check") {
            Some(c) => self.string(c, &join(path, "check"))?,
            None => {
                self.problem(
                    &join(path, "check"),
                    "missing (one of: pii, secrets, injection, deny, length, models, json_schema, webhook)",
                );
                return None;
            }
        };
        let rule = self.rule(&check, h, path, origins)?;
        let mut p = Policy {
            name: name.to_owned(),
            action: Action::Block,
            request: !matches!(rule, Rule::Schema(_)),
            response: matches!(rule, Rule::Schema(_)),
            status: 400,
            rule,
        };
        let fields_of = |check: &str| -> &'static [&'static str] {
            match check {
                "pii" => &["entities"],
                "deny" => &["patterns", "regex"],
                "length" => &["max_chars"],
                "models" => &["allow", "deny"],
                "json_schema" => &["schema"],
                "webhook" => &["url", "timeout_ms", "on_error"],
                _ => &[],
            }
        };
        let own = fields_of(p.rule.check_name());
        for field in [
            "entities",
            "patterns",
            "regex",
            "max_chars",
            "allow",
            "deny",
            "schema",
        ]
        .into_iter()
        .chain(["url", "timeout_ms", "on_error"])
        {
            if get(h, field).is_some() && !own.contains(&field) {
                let check = p.rule.check_name();
                self.problem(
                    &join(path, field),
                    format_args!("not a setting of check `{check}`"),
                );
            }
        }
        if let Some(a) = get(h, "action") {
            let ap = join(path, "action");
            p.action = match self.string(a, &ap).as_deref() {
                Some("block") => Action::Block,
                Some("redact") => Action::Redact,
                Some("flag") => Action::Flag,
                Some(other) => {
                    self.problem(
                        &ap,
                        format_args!("expected `block`, `redact` or `flag`, found {other:?}"),
                    );
                    Action::Block
                }
                None => Action::Block,
            };
            let redacts = matches!(p.rule, Rule::Scan(_) | Rule::Webhook(_));
            if p.action == Action::Redact && !redacts {
                let check = p.rule.check_name();
                self.problem(
                    &ap,
                    format_args!("check `{check}` finds nothing to redact (use block or flag)"),
                );
            }
        }
        if let Some(on) = get(h, "on") {
            let op = join(path, "on");
            let (mut request, mut response) = (false, false);
            for phase in self.strings(on, &op) {
                match phase.as_str() {
                    "request" => request = true,
                    "response" => response = true,
                    other => self.problem(
                        &op,
                        format_args!("expected `request` or `response`, found {other:?}"),
                    ),
                }
            }
            if !(request || response) {
                self.problem(&op, "names no phase (request, response)");
            }
            if response && matches!(p.rule, Rule::Models { .. }) {
                self.problem(&op, "check `models` applies to requests only");
            }
            if request && matches!(p.rule, Rule::Schema(_)) {
                self.problem(&op, "check `json_schema` applies to responses only");
            }
            (p.request, p.response) = (request, response);
        }
        if let Some(s) = get(h, "status") {
            let sp = join(path, "status");
            if let Some(n) = self.uint(s, &sp, 400) {
                if n > 599 {
                    self.problem(&sp, format_args!("must be an HTTP error status, found {n}"));
                } else {
                    p.status = n as u16;
                }
            }
        }
        Some(p)
    }

    fn rule(
        &mut self,
        check: &str,
        h: &Hash,
        path: &str,
        origins: &mut Vec<Origin>,
    ) -> Option<Rule> {
        Some(match check {
            "pii" => {
                let mut set = PiiSet::ALL;
                if let Some(y) = get(h, "entities") {
                    let ep = join(path, "entities");
                    set = PiiSet::NONE;
                    for e in self.strings(y, &ep) {
                        match Entity::from_label(&e).filter(|e| PiiSet::KINDS.contains(e)) {
                            Some(entity) => set = set.with(entity),
                            None => {
                                let kinds: Vec<&str> =
                                    PiiSet::KINDS.iter().map(|k| k.label()).collect();
                                self.problem(
                                    &ep,
                                    format_args!(
                                        "unknown entity {e:?} (one of: {})",
                                        kinds.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    if set.is_empty() {
                        self.problem(&ep, "names no entity");
                    }
                }
                Rule::Scan(Check::pii(set))
            }
            "secrets" => Rule::Scan(Check::secrets()),
            "injection" => Rule::Scan(Check::injection()),
            "deny" => {
                let words = get(h, "patterns")
                    .map(|y| self.strings(y, &join(path, "patterns")))
                    .unwrap_or_default();
                let regexes = get(h, "regex")
                    .map(|y| self.strings(y, &join(path, "regex")))
                    .unwrap_or_default();
                if words.is_empty() && regexes.is_empty() {
                    self.problem(path, "check `deny` needs `patterns` or `regex`");
                    return None;
                }
                match Check::deny(&words, &regexes) {
                    Ok(c) => Rule::Scan(c),
                    Err(e) => {
                        self.problem(&join(path, "regex"), e);
                        return None;
                    }
                }
            }
            "length" => {
                let Some(y) = get(h, "max_chars") else {
                    self.problem(&join(path, "max_chars"), "missing");
                    return None;
                };
                Rule::Length {
                    max_chars: self.uint(y, &join(path, "max_chars"), 1)?,
                }
            }
            "models" => {
                let allow = get(h, "allow")
                    .map(|y| self.strings(y, &join(path, "allow")))
                    .unwrap_or_default();
                let deny = get(h, "deny")
                    .map(|y| self.strings(y, &join(path, "deny")))
                    .unwrap_or_default();
                if allow.is_empty() && deny.is_empty() {
                    self.problem(path, "check `models` needs `allow` or `deny`");
                    return None;
                }
                Rule::Models { allow, deny }
            }
            "json_schema" => {
                let sp = join(path, "schema");
                let Some(y) = get(h, "schema") else {
                    self.problem(&sp, "missing");
                    return None;
                };
                let schema = match to_json(y) {
                    Ok(v) => v,
                    Err(e) => {
                        self.problem(&sp, e);
                        return None;
                    }
                };
                match jsonschema::validator_for(&schema) {
                    Ok(v) => Rule::Schema(Box::new(v)),
                    Err(e) => {
                        self.problem(&sp, format_args!("not a valid JSON schema: {e}"));
                        return None;
                    }
                }
            }
            "webhook" => Rule::Webhook(Box::new(self.webhook(h, path, origins)?)),
            other => {
                self.problem(
                    &join(path, "check"),
                    format_args!(
                        "unknown check {other:?} (one of: pii, secrets, injection, deny, length, models, json_schema, webhook)"
                    ),
                );
                return None;
            }
        })
    }

    fn webhook(&mut self, h: &Hash, path: &str, origins: &mut Vec<Origin>) -> Option<Webhook> {
        let up = join(path, "url");
        let Some(url) = get(h, "url") else {
            self.problem(&up, "missing");
            return None;
        };
        let url = self.string(url, &up)?;
        let timeout = self.millis(h, "timeout_ms", path, Duration::from_millis(200));
        let fail_open = match get(h, "on_error") {
            None => false,
            Some(y) => {
                let ep = join(path, "on_error");
                match self.string(y, &ep).as_deref() {
                    Some("allow") => true,
                    Some("block") => false,
                    Some(other) => {
                        self.problem(
                            &ep,
                            format_args!("expected `allow` or `block`, found {other:?}"),
                        );
                        false
                    }
                    None => false,
                }
            }
        };
        let (origin, base_path) =
            self.origin(&url, &up, None, 16, Duration::from_secs(60), origins)?;
        let vendor = crate::providers::family::find("openai")?;
        let provider = Provider {
            name: format!("guardrail {}", path.trim_start_matches("guardrails.")),
            protocol: vendor.protocol,
            vendor,
            origin,
            base_path: String::new(),
            api_key: None,
            headers: Vec::new(),
            timeouts: Timeouts {
                connect: timeout,
                first_byte: timeout,
                total: timeout,
            },
            api_version: None,
            default_max_tokens: 0,
            region: None,
            project: None,
            aws: None,
            token: None,
        };
        let path = if base_path.is_empty() {
            "/".to_owned()
        } else {
            base_path
        };
        Some(Webhook {
            provider,
            path,
            timeout,
            fail_open,
        })
    }

    /// A string or a list of strings.
    pub(super) fn strings(&mut self, y: &Yaml, path: &str) -> Vec<String> {
        match y {
            Yaml::Array(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, v)| self.string(v, &format!("{path}[{i}]")))
                .collect(),
            Yaml::String(_) => self.string(y, path).into_iter().collect(),
            other => {
                self.problem(
                    path,
                    format_args!("expected a list of strings, found {}", type_name(other)),
                );
                Vec::new()
            }
        }
    }
}

/// A YAML value as JSON (a schema written in the config).
fn to_json(y: &Yaml) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => {
            let f: f64 = r.parse().map_err(|_| format!("{r:?} is not a number"))?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("{r:?} is not a finite number"))?
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let k = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => {
                        return Err(format!("keys must be strings, found {}", type_name(other)));
                    }
                };
                m.insert(k, to_json(v)?);
            }
            Value::Object(m)
        }
        other => return Err(format!("cannot be JSON: {}", type_name(other))),
    })
}
