//! The cache stage, between the limits and routing: a request on an alias with `cache:` on is
//! looked up in the shard's store; a hit is answered here, whole or streamed in the client's
//! protocol, and never routed. A miss the client lets the cache keep leaves a [`Fill`] on the
//! request, which the relay fills with the answer as the client receives it and stores once
//! the answer is complete.

use super::decode::{Decoded, StreamOptions};
use super::{Ctx, Env, Outcome, Scratch};
use crate::auth::Principal;
use crate::cache::{Directives, Fill, Found, Status, key, replay};
use crate::error::GatewayError;
use crate::http::chunked;
use crate::http::conn::Conn;
use crate::http::response::{self, Meta};
use crate::providers::canonical::Stamp;
use crate::providers::translate::Wire;
use crate::providers::{Endpoint, Usage};

/// The cache rule of a request: the alias's, unless its key turns the cache off; a key that
/// turns it on brings its own rule to aliases that have none.
pub fn rule<'a>(
    model: &'a crate::config::Model,
    key: Option<&'a crate::auth::KeyEntry>,
) -> Option<&'a crate::config::cache::CacheRule> {
    match key.map(|k| &k.cache) {
        Some(crate::auth::KeyCache::Off) => None,
        Some(crate::auth::KeyCache::On(own)) => model.cache.as_ref().or(Some(own)),
        _ => model.cache.as_ref(),
    }
}

/// Whose a request's cached answers are: its key's id (`anonymous` without one) and the tenant
/// the rule's scope makes of it.
fn whose<'a>(
    rule: &crate::config::cache::CacheRule,
    key: Option<&'a crate::auth::KeyEntry>,
) -> (&'a str, crate::cache::Tenant<'a>) {
    let key_id = key.map_or("anonymous", |k| &*k.id);
    let team = key.and_then(|k| k.team.as_deref());
    (key_id, crate::cache::tenant(rule.scope, key_id, team))
}

/// What the exact lookup found.
pub enum Looked {
    Hit(replay::Answer),
    Miss,
    /// An exact miss on a semantic alias: the question is embedded next ([`semantic`]).
    Probe(Probe),
}

/// Where a semantic lookup searches, as the exact lookup worked it out.
pub struct Probe {
    /// The alias, targets, protocol, tenant, namespace and context (all but the last turn).
    scope: u128,
    threshold: f32,
    max_age_s: Option<u64>,
}

/// Looks the request up. A hit comes back to serve; on a miss, `ctx.fill` says where to
/// store the answer (unless the client said `no-store`). Every path sets `ctx.cache`, and
/// every path but a probe counts it.
pub fn look(
    env: &Env<'_>,
    ctx: &mut Ctx,
    key_of: Principal,
    endpoint: Endpoint,
    decoded: &Decoded,
    cache_control: Option<&[u8]>,
) -> Looked {
    let snap = env.snapshot;
    let model = &snap.models[ctx.model as usize];
    let entry = env.keys.entry(key_of);
    let (Some(rule), Some(body)) = (rule(model, entry), decoded.digest) else {
        // No cache on the alias: said in the header, not counted.
        ctx.cache = Some(Status::Bypass);
        return Looked::Miss;
    };
    if !endpoint.is_chat() || decoded.many_choices {
        mark(env, ctx, Status::Bypass);
        return Looked::Miss;
    }
    let mut d = decoded
        .cache
        .as_ref()
        .map(|(d, _)| (**d).clone())
        .unwrap_or_default();
    if let Some(v) = cache_control {
        d.header(v);
    }
    let (_, tenant) = whose(rule, entry);
    let group = *model.cache_group.get_or_init(|| {
        let targets = model
            .targets
            .iter()
            .map(|t| (snap.providers[t.provider].name.as_str(), t.model.as_str()));
        key::group(&model.alias, targets)
    });
    let keyed = |body: [u64; 2]| {
        key::key(key::Parts {
            wire: ctx.wire as u8,
            group,
            tenant,
            namespace: d.namespace.as_deref().unwrap_or(""),
            body,
        })
    };
    let k = keyed(body);
    let now = ctx.wall_ms();
    let status = if d.no_cache {
        Status::Bypass
    } else {
        match env
            .shard
            .cache
            .get(k, &model.alias, tenant, now, d.max_age_s, rule)
        {
            Found::Hit(a) => {
                mark(env, ctx, Status::Hit);
                return Looked::Hit(a);
            }
            Found::Miss => Status::Miss,
        }
    };
    let probe = match (&rule.semantic, &decoded.semantic) {
        (Some(sem), Some(split)) if status == Status::Miss => Some(Probe {
            scope: keyed(split.context),
            threshold: d.threshold(sem.threshold),
            max_age_s: d.max_age_s,
        }),
        _ => None,
    };
    match probe {
        // Counted once the semantic lookup knows.
        Some(_) => ctx.cache = Some(status),
        None => mark(env, ctx, status),
    }
    let ttl_ms = ttl_ms(rule.ttl.as_millis() as u64, &d);
    if !d.no_store && ttl_ms > 0 {
        ctx.fill = Some(Fill {
            key: k,
            ttl_ms,
            bytes: Vec::new(),
            // The relay says, once it knows how the upstream answered.
            streamed: false,
            too_large: false,
            semantic: None,
        });
    }
    probe.map_or(Looked::Miss, Looked::Probe)
}

/// Serves a hit, or looks a probe up semantically and serves what it finds; `None`: go on
/// to the upstream. Boxed: only requests on a caching alias carry its state.
pub fn answer<'a>(
    env: &'a Env<'a>,
    conn: &'a mut Conn,
    scratch: &'a mut Scratch,
    ctx: &'a mut Ctx,
    decoded: &'a Decoded,
    looked: Looked,
) -> super::Boxed<'a, Option<Result<Outcome, GatewayError>>> {
    Box::pin(async move {
        let hit = match looked {
            Looked::Hit(hit) => hit,
            Looked::Miss => return None,
            Looked::Probe(probe) => semantic(env, scratch, ctx, decoded, &probe).await?,
        };
        Some(serve(env, conn, scratch, ctx, decoded, hit).await)
    })
}

/// The semantic lookup after an exact miss: the last user turn embedded, the nearest earlier
/// question of the same scope at the threshold or above, and its stored answer. Without an
/// embedding (the call failed or took too long) it is a miss, and the answer is stored for
/// exact hits only.
async fn semantic(
    env: &Env<'_>,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    decoded: &Decoded,
    probe: &Probe,
) -> Option<replay::Answer> {
    let found = nearest(env, scratch, ctx, decoded, probe).await;
    let status = if found.is_some() {
        ctx.fill = None;
        Status::SemanticHit
    } else {
        Status::Miss
    };
    mark(env, ctx, status);
    found
}

async fn nearest(
    env: &Env<'_>,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    decoded: &Decoded,
    probe: &Probe,
) -> Option<replay::Answer> {
    let snap = env.snapshot;
    let model = &snap.models[ctx.model as usize];
    let entry = ctx.key.and_then(|k| env.keys.entry(k));
    let rule = rule(model, entry)?;
    let sem = rule.semantic.as_ref()?;
    let split = decoded.semantic.as_ref()?;
    let (embed_alias, _) = snap.model(&sem.embeddings)?;
    let vector = super::embedding::embed(env, scratch, ctx, embed_alias, &split.text, sem).await?;
    let now = ctx.wall_ms();
    let found = env
        .shard
        .cache
        .nearest(probe.scope, &vector, probe.threshold, now)
        .and_then(|answer| {
            let (_, tenant) = whose(rule, entry);
            match env
                .shard
                .cache
                .get(answer, &model.alias, tenant, now, probe.max_age_s, rule)
            {
                Found::Hit(a) => Some(a),
                Found::Miss => None,
            }
        });
    if found.is_none()
        && let Some(f) = &mut ctx.fill
    {
        f.semantic = Some(Box::new((probe.scope, vector)));
    }
    found
}

/// How long this answer is kept: the alias's TTL, or the client's `ttl` if shorter.
fn ttl_ms(rule_ms: u64, d: &Directives) -> i64 {
    let ms = d
        .ttl_s
        .map_or(rule_ms, |s| s.saturating_mul(1000).min(rule_ms));
    ms.min(i64::MAX as u64) as i64
}

/// Notes what the cache did, for the header and the metrics.
fn mark(env: &Env<'_>, ctx: &mut Ctx, status: Status) {
    ctx.cache = Some(status);
    env.shard
        .metrics
        .borrow_mut()
        .cache(env.alias_label(ctx.model), status);
}

/// Answers a hit: the stored answer in the form the client asked for, with a fresh id and
/// zero usage; no upstream is asked, no spend recorded.
async fn serve(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    decoded: &Decoded,
    mut answer: replay::Answer,
) -> Result<Outcome, GatewayError> {
    ctx.cost = Some(0.0);
    if super::guardrail::checks_answers(env, ctx) {
        // The answer passed the policies of the request that stored it, which need not be
        // this one's (a key's or team's own, or a reload's): checked again as this client
        // would get it whole, and served as the policies leave it.
        let body = &mut scratch.body;
        body.clear();
        replay::write_whole(&answer, ctx.wire, &stamp(env, ctx, &answer), body);
        if let Err(e) = super::guardrail::answer(env, ctx, &mut scratch.decoder, body).await {
            response::error(&mut conn.wbuf, &e, &meta(ctx), ctx.wire);
            conn.flush().await?;
            return Ok(Outcome {
                status: e.status(),
                error: Some(e),
                usage: Some(Usage::default()),
                ..Outcome::default()
            });
        }
        // Redactions keep the JSON whole; should one not read back, nothing is served.
        answer = replay::from_whole(ctx.wire, body).ok_or_else(|| {
            GatewayError::new(
                crate::error::Kind::GuardrailBlocked,
                "the cached answer could not be served as its guardrails left it",
            )
        })?;
    }
    let stamp = stamp(env, ctx, &answer);
    let out = &mut scratch.events;
    out.clear();
    let mut relayed_events = 0;
    if ctx.stream {
        // An OpenAI client asks for stream usage; every other protocol's stream carries it.
        let include_usage = ctx.wire != Wire::OpenAi
            || matches!(decoded.stream_options, StreamOptions::IncludeUsage);
        replay::write_stream(&answer, ctx.wire, &stamp, include_usage, out);
        relayed_events = memchr::memmem::find_iter(out, b"\n\n").count() as u64;
        response::head(&mut conn.wbuf, 200, response::SSE, None, &meta(ctx), &[]);
        chunked::frame(&mut conn.wbuf, out);
        conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
    } else {
        replay::write_whole(&answer, ctx.wire, &stamp, out);
        response::full(
            &mut conn.wbuf,
            200,
            response::JSON,
            out,
            &meta(ctx),
            &[("x-shardgate-cost", b"0.00000000")],
        );
    }
    conn.flush().await?;
    Ok(Outcome {
        status: 200,
        usage: Some(Usage::default()),
        relayed_events,
        ..Outcome::default()
    })
}

/// A hit's fresh id and time, and the model its answer reported (the alias if none).
fn stamp<'a>(env: &'a Env<'_>, ctx: &'a Ctx, answer: &'a replay::Answer) -> Stamp<'a> {
    let reported = match answer.model.as_ref() {
        "" => env.snapshot.models[ctx.model as usize].alias.as_str(),
        m => m,
    };
    Stamp {
        model: reported,
        created: super::attempt::unix_now(),
        default_max_tokens: 0,
        id: ctx.id_str(),
    }
}

fn meta(ctx: &Ctx) -> Meta<'_> {
    Meta {
        request_id: ctx.id(),
        keep_alive: ctx.keep_alive,
        timing: Some((ctx.elapsed_us(), None)),
        route: None,
        rates: ctx.rates.as_ref(),
        cache: ctx.cache.map(Status::header),
        guardrails: super::guardrail::logged(ctx),
    }
}

/// Stores the answer once it reached the client complete: a whole one as it went out
/// (`whole`), a stream as the relay recorded it; under the alias and tenant the lookup keyed
/// it by (the same key table, so the same tenant).
pub fn store(env: &Env<'_>, ctx: &mut Ctx, whole: Option<&[u8]>) {
    let Some(f) = ctx.fill.take() else { return };
    let model = &env.snapshot.models[ctx.model as usize];
    let entry = ctx.key.and_then(|k| env.keys.entry(k));
    let Some(rule) = rule(model, entry) else {
        return;
    };
    let (key_id, tenant) = whose(rule, entry);
    let owner = crate::cache::Owner {
        alias: &model.alias,
        wire: ctx.wire,
        tenant,
        key_id,
    };
    env.shard
        .cache
        .put(f, whole, owner, ctx.wall_ms(), &env.snapshot.cache);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_shorten_the_ttl_but_not_lengthen_it() {
        let d = |ttl_s| Directives {
            ttl_s,
            ..Directives::default()
        };
        assert_eq!(ttl_ms(60_000, &d(None)), 60_000);
        assert_eq!(ttl_ms(60_000, &d(Some(5))), 5_000);
        assert_eq!(ttl_ms(60_000, &d(Some(600))), 60_000);
        assert_eq!(ttl_ms(60_000, &d(Some(0))), 0);
    }
}
