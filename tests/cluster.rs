//! Cluster mode against a real Redis (scripts/services/redis.sh): three gateway processes
//! sharing one limit never admit more than it, and a replica whose Redis is gone (at start or
//! mid-run) falls back to its share of each limit, refuses budgets, says so in a metric and a
//! log line, and resumes by itself when Redis is back. With PostgreSQL too, a key made on
//! one replica is limited across both.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::redis::{self, Redis};
use common::{Driver, Gateway, http, mock};

/// A gateway of a cluster of `replicas` on `url`: alias `lim` with `limits`, alias `priced`
/// (a target with a price), key team-a with a budget of $1,000.
fn replica(
    upstream: &str,
    url: &str,
    prefix: &str,
    replicas: u32,
    shards: u32,
    limits: &str,
) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: {shards}
  pin: false
cluster:
  redis: {{ url: {url}, prefix: "{prefix}" }}
  replicas: {replicas}
providers:
  up:
    protocol: openai
    base_url: {upstream}/v1
    api_key: {{ env: UPSTREAM_KEY }}
models:
  lim:
    limits: {limits}
    targets:
      - {{ provider: up, model: upstream-mini }}
  priced:
    targets:
      - {{ provider: up, model: upstream-mini, price: {{ input: 1000, output: 2000 }} }}
keys:
  - name: team-a
    key: {{ env: TEAM_A_KEY }}
    max_budget: 1000
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#
    )
}

/// What an answer of alias `priced` cost, from its usage at the target's price.
fn priced_cost(answer: &serde_json::Value) -> f64 {
    common::cost(answer, 1000.0, 2000.0)
}

fn chat(gw: &Gateway, key: &str, model: &str) -> http::Response {
    gw.chat_as(
        key,
        &format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
    )
}

/// Waits, if need be, until at least `secs` are left in the current UTC window of `window`
/// seconds (so what a test counts against a limit falls in one window).
fn with_time_left(window: u64, secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = window - now % window;
    if left < secs {
        std::thread::sleep(Duration::from_secs(left) + Duration::from_millis(50));
    }
}

/// Three replicas of `cfg`, each once its Redis answers.
fn three(cfg: &str) -> Vec<Arc<Gateway>> {
    let gws: Vec<Arc<Gateway>> = (0..3)
        .map(|_| Arc::new(Gateway::start(cfg, Driver::Uring)))
        .collect();
    for gw in &gws {
        wait_line(gw, "shardgate_cluster_pool_up 1");
    }
    gws
}

/// Polls `/metrics` until `line` appears, for up to 15 s (reconnecting waits out a backoff).
fn wait_line(gw: &Gateway, line: &str) {
    gw.wait_metric_within(line, Duration::from_secs(15));
}

/// Three replicas × two shards hammer one `rpm: 60` limit through one Redis: never more than
/// 60 admitted (README: requests never pass their limit across replicas). Prints the figure.
#[test]
fn three_replicas_never_pass_a_shared_limit() {
    let up = mock();
    let gws = three(&replica(
        &up.base_url(),
        &Redis::shared().url,
        &redis::prefix(),
        3,
        2,
        "{ rpm: 60 }",
    ));
    with_time_left(60, 20);
    let per_replica: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..9)
        .map(|i| {
            let (gw, ok, refused) = (
                gws[i % 3].clone(),
                per_replica[i % 3].clone(),
                refused.clone(),
            );
            std::thread::spawn(move || {
                let mut c = http::Client::connect(gw.api);
                let auth = format!("Bearer {}", common::ADMIN);
                let body = br#"{"model":"lim","messages":[{"role":"user","content":"hi"}]}"#;
                // Until this replica sees the whole cluster's window spent (300 tries at most).
                for _ in 0..300 {
                    c.send(
                        "POST",
                        "/v1/chat/completions",
                        &[("authorization", &auth)],
                        body,
                    );
                    let r = c.read_response();
                    match r.status {
                        200 => ok.fetch_add(1, Ordering::SeqCst),
                        429 => refused.fetch_add(1, Ordering::SeqCst),
                        other => panic!("status {other}"),
                    };
                    let spent = r.header("x-ratelimit-remaining-requests") == Some("0");
                    if r.status == 429 && spent {
                        break;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let each: Vec<u64> = per_replica
        .iter()
        .map(|n| n.load(Ordering::SeqCst))
        .collect();
    let ok: u64 = each.iter().sum();
    eprintln!(
        "rpm 60 across 3 replicas × 2 shards, 9 clients: {ok} admitted ({each:?} by replica), {} refused",
        refused.load(Ordering::SeqCst)
    );
    assert!(ok <= 60, "{ok} admitted past the limit of 60");
    assert!(
        each.iter().all(|&n| n > 0),
        "every replica got a share: {each:?}"
    );
    assert_eq!(
        up.stats().requests,
        ok,
        "each admitted request reached the upstream once"
    );
}

/// A replica whose Redis is not there at start serves on its share (`rph: 10`, 2 replicas:
/// 5) and refuses budgets; Redis starting makes it resume; Redis killed mid-run brings the
/// fallback back, and a restarted (empty) Redis ends it again.
#[test]
fn without_redis_a_replica_falls_back_and_resumes_by_itself() {
    let up = mock();
    let port = redis::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let cfg = replica(&up.base_url(), &url, &redis::prefix(), 2, 1, "{ rph: 10 }");
    let gw = Gateway::start(&cfg, Driver::Uring);
    let statuses = |n: usize, key: &str, model: &str| -> Vec<u16> {
        (0..n).map(|_| chat(&gw, key, model).status).collect()
    };
    // Unreachable at start: the gauge says so, and so does a log line.
    wait_line(&gw, "shardgate_cluster_pool_up 0");
    let said = || {
        let err = gw.stderr.lock().unwrap();
        err.contains("cluster pool: Redis (cluster.redis.url) unreachable")
    };
    assert!(common::eventually(Duration::from_secs(5), said));
    with_time_left(3600, 30);
    let lim = statuses(8, common::ADMIN, "lim");
    assert_eq!(
        lim.iter().filter(|&&s| s == 200).count(),
        5,
        "half of 10: {lim:?}"
    );
    let r = chat(&gw, common::TEAM_A, "priced");
    assert_eq!(r.status, 429, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("shared budget pool is unreachable"), "{msg}");
    assert_eq!(r.json()["error"]["code"], "budget_exceeded");
    assert_eq!(r.header("retry-after"), Some("1"));

    // Redis comes: shared again. The 5 already admitted count; 10 in all, never more.
    let mut redis = Redis::start(Some(port));
    wait_line(&gw, "shardgate_cluster_pool_up 1");
    let said = || gw.stderr.lock().unwrap().contains("answers again");
    assert!(common::eventually(Duration::from_secs(5), said));
    let admitted = AtomicU64::new(5);
    let filled = common::eventually(Duration::from_secs(10), || {
        if chat(&gw, common::ADMIN, "lim").status == 200 {
            admitted.fetch_add(1, Ordering::SeqCst);
        }
        admitted.load(Ordering::SeqCst) >= 10
    });
    assert!(
        filled,
        "only {admitted:?} of 10 admitted once Redis was back"
    );
    assert!(statuses(3, common::ADMIN, "lim").iter().all(|&s| s == 429));
    let budget_ok = common::eventually(Duration::from_secs(10), || {
        chat(&gw, common::TEAM_A, "priced").status == 200
    });
    assert!(budget_ok, "the budget never came back");

    // Killed mid-run, under traffic no limit applies to (served throughout): budgets refuse
    // again; restarted empty, Redis learns the counts back.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let served_through = std::thread::scope(|scope| {
        let traffic = scope.spawn(|| {
            // Bounded, so a failing assertion below cannot leave it running.
            let (mut n, until) = (0u64, std::time::Instant::now() + Duration::from_secs(60));
            while !stop.load(Ordering::SeqCst) && n < 50_000 && std::time::Instant::now() < until {
                let r = chat(&gw, common::ADMIN, "priced");
                assert_eq!(r.status, 200, "{}", r.text());
                n += 1;
            }
            n
        });
        redis.kill();
        wait_line(&gw, "shardgate_cluster_pool_up 0");
        let r = chat(&gw, common::TEAM_A, "priced");
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(
            statuses(2, common::ADMIN, "lim").iter().all(|&s| s == 429),
            "10 of 10 were used"
        );
        redis.restart();
        wait_line(&gw, "shardgate_cluster_pool_up 1");
        let budget_ok = common::eventually(Duration::from_secs(10), || {
            chat(&gw, common::TEAM_A, "priced").status == 200
        });
        assert!(budget_ok, "the budget never came back after the restart");
        assert!(
            statuses(2, common::ADMIN, "lim").iter().all(|&s| s == 429),
            "the counts came back"
        );
        stop.store(true, Ordering::SeqCst);
        traffic.join().unwrap()
    });
    eprintln!("served through the outage and the restart: {served_through} requests");
    assert!(served_through > 0);
    assert_eq!(
        up.stats().requests,
        10 + 2 + served_through,
        "10 on lim, 2 on priced with the budget, the rest through the outage"
    );
}

/// A budget of $0.50 on a key of three replicas, hammered on all three: what they serve
/// together costs no more than it (README: spend reserved against the shared pool).
#[test]
fn a_budget_holds_across_replicas() {
    let up = mock();
    let cfg = replica(
        &up.base_url(),
        &Redis::shared().url,
        &redis::prefix(),
        3,
        1,
        "{ rpm: 1000 }",
    );
    let gws = three(&cfg.replace("max_budget: 1000", "max_budget: 0.5"));
    let body = r#"{"model":"priced","max_tokens":40,"messages":[{"role":"user","content":"hello there"}]}"#;
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let gw = gws[i % 3].clone();
            std::thread::spawn(move || {
                (0..15)
                    .map(|_| {
                        let r = gw.chat_as(common::TEAM_A, body);
                        (r.status, r.json())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(u16, serde_json::Value)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let served: Vec<&serde_json::Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, j)| j)
        .collect();
    let spent: f64 = served.iter().map(|j| priced_cost(j)).sum();
    eprintln!(
        "budget $0.50 across 3 replicas: {} served for ${spent:.4}, {} refused",
        served.len(),
        results.len() - served.len()
    );
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 429));
    assert!(!served.is_empty() && served.len() < results.len());
    assert!(spent <= 0.5 + 1e-9, "spent ${spent} of $0.50");
}

/// The whole cluster: two replicas on one PostgreSQL (keys) and one Redis (limits). A key made
/// through replica A's admin API, with `rpm_limit: 20`, works on B within a second and gets 20
/// a minute across both, not 20 on each; deleted on B, A refuses it within a second.
#[test]
fn a_key_made_on_one_replica_is_limited_across_both() {
    let up = mock();
    let url = common::pg::shared().database();
    let spool = common::TempDir::new();
    let prefix = redis::prefix();
    let cfg = |name: &str| {
        common::config(&up.base_url(), "  master_key: { env: MASTER_KEY }\n").replacen(
            "providers:",
            &format!(
                "{}cluster:\n  redis: {{ url: {}, prefix: \"{}\" }}\n  replicas: 2\nproviders:",
                common::pg::store(&url, &spool.0.join(name)),
                Redis::shared().url,
                prefix,
            ),
            1,
        )
    };
    let (a, b) = (
        Gateway::start(&cfg("a"), Driver::Uring),
        Gateway::start(&cfg("b"), Driver::Uring),
    );
    for gw in [&a, &b] {
        wait_line(gw, "shardgate_cluster_pool_up 1");
    }
    with_time_left(60, 20);
    let made = a.admin_call("POST", "/key/generate", r#"{"rpm_limit":20}"#);
    assert_eq!(made.status, 200, "{}", made.text());
    let key = made.json()["key"].as_str().unwrap().to_owned();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    // B learns of the key from PostgreSQL; until then it refuses it (401), and each of those
    // costs nothing against the limit.
    assert!(
        common::eventually(Duration::from_secs(1), || b.chat_as(&key, body).status
            != 401),
        "replica B never accepted the key made on A"
    );
    // Alternating between the replicas until the window is spent (a refusal while the other
    // replica still holds part of it is retried after a pause: shares move every 50 ms), then
    // as many again: nothing more may be admitted in this minute.
    let mut admitted = 1; // B's first accepted request above
    let mut tries = 0;
    while admitted < 20 && tries < 400 {
        match [&a, &b][tries % 2].chat_as(&key, body).status {
            200 => admitted += 1,
            429 => std::thread::sleep(Duration::from_millis(10)),
            other => panic!("status {other}"),
        }
        tries += 1;
    }
    let spent_after = tries;
    for i in 0..40 {
        match [&a, &b][i % 2].chat_as(&key, body).status {
            200 => admitted += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    eprintln!(
        "rpm_limit 20 on two replicas: {admitted} admitted ({spent_after} tries to spend it)"
    );
    assert_eq!(admitted, 20, "rpm_limit 20 across two replicas");
    // Each replica's /key/info tells the cluster's use (its own part, what the other holds)
    // and that nothing is left to the cluster.
    for gw in [&a, &b] {
        let rpm = || {
            let info = gw.admin_call("GET", &format!("/key/info?key={key}"), "");
            assert_eq!(info.status, 200, "{}", info.text());
            let state = info.json()["info"]["limit_state"].clone();
            let rpm = state
                .as_array()
                .and_then(|l| l.iter().find(|s| s["limit"] == "rpm"));
            rpm.cloned().unwrap_or_else(|| panic!("no rpm in {state}"))
        };
        // The other replica's part as of control's last round trip to Redis (every 50 ms).
        common::eventually(Duration::from_secs(1), || rpm()["used"] == 20);
        let rpm = rpm();
        assert_eq!(rpm["used"], 20, "{rpm}");
        assert_eq!(rpm["remaining"], 0, "{rpm}");
        let own = rpm["this_replica"].as_u64().unwrap();
        assert!(own > 0 && own < 20, "{rpm}");
        assert!(
            rpm["other_replicas_hold"].as_u64().unwrap() >= 20 - own,
            "{rpm}"
        );
    }

    let gone = b.admin_call("POST", "/key/delete", &format!(r#"{{"keys":["{key}"]}}"#));
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(
        common::eventually(Duration::from_secs(1), || a.chat_as(&key, body).status
            == 401),
        "replica A still takes the key deleted on B"
    );
}

/// A soft budget watches the cluster's spend, not one replica's: two replicas each spend
/// under it, together over it, and the alert comes (once per replica at most).
#[test]
fn a_soft_budget_sees_the_whole_clusters_spend() {
    let up = mock();
    let cfg = replica(
        &up.base_url(),
        &Redis::shared().url,
        &redis::prefix(),
        2,
        1,
        "{ rpm: 1000 }",
    )
    .replace(
        "max_budget: 1000",
        "soft_budget: 0.6\n    budget_duration: 1d",
    );
    let gws: Vec<Gateway> = (0..2)
        .map(|_| Gateway::start(&cfg, Driver::Uring))
        .collect();
    for gw in &gws {
        wait_line(gw, "shardgate_cluster_pool_up 1");
    }
    let body = r#"{"model":"priced","max_tokens":40,"messages":[{"role":"user","content":"hello there"}]}"#;
    let mut spent = [0.0f64; 2];
    for i in 0..16 {
        let r = gws[i % 2].chat_as(common::TEAM_A, body);
        assert_eq!(r.status, 200, "a soft budget refuses nothing: {}", r.text());
        spent[i % 2] += priced_cost(&r.json());
    }
    eprintln!(
        "soft budget $0.60: spent ${:.3} and ${:.3}",
        spent[0], spent[1]
    );
    assert!(spent.iter().all(|s| *s < 0.6) && spent.iter().sum::<f64>() > 0.6);
    let alerts = |gw: &Gateway| gw.metric("shardgate_soft_budget_alerts_total").unwrap_or(0);
    // Each replica learns the other's last requests within about a second of them.
    let alerted = common::eventually(Duration::from_secs(5), || {
        gws.iter().map(alerts).sum::<u64>() >= 1
    });
    assert!(alerted, "no replica alerted");
    assert!(gws.iter().all(|gw| alerts(gw) <= 1));
}

/// The replicas alive are counted in Redis and shown; fewer than `cluster.replicas` (whose
/// fallback share assumes that many) is said in a log line. A third replica joining is seen.
#[test]
fn the_replicas_alive_are_counted() {
    let up = mock();
    let cfg = replica(
        &up.base_url(),
        &Redis::shared().url,
        &redis::prefix(),
        3,
        1,
        "{ rpm: 1000 }",
    );
    let two: Vec<Gateway> = (0..2)
        .map(|_| Gateway::start(&cfg, Driver::Uring))
        .collect();
    for gw in &two {
        wait_line(gw, "shardgate_cluster_replicas_alive 2");
    }
    let said = common::eventually(Duration::from_secs(5), || {
        two[0]
            .stderr
            .lock()
            .unwrap()
            .contains("2 replicas alive in Redis, configured for 3")
    });
    assert!(said, "{}", two[0].stderr.lock().unwrap());
    let third = Gateway::start(&cfg, Driver::Uring);
    for gw in two.iter().chain([&third]) {
        wait_line(gw, "shardgate_cluster_replicas_alive 3");
    }
    let back = common::eventually(Duration::from_secs(5), || {
        two[0]
            .stderr
            .lock()
            .unwrap()
            .contains("3 replicas alive in Redis, as configured")
    });
    assert!(back, "{}", two[0].stderr.lock().unwrap());
}

/// A request that needs more than a replica's base share of a budget (here its worst-case
/// cost, $0.105, against $0.50 shared by three) is not refused while the budget has room:
/// the shard waits once for control to reserve the shortfall.
#[test]
fn a_request_larger_than_a_share_waits_for_it() {
    let up = mock();
    let cfg = replica(
        &up.base_url(),
        &Redis::shared().url,
        &redis::prefix(),
        3,
        1,
        "{ rpm: 1000 }",
    )
    .replace("max_budget: 1000", "max_budget: 0.5");
    let gws = three(&cfg);
    let body = r#"{"model":"priced","max_tokens":40,"messages":[{"role":"user","content":"hello there"}]}"#;
    for gw in &gws {
        let r = gw.chat_as(common::TEAM_A, body);
        assert_eq!(r.status, 200, "{}", r.text());
    }
}
