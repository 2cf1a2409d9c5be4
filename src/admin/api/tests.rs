//! The harness the endpoint tests share (a real in-memory store driven through [`dispatch`]),
//! and the tests of dispatch itself: routing, methods, body errors, durability of a write.

use serde_json::{Value, json};

use super::*;
use crate::store::KeyRecord;

/// 2025-12-02T15:04:05Z.
pub(super) const NOW: i64 = 1_764_687_845_000;

pub(super) struct Harness {
    pub store: Store,
    pub now_ms: i64,
    config: Vec<ConfigKey>,
    aliases: Vec<String>,
}

/// Everything a refused call must leave as it was.
fn state(store: &Store) -> (Vec<KeyRecord>, Vec<crate::store::TeamRow>) {
    (
        store.key_records().unwrap(),
        store.reader().teams().unwrap(),
    )
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_store(Store::open(None).unwrap())
    }

    pub fn with_store(store: Store) -> Harness {
        Harness {
            store,
            now_ms: NOW,
            config: vec![ConfigKey {
                name: "ci".into(),
                models: vec!["gpt".into()],
            }],
            aliases: ["gpt", "claude", "mini"].map(String::from).to_vec(),
        }
    }

    /// `target` is the path with an optional `?query`.
    pub fn call(&mut self, method: &str, target: &str, body: &str) -> (u16, Value, bool) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let cx = Context {
            now_ms: self.now_ms,
            config_keys: &self.config,
            aliases: &self.aliases,
        };
        let reply = dispatch(&mut self.store, &cx, method, path, query, body.as_bytes());
        let value = serde_json::from_slice(&reply.body).expect("every reply is JSON");
        (reply.status, value, reply.changed)
    }

    /// A write that must succeed.
    pub fn post(&mut self, path: &str, body: Value) -> Value {
        let (status, v, changed) = self.call("POST", path, &body.to_string());
        assert_eq!(status, 200, "POST {path} {body}: {v}");
        assert!(changed, "a committed write sets changed");
        v
    }

    /// A read that must succeed.
    pub fn get(&mut self, target: &str) -> Value {
        let (status, v, changed) = self.call("GET", target, "");
        assert_eq!(status, 200, "GET {target}: {v}");
        assert!(!changed, "a read changes nothing");
        v
    }

    /// A call that must be refused, changing nothing: its status, code, param and message.
    pub fn refused(&mut self, method: &str, target: &str, body: &str) -> Refusal {
        let before = state(&self.store);
        let (status, v, changed) = self.call(method, target, body);
        assert!(status >= 400, "{method} {target} {body}: {v}");
        assert!(!changed);
        assert_eq!(state(&self.store), before, "a refused call changes nothing");
        let e = &v["error"];
        assert!(e["type"].is_string() && e["message"].is_string(), "{v}");
        Refusal {
            status,
            code: e["code"].as_str().unwrap().to_owned(),
            param: e["param"].as_str().map(str::to_owned),
            message: e["message"].as_str().unwrap().to_owned(),
            kind: e["type"].as_str().unwrap().to_owned(),
        }
    }

    /// [`Harness::refused`] for a POST with a JSON body.
    pub fn refuse(&mut self, path: &str, body: Value) -> Refusal {
        self.refused("POST", path, &body.to_string())
    }

    /// Makes a key; returns (id, secret).
    pub fn key(&mut self, body: Value) -> (String, String) {
        let v = self.post("/key/generate", body);
        let id = v["key_id"].as_str().unwrap().to_owned();
        (id, v["key"].as_str().unwrap().to_owned())
    }

    pub fn record(&self, id: &str) -> KeyRecord {
        let all = self.store.key_records().unwrap();
        all.into_iter().find(|r| r.id == id).expect("key exists")
    }
}

#[derive(Debug)]
pub(super) struct Refusal {
    pub status: u16,
    pub code: String,
    pub param: Option<String>,
    pub message: String,
    pub kind: String,
}

impl Refusal {
    /// Asserts status, code and param at once.
    pub fn is(&self, status: u16, code: &str, param: Option<&str>) {
        let got = (self.status, self.code.as_str(), self.param.as_deref());
        assert_eq!(got, (status, code, param), "{}", self.message);
    }
}

#[test]
fn serves_exactly_its_paths() {
    for p in [
        "/key/generate",
        "/key/update",
        "/key/regenerate",
        "/key/delete",
        "/key/block",
        "/key/unblock",
        "/key/info",
        "/key/list",
        "/key/key_0123/regenerate",
        "/team/new",
        "/team/update",
        "/team/delete",
        "/team/info",
        "/team/list",
    ] {
        assert!(serves(p), "{p}");
    }
    for p in [
        "/health",
        "/key",
        "/key/generate/",
        "/key//regenerate",
        "/key/a/b/regenerate",
        "/team/members",
        "/v1/chat/completions",
    ] {
        assert!(!serves(p), "{p}");
    }
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let mut h = Harness::new();
    h.refused("GET", "/key/nope", "")
        .is(404, "unknown_url", None);
    let r = h.refused("GET", "/key/generate", "");
    r.is(405, "method_not_allowed", None);
    assert_eq!(r.message, "/key/generate takes POST, not GET");
    h.refused("POST", "/key/list", "{}")
        .is(405, "method_not_allowed", None);
    h.refused("DELETE", "/team/delete", "{}")
        .is(405, "method_not_allowed", None);
}

#[test]
fn bodies_must_be_json_objects_of_known_fields() {
    let mut h = Harness::new();
    let r = h.refused("POST", "/key/generate", "{\"key_alias\": ");
    r.is(400, "invalid_json", None);
    assert_eq!(r.kind, "invalid_request_error");
    h.refused("POST", "/team/new", "[]")
        .is(400, "invalid_json", None);
    h.refused("POST", "/key/generate", "\"x\"")
        .is(400, "invalid_json", None);
    let r = h.refuse("/key/generate", json!({"key_alais": "typo"}));
    r.is(400, "unknown_field", Some("key_alais"));
    assert!(
        r.message.contains("key_alias"),
        "lists the real fields: {}",
        r.message
    );
    h.refuse("/key/generate", json!({"spend": 3}))
        .is(400, "unknown_field", Some("spend"));
}

#[test]
fn reads_change_nothing_and_writes_say_so() {
    let mut h = Harness::new();
    let (_, _, changed) = h.call("GET", "/key/list", "");
    assert!(!changed);
    let (status, _, changed) = h.call("POST", "/key/generate", "");
    assert_eq!((status, changed), (200, true));
}

#[test]
fn a_write_is_committed_before_dispatch_returns() {
    let dir = std::env::temp_dir().join(format!("shardgate-api-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("keys.db");
    let mut h = Harness::with_store(Store::open(Some(&path)).unwrap());
    let (id, secret) = h.key(json!({"key_alias": "durable"}));
    // Another connection sees it while the first is still open.
    let other = Store::open(Some(&path)).unwrap();
    let rec = other.key_records().unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].id, id);
    assert_eq!(rec[0].hash, crate::auth::digest(secret.as_bytes()));
    drop(h);
    drop(other);
    std::fs::remove_dir_all(dir).unwrap();
}
