//! Whole invocations against [`MockApi`]: what each command sends (method, path, query,
//! `Authorization`, JSON body), what it prints, and its exit status.

use serde_json::{Value, json};

use super::mock::{MockApi, Recorded};
use super::*;

struct Ran {
    status: Status,
    out: String,
    err: String,
}

fn execute_line(line: &str, env: &Env) -> Ran {
    let args: Vec<String> = line.split(' ').map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = execute(&args, env, 1_717_200_000, &mut out, &mut err);
    Ran {
        status,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// Runs `line` against an API answering `status` with `answer`, the master key in the env.
fn exchange(line: &str, status: u16, answer: &str) -> (Ran, Recorded) {
    let api = MockApi::json(status, answer);
    let env = Env {
        admin_url: Some(api.url.clone()),
        master_key: Some("sk-master".into()),
    };
    let ran = execute_line(line, &env);
    (ran, api.request())
}

/// A command line; the method, target and JSON body it must send; the answer; what it prints.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<Value>,
    &'static str,
    &'static str,
);

#[test]
fn every_command_sends_its_route_auth_and_body() {
    let secret = r#"{"key":"sk-sg-new","key_id":"key_1","key_name":"sk-...new1","key_alias":"ci"}"#;
    let cases: &[Case] = &[
        (
            "keys create --alias ci --team t1 --models a,b --rpm 10 --max-budget 2.5 --metadata {\"x\":1}",
            "POST",
            "/key/generate",
            Some(
                json!({"key_alias": "ci", "team_id": "t1", "models": ["a", "b"], "rpm_limit": 10,
                     "max_budget": 2.5, "metadata": {"x": 1}}),
            ),
            secret,
            "    sk-sg-new\n",
        ),
        (
            "keys list --team t",
            "GET",
            "/key/list?team_id=t&size=1000",
            None,
            r#"{"keys":[]}"#,
            "ID  ",
        ),
        (
            "keys list",
            "GET",
            "/key/list?size=1000",
            None,
            r#"{"keys":[],"total_count":0}"#,
            "LAST USED\n",
        ),
        (
            "keys info key_ab12",
            "GET",
            "/key/info?key=key_ab12",
            None,
            r#"{"key":"key_ab12","info":{"key_alias":"ci"}}"#,
            "key_alias: ci\n",
        ),
        (
            "keys block key_ab12",
            "POST",
            "/key/block",
            Some(json!({"key": "key_ab12"})),
            "{}",
            "blocked key key_ab12\n",
        ),
        (
            "keys unblock key_ab12",
            "POST",
            "/key/unblock",
            Some(json!({"key": "key_ab12"})),
            "{}",
            "unblocked key key_ab12\n",
        ),
        (
            "keys rotate key_1 --grace 1h",
            "POST",
            "/key/regenerate",
            Some(json!({"key": "key_1", "grace_period": "1h"})),
            secret,
            "for 1h.",
        ),
        (
            "keys update key_1 --tags a --duration 30d --user u",
            "POST",
            "/key/update",
            Some(json!({"key": "key_1", "tags": ["a"], "duration": "30d", "user_id": "u"})),
            "{}",
            "updated key key_1\n",
        ),
        (
            "keys delete k1 k2",
            "POST",
            "/key/delete",
            Some(json!({"keys": ["k1", "k2"]})),
            r#"{"deleted_keys":["k1","k2"]}"#,
            "deleted key k1\ndeleted key k2\n",
        ),
        (
            "teams create --id t1 --alias Search --tpm 5",
            "POST",
            "/team/new",
            Some(json!({"team_id": "t1", "team_alias": "Search", "tpm_limit": 5})),
            r#"{"team_id":"t1","team_alias":"Search"}"#,
            "created team t1\n",
        ),
        (
            "teams list",
            "GET",
            "/team/list",
            None,
            r#"[{"team_id":"t1"}]"#,
            "\nt1 ",
        ),
        (
            "teams info t/1",
            "GET",
            "/team/info?team_id=t%2F1",
            None,
            r#"{"team_id":"t/1","team_info":{"team_alias":"S"},"keys":[]}"#,
            "team_alias: S\n",
        ),
        (
            "teams update t1 --max-parallel 3",
            "POST",
            "/team/update",
            Some(json!({"team_id": "t1", "max_parallel_requests": 3})),
            "{}",
            "updated team t1\n",
        ),
        (
            "teams delete t1 t2",
            "POST",
            "/team/delete",
            Some(json!({"team_ids": ["t1", "t2"]})),
            r#"{"deleted_teams":["t1","t2"],"deleted_keys":["k9"]}"#,
            "deleted team t2\ndeleted key k9\n",
        ),
    ];
    for (line, method, target, body, answer, shown) in cases {
        let (ran, got) = exchange(line, 200, answer);
        assert_eq!((ran.status, ran.err.as_str()), (Status::Ok, ""), "{line}");
        assert!(ran.out.contains(shown), "{line}: {}", ran.out);
        assert_eq!(
            (got.method.as_str(), got.target.as_str()),
            (*method, *target),
            "{line}"
        );
        assert_eq!(
            got.header("authorization"),
            Some("Bearer sk-master"),
            "{line}"
        );
        match body {
            Some(body) => {
                assert_eq!(&got.json(), body, "{line}");
                assert_eq!(got.header("content-type"), Some("application/json"));
            }
            None => assert!(
                got.body.is_empty() && got.header("content-length").is_none(),
                "{line}"
            ),
        }
    }
}

#[test]
fn flags_override_the_environment() {
    let api = MockApi::json(200, "[]");
    let env = Env {
        admin_url: Some("http://127.0.0.1:1".into()),
        master_key: Some("sk-env".into()),
    };
    let ran = execute_line(
        &format!(
            "teams list --admin-url {}/gw/ --master-key sk-flag",
            api.url
        ),
        &env,
    );
    assert_eq!(ran.status, Status::Ok, "{}", ran.err);
    let got = api.request();
    assert_eq!(got.target, "/gw/team/list");
    assert_eq!(got.header("authorization"), Some("Bearer sk-flag"));
}

#[test]
fn without_a_master_key_the_request_goes_and_the_refusal_shows() {
    let api = MockApi::json(
        401,
        r#"{"error":{"message":"missing master key","type":"auth_error","code":"401"}}"#,
    );
    let ran = execute_line(
        &format!("keys list --admin-url {}", api.url),
        &Env::default(),
    );
    assert_eq!(ran.status, Status::Failed);
    assert_eq!(ran.err, "shardgate: 401 auth_error: missing master key\n");
    assert!(ran.out.is_empty());
    assert_eq!(api.request().header("authorization"), None);
}

#[test]
fn an_api_error_exits_1_with_its_status_and_message() {
    let answer = r#"{"error":{"message":"no key \"key_ab12\"","type":"not_found","param":"key","code":"key_not_found"}}"#;
    let (ran, got) = exchange("keys info key_ab12 --json", 404, answer);
    assert_eq!((ran.status, ran.out.as_str()), (Status::Failed, ""));
    assert_eq!(
        ran.err,
        "shardgate: 404 key_not_found: no key \"key_ab12\"\n"
    );
    assert_eq!(got.target, "/key/info?key=key_ab12");
}

#[test]
fn json_prints_the_answer_pretty_even_when_chunked() {
    let api = MockApi::answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n[{\"tea\r\nc\r\nm_id\":\"t1\"}]\r\n0\r\n\r\n",
    );
    let ran = execute_line(
        &format!("teams list --json --admin-url {}", api.url),
        &Env::default(),
    );
    assert_eq!(ran.status, Status::Ok, "{}", ran.err);
    assert_eq!(ran.out, "[\n  {\n    \"team_id\": \"t1\"\n  }\n]\n");
    api.request();
}

#[test]
fn a_close_delimited_answer_is_read_whole() {
    let api = MockApi::answering(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"deleted_keys\":[\"k1\"]}",
    );
    let ran = execute_line(
        &format!("keys delete k1 --admin-url {}", api.url),
        &Env::default(),
    );
    assert_eq!(
        (ran.status, ran.out.as_str()),
        (Status::Ok, "deleted key k1\n"),
        "{}",
        ran.err
    );
    api.request();
}

#[test]
fn an_answer_that_is_not_json_fails() {
    let (ran, _) = exchange("teams list", 200, "<html>");
    assert_eq!(ran.status, Status::Failed);
    assert!(
        ran.err
            .starts_with("shardgate: 200: the answer is not JSON"),
        "{}",
        ran.err
    );
    let (ran, _) = exchange("keys block k", 200, "");
    assert_eq!(
        (ran.status, ran.out.as_str()),
        (Status::Ok, "blocked key k\n")
    );
}

#[test]
fn an_unreachable_api_exits_1() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let ran = execute_line(&format!("keys list --admin-url {url}"), &Env::default());
    assert_eq!(ran.status, Status::Failed);
    assert!(
        ran.err
            .starts_with(&format!("shardgate: cannot reach the admin API at {url}: ")),
        "{}",
        ran.err
    );
}

#[test]
fn usage_errors_exit_2_before_any_request() {
    let env = Env {
        admin_url: Some("http://127.0.0.1:1".into()),
        master_key: None,
    };
    let ran = execute_line("keys create --rpm many", &env);
    assert_eq!(ran.status, Status::Usage);
    assert!(ran.err.starts_with("shardgate: --rpm takes a non-negative integer, not \"many\"\n\nusage: shardgate keys create"));
    let ran = execute_line("keys list --admin-url https://gw:9090", &env);
    assert_eq!(ran.status, Status::Usage);
    assert!(ran.err.contains("https is not supported"), "{}", ran.err);
    let ran = execute_line("keys list --master-key a\u{7}b", &env);
    assert_eq!(ran.status, Status::Usage);
}

#[test]
fn help_exits_0_on_stdout() {
    let ran = execute_line("teams update --help", &Env::default());
    assert_eq!((ran.status, ran.err.as_str()), (Status::Ok, ""));
    assert!(
        ran.out
            .starts_with("usage: shardgate teams update ID [FLAGS]")
    );
    assert_eq!(ExitCode::from(Status::Usage), ExitCode::from(2));
}

#[test]
fn spend_commands_send_their_query_and_print_tables_or_csv_as_is() {
    let logs = r#"[{"request_id":"r1","startTime":"2025-12-02T15:04:05Z","api_key":"key_1",
        "team_id":null,"model":"gpt","custom_llm_provider":"openai","prompt_tokens":10,
        "completion_tokens":2,"spend":0.25,"status":200}]"#;
    let (ran, got) = exchange("spend logs --key key_1 --start 2025-12-01", 200, logs);
    assert_eq!((ran.status, ran.err.as_str()), (Status::Ok, ""));
    assert_eq!(
        (got.method.as_str(), got.target.as_str()),
        ("GET", "/spend/logs?api_key=key_1&start_date=2025-12-01")
    );
    assert_eq!(got.header("authorization"), Some("Bearer sk-master"));
    assert!(ran.out.starts_with("TIME  "), "{}", ran.out);
    assert!(
        ran.out
            .contains("\n2025-12-02T15:04:05Z  r1       key_1  -     gpt"),
        "{}",
        ran.out
    );

    let csv = "group,requests\r\n\"a,b\",1\r\n";
    let api = MockApi::answering(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n{csv}",
        csv.len()
    ));
    let env = Env {
        admin_url: Some(api.url.clone()),
        master_key: None,
    };
    let ran = execute_line(
        "spend report --start 2025-12-01 --end 2025-12-31 --by day --csv",
        &env,
    );
    assert_eq!(
        (ran.status, ran.out.as_str()),
        (Status::Ok, csv),
        "{}",
        ran.err
    );
    assert_eq!(
        api.request().target,
        "/global/spend/report?end_date=2025-12-31&format=csv&group_by=day&start_date=2025-12-01"
    );

    let report = r#"[{"group":"t","requests":4,"prompt_tokens":40,"completion_tokens":8,
        "spend":1.5,"unpriced_requests":0}]"#;
    let (ran, _) = exchange(
        "spend report --start 2025-12-01 --end 2025-12-02 --json",
        200,
        report,
    );
    assert_eq!(ran.status, Status::Ok);
    assert!(ran.out.starts_with("[\n  {\n"), "{}", ran.out);
    let (ran, _) = exchange(
        "spend report --start 2025-12-01 --end 2025-12-02",
        200,
        report,
    );
    assert_eq!(
        ran.out,
        "GROUP  REQUESTS  TOKENS IN  TOKENS OUT  SPEND  UNPRICED\nt      4         40         8           1.5    0\n"
    );
    let refused = r#"{"error":{"message":"start_date is required","type":"invalid_request_error","param":"start_date","code":"invalid_field"}}"#;
    let (ran, _) = exchange("spend logs --csv", 400, refused);
    assert_eq!(
        (ran.status, ran.err.as_str()),
        (
            Status::Failed,
            "shardgate: 400 invalid_field: start_date is required\n"
        )
    );
}
