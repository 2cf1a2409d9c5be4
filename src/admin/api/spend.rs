//! The spend endpoints, LiteLLM's shapes: `/spend/logs` (the ledger's raw rows, newest first)
//! and `/global/spend/report` (the daily rollups summed by a group), each as JSON or as CSV
//! (`format=csv`: a header row, RFC 4180 quoting, CRLF line ends).
//!
//! A report reads only the rollups, never the raw rows, so it costs the same however busy the
//! days were. Dates are UTC `YYYY-MM-DD`; an end date is inclusive. Nothing here writes.

use serde_json::{Map, Value, json};

use super::Reply;
use super::failure::Failure;
use super::query::Query;
use crate::observe::time::{iso8601, parse_iso8601};
use crate::store::{LedgerFilter, LedgerRow, SpendGroup, SpendTotal, Store};

/// A page of `/spend/logs` holds at most this many rows.
const MAX_LIMIT: u64 = 10_000;

const DAY_MS: i64 = 86_400_000;

const LOG_PARAMS: [&str; 10] = [
    "api_key",
    "key_id",
    "team_id",
    "user",
    "request_id",
    "start_date",
    "end_date",
    "limit",
    "page",
    "format",
];

/// The fields of a `/spend/logs` row, in CSV column order.
const LOG_FIELDS: [&str; 20] = [
    "request_id",
    "startTime",
    "api_key",
    "team_id",
    "end_user",
    "model",
    "model_group",
    "target",
    "custom_llm_provider",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "spend",
    "status",
    "latency_ms",
    "estimated",
];

fn log_values(r: &LedgerRow) -> [Value; 20] {
    [
        json!(r.request_id),
        json!(iso8601(r.ts_ms)),
        json!(r.key_id),
        json!(r.team_id),
        json!(r.end_user),
        json!(r.alias),
        json!(r.alias),
        json!(r.target),
        json!(r.provider),
        json!(r.upstream_model),
        json!(r.input),
        json!(r.output),
        json!(r.input.saturating_add(r.output)),
        json!(r.cache_read),
        json!(r.cache_write),
        json!(r.reasoning),
        json!(r.cost_usd),
        json!(r.status),
        json!(r.latency_ms),
        json!(r.estimated),
    ]
}

/// The fields of a `/global/spend/report` group, in CSV column order.
const REPORT_FIELDS: [&str; 10] = [
    "group",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "spend",
    "unpriced_requests",
    "errors",
];

fn report_values(t: &SpendTotal) -> [Value; 10] {
    [
        json!(t.group),
        json!(t.requests),
        json!(t.input),
        json!(t.output),
        json!(t.cache_read),
        json!(t.cache_write),
        json!(t.reasoning),
        json!(t.cost_usd),
        json!(t.unpriced),
        json!(t.errors),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Csv,
}

fn format(q: &Query) -> Result<Format, Failure> {
    match q.get("format") {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(Failure::field(
            "format",
            format!("format must be json or csv, not {other:?}"),
        )),
    }
}

/// A UTC date `YYYY-MM-DD` as its day number.
fn day(q: &Query, name: &str) -> Result<Option<i64>, Failure> {
    let Some(text) = q.get(name) else {
        return Ok(None);
    };
    let ms = (text.len() == 10)
        .then(|| parse_iso8601(&format!("{text}T00:00:00Z")))
        .flatten()
        // The parser takes a 31st of any month; a real date prints back as it was given.
        .filter(|&ms| iso8601(ms).starts_with(text));
    match ms {
        Some(ms) => Ok(Some(ms.div_euclid(DAY_MS))),
        None => Err(Failure::field(
            name,
            format!("{name} must be a UTC date YYYY-MM-DD, not {text:?}"),
        )),
    }
}

/// The inclusive day range of `start_date` and `end_date`.
fn days(q: &Query) -> Result<(Option<i64>, Option<i64>), Failure> {
    let (start, end) = (day(q, "start_date")?, day(q, "end_date")?);
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        let message = "end_date must not be before start_date".to_owned();
        return Err(Failure::field("end_date", message));
    }
    Ok((start, end))
}

/// The one key the query names, by `api_key` or `key_id`.
fn key(q: &Query) -> Result<Option<&str>, Failure> {
    match (q.get("api_key"), q.get("key_id")) {
        (Some(a), Some(k)) if a != k => Err(Failure::field(
            "key_id",
            "api_key and key_id name different keys; give one",
        )),
        (a, k) => Ok(a.or(k)),
    }
}

/// `GET /spend/logs`: raw rows, newest first, one page of `limit` (at most 10,000).
pub(super) fn logs(store: &Store, query: &str) -> Reply {
    let run = || {
        let q = Query::parse(query, "/spend/logs", &LOG_PARAMS)?;
        let fmt = format(&q)?;
        let (start, end) = days(&q)?;
        let filter = LedgerFilter {
            key_id: key(&q)?,
            team_id: q.get("team_id"),
            end_user: q.get("user"),
            request_id: q.get("request_id"),
            since_ms: start.map(|d| d * DAY_MS),
            until_ms: end.map(|d| (d + 1) * DAY_MS),
        };
        let limit = q.positive("limit", 100)?.min(MAX_LIMIT);
        let offset = (q.positive("page", 1)? - 1).saturating_mul(limit);
        let rows = store.reader().ledger_rows(&filter, offset, limit)?;
        Ok(answer(fmt, &LOG_FIELDS, rows.iter().map(log_values)))
    };
    run().unwrap_or_else(|f: Failure| f.reply())
}

/// `GET /global/spend/report`: the rollups of `start_date..=end_date` summed by `group_by`
/// (default `team`, as LiteLLM's), by spend largest first, or by day for `group_by=day`.
pub(super) fn report(store: &Store, query: &str) -> Reply {
    let run = || {
        let params = ["start_date", "end_date", "group_by", "format"];
        let q = Query::parse(query, "/global/spend/report", &params)?;
        let fmt = format(&q)?;
        let (start, end) = days(&q)?;
        let start = start.ok_or_else(|| Failure::required("start_date"))?;
        let end = end.ok_or_else(|| Failure::required("end_date"))?;
        let group = match q.get("group_by").unwrap_or("team") {
            "key" => SpendGroup::Key,
            "team" => SpendGroup::Team,
            "model" => SpendGroup::Model,
            "provider" => SpendGroup::Provider,
            "day" => SpendGroup::Day,
            "user" => SpendGroup::User,
            other => {
                let message = format!(
                    "group_by must be key, team, model, provider, day or user, not {other:?}"
                );
                return Err(Failure::field("group_by", message));
            }
        };
        let totals = store.reader().spend_report(group, start, end)?;
        Ok(answer(
            fmt,
            &REPORT_FIELDS,
            totals.iter().map(report_values),
        ))
    };
    run().unwrap_or_else(|f: Failure| f.reply())
}

/// A 200 reply: a JSON array of objects, or CSV with a header row.
fn answer<const N: usize>(
    fmt: Format,
    fields: &[&str; N],
    rows: impl Iterator<Item = [Value; N]>,
) -> Reply {
    let (body, content_type) = match fmt {
        Format::Json => {
            let objects: Vec<Value> = rows
                .map(|values| {
                    let pairs = fields.iter().map(|f| f.to_string()).zip(values);
                    Value::Object(pairs.collect::<Map<_, _>>())
                })
                .collect();
            let body = serde_json::to_vec(&objects).expect("JSON values serialize");
            (body, "application/json")
        }
        Format::Csv => {
            let mut text = csv_line(fields.iter().map(|f| f.to_string()));
            for values in rows {
                text.push_str(&csv_line(values.iter().map(csv_text)));
            }
            (text.into_bytes(), "text/csv; charset=utf-8")
        }
    };
    Reply {
        status: 200,
        body,
        content_type,
        changed: false,
    }
}

/// A value as CSV text: null is empty, a string is itself, anything else its JSON.
fn csv_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One CSV record (RFC 4180): a field holding a comma, quote, CR or LF is quoted, its quotes
/// doubled; CRLF ends the record.
fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let mut line = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&cell);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests;
