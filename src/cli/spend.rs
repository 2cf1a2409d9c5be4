//! How `shardgate spend logs` and `shardgate spend report` print an answer without `--json` or
//! `--csv`: one table row per request or per group. Amounts are USD to at most nine decimals
//! (a sum of float costs prints as the amount it is, not as `0.30000000000000004`).

use std::fmt::Write as _;

use serde_json::Value;

use super::table::{Table, cell};

/// The rows `/spend/logs` answers when not told a limit.
pub const DEFAULT_LIMIT: u64 = 100;

pub const LOG_COLUMNS: &[&str] = &[
    "TIME",
    "REQUEST",
    "KEY",
    "TEAM",
    "MODEL",
    "PROVIDER",
    "TOKENS IN",
    "TOKENS OUT",
    "SPEND",
    "STATUS",
];

pub const REPORT_COLUMNS: &[&str] = &[
    "GROUP",
    "REQUESTS",
    "TOKENS IN",
    "TOKENS OUT",
    "SPEND",
    "UNPRICED",
];

fn rows(body: &Value) -> &[Value] {
    body.as_array().map_or(&[], Vec::as_slice)
}

/// A USD amount; `-` for an unknown one.
fn money(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(x) => {
            let text = format!("{x:.9}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            match text {
                "-0" => "0".to_string(),
                t => t.to_string(),
            }
        }
        None => cell(v),
    }
}

/// The requests of `/spend/logs`; `limit` is the page size asked for, so a full page says
/// that older requests may be left out.
pub fn logs(body: &Value, limit: u64) -> String {
    let rows = rows(body);
    let mut t = Table::new(LOG_COLUMNS);
    for r in rows {
        t.push(vec![
            cell(r.get("startTime")),
            cell(r.get("request_id")),
            cell(r.get("api_key")),
            cell(r.get("team_id")),
            cell(r.get("model")),
            cell(r.get("custom_llm_provider")),
            cell(r.get("prompt_tokens")),
            cell(r.get("completion_tokens")),
            money(r.get("spend")),
            cell(r.get("status")),
        ]);
    }
    let mut out = t.render();
    if rows.len() as u64 >= limit {
        let _ = writeln!(
            out,
            "(the newest {} requests; --limit N shows more)",
            rows.len()
        );
    }
    out
}

/// The groups of `/global/spend/report`.
pub fn report(body: &Value) -> String {
    let mut t = Table::new(REPORT_COLUMNS);
    for g in rows(body) {
        t.push(vec![
            cell(g.get("group")),
            cell(g.get("requests")),
            cell(g.get("prompt_tokens")),
            cell(g.get("completion_tokens")),
            money(g.get("spend")),
            cell(g.get("unpriced_requests")),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::args::{self, Usage};
    use crate::cli::client::Method;
    use crate::cli::request;

    fn split(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    /// The target a line requests.
    fn target(line: &str) -> String {
        let r = request::build(&args::parse(&split(line)).unwrap());
        assert_eq!((r.method, r.body), (Method::Get, None), "{line}");
        r.target
    }

    fn problem(line: &str) -> String {
        match args::parse(&split(line)) {
            Err(Usage::Problem(_, why)) => why,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn logs_flags_become_the_query() {
        assert_eq!(target("spend logs"), "/spend/logs");
        assert_eq!(
            target(
                "spend logs --key key_1 --team t&1 --user a@b --request r-1 --start 2025-12-01 \
                 --end 2025-12-02 --limit 5"
            ),
            "/spend/logs?api_key=key_1&end_date=2025-12-02&limit=5&request_id=r-1\
             &start_date=2025-12-01&team_id=t%261&user=a%40b"
        );
        assert_eq!(target("spend logs --csv"), "/spend/logs?format=csv");
        assert!(args::parse(&split("spend logs --csv")).unwrap().csv());
        assert!(!args::parse(&split("spend logs --json")).unwrap().csv());
    }

    #[test]
    fn report_needs_its_dates_and_a_known_group() {
        assert_eq!(
            target("spend report --start 2025-12-01 --end=2025-12-31 --by model --csv"),
            "/global/spend/report?end_date=2025-12-31&format=csv&group_by=model&start_date=2025-12-01"
        );
        assert_eq!(
            problem("spend report --end 2025-12-01"),
            "spend report needs --start"
        );
        assert_eq!(
            problem("spend report --start 2025-12-01"),
            "spend report needs --end"
        );
        assert_eq!(
            problem("spend report --start 2025-12-01 --end 2025-12-02 --by week"),
            r#"--by takes one of key, team, model, provider, day, user, not "week""#
        );
    }

    #[test]
    fn bad_dates_switches_and_formats_are_usage_errors() {
        for bad in [
            "2025-02-30",
            "2025-12-1",
            "12/01/2025",
            "2025-12-01T00:00:00Z",
            "+025-12-01",
        ] {
            assert_eq!(
                problem(&format!("spend logs --start {bad}")),
                format!("--start takes a UTC date YYYY-MM-DD, not {bad:?}"),
            );
        }
        assert_eq!(problem("spend logs --csv=yes"), "--csv takes no value");
        assert_eq!(
            problem("spend logs --csv --json"),
            "--csv and --json ask for two formats: give one"
        );
        assert_eq!(
            problem("spend logs --by key"),
            "unknown flag --by for spend logs"
        );
        assert_eq!(problem("spend frob"), r#"unknown action "frob""#);
        assert_eq!(
            problem("spend logs extra"),
            r#"unexpected argument "extra""#
        );
    }

    #[test]
    fn usage_shows_switches_and_required_flags() {
        let help = |line: &str| match args::parse(&split(line)) {
            Err(Usage::Help(topic)) => topic.usage(),
            other => panic!("{line}: {other:?}"),
        };
        let noun = help("spend --help");
        assert!(
            noun.contains("  logs     list requests and their spend"),
            "{noun}"
        );
        assert!(noun.contains("  report   sum requests"), "{noun}");
        let report = help("spend report -h");
        assert!(
            report.starts_with("usage: shardgate spend report [FLAGS]"),
            "{report}"
        );
        assert!(
            report.contains("  --start YYYY-MM-DD   from this UTC day (required) [start_date]\n"),
            "{report}"
        );
        assert!(
            report.contains("  --csv                print the API's CSV as is [format=csv]\n"),
            "{report}"
        );
        assert!(crate::cli::command::TOP_USAGE.contains("shardgate spend ACTION"));
    }

    #[test]
    fn logs_table() {
        let body = json!([
            {"request_id": "r2", "startTime": "2025-12-02T15:04:05Z", "api_key": "key_1",
             "team_id": "t", "model": "gpt", "custom_llm_provider": "openai",
             "prompt_tokens": 100, "completion_tokens": 20, "spend": 0.30000000000000004,
             "status": 200},
            {"request_id": "r1", "startTime": "2025-12-01T00:00:00Z", "api_key": null,
             "model": "claude", "prompt_tokens": 7, "completion_tokens": 0, "spend": null,
             "status": 429},
        ]);
        assert_eq!(
            logs(&body, 100),
            "TIME                  REQUEST  KEY    TEAM  MODEL   PROVIDER  TOKENS IN  TOKENS OUT  SPEND  STATUS\n\
             2025-12-02T15:04:05Z  r2       key_1  t     gpt     openai    100        20          0.3    200\n\
             2025-12-01T00:00:00Z  r1       -      -     claude  -         7          0           -      429\n"
        );
        assert!(logs(&body, 2).ends_with("\n(the newest 2 requests; --limit N shows more)\n"));
        assert_eq!(logs(&json!([]), 100), LOG_COLUMNS.join("  ") + "\n");
    }

    #[test]
    fn report_table_and_amounts() {
        let body = json!([
            {"group": "key_1", "requests": 3, "prompt_tokens": 300, "completion_tokens": 60,
             "spend": 1.5, "unpriced_requests": 1},
            {"group": null, "requests": 1, "prompt_tokens": 1, "completion_tokens": 1,
             "spend": 0.0, "unpriced_requests": 0},
        ]);
        assert_eq!(
            report(&body),
            "GROUP  REQUESTS  TOKENS IN  TOKENS OUT  SPEND  UNPRICED\n\
             key_1  3         300        60          1.5    1\n\
             -      1         1          1           0      0\n"
        );
        assert_eq!(money(Some(&json!(0.00000025))), "0.00000025");
        assert_eq!(money(Some(&json!(12))), "12");
        assert_eq!(money(Some(&json!(-0.0))), "0");
        assert_eq!(money(None), "-");
    }
}
