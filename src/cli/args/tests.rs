use serde_json::json;

use super::*;

fn parse_line(line: &str) -> Result<Invocation, Usage> {
    parse(
        &line
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
    )
}

fn ok(line: &str) -> Invocation {
    parse_line(line).unwrap_or_else(|u| panic!("{line}: {u:?}"))
}

/// The action name and fields of a parsed line.
fn fields(line: &str) -> (&'static str, Vec<String>, Value) {
    let inv = ok(line);
    (inv.action.name, inv.operands, Value::Object(inv.fields))
}

/// The problem message of a line that must not parse, and the usage topic it shows.
fn problem(line: &str) -> (String, String) {
    match parse_line(line) {
        Err(Usage::Problem(topic, why)) => (why, topic.usage()),
        other => panic!("{line}: expected a usage problem, got {other:?}"),
    }
}

#[test]
fn keys_create_takes_every_field_flag() {
    let line = "keys create --alias ci --team t1 --user u1 --models gpt-4o,claude --duration 30d \
                --metadata {\"env\":\"prod\"} --tags a,b --rpm 60 --tpm 100000 --max-parallel 4 \
                --max-budget 12.5 --budget-duration 1mo --guardrails pii,jailbreak --cache on";
    let expected = json!({
        "key_alias": "ci", "team_id": "t1", "user_id": "u1", "models": ["gpt-4o", "claude"],
        "duration": "30d", "metadata": {"env": "prod"}, "tags": ["a", "b"], "rpm_limit": 60,
        "tpm_limit": 100000, "max_parallel_requests": 4, "max_budget": 12.5,
        "budget_duration": "1mo", "guardrails": ["pii", "jailbreak"], "cache": true,
    });
    assert_eq!(fields(line), ("create", vec![], expected));
    assert_eq!(fields("keys create"), ("create", vec![], json!({})));
}

#[test]
fn cache_takes_a_mode_or_a_json_object() {
    let cache = |mode: &str| fields(&format!("keys update k1 --cache {mode}")).2["cache"].clone();
    assert_eq!(cache("follow"), json!(null));
    assert_eq!(cache("off"), json!(false));
    assert_eq!(cache("on"), json!(true));
    assert_eq!(
        cache(r#"{"ttl_s":60,"scope":"team"}"#),
        json!({"ttl_s": 60, "scope": "team"})
    );
    // `follow` sends null, which is a change: the update is not empty.
    assert!(
        fields("keys update k1 --cache follow")
            .2
            .get("cache")
            .is_some()
    );
    let (why, _) = problem("keys create --cache sometimes");
    assert_eq!(
        why,
        "--cache takes follow, off, on or a JSON object, not \"sometimes\""
    );
    assert!(
        problem("teams create --cache on")
            .0
            .contains("unknown flag --cache")
    );
}

#[test]
fn values_may_follow_an_equals_sign() {
    assert_eq!(
        fields("keys create --alias=a=b --rpm=5").2,
        json!({"key_alias": "a=b", "rpm_limit": 5})
    );
    assert_eq!(fields("keys create --alias=").2, json!({"key_alias": ""}));
}

#[test]
fn lists_drop_blanks() {
    assert_eq!(
        fields("keys create --models a,,b, --tags ,").2,
        json!({"models": ["a", "b"], "tags": []})
    );
}

#[test]
fn keys_list_info_block_unblock() {
    assert_eq!(fields("keys list"), ("list", vec![], json!({})));
    assert_eq!(
        fields("keys list --team t1"),
        ("list", vec![], json!({"team_id": "t1"}))
    );
    assert_eq!(
        fields("keys info key_ab12"),
        ("info", vec!["key_ab12".into()], json!({}))
    );
    assert_eq!(fields("keys block key_ab12").0, "block");
    assert_eq!(
        fields("keys unblock key_ab12").1,
        vec!["key_ab12".to_string()]
    );
}

#[test]
fn keys_rotate_update_delete() {
    assert_eq!(
        fields("keys rotate k1"),
        ("rotate", vec!["k1".into()], json!({}))
    );
    assert_eq!(
        fields("keys rotate k1 --grace 1h").2,
        json!({"grace_period": "1h"})
    );
    assert_eq!(
        fields("keys update k1 --rpm 0 --alias x"),
        (
            "update",
            vec!["k1".into()],
            json!({"rpm_limit": 0, "key_alias": "x"})
        )
    );
    assert_eq!(fields("keys delete k1 k2 k3").1, vec!["k1", "k2", "k3"]);
}

#[test]
fn teams_every_action() {
    let line = "teams create --id t1 --alias Search --models a --metadata {} --rpm 1 --tpm 2 \
                --max-parallel 3 --max-budget 4 --guardrails pii";
    let expected = json!({
        "team_id": "t1", "team_alias": "Search", "models": ["a"], "metadata": {}, "rpm_limit": 1,
        "tpm_limit": 2, "max_parallel_requests": 3, "max_budget": 4.0, "guardrails": ["pii"],
    });
    assert_eq!(fields(line), ("create", vec![], expected));
    assert_eq!(fields("teams list"), ("list", vec![], json!({})));
    assert_eq!(
        fields("teams info t1"),
        ("info", vec!["t1".into()], json!({}))
    );
    assert_eq!(
        fields("teams update t1 --max-budget 0.5").2,
        json!({"max_budget": 0.5})
    );
    assert_eq!(fields("teams delete t1 t2").1, vec!["t1", "t2"]);
}

#[test]
fn common_flags_stand_anywhere_after_the_noun() {
    let inv = ok("keys --json list --admin-url http://h:1 --team t --master-key=sk-m");
    let common = Common {
        admin_url: Some("http://h:1".into()),
        master_key: Some("sk-m".into()),
        json: true,
    };
    assert_eq!(inv.common, common);
    assert_eq!(ok("teams list").common, Common::default());
}

#[test]
fn bad_numbers_are_usage_errors() {
    for (line, why) in [
        (
            "keys create --rpm ten",
            r#"--rpm takes a non-negative integer, not "ten""#,
        ),
        (
            "keys create --tpm -5",
            r#"--tpm takes a non-negative integer, not "-5""#,
        ),
        (
            "keys create --max-parallel 1.5",
            r#"--max-parallel takes a non-negative integer, not "1.5""#,
        ),
        (
            "keys update k --max-budget -1",
            r#"--max-budget takes a non-negative number, not "-1""#,
        ),
        (
            "teams create --max-budget NaN",
            r#"--max-budget takes a non-negative number, not "NaN""#,
        ),
        (
            "teams update t --rpm 99999999999999999999",
            r#"--rpm takes a non-negative integer, not "99999999999999999999""#,
        ),
    ] {
        assert_eq!(problem(line).0, why, "{line}");
    }
}

#[test]
fn bad_durations_and_json_are_usage_errors() {
    for (line, flag) in [
        ("keys create --duration 30", "--duration"),
        ("keys create --duration d", "--duration"),
        ("keys create --budget-duration 1y", "--budget-duration"),
        ("keys rotate k --grace soon", "--grace"),
    ] {
        let why = problem(line).0;
        assert!(
            why.starts_with(&format!("{flag} takes a duration such as 30s")),
            "{why}"
        );
    }
    assert_eq!(
        problem("keys create --metadata [1]").0,
        r#"--metadata takes a JSON object, not "[1]""#
    );
    assert_eq!(
        problem("teams create --metadata {").0,
        r#"--metadata takes a JSON object, not "{""#
    );
}

#[test]
fn unknown_flags_are_named() {
    let (why, usage) = problem("keys create --colour red");
    assert_eq!(why, "unknown flag --colour for keys create");
    assert!(usage.starts_with("usage: shardgate keys create"));
    assert_eq!(
        problem("teams create --user u").0,
        "unknown flag --user for teams create"
    );
    assert_eq!(
        problem("teams update t --id x").0,
        "unknown flag --id for teams update"
    );
    assert_eq!(
        problem("keys info k --team t").0,
        "unknown flag --team for keys info"
    );
    assert_eq!(problem("keys list -v").0, "unknown flag -v for keys list");
    assert_eq!(
        problem("keys --alias a create").0,
        "unknown flag --alias (an action's flags follow the action)"
    );
    assert_eq!(problem("keys list --json=yes").0, "--json takes no value");
}

#[test]
fn missing_values_are_usage_errors() {
    assert_eq!(problem("keys create --alias").0, "--alias needs a value");
    assert_eq!(
        problem("keys create --alias --json").0,
        "--alias needs a value"
    );
    assert_eq!(
        problem("keys list --admin-url").0,
        "--admin-url needs a value"
    );
}

#[test]
fn operands_are_counted() {
    assert_eq!(problem("keys info").0, "keys info needs an ID");
    assert_eq!(
        problem("keys block a b").0,
        "keys block takes one ID, not 2"
    );
    assert_eq!(problem("keys delete").0, "keys delete needs an ID");
    assert_eq!(problem("teams delete --json").0, "teams delete needs an ID");
    assert_eq!(
        problem("keys list extra").0,
        r#"unexpected argument "extra""#
    );
    assert_eq!(problem("teams create t1").0, r#"unexpected argument "t1""#);
}

#[test]
fn an_update_must_change_something() {
    assert_eq!(
        problem("keys update k1").0,
        "nothing to update: give at least one flag"
    );
    assert_eq!(
        problem("teams update t1 --json").0,
        "nothing to update: give at least one flag"
    );
}

#[test]
fn unknown_or_missing_actions_show_the_noun_usage() {
    let (why, usage) = problem("keys frob");
    assert_eq!(why, r#"unknown action "frob""#);
    assert!(usage.starts_with("usage: shardgate keys ACTION"));
    let (why, usage) = problem("teams --json");
    assert_eq!(why, "expected an action");
    assert!(usage.starts_with("usage: shardgate teams ACTION"));
    assert_eq!(problem("teams block t").0, r#"unknown action "block""#);
    assert_eq!(problem("users list").0, "expected keys, teams or spend");
}

#[test]
fn help_at_every_level() {
    let help = |line: &str| match parse_line(line) {
        Err(Usage::Help(topic)) => topic.usage(),
        other => panic!("{line}: {other:?}"),
    };
    assert!(help("keys --help").starts_with("usage: shardgate keys ACTION"));
    assert!(help("teams -h").starts_with("usage: shardgate teams ACTION"));
    assert!(help("keys create --help").starts_with("usage: shardgate keys create [FLAGS]"));
    assert!(
        help("keys rotate k --grace 1h --help")
            .starts_with("usage: shardgate keys rotate ID [FLAGS]")
    );
    assert!(help("teams delete -h").starts_with("usage: shardgate teams delete ID... [FLAGS]"));
    // Help wins over a problem later on the line.
    assert!(help("keys create --help --rpm x").contains("--rpm N"));
}
