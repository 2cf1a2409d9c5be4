//! Active health checks: for every alias with `health:` in its config, each target is probed
//! at start and then every interval, and the result goes to the shard's router, which leaves a
//! target out of every plan while its probes fail. So a provider that went away is found by
//! a probe instead of by the next user's request.
//!
//! Each shard probes for its own router (shards share nothing), so N shards send N probes per
//! target per interval; the first probes are spread over the interval by shard. A probe is
//! `GET …/models` (free) or a one-token chat to the target's model. A 2xx is healthy; a 429
//! says nothing either way; anything else (connect failure, timeout, 5xx, rejected credentials)
//! counts as a failure.

use std::rc::Rc;
use std::time::Duration;

use super::shard::Shard;
use crate::config::{HealthPolicy, Probe, Timeouts};
use crate::error::{GatewayError, Kind};
use crate::providers::translate::{self, Wire};
use crate::providers::{Endpoint, Protocol, head};

/// Largest probe answer read (a models list); more is a failed probe.
const MAX_PROBE_BODY: usize = 4 << 20;

/// Starts one probing task per target of every alias that asks for health checks.
pub fn start(shard: &Rc<Shard>, shards: usize) {
    for (alias, model) in shard.snapshot.models.iter().enumerate() {
        let Some(policy) = model.health else { continue };
        for (t, target) in model.targets.iter().enumerate() {
            if shard.snapshot.providers[target.provider].protocol == Protocol::Mock {
                continue; // answers in-process: nothing to probe
            }
            let offset = policy.interval * shard.id as u32 / shards.max(1) as u32;
            monoio::spawn(watch(shard.clone(), alias, t, policy, offset));
        }
    }
}

async fn watch(shard: Rc<Shard>, alias: usize, t: usize, policy: HealthPolicy, offset: Duration) {
    monoio::time::sleep(offset).await;
    let mut request = Vec::with_capacity(512);
    let mut body = Vec::new();
    while !shard.draining.get() {
        let result = probe(&shard, alias, t, &policy, &mut request, &mut body).await;
        let healthy = match &result {
            Ok(()) => Some(true),
            Err(e) if e.kind == Kind::UpstreamRateLimited => None,
            Err(_) => Some(false),
        };
        let changed = shard
            .router
            .borrow_mut()
            .probed(alias, t, healthy, policy.failures);
        let snap = &shard.snapshot;
        let (model, target) = (&snap.models[alias], &snap.models[alias].targets[t]);
        let label = result.as_ref().err().map_or("ok", |e| e.kind.code());
        shard
            .metrics
            .borrow_mut()
            .probe(alias as u32, t as u16, label);
        if changed {
            match &result {
                Ok(()) => log::info!(
                    "shard {}: target {} of {:?} is healthy again",
                    shard.id,
                    target.name,
                    model.alias
                ),
                Err(e) => log::warn!(
                    "shard {}: target {} of {:?} marked down by its health checks: {e}",
                    shard.id,
                    target.name,
                    model.alias
                ),
            }
        }
        monoio::time::sleep(policy.interval).await;
    }
}

/// Sends one probe and judges its answer.
async fn probe(
    shard: &Shard,
    alias: usize,
    t: usize,
    policy: &HealthPolicy,
    request: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    let snap = &shard.snapshot;
    let target = &snap.models[alias].targets[t];
    let provider = &snap.providers[target.provider];
    let origin = &snap.origins[provider.origin.expect("network providers have an origin")];
    let api_key = target.api_key(provider);
    let wire = provider.protocol.wire();
    request.clear();
    match policy.probe {
        Probe::Models => {
            let path = match wire {
                Wire::OpenAi => "/models",
                Wire::Anthropic => "/v1/models",
            };
            head::write_get(request, provider, api_key, origin, path);
        }
        Probe::Chat => {
            // The same tiny body is valid for both protocols.
            let mut json = Vec::with_capacity(128);
            json.extend_from_slice(b"{\"model\":");
            crate::json::push_str(&mut json, &target.model);
            json.extend_from_slice(
                b",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}",
            );
            let path = match wire {
                Wire::OpenAi => Endpoint::Chat.path(),
                Wire::Anthropic => Endpoint::Messages.path(),
            };
            head::write(
                request,
                provider,
                api_key,
                origin,
                path,
                &target.model,
                json.len(),
                false,
            );
            request.extend_from_slice(&json);
        }
    }
    let limits = Timeouts {
        connect: policy.timeout.min(provider.timeouts.connect),
        first_byte: policy.timeout,
        total: policy.timeout,
    };
    let exchange = async {
        let mut resp = shard
            .upstream
            .send(provider, origin, &limits, request)
            .await?;
        body.clear();
        resp.read_to_end(body, MAX_PROBE_BODY).await.map_err(|e| {
            GatewayError::new(Kind::UpstreamProtocol, format!("broken probe answer: {e}"))
        })?;
        let status = resp.status;
        shard.upstream.release(resp, origin);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(translate::classify(wire, status, body))
        }
    };
    match monoio::time::timeout(policy.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(GatewayError::new(
            Kind::UpstreamTimeout,
            format!("no probe answer within {} ms", policy.timeout.as_millis()),
        )),
    }
}
