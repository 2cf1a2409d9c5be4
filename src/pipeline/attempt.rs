//! The attempt stage: turn the client's request into the target's upstream request and hand it
//! to the relay. When the client and the provider speak the same protocol the upstream gets
//! the client's own bytes with the model spliced in; otherwise the body goes through the
//! canonical form ([`translate`]). The built-in mock answers in-process.

use std::time::{SystemTime, UNIX_EPOCH};

use super::decode::{Decoded, StreamOptions};
use super::relay::{self, Passage};
use super::{Ctx, Outcome, Scratch};
use crate::config::Target;
use crate::error::{GatewayError, Kind};
use crate::http::conn::{Body, Conn};
use crate::providers::canonical::Stamp;
use crate::providers::translate::{self, Wire};
use crate::providers::{Endpoint, Protocol, anthropic, head, mock, openai};
use crate::runtime::shard::Shard;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends the request to `target` and relays the answer.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    endpoint: Endpoint,
    body_at: &Body,
    decoded: &Decoded,
    target: &Target,
) -> Result<Outcome, GatewayError> {
    let snap = &shard.snapshot;
    ctx.target = 0;
    ctx.provider = target.provider as u32;
    let provider = &snap.providers[target.provider];
    let upstream = provider.protocol.wire();
    let body = conn.body(body_at);
    if upstream != ctx.wire && !endpoint.is_chat() {
        return Err(GatewayError::new(
            Kind::BadRequest,
            format!(
                "provider {:?} speaks {}, which has no {} endpoint",
                provider.name,
                provider.protocol.name(),
                endpoint.path()
            ),
        ));
    }
    if provider.protocol == Protocol::Mock {
        let include_usage =
            ctx.wire == Wire::Anthropic || decoded.stream_options == StreamOptions::IncludeUsage;
        let id = String::from_utf8_lossy(ctx.id()).into_owned();
        let as_openai = if endpoint == Endpoint::Messages {
            Endpoint::Chat
        } else {
            endpoint
        };
        let reply = mock::respond(
            as_openai,
            ctx.stream,
            include_usage,
            &target.model,
            body.len(),
            &id,
        );
        return relay::local(conn, ctx, reply, &target.model).await;
    }
    let origin = &snap.origins[provider.origin.expect("network providers have an origin")];
    scratch.upstream.clear();
    let passage = if upstream == ctx.wire {
        match upstream {
            Wire::OpenAi => {
                let request = openai::Request {
                    provider,
                    origin,
                    endpoint,
                    body,
                    decoded,
                    model: &target.model,
                };
                let injected_usage = openai::build(&mut scratch.upstream, &request);
                Passage::Same { injected_usage }
            }
            Wire::Anthropic => {
                anthropic::build(
                    &mut scratch.upstream,
                    provider,
                    origin,
                    endpoint,
                    body,
                    decoded,
                    &target.model,
                );
                Passage::Same {
                    injected_usage: false,
                }
            }
        }
    } else {
        // The body is parsed in place: work on a copy, encode into `events`, then frame it.
        scratch.body.clear();
        scratch.body.extend_from_slice(body);
        scratch.events.clear();
        let stamp = Stamp {
            model: &target.model,
            created: unix_now(),
            default_max_tokens: provider.default_max_tokens,
        };
        let t = translate::request(
            ctx.wire,
            upstream,
            &mut scratch.body,
            &stamp,
            &mut scratch.events,
        )?;
        if !t.dropped.is_empty() {
            ctx.dropped = t.dropped.join(", ");
            log::debug!(
                "request {}: {} cannot carry {}; dropped",
                String::from_utf8_lossy(ctx.id()),
                provider.protocol.name(),
                ctx.dropped
            );
        }
        let path = match upstream {
            Wire::OpenAi => Endpoint::Chat.path(),
            Wire::Anthropic => Endpoint::Messages.path(),
        };
        head::write(
            &mut scratch.upstream,
            provider,
            origin,
            path,
            &target.model,
            scratch.events.len(),
            t.stream,
        );
        scratch.upstream.extend_from_slice(&scratch.events);
        Passage::Translate {
            include_usage: t.include_usage,
        }
    };
    let leg = relay::Leg {
        provider,
        origin,
        model: &target.model,
        passage,
    };
    relay::proxy(shard, conn, scratch, ctx, leg).await
}
