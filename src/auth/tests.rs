use super::*;

fn spec(id: &str, secret: &str) -> KeySpec {
    KeySpec {
        id: id.into(),
        name: id.into(),
        hash: digest(secret.as_bytes()),
        ..KeySpec::default()
    }
}

fn kind(r: Result<Principal, GatewayError>) -> (Kind, String) {
    let e = r.unwrap_err();
    (e.kind, e.message.to_string())
}

#[test]
fn resolves_known_keys_and_rejects_others() {
    let (t, refused) = KeyTable::build(vec![spec("a", "sk-a"), spec("b", "sk-b")], true);
    assert!(refused.is_empty() && !t.is_open());
    assert_eq!(t.authenticate(Some(b"sk-a"), 0), Ok(Principal::Key(0)));
    assert_eq!(t.authenticate(Some(b"sk-b"), 0), Ok(Principal::Key(1)));
    assert_eq!(kind(t.authenticate(Some(b"sk-c"), 0)).0, Kind::Unauthorized);
    assert_eq!(kind(t.authenticate(None, 0)).0, Kind::Unauthorized);
    assert_eq!(kind(t.authenticate(Some(b""), 0)).0, Kind::Unauthorized);
}

#[test]
fn model_allow_lists_of_key_and_team_both_apply() {
    let mut s = spec("a", "sk-a");
    s.models = Some(vec!["x".into(), "y".into()]);
    s.team_models = Some(vec!["y".into(), "z".into()]);
    let (t, _) = KeyTable::build(vec![s, spec("b", "sk-b")], false);
    assert!(t.may_use(Principal::Key(0), "y"));
    assert!(!t.may_use(Principal::Key(0), "x") && !t.may_use(Principal::Key(0), "z"));
    assert!(t.may_use(Principal::Key(1), "anything"));
    assert!(t.may_use(Principal::Anonymous, "anything"));
}

#[test]
fn blocked_expired_and_rotated_keys_say_why() {
    let mut blocked = spec("blocked", "sk-1");
    blocked.blocked = true;
    let mut team = spec("team", "sk-2");
    (team.team, team.team_blocked) = (Some("t1".into()), true);
    let mut expired = spec("expired", "sk-3");
    expired.expires_ms = Some(1_000);
    let mut rotated = spec("rotated", "sk-new");
    rotated.previous = Some((digest(b"sk-old"), 5_000));
    let (t, _) = KeyTable::build(vec![blocked, team, expired, rotated], false);
    assert!(kind(t.authenticate(Some(b"sk-1"), 0)).1.contains("blocked"));
    assert!(
        kind(t.authenticate(Some(b"sk-2"), 0))
            .1
            .contains("team \"t1\"")
    );
    assert_eq!(t.authenticate(Some(b"sk-3"), 999), Ok(Principal::Key(2)));
    let (k, msg) = kind(t.authenticate(Some(b"sk-3"), 1_000));
    assert_eq!(k, Kind::Unauthorized);
    assert_eq!(msg, "this API key expired at 1970-01-01T00:00:01Z");
    assert_eq!(
        t.authenticate(Some(b"sk-old"), 4_999),
        Ok(Principal::Key(3))
    );
    assert!(
        kind(t.authenticate(Some(b"sk-old"), 5_000))
            .1
            .contains("rotated")
    );
    assert_eq!(
        t.authenticate(Some(b"sk-new"), 9_999),
        Ok(Principal::Key(3))
    );
}

#[test]
fn open_only_without_any_key_and_colliding_secrets_are_refused() {
    let (open, _) = KeyTable::build(Vec::new(), true);
    assert_eq!(open.authenticate(None, 0), Ok(Principal::Anonymous));
    let (closed, _) = KeyTable::build(Vec::new(), false);
    assert_eq!(kind(closed.authenticate(None, 0)).0, Kind::Unauthorized);
    let (t, refused) = KeyTable::build(vec![spec("a", "x"), spec("b", "x")], true);
    assert_eq!((t.len(), refused), (1, vec!["b".to_owned()]));
}

#[test]
fn last_used_is_recorded_in_seconds() {
    let (t, _) = KeyTable::build(vec![spec("a", "sk-a")], false);
    t.authenticate(Some(b"sk-a"), 42_500).unwrap();
    assert_eq!(t.entries()[0].last_used_s(), 42);
    t.authenticate(Some(b"sk-a"), 41_000).unwrap();
    assert_eq!(t.entries()[0].last_used_s(), 42, "never goes back");
}

#[test]
fn guardrails_are_the_keys_then_the_teams_each_once() {
    let mut s = spec("a", "sk-a");
    s.team = Some("t".into());
    s.guardrails = vec!["pii".into(), "jailbreak".into()];
    s.team_guardrails = vec!["toxicity".into(), "pii".into(), "jailbreak".into()];
    let mut team_only = spec("b", "sk-b");
    team_only.team_guardrails = vec!["pii".into()];
    let (t, _) = KeyTable::build(vec![s, team_only, spec("c", "sk-c")], false);
    let names =
        |i: usize| -> Vec<&str> { t.entries()[i].guardrails.iter().map(|n| &**n).collect() };
    assert_eq!(names(0), ["pii", "jailbreak", "toxicity"]);
    assert_eq!(names(1), ["pii"]);
    assert!(names(2).is_empty());
}

#[test]
fn the_cache_setting_is_carried_and_follows_by_default() {
    use crate::config::cache::{CacheRule, Scope};
    let mut off = spec("off", "sk-1");
    off.cache = KeyCache::Off;
    let mut on = spec("on", "sk-2");
    let rule = CacheRule {
        scope: Scope::Team,
        ..CacheRule::default()
    };
    on.cache = KeyCache::On(rule.clone());
    let (t, _) = KeyTable::build(vec![off, on, spec("plain", "sk-3")], false);
    assert_eq!(t.entries()[0].cache, KeyCache::Off);
    assert_eq!(t.entries()[1].cache, KeyCache::On(rule));
    assert_eq!(t.entries()[2].cache, KeyCache::Follow);
}
