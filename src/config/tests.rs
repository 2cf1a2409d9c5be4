use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "LOCAL_API_KEY" => Some("sk-local".into()),
        "TEAM_A_KEY" => Some("sg-a".into()),
        _ => None,
    }
}

const GOOD: &str = r#"
server:
  listen: 127.0.0.1:8080
  admin_listen: 127.0.0.1:9090
  shards: 2
  max_body_bytes: 4194304
providers:
  local:
    protocol: openai
    base_url: http://127.0.0.1:9001/v1
    api_key: { env: LOCAL_API_KEY }
models:
  gpt-4o-mini:
    targets:
      - { provider: local, model: gpt-4o-mini }
keys:
  - name: team-a
    key: { env: TEAM_A_KEY }
    models: [gpt-4o-mini]
"#;

#[test]
fn the_documented_shape_loads() {
    let s = load_str(GOOD, &env).unwrap();
    assert_eq!(s.server.shards, Shards::Count(2));
    assert_eq!(s.providers[0].base_path, "/v1");
    assert_eq!(
        s.providers[0].api_key.as_ref().unwrap().expose(),
        "sk-local"
    );
    assert_eq!(s.origins[0].authority, "127.0.0.1:9001");
    assert_eq!(
        s.model("gpt-4o-mini").unwrap().1.targets[0].model,
        "gpt-4o-mini"
    );
    assert_eq!(s.keys.len(), 1);
    // Secrets never show in Debug output.
    assert!(!format!("{s:?}").contains("sk-local"));
}

#[test]
fn embedded_default_and_examples_load() {
    load_str(EMBEDDED_DEFAULT, &env).unwrap();
    let all = |name: &str| match name.contains("REDIS") {
        true => Some("redis://127.0.0.1:6379/0".to_owned()),
        false => Some(format!("secret-of-{name}")),
    };
    for f in [
        "examples/openai.yaml",
        "examples/self-hosted.yaml",
        "examples/multi-provider.yaml",
        "examples/managed.yaml",
        "examples/cluster/replica-a.yaml",
        "examples/cluster/replica-b.yaml",
        "examples/cluster/limits.yaml",
        "deploy/shardgate.yaml",
    ] {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + f)
            .unwrap();
        let s = load_str(&text, &all).unwrap_or_else(|p| panic!("{f}: {p}"));
        assert!(!s.models.is_empty());
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let bad = r#"
server:
  listen: nowhere
  shards: 0
  colour: blue
providers:
  local:
    protocol: opnai
    base_url: http://127.0.0.1:9001/v1
  other:
    protocol: openai
    base_url: ftp://x
    api_key: { env: MISSING_KEY }
models:
  gpt-4o:
    targets:
      - { provider: local, model: a }
      - { provider: opnai, model: b }
  empty:
    targets: []
keys:
  - name: k
    key: { env: TEAM_A_KEY }
    models: [gpt-5]
"#;
    let p = load_str(bad, &env).unwrap_err().0;
    let expect = [
        "server.listen: \"nowhere\" is not an address",
        "server.shards: expected \"auto\" or an integer",
        "server.colour: unknown field",
        "providers.local.protocol: unknown protocol \"opnai\"",
        "providers.other.api_key: environment variable MISSING_KEY is not set",
        "providers.other.base_url: \"ftp://x\": must start with http:// or https://",
        "models.gpt-4o.targets[1].provider: no provider named \"opnai\"",
        "models.empty.targets: needs at least one target",
        "keys[0].models[0]: no model named \"gpt-5\"",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn urls_split_into_origin_and_path() {
    use super::wire::split_url;
    assert_eq!(
        split_url("https://api.openai.com/v1/").unwrap(),
        (true, "api.openai.com".into(), 443, "/v1".into())
    );
    assert_eq!(
        split_url("http://[::1]:8000").unwrap(),
        (false, "::1".into(), 8000, "".into())
    );
    assert!(split_url("http://h:99999").is_err());
    assert!(split_url("http://h/v1?x=1").is_err());
}

#[test]
fn duplicate_keys_and_empty_files() {
    let dup = "keys:\n  - { name: a, key: { env: TEAM_A_KEY } }\n  - { name: b, key: { env: TEAM_A_KEY } }\n";
    let p = load_str(dup, &env).unwrap_err().0;
    assert!(
        p[0].starts_with("keys[1]: key \"b\" has the same secret"),
        "{p:?}"
    );
    let s = load_str("", &env).unwrap();
    assert!(s.keys.is_empty() && s.models.is_empty());
}

#[test]
fn runtime_knobs() {
    let s = load_str(
        "server:\n  cpus: [1, 0]\n  io_uring_entries: 4096\n  sqpoll_idle_ms: 2\n",
        &env,
    )
    .unwrap();
    assert_eq!(s.server.cpus, Some(vec![1, 0]));
    assert_eq!(s.server.io_uring_entries, 4096);
    assert_eq!(s.server.sqpoll_idle_ms, Some(2));
    let p = load_str("server:\n  cpus: []\n  io_uring_entries: 1000\n", &env)
        .unwrap_err()
        .0;
    assert!(p.iter().any(|l| l.starts_with("server.cpus:")), "{p:?}");
    assert!(
        p.iter()
            .any(|l| l.starts_with("server.io_uring_entries: must be a power of two")),
        "{p:?}"
    );
}

#[test]
fn family_members_need_only_their_key() {
    let text = r#"
providers:
  claude:
    protocol: anthropic
    api_key: { env: LOCAL_API_KEY }
    anthropic_beta: [prompt-caching-2024-07-31, output-128k-2025-02-19]
    default_max_tokens: 8192
  groq:
    protocol: groq
    api_key: { env: LOCAL_API_KEY }
  azure:
    protocol: azure
    base_url: https://res.openai.azure.com
    api_key: { env: LOCAL_API_KEY }
  ollama:
    protocol: ollama
  oa:
    protocol: openai
    api_key: { env: LOCAL_API_KEY }
    organization: org-1
    project: proj-1
"#;
    let s = load_str(text, &env).unwrap();
    let p = |name: &str| s.providers.iter().find(|p| p.name == name).unwrap();
    let claude = p("claude");
    assert_eq!(claude.protocol, Protocol::Anthropic);
    assert_eq!(
        s.origins[claude.origin.unwrap()].authority,
        "api.anthropic.com"
    );
    assert!(
        claude
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into()))
    );
    assert!(claude.headers.contains(&(
        "anthropic-beta".into(),
        "prompt-caching-2024-07-31,output-128k-2025-02-19".into()
    )));
    assert_eq!(claude.default_max_tokens, 8192);
    let groq = p("groq");
    assert_eq!(
        (groq.protocol, groq.vendor.name),
        (Protocol::OpenAi, "groq")
    );
    assert_eq!(s.origins[groq.origin.unwrap()].authority, "api.groq.com");
    assert_eq!(groq.base_path, "/openai/v1");
    assert_eq!(p("azure").api_version.as_deref(), Some("2024-10-21"));
    assert!(p("ollama").api_key.is_none());
    assert!(
        p("oa")
            .headers
            .contains(&("openai-organization".into(), "org-1".into()))
    );
    assert!(
        p("oa")
            .headers
            .contains(&("openai-project".into(), "proj-1".into()))
    );
}

#[test]
fn protocol_settings_belong_to_their_protocol() {
    let text = r#"
providers:
  a:
    protocol: openai
    base_url: http://127.0.0.1:1/v1
    anthropic_version: "2023-06-01"
  b:
    protocol: groq
  c:
    protocol: anthropic
    api_key: { env: LOCAL_API_KEY }
    api_version: "2024-10-21"
  d:
    protocol: claude
"#;
    let p = load_str(text, &env).unwrap_err().0;
    for e in [
        "providers.a.anthropic_version: only for protocol anthropic, not openai",
        "providers.b.api_key: missing: protocol groq needs an API key",
        "providers.c.api_version: only for protocol azure, not anthropic",
        "providers.d.protocol: unknown protocol \"claude\" (one of: openai, openai-responses, azure",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

// === routes (the `models:` section) ===

const ROUTES: &str = r#"
providers:
  openai: { protocol: openai, base_url: "http://127.0.0.1:9001/v1", api_key: { env: LOCAL_API_KEY } }
  claude: { protocol: anthropic, base_url: "http://127.0.0.1:9002", api_key: { env: LOCAL_API_KEY } }
models:
  fast:
    strategy: least-latency
    targets:
      - { provider: openai, model: gpt-4o-mini, weight: 3, max_concurrent: 200 }
      - { provider: claude, model: claude-haiku-4-5, weight: 1, name: haiku,
          api_key: { env: TEAM_A_KEY },
          price: { input: 0.15, output: 0.60, cached_input: 0.075 } }
      - { provider: openai, model: my-deployment }
    fallbacks: [backup, big]
    fallback_on: { context_window: big, content_policy: backup }
    retry: { attempts: 3, backoff_ms: 0, max_backoff_ms: 1000 }
    timeouts: { first_byte_ms: 20000, total_ms: 600000 }
    breaker: { failures: 3, failure_rate: 0.25, window: 40, cooldown_ms: 5000, half_open_probes: 2 }
    rules:
      - { when: { tag: batch }, targets: [haiku] }
      - { when: { min_prompt_tokens: 100000, max_prompt_tokens: 200000 }, targets: [haiku, openai/my-deployment] }
      - { when: { user: alice, team: team-a }, targets: [haiku] }
      - { when: { canary: 12.5 }, targets: [openai/gpt-4o-mini] }
  backup:
    targets:
      - { provider: claude, model: claude-sonnet-4-5 }
  big:
    strategy: priority
    targets:
      - { provider: claude, model: claude-sonnet-4-5 }
    fallbacks: [fast]
"#;

#[test]
fn every_route_field_loads() {
    use crate::config::routes::*;
    use std::time::Duration;
    let s = load_str(ROUTES, &env).unwrap();
    let (_, fast) = s.model("fast").unwrap();
    let (backup, big) = (s.model_index["backup"], s.model_index["big"]);
    assert_eq!(fast.strategy, Strategy::LeastLatency);
    let t = &fast.targets;
    assert_eq!(t[0].name, "openai/gpt-4o-mini");
    assert_eq!((t[0].weight, t[0].max_concurrent), (3, Some(200)));
    assert_eq!(t[0].price.unwrap().input, 0.15, "from the shipped table");
    assert!(t[0].api_key.is_none());
    assert_eq!((t[1].name.as_str(), t[1].weight), ("haiku", 1));
    assert_eq!(t[1].api_key.as_ref().unwrap().expose(), "sg-a");
    let p = t[1].price.unwrap();
    assert_eq!(
        (p.input, p.output, p.cached_input, p.cache_write),
        (0.15, 0.60, 0.075, 0.15)
    );
    assert_eq!(t[2].price, None, "unknown model, no price");
    assert_eq!(fast.fallbacks, [backup, big]);
    assert_eq!(
        fast.fallback_on,
        FallbackOn {
            context_window: Some(big),
            content_policy: Some(backup)
        }
    );
    assert_eq!(
        fast.fallback_for(crate::error::Kind::UpstreamContextWindow),
        Some(big)
    );
    assert_eq!(fast.fallback_for(crate::error::Kind::UpstreamServer), None);
    assert_eq!(
        fast.retry,
        RetryPolicy {
            attempts: 3,
            backoff: Duration::ZERO,
            max_backoff: Duration::from_secs(1)
        }
    );
    assert_eq!(fast.timeouts.first_byte, Some(Duration::from_secs(20)));
    assert_eq!(fast.timeouts.total, Some(Duration::from_secs(600)));
    let merged = fast.timeouts_for(&s.providers[0]);
    assert_eq!(merged.first_byte, Duration::from_secs(20));
    assert_eq!(merged.connect, s.providers[0].timeouts.connect);
    assert_eq!(
        fast.breaker,
        BreakerPolicy {
            failures: 3,
            failure_rate: 0.25,
            window: 40,
            cooldown: Duration::from_secs(5),
            half_open_probes: 2
        }
    );
    let r = &fast.rules;
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].when.tag.as_deref(), Some("batch"));
    assert_eq!(r[0].targets.bits(), 0b010);
    assert_eq!(
        (r[1].when.min_prompt_tokens, r[1].when.max_prompt_tokens),
        (Some(100_000), Some(200_000))
    );
    assert_eq!(r[1].targets.bits(), 0b110);
    assert_eq!(
        (r[2].when.user.as_deref(), r[2].when.team.as_deref()),
        (Some("alice"), Some("team-a"))
    );
    assert_eq!((r[3].when.canary, r[3].targets.bits()), (Some(1250), 0b001));
    // Defaults, and a forward reference back to `fast`.
    let (_, b) = s.model("backup").unwrap();
    assert_eq!(b.strategy, Strategy::Weighted);
    assert_eq!(b.retry, RetryPolicy::default());
    assert_eq!(b.retry.attempts, 2);
    assert_eq!(b.breaker, BreakerPolicy::default());
    assert_eq!((b.breaker.failures, b.breaker.window), (5, 20));
    assert_eq!(b.timeouts, RouteTimeouts::default());
    assert!(b.rules.is_empty() && b.fallbacks.is_empty());
    assert_eq!(s.model("big").unwrap().1.fallbacks, [s.model_index["fast"]]);
    assert_eq!(s.model("big").unwrap().1.strategy, Strategy::Priority);
}

#[test]
fn every_route_problem_is_reported_with_its_path() {
    let bad = r#"
providers:
  p: { protocol: mock }
models:
  a:
    strategy: fastest
    colour: red
    targets:
      - { provider: p, model: m, weight: 0, max_concurrent: 0, zone: x }
      - { provider: p, model: m }
      - { provider: p, model: n, price: { input: -1 } }
      - { provider: p, model: o, price: { input: 1, output: lots } }
    fallbacks: [a, nowhere, b, b]
    fallback_on: { context_window: gone, overload: b }
    retry: { attempts: 0, backoff_ms: 500, max_backoff_ms: 100 }
    timeouts: { first_byte_ms: 9000, total_ms: 1000, connect_ms: 5 }
    breaker: { failures: 0, failure_rate: 1.5, window: 65, cooldown_ms: 0, half_open_probes: 0 }
    hedge: { after: p100, max_percent: 0 }
    health: { interval_ms: 50, probe: ping, every: 3 }
    rules:
      - { when: {}, targets: [p/m] }
      - { when: { tag: "a,b", canary: 101, weekday: mon }, targets: [] }
      - { when: { min_prompt_tokens: 10, max_prompt_tokens: 5 }, targets: [nope] }
      - { targets: [p/m] }
  b:
    targets: { provider: p, model: m }
    rules: { when: { tag: x } }
    hedge: { after_ms: 5 }
  d:
    retry: { attempts: 1 }
    hedge: {}
    targets: [{ provider: p, model: m }, { provider: p, model: n }]
  c:
    strategy: 3
    targets:
      - { provider: p, model: m0 }
      - { provider: p, model: m1 }
      - { provider: p, model: m2 }
      - { provider: p, model: m3 }
      - { provider: p, model: m4 }
      - { provider: p, model: m5 }
      - { provider: p, model: m6 }
      - { provider: p, model: m7 }
      - { provider: p, model: m8 }
      - { provider: p, model: m9 }
      - { provider: p, model: m10 }
      - { provider: p, model: m11 }
      - { provider: p, model: m12 }
      - { provider: p, model: m13 }
      - { provider: p, model: m14 }
      - { provider: p, model: m15 }
      - { provider: p, model: m16 }
    fallbacks: b
"#;
    let p = load_str(bad, &env).unwrap_err().0;
    let expect = [
        "models.a.strategy: unknown strategy \"fastest\" (one of: weighted, least-latency, least-busy, cost, priority)",
        "models.a.colour: unknown field",
        "models.a.targets[0].weight: must be at least 1, found 0",
        "models.a.targets[0].max_concurrent: must be at least 1, found 0",
        "models.a.targets[0].zone: unknown field",
        "models.a.targets[1]: another target is named \"p/m\"; give one a distinct `name`",
        "models.a.targets[2].price.input: must not be negative, found -1",
        "models.a.targets[2].price.output: missing",
        "models.a.targets[3].price.output: expected a number, found a string",
        "models.a.fallbacks[0]: must not be the alias itself",
        "models.a.fallbacks[1]: no model named \"nowhere\"",
        "models.a.fallbacks[3]: \"b\" is listed twice",
        "models.a.fallback_on.context_window: no model named \"gone\"",
        "models.a.fallback_on.overload: unknown field",
        "models.a.retry.attempts: must be at least 1, found 0",
        "models.a.retry.max_backoff_ms: must be at least backoff_ms (500 ms)",
        "models.a.timeouts.first_byte_ms: must not exceed total_ms (1000 ms)",
        "models.a.timeouts.connect_ms: unknown field",
        "models.a.breaker.failures: must be at least 1, found 0",
        "models.a.breaker.failure_rate: must be from 0 to 1, found 1.5",
        "models.a.breaker.window: must be at most 64, found 65",
        "models.a.breaker.cooldown_ms: must be at least 1, found 0",
        "models.a.breaker.half_open_probes: must be at least 1, found 0",
        "models.a.hedge.after: expected a quantile from p50 to p99.9, found \"p100\"",
        "models.a.hedge.max_percent: must be greater than 0",
        "models.b.hedge: needs at least two targets to hedge between",
        "models.a.health.interval_ms: must be at least 100, found 50",
        "models.a.health.probe: expected `models` or `chat`, found \"ping\"",
        "models.a.health.every: unknown field",
        "models.d.hedge: needs `after` (a quantile such as p95) or `after_ms`",
        "models.d.hedge: needs retry.attempts of at least 2",
        "models.a.rules[0].when: needs at least one condition",
        "models.a.rules[1].when.weekday: unknown field",
        "models.a.rules[1].when.tag: a tag must not contain commas",
        "models.a.rules[1].when.canary: must be from 0 to 100, found 101",
        "models.a.rules[1].targets: needs at least one target name",
        "models.a.rules[2].when.max_prompt_tokens: must be at least min_prompt_tokens (10)",
        "models.a.rules[2].targets[0]: no target named \"nope\" in this alias (targets: p/m, ",
        "models.a.rules[3].when: missing",
        "models.b.targets: expected a list, found a mapping",
        "models.b.rules: expected a list, found a mapping",
        "models.c.strategy: expected a string, found an integer",
        "models.c.targets: at most 16 targets, found 17",
        "models.c.fallbacks: expected a list of aliases, found a string",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
    assert!(
        !p.iter().any(|l| l.starts_with("models.a.fallbacks[2]")),
        "a valid forward reference is fine:\n{}",
        p.join("\n")
    );
}

#[test]
fn hedge_takes_a_quantile_or_a_fixed_delay() {
    let text = r#"
providers:
  p: { protocol: mock }
models:
  tail:
    hedge: { after: p95, after_ms: 200, max_percent: 5 }
    targets: [{ provider: p, model: m }, { provider: p, model: n }]
  fixed:
    hedge: { after_ms: 40 }
    health: { interval_ms: 250, probe: chat }
    timeouts: { total_ms: 9000 }
    targets: [{ provider: p, model: m }, { provider: p, model: n }]
  none:
    targets: [{ provider: p, model: m }]
"#;
    let s = load_str(text, &env).unwrap();
    let by = |a: &str| s.models.iter().find(|m| m.alias == a).unwrap().hedge;
    let tail = by("tail").unwrap();
    assert_eq!(tail.quantile, Some(0.95));
    assert_eq!(tail.after, Duration::from_millis(200));
    assert!((tail.max_share - 0.05).abs() < 1e-12);
    let fixed = by("fixed").unwrap();
    assert_eq!(
        (fixed.quantile, fixed.after),
        (None, Duration::from_millis(40))
    );
    assert!((fixed.max_share - 0.1).abs() < 1e-12);
    assert_eq!(by("none"), None);
    let health = |a: &str| s.models.iter().find(|m| m.alias == a).unwrap().health;
    let h = health("fixed").unwrap();
    assert_eq!(
        (h.interval, h.probe),
        (Duration::from_millis(250), Probe::Chat)
    );
    assert_eq!((h.timeout, h.failures), (Duration::from_secs(3), 2));
    assert_eq!(health("tail"), None);
    // The whole request's budget: the alias's total, else its providers' (the default here).
    let budget = |a: &str| {
        let m = s.models.iter().find(|m| m.alias == a).unwrap();
        m.request_timeout
    };
    assert_eq!(budget("fixed"), Duration::from_secs(9));
    assert_eq!(budget("tail"), Timeouts::default().total);
}

#[test]
fn route_numbers_accept_integers_and_decimals() {
    let text = r#"
providers:
  p: { protocol: mock }
models:
  a:
    breaker: { failure_rate: 1 }
    targets:
      - { provider: p, model: m, price: { input: 3, output: 15, cache_write: 3.75 } }
    rules:
      - { when: { canary: 0 }, targets: [p/m] }
      - { when: { canary: 100 }, targets: [p/m] }
"#;
    let s = load_str(text, &env).unwrap();
    let a = &s.models[0];
    assert_eq!(a.breaker.failure_rate, 1.0);
    let p = a.targets[0].price.unwrap();
    assert_eq!((p.input, p.cached_input, p.cache_write), (3.0, 3.0, 3.75));
    assert_eq!(a.rules[0].when.canary, Some(0));
    assert_eq!(a.rules[1].when.canary, Some(10_000));
    let p = load_str(&text.replace("failure_rate: 1", "failure_rate: 0"), &env)
        .unwrap_err()
        .0;
    assert_eq!(p, ["models.a.breaker.failure_rate: must be greater than 0"]);
}

// === server limits ===

#[test]
fn server_limits_default_parse_and_reject_zero() {
    let s = load_str("", &env).unwrap().server;
    assert_eq!(s.write_timeout, Duration::from_secs(30));
    assert_eq!((s.max_connections, s.max_inflight), (10_000, 4_096));
    let text = "server:\n  write_timeout_ms: 2500\n  max_connections: 64\n  max_inflight: 8\n";
    let s = load_str(text, &env).unwrap().server;
    assert_eq!(s.write_timeout, Duration::from_millis(2500));
    assert_eq!((s.max_connections, s.max_inflight), (64, 8));
    let zero = "server:\n  write_timeout_ms: 0\n  max_connections: 0\n  max_inflight: 0\n";
    let p = load_str(zero, &env).unwrap_err().0;
    assert_eq!(
        p,
        [
            "server.write_timeout_ms: must be at least 1, found 0",
            "server.max_connections: must be at least 1, found 0",
            "server.max_inflight: must be at least 1, found 0",
        ]
    );
}

// === values that reach HTTP heads ===

/// One provider `up` whose key comes from `UP_KEY`, and an alias `m` on it.
fn with_up_key(value: &str) -> Result<Snapshot, Problems> {
    let text = "providers:\n  up:\n    protocol: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key: { env: UP_KEY }\nmodels:\n  m:\n    targets: [{ provider: up, model: gpt-4o }]\n";
    load_str(text, &|name| (name == "UP_KEY").then(|| value.to_owned()))
}

#[test]
fn env_secrets_are_trimmed() {
    let s = with_up_key("  sk-up\n").unwrap();
    assert_eq!(s.providers[0].api_key.as_ref().unwrap().expose(), "sk-up");
    // Spaces inside are a value's own business.
    let s = with_up_key("Bearer-ish two words\r\n").unwrap();
    assert_eq!(
        s.providers[0].api_key.as_ref().unwrap().expose(),
        "Bearer-ish two words"
    );
}

#[test]
fn secrets_with_control_or_non_ascii_bytes_are_rejected_unshown() {
    for (value, flaw) in [
        (
            "sk-ab\r\ncd",
            "contains a control character (byte 0x0d at offset 5)",
        ),
        (
            "\nsk-a\0b",
            "contains a control character (byte 0x00 at offset 5)",
        ),
        (
            "sk-\u{e9}",
            "contains a non-ASCII byte (byte 0xc3 at offset 3)",
        ),
        (
            "sk-\x7f",
            "contains a control character (byte 0x7f at offset 3)",
        ),
        (" \n\t", "is empty"),
        ("", "is empty"),
    ] {
        let p = with_up_key(value).unwrap_err().0;
        assert_eq!(
            p,
            [format!(
                "providers.up.api_key: the value from env UP_KEY {flaw}"
            )],
            "{value:?}"
        );
        assert!(!p[0].contains("sk-"), "the secret is not echoed: {p:?}");
    }
}

#[test]
fn file_secrets_are_trimmed_and_vetted() {
    let dir = std::env::temp_dir().join(format!("shardgate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad) = (dir.join("good"), dir.join("bad"));
    std::fs::write(&good, "sk-file\n").unwrap();
    std::fs::write(&bad, b"sk-\xff\n").unwrap();
    let text = |path: &std::path::Path| {
        format!(
            "keys:\n  - name: team-a\n    key: {{ file: {} }}\n",
            path.display()
        )
    };
    let s = load_str(&text(&good), &env);
    let p = load_str(&text(&bad), &env).map(|_| ()).unwrap_err().0;
    std::fs::remove_dir_all(&dir).unwrap();
    let s = s.unwrap();
    assert_eq!(s.keys.len(), 1);
    assert_eq!(
        p,
        [format!(
            "keys[0].key: the value from file {} contains a non-ASCII byte (byte 0xff at offset 3)",
            bad.display()
        )]
    );
}

#[test]
fn base_urls_with_whitespace_controls_or_credentials_are_rejected() {
    let with_url = |url: &str| {
        let text = format!("providers:\n  up:\n    protocol: openai\n    base_url: {url}\n");
        load_str(&text, &env).map(|_| ()).unwrap_err().0
    };
    // A trailing newline is an error: a URL is not a secret file.
    assert_eq!(
        with_url(r#""http://127.0.0.1:9/v1\n""#),
        [
            r#"providers.up.base_url: "http://127.0.0.1:9/v1\n" contains a control character (byte 0x0a at offset 21)"#
        ]
    );
    assert_eq!(
        with_url(r#""http://127.0.0.1:9/v 1""#),
        [
            r#"providers.up.base_url: "http://127.0.0.1:9/v 1" contains a space (byte 0x20 at offset 20)"#
        ]
    );
    assert!(with_url(r#""http://h\u00e9.example/v1""#)[0].contains(
        "contains a non-ASCII byte (byte 0xc3 at offset 8) (write a non-ASCII host in its xn-- form"
    ));
    let p = with_url("https://user:hunter2@api.example.com/v1");
    assert_eq!(
        p,
        [
            "providers.up.base_url: must not contain user:password@ (credentials go in api_key or headers)"
        ]
    );
    assert!(with_url(r#""http://ho\"st/v1""#)[0].ends_with("has an invalid host"));
    // An `@` in the path is not userinfo.
    load_str(
        "providers:\n  up: { protocol: openai, base_url: \"http://127.0.0.1:9/@v1\" }\n",
        &env,
    )
    .unwrap();
}

#[test]
fn names_that_reach_heads_and_logs_are_tokens() {
    let text = r#"
providers:
  "bad up": { protocol: mock }
  p:
    protocol: openai
    base_url: http://127.0.0.1:9/v1
    headers: { x-ok: "a b", x-cr: "a\rb", content-length: "5", "x y": v, x-pad: " v" }
    organization: "org\n1"
  claude:
    protocol: anthropic
    api_key: { env: LOCAL_API_KEY }
    anthropic_beta: ["a,b"]
models:
  'al\ias':
    targets: [{ provider: p, model: m }]
  m:
    targets:
      - { provider: p, model: m, name: "t\u0007x" }
      - { provider: p, model: "gpt 4" }
      - { provider: p, model: "gpt 4", name: gpt-four }
    rules:
      - { when: { team: "team a" }, targets: [gpt-four] }
keys:
  - { name: "team\ta", key: { env: TEAM_A_KEY } }
"#;
    let p = load_str(text, &env).unwrap_err().0;
    let allowed = "names may use only letters, digits and - . _ ~ : / @ +";
    let expect = [
        format!(
            r#"providers."bad up": the name "bad up" contains a space (byte 0x20 at offset 3); {allowed}"#
        ),
        r#"providers.p.headers.x-cr: "a\rb" contains a control character (byte 0x0d at offset 1)"#
            .to_owned(),
        "providers.p.headers.content-length: content-length is set by the gateway and cannot be configured".to_owned(),
        r#"providers.p.headers."x y": the header name contains a space (byte 0x20 at offset 1); header names may use only letters, digits, - and _"#.to_owned(),
        r#"providers.p.headers.x-pad: " v" must not start or end with a space"#.to_owned(),
        r#"providers.p.organization: "org\n1" contains a control character (byte 0x0a at offset 3)"#
            .to_owned(),
        format!(
            r#"providers.claude.anthropic_beta: the name "a,b" contains the character ',' (byte 0x2c at offset 1); {allowed}"#
        ),
        format!(
            r#"models."al\\ias": the name "al\\ias" contains the character '\\' (byte 0x5c at offset 2); {allowed}"#
        ),
        format!(
            r#"models.m.targets[0].name: the name "t\u{{7}}x" contains a control character (byte 0x07 at offset 1); {allowed}"#
        ),
        format!(
            r#"models.m.targets[1].model: the name "gpt 4" contains a space (byte 0x20 at offset 3); {allowed} (the target's name is derived from it; give the target a `name`)"#
        ),
        format!(
            r#"models.m.rules[0].when.team: the name "team a" contains a space (byte 0x20 at offset 4); {allowed}"#
        ),
        format!(
            r#"keys[0].name: the name "team\ta" contains a control character (byte 0x09 at offset 4); {allowed}"#
        ),
    ];
    for e in &expect {
        assert!(p.contains(e), "missing {e:?} in:\n{}", p.join("\n"));
    }
    assert_eq!(p.len(), expect.len(), "{}", p.join("\n"));
}

#[test]
fn budget_timezones_parse_as_offsets() {
    let with = |tz: &str| load_str(&format!("server: {{ budget_timezone: \"{tz}\" }}\n"), &env);
    assert_eq!(with("UTC").unwrap().server.budget_offset_min, 0);
    assert_eq!(with("+05:30").unwrap().server.budget_offset_min, 330);
    assert_eq!(with("-08:00").unwrap().server.budget_offset_min, -480);
    for bad in ["Europe/Paris", "+5", "+15:00", "-08:75"] {
        let p = with(bad).unwrap_err().to_string();
        assert!(p.contains("server.budget_timezone"), "{bad}: {p}");
    }
}

#[test]
fn cloud_providers_take_their_region_project_and_credentials() {
    let text = r#"
providers:
  vx:
    protocol: vertex
    project: my-project
    region: us-east5
    access_token: { env: LOCAL_API_KEY }
  vg:
    protocol: vertex
    project: my-project
    region: global
    access_token: { env: LOCAL_API_KEY }
  aws:
    protocol: bedrock
    region: eu-west-1
    access_key_id: { env: LOCAL_API_KEY }
    secret_access_key: { env: TEAM_A_KEY }
  g:
    protocol: gemini
    api_key: { env: LOCAL_API_KEY }
models:
  m:
    targets: [ { provider: vx, model: gemini-2.5-flash } ]
"#;
    let s = load_str(text, &env).unwrap();
    let origin = |name: &str| {
        let p = s.providers.iter().find(|p| p.name == name).unwrap();
        s.origins[p.origin.unwrap()].authority.clone()
    };
    assert_eq!(origin("vx"), "us-east5-aiplatform.googleapis.com");
    assert_eq!(origin("vg"), "aiplatform.googleapis.com");
    assert_eq!(origin("aws"), "bedrock-runtime.eu-west-1.amazonaws.com");
    assert_eq!(origin("g"), "generativelanguage.googleapis.com");
    let vx = s.providers.iter().find(|p| p.name == "vx").unwrap();
    assert_eq!(vx.project.as_deref(), Some("my-project"));
    assert_eq!(
        vx.token.as_ref().and_then(|t| t.get()).as_deref(),
        Some("sk-local")
    );
    let aws = s.providers.iter().find(|p| p.name == "aws").unwrap();
    let keys = aws.aws.as_ref().unwrap();
    assert_eq!(
        (keys.access_key_id.expose(), keys.secret_access_key.expose()),
        ("sk-local", "sg-a")
    );

    let bad = r#"
providers:
  vx:
    protocol: vertex
    region: "US East"
  aws:
    protocol: bedrock
    access_key_id: { env: LOCAL_API_KEY }
    profile: x
  o:
    protocol: openai
    region: us-east-1
"#;
    let p = load_str(bad, &|_: &str| None).unwrap_err().0;
    for e in [
        "providers.vx.project: missing (the Google Cloud project id)",
        "providers.vx.region: \"US East\" is not a region name",
        "providers.vx.credentials: missing: credentials: { file: sa.json } or access_token",
        "providers.aws.access_key_id: environment variable LOCAL_API_KEY is not set",
        "providers.o.region: only for protocol vertex, bedrock, not openai",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn store_postgres_takes_a_url_literal_or_from_the_environment() {
    let with = |store: &str| load_str(&format!("store:\n{store}{GOOD}"), &env);
    let s = with("  postgres: { url: { env: LOCAL_API_KEY } }\n").unwrap();
    let StoreConfig::Postgres(pg) = &s.store else {
        panic!("{:?}", s.store)
    };
    assert_eq!(pg.url.expose(), "sk-local");
    assert_eq!(pg.url.origin(), "env LOCAL_API_KEY");
    assert_eq!(
        (pg.spool.to_str(), pg.spool_max_mb),
        (Some("shardgate-spool"), 256)
    );
    assert!(s.ledger_on(), "the ledger is on by default on PostgreSQL");
    let s = with(
        "  postgres: { url: \"postgres://sg@127.0.0.1:5432/sg\", spool: /var/spool/sg, \
         spool_max_mb: 8 }\n",
    )
    .unwrap();
    let StoreConfig::Postgres(pg) = &s.store else {
        panic!()
    };
    assert_eq!(pg.url.expose(), "postgres://sg@127.0.0.1:5432/sg");
    assert_eq!(format!("{:?}", pg.url), "Secret(from store.postgres.url)");
    assert_eq!(
        (pg.spool.to_str(), pg.spool_max_mb),
        (Some("/var/spool/sg"), 8)
    );
    let p = with("  postgres: { spool: x }\n").unwrap_err().0;
    assert!(
        p.iter().any(|p| p == "store.postgres.url: is required"),
        "{p:?}"
    );
    let p = with("  postgres: { url: { env: NOPE } }\n  path: x.db\n")
        .unwrap_err()
        .0;
    assert!(p.iter().any(|p| p.starts_with("store: expected")), "{p:?}");
}
