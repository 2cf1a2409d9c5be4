use serde_json::json;

use super::*;
use crate::cli::args;

/// 2024-06-01T00:00:00Z
const NOW: i64 = 1_717_200_000;

fn render_for(line: &str, body: Value) -> String {
    let args: Vec<String> = line.split(' ').map(String::from).collect();
    render(&args::parse(&args).unwrap(), &body, NOW)
}

fn key(id: &str) -> Value {
    json!({
        "key_id": id, "key_alias": "ci", "key_name": "sk-...ab12", "team_id": "t1",
        "models": ["gpt-4o", "claude"], "expires": null, "blocked": false, "source": "store",
        "last_used_at": "2024-05-31T10:00:00Z",
    })
}

#[test]
fn key_list_rows_show_state_models_expiry_and_source() {
    let body = json!({"keys": [
        key("key_1"),
        {"key_id": "key_2", "key_name": "sk-...cd34", "models": [], "expires": "2024-05-01T00:00:00Z",
         "source": "config"},
        {"key_id": "key_3", "models": null, "blocked": true, "expires": "2030-01-01T00:00:00+00:00"},
        {"key_id": "key_4", "expires": "2030-01-01T00:00:00Z"},
    ], "total_count": 4});
    assert_eq!(
        render_for("keys list", body),
        "ID     ALIAS  KEY         TEAM  MODELS         EXPIRES                    STATE    SOURCE  LAST USED\n\
         key_1  ci     sk-...ab12  t1    gpt-4o,claude  never                      active   store   2024-05-31T10:00:00Z\n\
         key_2  -      sk-...cd34  -     all            2024-05-01T00:00:00Z       expired  config  -\n\
         key_3  -      -           -     all            2030-01-01T00:00:00+00:00  blocked  -       -\n\
         key_4  -      -           -     all            2030-01-01T00:00:00Z       active   -       -\n"
    );
}

#[test]
fn a_partial_key_list_says_so_and_an_empty_one_is_a_header() {
    let shown = render_for(
        "keys list",
        json!({"keys": [key("key_1")], "total_count": 1500}),
    );
    assert!(shown.ends_with("\n(1 of 1500 keys shown)\n"), "{shown}");
    assert_eq!(
        render_for("keys list", json!({"keys": []})),
        KEY_COLUMNS.join("  ") + "\n"
    );
    assert_eq!(
        render_for("keys list", json!({"keys": ["hash1"]}))
            .lines()
            .nth(1),
        Some("hash1  -      -    -     -       -        -      -       -")
    );
}

#[test]
fn a_new_secret_is_shown_once_with_the_key_row() {
    let mut body = key("key_1");
    body["key"] = json!("sk-sg-secret");
    let shown = render_for("keys create --alias ci", body.clone());
    assert!(
        shown
            .starts_with("Secret (shown only this once; store it now):\n\n    sk-sg-secret\n\nID "),
        "{shown}"
    );
    assert!(shown.contains("\nkey_1  ci "), "{shown}");
    let rotated = render_for("keys rotate key_1 --grace 1h", body.clone());
    assert!(
        rotated.contains("\n\nThe old secret keeps working for 1h.\n\nID "),
        "{rotated}"
    );
    assert!(render_for("keys rotate key_1", body).contains("The old secret no longer works."));
    assert!(
        render_for("keys create", json!({}))
            .starts_with("The answer holds no secret (see --json).\n\nID")
    );
}

#[test]
fn info_is_field_lines() {
    let body = json!({"key": "key_1", "info": {"key_alias": "ci", "models": [], "expires": null,
        "metadata": {"env": "prod"}, "tags": ["a", "b"], "max_budget": null, "rpm_limit": 60}});
    assert_eq!(
        render_for("keys info key_1", body),
        "expires: never\nkey_alias: ci\nmax_budget: -\nmetadata: {\"env\":\"prod\"}\nmodels: all\n\
         rpm_limit: 60\ntags: a,b\n"
    );
}

#[test]
fn acks_name_the_verb_noun_and_id() {
    assert_eq!(
        render_for("keys block key_1", json!({"key_id": "key_1"})),
        "blocked key key_1\n"
    );
    assert_eq!(
        render_for("keys unblock key_1", Value::Null),
        "unblocked key key_1\n"
    );
    assert_eq!(
        render_for("keys update key_1 --rpm 5", json!({})),
        "updated key key_1\n"
    );
    assert_eq!(
        render_for("teams update t1 --rpm 5", json!({})),
        "updated team t1\n"
    );
}

#[test]
fn deletes_list_what_the_api_deleted() {
    assert_eq!(
        render_for("keys delete a b", json!({"deleted_keys": ["a", "b"]})),
        "deleted key a\ndeleted key b\n"
    );
    assert_eq!(render_for("keys delete a", json!({})), "deleted key a\n");
    let body = json!({"deleted_teams": ["t1"], "deleted_keys": [{"key_id": "k1"}, "k2"]});
    assert_eq!(
        render_for("teams delete t1", body),
        "deleted team t1\ndeleted key k1\ndeleted key k2\n"
    );
}

#[test]
fn teams_show_as_tables() {
    let team = json!({"team_id": "t1", "team_alias": "Search", "models": ["a"], "blocked": false,
        "spend": 1.25, "created_at": "2024-01-01T00:00:00Z"});
    assert_eq!(
        render_for(
            "teams list",
            json!([team, {"team_id": "t2", "blocked": true, "spend": 0}])
        ),
        "ID  ALIAS   MODELS  STATE    SPEND  CREATED\n\
         t1  Search  a       active   1.25   2024-01-01T00:00:00Z\n\
         t2  -       all     blocked  0      -\n"
    );
    assert_eq!(
        render_for("teams list", json!({"teams": [{"team_id": "t3"}]}))
            .lines()
            .nth(1),
        Some("t3  -      all     active  -      -")
    );
    assert!(
        render_for("teams create --id t1", team)
            .starts_with("created team t1\n\nID  ALIAS   MODELS")
    );
}

#[test]
fn team_info_shows_the_team_then_its_keys() {
    let body = json!({"team_id": "t1", "team_info": {"team_alias": "Search", "models": ["a"]},
        "keys": [key("key_1")]});
    let shown = render_for("teams info t1", body);
    assert!(
        shown.starts_with("models: a\nteam_alias: Search\n\nkeys:\nID "),
        "{shown}"
    );
    assert!(shown.ends_with("\nkey_1  ci     sk-...ab12  t1    gpt-4o,claude  never    active  store   2024-05-31T10:00:00Z\n"), "{shown}");
    let bare = render_for("teams info t1", json!({"team_id": "t1", "keys": []}));
    assert_eq!(bare, "team_id: t1\n\nkeys: none\n");
}

#[test]
fn error_lines_carry_status_code_and_message() {
    let e = |status, body: &str| error_line(status, body.as_bytes());
    let not_found = r#"{"error":{"message":"no key \"key_ab12\"","type":"not_found","param":null,"code":"key_not_found"}}"#;
    assert_eq!(e(404, not_found), r#"404 key_not_found: no key "key_ab12""#);
    let numeric = r#"{"error":{"message":"bad","type":"auth_error","code":"401"}}"#;
    assert_eq!(e(401, numeric), "401 auth_error: bad");
    assert_eq!(e(403, r#"{"error":{"message":"denied"}}"#), "403: denied");
    assert_eq!(e(400, r#"{"detail":"missing key"}"#), "400: missing key");
    assert_eq!(e(400, r#"{"error":"plain"}"#), "400: plain");
    assert_eq!(e(502, "Bad\ngateway"), "502: Bad gateway");
    assert_eq!(e(500, ""), "500: the answer has no body");
}
