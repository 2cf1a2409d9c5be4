//! The arguments of `shardgate keys|teams|spend ...`, parsed into an [`Invocation`] before anything
//! touches the network, so every usage error (an unknown action or flag, a bad number or
//! duration, a missing ID) is settled here and exits 2 with the usage of the level it concerns.
//!
//! A flag's value is the next argument or follows `=` (`--alias=x`); a next argument that
//! starts with `--` is taken for a forgotten value. The common flags may stand anywhere after the
//! noun, an action's own flags only after the action. Values are checked as far as the CLI can
//! know them; the API judges the rest.

use serde_json::{Map, Number, Value};

use super::command::{self, Action, Kind, Noun, Operands};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Common {
    pub admin_url: Option<String>,
    pub master_key: Option<String>,
    pub json: bool,
}

#[derive(Debug)]
pub struct Invocation {
    pub action: &'static Action,
    pub operands: Vec<String>,
    /// Request fields from the action's flags, named as the API names them.
    pub fields: Map<String, Value>,
    pub common: Common,
}

/// Which usage text an outcome shows.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    Top,
    Noun(Noun),
    Action(&'static Action),
}

impl Topic {
    pub fn usage(self) -> String {
        match self {
            Topic::Top => command::TOP_USAGE.to_string(),
            Topic::Noun(noun) => command::noun_usage(noun),
            Topic::Action(action) => command::action_usage(action),
        }
    }
}

/// Why parsing did not give an invocation: help was asked for, or the arguments are wrong.
#[derive(Debug)]
pub enum Usage {
    Help(Topic),
    Problem(Topic, String),
}

impl Invocation {
    /// `--csv`: the answer is CSV, printed as it comes.
    pub fn csv(&self) -> bool {
        self.fields.get("format").and_then(Value::as_str) == Some("csv")
    }
}

/// Parses `args`, whose first element is the noun (`keys`, `teams` or `spend`).
pub fn parse(args: &[String]) -> Result<Invocation, Usage> {
    let Some(noun) = args.first().and_then(|w| Noun::parse(w)) else {
        let why = "expected keys, teams or spend".into();
        return Err(Usage::Problem(Topic::Top, why));
    };
    let mut common = Common::default();
    let mut action: Option<&'static Action> = None;
    let mut operands = Vec::new();
    let mut fields = Map::new();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let topic = action.map_or(Topic::Noun(noun), Topic::Action);
        let problem = |message: String| Usage::Problem(topic, message);
        if arg == "-h" || arg == "--help" {
            return Err(Usage::Help(topic));
        }
        if !arg.starts_with('-') || arg == "-" {
            match action {
                Some(_) => operands.push(arg.clone()),
                None => match command::find(noun, arg) {
                    Some(a) => action = Some(a),
                    None => return Err(problem(format!("unknown action {arg:?}"))),
                },
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        match name {
            "--json" if inline.is_some() => return Err(problem("--json takes no value".into())),
            "--json" => common.json = true,
            "--admin-url" => {
                common.admin_url = Some(value(name, inline, &mut rest).map_err(problem)?)
            }
            "--master-key" => {
                common.master_key = Some(value(name, inline, &mut rest).map_err(problem)?)
            }
            _ => {
                let Some(flag) = action.and_then(|a| a.flag(name)) else {
                    return Err(problem(match action {
                        Some(a) => format!("unknown flag {name} for {} {}", noun.word(), a.name),
                        None if name.starts_with("--") => {
                            format!("unknown flag {name} (an action's flags follow the action)")
                        }
                        None => format!("unknown flag {name}"),
                    }));
                };
                let parsed = match flag.kind {
                    Kind::Switch(_) if inline.is_some() => {
                        return Err(problem(format!("{name} takes no value")));
                    }
                    Kind::Switch(fixed) => Value::String(fixed.to_string()),
                    kind => {
                        let raw = value(name, inline, &mut rest).map_err(problem)?;
                        typed(kind, &raw).map_err(|why| problem(format!("{name} {why}")))?
                    }
                };
                fields.insert(flag.field.to_string(), parsed);
            }
        }
    }
    let Some(action) = action else {
        return Err(Usage::Problem(
            Topic::Noun(noun),
            "expected an action".into(),
        ));
    };
    check_line(action, &operands, &fields)
        .map_err(|why| Usage::Problem(Topic::Action(action), why))?;
    let inv = Invocation {
        action,
        operands,
        fields,
        common,
    };
    if inv.csv() && inv.common.json {
        let why = "--csv and --json ask for two formats: give one".into();
        return Err(Usage::Problem(Topic::Action(action), why));
    }
    Ok(inv)
}

/// What only the whole line settles: the operand count, and that an update changes something.
fn check_line(
    action: &Action,
    operands: &[String],
    fields: &Map<String, Value>,
) -> Result<(), String> {
    let what = format!("{} {}", action.noun.word(), action.name);
    match (action.operands, operands.len()) {
        (Operands::None, 0) | (Operands::One, 1) => {}
        (Operands::Many, n) if n > 0 => {}
        (Operands::None, _) => return Err(format!("unexpected argument {:?}", operands[0])),
        (_, 0) => return Err(format!("{what} needs an ID")),
        (_, n) => return Err(format!("{what} takes one ID, not {n}")),
    }
    if action.needs_flag && fields.is_empty() {
        return Err("nothing to update: give at least one flag".into());
    }
    for name in action.required {
        let given = action
            .flag(name)
            .is_some_and(|f| fields.contains_key(f.field));
        if !given {
            return Err(format!("{what} needs {name}"));
        }
    }
    Ok(())
}

/// The value of flag `name`: after its `=`, else the next argument.
fn value<'a>(
    name: &str,
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<String, String> {
    if let Some(v) = inline {
        return Ok(v.to_string());
    }
    match rest.next() {
        Some(v) if !v.starts_with("--") => Ok(v.clone()),
        _ => Err(format!("{name} needs a value")),
    }
}

/// Checks a flag's value and gives it its JSON form; the error completes "`--flag` ...".
fn typed(kind: Kind, raw: &str) -> Result<Value, String> {
    match kind {
        Kind::Text => Ok(Value::String(raw.to_string())),
        Kind::List => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
        Kind::Object => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!("takes a JSON object, not {raw:?}")),
        },
        Kind::Cache => match raw {
            "follow" => Ok(Value::Null),
            "off" => Ok(Value::Bool(false)),
            "on" => Ok(Value::Bool(true)),
            _ => match serde_json::from_str::<Value>(raw) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(format!(
                    "takes follow, off, on or a JSON object, not {raw:?}"
                )),
            },
        },
        Kind::Count => match raw.parse::<u64>() {
            Ok(n) => Ok(Value::Number(n.into())),
            Err(_) => Err(format!("takes a non-negative integer, not {raw:?}")),
        },
        Kind::Amount => match raw
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
        {
            Some(x) => Ok(Number::from_f64(x).map_or(Value::Null, Value::Number)),
            None => Err(format!("takes a non-negative number, not {raw:?}")),
        },
        Kind::Date => match date(raw) {
            true => Ok(Value::String(raw.to_string())),
            false => Err(format!("takes a UTC date YYYY-MM-DD, not {raw:?}")),
        },
        Kind::Choice(words) => match words.contains(&raw) {
            true => Ok(Value::String(raw.to_string())),
            false => Err(format!("takes one of {}, not {raw:?}", words.join(", "))),
        },
        Kind::Switch(fixed) => Ok(Value::String(fixed.to_string())),
        Kind::Duration => {
            let unit = raw.trim_start_matches(|c: char| c.is_ascii_digit());
            let digits = raw.len() - unit.len();
            if digits > 0 && matches!(unit, "s" | "m" | "h" | "d" | "w" | "mo") {
                Ok(Value::String(raw.to_string()))
            } else {
                Err(format!(
                    "takes a duration such as 30s, 15m, 1h, 30d, 2w or 1mo, not {raw:?}"
                ))
            }
        }
    }
}

/// A real calendar date `YYYY-MM-DD` (the admin API's form).
fn date(raw: &str) -> bool {
    use crate::observe::time::{iso8601, parse_iso8601};
    raw.len() == 10
        && parse_iso8601(&format!("{raw}T00:00:00Z")).is_some_and(|ms| iso8601(ms).starts_with(raw))
}

#[cfg(test)]
mod tests;
