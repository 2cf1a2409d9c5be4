//! Reading request bodies and query strings strictly: an unknown field is refused (a typo must
//! not pass silently), and each field is checked for type and range where it is read.
//!
//! Getters return `None` for an absent field, so an update leaves it alone; a JSON `null`
//! clears a nullable field (or empties a list), and a value sets it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::failure::Failure;
use crate::store::time::parse_duration;
use crate::store::{CacheSetting, Limits};

/// The most guardrail policy names one key or team may list.
pub(super) const MAX_GUARDRAILS: usize = 32;
/// The longest guardrail policy name, in bytes.
pub(super) const MAX_GUARDRAIL_LEN: usize = 64;

/// The limit fields keys and teams share (LiteLLM's names).
pub(super) const LIMIT_FIELDS: [&str; 9] = [
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
    "model_max_budget",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object body whose field names have been checked.
pub(super) struct Body {
    map: Map<String, Value>,
}

impl Body {
    /// An empty body reads as `{}`, so a missing required field is named.
    pub fn parse(bytes: &[u8], endpoint: &str, allowed: &[&str]) -> Result<Body, Failure> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body { map: Map::new() });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            let message = format!("the body of {endpoint} is not valid JSON: {e}");
            Failure::invalid("invalid_json", None, message)
        })?;
        let Value::Object(map) = value else {
            let message = format!(
                "the body of {endpoint} must be a JSON object, not {}",
                type_name(&value)
            );
            return Err(Failure::invalid("invalid_json", None, message));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let message = format!(
                "unknown field {unknown:?} in {endpoint}; its fields are: {}",
                allowed.join(", ")
            );
            return Err(Failure::invalid("unknown_field", Some(unknown), message));
        }
        Ok(Body { map })
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The field as given, for a caller with its own rules.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// A non-empty string, or `null`.
    pub fn text(&self, name: &str) -> Result<Option<Option<String>>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.is_empty() => {
                Err(Failure::field(name, format!("{name} must not be empty")))
            }
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(v) => Err(Failure::field(
                name,
                format!("{name} must be a string or null, not {}", type_name(v)),
            )),
        }
    }

    /// A field that must be present and a non-empty string.
    pub fn required(&self, name: &str) -> Result<String, Failure> {
        self.text(name)?
            .flatten()
            .ok_or_else(|| Failure::required(name))
    }

    pub fn flag(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Failure::field(
                name,
                format!("{name} must be true or false, not {}", type_name(v)),
            )),
        }
    }

    /// A list of strings; `null` is the empty list.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, Failure> {
        let items = match self.get(name) {
            None => return Ok(None),
            Some(Value::Null) => return Ok(Some(Vec::new())),
            Some(Value::Array(items)) => items,
            Some(v) => {
                let message = format!("{name} must be a list of strings, not {}", type_name(v));
                return Err(Failure::field(name, message));
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) if !out.contains(s) => out.push(s.clone()),
                Value::String(_) => {}
                v => {
                    let message = format!("{name}[{i}] must be a string, not {}", type_name(v));
                    return Err(Failure::field(name, message));
                }
            }
        }
        Ok(Some(out))
    }

    /// A list of model aliases the gateway serves.
    pub fn models(&self, name: &str, aliases: &[String]) -> Result<Option<Vec<String>>, Failure> {
        let models = self.strings(name)?;
        for m in models.iter().flatten() {
            served(name, m, aliases)?;
        }
        Ok(models)
    }

    /// A list of guardrail policy names; `null` is the empty list. Only their form is checked:
    /// which policies exist is the request path's business, as the config may change.
    pub fn guardrails(&self, name: &str) -> Result<Option<Vec<String>>, Failure> {
        let names = self.strings(name)?;
        for (i, g) in names.iter().flatten().enumerate() {
            policy_name(name, i, g)?;
        }
        if let Some(names) = &names
            && names.len() > MAX_GUARDRAILS
        {
            let message = format!(
                "{name} lists {} policies; at most {MAX_GUARDRAILS} are allowed",
                names.len()
            );
            return Err(Failure::field(name, message));
        }
        Ok(names)
    }

    /// A key's cache setting (`store::CacheSetting`): `null`, `true`, `false` or an object.
    pub fn cache(&self, name: &str) -> Result<Option<CacheSetting>, Failure> {
        self.get(name)
            .map(|v| CacheSetting::from_json(v).map_err(|m| Failure::field(name, m)))
            .transpose()
    }

    /// A JSON object; `null` is the empty object.
    pub fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Map::new())),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(v) => Err(Failure::field(
                name,
                format!("{name} must be an object, not {}", type_name(v)),
            )),
        }
    }

    /// A duration ("30s", "15m", "12h", "7d") in seconds, or `null`.
    pub fn duration(&self, name: &str) -> Result<Option<Option<i64>>, Failure> {
        Ok(match self.duration_text(name)? {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => Some(parse_duration(&text)),
        })
    }

    /// A duration kept as written, checked to parse.
    fn duration_text(&self, name: &str) -> Result<Option<Option<String>>, Failure> {
        let given = match self.get(name) {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => return self.text(name),
            Some(v) => return Err(bad_duration(name, &v.to_string())),
        };
        match parse_duration(given) {
            Some(_) => Ok(Some(Some(given.trim().to_owned()))),
            None => Err(bad_duration(name, &format!("{given:?}"))),
        }
    }

    fn count(&self, name: &str) -> Result<Option<Option<u64>>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => count(name, v).map(|n| Some(Some(n))),
        }
    }

    fn amount(&self, name: &str) -> Result<Option<Option<f64>>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => amount(name, v).map(|n| Some(Some(n))),
        }
    }

    /// A map from served model alias to a value read by `each`; `null` is the empty map.
    fn per_model<T>(
        &self,
        name: &str,
        aliases: &[String],
        each: fn(&str, &Value) -> Result<T, Failure>,
    ) -> Result<Option<BTreeMap<String, T>>, Failure> {
        let map = match self.get(name) {
            None => return Ok(None),
            Some(Value::Null) => return Ok(Some(BTreeMap::new())),
            Some(Value::Object(m)) => m,
            Some(v) => {
                let message = format!(
                    "{name} must be an object of model alias to number, not {}",
                    type_name(v)
                );
                return Err(Failure::field(name, message));
            }
        };
        let mut out = BTreeMap::new();
        for (model, v) in map {
            served(name, model, aliases)?;
            out.insert(
                model.clone(),
                each(&format!("{name}.{model}"), v).map_err(|mut f| {
                    f.param = Some(name.to_owned());
                    f
                })?,
            );
        }
        Ok(Some(out))
    }

    /// Applies the limit fields present in the body to `limits`.
    pub fn apply_limits(&self, limits: &mut Limits, aliases: &[String]) -> Result<(), Failure> {
        if let Some(v) = self.amount("max_budget")? {
            limits.max_budget = v;
        }
        if let Some(v) = self.amount("soft_budget")? {
            limits.soft_budget = v;
        }
        if let Some(v) = self.duration_text("budget_duration")? {
            limits.budget_duration = v;
        }
        if let Some(v) = self.count("rpm_limit")? {
            limits.rpm_limit = v;
        }
        if let Some(v) = self.count("tpm_limit")? {
            limits.tpm_limit = v;
        }
        if let Some(v) = self.count("max_parallel_requests")? {
            limits.max_parallel_requests = v;
        }
        if let Some(v) = self.per_model("model_rpm_limit", aliases, count)? {
            limits.model_rpm_limit = v;
        }
        if let Some(v) = self.per_model("model_tpm_limit", aliases, count)? {
            limits.model_tpm_limit = v;
        }
        if let Some(v) = self.per_model("model_max_budget", aliases, amount)? {
            limits.model_max_budget = v;
        }
        Ok(())
    }
}

fn bad_duration(name: &str, given: &str) -> Failure {
    let message = format!(
        "{name} must be a duration such as \"30s\", \"15m\", \"12h\", \"7d\" or \"1mo\" (30 days), not {given}"
    );
    Failure::field(name, message)
}

fn count(name: &str, v: &Value) -> Result<u64, Failure> {
    v.as_u64().ok_or_else(|| {
        let what = if v.is_number() {
            v.to_string()
        } else {
            type_name(v).to_owned()
        };
        Failure::field(
            name,
            format!("{name} must be a whole number of 0 or more, not {what}"),
        )
    })
}

fn amount(name: &str, v: &Value) -> Result<f64, Failure> {
    match v.as_f64() {
        Some(n) if n >= 0.0 => Ok(n),
        Some(_) => Err(Failure::field(
            name,
            format!("{name} must not be negative, not {v}"),
        )),
        None => Err(Failure::field(
            name,
            format!("{name} must be a number, not {}", type_name(v)),
        )),
    }
}

/// Letters, digits, `-`, `_` and `.`; 1 to [`MAX_GUARDRAIL_LEN`] bytes.
fn policy_name(name: &str, i: usize, given: &str) -> Result<(), Failure> {
    let why = if given.is_empty() {
        "must not be empty"
    } else if given.len() > MAX_GUARDRAIL_LEN {
        "is longer than 64 bytes"
    } else if !given
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "may hold only ASCII letters, digits, '-', '_' and '.'"
    } else {
        return Ok(());
    };
    let shown: String = given.chars().take(MAX_GUARDRAIL_LEN).collect();
    let message = format!("{name}[{i}] {shown:?} {why}");
    Err(Failure::field(name, message))
}

fn served(name: &str, model: &str, aliases: &[String]) -> Result<(), Failure> {
    if aliases.iter().any(|a| a == model) {
        return Ok(());
    }
    let message = format!(
        "{name} names model {model:?}, which this gateway does not serve; it serves: {}",
        aliases.join(", ")
    );
    Err(Failure::invalid("unknown_model", Some(name), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Body {
        Body::parse(json.as_bytes(), "/t", &["a", "b"]).unwrap()
    }

    #[test]
    fn bodies_must_be_json_objects_with_known_fields() {
        let err = |raw: &str| Body::parse(raw.as_bytes(), "/t", &["a"]).err().unwrap();
        assert_eq!(err("{").code, "invalid_json");
        assert_eq!(err("[1]").code, "invalid_json");
        assert!(
            err("[1]")
                .message
                .contains("must be a JSON object, not an array")
        );
        let typo = err(r#"{"a": 1, "aa": 2}"#);
        assert_eq!(
            (typo.code, typo.param.as_deref()),
            ("unknown_field", Some("aa"))
        );
        assert!(typo.message.contains("\"aa\"") && typo.message.contains("fields are: a"));
        assert!(!Body::parse(b"  ", "/t", &[]).unwrap().has("a"));
    }

    #[test]
    fn absent_null_and_value_are_three_things() {
        assert_eq!(body("{}").text("a").unwrap(), None);
        assert_eq!(body(r#"{"a": null}"#).text("a").unwrap(), Some(None));
        assert_eq!(
            body(r#"{"a": "x"}"#).text("a").unwrap(),
            Some(Some("x".into()))
        );
        assert_eq!(
            body(r#"{"a": ""}"#).text("a").unwrap_err().code,
            "invalid_field"
        );
        assert_eq!(
            body(r#"{"a": 3}"#).text("a").unwrap_err().param.as_deref(),
            Some("a")
        );
        assert_eq!(body(r#"{"a": null}"#).strings("a").unwrap(), Some(vec![]));
        assert_eq!(
            body(r#"{"a": ["x", "y", "x"]}"#).strings("a").unwrap(),
            Some(vec!["x".into(), "y".into()])
        );
        assert!(
            body(r#"{"a": ["x", 1]}"#)
                .strings("a")
                .unwrap_err()
                .message
                .contains("a[1]")
        );
        assert_eq!(
            body(r#"{"a": null}"#).flag("a").unwrap_err().code,
            "invalid_field"
        );
        assert_eq!(
            body(r#"{"a": "1h"}"#).duration("a").unwrap(),
            Some(Some(3600))
        );
        assert_eq!(body(r#"{"a": null}"#).duration("a").unwrap(), Some(None));
        assert_eq!(
            body(r#"{"a": "1y"}"#).duration("a").unwrap_err().code,
            "invalid_field"
        );
        assert_eq!(
            body(r#"{"a": 5}"#).duration("a").unwrap_err().code,
            "invalid_field"
        );
    }

    #[test]
    fn guardrail_names_are_checked_for_form_and_count() {
        let read = |json: &str| {
            Body::parse(json.as_bytes(), "/t", &["guardrails"])
                .unwrap()
                .guardrails("guardrails")
        };
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"guardrails": null}"#).unwrap(), Some(vec![]));
        assert_eq!(
            read(r#"{"guardrails": ["pii", "v1.2_x-Y", "pii"]}"#).unwrap(),
            Some(vec!["pii".into(), "v1.2_x-Y".into()]),
            "duplicates go"
        );
        let long = "a".repeat(MAX_GUARDRAIL_LEN);
        assert!(read(&format!(r#"{{"guardrails": ["{long}"]}}"#)).is_ok());
        let err = |json: &str| {
            let f = read(json).unwrap_err();
            assert_eq!(
                (f.code, f.param.as_deref()),
                ("invalid_field", Some("guardrails"))
            );
            f.message
        };
        assert_eq!(
            err(r#"{"guardrails": ["ok", ""]}"#),
            "guardrails[1] \"\" must not be empty"
        );
        assert!(err(&format!(r#"{{"guardrails": ["{long}a"]}}"#)).contains("longer than 64"));
        for bad in ["a b", "pii/x", "caf\\u00e9", "a\\n"] {
            let m = err(&format!(r#"{{"guardrails": ["{bad}"]}}"#));
            assert!(m.contains("only ASCII letters"), "{m}");
        }
        assert!(err(r#"{"guardrails": "pii"}"#).contains("list of strings"));
        assert!(err(r#"{"guardrails": [1]}"#).contains("guardrails[0]"));
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("\"g{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(read(&format!(r#"{{"guardrails": [{}]}}"#, names(32))).is_ok());
        assert!(err(&format!(r#"{{"guardrails": [{}]}}"#, names(33))).contains("at most 32"),);
        // Counted after duplicates go.
        let dup = format!("{},\"g0\"", names(32));
        assert!(read(&format!(r#"{{"guardrails": [{dup}]}}"#)).is_ok());
    }

    #[test]
    fn the_cache_field_is_read_by_the_store_type() {
        let read = |json: &str| {
            Body::parse(json.as_bytes(), "/t", &["cache"])
                .unwrap()
                .cache("cache")
        };
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(
            read(r#"{"cache": null}"#).unwrap(),
            Some(CacheSetting::Follow)
        );
        assert_eq!(
            read(r#"{"cache": false}"#).unwrap(),
            Some(CacheSetting::Off)
        );
        let f = read(r#"{"cache": {"scope": "shared"}}"#).unwrap_err();
        assert_eq!(
            (f.code, f.param.as_deref()),
            ("invalid_field", Some("cache"))
        );
        assert!(f.message.contains("per alias"), "{}", f.message);
    }

    #[test]
    fn limits_are_checked_and_applied() {
        let aliases = ["gpt".to_owned()];
        let mut l = Limits::default();
        let b = Body::parse(
            br#"{"rpm_limit": 5, "max_budget": 2.5, "budget_duration": "30d",
                 "model_tpm_limit": {"gpt": 100}, "soft_budget": null}"#,
            "/t",
            &LIMIT_FIELDS,
        )
        .unwrap();
        b.apply_limits(&mut l, &aliases).unwrap();
        assert_eq!(l.rpm_limit, Some(5));
        assert_eq!(l.max_budget, Some(2.5));
        assert_eq!(l.budget_duration.as_deref(), Some("30d"));
        assert_eq!(l.model_tpm_limit.get("gpt"), Some(&100));
        let bad = |json: &str| {
            let b = Body::parse(json.as_bytes(), "/t", &LIMIT_FIELDS).unwrap();
            b.apply_limits(&mut Limits::default(), &aliases)
                .unwrap_err()
        };
        assert_eq!(
            bad(r#"{"rpm_limit": -1}"#).param.as_deref(),
            Some("rpm_limit")
        );
        assert_eq!(bad(r#"{"tpm_limit": 1.5}"#).code, "invalid_field");
        assert_eq!(bad(r#"{"max_budget": -0.5}"#).code, "invalid_field");
        assert_eq!(
            bad(r#"{"budget_duration": "monthly"}"#).code,
            "invalid_field"
        );
        assert_eq!(
            bad(r#"{"model_rpm_limit": {"nope": 1}}"#).code,
            "unknown_model"
        );
        let f = bad(r#"{"model_max_budget": {"gpt": "x"}}"#);
        assert_eq!(
            (f.code, f.param.as_deref()),
            ("invalid_field", Some("model_max_budget"))
        );
    }
}
