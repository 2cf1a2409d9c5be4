//! Response guardrails on a stream: the answer's text is checked before it leaves.
//!
//! A guarded stream is decoded into canonical events (the translator's decoder, whatever the
//! protocols) and re-encoded for the client by its own encoder, with this guard between the
//! two. Text and each tool call's argument fragments pass through a [`Holdback`] that keeps
//! only as much as the longest pattern of the policies in use needs; what it releases is
//! scanned, redacted where a policy says so, and encoded. A text block is released whole at
//! its end (before a tool call starts, before the finish). Thinking is passed as it comes:
//! its signature covers it, so it cannot be rewritten.
//!
//! Checks that need the whole answer — a webhook, a JSON schema — hold all of it back and
//! release it at the finish, as one text delta and one argument delta per tool call.
//!
//! A block stops the stream: nothing more is encoded, and the relay ends it with an error
//! event in the client's shape.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::{Phase, Record, Screen, Verdict, verdict};
use crate::config::Snapshot;
use crate::config::guardrail::{Action, Rule};
use crate::error::GatewayError;
use crate::guard::stream::Holdback;
use crate::guard::{Finding, Placeholders};
use crate::pipeline::{Ctx, Env};
use crate::providers::adapter::StreamEncode;
use crate::providers::canonical::Event;

/// Where the translator's decoder leaves its events for the guard.
type Queue = Rc<RefCell<Vec<Event<'static>>>>;

struct Sink(Queue);

impl StreamEncode for Sink {
    fn encode(&mut self, ev: &Event<'_>, _out: &mut Vec<u8>) {
        self.0.borrow_mut().push(owned(ev));
    }
}

fn owned(ev: &Event<'_>) -> Event<'static> {
    let o = |c: &Cow<'_, str>| Cow::Owned(c.to_string());
    match ev {
        Event::Start { id, model, usage } => Event::Start {
            id: o(id),
            model: o(model),
            usage: *usage,
        },
        Event::Text(t) => Event::Text(o(t)),
        Event::Thinking(t) => Event::Thinking(o(t)),
        Event::ThinkingSignature(t) => Event::ThinkingSignature(o(t)),
        Event::RedactedThinking(t) => Event::RedactedThinking(o(t)),
        Event::ToolCall { index, id, name } => Event::ToolCall {
            index: *index,
            id: o(id),
            name: o(name),
        },
        Event::ToolArguments { index, fragment } => Event::ToolArguments {
            index: *index,
            fragment: o(fragment),
        },
        Event::Finish {
            reason,
            stop_sequence,
        } => Event::Finish {
            reason: *reason,
            stop_sequence: stop_sequence.as_ref().map(o),
        },
        Event::Usage(u) => Event::Usage(*u),
        Event::Error { kind, message } => Event::Error {
            kind: *kind,
            message: o(message),
        },
        Event::Ping => Event::Ping,
        Event::Done => Event::Done,
    }
}

/// One guarded stream's state.
pub struct Guard {
    queue: Queue,
    encoder: Option<Box<dyn StreamEncode>>,
    /// The response policies, and whether each found something.
    policies: Vec<(u16, bool)>,
    max_span: usize,
    /// A webhook or schema policy: everything waits for the finish.
    hold_all: bool,
    text: Holdback,
    args: Vec<(u32, Holdback)>,
    held: Vec<Event<'static>>,
    names: Placeholders,
    chars: u64,
    found: Vec<Finding>,
    one: Vec<Finding>,
    redacts: Vec<Finding>,
    blocked: Option<GatewayError>,
    /// A block stopped the stream: nothing more is encoded.
    stopped: bool,
    /// The verdicts are recorded (at a block, the release of a held answer, or the end).
    settled: bool,
}

/// Text released in pieces smaller than this waits for more (fewer rescans of the tail).
const MIN_RELEASE: usize = 64;

impl Guard {
    pub fn new(snap: &Snapshot, record: &Record) -> Guard {
        let policies: Vec<(u16, bool)> = record
            .applied
            .iter()
            .filter(|&&p| snap.guardrails.policies[p as usize].response)
            .map(|&p| (p, false))
            .collect();
        let rule = |p: u16| &snap.guardrails.policies[p as usize].rule;
        let max_span = policies
            .iter()
            .filter_map(|&(p, _)| match rule(p) {
                Rule::Scan(c) => Some(c.max_span()),
                _ => None,
            })
            .max()
            .unwrap_or(1);
        let hold_all = policies
            .iter()
            .any(|&(p, _)| matches!(rule(p), Rule::Webhook(_) | Rule::Schema(_)));
        Guard {
            queue: Rc::default(),
            encoder: None,
            policies,
            max_span,
            hold_all,
            text: Holdback::new(max_span).min_release(MIN_RELEASE),
            args: Vec::new(),
            held: Vec::new(),
            names: Placeholders::default(),
            chars: 0,
            found: Vec::new(),
            one: Vec::new(),
            redacts: Vec::new(),
            blocked: None,
            stopped: false,
            settled: false,
        }
    }

    /// Takes the client's encoder; returns what the translator should encode into instead.
    pub fn wrap(&mut self, encoder: Box<dyn StreamEncode>) -> Box<dyn StreamEncode> {
        self.encoder = Some(encoder);
        Box::new(Sink(self.queue.clone()))
    }

    /// The block that stopped the stream, once.
    pub fn blocked(&mut self) -> Option<GatewayError> {
        self.blocked.take()
    }

    /// Encodes into `out` what the decoder produced since the last call and may leave now.
    pub async fn drain(&mut self, env: &Env<'_>, ctx: &mut Ctx, out: &mut Vec<u8>) {
        let events = std::mem::take(&mut *self.queue.borrow_mut());
        for ev in events {
            if self.stopped {
                return;
            }
            if self.hold_all && !self.settled {
                let end = matches!(ev, Event::Finish { .. } | Event::Done | Event::Error { .. });
                self.held.push(ev);
                if end {
                    Box::pin(self.release_all(env, ctx, out)).await;
                }
                continue;
            }
            self.pass(env, ctx, ev, out);
        }
    }

    fn emit(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        if let Some(e) = &mut self.encoder {
            e.encode(ev, out);
        }
    }

    /// One event on the incremental path.
    fn pass(&mut self, env: &Env<'_>, ctx: &mut Ctx, ev: Event<'static>, out: &mut Vec<u8>) {
        match ev {
            Event::Text(t) => {
                self.count(env, ctx, &t);
                let snap = env.snapshot;
                let released = self
                    .text
                    .push(&t, &mut self.found, |s, f| scan(snap, &self.policies, s, f));
                let text = self.judge(env, ctx, released);
                if !text.is_empty() {
                    self.emit(&Event::Text(text.into()), out);
                }
            }
            Event::ToolArguments { index, fragment } => {
                self.count(env, ctx, &fragment);
                let snap = env.snapshot;
                let at = match self.args.iter().position(|(i, _)| *i == index) {
                    Some(at) => at,
                    None => {
                        self.args
                            .push((index, Holdback::new(self.max_span).min_release(MIN_RELEASE)));
                        self.args.len() - 1
                    }
                };
                let policies = &self.policies;
                let released = self.args[at].1.push(&fragment, &mut self.found, |s, f| {
                    scan(snap, policies, s, f)
                });
                let text = self.judge(env, ctx, released);
                if !text.is_empty() {
                    let fragment = text.into();
                    self.emit(&Event::ToolArguments { index, fragment }, out);
                }
            }
            Event::ToolCall { .. } => {
                self.flush_text(env, ctx, out);
                self.emit(&ev, out);
            }
            Event::Finish { .. } | Event::Done | Event::Error { .. } | Event::Usage(_) => {
                self.flush_text(env, ctx, out);
                self.flush_args(env, ctx, out);
                if !self.stopped {
                    self.emit(&ev, out);
                }
            }
            other => self.emit(&other, out),
        }
    }

    fn flush_text(&mut self, env: &Env<'_>, ctx: &mut Ctx, out: &mut Vec<u8>) {
        let snap = env.snapshot;
        let rest = self
            .text
            .finish(&mut self.found, |s, f| scan(snap, &self.policies, s, f));
        let text = self.judge(env, ctx, rest);
        if !text.is_empty() && !self.stopped {
            self.emit(&Event::Text(text.into()), out);
        }
    }

    fn flush_args(&mut self, env: &Env<'_>, ctx: &mut Ctx, out: &mut Vec<u8>) {
        let snap = env.snapshot;
        for at in 0..self.args.len() {
            let index = self.args[at].0;
            let policies = &self.policies;
            let rest = self.args[at]
                .1
                .finish(&mut self.found, |s, f| scan(snap, policies, s, f));
            let text = self.judge(env, ctx, rest);
            if !text.is_empty() && !self.stopped {
                let fragment = text.into();
                self.emit(&Event::ToolArguments { index, fragment }, out);
            }
        }
    }

    /// Counts text toward length policies; one past its bound blocks or flags.
    fn count(&mut self, env: &Env<'_>, ctx: &mut Ctx, text: &str) {
        self.chars += text.chars().count() as u64;
        for slot in 0..self.policies.len() {
            let (p, hit) = self.policies[slot];
            let policy = &env.snapshot.guardrails.policies[p as usize];
            if let Rule::Length { max_chars } = policy.rule
                && !hit
                && self.chars > max_chars
            {
                self.policies[slot].1 = true;
                if policy.action == Action::Block {
                    self.block(
                        env,
                        ctx,
                        p,
                        Some(&format!("more than {max_chars} characters")),
                    );
                }
            }
        }
    }

    /// What may leave of `released` (its findings in `self.found`): which policies found
    /// something, a block if one blocks, the text with redactions.
    fn judge(&mut self, env: &Env<'_>, ctx: &mut Ctx, released: String) -> String {
        if self.found.is_empty() || released.is_empty() {
            return released;
        }
        // Attribute the findings: each policy again over the released part alone (rare: only
        // text in which something was found).
        self.redacts.clear();
        let mut block = None;
        for slot in 0..self.policies.len() {
            let p = self.policies[slot].0;
            let policy = &env.snapshot.guardrails.policies[p as usize];
            let Rule::Scan(check) = &policy.rule else {
                continue;
            };
            self.one.clear();
            check.scan(&released, &mut self.one);
            if self.one.is_empty() {
                continue;
            }
            self.policies[slot].1 = true;
            match policy.action {
                Action::Block => {
                    block.get_or_insert(p);
                }
                Action::Redact => self.redacts.append(&mut self.one),
                Action::Flag => {}
            }
        }
        if let Some(p) = block {
            self.block(env, ctx, p, None);
            return String::new();
        }
        if self.redacts.is_empty() {
            return released;
        }
        let mut out = String::with_capacity(released.len());
        crate::guard::redact(&released, &mut self.redacts, &mut self.names, &mut out);
        out
    }

    fn block(&mut self, env: &Env<'_>, ctx: &mut Ctx, p: u16, reason: Option<&str>) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let record = Record {
            applied: vec![p],
            ..Record::default()
        };
        let screen = Screen::new(env.snapshot, &record, Phase::Response);
        let policy = &env.snapshot.guardrails.policies[p as usize];
        self.blocked = Some(screen.blocked(policy, reason));
        self.settle(env, ctx, Some(p));
    }

    /// Records each policy's verdict once: at a block, or when the stream ends.
    pub fn settle(&mut self, env: &Env<'_>, ctx: &mut Ctx, blocked: Option<u16>) {
        if self.settled {
            return;
        }
        self.settled = true;
        if self.hold_all {
            return; // nothing was released: a stream cut before its finish has no verdicts
        }
        for &(p, hit) in &self.policies {
            let policy = &env.snapshot.guardrails.policies[p as usize];
            let v = match blocked {
                Some(b) if b == p => Verdict::Blocked,
                _ => verdict(policy.action, hit),
            };
            super::note(env, ctx, p, Phase::Response, v);
        }
    }

    /// The finish of a stream held back whole: the whole answer checked like a whole
    /// answer, then released as one text delta and one argument delta per tool call.
    async fn release_all(&mut self, env: &Env<'_>, ctx: &mut Ctx, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        let mut text = String::new();
        let mut args: Vec<(u32, String)> = Vec::new();
        for ev in &held {
            match ev {
                Event::Text(t) => text.push_str(t),
                Event::ToolArguments { index, fragment } => {
                    match args.iter_mut().find(|(i, _)| i == index) {
                        Some((_, a)) => a.push_str(fragment),
                        None => args.push((*index, fragment.to_string())),
                    }
                }
                _ => {}
            }
        }
        // The whole answer as one body of texts: the answer's text, then each call's arguments.
        let record = Record {
            applied: self.policies.iter().map(|&(p, _)| p).collect(),
            ..Record::default()
        };
        let mut screen = Screen::new(env.snapshot, &record, Phase::Response);
        let texts: Vec<String> = std::iter::once(text.clone())
            .chain(args.iter().map(|(_, a)| a.clone()))
            .collect();
        for (i, t) in texts.iter().enumerate() {
            screen.text(t, || Some(i..i + 1));
        }
        let alias = env.snapshot.models[ctx.model as usize].alias.clone();
        let mut blocked = None;
        if let Some(mut rec) = ctx.guard.take() {
            blocked = screen.verdicts(&mut rec, env, &alias);
            if blocked.is_none() {
                // As for a whole answer: the text, then the tool calls' arguments.
                let whole: String = texts.concat();
                blocked = schema_of(env, &screen, &mut rec, &whole);
            }
            ctx.guard = Some(rec);
        }
        let key = ctx.key.map(|k| env.keys.name(k).to_owned());
        if blocked.is_none() {
            blocked = screen.hooks(env, ctx, &alias, key.as_deref()).await;
        }
        self.settled = true;
        if let Some(e) = blocked {
            self.blocked = Some(e);
            self.stopped = true;
            return;
        }
        let mut texts = texts;
        for e in screen.edits.drain(..) {
            texts[e.span.start] = e.text;
        }
        let mut first_text = true;
        let mut sent_args: Vec<u32> = Vec::new();
        for ev in held {
            match ev {
                Event::Text(_) if first_text => {
                    first_text = false;
                    self.emit(&Event::Text(std::mem::take(&mut texts[0]).into()), out);
                }
                Event::Text(_) => {}
                Event::ToolArguments { index, .. } if !sent_args.contains(&index) => {
                    sent_args.push(index);
                    let at = 1 + args.iter().position(|(i, _)| *i == index).unwrap_or(0);
                    let fragment = std::mem::take(&mut texts[at]).into();
                    self.emit(&Event::ToolArguments { index, fragment }, out);
                }
                Event::ToolArguments { .. } => {}
                other => self.emit(&other, out),
            }
        }
    }
}

/// Every scan policy of `policies` over `text`.
fn scan(snap: &Snapshot, policies: &[(u16, bool)], text: &str, out: &mut Vec<Finding>) {
    for &(p, _) in policies {
        if let Rule::Scan(check) = &snap.guardrails.policies[p as usize].rule {
            check.scan(text, out);
        }
    }
}

/// The schema policies over a held-back answer's text.
fn schema_of(
    env: &Env<'_>,
    screen: &Screen<'_>,
    record: &mut Record,
    text: &str,
) -> Option<GatewayError> {
    let mut blocked = None;
    for &(p, _) in &screen.policies {
        let policy = screen.policy(p);
        let Rule::Schema(schema) = &policy.rule else {
            continue;
        };
        let problem = super::schema_problem(schema, text);
        let v = verdict(policy.action, problem.is_some());
        if v == Verdict::Blocked && blocked.is_none() {
            blocked = Some(screen.blocked(policy, problem.as_deref()));
        }
        record.note(env, p, Phase::Response, v);
    }
    blocked
}
