//! The key and team management API, LiteLLM's shapes, as a pure function over the [`Store`].
//!
//! [`dispatch`] takes a method, path, query and body and returns a [`Reply`]; it owns no socket
//! and checks no credential (the HTTP front does, with the master key, and republishes the key
//! table when `changed`). It runs on the control thread, which owns the store.
//!
//! Invariants: every write is one SQLite transaction, committed before `dispatch` returns, and
//! `changed` is true exactly when one committed; a refused call changes nothing (deletes are
//! all-or-nothing); keys from the YAML config are listed but read-only; errors are OpenAI's
//! error JSON with a `code` a client can match on.

mod failure;
mod fields;
mod keys;
mod query;
mod spend;
mod teams;
mod view;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::store::Store;
use failure::Failure;
use query::path_decode;

pub struct Reply {
    pub status: u16,
    /// JSON, or CSV when `content_type` says so.
    pub body: Vec<u8>,
    /// The body's `Content-Type`: "application/json", or "text/csv; charset=utf-8".
    pub content_type: &'static str,
    /// Keys or teams changed: republish the key table.
    pub changed: bool,
}

/// A key from the YAML config: listed with `"source": "config"`, never changed here.
pub struct ConfigKey {
    pub name: String,
    pub models: Vec<String>,
}

pub struct Context<'a> {
    pub now_ms: i64,
    pub config_keys: &'a [ConfigKey],
    /// The model aliases the current config serves.
    pub aliases: &'a [String],
}

/// A handled call: the JSON to send, and whether a write committed.
struct Done {
    value: Value,
    changed: bool,
}

impl Done {
    fn read(value: Value) -> Done {
        Done {
            value,
            changed: false,
        }
    }

    fn wrote(value: Value) -> Done {
        Done {
            value,
            changed: true,
        }
    }
}

/// The endpoints; add one here, in [`Route::of`] and in [`dispatch`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route<'p> {
    KeyGenerate,
    KeyUpdate,
    /// The key, when given in the path (`/key/{key}/regenerate`).
    KeyRegenerate(Option<&'p str>),
    KeyDelete,
    KeyBlock,
    KeyUnblock,
    KeyInfo,
    KeyList,
    TeamNew,
    TeamUpdate,
    TeamDelete,
    TeamInfo,
    TeamList,
    SpendLogs,
    SpendReport,
}

impl<'p> Route<'p> {
    fn of(path: &'p str) -> Option<Route<'p>> {
        Some(match path {
            "/key/generate" => Route::KeyGenerate,
            "/key/update" => Route::KeyUpdate,
            "/key/regenerate" => Route::KeyRegenerate(None),
            "/key/delete" => Route::KeyDelete,
            "/key/block" => Route::KeyBlock,
            "/key/unblock" => Route::KeyUnblock,
            "/key/info" => Route::KeyInfo,
            "/key/list" => Route::KeyList,
            "/team/new" => Route::TeamNew,
            "/team/update" => Route::TeamUpdate,
            "/team/delete" => Route::TeamDelete,
            "/team/info" => Route::TeamInfo,
            "/team/list" => Route::TeamList,
            "/spend/logs" => Route::SpendLogs,
            "/global/spend/report" => Route::SpendReport,
            _ => {
                let key = path.strip_prefix("/key/")?.strip_suffix("/regenerate")?;
                if key.is_empty() || key.contains('/') {
                    return None;
                }
                Route::KeyRegenerate(Some(key))
            }
        })
    }

    fn method(self) -> &'static str {
        match self {
            Route::KeyInfo
            | Route::KeyList
            | Route::TeamInfo
            | Route::TeamList
            | Route::SpendLogs
            | Route::SpendReport => "GET",
            _ => "POST",
        }
    }
}

/// What `POST /cache/purge` names (`model`, `key`, both, or neither for everything), read as
/// strictly as every other body of the API.
pub fn purge_request(body: &[u8]) -> Result<crate::cache::Purge, Reply> {
    let read = || -> Result<crate::cache::Purge, failure::Failure> {
        let b = fields::Body::parse(body, "/cache/purge", &["model", "key"])?;
        Ok(crate::cache::Purge {
            alias: b.text("model")?.flatten(),
            key_id: b.text("key")?.flatten(),
        })
    };
    read().map_err(|f| f.reply())
}

/// An error reply of the admin listener itself, in the API's error shape.
pub fn refusal(status: u16, kind: &'static str, code: &'static str, message: String) -> Reply {
    failure::Failure::other(status, kind, code, message).reply()
}

/// True for the paths [`dispatch`] serves.
pub fn serves(path: &str) -> bool {
    Route::of(path).is_some()
}

/// Serves one call. `path` is without the query string; `query` is the part after '?'.
pub fn dispatch(
    store: &mut Store,
    cx: &Context,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Reply {
    let Some(route) = Route::of(path) else {
        let message = format!("no admin API endpoint {path}");
        return Failure::not_found("unknown_url", None, message).reply();
    };
    if method != route.method() {
        return Failure::method(path, route.method(), method).reply();
    }
    let done = match route {
        Route::KeyGenerate => keys::generate(store, cx, body),
        Route::KeyUpdate => keys::update(store, cx, body),
        Route::KeyRegenerate(in_path) => match in_path.map(path_decode) {
            Some(None) => Err(Failure::field(
                "key",
                "the key in the path is not valid percent-encoding",
            )),
            Some(Some(key)) => keys::regenerate(store, cx, Some(&key), body),
            None => keys::regenerate(store, cx, None, body),
        },
        Route::KeyDelete => keys::delete(store, cx, body),
        Route::KeyBlock => keys::block(store, cx, body, true),
        Route::KeyUnblock => keys::block(store, cx, body, false),
        Route::KeyInfo => keys::info(store, cx, query),
        Route::KeyList => keys::list(store, cx, query),
        Route::TeamNew => teams::new(store, cx, body),
        Route::TeamUpdate => teams::update(store, cx, body),
        Route::TeamDelete => teams::delete(store, body),
        Route::TeamInfo => teams::info(store, query),
        Route::TeamList => teams::list(store, query),
        // These answer JSON or CSV, so they make their reply themselves.
        Route::SpendLogs => return spend::logs(store, query),
        Route::SpendReport => return spend::report(store, query),
    };
    match done {
        Ok(done) => Reply {
            status: 200,
            body: serde_json::to_vec(&done.value).expect("JSON values serialize"),
            content_type: "application/json",
            changed: done.changed,
        },
        Err(failure) => failure.reply(),
    }
}
