//! The guardrail stage: the policies that apply to a request (its alias's, then its key's and
//! its team's) run on the request before routing ([`request`]), on a whole answer before it
//! is written ([`answer`]), and on a stream as it passes ([`stream::Guard`]).
//!
//! Each policy gives one verdict per phase: passed, flagged, redacted, blocked, or failed (a
//! webhook that could not answer, let through by `on_error: allow`). A block is an error in
//! the client's shape naming the policy, with the policy's status. A redaction rewrites the
//! strings it changed once, before the request is keyed for the cache, logged, or sent; the
//! redacted body is decoded again, so every later stage sees only it.
//!
//! Verdicts are visible three ways: `x-shardgate-guardrails` (those known when the head is
//! written), `shardgate_guardrail_verdicts_total{policy,phase,verdict}`, and the access log's
//! `guardrails` field (all of them). Matched text is never logged: only policy names, phases,
//! verdicts and entity kinds.

pub mod stream;
pub mod text;
mod webhook;

use std::fmt::Write as _;

use super::decode::Decoder;
use super::{Boxed, Ctx, Env};
use crate::auth::Principal;
use crate::config::Snapshot;
use crate::config::guardrail::{Action, Policy, Rule, matches};
use crate::error::{GatewayError, Kind};
use crate::guard::{Entity, Finding, Placeholders};
use text::Edit;

/// Where a policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request = 0,
    Response = 1,
}

/// What a policy decided in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed = 0,
    Flagged = 1,
    Redacted = 2,
    Blocked = 3,
    /// A webhook that failed or timed out, let through (`on_error: allow`).
    Failed = 4,
}

impl Phase {
    pub const ALL: [Phase; 2] = [Phase::Request, Phase::Response];

    pub fn label(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
        }
    }
}

impl Verdict {
    #[cfg(test)]
    pub const ALL: [Verdict; 5] = [
        Verdict::Passed,
        Verdict::Flagged,
        Verdict::Redacted,
        Verdict::Blocked,
        Verdict::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Flagged => "flagged",
            Verdict::Redacted => "redacted",
            Verdict::Blocked => "blocked",
            Verdict::Failed => "failed_open",
        }
    }
}

/// The guardrails of one request: which policies apply, and what each decided.
#[derive(Debug, Default)]
pub struct Record {
    /// Indices into the generation's policies, in order: the alias's, the key's, the team's.
    pub applied: Vec<u16>,
    verdicts: Vec<(u16, Phase, Verdict)>,
    /// `x-shardgate-guardrails`: the verdicts so far.
    pub header: String,
}

impl Record {
    fn note(&mut self, env: &Env<'_>, policy: u16, phase: Phase, verdict: Verdict) {
        self.verdicts.push((policy, phase, verdict));
        let label = env
            .snapshot
            .labels
            .guardrail
            .get(policy as usize)
            .copied()
            .unwrap_or(crate::observe::metrics::NONE);
        env.shard
            .metrics
            .borrow_mut()
            .guardrail(label, phase as usize, verdict as usize);
        self.header.clear();
        for (i, (p, ph, v)) in self.verdicts.iter().enumerate() {
            let name = &env.snapshot.guardrails.policies[*p as usize].name;
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(self.header, "{sep}{name}:{}:{}", ph.label(), v.label());
        }
    }

    /// Whether any policy runs in `phase`.
    pub fn runs(&self, snap: &Snapshot, phase: Phase) -> bool {
        self.applied
            .iter()
            .any(|&p| on(&snap.guardrails.policies[p as usize], phase))
    }
}

fn on(p: &Policy, phase: Phase) -> bool {
    match phase {
        Phase::Request => p.request,
        Phase::Response => p.response,
    }
}

/// Gathers the policies that apply: the alias's, then the key's and its team's (the store
/// lists them by name; a name this generation does not define refuses the request, so a
/// policy removed by a reload never silently stops guarding a key).
pub fn attach(
    env: &Env<'_>,
    ctx: &mut Ctx,
    key: Principal,
    model: &crate::config::Model,
) -> Result<(), GatewayError> {
    let named: &[Box<str>] = env.keys.entry(key).map_or(&[], |k| &k.guardrails);
    if model.guardrails.is_empty() && named.is_empty() {
        return Ok(());
    }
    let mut applied = model.guardrails.clone();
    for name in named {
        let Some(i) = env.snapshot.guardrails.find(name) else {
            return Err(GatewayError::new(
                Kind::Forbidden,
                format!(
                    "this key requires the guardrail `{name}`, which the gateway's config does not define"
                ),
            ));
        };
        if !applied.contains(&(i as u16)) {
            applied.push(i as u16);
        }
    }
    ctx.guard = Some(Box::new(Record {
        applied,
        ..Record::default()
    }));
    Ok(())
}

/// One phase's run of its policies over a body's texts.
struct Screen<'s> {
    snap: &'s Snapshot,
    phase: Phase,
    /// This phase's policies, and whether each found something.
    policies: Vec<(u16, bool)>,
    found: Vec<Finding>,
    redacts: Vec<Finding>,
    names: Placeholders,
    edits: Vec<Edit>,
    chars: u64,
    /// Entity kinds found by blocking policies, for the error message.
    entities: Vec<Entity>,
    /// The texts a webhook is sent (after local redaction), and where each is in the body.
    hooked: Option<(Vec<String>, Vec<std::ops::Range<usize>>)>,
    /// A length policy runs: characters are counted.
    counts: bool,
}

impl<'s> Screen<'s> {
    fn new(snap: &'s Snapshot, record: &Record, phase: Phase) -> Screen<'s> {
        let policies: Vec<(u16, bool)> = record
            .applied
            .iter()
            .filter(|&&p| on(&snap.guardrails.policies[p as usize], phase))
            .map(|&p| (p, false))
            .collect();
        let rule = |p: u16| &snap.guardrails.policies[p as usize].rule;
        let hooks = policies
            .iter()
            .any(|&(p, _)| matches!(rule(p), Rule::Webhook(_)));
        let counts = policies
            .iter()
            .any(|&(p, _)| matches!(rule(p), Rule::Length { .. }));
        Screen {
            snap,
            phase,
            policies,
            found: Vec::new(),
            redacts: Vec::new(),
            names: Placeholders::default(),
            edits: Vec::new(),
            chars: 0,
            entities: Vec::new(),
            hooked: hooks.then(Default::default),
            counts,
        }
    }

    fn policy(&self, p: u16) -> &'s Policy {
        &self.snap.guardrails.policies[p as usize]
    }

    /// Runs the detectors over one text; `span` finds where it is in the body (quotes
    /// included), asked only when it is rewritten or sent to a webhook.
    fn text(&mut self, text: &str, span: impl FnOnce() -> Option<std::ops::Range<usize>>) {
        if self.counts {
            self.chars += text.chars().count() as u64;
        }
        self.redacts.clear();
        for slot in 0..self.policies.len() {
            let p = self.policy(self.policies[slot].0);
            let Rule::Scan(check) = &p.rule else { continue };
            self.found.clear();
            check.scan(text, &mut self.found);
            if self.found.is_empty() {
                continue;
            }
            self.policies[slot].1 = true;
            match p.action {
                Action::Redact => self.redacts.append(&mut self.found),
                Action::Block => {
                    for f in &self.found {
                        if !self.entities.contains(&f.entity) {
                            self.entities.push(f.entity);
                        }
                    }
                }
                Action::Flag => {}
            }
        }
        let redacted = if self.redacts.is_empty() {
            None
        } else {
            let mut out = String::with_capacity(text.len());
            crate::guard::redact(text, &mut self.redacts, &mut self.names, &mut out);
            Some(out)
        };
        if self.hooked.is_none() && redacted.is_none() {
            return;
        }
        let Some(span) = span() else { return };
        if let Some((texts, spans)) = &mut self.hooked {
            texts.push(redacted.clone().unwrap_or_else(|| text.to_owned()));
            spans.push(span.clone());
        }
        if let Some(text) = redacted {
            self.edits.push(Edit { span, text });
        }
    }

    /// The checks that read no text, and the verdicts of the scans; the first block, if any.
    /// Webhooks run after ([`Screen::hooks`]).
    fn verdicts(
        &mut self,
        record: &mut Record,
        env: &Env<'_>,
        alias: &str,
    ) -> Option<GatewayError> {
        let mut blocked = None;
        for slot in 0..self.policies.len() {
            let (p, hit) = self.policies[slot];
            let policy = self.policy(p);
            let hit = match &policy.rule {
                Rule::Scan(_) => hit,
                Rule::Length { max_chars } => self.chars > *max_chars,
                Rule::Models { allow, deny } => {
                    deny.iter().any(|d| matches(d, alias))
                        || (!allow.is_empty() && !allow.iter().any(|a| matches(a, alias)))
                }
                Rule::Schema(_) | Rule::Webhook(_) => continue,
            };
            let verdict = verdict(policy.action, hit);
            if verdict == Verdict::Blocked && blocked.is_none() {
                blocked = Some(self.blocked(policy, None));
            }
            record.note(env, p, self.phase, verdict);
        }
        blocked
    }

    fn blocked(&self, policy: &Policy, reason: Option<&str>) -> GatewayError {
        let what = match self.phase {
            Phase::Request => "the request",
            Phase::Response => "the answer",
        };
        let mut msg = format!("{what} was blocked by guardrail `{}`", policy.name);
        match (&policy.rule, reason) {
            (_, Some(r)) => {
                let _ = write!(msg, ": {r}");
            }
            (Rule::Scan(_), None) if !self.entities.is_empty() => {
                let kinds: Vec<&str> = self.entities.iter().map(|e| e.label()).collect();
                let _ = write!(msg, " (found: {})", kinds.join(", "));
            }
            (Rule::Length { max_chars }, None) => {
                let _ = write!(msg, " (more than {max_chars} characters)");
            }
            (Rule::Models { .. }, None) => msg.push_str(" (model not allowed)"),
            _ => {}
        }
        let mut e = GatewayError::new(Kind::GuardrailBlocked, msg);
        e.status = Some(policy.status);
        e
    }

    /// Calls each webhook policy with the texts (as redacted so far); a redaction it answers
    /// replaces the strings it changed.
    async fn hooks(
        &mut self,
        env: &Env<'_>,
        ctx: &mut Ctx,
        alias: &str,
        key: Option<&str>,
    ) -> Option<GatewayError> {
        let mut blocked = None;
        let (mut texts, spans) = self.hooked.take()?;
        for slot in 0..self.policies.len() {
            let p = self.policies[slot].0;
            let policy = self.policy(p);
            let Rule::Webhook(hook) = &policy.rule else {
                continue;
            };
            let call = webhook::Call {
                policy: &policy.name,
                phase: self.phase,
                model: alias,
                key,
                request_id: ctx.id_str(),
                texts: &texts,
            };
            // Boxed: only a request with a webhook policy carries the call's state.
            let verdict = match Box::pin(webhook::call(env, hook, &call)).await {
                Ok(webhook::Answer::Allow) => Verdict::Passed,
                Ok(webhook::Answer::Block(reason)) => {
                    let v = verdict(policy.action, true);
                    if v == Verdict::Blocked && blocked.is_none() {
                        let reason = reason.unwrap_or_else(|| "the webhook refused it".into());
                        blocked = Some(self.blocked(policy, Some(&reason)));
                    }
                    v
                }
                Ok(webhook::Answer::Redact(new)) if policy.action == Action::Flag => {
                    let _ = new;
                    Verdict::Flagged
                }
                Ok(webhook::Answer::Redact(new)) => {
                    for (i, t) in new.into_iter().enumerate() {
                        if t == texts[i] {
                            continue;
                        }
                        match self.edits.iter_mut().find(|e| e.span == spans[i]) {
                            Some(e) => e.text.clone_from(&t),
                            None => self.edits.push(Edit {
                                span: spans[i].clone(),
                                text: t.clone(),
                            }),
                        }
                        texts[i] = t;
                    }
                    Verdict::Redacted
                }
                Err(why) if hook.fail_open => {
                    log::warn!(
                        "guardrail {:?}: {why}; let through (on_error: allow)",
                        policy.name
                    );
                    Verdict::Failed
                }
                Err(why) => {
                    if blocked.is_none() {
                        let reason = format!("its webhook failed ({why})");
                        blocked = Some(self.blocked(policy, Some(&reason)));
                    }
                    Verdict::Blocked
                }
            };
            if let Some(r) = ctx.guard.as_mut() {
                r.note(env, p, self.phase, verdict);
            }
        }
        self.hooked = Some((texts, spans));
        blocked
    }
}

fn verdict(action: Action, hit: bool) -> Verdict {
    match (hit, action) {
        (false, _) => Verdict::Passed,
        (true, Action::Block) => Verdict::Blocked,
        (true, Action::Redact) => Verdict::Redacted,
        (true, Action::Flag) => Verdict::Flagged,
    }
}

/// The request phase: every request policy over the body's texts. Returns the redacted body
/// when a policy changed it; a block is the error.
pub fn request<'a>(
    env: &'a Env<'a>,
    ctx: &'a mut Ctx,
    decoder: &'a mut Decoder,
    body: &'a [u8],
    alias: &'a str,
) -> Boxed<'a, Result<Option<Vec<u8>>, GatewayError>> {
    Box::pin(request_phase(env, ctx, decoder, body, alias))
}

async fn request_phase(
    env: &Env<'_>,
    ctx: &mut Ctx,
    decoder: &mut Decoder,
    body: &[u8],
    alias: &str,
) -> Result<Option<Vec<u8>>, GatewayError> {
    let Some(mut record) = ctx.guard.take() else {
        return Ok(None);
    };
    let mut screen = Screen::new(env.snapshot, &record, Phase::Request);
    if screen.policies.is_empty() {
        ctx.guard = Some(record);
        return Ok(None);
    }
    read(decoder, body, &mut screen);
    let blocked = screen.verdicts(&mut record, env, alias);
    ctx.guard = Some(record);
    if let Some(e) = blocked {
        return Err(e);
    }
    let key = ctx.key.map(|k| env.keys.name(k).to_owned());
    if let Some(e) = screen.hooks(env, ctx, alias, key.as_deref()).await {
        return Err(e);
    }
    if screen.edits.is_empty() {
        return Ok(None);
    }
    Ok(Some(text::apply(body, &mut screen.edits)))
}

/// The whole-answer phase: the response policies over the answer's texts, as the client will
/// get it (translated already). A redaction rewrites `body`; a block is the error.
pub fn answer<'a>(
    env: &'a Env<'a>,
    ctx: &'a mut Ctx,
    decoder: &'a mut Decoder,
    body: &'a mut Vec<u8>,
) -> Boxed<'a, Result<(), GatewayError>> {
    Box::pin(answer_phase(env, ctx, decoder, body))
}

async fn answer_phase(
    env: &Env<'_>,
    ctx: &mut Ctx,
    decoder: &mut Decoder,
    body: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    let Some(mut record) = ctx.guard.take() else {
        return Ok(());
    };
    let mut screen = Screen::new(env.snapshot, &record, Phase::Response);
    if screen.policies.is_empty() {
        ctx.guard = Some(record);
        return Ok(());
    }
    read(decoder, body, &mut screen);
    let alias = env.snapshot.models[ctx.model as usize].alias.as_str();
    let mut blocked = screen.verdicts(&mut record, env, alias);
    if blocked.is_none() {
        blocked = schemas(env, &screen, &mut record, decoder, body);
    }
    ctx.guard = Some(record);
    if let Some(e) = blocked {
        return Err(e);
    }
    let key = ctx.key.map(|k| env.keys.name(k).to_owned());
    if let Some(e) = screen.hooks(env, ctx, alias, key.as_deref()).await {
        return Err(e);
    }
    if !screen.edits.is_empty() {
        *body = text::apply(body, &mut screen.edits);
    }
    Ok(())
}

/// Reads every text of `body` into the screen.
fn read(decoder: &mut Decoder, body: &[u8], screen: &mut Screen<'_>) {
    decoder.parse_at(body, |root, base| {
        text::walk(root, base, &mut |s, at| {
            screen.text(s, || text::span(body, at))
        })
    });
}

/// `json_schema` policies on a whole answer: its message text must parse as JSON that the
/// schema accepts.
fn schemas(
    env: &Env<'_>,
    screen: &Screen<'_>,
    record: &mut Record,
    decoder: &mut Decoder,
    body: &[u8],
) -> Option<GatewayError> {
    let mut blocked = None;
    let mut output: Option<String> = None;
    for &(p, _) in &screen.policies {
        let policy = screen.policy(p);
        let Rule::Schema(schema) = &policy.rule else {
            continue;
        };
        let text = output.get_or_insert_with(|| answer_text(decoder, body));
        let problem = schema_problem(schema, text);
        let v = verdict(policy.action, problem.is_some());
        if v == Verdict::Blocked && blocked.is_none() {
            blocked = Some(screen.blocked(policy, problem.as_deref()));
        }
        record.note(env, p, Phase::Response, v);
    }
    blocked
}

/// Why `text` fails `schema`, if it does: not JSON, or the schema's first complaint.
fn schema_problem(schema: &jsonschema::Validator, text: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => Some(format!("the answer is not JSON ({e})")),
        Ok(v) => schema
            .iter_errors(&v)
            .next()
            .map(|e| format!("the answer does not match its schema: {e}")),
    }
}

/// The answer's text as one string: its text strings in order, tool arguments included.
fn answer_text(decoder: &mut Decoder, body: &[u8]) -> String {
    let mut out = String::new();
    decoder.parse_at(body, |root, base| {
        text::walk(root, base, &mut |s, _| out.push_str(s));
    });
    out
}

/// Whether policies apply to this request's answers.
pub fn checks_answers(env: &Env<'_>, ctx: &Ctx) -> bool {
    ctx.guard
        .as_ref()
        .is_some_and(|g| g.runs(env.snapshot, Phase::Response))
}

/// The response policies a stream needs, if any (see [`stream::Guard`]).
pub fn for_stream(env: &Env<'_>, ctx: &Ctx) -> Option<Box<stream::Guard>> {
    let record = ctx.guard.as_ref()?;
    checks_answers(env, ctx).then(|| Box::new(stream::Guard::new(env.snapshot, record)))
}

/// The access log's `guardrails` value: every verdict, `policy:phase:verdict`.
pub fn logged(ctx: &Ctx) -> Option<&str> {
    ctx.guard
        .as_ref()
        .map(|r| r.header.as_str())
        .filter(|h| !h.is_empty())
}

/// Records a verdict reached outside a [`Screen`] (a stream's).
pub fn note(env: &Env<'_>, ctx: &mut Ctx, policy: u16, phase: Phase, verdict: Verdict) {
    if let Some(r) = ctx.guard.as_mut() {
        r.note(env, policy, phase, verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics::{GUARD_PHASES, GUARD_VERDICTS};

    #[test]
    fn metric_cells_follow_phases_and_verdicts() {
        for p in Phase::ALL {
            assert_eq!(GUARD_PHASES[p as usize], p.label());
        }
        for v in Verdict::ALL {
            assert_eq!(GUARD_VERDICTS[v as usize], v.label());
        }
    }
}
