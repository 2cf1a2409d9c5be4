//! What an answer prints: a successful one as tables, `field: value` lines or a one-line
//! acknowledgement (by the action's [`Output`]), a failed one as the single stderr line
//! `<status> <code>: <message>`. Tolerant of fields the API leaves out: a missing value is `-`,
//! never a failure, since the answer has already been acted on.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::args::Invocation;
use super::command::{Noun, Output};
use super::spend;
use super::table::{self, Table, cell};
use super::timestamp;

pub const KEY_COLUMNS: &[&str] = &[
    "ID",
    "ALIAS",
    "KEY",
    "TEAM",
    "MODELS",
    "EXPIRES",
    "STATE",
    "SOURCE",
    "LAST USED",
];
pub const TEAM_COLUMNS: &[&str] = &["ID", "ALIAS", "MODELS", "STATE", "SPEND", "CREATED"];

/// The text for a successful answer; `now` is Unix seconds, for telling expired keys.
pub fn render(inv: &Invocation, body: &Value, now: i64) -> String {
    let noun = inv.action.noun;
    let mut out = String::new();
    match inv.action.output {
        Output::Secret | Output::Rotated => {
            match body.get("key").and_then(Value::as_str) {
                Some(secret) => {
                    let _ = write!(
                        out,
                        "Secret (shown only this once; store it now):\n\n    {secret}\n\n"
                    );
                }
                None => out.push_str("The answer holds no secret (see --json).\n\n"),
            }
            if inv.action.output == Output::Rotated {
                match inv.fields.get("grace_period").and_then(Value::as_str) {
                    Some(grace) => {
                        let _ = write!(out, "The old secret keeps working for {grace}.\n\n");
                    }
                    None => out.push_str("The old secret no longer works.\n\n"),
                }
            }
            out.push_str(&key_table(std::slice::from_ref(body), now));
        }
        Output::KeyTable => {
            let keys = list(body, "keys");
            out.push_str(&key_table(keys, now));
            if let Some(total) = body.get("total_count").and_then(Value::as_u64)
                && total > keys.len() as u64
            {
                let _ = writeln!(out, "({} of {total} keys shown)", keys.len());
            }
        }
        Output::KeyInfo => out.push_str(&lines(body.get("info").unwrap_or(body))),
        Output::Ack(verb) => {
            let _ = writeln!(out, "{verb} {} {}", noun.one(), inv.operands[0]);
        }
        Output::Deleted => {
            if noun == Noun::Teams {
                deleted(
                    &mut out,
                    body.get("deleted_teams"),
                    "team",
                    "team_id",
                    &inv.operands,
                );
                deleted(&mut out, body.get("deleted_keys"), "key", "key_id", &[]);
            } else {
                deleted(
                    &mut out,
                    body.get("deleted_keys"),
                    "key",
                    "key_id",
                    &inv.operands,
                );
            }
        }
        Output::TeamCreated => {
            let _ = writeln!(out, "created team {}\n", cell(body.get("team_id")));
            out.push_str(&team_table(std::slice::from_ref(body)));
        }
        Output::TeamTable => out.push_str(&team_table(match body {
            Value::Array(teams) => teams,
            _ => list(body, "teams"),
        })),
        Output::TeamInfo => {
            match body.get("team_info") {
                Some(info) => out.push_str(&lines(info)),
                None => out.push_str(&lines(&without(body, "keys"))),
            }
            match list(body, "keys") {
                [] => out.push_str("\nkeys: none\n"),
                keys => {
                    out.push_str("\nkeys:\n");
                    out.push_str(&key_table(keys, now));
                }
            }
        }
        Output::SpendLogs => {
            let limit = inv.fields.get("limit").and_then(Value::as_u64);
            out.push_str(&spend::logs(body, limit.unwrap_or(spend::DEFAULT_LIMIT)));
        }
        Output::SpendReport => out.push_str(&spend::report(body)),
    }
    out
}

/// The stderr line for an answer with a non-2xx status, from its `{"error": {...}}` body.
pub fn error_line(status: u16, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed
        .as_ref()
        .and_then(|v| v.get("error").or_else(|| v.get("detail")));
    let message = match error {
        Some(Value::String(s)) => Some(s.clone()),
        Some(e) => e.get("message").map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        None => None,
    };
    let label = error.and_then(|e| {
        let code = e
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| !c.bytes().all(|b| b.is_ascii_digit()));
        code.or_else(|| e.get("type").and_then(Value::as_str))
    });
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text
            .chars()
            .take(300)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        match text.trim() {
            "" => "the answer has no body".to_string(),
            t => t.to_string(),
        }
    });
    match label {
        Some(label) => format!("{status} {label}: {message}"),
        None => format!("{status}: {message}"),
    }
}

fn list<'a>(body: &'a Value, field: &str) -> &'a [Value] {
    body.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A key's row; an entry that is only a string is taken for its ID.
fn key_row(k: &Value, now: i64) -> Vec<String> {
    if k.is_string() {
        let mut row = vec!["-".to_string(); KEY_COLUMNS.len()];
        row[0] = cell(Some(k));
        return row;
    }
    let expires = k.get("expires").filter(|v| !v.is_null());
    let state = if k.get("blocked").and_then(Value::as_bool) == Some(true) {
        "blocked"
    } else if expires
        .and_then(timestamp::unix_seconds)
        .is_some_and(|t| t <= now)
    {
        "expired"
    } else {
        "active"
    };
    vec![
        cell(k.get("key_id").or_else(|| k.get("token"))),
        cell(k.get("key_alias")),
        cell(k.get("key_name")),
        cell(k.get("team_id")),
        table::models(k.get("models")),
        expires.map_or("never".to_string(), |e| cell(Some(e))),
        state.to_string(),
        cell(k.get("source")),
        cell(k.get("last_used_at")),
    ]
}

fn key_table(keys: &[Value], now: i64) -> String {
    let mut t = Table::new(KEY_COLUMNS);
    keys.iter().for_each(|k| t.push(key_row(k, now)));
    t.render()
}

fn team_table(teams: &[Value]) -> String {
    let mut t = Table::new(TEAM_COLUMNS);
    for team in teams {
        let blocked = team.get("blocked").and_then(Value::as_bool) == Some(true);
        t.push(vec![
            cell(team.get("team_id")),
            cell(team.get("team_alias")),
            table::models(team.get("models")),
            if blocked { "blocked" } else { "active" }.to_string(),
            cell(team.get("spend")),
            cell(team.get("created_at")),
        ]);
    }
    t.render()
}

/// An object as `field: value` lines, by field name (serde_json keeps objects sorted).
fn lines(obj: &Value) -> String {
    let Some(map) = obj.as_object() else {
        return format!("{}\n", cell(Some(obj)));
    };
    let mut out = String::new();
    for (field, v) in map {
        let value = match (field.as_str(), v) {
            ("models", v) => table::models(Some(v)),
            ("expires", Value::Null) => "never".to_string(),
            (_, v) => cell(Some(v)),
        };
        let _ = writeln!(out, "{field}: {value}");
    }
    out
}

fn without(body: &Value, field: &str) -> Value {
    let mut map: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    map.remove(field);
    Value::Object(map)
}

/// `deleted <what> <ID>` for each entry (an ID, or an object with `id_field`); when the
/// answer has no such list, the IDs asked for.
fn deleted(
    out: &mut String,
    entries: Option<&Value>,
    what: &str,
    id_field: &str,
    asked: &[String],
) {
    let ids: Vec<String> = match entries.and_then(Value::as_array) {
        Some(entries) => entries
            .iter()
            .map(|e| cell(e.get(id_field).or(Some(e))))
            .collect(),
        None => asked.to_vec(),
    };
    for id in ids {
        let _ = writeln!(out, "deleted {what} {id}");
    }
}

#[cfg(test)]
mod tests;
