//! The `/team/*` endpoints: new, update, delete, info, list.
//!
//! A team's model list bounds its keys' (checked when a key is made or moved, not when the team
//! narrows: the request path enforces both lists). A team's guardrail policies run after its
//! keys' own; names are checked for form only. Deleting a team deletes its keys.

use serde_json::{Value, json};

use super::failure::Failure;
use super::fields::{Body, LIMIT_FIELDS};
use super::query::Query;
use super::{Context, Done, view};
use crate::store::{KeyFilter, Reader, Store, TeamSpec};

const SPEC_FIELDS: [&str; 5] = ["team_alias", "models", "metadata", "blocked", "guardrails"];

fn fields() -> Vec<&'static str> {
    ["team_id"]
        .iter()
        .chain(&SPEC_FIELDS)
        .chain(&LIMIT_FIELDS)
        .copied()
        .collect()
}

fn apply(body: &Body, spec: &mut TeamSpec, cx: &Context) -> Result<(), Failure> {
    if let Some(v) = body.text("team_alias")? {
        spec.alias = v;
    }
    if let Some(v) = body.models("models", cx.aliases)? {
        spec.models = v;
    }
    if let Some(v) = body.object("metadata")? {
        spec.metadata = v;
    }
    if let Some(v) = body.flag("blocked")? {
        spec.blocked = v;
    }
    if let Some(v) = body.guardrails("guardrails")? {
        spec.guardrails = v;
    }
    body.apply_limits(&mut spec.limits, cx.aliases)
}

/// `own`: the team being updated.
fn alias_free(r: &Reader, body: &Body, spec: &TeamSpec, own: Option<&str>) -> Result<(), Failure> {
    if body.has("team_alias")
        && let Some(alias) = &spec.alias
        && let Some(other) = r.team_by_alias(alias)?
        && Some(other.id.as_str()) != own
    {
        let message = format!("team_alias {alias:?} is already used by team {}", other.id);
        return Err(Failure::conflict("duplicate_alias", "team_alias", message));
    }
    Ok(())
}

fn no_team(param: &str, id: &str) -> Failure {
    Failure::not_found(
        "team_not_found",
        Some(param),
        format!("{param}: no team {id:?}"),
    )
}

pub(super) fn new(store: &mut Store, cx: &Context, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/team/new", &fields())?;
    let id = body.text("team_id")?.flatten();
    let mut spec = TeamSpec::default();
    apply(&body, &mut spec, cx)?;
    let row = store.write(|w| {
        if let Some(id) = &id
            && w.team(id)?.is_some()
        {
            let message = format!("team_id {id:?} is already taken");
            return Err(Failure::conflict("duplicate_id", "team_id", message));
        }
        alias_free(w, &body, &spec, None)?;
        Ok(w.insert_team(id.as_deref(), &spec, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::team(&row)))
}

pub(super) fn update(store: &mut Store, cx: &Context, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/team/update", &fields())?;
    let id = body.required("team_id")?;
    let row = store.write(|w| {
        let row = w.team(&id)?.ok_or_else(|| no_team("team_id", &id))?;
        let mut spec = row.spec.clone();
        apply(&body, &mut spec, cx)?;
        alias_free(w, &body, &spec, Some(&row.id))?;
        Ok::<_, Failure>(w.update_team(&row.id, &spec, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::team(&row)))
}

pub(super) fn delete(store: &mut Store, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/team/delete", &["team_ids"])?;
    let mut ids = body.strings("team_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Failure::field("team_ids", "give team_ids to delete"));
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let keys = store.write(|w| {
        for id in &ids {
            if w.team(id)?.is_none() {
                return Err(no_team("team_ids", id));
            }
        }
        Ok::<_, Failure>(w.delete_teams(&ids)?)
    })?;
    Ok(Done::wrote(
        json!({ "deleted_teams": ids, "deleted_keys": keys }),
    ))
}

pub(super) fn info(store: &Store, query: &str) -> Result<Done, Failure> {
    let query = Query::parse(query, "/team/info", &["team_id"])?;
    let id = query.required("team_id")?;
    let reader = store.reader();
    let team = reader.team(id)?.ok_or_else(|| no_team("team_id", id))?;
    let filter = KeyFilter {
        team_id: Some(id),
        alias: None,
    };
    let keys: Vec<Value> = reader
        .keys(filter, 0, u64::MAX)?
        .iter()
        .map(view::key)
        .collect();
    Ok(Done::read(json!({
        "team_id": team.id,
        "team_info": view::team(&team),
        "keys": keys,
    })))
}

pub(super) fn list(store: &Store, query: &str) -> Result<Done, Failure> {
    Query::parse(query, "/team/list", &[])?;
    let teams: Vec<Value> = store.reader().teams()?.iter().map(view::team).collect();
    Ok(Done::read(Value::Array(teams)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::Harness;

    #[test]
    fn new_team_with_every_field() {
        let mut h = Harness::new();
        let v = h.post(
            "/team/new",
            json!({
                "team_id": "research", "team_alias": "Research", "models": ["gpt", "claude"],
                "metadata": {"dept": 4}, "tpm_limit": 1000, "budget_duration": "30d",
                "model_max_budget": {"gpt": 12.5}
            }),
        );
        assert_eq!(v["team_id"], "research");
        assert_eq!(v["team_alias"], "Research");
        assert_eq!(v["models"], json!(["gpt", "claude"]));
        assert_eq!(v["metadata"], json!({"dept": 4}));
        assert_eq!((&v["blocked"], &v["spend"]), (&json!(false), &json!(0.0)));
        assert_eq!(
            (&v["tpm_limit"], &v["rpm_limit"]),
            (&json!(1000), &json!(null))
        );
        assert_eq!(v["budget_duration"], "30d");
        assert_eq!(v["model_max_budget"], json!({"gpt": 12.5}));
        assert_eq!(v["created_at"], "2025-12-02T15:04:05Z");
        let generated = h.post("/team/new", json!({}));
        let id = generated["team_id"].as_str().unwrap();
        assert!(id.starts_with("team_") && id.len() == 25, "{id}");
    }

    #[test]
    fn new_team_refusals() {
        let mut h = Harness::new();
        h.post("/team/new", json!({"team_id": "t", "team_alias": "T"}));
        let r = h.refuse("/team/new", json!({"team_id": "t"}));
        r.is(409, "duplicate_id", Some("team_id"));
        h.refuse("/team/new", json!({"team_alias": "T"})).is(
            409,
            "duplicate_alias",
            Some("team_alias"),
        );
        h.refuse("/team/new", json!({"models": ["gpt-9"]})).is(
            400,
            "unknown_model",
            Some("models"),
        );
        h.refuse("/team/new", json!({"team_id": 5}))
            .is(400, "invalid_field", Some("team_id"));
        h.refuse("/team/new", json!({"max_parallel_requests": -1}))
            .is(400, "invalid_field", Some("max_parallel_requests"));
        h.refuse("/team/new", json!({"members": []}))
            .is(400, "unknown_field", Some("members"));
    }

    #[test]
    fn update_team_and_its_keys_see_it() {
        let mut h = Harness::new();
        h.post(
            "/team/new",
            json!({"team_id": "t", "team_alias": "T", "models": ["gpt"]}),
        );
        h.post("/team/new", json!({"team_id": "u", "team_alias": "U"}));
        let (key, _) = h.key(json!({"team_id": "t"}));
        h.now_ms += 1000;
        let v = h.post(
            "/team/update",
            json!({"team_id": "t", "blocked": true, "models": ["gpt", "mini"]}),
        );
        assert_eq!(
            (&v["blocked"], &v["team_alias"]),
            (&json!(true), &json!("T"))
        );
        assert_eq!(v["updated_at"], "2025-12-02T15:04:06Z");
        let rec = h.record(&key);
        assert!(rec.team_blocked && !rec.blocked);
        assert_eq!(rec.team_models, ["gpt", "mini"]);
        h.post("/team/update", json!({"team_id": "t", "team_alias": "T"}));
        h.refuse("/team/update", json!({"team_id": "t", "team_alias": "U"}))
            .is(409, "duplicate_alias", Some("team_alias"));
        h.refuse("/team/update", json!({"team_id": "ghost"})).is(
            404,
            "team_not_found",
            Some("team_id"),
        );
        h.refuse("/team/update", json!({"blocked": false})).is(
            400,
            "invalid_field",
            Some("team_id"),
        );
    }

    #[test]
    fn team_guardrails_are_set_shown_and_reach_their_keys() {
        let mut h = Harness::new();
        let v = h.post(
            "/team/new",
            json!({"team_id": "t", "guardrails": ["pii", "toxicity", "pii"]}),
        );
        assert_eq!(v["guardrails"], json!(["pii", "toxicity"]));
        assert!(v.get("cache").is_none(), "cache is a key's setting");
        let (key, _) = h.key(json!({"team_id": "t", "guardrails": ["jailbreak"]}));
        let rec = h.record(&key);
        assert_eq!(
            (rec.guardrails, rec.team_guardrails),
            (
                vec!["jailbreak".to_owned()],
                vec!["pii".to_owned(), "toxicity".to_owned()]
            )
        );
        let v = h.post(
            "/team/update",
            json!({"team_id": "t", "metadata": {"a": 1}}),
        );
        assert_eq!(v["guardrails"], json!(["pii", "toxicity"]), "absent: kept");
        h.post(
            "/team/update",
            json!({"team_id": "t", "guardrails": ["pii.v2"]}),
        );
        assert_eq!(h.record(&key).team_guardrails, ["pii.v2"]);
        let info = h.get("/team/info?team_id=t");
        assert_eq!(info["team_info"]["guardrails"], json!(["pii.v2"]));
        assert_eq!(info["keys"][0]["guardrails"], json!(["jailbreak"]));
        assert_eq!(h.get("/team/list")[0]["guardrails"], json!(["pii.v2"]));
        let v = h.post("/team/update", json!({"team_id": "t", "guardrails": null}));
        assert_eq!(v["guardrails"], json!([]));
        assert!(h.record(&key).team_guardrails.is_empty());
        h.refuse("/team/new", json!({"guardrails": ["a/b"]})).is(
            400,
            "invalid_field",
            Some("guardrails"),
        );
        h.refuse("/team/update", json!({"team_id": "t", "guardrails": [7]}))
            .is(400, "invalid_field", Some("guardrails"));
        h.refuse("/team/new", json!({"cache": false}))
            .is(400, "unknown_field", Some("cache"));
    }

    #[test]
    fn delete_takes_the_teams_keys_all_or_nothing() {
        let mut h = Harness::new();
        h.post("/team/new", json!({"team_id": "t"}));
        h.post("/team/new", json!({"team_id": "u"}));
        let (k1, _) = h.key(json!({"team_id": "t"}));
        let (k2, _) = h.key(json!({"team_id": "t"}));
        let (k3, _) = h.key(json!({"team_id": "u"}));
        let r = h.refuse("/team/delete", json!({"team_ids": ["t", "ghost"]}));
        r.is(404, "team_not_found", Some("team_ids"));
        assert!(r.message.contains("ghost"));
        h.refuse("/team/delete", json!({}))
            .is(400, "invalid_field", Some("team_ids"));
        let v = h.post("/team/delete", json!({"team_ids": ["t"]}));
        assert_eq!(v, json!({"deleted_teams": ["t"], "deleted_keys": [k1, k2]}));
        let left: Vec<_> = h
            .store
            .key_records()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, [k3]);
        assert_eq!(h.get("/team/list").as_array().unwrap().len(), 1);
    }

    #[test]
    fn info_and_list() {
        let mut h = Harness::new();
        h.post("/team/new", json!({"team_id": "t", "team_alias": "T"}));
        h.post("/team/new", json!({"team_id": "u"}));
        let (k, _) = h.key(json!({"team_id": "t"}));
        h.key(json!({}));
        let v = h.get("/team/info?team_id=t");
        assert_eq!(
            (&v["team_id"], &v["team_info"]["team_alias"]),
            (&json!("t"), &json!("T"))
        );
        let keys = v["keys"].as_array().unwrap();
        assert_eq!((keys.len(), &keys[0]["key_id"]), (1, &json!(k)));
        h.refused("GET", "/team/info?team_id=ghost", "")
            .is(404, "team_not_found", Some("team_id"));
        h.refused("GET", "/team/info", "")
            .is(400, "invalid_field", Some("team_id"));
        let list = h.get("/team/list");
        let ids: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_id"].clone())
            .collect();
        assert_eq!(ids, [json!("t"), json!("u")]);
        h.refused("GET", "/team/list?page=2", "")
            .is(400, "unknown_field", Some("page"));
    }
}
