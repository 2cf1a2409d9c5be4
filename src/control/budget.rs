//! Budgets and limits as control sees them: the soft-budget watch (one alert per period: a log
//! line, a counter, and the webhook), and the limit state shown in key and team info.

use std::sync::atomic::Ordering;

use super::Control;

impl Control {
    /// A soft budget crossed in its current period: said once per period (log line, metric,
    /// and `server.alert_webhook` when set); requests go on.
    pub(super) fn watch_soft_budgets(&mut self) {
        let now = crate::auth::now_ms();
        for (name, (slot, soft)) in &self.slots.soft {
            let window = slot.window.index(now);
            // In cluster mode with what the other replicas took too (0 on a single node).
            let spent = slot.granted(window) + slot.others_used(window);
            if spent < *soft || self.soft_alerted.get(name) == Some(&window) {
                continue;
            }
            self.soft_alerted.insert(name.clone(), window);
            self.handle.soft_alerts.fetch_add(1, Ordering::Relaxed);
            let message = format!(
                "soft budget {name} crossed: ${:.2} of ${:.2} spent or reserved this period",
                spent as f64 / 1e6,
                *soft as f64 / 1e6
            );
            ::log::warn!("{message}");
            if let Some(url) = &self.current.server.alert_webhook {
                alert(url.clone(), name.clone(), message);
            }
        }
    }

    /// Adds `limit_state` to a key's or team's info: every limit it has, with what its
    /// current window has taken (charged, reserved, or leased to a shard), what is left and
    /// when it resets. In cluster mode `used` is the whole cluster's (as Redis last said),
    /// `this_replica` this one's part of it, `other_replicas_hold` what the others hold (at
    /// least what they used), and `remaining` what is left to the whole cluster.
    pub(super) fn add_limit_state(&self, reply: &mut crate::admin::api::Reply) {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
            return;
        };
        let (field, owner) = match (v.get("info"), v.get("team_info")) {
            (Some(info), _) => (
                "info",
                info["key_id"]
                    .as_str()
                    .map(|id| match id.strip_prefix("config:") {
                        Some(_) => id.to_owned(),
                        None => format!("key:{id}"),
                    }),
            ),
            (None, Some(_)) => (
                "team_info",
                v["team_id"].as_str().map(|id| format!("team:{id}")),
            ),
            _ => return,
        };
        let Some(owner) = owner else { return };
        let now = crate::auth::now_ms();
        let prefix = format!("{owner}:");
        let mut state: Vec<serde_json::Value> = self
            .slots
            .all()
            .filter(|s| s.key.starts_with(&prefix))
            .map(|s| {
                let window = s.window.index(now);
                let own = s.granted(window);
                let others = s.others(window);
                let used = own + s.others_used(window);
                let budget = s.key.contains(":budget:");
                let amount = |n: u64| match budget {
                    true => serde_json::json!(n as f64 / 1e6),
                    false => n.into(),
                };
                let mut state = serde_json::json!({
                    "limit": &s.key[prefix.len()..],
                    "capacity": amount(s.capacity()),
                    "used": amount(used),
                    "remaining": amount(s.capacity().saturating_sub(own + others)),
                    "resets_at": s.window.bounds(now).map(|(_, end)| crate::observe::time::iso8601(end)),
                });
                if self.cluster.is_some() {
                    state["this_replica"] = amount(own);
                    state["other_replicas_hold"] = amount(others);
                }
                state
            })
            .collect();
        state.sort_by(|a, b| a["limit"].as_str().cmp(&b["limit"].as_str()));
        if let Some(info) = v.get_mut(field) {
            info["limit_state"] = serde_json::Value::Array(state);
            if let Ok(body) = serde_json::to_vec(&v) {
                reply.body = body;
            }
        }
    }
}

/// POSTs a soft-budget alert to the webhook with the CLI's small HTTP client, on its own
/// short-lived thread (a slow receiver never holds up control).
fn alert(url: String, budget: String, message: String) {
    use crate::cli::client::{self, Endpoint, Method, Request};
    let _ = std::thread::Builder::new().name("alert".into()).spawn(move || {
        let body = serde_json::json!({"event": "soft_budget_crossed", "budget": budget, "message": message});
        let sent = Endpoint::parse(&url).and_then(|endpoint| {
            // The URL's path is the endpoint's prefix; a URL without one posts to `/`.
            let bare = url["http://".len()..].trim_end_matches('/').find('/').is_none();
            let request = Request {
                method: Method::Post,
                target: if bare { "/".to_owned() } else { String::new() },
                body: Some(body.to_string().into_bytes()),
            };
            client::send(&endpoint, &request, None).map_err(|e| e.to_string())
        });
        match sent {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => ::log::warn!("soft-budget alert to {url}: the webhook answered {}", r.status),
            Err(e) => ::log::warn!("soft-budget alert to {url} not delivered: {e}"),
        }
    });
}
