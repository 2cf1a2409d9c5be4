//! `shardgate keys …` and `shardgate teams …` against the real admin API of a running gateway.

mod common;

use std::process::Command;

use common::{Driver, Gateway, mock};

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn cli(gw: &Gateway, args: &[&str]) -> Run {
    let out = Command::new(common::binary())
        .args(args)
        .env(
            "SHARDGATE_ADMIN_URL",
            format!("http://{}", gw.admin.unwrap()),
        )
        .env("SHARDGATE_MASTER_KEY", common::MASTER)
        .output()
        .expect("run the cli");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn chat(gw: &Gateway, key: &str) -> u16 {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    gw.chat_as(key, body).status
}

#[test]
fn keys_and_teams_from_the_command_line() {
    let up = mock();
    let cfg = common::config(&up.base_url(), "  master_key: { env: MASTER_KEY }\n");
    let gw = Gateway::start(&cfg, Driver::Uring);

    let r = cli(
        &gw,
        &["teams", "create", "--id", "ml", "--models", "gpt-4o-mini"],
    );
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    let r = cli(
        &gw,
        &["keys", "create", "--alias", "etl", "--team", "ml", "--json"],
    );
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    let made: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let (secret, id) = (
        made["key"].as_str().unwrap(),
        made["key_id"].as_str().unwrap(),
    );
    assert_eq!(chat(&gw, secret), 200);

    let r = cli(&gw, &["keys", "list"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let row = r
        .out
        .lines()
        .find(|l| l.contains("etl"))
        .expect("the key's row");
    assert!(
        row.contains(id) && row.contains("ml") && row.contains("active"),
        "{row}"
    );
    assert!(!r.out.contains(secret), "a listing never shows a secret");
    assert!(r.out.lines().next().unwrap().contains("ALIAS"), "{}", r.out);
    assert!(
        r.out.contains("config"),
        "config keys are listed: {}",
        r.out
    );

    assert_eq!(cli(&gw, &["keys", "block", id]).code, 0);
    assert_eq!(chat(&gw, secret), 401);
    assert!(cli(&gw, &["keys", "list"]).out.contains("blocked"));
    assert_eq!(cli(&gw, &["keys", "unblock", id]).code, 0);
    assert_eq!(chat(&gw, secret), 200);

    let r = cli(&gw, &["keys", "rotate", id, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let rotated: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(chat(&gw, secret), 401);
    assert_eq!(chat(&gw, rotated["key"].as_str().unwrap()), 200);

    let r = cli(&gw, &["keys", "info", id]);
    assert!(r.out.contains("etl"), "{}", r.out);
    let r = cli(&gw, &["keys", "info", "key_00000000000000000000"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("404"), "{}", r.err);

    let r = cli(&gw, &["teams", "list"]);
    assert!(r.out.contains("ml"), "{}", r.out);
    let r = cli(&gw, &["teams", "delete", "ml"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        chat(&gw, rotated["key"].as_str().unwrap()),
        401,
        "the team's keys went with it"
    );

    let bad = Command::new(common::binary())
        .args(["keys", "list", "--master-key", "wrong-key"])
        .env(
            "SHARDGATE_ADMIN_URL",
            format!("http://{}", gw.admin.unwrap()),
        )
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"));
    let usage = cli(&gw, &["keys", "frobnicate"]);
    assert_eq!(usage.code, 2);
}
