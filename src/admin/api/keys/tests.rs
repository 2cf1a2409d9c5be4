//! The `/key/*` endpoints through `dispatch`, against a real in-memory store.

use serde_json::json;

use super::super::tests::{Harness, NOW};
use crate::auth::digest;

#[test]
fn generate_returns_the_secret_once_and_the_full_key_object() {
    let mut h = Harness::new();
    let v = h.post(
        "/key/generate",
        json!({
            "key_alias": "billing", "user_id": "u1", "models": ["gpt", "claude"],
            "metadata": {"owner": "ana"}, "tags": ["prod"], "duration": "7d",
            "rpm_limit": 10, "max_budget": 5.5, "model_tpm_limit": {"gpt": 1000}
        }),
    );
    let secret = v["key"].as_str().unwrap();
    assert!(secret.starts_with("sk-") && secret.len() == 46, "{secret}");
    let id = v["key_id"].as_str().unwrap();
    assert!(id.starts_with("key_") && id.len() == 24, "{id}");
    assert_eq!(v["token"], id);
    assert_eq!(v["key_name"], format!("sk-...{}", &secret[42..]));
    assert_eq!(v["key_alias"], "billing");
    assert_eq!(v["user_id"], "u1");
    assert_eq!(v["models"], json!(["gpt", "claude"]));
    assert_eq!(v["metadata"], json!({"owner": "ana"}));
    assert_eq!(v["tags"], json!(["prod"]));
    assert_eq!(v["expires"], "2025-12-09T15:04:05Z");
    assert_eq!(v["created_at"], "2025-12-02T15:04:05Z");
    assert_eq!(v["updated_at"], "2025-12-02T15:04:05Z");
    assert_eq!(v["last_used_at"], json!(null));
    assert_eq!(
        (v["source"].as_str(), v["blocked"].as_bool()),
        (Some("store"), Some(false))
    );
    assert_eq!(
        (v["spend"].as_f64(), v["rpm_limit"].as_u64()),
        (Some(0.0), Some(10))
    );
    assert_eq!(v["max_budget"], 5.5);
    assert_eq!(v["model_tpm_limit"], json!({"gpt": 1000}));
    assert_eq!(v["tpm_limit"], json!(null));

    let rec = h.record(id);
    assert_eq!(rec.hash, digest(secret.as_bytes()));
    assert_eq!(rec.expires_ms, Some(NOW + 7 * 86_400_000));
    assert_eq!(rec.limits.rpm_limit, Some(10));
    // Later reads never show the secret.
    let info = h.get(&format!("/key/info?key={id}"));
    assert!(!info.to_string().contains(secret));
    assert_eq!(info["key"], id);
    assert_eq!(info["info"]["key_alias"], "billing");
}

#[test]
fn generate_with_an_empty_body_makes_an_unrestricted_key() {
    let mut h = Harness::new();
    let (status, v, changed) = h.call("POST", "/key/generate", "");
    assert_eq!((status, changed), (200, true));
    assert_eq!(v["models"], json!([]));
    assert_eq!(v["expires"], json!(null));
    assert_eq!(v["key_alias"], json!(null));
}

#[test]
fn generate_refuses_bad_fields() {
    let mut h = Harness::new();
    let cases = [
        (
            json!({"models": ["gpt", "gpt-5"]}),
            400,
            "unknown_model",
            "models",
        ),
        (json!({"models": "gpt"}), 400, "invalid_field", "models"),
        (
            json!({"team_id": "ghost"}),
            404,
            "team_not_found",
            "team_id",
        ),
        (json!({"duration": "1y"}), 400, "invalid_field", "duration"),
        (json!({"duration": 30}), 400, "invalid_field", "duration"),
        (json!({"rpm_limit": -1}), 400, "invalid_field", "rpm_limit"),
        (
            json!({"tpm_limit": "many"}),
            400,
            "invalid_field",
            "tpm_limit",
        ),
        (
            json!({"max_budget": -2}),
            400,
            "invalid_field",
            "max_budget",
        ),
        (
            json!({"budget_duration": "weekly"}),
            400,
            "invalid_field",
            "budget_duration",
        ),
        (
            json!({"model_rpm_limit": {"gpt-5": 1}}),
            400,
            "unknown_model",
            "model_rpm_limit",
        ),
        (json!({"tags": [1]}), 400, "invalid_field", "tags"),
        (json!({"metadata": []}), 400, "invalid_field", "metadata"),
        (json!({"blocked": null}), 400, "invalid_field", "blocked"),
        (json!({"key_alias": ""}), 400, "invalid_field", "key_alias"),
        (json!({"key": "sk-mine"}), 400, "unknown_field", "key"),
    ];
    for (body, status, code, param) in cases {
        h.refuse("/key/generate", body)
            .is(status, code, Some(param));
    }
    let r = h.refuse("/key/generate", json!({"duration": "1y"}));
    assert!(
        r.message.contains("duration") && r.message.contains("\"1y\""),
        "{}",
        r.message
    );
}

#[test]
fn key_aliases_are_unique() {
    let mut h = Harness::new();
    let (id, _) = h.key(json!({"key_alias": "a"}));
    let r = h.refuse("/key/generate", json!({"key_alias": "a"}));
    r.is(409, "duplicate_alias", Some("key_alias"));
    assert!(r.message.contains(&id));
    let (other, _) = h.key(json!({"key_alias": "b"}));
    h.refuse("/key/update", json!({"key": other, "key_alias": "a"}))
        .is(409, "duplicate_alias", Some("key_alias"));
    // Setting a key's own alias again is no conflict.
    h.post("/key/update", json!({"key": id, "key_alias": "a"}));
}

#[test]
fn a_key_in_a_team_may_only_list_the_teams_models() {
    let mut h = Harness::new();
    h.post("/team/new", json!({"team_id": "t", "models": ["gpt"]}));
    h.post("/team/new", json!({"team_id": "open"}));
    let r = h.refuse(
        "/key/generate",
        json!({"team_id": "t", "models": ["claude"]}),
    );
    r.is(400, "model_not_in_team", Some("models"));
    assert!(r.message.contains("\"claude\"") && r.message.contains("gpt"));
    h.key(json!({"team_id": "t", "models": ["gpt"]}));
    h.key(json!({"team_id": "t"}));
    let (free, _) = h.key(json!({"team_id": "open", "models": ["claude"]}));
    h.refuse("/key/update", json!({"key": free, "team_id": "t"}))
        .is(400, "model_not_in_team", Some("models"));
    h.post("/key/update", json!({"key": free, "team_id": null}));
    assert_eq!(h.record(&free).team_id, None);
}

#[test]
fn update_by_id_or_secret_changes_only_what_it_names() {
    let mut h = Harness::new();
    let (id, secret) = h.key(json!({"key_alias": "a", "models": ["gpt"], "tags": ["x"]}));
    h.now_ms = NOW + 60_000;
    let v = h.post(
        "/key/update",
        json!({"key": secret, "models": ["mini"], "duration": "1h"}),
    );
    assert_eq!(v["key_id"], id);
    assert_eq!(v["models"], json!(["mini"]));
    assert_eq!(v["tags"], json!(["x"]), "absent fields are kept");
    assert_eq!(v["key_alias"], "a");
    assert_eq!(
        v["expires"], "2025-12-02T16:05:05Z",
        "duration counts from now"
    );
    assert_eq!(v["updated_at"], "2025-12-02T15:05:05Z");
    assert_eq!(v["created_at"], "2025-12-02T15:04:05Z");
    assert!(v.get("key").is_none(), "update never returns a secret");
    let v = h.post(
        "/key/update",
        json!({"key": id, "duration": null, "key_alias": null}),
    );
    assert_eq!(
        (&v["expires"], &v["key_alias"]),
        (&json!(null), &json!(null))
    );
    let v = h.post(
        "/key/update",
        json!({"key": id, "rpm_limit": 3, "metadata": {"a": 1}}),
    );
    assert_eq!(
        (&v["rpm_limit"], &v["metadata"]),
        (&json!(3), &json!({"a": 1}))
    );
    let v = h.post("/key/update", json!({"key": id, "rpm_limit": null}));
    assert_eq!(v["rpm_limit"], json!(null));
    assert_eq!(h.record(&id).limits.rpm_limit, None);
}

#[test]
fn update_refusals() {
    let mut h = Harness::new();
    let (id, _) = h.key(json!({}));
    h.refuse("/key/update", json!({"models": ["gpt"]}))
        .is(400, "invalid_field", Some("key"));
    h.refuse("/key/update", json!({"key": "key_00000000000000000000"}))
        .is(404, "key_not_found", Some("key"));
    let r = h.refuse("/key/update", json!({"key": "sk-not-a-real-secret"}));
    r.is(404, "key_not_found", Some("key"));
    assert!(!r.message.contains("sk-not-a-real-secret"), "{}", r.message);
    let r = h.refuse("/key/update", json!({"key": "config:ci", "models": []}));
    r.is(400, "read_only_key", Some("key"));
    assert!(
        r.message
            .contains("comes from the config file; change it there")
    );
    h.refuse("/key/update", json!({"key": id, "modles": []}))
        .is(400, "unknown_field", Some("modles"));
    h.refuse("/key/update", json!({"key": id, "models": ["nope"]}))
        .is(400, "unknown_model", Some("models"));
    h.refuse("/key/update", json!({"key": id, "team_id": "ghost"}))
        .is(404, "team_not_found", Some("team_id"));
}

#[test]
fn regenerate_without_grace_retires_the_old_secret_at_once() {
    let mut h = Harness::new();
    let (id, old) = h.key(json!({"key_alias": "a"}));
    let v = h.post("/key/regenerate", json!({"key": old}));
    let new = v["key"].as_str().unwrap();
    assert!(new.starts_with("sk-") && new.len() == 46 && new != old);
    assert_eq!(v["key_id"], id);
    assert_eq!(v["key_alias"], "a");
    assert_eq!(v["key_name"], format!("sk-...{}", &new[42..]));
    let rec = h.record(&id);
    assert_eq!((rec.hash, rec.previous), (digest(new.as_bytes()), None));
    h.refused("GET", &format!("/key/info?key={old}"), "")
        .is(404, "key_not_found", Some("key"));
    assert_eq!(h.get(&format!("/key/info?key={new}"))["key"], id);
}

#[test]
fn regenerate_with_grace_keeps_the_old_secret_for_a_while() {
    let mut h = Harness::new();
    let (id, old) = h.key(json!({}));
    let v = h.post("/key/regenerate", json!({"key": id, "grace_period": "1h"}));
    let rec = h.record(&id);
    assert_eq!(
        rec.previous,
        Some((digest(old.as_bytes()), NOW + 3_600_000))
    );
    let second = v["key"].as_str().unwrap().to_owned();
    // The path form, with seconds as a number.
    h.post(
        &format!("/key/{id}/regenerate"),
        json!({"grace_period": 60}),
    );
    let rec = h.record(&id);
    assert_eq!(
        rec.previous,
        Some((digest(second.as_bytes()), NOW + 60_000))
    );
    // The path form with an empty body: no grace.
    let (status, _, changed) = h.call("POST", &format!("/key/{id}/regenerate"), "");
    assert_eq!((status, changed), (200, true));
    assert_eq!(h.record(&id).previous, None);
}

#[test]
fn regenerate_refusals() {
    let mut h = Harness::new();
    let (id, _) = h.key(json!({}));
    h.refuse("/key/regenerate", json!({}))
        .is(400, "invalid_field", Some("key"));
    for grace in [json!("soon"), json!(-5), json!(1.5), json!(true)] {
        h.refuse("/key/regenerate", json!({"key": id, "grace_period": grace}))
            .is(400, "invalid_field", Some("grace_period"));
    }
    h.refuse(&format!("/key/{id}/regenerate"), json!({"key": id}))
        .is(400, "invalid_field", Some("key"));
    h.refuse("/key/config:ci/regenerate", json!({}))
        .is(400, "read_only_key", Some("key"));
    h.refuse("/key/regenerate", json!({"key": "config:ci"}))
        .is(400, "read_only_key", Some("key"));
    h.refuse("/key/key_ffffffffffffffffffff/regenerate", json!({}))
        .is(404, "key_not_found", Some("key"));
    h.refuse("/key/regenerate", json!({"key": id, "duration": "1h"}))
        .is(400, "unknown_field", Some("duration"));
}

#[test]
fn delete_is_all_or_nothing() {
    let mut h = Harness::new();
    let (a, _) = h.key(json!({"key_alias": "a"}));
    let (b, b_secret) = h.key(json!({"key_alias": "b"}));
    let (c, _) = h.key(json!({"key_alias": "c"}));
    let r = h.refuse(
        "/key/delete",
        json!({"keys": [a, "key_00000000000000000000"]}),
    );
    r.is(404, "key_not_found", Some("keys"));
    assert!(
        r.message.contains("key_00000000000000000000"),
        "{}",
        r.message
    );
    h.refuse("/key/delete", json!({"key_aliases": ["a", "zz"]}))
        .is(404, "key_not_found", Some("key_aliases"));
    h.refuse("/key/delete", json!({"keys": [a, "config:ci"]}))
        .is(400, "read_only_key", Some("keys"));
    h.refuse("/key/delete", json!({"key_aliases": ["ci"]})).is(
        400,
        "read_only_key",
        Some("key_aliases"),
    );
    h.refuse("/key/delete", json!({}))
        .is(400, "invalid_field", Some("keys"));
    h.refuse("/key/delete", json!({"keys": "a"}))
        .is(400, "invalid_field", Some("keys"));

    let v = h.post(
        "/key/delete",
        json!({"keys": [a, b_secret], "key_aliases": ["a"]}),
    );
    assert_eq!(v, json!({"deleted_keys": [a, b]}));
    let v = h.post("/key/delete", json!({"key_aliases": ["c"]}));
    assert_eq!(v, json!({"deleted_keys": [c]}));
    assert!(h.store.key_records().unwrap().is_empty());
}

#[test]
fn block_and_unblock() {
    let mut h = Harness::new();
    let (id, secret) = h.key(json!({"key_alias": "a"}));
    let v = h.post("/key/block", json!({"key": secret}));
    assert_eq!(
        (&v["blocked"], &v["key_alias"]),
        (&json!(true), &json!("a"))
    );
    assert!(h.record(&id).blocked);
    let v = h.post("/key/unblock", json!({"key": id}));
    assert_eq!(v["blocked"], json!(false));
    assert!(!h.record(&id).blocked);
    h.refuse("/key/block", json!({"key": "config:ci"}))
        .is(400, "read_only_key", Some("key"));
    h.refuse("/key/block", json!({}))
        .is(400, "invalid_field", Some("key"));
    h.refuse("/key/unblock", json!({"key": id, "blocked": true}))
        .is(400, "unknown_field", Some("blocked"));
}

#[test]
fn info_reads_store_and_config_keys() {
    let mut h = Harness::new();
    let v = h.get("/key/info?key=config%3Aci");
    assert_eq!(v["key"], "config:ci");
    assert_eq!(v["info"]["source"], "config");
    assert_eq!(v["info"]["models"], json!(["gpt"]));
    h.refused("GET", "/key/info", "")
        .is(400, "invalid_field", Some("key"));
    h.refused("GET", "/key/info?key=config:nope", "")
        .is(404, "key_not_found", Some("key"));
    h.refused("GET", "/key/info?id=x", "")
        .is(400, "unknown_field", Some("id"));
}

#[test]
fn list_pages_config_keys_first() {
    let mut h = Harness::new();
    h.post("/team/new", json!({"team_id": "t"}));
    let (a, _) = h.key(json!({"key_alias": "a", "team_id": "t"}));
    h.now_ms += 1;
    let (b, _) = h.key(json!({"key_alias": "b"}));
    h.store.touch_last_used(&[(b.clone(), NOW + 5000)]).unwrap();

    let v = h.get("/key/list");
    assert_eq!(
        (&v["total_count"], &v["current_page"], &v["total_pages"]),
        (&json!(3), &json!(1), &json!(1))
    );
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys[0]["key_id"], "config:ci");
    assert_eq!(keys[0]["source"], "config");
    assert_eq!(
        (&keys[1]["key_id"], &keys[2]["key_id"]),
        (&json!(a), &json!(b))
    );
    assert_eq!(keys[2]["last_used_at"], "2025-12-02T15:04:10Z");

    let page = |h: &mut Harness, n: u32| h.get(&format!("/key/list?page={n}&size=1"));
    assert_eq!(page(&mut h, 1)["keys"][0]["key_id"], "config:ci");
    assert_eq!(page(&mut h, 2)["keys"][0]["key_id"], json!(a));
    let last = page(&mut h, 3);
    assert_eq!(
        (&last["keys"][0]["key_id"], &last["total_pages"]),
        (&json!(b), &json!(3))
    );
    assert_eq!(page(&mut h, 4)["keys"], json!([]));

    let v = h.get("/key/list?team_id=t&key_alias=&page=1&size=100");
    assert_eq!(
        (&v["total_count"], &v["keys"][0]["key_id"]),
        (&json!(1), &json!(a))
    );
    let v = h.get("/key/list?key_alias=ci");
    assert_eq!(
        v["keys"],
        json!([{"key_id": "config:ci", "token": "config:ci", "key_alias": "ci", "models": ["gpt"], "source": "config"}])
    );
    h.store
        .write(|w| (0..1000).try_for_each(|_| w.insert_key(&Default::default(), NOW + 9).map(drop)))
        .unwrap();
    let v = h.get("/key/list?size=5000");
    let n = v["keys"].as_array().unwrap().len();
    assert_eq!(
        (n, &v["total_count"], &v["total_pages"]),
        (1000, &json!(1003), &json!(2))
    );
    h.refused("GET", "/key/list?page=0", "")
        .is(400, "invalid_field", Some("page"));
    h.refused("GET", "/key/list?size=x", "")
        .is(400, "invalid_field", Some("size"));
    h.refused("GET", "/key/list?sort=1", "")
        .is(400, "unknown_field", Some("sort"));
}

#[test]
fn guardrails_and_cache_are_set_read_changed_and_cleared() {
    use crate::store::{CacheOverride, CacheSetting};
    let mut h = Harness::new();
    let v = h.post(
        "/key/generate",
        json!({"key_alias": "g", "guardrails": ["pii", "jailbreak", "pii"],
               "cache": {"ttl_s": 60, "scope": "team"}}),
    );
    let id = v["key_id"].as_str().unwrap().to_owned();
    assert_eq!(v["guardrails"], json!(["pii", "jailbreak"]));
    assert_eq!(v["cache"], json!({"ttl_s": 60, "scope": "team"}));
    let rec = h.record(&id);
    assert_eq!(rec.guardrails, ["pii", "jailbreak"]);
    assert_eq!(
        rec.cache,
        CacheSetting::On(CacheOverride {
            ttl_s: Some(60),
            scope: Some(crate::config::cache::Scope::Team),
            store_length: None,
        })
    );
    let info = h.get(&format!("/key/info?key={id}"))["info"].clone();
    assert_eq!(
        (&info["guardrails"], &info["cache"]),
        (&v["guardrails"], &v["cache"])
    );
    let listed = h.get("/key/list?key_alias=g")["keys"][0].clone();
    assert_eq!(
        (&listed["guardrails"], &listed["cache"]),
        (&v["guardrails"], &v["cache"])
    );

    // Absent: kept. A value: replaced. null: cleared (no names; follow the alias).
    let v = h.post("/key/update", json!({"key": id, "tags": ["x"]}));
    assert_eq!(
        (&v["guardrails"], &v["cache"]["ttl_s"]),
        (&json!(["pii", "jailbreak"]), &json!(60))
    );
    let v = h.post(
        "/key/update",
        json!({"key": id, "cache": false, "guardrails": ["toxicity"]}),
    );
    assert_eq!(
        (&v["guardrails"], &v["cache"]),
        (&json!(["toxicity"]), &json!(false))
    );
    assert_eq!(h.record(&id).cache, CacheSetting::Off);
    let v = h.post("/key/update", json!({"key": id, "cache": true}));
    assert_eq!(v["cache"], json!(true));
    let v = h.post(
        "/key/update",
        json!({"key": id, "cache": null, "guardrails": null}),
    );
    assert_eq!((&v["guardrails"], &v["cache"]), (&json!([]), &json!(null)));
    let rec = h.record(&id);
    assert!(rec.guardrails.is_empty() && rec.cache == CacheSetting::Follow);
    // A key made without them shows the defaults.
    let (plain, _) = h.key(json!({}));
    let info = h.get(&format!("/key/info?key={plain}"))["info"].clone();
    assert_eq!(
        (&info["guardrails"], &info["cache"]),
        (&json!([]), &json!(null))
    );
}

#[test]
fn guardrails_and_cache_refusals_name_the_field() {
    let mut h = Harness::new();
    let (id, _) = h.key(json!({}));
    let cases = [
        (json!({"guardrails": "pii"}), "guardrails"),
        (json!({"guardrails": ["ok", "not ok"]}), "guardrails"),
        (json!({"guardrails": [""]}), "guardrails"),
        (json!({"guardrails": ["x".repeat(65)]}), "guardrails"),
        (json!({"cache": "yes"}), "cache"),
        (json!({"cache": 1}), "cache"),
        (json!({"cache": {"ttl_s": 0}}), "cache"),
        (json!({"cache": {"ttl_s": 31_536_001}}), "cache"),
        (json!({"cache": {"scope": "shared"}}), "cache"),
        (json!({"cache": {"scope": "tenant"}}), "cache"),
        (json!({"cache": {"store_length": 1}}), "cache"),
        (json!({"cache": {"ttl": 5}}), "cache"),
    ];
    for (body, param) in cases {
        h.refuse("/key/generate", body.clone())
            .is(400, "invalid_field", Some(param));
        let mut update = body;
        update["key"] = json!(id);
        h.refuse("/key/update", update)
            .is(400, "invalid_field", Some(param));
    }
    let r = h.refuse("/key/generate", json!({"cache": {"scope": "shared"}}));
    assert!(r.message.contains("configured per alias"), "{}", r.message);
    let many: Vec<String> = (0..33).map(|i| format!("g{i}")).collect();
    let r = h.refuse("/key/generate", json!({"guardrails": many}));
    r.is(400, "invalid_field", Some("guardrails"));
    assert!(r.message.contains("at most 32"), "{}", r.message);
}
