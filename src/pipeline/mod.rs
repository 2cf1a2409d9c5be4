//! The request pipeline. One function per ingress protocol (`openai::run`, `anthropic::run`)
//! runs the stages in order:
//!
//! 1. accept     — `http::conn` read the head (bounded); the clock started
//! 2. route path — which endpoint, or 404/405
//! 3. authenticate — the bearer key → a principal (401)
//! 4. decode     — the body, once, with simd-json into the connection's arena (400/413)
//! 5. admit      — the alias exists (404) and the key may use it (403)
//! 6. route      — the alias → a plan of targets, tried in order within the retry budget and
//!    the request's deadline, with fallback aliases after (`attempt`)
//! 7. attempt    — the client's bytes spliced, or translated across protocols; the pooled
//!    client sends them; a hedged alias may race two targets (`hedge`)
//! 8. relay      — JSON back whole, or SSE events forwarded as they arrive
//! 9. settle     — always: metrics, one access-log line
//!
//! Every stage returns a value or a [`GatewayError`]; only `handle` turns errors into responses
//! (in the ingress's own error shape), and only `settle` records them.

mod anthropic;
mod attempt;
mod cached;
pub mod decode;
mod embedding;
mod gemini;
pub mod guardrail;
mod hedge;
mod limit;
mod openai;
mod relay;
mod responses;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::auth::{KeyTable, Principal};
use crate::config::Snapshot;
use crate::error::{GatewayError, Kind};
use crate::http::conn::Conn;
use crate::http::request::Head;
use crate::http::response::{self, Meta};
use crate::observe::log::Record;
use crate::observe::metrics::{NONE, Sample};
use crate::providers::Usage;
use crate::providers::translate::Wire;
use crate::routing::Router;
use crate::runtime::shard::Shard;

/// A stage's future, boxed where it is made: only a request that takes the stage carries its
/// state, and the caller's future holds one pointer (boxing at the `.await` would not keep
/// the unboxed future out of the caller's state).
pub type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// What a request's stages read: the generation and key table it took at its start (so a
/// reload or key change mid-request cannot mix two of either), and the shard's own services
/// (metrics, access log, ids, scratch pool).
pub struct Env<'a> {
    pub shard: &'a Shard,
    pub snapshot: &'a Snapshot,
    pub router: &'a RefCell<Router>,
    pub upstream: &'a crate::upstream::Client,
    pub keys: &'a KeyTable,
}

impl Env<'_> {
    /// The stable metric label of alias `model` (an index into this generation).
    pub fn alias_label(&self, model: u32) -> u32 {
        self.snapshot
            .labels
            .alias
            .get(model as usize)
            .copied()
            .unwrap_or(NONE)
    }

    /// The stable metric label of target `t` of alias `model`.
    pub fn target_label(&self, model: usize, t: usize) -> u32 {
        self.snapshot.labels.target[model][t]
    }
}

/// Serves one request; returns whether the connection may serve another. The request takes
/// the shard's current generation and key table here, once.
pub async fn handle(shard: &Shard, conn: &mut Conn, scratch: &mut Scratch, head: Head) -> bool {
    let generation = shard.generation();
    let keys = shard.keys();
    let env = Env {
        shard,
        snapshot: &generation.config,
        router: &generation.router,
        upstream: &generation.upstream,
        keys: &keys,
    };
    serve(&env, conn, scratch, head).await
}

async fn serve(env: &Env<'_>, conn: &mut Conn, scratch: &mut Scratch, head: Head) -> bool {
    let path = &conn.rbuf[head.path.clone()];
    let wire = if anthropic::is_own(path) {
        Wire::Anthropic
    } else if gemini::is_own(path) {
        Wire::Gemini
    } else if responses::is_own(path) {
        Wire::Responses
    } else {
        Wire::OpenAi
    };
    let client_id = head.request_id.clone().map(|r| &conn.rbuf[r]);
    let mut ctx = Ctx::new(env, client_id, head.keep_alive);
    ctx.wire = wire;
    #[cfg(debug_assertions)]
    env.shard.inject_fault(&conn.rbuf[head.path.clone()]);
    // The caller counted this request in flight already.
    let result = if env.shard.inflight() > env.snapshot.server.max_inflight as i64 {
        Err(overloaded(env))
    } else {
        match wire {
            Wire::OpenAi => openai::run(env, conn, scratch, &head, &mut ctx).await,
            Wire::Anthropic => anthropic::run(env, conn, scratch, &head, &mut ctx).await,
            Wire::Gemini => gemini::run(env, conn, scratch, &head, &mut ctx).await,
            Wire::Responses => responses::run(env, conn, scratch, &head, &mut ctx).await,
        }
    };
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            if !ctx.body_read {
                // The body was never read: the connection cannot be reused safely.
                ctx.keep_alive = false;
                conn.mark_unframed();
            }
            if e.kind != Kind::ClientDisconnected {
                let meta = Meta {
                    request_id: ctx.id(),
                    keep_alive: ctx.keep_alive,
                    timing: None,
                    route: ctx.route(env.snapshot),
                    rates: ctx.rates.as_ref(),
                    cache: ctx.cache.map(crate::cache::Status::header),
                    guardrails: guardrail::logged(&ctx),
                };
                response::error(&mut conn.wbuf, &e, &meta, wire);
                if conn.flush().await.is_err() {
                    ctx.keep_alive = false;
                }
            } else {
                ctx.keep_alive = false;
            }
            Outcome {
                status: e.status(),
                error: Some(e),
                ..Outcome::default()
            }
        }
    };
    let used = limit::settle(env, &mut ctx, &outcome, &scratch.charges);
    scratch.charges = crate::limits::Charges::default();
    settle(env, &ctx, &conn.rbuf[head.path.clone()], &outcome, used);
    ctx.keep_alive
}

/// The in-flight cap's refusal: the body is not read, so the connection closes after it.
fn overloaded(env: &Env<'_>) -> GatewayError {
    GatewayError::new(
        Kind::Overloaded,
        format!(
            "the gateway is at its limit of {} requests in flight per shard; retry shortly",
            env.snapshot.server.max_inflight
        ),
    )
    .retry_after(Some(1))
}

/// Buffers the pipeline reuses across requests. A connection borrows one from its shard's pool
/// for the length of a request, so idle keep-alive connections hold none.
#[derive(Default)]
pub struct Scratch {
    pub decoder: decode::Decoder,
    /// The upstream request being built and sent.
    pub upstream: Vec<u8>,
    /// Upstream response bytes.
    pub body: Vec<u8>,
    /// SSE events to forward in the next write.
    pub events: Vec<u8>,
    /// What the limits stage charged, for settle to reconcile (here, not in the request's
    /// future: most requests of a limited key carry a dozen charges).
    pub charges: crate::limits::Charges,
}

impl Scratch {
    /// Largest buffer a pooled scratch keeps; one huge request does not pin its memory.
    const KEEP: usize = 256 * 1024;

    /// Gives back space a large request needed, before the scratch returns to the pool.
    pub fn trim(&mut self) {
        for buf in [&mut self.upstream, &mut self.body, &mut self.events] {
            buf.clear();
            if buf.capacity() > Self::KEEP {
                *buf = Vec::new();
            }
        }
        self.charges = crate::limits::Charges::default();
        if self.decoder.retained_bytes() > Self::KEEP {
            self.decoder = decode::Decoder::default();
        }
    }
}

/// What the stages learn about a request; `settle` reports it.
pub struct Ctx {
    pub start: Instant,
    id: [u8; 128],
    id_len: usize,
    pub key: Option<Principal>,
    pub model: u32,
    pub provider: u32,
    pub target: u32,
    pub stream: bool,
    pub keep_alive: bool,
    pub body_read: bool,
    /// The protocol the client speaks (which error and stream shapes it gets).
    pub wire: Wire,
    /// Request fields a translation could not carry, for the `x-shardgate-dropped` header.
    pub dropped: String,
    /// The alias whose target served (the requested one, or a fallback).
    pub served_model: u32,
    /// Upstream attempts made, and the first few of them for the access log.
    pub attempts: u8,
    /// When the first attempt began: from then on the request waits on upstreams (failed
    /// attempts, backoff and a hedge's head start are not the gateway's own time).
    pub upstream_since: Option<Instant>,
    /// When the whole request (every attempt, backoff and fallback) must be over.
    pub deadline: Option<Instant>,
    tried: [Tried; MAX_LOGGED_ATTEMPTS],
    /// Fallback aliases skipped because the key may not use them, for the access log.
    not_allowed: [u32; MAX_SKIPPED],
    not_allowed_len: usize,
    /// The rate-limit headers every response of this request carries.
    pub rates: Option<crate::http::response::Rates>,
    /// The served answer's cost (USD), once known; `None` when unpriced or not served.
    pub cost: Option<f64>,
    /// Prompt tokens as estimated from the body (a cut stream settles with it).
    pub prompt_estimate: u64,
    /// The request's end user (`user` / `metadata.user_id`), for the ledger.
    pub end_user: Option<Box<str>>,
    /// The wall clock as first read for this request (0: not read yet): expiry, limit windows
    /// and the ledger's time all take this one reading.
    wall_ms: std::cell::Cell<i64>,
    /// What the response cache did (`None`: the request never got that far).
    pub cache: Option<crate::cache::Status>,
    /// The answer to store once the client has it whole (a miss the cache may keep).
    pub fill: Option<crate::cache::Fill>,
    /// The guardrails that apply and their verdicts (`None`: none apply).
    pub guard: Option<Box<guardrail::Record>>,
    /// Cluster mode: the limits refused this request for want of this replica's share, which
    /// control may top up from the shared pool within a few milliseconds.
    pub share_short: bool,
}

/// Skipped fallbacks the access log lists.
const MAX_SKIPPED: usize = 8;

/// How many attempts the access log lists (later ones are counted, not listed).
const MAX_LOGGED_ATTEMPTS: usize = 8;

/// One upstream attempt, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct Tried {
    pub model: u32,
    pub target: u16,
    /// `None` when it served; else the error kind's code, or `cancelled` for a lost hedge.
    pub result: Option<&'static str>,
    pub us: u64,
}

impl Ctx {
    pub fn id(&self) -> &[u8] {
        &self.id[..self.id_len]
    }

    /// The request id as text (empty should a client's id not be UTF-8).
    pub fn id_str(&self) -> &str {
        std::str::from_utf8(self.id()).unwrap_or_default()
    }

    fn new(env: &Env<'_>, client_id: Option<&[u8]>, keep_alive: bool) -> Ctx {
        let mut ctx = Ctx {
            start: Instant::now(),
            id: [0; 128],
            id_len: 0,
            key: None,
            model: NONE,
            provider: NONE,
            target: 0,
            stream: false,
            keep_alive: keep_alive && !env.shard.draining.get(),
            body_read: false,
            wire: Wire::OpenAi,
            dropped: String::new(),
            served_model: NONE,
            attempts: 0,
            upstream_since: None,
            deadline: None,
            tried: [Tried {
                model: NONE,
                target: 0,
                result: None,
                us: 0,
            }; MAX_LOGGED_ATTEMPTS],
            not_allowed: [NONE; MAX_SKIPPED],
            not_allowed_len: 0,
            rates: None,
            cost: None,
            prompt_estimate: 0,
            end_user: None,
            wall_ms: std::cell::Cell::new(0),
            cache: None,
            fill: None,
            guard: None,
            share_short: false,
        };
        match client_id {
            Some(id) => {
                ctx.id[..id.len()].copy_from_slice(id);
                ctx.id_len = id.len();
            }
            None => {
                let mut buf = [0u8; 32];
                let n = env.shard.request_id(&mut buf);
                ctx.id[..n].copy_from_slice(&buf[..n]);
                ctx.id_len = n;
            }
        }
        ctx
    }

    /// Unix milliseconds, read once per request (see `wall_ms`).
    pub fn wall_ms(&self) -> i64 {
        if self.wall_ms.get() == 0 {
            self.wall_ms.set(crate::auth::now_ms());
        }
        self.wall_ms.get()
    }

    pub fn elapsed_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Time left before the request's deadline, if it has one.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Microseconds waited on upstreams so far: since the serving request was `sent` when it
    /// is the only attempt, else since the first attempt began.
    pub fn upstream_us(&self, sent: Instant) -> u64 {
        let since = match self.upstream_since {
            Some(first) if self.attempts > 1 => first,
            _ => sent,
        };
        since.elapsed().as_micros() as u64
    }

    /// Counts an upstream attempt as it starts (its response head reports the count);
    /// returns its slot for [`Ctx::tried`].
    pub fn begin_attempt(&mut self) -> usize {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts as usize - 1
    }

    /// Records how the attempt in `slot` ended, for the access log.
    pub fn tried(&mut self, slot: usize, t: Tried) {
        if let Some(s) = self.tried.get_mut(slot) {
            *s = t;
        }
    }

    /// Notes a fallback alias the key may not use (skipped), for the access log.
    pub fn skip_not_allowed(&mut self, alias: usize) {
        if let Some(slot) = self.not_allowed.get_mut(self.not_allowed_len) {
            *slot = alias as u32;
            self.not_allowed_len += 1;
        }
    }

    fn tried_list(&self) -> &[Tried] {
        &self.tried[..(self.attempts as usize).min(MAX_LOGGED_ATTEMPTS)]
    }

    /// The routing headers' values: the target that served (or failed last), and attempts.
    pub fn route<'s>(&self, snap: &'s crate::config::Snapshot) -> Option<(&'s str, u8)> {
        if self.attempts == 0 || self.served_model == NONE {
            return None;
        }
        let m = &snap.models[self.served_model as usize];
        Some((
            m.targets.get(self.target as usize)?.name.as_str(),
            self.attempts,
        ))
    }
}

/// How a request ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: u16,
    pub error: Option<GatewayError>,
    pub usage: Option<Usage>,
    pub upstream_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    /// SSE events forwarded to the client (a cut stream's usage is estimated from them).
    pub relayed_events: u64,
}

/// What routing rules match on, copied out of the request buffer (which the relay then needs
/// mutably): the `x-shardgate-tags` header and the end user, bounded, on the stack.
pub struct RouteFacts {
    tags: [u8; 256],
    tags_len: usize,
    user: [u8; 128],
    user_len: usize,
    pub(super) prompt_tokens: u64,
    pub(super) max_tokens: Option<u64>,
    hash: u64,
}

impl RouteFacts {
    /// The end user the request named, if any.
    pub(super) fn user(&self) -> Option<&str> {
        std::str::from_utf8(&self.user[..self.user_len])
            .ok()
            .filter(|u| !u.is_empty())
    }

    pub fn facts<'a>(&'a self, ctx: &Ctx, keys: &'a KeyTable) -> crate::routing::Facts<'a> {
        crate::routing::Facts {
            tags: &self.tags[..self.tags_len],
            user: std::str::from_utf8(&self.user[..self.user_len])
                .ok()
                .filter(|u| !u.is_empty()),
            // A rule's `team` matches the key's team, or the key's name when it has none.
            team: ctx.key.map(|k| keys.team(k).unwrap_or(keys.name(k))),
            prompt_tokens: self.prompt_tokens,
            max_tokens: self.max_tokens,
            hash: self.hash,
        }
    }
}

/// Gathers the routing facts of a decoded request.
fn route_facts(
    env: &Env<'_>,
    conn: &Conn,
    head: &Head,
    body_at: &crate::http::conn::Body,
    decoded: &decode::Decoded,
) -> RouteFacts {
    let mut f = RouteFacts {
        tags: [0; 256],
        tags_len: 0,
        user: [0; 128],
        user_len: 0,
        // About four bytes a token: a rough size for rules and cost estimates.
        prompt_tokens: conn.body(body_at).len() as u64 / 4,
        max_tokens: decoded.max_tokens,
        hash: env.shard.rand(),
    };
    if let Some(r) = head.tags.clone() {
        let t = &conn.rbuf[r];
        f.tags_len = t.len().min(f.tags.len());
        f.tags[..f.tags_len].copy_from_slice(&t[..f.tags_len]);
    }
    if let Some(r) = decoded.user.clone() {
        let u = &conn.body(body_at)[r];
        if u.len() <= f.user.len() {
            f.user_len = u.len();
            f.user[..u.len()].copy_from_slice(u);
        }
    }
    f
}

/// Stages 3–8 of a proxied request, the same for every ingress: authenticate, read and decode
/// the body, admit the alias, gather the routing facts, then route and relay.
async fn proxy(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    head: &Head,
    ctx: &mut Ctx,
    endpoint: crate::providers::Endpoint,
    path_model: Option<gemini::PathModel>,
) -> Result<Outcome, GatewayError> {
    let key = authenticate(env, ctx, conn, head)?;
    ctx.key = Some(key);
    let mut body_at = conn.read_body(head, &env.shard.limits()).await?;
    ctx.body_read = true;
    // The body is hashed for the cache key on the same parse, when its alias caches; the
    // alias's index, looked up for that, is what admit takes.
    let found = std::cell::Cell::new(None);
    let mut decoded = decode(
        env,
        ctx,
        conn,
        scratch,
        &body_at,
        path_model.as_ref(),
        &found,
    )?;
    let model = admit(
        env,
        ctx,
        key,
        decoded.alias(conn.body(&body_at)),
        found.get(),
    )?;
    guardrail::attach(env, ctx, key, model)?;
    if ctx.guard.is_some() {
        let body = conn.body(&body_at);
        let alias = model.alias.as_str();
        let screened = guardrail::request(env, ctx, &mut scratch.decoder, body, alias);
        if let Some(redacted) = screened.await? {
            // Only the redacted body goes on: keyed, logged, routed and sent.
            body_at = conn.replace_body(redacted);
            decoded = decode(
                env,
                ctx,
                conn,
                scratch,
                &body_at,
                path_model.as_ref(),
                &found,
            )?;
        }
    }
    ctx.stream = decoded.stream && endpoint.streams();
    let rf = route_facts(env, conn, head, &body_at, &decoded);
    let short = match limit::charge(env, ctx, key, &rf, &mut scratch.charges) {
        Ok(()) => false,
        Err(_) if ctx.share_short => true,
        Err(e) => return Err(e),
    };
    if short {
        // Cluster mode: a request larger than this replica's share is not refused while the
        // shared pool may have room.
        limit::after_top_up(env, ctx, key, &rf, &mut scratch.charges).await?;
    }
    let cache_control = head.cache_control.clone().map(|r| &conn.rbuf[r]);
    match cached::look(env, ctx, key, endpoint, &decoded, cache_control) {
        cached::Looked::Miss => {}
        looked => {
            if let Some(served) = cached::answer(env, conn, scratch, ctx, &decoded, looked).await {
                return served;
            }
        }
    }
    let call = attempt::Call {
        endpoint,
        body_at: &body_at,
        decoded: &decoded,
        facts: rf.facts(ctx, env.keys),
    };
    attempt::route(env, conn, scratch, ctx, &call).await
}

/// The decode stage: the body parsed once, hashed for the cache key when its alias (or key)
/// caches. A model in a path (Gemini's) may be percent-encoded (`my%2Falias`).
fn decode(
    env: &Env<'_>,
    ctx: &Ctx,
    conn: &Conn,
    scratch: &mut Scratch,
    body_at: &crate::http::conn::Body,
    path_model: Option<&gemini::PathModel>,
    found: &std::cell::Cell<Option<usize>>,
) -> Result<decode::Decoded, GatewayError> {
    let entry = ctx.key.and_then(|k| env.keys.entry(k));
    let keying = keyed(env.snapshot, entry, found, ctx.wire);
    let body = conn.body(body_at);
    match path_model {
        None => scratch.decoder.decode_keyed(body, None, &keying),
        Some(at) => {
            let raw = String::from_utf8_lossy(&conn.rbuf[at.model.clone()]);
            let alias = crate::http::percent_decoded(&raw);
            let path = Some((alias.as_ref(), at.stream));
            scratch.decoder.decode_keyed(body, path, &keying)
        }
    }
}

/// Whether the body of a request on `alias` is hashed for the cache key (its alias, or its
/// key, caches); the alias's index, looked up for that, goes to `found` for admit.
fn keyed<'a>(
    snap: &'a Snapshot,
    key: Option<&'a crate::auth::KeyEntry>,
    found: &'a std::cell::Cell<Option<usize>>,
    wire: Wire,
) -> impl Fn(&str) -> decode::Keying + 'a {
    move |alias| match snap.model(alias) {
        Some((i, m)) => {
            found.set(Some(i));
            match cached::rule(m, key) {
                None => decode::Keying::Off,
                Some(r) if r.semantic.is_some() => decode::Keying::Semantic(wire),
                Some(_) => decode::Keying::Exact,
            }
        }
        None => decode::Keying::Off,
    }
}

/// The authenticate stage: the presented key against the request's key table (401).
fn authenticate(
    env: &Env<'_>,
    ctx: &Ctx,
    conn: &Conn,
    head: &Head,
) -> Result<Principal, GatewayError> {
    if env.keys.is_open() {
        return Ok(Principal::Anonymous); // no clock needed
    }
    let presented = head.api_key.clone().map(|r| &conn.rbuf[r]);
    env.keys.authenticate(presented, ctx.wall_ms())
}

/// The admit stage: the alias exists (404) and the key may use it (403).
fn admit<'s>(
    env: &Env<'s>,
    ctx: &mut Ctx,
    key: Principal,
    alias: &str,
    at: Option<usize>,
) -> Result<&'s crate::config::Model, GatewayError> {
    let known = at.map(|i| (i, &env.snapshot.models[i]));
    let (idx, model) = known.or_else(|| env.snapshot.model(alias)).ok_or_else(|| {
        GatewayError::new(
            Kind::ModelNotFound,
            format!("the model `{alias}` does not exist"),
        )
    })?;
    ctx.model = idx as u32;
    if !env.keys.may_use(key, &model.alias) {
        return Err(GatewayError::new(
            Kind::Forbidden,
            format!("this key may not use the model `{alias}`"),
        ));
    }
    Ok(model)
}

/// Records metrics and the access-log line for a finished request.
fn settle(env: &Env<'_>, ctx: &Ctx, path: &[u8], outcome: &Outcome, used: (Option<Usage>, bool)) {
    let (usage, estimated) = used;
    let total_us = ctx.elapsed_us();
    let error = outcome.error.as_ref().map(|e| e.kind);
    let mut m = env.shard.metrics.borrow_mut();
    let labels = &env.snapshot.labels;
    m.record(&Sample {
        model: env.alias_label(ctx.model),
        provider: labels
            .provider
            .get(ctx.provider as usize)
            .copied()
            .unwrap_or(NONE),
        status: outcome.status,
        error,
        total_us,
        upstream_us: outcome.upstream_us,
        ttfb_us: outcome.ttfb_us,
        usage,
    });
    let key = ctx.key.and_then(|k| env.keys.entry(k));
    let team = key.and_then(|k| k.team.as_deref());
    if usage.is_some() && ctx.provider != NONE {
        let id = key.map_or("anonymous", |k| &k.id);
        m.spend(
            id,
            team.unwrap_or(""),
            env.alias_label(ctx.served_model),
            ctx.cost,
        );
    }
    if let Some(outbox) = &env.shard.ledger {
        outbox.push(ledger_row(
            env,
            ctx,
            outcome.status,
            usage,
            estimated,
            total_us,
        ));
    }
    if !env.shard.log.enabled() {
        return;
    }
    let snap = env.snapshot;
    let model = match ctx.model {
        NONE => "",
        i => snap.models[i as usize].alias.as_str(),
    };
    let target = |m: u32, t: u16| {
        snap.models
            .get(m as usize)
            .and_then(|m| m.targets.get(t as usize))
    };
    let upstream_model = match ctx.provider {
        NONE => "",
        _ => target(ctx.served_model, ctx.target as u16).map_or("", |t| t.model.as_str()),
    };
    let mut tried: [(&str, Option<&str>, u64); MAX_LOGGED_ATTEMPTS] =
        [("", None, 0); MAX_LOGGED_ATTEMPTS];
    let list = ctx.tried_list();
    for (slot, t) in tried.iter_mut().zip(list) {
        let name = target(t.model, t.target).map_or("", |t| t.name.as_str());
        *slot = (name, t.result, t.us);
    }
    let mut skipped = [""; MAX_SKIPPED];
    for (slot, &m) in skipped
        .iter_mut()
        .zip(&ctx.not_allowed[..ctx.not_allowed_len])
    {
        *slot = snap.models[m as usize].alias.as_str();
    }
    let mut line = Vec::with_capacity(400);
    Record {
        request_id: ctx.id(),
        key: ctx.key.map_or("", |k| env.keys.name(k)),
        method_path: path,
        model,
        provider: if ctx.provider == NONE {
            ""
        } else {
            &snap.providers[ctx.provider as usize].name
        },
        upstream_model,
        status: outcome.status,
        stream: ctx.stream,
        tokens_in: usage.map(|u| u.input),
        tokens_out: usage.map(|u| u.output),
        tokens_cached: usage
            .filter(|u| u.cache_read + u.cache_write > 0)
            .map(|u| (u.cache_read, u.cache_write)),
        cost_usd: ctx.cost,
        estimated,
        team: ctx.key.and_then(|k| env.keys.team(k)),
        total_us,
        upstream_us: outcome.upstream_us,
        error: error.map(Kind::label),
        attempts: &tried[..list.len()],
        not_allowed: &skipped[..ctx.not_allowed_len],
        cache: ctx
            .cache
            .filter(|_| {
                snap.models
                    .get(ctx.model as usize)
                    .is_some_and(|m| cached::rule(m, key).is_some())
            })
            .map(crate::cache::Status::label),
        guardrails: guardrail::logged(ctx),
    }
    .write(&mut line);
    if !env.shard.log.push(line) {
        m.access_log_dropped += 1;
    }
}

/// The request's row in the spend ledger: names by number, nothing allocated but a long
/// client request id or the end user.
fn ledger_row(
    env: &Env<'_>,
    ctx: &Ctx,
    status: u16,
    usage: Option<Usage>,
    estimated: bool,
    total_us: u64,
) -> crate::control::ledger::Spend {
    let labels = &env.snapshot.labels;
    let served = match ctx.provider {
        NONE => None,
        _ => labels
            .served
            .get(ctx.served_model as usize)
            .and_then(|m| m.get(ctx.target as usize)),
    };
    crate::control::ledger::Spend {
        request_id: crate::control::ledger::RequestId::new(ctx.id()),
        // The clock as the request first read it (near its start), else now less its length.
        ts_ms: match ctx.wall_ms.get() {
            0 => crate::auth::now_ms() - (total_us / 1000) as i64,
            t => t,
        },
        key: ctx
            .key
            .and_then(|k| env.keys.entry(k))
            .map_or(crate::auth::NO_NUMBER, |k| k.number),
        alias: labels
            .alias
            .get(ctx.model as usize)
            .copied()
            .unwrap_or(NONE),
        served: served.copied().unwrap_or(NONE),
        end_user: ctx.end_user.clone(),
        usage: usage.unwrap_or_default(),
        cost_usd: ctx.cost,
        status,
        latency_ms: total_us as f64 / 1000.0,
        estimated,
    }
}

/// Settles a request that failed before its head could be parsed (400/408/431).
pub fn settle_early(shard: &Shard, id: &[u8], err: &GatewayError) {
    let generation = shard.generation();
    let keys = shard.keys();
    let env = &Env {
        shard,
        snapshot: &generation.config,
        router: &generation.router,
        upstream: &generation.upstream,
        keys: &keys,
    };
    let mut ctx = Ctx::new(env, Some(id), false);
    ctx.start = Instant::now();
    let outcome = Outcome {
        status: err.status(),
        error: Some(err.clone()),
        ..Outcome::default()
    };
    settle(env, &ctx, b"", &outcome, (None, false));
}
