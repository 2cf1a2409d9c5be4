//! The gateway's own embeddings call, for the semantic cache: the last user turn sent to the
//! alias's embeddings alias through that alias's routing (its plan, health and breakers; its
//! targets in order), as an OpenAI embeddings request, within the semantic rule's deadline.
//!
//! Any failure — no target admitted, an upstream error, the deadline — is `None`: the
//! request goes on without the semantic cache. The call's own tokens are the gateway's, not
//! the caller's: they are neither limited nor recorded as the key's spend.

use std::time::{Duration, Instant};

use simd_json::prelude::*;

use super::{Boxed, Ctx, Env, Scratch, attempt, relay};
use crate::config::cache::Semantic;
use crate::providers::Endpoint;
use crate::providers::translate::{self, Wire};
use crate::routing::{Facts, Plan};

/// Embeds `text` with alias `alias`; `None` when that did not work in time.
pub fn embed<'a>(
    env: &'a Env<'a>,
    scratch: &'a mut Scratch,
    ctx: &'a Ctx,
    alias: usize,
    text: &'a str,
    rule: &'a Semantic,
) -> Boxed<'a, Option<Vec<f32>>> {
    Box::pin(async move {
        let deadline = Instant::now() + rule.timeout;
        match monoio::time::timeout(
            rule.timeout,
            call(env, scratch, ctx, alias, text, rule, deadline),
        )
        .await
        {
            Ok(Ok(v)) => Some(v),
            Ok(Err(why)) => {
                log::debug!("semantic cache: no embedding ({why}); going on without it");
                None
            }
            Err(_) => {
                log::debug!(
                    "semantic cache: no embedding within {} ms; going on without it",
                    rule.timeout.as_millis()
                );
                None
            }
        }
    })
}

async fn call(
    env: &Env<'_>,
    scratch: &mut Scratch,
    ctx: &Ctx,
    alias: usize,
    text: &str,
    rule: &Semantic,
    deadline: Instant,
) -> Result<Vec<f32>, String> {
    let snap = env.snapshot;
    let model = &snap.models[alias];
    let mut body = Vec::with_capacity(text.len() + 64);
    body.extend_from_slice(b"{\"model\":");
    crate::json::push_str(&mut body, &model.alias);
    body.extend_from_slice(b",\"input\":");
    crate::json::push_str(&mut body, text);
    if let Some(d) = rule.dimensions {
        body.extend_from_slice(b",\"dimensions\":");
        crate::json::push_u64(&mut body, d);
    }
    body.push(b'}');
    let decoded = scratch.decoder.decode(&body).map_err(|e| e.message)?;
    let mut inner = Ctx::new(env, Some(ctx.id()), false);
    inner.wire = Wire::OpenAi;
    inner.key = ctx.key;
    inner.deadline = Some(deadline);
    let facts = Facts {
        tags: &[],
        user: None,
        team: None,
        prompt_tokens: text.len() as u64 / 4,
        max_tokens: None,
        hash: env.shard.rand(),
    };
    let mut plan = Plan::default();
    env.router.borrow_mut().plan(
        alias,
        model,
        &facts,
        Instant::now(),
        env.shard.rand(),
        &mut plan,
    );
    let call = attempt::Call {
        endpoint: Endpoint::Embeddings,
        body_at: &crate::http::conn::Body::Decoded,
        decoded: &decoded,
        facts,
    };
    let mut last = String::from("no target of the embeddings alias is available");
    for &t in plan.targets() {
        let t = t as usize;
        if !env
            .router
            .borrow_mut()
            .admits(alias, model, t, Instant::now())
        {
            continue;
        }
        let (leg, _) = match attempt::prepare(env, &body, &inner, &call, alias, t, scratch) {
            Ok(l) => l,
            Err(e) => {
                last = e.message;
                continue;
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            break;
        }
        let answer = relay::exchange(env, &mut scratch.upstream, &mut scratch.body, &leg, false);
        let answer = match answer.await {
            Ok(a) => a,
            Err(e) => {
                last = e.message;
                continue;
            }
        };
        relay::finish(env, answer, leg.origin);
        if let relay::Passage::Embed { .. } = leg.passage {
            let adapter = leg.provider.protocol.adapter_for(leg.model);
            scratch.events.clear();
            translate::embed_response(
                adapter,
                &mut scratch.body,
                leg.model,
                false,
                &mut scratch.events,
            )
            .map_err(|e| e.message)?;
            std::mem::swap(&mut scratch.body, &mut scratch.events);
        }
        return vector(scratch, t);
    }
    Err(last)
}

/// The first embedding of an OpenAI embeddings answer in `scratch.body`.
fn vector(scratch: &mut Scratch, target: usize) -> Result<Vec<f32>, String> {
    let Scratch { decoder, body, .. } = scratch;
    let v = decoder.parse(body, |v| {
        let list = v
            .get("data")?
            .as_array()?
            .get(0)?
            .get("embedding")?
            .as_array()?;
        let mut out = Vec::with_capacity(list.len());
        for x in list.iter() {
            out.push(x.cast_f64()? as f32);
        }
        Some(out)
    });
    v.flatten()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("target {target} answered no embedding"))
}
