//! Active health checks: for every alias with `health:` in its config, each target is probed
//! at start and then every interval, and the result goes to the shard's router, which leaves a
//! target out of every plan while its probes fail. So a provider that went away is found by
//! a probe instead of by the next user's request.
//!
//! Each shard probes for its own router (shards share nothing), so N shards send N probes per
//! target per interval; the first probes are spread over the interval by shard. A probe task
//! belongs to one (alias, target) by name and to what it probes (provider, origin, model,
//! credentials, policy): a reload that keeps all of that keeps the task, one that changes it
//! starts a new task, and the old one ends at its next wake. A probe is
//! `GET …/models` (free) or a one-token chat to the target's model. A 2xx is healthy; a 429
//! says nothing either way; anything else (connect failure, timeout, 5xx, rejected credentials)
//! counts as a failure.

use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use super::generation::Generation;
use super::shard::Shard;
use crate::config::{HealthPolicy, Probe, Timeouts};
use crate::error::{GatewayError, Kind};

use crate::providers::Endpoint;
use crate::providers::adapter::Head;
use crate::providers::canonical::{ChatRequest, Message, Part, Role, Stamp};

/// Largest probe answer read (a models list); more is a failed probe.
const MAX_PROBE_BODY: usize = 4 << 20;

/// Brings the probe tasks in line with the current generation: a task for every target of an
/// alias with `health:`, started where
/// none probes the same thing already.
pub fn restart(shard: &Rc<Shard>) {
    let generation = shard.generation();
    let snap = &generation.config;
    let shards = shard.count.max(1);
    let mut wanted = std::collections::HashMap::new();
    for model in &snap.models {
        let Some(policy) = model.health else { continue };
        for target in &model.targets {
            let key = (model.alias.clone(), target.name.clone());
            wanted.insert(key, (fingerprint(snap, target, &policy), policy));
        }
    }
    let mut probes = shard.probes.borrow_mut();
    probes.retain(|k, (fp, _)| wanted.get(k).is_some_and(|(w, _)| w == fp));
    for (key, (fp, policy)) in wanted {
        if probes.contains_key(&key) {
            continue;
        }
        let token = shard.probe_token();
        probes.insert(key.clone(), (fp, token));
        let offset = policy.interval * shard.id as u32 / shards as u32;
        monoio::spawn(watch(shard.clone(), key, token, policy, offset));
    }
}

/// What a probe of `target` depends on; a reload that changes it restarts the probe.
fn fingerprint(
    snap: &crate::config::Snapshot,
    target: &crate::config::Target,
    policy: &HealthPolicy,
) -> u64 {
    let provider = &snap.providers[target.provider];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!(
        "{provider:?}|{:?}|{}|{policy:?}",
        provider.origin.map(|o| &snap.origins[o]),
        target.model
    )
    .hash(&mut h);
    target.api_key(provider).map(|k| k.expose()).hash(&mut h);
    h.finish()
}

/// Probes one target until the shard drains or the task is superseded (its token is no
/// longer the registered one for the target).
async fn watch(
    shard: Rc<Shard>,
    key: (String, String),
    token: u64,
    policy: HealthPolicy,
    offset: Duration,
) {
    monoio::time::sleep(offset).await;
    let mut request = Vec::with_capacity(512);
    let mut body = Vec::new();
    let current = |shard: &Shard| {
        shard
            .probes
            .borrow()
            .get(&key)
            .is_some_and(|(_, t)| *t == token)
    };
    while !shard.draining.get() && current(&shard) {
        // Each probe runs under the generation current at its start, found by name.
        let generation = shard.generation();
        let snap = &generation.config;
        let Some((alias, model)) = snap.model(&key.0) else {
            return;
        };
        let Some(t) = model.targets.iter().position(|t| t.name == key.1) else {
            return;
        };
        let result = probe(&generation, alias, t, &policy, &mut request, &mut body).await;
        let healthy = match &result {
            Ok(()) => Some(true),
            Err(e) if e.kind == Kind::UpstreamRateLimited => None,
            Err(_) => Some(false),
        };
        let changed = generation
            .router
            .borrow_mut()
            .probed(alias, t, healthy, policy.failures);
        let target = &model.targets[t];
        let label = result.as_ref().err().map_or("ok", |e| e.kind.label());
        shard
            .metrics
            .borrow_mut()
            .probe(snap.labels.target[alias][t], label);
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
        drop(generation);
        monoio::time::sleep(policy.interval).await;
    }
}

/// Sends one probe and judges its answer.
async fn probe(
    generation: &Generation,
    alias: usize,
    t: usize,
    policy: &HealthPolicy,
    request: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    let snap = &generation.config;
    let target = &snap.models[alias].targets[t];
    let provider = &snap.providers[target.provider];
    let origin = &snap.origins[provider.origin.expect("network providers have an origin")];
    let api_key = target.api_key(provider);
    let adapter = provider.protocol.adapter_for(&target.model);
    request.clear();
    adapter.ready(provider)?;
    let mut json = Vec::new();
    let probe = if adapter.lists_models() {
        policy.probe
    } else {
        Probe::Chat
    };
    if probe == Probe::Chat {
        // The smallest chat there is, in the provider's own protocol.
        let r = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text("ping".into())],
            }],
            max_tokens: Some(1),
            ..ChatRequest::default()
        };
        let stamp = Stamp {
            model: &target.model,
            created: 0,
            default_max_tokens: 1,
            id: "",
        };
        adapter.encode_request(&r, &stamp, &mut json, &mut Vec::new());
    }
    let head = Head {
        provider,
        api_key,
        origin,
        endpoint: Endpoint::Chat,
        model: &target.model,
        body: &json,
        stream: false,
        now: crate::auth::now_ms() as u64 / 1000,
    };
    match probe {
        Probe::Models => adapter.write_models_probe(request, &head),
        Probe::Chat => {
            adapter.write_head(request, &head);
            request.extend_from_slice(&json);
        }
    }
    let limits = Timeouts {
        connect: policy.timeout.min(provider.timeouts.connect),
        first_byte: policy.timeout,
        total: policy.timeout,
    };
    let exchange = async {
        let mut resp = generation
            .upstream
            .send(provider, origin, &limits, request)
            .await?;
        body.clear();
        resp.read_to_end(body, MAX_PROBE_BODY).await.map_err(|e| {
            GatewayError::new(Kind::UpstreamProtocol, format!("broken probe answer: {e}"))
        })?;
        let status = resp.status;
        generation.upstream.release(resp, origin);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(adapter.classify(status, body))
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
